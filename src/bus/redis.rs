//! The Redis bus: deliveries fan out between instances by pub/sub. An instance subscribes
//! only to the channels of rooms it has local members in (plus `switchboard:all`), over
//! one pub/sub connection; it publishes over one multiplexed connection, from a bounded
//! queue, in pipelined batches. Local members get a delivery at once, without the round
//! trip.
//!
//! Under faults nothing is dropped without a word: while Redis is unreachable, deliveries
//! wait in the bounded queue (`bus.queue`) and the batch that failed is kept and sent
//! again, in order, once Redis is back; over the bound the sender is refused
//! (`unavailable`) before anyone got the event. Pub/sub itself is at-most-once, so the
//! backlog is held until the instances that listened before the outage listen again
//! (`PUBSUB NUMSUB switchboard:all`, bounded by [`LISTENERS_WAIT`]): what is published
//! while a subscriber is still reconnecting would reach nobody. Both connections retry
//! every [`MAX_BACKOFF`] at most, so the first delivery after Redis returns is under a
//! second; `ready()` is false from the first failure until both are back.

use super::wire::{self, ALL};
use super::{Bus, BusError, Deliver, Delivery, RoomKey};
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::mpsc;

/// Deliveries remembered to drop the copies that arrive on several channels.
const SEEN: usize = 8192;

/// A delivery's identity: its publishing instance and sequence number there.
type DeliveryId = (Arc<str>, u64);

/// The deliveries seen lately, oldest first, and the same as a set.
type Seen = (VecDeque<DeliveryId>, HashSet<DeliveryId>);

/// What the publisher sends: the channels and the encoded delivery.
pub(super) type Outgoing = (Vec<String>, Arc<Vec<u8>>);

/// What the bus and its tasks share, whichever Redis they speak to.
pub(super) struct RedisBusState {
    instance: Arc<str>,
    target: OnceLock<Weak<dyn Deliver>>,
    pub(super) interests: Mutex<HashSet<String>>,
    pub(super) subscribed: AtomicBool,
    pub(super) publishing: AtomicBool,
    seq: AtomicU64,
    seen: Mutex<Seen>,
}

/// The Redis bus.
pub struct RedisBus {
    shared: Arc<RedisBusState>,
    out: mpsc::Sender<Outgoing>,
    control: mpsc::UnboundedSender<(String, bool)>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl RedisBus {
    /// Starts the publisher and the subscriber on `client` (`conn`: the shared
    /// multiplexed connection).
    pub fn start(
        client: redis::Client,
        conn: ConnectionManager,
        instance: &str,
        queue: usize,
    ) -> RedisBus {
        let (bus, out_rx, control_rx) = RedisBus::new(instance, queue);
        tokio::spawn(publisher(conn, out_rx, Arc::downgrade(&bus.shared)));
        tokio::spawn(subscriber(client, control_rx, Arc::downgrade(&bus.shared)));
        bus
    }

    /// The bus and the receiving ends its tasks take.
    pub(super) fn new(
        instance: &str,
        queue: usize,
    ) -> (
        RedisBus,
        mpsc::Receiver<Outgoing>,
        mpsc::UnboundedReceiver<(String, bool)>,
    ) {
        let shared = Arc::new(RedisBusState {
            instance: Arc::from(instance),
            target: OnceLock::new(),
            interests: Mutex::new(HashSet::new()),
            subscribed: AtomicBool::new(false),
            publishing: AtomicBool::new(true),
            seq: AtomicU64::new(0),
            seen: Mutex::new((VecDeque::new(), HashSet::new())),
        });
        let (out, out_rx) = mpsc::channel(queue);
        let (control, control_rx) = mpsc::unbounded_channel();
        (
            RedisBus {
                shared,
                out,
                control,
            },
            out_rx,
            control_rx,
        )
    }

    /// The shared state, for the tasks.
    pub(super) fn shared(&self) -> &Arc<RedisBusState> {
        &self.shared
    }
}

/// The multiplexed connection the publisher and the state store share, set to fail
/// fast while Redis is unreachable (a caller is told at once rather than after the
/// reconnect's whole backoff) and to come back within [`MAX_BACKOFF`] of Redis returning.
/// Lazy: an instance starts while Redis is down, and reports itself not ready.
///
/// # Errors
/// The client cannot make connections (a bad URL was caught earlier).
pub fn connection_manager(client: redis::Client) -> redis::RedisResult<ConnectionManager> {
    let cfg = redis::aio::ConnectionManagerConfig::new()
        .set_number_of_retries(1)
        .set_min_delay(MIN_BACKOFF)
        .set_max_delay(MAX_BACKOFF)
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(2)));
    ConnectionManager::new_lazy_with_config(client, cfg)
}

impl RedisBusState {
    fn deliver_local(&self, d: &Delivery) {
        if let Some(t) = self.target.get().and_then(Weak::upgrade) {
            t.deliver(d);
        }
    }

