//! RabbitMQ beside the bus, and broker faults, against real brokers: the machine's
//! RabbitMQ (127.0.0.1:5672, guest/guest; one test restarts its application) and a Redis
//! server of the test's own (so that killing it disturbs nobody else).

use crate::live::unique;
use crate::support::{Redis, until};

use crate::live::{Client, Driver, Live};
use futures_util::StreamExt;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use switchboard::config::BusKind;

pub const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// A server with RabbitMQ on, on its own exchange and inbound queue.
async fn with_amqp(exchange: &str, inbound: &str) -> Live {
    let (e, q) = (exchange.to_string(), inbound.to_string());
    let live = Live::start_with(move |c| {
        c.amqp.url = AMQP.into();
        c.amqp.exchange = e;
        c.amqp.inbound_queue = q;
    })
    .await;
    until("rabbitmq", Duration::from_secs(20), || {
        live.ready().2 == Some(true)
    })
    .await;
    live
}

/// A durable queue bound to `exchange` for every routing key, and a consumer on it.
pub async fn tap(conn: &Connection, exchange: &str, queue: &str) -> lapin::Consumer {
    let ch = conn.create_channel().await.expect("channel");
    ch.queue_declare(
        queue.into(),
        QueueDeclareOptions::durable(),
        FieldTable::default(),
    )
    .await
    .expect("declare");
    ch.queue_bind(
        queue.into(),
        exchange.into(),
        "#".into(),
        QueueBindOptions::default(),
        FieldTable::default(),
    )
    .await
    .expect("bind");
    ch.basic_consume(
        queue.into(),
        unique("tap").into(),
        BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        },
        FieldTable::default(),
    )
    .await
    .expect("consume")
}

pub async fn next_json(c: &mut lapin::Consumer, limit: Duration) -> Option<(String, Value)> {
    let d = tokio::time::timeout(limit, c.next()).await.ok()??.ok()?;
    Some((
        d.routing_key.to_string(),
        serde_json::from_slice(&d.data).ok()?,
    ))
}

