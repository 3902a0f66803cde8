//! The hub: what the seed servers do for the realtime part, done once for every
//! dialect. Connections register here; their decoded intents become facts (a new
//! message with its id and time, a typing flag, a presence change, a relayed call
//! signal) published on the bus; the bus hands deliveries back, and the hub encodes
//! each once per dialect for its local recipients.

mod calls;
mod conn;
pub mod external;
mod intents;
mod members;
mod messages;
pub mod outbox;
mod presence;
mod refusal;
mod registration;
mod rooms;
mod store;

pub use conn::{Conn, ConnId, Frame, NewConn, SendFailure, Sink, WsOut, in_namespace};
pub use refusal::{Code, Refusal};
pub use registration::{CLOSE_INTERNAL_ERROR, Registration};
pub use store::{
    Claim, Expired, LocalStore, MessageInfo, PresenceChange, RedisStore, SocketPresence, Store,
    StoreError, StoreLimits,
};

use crate::bus::amqp::{AmqpLink, Inject};
use crate::bus::{Audience, Bus, Deliver, Delivery, RoomKey};
use crate::config::AmqpConfig;
use crate::config::{Config, Membership, Transport};
use crate::dialect::Route;
use crate::dialect::{Decoded, Direction, Registry, TranslateError};
use crate::event::Target;
use crate::event::{Event, Meta, Origin, now_millis};
use crate::telemetry::{BusLabels, ConnLabels, EventLabels, Metrics, Name, ReasonLabels};
use crate::webhook::Receipt;
use serde_json::{Map, Value, json};
use smallvec::SmallVec;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// WebSocket close code sent to a slow consumer (policy violation).
pub const CLOSE_SLOW_CONSUMER: u16 = 1008;

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
}

/// WebSocket close code for a connection refused by a limit (try again later).
pub const CLOSE_TRY_LATER: u16 = 1013;

/// WebSocket close code for a connection closed for sending too fast.
pub const CLOSE_RATE_LIMIT: u16 = 1008;

/// The hub. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    instance: Arc<str>,
    settings: HubSettings,
    registry: RwLock<Arc<Registry>>,
    // Ids are ours, not a client's: a fast hash without flooding resistance is safe.
    conns: RwLock<HashMap<ConnId, Arc<Conn>, foldhash::fast::RandomState>>,
    per_user: std::sync::Mutex<HashMap<String, usize>>,
    rooms: RwLock<HashMap<RoomKey, members::Members>>,
    store: Store,
    bus: Arc<dyn Bus>,
    next_id: AtomicU64,
    metrics: Arc<Metrics>,
    amqp: std::sync::OnceLock<AmqpLink>,
    webhooks: std::sync::OnceLock<Arc<crate::webhook::Webhooks>>,
    /// Set when the server begins to shut down: no connection registers after it.
    draining: std::sync::atomic::AtomicBool,
}

/// What the sender of an event is answered: the Socket.IO ack payload, when it asked
/// for one.
pub type Ack = Value;

fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
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
        let inner = Arc::new(Inner {
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
            },
            registry: RwLock::new(registry),
            conns: RwLock::new(HashMap::default()),
            per_user: std::sync::Mutex::new(HashMap::new()),
            rooms: RwLock::new(HashMap::new()),
            store,
            bus,
            next_id: AtomicU64::new(1),
            metrics: Arc::new(Metrics::new()),
            amqp: std::sync::OnceLock::new(),
            webhooks: std::sync::OnceLock::new(),
            draining: std::sync::atomic::AtomicBool::new(false),
        });
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(presence::keep(Arc::downgrade(&inner), cfg.hub.presence_ttl));
        }
        let weak: std::sync::Weak<dyn Deliver> =
            Arc::downgrade(&(inner.clone() as Arc<dyn Deliver>));
        inner.bus.attach(weak);
        Hub { inner }
    }

    /// The dialects in use.
    pub fn registry(&self) -> Arc<Registry> {
        self.inner.registry()
    }

    /// Replaces the dialects (a mapping reload); connections keep their dialect names.
    pub fn set_registry(&self, registry: Arc<Registry>) {
        *write(&self.inner.registry) = registry;
    }

    /// This instance's id.
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// Starts the RabbitMQ link: events crossing the bus are exported, the inbound queue
    /// is delivered to clients.
    pub fn attach_amqp(&self, cfg: &AmqpConfig) {
        let weak: std::sync::Weak<dyn Inject> =
            Arc::downgrade(&(self.inner.clone() as Arc<dyn Inject>));
        let link = AmqpLink::start(cfg, &self.inner.instance, weak, self.inner.metrics.clone());
        let _ = self.inner.amqp.set(link);
    }

    /// Sends the events the webhook dialect maps to `webhooks`' endpoints.
    pub fn attach_webhooks(&self, webhooks: Arc<crate::webhook::Webhooks>) {
        let _ = self.inner.webhooks.set(webhooks);
    }

    /// The webhook engine, when endpoints are configured.
    pub fn webhooks(&self) -> Option<&Arc<crate::webhook::Webhooks>> {
        self.inner.webhooks.get()
    }

    /// Whether every broker is reachable: (all, the bus, RabbitMQ when configured).
    pub fn ready(&self) -> (bool, bool, Option<bool>) {
        let bus = self.inner.bus.ready();
        let amqp = self.inner.amqp.get().map(AmqpLink::ready);
        let m = &self.inner.metrics;
        m.broker_up
            .get_or_create(&BusLabels {
                bus: self.inner.bus.kind(),
            })
            .set(i64::from(bus));
        if let Some(a) = amqp {
            m.broker_up
                .get_or_create(&BusLabels { bus: "amqp" })
                .set(i64::from(a));
        }
        (bus && amqp.unwrap_or(true), bus, amqp)
    }

    /// Delivers an event from outside (a service, RabbitMQ) to its target's clients on
    /// every instance: `meta.target`, else the vocabulary's route.
    ///
    /// # Errors
    /// No target, or the bus did not take it.
    pub fn inject(&self, event: Event) -> Result<Receipt, Refusal> {
        self.inner.inject_event(event)
    }

    /// The gateway's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The bus.
    pub fn bus(&self) -> &Arc<dyn Bus> {
        &self.inner.bus
    }

    /// Connections open now.
    pub fn connection_count(&self) -> usize {
        read(&self.inner.conns).len()
    }

    /// Rooms with local members now (personal rooms included).
    pub fn room_count(&self) -> usize {
        read(&self.inner.rooms).len()
    }

    /// Every open connection.
    pub fn connections(&self) -> Vec<Arc<Conn>> {
        read(&self.inner.conns).values().cloned().collect()
    }

    /// Registers an authenticated connection: it joins its personal room and the rooms
    /// its token grants, gets its dialect's ready event, and its user's presence is
    /// announced if this is the user's first connection. The registration is the
    /// connection's: its task owns it, and dropping it unregisters the connection.
    ///
    /// # Errors
    /// Over `limits.max_connections` or `limits.max_connections_per_user`: the listener
    /// refuses the connection in the dialect's words ([`Hub::refuse_connection`]).
    pub async fn connect(&self, n: NewConn) -> Result<Registration, Refusal> {
        let conn = Box::pin(self.register(n)).await?;
        Ok(Registration::new(self.clone(), conn))
    }

    async fn register(&self, mut n: NewConn) -> Result<Arc<Conn>, Refusal> {
        let inner = &self.inner;
        let s = &inner.settings;
        if !s.client_info {
            // Personal data the master service does not need is not kept at all.
            n.user_agent = None;
            n.ip = None;
        }
        {
            let conns = write(&inner.conns);
            if inner.draining.load(Ordering::SeqCst) {
                return Err(Refusal::new(
                    Code::Unavailable,
                    "this server is shutting down: connect again",
                ));
            }
            let mut per_user = inner.per_user.lock().unwrap_or_else(|p| p.into_inner());
            let mine = per_user.get(&n.user.id).copied().unwrap_or(0);
            if conns.len() >= s.max_connections {
                return Err(Refusal::new(
                    Code::TooManyConnections,
                    format!(
                        "this server is at its limit of {} connections: try again later",
                        s.max_connections
                    ),
                ));
            }
            if mine >= s.max_connections_per_user {
                return Err(Refusal::new(
                    Code::TooManyConnections,
                    format!(
                        "user {} already has {mine} connections (the limit)",
                        n.user.id
                    ),
                ));
            }
            per_user.insert(n.user.id.clone(), mine + 1);
            drop(conns);
        }
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn::new(id, n, now_millis(), s.burst));
        write(&inner.conns).insert(id, conn.clone());
        let labels = conn_labels(&conn);
        inner.metrics.connections.get_or_create(&labels).inc();
        inner
            .metrics
            .connections_opened
            .get_or_create(&labels)
            .inc();
        if !conn.member {
            tracing::debug!(conn = id, user = %conn.user.id, dialect = %conn.dialect, "connected (relayed)");
            return Ok(conn);
        }
        inner.join(&conn, RoomKey::user(&conn.user.id));
        for room in conn
            .claims
            .clone()
            .unwrap_or_default()
            .iter()
            .take(s.max_rooms)
        {
            inner.join(&conn, RoomKey::conversation(room));
        }
        let mut body = Map::new();
        body.insert("userId".into(), json!(conn.user.id));
        if let Some(n) = &conn.user.name {
            body.insert("userName".into(), json!(n));
        }
        body.insert("socketId".into(), json!(&*conn.socket_id));
        body.insert("rooms".into(), json!(conn.conversation_ids()));
        let ready = inner.fact("session.ready", body, None, &conn);
        inner.send_event(&conn, &ready);
        presence::connected(inner, &conn).await;
        tracing::debug!(conn = id, user = %conn.user.id, dialect = %conn.dialect, "connected");
        Ok(conn)
    }

    /// Unregisters a connection (the client left, or the server cut it). Idempotent.
    pub async fn disconnect(&self, conn: &Arc<Conn>) {
        if let Some(rooms) = self.detach(conn) {
            Box::pin(self.announce_gone(conn, rooms)).await;
        }
    }

    /// The synchronous half of unregistering: the connection leaves the registry, the
    /// counters and its rooms. `None` when it was not registered (any more); else the
    /// rooms it was in, for [`Hub::announce_gone`].
    fn detach(&self, conn: &Arc<Conn>) -> Option<Vec<RoomKey>> {
        let inner = &self.inner;
        write(&inner.conns).remove(&conn.id)?;
        inner
            .metrics
            .connections
            .get_or_create(&conn_labels(conn))
            .dec();
        {
            let mut per_user = inner.per_user.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = per_user.get_mut(&conn.user.id) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    per_user.remove(&conn.user.id);
                }
            }
        }
        if !conn.member {
            return Some(Vec::new());
        }
        let rooms: Vec<RoomKey> = conn.rooms().iter().cloned().collect();
        for room in &rooms {
            inner.leave(conn, room);
        }
        Some(rooms)
    }

    /// The asynchronous half: the user's presence after the connection left.
    async fn announce_gone(&self, conn: &Arc<Conn>, rooms: Vec<RoomKey>) {
        if !conn.member {
            return;
        }
        presence::disconnected(&self.inner, conn, &rooms).await;
        tracing::debug!(conn = conn.id, user = %conn.user.id, "disconnected");
    }

    /// Connections of `user` on this instance now.
    pub fn user_connection_count(&self, user: &str) -> usize {
        self.inner
            .per_user
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(user)
            .copied()
            .unwrap_or(0)
    }

    /// A registered connection by id.
    pub fn conn(&self, id: ConnId) -> Option<Arc<Conn>> {
        read(&self.inner.conns).get(&id).cloned()
    }

    /// Refuses something a connection sent (a binary frame, a full inbound queue) in
    /// its dialect's words; returns the ack payload.
    pub fn refuse(&self, conn: &Arc<Conn>, refusal: &Refusal) -> Ack {
        self.inner.refuse(conn, refusal, None)
    }

    /// Refuses a frame its transport could not read (not a Socket.IO packet, a binary
    /// frame, an ack id out of range): counted in `switchboard_translation_failures_total`
    /// under `reason`, answered `bad_event` in the connection's dialect; returns the ack
    /// payload.
    pub fn refuse_unreadable(&self, conn: &Arc<Conn>, reason: &'static str, message: &str) -> Ack {
        self.count_unreadable(&conn.dialect, reason);
        self.inner
            .refuse(conn, &Refusal::new(Code::BadEvent, message), None)
    }

    /// Counts a frame no connection can be told about (its namespace is not joined yet)
    /// as a translation failure of `dialect`.
    pub fn count_unreadable(&self, dialect: &str, reason: &'static str) {
        self.inner
            .metrics
            .translation_failures
            .get_or_create(&ReasonLabels {
                dialect: Name::from(dialect),
                reason,
            })
            .inc();
    }

    /// Activity on a connection (a ping, a pong) renews its presence.
    pub async fn touch(&self, conn: &Arc<Conn>) {
        presence::touch(conn);
    }

    /// Handles one frame (JSON text) a client sent; returns the ack payload.
    ///
    /// The work is boxed: a connection's task then holds a pointer while it waits, not
    /// the whole state machine of every intent (which an idle connection would carry).
    pub async fn handle_frame(&self, conn: &Arc<Conn>, text: &[u8]) -> Ack {
        Box::pin(intents::handle_frame(&self.inner, conn, text)).await
    }

    /// What a relay does before routing a client's frame: the size and rate limits,
    /// then decoding in the client's dialect. A refusal has already been sent to the
    /// client; its ack payload is returned.
    ///
    /// # Errors
    /// The frame was refused (the ack payload to answer with).
    pub fn admit_frame(&self, conn: &Arc<Conn>, text: &[u8]) -> Result<Decoded, Ack> {
        intents::admit(&self.inner, conn, text)
    }

    /// Handles one decoded intent of a member connection, as [`Hub::handle_frame`] does
    /// for each event of a frame; returns the ack payload.
    pub async fn handle_event(&self, conn: &Arc<Conn>, ev: &Event) -> Ack {
        Box::pin(intents::handle_event(&self.inner, conn, ev)).await
    }

    /// Refuses `cause` (an event the client sent) in the client's dialect
    /// (`message.failed` for a send, where the dialect has it); returns the ack payload.
    pub fn refuse_event(&self, conn: &Arc<Conn>, refusal: &Refusal, cause: &Event) -> Ack {
        self.inner.refuse(conn, refusal, Some(cause))
    }

    /// Sends `ev` to one connection in its dialect (down); `false` when its dialect
    /// cannot express it. A full queue closes the connection (slow consumer).
    pub fn send_event(&self, conn: &Arc<Conn>, ev: &Event) -> bool {
        self.inner.send_event(conn, ev)
    }

    /// `session.error` for `refusal`, as the hub sends it.
    pub fn error_event(refusal: &Refusal) -> Event {
        Inner::error_event(refusal, None)
    }

    /// Counts a refused connection and returns the frame refusing it, in `dialect`'s
    /// words (`None`: the dialect has no error event; the transport's own refusal is used).
    pub fn refuse_connection(
        &self,
        dialect: &str,
        transport: Transport,
        refusal: &Refusal,
    ) -> Option<Frame> {
        self.inner
            .metrics
            .connections_refused
            .get_or_create(&ReasonLabels {
                dialect: Name::from(dialect),
                reason: refusal.code.as_str(),
            })
            .inc();
        let ev = Inner::error_event(refusal, None);
        self.inner.encode(dialect, transport, &ev).ok()
    }

    /// The server is shutting down: connections registering from now on are refused
    /// (`unavailable`), so that none opens after [`Hub::close_all`].
    pub fn drain(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
    }

    /// Tells every connection that the server is going away (`system.disconnect` where
    /// the dialect has it), then closes them with `code`.
    pub fn close_all(&self, code: u16, reason: &str) {
        for conn in self.connections() {
            let mut body = Map::new();
            body.insert("reason".into(), json!("shutdown"));
            body.insert("notice".into(), json!(reason));
            let ev = self.inner.fact("system.disconnect", body, None, &conn);
            self.inner.send_event(&conn, &ev);
            conn.close(code, reason);
        }
    }
}

