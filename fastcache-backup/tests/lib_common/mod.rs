//! Helpers shared by the library's integration tests: an engine that
//! journals into a real WAL and keeps every record, so any point of its
//! history can be rebuilt by replaying the kept log onto a fresh engine.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::Path;
use std::sync::{Arc, Mutex};

use fastcache_core::{Engine, EngineConfig, JournalError, ManualClock, Record, Session};
use fastcache_snapshot::SnapshotStore;
use fastcache_wal::{SyncPolicy, Wal, WalOptions};

/// Errors of any kind, so tests can use `?` everywhere.
pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// Where the manual clock starts (2023-11-14, unix ms).
pub const T0: u64 = 1_700_000_000_000;

/// A live engine with a WAL and a copy of every record it logged.
pub struct Node {
    pub engine: Engine,
    pub clock: ManualClock,
    pub wal: Wal,
    log: Mutex<Vec<(u64, Record)>>,
}

impl Node {
    /// An engine with change tracking on, journalling into a new WAL in
    /// `wal_dir` (small segments, so logs span several).
    pub fn open(wal_dir: &Path) -> TestResult<Arc<Node>> {
        let clock = ManualClock::new(T0);
        let engine = Engine::new(EngineConfig { clock: Arc::new(clock.clone()), ..EngineConfig::default() });
        engine.set_change_tracking(true);
        let opts = WalOptions { segment_size: 256 << 10, sync: SyncPolicy::Never, ..WalOptions::default() };
        let (wal, _) = Wal::open(wal_dir, opts)?;
        Ok(Arc::new(Node { engine, clock, wal, log: Mutex::new(Vec::new()) }))
    }

    /// Runs one command; its record (if it wrote) goes to the WAL and the
    /// kept log. The clock moves 1 ms per command.
    pub fn exec(&self, s: &mut Session, words: &[String]) {
        self.clock.advance(1);
        let argv: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        let mut journal = |r: &Record| {
            let lsn = self.wal.append(&r.encode()).map_err(|e| JournalError { message: format!("ERR {e}") })?;
            self.log.lock().map_err(|_| JournalError { message: "ERR poisoned".into() })?.push((lsn, r.clone()));
            Ok(())
        };
        self.engine.execute_with(s, &argv, &mut journal);
        assert_eq!(self.wal.poisoned(), None, "the test's WAL failed");
    }

    /// Runs `n` random commands from `seed` on one session.
    pub fn run(&self, seed: u64, n: usize, with_flush: bool) {
        let mut s = self.engine.session();
        let mut rng = fastrand::Rng::with_seed(seed);
        for _ in 0..n {
            self.exec(&mut s, &random_command(&mut rng, with_flush));
        }
    }

    /// The log's last LSN (what a server passes as `lsn_at`).
    pub fn lsn(&self) -> u64 {
        self.wal.last_lsn()
    }

    /// The kept log in LSN order.
    pub fn log(&self) -> Vec<(u64, Record)> {
        let mut log = self.log.lock().map(|l| l.clone()).unwrap_or_default();
        log.sort_by_key(|(lsn, _)| *lsn);
        log
    }

    /// Closes the WAL (a restore must take its lock) and returns the kept
    /// log. Every other handle of the node must be gone.
    pub fn finish(self: Arc<Node>) -> TestResult<History> {
        let node = Arc::try_unwrap(self).map_err(|_| "the node is still shared")?;
        let log = node.log();
        node.wal.close()?;
        Ok(History { log })
    }
}

/// The log a node wrote, to rebuild any point of its history.
pub struct History {
    log: Vec<(u64, Record)>,
}

impl History {
    /// The last LSN.
    pub fn last(&self) -> u64 {
        self.log.last().map_or(0, |(l, _)| *l)
    }

    /// A fresh engine with the log replayed up to and including `lsn`.
    pub fn state_at(&self, lsn: u64) -> TestResult<Engine> {
        let e = Engine::default();
        for (l, r) in &self.log {
            if *l > lsn {
                break;
            }
            e.apply_record(r)?;
        }
        Ok(e)
    }

