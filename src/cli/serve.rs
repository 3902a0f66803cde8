//! `switchboard serve`: runs the gateway until SIGTERM or SIGINT; SIGHUP reloads the
//! mapping files, the auth providers' key files and the TLS listeners' certificates
//! (what fails is refused, the running ones kept).

use crate::config::Config;
use crate::dialect::Registry;
use crate::server::Server;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::signal::unix::{SignalKind, signal};

/// Logs to stderr (`RUST_LOG`, default `info`; `SWITCHBOARD_LOG_FORMAT=json` for JSON).
pub(super) fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("SWITCHBOARD_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
}

fn load_registry(mappings: Option<&PathBuf>) -> Result<Registry> {
    match mappings {
        Some(dir) => Registry::load_dir(dir),
        None => Registry::embedded(),
    }
    .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Runs the gateway.
///
/// # Errors
/// Bad configuration or mappings, a port that cannot be bound.
pub fn run(config: Option<PathBuf>, mappings: Option<PathBuf>) -> Result<()> {
    init_logging();
    let cfg = Config::load(config.as_deref())?;
    let registry = Arc::new(load_registry(mappings.as_ref()).context("loading the mapping files")?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        let server = Server::start(cfg, registry).await?;
        if server.development_secret {
            tracing::warn!(
                "!!! verifying tokens with the SHIPPED DEVELOPMENT SECRET: anyone can mint \
                 tokens. Set AUTH_JWT_SECRET (or JWT_SECRET) before serving real users. !!!"
            );
        }
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut hup = signal(SignalKind::hangup())?;
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => {
                    match load_registry(mappings.as_ref()) {
                        Ok(reg) => {
                            server.hub.set_registry(Arc::new(reg));
                            tracing::info!("mappings reloaded");
                        }
                        Err(e) => tracing::error!("mappings NOT reloaded, the running ones stay:\n{e:#}"),
                    }
                    for e in server.auth.reload() {
                        tracing::error!("{e}; its keys stay");
                    }
                    // Each failure is logged where it happens; the old certificate stays.
                    let _ = server.reload_tls();
                }
            }
        }
        tracing::info!(connections = server.hub.connection_count(), "shutting down");
        let deadline = server.shutdown_deadline;
        server.shutdown(deadline).await;
        tracing::info!("stopped");
        Ok(())
    })
}
