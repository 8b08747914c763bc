//! WAL replay throughput into an empty engine, serial vs parallel (not
//! criterion: one round replays millions of records and takes seconds).
//!
//! ```text
//! cargo bench -p fastcache-recovery --bench replay [-- --records N --keys K --rounds R --threads T
//!                                                      --mset-every M --serial 0]
//! ```
//!
//! Writes N records (default 2,000,000) of `SET key:<rand> <64 bytes>` over
//! K keys (default 1,000,000) — what `cargo xtask bench --only restart`
//! logs — into a WAL in a temporary directory (`SyncPolicy::Never`), then
//! times [`recover`] (no snapshot: the whole log is replayed) into an empty
//! engine with 1 thread (the serial path) and with T threads (default 2),
//! alternating, R rounds each (default 5); prints every round and the
//! median in records per second. The page cache is warm, as after a
//! process crash. Dropping the engine is not timed.
//!
//! `--mset-every M` makes every M-th record an `MSET` of two random keys
//! instead (with T threads, a barrier unless both keys' shards belong to
//! one worker); `--serial 0` leaves out the serial rounds (for profiles).

use std::time::{Duration, Instant};

use fastcache_core::{Engine, Op, Record};
use fastcache_recovery::recover;
use fastcache_snapshot::SnapshotStore;
use fastcache_wal::{SyncPolicy, Wal, WalOptions};

// The server's allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let records = arg("--records", 2_000_000);
    let keys = arg("--keys", 1_000_000).max(1);
    let rounds = arg("--rounds", 5).max(1);
    let threads = arg("--threads", 2).max(1) as usize;
    let multi_every = arg("--mset-every", 0);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let wal_dir = dir.path().join("wal");
    let snap_dir = dir.path().join("snapshots");

    let start = Instant::now();
    let bytes = {
        let (wal, _) =
            Wal::open(&wal_dir, WalOptions { sync: SyncPolicy::Never, ..WalOptions::default() }).expect("open the WAL");
        let mut rng = fastrand::Rng::with_seed(42);
        let mut value = [0u8; 64];
        let mut buf = Vec::new();
        let mut bytes = 0u64;
        for i in 0..records {
            let key = format!("key:{:012}", rng.u64(..keys));
            rng.fill(&mut value);
            let op = if multi_every > 0 && i % multi_every == 0 {
                let other = format!("key:{:012}", rng.u64(..keys));
                Op::new(0, &[b"MSET", key.as_bytes(), &value, other.as_bytes(), &value])
            } else {
                Op::new(0, &[b"SET", key.as_bytes(), &value])
            };
            let rec = Record { ops: vec![op], time_ms: 1_700_000_000_000 };
            rec.encode_into(&mut buf);
            bytes += buf.len() as u64;
            wal.append(&buf).expect("append");
        }
        wal.close().expect("close the WAL");
        bytes
    };
    println!(
        "wrote {records} records ({:.1} MB of payload, key space {keys}) in {:.2} s",
        bytes as f64 / 1e6,
        start.elapsed().as_secs_f64()
    );

    let (wal, _) = Wal::open(&wal_dir, WalOptions::default()).expect("reopen the WAL");
    let store = SnapshotStore::open(&snap_dir, 1).expect("a snapshot store");
    let mut times: Vec<(usize, Vec<Duration>)> = vec![(1, Vec::new()), (threads, Vec::new())];
    // `--serial 0`: only the parallel replay (for a profile of it).
    if arg("--serial", 1) == 0 {
        times.remove(0);
    }
    let mut digests = Vec::new();
    for round in 0..rounds {
        for (t, samples) in &mut times {
            let engine = Engine::default();
            let report = recover(&engine, &wal, &store, None, *t, |_| {}).expect("recover");
            assert_eq!(report.wal.records, records);
            println!(
                "round {round}: threads {t}: {:.3} s, {:.0} records/s",
                report.elapsed.as_secs_f64(),
                records as f64 / report.elapsed.as_secs_f64()
            );
            samples.push(report.elapsed);
            if round == 0 {
                digests.push(engine.digest());
            }
            drop(engine);
        }
    }
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "serial and parallel replay disagree");
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    if times.len() < 2 {
        return;
    }
    let serial = median(&mut times[0].1);
    let parallel = median(&mut times[1].1);
    println!(
        "median: threads 1: {:.3} s ({:.0} records/s); threads {threads}: {:.3} s ({:.0} records/s); speedup {:.2}x",
        serial.as_secs_f64(),
        records as f64 / serial.as_secs_f64(),
        parallel.as_secs_f64(),
        records as f64 / parallel.as_secs_f64(),
        serial.as_secs_f64() / parallel.as_secs_f64()
    );
}
