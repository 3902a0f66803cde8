//! The bench tool's own tests: short runs against an in-process server (the long runs
//! are `scripts/bench`, never part of the suite).

use crate::live::Live;
use std::time::Duration;
use switchboard::bench::{Options, Report, run};

fn options(live: &Live, dialect: &str) -> Options {
    let (base, _, _, _) = live.url(dialect);
    Options {
        urls: vec![base],
        dialect: dialect.into(),
        path: None,
        ns: None,
        clients: 30,
        rooms: 3,
        senders: 3,
        rate: 150.0,
        duration: Duration::from_millis(1500),
        warmup: Duration::from_millis(200),
        ramp: 1000.0,
        secret: crate::live::SECRET.into(),
        pid: vec![std::process::id()],
        label: "test".into(),
        json: None,
        ca: None,
    }
}

fn check(r: &Report) {
    assert_eq!(
        (r.connected, r.connect_errors, r.errors),
        (30, 0, 0),
        "{r:?}"
    );
    assert!(r.sent > 0, "{r:?}");
    // Every message reaches its room of 10 (the sender included).
    assert!(r.delivered >= r.sent * 9, "{r:?}");
    assert!(
        r.delivered_per_sec > 0.0 && r.connects_per_sec > 0.0,
        "{r:?}"
    );
    assert!(
        r.latency_ms.p50 > 0.0 && r.latency_ms.p50 <= r.latency_ms.p99,
        "{r:?}"
    );
    assert!(r.rss_idle_kib.is_some_and(|k| k > 0), "{r:?}");
    let row = r.markdown_row();
    assert_eq!(
        row.matches('|').count(),
        Report::markdown_header()
            .lines()
            .next()
            .map_or(0, |h| h.matches('|').count())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_run_over_socketio_measures_deliveries_and_latency() {
    let live = Live::start().await;
    let r = run(&options(&live, "chat-service")).await.expect("runs");
    check(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_run_over_raw_websocket_measures_deliveries_and_latency() {
    let live = Live::start().await;
    let r = run(&options(&live, "nexus")).await.expect("runs");
    check(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_report_the_servers_memory() {
    let live = Live::start().await;
    let mut o = options(&live, "salala");
    o.rate = 0.0;
    o.senders = 0;
    let r = run(&o).await.expect("runs");
    assert_eq!(r.connected, 30);
    assert!(r.rss_per_conn_kib.is_some_and(|k| k > 0.0), "{r:?}");
    assert_eq!(r.delivered, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_run_over_tls_with_the_servers_ca() {
    let ca = crate::certs::Ca::new("bench-ca");
    let dir = crate::certs::Dir::new("bench");
    let leaf = ca.server();
    let tls = switchboard::config::ListenerTls {
        cert: dir.write("server.pem", &leaf.cert),
        key: dir.write("server.key", &leaf.key),
        client_ca: None,
        handshake_timeout: Duration::from_secs(10),
        reload_check: Duration::from_secs(5),
    };
    let live = Live::start_with(|c| {
        for l in &mut c.listeners {
            l.tls = Some(tls.clone());
        }
    })
    .await;
    for dialect in ["chat-service", "nexus"] {
        let mut o = options(&live, dialect);
        o.urls = vec![o.urls[0].replacen("http://127.0.0.1", "https://localhost", 1)];
        o.ca = Some(dir.write("ca.pem", &ca.pem));
        let r = run(&o).await.expect("runs");
        check(&r);
    }
}
