//! The network fuzz test: random and mutated input on every transport of a live
//! server (raw WebSocket, Socket.IO over WebSocket, Socket.IO long polling, the HTTP
//! parser and the internal API), bounded in count and time, with a seed printed so a
//! failure can be replayed (`FUZZ_SEED=<n>`). Afterwards the process answers, no
//! connection is left registered, and fresh clients of two dialects still exchange a
//! message. Protocol violations get their RFC 6455 close codes.

use crate::live::{Live, token};
use crate::support::{Wire, close_code, http, next_text, open, poll_open, poll_post as post, send};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio_tungstenite::tungstenite::Message;

/// Inputs per connection, and connections per transport.
const PER_CONNECTION: usize = 200;
const CONNECTIONS: usize = 4;

const SECRET: &str = "fuzz-internal-secret";

/// Random and mutated inputs from a seeded generator.
struct Gen {
    rng: fastrand::Rng,
    examples: Vec<String>,
}

impl Gen {
    fn new(seed: u64) -> Gen {
        let mut examples = Vec::new();
        for d in crate::common::DIALECTS {
            for (_, frame) in crate::common::examples(d) {
                examples.push(frame.to_string());
            }
        }
        Gen {
            rng: fastrand::Rng::with_seed(seed),
            examples,
        }
    }

    /// Some text: random characters (multi-byte ones too), a mutated real frame, deep
    /// nesting, huge numbers, or nothing.
    fn text(&mut self) -> String {
        match self.rng.u8(0..8) {
            0 => (0..self.rng.usize(0..64))
                .map(|_| self.rng.char(..))
                .collect(),
            1 => "[".repeat(self.rng.usize(100..3000)),
            2 => format!(
                r#"{{"event":"SEND_MSG","data":{{"roomId":{}}}}}"#,
                "9".repeat(400)
            ),
            3 => String::new(),
            _ => {
                let mut f = self.examples[self.rng.usize(..self.examples.len())].clone();
                for _ in 0..self.rng.usize(1..4) {
                    let at = self.rng.usize(..=f.len());
                    let at = (0..=at).rev().find(|i| f.is_char_boundary(*i)).unwrap_or(0);
                    match self.rng.u8(0..3) {
                        0 => f.insert(at, self.rng.char(..)),
                        1 => f.truncate(at),
                        _ => {
                            let end = (at + 1..=f.len())
                                .find(|i| f.is_char_boundary(*i))
                                .unwrap_or(f.len());
                            f.replace_range(at..end, "é");
                        }
                    }
                }
                f
            }
        }
    }

    fn bytes(&mut self) -> Vec<u8> {
        (0..self.rng.usize(0..96))
            .map(|_| self.rng.u8(..))
            .collect()
    }
}

fn seed() -> u64 {
    std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..))
}

async fn start() -> Live {
    Live::start_with(|c| {
        // The fuzz is not a flood: no rate limit in the way.
        c.limits.rate = 1_000_000.0;
        c.limits.burst = 1_000_000.0;
        c.internal_api.secret = SECRET.into();
        // A long-polling session the fuzz left (its closing POST lost in a slow answer)
        // ends at the heartbeat, as any vanished client's does: within seconds here. A
        // leaked connection (its task gone, the hub still holding it) does not.
        c.socketio.ping_interval = Duration::from_secs(1);
        c.socketio.ping_timeout = Duration::from_secs(2);
    })
    .await
}

/// Drains what the server sends, in the background, counting frames; ends on a close.
fn drain(mut r: futures_util::stream::SplitStream<Wire>) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut n = 0;
        while let Some(Ok(m)) = r.next().await {
            if m.is_close() {
                break;
            }
            n += 1;
        }
        n
    })
}

/// A raw WebSocket client of NexusChat sends random text and binary frames, then a real
/// message, which comes back: the connection survived everything before it.
async fn raw_websocket(live: &Live, g: &mut Gen) -> usize {
    let mut sent = 0;
    for i in 0..CONNECTIONS {
        let room = format!("fuzz-room-{i}");
        let t = token(&format!("fuzz-ws-{i}"), None, Some(&[room.as_str()]));
        let ws = open(&format!("ws://{}/ws?token={t}", live.addrs()[0])).await;
        let (mut w, r) = ws.split();
        let answers = drain(r);
        for _ in 0..PER_CONNECTION {
            let m = if g.rng.u8(0..6) == 0 {
                Message::Binary(g.bytes().into())
            } else {
                Message::Text(g.text().into())
            };
            w.send(m).await.expect("the connection stays open");
            sent += 1;
        }
        let _ = w.send(Message::Close(None)).await;
        let answered = answers.await.unwrap_or(0);
        assert!(answered > 0, "bad input is answered");
        // A fresh connection of the same user works.
        let mut ws = open(&format!("ws://{}/ws?token={t}", live.addrs()[0])).await;
        let msg = json!({"event": "SEND_MSG", "traceId": "7b0c1f7e-4a55-4a0e-9d8a-0b1b5b1f1a01",
            "data": {"roomId": room, "contentText": "still here", "type": "TEXT"}});
        send(&mut ws, msg.to_string()).await;
        let mut ok = false;
        while let Some(t) = next_text(&mut ws, Duration::from_secs(5)).await {
            if t.contains("still here") {
                ok = true;
                break;
            }
        }
        assert!(ok, "a real message after the fuzz comes back");
    }
    sent
}

