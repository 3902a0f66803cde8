//! The in-process store (one instance). Every map is bounded, and what happens at the
//! bound is written beside it. Long for one idea: the store's interface implemented in
//! memory, each operation beside its test.

use super::claims::ExportClaims;
use super::sharded::{Sharded, make_room};
use super::{
    Claim, Dedupe, Expired, MessageInfo, PresenceChange, SocketPresence, StoreError, StoreLimits,
};
use std::collections::HashMap;
use std::time::{Duration, Instant};

struct Indexed {
    info: MessageInfo,
    reactions: HashMap<String, Vec<String>>,
    expires: Instant,
}

/// A connection's snapshot and when it was last vouched for.
type Vouched = (SocketPresence, Instant);

/// The in-process store.
pub struct LocalStore {
    limits: StoreLimits,
    presence: Sharded<String, Vec<Vouched>>,
    busy: Sharded<String, Instant>,
    /// Revocations (`user:<id>`, `jti:<id>`) until they expire; over the bound, those
    /// closest to expiry are forgotten first.
    revoked: Sharded<String, Instant>,
    /// When each user went offline (Unix ms), until it expires; over the bound, the
    /// oldest are forgotten first.
    last_seen: Sharded<String, (i64, Instant)>,
    dedup: Sharded<(String, String), (String, Instant)>,
    exports: ExportClaims,
    messages: Sharded<String, Indexed>,
    /// The rooms each user's connections joined, sorted: a sorted vector, not a hash set
    /// (most users are in a room or two; a set allocated ~120 bytes for the first).
    user_rooms: Sharded<String, Vec<String>>,
}

fn snapshot(v: &[Vouched]) -> Vec<SocketPresence> {
    v.iter().map(|(s, _)| s.clone()).collect()
}

impl LocalStore {
    /// An empty store.
    pub fn new(limits: StoreLimits) -> LocalStore {
        LocalStore {
            presence: Sharded::new(limits.max_entries),
            busy: Sharded::new(limits.max_entries),
            revoked: Sharded::new(limits.max_entries),
            last_seen: Sharded::new(limits.max_entries),
            dedup: Sharded::new(limits.max_entries),
            exports: ExportClaims::new(limits.export_claims),
            messages: Sharded::new(limits.max_entries),
            user_rooms: Sharded::new(limits.max_entries),
            limits,
        }
    }

    pub(super) async fn user_rooms_add(
        &self,
        user: &str,
        rooms: &[String],
    ) -> Result<(), StoreError> {
        let mut map = self.user_rooms.shard(user);
        let known = map.entry(user.to_string()).or_default();
        for room in rooms {
            if let Err(at) = known.binary_search(room) {
                if known.capacity() == 0 {
                    known.reserve_exact(1);
                }
                known.insert(at, room.clone());
            }
        }
        Ok(())
    }

    pub(super) async fn user_rooms_take(&self, user: &str) -> Result<Vec<String>, StoreError> {
        Ok(self.user_rooms.shard(user).remove(user).unwrap_or_default())
    }

    pub(super) async fn presence_add(
        &self,
        user: &str,
        socket: SocketPresence,
    ) -> Result<PresenceChange, StoreError> {
        let mut map = self.presence.shard(user);
        let sockets = map.entry(user.to_string()).or_default();
        let first = sockets.is_empty();
        sockets.retain(|(s, _)| s.socket_id != socket.socket_id);
        // Most users have one connection: room for one (a first push reserves four,
        // ~450 bytes per user), doubling from there.
        if sockets.capacity() == 0 {
            sockets.reserve_exact(1);
        }
        sockets.push((socket, Instant::now()));
        Ok(PresenceChange {
            transition: first.then_some(true),
            sockets: snapshot(sockets),
        })
    }

    pub(super) async fn presence_remove(
        &self,
        user: &str,
        socket_id: &str,
    ) -> Result<PresenceChange, StoreError> {
        let mut map = self.presence.shard(user);
        let Some(sockets) = map.get_mut(user) else {
            return Ok(PresenceChange {
                transition: None,
                sockets: Vec::new(),
            });
        };
        let before = sockets.len();
        sockets.retain(|(s, _)| &*s.socket_id != socket_id);
        let last = before > 0 && sockets.is_empty();
        let snap = snapshot(sockets);
        if sockets.is_empty() {
            map.remove(user);
        }
        Ok(PresenceChange {
            transition: last.then_some(false),
            sockets: snap,
        })
    }

