//! Authentication: who a client is, from the token it carries. Named providers
//! ([`Providers`], `[[auth.provider]]`) verify tokens with secrets (HS256/384/512) or
//! public keys (RS*, PS*, ES256/384, EdDSA) from a JWKS URL, a JWKS file or a PEM file;
//! each route names its provider, the default one verifies HS256 with `auth.secret`
//! (`AUTH_JWT_SECRET`, alias `JWT_SECRET`). Tokens are minted here too ([`Signer`]).

mod claims;
mod jwks;
mod keys;
mod mint;
mod provider;
mod token;

pub use jwks::FetchError;
pub use keys::KeyError;
pub use mint::Signer;
pub use provider::{Provider, Verified};
pub use token::{
    from_authorization, from_query, from_socketio_auth, strip_bearer, user_from_socketio_auth,
};

use crate::config::{AuthConfig, DEFAULT_PROVIDER};
use crate::event::UserRef;
use crate::telemetry::Metrics;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// The secret switchboard ships with for development; starting with it logs a warning.
pub const DEVELOPMENT_SECRET: &str = "switchboard-development-secret-change-me";

/// The claims switchboard writes when it mints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// User id.
    pub sub: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Rooms the user may join (the `claims` membership policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rooms: Option<Vec<String>>,
    /// Issued at, Unix seconds.
    #[serde(default)]
    pub iat: u64,
    /// Expires at, Unix seconds.
    pub exp: u64,
    /// Not valid before, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

/// Who a verified token says the user is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user (id, display name, picture).
    pub user: UserRef,
    /// Rooms the token grants, if it names any.
    pub rooms: Option<Vec<String>>,
}

/// Why a token was refused: each names the check that failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// No token where the dialect puts it.
    #[error("missing authentication token")]
    Missing,
    /// Not a JWT at all.
    #[error("invalid token: malformed ({0})")]
    Malformed(String),
    /// The token's algorithm is not its key's.
    #[error("invalid token: {0}")]
    Algorithm(String),
    /// No key of the provider has the token's `kid`.
    #[error("invalid token: unknown signing key (kid `{0}`)")]
    UnknownKey(String),
    /// The signature does not verify.
    #[error("invalid token: invalid signature")]
    BadSignature,
    /// The token verified but has expired.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("invalid token: not yet valid (`nbf` is in the future)")]
    NotYetValid,
    /// `iat` is in the future.
    #[error("invalid token: issued in the future (`iat` beyond the clock leeway)")]
    IssuedInFuture,
    /// `iss` is not the provider's issuer.
    #[error("invalid token: wrong issuer (`iss`)")]
    Issuer,
    /// `aud` names none of the provider's audiences.
    #[error("invalid token: wrong audience (`aud`)")]
    Audience,
    /// `azp` is not an authorized party.
    #[error("invalid token: party `{0}` is not authorized (`azp`)")]
    AuthorizedParty(String),
    /// A claim is missing or unusable.
    #[error("invalid token: {0}")]
    Claims(String),
    /// The user id the client sent beside its token is not the token's.
    #[error("the user id sent does not match the token's user")]
    UserMismatch,
    /// The key could not be had (the JWKS endpoint is down): try again.
    #[error("authentication unavailable: {0}")]
    Unavailable(String),
    /// Not valid for any other reason.
    #[error("invalid token: {0}")]
    Invalid(String),
}

impl AuthError {
    /// A short stable code for dialect error events.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing_token",
            AuthError::Expired => "token_expired",
            AuthError::Unavailable(_) => "unavailable",
            _ => "invalid_token",
        }
    }

    /// Which check failed, for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Malformed(_) => "malformed",
            AuthError::Algorithm(_) => "algorithm",
            AuthError::UnknownKey(_) => "unknown_kid",
            AuthError::BadSignature => "bad_signature",
            AuthError::Expired => "expired",
            AuthError::NotYetValid => "not_yet_valid",
            AuthError::IssuedInFuture => "issued_in_future",
            AuthError::Issuer => "issuer",
            AuthError::Audience => "audience",
            AuthError::AuthorizedParty(_) => "authorized_party",
            AuthError::Claims(_) => "claims",
            AuthError::UserMismatch => "user_mismatch",
            AuthError::Unavailable(_) => "unavailable",
            AuthError::Invalid(_) => "invalid",
        }
    }
}

/// Every provider, by name; routes that name none use the default.
pub struct Providers {
    default: Arc<Provider>,
    named: BTreeMap<String, Arc<Provider>>,
    development: bool,
}

