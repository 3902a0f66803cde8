//! Room history: every kept fact (messages, edits, deletes, reactions, reads) is
//! appended once, before fan-out, to a bounded history of each room it goes to, under
//! one offset: an epoch (which history) and a sequence number (where in it), increasing
//! across every room of the deployment, so that one offset says what a client in
//! several rooms has seen. Two backends: a bounded ring per room in process (the local
//! bus), Redis Streams (the Redis bus: every instance appends to and reads the same).
//!
//! Honest limits: each entry names the room's previous entry (`prev`), so a replay can
//! tell a gap (entries evicted, an append that failed while Redis was unreachable, a
//! room forgotten) from a quiet room, and an offset from another epoch (a history that
//! was lost) is never taken for one of ours.

mod local;
mod redis;

use local::LocalHistory;
use redis::RedisHistory;

pub use crate::bus::Offset;
pub(crate) use crate::bus::new_epoch;

use crate::bus::{Audience, Delivery, RoomKey};
use crate::config::HistoryConfig;
use crate::event::Event;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;

/// One kept fact, as delivered (its offset set).
#[derive(Debug, Clone)]
pub struct Kept {
    /// Its position.
    pub seq: u64,
    /// The delivery (event, audience, offset).
    pub delivery: Arc<Delivery>,
}

/// What a client missed since an offset.
#[derive(Debug, Clone, Default)]
pub struct Replay {
    /// The kept facts after the offset in the rooms asked for, in order, each once.
    pub kept: Vec<Kept>,
    /// `false` when the history no longer holds everything after the offset (evicted,
    /// expired, an append failed, another epoch).
    pub complete: bool,
}

/// One room's entries after an offset, as a backend read them: `(seq, prev, delivery)`
/// in order (`prev` `None`: the predecessor is unknown, a gap).
pub(crate) type RoomEntries = Vec<(u64, Option<u64>, Arc<Delivery>)>;

/// Why the history could not be used.
#[derive(Debug, Clone, Error)]
#[error("room history unavailable: {0}")]
pub struct HistoryError(pub String);

/// The backend in use.
enum Backend {
    Off,
    Local(LocalHistory),
    Redis(RedisHistory),
}

/// The room history.
pub struct History {
    backend: Backend,
    /// The canonical events kept.
    kept: HashSet<String>,
    /// Rooms whose last append failed: their next entry says its predecessor is
    /// unknown.
    gapped: Mutex<HashSet<RoomKey>>,
    /// While Redis is unreachable, appends are not tried (each would wait for the
    /// connection's timeout) until this instant.
    resting_until: Mutex<Option<Instant>>,
}

