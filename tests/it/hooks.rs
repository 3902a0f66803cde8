//! A webhook receiver of the tests' own (hyper): records every request, answers with
//! scripted statuses, and verifies signatures with an HMAC computed here, not with
//! switchboard's code.

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use sha2::Sha256;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use switchboard::config::WebhookEndpoint;

pub const SECRET: &str = "receiver-secret";

/// One request as the receiver got it.
#[derive(Debug, Clone)]
pub struct Got {
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Got {
    pub fn header(&self, k: &str) -> &str {
        self.headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the body is JSON")
    }
}

/// A scripted answer: a status and an optional `Retry-After`.
pub type Answer = (u16, Option<&'static str>);

/// A receiver: answers each request with the next scripted status (then `then`), after
/// `delay`; records everything.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    pub got: Arc<Mutex<Vec<Got>>>,
    pub script: Arc<Mutex<VecDeque<Answer>>>,
    pub then: Arc<Mutex<u16>>,
    pub delay: Duration,
}

impl Receiver {
    pub async fn start(delay: Duration) -> Receiver {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let r = Receiver {
            addr: tcp.local_addr().expect("addr"),
            got: Arc::default(),
            script: Arc::default(),
            then: Arc::new(Mutex::new(200)),
            delay,
        };
        let me = r.clone();
        tokio::spawn(async move {
            loop {
                let Ok((s, _)) = tcp.accept().await else {
                    return;
                };
                let me = me.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req: Request<Incoming>| {
                        let me = me.clone();
                        async move {
                            let headers = req.headers().clone();
                            let body = req
                                .into_body()
                                .collect()
                                .await
                                .map(|b| b.to_bytes())
                                .unwrap_or_default();
                            tokio::time::sleep(me.delay).await;
                            me.got.lock().expect("got").push(Got {
                                headers,
                                body,
                                at: Instant::now(),
                            });
                            let (status, retry_after) = me
                                .script
                                .lock()
                                .expect("script")
                                .pop_front()
                                .unwrap_or((*me.then.lock().expect("then"), None));
                            let mut resp = Response::new(Full::new(Bytes::from_static(b"ok")));
                            *resp.status_mut() =
                                hyper::StatusCode::from_u16(status).expect("status");
                            if let Some(ra) = retry_after {
                                resp.headers_mut()
                                    .insert("retry-after", ra.parse().expect("header"));
                            }
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(s), svc)
                        .await;
                });
            }
        });
        r
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks", self.addr)
    }

    pub fn got(&self) -> Vec<Got> {
        self.got.lock().expect("got").clone()
    }

    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Got> {
        let t0 = Instant::now();
        loop {
            let g = self.got();
            if g.len() >= n || t0.elapsed() > limit {
                return g;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Verifies `X-Webhook-Signature` (and the Standard Webhooks headers when present)
/// with an HMAC of our own here, not switchboard's code.
pub fn verify(g: &Got, secret: &str) {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(&g.body);
    let want = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let sigs: Vec<&str> = g.header("x-webhook-signature").split(',').collect();
    assert!(sigs.contains(&want.as_str()), "signature {sigs:?} ≠ {want}");
    let body = g.json();
    assert_eq!(g.header("x-webhook-id"), body["id"].as_str().expect("id"));
    assert_eq!(
        g.header("x-webhook-event"),
        body["type"].as_str().expect("type")
    );
    assert!(body["id"].as_str().is_some_and(|i| i.starts_with("evt_")));
    assert!(body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert_eq!(g.header("content-type"), "application/json");
    let ts: i64 = g
        .header("x-webhook-timestamp")
        .parse()
        .expect("unix seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    assert!((now - ts).abs() < 60);
}

pub fn endpoint(name: &str, url: &str) -> WebhookEndpoint {
    WebhookEndpoint {
        name: name.into(),
        url: url.into(),
        secrets: vec![SECRET.into()],
        events: Vec::new(),
        timeout: Duration::from_secs(2),
        headers: Default::default(),
        standard: false,
        tls: None,
    }
}
