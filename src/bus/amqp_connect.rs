//! Connecting to RabbitMQ as `[amqp]` says: its URL (`amqp://` or `amqps://`) and, for
//! `amqps://`, its `tls` table (a CA added to the system's roots, a client certificate),
//! the files read once at start.

use crate::config::AmqpConfig;
use crate::tls::TlsError;
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::{Connection, ConnectionProperties};
use std::sync::Arc;

/// Where RabbitMQ is, and how to reach it.
#[derive(Clone)]
pub struct Broker {
    url: Arc<str>,
    tls: Arc<OwnedTLSConfig>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").finish_non_exhaustive()
    }
}

impl Broker {
    /// The broker of `cfg`, its TLS files read and checked.
    ///
    /// # Errors
    /// A TLS file does not load, or the client key is not its certificate's.
    pub fn new(cfg: &AmqpConfig) -> Result<Broker, TlsError> {
        let files = crate::tls::client::pem_files(&cfg.tls)?;
        let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
        Ok(Broker {
            url: Arc::from(cfg.url.as_str()),
            tls: Arc::new(OwnedTLSConfig {
                identity: files
                    .identity
                    .map(|(pem, key)| OwnedIdentity::PKCS8 { pem, key }),
                cert_chain: files.ca.map(text),
            }),
        })
    }

    /// Opens a connection.
    ///
    /// # Errors
    /// As lapin's: unreachable, refused, the TLS handshake failed.
    pub async fn connect(&self) -> lapin::Result<Connection> {
        Connection::connect_with_config(
            &self.url,
            ConnectionProperties::default(),
            (*self.tls).clone(),
            lapin::runtime::default_runtime()?,
        )
        .await
    }
}
