//! How a delivery travels between instances: JSON `{"i": instance, "n": sequence, "a":
//! audience, "e": canonical event, "o": history offset (when kept)}`, on one channel per room (`switchboard:{room:<id>}`,
//! `switchboard:{user:<id>}`, `switchboard:all`; the braces are Redis Cluster hash tags, so
//! a room's channel lives on one shard).

use super::{Audience, Delivery, Offset, RoomKey};
use crate::event::Event;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The channel every instance subscribes to, for deliveries to everyone.
pub const ALL: &str = "switchboard:all";

/// The channel of a room.
pub fn channel(room: &RoomKey) -> String {
    match room {
        RoomKey::Conversation(id) => format!("switchboard:{{room:{id}}}"),
        RoomKey::User(id) => format!("switchboard:{{user:{id}}}"),
        RoomKey::Dialect(name) => format!("switchboard:{{dialect:{name}}}"),
    }
}

/// The channels a delivery goes to.
pub fn channels(a: &Audience) -> Vec<String> {
    if a.everyone {
        return vec![ALL.to_string()];
    }
    let mut out: Vec<String> = a.rooms.iter().map(channel).collect();
    // What reaches beyond the rooms travels once, on the dialect's channel: the
    // instances with connections of that dialect listen to it.
    for w in a.wider.iter().filter(|w| w.everyone || !w.users.is_empty()) {
        out.push(channel(&RoomKey::Dialect(w.dialect.clone())));
    }
    out
}

#[derive(Serialize)]
struct Out<'a> {
    i: &'a str,
    n: u64,
    a: &'a Audience,
    e: &'a Event,
    #[serde(skip_serializing_if = "Option::is_none")]
    o: Option<&'a Offset>,
}

/// A delivery received from another instance.
#[derive(Deserialize)]
pub struct In {
    /// The publishing instance.
    pub i: Arc<str>,
    /// Its sequence number there (with `i`, identifies the delivery).
    pub n: u64,
    /// Who receives it.
    pub a: Audience,
    /// The event.
    pub e: Event,
    /// Its history offset, when kept.
    #[serde(default)]
    pub o: Option<Offset>,
}

impl In {
    /// The delivery.
    pub fn delivery(self) -> Delivery {
        Delivery {
            event: self.e,
            audience: self.a,
            offset: self.o,
        }
    }
}

/// Encodes a delivery.
pub fn encode(instance: &str, n: u64, d: &Delivery) -> Vec<u8> {
    // Serialising these types cannot fail: every map key is a string.
    serde_json::to_vec(&Out {
        i: instance,
        n,
        a: &d.audience,
        e: &d.event,
        o: d.offset.as_ref(),
    })
    .unwrap_or_default()
}

/// Decodes a delivery.
///
/// # Errors
/// Not a delivery.
pub fn decode(bytes: &[u8]) -> Result<In, serde_json::Error> {
    serde_json::from_slice(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_round_trips() {
        let mut body = serde_json::Map::new();
        body.insert("conversationId".into(), "r".into());
        let d = Delivery {
            event: Event::new("typing.started", body),
            audience: Audience {
                rooms: smallvec::smallvec![RoomKey::conversation("r"), RoomKey::user("u")],
                everyone: false,
                except_connection: Some((Arc::from("i1"), 7)),
                except_user: Some(Arc::from("u")),
                except_upstream: Some(Arc::from("nexus")),
                then: Some(crate::bus::Then::Disconnect { reconnect: false }),
                wider: smallvec::smallvec![crate::bus::Wider {
                    dialect: Arc::from("phase10"),
                    users: smallvec::smallvec![Arc::from("u2")],
                    ..Default::default()
                }],
            },
            offset: Offset::parse("0a-7"),
        };
        let back = decode(&encode("i1", 3, &d)).expect("decodes");
        assert_eq!((&*back.i, back.n), ("i1", 3));
        let json = |e: &Event| serde_json::to_value(e).expect("json");
        assert_eq!(json(&back.e), json(&d.event));
        assert_eq!(back.a.rooms, d.audience.rooms);
        assert_eq!(back.a.except_user.as_deref(), Some("u"));
        assert_eq!(back.a.except_upstream.as_deref(), Some("nexus"));
        assert_eq!(back.a.then, d.audience.then);
        assert_eq!(back.a.wider, d.audience.wider);
        assert_eq!(back.o, d.offset);
        assert_eq!(
            channels(&d.audience),
            [
                "switchboard:{room:r}",
                "switchboard:{user:u}",
                "switchboard:{dialect:phase10}"
            ]
        );
        let mut everyone = d.audience.clone();
        everyone.everyone = true;
        assert_eq!(channels(&everyone), [ALL]);
    }
}
