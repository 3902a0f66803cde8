//! Socket.IO clients that open a WebSocket directly (`?EIO=4&transport=websocket`, no
//! `sid`), served here rather than by socketioxide: Engine.IO v4 over that WebSocket,
//! the path's namespaces (each joined one a hub connection), acks and the heartbeat.
//!
//! Why: a socketioxide socket holds three tasks, its engine's channels (32 preallocated
//! slots of ~170 bytes) and the whole HTTP request (whose headers pin hyper's 8 KiB read
//! buffer): ~28 KiB per idle connection. Here a connection is one task reading and
//! writing its socket (`listen::websocket`, as raw WebSocket routes), and what the hub
//! keeps. Long polling, and upgrades from it, stay with socketioxide (`polling.rs`); both
//! paths hand frames to the same inbound path and register the same hub connections, so
//! clients of either are in the same rooms.

use super::Namespace;
use crate::auth as token;
use crate::config::Transport;
use crate::hub::{OutFrame, Outlet, Recover, Reply, SendFailure, new_pid};
use crate::listen::Context;
use crate::listen::respond::Body;
use crate::listen::websocket::{
    self, Outgoing, Sender, Upgrade, WsConnection, bounded, close_for, queue,
};
use crate::route::{Arrival, Inbound};
use crate::socketio::packet::{self, Packet, PacketError};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::UPGRADE;
use hyper::{Request, Response};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// Whether `req` opens an Engine.IO v4 connection straight on a WebSocket: the requests
/// this module serves.
pub(crate) fn is_direct_websocket(req: &Request<Incoming>) -> bool {
    let Some(q) = req.uri().query() else {
        return false;
    };
    let (mut v4, mut websocket, mut sid) = (false, false, false);
    for (k, v) in form_urlencoded::parse(q.as_bytes()) {
        match &*k {
            "EIO" => v4 = v == "4",
            "transport" => websocket = v == "websocket",
            "sid" => sid = true,
            _ => {}
        }
    }
    v4 && websocket && !sid && req.headers().contains_key(UPGRADE)
}

/// Answers the WebSocket upgrade of a Socket.IO path.
pub(crate) fn upgrade(
    mut req: Request<Incoming>,
    namespaces: Arc<[Namespace]>,
    cx: Arc<Context>,
    peer: SocketAddr,
) -> Response<Body> {
    let client = Client {
        namespaces,
        query_token: token::from_query(req.uri().query()),
        user_agent: websocket::user_agent(&req),
        peer,
    };
    let (out, queue) = bounded::<Outgoing>(cx.cfg.limits.outbound_queue);
    // Built here and handed to the task whole: an argument the task moved into a
    // local would take its room twice in the task's future.
    let c = Connection::new(client, cx.clone(), out);
    websocket::accept(&mut req, &cx, peer, move |up| serve(up, c, queue))
}

/// What the handshake said about the client.
pub(super) struct Client {
    pub(super) namespaces: Arc<[Namespace]>,
    /// `?token=`, for namespaces joined without one in `auth`.
    pub(super) query_token: Option<String>,
    pub(super) user_agent: Option<Arc<str>>,
    pub(super) peer: SocketAddr,
}

/// A namespace the client joined.
struct Joined {
    ns: Arc<str>,
    /// Its inbound side (its hub connection, its backend session), unregistered however
    /// the connection's task ends.
    inbound: Inbound,
}

/// One connection: its state while the reader runs.
pub(super) struct Connection {
    pub(super) client: Client,
    pub(super) cx: Arc<Context>,
    pub(super) out: Sender<Outgoing>,
    /// Shared by its namespaces' hub connections: the hub cutting one (slow consumer,
    /// rate limit) cuts the connection, whose queue and limits they share. A child of
    /// the server's `realtime` token.
    pub(super) cut: CancellationToken,
    joined: Vec<Joined>,
    /// Binary frames still to come for a binary event (refused; their frames dropped).
    attachments: usize,
}

/// Engine.IO heartbeat ping (v4: the server pings, the client answers `3`).
pub(super) const PING: &str = "2";

async fn serve(mut up: Upgrade, c: Connection, queue: websocket::Receiver<Outgoing>) {
    let Some(ws) = up.open().await else {
        return;
    };
    let socket = WsConnection::new(ws, queue);
    // Written at once and dropped: a local of this function would live (and hold its
    // map) as long as the connection.
    let open = open_packet(&c.cx, &new_sid(), false);
    let _ = c.out.try_send(Outgoing::Text(Bytes::from(open)));
    let join_by = Some(Box::pin(tokio::time::sleep(
        c.cx.cfg.socketio.connect_timeout,
    )));
    run(socket, c, join_by).await;
}

