//! `messages.sync` (Chat Service's `messages:sync {conversationId, lastMessageId}`):
//! what a member missed in a conversation, from the room history, answered in the ack.
//!
//! The shape: `{success, conversationId, messages, events, complete, truncated}`.
//! `messages` are the `message.created` facts after `lastMessageId`, each the payload
//! the client's own `message:new` carries (so a client renders them with the code it
//! renders live messages with); `events` are every kept fact after it (edits, deletes,
//! reactions, reads too), each `{event, data}` as its dialect names it, in order.
//! `complete` is `false` (and `truncated` `true`) when the history no longer reaches
//! back to `lastMessageId` (too old, evicted, expired): the list is then what is there.

use super::rooms::member_room;
use super::{Ack, Conn, ErrorCode, HubState, Refusal, id_text};
use crate::dialect::Direction;
use crate::event::Event;
use serde_json::{Value, json};
use std::sync::Arc;

/// Answers `messages.sync` from the history of the conversation.
pub(super) async fn sync(inner: &HubState, conn: &Arc<Conn>, ev: &Event) -> Result<Ack, Refusal> {
    if !inner.history.is_on() {
        return Err(Refusal::new(
            ErrorCode::Unsupported,
            "room history is off (history.size = 0): sync over REST",
        ));
    }
    let (room, key) = member_room(conn, ev)?;
    let last = id_text(ev.field("lastMessageId"));
    let held = inner
        .history
        .room(&key)
        .await
        .map_err(|e| Refusal::new(ErrorCode::Unavailable, e.to_string()))?;
    let created = |e: &Event| &*e.name == "message.created";
    let found = last.as_ref().and_then(|id| {
        held.kept.iter().position(|k| {
            let e = &k.delivery.event;
            created(e) && id_text(e.field("messageId")).as_ref() == Some(id)
        })
    });
    let (from, complete) = match (&last, found) {
        (None, _) => (0, held.complete),
        (Some(_), Some(i)) => (i + 1, true),
        (Some(_), None) => (0, false),
    };
    let reg = inner.registry();
    let dialect = reg.dialect(&conn.dialect);
    let mut messages = Vec::new();
    let mut events = Vec::new();
    for k in held.kept.iter().skip(from) {
        let a = &k.delivery.audience;
        if a.except_user.as_deref() == Some(conn.user.id.as_str()) {
            continue;
        }
        let e = &k.delivery.event;
        let Some(enc) = dialect.and_then(|d| d.encode(e, Direction::Down).ok()) else {
            continue;
        };
        let data = enc.payload.map_or(Value::Null, |t| t.into_value());
        if created(e) {
            messages.push(data.clone());
        }
        events.push(json!({"event": &*enc.name, "data": data}));
    }
    Ok(json!({
        "success": true,
        "conversationId": room,
        "messages": messages,
        "events": events,
        "complete": complete,
        "truncated": !complete,
    }))
}
