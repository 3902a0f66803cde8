//! The typed configuration: `config/switchboard.toml`'s format, one section per file
//! beside its checks (`auth.rs`, `socketio.rs`, `limits.rs`, `hub.rs`, `bus.rs`,
//! `webhooks.rs`, `access.rs`, `listener.rs`, `upstream.rs`, `tls.rs`), the embedded default,
//! environment overrides (`env.rs`), reading with every error at once (`load.rs`), and
//! the documentation generated from the types' own doc comments (`reference.rs`: the
//! README's reference and the documented default file). This file only assembles.

mod access;
mod auth;
mod bus;
mod duration;
mod env;
mod history;
mod hub;
mod limits;
mod listener;
mod load;
pub mod reference;
mod socketio;
mod tls;
mod upstream;
mod webhooks;

pub use access::{ConsoleConfig, CorsConfig, IceServer, InternalApiConfig, WebRtcConfig};
pub use auth::{AuthConfig, ClaimMapping, DEFAULT_PROVIDER, ProviderConfig, ProviderKind};
pub use bus::{AmqpConfig, BusConfig, BusKind, RedisConfig};
pub use env::{VARIABLES, apply_env};
pub use history::{HistoryConfig, KEPT_EVENTS, RecoveryConfig};
pub use hub::{HubConfig, Membership, PrivacyConfig};
pub use limits::LimitsConfig;
pub use listener::{ListenerConfig, RouteConfig, Transport};
pub use socketio::SocketIoConfig;
pub use tls::{ClientTls, ListenerTls};
pub use upstream::{ConnectMode, Resign, TokenForward, UpstreamConfig};
pub use webhooks::{WebhookEndpoint, WebhooksConfig};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Duration;
use thiserror::Error;

/// The shipped default configuration, embedded in the binary.
pub const DEFAULT_TOML: &str = include_str!("../../config/switchboard.toml");

/// Why a configuration was refused.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not TOML, or a key or value the format does not have (the message names the
    /// line and column).
    #[error("{origin}: {message}")]
    Parse {
        /// The file, or `embedded default`.
        origin: String,
        /// The parser's message.
        message: String,
    },
    /// Values that parse but make no sense, every one of them.
    #[error("{origin}: invalid configuration:\n{}", .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The file, or `embedded default`.
        origin: String,
        /// One line per problem, each naming its key.
        problems: Vec<String>,
    },
}

/// switchboard's configuration.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Config {
    /// This instance's id, in logs and in canonical events' origin. Empty: hostname-pid.
    /// (SWITCHBOARD_INSTANCE)
    pub instance: String,
    /// Address every listener binds. (SWITCHBOARD_BIND)
    pub bind: String,
    /// On SIGTERM/SIGINT the instance drains (`/readyz` answers 503, every client is told
    /// and closed); the process exits once the last client is gone, at the latest after
    /// this long.
    #[serde(with = "duration::text")]
    #[schemars(with = "String")]
    pub shutdown_deadline: Duration,
    /// Client authentication.
    pub auth: AuthConfig,
    /// Socket.IO engine settings shared by every Socket.IO route.
    pub socketio: SocketIoConfig,
    /// What one connection may do.
    pub limits: LimitsConfig,
    /// Rooms, messages, presence and calls.
    pub hub: HubConfig,
    /// Room history: what a client that reconnects can be given back.
    pub history: HistoryConfig,
    /// Socket.IO connection state recovery.
    pub recovery: RecoveryConfig,
    /// What personal data leaves the gateway.
    pub privacy: PrivacyConfig,
    /// How instances reach each other.
    pub bus: BusConfig,
    /// Redis, for the `redis` bus and the shared state.
    pub redis: RedisConfig,
    /// RabbitMQ beside the bus.
    pub amqp: AmqpConfig,
    /// How signed webhooks are delivered, retried and kept.
    pub webhooks: WebhooksConfig,
    /// Webhook endpoints.
    #[serde(rename = "webhook")]
    pub webhook: Vec<WebhookEndpoint>,
    /// The console at `/console` on the API port.
    pub console: ConsoleConfig,
    /// The internal API.
    pub internal_api: InternalApiConfig,
    /// Browser origins allowed.
    pub cors: CorsConfig,
    /// WebRTC settings answered by `GET /api/config/webrtc`.
    pub webrtc: WebRtcConfig,
    /// Listeners: one HTTP server per port; each route binds a path (and, for Socket.IO,
    /// a namespace) to a dialect.
    #[serde(rename = "listener")]
    pub listeners: Vec<ListenerConfig>,
    /// Legacy backends routes may front.
    #[serde(rename = "upstream")]
    pub upstreams: Vec<UpstreamConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            instance: String::new(),
            bind: "0.0.0.0".into(),
            shutdown_deadline: Duration::from_secs(10),
            cors: CorsConfig::default(),
            bus: BusConfig::default(),
            redis: RedisConfig::default(),
            amqp: AmqpConfig::default(),
            webhooks: WebhooksConfig::default(),
            webhook: Vec::new(),
            internal_api: InternalApiConfig::default(),
            console: ConsoleConfig::default(),
            auth: AuthConfig::default(),
            socketio: SocketIoConfig::default(),
            limits: LimitsConfig::default(),
            hub: HubConfig::default(),
            history: HistoryConfig::default(),
            recovery: RecoveryConfig::default(),
            webrtc: WebRtcConfig::default(),
            privacy: PrivacyConfig::default(),
            listeners: Vec::new(),
            upstreams: Vec::new(),
        }
    }
}