/// A deadline for joining a namespace, boxed: an idle connection keeps a pointer.
pub(super) type JoinBy = Option<std::pin::Pin<Box<tokio::time::Sleep>>>;

/// Serves a connection on its WebSocket until it ends (from the start, or once a long
/// polling session upgraded to it), then unregisters its namespaces.
pub(super) async fn run(mut socket: WsConnection, mut c: Connection, mut join_by: JoinBy) {
    let cx = c.cx.clone();
    let sio = &cx.cfg.socketio;
    let idle_limit = sio.ping_interval + sio.ping_timeout;
    let mut beat = cx.heartbeat.beat();
    let mut last_heard = Instant::now();
    loop {
        let msg = tokio::select! {
            () = c.cut.cancelled() => break,
            () = async { if let Some(t) = &mut join_by { t.await } }, if join_by.is_some() => {
                tracing::debug!(peer = %c.client.peer, "socket.io: no namespace joined in time");
                break;
            }
            () = beat.tick() => {
                if last_heard.elapsed() > idle_limit {
                    tracing::debug!(peer = %c.client.peer, "socket.io: ping timeout");
                    break;
                }
                let _ = c.out.try_send(Outgoing::Text(Bytes::from_static(PING.as_bytes())));
                continue;
            }
            m = socket.next() => m,
        };
        last_heard = Instant::now();
        match msg {
            Some(Ok(Message::Text(t))) => {
                if !Box::pin(socket.writing_while(c.engine_packet(&t))).await {
                    break;
                }
                if !c.joined.is_empty() {
                    join_by = None;
                }
            }
            Some(Ok(Message::Binary(_))) => {
                if c.attachments == 0 {
                    c.unreadable("/", "binary", "a binary frame no binary event announced");
                }
                c.attachments = c.attachments.saturating_sub(1);
            }
            Some(Ok(m @ Message::Close(_))) => {
                websocket::answer_control(&m, &c.out);
                break;
            }
            None => break,
            Some(Ok(m)) => websocket::answer_control(&m, &c.out),
            Some(Err(e)) => {
                tracing::debug!(peer = %c.client.peer, error = %e, "socket.io read failed");
                if let Some((code, why)) = close_for(&e) {
                    if let Some(route) = c.client.namespaces.first() {
                        cx.hub
                            .count_unreadable(&route.dialect, "websocket_protocol");
                    }
                    let _ = c.out.try_send(Outgoing::Close(code, why.into()));
                    c.cut.cancel();
                }
                break;
            }
        }
    }
    let cut = c.leave_all().await;
    Box::pin(socket.finish(cut)).await;
}

/// The Engine.IO open packet: `0{"sid", "upgrades", "pingInterval", "pingTimeout",
/// "maxPayload"}` (a long-polling session may upgrade to a WebSocket).
pub(super) fn open_packet(cx: &Context, sid: &str, polling: bool) -> String {
    let sio = &cx.cfg.socketio;
    let ws = sio.transports.iter().any(|t| t == "websocket");
    let upgrades: &[&str] = if polling && ws { &["websocket"] } else { &[] };
    let open = json!({
        "sid": sid,
        "upgrades": upgrades,
        "pingInterval": sio.ping_interval.as_millis() as u64,
        "pingTimeout": sio.ping_timeout.as_millis() as u64,
        "maxPayload": cx.cfg.limits.max_frame,
    });
    format!("0{open}")
}

impl Connection {
    /// A connection of `client` whose frames go to `out`, cut with a child of the
    /// server's `realtime` token.
    pub(super) fn new(client: Client, cx: Arc<Context>, out: Sender<Outgoing>) -> Connection {
        Connection {
            client,
            cut: cx.realtime.child_token(),
            cx,
            out,
            // Most clients join one namespace.
            joined: Vec::with_capacity(1),
            attachments: 0,
        }
    }

    /// Leaves every namespace (unregistered in order); whether the server cut it.
    pub(super) async fn leave_all(mut self) -> bool {
        for j in std::mem::take(&mut self.joined) {
            Box::pin(j.inbound.close()).await;
        }
        self.cut.is_cancelled()
    }

    /// Whether it has joined a namespace.
    pub(super) fn has_joined(&self) -> bool {
        !self.joined.is_empty()
    }

