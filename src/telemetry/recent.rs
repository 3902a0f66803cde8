//! The last webhook attempts of each endpoint (status, latency), for the console's
//! webhooks view: [`PER_ENDPOINT`] each, for at most [`ENDPOINTS`] endpoint names.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

/// Attempts kept per endpoint.
pub const PER_ENDPOINT: usize = 20;

/// Endpoints kept (past it, the map starts again).
pub const ENDPOINTS: usize = 256;

/// One attempt.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// When, Unix ms.
    pub at: i64,
    /// The webhook type.
    pub event: String,
    /// `delivered`, `gone`, `failed_status`, `failed_io`, `forbidden`.
    pub outcome: &'static str,
    /// The HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// How long it took, ms.
    pub latency_ms: f64,
}

/// The attempts.
#[derive(Default)]
pub struct RecentAttempts(Mutex<HashMap<String, VecDeque<Attempt>>>);

impl RecentAttempts {
    /// Records one.
    pub fn record(
        &self,
        endpoint: &str,
        event: &str,
        outcome: &'static str,
        status: Option<u16>,
        took: Duration,
    ) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= ENDPOINTS && !map.contains_key(endpoint) {
            map.clear();
        }
        let q = map.entry(endpoint.to_string()).or_default();
        if q.len() >= PER_ENDPOINT {
            q.pop_front();
        }
        q.push_back(Attempt {
            at: crate::event::now_millis(),
            event: event.to_string(),
            outcome,
            status,
            latency_ms: (took.as_secs_f64() * 1e5).round() / 100.0,
        });
    }

    /// An endpoint's attempts, newest first.
    pub fn of(&self, endpoint: &str) -> Vec<Attempt> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(endpoint)
            .map(|q| q.iter().rev().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_few_newest_first() {
        let r = RecentAttempts::default();
        for i in 0..(PER_ENDPOINT + 3) {
            r.record(
                "a",
                &format!("e{i}"),
                "delivered",
                Some(200),
                Duration::from_millis(3),
            );
        }
        let got = r.of("a");
        assert_eq!(got.len(), PER_ENDPOINT);
        assert_eq!(got[0].event, format!("e{}", PER_ENDPOINT + 2));
        assert_eq!(got[0].latency_ms, 3.0);
        assert!(r.of("b").is_empty());
    }
}
