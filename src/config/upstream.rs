//! `[[upstream]]`: a legacy backend that routes front, with how its sessions are opened,
//! which canonical events go to it and which stay with the hub, how the client's token
//! is forwarded, and which HTTP prefixes are passed through to it.

use super::Transport;
use super::duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Where the client's token goes on the upstream handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TokenForward {
    /// Socket.IO `auth: { <token_param>: token }`.
    Auth,
    /// Socket.IO `auth: { <token_param>: "Bearer " + token }`.
    AuthBearer,
    /// `?<token_param>=token` on the handshake URL.
    Query,
    /// `Authorization: Bearer token`.
    Header,
    /// Not forwarded.
    None,
}

/// When a client's upstream session opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ConnectMode {
    /// When the client connects: a refusal reaches the client at once.
    #[default]
    Eager,
    /// At the client's first event for the backend.
    Lazy,
}

/// Re-signing the client's token for a backend that expects other claims.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Resign {
    /// Re-sign: the backend's HS256 secret; the client's verified claims are minted into
    /// a token for the backend. Or sign with `key` instead.
    #[serde(default)]
    pub secret: String,
    /// A private key (PEM) to sign with instead of `secret`, for backends that verify
    /// with its public key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub key: Option<std::path::PathBuf>,
    /// The algorithm of `key`: RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or
    /// EdDSA.
    #[serde(default = "default_resign_alg")]
    pub algorithm: String,
    /// The `kid` re-signed tokens name in their header (with `key`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Lifetime of a re-signed token.
    #[serde(default = "default_resign_ttl", with = "duration::text")]
    #[schemars(with = "String")]
    pub ttl: Duration,
    /// Backend claim ← client claim (`{ userId = "sub" }`); empty: every client claim as
    /// it is.
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
    /// Fixed claims added to re-signed tokens (`{ aud = "legacy" }`).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub extra: BTreeMap<String, toml::Value>,
}

fn default_resign_alg() -> String {
    "RS256".into()
}

fn default_resign_ttl() -> Duration {
    Duration::from_secs(300)
}

/// One legacy backend (`[[upstream]]`; the default configuration has none).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UpstreamConfig {
    /// The name routes give as `upstream`; also the metrics label.
    pub name: String,
    /// Raw WebSocket: the backend's `ws://` URL. Socket.IO: its `http://` base URL.
    pub url: String,
    /// The dialect the backend speaks.
    pub dialect: String,
    /// `websocket` or `socketio` (Engine.IO v4 over websocket).
    pub transport: Transport,
    /// Socket.IO path.
    #[serde(default = "default_sio_path")]
    pub path: String,
    /// Socket.IO namespace.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Where the client's token goes: `auth`, `auth-bearer`, `query`, `header`
    /// (`Authorization: Bearer`), `none`. Unset: `auth` for Socket.IO, `query` for raw
    /// WebSocket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenForward>,
    /// The auth key or query parameter carrying the token.
    #[serde(default = "default_token_param")]
    pub token_param: String,
    /// Verify the client's token with the route's auth provider first (implied by `resign`, `hub`
    /// and `shared`); else the backend alone decides.
    #[serde(default)]
    pub verify: bool,
    /// Mint a token for the backend from the client's verified claims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resign: Option<Resign>,
    /// `eager`: the backend session opens when the client connects; `lazy`: at its first
    /// event for the backend.
    #[serde(default)]
    pub connect: ConnectMode,
    /// Canonical events (`presence.*` for a family) the hub handles instead: intents go
    /// to the hub, the backend's facts of these names are dropped.
    #[serde(default)]
    pub hub: Vec<String>,
    /// Canonical intents sent to both the hub and the backend (`room.join`); the ack
    /// comes from the backend.
    #[serde(default)]
    pub shared: Vec<String>,
    /// HTTP path prefixes reverse-proxied to the backend's REST API (`/api/rooms/`).
    #[serde(default)]
    pub http: Vec<String>,
    /// Base URL of the REST API, when not at `url`'s host and port (empty: `url`'s
    /// scheme, host and port).
    #[serde(default)]
    pub http_url: String,
    /// How long opening a backend session may take (then: the client's `unavailable`
    /// error and close).
    #[serde(default = "default_connect_timeout", with = "duration::text")]
    #[schemars(with = "String")]
    pub connect_timeout: Duration,
    /// How long a client's ack waits for the backend's answer (then: `{success: false,
    /// code: "timeout"}`).
    #[serde(default = "default_ack_timeout", with = "duration::text")]
    #[schemars(with = "String")]
    pub ack_timeout: Duration,
    /// How long a passed-through HTTP request may take (then: 504).
    #[serde(default = "default_http_timeout", with = "duration::text")]
    #[schemars(with = "String")]
    pub http_timeout: Duration,
    /// Frames queued toward the backend per session; over it, the client's event is
    /// refused (`unavailable`).
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Client acks waiting for the backend per session; over it, answered at once with
    /// `unavailable`.
    #[serde(default = "default_max_acks")]
    pub max_acks: usize,
    /// Which fact a backend's Socket.IO ack carries, per intent, beside the built-in
    /// table (`message.send` → `message.created`, …).
    #[serde(default)]
    pub answers: BTreeMap<String, String>,
    /// The backend's facts exported like the hub's own (to the webhooks and the RabbitMQ
    /// exchange), each once however many sessions receive it: canonical names, `message.*`
    /// for a family. Unset: the facts the webhook dialect maps; `[]`: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<Vec<String>>,
    /// Exported facts also reach the hub's clients of the same room on the other routes
    /// (not this upstream's own, who have them from the backend): half a fleet on the
    /// legacy backend, half on the hub, during a migration.
    #[serde(default)]
    pub bridge: bool,
    /// TLS for `wss://` and `https://` URLs (sessions and passthrough): a private CA
    /// (`ca`), a client certificate (`cert`, `key`). Unset: the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<super::ClientTls>,
}

