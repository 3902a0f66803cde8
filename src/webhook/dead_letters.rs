//! The dead letters of the embedded store: held in memory for listing and replay,
//! mirrored in the journal, bounded (over the bound, the oldest goes, from the journal
//! too, and is counted).

use super::journal::Journal;
use super::letter::DeadLetter;
use crate::telemetry::Metrics;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The dead letters of every endpoint, bounded (over the bound, the oldest is dropped,
/// from the journal too, and counted).
pub struct DeadLetters {
    max: usize,
    items: Mutex<VecDeque<(u64, DeadLetter)>>,
    journal: Arc<Journal>,
    metrics: Arc<Metrics>,
}

impl DeadLetters {
    pub(super) fn new(max: usize, journal: Arc<Journal>, metrics: Arc<Metrics>) -> DeadLetters {
        DeadLetters {
            max,
            items: Mutex::new(VecDeque::new()),
            journal,
            metrics,
        }
    }

    /// Holds `l` under `key` (already in the journal, or `from` a pending delivery).
    pub(super) fn push(&self, key: u64, l: DeadLetter, from: Option<(&Arc<str>, u64)>) {
        tracing::warn!(endpoint = %l.endpoint, id = %l.id, attempts = l.attempts, "webhook dead-lettered: {}", l.last_error);
        self.journal.dead(from, key, &l);
        self.keep(key, l);
    }

    /// Holds a dead letter the journal already has.
    pub(super) fn keep(&self, key: u64, l: DeadLetter) {
        let mut items = lock(&self.items);
        if items.len() >= self.max
            && let Some((old, _)) = items.pop_front()
        {
            self.journal.remove_dead(old);
            self.metrics.webhook("*", "dead_letter_dropped");
        }
        items.push_back((key, l));
        self.metrics
            .webhook_dead
            .set(i64::try_from(items.len()).unwrap_or(i64::MAX));
    }

    pub(super) fn list(&self) -> Vec<DeadLetter> {
        lock(&self.items).iter().map(|(_, l)| l.clone()).collect()
    }

    pub(super) fn take(&self, id: Option<&str>) -> Vec<DeadLetter> {
        let mut items = lock(&self.items);
        let (take, keep): (Vec<_>, Vec<_>) = items
            .drain(..)
            .partition(|(_, l)| id.is_none_or(|i| l.id == i));
        items.extend(keep);
        self.metrics
            .webhook_dead
            .set(i64::try_from(items.len()).unwrap_or(i64::MAX));
        take.into_iter()
            .map(|(k, l)| {
                self.journal.remove_dead(k);
                l
            })
            .collect()
    }
}