    /// Applies every record of the log to `engine`.
    pub fn apply_to(&self, engine: &Engine) -> TestResult {
        for (_, r) in &self.log {
            engine.apply_record(r)?;
        }
        Ok(())
    }

    /// The LSN a restore to time `t` must reach: just before the first
    /// record (in LSN order) written after `t`.
    pub fn lsn_at_time(&self, t: u64) -> u64 {
        match self.log.iter().find(|(_, r)| r.time_ms > t) {
            Some((lsn, _)) => lsn - 1,
            None => self.last(),
        }
    }

    /// The time of the record with LSN `lsn`.
    pub fn time_of(&self, lsn: u64) -> u64 {
        self.log.iter().find(|(l, _)| *l == lsn).map_or(0, |(_, r)| r.time_ms)
    }
}

/// A random write (or SELECT) over a few hundred keys of every type, in
/// three databases, with expiry, moves, renames and (optionally) FLUSHDB.
pub fn random_command(rng: &mut fastrand::Rng, with_flush: bool) -> Vec<String> {
    let k = format!("k{}", rng.u32(..400));
    let e = format!("e{}", rng.u32(..10));
    let n = rng.i64(0..50).to_string();
    let w: Vec<&str> = match rng.u32(..16) {
        0 | 1 => vec!["SET", &k, &n],
        2 => vec!["INCRBY", &k, &n],
        3 => vec!["DEL", &k],
        4 => vec!["RPUSH", &k, &e],
        5 => vec!["HSET", &k, &e, &n],
        6 => vec!["SADD", &k, &e],
        7 => vec!["ZADD", &k, &n, &e],
        8 => vec!["EXPIRE", &k, "1000"],
        9 => vec!["SET", &k, &e, "PX", "40"],
        10 => vec!["RENAME", &k, "k3"],
        11 => vec!["MOVE", &k, "1"],
        12 => vec!["SELECT", "1"],
        13 => vec!["SELECT", "0"],
        14 => vec!["SELECT", "2"],
        _ if with_flush && rng.u32(..40) == 0 => vec!["FLUSHDB"],
        _ => vec!["SPOP", &k],
    };
    w.into_iter().map(String::from).collect()
}

/// The state of a data directory as a server would load it: its newest
/// snapshot; and the facts about its WAL: (last LSN, records held).
pub fn load_data_dir_state(dir: &Path) -> TestResult<(Engine, u64, usize)> {
    let store = SnapshotStore::open(&dir.join("snapshots"), 2)?;
    let newest = store.list()?.into_iter().next().ok_or("no snapshot")?;
    let engine = Engine::default();
    let reader = store.open_snapshot(&newest)?;
    reader.load_parallel(2, |raw, _| engine.load_snapshot_chunk(raw).map(|_| ()))?;
    let (wal, _) = Wal::open(&dir.join("wal"), WalOptions::default())?;
    let last = wal.last_lsn();
    let records = wal.reader(0)?.count();
    wal.close()?;
    assert_eq!(newest.lsn, last, "the WAL continues right after the snapshot");
    Ok((engine, last, records))
}

/// [`fastcache_backup::restore`] with a small first WAL segment in the
/// destination (tests restore dozens of times).
pub fn restore(
    src: &Path,
    dest: &Path,
    target: fastcache_backup::Target,
    force: bool,
) -> Result<fastcache_backup::RestoreReport, fastcache_backup::Error> {
    let opts = fastcache_backup::RestoreOptions { force, wal_segment_size: 64 << 10, ..Default::default() };
    fastcache_backup::restore_with(src, dest, target, &opts, |_| {})
}

/// Flips one bit of a file.
pub fn flip_bit(path: &Path, offset: usize, bit: u8) -> TestResult {
    let mut bytes = std::fs::read(path)?;
    bytes[offset] ^= 1 << bit;
    std::fs::write(path, bytes)?;
    Ok(())
}
