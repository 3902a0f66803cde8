//! RabbitMQ beside the bus (lapin). Outbound: every canonical event that crosses the bus
//! is published to a durable topic exchange (routing key = canonical name, body =
//! canonical JSON, persistent), with publisher confirms; an event is taken off the queue
//! only once the broker confirmed it, so a broker restart loses nothing that was queued.
//! Inbound: a durable queue of events other services put there (canonical JSON, or a
//! dialect's wire form with a `dialect` header) is consumed and delivered to clients
//! through the bus; a message is acked only after the bus took it. Both sides reconnect
//! with backoff after a broker restart, and redeclare what they use.

pub use super::amqp_connect::Broker;
use crate::config::AmqpConfig;
use crate::dialect::Registry;
use crate::event::Event;
use crate::telemetry::Metrics;
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    BasicRejectOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Confirmation, ExchangeKind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::mpsc;

/// The origin dialect given to events that came from the inbound queue (they are not
/// published back to the exchange).
pub const ORIGIN: &str = "amqp";

/// Where inbound events go: the hub, which publishes them on the bus.
pub trait Inject: Send + Sync {
    /// The dialects, to read wire-form messages.
    fn registry(&self) -> Arc<Registry>;
    /// Delivers an event to its target's clients on every instance.
    ///
    /// # Errors
    /// The bus did not take it (the message is requeued).
    fn inject(&self, event: Event) -> Injecting<'_>;
}

/// An injection under way: the hub keeps the event in the room history, then
/// publishes it.
pub type Injecting<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>>;

/// The link's state and counters (`switchboard_amqp_events_total`).
pub struct AmqpStats {
    /// Whether the connection is up.
    pub connected: AtomicBool,
    metrics: Arc<Metrics>,
}

/// Why a broker session ended.
#[derive(Debug, thiserror::Error)]
enum LinkError {
    /// The connection or a channel failed.
    #[error("{0}")]
    Broker(#[from] lapin::Error),
    /// The broker cancelled the consumer (the queue was deleted, or the node stopped).
    #[error("the inbound consumer was cancelled")]
    ConsumerEnded,
}

/// The link to RabbitMQ.
pub struct AmqpLink {
    out: mpsc::Sender<(String, Vec<u8>)>,
    /// Its counters.
    pub stats: Arc<AmqpStats>,
}

impl AmqpLink {
    /// Starts the publisher and the consumer; they connect (and reconnect) by themselves.
    pub fn start(
        cfg: &AmqpConfig,
        broker: Broker,
        instance: &str,
        inject: Weak<dyn Inject>,
        metrics: Arc<Metrics>,
    ) -> AmqpLink {
        let (out, rx) = mpsc::channel(cfg.queue);
        let stats = Arc::new(AmqpStats {
            connected: AtomicBool::new(false),
            metrics,
        });
        tokio::spawn(run(
            cfg.clone(),
            broker,
            instance.to_string(),
            rx,
            inject,
            stats.clone(),
        ));
        AmqpLink { out, stats }
    }

    /// Queues an event for the exchange, unless it came from RabbitMQ; never waits.
    pub fn export(&self, event: &Event) {
        if event
            .meta
            .origin
            .as_ref()
            .is_some_and(|o| &*o.dialect == ORIGIN)
        {
            return;
        }
        let Ok(body) = serde_json::to_vec(event) else {
            return;
        };
        if self.out.try_send((event.name.to_string(), body)).is_err() {
            self.stats.metrics.amqp("out", "dropped");
            tracing::warn!(event = %event.name, "amqp export queue full: event not exported");
        }
    }

