//! The hub's shared state: presence per user across devices, the call busy flags, the
//! de-duplication window and the recent-message index. One interface, two stores: the
//! in-process one (one instance) and Redis (every instance shares it, under the specs'
//! own keys, everything with a TTL).

mod claims;
mod local;
mod redis;
mod redis_admin;
mod sharded;

pub use local::LocalStore;
pub use redis::RedisStore;

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// One connection of a user, for presence snapshots (`presence:update`'s `sockets[]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SocketPresence {
    /// The connection's client-visible id.
    pub socket_id: Arc<str>,
    /// When it connected, Unix ms.
    pub connected_at: i64,
    /// Last activity, Unix ms.
    pub last_seen: i64,
    /// Its `User-Agent` (kept only with `privacy.client_info`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<Arc<str>>,
    /// Its peer address (kept only with `privacy.client_info`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// The dialect it speaks (for the server API's presence queries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialect: Option<Arc<str>>,
    /// Its transport: `websocket` or `socketio`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<Cow<'static, str>>,
    /// The instance serving it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<Arc<str>>,
}

/// How long when a user went offline is remembered.
pub const LAST_SEEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// One connection in a room, as the shared store records it.
#[derive(Debug, Clone, Copy)]
pub struct RoomMember<'a> {
    /// The instance serving it.
    pub instance: &'a str,
    /// Its id there.
    pub conn: u64,
    /// Its user.
    pub user: &'a str,
}

/// A user's presence after a change.
#[derive(Debug, Clone, PartialEq)]
pub struct PresenceChange {
    /// The user's first connection came (`Some(true)`), the last went (`Some(false)`),
    /// or neither.
    pub transition: Option<bool>,
    /// The user's connections after the change.
    pub sockets: Vec<SocketPresence>,
}

/// A user whose every connection expired (its instance stopped vouching for them), and
/// the rooms its connections were in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    /// The user, now offline.
    pub user: String,
    /// The conversation rooms to tell.
    pub rooms: Vec<String>,
}

/// What the index remembers of a message.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageInfo {
    /// Its conversation.
    pub conversation_id: String,
    /// Its author.
    pub sender_id: String,
}

/// Whether a clientRef was seen before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First time: go on.
    New,
    /// Seen within the window: the message id it got then.
    Seen(String),
}

/// What a send is de-duplicated by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dedupe {
    /// Its clientRef (tempId): for `dedup_window`.
    Ref,
    /// Its content (no clientRef, in a dialect that says so): for
    /// `content_dedup_window`.
    Content,
}

/// Bounds and lifetimes of stored state.
#[derive(Debug, Clone)]
pub struct StoreLimits {
    /// De-duplication window.
    pub dedup_window: Duration,
    /// De-duplication window of sends keyed by their content.
    pub content_dedup_window: Duration,
    /// How long a message is remembered.
    pub message_ttl: Duration,
    /// Messages remembered at most (and de-duplication keys at most), in process.
    pub max_entries: usize,
    /// How long presence lives unless refreshed.
    pub presence_ttl: Duration,
    /// Export claims remembered at most, in process.
    pub export_claims: usize,
}

impl StoreLimits {
    /// How long a claim made `by` lasts.
    pub fn window(&self, by: Dedupe) -> Duration {
        match by {
            Dedupe::Ref => self.dedup_window,
            Dedupe::Content => self.content_dedup_window,
        }
    }
}

/// Why the store could not answer.
#[derive(Debug, Clone, Error)]
#[error("state store unavailable: {0}")]
pub struct StoreError(pub String);

/// The store in use.
pub enum Store {
    /// In process.
    Local(Box<LocalStore>),
    /// Redis.
    Redis(RedisStore),
}

macro_rules! dispatch {
    ($self:ident . $m:ident ( $($a:expr),* )) => {
        match $self {
            Store::Local(s) => s.$m($($a),*).await,
            Store::Redis(s) => s.$m($($a),*).await,
        }
    };
}