impl Inner {
    fn registry(&self) -> Arc<Registry> {
        read(&self.registry).clone()
    }

    /// A fact caused by `cause` (its trace id follows), from `conn`'s user.
    fn fact(
        &self,
        name: &str,
        body: Map<String, Value>,
        cause: Option<&Event>,
        conn: &Conn,
    ) -> Event {
        let mut meta = Meta::fresh();
        if let Some(c) = cause {
            meta.trace_id = c.meta.trace_id.clone();
            meta.carried = c.meta.carried.clone();
        }
        meta.user = Some(conn.user.clone());
        meta.origin = Some(Origin {
            dialect: conn.dialect.clone(),
            instance: self.instance.to_string(),
            connection: conn.socket_id.to_string(),
        });
        Event {
            name: Arc::from(name),
            body,
            meta,
        }
    }

    /// `session.error {code, error, reason}`.
    fn error_event(refusal: &Refusal, cause: Option<&Event>) -> Event {
        let mut body = Map::new();
        body.insert("code".into(), json!(refusal.code.as_str()));
        body.insert("error".into(), json!(refusal.message));
        let reason = match refusal.code {
            Code::Unauthorized | Code::TokenExpired => "auth_error",
            _ => refusal.code.as_str(),
        };
        body.insert("reason".into(), json!(reason));
        body.insert("reconnectAttempt".into(), json!(0));
        let mut ev = Event::new("session.error", body);
        if let Some(c) = cause {
            ev.meta.trace_id = c.meta.trace_id.clone();
        }
        ev
    }

