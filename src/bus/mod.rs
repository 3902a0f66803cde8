//! The bus: how a canonical event addressed to rooms reaches every instance that has
//! members of them. One interface; `local` (in-process) is the default, brokers plug in
//! beside it.
//!
//! Contract for an implementation: `publish` never blocks (it queues or hands over);
//! every delivery published reaches the [`Deliver`] attached on every instance that
//! declared interest in one of its rooms (the local bus: this instance only), in publish
//! order per publisher; `interest` is idempotent.

pub mod amqp;
mod amqp_connect;
mod export;
mod local;
mod offset;
mod redis;
mod redis_cluster;
pub mod redis_connect;
pub(crate) mod wire;

pub use export::{Export, Stored};
pub use local::LocalBus;
pub use offset::{Offset, new_epoch};
pub use redis::{RedisBus, connection_manager};

use crate::event::Event;
use serde::{Deserialize, Serialize};
use smallvec::SmallVec;
use std::fmt;
use std::sync::{Arc, Weak};
use thiserror::Error;

/// A room an event can be delivered to: a conversation, or a user's personal room.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoomKey {
    /// `conversationId` (= roomId = channelId).
    Conversation(Arc<str>),
    /// `user:<id>`: every connection of one user.
    User(Arc<str>),
    /// `dialect:<name>`: every connection of a dialect whose rules reach beyond rooms
    /// (`reach`: Salala's status changes to every client, Phase 10's messages to
    /// participants' personal rooms); its channel carries those deliveries.
    Dialect(Arc<str>),
}

impl RoomKey {
    /// The conversation room of `id`.
    pub fn conversation(id: &str) -> RoomKey {
        RoomKey::Conversation(Arc::from(id))
    }

    /// The personal room of user `id`.
    pub fn user(id: &str) -> RoomKey {
        RoomKey::User(Arc::from(id))
    }
}

impl fmt::Display for RoomKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RoomKey::Conversation(id) => write!(f, "room:{id}"),
            RoomKey::User(id) => write!(f, "user:{id}"),
            RoomKey::Dialect(name) => write!(f, "dialect:{name}"),
        }
    }
}

/// Who receives a delivery.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Audience {
    /// The rooms; a connection in several of them receives the event once.
    #[serde(default)]
    pub rooms: SmallVec<[RoomKey; 2]>,
    /// Every connection of every instance (rooms are then ignored).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub everyone: bool,
    /// Not to this connection (`instance`, connection id): the sender's own socket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub except_connection: Option<(Arc<str>, u64)>,
    /// Not to any connection of this user (typing indicators).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub except_user: Option<Arc<str>>,
    /// Not to connections whose route fronts this upstream (they have the fact from
    /// the backend already).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub except_upstream: Option<Arc<str>>,
    /// What each recipient's connection does once told (the server API's session
    /// control, on every instance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub then: Option<Then>,
    /// Connections of a dialect reached beyond the rooms, as that dialect's own server
    /// would (its mapping's `reach`): the hub adds these when it publishes.
    #[serde(default, skip_serializing_if = "SmallVec::is_empty")]
    pub wider: SmallVec<[Wider; 0]>,
}

/// The connections of one dialect an event reaches beyond its audience's rooms.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Wider {
    /// The dialect.
    pub dialect: Arc<str>,
    /// The exclusions (the sender) do not apply to its connections.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sender: bool,
    /// Every connection of the dialect, on every instance.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub everyone: bool,
    /// The connections of the dialect in these users' personal rooms.
    #[serde(default, skip_serializing_if = "SmallVec::is_empty")]
    pub users: SmallVec<[Arc<str>; 2]>,
}

/// What a recipient's connection does after a delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "do")]
pub enum Then {
    /// The server closes it: `reconnect` says whether the client may come back.
    Disconnect {
        /// Whether the client may reconnect (the close code says so on raw WebSocket).
        reconnect: bool,
    },
    /// The user's connections leave conversation `room`.
    Leave {
        /// The conversation.
        room: Arc<str>,
        /// The user whose connections leave.
        user: Arc<str>,
    },
}

impl Audience {
    /// One room.
    pub fn room(key: RoomKey) -> Audience {
        Audience {
            rooms: smallvec::smallvec![key],
            ..Audience::default()
        }
    }
}

/// A canonical event and its audience.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The event, encoded once per dialect by each receiving instance.
    pub event: Event,
    /// Its recipients.
    pub audience: Audience,
    /// Where it is in the room history, when it is kept there.
    pub offset: Option<Offset>,
}

/// Where a bus hands the deliveries it receives: the hub's local fan-out.
pub trait Deliver: Send + Sync {
    /// Delivers to this instance's connections in the audience.
    fn deliver(&self, delivery: &Delivery);
}

/// Why a publish failed.
#[derive(Debug, Clone, Error)]
pub enum BusError {
    /// The bus's outgoing queue is full (the broker is slow or down).
    #[error("bus queue full: {0}")]
    Full(&'static str),
    /// The broker is unreachable.
    #[error("bus unavailable: {0}")]
    Unavailable(String),
}

/// The bus interface.
pub trait Bus: Send + Sync {
    /// `local`, `redis`, …: for logs and `/readyz`.
    fn kind(&self) -> &'static str;
    /// Sets where received deliveries go (done once, by the hub, at start).
    fn attach(&self, deliver: Weak<dyn Deliver>);
    /// Sends a delivery to every instance with members in its audience.
    ///
    /// # Errors
    /// The broker is down or its queue is full; the caller reports it to the sender.
    fn publish(&self, delivery: Delivery) -> Result<(), BusError>;
    /// This instance now has (`true`) or no longer has (`false`) local members of `room`.
    fn interest(&self, room: &RoomKey, on: bool);
    /// Whether the bus can deliver now.
    fn ready(&self) -> bool;
    /// The broker channels this instance listens to (empty for the in-process bus).
    fn channels(&self) -> Vec<String> {
        Vec::new()
    }
}