impl std::fmt::Debug for Providers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Providers")
            .field("named", &self.named.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Providers {
    /// Builds every provider of `cfg` (fetching JWKS URLs once; see
    /// [`Provider::start`]) and the default one.
    ///
    /// # Errors
    /// A provider cannot be built.
    pub async fn start(cfg: &AuthConfig, metrics: &Arc<Metrics>) -> Result<Providers, String> {
        let mut named = BTreeMap::new();
        for p in &cfg.providers {
            let provider = Provider::start(p, cfg.leeway, metrics.clone()).await?;
            named.insert(p.name.clone(), Arc::new(provider));
        }
        let secret = if cfg.secret.is_empty() {
            DEVELOPMENT_SECRET
        } else {
            cfg.secret.as_str()
        };
        let (default, development) = match named.get(DEFAULT_PROVIDER) {
            Some(p) => (p.clone(), false),
            None => (
                Arc::new(Provider::hs256(
                    DEFAULT_PROVIDER,
                    secret,
                    cfg.leeway,
                    metrics.clone(),
                )),
                secret == DEVELOPMENT_SECRET,
            ),
        };
        Ok(Providers {
            default,
            named,
            development,
        })
    }

    /// The provider a route names (`None`: the default).
    pub fn get(&self, name: Option<&str>) -> Option<Arc<Provider>> {
        match name {
            None => Some(self.default.clone()),
            Some(n) if n == DEFAULT_PROVIDER => Some(self.default.clone()),
            Some(n) => self.named.get(n).cloned(),
        }
    }

    /// The provider a route names, the default one for a name no provider has (the
    /// configuration check refuses such routes before this is asked).
    pub fn for_route(&self, name: Option<&str>) -> Arc<Provider> {
        self.get(name).unwrap_or_else(|| self.default.clone())
    }

    /// Whether the default provider verifies with the shipped development secret.
    pub fn is_development(&self) -> bool {
        self.development
    }

    /// Reloads every key file (SIGHUP); a provider whose file fails keeps its keys.
    /// Returns what failed.
    pub fn reload(&self) -> Vec<String> {
        self.named
            .values()
            .filter_map(|p| p.reload().err())
            .collect()
    }

    /// Each provider's state, for `/readyz`.
    pub fn states(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert(DEFAULT_PROVIDER.into(), self.default.state());
        for (n, p) in &self.named {
            m.insert(n.clone(), p.state());
        }
        serde_json::Value::Object(m)
    }
}

/// Verifies and mints tokens with one shared secret (HS256): the CLI's, the bench's and
/// the tests' helper.
#[derive(Clone)]
pub struct Authenticator {
    provider: Arc<Provider>,
    signer: Signer,
    development: bool,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("secret", &"<redacted>")
            .field("development", &self.development)
            .finish()
    }
}

impl Authenticator {
    /// HS256 with `secret`; expiry is checked with `leeway` of clock skew allowed.
    pub fn hs256(secret: &str, leeway: Duration) -> Self {
        Authenticator {
            provider: Arc::new(Provider::hs256(
                DEFAULT_PROVIDER,
                secret,
                leeway,
                Arc::new(Metrics::new()),
            )),
            signer: Signer::hs256(secret),
            development: secret == DEVELOPMENT_SECRET,
        }
    }

    /// The secret from `AUTH_JWT_SECRET`, else `JWT_SECRET`, else the development secret
    /// (then [`Authenticator::is_development`] is true and the caller must warn).
    pub fn from_env(leeway: Duration) -> Self {
        let secret = ["AUTH_JWT_SECRET", "JWT_SECRET"]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| DEVELOPMENT_SECRET.to_string());
        Authenticator::hs256(&secret, leeway)
    }

    /// Whether this is the shipped development secret.
    pub fn is_development(&self) -> bool {
        self.development
    }

    /// Verifies a token (with or without `Bearer `).
    ///
    /// # Errors
    /// Why it was refused.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        self.provider.verify_now(token).map(|v| v.identity)
    }

    /// Mints a token for `user` valid for `ttl` from now.
    ///
    /// # Errors
    /// Only if signing fails (it does not for HS256 with any secret).
    pub fn mint(
        &self,
        user: &str,
        name: Option<&str>,
        rooms: Option<Vec<String>>,
        ttl: Duration,
    ) -> Result<String, AuthError> {
        self.signer.mint(user, name, rooms, ttl)
    }

    /// Signs arbitrary claims (tests: expired tokens, other claims).
    ///
    /// # Errors
    /// Only if signing fails.
    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<String, AuthError> {
        self.signer.sign(claims)
    }
}

