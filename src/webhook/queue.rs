//! One endpoint's queue and workers: first attempts in arrival order, retries when they
//! are due (the schedule with jitter, or the server's `Retry-After` within bounds),
//! parked while the endpoint is disabled (410), dead letters after the last attempt.

use super::guard::Guard;
use super::send::{self, HttpClient, Outcome, Payload};
use crate::config::{WebhookEndpoint, WebhooksConfig};
use crate::event::{format_iso_millis, now_millis};
use crate::telemetry::{Metrics, WebhookLabels};
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A delivery and how many attempts it has had.
#[derive(Debug, Clone)]
struct Job {
    payload: Arc<Payload>,
    attempts: u32,
}

/// A delivery that used up its schedule (or could not be sent at all).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// The endpoint's name.
    pub endpoint: String,
    /// The event id (`evt_…`).
    pub id: String,
    /// The event type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Attempts made.
    pub attempts: u32,
    /// Why the last one failed.
    pub last_error: String,
    /// When it was dead-lettered (ISO-8601).
    pub at: String,
    /// The body.
    pub body: String,
}

impl DeadLetter {
    /// The payload to send again.
    pub fn payload(&self) -> Payload {
        Payload {
            id: self.id.clone(),
            kind: self.kind.clone(),
            body: self.body.clone(),
            trace: String::new(),
        }
    }
}

/// The dead letters of every endpoint, bounded (over the bound, the oldest is dropped
/// and counted).
pub struct DeadLetters {
    max: usize,
    items: Mutex<VecDeque<DeadLetter>>,
    metrics: Arc<Metrics>,
}

impl DeadLetters {
    pub(super) fn new(max: usize, metrics: Arc<Metrics>) -> DeadLetters {
        DeadLetters {
            max,
            items: Mutex::new(VecDeque::new()),
            metrics,
        }
    }

    pub(super) fn push(&self, l: DeadLetter) {
        tracing::warn!(endpoint = %l.endpoint, id = %l.id, attempts = l.attempts, "webhook dead-lettered: {}", l.last_error);
        let mut items = lock(&self.items);
        if items.len() >= self.max {
            items.pop_front();
            self.metrics.webhook("*", "dead_letter_dropped");
        }
        items.push_back(l);
        self.metrics
            .webhook_dead
            .set(i64::try_from(items.len()).unwrap_or(i64::MAX));
    }

    pub(super) fn list(&self) -> Vec<DeadLetter> {
        lock(&self.items).iter().cloned().collect()
    }

    pub(super) fn take(&self, id: Option<&str>) -> Vec<DeadLetter> {
        let mut items = lock(&self.items);
        let (take, keep): (Vec<DeadLetter>, Vec<DeadLetter>) =
            items.drain(..).partition(|l| id.is_none_or(|i| l.id == i));
        items.extend(keep);
        self.metrics
            .webhook_dead
            .set(i64::try_from(items.len()).unwrap_or(i64::MAX));
        take
    }
}

/// One endpoint.
pub(super) struct Endpoint {
    cfg: WebhookEndpoint,
    settings: WebhooksConfig,
    wants: HashSet<String>,
    ready: Mutex<VecDeque<Job>>,
    retries: Mutex<BinaryHeap<Reverse<(Instant, u64, usize)>>>,
    parked: Mutex<Vec<Option<Job>>>,
    seq: AtomicU64,
    disabled: AtomicBool,
    notify: Notify,
    dead: Arc<DeadLetters>,
    metrics: Arc<Metrics>,
}

impl Endpoint {
    pub(super) fn start(
        cfg: WebhookEndpoint,
        settings: WebhooksConfig,
        http: HttpClient,
        guard: Arc<Guard>,
        dead: Arc<DeadLetters>,
        metrics: Arc<Metrics>,
    ) -> Arc<Endpoint> {
        let ep = Arc::new(Endpoint {
            wants: cfg.events.iter().cloned().collect(),
            cfg,
            ready: Mutex::new(VecDeque::new()),
            retries: Mutex::new(BinaryHeap::new()),
            parked: Mutex::new(Vec::new()),
            seq: AtomicU64::new(0),
            disabled: AtomicBool::new(false),
            notify: Notify::new(),
            dead,
            metrics,
            settings,
        });
        for _ in 0..ep.settings.concurrency {
            tokio::spawn(worker(ep.clone(), http.clone(), guard.clone()));
        }
        ep
    }

    pub(super) fn name(&self) -> &str {
        &self.cfg.name
    }

    fn labels(&self, outcome: &'static str) -> WebhookLabels {
        WebhookLabels {
            endpoint: crate::telemetry::Name::from(self.cfg.name.as_str()),
            outcome,
        }
    }

    fn depth(&self) -> usize {
        lock(&self.ready).len() + lock(&self.retries).len()
    }

    fn update_depth(&self) {
        let d = i64::try_from(self.depth()).unwrap_or(i64::MAX);
        self.metrics
            .webhook_queue
            .get_or_create(&crate::telemetry::BusLabels { bus: "webhook" })
            .set(d);
    }

