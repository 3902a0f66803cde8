//! The Redis bus: deliveries fan out between instances by pub/sub. An instance subscribes
//! only to the channels of rooms it has local members in (plus `switchboard:all`), over
//! one pub/sub connection; it publishes over one multiplexed connection, from a bounded
//! queue, in pipelined batches. Local members get a delivery at once, without the round
//! trip. Both connections come back by themselves after a Redis restart (with backoff;
//! the subscriptions are renewed); while either is down, `ready()` is false and
//! deliveries to other instances are lost (pub/sub is at-most-once).

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
pub(super) struct Shared {
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
    shared: Arc<Shared>,
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
        let shared = Arc::new(Shared {
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
    pub(super) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl Shared {
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
        self.shared.deliver_local(&delivery);
        let n = self.shared.seq.fetch_add(1, Ordering::Relaxed);
        let bytes = Arc::new(wire::encode(&self.shared.instance, n, &delivery));
        self.out
            .try_send((wire::channels(&delivery.audience), bytes))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => BusError::Full("redis publish queue"),
                mpsc::error::TrySendError::Closed(_) => {
                    BusError::Unavailable("redis publisher stopped".into())
                }
            })
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

/// Publishes queued deliveries in pipelined batches.
async fn publisher(
    mut conn: ConnectionManager,
    mut rx: mpsc::Receiver<Outgoing>,
    shared: Weak<Shared>,
) {
    let mut batch = Vec::with_capacity(256);
    let mut backoff = Duration::from_millis(50);
    while rx.recv_many(&mut batch, 256).await > 0 {
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
                sh.publishing.store(true, Ordering::Relaxed);
                backoff = Duration::from_millis(50);
            }
            Err(e) => {
                sh.publishing.store(false, Ordering::Relaxed);
                tracing::warn!(
                    lost = batch.len(),
                    "redis publish failed ({e}); retrying the connection in {backoff:?}"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
        batch.clear();
    }
}

/// How long the pub/sub connection may take to open.
const CONNECT: Duration = Duration::from_secs(5);

/// Keeps one pub/sub connection subscribed to this instance's interests, reconnecting
/// and resubscribing when it drops.
async fn subscriber(
    client: redis::Client,
    mut control: mpsc::UnboundedReceiver<(String, bool)>,
    shared: Weak<Shared>,
) {
    let mut backoff = Duration::from_millis(50);
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
                    backoff = Duration::from_millis(50);
                    drop(sh);
                    loop {
                        tokio::select! {
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
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