    /// Encodes `ev` for one dialect and transport.
    fn encode(
        &self,
        dialect: &str,
        transport: Transport,
        ev: &Event,
    ) -> Result<Frame, TranslateError> {
        let reg = self.registry();
        let d = reg
            .dialect(dialect)
            .ok_or_else(|| TranslateError::UnknownDialect(dialect.to_string()))?;
        Ok(match transport {
            Transport::Socketio => {
                let enc = d.encode(ev, Direction::Down)?;
                Frame::socketio(&enc.name, enc.payload.map(|t| t.into_value()))
            }
            Transport::Websocket => {
                let mut buf = Vec::with_capacity(256);
                d.encode_frame(ev, Direction::Down, &mut buf)?;
                // serde_json writes UTF-8 only.
                let text = String::from_utf8(buf).unwrap_or_default();
                Frame::Text(Utf8Bytes::from(text))
            }
        })
    }

    /// Sends `ev` to one connection, in its dialect; an event its dialect cannot express
    /// is skipped.
    fn send_event(&self, conn: &Arc<Conn>, ev: &Event) -> bool {
        match self.encode(&conn.dialect, conn.transport, ev) {
            Ok(frame) => {
                self.count_out(&conn.dialect, &ev.name, 1);
                self.send_frame(conn, &frame);
                true
            }
            Err(e) => {
                tracing::trace!(event = %ev.name, dialect = %conn.dialect, error = %e, "not sent");
                false
            }
        }
    }