/// How long appends rest after one failed.
const REST: Duration = Duration::from_secs(1);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl History {
    /// No history: nothing is kept, nothing recovers.
    pub fn off() -> History {
        History::with(Backend::Off, &HistoryConfig::default())
    }

    /// In process (the local bus).
    pub fn local(cfg: &HistoryConfig) -> History {
        if cfg.size == 0 {
            return History::off();
        }
        History::with(Backend::Local(LocalHistory::new(cfg)), cfg)
    }

    /// In Redis Streams, on `conn`.
    pub fn redis(conn: ::redis::aio::ConnectionManager, cfg: &HistoryConfig) -> History {
        if cfg.size == 0 {
            return History::off();
        }
        History::with(Backend::Redis(RedisHistory::new(conn, cfg)), cfg)
    }

    fn with(backend: Backend, cfg: &HistoryConfig) -> History {
        History {
            backend,
            kept: cfg.events.iter().cloned().collect(),
            gapped: Mutex::new(HashSet::new()),
            resting_until: Mutex::new(None),
        }
    }

    /// Whether any history is kept.
    pub fn is_on(&self) -> bool {
        !matches!(self.backend, Backend::Off)
    }

    /// Whether a delivery of `event` to `audience` is kept: a kept event, to rooms
    /// (a broadcast to everyone is not).
    pub fn keeps(&self, event: &Event, audience: &Audience) -> bool {
        self.is_on()
            && !audience.everyone
            && !audience.rooms.is_empty()
            && audience.then.is_none()
            && self.kept.contains(&*event.name)
    }

    /// Appends a delivery to the history of each of its rooms, under one new offset
    /// (`None`: not kept). When the backend fails, the delivery goes on without an
    /// offset and its rooms remember the gap: a later replay across it says it is
    /// incomplete.
    pub async fn append(&self, d: &Delivery) -> Option<Offset> {
        self.append_many(&[d]).await.pop().flatten()
    }

    /// A kept fact that goes out without being appended (the backend is unreachable):
    /// its rooms remember the gap.
    pub fn skip(&self, d: &Delivery) {
        if self.keeps(&d.event, &d.audience) {
            lock(&self.gapped).extend(d.audience.rooms.iter().cloned());
        }
    }

    /// Whether appends go to Redis (then `hub::append` gathers them in batches).
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Redis(_))
    }

    /// Appends deliveries in order (each as [`History::append`] does), in one round
    /// trip to Redis.
    pub async fn append_many(&self, batch: &[&Delivery]) -> Vec<Option<Offset>> {
        let kept: Vec<(usize, &Delivery, Vec<bool>)> = {
            let g = lock(&self.gapped);
            batch
                .iter()
                .enumerate()
                .filter(|(_, d)| self.keeps(&d.event, &d.audience))
                .map(|(i, d)| {
                    (
                        i,
                        *d,
                        d.audience.rooms.iter().map(|r| g.contains(r)).collect(),
                    )
                })
                .collect()
        };
        let mut out = vec![None; batch.len()];
        if kept.is_empty() {
            return out;
        }
        let r: Result<Vec<Offset>, HistoryError> = match &self.backend {
            Backend::Off => return out,
            Backend::Local(h) => Ok(kept.iter().map(|(_, d, gaps)| h.append(d, gaps)).collect()),
            Backend::Redis(h) => {
                let resting = lock(&self.resting_until).is_some_and(|t| Instant::now() < t);
                if resting {
                    Err(HistoryError("resting after a failure".into()))
                } else {
                    let items: Vec<(&Delivery, Vec<bool>)> =
                        kept.iter().map(|(_, d, g)| (*d, g.clone())).collect();
                    h.append_many(&items).await
                }
            }
        };
        match r {
            Ok(offsets) => {
                let mut g = lock(&self.gapped);
                for ((i, d, gaps), o) in kept.iter().zip(offsets) {
                    if gaps.iter().any(|x| *x) {
                        for r in &d.audience.rooms {
                            g.remove(r);
                        }
                    }
                    out[*i] = Some(o);
                }
            }
            Err(e) => {
                tracing::warn!(
                    facts = kept.len(),
                    "not kept in the room history (recoveries across them will say so): {e}"
                );
                *lock(&self.resting_until) = Some(Instant::now() + REST);
                let mut g = lock(&self.gapped);
                for (_, d, _) in &kept {
                    g.extend(d.audience.rooms.iter().cloned());
                }
            }
        }
        out
    }

    /// The current epoch, and the last offset given (0 before any).
    ///
    /// # Errors
    /// The backend is unreachable.
    pub async fn head(&self) -> Result<Offset, HistoryError> {
        match &self.backend {
            Backend::Off => Err(HistoryError("room history is off".into())),
            Backend::Local(h) => Ok(h.head()),
            Backend::Redis(h) => h.head().await,
        }
    }

    /// What `rooms` were sent after `after`, not counting the facts in `seen` (sent to
    /// the client and received: they came before its offset).
    ///
    /// # Errors
    /// The backend is unreachable.
    pub async fn since(
        &self,
        rooms: &[RoomKey],
        after: &Offset,
        seen: &HashSet<u64>,
    ) -> Result<Replay, HistoryError> {
        let (epoch, per_room) = match &self.backend {
            Backend::Off => return Err(HistoryError("room history is off".into())),
            Backend::Local(h) => h.since(rooms, after.seq),
            Backend::Redis(h) => h.since(rooms, after.seq).await?,
        };
        if *epoch != *after.epoch {
            return Ok(Replay::default());
        }
        Ok(merge(per_room, after.seq, seen))
    }

    /// Everything `room`'s history holds, oldest first, and whether it holds the room's
    /// whole history since its first entry (`false` once something was evicted).
    ///
    /// # Errors
    /// The backend is unreachable.
    pub async fn room(&self, room: &RoomKey) -> Result<Replay, HistoryError> {
        let (_, mut per_room) = match &self.backend {
            Backend::Off => return Err(HistoryError("room history is off".into())),
            Backend::Local(h) => h.since(std::slice::from_ref(room), 0),
            Backend::Redis(h) => h.since(std::slice::from_ref(room), 0).await?,
        };
        let entries = per_room.pop().unwrap_or_default();
        let complete = whole(&entries, 0);
        Ok(Replay {
            kept: entries
                .into_iter()
                .map(|(seq, _, delivery)| Kept { seq, delivery })
                .collect(),
            complete,
        })
    }
}