impl Config {
    /// The shipped configuration (what `config/switchboard.toml` is generated from): the
    /// defaults, two public STUN servers, and each seed system at its spec's own
    /// address: NexusChat (raw WebSocket `/ws`), Salala (`/`) and Phase 10 (`/ws/app`)
    /// on 3000 (`PORT`), Chat Service on 3001 (`WS_PORT`), Clerk on 3002
    /// (`/api/socket.io`).
    pub fn seed() -> Config {
        let route = |path: &str, transport, namespace: Option<&str>, dialect: &str| RouteConfig {
            path: path.into(),
            transport,
            namespace: namespace.map(Into::into),
            dialect: dialect.into(),
            upstream: None,
            auth: None,
            recovery: None,
        };
        let sio = Transport::Socketio;
        let mut cfg = Config::default();
        cfg.webrtc.ice_servers = [
            "stun:stun1.l.google.com:19302",
            "stun:stun2.l.google.com:19302",
        ]
        .into_iter()
        .map(|u| IceServer {
            urls: vec![u.into()],
            username: None,
            credential: None,
        })
        .collect();
        cfg.listeners = vec![
            ListenerConfig {
                port: 3000,
                port_env: Some("PORT".into()),
                api: true,
                tls: None,
                routes: vec![
                    route("/ws", Transport::Websocket, None, "nexus"),
                    route("/socket.io", sio, Some("/"), "salala"),
                    route("/socket.io", sio, Some("/ws/app"), "phase10"),
                ],
            },
            ListenerConfig {
                port: 3001,
                port_env: Some("WS_PORT".into()),
                api: false,
                tls: None,
                routes: vec![route("/socket.io", sio, Some("/"), "chat-service")],
            },
            ListenerConfig {
                port: 3002,
                port_env: None,
                api: false,
                tls: None,
                routes: vec![route("/api/socket.io", sio, Some("/"), "clerk")],
            },
        ];
        cfg
    }

    /// The embedded default, with the environment applied.
    ///
    /// # Errors
    /// An environment variable with an impossible value.
    pub fn embedded() -> Result<Config, ConfigError> {
        Config::parse(DEFAULT_TOML, "embedded default")
    }

