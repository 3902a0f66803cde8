//! Presence across devices: online at a user's first connection, offline after the
//! last, announced to the rooms the user is in; every connection change also reaches
//! the user's own sessions with the `sockets[]` snapshot (Phase 10's `presence:update`).

use super::{Ack, Conn, Expired, HubState, PresenceChange, Refusal, RoomMember, SocketPresence};
use crate::bus::{Audience, RoomKey};
use crate::event::{Event, now_millis};
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// The presence snapshot of one local connection.
fn snapshot_of(inner: &HubState, conn: &Conn) -> SocketPresence {
    SocketPresence {
        socket_id: conn.socket_id.clone(),
        connected_at: conn.connected_at,
        last_seen: conn.last_seen(),
        user_agent: conn.user_agent.clone(),
        ip: conn.ip,
        dialect: Some(conn.dialect.clone()),
        transport: Some(std::borrow::Cow::Borrowed(match conn.transport {
            crate::config::Transport::Websocket => "websocket",
            crate::config::Transport::Socketio => "socketio",
        })),
        instance: Some(inner.instance.clone()),
    }
}

/// Records (or forgets) `conn` in `rooms` in the shared store, for the server API's room
/// presence.
pub(super) async fn record_rooms(inner: &HubState, conn: &Conn, rooms: &[String], present: bool) {
    let member = RoomMember {
        instance: &inner.instance,
        conn: conn.id,
        user: &conn.user.id,
    };
    if let Err(e) = inner.store.room_members(rooms, member, present).await {
        tracing::warn!(user = %conn.user.id, "room membership not recorded: {e}");
    }
}

pub(super) async fn connected(inner: &HubState, conn: &Arc<Conn>) {
    let rooms = conn.conversation_ids();
    if let Err(e) = inner.store.user_rooms_add(&conn.user.id, &rooms).await {
        tracing::warn!(user = %conn.user.id, "rooms not recorded: {e}");
    }
    record_rooms(inner, conn, &rooms, true).await;
    match inner
        .store
        .presence_add(&conn.user.id, snapshot_of(inner, conn))
        .await
    {
        Ok(change) => {
            let rooms: Vec<RoomKey> = conn.rooms().iter().cloned().collect();
            announce(inner, conn, change, &rooms, None);
        }
        Err(e) => tracing::warn!(user = %conn.user.id, "presence not recorded: {e}"),
    }
}

pub(super) async fn disconnected(inner: &HubState, conn: &Arc<Conn>, rooms: &[RoomKey]) {
    let ids: Vec<String> = rooms
        .iter()
        .filter_map(|r| match r {
            RoomKey::Conversation(id) => Some(id.to_string()),
            RoomKey::User(_) | RoomKey::Dialect(_) => None,
        })
        .collect();
    record_rooms(inner, conn, &ids, false).await;
    match inner
        .store
        .presence_remove(&conn.user.id, &conn.socket_id)
        .await
    {
        Ok(change) if change.transition == Some(false) => {
            if let Err(e) = inner.store.set_last_seen(&conn.user.id, now_millis()).await {
                tracing::warn!(user = %conn.user.id, "last seen not recorded: {e}");
            }
            // Offline: to every room any of the user's connections was in.
            let mut all: Vec<RoomKey> = rooms.to_vec();
            match inner.store.user_rooms_take(&conn.user.id).await {
                Ok(ids) => all.extend(ids.iter().map(|id| RoomKey::conversation(id))),
                Err(e) => tracing::warn!(user = %conn.user.id, "rooms not read: {e}"),
            }
            all.sort();
            all.dedup();
            announce(inner, conn, change, &all, None);
        }
        Ok(change) => announce(inner, conn, change, rooms, None),
        Err(e) => tracing::warn!(user = %conn.user.id, "presence not removed (it expires): {e}"),
    }
}

