//! What the server API keeps in the Redis store, beside presence: the instances alive
//! and the revocations.
//!
//! | key | type | TTL |
//! |---|---|---|
//! | `switchboard:instances` | sorted set: instance ids by when their announcement expires | members forgotten when read after that |
//! | `instance:{id}` | JSON: what the instance serves | the presence TTL, renewed every third of it |
//! | `revoked:user:{id}`, `revoked:jti:{jti}` | `1` | the revocation's |

use super::StoreError;
use super::redis::{RedisStore, err, ms, now_ms};
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
}
