//! One named token verifier: where its keys come from (secrets, a JWKS URL, a JWKS or
//! PEM file), which claims it checks (`exp`, `nbf`, `iat` with the leeway; `iss`, `aud`,
//! `azp` where configured) and where the user is in them. Every verdict is counted by
//! reason and logged at debug, naming the check that failed.

use super::claims::ClaimMap;
use super::jwks::{FetchSettings, Lookup, RemoteKeys};
use super::keys::{self, Key, KeyError};
use super::{AuthError, Identity, strip_bearer};
use crate::config::{ProviderConfig, ProviderKind};
use crate::telemetry::{Metrics, Name, ProviderOutcome};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Header, Validation};
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A verified token: who it says the user is, and every claim it holds (re-signing
/// maps them).
#[derive(Debug, Clone)]
pub struct Verified {
    /// The user and the rooms it grants.
    pub identity: Identity,
    /// Every claim.
    pub claims: Map<String, Value>,
}

impl Verified {
    /// The token's id (`jti`), if it has one.
    pub fn jti(&self) -> Option<&str> {
        self.claims.get("jti").and_then(Value::as_str)
    }
}

/// Where a provider's keys are.
enum Source {
    /// Secrets or files, swapped whole on reload.
    Fixed {
        keys: RwLock<Arc<Vec<Key>>>,
        file: Option<KeyFile>,
    },
    /// A JWKS URL.
    Remote(Arc<RemoteKeys>),
}

/// A key file, reloaded on SIGHUP.
struct KeyFile {
    path: PathBuf,
    /// `Some(alg)`: one PEM key of that algorithm; `None`: a JWKS.
    pem: Option<Algorithm>,
    allowed: Vec<Algorithm>,
}

impl KeyFile {
    fn load(&self) -> Result<Vec<Key>, KeyError> {
        let bytes = std::fs::read(&self.path).map_err(|e| KeyError::Read {
            path: self.path.display().to_string(),
            reason: e.to_string(),
        })?;
        match self.pem {
            Some(alg) => Ok(vec![keys::from_pem(&bytes, alg)?]),
            None => {
                let (keys, notes) = keys::from_jwks(&bytes, &self.allowed)?;
                for n in notes {
                    tracing::warn!(path = %self.path.display(), "JWKS file {n}: skipped");
                }
                Ok(keys)
            }
        }
    }
}

/// One named verifier.
pub struct Provider {
    name: Name,
    source: Source,
    leeway: u64,
    issuer: Option<String>,
    audience: Vec<String>,
    parties: Vec<String>,
    claims: ClaimMap,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name.0)
            .finish_non_exhaustive()
    }
}

