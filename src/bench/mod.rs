//! `switchboard bench`: a load generator. Opens N clients of a dialect (Socket.IO over
//! websocket, or raw WebSocket envelopes), authenticates them, joins them to R rooms,
//! has S of them send at a total rate for a while, and reports connections per second,
//! deliveries per second, end-to-end latency percentiles (the send time travels in the
//! message), errors and the server's RSS. It ramps connections at a bounded rate, stops
//! by itself, and writes JSON and a Markdown row. It speaks to any server that talks the
//! dialect: switchboard, or the Node reference in `benches/node/`.

mod client;
mod report;
mod stats;

pub use report::Report;
pub use stats::{Stats, rss_kib};

use crate::auth::Authenticator;
use crate::config::{Config, Transport};
use crate::dialect::Registry;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

/// What to run.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Server base URL; repeat it to spread clients over instances (round robin).
    #[arg(long = "url", default_value = "http://127.0.0.1:3001")]
    pub urls: Vec<String>,
    /// The clients' dialect (its path and namespace come from the default config).
    #[arg(long, default_value = "chat-service")]
    pub dialect: String,
    /// Overrides the dialect's path (`/socket.io`, `/ws`).
    #[arg(long)]
    pub path: Option<String>,
    /// Overrides the dialect's Socket.IO namespace.
    #[arg(long)]
    pub ns: Option<String>,
    /// Clients.
    #[arg(long, default_value_t = 100)]
    pub clients: usize,
    /// Rooms (client i is in room i mod R).
    #[arg(long, default_value_t = 1)]
    pub rooms: usize,
    /// Senders (the first S clients).
    #[arg(long, default_value_t = 1)]
    pub senders: usize,
    /// Messages per second, all senders together (0: idle connections only).
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// How long the senders send.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Sending before the measurement starts (its deliveries are not counted).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// New connections per second at most.
    #[arg(long, default_value_t = 2000.0)]
    pub ramp: f64,
    /// HS256 secret the server verifies tokens with.
    #[arg(long, env = "AUTH_JWT_SECRET", default_value = crate::auth::DEVELOPMENT_SECRET, hide_env_values = true)]
    pub secret: String,
    /// Server process ids, for RSS (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub pid: Vec<u32>,
    /// A label for the report (`switchboard`, `node`, …).
    #[arg(long, default_value = "run")]
    pub label: String,
    /// Write the report as JSON here.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// PEM file of the CA that signed an `https://` server's certificate (unset: the
    /// system's roots).
    #[arg(long)]
    pub ca: Option<String>,
}

/// The measured window: how long, and what was sent and delivered in it.
#[derive(Debug, Default)]
pub(crate) struct Window {
    length: Duration,
    sent: u64,
    delivered: u64,
}

/// Everything a client needs, shared.
pub struct Plan {
    urls: Vec<String>,
    path: String,
    ns: String,
    raw_ws: bool,
    dialect: String,
    registry: Arc<Registry>,
    auth: Authenticator,
    rooms: usize,
    senders: usize,
    rate: f64,
    duration: Duration,
    drain: Duration,
    prefix: String,
    /// What `https://` servers are verified with.
    tls: Arc<rustls::ClientConfig>,
}

