//! Socket.IO routes (socketioxide): one server per path, a namespace per dialect. A
//! connecting socket is authenticated from its handshake (`auth.token`, with or
//! without `Bearer `, or the `token` query parameter); its events are read raw (the
//! whole `["name", payload]` text, so the dialect's own frame reader does the work) and
//! queued in order to one task per socket, which answers acks.

use super::Namespace;
use crate::auth as token;
use crate::auth::Provider;
use crate::config::Transport;
use crate::hub::{ConnId, ErrorCode, Hub, OutFrame, Outlet, Refusal, Reply, SendFailure};
use crate::listen::Context;
use crate::listen::respond::Peer;
use crate::route::{Arrival, Inbound};
use crate::socketio::packet;
use crate::upstream::Upstream;
use engineioxide::service::NotFoundService;
use serde_json::Value;
use socketioxide::adapter::LocalAdapter;
use socketioxide::extract::{AckSender, SocketRef, TryData};
use socketioxide::handler::{ConnectHandler, FromMessageParts};
use socketioxide::service::SocketIoService;
use socketioxide::socket::Socket;
use socketioxide::{SocketIo, TransportType};
use socketioxide_core::{Str, Value as SioValue};
use std::convert::Infallible;
use std::sync::{Arc, OnceLock};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Events queued per socket before the socket is told to slow down.
pub const INBOUND_QUEUE: usize = 64;

/// One event as the client sent it.
pub(crate) struct RawFrame {
    /// `["name", payload…]` as JSON text; `None` for a binary event.
    text: Option<Str>,
    /// The client asked for an ack.
    wants_ack: bool,
}

/// A socket's inbox, kept in its extensions: events are queued here while socketioxide
/// reads them (its handlers run as separate tasks, which would lose their order).
#[derive(Clone)]
struct Inbox {
    tx: mpsc::Sender<Queued1>,
    hub: Hub,
    /// Set once the hub has registered the connection.
    id: Arc<OnceLock<ConnId>>,
}

/// The receiving end of a socket's inbox, until its handler takes it.
#[derive(Clone)]
struct InboxRx(Arc<std::sync::Mutex<Option<Queue>>>);

/// A socket's queue of events, with the acks to answer.
type Queue = mpsc::Receiver<Queued1>;

/// One queued event, boxed: a channel allocates its slots 32 at a time up front, so a
/// pointer per slot keeps an idle socket's inbox at 256 bytes instead of ~3 KiB.
type Queued1 = Box<(RawFrame, AckSender)>;

/// The extractor that queues an event into its socket's inbox, in arrival order.
pub(crate) struct Queued;

impl FromMessageParts<LocalAdapter> for Queued {
    type Error = Infallible;

    fn from_message_parts(
        s: &Arc<Socket<LocalAdapter>>,
        v: &mut SioValue,
        ack_id: &Option<i64>,
    ) -> Result<Self, Infallible> {
        let Some(inbox) = s.extensions.get::<Inbox>() else {
            return Ok(Queued);
        };
        let frame = RawFrame {
            text: match v {
                SioValue::Str(text, None) => Some(text.clone()),
                _ => None,
            },
            wants_ack: ack_id.is_some(),
        };
        let Ok(ack) = AckSender::from_message_parts(s, v, ack_id);
        if let Err(mpsc::error::TrySendError::Full(q)) = inbox.tx.try_send(Box::new((frame, ack))) {
            let (_, ack) = *q;
            // Overflow: the event is refused in the dialect's words; the socket stays.
            if let Some(conn) = inbox.id.get().and_then(|id| inbox.hub.conn(*id)) {
                let r = Refusal::new(
                    ErrorCode::Unavailable,
                    "too many events in flight: slow down",
                );
                let reply = inbox.hub.refuse(&conn, &r);
                let _ = ack.send(&reply);
            }
        }
        Ok(Queued)
    }
}