/// Who a token *says* the user is, without checking its signature: for labelling a
/// connection whose backend checks the token itself. Never a basis for trust.
pub fn unverified_user(token: &str) -> Option<UserRef> {
    let c: serde_json::Map<String, serde_json::Value> =
        jsonwebtoken::dangerous::insecure_decode_claims(strip_bearer(token)).ok()?;
    let id = match c
        .get("sub")
        .or_else(|| c.get("userId"))
        .or_else(|| c.get("id"))?
    {
        serde_json::Value::String(s) if !s.is_empty() => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    Some(UserRef {
        id,
        name: c.get("name").and_then(|n| n.as_str()).map(str::to_owned),
        image: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    use std::time::{SystemTime, UNIX_EPOCH};

    fn auth() -> Authenticator {
        Authenticator::hs256("test-secret", Duration::from_secs(0))
    }

    #[test]
    fn mint_and_verify() {
        let a = auth();
        let t = a
            .mint(
                "u1",
                Some("Ada"),
                Some(vec!["r1".into()]),
                Duration::from_secs(60),
            )
            .expect("mints");
        let id = a.verify(&t).expect("verifies");
        assert_eq!(id.user.id, "u1");
        assert_eq!(id.user.name.as_deref(), Some("Ada"));
        assert_eq!(id.rooms, Some(vec!["r1".to_string()]));
        assert_eq!(
            a.verify(&format!("Bearer {t}")).map(|i| i.user.id),
            Ok("u1".into())
        );
    }

    #[test]
    fn refusals() {
        let a = auth();
        assert_eq!(a.verify(""), Err(AuthError::Missing));
        assert_eq!(a.verify("Bearer "), Err(AuthError::Missing));
        assert!(matches!(
            a.verify("not.a.jwt"),
            Err(AuthError::Malformed(_))
        ));
        let other = Authenticator::hs256("other", Duration::from_secs(0));
        let t = other
            .mint("u1", None, None, Duration::from_secs(60))
            .expect("mints");
        assert_eq!(a.verify(&t), Err(AuthError::BadSignature));
        let expired = a
            .sign(&Claims {
                sub: "u1".into(),
                name: None,
                rooms: None,
                iat: 1,
                exp: 2,
                nbf: None,
            })
            .expect("signs");
        assert_eq!(a.verify(&expired), Err(AuthError::Expired));
        let no_exp = a.sign(&serde_json::json!({"sub": "u1"})).expect("signs");
        assert!(matches!(a.verify(&no_exp), Err(AuthError::Claims(_))));
        let none_alg =
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ1MSIsImV4cCI6OTk5OTk5OTk5OX0.";
        assert!(matches!(a.verify(none_alg), Err(AuthError::Malformed(_))));
    }

    #[test]
    fn tokens_from_the_future_are_refused() {
        let a = auth();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let nbf = a
            .sign(&serde_json::json!({"sub": "u1", "exp": now + 600, "nbf": now + 300}))
            .expect("signs");
        assert!(matches!(a.verify(&nbf), Err(AuthError::NotYetValid)));
        let iat = a
            .sign(&serde_json::json!({"sub": "u1", "exp": now + 600, "iat": now + 300}))
            .expect("signs");
        assert!(matches!(a.verify(&iat), Err(AuthError::IssuedInFuture)));
        // Within the leeway: a clock a little ahead is tolerated.
        let lenient = Authenticator::hs256("test-secret", Duration::from_secs(30));
        let ahead = lenient
            .sign(&serde_json::json!({"sub": "u1", "exp": now + 600, "iat": now + 10, "nbf": now + 10}))
            .expect("signs");
        assert!(lenient.verify(&ahead).is_ok());
    }

    #[test]
    fn the_algorithm_comes_from_the_key_not_the_token() {
        use base64::Engine as _;
        let a = auth();
        // An RS256 header on a token whose "signature" is an HMAC with the secret: the
        // classic confusion. The key is HS256, so the header's algorithm is refused.
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let head = b64.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let body = b64.encode(br#"{"sub":"u1","exp":9999999999}"#);
        let forged = format!("{head}.{body}.c2lnbmF0dXJl");
        assert!(matches!(a.verify(&forged), Err(AuthError::Algorithm(_))));
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &serde_json::json!({"sub": "u1", "exp": 9_999_999_999_u64}),
            &EncodingKey::from_secret(b"test-secret"),
        )
        .expect("signs");
        assert!(matches!(a.verify(&hs512), Err(AuthError::Algorithm(_))));
    }

    #[test]
    fn development_secret_is_flagged() {
        assert!(Authenticator::hs256(DEVELOPMENT_SECRET, Duration::ZERO).is_development());
        assert!(!auth().is_development());
    }
}
