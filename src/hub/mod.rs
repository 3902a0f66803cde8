//! The hub: what the seed servers do for the realtime part, done once for every
//! dialect, on canonical events only. Connections register here with an [`Outlet`] (the
//! transport is the listener's business); their decoded intents (`intents.rs` →
//! `rooms.rs`, `messages.rs`, `calls.rs`, `presence.rs`) become facts, published on the
//! bus (`publish.rs`) and handed to the exports; the bus hands deliveries back, and the
//! fan-out (`fanout.rs`) encodes each once per dialect for the local recipients.
//! `registry.rs` keeps the connections and their limits; `store/` the shared state;
//! `history/` the room history kept facts are appended to before fan-out (`append.rs`
//! batches the appends to Redis), `recovery/` the sessions clients come back to, and
//! `sync.rs` answers `messages.sync` from the history.

mod append;
pub mod attempts;
mod calls;
mod conn;
mod control;
mod fanout;
mod fronted;
mod history;
mod intents;
mod members;
mod messages;
mod outlet;
mod presence;
mod publish;
mod queries;
mod reach;
mod recovery;
mod refusal;
mod registration;
mod registry;
mod rooms;
mod store;
mod sync;
pub mod tap;

pub use conn::{Conn, ConnId, NewConn, Rate};
pub use control::Revoked;
pub use fronted::{Claimed, Fronted};
pub use history::{History, HistoryError, Kept, Replay};
pub use outlet::{OutFrame, Outlet, SendFailure};
pub use queries::{
    InstanceInfo, LARGEST_ROOMS, MAX_ROOM_PRESENCE, PresenceSnapshot, RoomPresence, RoomSize,
    RouteCount, SocketSnapshot,
};
pub use recovery::{ConnRecovery, Recover, Resume, Saved, Sessions, SessionsError, new_pid};
pub use refusal::{ErrorCode, Refusal};
pub use registration::{CLOSE_INTERNAL_ERROR, Registration};
pub use store::{
    Claim, Dedupe, Expired, LocalStore, MessageInfo, PresenceChange, RedisStore, RoomMember,
    SocketPresence, Store, StoreError, StoreLimits,
};

use crate::bus::{Bus, Deliver, Export, RoomKey};
use crate::config::{Config, Membership};
use crate::dialect::Registry;
use crate::event::Event;
use crate::telemetry::{BusLabels, Metrics};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

/// WebSocket close code sent to a slow consumer (policy violation).
pub const CLOSE_SLOW_CONSUMER: u16 = 1008;

/// WebSocket close code for a connection refused by a limit (try again later).
pub const CLOSE_TRY_LATER: u16 = 1013;

/// WebSocket close code for a connection the server API disconnected for good (a
/// private code: the client should not reconnect on its own).
pub const CLOSE_DISCONNECTED: u16 = 4000;

/// WebSocket close code for a connection closed for sending too fast.
pub const CLOSE_RATE_LIMIT: u16 = 1008;

/// The hub's settings, from the configuration.
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// Room membership policy.
    pub membership: Membership,
    /// How long a call offer marks the caller busy.
    pub call_busy_ttl: Duration,
    /// Largest event a client may send.
    pub max_payload: usize,
    /// Connections on this instance.
    pub max_connections: usize,
    /// Connections of one user on this instance.
    pub max_connections_per_user: usize,
    /// Token bucket: refill per second.
    pub rate: f64,
    /// Token bucket: size.
    pub burst: f64,
    /// Refused events in a row before the connection is closed.
    pub rate_strikes: u32,
    /// Conversation rooms one connection may be in.
    pub max_rooms: usize,
    /// Whether clients' IP addresses and User-Agents are kept (`privacy.client_info`).
    pub client_info: bool,
    /// How long a fronted fact with an id or a time is claimed for export.
    pub export_window: Duration,
    /// How long a fronted fact with neither is claimed.
    pub export_echo_window: Duration,
}

/// The hub. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    state: Arc<HubState>,
}

