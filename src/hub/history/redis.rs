//! The room history in Redis Streams (the Redis bus), shared by every instance:
//!
//! | key | type | TTL |
//! |---|---|---|
//! | `switchboard:history:epoch` | the epoch (set by the first append after Redis lost it) | none |
//! | `switchboard:history:seq` | the last offset given | none |
//! | `switchboard:history:{room:<id>}`, `…:{user:<id>}` | stream: entry id `<seq>-0`, fields `p` (the room's previous seq; empty: unknown) and `d` (the delivery, as the bus carries it) | `history.ttl`, renewed on write; `XADD MAXLEN ~ history.size` |
//!
//! One script appends a fact to each of its rooms under one offset; a batch of facts
//! goes in one round trip (`append.rs` gathers them).

use super::{HistoryError, Offset, RoomEntries, new_epoch};
use crate::bus::{Delivery, RoomKey, wire};
use crate::config::HistoryConfig;
use redis::aio::ConnectionManager;
use redis::{Script, Value};
use std::sync::Arc;

const EPOCH: &str = "switchboard:history:epoch";
const SEQ: &str = "switchboard:history:seq";

/// KEYS: epoch, seq, then each room's stream; ARGV: a new epoch, the size, the TTL in
/// ms, the delivery, and one `0`/`1` per room (`1`: its last append failed).
const APPEND: &str = r"
local e = redis.call('GET', KEYS[1])
if not e then
  e = ARGV[1]
  redis.call('SET', KEYS[1], e)
end
local s = redis.call('INCR', KEYS[2])
for i = 3, #KEYS do
  local prev = '0'
  local last = redis.call('XREVRANGE', KEYS[i], '+', '-', 'COUNT', 1)
  if #last > 0 then
    prev = string.match(last[1][1], '^(%d+)')
  end
  if string.sub(ARGV[5], i - 2, i - 2) == '1' then
    prev = ''
  end
  redis.call('XADD', KEYS[i], 'MAXLEN', '~', ARGV[2], s .. '-0', 'p', prev, 'd', ARGV[4])
  redis.call('PEXPIRE', KEYS[i], ARGV[3])
end
return {e, s}";

/// The stream of a room.
fn key(room: &RoomKey) -> String {
    match room {
        RoomKey::Conversation(id) => format!("switchboard:history:{{room:{id}}}"),
        RoomKey::User(id) => format!("switchboard:history:{{user:{id}}}"),
        RoomKey::Dialect(name) => format!("switchboard:history:{{dialect:{name}}}"),
    }
}

fn err(e: redis::RedisError) -> HistoryError {
    HistoryError(e.to_string())
}

/// The history in Redis.
pub struct RedisHistory {
    conn: ConnectionManager,
    size: usize,
    ttl_ms: u64,
    append: Script,
}

impl RedisHistory {
    /// On `conn` (the store's multiplexed connection).
    pub fn new(conn: ConnectionManager, cfg: &HistoryConfig) -> RedisHistory {
        RedisHistory {
            conn,
            size: cfg.size.max(1),
            ttl_ms: u64::try_from(cfg.ttl.as_millis())
                .unwrap_or(u64::MAX)
                .max(1),
            append: Script::new(APPEND),
        }
    }

