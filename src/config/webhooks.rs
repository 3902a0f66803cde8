//! `[webhooks]` and `[[webhook]]`: how signed webhooks are delivered, retried and kept,
//! and where they go.

use super::duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::time::Duration;

/// Webhook delivery settings.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct WebhooksConfig {
    /// Retry schedule after the first attempt (Svix's), each delay with ±`jitter`
    /// applied. After the last, the delivery goes to the dead letters (`switchboard
    /// webhooks dead`).
    #[serde(with = "duration::list")]
    #[schemars(with = "Vec<String>")]
    pub retry: Vec<Duration>,
    /// The fraction each retry delay is moved by at random, either way.
    pub jitter: f64,
    /// A `Retry-After` answer (seconds or HTTP date) is honoured up to this long.
    #[serde(with = "duration::text")]
    #[schemars(with = "String")]
    pub retry_after_max: Duration,
    /// Deliveries waiting per endpoint. Over it: the event goes straight to the dead
    /// letters (counted), so nothing is dropped silently.
    pub queue: usize,
    /// Requests in flight per endpoint.
    pub concurrency: usize,
    /// Response bytes read at most (the rest is not read).
    pub max_response_bytes: usize,
    /// Dead letters kept. Over it: the oldest is dropped (from the store too) and
    /// counted.
    pub dead_letters: usize,
    /// Addresses and CIDR ranges a webhook may target although they are private,
    /// loopback or link-local (a master service on an internal network).
    /// (SWITCHBOARD_WEBHOOK_ALLOW, comma-separated)
    pub allow: Vec<String>,
    /// Without RabbitMQ, pending deliveries and dead letters live in an embedded store in
    /// this directory (relative to the working directory), written before an event
    /// counts as accepted: a crash or a SIGKILL loses none, and a restart resumes the
    /// retry schedule with the same ids. Created when the first endpoint is configured;
    /// one process at a time (a second one refuses to start). (SWITCHBOARD_WEBHOOK_STORE)
    pub store: String,
    /// Also fdatasync every stored batch: survives power loss too, at the cost of a disk
    /// flush per batch (batches group whatever arrived meanwhile).
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

/// One webhook endpoint (`[[webhook]]`; the default configuration has none: WEBHOOK_URL
/// with WEBHOOK_SECRET adds one that wants every type, as the spec's deployment does).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WebhookEndpoint {
    /// A name for logs, metrics and the internal API (`webhook-<n>` when empty).
    #[serde(default)]
    pub name: String,
    /// `http://` or `https://` URL the events are POSTed to.
    pub url: String,
    /// Signing secrets; during a rotation several, one signature each (`whsec_…` for
    /// Standard Webhooks).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Event types wanted (`message.created`, …); empty: every type.
    #[serde(default)]
    pub events: Vec<String>,
    /// How long one attempt may take.
    #[serde(default = "default_webhook_timeout", with = "duration::text")]
    #[schemars(with = "String")]
    pub timeout: Duration,
    /// Extra request headers.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// Also send the Standard Webhooks headers (`webhook-id`, `webhook-timestamp`,
    /// `webhook-signature`).
    #[serde(default)]
    pub standard: bool,
    /// TLS for an `https://` URL: a private CA, a client certificate (master services
    /// that require mutual TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<super::ClientTls>,
}

fn default_webhook_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Checks the delivery settings and every endpoint.
pub(super) fn check(settings: &WebhooksConfig, endpoints: &[WebhookEndpoint], p: &mut Vec<String>) {
    if !(0.0..1.0).contains(&settings.jitter) {
        p.push(format!(
            "webhooks.jitter ({}) must be at least 0 and below 1",
            settings.jitter
        ));
    }
    if settings.queue == 0 || settings.concurrency == 0 || settings.dead_letters == 0 {
        p.push(
            "webhooks.queue, webhooks.concurrency and webhooks.dead_letters must be at least 1"
                .into(),
        );
    }
    for a in &settings.allow {
        if a.parse::<ipnet::IpNet>().is_err() && a.parse::<std::net::IpAddr>().is_err() {
            p.push(format!(
                "webhooks.allow: `{a}` is not an address or CIDR range"
            ));
        }
    }
    let mut names = BTreeSet::new();
    for (i, w) in endpoints.iter().enumerate() {
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
        if let Some(t) = &w.tls {
            t.check(&format!("webhook[{i}]"), p);
        }
    }
}
