//! `[auth]`: how clients' tokens are verified.

use super::duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

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
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            secret: String::new(),
            leeway: Duration::from_secs(30),
        }
    }
}
