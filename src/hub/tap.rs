//! The traffic tap: a sample of what this instance fans out, for the console's traffic
//! view. Off (one atomic load per delivery) unless a console watches; then at most
//! [`PER_SECOND`] deliveries a second are kept, the others counted as skipped, in a ring
//! of [`KEPT`]: a console never slows delivery, and its memory is bounded.

use crate::event::{Event, now_millis};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The most deliveries sampled per second.
pub const PER_SECOND: u32 = 20;

/// The most samples kept.
pub const KEPT: usize = 200;

/// One sampled delivery.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Its number (rising), for a watcher to ask what is new.
    pub seq: u64,
    /// When, Unix ms.
    pub at: i64,
    /// The canonical event.
    pub event: Event,
    /// The dialects it was sent in, with how many connections each.
    pub to: Vec<(Arc<str>, u64)>,
    /// Its size as canonical JSON, bytes.
    pub size: usize,
}

#[derive(Default)]
struct Ring {
    samples: VecDeque<Sample>,
    next: u64,
    second: i64,
    taken: u32,
    skipped: u64,
}

/// The tap.
#[derive(Default)]
pub struct Tap {
    watchers: AtomicUsize,
    ring: Mutex<Ring>,
}

impl Tap {
    /// One more watcher: the tap samples while any watches.
    pub fn watch(&self) {
        self.watchers.fetch_add(1, Ordering::Relaxed);
    }

    /// One watcher fewer.
    pub fn unwatch(&self) {
        self.watchers.fetch_sub(1, Ordering::Relaxed);
    }

    /// Whether anyone watches.
    pub fn active(&self) -> bool {
        self.watchers.load(Ordering::Relaxed) > 0
    }

    /// Whether this second's budget takes one more delivery (counted as taken); when
    /// not, the delivery is counted as skipped. Cheap: the caller builds a sample only
    /// when it is wanted.
    pub fn wants(&self) -> bool {
        let at = now_millis();
        let mut r = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        if at / 1000 != r.second {
            r.second = at / 1000;
            r.taken = 0;
        }
        if r.taken >= PER_SECOND {
            r.skipped += 1;
            return false;
        }
        r.taken += 1;
        true
    }

    /// Keeps a delivery [`Tap::wants`] took.
    pub fn offer(&self, event: &Event, to: Vec<(Arc<str>, u64)>) {
        let at = now_millis();
        let size = serde_json::to_vec(event).map(|v| v.len()).unwrap_or(0);
        let mut r = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let seq = r.next;
        r.next += 1;
        if r.samples.len() >= KEPT {
            r.samples.pop_front();
        }
        r.samples.push_back(Sample {
            seq,
            at,
            event: event.clone(),
            to,
            size,
        });
    }

    /// The samples after `seq` (all kept when `None`), and how many deliveries were
    /// skipped since the tap began.
    pub fn since(&self, seq: Option<u64>) -> (Vec<Sample>, u64) {
        let r = self.ring.lock().unwrap_or_else(|p| p.into_inner());
        let new = r
            .samples
            .iter()
            .filter(|s| seq.is_none_or(|q| s.seq > q))
            .cloned()
            .collect();
        (new, r.skipped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_only_while_watched_and_within_budget() {
        let tap = Tap::default();
        assert!(!tap.active());
        {
            tap.watch();
            assert!(tap.active());
            let ev = Event::new("message.created", serde_json::Map::new());
            for _ in 0..(PER_SECOND * 3) {
                if tap.wants() {
                    tap.offer(&ev, vec![(Arc::from("nexus"), 2)]);
                }
            }
            let (got, skipped) = tap.since(None);
            // Within one second (or across a second's edge: at most twice the budget).
            assert!(got.len() as u32 >= PER_SECOND && got.len() as u32 <= 2 * PER_SECOND);
            assert_eq!(got.len() as u64 + skipped, u64::from(PER_SECOND * 3));
            let last = got.last().map(|s| s.seq);
            assert!(tap.since(last).0.is_empty());
            tap.unwatch();
        }
        assert!(!tap.active());
    }
}
