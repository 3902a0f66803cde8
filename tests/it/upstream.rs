//! Fronting legacy backends (issue 6): clients of other dialects reach a NexusChat
//! backend (raw WebSocket envelopes) and Salala backends (Socket.IO on socketioxide, and
//! on Node's `socket.io`) through switchboard. They send, receive, get their acks, are
//! refused with a bad token in their dialect, survive a backend restart; the REST API is
//! passed through; events may be split between the backend and the hub; tokens may be
//! re-signed for the backend.

use crate::backends::nexus::Nexus;
use crate::backends::salala::Salala;
use crate::backends::{BACKEND_SECRET, eventually, front, token_with};
use crate::live::{Client, Driver, Live, TokenAt, WAIT, can_receive, can_send};
use serde_json::{Value, json};
use std::time::Duration;

/// A client holding a token signed with the backend's secret, connected (the
/// transport's connect; the backend session opens behind it).
async fn client(
    live: &Live,
    d: &std::sync::Arc<Driver>,
    dialect: &str,
    user: &str,
    rooms: &[&str],
) -> Client {
    let t = token_with(BACKEND_SECRET, user, rooms);
    let mut c = open_with(live, d, dialect, user, &t).await;
    let r = c.next(|r| r.name.starts_with("__connect")).await;
    assert_eq!(
        r.map(|r| r.name),
        Some("__connect__".into()),
        "{dialect} connects"
    );
    c
}

/// Sends a message with an ack; the ack, which must say success.
async fn send_acked(c: &mut Client, room: &str, content: &str) -> Value {
    let body = json!({"conversationId": room, "content": content});
    assert!(
        c.emit("message.send", body, true).await,
        "{} sends",
        c.dialect
    );
    let ack = c.ack_any().await.expect("the send's ack");
    assert_eq!(ack["success"], true, "{}: {ack}", c.dialect);
    ack
}

/// Joins a room with an ack, which must say success.
async fn join(c: &mut Client, room: &str) {
    assert!(
        c.emit("room.join", json!({"conversationId": room}), true)
            .await
    );
    let ack = c.ack_any().await.expect("the join's ack");
    assert_eq!(ack["success"], true, "{}: {ack}", c.dialect);
}

/// One HTTP/1.1 request: (status, head in lower case, body).
async fn http(addr: std::net::SocketAddr, req: &str) -> (u16, String, String) {
    let (code, out) = crate::live::raw_http(addr, req).await;
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (code, head.to_ascii_lowercase(), body.to_string())
}

/// A client presenting `token`, not waited for.
async fn open_with(
    live: &Live,
    d: &std::sync::Arc<Driver>,
    dialect: &str,
    user: &str,
    token: &str,
) -> Client {
    Client::open(
        live,
        d,
        dialect,
        "websocket",
        user,
        Some(token),
        TokenAt::Primary,
    )
    .await
}

/// A client whose token the backend refuses hears `unauthorized` in its dialect and is
/// closed.
async fn bad_token_refused(live: &Live, d: &std::sync::Arc<Driver>, dialect: &str) {
    let bad = token_with("not-the-backend-secret", "z", &[]);
    let mut x = open_with(live, d, dialect, "z", &bad).await;
    refused(&mut x, "unauthorized").await;
}

/// The session's error, then the disconnect (Socket.IO) or close (raw WebSocket).
async fn refused(c: &mut Client, code: &str) -> Value {
    // Clerk's `connection:error` carries a reason, not the code.
    let reason = if code == "unauthorized" {
        "auth_error"
    } else {
        code
    };
    let err = c
        .canonical_where("session.error", WAIT, |e| {
            e.body.get("code").is_some_and(|c| c == code)
                || e.body.get("reason").is_some_and(|r| r == reason)
        })
        .await
        .unwrap_or_else(|| panic!("{} hears the {code} error", c.dialect));
    let end = c
        .next(|r| r.name == "__disconnect__" || r.name == "__close__")
        .await;
    assert!(end.is_some(), "{} is closed", c.dialect);
    Value::Object(err.body)
}

