//! A fronted backend's facts leave the gateway once (issue 21): the tests' NexusChat
//! backend sends each `NEW_MESSAGE` to every session of the room's members, and of those
//! copies exactly one becomes a signed webhook and one a message on the RabbitMQ
//! exchange, on one instance and on two sharing a Redis of the test's own; with
//! `bridge`, the hub's clients of the room on other routes receive each message once.

use crate::backends::nexus::Nexus;
use crate::backends::{BACKEND_SECRET, eventually, token_with};
use crate::brokers::{AMQP, next_json, tap};
use crate::hooks::{Receiver, SECRET, endpoint, verify};
use crate::live::{Client, Driver, Live, TokenAt, WAIT, unique};
use crate::support::{Redis, until};
use lapin::{Connection, ConnectionProperties};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use switchboard::config::{BusKind, Config, UpstreamConfig};

const MESSAGES: usize = 100;

/// Where the exports of every instance of a test go.
struct Exports {
    hooks: Receiver,
    exchange: String,
    upstream: String,
}

/// The shipped configuration with the Salala route fronting `nexus` (the other routes
/// on the hub), webhooks to `ex.hooks`, RabbitMQ's exchange `ex.exchange`.
fn fronting(c: &mut Config, nexus: &Nexus, ex: &Exports, bridge: bool) {
    let up = format!(
        "name = \"{}\"\nurl = \"{}\"\ndialect = \"nexus\"\ntransport = \"websocket\"\ntoken = \"query\"\nack_timeout = \"5s\"\nbridge = {bridge}\n",
        ex.upstream,
        nexus.url()
    );
    let u: UpstreamConfig = toml::from_str(&up).expect("upstream config");
    for l in &mut c.listeners {
        for r in &mut l.routes {
            if r.dialect == "salala" {
                r.upstream = Some(u.name.clone());
            }
        }
    }
    c.upstreams.push(u);
    c.webhook = vec![endpoint("master", &ex.hooks.url())];
    c.webhooks.allow = vec!["127.0.0.1".into()];
    c.amqp.url = AMQP.into();
    c.amqp.exchange = ex.exchange.clone();
    c.amqp.inbound_queue = format!("{}.in", ex.exchange);
}

async fn started(live: Live) -> Live {
    until("the bus and RabbitMQ", Duration::from_secs(20), || {
        live.ready().0 && live.ready().2 == Some(true)
    })
    .await;
    live
}

/// A Salala client behind the fronted route, its token the backend's.
async fn salala(live: &Live, d: &Arc<Driver>, user: &str, room: &str) -> Client {
    let t = token_with(BACKEND_SECRET, user, &[room]);
    let mut c = Client::open(
        live,
        d,
        "salala",
        "websocket",
        user,
        Some(&t),
        TokenAt::Primary,
    )
    .await;
    let r = c.next(|r| r.name.starts_with("__connect")).await;
    assert_eq!(
        r.map(|r| r.name),
        Some("__connect__".into()),
        "salala connects"
    );
    c
}

/// A Chat Service client on the hub, in `room`.
async fn on_the_hub(live: &Live, d: &Arc<Driver>, user: &str, room: &str) -> Client {
    let mut c = Client::connect(live, d, "chat-service", "websocket", user, Some(&[room])).await;
    assert!(
        c.emit("room.join", json!({"conversationId": room}), true)
            .await
    );
    let ack = c.ack_any().await.expect("the join's ack");
    assert_eq!(ack["success"], true, "{ack}");
    c
}

/// Sends `MESSAGES` messages, round robin over `senders`; the backend's message ids.
async fn send_all(senders: &mut [Client], room: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let n = senders.len();
    for i in 0..MESSAGES {
        let c = &mut senders[i % n];
        let body = json!({"conversationId": room, "content": format!("m{i}")});
        assert!(c.emit("message.send", body, true).await, "salala sends");
        let ack = c.ack_any().await.expect("the send's ack");
        assert_eq!(ack["success"], true, "{ack}");
        let id = ack["messageId"].as_str().expect("the backend's message id");
        ids.insert(id.to_string());
    }
    assert_eq!(ids.len(), MESSAGES, "the backend gave each message its id");
    ids
}

