//! A fronted backend's facts beyond the clients its sessions serve: the backend sends one
//! copy of a fact to each session of a room's members, on every instance, and the fact
//! must leave the gateway once. Each copy's identity (the thing it is about, or a hash
//! of its canonical body) is claimed in the store; the first claimant exports it, under
//! a webhook id derived from that identity (so no copy, retry or store outage can make
//! a second id for one fact), and with `bridge` delivers it to the hub's clients of the
//! room on other routes.

use super::{Hub, HubState};
use crate::event::{Event, EventId, Origin};
use crate::telemetry::{Name, UpstreamLabels, UpstreamOutcome};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Instant;

/// The upstream a fronted fact came from, as the hub needs to know it.
#[derive(Debug, Clone)]
pub struct Fronted {
    /// The upstream's name (its connections are marked with it).
    pub name: Arc<str>,
    /// Its name as a metrics label.
    pub label: Name,
    /// The backend's dialect (the exported fact's origin).
    pub dialect: Arc<str>,
    /// Whether exported facts also reach the hub's clients of the room.
    pub bridge: bool,
}

/// What one session's copy of a fact found when it claimed the export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimed {
    /// The first copy: exported from here.
    Won,
    /// Another session's copy was exported already: dropped.
    Lost,
    /// The store could not answer: exported unclaimed, under the same webhook id.
    StoreDown,
}

impl Claimed {
    /// The metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Claimed::Won => "won",
            Claimed::Lost => "lost",
            Claimed::StoreDown => "store_down",
        }
    }
}

/// Facts that happen once to the thing they name: their identity is that thing's id,
/// whatever else a copy (or a backend's retry) carries.
const ONCE: [(&str, &str); 4] = [
    ("message.created", "messageId"),
    ("message.deleted", "messageId"),
    ("conversation.created", "conversationId"),
    ("conversation.deleted", "conversationId"),
];

/// Fields that time a fact: with one, two equal bodies are one fact for the whole
/// `export_window`; without, only within `export_echo_window`.
const TIMES: [&str; 6] = [
    "createdAt",
    "updatedAt",
    "deletedAt",
    "readAt",
    "timestamp",
    "lastSeen",
];

/// A fact's identity, and whether it lasts the long window (an id or a time names it).
pub(crate) fn identity(upstream: &str, ev: &Event) -> ([u8; 32], bool) {
    let mut h = Sha256::new();
    let mut text = |s: &str| {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    };
    text(upstream);
    text(&ev.name);
    let once = ONCE
        .iter()
        .find(|(name, _)| *name == &*ev.name)
        .and_then(|(_, field)| super::id_text(ev.field(field)));
    let lasting = match once {
        Some(id) => {
            text(&id);
            true
        }
        None => {
            hash_object(&mut h, &ev.body);
            TIMES
                .iter()
                .any(|f| ev.field(f).is_some_and(|v| !v.is_null()))
        }
    };
    (h.finalize().into(), lasting)
}

