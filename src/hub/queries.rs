//! What the server API asks the hub: a user's presence (from the shared store, so any
//! instance answers for all), a room's online members (this instance's from its rooms,
//! the others' from the store, for instances still alive), this instance's connections
//! by dialect and transport, and the instances alive (each announces itself in the store
//! with the presence TTL).

use super::{Hub, HubState, SocketPresence, StoreError};
use crate::bus::RoomKey;
use crate::config::Transport;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// The rooms with the most connections each instance names in its announcement.
pub const LARGEST_ROOMS: usize = 20;

/// The most members a room's presence lists (the answer says when it was cut).
pub const MAX_ROOM_PRESENCE: usize = 1000;

/// A user's presence in Phase 10's `PresenceSnapshot` shape (the one seed system that
/// specifies one), each socket also naming its dialect, transport and instance.
fn snapshot(user: &str, sockets: &[SocketPresence]) -> Value {
    let last_seen = sockets.iter().map(|s| s.last_seen).max();
    let sockets: Vec<Value> = sockets
        .iter()
        .map(|s| {
            json!({
                "socketId": s.socket_id,
                "connectedAt": s.connected_at,
                "lastSeen": s.last_seen,
                "userAgent": s.user_agent,
                "ip": s.ip,
                "dialect": s.dialect,
                "transport": s.transport,
                "instance": s.instance,
            })
        })
        .collect();
    json!({
        "userId": user,
        "isOnline": !sockets.is_empty(),
        "lastSeen": last_seen,
        "sockets": sockets,
    })
}

impl HubState {
    /// This instance now: its id, bus, connections by dialect and transport.
    pub(super) fn instance_info(&self) -> Value {
        let mut by: BTreeMap<(String, &'static str), u64> = BTreeMap::new();
        for c in super::read(&self.conns).values() {
            let transport = match c.transport {
                Transport::Websocket => "websocket",
                Transport::Socketio => "socketio",
            };
            *by.entry((c.dialect.to_string(), transport)).or_default() += 1;
        }
        let total: u64 = by.values().sum();
        let routes: Vec<Value> = by
            .into_iter()
            .map(|((dialect, transport), n)| {
                json!({"dialect": dialect, "transport": transport, "connections": n})
            })
            .collect();
        let mut m = Map::new();
        m.insert("instance".into(), json!(self.instance));
        m.insert("bus".into(), json!(self.bus.kind()));
        m.insert("connections".into(), json!(total));
        m.insert("byRoute".into(), Value::Array(routes));
        let rooms = super::read(&self.rooms);
        let mut largest: Vec<(&str, usize)> = rooms
            .iter()
            .filter_map(|(k, m)| match k {
                RoomKey::Conversation(id) => Some((&**id, m.len())),
                RoomKey::User(_) => None,
            })
            .collect();
        m.insert("rooms".into(), json!(largest.len()));
        largest.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        largest.truncate(LARGEST_ROOMS);
        let largest: Vec<Value> = largest
            .into_iter()
            .map(|(id, n)| json!({"conversationId": id, "connections": n}))
            .collect();
        m.insert("largestRooms".into(), Value::Array(largest));
        drop(rooms);
        m.insert("announcedAt".into(), json!(crate::event::now_millis()));
        Value::Object(m)
    }
}

impl Hub {
    /// A user's presence, whichever instance their connections are on.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn presence_of(&self, user: &str) -> Result<Value, StoreError> {
        let sockets = self.state.store.presence_sockets(user).await?;
        Ok(snapshot(user, &sockets))
    }

    /// The presence of each of `users`, in their order (asked at once: one round trip's
    /// time with Redis, not one per user).
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn presence_of_many(&self, users: &[String]) -> Result<Vec<Value>, StoreError> {
        let asks = users.iter().map(|u| self.presence_of(u));
        futures_util::future::join_all(asks)
            .await
            .into_iter()
            .collect()
    }

    /// The online members of conversation `room`, on every instance (at most
    /// [`MAX_ROOM_PRESENCE`], `truncated` saying so); an unknown room has none.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn room_presence(&self, room: &str) -> Result<Value, StoreError> {
        let me = self.instance();
        let mut users: BTreeSet<String> = super::read(&self.state.rooms)
            .get(&RoomKey::conversation(room))
            .map(|m| m.iter().map(|c| c.user.id.clone()).collect())
            .unwrap_or_default();
        let recorded = self.state.store.room_members_of(room).await?;
        if !recorded.is_empty() {
            let alive: HashSet<String> = self
                .announced()
                .await?
                .iter()
                .filter_map(|v| v["instance"].as_str().map(str::to_owned))
                .collect();
            let mut gone = Vec::new();
            for (field, user) in recorded {
                match field.rsplit_once(':') {
                    // This instance's members are its rooms' (above).
                    Some((i, _)) if i == me => {}
                    Some((i, _)) if alive.contains(i) => {
                        users.insert(user);
                    }
                    _ => gone.push(field),
                }
            }
            if let Err(e) = self.state.store.forget_room_members(room, &gone).await {
                tracing::warn!(%room, "members of instances gone not forgotten: {e}");
            }
        }
        let truncated = users.len() > MAX_ROOM_PRESENCE;
        let users: Vec<String> = users.into_iter().take(MAX_ROOM_PRESENCE).collect();
        let online: Vec<Value> = self
            .presence_of_many(&users)
            .await?
            .into_iter()
            .filter(|p| p["isOnline"] == true)
            .collect();
        Ok(json!({
            "conversationId": room,
            "count": online.len(),
            "online": online,
            "truncated": truncated,
        }))
    }

    /// What the instances alive last announced (none in process).
    async fn announced(&self) -> Result<Vec<Value>, StoreError> {
        Ok(self
            .state
            .store
            .instances()
            .await?
            .iter()
            .filter_map(|j| serde_json::from_str::<Value>(j).ok())
            .collect())
    }

    /// Every instance alive (this one as it is now; the others as they last announced),
    /// in id order.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn instances(&self) -> Result<Vec<Value>, StoreError> {
        let me = self.state.instance_info();
        let mut all: Vec<Value> = self
            .announced()
            .await?
            .into_iter()
            .filter(|v| v["instance"] != me["instance"])
            .collect();
        all.push(me);
        all.sort_by(|a, b| a["instance"].as_str().cmp(&b["instance"].as_str()));
        Ok(all)
    }
}