    fn send_frame(&self, conn: &Arc<Conn>, frame: &Frame) {
        if let Err(SendFailure::Full) = conn.send(frame) {
            self.metrics
                .slow_consumers
                .get_or_create(&conn_labels(conn))
                .inc();
            tracing::warn!(conn = conn.id, user = %conn.user.id, "slow consumer: outbound queue full, disconnecting");
            conn.close(CLOSE_SLOW_CONSUMER, "slow consumer: outbound queue full");
        }
    }

    /// Tells `conn` that what it sent was refused: `message.failed` when the refused
    /// event was a send and the dialect has it, else `session.error`.
    fn refuse(&self, conn: &Arc<Conn>, refusal: &Refusal, cause: Option<&Event>) -> Ack {
        self.metrics
            .refusals
            .get_or_create(&ReasonLabels {
                dialect: Name(conn.dialect.clone()),
                reason: refusal.code.as_str(),
            })
            .inc();
        let sent_failed = cause.is_some_and(|c| &*c.name == "message.send") && {
            let mut body = Map::new();
            body.insert("error".into(), json!(refusal.message));
            body.insert("code".into(), json!(refusal.code.as_str()));
            body.insert("deliveryStatus".into(), json!("FAILED"));
            if let Some(r) = cause.and_then(|c| c.field("clientRef")) {
                body.insert("clientRef".into(), r.clone());
            }
            if let Some(c) = cause.and_then(|c| c.field("conversationId")) {
                body.insert("conversationId".into(), c.clone());
            }
            let ev = self.fact("message.failed", body, cause, conn);
            self.send_event(conn, &ev)
        };
        if !sent_failed {
            let ev = Self::error_event(refusal, cause);
            self.send_event(conn, &ev);
        }
        json!({"success": false, "code": refusal.code.as_str(), "message": refusal.message})
    }

