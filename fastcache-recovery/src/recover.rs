//! Crash recovery: the newest snapshot that verifies, then the WAL after it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use fastcache_backup::BackupDir;
use fastcache_core::Engine;
use fastcache_snapshot::{SnapshotEntry, SnapshotStore};
use fastcache_wal::{Lsn, Wal};

use crate::error::{Error, Result};
use crate::replay::{replay_wal_parallel, ReplayReport};

/// The snapshot recovery loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedSnapshot {
    /// Its file.
    pub path: PathBuf,
    /// The LSN it is consistent at.
    pub lsn: Lsn,
    /// Keys loaded.
    pub keys: u64,
    /// Size of the file.
    pub file_bytes: u64,
    /// Decompressed size of its entries.
    pub raw_bytes: u64,
    /// How long loading took.
    pub elapsed: Duration,
}

/// A snapshot recovery could not use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedSnapshot {
    /// Its file.
    pub path: PathBuf,
    /// What was wrong with it.
    pub reason: String,
}

/// What [`recover`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// The snapshot loaded, if any.
    pub snapshot: Option<LoadedSnapshot>,
    /// Newer snapshots that were damaged and passed over, newest first.
    pub skipped: Vec<SkippedSnapshot>,
    /// The LSN incremental backups brought the state to, if any were used.
    pub backup_lsn: Option<Lsn>,
    /// The WAL records replayed after the snapshot (and backups).
    pub wal: ReplayReport,
    /// Total time.
    pub elapsed: Duration,
}

/// Where recovery is, for progress lines and `INFO persistence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Loading a snapshot: chunks done of the total.
    Snapshot {
        /// Chunks loaded.
        chunks_done: u64,
        /// Chunks in the file.
        chunks: u64,
    },
    /// Replaying the WAL: records so far, the LSN reached and the last.
    Wal {
        /// Records replayed so far.
        records: u64,
        /// The last LSN replayed.
        lsn: Lsn,
        /// The log's last LSN (the goal).
        last_lsn: Lsn,
    },
}

/// Rebuilds `engine` (which must be empty) from the newest snapshot in
/// `snapshots` whose checksums verify, then the records of `wal` after that
/// snapshot's LSN.
///
/// A damaged snapshot is logged and passed over for the next older one,
/// which needs a longer stretch of WAL; the server keeps WAL back to its
/// oldest retained snapshot for exactly this. With no usable snapshot, the
/// whole WAL is replayed — if it still starts at its first record.
///
/// `threads` decode snapshot chunks and replay the WAL in parallel
/// ([`crate::replay_wal_parallel`]). `progress` is called now and then.
///
/// # Errors
/// - [`Error::Gap`] if the WAL no longer holds the records right after the
///   chosen snapshot (or the beginning of history when no snapshot is
///   usable): starting would silently lose writes, so recovery refuses.
/// - [`Error::Wal`], [`Error::Record`], [`Error::Replay`] from the replay.
pub fn recover(
    engine: &Engine,
    wal: &Wal,
    snapshots: &SnapshotStore,
    backups: Option<&BackupDir>,
    threads: usize,
    mut progress: impl FnMut(Progress),
) -> Result<RecoveryReport> {
    let start = Instant::now();
    let mut report = RecoveryReport::default();
    let wal_first = wal.stats().first_lsn;
    let wal_last = wal.last_lsn();
    let candidates = match snapshots.list() {
        Ok(c) => c,
        Err(e) if e.is_corruption() => {
            tracing::error!("the snapshot MANIFEST is damaged ({e}); rebuilding it from the snapshot files present");
            snapshots.rebuild_manifest().map_err(Error::Snapshots)?
        }
        Err(e) => return Err(Error::Snapshots(e)),
    };
    for candidate in candidates {
        let path = candidate.path.clone();
        match load_one(engine, snapshots, &candidate, threads, &mut progress) {
            Ok(loaded) => {
                tracing::info!(
                    file = %loaded.path.display(),
                    lsn = loaded.lsn,
                    keys = loaded.keys,
                    bytes = loaded.file_bytes,
                    elapsed_ms = loaded.elapsed.as_millis() as u64,
                    "snapshot loaded"
                );
                report.snapshot = Some(loaded);
                break;
            }
            Err(LoadFailure::Unusable(reason)) => {
                return Err(Error::Unloadable { path, reason });
            }
            Err(LoadFailure::Damaged(reason)) => {
                tracing::error!(
                    file = %path.display(),
                    "snapshot is unusable ({reason}); falling back to the previous one and a longer stretch of WAL"
                );
                // Out of the manifest (renamed *.bad, kept for inspection),
                // so retention never deletes a good older snapshot in
                // favour of it.
                match snapshots.drop_snapshot(&path) {
                    Ok(Some(bad)) => tracing::warn!(renamed_to = %bad.display(), "damaged snapshot set aside"),
                    Ok(None) => {}
                    Err(e) => tracing::warn!("could not set the damaged snapshot aside ({e})"),
                }
                report.skipped.push(SkippedSnapshot { path, reason });
                // A partly loaded snapshot must not leak into the next try.
                clear(engine);
            }
        }
    }
    let mut from = report.snapshot.as_ref().map_or(0, |s| s.lsn);
    if let Some(backups) = backups {
        from = use_backups(engine, snapshots, backups, &mut report, from, wal_first, wal_last, threads)?;
    }
    // Records (from, wal_last] must all be in the log.
    if wal_last > from && wal_first > from + 1 {
        return Err(Error::Gap {
            needed_from: from + 1,
            wal_first,
            snapshot: report.snapshot.as_ref().map(|s| s.path.clone()),
            skipped: report.skipped.iter().map(|s| format!("{}: {}", s.path.display(), s.reason)).collect(),
        });
    }
    if wal_last > from {
        tracing::info!(from = from + 1, to = wal_last, "replaying the WAL after the snapshot");
    }
    report.wal = replay_wal_parallel(engine, wal, from + 1, Lsn::MAX, threads, |r| {
        progress(Progress::Wal { records: r.records, lsn: r.last_lsn, last_lsn: wal_last });
        let done = r.last_lsn.saturating_sub(from) as f64 / wal_last.saturating_sub(from).max(1) as f64;
        tracing::info!(
            records = r.records,
            percent = format!("{:.1}", done * 100.0),
            records_per_sec = (r.records as f64 / r.elapsed.as_secs_f64().max(1e-9)) as u64,
            "replaying the WAL…"
        );
    })?;
    report.elapsed = start.elapsed();
    Ok(report)
}

