//! `[socketio]`: the Engine.IO settings of every Socket.IO route.

use super::duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Socket.IO engine settings shared by every Socket.IO route.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct SocketIoConfig {
    /// Engine.IO heartbeat: how often the server pings, as the specs configure their
    /// servers.
    #[serde(with = "duration::text")]
    #[schemars(with = "String")]
    pub ping_interval: Duration,
    /// Engine.IO heartbeat: how long the server waits for the pong, as the specs
    /// configure their servers.
    #[serde(with = "duration::text")]
    #[schemars(with = "String")]
    pub ping_timeout: Duration,
    /// A client must join a namespace within this time after the handshake.
    #[serde(with = "duration::text")]
    #[schemars(with = "String")]
    pub connect_timeout: Duration,
    /// Transports offered to Socket.IO clients: "websocket", "polling".
    pub transports: Vec<String>,
}

impl Default for SocketIoConfig {
    fn default() -> Self {
        SocketIoConfig {
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            transports: vec!["websocket".into(), "polling".into()],
        }
    }
}

impl SocketIoConfig {
    pub(super) fn check(&self, p: &mut Vec<String>) {
        for (key, d) in [
            ("socketio.ping_interval", self.ping_interval),
            ("socketio.ping_timeout", self.ping_timeout),
            ("socketio.connect_timeout", self.connect_timeout),
        ] {
            if d.is_zero() {
                p.push(format!("{key} must be longer than 0s"));
            }
        }
        if self.transports.is_empty() {
            p.push("socketio.transports must name at least one transport".into());
        }
        for t in &self.transports {
            if t != "websocket" && t != "polling" {
                p.push(format!(
                    "socketio.transports: unknown transport `{t}` (websocket, polling)"
                ));
            }
        }
    }
}
