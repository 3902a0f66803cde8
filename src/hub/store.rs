//! The hub's shared state: presence per user across devices, the call busy flags,
//! the de-duplication window and the recent-message index. This is the in-process
//! store; every map is bounded, and what happens at the bound is written beside it.
//! (Issue 4 moves this state to Redis under the specs' own keys.)

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One connection of a user, for presence snapshots (`presence:update`'s `sockets[]`).
#[derive(Debug, Clone, PartialEq)]
pub struct SocketPresence {
    /// The connection's client-visible id.
    pub socket_id: String,
    /// When it connected, Unix ms.
    pub connected_at: i64,
    /// Last activity, Unix ms.
    pub last_seen: i64,
    /// Its `User-Agent`.
    pub user_agent: Option<String>,
    /// Its peer address.
    pub ip: Option<String>,
    /// When its instance last vouched for it; it expires `presence_ttl` later.
    pub refreshed: Instant,
}

/// A user's presence after a change.
#[derive(Debug, Clone, PartialEq)]
pub struct PresenceChange {
    /// The user's first connection came (`Some(true)`), the last went (`Some(false)`),
    /// or neither.
    pub transition: Option<bool>,
    /// The user's connections after the change.
    pub sockets: Vec<SocketPresence>,
}

/// What the index remembers of a message.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageInfo {
    /// Its conversation.
    pub conversation_id: String,
    /// Its author.
    pub sender_id: String,
}

struct Indexed {
    info: MessageInfo,
    reactions: HashMap<String, Vec<String>>,
    expires: Instant,
}

/// Whether a clientRef was seen before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First time: go on.
    New,
    /// Seen within the window: the message id it got then.
    Seen(String),
}

/// Bounds of the in-process store.
#[derive(Debug, Clone)]
pub struct StoreLimits {
    /// De-duplication window.
    pub dedup_window: Duration,
    /// How long a message is remembered.
    pub message_ttl: Duration,
    /// Messages remembered at most (and de-duplication keys at most).
    pub max_entries: usize,
}

/// The in-process store.
pub struct LocalStore {
    limits: StoreLimits,
    presence: Mutex<HashMap<String, Vec<SocketPresence>>>,
    busy: Mutex<HashMap<String, Instant>>,
    dedup: Mutex<HashMap<(String, String), (String, Instant)>>,
    messages: Mutex<HashMap<String, Indexed>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Drops expired entries; if the map is still at its bound, drops the entries closest
/// to expiry until a tenth of the bound is free. (Overflow: the oldest state is lost
/// first: a very old message can no longer be edited, a very old clientRef is accepted
/// again.)
fn make_room<K: Clone + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, V>,
    max: usize,
    expiry: impl Fn(&V) -> Instant,
) {
    if map.len() < max {
        return;
    }
    let now = Instant::now();
    map.retain(|_, v| expiry(v) > now);
    if map.len() < max {
        return;
    }
    let mut by_age: Vec<(Instant, K)> = map.iter().map(|(k, v)| (expiry(v), k.clone())).collect();
    by_age.sort_by_key(|(t, _)| *t);
    let drop = map.len() + 1 - max + max / 10;
    for (_, k) in by_age.into_iter().take(drop) {
        map.remove(&k);
    }
}

impl LocalStore {
    /// An empty store.
    pub fn new(limits: StoreLimits) -> LocalStore {
        LocalStore {
            limits,
            presence: Mutex::new(HashMap::new()),
            busy: Mutex::new(HashMap::new()),
            dedup: Mutex::new(HashMap::new()),
            messages: Mutex::new(HashMap::new()),
        }
    }

    /// Adds a connection of `user`.
    pub async fn presence_add(&self, user: &str, socket: SocketPresence) -> PresenceChange {
        let mut map = lock(&self.presence);
        let sockets = map.entry(user.to_string()).or_default();
        let first = sockets.is_empty();
        sockets.retain(|s| s.socket_id != socket.socket_id);
        sockets.push(socket);
        PresenceChange {
            transition: first.then_some(true),
            sockets: sockets.clone(),
        }
    }

