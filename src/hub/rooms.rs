//! Joining and leaving conversation rooms, under the membership policy.

use super::{Ack, Conn, ErrorCode, HubState, Refusal, id_text};
use crate::bus::{Audience, RoomKey};
use crate::config::Membership;
use crate::event::Event;
use serde_json::{Map, json};
use std::sync::Arc;

/// `room.join {conversationId}`: the policy decides; members of the room learn of it
/// (`room.joined`); the ack says `{success, message}`.
pub(super) async fn join(inner: &HubState, conn: &Arc<Conn>, ev: &Event) -> Result<Ack, Refusal> {
    let room = id_text(ev.field("conversationId"))
        .ok_or_else(|| Refusal::new(ErrorCode::BadEvent, "conversationId is missing"))?;
    if !may_join(inner.settings.membership, conn, &room) {
        return Err(Refusal::new(
            ErrorCode::Forbidden,
            format!("not allowed to join conversation {room}"),
        ));
    }
    let key = RoomKey::conversation(&room);
    let max = inner.settings.max_rooms;
    if !conn.in_room(&key) && conn.conversation_ids().len() >= max {
        return Err(Refusal::new(
            ErrorCode::TooManyRooms,
            format!("a connection may be in {max} rooms; leave one first"),
        ));
    }
    if inner.join(conn, key.clone()) {
        if let Err(e) = inner
            .store
            .user_rooms_add(&conn.user.id, std::slice::from_ref(&room))
            .await
        {
            // Only the offline announcement to this room depends on it.
            tracing::warn!(user = %conn.user.id, %room, "room not recorded for presence: {e}");
        }
        super::presence::record_rooms(inner, conn, std::slice::from_ref(&room), true).await;
        inner.save_live(conn).await;
        let mut body = Map::new();
        body.insert("conversationId".into(), json!(room));
        body.insert("userId".into(), json!(conn.user.id));
        if let Some(n) = &conn.user.name {
            body.insert("userName".into(), json!(n));
        }
        let joined = inner.fact("room.joined", body, Some(ev), conn);
        inner.commit(joined, Audience::room(key)).await?;
    }
    Ok(
        json!({"success": true, "message": format!("joined conversation {room}"), "conversationId": room}),
    )
}

/// `room.leave {conversationId}`.
pub(super) async fn leave(inner: &HubState, conn: &Arc<Conn>, ev: &Event) -> Result<Ack, Refusal> {
    let room = id_text(ev.field("conversationId"))
        .ok_or_else(|| Refusal::new(ErrorCode::BadEvent, "conversationId is missing"))?;
    if conn.in_room(&RoomKey::conversation(&room)) {
        inner.leave(conn, &RoomKey::conversation(&room));
        super::presence::record_rooms(inner, conn, std::slice::from_ref(&room), false).await;
        inner.save_live(conn).await;
    }
    Ok(
        json!({"success": true, "message": format!("left conversation {room}"), "conversationId": room}),
    )
}

/// Whether the policy lets `conn` into `room`.
pub(super) fn may_join(policy: Membership, conn: &Conn, room: &str) -> bool {
    match policy {
        Membership::Open => true,
        Membership::Claims => conn
            .claims
            .as_ref()
            .is_some_and(|rooms| rooms.iter().any(|r| r == room)),
    }
}

/// The conversation room an event addresses, if the sender is in it (seed 003's
/// participation check).
pub(super) fn member_room(conn: &Conn, ev: &Event) -> Result<(String, RoomKey), Refusal> {
    let room = id_text(ev.field("conversationId"))
        .ok_or_else(|| Refusal::new(ErrorCode::BadEvent, "conversationId is missing"))?;
    let key = RoomKey::conversation(&room);
    if !conn.in_room(&key) {
        return Err(Refusal::new(
            ErrorCode::NotMember,
            format!("not a member of conversation {room}: join it first"),
        ));
    }
    Ok((room, key))
}
