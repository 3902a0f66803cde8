//! A mixed fleet on one live server: a client of every dialect in one room, Socket.IO
//! clients being the official `socket.io-client` (over websocket, then over polling).
//! Every pair of dialects exchanges a message, a typing flag, a presence change and a
//! call offer, wherever both dialects can express it.

use crate::live::{CLIENT_DIALECTS, Client, Driver, Live, QUIET, can_receive, can_send};
use serde_json::json;
use std::collections::BTreeMap;

const ROOM: &str = "room-1";

/// One client per dialect, all in ROOM: nexus by its token's claim, the others by their
/// dialect's join event.
async fn fleet(
    live: &Live,
    driver: &std::sync::Arc<Driver>,
    transport: &str,
) -> BTreeMap<&'static str, Client> {
    let mut clients = BTreeMap::new();
    for d in CLIENT_DIALECTS {
        let user = format!("u-{d}");
        let rooms: Option<&[&str]> = if d == "nexus" { Some(&[ROOM]) } else { None };
        let mut c = Client::connect(live, driver, d, transport, &user, rooms).await;
        if d != "nexus" {
            assert!(
                c.emit("room.join", json!({"conversationId": ROOM}), true)
                    .await,
                "{d} joins"
            );
            let ack = c.ack_any().await;
            assert_eq!(
                ack.as_ref().map(|a| a["success"].clone()),
                Some(json!(true)),
                "{d} join ack: {ack:?}"
            );
        }
        clients.insert(d, c);
    }
    clients
}