/// The Socket.IO server for one path, with a namespace per `(namespace, dialect)`.
pub(crate) fn service(
    cx: &Arc<Context>,
    path: &str,
    namespaces: &[Namespace],
) -> SocketIoService<NotFoundService> {
    let c = &cx.cfg;
    let ws = c.socketio.transports.iter().any(|t| t == "websocket");
    let polling = c.socketio.transports.iter().any(|t| t == "polling");
    let builder = SocketIo::builder()
        .req_path(path.to_string())
        .ping_interval(c.socketio.ping_interval)
        .ping_timeout(c.socketio.ping_timeout)
        .connect_timeout(c.socketio.connect_timeout)
        // The engine's own limits are the hard ones (polling bodies and websocket
        // messages alike); the hub refuses events over `limits.max_payload` itself, in
        // the dialect's words, and keeps the connection.
        .max_payload(c.limits.max_frame as u64)
        .ws_max_message_size(c.limits.max_frame)
        .ws_max_frame_size(c.limits.max_frame)
        .ws_read_buffer_size(crate::listen::websocket::READ_BUFFER)
        .max_buffer_size(c.limits.outbound_queue);
    let builder = match (ws, polling) {
        (true, false) => builder.transports([TransportType::Websocket]),
        (false, true) => builder.transports([TransportType::Polling]),
        _ => builder.transports([TransportType::Polling, TransportType::Websocket]),
    };
    let (svc, io) = builder.build_svc();
    for n in namespaces {
        let cx = cx.clone();
        let hub = cx.hub.clone();
        let dialect = n.dialect.clone();
        let upstream = n.upstream.clone();
        let provider = n.auth.clone();
        let handler = move |socket: SocketRef, TryData(auth): TryData<Value>| {
            let cx = cx.clone();
            let dialect = dialect.clone();
            let upstream = upstream.clone();
            let provider = provider.clone();
            async move { on_connect(cx, dialect, upstream, provider, socket, auth.ok()).await }
        };
        // The inbox is installed by a middleware: socketioxide runs middlewares before it
        // tells the client it is connected, and runs the handler after, as a task; an
        // event sent at once must find the inbox.
        let install = move |socket: SocketRef| {
            let hub = hub.clone();
            async move {
                let (tx, rx) = mpsc::channel::<Queued1>(INBOUND_QUEUE);
                socket.extensions.insert(Inbox {
                    tx,
                    hub,
                    id: Arc::new(OnceLock::new()),
                });
                socket
                    .extensions
                    .insert(InboxRx(Arc::new(std::sync::Mutex::new(Some(rx)))));
                socket.on_fallback(async |_: Queued| {});
                Ok::<(), Infallible>(())
            }
        };
        io.ns(n.ns.clone(), handler.with(install));
    }
    svc
}

/// Whether an event is the one a polling packet with an unreadable ack id became.
fn is_marker(text: &str) -> bool {
    text.strip_prefix("[\"")
        .and_then(|t| t.strip_prefix(packet::ACK_OUT_OF_RANGE))
        .is_some_and(|t| t.starts_with('"'))
}

/// A socketioxide socket as the hub's outlet: its engine's buffer
/// (`limits.outbound_queue` packets) is the bounded queue; emitting into a full buffer
/// fails.
struct SocketOutlet(SocketRef);

impl Outlet for SocketOutlet {
    fn send(&self, frame: &OutFrame) -> Result<(), SendFailure> {
        let r = match &frame.payload() {
            Some(p) => self.0.emit(&*frame.name, &**p),
            None => self.0.emit(&*frame.name, &()),
        };
        r.map_err(|e| match e {
            socketioxide::SendError::Socket(socketioxide::SocketError::InternalChannelFull) => {
                SendFailure::Full
            }
            _ => SendFailure::Closed,
        })
    }

    fn close(&self, _code: u16, _reason: &str) {
        // Socket.IO says it with the namespace disconnect (`41`).
        let _ = self.0.clone().disconnect();
    }
}

