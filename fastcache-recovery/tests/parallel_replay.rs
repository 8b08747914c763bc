//! Parallel WAL replay gives the state serial replay gives: random command
//! sequences over many keys (so many shards) and four databases —
//! multi-key commands, MULTI/EXEC, RENAME, MOVE, SWAPDB, FLUSHDB,
//! FLUSHALL, relative expiry, and the `DEL`s of lazy and active expiry —
//! run on an engine whose journal is a real WAL; the log is then replayed
//! serially and with 1, 2 and 4 threads into engines with 4 and 64 shards
//! (with few shards, multi-key records often fall to one worker instead of
//! being barriers). Every replay must give the digest of the engine that
//! wrote the log, and the same report.

use std::sync::Arc;
use std::time::Duration;

use fastcache_core::{Engine, EngineConfig, ManualClock, Record, Session};
use fastcache_recovery::{replay_wal_parallel, replay_wal_until, ReplayReport};
use fastcache_wal::{SyncPolicy, Wal, WalOptions};
use proptest::prelude::*;

const KEYS: u8 = 12;

fn key(k: u8) -> String {
    format!("k{}", k % KEYS)
}

fn elem(e: u8) -> String {
    format!("{}", e % 5)
}

#[derive(Debug, Clone)]
enum Step {
    Cmd(Vec<String>),
    Multi(Vec<Vec<String>>),
    Advance(u64),
    ActiveExpire,
}

fn command() -> impl Strategy<Value = Vec<String>> {
    let k = any::<u8>();
    let e = any::<u8>();
    let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    prop_oneof![
        4 => (k, e).prop_map(move |(k, e)| w(&["SET", &key(k), &elem(e)])),
        1 => (k, e, 1u32..3000).prop_map(move |(k, e, t)| w(&["SET", &key(k), &elem(e), "PX", &t.to_string()])),
        1 => (k, 1u32..3).prop_map(move |(k, t)| w(&["EXPIRE", &key(k), &t.to_string()])),
        1 => k.prop_map(move |k| w(&["PERSIST", &key(k)])),
        1 => k.prop_map(move |k| w(&["INCR", &key(k)])),
        1 => (k, e).prop_map(move |(k, e)| w(&["APPEND", &key(k), &elem(e)])),
        1 => k.prop_map(move |k| w(&["GET", &key(k)])),
        1 => (k, k).prop_map(move |(a, b)| w(&["DEL", &key(a), &key(b)])),
        1 => (k, k, e).prop_map(move |(a, b, e)| w(&["MSET", &key(a), &elem(e), &key(b), &elem(e)])),
        1 => (k, k).prop_map(move |(a, b)| w(&["RENAME", &key(a), &key(b)])),
        1 => (k, k).prop_map(move |(a, b)| w(&["COPY", &key(a), &key(b), "REPLACE"])),
        1 => (k, 0u8..4).prop_map(move |(k, d)| w(&["MOVE", &key(k), &d.to_string()])),
        1 => (0u8..4).prop_map(move |d| w(&["SELECT", &d.to_string()])),
        1 => (k, e).prop_map(move |(k, e)| w(&["RPUSH", &key(k), &elem(e), &elem(e.wrapping_add(1))])),
        1 => (k, k).prop_map(move |(a, b)| w(&["LMOVE", &key(a), &key(b), "LEFT", "RIGHT"])),
        1 => (k, e).prop_map(move |(k, e)| w(&["SADD", &key(k), &elem(e), &elem(e.wrapping_add(2))])),
        1 => k.prop_map(move |k| w(&["SPOP", &key(k)])),
        1 => (k, k).prop_map(move |(a, b)| w(&["SUNIONSTORE", &key(a), &key(a), &key(b)])),
        1 => (k, e, e).prop_map(move |(k, f, v)| w(&["HSET", &key(k), &elem(f), &elem(v)])),
        1 => (k, e, e).prop_map(move |(k, s, m)| w(&["ZADD", &key(k), &elem(s), &elem(m)])),
        1 => (0u8..4, 0u8..4).prop_map(move |(a, b)| w(&["SWAPDB", &a.to_string(), &b.to_string()])),
        1 => Just(w(&["FLUSHDB"])),
        1 => Just(w(&["FLUSHALL"])),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        14 => command().prop_map(Step::Cmd),
        2 => proptest::collection::vec(command(), 1..4).prop_map(Step::Multi),
        2 => (1u64..2500).prop_map(Step::Advance),
        1 => Just(Step::ActiveExpire),
    ]
}

fn run(engine: &Engine, s: &mut Session, wal: &Wal, words: &[String]) {
    let argv: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
    let mut journal = |r: &Record| {
        wal.append(&r.encode()).expect("append to the WAL");
        Ok(())
    };
    engine.execute_with(s, &argv, &mut journal);
}

/// Opens a small WAL (1 MiB segments: several segments for the larger cases).
fn open_wal(dir: &std::path::Path) -> Wal {
    let opts = WalOptions { segment_size: 1 << 20, sync: SyncPolicy::Never, ..WalOptions::default() };
    Wal::open(dir, opts).expect("open the WAL").0
}

