//! What the server API asks the hub, and the typed answers (its OpenAPI document is
//! generated from them): a user's presence (from the shared store, so any instance
//! answers for all), a room's online members (this instance's from its rooms, the others'
//! from the store, for instances still alive), this instance's connections by dialect and
//! transport, and the instances alive (each announces itself in the store with the
//! presence TTL).

use super::{Hub, HubState, SocketPresence, StoreError};
use crate::bus::RoomKey;
use crate::config::Transport;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use utoipa::ToSchema;

/// The rooms with the most connections each instance names in its announcement.
pub const LARGEST_ROOMS: usize = 20;

/// The most members a room's presence lists (the answer says when it was cut).
pub const MAX_ROOM_PRESENCE: usize = 1000;

/// A user's presence in Phase 10's `PresenceSnapshot` shape (the one seed system that
/// specifies one), each socket also naming its dialect, transport and instance.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PresenceSnapshot {
    /// The user.
    pub user_id: String,
    /// Whether any connection of the user is open, on any instance.
    pub is_online: bool,
    /// Online: the latest activity of the user's connections; offline: when the user's
    /// last connection went (remembered 30 days); Unix ms. `null` for a user not seen.
    pub last_seen: Option<i64>,
    /// The user's connections.
    pub sockets: Vec<SocketSnapshot>,
}

/// One connection of a user.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SocketSnapshot {
    /// Its client-visible id.
    pub socket_id: String,
    /// When it connected, Unix ms.
    pub connected_at: i64,
    /// Its last activity, Unix ms.
    pub last_seen: i64,
    /// Its `User-Agent` (with `privacy.client_info` only).
    pub user_agent: Option<String>,
    /// Its peer address (with `privacy.client_info` only).
    pub ip: Option<String>,
    /// The dialect it speaks.
    pub dialect: Option<String>,
    /// `websocket` or `socketio`.
    pub transport: Option<String>,
    /// The instance serving it.
    pub instance: Option<String>,
}

/// A conversation's online members.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomPresence {
    /// The conversation.
    pub conversation_id: String,
    /// How many members are online (of those listed).
    pub count: usize,
    /// Their presence.
    pub online: Vec<PresenceSnapshot>,
    /// More members than the answer lists (at most 1,000).
    pub truncated: bool,
}

/// Connections of one dialect over one transport.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RouteCount {
    /// The dialect.
    pub dialect: String,
    /// `websocket` or `socketio`.
    pub transport: String,
    /// Connections open.
    pub connections: u64,
}

/// A conversation and its connections.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RoomSize {
    /// The conversation.
    pub conversation_id: String,
    /// Connections in it.
    pub connections: u64,
}

/// One instance, as it announced itself.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InstanceInfo {
    /// Its id.
    pub instance: String,
    /// Its bus (`local`, `redis`, `redis-cluster`).
    pub bus: String,
    /// Connections open on it.
    pub connections: u64,
    /// Its connections by dialect and transport.
    pub by_route: Vec<RouteCount>,
    /// Conversations with a connection on it.
    pub rooms: u64,
    /// Its largest conversations.
    pub largest_rooms: Vec<RoomSize>,
    /// When it announced this, Unix ms.
    pub announced_at: i64,
}

fn snapshot(user: &str, sockets: &[SocketPresence]) -> PresenceSnapshot {
    PresenceSnapshot {
        user_id: user.to_string(),
        is_online: !sockets.is_empty(),
        last_seen: sockets.iter().map(|s| s.last_seen).max(),
        sockets: sockets
            .iter()
            .map(|s| SocketSnapshot {
                socket_id: s.socket_id.to_string(),
                connected_at: s.connected_at,
                last_seen: s.last_seen,
                user_agent: s.user_agent.as_deref().map(str::to_owned),
                ip: s.ip.map(|ip| ip.to_string()),
                dialect: s.dialect.as_deref().map(str::to_owned),
                transport: s.transport.as_deref().map(str::to_owned),
                instance: s.instance.as_deref().map(str::to_owned),
            })
            .collect(),
    }
}

