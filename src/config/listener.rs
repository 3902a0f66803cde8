//! `[[listener]]`: one HTTP server per port, and its routes binding paths (and Socket.IO
//! namespaces) to dialects.

use super::UpstreamConfig;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// One HTTP server.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ListenerConfig {
    /// TCP port (0: any free port, for tests).
    pub port: u16,
    /// The environment variable that overrides the port, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_env: Option<String>,
    /// The HTTP API (/healthz, /readyz, /metrics, /api/config/webrtc, the internal API)
    /// is served on this port.
    #[serde(default)]
    pub api: bool,
    /// TLS: `{ cert = "server.pem", key = "server.key" }` (and `client_ca` for mutual
    /// TLS) serves `https://` and `wss://` on this port. Unset: plain `http://` and
    /// `ws://`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<super::ListenerTls>,
    /// Paths bound to dialects: `{ path, transport = "websocket" | "socketio",
    /// namespace, dialect, upstream, auth }` (`upstream`: the `[[upstream]]` this route's
    /// clients are proxied to; `auth`: the `[[auth.provider]]` verifying its tokens).
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

/// A transport a route speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Raw WebSocket, one JSON frame per message.
    Websocket,
    /// Socket.IO (Engine.IO v4, websocket and polling).
    Socketio,
}

/// A path (and namespace) bound to a dialect.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RouteConfig {
    /// HTTP path (`/ws`, `/socket.io`, `/api/socket.io`).
    pub path: String,
    /// The transport.
    pub transport: Transport,
    /// Socket.IO namespace (`/` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The dialect spoken on this route.
    pub dialect: String,
    /// The `[[upstream]]` this route's clients are proxied to (instead of the hub).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// The `[[auth.provider]]` that verifies this route's tokens (unset: `default`, HS256
    /// with `auth.secret`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<String>,
    /// Recovery on this route. Socket.IO: connection state recovery (the namespace's
    /// CONNECT answer carries a `pid`, each kept event its offset as its last argument,
    /// and a client back within `recovery.max_disconnection` gets its session and what
    /// it missed); unset: as the dialect's mapping file says (`recovery = true` where
    /// its clients are known to ignore an extra argument: Salala, Chat Service). Raw
    /// WebSocket: an extension of the dialect, off unless set: each kept envelope
    /// carries `"offset"`, and a client reconnecting with `?since=<offset>` is sent what
    /// its rooms had after it, before anything new. Never on fronted routes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<bool>,
}

impl RouteConfig {
    /// Whether the route recovers: as configured, else on for Socket.IO routes of a
    /// dialect whose clients cope with it (`dialect_default`); never when it fronts a
    /// backend (whose facts are not the hub's to keep).
    pub fn recovers(&self, dialect_default: bool) -> bool {
        self.upstream.is_none()
            && self
                .recovery
                .unwrap_or(self.transport == Transport::Socketio && dialect_default)
    }
}

/// Checks every listener and route (routes may name only configured upstreams).
pub(super) fn check(
    listeners: &[ListenerConfig],
    upstreams: &[UpstreamConfig],
    p: &mut Vec<String>,
) {
    if listeners.is_empty() {
        p.push("at least one [[listener]] is needed".into());
    }
    let mut ports = BTreeSet::new();
    for (i, l) in listeners.iter().enumerate() {
        if l.port != 0 && !ports.insert(l.port) {
            p.push(format!("listener[{i}].port: port {} is used twice", l.port));
        }
        if let Some(t) = &l.tls {
            t.check(&format!("listener[{i}]"), p);
        }
        let mut seen = BTreeSet::new();
        for (j, r) in l.routes.iter().enumerate() {
            let key = format!("listener[{i}].routes[{j}]");
            if !r.path.starts_with('/') {
                p.push(format!("{key}.path `{}` must start with `/`", r.path));
            }
            let ns = r.namespace.as_deref().unwrap_or("/");
            match r.transport {
                Transport::Websocket if r.namespace.is_some() => {
                    p.push(format!("{key}.namespace: only Socket.IO routes have one"));
                }
                Transport::Socketio if !ns.starts_with('/') => {
                    p.push(format!("{key}.namespace `{ns}` must start with `/`"));
                }
                _ => {}
            }
            if r.recovery == Some(true)
                && (r.transport != Transport::Socketio || r.upstream.is_some())
            {
                p.push(format!(
                    "{key}.recovery: only Socket.IO routes the hub serves recover sessions (not raw WebSocket routes, not fronted ones)"
                ));
            }
            if !seen.insert((r.path.clone(), ns.to_string())) {
                p.push(format!(
                    "{key}: path {} namespace {ns} is bound twice",
                    r.path
                ));
            }
            let clash = l
                .routes
                .iter()
                .any(|o| o.path == r.path && o.transport != r.transport);
            if clash {
                p.push(format!(
                    "{key}: path {} is bound to both a WebSocket and a Socket.IO route",
                    r.path
                ));
            }
            if let Some(u) = &r.upstream
                && !upstreams.iter().any(|x| &x.name == u)
            {
                p.push(format!("{key}.upstream: no [[upstream]] is named `{u}`"));
            }
        }
    }
}
