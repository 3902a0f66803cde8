//! Where a disconnected Socket.IO session waits to be recovered, for
//! `recovery.max_disconnection`: in process with the local bus (at most
//! `recovery.sessions`, the oldest forgotten first), in Redis with the Redis bus, so
//! that the client may come back to any instance (`switchboard:recovery:{pid}`, JSON,
//! TTL `max_disconnection`, taken with `GETDEL`: one recovery per session).

use crate::bus::{Offset, RoomKey};
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A disconnected session, as saved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Saved {
    /// Its private id (the client's `auth.pid`).
    pub pid: String,
    /// Its socket id, given back.
    pub sid: String,
    /// Its user: a client coming back must be them.
    pub user: String,
    /// The dialect of its route.
    pub dialect: String,
    /// The conversation rooms it was in (the personal room is rejoined anyway).
    pub rooms: Vec<RoomKey>,
    /// The history offsets last queued to it, in order (what the client's offset is
    /// found among).
    pub delivered: Vec<u64>,
    /// The history's head when it left (where a client that received nothing resumes).
    pub head: Option<Offset>,
    /// The instance it was on and its connection id there (what its own sends were
    /// addressed as).
    pub instance: String,
    /// Its connection id there.
    pub conn: u64,
}

/// Why a session could not be saved or read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("recovery sessions unavailable: {0}")]
pub struct SessionsError(pub String);

/// The sessions store.
pub enum Sessions {
    /// In process: saved sessions by pid, with when each expires, oldest first.
    Local(Mutex<LocalSessions>),
    /// In Redis.
    Redis(ConnectionManager),
}

/// The in-process sessions.
pub struct LocalSessions {
    /// By pid: the save's number, when it expires, the session.
    by_pid: HashMap<String, (u64, Instant, Saved)>,
    /// Saves in order: number and pid (a pid taken or saved again is skipped).
    order: VecDeque<(u64, String)>,
    saves: u64,
    max: usize,
}

fn key(pid: &str) -> String {
    format!("switchboard:recovery:{pid}")
}

impl Sessions {
    /// In process, at most `max`.
    pub fn local(max: usize) -> Sessions {
        Sessions::Local(Mutex::new(LocalSessions {
            by_pid: HashMap::new(),
            order: VecDeque::new(),
            saves: 0,
            max: max.max(1),
        }))
    }

    /// Saves a session for `ttl`.
    ///
    /// # Errors
    /// Redis is unreachable (the client will then start afresh).
    pub async fn save(&self, s: &Saved, ttl: Duration) -> Result<(), SessionsError> {
        match self {
            Sessions::Local(m) => {
                let mut g = m.lock().unwrap_or_else(|p| p.into_inner());
                let g = &mut *g;
                let now = Instant::now();
                // The oldest saves go while they are stale (taken, saved again,
                // expired) or the store is full.
                while let Some((n, pid)) = g.order.front() {
                    let current = g.by_pid.get(pid).filter(|(m, _, _)| m == n);
                    let go = match current {
                        None => true,
                        Some((_, until, _)) => *until <= now || g.by_pid.len() >= g.max,
                    };
                    if !go {
                        break;
                    }
                    if current.is_some() {
                        g.by_pid.remove(pid);
                    }
                    g.order.pop_front();
                }
                g.saves += 1;
                g.order.push_back((g.saves, s.pid.clone()));
                g.by_pid
                    .insert(s.pid.clone(), (g.saves, now + ttl, s.clone()));
                Ok(())
            }
            Sessions::Redis(conn) => {
                let json = serde_json::to_string(s).map_err(|e| SessionsError(e.to_string()))?;
                let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
                let mut conn = conn.clone();
                redis::cmd("SET")
                    .arg(key(&s.pid))
                    .arg(json)
                    .arg("PX")
                    .arg(ms)
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(|e| SessionsError(e.to_string()))
            }
        }
    }

    /// Saves several sessions (in one round trip to Redis).
    ///
    /// # Errors
    /// Redis is unreachable.
    pub async fn save_many(&self, all: &[Saved], ttl: Duration) -> Result<(), SessionsError> {
        match self {
            Sessions::Local(_) => {
                for s in all {
                    self.save(s, ttl).await?;
                }
                Ok(())
            }
            Sessions::Redis(conn) => {
                let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
                let mut pipe = redis::pipe();
                for s in all {
                    let json =
                        serde_json::to_string(s).map_err(|e| SessionsError(e.to_string()))?;
                    pipe.cmd("SET")
                        .arg(key(&s.pid))
                        .arg(json)
                        .arg("PX")
                        .arg(ms)
                        .ignore();
                }
                let mut conn = conn.clone();
                pipe.query_async::<()>(&mut conn)
                    .await
                    .map_err(|e| SessionsError(e.to_string()))
            }
        }
    }

    /// Deletes the session `pid` (its client said goodbye).
    ///
    /// # Errors
    /// Redis is unreachable.
    pub async fn remove(&self, pid: &str) -> Result<(), SessionsError> {
        match self {
            Sessions::Local(m) => {
                m.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .by_pid
                    .remove(pid);
                Ok(())
            }
            Sessions::Redis(conn) => {
                let mut conn = conn.clone();
                redis::cmd("DEL")
                    .arg(key(pid))
                    .query_async::<()>(&mut conn)
                    .await
                    .map_err(|e| SessionsError(e.to_string()))
            }
        }
    }

    /// Takes the session `pid` (a second take finds nothing).
    ///
    /// # Errors
    /// Redis is unreachable.
    pub async fn take(&self, pid: &str) -> Result<Option<Saved>, SessionsError> {
        match self {
            Sessions::Local(m) => {
                let mut g = m.lock().unwrap_or_else(|p| p.into_inner());
                Ok(g.by_pid
                    .remove(pid)
                    .filter(|(_, until, _)| *until > Instant::now())
                    .map(|(_, _, s)| s))
            }
            Sessions::Redis(conn) => {
                let mut conn = conn.clone();
                let json: Option<String> = redis::cmd("GETDEL")
                    .arg(key(pid))
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| SessionsError(e.to_string()))?;
                Ok(json.and_then(|j| {
                    serde_json::from_str(&j)
                        .map_err(|e| tracing::warn!(pid, "a saved session does not read: {e}"))
                        .ok()
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(pid: &str) -> Saved {
        Saved {
            pid: pid.into(),
            sid: "s".into(),
            user: "u".into(),
            dialect: "salala".into(),
            rooms: vec![RoomKey::conversation("r")],
            delivered: vec![1, 2],
            head: None,
            instance: "i".into(),
            conn: 1,
        }
    }

    #[tokio::test]
    async fn a_session_is_taken_once_and_the_oldest_forgotten_over_the_bound() {
        let s = Sessions::local(2);
        let ttl = Duration::from_secs(60);
        for pid in ["a", "b", "c"] {
            s.save(&saved(pid), ttl).await.expect("saved");
        }
        assert_eq!(s.take("a").await.expect("read"), None, "forgotten");
        assert_eq!(s.take("b").await.expect("read"), Some(saved("b")));
        assert_eq!(s.take("b").await.expect("read"), None, "taken once");
        s.save(&saved("d"), Duration::from_millis(1))
            .await
            .expect("saved");
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(s.take("d").await.expect("read"), None, "expired");
    }
}
