//! The in-process room history (the local bus): a ring of `history.size` entries per
//! room, a room forgotten `history.ttl` after its last fact, at most `history.rooms`
//! rooms (over it, the room written least recently is forgotten). The epoch is new at
//! every start: offsets from before a restart are another history's.

use super::{Offset, RoomEntries, new_epoch};
use crate::bus::{Delivery, RoomKey};
use crate::config::HistoryConfig;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One room's entries: `(seq, prev, delivery)`, oldest first.
struct Room {
    entries: VecDeque<(u64, Option<u64>, Arc<Delivery>)>,
    /// The last entry ever appended (kept when the entries expire).
    last: u64,
    written: Instant,
}

struct Rings {
    seq: u64,
    rooms: HashMap<RoomKey, Room>,
    /// Whether a room was ever forgotten for room: a room created since may have had an
    /// earlier history, so its first entry's predecessor is unknown.
    forgot: bool,
}

/// The in-process history.
pub struct LocalHistory {
    epoch: Arc<str>,
    size: usize,
    ttl: Duration,
    max_rooms: usize,
    rings: Mutex<Rings>,
}

impl LocalHistory {
    /// An empty history with a new epoch.
    pub fn new(cfg: &HistoryConfig) -> LocalHistory {
        LocalHistory {
            epoch: Arc::from(new_epoch()),
            size: cfg.size.max(1),
            ttl: cfg.ttl,
            max_rooms: cfg.rooms.max(1),
            rings: Mutex::new(Rings {
                seq: 0,
                rooms: HashMap::new(),
                forgot: false,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Rings> {
        self.rings.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends to each of the delivery's rooms (`gaps[i]`: room `i`'s last append
    /// failed) under one new offset.
    pub fn append(&self, d: &Delivery, gaps: &[bool]) -> Offset {
        let now = Instant::now();
        let mut g = self.lock();
        g.seq += 1;
        let seq = g.seq;
        let offset = Offset {
            epoch: self.epoch.clone(),
            seq,
        };
        let mut kept = d.clone();
        kept.offset = Some(offset.clone());
        let kept = Arc::new(kept);
        if g.rooms.len() + d.audience.rooms.len() > self.max_rooms {
            self.forget(&mut g, now);
        }
        let forgot = g.forgot;
        for (i, room) in d.audience.rooms.iter().enumerate() {
            let ring = g.rooms.entry(room.clone()).or_insert_with(|| Room {
                entries: VecDeque::new(),
                last: 0,
                written: now,
            });
            let fresh = ring.entries.is_empty() && ring.last == 0;
            if now.duration_since(ring.written) > self.ttl {
                ring.entries.clear();
            }
            let prev = if gaps.get(i).copied().unwrap_or(false) || (fresh && forgot) {
                None
            } else {
                Some(ring.last)
            };
            if ring.entries.len() >= self.size {
                ring.entries.pop_front();
            }
            ring.entries.push_back((seq, prev, kept.clone()));
            ring.last = seq;
            ring.written = now;
        }
        offset
    }

    /// Forgets expired rooms; if still at the bound, the least recently written.
    fn forget(&self, g: &mut Rings, now: Instant) {
        let ttl = self.ttl;
        g.rooms.retain(|_, r| now.duration_since(r.written) <= ttl);
        while g.rooms.len() >= self.max_rooms {
            let Some(oldest) = g
                .rooms
                .iter()
                .min_by_key(|(_, r)| r.written)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            g.rooms.remove(&oldest);
            g.forgot = true;
        }
    }

    /// The epoch and the last offset given.
    pub fn head(&self) -> Offset {
        Offset {
            epoch: self.epoch.clone(),
            seq: self.lock().seq,
        }
    }

    /// Each room's entries after `floor`, with the epoch.
    pub fn since(&self, rooms: &[RoomKey], floor: u64) -> (Arc<str>, Vec<RoomEntries>) {
        let now = Instant::now();
        let g = self.lock();
        let per_room = rooms
            .iter()
            .map(|room| match g.rooms.get(room) {
                Some(r) if now.duration_since(r.written) <= self.ttl => r
                    .entries
                    .iter()
                    .filter(|(seq, _, _)| *seq > floor)
                    .cloned()
                    .collect(),
                // Expired or never written: nothing after `floor` (the history outlives
                // every recoverable session), or a forgotten room, which its next entry
                // will say.
                _ => Vec::new(),
            })
            .collect();
        (self.epoch.clone(), per_room)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::Audience;
    use crate::event::Event;

    fn to(rooms: &[&str]) -> Delivery {
        Delivery {
            event: Event::new("message.created", serde_json::Map::new()),
            audience: Audience {
                rooms: rooms.iter().map(|r| RoomKey::conversation(r)).collect(),
                ..Audience::default()
            },
            offset: None,
        }
    }

    fn cfg(size: usize, rooms: usize) -> HistoryConfig {
        HistoryConfig {
            size,
            rooms,
            ..HistoryConfig::default()
        }
    }

    #[test]
    fn a_ring_keeps_the_newest_and_names_each_predecessor() {
        let h = LocalHistory::new(&cfg(3, 10));
        for _ in 0..5 {
            h.append(&to(&["a"]), &[false]);
        }
        let (_, rooms) = h.since(&[RoomKey::conversation("a")], 0);
        let seqs: Vec<(u64, Option<u64>)> = rooms[0].iter().map(|(s, p, _)| (*s, *p)).collect();
        assert_eq!(seqs, [(3, Some(2)), (4, Some(3)), (5, Some(4))]);
        assert_eq!(h.head().seq, 5);
    }

    #[test]
    fn one_offset_for_every_room_of_a_fact_and_a_gap_remembered() {
        let h = LocalHistory::new(&cfg(10, 10));
        let o = h.append(&to(&["a", "b"]), &[false, true]);
        let (_, rooms) = h.since(&[RoomKey::conversation("a"), RoomKey::conversation("b")], 0);
        assert_eq!(rooms[0][0].0, o.seq);
        assert_eq!(rooms[1][0].0, o.seq);
        assert_eq!(rooms[0][0].1, Some(0));
        assert_eq!(rooms[1][0].1, None, "b's last append failed");
        assert_eq!(rooms[0][0].2.offset.as_ref(), Some(&o));
    }

    #[test]
    fn over_the_room_bound_the_oldest_room_is_forgotten_and_a_new_one_is_unsure() {
        let h = LocalHistory::new(&cfg(10, 2));
        h.append(&to(&["a"]), &[false]);
        h.append(&to(&["b"]), &[false]);
        h.append(&to(&["c"]), &[false]);
        let (_, rooms) = h.since(&[RoomKey::conversation("a"), RoomKey::conversation("c")], 0);
        assert!(rooms[0].is_empty(), "a was forgotten");
        assert_eq!(rooms[1][0].1, None, "c may have had an earlier history");
    }
}
