//! One port's HTTP server: accepts TCP connections, serves HTTP/1.1 with upgrades, and
//! routes each request to a Socket.IO server, a raw WebSocket route, or the HTTP API.

use super::{Shared, socketio, ws};
use crate::config::{ListenerConfig, Transport};
use bytes::Bytes;
use engineioxide::service::NotFoundService;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{Service, service_fn};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use socketioxide::service::SocketIoService;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// Response bodies, whichever part of the server made them.
pub(crate) type Body = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

/// The peer address of a request, for the socket's `ip`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub SocketAddr);

/// One port's routes.
pub(crate) struct Routes {
    socketio: Vec<(String, SocketIoService<NotFoundService>)>,
    websocket: Vec<(String, Arc<str>)>,
    api: bool,
    shared: Arc<Shared>,
}

impl Routes {
    pub(crate) fn build(shared: &Arc<Shared>, l: &ListenerConfig) -> Arc<Routes> {
        let mut paths: Vec<&str> = Vec::new();
        for r in l
            .routes
            .iter()
            .filter(|r| r.transport == Transport::Socketio)
        {
            if !paths.contains(&r.path.as_str()) {
                paths.push(&r.path);
            }
        }
        let socketio = paths
            .into_iter()
            .map(|path| {
                let namespaces: Vec<(String, String)> = l
                    .routes
                    .iter()
                    .filter(|r| r.transport == Transport::Socketio && r.path == path)
                    .map(|r| {
                        let ns = r.namespace.clone().unwrap_or_else(|| "/".into());
                        (ns, r.dialect.clone())
                    })
                    .collect();
                (
                    path.to_string(),
                    socketio::service(shared, path, &namespaces),
                )
            })
            .collect();
        let websocket = l
            .routes
            .iter()
            .filter(|r| r.transport == Transport::Websocket)
            .map(|r| (r.path.clone(), Arc::from(r.dialect.as_str())))
            .collect();
        Arc::new(Routes {
            socketio,
            websocket,
            api: l.api,
            shared: shared.clone(),
        })
    }

    async fn route(&self, mut req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        req.extensions_mut().insert(Peer(peer));
        let path = req.uri().path();
        for (prefix, svc) in &self.socketio {
            let under = path
                .strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
            if under {
                return match svc.call(req).await {
                    Ok(resp) => resp.map(|b| b.map_err(Into::into).boxed()),
                    Err(never) => match never {},
                };
            }
        }
        if let Some((_, dialect)) = self.websocket.iter().find(|(p, _)| p == path) {
            return ws::upgrade(req, dialect.clone(), self.shared.clone(), peer);
        }
        if self.api
            && let Some(resp) = self.api(&req)
        {
            return resp;
        }
        json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": "not found", "path": path}),
        )
    }

    fn api(&self, req: &Request<Incoming>) -> Option<Response<Body>> {
        let sh = &self.shared;
        if req.method() != Method::GET {
            return None;
        }
        Some(match req.uri().path() {
            "/healthz" => json_response(StatusCode::OK, &json!({"status": "ok"})),
            "/readyz" => {
                let bus = sh.hub.bus();
                let ready = bus.ready() && !sh.shutdown.is_cancelled();
                let status = if ready {
                    StatusCode::OK
                } else {
                    StatusCode::SERVICE_UNAVAILABLE
                };
                json_response(
                    status,
                    &json!({
                        "status": if ready { "ready" } else { "unavailable" },
                        "bus": {"kind": bus.kind(), "ready": bus.ready()},
                        "connections": sh.hub.connection_count(),
                        "shuttingDown": sh.shutdown.is_cancelled(),
                    }),
                )
            }
            "/api/config/webrtc" => json_response(
                StatusCode::OK,
                &json!({"iceServers": sh.cfg.webrtc.ice_servers}),
            ),
            _ => return None,
        })
    }
}

/// A JSON response.
pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// Accepts connections until shutdown; each is served on its own task.
pub(crate) async fn accept_loop(tcp: TcpListener, routes: Arc<Routes>, sh: Arc<Shared>) {
    let mut backoff = Duration::from_millis(5);
    loop {
        let accepted = tokio::select! {
            _ = sh.shutdown.cancelled() => return,
            a = tcp.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => {
                backoff = Duration::from_millis(5);
                a
            }
            Err(e) => {
                // Out of file descriptors, mostly: wait, then try again.
                tracing::warn!(error = %e, "accept failed; backing off {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let routes = routes.clone();
        let shutdown = sh.shutdown.clone();
        sh.tasks.spawn(async move {
            let svc = service_fn(move |req| {
                let routes = routes.clone();
                async move { Ok::<_, Infallible>(routes.route(req, peer).await) }
            });
            let conn = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::trace!(%peer, error = %e, "http connection ended");
                    }
                }
                _ = shutdown.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                }
            }
        });
    }
}
