//! Figures for incremental backups (not criterion: one round of the 5M-key
//! case takes a minute, and the figures are sizes as much as times).
//!
//! ```text
//! cargo bench -p fastcache-backup --bench backup [-- --keys N --changed-percent P --rounds R --secs S]
//! ```
//!
//! 1. Full vs incremental: N keys (default 5,000,000) with 64-byte values;
//!    a full backup (a chain's base); P% (default 1) of the keys
//!    overwritten; an incremental backup. Time and file size of each, and
//!    the time to load base + increment back into an engine.
//! 2. The longest SET (2 writer threads) during a full backup with
//!    1,000,000 keys in the change sets, and during an incremental backup of
//!    1,000,000 changed keys (both barriers hold every shard).
//! 3. The write cost of change tracking: engine-level SET throughput on 2
//!    threads (no journal), over a keyspace of 1,000,000 keys, tracking off
//!    vs on (fresh change sets, and with every key already tracked),
//!    alternating rounds of 3 s, median of 5; per second of wall time and
//!    per second of the writers' CPU time (steadier on a shared machine).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fastcache_backup::{load_chain, BackupDir};
use fastcache_core::{Engine, NoJournal};

// The server's allocator: glibc's would add a one-off stall after a base
// frees the previous change sets (malloc_consolidate), which the server
// never sees.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A 64-byte printable value derived from `seed`.
fn value(seed: u64, out: &mut [u8; 64]) {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for b in out.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"[(x & 63) as usize];
    }
}

/// SETs keys `key:{i}` for each `i` of `keys` (values from `salt`) on 2 threads.
fn set_range(engine: &Engine, keys: &[u64], salt: u64) {
    std::thread::scope(|s| {
        for part in keys.chunks(keys.len().div_ceil(2).max(1)) {
            s.spawn(move || {
                let mut session = engine.session();
                let mut v = [0u8; 64];
                for &i in part {
                    let key = format!("key:{i:010}");
                    value(i ^ salt, &mut v);
                    engine.execute_with(&mut session, &[b"SET", key.as_bytes(), &v], &mut NoJournal);
                }
            });
        }
    });
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn full_vs_incremental(keys: u64, percent: u64) -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let engine = Engine::default();
    engine.set_change_tracking(true);
    let start = Instant::now();
    let all: Vec<u64> = (0..keys).collect();
    set_range(&engine, &all, 0);
    println!("populated {keys} keys (64-byte values) in {:.1} s", start.elapsed().as_secs_f64());

    let backups = BackupDir::open(tmp.path(), 2)?;
    let mut lsn = 1;
    let full = backups.write_full(&engine, || lsn, |_| Ok(()))?;
    println!(
        "full backup:        {:>8.2} s  {:>9.1} MB file  {:>9.1} MB raw  {:>9} keys",
        full.elapsed.as_secs_f64(),
        mb(full.link.file_bytes),
        mb(full.raw_bytes),
        full.link.keys
    );

    let changed = keys * percent / 100;
    let mut rng = fastrand::Rng::with_seed(7);
    let mut picked: Vec<u64> = rand_distinct(&mut rng, keys, changed);
    picked.sort_unstable();
    let start = Instant::now();
    set_range(&engine, &picked, 0xfeed);
    println!("overwrote {changed} keys ({percent}%) in {:.2} s", start.elapsed().as_secs_f64());
    lsn += 1;
    let inc = backups.write_incremental(&engine, || lsn, |_| Ok(()))?;
    println!(
        "incremental backup: {:>8.3} s  {:>9.2} MB file  {:>9.2} MB raw  {:>9} keys",
        inc.elapsed.as_secs_f64(),
        mb(inc.link.file_bytes),
        mb(inc.raw_bytes),
        inc.link.keys
    );
    println!(
        "incremental / full: {:.2}% of the time, {:.2}% of the bytes",
        100.0 * inc.elapsed.as_secs_f64() / full.elapsed.as_secs_f64(),
        100.0 * inc.link.file_bytes as f64 / full.link.file_bytes as f64
    );

    let chain = backups.chains()?.pop().ok_or("no chain")?;
    let copy = Engine::default();
    let start = Instant::now();
    load_chain(&copy, &chain, None)?;
    println!("load base + increment into an engine: {:.2} s", start.elapsed().as_secs_f64());
    let (a, b) = (copy.digest(), engine.digest());
    println!("restored digest {}", if a == b { "matches" } else { "DIFFERS" });
    Ok(())
}

fn rand_distinct(rng: &mut fastrand::Rng, n: u64, k: u64) -> Vec<u64> {
    let mut seen = std::collections::HashSet::with_capacity(k as usize);
    while (seen.len() as u64) < k {
        seen.insert(rng.u64(..n));
    }
    seen.into_iter().collect()
}

/// CPU time this thread has used (user + system), from
/// `/proc/thread-self/stat` (clock ticks of 10 ms).
fn thread_cpu() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/thread-self/stat") else { return Duration::ZERO };
    // Fields after the command name (which is in parentheses): the state
    // is field 3, utime and stime are fields 14 and 15.
    let f: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, r)| r).split_whitespace().collect();
    let field = |n: usize| f.get(n - 3).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    let ticks = field(14) + field(15);
    Duration::from_millis(ticks * 10)
}

