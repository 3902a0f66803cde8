//! Durable webhook queues in RabbitMQ (when `amqp.url` is set): pending deliveries live
//! in durable queues and survive a restart or a SIGKILL of switchboard.
//!
//! Per endpoint: `switchboard.webhooks.<name>` (work), and
//! `switchboard.webhooks.<name>.retry` (no consumer; each message expires after its
//! jittered delay and is dead-lettered back to the work queue). Shared:
//! `switchboard.webhooks.dead`. A delivery is published with publisher confirms; a work
//! message is acked only after its attempt was recorded: delivered, or its retry (or dead
//! letter) confirmed by the broker. A delivery in flight when the process dies is
//! delivered again after the restart, with the same id (at least once).
//!
//! One idea over 500 lines: the RabbitMQ implementation of the webhook queues (publisher,
//! consumers, retries and dead letters in the broker).

use super::guard::Guard;
use super::letter::DeadLetter;
use super::queue::retry_delay;
use super::send::{self, HttpClient, Outcome, Payload};
use crate::bus::amqp::Broker;
use crate::config::{WebhookEndpoint, WebhooksConfig};
use crate::event::{format_iso_millis, now_millis};
use crate::telemetry::{Metrics, Name, WebhookLabels};
use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions,
    BasicQosOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

const PREFIX: &str = "switchboard.webhooks";

/// Why a consumer session ended.
#[derive(Debug, thiserror::Error)]
enum SessionEnd {
    /// The connection or channel failed.
    #[error("{0}")]
    Broker(#[from] lapin::Error),
    /// The broker cancelled the consumer.
    #[error("the consumer was cancelled by the broker")]
    Cancelled,
}

fn work(name: &str) -> String {
    format!("{PREFIX}.{name}")
}

fn retry(name: &str) -> String {
    format!("{PREFIX}.{name}.retry")
}

fn dead() -> String {
    format!("{PREFIX}.dead")
}

/// The durable queues' client.
pub(super) struct Durable {
    out: mpsc::Sender<(String, Arc<Payload>)>,
    broker: Broker,
    disabled: Arc<HashMap<String, (AtomicBool, Notify)>>,
}

fn props(p: &Payload, attempts: u32) -> BasicProperties {
    let mut h = FieldTable::default();
    h.insert("type".into(), AMQPValue::LongString(p.kind.clone().into()));
    h.insert("id".into(), AMQPValue::LongString(p.id.clone().into()));
    h.insert("attempts".into(), AMQPValue::LongUInt(attempts));
    h.insert(
        "trace".into(),
        AMQPValue::LongString(p.trace.clone().into()),
    );
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_headers(h)
}

fn header<'a>(d: &'a lapin::message::Delivery, k: &str) -> Option<&'a AMQPValue> {
    d.properties.headers().as_ref()?.inner().get(k)
}

fn text(v: Option<&AMQPValue>) -> String {
    match v {
        Some(AMQPValue::LongString(s)) => s.to_string(),
        Some(AMQPValue::ShortString(s)) => s.to_string(),
        _ => String::new(),
    }
}

fn number(v: Option<&AMQPValue>) -> u32 {
    match v {
        Some(AMQPValue::LongUInt(n)) => *n,
        Some(AMQPValue::LongLongInt(n)) => u32::try_from(*n).unwrap_or(0),
        Some(AMQPValue::LongInt(n)) => u32::try_from(*n).unwrap_or(0),
        Some(AMQPValue::ShortUInt(n)) => u32::from(*n),
        _ => 0,
    }
}

fn payload_of(d: &lapin::message::Delivery) -> Payload {
    Payload {
        id: text(header(d, "id")),
        kind: text(header(d, "type")),
        body: String::from_utf8_lossy(&d.data).into_owned(),
        trace: text(header(d, "trace")),
    }
}

