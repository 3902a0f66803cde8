//! Authentication: HS256 JWTs verified with the shared secret (`AUTH_JWT_SECRET`, alias
//! `JWT_SECRET`). `sub` is the user id, `name` the display name, `rooms` (optional) the
//! rooms the user may join. Tokens are also minted here, for `switchboard token` and tests.

mod token;

pub use token::{from_authorization, from_query, from_socketio_auth, strip_bearer};

use crate::event::UserRef;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use thiserror::Error;

/// The secret switchboard ships with for development; starting with it logs a warning.
pub const DEVELOPMENT_SECRET: &str = "switchboard-development-secret-change-me";

/// The claims switchboard reads and writes.
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
    /// The user (id and display name).
    pub user: UserRef,
    /// Rooms the token grants, if it names any.
    pub rooms: Option<Vec<String>>,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// No token where the dialect puts it.
    #[error("missing authentication token")]
    Missing,
    /// The token verified but has expired.
    #[error("token expired")]
    Expired,
    /// Not a valid token for this secret.
    #[error("invalid token: {0}")]
    Invalid(String),
}

impl AuthError {
    /// A short stable code for dialect error events and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing_token",
            AuthError::Expired => "token_expired",
            AuthError::Invalid(_) => "invalid_token",
        }
    }
}

/// Verifies and mints tokens with one shared secret.
#[derive(Clone)]
pub struct Authenticator {
    decoding: DecodingKey,
    encoding: EncodingKey,
    validation: Validation,
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
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Authenticator {
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            validation,
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
    /// Missing (empty), expired, or invalid for any other reason.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let token = strip_bearer(token);
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => {
                    AuthError::Invalid("token not yet valid (`nbf` is in the future)".into())
                }
                _ => AuthError::Invalid(e.to_string()),
            })?;
        let c = data.claims;
        if c.sub.is_empty() {
            return Err(AuthError::Invalid("empty `sub`".into()));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if c.iat > now.saturating_add(self.validation.leeway) {
            return Err(AuthError::Invalid(
                "token issued in the future (`iat` beyond the clock leeway)".into(),
            ));
        }
        Ok(Identity {
            user: UserRef {
                id: c.sub,
                name: c.name,
            },
            rooms: c.rooms,
        })
    }

    /// Verifies a token and returns every claim it holds too (for re-signing).
    ///
    /// # Errors
    /// As [`Authenticator::verify`].
    pub fn verify_claims(
        &self,
        token: &str,
    ) -> Result<(Identity, serde_json::Map<String, serde_json::Value>), AuthError> {
        let identity = self.verify(token)?;
        let claims = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            strip_bearer(token),
            &self.decoding,
            &self.validation,
        )
        .map_err(|e| AuthError::Invalid(e.to_string()))?
        .claims;
        Ok((identity, claims))
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
        })
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
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let claims = Claims {
            sub: user.to_string(),
            name: name.map(str::to_string),
            rooms,
            iat: now,
            exp: now.saturating_add(ttl.as_secs()),
            nbf: None,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AuthError::Invalid(e.to_string()))
    }

    /// Signs arbitrary claims (tests: expired tokens, other claims).
    ///
    /// # Errors
    /// Only if signing fails.
    pub fn sign<C: Serialize>(&self, claims: &C) -> Result<String, AuthError> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| AuthError::Invalid(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(matches!(a.verify("not.a.jwt"), Err(AuthError::Invalid(_))));
        let other = Authenticator::hs256("other", Duration::from_secs(0));
        let t = other
            .mint("u1", None, None, Duration::from_secs(60))
            .expect("mints");
        assert!(matches!(a.verify(&t), Err(AuthError::Invalid(_))));
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
        assert!(matches!(a.verify(&no_exp), Err(AuthError::Invalid(_))));
        let none_alg =
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ1MSIsImV4cCI6OTk5OTk5OTk5OX0.";
        assert!(matches!(a.verify(none_alg), Err(AuthError::Invalid(_))));
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
        assert!(matches!(a.verify(&nbf), Err(AuthError::Invalid(m)) if m.contains("nbf")));
        let iat = a
            .sign(&serde_json::json!({"sub": "u1", "exp": now + 600, "iat": now + 300}))
            .expect("signs");
        assert!(matches!(a.verify(&iat), Err(AuthError::Invalid(m)) if m.contains("iat")));
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
        assert!(matches!(a.verify(&forged), Err(AuthError::Invalid(_))));
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &serde_json::json!({"sub": "u1", "exp": 9_999_999_999_u64}),
            &EncodingKey::from_secret(b"test-secret"),
        )
        .expect("signs");
        assert!(matches!(a.verify(&hs512), Err(AuthError::Invalid(_))));
    }

    #[test]
    fn development_secret_is_flagged() {
        assert!(Authenticator::hs256(DEVELOPMENT_SECRET, Duration::ZERO).is_development());
        assert!(!auth().is_development());
    }
}
