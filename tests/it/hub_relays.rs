//! Facts that hang off messages (edits, deletes, reactions, read receipts), indicators,
//! presence across devices, and the rest of the call flow, relayed between dialects.

use crate::live::{Client, Driver, Live, QUIET};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_deletes_reactions_and_reads_are_relayed_as_facts() {
    let live = Live::start().await;
    let driver = Driver::start().await;
    let mut author = Client::connect(
        &live,
        &driver,
        "chat-service",
        "websocket",
        "author",
        Some(&["c1"]),
    )
    .await;
    let mut phase10 =
        Client::connect(&live, &driver, "phase10", "polling", "p10", Some(&["c1"])).await;
    let mut clerk =
        Client::connect(&live, &driver, "clerk", "websocket", "clerk", Some(&["c1"])).await;
    let mut salala =
        Client::connect(&live, &driver, "salala", "websocket", "sal", Some(&["c1"])).await;

    author
        .emit_wire(
            "message:send",
            json!({"conversationId": "c1", "content": "v1"}),
            true,
        )
        .await;
    let id = author.ack("message:send").await.expect("ack")["messageId"].clone();
    assert!(id.is_string());
    assert_eq!(
        phase10.wire("messages:new").await.expect("messages:new")["message"]["id"],
        id
    );

    author
        .emit_wire(
            "message:edit",
            json!({"messageId": id, "content": "v2"}),
            true,
        )
        .await;
    assert_eq!(
        author.ack("message:edit").await.expect("ack")["success"],
        true
    );
    let upd = phase10
        .wire("messages:updated")
        .await
        .expect("messages:updated");
    assert_eq!(upd["message"]["content"], "v2");
    assert_eq!(upd["conversationId"], "c1");
    let upd = author
        .wire("message:updated")
        .await
        .expect("message:updated");
    assert_eq!(upd["isEdited"], true, "{upd}");

    // Another user may not edit it.
    clerk
        .emit_wire(
            "message:send",
            json!({"channelId": "c1", "content": "mine"}),
            false,
        )
        .await;
    let mut other = Client::connect(
        &live,
        &driver,
        "chat-service",
        "websocket",
        "other",
        Some(&["c1"]),
    )
    .await;
    other
        .emit_wire(
            "message:edit",
            json!({"messageId": id, "content": "hijack"}),
            true,
        )
        .await;
    assert_eq!(
        other.ack("message:edit").await.expect("ack")["code"],
        "forbidden"
    );

    clerk
        .emit_wire(
            "reaction:add",
            json!({"messageId": id, "type": "👍"}),
            false,
        )
        .await;
    let r = author.wire("reaction:added").await.expect("reaction:added");
    assert_eq!(
        (
            r["emoji"].clone(),
            r["userId"].clone(),
            r["totalCount"].clone()
        ),
        (json!("👍"), json!("clerk"), json!(1))
    );
    let r = clerk
        .wire("reaction:added")
        .await
        .expect("clerk sees its reaction");
    assert_eq!(r["reaction"]["type"], "👍");
    clerk
        .emit_wire(
            "reaction:remove",
            json!({"messageId": id, "type": "👍"}),
            false,
        )
        .await;
    let r = author
        .wire("reaction:removed")
        .await
        .expect("reaction:removed");
    assert_eq!(r["totalCount"], 0);

    salala
        .emit_wire("markMessagesAsRead", json!({"messageIds": [id]}), false)
        .await;
    let read = author.wire("message:read").await.expect("message:read");
    assert_eq!(
        (read["messageId"].clone(), read["userId"].clone()),
        (id.clone(), json!("sal"))
    );
    let read = salala.wire("messagesRead").await.expect("messagesRead");
    assert_eq!(read["messageIds"], json!([id]));

    author
        .emit_wire(
            "conversation:read",
            json!({"conversationId": "c1", "upToMessageId": id}),
            false,
        )
        .await;
    let cr = other
        .wire("conversation:read")
        .await
        .expect("conversation:read");
    assert_eq!(cr["userId"], "author");

    author
        .emit_wire("message:delete", json!({"messageId": id}), true)
        .await;
    assert_eq!(
        author.ack("message:delete").await.expect("ack")["success"],
        true
    );
    let del = phase10
        .wire("messages:deleted")
        .await
        .expect("messages:deleted");
    assert_eq!(del["message"]["status"], "deleted");
    assert!(del["message"]["deletedAt"].is_string());
    // A deleted message is gone.
    author
        .emit_wire(
            "message:edit",
            json!({"messageId": id, "content": "v3"}),
            true,
        )
        .await;
    assert_eq!(
        author.ack("message:edit").await.expect("ack")["code"],
        "not_found"
    );

    // What came after its message, from the room history: the edit, the reactions,
    // the reads, the delete, and the one message sent since; the history reaches back
    // to it.
    author
        .emit_wire(
            "messages:sync",
            json!({"conversationId": "c1", "lastMessageId": id}),
            true,
        )
        .await;
    let ack = author.ack("messages:sync").await.expect("ack");
    assert_eq!(ack["success"], true, "{ack}");
    assert_eq!(ack["complete"], true, "{ack}");
    let contents: Vec<&str> = ack["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert_eq!(contents, ["mine"], "{ack}");
    let names: Vec<&str> = ack["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["event"].as_str())
        .collect();
    for name in ["message:updated", "reaction:added", "message:deleted"] {
        assert!(names.contains(&name), "{name}: {ack}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_and_recording_reach_the_other_members_only() {
    let live = Live::start().await;
    let driver = Driver::start().await;
    let mut cs = Client::connect(
        &live,
        &driver,
        "chat-service",
        "websocket",
        "cs",
        Some(&["t"]),
    )
    .await;
    let mut nexus = Client::connect(&live, &driver, "nexus", "websocket", "nx", Some(&["t"])).await;
    let mut salala = Client::connect(&live, &driver, "salala", "polling", "sa", Some(&["t"])).await;
    // The typist's second device does not hear itself either.
    let mut cs2 = Client::connect(
        &live,
        &driver,
        "chat-service",
        "websocket",
        "cs",
        Some(&["t"]),
    )
    .await;

    cs.emit_wire("typing:start", json!({"conversationId": "t"}), false)
        .await;
    let t = nexus.wire("TYPING").await.expect("TYPING");
    assert_eq!(
        (t["userId"].clone(), t["isTyping"].clone()),
        (json!("cs"), json!(true))
    );
    let t = salala.wire("userTyping").await.expect("userTyping");
    assert_eq!(t["userId"], "cs");
    cs.emit_wire("typing:stop", json!({"conversationId": "t"}), false)
        .await;
    assert_eq!(
        nexus.wire("TYPING").await.expect("TYPING stop")["isTyping"],
        false
    );
    assert_eq!(
        salala.wire("userStopTyping").await.expect("userStopTyping")["conversationId"],
        "t"
    );

    cs.emit_wire("recording:start", json!({"conversationId": "t"}), false)
        .await;
    nexus
        .emit_wire("TYPING", json!({"roomId": "t", "isTyping": true}), false)
        .await;
    let t = cs2
        .wire("user:typing")
        .await
        .expect("cs2 sees nexus typing");
    assert_eq!(
        (
            t["userId"].clone(),
            t["isActive"].clone(),
            t["type"].clone()
        ),
        (json!("nx"), json!(true), json!("typing"))
    );
    let rec = salala
        .next_within(QUIET, |r| r.name == "user:recording")
        .await;
    assert!(rec.is_none(), "salala has no recording indicator: {rec:?}");
    assert!(
        cs.next_within(QUIET, |r| r.name == "user:recording")
            .await
            .is_none()
    );
    assert!(
        cs2.next_within(QUIET, |r| r.name == "user:recording")
            .await
            .is_none(),
        "not to the typist's other device"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_is_per_user_across_devices() {
    let live = Live::start().await;
    let driver = Driver::start().await;
    let mut watcher = Client::connect(
        &live,
        &driver,
        "nexus",
        "websocket",
        "watch",
        Some(&["room"]),
    )
    .await;
    let phone = Client::connect(
        &live,
        &driver,
        "salala",
        "websocket",
        "multi",
        Some(&["room"]),
    )
    .await;
    let about_multi =
        |r: &crate::live::Received| r.name == "PRESENCE" && r.payload["userId"] == "multi";
    let online = watcher.next(about_multi).await.expect("online").payload;
    assert_eq!(
        (online["userId"].clone(), online["status"].clone()),
        (json!("multi"), json!("online"))
    );
    let mut laptop = Client::connect(
        &live,
        &driver,
        "phase10",
        "websocket",
        "multi",
        Some(&["room"]),
    )
    .await;
    // The second device is no news to the room, but the user's own sessions get the
    // snapshot with both sockets.
    let snap = laptop
        .wire("presence:update")
        .await
        .expect("presence:update");
    assert_eq!(snap["isOnline"], true);
    assert_eq!(snap["sockets"].as_array().map(Vec::len), Some(2), "{snap}");
    laptop
        .emit_wire("presence:heartbeat", serde_json::Value::Null, true)
        .await;
    assert_eq!(
        laptop.ack("presence:heartbeat").await.expect("ack")["success"],
        true
    );
    phone.close().await;
    assert!(
        watcher.next_within(QUIET, about_multi).await.is_none(),
        "still online on the laptop"
    );
    laptop.close().await;
    let offline = watcher.next(about_multi).await.expect("offline").payload;
    assert_eq!(
        (offline["userId"].clone(), offline["status"].clone()),
        (json!("multi"), json!("offline"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_call_between_salala_and_nexus() {
    let live = Live::start().await;
    let driver = Driver::start().await;
    let mut caller = Client::connect(&live, &driver, "salala", "websocket", "caller", None).await;
    let mut callee = Client::connect(&live, &driver, "nexus", "websocket", "callee", None).await;
    let mut third = Client::connect(&live, &driver, "salala", "websocket", "third", None).await;
    caller
        .emit_wire(
            "call:initiate",
            json!({"targetId": "third", "callType": "audio"}),
            true,
        )
        .await;
    let inc = third.wire("call:incoming").await.expect("call:incoming");
    assert_eq!(
        (inc["callerId"].clone(), inc["callType"].clone()),
        (json!("caller"), json!("audio"))
    );
    caller
        .emit_wire("call:cancel", json!({"targetId": "third"}), true)
        .await;
    assert_eq!(
        third.wire("call:end").await.expect("cancel reaches third")["reason"],
        "cancelled"
    );

    caller
        .emit_wire(
            "call:offer",
            json!({"targetId": "callee", "sdp": "offer-sdp"}),
            true,
        )
        .await;
    assert_eq!(
        callee.wire("SIGNAL_SDP").await.expect("offer")["type"],
        "offer"
    );
    callee
        .emit_wire(
            "SIGNAL_SDP",
            json!({"targetId": "caller", "type": "answer", "sdp": "answer-sdp"}),
            false,
        )
        .await;
    assert_eq!(
        caller.wire("call:answer").await.expect("answer")["sdp"],
        "answer-sdp"
    );
    caller
        .emit_wire(
            "call:ice-candidate",
            json!({"targetId": "callee", "candidate": "cand", "sdpMid": "0", "sdpMLineIndex": 0}),
            false,
        )
        .await;
    let ice = callee.wire("SIGNAL_ICE").await.expect("SIGNAL_ICE");
    assert_eq!(
        (ice["candidate"].clone(), ice["sdpMLineIndex"].clone()),
        (json!("cand"), json!(0))
    );
    callee
        .emit_wire(
            "SIGNAL_ICE",
            json!({"targetId": "caller", "candidate": "c2", "sdpMLineIndex": 1}),
            false,
        )
        .await;
    assert_eq!(
        caller.wire("call:ice-candidate").await.expect("ice back")["candidate"],
        "c2"
    );
    // The browser's candidate object (`event.candidate` as is): NexusChat gets its spec's
    // string and index (issue 24, item 2).
    caller
        .emit_wire(
            "call:ice-candidate",
            json!({"targetId": "callee", "candidate": {"candidate": "cand-obj", "sdpMid": "1", "sdpMLineIndex": 1, "usernameFragment": "uf"}}),
            false,
        )
        .await;
    let ice = callee.wire("SIGNAL_ICE").await.expect("SIGNAL_ICE");
    assert_eq!(
        (
            ice["candidate"].clone(),
            ice["sdpMid"].clone(),
            ice["sdpMLineIndex"].clone()
        ),
        (json!("cand-obj"), json!("1"), json!(1))
    );
    // Both are in the call now: a third party's offer to the callee is rejected.
    third
        .emit_wire(
            "call:offer",
            json!({"targetId": "callee", "sdp": "x"}),
            true,
        )
        .await;
    assert_eq!(
        third.wire("call:end").await.expect("busy")["status"],
        "busy"
    );
    caller
        .emit_wire("call:end", json!({"targetId": "callee"}), true)
        .await;
    caller.ack("call:end").await.expect("ack");
    third
        .emit_wire(
            "call:offer",
            json!({"targetId": "callee", "sdp": "y"}),
            true,
        )
        .await;
    assert_eq!(
        callee.wire("SIGNAL_SDP").await.expect("free again")["sdp"],
        "y"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_connections_leave_nothing_behind() {
    let live = Live::start().await;
    let driver = Driver::start().await;
    let mut clients = Vec::new();
    for i in 0..10 {
        for (d, t) in [
            ("nexus", "websocket"),
            ("clerk", "polling"),
            ("salala", "websocket"),
        ] {
            let rooms = [format!("r{i}"), "all".to_string()];
            let rooms: Vec<&str> = rooms.iter().map(String::as_str).collect();
            clients.push(
                Client::connect(&live, &driver, d, t, &format!("u{i}-{d}"), Some(&rooms)).await,
            );
        }
    }
    let hub = live.hub();
    // A Socket.IO client hears "connect" as the hub registers it: wait for the last.
    let deadline = tokio::time::Instant::now() + crate::live::WAIT;
    while hub.connection_count() < 30 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(hub.connection_count(), 30);
    assert_eq!(
        hub.room_count(),
        30 + 10 + 1 + 1,
        "30 personal rooms, 10 rooms, one shared, Salala's (its status changes reach every client)"
    );
    for c in clients {
        c.close().await;
    }
    let deadline = tokio::time::Instant::now() + crate::live::WAIT;
    while (hub.connection_count() > 0 || hub.room_count() > 0)
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!((hub.connection_count(), hub.room_count()), (0, 0));
}
