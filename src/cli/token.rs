//! `switchboard token` (mint a token with the configured secret or a private key) and
//! `switchboard auth check` (would a provider accept this token, and if not, why).

use crate::auth::{Authenticator, Providers, Signer};
use crate::config::Config;
use crate::telemetry::Metrics;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `switchboard token`'s arguments.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Configuration file whose auth.secret signs (default: the embedded one).
    #[arg(long, env = "SWITCHBOARD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// The user id (`sub`).
    #[arg(long)]
    user: String,
    /// The display name (`name`).
    #[arg(long)]
    name: Option<String>,
    /// Rooms the user may join (`rooms`), comma-separated.
    #[arg(long, value_delimiter = ',')]
    rooms: Option<Vec<String>>,
    /// How long the token is valid (`30m`, `1h`, `7d`).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: Duration,
    /// Sign with this private key (PEM) instead of the secret.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// The key's algorithm (RS256, RS384, RS512, PS256, ES256, ES384, EdDSA).
    #[arg(long, default_value = "RS256", requires = "key")]
    alg: String,
    /// The `kid` the header names (the key's id in the provider's JWKS).
    #[arg(long, requires = "key")]
    kid: Option<String>,
    /// Another claim, `name=value` (a JSON value, else a string): `--claim azp=https://app`.
    #[arg(long = "claim", value_name = "NAME=VALUE")]
    claims: Vec<String>,
}

/// `switchboard auth …`.
#[derive(Debug, Subcommand)]
pub enum AuthAction {
    /// Say whether a provider would accept a token, and which check fails if not
    /// (exit status 1 when refused).
    Check {
        /// Configuration file holding the provider (default: the embedded one).
        #[arg(long, env = "SWITCHBOARD_CONFIG", value_name = "FILE")]
        config: Option<PathBuf>,
        /// The provider's name (default: `default`).
        #[arg(long, default_value = crate::config::DEFAULT_PROVIDER)]
        provider: String,
        /// The user id a client would send beside the token (Clerk's `auth.userId`).
        #[arg(long)]
        user_id: Option<String>,
        /// The token (with or without `Bearer `).
        token: String,
    },
}

/// Mints and prints a token.
///
/// # Errors
/// Bad configuration, unreadable key, bad `--claim`.
pub fn mint(a: TokenArgs) -> Result<ExitCode> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut claims = Map::new();
    claims.insert("sub".into(), Value::String(a.user.clone()));
    if let Some(n) = &a.name {
        claims.insert("name".into(), Value::String(n.clone()));
    }
    if let Some(r) = a.rooms {
        claims.insert("rooms".into(), Value::from(r));
    }
    claims.insert("iat".into(), Value::from(now));
    claims.insert(
        "exp".into(),
        Value::from(now.saturating_add(a.ttl.as_secs())),
    );
    for c in &a.claims {
        let (k, v) = c
            .split_once('=')
            .with_context(|| format!("--claim `{c}`: expected name=value"))?;
        let v = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_string()));
        claims.insert(k.to_string(), v);
    }
    let token = match &a.key {
        Some(path) => {
            let alg = jsonwebtoken::Algorithm::from_str(&a.alg)
                .map_err(|_| anyhow::anyhow!("--alg `{}` is not an algorithm", a.alg))?;
            Signer::from_pem_file(path, alg, a.kid.clone())?.sign(&claims)
        }
        None => {
            let cfg = Config::load(a.config.as_deref())?;
            let auth = if cfg.auth.secret.is_empty() {
                Authenticator::from_env(Duration::ZERO)
            } else {
                Authenticator::hs256(&cfg.auth.secret, Duration::ZERO)
            };
            if auth.is_development() {
                eprintln!(
                    "switchboard: WARNING: signing with the shipped development secret; \
                     set AUTH_JWT_SECRET (or JWT_SECRET) for anything but local testing"
                );
            }
            auth.sign(&claims)
        }
    }
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

/// `switchboard auth …`.
///
/// # Errors
/// Bad configuration, or a provider that cannot start.
pub fn auth(action: AuthAction) -> Result<ExitCode> {
    let AuthAction::Check {
        config,
        provider,
        user_id,
        token,
    } = action;
    let cfg = Config::load(config.as_deref())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        let providers = Providers::start(&cfg.auth, &Arc::new(Metrics::new()))
            .await
            .map_err(anyhow::Error::msg)?;
        let p = providers
            .get(Some(&provider))
            .with_context(|| format!("no auth provider `{provider}`"))?;
        match p.verify(&token).await {
            Ok(v) if user_id.as_ref().is_some_and(|u| *u != v.identity.user.id) => {
                println!(
                    "refused (user_mismatch): the token's user is `{}`, not `{}`",
                    v.identity.user.id,
                    user_id.unwrap_or_default()
                );
                Ok(ExitCode::FAILURE)
            }
            Ok(v) => {
                let i = &v.identity;
                println!("accepted by `{provider}`: user `{}`", i.user.id);
                if let Some(n) = &i.user.name {
                    println!("  name: {n}");
                }
                if let Some(img) = &i.user.image {
                    println!("  image: {img}");
                }
                if let Some(r) = &i.rooms {
                    println!("  rooms: {}", r.join(", "));
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                println!("refused ({}): {e}", e.reason());
                Ok(ExitCode::FAILURE)
            }
        }
    })
}