async fn every_pair_exchanges_messages_typing_and_calls(transport: &str) {
    let live = Live::start().await;
    let driver = Driver::start().await;
    let mut clients = fleet(&live, &driver, transport).await;

    // Messages: every dialect that can send, to every dialect that can receive.
    let mut pairs = 0;
    for sender in CLIENT_DIALECTS {
        if !can_send(sender, "message.send") {
            continue;
        }
        let content = format!("hello from {sender} over {transport}");
        let c = clients.get_mut(sender).expect("sender");
        c.emit("message.send", json!({"conversationId": ROOM, "content": content, "clientRef": format!("ref-{sender}"), "kind": "TEXT"}), false).await;
        for receiver in CLIENT_DIALECTS {
            if !can_receive(receiver, "message.created") {
                continue;
            }
            let r = clients.get_mut(receiver).expect("receiver");
            let ev = r
                .canonical_where("message.created", crate::live::WAIT, |e| {
                    e.str_field("content") == Some(content.as_str())
                })
                .await
                .unwrap_or_else(|| panic!("{receiver} receives the message of {sender}"));
            assert_eq!(
                ev.str_field("senderId"),
                Some(format!("u-{sender}").as_str()),
                "{sender}→{receiver}"
            );
            assert!(
                ev.str_field("messageId").is_some_and(|id| id.len() == 36),
                "{ev:?}"
            );
            pairs += 1;
        }
        // The sender's own confirmation, where its dialect has one.
        if can_receive(sender, "message.delivered") {
            let c = clients.get_mut(sender).expect("sender");
            let ev = c.canonical("message.delivered").await.expect("delivered");
            assert_eq!(
                ev.str_field("clientRef"),
                Some(format!("ref-{sender}").as_str())
            );
        }
    }
    // nexus, clerk, salala, chat-service send; all five receive.
    assert_eq!(pairs, 4 * 5, "message pairs");

    // Typing: to every other member; back to the typist only where its system's server
    // does that (NexusChat: "TYPING to all room subscribers").
    for sender in CLIENT_DIALECTS {
        if !can_send(sender, "typing.start") {
            continue;
        }
        let c = clients.get_mut(sender).expect("sender");
        c.emit("typing.start", json!({"conversationId": ROOM}), false)
            .await;
        for receiver in CLIENT_DIALECTS {
            if receiver == sender || !can_receive(receiver, "typing.started") {
                continue;
            }
            let r = clients.get_mut(receiver).expect("receiver");
            let who = format!("u-{sender}");
            r.canonical_where("typing.started", crate::live::WAIT, |e| {
                e.str_field("userId") == Some(who.as_str())
            })
            .await
            .unwrap_or_else(|| panic!("{receiver} sees {sender} typing"));
        }
        let c = clients.get_mut(sender).expect("sender");
        let own = c.canonical_where("typing.started", QUIET, |_| true).await;
        assert_eq!(
            own.is_some(),
            sender == "nexus",
            "{sender} gets its own typing flag back only in NexusChat"
        );
    }

    // Calls: salala and nexus can call; every other user who can receive an offer gets
    // one. The caller ends the call (where it can) so the next caller finds no one busy.
    for caller in ["salala", "nexus"] {
        for callee in CLIENT_DIALECTS {
            if callee == caller {
                continue;
            }
            let offer_name = if can_receive(callee, "call.offer") {
                "call.offer"
            } else {
                "call.incoming"
            };
            if !can_receive(callee, offer_name) {
                continue;
            }
            let c = clients.get_mut(caller).expect("caller");
            let target = format!("u-{callee}");
            assert!(
                c.emit(
                    "call.offer",
                    json!({"targetId": target, "sdp": "v=0 offer", "callType": "video"}),
                    false
                )
                .await
            );
            let r = clients.get_mut(callee).expect("callee");
            let ev = r
                .canonical("call.offer")
                .await
                .unwrap_or_else(|| panic!("{callee} gets {caller}'s offer"));
            assert_eq!(ev.str_field("sdp"), Some("v=0 offer"));
            if can_send(caller, "call.end") {
                let c = clients.get_mut(caller).expect("caller");
                c.emit("call.end", json!({"targetId": target}), true).await;
                let ack = c
                    .ack_any()
                    .await
                    .expect("the end of the call is acknowledged");
                assert_eq!(ack["success"], true);
                if can_receive(callee, "call.end") {
                    let r = clients.get_mut(callee).expect("callee");
                    r.canonical("call.end")
                        .await
                        .unwrap_or_else(|| panic!("{callee} gets the end of the call"));
                }
            }
        }
    }

    for (_, c) in clients {
        c.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pair_exchanges_over_websocket() {
    every_pair_exchanges_messages_typing_and_calls("websocket").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pair_exchanges_over_polling() {
    every_pair_exchanges_messages_typing_and_calls("polling").await;
}

/// Presence: a user's first connection is announced online to everyone sharing a room
/// with it, in their dialects; its last connection's close, offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_changes_reach_every_dialect_over_websocket() {
    presence_changes_reach_every_dialect("websocket").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_changes_reach_every_dialect_over_polling() {
    presence_changes_reach_every_dialect("polling").await;
}

async fn presence_changes_reach_every_dialect(transport: &str) {
    let live = Live::start().await;
    let driver = Driver::start().await;
    let mut watchers = BTreeMap::new();
    for d in CLIENT_DIALECTS {
        let c = Client::connect(
            &live,
            &driver,
            d,
            "websocket",
            &format!("w-{d}"),
            Some(&[ROOM]),
        )
        .await;
        watchers.insert(d, c);
    }
    for subject in CLIENT_DIALECTS {
        let user = format!("p-{subject}");
        let c = Client::connect(&live, &driver, subject, transport, &user, Some(&[ROOM])).await;
        for w in CLIENT_DIALECTS {
            if !can_receive(w, "presence.changed") {
                continue;
            }
            let watcher = watchers.get_mut(w).expect("watcher");
            let ev = watcher
                .canonical_where("presence.changed", crate::live::WAIT, |e| {
                    e.str_field("userId") == Some(user.as_str())
                })
                .await
                .unwrap_or_else(|| panic!("{w} sees {subject}'s user come online"));
            assert_eq!(ev.str_field("status"), Some("online"), "{w} ← {subject}");
        }
        c.close().await;
        for w in CLIENT_DIALECTS {
            if !can_receive(w, "presence.changed") {
                continue;
            }
            let watcher = watchers.get_mut(w).expect("watcher");
            let ev = watcher
                .canonical_where("presence.changed", crate::live::WAIT, |e| {
                    e.str_field("userId") == Some(user.as_str())
                        && e.str_field("status") != Some("online")
                })
                .await
                .unwrap_or_else(|| panic!("{w} sees {subject}'s user go offline"));
            assert_eq!(ev.str_field("status"), Some("offline"));
        }
    }
}
