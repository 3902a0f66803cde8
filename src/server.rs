//! One running gateway, assembled from a configuration: the auth providers, the bus and
//! the state store, the hub, the exports (RabbitMQ, webhooks) wired to it, and the
//! listeners. The command line runs one; tests start one on port 0 in-process.

use crate::auth::Providers;
use crate::bus::amqp::{AmqpLink, Broker};
use crate::bus::{Bus, Export, LocalBus, RedisBus};
use crate::config::{BusKind, Config};
use crate::dialect::Registry;
use crate::hub::{Hub, LocalStore, RedisStore, Store, StoreLimits};
use crate::listen::{Attached, Listeners};
use crate::webhook::Webhooks;
use anyhow::{Context, Result};
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
    /// The auth providers (their key files reload on SIGHUP).
    pub auth: Arc<Providers>,
    listeners: Listeners,
    webhooks: Option<Arc<Webhooks>>,
    amqp: Option<Arc<AmqpLink>>,
}

/// The bus and the state store the configuration asks for.
fn bus_and_store(cfg: &Config, instance: &str) -> Result<(Arc<dyn Bus>, Store)> {
    let limits = StoreLimits {
        dedup_window: cfg.hub.dedup_window,
        content_dedup_window: cfg.hub.content_dedup_window,
        message_ttl: cfg.hub.message_ttl,
        max_entries: cfg.hub.message_index,
        presence_ttl: cfg.hub.presence_ttl,
        export_claims: cfg.hub.export_claims,
    };
    Ok(match cfg.bus.kind {
        BusKind::Local => (
            Arc::new(LocalBus::new()),
            Store::Local(Box::new(LocalStore::new(limits))),
        ),
        BusKind::Redis => {
            let client = crate::bus::redis_connect::client(&cfg.redis)?;
            let conn = crate::bus::connection_manager(client.clone())
                .with_context(|| format!("connecting to Redis at {}", cfg.redis.url))?;
            let bus = if cfg.redis.cluster.is_empty() {
                RedisBus::start(client, conn.clone(), instance, cfg.bus.queue)
            } else {
                tracing::info!(nodes = ?cfg.redis.cluster, "bus: sharded pub/sub on the Redis Cluster");
                let nodes: Vec<String> = cfg
                    .redis
                    .cluster
                    .iter()
                    .map(|n| crate::bus::redis_connect::url(&cfg.redis, n))
                    .collect();
                let tls = crate::bus::redis_connect::certificates(&cfg.redis)?;
                RedisBus::start_cluster(&nodes, tls, instance, cfg.bus.queue)
                    .context("redis.cluster")?
            };
            (Arc::new(bus), Store::Redis(RedisStore::new(conn, limits)))
        }
    })
}

impl Server {
    /// Starts every listener of `cfg` with `registry`'s dialects.
    ///
    /// # Errors
    /// A port cannot be bound, a route names an unknown dialect, the webhook store
    /// cannot be opened.
    pub async fn start(cfg: Config, registry: Arc<Registry>) -> Result<Server> {
        crate::tls::install_default_provider();
        let tls = crate::tls::check::check(&cfg, std::time::SystemTime::now());
        for w in &tls.warnings {
            tracing::warn!("{w}");
        }
        if !tls.errors.is_empty() {
            anyhow::bail!("TLS:\n  {}", tls.errors.join("\n  "));
        }
        let instance = cfg.instance_id();
        let (bus, store) = bus_and_store(&cfg, &instance)?;
        let hub = Hub::new(&cfg, &instance, registry, bus, store);
        let auth = Arc::new(
            Providers::start(&cfg.auth, hub.metrics())
                .await
                .map_err(anyhow::Error::msg)?,
        );
        // The exports: what the hub publishes also goes to RabbitMQ and to webhooks.
        let mut attached = Attached::default();
        let mut exports: Vec<Arc<dyn Export>> = Vec::new();
        let broker = if cfg.amqp.url.is_empty() {
            None
        } else {
            Some(Broker::new(&cfg.amqp).context("amqp.tls")?)
        };
        if let Some(broker) = &broker {
            let link = Arc::new(AmqpLink::start(
                &cfg.amqp,
                broker.clone(),
                &instance,
                hub.injector(),
                hub.metrics().clone(),
            ));
            exports.push(link.clone());
            attached.amqp = Some(link);
        }
        if !cfg.webhook.is_empty() {
            let w = Arc::new(
                Webhooks::start(&cfg.webhook, &cfg.webhooks, hub.metrics().clone(), broker)
                    .with_context(|| format!("webhooks (store `{}`)", cfg.webhooks.store))?,
            );
            exports.push(w.clone());
            attached.webhooks = Some(w);
        }
        hub.export_to(exports);
        let (webhooks, amqp) = (attached.webhooks.clone(), attached.amqp.clone());
        let shutdown_deadline = cfg.shutdown_deadline;
        let listeners =
            Listeners::start(Arc::new(cfg), hub.clone(), auth.clone(), attached).await?;
        Ok(Server {
            hub,
            addrs: listeners.addrs.clone(),
            development_secret: auth.is_development(),
            auth,
            shutdown_deadline,
            listeners,
            webhooks,
            amqp,
        })
    }

    /// Reads the TLS listeners' certificate files again (SIGHUP); the errors of those
    /// that keep their previous certificate.
    pub fn reload_tls(&self) -> Vec<String> {
        self.listeners.reload_tls()
    }

    /// Whether every broker is reachable: (all, the bus, RabbitMQ when configured), as
    /// `/readyz` reports them.
    pub fn ready(&self) -> (bool, bool, Option<bool>) {
        let bus = self.hub.bus_ready();
        let amqp = self.amqp.as_ref().map(|a| a.ready());
        (bus && amqp.unwrap_or(true), bus, amqp)
    }

    /// Stops: drains the listeners (every client told and closed), then stores what the
    /// webhooks still hold, within `deadline`.
    pub async fn shutdown(self, deadline: Duration) {
        let t0 = std::time::Instant::now();
        self.listeners.shutdown(deadline).await;
        if let Some(w) = &self.webhooks {
            w.flush(deadline.saturating_sub(t0.elapsed())).await;
        }
    }
}