    pub(super) fn offer(&self, p: &Arc<Payload>) {
        if !self.wants.is_empty() && !self.wants.contains(&p.kind) {
            return;
        }
        let job = Job {
            payload: p.clone(),
            attempts: 0,
        };
        {
            let mut ready = lock(&self.ready);
            if ready.len() >= self.settings.queue {
                drop(ready);
                self.metrics
                    .webhook_attempts
                    .get_or_create(&self.labels("queue_full"))
                    .inc();
                self.dead_letter(&job, "the endpoint's queue was full".into());
                return;
            }
            ready.push_back(job);
        }
        self.update_depth();
        self.notify.notify_one();
    }

    pub(super) fn enable(&self) {
        self.disabled.store(false, Ordering::Relaxed);
        tracing::info!(endpoint = %self.cfg.name, "webhook endpoint re-enabled");
        self.notify.notify_waiters();
        for _ in 0..self.settings.concurrency {
            self.notify.notify_one();
        }
    }

    pub(super) fn status(&self) -> super::EndpointStatus {
        super::EndpointStatus {
            name: self.cfg.name.clone(),
            url: self.cfg.url.clone(),
            disabled: self.disabled.load(Ordering::Relaxed),
            queued: Some(self.depth()),
        }
    }

    fn dead_letter(&self, job: &Job, reason: String) {
        self.dead.push(DeadLetter {
            endpoint: self.cfg.name.clone(),
            id: job.payload.id.clone(),
            kind: job.payload.kind.clone(),
            attempts: job.attempts,
            last_error: reason,
            at: format_iso_millis(now_millis()),
            body: job.payload.body.clone(),
        });
    }

    /// The next job due now, or when the next retry is due.
    fn next(&self) -> Result<Job, Option<Instant>> {
        let now = Instant::now();
        {
            let mut retries = lock(&self.retries);
            if let Some(Reverse((at, _, slot))) = retries.peek().copied()
                && at <= now
            {
                retries.pop();
                if let Some(job) = lock(&self.parked).get_mut(slot).and_then(Option::take) {
                    return Ok(job);
                }
            }
        }
        if let Some(job) = lock(&self.ready).pop_front() {
            return Ok(job);
        }
        Err(lock(&self.retries).peek().map(|Reverse((at, _, _))| *at))
    }

    fn schedule(&self, job: Job, after: Duration) {
        let slot = {
            let mut parked = lock(&self.parked);
            match parked.iter().position(Option::is_none) {
                Some(i) => {
                    parked[i] = Some(job);
                    i
                }
                None => {
                    parked.push(Some(job));
                    parked.len() - 1
                }
            }
        };
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        lock(&self.retries).push(Reverse((Instant::now() + after, seq, slot)));
        self.notify.notify_one();
    }

    fn delay(&self, n: u32, retry_after: Option<Duration>) -> Option<Duration> {
        retry_delay(&self.settings, n, retry_after)
    }
}

/// The delay before retry number `n` (1-based): the schedule's, ±jitter, or the server's
/// `Retry-After` (up to `retry_after_max`); `None` after the last retry.
pub(super) fn retry_delay(
    settings: &WebhooksConfig,
    n: u32,
    retry_after: Option<Duration>,
) -> Option<Duration> {
    let base = *settings
        .retry
        .get(usize::try_from(n).ok()?.checked_sub(1)?)?;
    let factor = 1.0 + (fastrand::f64() * 2.0 - 1.0) * settings.jitter;
    let jittered = base.mul_f64(factor.max(0.0));
    Some(match retry_after {
        Some(ra) => ra.min(settings.retry_after_max).max(jittered.min(ra)),
        None => jittered,
    })
}

/// A worker lives as long as the process (endpoints are not removed at run time).
async fn worker(e: Arc<Endpoint>, http: HttpClient, guard: Arc<Guard>) {
    loop {
        if e.disabled.load(Ordering::Relaxed) {
            e.notify.notified().await;
            continue;
        }
        let job = match e.next() {
            Ok(job) => job,
            Err(next) => {
                let notified = e.notify.notified();
                match next {
                    Some(at) => {
                        tokio::select! {
                            _ = notified => {}
                            _ = tokio::time::sleep_until(at) => {}
                        }
                    }
                    None => notified.await,
                }
                continue;
            }
        };
        let mut job = job;
        job.attempts += 1;
        let outcome = send::attempt(
            &http,
            &guard,
            &e.cfg,
            &job.payload,
            e.settings.max_response_bytes,
        )
        .await;
        e.metrics
            .webhook_attempts
            .get_or_create(&e.labels(outcome.label()))
            .inc();
        match outcome {
            Outcome::Delivered(status) => {
                tracing::debug!(endpoint = %e.cfg.name, id = %job.payload.id, trace_id = %job.payload.trace, attempt = job.attempts, status, "webhook delivered");
            }
            Outcome::Gone => {
                tracing::warn!(endpoint = %e.cfg.name, "webhook endpoint answered 410 Gone: disabled until re-enabled");
                e.disabled.store(true, Ordering::Relaxed);
                job.attempts -= 1;
                lock(&e.ready).push_front(job);
            }
            Outcome::Forbidden(why) => e.dead_letter(&job, why),
            Outcome::Failed {
                reason,
                retry_after,
                status,
            } => match e.delay(job.attempts, retry_after) {
                Some(after) => {
                    tracing::info!(endpoint = %e.cfg.name, id = %job.payload.id, attempt = job.attempts, ?status, "webhook failed ({reason}); retrying in {after:?}");
                    e.schedule(job, after);
                }
                None => e.dead_letter(&job, reason),
            },
        }
        e.update_depth();
    }
}
