//! Active expiry: a periodic, sampled sweep so that expired keys nobody
//! reads do not pile up (Redis' `activeExpireCycle`, simplified).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::engine::{Engine, Journal};
use crate::notify::{self, Event};
use crate::record::{Op, Record};
use crate::table::hash;

/// Keys sampled per database per round (Redis' default effort).
const SAMPLE: usize = 20;

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExpireReport {
    /// Keys sampled.
    pub sampled: usize,
    /// Keys deleted.
    pub expired: usize,
    /// Whether the time budget ran out before the sweep settled.
    pub timed_out: bool,
    /// An `expired` event per deleted key, when that class is enabled
    /// (see [`Engine::set_notify_flags`]); the server publishes them.
    pub events: Vec<Event>,
}

impl Engine {
    /// Deletes expired keys by sampling each shard's keys with a TTL,
    /// repeating on a shard while more than a quarter of a sample was
    /// expired, within `budget`. Each deletion is journalled as a `DEL`
    /// while its shard is locked. The server calls this about ten times a
    /// second.
    ///
    /// In replica mode ([`Engine::set_replica_mode`]) it deletes nothing:
    /// the primary's `DEL`s expire a replica's keys.
    pub fn active_expire_cycle(&self, journal: &mut dyn Journal, budget: Duration) -> ExpireReport {
        let inner = &*self.0;
        let start = Instant::now();
        let mut report = ExpireReport::default();
        if inner.replica.load(Ordering::Relaxed) {
            return report;
        }
        let nshards = inner.shards.len();
        let first = fastrand::usize(..nshards);
        let flags = inner.notify_flags.load(Ordering::Relaxed);
        let notify = flags & notify::EXPIRED != 0 && flags & (notify::KEYSPACE | notify::KEYEVENT) != 0;
        for off in 0..nshards {
            let si = (first + off) % nshards;
            let mut shard = inner.shards[si].lock();
            // Checked again under the lock: the mode may have changed since.
            if inner.replica.load(Ordering::Relaxed) {
                return report;
            }
            for dbi in 0..shard.dbs.len() {
                loop {
                    if start.elapsed() > budget {
                        report.timed_out = true;
                        return report;
                    }
                    let now = inner.clock.now_ms();
                    let n = shard.dbs[dbi].volatile.len();
                    if n == 0 {
                        break;
                    }
                    let mut due = Vec::new();
                    let take = SAMPLE.min(n);
                    for _ in 0..take {
                        let s = &mut *shard;
                        let Some(k) = s.dbs[dbi].volatile.random(&mut s.rng) else { break };
                        let h = hash(k);
                        if s.dbs[dbi].get(h, k).is_some_and(|e| e.deadline != 0 && e.deadline <= now) {
                            due.push(k.to_vec());
                        }
                    }
                    report.sampled += take;
                    // The share of expired *samples* decides whether to go
                    // on; counting distinct keys would stop early when a
                    // small table is sampled with repeats.
                    let expired_samples = due.len();
                    due.sort_unstable();
                    due.dedup();
                    let mut ops = Vec::with_capacity(due.len());
                    for key in due {
                        let h = hash(&key);
                        shard.before_write(dbi, h, &key);
                        if let Some(old) = shard.dbs[dbi].remove(h, &key) {
                            inner.add_used(si, -(old.mem() as isize));
                            shard.touch_watched(dbi, &key);
                            ops.push(Op::new(dbi, &[b"DEL", &key]));
                            if notify {
                                report.events.push(Event { class: notify::EXPIRED, event: "expired", db: dbi, key });
                            }
                        }
                    }
                    if !ops.is_empty() {
                        report.expired += ops.len();
                        shard.stats.expired_keys += ops.len() as u64;
                        shard.stats.dirty += ops.len() as u64;
                        // Failure is reported to the next write; the keys are
                        // gone from memory either way, and expiry is
                        // idempotent on replay.
                        let _ = journal.append(&Record { ops, time_ms: now });
                    }
                    if expired_samples * 4 <= take {
                        break;
                    }
                }
            }
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::engine::NoJournal;
    use crate::notify;
    use crate::record::Record;
    use crate::testutil::T;

    #[test]
    fn active_expiry_reports_expired_events_only_when_enabled() {
        let mut t = T::new();
        t.run(&["SET", "a", "1", "PX", "10"]);
        t.run(&["SELECT", "3"]);
        t.run(&["SET", "b", "1", "PX", "10"]);
        t.run(&["SET", "c", "1"]);
        t.clock.advance(20);
        // Disabled: the keys go, silently.
        t.engine.set_notify_flags(notify::KEYSPACE | notify::ALL & !notify::EXPIRED);
        let r = t.engine.active_expire_cycle(&mut NoJournal, Duration::from_secs(5));
        assert_eq!(r.expired, 2);
        assert!(r.events.is_empty());

        t.run(&["SET", "d", "1", "PX", "10"]);
        t.clock.advance(20);
        t.engine.set_notify_flags(notify::KEYEVENT | notify::EXPIRED);
        let r = t.engine.active_expire_cycle(&mut NoJournal, Duration::from_secs(5));
        assert_eq!(r.expired, 1);
        assert_eq!(r.events.len(), 1);
        let e = &r.events[0];
        assert_eq!((e.class, e.event, e.db, e.key.as_slice()), (notify::EXPIRED, "expired", 3, &b"d"[..]));
    }

    #[test]
    fn active_expiry_deletes_nothing_in_replica_mode() {
        let mut t = T::new();
        t.run(&["SET", "a", "1", "PX", "10"]);
        t.run(&["SELECT", "3"]);
        t.run(&["SET", "b", "1", "PX", "10"]);
        t.clock.advance(20);
        t.engine.set_replica_mode(true);
        let mut log = Vec::new();
        let mut journal = |r: &Record| {
            log.push(r.clone());
            Ok(())
        };
        let r = t.engine.active_expire_cycle(&mut journal, Duration::from_secs(5));
        assert_eq!((r.sampled, r.expired), (0, 0));
        assert!(log.is_empty(), "{log:?}");
        assert_eq!((t.engine.dbsize(0), t.engine.dbsize(3)), (1, 1));

        t.engine.set_replica_mode(false);
        let mut journal = |r: &Record| {
            log.push(r.clone());
            Ok(())
        };
        let r = t.engine.active_expire_cycle(&mut journal, Duration::from_secs(5));
        assert_eq!(r.expired, 2);
        assert_eq!(log.iter().map(|r| r.ops.len()).sum::<usize>(), 2);
        assert_eq!((t.engine.dbsize(0), t.engine.dbsize(3)), (0, 0));
    }
}
