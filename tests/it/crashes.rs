//! Crashes: an instance killed with SIGKILL. Pending webhooks survive it (in the embedded
//! store by default, in RabbitMQ when configured) and are delivered after a restart with
//! the same ids; users of the dead instance go offline to the rooms of the living one.

use crate::live::{Client, Driver, Live, SECRET, WAIT};
use crate::process::Running;
use crate::support::{Redis, until};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard::config::BusKind;

/// A webhook receiver of the test's own: answers `status`, records every attempt's
/// `X-Webhook-Id` and what it answered.
struct Receiver {
    addr: std::net::SocketAddr,
    status: Arc<Mutex<u16>>,
    attempts: Arc<Mutex<Vec<(String, u16)>>>,
}

impl Receiver {
    async fn start(status: u16) -> Receiver {
        use http_body_util::{BodyExt, Full};
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = tcp.local_addr().expect("addr");
        let status = Arc::new(Mutex::new(status));
        let attempts: Arc<Mutex<Vec<(String, u16)>>> = Arc::default();
        let (s, a) = (status.clone(), attempts.clone());
        tokio::spawn(async move {
            while let Ok((conn, _)) = tcp.accept().await {
                let (s, a) = (s.clone(), a.clone());
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let (s, a) = (s.clone(), a.clone());
                            async move {
                                let id = req
                                    .headers()
                                    .get("x-webhook-id")
                                    .and_then(|v| v.to_str().ok())
                                    .unwrap_or_default()
                                    .to_string();
                                let _ = req.into_body().collect().await;
                                let code = *s.lock().expect("status");
                                a.lock().expect("attempts").push((id, code));
                                let mut resp =
                                    hyper::Response::new(Full::new(bytes::Bytes::from_static(b"")));
                                *resp.status_mut() =
                                    hyper::StatusCode::from_u16(code).expect("status");
                                Ok::<_, std::convert::Infallible>(resp)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(conn), svc)
                        .await;
                });
            }
        });
        Receiver {
            addr,
            status,
            attempts,
        }
    }

    fn ids(&self, with: Option<u16>) -> BTreeSet<String> {
        self.attempts
            .lock()
            .expect("attempts")
            .iter()
            .filter(|(_, c)| with.is_none_or(|w| *c == w))
            .map(|(id, _)| id.clone())
            .collect()
    }
}

