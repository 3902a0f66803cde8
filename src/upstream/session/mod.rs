//! One fronted client's session to its backend: its life (opened when the client
//! connects, or at its first event for the backend; a refusal or an unreachable backend
//! told to the client in its dialect and closed, with a reconnect hint; ended when the
//! client leaves). The inbound path (`route`) routes the client's intents here (`up.rs`:
//! encoded in the backend's dialect); a driver task reads the backend (`down.rs`: decoded
//! in the backend's dialect, encoded in the client's) and answers waiting acks.

mod down;
mod up;

use super::acks::{Pending, Reply};
use super::link::{self, LinkTx, OpenError};
use super::{Dest, Upstream};
use crate::dialect::DecodeContext;
use crate::event::Event;
use crate::hub::{Conn, ErrorCode, Hub, Refusal};
use crate::telemetry::UpstreamEvent;
use serde_json::{Map, Value, json};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, OnceCell};
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
                match link::open(&self.up, &hs).await {
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
}
