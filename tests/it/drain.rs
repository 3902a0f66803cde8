//! SIGTERM as a load balancer and clients see it: `/readyz` answers 503 (not a refused
//! connection) while the instance drains, every client is told in its dialect (long
//! polling ones too: they fetch their goodbye with their next poll; recovering Socket.IO
//! sessions get the engine's close, not a namespace disconnect, so that they come back
//! and recover on another instance), and the process exits as soon as the last client
//! is gone.

use crate::live::{Client, Driver, Live, SECRET};
use crate::process::Running;
use crate::support::{open, send};
use std::time::{Duration, Instant};

async fn readyz(addr: std::net::SocketAddr) -> Option<u16> {
    let req = "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(req.as_bytes()).await.ok()?;
    let mut out = String::new();
    let _ = s.read_to_string(&mut out).await;
    out.split(' ').nth(1).and_then(|c| c.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_every_client_and_exits_when_the_last_is_gone() {
    let mut running = Running::start(&[("AUTH_JWT_SECRET", SECRET)], &[]);
    let live = Live::at(running.addrs());
    let driver = Driver::start().await;
    let mut polling = Vec::new();
    for i in 0..50 {
        let dialect = if i % 2 == 0 { "salala" } else { "chat-service" };
        polling.push(
            Client::connect(
                &live,
                &driver,
                dialect,
                "polling",
                &format!("poll-{i}"),
                None,
            )
            .await,
        );
    }
    let mut ws = Client::connect(&live, &driver, "phase10", "websocket", "ws-client", None).await;
    // A raw WebSocket client that never answers the close: the drain waits for it a
    // moment (the close reply), which is when a load balancer asks.
    let t = crate::live::token("mute", None, None);
    let mut mute = open(&format!("ws://{}/ws?token={t}", running.addrs()[0])).await;
    send(&mut mute, "{}").await;
    assert_eq!(readyz(running.addrs()[0]).await, Some(200));

    let t0 = Instant::now();
    running.signal("-TERM");
    // The load balancer sees 503 while the instance drains, not a refused connection.
    let mut seen = None;
    while t0.elapsed() < Duration::from_secs(2) {
        match readyz(running.addrs()[0]).await {
            Some(503) => {
                seen = Some(503);
                break;
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            None => break,
        }
    }
    assert_eq!(seen, Some(503), "/readyz answers 503 while draining");
    // Every client hears it: the notice in its dialect, then the close (recovering
    // Socket.IO sessions, as these are by default: `transport close`, which their
    // client answers by reconnecting, elsewhere, and recovering; a namespace
    // disconnect, `io server disconnect`, would stop it from coming back).
    ws.wire("system:disconnect")
        .await
        .expect("phase10's notice");
    let mut told = 0;
    for c in &mut polling {
        let d = c
            .next(|r| r.name == "__disconnect__")
            .await
            .expect("disconnected");
        if d.payload == "transport close" {
            told += 1;
        }
    }
    assert_eq!(
        told, 50,
        "every long-polling client is closed by the server"
    );
    let status = loop {
        if let Some(s) = running.child.try_wait().expect("wait") {
            break s;
        }
        assert!(t0.elapsed() < Duration::from_secs(8), "exits promptly");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let took = t0.elapsed();
    eprintln!(
        "exited {took:?} after SIGTERM (50 polling clients, 1 websocket, 1 mute raw websocket)"
    );
    assert!(status.success(), "{status:?}");
    // Not the 5 s a long poll used to hold it: the close reply's 1 s at most, and the rest.
    assert!(took < Duration::from_secs(3), "{took:?}");
    drop(mute);
}
