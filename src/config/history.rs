//! `[history]` and `[recovery]`: the bounded per-room history every kept fact is
//! appended to before fan-out, and how long a Socket.IO session waits to be recovered.

use super::duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The canonical facts kept by default: what a client that missed them would miss.
pub const KEPT_EVENTS: [&str; 8] = [
    "message.created",
    "message.updated",
    "message.deleted",
    "message.read",
    "conversation.read",
    "reaction.added",
    "reaction.removed",
    "notification.created",
];

/// Room history.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct HistoryConfig {
    /// Facts kept per room (conversation or personal room); 0 turns history off (then
    /// `messages:sync` answers `unsupported` and no route recovers). Over it, the oldest
    /// are dropped (Redis: `XADD MAXLEN ~`, so a little more may stay): a client that
    /// missed more than this is told its recovery is incomplete.
    pub size: usize,
    /// How long a room's history lives after its last fact (Redis: the stream's TTL,
    /// renewed on every write). At least `recovery.max_disconnection`.
    #[serde(with = "duration::text")]
    #[schemars(with = "String")]
    pub ttl: Duration,
    /// The canonical events kept (typing, recording and presence are not: they are
    /// stale by the time anyone recovers them).
    pub events: Vec<String>,
    /// Rooms whose history the in-process store holds at most (the local bus; Redis
    /// keeps its streams itself). Over it, the room written least recently is forgotten
    /// (its clients then recover incompletely).
    pub rooms: usize,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            size: 100,
            ttl: Duration::from_secs(600),
            events: KEPT_EVENTS.iter().map(|e| (*e).to_string()).collect(),
            rooms: 100_000,
        }
    }
}

/// Socket.IO connection state recovery.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct RecoveryConfig {
    /// How long a disconnected Socket.IO session (its id, user and rooms) is kept for the
    /// client to come back to, on any instance (in Redis with the Redis bus).
    #[serde(with = "duration::text")]
    #[schemars(with = "String")]
    pub max_disconnection: Duration,
    /// Sessions the in-process store keeps at most (the local bus); over it, the oldest
    /// are forgotten (their clients then start afresh, `recovered === false`).
    pub sessions: usize,
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            max_disconnection: Duration::from_secs(120),
            sessions: 100_000,
        }
    }
}

/// Checks both sections together (the history must outlive a recoverable session).
pub(super) fn check(h: &HistoryConfig, r: &RecoveryConfig, p: &mut Vec<String>) {
    if h.size > 0 && h.ttl < r.max_disconnection {
        p.push(format!(
            "history.ttl ({}s) must be at least recovery.max_disconnection ({}s): a room's history would expire while a client may still recover from it",
            h.ttl.as_secs(),
            r.max_disconnection.as_secs()
        ));
    }
    if h.size > 0 && h.rooms == 0 {
        p.push("history.rooms must be at least 1".into());
    }
    if r.max_disconnection.is_zero() || r.sessions == 0 {
        p.push(
            "recovery.max_disconnection must be longer than 0s and recovery.sessions at least 1"
                .into(),
        );
    }
    for e in &h.events {
        if e.is_empty() {
            p.push("history.events: an empty event name".into());
        }
    }
}
