//! `[auth]`: how clients' tokens are verified: the default provider (HS256 with one
//! secret) and named `[[auth.provider]]`s (secrets, a JWKS URL or file, a PEM file) that
//! routes choose with `auth = "<name>"`.

use super::duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

/// The name of the provider built from `auth.secret`, used by routes that name none.
pub const DEFAULT_PROVIDER: &str = "default";

/// Client authentication.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct AuthConfig {
    /// HS256 secret for client tokens. Empty: AUTH_JWT_SECRET, else JWT_SECRET, else the
    /// shipped development secret (a loud warning is logged: never run that in
    /// production).
    pub secret: String,
    /// Clock skew allowed when checking `exp`, `nbf` and `iat`.
    #[serde(with = "duration::text")]
    #[schemars(with = "String")]
    pub leeway: Duration,
    /// Named token verifiers (`[[auth.provider]]`); a route picks one with
    /// `auth = "<name>"`. One named `default` replaces the provider built from `secret`.
    #[serde(rename = "provider", skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<ProviderConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            secret: String::new(),
            leeway: Duration::from_secs(30),
            providers: Vec::new(),
        }
    }
}

/// How a provider's keys are had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Shared secrets (`secrets`), HMAC (`algorithms`: HS256, HS384, HS512).
    Hs256,
    /// Public keys: a JSON Web Key Set at `jwks_url` (fetched, cached, refreshed) or in
    /// `jwks_file`, or one PEM public key in `pem_file` (files reloaded on SIGHUP).
    Jwks,
}

/// One named token verifier.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ProviderConfig {
    /// The name routes give as `auth`; also the metrics label.
    pub name: String,
    /// `hs256` (secrets) or `jwks` (public keys).
    pub kind: ProviderKind,
    /// hs256: the secrets a token may be signed with (several while rotating).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Algorithms accepted. hs256: of HS256, HS384, HS512 (default HS256). jwks: for
    /// keys that carry no `alg` (default by key type: RSA RS256, P-256 ES256, P-384
    /// ES384, Ed25519 EdDSA), and the algorithm of a `pem_file` key (required there).
    /// A key's own `alg` always decides; the token's header never does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub algorithms: Vec<String>,
    /// jwks: the JWKS URL (`https://…/.well-known/jwks.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// jwks: a JWKS file (reloaded on SIGHUP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub jwks_file: Option<PathBuf>,
    /// jwks: one PEM public key (RSA, EC or Ed25519; reloaded on SIGHUP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub pem_file: Option<PathBuf>,
    /// Required `iss` (unset: not checked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Accepted `aud` values (empty: not checked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audience: Vec<String>,
    /// Accepted `azp` values, Clerk's authorized parties (empty: not checked; set: a
    /// token without `azp` is refused).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorized_parties: Vec<String>,
    /// Which claims say who the user is.
    #[serde(default)]
    pub claims: ClaimMapping,
    /// jwks_url: refuse to start while the JWKS cannot be fetched (default: start, keep
    /// retrying, refuse tokens with `unavailable` until keys are had).
    #[serde(default)]
    pub required: bool,
    /// jwks_url: how often the JWKS is fetched when its response has no
    /// `Cache-Control: max-age` (a max-age is obeyed between `min_refresh` and a day).
    #[serde(default = "default_refresh", with = "duration::text")]
    #[schemars(with = "String")]
    pub refresh: Duration,
    /// jwks_url: the least time between two fetches, whatever asks (a token with an
    /// unknown `kid` asks at once): a flood of random `kid`s fetches no more often.
    #[serde(default = "default_min_refresh", with = "duration::text")]
    #[schemars(with = "String")]
    pub min_refresh: Duration,
    /// jwks_url: a fetch taking longer (connect, headers and body) fails.
    #[serde(default = "default_timeout", with = "duration::text")]
    #[schemars(with = "String")]
    pub timeout: Duration,
    /// jwks_url: the largest JWKS read, in bytes; a longer answer fails the fetch.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
}

/// Where a verified token's claims put the user. Each is a claim name, or a dotted path
/// into nested claims (`metadata.rooms`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct ClaimMapping {
    /// The user id (a string or a number).
    pub user: String,
    /// The display name: one claim, or several joined with spaces (`["first_name",
    /// "last_name"]`); those missing are skipped.
    pub name: Vec<String>,
    /// The rooms the user may join (an array of strings, or one string).
    pub rooms: String,
    /// The user's picture URL.
    pub image: String,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        ClaimMapping {
            user: "sub".into(),
            name: vec!["name".into()],
            rooms: "rooms".into(),
            image: "picture".into(),
        }
    }
}

fn default_refresh() -> Duration {
    Duration::from_secs(600)
}

