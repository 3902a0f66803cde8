//! Signed webhooks to the master service: every canonical event the `webhook` dialect
//! maps is POSTed, as `{id, type, timestamp, data}`, to every endpoint that wants its
//! type; signed (`sign.rs`), sent only to allowed targets (`guard.rs`), one attempt at a
//! time per request slot (`send.rs`), retried on a schedule with jitter, parked while an
//! endpoint answers 410, and dead-lettered after the last attempt (`queue.rs`). Each
//! endpoint has its own queue and workers: one slow or failing endpoint never delays the
//! others. With RabbitMQ configured the queues are durable (`durable.rs`): pending
//! deliveries survive a restart or a SIGKILL; without it they are in memory (bounded;
//! lost on restart: a warning says so at start).

mod durable;
mod guard;
mod queue;
mod send;
mod sign;

pub use guard::Guard;
pub use queue::DeadLetter;
pub use send::{Outcome, Payload};
pub use sign::{github_style, standard};

use crate::config::{AmqpConfig, WebhookEndpoint, WebhooksConfig};
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
    durable: Option<(durable::Durable, Vec<WebhookEndpoint>)>,
    metrics: Arc<Metrics>,
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
    /// Deliveries waiting (first attempts and retries) in memory; `None` when they wait
    /// in RabbitMQ (see its queues `switchboard.webhooks.<name>` and `.retry`).
    pub queued: Option<usize>,
}

impl Webhooks {
    /// Starts the workers of every endpoint: on durable queues in RabbitMQ when `amqp`
    /// is given, else in memory.
    pub fn start(
        endpoints: &[WebhookEndpoint],
        settings: &WebhooksConfig,
        metrics: Arc<Metrics>,
        amqp: Option<&AmqpConfig>,
    ) -> Webhooks {
        let guard = Arc::new(Guard::new(&settings.allow));
        let http = send::client(guard.clone());
        let dead = Arc::new(queue::DeadLetters::new(
            settings.dead_letters,
            metrics.clone(),
        ));
        if let Some(amqp) = amqp {
            let d =
                durable::Durable::start(amqp, endpoints, settings, http, guard, metrics.clone());
            return Webhooks {
                endpoints: Vec::new(),
                dead,
                durable: Some((d, endpoints.to_vec())),
                metrics,
            };
        }
        let eps = endpoints
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
        Webhooks {
            endpoints: eps,
            dead,
            durable: None,
            metrics,
        }
    }

    /// At shutdown: hands every offered delivery to RabbitMQ (durable mode, up to
    /// `deadline`), or reports what the in-memory queues lose.
    pub async fn flush(&self, deadline: std::time::Duration) {
        match &self.durable {
            Some((d, _)) => {
                let left = d.flush(deadline).await;
                if left > 0 {
                    tracing::warn!(
                        left,
                        "webhook deliveries not yet in RabbitMQ at shutdown are lost"
                    );
                } else {
                    tracing::info!("webhook deliveries all handed to RabbitMQ");
                }
            }
            None => {
                let pending: usize = self
                    .endpoints
                    .iter()
                    .map(|e| e.status().queued.unwrap_or(0))
                    .sum();
                if pending > 0 {
                    tracing::warn!(
                        pending,
                        "webhook deliveries pending in memory are lost at shutdown (configure AMQP_URL)"
                    );
                }
            }
        }
    }

    /// Whether pending deliveries are kept in RabbitMQ.
    pub fn is_durable(&self) -> bool {
        self.durable.is_some()
    }

    /// Queues `event` for every endpoint that wants its type (events the webhook dialect
    /// does not map are not webhooks). Never waits.
    pub fn offer(&self, event: &Event, registry: &Registry) {
        if self.endpoints.is_empty() && self.durable.is_none() {
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
            trace: event.meta.trace_id.to_string(),
        });
        for ep in &self.endpoints {
            ep.offer(&payload);
        }
        if let Some((d, eps)) = &self.durable {
            for ep in eps
                .iter()
                .filter(|e| e.events.is_empty() || e.events.contains(&payload.kind))
            {
                d.offer(&ep.name, &payload, &self.metrics);
            }
        }
    }

    /// Every endpoint's state.
    pub fn status(&self) -> Vec<EndpointStatus> {
        match &self.durable {
            Some((d, eps)) => eps
                .iter()
                .map(|e| EndpointStatus {
                    name: e.name.clone(),
                    url: e.url.clone(),
                    disabled: d.is_disabled(&e.name),
                    queued: None,
                })
                .collect(),
            None => self.endpoints.iter().map(|e| e.status()).collect(),
        }
    }

    /// Re-enables an endpoint parked after a 410; false if there is none by that name.
    pub fn enable(&self, name: &str) -> bool {
        if let Some((d, _)) = &self.durable {
            return d.enable(name);
        }
        match self.endpoints.iter().find(|e| e.name() == name) {
            Some(e) => {
                e.enable();
                true
            }
            None => false,
        }
    }

    /// The dead letters, oldest first.
    ///
    /// # Errors
    /// RabbitMQ (holding them) is unreachable.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, String> {
        match &self.durable {
            Some((d, _)) => d.dead_letters().await,
            None => Ok(self.dead.list()),
        }
    }

    /// Puts dead letters back in their endpoints' queues for a fresh schedule (all, or
    /// those with this event id); returns how many.
    ///
    /// # Errors
    /// RabbitMQ (holding them) is unreachable.
    pub async fn replay(&self, id: Option<&str>) -> Result<usize, String> {
        if let Some((d, _)) = &self.durable {
            return d.replay(id).await;
        }
        let letters = self.dead.take(id);
        let n = letters.len();
        for l in letters {
            if let Some(ep) = self.endpoints.iter().find(|e| e.name() == l.endpoint) {
                ep.offer(&Arc::new(l.payload()));
            }
        }
        Ok(n)
    }
}
