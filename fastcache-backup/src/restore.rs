//! Rebuilding a data directory from backups (+ a WAL) at a chosen point.
//!
//! A restore reads its source, builds the target state in a scratch engine
//! and only then touches the destination: every refusal (a broken chain, an
//! unreachable target, a gap in the log) leaves the destination as it was.
//! The destination gets what a server would have written at that point:
//! `snapshots/` with one full snapshot at the LSN reached, and an empty
//! `wal/` that continues after it, so `fastcache-server` started there
//! recovers exactly that state and numbers its writes on from there.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fastcache_core::{Engine, EngineConfig};
use fastcache_snapshot::{SnapshotMeta, SnapshotStore, WriterOptions};
use fastcache_wal::{Wal, WalOptions};

use crate::chain::{default_threads, load_links, Chain, Link, LinkKind, LoadProgress};
use crate::dir::{write_all, BackupDir};
use crate::error::{ChainProblem, Error, Result};
use crate::lock::is_locked;
use crate::manifest::sync_dir;
use crate::naming::parse_chain_dir_name;
use crate::replay::{open_existing, replay, Stop};

/// The point a restore goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// Everything the source holds: the newest chain, then the whole WAL.
    Latest,
    /// The state after the record with this LSN, and no later one.
    Lsn(u64),
    /// The state before the first record written after this moment (unix
    /// milliseconds). Records of format version 1 carry no time (0): they
    /// are treated as written before any moment and applied, so a log of
    /// such records can be cut by LSN only.
    Time(u64),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Latest => f.write_str("the latest state"),
            Target::Lsn(n) => write!(f, "LSN {n}"),
            Target::Time(t) => write!(f, "time {t} (unix ms)"),
        }
    }
}

/// How to restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreOptions {
    /// Replace the destination's `wal/` and `snapshots/` if it is not empty
    /// (anything else in it is left alone). Never while a server has it
    /// open.
    pub force: bool,
    /// Threads loading a full backup (default: every core).
    pub threads: usize,
    /// Databases of the scratch engine (default 16; raise it like the
    /// server's `FASTCACHE_DATABASES` for data in higher databases).
    pub databases: usize,
    /// Size of the destination's first WAL segment (default 64 MiB, the
    /// server's default; later segments get the server's setting).
    pub wal_segment_size: u64,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            force: false,
            threads: default_threads(),
            databases: EngineConfig::default().databases,
            wal_segment_size: WalOptions::default().segment_size,
        }
    }
}

/// Where a restore is, for progress bars.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestoreProgress {
    /// Loading a backup file.
    Backup(LoadProgress),
    /// Replaying the WAL: records applied so far and the last LSN.
    Wal {
        /// Records applied.
        records: u64,
        /// The last LSN applied.
        lsn: u64,
    },
    /// Writing the destination's snapshot.
    Writing,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// The chain directory (or, for a data directory's snapshot, the
    /// snapshot directory) restored from; `None` when the WAL alone was
    /// replayed from its first record.
    pub source: Option<PathBuf>,
    /// The backup files loaded, base first.
    pub links: Vec<Link>,
    /// The LSN the backup files reached.
    pub backup_lsn: u64,
    /// WAL records replayed after them.
    pub wal_records: u64,
    /// Of those, records without a time (format version 1).
    pub untimed_records: u64,
    /// The time of the last timed record replayed.
    pub last_record_time_ms: Option<u64>,
    /// The LSN of the restored state: it holds every record up to it and
    /// none after it.
    pub lsn: u64,
    /// Keys in the restored state.
    pub keys: u64,
    /// The snapshot written into the destination.
    pub snapshot: PathBuf,
    /// How long it took.
    pub elapsed: Duration,
}

/// Restores `dest_data_dir` from `src` to `target`; see
/// [`restore_with`]. `force` replaces a non-empty destination's data.
///
/// # Errors
/// As [`restore_with`].
pub fn restore(src: &Path, dest_data_dir: &Path, target: Target, force: bool) -> Result<RestoreReport> {
    restore_with(src, dest_data_dir, target, &RestoreOptions { force, ..RestoreOptions::default() }, |_| {})
}

/// A full backup or a chain to start from.
struct Candidate {
    /// (base LSN, base creation time).
    key: (u64, u64),
    dir: PathBuf,
    chain: Result<Chain>,
}

