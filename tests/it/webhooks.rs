//! Signed webhooks against a real HTTP receiver (hyper, in the test) that verifies every
//! signature independently: the eleven types, retries until the receiver accepts,
//! dead letters and their replay, 410, Retry-After, private targets, one slow endpoint
//! beside a fast one, and the internal API.

use crate::hooks::{Receiver, SECRET, endpoint, verify};
use crate::live::{Client, Driver, Live};
use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use switchboard::config::{Config, WebhookEndpoint};

const INTERNAL: &str = "internal-secret";

async fn start(endpoints: Vec<WebhookEndpoint>, tweak: impl FnOnce(&mut Config)) -> Live {
    Live::start_with(move |c| {
        c.webhook = endpoints;
        c.webhooks.allow = vec!["127.0.0.1".into()];
        c.webhooks.retry = vec![Duration::from_millis(50); 4];
        c.internal_api.secret = INTERNAL.into();
        tweak(c);
    })
    .await
}

async fn post(addr: SocketAddr, path: &str, secret: Option<&str>, body: &str) -> (u16, Value) {
    let auth = secret
        .map(|s| format!("X-Internal-Secret: {s}\r\n"))
        .unwrap_or_default();
    let headers = format!("{auth}Content-Type: application/json\r\n");
    let (status, out) = crate::support::request(addr, "POST", path, &headers, body).await;
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

async fn get(addr: SocketAddr, path: &str) -> Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nX-Internal-Secret: {INTERNAL}\r\nConnection: close\r\n\r\n").as_bytes()).await.expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out).await;
    serde_json::from_str(out.split("\r\n\r\n").nth(1).unwrap_or_default()).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_eleven_types_arrive_signed_and_verifiable() {
    let rx = Receiver::start(Duration::ZERO).await;
    let live = start(vec![endpoint("master", &rx.url())], |_| {}).await;
    let driver = Driver::start().await;
    let api = live.addrs()[0];
    // From clients: message.created/updated/deleted, reaction.added/removed, user.online/offline.
    let mut a = Client::connect(
        &live,
        &driver,
        "chat-service",
        "websocket",
        "wa",
        Some(&["w"]),
    )
    .await;
    a.emit_wire(
        "message:send",
        json!({"conversationId": "w", "content": "hook me"}),
        true,
    )
    .await;
    let id = a.ack("message:send").await.expect("ack")["messageId"].clone();
    a.emit_wire(
        "message:edit",
        json!({"messageId": id, "content": "edited"}),
        true,
    )
    .await;
    a.ack("message:edit").await.expect("ack");
    a.emit_wire(
        "reaction:add",
        json!({"messageId": id, "emoji": "🎉"}),
        true,
    )
    .await;
    a.ack("reaction:add").await.expect("ack");
    a.emit_wire(
        "reaction:remove",
        json!({"messageId": id, "emoji": "🎉"}),
        true,
    )
    .await;
    a.ack("reaction:remove").await.expect("ack");
    a.emit_wire("message:delete", json!({"messageId": id}), true)
        .await;
    a.ack("message:delete").await.expect("ack");
    a.close().await;
    // From the master service through the internal API: the conversation and
    // participant events no client sends.
    for (name, body) in [
        (
            "conversation.created",
            json!({"conversationId": "w2", "conversationName": "New"}),
        ),
        ("conversation.deleted", json!({"conversationId": "w2"})),
        (
            "participant.added",
            json!({"conversationId": "w", "userId": "p"}),
        ),
        (
            "participant.removed",
            json!({"conversationId": "w", "userId": "p"}),
        ),
    ] {
        let ev = json!({"name": name, "body": body, "meta": {"target": {"room": "w"}}});
        let (status, reply) = post(api, "/api/events", Some(INTERNAL), &ev.to_string()).await;
        assert_eq!(status, 202, "{name}: {reply}");
    }
    let got = rx.wait_for(11, Duration::from_secs(10)).await;
    let mut types: Vec<String> = got
        .iter()
        .map(|g| g.header("x-webhook-event").to_string())
        .collect();
    types.sort();
    types.dedup();
    assert_eq!(
        types,
        [
            "conversation.created",
            "conversation.deleted",
            "message.created",
            "message.deleted",
            "message.updated",
            "participant.added",
            "participant.removed",
            "reaction.added",
            "reaction.removed",
            "user.offline",
            "user.online",
        ],
        "every type, and only these"
    );
    for g in &got {
        verify(g, SECRET);
    }
    let created = got
        .iter()
        .find(|g| g.header("x-webhook-event") == "message.created")
        .expect("created");
    assert_eq!(created.json()["data"]["content"], "hook me");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_receiver_gets_everything_once_it_accepts() {
    let rx = Receiver::start(Duration::ZERO).await;
    *rx.then.lock().expect("then") = 503;
    let live = start(vec![endpoint("master", &rx.url())], |c| {
        c.webhooks.retry = vec![Duration::from_millis(100); 5]
    })
    .await;
    let api = live.addrs()[0];
    for i in 0..5 {
        let ev = json!({"name": "conversation.created", "body": {"conversationId": format!("c{i}")}, "meta": {"target": "broadcast"}});
        assert_eq!(
            post(api, "/api/events", Some(INTERNAL), &ev.to_string())
                .await
                .0,
            202
        );
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    *rx.then.lock().expect("then") = 200;
    let t0 = Instant::now();
    while get(api, "/api/webhooks").await["endpoints"][0]["queued"] != 0
        && t0.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = rx.got();
    assert!(
        got.len() >= 10,
        "each event was refused at least once, then accepted: {}",
        got.len()
    );
    let ids: std::collections::HashSet<String> = got
        .iter()
        .map(|g| g.header("x-webhook-id").to_string())
        .collect();
    assert_eq!(ids.len(), 5, "five events, retried under their own ids");
    for id in &ids {
        let bodies: std::collections::HashSet<Bytes> = got
            .iter()
            .filter(|g| g.header("x-webhook-id") == id)
            .map(|g| g.body.clone())
            .collect();
        assert_eq!(bodies.len(), 1, "a retry resends the same body");
    }
    assert_eq!(get(api, "/api/webhooks").await["endpoints"][0]["queued"], 0);
    assert_eq!(
        get(api, "/api/webhooks/dead").await["dead"],
        json!([]),
        "nothing lost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_last_attempt_a_delivery_is_dead_lettered_and_can_be_replayed() {
    let rx = Receiver::start(Duration::ZERO).await;
    *rx.then.lock().expect("then") = 500;
    let live = start(vec![endpoint("master", &rx.url())], |c| {
        c.webhooks.retry = vec![Duration::from_millis(20); 2]
    })
    .await;
    let api = live.addrs()[0];
    let ev = json!({"name": "participant.added", "body": {"conversationId": "d", "userId": "u"}, "meta": {"target": {"room": "d"}}});
    assert_eq!(
        post(api, "/api/events", Some(INTERNAL), &ev.to_string())
            .await
            .0,
        202
    );
    let got = rx.wait_for(3, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 3, "the first attempt and two retries");
    let t0 = Instant::now();
    let dead = loop {
        let d = get(api, "/api/webhooks/dead").await;
        if d["dead"].as_array().is_some_and(|a| !a.is_empty())
            || t0.elapsed() > Duration::from_secs(5)
        {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let letter = &dead["dead"][0];
    assert_eq!(
        (letter["attempts"].clone(), letter["type"].clone()),
        (json!(3), json!("participant.added"))
    );
    assert!(
        letter["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("500")),
        "{letter}"
    );
    *rx.then.lock().expect("then") = 200;
    // The command line, as an operator runs it.
    let cli = |args: &[&str]| {
        let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
        c.arg("webhooks")
            .arg("--api")
            .arg(format!("http://{api}"))
            .args(args)
            .env("INTERNAL_API_SECRET", INTERNAL);
        c
    };
    let list = cli(&["dead", "list"]).output().await.expect("runs");
    assert!(list.status.success());
    assert!(String::from_utf8_lossy(&list.stdout).contains(letter["id"].as_str().expect("id")));
    let replay = cli(&["dead", "replay"]).output().await.expect("runs");
    let out: Value = serde_json::from_slice(&replay.stdout).expect("json");
    assert_eq!(out["replayed"], 1);
    let got = rx.wait_for(4, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 4);
    assert_eq!(
        got[3].header("x-webhook-id"),
        letter["id"].as_str().expect("id"),
        "the same id again"
    );
    verify(&got[3], SECRET);
    assert_eq!(get(api, "/api/webhooks/dead").await["dead"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_disables_retry_after_is_honoured_and_private_targets_are_refused() {
    // 410: parked until re-enabled.
    let rx = Receiver::start(Duration::ZERO).await;
    rx.script.lock().expect("script").push_back((410, None));
    let blocked = Receiver::start(Duration::ZERO).await;
    let live = start(
        vec![
            endpoint("gone", &rx.url()),
            endpoint("private", &blocked.url().replace("127.0.0.1", "localhost")),
        ],
        |c| c.webhooks.allow = vec!["127.0.0.1/32".into()],
    )
    .await;
    let api = live.addrs()[0];
    let ev = |i: u32| {
        json!({"name": "conversation.deleted", "body": {"conversationId": format!("g{i}")}, "meta": {"target": "broadcast"}}).to_string()
    };
    post(api, "/api/events", Some(INTERNAL), &ev(1)).await;
    rx.wait_for(1, Duration::from_secs(5)).await;
    post(api, "/api/events", Some(INTERNAL), &ev(2)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.got().len(), 1, "nothing is sent to a disabled endpoint");
    let status = get(api, "/api/webhooks").await;
    let gone = status["endpoints"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["name"] == "gone"))
        .cloned()
        .expect("gone");
    assert_eq!(
        (gone["disabled"].clone(), gone["queued"].clone()),
        (json!(true), json!(2))
    );
    assert_eq!(
        post(api, "/api/webhooks/gone/enable", Some(INTERNAL), "")
            .await
            .0,
        200
    );
    let got = rx.wait_for(3, Duration::from_secs(5)).await;
    assert_eq!(
        got.len(),
        3,
        "both events once re-enabled (the first again)"
    );
    // `localhost` resolves to ::1 as well as 127.0.0.1 here; only 127.0.0.1/32 is
    // allowed, so it goes to 127.0.0.1 or nowhere. A target with no allowed address is
    // refused without a request.
    // By address (checked before the request) and by name (checked by the resolver).
    let by_name = blocked.url().replace("127.0.0.1", "localhost");
    let live2 = start(
        vec![
            endpoint("blocked", &blocked.url()),
            endpoint("blocked-name", &by_name),
        ],
        |c| c.webhooks.allow = vec![],
    )
    .await;
    post(live2.addrs()[0], "/api/events", Some(INTERNAL), &ev(3)).await;
    let t0 = Instant::now();
    let dead = loop {
        let d = get(live2.addrs()[0], "/api/webhooks/dead").await;
        if d["dead"].as_array().is_some_and(|a| a.len() >= 2)
            || t0.elapsed() > Duration::from_secs(5)
        {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for i in 0..2 {
        assert!(
            dead["dead"][i]["lastError"]
                .as_str()
                .is_some_and(|e| e.contains("webhooks.allow")),
            "{dead}"
        );
    }
    assert_eq!(
        blocked
            .got()
            .iter()
            .filter(|g| g.header("x-webhook-event") == "conversation.deleted"
                && g.json()["data"]["conversationId"] == "g3")
            .count(),
        0
    );

    // Retry-After: 1 second, although the schedule says 50 ms.
    let slow = Receiver::start(Duration::ZERO).await;
    slow.script
        .lock()
        .expect("script")
        .push_back((429, Some("1")));
    let live3 = start(vec![endpoint("polite", &slow.url())], |_| {}).await;
    post(live3.addrs()[0], "/api/events", Some(INTERNAL), &ev(4)).await;
    let got = slow.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 2);
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= Duration::from_millis(900),
        "Retry-After honoured: {gap:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_slow_endpoint_does_not_delay_the_others() {
    let slow = Receiver::start(Duration::from_secs(3)).await;
    let fast = Receiver::start(Duration::ZERO).await;
    let live = start(
        vec![endpoint("slow", &slow.url()), endpoint("fast", &fast.url())],
        |c| c.webhooks.concurrency = 1,
    )
    .await;
    let api = live.addrs()[0];
    let t0 = Instant::now();
    for i in 0..5 {
        let ev = json!({"name": "conversation.created", "body": {"conversationId": format!("s{i}")}, "meta": {"target": "broadcast"}});
        post(api, "/api/events", Some(INTERNAL), &ev.to_string()).await;
    }
    let got = fast.wait_for(5, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 5);
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "the fast endpoint got everything while the slow one was busy"
    );
    assert!(slow.got().len() <= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standard_webhooks_headers_verify() {
    let rx = Receiver::start(Duration::ZERO).await;
    let mut ep = endpoint("std", &rx.url());
    let key = b"a 24-byte test key!!....";
    ep.secrets = vec![format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )];
    ep.standard = true;
    ep.headers.insert("x-tenant".into(), "acme".into());
    let live = start(vec![ep], |_| {}).await;
    let ev = json!({"name": "conversation.created", "body": {"conversationId": "std"}, "meta": {"target": "broadcast"}});
    post(
        live.addrs()[0],
        "/api/events",
        Some(INTERNAL),
        &ev.to_string(),
    )
    .await;
    let got = rx.wait_for(1, Duration::from_secs(5)).await;
    let g = &got[0];
    let (id, ts) = (g.header("webhook-id"), g.header("webhook-timestamp"));
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("key");
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(&g.body);
    let want = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    assert_eq!(g.header("webhook-signature"), want);
    assert_eq!(g.header("x-tenant"), "acme");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_internal_api_refuses_a_wrong_secret_and_delivers_with_the_right_one() {
    let live = start(vec![], |_| {}).await;
    let driver = Driver::start().await;
    let api = live.addrs()[0];
    let mut c = Client::connect(
        &live,
        &driver,
        "phase10",
        "websocket",
        "ia",
        Some(&["ia-room"]),
    )
    .await;
    let ev = json!({"name": "message.created", "body": {"conversationId": "ia-room", "messageId": "m1", "senderId": "master", "content": "from master"}});
    assert_eq!(post(api, "/api/events", None, &ev.to_string()).await.0, 401);
    assert_eq!(
        post(api, "/api/events", Some("wrong"), &ev.to_string())
            .await
            .0,
        401
    );
    assert!(
        c.next_within(crate::live::QUIET, |r| r.name == "messages:new")
            .await
            .is_none()
    );
    let (status, body) = post(api, "/api/events", Some(INTERNAL), &ev.to_string()).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        c.wire("messages:new").await.expect("delivered")["message"]["content"],
        "from master"
    );
    // A dialect's wire form, addressed by query.
    let wire = json!(["message:new", {"id": "m2", "conversationId": "ia-room", "senderId": "master", "content": "wire form"}]);
    let (status, _) = post(
        api,
        "/api/events?dialect=chat-service&target=user:ia",
        Some(INTERNAL),
        &wire.to_string(),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(
        c.wire("messages:new").await.expect("to the user")["message"]["content"],
        "wire form"
    );
    let (status, body) = post(api, "/api/events", Some(INTERNAL), "{not json").await;
    assert_eq!(status, 400, "{body}");
}
