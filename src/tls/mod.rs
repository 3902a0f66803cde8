//! TLS on every side, rustls on ring, no OpenSSL: listeners serving `https://` and
//! `wss://` (`server.rs`, reloaded without dropping connections; `session.rs`, each
//! session holding no buffer while idle), the connections
//! switchboard makes to backends, webhooks, Redis and RabbitMQ (`client.rs`), the PEM
//! files they read (`pem.rs`) and what `config check` says of them (`check.rs`).

pub mod check;
pub mod client;
pub mod pem;
pub mod server;
pub mod session;

pub use server::ServerTls;
pub use session::ServerSession;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use std::sync::Arc;
use thiserror::Error;

/// Why TLS could not be set up.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file was read but is not what it should be.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The private key is not the certificate's.
    #[error("the key {key} does not match the certificate {cert}")]
    Mismatch {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
    },
    /// A client certificate without its key, or a key without its certificate.
    #[error("a client certificate needs both `cert` and `key`")]
    HalfIdentity,
    /// rustls refused the configuration.
    #[error("{0}")]
    Rustls(rustls::Error),
}

/// The crypto provider every configuration uses (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes ring the process's default provider, for the crates that build their own
/// configurations without naming one (redis-rs for `rediss://`). Harmless when one is
/// already installed.
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client configuration builder on ring with the safe default protocol versions.
pub(crate) fn client_builder() -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier>
{
    rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports rustls' default protocol versions")
}

/// `chain` with `key`, checked to be a pair (`cert_path` and `key_path` name them in the
/// error).
///
/// # Errors
/// The key is of a kind ring cannot sign with, or is another certificate's.
pub fn certified_key(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_path: &str,
    key_path: &str,
) -> Result<Arc<CertifiedKey>, TlsError> {
    match CertifiedKey::from_der(chain, key, &provider()) {
        Ok(k) => Ok(Arc::new(k)),
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::Mismatch {
            cert: cert_path.into(),
            key: key_path.into(),
        }),
        // The certificate is read to compare keys: a malformed one fails there.
        Err(
            e @ (rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented),
        ) => Err(TlsError::Invalid {
            path: cert_path.into(),
            reason: format!("not a valid certificate: {e}"),
        }),
        Err(e) => Err(TlsError::Invalid {
            path: key_path.into(),
            reason: format!("not a usable private key: {e}"),
        }),
    }
}
