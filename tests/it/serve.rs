//! The `switchboard serve` binary: starts on a configuration file, serves clients, warns
//! about the development secret, reloads mappings on SIGHUP, and on SIGTERM tells its
//! clients in their dialects and exits cleanly within its deadline.

use crate::live::{Client, Driver, Live, SECRET, TokenAt, token};
use crate::process::Running;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_tells_clients_in_their_dialects_and_exits_within_the_deadline() {
    let mut running = Running::start(&[("AUTH_JWT_SECRET", SECRET)], &[]);
    let live = Live::at(running.addrs());
    let driver = Driver::start().await;
    let mut nexus = Client::connect(&live, &driver, "nexus", "websocket", "n", Some(&["r"])).await;
    let mut phase10 = Client::connect(&live, &driver, "phase10", "websocket", "p", None).await;
    let mut clerk = Client::connect(&live, &driver, "clerk", "polling", "c", None).await;
    // Traffic works through the binary.
    nexus
        .emit_wire(
            "SEND_MSG",
            serde_json::json!({"roomId": "r", "type": "TEXT", "contentText": "hi"}),
            false,
        )
        .await;
    assert_eq!(
        nexus.wire("NEW_MESSAGE").await.expect("echo")["contentText"],
        "hi"
    );

    let t0 = Instant::now();
    running.signal("-TERM");
    let notice = phase10
        .wire("system:disconnect")
        .await
        .expect("system:disconnect");
    assert_eq!(notice["reason"], "shutdown");
    phase10
        .next(|r| r.name == "__disconnect__")
        .await
        .expect("phase10 closed");
    clerk
        .next(|r| r.name == "__disconnect__")
        .await
        .expect("clerk closed");
    let closed = nexus
        .next(|r| r.name == "__close__")
        .await
        .expect("nexus closed");
    assert_eq!(closed.payload["code"], 1012, "{closed:?}");
    let status = loop {
        if let Some(s) = running.child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "exits within the deadline"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status:?}\n{}", running.log());
    running.wait_log("stopped", 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_development_secret_is_announced_loudly() {
    let running = Running::start(&[], &[]);
    running.wait_log("SHIPPED DEVELOPMENT SECRET", 1);
    let live = Live::at(running.addrs());
    let driver = Driver::start().await;
    // A token signed with the development secret works, one signed with another does not.
    let dev = switchboard::auth::Authenticator::hs256(
        switchboard::auth::DEVELOPMENT_SECRET,
        Duration::ZERO,
    )
    .mint("dev", None, None, Duration::from_secs(60))
    .expect("mint");
    let mut ok = Client::open(
        &live,
        &driver,
        "salala",
        "websocket",
        "dev",
        Some(&dev),
        TokenAt::Query,
    )
    .await;
    assert!(ok.next(|r| r.name == "__connect__").await.is_some());
    let mut bad = Client::open(
        &live,
        &driver,
        "salala",
        "websocket",
        "x",
        Some(&token("x", None, None)),
        TokenAt::Query,
    )
    .await;
    assert!(bad.wire("exception").await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_good_mappings_and_keeps_the_old_ones_on_bad() {
    let dir = std::env::temp_dir().join(format!("sb-hup-{}", crate::support::free_port()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
    for f in std::fs::read_dir(&src).expect("mappings") {
        let f = f.expect("entry").path();
        std::fs::copy(&f, dir.join(f.file_name().expect("name"))).expect("copy");
    }
    let running = Running::start_with(&[("AUTH_JWT_SECRET", SECRET)], Some(&dir), &[]);
    let live = Live::at(running.addrs());
    let driver = Driver::start().await;
    let mut c = Client::connect(
        &live,
        &driver,
        "chat-service",
        "websocket",
        "h",
        Some(&["r"]),
    )
    .await;

    // A good change: chat-service's typing:start becomes typing:begin.
    let file = dir.join("chat-service.toml");
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(
        &file,
        text.replace("wire = \"typing:start\"", "wire = \"typing:begin\""),
    )
    .expect("write");
    running.signal("-HUP");
    running.wait_log("mappings reloaded", 1);
    c.emit_wire(
        "typing:begin",
        serde_json::json!({"conversationId": "r"}),
        true,
    )
    .await;
    assert_eq!(
        c.ack("typing:begin").await.expect("ack")["success"],
        true,
        "the new mapping is live"
    );

    // A bad change is refused; the connection and the previous mappings stay.
    std::fs::write(&file, "this is not toml [").expect("write");
    running.signal("-HUP");
    running.wait_log("mappings NOT reloaded", 1);
    c.emit_wire(
        "typing:begin",
        serde_json::json!({"conversationId": "r"}),
        true,
    )
    .await;
    assert_eq!(
        c.ack("typing:begin").await.expect("ack")["success"],
        true,
        "still the good mapping"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_with_sigkill_leaves_no_user_online_and_no_call_busy() {
    use redis::AsyncCommands;
    let user = format!("killed-{}", std::process::id());
    let mut running = Running::start_with(
        &[
            ("AUTH_JWT_SECRET", SECRET),
            ("SWITCHBOARD_BUS", "redis"),
            ("PRESENCE_TTL_SECONDS", "1"),
        ],
        None,
        &[("call_busy_ttl = \"5m\"", "call_busy_ttl = \"2s\"")],
    );
    // A second instance, alive, that sweeps what the dead one leaves.
    let survivor = Live::start_with(|c| {
        c.bus.kind = switchboard::config::BusKind::Redis;
        c.hub.presence_ttl = Duration::from_secs(1);
        c.instance = "survivor".into();
    })
    .await;
    let live = Live::at(running.addrs());
    let driver = Driver::start().await;
    let k = Client::connect(&live, &driver, "nexus", "websocket", &user, None).await;
    let _callee = Client::connect(
        &survivor,
        &driver,
        "salala",
        "websocket",
        &format!("{user}-callee"),
        None,
    )
    .await;
    k.emit_wire(
        "SIGNAL_SDP",
        serde_json::json!({"targetId": format!("{user}-callee"), "type": "offer", "sdp": "v=0"}),
        false,
    )
    .await;
    let mut r = redis::Client::open("redis://127.0.0.1:6379")
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let t0 = Instant::now();
    loop {
        let busy: bool = r.exists(format!("user:call:{user}")).await.expect("exists");
        if busy {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the caller is marked busy"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let online: bool = r.sismember("online_users", &user).await.expect("sismember");
    assert!(online);

    running.signal("-KILL");
    let _ = running.child.wait();
    let t0 = Instant::now();
    loop {
        let online: bool = r.sismember("online_users", &user).await.expect("sismember");
        let sockets: bool = r
            .exists(format!("user_sockets:{user}"))
            .await
            .expect("exists");
        let busy: bool = r.exists(format!("user:call:{user}")).await.expect("exists");
        if !online && !sockets && !busy {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "online {online}, sockets {sockets}, busy {busy}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
