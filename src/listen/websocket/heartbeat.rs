//! One heartbeat for every served WebSocket, instead of a timer per connection: a task
//! ticks, and each connection, woken by its slot's tick, pings its client or ends a
//! connection it has heard nothing from for too long. A connection holds a watch
//! receiver (16 bytes) rather than a timer (a ~110-byte allocation and a wheel entry).
//! Connections are spread over [`SLOTS`] slots ticking in turn, so that their pings do
//! not all go out at once.

use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How many groups of connections tick in turn within one interval.
const SLOTS: usize = 16;

/// The shared heartbeat: every slot ticks once per `every`.
pub(crate) struct Heartbeat {
    slots: Vec<watch::Sender<()>>,
    every: Duration,
}

/// One connection's view of the heartbeat: its slot's ticks.
pub(crate) struct Beat(watch::Receiver<()>);

impl Heartbeat {
    /// A heartbeat ticking each slot every `every` (once [`Heartbeat::run`] runs).
    pub(crate) fn new(every: Duration) -> Heartbeat {
        Heartbeat {
            slots: (0..SLOTS).map(|_| watch::channel(()).0).collect(),
            every,
        }
    }

    /// A new connection's beat, in a slot picked at random: its first tick comes
    /// within one interval.
    pub(crate) fn beat(&self) -> Beat {
        Beat(self.slots[fastrand::usize(..SLOTS)].subscribe())
    }

    /// Ticks the slots in turn until `stop` is cancelled.
    pub(crate) async fn run(&self, stop: CancellationToken) {
        let step = (self.every / SLOTS as u32).max(Duration::from_millis(1));
        let mut ticker = tokio::time::interval(step);
        // The first tick of an interval is at once: skipped, slots tick a step apart.
        ticker.tick().await;
        let mut slot = 0;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            self.slots[slot].send_replace(());
            slot = (slot + 1) % SLOTS;
        }
    }
}

impl Beat {
    /// The slot's next tick (never, once the heartbeat is gone).
    pub(crate) async fn tick(&mut self) {
        if self.0.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_beat_ticks_once_per_interval_and_slots_tick_apart() {
        let every = Duration::from_millis(160);
        let hb = std::sync::Arc::new(Heartbeat::new(every));
        let stop = CancellationToken::new();
        let runner = tokio::spawn({
            let (hb, stop) = (hb.clone(), stop.clone());
            async move { hb.run(stop).await }
        });
        let t0 = tokio::time::Instant::now();
        // Each beat's first tick is within one interval; beats in different slots tick
        // at different times.
        let firsts: Vec<Duration> = futures_util::future::join_all((0..64).map(|_| {
            let mut b = hb.beat();
            async move {
                b.tick().await;
                t0.elapsed()
            }
        }))
        .await;
        assert!(firsts.iter().all(|t| *t <= every), "{firsts:?}");
        let mut distinct = firsts.clone();
        distinct.sort();
        distinct.dedup();
        assert!(distinct.len() > 4, "slots are staggered: {distinct:?}");
        // Then once per interval.
        let mut b = hb.beat();
        b.tick().await;
        for _ in 0..3 {
            let at = tokio::time::Instant::now();
            b.tick().await;
            assert_eq!(at.elapsed(), every);
        }
        stop.cancel();
        assert!(runner.await.is_ok());
    }
}