    /// Reads a file, or the embedded default when `path` is `None`; then applies the
    /// environment and checks the result.
    ///
    /// # Errors
    /// Unreadable file, bad TOML, unknown keys, impossible values.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Config::embedded();
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Parses TOML text, applies the environment, and checks the result.
    ///
    /// # Errors
    /// Bad TOML, unknown keys, impossible values.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let mut cfg = load::parse(text).map_err(|problems| ConfigError::Invalid {
            origin: origin.to_string(),
            problems,
        })?;
        let mut problems = apply_env(&mut cfg, &|k| std::env::var(k).ok());
        cfg.normalize();
        problems.extend(cfg.problems());
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError::Invalid {
                origin: origin.to_string(),
                problems,
            })
        }
    }

    /// Fills what is derived: unnamed webhooks get `webhook-<n>`.
    pub fn normalize(&mut self) {
        for (i, w) in self.webhook.iter_mut().enumerate() {
            if w.name.is_empty() {
                w.name = format!("webhook-{i}");
            }
        }
    }

    /// Every value that parses but makes no sense, each naming its key.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        self.limits.check(&mut p);
        let routes = self.listeners.iter().flat_map(|l| &l.routes);
        self.auth
            .check(routes.filter_map(|r| r.auth.as_deref()), &mut p);
        bus::check(&self.bus, &self.redis, &self.amqp, &mut p);
        webhooks::check(&self.webhooks, &self.webhook, &mut p);
        self.cors.check(&mut p);
        self.hub.check(&mut p);
        history::check(&self.history, &self.recovery, &mut p);
        self.socketio.check(&mut p);
        listener::check(&self.listeners, &self.upstreams, &mut p);
        upstream::problems(&self.upstreams, &mut p);
        p
    }

    /// The configuration as TOML with secrets redacted.
    pub fn redacted_toml(&self) -> String {
        let mut c = self.clone();
        if !c.auth.secret.is_empty() {
            c.auth.secret = "<redacted>".into();
        }
        for p in &mut c.auth.providers {
            for s in &mut p.secrets {
                *s = "<redacted>".into();
            }
        }
        c.redis.url = redact_url(&c.redis.url);
        c.redis.cluster = c.redis.cluster.iter().map(|u| redact_url(u)).collect();
        if !c.internal_api.secret.is_empty() {
            c.internal_api.secret = "<redacted>".into();
        }
        if !c.console.password.is_empty() {
            c.console.password = "<redacted>".into();
        }
        for u in &mut c.upstreams {
            if let Some(r) = &mut u.resign {
                r.secret = "<redacted>".into();
            }
        }
        for w in &mut c.webhook {
            for s in &mut w.secrets {
                *s = "<redacted>".into();
            }
        }
        c.amqp.url = redact_url(&c.amqp.url);
        for s in &mut c.webrtc.ice_servers {
            if s.credential.is_some() {
                s.credential = Some("<redacted>".into());
            }
        }
        toml::to_string_pretty(&c).unwrap_or_else(|e| format!("# cannot print: {e}\n"))
    }

    /// The instance id: the configured one, else hostname-pid.
    pub fn instance_id(&self) -> String {
        if !self.instance.is_empty() {
            return self.instance.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "switchboard".into());
        format!("{host}-{}", std::process::id())
    }
}

/// A URL with its password replaced.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:<redacted>{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_default_parses_and_reproduces_the_specs_addresses() {
        let cfg: Config = toml::from_str(DEFAULT_TOML).expect("default parses");
        assert!(cfg.problems().is_empty(), "{:?}", cfg.problems());
        let ports: Vec<u16> = cfg.listeners.iter().map(|l| l.port).collect();
        assert_eq!(ports, [3000, 3001, 3002]);
        assert_eq!(cfg.limits.max_payload, 5120);
        assert_eq!(cfg.socketio.ping_timeout, Duration::from_secs(60));
    }

    #[test]
    fn every_unknown_key_and_bad_value_is_named_with_its_line() {
        let text = "bogus = 1\n[hub]\nmembership = \"closed\"\nalso_bogus = 2\n[limits]\nmax_payload = \"big\"\n\n[[listener]]\nport = 1\nroutes = [{ path = \"/ws\", transport = \"websocket\", dialect = \"nexus\", colour = \"red\" }]\n";
        let p = Config::from_toml(text).expect_err("bad");
        let all = p.join("\n");
        assert!(all.contains("line 1: unknown key `bogus`"), "{all}");
        assert!(all.contains("line 3: `hub.membership`"), "{all}");
        assert!(all.contains("line 6: `limits.max_payload`"), "{all}");
        assert!(p.len() >= 3, "{all}");
        let text = "bogus = 1\n[hub]\nalso_bogus = 2\n[[listener]]\nport = 1\nroutes = [{ path = \"/ws\", transport = \"websocket\", dialect = \"nexus\", colour = \"red\" }]\n";
        let p = Config::from_toml(text).expect_err("unknown keys");
        assert_eq!(
            p,
            [
                "line 1: unknown key `bogus`",
                "line 3: unknown key `hub.also_bogus`",
                "line 6: unknown key `listener[0].routes[0].colour`",
            ],
        );
    }

    #[test]
    fn every_impossible_value_is_reported_at_once() {
        let text = "[limits]\nmax_payload = 0\noutbound_queue = 0\n[hub]\npresence_ttl = \"0s\"\n";
        let cfg: Config = toml::from_str(text).expect("parses");
        let p = cfg.problems();
        assert!(
            p.iter().any(|l| l.starts_with("limits.max_payload")),
            "{p:?}"
        );
        assert!(
            p.iter().any(|l| l.starts_with("limits.outbound_queue")),
            "{p:?}"
        );
        assert!(p.iter().any(|l| l.starts_with("hub.presence_ttl")), "{p:?}");
        assert!(p.iter().any(|l| l.contains("[[listener]]")), "{p:?}");
    }
}
