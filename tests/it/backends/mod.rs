//! Legacy chat backends written for the tests, each behaving as its spec describes: a
//! NexusChat server (raw WebSocket envelopes, seed 000) with its REST API, and a Salala
//! server (Socket.IO camelCase on socketioxide, seed 003). They keep their own state and
//! verify tokens with their own secret, as the real ones would.
#![allow(dead_code)]

pub mod nexus;
pub mod salala;

use serde_json::{Map, Value};
use std::time::Duration;
use switchboard::config::{Config, UpstreamConfig};

/// Every route of `cfg` fronts the upstream `up` (TOML of one `[[upstream]]`).
pub fn front(cfg: &mut Config, up: &str) {
    let u: UpstreamConfig = toml::from_str(up).expect("upstream config");
    for l in &mut cfg.listeners {
        for r in &mut l.routes {
            r.upstream = Some(u.name.clone());
        }
    }
    cfg.upstreams.push(u);
}

/// Waits (up to 5 s) until `f` holds.
pub async fn eventually(what: &str, f: impl Fn() -> bool) {
    let wait = Duration::from_secs(5);
    let deadline = tokio::time::Instant::now() + wait;
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {wait:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The secret the test backends verify tokens with (not switchboard's).
pub const BACKEND_SECRET: &str = "legacy-backend-secret";

/// Verifies an HS256 token with `secret`; its claims.
pub fn verify(secret: &str, token: &str) -> Option<Map<String, Value>> {
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    v.set_required_spec_claims(&["exp"]);
    v.validate_aud = false;
    jsonwebtoken::decode::<Map<String, Value>>(
        token.trim_start_matches("Bearer "),
        &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
        &v,
    )
    .ok()
    .map(|d| d.claims)
}

/// A token for `user` signed with `secret`, with `rooms`.
pub fn token_with(secret: &str, user: &str, rooms: &[&str]) -> String {
    let auth = switchboard::auth::Authenticator::hs256(secret, Duration::ZERO);
    auth.mint(
        user,
        None,
        Some(rooms.iter().map(|r| r.to_string()).collect()),
        Duration::from_secs(3600),
    )
    .expect("mint")
}

/// The user id a backend reads from claims: `sub`, or `userId` (re-signed tokens).
pub fn user_of(c: &Map<String, Value>) -> Option<String> {
    c.get("userId")
        .or_else(|| c.get("sub"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The `token` query parameter of a URI.
pub fn query_token(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

/// A listener on 127.0.0.1:`port` (0: any). A backend restarted on its old port waits
/// for it: the stopped backend's accept loop drops its listener a moment after `stop`.
pub async fn bind(port: u16) -> tokio::net::TcpListener {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => return l,
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("bind 127.0.0.1:{port}: {e}"),
        }
    }
}
