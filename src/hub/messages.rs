//! Messages and what hangs off them: sends (ids, server time, de-duplication, sender
//! confirmation), edits, deletes, read receipts, reactions, typing and recording.

use super::rooms::member_room;
use super::{Ack, Claim, Conn, Dedupe, ErrorCode, HubState, MessageInfo, Refusal, id_text};
use crate::bus::{Audience, RoomKey};
use crate::event::{Event, EventId, format_iso_millis, now_millis};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// `message.send` → `message.created` to the room, `message.delivered` to the sender.
pub(super) async fn send(inner: &HubState, conn: &Arc<Conn>, ev: &Event) -> Result<Ack, Refusal> {
    let (room, key) = member_room(conn, ev)?;
    let message_id = new_id();
    let client_ref = ev.str_field("clientRef").map(str::to_owned);
    // The dialect's word on duplicates, looked up only when a send needs it.
    let dialect_says = |f: fn(&crate::dialect::Dialect) -> bool| {
        inner.registry().dialect(&conn.dialect).is_some_and(f)
    };
    // What the send is known by: its clientRef, else (where the dialect says so, Clerk's
    // `${clientId}:${tempId || content}`) its content.
    let dedupe = match (&client_ref, ev.str_field("content")) {
        (Some(cref), _) => Some((cref.clone(), Dedupe::Ref)),
        (None, Some(content)) if dialect_says(|d| d.dedupes_content) => {
            Some((content_key(content), Dedupe::Content))
        }
        _ => None,
    };
    // The shared state is a help, not a gate: while it is unreachable (Redis down),
    // messages still flow (queued for other instances), without de-duplication and
    // without being remembered for edits and reactions.
    let claim = match &dedupe {
        Some((k, by)) => inner
            .store
            .claim(&conn.user.id, k, &message_id, *by)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(user = %conn.user.id, "message not de-duplicated: {e}");
                Claim::New
            }),
        None => Claim::New,
    };
    if let Claim::Seen(first) = claim {
        if dialect_says(|d| d.refuses_duplicates) {
            // As the dialect's server does: `message:failed`, nothing broadcast.
            return Err(Refusal::new(
                ErrorCode::Duplicate,
                "Message already being processed",
            ));
        }
        // A retry of a send already accepted: confirm it again, broadcast nothing.
        confirm(inner, conn, ev, &first);
        return Ok(json!({"success": true, "messageId": first, "duplicate": true}));
    }
    let at = now_millis();
    let mut body: Map<String, Value> = ev.body.clone();
    body.insert("messageId".into(), json!(message_id));
    body.insert("conversationId".into(), json!(room));
    body.insert("senderId".into(), json!(conn.user.id));
    if let Some(n) = &conn.user.name {
        body.insert("senderName".into(), json!(n));
    }
    body.entry("kind").or_insert_with(|| json!("TEXT"));
    body.insert("createdAt".into(), json!(format_iso_millis(at)));
    body.insert("updatedAt".into(), json!(format_iso_millis(at)));
    body.insert("deliveryStatus".into(), json!("DELIVERED"));
    let mut created = inner.fact("message.created", body, Some(ev), conn);
    created.meta.at = at;
    inner
        .name_recipients(&mut created, &room, &conn.user.id)
        .await;
    let info = MessageInfo {
        conversation_id: room.clone(),
        sender_id: conn.user.id.clone(),
    };
    if let Err(e) = inner.store.index_message(&message_id, info).await {
        tracing::warn!(message = %message_id, "message not indexed (edits and reactions to it will be not_found): {e}");
    }
    // To the room, and to every session of the sender, in the room or not.
    let mut audience = Audience::room(key);
    audience.rooms.push(RoomKey::user(&conn.user.id));
    inner.commit(created, audience).await?;
    confirm(inner, conn, ev, &message_id);
    Ok(json!({
        "success": true,
        "messageId": message_id,
        "conversationId": room,
        "clientRef": client_ref,
        "createdAt": format_iso_millis(at),
    }))
}

/// The de-duplication key of a send known by its content: a digest, so that the store
/// holds no message text.
fn content_key(content: &str) -> String {
    use sha2::Digest;
    format!(
        "content:{}",
        hex::encode(sha2::Sha256::digest(content.as_bytes()))
    )
}

