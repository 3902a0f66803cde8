//! A listener's TLS: its rustls server configuration (TLS 1.2 and 1.3, ALPN
//! `http/1.1`, client certificates when a `client_ca` is set), reloaded from its files
//! on SIGHUP and when they change, the previous one kept when the new files do not load.

use super::{TlsError, certified_key, pem, provider};
use crate::config::ListenerTls;
use crate::telemetry::{Metrics, TlsLabels};
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;
use tokio_util::sync::CancellationToken;

/// What a file looked like when last read: a change of either is a new file.
type Stamp = Option<(SystemTime, u64)>;

/// One listener's TLS, reloadable.
pub struct ServerTls {
    cfg: ListenerTls,
    port: u16,
    current: RwLock<Arc<ServerConfig>>,
    stamps: Mutex<Vec<Stamp>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("cert", &self.cfg.cert)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

/// The server configuration `cfg`'s files make.
///
/// # Errors
/// A file does not load, or the key does not match the certificate.
pub fn server_config(cfg: &ListenerTls) -> Result<ServerConfig, TlsError> {
    let chain = pem::certificates(&cfg.cert)?;
    let key = pem::private_key(&cfg.key)?;
    let certified = certified_key(chain, key, &cfg.cert, &cfg.key)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Rustls)?;
    let builder = match &cfg.client_ca {
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(pem::roots(ca)?), provider())
                    .build()
                    .map_err(|e| TlsError::Invalid {
                        path: ca.clone(),
                        reason: format!("cannot verify clients with it: {e}"),
                    })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config =
        builder.with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(certified)));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

impl ServerTls {
    /// Loads `cfg`'s files for the listener at `port`.
    ///
    /// # Errors
    /// As [`server_config`].
    pub fn load(cfg: &ListenerTls, port: u16) -> Result<ServerTls, TlsError> {
        let config = server_config(cfg)?;
        Ok(ServerTls {
            stamps: Mutex::new(stamps(cfg)),
            cfg: cfg.clone(),
            port,
            current: RwLock::new(Arc::new(config)),
        })
    }

    /// The configuration for the next connection (the one loaded last).
    pub fn config(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// How long a handshake may take.
    pub fn handshake_timeout(&self) -> std::time::Duration {
        self.cfg.handshake_timeout
    }

    /// Reads the files again: new connections get the new certificate, open ones keep
    /// theirs. When they do not load, the previous configuration stays and the error
    /// is logged and counted.
    ///
    /// # Errors
    /// The new files' problem (the previous configuration is still in use).
    pub fn reload(&self, metrics: &Metrics) -> Result<(), TlsError> {
        *self.stamps.lock().unwrap_or_else(|p| p.into_inner()) = stamps(&self.cfg);
        let outcome = match server_config(&self.cfg) {
            Ok(config) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
                tracing::info!(port = self.port, cert = %self.cfg.cert, "TLS certificate reloaded");
                Ok(())
            }
            Err(e) => {
                tracing::error!(port = self.port, error = %e, "TLS certificate NOT reloaded: the previous one stays in use");
                Err(e)
            }
        };
        metrics
            .tls_reloads
            .get_or_create(&TlsLabels {
                port: self.port,
                outcome: if outcome.is_ok() { "ok" } else { "failed" },
            })
            .inc();
        outcome
    }

    /// Whether a file changed since it was last read.
    fn changed(&self) -> bool {
        *self.stamps.lock().unwrap_or_else(|p| p.into_inner()) != stamps(&self.cfg)
    }

    /// Checks the files every `reload_check` and reloads when one changed, until
    /// `shutdown`.
    pub async fn watch(self: Arc<Self>, metrics: Arc<Metrics>, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.cfg.reload_check);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if self.changed() {
                // A certificate and its key are often written one after the other: a
                // moment for the second before reading both.
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                let _ = self.reload(&metrics);
            }
        }
    }
}

/// The stamps of `cfg`'s files, in order (cert, key, client CA).
fn stamps(cfg: &ListenerTls) -> Vec<Stamp> {
    [Some(&cfg.cert), Some(&cfg.key), cfg.client_ca.as_ref()]
        .into_iter()
        .flatten()
        .map(|p| {
            std::fs::metadata(p)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())))
        })
        .collect()
}
