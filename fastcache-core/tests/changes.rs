//! Incremental backups: a base plus the increments after it, applied in
//! order, equal the log replayed to the last increment's position — also
//! when writers run during each increment.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fastcache_core::{Engine, IncrementalError, Record, Session};

fn exec(engine: &Engine, s: &mut Session, log: &Mutex<Vec<Record>>, words: &[String]) {
    let argv: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
    let mut journal = |r: &Record| {
        log.lock().unwrap().push(r.clone());
        Ok(())
    };
    engine.execute_with(s, &argv, &mut journal);
}

fn random_command(rng: &mut fastrand::Rng, with_flush: bool) -> Vec<String> {
    let k = format!("k{}", rng.u32(..400));
    let e = format!("e{}", rng.u32(..10));
    let n = rng.i64(0..50).to_string();
    let w: Vec<&str> = match rng.u32(..14) {
        0 | 1 => vec!["SET", &k, &n],
        2 => vec!["INCRBY", &k, &n],
        3 => vec!["DEL", &k],
        4 => vec!["RPUSH", &k, &e],
        5 => vec!["HSET", &k, &e, &n],
        6 => vec!["SADD", &k, &e],
        7 => vec!["ZADD", &k, &n, &e],
        8 => vec!["EXPIRE", &k, "1000"],
        9 => vec!["RENAME", &k, "k3"],
        10 => vec!["MOVE", &k, "1"],
        11 => vec!["SELECT", "1"],
        12 => vec!["SELECT", "0"],
        _ if with_flush && rng.u32(..30) == 0 => vec!["FLUSHDB"],
        _ => vec!["SPOP", &k],
    };
    w.into_iter().map(String::from).collect()
}

fn load_base(engine: &Engine, log: &Mutex<Vec<Record>>) -> (Engine, usize) {
    let (mut cursor, lsn) = engine.begin_backup_base(|| log.lock().unwrap().len()).expect("base");
    let copy = Engine::default();
    let mut chunk = Vec::new();
    while !cursor.is_done() {
        chunk.clear();
        cursor.fill(&mut chunk, 4096);
        copy.load_snapshot_chunk(&chunk).expect("base chunk");
    }
    (copy, lsn)
}

fn replayed(log: &Mutex<Vec<Record>>, upto: usize) -> Engine {
    let e = Engine::default();
    for r in &log.lock().unwrap()[..upto] {
        e.apply_record(r).expect("replay");
    }
    e
}

#[test]
fn a_chain_of_increments_under_concurrent_writes_equals_the_log() {
    for round in 0..4u64 {
        let engine = Engine::default();
        engine.set_change_tracking(true);
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut s = engine.session();
        let mut rng = fastrand::Rng::with_seed(round);
        for _ in 0..2000 {
            exec(&engine, &mut s, &log, &random_command(&mut rng, false));
        }
        let (restored, base_lsn) = load_base(&engine, &log);
        assert_eq!(restored.digest(), replayed(&log, base_lsn).digest(), "base");
        for step in 0..5u64 {
            let stop = Arc::new(AtomicBool::new(false));
            let writers: Vec<_> = (0..2)
                .map(|t| {
                    let (engine, log, stop) = (engine.clone(), log.clone(), stop.clone());
                    std::thread::spawn(move || {
                        let mut s = engine.session();
                        let mut rng = fastrand::Rng::with_seed(round * 100 + step * 10 + t);
                        let deadline = Instant::now() + Duration::from_secs(3);
                        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                            exec(&engine, &mut s, &log, &random_command(&mut rng, true));
                        }
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_millis(15));
            let (mut cursor, lsn) = engine.begin_incremental(|| log.lock().unwrap().len()).expect("increment");
            let mut chunk = Vec::new();
            while !cursor.is_done() {
                chunk.clear();
                cursor.fill(&mut chunk, 512);
                restored.apply_change_chunk(&chunk).expect("apply");
            }
            drop(cursor);
            stop.store(true, Ordering::Relaxed);
            for w in writers {
                w.join().unwrap();
            }
            assert_eq!(
                restored.digest(),
                replayed(&log, lsn).digest(),
                "round {round} step {step}: base + increments differ from the log at {lsn}"
            );
        }
    }
}

#[test]
fn swapdb_needs_a_full_base_and_tracking_off_refuses() {
    let engine = Engine::default();
    assert_eq!(engine.begin_incremental(|| ()).err(), Some(IncrementalError::NotTracking));
    engine.set_change_tracking(true);
    let mut s = engine.session();
    engine.execute(&mut s, &[b"SET", b"a", b"1"]);
    engine.execute(&mut s, &[b"SWAPDB", b"0", b"1"]);
    assert_eq!(engine.begin_incremental(|| ()).err(), Some(IncrementalError::NeedsFull));
    // A base restarts the chain; increments work again.
    let (cursor, ()) = engine.begin_backup_base(|| ()).expect("base");
    drop(cursor);
    engine.execute(&mut s, &[b"SET", b"b", b"2"]);
    let (mut cursor, ()) = engine.begin_incremental(|| ()).expect("increment after a base");
    let mut chunk = Vec::new();
    while !cursor.is_done() {
        cursor.fill(&mut chunk, 1 << 20);
    }
    assert_eq!(fastcache_core::decode_changes(&chunk).expect("decode").len(), 1);
    assert_eq!(engine.changed_keys(), 0);
}

#[test]
fn a_replaced_data_set_needs_a_full_base() {
    let engine = Engine::default();
    engine.require_full_backup(); // tracking off: nothing to mark
    engine.set_change_tracking(true);
    let (cursor, ()) = engine.begin_backup_base(|| ()).expect("base");
    drop(cursor);
    let (cursor, ()) = engine.begin_incremental(|| ()).expect("an increment after a base");
    drop(cursor);
    engine.require_full_backup();
    assert_eq!(engine.begin_incremental(|| ()).err(), Some(IncrementalError::NeedsFull));
    let (cursor, ()) = engine.begin_backup_base(|| ()).expect("base");
    drop(cursor);
    assert!(engine.begin_incremental(|| ()).is_ok(), "a base restarts the chain");
}
