//! Event metadata: identity, trace, time, origin, sender, route and carried fields.

use super::id::EventId;
use super::time::{format_iso_millis, now_millis, parse_iso_millis};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::sync::Arc;

/// Everything about an event that is not its body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// Unique id of this event (a webhook's `evt_…` id when it came from one).
    #[serde(default)]
    pub id: EventId,
    /// Follows the event across dialects, buses and webhooks (the envelope's `traceId`).
    #[serde(default)]
    pub trace_id: EventId,
    /// When the event happened, Unix milliseconds; ISO-8601 in JSON.
    #[serde(with = "iso_millis", default = "now_millis")]
    pub at: i64,
    /// Where the event entered the gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// The authenticated user who caused the event, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserRef>,
    /// Where the event is to be delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// Fields of the origin dialect the canonical vocabulary does not have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carried: Option<Box<UnmappedFields>>,
}

impl Default for Meta {
    fn default() -> Self {
        Meta::fresh()
    }
}

impl Meta {
    /// Fresh id and trace id (UUID v4), current time, nothing else.
    pub fn fresh() -> Self {
        Meta {
            id: EventId::random(),
            trace_id: EventId::random(),
            at: now_millis(),
            origin: None,
            user: None,
            target: None,
            carried: None,
        }
    }
}

/// Where an event entered the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// Dialect name (`nexus`, `clerk`, …).
    pub dialect: Arc<str>,
    /// Instance id of the switchboard process that decoded it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub instance: String,
    /// Connection id (socket id) it arrived on.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub connection: String,
}

/// The authenticated user behind an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRef {
    /// User id (the token's `sub`).
    pub id: String,
    /// Display name (the token's `name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Picture URL (the token's `picture`, or the provider's image claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// Where an event goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Target {
    /// Every member of a room (conversation, channel).
    Room(String),
    /// Every session of one user.
    User(String),
    /// One connection.
    Connection(String),
    /// Everyone.
    Broadcast,
}

/// Fields a dialect sent that the canonical vocabulary lacks, kept so that encoding back
/// to the same dialect restores them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnmappedFields {
    /// The dialect the fields belong to.
    pub dialect: Arc<str>,
    /// The wire event name they came with (a dialect may carry different fields per event).
    pub wire: Arc<str>,
    /// The unmapped remainder of the wire payload, in wire shape.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub fields: Map<String, Value>,
    /// Wire constants (`processed: true`) the event did not have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub omitted: Vec<String>,
    /// The wire event had no payload at all (`["presence:heartbeat"]`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_payload: bool,
}

mod iso_millis {
    use super::*;

    pub(super) fn serialize<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_iso_millis(*ms))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => {
                parse_iso_millis(&s).ok_or_else(|| D::Error::custom("`at` is not ISO-8601"))
            }
            Value::Number(n) => n
                .as_i64()
                .ok_or_else(|| D::Error::custom("`at` is not an integer of milliseconds")),
            _ => Err(D::Error::custom(
                "`at` must be an ISO-8601 string or Unix milliseconds",
            )),
        }
    }
}
