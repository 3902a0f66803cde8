//! The fault suite: what happens when things go wrong. A panic inside a connection's
//! task; hostile and random frames on every transport; tokens from the future and
//! forged ones. Each test checks that nothing leaked (the connection gauge, the per-user
//! count, presence), that the refusal was said in the sender's dialect, and that a fresh
//! client still works afterwards. Broker outages and crashes are in `outages`.

use crate::live::{Client, Driver, Live, WAIT, token};
use std::time::Duration;
use switchboard::hub::Hub;

/// Waits until `hub` has `n` connections (or fails after `WAIT`).
async fn connections_settle(hub: &Hub, n: usize) {
    let until = tokio::time::Instant::now() + WAIT;
    while hub.connection_count() != n && tokio::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(hub.connection_count(), n, "connections settle at {n}");
}

/// The connection gauge of one dialect and transport, from `/metrics`' text.
fn gauge(hub: &Hub, dialect: &str, transport: &str) -> i64 {
    let text = hub.metrics().render();
    let want =
        format!("switchboard_connections{{dialect=\"{dialect}\",transport=\"{transport}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&want))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// A panic injected into a live connection's task, on each transport: the connection is
/// unregistered however its task ended (the gauge, the per-user count, its rooms), the
/// room hears its user go offline, and the user connects again as often as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_connection_task_leaks_nothing() {
    let live = Live::start().await;
    let driver = Driver::start().await;
    let hub = live.hub().clone();
    let room = crate::live::unique("panic-room");
    let mut peer = Client::connect(
        &live,
        &driver,
        "chat-service",
        "websocket",
        "panic-peer",
        None,
    )
    .await;
    peer.emit(
        "room.join",
        serde_json::json!({"conversationId": room}),
        true,
    )
    .await;
    peer.ack_any().await.expect("peer joined");
    for (dialect, transport, transport_label) in [
        ("nexus", "websocket", "websocket"),
        ("salala", "websocket", "socketio"),
        ("salala", "polling", "socketio"),
    ] {
        let user = format!("panicky-{dialect}-{transport}");
        let rooms = [room.as_str()];
        let victim = Client::connect(&live, &driver, dialect, transport, &user, Some(&rooms)).await;
        if dialect != "nexus" {
            victim
                .emit(
                    "room.join",
                    serde_json::json!({"conversationId": room}),
                    false,
                )
                .await;
        }
        peer.canonical_where("presence.changed", WAIT, |e| {
            e.str_field("userId") == Some(user.as_str()) && e.str_field("status") == Some("online")
        })
        .await
        .expect("the peer sees the victim online");
        connections_settle(&hub, 2).await;
        assert_eq!(gauge(&hub, dialect, transport_label), 1);
        let conn = hub
            .connections()
            .into_iter()
            .find(|c| c.user.id == user)
            .expect("the victim's connection");
        conn.inject_panic();
        drop(conn);
        victim
            .send_message(&room, "this frame panics the task", false)
            .await;
        connections_settle(&hub, 1).await;
        assert_eq!(
            gauge(&hub, dialect, transport_label),
            0,
            "{dialect}/{transport}: gauge"
        );
        assert_eq!(
            hub.user_connection_count(&user),
            0,
            "{dialect}/{transport}: per-user count"
        );
        peer.canonical_where("presence.changed", WAIT, |e| {
            e.str_field("userId") == Some(user.as_str()) && e.str_field("status") == Some("offline")
        })
        .await
        .unwrap_or_else(|| panic!("{dialect}/{transport}: the room hears the user go offline"));
        // The user is not counted against its limit: 32 connections (the limit) open.
        let mut again = Vec::new();
        for _ in 0..32 {
            let t = token(&user, None, None);
            let mut c = Client::open(
                &live,
                &driver,
                dialect,
                transport,
                &user,
                Some(&t),
                crate::live::TokenAt::Primary,
            )
            .await;
            let r = c
                .next(|r| r.name.starts_with("__connect"))
                .await
                .expect("an outcome");
            assert_eq!(
                r.name, "__connect__",
                "{dialect}/{transport}: the user connects again"
            );
            again.push(c);
        }
        connections_settle(&hub, 33).await;
        for c in again {
            c.close().await;
        }
        connections_settle(&hub, 1).await;
        victim.close().await;
    }
    // The peer still sends and receives.
    let mut other = Client::connect(
        &live,
        &driver,
        "phase10",
        "websocket",
        "panic-other",
        Some(&[room.as_str()]),
    )
    .await;
    peer.send_message(&room, "after the faults", false).await;
    other
        .canonical_where("message.created", WAIT, |e| {
            e.str_field("content") == Some("after the faults")
        })
        .await
        .expect("a fresh client receives");
}

/// What a client that speaks Socket.IO badly is told, on both Socket.IO paths: frames
/// that are not packets, and an ack id no integer type holds, get `bad_event` in the
/// dialect (salala's `exception`); the event with that id is not run; the connection
/// stays and works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_socketio_input_is_answered_bad_event_on_both_paths() {
    use crate::support::{next_text, open, poll_open, poll_post, poll_until, send};
    let live = Live::start().await;
    let addr = live.addrs()[0];
    let t = token("sio-bad", None, None);
    // Over WebSocket (our Engine.IO path).
    let mut ws = open(&format!("ws://{addr}/socket.io/?EIO=4&transport=websocket")).await;
    next_text(&mut ws, WAIT).await.expect("open packet");
    send(&mut ws, format!(r#"40{{"token":"{t}"}}"#)).await;
    let mut frames = Vec::new();
    for bad in [
        "not json",
        "{",
        "",
        "4x",
        r#"4218446744073709551616["joinRoom",{"conversationId":"never"}]"#,
    ] {
        send(&mut ws, bad).await;
        loop {
            let f = next_text(&mut ws, WAIT)
                .await
                .unwrap_or_else(|| panic!("an answer to {bad:?}"));
            if f.starts_with("42[\"exception\"") {
                frames.push(f);
                break;
            }
        }
    }
    assert!(
        frames
            .iter()
            .all(|f| f.contains("bad_event") || f.contains("error")),
        "{frames:?}"
    );
    assert!(frames[4].contains("ack id"), "{}", frames[4]);
    // The event with the unreadable id did not run: the room was never joined.
    send(&mut ws, r#"425["joinRoom",{"conversationId":"ok"}]"#).await;
    loop {
        let f = next_text(&mut ws, WAIT).await.expect("ack of a good event");
        if let Some(ack) = f.strip_prefix("435") {
            assert!(ack.contains("true"), "{ack}");
            break;
        }
    }
    // Over long polling (socketioxide, after our reading of the body).
    let sid = poll_open(addr).await;
    assert_eq!(
        poll_post(addr, &sid, &format!(r#"40{{"token":"{t}"}}"#)).await,
        200
    );
    poll_until(addr, &sid, "40")
        .await
        .expect("the namespace joined");
    let body = "4299999999999999999999[\"joinRoom\",{\"conversationId\":\"never\"}]";
    assert_eq!(poll_post(addr, &sid, body).await, 200);
    let got = poll_until(addr, &sid, "exception")
        .await
        .expect("an answer");
    assert!(got.contains("ack id"), "{got}");
    let metrics = live.hub().metrics().render();
    assert!(
        metrics.contains(
            r#"switchboard_translation_failures_total{dialect="salala",reason="bad_ack_id"} 2"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains(r#"reason="bad_packet""#));
}

/// Forged and ill-timed tokens on every client dialect (and on long polling): `nbf` and
/// `iat` in the future, `alg: none`, the wrong key, an RS256 header on an HMAC-signed
/// token (algorithm confusion). Each is refused in the dialect's words, then the
/// connection is closed; nobody is registered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_future_tokens_are_refused_on_every_transport() {
    use crate::live::{CLIENT_DIALECTS, SECRET, TokenAt};
    use base64::Engine as _;
    let live = Live::start().await;
    let driver = Driver::start().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let auth = switchboard::auth::Authenticator::hs256(SECRET, Duration::ZERO);
    let other = switchboard::auth::Authenticator::hs256("another-secret", Duration::ZERO);
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims = format!(r#"{{"sub":"forger","exp":{}}}"#, now + 3600);
    let none = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(claims.as_bytes())
    );
    let hmac_under_rs256 = {
        use hmac::{KeyInit, Mac};
        let signing = format!(
            "{}.{}",
            b64.encode(br#"{"alg":"RS256","typ":"JWT"}"#),
            b64.encode(claims.as_bytes())
        );
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
        mac.update(signing.as_bytes());
        format!("{signing}.{}", b64.encode(mac.finalize().into_bytes()))
    };
    let tokens = [
        (
            "nbf in the future",
            auth.sign(&serde_json::json!({"sub": "forger", "exp": now + 3600, "nbf": now + 600}))
                .expect("sign"),
        ),
        (
            "iat in the future",
            auth.sign(&serde_json::json!({"sub": "forger", "exp": now + 3600, "iat": now + 600}))
                .expect("sign"),
        ),
        ("alg none", none),
        (
            "the wrong key",
            other
                .mint("forger", None, None, Duration::from_secs(60))
                .expect("mint"),
        ),
        ("algorithm confusion", hmac_under_rs256),
    ];
    let cases = CLIENT_DIALECTS
        .iter()
        .map(|d| (*d, "websocket"))
        .chain([("salala", "polling"), ("chat-service", "polling")]);
    for (dialect, transport) in cases {
        for (what, t) in &tokens {
            let mut c = Client::open(
                &live,
                &driver,
                dialect,
                transport,
                "forger",
                Some(t),
                TokenAt::Primary,
            )
            .await;
            let refused = c
                .canonical_where("session.error", WAIT, |_| true)
                .await
                .unwrap_or_else(|| panic!("{dialect}/{transport}: {what}: refused in the dialect"));
            let code = refused.str_field("code").or(refused.str_field("reason"));
            assert!(
                matches!(code, Some("unauthorized" | "auth_error") | None),
                "{dialect}/{transport}: {what}: {refused:?}"
            );
            c.next(|r| r.name == "__disconnect__" || r.name == "__close__")
                .await
                .unwrap_or_else(|| panic!("{dialect}/{transport}: {what}: closed"));
        }
    }
    connections_settle(live.hub(), 0).await;
}
