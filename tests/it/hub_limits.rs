//! Every limit trips, the offender is told in its dialect, and the server (and everyone
//! else) carries on: connections in total and per user, the event rate, rooms per
//! connection, slow consumers, browser origins. And `/metrics` moves with the traffic.

use crate::live::{Client, Driver, Live, token};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limits_are_refused_in_the_dialects_words() {
    let live = Live::start_with(|c| {
        c.limits.max_connections = 3;
        c.limits.max_connections_per_user = 2;
    })
    .await;
    let driver = Driver::start().await;
    let _a1 = Client::connect(&live, &driver, "nexus", "websocket", "a", None).await;
    let _a2 = Client::connect(&live, &driver, "clerk", "websocket", "a", None).await;
    // A third connection of user a.
    let t = token("a", None, None);
    let mut a3 = Client::open(
        &live,
        &driver,
        "nexus",
        "websocket",
        "a",
        Some(&t),
        crate::live::TokenAt::Primary,
    )
    .await;
    let err = a3.wire("ERROR").await.expect("ERROR");
    assert_eq!(err["code"], "too_many_connections");
    let closed = a3.next(|r| r.name == "__close__").await.expect("closed");
    assert_eq!(closed.payload["code"], 1013);
    // Another user fits, then the instance is full.
    let _b = Client::connect(&live, &driver, "salala", "websocket", "b", None).await;
    let t = token("c", None, None);
    let mut c = Client::open(
        &live,
        &driver,
        "clerk",
        "polling",
        "c",
        Some(&t),
        crate::live::TokenAt::Primary,
    )
    .await;
    let err = c.wire("connection:error").await.expect("connection:error");
    assert!(
        err["error"].as_str().is_some_and(|e| e.contains("limit")),
        "{err}"
    );
    c.next(|r| r.name == "__disconnect__")
        .await
        .expect("closed");
    assert_eq!(live.hub().connection_count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_rate_is_limited_and_persistent_excess_closes_the_connection() {
    let live = Live::start_with(|c| {
        c.limits.rate = 20.0;
        c.limits.burst = 5.0;
        c.limits.rate_strikes = 20;
    })
    .await;
    let driver = Driver::start().await;
    let mut n = Client::connect(&live, &driver, "nexus", "websocket", "fast", Some(&["r"])).await;
    for _ in 0..10 {
        n.emit_wire("TYPING", json!({"roomId": "r", "isTyping": true}), false)
            .await;
    }
    let err = n.wire("ERROR").await.expect("rate_limited");
    assert_eq!(err["code"], "rate_limited");
    // After a pause the bucket has refilled: accepted again.
    tokio::time::sleep(Duration::from_millis(400)).await;
    while n
        .next_within(Duration::from_millis(50), |r| r.name == "ERROR")
        .await
        .is_some()
    {}
    n.emit_wire(
        "SEND_MSG",
        json!({"roomId": "r", "type": "TEXT", "contentText": "after"}),
        false,
    )
    .await;
    assert_eq!(
        n.wire("NEW_MESSAGE").await.expect("accepted")["contentText"],
        "after"
    );
    // A flood: refused, then cut.
    for _ in 0..200 {
        n.emit_wire("TYPING", json!({"roomId": "r", "isTyping": false}), false)
            .await;
    }
    let closed = n
        .next(|r| r.name == "__close__")
        .await
        .expect("closed for flooding");
    assert_eq!(closed.payload["code"], 1008, "{closed:?}");
    // Socket.IO clients get the same treatment, in their words.
    let mut s = Client::connect(
        &live,
        &driver,
        "chat-service",
        "websocket",
        "fast2",
        Some(&["r"]),
    )
    .await;
    for _ in 0..10 {
        s.emit_wire("typing:start", json!({"conversationId": "r"}), false)
            .await;
    }
    assert_eq!(
        s.wire("error").await.expect("error")["code"],
        "rate_limited"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_per_connection_are_limited() {
    let live = Live::start_with(|c| c.limits.max_rooms = 2).await;
    let driver = Driver::start().await;
    let mut c = Client::connect(&live, &driver, "salala", "websocket", "rooms", None).await;
    for (room, ok) in [("a", true), ("b", true), ("a", true), ("c", false)] {
        c.emit_wire("joinRoom", json!({"conversationId": room}), true)
            .await;
        let ack = c.ack("joinRoom").await.expect("ack");
        assert_eq!(ack["success"], ok, "{room}: {ack}");
        if !ok {
            assert_eq!(ack["code"], "too_many_rooms");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_cut_and_the_others_keep_up() {
    let live = Live::start_with(|c| {
        c.limits.outbound_queue = 1024;
        c.limits.rate = 1e6;
        c.limits.burst = 1e6;
    })
    .await;
    let driver = Driver::start().await;
    // The slow one: a raw WebSocket client that never reads.
    let (base, path, _, _) = live.url("nexus");
    let url = format!(
        "{}{path}?token={}",
        base.replacen("http", "ws", 1),
        token("slow", None, Some(&["r"]))
    );
    let (slow, _) = tokio_tungstenite::connect_async(url.into_client_request().expect("req"))
        .await
        .expect("connect");
    let mut fast =
        Client::connect(&live, &driver, "nexus", "websocket", "fast", Some(&["r"])).await;
    let sender =
        Client::connect(&live, &driver, "nexus", "websocket", "sender", Some(&["r"])).await;
    let content = "z".repeat(4000);
    let n = 5000;
    let t0 = Instant::now();
    // In batches the reading clients keep up with (however loaded the machine), while
    // the one that never reads falls further behind with every batch.
    let mut got = 0;
    for batch in 0..n / 100 {
        for i in batch * 100..(batch + 1) * 100 {
            sender.emit_wire("SEND_MSG", json!({"roomId": "r", "type": "TEXT", "contentText": content, "clientRef": format!("m{i}")}), false).await;
        }
        while got < (batch + 1) * 100 {
            match fast
                .next_within(Duration::from_secs(10), |r| r.name == "NEW_MESSAGE")
                .await
            {
                Some(_) => got += 1,
                None => break,
            }
        }
    }
    assert_eq!(got, n, "the reading client gets every message");
    let took = t0.elapsed();
    let slow_cut = live
        .hub()
        .metrics()
        .render()
        .lines()
        .any(|l| l.starts_with("switchboard_slow_consumers_total{") && !l.ends_with(" 0"));
    assert!(slow_cut, "the slow consumer was cut");
    assert!(took < Duration::from_secs(30), "{took:?}");
    drop(slow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origins_outside_the_allowlist_are_refused() {
    let live =
        Live::start_with(|c| c.cors.allowed_origins = vec!["https://app.example".into()]).await;
    let addr = live.addrs()[0];
    let req = |method: &str, origin: Option<&str>| {
        let origin = origin
            .map(|o| format!("Origin: {o}\r\n"))
            .unwrap_or_default();
        format!(
            "{method} /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: {addr}\r\n{origin}Access-Control-Request-Method: GET\r\nConnection: close\r\n\r\n"
        )
    };
    let send = |text: String| async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(text.as_bytes()).await.expect("write");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out).await;
        out
    };
    let pre = send(req("OPTIONS", Some("https://app.example"))).await;
    assert!(pre.starts_with("HTTP/1.1 204"), "{pre}");
    assert!(
        pre.to_ascii_lowercase()
            .contains("access-control-allow-origin: https://app.example"),
        "{pre}"
    );
    let ok = send(req("GET", Some("https://app.example"))).await;
    assert!(
        ok.starts_with("HTTP/1.1 200") && ok.contains("\"sid\""),
        "{ok}"
    );
    let no = send(req("GET", Some("https://evil.example"))).await;
    assert!(no.starts_with("HTTP/1.1 403"), "{no}");
    let native = send(req("GET", None)).await;
    assert!(native.starts_with("HTTP/1.1 200"), "{native}");
    // Raw WebSocket upgrades are checked the same way (cross-site WebSocket hijacking).
    let (base, path, _, _) = live.url("nexus");
    let mut r = format!(
        "{}{path}?token={}",
        base.replacen("http", "ws", 1),
        token("o", None, None)
    )
    .into_client_request()
    .expect("req");
    r.headers_mut()
        .insert("origin", "https://evil.example".parse().expect("header"));
    let refused = tokio_tungstenite::connect_async(r).await;
    assert!(refused.is_err(), "a hijacking origin cannot upgrade");
}

/// Parses Prometheus text exposition: `# HELP`/`# TYPE` lines, and samples
/// `name{label="v",…} value`.
fn samples(text: &str) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            assert!(
                line.is_empty()
                    || line.starts_with("# HELP ")
                    || line.starts_with("# TYPE ")
                    || line == "# EOF",
                "bad comment line: {line}"
            );
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("no value: {line}"));
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name: {line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "bad labels: {line}");
        }
        out.push((series.to_string(), v));
    }
    out
}

fn value(samples: &[(String, f64)], prefix: &str) -> f64 {
    samples
        .iter()
        .filter(|(s, _)| s.starts_with(prefix))
        .map(|(_, v)| v)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_as_prometheus_text_and_move_with_traffic() {
    let live = Live::start().await;
    let driver = Driver::start().await;
    let get = || {
        let addr = live.addrs()[0];
        async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
            s.write_all(
                format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .expect("write");
            let mut out = String::new();
            s.read_to_string(&mut out).await.expect("read");
            assert!(out.starts_with("HTTP/1.1 200"), "{out}");
            out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string()
        }
    };
    let before = samples(&get().await);
    let mut n = Client::connect(&live, &driver, "nexus", "websocket", "m", Some(&["r"])).await;
    let mut c = Client::connect(&live, &driver, "clerk", "polling", "m2", Some(&["r"])).await;
    n.emit_wire(
        "SEND_MSG",
        json!({"roomId": "r", "type": "TEXT", "contentText": "count me"}),
        false,
    )
    .await;
    c.wire("message:created").await.expect("relayed");
    n.send_raw(Message::Text("nope".into()));
    n.wire("ERROR").await.expect("error");
    let t = token("x", None, None);
    let mut bad = Client::open(
        &live,
        &driver,
        "phase10",
        "websocket",
        "x",
        Some(&format!("{t}x")),
        crate::live::TokenAt::Primary,
    )
    .await;
    bad.wire("error").await.expect("refused");
    let after = samples(&get().await);
    let delta = |p: &str| value(&after, p) - value(&before, p);
    assert_eq!(
        delta("switchboard_connections{dialect=\"nexus\",transport=\"websocket\"}"),
        1.0
    );
    assert_eq!(
        delta("switchboard_connections{dialect=\"clerk\",transport=\"socketio\"}"),
        1.0
    );
    assert_eq!(
        delta("switchboard_events_in_total{dialect=\"nexus\",event=\"message.send\"}"),
        1.0
    );
    assert_eq!(
        delta("switchboard_events_out_total{dialect=\"clerk\",event=\"message.created\"}"),
        1.0
    );
    assert_eq!(
        delta("switchboard_translation_failures_total{dialect=\"nexus\",reason=\"bad_json\"}"),
        1.0
    );
    assert_eq!(
        delta("switchboard_connections_refused_total{dialect=\"phase10\",reason=\"unauthorized\"}"),
        1.0
    );
    assert!(delta("switchboard_bus_publish_seconds_count") >= 1.0);
    drop((n, c));
    let mut ws = tokio_tungstenite::connect_async(
        format!(
            "ws://{}/ws?token={}",
            live.addrs()[0],
            token("y", None, None)
        )
        .into_client_request()
        .expect("req"),
    )
    .await
    .expect("connect")
    .0;
    ws.send(Message::Close(None)).await.expect("close");
    while ws.next().await.is_some() {}
}
