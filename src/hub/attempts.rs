//! Refused connection attempts, counted per client address and dialect, for the
//! `reconnectAttempt` of a refusal (Clerk's `connection:error {error, reason,
//! reconnectAttempt}`): a client that says which attempt it is on (`reconnectAttempt` in
//! its Socket.IO `auth`) is believed; otherwise its refused attempts from the same
//! address within [`WINDOW`] are counted, this one included (the first refusal is attempt
//! 1, as the spec's example), and a connection that succeeds starts the count again.
//! Addresses are not kept: each is held as a keyed hash whose key lives in this process
//! only (`privacy.client_info` off keeps no address at all).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a refused attempt counts towards the next one's number.
pub const WINDOW: Duration = Duration::from_secs(300);

/// The most addresses remembered; past it, those whose window ended are forgotten, and
/// if that is not enough, all of them (counts start again at 1: never wrong by more than
/// what a client that reconnects would see after `WINDOW`).
pub const MAX_ADDRESSES: usize = 10_000;

/// A client address's keyed hash, and a dialect.
type Key = (u64, Box<str>);

/// The counts.
#[derive(Default)]
pub struct Attempts {
    counts: Mutex<HashMap<Key, (u64, Instant)>>,
    key: foldhash::quality::RandomState,
}

impl Attempts {
    /// Counts a refused attempt from `ip` in `dialect`; returns its number (from 1).
    pub fn refused(&self, ip: IpAddr, dialect: &str, now: Instant) -> u64 {
        let mut map = self.lock();
        if map.len() >= MAX_ADDRESSES {
            map.retain(|_, (_, at)| now.duration_since(*at) < WINDOW);
            if map.len() >= MAX_ADDRESSES {
                map.clear();
            }
        }
        let e = map
            .entry((self.hash(ip), dialect.into()))
            .or_insert((0, now));
        if now.duration_since(e.1) >= WINDOW {
            e.0 = 0;
        }
        e.0 += 1;
        e.1 = now;
        e.0
    }

    /// A connection from `ip` in `dialect` succeeded: its count starts again.
    pub fn succeeded(&self, ip: IpAddr, dialect: &str) {
        let mut map = self.lock();
        if !map.is_empty() {
            map.remove(&(self.hash(ip), Box::from(dialect)));
        }
    }

    fn hash(&self, ip: IpAddr) -> u64 {
        self.key.hash_one(ip)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, (u64, Instant)>> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The attempt a client says it is on: `reconnectAttempt` (or `attempt`) in its
/// Socket.IO `auth` object, a non-negative integer (socket.io-client's
/// `reconnect_attempt` event gives it: `socket.auth.reconnectAttempt = n`).
pub fn said(auth: Option<&serde_json::Value>) -> Option<u64> {
    let a = auth?;
    a.get("reconnectAttempt")
        .or_else(|| a.get("attempt"))
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_per_address_and_dialect_and_starts_again() {
        let a = Attempts::default();
        let ip: IpAddr = [10, 0, 0, 1].into();
        let t0 = Instant::now();
        assert_eq!(a.refused(ip, "clerk", t0), 1);
        assert_eq!(a.refused(ip, "clerk", t0), 2);
        assert_eq!(a.refused(ip, "nexus", t0), 1);
        assert_eq!(a.refused([10, 0, 0, 2].into(), "clerk", t0), 1);
        a.succeeded(ip, "clerk");
        assert_eq!(a.refused(ip, "clerk", t0), 1);
        assert_eq!(a.refused(ip, "clerk", t0 + WINDOW), 1, "a window later");
    }

    #[test]
    fn bounded() {
        let a = Attempts::default();
        let t0 = Instant::now();
        for i in 0..(MAX_ADDRESSES as u32 + 10) {
            a.refused(IpAddr::from(i.to_be_bytes()), "clerk", t0);
        }
        assert!(a.lock().len() <= MAX_ADDRESSES);
    }

    #[test]
    fn what_a_client_says() {
        assert_eq!(said(Some(&json!({"reconnectAttempt": 3}))), Some(3));
        assert_eq!(said(Some(&json!({"attempt": "2"}))), Some(2));
        assert_eq!(said(Some(&json!({"reconnectAttempt": -1}))), None);
        assert_eq!(said(Some(&json!({"token": "x"}))), None);
        assert_eq!(said(None), None);
    }
}
