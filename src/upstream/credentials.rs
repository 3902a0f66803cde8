//! The client's credentials on the backend's handshake: forwarded in the backend's
//! convention (Socket.IO `auth`, with or without `Bearer `, a query parameter, or an
//! `Authorization` header), or first re-signed with the backend's secret (or private
//! key) and claims.

use crate::auth::{KeyError, Signer};
use crate::config::{TokenForward, UpstreamConfig};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use thiserror::Error;

/// Why a token could not be made for the backend.
#[derive(Debug, Error)]
pub enum CredentialError {
    /// Re-signing needs the client's verified claims, and there are none.
    #[error("re-signing needs a verified client token")]
    Unverified,
    /// A claim the backend's token takes is not in the client's token.
    #[error("the client's token has no `{0}` claim to re-sign")]
    MissingClaim(String),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(String),
}

/// What goes on the handshake.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Handshake {
    /// Query parameters.
    pub query: Vec<(String, String)>,
    /// Request headers.
    pub headers: Vec<(String, String)>,
    /// The Socket.IO `auth` payload.
    pub auth: Option<Value>,
}

struct Resigner {
    signer: Signer,
    ttl: Duration,
    claims: BTreeMap<String, String>,
    extra: Map<String, Value>,
}

/// How one upstream takes credentials.
pub struct Credentials {
    forward: TokenForward,
    param: String,
    resign: Option<Resigner>,
}

impl Credentials {
    /// From the upstream's `token`, `token_param` and `resign`.
    ///
    /// # Errors
    /// The re-signing key cannot be read or is not a private key of its algorithm.
    pub fn new(cfg: &UpstreamConfig) -> Result<Credentials, KeyError> {
        let resign = match &cfg.resign {
            None => None,
            Some(r) => {
                let signer = match &r.key {
                    None => Signer::hs256(&r.secret),
                    Some(path) => {
                        let alg = jsonwebtoken::Algorithm::from_str(&r.algorithm)
                            .map_err(|_| KeyError::UnknownAlgorithm(r.algorithm.clone()))?;
                        Signer::from_pem_file(path, alg, r.kid.clone())?
                    }
                };
                Some(Resigner {
                    signer,
                    ttl: r.ttl,
                    claims: r.claims.clone(),
                    extra: r
                        .extra
                        .iter()
                        .filter_map(|(k, v)| Some((k.clone(), serde_json::to_value(v).ok()?)))
                        .collect(),
                })
            }
        };
        Ok(Credentials {
            forward: cfg.token_forward(),
            param: cfg.token_param.clone(),
            resign,
        })
    }

    /// The token the backend gets: the client's, or one minted from its verified
    /// `claims` when re-signing.
    ///
    /// # Errors
    /// Re-signing without verified claims, or without a claim it maps.
    pub fn backend_token(
        &self,
        client_token: Option<&str>,
        claims: Option<&Map<String, Value>>,
    ) -> Result<Option<String>, CredentialError> {
        let Some(r) = &self.resign else {
            return Ok(client_token.map(|t| crate::auth::strip_bearer(t).to_string()));
        };
        let client = claims.ok_or(CredentialError::Unverified)?;
        let mut out = Map::new();
        if r.claims.is_empty() {
            for (k, v) in client {
                if !matches!(k.as_str(), "exp" | "iat" | "nbf") {
                    out.insert(k.clone(), v.clone());
                }
            }
        } else {
            for (to, from) in &r.claims {
                let v = client
                    .get(from)
                    .ok_or_else(|| CredentialError::MissingClaim(from.clone()))?;
                out.insert(to.clone(), v.clone());
            }
        }
        out.extend(r.extra.clone());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        out.insert("iat".into(), json!(now));
        out.insert("exp".into(), json!(now.saturating_add(r.ttl.as_secs())));
        r.signer
            .sign(&out)
            .map(Some)
            .map_err(|e| CredentialError::Sign(e.to_string()))
    }

