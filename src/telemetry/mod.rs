//! Telemetry defined in one place: every metric the gateway exports, the label types,
//! and the Prometheus text they are rendered as at `/metrics`.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::fmt::Write as _;
use std::sync::Arc;

pub mod recent;

/// A label value shared without copying (dialect and event names are interned).
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
pub struct Name(pub Arc<str>);

impl EncodeLabelValue for Name {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(&self.0)
    }
}

impl From<&str> for Name {
    fn from(s: &str) -> Name {
        Name(Arc::from(s))
    }
}

/// `{dialect, transport}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnLabels {
    /// Dialect name.
    pub dialect: Name,
    /// `websocket` or `socketio`.
    pub transport: &'static str,
}

/// `{dialect, event}`: a canonical event name.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// Dialect name.
    pub dialect: Name,
    /// Canonical event name.
    pub event: Name,
}

/// `{dialect, reason}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Dialect name.
    pub dialect: Name,
    /// A stable code.
    pub reason: &'static str,
}

/// `{bus}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BusLabels {
    /// Bus kind.
    pub bus: &'static str,
}

/// `{direction, outcome}` of RabbitMQ traffic.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AmqpLabels {
    /// `out` (to the exchange) or `in` (from the inbound queue).
    pub direction: &'static str,
    /// `confirmed`, `dropped`, `delivered`, `rejected`, `requeued`.
    pub outcome: &'static str,
}

/// `{endpoint, outcome}` of webhook attempts.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    /// Endpoint name.
    pub endpoint: Name,
    /// `delivered`, `http_error`, `unreachable`, `gone`, `forbidden`, `queue_full`.
    pub outcome: &'static str,
}

/// `{upstream}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    /// Upstream name.
    pub upstream: Name,
}

/// `{provider}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabels {
    /// The auth provider's name.
    pub provider: Name,
}

/// `{provider, outcome}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderOutcome {
    /// The auth provider's name.
    pub provider: Name,
    /// What happened.
    pub outcome: &'static str,
}

/// `{upstream, outcome}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamOutcome {
    /// Upstream name.
    pub upstream: Name,
    /// A stable code (`opened`, `refused`, `unreachable`, `closed_by_backend`, …).
    pub outcome: &'static str,
}

/// `{upstream, direction, event}`: a canonical event crossing a session.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamEvent {
    /// Upstream name.
    pub upstream: Name,
    /// `up` (to the backend) or `down` (from it).
    pub direction: &'static str,
    /// Canonical event name.
    pub event: Name,
}

/// `{port, outcome}` of TLS handshakes and certificate reloads on a listener.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TlsLabels {
    /// The listener's port.
    pub port: u16,
    /// Handshakes: `ok`, `timeout`, `plaintext` (an HTTP request on the TLS port),
    /// `failed`. Reloads: `ok`, `failed`.
    pub outcome: &'static str,
}

