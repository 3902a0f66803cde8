//! A Socket.IO client of our own (Engine.IO v4, websocket transport only) on our client
//! WebSocket (`crate::wsclient`): the handshake, the namespace connect with an `auth`
//! payload, events and acks both ways, and the server's pings answered. Sessions to
//! fronted Socket.IO backends (`upstream`) and the bench tool's clients use it.
//! (`rust_socketio` cannot answer a server's ack, its async client is experimental, and
//! its last release is from 2024.)

pub use super::packet::{Packet, parse};

use crate::wsclient::{ReadError, Received};
use serde_json::Value;
use std::time::{Duration, SystemTime};
use thiserror::Error;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};

/// Why a connection failed.
#[derive(Debug, Error)]
pub enum SioError {
    /// The WebSocket could not be opened.
    #[error("websocket: {0}")]
    Ws(#[from] tokio_tungstenite::tungstenite::Error),
    /// The connection failed during the handshake.
    #[error("websocket: {0}")]
    Read(#[from] ReadError),
    /// Writing to the server failed.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// The server refused the namespace connect (`44{"message"}`).
    #[error("refused: {0}")]
    Refused(String),
    /// The server spoke something else than Engine.IO v4.
    #[error("protocol: {0}")]
    Protocol(String),
    /// No answer in time.
    #[error("timed out")]
    Timeout,
}

/// What the server sent.
#[derive(Debug, Clone)]
pub enum Incoming {
    /// An event: the whole `["name", …]` JSON text, and the ack id the server asks for.
    Event {
        /// The JSON array text.
        text: String,
        /// The server wants an ack with this id.
        ack: Option<u64>,
    },
    /// The server answered one of our acks: its id and the JSON array text.
    Ack {
        /// Our ack id.
        id: u64,
        /// The JSON array of arguments.
        text: String,
    },
    /// The server disconnected us from the namespace, or the connection ended.
    Closed(String),
}

/// Why a frame could not be queued toward the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SendError {
    /// The outbound queue is full: the server reads slower than we write.
    #[error("the outbound queue is full")]
    Full,
    /// The connection is gone.
    #[error("the connection is closed")]
    Closed,
}

/// An event's arguments, `["name", payload]`, as JSON.
fn event_args(name: &str, payload: &Value) -> String {
    Value::Array(vec![Value::String(name.to_string()), payload.clone()]).to_string()
}

/// Sends to the server, through a bounded queue.
#[derive(Clone)]
pub struct Sender {
    tx: mpsc::Sender<Message>,
    ns_prefix: String,
}

impl Sender {
    /// Emits `name` with one payload argument; with `ack`, asks for an ack with that id.
    pub fn emit(&self, name: &str, payload: &Value, ack: Option<u64>) -> bool {
        self.emit_raw(&event_args(name, payload), ack)
    }

    /// Emits a pre-serialised `["name", …]` array.
    pub fn emit_raw(&self, array_json: &str, ack: Option<u64>) -> bool {
        self.try_emit_raw(array_json, ack).is_ok()
    }

    /// Emits a pre-serialised `["name", …]` array without waiting.
    ///
    /// # Errors
    /// The queue is full, or the connection is gone.
    pub fn try_emit_raw(&self, array_json: &str, ack: Option<u64>) -> Result<(), SendError> {
        let id = ack.map(|a| a.to_string()).unwrap_or_default();
        let frame = format!("42{}{id}{array_json}", self.ns_prefix);
        self.push(Message::Text(frame.into()))
    }

    /// Emits `name` with one payload argument, waiting while the queue is full (a load
    /// generator that falls behind slows down rather than failing).
    ///
    /// # Errors
    /// The connection is gone.
    pub async fn emit_waiting(&self, name: &str, payload: &Value) -> Result<(), SendError> {
        let frame = format!("42{}{}", self.ns_prefix, event_args(name, payload));
        self.tx
            .send(Message::Text(frame.into()))
            .await
            .map_err(|_| SendError::Closed)
    }