/// What the hub's parts share.
pub(crate) struct HubState {
    instance: Arc<str>,
    settings: HubSettings,
    registry: RwLock<Arc<Registry>>,
    // Ids are ours, not a client's: a fast hash without flooding resistance is safe.
    conns: RwLock<HashMap<ConnId, Arc<Conn>, foldhash::fast::RandomState>>,
    per_user: std::sync::Mutex<HashMap<String, usize>>,
    rooms: RwLock<HashMap<RoomKey, members::Members>>,
    store: Store,
    /// The room history kept facts are appended to before fan-out.
    history: History,
    /// Disconnected sessions waiting to be recovered.
    sessions: Sessions,
    /// How long they wait (`recovery.max_disconnection`).
    recovery_window: Duration,
    /// How long an open connection's session is saved for (the window and a presence
    /// period: the keeper saves it again before then).
    live_session_ttl: Duration,
    bus: Arc<dyn Bus>,
    next_id: AtomicU64,
    metrics: Arc<Metrics>,
    /// Where exported facts go (webhooks, RabbitMQ), as the server attached them.
    exports: OnceLock<Vec<Arc<dyn Export>>>,
    /// Kept facts waiting to be appended to the Redis history (`append.rs`).
    appender: OnceLock<tokio::sync::mpsc::Sender<append::Job>>,
    /// Set when the server begins to shut down: no connection registers after it.
    draining: AtomicBool,
    /// The dialects this instance's listeners serve (`reach.rs`).
    served: Vec<Arc<str>>,
    /// Rooms' members on every instance, as last read (`reach.rs`).
    remote_members: reach::RemoteMembers,
    /// Dialects with a connection on another instance, as last counted (`reach.rs`).
    fleet_dialects: reach::FleetDialects,
    /// Refused connection attempts per address (`attempts.rs`).
    attempts: attempts::Attempts,
    /// A sample of the deliveries, while a console watches (`tap.rs`).
    tap: tap::Tap,
}

/// What the sender of an event is answered: the Socket.IO ack payload, when it asked
/// for one.
pub type Ack = Value;

/// Answers one client ack (each transport its own way).
pub type Reply = Box<dyn FnOnce(Ack) + Send>;

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

/// The dialects of every route of every listener, each once.
fn served_dialects(cfg: &Config) -> Vec<Arc<str>> {
    let mut out: Vec<Arc<str>> = Vec::new();
    for r in cfg.listeners.iter().flat_map(|l| &l.routes) {
        if !out.iter().any(|d| **d == *r.dialect) {
            out.push(Arc::from(r.dialect.as_str()));
        }
    }
    out
}

