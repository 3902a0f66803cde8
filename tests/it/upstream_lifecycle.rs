//! Fronted sessions under stress (issue 6): a lazy session opens at the first event (and
//! a refusal then reaches the client), a client that stops reading is cut while the
//! backend floods it and the others keep working, and a backend that stops reading makes
//! the client's events refused in its dialect instead of piling up in memory.

use crate::backends::nexus::Nexus;
use crate::backends::{BACKEND_SECRET, eventually, front, token_with};
use crate::live::{Client, Driver, Live, TokenAt};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

fn upstream(url: &str, extra: &str) -> String {
    format!(
        "name = \"b\"\nurl = \"{url}\"\ndialect = \"nexus\"\ntransport = \"websocket\"\ntoken = \"query\"\n{extra}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lazy_session_opens_at_the_first_event() {
    let nexus = Nexus::start(BACKEND_SECRET, 0, 0).await;
    let up = upstream(&nexus.url(), "connect = \"lazy\"");
    let live = Live::start_with(|c| front(c, &up)).await;
    let d = Driver::start().await;
    let t = token_with(BACKEND_SECRET, "a", &["r1"]);
    let mut a = Client::open(
        &live,
        &d,
        "clerk",
        "websocket",
        "a",
        Some(&t),
        TokenAt::Primary,
    )
    .await;
    assert!(
        a.canonical("session.ready").await.is_some(),
        "ready at once"
    );
    tokio::time::sleep(crate::live::QUIET).await;
    assert_eq!(
        nexus.connections(),
        0,
        "no backend session before the first event"
    );
    a.send_message("r1", "first", true).await;
    assert_eq!(a.ack_any().await.expect("ack")["success"], true);
    assert_eq!(nexus.connections(), 1);
    // A token the backend refuses: the client is connected, then refused at its first
    // event, in its dialect, and closed.
    let bad = token_with("wrong", "z", &["r1"]);
    let mut z = Client::open(
        &live,
        &d,
        "clerk",
        "websocket",
        "z",
        Some(&bad),
        TokenAt::Primary,
    )
    .await;
    assert!(z.canonical("session.ready").await.is_some());
    z.send_message("r1", "x", true).await;
    let ack = z.ack_any().await.expect("ack");
    assert_eq!(ack["success"], false, "{ack}");
    let err = z.canonical("session.error").await.expect("the refusal");
    assert_eq!(err.body["reason"], "auth_error");
    assert!(
        z.next(|r| r.name == "__disconnect__").await.is_some(),
        "closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_cut_and_the_others_keep_going() {
    let nexus = Nexus::start(BACKEND_SECRET, 0, 0).await;
    let up = upstream(&nexus.url(), "");
    let live = Live::start_with(|c| {
        front(c, &up);
        c.limits.outbound_queue = 256;
        c.limits.rate = 1e6;
        c.limits.burst = 1e6;
    })
    .await;
    let d = Driver::start().await;
    // The sleeper: a raw WebSocket client in the room that never reads.
    let (base, path, _, _) = live.url("nexus");
    let url = format!(
        "{}{path}?token={}",
        base.replacen("http://", "ws://", 1),
        token_with(BACKEND_SECRET, "sleeper", &["r1"])
    );
    let (sleeper, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connects");
    let t = token_with(BACKEND_SECRET, "a", &["r1"]);
    // The sender reads everything (a raw WebSocket client of the tests' own).
    let mut a = Client::open(
        &live,
        &d,
        "nexus",
        "websocket",
        "a",
        Some(&t),
        TokenAt::Plain,
    )
    .await;
    eventually("two backend sessions", || nexus.connections() == 2).await;
    // The flood: 4 KB messages until the sleeper's socket buffers and queue are full.
    let text = "x".repeat(4000);
    let slow = || {
        live.hub()
            .metrics()
            .render()
            .lines()
            .any(|l| l.starts_with("switchboard_slow_consumers_total") && !l.ends_with(" 0"))
    };
    let mut sent = 0;
    while !slow() && sent < 20_000 {
        for _ in 0..25 {
            a.emit_wire(
                "SEND_MSG",
                json!({"roomId": "r1", "type": "TEXT", "contentText": text}),
                false,
            )
            .await;
        }
        sent += 25;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(slow(), "the sleeper was cut after {sent} messages");
    eventually("the sleeper's backend session closes", || {
        nexus.connections() == 1
    })
    .await;
    // The sender was never cut, and still works.
    assert_eq!(live.hub().connection_count(), 1);
    a.emit_wire(
        "SEND_MSG",
        json!({"roomId": "r1", "type": "TEXT", "contentText": "still here"}),
        false,
    )
    .await;
    let got = a
        .next_within(Duration::from_secs(20), |r| {
            r.payload["contentText"] == "still here"
        })
        .await;
    assert!(got.is_some(), "the sender gets its message back");
    drop(sleeper);
}

/// A backend that accepts sessions and never reads from them.
async fn deaf_backend() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = tcp.local_addr().expect("addr");
    let h = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = tcp.accept().await {
            if let Ok(ws) = tokio_tungstenite::accept_async(s).await {
                held.push(ws);
            }
        }
    });
    (addr, h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_stops_reading_makes_events_refused_not_buffered() {
    let (addr, _h) = deaf_backend().await;
    let up = upstream(&format!("ws://{addr}/ws"), "queue = 8");
    let live = Live::start_with(|c| {
        front(c, &up);
        c.limits.rate = 1e6;
        c.limits.burst = 1e6;
    })
    .await;
    let (base, path, _, _) = live.url("nexus");
    let url = format!("{}{path}?token=t", base.replacen("http://", "ws://", 1));
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connects");
    let (mut w, mut r) = ws.split();
    let text = "y".repeat(4000);
    let frame = json!({"event": "SEND_MSG", "traceId": "t", "data": {"roomId": "r1", "type": "TEXT", "contentText": text}}).to_string();
    let reader = tokio::spawn(async move {
        while let Some(Ok(m)) = r.next().await {
            if let Message::Text(t) = m
                && t.contains("the backend is not keeping up")
            {
                return true;
            }
        }
        false
    });
    let sender = tokio::spawn(async move {
        for _ in 0..5000 {
            if w.send(Message::Text(frame.clone().into())).await.is_err() {
                return;
            }
        }
    });
    let refused = tokio::time::timeout(Duration::from_secs(20), reader)
        .await
        .expect("refusals within 20 s")
        .expect("reader");
    assert!(
        refused,
        "events over the backend queue are refused in the client's dialect"
    );
    sender.abort();
    assert_eq!(
        live.hub().connection_count(),
        1,
        "the client stays connected"
    );
}