    /// Removes a connection of `user`.
    pub async fn presence_remove(&self, user: &str, socket_id: &str) -> PresenceChange {
        let mut map = lock(&self.presence);
        let Some(sockets) = map.get_mut(user) else {
            return PresenceChange {
                transition: None,
                sockets: Vec::new(),
            };
        };
        let before = sockets.len();
        sockets.retain(|s| s.socket_id != socket_id);
        let last = before > 0 && sockets.is_empty();
        let snapshot = sockets.clone();
        if sockets.is_empty() {
            map.remove(user);
        }
        PresenceChange {
            transition: last.then_some(false),
            sockets: snapshot,
        }
    }

    /// Records activity on a connection; returns the user's connections.
    pub async fn presence_touch(
        &self,
        user: &str,
        socket_id: &str,
        now: i64,
    ) -> Vec<SocketPresence> {
        let mut map = lock(&self.presence);
        let Some(sockets) = map.get_mut(user) else {
            return Vec::new();
        };
        for s in sockets.iter_mut().filter(|s| s.socket_id == socket_id) {
            s.last_seen = now;
        }
        sockets.clone()
    }

    /// Renews the presence of connections that are still open (called for every local
    /// connection by the hub's keeper, every third of the TTL).
    pub async fn presence_refresh(&self, user: &str, socket_id: &str) {
        let mut map = lock(&self.presence);
        if let Some(sockets) = map.get_mut(user) {
            let now = Instant::now();
            for s in sockets.iter_mut().filter(|s| s.socket_id == socket_id) {
                s.refreshed = now;
            }
        }
    }

    /// Drops connections nobody vouched for within `ttl` (their instance died); returns
    /// the users who went offline by it.
    pub async fn presence_expire(&self, ttl: Duration) -> Vec<(String, PresenceChange)> {
        let mut map = lock(&self.presence);
        let Some(cutoff) = Instant::now().checked_sub(ttl) else {
            return Vec::new();
        };
        let mut gone = Vec::new();
        map.retain(|user, sockets| {
            sockets.retain(|s| s.refreshed >= cutoff);
            if sockets.is_empty() {
                gone.push((
                    user.clone(),
                    PresenceChange {
                        transition: Some(false),
                        sockets: Vec::new(),
                    },
                ));
            }
            !sockets.is_empty()
        });
        gone
    }

    /// Whether `user` has a connection.
    pub async fn is_online(&self, user: &str) -> bool {
        lock(&self.presence).contains_key(user)
    }

    /// Whether `user` is in a call.
    pub async fn is_busy(&self, user: &str) -> bool {
        let mut map = lock(&self.busy);
        match map.get(user) {
            Some(t) if *t > Instant::now() => true,
            Some(_) => {
                map.remove(user);
                false
            }
            None => false,
        }
    }

    /// Marks `user` busy for `ttl`. (Bounded by the number of users with a call: one
    /// entry each; expired entries are dropped when the map grows past its bound.)
    pub async fn set_busy(&self, user: &str, ttl: Duration) {
        let mut map = lock(&self.busy);
        make_room(&mut map, self.limits.max_entries, |t| *t);
        map.insert(user.to_string(), Instant::now() + ttl);
    }

    /// Clears `user`'s busy flag.
    pub async fn clear_busy(&self, user: &str) {
        lock(&self.busy).remove(user);
    }

    /// Claims `client_ref` for `user` with `message_id`, unless claimed within the window.
    pub async fn claim(&self, user: &str, client_ref: &str, message_id: &str) -> Claim {
        let mut map = lock(&self.dedup);
        let key = (user.to_string(), client_ref.to_string());
        let now = Instant::now();
        if let Some((id, exp)) = map.get(&key)
            && *exp > now
        {
            return Claim::Seen(id.clone());
        }
        make_room(&mut map, self.limits.max_entries, |(_, t)| *t);
        map.insert(
            key,
            (message_id.to_string(), now + self.limits.dedup_window),
        );
        Claim::New
    }

    /// Remembers a message for later edits, deletes, reactions and receipts.
    pub async fn index_message(&self, message_id: &str, info: MessageInfo) {
        let mut map = lock(&self.messages);
        make_room(&mut map, self.limits.max_entries, |e| e.expires);
        map.insert(
            message_id.to_string(),
            Indexed {
                info,
                reactions: HashMap::new(),
                expires: Instant::now() + self.limits.message_ttl,
            },
        );
    }