impl Store {
    /// Adds a connection of `user`.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn presence_add(
        &self,
        user: &str,
        s: SocketPresence,
    ) -> Result<PresenceChange, StoreError> {
        dispatch!(self.presence_add(user, s))
    }

    /// Removes a connection of `user`.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn presence_remove(
        &self,
        user: &str,
        socket_id: &str,
    ) -> Result<PresenceChange, StoreError> {
        dispatch!(self.presence_remove(user, socket_id))
    }

    /// Vouches for an open connection (its snapshot, and its TTL renewed).
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn presence_refresh(&self, user: &str, s: &SocketPresence) -> Result<(), StoreError> {
        dispatch!(self.presence_refresh(user, s))
    }

    /// A user's connections.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn presence_sockets(&self, user: &str) -> Result<Vec<SocketPresence>, StoreError> {
        dispatch!(self.presence_sockets(user))
    }

    /// The Redis connection the shared store speaks on (the room history and the
    /// recovery sessions share it); `None` in process.
    pub fn redis_connection(&self) -> Option<::redis::aio::ConnectionManager> {
        match self {
            Store::Local(_) => None,
            Store::Redis(s) => Some(s.connection()),
        }
    }

    /// Whether other instances share it.
    pub fn is_shared(&self) -> bool {
        matches!(self, Store::Redis(_))
    }

    /// Announces this instance (`info`, JSON) as alive for `ttl` (the shared store only:
    /// in process there is one instance).
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn announce_instance(
        &self,
        instance: &str,
        info: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        match self {
            Store::Local(_) => Ok(()),
            Store::Redis(s) => s.announce_instance(instance, info, ttl).await,
        }
    }

    /// Remembers when `user` went offline (Unix ms), for [`LAST_SEEN_TTL`].
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn set_last_seen(&self, user: &str, at: i64) -> Result<(), StoreError> {
        dispatch!(self.set_last_seen(user, at))
    }

    /// When `user` went offline, if that is remembered.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn last_seen(&self, user: &str) -> Result<Option<i64>, StoreError> {
        dispatch!(self.last_seen(user))
    }

    /// Refuses `kind:id` (`user` or `jti`) at connect for `ttl`.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn revoke(&self, kind: &str, id: &str, ttl: Duration) -> Result<(), StoreError> {
        dispatch!(self.revoke(kind, id, ttl))
    }

    /// Whether `user`, or the token `jti`, is revoked now.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn is_revoked(&self, user: &str, jti: Option<&str>) -> Result<bool, StoreError> {
        dispatch!(self.is_revoked(user, jti))
    }

    /// Records (`present`) or forgets that connection `conn` of `instance`, `user`'s, is
    /// in each of `rooms` (the shared store only: in process the hub's rooms say it).
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn room_members(
        &self,
        rooms: &[String],
        member: RoomMember<'_>,
        present: bool,
    ) -> Result<(), StoreError> {
        match self {
            Store::Local(_) => Ok(()),
            Store::Redis(s) => s.room_members(rooms, member, present).await,
        }
    }

    /// The connections recorded in `room` by every instance: (`instance:conn`, user).
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn room_members_of(&self, room: &str) -> Result<Vec<(String, String)>, StoreError> {
        match self {
            Store::Local(_) => Ok(Vec::new()),
            Store::Redis(s) => s.room_members_of(room).await,
        }
    }

    /// Forgets connections of `room` (`instance:conn`) whose instance is gone.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn forget_room_members(
        &self,
        room: &str,
        fields: &[String],
    ) -> Result<(), StoreError> {
        match self {
            Store::Local(_) => Ok(()),
            Store::Redis(s) => s.forget_room_members(room, fields).await,
        }
    }

    /// Forgets every connection of `user` recorded in `room`.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn forget_user_in_room(&self, room: &str, user: &str) -> Result<(), StoreError> {
        match self {
            Store::Local(_) => Ok(()),
            Store::Redis(s) => {
                let fields: Vec<String> = s
                    .room_members_of(room)
                    .await?
                    .into_iter()
                    .filter(|(_, u)| u == user)
                    .map(|(f, _)| f)
                    .collect();
                s.forget_room_members(room, &fields).await
            }
        }
    }

    /// What every instance alive announced (JSON each; empty in process).
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn instances(&self) -> Result<Vec<String>, StoreError> {
        match self {
            Store::Local(_) => Ok(Vec::new()),
            Store::Redis(s) => s.instances().await,
        }
    }

    /// Vouches for many open connections at once (one round trip per batch).
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn presence_refresh_many(
        &self,
        conns: &[(&str, &SocketPresence)],
    ) -> Result<(), StoreError> {
        dispatch!(self.presence_refresh_many(conns))
    }

    /// Drops connections nobody vouched for within the TTL; the users who went offline,
    /// with the rooms they were in. Costs what expired, not what is online.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn presence_expire(&self) -> Result<Vec<Expired>, StoreError> {
        dispatch!(self.presence_expire())
    }

    /// Records conversation rooms `user` is in (the union over the user's connections,
    /// kept while the user is online), so going offline reaches them all.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn user_rooms_add(&self, user: &str, rooms: &[String]) -> Result<(), StoreError> {
        if rooms.is_empty() {
            return Ok(());
        }
        dispatch!(self.user_rooms_add(user, rooms))
    }

    /// Takes (and forgets) the rooms recorded for `user`.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn user_rooms_take(&self, user: &str) -> Result<Vec<String>, StoreError> {
        dispatch!(self.user_rooms_take(user))
    }

    /// Whether `user` is online.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn is_online(&self, user: &str) -> Result<bool, StoreError> {
        dispatch!(self.is_online(user))
    }

    /// Whether `user` is in a call.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn is_busy(&self, user: &str) -> Result<bool, StoreError> {
        dispatch!(self.is_busy(user))
    }

    /// Marks `user` busy for `ttl`.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn set_busy(&self, user: &str, ttl: Duration) -> Result<(), StoreError> {
        dispatch!(self.set_busy(user, ttl))
    }

    /// Clears `user`'s busy flag.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn clear_busy(&self, user: &str) -> Result<(), StoreError> {
        dispatch!(self.clear_busy(user))
    }

    /// Claims `client_ref` for `user` with `message_id`, unless claimed within the window.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn claim(
        &self,
        user: &str,
        client_ref: &str,
        message_id: &str,
        by: Dedupe,
    ) -> Result<Claim, StoreError> {
        dispatch!(self.claim(user, client_ref, message_id, by))
    }

    /// Claims the export of a fronted backend's fact by its identity: `true` for the
    /// first claimant within `window` (it exports the fact), `false` for every copy
    /// after it (other sessions, other instances).
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn claim_export(&self, identity: &str, window: Duration) -> Result<bool, StoreError> {
        dispatch!(self.claim_export(identity, window))
    }

    /// Remembers a message.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn index_message(
        &self,
        message_id: &str,
        info: MessageInfo,
    ) -> Result<(), StoreError> {
        dispatch!(self.index_message(message_id, info))
    }

    /// What is remembered of a message.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn message(&self, message_id: &str) -> Result<Option<MessageInfo>, StoreError> {
        dispatch!(self.message(message_id))
    }

    /// Forgets a deleted message.
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn forget_message(&self, message_id: &str) -> Result<(), StoreError> {
        dispatch!(self.forget_message(message_id))
    }

    /// Adds or removes `user`'s `emoji` on a message; the count after (`None`: unknown
    /// message).
    ///
    /// # Errors
    /// The store is unreachable.
    pub async fn react(
        &self,
        message_id: &str,
        emoji: &str,
        user: &str,
        add: bool,
    ) -> Result<Option<usize>, StoreError> {
        dispatch!(self.react(message_id, emoji, user, add))
    }
}
