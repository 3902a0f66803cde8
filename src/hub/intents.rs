//! From a client's frame to the hub's answer: size check, decode in the sender's
//! dialect, then one handler per canonical intent. Every refusal reaches the sender in
//! its own dialect; the connection stays open.

use super::conn::Rate;
use super::{Ack, Code, Conn, Inner, Refusal, calls, messages, presence, rooms};
use crate::dialect::{Decoded, Direction};
use crate::event::Event;
use crate::telemetry::{EventLabels, Name, ReasonLabels};
use serde_json::{Value, json};
use std::sync::Arc;

pub(super) async fn handle_frame(inner: &Inner, conn: &Arc<Conn>, text: &[u8]) -> Ack {
    conn.check_fault();
    let events = match admit(inner, conn, text) {
        Ok(evs) => evs,
        Err(ack) => return ack,
    };
    let mut acks = Vec::with_capacity(events.len());
    for ev in events {
        acks.push(handle_event(inner, conn, &ev).await);
    }
    match acks.len() {
        1 => acks.pop().unwrap_or(Value::Null),
        _ => json!({"success": acks.iter().all(|a| a["success"] == true), "results": acks}),
    }
}

/// One decoded intent: counted, handled, refused in the sender's dialect if it must be.
pub(super) async fn handle_event(inner: &Inner, conn: &Arc<Conn>, ev: &Event) -> Ack {
    match intent(inner, conn, ev).await {
        Ok(ack) => ack,
        Err(r) => {
            tracing::debug!(conn = conn.id, event = %ev.name, code = %r.code, "refused: {}", r.message);
            inner.refuse(conn, &r, Some(ev))
        }
    }
}

/// The limits, then decoding: the frame's events, or the ack of its refusal.
pub(super) fn admit(inner: &Inner, conn: &Arc<Conn>, text: &[u8]) -> Result<Decoded, Ack> {
    if text.len() > inner.settings.max_payload {
        let r = Refusal::new(
            Code::PayloadTooLarge,
            format!(
                "event of {} bytes is over the {}-byte limit",
                text.len(),
                inner.settings.max_payload
            ),
        );
        return Err(inner.refuse(conn, &r, None));
    }
    let s = &inner.settings;
    match conn.take_token(s.rate, s.burst, s.rate_strikes) {
        Rate::Ok => {}
        Rate::Refuse => {
            let r = Refusal::new(
                Code::RateLimited,
                format!("more than {} events per second: slow down", s.rate),
            );
            return Err(inner.refuse(conn, &r, None));
        }
        Rate::Close => {
            let r = Refusal::new(
                Code::RateLimited,
                "persistently over the event rate: disconnecting",
            );
            let ack = inner.refuse(conn, &r, None);
            tracing::warn!(conn = conn.id, user = %conn.user.id, "closed for sending too fast");
            conn.close(super::CLOSE_RATE_LIMIT, "rate limit");
            return Err(ack);
        }
    }
    presence::touch(conn);
    let reg = inner.registry();
    let Some(dialect) = reg.dialect(&conn.dialect) else {
        return Err(inner.refuse(
            conn,
            &Refusal::new(Code::Unavailable, "dialect unloaded"),
            None,
        ));
    };
    let events = match dialect.decode_frame(
        text,
        Some(Direction::Up),
        &conn.decode_context(&inner.instance),
    ) {
        Ok(evs) => evs,
        Err(e) => {
            tracing::debug!(conn = conn.id, dialect = %conn.dialect, error = %e, "refused frame");
            inner
                .metrics
                .translation_failures
                .get_or_create(&ReasonLabels {
                    dialect: Name(conn.dialect.clone()),
                    reason: e.code(),
                })
                .inc();
            return Err(inner.refuse(conn, &Refusal::from(&e), None));
        }
    };
    drop(reg);
    for ev in &events {
        inner
            .metrics
            .events_in
            .get_or_create(&EventLabels {
                dialect: Name(conn.dialect.clone()),
                event: Name(ev.name.clone()),
            })
            .inc();
        tracing::trace!(trace_id = %ev.meta.trace_id, event = %ev.name, dialect = %conn.dialect, user = %conn.user.id, "event in");
    }
    Ok(events)
}

async fn intent(inner: &Inner, conn: &Arc<Conn>, ev: &Event) -> Result<Ack, Refusal> {
    match &*ev.name {
        "session.ping" => {
            Ok(json!({"success": true, "pong": true, "timestamp": crate::event::now_millis()}))
        }
        "presence.heartbeat" => presence::heartbeat(inner, conn, ev).await,
        "room.join" => rooms::join(inner, conn, ev).await,
        "room.leave" => rooms::leave(inner, conn, ev),
        "message.send" => messages::send(inner, conn, ev).await,
        "message.edit" => messages::edit(inner, conn, ev).await,
        "message.delete" => messages::delete(inner, conn, ev).await,
        "message.mark_read" => messages::mark_read(inner, conn, ev).await,
        "conversation.mark_read" => messages::conversation_read(inner, conn, ev),
        "reaction.add" => messages::react(inner, conn, ev, true).await,
        "reaction.remove" => messages::react(inner, conn, ev, false).await,
        "typing.start" => messages::indicator(inner, conn, ev, "typing.started"),
        "typing.stop" => messages::indicator(inner, conn, ev, "typing.stopped"),
        "recording.start" => messages::indicator(inner, conn, ev, "recording.started"),
        "recording.stop" => messages::indicator(inner, conn, ev, "recording.stopped"),
        "messages.sync" => Err(Refusal::new(
            Code::Unsupported,
            "history is served over REST; the gateway keeps no message store",
        )),
        name if name.starts_with("call.") => calls::signal(inner, conn, ev).await,
        other => Err(Refusal::new(
            Code::UnknownEvent,
            format!("`{other}` is not something a client can ask for"),
        )),
    }
}