    /// What is remembered of a message.
    pub async fn message(&self, message_id: &str) -> Option<MessageInfo> {
        let map = lock(&self.messages);
        map.get(message_id)
            .filter(|e| e.expires > Instant::now())
            .map(|e| e.info.clone())
    }

    /// Forgets a deleted message.
    pub async fn forget_message(&self, message_id: &str) {
        lock(&self.messages).remove(message_id);
    }

    /// Adds (`add`) or removes `user`'s `emoji` on a message; the count after, or `None`
    /// when the message is unknown.
    pub async fn react(
        &self,
        message_id: &str,
        emoji: &str,
        user: &str,
        add: bool,
    ) -> Option<usize> {
        let mut map = lock(&self.messages);
        let e = map.get_mut(message_id)?;
        let users = e.reactions.entry(emoji.to_string()).or_default();
        users.retain(|u| u != user);
        if add {
            users.push(user.to_string());
        }
        Some(users.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(max: usize) -> LocalStore {
        LocalStore::new(StoreLimits {
            dedup_window: Duration::from_secs(300),
            message_ttl: Duration::from_secs(60),
            max_entries: max,
        })
    }

    fn sock(id: &str) -> SocketPresence {
        SocketPresence {
            socket_id: id.into(),
            connected_at: 1,
            last_seen: 1,
            user_agent: None,
            ip: None,
            refreshed: Instant::now(),
        }
    }

    #[tokio::test]
    async fn presence_is_online_at_the_first_device_and_offline_after_the_last() {
        let s = store(10);
        assert_eq!(s.presence_add("u", sock("a")).await.transition, Some(true));
        assert_eq!(s.presence_add("u", sock("b")).await.transition, None);
        assert_eq!(s.presence_remove("u", "a").await.transition, None);
        let last = s.presence_remove("u", "b").await;
        assert_eq!(last.transition, Some(false));
        assert!(!s.is_online("u").await);
    }

    #[tokio::test]
    async fn presence_expires_unless_refreshed() {
        let s = store(10);
        s.presence_add("kept", sock("a")).await;
        s.presence_add("lost", sock("b")).await;
        tokio::time::sleep(Duration::from_millis(60)).await;
        s.presence_refresh("kept", "a").await;
        let gone = s.presence_expire(Duration::from_millis(40)).await;
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].0, "lost");
        assert!(s.is_online("kept").await);
        assert!(!s.is_online("lost").await);
    }

    #[tokio::test]
    async fn a_client_ref_is_claimed_once_per_user() {
        let s = store(10);
        assert_eq!(s.claim("u", "t1", "m1").await, Claim::New);
        assert_eq!(s.claim("u", "t1", "m2").await, Claim::Seen("m1".into()));
        assert_eq!(s.claim("v", "t1", "m3").await, Claim::New);
    }

    #[tokio::test]
    async fn the_message_index_stays_within_its_bound() {
        let s = store(100);
        for i in 0..1000 {
            let info = MessageInfo {
                conversation_id: "c".into(),
                sender_id: "u".into(),
            };
            s.index_message(&format!("m{i}"), info).await;
        }
        assert!(lock(&s.messages).len() <= 100);
        assert!(s.message("m999").await.is_some());
    }

    #[tokio::test]
    async fn busy_flags_expire() {
        let s = store(10);
        s.set_busy("u", Duration::from_millis(30)).await;
        assert!(s.is_busy("u").await);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!s.is_busy("u").await);
    }

    #[tokio::test]
    async fn reactions_count_each_user_once() {
        let s = store(10);
        let info = MessageInfo {
            conversation_id: "c".into(),
            sender_id: "u".into(),
        };
        s.index_message("m", info).await;
        assert_eq!(s.react("m", "👍", "a", true).await, Some(1));
        assert_eq!(s.react("m", "👍", "a", true).await, Some(1));
        assert_eq!(s.react("m", "👍", "b", true).await, Some(2));
        assert_eq!(s.react("m", "👍", "a", false).await, Some(1));
        assert_eq!(s.react("x", "👍", "a", true).await, None);
    }
}