impl HubState {
    /// This instance now: its id, bus, connections by dialect and transport, rooms.
    pub(super) fn instance_info(&self) -> InstanceInfo {
        let mut by: BTreeMap<(String, &'static str), u64> = BTreeMap::new();
        for c in super::read(&self.conns).values() {
            let transport = match c.transport {
                Transport::Websocket => "websocket",
                Transport::Socketio => "socketio",
            };
            *by.entry((c.dialect.to_string(), transport)).or_default() += 1;
        }
        let rooms = super::read(&self.rooms);
        let mut largest: Vec<(&str, usize)> = rooms
            .iter()
            .filter_map(|(k, m)| match k {
                RoomKey::Conversation(id) => Some((&**id, m.len())),
                RoomKey::User(_) | RoomKey::Dialect(_) => None,
            })
            .collect();
        let count = largest.len() as u64;
        largest.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        largest.truncate(LARGEST_ROOMS);
        InstanceInfo {
            instance: self.instance.to_string(),
            bus: self.bus.kind().to_string(),
            connections: by.values().sum(),
            by_route: by
                .into_iter()
                .map(|((dialect, transport), connections)| RouteCount {
                    dialect,
                    transport: transport.to_string(),
                    connections,
                })
                .collect(),
            rooms: count,
            largest_rooms: largest
                .into_iter()
                .map(|(id, n)| RoomSize {
                    conversation_id: id.to_string(),
                    connections: n as u64,
                })
                .collect(),
            announced_at: crate::event::now_millis(),
        }
    }
}

impl Hub {
    /// A user's presence, whichever instance their connections are on.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn presence_of(&self, user: &str) -> Result<PresenceSnapshot, StoreError> {
        let sockets = self.state.store.presence_sockets(user).await?;
        let mut p = snapshot(user, &sockets);
        if !p.is_online {
            p.last_seen = self.state.store.last_seen(user).await?;
        }
        Ok(p)
    }

    /// The presence of each of `users`, in their order (asked at once: one round trip's
    /// time with Redis, not one per user).
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn presence_of_many(
        &self,
        users: &[String],
    ) -> Result<Vec<PresenceSnapshot>, StoreError> {
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
    pub async fn room_presence(&self, room: &str) -> Result<RoomPresence, StoreError> {
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
                .into_iter()
                .map(|i| i.instance)
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
        let online: Vec<PresenceSnapshot> = self
            .presence_of_many(&users)
            .await?
            .into_iter()
            .filter(|p| p.is_online)
            .collect();
        Ok(RoomPresence {
            conversation_id: room.to_string(),
            count: online.len(),
            online,
            truncated,
        })
    }

    /// The conversations of a connection of this instance, by its socket id (`None`: no
    /// such connection here).
    pub fn rooms_of_socket(&self, socket_id: &str) -> Option<Vec<String>> {
        super::read(&self.state.conns)
            .values()
            .find(|c| &*c.socket_id == socket_id)
            .map(|c| c.conversation_ids())
    }

    /// What the instances alive last announced (none in process).
    async fn announced(&self) -> Result<Vec<InstanceInfo>, StoreError> {
        Ok(self
            .state
            .store
            .instances()
            .await?
            .iter()
            .filter_map(|j| serde_json::from_str::<InstanceInfo>(j).ok())
            .collect())
    }

    /// Every instance alive (this one as it is now; the others as they last announced),
    /// in id order.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn instances(&self) -> Result<Vec<InstanceInfo>, StoreError> {
        let me = self.state.instance_info();
        let mut all: Vec<InstanceInfo> = self
            .announced()
            .await?
            .into_iter()
            .filter(|i| i.instance != me.instance)
            .collect();
        all.push(me);
        all.sort_by(|a, b| a.instance.cmp(&b.instance));
        Ok(all)
    }
}