async fn publish(conn: &Connection, queue: &str, body: &[u8], headers: &[(&str, &str)]) {
    let ch = conn.create_channel().await.expect("channel");
    let mut table = FieldTable::default();
    for (k, v) in headers {
        table.insert((*k).into(), AMQPValue::LongString((*v).into()));
    }
    ch.basic_publish(
        "".into(),
        queue.into(),
        BasicPublishOptions::default(),
        body,
        BasicProperties::default().with_headers(table),
    )
    .await
    .expect("publish")
    .await
    .expect("confirm");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_go_out_to_the_exchange_and_come_in_from_the_queue() {
    let _turn = crate::RABBIT.lock().await;
    let (exchange, inbound, tapq) = (
        unique("sb.test.events"),
        unique("sb.test.in"),
        unique("sb.test.tap"),
    );
    let conn = Connection::connect(AMQP, ConnectionProperties::default())
        .await
        .expect("RabbitMQ runs on 127.0.0.1:5672 (scripts/test starts it)");
    // The exchange is declared by the server; the tap binds to it once it exists.
    let live = with_amqp(&exchange, &inbound).await;
    let mut tap = tap(&conn, &exchange, &tapq).await;
    let driver = Driver::start().await;
    let room = unique("room");
    let mut c = Client::connect(
        &live,
        &driver,
        "clerk",
        "websocket",
        "amqp-user",
        Some(&[&room]),
    )
    .await;
    c.emit_wire(
        "message:send",
        json!({"channelId": room, "content": "to the exchange", "tempId": "x1"}),
        true,
    )
    .await;
    c.ack("message:send").await.expect("ack");
    let (key, body) = loop {
        let (k, b) = next_json(&mut tap, Duration::from_secs(10))
            .await
            .expect("an event on the exchange");
        if k == "message.created" {
            break (k, b);
        }
    };
    assert_eq!(key, "message.created");
    assert_eq!(body["name"], "message.created");
    assert_eq!(body["body"]["content"], "to the exchange");
    assert_eq!(body["body"]["conversationId"], json!(room));
    assert!(body["meta"]["traceId"].is_string());

    // Inbound: canonical JSON with a target...
    let canonical = json!({"name": "message.created", "body": {"conversationId": room, "messageId": "svc-1", "senderId": "service", "content": "from a service"}});
    publish(&conn, &inbound, canonical.to_string().as_bytes(), &[]).await;
    let with = |text: &'static str| {
        move |r: &crate::live::Received| {
            r.name == "message:created" && r.payload["message"]["content"] == text
        }
    };
    c.next(with("from a service"))
        .await
        .expect("delivered from the inbound queue");
    // ...a dialect's wire form with a `dialect` header...
    let wire = json!(["NEW_MESSAGE", {"id": "svc-2", "roomId": room, "senderId": "service", "type": "TEXT", "contentText": "nexus form"}]);
    let env = json!({"event": "NEW_MESSAGE", "traceId": "t", "data": wire[1]});
    publish(
        &conn,
        &inbound,
        env.to_string().as_bytes(),
        &[("dialect", "nexus")],
    )
    .await;
    c.next(with("nexus form"))
        .await
        .expect("wire form delivered");
    // ...and garbage, which is rejected (not redelivered) while the rest goes on.
    publish(&conn, &inbound, b"not json", &[]).await;
    publish(
        &conn,
        &inbound,
        canonical
            .to_string()
            .replace("from a service", "after garbage")
            .as_bytes(),
        &[],
    )
    .await;
    c.next(with("after garbage"))
        .await
        .expect("still consuming after garbage");
    // Injected events are not exported back to the exchange.
    let echoed = next_json(&mut tap, Duration::from_millis(500)).await;
    assert!(
        echoed
            .as_ref()
            .is_none_or(|(_, b)| b["body"]["content"] != "from a service"),
        "{echoed:?}"
    );

    let ch = conn.create_channel().await.expect("channel");
    for q in [&tapq, &inbound] {
        let _ = ch
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = ch
        .exchange_delete(exchange.as_str().into(), Default::default())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_is_survived_and_traffic_flows_again() {
    let mut redis = Redis::start().await;
    let url = redis.url();
    let start = |name: &str| {
        let (name, url) = (name.to_string(), url.clone());
        Live::start_with(move |c| {
            c.bus.kind = BusKind::Redis;
            c.redis.url = url;
            c.instance = name;
        })
    };
    let (a, b) = (start("fault-a").await, start("fault-b").await);
    let driver = Driver::start().await;
    until("both buses", Duration::from_secs(10), || {
        a.ready().0 && b.ready().0
    })
    .await;
    let mut x = Client::connect(&a, &driver, "chat-service", "websocket", "x", Some(&["r"])).await;
    let mut y = Client::connect(&b, &driver, "nexus", "websocket", "y", Some(&["r"])).await;
    // Both instances subscribed to the room (each does so in the background once its
    // client is registered, after the WebSocket opened).
    crate::support::subscribed(&url, "r", 2).await;
    x.emit_wire(
        "message:send",
        json!({"conversationId": "r", "content": "before"}),
        false,
    )
    .await;
    assert_eq!(
        y.wire("NEW_MESSAGE").await.expect("before")["contentText"],
        "before"
    );

    redis.kill();
    until(
        "the bus to report redis down",
        Duration::from_secs(10),
        || !a.ready().0,
    )
    .await;
    // /readyz says so.
    let status = http_status(a.addrs()[0], "/readyz").await;
    assert_eq!(status, 503);
    // Clients stay connected; what they send meanwhile is refused or lost, never a crash.
    x.emit_wire(
        "message:send",
        json!({"conversationId": "r", "content": "during"}),
        true,
    )
    .await;
    let during = x.ack("message:send").await;
    assert!(
        during.is_some(),
        "the sender is answered while Redis is down"
    );

    redis.resume().await;
    // Reconnects back off to 5 s and a connect may take 5 s more; the RabbitMQ tests
    // (booting a broker) share the machine: 20 s was once not enough in CI.
    until("both buses to come back", Duration::from_secs(45), || {
        a.ready().0 && b.ready().0
    })
    .await;
    assert_eq!(http_status(a.addrs()[0], "/readyz").await, 200);
    // Subscriptions were renewed: traffic crosses instances again.
    let mut got = None;
    for i in 0..20 {
        x.emit_wire(
            "message:send",
            json!({"conversationId": "r", "content": format!("after {i}")}),
            false,
        )
        .await;
        if let Some(r) = y
            .next_within(Duration::from_millis(500), |r| {
                r.name == "NEW_MESSAGE"
                    && r.payload["contentText"]
                        .as_str()
                        .is_some_and(|c| c.starts_with("after"))
            })
            .await
        {
            got = Some(r);
            break;
        }
    }
    assert!(got.is_some(), "messages cross instances after the restart");
}

async fn http_status(addr: std::net::SocketAddr, path: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out).await;
    out.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn rabbitmqctl(args: &[&str]) {
    let ok = Command::new("rabbitmqctl")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("rabbitmqctl");
    assert!(ok.success(), "rabbitmqctl {args:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rabbitmq_restart_loses_nothing_queued() {
    let _turn = crate::RABBIT.lock().await;
    let (exchange, inbound, tapq) = (
        unique("sb.fault.events"),
        unique("sb.fault.in"),
        unique("sb.fault.tap"),
    );
    let live = with_amqp(&exchange, &inbound).await;
    {
        let conn = Connection::connect(AMQP, ConnectionProperties::default())
            .await
            .expect("rabbitmq");
        let _ = tap(&conn, &exchange, &tapq).await;
    }
    let driver = Driver::start().await;
    let mut c = Client::connect(
        &live,
        &driver,
        "chat-service",
        "websocket",
        "rq",
        Some(&["rq-room"]),
    )
    .await;

    /// Whatever happens in the test, RabbitMQ is running again after it.
    struct Restart;
    impl Drop for Restart {
        fn drop(&mut self) {
            let _ = Command::new("rabbitmqctl").arg("start_app").status();
        }
    }
    let _restart = Restart;
    rabbitmqctl(&["stop_app"]);
    until(
        "the link to report rabbitmq down",
        Duration::from_secs(20),
        || live.ready().2 == Some(false),
    )
    .await;
    assert_eq!(http_status(live.addrs()[0], "/readyz").await, 503);
    // Events while RabbitMQ is down: clients are not delayed, the events wait.
    for i in 0..5 {
        c.emit_wire(
            "message:send",
            json!({"conversationId": "rq-room", "content": format!("while down {i}")}),
            true,
        )
        .await;
        assert_eq!(c.ack("message:send").await.expect("ack")["success"], true);
    }
    rabbitmqctl(&["start_app"]);
    until("the link to reconnect", Duration::from_secs(60), || {
        live.ready().2 == Some(true)
    })
    .await;

    let conn = Connection::connect(AMQP, ConnectionProperties::default())
        .await
        .expect("rabbitmq back");
    let mut tap = tap(&conn, &exchange, &tapq).await;
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let Some((key, body)) = next_json(&mut tap, Duration::from_secs(20)).await else {
            break;
        };
        if key == "message.created" {
            seen.push(
                body["body"]["content"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
    }
    let want: Vec<String> = (0..5).map(|i| format!("while down {i}")).collect();
    assert_eq!(
        seen, want,
        "every event queued during the outage reached the exchange, in order"
    );
    // The inbound consumer is back too.
    publish(&conn, &inbound, json!({"name": "message.created", "body": {"conversationId": "rq-room", "messageId": "m", "senderId": "s", "content": "inbound again"}}).to_string().as_bytes(), &[]).await;
    let again = c
        .next(|r| r.name == "message:new" && r.payload["content"] == "inbound again")
        .await;
    assert!(again.is_some(), "the inbound consumer is back");
    let ch = conn.create_channel().await.expect("channel");
    for q in [&tapq, &inbound] {
        let _ = ch
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    let _ = ch
        .exchange_delete(exchange.as_str().into(), Default::default())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_webhooks_dead_letter_and_replay_through_rabbitmq() {
    let _turn = crate::RABBIT.lock().await;
    let status = std::sync::Arc::new(std::sync::Mutex::new(500u16));
    let got: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
    let addr = crate::live::receiver(status.clone(), got.clone()).await;
    let name = unique("dl").replace('-', "");
    let ep = switchboard::config::WebhookEndpoint {
        name: name.clone(),
        url: format!("http://{addr}/hooks"),
        secrets: vec!["s".into()],
        events: Vec::new(),
        timeout: Duration::from_secs(2),
        headers: Default::default(),
        standard: false,
        tls: None,
    };
    let live = Live::start_with(move |c| {
        c.amqp.url = AMQP.into();
        c.amqp.exchange = unique("sb.dl.events");
        c.amqp.inbound_queue = unique("sb.dl.in");
        c.webhook = vec![ep];
        c.webhooks.allow = vec!["127.0.0.1".into()];
        c.webhooks.retry = vec![Duration::from_millis(50); 2];
        c.internal_api.secret = "in".into();
    })
    .await;
    let api = live.addrs()[0];
    let ev = json!({"name": "participant.removed", "body": {"conversationId": "dl", "userId": "u"}, "meta": {"target": {"room": "dl"}}});
    let (code, _) = crate::live::post(api, "/api/events", "in", &ev.to_string()).await;
    assert_eq!(code, 202);
    // Three failed attempts, then the dead-letter queue in RabbitMQ.
    let t0 = Instant::now();
    let letter = loop {
        let (_, answer) = crate::live::get_internal(api, "/api/webhooks/dead", "in").await;
        let mine = answer["dead"]
            .as_array()
            .and_then(|a| a.iter().find(|l| l["endpoint"] == json!(name)).cloned());
        if let Some(l) = mine {
            break l;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "dead-lettered: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(letter["attempts"], 3, "{letter}");
    *status.lock().expect("status") = 200;
    let id = letter["id"].as_str().expect("id").to_string();
    let (code, answer) =
        crate::live::post(api, &format!("/api/webhooks/dead/replay?id={id}"), "in", "").await;
    assert_eq!(code, 200, "{answer}");
    until("the replayed delivery", Duration::from_secs(10), || {
        got.lock().expect("got").contains(&id)
    })
    .await;
    let conn = Connection::connect(AMQP, ConnectionProperties::default())
        .await
        .expect("rabbitmq");
    let ch = conn.create_channel().await.expect("channel");
    for q in [
        format!("switchboard.webhooks.{name}"),
        format!("switchboard.webhooks.{name}.retry"),
    ] {
        let _ = ch
            .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
}
