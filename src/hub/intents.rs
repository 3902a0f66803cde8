//! From a client's canonical intent to the hub's answer: one handler per intent. Every
//! refusal reaches the sender in its own dialect; the connection stays open.

use super::{Ack, Conn, ErrorCode, HubState, Refusal, calls, messages, presence, rooms, sync};
use crate::event::Event;
use serde_json::json;
use std::sync::Arc;

/// One decoded intent: counted, handled, refused in the sender's dialect if it must be.
pub(super) async fn handle_event(inner: &HubState, conn: &Arc<Conn>, ev: &Event) -> Ack {
    conn.check_fault();
    match intent(inner, conn, ev).await {
        Ok(ack) => ack,
        Err(r) => {
            tracing::debug!(conn = conn.id, event = %ev.name, code = %r.code, "refused: {}", r.message);
            inner.refuse(conn, &r, Some(ev))
        }
    }
}

async fn intent(inner: &HubState, conn: &Arc<Conn>, ev: &Event) -> Result<Ack, Refusal> {
    match &*ev.name {
        "session.ping" => {
            Ok(json!({"success": true, "pong": true, "timestamp": crate::event::now_millis()}))
        }
        "presence.heartbeat" => presence::heartbeat(inner, conn, ev).await,
        "room.join" => rooms::join(inner, conn, ev).await,
        "room.leave" => rooms::leave(inner, conn, ev).await,
        "message.send" => messages::send(inner, conn, ev).await,
        "message.edit" => messages::edit(inner, conn, ev).await,
        "message.delete" => messages::delete(inner, conn, ev).await,
        "message.mark_read" => messages::mark_read(inner, conn, ev).await,
        "conversation.mark_read" => messages::conversation_read(inner, conn, ev).await,
        "reaction.add" => messages::react(inner, conn, ev, true).await,
        "reaction.remove" => messages::react(inner, conn, ev, false).await,
        "typing.start" => messages::indicator(inner, conn, ev, "typing.started").await,
        "typing.stop" => messages::indicator(inner, conn, ev, "typing.stopped").await,
        "recording.start" => messages::indicator(inner, conn, ev, "recording.started").await,
        "recording.stop" => messages::indicator(inner, conn, ev, "recording.stopped").await,
        "messages.sync" => sync::sync(inner, conn, ev).await,
        name if name.starts_with("call.") => calls::signal(inner, conn, ev).await,
        other => Err(Refusal::new(
            ErrorCode::UnknownEvent,
            format!("`{other}` is not something a client can ask for"),
        )),
    }
}
