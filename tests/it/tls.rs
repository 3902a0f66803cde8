//! Encryption in transit (issue 27), with certificates made in each test (rcgen): TLS
//! listeners serving the official socket.io-client (websocket and polling) and raw
//! WebSocket clients over `wss://`; certificates reloaded while clients stay connected
//! (and garbage refused at reload); handshakes that stall or are not TLS, bounded and
//! counted; mutual TLS on a listener; a fronted backend behind `wss://` and `https://`
//! with its own CA (and refused with the wrong one); Redis over `rediss://` (a
//! `redis-server --tls-port` of the test's own, mutual TLS); RabbitMQ over `amqps://`
//! (through a TLS endpoint the test starts in front of the machine's broker); a webhook
//! receiver that requires a client certificate.

use crate::backends::nexus::Nexus;
use crate::backends::{BACKEND_SECRET, front, token_with};
use crate::certs::{Ca, Dir, TlsProxy, client_config, connect, presented};
use crate::live::{Client, Driver, Live, WAIT, route_of, test_config, token, unique};
use crate::support::{Redis, until};
use serde_json::{Value, json};
use std::time::Duration;
use switchboard::config::{ClientTls, Config, ListenerTls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A listener TLS table for `dir`'s `server.pem` and `server.key`.
fn listener_tls(dir: &Dir, client_ca: Option<String>) -> ListenerTls {
    ListenerTls {
        cert: dir.0.join("server.pem").to_string_lossy().into_owned(),
        key: dir.0.join("server.key").to_string_lossy().into_owned(),
        client_ca,
        handshake_timeout: Duration::from_millis(500),
        reload_check: Duration::from_millis(100),
    }
}

/// Writes `ca`'s server certificate into `dir`.
fn write_server(dir: &Dir, ca: &Ca) {
    let leaf = ca.server();
    dir.write("server.key", &leaf.key);
    dir.write("server.pem", &leaf.cert);
}

/// Every listener serves TLS with `tls`.
fn all_tls(c: &mut Config, tls: &ListenerTls) {
    for l in &mut c.listeners {
        l.tls = Some(tls.clone());
    }
}

/// The port `dialect` is served on.
fn port_of(live: &Live, dialect: &str) -> u16 {
    live.addrs()[route_of(&test_config(), dialect).0].port()
}

/// A NexusChat client over `wss://localhost:<port>/ws` trusting `config`'s roots.
async fn nexus_over_tls(
    port: u16,
    config: std::sync::Arc<rustls::ClientConfig>,
    user: &str,
    rooms: &[&str],
) -> std::io::Result<Client> {
    let tls = connect(port, config).await?;
    let t = token(user, None, Some(rooms));
    let req = format!("wss://localhost:{port}/ws?token={t}")
        .into_client_request()
        .expect("request");
    let (ws, _) = tokio_tungstenite::client_async(req, tls)
        .await
        .map_err(std::io::Error::other)?;
    Ok(Client::over("nexus", user, ws))
}

/// Sends `req` to `port` over plain TCP; the whole answer.
async fn plain(port: u16, req: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    s.write_all(req).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// The value of the metric line starting with `prefix`, or 0.
fn metric(live: &Live, prefix: &str) -> f64 {
    live.hub()
        .metrics()
        .render()
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

async fn joins(c: &Client, room: &str) {
    c.emit("room.join", json!({"conversationId": room}), false)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_client_and_raw_websockets_speak_over_tls() {
    let ca = Ca::new("listener-ca");
    let dir = Dir::new("listener");
    write_server(&dir, &ca);
    let ca_file = dir.write("ca.pem", &ca.pem);
    let tls = listener_tls(&dir, None);
    let live = Live::start_with(|c| all_tls(c, &tls)).await;
    let driver = Driver::start_with_env(&[("NODE_EXTRA_CA_CERTS", &ca_file)]).await;
    let room = unique("tls-room");
    let (sio_port, nexus_port) = (port_of(&live, "salala"), port_of(&live, "nexus"));
    let (_, path, ns, _) = live.url("salala");
    let base = format!("https://localhost:{sio_port}");
    let mut sio = Vec::new();
    for transport in ["websocket", "polling"] {
        let user = format!("tls-{transport}");
        let t = token(&user, None, Some(&[room.as_str()]));
        let mut c = Client::socketio_at(
            &driver,
            "salala",
            &base,
            &path,
            &ns,
            transport,
            &user,
            json!({"token": format!("Bearer {t}")}),
            Value::Null,
        )
        .await;
        let r = c.next(|r| r.name.starts_with("__connect")).await;
        assert_eq!(
            r.map(|r| (r.name, r.payload)).map(|r| r.0),
            Some("__connect__".to_string()),
            "socket.io-client over {transport} connects to https://"
        );
        joins(&c, &room).await;
        sio.push(c);
    }
    let mut raw = nexus_over_tls(nexus_port, client_config(&ca, None), "tls-raw", &[&room])
        .await
        .expect("a raw WebSocket over wss:// connects");
    assert!(raw.next(|r| r.name == "__connect__").await.is_some());
    // Joined everywhere before anything is sent.
    for c in &mut sio {
        c.canonical_where("presence.changed", WAIT, |e| {
            e.str_field("userId") == Some("tls-raw")
        })
        .await;
    }
    raw.send_message(&room, "over wss", false).await;
    for c in &mut sio {
        let got = c
            .canonical_where("message.created", WAIT, |e| {
                e.str_field("content") == Some("over wss")
            })
            .await;
        assert!(got.is_some(), "{} hears the raw client", c.user);
    }
    sio[1]
        .send_message(&room, "over https polling", false)
        .await;
    assert!(
        raw.canonical_where("message.created", WAIT, |e| {
            e.str_field("content") == Some("over https polling")
        })
        .await
        .is_some(),
        "the raw client hears the polling client"
    );
    // The API over https, and a plain request on the TLS port told what to use.
    let answer = plain(sio_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("use https:// or wss://"), "{answer}");
    assert!(
        metric(
            &live,
            &format!(
                "switchboard_tls_handshakes_total{{port=\"{sio_port}\",outcome=\"plaintext\"}}"
            )
        ) >= 1.0
    );
    assert!(
        metric(
            &live,
            &format!("switchboard_tls_handshakes_total{{port=\"{sio_port}\",outcome=\"ok\"}}")
        ) >= 2.0
    );
    for c in sio {
        c.close().await;
    }
    raw.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_reloads_while_clients_stay_connected() {
    let (old_ca, new_ca) = (Ca::new("old-ca"), Ca::new("new-ca"));
    let dir = Dir::new("reload");
    write_server(&dir, &old_ca);
    let tls = listener_tls(&dir, None);
    let live = Live::start_with(|c| all_tls(c, &tls)).await;
    let port = port_of(&live, "nexus");
    let room = unique("reload-room");
    let mut stays = nexus_over_tls(port, client_config(&old_ca, None), "stays", &[&room])
        .await
        .expect("connects with the old certificate");
    assert!(stays.next(|r| r.name == "__connect__").await.is_some());
    let before = presented(port, &old_ca).await.expect("old certificate");

    // New files: picked up by the watch, no signal needed.
    write_server(&dir, &new_ca);
    let mut after = Vec::new();
    for _ in 0..100 {
        if let Ok(c) = presented(port, &new_ca).await {
            after = c;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !after.is_empty() && after != before,
        "new connections get the new certificate"
    );
    assert!(
        connect(port, client_config(&old_ca, None)).await.is_err(),
        "the old CA no longer verifies the listener"
    );
    // The connection opened before the reload still works, both ways.
    let mut fresh = nexus_over_tls(port, client_config(&new_ca, None), "fresh", &[&room])
        .await
        .expect("connects with the new certificate");
    stays
        .canonical_where("presence.changed", WAIT, |e| {
            e.str_field("userId") == Some("fresh")
        })
        .await;
    fresh.send_message(&room, "after the reload", false).await;
    assert!(
        stays
            .canonical_where("message.created", WAIT, |e| {
                e.str_field("content") == Some("after the reload")
            })
            .await
            .is_some(),
        "the client connected before the reload still receives"
    );
    stays.send_message(&room, "still here", false).await;
    assert!(
        fresh
            .canonical_where("message.created", WAIT, |e| e.str_field("content")
                == Some("still here"))
            .await
            .is_some(),
        "and still sends"
    );

    // Garbage at reload: logged and counted, the certificate in use stays.
    let failed = format!("switchboard_tls_reloads_total{{port=\"{port}\",outcome=\"failed\"}}");
    dir.write(
        "server.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n",
    );
    until("the failed reload", Duration::from_secs(5), || {
        metric(&live, &failed) >= 1.0
    })
    .await;
    assert_eq!(
        presented(port, &new_ca).await.expect("still served"),
        after,
        "the previous certificate stays in use"
    );
    // SIGHUP does the same (the server's reload), naming the file.
    let errors = live.server().reload_tls();
    assert_eq!(errors.len(), live.addrs().len(), "{errors:?}");
    assert!(errors[0].contains("server.pem"), "{errors:?}");
    stays.close().await;
    fresh.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_that_stall_or_are_not_tls_are_bounded_and_counted() {
    let ca = Ca::new("faults-ca");
    let dir = Dir::new("faults");
    write_server(&dir, &ca);
    let tls = listener_tls(&dir, None);
    // The first listener speaks TLS, the others stay plain.
    let live = Live::start_with(|c| c.listeners[0].tls = Some(tls.clone())).await;
    let port = live.addrs()[0].port();
    let plain_port = live.addrs()[1].port();

    // A client that connects and says nothing is closed at the handshake timeout.
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let t0 = std::time::Instant::now();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .expect("closed within the timeout, not left open");
    assert!(matches!(n, Ok(0) | Err(_)), "closed: {n:?}");
    assert!(t0.elapsed() < Duration::from_secs(3));
    // A handshake record with garbage in it fails.
    let mut g = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    g.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5])
        .await
        .expect("write");
    let _ = tokio::time::timeout(Duration::from_secs(5), g.read(&mut buf)).await;
    // A TLS client on the plain port: refused, and the plain port goes on serving.
    assert!(
        connect(plain_port, client_config(&ca, None)).await.is_err(),
        "no TLS session on a plain port"
    );
    let answer = plain(
        plain_port,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 404") || answer.starts_with("HTTP/1.1 200"),
        "{answer}"
    );
    until("the counts", Duration::from_secs(5), || {
        metric(
            &live,
            &format!("switchboard_tls_handshakes_total{{port=\"{port}\",outcome=\"timeout\"}}"),
        ) >= 1.0
            && metric(
                &live,
                &format!("switchboard_tls_handshakes_total{{port=\"{port}\",outcome=\"failed\"}}"),
            ) >= 1.0
    })
    .await;
    // And the TLS port still serves.
    let mut c = nexus_over_tls(port, client_config(&ca, None), "after-faults", &["x"])
        .await
        .expect("a good client still connects");
    assert!(c.next(|r| r.name == "__connect__").await.is_some());
    c.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_with_a_client_ca_wants_a_certificate_it_signed() {
    let (ca, clients, stranger) = (
        Ca::new("server-ca"),
        Ca::new("client-ca"),
        Ca::new("stranger"),
    );
    let dir = Dir::new("mtls");
    write_server(&dir, &ca);
    let client_ca = dir.write("clients.pem", &clients.pem);
    let tls = listener_tls(&dir, Some(client_ca));
    let live = Live::start_with(|c| all_tls(c, &tls)).await;
    let port = port_of(&live, "nexus");
    let internal = clients.client("internal-service");
    let mut ok = nexus_over_tls(port, client_config(&ca, Some(&internal)), "mtls", &["m"])
        .await
        .expect("a client certificate the CA signed is accepted");
    assert!(ok.next(|r| r.name == "__connect__").await.is_some());
    for who in [None, Some(stranger.client("stranger"))] {
        assert!(
            nexus_over_tls(port, client_config(&ca, who.as_ref()), "x", &["m"])
                .await
                .is_err(),
            "refused without a certificate the CA signed"
        );
    }
    ok.close().await;
}

/// A client of `dialect` on a fronted route, with a token the test backends accept.
async fn fronted_client(
    live: &Live,
    d: &std::sync::Arc<Driver>,
    dialect: &str,
    user: &str,
) -> Client {
    let t = token_with(BACKEND_SECRET, user, &["r1"]);
    Client::open(
        live,
        d,
        dialect,
        "websocket",
        user,
        Some(&t),
        crate::live::TokenAt::Primary,
    )
    .await
}

/// A NexusChat backend behind TLS endpoints of its own CA: (backend, wss proxy, https
/// proxy).
async fn backend_behind_tls(ca: &Ca) -> (Nexus, TlsProxy, TlsProxy) {
    let nexus = Nexus::start(BACKEND_SECRET, 0, 0).await;
    let leaf = ca.server();
    let ws = TlsProxy::start(nexus.addr, &leaf, None).await;
    let rest = TlsProxy::start(nexus.rest, &leaf, None).await;
    (nexus, ws, rest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fronted_backend_behind_wss_and_https_with_its_own_ca() {
    let backend_ca = Ca::new("backend-ca");
    let dir = Dir::new("backend");
    let ca_file = dir.write("backend-ca.pem", &backend_ca.pem);
    let (nexus, ws, rest) = backend_behind_tls(&backend_ca).await;
    let up = format!(
        "name = \"secure\"\nurl = \"wss://localhost:{}/ws\"\ndialect = \"nexus\"\ntransport = \"websocket\"\ntoken = \"query\"\nhttp = [\"/api/rooms/\"]\nhttp_url = \"https://localhost:{}\"\ntls = {{ ca = \"{ca_file}\" }}\n",
        ws.port, rest.port
    );
    let live = Live::start_with(|c| front(c, &up)).await;
    let d = Driver::start().await;
    let t = token_with(BACKEND_SECRET, "sec", &["r1"]);
    let mut c = fronted_client(&live, &d, "clerk", "sec").await;
    assert!(
        c.canonical("session.ready").await.is_some(),
        "the session over wss:// opens"
    );
    c.send_message("r1", "through tls", true).await;
    assert_eq!(
        c.ack_any().await.expect("ack")["success"],
        true,
        "the backend answered over wss://"
    );
    // The REST API over https://.
    let answer = plain(
        live.addrs()[0].port(),
        format!("GET /api/rooms/r1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "passed through to https://: {answer}"
    );
    c.close().await;

    // A certificate of another CA, of another name, or expired: refused, the client
    // told `unavailable`, the REST passthrough a 502.
    let other = Ca::new("not-the-backends");
    let wrong_ca = dir.write("wrong-ca.pem", &other.pem);
    let misnamed = TlsProxy::start(
        nexus.addr,
        &backend_ca.server_expiring(&["otherhost"], 30),
        None,
    )
    .await;
    let expired = TlsProxy::start(
        nexus.addr,
        &backend_ca.server_expiring(&["localhost"], -2),
        None,
    )
    .await;
    for (why, ca, port) in [
        ("another CA", wrong_ca.as_str(), ws.port),
        ("another name", ca_file.as_str(), misnamed.port),
        ("expired", ca_file.as_str(), expired.port),
    ] {
        let up = format!(
            "name = \"refused\"\nurl = \"wss://localhost:{port}/ws\"\ndialect = \"nexus\"\ntransport = \"websocket\"\ntoken = \"query\"\nhttp = [\"/api/rooms/\"]\nhttp_url = \"https://localhost:{port}\"\ntls = {{ ca = \"{ca}\" }}\n"
        );
        let live = Live::start_with(|c| front(c, &up)).await;
        let mut c = fronted_client(&live, &d, "clerk", "sec").await;
        let err = c
            .canonical_where("session.error", WAIT, |e| {
                e.body.get("code").is_some_and(|c| c == "unavailable")
                    || e.body.get("reason").is_some_and(|r| r == "unavailable")
            })
            .await;
        assert!(
            err.is_some(),
            "a backend certificate of {why} is refused, the client told unavailable"
        );
        let answer = plain(
            live.addrs()[0].port(),
            format!("GET /api/rooms/r1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 502"), "{why}: {answer}");
    }
}

/// A `redis-server` of the test's own serving TLS only: clients must present a
/// certificate of `ca`.
async fn tls_redis(dir: &Dir, ca: &Ca) -> Redis {
    let leaf = ca.server();
    Redis::start_with_tls(vec![
        "--tls-cert-file".into(),
        dir.write("redis.pem", &leaf.cert),
        "--tls-key-file".into(),
        dir.write("redis.key", &leaf.key),
        "--tls-ca-cert-file".into(),
        dir.write("redis-ca.pem", &ca.pem),
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_bus_over_rediss_with_a_client_certificate() {
    let ca = Ca::new("redis-ca");
    let dir = Dir::new("redis");
    let redis = tls_redis(&dir, &ca).await;
    let me = ca.client("switchboard");
    let tls = ClientTls {
        ca: Some(dir.write("ca.pem", &ca.pem)),
        cert: Some(dir.write("me.pem", &me.cert)),
        key: Some(dir.write("me.key", &me.key)),
        insecure_skip_verify: false,
    };
    let url = format!("rediss://localhost:{}", redis.port);
    let live = Live::start_with(|c| {
        c.bus.kind = switchboard::config::BusKind::Redis;
        c.redis.url = url.clone();
        c.redis.tls = tls.clone();
    })
    .await;
    until("the bus over TLS", Duration::from_secs(10), || {
        live.ready().1
    })
    .await;
    let d = Driver::start().await;
    let room = unique("rediss");
    let mut a = Client::connect(
        &live,
        &d,
        "nexus",
        "websocket",
        "ra",
        Some(&[room.as_str()]),
    )
    .await;
    let mut b = Client::connect(
        &live,
        &d,
        "nexus",
        "websocket",
        "rb",
        Some(&[room.as_str()]),
    )
    .await;
    a.canonical_where("presence.changed", WAIT, |e| {
        e.str_field("userId") == Some("rb")
    })
    .await;
    // Deliveries cross the bus: through Redis and back, over TLS.
    for i in 0..20 {
        a.send_message(&room, &format!("rediss {i}"), false).await;
        if b.canonical_where("message.created", Duration::from_millis(500), |e| {
            e.str_field("content") == Some(&format!("rediss {i}"))
        })
        .await
        .is_some()
        {
            a.close().await;
            b.close().await;
            return;
        }
    }
    panic!("no message crossed the Redis bus over TLS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_over_amqps_with_a_client_certificate() {
    let _turn = crate::RABBIT.lock().await;
    let (ca, clients) = (Ca::new("amqp-ca"), Ca::new("amqp-clients"));
    let dir = Dir::new("amqp");
    let proxy = TlsProxy::start(
        "127.0.0.1:5672".parse().expect("addr"),
        &ca.server(),
        Some(&clients),
    )
    .await;
    let me = clients.client("switchboard");
    let tls = ClientTls {
        ca: Some(dir.write("ca.pem", &ca.pem)),
        cert: Some(dir.write("me.pem", &me.cert)),
        key: Some(dir.write("me.key", &me.key)),
        insecure_skip_verify: false,
    };
    let exchange = unique("sb.test.tls");
    let tapq = unique("sb.test.tls.tap");
    let conn =
        lapin::Connection::connect(crate::brokers::AMQP, lapin::ConnectionProperties::default())
            .await
            .expect("RabbitMQ runs on 127.0.0.1:5672 (scripts/test starts it)");
    let url = format!("amqps://guest:guest@localhost:{}/%2f", proxy.port);
    let (e, q) = (exchange.clone(), unique("sb.test.tls.in"));
    let live = Live::start_with(move |c| {
        c.amqp.url = url;
        c.amqp.exchange = e;
        c.amqp.inbound_queue = q;
        c.amqp.tls = tls;
    })
    .await;
    until("rabbitmq over amqps", Duration::from_secs(20), || {
        live.ready().2 == Some(true)
    })
    .await;
    let mut tap = crate::brokers::tap(&conn, &exchange, &tapq).await;
    let d = Driver::start().await;
    let room = unique("amqps");
    let c = Client::connect(
        &live,
        &d,
        "nexus",
        "websocket",
        "amqps-user",
        Some(&[room.as_str()]),
    )
    .await;
    c.send_message(&room, "over amqps", false).await;
    let mut found = false;
    while let Some((key, body)) = crate::brokers::next_json(&mut tap, Duration::from_secs(10)).await
    {
        if key == "message.created" && body.to_string().contains("over amqps") {
            found = true;
            break;
        }
    }
    assert!(found, "the event reached the exchange through amqps://");
    c.close().await;
    let ch = conn.create_channel().await.expect("channel");
    let _ = ch
        .queue_delete(
            tapq.as_str().into(),
            lapin::options::QueueDeleteOptions::default(),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_receiver_that_requires_a_client_certificate() {
    let (ca, clients) = (Ca::new("master-ca"), Ca::new("master-clients"));
    let dir = Dir::new("webhook");
    let rx = crate::hooks::Receiver::start(Duration::ZERO).await;
    let proxy = TlsProxy::start(rx.addr, &ca.server(), Some(&clients)).await;
    let me = clients.client("switchboard");
    let url = format!("https://localhost:{}/hooks", proxy.port);
    let mut with_cert = crate::hooks::endpoint("master", &url);
    with_cert.tls = Some(ClientTls {
        ca: Some(dir.write("ca.pem", &ca.pem)),
        cert: Some(dir.write("me.pem", &me.cert)),
        key: Some(dir.write("me.key", &me.key)),
        insecure_skip_verify: false,
    });
    // The same receiver without a certificate: every attempt fails.
    let mut without = crate::hooks::endpoint("no-cert", &url);
    without.tls = Some(ClientTls {
        ca: with_cert.tls.as_ref().and_then(|t| t.ca.clone()),
        ..ClientTls::default()
    });
    let live = Live::start_with(|c| {
        c.webhook = vec![with_cert, without];
        c.webhooks.allow = vec!["127.0.0.1".into(), "::1".into()];
        c.webhooks.retry = vec![Duration::from_secs(60)];
    })
    .await;
    let d = Driver::start().await;
    let c = Client::connect(&live, &d, "nexus", "websocket", "hooked", Some(&["h"])).await;
    c.send_message("h", "signed and encrypted", false).await;
    let mine = |rx: &crate::hooks::Receiver| -> Vec<crate::hooks::Got> {
        rx.got()
            .into_iter()
            .filter(|g| g.json().to_string().contains("signed and encrypted"))
            .collect()
    };
    until("the delivery", Duration::from_secs(10), || {
        !mine(&rx).is_empty()
    })
    .await;
    tokio::time::sleep(crate::live::QUIET).await;
    let created = mine(&rx);
    assert_eq!(
        created.len(),
        1,
        "delivered once, by the endpoint with the certificate"
    );
    crate::hooks::verify(&created[0], crate::hooks::SECRET);
    assert!(
        metric(
            &live,
            "switchboard_webhook_attempts_total{endpoint=\"no-cert\",outcome=\"unreachable\"}"
        ) >= 1.0,
        "the endpoint without a certificate is refused by the receiver"
    );
    c.close().await;
}

#[test]
fn config_check_names_missing_mismatched_and_expiring_certificates() {
    let ca = Ca::new("check-ca");
    let dir = Dir::new("check");
    let (good, other) = (ca.server(), ca.server());
    let soon = ca.server_expiring(&["localhost"], 5);
    let cert = dir.write("good.pem", &good.cert);
    let wrong_key = dir.write("other.key", &other.key);
    let soon_cert = dir.write("soon.pem", &soon.cert);
    let soon_key = dir.write("soon.key", &soon.key);
    let missing = dir.0.join("missing.pem").to_string_lossy().into_owned();
    let file = dir.write(
        "switchboard.toml",
        &format!(
            "[[listener]]\nport = 1\ntls = {{ cert = \"{cert}\", key = \"{wrong_key}\" }}\nroutes = []\n\
             [[listener]]\nport = 2\ntls = {{ cert = \"{soon_cert}\", key = \"{soon_key}\" }}\nroutes = []\n\
             [[webhook]]\nurl = \"https://master.example\"\nsecrets = [\"s\"]\ntls = {{ ca = \"{missing}\" }}\n"
        ),
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["config", "check", &file])
        .output()
        .expect("runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("listener[0].tls") && err.contains("does not match the certificate"),
        "a key that is not its certificate's: {err}"
    );
    assert!(
        err.contains("webhook[0].tls") && err.contains("missing.pem"),
        "a missing file: {err}"
    );
    assert!(
        err.contains("warning: listener[1].tls") && err.contains("expires on"),
        "a certificate expiring within 14 days: {err}"
    );
    assert!(
        !err.contains("listener[1].tls: cannot"),
        "the expiring pair loads: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socketio_backend_behind_https() {
    let backend_ca = Ca::new("salala-backend-ca");
    let dir = Dir::new("sio-backend");
    let ca_file = dir.write("ca.pem", &backend_ca.pem);
    let salala = crate::backends::salala::Salala::start(BACKEND_SECRET, 0).await;
    let proxy = TlsProxy::start(salala.addr, &backend_ca.server(), None).await;
    let up = format!(
        "name = \"salala\"\nurl = \"https://localhost:{}\"\ndialect = \"salala\"\ntransport = \"socketio\"\ntoken = \"query\"\nack_timeout = \"2s\"\ntls = {{ ca = \"{ca_file}\" }}\n",
        proxy.port
    );
    let live = Live::start_with(|c| front(c, &up)).await;
    let d = Driver::start().await;
    let mut p = fronted_client(&live, &d, "chat-service", "p").await;
    assert_eq!(
        p.next(|r| r.name.starts_with("__connect"))
            .await
            .map(|r| r.name),
        Some("__connect__".into())
    );
    crate::backends::eventually("the backend socket over https://", || {
        salala.connections() == 1
    })
    .await;
    assert!(
        p.emit("room.join", json!({"conversationId": "r1"}), true)
            .await
    );
    assert_eq!(p.ack_any().await.expect("join ack")["success"], true);
    assert!(
        p.emit(
            "message.send",
            json!({"conversationId": "r1", "content": "sio over tls"}),
            true
        )
        .await
    );
    assert_eq!(
        p.ack_any().await.expect("send ack")["success"],
        true,
        "answered by the backend over wss://"
    );
    p.close().await;
}
