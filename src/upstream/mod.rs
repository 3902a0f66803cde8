//! Fronting legacy backends: a route's clients are each given a session to a backend
//! in the backend's dialect (raw WebSocket or Socket.IO), and every event is translated
//! both ways through canonical events: the client's intents up, the backend's facts
//! down, acks bridged. Some events may stay with the hub (`hub`, `shared`). HTTP
//! requests under configured prefixes are passed through to the backend's REST API.

mod acks;
mod answer;
mod credentials;
mod link;
pub mod passthrough;
mod routing;
mod session;

pub use acks::Reply;
pub use credentials::{CredentialError, Credentials, Handshake};
pub use link::OpenError;
pub use routing::{Dest, Patterns, Routing};
pub use session::Session;

use crate::auth::{AuthError, Provider};
use crate::config::UpstreamConfig;
use crate::dialect::{Direction, Registry};
use crate::event::UserRef;
use crate::hub::Fronted;
use crate::telemetry::Name;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use thiserror::Error;

/// A configuration the registry cannot serve.
#[derive(Debug, Error)]
#[error("upstream `{name}`: {problem}")]
pub struct UpstreamError {
    /// The upstream.
    pub name: String,
    /// What is wrong.
    pub problem: String,
}

/// One configured backend.
pub struct Upstream {
    /// Its configuration.
    pub cfg: UpstreamConfig,
    /// Its name as a metrics label.
    pub label: Name,
    /// Which events go where.
    pub routing: Routing,
    /// How its handshake takes credentials.
    pub creds: Credentials,
    /// The fact a backend's ack carries, per intent.
    pub answers: BTreeMap<String, String>,
    /// Whether the backend's dialect announces sessions itself (else the gateway sends
    /// the client's ready event when the session opens).
    pub announces_ready: bool,
    /// The backend's facts exported (once each) to the webhooks and RabbitMQ.
    pub exports: Patterns,
    /// What the hub knows of it when it exports them.
    pub fronted: Fronted,
    /// What its `wss://` and `https://` connections trust and present.
    pub tls: Arc<rustls::ClientConfig>,
    /// Its HTTP passthrough client.
    pub http: passthrough::PassClient,
}

/// Every configured backend, by name.
#[derive(Default)]
pub struct Upstreams {
    by_name: HashMap<String, Arc<Upstream>>,
}

impl Upstreams {
    /// From the configuration, checked against the dialects.
    ///
    /// # Errors
    /// An unknown dialect, or a `hub`/`shared`/`answers` name the vocabulary lacks.
    pub fn new(cfgs: &[UpstreamConfig], reg: &Registry) -> Result<Upstreams, UpstreamError> {
        let mut by_name = HashMap::new();
        for c in cfgs {
            let err = |problem: String| UpstreamError {
                name: c.name.clone(),
                problem,
            };
            let d = reg
                .dialect(&c.dialect)
                .ok_or_else(|| err(format!("unknown dialect `{}`", c.dialect)))?;
            let routing = Routing::new(c);
            for p in routing.patterns() {
                let known = match p.strip_suffix('*') {
                    Some(prefix) => reg.vocab.order.iter().any(|n| n.starts_with(prefix)),
                    None => reg.vocab.event(p).is_some(),
                };
                if !known {
                    return Err(err(format!("`{p}` names no canonical event")));
                }
            }
            let mut answers = answer::default_answers();
            for (k, v) in &c.answers {
                if reg.vocab.event(k).is_none() || reg.vocab.event(v).is_none() {
                    return Err(err(format!(
                        "answers: `{k}` = `{v}` names no canonical event"
                    )));
                }
                answers.insert(k.clone(), v.clone());
            }
            let exports = Patterns(match &c.export {
                Some(list) => list.clone(),
                // The facts the webhook dialect maps: what a master service hears of
                // the hub's own.
                None => reg
                    .dialect("webhook")
                    .map(|w| {
                        reg.vocab
                            .order
                            .iter()
                            .filter(|n| w.encoders(n, Direction::Down).next().is_some())
                            .map(|n| n.to_string())
                            .collect()
                    })
                    .unwrap_or_default(),
            });
            for p in &exports.0 {
                let known = match p.strip_suffix('*') {
                    Some(prefix) => reg.vocab.order.iter().any(|n| n.starts_with(prefix)),
                    None => reg.vocab.event(p).is_some(),
                };
                if !known {
                    return Err(err(format!("export: `{p}` names no canonical event")));
                }
            }
            let tls = match &c.tls {
                Some(t) => crate::tls::client::config(Some(t), &format!("upstream {}", c.name))
                    .map_err(|e| err(format!("tls: {e}")))?,
                None => crate::tls::client::system(),
            };
            let announces_ready = d
                .rules
                .iter()
                .any(|r| r.decodes && r.dir == Direction::Down && &*r.canonical == "session.ready");
            by_name.insert(
                c.name.clone(),
                Arc::new(Upstream {
                    http: passthrough::client(tls.clone()),
                    tls,
                    label: Name::from(c.name.as_str()),
                    routing,
                    creds: Credentials::new(c).map_err(|e| err(format!("resign: {e}")))?,
                    answers,
                    announces_ready,
                    exports,
                    fronted: Fronted {
                        name: Arc::from(c.name.as_str()),
                        label: Name::from(c.name.as_str()),
                        dialect: Arc::from(c.dialect.as_str()),
                        bridge: c.bridge,
                    },
                    cfg: c.clone(),
                }),
            );
        }
        Ok(Upstreams { by_name })
    }

    /// A backend by name.
    pub fn get(&self, name: &str) -> Option<Arc<Upstream>> {
        self.by_name.get(name).cloned()
    }
}

/// Who a fronted client is: verified here when the upstream asks for it, else read
/// from the token for labels only (the backend verifies).
#[derive(Debug, Clone)]
pub struct Ident {
    /// The user.
    pub user: UserRef,
    /// Rooms its token grants (verified tokens only).
    pub rooms: Option<Vec<String>>,
    /// Every claim of a verified token (for re-signing).
    pub claims: Option<Map<String, Value>>,
    /// A verified token's `jti` (revocations name tokens by it).
    pub jti: Option<String>,
}

impl Upstream {
    /// Identifies a client of a route fronting this backend.
    ///
    /// # Errors
    /// The upstream verifies tokens here and this one is missing or bad.
    pub async fn identify(&self, auth: &Provider, token: Option<&str>) -> Result<Ident, AuthError> {
        if self.cfg.verifies() {
            let v = auth.verify(token.ok_or(AuthError::Missing)?).await?;
            return Ok(Ident {
                jti: v.jti().map(str::to_owned),
                user: v.identity.user,
                rooms: v.identity.rooms,
                claims: Some(v.claims),
            });
        }
        let user = token
            .and_then(crate::auth::unverified_user)
            .unwrap_or_else(|| UserRef {
                id: "anonymous".into(),
                name: None,
                image: None,
            });
        Ok(Ident {
            user,
            rooms: None,
            claims: None,
            jti: None,
        })
    }
}
