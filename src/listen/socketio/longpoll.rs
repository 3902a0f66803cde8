//! Engine.IO v4 long polling, and the upgrade from it to a WebSocket, served by our own
//! engine on the paths that recover sessions (socketioxide's namespace CONNECT answer has
//! no `pid`, so its clients could not recover): the official client starts here by
//! default. A session is the same [`Connection`] a WebSocket client gets (namespaces,
//! acks, recovery), fed by POSTs (`\x1e`-separated packets, in order, through a bounded
//! inbox: a POST waits while it is full) and drained by GETs (at most one at a time; a
//! second is a protocol error that ends the session); the heartbeat ping is queued every
//! `ping_interval`, so a GET never waits longer. Upgrade: the client probes on a
//! WebSocket (`2probe` → `3probe`), the pending GET is answered with a noop (`6`), the
//! client sends `5`, and the session's queue and state move to the WebSocket, served
//! from then on by `websocket.rs`.

use super::Namespace;
use super::websocket::{Client, Connection, JoinBy, PING, new_sid, open_packet, run};
use crate::auth as token;
use crate::listen::Context;
use crate::listen::respond::{Body, json_response, read_body};
use crate::listen::websocket::{self, Outgoing, Receiver, Sender, WsConnection, bounded};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

/// Packets queued from POSTs before a POST waits.
const INBOX: usize = 64;

/// Engine.IO's packet separator in a polling body.
const SEPARATOR: char = '\u{1e}';

/// The long-polling sessions of one path, by Engine.IO sid.
#[derive(Default)]
pub(crate) struct PollSessions(Mutex<HashMap<String, Arc<PollSession>>>);

impl PollSessions {
    fn get(&self, sid: &str) -> Option<Arc<PollSession>> {
        self.lock().get(sid).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<PollSession>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remove(&self, sid: &str) {
        self.lock().remove(sid);
    }
}

/// A socket upgraded from polling, and the sender keeping its probe queue open until
/// the session's queue replaces it.
type Upgraded = (WsConnection, Sender<Outgoing>);

/// One long-polling session.
struct PollSession {
    sid: String,
    /// Packets from POSTs, to the session's task.
    inbox: mpsc::Sender<String>,
    /// What the client is sent, drained by one GET at a time (`None` once upgraded).
    queue: tokio::sync::Mutex<Option<Receiver<Outgoing>>>,
    /// A WebSocket probe succeeded: GETs are answered with a noop at once.
    probing: AtomicBool,
    probed: Notify,
    /// Where the probing WebSocket hands itself over.
    upgrade: Mutex<Option<oneshot::Sender<Upgraded>>>,
    /// The session's task ended (what is left in the queue is the client's last poll).
    ended: CancellationToken,
    /// Cut when a protocol error ends the session.
    cut: CancellationToken,
    /// The close packet is the next poll's, alone: socket.io-client hands the packets of
    /// a payload to the socket on the next tick, and a close in the same payload would
    /// have torn it down first (the goodbye before it lost).
    close_next: AtomicBool,
}

/// What a request asks of the engine.
enum Ask<'a> {
    Open,
    Poll(&'a str),
    Post(&'a str),
    Upgrade(&'a str),
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()).map_err(|e| match e {}).boxed());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=UTF-8"),
    );
    resp
}

fn engine_error(code: u8, message: &str) -> Response<Body> {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"code": code, "message": message}),
    )
}

/// Serves one Engine.IO request of a recovering path (every kind but a WebSocket opened
/// directly, which `websocket.rs` serves).
pub(crate) async fn serve(
    req: Request<Incoming>,
    namespaces: &Arc<[Namespace]>,
    sessions: &Arc<PollSessions>,
    cx: &Arc<Context>,
    peer: SocketAddr,
) -> Response<Body> {
    let query = req.uri().query().unwrap_or_default().to_string();
    let (mut eio, mut transport, mut sid) = (None, None, None);
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "EIO" => eio = Some(v.into_owned()),
            "transport" => transport = Some(v.into_owned()),
            "sid" => sid = Some(v.into_owned()),
            _ => {}
        }
    }
    if eio.as_deref() != Some("4") {
        return engine_error(5, "Unsupported protocol version");
    }
    let allowed = |t: &str| cx.cfg.socketio.transports.iter().any(|a| a == t);
    let ask = match (transport.as_deref(), sid.as_deref(), req.method()) {
        (Some("polling"), None, &Method::GET) if allowed("polling") => Ask::Open,
        (Some("polling"), Some(s), &Method::GET) => Ask::Poll(s),
        (Some("polling"), Some(s), &Method::POST) => Ask::Post(s),
        (Some("websocket"), Some(s), _) if allowed("websocket") => Ask::Upgrade(s),
        (Some("polling" | "websocket"), _, _) => return engine_error(3, "Bad request"),
        _ => return engine_error(0, "Transport unknown"),
    };
    let session = match &ask {
        Ask::Open => None,
        Ask::Poll(s) | Ask::Post(s) | Ask::Upgrade(s) => match sessions.get(s) {
            Some(session) => Some(session),
            None => return engine_error(1, "Session ID unknown"),
        },
    };
    match (ask, session) {
        (Ask::Open, _) => open(&req, namespaces, sessions, cx, peer),
        (Ask::Poll(_), Some(s)) => {
            let _poll = cx.polls.start();
            poll(&s, cx).await
        }
        (Ask::Post(_), Some(s)) => post(req, &s, cx).await,
        (Ask::Upgrade(_), Some(s)) => upgrade(req, s, cx, peer),
        _ => engine_error(1, "Session ID unknown"),
    }
}

