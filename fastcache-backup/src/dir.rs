//! A backup directory (`BACKUP_DIR`): chains, their publication and
//! retention (`docs/formats.md`, "Backup directory").
//!
//! ```text
//! LOCK                                      flock'ed by the one writer (BackupDir::open)
//! chain-00000000000000001000-1700000000000/ a chain: published by renaming it into place
//!     MANIFEST                              its links, base first
//!     full-00000000000000001000-1700000000000.fcs
//!     inc-00000000000000001000-00000000000000001500-1700000060000.fcs
//!     inc-…fcs.tmp, MANIFEST.tmp            being written (removed at open)
//! chain-…-….tmp/                            a chain being created (removed at open)
//! chain-…-….del/                            a chain being deleted (removed at open)
//! ```
//!
//! # Continuing a chain
//! An incremental backup holds the keys in the engine's change sets, which
//! restart at every backup's barrier. It is only a valid next link if the
//! change sets restarted exactly at the chain's last LSN, in this process,
//! and nothing dropped them since. The directory remembers that pairing —
//! the chain and the LSN of the last link it wrote with tracking on — and
//! refuses ([`Error::NeedsFull`]) when it does not hold: after a restart,
//! after a failed attempt (the change sets were consumed), after a SWAPDB
//! or with tracking off. One engine per backup directory, and nothing else
//! may restart the engine's change tracking between links
//! (`Engine::set_change_tracking`, `begin_backup_base`,
//! `begin_incremental`).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use fastcache_core::{ChangeCursor, Engine, EngineConfig, IncrementalError, SnapshotCursor};
use fastcache_snapshot::{SnapshotMeta, SnapshotWriter, WriterOptions};

use crate::chain::{default_threads, load_links, Chain, Link, LinkKind};
use crate::error::{Error, Result};
use crate::lock::{lock_dir, DirLock};
use crate::manifest::{self, sync_dir};
use crate::naming::{
    chain_dir_name, full_file_name, inc_file_name, parse_chain_dir_name, parse_full_file_name, parse_inc_file_name,
    CREATING_SUFFIX, DELETING_SUFFIX,
};

/// How many chains a backup directory keeps unless told otherwise.
pub const DEFAULT_RETAIN: usize = 2;

/// Raw bytes of entries per chunk of a backup file.
pub(crate) const CHUNK_BYTES: usize = 1 << 20;

/// What a write (or a consolidation) produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// The chain the link belongs to.
    pub chain: PathBuf,
    /// The link. When `written` is false, the chain's existing last link.
    pub link: Link,
    /// False when nothing was written: an incremental backup with no
    /// change and no new LSN since the last link, or the consolidation of a
    /// chain that is only a base.
    pub written: bool,
    /// Payload bytes before compression.
    pub raw_bytes: u64,
    /// How long it took.
    pub elapsed: Duration,
    /// Chains deleted by retention afterwards.
    pub removed_chains: Vec<PathBuf>,
}

/// What the engine's change tracking continues.
#[derive(Debug, Default)]
struct State {
    /// The chain, and the LSN its last link was taken at, if the engine's
    /// change sets restarted exactly there (see the module documentation).
    tracked: Option<(PathBuf, u64)>,
}

/// A directory of backup chains with a retention count. `Send + Sync`;
/// writes are serialized inside.
///
/// # Invariants
/// - A chain directory exists under its final name only once its base and
///   its manifest are durable; a link counts once its chain's manifest
///   names it.
/// - A file is deleted only after no durable manifest names it; a chain
///   is deleted by renaming it aside first.
/// - One writer per directory (the `LOCK` file), across processes.
#[derive(Debug)]
pub struct BackupDir {
    root: PathBuf,
    retain: usize,
    pub(crate) databases: usize,
    lock: Option<DirLock>,
    /// Held for the whole of a write: writes are serialized.
    writer: Mutex<()>,
    /// Held briefly: readers (`continued_chain`) never wait for a write.
    state: Mutex<State>,
    removed_on_open: Vec<PathBuf>,
}

/// Something that fills chunks of entries: a snapshot or a change cursor.
pub(crate) trait Source {
    fn fill(&mut self, out: &mut Vec<u8>, target: usize) -> u32;
    fn is_done(&self) -> bool;
}