    fn first_time(&self, id: (Arc<str>, u64)) -> bool {
        let mut g = lock(&self.seen);
        let (order, set) = &mut *g;
        if !set.insert(id.clone()) {
            return false;
        }
        order.push_back(id);
        if order.len() > SEEN
            && let Some(old) = order.pop_front()
        {
            set.remove(&old);
        }
        true
    }

    pub(super) fn received(&self, payload: &[u8]) {
        let msg = match wire::decode(payload) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("dropped a malformed bus message: {e}");
                return;
            }
        };
        if msg.i == self.instance || !self.first_time((msg.i.clone(), msg.n)) {
            return;
        }
        self.deliver_local(&msg.delivery());
    }
}

impl Bus for RedisBus {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn attach(&self, deliver: Weak<dyn Deliver>) {
        let _ = self.shared.target.set(deliver);
    }

    fn publish(&self, delivery: Delivery) -> Result<(), BusError> {
        // A place in the queue first: a delivery the broker cannot take is refused before
        // anyone, local members included, has it (the sender may then retry cleanly).
        let permit = self.out.try_reserve().map_err(|e| match e {
            mpsc::error::TrySendError::Full(()) => {
                BusError::Full("the Redis publish queue (bus.queue); Redis is slow or down")
            }
            mpsc::error::TrySendError::Closed(()) => {
                BusError::Unavailable("redis publisher stopped".into())
            }
        })?;
        self.shared.deliver_local(&delivery);
        let n = self.shared.seq.fetch_add(1, Ordering::Relaxed);
        let bytes = Arc::new(wire::encode(&self.shared.instance, n, &delivery));
        permit.send((wire::channels(&delivery.audience), bytes));
        Ok(())
    }

    fn interest(&self, room: &RoomKey, on: bool) {
        let ch = wire::channel(room);
        let changed = {
            let mut set = lock(&self.shared.interests);
            if on {
                set.insert(ch.clone())
            } else {
                set.remove(&ch)
            }
        };
        if changed {
            let _ = self.control.send((ch, on));
        }
    }

    fn ready(&self) -> bool {
        self.shared.subscribed.load(Ordering::Relaxed)
            && self.shared.publishing.load(Ordering::Relaxed)
    }

    fn channels(&self) -> Vec<String> {
        let mut v: Vec<String> = lock(&self.shared.interests).iter().cloned().collect();
        v.push(ALL.to_string());
        v.sort();
        v
    }
}

/// The longest wait between two attempts to reach Redis (publisher and subscriber).
pub(super) const MAX_BACKOFF: Duration = Duration::from_millis(400);

/// The first wait after a failure; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(50);

/// How long a backlog waits, after an outage, for the instances that listened before it
/// to listen again (an instance that died meanwhile never will).
pub(super) const LISTENERS_WAIT: Duration = Duration::from_secs(3);

/// How often the publisher counts the instances listening, and probes Redis while idle.
const CENSUS: Duration = Duration::from_secs(2);

/// Instances subscribed to `switchboard:all` (every instance is), or `None` when Redis
/// cannot say.
async fn listeners(conn: &mut ConnectionManager) -> Option<i64> {
    let r: redis::RedisResult<(String, i64)> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(ALL)
        .query_async(conn)
        .await;
    r.ok().map(|(_, n)| n)
}

/// After an outage: waits until this instance is subscribed again and as many instances
/// listen as did before it (up to [`LISTENERS_WAIT`]), so the backlog reaches them.
async fn await_listeners(conn: &mut ConnectionManager, shared: &Weak<RedisBusState>, before: i64) {
    let until = tokio::time::Instant::now() + LISTENERS_WAIT;
    loop {
        let subscribed = shared
            .upgrade()
            .is_some_and(|sh| sh.subscribed.load(Ordering::Relaxed));
        let now = listeners(conn).await.unwrap_or(0);
        if subscribed && now >= before {
            return;
        }
        if tokio::time::Instant::now() >= until {
            tracing::warn!(
                listening = now,
                before,
                "publishing the bus backlog although fewer instances listen than before the outage"
            );
            return;
        }
        tokio::time::sleep(MIN_BACKOFF).await;
    }
}

