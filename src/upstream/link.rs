//! The connection to a backend, whichever its transport: raw WebSocket
//! (`crate::wsclient`) or Socket.IO (our Engine.IO v4 client, `crate::socketio::client`).
//! Both directions go through bounded queues: what the backend sends waits in TCP when
//! the session has not taken it yet.

use super::Upstream;
use super::credentials::Handshake;
use crate::config::Transport;
use crate::socketio::client::{self, Incoming, SendError, SioError};
use crate::wsclient::Received;
use serde_json::Value;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Why a session could not be opened.
#[derive(Debug, Error)]
pub enum OpenError {
    /// The backend refused the credentials (HTTP 401/403, a Socket.IO connect error).
    #[error("refused by the backend: {0}")]
    Refused(String),
    /// The backend could not be reached, or spoke something unexpected.
    #[error("backend unreachable: {0}")]
    Unreachable(String),
    /// No answer within `connect_timeout`.
    #[error("the backend did not answer within {0:?}")]
    Timeout(Duration),
}

/// Sends to the backend.
#[derive(Clone)]
pub enum LinkTx {
    /// Raw WebSocket: text frames.
    Ws(mpsc::Sender<Message>),
    /// Socket.IO: events and acks.
    Sio(client::Sender),
}

impl LinkTx {
    /// Queues one frame (an envelope, or a Socket.IO `["name", …]` array) without
    /// waiting; over Socket.IO, `ack` asks the backend for an ack with that id.
    ///
    /// # Errors
    /// The queue is full (the backend reads slower than the client writes) or closed.
    pub fn send(&self, frame: String, ack: Option<u64>) -> Result<(), SendError> {
        match self {
            LinkTx::Ws(tx) => tx
                .try_send(Message::Text(frame.into()))
                .map_err(|e| match e {
                    mpsc::error::TrySendError::Full(_) => SendError::Full,
                    mpsc::error::TrySendError::Closed(_) => SendError::Closed,
                }),
            LinkTx::Sio(s) => s.try_emit_raw(&frame, ack),
        }
    }

    /// Answers the backend's ack request (Socket.IO only).
    pub fn ack(&self, id: u64, payload: &Value) {
        if let LinkTx::Sio(s) = self {
            s.ack(id, payload);
        }
    }

    /// Closes the session.
    pub fn close(&self) {
        match self {
            LinkTx::Ws(tx) => {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _ = tx.send(Message::Close(None)).await;
                });
            }
            LinkTx::Sio(s) => s.close(),
        }
    }
}

/// Opens a session to the backend with `handshake`.
///
/// # Errors
/// Refused, unreachable, or too slow.
pub async fn open(
    up: &Upstream,
    handshake: &Handshake,
) -> Result<(LinkTx, mpsc::Receiver<Incoming>), OpenError> {
    let cfg = &up.cfg;
    let timeout = cfg.connect_timeout;
    match cfg.transport {
        Transport::Socketio => {
            let opts = client::Options {
                auth: handshake.auth.clone(),
                query: handshake.query.clone(),
                headers: handshake.headers.clone(),
                timeout,
                queue: cfg.queue,
                on_event: None,
                tls: Some(up.tls.clone()),
            };
            client::connect_with(&cfg.url, &cfg.path, &cfg.namespace, &opts)
                .await
                .map(|(tx, rx)| (LinkTx::Sio(tx), rx))
                .map_err(|e| match e {
                    SioError::Refused(m) => OpenError::Refused(m),
                    SioError::Timeout => OpenError::Timeout(timeout),
                    SioError::Ws(e) => ws_error(e),
                    SioError::Protocol(m) => OpenError::Unreachable(m),
                    e @ (SioError::Read(_) | SioError::Io(_)) => {
                        OpenError::Unreachable(e.to_string())
                    }
                })
        }
        Transport::Websocket => open_ws(up, handshake, timeout).await,
    }
}

fn ws_error(e: WsError) -> OpenError {
    match e {
        WsError::Http(resp) if matches!(resp.status().as_u16(), 401 | 403) => {
            let body = resp
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).trim().to_string())
                .filter(|b| !b.is_empty());
            OpenError::Refused(body.unwrap_or_else(|| resp.status().to_string()))
        }
        WsError::Http(resp) => OpenError::Unreachable(format!("HTTP {}", resp.status())),
        other => OpenError::Unreachable(other.to_string()),
    }
}

async fn open_ws(
    up: &Upstream,
    handshake: &Handshake,
    timeout: Duration,
) -> Result<(LinkTx, mpsc::Receiver<Incoming>), OpenError> {
    let cfg = &up.cfg;
    let mut url = cfg.url.clone();
    for (k, v) in &handshake.query {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.extend(form_urlencoded::byte_serialize(k.as_bytes()));
        url.push('=');
        url.extend(form_urlencoded::byte_serialize(v.as_bytes()));
    }
    let mut req = url.into_client_request().map_err(ws_error)?;
    for (k, v) in &handshake.headers {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            req.headers_mut().insert(k, v);
        }
    }
    let (mut r, w) = tokio::time::timeout(
        timeout,
        crate::wsclient::open_with(req, Some(up.tls.clone())),
    )
    .await
    .map_err(|_| OpenError::Timeout(timeout))?
    .map_err(ws_error)?;
    let (tx, out) = mpsc::channel::<Message>(cfg.queue.max(1));
    let (in_tx, in_rx) = mpsc::channel(cfg.queue.max(1));
    tokio::spawn(w.run(out));
    let pong = tx.clone();
    tokio::spawn(async move {
        let why = loop {
            match r.next().await {
                Ok(Some(Received::Text(t))) => {
                    let ev = Incoming::Event {
                        text: t.to_owned(),
                        ack: None,
                    };
                    if in_tx.send(ev).await.is_err() {
                        return;
                    }
                }
                Ok(Some(Received::Ping(p))) => {
                    let _ = pong.send(Message::Pong(p.to_vec().into())).await;
                }
                Ok(Some(Received::Close(f))) => {
                    break match f {
                        Some((code, reason)) => {
                            format!("closed by the backend ({code} {reason})")
                        }
                        None => "closed by the backend".to_string(),
                    };
                }
                Ok(Some(_)) => {}
                Err(e) => break e.to_string(),
                Ok(None) => break "connection ended".to_string(),
            }
        };
        let _ = in_tx.send(Incoming::Closed(why)).await;
    });
    Ok((LinkTx::Ws(tx), in_rx))
}
