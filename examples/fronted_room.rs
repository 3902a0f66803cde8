//! What exporting a fronted backend's facts costs (issue 21). A room of 100 NexusChat
//! clients fronted to a NexusChat backend that sends each message to every session (as
//! a real one does: one `NEW_MESSAGE` per member): deliveries per second with nothing
//! exported (`export = []`, what fronting did before) and with every fact exported once
//! (each of the 100 copies claims it, one wins and is signed as a webhook to a local
//! receiver), on the local bus (claims in process) and on the Redis bus (claims in a
//! `redis-server` of its own on a free port, never the machine's). Then one claim's
//! latency in that Redis with 100 claimants of each fact at once. Not a test; run with
//! `cargo run --release --example fronted_room [MESSAGES] [RUNS]` (`RUNS` 0: the claims
//! alone).

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard::config::{BusKind, Config, DEFAULT_TOML, UpstreamConfig, WebhookEndpoint};
use switchboard::dialect::Registry;
use switchboard::server::Server;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

#[path = "support/redis_server.rs"]
mod redis_server;
use redis_server::RedisServer;

const CLIENTS: usize = 100;
/// Messages the sender has in flight (sent, not yet back to itself).
const WINDOW: u64 = 16;

type Peers = Arc<Mutex<Vec<mpsc::UnboundedSender<Message>>>>;

/// A NexusChat backend with one room: every `SEND_MSG` becomes a `NEW_MESSAGE` with a new
/// id, sent to every session. Returns its address and its sessions.
async fn backend() -> (SocketAddr, Peers) {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = tcp.local_addr().expect("addr");
    let peers: Peers = Arc::default();
    let next = Arc::new(AtomicU64::new(0));
    let p = peers.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = tcp.accept().await {
            let _ = s.set_nodelay(true);
            let (peers, next) = (p.clone(), next.clone());
            tokio::spawn(async move {
                let Ok(ws) = tokio_tungstenite::accept_async(s).await else {
                    return;
                };
                let (mut w, mut r) = ws.split();
                let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
                let mine = tx.clone();
                peers.lock().expect("peers").push(tx);
                tokio::spawn(async move {
                    while let Some(m) = rx.recv().await {
                        if w.send(m).await.is_err() {
                            return;
                        }
                    }
                });
                while let Some(Ok(m)) = r.next().await {
                    let Message::Text(t) = m else { continue };
                    let Ok(v) = serde_json::from_str::<Value>(&t) else {
                        continue;
                    };
                    if v["event"] != "SEND_MSG" {
                        continue;
                    }
                    let id = next.fetch_add(1, Ordering::Relaxed);
                    let d = &v["data"];
                    let frame = json!({"event": "NEW_MESSAGE", "traceId": v["traceId"], "data": {
                        "id": format!("m{id}"), "roomId": d["roomId"], "senderId": "u0", "type": "TEXT",
                        "contentText": d["contentText"], "createdAt": "2026-11-22T00:00:00.000Z"}})
                    .to_string();
                    let mut all = peers.lock().expect("peers");
                    all.retain(|t| t.send(Message::Text(frame.clone().into())).is_ok());
                }
                // The session is over: out of the room, and its writer ends.
                peers
                    .lock()
                    .expect("peers")
                    .retain(|t| !t.same_channel(&mine));
            });
        }
    });
    (addr, peers)
}