/// Seconds since the epoch.
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Provider {
    /// Builds a provider; a `jwks_url` one fetches its keys first (see
    /// [`RemoteKeys::start`]).
    ///
    /// # Errors
    /// A key file that cannot be read or holds no usable key, an unknown algorithm, or a
    /// required JWKS that cannot be fetched.
    pub async fn start(
        cfg: &ProviderConfig,
        leeway: Duration,
        metrics: Arc<Metrics>,
    ) -> Result<Provider, String> {
        let named = |e: KeyError| format!("auth provider `{}`: {e}", cfg.name);
        let algs = keys::algorithms(&cfg.algorithms).map_err(named)?;
        let source = match cfg.kind {
            ProviderKind::Hs256 => {
                let algs = if algs.is_empty() {
                    vec![Algorithm::HS256]
                } else {
                    algs
                };
                Source::Fixed {
                    keys: RwLock::new(Arc::new(keys::from_secrets(&cfg.secrets, &algs))),
                    file: None,
                }
            }
            ProviderKind::Jwks => {
                if let Some(url) = &cfg.jwks_url {
                    let settings = FetchSettings {
                        refresh: cfg.refresh,
                        min_refresh: cfg.min_refresh,
                        timeout: cfg.timeout,
                        max_bytes: cfg.max_bytes,
                    };
                    Source::Remote(
                        RemoteKeys::start(
                            &cfg.name,
                            url,
                            algs,
                            settings,
                            cfg.required,
                            metrics.clone(),
                        )
                        .await?,
                    )
                } else {
                    let file = match (&cfg.jwks_file, &cfg.pem_file) {
                        (Some(path), _) => KeyFile {
                            path: path.clone(),
                            pem: None,
                            allowed: algs,
                        },
                        (None, Some(path)) => KeyFile {
                            path: path.clone(),
                            pem: algs.first().copied(),
                            allowed: algs,
                        },
                        (None, None) => {
                            return Err(format!("auth provider `{}` has no keys", cfg.name));
                        }
                    };
                    Source::Fixed {
                        keys: RwLock::new(Arc::new(file.load().map_err(named)?)),
                        file: Some(file),
                    }
                }
            }
        };
        let provider = Provider {
            name: Name(cfg.name.as_str().into()),
            source,
            leeway: leeway.as_secs(),
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            parties: cfg.authorized_parties.clone(),
            claims: ClaimMap::new(&cfg.claims),
            metrics,
        };
        provider.count_keys();
        Ok(provider)
    }

    /// An HS256 provider with one secret and the default claim mapping.
    pub fn hs256(name: &str, secret: &str, leeway: Duration, metrics: Arc<Metrics>) -> Provider {
        Provider {
            name: Name(name.into()),
            source: Source::Fixed {
                keys: RwLock::new(Arc::new(keys::from_secrets(
                    &[secret.to_string()],
                    &[Algorithm::HS256],
                ))),
                file: None,
            },
            leeway: leeway.as_secs(),
            issuer: None,
            audience: Vec::new(),
            parties: Vec::new(),
            claims: ClaimMap::new(&crate::config::ClaimMapping::default()),
            metrics,
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name.0
    }

    /// Reloads its key file, if it has one; on failure the keys had are kept.
    ///
    /// # Errors
    /// The file cannot be read or holds no usable key.
    pub fn reload(&self) -> Result<(), String> {
        if let Source::Fixed {
            keys,
            file: Some(file),
        } = &self.source
        {
            let fresh = file
                .load()
                .map_err(|e| format!("auth provider `{}`: {e}", self.name.0))?;
            tracing::info!(provider = %self.name.0, keys = fresh.len(), "key file reloaded");
            *keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(fresh);
            self.count_keys();
        }
        Ok(())
    }

    /// Sets the key gauge for secrets and files (a remote set sets it when fetched).
    fn count_keys(&self) {
        let Source::Fixed { keys, .. } = &self.source else {
            return;
        };
        let n = keys.read().unwrap_or_else(|p| p.into_inner()).len();
        self.metrics
            .auth_keys
            .get_or_create(&crate::telemetry::ProviderLabels {
                provider: self.name.clone(),
            })
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// Its state for `/readyz`: whether it can verify, how many keys it has, and the
    /// last fetch's error.
    pub fn state(&self) -> Value {
        match &self.source {
            Source::Fixed { keys, file } => serde_json::json!({
                "ready": true,
                "keys": keys.read().unwrap_or_else(|p| p.into_inner()).len(),
                "source": if file.is_some() { "file" } else { "secrets" },
            }),
            Source::Remote(r) => {
                let error = r.error();
                let n = r.key_count();
                serde_json::json!({
                    "ready": n > 0,
                    "keys": n,
                    "source": "jwks_url",
                    "error": error.map(|e| e.to_string()),
                })
            }
        }
    }

    /// Verifies a token (with or without `Bearer `), fetching keys when it names a `kid`
    /// not had yet.
    ///
    /// # Errors
    /// Why it was refused; [`AuthError::Unavailable`] when its key could not be fetched.
    pub async fn verify(&self, token: &str) -> Result<Verified, AuthError> {
        let verdict = match self.parse(token) {
            Ok((token, header)) => match self.keys(&header).await {
                Ok(keys) => self.check(token, &header, &keys),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        self.count(&verdict);
        verdict
    }

    /// Verifies a token with keys already had (secrets and files; a JWKS URL's cache).
    ///
    /// # Errors
    /// As [`Provider::verify`], and a `kid` not in the cache.
    pub fn verify_now(&self, token: &str) -> Result<Verified, AuthError> {
        let verdict = self.parse(token).and_then(|(token, header)| {
            let keys = match &self.source {
                Source::Fixed { keys, .. } => {
                    keys.read().unwrap_or_else(|p| p.into_inner()).clone()
                }
                Source::Remote(_) => {
                    return Err(AuthError::Unavailable(
                        "this provider's keys are fetched: verify asynchronously".into(),
                    ));
                }
            };
            self.check(token, &header, &keys)
        });
        self.count(&verdict);
        verdict
    }

    fn count(&self, verdict: &Result<Verified, AuthError>) {
        let outcome = match verdict {
            Ok(_) => "accepted",
            Err(e) => {
                tracing::debug!(provider = %self.name.0, reason = e.reason(), "token refused: {e}");
                e.reason()
            }
        };
        self.metrics
            .auth_tokens
            .get_or_create(&ProviderOutcome {
                provider: self.name.clone(),
                outcome,
            })
            .inc();
    }

    fn parse<'t>(&self, token: &'t str) -> Result<(&'t str, Header), AuthError> {
        let token = strip_bearer(token);
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| AuthError::Malformed(e.to_string()))?;
        Ok((token, header))
    }

    /// The keys that may have signed a token with `header`.
    async fn keys(&self, header: &Header) -> Result<Arc<Vec<Key>>, AuthError> {
        match &self.source {
            Source::Fixed { keys, .. } => {
                Ok(keys.read().unwrap_or_else(|p| p.into_inner()).clone())
            }
            Source::Remote(r) => match r.lookup(header.kid.as_deref()).await {
                Lookup::Found(keys) => Ok(keys),
                Lookup::Unknown => Err(AuthError::UnknownKey(
                    header.kid.clone().unwrap_or_else(|| "(none)".into()),
                )),
                Lookup::Unavailable(why) => Err(AuthError::Unavailable(why)),
            },
        }
    }

    /// The signature with the keys of the token's `kid` and algorithm, then the claims.
    fn check(&self, token: &str, header: &Header, keys: &[Key]) -> Result<Verified, AuthError> {
        // A key of the token's `kid`, when it names one and a key has it; keys without a
        // `kid` (secrets, a PEM file) serve every token.
        let by_kid: Vec<&Key> = keys
            .iter()
            .filter(|k| match (&header.kid, &k.kid) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            })
            .collect();
        if by_kid.is_empty() {
            return Err(AuthError::UnknownKey(
                header.kid.clone().unwrap_or_default(),
            ));
        }
        // The key decides the algorithm: a token whose header names another one is
        // refused before any signature is checked.
        let fit: Vec<&Key> = by_kid.into_iter().filter(|k| k.alg == header.alg).collect();
        if fit.is_empty() {
            return Err(AuthError::Algorithm(format!(
                "{:?} is not the algorithm of this provider's keys",
                header.alg
            )));
        }
        let mut last = AuthError::BadSignature;
        for key in fit {
            match jsonwebtoken::decode::<Map<String, Value>>(
                token,
                &key.decoding,
                &self.validation(key.alg),
            ) {
                Ok(data) => return self.accept(data.claims),
                Err(e) => {
                    let e = refusal(&e);
                    if e != AuthError::BadSignature {
                        return Err(e);
                    }
                    last = e;
                }
            }
        }
        Err(last)
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        v.leeway = self.leeway;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp"]);
        if let Some(iss) = &self.issuer {
            v.set_issuer(&[iss]);
        }
        if self.audience.is_empty() {
            v.validate_aud = false;
        } else {
            v.set_audience(&self.audience);
        }
        v
    }

    /// The checks jsonwebtoken does not make (`iat`, `azp`), and the user.
    fn accept(&self, claims: Map<String, Value>) -> Result<Verified, AuthError> {
        if let Some(iat) = claims.get("iat").and_then(Value::as_u64)
            && iat > now().saturating_add(self.leeway)
        {
            return Err(AuthError::IssuedInFuture);
        }
        if !self.parties.is_empty() {
            let azp = claims.get("azp").and_then(Value::as_str);
            if !azp.is_some_and(|a| self.parties.iter().any(|p| p == a)) {
                return Err(AuthError::AuthorizedParty(
                    azp.unwrap_or("(none)").to_string(),
                ));
            }
        }
        let identity = self.claims.identity(&claims)?;
        Ok(Verified { identity, claims })
    }
}

/// jsonwebtoken's verdict in our words.
fn refusal(e: &jsonwebtoken::errors::Error) -> AuthError {
    match e.kind() {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidIssuer => AuthError::Issuer,
        ErrorKind::InvalidAudience => AuthError::Audience,
        ErrorKind::MissingRequiredClaim(c) => AuthError::Claims(format!("no `{c}` claim")),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            AuthError::Algorithm(e.to_string())
        }
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => AuthError::Malformed(e.to_string()),
        _ => AuthError::Invalid(e.to_string()),
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any string offered as a token is verified or refused with a reason: no panic.
        #[test]
        fn any_token_is_verified_or_refused(token in any::<String>(), head in any::<String>()) {
            let p = Provider::hs256("p", "secret", Duration::ZERO, Arc::new(Metrics::new()));
            let _ = p.verify_now(&token);
            let _ = p.verify_now(&format!("Bearer {token}"));
            // Three dot-separated parts, the first a base64 header of anything.
            use base64::Engine as _;
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            let _ = p.verify_now(&format!("{}.{}.{}", b64.encode(&head), b64.encode(&token), token));
        }
    }
}
