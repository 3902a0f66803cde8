//! Signed webhook deliveries per second to a local receiver: the webhook engine on one
//! thread (one core), a hyper receiver answering 200 on another. Not a test; run with
//! `cargo run --release --example webhook_throughput [EVENTS] [CONCURRENCY]`
//! (scripts/bench runs it pinned to one CPU per side). Deliveries are stored in the
//! embedded store (a fresh temporary directory) as the gateway does without RabbitMQ;
//! `WEBHOOK_FSYNC=1` adds `webhooks.fsync`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use switchboard::config::{WebhookEndpoint, WebhooksConfig};
use switchboard::dialect::Registry;
use switchboard::event::Event;
use switchboard::telemetry::Metrics;
use switchboard::webhook::Webhooks;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let events: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let concurrency: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(32);
    let received = Arc::new(AtomicU64::new(0));
    // The receiver, on its own thread.
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let r = received.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let _ = addr_tx.send(tcp.local_addr().expect("addr"));
            loop {
                let Ok((s, _)) = tcp.accept().await else {
                    return;
                };
                let r = r.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let r = r.clone();
                        async move {
                            let _ = req.into_body().collect().await;
                            r.fetch_add(1, Ordering::Relaxed);
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                Bytes::from_static(b"ok"),
                            )))
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                });
            }
        });
    });
    let addr = addr_rx.recv()?;
    // The engine, on this thread only.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let registry = Registry::embedded().map_err(|e| anyhow::anyhow!("{e}"))?;
        // The embedded store (the default without RabbitMQ), in a fresh directory.
        let store = std::env::temp_dir().join(format!("sb-webhook-bench-{}", std::process::id()));
        let settings = WebhooksConfig {
            allow: vec!["127.0.0.1".into()],
            concurrency,
            queue: usize::try_from(events).unwrap_or(usize::MAX),
            store: store.to_string_lossy().into_owned(),
            fsync: std::env::var("WEBHOOK_FSYNC").is_ok_and(|v| v == "1"),
            ..WebhooksConfig::default()
        };
        let ep = WebhookEndpoint {
            name: "bench".into(),
            url: format!("http://{addr}/hooks"),
            secrets: vec!["bench-secret".into()],
            events: Vec::new(),
            timeout: Duration::from_secs(10),
            headers: Default::default(),
            standard: false,
            tls: None,
        };
        let hooks = Webhooks::start(&[ep], &settings, Arc::new(Metrics::new()), None)?;
        let t0 = Instant::now();
        for i in 0..events {
            let body = json!({"conversationId": "c", "messageId": format!("m{i}"), "senderId": "s", "content": "a webhook of a typical size, with a sentence of text"});
            let ev = Event::new("message.created", body.as_object().cloned().unwrap_or_default());
            drop(hooks.offer(&ev, &registry));
            if i % 1000 == 0 {
                tokio::task::yield_now().await;
            }
        }
        while received.load(Ordering::Relaxed) < events {
            tokio::time::sleep(Duration::from_millis(5)).await;
            anyhow::ensure!(t0.elapsed() < Duration::from_secs(300), "stalled at {}", received.load(Ordering::Relaxed));
        }
        let secs = t0.elapsed().as_secs_f64();
        drop(hooks);
        let _ = std::fs::remove_dir_all(&store);
        println!(
            "{{\"events\": {events}, \"concurrency\": {concurrency}, \"seconds\": {secs:.3}, \"deliveries_per_sec\": {:.0}}}",
            events as f64 / secs
        );
        Ok(())
    })
}