/// Every chain in `src` and `src/backups`, and every snapshot of
/// `src/snapshots` as a chain of one, newest first.
fn candidates(src: &Path) -> Result<Vec<Candidate>> {
    let mut out = Vec::new();
    for root in [src.to_path_buf(), src.join("backups")] {
        if !root.is_dir() {
            continue;
        }
        for dir in BackupDir::open_read_only(&root)?.chain_dirs()? {
            let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let Some(key) = parse_chain_dir_name(name) else { continue };
            let chain = Chain::open(&dir);
            out.push(Candidate { key, dir, chain });
        }
    }
    let snapshots = src.join("snapshots");
    if snapshots.join(fastcache_snapshot::MANIFEST_FILE).is_file() {
        let store = SnapshotStore::open(&snapshots, fastcache_snapshot::DEFAULT_RETAIN)?;
        for s in store.list()? {
            let base = Link {
                kind: LinkKind::Full,
                path: s.path.clone(),
                from_lsn: 0,
                to_lsn: s.lsn,
                created_unix_ms: s.created_unix_ms,
                keys: s.keys,
                file_bytes: s.file_bytes,
            };
            let chain = Chain { dir: snapshots.clone(), base, incrementals: Vec::new() };
            out.push(Candidate { key: (s.lsn, s.created_unix_ms), dir: snapshots.clone(), chain: Ok(chain) });
        }
    }
    out.sort_by_key(|c| std::cmp::Reverse(c.key));
    Ok(out)
}

