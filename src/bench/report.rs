//! A bench run's results: JSON for tools, a Markdown row for people.

use super::{Options, Stats, Window};
use serde::Serialize;
use std::sync::atomic::Ordering;

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Worst.
    pub max: f64,
}

/// One run's results.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The label given.
    pub label: String,
    /// The clients' dialect.
    pub dialect: String,
    /// Clients asked for.
    pub clients: usize,
    /// Clients connected and joined.
    pub connected: usize,
    /// Rooms.
    pub rooms: usize,
    /// Senders.
    pub senders: usize,
    /// Target send rate, messages per second.
    pub rate: f64,
    /// Connections established per second during the ramp.
    pub connects_per_sec: f64,
    /// Connections that failed.
    pub connect_errors: u64,
    /// Messages sent in the measured window.
    pub sent: u64,
    /// Messages sent per second (below `rate`: the senders fell behind).
    pub sent_per_sec: f64,
    /// Messages received in the measured window (one per recipient; not those that
    /// arrived after it closed).
    pub delivered: u64,
    /// Deliveries per second.
    pub delivered_per_sec: f64,
    /// End-to-end latency (send → receive).
    pub latency_ms: Latency,
    /// Error events and lost connections.
    pub errors: u64,
    /// Server RSS once the clients were connected, KiB (all pids).
    pub rss_idle_kib: Option<u64>,
    /// Server RSS at most during the run, KiB.
    pub rss_peak_kib: Option<u64>,
    /// Idle RSS per connection, KiB.
    pub rss_per_conn_kib: Option<f64>,
}

impl Report {
    pub(super) fn new(
        opts: &Options,
        stats: &Stats,
        connected: usize,
        connect_secs: f64,
        window: &Window,
        rss_idle: Option<u64>,
        rss_peak: u64,
    ) -> Report {
        let h = stats.merged();
        let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        let (sent, delivered) = (window.sent, window.delivered);
        let secs = window.length.as_secs_f64();
        Report {
            label: opts.label.clone(),
            dialect: opts.dialect.clone(),
            clients: opts.clients,
            connected,
            rooms: opts.rooms,
            senders: opts.senders,
            rate: opts.rate,
            connects_per_sec: if connect_secs > 0.0 {
                connected as f64 / connect_secs
            } else {
                0.0
            },
            connect_errors: stats.connect_errors.load(Ordering::Relaxed),
            sent,
            sent_per_sec: if secs > 0.0 { sent as f64 / secs } else { 0.0 },
            delivered,
            delivered_per_sec: if secs > 0.0 {
                delivered as f64 / secs
            } else {
                0.0
            },
            latency_ms: Latency {
                p50: ms(0.5),
                p90: ms(0.9),
                p99: ms(0.99),
                p999: ms(0.999),
                max: h.max() as f64 / 1000.0,
            },
            errors: stats.errors.load(Ordering::Relaxed),
            rss_idle_kib: rss_idle,
            rss_peak_kib: rss_idle.map(|_| rss_peak),
            rss_per_conn_kib: rss_idle.map(|r| r as f64 / connected.max(1) as f64),
        }
    }

    /// The Markdown table header matching [`Report::markdown_row`].
    pub fn markdown_header() -> &'static str {
        "| label | dialect | clients | rooms | senders | rate/s | connects/s | delivered/s | p50 ms | p90 ms | p99 ms | p99.9 ms | errors | RSS idle MiB | RSS/conn KiB | RSS peak MiB |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    }

    /// This run as a Markdown table row.
    pub fn markdown_row(&self) -> String {
        let mib = |k: Option<u64>| k.map_or("–".into(), |k| format!("{:.1}", k as f64 / 1024.0));
        format!(
            "| {} | {} | {} | {} | {} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} |",
            self.label,
            self.dialect,
            self.connected,
            self.rooms,
            self.senders,
            self.rate,
            self.connects_per_sec,
            self.delivered_per_sec,
            self.latency_ms.p50,
            self.latency_ms.p90,
            self.latency_ms.p99,
            self.latency_ms.p999,
            self.errors + self.connect_errors,
            mib(self.rss_idle_kib),
            self.rss_per_conn_kib
                .map_or("–".into(), |k| format!("{k:.1}")),
            mib(self.rss_peak_kib),
        )
    }
}