    /// Publishes a fact to an audience; the receipt settles once its webhooks (if any)
    /// are stored.
    fn publish(&self, event: Event, audience: Audience) -> Result<Receipt, Refusal> {
        self.publish_with(event, audience, true)
    }

    /// Publishes a fact and waits until its webhooks are stored: what a sender's answer
    /// waits for, so that an event counts as accepted only once nothing can lose it.
    async fn commit(&self, event: Event, audience: Audience) -> Result<(), Refusal> {
        let receipt = self.publish(event, audience)?;
        receipt.stored().await.map_err(|e| {
            tracing::error!("an event was delivered but its webhook could not be stored: {e}");
            Refusal::new(
                Code::Unavailable,
                format!("delivered, but its webhook could not be stored: {e}"),
            )
        })
    }

    /// Publishes a fact; with `export`, also to RabbitMQ and webhooks (without: a fact
    /// only the clients care about, like a presence snapshot).
    fn publish_with(
        &self,
        event: Event,
        audience: Audience,
        export: bool,
    ) -> Result<Receipt, Refusal> {
        tracing::debug!(trace_id = %event.meta.trace_id, event = %event.name, bus = self.bus.kind(), export, "fact published");
        // Exported only once the bus took it: a fact refused to its sender (who may
        // retry) must not have reached a webhook or the exchange.
        let exported = (export && (self.amqp.get().is_some() || self.webhooks.get().is_some()))
            .then(|| event.clone());
        let t0 = std::time::Instant::now();
        let r = self.bus.publish(Delivery { event, audience }).map_err(|e| {
            self.metrics
                .bus_refused
                .get_or_create(&BusLabels {
                    bus: self.bus.kind(),
                })
                .inc();
            Refusal::new(Code::Unavailable, e.to_string())
        });
        self.metrics
            .bus_publish_seconds
            .get_or_create(&BusLabels {
                bus: self.bus.kind(),
            })
            .observe(t0.elapsed().as_secs_f64());
        r?;
        let mut receipt = Receipt::settled();
        if let Some(event) = exported {
            if let Some(amqp) = self.amqp.get() {
                amqp.export(&event);
            }
            if let Some(w) = self.webhooks.get() {
                receipt = w.offer(&event, &self.registry());
            }
        }
        Ok(receipt)
    }

    fn count_out(&self, dialect: &Arc<str>, event: &Arc<str>, n: u64) {
        self.metrics
            .events_out
            .get_or_create(&EventLabels {
                dialect: Name(dialect.clone()),
                event: Name(event.clone()),
            })
            .inc_by(n);
    }

    fn join(&self, conn: &Arc<Conn>, room: RoomKey) -> bool {
        if !conn.rooms().insert(room.clone()) {
            return false;
        }
        let first = {
            let mut rooms = write(&self.rooms);
            let members = rooms.entry(room.clone()).or_default();
            members.add(conn.clone());
            members.len() == 1
        };
        if first {
            self.bus.interest(&room, true);
        }
        true
    }

    fn leave(&self, conn: &Arc<Conn>, room: &RoomKey) -> bool {
        conn.rooms().remove(room);
        let last = {
            let mut rooms = write(&self.rooms);
            match rooms.get_mut(room) {
                Some(members) => {
                    let was = members.remove(conn.id);
                    if members.is_empty() {
                        rooms.remove(room);
                        was
                    } else {
                        return was;
                    }
                }
                None => return false,
            }
        };
        if last {
            self.bus.interest(room, false);
        }
        last
    }