fn nexus_upstream(n: &Nexus) -> String {
    format!(
        r#"name = "nexus"
url = "{}"
dialect = "nexus"
transport = "websocket"
token = "query"
http = ["/api/rooms/"]
http_url = "{}"
ack_timeout = "2s"
"#,
        n.url(),
        n.rest_url()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_clients_of_every_dialect_front_a_nexus_backend() {
    let nexus = Nexus::start(BACKEND_SECRET, 0, 0).await;
    let up = nexus_upstream(&nexus);
    let live = Live::start_with(|c| front(c, &up)).await;
    let d = Driver::start().await;
    let mut a = client(&live, &d, "clerk", "a", &["r1"]).await;
    let mut b = client(&live, &d, "chat-service", "b", &["r1"]).await;
    // NexusChat announces nothing: the gateway sends each its dialect's ready event.
    assert!(
        a.canonical("session.ready").await.is_some(),
        "clerk is ready"
    );
    eventually("two backend sessions", || nexus.connections() == 2).await;

    // A message: up as SEND_MSG, down as NEW_MESSAGE to the room; the sender's ack is
    // answered by the NEW_MESSAGE carrying its traceId.
    let ack = send_acked(&mut a, "r1", "hello").await;
    assert!(ack["messageId"].is_string(), "{ack}");
    let got = b
        .canonical("message.created")
        .await
        .expect("chat-service receives it");
    assert_eq!(got.body["content"], "hello");
    assert_eq!(got.body["senderId"], "a");
    assert_eq!(got.body["messageId"], ack["messageId"]);

    // The backend's own error reaches the sender in its dialect, and answers its ack.
    a.send_message("elsewhere", "x", true).await;
    let ack = a.ack_any().await.expect("the refused send's ack");
    assert_eq!(ack["success"], false, "{ack}");
    assert_eq!(ack["code"], "forbidden", "{ack}");
    let e = a
        .canonical("session.error")
        .await
        .expect("clerk hears the backend's error");
    let e = Value::Object(e.body);
    assert!(
        e["code"] == "forbidden" || e["reason"] == "forbidden",
        "{e}"
    );

    // What NexusChat cannot express is refused in the client's words, at once.
    assert!(
        b.emit("room.join", json!({"conversationId": "r2"}), true)
            .await
    );
    let ack = b.ack_any().await.expect("the join's ack");
    assert_eq!(ack["success"], false, "{ack}");
    assert_eq!(ack["code"], "unsupported", "{ack}");

    // A call to a busy user: NexusChat's CALL_REJECTED, in the caller's dialect.
    let caller = ["clerk", "chat-service", "salala"]
        .into_iter()
        .find(|d| can_send(d, "call.offer") && can_receive(d, "call.rejected"))
        .expect("a Socket.IO dialect with calls");
    let mut c = client(&live, &d, caller, "c", &["r1"]).await;
    eventually("three backend sessions", || nexus.connections() == 3).await;
    // Typing, relayed by the backend to the others.
    assert!(
        b.emit("typing.start", json!({"conversationId": "r1"}), false)
            .await
    );
    let t = c
        .canonical("typing.started")
        .await
        .expect("the third client sees b typing");
    assert_eq!(t.body["userId"], "b");
    nexus.set_busy("b");
    assert!(
        c.emit(
            "call.offer",
            json!({"targetId": "b", "sdp": "v=0", "callType": "video"}),
            false
        )
        .await
    );
    // (Salala, with no busy event, says it as `call:end {status: busy}`.)
    let rej = c
        .next(|r| r.name.starts_with("call:") && r.payload["status"] == "busy")
        .await
        .expect("the caller hears the rejection");
    assert_eq!(rej.payload["callerId"], "c", "{:?}", rej);

    // The REST API through the same address, status and headers intact.
    let api = live.addrs()[0];
    let (code, head, body) = http(api, "GET /api/rooms/r1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nConnection: close\r\n\r\n").await;
    assert_eq!(code, 200, "{head}\n{body}");
    assert!(head.contains("x-backend: nexus"), "{head}");
    assert!(head.contains("x-seen-forwarded-for: 127.0.0.1"), "{head}");
    let list: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(list[0]["contentText"], "hello", "{list}");
    let (code, _, body) = http(api, "POST /api/rooms/r1/echo?x=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhi!!!").await;
    assert_eq!(code, 201);
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("JSON")["body"],
        "hi!!!"
    );
    let (code, _, _) = http(
        api,
        "GET /api/rooms/r1/messages HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(code, 401, "the backend's refusal passes through");

    // A token the backend refuses: the client hears it in its dialect, and is closed.
    bad_token_refused(&live, &d, "clerk").await;

    // A client that leaves closes its backend session.
    c.close().await;
    eventually("the caller's backend session closes", || {
        nexus.connections() == 2
    })
    .await;

    // The backend restarts: clients hear it with a reconnect hint; the gateway stays up,
    // and clients reconnecting work again.
    let (port, rest) = (nexus.addr.port(), nexus.rest.port());
    nexus.stop();
    refused(&mut a, "unavailable").await;
    refused(&mut b, "unavailable").await;
    let (code, _, _) = http(api, "GET /api/rooms/r1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nConnection: close\r\n\r\n").await;
    assert_eq!(code, 502, "an unreachable REST backend is a 502");
    let t = token_with(BACKEND_SECRET, "a", &["r1"]);
    refused(
        &mut open_with(&live, &d, "clerk", "a", &t).await,
        "unavailable",
    )
    .await;
    let nexus = Nexus::start(BACKEND_SECRET, port, rest).await;
    let mut a = client(&live, &d, "clerk", "a", &["r1"]).await;
    let mut b = client(&live, &d, "chat-service", "b", &["r1"]).await;
    eventually("sessions again", || nexus.connections() == 2).await;
    send_acked(&mut b, "r1", "back").await;
    let got = a
        .canonical("message.created")
        .await
        .expect("after the restart");
    assert_eq!(got.body["content"], "back");
    let m = live.hub().metrics().render();
    assert!(
        m.contains("switchboard_upstream_sessions{upstream=\"nexus\"} 2"),
        "{m}"
    );
    assert!(m.contains("switchboard_upstream_session_events_total{upstream=\"nexus\",outcome=\"closed_by_backend\"}"), "{m}");
}

fn salala_upstream(url: &str) -> String {
    format!(
        r#"name = "salala"
url = "{url}"
dialect = "salala"
transport = "socketio"
token = "query"
ack_timeout = "1s"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_websocket_and_socketio_clients_front_a_socketioxide_backend() {
    let salala = Salala::start(BACKEND_SECRET, 0).await;
    let up = salala_upstream(&salala.url());
    let live = Live::start_with(|c| front(c, &up)).await;
    let d = Driver::start().await;
    let mut n = client(&live, &d, "nexus", "n", &[]).await;
    let mut p = client(&live, &d, "chat-service", "p", &[]).await;
    eventually("two backend sockets", || salala.connections() == 2).await;
    // The backend's broadcast reaches the raw WebSocket client as its PRESENCE.
    let on = n
        .canonical_where("presence.changed", WAIT, |e| e.body["userId"] == "p")
        .await
        .expect("nexus hears p come online");
    assert_eq!(on.body["status"], "online");

    // Acks bridged: the client's ack is answered by the backend's (the created
    // message, read through Salala's mapping).
    join(&mut p, "r1").await;
    let ack = send_acked(&mut p, "r1", "hi").await;
    assert!(ack["messageId"].is_string(), "{ack}");
    let got = p
        .canonical("message.created")
        .await
        .expect("the room's newMessage");
    assert_eq!(got.body["messageId"], ack["messageId"]);
    assert_eq!(got.body["senderId"], "p");

    // The raw WebSocket client sends (no acks in its dialect); the room hears it.
    n.send_message("r1", "from nexus", false).await;
    let got = p
        .canonical("message.created")
        .await
        .expect("chat-service hears nexus");
    assert_eq!(got.body["content"], "from nexus");
    assert_eq!(got.body["senderId"], "n");

    // The backend's refusal (an `exception`, no ack): the error in the client's dialect,
    // the ack answered when the backend stays silent.
    p.send_message("forbidden", "x", true).await;
    let e = p
        .canonical("session.error")
        .await
        .expect("chat-service hears the exception");
    assert!(
        e.body["error"]
            .as_str()
            .unwrap_or_default()
            .contains("Unauthorized"),
        "{:?}",
        e.body
    );
    let ack = p.ack_any().await.expect("the ack is answered");
    assert_eq!(ack["success"], false, "{ack}");
    assert_eq!(ack["code"], "timeout", "{ack}");

    // Refused by the backend's connect middleware: in each client's dialect.
    bad_token_refused(&live, &d, "chat-service").await;
    let bad = token_with("not-the-backend-secret", "z", &[]);
    let mut y = open_with(&live, &d, "nexus", "z", &bad).await;
    let e = y
        .canonical("session.error")
        .await
        .expect("nexus hears the refusal");
    assert_eq!(e.body["code"], "unauthorized");
    let close = y.next(|r| r.name == "__close__").await.expect("closed");
    assert_eq!(close.payload["code"], 4401);

    // A restart of the backend.
    let port = salala.addr.port();
    salala.stop().await;
    refused(&mut p, "unavailable").await;
    refused(&mut n, "unavailable").await;
    let salala = Salala::start(BACKEND_SECRET, port).await;
    let mut p = client(&live, &d, "chat-service", "p", &[]).await;
    join(&mut p, "r1").await;
    send_acked(&mut p, "r1", "again").await;
    p.close().await;
    eventually("the backend socket closes with the client", || {
        salala.connections() == 0
    })
    .await;
}

/// Node's `socket.io` as the backend, node's `socket.io-client` as the client.
struct NodeBackend {
    _child: tokio::process::Child,
    url: String,
}

async fn node_backend() -> NodeBackend {
    use tokio::io::AsyncBufReadExt;
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    let mut child = tokio::process::Command::new("node")
        .arg("backend.mjs")
        .arg(BACKEND_SECRET)
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let out = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::BufReader::new(out).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("the backend starts")
        .expect("reads")
        .expect("a line");
    let port = serde_json::from_str::<Value>(&line).expect("JSON")["port"]
        .as_u64()
        .expect("port");
    NodeBackend {
        _child: child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_socketio_backend_and_clients() {
    let backend = node_backend().await;
    let up = salala_upstream(&backend.url);
    let live = Live::start_with(|c| front(c, &up)).await;
    let d = Driver::start().await;
    let mut a = client(&live, &d, "clerk", "a", &[]).await;
    let mut b = client(&live, &d, "chat-service", "b", &[]).await;
    join(&mut a, "r9").await;
    join(&mut b, "r9").await;
    let ack = send_acked(&mut a, "r9", "node").await;
    let got = b
        .canonical("message.created")
        .await
        .expect("chat-service receives it");
    assert_eq!(got.body["content"], "node");
    assert_eq!(got.body["messageId"], ack["messageId"]);
    bad_token_refused(&live, &d, "clerk").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_split_between_backend_and_hub_with_a_resigned_token() {
    let salala = Salala::start(BACKEND_SECRET, 0).await;
    let up = format!(
        r#"{}
hub = ["typing.*", "presence.*"]
shared = ["room.join"]
[resign]
secret = "{BACKEND_SECRET}"
claims = {{ userId = "sub" }}
"#,
        salala_upstream(&salala.url())
    );
    let live = Live::start_with(|c| front(c, &up)).await;
    let d = Driver::start().await;
    // Clients hold switchboard's tokens: verified here, re-signed for the backend.
    let mut a = Client::connect(&live, &d, "chat-service", "websocket", "a", None).await;
    let mut b = Client::connect(&live, &d, "salala", "websocket", "b", None).await;
    eventually("both re-signed sessions accepted", || {
        salala.connections() == 2
    })
    .await;
    join(&mut a, "r1").await;
    join(&mut b, "r1").await;
    // Messages through the backend (it reads `userId` from the re-signed token).
    a.send_message("r1", "m", true).await;
    let got = b
        .canonical("message.created")
        .await
        .expect("through the backend");
    assert_eq!(got.body["senderId"], "a");
    // Typing through the hub: b hears it once, from the hub (the backend's would be
    // `userTyping` too, but typing never reached it).
    assert!(
        a.emit("typing.start", json!({"conversationId": "r1"}), false)
            .await
    );
    let t = b
        .canonical("typing.started")
        .await
        .expect("typing through the hub");
    assert_eq!(t.body["userId"], "a");
    assert!(
        b.canonical_where("typing.started", crate::live::QUIET, |_| true)
            .await
            .is_none(),
        "typing arrives once"
    );
    // Presence from the hub; the backend's userStatusChanged is dropped.
    let live_hub = live.hub().connection_count();
    assert_eq!(live_hub, 2);
    // A token switchboard refuses never reaches the backend.
    bad_token_refused(&live, &d, "clerk").await;
    assert_eq!(salala.connections(), 2);
}
