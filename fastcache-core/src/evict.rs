//! `maxmemory` eviction and LRU/LFU access metadata.
//!
//! Like Redis, eviction is approximate: it samples a few keys from random
//! shards and evicts the best candidate among them, repeating until used
//! memory is under the limit. Each eviction is journalled as a `DEL` while
//! the key's shard is locked (DESIGN.md, invariant 2).

use std::sync::atomic::Ordering;

use crate::engine::{Engine, Inner, Journal};
use crate::notify::{self, Event};
use crate::record::{Op, Record};
use crate::table::{hash, Keyed};

/// Redis' `maxmemory-policy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum EvictionPolicy {
    /// Refuse writes over the limit (OOM error).
    NoEviction = 0,
    /// Evict the least recently used key.
    AllKeysLru = 1,
    /// Evict the least recently used key among keys with a TTL.
    VolatileLru = 2,
    /// Evict the least frequently used key.
    AllKeysLfu = 3,
    /// Evict the least frequently used key among keys with a TTL.
    VolatileLfu = 4,
    /// Evict a random key.
    AllKeysRandom = 5,
    /// Evict a random key among keys with a TTL.
    VolatileRandom = 6,
    /// Evict the key with the nearest expiry.
    VolatileTtl = 7,
}

impl EvictionPolicy {
    /// Every policy with its Redis name.
    pub const ALL: [(EvictionPolicy, &'static str); 8] = [
        (EvictionPolicy::NoEviction, "noeviction"),
        (EvictionPolicy::AllKeysLru, "allkeys-lru"),
        (EvictionPolicy::VolatileLru, "volatile-lru"),
        (EvictionPolicy::AllKeysLfu, "allkeys-lfu"),
        (EvictionPolicy::VolatileLfu, "volatile-lfu"),
        (EvictionPolicy::AllKeysRandom, "allkeys-random"),
        (EvictionPolicy::VolatileRandom, "volatile-random"),
        (EvictionPolicy::VolatileTtl, "volatile-ttl"),
    ];

    /// Parses a Redis policy name (case-insensitive).
    pub fn parse(s: &str) -> Option<EvictionPolicy> {
        Self::ALL.iter().find(|(_, n)| n.eq_ignore_ascii_case(s)).map(|(p, _)| *p)
    }

    /// The Redis name.
    pub fn name(self) -> &'static str {
        Self::ALL[self as usize].1
    }

    pub(crate) fn from_u8(v: u8) -> EvictionPolicy {
        Self::ALL.get(v as usize).map_or(EvictionPolicy::NoEviction, |(p, _)| *p)
    }

    /// Whether the policy tracks access frequency rather than recency.
    pub fn is_lfu(self) -> bool {
        matches!(self, EvictionPolicy::AllKeysLfu | EvictionPolicy::VolatileLfu)
    }

    fn volatile_only(self) -> bool {
        matches!(
            self,
            EvictionPolicy::VolatileLru
                | EvictionPolicy::VolatileLfu
                | EvictionPolicy::VolatileRandom
                | EvictionPolicy::VolatileTtl
        )
    }
}

pub(crate) const LRU_MASK: u32 = (1 << 24) - 1;
const LFU_INIT_VAL: u32 = 5;
/// Keys sampled per eviction (Redis' `maxmemory-samples` default).
const SAMPLES: usize = 5;

pub(crate) fn lru_clock(now_ms: u64) -> u32 {
    ((now_ms / 1000) as u32) & LRU_MASK
}

pub(crate) fn lfu_minutes(now_ms: u64) -> u32 {
    ((now_ms / 60_000) as u32) & 0xFFFF
}

impl Inner {
    fn lfu(&self) -> bool {
        EvictionPolicy::from_u8(self.policy.load(Ordering::Relaxed)).is_lfu()
    }

    /// Metadata for a newly written key.
    pub(crate) fn initial_meta(&self, now: u64) -> u32 {
        if self.lfu() {
            (lfu_minutes(now) << 8) | LFU_INIT_VAL
        } else {
            lru_clock(now)
        }
    }

    /// Updates metadata on access (Redis' `updateLFU` / LRU clock).
    pub(crate) fn touch_meta(&self, meta: &mut u32, now: u64) {
        if !self.lfu() {
            *meta = lru_clock(now);
            return;
        }
        let mut counter = self.lfu_decayed(*meta, now);
        // Logarithmic increment: the higher the counter, the less likely.
        if counter < 255 {
            let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
            let p = 1.0 / (base * f64::from(self.lfu_log_factor.load(Ordering::Relaxed)) + 1.0);
            if fastrand::f64() < p {
                counter += 1;
            }
        }
        *meta = (lfu_minutes(now) << 8) | counter;
    }