    pub(super) async fn presence_refresh(
        &self,
        user: &str,
        socket: &SocketPresence,
    ) -> Result<(), StoreError> {
        let mut map = self.presence.shard(user);
        if let Some(sockets) = map.get_mut(user) {
            for (s, at) in sockets
                .iter_mut()
                .filter(|(s, _)| s.socket_id == socket.socket_id)
            {
                *s = socket.clone();
                *at = Instant::now();
            }
        }
        Ok(())
    }

    pub(super) async fn presence_sockets(
        &self,
        user: &str,
    ) -> Result<Vec<SocketPresence>, StoreError> {
        Ok(self
            .presence
            .shard(user)
            .get(user)
            .map(|v| snapshot(v))
            .unwrap_or_default())
    }

    pub(super) async fn presence_refresh_many(
        &self,
        conns: &[(&str, &SocketPresence)],
    ) -> Result<(), StoreError> {
        for (user, s) in conns {
            self.presence_refresh(user, s).await?;
        }
        Ok(())
    }

    pub(super) async fn presence_expire(&self) -> Result<Vec<Expired>, StoreError> {
        let Some(cutoff) = Instant::now().checked_sub(self.limits.presence_ttl) else {
            return Ok(Vec::new());
        };
        let mut gone = Vec::new();
        for mut map in self.presence.each() {
            map.retain(|user, sockets| {
                sockets.retain(|(_, at)| *at >= cutoff);
                if sockets.is_empty() {
                    gone.push(user.clone());
                }
                !sockets.is_empty()
            });
        }
        Ok(gone
            .into_iter()
            .map(|user| Expired {
                rooms: self
                    .user_rooms
                    .shard(&user)
                    .remove(&user)
                    .unwrap_or_default(),
                user,
            })
            .collect())
    }

    pub(super) async fn is_online(&self, user: &str) -> Result<bool, StoreError> {
        Ok(self.presence.shard(user).contains_key(user))
    }

    pub(super) async fn is_busy(&self, user: &str) -> Result<bool, StoreError> {
        let mut map = self.busy.shard(user);
        Ok(match map.get(user) {
            Some(t) if *t > Instant::now() => true,
            Some(_) => {
                map.remove(user);
                false
            }
            None => false,
        })
    }

    pub(super) async fn set_busy(&self, user: &str, ttl: Duration) -> Result<(), StoreError> {
        let mut map = self.busy.shard(user);
        make_room(&mut map, self.busy.bound(), |t| *t);
        map.insert(user.to_string(), Instant::now() + ttl);
        Ok(())
    }

    pub(super) async fn clear_busy(&self, user: &str) -> Result<(), StoreError> {
        self.busy.shard(user).remove(user);
        Ok(())
    }

    pub(super) async fn set_last_seen(&self, user: &str, at: i64) -> Result<(), StoreError> {
        let mut map = self.last_seen.shard(user);
        make_room(&mut map, self.last_seen.bound(), |(_, until)| *until);
        map.insert(
            user.to_string(),
            (at, Instant::now() + super::LAST_SEEN_TTL),
        );
        Ok(())
    }

    pub(super) async fn last_seen(&self, user: &str) -> Result<Option<i64>, StoreError> {
        let now = Instant::now();
        Ok(self
            .last_seen
            .shard(user)
            .get(user)
            .filter(|(_, until)| *until > now)
            .map(|(at, _)| *at))
    }

    pub(super) async fn revoke(
        &self,
        kind: &str,
        id: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let key = format!("{kind}:{id}");
        let mut map = self.revoked.shard(&key);
        make_room(&mut map, self.revoked.bound(), |t| *t);
        map.insert(key, Instant::now() + ttl);
        Ok(())
    }

    pub(super) async fn is_revoked(
        &self,
        user: &str,
        jti: Option<&str>,
    ) -> Result<bool, StoreError> {
        let now = Instant::now();
        let live = |key: String| {
            self.revoked
                .shard(&key)
                .get(&key)
                .is_some_and(|until| *until > now)
        };
        Ok(live(format!("user:{user}")) || jti.is_some_and(|j| live(format!("jti:{j}"))))
    }

    pub(super) async fn claim(
        &self,
        user: &str,
        client_ref: &str,
        message_id: &str,
        by: Dedupe,
    ) -> Result<Claim, StoreError> {
        let key = (user.to_string(), client_ref.to_string());
        let mut map = self.dedup.shard(&key);
        let now = Instant::now();
        if let Some((id, exp)) = map.get(&key)
            && *exp > now
        {
            return Ok(Claim::Seen(id.clone()));
        }
        make_room(&mut map, self.dedup.bound(), |(_, t)| *t);
        map.insert(key, (message_id.to_string(), now + self.limits.window(by)));
        Ok(Claim::New)
    }

