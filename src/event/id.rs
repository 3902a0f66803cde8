//! Event and trace ids: a random UUID kept as 16 bytes until it is written (most events
//! are never printed with theirs), or the text a peer gave us (`evt_abc123`).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use uuid::Uuid;

/// An id that is either generated here (a UUID v4) or received as text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EventId {
    /// Generated: formatted as a lowercase hyphenated UUID when written.
    Uuid(Aligned),
    /// Received from a peer, kept exactly.
    Text(Box<str>),
}

/// A UUID on an 8-byte boundary: an id is then moved as whole words (a UUID's bytes
/// right after the enum's tag were moved in pieces, each a stall when read back).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(align(8))]
pub struct Aligned(pub Uuid);

impl EventId {
    /// A fresh random id: a version-4 UUID from a fast per-thread generator (wyrand,
    /// seeded from the OS). Ids must be unique, not unguessable: nothing is authorised
    /// by knowing one.
    pub fn random() -> Self {
        let bytes = fastrand::u128(..).to_le_bytes();
        EventId::Uuid(Aligned(uuid::Builder::from_random_bytes(bytes).into_uuid()))
    }

    /// Runs `f` on the id's text, formatting a UUID on the stack (no allocation).
    pub fn with_str<R>(&self, f: impl FnOnce(&str) -> R) -> R {
        match self {
            EventId::Uuid(Aligned(u)) => {
                let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
                f(u.hyphenated().encode_lower(&mut buf))
            }
            EventId::Text(t) => f(t),
        }
    }

    /// Whether the id's text starts with `prefix`.
    pub fn starts_with(&self, prefix: &str) -> bool {
        self.with_str(|s| s.starts_with(prefix))
    }
}

impl From<String> for EventId {
    fn from(s: String) -> Self {
        EventId::Text(s.into_boxed_str())
    }
}

impl From<&str> for EventId {
    fn from(s: &str) -> Self {
        EventId::Text(Box::from(s))
    }
}

impl Default for EventId {
    fn default() -> Self {
        EventId::random()
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.with_str(|s| f.write_str(s))
    }
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.with_str(|t| s.serialize_str(t))
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(EventId::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_round_trips() {
        let id = EventId::random();
        let s = id.to_string();
        assert_eq!(s.len(), 36);
        assert_eq!(serde_json::to_string(&id).ok(), Some(format!("\"{s}\"")));
        let t: EventId = serde_json::from_str("\"evt_abc\"").expect("parses");
        assert_eq!(t, EventId::from("evt_abc"));
        assert!(t.starts_with("evt_"));
    }
}
