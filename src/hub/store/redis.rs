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
//! | `user_rooms:{id}` | set of the rooms the user's connections are in | `presence_ttl`, renewed |
//! | `user:call:{id}` | `"busy"` | `call_busy_ttl` (300 s) |
//! | `dedup:{user}:{clientRef}` | the first message id | `dedup_window` (5 min) |
//! | `message:{id}` | hash `{c: conversation, s: sender}` | `message_ttl` (24 h) |
//! | `message:{id}:reactions:{emoji}` | set of user ids | `message_ttl` |

use super::{Claim, MessageInfo, PresenceChange, SocketPresence, StoreError, StoreLimits};
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, Script};
use std::time::Duration;

/// The Redis store.
pub struct RedisStore {
    conn: ConnectionManager,
    limits: StoreLimits,
}

fn err(e: redis::RedisError) -> StoreError {
    StoreError(e.to_string())
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

const ADD: &str = r"
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return redis.call('SADD', KEYS[3], ARGV[4])";

/// Removes a socket; if the user has none left, removes the user from `online_users`
/// and returns 1 (0: was not there; -1: other sockets remain).
const REMOVE: &str = r"
if ARGV[1] ~= '' then
  redis.call('SREM', KEYS[1], ARGV[1])
  redis.call('DEL', KEYS[2])
end
if redis.call('SCARD', KEYS[1]) == 0 then
  return redis.call('SREM', KEYS[3], ARGV[2])
end
return -1";

impl RedisStore {
    /// A store on a (multiplexed, reconnecting) connection.
    pub fn new(conn: ConnectionManager, limits: StoreLimits) -> RedisStore {
        RedisStore { conn, limits }
    }

    fn c(&self) -> ConnectionManager {
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
        let added: i64 = Script::new(ADD)
            .key(format!("user_sockets:{user}"))
            .key(format!("socket:{}", s.socket_id))
            .key("online_users")
            .arg(&*s.socket_id)
            .arg(json)
            .arg(ms(self.limits.presence_ttl))
            .arg(user)
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
            .arg(socket_id)
            .arg(user)
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
        let json = serde_json::to_string(s).map_err(|e| StoreError(e.to_string()))?;
        let ttl = ms(self.limits.presence_ttl);
        let key = format!("user_sockets:{user}");
        redis::pipe()
            .sadd(&key, &*s.socket_id)
            .ignore()
            .pexpire(&key, ttl as i64)
            .ignore()
            .set_options(
                format!("socket:{}", s.socket_id),
                json,
                redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(ttl)),
            )
            .ignore()
            .sadd("online_users", user)
            .ignore()
            .pexpire(format!("user_rooms:{user}"), ttl as i64)
            .ignore()
            .query_async::<()>(&mut self.c())
            .await
            .map_err(err)
    }

    pub(super) async fn presence_sockets(
        &self,
        user: &str,
    ) -> Result<Vec<SocketPresence>, StoreError> {
        self.snapshot(user).await
    }

    pub(super) async fn presence_expire(&self) -> Result<Vec<String>, StoreError> {
        let mut c = self.c();
        // One sweeper at a time across instances, for a short while (an instance with a
        // longer TTL must not keep the others from sweeping).
        let lock: Option<String> = redis::cmd("SET")
            .arg("switchboard:presence-sweep")
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ms(
                (self.limits.presence_ttl / 3).min(Duration::from_secs(1))
            ))
            .query_async(&mut c)
            .await
            .map_err(err)?;
        if lock.is_none() {
            return Ok(Vec::new());
        }
        let users: Vec<String> = c.smembers("online_users").await.map_err(err)?;
        let mut gone = Vec::new();
        for user in users {
            let sockets: Vec<String> = c
                .smembers(format!("user_sockets:{user}"))
                .await
                .map_err(err)?;
            for sid in sockets {
                let alive: bool = c.exists(format!("socket:{sid}")).await.map_err(err)?;
                if !alive {
                    let _: i64 = c
                        .srem(format!("user_sockets:{user}"), &sid)
                        .await
                        .map_err(err)?;
                }
            }
            if self.remove(&user, "").await? == 1 {
                gone.push(user);
            }
        }
        Ok(gone)
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
            .pexpire(&key, ms(self.limits.presence_ttl) as i64)
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
    ) -> Result<Claim, StoreError> {
        let key = format!("dedup:{user}:{client_ref}");
        let mut c = self.c();
        let set: Option<String> = redis::cmd("SET")
            .arg(&key)
            .arg(message_id)
            .arg("NX")
            .arg("PX")
            .arg(ms(self.limits.dedup_window))
            .query_async(&mut c)
            .await
            .map_err(err)?;
        if set.is_some() {
            return Ok(Claim::New);
        }
        let first: Option<String> = c.get(&key).await.map_err(err)?;
        Ok(first.map_or(Claim::New, Claim::Seen))
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
