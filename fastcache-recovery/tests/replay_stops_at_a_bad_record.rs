//! A record that does not decode or does not apply stops replay with
//! `Error::Record` / `Error::Replay` at its LSN, serial and parallel alike,
//! and every record before it is applied. Where the parallel replay handles
//! the bad record on the reading thread (it does not decode, or it is a
//! barrier) the engine is exactly what serial replay leaves; where a worker
//! fails, records after it that touch other shards may be applied as well,
//! but none in its own shards.

use fastcache_core::{Engine, EngineConfig, Op, Record};
use fastcache_recovery::{replay_wal_parallel, Error};
use fastcache_wal::{Lsn, SyncPolicy, Wal, WalOptions};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn engine() -> Engine {
    Engine::new(EngineConfig { shards: 16, ..EngineConfig::default() })
}

fn record(words: &[&str]) -> Vec<u8> {
    let argv: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
    Record { ops: vec![Op::new(0, &argv)], time_ms: 0 }.encode()
}

/// A log of `before` SETs of keys `a<i>`, the payloads `bad`, then `after`
/// SETs of keys `b<i>`; returns the LSN of each bad payload.
fn log(wal: &Wal, before: usize, bad: &[Vec<u8>], after: usize) -> Result<Vec<Lsn>, fastcache_wal::Error> {
    // A string key a worker's LPUSH fails on.
    wal.append(&record(&["SET", "str", "v"]))?;
    for i in 0..before {
        wal.append(&record(&["SET", &format!("a{}", i % 5000), &i.to_string()]))?;
    }
    let lsns = bad.iter().map(|p| wal.append(p)).collect::<Result<Vec<_>, _>>()?;
    for i in 0..after {
        wal.append(&record(&["SET", &format!("b{i}"), "1"]))?;
    }
    Ok(lsns)
}

fn open(dir: &std::path::Path) -> Result<Wal, fastcache_wal::Error> {
    Ok(Wal::open(dir, WalOptions { sync: SyncPolicy::Never, segment_size: 4 << 20, ..WalOptions::default() })?.0)
}

/// The LSN of a `Record` or `Replay` error.
fn failed_at(result: Result<fastcache_recovery::ReplayReport, Error>) -> Option<Lsn> {
    match result {
        Err(Error::Record { lsn, .. } | Error::Replay { lsn, .. }) => Some(lsn),
        _ => None,
    }
}

#[test]
fn a_bad_record_on_the_reading_thread_leaves_what_serial_replay_leaves() -> TestResult {
    let bads: [(&str, Vec<u8>); 4] = [
        ("does not decode", vec![2, 0xff, 0xff, 0xff]),
        ("unknown version", vec![9, 1, 2, 3]),
        ("unknown command", record(&["NOPE", "a1"])),
        // A barrier (it locks every shard) that fails.
        ("failing barrier", record(&["SWAPDB", "0", "99"])),
    ];
    for (what, bad) in bads {
        let dir = tempfile::tempdir()?;
        let wal = open(dir.path())?;
        let at = log(&wal, 20_000, &[bad], 20_000)?[0];
        let serial = engine();
        assert_eq!(failed_at(replay_wal_parallel(&serial, &wal, 1, Lsn::MAX, 1, |_| {})), Some(at), "{what}");
        // Serial replay holds exactly the records before the bad one.
        let prefix = engine();
        replay_wal_parallel(&prefix, &wal, 1, at - 1, 1, |_| {})?;
        assert_eq!(serial.digest(), prefix.digest(), "{what}");
        for threads in [2, 4] {
            let parallel = engine();
            let result = replay_wal_parallel(&parallel, &wal, 1, Lsn::MAX, threads, |_| {});
            assert_eq!(failed_at(result), Some(at), "{what}, {threads} threads");
            assert_eq!(parallel.digest(), serial.digest(), "{what}, {threads} threads");
        }
    }
    Ok(())
}

#[test]
fn a_record_failing_in_a_worker_stops_replay_with_every_record_before_it_applied() -> TestResult {
    let dir = tempfile::tempdir()?;
    let wal = open(dir.path())?;
    // WRONGTYPE: a single-shard record, applied by a worker.
    let at = log(&wal, 50_000, &[record(&["LPUSH", "str", "x"])], 50_000)?[0];
    let probe = engine();
    let shard_of = |key: &str| {
        let rec = Record::decode(&record(&["GET", key])).expect("decodes");
        let shards = probe.record_shards(&rec.view());
        shards.and_then(|s| s.first().copied()).expect("one shard")
    };
    let failing_shard = shard_of("str");
    for threads in [1, 2, 4] {
        let e = engine();
        let result = replay_wal_parallel(&e, &wal, 1, Lsn::MAX, threads, |_| {});
        assert!(matches!(result, Err(Error::Replay { lsn, .. }) if lsn == at), "{threads} threads: {result:?}");
        let mut s = e.session();
        // Every record before it.
        for i in 45_000..50_000 {
            let got = e.execute(&mut s, &[b"GET", format!("a{}", i % 5000).as_bytes()]);
            assert_eq!(got, fastcache_core::Reply::Bulk(i.to_string().into_bytes()), "{threads} threads");
        }
        // Nothing after it in its shard (in any shard, serially).
        let mut after = 0;
        for i in 0..50_000 {
            let key = format!("b{i}");
            if e.execute(&mut s, &[b"EXISTS", key.as_bytes()]) == fastcache_core::Reply::Int(1) {
                assert!(threads > 1, "serial replay applied {key} after the failure");
                assert_ne!(shard_of(&key), failing_shard, "{threads} threads: {key} applied after the failure");
                after += 1;
            }
        }
        eprintln!("{threads} threads: {after} records after the failing one applied in other shards");
    }
    Ok(())
}

#[test]
fn with_several_failing_records_the_first_is_reported() -> TestResult {
    let dir = tempfile::tempdir()?;
    let wal = open(dir.path())?;
    let probe = engine();
    let worker_of = |key: &str| {
        let rec = Record::decode(&record(&["GET", key])).expect("decodes");
        let shards = probe.record_shards(&rec.view());
        shards.and_then(|s| s.first().copied()).expect("one shard") % 2
    };
    // A second string key that a different worker (of 2) owns.
    let other = (0..).map(|i| format!("str{i}")).find(|k| worker_of(k) != worker_of("str")).expect("a key");
    wal.append(&record(&["SET", &other, "v"]))?;
    // Whichever worker fails first, the lower LSN is reported.
    let lsns = log(&wal, 10_000, &[record(&["LPUSH", "str", "x"]), record(&["LPUSH", &other, "x"])], 10_000)?;
    for threads in [1, 2, 4] {
        for _ in 0..5 {
            let result = replay_wal_parallel(&engine(), &wal, 1, Lsn::MAX, threads, |_| {});
            assert!(
                matches!(result, Err(Error::Replay { lsn, .. }) if lsn == lsns[0]),
                "{threads} threads: {result:?}"
            );
        }
    }
    Ok(())
}