/// Every third of the presence TTL: vouches for every local connection (in batches,
/// not a round trip each), then expires what nobody vouched for (the connections of an
/// instance that died) and announces those users offline to every room they were in
/// and to their own sessions: within TTL + one period of the instance's death.
pub(super) async fn keep(inner: std::sync::Weak<HubState>, ttl: std::time::Duration) {
    let period = (ttl / 3).max(std::time::Duration::from_millis(100));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        let conns: Vec<Arc<Conn>> = super::read(&inner.conns)
            .values()
            .filter(|c| c.member)
            .cloned()
            .collect();
        let snaps: Vec<SocketPresence> = conns.iter().map(|c| snapshot_of(&inner, c)).collect();
        let vouched: Vec<(&str, &SocketPresence)> = conns
            .iter()
            .zip(&snaps)
            .map(|(c, s)| (c.user.id.as_str(), s))
            .collect();
        if let Err(e) = inner.store.presence_refresh_many(&vouched).await {
            tracing::warn!("presence not refreshed: {e}");
        }
        drop(vouched);
        inner.save_all_live(&conns).await;
        // This instance is alive, with what it serves (the server API's `/api/info`):
        // told to the other instances, so only with a shared store.
        if inner.store.is_shared() {
            let info = serde_json::to_string(&inner.instance_info()).unwrap_or_default();
            if let Err(e) = inner
                .store
                .announce_instance(&inner.instance, &info, ttl)
                .await
            {
                tracing::warn!("instance not announced: {e}");
            }
        }
        let gone = match inner.store.presence_expire().await {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!("presence not swept: {e}");
                continue;
            }
        };
        for Expired { user, rooms } in gone {
            if let Err(e) = inner.store.set_last_seen(&user, now_millis()).await {
                tracing::warn!(%user, "last seen not recorded: {e}");
            }
            let mut body = Map::new();
            body.insert("userId".into(), json!(user));
            body.insert("status".into(), json!("offline"));
            body.insert("lastSeen".into(), json!(now_millis()));
            body.insert("sockets".into(), json!([]));
            let ev = Event::new("presence.changed", body);
            let mut audience = Audience::room(RoomKey::user(&user));
            audience
                .rooms
                .extend(rooms.iter().map(|r| RoomKey::conversation(r)));
            if let Err(e) = inner.publish(ev, audience) {
                tracing::warn!(%user, "expired presence not announced: {}", e.message);
            }
            tracing::info!(%user, rooms = rooms.len(), "presence expired (its instance stopped vouching)");
        }
    }
}

/// Activity on a connection renews its presence (recorded locally; the keeper writes it).
pub(super) fn touch(conn: &Conn) {
    conn.seen(now_millis());
}

/// `presence.heartbeat`: renews presence and sends the snapshot to the user's sessions.
pub(super) async fn heartbeat(
    inner: &HubState,
    conn: &Arc<Conn>,
    ev: &Event,
) -> Result<Ack, Refusal> {
    touch(conn);
    inner
        .store
        .presence_refresh(&conn.user.id, &snapshot_of(inner, conn))
        .await?;
    let sockets = inner.store.presence_sockets(&conn.user.id).await?;
    let change = PresenceChange {
        transition: None,
        sockets,
    };
    announce(inner, conn, change, &[], Some(ev));
    Ok(json!({"success": true}))
}

fn announce(
    inner: &HubState,
    conn: &Arc<Conn>,
    change: PresenceChange,
    rooms: &[RoomKey],
    cause: Option<&Event>,
) {
    let online = change.transition.unwrap_or(!change.sockets.is_empty());
    let now = now_millis();
    let mut body = Map::new();
    body.insert("userId".into(), json!(conn.user.id));
    if let Some(n) = &conn.user.name {
        body.insert("userName".into(), json!(n));
    }
    body.insert(
        "status".into(),
        json!(if online { "online" } else { "offline" }),
    );
    let last_seen = change
        .sockets
        .iter()
        .map(|s| s.last_seen)
        .max()
        .unwrap_or(now);
    body.insert("lastSeen".into(), json!(last_seen));
    let sockets: Vec<Value> = change
        .sockets
        .iter()
        .map(|s| {
            let mut o = Map::new();
            o.insert("socketId".into(), json!(s.socket_id));
            o.insert("connectedAt".into(), json!(s.connected_at));
            o.insert("lastSeen".into(), json!(s.last_seen));
            // Present only where `privacy.client_info` kept them.
            if let Some(ua) = &s.user_agent {
                o.insert("userAgent".into(), json!(ua));
            }
            if let Some(ip) = &s.ip {
                o.insert("ip".into(), json!(ip));
            }
            Value::Object(o)
        })
        .collect();
    body.insert("sockets".into(), Value::Array(sockets));
    let ev = inner.fact("presence.changed", body, cause, conn);
    let audience = if change.transition.is_some() {
        // A transition: everyone who shares a room with the user, and the user's own
        // sessions.
        let mut a = Audience::default();
        let shared = |r: &&RoomKey| !matches!(r, RoomKey::Dialect(_));
        a.rooms.extend(rooms.iter().filter(shared).cloned());
        let own = RoomKey::user(&conn.user.id);
        if !a.rooms.contains(&own) {
            a.rooms.push(own);
        }
        a
    } else {
        Audience::room(RoomKey::user(&conn.user.id))
    };
    // Only a transition (online, offline) is news beyond the user's own sessions.
    let export = change.transition.is_some();
    if let Err(e) = inner.publish_with(ev, audience, export) {
        tracing::warn!(user = %conn.user.id, "presence not announced: {}", e.message);
    }
}