fn default_sio_path() -> String {
    "/socket.io".into()
}
fn default_namespace() -> String {
    "/".into()
}
fn default_token_param() -> String {
    "token".into()
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_ack_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_http_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_queue() -> usize {
    256
}
fn default_max_acks() -> usize {
    64
}

impl UpstreamConfig {
    /// Where the token goes, with the transport's default.
    pub fn token_forward(&self) -> TokenForward {
        self.token.unwrap_or(match self.transport {
            Transport::Socketio => TokenForward::Auth,
            Transport::Websocket => TokenForward::Query,
        })
    }

    /// Whether the client's token is verified here before the session opens.
    pub fn verifies(&self) -> bool {
        self.verify || self.resign.is_some() || self.uses_hub()
    }

    /// Whether some events go to the hub (the client is then also a hub connection).
    pub fn uses_hub(&self) -> bool {
        !self.hub.is_empty() || !self.shared.is_empty()
    }

    /// The base URL HTTP requests are passed to.
    pub fn http_base(&self) -> String {
        let base = if self.http_url.is_empty() {
            &self.url
        } else {
            &self.http_url
        };
        let base = base
            .replacen("ws://", "http://", 1)
            .replacen("wss://", "https://", 1);
        match base.find("://").map(|i| i + 3) {
            Some(start) => match base[start..].find('/') {
                Some(slash) if self.http_url.is_empty() => base[..start + slash].to_string(),
                _ => base.trim_end_matches('/').to_string(),
            },
            None => base,
        }
    }
}

/// Every impossible `[[upstream]]` value, each naming its key.
pub(super) fn problems(ups: &[UpstreamConfig], p: &mut Vec<String>) {
    let mut names = BTreeSet::new();
    for (i, u) in ups.iter().enumerate() {
        let key = format!("upstream[{i}]");
        if u.name.is_empty() {
            p.push(format!("{key}.name must not be empty"));
        } else if !names.insert(u.name.clone()) {
            p.push(format!("{key}.name `{}` is used twice", u.name));
        }
        let schemes: &[&str] = match u.transport {
            Transport::Websocket => &["ws://", "wss://"],
            Transport::Socketio => &["http://", "https://", "ws://", "wss://"],
        };
        if !schemes.iter().any(|s| u.url.starts_with(s)) {
            p.push(format!(
                "{key}.url `{}` must start with {}",
                u.url,
                schemes.join(" or ")
            ));
        } else if u.url.parse::<hyper::Uri>().is_err() {
            p.push(format!("{key}.url `{}` is not a URL", u.url));
        }
        if let Some(t) = &u.tls {
            t.check(&key, p);
        }
        if u.transport == Transport::Socketio {
            if !u.path.starts_with('/') {
                p.push(format!("{key}.path `{}` must start with `/`", u.path));
            }
            if !u.namespace.starts_with('/') {
                p.push(format!(
                    "{key}.namespace `{}` must start with `/`",
                    u.namespace
                ));
            }
        }
        let fwd = u.token_forward();
        if u.transport == Transport::Websocket
            && matches!(fwd, TokenForward::Auth | TokenForward::AuthBearer)
        {
            p.push(format!(
                "{key}.token: `auth` is a Socket.IO handshake field; a raw WebSocket backend takes `query` or `header`"
            ));
        }
        if u.token_param.is_empty() {
            p.push(format!("{key}.token_param must not be empty"));
        }
        if let Some(r) = &u.resign {
            match (&r.key, r.secret.is_empty()) {
                (None, true) => p.push(format!("{key}.resign: a secret or a key is needed")),
                (Some(_), false) => {
                    p.push(format!("{key}.resign: a secret or a key, not both"));
                }
                (Some(_), true) if !super::auth::PUBLIC.contains(&r.algorithm.as_str()) => {
                    p.push(format!(
                        "{key}.resign.algorithm `{}` does not sign with a private key",
                        r.algorithm
                    ));
                }
                _ => {}
            }
            if r.ttl.is_zero() {
                p.push(format!("{key}.resign.ttl must be longer than 0s"));
            }
        }
        for (k, d) in [
            ("connect_timeout", u.connect_timeout),
            ("ack_timeout", u.ack_timeout),
            ("http_timeout", u.http_timeout),
        ] {
            if d.is_zero() {
                p.push(format!("{key}.{k} must be longer than 0s"));
            }
        }
        if u.queue == 0 || u.max_acks == 0 {
            p.push(format!("{key}.queue and {key}.max_acks must be at least 1"));
        }
        for h in &u.http {
            if !h.starts_with('/') {
                p.push(format!("{key}.http: prefix `{h}` must start with `/`"));
            }
        }
        let http_url_ok = u.http_url.is_empty()
            || (u.http_url.starts_with("http://") && u.http_url.parse::<hyper::Uri>().is_ok());
        if !http_url_ok {
            p.push(format!(
                "{key}.http_url `{}` must be an http:// URL",
                u.http_url
            ));
        }
        for e in &u.hub {
            if u.shared.contains(e) {
                p.push(format!("{key}: `{e}` is in both hub and shared"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn up(url: &str, http_url: &str) -> UpstreamConfig {
        let text = format!(
            "name = \"b\"\nurl = \"{url}\"\ndialect = \"nexus\"\ntransport = \"websocket\"\nhttp_url = \"{http_url}\"\n"
        );
        toml::from_str(&text).expect("parses")
    }

    #[test]
    fn the_http_base_comes_from_the_url_unless_given() {
        assert_eq!(
            up("ws://127.0.0.1:8080/ws", "").http_base(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(up("ws://h:1", "").http_base(), "http://h:1");
        assert_eq!(
            up("ws://h:1/ws", "http://api:9/v1/").http_base(),
            "http://api:9/v1"
        );
    }

    #[test]
    fn bad_values_are_named() {
        let mut u = up("http://x", "ftp://y");
        u.token = Some(TokenForward::Auth);
        u.queue = 0;
        u.http = vec!["api".into()];
        u.hub = vec!["presence.*".into()];
        u.shared = vec!["presence.*".into()];
        let mut p = Vec::new();
        problems(&[u.clone(), u], &mut p);
        let all = p.join("\n");
        for needle in [
            "upstream[0].url `http://x` must start with ws:// or wss://",
            "upstream[1].name `b` is used twice",
            "upstream[0].token: `auth` is a Socket.IO handshake field",
            "upstream[0].queue and upstream[0].max_acks must be at least 1",
            "upstream[0].http: prefix `api` must start with `/`",
            "upstream[0].http_url `ftp://y` must be an http:// URL",
            "upstream[0]: `presence.*` is in both hub and shared",
        ] {
            assert!(all.contains(needle), "{needle} not in\n{all}");
        }
    }
}