/// 50 webhooks pending (the receiver failing them), SIGKILL, a new instance on the same
/// store, the receiver well again: all 50 arrive, with the ids they had before.
async fn fifty_pending_survive_a_sigkill(env: &[(&str, &str)], name: &str) {
    let rx = Receiver::start(503).await;
    let hook = format!(
        "\n[[webhook]]\nname = \"{name}\"\nurl = \"http://{}/hooks\"\nsecrets = [\"s\"]\n",
        rx.addr
    );
    let edits = [
        (
            "retry = [\"5s\", \"5m\", \"30m\", \"2h\", \"5h\", \"10h\", \"10h\"]",
            "retry = [\"300ms\", \"300ms\", \"300ms\", \"300ms\", \"300ms\", \"300ms\", \"300ms\", \"300ms\", \"300ms\", \"300ms\", \"300ms\", \"300ms\", \"300ms\", \"300ms\", \"300ms\", \"300ms\", \"300ms\", \"300ms\", \"300ms\", \"300ms\"]",
        ),
        ("allow = []", "allow = [\"127.0.0.1\"]"),
        ("[internal_api]", &format!("{hook}\n[internal_api]")),
    ];
    let store = crate::live::unique_dir("crash-webhooks");
    let mut env: Vec<(&str, &str)> = env.to_vec();
    env.extend([
        ("AUTH_JWT_SECRET", SECRET),
        ("INTERNAL_API_SECRET", "in"),
        ("SWITCHBOARD_WEBHOOK_STORE", store.as_str()),
    ]);
    let mut first = Running::start(&env, &edits);
    let api = first.addrs()[0];
    for i in 0..50 {
        let ev = serde_json::json!({"name": "conversation.created", "body": {"conversationId": format!("{name}-{i}")}, "meta": {"target": "broadcast"}});
        let (code, body) = crate::live::post(api, "/api/events", "in", &ev.to_string()).await;
        assert_eq!(code, 202, "{body}");
    }
    // Every one attempted (and failed) at least once: they are pending, with their ids.
    until("50 failed first attempts", Duration::from_secs(20), || {
        rx.ids(Some(503)).len() == 50
    })
    .await;
    let before = rx.ids(None);
    first.kill();
    *rx.status.lock().expect("status") = 200;
    let second = Running::start(&env, &edits);
    until(
        "the 50 delivered after the restart",
        Duration::from_secs(30),
        || rx.ids(Some(200)).len() >= 50,
    )
    .await;
    assert_eq!(
        rx.ids(Some(200)),
        before,
        "the same ids, none lost, none new"
    );
    drop(second);
    let _ = std::fs::remove_dir_all(&store);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_webhooks_survive_a_sigkill_in_the_embedded_store() {
    fifty_pending_survive_a_sigkill(&[], "crash-embedded").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_webhooks_survive_a_sigkill_in_rabbitmq() {
    let name = crate::live::unique("crash-amqp").replace('-', "");
    let _turn = crate::RABBIT.lock().await;
    fifty_pending_survive_a_sigkill(
        &[("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")],
        &name,
    )
    .await;
    let conn = lapin::Connection::connect(
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        lapin::ConnectionProperties::default(),
    )
    .await
    .expect("rabbitmq");
    let ch = conn.create_channel().await.expect("channel");
    for q in [
        format!("switchboard.webhooks.{name}"),
        format!("switchboard.webhooks.{name}.retry"),
    ] {
        let _ = ch.queue_delete(q.as_str().into(), Default::default()).await;
    }
}

/// Two instances on Redis; a user on B in a room with a user on A. B is SIGKILLed: A's
/// user hears the user go offline within the presence TTL and one sweep period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_of_a_killed_instance_go_offline_to_their_rooms() {
    let redis = Redis::start().await;
    let url = redis.url();
    let ttl = Duration::from_secs(1);
    let room = crate::live::unique("killed-room");
    let a = {
        let url = url.clone();
        Live::start_with(move |c| {
            c.bus.kind = BusKind::Redis;
            c.redis.url = url;
            c.hub.presence_ttl = ttl;
            c.instance = "survivor".into();
        })
        .await
    };
    let mut b = Running::start(
        &[
            ("AUTH_JWT_SECRET", SECRET),
            ("SWITCHBOARD_BUS", "redis"),
            ("REDIS_URL", url.as_str()),
            ("PRESENCE_TTL_SECONDS", "1"),
        ],
        &[],
    );
    let driver = Driver::start().await;
    let mut watcher = Client::connect(
        &a,
        &driver,
        "chat-service",
        "websocket",
        "watcher",
        Some(&[room.as_str()]),
    )
    .await;
    let on_b = Live::at(b.addrs());
    let _victim = Client::connect(
        &on_b,
        &driver,
        "nexus",
        "websocket",
        "victim",
        Some(&[room.as_str()]),
    )
    .await;
    watcher
        .canonical_where("presence.changed", WAIT, |e| {
            e.str_field("userId") == Some("victim") && e.str_field("status") == Some("online")
        })
        .await
        .expect("the watcher sees the victim come online");
    b.kill();
    let killed = Instant::now();
    let heard = watcher
        .canonical_where("presence.changed", Duration::from_secs(10), |e| {
            e.str_field("userId") == Some("victim") && e.str_field("status") == Some("offline")
        })
        .await;
    let after = killed.elapsed();
    eprintln!("offline heard {after:?} after the SIGKILL (TTL 1 s, sweep every 333 ms)");
    assert!(
        heard.is_some(),
        "the room hears the user of the dead instance go offline"
    );
    // TTL + one period, and the time the victim's last refresh was ahead of the kill.
    assert!(after < Duration::from_secs(4), "{after:?}");
}
