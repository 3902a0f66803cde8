//! Identity providers' tokens: a JWKS server of the test's own (hyper on port 0) with
//! keys generated here (RSA, P-256, Ed25519). A Clerk-shaped RS256 token accepted on the
//! Clerk route with `auth.userId` and refused with another user id; rotation without a
//! restart; the JWKS server stopped (cached keys verify, an unknown `kid` is
//! `unavailable`); algorithm confusion, `alg: none`, wrong `iss`/`aud`/`azp` refused;
//! an ES256 provider from a JWKS file and an EdDSA one from a PEM file on other routes;
//! a flood of unknown `kid`s fetching the set at most once per `min_refresh`.

use crate::live::{Client, Driver, Live, WAIT};
use base64::Engine as _;
use http_body_util::Full;
use hyper::body::Bytes;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use switchboard::auth::{AuthError, Providers, Signer};
use switchboard::config::{AuthConfig, ClaimMapping, ProviderConfig, ProviderKind};
use switchboard::telemetry::Metrics;
use tokio::task::JoinSet;

const ISSUER: &str = "https://clerk.chat.example";
const PARTY: &str = "https://chat.example";

/// A JWKS endpoint: serves what `set` holds with `Cache-Control: max-age=300`, counts
/// the fetches, and can be stopped (every connection with it).
struct JwksServer {
    url: String,
    set: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
    tasks: Mutex<JoinSet<()>>,
}

impl JwksServer {
    async fn start(set: String) -> JwksServer {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "http://{}/.well-known/jwks.json",
            tcp.local_addr().expect("addr")
        );
        let set = Arc::new(Mutex::new(set));
        let fetches = Arc::new(AtomicUsize::new(0));
        let mut tasks = JoinSet::new();
        let (s, f) = (set.clone(), fetches.clone());
        tasks.spawn(async move {
            let mut conns = JoinSet::new();
            while let Ok((sock, _)) = tcp.accept().await {
                let (s, f) = (s.clone(), f.clone());
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |_req| {
                        f.fetch_add(1, Ordering::SeqCst);
                        let body = s.lock().expect("set").clone();
                        async move {
                            let resp = hyper::Response::builder()
                                .header("content-type", "application/json")
                                .header("cache-control", "public, max-age=300")
                                .body(Full::new(Bytes::from(body)))
                                .expect("response");
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(sock), svc)
                        .await;
                });
            }
        });
        JwksServer {
            url,
            set,
            fetches,
            tasks: Mutex::new(tasks),
        }
    }

    fn publish(&self, set: String) {
        *self.set.lock().expect("set") = set;
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Stops listening and cuts every connection (its tasks are aborted with the set).
    fn stop(&self) {
        self.tasks.lock().expect("tasks").abort_all();
    }
}

fn rsa_signer(kid: &str) -> (Signer, String) {
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("rsa key");
    let pem = key.to_pkcs8_pem(LineEnding::LF).expect("pem");
    let public = key
        .to_public_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("public pem");
    let signer = Signer::from_pem(
        pem.as_bytes(),
        jsonwebtoken::Algorithm::RS256,
        Some(kid.into()),
    )
    .expect("signer");
    (signer, public)
}

fn es256_signer(kid: &str) -> Signer {
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    let key = p256::SecretKey::random(&mut rsa::rand_core::OsRng);
    let pem = key.to_pkcs8_pem(LineEnding::LF).expect("pem");
    Signer::from_pem(
        pem.as_bytes(),
        jsonwebtoken::Algorithm::ES256,
        Some(kid.into()),
    )
    .expect("signer")
}