    /// Handles one Engine.IO packet; `false` ends the connection.
    pub(super) async fn engine_packet(&mut self, text: &str) -> bool {
        match text.as_bytes().first() {
            // A message: a Socket.IO packet.
            Some(b'4') => {
                self.socket_packet(text).await;
                true
            }
            // The client closes.
            Some(b'1') => false,
            // A ping from the client (`2probe` and Engine.IO v3 habits): answered.
            Some(b'2') => {
                // `2` is one byte: the rest starts at a char boundary.
                let pong = format!("3{}", &text[1..]);
                let _ = self.out.try_send(Outgoing::Text(Bytes::from(pong)));
                true
            }
            // A pong (the heartbeat is renewed by any frame), an upgrade, a noop.
            Some(b'3' | b'5' | b'6') => true,
            // Not an Engine.IO packet at all: an empty frame, JSON, anything else.
            _ => {
                self.unreadable(
                    "/",
                    "bad_packet",
                    "not an Engine.IO packet: send `4` + a Socket.IO packet, e.g. 42[\"event\",{}]",
                );
                true
            }
        }
    }

    /// Refuses a frame that could not be read, in the dialect of the namespace it names
    /// (or of the first one joined). Before any namespace is joined, the only error
    /// Socket.IO has is a connect error: `44{"message":"bad_event: …"}`.
    fn unreadable(&self, ns: &str, reason: &'static str, message: &str) {
        tracing::debug!(peer = %self.client.peer, reason, "socket.io frame refused: {message}");
        let joined = self
            .joined
            .iter()
            .find(|j| &*j.ns == ns)
            .or_else(|| self.joined.first());
        match joined {
            Some(j) => {
                j.inbound.unreadable(reason, message);
            }
            None => {
                if let Some(route) = self.client.namespaces.first() {
                    self.cx.hub.count_unreadable(&route.dialect, reason);
                }
                self.queue(packet::connect_error(ns, &format!("bad_event: {message}")));
            }
        }
    }

    async fn socket_packet(&mut self, text: &str) {
        let p = match packet::parse(text) {
            Ok(p) => p,
            Err(e) => {
                let ns = packet::namespace_of(text);
                let reason = match e {
                    PacketError::AckIdOutOfRange => "bad_ack_id",
                    _ => "bad_packet",
                };
                self.unreadable(ns, reason, &e.to_string());
                return;
            }
        };
        match p {
            Packet::Connect { ns, data } => self.join(ns, data).await,
            Packet::Disconnect { ns } => {
                if let Some(i) = self.joined.iter().position(|j| &*j.ns == ns) {
                    let j = self.joined.swap_remove(i);
                    // The client left on purpose: its session is not kept for it.
                    if let Some(r) = &j.inbound.conn().recovery {
                        r.forget();
                    }
                    j.inbound.close().await;
                }
            }
            Packet::Event { ns, ack, args } => self.event(ns, ack, args).await,
            Packet::BinaryEvent {
                ns,
                ack,
                attachments,
            } => {
                self.attachments = self.attachments.saturating_add(attachments);
                let Some(j) = self.joined.iter().find(|j| &*j.ns == ns) else {
                    return;
                };
                let reply = j
                    .inbound
                    .unreadable("binary", "binary events are not accepted: send JSON");
                if let Some(id) = ack {
                    self.queue(packet::ack(ns, id, &reply));
                }
            }
            // Acks of server emits (the hub asks for none), and what only servers send.
            Packet::Ack { .. } | Packet::BinaryAck { .. } | Packet::ConnectError { .. } => {}
        }
    }

    /// An event to a joined namespace, handed to the inbound path; its ack, when asked
    /// for, is answered in the namespace.
    async fn event(&self, ns: &str, ack: Option<u64>, args: &str) {
        let Some(j) = self.joined.iter().find(|j| &*j.ns == ns) else {
            return;
        };
        let reply = ack.map(|id| -> Reply {
            let (out, ns) = (self.out.clone(), j.ns.clone());
            Box::new(move |v: Value| {
                let _ = out.try_send(Outgoing::Text(Bytes::from(packet::ack(&ns, id, &v))));
            })
        });
        j.inbound.frame(args.as_bytes(), reply).await;
    }