    /// Answers a server's ack request with one argument.
    pub fn ack(&self, id: u64, payload: &Value) -> bool {
        let frame = format!(
            "43{}{id}{}",
            self.ns_prefix,
            Value::Array(vec![payload.clone()])
        );
        self.push(Message::Text(frame.into())).is_ok()
    }

    fn push(&self, m: Message) -> Result<(), SendError> {
        self.tx.try_send(m).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::Full,
            mpsc::error::TrySendError::Closed(_) => SendError::Closed,
        })
    }

    /// Leaves the namespace and closes.
    pub fn close(&self) {
        let tx = self.tx.clone();
        let leave = format!("41{}", self.ns_prefix.trim_end_matches(','));
        // The queue may be full: the goodbye waits its turn, in the background.
        tokio::spawn(async move {
            let _ = tx.send(Message::Text(leave.into())).await;
            let _ = tx.send(Message::Close(None)).await;
        });
    }
}

/// Takes an event's `["name", …]` text in the reading task itself, with the time the
/// task woke to read it (one clock read per wake-up, however many frames it brought);
/// `true`: consumed (not queued). For a reader that only counts and times (the load
/// generator), it saves a task hop and a copy per event, and a clock read per frame.
pub type EventHook = std::sync::Arc<dyn Fn(&str, SystemTime) -> bool + Send + Sync>;

