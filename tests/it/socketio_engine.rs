//! Our own Socket.IO connections (WebSocket from the start), spoken to frame by frame:
//! the Engine.IO handshake and heartbeat, two namespaces (two dialects) multiplexed on
//! one connection with their acks, and what a misbehaving client gets: an unknown
//! namespace, a binary event, a packet that is not Socket.IO, silence. The official
//! client over both transports is exercised by `hub_fleet`.

use crate::live::{Live, registry, token};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use switchboard::dialect::Direction;
use switchboard::event::Event;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Wire = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens `/socket.io/` of the first listener (namespaces `/`: salala, `/ws/app`:
/// phase10) and returns the socket and the Engine.IO open packet.
async fn open(live: &Live) -> (Wire, Value) {
    let url = format!(
        "ws://{}/socket.io/?EIO=4&transport=websocket",
        live.addrs()[0]
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket opens");
    let first = next_text(&mut ws).await.expect("open packet");
    let open = first.strip_prefix('0').expect("an Engine.IO open packet");
    (ws, serde_json::from_str(open).expect("open packet JSON"))
}

async fn next_text(ws: &mut Wire) -> Option<String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return Some(t.to_string()),
            Ok(Some(Ok(Message::Close(_)) | Err(_)) | None) | Err(_) => return None,
            Ok(Some(Ok(_))) => {}
        }
    }
}

/// Every text frame arriving within `wait`.
async fn collect(ws: &mut Wire, wait: Duration) -> Vec<String> {
    let mut frames = Vec::new();
    let until = tokio::time::Instant::now() + wait;
    while let Ok(Some(Ok(m))) = tokio::time::timeout_at(until, ws.next()).await {
        if let Message::Text(t) = m {
            frames.push(t.to_string());
        }
    }
    frames
}

/// Reads until a text frame starting with `prefix`; returns the rest.
async fn until(ws: &mut Wire, prefix: &str) -> String {
    loop {
        let t = next_text(ws)
            .await
            .unwrap_or_else(|| panic!("no frame starting with {prefix}"));
        if let Some(rest) = t.strip_prefix(prefix) {
            return rest.to_string();
        }
    }
}

async fn send(ws: &mut Wire, text: impl Into<String>) {
    ws.send(Message::Text(text.into().into()))
        .await
        .expect("send");
}

