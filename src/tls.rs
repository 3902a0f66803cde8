//! TLS for the connections switchboard makes (webhooks, JWKS fetches): rustls on ring
//! with the system's roots.

use std::sync::Arc;

/// A client configuration with the system's roots; without any, https targets fail their
/// handshake (http ones work) and a warning names `what` would fail.
pub fn client_config(what: &str) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports rustls' default protocol versions");
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        tracing::warn!(
            "no system TLS roots found: https {what} will fail (install ca-certificates)"
        );
    }
    builder.with_root_certificates(roots).with_no_client_auth()
}
