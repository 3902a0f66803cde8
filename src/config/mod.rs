//! The typed configuration: `config/switchboard.toml`'s format, the embedded default,
//! environment overrides, and the checks that run before any port opens.

mod env;
mod load;
pub mod reference;
mod upstream;

pub use env::{VARIABLES, apply_env};
pub use upstream::{ConnectMode, Resign, TokenForward, UpstreamConfig};

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
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
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// This instance's id, in logs and in canonical events' origin. Empty: hostname-pid.
    pub instance: String,
    /// Address every listener binds.
    pub bind: String,
    /// How long shutdown waits for connections to close.
    #[serde(with = "humantime_serde")]
    pub shutdown_deadline: Duration,
    /// Browser origins allowed.
    pub cors: CorsConfig,
    /// How instances reach each other.
    pub bus: BusConfig,
    /// Redis, for the `redis` bus.
    pub redis: RedisConfig,
    /// RabbitMQ, beside the bus.
    pub amqp: AmqpConfig,
    /// Webhook delivery settings.
    pub webhooks: WebhooksConfig,
    /// Webhook endpoints.
    #[serde(rename = "webhook")]
    pub webhook: Vec<WebhookEndpoint>,
    /// The internal API.
    pub internal_api: InternalApiConfig,
    /// Client authentication.
    pub auth: AuthConfig,
    /// Socket.IO engine settings shared by every Socket.IO route.
    pub socketio: SocketIoConfig,
    /// Per-connection limits.
    pub limits: LimitsConfig,
    /// Rooms, messages, presence and calls.
    pub hub: HubConfig,
    /// WebRTC settings answered by `GET /api/config/webrtc`.
    pub webrtc: WebRtcConfig,
    /// What personal data leaves the gateway.
    pub privacy: PrivacyConfig,
    /// One HTTP server per port.
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
            auth: AuthConfig::default(),
            socketio: SocketIoConfig::default(),
            limits: LimitsConfig::default(),
            hub: HubConfig::default(),
            webrtc: WebRtcConfig::default(),
            privacy: PrivacyConfig::default(),
            listeners: Vec::new(),
            upstreams: Vec::new(),
        }
    }
}

/// Which bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BusKind {
    /// In-process.
    Local,
    /// Redis pub/sub.
    Redis,
}

/// The bus.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct BusConfig {
    /// Which bus.
    pub kind: BusKind,
    /// Deliveries waiting for the broker.
    pub queue: usize,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            kind: BusKind::Local,
            queue: 10_000,
        }
    }
}

/// Redis.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RedisConfig {
    /// `redis://host:port/db`.
    pub url: String,
    /// Redis Cluster seed nodes: when set, the bus uses sharded pub/sub there (the
    /// state stays at `url`).
    pub cluster: Vec<String>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379".into(),
            cluster: Vec::new(),
        }
    }
}

/// RabbitMQ.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AmqpConfig {
    /// `amqp://user:pass@host:port/vhost`; empty: off.
    pub url: String,
    /// Durable topic exchange events are published to.
    pub exchange: String,
    /// Durable queue events are consumed from.
    pub inbound_queue: String,
    /// Unacknowledged inbound messages at a time.
    pub prefetch: u16,
    /// Events waiting for the exchange.
    pub queue: usize,
}

impl Default for AmqpConfig {
    fn default() -> Self {
        AmqpConfig {
            url: String::new(),
            exchange: "switchboard.events".into(),
            inbound_queue: "switchboard.inbound".into(),
            prefetch: 100,
            queue: 10_000,
        }
    }
}