async fn declare(ch: &Channel, endpoints: &[WebhookEndpoint]) -> lapin::Result<()> {
    ch.queue_declare(
        dead().as_str().into(),
        QueueDeclareOptions::durable(),
        FieldTable::default(),
    )
    .await?;
    for ep in endpoints {
        ch.queue_declare(
            work(&ep.name).as_str().into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await?;
        let mut args = FieldTable::default();
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString("".into()),
        );
        args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString(work(&ep.name).into()),
        );
        ch.queue_declare(
            retry(&ep.name).as_str().into(),
            QueueDeclareOptions::durable(),
            args,
        )
        .await?;
    }
    Ok(())
}

async fn publish(
    ch: &Channel,
    queue: &str,
    body: &[u8],
    props: BasicProperties,
) -> lapin::Result<()> {
    ch.basic_publish(
        "".into(),
        queue.into(),
        BasicPublishOptions::default(),
        body,
        props,
    )
    .await?
    .await?;
    Ok(())
}

impl Durable {
    pub(super) fn start(
        broker: Broker,
        endpoints: &[WebhookEndpoint],
        settings: &WebhooksConfig,
        http: send::Clients,
        guard: Arc<Guard>,
        metrics: Arc<Metrics>,
    ) -> Durable {
        let (out, rx) = mpsc::channel(settings.queue);
        let disabled: Arc<HashMap<String, (AtomicBool, Notify)>> = Arc::new(
            endpoints
                .iter()
                .map(|e| (e.name.clone(), (AtomicBool::new(false), Notify::new())))
                .collect(),
        );
        tokio::spawn(producer(
            broker.clone(),
            endpoints.to_vec(),
            rx,
            metrics.clone(),
        ));
        for ep in endpoints {
            tokio::spawn(consumer(
                broker.clone(),
                ep.clone(),
                settings.clone(),
                http.of(&ep.name),
                guard.clone(),
                metrics.clone(),
                disabled.clone(),
            ));
        }
        Durable {
            out,
            broker,
            disabled,
        }
    }

    /// Queues a delivery for an endpoint (published with confirms by the producer).
    pub(super) fn offer(&self, endpoint: &str, p: &Arc<Payload>, metrics: &Metrics) {
        if self
            .out
            .try_send((endpoint.to_string(), p.clone()))
            .is_err()
        {
            metrics.webhook(endpoint, "queue_full");
            tracing::warn!(endpoint, id = %p.id, "webhook not queued: the publish buffer is full (RabbitMQ down?)");
        }
    }

