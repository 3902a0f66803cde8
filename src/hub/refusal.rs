//! Why the hub refuses what a client sent, as a closed set of codes that every
//! dialect's error event carries (`ERROR`, `error`, `exception`, `connection:error`,
//! `message:failed`), and how a refusal reaches the client: in its dialect, counted.

use super::{Ack, Conn, Hub, HubState};
use crate::auth::AuthError;
use crate::config::Transport;
use crate::dialect::TranslateError;
use crate::event::Event;
use crate::telemetry::{Name, ReasonLabels};
use serde_json::{Map, json};
use std::fmt;
use std::sync::Arc;

/// A refusal code. Phase 10's mapping turns `unauthorized` and `token_expired` into its
/// `socket_error:*` codes; the others reach every dialect as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// No token, or not a valid one.
    Unauthorized,
    /// The token has expired.
    TokenExpired,
    /// The event is larger than `limits.max_payload`.
    PayloadTooLarge,
    /// The event could not be read or mapped (the message says why).
    BadEvent,
    /// The dialect has no such event.
    UnknownEvent,
    /// The membership policy refuses the room.
    Forbidden,
    /// The sender is not in the room it addresses.
    NotMember,
    /// The message is not known (too old, or never sent here).
    NotFound,
    /// The event is understood but the hub does not do it (history sync).
    Unsupported,
    /// The bus cannot take the event now.
    Unavailable,
    /// Too many connections (on this instance, or of this user).
    TooManyConnections,
    /// The connection is in as many rooms as it may be.
    TooManyRooms,
    /// The connection sends faster than `limits.rate`.
    RateLimited,
    /// A replay asked for (`?since=`) reaches back further than the room history holds:
    /// what it holds follows; resynchronise the rest over REST.
    HistoryIncomplete,
    /// The send was taken already (the same clientRef, or content where the dialect
    /// de-duplicates by it, within the window), in a dialect that refuses duplicates.
    Duplicate,
}

impl ErrorCode {
    /// The code as it goes on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::BadEvent => "bad_event",
            ErrorCode::UnknownEvent => "unknown_event",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotMember => "not_member",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::TooManyRooms => "too_many_rooms",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::HistoryIncomplete => "history_incomplete",
            ErrorCode::Duplicate => "duplicate",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal: its code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The code.
    pub code: ErrorCode,
    /// What happened, in words.
    pub message: String,
}

impl Refusal {
    /// A refusal with a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

impl From<&AuthError> for Refusal {
    fn from(e: &AuthError) -> Refusal {
        let code = match e {
            AuthError::Expired => ErrorCode::TokenExpired,
            AuthError::Unavailable(_) => ErrorCode::Unavailable,
            _ => ErrorCode::Unauthorized,
        };
        Refusal::new(code, e.to_string())
    }
}

impl From<super::store::StoreError> for Refusal {
    fn from(e: super::store::StoreError) -> Refusal {
        Refusal::new(ErrorCode::Unavailable, e.to_string())
    }
}

impl From<&TranslateError> for Refusal {
    fn from(e: &TranslateError) -> Refusal {
        let code = match e {
            TranslateError::UnknownEvent { .. } => ErrorCode::UnknownEvent,
            TranslateError::TooLarge { .. } => ErrorCode::PayloadTooLarge,
            _ => ErrorCode::BadEvent,
        };
        Refusal::new(code, e.to_string())
    }
}

impl HubState {
    /// `session.error {code, error, reason, reconnectAttempt: 0}`.
    pub(super) fn error_event(refusal: &Refusal, cause: Option<&Event>) -> Event {
        Self::error_event_at(refusal, cause, 0)
    }

    /// `session.error {code, error, reason, reconnectAttempt}`.
    pub(super) fn error_event_at(refusal: &Refusal, cause: Option<&Event>, attempt: u64) -> Event {
        let mut body = Map::new();
        body.insert("code".into(), json!(refusal.code.as_str()));
        body.insert("error".into(), json!(refusal.message));
        let reason = match refusal.code {
            ErrorCode::Unauthorized | ErrorCode::TokenExpired => "auth_error",
            _ => refusal.code.as_str(),
        };
        body.insert("reason".into(), json!(reason));
        body.insert("reconnectAttempt".into(), json!(attempt));
        let mut ev = Event::new("session.error", body);
        if let Some(c) = cause {
            ev.meta.trace_id = c.meta.trace_id.clone();
        }
        ev
    }