    /// Whether the broker connection is up.
    pub fn ready(&self) -> bool {
        self.stats.connected.load(Ordering::Relaxed)
    }
}

impl super::Export for AmqpLink {
    /// Queued for the exchange (published with confirms by the link's task): a fact is
    /// accepted once queued; what is not yet confirmed at a crash can be lost.
    fn export(&self, event: &Event, _: &Registry) -> super::Stored {
        AmqpLink::export(self, event);
        super::Stored::done()
    }
}

/// One connection's life: publish and consume until it fails; then again, with backoff.
async fn run(
    cfg: AmqpConfig,
    broker: Broker,
    instance: String,
    mut rx: mpsc::Receiver<(String, Vec<u8>)>,
    inject: Weak<dyn Inject>,
    stats: Arc<AmqpStats>,
) {
    let mut backoff = Duration::from_millis(100);
    // The event being published when the connection failed: published first next time.
    let mut pending: Option<(String, Vec<u8>)> = None;
    loop {
        if inject.upgrade().is_none() {
            return;
        }
        match session(
            &cfg,
            &broker,
            &instance,
            &mut rx,
            &mut pending,
            &inject,
            &stats,
        )
        .await
        {
            Ok(()) => return,
            Err(e) => {
                stats.connected.store(false, Ordering::Relaxed);
                tracing::warn!("rabbitmq: {e}; reconnecting in {backoff:?}");
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn session(
    cfg: &AmqpConfig,
    broker: &Broker,
    instance: &str,
    rx: &mut mpsc::Receiver<(String, Vec<u8>)>,
    pending: &mut Option<(String, Vec<u8>)>,
    inject: &Weak<dyn Inject>,
    stats: &Arc<AmqpStats>,
) -> Result<(), LinkError> {
    let conn = broker.connect().await?;
    let publish = conn.create_channel().await?;
    publish
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    publish
        .exchange_declare(
            cfg.exchange.as_str().into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    let consume = conn.create_channel().await?;
    consume
        .queue_declare(
            cfg.inbound_queue.as_str().into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await?;
    consume
        .basic_qos(cfg.prefetch, BasicQosOptions::default())
        .await?;
    let mut consumer = consume
        .basic_consume(
            cfg.inbound_queue.as_str().into(),
            format!("switchboard-{instance}").into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    stats.connected.store(true, Ordering::Relaxed);
    tracing::info!(exchange = %cfg.exchange, queue = %cfg.inbound_queue, "rabbitmq connected");
    let props = BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2);
    loop {
        if pending.is_none() {
            tokio::select! {
                next = rx.recv() => match next {
                    Some(m) => *pending = Some(m),
                    None => return Ok(()),
                },
                d = consumer.next() => {
                    let Some(d) = d else {
                        return Err(LinkError::ConsumerEnded);
                    };
                    inbound(d?, inject, stats).await?;
                    continue;
                }
            }
        }
        if let Some((key, body)) = pending.as_ref() {
            let confirm = publish
                .basic_publish(
                    cfg.exchange.as_str().into(),
                    key.as_str().into(),
                    BasicPublishOptions::default(),
                    body,
                    props.clone(),
                )
                .await?
                .await?;
            match confirm {
                Confirmation::Nack(_) => {
                    tracing::warn!(event = %key, "rabbitmq refused an event; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                _ => {
                    stats.metrics.amqp("out", "confirmed");
                    *pending = None;
                }
            }
        }
    }
}

/// Reads one inbound message and hands it to the bus; acks only once the bus took it.
async fn inbound(
    d: lapin::message::Delivery,
    inject: &Weak<dyn Inject>,
    stats: &AmqpStats,
) -> Result<(), LinkError> {
    let Some(hub) = inject.upgrade() else {
        d.acker
            .nack(BasicNackOptions {
                requeue: true,
                ..Default::default()
            })
            .await?;
        return Ok(());
    };
    let headers = d.properties.headers().clone().unwrap_or_default();
    let header = |name: &str| -> Option<String> {
        headers.inner().get(name).and_then(|v| match v {
            AMQPValue::LongString(s) => Some(s.to_string()),
            AMQPValue::ShortString(s) => Some(s.to_string()),
            _ => None,
        })
    };
    let (dialect, target) = (header("dialect"), header("target"));
    match crate::dialect::external::read(
        &d.data,
        dialect.as_deref(),
        target.as_deref(),
        ORIGIN,
        &hub.registry(),
    ) {
        Err(why) => {
            stats.metrics.amqp("in", "rejected");
            tracing::warn!("rabbitmq: rejected an inbound message: {why}");
            d.acker
                .reject(BasicRejectOptions { requeue: false })
                .await?;
            Ok(())
        }
        Ok(events) => {
            for ev in events {
                if let Err(e) = hub.inject(ev).await {
                    stats.metrics.amqp("in", "requeued");
                    tracing::warn!(
                        "rabbitmq: the bus did not take an inbound event ({e}); requeued"
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    d.acker
                        .nack(BasicNackOptions {
                            requeue: true,
                            ..Default::default()
                        })
                        .await?;
                    return Ok(());
                }
            }
            stats.metrics.amqp("in", "delivered");
            d.acker.ack(BasicAckOptions::default()).await?;
            Ok(())
        }
    }
}
