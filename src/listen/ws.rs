//! Raw WebSocket routes: the upgrade, token check, then one task per connection reading
//! frames in order (tokio-tungstenite) and writing its bounded queue (`duplex`). The
//! upgrade serves our own Socket.IO connections too (`eio`).
//!
//! Close codes: 4401 refused token (after the dialect's error frame), 1013 connection
//! limit (likewise), 1009 a message over `limits.max_frame`, 1008 slow consumer or rate
//! limit, 1012 server restart, 1001 ping timeout.

use super::Shared;
use super::duplex::{Duplex, Ws};
use super::http::{Body, json_response};
use super::writer::{self, ReadOnly};
use crate::auth as token;
use crate::config::Transport;
use crate::hub::outbox;
use crate::hub::{CLOSE_TRY_LATER, Frame, NewConn, Refusal, Sink, WsOut};
use crate::upstream::{Session, Upstream};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::header::{
    ALLOW, AUTHORIZATION, CONNECTION, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    SEC_WEBSOCKET_VERSION, UPGRADE, USER_AGENT,
};
use hyper::upgrade::OnUpgrade;
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Close code for a refused token.
pub const CLOSE_UNAUTHORIZED: u16 = 4401;

/// Answers a WebSocket upgrade on a raw WebSocket route.
pub(super) fn upgrade(
    mut req: Request<Incoming>,
    dialect: Arc<str>,
    upstream: Option<Arc<Upstream>>,
    sh: Arc<Shared>,
    peer: SocketAddr,
) -> Response<Body> {
    let h = req.headers();
    let token = token::from_authorization(h.get(AUTHORIZATION).and_then(|v| v.to_str().ok()))
        .or_else(|| token::from_query(req.uri().query()));
    let user_agent = user_agent(&req);
    let task_sh = sh.clone();
    accept(&mut req, &sh, peer, move |up| {
        let who = Who {
            dialect,
            upstream,
            token,
            user_agent,
            peer,
        };
        serve(up, who, task_sh)
    })
}

/// A request's `User-Agent`, owned (the request's buffers are not kept).
pub(super) fn user_agent(req: &Request<Incoming>) -> Option<Arc<str>> {
    req.headers()
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(Arc::from)
}

/// Checks a WebSocket handshake and answers it: `101` with `serve` run on the upgrade in
/// a tracked task, or `426` for a request that is not a WebSocket handshake (version 13).
pub(super) fn accept<F, Fut>(
    req: &mut Request<Incoming>,
    sh: &Arc<Shared>,
    peer: SocketAddr,
    serve: F,
) -> Response<Body>
where
    F: FnOnce(Upgrade) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    // RFC 6455 4.1: the opening handshake is a GET over HTTP/1.1 (or later).
    if req.method() != Method::GET {
        let mut resp = json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &json!({"error": "a WebSocket handshake is a GET request"}),
        );
        resp.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return resp;
    }
    if req.version() < Version::HTTP_11 {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "a WebSocket handshake needs HTTP/1.1"}),
        );
    }
    let h = req.headers();
    let is_upgrade = h
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let version_ok = h.get(SEC_WEBSOCKET_VERSION).is_some_and(|v| v == "13");
    let Some(key) = h
        .get(SEC_WEBSOCKET_KEY)
        .filter(|_| is_upgrade && version_ok)
    else {
        return json_response(
            StatusCode::UPGRADE_REQUIRED,
            &json!({"error": "this path speaks WebSocket (version 13) only"}),
        );
    };
    let accept = derive_accept_key(key.as_bytes());
    // The connection's task is the serving future itself (no future around it, which
    // would hold its arguments a second time): it opens the socket first.
    sh.connections.spawn(serve(Upgrade {
        on: hyper::upgrade::on(req),
        limit: sh.cfg.limits.max_frame,
        peer,
    }));
    let mut resp = Response::new(Empty::new().map_err(|never| match never {}).boxed());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(SEC_WEBSOCKET_ACCEPT, v);
    }
    resp
}

/// A WebSocket handshake answered, the connection not yet upgraded.
pub(super) struct Upgrade {
    on: OnUpgrade,
    /// `limits.max_frame`.
    limit: usize,
    peer: SocketAddr,
}

impl Upgrade {
    /// The upgraded connection as tungstenite reads it; `None` if the upgrade failed.
    pub(super) async fn open(&mut self) -> Option<Ws> {
        match (&mut self.on).await {
            Ok(upgraded) => {
                // tungstenite preallocates its read buffer (128 KiB by default); it grows
                // for a larger frame, so a small one keeps idle connections cheap.
                let config = WebSocketConfig::default()
                    .read_buffer_size(super::READ_BUFFER)
                    .max_message_size(Some(self.limit))
                    .max_frame_size(Some(self.limit));
                // tungstenite reads; the connection's writer writes.
                let io = ReadOnly(TokioIo::new(upgraded));
                Some(WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await)
            }
            Err(e) => {
                tracing::debug!(peer = %self.peer, error = %e, "websocket upgrade failed");
                None
            }
        }
    }
}

struct Who {
    dialect: Arc<str>,
    /// The backend this route fronts, if it does.
    upstream: Option<Arc<Upstream>>,
    token: Option<String>,
    user_agent: Option<Arc<str>>,
    peer: SocketAddr,
}

