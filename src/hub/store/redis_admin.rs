//! What the server API keeps in the Redis store, beside presence: the instances alive
//! and the revocations.
//!
//! | key | type | TTL |
//! |---|---|---|
//! | `switchboard:instances` | sorted set: instance ids by when their announcement expires | members forgotten when read after that |
//! | `instance:{id}` | JSON: what the instance serves | the presence TTL, renewed every third of it |
//! | `revoked:user:{id}`, `revoked:jti:{jti}` | `1` | the revocation's |
//! | `last_seen:{id}` | when the user went offline, Unix ms | 30 days |
//! | `room_members:{room}` | hash: `{instance}:{conn}` → user id, per connection in the room | none: fields go when their connection leaves, and those of instances no longer alive when the room is read |

use super::redis::{RedisStore, err, ms, now_ms};
use super::{RoomMember, StoreError};
use redis::AsyncCommands;
use std::time::Duration;

/// The instances alive, scored by when their announcement expires.
const INSTANCES: &str = "switchboard:instances";

impl RedisStore {
    /// `instance:{id}` = `info` for `ttl`, and the id in `instances` scored by when it
    /// expires (so the alive are read without a scan).
    pub(super) async fn announce_instance(
        &self,
        instance: &str,
        info: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let ttl = ms(ttl);
        redis::pipe()
            .cmd("SET")
            .arg(format!("instance:{instance}"))
            .arg(info)
            .arg("PX")
            .arg(ttl)
            .ignore()
            .zadd(INSTANCES, instance, now_ms() + ttl)
            .ignore()
            .query_async::<()>(&mut self.c())
            .await
            .map_err(err)
    }

    /// The instances whose announcement has not expired, forgetting the others.
    pub(super) async fn instances(&self) -> Result<Vec<String>, StoreError> {
        let mut c = self.c();
        let now = now_ms();
        let (ids,): (Vec<String>,) = redis::pipe()
            .cmd("ZREMRANGEBYSCORE")
            .arg(INSTANCES)
            .arg("-inf")
            .arg(now)
            .ignore()
            .cmd("ZRANGE")
            .arg(INSTANCES)
            .arg(0)
            .arg(-1)
            .query_async(&mut c)
            .await
            .map_err(err)?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|i| format!("instance:{i}")).collect();
        let raw: Vec<Option<String>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut c)
            .await
            .map_err(err)?;
        Ok(raw.into_iter().flatten().collect())
    }

    pub(super) async fn revoke(
        &self,
        kind: &str,
        id: &str,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.c()
            .pset_ex(format!("revoked:{kind}:{id}"), 1, ms(ttl))
            .await
            .map_err(err)
    }

    /// One `EXISTS` over the user's and the token's keys.
    pub(super) async fn is_revoked(
        &self,
        user: &str,
        jti: Option<&str>,
    ) -> Result<bool, StoreError> {
        let mut keys = vec![format!("revoked:user:{user}")];
        if let Some(j) = jti {
            keys.push(format!("revoked:jti:{j}"));
        }
        let n: u64 = self.c().exists(keys).await.map_err(err)?;
        Ok(n > 0)
    }

    pub(super) async fn room_members(
        &self,
        rooms: &[String],
        m: RoomMember<'_>,
        present: bool,
    ) -> Result<(), StoreError> {
        if rooms.is_empty() {
            return Ok(());
        }
        let field = format!("{}:{}", m.instance, m.conn);
        let mut p = redis::pipe();
        for r in rooms {
            let key = format!("room_members:{r}");
            if present {
                p.hset(key, &field, m.user).ignore();
            } else {
                p.hdel(key, &field).ignore();
            }
        }
        p.query_async::<()>(&mut self.c()).await.map_err(err)
    }

    pub(super) async fn room_members_of(
        &self,
        room: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let all: std::collections::HashMap<String, String> = self
            .c()
            .hgetall(format!("room_members:{room}"))
            .await
            .map_err(err)?;
        Ok(all.into_iter().collect())
    }

    pub(super) async fn forget_room_members(
        &self,
        room: &str,
        fields: &[String],
    ) -> Result<(), StoreError> {
        if fields.is_empty() {
            return Ok(());
        }
        self.c()
            .hdel(format!("room_members:{room}"), fields)
            .await
            .map_err(err)
    }

    pub(super) async fn set_last_seen(&self, user: &str, at: i64) -> Result<(), StoreError> {
        self.c()
            .pset_ex(format!("last_seen:{user}"), at, ms(super::LAST_SEEN_TTL))
            .await
            .map_err(err)
    }

    pub(super) async fn last_seen(&self, user: &str) -> Result<Option<i64>, StoreError> {
        self.c().get(format!("last_seen:{user}")).await.map_err(err)
    }
}
