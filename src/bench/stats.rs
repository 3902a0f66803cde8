//! What a bench run measures, shared by every client task: counters, a latency
//! histogram (sharded, so that tasks rarely wait on each other), and the server's RSS.

use hdrhistogram::Histogram;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

const SHARDS: usize = 16;

/// Counters and latencies of one run.
pub struct Stats {
    /// Messages sent by the senders.
    pub sent: AtomicU64,
    /// Messages received by clients (one per recipient).
    pub delivered: AtomicU64,
    /// Connections that failed to open or to join.
    pub connect_errors: AtomicU64,
    /// Error events received and connections lost during the run.
    pub errors: AtomicU64,
    latency: Vec<Mutex<Histogram<u64>>>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats::new()
    }
}

impl Stats {
    /// Empty statistics; latencies from 1 µs to 60 s, 3 significant digits.
    pub fn new() -> Stats {
        let latency = (0..SHARDS).map(|_| Mutex::new(histogram())).collect();
        Stats {
            sent: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            connect_errors: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency,
        }
    }

    /// Records one delivery's latency, in microseconds, from client `shard`.
    pub fn record(&self, shard: usize, micros: u64) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        let mut h = self.latency[shard % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        h.saturating_record(micros.max(1));
    }

    /// All latencies merged.
    pub fn merged(&self) -> Histogram<u64> {
        let mut all = histogram();
        for h in &self.latency {
            let h = h.lock().unwrap_or_else(|p| p.into_inner());
            let _ = all.add(&*h);
        }
        all
    }

    /// Forgets latencies and deliveries (after the warm-up).
    pub fn reset(&self) {
        self.sent.store(0, Ordering::Relaxed);
        self.delivered.store(0, Ordering::Relaxed);
        for h in &self.latency {
            h.lock().unwrap_or_else(|p| p.into_inner()).reset();
        }
    }
}

/// 1 µs to 60 s at 3 significant digits (constants hdrhistogram accepts).
fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid constant histogram bounds")
}

/// The resident set size of a process, in KiB (`VmRSS` of /proc/PID/status).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
