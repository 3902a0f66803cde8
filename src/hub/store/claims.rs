//! Export claims remembered in process: which fronted facts this instance has seen a
//! copy of. The in-process store's whole answer; with Redis, the first answer (only the
//! first local copy of a fact asks Redis, so a room of 100 on one instance costs one
//! round trip per fact, not 100).

use super::sharded::{Sharded, make_room};
use std::time::{Duration, Instant};

/// The claims, each until its window ends, at most `bound` of them.
pub struct ExportClaims(Sharded<String, Instant>);

impl ExportClaims {
    /// Room for `bound` claims. Over it, the claims nearest their end are forgotten first
    /// (a copy arriving after its claim was forgotten is exported again, with the same id).
    pub fn new(bound: usize) -> ExportClaims {
        ExportClaims(Sharded::new(bound))
    }

    /// `true` for the first claim of `identity` within `window`.
    pub fn claim(&self, identity: &str, window: Duration) -> bool {
        let mut map = self.0.shard(identity);
        let now = Instant::now();
        if map.get(identity).is_some_and(|end| *end > now) {
            return false;
        }
        make_room(&mut map, self.0.bound(), |t| *t);
        map.insert(identity.to_string(), now + window);
        true
    }

    /// Claims held (counted shard by shard).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.0.len()
    }
}
