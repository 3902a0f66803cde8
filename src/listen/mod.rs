//! Listeners: one hyper server per configured port (`http.rs`: accepting, routing each
//! request). On each, raw WebSocket paths (`websocket/`) and Socket.IO paths and
//! namespaces (`socketio/`: WebSocket connections served by our own Engine.IO path, long
//! polling by socketioxide) bound to dialects, each connection handed to the inbound path
//! (`route`); the health and metrics endpoints (`api.rs`) and the internal API
//! (`internal.rs`) where configured.

mod api;
pub(crate) mod console;
mod http;
mod internal;
mod openapi;
pub(crate) mod respond;
mod server_api;
mod socketio;
mod tls;
pub(crate) mod websocket;

use crate::auth::Providers;
use crate::bus::amqp::AmqpLink;
use crate::config::{Config, Transport};
use crate::hub::Hub;
use crate::tls::ServerTls;
use crate::upstream::Upstreams;
use crate::upstream::passthrough::Passthrough;
use crate::webhook::Webhooks;
use anyhow::{Context as _, Result};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use websocket::heartbeat::Heartbeat;

/// What the listeners report on and operate, beside the hub: the RabbitMQ link and the
/// webhook engine, when configured.
#[derive(Default, Clone)]
pub struct Attached {
    /// The RabbitMQ link (its state in `/readyz`).
    pub amqp: Option<Arc<AmqpLink>>,
    /// The webhook engine (the internal API's `/api/webhooks`).
    pub webhooks: Option<Arc<Webhooks>>,
}

/// What every listener shares.
pub(crate) struct Context {
    pub hub: Hub,
    /// The RabbitMQ link and the webhook engine.
    pub attached: Attached,
    /// The auth providers routes verify tokens with.
    pub auth: Arc<Providers>,
    pub cfg: Arc<Config>,
    /// Cancelled when a shutdown begins: `/readyz` answers 503 and new realtime
    /// connections are refused while the instance drains.
    pub draining: CancellationToken,
    /// Cancelled once every client was told: ends the connections still being opened
    /// (our Socket.IO connections' tokens are its children).
    pub realtime: CancellationToken,
    /// Cancelled when the drain is over: the accept loops and HTTP connections stop.
    pub shutdown: CancellationToken,
    /// Every realtime connection's task (WebSocket, Socket.IO inbox), so shutdown can
    /// wait for them.
    pub connections: TaskTracker,
    /// The accept loops, HTTP connections and the heartbeat.
    pub tasks: TaskTracker,
    /// Socket.IO long-polling requests in flight, so shutdown can wait until polling
    /// clients have fetched their goodbye.
    pub polls: Polls,
    /// The backends routes front.
    pub upstreams: Upstreams,
    /// The HTTP client of the REST passthrough.
    pub passthrough: Passthrough,
    /// Pings our WebSocket clients (raw and Socket.IO) every `socketio.ping_interval`.
    pub heartbeat: Heartbeat,
    /// The console's sessions and overview.
    pub console: console::Console,
}

/// Running listeners.
pub struct Listeners {
    /// The address each configured listener bound, in configuration order.
    pub addrs: Vec<SocketAddr>,
    cx: Arc<Context>,
    /// The TLS listeners' certificates, reloadable.
    tls: Vec<Arc<ServerTls>>,
}

impl Listeners {
    /// Binds every configured listener and starts serving.
    ///
    /// # Errors
    /// A port cannot be bound, or a route names an unknown dialect.
    pub async fn start(
        cfg: Arc<Config>,
        hub: Hub,
        auth: Arc<Providers>,
        attached: Attached,
    ) -> Result<Listeners> {
        let registry = hub.registry();
        for (i, l) in cfg.listeners.iter().enumerate() {
            for r in &l.routes {
                anyhow::ensure!(
                    registry.dialect(&r.dialect).is_some(),
                    "listener[{i}] route {}: unknown dialect `{}`",
                    r.path,
                    r.dialect
                );
                anyhow::ensure!(
                    auth.get(r.auth.as_deref()).is_some(),
                    "listener[{i}] route {}: no auth provider `{}`",
                    r.path,
                    r.auth.as_deref().unwrap_or_default()
                );
            }
        }
        let upstreams = Upstreams::new(&cfg.upstreams, &registry)?;
        let cx = Arc::new(Context {
            hub,
            attached,
            auth,
            cfg: cfg.clone(),
            draining: CancellationToken::new(),
            realtime: CancellationToken::new(),
            shutdown: CancellationToken::new(),
            connections: TaskTracker::new(),
            tasks: TaskTracker::new(),
            polls: Polls::default(),
            upstreams,
            passthrough: Passthrough::new(),
            heartbeat: Heartbeat::new(cfg.socketio.ping_interval),
            console: console::Console::default(),
        });
        console::start(&cx);
        let heartbeat = cx.clone();
        cx.tasks.spawn(async move {
            heartbeat.heartbeat.run(heartbeat.shutdown.clone()).await;
        });
        let mut addrs = Vec::new();
        let mut tls_listeners = Vec::new();
        for l in &cfg.listeners {
            let bind = format!("{}:{}", cfg.bind, l.port);
            let tcp = TcpListener::bind(&bind)
                .await
                .with_context(|| format!("cannot listen on {bind}"))?;
            let addr = tcp.local_addr()?;
            let routes = http::Routes::build(&cx, l);
            let tls = match &l.tls {
                Some(t) => {
                    let tls = Arc::new(
                        ServerTls::load(t, addr.port())
                            .with_context(|| format!("listener on port {}: tls", addr.port()))?,
                    );
                    cx.tasks.spawn(
                        tls.clone()
                            .watch(cx.hub.metrics().clone(), cx.shutdown.clone()),
                    );
                    tls_listeners.push(tls.clone());
                    Some(tls)
                }
                None => None,
            };
            let what: Vec<String> = l
                .routes
                .iter()
                .map(|r| {
                    let to = r
                        .upstream
                        .as_deref()
                        .map(|u| format!(" -> upstream {u}"))
                        .unwrap_or_default();
                    let dialect = if recovers(&cx, r) {
                        format!("{}, recovering", r.dialect)
                    } else {
                        r.dialect.clone()
                    };
                    match r.transport {
                        Transport::Websocket => format!("ws {} ({dialect}){to}", r.path),
                        Transport::Socketio => format!(
                            "socket.io {} ns {} ({dialect}){to}",
                            r.path,
                            r.namespace.as_deref().unwrap_or("/"),
                        ),
                    }
                })
                .collect();
            let scheme = if tls.is_some() {
                "https/wss"
            } else {
                "http/ws"
            };
            tracing::info!(%addr, scheme, api = l.api, routes = %what.join(", "), "listening");
            cx.tasks
                .spawn(http::accept_loop(tcp, tls, routes, cx.clone()));
            addrs.push(addr);
        }
        Ok(Listeners {
            addrs,
            cx,
            tls: tls_listeners,
        })
    }

