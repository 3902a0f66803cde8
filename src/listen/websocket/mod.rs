//! Served WebSockets: the opening handshake (`GET` over HTTP/1.1, RFC 6455), then one
//! task per connection (`connection.rs`) reading frames in order with tungstenite and
//! writing its bounded queue (`outgoing.rs`, `writer.rs`) straight on the socket, one
//! heartbeat for all of them (`heartbeat.rs`). Raw WebSocket routes (`raw.rs`) and our
//! Socket.IO connections (`listen::socketio::websocket`) share all of it.
//!
//! Close codes: 4401 refused token (after the dialect's error frame), 1013 connection
//! limit (likewise), 1009 a message over `limits.max_frame`, 1007 text that is not UTF-8,
//! 1002 a protocol violation, 1008 slow consumer or rate limit, 1011 a failed task, 1012
//! server restart, 1001 ping timeout.

mod connection;
pub(crate) mod heartbeat;
mod outgoing;
pub(crate) mod raw;
mod writer;

pub(crate) use connection::{WsConnection, WsStream};
pub(crate) use outgoing::{Outgoing, Receiver, Sender, bounded};
pub(crate) use writer::write_now;

use super::Context;
use super::respond::{Body, json_response};
use crate::hub::{OutFrame, Outlet, SendFailure};
use hyper::body::Incoming;
use hyper::header::{
    ALLOW, CONNECTION, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION,
    UPGRADE, USER_AGENT,
};
use hyper::upgrade::OnUpgrade;
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::rt::TokioIo;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Bytes each WebSocket preallocates for reading (raw and Socket.IO alike): chat frames
/// are small, a larger one grows the buffer for itself, and idle connections stay cheap.
pub(crate) const READ_BUFFER: usize = 512;

/// Close code for a refused token.
pub const CLOSE_UNAUTHORIZED: u16 = 4401;

/// A request's `User-Agent`, owned (the request's buffers are not kept).
pub(crate) fn user_agent(req: &Request<Incoming>) -> Option<Arc<str>> {
    req.headers()
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(Arc::from)
}

/// Checks a WebSocket handshake and answers it: `101` with `serve` run on the upgrade in
/// a tracked task; `405` for another method than `GET`, `400` below HTTP/1.1, `426` for
/// a request that is not a WebSocket handshake (version 13).
pub(crate) fn accept<F, Fut>(
    req: &mut Request<Incoming>,
    cx: &Arc<Context>,
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
    cx.connections.spawn(serve(Upgrade {
        on: hyper::upgrade::on(req),
        limit: cx.cfg.limits.max_frame,
        peer,
    }));
    let mut resp = super::respond::empty(StatusCode::SWITCHING_PROTOCOLS);
    let h = resp.headers_mut();
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(SEC_WEBSOCKET_ACCEPT, v);
    }
    resp
}

/// A WebSocket handshake answered, the connection not yet upgraded.
pub(crate) struct Upgrade {
    on: OnUpgrade,
    /// `limits.max_frame`.
    limit: usize,
    peer: SocketAddr,
}

impl Upgrade {
    /// The upgraded connection as tungstenite reads it; `None` if the upgrade failed.
    pub(crate) async fn open(&mut self) -> Option<WsStream> {
        match (&mut self.on).await {
            Ok(upgraded) => {
                // tungstenite preallocates its read buffer (128 KiB by default); it grows
                // for a larger frame, so a small one keeps idle connections cheap.
                let config = WebSocketConfig::default()
                    .read_buffer_size(READ_BUFFER)
                    .max_message_size(Some(self.limit))
                    .max_frame_size(Some(self.limit));
                // tungstenite reads; the connection's writer writes.
                let io = writer::ReadOnly(TokioIo::new(upgraded));
                Some(WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await)
            }
            Err(e) => {
                tracing::debug!(peer = %self.peer, error = %e, "websocket upgrade failed");
                None
            }
        }
    }
}

/// What the reader does with a client's control frame: a ping is answered (queued in
/// order with the connection's other frames), a close is echoed.
pub(crate) fn answer_control(msg: &Message, out: &Sender<Outgoing>) {
    match msg {
        Message::Ping(p) => {
            let _ = out.try_send(Outgoing::Pong(p.clone()));
        }
        Message::Close(f) => {
            let code = f.as_ref().map_or(1000, |f| u16::from(f.code));
            let _ = out.try_send(Outgoing::Close(code, String::new()));
        }
        _ => {}
    }
}

/// The close a read error calls for (RFC 6455 7.4.1): 1009 for a message over
/// `limits.max_frame`, 1007 for text that is not UTF-8, 1002 for a protocol violation (an
/// unknown opcode, reserved bits set, an unmasked client frame, a bad close frame…);
/// `None` when the connection is simply gone.
pub(crate) fn close_for(e: &WsError) -> Option<(u16, &'static str)> {
    match e {
        WsError::Capacity(_) => Some((1009, "message too big")),
        WsError::Utf8(_) => Some((1007, "text frame is not valid UTF-8")),
        WsError::Protocol(_) => Some((1002, "protocol error")),
        _ => None,
    }
}

/// Queues `out`, as the hub's outlet says it failed.
pub(crate) fn queue(tx: &Sender<Outgoing>, out: Outgoing) -> Result<(), SendFailure> {
    tx.try_send(out).map_err(|e| match e {
        outgoing::TrySendError::Full => SendFailure::Full,
        outgoing::TrySendError::Closed => SendFailure::Closed,
    })
}

/// A raw WebSocket connection as the hub's outlet: its queue, a frame each event.
pub(crate) struct QueueOutlet(pub(crate) Sender<Outgoing>);

impl Outlet for QueueOutlet {
    fn send(&self, frame: &OutFrame) -> Result<(), SendFailure> {
        queue(&self.0, Outgoing::Text(frame.text.clone()))
    }

    fn close(&self, code: u16, reason: &str) {
        let _ = self.0.try_send(Outgoing::Close(code, reason.to_string()));
    }
}