    /// The local connections in an audience, each once.
    fn recipients(&self, a: &Audience) -> SmallVec<[Arc<Conn>; 16]> {
        let mut out: SmallVec<[Arc<Conn>; 16]> = SmallVec::new();
        let keep = |c: &Arc<Conn>| {
            let excluded_conn = a
                .except_connection
                .as_ref()
                .is_some_and(|(i, id)| *i == self.instance && *id == c.id);
            let excluded_user = a.except_user.as_deref().is_some_and(|u| u == c.user.id);
            !excluded_conn && !excluded_user
        };
        if a.everyone {
            out.extend(read(&self.conns).values().filter(|c| keep(c)).cloned());
            return out;
        }
        let rooms = read(&self.rooms);
        if let [one] = a.rooms.as_slice() {
            if let Some(members) = rooms.get(one) {
                out.extend(members.iter().filter(|c| keep(c)).cloned());
            }
            return out;
        }
        // Ids are ours: a fast hash, and room for everyone at once (no rehash per message).
        let most = a
            .rooms
            .iter()
            .filter_map(|r| rooms.get(r).map(members::Members::len))
            .sum();
        let mut seen: HashSet<ConnId, foldhash::fast::RandomState> =
            HashSet::with_capacity_and_hasher(most, foldhash::fast::RandomState::default());
        for room in &a.rooms {
            for c in rooms.get(room).into_iter().flat_map(members::Members::iter) {
                if seen.insert(c.id) && keep(c) {
                    out.push(c.clone());
                }
            }
        }
        out
    }
}

/// One encoding of a delivery: for a dialect and transport (`None`: it cannot express it),
/// and how many connections it was sent to.
type EncodedFor = (Arc<str>, Transport, Option<Frame>, u64);

fn conn_labels(conn: &Conn) -> ConnLabels {
    ConnLabels {
        dialect: Name(conn.dialect.clone()),
        transport: match conn.transport {
            Transport::Websocket => "websocket",
            Transport::Socketio => "socketio",
        },
    }
}

impl Inner {
    fn inject_event(&self, event: Event) -> Result<Receipt, Refusal> {
        let audience = match &event.meta.target {
            Some(Target::Room(id)) => Audience::room(RoomKey::conversation(id)),
            Some(Target::User(id)) => Audience::room(RoomKey::user(id)),
            Some(Target::Broadcast) => Audience {
                everyone: true,
                ..Audience::default()
            },
            Some(Target::Connection(_)) => {
                return Err(Refusal::new(
                    Code::BadEvent,
                    "a connection target cannot be reached from outside",
                ));
            }
            None => {
                let reg = self.registry();
                let route = reg.vocab.event(&event.name).and_then(|e| e.route.clone());
                let id = |field: &str| id_text(event.field(field));
                match route {
                    Some(Route::Room(f)) => {
                        Audience::room(RoomKey::conversation(&id(&f).ok_or_else(|| {
                            Refusal::new(Code::BadEvent, format!("`{f}` is missing"))
                        })?))
                    }
                    Some(Route::User(f)) => {
                        Audience::room(RoomKey::user(&id(&f).ok_or_else(|| {
                            Refusal::new(Code::BadEvent, format!("`{f}` is missing"))
                        })?))
                    }
                    None => {
                        return Err(Refusal::new(
                            Code::BadEvent,
                            format!("`{}` has no route: give it meta.target", event.name),
                        ));
                    }
                }
            }
        };
        self.publish(event, audience)
    }
}

impl Inject for Inner {
    fn registry(&self) -> Arc<Registry> {
        Inner::registry(self)
    }

    fn inject(&self, event: Event) -> Result<(), String> {
        self.inject_event(event).map(drop).map_err(|r| r.message)
    }
}

impl Deliver for Inner {
    fn deliver(&self, d: &Delivery) {
        let recipients = self.recipients(&d.audience);
        // One encoding per dialect and transport, shared by every recipient.
        let mut frames: SmallVec<[EncodedFor; 6]> = SmallVec::new();
        for conn in &recipients {
            let pos = frames.iter().position(|(dl, t, _, _)| {
                *t == conn.transport && (Arc::ptr_eq(dl, &conn.dialect) || **dl == *conn.dialect)
            });
            let i = match pos {
                Some(i) => i,
                None => {
                    let f = self.encode(&conn.dialect, conn.transport, &d.event).ok();
                    frames.push((conn.dialect.clone(), conn.transport, f, 0));
                    frames.len() - 1
                }
            };
            if let Some(frame) = &frames[i].2 {
                self.send_frame(conn, frame);
                frames[i].3 += 1;
            }
        }
        for (dialect, _, _, n) in &frames {
            if *n > 0 {
                self.count_out(dialect, &d.event.name, *n);
                tracing::trace!(trace_id = %d.event.meta.trace_id, event = %d.event.name, %dialect, recipients = *n, bus = self.bus.kind(), "delivered");
            }
        }
    }
}