/// The webhooks of type `message.created`, once as many as `want` arrived and nothing
/// more came for a while: each verified, by message id → webhook ids.
async fn webhooks(hooks: &Receiver, want: usize) -> BTreeMap<String, Vec<String>> {
    let created = || {
        hooks
            .got()
            .into_iter()
            .filter(|g| g.header("x-webhook-event") == "message.created")
            .collect::<Vec<_>>()
    };
    until("the webhooks", Duration::from_secs(30), || {
        created().len() >= want
    })
    .await;
    // Copies would come from the other sessions at once: give them the time.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut by_message: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for g in created() {
        verify(&g, SECRET);
        let body = g.json();
        let id = body["data"]["messageId"]
            .as_str()
            .expect("the backend's message id")
            .to_string();
        by_message
            .entry(id)
            .or_default()
            .push(g.header("x-webhook-id").to_string());
    }
    by_message
}

/// The `message.created` events on the exchange until it is quiet: by message id →
/// event ids.
async fn exchange(tap: &mut lapin::Consumer) -> BTreeMap<String, Vec<String>> {
    let mut by_message: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut n = 0;
    while let Some((key, body)) = next_json(
        tap,
        if n < MESSAGES {
            Duration::from_secs(15)
        } else {
            Duration::from_secs(1)
        },
    )
    .await
    {
        if key != "message.created" {
            continue;
        }
        n += 1;
        let id = body["body"]["messageId"].as_str().unwrap_or_default();
        let eid = body["meta"]["id"].as_str().unwrap_or_default();
        by_message
            .entry(id.to_string())
            .or_default()
            .push(eid.to_string());
    }
    by_message
}

/// Exactly one export per message the backend made, with one id each, unique.
fn once_each(what: &str, got: &BTreeMap<String, Vec<String>>, sent: &BTreeSet<String>) {
    let keys: BTreeSet<String> = got.keys().cloned().collect();
    assert!(
        &keys == sent,
        "{what}: {} messages, not the {} sent",
        keys.len(),
        sent.len()
    );
    let twice: Vec<_> = got.iter().filter(|(_, v)| v.len() != 1).collect();
    assert!(
        twice.is_empty(),
        "{what}: {} exported more than once, among them {:?}",
        twice.len(),
        &twice[..twice.len().min(3)]
    );
    let ids: BTreeSet<&String> = got.values().flatten().collect();
    assert_eq!(ids.len(), sent.len(), "{what}: the ids are unique");
    assert!(ids.iter().all(|i| i.starts_with("evt_")), "{what}: {ids:?}");
}

/// Every `message.created` a client receives until it is quiet: by message id → count.
async fn received(c: &mut Client) -> BTreeMap<String, usize> {
    let mut seen = BTreeMap::new();
    let mut wait = WAIT;
    while let Some(e) = c.canonical_where("message.created", wait, |_| true).await {
        let id = match e.body.get("messageId") {
            Some(Value::String(s)) => s.clone(),
            other => format!("{other:?}"),
        };
        *seen.entry(id).or_default() += 1;
        wait = Duration::from_millis(800);
    }
    seen
}

fn each_once(who: &str, got: &BTreeMap<String, usize>, sent: &BTreeSet<String>) {
    let keys: BTreeSet<String> = got.keys().cloned().collect();
    assert!(
        &keys == sent,
        "{who} received {} messages, not the {} sent",
        keys.len(),
        sent.len()
    );
    let twice: Vec<_> = got.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        twice.is_empty(),
        "{who} received {} more than once, among them {:?}",
        twice.len(),
        &twice[..twice.len().min(3)]
    );
}

