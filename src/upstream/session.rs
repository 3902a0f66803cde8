//! One fronted client's session to its backend. The listener hands it the client's
//! frames in order (decoded in the client's dialect, routed to the backend, the hub or
//! both, encoded in the backend's dialect); a driver task reads the backend (decoded
//! in the backend's dialect, encoded in the client's) and answers waiting acks. A
//! backend that refuses, fails or closes reaches the client as its dialect's error and
//! close, with a reconnect hint; the client leaving closes the backend session.

use super::acks::{Key, Pending, Reply};
use super::link::{self, LinkTx, OpenError};
use super::{Dest, Upstream, answer};
use crate::config::Transport;
use crate::dialect::{DecodeContext, Direction};
use crate::event::Event;
use crate::hub::{Conn, ErrorCode, Hub, Refusal};
use crate::socketio::client::{Incoming, SendError};
use crate::telemetry::{UpstreamEvent, UpstreamLabels, UpstreamOutcome};
use serde_json::{Map, Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, OnceCell, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// WebSocket close code telling a client the backend went away: reconnect.
pub const CLOSE_BACKEND_GONE: u16 = 1012;
/// WebSocket close code for a backend that could not be reached: try again later.
pub const CLOSE_BACKEND_UNREACHABLE: u16 = 1013;
/// WebSocket close code for credentials the backend refused.
pub const CLOSE_BACKEND_REFUSED: u16 = 4401;
/// The reconnect hint (milliseconds) sent with a backend failure.
pub const RETRY_AFTER_MS: u64 = 1000;

/// A fronted client's session.
pub struct Session {
    up: Arc<Upstream>,
    hub: Hub,
    conn: Arc<Conn>,
    /// The token as the backend gets it (re-signed if configured).
    token: Option<String>,
    link: OnceCell<LinkTx>,
    pending: Mutex<Pending>,
    /// A new ack waits: the driver looks at its deadline.
    wake: Notify,
    next_ack: AtomicU64,
    ended: CancellationToken,
}

impl Session {
    /// Decoding the backend's frames: no user (the backend says who sent what).
    fn decode_context(&self) -> DecodeContext<'_> {
        DecodeContext {
            user: None,
            instance: self.hub.instance(),
            connection: &self.conn.socket_id,
        }
    }

    /// A session for `conn` (registered with the hub: as a member when the upstream
    /// shares events with the hub). Opens the backend session now unless it is lazy.
    /// A token that cannot be re-signed is logged and not forwarded: the backend then
    /// refuses the session, and the client hears that in its dialect.
    pub async fn start(
        up: Arc<Upstream>,
        hub: Hub,
        conn: Arc<Conn>,
        token: Option<String>,
        claims: Option<&Map<String, Value>>,
    ) -> Arc<Session> {
        let backend_token = match up.creds.backend_token(token.as_deref(), claims) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(upstream = %up.cfg.name, error = %e, "cannot make the backend's token");
                None
            }
        };
        let s = Arc::new(Session {
            pending: Mutex::new(Pending::new(up.cfg.max_acks)),
            up,
            hub,
            conn,
            token: backend_token,
            link: OnceCell::new(),
            wake: Notify::new(),
            next_ack: AtomicU64::new(1),
            ended: CancellationToken::new(),
        });
        match s.up.cfg.connect {
            crate::config::ConnectMode::Eager => {
                if let Err(Some(e)) = s.open().await {
                    s.refused(&e);
                }
            }
            crate::config::ConnectMode::Lazy => s.ready(),
        }
        s
    }

    /// The client left: the backend session closes, waiting acks are dropped.
    pub fn end(&self) {
        self.ended.cancel();
    }

    /// The open backend session, opening it if needed. `Err(None)`: the client is
    /// already gone; `Err(Some(e))`: the backend refused or could not be reached (the
    /// caller tells the client, [`Session::refused`]).
    async fn open(self: &Arc<Self>) -> Result<&LinkTx, Option<OpenError>> {
        self.link
            .get_or_try_init(|| async {
                if self.ended.is_cancelled() || self.conn.is_closed() {
                    return Err(None);
                }
                let hs = self.up.creds.handshake(self.token.as_deref());
                match link::open(&self.up.cfg, &hs).await {
                    Ok((tx, rx)) => {
                        let me = self.clone();
                        tokio::spawn(async move { me.drive(rx).await });
                        Ok(tx)
                    }
                    Err(e) => Err(Some(e)),
                }
            })
            .await
    }

    /// The client's ready event, when the backend's dialect has none of its own and the
    /// hub has not sent one.
    fn ready(&self) {
        if self.up.announces_ready || self.conn.member {
            return;
        }
        let mut body = Map::new();
        body.insert("userId".into(), json!(self.conn.user.id));
        if let Some(n) = &self.conn.user.name {
            body.insert("userName".into(), json!(n));
        }
        body.insert("socketId".into(), json!(&*self.conn.socket_id));
        body.insert("rooms".into(), json!([]));
        self.hub
            .send_event(&self.conn, &Event::new("session.ready", body));
    }

    /// Counts and traces one event relayed `up` to the backend or `down` from it.
    fn relayed(&self, ev: &Event, direction: &'static str) {
        self.hub
            .metrics()
            .upstream_events
            .get_or_create(&UpstreamEvent {
                upstream: self.up.label.clone(),
                direction,
                event: crate::telemetry::Name(ev.name.clone()),
            })
            .inc();
        tracing::trace!(trace_id = %ev.meta.trace_id, event = %ev.name, upstream = %self.up.cfg.name, direction, "relayed");
    }

    fn count(&self, outcome: &'static str) {
        self.hub.metrics().upstream(&self.up.label, outcome);
    }

    /// The backend refused or could not be reached: the client hears it in its dialect
    /// and is closed.
    fn refused(&self, e: &OpenError) {
        let (refusal, code, outcome) = match e {
            OpenError::Refused(m) => {
                let lower = m.to_ascii_lowercase();
                let code = if lower.contains("expired") {
                    ErrorCode::TokenExpired
                } else {
                    ErrorCode::Unauthorized
                };
                (
                    Refusal::new(code, format!("the backend refused the session: {m}")),
                    CLOSE_BACKEND_REFUSED,
                    "refused",
                )
            }
            OpenError::Unreachable(_) | OpenError::Timeout(_) => (
                Refusal::new(
                    ErrorCode::Unavailable,
                    format!("{e}: reconnect in a moment"),
                ),
                CLOSE_BACKEND_UNREACHABLE,
                "unreachable",
            ),
        };
        tracing::info!(upstream = %self.up.cfg.name, conn = self.conn.id, error = %e, "upstream session not opened");
        self.count(outcome);
        self.tell_and_close(&refusal, code);
    }

    fn tell_and_close(&self, refusal: &Refusal, code: u16) {
        let mut ev = Hub::error_event(refusal);
        if refusal.code == ErrorCode::Unavailable {
            ev.body.insert("retryAfter".into(), json!(RETRY_AFTER_MS));
        }
        self.hub.send_event(&self.conn, &ev);
        self.conn.close(code, refusal.code.as_str());
    }

    /// Where a client's intent goes: the backend, the hub, or both.
    pub fn destination(&self, name: &str) -> Dest {
        self.up.routing.intent(name)
    }

    fn refuse(&self, refusal: &Refusal, ev: &Event, reply: Option<Reply>) {
        let ack = self.hub.refuse_event(&self.conn, refusal, ev);
        if let Some(r) = reply {
            r(ack);
        }
    }

    /// An intent to the backend, in its dialect; `reply` answers the client's ack when
    /// the backend does.
    pub async fn send_up(self: &Arc<Self>, ev: Event, reply: Option<Reply>) {
        let reg = self.hub.registry();
        let Some(d) = reg.dialect(&self.up.cfg.dialect) else {
            let r = Refusal::new(
                ErrorCode::Unavailable,
                "the backend's dialect is not loaded",
            );
            return self.refuse(&r, &ev, reply);
        };
        let mut buf = Vec::with_capacity(256);
        if let Err(e) = d.encode_frame(&ev, Direction::Up, &mut buf) {
            let why = d
                .lack_reason(&ev.name)
                .map_or_else(|| e.to_string(), str::to_owned);
            let r = Refusal::new(
                ErrorCode::Unsupported,
                format!("the backend ({}) cannot take `{}`: {why}", d.name, ev.name),
            );
            return self.refuse(&r, &ev, reply);
        }
        let framing_has_acks = self.up.cfg.transport == Transport::Socketio;
        drop(reg);
        let link = match self.open().await {
            Ok(link) => link,
            Err(e) => {
                // The ack first: the close that follows ends the client's transport.
                if let Some(r) = reply {
                    let error = e.as_ref().map_or_else(
                        || "the backend session is closed".to_string(),
                        ToString::to_string,
                    );
                    let code = match e {
                        Some(OpenError::Refused(_)) => "unauthorized",
                        _ => "unavailable",
                    };
                    r(json!({"success": false, "code": code, "error": error}));
                }
                if let Some(e) = e {
                    self.refused(&e);
                }
                return;
            }
        };
        // The waiting ack goes in before the frame goes out: a fast answer finds it.
        let mut ack_id = None;
        let mut key = None;
        if let Some(r) = reply {
            let k = if framing_has_acks {
                let id = self.next_ack.fetch_add(1, Ordering::Relaxed);
                ack_id = Some(id);
                Key::Ack(id)
            } else {
                Key::Trace(ev.meta.trace_id.to_string())
            };
            let deadline = Instant::now() + self.up.cfg.ack_timeout;
            let added = self.pending.lock().unwrap_or_else(|p| p.into_inner()).add(
                k.clone(),
                ev.name.clone(),
                r,
                deadline,
            );
            match added {
                Ok(()) => {
                    key = Some(k);
                    self.wake.notify_one();
                }
                Err(r) => {
                    ack_id = None;
                    r(
                        json!({"success": false, "code": "unavailable", "error": "too many events waiting for the backend's answer"}),
                    );
                }
            }
        }
        // serde_json writes UTF-8 only.
        let text = String::from_utf8(buf).unwrap_or_default();
        match link.send(text, ack_id) {
            Ok(()) => {
                self.relayed(&ev, "up");
            }
            Err(e) => {
                let waiting = key.and_then(|k| {
                    self.pending
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .take(&k)
                });
                let r = match e {
                    SendError::Full => Refusal::new(
                        ErrorCode::Unavailable,
                        "the backend is not keeping up: the event was not sent, send it again",
                    ),
                    SendError::Closed => {
                        Refusal::new(ErrorCode::Unavailable, "the backend session has closed")
                    }
                };
                self.refuse(&r, &ev, waiting.map(|w| w.reply));
            }
        }
    }

    /// Reads the backend until it or the client goes.
    async fn drive(self: Arc<Self>, mut rx: mpsc::Receiver<Incoming>) {
        let up = &self.up;
        let gauge = self
            .hub
            .metrics()
            .upstream_sessions
            .get_or_create(&UpstreamLabels {
                upstream: up.label.clone(),
            })
            .clone();
        gauge.inc();
        self.count("opened");
        tracing::debug!(upstream = %up.cfg.name, conn = self.conn.id, "upstream session open");
        if up.cfg.connect == crate::config::ConnectMode::Eager {
            self.ready();
        }
        let why = loop {
            let deadline = self
                .pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .next_deadline();
            let m = tokio::select! {
                () = self.ended.cancelled() => break None,
                () = self.conn.cancel.cancelled() => break None,
                () = self.wake.notified() => continue,
                () = sleep_until(deadline) => {
                    self.expire();
                    continue;
                }
                m = rx.recv() => m,
            };
            match m {
                Some(Incoming::Event { text, ack }) => self.backend_frame(&text, ack),
                Some(Incoming::Ack { id, text }) => self.backend_ack(id, &text),
                Some(Incoming::Closed(why)) => break Some(why),
                None => break Some("connection ended".to_string()),
            }
        };
        gauge.dec();
        if let Some(link) = self.link.get() {
            link.close();
        }
        let left: Vec<_> = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain();
        for w in left {
            (w.reply)(
                json!({"success": false, "code": "unavailable", "error": "the backend session ended before answering"}),
            );
        }
        match why {
            Some(why) if !self.ended.is_cancelled() && !self.conn.is_closed() => {
                tracing::info!(upstream = %up.cfg.name, conn = self.conn.id, %why, "the backend closed the session");
                self.count("closed_by_backend");
                let r = Refusal::new(
                    ErrorCode::Unavailable,
                    format!("the backend closed the session ({why}): reconnect"),
                );
                self.tell_and_close(&r, CLOSE_BACKEND_GONE);
            }
            _ => self.count("closed_by_client"),
        }
    }

    fn expire(&self) {
        let gone = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .expired(Instant::now());
        for w in gone {
            (w.reply)(json!({
                "success": false,
                "code": "timeout",
                "error": format!("the backend did not answer `{}` within {:?}", w.intent, self.up.cfg.ack_timeout),
            }));
        }
    }

    fn answered(&self, key: &Key, ack: impl FnOnce(&str) -> Value) {
        let w = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(key);
        if let Some(w) = w {
            self.hub
                .metrics()
                .upstream_ack_seconds
                .get_or_create(&UpstreamLabels {
                    upstream: self.up.label.clone(),
                })
                .observe(w.since.elapsed().as_secs_f64());
            (w.reply)(ack(&w.intent));
        }
    }

    /// The backend's Socket.IO ack to one of our events.
    fn backend_ack(&self, id: u64, args: &str) {
        let reg = self.hub.registry();
        let Some(d) = reg.dialect(&self.up.cfg.dialect) else {
            return;
        };
        self.answered(&Key::Ack(id), |intent| {
            answer::from_ack(d, intent, &self.up.answers, args, &self.decode_context())
        });
    }

    /// A frame from the backend: its facts to the client, in the client's dialect.
    fn backend_frame(&self, text: &str, ack: Option<u64>) {
        let reg = self.hub.registry();
        let Some(d) = reg.dialect(&self.up.cfg.dialect) else {
            return;
        };
        let events = match d.decode_frame(
            text.as_bytes(),
            Some(Direction::Down),
            &self.decode_context(),
        ) {
            Ok(evs) => evs,
            Err(e) => {
                tracing::debug!(upstream = %self.up.cfg.name, error = %e, "backend frame not understood");
                self.hub
                    .metrics()
                    .upstream_failures
                    .get_or_create(&UpstreamOutcome {
                        upstream: self.up.label.clone(),
                        outcome: e.code(),
                    })
                    .inc();
                if let (Some(id), Some(link)) = (ack, self.link.get()) {
                    link.ack(id, &json!({"success": false, "error": e.to_string()}));
                }
                return;
            }
        };
        drop(reg);
        for mut ev in events {
            if &*ev.name == "session.error" && !ev.body.contains_key("reason") {
                // Dialects that carry only a reason (Clerk) still hear why.
                if let Some(code) = ev.body.get("code").cloned() {
                    ev.body.insert("reason".into(), code);
                }
            }
            // Only a raw WebSocket backend answers by trace id; most frames find no ack
            // waiting, and then cost no key.
            let waiting = self.up.cfg.transport == Transport::Websocket
                && self
                    .pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .next_deadline()
                    .is_some();
            if waiting {
                let key = Key::Trace(ev.meta.trace_id.to_string());
                self.answered(&key, |_| answer::from_event(&ev));
            }
            if !self.up.routing.from_backend(&ev.name) {
                continue;
            }
            self.relayed(&ev, "down");
            self.hub.send_event(&self.conn, &ev);
        }
        // The backend asked for an ack: the event is on its way to the client.
        if let (Some(id), Some(link)) = (ack, self.link.get()) {
            link.ack(id, &json!({"success": true}));
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