async fn on_connect(
    cx: Arc<Context>,
    dialect: Arc<str>,
    upstream: Option<Arc<Upstream>>,
    provider: Arc<Provider>,
    socket: SocketRef,
    auth: Option<Value>,
) {
    // The inbox came first (the middleware): a client may send (or leave) while the hub
    // is still registering it. Events wait in the inbox; nothing is dropped.
    let (Some(inbox), Some(rx)) = (
        socket.extensions.get::<Inbox>(),
        socket
            .extensions
            .get::<InboxRx>()
            .and_then(|r| r.0.lock().unwrap_or_else(|p| p.into_inner()).take()),
    ) else {
        let _ = socket.disconnect();
        return;
    };
    let mut rx = rx;
    let id_cell = inbox.id.clone();
    let (hub, cell) = (cx.hub.clone(), id_cell.clone());
    let gone = CancellationToken::new();
    let gone_tx = gone.clone();
    socket.on_disconnect(move || {
        let (hub, cell) = (hub.clone(), cell.clone());
        gone_tx.cancel();
        async move {
            if let Some(conn) = cell.get().and_then(|id| hub.conn(*id)) {
                hub.disconnect(&conn).await;
            }
        }
    });
    let parts = socket.req_parts();
    let token =
        token::from_socketio_auth(auth.as_ref()).or_else(|| token::from_query(parts.uri.query()));
    let user_agent = parts
        .headers
        .get(hyper::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(Arc::from);
    let ip = parts.extensions.get::<Peer>().map(|p| p.0.ip());
    let said = crate::hub::attempts::said(auth.as_ref());
    let arrival = Arrival {
        dialect: dialect.clone(),
        transport: Transport::Socketio,
        socket_id: Some(socket.id.to_string()),
        token,
        claimed_user: token::user_from_socketio_auth(auth.as_ref()),
        auth: provider,
        user_agent,
        ip,
        outlet: Box::new(SocketOutlet(socket.clone())),
        cancel: None,
        upstream,
        recovery: None,
    };
    let inbound = match Inbound::open(&cx.hub, arrival).await {
        Ok(inbound) => inbound,
        Err(refusal) => {
            if let Some(f) = cx.hub.refuse_connection(
                &dialect,
                Transport::Socketio,
                &refusal,
                ip.map(|ip| (ip, said)),
            ) {
                let _ = match &f.payload() {
                    Some(p) => socket.emit(&*f.name, &**p),
                    None => socket.emit(&*f.name, &()),
                };
            }
            tracing::debug!(sid = %socket.id, code = %refusal.code, "socket.io connection refused: {}", refusal.message);
            let _ = socket.disconnect();
            return;
        }
    };
    // The disconnect handler finds the connection by id: the connection holds the
    // socket, and the socket holds its handlers.
    let id: ConnId = inbound.conn().id;
    let _ = id_cell.set(id);
    if !socket.connected() {
        // It left while being registered (its disconnect handler found no id yet).
        inbound.close().await;
        return;
    }
    drop(socket);
    // One task per socket reads its inbox in order. It owns the inbound side: however
    // it ends (the socket left, or a panic), the connection is unregistered. It ends
    // when the socket leaves (`gone`), which also breaks the cycle of the connection
    // holding the socket whose extensions hold the inbox.
    cx.connections.spawn(async move {
        loop {
            let next = tokio::select! {
                () = gone.cancelled() => None,
                m = rx.recv() => m,
            };
            let Some(q) = next else { break };
            let (frame, ack) = *q;
            let reply: Option<Reply> = frame.wants_ack.then(|| -> Reply {
                Box::new(move |v: Value| {
                    let _ = ack.send(&v);
                })
            });
            match &frame.text {
                Some(text) if is_marker(text) => {
                    let a = inbound.unreadable(
                        "bad_ack_id",
                        "ack id out of range (at most 9223372036854775807 on long polling)",
                    );
                    if let Some(r) = reply {
                        r(a);
                    }
                }
                Some(text) => inbound.frame(text.as_bytes(), reply).await,
                None => {
                    let a =
                        inbound.unreadable("binary", "binary events are not accepted: send JSON");
                    if let Some(r) = reply {
                        r(a);
                    }
                }
            }
        }
        inbound.close().await;
    });
}