/// Rebuilds the state at `to`, an LSN of `wal`, from the newest snapshot at
/// or below it whose checksums verify and the records up to `to` — what
/// came after `to` is left out. For a node that rejoins a new primary whose
/// history forked from its own at `to` (its records after `to` were never
/// replicated). `engine` is emptied first. Neither the log nor the
/// snapshots are changed. `threads` load the snapshot and replay the log.
///
/// # Errors
/// [`Error::Gap`] if no snapshot at or below `to` and the log together
/// reach `to`; [`Error::Wal`], [`Error::Record`], [`Error::Replay`] from the
/// replay.
pub fn rewind(
    engine: &Engine,
    wal: &Wal,
    snapshots: &SnapshotStore,
    to: Lsn,
    threads: usize,
) -> Result<RecoveryReport> {
    let start = Instant::now();
    clear(engine);
    let mut report = RecoveryReport::default();
    let candidates = snapshots.list().map_err(Error::Snapshots)?;
    for candidate in candidates.iter().filter(|c| c.lsn <= to) {
        match load_one(engine, snapshots, candidate, threads, &mut |_| {}) {
            Ok(loaded) => {
                report.snapshot = Some(loaded);
                break;
            }
            Err(LoadFailure::Damaged(reason) | LoadFailure::Unusable(reason)) => {
                report.skipped.push(SkippedSnapshot { path: candidate.path.clone(), reason });
                clear(engine);
            }
        }
    }
    let from = report.snapshot.as_ref().map_or(0, |s| s.lsn);
    let gap = || Error::Gap {
        needed_from: from + 1,
        wal_first: wal.stats().first_lsn,
        snapshot: report.snapshot.as_ref().map(|s| s.path.clone()),
        skipped: report.skipped.iter().map(|s| format!("{}: {}", s.path.display(), s.reason)).collect(),
    };
    if to > from {
        if wal.stats().first_lsn > from + 1 || wal.last_lsn() < to {
            return Err(gap());
        }
        let replayed = replay_wal_parallel(engine, wal, from + 1, to, threads, |_| {})?;
        if replayed.last_lsn != to {
            return Err(gap());
        }
        report.wal = replayed;
    }
    engine.reset_dirty();
    report.elapsed = start.elapsed();
    Ok(report)
}

