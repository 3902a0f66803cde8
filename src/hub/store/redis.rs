//! The Redis store: every instance shares it. The specs' own keys where they name them
//! (`online_users`, `user_sockets:{id}` from Salala, `user:call:{id}` from NexusChat), and
//! everything with a TTL, so that an instance killed with SIGKILL leaves no user online
//! and no call busy once the TTL has passed:
//!
//! | key | type | TTL |
//! |---|---|---|
//! | `online_users` | set of user ids | members swept when their sockets are gone |
//! | `user_sockets:{id}` | set of socket ids | `presence_ttl`, renewed by the owning instance |
//! | `socket:{sid}` | JSON snapshot of one connection | `presence_ttl`, renewed |
//! | `presence:expiry` | sorted set: `["user","sid"]` by the time its instance last vouched + `presence_ttl` | members swept when due |
//! | `user_rooms:{id}` | set of the rooms the user's connections are in | 2 × `presence_ttl`, renewed (outlives the presence, so going offline reaches the rooms) |
//! | `user:call:{id}` | `"busy"` | `call_busy_ttl` (300 s) |
//! | `dedup:{user}:{clientRef}` | the first message id | `dedup_window` (5 min) |
//! | `message:{id}` | hash `{c: conversation, s: sender}` | `message_ttl` (24 h) |
//! | `message:{id}:reactions:{emoji}` | set of user ids | `message_ttl` |
//! | `export:{identity}` | `1`: a fronted fact's export claimed | `export_window` (`export_echo_window` for facts with no id or time) |

use super::claims::ExportClaims;
use super::{
    Claim, Dedupe, Expired, MessageInfo, PresenceChange, SocketPresence, StoreError, StoreLimits,
};
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use std::time::Duration;

/// The Redis store.
pub struct RedisStore {
    conn: ConnectionManager,
    limits: StoreLimits,
    /// This instance's copies of fronted facts: only the first asks Redis.
    exports: ExportClaims,
}

pub(super) fn err(e: redis::RedisError) -> StoreError {
    StoreError(e.to_string())
}

pub(super) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// The sorted set of every connection's expiry (Unix ms), for a sweep that costs what
/// expired, not what is online.
const EXPIRY: &str = "presence:expiry";

const ADD: &str = r"
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[6])
return redis.call('SADD', KEYS[3], ARGV[4])";

/// Removes a socket; if the user has none left, removes the user from `online_users`
/// and returns 1 (0: was not there; -1: other sockets remain).
const REMOVE: &str = r"
if ARGV[1] ~= '' then
  redis.call('SREM', KEYS[1], ARGV[1])
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[4], ARGV[3])
end
if redis.call('SCARD', KEYS[1]) == 0 then
  return redis.call('SREM', KEYS[3], ARGV[2])
end
return -1";

/// Pops up to ARGV[2] connections due by ARGV[1] (Unix ms) from `presence:expiry`; for
/// each user left with none, takes the user offline and returns `[user, rooms…]`. Atomic,
/// so two instances sweeping at once never announce one user twice. (The state lives on
/// one standalone Redis: the keys it derives are not declared.)
const SWEEP: &str = r"
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local gone = {}
for _, m in ipairs(due) do
  redis.call('ZREM', KEYS[1], m)
  local e = cjson.decode(m)
  local u, sid = e[1], e[2]
  local sockets = 'user_sockets:' .. u
  redis.call('SREM', sockets, sid)
  redis.call('DEL', 'socket:' .. sid)
  if redis.call('SCARD', sockets) == 0 and redis.call('SREM', KEYS[2], u) == 1 then
    local rooms = redis.call('SMEMBERS', 'user_rooms:' .. u)
    redis.call('DEL', 'user_rooms:' .. u)
    table.insert(rooms, 1, u)
    table.insert(gone, rooms)
  end
