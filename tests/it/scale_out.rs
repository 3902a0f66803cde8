//! Several instances as one server, over the machine's real Redis: deliveries cross
//! instances by pub/sub, each instance subscribes only to what its connections need, and
//! the hub's state (presence, calls, de-duplication) lives in Redis under the specs' keys.

use crate::live::unique;

use crate::live::{Client, Driver, Live, QUIET};
use redis::AsyncCommands;
use serde_json::json;
use std::time::Duration;
use switchboard::config::BusKind;

async fn redis() -> redis::aio::MultiplexedConnection {
    redis::Client::open("redis://127.0.0.1:6379")
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis runs on 127.0.0.1:6379 (scripts/test starts it)")
}

async fn instance(name: &str) -> Live {
    let name = name.to_string();
    Live::start_with(move |c| {
        c.bus.kind = BusKind::Redis;
        c.instance = name;
    })
    .await
}

/// Waits until both instances are subscribed (the bus is ready).
async fn ready(live: &Live) {
    for _ in 0..200 {
        if live.ready().0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the redis bus did not become ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_behave_as_one_server() {
    let (a, b) = (instance(&unique("a")).await, instance(&unique("b")).await);
    ready(&a).await;
    ready(&b).await;
    let driver = Driver::start().await;
    let room = unique("room");
    let (ua, ub, uc) = (unique("ann"), unique("bob"), unique("cat"));
    let mut ann = Client::connect(&a, &driver, "clerk", "websocket", &ua, Some(&[&room])).await;
    let mut bob = Client::connect(&b, &driver, "nexus", "websocket", &ub, Some(&[&room])).await;
    // Each instance listens to its own connections' rooms only.
    let chans_a = a.hub().bus().channels();
    assert!(
        chans_a.contains(&format!("switchboard:{{room:{room}}}")),
        "{chans_a:?}"
    );
    assert!(
        chans_a.contains(&format!("switchboard:{{user:{ua}}}")),
        "{chans_a:?}"
    );
    assert!(
        !chans_a.contains(&format!("switchboard:{{user:{ub}}}")),
        "{chans_a:?}"
    );
    let mut r = redis().await;
    // An instance subscribes in the background after the client joined: wait for it.
    let mut numsub: Vec<(String, usize)> = Vec::new();
    for _ in 0..100 {
        numsub = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(format!("switchboard:{{room:{room}}}"))
            .arg(format!("switchboard:{{user:{ua}}}"))
            .query_async(&mut r)
            .await
            .expect("numsub");
        if numsub[0].1 == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(numsub[0].1, 2, "both instances have members of the room");
    assert_eq!(
        numsub[1].1, 1,
        "only ann's instance listens to her personal room"
    );

    // A message crosses instances, in each side's dialect.
    ann.emit_wire(
        "message:send",
        json!({"channelId": room, "content": "across", "tempId": "t1"}),
        true,
    )
    .await;
    let got = bob
        .wire("NEW_MESSAGE")
        .await
        .expect("bob gets ann's message on the other instance");
    assert_eq!(
        (got["contentText"].clone(), got["senderId"].clone()),
        (json!("across"), json!(ua))
    );
    let mine = ann.wire("message:created").await.expect("ann gets it too");
    assert_eq!(mine["message"]["id"], got["id"]);
    // A retry on the other instance (same user, same tempId) is not broadcast again;
    // Clerk's spec answers it `message:failed` (issue 24).
    let mut ann2 = Client::connect(&b, &driver, "clerk", "websocket", &ua, Some(&[&room])).await;
    ann2.emit_wire(
        "message:send",
        json!({"channelId": room, "content": "across", "tempId": "t1"}),
        true,
    )
    .await;
    let ack = ann2.ack("message:send").await.expect("ack");
    assert_eq!(
        (ack["success"].clone(), ack["code"].clone()),
        (json!(false), json!("duplicate"))
    );
    assert_eq!(
        ann2.wire("message:failed").await.expect("message:failed")["tempId"],
        "t1"
    );
    assert!(
        bob.next_within(QUIET, |r| r.name == "NEW_MESSAGE")
            .await
            .is_none(),
        "no second broadcast"
    );

    // Typing crosses too; presence is shared: online while either instance has ann.
    let mut dan = Client::connect(
        &a,
        &driver,
        "chat-service",
        "polling",
        &unique("dan"),
        Some(&[&room]),
    )
    .await;
    bob.emit_wire("TYPING", json!({"roomId": room, "isTyping": true}), false)
        .await;
    let typing = dan
        .wire("user:typing")
        .await
        .expect("dan, on a, sees bob (on b) typing");
    assert_eq!(
        (typing["userId"].clone(), typing["isActive"].clone()),
        (json!(ub), json!(true))
    );
    let online: bool = r.sismember("online_users", &ua).await.expect("sismember");
    assert!(online, "online_users holds ann");
    let sockets: Vec<String> = r
        .smembers(format!("user_sockets:{ua}"))
        .await
        .expect("smembers");
    assert_eq!(sockets.len(), 2, "one socket per instance");
    let ttl: i64 = r.pttl(format!("user_sockets:{ua}")).await.expect("pttl");
    assert!(
        ttl > 0 && ttl <= 60_000,
        "user_sockets has the presence TTL: {ttl}"
    );

    // Calls: the busy flag is shared. Bob (instance b) calls cat (instance a)...
    let mut cat = Client::connect(&a, &driver, "salala", "websocket", &uc, None).await;
    // Its instance listens to its personal room in the background once it registered
    // (after the client heard it connected): the offer waits for that.
    crate::support::listening(
        "redis://127.0.0.1:6379",
        &format!("switchboard:{{user:{uc}}}"),
        1,
    )
    .await;
    bob.emit_wire(
        "SIGNAL_SDP",
        json!({"targetId": uc, "type": "offer", "sdp": "v=0"}),
        false,
    )
    .await;
    assert_eq!(
        cat.wire("call:offer")
            .await
            .expect("cat gets the offer across instances")["callerId"],
        json!(ub)
    );
    let busy_ttl: i64 = r.ttl(format!("user:call:{ub}")).await.expect("ttl");
    assert!(
        busy_ttl > 0 && busy_ttl <= 300,
        "user:call:{{id}} with its 300 s TTL: {busy_ttl}"
    );
    // ...so ann's offer to bob, from the other instance, is rejected.
    let mut ann_sal = Client::connect(&a, &driver, "salala", "websocket", &ua, None).await;
    ann_sal
        .emit_wire("call:offer", json!({"targetId": ub, "sdp": "v=0"}), true)
        .await;
    assert_eq!(
        ann_sal.wire("call:end").await.expect("busy")["status"],
        "busy"
    );

    // When ann's last connection closes, she is offline everywhere.
    for c in [ann, ann2, ann_sal] {
        c.close().await;
    }
    let offline = bob
        .next(|r| {
            r.name == "PRESENCE"
                && r.payload["userId"] == json!(ua)
                && r.payload["status"] == "offline"
        })
        .await;
    assert!(offline.is_some(), "bob sees ann go offline");
    let online: bool = r.sismember("online_users", &ua).await.expect("sismember");
    assert!(!online);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everyone_deliveries_and_injected_events_reach_every_instance() {
    let (a, b) = (instance(&unique("a")).await, instance(&unique("b")).await);
    ready(&a).await;
    ready(&b).await;
    let driver = Driver::start().await;
    let (ux, uy) = (unique("x"), unique("y"));
    let mut x = Client::connect(&a, &driver, "phase10", "websocket", &ux, None).await;
    let mut y = Client::connect(&b, &driver, "phase10", "polling", &uy, None).await;
    let mut ev = switchboard::event::Event::new("system.disconnect", serde_json::Map::new());
    ev.body.insert("reason".into(), json!("maintenance"));
    ev.body.insert("notice".into(), json!("back soon"));
    ev.meta.target = Some(switchboard::event::Target::Broadcast);
    drop(a.hub().inject(ev).await.expect("injected"));
    for c in [&mut x, &mut y] {
        let p = c
            .wire("system:disconnect")
            .await
            .expect("everyone, on both instances");
        assert_eq!(p["reason"], "maintenance");
    }
    // To one user, wherever they are connected.
    let mut ev = switchboard::event::Event::new("notification.created", serde_json::Map::new());
    ev.body.insert("eventKey".into(), json!("task.assigned"));
    ev.body.insert("notification".into(), json!({"id": "n1"}));
    ev.meta.target = Some(switchboard::event::Target::User(uy.clone()));
    drop(a.hub().inject(ev).await.expect("injected"));
    assert_eq!(
        y.wire("notifications:new").await.expect("y, on b")["eventKey"],
        "task.assigned"
    );
    assert!(
        x.next_within(QUIET, |r| r.name == "notifications:new")
            .await
            .is_none()
    );
}

/// Each dialect's audience across instances: Salala's `userStatusChanged` reaches a
/// client of another instance that shares no room; Phase 10's `messages:new` names the
/// participants recorded by the other instance in `recipients` and reaches a
/// participant's personal room there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_dialects_audience_spans_instances() {
    let (a, b) = (instance(&unique("a")).await, instance(&unique("b")).await);
    ready(&a).await;
    ready(&b).await;
    let driver = Driver::start().await;
    let room = unique("room");
    let (us, up, uw) = (unique("s"), unique("p"), unique("w"));
    let mut watcher = Client::connect(&b, &driver, "salala", "websocket", &uw, None).await;
    let mut p10 = Client::connect(&b, &driver, "phase10", "websocket", &up, None).await;
    // Instance b listens to Phase 10's channel once it listens to the participant's
    // personal channel (it subscribes in that order).
    crate::support::listening(
        "redis://127.0.0.1:6379",
        &format!("switchboard:{{user:{up}}}"),
        1,
    )
    .await;
    let _p_cs = Client::connect(
        &b,
        &driver,
        "chat-service",
        "websocket",
        &up,
        Some(&[&room]),
    )
    .await;
    // Instance a counted b's Salala and Phase 10 listeners (every second).
    crate::support::until("a to count b's clients", crate::live::WAIT, || {
        a.hub().reaches_dialect("phase10") && a.hub().reaches_dialect("salala")
    })
    .await;
    let mut sender = Client::connect(
        &a,
        &driver,
        "chat-service",
        "websocket",
        &us,
        Some(&[&room]),
    )
    .await;

    let s = watcher
        .next(|r| r.name == "userStatusChanged" && r.payload["userId"] == json!(us))
        .await
        .expect("the sender's coming online, from the other instance")
        .payload;
    assert_eq!(s["status"], "online");

    // The participant's membership, recorded by instance b.
    let mut r = redis().await;
    for _ in 0..250 {
        let members: Vec<String> = r
            .hvals(format!("room_members:{room}"))
            .await
            .expect("hvals");
        if members.contains(&up) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sender
        .emit_wire(
            "message:send",
            json!({"conversationId": room, "content": "across"}),
            true,
        )
        .await;
    assert_eq!(
        sender.ack("message:send").await.expect("ack")["success"],
        true
    );
    let m = p10
        .wire("messages:new")
        .await
        .expect("the participant's user room");
    let mut want = vec![up.clone(), us.clone()];
    want.sort();
    assert_eq!(m["recipients"], json!(want), "{m}");
    assert!(
        p10.next_within(QUIET, |r| r.name == "messages:new")
            .await
            .is_none(),
        "once"
    );
}