/// The seed's step 3: incremental backups newer than the loaded snapshot
/// move the state forward (less WAL to replay), and with no usable snapshot
/// the newest backup chain is the starting point when the WAL no longer
/// reaches back to the beginning. A backup never replaces newer state: an
/// incremental `(from, to]` is applied only to a state inside its range,
/// and the WAL after its end completes it, so the result is the same with or
/// without backups. A damaged backup is logged and ignored.
#[allow(clippy::too_many_arguments)]
fn use_backups(
    engine: &Engine,
    snapshots: &SnapshotStore,
    backups: &BackupDir,
    report: &mut RecoveryReport,
    from: Lsn,
    wal_first: Lsn,
    wal_last: Lsn,
    threads: usize,
) -> Result<Lsn> {
    let chains = match backups.chains() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("backups in {} are not readable ({e}); recovering without them", backups.dir().display());
            return Ok(from);
        }
    };
    let Some(chain) = chains.last() else { return Ok(from) };
    if report.snapshot.is_some() {
        match fastcache_backup::apply_incrementals(engine, chain, from, None) {
            Ok(reached) if reached > from => {
                tracing::info!(chain = %chain.dir.display(), from, reached, "incremental backups applied after the snapshot");
                report.backup_lsn = Some(reached);
                return Ok(reached);
            }
            Ok(_) => return Ok(from),
            Err(e) => {
                tracing::error!(
                    "incremental backups of {} do not apply ({e}); reloading the snapshot without them",
                    chain.dir.display()
                );
                clear(engine);
                let Some(loaded) = report.snapshot.clone() else { return Ok(0) };
                let entry = snapshots
                    .list()
                    .map_err(Error::Snapshots)?
                    .into_iter()
                    .find(|e| e.path == loaded.path)
                    .ok_or_else(|| Error::Unloadable { path: loaded.path.clone(), reason: "vanished".into() })?;
                load_one(engine, snapshots, &entry, threads, &mut |_| {}).map_err(|f| match f {
                    LoadFailure::Damaged(r) | LoadFailure::Unusable(r) => {
                        Error::Unloadable { path: loaded.path.clone(), reason: r }
                    }
                })?;
                return Ok(from);
            }
        }
    }
    // No snapshot: the whole WAL, if it starts at the beginning; otherwise
    // the newest chain, if the WAL continues from its end.
    if wal_last == 0 || wal_first <= 1 {
        return Ok(from);
    }
    if chain.lsn() + 1 < wal_first {
        return Ok(from);
    }
    match fastcache_backup::load_chain(engine, chain, None) {
        Ok(reached) => {
            tracing::warn!(chain = %chain.dir.display(), reached, "no usable snapshot: recovering from the newest backup chain");
            report.backup_lsn = Some(reached);
            Ok(reached)
        }
        Err(e) => {
            tracing::error!("the newest backup chain {} does not load ({e})", chain.dir.display());
            clear(engine);
            Ok(from)
        }
    }
}

/// Loads one snapshot file; any failure is a reason to try the next one.
fn load_one(
    engine: &Engine,
    store: &SnapshotStore,
    entry: &SnapshotEntry,
    threads: usize,
    progress: &mut impl FnMut(Progress),
) -> std::result::Result<LoadedSnapshot, LoadFailure> {
    let start = Instant::now();
    let path = &entry.path;
    let reader = store.open_snapshot(entry).map_err(|e| {
        if e.is_corruption() {
            LoadFailure::Damaged(e.to_string())
        } else {
            LoadFailure::Unusable(e.to_string())
        }
    })?;
    let info = reader.info().clone();
    let chunks = u64::from(info.chunks);
    progress(Progress::Snapshot { chunks_done: 0, chunks });
    let done = std::sync::atomic::AtomicU64::new(0);
    let last_log = parking_lot::Mutex::new(Instant::now());
    let loaded = std::sync::atomic::AtomicU64::new(0);
    reader
        .load_parallel(threads, |raw, _entries| {
            let n = engine.load_snapshot_chunk(raw)?;
            loaded.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            let mut last = last_log.lock();
            if last.elapsed() >= Duration::from_secs(1) {
                *last = Instant::now();
                tracing::info!(
                    chunks = d,
                    of = chunks,
                    percent = format!("{:.1}", d as f64 * 100.0 / chunks.max(1) as f64),
                    keys = loaded.load(std::sync::atomic::Ordering::Relaxed),
                    "loading the snapshot…"
                );
            }
            Ok::<(), fastcache_core::SnapshotLoadError>(())
        })
        .map_err(|e| match &e {
            // The file is fine but this server cannot hold it: falling back
            // to an older snapshot would not help and must not discard it.
            fastcache_snapshot::LoadError::Callback {
                error: fastcache_core::SnapshotLoadError::Database { .. },
                ..
            } => LoadFailure::Unusable(e.to_string()),
            fastcache_snapshot::LoadError::Snapshot(se) if !se.is_corruption() => LoadFailure::Unusable(e.to_string()),
            _ => LoadFailure::Damaged(e.to_string()),
        })?;
    progress(Progress::Snapshot { chunks_done: chunks, chunks });
    let keys = loaded.into_inner();
    if keys != info.keys {
        return Err(LoadFailure::Damaged(format!("the file says it holds {} keys but {keys} were loaded", info.keys)));
    }
    Ok(LoadedSnapshot {
        path: path.to_path_buf(),
        lsn: info.meta.lsn,
        keys,
        file_bytes: info.file_bytes,
        raw_bytes: info.raw_bytes,
        elapsed: start.elapsed(),
    })
}

/// Why a snapshot could not be loaded.
enum LoadFailure {
    /// Its bytes are damaged: fall back to the previous snapshot.
    Damaged(String),
    /// It is intact but cannot be loaded here (I/O error, too many
    /// databases for this configuration): stop, touch nothing.
    Unusable(String),
}

/// Empties an engine without journalling anything.
fn clear(engine: &Engine) {
    let mut s = engine.session();
    let _ = engine.execute(&mut s, &[b"FLUSHALL"]);
    engine.reset_dirty();
}
