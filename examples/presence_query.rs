//! What a presence query of the server API costs (issue 23): a gateway on the Redis bus
//! (a `redis-server` of its own on a free port, never the machine's) with 100 users
//! online, two connections each, written into that Redis as their instances would;
//! `POST /api/presence/batch` for the 100, and `GET /api/users/:id/presence` for one,
//! each asked `QUERIES` times in a row over one keep-alive connection, after a warm-up;
//! then the batch again while the hub is under load (100 NexusChat clients in a room, one
//! of them sending 2,000 messages a second: 200,000 deliveries a second).
//! Not a test; run with `cargo run --release --example presence_query [QUERIES]`.

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard::config::{BusKind, Config, DEFAULT_TOML};
use switchboard::dialect::Registry;
use switchboard::hub::SocketPresence;
use switchboard::server::Server;

#[path = "support/redis_server.rs"]
mod redis_server;
use redis_server::RedisServer;

const USERS: usize = 100;
const SECRET: &str = "presence-query-bench";
const AUTH: &str = "presence-query-tokens";

type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// One request's time, in µs; panics unless it answers 200.
async fn ask(http: &Http, req: hyper::Request<Full<Bytes>>) -> u64 {
    let t0 = Instant::now();
    let resp = http.request(req).await.expect("answered");
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    assert!(!body.is_empty());
    t0.elapsed().as_micros() as u64
}

/// 100 NexusChat clients in room `load`, one sending 2,000 messages a second until
/// `stop`; every delivery counted.
async fn load(
    gw: std::net::SocketAddr,
    stop: Arc<std::sync::atomic::AtomicBool>,
    delivered: Arc<std::sync::atomic::AtomicU64>,
) -> Vec<tokio::task::JoinHandle<()>> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let auth = switchboard::auth::Authenticator::hs256(AUTH, Duration::ZERO);
    let mut tasks = Vec::new();
    let mut sender = None;
    for i in 0..100 {
        let token = auth
            .mint(
                &format!("load-{i}"),
                None,
                Some(vec!["load".into()]),
                Duration::from_secs(600),
            )
            .expect("mint");
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{gw}/ws?token={token}"))
            .await
            .expect("connects");
        let (w, mut r) = ws.split();
        let delivered = delivered.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(Ok(m)) = r.next().await {
                if matches!(&m, Message::Text(t) if t.contains("NEW_MESSAGE")) {
                    delivered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }));
        if i == 0 {
            sender = Some(w);
        }
    }
    let mut w = sender.expect("a sender");
    tasks.push(tokio::spawn(async move {
        let frame = r#"{"event":"SEND_MSG","traceId":"0f8fad5b-d9cb-469f-a165-70867728950e","data":{"roomId":"load","type":"TEXT","contentText":"a message of some forty bytes, like chat"}}"#;
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            tick.tick().await;
            for _ in 0..2 {
                if w.send(Message::Text(frame.into())).await.is_err() {
                    return;
                }
            }
        }
    }));
    tokio::time::sleep(Duration::from_millis(500)).await;
    tasks
}

fn report(what: &str, h: &Histogram<u64>) {
    println!(
        "| {what} | {} | {} µs | {} µs | {} µs |",
        h.len(),
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let queries: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5_000);
    let redis_server = RedisServer::start().await?;
    // The users, as the instances serving them would have written them.
    let store = redis_server.store(Duration::from_secs(600))?;
    let now = switchboard::event::now_millis();
    for u in 0..USERS {
        for s in 0..2 {
            let snap = SocketPresence {
                socket_id: format!("sock-{u}-{s}").into(),
                connected_at: now,
                last_seen: now,
                dialect: Some("salala".into()),
                transport: Some("socketio".into()),
                instance: Some("elsewhere".into()),
                ..SocketPresence::default()
            };
            store.presence_add(&format!("user-{u}"), snap).await?;
        }
    }
    let mut cfg = Config::from_toml(DEFAULT_TOML).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    cfg.bind = "127.0.0.1".into();
    cfg.bus.kind = BusKind::Redis;
    cfg.redis.url = redis_server.url.clone();
    cfg.internal_api.secret = SECRET.into();
    cfg.auth.secret = AUTH.into();
    cfg.limits.rate = 1e9;
    cfg.limits.burst = 1e9;
    cfg.webhooks.store = std::env::temp_dir()
        .join(format!("presence-query-{}", std::process::id()))
        .to_string_lossy()
        .into_owned();
    for l in &mut cfg.listeners {
        l.port = 0;
        l.port_env = None;
    }
    let server = Server::start(cfg, Arc::new(Registry::embedded()?)).await?;
    let api = server.addrs[0];
    let http: Http = Client::builder(TokioExecutor::new()).build_http();
    let ids: Vec<String> = (0..USERS).map(|u| format!("user-{u}")).collect();
    let batch = serde_json::json!({ "userIds": ids }).to_string();
    let batch_req = || {
        hyper::Request::post(format!("http://{api}/api/presence/batch"))
            .header("x-internal-secret", SECRET)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(batch.clone())))
            .expect("request")
    };
    let one_req = || {
        hyper::Request::get(format!("http://{api}/api/users/user-7/presence"))
            .header("x-internal-secret", SECRET)
            .body(Full::new(Bytes::new()))
            .expect("request")
    };
    for _ in 0..200 {
        ask(&http, batch_req()).await;
        ask(&http, one_req()).await;
    }
    let mut batch_h = Histogram::<u64>::new(3)?;
    let mut one_h = Histogram::<u64>::new(3)?;
    for _ in 0..queries {
        batch_h.record(ask(&http, batch_req()).await)?;
        one_h.record(ask(&http, one_req()).await)?;
    }
    // The hub under load meanwhile.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let delivered = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let load = load(server.addrs[0], stop.clone(), delivered.clone()).await;
    let t0 = Instant::now();
    let mut loaded_h = Histogram::<u64>::new(3)?;
    for _ in 0..queries {
        loaded_h.record(ask(&http, batch_req()).await)?;
    }
    let rate =
        delivered.load(std::sync::atomic::Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in load {
        t.abort();
    }
    println!("| query | asked | p50 | p99 | p99.9 |\n|---|---|---|---|---|");
    report(
        &format!("`POST /api/presence/batch`, {USERS} users online (2 sockets each)"),
        &batch_h,
    );
    report("`GET /api/users/:id/presence`, one user", &one_h);
    report(
        &format!("the batch again, the hub delivering {rate:.0} messages/s to clients meanwhile"),
        &loaded_h,
    );
    server.shutdown(Duration::from_secs(2)).await;
    Ok(())
}