    /// Waits (up to `deadline`) until every offered delivery is confirmed by RabbitMQ;
    /// the number still waiting after it.
    pub(super) async fn flush(&self, deadline: Duration) -> usize {
        let end = tokio::time::Instant::now() + deadline;
        loop {
            let waiting = self.out.max_capacity() - self.out.capacity();
            if waiting == 0 || tokio::time::Instant::now() >= end {
                return waiting;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub(super) fn enable(&self, name: &str) -> bool {
        match self.disabled.get(name) {
            Some((flag, wake)) => {
                flag.store(false, Ordering::Relaxed);
                wake.notify_waiters();
                true
            }
            None => false,
        }
    }

    pub(super) fn is_disabled(&self, name: &str) -> bool {
        self.disabled
            .get(name)
            .is_some_and(|(f, _)| f.load(Ordering::Relaxed))
    }

    /// The dead letters (read and put back).
    pub(super) async fn dead_letters(&self) -> Result<Vec<DeadLetter>, String> {
        self.drain_dead(|_| false).await
    }

    /// Moves dead letters (all, or one id) back to their endpoints' work queues.
    pub(super) async fn replay(&self, id: Option<&str>) -> Result<usize, String> {
        Ok(self
            .drain_dead(|l| id.is_none_or(|i| l.id == i))
            .await?
            .len())
    }

    /// Reads every dead letter; those `take` selects are re-published to their work
    /// queue and acked, the others put back. Returns the taken ones, or all when none is.
    async fn drain_dead(
        &self,
        take: impl Fn(&DeadLetter) -> bool,
    ) -> Result<Vec<DeadLetter>, String> {
        let conn = self.broker.connect().await.map_err(|e| e.to_string())?;
        let ch = conn.create_channel().await.map_err(|e| e.to_string())?;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        let mut all = Vec::new();
        let mut taken = Vec::new();
        let mut tags = Vec::new();
        while let Some(m) = ch
            .basic_get(dead().as_str().into(), BasicGetOptions::default())
            .await
            .map_err(|e| e.to_string())?
        {
            let d = &m.delivery;
            let letter = DeadLetter {
                endpoint: text(header(d, "endpoint")),
                id: text(header(d, "id")),
                kind: text(header(d, "type")),
                attempts: number(header(d, "attempts")),
                last_error: text(header(d, "error")),
                at: text(header(d, "at")),
                body: String::from_utf8_lossy(&d.data).into_owned(),
            };
            if take(&letter) {
                publish(
                    &ch,
                    &work(&letter.endpoint),
                    letter.body.as_bytes(),
                    props(&letter.payload(), 0),
                )
                .await
                .map_err(|e| e.to_string())?;
                d.acker
                    .ack(BasicAckOptions::default())
                    .await
                    .map_err(|e| e.to_string())?;
                taken.push(letter);
            } else {
                tags.push(d.acker.clone());
                all.push(letter);
            }
        }
        for t in tags {
            let _ = t
                .nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                })
                .await;
        }
        let _ = conn.close(200, "done".into()).await;
        Ok(if taken.is_empty() { all } else { taken })
    }
}

/// Publishes offered deliveries to their work queues, reconnecting as needed; a delivery
/// leaves memory only once the broker confirmed it.
async fn producer(
    broker: Broker,
    endpoints: Vec<WebhookEndpoint>,
    mut rx: mpsc::Receiver<(String, Arc<Payload>)>,
    metrics: Arc<Metrics>,
) {
    let mut pending: Option<(String, Arc<Payload>)> = None;
    let mut backoff = Duration::from_millis(100);
    loop {
        let session = async {
            let conn = broker.connect().await?;
            let ch = conn.create_channel().await?;
            ch.confirm_select(ConfirmSelectOptions::default()).await?;
            declare(&ch, &endpoints).await?;
            loop {
                if pending.is_none() {
                    pending = rx.recv().await;
                }
                let Some((ep, p)) = &pending else {
                    return Ok::<(), lapin::Error>(());
                };
                publish(&ch, &work(ep), p.body.as_bytes(), props(p, 0)).await?;
                pending = None;
            }
        };
        match session.await {
            Ok(()) => return,
            Err(e) => {
                metrics.amqp("out", "webhook_publish_failed");
                tracing::warn!("webhook queue publisher: {e}; reconnecting in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Consumes one endpoint's work queue: attempts, then records the outcome durably before
/// acking.
async fn consumer(
    broker: Broker,
    ep: WebhookEndpoint,
    settings: WebhooksConfig,
    http: HttpClient,
    guard: Arc<Guard>,
    metrics: Arc<Metrics>,
    disabled: Arc<HashMap<String, (AtomicBool, Notify)>>,
) {
    let mut backoff = Duration::from_millis(100);
    let labels = |outcome: &'static str| WebhookLabels {
        endpoint: Name::from(ep.name.as_str()),
        outcome,
    };
    loop {
        let session = async {
            let conn = broker.connect().await?;
            let ch = conn.create_channel().await?;
            ch.confirm_select(ConfirmSelectOptions::default()).await?;
            declare(&ch, std::slice::from_ref(&ep))
                .await
                .map_err(SessionEnd::from)?;
            ch.basic_qos(
                u16::try_from(settings.concurrency).unwrap_or(u16::MAX),
                BasicQosOptions::default(),
            )
            .await?;
            let tag: ShortString = format!("webhooks-{}-{}", ep.name, std::process::id()).into();
            let mut deliveries = ch
                .basic_consume(
                    work(&ep.name).as_str().into(),
                    tag.clone(),
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await?;
            let (done_tx, mut done_rx) =
                mpsc::channel::<lapin::Result<bool>>(settings.concurrency.max(1));
            let mut in_flight = 0usize;
            loop {
                tokio::select! {
                    d = deliveries.next(), if in_flight < settings.concurrency => {
                        let Some(d) = d else { return Err(SessionEnd::Cancelled) };
                        let d = d?;
                        in_flight += 1;
                        let (ch, ep, settings, http, guard, metrics, done) =
                            (ch.clone(), ep.clone(), settings.clone(), http.clone(), guard.clone(), metrics.clone(), done_tx.clone());
                        tokio::spawn(async move {
                            let r = handle(&ch, &ep, &settings, &http, &guard, &metrics, d).await;
                            let _ = done.send(r).await;
                        });
                    }
                    r = done_rx.recv() => {
                        in_flight = in_flight.saturating_sub(1);
                        let gone = r.unwrap_or(Ok(false))?;
                        if gone {
                            // 410: stop consuming until re-enabled; the message was requeued.
                            if let Some((flag, wake)) = disabled.get(&ep.name) {
                                flag.store(true, Ordering::Relaxed);
                                let _ = ch.basic_cancel(tag.clone(), Default::default()).await;
                                tracing::warn!(endpoint = %ep.name, "webhook endpoint answered 410 Gone: disabled until re-enabled");
                                while flag.load(Ordering::Relaxed) {
                                    wake.notified().await;
                                }
                                let _ = conn.close(200, "re-enabled".into()).await;
                                return Ok(());
                            }
                        }
                    }
                }
            }
        };
        match session.await {
            Ok(()) => continue,
            Err(e) => {
                metrics
                    .webhook_attempts
                    .get_or_create(&labels("queue_unavailable"))
                    .inc();
                tracing::warn!(endpoint = %ep.name, "webhook queue consumer: {e}; reconnecting in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// One delivery: attempt, record, ack. `Ok(true)`: the endpoint answered 410.
async fn handle(
    ch: &Channel,
    ep: &WebhookEndpoint,
    settings: &WebhooksConfig,
    http: &HttpClient,
    guard: &Guard,
    metrics: &Metrics,
    d: lapin::message::Delivery,
) -> lapin::Result<bool> {
    let p = payload_of(&d);
    let attempts = number(header(&d, "attempts")) + 1;
    let t0 = std::time::Instant::now();
    let outcome = send::attempt(http, guard, ep, &p, settings.max_response_bytes).await;
    metrics.webhook_attempt(
        &ep.name,
        &p.kind,
        outcome.label(),
        outcome.status(),
        t0.elapsed(),
    );
    let to_dead = |reason: String| {
        let mut h = FieldTable::default();
        for (k, v) in [
            ("endpoint", ep.name.clone()),
            ("id", p.id.clone()),
            ("type", p.kind.clone()),
            ("error", reason),
            ("at", format_iso_millis(now_millis())),
        ] {
            h.insert(k.into(), AMQPValue::LongString(v.into()));
        }
        h.insert("attempts".into(), AMQPValue::LongUInt(attempts));
        BasicProperties::default()
            .with_delivery_mode(2)
            .with_headers(h)
    };
    match outcome {
        Outcome::Delivered(_) => {}
        Outcome::Gone => {
            d.acker
                .nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                })
                .await?;
            return Ok(true);
        }
        Outcome::Forbidden(why) => {
            tracing::warn!(endpoint = %ep.name, id = %p.id, "webhook dead-lettered: {why}");
            publish(ch, &dead(), p.body.as_bytes(), to_dead(why)).await?;
        }
        Outcome::Failed {
            reason,
            retry_after,
            ..
        } => match retry_delay(settings, attempts, retry_after) {
            Some(after) => {
                let ms = after.as_millis().max(1).to_string();
                publish(
                    ch,
                    &retry(&ep.name),
                    p.body.as_bytes(),
                    props(&p, attempts).with_expiration(ms.into()),
                )
                .await?;
            }
            None => {
                tracing::warn!(endpoint = %ep.name, id = %p.id, attempts, "webhook dead-lettered: {reason}");
                publish(ch, &dead(), p.body.as_bytes(), to_dead(reason)).await?;
            }
        },
    }
    d.acker.ack(BasicAckOptions::default()).await?;
    Ok(false)
}
