//! Client acks waiting for the backend's answer: keyed by the Socket.IO ack id we gave
//! the backend, or, for a raw WebSocket backend (which has no acks), by the trace id of
//! the event, answered by the first backend event carrying it. Bounded; each waits at
//! most the upstream's `ack_timeout`.

use std::collections::VecDeque;
use std::sync::Arc;
use tokio::time::Instant;

pub use crate::hub::Reply;

/// What identifies the backend's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// Our Socket.IO ack id toward the backend.
    Ack(u64),
    /// The trace id of the event sent (raw WebSocket backends).
    Trace(String),
}

/// One client ack waiting.
pub struct Waiting {
    /// How the answer is recognised.
    pub key: Key,
    /// The intent that asked.
    pub intent: Arc<str>,
    /// Answers the client.
    pub reply: Reply,
    /// When the event went to the backend.
    pub since: Instant,
    deadline: Instant,
}

/// The waiting acks of one session, oldest first (deadlines are in the same order).
pub struct Pending {
    q: VecDeque<Waiting>,
    max: usize,
}

impl Pending {
    /// At most `max` acks waiting.
    pub fn new(max: usize) -> Pending {
        Pending {
            q: VecDeque::new(),
            max,
        }
    }

    /// Adds one, waiting until `deadline`.
    ///
    /// # Errors
    /// Full: the reply is handed back to be answered at once.
    pub fn add(
        &mut self,
        key: Key,
        intent: Arc<str>,
        reply: Reply,
        deadline: Instant,
    ) -> Result<(), Reply> {
        if self.q.len() >= self.max {
            return Err(reply);
        }
        self.q.push_back(Waiting {
            key,
            intent,
            reply,
            since: Instant::now(),
            deadline,
        });
        Ok(())
    }

    /// Takes the ack `key` answers.
    pub fn take(&mut self, key: &Key) -> Option<Waiting> {
        let i = self.q.iter().position(|w| &w.key == key)?;
        self.q.remove(i)
    }

    /// Takes every ack past its deadline.
    pub fn expired(&mut self, now: Instant) -> Vec<Waiting> {
        let mut out = Vec::new();
        while self.q.front().is_some_and(|w| w.deadline <= now) {
            out.extend(self.q.pop_front());
        }
        out
    }

    /// When the oldest ack expires.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.q.front().map(|w| w.deadline)
    }

    /// Takes them all (the session ends).
    pub fn drain(&mut self) -> Vec<Waiting> {
        self.q.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn noop() -> Reply {
        Box::new(|_| {})
    }

    #[test]
    fn bounded_taken_by_key_and_expired_in_order() {
        let now = Instant::now();
        let mut p = Pending::new(2);
        let i: Arc<str> = Arc::from("message.send");
        assert!(p.add(Key::Ack(1), i.clone(), noop(), now).is_ok());
        assert!(
            p.add(
                Key::Trace("t".into()),
                i.clone(),
                noop(),
                now + Duration::from_secs(5)
            )
            .is_ok()
        );
        assert!(p.add(Key::Ack(3), i, noop(), now).is_err(), "full");
        assert!(p.take(&Key::Trace("t".into())).is_some());
        assert!(p.take(&Key::Trace("t".into())).is_none());
        assert_eq!(p.expired(now).len(), 1);
        assert!(p.next_deadline().is_none());
    }
}
