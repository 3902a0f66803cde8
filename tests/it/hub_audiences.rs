//! Audiences as each system's own server draws them (issue 24, items 8 and 9): Phase 10's
//! `messages:new` carries `recipients` and reaches every participant's personal room,
//! its `presence:update` and Salala's `userStatusChanged` reach every client on a
//! transition, NexusChat's `TYPING` reaches every room subscriber, the typist included;
//! the other dialects keep their own audiences. Each with the spec's own payloads.

use crate::live::{Client, Driver, Live, QUIET, Received};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nexus_typing_reaches_every_room_subscriber_the_typist_too() {
    let live = Live::start().await;
    let driver = Driver::start().await;
    let mut typist =
        Client::connect(&live, &driver, "nexus", "websocket", "nx", Some(&["r"])).await;
    let mut typist2 =
        Client::connect(&live, &driver, "nexus", "websocket", "nx", Some(&["r"])).await;
    let mut other = Client::connect(&live, &driver, "nexus", "websocket", "ny", Some(&["r"])).await;
    let mut cs = Client::connect(
        &live,
        &driver,
        "chat-service",
        "websocket",
        "cs",
        Some(&["r"]),
    )
    .await;
    // The typist on a Chat Service device: Chat Service's server tells the others only.
    let mut typist_cs = Client::connect(
        &live,
        &driver,
        "chat-service",
        "websocket",
        "nx",
        Some(&["r"]),
    )
    .await;

    // The spec's TYPING data: {roomId, isTyping}.
    typist
        .emit_wire("TYPING", json!({"roomId": "r", "isTyping": true}), false)
        .await;
    for (who, c) in [
        ("the typist", &mut typist),
        ("the typist's other device", &mut typist2),
        ("another subscriber", &mut other),
    ] {
        let t = c.wire("TYPING").await.unwrap_or_else(|| panic!("{who}"));
        assert_eq!(
            t,
            json!({"roomId": "r", "userId": "nx", "isTyping": true}),
            "{who}"
        );
    }
    let t = cs.wire("user:typing").await.expect("chat-service member");
    assert_eq!(
        (t["userId"].clone(), t["isActive"].clone()),
        (json!("nx"), json!(true))
    );
    assert!(
        typist_cs
            .next_within(QUIET, |r| r.name == "user:typing")
            .await
            .is_none(),
        "a Chat Service device of the typist does not hear it"
    );

    typist
        .emit_wire("TYPING", json!({"roomId": "r", "isTyping": false}), false)
        .await;
    let t = typist.wire("TYPING").await.expect("stop to the typist");
    assert_eq!(t["isTyping"], false);

    // A typist of another dialect: NexusChat subscribers hear it, none twice.
    cs.emit_wire("typing:start", json!({"conversationId": "r"}), false)
        .await;
    let from_cs = |r: &Received| r.name == "TYPING" && r.payload["userId"] == "cs";
    let t = other
        .next(from_cs)
        .await
        .expect("from chat-service")
        .payload;
    assert_eq!(t["isTyping"], true);
    assert!(other.next_within(QUIET, from_cs).await.is_none(), "once");
}

