//! Console logins: the password (the console's own, else the internal API's secret),
//! sessions held in memory as random tokens in an `HttpOnly`, `SameSite=Strict` cookie,
//! each with a CSRF token every state-changing request must echo in `X-Console-Csrf`.

use hyper::HeaderMap;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "sb_console";

/// How long a login lasts.
pub const TTL: Duration = Duration::from_secs(12 * 3600);

/// The most sessions held; past it, the oldest is forgotten (its console logs in again).
pub const MAX_SESSIONS: usize = 1_000;

/// A logged-in console.
#[derive(Debug, Clone)]
pub struct Session {
    /// The token state-changing requests echo.
    pub csrf: String,
    expires: Instant,
}

/// The sessions.
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, Session>>);

fn token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

impl Sessions {
    /// Whether `given` is the secret (a password, a CSRF token), compared in constant
    /// time; an empty secret never matches.
    pub fn same_secret(secret: &str, given: &str) -> bool {
        !secret.is_empty() && bool::from(secret.as_bytes().ct_eq(given.as_bytes()))
    }

    /// A new session: its token (the cookie's value) and itself.
    pub fn open(&self) -> (String, Session) {
        let now = Instant::now();
        let mut map = self.lock();
        map.retain(|_, s| s.expires > now);
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        let s = Session {
            csrf: token(),
            expires: now + TTL,
        };
        let t = token();
        map.insert(t.clone(), s.clone());
        (t, s)
    }

    /// The session a request's cookie names, if it is alive.
    pub fn of(&self, headers: &HeaderMap) -> Option<(String, Session)> {
        let t = cookie(headers, COOKIE)?;
        let map = self.lock();
        let s = map.get(&t).filter(|s| s.expires > Instant::now())?;
        Some((t, s.clone()))
    }

    /// Ends a session.
    pub fn close(&self, token: &str) {
        self.lock().remove(token);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A cookie's value.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The `Set-Cookie` value of a session (`Secure` over TLS).
pub fn set_cookie(token: &str, secure: bool) -> String {
    let max_age = TTL.as_secs();
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}")
}

/// The `Set-Cookie` value that ends a session in the browser.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_open_are_found_by_cookie_and_close() {
        let s = Sessions::default();
        let (t, sess) = s.open();
        let mut h = HeaderMap::new();
        h.insert(
            hyper::header::COOKIE,
            format!("other=1; {COOKIE}={t}").parse().expect("header"),
        );
        assert_eq!(s.of(&h).map(|(_, x)| x.csrf), Some(sess.csrf));
        s.close(&t);
        assert!(s.of(&h).is_none());
        assert!(!Sessions::same_secret("", ""));
        assert!(Sessions::same_secret("pw", "pw"));
        assert!(!Sessions::same_secret("pw", "px"));
    }

    #[test]
    fn bounded() {
        let s = Sessions::default();
        for _ in 0..(MAX_SESSIONS + 5) {
            s.open();
        }
        assert!(s.lock().len() <= MAX_SESSIONS);
    }
}