    /// The LFU counter after decay for the minutes elapsed since last access.
    pub(crate) fn lfu_decayed(&self, meta: u32, now: u64) -> u32 {
        let last = meta >> 8;
        let counter = meta & 0xFF;
        let nowm = lfu_minutes(now);
        let elapsed = if nowm >= last { nowm - last } else { 65535 - last + nowm };
        let decay = self.lfu_decay_time.load(Ordering::Relaxed);
        let periods = elapsed.checked_div(decay).unwrap_or(0);
        counter.saturating_sub(periods)
    }

    /// Seconds since last access (OBJECT IDLETIME) under an LRU policy.
    pub(crate) fn idle_seconds(&self, meta: u32, now: u64) -> u64 {
        let clock = lru_clock(now);
        let meta = meta & LRU_MASK;
        u64::from(if clock >= meta { clock - meta } else { LRU_MASK - meta + clock })
    }
}

/// Evicts keys until used memory is at or under `maxmemory`. Returns false
/// if that is impossible (policy `noeviction`, or nothing left to evict).
/// An `evicted` event per evicted key goes to `events` when that class is
/// enabled, also when the function then fails.
///
/// In replica mode it does nothing and succeeds: a replica deletes no key
/// on its own, and its primary decides what is evicted (Redis'
/// `replica-ignore-maxmemory yes`).
pub(crate) fn make_room(engine: &Engine, journal: &mut dyn Journal, events: &mut Vec<Event>) -> bool {
    let inner = &*engine.0;
    let max = inner.maxmemory.load(Ordering::Relaxed);
    if max == 0 || inner.used() <= max || inner.replica.load(Ordering::Relaxed) {
        return true;
    }
    let policy = EvictionPolicy::from_u8(inner.policy.load(Ordering::Relaxed));
    if policy == EvictionPolicy::NoEviction {
        return false;
    }
    let mut rng = fastrand::Rng::new();
    let flags = inner.notify_flags.load(Ordering::Relaxed);
    let mut events =
        (flags & notify::EVICTED != 0 && flags & (notify::KEYSPACE | notify::KEYEVENT) != 0).then_some(events);
    // Bounded: a write never spends unbounded time evicting.
    for _ in 0..10_000 {
        if inner.used() <= max || inner.replica.load(Ordering::Relaxed) {
            return true;
        }
        if !evict_one(inner, policy, &mut rng, journal, events.as_deref_mut()) {
            return false;
        }
    }
    inner.used() <= max
}

