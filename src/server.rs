//! One running gateway, assembled from a configuration: authenticator, bus, hub and
//! listeners. The command line runs one; tests start one on port 0 in-process.

use crate::auth::{Authenticator, DEVELOPMENT_SECRET};
use crate::bus::{Bus, LocalBus};
use crate::config::Config;
use crate::dialect::Registry;
use crate::hub::Hub;
use crate::listen::Listeners;
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
        let bus: Arc<dyn Bus> = Arc::new(LocalBus::new());
        let hub = Hub::new(&cfg, &cfg.instance_id(), registry, bus);
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
        self.listeners.shutdown(deadline).await;
    }
}
