//! A JSON Web Key Set fetched over HTTP(S): cached, refreshed in the background on its
//! `Cache-Control: max-age` (else the provider's `refresh`), and at once when a token
//! names an unknown `kid`, never more often than `min_refresh` whatever asks (one fetch
//! at a time; those who ask meanwhile wait for it). Keys already had keep verifying while
//! the endpoint is down. A fetch is bounded in time (`timeout`) and size (`max_bytes`).

use super::keys::{self, Key};
use crate::telemetry::{Metrics, Name, ProviderLabels, ProviderOutcome};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::header::{ACCEPT, CACHE_CONTROL, HeaderValue, USER_AGENT};
use hyper::{Request, StatusCode, Uri};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::Algorithm;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;
use thiserror::Error;
use tokio::time::Instant;

/// The longest a `Cache-Control: max-age` is obeyed.
const MAX_AGE_CAP: Duration = Duration::from_secs(24 * 3600);

/// Why a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FetchError {
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// Could not connect, or the connection failed.
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// An answer other than 200.
    #[error("answered {0}")]
    Status(StatusCode),
    /// A body over the bound.
    #[error("the answer is over {0} bytes")]
    TooLarge(usize),
    /// Not a usable key set.
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
}

/// How the remote set is fetched.
#[derive(Debug, Clone)]
pub struct FetchSettings {
    /// Refresh period when the answer has no max-age.
    pub refresh: Duration,
    /// The least time between two fetches.
    pub min_refresh: Duration,
    /// Bound on a fetch.
    pub timeout: Duration,
    /// Bound on the body.
    pub max_bytes: usize,
}

/// What is known now.
struct Cached {
    keys: Arc<Vec<Key>>,
    /// The last fetch's error, if it failed.
    error: Option<FetchError>,
    /// When the next background refresh is due.
    due: Instant,
}

/// The last attempt, behind the single-flight lock.
struct Attempt {
    at: Option<Instant>,
}

/// A remote key set.
pub struct RemoteKeys {
    name: Name,
    url: Uri,
    allowed: Vec<Algorithm>,
    settings: FetchSettings,
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    cached: RwLock<Cached>,
    attempt: tokio::sync::Mutex<Attempt>,
    metrics: Arc<Metrics>,
}

/// Whether a lookup found the key, or why not.
pub enum Lookup {
    /// The keys with that `kid` (or every key, for a token without one).
    Found(Arc<Vec<Key>>),
    /// The set is known and has no such key.
    Unknown,
    /// The set could not be fetched (the keys had, if any, do not have it).
    Unavailable(String),
}

