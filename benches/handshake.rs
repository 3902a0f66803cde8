//! What one connection's handshake costs on one core: the token check, per algorithm (a
//! provider verifying a token: signature, claims, the user's mapping, with keys it
//! holds), and a full TLS handshake with switchboard's listener configuration (TLS 1.3
//! and 1.2 on ring, an ECDSA P-256 certificate; both ends in memory, no resumption).
//! Their inverses bound the connections per second one core can admit.
//! Run: `cargo bench --bench handshake`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jsonwebtoken::Algorithm;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;
use switchboard::auth::{Provider, Signer};
use switchboard::config::ProviderConfig;
use switchboard::telemetry::Metrics;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn signer(alg: Algorithm) -> Signer {
    use rsa::rand_core::OsRng;
    let pem = match alg {
        Algorithm::RS256 => {
            use rsa::pkcs8::{EncodePrivateKey, LineEnding};
            let key = rsa::RsaPrivateKey::new(&mut OsRng, 2048).expect("rsa key");
            key.to_pkcs8_pem(LineEnding::LF).expect("pem").to_string()
        }
        Algorithm::ES256 => {
            use p256::pkcs8::{EncodePrivateKey, LineEnding};
            let key = p256::SecretKey::random(&mut OsRng);
            key.to_pkcs8_pem(LineEnding::LF).expect("pem").to_string()
        }
        _ => {
            use ed25519_dalek::pkcs8::{
                EncodePrivateKey, KeypairBytes, spki::der::pem::LineEnding,
            };
            // PKCS#8 v1, as `openssl genpkey -algorithm ed25519` writes it.
            let key = ed25519_dalek::SigningKey::generate(&mut OsRng);
            let v1 = KeypairBytes {
                secret_key: key.to_bytes(),
                public_key: None,
            };
            v1.to_pkcs8_pem(LineEnding::LF).expect("pem").to_string()
        }
    };
    Signer::from_pem(pem.as_bytes(), alg, Some("k1".into())).expect("signer")
}

/// A provider holding `s`'s public key, from a JWKS file.
fn provider(rt: &tokio::runtime::Runtime, s: &Signer) -> Provider {
    let dir = std::env::temp_dir().join(format!("sb-handshake-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join(format!("{:?}.json", s.alg()));
    let set = Signer::key_set(&[s]).expect("public key");
    std::fs::write(&file, serde_json::to_string(&set).expect("json")).expect("write");
    let mut cfg: ProviderConfig =
        toml::from_str("name = \"bench\"\nkind = \"jwks\"").expect("provider");
    cfg.jwks_file = Some(file);
    rt.block_on(Provider::start(
        &cfg,
        Duration::ZERO,
        Arc::new(Metrics::new()),
    ))
    .expect("provider")
}

fn handshake(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = serde_json::json!({"sub": "user_2NNEqL2nrIRdJ194ndJqAHwEfxC", "sid": "sess_1",
        "azp": "https://chat.example", "name": "Ada", "iat": now, "exp": now + 86_400});
    let mut g = c.benchmark_group("handshake");
    g.throughput(Throughput::Elements(1));
    let hs = Provider::hs256(
        "bench",
        "a-long-enough-shared-secret",
        Duration::ZERO,
        Arc::new(Metrics::new()),
    );
    let token = Signer::hs256("a-long-enough-shared-secret")
        .sign(&claims)
        .expect("sign");
    assert!(hs.verify_now(&token).is_ok());
    g.bench_function("HS256", |b| b.iter(|| hs.verify_now(black_box(&token))));
    for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let s = signer(alg);
        let p = provider(&rt, &s);
        let token = s.sign(&claims).expect("sign");
        assert!(p.verify_now(&token).is_ok(), "{alg:?} verifies");
        g.bench_function(format!("{alg:?}"), |b| {
            b.iter(|| p.verify_now(black_box(&token)))
        });
    }
    g.finish();
}

/// Moves what `from` has to send into `to`.
fn pump(
    from: &mut impl std::ops::DerefMut<Target = rustls::ConnectionCommon<impl rustls::SideData>>,
    to: &mut impl std::ops::DerefMut<Target = rustls::ConnectionCommon<impl rustls::SideData>>,
    buf: &mut Vec<u8>,
) {
    buf.clear();
    while from.wants_write() {
        from.write_tls(buf).expect("write_tls");
    }
    let mut rd = &buf[..];
    while !rd.is_empty() {
        to.read_tls(&mut rd).expect("read_tls");
        to.process_new_packets().expect("handshake");
    }
}

fn tls(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("sb-tls-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, cert.pem()).expect("write");
    std::fs::write(&key_file, key.serialize_pem()).expect("write");
    let listener: switchboard::config::ListenerTls = toml::from_str(&format!(
        "cert = {:?}\nkey = {:?}",
        cert_file.to_string_lossy(),
        key_file.to_string_lossy()
    ))
    .expect("tls table");
    // The listener's own configuration, as `[[listener]] tls` builds it.
    let server =
        Arc::new(switchboard::tls::server::server_config(&listener).expect("server config"));
    let client_tls = switchboard::config::ClientTls {
        ca: Some(cert_file.to_string_lossy().into_owned()),
        ..Default::default()
    };
    let mut client = (*switchboard::tls::client::config(Some(&client_tls), "bench")
        .expect("client config"))
    .clone();
    client.resumption = rustls::client::Resumption::disabled();
    let client = Arc::new(client);
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut g = c.benchmark_group("handshake");
    g.throughput(Throughput::Elements(1));
    g.bench_function("TLS 1.3 full handshake (both ends)", |b| {
        let mut buf = Vec::with_capacity(8192);
        b.iter(|| {
            let mut cl =
                rustls::ClientConnection::new(client.clone(), name.clone()).expect("client");
            let mut sv = rustls::ServerConnection::new(server.clone()).expect("server");
            while cl.is_handshaking() || sv.is_handshaking() {
                pump(&mut cl, &mut sv, &mut buf);
                pump(&mut sv, &mut cl, &mut buf);
            }
            black_box((cl, sv))
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, handshake, tls);
criterion_main!(benches);
