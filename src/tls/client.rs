//! What a connection switchboard makes trusts and presents: a rustls client
//! configuration from a `tls` table (the system's roots or a CA file, an optional client
//! certificate, or, loudly, no verification at all).

use super::{TlsError, pem, provider};
use crate::config::ClientTls;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::{Arc, OnceLock};

/// The system's roots, read once (reading them takes milliseconds).
fn system_roots(what: &str) -> RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    let roots = ROOTS.get_or_init(|| {
        let mut roots = RootCertStore::empty();
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        roots
    });
    if roots.is_empty() {
        tracing::warn!(
            "no system TLS roots found: TLS {what} will fail unless a `tls.ca` is configured (install ca-certificates)"
        );
    }
    roots.clone()
}

/// A client configuration for `what` (a name for the logs: `upstream chat`,
/// `webhook master`): `tls`'s CA or the system's roots, its client certificate if any.
///
/// # Errors
/// A file of `tls` does not load, or the client key does not match its certificate.
pub fn config(tls: Option<&ClientTls>, what: &str) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = super::client_builder();
    let tls = tls.cloned().unwrap_or_default();
    let builder = if tls.insecure_skip_verify {
        tracing::warn!(
            "{what}: tls.insecure_skip_verify is on: ANY server certificate is accepted, and the connection can be intercepted; never use this outside a test bench"
        );
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny))
    } else {
        let roots = match &tls.ca {
            Some(ca) => pem::roots(ca)?,
            None => system_roots(what),
        };
        builder.with_root_certificates(roots)
    };
    let config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let chain = pem::certificates(cert)?;
            let key_der = pem::private_key(key)?;
            super::certified_key(chain.clone(), key_der.clone_key(), cert, key)?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(TlsError::Rustls)?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err(TlsError::HalfIdentity),
    };
    Ok(Arc::new(config))
}

/// The configuration of connections that have no `tls` table: the system's roots,
/// built once.
pub fn system() -> Arc<ClientConfig> {
    static SYSTEM: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    SYSTEM
        .get_or_init(|| {
            Arc::new(
                super::client_builder()
                    .with_root_certificates(system_roots("connections"))
                    .with_no_client_auth(),
            )
        })
        .clone()
}

/// Verifies nothing of the server's identity (`insecure_skip_verify`); the handshake's
/// signatures are still checked, so the session is at least with the key presented.
#[derive(Debug)]
struct AcceptAny;

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The PEM files of a `tls` table, read and checked, for clients that take PEM bytes
/// (redis-rs, lapin): the CA file, and the client certificate with its key.
#[derive(Debug, Default)]
pub struct PemFiles {
    /// The `ca` file's bytes.
    pub ca: Option<Vec<u8>>,
    /// The `cert` and `key` files' bytes.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
}

/// The files of `tls`, each checked as rustls would load it (a CA that anchors, a key
/// that is its certificate's).
///
/// # Errors
/// A file does not load, or only one of `cert` and `key` is set.
pub fn pem_files(tls: &ClientTls) -> Result<PemFiles, TlsError> {
    let ca = match &tls.ca {
        Some(ca) => {
            pem::roots(ca)?;
            Some(pem::read(ca)?)
        }
        None => None,
    };
    let identity = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            super::certified_key(pem::certificates(cert)?, pem::private_key(key)?, cert, key)?;
            Some((pem::read(cert)?, pem::read(key)?))
        }
        (None, None) => None,
        _ => return Err(TlsError::HalfIdentity),
    };
    Ok(PemFiles { ca, identity })
}
