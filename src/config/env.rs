//! Environment overrides: the specs' own variables and `SWITCHBOARD_*` for the rest.

use super::{Config, Membership};
use std::time::Duration;

/// The variables read, for documentation and `config check`.
pub const VARIABLES: &[(&str, &str)] = &[
    ("SWITCHBOARD_INSTANCE", "instance"),
    ("SWITCHBOARD_BIND", "bind"),
    ("AUTH_JWT_SECRET", "auth.secret"),
    ("JWT_SECRET", "auth.secret (when AUTH_JWT_SECRET is unset)"),
    ("SOCKET_MAX_PAYLOAD_BYTES", "limits.max_payload"),
    ("PRESENCE_TTL_SECONDS", "hub.presence_ttl"),
    ("SWITCHBOARD_MEMBERSHIP", "hub.membership"),
    ("SWITCHBOARD_BUS", "bus.kind"),
    ("REDIS_URL", "redis.url"),
    (
        "SWITCHBOARD_REDIS_CLUSTER",
        "redis.cluster (comma-separated node URLs)",
    ),
    (
        "REDIS_HOST, REDIS_PORT",
        "redis.url (when REDIS_URL is unset)",
    ),
    ("AMQP_URL", "amqp.url"),
    (
        "WEBHOOK_URL, WEBHOOK_SECRET",
        "one [[webhook]] named master, every type",
    ),
    ("SWITCHBOARD_WEBHOOK_ALLOW", "webhooks.allow (appended)"),
    ("SWITCHBOARD_WEBHOOK_STORE", "webhooks.store"),
    ("INTERNAL_API_SECRET", "internal_api.secret"),
    ("SWITCHBOARD_CONSOLE_PASSWORD", "console.password"),
    (
        "PORT, WS_PORT, …",
        "listener.port of the listener whose port_env names it",
    ),
];