/// Samples candidates and evicts the best one. False if no key qualifies.
fn evict_one(
    inner: &Inner,
    policy: EvictionPolicy,
    rng: &mut fastrand::Rng,
    journal: &mut dyn Journal,
    events: Option<&mut Vec<Event>>,
) -> bool {
    let now = inner.clock.now_ms();
    let nshards = inner.shards.len();
    // (score: higher evicts first, shard, db, key)
    let mut best: Option<(u64, usize, usize, Vec<u8>)> = None;
    let start = rng.usize(..nshards);
    let mut sampled = 0;
    for off in 0..nshards {
        if sampled >= SAMPLES {
            break;
        }
        let si = (start + off) % nshards;
        let shard = inner.shards[si].lock();
        for (dbi, db) in shard.dbs.iter().enumerate() {
            let from_volatile = policy.volatile_only();
            let n = if from_volatile { db.volatile.len() } else { db.len() };
            if n == 0 {
                continue;
            }
            for _ in 0..SAMPLES.min(n) {
                let key: Vec<u8> = if from_volatile {
                    match db.volatile.random(rng) {
                        Some(k) => k.to_vec(),
                        None => continue,
                    }
                } else {
                    match db.keys.random(rng) {
                        Some(e) => e.key().to_vec(),
                        None => continue,
                    }
                };
                let Some(e) = db.get(hash(&key), &key) else { continue };
                let score = match policy {
                    EvictionPolicy::AllKeysLru | EvictionPolicy::VolatileLru => inner.idle_seconds(e.meta, now),
                    EvictionPolicy::AllKeysLfu | EvictionPolicy::VolatileLfu => {
                        255 - u64::from(inner.lfu_decayed(e.meta, now))
                    }
                    EvictionPolicy::VolatileTtl => u64::MAX - e.deadline,
                    _ => rng.u64(..),
                };
                sampled += 1;
                if best.as_ref().is_none_or(|b| score > b.0) {
                    best = Some((score, si, dbi, key));
                }
            }
        }
    }
    let Some((_, si, dbi, key)) = best else {
        return false;
    };
    let mut shard = inner.shards[si].lock();
    // The engine became a replica's since `make_room` looked: evict
    // nothing, and let it see the mode and stop.
    if inner.replica.load(Ordering::Relaxed) {
        return true;
    }
    let h = hash(&key);
    shard.before_write(dbi, h, &key);
    let Some(old) = shard.dbs[dbi].remove(h, &key) else {
        // Deleted by someone else meanwhile: that freed memory too.
        return true;
    };
    inner.add_used(si, -(old.mem() as isize));
    shard.touch_watched(dbi, &key);
    shard.stats.evicted_keys += 1;
    shard.stats.dirty += 1;
    // A failed journal append here is reported by the write that follows;
    // the eviction itself has happened in memory either way.
    let _ = journal.append(&Record { ops: vec![Op::new(dbi, &[b"DEL", &key])], time_ms: inner.clock.now_ms() });
    drop(shard);
    if let Some(events) = events {
        events.push(Event { class: notify::EVICTED, event: "evicted", db: dbi, key });
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names_roundtrip() {
        for (p, n) in EvictionPolicy::ALL {
            assert_eq!(EvictionPolicy::parse(n), Some(p));
            assert_eq!(p.name(), n);
            assert_eq!(EvictionPolicy::from_u8(p as u8), p);
        }
        assert_eq!(EvictionPolicy::parse("ALLKEYS-LRU"), Some(EvictionPolicy::AllKeysLru));
        assert_eq!(EvictionPolicy::parse("lru"), None);
    }

    /// Writes 1 KB values until a write evicts; that write's outcome and
    /// how many keys it evicted.
    fn write_until_eviction(t: &mut crate::testutil::T, tag: &str) -> (crate::engine::Outcome, usize) {
        let value = "x".repeat(1000);
        let before = t.engine.stats().evicted_keys;
        for i in 0..1000 {
            let key = format!("{tag}{i}");
            let argv: [&[u8]; 3] = [b"SET", key.as_bytes(), value.as_bytes()];
            let out = t.engine.execute_with(&mut t.session, &argv, &mut crate::NoJournal);
            assert_eq!(out.reply, crate::Reply::OK);
            let evicted = t.engine.stats().evicted_keys - before;
            if evicted > 0 {
                return (out, evicted as usize);
            }
        }
        panic!("nothing was evicted");
    }

    #[test]
    fn a_replica_neither_evicts_nor_refuses_over_maxmemory() {
        let t = crate::testutil::T::new();
        t.engine.set_maxmemory(50_000);
        t.engine.set_maxmemory_policy(EvictionPolicy::AllKeysRandom);
        t.engine.set_replica_mode(true);
        let value = "x".repeat(1000);
        let journalled = std::cell::Cell::new(0u64);
        let mut journal = |_: &Record| {
            journalled.set(journalled.get() + 1);
            Ok(())
        };
        for i in 0..200 {
            let key = format!("k{i}");
            let record = Record { ops: vec![Op::new(0, &[b"SET", key.as_bytes(), value.as_bytes()])], time_ms: 0 };
            t.engine.apply_record_with(&record, &mut journal).expect("a replica applies over maxmemory");
        }
        assert_eq!(journalled.get(), 200);
        assert!(t.engine.used_memory() > t.engine.maxmemory());
        let mut events = Vec::new();
        assert!(make_room(&t.engine, &mut journal, &mut events));
        t.engine.set_maxmemory_policy(EvictionPolicy::NoEviction);
        assert!(make_room(&t.engine, &mut journal, &mut events), "a replica answers no OOM");
        assert_eq!(journalled.get(), 200);
        assert_eq!(t.engine.stats().evicted_keys, 0);
        assert_eq!(t.engine.dbsize(0), 200);

        // Promoted: the limit holds again.
        t.engine.set_replica_mode(false);
        assert!(!make_room(&t.engine, &mut journal, &mut events), "noeviction over the limit");
        t.engine.set_maxmemory_policy(EvictionPolicy::AllKeysRandom);
        assert!(make_room(&t.engine, &mut journal, &mut events));
        assert!(t.engine.used_memory() <= t.engine.maxmemory());
        let evicted = t.engine.stats().evicted_keys;
        assert!(evicted > 0);
        assert_eq!(journalled.get(), 200 + evicted);
    }

    #[test]
    fn eviction_events_precede_the_command_events() {
        let mut t = crate::testutil::T::new();
        t.engine.set_maxmemory(100_000);
        t.engine.set_maxmemory_policy(EvictionPolicy::AllKeysRandom);
        t.engine.set_notify_flags(notify::KEYSPACE | notify::ALL);
        let (out, n) = write_until_eviction(&mut t, "a");
        let names: Vec<&str> = out.events.iter().map(|e| e.event).collect();
        assert_eq!(names.len(), n + 1, "{names:?}");
        assert!(out.events[..n].iter().all(|e| e.event == "evicted" && e.class == notify::EVICTED && e.db == 0));
        assert_eq!(names.last(), Some(&"set"));

        // With the class off, evictions are silent.
        t.engine.set_notify_flags(notify::KEYSPACE | notify::STRING);
        let (out, _) = write_until_eviction(&mut t, "b");
        let names: Vec<&str> = out.events.iter().map(|e| e.event).collect();
        assert_eq!(names, ["set"]);
    }
}
