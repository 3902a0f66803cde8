//! Why the hub refuses what a client sent, as a closed set of codes that every
//! dialect's error event carries (`ERROR`, `error`, `exception`, `connection:error`,
//! `message:failed`).

use crate::auth::AuthError;
use crate::dialect::TranslateError;
use std::fmt;

/// A refusal code. Phase 10's mapping turns `unauthorized` and `token_expired` into its
/// `socket_error:*` codes; the others reach every dialect as they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
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
}

impl Code {
    /// The code as it goes on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Unauthorized => "unauthorized",
            Code::TokenExpired => "token_expired",
            Code::PayloadTooLarge => "payload_too_large",
            Code::BadEvent => "bad_event",
            Code::UnknownEvent => "unknown_event",
            Code::Forbidden => "forbidden",
            Code::NotMember => "not_member",
            Code::NotFound => "not_found",
            Code::Unsupported => "unsupported",
            Code::Unavailable => "unavailable",
            Code::TooManyConnections => "too_many_connections",
            Code::TooManyRooms => "too_many_rooms",
            Code::RateLimited => "rate_limited",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal: its code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The code.
    pub code: Code,
    /// What happened, in words.
    pub message: String,
}

impl Refusal {
    /// A refusal with a message.
    pub fn new(code: Code, message: impl Into<String>) -> Refusal {
        Refusal {
            code,
            message: message.into(),
        }
    }
}

impl From<&AuthError> for Refusal {
    fn from(e: &AuthError) -> Refusal {
        let code = match e {
            AuthError::Expired => Code::TokenExpired,
            AuthError::Missing | AuthError::Invalid(_) => Code::Unauthorized,
        };
        Refusal::new(code, e.to_string())
    }
}

impl From<super::store::StoreError> for Refusal {
    fn from(e: super::store::StoreError) -> Refusal {
        Refusal::new(Code::Unavailable, e.to_string())
    }
}

impl From<&TranslateError> for Refusal {
    fn from(e: &TranslateError) -> Refusal {
        let code = match e {
            TranslateError::UnknownEvent { .. } => Code::UnknownEvent,
            TranslateError::TooLarge { .. } => Code::PayloadTooLarge,
            _ => Code::BadEvent,
        };
        Refusal::new(code, e.to_string())
    }
}