/// Applies the environment (read through `var`) to `cfg`; returns one problem per
/// variable with an impossible value.
pub fn apply_env(cfg: &mut Config, var: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(v) = var("SWITCHBOARD_INSTANCE") {
        cfg.instance = v;
    }
    if let Some(v) = var("SWITCHBOARD_BIND") {
        cfg.bind = v;
    }
    if cfg.auth.secret.is_empty()
        && let Some(v) = var("AUTH_JWT_SECRET").or_else(|| var("JWT_SECRET"))
    {
        cfg.auth.secret = v;
    }
    if let Some(v) = var("SWITCHBOARD_BUS") {
        match v.as_str() {
            "local" => cfg.bus.kind = super::BusKind::Local,
            "redis" => cfg.bus.kind = super::BusKind::Redis,
            _ => problems.push(format!(
                "SWITCHBOARD_BUS=`{v}` must be local or redis (bus.kind)"
            )),
        }
    }
    if let Some(v) = var("SWITCHBOARD_REDIS_CLUSTER") {
        cfg.redis.cluster = v
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
    }
    if let Some(v) = var("REDIS_URL") {
        cfg.redis.url = v;
    } else if var("REDIS_HOST").is_some() || var("REDIS_PORT").is_some() {
        let host = var("REDIS_HOST").unwrap_or_else(|| "localhost".into());
        let port = var("REDIS_PORT").unwrap_or_else(|| "6379".into());
        if port.trim().parse::<u16>().is_err() {
            problems.push(format!("REDIS_PORT=`{port}` is not a port (redis.url)"));
        }
        cfg.redis.url = format!("redis://{host}:{}", port.trim());
    }
    if let Some(v) = var("AMQP_URL") {
        cfg.amqp.url = v;
    }
    if let Some(url) = var("WEBHOOK_URL") {
        let secret = var("WEBHOOK_SECRET").unwrap_or_default();
        if secret.is_empty() {
            problems.push("WEBHOOK_URL is set without WEBHOOK_SECRET (webhook signing)".into());
        }
        cfg.webhook.push(super::WebhookEndpoint {
            name: "master".into(),
            url,
            secrets: secret
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            events: Vec::new(),
            timeout: std::time::Duration::from_secs(10),
            headers: Default::default(),
            standard: false,
            tls: None,
        });
    }
    if let Some(v) = var("SWITCHBOARD_WEBHOOK_ALLOW") {
        cfg.webhooks.allow.extend(
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
        );
    }
    if let Some(v) = var("SWITCHBOARD_WEBHOOK_STORE") {
        cfg.webhooks.store = v;
    }
    if let Some(v) = var("INTERNAL_API_SECRET") {
        cfg.internal_api.secret = v;
    }
    if let Some(v) = var("SWITCHBOARD_CONSOLE_PASSWORD") {
        cfg.console.password = v;
    }
    if let Some(v) = var("SOCKET_MAX_PAYLOAD_BYTES") {
        match v.trim().parse::<usize>() {
            Ok(n) => {
                cfg.limits.max_payload = n;
                cfg.limits.max_frame = cfg.limits.max_frame.max(n);
            }
            Err(_) => problems.push(format!(
                "SOCKET_MAX_PAYLOAD_BYTES=`{v}` is not a number of bytes (limits.max_payload)"
            )),
        }
    }
    if let Some(v) = var("PRESENCE_TTL_SECONDS") {
        match v.trim().parse::<u64>() {
            Ok(n) => cfg.hub.presence_ttl = Duration::from_secs(n),
            Err(_) => problems.push(format!(
                "PRESENCE_TTL_SECONDS=`{v}` is not a number of seconds (hub.presence_ttl)"
            )),
        }
    }
    if let Some(v) = var("SWITCHBOARD_MEMBERSHIP") {
        match v.as_str() {
            "open" => cfg.hub.membership = Membership::Open,
            "claims" => cfg.hub.membership = Membership::Claims,
            _ => problems.push(format!(
                "SWITCHBOARD_MEMBERSHIP=`{v}` must be open or claims (hub.membership)"
            )),
        }
    }
    for (i, l) in cfg.listeners.iter_mut().enumerate() {
        let Some(name) = &l.port_env else { continue };
        let Some(v) = var(name) else { continue };
        match v.trim().parse::<u16>() {
            Ok(p) => l.port = p,
            Err(_) => problems.push(format!("{name}=`{v}` is not a port (listener[{i}].port)")),
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(vars: &[(&str, &str)]) -> (Config, Vec<String>) {
        let mut cfg: Config = toml::from_str(super::super::DEFAULT_TOML).expect("default");
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let p = apply_env(&mut cfg, &|k| map.get(k).cloned());
        (cfg, p)
    }

    #[test]
    fn the_specs_variables_override_the_file() {
        let (cfg, p) = with(&[
            ("PORT", "4000"),
            ("WS_PORT", "4001"),
            ("JWT_SECRET", "s3"),
            ("SOCKET_MAX_PAYLOAD_BYTES", "100"),
            ("PRESENCE_TTL_SECONDS", "90"),
        ]);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(cfg.listeners[0].port, 4000);
        assert_eq!(cfg.listeners[1].port, 4001);
        assert_eq!(cfg.listeners[2].port, 3002);
        assert_eq!(cfg.auth.secret, "s3");
        assert_eq!(cfg.limits.max_payload, 100);
        assert_eq!(cfg.hub.presence_ttl, Duration::from_secs(90));
    }

    #[test]
    fn auth_jwt_secret_wins_over_jwt_secret() {
        let (cfg, _) = with(&[("JWT_SECRET", "b"), ("AUTH_JWT_SECRET", "a")]);
        assert_eq!(cfg.auth.secret, "a");
    }

    #[test]
    fn every_bad_variable_is_reported() {
        let (_, p) = with(&[
            ("PORT", "http"),
            ("SOCKET_MAX_PAYLOAD_BYTES", "5k"),
            ("SWITCHBOARD_MEMBERSHIP", "closed"),
        ]);
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("SOCKET_MAX_PAYLOAD_BYTES"));
    }
}
