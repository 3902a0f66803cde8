//! The token check of one connection's handshake, per algorithm: a provider verifying a
//! token (signature, claims, the user's mapping) with keys it holds; one core. Its
//! inverse is the most connections per second one core can admit.
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

criterion_group!(benches, handshake);
criterion_main!(benches);