/// An Ed25519 signer (PKCS#8 v1, as `openssl genpkey -algorithm ed25519` writes it) and
/// its public key in PEM.
fn ed25519_signer(kid: Option<&str>) -> (Signer, String) {
    use ed25519_dalek::pkcs8::{
        EncodePrivateKey, EncodePublicKey, KeypairBytes, spki::der::pem::LineEnding,
    };
    let key = ed25519_dalek::SigningKey::generate(&mut rsa::rand_core::OsRng);
    let v1 = KeypairBytes {
        secret_key: key.to_bytes(),
        public_key: None,
    };
    let pem = v1.to_pkcs8_pem(LineEnding::LF).expect("pem");
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("public pem");
    let alg = jsonwebtoken::Algorithm::EdDSA;
    let signer = Signer::from_pem(pem.as_bytes(), alg, kid.map(str::to_owned)).expect("signer");
    (signer, public)
}

fn set_of(signers: &[&Signer]) -> String {
    serde_json::to_string(&Signer::key_set(signers).expect("public keys")).expect("json")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// A Clerk session token's claims.
fn clerk_claims(user: &str) -> Value {
    json!({"sub": user, "sid": "sess_2abc", "azp": PARTY, "iss": ISSUER,
        "iat": now(), "nbf": now(), "exp": now() + 600,
        "first_name": "Ada", "last_name": "Lovelace", "image_url": "https://img.clerk.com/ada.png"})
}

fn provider(name: &str, kind: ProviderKind) -> ProviderConfig {
    let mut p: ProviderConfig = toml::from_str(&format!(
        "name = \"{name}\"\nkind = \"{}\"",
        match kind {
            ProviderKind::Hs256 => "hs256",
            ProviderKind::Jwks => "jwks",
        }
    ))
    .expect("provider");
    p.min_refresh = Duration::from_secs(2);
    p.timeout = Duration::from_secs(2);
    p
}

fn clerk_provider(url: &str) -> ProviderConfig {
    let mut p = provider("clerk", ProviderKind::Jwks);
    p.jwks_url = Some(url.into());
    p.issuer = Some(ISSUER.into());
    p.authorized_parties = vec![PARTY.into()];
    p.claims = ClaimMapping {
        name: vec!["first_name".into(), "last_name".into()],
        image: "image_url".into(),
        ..ClaimMapping::default()
    };
    p
}

/// Connects a Clerk client (`auth: {token: "Bearer …", userId}`) and returns whether it
/// was accepted, or the refusal's `reason`.
async fn clerk_connect(
    live: &Live,
    driver: &Arc<Driver>,
    token: &str,
    user: &str,
) -> Result<Client, String> {
    let mut c = Client::socketio(
        live,
        driver,
        "clerk",
        "websocket",
        user,
        json!({"token": format!("Bearer {token}"), "userId": user}),
        Value::Null,
    )
    .await;
    let first = c
        .next(|r| {
            r.name == "connection:success"
                || r.name == "connection:error"
                || r.name.starts_with("__connect_error")
        })
        .await
        .expect("the clerk client hears how its connection went");
    if first.name == "connection:success" {
        return Ok(c);
    }
    Err(first.payload["reason"]
        .as_str()
        .unwrap_or("(no reason)")
        .to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clerk_tokens_from_a_jwks_rotate_and_survive_the_endpoint_going_down() {
    let (k1, k1_public) = rsa_signer("ins_k1");
    let (k2, _) = rsa_signer("ins_k2");
    let jwks = JwksServer::start(set_of(&[&k1])).await;
    let url = jwks.url.clone();
    let live = Live::start_with(|cfg| {
        cfg.auth.providers = vec![clerk_provider(&url)];
        for l in &mut cfg.listeners {
            for r in &mut l.routes {
                if r.dialect == "clerk" {
                    r.auth = Some("clerk".into());
                }
            }
        }
    })
    .await;
    let driver = Driver::start().await;
    assert_eq!(jwks.fetches(), 1, "fetched once at start");

    // A Clerk session token with the user id beside it: accepted, with the name and
    // picture the mapping says.
    let user = "user_2NNEqL2nrIRdJ194ndJqAHwEfxC";
    let t1 = k1.sign(&clerk_claims(user)).expect("sign");
    let c = clerk_connect(&live, &driver, &t1, user)
        .await
        .expect("accepted");
    let conn = live
        .hub()
        .connections()
        .into_iter()
        .find(|c| c.user.id == user)
        .expect("registered as the token's user");
    assert_eq!(conn.user.name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(
        conn.user.image.as_deref(),
        Some("https://img.clerk.com/ada.png")
    );
    c.close().await;
    // Another user id beside the token: refused.
    assert_eq!(
        clerk_connect(&live, &driver, &t1, "user_someone_else")
            .await
            .err()
            .as_deref(),
        Some("auth_error")
    );

    // What is refused, each for its own reason.
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let body = b64.encode(clerk_claims(user).to_string());
    let none = format!("{}.{body}.", b64.encode(br#"{"alg":"none","typ":"JWT"}"#));
    // The RSA public key used as an HMAC secret: the classic confusion.
    let confused = Signer::hs256(&k1_public)
        .sign(&clerk_claims(user))
        .expect("sign");
    let mut wrong_iss = clerk_claims(user);
    wrong_iss["iss"] = json!("https://evil.example");
    let mut wrong_azp = clerk_claims(user);
    wrong_azp["azp"] = json!("https://evil.example");
    let mut no_azp = clerk_claims(user);
    no_azp.as_object_mut().expect("object").remove("azp");
    let (stranger, _) = rsa_signer("ins_k1");
    for (what, token) in [
        ("alg none", none),
        ("HS256 with the public key as secret", confused),
        ("wrong issuer", k1.sign(&wrong_iss).expect("sign")),
        ("wrong party", k1.sign(&wrong_azp).expect("sign")),
        ("no party", k1.sign(&no_azp).expect("sign")),
        (
            "another key under a known kid",
            stranger.sign(&clerk_claims(user)).expect("sign"),
        ),
    ] {
        assert_eq!(
            clerk_connect(&live, &driver, &token, user)
                .await
                .err()
                .as_deref(),
            Some("auth_error"),
            "{what}"
        );
    }

    // Rotation: k2 published, k1 withdrawn; a k2 token is accepted without a restart
    // (its unknown kid fetches the set once the least interval has passed).
    jwks.publish(set_of(&[&k2]));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let t2 = k2.sign(&clerk_claims(user)).expect("sign");
    let before = jwks.fetches();
    clerk_connect(&live, &driver, &t2, user)
        .await
        .expect("a rotated key verifies")
        .close()
        .await;
    assert_eq!(jwks.fetches(), before + 1, "one fetch for the new kid");
    assert_eq!(
        clerk_connect(&live, &driver, &t1, user)
            .await
            .err()
            .as_deref(),
        Some("auth_error"),
        "the withdrawn key no longer verifies"
    );

    // A flood of unknown kids: at most one fetch per least interval (2 s here) however
    // many arrive (the first may come at once: the last fetch was 2 s ago or more).
    let before = jwks.fetches();
    let flood = std::time::Instant::now();
    let signers: Vec<Signer> = (0..3)
        .map(|i| es256_signer(&format!("flood-{i}")))
        .collect();
    let mut tasks = JoinSet::new();
    for i in 0..60 {
        let token = signers[i % 3].sign(&clerk_claims(user)).expect("sign");
        let (live_addr, drv) = (live.addrs().to_vec(), driver.clone());
        tasks.spawn(async move {
            let live = Live::at(live_addr);
            clerk_connect(&live, &drv, &token, "user_2NNEqL2nrIRdJ194ndJqAHwEfxC")
                .await
                .err()
        });
    }
    while let Some(r) = tasks.join_next().await {
        assert_eq!(r.expect("task").as_deref(), Some("auth_error"));
    }
    let periods = 1 + (flood.elapsed().as_secs_f64() / 2.0).floor() as usize;
    assert!(
        jwks.fetches() <= before + periods,
        "{} fetches for a flood of 60 unknown kids in {:?}",
        jwks.fetches() - before,
        flood.elapsed()
    );

    // The endpoint down: the cached key still verifies; an unknown kid, once a fetch
    // has failed, is `unavailable` (try again), not unauthorized; /readyz says why.
    jwks.stop();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (k3, _) = rsa_signer("ins_k3");
    assert_eq!(
        clerk_connect(
            &live,
            &driver,
            &k3.sign(&clerk_claims(user)).expect("sign"),
            user
        )
        .await
        .err()
        .as_deref(),
        Some("unavailable")
    );
    clerk_connect(&live, &driver, &t2, user)
        .await
        .expect("the cached key verifies while the endpoint is down")
        .close()
        .await;
    let (status, ready) = crate::live::get_internal(live.addrs()[0], "/readyz", "").await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(ready["auth"]["clerk"]["keys"], 1, "{ready}");
    assert!(ready["auth"]["clerk"]["error"].is_string(), "{ready}");
    let metrics = live.hub().metrics().render();
    for line in [
        "switchboard_auth_tokens_total{provider=\"clerk\",outcome=\"unavailable\"}",
        "switchboard_auth_tokens_total{provider=\"clerk\",outcome=\"accepted\"}",
        "switchboard_auth_tokens_total{provider=\"clerk\",outcome=\"authorized_party\"}",
        "switchboard_jwks_fetches_total{provider=\"clerk\",outcome=\"unreachable\"}",
    ] {
        assert!(metrics.contains(line), "{line} in\n{metrics}");
    }
}

/// Opens a client of `dialect` (over WebSocket) with `token`, without waiting.
async fn open(live: &Live, driver: &Arc<Driver>, dialect: &str, user: &str, token: &str) -> Client {
    let at = crate::live::TokenAt::Primary;
    Client::open(live, driver, dialect, "websocket", user, Some(token), at).await
}

/// Waits until `user` has a connection on the hub.
async fn registered(live: &Live, user: &str) {
    let until = tokio::time::Instant::now() + WAIT;
    while !live.hub().connections().iter().any(|c| c.user.id == user) {
        assert!(tokio::time::Instant::now() < until, "{user} is registered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn es256_and_eddsa_providers_verify_their_routes_and_reload_their_files() {
    let dir = crate::live::unique_dir("keys");
    std::fs::create_dir_all(&dir).expect("dir");
    let es = es256_signer("es-1");
    // An Ed25519 key in the same set: an OKP JWK.
    let (okp, _) = ed25519_signer(Some("ed-1"));
    let jwks_file = std::path::Path::new(&dir).join("jwks.json");
    std::fs::write(&jwks_file, set_of(&[&es, &okp])).expect("write");
    let (ed, ed_public) = ed25519_signer(None);
    let pem_file = std::path::Path::new(&dir).join("ed25519.pem");
    std::fs::write(&pem_file, &ed_public).expect("write");
    let (jf, pf) = (jwks_file.clone(), pem_file.clone());
    let live = Live::start_with(move |cfg| {
        let mut p = provider("es", ProviderKind::Jwks);
        p.jwks_file = Some(jf);
        p.audience = vec!["chat".into()];
        let mut e = provider("ed", ProviderKind::Jwks);
        e.pem_file = Some(pf);
        e.algorithms = vec!["EdDSA".into()];
        cfg.auth.providers = vec![p, e];
        for l in &mut cfg.listeners {
            for r in &mut l.routes {
                match r.dialect.as_str() {
                    "nexus" => r.auth = Some("es".into()),
                    "salala" => r.auth = Some("ed".into()),
                    _ => {}
                }
            }
        }
    })
    .await;
    let driver = Driver::start().await;
    let claims = |aud: &str| json!({"sub": "u-es", "aud": aud, "exp": now() + 600});

    // ES256 on the raw WebSocket route, with the audience checked.
    let t = es.sign(&claims("chat")).expect("sign");
    let _accepted = open(&live, &driver, "nexus", "u-es", &t).await;
    registered(&live, "u-es").await;
    let t = es.sign(&claims("other")).expect("sign");
    let mut c = open(&live, &driver, "nexus", "u-es", &t).await;
    let refused = c.canonical_where("session.error", WAIT, |_| true).await;
    assert!(refused.is_some(), "a wrong audience is refused");

    // EdDSA from a PEM file, with the official socket.io-client.
    let t = ed
        .sign(&json!({"sub": "u-ed", "exp": now() + 600}))
        .expect("sign");
    let _accepted = open(&live, &driver, "salala", "u-ed", &t).await;
    registered(&live, "u-ed").await;
    // An ES256 token on the EdDSA route: its algorithm is not the key's.
    let t = es
        .sign(&json!({"sub": "u-ed", "exp": now() + 600}))
        .expect("sign");
    let mut c = open(&live, &driver, "salala", "u-ed", &t).await;
    assert!(
        c.canonical_where("session.error", WAIT, |_| true)
            .await
            .is_some()
    );

    let p = live.server().auth.get(Some("es")).expect("es");
    assert!(
        p.verify(&okp.sign(&claims("chat")).expect("sign"))
            .await
            .is_ok(),
        "an EdDSA key of the set verifies its tokens"
    );

    // The JWKS file rewritten with a new key: after a reload (SIGHUP), it verifies; a
    // broken file is refused and the keys had stay.
    let es2 = es256_signer("es-2");
    std::fs::write(&jwks_file, set_of(&[&es2])).expect("write");
    assert!(live.server().auth.reload().is_empty());
    assert!(
        p.verify(&es2.sign(&claims("chat")).expect("sign"))
            .await
            .is_ok()
    );
    assert!(matches!(
        p.verify(&es.sign(&claims("chat")).expect("sign")).await,
        Err(AuthError::UnknownKey(_))
    ));
    std::fs::write(&jwks_file, "not json").expect("write");
    assert_eq!(live.server().auth.reload().len(), 1);
    assert!(
        p.verify(&es2.sign(&claims("chat")).expect("sign"))
            .await
            .is_ok()
    );
}

/// A JWKS endpoint that hangs, one that answers 10 MB, one that answers HTML: each a
/// bounded failure, and a required provider refuses to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_huge_and_broken_endpoints_are_bounded_failures() {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = tcp.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((sock, _)) = tcp.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| async move {
                        match req.uri().path() {
                            "/hang" => {
                                tokio::time::sleep(Duration::from_secs(60)).await;
                                Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                    Bytes::new(),
                                )))
                            }
                            "/huge" => Ok(hyper::Response::new(Full::new(Bytes::from(vec![
                                    b' ';
                                    10 << 20
                                ])))),
                            _ => Ok(hyper::Response::new(Full::new(Bytes::from_static(
                                b"<html>not keys</html>",
                            )))),
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(sock), svc)
                    .await;
            });
        }
    });
    let metrics = Arc::new(Metrics::new());
    for (path, outcome) in [
        ("hang", "timeout"),
        ("huge", "too_large"),
        ("html", "bad_keys"),
    ] {
        let mut p = provider(path, ProviderKind::Jwks);
        p.jwks_url = Some(format!("http://{addr}/{path}"));
        p.timeout = Duration::from_millis(500);
        let cfg = AuthConfig {
            providers: vec![p.clone()],
            ..AuthConfig::default()
        };
        let t0 = std::time::Instant::now();
        let providers = Providers::start(&cfg, &metrics)
            .await
            .expect("starts without keys");
        assert!(t0.elapsed() < Duration::from_secs(3), "{path}: bounded");
        let verdict = providers
            .get(Some(path))
            .expect("provider")
            .verify(
                &es256_signer("k")
                    .sign(&json!({"sub": "u", "exp": now() + 60}))
                    .expect("sign"),
            )
            .await;
        assert!(
            matches!(verdict, Err(AuthError::Unavailable(_))),
            "{path}: {verdict:?}"
        );
        let line =
            format!("switchboard_jwks_fetches_total{{provider=\"{path}\",outcome=\"{outcome}\"}}");
        assert!(metrics.render().contains(&line), "{line}");
        p.required = true;
        let cfg = AuthConfig {
            providers: vec![p],
            ..AuthConfig::default()
        };
        assert!(
            Providers::start(&cfg, &metrics).await.is_err(),
            "{path}: required"
        );
    }
}