/// Hashes a JSON value the same however its object keys were ordered.
fn hash_value(h: &mut Sha256, v: &Value) {
    match v {
        Value::Null => h.update(b"n"),
        Value::Bool(b) => h.update(if *b { b"t" } else { b"f" }),
        Value::Number(n) => {
            let s = n.to_string();
            h.update(b"d");
            h.update((s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        }
        Value::String(s) => {
            h.update(b"s");
            h.update((s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        }
        Value::Array(items) => {
            h.update(b"a");
            h.update((items.len() as u64).to_le_bytes());
            for i in items {
                hash_value(h, i);
            }
        }
        Value::Object(m) => hash_object(h, m),
    }
}

fn hash_object(h: &mut Sha256, m: &serde_json::Map<String, Value>) {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort_unstable();
    h.update(b"o");
    h.update((keys.len() as u64).to_le_bytes());
    for k in keys {
        h.update((k.len() as u64).to_le_bytes());
        h.update(k.as_bytes());
        if let Some(v) = m.get(k) {
            hash_value(h, v);
        }
    }
}

impl Hub {
    /// One session's copy of a fact its backend sent (already delivered to that
    /// session's client): exported unless another copy was, and with `from.bridge`
    /// delivered to the hub's clients of its room on other routes. Fails open: when the
    /// store cannot answer, the copy is exported unclaimed under the same webhook id,
    /// which receivers deduplicate by. `None` when there is nowhere to export to (no
    /// webhooks, no exchange, no bridge): nothing is claimed.
    pub async fn export_fronted(&self, from: &Fronted, event: &Event) -> Option<Claimed> {
        let s = &self.state;
        if !from.bridge && s.exports.get().is_none_or(Vec::is_empty) {
            return None;
        }
        let (id, lasting) = identity(&from.name, event);
        let key = hex::encode(id);
        let window = if lasting {
            s.settings.export_window
        } else {
            s.settings.export_echo_window
        };
        let t0 = Instant::now();
        let claim = s.store.claim_export(&key, window).await;
        s.metrics
            .upstream_claim_seconds
            .get_or_create(&UpstreamLabels {
                upstream: from.label.clone(),
            })
            .observe(t0.elapsed().as_secs_f64());
        let claimed = match claim {
            Ok(true) => Claimed::Won,
            Ok(false) => Claimed::Lost,
            Err(e) => {
                tracing::warn!(upstream = %from.name, event = %event.name, error = %e, "export claim failed: exported unclaimed");
                Claimed::StoreDown
            }
        };
        s.metrics
            .upstream_exports
            .get_or_create(&UpstreamOutcome {
                upstream: from.label.clone(),
                outcome: claimed.as_str(),
            })
            .inc();
        if claimed != Claimed::Lost {
            s.export_claimed(from, event, &key);
        }
        Some(claimed)
    }
}

impl HubState {
    fn export_claimed(&self, from: &Fronted, event: &Event, key: &str) {
        let mut ev = event.clone();
        // 128 bits of the identity: the webhook id every copy would get.
        ev.meta.id = EventId::from(format!("evt_{}", key.get(..32).unwrap_or(key)));
        ev.meta.origin = Some(Origin {
            dialect: from.dialect.clone(),
            instance: self.instance.to_string(),
            connection: format!("upstream:{}", from.name),
        });
        if from.bridge {
            match self.route_audience(&ev) {
                Ok(mut audience) => {
                    audience.except_upstream = Some(from.name.clone());
                    if let Err(r) = self.publish_with(ev.clone(), audience, false) {
                        tracing::warn!(upstream = %from.name, event = %ev.name, "not bridged to the hub: {}", r.message);
                    }
                }
                Err(r) => {
                    tracing::debug!(upstream = %from.name, event = %ev.name, "not bridged: {}", r.message);
                }
            }
        }
        let stored = self.export(&ev);
        let (upstream, name) = (from.name.clone(), ev.name.clone());
        tokio::spawn(async move {
            if let Err(e) = stored.wait().await {
                tracing::error!(%upstream, event = %name, "a fronted fact could not be stored for export: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::identity;
    use crate::event::Event;
    use serde_json::{Map, Value, json};

    fn ev(name: &str, body: Value) -> Event {
        let body: Map<String, Value> = serde_json::from_value(body).expect("object");
        Event::new(name, body)
    }

    #[test]
    fn copies_of_a_message_are_one_fact_whatever_else_they_carry() {
        let a = ev(
            "message.created",
            json!({"messageId": 7, "content": "hi", "x": 1}),
        );
        let b = ev(
            "message.created",
            json!({"messageId": "7", "content": "hi!"}),
        );
        assert_eq!(identity("nexus", &a), identity("nexus", &b));
        assert!(identity("nexus", &a).1, "an id lasts the long window");
        assert_ne!(identity("nexus", &a).0, identity("other", &a).0);
        let deleted = ev("message.deleted", json!({"messageId": 7}));
        assert_ne!(identity("nexus", &a).0, identity("nexus", &deleted).0);
    }

    #[test]
    fn other_facts_are_their_body_in_any_key_order() {
        let a: Event = ev(
            "reaction.added",
            json!({"messageId": 7, "emoji": "+1", "userId": "u1"}),
        );
        let b = ev(
            "reaction.added",
            json!({"userId": "u1", "emoji": "+1", "messageId": 7}),
        );
        let c = ev(
            "reaction.added",
            json!({"userId": "u2", "emoji": "+1", "messageId": 7}),
        );
        assert_eq!(identity("n", &a), identity("n", &b));
        assert_ne!(identity("n", &a).0, identity("n", &c).0);
        assert!(!identity("n", &a).1, "no id or time: the echo window");
        let timed = ev(
            "message.updated",
            json!({"messageId": 7, "content": "x", "updatedAt": "2026-01-01T00:00:00Z"}),
        );
        assert!(identity("n", &timed).1);
        // Values of different types never hash alike.
        let s = ev("presence.changed", json!({"userId": "1"}));
        let n = ev("presence.changed", json!({"userId": 1}));
        assert_ne!(identity("n", &s).0, identity("n", &n).0);
    }
}
