//! Backups of a data directory no server has open (the operator's
//! `fastcache backup DIR DEST`): the state is rebuilt from the directory's
//! snapshot and WAL; an incremental backup is computed from the WAL
//! records after the chain's end, with change tracking on while they are
//! replayed onto the chain's state.

use std::path::{Path, PathBuf};

use fastcache_core::{Engine, EngineConfig};
use fastcache_snapshot::SnapshotStore;

use crate::chain::{default_threads, load_full, load_links, Link, LinkKind};
use crate::dir::{BackupDir, LinkInfo};
use crate::error::{Error, Result};
use crate::replay::{open_existing, replay, Stop};

/// What [`load_data_dir`] loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataDirState {
    /// The snapshot loaded, if any.
    pub snapshot: Option<PathBuf>,
    /// Its LSN (0 without one).
    pub snapshot_lsn: u64,
    /// Newer snapshots that were damaged and passed over, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    /// WAL records replayed after the snapshot.
    pub wal_records: u64,
    /// The LSN of the loaded state.
    pub lsn: u64,
}

/// Loads a data directory (`snapshots/` + `wal/`) into `engine` (which
/// must be empty) as recovery would: the newest snapshot whose every byte
/// verifies (damaged ones are passed over, and left where they are), then
/// the WAL after it.
///
/// The WAL is opened as the server opens it: its lock is taken, so a
/// directory a running server has open is refused (`Locked`), and a torn
/// tail is cut.
///
/// # Errors
/// `WalGap` if the log does not continue from the snapshot; `Wal`,
/// `Record`, `Replay`, `Snapshot`, `Io`.
pub fn load_data_dir(engine: &Engine, data_dir: &Path, threads: usize) -> Result<DataDirState> {
    let wal_dir = data_dir.join("wal");
    let wal = open_existing(&wal_dir)?;
    let mut state = DataDirState::default();
    let snapshots = data_dir.join("snapshots");
    if snapshots.join(fastcache_snapshot::MANIFEST_FILE).is_file() {
        let store = SnapshotStore::open(&snapshots, fastcache_snapshot::DEFAULT_RETAIN)?;
        for entry in store.list()? {
            let link = Link {
                kind: LinkKind::Full,
                path: entry.path.clone(),
                from_lsn: 0,
                to_lsn: entry.lsn,
                created_unix_ms: entry.created_unix_ms,
                keys: entry.keys,
                file_bytes: entry.file_bytes,
            };
            let loaded = store.open_snapshot(&entry).map_err(Error::from).and_then(|reader| {
                let n = load_full(engine, &reader, &link, threads.max(1))?;
                if n == entry.keys {
                    Ok(())
                } else {
                    Err(Error::InvalidArgument(format!("{n} keys loaded, the manifest says {}", entry.keys)))
                }
            });
            match loaded {
                Ok(()) => {
                    state.snapshot = Some(entry.path);
                    state.snapshot_lsn = entry.lsn;
                    break;
                }
                Err(e) if e.is_corruption() || matches!(e, Error::InvalidArgument(_)) => {
                    state.skipped.push((entry.path, e.to_string()));
                    // A partly loaded snapshot must not leak into the next try.
                    let mut s = engine.session();
                    engine.execute(&mut s, &[b"FLUSHALL"]);
                }
                Err(e) => return Err(e),
            }
        }
    }
    state.lsn = state.snapshot_lsn;
    if let Some(wal) = wal {
        if wal.last_lsn() > state.snapshot_lsn {
            let done = replay(engine, &wal, &wal_dir, state.snapshot_lsn + 1, Stop::default(), &mut |_, _| {})?;
            state.wal_records = done.records;
            state.lsn = wal.last_lsn();
        }
        wal.close()?;
    }
    Ok(state)
}

impl BackupDir {
    /// Backs up a data directory no server has open: a full backup (a new
    /// chain) of its state, or — with `incremental` — the changes of its
    /// WAL after the newest chain's end, appended to that chain.
    ///
    /// The incremental way loads the newest chain into a scratch engine,
    /// turns change tracking on, replays the data directory's WAL records
    /// after the chain's last LSN and writes what they changed. The WAL must
    /// still hold those records, and must be the log of the server the
    /// chain was taken from (only LSNs tell them apart).
    ///
    /// # Errors
    /// `NeedsFull` with `incremental` when there is no chain, no WAL, or the
    /// WAL no longer reaches back to the chain's end; `LsnBehind` if the
    /// WAL ends before the chain; `Locked` (a server has the data directory
    /// open); otherwise as [`load_data_dir`], [`BackupDir::write_full`] and
    /// [`BackupDir::write_incremental`]. Either way, an engine this
    /// directory was continuing a chain for needs a full backup next.
    pub fn backup_data_dir(&self, data_dir: &Path, incremental: bool) -> Result<LinkInfo> {
        let engine = Engine::new(EngineConfig { databases: self.databases, ..EngineConfig::default() });
        if !incremental {
            let state = load_data_dir(&engine, data_dir, default_threads())?;
            return self.write_full(&engine, || state.lsn, |_| Ok(()));
        }
        let Some(chain) = self.chains()?.pop() else {
            return Err(Error::needs_full(format!("{} holds no chain", self.dir().display())));
        };
        let wal_dir = data_dir.join("wal");
        let Some(wal) = open_existing(&wal_dir)? else {
            return Err(Error::needs_full(format!("{} has no WAL to take the changes from", data_dir.display())));
        };
        let tip = chain.lsn();
        let last = wal.last_lsn();
        if last < tip {
            return Err(Error::LsnBehind { lsn: last, tip });
        }
        load_links(&engine, &chain, chain.incrementals.len(), default_threads(), &mut |_| {})?;
        engine.set_change_tracking(true);
        if last > tip {
            replay(&engine, &wal, &wal_dir, tip + 1, Stop::default(), &mut |_, _| {}).map_err(|e| match e {
                Error::WalGap { wal_first, .. } => Error::needs_full(format!(
                    "the WAL in {} starts at LSN {wal_first}; the records after the chain's end (LSN {tip}) are \
                     gone",
                    wal_dir.display()
                )),
                e => e,
            })?;
        }
        wal.close()?;
        self.continue_chain(&chain, tip)?;
        let result = self.write_incremental(&engine, || last, |_| Ok(()));
        // The scratch engine is gone: nothing continues from its tracking.
        self.forget_continued_chain();
        result
    }
}
