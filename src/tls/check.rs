//! What `switchboard config check` (and the start) says of the configured TLS files:
//! errors for a file missing, unreadable or malformed, or a key that is not its
//! certificate's; warnings for a certificate that has expired or expires within
//! [`EXPIRY_WARNING`].

use super::{client, pem, server};
use crate::config::{ClientTls, Config};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A certificate expiring sooner than this is warned of.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);

/// What the TLS files of a configuration are like.
#[derive(Debug, Default)]
pub struct Report {
    /// Each a reason the server would not start.
    pub errors: Vec<String>,
    /// Each something to act on soon.
    pub warnings: Vec<String>,
}

/// Checks every TLS file `cfg` names, at `now`.
pub fn check(cfg: &Config, now: SystemTime) -> Report {
    let mut r = Report::default();
    for (i, l) in cfg.listeners.iter().enumerate() {
        let Some(t) = &l.tls else { continue };
        let key = format!("listener[{i}].tls");
        match server::server_config(t) {
            Ok(_) => {}
            Err(e) => r.errors.push(format!("{key}: {e}")),
        }
        expiry(&key, &t.cert, now, &mut r);
        if let Some(ca) = &t.client_ca {
            expiry(&key, ca, now, &mut r);
        }
    }
    let clients = cfg
        .upstreams
        .iter()
        .enumerate()
        .filter_map(|(i, u)| Some((format!("upstream[{i}].tls"), u.tls.as_ref()?)))
        .chain(
            cfg.webhook
                .iter()
                .enumerate()
                .filter_map(|(i, w)| Some((format!("webhook[{i}].tls"), w.tls.as_ref()?))),
        )
        .chain([
            ("redis.tls".to_string(), &cfg.redis.tls),
            ("amqp.tls".to_string(), &cfg.amqp.tls),
        ]);
    for (key, t) in clients {
        if *t == ClientTls::default() {
            continue;
        }
        if let Err(e) = client::config(Some(t), &key) {
            r.errors.push(format!("{key}: {e}"));
        }
        for f in [&t.ca, &t.cert].into_iter().flatten() {
            expiry(&key, f, now, &mut r);
        }
    }
    r
}

/// Warns of each certificate in `path` that expires within [`EXPIRY_WARNING`] of `now`
/// (a file that does not load is an error reported elsewhere).
fn expiry(key: &str, path: &str, now: SystemTime, r: &mut Report) {
    let Ok(certs) = pem::certificates(path) else {
        return;
    };
    let now_s = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let soon = now_s.saturating_add(i64::try_from(EXPIRY_WARNING.as_secs()).unwrap_or(0));
    for (n, der) in certs.iter().enumerate() {
        let Ok((_, cert)) = x509_parser::parse_x509_certificate(der.as_ref()) else {
            r.errors
                .push(format!("{key}: {path}: certificate {n} cannot be parsed"));
            continue;
        };
        let until = cert.validity().not_after;
        let subject = cert.subject().to_string();
        if until.timestamp() < now_s {
            r.warnings.push(format!(
                "{key}: {path}: the certificate `{subject}` EXPIRED on {until}"
            ));
        } else if until.timestamp() < soon {
            let days = (until.timestamp() - now_s) / 86_400;
            r.warnings.push(format!(
                "{key}: {path}: the certificate `{subject}` expires on {until}, in {days} days"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ListenerConfig, ListenerTls};

    fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p.to_string_lossy().into_owned()
    }

    /// A self-signed certificate for `localhost` valid until `not_after`, and its key.
    fn pair(not_after: (i32, u8, u8)) -> (String, String) {
        let mut p = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = p.self_signed(&key).expect("cert");
        (cert.pem(), key.serialize_pem())
    }

    fn listener(cert: String, key: String) -> Config {
        let mut cfg = Config::seed();
        cfg.listeners = vec![ListenerConfig {
            port: 0,
            port_env: None,
            api: true,
            tls: Some(ListenerTls {
                cert,
                key,
                client_ca: None,
                handshake_timeout: Duration::from_secs(10),
                reload_check: Duration::from_secs(5),
            }),
            routes: Vec::new(),
        }];
        cfg
    }

    #[test]
    fn expired_expiring_and_distant_certificates() {
        let dir = std::env::temp_dir().join(format!("sb-tls-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        // 2030-06-01 as `now`: one certificate ended in 2029, one ends within 14 days,
        // one in 2031.
        let now = UNIX_EPOCH + Duration::from_secs(1_906_502_400);
        for (until, expect) in [
            ((2029, 1, 1), Some("EXPIRED")),
            ((2030, 6, 10), Some("in 9 days")),
            ((2031, 1, 1), None),
        ] {
            let (c, k) = pair(until);
            let cfg = listener(write(&dir, "c.pem", &c), write(&dir, "k.pem", &k));
            let r = check(&cfg, now);
            assert!(r.errors.is_empty(), "{:?}", r.errors);
            match expect {
                Some(text) => assert!(
                    r.warnings.len() == 1 && r.warnings[0].contains(text),
                    "{until:?}: {:?}",
                    r.warnings
                ),
                None => assert!(r.warnings.is_empty(), "{:?}", r.warnings),
            }
        }
        // A key of another certificate, and a file that is not there.
        let (c, _) = pair((2031, 1, 1));
        let (_, k2) = pair((2031, 1, 1));
        let cfg = listener(write(&dir, "c.pem", &c), write(&dir, "k2.pem", &k2));
        let r = check(&cfg, now);
        assert!(r.errors[0].contains("does not match"), "{:?}", r.errors);
        let cfg = listener(
            dir.join("none.pem").to_string_lossy().into_owned(),
            write(&dir, "k2.pem", &k2),
        );
        let r = check(&cfg, now);
        assert!(r.errors[0].contains("none.pem"), "{:?}", r.errors);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
