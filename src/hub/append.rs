//! Kept facts on their way out with the Redis history: gathered in order, appended in
//! batches (one round trip for every fact that waited), then published and exported in
//! the same order, each with its offset. A sender is not held for the append's round
//! trip: its fact is accepted once queued here, as the Redis bus itself queues it, and
//! its answer waits only for the exports (webhooks) to store it, as before.
//!
//! Bounded by `bus.queue`: over it the sender is refused `unavailable` before anyone got
//! the fact. While the bus is not ready (Redis down) facts bypass this queue and go to
//! the bus at once, without an offset (their rooms' histories remember the gap), so that
//! the bus's own bound and refusal reach the sender as they did.

use super::{HubState, Refusal};
use crate::bus::{Delivery, Stored};
use std::sync::Weak;
use tokio::sync::{mpsc, oneshot};

/// Facts appended in one round trip at most.
const BATCH: usize = 256;

/// One kept fact to append, then publish; `stored` hears how its exports went (only
/// when a sender waits for them).
pub(super) struct Job {
    pub(super) delivery: Delivery,
    pub(super) stored: Option<oneshot::Sender<Result<Stored, Refusal>>>,
}

/// Starts the appender of `inner`; its queue holds `queue` facts.
pub(super) fn start(inner: Weak<HubState>, queue: usize) -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel(queue.max(1));
    tokio::spawn(run(inner, rx));
    tx
}

async fn run(inner: Weak<HubState>, mut rx: mpsc::Receiver<Job>) {
    let mut jobs: Vec<Job> = Vec::with_capacity(BATCH);
    loop {
        if rx.recv_many(&mut jobs, BATCH).await == 0 {
            return;
        }
        let Some(hub) = inner.upgrade() else { return };
        let batch: Vec<&Delivery> = jobs.iter().map(|j| &j.delivery).collect();
        let offsets = hub.history.append_many(&batch).await;
        for (job, offset) in jobs.drain(..).zip(offsets) {
            let mut d = job.delivery;
            d.offset = offset;
            let published = hub.publish_delivery(d, true);
            match (published, job.stored) {
                (r, Some(to)) => {
                    let _ = to.send(r);
                }
                (Ok(stored), None) => drop(stored),
                (Err(r), None) => {
                    tracing::warn!("a kept fact was not published: {}", r.message);
                }
            }
        }
    }
}
