//! A replica applies its primary's records with `apply_record_with`,
//! journalling each one. A snapshot barrier taken meanwhile reads the
//! journal's count while every shard is locked, and must hold exactly the
//! state after that many records: all of each record it counts, nothing of
//! the ones it does not (what lets a replica snapshot at a LSN).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use fastcache_core::{Engine, Record, Reply, Session};

fn run(engine: &Engine, s: &mut Session, log: &mut Vec<Record>, words: &[&str]) -> Reply {
    let argv: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
    let mut journal = |r: &Record| {
        log.push(r.clone());
        Ok(())
    };
    engine.execute_with(s, &argv, &mut journal).reply
}

/// The records of a primary running random writes, many of them MULTI
/// blocks over several keys (so several shards) and databases.
fn primary_log(seed: u64, records: usize) -> Vec<Record> {
    let engine = Engine::default();
    let mut s = engine.session();
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut log = Vec::new();
    let mut guard = 0;
    while log.len() < records && guard < records * 10 {
        guard += 1;
        let multi = rng.bool();
        if multi {
            run(&engine, &mut s, &mut log, &["MULTI"]);
        }
        for _ in 0..if multi { rng.usize(2..7) } else { 1 } {
            let k = format!("k{}", rng.u32(..40));
            let v = rng.u32(..100).to_string();
            let db = rng.u32(..3).to_string();
            let words: Vec<&str> = match rng.u32(..9) {
                0 => vec!["SELECT", &db],
                1 => vec!["SET", &k, &v],
                2 => vec!["INCRBY", &k, &v],
                3 => vec!["RPUSH", &k, &v],
                4 => vec!["HSET", &k, &v, &v],
                5 => vec!["SADD", &k, &v],
                6 => vec!["DEL", &k],
                7 => vec!["MOVE", &k, &db],
                _ => vec!["MSET", &k, &v, "k0", &v],
            };
            run(&engine, &mut s, &mut log, &words);
        }
        if multi {
            run(&engine, &mut s, &mut log, &["EXEC"]);
        }
    }
    log
}

/// Loads a finished snapshot into a fresh engine.
fn load(cursor: &mut fastcache_core::SnapshotCursor) -> Engine {
    let copy = Engine::default();
    let mut chunk = Vec::new();
    while !cursor.is_done() {
        chunk.clear();
        cursor.fill(&mut chunk, 256);
        copy.load_snapshot_chunk(&chunk).expect("snapshot chunk loads");
    }
    copy
}

#[test]
fn a_snapshot_barrier_during_replica_apply_holds_exactly_the_journalled_records() {
    let mut mid_stream = 0;
    for round in 0..4 {
        let records = Arc::new(primary_log(round, 4000));
        // The digest after each prefix of the log: expected[n] is the state
        // after n records.
        let shadow = Engine::default();
        let mut expected = vec![shadow.digest()];
        for r in records.iter() {
            shadow.apply_record(r).expect("the primary's record applies");
            expected.push(shadow.digest());
        }

        let replica = Engine::default();
        let journalled = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let applier = {
            let (replica, records, journalled, done) =
                (replica.clone(), records.clone(), journalled.clone(), done.clone());
            std::thread::spawn(move || {
                let mut journal = |_: &Record| {
                    // A journal takes time, as a WAL write does; a barrier
                    // that does not wait for it would count too few records.
                    std::thread::yield_now();
                    journalled.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                };
                for (i, r) in records.iter().enumerate() {
                    if let Err(e) = replica.apply_record_with(r, &mut journal) {
                        done.store(true, Ordering::SeqCst);
                        panic!("record {i}: {e}");
                    }
                }
                done.store(true, Ordering::SeqCst);
            })
        };
        // Bounded: at most 60 barriers per round, however fast or slow the
        // applier is.
        for _ in 0..60 {
            let finished = done.load(Ordering::SeqCst);
            let (mut cursor, n) =
                replica.begin_snapshot(|| journalled.load(Ordering::SeqCst)).expect("no other snapshot");
            let snap = load(&mut cursor);
            drop(cursor);
            assert_eq!(snap.digest(), expected[n], "round {round}: snapshot at {n} records differs from the log");
            if 0 < n && n < records.len() {
                mid_stream += 1;
            }
            if finished {
                break;
            }
        }
        applier.join().expect("applier panicked");
        assert_eq!(journalled.load(Ordering::SeqCst), records.len());
        assert_eq!(replica.digest(), expected[records.len()]);
    }
    assert!(mid_stream > 0, "no barrier landed while records were being applied");
}