/// Socket.IO over WebSocket (our Engine.IO path): random packets in a joined namespace,
/// then a real event with an ack, which is answered.
async fn socketio_websocket(live: &Live, g: &mut Gen) -> usize {
    let mut sent = 0;
    for i in 0..CONNECTIONS {
        let mut ws = open(&format!(
            "ws://{}/socket.io/?EIO=4&transport=websocket",
            live.addrs()[0]
        ))
        .await;
        next_text(&mut ws, Duration::from_secs(5))
            .await
            .expect("open packet");
        let t = token(&format!("fuzz-sio-{i}"), None, None);
        send(&mut ws, format!(r#"40{{"token":"{t}"}}"#)).await;
        let (mut w, r) = ws.split();
        let answers = drain(r);
        for _ in 0..PER_CONNECTION {
            let body = g.text();
            let frame = match g.rng.u8(0..7) {
                0 => body,
                1 => format!("4{body}"),
                2 => format!("42{}{body}", "9".repeat(g.rng.usize(18..30))),
                3 => format!("45{}-{body}", g.rng.u8(..)),
                4 => {
                    w.send(Message::Binary(g.bytes().into()))
                        .await
                        .expect("open");
                    sent += 1;
                    continue;
                }
                _ => format!("42{body}"),
            };
            w.send(Message::Text(frame.into()))
                .await
                .expect("the connection stays open");
            sent += 1;
        }
        let msg =
            json!(["sendMessage", {"conversationId": "fuzz-sio-room", "content": "still here"}]);
        w.send(Message::Text(format!("42777{msg}").into()))
            .await
            .expect("open");
        w.send(Message::Text("41".into())).await.expect("open");
        w.send(Message::Close(None)).await.expect("open");
        assert!(answers.await.unwrap_or(0) > 0, "bad input is answered");
    }
    sent
}

/// Socket.IO long polling (socketioxide): random packet bodies posted to a joined
/// session; a session the engine closes for a garbage packet is replaced.
async fn socketio_polling(live: &Live, g: &mut Gen) -> usize {
    let mut sent = 0;
    let mut sid = String::new();
    for i in 0..CONNECTIONS * PER_CONNECTION / 4 {
        if sid.is_empty() {
            sid = poll_open(live.addrs()[0]).await;
            let t = token(&format!("fuzz-poll-{i}"), None, None);
            post(live.addrs()[0], &sid, &format!(r#"40{{"token":"{t}"}}"#)).await;
        }
        let mut body = String::new();
        for k in 0..g.rng.usize(1..4) {
            if k > 0 {
                body.push('\u{1e}');
            }
            body.push_str(&match g.rng.u8(0..3) {
                0 => g.text(),
                1 => format!("4{}", g.text()),
                _ => format!("42{}", g.text()),
            });
        }
        let code = post(live.addrs()[0], &sid, &body).await;
        sent += 1;
        if code != 200 {
            // The engine closed the session (a packet it cannot parse), or the answer
            // was slow to come: closed (if it was not) and a new one.
            post(live.addrs()[0], &sid, "1").await;
            sid.clear();
        }
    }
    if !sid.is_empty() {
        post(live.addrs()[0], &sid, "1").await;
    }
    sent
}

/// Random bytes where an HTTP request belongs, and random bodies to the internal API.
async fn http_and_api(live: &Live, g: &mut Gen) -> usize {
    let mut sent = 0;
    for _ in 0..PER_CONNECTION {
        let mut req = g.bytes();
        if g.rng.bool() {
            let mut head = b"GET /ws HTTP/1.1\r\n".to_vec();
            head.append(&mut req);
            req = head;
        }
        req.extend_from_slice(b"\r\n\r\n");
        let (code, _) = http(live.addrs()[0], &req).await;
        assert!(code == 0 || code >= 400, "garbage is not accepted: {code}");
        sent += 1;
        let body = g.text();
        let req = format!(
            "POST /api/events HTTP/1.1\r\nHost: x\r\nX-Internal-Secret: {SECRET}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let (code, text) = http(live.addrs()[0], req.as_bytes()).await;
        assert!(
            matches!(code, 202 | 400 | 413),
            "the API answers bad input with 400: {code} {text}"
        );
        sent += 1;
    }
    sent
}

/// One WebSocket frame as a client would write it (masked unless `unmasked`).
fn frame(first: u8, payload: &[u8], unmasked: bool) -> Vec<u8> {
    let mut f = vec![first];
    let mask_bit = if unmasked { 0 } else { 0x80 };
    f.push(mask_bit | u8::try_from(payload.len()).expect("short"));
    if unmasked {
        f.extend_from_slice(payload);
    } else {
        let key = [1u8, 2, 3, 4];
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    }
    f
}

/// Protocol violations close with the RFC 6455 code, on both WebSocket paths.
async fn protocol_violations(live: &Live) -> usize {
    let t = token("fuzz-proto", None, None);
    let paths = [
        format!("ws://{}/ws?token={t}", live.addrs()[0]),
        format!(
            "ws://{}/socket.io/?EIO=4&transport=websocket",
            live.addrs()[0]
        ),
    ];
    let cases: [(&str, Vec<u8>, u16); 4] = [
        ("an unknown opcode", frame(0x83, b"x", false), 1002),
        ("reserved bits set", frame(0xC1, b"x", false), 1002),
        ("an unmasked client frame", frame(0x81, b"x", true), 1002),
        (
            "text that is not UTF-8",
            frame(0x81, &[0xff, 0xfe, 0x41], false),
            1007,
        ),
    ];
    let mut n = 0;
    for path in &paths {
        for (what, bytes, want) in &cases {
            let mut ws = open(path).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            ws.get_mut()
                .get_mut_raw()
                .write_all(bytes)
                .await
                .expect("write");
            let code = close_code(&mut ws, Duration::from_secs(5)).await;
            assert_eq!(code, Some(*want), "{path}: {what}");
            n += 1;
        }
    }
    n
}

trait Raw {
    fn get_mut_raw(&mut self) -> &mut tokio::net::TcpStream;
}

impl Raw for tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream> {
    fn get_mut_raw(&mut self) -> &mut tokio::net::TcpStream {
        match self {
            tokio_tungstenite::MaybeTlsStream::Plain(s) => s,
            _ => panic!("plain TCP"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_and_mutated_input_on_every_transport_costs_nobody_anything() {
    let seed = seed();
    eprintln!("fuzz seed {seed} (FUZZ_SEED={seed} replays it)");
    let live = start().await;
    let mut g = Gen::new(seed);
    let ws = raw_websocket(&live, &mut g).await;
    let sio = socketio_websocket(&live, &mut g).await;
    let poll = socketio_polling(&live, &mut g).await;
    let http_inputs = http_and_api(&live, &mut g).await;
    let proto = protocol_violations(&live).await;
    eprintln!(
        "fuzz inputs: raw websocket {ws}, socket.io websocket {sio}, socket.io polling bodies {poll}, http+api {http_inputs}, protocol violations {proto}"
    );
    // Nothing leaked: every connection the fuzz opened is gone from the hub.
    let hub = live.hub();
    let until = tokio::time::Instant::now() + Duration::from_secs(10);
    while hub.connection_count() > 0 && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let left: Vec<String> = hub
        .connections()
        .iter()
        .map(|c| format!("{} ({}, {:?})", c.user.id, c.dialect, c.transport))
        .collect();
    assert!(
        left.is_empty(),
        "fuzz connections still registered: {left:?}"
    );
    let metrics = hub.metrics().render();
    assert!(
        metrics.contains("switchboard_translation_failures_total"),
        "failures are counted"
    );
    // The process answers, and fresh clients of two dialects exchange a message.
    assert_eq!(
        http(
            live.addrs()[0],
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .await
        .0,
        200
    );
    let driver = crate::live::Driver::start().await;
    let mut a = crate::live::Client::connect(
        &live,
        &driver,
        "salala",
        "websocket",
        "after-a",
        Some(&["after"]),
    )
    .await;
    let b = crate::live::Client::connect(
        &live,
        &driver,
        "nexus",
        "websocket",
        "after-b",
        Some(&["after"]),
    )
    .await;
    b.send_message("after", "fresh after the fuzz", false).await;
    a.canonical_where("message.created", Duration::from_secs(5), |e| {
        e.str_field("content") == Some("fresh after the fuzz")
    })
    .await
    .expect("a fresh client receives");
}
