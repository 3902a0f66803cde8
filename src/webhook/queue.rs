//! Webhook queues on the embedded store (the default, without RabbitMQ): one queue and
//! its workers per endpoint, first attempts in arrival order, retries when they are due
//! (the schedule with jitter, or the server's `Retry-After` within bounds), parked while
//! the endpoint is disabled (410), dead letters after the last attempt. Scheduling is in
//! memory; every change of state is written to the journal (`journal.rs`) as well, and a
//! restart rebuilds the queues from it: same ids, attempts and due times.

use super::dead_letters::DeadLetters;
use super::guard::Guard;
use super::journal::{Journal, JournalError, Pending, PendingRef, Receipt, Recovered};
use super::letter::DeadLetter;
use super::send::{self, HttpClient, Outcome, Payload};
use crate::config::{WebhookEndpoint, WebhooksConfig};
use crate::event::{format_iso_millis, now_millis};
use crate::telemetry::{Metrics, WebhookLabels};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A delivery, its key in the journal, and how many attempts it has had.
#[derive(Debug, Clone)]
struct Job {
    key: u64,
    payload: Arc<Payload>,
    attempts: u32,
}

/// Every endpoint's queue on the embedded store.
pub(super) struct Queues {
    endpoints: Vec<Arc<Endpoint>>,
    dead: Arc<DeadLetters>,
    journal: Arc<Journal>,
}

impl Queues {
    /// Opens the store at `path`, rebuilds what it holds, and starts every endpoint's
    /// workers.
    ///
    /// # Errors
    /// The store cannot be opened.
    pub(super) fn start(
        path: &Path,
        endpoints: &[WebhookEndpoint],
        settings: &WebhooksConfig,
        http: &send::Clients,
        guard: &Arc<Guard>,
        metrics: &Arc<Metrics>,
    ) -> Result<Queues, JournalError> {
        let (journal, found) = Journal::open(path, settings.fsync)?;
        let journal = Arc::new(journal);
        let dead = Arc::new(DeadLetters::new(
            settings.dead_letters,
            journal.clone(),
            metrics.clone(),
        ));
        let Recovered {
            mut pending,
            dead: letters,
        } = found;
        for (k, l) in letters {
            dead.keep(k, l);
        }
        let mut eps = Vec::new();
        let mut resumed = 0;
        for cfg in endpoints {
            let ep = Endpoint::new(
                cfg.clone(),
                settings.clone(),
                journal.clone(),
                dead.clone(),
                metrics.clone(),
            );
            for (key, p) in pending.remove(&cfg.name).unwrap_or_default() {
                ep.resume(key, p);
                resumed += 1;
            }
            for _ in 0..settings.concurrency {
                tokio::spawn(worker(ep.clone(), http.of(&cfg.name), guard.clone()));
            }
            eps.push(ep);
        }
        // Deliveries for endpoints no longer configured: kept, as dead letters.
        for (endpoint, jobs) in pending {
            let endpoint: Arc<str> = Arc::from(endpoint);
            for (key, p) in jobs {
                let l = DeadLetter {
                    endpoint: endpoint.to_string(),
                    id: p.id,
                    kind: p.kind,
                    attempts: p.attempts,
                    last_error: "the endpoint is no longer configured".into(),
                    at: format_iso_millis(now_millis()),
                    body: p.body,
                };
                dead.push(journal.next_key(), l, Some((&endpoint, key)));
            }
        }
        if resumed > 0 {
            tracing::info!(
                resumed,
                "webhook deliveries pending before the restart resume their schedule"
            );
        }
        Ok(Queues {
            endpoints: eps,
            dead,
            journal,
        })
    }

    /// Queues `p` for every endpoint that wants its type; the receipt settles once the
    /// deliveries are stored.
    pub(super) fn offer(&self, p: &Arc<Payload>) -> Receipt {
        let mut any = false;
        for ep in self.endpoints.iter().filter(|e| e.wants(&p.kind)) {
            ep.offer(p);
            any = true;
        }
        if any {
            self.journal.receipt()
        } else {
            Receipt::settled()
        }
    }

    /// Waits until everything offered so far is stored.
    pub(super) async fn flush(&self) -> Result<(), JournalError> {
        self.journal.receipt().stored().await
    }

    pub(super) fn status(&self) -> Vec<super::EndpointStatus> {
        self.endpoints.iter().map(|e| e.status()).collect()
    }

    pub(super) fn enable(&self, name: &str) -> bool {
        match self.endpoints.iter().find(|e| e.cfg.name == name) {
            Some(e) => {
                e.enable();
                true
            }
            None => false,
        }
    }

    pub(super) fn dead_letters(&self) -> Vec<DeadLetter> {
        self.dead.list()
    }

    /// Dead letters (all, or one id) back in their endpoints' queues, on a fresh
    /// schedule; how many.
    pub(super) async fn replay(&self, id: Option<&str>) -> Result<usize, JournalError> {
        let letters = self.dead.take(id);
        let n = letters.len();
        for l in letters {
            match self.endpoints.iter().find(|e| e.cfg.name == l.endpoint) {
                Some(ep) => ep.offer(&Arc::new(l.payload())),
                None => self.dead.push(self.journal.next_key(), l, None),
            }
        }
        self.flush().await?;
        Ok(n)
    }

    /// Deliveries waiting, every endpoint.
    pub(super) fn pending(&self) -> usize {
        self.endpoints.iter().map(|e| e.depth()).sum()
    }
}