    /// Drains, then stops: `/readyz` answers 503 and new realtime connections are
    /// refused from the start; every client is told in its dialect and closed (raw
    /// WebSocket 1012; Socket.IO `41`, polling clients at their next poll, which is
    /// still served); once every connection is gone (or `deadline` passed), the accept
    /// loops and HTTP connections stop. Returns as soon as the last client is closed.
    /// Reads every TLS listener's files again (SIGHUP): new connections get the new
    /// certificates, open ones keep theirs. Each listener whose files do not load keeps
    /// its previous certificate; the errors are returned (and logged).
    pub fn reload_tls(&self) -> Vec<String> {
        self.tls
            .iter()
            .filter_map(|t| t.reload(self.cx.hub.metrics()).err())
            .map(|e| e.to_string())
            .collect()
    }

    pub async fn shutdown(self, deadline: std::time::Duration) {
        let until = tokio::time::Instant::now() + deadline;
        let sh = &self.cx;
        sh.draining.cancel();
        sh.hub.drain();
        sh.hub.close_all(1012, "server restarting: reconnect");
        sh.realtime.cancel();
        sh.connections.close();
        let drained = tokio::time::timeout_at(until, async {
            sh.connections.wait().await;
            // Polling clients fetch their `41` with a poll in flight or the next one;
            // then they close their session and stop polling.
            while sh.hub.connection_count() > 0 || !sh.polls.quiet() {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                left = sh.hub.connection_count(),
                tasks = sh.connections.len(),
                "shutdown deadline passed with connections still open"
            );
        }
        sh.shutdown.cancel();
        sh.tasks.close();
        if tokio::time::timeout_at(until, sh.tasks.wait())
            .await
            .is_err()
        {
            tracing::debug!(left = sh.tasks.len(), "HTTP connections still open at exit");
        }
    }
}

/// Whether `route` recovers: as configured, else as its dialect's mapping file says
/// (`[dialect] recovery`), and only while the room history is kept.
pub(crate) fn recovers(cx: &Context, route: &crate::config::RouteConfig) -> bool {
    let by_default = cx
        .hub
        .registry()
        .dialect(&route.dialect)
        .is_some_and(|d| d.recovery);
    route.recovers(by_default) && cx.hub.history_on()
}

/// Socket.IO long-polling requests in flight, and when the last one ended.
#[derive(Default)]
pub(crate) struct Polls {
    in_flight: std::sync::atomic::AtomicUsize,
    last: std::sync::Mutex<Option<std::time::Instant>>,
}

/// How long no poll must be in flight for polling clients to count as gone.
const POLL_QUIET: std::time::Duration = std::time::Duration::from_millis(150);

impl Polls {
    /// A poll starts; it counts until the guard is dropped.
    pub(crate) fn start(&self) -> PollGuard<'_> {
        self.in_flight
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        PollGuard(self)
    }

    /// No poll in flight, and none ended within [`POLL_QUIET`].
    fn quiet(&self) -> bool {
        self.in_flight.load(std::sync::atomic::Ordering::Relaxed) == 0
            && self
                .last
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_none_or(|t| t.elapsed() >= POLL_QUIET)
    }
}

/// One poll in flight.
pub(crate) struct PollGuard<'a>(&'a Polls);

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        self.0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        *self.0.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(std::time::Instant::now());
    }
}
