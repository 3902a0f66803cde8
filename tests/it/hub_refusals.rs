//! What the hub refuses, and how: tokens per dialect (in the dialect's own words, then
//! the connection is closed), the membership policy, sending to a room one is not in,
//! the payload limit, and bad input on a live connection (which survives it).

use crate::live::{
    CLIENT_DIALECTS, Client, Driver, Live, QUIET, TokenAt, WAIT, expired_token, token,
};
use serde_json::{Value, json};
use std::time::Duration;
use switchboard::config::Membership;
use tokio_tungstenite::tungstenite::Message;

/// The error event each dialect's client must get for a refused token, as (event name,
/// check on its payload).
/// A check on an error payload.
type Check = Box<dyn Fn(&Value) -> bool>;

fn auth_error(dialect: &str, expired: bool) -> (&'static str, Check) {
    match dialect {
        "phase10" => {
            let code = if expired {
                "socket_error:token_expired"
            } else {
                "socket_error:unauthorized"
            };
            (
                "error",
                Box::new(move |p: &Value| p["code"] == code && p["message"].is_string()),
            )
        }
        "clerk" => (
            "connection:error",
            Box::new(|p: &Value| {
                p["reason"] == "auth_error"
                    && p["error"].is_string()
                    && p["reconnectAttempt"].is_number()
            }),
        ),
        "chat-service" => {
            let code = if expired {
                "token_expired"
            } else {
                "unauthorized"
            };
            (
                "error",
                Box::new(move |p: &Value| {
                    p["code"] == code && p["message"].is_string() && p["timestamp"].is_string()
                }),
            )
        }
        "nexus" => {
            let code = if expired {
                "token_expired"
            } else {
                "unauthorized"
            };
            (
                "ERROR",
                Box::new(move |p: &Value| p["code"] == code && p["message"].is_string()),
            )
        }
        "salala" => (
            "exception",
            Box::new(|p: &Value| p["status"] == "error" && p["message"].is_string()),
        ),
        other => panic!("no client dialect {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_tokens_get_the_dialects_error_and_are_closed() {
    let live = Live::start().await;
    let driver = Driver::start().await;
    let bad = "not-a-jwt".to_string();
    let expired = expired_token("late");
    for d in CLIENT_DIALECTS {
        for (tok, label, is_expired) in [
            (None, "missing", false),
            (Some(&bad), "invalid", false),
            (Some(&expired), "expired", true),
        ] {
            let mut c = Client::open(
                &live,
                &driver,
                d,
                "websocket",
                "x",
                tok.map(String::as_str),
                TokenAt::Primary,
            )
            .await;
            let (name, check) = auth_error(d, is_expired);
            let p = c
                .wire(name)
                .await
                .unwrap_or_else(|| panic!("{d}: {label} token gets `{name}`"));
            assert!(check(&p), "{d}: {label} token: {p}");
            let closed = c
                .next(|r| r.name == "__disconnect__" || r.name == "__close__")
                .await;
            let closed =
                closed.unwrap_or_else(|| panic!("{d}: {label} token closes the connection"));
            if d == "nexus" {
                assert_eq!(closed.payload["code"], 4401, "{closed:?}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_read_where_each_transport_puts_them() {
    let live = Live::start().await;
    let driver = Driver::start().await;
    for d in ["nexus", "salala", "clerk"] {
        for at in [TokenAt::Primary, TokenAt::Plain, TokenAt::Query] {
            let t = token("where", None, None);
            let mut c = Client::open(&live, &driver, d, "websocket", "where", Some(&t), at).await;
            let r = c.next(|r| r.name.starts_with("__connect")).await;
            assert_eq!(
                r.map(|r| r.name).as_deref(),
                Some("__connect__"),
                "{d} {at:?}"
            );
            let refused = c
                .next_within(QUIET, |r| {
                    r.name == "__disconnect__" || r.name == "__close__"
                })
                .await;
            assert!(
                refused.is_none(),
                "{d} {at:?}: stays connected: {refused:?}"
            );
            c.close().await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_events_name_the_user_and_its_rooms() {
    let live = Live::start().await;
    let driver = Driver::start().await;
    let mut c = Client::connect(
        &live,
        &driver,
        "chat-service",
        "websocket",
        "ready",
        Some(&["a", "b"]),
    )
    .await;
    let p = c.wire("connected").await.expect("connected");
    assert_eq!(p["userId"], "ready");
    assert_eq!(p["rooms"], json!(["a", "b"]));
    assert!(
        p["socketId"].is_string() && p["timestamp"].is_string(),
        "{p}"
    );
    let mut c = Client::connect(&live, &driver, "clerk", "polling", "ready2", Some(&["x"])).await;
    let p = c
        .wire("connection:success")
        .await
        .expect("connection:success");
    assert_eq!(p, json!({"userId": "ready2", "channels": ["x"]}));
    let mut c = Client::connect(&live, &driver, "phase10", "websocket", "ready3", None).await;
    let p = c
        .wire("notifications:ready")
        .await
        .expect("notifications:ready");
    assert_eq!(p["userId"], "ready3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_claims_policy_refuses_rooms_the_token_does_not_grant() {
    let live = Live::start_with(|c| c.hub.membership = Membership::Claims).await;
    let driver = Driver::start().await;
    let mut c = Client::connect(&live, &driver, "phase10", "websocket", "p", Some(&["mine"])).await;
    c.emit_wire(
        "conversations:join",
        json!({"conversationId": "theirs"}),
        true,
    )
    .await;
    let ack = c.ack("conversations:join").await.expect("ack");
    assert_eq!(ack["success"], false, "{ack}");
    assert!(
        ack["message"]
            .as_str()
            .is_some_and(|m| m.contains("theirs")),
        "{ack}"
    );
    let err = c.wire("error").await.expect("error event");
    assert_eq!(err["code"], "forbidden");
    c.emit_wire(
        "conversations:join",
        json!({"conversationId": "mine"}),
        true,
    )
    .await;
    assert_eq!(
        c.ack("conversations:join").await.expect("ack")["success"],
        true
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_to_a_room_one_is_not_in_is_refused_in_the_dialects_words() {
    let live = Live::start().await;
    let driver = Driver::start().await;
    let mut clerk = Client::connect(&live, &driver, "clerk", "websocket", "c", None).await;
    clerk
        .emit_wire(
            "message:send",
            json!({"channelId": "elsewhere", "content": "x", "tempId": "t9"}),
            true,
        )
        .await;
    let failed = clerk.wire("message:failed").await.expect("message:failed");
    assert_eq!(failed["tempId"], "t9");
    assert_eq!(failed["status"], "FAILED");
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|e| e.contains("elsewhere")),
        "{failed}"
    );
    assert_eq!(
        clerk.ack("message:send").await.expect("ack")["success"],
        false
    );

    let mut nexus = Client::connect(&live, &driver, "nexus", "websocket", "n", None).await;
    nexus
        .emit_wire(
            "SEND_MSG",
            json!({"roomId": "elsewhere", "type": "TEXT", "contentText": "x"}),
            false,
        )
        .await;
    let err = nexus.wire("ERROR").await.expect("ERROR");
    assert_eq!(err["code"], "not_member");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_client_ref_is_not_broadcast_twice() {
    let live = Live::start().await;
    let driver = Driver::start().await;
    let mut watcher =
        Client::connect(&live, &driver, "salala", "websocket", "w", Some(&["r"])).await;
    let sender = Client::connect(&live, &driver, "nexus", "websocket", "s", Some(&["r"])).await;
    watcher
        .canonical_where("presence.changed", WAIT, |e| {
            e.str_field("userId") == Some("s")
        })
        .await;
    let send = json!({"roomId": "r", "type": "TEXT", "contentText": "once", "clientRef": "dup-1"});
    sender.emit_wire("SEND_MSG", send.clone(), false).await;
    sender.emit_wire("SEND_MSG", send, false).await;
    let got = watcher.wire("newMessage").await.expect("one newMessage");
    assert_eq!(got["content"], "once");
    assert!(
        watcher
            .next_within(QUIET, |r| r.name == "newMessage")
            .await
            .is_none(),
        "no second broadcast"
    );
    // The same clientRef from another user is another message.
    let other = Client::connect(&live, &driver, "nexus", "websocket", "o", Some(&["r"])).await;
    other
        .emit_wire(
            "SEND_MSG",
            json!({"roomId": "r", "type": "TEXT", "contentText": "other", "clientRef": "dup-1"}),
            false,
        )
        .await;
    assert_eq!(
        watcher.wire("newMessage").await.expect("other's message")["content"],
        "other"
    );
}

/// Clerk's spec (issue 24, item 7): a send is keyed by `${clientId}:${tempId || content}`
/// and a duplicate is answered `message:failed {error: 'Message already being
/// processed', tempId, status: 'FAILED', processed: true}`, not confirmed again; nothing
/// is broadcast twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clerk_refuses_a_duplicate_by_temp_id_or_by_content_as_its_spec_says() {
    let live = Live::start_with(|c| c.hub.content_dedup_window = Duration::from_millis(600)).await;
    let driver = Driver::start().await;
    let mut watcher =
        Client::connect(&live, &driver, "salala", "websocket", "cw", Some(&["r"])).await;
    let mut clerk = Client::connect(&live, &driver, "clerk", "websocket", "cs", Some(&["r"])).await;
    // The spec's example, twice.
    let send = json!({"content": "Hello world", "channelId": "r", "tempId": "temp-123"});
    clerk.emit_wire("message:send", send.clone(), true).await;
    let first = clerk.ack("message:send").await.expect("first ack");
    assert_eq!(first["success"], true, "{first}");
    let delivered = clerk.wire("message:delivered").await.expect("delivered");
    assert_eq!(delivered["tempId"], "temp-123");
    clerk.emit_wire("message:send", send, true).await;
    let second = clerk.ack("message:send").await.expect("second ack");
    assert_eq!(
        (second["success"].clone(), second["code"].clone()),
        (json!(false), json!("duplicate"))
    );
    let failed = clerk.wire("message:failed").await.expect("message:failed");
    assert_eq!(
        failed,
        json!({"error": "Message already being processed", "tempId": "temp-123", "status": "FAILED", "processed": true})
            .as_object()
            .map(|o| {
                let mut o = o.clone();
                if let Some(t) = failed.get("timestamp") {
                    o.insert("timestamp".into(), t.clone());
                }
                Value::Object(o)
            })
            .expect("object"),
        "the spec's duplicate answer"
    );
    assert!(
        clerk
            .next_within(QUIET, |r| r.name == "message:delivered")
            .await
            .is_none(),
        "not confirmed again"
    );
    assert_eq!(
        watcher.wire("newMessage").await.expect("once")["content"],
        "Hello world"
    );
    assert!(
        watcher
            .next_within(QUIET, |r| r.name == "newMessage")
            .await
            .is_none()
    );
    // Without a tempId, the content is the key (within `hub.content_dedup_window`).
    let plain = json!({"content": "no temp id", "channelId": "r"});
    clerk.emit_wire("message:send", plain.clone(), true).await;
    assert_eq!(
        clerk.ack("message:send").await.expect("ack")["success"],
        true
    );
    clerk.emit_wire("message:send", plain.clone(), true).await;
    assert_eq!(
        clerk.ack("message:send").await.expect("ack")["code"],
        "duplicate"
    );
    assert_eq!(
        clerk.wire("message:failed").await.expect("failed")["error"],
        "Message already being processed"
    );
    // Other content is another message; the same content after the window too.
    clerk
        .emit_wire(
            "message:send",
            json!({"content": "something else", "channelId": "r"}),
            true,
        )
        .await;
    assert_eq!(
        clerk.ack("message:send").await.expect("ack")["success"],
        true
    );
    tokio::time::sleep(Duration::from_millis(700)).await;
    clerk.emit_wire("message:send", plain, true).await;
    assert_eq!(
        clerk.ack("message:send").await.expect("ack")["success"],
        true
    );
    let mut seen = Vec::new();
    while let Some(m) = watcher.next_within(QUIET, |r| r.name == "newMessage").await {
        seen.push(
            m.payload["content"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        );
    }
    assert_eq!(seen, ["no temp id", "something else", "no temp id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_over_the_payload_limit_is_refused_and_the_connection_lives() {
    let live = Live::start().await;
    let driver = Driver::start().await;
    let big = "x".repeat(6 * 1024);
    for transport in ["websocket", "polling"] {
        let mut c = Client::connect(
            &live,
            &driver,
            "chat-service",
            transport,
            "big",
            Some(&["r"]),
        )
        .await;
        c.emit_wire(
            "message:send",
            json!({"conversationId": "r", "content": big}),
            true,
        )
        .await;
        let err = c.wire("error").await.expect("error");
        assert_eq!(err["code"], "payload_too_large", "{transport}");
        assert_eq!(c.ack("message:send").await.expect("ack")["success"], false);
        c.emit_wire(
            "message:send",
            json!({"conversationId": "r", "content": "small"}),
            true,
        )
        .await;
        assert_eq!(
            c.ack("message:send").await.expect("ack")["success"],
            true,
            "{transport}: still usable"
        );
        c.close().await;
    }
    let mut n = Client::connect(&live, &driver, "nexus", "websocket", "bign", Some(&["r"])).await;
    n.emit_wire(
        "SEND_MSG",
        json!({"roomId": "r", "type": "TEXT", "contentText": big}),
        false,
    )
    .await;
    assert_eq!(
        n.wire("ERROR").await.expect("ERROR")["code"],
        "payload_too_large"
    );
    n.emit_wire(
        "SEND_MSG",
        json!({"roomId": "r", "type": "TEXT", "contentText": "small"}),
        false,
    )
    .await;
    assert_eq!(
        n.wire("NEW_MESSAGE").await.expect("still usable")["contentText"],
        "small"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_an_error_and_the_connection_and_server_survive() {
    let live = Live::start_with(|c| c.limits.max_frame = 64 * 1024).await;
    let driver = Driver::start().await;
    let mut n = Client::connect(&live, &driver, "nexus", "websocket", "bad", Some(&["r"])).await;
    let cases: Vec<(Message, &str)> = vec![
        (Message::Text("not json".into()), "bad_event"),
        (Message::Text("[1,2]".into()), "bad_event"),
        (
            Message::Text(r#"{"event":"NO_SUCH","traceId":"t","data":{}}"#.into()),
            "unknown_event",
        ),
        (
            Message::Text(r#"{"event":"SEND_MSG","traceId":"t","data":{"roomId":7.5e400}}"#.into()),
            "bad_event",
        ),
        (
            Message::Text(
                r#"{"event":"TYPING","traceId":"t","data":{"roomId":"r","isTyping":"yes"}}"#.into(),
            ),
            "bad_event",
        ),
        (
            Message::Text(r#"{"event":"SEND_MSG","traceId":"t","data":"text"}"#.into()),
            "bad_event",
        ),
        (
            Message::Text(format!("{}{}", "[".repeat(2000), "]".repeat(2000)).into()),
            "bad_event",
        ),
        (Message::Binary(vec![0, 1, 2].into()), "bad_event"),
    ];
    for (m, code) in cases {
        let shown = format!("{m:?}").chars().take(80).collect::<String>();
        n.send_raw(m);
        let err = n
            .wire("ERROR")
            .await
            .unwrap_or_else(|| panic!("an ERROR for {shown}"));
        assert_eq!(err["code"], code, "{shown}: {err}");
    }
    n.emit_wire(
        "SEND_MSG",
        json!({"roomId": "r", "type": "TEXT", "contentText": "still here"}),
        false,
    )
    .await;
    assert_eq!(
        n.wire("NEW_MESSAGE").await.expect("alive")["contentText"],
        "still here"
    );

    // Over the hard frame limit: the connection is closed with 1009; the server lives.
    n.send_raw(Message::Text("y".repeat(100 * 1024).into()));
    let closed = n.next(|r| r.name == "__close__").await.expect("closed");
    assert_eq!(closed.payload["code"], 1009, "{closed:?}");

    // Socket.IO: unknown events, wrong types and binary attachments.
    let mut s = Client::connect(&live, &driver, "salala", "websocket", "bad2", Some(&["r"])).await;
    s.emit_wire("noSuchEvent", json!({}), true).await;
    assert_eq!(
        s.wire("exception").await.expect("exception")["status"],
        "error"
    );
    assert_eq!(
        s.ack("noSuchEvent").await.expect("ack")["code"],
        "unknown_event"
    );
    s.emit_wire(
        "sendMessage",
        json!({"conversationId": ["r"], "content": 5}),
        true,
    )
    .await;
    assert_eq!(
        s.ack("sendMessage").await.expect("ack")["code"],
        "bad_event"
    );
    s.emit_wire(
        "sendMessage",
        json!({"conversationId": "r", "content": "fine"}),
        true,
    )
    .await;
    assert_eq!(s.ack("sendMessage").await.expect("ack")["success"], true);
    let fresh = Client::connect(&live, &driver, "nexus", "websocket", "after", Some(&["r"])).await;
    fresh
        .emit_wire("TYPING", json!({"roomId": "r", "isTyping": true}), false)
        .await;
    // A raw WebSocket client hears it is open before the hub has registered it: wait.
    crate::support::until("both connections registered", WAIT, || {
        live.hub().connection_count() >= 2
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offer_to_a_busy_user_is_rejected_in_the_callers_dialect() {
    let live = Live::start().await;
    let driver = Driver::start().await;
    let mut a = Client::connect(&live, &driver, "nexus", "websocket", "a", None).await;
    let mut b = Client::connect(&live, &driver, "salala", "websocket", "b", None).await;
    let mut c = Client::connect(&live, &driver, "nexus", "websocket", "c", None).await;
    let mut d = Client::connect(&live, &driver, "salala", "websocket", "d", None).await;
    // a calls b: a is now busy.
    a.emit_wire(
        "SIGNAL_SDP",
        json!({"targetId": "b", "type": "offer", "sdp": "v=0"}),
        false,
    )
    .await;
    let offer = b.wire("call:offer").await.expect("b gets the offer");
    assert_eq!(offer["callerId"], "a");
    // c (nexus) calls a: CALL_REJECTED.
    c.emit_wire(
        "SIGNAL_SDP",
        json!({"targetId": "a", "type": "offer", "sdp": "v=0"}),
        false,
    )
    .await;
    let rej = c.wire("CALL_REJECTED").await.expect("CALL_REJECTED");
    assert_eq!(rej["callerId"], "c");
    assert_eq!(rej["targetId"], "a");
    assert_eq!(rej["status"], "busy");
    assert!(rej["reason"].is_string());
    assert!(
        a.next_within(QUIET, |r| r.name == "SIGNAL_SDP")
            .await
            .is_none(),
        "a is not disturbed"
    );
    // d (salala) calls a: call:end {status: busy}, the ack says busy.
    d.emit_wire("call:offer", json!({"targetId": "a", "sdp": "v=0"}), true)
        .await;
    let end = d.wire("call:end").await.expect("call:end");
    assert_eq!(end["status"], "busy");
    assert_eq!(d.ack("call:offer").await.expect("ack")["status"], "busy");
    // b ends the call with a: both are free again; d's offer now goes through.
    b.emit_wire("call:end", json!({"targetId": "a"}), true)
        .await;
    b.ack("call:end").await.expect("ack");
    d.emit_wire("call:offer", json!({"targetId": "a", "sdp": "v=1"}), true)
        .await;
    let sdp = a.wire("SIGNAL_SDP").await.expect("a gets d's offer");
    assert_eq!(sdp["sdp"], "v=1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_api_answers() {
    let live = Live::start().await;
    let addr = live.addrs()[0];
    let get = |path: &str| {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
            s.write_all(request.as_bytes()).await.expect("write");
            let mut out = String::new();
            s.read_to_string(&mut out).await.expect("read");
            // "<body>\n<status>", like curl -w.
            let status = out.split(' ').nth(1).unwrap_or_default().to_string();
            let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
            format!("{body}\n{status}")
        }
    };
    let webrtc = get("/api/config/webrtc").await;
    assert!(webrtc.ends_with("200"), "{webrtc}");
    let body: Value = serde_json::from_str(webrtc.lines().next().expect("body")).expect("json");
    assert_eq!(
        body["iceServers"][0]["urls"][0],
        "stun:stun1.l.google.com:19302"
    );
    assert!(get("/healthz").await.ends_with("200"));
    let ready = get("/readyz").await;
    assert!(
        ready.ends_with("200") && ready.contains("\"local\""),
        "{ready}"
    );
    assert!(get("/nope").await.ends_with("404"));
    let ws_plain = get("/ws").await;
    assert!(ws_plain.ends_with("426"), "{ws_plain}");
}

/// Clerk's `connection:error {error, reason, reconnectAttempt}`: the attempt a client
/// says it is on (socket.io-client's `reconnect_attempt`, put in its `auth`), else its
/// refused attempts from its address counted (the spec's example: 1 for the first); a
/// connection that succeeds starts the count again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clerk_reconnect_attempts_are_counted() {
    let live = Live::start().await;
    let driver = Driver::start().await;
    let attempt = |auth: Value, transport: &'static str| {
        let (live, driver) = (&live, &driver);
        async move {
            let mut c =
                Client::socketio(live, driver, "clerk", transport, "ra", auth, Value::Null).await;
            let e = c.wire("connection:error").await.expect("connection:error");
            assert_eq!(e["reason"], "auth_error", "{e}");
            assert!(e["error"].is_string(), "{e}");
            e["reconnectAttempt"].clone()
        }
    };
    let bad = json!({"token": "Bearer not-a-jwt"});
    assert_eq!(attempt(bad.clone(), "websocket").await, 1);
    assert_eq!(attempt(bad.clone(), "polling").await, 2);
    assert_eq!(attempt(bad.clone(), "websocket").await, 3);
    // What the client says it is on wins.
    let said = json!({"token": "Bearer not-a-jwt", "reconnectAttempt": 7});
    assert_eq!(attempt(said, "websocket").await, 7);
    // A good connection from the same address starts again.
    let ok = Client::connect(&live, &driver, "clerk", "websocket", "ra", None).await;
    ok.close().await;
    assert_eq!(attempt(bad, "websocket").await, 1);
}