/// How to connect.
#[derive(Clone)]
pub struct Options {
    /// The handshake's `auth` payload.
    pub auth: Option<Value>,
    /// Extra query parameters on the handshake URL.
    pub query: Vec<(String, String)>,
    /// Extra request headers (`Authorization`).
    pub headers: Vec<(String, String)>,
    /// How long the handshake may take.
    pub timeout: Duration,
    /// Frames queued each way.
    pub queue: usize,
    /// Events without an ack request offered here first.
    pub on_event: Option<EventHook>,
    /// What an `https://` (`wss://`) server is verified with (unset: the system's
    /// roots).
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Options {
    /// `auth`, nothing else, 1024 frames each way.
    pub fn with_auth(auth: Option<&Value>, timeout: Duration) -> Options {
        Options {
            auth: auth.cloned(),
            query: Vec::new(),
            headers: Vec::new(),
            timeout,
            queue: 1024,
            on_event: None,
            tls: None,
        }
    }
}

/// Connects to `base` (`http://host:port`), at `path` (`/socket.io`), namespace `ns`
/// (`/` or `/ws/app`), with `auth` (the handshake's auth payload); returns once the
/// namespace accepted us.
///
/// # Errors
/// The socket did not open, the server refused the namespace, or did not answer within
/// `timeout`.
pub async fn connect(
    base: &str,
    path: &str,
    ns: &str,
    auth: Option<&Value>,
    timeout: Duration,
) -> Result<(Sender, mpsc::Receiver<Incoming>), SioError> {
    connect_with(base, path, ns, &Options::with_auth(auth, timeout)).await
}

/// Like [`connect`], with every option.
///
/// # Errors
/// As [`connect`].
pub async fn connect_with(
    base: &str,
    path: &str,
    ns: &str,
    opts: &Options,
) -> Result<(Sender, mpsc::Receiver<Incoming>), SioError> {
    let timeout = opts.timeout;
    let ws_base = base
        .trim_end_matches('/')
        .replacen("http://", "ws://", 1)
        .replacen("https://", "wss://", 1);
    let mut url = format!(
        "{ws_base}{}/?EIO=4&transport=websocket",
        path.trim_end_matches('/')
    );
    for (k, v) in &opts.query {
        url.push('&');
        url.extend(form_urlencoded::byte_serialize(k.as_bytes()));
        url.push('=');
        url.extend(form_urlencoded::byte_serialize(v.as_bytes()));
    }
    let mut req = url.into_client_request()?;
    for (k, v) in &opts.headers {
        let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) else {
            return Err(SioError::Protocol(format!("header `{k}` cannot be sent")));
        };
        req.headers_mut().insert(k, v);
    }
    let (mut r, mut w) =
        tokio::time::timeout(timeout, crate::wsclient::open_with(req, opts.tls.clone()))
            .await
            .map_err(|_| SioError::Timeout)??;
    let ns_prefix = if ns == "/" {
        String::new()
    } else {
        format!("{ns},")
    };
    // Engine.IO open, then our namespace connect.
    let open = tokio::time::timeout(timeout, r.next())
        .await
        .map_err(|_| SioError::Timeout)??;
    match open {
        Some(Received::Text(t)) if t.starts_with('0') => {}
        other => {
            return Err(SioError::Protocol(format!(
                "expected the open packet, got {other:?}"
            )));
        }
    }
    let auth = opts.auth.as_ref().map(Value::to_string).unwrap_or_default();
    w.send(Message::Text(format!("40{ns_prefix}{auth}").into()))
        .await?;
    loop {
        let m = tokio::time::timeout(timeout, r.next())
            .await
            .map_err(|_| SioError::Timeout)??;
        let text = match m {
            Some(Received::Text(t)) => t,
            Some(Received::Ping(p)) => {
                w.send(Message::Pong(p.to_vec().into())).await?;
                continue;
            }
            Some(Received::Close(_)) | None => {
                return Err(SioError::Protocol("closed during the handshake".into()));
            }
            Some(_) => continue,
        };
        if text == "2" {
            w.send(Message::Text("3".into())).await?;
            continue;
        }
        match parse(text) {
            Ok(Packet::Connect { .. }) => break,
            Ok(Packet::ConnectError { message, .. }) => return Err(SioError::Refused(message)),
            _ => continue,
        }
    }
    let queue = opts.queue.max(1);
    let (tx, out) = mpsc::channel::<Message>(queue);
    let (events_tx, events) = mpsc::channel(queue);
    tokio::spawn(w.run(out));
    let pong = tx.clone();
    let hook = opts.on_event.clone();
    tokio::spawn(async move {
        // The time of the read that brought the frames being handled: one clock read
        // per read, however many frames it brought.
        let mut woke = SystemTime::now();
        let why = loop {
            let text = match r.try_next() {
                Ok(Some(Received::Text(t))) => t,
                Ok(Some(Received::Close(f))) => break format!("closed: {f:?}"),
                Ok(Some(Received::Ping(p))) => {
                    let _ = pong.send(Message::Pong(p.to_vec().into())).await;
                    continue;
                }
                Ok(Some(_)) => continue,
                Ok(None) => match r.fill().await {
                    Ok(true) => {
                        woke = SystemTime::now();
                        continue;
                    }
                    Ok(false) => break "closed".to_string(),
                    Err(e) => break e.to_string(),
                },
                Err(e) => break e.to_string(),
            };
            if text == "2" {
                // A pong must not wait behind a full queue, nor be lost.
                let _ = pong.send(Message::Text("3".into())).await;
                continue;
            }
            let incoming = match parse(text) {
                Ok(Packet::Event {
                    ack: None, args, ..
                }) if hook.as_ref().is_some_and(|h| h(args, woke)) => continue,
                Ok(Packet::Event { ack, args, .. }) => Incoming::Event {
                    text: args.to_string(),
                    ack,
                },
                Ok(Packet::Ack { id, args, .. }) => Incoming::Ack {
                    id,
                    text: args.to_string(),
                },
                Ok(Packet::Disconnect { .. }) => break "disconnected by the server".to_string(),
                _ => continue,
            };
            // Waiting here is the backpressure: the server's writes wait in TCP.
            if events_tx.send(incoming).await.is_err() {
                return;
            }
        };
        let _ = events_tx.send(Incoming::Closed(why)).await;
    });
    Ok((Sender { tx, ns_prefix }, events))
}