/// Refuses a destination that holds data (unless forced), that a server
/// has open, or that overlaps the source.
fn check_dest(src: &Path, dest: &Path, force: bool) -> Result<()> {
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (src_c, dest_c) = (canonical(src), canonical(dest));
    let overlaps = dest_c == src_c
        || ["wal", "snapshots"].iter().any(|d| src_c.starts_with(dest_c.join(d)) || dest_c.starts_with(src_c.join(d)));
    if overlaps {
        return Err(Error::InvalidArgument(format!(
            "the destination {} overlaps the source {}",
            dest.display(),
            src.display()
        )));
    }
    if !dest.exists() {
        return Ok(());
    }
    let mut names: Vec<String> = std::fs::read_dir(dest)
        .map_err(|e| Error::io("list destination", dest, e))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    if !names.is_empty() && !force {
        let mut entries = names.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
        if names.len() > 5 {
            entries.push_str(&format!(" and {} more", names.len() - 5));
        }
        return Err(Error::DestNotEmpty { path: dest.to_path_buf(), entries });
    }
    let wal = dest.join("wal");
    if is_locked(&wal)? {
        return Err(Error::Locked { path: wal.join(crate::lock::LOCK_FILE) });
    }
    Ok(())
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Restores the data directory `dest_data_dir` from `src` to `target`.
///
/// `src` is a backup directory (chains in it or in `src/backups`),
/// optionally with a copy of the WAL in `src/wal`; a data directory's
/// snapshots (`src/snapshots`) count as chains of one full backup each, so
/// a stopped server's data directory is a source too.
///
/// 1. The newest chain whose base is at or before the target (for a time:
///    taken at or before it) is chosen, and its links up to the last one at
///    or before the target are loaded into a scratch engine, every byte
///    verified; a broken chain is refused, naming the file — never passed
///    over for an older one.
/// 2. WAL records after that link are replayed: up to and including LSN N
///    for [`Target::Lsn`], up to the first record written after T for
///    [`Target::Time`] (see there for records without a time), all of them
///    for [`Target::Latest`]. A log that does not continue from the link is
///    refused. Without a WAL, an LSN target must be a link's own LSN; a
///    time target gives the newest backup taken at or before it.
/// 3. `dest_data_dir/snapshots/` gets one full snapshot at the LSN reached
///    and `dest_data_dir/wal/` an empty log continuing after it.
///
/// # Errors
/// `DestNotEmpty` (without `force`), `Locked` (a server has the
/// destination or the source WAL open), `InvalidArgument` (source and
/// destination overlap); `NoBackup`, `Unreachable`, `WalGap` when the
/// target cannot be reached exactly; `BrokenChain` naming the file;
/// `Wal`, `Record`, `Replay`, `Snapshot`, `Io`. Nothing in the destination
/// is changed by a refusal; a failure while writing it leaves it to be
/// restored again.
pub fn restore_with(
    src: &Path,
    dest_data_dir: &Path,
    target: Target,
    opts: &RestoreOptions,
    mut progress: impl FnMut(RestoreProgress),
) -> Result<RestoreReport> {
    let start = Instant::now();
    if !src.is_dir() {
        return Err(Error::io(
            "open restore source",
            src,
            std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
        ));
    }
    check_dest(src, dest_data_dir, opts.force)?;

    let found = candidates(src)?;
    let oldest = found.last().map(|c| c.key);
    let chosen = found.into_iter().find(|c| match target {
        Target::Latest => true,
        Target::Lsn(n) => c.key.0 <= n,
        Target::Time(t) => c.key.1 <= t,
    });
    let engine = Engine::new(EngineConfig { databases: opts.databases, ..EngineConfig::default() });
    let mut report = RestoreReport {
        source: None,
        links: Vec::new(),
        backup_lsn: 0,
        wal_records: 0,
        untimed_records: 0,
        last_record_time_ms: None,
        lsn: 0,
        keys: 0,
        snapshot: PathBuf::new(),
        elapsed: Duration::ZERO,
    };
    if let Some(c) = chosen {
        let chain = c.chain.map_err(|e| {
            let file = crate::manifest::path_in(&c.dir);
            Error::broken(&c.dir, ChainProblem::Manifest { file, error: Box::new(e) })
        })?;
        let n = chain
            .incrementals
            .iter()
            .take_while(|l| match target {
                Target::Latest => true,
                Target::Lsn(n) => l.to_lsn <= n,
                Target::Time(t) => l.created_unix_ms <= t,
            })
            .count();
        report.backup_lsn =
            load_links(&engine, &chain, n, opts.threads.max(1), &mut |p| progress(RestoreProgress::Backup(p)))?;
        report.links = chain.links().take(1 + n).cloned().collect();
        report.source = Some(chain.dir.clone());
    }

    let wal_dir = src.join("wal");
    let wal = open_existing(&wal_dir)?;
    if report.source.is_none() && wal.is_none() {
        let reason = match oldest {
            Some((lsn, created)) => {
                format!("the oldest backup is at LSN {lsn} (taken at {created} unix ms) and there is no WAL")
            }
            None => "no chain, snapshot or WAL was found".into(),
        };
        return Err(Error::NoBackup { src: src.to_path_buf(), target, reason });
    }
    report.lsn = report.backup_lsn;
    let wal_last = wal.as_ref().map(Wal::last_lsn);
    let stop = match target {
        Target::Lsn(n) if n == report.backup_lsn => None,
        Target::Lsn(n) => {
            if wal_last.is_none_or(|last| last < n) {
                return Err(Error::Unreachable {
                    src: src.to_path_buf(),
                    target,
                    reachable: wal_last.unwrap_or(0).max(report.backup_lsn),
                    has_wal: wal.is_some(),
                });
            }
            Some(Stop { after_lsn: Some(n), after_time_ms: None })
        }
        Target::Latest => Some(Stop::default()),
        Target::Time(t) => Some(Stop { after_lsn: None, after_time_ms: Some(t) }),
    };
    if let (Some(stop), Some(wal), Some(last)) = (stop, wal.as_ref(), wal_last) {
        if last > report.backup_lsn {
            let from = report.backup_lsn + 1;
            let done = replay(&engine, wal, &wal_dir, from, stop, &mut |records, lsn| {
                progress(RestoreProgress::Wal { records, lsn });
            })
            .map_err(|e| match (e, oldest) {
                // Nothing to start from but the log, and the log does not
                // start at the beginning: say what the backups hold.
                (Error::WalGap { wal_first, .. }, Some((lsn, created))) if report.source.is_none() => Error::NoBackup {
                    src: src.to_path_buf(),
                    target,
                    reason: format!(
                        "the oldest backup is at LSN {lsn} (taken at {created} unix ms) and the WAL starts \
                             at LSN {wal_first}"
                    ),
                },
                (e, _) => e,
            })?;
            report.wal_records = done.records;
            report.untimed_records = done.untimed;
            report.last_record_time_ms = done.last_time_ms;
            report.lsn = match (target, done.stopped_before) {
                (Target::Lsn(n), _) => n,
                (_, Some(next)) => next - 1,
                _ => last,
            };
        }
    }
    if let Some(wal) = wal {
        wal.close()?;
    }

    // The destination is touched only from here on.
    progress(RestoreProgress::Writing);
    write_data_dir(&engine, dest_data_dir, report.lsn, opts).map(|(snapshot, keys)| {
        report.snapshot = snapshot;
        report.keys = keys;
    })?;
    report.elapsed = start.elapsed();
    Ok(report)
}

/// Writes `engine`'s state into `dest` as a data directory at `lsn`: a
/// published snapshot and an empty WAL continuing after it. With `force`,
/// the destination's `wal/` and `snapshots/` are removed first.
fn write_data_dir(engine: &Engine, dest: &Path, lsn: u64, opts: &RestoreOptions) -> Result<(PathBuf, u64)> {
    std::fs::create_dir_all(dest).map_err(|e| Error::io("create destination", dest, e))?;
    if opts.force {
        for sub in ["wal", "snapshots"] {
            let path = dest.join(sub);
            match std::fs::remove_dir_all(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove the destination's old data", path, e)),
            }
        }
        sync_dir(dest)?;
    }
    let store = SnapshotStore::open(&dest.join("snapshots"), fastcache_snapshot::DEFAULT_RETAIN)?;
    let (mut cursor, ()) = engine.begin_snapshot(|| ()).map_err(|_| Error::Busy)?;
    let mut w = store.create(SnapshotMeta { lsn, created_unix_ms: unix_ms() }, WriterOptions::default())?;
    write_all(&mut cursor, &mut w)?;
    drop(cursor);
    let info = w.finish()?;
    store.publish(&info)?;
    let wal_opts = WalOptions { min_next_lsn: lsn + 1, segment_size: opts.wal_segment_size, ..WalOptions::default() };
    let (wal, _) = Wal::open(&dest.join("wal"), wal_opts)?;
    wal.close()?;
    sync_dir(dest)?;
    Ok((info.path, info.keys))
}