/// `["name",payload]` for canonical `message.send` in `dialect`.
fn message_send(dialect: &str, room: &str, content: &str) -> String {
    let reg = registry();
    let d = reg.dialect(dialect).expect("dialect");
    let body = json!({"conversationId": room, "content": content});
    let ev = Event::new(
        "message.send",
        body.as_object().cloned().unwrap_or_default(),
    );
    let enc = d.encode(&ev, Direction::Up).expect("encodes");
    json!([enc.name.to_string(), enc.payload_value()]).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_namespaces_share_one_connection_with_their_own_acks() {
    let live = Live::start().await;
    let (mut ws, open) = open(&live).await;
    assert!(
        open["sid"].as_str().is_some_and(|s| s.len() >= 16),
        "{open}"
    );
    assert_eq!(open["upgrades"], json!([]));
    assert_eq!(open["pingInterval"], 25000);
    assert_eq!(open["pingTimeout"], 60000);
    assert!(open["maxPayload"].as_u64().is_some());

    let t = token("eng-a", None, Some(&["eng-room"]));
    send(&mut ws, format!(r#"40{{"token":"{t}"}}"#)).await;
    let root: Value = serde_json::from_str(&until(&mut ws, "40").await).expect("sid");
    send(&mut ws, format!(r#"40/ws/app,{{"token":"Bearer {t}"}}"#)).await;
    let app: Value = serde_json::from_str(&until(&mut ws, "40/ws/app,").await).expect("sid");
    let (root_sid, app_sid) = (root["sid"].as_str(), app["sid"].as_str());
    assert!(root_sid.is_some() && app_sid.is_some() && root_sid != app_sid);
    assert_eq!(live.hub().connection_count(), 2);

    // An event in each namespace, each acked in its own namespace with its own id; the
    // message sent from the root namespace reaches the /ws/app socket too (both are in
    // the room), in phase10's words, prefixed with its namespace.
    send(
        &mut ws,
        format!("4217{}", message_send("salala", "eng-room", "hi root")),
    )
    .await;
    // Phase 10 joins a room and is answered through its ack ({success, message}).
    send(
        &mut ws,
        r#"42/ws/app,18["conversations:join",{"conversationId":"eng-room-2"}]"#,
    )
    .await;
    let frames = collect(&mut ws, Duration::from_secs(1)).await;
    let has = |prefix: &str, needle: &str| {
        frames
            .iter()
            .any(|f| f.starts_with(prefix) && f.contains(needle))
    };
    assert!(has("4317[", ""), "{frames:?}");
    assert!(has("43/ws/app,18[", "success"), "{frames:?}");
    assert!(has("42/ws/app,[", "hi root"), "{frames:?}");

    // Leaving one namespace leaves the other joined.
    send(&mut ws, "41/ws/app,").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(live.hub().connection_count(), 1);
    send(&mut ws, "1").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(live.hub().connection_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_clients_are_told_and_the_connection_survives() {
    let live = Live::start().await;
    let (mut ws, _) = open(&live).await;
    // An unknown namespace: a connect error, the connection stays.
    send(&mut ws, "40/nowhere,").await;
    let err = until(&mut ws, "44/nowhere,").await;
    assert_eq!(
        serde_json::from_str::<Value>(&err).expect("json")["message"],
        "Invalid namespace"
    );
    let t = token("eng-b", None, None);
    send(&mut ws, format!(r#"40{{"token":"{t}"}}"#)).await;
    until(&mut ws, "40").await;
    // Not Socket.IO, not JSON, an event to a namespace not joined: ignored.
    send(&mut ws, "4x").await;
    send(&mut ws, "42[not json").await;
    send(&mut ws, r#"42/ws/app,["sendMessage",{}]"#).await;
    // A binary event: refused in the dialect's words (the ack says so), its attachment
    // frame dropped.
    send(
        &mut ws,
        r#"451-9["sendMessage",{"_placeholder":true,"num":0}]"#,
    )
    .await;
    ws.send(Message::Binary(vec![1u8, 2, 3].into()))
        .await
        .expect("send");
    let ack = until(&mut ws, "439").await;
    assert!(ack.contains("binary"), "{ack}");
    // A client ping is answered; the connection still works.
    send(&mut ws, "2probe").await;
    assert_eq!(until(&mut ws, "3").await, "probe");
    send(
        &mut ws,
        format!("4220{}", message_send("salala", "eng-r2", "still here")),
    )
    .await;
    until(&mut ws, "4320").await;
    assert_eq!(live.hub().connection_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_is_refused_in_the_dialect_and_the_connection_ends() {
    let live = Live::start().await;
    let (mut ws, _) = open(&live).await;
    send(&mut ws, r#"40{"token":"not-a-token"}"#).await;
    until(&mut ws, "40").await;
    // salala's error event, then the namespace is left and the connection closed.
    let ev = until(&mut ws, "42").await;
    assert!(ev.contains("invalid token"), "{ev}");
    until(&mut ws, "41").await;
    assert!(next_text(&mut ws).await.is_none(), "closed");
    assert_eq!(live.hub().connection_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_pings_and_cuts_a_silent_client() {
    let live = Live::start_with(|c| {
        c.socketio.ping_interval = Duration::from_millis(200);
        c.socketio.ping_timeout = Duration::from_millis(300);
        c.socketio.connect_timeout = Duration::from_secs(30);
    })
    .await;
    let (mut ws, open) = open(&live).await;
    assert_eq!(open["pingInterval"], 200);
    let t = token("eng-c", None, None);
    send(&mut ws, format!(r#"40{{"token":"{t}"}}"#)).await;
    until(&mut ws, "40").await;
    // Answering pings keeps it open well past the timeout.
    for _ in 0..5 {
        until(&mut ws, "2").await;
        send(&mut ws, "3").await;
    }
    assert_eq!(live.hub().connection_count(), 1);
    // Silence: cut within interval + timeout (and a tick).
    let started = std::time::Instant::now();
    while next_text(&mut ws).await.is_some() {}
    assert!(started.elapsed() < Duration::from_secs(3));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(live.hub().connection_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_joins_nothing_is_closed() {
    let live = Live::start_with(|c| {
        c.socketio.connect_timeout = Duration::from_millis(300);
    })
    .await;
    let (mut ws, _) = open(&live).await;
    let started = std::time::Instant::now();
    while next_text(&mut ws).await.is_some() {}
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// The next control frame (ping, pong, close) within five seconds.
async fn next_control(ws: &mut Wire) -> Option<Message> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(m @ (Message::Ping(_) | Message::Pong(_) | Message::Close(_))))) => {
                return Some(m);
            }
            Ok(Some(Ok(_))) => {}
            _ => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_pings_are_answered_and_a_close_is_echoed_on_both_paths() {
    let live = Live::start().await;
    // Our Socket.IO path, and a raw WebSocket route (nexus, /ws).
    let (sio, _) = open(&live).await;
    let (raw, _) = tokio_tungstenite::connect_async(format!(
        "ws://{}/ws?token={}",
        live.addrs()[0],
        token("ctl-raw", None, None)
    ))
    .await
    .expect("raw websocket opens");
    for mut ws in [sio, raw] {
        ws.send(Message::Ping(b"are you there".to_vec().into()))
            .await
            .expect("ping");
        match next_control(&mut ws).await {
            Some(Message::Pong(p)) => assert_eq!(&p[..], b"are you there"),
            other => panic!("expected the pong, got {other:?}"),
        }
        ws.send(Message::Close(Some(
            tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: 1000.into(),
                reason: "bye".into(),
            },
        )))
        .await
        .expect("close");
        match next_control(&mut ws).await {
            Some(Message::Close(Some(f))) => assert_eq!(u16::from(f.code), 1000),
            other => panic!("expected the close echoed, got {other:?}"),
        }
    }
}
