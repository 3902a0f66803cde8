//! Fan-out: a delivery from the bus reaches this instance's connections in its
//! audience, encoded once per dialect and transport kind, however many recipients share
//! them; a recipient whose queue is full is cut as a slow consumer, the others go on.

use super::{
    CLOSE_DISCONNECTED, CLOSE_SLOW_CONSUMER, Conn, ConnId, HubState, OutFrame, SendFailure,
    members, read, registry::conn_labels,
};
use crate::bus::{Audience, Deliver, Delivery, Offset, RoomKey, Then};
use crate::config::Transport;
use crate::dialect::{Direction, TranslateError};
use crate::event::Event;
use crate::telemetry::{EventLabels, Name};
use smallvec::SmallVec;
use std::collections::HashSet;
use std::sync::Arc;

impl HubState {
    /// Encodes `ev` for one dialect and transport kind.
    pub(super) fn encode(
        &self,
        dialect: &str,
        transport: Transport,
        ev: &Event,
    ) -> Result<OutFrame, TranslateError> {
        self.encode_at(dialect, transport, ev, None)
    }

    /// Encodes `ev` for one dialect and transport kind; a Socket.IO event with an
    /// `offset` carries it as its last argument (for recovering connections).
    pub(super) fn encode_at(
        &self,
        dialect: &str,
        transport: Transport,
        ev: &Event,
        offset: Option<&Offset>,
    ) -> Result<OutFrame, TranslateError> {
        let reg = self.registry();
        let d = reg
            .dialect(dialect)
            .ok_or_else(|| TranslateError::UnknownDialect(dialect.to_string()))?;
        Ok(match transport {
            Transport::Socketio => {
                let mut frame = Vec::with_capacity(256);
                let name = d.encode_frame_named(ev, Direction::Down, &mut frame)?;
                OutFrame::socketio_at(&name, frame, offset)
            }
            Transport::Websocket => {
                let mut buf = Vec::with_capacity(256);
                d.encode_frame(ev, Direction::Down, &mut buf)?;
                match offset {
                    Some(o) => OutFrame::text_at(&ev.name, buf, o),
                    None => OutFrame::text(&ev.name, buf),
                }
            }
        })
    }

    /// Sends `ev` to one connection, in its dialect; an event its dialect cannot express
    /// is skipped.
    pub(super) fn send_event(&self, conn: &Arc<Conn>, ev: &Event) -> bool {
        match self.encode(&conn.dialect, conn.transport, ev) {
            Ok(frame) => {
                self.count_out(&conn.dialect, &ev.name, 1);
                self.send_frame(conn, &frame);
                true
            }
            Err(e) => {
                tracing::trace!(event = %ev.name, dialect = %conn.dialect, error = %e, "not sent");
                false
            }
        }
    }

    fn send_frame(&self, conn: &Arc<Conn>, frame: &OutFrame) {
        if let Err(SendFailure::Full) = conn.send(frame) {
            self.metrics
                .slow_consumers
                .get_or_create(&conn_labels(conn))
                .inc();
            tracing::warn!(conn = conn.id, user = %conn.user.id, "slow consumer: outbound queue full, disconnecting");
            conn.close(CLOSE_SLOW_CONSUMER, "slow consumer: outbound queue full");
        }
    }

    fn count_out(&self, dialect: &Arc<str>, event: &Arc<str>, n: u64) {
        self.metrics
            .events_out
            .get_or_create(&EventLabels {
                dialect: Name(dialect.clone()),
                event: Name(event.clone()),
            })
            .inc_by(n);
    }

