//! The connection registry: connections register (within the instance's and the
//! user's limits) and unregister here; their counts, the shutdown drain, and closing
//! everyone at once.

use super::{Conn, ConnId, ErrorCode, Hub, NewConn, Refusal, Registration, presence, read, write};
use crate::bus::RoomKey;
use crate::config::Transport;
use crate::event::now_millis;
use crate::telemetry::{ConnLabels, Name};
use serde_json::{Map, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub(super) fn conn_labels(conn: &Conn) -> ConnLabels {
    ConnLabels {
        dialect: Name(conn.dialect.clone()),
        transport: match conn.transport {
            Transport::Websocket => "websocket",
            Transport::Socketio => "socketio",
        },
    }
}

impl Hub {
    /// Connections open now.
    pub fn connection_count(&self) -> usize {
        read(&self.state.conns).len()
    }

    /// Every open connection.
    pub fn connections(&self) -> Vec<Arc<Conn>> {
        read(&self.state.conns).values().cloned().collect()
    }

    /// Registers an authenticated connection: it joins its personal room and the rooms
    /// its token grants, gets its dialect's ready event, and its user's presence is
    /// announced if this is the user's first connection. The registration is the
    /// connection's: its task owns it, and dropping it unregisters the connection.
    ///
    /// # Errors
    /// Over `limits.max_connections` or `limits.max_connections_per_user`: the listener
    /// refuses the connection in the dialect's words ([`Hub::refuse_connection`]).
    pub async fn connect(&self, n: NewConn) -> Result<Registration, Refusal> {
        let conn = Box::pin(self.register(n)).await?;
        Ok(Registration::new(self.clone(), conn))
    }

    async fn register(&self, mut n: NewConn) -> Result<Arc<Conn>, Refusal> {
        let inner = &self.state;
        let s = &inner.settings;
        if let Some(ip) = n.ip {
            inner.attempts.succeeded(ip, &n.dialect);
        }
        if !s.client_info {
            // Personal data the master service does not need is not kept at all.
            n.user_agent = None;
            n.ip = None;
        }
        {
            let conns = write(&inner.conns);
            if inner.draining.load(Ordering::SeqCst) {
                return Err(Refusal::new(
                    ErrorCode::Unavailable,
                    "this server is shutting down: connect again",
                ));
            }
            let mut per_user = inner.per_user.lock().unwrap_or_else(|p| p.into_inner());
            let mine = per_user.get(&n.user.id).copied().unwrap_or(0);
            if conns.len() >= s.max_connections {
                return Err(Refusal::new(
                    ErrorCode::TooManyConnections,
                    format!(
                        "this server is at its limit of {} connections: try again later",
                        s.max_connections
                    ),
                ));
            }
            if mine >= s.max_connections_per_user {
                return Err(Refusal::new(
                    ErrorCode::TooManyConnections,
                    format!(
                        "user {} already has {mine} connections (the limit)",
                        n.user.id
                    ),
                ));
            }
            per_user.insert(n.user.id.clone(), mine + 1);
            drop(conns);
        }
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        // A recovering connection holds what it is sent until its replay is written.
        let mut conn = Conn::new(id, n, now_millis(), s.burst);
        let resume = conn.recovery.as_mut().and_then(|r| r.take_resume());
        let since = conn.recovery.as_mut().and_then(|r| r.take_since());
        let conn = Arc::new(conn);
        write(&inner.conns).insert(id, conn.clone());
        let labels = conn_labels(&conn);
        inner.metrics.connections.get_or_create(&labels).inc();
        inner
            .metrics
            .connections_opened
            .get_or_create(&labels)
            .inc();
        if !conn.member {
            tracing::debug!(conn = id, user = %conn.user.id, dialect = %conn.dialect, "connected (relayed)");
            return Ok(conn);
        }
        // The dialect's room before the personal room: a bus subscribes in that order,
        // so a client's personal channel heard means its dialect's is too.
        if inner.registry().reaches_beyond_rooms(&conn.dialect) {
            inner.join(&conn, RoomKey::Dialect(conn.dialect.clone()));
        }
        inner.join(&conn, RoomKey::user(&conn.user.id));
        for room in conn
            .claims
            .clone()
            .unwrap_or_default()
            .iter()
            .take(s.max_rooms)
        {
            inner.join(&conn, RoomKey::conversation(room));
        }
        let mut body = Map::new();
        body.insert("userId".into(), json!(conn.user.id));
        if let Some(n) = &conn.user.name {
            body.insert("userName".into(), json!(n));
        }
        body.insert("socketId".into(), json!(&*conn.socket_id));
        body.insert("rooms".into(), json!(conn.conversation_ids()));
        let ready = inner.fact("session.ready", body, None, &conn);
        inner.send_event(&conn, &ready);
        presence::connected(inner, &conn).await;
        if let Some(r) = resume {
            Box::pin(inner.resume(&conn, *r)).await;
        } else if let Some(since) = since {
            Box::pin(inner.replay_since(&conn, since)).await;
        }
        Box::pin(inner.save_live(&conn)).await;
        tracing::debug!(conn = id, user = %conn.user.id, dialect = %conn.dialect, "connected");
        Ok(conn)
    }

    /// Unregisters a connection (the client left, or the server cut it). Idempotent.
    pub async fn disconnect(&self, conn: &Arc<Conn>) {
        if let Some(rooms) = self.detach(conn) {
            Box::pin(self.announce_gone(conn, rooms)).await;
        }
    }

    /// The synchronous half of unregistering: the connection leaves the registry, the
    /// counters and its rooms. `None` when it was not registered (any more); else the
    /// rooms it was in, for [`Hub::announce_gone`].
    pub(super) fn detach(&self, conn: &Arc<Conn>) -> Option<Vec<RoomKey>> {
        let inner = &self.state;
        // Under the registry's lock, as registering is: whoever sees the connection
        // gone sees the gauge and the per-user count without it too.
        {
            let mut conns = write(&inner.conns);
            conns.remove(&conn.id)?;
            inner
                .metrics
                .connections
                .get_or_create(&conn_labels(conn))
                .dec();
            let mut per_user = inner.per_user.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = per_user.get_mut(&conn.user.id) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    per_user.remove(&conn.user.id);
                }
            }
        }
        if !conn.member {
            return Some(Vec::new());
        }
        let rooms: Vec<RoomKey> = conn.rooms().iter().cloned().collect();
        for room in &rooms {
            inner.leave(conn, room);
        }
        Some(rooms)
    }

    /// The asynchronous half: the user's presence after the connection left, and its
    /// session saved for recovery on a recovering route.
    pub(super) async fn announce_gone(&self, conn: &Arc<Conn>, rooms: Vec<RoomKey>) {
        if !conn.member {
            return;
        }
        self.state.save_session(conn, &rooms).await;
        presence::disconnected(&self.state, conn, &rooms).await;
        tracing::debug!(conn = conn.id, user = %conn.user.id, "disconnected");
    }

    /// Connections of `user` on this instance now.
    pub fn user_connection_count(&self, user: &str) -> usize {
        self.state
            .per_user
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(user)
            .copied()
            .unwrap_or(0)
    }

    /// A registered connection by id.
    pub fn conn(&self, id: ConnId) -> Option<Arc<Conn>> {
        read(&self.state.conns).get(&id).cloned()
    }

    /// Activity on a connection (a ping, a pong) renews its presence.
    pub async fn touch(&self, conn: &Arc<Conn>) {
        presence::touch(conn);
    }

    /// The server is shutting down: connections registering from now on are refused
    /// (`unavailable`), so that none opens after [`Hub::close_all`].
    pub fn drain(&self) {
        self.state.draining.store(true, Ordering::SeqCst);
    }

    /// Tells every connection that the server is going away (`system.disconnect` where
    /// the dialect has it), then closes them with `code`.
    pub fn close_all(&self, code: u16, reason: &str) {
        for conn in self.connections() {
            let mut body = Map::new();
            body.insert("reason".into(), json!("shutdown"));
            body.insert("notice".into(), json!(reason));
            let ev = self.state.fact("system.disconnect", body, None, &conn);
            self.state.send_event(&conn, &ev);
            conn.close(code, reason);
        }
    }
}
