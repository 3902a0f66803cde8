//! One port's HTTP server: accepts TCP connections, serves HTTP/1.1 with upgrades, and
//! routes each request to a Socket.IO path, a raw WebSocket route, a backend's REST API
//! (passthrough), or the API (health and metrics, the internal API).

use super::respond::{Body, Peer, empty, json_response, read_body};
use super::socketio::{Namespace, longpoll, polling, websocket as sio_websocket};
use super::{Context, api, internal, websocket};
use crate::auth::Provider;
use crate::config::{ListenerConfig, Transport};
use crate::tls::ServerTls;
use crate::upstream::Upstream;
use crate::upstream::passthrough::{PassError, Passthrough};
use bytes::Bytes;
use engineioxide::service::NotFoundService;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_HEADERS,
    HeaderValue, ORIGIN, VARY,
};
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

/// A Socket.IO path: its namespaces, served by socketioxide (long polling and upgrades
/// from it) and by our own Engine.IO path (WebSocket from the start).
struct SioPath {
    prefix: String,
    namespaces: Arc<[Namespace]>,
    svc: SocketIoService<NotFoundService>,
    /// Whether our own engine serves its long polling too (a namespace recovers).
    own: bool,
    /// Its long-polling sessions, when it does.
    sessions: Arc<longpoll::PollSessions>,
}

/// A raw WebSocket path: its dialect, auth provider and fronted backend.
pub(crate) struct WsRoute {
    path: String,
    pub dialect: Arc<str>,
    pub upstream: Option<Arc<Upstream>>,
    pub auth: Arc<Provider>,
    /// The recovery extension: offsets on kept events, `?since=` replays.
    pub recovery: bool,
}

/// One port's routes.
pub(crate) struct Routes {
    socketio: Vec<SioPath>,
    websocket: Vec<WsRoute>,
    /// Backends whose REST prefixes this port passes through.
    passthrough: Vec<Arc<Upstream>>,
    api: bool,
    /// Served over TLS (the console's cookie is then `Secure`).
    tls: bool,
    cx: Arc<Context>,
}

impl Routes {
    pub(crate) fn build(cx: &Arc<Context>, l: &ListenerConfig) -> Arc<Routes> {
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
                let namespaces: Arc<[Namespace]> = l
                    .routes
                    .iter()
                    .filter(|r| r.transport == Transport::Socketio && r.path == path)
                    .map(|r| Namespace {
                        ns: r.namespace.clone().unwrap_or_else(|| "/".into()),
                        dialect: Arc::from(r.dialect.as_str()),
                        upstream: r.upstream.as_deref().and_then(|u| cx.upstreams.get(u)),
                        auth: cx.auth.for_route(r.auth.as_deref()),
                        recovery: super::recovers(cx, r),
                    })
                    .collect();
                SioPath {
                    prefix: path.to_string(),
                    svc: polling::service(cx, path, &namespaces),
                    own: namespaces.iter().any(|n| n.recovery),
                    sessions: Arc::default(),
                    namespaces,
                }
            })
            .collect();
        let websocket = l
            .routes
            .iter()
            .filter(|r| r.transport == Transport::Websocket)
            .map(|r| WsRoute {
                path: r.path.clone(),
                dialect: Arc::from(r.dialect.as_str()),
                upstream: r.upstream.as_deref().and_then(|u| cx.upstreams.get(u)),
                auth: cx.auth.for_route(r.auth.as_deref()),
                recovery: super::recovers(cx, r),
            })
            .collect();
        let mut passthrough: Vec<Arc<Upstream>> = Vec::new();
        for r in &l.routes {
            if let Some(up) = r.upstream.as_deref().and_then(|u| cx.upstreams.get(u))
                && !up.cfg.http.is_empty()
                && !passthrough.iter().any(|p| p.cfg.name == up.cfg.name)
            {
                passthrough.push(up);
            }
        }
        Arc::new(Routes {
            socketio,
            websocket,
            passthrough,
            api: l.api,
            tls: l.tls.is_some(),
            cx: cx.clone(),
        })
    }

    async fn route(&self, mut req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        req.extensions_mut().insert(Peer(peer));
        let path = req.uri().path();
        let origin = req
            .headers()
            .get(ORIGIN)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let sio = self.socketio.iter().find(|p| {
            path.strip_prefix(p.prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        });
        let ws = self.websocket.iter().find(|w| w.path == path);
        if (sio.is_some() || ws.is_some()) && !self.cx.cfg.cors.allows(origin.as_deref()) {
            return json_response(
                StatusCode::FORBIDDEN,
                &json!({"error": "origin not allowed", "origin": origin}),
            );
        }
        // Draining: nothing new opens (Socket.IO requests of a session already open, its
        // polls above all, are still served: that is how its clients hear goodbye).
        if (ws.is_some() || sio.is_some() && !has_sid(&req)) && self.cx.draining.is_cancelled() {
            let mut resp = json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"error": "this server is shutting down: connect to another instance"}),
            );
            resp.headers_mut()
                .insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("1"));
            return resp;
        }
        if let Some(SioPath {
            namespaces,
            svc,
            own,
            sessions,
            ..
        }) = sio
        {
            if req.method() == Method::OPTIONS {
                let mut resp = empty(StatusCode::NO_CONTENT);
                cors_headers(&mut resp, origin.as_deref(), Some(&req));
                return resp;
            }
            if sio_websocket::is_direct_websocket(&req) {
                let mut resp =
                    sio_websocket::upgrade(req, namespaces.clone(), self.cx.clone(), peer);
                cors_headers(&mut resp, origin.as_deref(), None);
                return resp;
            }
            if *own {
                let mut resp = longpoll::serve(req, namespaces, sessions, &self.cx, peer).await;
                cors_headers(&mut resp, origin.as_deref(), None);
                return resp;
            }
            let _poll = has_sid(&req).then(|| self.cx.polls.start());
            let mut resp = if req.method() == Method::POST && has_sid(&req) {
                // A polling body is read here first: socketioxide would run an event whose
                // ack id it cannot read without its ack (see `neutralize_polling_body`).
                let (mut parts, body) = req.into_parts();
                let bytes = match read_body(body, self.cx.cfg.limits.max_frame).await {
                    Ok(b) => b,
                    Err(too_large) => return too_large,
                };
                let bytes = match std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(crate::socketio::packet::neutralize_polling_body)
                {
                    Some(rewritten) => Bytes::from(rewritten),
                    None => bytes,
                };
                parts.headers.insert(
                    hyper::header::CONTENT_LENGTH,
                    HeaderValue::from(bytes.len()),
                );
                match svc.call(Request::from_parts(parts, Full::new(bytes))).await {
                    Ok(resp) => resp.map(|b| b.map_err(Into::into).boxed()),
                    Err(never) => match never {},
                }
            } else {
                match svc.call(req).await {
                    Ok(resp) => resp.map(|b| b.map_err(Into::into).boxed()),
                    Err(never) => match never {},
                }
            };
            cors_headers(&mut resp, origin.as_deref(), None);
            return resp;
        }
        if let Some(route) = ws {
            return websocket::raw::upgrade(req, route, self.cx.clone(), peer);
        }
        if let Some(up) = self
            .passthrough
            .iter()
            .find(|u| Passthrough::serves(u, path))
        {
            let up = up.clone();
            return match self
                .cx
                .passthrough
                .forward(&up, req, peer, self.cx.hub.metrics())
                .await
            {
                Ok(resp) => resp.map(|b| b.map_err(Into::into).boxed()),
                Err(e) => {
                    let status = match e {
                        PassError::Timeout => StatusCode::GATEWAY_TIMEOUT,
                        PassError::BadPath(_) => StatusCode::BAD_REQUEST,
                        PassError::Unreachable(_) => StatusCode::BAD_GATEWAY,
                    };
                    tracing::debug!(upstream = %up.cfg.name, error = %e, "passthrough failed");
                    json_response(
                        status,
                        &json!({"error": e.to_string(), "upstream": up.cfg.name}),
                    )
                }
            };
        }
        if self.api
            && let Some(resp) = api::answer(&req, &self.cx)
        {
            return resp;
        }
        if self.api && req.uri().path().starts_with("/console") {
            let path = req.uri().path().to_string();
            if let Some(resp) = super::console::handle(req, &self.cx, self.tls).await {
                return resp;
            }
            return json_response(
                StatusCode::NOT_FOUND,
                &json!({"error": "not found", "path": path}),
            );
        }
        if self.api && req.uri().path().starts_with("/api/") {
            let path = req.uri().path().to_string();
            if let Some(resp) = internal::handle(req, &self.cx).await {
                return resp;
            }
            return json_response(
                StatusCode::NOT_FOUND,
                &json!({"error": "not found", "path": path}),
            );
        }
        json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": "not found", "path": path}),
        )
    }
}