impl Source for SnapshotCursor {
    fn fill(&mut self, out: &mut Vec<u8>, target: usize) -> u32 {
        SnapshotCursor::fill(self, out, target)
    }
    fn is_done(&self) -> bool {
        SnapshotCursor::is_done(self)
    }
}

impl Source for ChangeCursor {
    fn fill(&mut self, out: &mut Vec<u8>, target: usize) -> u32 {
        ChangeCursor::fill(self, out, target)
    }
    fn is_done(&self) -> bool {
        ChangeCursor::is_done(self)
    }
}

/// Writes everything `source` has left as chunks; returns the raw bytes.
pub(crate) fn write_all(source: &mut impl Source, w: &mut SnapshotWriter) -> Result<u64> {
    let mut chunk = Vec::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 4);
    let mut raw = 0u64;
    while !source.is_done() {
        chunk.clear();
        let n = source.fill(&mut chunk, CHUNK_BYTES);
        if n == 0 && chunk.is_empty() {
            continue;
        }
        w.write_chunk(&chunk, n)?;
        raw += chunk.len() as u64;
    }
    Ok(raw)
}

/// Removes a directory when dropped, unless disarmed.
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

fn names_in(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io("list directory", dir, e))? {
        let entry = entry.map_err(|e| Error::io("list directory", dir, e))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

impl BackupDir {
    /// Opens `dir` for writing backups, creating it if missing: takes its
    /// lock, and removes what interrupted writes left (chains being created
    /// or deleted, temporary files, finished files no manifest names). A
    /// chain whose manifest does not parse is left alone. `retain` (at least
    /// 1) is how many chains to keep.
    ///
    /// # Errors
    /// `InvalidArgument` for `retain == 0`; `Locked` if another process
    /// (or another `BackupDir` of this one) has it open for writing; `Io`.
    pub fn open(dir: &Path, retain: usize) -> Result<BackupDir> {
        if retain == 0 {
            return Err(Error::InvalidArgument("a backup directory must retain at least 1 chain".into()));
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create backup directory", dir, e))?;
        let lock = lock_dir(dir)?;
        let mut removed = Vec::new();
        for name in names_in(dir)? {
            let path = dir.join(&name);
            let leftover = [CREATING_SUFFIX, DELETING_SUFFIX]
                .iter()
                .any(|s| name.strip_suffix(s).is_some_and(|n| parse_chain_dir_name(n).is_some()));
            if leftover {
                std::fs::remove_dir_all(&path).map_err(|e| Error::io("remove interrupted chain", &path, e))?;
                removed.push(path);
            } else if parse_chain_dir_name(&name).is_some() && path.is_dir() {
                removed.extend(clean_chain_dir(&path)?);
            }
        }
        if !removed.is_empty() {
            sync_dir(dir)?;
        }
        removed.sort();
        Ok(BackupDir {
            root: dir.to_path_buf(),
            retain,
            databases: EngineConfig::default().databases,
            lock: Some(lock),
            writer: Mutex::new(()),
            state: Mutex::new(State::default()),
            removed_on_open: removed,
        })
    }

    /// Opens `dir` to read its chains (restore, checks): no lock, nothing
    /// created or removed; every write fails with [`Error::ReadOnly`].
    ///
    /// # Errors
    /// `Io` if `dir` is not a readable directory.
    pub fn open_read_only(dir: &Path) -> Result<BackupDir> {
        std::fs::read_dir(dir).map_err(|e| Error::io("open backup directory", dir, e))?;
        Ok(BackupDir {
            root: dir.to_path_buf(),
            retain: usize::MAX,
            databases: EngineConfig::default().databases,
            lock: None,
            writer: Mutex::new(()),
            state: Mutex::new(State::default()),
            removed_on_open: Vec::new(),
        })
    }

    /// The number of databases of the scratch engine a consolidation loads
    /// a chain into (default 16, like the server's `FASTCACHE_DATABASES`).
    #[must_use]
    pub fn with_databases(mut self, databases: usize) -> BackupDir {
        self.databases = databases.max(1);
        self
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    /// How many chains are kept.
    pub fn retain(&self) -> usize {
        self.retain
    }

    /// What [`BackupDir::open`] removed (for the log).
    pub fn removed_on_open(&self) -> &[PathBuf] {
        &self.removed_on_open
    }

    /// The chain the next [`BackupDir::write_incremental`] would append to
    /// and its last LSN, if there is one.
    pub fn continued_chain(&self) -> Option<(PathBuf, u64)> {
        self.state().tracked.clone()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_tracked(&self, tracked: Option<(PathBuf, u64)>) {
        self.state().tracked = tracked;
    }

    /// The chain directories, oldest first (by base LSN, then creation
    /// time), whether or not their manifests parse.
    ///
    /// # Errors
    /// `Io` if the directory cannot be listed.
    pub fn chain_dirs(&self) -> Result<Vec<PathBuf>> {
        let mut dirs: Vec<((u64, u64), PathBuf)> = names_in(&self.root)?
            .into_iter()
            .filter_map(|name| parse_chain_dir_name(&name).map(|key| (key, self.root.join(name))))
            .filter(|(_, p)| p.is_dir())
            .collect();
        dirs.sort();
        Ok(dirs.into_iter().map(|(_, p)| p).collect())
    }

    /// The chains, oldest first, as their manifests describe them (no
    /// backup file is read: [`crate::verify_chain`] does that).
    ///
    /// # Errors
    /// The first chain whose manifest cannot be read or parsed
    /// (`Corrupted`, `UnsupportedVersion`, `Io`), naming it; use
    /// [`BackupDir::chain_dirs`] and [`Chain::open`] to go on past it.
    pub fn chains(&self) -> Result<Vec<Chain>> {
        self.chain_dirs()?.iter().map(|d| Chain::open(d)).collect()
    }

    fn writable(&self) -> Result<MutexGuard<'_, ()>> {
        if self.lock.is_none() {
            return Err(Error::ReadOnly { path: self.root.clone() });
        }
        Ok(self.writer.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Takes a full backup of `engine` as the base of a new chain
    /// (`Engine::begin_backup_base`: with change tracking on, the change
    /// sets restart at its barrier, so incrementals can follow), then
    /// applies retention.
    ///
    /// `lsn_at` runs at the barrier, with every shard locked: it returns
    /// the log position the backup is consistent at (the server reads its
    /// WAL's last LSN). `before_publish(lsn)` runs once the file is written
    /// and before it is published: it must make the log durable up to
    /// `lsn` (a published backup must never claim records a crash could
    /// lose, whose LSNs would then be reused).
    ///
    /// Change tracking is not turned on here (it costs every write a
    /// little): with it off, the chain gets no incrementals.
    ///
    /// # Errors
    /// `Busy` if a snapshot or backup of the engine is running; `Publish`
    /// if `before_publish` fails; `Snapshot` / `Io` for failed writes;
    /// `ReadOnly`. Nothing is published then, and the chain that was being
    /// continued cannot be continued any more.
    pub fn write_full(
        &self,
        engine: &Engine,
        lsn_at: impl FnOnce() -> u64,
        before_publish: impl FnOnce(u64) -> Result<(), String>,
    ) -> Result<LinkInfo> {
        let start = Instant::now();
        let _writing = self.writable()?;
        let tracking = engine.change_tracking();
        let clock = engine.clock().clone();
        let (mut cursor, (lsn, mut created)) =
            engine.begin_backup_base(|| (lsn_at(), clock.now_ms())).map_err(|_| Error::Busy)?;
        // From the barrier on, the change sets hold the writes after `lsn`
        // only: whatever chain they continued cannot be continued now.
        self.set_tracked(None);
        // NOTE: two full backups at one LSN within one millisecond would
        // share a name; the later one is dated a millisecond later (still
        // after every record it holds, which is what restores by time need).
        while self.root.join(chain_dir_name(lsn, created)).exists() {
            created += 1;
        }
        let (dir, link, raw_bytes) = self.publish_chain(&mut cursor, lsn, created, before_publish)?;
        drop(cursor);
        if tracking {
            self.set_tracked(Some((dir.clone(), lsn)));
        }
        let removed_chains = self.apply_retention();
        Ok(LinkInfo { chain: dir, link, written: true, raw_bytes, elapsed: start.elapsed(), removed_chains })
    }

    /// Takes an incremental backup of `engine` — the keys written or
    /// deleted since the chain's last link, as they are at this barrier —
    /// and appends it to the chain this directory continues (the one its
    /// last full or incremental backup of this engine went to).
    ///
    /// `lsn_at` and `before_publish` as in [`BackupDir::write_full`]. When
    /// nothing changed and the log did not move, no file is written and
    /// the chain's last link is returned with `written: false`.
    ///
    /// # Errors
    /// - [`Error::NeedsFull`] when no chain can be continued: none was
    ///   written by this process with tracking on, the last attempt failed,
    ///   tracking is off, or a SWAPDB happened. Write a full backup.
    /// - `Busy` if a snapshot or backup is running (nothing was consumed:
    ///   try again later).
    /// - `LsnBehind`, `Publish`, `Snapshot`, `Io`, `ReadOnly`: nothing is
    ///   published, and the next incremental needs a full backup first.
    pub fn write_incremental(
        &self,
        engine: &Engine,
        lsn_at: impl FnOnce() -> u64,
        before_publish: impl FnOnce(u64) -> Result<(), String>,
    ) -> Result<LinkInfo> {
        let start = Instant::now();
        let _writing = self.writable()?;
        let Some((chain_dir, tip)) = self.continued_chain() else {
            return Err(Error::needs_full(format!(
                "no chain in {} continues from this engine's change tracking (none was written by this process \
                 with tracking on, or the last backup attempt failed)",
                self.root.display()
            )));
        };
        let chain = match Chain::open(&chain_dir) {
            Ok(c) if c.lsn() == tip => c,
            Ok(c) => {
                self.set_tracked(None);
                return Err(Error::needs_full(format!(
                    "chain {} ends at LSN {}, not at LSN {tip} where change tracking restarted",
                    chain_dir.display(),
                    c.lsn()
                )));
            }
            Err(e) => {
                self.set_tracked(None);
                return Err(Error::needs_full(format!("chain {} cannot be read ({e})", chain_dir.display())));
            }
        };
        let clock = engine.clock().clone();
        let (mut cursor, (lsn, created)) = match engine.begin_incremental(|| (lsn_at(), clock.now_ms())) {
            Ok(x) => x,
            Err(IncrementalError::Busy) => return Err(Error::Busy),
            Err(IncrementalError::NotTracking) => {
                self.set_tracked(None);
                return Err(Error::needs_full("change tracking is off in the engine"));
            }
            Err(IncrementalError::NeedsFull) => {
                self.set_tracked(None);
                return Err(Error::needs_full("a SWAPDB moved whole databases since the last backup"));
            }
        };
        // The change sets up to `lsn` are in the cursor now: if this backup
        // is not published, they are lost to the chain.
        self.set_tracked(None);
        if lsn < tip {
            return Err(Error::LsnBehind { lsn, tip });
        }
        let mut first = Vec::new();
        let first_entries = cursor.fill(&mut first, CHUNK_BYTES);
        if first_entries == 0 && first.is_empty() && cursor.is_done() && lsn == tip {
            self.set_tracked(Some((chain_dir.clone(), tip)));
            return Ok(LinkInfo {
                chain: chain_dir,
                link: chain.tip().clone(),
                written: false,
                raw_bytes: 0,
                elapsed: start.elapsed(),
                removed_chains: Vec::new(),
            });
        }
        let path = chain_dir.join(inc_file_name(tip, lsn, created));
        let meta = SnapshotMeta { lsn, created_unix_ms: created };
        let mut w = SnapshotWriter::create_incremental(&path, meta, tip, WriterOptions::default())?;
        if first_entries > 0 || !first.is_empty() {
            w.write_chunk(&first, first_entries)?;
        }
        let raw_bytes = first.len() as u64 + write_all(&mut cursor, &mut w)?;
        drop(cursor);
        before_publish(lsn).map_err(|reason| Error::Publish { lsn, reason })?;
        let info = w.finish()?;
        let link = Link {
            kind: LinkKind::Incremental,
            path,
            from_lsn: tip,
            to_lsn: lsn,
            created_unix_ms: created,
            keys: info.keys,
            file_bytes: info.file_bytes,
        };
        let mut links: Vec<Link> = chain.links().cloned().collect();
        links.push(link.clone());
        // NOTE: on failure the file stays: the new manifest may be in place
        // (a failed directory sync after its rename). An unnamed file is
        // removed by the next `open`.
        manifest::write(&chain_dir, &links)?;
        self.set_tracked(Some((chain_dir.clone(), lsn)));
        Ok(LinkInfo {
            chain: chain_dir,
            link,
            written: true,
            raw_bytes,
            elapsed: start.elapsed(),
            removed_chains: Vec::new(),
        })
    }

    /// Merges a chain of this directory into a new full backup at the
    /// chain's last LSN — a new chain, the state of the old one at its end —
    /// then applies retention. Loads the chain into a scratch engine (the
    /// memory of the data set) and verifies every byte on the way. If this
    /// directory was continuing that chain, it continues the new one.
    ///
    /// # Errors
    /// `InvalidArgument` for a chain of another directory; `BrokenChain`
    /// for a gap, a missing or damaged file; `Snapshot` / `Io`; `ReadOnly`.
    pub fn consolidate(&self, chain: &Chain) -> Result<LinkInfo> {
        let start = Instant::now();
        let _writing = self.writable()?;
        if chain.dir.parent() != Some(self.root.as_path()) {
            return Err(Error::InvalidArgument(format!(
                "chain {} is not in backup directory {}",
                chain.dir.display(),
                self.root.display()
            )));
        }
        if chain.incrementals.is_empty() {
            return Ok(LinkInfo {
                chain: chain.dir.clone(),
                link: chain.base.clone(),
                written: false,
                raw_bytes: 0,
                elapsed: start.elapsed(),
                removed_chains: Vec::new(),
            });
        }
        let engine = Engine::new(EngineConfig { databases: self.databases, ..EngineConfig::default() });
        let lsn = load_links(&engine, chain, chain.incrementals.len(), default_threads(), &mut |_| {})?;
        // The new base is the state as it was when the last link was taken.
        let created = chain.tip().created_unix_ms;
        let (mut cursor, ()) = engine.begin_snapshot(|| ()).map_err(|_| Error::Busy)?;
        let (dir, link, raw_bytes) = self.publish_chain(&mut cursor, lsn, created, |_| Ok(()))?;
        drop(cursor);
        {
            let mut state = self.state();
            if state.tracked.as_ref() == Some(&(chain.dir.clone(), lsn)) {
                state.tracked = Some((dir.clone(), lsn));
            }
        }
        let removed_chains = self.apply_retention();
        Ok(LinkInfo { chain: dir, link, written: true, raw_bytes, elapsed: start.elapsed(), removed_chains })
    }

    /// Declares that the engine the next [`BackupDir::write_incremental`]
    /// gets has had change tracking on since a state at LSN
    /// `tracking_since` or earlier — every write after it is in the change
    /// sets — and holds at least the state at the chain's last LSN; that
    /// chain is continued from then on. This is how an engine rebuilt from a
    /// chain (or recovered from a snapshot no newer than the chain's end)
    /// with tracking turned on before the log was replayed continues a
    /// chain: the changes after the chain's end are a subset of what it
    /// tracked, and an incremental backup of more keys than changed is
    /// still exact.
    ///
    /// # Errors
    /// `NeedsFull` if `tracking_since` is after the chain's end (the writes
    /// in between were not tracked); `InvalidArgument` for a chain of
    /// another directory; `ReadOnly`.
    pub fn continue_chain(&self, chain: &Chain, tracking_since: u64) -> Result<()> {
        let _writing = self.writable()?;
        if chain.dir.parent() != Some(self.root.as_path()) {
            return Err(Error::InvalidArgument(format!(
                "chain {} is not in backup directory {}",
                chain.dir.display(),
                self.root.display()
            )));
        }
        if tracking_since > chain.lsn() {
            return Err(Error::needs_full(format!(
                "change tracking started at LSN {tracking_since}, after the end of chain {} (LSN {}): the \
                 writes in between were not tracked",
                chain.dir.display(),
                chain.lsn()
            )));
        }
        self.set_tracked(Some((chain.dir.clone(), chain.lsn())));
        Ok(())
    }

    /// Stops continuing any chain: the next incremental needs a full backup.
    pub(crate) fn forget_continued_chain(&self) {
        self.set_tracked(None);
    }

    /// Writes a chain whose base is everything `source` yields, consistent
    /// at `lsn`: into `<name>.tmp/`, then renamed into place.
    fn publish_chain(
        &self,
        source: &mut impl Source,
        lsn: u64,
        created: u64,
        before_publish: impl FnOnce(u64) -> Result<(), String>,
    ) -> Result<(PathBuf, Link, u64)> {
        let name = chain_dir_name(lsn, created);
        let final_dir = self.root.join(&name);
        if final_dir.exists() {
            return Err(Error::io(
                "create chain",
                &final_dir,
                std::io::Error::new(std::io::ErrorKind::AlreadyExists, "a chain with this LSN and time exists"),
            ));
        }
        let tmp_dir = self.root.join(format!("{name}{CREATING_SUFFIX}"));
        if tmp_dir.exists() {
            std::fs::remove_dir_all(&tmp_dir).map_err(|e| Error::io("remove interrupted chain", &tmp_dir, e))?;
        }
        std::fs::create_dir(&tmp_dir).map_err(|e| Error::io("create chain directory", &tmp_dir, e))?;
        let mut cleanup = RemoveOnDrop(Some(tmp_dir.clone()));
        let file = full_file_name(lsn, created);
        let meta = SnapshotMeta { lsn, created_unix_ms: created };
        let mut w = SnapshotWriter::create(&tmp_dir.join(&file), meta, WriterOptions::default())?;
        let raw_bytes = write_all(source, &mut w)?;
        before_publish(lsn).map_err(|reason| Error::Publish { lsn, reason })?;
        let info = w.finish()?;
        let link = Link {
            kind: LinkKind::Full,
            path: final_dir.join(&file),
            from_lsn: 0,
            to_lsn: lsn,
            created_unix_ms: created,
            keys: info.keys,
            file_bytes: info.file_bytes,
        };
        manifest::write(&tmp_dir, std::slice::from_ref(&link))?;
        std::fs::rename(&tmp_dir, &final_dir).map_err(|e| Error::io("rename chain into place", &tmp_dir, e))?;
        cleanup.0 = None;
        if let Err(e) = sync_dir(&self.root) {
            // The rename may not be durable: do not leave a chain that looks
            // published behind an error.
            let _ = std::fs::remove_dir_all(&final_dir);
            return Err(e);
        }
        Ok((final_dir, link, raw_bytes))
    }

    /// Deletes the oldest chains beyond `retain`: each is renamed aside
    /// (durably) before its files go, so a crash never leaves a chain with
    /// missing files under its name. Best effort: a chain that cannot be
    /// deleted is tried again by the next write.
    fn apply_retention(&self) -> Vec<PathBuf> {
        let Ok(dirs) = self.chain_dirs() else { return Vec::new() };
        let excess = dirs.len().saturating_sub(self.retain);
        let mut removed = Vec::new();
        for dir in dirs.into_iter().take(excess) {
            let Some(name) = dir.file_name().and_then(|n| n.to_str()) else { continue };
            let aside = self.root.join(format!("{name}{DELETING_SUFFIX}"));
            if std::fs::rename(&dir, &aside).is_err() || sync_dir(&self.root).is_err() {
                continue;
            }
            let mut state = self.state();
            if state.tracked.as_ref().is_some_and(|(d, _)| d == &dir) {
                state.tracked = None;
            }
            drop(state);
            let _ = std::fs::remove_dir_all(&aside);
            removed.push(dir);
        }
        if !removed.is_empty() {
            let _ = sync_dir(&self.root);
        }
        removed
    }
}

/// Removes from a chain directory what interrupted writes left: temporary
/// files and finished backup files its manifest does not name. Leaves a
/// chain whose manifest does not parse alone. Returns what it removed.
fn clean_chain_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let Ok(links) = manifest::read(dir) else { return Ok(Vec::new()) };
    let mut removed = Vec::new();
    for name in names_in(dir)? {
        let ours = |n: &str| parse_full_file_name(n).is_some() || parse_inc_file_name(n).is_some();
        let stray = manifest::is_manifest_tmp(&name)
            || name.strip_suffix(".tmp").is_some_and(ours)
            || (ours(&name) && !links.iter().any(|l| l.path.file_name().and_then(|n| n.to_str()) == Some(&name)));
        if stray {
            let path = dir.join(&name);
            std::fs::remove_file(&path).map_err(|e| Error::io("remove stray backup file", &path, e))?;
            removed.push(path);
        }
    }
    if !removed.is_empty() {
        sync_dir(dir)?;
    }
    Ok(removed)
}