/// An id field as text: ids are strings or numbers.
pub(crate) fn id_text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Hub {
    /// A hub on `bus`, with `registry`'s dialects.
    pub fn new(
        cfg: &Config,
        instance: &str,
        registry: Arc<Registry>,
        bus: Arc<dyn Bus>,
        store: Store,
    ) -> Hub {
        let (history, sessions) = match store.redis_connection() {
            Some(conn) => (
                History::redis(conn.clone(), &cfg.history),
                Sessions::Redis(conn),
            ),
            None => (
                History::local(&cfg.history),
                Sessions::local(cfg.recovery.sessions),
            ),
        };
        let state = Arc::new(HubState {
            instance: Arc::from(instance),
            settings: HubSettings {
                membership: cfg.hub.membership,
                call_busy_ttl: cfg.hub.call_busy_ttl,
                max_payload: cfg.limits.max_payload,
                max_connections: cfg.limits.max_connections,
                max_connections_per_user: cfg.limits.max_connections_per_user,
                rate: cfg.limits.rate,
                burst: cfg.limits.burst,
                rate_strikes: cfg.limits.rate_strikes,
                max_rooms: cfg.limits.max_rooms,
                client_info: cfg.privacy.client_info,
                export_window: cfg.hub.export_window,
                export_echo_window: cfg.hub.export_echo_window,
            },
            registry: RwLock::new(registry),
            conns: RwLock::new(HashMap::default()),
            per_user: std::sync::Mutex::new(HashMap::new()),
            rooms: RwLock::new(HashMap::new()),
            store,
            history,
            sessions,
            recovery_window: cfg.recovery.max_disconnection,
            live_session_ttl: cfg.recovery.max_disconnection + cfg.hub.presence_ttl,
            bus,
            next_id: AtomicU64::new(1),
            metrics: Arc::new(Metrics::new()),
            exports: OnceLock::new(),
            appender: OnceLock::new(),
            draining: AtomicBool::new(false),
            served: served_dialects(cfg),
            remote_members: reach::RemoteMembers::default(),
            fleet_dialects: reach::FleetDialects::default(),
            attempts: attempts::Attempts::default(),
            tap: tap::Tap::default(),
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(presence::keep(Arc::downgrade(&state), cfg.hub.presence_ttl));
            if state.bus.kind() == "redis"
                && let Some(conn) = state.store.redis_connection()
            {
                rt.spawn(reach::watch_fleet(Arc::downgrade(&state), conn));
            }
            if state.history.is_shared() {
                let _guard = rt.enter();
                let _ = state
                    .appender
                    .set(append::start(Arc::downgrade(&state), cfg.bus.queue));
            }
        }
        let weak: std::sync::Weak<dyn Deliver> =
            Arc::downgrade(&(state.clone() as Arc<dyn Deliver>));
        state.bus.attach(weak);
        Hub { state }
    }

    /// The dialects in use.
    pub fn registry(&self) -> Arc<Registry> {
        self.state.registry()
    }

    /// Replaces the dialects (a mapping reload); connections keep their dialect names.
    pub fn set_registry(&self, registry: Arc<Registry>) {
        *write(&self.state.registry) = registry;
    }

    /// This instance's id.
    pub fn instance(&self) -> &str {
        &self.state.instance
    }

    /// The hub's settings (the limits the router admits frames by, among them).
    pub fn settings(&self) -> &HubSettings {
        &self.state.settings
    }

    /// Sends the facts the hub exports (everything but what only clients care about,
    /// like presence snapshots) to `exports` too. Set once, at start.
    pub fn export_to(&self, exports: Vec<Arc<dyn Export>>) {
        let _ = self.state.exports.set(exports);
    }

    /// Whether the bus can deliver now (updates `switchboard_broker_up`).
    pub fn bus_ready(&self) -> bool {
        let ready = self.state.bus.ready();
        self.state
            .metrics
            .broker_up
            .get_or_create(&BusLabels {
                bus: self.state.bus.kind(),
            })
            .set(i64::from(ready));
        ready
    }

    /// The gateway's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.state.metrics
    }

    /// The bus.
    pub fn bus(&self) -> &Arc<dyn Bus> {
        &self.state.bus
    }

    /// Whether the hub reaches `dialect`'s connections beyond rooms now: it has one here,
    /// or another instance had one when last counted (`reach.rs`).
    pub fn reaches_dialect(&self, dialect: &str) -> bool {
        self.state.active(&Arc::from(dialect))
    }

    /// The traffic tap (the console's traffic view).
    pub fn tap(&self) -> &tap::Tap {
        &self.state.tap
    }

    /// Rooms with local members now (personal rooms included).
    pub fn room_count(&self) -> usize {
        read(&self.state.rooms).len()
    }

    /// Handles one decoded intent of a member connection; returns the ack payload. A
    /// refusal has been sent to the client in its dialect.
    ///
    /// The work is boxed: a connection's task then holds a pointer while it waits, not
    /// the whole state machine of every intent (which an idle connection would carry).
    pub async fn handle_event(&self, conn: &Arc<Conn>, ev: &Event) -> Ack {
        Box::pin(intents::handle_event(&self.state, conn, ev)).await
    }

    /// Sends `ev` to one connection in its dialect (down); `false` when its dialect
    /// cannot express it. A full queue closes the connection (slow consumer).
    pub fn send_event(&self, conn: &Arc<Conn>, ev: &Event) -> bool {
        self.state.send_event(conn, ev)
    }
}

impl HubState {
    fn registry(&self) -> Arc<Registry> {
        read(&self.registry).clone()
    }
}