end
return {#due, gone}";

/// Connections swept per script call (the sweep calls again while it finds this many).
const SWEEP_BATCH: usize = 256;

/// Connections refreshed per pipeline.
const REFRESH_BATCH: usize = 500;

/// The `presence:expiry` member of one connection.
fn expiry_member(user: &str, socket_id: &str) -> String {
    serde_json::json!([user, socket_id]).to_string()
}

pub(super) fn now_ms() -> u64 {
    u64::try_from(crate::event::now_millis()).unwrap_or(0)
}

impl RedisStore {
    /// Its multiplexed connection.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// A store on a (multiplexed, reconnecting) connection.
    pub fn new(conn: ConnectionManager, limits: StoreLimits) -> RedisStore {
        RedisStore {
            conn,
            exports: ExportClaims::new(limits.export_claims),
            limits,
        }
    }

    pub(super) fn c(&self) -> ConnectionManager {
        self.conn.clone()
    }

    async fn snapshot(&self, user: &str) -> Result<Vec<SocketPresence>, StoreError> {
        let mut c = self.c();
        let ids: Vec<String> = c
            .smembers(format!("user_sockets:{user}"))
            .await
            .map_err(err)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|s| format!("socket:{s}")).collect();
        let raw: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut c)
            .await
            .map_err(err)?;
        let mut out: Vec<SocketPresence> = raw
            .into_iter()
            .flatten()
            .filter_map(|j| serde_json::from_str(&j).ok())
            .collect();
        out.sort_by(|a, b| {
            a.connected_at
                .cmp(&b.connected_at)
                .then(a.socket_id.cmp(&b.socket_id))
        });
        Ok(out)
    }

    pub(super) async fn presence_add(
        &self,
        user: &str,
        s: SocketPresence,
    ) -> Result<PresenceChange, StoreError> {
        let json = serde_json::to_string(&s).map_err(|e| StoreError(e.to_string()))?;
        let ttl = ms(self.limits.presence_ttl);
        let added: i64 = Script::new(ADD)
            .key(format!("user_sockets:{user}"))
            .key(format!("socket:{}", s.socket_id))
            .key("online_users")
            .key(EXPIRY)
            .arg(&*s.socket_id)
            .arg(json)
            .arg(ttl)
            .arg(user)
            .arg(now_ms() + ttl)
            .arg(expiry_member(user, &s.socket_id))
            .invoke_async(&mut self.c())
            .await
            .map_err(err)?;
        Ok(PresenceChange {
            transition: (added == 1).then_some(true),
            sockets: self.snapshot(user).await?,
        })
    }

    async fn remove(&self, user: &str, socket_id: &str) -> Result<i64, StoreError> {
        Script::new(REMOVE)
            .key(format!("user_sockets:{user}"))
            .key(format!("socket:{socket_id}"))
            .key("online_users")
            .key(EXPIRY)
            .arg(socket_id)
            .arg(user)
            .arg(expiry_member(user, socket_id))
            .invoke_async(&mut self.c())
            .await
            .map_err(err)
    }

    pub(super) async fn presence_remove(
        &self,
        user: &str,
        socket_id: &str,
    ) -> Result<PresenceChange, StoreError> {
        let r = self.remove(user, socket_id).await?;
        Ok(PresenceChange {
            transition: (r == 1).then_some(false),
            sockets: if r == -1 {
                self.snapshot(user).await?
            } else {
                Vec::new()
            },
        })
    }

    pub(super) async fn presence_refresh(
        &self,
        user: &str,
        s: &SocketPresence,
    ) -> Result<(), StoreError> {
        self.presence_refresh_many(&[(user, s)]).await
    }

    /// Vouches for many connections, a pipeline per [`REFRESH_BATCH`].
    pub(super) async fn presence_refresh_many(
        &self,
        conns: &[(&str, &SocketPresence)],
    ) -> Result<(), StoreError> {
        let ttl = ms(self.limits.presence_ttl);
        let rooms_ttl = ttl.saturating_mul(2);
        for chunk in conns.chunks(REFRESH_BATCH) {
            let due = now_ms() + ttl;
            let mut p = redis::pipe();
            for (user, s) in chunk {
                let json = serde_json::to_string(s).map_err(|e| StoreError(e.to_string()))?;
                let key = format!("user_sockets:{user}");
                p.sadd(&key, &*s.socket_id)
                    .ignore()
                    .pexpire(&key, ttl as i64)
                    .ignore()
                    .set_options(
                        format!("socket:{}", s.socket_id),
                        json,
                        redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(ttl)),
                    )
                    .ignore()
                    .zadd(EXPIRY, expiry_member(user, &s.socket_id), due)
                    .ignore()
                    .sadd("online_users", *user)
                    .ignore()
                    .pexpire(format!("user_rooms:{user}"), rooms_ttl as i64)
                    .ignore();
            }
            p.query_async::<()>(&mut self.c()).await.map_err(err)?;
        }
        Ok(())
    }

    pub(super) async fn presence_sockets(
        &self,
        user: &str,
    ) -> Result<Vec<SocketPresence>, StoreError> {
        self.snapshot(user).await
    }

    /// Expires the connections nobody vouched for: O(what expired), in atomic batches.
    pub(super) async fn presence_expire(&self) -> Result<Vec<Expired>, StoreError> {
        let mut gone = Vec::new();
        loop {
            let (popped, users): (usize, Vec<Vec<String>>) = Script::new(SWEEP)
                .key(EXPIRY)
                .key("online_users")
                .arg(now_ms())
                .arg(SWEEP_BATCH)
                .invoke_async(&mut self.c())
                .await
                .map_err(err)?;
            gone.extend(users.into_iter().filter_map(|mut v| {
                if v.is_empty() {
                    return None;
                }
                let user = v.remove(0);
                Some(Expired { user, rooms: v })
            }));
            if popped < SWEEP_BATCH {
                return Ok(gone);
            }
        }
    }

    /// Online is `user_sockets:{id}` existing (it expires with its TTL); `online_users` is
    /// the index the sweep keeps in step with it.
    pub(super) async fn user_rooms_add(
        &self,
        user: &str,
        rooms: &[String],
    ) -> Result<(), StoreError> {
        let key = format!("user_rooms:{user}");
        redis::pipe()
            .sadd(&key, rooms)
            .ignore()
            .pexpire(&key, ms(self.limits.presence_ttl).saturating_mul(2) as i64)
            .ignore()
            .query_async::<()>(&mut self.c())
            .await
            .map_err(err)
    }

    pub(super) async fn user_rooms_take(&self, user: &str) -> Result<Vec<String>, StoreError> {
        let key = format!("user_rooms:{user}");
        let (rooms,): (Vec<String>,) = redis::pipe()
            .atomic()
            .smembers(&key)
            .del(&key)
            .ignore()
            .query_async(&mut self.c())
            .await
            .map_err(err)?;
        Ok(rooms)
    }

    pub(super) async fn is_online(&self, user: &str) -> Result<bool, StoreError> {
        self.c()
            .exists(format!("user_sockets:{user}"))
            .await
            .map_err(err)
    }

    pub(super) async fn is_busy(&self, user: &str) -> Result<bool, StoreError> {
        self.c()
            .exists(format!("user:call:{user}"))
            .await
            .map_err(err)
    }

    pub(super) async fn set_busy(&self, user: &str, ttl: Duration) -> Result<(), StoreError> {
        self.c()
            .pset_ex(format!("user:call:{user}"), "busy", ms(ttl))
            .await
            .map_err(err)
    }

    pub(super) async fn clear_busy(&self, user: &str) -> Result<(), StoreError> {
        self.c().del(format!("user:call:{user}")).await.map_err(err)
    }

    pub(super) async fn claim(
        &self,
        user: &str,
        client_ref: &str,
        message_id: &str,
        by: Dedupe,
    ) -> Result<Claim, StoreError> {
        let key = format!("dedup:{user}:{client_ref}");
        let mut c = self.c();
        let set: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(message_id)
            .arg("NX")
            .arg("PX")
            .arg(ms(self.limits.window(by)))
            .query_async(&mut c)
            .await
            .map_err(err)?;
        if set.is_some() {
            return Ok(Claim::New);
        }
        let first: Option<String> = c.get(&key).await.map_err(err)?;
        Ok(first.map_or(Claim::New, Claim::Seen))
    }

    pub(super) async fn claim_export(
        &self,
        identity: &str,
        window: Duration,
    ) -> Result<bool, StoreError> {
        // Another copy on this instance asked already (and exported, or learnt that
        // another instance did).
        if !self.exports.claim(identity, window) {
            return Ok(false);
        }
        let set: Option<String> = redis::cmd("SET")
            .arg(format!("export:{identity}"))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ms(window))
            .query_async(&mut self.c())
            .await
            .map_err(err)?;
        Ok(set.is_some())
    }

    pub(super) async fn index_message(
        &self,
        message_id: &str,
        info: MessageInfo,
    ) -> Result<(), StoreError> {
        let key = format!("message:{message_id}");
        redis::pipe()
            .hset_multiple(
                &key,
                &[("c", &info.conversation_id), ("s", &info.sender_id)],
            )
            .ignore()
            .pexpire(&key, ms(self.limits.message_ttl) as i64)
            .ignore()
            .query_async::<()>(&mut self.c())
            .await
            .map_err(err)
    }

    pub(super) async fn message(
        &self,
        message_id: &str,
    ) -> Result<Option<MessageInfo>, StoreError> {
        let (c, s): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(format!("message:{message_id}"))
            .arg("c")
            .arg("s")
            .query_async(&mut self.c())
            .await
            .map_err(err)?;
        Ok(c.zip(s).map(|(conversation_id, sender_id)| MessageInfo {
            conversation_id,
            sender_id,
        }))
    }

    pub(super) async fn forget_message(&self, message_id: &str) -> Result<(), StoreError> {
        self.c()
            .del(format!("message:{message_id}"))
            .await
            .map_err(err)
    }

    pub(super) async fn react(
        &self,
        message_id: &str,
        emoji: &str,
        user: &str,
        add: bool,
    ) -> Result<Option<usize>, StoreError> {
        let mut c = self.c();
        let known: bool = c
            .exists(format!("message:{message_id}"))
            .await
            .map_err(err)?;
        if !known {
            return Ok(None);
        }
        let key = format!("message:{message_id}:reactions:{emoji}");
        let mut p = redis::pipe();
        if add {
            p.sadd(&key, user).ignore();
        } else {
            p.srem(&key, user).ignore();
        }
        let (n,): (usize,) = p
            .pexpire(&key, ms(self.limits.message_ttl) as i64)
            .ignore()
            .scard(&key)
            .query_async(&mut c)
            .await
            .map_err(err)?;
        Ok(Some(n))
    }
}