/// Webhook delivery settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhooksConfig {
    /// Delays before each retry.
    #[serde(with = "humantime_list")]
    pub retry: Vec<Duration>,
    /// ± fraction applied to each delay.
    pub jitter: f64,
    /// Longest `Retry-After` honoured.
    #[serde(with = "humantime_serde")]
    pub retry_after_max: Duration,
    /// Deliveries waiting per endpoint.
    pub queue: usize,
    /// Requests in flight per endpoint.
    pub concurrency: usize,
    /// Response bytes read at most.
    pub max_response_bytes: usize,
    /// Dead letters kept.
    pub dead_letters: usize,
    /// Private addresses and ranges allowed as targets.
    pub allow: Vec<String>,
    /// Directory of the embedded store of pending deliveries and dead letters (without
    /// RabbitMQ).
    pub store: String,
    /// `fdatasync` every stored batch (survives power loss, not only a crash).
    pub fsync: bool,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        let h = |n: u64| Duration::from_secs(n * 3600);
        WebhooksConfig {
            retry: vec![
                Duration::from_secs(5),
                Duration::from_secs(300),
                Duration::from_secs(1800),
                h(2),
                h(5),
                h(10),
                h(10),
            ],
            jitter: 0.2,
            retry_after_max: Duration::from_secs(3600),
            queue: 10_000,
            concurrency: 8,
            max_response_bytes: 65_536,
            dead_letters: 10_000,
            allow: Vec::new(),
            store: "switchboard-webhooks".into(),
            fsync: false,
        }
    }
}

/// One webhook endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookEndpoint {
    /// A name for logs, metrics and the API (default `webhook-<n>`).
    #[serde(default)]
    pub name: String,
    /// `http://` or `https://` URL the events are POSTed to.
    pub url: String,
    /// Signing secrets (several during a rotation; one signature per secret).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Event types wanted (`message.created`, …); empty: every type.
    #[serde(default)]
    pub events: Vec<String>,
    /// How long one attempt may take.
    #[serde(default = "default_webhook_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Extra request headers.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// Also send the Standard Webhooks headers.
    #[serde(default)]
    pub standard: bool,
}

fn default_webhook_timeout() -> Duration {
    Duration::from_secs(10)
}

/// The internal API.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct InternalApiConfig {
    /// `X-Internal-Secret`; empty: off.
    pub secret: String,
}

/// Browser origins allowed on the realtime paths.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CorsConfig {
    /// Allowed `Origin` values; `*` allows any.
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
}

/// Client authentication.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// HS256 secret. Empty: `AUTH_JWT_SECRET`, else `JWT_SECRET`, else the development secret.
    pub secret: String,
    /// Clock skew allowed when checking `exp`.
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            secret: String::new(),
            leeway: Duration::from_secs(30),
        }
    }
}

/// Socket.IO engine settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SocketIoConfig {
    /// Engine.IO ping interval.
    #[serde(with = "humantime_serde")]
    pub ping_interval: Duration,
    /// How long the server waits for a pong.
    #[serde(with = "humantime_serde")]
    pub ping_timeout: Duration,
    /// How long a client has to join a namespace after the handshake.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Transports offered: `websocket`, `polling`.
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

/// Per-connection limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitsConfig {
    /// Largest event a client may send, in bytes; larger events are refused.
    pub max_payload: usize,
    /// A WebSocket message over this many bytes closes the connection.
    pub max_frame: usize,
    /// Frames queued for one connection before it is cut as a slow consumer.
    pub outbound_queue: usize,
    /// Connections on this instance.
    pub max_connections: usize,
    /// Connections of one user on this instance.
    pub max_connections_per_user: usize,
    /// Events per second a connection may send (token bucket refill rate).
    pub rate: f64,
    /// Token bucket size.
    pub burst: f64,
    /// Refused events in a row before the connection is closed.
    pub rate_strikes: u32,
    /// Conversation rooms one connection may be in.
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

/// Who may join a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Membership {
    /// Any authenticated user.
    Open,
    /// Only the rooms in the token's `rooms` claim.
    Claims,
}

/// Rooms, messages, presence and calls.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct HubConfig {
    /// Room membership policy.
    pub membership: Membership,
    /// Window in which a repeated clientRef/tempId is not broadcast again.
    #[serde(with = "humantime_serde")]
    pub dedup_window: Duration,
    /// How long a call offer marks the caller busy.
    #[serde(with = "humantime_serde")]
    pub call_busy_ttl: Duration,
    /// How long presence lives without activity.
    #[serde(with = "humantime_serde")]
    pub presence_ttl: Duration,
    /// Messages remembered for edits, deletes, reactions and read receipts.
    pub message_index: usize,
    /// How long a message is remembered.
    #[serde(with = "humantime_serde")]
    pub message_ttl: Duration,
}