    /// The local connections in an audience, each once.
    fn recipients(&self, a: &Audience) -> SmallVec<[Arc<Conn>; 16]> {
        let mut out: SmallVec<[Arc<Conn>; 16]> = SmallVec::new();
        let keep = |c: &Arc<Conn>| {
            // A dialect whose server tells the sender too (NexusChat's TYPING).
            if a.wider.iter().any(|w| w.sender && *w.dialect == *c.dialect) {
                return true;
            }
            let excluded_conn = a
                .except_connection
                .as_ref()
                .is_some_and(|(i, id)| *i == self.instance && *id == c.id);
            let excluded_user = a.except_user.as_deref().is_some_and(|u| u == c.user.id);
            let excluded_upstream = a
                .except_upstream
                .as_ref()
                .is_some_and(|u| c.upstream.as_ref() == Some(u));
            !excluded_conn && !excluded_user && !excluded_upstream
        };
        if a.everyone {
            out.extend(read(&self.conns).values().filter(|c| keep(c)).cloned());
            return out;
        }
        let rooms = read(&self.rooms);
        if let ([one], true) = (a.rooms.as_slice(), a.wider.is_empty()) {
            if let Some(members) = rooms.get(one) {
                out.extend(members.iter().filter(|c| keep(c)).cloned());
            }
            return out;
        }
        // Ids are ours: a fast hash, and room for everyone at once (no rehash per message).
        let most = a
            .rooms
            .iter()
            .filter_map(|r| rooms.get(r).map(members::Members::len))
            .sum();
        let mut seen: HashSet<ConnId, foldhash::fast::RandomState> =
            HashSet::with_capacity_and_hasher(most, foldhash::fast::RandomState::default());
        for room in &a.rooms {
            for c in rooms.get(room).into_iter().flat_map(members::Members::iter) {
                if seen.insert(c.id) && keep(c) {
                    out.push(c.clone());
                }
            }
        }
        for w in a.wider.iter().filter(|w| !w.everyone) {
            for u in &w.users {
                let members = rooms.get(&RoomKey::user(u));
                for c in members.into_iter().flat_map(members::Members::iter) {
                    if *c.dialect == *w.dialect && seen.insert(c.id) && keep(c) {
                        out.push(c.clone());
                    }
                }
            }
        }
        for w in a.wider.iter().filter(|w| w.everyone) {
            let members = rooms.get(&RoomKey::Dialect(w.dialect.clone()));
            for c in members.into_iter().flat_map(members::Members::iter) {
                if seen.insert(c.id) && keep(c) {
                    out.push(c.clone());
                }
            }
        }
        out
    }
}

/// One encoding of a delivery: for a dialect, transport and whether it carries the
/// history offset (recovering connections), the frame (`None`: the dialect cannot
/// express it), and how many connections it was sent to.
type EncodedFor = (Arc<str>, Transport, bool, Option<OutFrame>, u64);

impl Deliver for HubState {
    fn deliver(&self, d: &Delivery) {
        let recipients = self.recipients(&d.audience);
        // One encoding per dialect and transport, shared by every recipient.
        let mut frames: SmallVec<[EncodedFor; 6]> = SmallVec::new();
        for conn in &recipients {
            let at = d.offset.is_some() && conn.recovery.is_some();
            let pos = frames.iter().position(|(dl, t, o, _, _)| {
                *t == conn.transport
                    && *o == at
                    && (Arc::ptr_eq(dl, &conn.dialect) || **dl == *conn.dialect)
            });
            let i = match pos {
                Some(i) => i,
                None => {
                    let offset = d.offset.as_ref().filter(|_| at);
                    let f = self
                        .encode_at(&conn.dialect, conn.transport, &d.event, offset)
                        .ok();
                    frames.push((conn.dialect.clone(), conn.transport, at, f, 0));
                    frames.len() - 1
                }
            };
            if let Some(frame) = &frames[i].3 {
                self.send_frame(conn, frame);
                frames[i].4 += 1;
            }
        }
        if self.tap.active() && self.tap.wants() {
            let mut to: Vec<(Arc<str>, u64)> = Vec::new();
            for (dialect, _, _, _, n) in frames.iter().filter(|f| f.4 > 0) {
                match to.iter_mut().find(|(d, _)| d == dialect) {
                    Some((_, m)) => *m += n,
                    None => to.push((dialect.clone(), *n)),
                }
            }
            self.tap.offer(&d.event, to);
        }
        for (dialect, _, _, _, n) in &frames {
            if *n > 0 {
                self.count_out(dialect, &d.event.name, *n);
                tracing::trace!(trace_id = %d.event.meta.trace_id, event = %d.event.name, %dialect, recipients = *n, bus = self.bus.kind(), "delivered");
            }
        }
        if let Some(then) = &d.audience.then {
            for conn in &recipients {
                match then {
                    Then::Disconnect { reconnect } => {
                        if !*reconnect && let Some(r) = &conn.recovery {
                            r.forget();
                        }
                        let (code, reason) = if *reconnect {
                            (
                                super::CLOSE_TRY_LATER,
                                "disconnected by the server: reconnect",
                            )
                        } else {
                            (CLOSE_DISCONNECTED, "disconnected by the server")
                        };
                        tracing::info!(conn = conn.id, user = %conn.user.id, reconnect, "disconnected by the server API");
                        conn.close(code, reason);
                    }
                    Then::Leave { room, user } if *conn.user.id == **user => {
                        self.leave(conn, &crate::bus::RoomKey::conversation(room));
                        tracing::info!(conn = conn.id, user = %conn.user.id, %room, "removed from a room by the server API");
                    }
                    Then::Leave { .. } => {}
                }
            }
        }
    }
}