/// What the reader does with a client's control frame: a ping is answered (queued in
/// order with the connection's other frames), a close is echoed.
pub(super) fn answer_control(msg: &Message, out: &outbox::Sender<WsOut>) {
    match msg {
        Message::Ping(p) => {
            let _ = out.try_send(WsOut::Pong(p.clone()));
        }
        Message::Close(f) => {
            let code = f.as_ref().map_or(1000, |f| u16::from(f.code));
            let _ = out.try_send(WsOut::Close(code, String::new()));
        }
        _ => {}
    }
}

/// The close a read error calls for (RFC 6455 7.4.1): 1009 for a message over
/// `limits.max_frame`, 1007 for text that is not UTF-8, 1002 for a protocol violation (an
/// unknown opcode, reserved bits set, an unmasked client frame, a bad close frame…);
/// `None` when the connection is simply gone.
pub(super) fn close_for(e: &WsError) -> Option<(u16, &'static str)> {
    match e {
        WsError::Capacity(_) => Some((1009, "message too big")),
        WsError::Utf8(_) => Some((1007, "text frame is not valid UTF-8")),
        WsError::Protocol(_) => Some((1002, "protocol error")),
        _ => None,
    }
}

async fn serve(mut up: Upgrade, who: Who, sh: Arc<Shared>) {
    let Some(ws) = up.open().await else {
        return;
    };
    let (out_tx, out_rx) = outbox::bounded::<WsOut>(sh.cfg.limits.outbound_queue);
    let mut duplex = Duplex::new(ws, out_rx);
    let hub = &sh.hub;
    let identity = sh.identify(who.upstream.as_ref(), who.token.as_deref());
    // Kept only for a backend session: not for the connection's whole life.
    let token = who.token.filter(|_| who.upstream.is_some());
    let member = who.upstream.as_ref().is_none_or(|u| u.cfg.uses_hub());
    let mut claims = None;
    let admitted = match identity {
        Err(e) => Err((Refusal::from(&e), CLOSE_UNAUTHORIZED)),
        // Boxed, as every one-time or per-event step below: the task's future stays
        // as small as its idle loop while the connection waits.
        Ok(identity) => Box::pin(hub.connect(NewConn {
            dialect: who.dialect.clone(),
            transport: Transport::Websocket,
            socket_id: None,
            user: identity.user,
            claims: {
                claims = identity.claims;
                identity.rooms
            },
            user_agent: who.user_agent,
            ip: Some(who.peer.ip()),
            sink: Sink::Ws(out_tx.clone()),
            member,
            cancel: None,
        }))
        .await
        .map_err(|r| (r, CLOSE_TRY_LATER)),
    };
    let conn = match admitted {
        Ok(conn) => conn,
        Err((refusal, code)) => {
            let said = match hub.refuse_connection(&who.dialect, Transport::Websocket, &refusal) {
                Some(Frame::Text(t)) => Some(WsOut::Text(t)),
                _ => None,
            };
            let close = WsOut::Close(code, refusal.code.as_str().into());
            writer::write_now(duplex.io(), said.into_iter().chain([close])).await;
            tracing::debug!(peer = %who.peer, code = %refusal.code, "websocket refused: {}", refusal.message);
            return;
        }
    };
    let relay = match &who.upstream {
        Some(up) => Some(
            Box::pin(duplex.writing_while(Session::start(
                up.clone(),
                hub.clone(),
                conn.clone(),
                token,
                claims.as_ref(),
            )))
            .await,
        ),
        None => None,
    };
    drop(claims);
    let idle_limit = sh.cfg.socketio.ping_interval + sh.cfg.socketio.ping_timeout;
    let mut beat = sh.heartbeat.beat();
    let mut last_heard = Instant::now();
    loop {
        let msg = tokio::select! {
            () = conn.cancel.cancelled() => break,
            () = beat.tick() => {
                if last_heard.elapsed() > idle_limit {
                    conn.close(1001, "ping timeout");
                    break;
                }
                let _ = out_tx.try_send(WsOut::Ping);
                continue;
            }
            m = duplex.next() => m,
        };
        last_heard = Instant::now();
        match msg {
            Some(Ok(Message::Text(t))) => match &relay {
                Some(s) => {
                    Box::pin(duplex.writing_while(s.client_frame(t.as_bytes(), None))).await;
                }
                None => {
                    Box::pin(duplex.writing_while(hub.handle_frame(&conn, t.as_bytes()))).await;
                }
            },
            Some(Ok(Message::Binary(_))) => {
                hub.refuse_unreadable(
                    &conn,
                    "binary",
                    "binary frames are not accepted: send JSON text",
                );
            }
            Some(Ok(m @ (Message::Ping(_) | Message::Pong(_)))) => {
                answer_control(&m, &out_tx);
                Box::pin(duplex.writing_while(hub.touch(&conn))).await;
            }
            Some(Ok(Message::Frame(_))) => {}
            Some(Ok(m @ Message::Close(_))) => {
                answer_control(&m, &out_tx);
                break;
            }
            None => break,
            Some(Err(e)) => {
                tracing::debug!(conn = conn.id, error = %e, "websocket read failed");
                if let Some((code, why)) = close_for(&e) {
                    hub.count_unreadable(&conn.dialect, "websocket_protocol");
                    conn.close(code, why);
                }
                break;
            }
        }
    }
    if let Some(s) = &relay {
        s.end();
    }
    let cut = conn.is_closed();
    Box::pin(conn.end()).await;
    drop(out_tx);
    Box::pin(duplex.finish(cut)).await;
}
