//! The canonical event: the one form every dialect decodes to and encodes from.
//!
//! No dialect is translated to another directly: `decode(A) → Event → encode(B)`.
//! The body uses one field vocabulary (declared in `mappings/canonical.toml`); the meta
//! carries what the gateway knows about the event (ids, trace, time, origin, sender,
//! route) and, when a dialect had fields the vocabulary lacks, the carried remainder that
//! makes `A → canonical → A` the identity.

mod id;
mod meta;
mod time;

pub use id::EventId;
pub use meta::{Meta, Origin, Target, UnmappedFields, UserRef};
pub use time::{format_iso_millis, now_millis, parse_iso_millis};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::Arc;

/// A canonical event: `name` is dot-style (`message.created`), `body` holds canonical fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Canonical name, e.g. `message.send` (a client intent) or `message.created` (a fact).
    pub name: Arc<str>,
    /// Canonical fields (`conversationId`, `messageId`, `content`, …).
    #[serde(default)]
    pub body: Map<String, Value>,
    /// What the gateway knows about this event beyond its body.
    #[serde(default)]
    pub meta: Meta,
}

impl Event {
    /// A new event with a fresh id, a fresh trace id and the current time.
    pub fn new(name: impl Into<Arc<str>>, body: Map<String, Value>) -> Self {
        Event {
            name: name.into(),
            body,
            meta: Meta::fresh(),
        }
    }

    /// A body field by canonical name.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.body.get(name)
    }

    /// A body field as a string, if it is one.
    pub fn str_field(&self, name: &str) -> Option<&str> {
        self.body.get(name).and_then(Value::as_str)
    }
}
