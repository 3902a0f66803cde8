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

/// `count` of a `conversation.read` (Chat Service's): how many messages of others the
/// reader marks read now, from the room history: those after its previous read (the
/// message that one went up to, or the read itself when it named none) up to
/// `up_to` (included; without it, the latest). `None` with the history off; at most what
/// the history holds.
pub(super) async fn newly_read(
    inner: &HubState,
    key: &crate::bus::RoomKey,
    user: &str,
    up_to: Option<&str>,
) -> Option<u64> {
    if !inner.history.is_on() {
        return None;
    }
    let held = inner.history.room(key).await.ok()?;
    let events: Vec<&Event> = held.kept.iter().map(|k| &k.delivery.event).collect();
    let is_message = |e: &Event, id: &str| {
        &*e.name == "message.created" && id_text(e.field("messageId")).as_deref() == Some(id)
    };
    // Where the reader's previous read left off.
    let from = events
        .iter()
        .rposition(|e| &*e.name == "conversation.read" && e.str_field("userId") == Some(user))
        .map_or(0, |i| match id_text(events[i].field("upToMessageId")) {
            Some(id) => events[..i]
                .iter()
                .rposition(|e| is_message(e, &id))
                .map_or(i + 1, |m| m + 1),
            None => i + 1,
        });
    let to = match up_to {
        Some(id) => events
            .iter()
            .rposition(|e| is_message(e, id))
            .map_or(0, |m| m + 1),
        None => events.len(),
    };
    let count = events
        .get(from..to.max(from))
        .unwrap_or_default()
        .iter()
        .filter(|e| &*e.name == "message.created" && e.str_field("senderId") != Some(user))
        .count();
    Some(count as u64)
}
