//! `[bus]`, `[redis]` and `[amqp]`: how instances reach each other, and RabbitMQ beside
//! them.

use super::ClientTls;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BusKind {
    /// In-process.
    Local,
    /// Redis pub/sub.
    Redis,
}

/// How instances reach each other.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct BusConfig {
    /// How instances reach each other: "local" (in-process: one instance, nothing to
    /// install) or "redis" (pub/sub between any number of instances; presence, calls and
    /// de-duplication shared in Redis). (SWITCHBOARD_BUS)
    pub kind: BusKind,
    /// Deliveries waiting for the broker (they wait here while Redis is down, and are
    /// published in order once it is back). Over it: the event is refused
    /// (`unavailable`) before anyone has it, and counted.
    pub queue: usize,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            kind: BusKind::Local,
            queue: 10_000,
        }
    }
}

/// Redis, for the `redis` bus and the shared state.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct RedisConfig {
    /// Redis for the shared state and the bus. (REDIS_URL, or REDIS_HOST and REDIS_PORT)
    pub url: String,
    /// Redis Cluster seed nodes (`["redis://10.0.0.1:7000", …]`). Set: the bus fans out
    /// by sharded pub/sub (SPUBLISH/SSUBSCRIBE) on the cluster, and the state stays at
    /// `url`. (SWITCHBOARD_REDIS_CLUSTER, comma-separated)
    pub cluster: Vec<String>,
    /// TLS for `rediss://` URLs (the state, the bus and the cluster's nodes): a private
    /// CA, a client certificate.
    #[serde(skip_serializing_if = "is_default")]
    pub tls: ClientTls,
}

fn is_default(t: &ClientTls) -> bool {
    *t == ClientTls::default()
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379".into(),
            cluster: Vec::new(),
            tls: ClientTls::default(),
        }
    }
}

/// RabbitMQ beside the bus.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct AmqpConfig {
    /// RabbitMQ beside the bus: every event that crosses the bus is published (with
    /// publisher confirms) to `exchange`, and events put in `inbound_queue` are
    /// delivered to clients. Empty: off. (AMQP_URL)
    pub url: String,
    /// Durable topic exchange; routing key = canonical name (message.created, …).
    pub exchange: String,
    /// Durable queue of canonical events (or a dialect's wire form, with a `dialect`
    /// header) for clients.
    pub inbound_queue: String,
    /// Unacknowledged inbound messages at a time.
    pub prefetch: u16,
    /// Events waiting for the exchange. Over it: the event is not exported, and counted
    /// (clients are not delayed by RabbitMQ).
    pub queue: usize,
    /// TLS for an `amqps://` URL: a private CA, a client certificate.
    #[serde(skip_serializing_if = "is_default")]
    pub tls: ClientTls,
}

impl Default for AmqpConfig {
    fn default() -> Self {
        AmqpConfig {
            url: String::new(),
            exchange: "switchboard.events".into(),
            inbound_queue: "switchboard.inbound".into(),
            prefetch: 100,
            queue: 10_000,
            tls: ClientTls::default(),
        }
    }
}

/// Checks the three sections together (the Redis URL matters with the Redis bus).
pub(super) fn check(bus: &BusConfig, redis: &RedisConfig, amqp: &AmqpConfig, p: &mut Vec<String>) {
    if bus.queue == 0 {
        p.push("bus.queue must be at least 1".into());
    }
    if amqp.queue == 0 || amqp.prefetch == 0 {
        p.push("amqp.queue and amqp.prefetch must be at least 1".into());
    }
    if bus.kind == BusKind::Redis && !redis.url.starts_with("redis") {
        p.push(format!(
            "redis.url `{}` must be a redis:// or rediss:// URL",
            redis.url
        ));
    }
    for n in &redis.cluster {
        if !n.starts_with("redis://") && !n.starts_with("rediss://") {
            p.push(format!(
                "redis.cluster: `{n}` must be a redis:// or rediss:// URL"
            ));
        }
    }
    redis.tls.check("redis", p);
    amqp.tls.check("amqp", p);
    if amqp.tls.insecure_skip_verify {
        p.push(
            "amqp.tls.insecure_skip_verify: not offered for RabbitMQ (its client always verifies); give the broker's CA as `amqp.tls.ca`".into(),
        );
    }
    if !amqp.url.is_empty() && !amqp.url.starts_with("amqp") {
        p.push(format!(
            "amqp.url `{}` must be an amqp:// or amqps:// URL",
            amqp.url
        ));
    }
}