    /// Tells `conn` that what it sent was refused: `message.failed` when the refused
    /// event was a send and the dialect has it, else `session.error`.
    pub(super) fn refuse(&self, conn: &Arc<Conn>, refusal: &Refusal, cause: Option<&Event>) -> Ack {
        self.metrics
            .refusals
            .get_or_create(&ReasonLabels {
                dialect: Name(conn.dialect.clone()),
                reason: refusal.code.as_str(),
            })
            .inc();
        let sent_failed = cause.is_some_and(|c| &*c.name == "message.send") && {
            let mut body = Map::new();
            body.insert("error".into(), json!(refusal.message));
            body.insert("code".into(), json!(refusal.code.as_str()));
            body.insert("deliveryStatus".into(), json!("FAILED"));
            if let Some(r) = cause.and_then(|c| c.field("clientRef")) {
                body.insert("clientRef".into(), r.clone());
            }
            if let Some(c) = cause.and_then(|c| c.field("conversationId")) {
                body.insert("conversationId".into(), c.clone());
            }
            let ev = self.fact("message.failed", body, cause, conn);
            self.send_event(conn, &ev)
        };
        if !sent_failed {
            let ev = Self::error_event(refusal, cause);
            self.send_event(conn, &ev);
        }
        json!({"success": false, "code": refusal.code.as_str(), "message": refusal.message})
    }
}

impl Hub {
    /// Refuses something a connection sent (a binary frame, a full inbound queue) in
    /// its dialect's words; returns the ack payload.
    pub fn refuse(&self, conn: &Arc<Conn>, refusal: &Refusal) -> Ack {
        self.state.refuse(conn, refusal, None)
    }

    /// Refuses a frame its transport could not read (not a Socket.IO packet, a binary
    /// frame, an ack id out of range): counted in `switchboard_translation_failures_total`
    /// under `reason`, answered `bad_event` in the connection's dialect; returns the ack
    /// payload.
    pub fn refuse_unreadable(&self, conn: &Arc<Conn>, reason: &'static str, message: &str) -> Ack {
        self.count_unreadable(&conn.dialect, reason);
        self.state
            .refuse(conn, &Refusal::new(ErrorCode::BadEvent, message), None)
    }

    /// Counts a frame no connection can be told about (its namespace is not joined yet)
    /// as a translation failure of `dialect`.
    pub fn count_unreadable(&self, dialect: &str, reason: &'static str) {
        self.state
            .metrics
            .translation_failures
            .get_or_create(&ReasonLabels {
                dialect: Name::from(dialect),
                reason,
            })
            .inc();
    }

    /// Refuses `cause` (an event the client sent) in the client's dialect
    /// (`message.failed` for a send, where the dialect has it); returns the ack payload.
    pub fn refuse_event(&self, conn: &Arc<Conn>, refusal: &Refusal, cause: &Event) -> Ack {
        self.state.refuse(conn, refusal, Some(cause))
    }

    /// `session.error` for `refusal`, as the hub sends it.
    pub fn error_event(refusal: &Refusal) -> Event {
        HubState::error_event(refusal, None)
    }

    /// Counts a refused connection and returns the frame refusing it, in `dialect`'s
    /// words (`None`: the dialect has no error event; the transport's own refusal is used).
    /// `client`: its address and the attempt it says it is on, for `reconnectAttempt`
    /// (`attempts.rs`).
    pub fn refuse_connection(
        &self,
        dialect: &str,
        transport: Transport,
        refusal: &Refusal,
        client: Option<(std::net::IpAddr, Option<u64>)>,
    ) -> Option<super::OutFrame> {
        self.state
            .metrics
            .connections_refused
            .get_or_create(&ReasonLabels {
                dialect: Name::from(dialect),
                reason: refusal.code.as_str(),
            })
            .inc();
        let attempt = match client {
            Some((_, Some(said))) => said,
            Some((ip, None)) => self
                .state
                .attempts
                .refused(ip, dialect, std::time::Instant::now()),
            None => 1,
        };
        let ev = HubState::error_event_at(refusal, None, attempt);
        self.state.encode(dialect, transport, &ev).ok()
    }
}