fn metric(live: &Live, upstream: &str, outcome: &str) -> u64 {
    let text = live.hub().metrics().render();
    let want = format!(
        "switchboard_upstream_exports_total{{upstream=\"{upstream}\",outcome=\"{outcome}\"}} "
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&want))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_fronted_sessions_export_each_message_once() {
    let _turn = crate::RABBIT.lock().await;
    let nexus = Nexus::start(BACKEND_SECRET, 0, 0).await;
    let ex = Exports {
        hooks: Receiver::start(Duration::ZERO).await,
        exchange: unique("sb.fronted"),
        upstream: unique("nexus"),
    };
    let live = started(Live::start_with(|c| fronting(c, &nexus, &ex, false)).await).await;
    let conn = Connection::connect(AMQP, ConnectionProperties::default())
        .await
        .expect("RabbitMQ runs on 127.0.0.1:5672 (scripts/test starts it)");
    let mut tap = tap(&conn, &ex.exchange, &unique("sb.fronted.tap")).await;
    let d = Driver::start().await;
    let room = unique("room");
    let mut clients = Vec::new();
    for u in ["s1", "s2", "s3"] {
        clients.push(salala(&live, &d, &unique(u), &room).await);
    }
    eventually("three backend sessions", || nexus.connections() == 3).await;

    let sent = send_all(&mut clients, &room).await;
    once_each("webhooks", &webhooks(&ex.hooks, MESSAGES).await, &sent);
    once_each("the exchange", &exchange(&mut tap).await, &sent);
    for c in &mut clients {
        each_once("a fronted client", &received(c).await, &sent);
    }
    // Three copies of each: one claim won, two lost.
    assert_eq!(metric(&live, &ex.upstream, "won"), MESSAGES as u64);
    assert_eq!(metric(&live, &ex.upstream, "lost"), 2 * MESSAGES as u64);
    assert_eq!(metric(&live, &ex.upstream, "store_down"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_export_once_and_bridge_to_the_hub() {
    let _turn = crate::RABBIT.lock().await;
    let redis = Redis::start().await;
    let nexus = Nexus::start(BACKEND_SECRET, 0, 0).await;
    let ex = Exports {
        hooks: Receiver::start(Duration::ZERO).await,
        exchange: unique("sb.fronted"),
        upstream: unique("nexus"),
    };
    let instance = |name: &str| {
        let (name, url) = (unique(name), redis.url());
        let (nexus, ex) = (&nexus, &ex);
        async move {
            started(
                Live::start_with(move |c| {
                    fronting(c, nexus, ex, true);
                    c.bus.kind = BusKind::Redis;
                    c.redis.url = url;
                    c.instance = name;
                })
                .await,
            )
            .await
        }
    };
    let (a, b) = (instance("a").await, instance("b").await);
    let conn = Connection::connect(AMQP, ConnectionProperties::default())
        .await
        .expect("RabbitMQ runs on 127.0.0.1:5672 (scripts/test starts it)");
    let mut tap = tap(&conn, &ex.exchange, &unique("sb.fronted.tap")).await;
    let d = Driver::start().await;
    let room = unique("room");
    let mut fronted = vec![
        salala(&a, &d, &unique("s1"), &room).await,
        salala(&a, &d, &unique("s2"), &room).await,
        salala(&b, &d, &unique("s3"), &room).await,
    ];
    eventually("three backend sessions", || nexus.connections() == 3).await;
    // The hub's clients of the room, one on each instance.
    let mut hub_a = on_the_hub(&a, &d, &unique("h1"), &room).await;
    let mut hub_b = on_the_hub(&b, &d, &unique("h2"), &room).await;

    let sent = send_all(&mut fronted, &room).await;
    once_each("webhooks", &webhooks(&ex.hooks, MESSAGES).await, &sent);
    once_each("the exchange", &exchange(&mut tap).await, &sent);
    each_once("the hub's client on a", &received(&mut hub_a).await, &sent);
    each_once("the hub's client on b", &received(&mut hub_b).await, &sent);
    // The fronted clients have each message from the backend, and not the bridged copy.
    for c in &mut fronted {
        each_once("a fronted client", &received(c).await, &sent);
    }
    let won = metric(&a, &ex.upstream, "won") + metric(&b, &ex.upstream, "won");
    let lost = metric(&a, &ex.upstream, "lost") + metric(&b, &ex.upstream, "lost");
    assert_eq!((won, lost), (MESSAGES as u64, 2 * MESSAGES as u64));
}
