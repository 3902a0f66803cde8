//! What fronting costs: round-trip latency client → switchboard → backend → switchboard
//! → client, against the same client connected straight to the backend. The backend is a
//! minimal NexusChat server (raw WebSocket envelopes: `SEND_MSG` answered by
//! `NEW_MESSAGE` with the same `traceId`); the client is a NexusChat client, so both
//! paths carry the same frames and the difference is switchboard (decode, canonical,
//! encode, both ways, plus one more hop). The same for Socket.IO: a Salala backend on
//! socketioxide answering `sendMessage` with its ack, a Salala client (our Engine.IO v4
//! client) waiting for the ack, so the bridged ack is what is measured. One message in
//! flight at a time. Not a test; run with
//! `cargo run --release --example upstream_latency [ROUND_TRIPS] [RUNS]`.

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;
use switchboard::config::{Config, DEFAULT_TOML, UpstreamConfig};
use switchboard::dialect::Registry;
use switchboard::server::Server;
use tokio_tungstenite::tungstenite::Message;

/// A NexusChat backend that answers each `SEND_MSG` to its sender.
async fn backend() -> std::net::SocketAddr {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = tcp.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = tcp.accept().await {
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(s).await else {
                    return;
                };
                while let Some(Ok(m)) = ws.next().await {
                    let Message::Text(t) = m else { continue };
                    let Ok(v) = serde_json::from_str::<Value>(&t) else {
                        continue;
                    };
                    let d = &v["data"];
                    let reply = json!({"event": "NEW_MESSAGE", "traceId": v["traceId"], "data": {
                        "id": "m1", "roomId": d["roomId"], "senderId": "u1", "type": "TEXT",
                        "contentText": d["contentText"], "createdAt": "2026-11-22T00:00:00.000Z"}});
                    if ws
                        .send(Message::Text(reply.to_string().into()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A Salala backend (socketioxide) that acks each `sendMessage` with the message.
async fn sio_backend() -> std::net::SocketAddr {
    use socketioxide::extract::{AckSender, Data, SocketRef};
    use socketioxide::handler::ConnectHandler;
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = tcp.local_addr().expect("addr");
    let (svc, io) = socketioxide::SocketIo::new_svc();
    // Handlers registered by a middleware: socketioxide runs the connect handler after
    // telling the client it is connected, so an event sent at once would find none.
    let install = async |s: SocketRef| {
        s.on(
            "sendMessage",
            async |Data(d): Data<Value>, ack: AckSender| {
                let _ = ack.send(&json!({"id": "m1", "conversationId": d["conversationId"],
                    "senderId": "u1", "content": d["content"], "createdAt": "2026-11-22T00:00:00.000Z"}));
            },
        );
        Ok::<(), std::convert::Infallible>(())
    };
    io.ns("/", (async |_: SocketRef| {}).with(install));
    tokio::spawn(async move {
        while let Ok((s, _)) = tcp.accept().await {
            let _ = s.set_nodelay(true);
            let svc = svc.clone();
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(s), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

/// `n` sequential `sendMessage` → ack round trips on the Socket.IO server at `base`.
async fn run_sio(base: &str, n: u64) -> Histogram<u64> {
    use switchboard::socketio::client::{self, Incoming};
    let (tx, mut rx) = client::connect(
        base,
        "/socket.io",
        "/",
        None,
        std::time::Duration::from_secs(5),
    )
    .await
    .expect("connects");
    let mut h = Histogram::<u64>::new(3).expect("histogram");
    let args = json!(["sendMessage", {"conversationId": "r1", "content": "a message of some forty bytes, like chat"}]).to_string();
    for i in 0..n + 2000 {
        let t0 = Instant::now();
        assert!(tx.emit_raw(&args, Some(i)), "sent");
        loop {
            match rx.recv().await {
                Some(Incoming::Ack { id, .. }) if id == i => break,
                Some(Incoming::Closed(why)) | Some(Incoming::Event { text: why, .. })
                    if why.contains("closed") || why.contains("error") =>
                {
                    panic!("{why}")
                }
                Some(_) => continue,
                None => panic!("connection ended"),
            }
        }
        if i >= 2000 {
            let _ = h.record(t0.elapsed().as_micros() as u64);
        }
    }
    tx.close();
    h
}

/// `n` sequential round trips on `url`, in microseconds.
async fn run(url: &str, n: u64) -> Histogram<u64> {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connects");
    let mut h = Histogram::<u64>::new(3).expect("histogram");
    let frame = json!({"event": "SEND_MSG", "traceId": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "data": {"roomId": "r1", "type": "TEXT", "contentText": "a message of some forty bytes, like chat"}})
    .to_string();
    for i in 0..n + 2000 {
        let t0 = Instant::now();
        ws.send(Message::Text(frame.clone().into()))
            .await
            .expect("send");
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.contains("NEW_MESSAGE") => break,
                Some(Ok(_)) => continue,
                other => panic!("connection ended: {other:?}"),
            }
        }
        // The first 2,000 warm up.
        if i >= 2000 {
            let _ = h.record(t0.elapsed().as_micros() as u64);
        }
    }
    h
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Medians over the runs of (direct p50, direct p99, via p50, via p99).
fn report(title: &str, rows: &[(u64, u64, u64, u64)]) {
    let col =
        |f: fn(&(u64, u64, u64, u64)) -> u64| median(rows.iter().map(|r| f(r) as f64).collect());
    let (d50, d99, v50, v99) = (col(|r| r.0), col(|r| r.1), col(|r| r.2), col(|r| r.3));
    println!(
        "\n{title}\n\n| path | p50 | p99 |\n|---|---|---|\n| client → backend | {d50} µs | {d99} µs |\n| client → switchboard → backend | {v50} µs | {v99} µs |\n| added by switchboard | {} µs | {} µs |",
        v50 - d50,
        v99 - d99
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let back = backend().await;
    let sio_back = sio_backend().await;
    let mut cfg = Config::from_toml(DEFAULT_TOML).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    cfg.bind = "127.0.0.1".into();
    cfg.instance = "bench".into();
    cfg.limits.rate = 1e9;
    cfg.limits.burst = 1e9;
    cfg.listeners.truncate(1);
    let l = &mut cfg.listeners[0];
    l.port = 0;
    l.port_env = None;
    l.routes
        .retain(|r| r.dialect == "nexus" || r.dialect == "salala");
    for r in &mut l.routes {
        r.upstream = Some(r.dialect.clone());
    }
    for (name, url, transport) in [
        ("nexus", format!("ws://{back}/ws"), "websocket"),
        ("salala", format!("http://{sio_back}"), "socketio"),
    ] {
        let up: UpstreamConfig = toml::from_str(&format!(
            "name = \"{name}\"\nurl = \"{url}\"\ndialect = \"{name}\"\ntransport = \"{transport}\"\n"
        ))?;
        cfg.upstreams.push(up);
    }
    let server = Server::start(cfg, Arc::new(Registry::embedded()?)).await?;
    let gw = server.addrs[0];
    let (mut ws_rows, mut sio_rows) = (Vec::new(), Vec::new());
    for r in 0..runs {
        let d = run(&format!("ws://{back}/ws?token=t"), n).await;
        let v = run(&format!("ws://{gw}/ws?token=t"), n).await;
        let q = |h: &Histogram<u64>| (h.value_at_quantile(0.5), h.value_at_quantile(0.99));
        let row = (q(&d).0, q(&d).1, q(&v).0, q(&v).1);
        println!(
            "raw WebSocket run {r}: direct p50/p99 {}/{} µs, via switchboard {}/{} µs",
            row.0, row.1, row.2, row.3
        );
        ws_rows.push(row);
        let d = run_sio(&format!("http://{sio_back}"), n).await;
        let v = run_sio(&format!("http://{gw}"), n).await;
        let row = (q(&d).0, q(&d).1, q(&v).0, q(&v).1);
        println!(
            "Socket.IO run {r}: direct p50/p99 {}/{} µs, via switchboard {}/{} µs",
            row.0, row.1, row.2, row.3
        );
        sio_rows.push(row);
    }
    report(
        "NexusChat client → NexusChat backend (raw WebSocket, SEND_MSG → NEW_MESSAGE)",
        &ws_rows,
    );
    report(
        "Salala client → Salala backend (Socket.IO, sendMessage → its ack, bridged)",
        &sio_rows,
    );
    println!(
        "\n({runs} runs of {n} sequential round trips each; medians of the runs' percentiles)"
    );
    Ok(())
}