    /// One append as a command: the script by its hash (loaded on first use).
    fn evalsha(&self, d: &Delivery, gaps: &[bool]) -> redis::Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.append.get_hash())
            .arg(2 + d.audience.rooms.len())
            .arg(EPOCH)
            .arg(SEQ);
        for room in &d.audience.rooms {
            cmd.arg(key(room));
        }
        let flags: String = gaps.iter().map(|g| if *g { '1' } else { '0' }).collect();
        cmd.arg(new_epoch())
            .arg(self.size)
            .arg(self.ttl_ms)
            .arg(wire::encode("history", 0, d))
            .arg(flags);
        cmd
    }

    /// Appends a batch, each delivery to each of its rooms under one new offset, in
    /// order, in one round trip.
    pub async fn append_many(
        &self,
        batch: &[(&Delivery, Vec<bool>)],
    ) -> Result<Vec<Offset>, HistoryError> {
        let mut conn = self.conn.clone();
        for attempt in 0..2 {
            let mut pipe = redis::pipe();
            for (d, gaps) in batch {
                pipe.add_command(self.evalsha(d, gaps));
            }
            match pipe.query_async::<Vec<(String, u64)>>(&mut conn).await {
                Ok(v) => {
                    return Ok(v
                        .into_iter()
                        .map(|(epoch, seq)| Offset {
                            epoch: Arc::from(epoch),
                            seq,
                        })
                        .collect());
                }
                Err(e)
                    if attempt == 0
                        && e.kind()
                            == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                {
                    self.append
                        .prepare_invoke()
                        .load_async(&mut conn)
                        .await
                        .map_err(err)?;
                }
                Err(e) => return Err(err(e)),
            }
        }
        Err(HistoryError("the append script could not be loaded".into()))
    }

    /// The epoch and the last offset given (a new epoch when Redis has none yet, set
    /// as the first append would: an offset taken now is this history's).
    pub async fn head(&self) -> Result<Offset, HistoryError> {
        let mut conn = self.conn.clone();
        let (epoch, seq): (String, Option<u64>) = redis::pipe()
            .cmd("SET")
            .arg(EPOCH)
            .arg(new_epoch())
            .arg("NX")
            .ignore()
            .get(EPOCH)
            .get(SEQ)
            .query_async(&mut conn)
            .await
            .map_err(err)?;
        Ok(Offset {
            epoch: Arc::from(epoch),
            seq: seq.unwrap_or(0),
        })
    }

    /// Each room's entries after `floor` (at most `history.size` and a margin, which
    /// `MAXLEN ~` may leave), with the epoch.
    pub async fn since(
        &self,
        rooms: &[RoomKey],
        floor: u64,
    ) -> Result<(Arc<str>, Vec<RoomEntries>), HistoryError> {
        let mut pipe = redis::pipe();
        pipe.get(EPOCH);
        let start = format!("({floor}-0");
        let most = self.size.saturating_mul(2).max(self.size + 100);
        for room in rooms {
            pipe.cmd("XRANGE")
                .arg(key(room))
                .arg(&start)
                .arg("+")
                .arg("COUNT")
                .arg(most);
        }
        let mut conn = self.conn.clone();
        let mut values: Vec<Value> = pipe.query_async(&mut conn).await.map_err(err)?;
        if values.is_empty() {
            return Err(HistoryError("Redis answered nothing".into()));
        }
        let epoch: Option<String> =
            redis::from_redis_value(values.remove(0)).map_err(|e| HistoryError(e.to_string()))?;
        let epoch: Arc<str> = Arc::from(epoch.unwrap_or_default());
        let per_room = values
            .iter()
            .map(|v| entries(v, &epoch))
            .collect::<Result<_, _>>()?;
        Ok((epoch, per_room))
    }
}

/// One stream entry as Redis answers it: its id and its fields.
type StreamEntry = (String, Vec<(String, Vec<u8>)>);

/// One XRANGE answer as entries (each delivery given its offset in `epoch`); an entry
/// this gateway did not write is skipped.
fn entries(v: &Value, epoch: &Arc<str>) -> Result<RoomEntries, HistoryError> {
    let raw: Vec<StreamEntry> =
        redis::from_redis_value_ref(v).map_err(|e| HistoryError(e.to_string()))?;
    let mut out = Vec::with_capacity(raw.len());
    for (id, fields) in raw {
        let Some(seq) = id.split('-').next().and_then(|s| s.parse::<u64>().ok()) else {
            continue;
        };
        let mut prev = None;
        let mut delivery = None;
        for (name, value) in fields {
            match name.as_str() {
                "p" => {
                    prev = std::str::from_utf8(&value)
                        .ok()
                        .and_then(|p| p.parse().ok())
                }
                "d" => delivery = wire::decode(&value).ok().map(wire::In::delivery),
                _ => {}
            }
        }
        if let Some(mut d) = delivery {
            d.offset = Some(Offset {
                epoch: epoch.clone(),
                seq,
            });
            out.push((seq, prev, Arc::new(d)));
        }
    }
    Ok(out)
}
