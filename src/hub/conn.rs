//! One client connection as the hub sees it: who, which dialect, which rooms, and the
//! bounded sink its frames go to.

use super::outlet::{OutFrame, Outlet, SendFailure};
use super::recovery::{ConnRecovery, Recover};
use crate::bus::RoomKey;
use crate::config::Transport;
use crate::dialect::DecodeContext;
use crate::event::UserRef;
use smallvec::SmallVec;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// Hub-local connection id.
pub type ConnId = u64;

/// A connection registered with the hub.
pub struct Conn {
    /// Hub-local id.
    pub id: ConnId,
    /// The dialect it speaks.
    pub dialect: Arc<str>,
    /// Its transport.
    pub transport: Transport,
    /// The id clients see (`socketId`): the Socket.IO sid, or `ws-<id>`.
    pub socket_id: Arc<str>,
    /// The authenticated user.
    pub user: UserRef,
    /// Rooms the token grants, if it names any.
    pub claims: Option<Vec<String>>,
    /// When it connected, Unix ms.
    pub connected_at: i64,
    /// Its `User-Agent`.
    pub user_agent: Option<Arc<str>>,
    /// The peer address.
    pub ip: Option<IpAddr>,
    /// Cancelled when the hub cuts the connection (slow consumer, shutdown).
    pub cancel: CancellationToken,
    /// A full member of the hub (see [`NewConn::member`]).
    pub member: bool,
    /// The upstream its route fronts, if any.
    pub upstream: Option<Arc<str>>,
    /// Its recovery state, on a recovering route (boxed: most connections have none).
    pub recovery: Option<Box<ConnRecovery>>,
    rooms: Mutex<RoomSet>,
    outlet: Box<dyn Outlet>,
    closed: AtomicBool,
    bucket: Mutex<Bucket>,
    last_seen: AtomicI64,
    /// Fault injection: the next frame handled for this connection panics.
    fault: AtomicBool,
}

/// The rooms of one connection, in order: a sorted small vector. Most connections are
/// in their personal room and a room or two, which it holds without allocating (a
/// `BTreeSet` allocates a 280-byte node for the first); `limits.max_rooms` bounds it.
#[derive(Debug, Default)]
pub struct RoomSet(SmallVec<[RoomKey; 2]>);

impl RoomSet {
    /// Adds `room`; `false` if it was there.
    pub fn insert(&mut self, room: RoomKey) -> bool {
        match self.0.binary_search(&room) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, room);
                true
            }
        }
    }

    /// Removes `room`; `false` if it was not there.
    pub fn remove(&mut self, room: &RoomKey) -> bool {
        match self.0.binary_search(room) {
            Ok(at) => {
                self.0.remove(at);
                true
            }
            Err(_) => false,
        }
    }

    /// Whether `room` is in it.
    pub fn contains(&self, room: &RoomKey) -> bool {
        self.0.binary_search(room).is_ok()
    }

    /// The rooms, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, RoomKey> {
        self.0.iter()
    }

    /// How many.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A token bucket, and how many events in a row it refused.
struct Bucket {
    tokens: f64,
    at: Instant,
    strikes: u32,
}

/// What the rate limit says about one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    /// Within the limit.
    Ok,
    /// Over it: refuse the event.
    Refuse,
    /// Over it too often in a row: close the connection.
    Close,
}

/// What a listener knows of a new connection.
pub struct NewConn {
    /// The dialect it speaks.
    pub dialect: Arc<str>,
    /// Its transport.
    pub transport: Transport,
    /// The id clients see, when the transport has one (Socket.IO sid).
    pub socket_id: Option<String>,
    /// The authenticated user.
    pub user: UserRef,
    /// Rooms the token grants.
    pub claims: Option<Vec<String>>,
    /// `User-Agent`.
    pub user_agent: Option<Arc<str>>,
    /// Peer address.
    pub ip: Option<IpAddr>,
    /// Where its frames go.
    pub outlet: Box<dyn Outlet>,
    /// A full member of the hub (rooms, presence, the ready event); `false` for a
    /// client whose events all go to a backend: the hub then only counts it, limits
    /// it and closes it at shutdown.
    pub member: bool,
    /// The upstream its route fronts, if any: the backend sends it that upstream's facts,
    /// so bridged copies of them skip it.
    pub upstream: Option<Arc<str>>,
    /// The token the connection is cut with, when the listener shares one between
    /// several hub connections (the namespaces of one Socket.IO connection); a new
    /// one otherwise.
    pub cancel: Option<CancellationToken>,
    /// On a recovering route: its pid, and the session it takes up again.
    pub recovery: Option<Recover>,
}

