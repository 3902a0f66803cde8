//! Our own Engine.IO long polling (paths that recover sessions), spoken to request by
//! request: the handshake offers the upgrade, POSTs carry packets, a GET gets what is
//! queued (the CONNECT answer with its `pid`), a second GET at once is a protocol error,
//! an unknown session is refused, and the upgrade (`2probe`/`3probe`, the pending GET
//! answered with a noop, `5`) moves the session to a WebSocket, acks and all. The
//! official client over both is exercised by `recovery` and `hub_fleet`.

use crate::live::{Live, raw_http, token};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The next text frame (pings and pongs skipped).
async fn next(ws: &mut WebSocketStream<MaybeTlsStream<TcpStream>>) -> String {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return t.to_string(),
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
            other => panic!("no text frame: {other:?}"),
        }
    }
}

const PATH: &str = "/socket.io/?EIO=4&transport=polling";

async fn get(addr: SocketAddr, query: &str) -> (u16, String) {
    let req = format!("GET {query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let (code, whole) = raw_http(addr, &req).await;
    (code, body_of(&whole))
}

async fn post(addr: SocketAddr, query: &str, body: &str) -> (u16, String) {
    let req = format!(
        "POST {query} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (code, whole) = raw_http(addr, &req).await;
    (code, body_of(&whole))
}

fn body_of(whole: &str) -> String {
    whole
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// A session joined to the root namespace (salala): its sid and the CONNECT answer.
async fn joined(addr: SocketAddr, user: &str) -> (String, Value) {
    let (code, open) = get(addr, PATH).await;
    assert_eq!(code, 200, "{open}");
    let open: Value =
        serde_json::from_str(open.strip_prefix('0').expect("open packet")).expect("open JSON");
    assert_eq!(open["upgrades"], serde_json::json!(["websocket"]), "{open}");
    let sid = open["sid"].as_str().expect("sid").to_string();
    let q = format!("{PATH}&sid={sid}");
    let t = token(user, None, None);
    let (code, ok) = post(addr, &q, &format!("40{{\"token\":\"Bearer {t}\"}}")).await;
    assert_eq!((code, ok.as_str()), (200, "ok"));
    let (code, answer) = get(addr, &q).await;
    assert_eq!(code, 200, "{answer}");
    let first = answer.split('\u{1e}').next().unwrap_or_default();
    let connect: Value = serde_json::from_str(first.strip_prefix("40").expect("CONNECT answer"))
        .expect("CONNECT JSON");
    (sid, connect)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polling_carries_a_session_and_refuses_what_breaks_the_protocol() {
    let live = Live::start().await;
    let addr = live.addrs()[0];
    let (sid, connect) = joined(addr, "poller").await;
    assert!(connect["sid"].is_string(), "{connect}");
    assert!(
        connect["pid"].as_str().is_some_and(|p| p.len() >= 16),
        "a recovering route gives a pid: {connect}"
    );
    // An unknown session, another protocol version.
    let (code, e) = get(addr, &format!("{PATH}&sid=nope")).await;
    assert_eq!(code, 400);
    assert!(e.contains("Session ID unknown"), "{e}");
    assert_eq!(
        get(addr, "/socket.io/?EIO=3&transport=polling").await.0,
        400
    );
    // Two GETs at once: the second is refused and the session ends.
    let q = format!("{PATH}&sid={sid}");
    let first = tokio::spawn({
        let q = q.clone();
        async move { get(addr, &q).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(get(addr, &q).await.0, 400, "overlapping GET");
    let (code, last) = tokio::time::timeout(Duration::from_secs(5), first)
        .await
        .expect("the first GET ends")
        .expect("joined");
    assert_eq!(code, 200);
    assert!(last.ends_with('1'), "the session is closed: {last}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polling_session_upgrades_to_a_websocket() {
    let live = Live::start().await;
    let addr = live.addrs()[0];
    let (sid, _) = joined(addr, "upgrader").await;
    let q = format!("{PATH}&sid={sid}");
    // A GET waits; the probe answers it with a noop.
    let pending = tokio::spawn({
        let q = q.clone();
        async move { get(addr, &q).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket&sid={sid}");
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket opens");
    ws.send(Message::Text("2probe".into()))
        .await
        .expect("probe");
    assert_eq!(next(&mut ws).await, "3probe");
    let (mut code, mut noop) = tokio::time::timeout(Duration::from_secs(5), pending)
        .await
        .expect("the pending GET is answered")
        .expect("joined");
    // Under load, a packet of the session's (its join's news) can reach the pending GET
    // before the probe does; the next GET is then answered with the noop at once.
    if code == 200 && noop != "6" {
        (code, noop) = get(addr, &q).await;
    }
    assert_eq!((code, noop.as_str()), (200, "6"));
    ws.send(Message::Text("5".into())).await.expect("upgrade");
    // The session goes on over the WebSocket: an event with an ack is refused there,
    // in the dialect's words and in the ack.
    ws.send(Message::Text(r#"421["noSuchEvent",{}]"#.into()))
        .await
        .expect("event");
    let mut frames = Vec::new();
    while !frames.iter().any(|f: &String| f.starts_with("431[")) {
        frames.push(next(&mut ws).await);
    }
    assert!(frames[0].starts_with("42[\"exception\""), "{frames:?}");
    // And polling it is over.
    assert_eq!(get(addr, &q).await.0, 400);
}