/// Whether a room's entries after `floor` are all there: each names the one before it,
/// the first one at or before `floor`.
fn whole(entries: &[(u64, Option<u64>, Arc<Delivery>)], floor: u64) -> bool {
    let mut expect = None;
    for (seq, prev, _) in entries {
        let ok = match (prev, expect) {
            (None, _) => false,
            (Some(p), None) => *p <= floor,
            (Some(p), Some(e)) => *p == e,
        };
        if !ok {
            return false;
        }
        expect = Some(*seq);
    }
    true
}

/// The rooms' entries after `floor` as one replay in offset order, each fact once (a
/// fact to two rooms is in both), without those already `seen`.
fn merge(per_room: Vec<RoomEntries>, floor: u64, seen: &HashSet<u64>) -> Replay {
    let complete = per_room.iter().all(|e| whole(e, floor));
    let mut kept: Vec<Kept> = per_room
        .into_iter()
        .flatten()
        .filter(|(seq, _, _)| *seq > floor && !seen.contains(seq))
        .map(|(seq, _, delivery)| Kept { seq, delivery })
        .collect();
    kept.sort_by_key(|k| k.seq);
    kept.dedup_by_key(|k| k.seq);
    Replay { kept, complete }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d() -> Arc<Delivery> {
        Arc::new(Delivery {
            event: Event::new("message.created", serde_json::Map::new()),
            audience: Audience::room(RoomKey::conversation("r")),
            offset: None,
        })
    }

    #[test]
    fn a_gap_is_told_from_a_quiet_room() {
        // Entries 5 (after 2) and 9 (after 5): complete after 2, 3 or 4; not after 1.
        let e = vec![(5, Some(2), d()), (9, Some(5), d())];
        assert!(whole(&e, 2));
        assert!(whole(&e, 4));
        assert!(!whole(&e, 1), "entry 2 was evicted");
        assert!(whole(&[], 7), "nothing happened");
        assert!(!whole(&[(5, None, d())], 4), "an append failed before 5");
        assert!(!whole(&[(5, Some(2), d()), (9, Some(7), d())], 2));
    }

    #[test]
    fn rooms_merge_in_offset_order_once_each() {
        let a = vec![(3, Some(0), d()), (6, Some(3), d())];
        let b = vec![(4, Some(0), d()), (6, Some(4), d())];
        let seen: HashSet<u64> = [4].into_iter().collect();
        let r = merge(vec![a, b], 2, &seen);
        assert!(r.complete);
        assert_eq!(r.kept.iter().map(|k| k.seq).collect::<Vec<_>>(), [3, 6]);
    }
}