impl RemoteKeys {
    /// Fetches the set once (within `timeout`), then keeps it fresh on a task of its own
    /// for as long as the returned handle lives.
    ///
    /// # Errors
    /// The URL does not parse; or `required` and the first fetch failed.
    pub async fn start(
        name: &str,
        url: &str,
        allowed: Vec<Algorithm>,
        settings: FetchSettings,
        required: bool,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<RemoteKeys>, String> {
        let url: Uri = url.parse().map_err(|e| format!("jwks_url `{url}`: {e}"))?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(settings.timeout));
        let https = HttpsConnectorBuilder::new()
            .with_tls_config((*crate::tls::client::system()).clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let remote = Arc::new(RemoteKeys {
            name: Name(name.into()),
            url,
            allowed,
            client: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(https),
            cached: RwLock::new(Cached {
                keys: Arc::new(Vec::new()),
                error: None,
                due: Instant::now(),
            }),
            attempt: tokio::sync::Mutex::new(Attempt { at: None }),
            settings,
            metrics,
        });
        remote.refresh(true).await;
        if let Some(e) = remote.error() {
            if required {
                return Err(format!(
                    "auth provider `{name}`: the JWKS at {} cannot be fetched ({e}) and the provider is required",
                    remote.url
                ));
            }
            tracing::warn!(provider = name, url = %remote.url, error = %e, "JWKS not fetched; starting without its keys and retrying");
        }
        tokio::spawn(keep_fresh(Arc::downgrade(&remote)));
        Ok(remote)
    }

    /// The last fetch's error, if it failed.
    pub fn error(&self) -> Option<FetchError> {
        self.read().error.clone()
    }

    /// How many keys are had now.
    pub fn key_count(&self) -> usize {
        self.read().keys.len()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Cached> {
        self.cached.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The keys a token with `kid` may be verified with: from the cache, else after a
    /// refresh (when one is allowed now).
    pub async fn lookup(&self, kid: Option<&str>) -> Lookup {
        if let Some(found) = self.find(kid) {
            return Lookup::Found(found);
        }
        self.refresh(false).await;
        if let Some(found) = self.find(kid) {
            return Lookup::Found(found);
        }
        match self.error() {
            Some(e) => Lookup::Unavailable(format!("the provider's keys cannot be fetched ({e})")),
            None => Lookup::Unknown,
        }
    }

    fn find(&self, kid: Option<&str>) -> Option<Arc<Vec<Key>>> {
        let keys = self.read().keys.clone();
        match kid {
            None if !keys.is_empty() => Some(keys),
            None => None,
            Some(kid) => {
                let mine: Vec<Key> = keys
                    .iter()
                    .filter(|k| k.kid.as_deref() == Some(kid))
                    .cloned()
                    .collect();
                (!mine.is_empty()).then(|| Arc::new(mine))
            }
        }
    }

    /// Fetches the set unless one was fetched (or tried) less than `min_refresh` ago;
    /// `first`: the start-up fetch, always made.
    async fn refresh(&self, first: bool) {
        let mut attempt = self.attempt.lock().await;
        let now = Instant::now();
        if !first
            && let Some(at) = attempt.at
            && now.duration_since(at) < self.settings.min_refresh
        {
            return;
        }
        attempt.at = Some(now);
        let result = self.fetch().await;
        let outcome = match &result {
            Ok(_) => "ok",
            Err(FetchError::Timeout(_)) => "timeout",
            Err(FetchError::Unreachable(_)) => "unreachable",
            Err(FetchError::Status(_)) => "status",
            Err(FetchError::TooLarge(_)) => "too_large",
            Err(FetchError::Keys(_)) => "bad_keys",
        };
        self.metrics
            .jwks_fetches
            .get_or_create(&ProviderOutcome {
                provider: self.name.clone(),
                outcome,
            })
            .inc();
        let mut cached = self.cached.write().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok((keys, max_age)) => {
                tracing::info!(provider = %self.name.0, keys = keys.len(), "JWKS fetched");
                self.metrics
                    .auth_keys
                    .get_or_create(&ProviderLabels {
                        provider: self.name.clone(),
                    })
                    .set(i64::try_from(keys.len()).unwrap_or(i64::MAX));
                cached.keys = Arc::new(keys);
                cached.error = None;
                let every = max_age.unwrap_or(self.settings.refresh).clamp(
                    self.settings.min_refresh,
                    MAX_AGE_CAP.max(self.settings.min_refresh),
                );
                cached.due = now + every;
            }
            Err(e) => {
                tracing::warn!(provider = %self.name.0, url = %self.url, error = %e, "JWKS fetch failed; keeping the keys had");
                cached.error = Some(e);
                cached.due = now + self.settings.min_refresh;
            }
        }
    }

    /// One GET, bounded in time and size.
    async fn fetch(&self) -> Result<(Vec<Key>, Option<Duration>), FetchError> {
        let timeout = self.settings.timeout;
        let max = self.settings.max_bytes;
        let work = async {
            let mut req = Request::get(self.url.clone())
                .body(Empty::<Bytes>::new())
                .map_err(|e| FetchError::Unreachable(e.to_string()))?;
            req.headers_mut()
                .insert(ACCEPT, HeaderValue::from_static("application/json"));
            req.headers_mut().insert(
                USER_AGENT,
                HeaderValue::from_static(concat!("switchboard/", env!("CARGO_PKG_VERSION"))),
            );
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| FetchError::Unreachable(e.to_string()))?;
            if resp.status() != StatusCode::OK {
                return Err(FetchError::Status(resp.status()));
            }
            let max_age = resp
                .headers()
                .get_all(CACHE_CONTROL)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .find_map(max_age);
            let body = Limited::new(resp.into_body(), max)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        FetchError::TooLarge(max)
                    } else {
                        FetchError::Unreachable(e.to_string())
                    }
                })?
                .to_bytes();
            let (keys, notes) = keys::from_jwks(&body, &self.allowed)?;
            for n in notes {
                tracing::warn!(provider = %self.name.0, "JWKS {n}: skipped");
            }
            Ok((keys, max_age))
        };
        tokio::time::timeout(timeout, work)
            .await
            .unwrap_or(Err(FetchError::Timeout(timeout)))
    }
}

/// `max-age=N` of a `Cache-Control` value (`no-store`/`no-cache` mean none: the
/// provider's own period is used, bounded below by `min_refresh`).
fn max_age(value: &str) -> Option<Duration> {
    value.split(',').find_map(|d| {
        let (k, v) = d.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("max-age")
            .then(|| v.trim().trim_matches('"').parse::<u64>().ok())
            .flatten()
            .map(Duration::from_secs)
    })
}

/// Refreshes the set when due, for as long as it is wanted.
async fn keep_fresh(remote: Weak<RemoteKeys>) {
    loop {
        let Some(due) = remote.upgrade().map(|r| r.read().due) else {
            return;
        };
        tokio::time::sleep_until(due).await;
        let Some(r) = remote.upgrade() else {
            return;
        };
        if r.read().due <= Instant::now() {
            r.refresh(false).await;
            // Every attempt moves `due` on; should none have been made, wait anyway.
            if r.read().due <= Instant::now() {
                let floor = r.settings.min_refresh;
                drop(r);
                tokio::time::sleep(floor).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_read_from_cache_control() {
        assert_eq!(
            max_age("public, max-age=300"),
            Some(Duration::from_secs(300))
        );
        assert_eq!(max_age("MAX-AGE = \"60\""), Some(Duration::from_secs(60)));
        assert_eq!(max_age("no-store"), None);
        assert_eq!(max_age("max-age=soon"), None);
    }
}