fn without_time(mut r: ReplayReport) -> ReplayReport {
    r.elapsed = Duration::ZERO;
    r
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn parallel_replay_gives_the_state_of_serial_replay(
        steps in proptest::collection::vec(step(), 1..200),
        filler in 0usize..3000
    ) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let wal = open_wal(dir.path());
        let clock = ManualClock::new(1_700_000_000_000);
        let config = |shards| EngineConfig { shards, databases: 4, clock: Arc::new(clock.clone()), ..EngineConfig::default() };
        let engine = Engine::new(config(64));
        let mut s = engine.session();
        // Plain SETs first, so that batches fill up and barriers find
        // workers busy.
        for i in 0..filler {
            run(&engine, &mut s, &wal, &["SET".into(), format!("f{}", i % 700), i.to_string()]);
        }
        for st in &steps {
            match st {
                Step::Advance(ms) => clock.advance(*ms),
                Step::ActiveExpire => {
                    let mut journal = |r: &Record| {
                        wal.append(&r.encode()).expect("append to the WAL");
                        Ok(())
                    };
                    engine.active_expire_cycle(&mut journal, Duration::from_secs(1));
                }
                Step::Cmd(words) => run(&engine, &mut s, &wal, words),
                Step::Multi(cmds) => {
                    run(&engine, &mut s, &wal, &["MULTI".into()]);
                    for c in cmds {
                        run(&engine, &mut s, &wal, c);
                    }
                    run(&engine, &mut s, &wal, &["EXEC".into()]);
                }
            }
        }
        let want = engine.digest();
        let last = wal.last_lsn();

        let serial = Engine::new(config(64));
        let report = without_time(replay_wal_until(&serial, &wal, 1, last, |_| {}).map_err(|e| TestCaseError::fail(e.to_string()))?);
        prop_assert_eq!(report.records, last);
        prop_assert_eq!(serial.digest(), want, "serial replay");
        for shards in [4, 64] {
            for threads in [1, 2, 4] {
                let copy = Engine::new(config(shards));
                let r = replay_wal_parallel(&copy, &wal, 1, last, threads, |_| {})
                    .map_err(|e| TestCaseError::fail(format!("{shards} shards, {threads} threads: {e}")))?;
                prop_assert_eq!(without_time(r), report.clone(), "{} shards, {} threads", shards, threads);
                prop_assert_eq!(copy.digest(), want, "{} shards, {} threads", shards, threads);
            }
        }
        // Up to a point in the middle, as a rewind does.
        let mid = last / 2;
        let serial = Engine::new(config(64));
        replay_wal_until(&serial, &wal, 1, mid, |_| {}).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let copy = Engine::new(config(4));
        let r = replay_wal_parallel(&copy, &wal, 1, mid, 2, |_| {}).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(r.last_lsn, mid);
        prop_assert_eq!(copy.digest(), serial.digest(), "up to {}", mid);
    }
}

/// A long log whose middle has a barrier every few records: the reader
/// applies that part itself (serial replay) and goes back to the workers
/// after it; the state is still serial replay's. Lists keep the order
/// their pushes were applied in, so a record applied out of order shows.
#[test]
fn dense_barriers_in_a_long_log_give_the_state_of_serial_replay() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let wal = open_wal(dir.path());
    let mut rng = fastrand::Rng::with_seed(7);
    let append = |words: &[String]| -> Result<(), fastcache_wal::Error> {
        let argv: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        wal.append(&Record { ops: vec![fastcache_core::Op::new(0, &argv)], time_ms: 0 }.encode())?;
        Ok(())
    };
    let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    // Alternating stretches without barriers and with one every ten records
    // or so, of random lengths: many switches between the two modes, at
    // all sorts of points.
    for phase in 0..30 {
        let dense = phase % 2 == 1;
        for i in 0..rng.u32(2000..9000) {
            let (a, b) = (format!("k{}", rng.u32(..64)), format!("k{}", rng.u32(..64)));
            let v = format!("{phase}.{i}");
            let words = match rng.u32(..10) {
                // A barrier with 2 workers about every other time.
                0 if dense => w(&["MSET", &a, &v, &b, &v]),
                1 if dense => w(&["DEL", &a, &b]),
                0..=3 => w(&["SET", &a, &v]),
                _ => w(&["RPUSH", &format!("l{}", rng.u32(..4)), &v]),
            };
            append(&words)?;
        }
    }
    let last = wal.last_lsn();
    let serial = Engine::default();
    let want = replay_wal_until(&serial, &wal, 1, last, |_| {})?;
    for shards in [4, 64] {
        for threads in [2, 4] {
            let copy = Engine::new(EngineConfig { shards, ..EngineConfig::default() });
            let r = replay_wal_parallel(&copy, &wal, 1, last, threads, |_| {})?;
            assert_eq!(without_time(r), without_time(want.clone()), "{shards} shards, {threads} threads");
            assert_eq!(copy.digest(), serial.digest(), "{shards} shards, {threads} threads");
        }
    }
    Ok(())
}
