//! TLS settings: a listener's certificate (`[[listener]] tls`), and what a connection
//! switchboard makes trusts and presents (`tls` of an `[[upstream]]`, a `[[webhook]]`,
//! `[redis]` and `[amqp]`). The files are read when the server starts (and a listener's
//! again on reload); `switchboard config check` reads them too.

use super::duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A listener's TLS: it serves `https://` and `wss://` (TLS 1.2 and 1.3, ALPN
/// `http/1.1`). The files are read again on SIGHUP and when they change (checked every
/// `reload_check`), without dropping a connection; files that do not load leave the
/// previous certificate in use, and the error is logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListenerTls {
    /// PEM file: the certificate, then its chain.
    pub cert: String,
    /// PEM file: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: String,
    /// PEM file of CAs: clients must present a certificate one of them signed (mutual
    /// TLS, for internal listeners). Unset: no client certificate is asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<String>,
    /// How long a client may take to finish its handshake. Over it: the connection is
    /// closed and counted (`switchboard_tls_handshake_failures_total{reason="timeout"}`).
    #[serde(default = "default_handshake_timeout", with = "duration::text")]
    #[schemars(with = "String")]
    pub handshake_timeout: Duration,
    /// How often the files are checked for a change.
    #[serde(default = "default_reload_check", with = "duration::text")]
    #[schemars(with = "String")]
    pub reload_check: Duration,
}

fn default_handshake_timeout() -> Duration {
    Duration::from_secs(10)
}

fn default_reload_check() -> Duration {
    Duration::from_secs(5)
}

/// TLS for a connection switchboard makes (used for `wss://`, `https://`, `rediss://`
/// and `amqps://` URLs; without this table, the system's roots verify the server).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ClientTls {
    /// PEM file of CAs trusted instead of the system's roots (a private CA).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// PEM file: a client certificate presented to the server (mutual TLS), with `key`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    /// PEM file: the client certificate's private key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Accept any server certificate (expired, self-signed, another name). For a test
    /// bench only: every connection is open to interception, and a warning says so at
    /// start. Never on by default.
    pub insecure_skip_verify: bool,
}

impl ClientTls {
    /// Every impossible combination, each named under `key`.
    pub(super) fn check(&self, key: &str, p: &mut Vec<String>) {
        if self.cert.is_some() != self.key.is_some() {
            p.push(format!(
                "{key}.tls: a client certificate needs both `cert` and `key`"
            ));
        }
        if self.insecure_skip_verify && self.ca.is_some() {
            p.push(format!(
                "{key}.tls: `ca` and `insecure_skip_verify` contradict each other"
            ));
        }
    }
}

impl ListenerTls {
    /// Every impossible value, each named under `key`.
    pub(super) fn check(&self, key: &str, p: &mut Vec<String>) {
        if self.cert.is_empty() || self.key.is_empty() {
            p.push(format!("{key}.tls: `cert` and `key` are both needed"));
        }
        if self.handshake_timeout.is_zero() || self.reload_check.is_zero() {
            p.push(format!(
                "{key}.tls: `handshake_timeout` and `reload_check` must be above zero"
            ));
        }
    }
}