    /// Over `export_claims`, the claims nearest their end are forgotten first (a copy
    /// arriving after its claim was forgotten is exported again, with the same id).
    pub(super) async fn claim_export(
        &self,
        identity: &str,
        window: Duration,
    ) -> Result<bool, StoreError> {
        Ok(self.exports.claim(identity, window))
    }

    pub(super) async fn index_message(
        &self,
        message_id: &str,
        info: MessageInfo,
    ) -> Result<(), StoreError> {
        let mut map = self.messages.shard(message_id);
        make_room(&mut map, self.messages.bound(), |e| e.expires);
        map.insert(
            message_id.to_string(),
            Indexed {
                info,
                reactions: HashMap::new(),
                expires: Instant::now() + self.limits.message_ttl,
            },
        );
        Ok(())
    }

    pub(super) async fn message(
        &self,
        message_id: &str,
    ) -> Result<Option<MessageInfo>, StoreError> {
        let map = self.messages.shard(message_id);
        Ok(map
            .get(message_id)
            .filter(|e| e.expires > Instant::now())
            .map(|e| e.info.clone()))
    }

    pub(super) async fn forget_message(&self, message_id: &str) -> Result<(), StoreError> {
        self.messages.shard(message_id).remove(message_id);
        Ok(())
    }

    pub(super) async fn react(
        &self,
        message_id: &str,
        emoji: &str,
        user: &str,
        add: bool,
    ) -> Result<Option<usize>, StoreError> {
        let mut map = self.messages.shard(message_id);
        let Some(e) = map.get_mut(message_id) else {
            return Ok(None);
        };
        let users = e.reactions.entry(emoji.to_string()).or_default();
        users.retain(|u| u != user);
        if add {
            users.push(user.to_string());
        }
        Ok(Some(users.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(max: usize, ttl_ms: u64) -> LocalStore {
        LocalStore::new(StoreLimits {
            dedup_window: Duration::from_secs(300),
            content_dedup_window: Duration::from_secs(5),
            export_claims: 1000,
            message_ttl: Duration::from_secs(60),
            max_entries: max,
            presence_ttl: Duration::from_millis(ttl_ms),
        })
    }

    fn sock(id: &str) -> SocketPresence {
        SocketPresence {
            socket_id: id.into(),
            connected_at: 1,
            last_seen: 1,
            ..SocketPresence::default()
        }
    }

    #[tokio::test]
    async fn presence_is_online_at_the_first_device_and_offline_after_the_last() {
        let s = store(10, 60_000);
        assert_eq!(
            s.presence_add("u", sock("a")).await.expect("ok").transition,
            Some(true)
        );
        assert_eq!(
            s.presence_add("u", sock("b")).await.expect("ok").transition,
            None
        );
        assert_eq!(
            s.presence_remove("u", "a").await.expect("ok").transition,
            None
        );
        let last = s.presence_remove("u", "b").await.expect("ok");
        assert_eq!(last.transition, Some(false));
        assert!(!s.is_online("u").await.expect("ok"));
    }

    #[tokio::test]
    async fn a_users_rooms_are_kept_once_each_until_taken() {
        let s = store(10, 60_000);
        let rooms = |r: &[&str]| r.iter().map(|r| r.to_string()).collect::<Vec<_>>();
        s.user_rooms_add("u", &rooms(&["b", "a"]))
            .await
            .expect("ok");
        s.user_rooms_add("u", &rooms(&["a", "c"]))
            .await
            .expect("ok");
        s.user_rooms_add("v", &rooms(&["z"])).await.expect("ok");
        assert_eq!(s.user_rooms_take("u").await.expect("ok"), ["a", "b", "c"]);
        assert!(s.user_rooms_take("u").await.expect("ok").is_empty());
        assert_eq!(s.user_rooms_take("v").await.expect("ok"), ["z"]);
    }

    #[tokio::test]
    async fn presence_expires_unless_refreshed() {
        let s = store(10, 40);
        s.presence_add("kept", sock("a")).await.expect("ok");
        s.presence_add("lost", sock("b")).await.expect("ok");
        s.user_rooms_add("lost", &["r1".to_string()])
            .await
            .expect("ok");
        tokio::time::sleep(Duration::from_millis(60)).await;
        s.presence_refresh("kept", &sock("a")).await.expect("ok");
        assert_eq!(
            s.presence_expire().await.expect("ok"),
            [Expired {
                user: "lost".into(),
                rooms: vec!["r1".into()]
            }]
        );
        assert!(s.is_online("kept").await.expect("ok"));
        assert!(!s.is_online("lost").await.expect("ok"));
    }

    #[tokio::test]
    async fn a_client_ref_is_claimed_once_per_user() {
        let s = store(10, 60_000);
        assert_eq!(
            s.claim("u", "t1", "m1", Dedupe::Ref).await.expect("ok"),
            Claim::New
        );
        assert_eq!(
            s.claim("u", "t1", "m2", Dedupe::Ref).await.expect("ok"),
            Claim::Seen("m1".into())
        );
        assert_eq!(
            s.claim("v", "t1", "m3", Dedupe::Ref).await.expect("ok"),
            Claim::New
        );
    }

    /// Indexes messages m0..m{count} in a store bounded to `max`; checks that the newest
    /// `newest` are all there and the first is gone; the entries kept.
    async fn index_many(max: usize, count: usize, newest: usize) -> usize {
        let s = store(max, 60_000);
        for i in 0..count {
            let info = MessageInfo {
                conversation_id: "c".into(),
                sender_id: "u".into(),
            };
            s.index_message(&format!("m{i}"), info).await.expect("ok");
        }
        for i in count - newest..count {
            assert!(
                s.message(&format!("m{i}")).await.expect("ok").is_some(),
                "m{i}"
            );
        }
        assert!(s.message("m0").await.expect("ok").is_none());
        s.messages.len()
    }

    #[tokio::test]
    async fn the_message_index_stays_within_its_bound() {
        // The oldest go first: the newest 80 of 1,000 are all there.
        assert!(index_many(100, 1000, 80).await <= 100);
    }

    #[tokio::test]
    async fn a_sharded_message_index_stays_within_its_bound_and_keeps_the_newest() {
        // 10,000 entries: 16 shards of 625, each pruned on its own. A shard keeps at least
        // its newest 90 % of 625: the newest 5,000 overall (~312 per shard) are all there.
        let kept = index_many(10_000, 50_000, 5_000).await;
        assert!((8_000..=10_000).contains(&kept), "{kept}");
    }

    #[tokio::test]
    async fn busy_flags_expire() {
        let s = store(10, 60_000);
        s.set_busy("u", Duration::from_millis(30))
            .await
            .expect("ok");
        assert!(s.is_busy("u").await.expect("ok"));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!s.is_busy("u").await.expect("ok"));
    }

    #[tokio::test]
    async fn reactions_count_each_user_once() {
        let s = store(10, 60_000);
        let info = MessageInfo {
            conversation_id: "c".into(),
            sender_id: "u".into(),
        };
        s.index_message("m", info).await.expect("ok");
        assert_eq!(s.react("m", "👍", "a", true).await.expect("ok"), Some(1));
        assert_eq!(s.react("m", "👍", "a", true).await.expect("ok"), Some(1));
        assert_eq!(s.react("m", "👍", "b", true).await.expect("ok"), Some(2));
        assert_eq!(s.react("m", "👍", "a", false).await.expect("ok"), Some(1));
        assert_eq!(s.react("x", "👍", "a", true).await.expect("ok"), None);
    }

    #[tokio::test]
    async fn an_export_is_claimed_once_per_window_and_claims_stay_bounded() {
        let s = store(10, 60_000);
        let long = Duration::from_secs(600);
        assert!(s.claim_export("a", long).await.expect("ok"));
        assert!(!s.claim_export("a", long).await.expect("ok"));
        assert!(s.claim_export("b", long).await.expect("ok"));
        let short = Duration::from_millis(20);
        assert!(s.claim_export("echo", short).await.expect("ok"));
        assert!(!s.claim_export("echo", short).await.expect("ok"));
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(
            s.claim_export("echo", short).await.expect("ok"),
            "a new fact after the window"
        );
        // Over `export_claims` (1000), the claims nearest their end are forgotten.
        for i in 0..5_000 {
            assert!(s.claim_export(&format!("m{i}"), long).await.expect("ok"));
        }
        let held = s.exports.len();
        assert!((800..=1_000).contains(&held), "{held}");
        // The newest are remembered, the oldest forgotten (then claimed again: a second
        // export, under the same webhook id).
        assert!(!s.claim_export("m4999", long).await.expect("ok"));
        assert!(s.claim_export("m0", long).await.expect("ok"));
    }
}
