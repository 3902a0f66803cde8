//! What the TLS tests share: CAs and certificates made in the test (rcgen), written as
//! PEM files in a directory of the test's own; a TLS-terminating proxy the test starts in
//! front of a plain server (a backend, RabbitMQ); TLS client connections with a chosen
//! CA and an optional client certificate.
#![allow(dead_code)]

use chrono::Datelike;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use tokio_util::sync::CancellationToken;

/// A certificate authority made for one test.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    /// The CA certificate, PEM.
    pub pem: String,
}

/// A certificate and its key, PEM.
pub struct Leaf {
    pub cert: String,
    pub key: String,
}

impl Ca {
    /// A new CA named `name`.
    pub fn new(name: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().expect("key");
        let cert = p.self_signed(&key).expect("self-signed");
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(p, key),
        }
    }

    /// A server certificate for `localhost` and 127.0.0.1.
    pub fn server(&self) -> Leaf {
        self.leaf(
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
            None,
        )
    }

    /// A server certificate for `names` that expires in `days` days (negative: expired).
    pub fn server_expiring(&self, names: &[&str], days: i64) -> Leaf {
        self.leaf(names, ExtendedKeyUsagePurpose::ServerAuth, Some(days))
    }

    /// A client certificate for `name`.
    pub fn client(&self, name: &str) -> Leaf {
        self.leaf(&[name], ExtendedKeyUsagePurpose::ClientAuth, None)
    }

    fn leaf(&self, names: &[&str], usage: ExtendedKeyUsagePurpose, days: Option<i64>) -> Leaf {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut p = CertificateParams::new(names.clone()).expect("params");
        p.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        p.extended_key_usages = vec![usage];
        if let Some(days) = days {
            p.not_before = rcgen::date_time_ymd(2020, 1, 1);
            let d = chrono::Utc::now() + chrono::Duration::days(days);
            p.not_after = rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8);
        }
        let key = KeyPair::generate().expect("key");
        let cert = p.signed_by(&key, &self.issuer).expect("signed");
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// Roots holding this CA alone.
    pub fn roots(&self) -> rustls::RootCertStore {
        let mut r = rustls::RootCertStore::empty();
        r.add(CertificateDer::from_pem_slice(self.pem.as_bytes()).expect("pem"))
            .expect("root");
        r
    }
}

/// A directory of the test's own for PEM files, removed when dropped.
pub struct Dir(pub PathBuf);

impl Dir {
    pub fn new(what: &str) -> Dir {
        let d = std::env::temp_dir().join(crate::live::unique(&format!("tls-{what}")));
        std::fs::create_dir_all(&d).expect("dir");
        Dir(d)
    }

    /// Writes `text` as `name`; its path.
    pub fn write(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        // Written beside, then renamed: a reader never sees half a file.
        let tmp = self.0.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).expect("write");
        std::fs::rename(&tmp, &p).expect("rename");
        p.to_string_lossy().into_owned()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration trusting `ca` alone, presenting `identity` if given.
pub fn client_config(ca: &Ca, identity: Option<&Leaf>) -> Arc<rustls::ClientConfig> {
    let b = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(ca.roots());
    Arc::new(match identity {
        Some(l) => b
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(l.cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .expect("cert"),
                PrivateKeyDer::from_pem_slice(l.key.as_bytes()).expect("key"),
            )
            .expect("identity"),
        None => b.with_no_client_auth(),
    })
}

/// A TLS connection to `port` on 127.0.0.1 as `localhost`.
pub async fn connect(
    port: u16,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    TlsConnector::from(config)
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
}

/// The end-entity certificate a TLS server at `port` presents.
pub async fn presented(port: u16, ca: &Ca) -> std::io::Result<Vec<u8>> {
    let s = connect(port, client_config(ca, None)).await?;
    let (_, conn) = s.get_ref();
    Ok(conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
        .unwrap_or_default())
}

/// A TLS-terminating proxy on a free port in front of a plain server at `target`
/// (a backend, RabbitMQ): the TLS endpoint the test starts. Stops when dropped.
pub struct TlsProxy {
    pub port: u16,
    stop: CancellationToken,
}

impl TlsProxy {
    /// Serves `leaf` (requiring a client certificate of `client_ca` if given) and
    /// relays each connection to `target`.
    pub async fn start(
        target: std::net::SocketAddr,
        leaf: &Leaf,
        client_ca: Option<&Ca>,
    ) -> TlsProxy {
        let chain = CertificateDer::pem_slice_iter(leaf.cert.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .expect("cert");
        let key = PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).expect("key");
        let b = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .expect("versions");
        let b = match client_ca {
            Some(ca) => b.with_client_cert_verifier(
                rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(ca.roots()),
                    provider(),
                )
                .build()
                .expect("verifier"),
            ),
            None => b.with_no_client_auth(),
        };
        let acceptor = TlsAcceptor::from(Arc::new(b.with_single_cert(chain, key).expect("config")));
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = l.local_addr().expect("addr").port();
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = tokio::select! {
                    () = s.cancelled() => return,
                    r = l.accept() => match r { Ok(x) => x, Err(_) => continue },
                };
                let (acceptor, s) = (acceptor.clone(), s.clone());
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut plain) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut tls, &mut plain) => {}
                        () = s.cancelled() => {}
                    }
                });
            }
        });
        TlsProxy { port, stop }
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
