//! Signed webhooks to the master service: every canonical event the `webhook` dialect
//! maps is POSTed, as `{id, type, timestamp, data}`, to every endpoint that wants its
//! type; signed (`sign.rs`), sent only to allowed targets (`guard.rs`), one attempt at a
//! time per request slot (`send.rs`), retried on a schedule with jitter, parked while an
//! endpoint answers 410, and dead-lettered after the last attempt (`queue.rs`). Each
//! endpoint has its own queue and workers: one slow or failing endpoint never delays the
//! others. The queue is in memory (bounded; lost on restart: a warning says so at start).

mod guard;
mod queue;
mod send;
mod sign;

pub use guard::Guard;
pub use queue::DeadLetter;
pub use send::{Outcome, Payload};
pub use sign::{github_style, standard};

use crate::config::{WebhookEndpoint, WebhooksConfig};
use crate::dialect::{Direction, Framing, Registry, write_frame};
use crate::event::Event;
use crate::telemetry::Metrics;
use queue::Endpoint;
use serde::Serialize;
use std::sync::Arc;

/// The webhook engine.
pub struct Webhooks {
    endpoints: Vec<Arc<Endpoint>>,
    dead: Arc<queue::DeadLetters>,
}

/// An endpoint's state, for the internal API.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointStatus {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// Parked after a 410, until re-enabled.
    pub disabled: bool,
    /// Deliveries waiting (first attempts and retries).
    pub queued: usize,
}

impl Webhooks {
    /// Starts the workers of every endpoint.
    pub fn start(
        endpoints: &[WebhookEndpoint],
        settings: &WebhooksConfig,
        metrics: Arc<Metrics>,
    ) -> Webhooks {
        let http = send::client();
        let guard = Arc::new(Guard::new(&settings.allow));
        let dead = Arc::new(queue::DeadLetters::new(
            settings.dead_letters,
            metrics.clone(),
        ));
        let endpoints = endpoints
            .iter()
            .map(|cfg| {
                Endpoint::start(
                    cfg.clone(),
                    settings.clone(),
                    http.clone(),
                    guard.clone(),
                    dead.clone(),
                    metrics.clone(),
                )
            })
            .collect();
        Webhooks { endpoints, dead }
    }

    /// Queues `event` for every endpoint that wants its type (events the webhook dialect
    /// does not map are not webhooks). Never waits.
    pub fn offer(&self, event: &Event, registry: &Registry) {
        if self.endpoints.is_empty() {
            return;
        }
        let Some(d) = registry.dialect("webhook") else {
            return;
        };
        let Ok(enc) = d.encode(event, Direction::Down) else {
            return;
        };
        let mut body = Vec::with_capacity(256);
        write_frame(
            Framing::Webhook,
            &enc.name,
            enc.payload.as_ref(),
            &event.meta,
            &mut body,
        );
        let id = {
            let mut s = String::new();
            event.meta.id.with_str(|i| s.push_str(i));
            if s.starts_with("evt_") {
                s
            } else {
                format!("evt_{s}")
            }
        };
        let payload = Arc::new(Payload {
            id,
            kind: enc.name.to_string(),
            body: String::from_utf8(body).unwrap_or_default(),
        });
        for ep in &self.endpoints {
            ep.offer(&payload);
        }
    }

    /// Every endpoint's state.
    pub fn status(&self) -> Vec<EndpointStatus> {
        self.endpoints.iter().map(|e| e.status()).collect()
    }

    /// Re-enables an endpoint parked after a 410; false if there is none by that name.
    pub fn enable(&self, name: &str) -> bool {
        match self.endpoints.iter().find(|e| e.name() == name) {
            Some(e) => {
                e.enable();
                true
            }
            None => false,
        }
    }

    /// The dead letters, oldest first.
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.dead.list()
    }

    /// Puts dead letters back in their endpoints' queues for a fresh schedule (all, or
    /// those with this event id); returns how many.
    pub fn replay(&self, id: Option<&str>) -> usize {
        let letters = self.dead.take(id);
        let n = letters.len();
        for l in letters {
            if let Some(ep) = self.endpoints.iter().find(|e| e.name() == l.endpoint) {
                ep.offer(&Arc::new(l.payload()));
            }
        }
        n
    }
}