/// One endpoint.
struct Endpoint {
    /// Its name, as the journal keys its deliveries.
    name: Arc<str>,
    cfg: WebhookEndpoint,
    settings: WebhooksConfig,
    wants: HashSet<String>,
    ready: Mutex<VecDeque<Job>>,
    retries: Mutex<BinaryHeap<Reverse<(Instant, u64, usize)>>>,
    parked: Mutex<Vec<Option<Job>>>,
    seq: AtomicU64,
    disabled: AtomicBool,
    notify: Notify,
    journal: Arc<Journal>,
    dead: Arc<DeadLetters>,
    metrics: Arc<Metrics>,
}

impl Endpoint {
    fn new(
        cfg: WebhookEndpoint,
        settings: WebhooksConfig,
        journal: Arc<Journal>,
        dead: Arc<DeadLetters>,
        metrics: Arc<Metrics>,
    ) -> Arc<Endpoint> {
        Arc::new(Endpoint {
            name: Arc::from(cfg.name.as_str()),
            wants: cfg.events.iter().cloned().collect(),
            cfg,
            ready: Mutex::new(VecDeque::new()),
            retries: Mutex::new(BinaryHeap::new()),
            parked: Mutex::new(Vec::new()),
            seq: AtomicU64::new(0),
            disabled: AtomicBool::new(false),
            notify: Notify::new(),
            journal,
            dead,
            metrics,
            settings,
        })
    }

    fn wants(&self, kind: &str) -> bool {
        self.wants.is_empty() || self.wants.contains(kind)
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

    /// A new delivery: stored, then queued (over `webhooks.queue`: a dead letter at once).
    fn offer(&self, p: &Arc<Payload>) {
        let job = Job {
            key: self.journal.next_key(),
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
                self.dead_letter(&job, "the endpoint's queue was full".into(), false);
                return;
            }
            self.journal.put(&self.name, job.key, &stored(&job, 0));
            ready.push_back(job);
        }
        self.update_depth();
        self.notify.notify_one();
    }

    /// A delivery found in the journal at start: due now, or at its time.
    fn resume(&self, key: u64, p: Pending) {
        let job = Job {
            key,
            payload: Arc::new(Payload {
                id: p.id,
                kind: p.kind,
                body: p.body,
                trace: p.trace,
            }),
            attempts: p.attempts,
        };
        let wait = p.due.saturating_sub(now_millis());
        if wait <= 0 {
            lock(&self.ready).push_back(job);
        } else {
            self.park(job, Duration::from_millis(u64::try_from(wait).unwrap_or(0)));
        }
        self.update_depth();
    }

    fn enable(&self) {
        self.disabled.store(false, Ordering::Relaxed);
        tracing::info!(endpoint = %self.cfg.name, "webhook endpoint re-enabled");
        self.notify.notify_waiters();
        for _ in 0..self.settings.concurrency {
            self.notify.notify_one();
        }
    }

    fn status(&self) -> super::EndpointStatus {
        super::EndpointStatus {
            name: self.cfg.name.clone(),
            url: self.cfg.url.clone(),
            disabled: self.disabled.load(Ordering::Relaxed),
            queued: Some(self.depth()),
        }
    }

    fn dead_letter(&self, job: &Job, reason: String, stored: bool) {
        let l = DeadLetter {
            endpoint: self.cfg.name.clone(),
            id: job.payload.id.clone(),
            kind: job.payload.kind.clone(),
            attempts: job.attempts,
            last_error: reason,
            at: format_iso_millis(now_millis()),
            body: job.payload.body.clone(),
        };
        let from = stored.then_some((&self.name, job.key));
        self.dead.push(self.journal.next_key(), l, from);
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

    /// Holds `job` until `after` from now (in memory; the journal has its due time).
    fn park(&self, job: Job, after: Duration) {
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

    /// Schedules a retry: its attempts and due time stored, then held until then.
    fn schedule(&self, job: Job, after: Duration) {
        let due = now_millis() + i64::try_from(after.as_millis()).unwrap_or(i64::MAX / 2);
        self.journal.put(&self.name, job.key, &stored(&job, due));
        self.park(job, after);
    }

    fn delay(&self, n: u32, retry_after: Option<Duration>) -> Option<Duration> {
        retry_delay(&self.settings, n, retry_after)
    }
}

/// What the journal keeps of a job.
fn stored(job: &Job, due: i64) -> PendingRef<'_> {
    PendingRef {
        id: &job.payload.id,
        kind: &job.payload.kind,
        body: &job.payload.body,
        trace: &job.payload.trace,
        attempts: job.attempts,
        due,
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
        let t0 = std::time::Instant::now();
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
        e.metrics.webhook_recent.record(
            &e.cfg.name,
            &job.payload.kind,
            outcome.label(),
            outcome.status(),
            t0.elapsed(),
        );
        match outcome {
            Outcome::Delivered(status) => {
                e.journal.remove(&e.name, job.key);
                tracing::debug!(endpoint = %e.cfg.name, id = %job.payload.id, trace_id = %job.payload.trace, attempt = job.attempts, status, "webhook delivered");
            }
            Outcome::Gone => {
                tracing::warn!(endpoint = %e.cfg.name, "webhook endpoint answered 410 Gone: disabled until re-enabled");
                e.disabled.store(true, Ordering::Relaxed);
                job.attempts -= 1;
                lock(&e.ready).push_front(job);
            }
            Outcome::Forbidden(why) => e.dead_letter(&job, why, true),
            Outcome::Failed {
                reason,
                retry_after,
                status,
            } => match e.delay(job.attempts, retry_after) {
                Some(after) => {
                    tracing::info!(endpoint = %e.cfg.name, id = %job.payload.id, attempt = job.attempts, ?status, "webhook failed ({reason}); retrying in {after:?}");
                    e.schedule(job, after);
                }
                None => e.dead_letter(&job, reason, true),
            },
        }
        e.update_depth();
    }
}