/// A new session: its task started, the open packet answered.
fn open(
    req: &Request<Incoming>,
    namespaces: &Arc<[Namespace]>,
    sessions: &Arc<PollSessions>,
    cx: &Arc<Context>,
    peer: SocketAddr,
) -> Response<Body> {
    let sid = new_sid();
    let client = Client {
        namespaces: namespaces.clone(),
        query_token: token::from_query(req.uri().query()),
        user_agent: websocket::user_agent(req),
        peer,
    };
    let (out, queue) = bounded::<Outgoing>(cx.cfg.limits.outbound_queue);
    let c = Connection::new(client, cx.clone(), out);
    let (inbox, inbox_rx) = mpsc::channel(INBOX);
    let (up_tx, up_rx) = oneshot::channel();
    let session = Arc::new(PollSession {
        sid: sid.clone(),
        inbox,
        queue: tokio::sync::Mutex::new(Some(queue)),
        probing: AtomicBool::new(false),
        probed: Notify::new(),
        upgrade: Mutex::new(Some(up_tx)),
        ended: CancellationToken::new(),
        cut: c.cut.clone(),
        close_next: AtomicBool::new(false),
    });
    sessions.lock().insert(sid.clone(), session.clone());
    cx.connections
        .spawn(drive(c, session, inbox_rx, up_rx, sessions.clone()));
    text(StatusCode::OK, open_packet(cx, &sid, true))
}

/// A session's task: the client's packets in order, the heartbeat, until it ends or
/// upgrades (then the WebSocket serves it).
async fn drive(
    mut c: Connection,
    s: Arc<PollSession>,
    mut inbox: mpsc::Receiver<String>,
    up: oneshot::Receiver<Upgraded>,
    sessions: Arc<PollSessions>,
) {
    let cx = c.cx.clone();
    let sio = &cx.cfg.socketio;
    let idle_limit = sio.ping_interval + sio.ping_timeout;
    let mut join_by: JoinBy = Some(Box::pin(tokio::time::sleep(sio.connect_timeout)));
    let mut beat = cx.heartbeat.beat();
    let mut last_heard = Instant::now();
    let mut up = Some(up);
    let upgraded = loop {
        tokio::select! {
            () = c.cut.cancelled() => break None,
            () = async { if let Some(t) = &mut join_by { t.await } }, if join_by.is_some() => {
                tracing::debug!(peer = %c.client.peer, "socket.io: no namespace joined in time");
                break None;
            }
            () = beat.tick() => {
                if last_heard.elapsed() > idle_limit {
                    tracing::debug!(peer = %c.client.peer, "socket.io (polling): ping timeout");
                    break None;
                }
                let _ = c.out.try_send(Outgoing::Text(Bytes::from_static(PING.as_bytes())));
            }
            p = inbox.recv() => {
                let Some(p) = p else { break None };
                last_heard = Instant::now();
                if !Box::pin(c.engine_packet(&p)).await {
                    break None;
                }
                if c.has_joined() {
                    join_by = None;
                }
            }
            u = async { if let Some(r) = &mut up { r.await.ok() } else { None } }, if up.is_some() => {
                match u {
                    Some(socket) => break Some(socket),
                    None => up = None,
                }
            }
        }
    };
    if let Some((mut socket, probe)) = upgraded {
        // No GET holds the queue for long now: probing answers them at once.
        let queue = s.queue.lock().await.take();
        sessions.remove(&s.sid);
        if let Some(queue) = queue {
            socket.replace_queue(queue);
            drop(probe);
            tracing::debug!(peer = %c.client.peer, "socket.io: upgraded from polling");
            run(socket, c, join_by).await;
            return;
        }
    }
    s.ended.cancel();
    let _ = c.leave_all().await;
    // The client fetches what is left (its namespaces' goodbye, the close) with its next
    // poll; the session is forgotten after a heartbeat's time. Not in this task: the
    // connection is over (a drain waits for connection tasks, not for this).
    tokio::spawn(async move {
        tokio::time::sleep(idle_limit).await;
        sessions.remove(&s.sid);
    });
}

