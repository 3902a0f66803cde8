//! Signed webhooks to the master service: every canonical event the `webhook` dialect
//! maps is POSTed, as `{id, type, timestamp, data}`, to every endpoint that wants its
//! type; signed (`sign.rs`), sent only to allowed targets (`guard.rs`), one attempt at a
//! time per request slot (`send.rs`), retried on a schedule with jitter, parked while an
//! endpoint answers 410, and dead-lettered after the last attempt (`queue.rs`). Each
//! endpoint has its own queue and workers: one slow or failing endpoint never delays the
//! others. Pending deliveries and dead letters are durable either way: in the embedded
//! store on disk (`journal.rs`, the default: one instance) or in RabbitMQ's durable
//! queues (`durable.rs`, when `amqp.url` is set: several instances share them). A
//! restart or a SIGKILL loses nothing that was stored.

mod dead_letters;
mod durable;
mod guard;
mod journal;
mod letter;
mod queue;
mod send;
mod sign;

pub use guard::Guard;
pub use journal::{JournalError, Receipt};
pub use letter::DeadLetter;
pub use send::{Outcome, Payload};
pub use sign::{github_style, standard};

use crate::config::{WebhookEndpoint, WebhooksConfig};
use crate::dialect::{Direction, Framing, Registry, write_frame};
use crate::event::Event;
use crate::telemetry::Metrics;
use serde::Serialize;
use std::sync::Arc;

/// The webhook engine.
pub struct Webhooks {
    queues: Queues,
    metrics: Arc<Metrics>,
}

/// Where pending deliveries live: one interface, two implementations.
enum Queues {
    /// The embedded store on disk (one instance; the default).
    Embedded(queue::Queues),
    /// Durable queues in RabbitMQ (several instances share them).
    RabbitMq {
        queues: durable::Durable,
        endpoints: Vec<WebhookEndpoint>,
    },
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
    /// Deliveries waiting (first attempts and retries); `None` when they wait in
    /// RabbitMQ (see its queues `switchboard.webhooks.<name>` and `.retry`).
    pub queued: Option<usize>,
}

/// Why the webhooks could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The embedded store.
    #[error("webhooks.store: {0}")]
    Store(JournalError),
    /// An endpoint's TLS files.
    #[error("webhook tls: {0}")]
    Tls(crate::tls::TlsError),
}

impl Webhooks {
    /// Starts the workers of every endpoint: on durable queues in RabbitMQ when `amqp`
    /// is given, else on the embedded store at `webhooks.store`.
    ///
    /// # Errors
    /// The embedded store cannot be opened (a path that cannot be created, a store
    /// another process holds), or an endpoint's TLS files do not load.
    pub fn start(
        endpoints: &[WebhookEndpoint],
        settings: &WebhooksConfig,
        metrics: Arc<Metrics>,
        amqp: Option<crate::bus::amqp::Broker>,
    ) -> Result<Webhooks, StartError> {
        let guard = Arc::new(Guard::new(&settings.allow));
        let http = send::Clients::build(&guard, endpoints).map_err(StartError::Tls)?;
        let queues = match amqp {
            Some(broker) => Queues::RabbitMq {
                queues: durable::Durable::start(
                    broker,
                    endpoints,
                    settings,
                    http,
                    guard,
                    metrics.clone(),
                ),
                endpoints: endpoints.to_vec(),
            },
            None => Queues::Embedded(
                queue::Queues::start(
                    std::path::Path::new(&settings.store),
                    endpoints,
                    settings,
                    &http,
                    &guard,
                    &metrics,
                )
                .map_err(StartError::Store)?,
            ),
        };
        Ok(Webhooks { queues, metrics })
    }

    /// At shutdown: hands every offered delivery to its store (up to `deadline` for
    /// RabbitMQ) and says what did not make it.
    pub async fn flush(&self, deadline: std::time::Duration) {
        match &self.queues {
            Queues::RabbitMq { queues, .. } => {
                let left = queues.flush(deadline).await;
                if left > 0 {
                    tracing::warn!(
                        left,
                        "webhook deliveries not yet in RabbitMQ at shutdown are lost"
                    );
                } else {
                    tracing::info!("webhook deliveries all handed to RabbitMQ");
                }
            }
            Queues::Embedded(q) => match q.flush().await {
                Ok(()) => tracing::info!(
                    pending = q.pending(),
                    "webhook deliveries stored; pending ones resume at the next start"
                ),
                Err(e) => tracing::error!("{e}: the last webhook deliveries may be lost"),
            },
        }
    }

    /// Queues `event` for every endpoint that wants its type (events the webhook dialect
    /// does not map are not webhooks). Never waits: the receipt settles once the
    /// deliveries are stored (at once for RabbitMQ, whose publisher confirms later).
    pub fn offer(&self, event: &Event, registry: &Registry) -> Receipt {
        let Some(d) = registry.dialect("webhook") else {
            return Receipt::settled();
        };
        let Ok(enc) = d.encode(event, Direction::Down) else {
            return Receipt::settled();
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
        match &self.queues {
            Queues::Embedded(q) => q.offer(&payload),
            Queues::RabbitMq { queues, endpoints } => {
                for ep in endpoints
                    .iter()
                    .filter(|e| e.events.is_empty() || e.events.contains(&payload.kind))
                {
                    queues.offer(&ep.name, &payload, &self.metrics);
                }
                Receipt::settled()
            }
        }
    }

    /// Every endpoint's state.
    pub fn status(&self) -> Vec<EndpointStatus> {
        match &self.queues {
            Queues::RabbitMq { queues, endpoints } => endpoints
                .iter()
                .map(|e| EndpointStatus {
                    name: e.name.clone(),
                    url: e.url.clone(),
                    disabled: queues.is_disabled(&e.name),
                    queued: None,
                })
                .collect(),
            Queues::Embedded(q) => q.status(),
        }
    }

    /// Re-enables an endpoint parked after a 410; false if there is none by that name.
    pub fn enable(&self, name: &str) -> bool {
        match &self.queues {
            Queues::RabbitMq { queues, .. } => queues.enable(name),
            Queues::Embedded(q) => q.enable(name),
        }
    }

    /// The dead letters, oldest first.
    ///
    /// # Errors
    /// RabbitMQ (holding them) is unreachable.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, String> {
        match &self.queues {
            Queues::RabbitMq { queues, .. } => queues.dead_letters().await,
            Queues::Embedded(q) => Ok(q.dead_letters()),
        }
    }

    /// Puts dead letters back in their endpoints' queues for a fresh schedule (all, or
    /// those with this event id); returns how many.
    ///
    /// # Errors
    /// The store holding them is unreachable.
    pub async fn replay(&self, id: Option<&str>) -> Result<usize, String> {
        match &self.queues {
            Queues::RabbitMq { queues, .. } => queues.replay(id).await,
            Queues::Embedded(q) => q.replay(id).await.map_err(|e| e.to_string()),
        }
    }
}

impl crate::bus::Export for Webhooks {
    /// Queued for every endpoint that wants the event's type; stored once its
    /// deliveries are (the embedded store), or at once (RabbitMQ's publisher confirms).
    fn export(&self, event: &Event, registry: &Registry) -> crate::bus::Stored {
        let receipt = self.offer(event, registry);
        if receipt.is_settled() {
            return crate::bus::Stored::done();
        }
        crate::bus::Stored::when(async move { receipt.stored().await.map_err(|e| e.to_string()) })
    }
}
