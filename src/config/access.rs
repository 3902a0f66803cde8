//! `[internal_api]`, `[cors]` and `[webrtc]`: who may use the internal API, which
//! browser origins may connect, and the ICE servers clients are told about.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The internal API.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct InternalApiConfig {
    /// `X-Internal-Secret` for POST /api/events, /api/webhooks/*, the presence queries
    /// and /api/info; empty: the internal API is off. (INTERNAL_API_SECRET)
    pub secret: String,
}

/// The console: the operator's web page at `/console` on the API port.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct ConsoleConfig {
    /// Serve the console where the API is served. It needs a password: `password`, else
    /// the internal API's secret; with neither it answers that it is off.
    pub enabled: bool,
    /// The console's login password; empty: the internal API's secret.
    /// (SWITCHBOARD_CONSOLE_PASSWORD)
    pub password: String,
    /// Message content in the traffic view (off: content fields show as `…`).
    pub show_content: bool,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            enabled: true,
            password: String::new(),
            show_content: false,
        }
    }
}

/// Browser origins allowed on the realtime paths.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct CorsConfig {
    /// Browsers' Origins allowed on the Socket.IO and WebSocket paths ("*": any). A
    /// request with another Origin header is refused with 403 (which also stops
    /// cross-site WebSocket hijacking); requests without one (native clients) are always
    /// allowed.
    pub allowed_origins: Vec<String>,
}

impl Default for CorsConfig {
    fn default() -> Self {
        CorsConfig {
            allowed_origins: vec!["*".into()],
        }
    }
}

impl CorsConfig {
    /// Whether a request with this `Origin` header (or none) may proceed.
    pub fn allows(&self, origin: Option<&str>) -> bool {
        match origin {
            None => true,
            Some(o) => self.allowed_origins.iter().any(|a| a == "*" || a == o),
        }
    }

    pub(super) fn check(&self, p: &mut Vec<String>) {
        if self.allowed_origins.is_empty() {
            p.push("cors.allowed_origins must list at least one origin (or \"*\")".into());
        }
    }
}

/// WebRTC settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct WebRtcConfig {
    /// ICE servers answered by GET /api/config/webrtc.
    pub ice_servers: Vec<IceServer>,
}

/// One ICE server.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct IceServer {
    /// `stun:` or `turn:` URLs.
    pub urls: Vec<String>,
    /// TURN user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}