/// `message.delivered` to the sender, where its dialect has it.
fn confirm(inner: &HubState, conn: &Arc<Conn>, ev: &Event, message_id: &str) {
    let mut body = Map::new();
    body.insert("messageId".into(), json!(message_id));
    if let Some(r) = ev.field("clientRef") {
        body.insert("clientRef".into(), r.clone());
    }
    if let Some(c) = ev.field("conversationId") {
        body.insert("conversationId".into(), c.clone());
    }
    body.insert("deliveryStatus".into(), json!("DELIVERED"));
    let delivered = inner.fact("message.delivered", body, Some(ev), conn);
    inner.send_event(conn, &delivered);
}

/// A message the sender may change: known, and theirs.
async fn own_message(
    inner: &HubState,
    conn: &Conn,
    ev: &Event,
) -> Result<(String, MessageInfo), Refusal> {
    let (id, info) = known_message(inner, ev).await?;
    if info.sender_id != conn.user.id {
        return Err(Refusal::new(
            ErrorCode::Forbidden,
            format!("message {id} belongs to another user"),
        ));
    }
    Ok((id, info))
}

async fn known_message(inner: &HubState, ev: &Event) -> Result<(String, MessageInfo), Refusal> {
    let id = id_text(ev.field("messageId"))
        .ok_or_else(|| Refusal::new(ErrorCode::BadEvent, "messageId is missing"))?;
    let info = inner.store.message(&id).await?.ok_or_else(|| {
        Refusal::new(
            ErrorCode::NotFound,
            format!("message {id} is unknown here (too old, or not sent through this gateway)"),
        )
    })?;
    Ok((id, info))
}

/// A known message in a room the sender is in (read receipts and reactions).
async fn message_in_my_room(
    inner: &HubState,
    conn: &Conn,
    ev: &Event,
) -> Result<(String, MessageInfo, RoomKey), Refusal> {
    let (id, info) = known_message(inner, ev).await?;
    let key = RoomKey::conversation(&info.conversation_id);
    if !conn.in_room(&key) {
        return Err(Refusal::new(
            ErrorCode::NotMember,
            format!("not a member of conversation {}", info.conversation_id),
        ));
    }
    Ok((id, info, key))
}

/// The body every fact about a stored message starts with.
fn about(id: &str, info: &MessageInfo) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("messageId".into(), json!(id));
    body.insert("conversationId".into(), json!(info.conversation_id));
    body
}

/// `message.edit` → `message.updated`.
pub(super) async fn edit(inner: &HubState, conn: &Arc<Conn>, ev: &Event) -> Result<Ack, Refusal> {
    let (id, info) = own_message(inner, conn, ev).await?;
    let mut body = about(&id, &info);
    body.insert("senderId".into(), json!(info.sender_id));
    body.insert(
        "content".into(),
        ev.field("content").cloned().unwrap_or(Value::Null),
    );
    body.insert("edited".into(), json!(true));
    body.insert("updatedAt".into(), json!(format_iso_millis(now_millis())));
    let mut updated = inner.fact("message.updated", body, Some(ev), conn);
    inner
        .name_recipients(&mut updated, &info.conversation_id, &conn.user.id)
        .await;
    inner
        .commit(
            updated,
            Audience::room(RoomKey::conversation(&info.conversation_id)),
        )
        .await?;
    Ok(json!({"success": true, "messageId": id}))
}

/// `message.delete` → `message.deleted`.
pub(super) async fn delete(inner: &HubState, conn: &Arc<Conn>, ev: &Event) -> Result<Ack, Refusal> {
    let (id, info) = own_message(inner, conn, ev).await?;
    let mut body = about(&id, &info);
    body.insert("senderId".into(), json!(info.sender_id));
    body.insert("deletedAt".into(), json!(format_iso_millis(now_millis())));
    let mut deleted = inner.fact("message.deleted", body, Some(ev), conn);
    inner
        .name_recipients(&mut deleted, &info.conversation_id, &conn.user.id)
        .await;
    inner.store.forget_message(&id).await?;
    inner
        .commit(
            deleted,
            Audience::room(RoomKey::conversation(&info.conversation_id)),
        )
        .await?;
    Ok(json!({"success": true, "messageId": id}))
}