    /// A namespace connect: authenticated from its `auth` (or the handshake's query),
    /// answered, and registered with the hub; refused in the dialect's words, as a
    /// socketioxide socket is.
    async fn join(&mut self, ns: &str, data: &str) {
        if self.joined.iter().any(|j| &*j.ns == ns) {
            return;
        }
        let Some(route) = self.client.namespaces.iter().find(|n| n.ns == ns) else {
            self.queue(packet::connect_error(ns, "Invalid namespace"));
            return;
        };
        let ns: Arc<str> = Arc::from(ns);
        let auth = serde_json::from_str::<Value>(data).ok();
        let token =
            token::from_socketio_auth(auth.as_ref()).or_else(|| self.client.query_token.clone());
        let hub = &self.cx.hub;
        // A recovering route: the client's `pid` and `offset` take its session up again
        // when the history holds what it missed; else a new session, with a new pid.
        let (sid, recovery) = if route.recovery {
            let text = |k: &str| auth.as_ref().and_then(|a| a.get(k)).and_then(Value::as_str);
            let resume = match text("pid") {
                Some(pid) => hub.resumable(pid, text("offset"), &route.dialect).await,
                None => None,
            };
            match resume {
                Some(r) => (
                    r.saved.sid.clone(),
                    Some(Recover {
                        pid: Arc::from(r.saved.pid.as_str()),
                        resume: Some(Box::new(r)),
                        since: None,
                    }),
                ),
                None => (
                    new_sid(),
                    Some(Recover {
                        pid: Arc::from(new_pid()),
                        resume: None,
                        since: None,
                    }),
                ),
            }
        } else {
            (new_sid(), None)
        };
        // The client hears it joined before anything the hub sends it there.
        let pid = recovery.as_ref().map(|r| r.pid.clone());
        self.queue(packet::connected_with(&ns, &sid, pid.as_deref()));
        let said = crate::hub::attempts::said(auth.as_ref());
        let arrival = Arrival {
            dialect: route.dialect.clone(),
            transport: Transport::Socketio,
            socket_id: Some(sid),
            token,
            claimed_user: token::user_from_socketio_auth(auth.as_ref()),
            auth: route.auth.clone(),
            user_agent: self.client.user_agent.clone(),
            ip: Some(self.client.peer.ip()),
            outlet: Box::new(NamespaceOutlet {
                tx: self.out.clone(),
                ns: ns.clone(),
                recovers: recovery.is_some(),
            }),
            cancel: Some(self.cut.clone()),
            upstream: route.upstream.clone(),
            recovery,
        };
        match Box::pin(Inbound::open(hub, arrival)).await {
            Ok(inbound) => self.joined.push(Joined { ns, inbound }),
            Err(refusal) => {
                if let Some(f) = hub.refuse_connection(
                    &route.dialect,
                    Transport::Socketio,
                    &refusal,
                    Some((self.client.peer.ip(), said)),
                ) {
                    let _ = self.out.try_send(Outgoing::Text(in_namespace(&f, &ns)));
                }
                self.queue(packet::disconnect(&ns));
                tracing::debug!(peer = %self.client.peer, code = %refusal.code, "socket.io connection refused: {}", refusal.message);
                if self.joined.is_empty() {
                    // Nothing else on this connection: it ends after the refusal.
                    let _ = self
                        .out
                        .try_send(Outgoing::Close(1000, refusal.code.as_str().into()));
                }
            }
        }
    }

    fn queue(&self, text: String) {
        let _ = self.out.try_send(Outgoing::Text(Bytes::from(text)));
    }
}

/// `frame`'s text (an event packet of the root namespace) for namespace `ns`: shared as
/// it is for the root, copied with the namespace inserted for another.
fn in_namespace(frame: &OutFrame, ns: &str) -> Bytes {
    if ns == "/" {
        frame.text.clone()
    } else {
        Bytes::from(packet::in_namespace(&frame.text, ns))
    }
}

/// One namespace of a connection as the hub's outlet: the connection's queue, shared by
/// its namespaces.
struct NamespaceOutlet {
    tx: Sender<Outgoing>,
    /// The namespace (`/` or `/ws/app`).
    ns: Arc<str>,
    /// Its session is recovered when the client comes back.
    recovers: bool,
}

impl Outlet for NamespaceOutlet {
    fn send(&self, frame: &OutFrame) -> Result<(), SendFailure> {
        queue(&self.tx, Outgoing::Text(in_namespace(frame, &self.ns)))
    }

    fn close(&self, code: u16, reason: &str) {
        // The namespace is told it is left, then the connection closes: the queue and
        // the limits it broke are the whole connection's. A recovering session at a
        // restart is not told (a namespace disconnect would stop its client from
        // reconnecting): its transport closes, and the client comes back for it.
        let restart = matches!(code, 1012 | crate::hub::CLOSE_TRY_LATER);
        if !(self.recovers && restart) {
            let left = Bytes::from(packet::disconnect(&self.ns));
            let _ = self.tx.try_send(Outgoing::Text(left));
        }
        let _ = self.tx.try_send(Outgoing::Close(code, reason.to_string()));
    }
}

/// A random id (Engine.IO session, namespace socket): 16 URL-safe characters.
pub(super) fn new_sid() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits = fastrand::u128(..);
    (0..16)
        .map(|_| {
            let c = ALPHABET[(bits & 63) as usize] as char;
            bits >>= 6;
            c
        })
        .collect()
}