/// What personal data leaves the gateway.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PrivacyConfig {
    /// Clients' IP addresses and User-Agents in presence snapshots and webhooks.
    pub client_info: bool,
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            membership: Membership::Open,
            dedup_window: Duration::from_secs(300),
            call_busy_ttl: Duration::from_secs(300),
            presence_ttl: Duration::from_secs(60),
            message_index: 100_000,
            message_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// WebRTC settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct WebRtcConfig {
    /// ICE servers, as browsers' RTCPeerConnection takes them.
    pub ice_servers: Vec<IceServer>,
}

/// One ICE server.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// One HTTP server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListenerConfig {
    /// TCP port (0: any free port, for tests).
    pub port: u16,
    /// Environment variable that overrides the port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_env: Option<String>,
    /// Serve the HTTP API on this port.
    #[serde(default)]
    pub api: bool,
    /// Paths bound to dialects.
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

/// A transport a route speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// Raw WebSocket, one JSON frame per message.
    Websocket,
    /// Socket.IO (Engine.IO v4, websocket and polling).
    Socketio,
}

/// A path (and namespace) bound to a dialect.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
}

impl Config {
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
        if self.limits.max_payload == 0 {
            p.push("limits.max_payload must be at least 1".into());
        }
        if self.limits.max_frame < self.limits.max_payload {
            p.push(format!(
                "limits.max_frame ({}) must be at least limits.max_payload ({})",
                self.limits.max_frame, self.limits.max_payload
            ));
        }
        if self.limits.outbound_queue == 0 {
            p.push("limits.outbound_queue must be at least 1".into());
        }
        for (key, v) in [
            ("limits.max_connections", self.limits.max_connections),
            (
                "limits.max_connections_per_user",
                self.limits.max_connections_per_user,
            ),
            ("limits.max_rooms", self.limits.max_rooms),
        ] {
            if v == 0 {
                p.push(format!("{key} must be at least 1"));
            }
        }
        if !(self.limits.rate > 0.0 && self.limits.rate.is_finite()) {
            p.push(format!(
                "limits.rate ({}) must be a positive number of events per second",
                self.limits.rate
            ));
        }
        if !(self.limits.burst >= 1.0 && self.limits.burst.is_finite()) {
            p.push(format!(
                "limits.burst ({}) must be at least 1",
                self.limits.burst
            ));
        }
        if self.bus.queue == 0 {
            p.push("bus.queue must be at least 1".into());
        }
        if self.amqp.queue == 0 || self.amqp.prefetch == 0 {
            p.push("amqp.queue and amqp.prefetch must be at least 1".into());
        }
        if self.bus.kind == BusKind::Redis && !self.redis.url.starts_with("redis") {
            p.push(format!(
                "redis.url `{}` must be a redis:// or rediss:// URL",
                self.redis.url
            ));
        }
        for n in &self.redis.cluster {
            if !n.starts_with("redis://") && !n.starts_with("rediss://") {
                p.push(format!(
                    "redis.cluster: `{n}` must be a redis:// or rediss:// URL"
                ));
            }
        }
        if !self.amqp.url.is_empty() && !self.amqp.url.starts_with("amqp") {
            p.push(format!(
                "amqp.url `{}` must be an amqp:// or amqps:// URL",
                self.amqp.url
            ));
        }
        if !(0.0..1.0).contains(&self.webhooks.jitter) {
            p.push(format!(
                "webhooks.jitter ({}) must be at least 0 and below 1",
                self.webhooks.jitter
            ));
        }
        if self.webhooks.queue == 0
            || self.webhooks.concurrency == 0
            || self.webhooks.dead_letters == 0
        {
            p.push(
                "webhooks.queue, webhooks.concurrency and webhooks.dead_letters must be at least 1"
                    .into(),
            );
        }
        for a in &self.webhooks.allow {
            if a.parse::<ipnet::IpNet>().is_err() && a.parse::<std::net::IpAddr>().is_err() {
                p.push(format!(
                    "webhooks.allow: `{a}` is not an address or CIDR range"
                ));
            }
        }
        let mut names = BTreeSet::new();
        for (i, w) in self.webhook.iter().enumerate() {
            if !w.url.starts_with("http://") && !w.url.starts_with("https://") {
                p.push(format!(
                    "webhook[{i}].url `{}` must be an http:// or https:// URL",
                    w.url
                ));
            } else if w.url.parse::<hyper::Uri>().is_err() {
                p.push(format!("webhook[{i}].url `{}` is not a URL", w.url));
            }
            if w.secrets.is_empty() || w.secrets.iter().any(String::is_empty) {
                p.push(format!(
                    "webhook[{i}].secrets must hold at least one non-empty secret"
                ));
            }
            if w.standard && w.secrets.iter().any(|s| !s.starts_with("whsec_")) {
                p.push(format!(
                    "webhook[{i}]: Standard Webhooks secrets start with `whsec_`"
                ));
            }
            if w.timeout.is_zero() {
                p.push(format!("webhook[{i}].timeout must be longer than 0s"));
            }
            if !names.insert(w.name.clone()) {
                p.push(format!("webhook[{i}].name `{}` is used twice", w.name));
            }
        }
        if self.cors.allowed_origins.is_empty() {
            p.push("cors.allowed_origins must list at least one origin (or \"*\")".into());
        }
        if self.hub.message_index == 0 {
            p.push("hub.message_index must be at least 1".into());
        }
        for (key, d) in [
            ("socketio.ping_interval", self.socketio.ping_interval),
            ("socketio.ping_timeout", self.socketio.ping_timeout),
            ("socketio.connect_timeout", self.socketio.connect_timeout),
            ("hub.presence_ttl", self.hub.presence_ttl),
            ("hub.call_busy_ttl", self.hub.call_busy_ttl),
        ] {
            if d.is_zero() {
                p.push(format!("{key} must be longer than 0s"));
            }
        }
        if self.socketio.transports.is_empty() {
            p.push("socketio.transports must name at least one transport".into());
        }
        for t in &self.socketio.transports {
            if t != "websocket" && t != "polling" {
                p.push(format!(
                    "socketio.transports: unknown transport `{t}` (websocket, polling)"
                ));
            }
        }
        if self.listeners.is_empty() {
            p.push("at least one [[listener]] is needed".into());
        }
        let mut ports = BTreeSet::new();
        for (i, l) in self.listeners.iter().enumerate() {
            if l.port != 0 && !ports.insert(l.port) {
                p.push(format!("listener[{i}].port: port {} is used twice", l.port));
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
                    && !self.upstreams.iter().any(|x| &x.name == u)
                {
                    p.push(format!("{key}.upstream: no [[upstream]] is named `{u}`"));
                }
            }
        }
        upstream::problems(&self.upstreams, &mut p);
        p
    }

    /// The configuration as TOML with secrets redacted.
    pub fn redacted_toml(&self) -> String {
        let mut c = self.clone();
        if !c.auth.secret.is_empty() {
            c.auth.secret = "<redacted>".into();
        }
        c.redis.url = redact_url(&c.redis.url);
        c.redis.cluster = c.redis.cluster.iter().map(|u| redact_url(u)).collect();
        if !c.internal_api.secret.is_empty() {
            c.internal_api.secret = "<redacted>".into();
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
fn redact_url(url: &str) -> String {
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

/// A list of durations as humantime texts.
mod humantime_list {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &[Duration], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(d.iter().map(|d| humantime::format_duration(*d).to_string()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|s| {
                humantime::parse_duration(s)
                    .map_err(|e| serde::de::Error::custom(format!("`{s}` is not a duration: {e}")))
            })
            .collect()
    }
}

/// `Duration` as humantime text ("25s", "5m") in TOML.
pub(crate) mod humantime_serde {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| {
            serde::de::Error::custom(format!("`{s}` is not a duration like 30s or 5m: {e}"))
        })
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
