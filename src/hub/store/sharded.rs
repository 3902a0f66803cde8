//! A map split into shards, each behind its own lock, for the in-process store: a shard
//! grows (rehashes every entry) and is pruned on its own, so neither pauses every caller
//! for a time proportional to the whole map. (Unsharded, the message index doubling from
//! 57,344 entries held its lock, and with it every delivery, for ~19 ms.)

use std::borrow::Borrow;
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

/// At most this many shards.
const MAX_SHARDS: usize = 64;
/// A map bounded to fewer entries than this per shard is not split further.
const MIN_PER_SHARD: usize = 1024;

/// A map of `K` to `V` in shards. Keys are spread by a hasher of their own (SipHash,
/// randomly keyed: keys can come from clients), so that the entries of one shard are
/// not alike in the bits its map indexes by.
pub struct Sharded<K, V> {
    shards: Box<[Mutex<HashMap<K, V>>]>,
    pick: RandomState,
    bound: usize,
}

impl<K: Eq + Hash, V> Sharded<K, V> {
    /// An empty map meant to hold at most `max` entries in all: as many shards as keep
    /// each at `MIN_PER_SHARD` or more (a power of two, at most `MAX_SHARDS`), each bounded
    /// to its share (see [`Sharded::bound`]).
    pub fn new(max: usize) -> Self {
        let shards = (max / MIN_PER_SHARD)
            .checked_next_power_of_two()
            .unwrap_or(MAX_SHARDS)
            .clamp(1, MAX_SHARDS);
        Sharded {
            shards: (0..shards).map(|_| Mutex::new(HashMap::new())).collect(),
            pick: RandomState::new(),
            bound: max.div_ceil(shards).max(1),
        }
    }

    /// How many entries one shard may hold: `max / shards`, rounded up. Keys spread evenly
    /// enough that a full shard evicts about when the whole map would have.
    pub fn bound(&self) -> usize {
        self.bound
    }

    /// The shard holding `key`, locked. (A poisoned lock is taken over: every change to a
    /// shard leaves it consistent.)
    pub fn shard<Q>(&self, key: &Q) -> MutexGuard<'_, HashMap<K, V>>
    where
        K: Borrow<Q>,
        Q: Hash + ?Sized,
    {
        // Shard counts are powers of two: the low bits pick.
        let at = self.pick.hash_one(key) as usize & (self.shards.len() - 1);
        lock(&self.shards[at])
    }

    /// Every shard in turn, locked one at a time.
    pub fn each(&self) -> impl Iterator<Item = MutexGuard<'_, HashMap<K, V>>> {
        self.shards.iter().map(lock)
    }

    /// Entries in all shards (not a snapshot: shards are counted one after another).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.each().map(|s| s.len()).sum()
    }

    #[cfg(test)]
    fn shard_count(&self) -> usize {
        self.shards.len()
    }
}

/// Drops expired entries of a shard; if it is still at its bound, drops the entries
/// closest to expiry until a tenth of the bound is free. (Overflow: the oldest state is lost
/// first: a very old message can no longer be edited, a very old clientRef is accepted
/// again.) The cut-off is found by selection, not by sorting the map (nor cloning its
/// keys), in one shard at a time: ~20 µs for a 1,563-entry shard of a 100,000-entry
/// bound, once per tenth of that shard.
pub fn make_room<K: Eq + std::hash::Hash, V>(
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
    let drop = (map.len() + 1 - max + max / 10).min(map.len());
    let mut ages: Vec<Instant> = map.values().map(&expiry).collect();
    let (_, cutoff, _) = ages.select_nth_unstable(drop - 1);
    let cutoff = *cutoff;
    // Entries expiring with the cut-off itself go too: at least `drop`.
    map.retain(|_, v| expiry(v) > cutoff);
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_maps_are_one_shard_and_large_ones_many() {
        let one = Sharded::<String, u8>::new(100);
        assert_eq!((one.shard_count(), one.bound()), (1, 100));
        let many = Sharded::<String, u8>::new(100_000);
        assert_eq!((many.shard_count(), many.bound()), (64, 1563));
        let some = Sharded::<String, u8>::new(5000);
        assert_eq!((some.shard_count(), some.bound()), (4, 1250));
        assert_eq!(Sharded::<String, u8>::new(0).bound(), 1);
        assert_eq!(Sharded::<String, u8>::new(usize::MAX).shard_count(), 64);
    }

    #[test]
    fn a_key_is_found_in_the_shard_it_was_put_in_and_keys_spread() {
        let map = Sharded::<String, usize>::new(64 * 1024);
        for i in 0..10_000 {
            map.shard(&format!("k{i}")).insert(format!("k{i}"), i);
        }
        for i in 0..10_000 {
            assert_eq!(
                map.shard(format!("k{i}").as_str())
                    .get(format!("k{i}").as_str()),
                Some(&i)
            );
        }
        assert_eq!(map.len(), 10_000);
        // 10,000 keys over 64 shards: ~156 each; none empty, none with a quarter of all.
        for s in map.each() {
            assert!((50..2500).contains(&s.len()), "{}", s.len());
        }
    }
}
