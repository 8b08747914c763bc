//! Snapshots taken while other threads write are exactly the state at the
//! log position read at their barrier, and round-trip every type.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fastcache_core::{Engine, Record, Session};
use proptest::prelude::*;

/// Runs every entry of a finished snapshot into a fresh engine.
fn take_and_load(engine: &Engine, cursor: &mut fastcache_core::SnapshotCursor, target: usize) -> Engine {
    let copy = Engine::default();
    let mut chunk = Vec::new();
    while !cursor.is_done() {
        chunk.clear();
        cursor.fill(&mut chunk, target);
        copy.load_snapshot_chunk(&chunk).expect("snapshot chunk loads");
    }
    let _ = engine;
    copy
}

fn exec(engine: &Engine, s: &mut Session, log: &Mutex<Vec<Record>>, words: &[String]) {
    let argv: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
    let mut journal = |r: &Record| {
        log.lock().unwrap().push(r.clone());
        Ok(())
    };
    engine.execute_with(s, &argv, &mut journal);
}

fn random_command(rng: &mut fastrand::Rng) -> Vec<String> {
    let k = format!("k{}", rng.u32(..300));
    let e = format!("e{}", rng.u32(..20));
    let n = rng.i64(-5..50).to_string();
    let w: Vec<&str> = match rng.u32(..20) {
        0 => vec!["SET", &k, &n],
        1 => vec!["INCRBY", &k, &n],
        2 => vec!["APPEND", &k, &e],
        3 => vec!["DEL", &k],
        4 => vec!["RPUSH", &k, &e, &n],
        5 => vec!["LPOP", &k],
        6 => vec!["HSET", &k, &e, &n],
        7 => vec!["HDEL", &k, &e],
        8 => vec!["SADD", &k, &e],
        9 => vec!["SPOP", &k],
        10 => vec!["ZADD", &k, &n, &e],
        11 => vec!["ZINCRBY", &k, &n, &e],
        12 => vec!["EXPIRE", &k, "1000"],
        13 => vec!["PERSIST", &k],
        14 => vec!["RENAME", &k, "k7"],
        15 => vec!["SET", &k, &e, "PX", "30"],
        16 => vec!["LMOVE", &k, "k9", "LEFT", "RIGHT"],
        17 => vec!["MOVE", &k, "2"],
        18 => {
            if rng.u32(..40) == 0 {
                vec!["SWAPDB", "0", "2"]
            } else {
                vec!["GETDEL", &k]
            }
        }
        _ => {
            if rng.u32(..60) == 0 {
                vec!["FLUSHDB"]
            } else {
                vec!["SMOVE", &k, "k5", &e]
            }
        }
    };
    w.into_iter().map(String::from).collect()
}

#[test]
fn a_snapshot_under_concurrent_writes_equals_the_log_replayed_to_its_lsn() {
    for round in 0..6 {
        let engine = Engine::default();
        let log = Arc::new(Mutex::new(Vec::<Record>::new()));
        // Some state before the snapshot starts, in several databases.
        let mut s = engine.session();
        let mut rng = fastrand::Rng::with_seed(round);
        for _ in 0..3000 {
            exec(&engine, &mut s, &log, &random_command(&mut rng));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..3)
            .map(|t| {
                let (engine, log, stop) = (engine.clone(), log.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut s = engine.session();
                    let mut rng = fastrand::Rng::with_seed(round * 10 + t);
                    let deadline = Instant::now() + Duration::from_secs(5);
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                        let cmd = random_command(&mut rng);
                        if rng.bool() {
                            exec(&engine, &mut s, &log, &["SELECT".into(), rng.u32(..3).to_string()]);
                        }
                        exec(&engine, &mut s, &log, &cmd);
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(20));
        let (mut cursor, lsn) = engine.begin_snapshot(|| log.lock().unwrap().len()).unwrap();
        // Small chunks so the walk interleaves with the writers.
        let loaded = take_and_load(&engine, &mut cursor, 512);
        drop(cursor);
        std::thread::sleep(Duration::from_millis(10));
        stop.store(true, Ordering::Relaxed);
        let writes: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
        assert!(writes > 0);
        let replayed = Engine::default();
        for (i, r) in log.lock().unwrap()[..lsn].iter().enumerate() {
            replayed.apply_record(r).unwrap_or_else(|e| panic!("record {i}: {e}"));
        }
        assert_eq!(loaded.digest(), replayed.digest(), "round {round}: snapshot at lsn {lsn} differs from the log");
        assert!(log.lock().unwrap().len() > lsn, "round {round}: no write landed during the snapshot");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any state built by random commands survives a snapshot round trip.
    #[test]
    fn round_trip_of_every_type(seed in any::<u64>(), n in 0usize..400, target in 1usize..5000) {
        let engine = Engine::default();
        let log = Mutex::new(Vec::new());
        let mut s = engine.session();
        let mut rng = fastrand::Rng::with_seed(seed);
        for _ in 0..n {
            if rng.u32(..8) == 0 {
                exec(&engine, &mut s, &log, &["SELECT".into(), rng.u32(..16).to_string()]);
            }
            exec(&engine, &mut s, &log, &random_command(&mut rng));
        }
        let (mut cursor, ()) = engine.begin_snapshot(|| ()).unwrap();
        let copy = take_and_load(&engine, &mut cursor, target);
        prop_assert_eq!(copy.digest(), engine.digest());
        prop_assert_eq!(copy.keyspace_info(), engine.keyspace_info());
    }
}
