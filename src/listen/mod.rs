//! Listeners: one hyper server per configured port. On each, raw WebSocket paths
//! (tokio-tungstenite) and Socket.IO paths and namespaces (WebSocket connections served
//! by `eio`, long polling by socketioxide) bound to dialects, and the HTTP API where
//! configured.

mod duplex;
mod eio;
mod heartbeat;
mod http;
mod internal;
mod socketio;
mod writer;
mod ws;

use crate::auth::AuthError;
use crate::auth::Authenticator;
use crate::config::{Config, Transport};
use crate::hub::Hub;
use crate::upstream::passthrough::Passthrough;
use crate::upstream::{Ident, Upstream, Upstreams};
use anyhow::{Context, Result};
use heartbeat::Heartbeat;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Bytes each WebSocket preallocates for reading (raw and Socket.IO alike): chat frames
/// are small, a larger one grows the buffer for itself, and idle connections stay cheap.
pub(crate) const READ_BUFFER: usize = 512;

/// What every listener shares.
pub(crate) struct Shared {
    pub hub: Hub,
    pub auth: Arc<Authenticator>,
    pub cfg: Arc<Config>,
    /// Cancelled at shutdown: every connection task watches it.
    pub shutdown: CancellationToken,
    /// Every connection task, so shutdown can wait for them.
    pub tasks: TaskTracker,
    /// The backends routes front.
    pub upstreams: Upstreams,
    /// The HTTP client of the REST passthrough.
    pub passthrough: Passthrough,
    /// Pings our WebSocket clients (raw and Socket.IO) every `socketio.ping_interval`.
    pub heartbeat: Heartbeat,
}

impl Shared {
    /// Who a connecting client is, from its token: verified here, or as the fronted
    /// backend's configuration says (forwarded, checked, re-signed).
    pub(crate) fn identify(
        &self,
        upstream: Option<&Arc<Upstream>>,
        token: Option<&str>,
    ) -> Result<Ident, AuthError> {
        match upstream {
            Some(up) => up.identify(&self.auth, token),
            None => {
                let i = self.auth.verify(token.ok_or(AuthError::Missing)?)?;
                Ok(Ident {
                    user: i.user,
                    rooms: i.rooms,
                    claims: None,
                })
            }
        }
    }
}

/// Running listeners.
pub struct Listeners {
    /// The address each configured listener bound, in configuration order.
    pub addrs: Vec<SocketAddr>,
    shared: Arc<Shared>,
}

impl Listeners {
    /// Binds every configured listener and starts serving.
    ///
    /// # Errors
    /// A port cannot be bound, or a route names an unknown dialect.
    pub async fn start(cfg: Arc<Config>, hub: Hub, auth: Arc<Authenticator>) -> Result<Listeners> {
        let registry = hub.registry();
        for (i, l) in cfg.listeners.iter().enumerate() {
            for r in &l.routes {
                anyhow::ensure!(
                    registry.dialect(&r.dialect).is_some(),
                    "listener[{i}] route {}: unknown dialect `{}`",
                    r.path,
                    r.dialect
                );
            }
        }
        let upstreams = Upstreams::new(&cfg.upstreams, &registry)?;
        let shared = Arc::new(Shared {
            hub,
            auth,
            cfg: cfg.clone(),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            upstreams,
            passthrough: Passthrough::new(),
            heartbeat: Heartbeat::new(cfg.socketio.ping_interval),
        });
        let sh = shared.clone();
        shared
            .tasks
            .spawn(async move { sh.heartbeat.run(sh.shutdown.clone()).await });
        let mut addrs = Vec::new();
        for l in &cfg.listeners {
            let bind = format!("{}:{}", cfg.bind, l.port);
            let tcp = TcpListener::bind(&bind)
                .await
                .with_context(|| format!("cannot listen on {bind}"))?;
            let addr = tcp.local_addr()?;
            let routes = http::Routes::build(&shared, l);
            let what: Vec<String> = l
                .routes
                .iter()
                .map(|r| {
                    let to = r
                        .upstream
                        .as_deref()
                        .map(|u| format!(" -> upstream {u}"))
                        .unwrap_or_default();
                    match r.transport {
                        Transport::Websocket => format!("ws {} ({}){to}", r.path, r.dialect),
                        Transport::Socketio => format!(
                            "socket.io {} ns {} ({}){to}",
                            r.path,
                            r.namespace.as_deref().unwrap_or("/"),
                            r.dialect
                        ),
                    }
                })
                .collect();
            tracing::info!(%addr, api = l.api, routes = %what.join(", "), "listening");
            let sh = shared.clone();
            shared.tasks.spawn(http::accept_loop(tcp, routes, sh));
            addrs.push(addr);
        }
        Ok(Listeners { addrs, shared })
    }

    /// Stops accepting, tells every client in its dialect, closes them, and waits (up to
    /// `deadline`) for every connection task to finish.
    pub async fn shutdown(self, deadline: std::time::Duration) {
        // Every registered connection is told and closed first (its notice queued ahead
        // of its close); then the shutdown token, of which connection tokens are children,
        // ends the rest (connections not yet registered, the accept loops).
        self.shared
            .hub
            .close_all(1012, "server restarting: reconnect");
        self.shared.shutdown.cancel();
        self.shared.tasks.close();
        if tokio::time::timeout(deadline, self.shared.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                left = self.shared.tasks.len(),
                "shutdown deadline passed with connection tasks still running"
            );
        }
    }
}