/// Publishes queued deliveries in pipelined batches, in order. A batch that fails is
/// kept and sent again (with backoff) until Redis takes it: the queue behind it fills,
/// and once full new deliveries are refused to their senders. A batch sent again may
/// reach some instance twice; receivers drop the copies (`RedisBusState::first_time`).
async fn publisher(
    mut conn: ConnectionManager,
    mut rx: mpsc::Receiver<Outgoing>,
    shared: Weak<RedisBusState>,
) {
    let mut batch = Vec::with_capacity(256);
    let mut backoff = MIN_BACKOFF;
    // Instances listening when Redis was last reachable.
    let mut known = listeners(&mut conn).await.unwrap_or(0);
    let mut down = false;
    let mut census = tokio::time::interval(CENSUS);
    census.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if batch.is_empty() {
            tokio::select! {
                n = rx.recv_many(&mut batch, 256) => if n == 0 { return },
                _ = census.tick() => {
                    // Idle: count the listeners, and find out whether Redis is back.
                    match listeners(&mut conn).await {
                        Some(n) => {
                            if down {
                                await_listeners(&mut conn, &shared, known).await;
                                down = false;
                                recovered(&shared);
                            }
                            known = n;
                        }
                        None => down = true,
                    }
                    if let Some(sh) = shared.upgrade() {
                        sh.publishing.store(!down, Ordering::Relaxed);
                    }
                    continue;
                }
            }
        }
        if down {
            await_listeners(&mut conn, &shared, known).await;
        }
        let mut pipe = redis::pipe();
        for (channels, bytes) in &batch {
            for ch in channels {
                pipe.publish(ch, bytes.as_slice()).ignore();
            }
        }
        let r: redis::RedisResult<()> = pipe.query_async(&mut conn).await;
        let Some(sh) = shared.upgrade() else { return };
        match r {
            Ok(()) => {
                if down {
                    down = false;
                    recovered(&shared);
                }
                sh.publishing.store(true, Ordering::Relaxed);
                backoff = MIN_BACKOFF;
                batch.clear();
            }
            Err(e) => {
                if !down {
                    tracing::warn!(
                        waiting = batch.len(),
                        "redis publish failed ({e}); deliveries wait in the bus queue (bus.queue) until Redis is back"
                    );
                }
                down = true;
                sh.publishing.store(false, Ordering::Relaxed);
                drop(sh);
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

fn recovered(shared: &Weak<RedisBusState>) {
    if let Some(sh) = shared.upgrade() {
        sh.publishing.store(true, Ordering::Relaxed);
    }
    tracing::info!("redis publishing again; the bus backlog is sent in order");
}

/// How long the pub/sub connection may take to open.
const CONNECT: Duration = Duration::from_secs(5);

/// Keeps one pub/sub connection subscribed to this instance's interests, reconnecting
/// and resubscribing when it drops.
async fn subscriber(
    client: redis::Client,
    mut control: mpsc::UnboundedReceiver<(String, bool)>,
    shared: Weak<RedisBusState>,
) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let Some(sh) = shared.upgrade() else { return };
        // A connect that hangs (a Redis still starting, a half-open socket) is given up
        // and tried again, rather than leaving the instance unsubscribed for good.
        let connected = tokio::time::timeout(CONNECT, client.get_async_pubsub())
            .await
            .unwrap_or_else(|_| {
                Err(redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "connect timed out",
                )))
            });
        match connected {
            Ok(ps) => {
                let (mut sink, mut stream) = ps.split();
                let mut chans: Vec<String> = lock(&sh.interests).iter().cloned().collect();
                chans.push(ALL.to_string());
                if let Err(e) = sink.subscribe(&chans).await {
                    tracing::warn!("redis subscribe failed: {e}");
                } else {
                    sh.subscribed.store(true, Ordering::Relaxed);
                    tracing::info!(channels = chans.len(), "redis pub/sub subscribed");
                    backoff = MIN_BACKOFF;
                    drop(sh);
                    let mut probe = tokio::time::interval(CENSUS);
                    probe.tick().await;
                    loop {
                        tokio::select! {
                            _ = probe.tick() => {
                                // A half-open connection (a host gone without a reset)
                                // would otherwise look subscribed for ever.
                                let alive = tokio::time::timeout(CONNECT, sink.ping::<redis::Value>()).await;
                                if !matches!(alive, Ok(Ok(_))) {
                                    tracing::warn!("redis pub/sub connection does not answer");
                                    break;
                                }
                            }
                            c = control.recv() => {
                                let Some((ch, on)) = c else { return };
                                let r = if on { sink.subscribe(&ch).await } else { sink.unsubscribe(&ch).await };
                                if let Err(e) = r {
                                    tracing::warn!("redis (un)subscribe failed: {e}");
                                    break;
                                }
                            }
                            m = stream.next() => {
                                let Some(msg) = m else { break };
                                let Some(sh) = shared.upgrade() else { return };
                                sh.received(msg.get_payload_bytes());
                            }
                        }
                    }
                    let Some(sh) = shared.upgrade() else { return };
                    sh.subscribed.store(false, Ordering::Relaxed);
                    tracing::warn!("redis pub/sub connection lost; reconnecting");
                }
            }
            Err(e) => {
                sh.subscribed.store(false, Ordering::Relaxed);
                tracing::warn!("redis pub/sub connect failed ({e}); retrying in {backoff:?}");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}
