//! A connection's recovery state: its private session id, the offsets last queued to it
//! (where its client's offset is looked for), and the catch-up hold: while a recovering
//! connection's replay is read, what it is sent waits, then goes after the replay
//! without what the replay had.

use super::{Recover, Resume};
use crate::bus::Offset;
use crate::hub::outlet::{OutFrame, Outlet, SendFailure};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Offsets remembered per connection (the client's offset is looked for among them).
const REMEMBERED: usize = 16;

/// Frames held at most while a recovering connection catches up; over it, the
/// connection is a slow consumer.
const MAX_HELD: usize = 4096;

/// A connection's recovery state.
pub struct ConnRecovery {
    /// Its private session id.
    pub pid: Arc<str>,
    /// The session it takes up again, until registration takes it.
    resume: Option<Box<Resume>>,
    /// Where a raw WebSocket client's replay starts, until registration takes it.
    since: Option<Offset>,
    /// The last offsets queued to it, a ring (0: none), and where the next goes:
    /// atomics, as every delivery writes one.
    delivered: [AtomicU64; REMEMBERED],
    next: AtomicUsize,
    /// Whether it is catching up (then `hold` is `Some`): read on every delivery, the
    /// lock taken only while it is.
    catching_up: AtomicBool,
    /// While catching up: frames sent to it, held until the replay is written.
    hold: Mutex<Option<Vec<OutFrame>>>,
    /// The client left for good (a namespace disconnect, the server API): not saved.
    pub(super) forget: AtomicBool,
    /// A new connection took the session over: this one's end leaves it alone.
    pub(super) taken: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ConnRecovery {
    pub(crate) fn new(r: Recover) -> ConnRecovery {
        let catching_up = r.resume.is_some() || r.since.is_some();
        ConnRecovery {
            pid: r.pid,
            resume: r.resume,
            since: r.since,
            delivered: std::array::from_fn(|_| AtomicU64::new(0)),
            next: AtomicUsize::new(0),
            catching_up: AtomicBool::new(catching_up),
            hold: Mutex::new(catching_up.then(Vec::new)),
            forget: AtomicBool::new(false),
            taken: AtomicBool::new(false),
        }
    }

    /// The session to take up again (once).
    pub(crate) fn take_resume(&mut self) -> Option<Box<Resume>> {
        self.resume.take()
    }

    /// Where a raw WebSocket client's replay starts (once).
    pub(crate) fn take_since(&mut self) -> Option<Offset> {
        self.since.take()
    }

    /// Sends (or holds, while catching up) a frame, remembering its offset.
    pub(crate) fn send(&self, outlet: &dyn Outlet, frame: &OutFrame) -> Result<(), SendFailure> {
        if self.catching_up.load(Ordering::Acquire) {
            let mut hold = lock(&self.hold);
            if let Some(held) = hold.as_mut() {
                if held.len() >= MAX_HELD {
                    return Err(SendFailure::Full);
                }
                held.push(frame.clone());
                return Ok(());
            }
        }
        self.write(outlet, frame)
    }

    fn write(&self, outlet: &dyn Outlet, frame: &OutFrame) -> Result<(), SendFailure> {
        outlet.send(frame)?;
        if let Some(seq) = frame.seq {
            let at = self.next.fetch_add(1, Ordering::Relaxed) % REMEMBERED;
            self.delivered[at].store(seq, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Ends the catch-up: the replay is written, then what was held (without what the
    /// replay held too), in order, under the hold's lock so that nothing new slips
    /// between.
    pub(super) fn release(
        &self,
        outlet: &dyn Outlet,
        replay: &[OutFrame],
    ) -> Result<(), SendFailure> {
        let mut hold = lock(&self.hold);
        let held = hold.take().unwrap_or_default();
        let replayed: HashSet<u64> = replay.iter().filter_map(|f| f.seq).collect();
        for f in replay {
            self.write(outlet, f)?;
        }
        for f in &held {
            if f.seq.is_none_or(|s| !replayed.contains(&s)) {
                self.write(outlet, f)?;
            }
        }
        // Cleared under the lock, after the flush: a delivery that sees it cleared
        // comes after everything held.
        self.catching_up.store(false, Ordering::Release);
        Ok(())
    }

    /// The client left for good: its session is not kept.
    pub fn forget(&self) {
        self.forget.store(true, Ordering::Relaxed);
    }

    /// The offsets last queued to it, oldest first.
    pub(super) fn delivered(&self) -> Vec<u64> {
        let next = self.next.load(Ordering::Relaxed);
        (0..REMEMBERED)
            .map(|i| self.delivered[(next + i) % REMEMBERED].load(Ordering::Relaxed))
            .filter(|s| *s != 0)
            .collect()
    }
}