/// Runs a bench.
///
/// # Errors
/// An unknown dialect, or no client could connect.
pub async fn run(opts: &Options) -> anyhow::Result<Report> {
    let registry = Arc::new(Registry::embedded().map_err(|e| anyhow::anyhow!("{e}"))?);
    let cfg = Config::from_toml(crate::config::DEFAULT_TOML)
        .map_err(|e| anyhow::anyhow!("{}", e.join("; ")))?;
    let route = cfg
        .listeners
        .iter()
        .flat_map(|l| &l.routes)
        .find(|r| r.dialect == opts.dialect)
        .ok_or_else(|| anyhow::anyhow!("no route serves dialect `{}`", opts.dialect))?;
    anyhow::ensure!(
        opts.clients > 0 && opts.rooms > 0,
        "--clients and --rooms must be at least 1"
    );
    let ca = crate::config::ClientTls {
        ca: opts.ca.clone(),
        ..Default::default()
    };
    let tls =
        crate::tls::client::config(Some(&ca), "bench").map_err(|e| anyhow::anyhow!("--ca: {e}"))?;
    let plan = Arc::new(Plan {
        tls,
        urls: opts.urls.clone(),
        path: opts.path.clone().unwrap_or_else(|| route.path.clone()),
        ns: opts
            .ns
            .clone()
            .or_else(|| route.namespace.clone())
            .unwrap_or_else(|| "/".into()),
        raw_ws: route.transport == Transport::Websocket,
        dialect: opts.dialect.clone(),
        registry,
        auth: Authenticator::hs256(&opts.secret, Duration::ZERO),
        rooms: opts.rooms,
        senders: opts.senders.min(opts.clients),
        rate: opts.rate,
        duration: opts.warmup + opts.duration,
        drain: Duration::from_secs(1),
        prefix: format!("b{}", std::process::id()),
    });
    let stats = Arc::new(Stats::new());
    let (ready_tx, mut ready_rx) = mpsc::channel(opts.clients.min(4096));
    let (go_tx, go_rx) = watch::channel(None);
    // Ramp: at most `ramp` connection attempts per second.
    let t0 = Instant::now();
    let gap = Duration::from_secs_f64(1.0 / opts.ramp.max(1.0));
    let spawner = {
        let (plan, stats, go_rx) = (plan.clone(), stats.clone(), go_rx.clone());
        let clients = opts.clients;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(gap);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut handles = Vec::with_capacity(clients);
            for i in 0..clients {
                tick.tick().await;
                handles.push(tokio::spawn(client::run(
                    plan.clone(),
                    stats.clone(),
                    i,
                    ready_tx.clone(),
                    go_rx.clone(),
                )));
            }
            handles
        })
    };
    let mut connected = 0usize;
    for _ in 0..opts.clients {
        match ready_rx.recv().await {
            Some(true) => connected += 1,
            Some(false) => {}
            None => break,
        }
    }
    let connect_secs = t0.elapsed().as_secs_f64();
    anyhow::ensure!(connected > 0, "no client could connect to {:?}", opts.urls);
    // Idle footprint, after the connections settle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle: Option<u64> = sum_rss(&opts.pid);
    let start = tokio::time::Instant::now();
    let _ = go_tx.send(Some(start));
    let mut rss_peak = rss_idle.unwrap_or(0);
    if opts.rate > 0.0 {
        tokio::time::sleep(opts.warmup).await;
        stats.reset();
        let measured = Instant::now();
        let end = start + plan.duration;
        while tokio::time::Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(200)).await;
            rss_peak = rss_peak.max(sum_rss(&opts.pid).unwrap_or(0));
        }
        // Counted when the window closes: deliveries during the drain are left out, or a
        // saturated server's backlog would be counted as throughput.
        let window = Window {
            length: measured.elapsed(),
            sent: stats.sent.load(Ordering::Relaxed),
            delivered: stats.delivered.load(Ordering::Relaxed),
        };
        tokio::time::sleep(plan.drain).await;
        let handles = spawner.await.unwrap_or_default();
        for h in handles {
            let _ = h.await;
        }
        return Ok(Report::new(
            opts,
            &stats,
            connected,
            connect_secs,
            &window,
            rss_idle,
            rss_peak,
        ));
    }
    let handles = spawner.await.unwrap_or_default();
    tokio::time::sleep(plan.drain).await;
    for h in &handles {
        h.abort();
    }
    Ok(Report::new(
        opts,
        &stats,
        connected,
        connect_secs,
        &Window::default(),
        rss_idle,
        rss_peak,
    ))
}

fn sum_rss(pids: &[u32]) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    Some(pids.iter().filter_map(|p| rss_kib(*p)).sum())
}

/// Deliveries counted so far (for progress output).
pub fn delivered(stats: &Stats) -> u64 {
    stats.delivered.load(Ordering::Relaxed)
}
