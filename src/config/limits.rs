//! `[limits]`: what one connection may do, and what happens over each limit.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Per-connection limits.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct LimitsConfig {
    /// Largest event a client may send, in bytes (the specs' maxHttpBufferSize).
    /// (SOCKET_MAX_PAYLOAD_BYTES) Over it: the event is refused with the dialect's error
    /// (`payload_too_large`); the connection stays open.
    pub max_payload: usize,
    /// A WebSocket message or long-polling body over this many bytes closes the
    /// connection (close code 1009); below it and above max_payload the event is refused
    /// as above.
    pub max_frame: usize,
    /// Frames queued for one connection. A client that lets its queue fill is
    /// disconnected as a slow consumer (close code 1008; the others are not delayed).
    pub outbound_queue: usize,
    /// Connections on this instance. Over it: refused with the dialect's error
    /// (`too_many_connections`) and closed (raw WebSocket close code 1013).
    pub max_connections: usize,
    /// Connections of one user on this instance. Over it: refused likewise.
    pub max_connections_per_user: usize,
    /// Events per second a connection may send: a token bucket refilled at `rate`,
    /// holding `burst`. Over it: the event is refused (`rate_limited`).
    pub rate: f64,
    /// The token bucket's size: a burst of this many events passes at once.
    pub burst: f64,
    /// Refusals for the rate in a row after which the connection is closed (1008).
    pub rate_strikes: u32,
    /// Conversation rooms one connection may be in. A join over it is refused
    /// (`too_many_rooms`); token claims beyond it are not joined.
    pub max_rooms: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_payload: 5 * 1024,
            max_frame: 1 << 20,
            outbound_queue: 512,
            max_connections: 100_000,
            max_connections_per_user: 32,
            rate: 50.0,
            burst: 100.0,
            rate_strikes: 100,
            max_rooms: 200,
        }
    }
}

impl LimitsConfig {
    pub(super) fn check(&self, p: &mut Vec<String>) {
        if self.max_payload == 0 {
            p.push("limits.max_payload must be at least 1".into());
        }
        if self.max_frame < self.max_payload {
            p.push(format!(
                "limits.max_frame ({}) must be at least limits.max_payload ({})",
                self.max_frame, self.max_payload
            ));
        }
        if self.outbound_queue == 0 {
            p.push("limits.outbound_queue must be at least 1".into());
        }
        for (key, v) in [
            ("limits.max_connections", self.max_connections),
            (
                "limits.max_connections_per_user",
                self.max_connections_per_user,
            ),
            ("limits.max_rooms", self.max_rooms),
        ] {
            if v == 0 {
                p.push(format!("{key} must be at least 1"));
            }
        }
        if !(self.rate > 0.0 && self.rate.is_finite()) {
            p.push(format!(
                "limits.rate ({}) must be a positive number of events per second",
                self.rate
            ));
        }
        if !(self.burst >= 1.0 && self.burst.is_finite()) {
            p.push(format!("limits.burst ({}) must be at least 1", self.burst));
        }
    }
}
