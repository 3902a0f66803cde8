//! One running gateway, assembled from a configuration: authenticator, bus, hub and
//! listeners. The command line runs one; tests start one on port 0 in-process.

use crate::auth::{Authenticator, DEVELOPMENT_SECRET};
use crate::bus::{Bus, LocalBus, RedisBus};
use crate::config::BusKind;
use crate::config::Config;
use crate::dialect::Registry;
use crate::hub::Hub;
use crate::hub::{LocalStore, RedisStore, Store, StoreLimits};
use crate::listen::Listeners;
use anyhow::Context;
use anyhow::Result;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// A running gateway.
pub struct Server {
    /// The hub (for reloads and inspection).
    pub hub: Hub,
    /// The address of each configured listener, in configuration order.
    pub addrs: Vec<SocketAddr>,
    /// Whether it verifies tokens with the shipped development secret.
    pub development_secret: bool,
    /// How long shutdown may take (`shutdown_deadline`).
    pub shutdown_deadline: Duration,
    listeners: Listeners,
}

impl Server {
    /// Starts every listener of `cfg` with `registry`'s dialects.
    ///
    /// # Errors
    /// A port cannot be bound, or a route names an unknown dialect.
    pub async fn start(cfg: Config, registry: Arc<Registry>) -> Result<Server> {
        let secret = if cfg.auth.secret.is_empty() {
            DEVELOPMENT_SECRET
        } else {
            cfg.auth.secret.as_str()
        };
        let auth = Arc::new(Authenticator::hs256(secret, cfg.auth.leeway));
        let instance = cfg.instance_id();
        let limits = StoreLimits {
            dedup_window: cfg.hub.dedup_window,
            message_ttl: cfg.hub.message_ttl,
            max_entries: cfg.hub.message_index,
            presence_ttl: cfg.hub.presence_ttl,
        };
        let (bus, store): (Arc<dyn Bus>, Store) = match cfg.bus.kind {
            BusKind::Local => (
                Arc::new(LocalBus::new()),
                Store::Local(Box::new(LocalStore::new(limits))),
            ),
            BusKind::Redis => {
                let client = redis::Client::open(cfg.redis.url.as_str())
                    .with_context(|| format!("redis.url `{}`", cfg.redis.url))?;
                let conn = crate::bus::connection_manager(client.clone())
                    .with_context(|| format!("connecting to Redis at {}", cfg.redis.url))?;
                let bus = if cfg.redis.cluster.is_empty() {
                    RedisBus::start(client, conn.clone(), &instance, cfg.bus.queue)
                } else {
                    tracing::info!(nodes = ?cfg.redis.cluster, "bus: sharded pub/sub on the Redis Cluster");
                    RedisBus::start_cluster(&cfg.redis.cluster, &instance, cfg.bus.queue)
                        .context("redis.cluster")?
                };
                (Arc::new(bus), Store::Redis(RedisStore::new(conn, limits)))
            }
        };
        let hub = Hub::new(&cfg, &instance, registry, bus, store);
        if !cfg.amqp.url.is_empty() {
            hub.attach_amqp(&cfg.amqp);
        }
        if !cfg.webhook.is_empty() {
            let amqp = (!cfg.amqp.url.is_empty()).then_some(&cfg.amqp);
            let w = crate::webhook::Webhooks::start(
                &cfg.webhook,
                &cfg.webhooks,
                hub.metrics().clone(),
                amqp,
            )
            .with_context(|| format!("webhooks.store `{}`", cfg.webhooks.store))?;
            hub.attach_webhooks(Arc::new(w));
        }
        let shutdown_deadline = cfg.shutdown_deadline;
        let listeners = Listeners::start(Arc::new(cfg), hub.clone(), auth.clone()).await?;
        Ok(Server {
            hub,
            addrs: listeners.addrs.clone(),
            development_secret: auth.is_development(),
            shutdown_deadline,
            listeners,
        })
    }

    /// Stops: tells every client, closes them, waits for their tasks up to `deadline`.
    pub async fn shutdown(self, deadline: Duration) {
        let t0 = std::time::Instant::now();
        self.listeners.shutdown(deadline).await;
        if let Some(w) = self.hub.webhooks() {
            w.flush(deadline.saturating_sub(t0.elapsed())).await;
        }
    }
}