/// Whether a Socket.IO request belongs to a session already open (`sid=`).
fn has_sid(req: &Request<Incoming>) -> bool {
    req.uri()
        .query()
        .is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "sid"))
}

/// CORS headers for an allowed browser origin (and, for a preflight, the methods and
/// headers it asked for).
fn cors_headers(
    resp: &mut Response<Body>,
    origin: Option<&str>,
    preflight: Option<&Request<Incoming>>,
) {
    let Some(origin) = origin.and_then(|o| HeaderValue::from_str(o).ok()) else {
        return;
    };
    let h = resp.headers_mut();
    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    h.insert(
        ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    h.append(VARY, HeaderValue::from_static("Origin"));
    if let Some(req) = preflight {
        h.insert(
            ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        let asked = req
            .headers()
            .get(ACCESS_CONTROL_REQUEST_HEADERS)
            .cloned()
            .unwrap_or_else(|| HeaderValue::from_static("content-type, authorization"));
        h.insert(ACCESS_CONTROL_ALLOW_HEADERS, asked);
        h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    }
}

/// Accepts connections until shutdown; each is served on its own task (after its TLS
/// handshake on a TLS listener).
pub(crate) async fn accept_loop(
    tcp: TcpListener,
    tls: Option<Arc<ServerTls>>,
    routes: Arc<Routes>,
    sh: Arc<Context>,
) {
    let port = tcp.local_addr().map_or(0, |a| a.port());
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
        let tls = tls.clone();
        let sh2 = sh.clone();
        sh.tasks.spawn(async move {
            match tls {
                None => serve(stream, routes, peer, &sh2).await,
                Some(tls) => {
                    let metrics = sh2.hub.metrics().clone();
                    let accepted = tokio::select! {
                        s = super::tls::accept(stream, &tls, &metrics, port, peer) => s,
                        _ = sh2.shutdown.cancelled() => None,
                    };
                    if let Some(s) = accepted {
                        serve(s, routes, peer, &sh2).await;
                    }
                }
            }
        });
    }
}

/// Serves HTTP/1.1 (with upgrades) on one connection until it ends or shutdown.
async fn serve<I>(io: I, routes: Arc<Routes>, peer: SocketAddr, sh: &Context)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| {
        let routes = routes.clone();
        async move { Ok::<_, Infallible>(routes.route(req, peer).await) }
    });
    let conn = http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::trace!(%peer, error = %e, "http connection ended");
            }
        }
        _ = sh.shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}