/// Every metric of one gateway.
pub struct Metrics {
    registry: Registry,
    /// Connections open now.
    pub connections: Family<ConnLabels, Gauge>,
    /// Connections accepted (authenticated) since start.
    pub connections_opened: Family<ConnLabels, Counter>,
    /// Connections refused at connect (token, limits).
    pub connections_refused: Family<ReasonLabels, Counter>,
    /// Events decoded from clients, by canonical name.
    pub events_in: Family<EventLabels, Counter>,
    /// Frames sent to clients, by canonical name.
    pub events_out: Family<EventLabels, Counter>,
    /// Frames that could not be read or mapped, by reason.
    pub translation_failures: Family<ReasonLabels, Counter>,
    /// Everything refused to a client, by code.
    pub refusals: Family<ReasonLabels, Counter>,
    /// Connections cut as slow consumers.
    pub slow_consumers: Family<ConnLabels, Counter>,
    /// Time to hand a delivery to the bus.
    pub bus_publish_seconds: Family<BusLabels, Histogram>,
    /// Deliveries the bus refused (its queue full while the broker is slow or down):
    /// each one refused to its sender.
    pub bus_refused: Family<BusLabels, Counter>,
    /// RabbitMQ traffic by outcome.
    pub amqp_events: Family<AmqpLabels, Counter>,
    /// Whether each broker is reachable (1) or not (0).
    pub broker_up: Family<BusLabels, Gauge>,
    /// Webhook attempts by endpoint and outcome.
    pub webhook_attempts: Family<WebhookLabels, Counter>,
    /// Webhook deliveries waiting, all endpoints.
    pub webhook_queue: Family<BusLabels, Gauge>,
    /// Dead letters held.
    pub webhook_dead: Gauge,
    /// The last attempts of each endpoint (the console's webhooks view).
    pub webhook_recent: recent::RecentAttempts,
    /// Upstream sessions open now.
    pub upstream_sessions: Family<UpstreamLabels, Gauge>,
    /// Upstream session openings and endings, by outcome.
    pub upstream_session_events: Family<UpstreamOutcome, Counter>,
    /// Canonical events relayed to and from backends.
    pub upstream_events: Family<UpstreamEvent, Counter>,
    /// Backend frames that could not be read or mapped, by upstream and reason.
    pub upstream_failures: Family<UpstreamOutcome, Counter>,
    /// Time from a client's event to the backend's answer to its ack.
    pub upstream_ack_seconds: Family<UpstreamLabels, Histogram>,
    /// HTTP requests passed through, by upstream and outcome (`2xx`…`5xx`, `unreachable`,
    /// `timeout`).
    pub upstream_http: Family<UpstreamOutcome, Counter>,
    /// A fronted backend's facts by what their export claim found: `won` (this session
    /// exported it), `lost` (a copy another session exported), `store_down` (exported
    /// unclaimed, under the same webhook id).
    pub upstream_exports: Family<UpstreamOutcome, Counter>,
    /// Time one export claim took (in process, or a Redis round trip).
    pub upstream_claim_seconds: Family<UpstreamLabels, Histogram>,
    /// Tokens verified, by provider and outcome (`accepted`, or the check that failed).
    pub auth_tokens: Family<ProviderOutcome, Counter>,
    /// JWKS fetches, by provider and outcome (`ok`, `timeout`, `unreachable`, `status`,
    /// `too_large`, `bad_keys`).
    pub jwks_fetches: Family<ProviderOutcome, Counter>,
    /// Verification keys each provider holds now.
    pub auth_keys: Family<ProviderLabels, Gauge>,
    /// TLS handshakes on listeners, by port and outcome.
    pub tls_handshakes: Family<TlsLabels, Counter>,
    /// Listener certificate reloads, by port and outcome.
    pub tls_reloads: Family<TlsLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Fresh metrics, registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("switchboard");
        let connections = Family::<ConnLabels, Gauge>::default();
        let connections_opened = Family::<ConnLabels, Counter>::default();
        let connections_refused = Family::<ReasonLabels, Counter>::default();
        let events_in = Family::<EventLabels, Counter>::default();
        let events_out = Family::<EventLabels, Counter>::default();
        let translation_failures = Family::<ReasonLabels, Counter>::default();
        let refusals = Family::<ReasonLabels, Counter>::default();
        let slow_consumers = Family::<ConnLabels, Counter>::default();
        let bus_publish_seconds = Family::<BusLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(1e-6, 4.0, 12))
        });
        let bus_refused = Family::<BusLabels, Counter>::default();
        let webhook_attempts = Family::<WebhookLabels, Counter>::default();
        let webhook_queue = Family::<BusLabels, Gauge>::default();
        let webhook_dead = Gauge::default();
        registry.register(
            "webhook_attempts",
            "Webhook attempts by endpoint and outcome",
            webhook_attempts.clone(),
        );
        registry.register(
            "webhook_queue_depth",
            "Webhook deliveries waiting",
            webhook_queue.clone(),
        );
        registry.register(
            "webhook_dead_letters",
            "Webhook dead letters held",
            webhook_dead.clone(),
        );
        let amqp_events = Family::<AmqpLabels, Counter>::default();
        let broker_up = Family::<BusLabels, Gauge>::default();
        registry.register(
            "amqp_events",
            "RabbitMQ events by direction and outcome",
            amqp_events.clone(),
        );
        registry.register(
            "broker_up",
            "Whether each broker is reachable (1) or not (0)",
            broker_up.clone(),
        );
        registry.register(
            "connections",
            "Client connections open now",
            connections.clone(),
        );
        registry.register(
            "connections_opened",
            "Client connections accepted",
            connections_opened.clone(),
        );
        registry.register(
            "connections_refused",
            "Client connections refused at connect",
            connections_refused.clone(),
        );
        registry.register(
            "events_in",
            "Events decoded from clients, by canonical name",
            events_in.clone(),
        );
        registry.register(
            "events_out",
            "Frames sent to clients, by canonical name",
            events_out.clone(),
        );
        registry.register(
            "translation_failures",
            "Client frames that could not be read or mapped, by reason",
            translation_failures.clone(),
        );
        registry.register(
            "refusals",
            "Events refused to clients, by code",
            refusals.clone(),
        );
        registry.register(
            "slow_consumers",
            "Connections cut because their outbound queue was full",
            slow_consumers.clone(),
        );
        registry.register(
            "bus_publish_seconds",
            "Time to hand a delivery to the bus",
            bus_publish_seconds.clone(),
        );
        registry.register(
            "bus_refused",
            "Deliveries the bus refused (queue full: the broker slow or down), each refused to its sender",
            bus_refused.clone(),
        );
        let upstream_sessions = Family::<UpstreamLabels, Gauge>::default();
        let upstream_session_events = Family::<UpstreamOutcome, Counter>::default();
        let upstream_events = Family::<UpstreamEvent, Counter>::default();
        let upstream_failures = Family::<UpstreamOutcome, Counter>::default();
        let upstream_ack_seconds =
            Family::<UpstreamLabels, Histogram>::new_with_constructor(|| {
                Histogram::new(exponential_buckets(1e-5, 4.0, 10))
            });
        let upstream_http = Family::<UpstreamOutcome, Counter>::default();
        let upstream_exports = Family::<UpstreamOutcome, Counter>::default();
        let auth_tokens = Family::<ProviderOutcome, Counter>::default();
        let jwks_fetches = Family::<ProviderOutcome, Counter>::default();
        let auth_keys = Family::<ProviderLabels, Gauge>::default();
        registry.register(
            "auth_tokens",
            "Client tokens verified, by provider and outcome (accepted, or the check that failed)",
            auth_tokens.clone(),
        );
        registry.register(
            "jwks_fetches",
            "JWKS fetches by provider and outcome",
            jwks_fetches.clone(),
        );
        registry.register(
            "auth_keys",
            "Verification keys each auth provider holds",
            auth_keys.clone(),
        );
        let upstream_claim_seconds =
            Family::<UpstreamLabels, Histogram>::new_with_constructor(|| {
                Histogram::new(exponential_buckets(1e-6, 4.0, 10))
            });
        registry.register(
            "upstream_sessions",
            "Upstream sessions open now, by upstream",
            upstream_sessions.clone(),
        );
        registry.register(
            "upstream_session_events",
            "Upstream sessions opened, refused, failed and closed",
            upstream_session_events.clone(),
        );
        registry.register(
            "upstream_events",
            "Canonical events relayed to (up) and from (down) backends",
            upstream_events.clone(),
        );
        registry.register(
            "upstream_failures",
            "Backend frames that could not be read or mapped, by reason",
            upstream_failures.clone(),
        );
        registry.register(
            "upstream_ack_seconds",
            "Time from a client's event to the backend's answer to its ack",
            upstream_ack_seconds.clone(),
        );
        registry.register(
            "upstream_http",
            "HTTP requests passed through to backends, by outcome",
            upstream_http.clone(),
        );
        registry.register(
            "upstream_exports",
            "A fronted backend's facts by their export claim: won (exported here), lost (a copy), store_down (exported unclaimed)",
            upstream_exports.clone(),
        );
        registry.register(
            "upstream_claim_seconds",
            "Time one export claim of a fronted backend's fact took",
            upstream_claim_seconds.clone(),
        );
        let tls_handshakes = Family::<TlsLabels, Counter>::default();
        let tls_reloads = Family::<TlsLabels, Counter>::default();
        registry.register(
            "tls_handshakes",
            "TLS handshakes on listeners, by port and outcome (ok, timeout, plaintext, failed)",
            tls_handshakes.clone(),
        );
        registry.register(
            "tls_reloads",
            "Listener certificate reloads, by port and outcome (ok, failed: the previous certificate stays)",
            tls_reloads.clone(),
        );
        Metrics {
            registry,
            tls_handshakes,
            tls_reloads,
            upstream_sessions,
            upstream_session_events,
            upstream_events,
            upstream_failures,
            upstream_ack_seconds,
            upstream_http,
            upstream_exports,
            upstream_claim_seconds,
            auth_tokens,
            jwks_fetches,
            auth_keys,
            connections,
            connections_opened,
            connections_refused,
            events_in,
            events_out,
            translation_failures,
            refusals,
            slow_consumers,
            bus_publish_seconds,
            bus_refused,
            amqp_events,
            broker_up,
            webhook_attempts,
            webhook_queue,
            webhook_dead,
            webhook_recent: recent::RecentAttempts::default(),
        }
    }

    /// Counts one webhook attempt and keeps it among the endpoint's last.
    pub fn webhook_attempt(
        &self,
        endpoint: &str,
        event: &str,
        outcome: &'static str,
        status: Option<u16>,
        took: std::time::Duration,
    ) {
        self.webhook(endpoint, outcome);
        self.webhook_recent
            .record(endpoint, event, outcome, status, took);
    }

    /// Counts one webhook outcome.
    pub fn webhook(&self, endpoint: &str, outcome: &'static str) {
        self.webhook_attempts
            .get_or_create(&WebhookLabels {
                endpoint: Name::from(endpoint),
                outcome,
            })
            .inc();
    }

    /// Counts one upstream session outcome.
    pub fn upstream(&self, upstream: &Name, outcome: &'static str) {
        self.upstream_session_events
            .get_or_create(&UpstreamOutcome {
                upstream: upstream.clone(),
                outcome,
            })
            .inc();
    }

    /// Counts one TLS handshake outcome on the listener at `port`.
    pub fn tls_handshake(&self, port: u16, outcome: &'static str) {
        self.tls_handshakes
            .get_or_create(&TlsLabels { port, outcome })
            .inc();
    }

    /// Counts one RabbitMQ event.
    pub fn amqp(&self, direction: &'static str, outcome: &'static str) {
        self.amqp_events
            .get_or_create(&AmqpLabels { direction, outcome })
            .inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            let _ = writeln!(out, "# encoding failed");
        }
        out
    }
}