impl Conn {
    pub(crate) fn new(id: ConnId, n: NewConn, now: i64, burst: f64) -> Conn {
        let socket_id: Arc<str> = n.socket_id.unwrap_or_else(|| format!("ws-{id}")).into();
        Conn {
            id,
            dialect: n.dialect,
            transport: n.transport,
            socket_id,
            user: n.user,
            claims: n.claims,
            connected_at: now,
            user_agent: n.user_agent,
            ip: n.ip,
            cancel: n.cancel.unwrap_or_default(),
            member: n.member,
            upstream: n.upstream,
            recovery: n.recovery.map(|r| Box::new(ConnRecovery::new(r))),
            rooms: Mutex::new(RoomSet::default()),
            outlet: n.outlet,
            closed: AtomicBool::new(false),
            last_seen: AtomicI64::new(now),
            fault: AtomicBool::new(false),
            bucket: Mutex::new(Bucket {
                tokens: burst,
                at: Instant::now(),
                strikes: 0,
            }),
        }
    }

    /// Last activity, Unix ms.
    pub fn last_seen(&self) -> i64 {
        self.last_seen.load(Ordering::Relaxed)
    }

    /// Records activity.
    pub fn seen(&self, at: i64) {
        self.last_seen.store(at, Ordering::Relaxed);
    }

    /// Takes one token for an incoming event (refilled at `rate` per second up to
    /// `burst`).
    pub fn take_token(&self, rate: f64, burst: f64, strikes: u32) -> Rate {
        let mut b = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            b.strikes = 0;
            Rate::Ok
        } else {
            b.strikes += 1;
            if b.strikes > strikes {
                Rate::Close
            } else {
                Rate::Refuse
            }
        }
    }

    /// Who and where, for decoding its events on `instance`.
    pub fn decode_context<'a>(&'a self, instance: &'a str) -> DecodeContext<'a> {
        DecodeContext {
            user: Some(&self.user),
            instance,
            connection: &self.socket_id,
        }
    }

    /// The rooms it is in (its personal room included).
    pub fn rooms(&self) -> MutexGuard<'_, RoomSet> {
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether it is in `room`.
    pub fn in_room(&self, room: &RoomKey) -> bool {
        self.rooms().contains(room)
    }

    /// The conversation rooms it is in, by id.
    pub fn conversation_ids(&self) -> Vec<String> {
        self.rooms()
            .iter()
            .filter_map(|r| match r {
                RoomKey::Conversation(id) => Some(id.to_string()),
                RoomKey::User(_) | RoomKey::Dialect(_) => None,
            })
            .collect()
    }

    /// Queues a frame without waiting.
    ///
    /// # Errors
    /// The queue is full (slow consumer) or the connection is gone.
    pub fn send(&self, frame: &OutFrame) -> Result<(), SendFailure> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(SendFailure::Closed);
        }
        match &self.recovery {
            Some(r) => r.send(&*self.outlet, frame),
            None => self.outlet.send(frame),
        }
    }

    /// Where its frames go.
    pub(crate) fn outlet(&self) -> &dyn Outlet {
        &*self.outlet
    }

    /// Closes the connection from the server side, with a reason. Idempotent.
    pub fn close(&self, code: u16, reason: &str) {
        if self.closed.swap(true, Ordering::Relaxed) {
            return;
        }
        self.outlet.close(code, reason);
        self.cancel.cancel();
    }

    /// Fault injection for the reliability suite: the next frame the hub handles for
    /// this connection panics, in the task serving it.
    #[doc(hidden)]
    pub fn inject_panic(&self) {
        self.fault.store(true, Ordering::Relaxed);
    }

    /// Panics if a fault was injected (see [`Conn::inject_panic`]).
    pub(crate) fn check_fault(&self) {
        assert!(
            !self.fault.swap(false, Ordering::Relaxed),
            "fault injected into connection {}",
            self.id
        );
    }

    /// Whether the hub has closed it.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_set_keeps_its_rooms_sorted_and_once() {
        let mut r = RoomSet::default();
        assert!(r.insert(RoomKey::conversation("b")));
        assert!(r.insert(RoomKey::user("u")));
        assert!(r.insert(RoomKey::conversation("a")));
        assert!(!r.insert(RoomKey::conversation("a")));
        assert_eq!(r.len(), 3);
        assert!(r.contains(&RoomKey::conversation("b")));
        let mut sorted: Vec<RoomKey> = r.iter().cloned().collect();
        sorted.sort();
        assert_eq!(r.iter().cloned().collect::<Vec<_>>(), sorted);
        assert!(r.remove(&RoomKey::conversation("b")));
        assert!(!r.remove(&RoomKey::conversation("b")));
        assert!(!r.contains(&RoomKey::conversation("b")));
        assert_eq!(r.len(), 2);
        assert!(!r.is_empty());
    }
}
