//! The one inbound path. Every transport hands its client's connection and frames here:
//! a connection is identified from its token and registered with the hub (with a backend
//! session when its route fronts one); each frame is admitted (size and rate limits),
//! decoded in the client's dialect (`admit.rs`), and each canonical event routed to the
//! hub, the backend, or both (the upstream's `hub`/`shared` lists), its ack answered by
//! whichever owns it.

mod admit;

use crate::auth::{AuthError, Provider};
use crate::config::Transport;
use crate::hub::{Ack, Conn, Hub, NewConn, Outlet, Recover, Refusal, Registration, Reply};
use crate::upstream::{Dest, Ident, Session, Upstream};
use serde_json::{Value, json};
use std::net::IpAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What a listener knows of a connecting client.
pub struct Arrival {
    /// The dialect its route speaks.
    pub dialect: Arc<str>,
    /// Its transport.
    pub transport: Transport,
    /// The id the client sees, when the transport has one (a Socket.IO socket id).
    pub socket_id: Option<String>,
    /// Its token, wherever its transport carried it.
    pub token: Option<String>,
    /// The user id it sent beside its token (Clerk's `auth.userId`): must be the
    /// token's user.
    pub claimed_user: Option<String>,
    /// The provider verifying its route's tokens.
    pub auth: Arc<Provider>,
    /// `User-Agent`.
    pub user_agent: Option<Arc<str>>,
    /// Peer address.
    pub ip: Option<IpAddr>,
    /// Where its frames go.
    pub outlet: Box<dyn Outlet>,
    /// The token the connection is cut with, when the transport shares one between
    /// several hub connections (the namespaces of one Socket.IO connection).
    pub cancel: Option<CancellationToken>,
    /// The backend its route fronts, if any.
    pub upstream: Option<Arc<Upstream>>,
    /// On a recovering route: its pid, and the session it takes up again.
    pub recovery: Option<Recover>,
}

/// One client connection's inbound side: its registration with the hub, and its
/// session to a backend when its route fronts one. Dropping it unregisters the
/// connection (see [`Registration`]).
pub struct Inbound {
    conn: Registration,
    session: Option<Arc<Session>>,
    hub: Hub,
}

/// Who a connecting client is, from its token: verified here, or as the fronted
/// backend's configuration says (forwarded, checked, re-signed). A user id sent beside
/// the token must be the verified token's user.
async fn identify(a: &Arrival) -> Result<Ident, AuthError> {
    let token = a.token.as_deref();
    let ident = match &a.upstream {
        Some(up) => up.identify(&a.auth, token).await?,
        None => {
            let v = a.auth.verify(token.ok_or(AuthError::Missing)?).await?;
            Ident {
                jti: v.jti().map(str::to_owned),
                user: v.identity.user,
                rooms: v.identity.rooms,
                claims: None,
            }
        }
    };
    let verified = a.upstream.as_ref().is_none_or(|u| u.cfg.verifies());
    if verified
        && let Some(claimed) = &a.claimed_user
        && *claimed != ident.user.id
    {
        return Err(AuthError::UserMismatch);
    }
    Ok(ident)
}

impl Inbound {
    /// Identifies and registers a connecting client, and opens its backend session when
    /// its route fronts one.
    ///
    /// # Errors
    /// Its token is refused, or a connection limit is reached; the listener tells the
    /// client in its dialect ([`Hub::refuse_connection`]) and closes it.
    pub async fn open(hub: &Hub, a: Arrival) -> Result<Inbound, Refusal> {
        let identity = identify(&a).await.map_err(|e| {
            tracing::info!(provider = a.auth.name(), reason = e.reason(), dialect = %a.dialect, "connection refused: {e}");
            Refusal::from(&e)
        })?;
        hub.check_revoked(&identity.user.id, identity.jti.as_deref())
            .await?;
        let member = a.upstream.as_ref().is_none_or(|u| u.cfg.uses_hub());
        let conn = hub
            .connect(NewConn {
                dialect: a.dialect,
                transport: a.transport,
                socket_id: a.socket_id,
                user: identity.user,
                claims: identity.rooms,
                user_agent: a.user_agent,
                ip: a.ip,
                outlet: a.outlet,
                member,
                upstream: a.upstream.as_ref().map(|u| Arc::from(u.cfg.name.as_str())),
                cancel: a.cancel,
                recovery: a.recovery,
            })
            .await?;
        let session = match a.upstream {
            Some(up) => Some(
                Box::pin(Session::start(
                    up,
                    hub.clone(),
                    conn.conn().clone(),
                    a.token,
                    identity.claims.as_ref(),
                ))
                .await,
            ),
            None => None,
        };
        Ok(Inbound {
            conn,
            session,
            hub: hub.clone(),
        })
    }

    /// The hub's connection.
    pub fn conn(&self) -> &Arc<Conn> {
        self.conn.conn()
    }

    /// One frame (JSON text) the client sent, in order: admitted, decoded, and each of
    /// its events routed; `reply` answers the client's ack, if it asked for one.
    ///
    /// The work is boxed: a connection's task then holds a pointer while it waits, not
    /// the whole state machine (which an idle connection would carry).
    pub async fn frame(&self, text: &[u8], reply: Option<Reply>) {
        Box::pin(self.route(text, reply)).await;
    }

    async fn route(&self, text: &[u8], mut reply: Option<Reply>) {
        let conn = self.conn.conn();
        let events = match admit::admit(&self.hub, conn, text) {
            Ok(evs) => evs,
            Err(ack) => {
                if let Some(r) = reply {
                    r(ack);
                }
                return;
            }
        };
        let Some(session) = &self.session else {
            // The hub's: one ack per event, several as `results`.
            let mut acks: Vec<Ack> = Vec::with_capacity(events.len());
            for ev in events {
                acks.push(self.hub.handle_event(conn, &ev).await);
            }
            if let Some(r) = reply {
                r(match acks.len() {
                    1 => acks.pop().unwrap_or(Value::Null),
                    _ => {
                        json!({"success": acks.iter().all(|a| a["success"] == true), "results": acks})
                    }
                });
            }
            return;
        };
        // A fronted client: the backend answers what it is sent.
        let mut last = json!({"success": true});
        for ev in events {
            match session.destination(&ev.name) {
                Dest::Hub => last = self.hub.handle_event(conn, &ev).await,
                Dest::Upstream => session.send_up(ev, reply.take()).await,
                Dest::Both => {
                    self.hub.handle_event(conn, &ev).await;
                    session.send_up(ev, reply.take()).await;
                }
            }
        }
        if let Some(r) = reply {
            r(last);
        }
    }

    /// Refuses a frame the transport could not read (see [`Hub::refuse_unreadable`]).
    pub fn unreadable(&self, reason: &'static str, message: &str) -> Ack {
        self.hub
            .refuse_unreadable(self.conn.conn(), reason, message)
    }

    /// Activity on the connection (a ping, a pong) renews its presence.
    pub fn touch(&self) {
        self.conn.conn().seen(crate::event::now_millis());
    }

    /// The client left (or the server cut it): its backend session closes, the hub
    /// forgets it, its user's presence is updated.
    pub async fn close(self) {
        if let Some(s) = &self.session {
            s.end();
        }
        self.conn.end().await;
    }
}