    /// The handshake carrying `token` in the backend's convention.
    pub fn handshake(&self, token: Option<&str>) -> Handshake {
        let mut h = Handshake::default();
        let Some(token) = token else {
            return h;
        };
        match self.forward {
            TokenForward::Auth => h.auth = Some(json!({ self.param.as_str(): token })),
            TokenForward::AuthBearer => {
                h.auth = Some(json!({ self.param.as_str(): format!("Bearer {token}") }));
            }
            TokenForward::Query => h.query.push((self.param.clone(), token.to_string())),
            TokenForward::Header => h
                .headers
                .push(("authorization".into(), format!("Bearer {token}"))),
            TokenForward::None => {}
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Resign;

    fn cfg(token: &str, resign: Option<Resign>) -> UpstreamConfig {
        let mut c: UpstreamConfig = toml::from_str(&format!(
            "name = \"b\"\nurl = \"http://h\"\ndialect = \"salala\"\ntransport = \"socketio\"\ntoken = \"{token}\"\n"
        ))
        .expect("parses");
        c.resign = resign;
        c
    }

    #[test]
    fn each_convention_carries_the_token() {
        let h = |t| {
            Credentials::new(&cfg(t, None))
                .expect("no key to read")
                .handshake(Some("T"))
        };
        assert_eq!(h("auth").auth, Some(json!({"token": "T"})));
        assert_eq!(h("auth-bearer").auth, Some(json!({"token": "Bearer T"})));
        assert_eq!(h("query").query, vec![("token".into(), "T".into())]);
        assert_eq!(
            h("header").headers,
            vec![("authorization".into(), "Bearer T".into())]
        );
        assert_eq!(h("none"), Handshake::default());
    }

    #[test]
    fn resigning_maps_claims_and_signs_with_the_backend_secret() {
        let resign = Resign {
            secret: "backend".into(),
            key: None,
            algorithm: "RS256".into(),
            kid: None,
            ttl: Duration::from_secs(60),
            claims: BTreeMap::from([("userId".to_string(), "sub".to_string())]),
            extra: BTreeMap::from([("aud".to_string(), toml::Value::from("legacy"))]),
        };
        let c = Credentials::new(&cfg("query", Some(resign))).expect("a secret");
        let mut claims = Map::new();
        claims.insert("sub".into(), json!("u1"));
        claims.insert("rooms".into(), json!(["r"]));
        let t = c
            .backend_token(Some("client"), Some(&claims))
            .expect("signs")
            .expect("a token");
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        v.set_audience(&["legacy"]);
        v.set_required_spec_claims(&["exp"]);
        let got = jsonwebtoken::decode::<Map<String, Value>>(
            &t,
            &jsonwebtoken::DecodingKey::from_secret(b"backend"),
            &v,
        )
        .expect("verifies with the backend's secret")
        .claims;
        assert_eq!(got["userId"], "u1");
        assert_eq!(got["aud"], "legacy");
        assert!(got.get("rooms").is_none(), "only mapped claims: {got:?}");
        assert!(matches!(
            c.backend_token(Some("client"), None),
            Err(CredentialError::Unverified)
        ));
        assert!(matches!(
            c.backend_token(Some("client"), Some(&Map::new())),
            Err(CredentialError::MissingClaim(_))
        ));
    }

    #[test]
    fn resigning_with_a_private_key_verifies_with_its_public_key() {
        use p256::pkcs8::{EncodePrivateKey, LineEnding};
        let dir = std::env::temp_dir().join(format!("sb-resign-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let key = p256::SecretKey::random(&mut rsa::rand_core::OsRng);
        let path = dir.join("backend.pem");
        std::fs::write(
            &path,
            key.to_pkcs8_pem(LineEnding::LF).expect("pem").as_bytes(),
        )
        .expect("write");
        let resign = Resign {
            secret: String::new(),
            key: Some(path.clone()),
            algorithm: "ES256".into(),
            kid: Some("backend-1".into()),
            ttl: Duration::from_secs(60),
            claims: BTreeMap::new(),
            extra: BTreeMap::new(),
        };
        let c = Credentials::new(&cfg("query", Some(resign))).expect("a key");
        let mut claims = Map::new();
        claims.insert("sub".into(), json!("u1"));
        let t = c
            .backend_token(None, Some(&claims))
            .expect("signs")
            .expect("a token");
        let header = jsonwebtoken::decode_header(&t).expect("header");
        assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
        assert_eq!(header.kid.as_deref(), Some("backend-1"));
        let public = p256::PublicKey::from_secret_scalar(&key.to_nonzero_scalar());
        use p256::pkcs8::EncodePublicKey;
        let pem = public.to_public_key_pem(LineEnding::LF).expect("pem");
        let got = jsonwebtoken::decode::<Map<String, Value>>(
            &t,
            &jsonwebtoken::DecodingKey::from_ec_pem(pem.as_bytes()).expect("key"),
            &jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256),
        )
        .expect("verifies with the public key")
        .claims;
        assert_eq!(got["sub"], "u1");
        let mut bad = cfg("query", None);
        bad.resign = Some(Resign {
            secret: String::new(),
            key: Some(dir.join("missing.pem")),
            algorithm: "ES256".into(),
            kid: None,
            ttl: Duration::from_secs(60),
            claims: BTreeMap::new(),
            extra: BTreeMap::new(),
        });
        assert!(matches!(Credentials::new(&bad), Err(KeyError::Read { .. })));
    }
}
