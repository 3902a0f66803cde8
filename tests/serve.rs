//! The `switchboard serve` binary: starts on a configuration file, serves clients, warns
//! about the development secret, reloads mappings on SIGHUP, and on SIGTERM tells its
//! clients in their dialects and exits cleanly within its deadline.

mod live;

use live::{Client, Driver, Live, SECRET, TokenAt, token};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

struct Running {
    child: Child,
    log: Arc<Mutex<String>>,
    ports: [u16; 3],
}

impl Running {
    fn start(env: &[(&str, &str)], mappings: Option<&std::path::Path>) -> Running {
        Running::start_edited(env, mappings, &[])
    }

    fn start_edited(
        env: &[(&str, &str)],
        mappings: Option<&std::path::Path>,
        edits: &[(&str, &str)],
    ) -> Running {
        let ports = [free_port(), free_port(), free_port()];
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        if let Some(m) = mappings {
            cmd.arg("--mappings").arg(m);
        }
        cmd.arg("serve")
            .env_remove("AUTH_JWT_SECRET")
            .env_remove("JWT_SECRET")
            .env("SWITCHBOARD_BIND", "127.0.0.1")
            .env("PORT", ports[0].to_string())
            .env("WS_PORT", ports[1].to_string())
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .stdout(Stdio::null());
        // Clerk's port has no variable: give it a config file.
        let dir = std::env::temp_dir().join(format!("sb-serve-{}", ports[0]));
        std::fs::create_dir_all(&dir).expect("tmp");
        // Its own webhook store, unless the test shares one between two runs.
        cmd.env("SWITCHBOARD_WEBHOOK_STORE", dir.join("webhooks"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut cfg = switchboard::config::DEFAULT_TOML
            .replace("port = 3002", &format!("port = {}", ports[2]));
        for (from, to) in edits {
            cfg = cfg.replace(from, to);
        }
        let file = dir.join("switchboard.toml");
        std::fs::write(&file, cfg).expect("write config");
        cmd.arg("--config").arg(&file);
        let mut child = cmd.spawn().expect("switchboard runs");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("stderr");
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut g = l.lock().expect("log");
                g.push_str(&line);
                g.push('\n');
            }
        });
        let r = Running { child, log, ports };
        r.wait_log("listening", 3);
        r
    }

    fn wait_log(&self, needle: &str, times: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.log.lock().expect("log").matches(needle).count() >= times {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "no `{needle}` in the log:\n{}",
            self.log.lock().expect("log")
        );
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
    }

    /// A `Live`-like view of where the dialects are, for the test clients.
    fn live_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.ports
            .iter()
            .map(|p| std::net::SocketAddr::from(([127, 0, 0, 1], *p)))
            .collect()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_tells_clients_in_their_dialects_and_exits_within_the_deadline() {
    let mut running = Running::start(&[("AUTH_JWT_SECRET", SECRET)], None);
    let live = Live::at(running.live_addrs());
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
    assert!(
        status.success(),
        "{status:?}\n{}",
        running.log.lock().expect("log")
    );
    running.wait_log("stopped", 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_development_secret_is_announced_loudly() {
    let running = Running::start(&[], None);
    running.wait_log("SHIPPED DEVELOPMENT SECRET", 1);
    let live = Live::at(running.live_addrs());
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
    let dir = std::env::temp_dir().join(format!("sb-hup-{}", free_port()));
    std::fs::create_dir_all(&dir).expect("tmp");
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
    for f in std::fs::read_dir(&src).expect("mappings") {
        let f = f.expect("entry").path();
        std::fs::copy(&f, dir.join(f.file_name().expect("name"))).expect("copy");
    }
    let running = Running::start(&[("AUTH_JWT_SECRET", SECRET)], Some(&dir));
    let live = Live::at(running.live_addrs());
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
    let mut running = Running::start_edited(
        &[
            ("AUTH_JWT_SECRET", SECRET),
            ("SWITCHBOARD_BUS", "redis"),
            ("PRESENCE_TTL_SECONDS", "1"),
        ],
        None,
        &[("call_busy_ttl = \"300s\"", "call_busy_ttl = \"2s\"")],
    );
    // A second instance, alive, that sweeps what the dead one leaves.
    let survivor = Live::start_with(|c| {
        c.bus.kind = switchboard::config::BusKind::Redis;
        c.hub.presence_ttl = Duration::from_secs(1);
        c.instance = "survivor".into();
    })
    .await;
    let live = Live::at(running.live_addrs());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_survive_a_sigkill_with_rabbitmq() {
    let status = Arc::new(Mutex::new(503u16));
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let addr = live::receiver(status.clone(), got.clone()).await;
    let name = format!("kill{}", std::process::id());
    let hook = format!(
        "\n[[webhook]]\nname = \"{name}\"\nurl = \"http://{addr}/hooks\"\nsecrets = [\"s\"]\n"
    );
    let edits = [
        (
            "retry = [\"5s\", \"5m\", \"30m\", \"2h\", \"5h\", \"10h\", \"10h\"]",
            "retry = [\"200ms\", \"200ms\", \"200ms\", \"200ms\", \"200ms\", \"200ms\", \"200ms\", \"200ms\", \"200ms\", \"200ms\"]",
        ),
        ("allow = []", "allow = [\"127.0.0.1\"]"),
        ("[internal_api]", &format!("{hook}\n[internal_api]")),
    ];
    let env = [
        ("AUTH_JWT_SECRET", SECRET),
        ("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f"),
        ("INTERNAL_API_SECRET", "in"),
    ];
    let mut first = Running::start_edited(&env, None, &edits);
    let api = first.live_addrs()[0];
    let mut ids = Vec::new();
    for i in 0..20 {
        let ev = serde_json::json!({"name": "conversation.created", "body": {"conversationId": format!("k{i}")}, "meta": {"target": "broadcast"}});
        let (code, body) = live::post(api, "/api/events", "in", &ev.to_string()).await;
        assert_eq!(code, 202, "{body}");
        ids.push(i);
    }
    // Give the first instance time to queue them in RabbitMQ and fail a few attempts.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(got.lock().expect("got").is_empty());
    first.signal("-KILL");
    let _ = first.child.wait();
    // The receiver recovers; a new instance takes over the durable queues.
    *status.lock().expect("status") = 200;
    let second = Running::start_edited(&env, None, &edits);
    let t0 = Instant::now();
    loop {
        let distinct: std::collections::HashSet<String> =
            got.lock().expect("got").iter().cloned().collect();
        if distinct.len() >= 20 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "delivered after the SIGKILL: {}",
            distinct.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(second);
    // Clean up this run's queues.
    let conn = lapin::Connection::connect(
        "amqp://guest:guest@127.0.0.1:5672/%2f",
        lapin::ConnectionProperties::default(),
    )
    .await
    .expect("rabbitmq");
    let ch = conn.create_channel().await.expect("channel");
    for q in [
        format!("switchboard.webhooks.{name}"),
        format!("switchboard.webhooks.{name}.retry"),
    ] {
        let _ = ch.queue_delete(q.as_str().into(), Default::default()).await;
    }
}