fn default_min_refresh() -> Duration {
    Duration::from_secs(30)
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_max_bytes() -> usize {
    1 << 20
}

/// The algorithms a provider kind may name: HMAC with secrets, the others with a key
/// pair (also what `[upstream.resign]` may sign with a private key).
const HMAC: [&str; 3] = ["HS256", "HS384", "HS512"];
pub(super) const PUBLIC: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

impl AuthConfig {
    /// Names every provider that makes no sense; `routes` are the providers routes name.
    pub(super) fn check<'a>(&self, routes: impl Iterator<Item = &'a str>, p: &mut Vec<String>) {
        let mut names = BTreeSet::new();
        for (i, pr) in self.providers.iter().enumerate() {
            let key = format!("auth.provider[{i}]");
            if pr.name.is_empty() {
                p.push(format!("{key}.name must not be empty"));
            }
            if !names.insert(pr.name.as_str()) {
                p.push(format!("{key}.name `{}` is used twice", pr.name));
            }
            pr.check(&key, p);
        }
        for r in routes {
            if r != DEFAULT_PROVIDER && !names.contains(r) {
                p.push(format!(
                    "a route names auth `{r}`: no [[auth.provider]] has that name"
                ));
            }
        }
    }
}

impl ProviderConfig {
    fn check(&self, key: &str, p: &mut Vec<String>) {
        let allowed: &[&str] = match self.kind {
            ProviderKind::Hs256 => &HMAC,
            ProviderKind::Jwks => &PUBLIC,
        };
        for a in &self.algorithms {
            if !allowed.contains(&a.as_str()) {
                p.push(format!(
                    "{key}.algorithms: `{a}` is not one of {} for kind {:?}",
                    allowed.join(", "),
                    self.kind
                ));
            }
        }
        let sources = [
            self.jwks_url.is_some(),
            self.jwks_file.is_some(),
            self.pem_file.is_some(),
        ]
        .iter()
        .filter(|s| **s)
        .count();
        match self.kind {
            ProviderKind::Hs256 => {
                if self.secrets.is_empty() && self.name != DEFAULT_PROVIDER {
                    p.push(format!("{key}.secrets: an hs256 provider needs a secret"));
                }
                if self.secrets.iter().any(String::is_empty) {
                    p.push(format!("{key}.secrets must not hold an empty secret"));
                }
                if sources > 0 {
                    p.push(format!(
                        "{key}: jwks_url, jwks_file and pem_file are for kind `jwks`"
                    ));
                }
            }
            ProviderKind::Jwks => {
                if sources != 1 {
                    p.push(format!(
                        "{key}: a jwks provider needs exactly one of jwks_url, jwks_file, pem_file"
                    ));
                }
                if !self.secrets.is_empty() {
                    p.push(format!("{key}.secrets are for kind `hs256`"));
                }
                if self.pem_file.is_some() && self.algorithms.len() != 1 {
                    p.push(format!(
                        "{key}.algorithms: a pem_file key needs its one algorithm (`[\"RS256\"]`)"
                    ));
                }
                if let Some(u) = &self.jwks_url
                    && !(u.starts_with("https://") || u.starts_with("http://"))
                {
                    p.push(format!("{key}.jwks_url `{u}` must be http:// or https://"));
                }
            }
        }
        if self.claims.user.is_empty() {
            p.push(format!("{key}.claims.user must not be empty"));
        }
        if self.min_refresh.is_zero() || self.timeout.is_zero() || self.refresh.is_zero() {
            p.push(format!(
                "{key}: refresh, min_refresh and timeout must be longer than 0s"
            ));
        }
        if self.max_bytes == 0 {
            p.push(format!("{key}.max_bytes must be above 0"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(kind: ProviderKind) -> ProviderConfig {
        ProviderConfig {
            name: "p".into(),
            kind,
            secrets: Vec::new(),
            algorithms: Vec::new(),
            jwks_url: None,
            jwks_file: None,
            pem_file: None,
            issuer: None,
            audience: Vec::new(),
            authorized_parties: Vec::new(),
            claims: ClaimMapping::default(),
            required: false,
            refresh: default_refresh(),
            min_refresh: default_min_refresh(),
            timeout: default_timeout(),
            max_bytes: default_max_bytes(),
        }
    }

    fn problems(providers: Vec<ProviderConfig>, routes: &[&str]) -> Vec<String> {
        let cfg = AuthConfig {
            providers,
            ..AuthConfig::default()
        };
        let mut p = Vec::new();
        cfg.check(routes.iter().copied(), &mut p);
        p
    }

    #[test]
    fn providers_are_checked() {
        let mut jwks = provider(ProviderKind::Jwks);
        jwks.jwks_url = Some("https://example.com/jwks.json".into());
        assert!(problems(vec![jwks.clone()], &["p", "default"]).is_empty());
        assert_eq!(problems(vec![jwks.clone()], &["nope"]).len(), 1);
        let mut two = jwks.clone();
        two.jwks_file = Some("k.json".into());
        assert!(problems(vec![two], &[])[0].contains("exactly one"));
        let mut pem = provider(ProviderKind::Jwks);
        pem.pem_file = Some("k.pem".into());
        assert!(problems(vec![pem.clone()], &[])[0].contains("one algorithm"));
        pem.algorithms = vec!["HS256".into()];
        assert!(problems(vec![pem], &[])[0].contains("not one of"));
        let hs = provider(ProviderKind::Hs256);
        assert!(problems(vec![hs], &[])[0].contains("needs a secret"));
        assert!(problems(vec![jwks.clone(), jwks], &[])[0].contains("used twice"));
    }
}
