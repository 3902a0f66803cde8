//! Events from outside the realtime connections (RabbitMQ's inbound queue, the internal
//! API): canonical JSON, or a dialect's wire frame, with where they are to be delivered.

use crate::dialect::{DecodeContext, Direction, Registry};
use crate::event::{Event, Origin, Target};
use std::sync::Arc;

/// An inbound message's events: canonical JSON, or a dialect's wire frame when `dialect`
/// names one. The target is `target` (`room:<id>`, `user:<id>`, `everyone`), else the
/// event's `meta.target`, else the vocabulary's route. `origin` names where it came from
/// (`amqp`, `api`).
///
/// # Errors
/// Not an event, an unknown dialect or canonical name, a malformed target.
pub fn read(
    data: &[u8],
    dialect: Option<&str>,
    target: Option<&str>,
    origin: &str,
    reg: &Registry,
) -> Result<Vec<Event>, String> {
    let mut events: Vec<Event> = match dialect {
        None => vec![
            serde_json::from_slice::<Event>(data)
                .map_err(|e| format!("not a canonical event: {e}"))?,
        ],
        Some(name) => {
            let d = reg
                .dialect(name)
                .ok_or_else(|| format!("unknown dialect `{name}`"))?;
            d.decode_frame(data, Some(Direction::Down), &DecodeContext::default())
                .map_err(|e| e.to_string())?
                .into_iter()
                .collect()
        }
    };
    for ev in &mut events {
        if reg.vocab.event(&ev.name).is_none() {
            return Err(format!("unknown canonical event `{}`", ev.name));
        }
        match target {
            Some("everyone") => ev.meta.target = Some(Target::Broadcast),
            Some(t) => {
                ev.meta.target = Some(match t.split_once(':') {
                    Some(("room", id)) => Target::Room(id.to_string()),
                    Some(("user", id)) => Target::User(id.to_string()),
                    _ => {
                        return Err(format!(
                            "target header `{t}` is not room:<id>, user:<id> or everyone"
                        ));
                    }
                });
            }
            None => {}
        }
        ev.meta.origin = Some(Origin {
            dialect: Arc::from(origin),
            instance: String::new(),
            connection: dialect.unwrap_or_default().to_string(),
        });
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbound_messages_are_canonical_or_a_named_dialect() {
        let reg = Registry::embedded().expect("mappings");
        let evs = read(
            br#"{"name":"message.created","body":{"conversationId":"r","messageId":"m","senderId":"s","content":"hi"},"meta":{"target":{"room":"r"}}}"#,
            None,
            None,
            "amqp",
            &reg,
        )
        .expect("canonical");
        assert_eq!(evs[0].meta.target, Some(Target::Room("r".into())));
        let evs = read(
            br#"["message:created",{"message":{"id":"m","content":"x","channelId":"c","userId":"u","createdAt":"2024-01-01T00:00:00.000Z"}}]"#,
            Some("clerk"),
            Some("user:u9"),
            "amqp",
            &reg,
        )
        .expect("clerk wire form");
        assert_eq!(&*evs[0].name, "message.created");
        assert_eq!(evs[0].meta.target, Some(Target::User("u9".into())));
        assert!(read(b"{}", None, None, "amqp", &reg).is_err());
        assert!(read(b"[]", Some("nope"), None, "amqp", &reg).is_err());
        assert!(read(br#"{"name":"no.such"}"#, None, None, "amqp", &reg).is_err());
    }
}