/// `message.mark_read` → `message.read` to the message's room.
pub(super) async fn mark_read(
    inner: &HubState,
    conn: &Arc<Conn>,
    ev: &Event,
) -> Result<Ack, Refusal> {
    let (id, info, key) = message_in_my_room(inner, conn, ev).await?;
    let mut body = about(&id, &info);
    body.insert("userId".into(), json!(conn.user.id));
    body.insert("readAt".into(), json!(format_iso_millis(now_millis())));
    let read = inner.fact("message.read", body, Some(ev), conn);
    inner.commit(read, Audience::room(key)).await?;
    Ok(json!({"success": true, "messageId": id}))
}

/// `conversation.mark_read` → `conversation.read`.
pub(super) async fn conversation_read(
    inner: &HubState,
    conn: &Arc<Conn>,
    ev: &Event,
) -> Result<Ack, Refusal> {
    let (room, key) = member_room(conn, ev)?;
    let mut body = Map::new();
    body.insert("conversationId".into(), json!(room));
    body.insert("userId".into(), json!(conn.user.id));
    if let Some(up_to) = ev.field("upToMessageId").filter(|v| !v.is_null()) {
        body.insert("upToMessageId".into(), up_to.clone());
    }
    let up_to = id_text(ev.field("upToMessageId"));
    if let Some(n) = super::sync::newly_read(inner, &key, &conn.user.id, up_to.as_deref()).await {
        body.insert("count".into(), json!(n));
    }
    body.insert("readAt".into(), json!(format_iso_millis(now_millis())));
    let read = inner.fact("conversation.read", body, Some(ev), conn);
    inner.commit(read, Audience::room(key)).await?;
    Ok(json!({"success": true, "conversationId": room}))
}

/// `reaction.add` / `reaction.remove` → `reaction.added` / `reaction.removed`, with the
/// emoji's count after the change.
pub(super) async fn react(
    inner: &HubState,
    conn: &Arc<Conn>,
    ev: &Event,
    add: bool,
) -> Result<Ack, Refusal> {
    let (id, info, key) = message_in_my_room(inner, conn, ev).await?;
    let emoji = ev
        .str_field("emoji")
        .ok_or_else(|| Refusal::new(ErrorCode::BadEvent, "emoji is missing"))?;
    let count = inner
        .store
        .react(&id, emoji, &conn.user.id, add)
        .await?
        .unwrap_or(0);
    let mut body = about(&id, &info);
    body.insert("emoji".into(), json!(emoji));
    body.insert("userId".into(), json!(conn.user.id));
    body.insert("reactionCount".into(), json!(count));
    if add {
        body.insert("reactionId".into(), json!(new_id()));
        body.insert("createdAt".into(), json!(format_iso_millis(now_millis())));
    }
    let name = if add {
        "reaction.added"
    } else {
        "reaction.removed"
    };
    let fact = inner.fact(name, body, Some(ev), conn);
    inner.commit(fact, Audience::room(key)).await?;
    Ok(json!({"success": true, "messageId": id, "count": count}))
}

/// Typing and recording: to the room's other members (not the sender's other devices).
pub(super) async fn indicator(
    inner: &HubState,
    conn: &Arc<Conn>,
    ev: &Event,
    fact: &str,
) -> Result<Ack, Refusal> {
    let (room, key) = member_room(conn, ev)?;
    let mut body = Map::new();
    body.insert("conversationId".into(), json!(room));
    body.insert("userId".into(), json!(conn.user.id));
    if let Some(n) = &conn.user.name {
        body.insert("userName".into(), json!(n));
    }
    let fact = inner.fact(fact, body, Some(ev), conn);
    let mut audience = Audience::room(key);
    audience.except_user = Some(Arc::from(conn.user.id.as_str()));
    inner.commit(fact, audience).await?;
    Ok(json!({"success": true}))
}

/// A new server-side id (UUID v4).
pub(super) fn new_id() -> String {
    let mut s = String::new();
    EventId::random().with_str(|id| s.push_str(id));
    s
}
