//! Reaching Redis as `[redis]` says: its URL (`redis://` or `rediss://`) and, for
//! `rediss://`, its `tls` table (a CA instead of the system's roots, a client
//! certificate, or, loudly, no verification), for the single server and the cluster's
//! nodes alike. The files are read once at start.

use crate::config::RedisConfig;
use crate::tls::TlsError;
use redis::{ClientTlsConfig, TlsCertificates};

/// Why Redis could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RedisSetupError {
    /// A TLS file.
    #[error("redis.tls: {0}")]
    Tls(#[from] TlsError),
    /// The URL.
    #[error("redis.url `{url}`: {source}")]
    Url {
        /// The URL, its password redacted.
        url: String,
        /// redis-rs's reason.
        source: redis::RedisError,
    },
}

/// What `cfg.tls` asks redis-rs to trust and present, when it asks anything.
///
/// # Errors
/// A file does not load, or the client key is not its certificate's.
pub fn certificates(cfg: &RedisConfig) -> Result<Option<TlsCertificates>, TlsError> {
    let files = crate::tls::client::pem_files(&cfg.tls)?;
    let client_tls = files
        .identity
        .map(|(client_cert, client_key)| ClientTlsConfig {
            client_cert,
            client_key,
        });
    Ok(
        (client_tls.is_some() || files.ca.is_some()).then_some(TlsCertificates {
            client_tls,
            root_cert: files.ca,
        }),
    )
}

/// `url` as redis-rs reads it: `#insecure` (its switch for no verification) added when
/// `insecure_skip_verify` is on.
pub fn url(cfg: &RedisConfig, url: &str) -> String {
    if cfg.tls.insecure_skip_verify && url.starts_with("rediss://") && !url.contains('#') {
        tracing::warn!(
            "redis.tls.insecure_skip_verify is on: ANY server certificate is accepted, and the connection can be intercepted; never use this outside a test bench"
        );
        format!("{url}#insecure")
    } else {
        url.to_string()
    }
}

/// The client of `cfg.url`.
///
/// # Errors
/// A TLS file does not load, or the URL is not a Redis URL.
pub fn client(cfg: &RedisConfig) -> Result<redis::Client, RedisSetupError> {
    let wrap = |source| RedisSetupError::Url {
        url: crate::config::redact_url(&cfg.url),
        source,
    };
    let url = url(cfg, &cfg.url);
    match certificates(cfg)? {
        Some(certs) => redis::Client::build_with_tls(url.as_str(), certs).map_err(wrap),
        None => redis::Client::open(url.as_str()).map_err(wrap),
    }
}