/// SETs on 2 threads for `dur`, random keys of `space`: (ops per second
/// of wall time, ops per second of the writers' CPU time).
fn set_throughput(engine: &Engine, space: u64, dur: Duration) -> (f64, f64) {
    let stop = AtomicBool::new(false);
    let (ops, cpu) = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2u64)
            .map(|t| {
                let stop = &stop;
                s.spawn(move || {
                    let cpu0 = thread_cpu();
                    let mut session = engine.session();
                    let mut rng = fastrand::Rng::with_seed(t + 1);
                    let mut v = [0u8; 64];
                    let mut n = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        for _ in 0..256 {
                            let i = rng.u64(..space);
                            let key = format!("key:{i:010}");
                            value(i ^ n, &mut v);
                            engine.execute_with(&mut session, &[b"SET", key.as_bytes(), &v], &mut NoJournal);
                            n += 1;
                        }
                    }
                    (n, thread_cpu().saturating_sub(cpu0))
                })
            })
            .collect();
        std::thread::sleep(dur);
        stop.store(true, Ordering::Relaxed);
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .fold((0, Duration::ZERO), |a, b| (a.0 + b.0, a.1 + b.1))
    });
    (ops as f64 / dur.as_secs_f64(), ops as f64 / cpu.as_secs_f64().max(1e-9))
}

fn tracking_cost(rounds: usize, secs: u64) {
    let space = 1_000_000;
    let dur = Duration::from_secs(secs);
    // off; on with empty change sets (every first write of a key inserts
    // it: the cost right after a backup); on with every key already in the
    // sets (later writes between two backups).
    let modes = ["off", "on, fresh sets", "on, keys already tracked"];
    let mut wall: Vec<Vec<f64>> = vec![Vec::new(); 3];
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); 3];
    for _ in 0..rounds {
        for mode in 0..3 {
            let engine = Engine::default();
            engine.set_change_tracking(mode == 2);
            let all: Vec<u64> = (0..space).collect();
            set_range(&engine, &all, 1);
            if mode == 1 {
                engine.set_change_tracking(true);
            }
            let (w, c) = set_throughput(&engine, space, dur);
            wall[mode].push(w);
            cpu[mode].push(c);
        }
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("SET throughput, 2 threads, 1M-key space, no journal; median of {rounds} rounds of {secs} s:");
    for mode in 0..3 {
        println!(
            "  tracking {:<26} {:>9.0} ops/s wall ({:.3} of off)   {:>9.0} ops per CPU-second ({:.3} of off)   \
             rounds (k ops/s wall): {:?}",
            modes[mode],
            median(&wall[mode]),
            median(&wall[mode]) / median(&wall[0]),
            median(&cpu[mode]),
            median(&cpu[mode]) / median(&cpu[0]),
            wall[mode].iter().map(|r| (*r / 1000.0).round() as u64).collect::<Vec<_>>()
        );
    }
}

/// The longest a SET waits while a backup runs: writers on 2 threads
/// during a full backup of 1,000,000 keys that are all in the change sets,
/// then during an incremental backup of 1,000,000 changed keys; and how
/// long a plain snapshot's barrier holds every shard, for comparison.
fn pauses(tracked: u64) -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let engine = Engine::default();
    engine.set_change_tracking(true);
    let all: Vec<u64> = (0..tracked).collect();
    set_range(&engine, &all, 2);
    let start = Instant::now();
    let (cursor, ()) = engine.begin_snapshot(|| ()).map_err(|_| "busy")?;
    let plain = start.elapsed();
    drop(cursor);

    let backups = BackupDir::open(tmp.path(), 2)?;
    let full = max_latency_during(&engine, tracked, || backups.write_full(&engine, || 1, |_| Ok(())).map(|_| ()))?;
    set_range(&engine, &all, 3);
    let inc =
        max_latency_during(&engine, tracked, || backups.write_incremental(&engine, || 2, |_| Ok(())).map(|_| ()))?;
    println!(
        "longest SET during: a full backup with {tracked} tracked keys {full:?}; an incremental of {tracked} \
         changed keys {inc:?} (plain snapshot barrier: {plain:?})"
    );
    Ok(())
}

/// Runs `f` while 2 threads SET random keys; the longest single SET.
fn max_latency_during(
    engine: &Engine,
    space: u64,
    f: impl FnOnce() -> Result<(), fastcache_backup::Error>,
) -> Result<Duration, Box<dyn std::error::Error>> {
    let stop = AtomicBool::new(false);
    let (result, worst) = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2u64)
            .map(|t| {
                let stop = &stop;
                s.spawn(move || {
                    let mut session = engine.session();
                    let mut rng = fastrand::Rng::with_seed(t + 10);
                    let mut worst = Duration::ZERO;
                    let v = [b'x'; 64];
                    while !stop.load(Ordering::Relaxed) {
                        let key = format!("key:{:010}", rng.u64(..space));
                        let start = Instant::now();
                        engine.execute_with(&mut session, &[b"SET", key.as_bytes(), &v], &mut NoJournal);
                        worst = worst.max(start.elapsed());
                    }
                    worst
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(50));
        let result = f();
        stop.store(true, Ordering::Relaxed);
        let worst = workers.into_iter().map(|w| w.join().unwrap_or_default()).max().unwrap_or_default();
        (result, worst)
    });
    result?;
    Ok(worst)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` passes `--bench`; a plain `cargo test --benches` run
    // does not, and only checks that the program starts.
    if !std::env::args().any(|a| a == "--bench") {
        return Ok(());
    }
    let keys = arg("--keys", 5_000_000);
    let percent = arg("--changed-percent", 1);
    full_vs_incremental(keys, percent)?;
    pauses(1_000_000)?;
    tracking_cost(arg("--rounds", 5) as usize, arg("--secs", 3));
    Ok(())
}