/// A webhook receiver that answers 204 and counts.
async fn receiver(count: Arc<AtomicU64>) -> SocketAddr {
    use http_body_util::{BodyExt, Empty};
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = tcp.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = tcp.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let count = count.clone();
                        async move {
                            let _ = req.into_body().collect().await;
                            count.fetch_add(1, Ordering::Relaxed);
                            let mut resp = hyper::Response::new(Empty::<bytes::Bytes>::new());
                            *resp.status_mut() = hyper::StatusCode::NO_CONTENT;
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    addr
}

/// One configuration to measure.
#[derive(Clone, Copy)]
struct Mode {
    name: &'static str,
    redis: bool,
    export: bool,
}

const MODES: [Mode; 4] = [
    Mode {
        name: "local bus, nothing exported",
        redis: false,
        export: false,
    },
    Mode {
        name: "local bus, exported once (claims in process)",
        redis: false,
        export: true,
    },
    Mode {
        name: "Redis bus, nothing exported",
        redis: true,
        export: false,
    },
    Mode {
        name: "Redis bus, exported once (claims in Redis)",
        redis: true,
        export: true,
    },
];

/// A gateway whose NexusChat route fronts `back`.
async fn gateway(
    mode: Mode,
    back: SocketAddr,
    redis: &str,
    hooks: SocketAddr,
    store: &std::path::Path,
) -> anyhow::Result<Server> {
    let mut cfg = Config::from_toml(DEFAULT_TOML).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    cfg.bind = "127.0.0.1".into();
    cfg.instance = format!("bench-{}", mode.name.len());
    cfg.limits.rate = 1e9;
    cfg.limits.burst = 1e9;
    // One anonymous user holds every connection of the room.
    cfg.limits.max_connections_per_user = 10 * CLIENTS;
    cfg.listeners.truncate(1);
    let l = &mut cfg.listeners[0];
    l.port = 0;
    l.port_env = None;
    l.routes.retain(|r| r.dialect == "nexus");
    for r in &mut l.routes {
        r.upstream = Some("nexus".into());
    }
    let export = if mode.export { "" } else { "export = []\n" };
    let up: UpstreamConfig = toml::from_str(&format!(
        "name = \"nexus\"\nurl = \"ws://{back}/ws\"\ndialect = \"nexus\"\ntransport = \"websocket\"\n{export}"
    ))?;
    cfg.upstreams.push(up);
    cfg.webhook = vec![WebhookEndpoint {
        name: "master".into(),
        url: format!("http://{hooks}/hooks"),
        secrets: vec!["bench-secret".into()],
        events: Vec::new(),
        timeout: Duration::from_secs(5),
        headers: Default::default(),
        standard: false,
        tls: None,
    }];
    cfg.webhooks.allow = vec!["127.0.0.1".into()];
    cfg.webhooks.store = store.to_string_lossy().into_owned();
    if mode.redis {
        cfg.bus.kind = BusKind::Redis;
        cfg.redis.url = redis.to_string();
    }
    let server = Server::start(cfg, Arc::new(Registry::embedded()?)).await?;
    for _ in 0..500 {
        if server.ready().0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(server)
}

/// `messages` messages sent by one of `CLIENTS` clients of the room at `gw`; deliveries
/// per second (every client's copies, the sender's included).
async fn run(gw: SocketAddr, peers: &Peers, messages: u64) -> f64 {
    let total = Arc::new(AtomicU64::new(0));
    let own = Arc::new(AtomicU64::new(0));
    let mut sender = None;
    let mut readers = Vec::new();
    for i in 0..CLIENTS {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{gw}/ws?token=t"))
            .await
            .expect("connects");
        let (w, mut r) = ws.split();
        let (total, own) = (total.clone(), own.clone());
        readers.push(tokio::spawn(async move {
            while let Some(Ok(m)) = r.next().await {
                if let Message::Text(t) = m
                    && t.contains("NEW_MESSAGE")
                {
                    total.fetch_add(1, Ordering::Relaxed);
                    if i == 0 {
                        own.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
        if i == 0 {
            sender = Some(w);
        }
    }
    let mut w = sender.expect("a sender");
    // Every backend session open before the clock starts.
    let deadline = Instant::now() + Duration::from_secs(20);
    while peers.lock().expect("peers").len() < CLIENTS {
        assert!(
            Instant::now() < deadline,
            "the backend sessions did not open"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let frame = json!({"event": "SEND_MSG", "traceId": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "data": {"roomId": "r1", "type": "TEXT", "contentText": "a message of some forty bytes, like chat"}})
    .to_string();
    let t0 = Instant::now();
    let mut sent = 0;
    while sent < messages {
        if sent - own.load(Ordering::Relaxed) < WINDOW {
            w.send(Message::Text(frame.clone().into()))
                .await
                .expect("send");
            sent += 1;
        } else {
            tokio::task::yield_now().await;
        }
    }
    let want = messages * CLIENTS as u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while total.load(Ordering::Relaxed) < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let got = total.load(Ordering::Relaxed);
    let secs = t0.elapsed().as_secs_f64();
    assert_eq!(got, want, "every client receives every message");
    let _ = w.close().await;
    for r in readers {
        r.abort();
    }
    // The backend's sessions gone before the next run (a session still open is said,
    // and dropped from the backend's room: the next run counts only its own).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !peers.lock().expect("peers").is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
        peers.lock().expect("peers").retain(|t| !t.is_closed());
    }
    let stale = std::mem::take(&mut *peers.lock().expect("peers")).len();
    if stale > 0 {
        eprintln!("note: {stale} backend sessions still open 10 s after their clients left");
    }
    got as f64 / secs
}

/// What a claim costs a fact in Redis: `facts` facts one after the other, each claimed by
/// `CLIENTS` tasks at once (as a backend's broadcast reaches a room's sessions), the next
/// fact once every claimant is done. Returns every claim's latency, and the winners' (the
/// one claim per fact that goes to Redis; the others lose in process at once).
async fn claims(
    redis: &RedisServer,
    facts: u64,
) -> anyhow::Result<(Histogram<u64>, Histogram<u64>)> {
    let store = Arc::new(redis.store(Duration::from_secs(60))?);
    let mut all = Histogram::<u64>::new(3)?;
    let mut winners = Histogram::<u64>::new(3)?;
    for f in 0..facts {
        let id = format!("bench-{f}");
        let mut tasks = Vec::new();
        for _ in 0..CLIENTS {
            let (store, id) = (store.clone(), id.clone());
            tasks.push(tokio::spawn(async move {
                let t0 = Instant::now();
                let first = store
                    .claim_export(&id, Duration::from_secs(60))
                    .await
                    .expect("claimed");
                (first, t0.elapsed().as_micros() as u64)
            }));
        }
        let mut won = 0;
        for t in tasks {
            let (first, took) = t.await?;
            all.record(took)?;
            if first {
                winners.record(took)?;
                won += 1;
            }
        }
        assert_eq!(won, 1, "each fact won once");
    }
    Ok((all, winners))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let messages: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let redis_server = RedisServer::start().await?;
    let redis = redis_server.url.clone();
    let hooks = Arc::new(AtomicU64::new(0));
    let hooks_at = receiver(hooks.clone()).await;
    let dir = std::env::temp_dir().join(format!("fronted-room-{}", std::process::id()));
    let mut gateways = Vec::new();
    for (i, mode) in MODES.iter().enumerate() {
        let (back, peers) = backend().await;
        let server = gateway(*mode, back, &redis, hooks_at, &dir.join(i.to_string())).await?;
        gateways.push((server, peers));
    }
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); MODES.len()];
    for r in 0..runs {
        for (i, (server, peers)) in gateways.iter().enumerate() {
            let before = hooks.load(Ordering::Relaxed);
            let rate = run(server.addrs[0], peers, messages).await;
            // Exported: every message once (waits for the webhooks to arrive).
            if MODES[i].export {
                let deadline = Instant::now() + Duration::from_secs(60);
                while hooks.load(Ordering::Relaxed) - before < messages && Instant::now() < deadline
                {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
                assert_eq!(
                    hooks.load(Ordering::Relaxed) - before,
                    messages,
                    "once each"
                );
            }
            println!("run {r}: {}: {rate:.0} deliveries/s", MODES[i].name);
            rates[i].push(rate);
        }
    }
    if runs > 0 {
        println!(
            "\n| fronted room of {CLIENTS} | deliveries/s (median of {runs}) | vs nothing exported |\n|---|---|---|"
        );
    }
    for (i, mode) in MODES.iter().enumerate().filter(|_| runs > 0) {
        let m = median(rates[i].clone());
        let base = median(rates[i & !1].clone());
        println!(
            "| {} | {m:.0} | {:+.1} % |",
            mode.name,
            (m / base - 1.0) * 100.0
        );
    }
    let (h, w) = claims(&redis_server, 2_000).await?;
    println!(
        "\nClaims, {CLIENTS} claimants of each fact at once ({} claims): p50 {} µs, p99 {} µs, p99.9 {} µs",
        h.len(),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999)
    );
    println!(
        "The winning claim of each fact, the one Redis round trip ({} facts): p50 {} µs, p99 {} µs, p99.9 {} µs",
        w.len(),
        w.value_at_quantile(0.5),
        w.value_at_quantile(0.99),
        w.value_at_quantile(0.999)
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