fn status_of<'a>(user: &'a str) -> impl Fn(&Received) -> bool + 'a {
    move |r| r.name == "userStatusChanged" && r.payload["userId"] == user
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salala_user_status_changed_reaches_every_client() {
    let live = Live::start().await;
    let driver = Driver::start().await;
    // Shares no room with the newcomer.
    let mut salala = Client::connect(
        &live,
        &driver,
        "salala",
        "websocket",
        "sw",
        Some(&["elsewhere"]),
    )
    .await;
    let mut salala_roomless =
        Client::connect(&live, &driver, "salala", "polling", "sr", None).await;
    let mut cs = Client::connect(
        &live,
        &driver,
        "chat-service",
        "websocket",
        "cw",
        Some(&["elsewhere"]),
    )
    .await;

    let phone = Client::connect(
        &live,
        &driver,
        "chat-service",
        "websocket",
        "newbie",
        Some(&["lobby"]),
    )
    .await;
    for c in [&mut salala, &mut salala_roomless] {
        let s = c.next(status_of("newbie")).await.expect("online").payload;
        // The spec's payload: {userId, status}.
        assert_eq!(s, json!({"userId": "newbie", "status": "online"}));
    }
    assert!(
        cs.next_within(QUIET, |r| r.name == "user:online"
            && r.payload["userId"] == "newbie")
            .await
            .is_none(),
        "Chat Service announces presence to shared rooms only"
    );

    // A second device is no news ("no broadcast, still online elsewhere").
    let laptop = Client::connect(&live, &driver, "nexus", "websocket", "newbie", None).await;
    phone.close().await;
    assert!(
        salala
            .next_within(QUIET, status_of("newbie"))
            .await
            .is_none()
    );
    laptop.close().await;
    let s = salala
        .next(status_of("newbie"))
        .await
        .expect("offline")
        .payload;
    assert_eq!(s, json!({"userId": "newbie", "status": "offline"}));
    let s = salala_roomless
        .next(status_of("newbie"))
        .await
        .expect("offline")
        .payload;
    assert_eq!(s["status"], "offline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase10_presence_update_reaches_every_client_on_a_transition() {
    let live = Live::start().await;
    let driver = Driver::start().await;
    let mut p10 = Client::connect(&live, &driver, "phase10", "websocket", "pw", None).await;
    let newbie = Client::connect(&live, &driver, "salala", "websocket", "nb", Some(&["x"])).await;
    let about = |r: &Received| r.name == "presence:update" && r.payload["userId"] == "nb";
    let s = p10.next(about).await.expect("online, globally").payload;
    // The spec's PresenceSnapshot.
    assert_eq!(s["isOnline"], true, "{s}");
    assert!(s["lastSeen"].is_number(), "{s}");
    assert_eq!(s["sockets"].as_array().map(Vec::len), Some(1), "{s}");
    newbie.close().await;
    let s = p10.next(about).await.expect("offline, globally").payload;
    assert_eq!(s["isOnline"], false, "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase10_messages_new_carries_recipients_and_reaches_every_participants_room() {
    let live = Live::start().await;
    let driver = Driver::start().await;
    let mut sender = Client::connect(
        &live,
        &driver,
        "chat-service",
        "websocket",
        "s",
        Some(&["c9"]),
    )
    .await;
    // A participant (in the conversation on a Chat Service device) whose Phase 10
    // connection has not joined it: its personal room hears it.
    let _p_cs = Client::connect(
        &live,
        &driver,
        "chat-service",
        "websocket",
        "p",
        Some(&["c9"]),
    )
    .await;
    let mut p_p10 = Client::connect(&live, &driver, "phase10", "websocket", "p", None).await;
    // The sender's own Phase 10 device, not in the conversation either.
    let mut s_p10 = Client::connect(&live, &driver, "phase10", "polling", "s", None).await;
    // A Phase 10 client in the conversation room.
    let mut joined =
        Client::connect(&live, &driver, "phase10", "websocket", "j", Some(&["c9"])).await;
    // Not a participant: hears nothing.
    let mut stranger = Client::connect(&live, &driver, "phase10", "websocket", "x", None).await;
    // A Chat Service device of a participant outside the room: Chat Service's server
    // sends message:new to the conversation's room only.
    let mut p_cs_out =
        Client::connect(&live, &driver, "chat-service", "websocket", "p", None).await;

    sender
        .emit_wire(
            "message:send",
            json!({"conversationId": "c9", "content": "Ship it"}),
            true,
        )
        .await;
    let id = sender.ack("message:send").await.expect("ack")["messageId"].clone();
    for (who, c) in [
        ("a participant's user room", &mut p_p10),
        ("the sender's user room", &mut s_p10),
        ("the conversation room", &mut joined),
    ] {
        let m = c
            .wire("messages:new")
            .await
            .unwrap_or_else(|| panic!("{who}"));
        // The spec's MessagesNewPayload: {conversationId, message, senderId, recipients}.
        assert_eq!(m["conversationId"], "c9", "{who}");
        assert_eq!(m["senderId"], "s", "{who}");
        assert_eq!(m["message"]["id"], id, "{who}");
        assert_eq!(m["message"]["content"], "Ship it", "{who}");
        assert_eq!(m["recipients"], json!(["j", "p", "s"]), "{who}: {m}");
        assert!(
            c.next_within(QUIET, |r| r.name == "messages:new")
                .await
                .is_none(),
            "{who}: once"
        );
    }
    assert!(
        stranger
            .next_within(QUIET, |r| r.name == "messages:new")
            .await
            .is_none()
    );
    assert!(
        p_cs_out
            .next_within(QUIET, |r| r.name == "message:new")
            .await
            .is_none()
    );

    // Edits and deletes reach the same rooms with their recipients.
    sender
        .emit_wire(
            "message:edit",
            json!({"messageId": id, "content": "Ship it now"}),
            true,
        )
        .await;
    let u = p_p10.wire("messages:updated").await.expect("updated");
    assert_eq!(u["recipients"], json!(["j", "p", "s"]), "{u}");
    sender
        .emit_wire("message:delete", json!({"messageId": id}), true)
        .await;
    let d = p_p10.wire("messages:deleted").await.expect("deleted");
    assert_eq!(d["message"]["status"], "deleted", "{d}");
    assert_eq!(d["recipients"], json!(["j", "p", "s"]), "{d}");
}