/// One GET: what is queued (waiting for something when nothing is), packets joined by
/// `\x1e`, at most `limits.max_frame` bytes.
async fn poll(s: &Arc<PollSession>, cx: &Context) -> Response<Body> {
    let Ok(mut held) = s.queue.try_lock() else {
        // Two GETs at once: a protocol error (Engine.IO closes the session).
        s.cut.cancel();
        return engine_error(3, "Bad request");
    };
    let Some(queue) = held.as_mut() else {
        return engine_error(3, "Bad request");
    };
    // Listening for a probe before looking: one between would not be missed.
    let probed = s.probed.notified();
    tokio::pin!(probed);
    probed.as_mut().enable();
    if s.probing.load(Ordering::Acquire) {
        return text(StatusCode::OK, "6");
    }
    if s.close_next.load(Ordering::Acquire) {
        return text(StatusCode::OK, "1");
    }
    let limit = cx.cfg.limits.max_frame;
    let first = tokio::select! {
        item = std::future::poll_fn(|t| queue.poll_recv(t)) => item,
        () = &mut probed => return text(StatusCode::OK, "6"),
        () = s.ended.cancelled() => queue.try_recv(),
    };
    let Some(first) = first else {
        // Nothing more will come: the session is over.
        return text(StatusCode::OK, "1");
    };
    let mut body: Vec<u8> = Vec::with_capacity(256);
    let mut closing = append(&mut body, first);
    if !closing {
        queue.recv_while(|item| {
            closing = append(&mut body, item);
            !closing && body.len() < limit
        });
    }
    if closing && body.len() > 1 {
        // Packets before the close: they go now, the close with the next poll.
        body.truncate(body.len() - 2);
        s.close_next.store(true, Ordering::Release);
    }
    if body.is_empty() {
        // Only transport frames (WebSocket pings) were queued.
        body.push(b'6');
    }
    text(StatusCode::OK, body)
}

/// Appends one queued item to a polling body; `true` when it ends the session (the
/// engine's close packet).
fn append(body: &mut Vec<u8>, item: Outgoing) -> bool {
    let (bytes, last): (&[u8], bool) = match &item {
        Outgoing::Text(t) => (t, false),
        Outgoing::Close(..) => (b"1", true),
        Outgoing::Ping | Outgoing::Pong(_) => return false,
    };
    if !body.is_empty() {
        body.push(SEPARATOR as u8);
    }
    body.extend_from_slice(bytes);
    last
}

/// One POST: its packets, in order, to the session's task; answered `ok` once queued.
async fn post(req: Request<Incoming>, s: &Arc<PollSession>, cx: &Context) -> Response<Body> {
    let bytes = match read_body(req.into_body(), cx.cfg.limits.max_frame).await {
        Ok(b) => b,
        Err(too_large) => return too_large,
    };
    let Ok(body) = std::str::from_utf8(&bytes) else {
        return engine_error(3, "Bad request: a polling body is UTF-8 text");
    };
    for packet in body.split(SEPARATOR) {
        if s.inbox.send(packet.to_string()).await.is_err() {
            return engine_error(1, "Session ID unknown");
        }
    }
    text(StatusCode::OK, "ok")
}

/// A WebSocket for a polling session: probed, then handed to the session's task.
fn upgrade(
    mut req: Request<Incoming>,
    s: Arc<PollSession>,
    cx: &Arc<Context>,
    peer: SocketAddr,
) -> Response<Body> {
    let wait = cx.cfg.socketio.connect_timeout;
    websocket::accept(&mut req, cx, peer, move |mut up| async move {
        let Some(ws) = up.open().await else {
            return;
        };
        let (tx, rx) = bounded::<Outgoing>(8);
        let mut socket = WsConnection::new(ws, rx);
        let probe = tokio::time::timeout(wait, async {
            loop {
                match socket.next().await {
                    Some(Ok(Message::Text(t))) if t.as_str() == "2probe" => {
                        let _ = tx.try_send(Outgoing::Text(Bytes::from_static(b"3probe")));
                        s.probing.store(true, Ordering::Release);
                        s.probed.notify_waiters();
                    }
                    Some(Ok(Message::Text(t))) if t.as_str() == "5" => return true,
                    Some(Ok(m @ (Message::Ping(_) | Message::Pong(_)))) => {
                        websocket::answer_control(&m, &tx);
                    }
                    _ => return false,
                }
            }
        })
        .await;
        let handed = match probe {
            Ok(true) => s
                .upgrade
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
                .is_some_and(|to| to.send((socket, tx)).is_ok()),
            _ => false,
        };
        if !handed {
            // The upgrade failed: the session goes on polling.
            s.probing.store(false, Ordering::Release);
            tracing::debug!(%peer, "socket.io: an upgrade from polling failed");
        }
    })
}
