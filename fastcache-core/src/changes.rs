//! Per-key change tracking and incremental backups.
//!
//! With tracking on ([`Engine::set_change_tracking`]), every shard keeps
//! the set of keys written or deleted since the last backup point, filled
//! by the same `Shard::before_write` hook every write already passes
//! (so no write path can forget it). Whole-database writes are recorded as
//! markers instead of key lists: FLUSHDB/FLUSHALL as "database cleared",
//! SWAPDB as "a full backup is needed".
//!
//! [`Engine::begin_incremental`] is a snapshot restricted to those keys:
//! the same barrier (every shard locked, the caller reads its log position),
//! the change sets are swapped for empty ones, and a [`ChangeCursor`] emits
//! each changed key's value *at the barrier* — a write racing the cursor
//! emits the key's pre-image first, exactly like the full snapshot walk — or
//! its deletion. [`Engine::begin_backup_base`] is a full snapshot that also
//! starts a new change set at its barrier, so a chain (a full base plus the
//! incrementals after it) has no hole between its links.
//!
//! # Entry encoding (version 1)
//! A chunk of an incremental backup is a concatenation of postcard-encoded
//! [`ChangeEntry`] values; `ClearDb` entries come first.

use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use crate::dump::ByteStr;
use crate::engine::{Engine, Shard};
use crate::keyspace::{Db, KeyEntry};
use crate::snapshot::{EntryRef, SnapshotBusy, SnapshotCursor, SnapshotEntry, SnapshotLoadError};
use crate::table::hash;

/// One change in an incremental backup (the owned, decoded form).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ChangeEntry {
    /// The key holds this value (replacing whatever was there).
    Put(SnapshotEntry),
    /// The key does not exist.
    Delete {
        /// The database.
        db: u32,
        /// The key.
        key: ByteStr,
    },
    /// Every key of the database was removed (FLUSHDB, FLUSHALL); the
    /// entries after it rebuild what was written since.
    ClearDb {
        /// The database.
        db: u32,
    },
}

/// Borrowing twin of [`ChangeEntry`] for encoding; variant order matches.
#[derive(Serialize)]
enum ChangeRef<'a> {
    Put(EntryRef<'a>),
    Delete {
        db: u32,
        #[serde(with = "serde_bytes")]
        key: &'a [u8],
    },
    ClearDb {
        db: u32,
    },
}

fn encode_change(out: &mut Vec<u8>, change: &ChangeRef<'_>) {
    if let Ok(v) = postcard::to_extend(change, std::mem::take(out)) {
        *out = v;
    }
}

/// Decodes every change of a chunk, for tools.
///
/// # Errors
/// [`SnapshotLoadError::Decode`] if the bytes are not a sequence of changes.
pub fn decode_changes(raw: &[u8]) -> Result<Vec<ChangeEntry>, SnapshotLoadError> {
    let mut out = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let offset = raw.len() - rest.len();
        let (e, r) = postcard::take_from_bytes::<ChangeEntry>(rest)
            .map_err(|e| SnapshotLoadError::Decode { offset, reason: e.to_string() })?;
        out.push(e);
        rest = r;
    }
    Ok(out)
}

/// Why an incremental backup cannot be taken now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IncrementalError {
    /// Another snapshot or backup is running.
    #[error("a snapshot is already in progress")]
    Busy,
    /// Change tracking is off, so there is nothing to build on.
    #[error("change tracking is off; take a full backup first")]
    NotTracking,
    /// SWAPDB moved whole databases since the last backup point, or the
    /// data set was replaced wholesale ([`Engine::require_full_backup`]):
    /// only a full backup describes that.
    #[error("a SWAPDB or a replacement of the data set happened since the last backup; a full backup is needed")]
    NeedsFull,
}

impl From<SnapshotBusy> for IncrementalError {
    fn from(_: SnapshotBusy) -> Self {
        IncrementalError::Busy
    }
}

/// A shard's changes since the last backup point.
pub(crate) struct ChangeSet {
    keys: Vec<foldhash::HashSet<Box<[u8]>>>,
    cleared: Vec<bool>,
    swapped: bool,
}

impl ChangeSet {
    pub(crate) fn new(databases: usize) -> ChangeSet {
        ChangeSet {
            keys: (0..databases).map(|_| foldhash::HashSet::default()).collect(),
            cleared: vec![false; databases],
            swapped: false,
        }
    }

    fn note(&mut self, db: usize, key: &[u8]) {
        let set = &mut self.keys[db];
        if !set.contains(key) {
            set.insert(key.into());
        }
    }
}

/// A shard's part of a running incremental backup.
pub(crate) struct IncWalk {
    /// Per database: changed keys not emitted yet.
    todo: Vec<foldhash::HashSet<Box<[u8]>>>,
    /// The same keys as a list, for the cursor to go through; built at the
    /// cursor's first visit of the shard, under that shard's lock only, so
    /// the all-shard barrier copies nothing.
    order: Option<Vec<(usize, Box<[u8]>)>>,
    pending: Vec<u8>,
    pending_entries: u32,
}

impl IncWalk {
    fn emit(out: &mut Vec<u8>, d: &Db, db: usize, key: &[u8]) {
        match d.get(hash(key), key) {
            Some(e) => encode_change(out, &ChangeRef::Put(EntryRef::of(db, e))),
            None => encode_change(out, &ChangeRef::Delete { db: db as u32, key }),
        }
    }

    /// Emits up to `max_keys` keys into `out`; true when every key is done.
    fn walk(&mut self, dbs: &[Db], out: &mut Vec<u8>, max_keys: usize, max_bytes: usize) -> (u32, bool) {
        let todo = &self.todo;
        let order = self.order.get_or_insert_with(|| {
            todo.iter().enumerate().flat_map(|(db, keys)| keys.iter().map(move |k| (db, k.clone()))).collect()
        });
        let mut n = 0u32;
        while (n as usize) < max_keys && out.len() < max_bytes {
            let Some((db, key)) = order.pop() else { return (n, true) };
            if self.todo[db].remove(&key) {
                Self::emit(out, &dbs[db], db, &key);
                n += 1;
            }
        }
        (n, order.is_empty())
    }
}

impl Shard {
    /// The slow part of `before_write` when tracking or an incremental
    /// backup is on.
    pub(crate) fn track_write(&mut self, db: usize, key: &[u8]) {
        if let Some(inc) = self.inc.as_deref_mut() {
            if inc.todo[db].remove(key) {
                IncWalk::emit(&mut inc.pending, &self.dbs[db], db, key);
                inc.pending_entries += 1;
            }
        }
        if let Some(c) = self.changes.as_deref_mut() {
            c.note(db, key);
        }
    }

    /// Before a whole-database write: an incremental backup running here
    /// emits the rest of this shard now, and the change set records the
    /// clear (`swap`: a SWAPDB, which only a full backup can describe).
    pub(crate) fn track_whole_db(&mut self, db: usize, swap: bool) {
        if let Some(inc) = self.inc.as_deref_mut() {
            let (n, _) = {
                let mut pending = std::mem::take(&mut inc.pending);
                let r = inc.walk(&self.dbs, &mut pending, usize::MAX, usize::MAX);
                inc.pending = pending;
                r
            };
            inc.pending_entries += n;
        }
        if let Some(c) = self.changes.as_deref_mut() {
            if swap {
                c.swapped = true;
            } else {
                c.cleared[db] = true;
                c.keys[db].clear();
            }
        }
    }
}

/// Pulls the changes of a running incremental backup. Dropping it before
/// it is done abandons the backup; the changes it had not emitted are lost
/// to the chain, so the caller must then start a new chain (a full base).
pub struct ChangeCursor {
    engine: Engine,
    shard: usize,
    prelude: Vec<u32>,
    keys: u64,
}

impl std::fmt::Debug for ChangeCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeCursor").field("shard", &self.shard).field("keys", &self.keys).finish()
    }
}

impl ChangeCursor {
    /// Appends encoded changes to `out` until it holds at least `target`
    /// bytes or the backup is complete; returns how many it appended.
    pub fn fill(&mut self, out: &mut Vec<u8>, target: usize) -> u32 {
        let inner = &*self.engine.0;
        let mut n = 0u32;
        for db in self.prelude.drain(..) {
            encode_change(out, &ChangeRef::ClearDb { db });
            n += 1;
        }
        while self.shard < inner.shards.len() && out.len() < target {
            let mut guard = inner.shards[self.shard].lock();
            let shard = &mut *guard;
            let Some(inc) = shard.inc.as_deref_mut() else {
                self.shard += 1;
                continue;
            };
            if !inc.pending.is_empty() {
                out.extend_from_slice(&inc.pending);
                n += inc.pending_entries;
                inc.pending.clear();
                inc.pending_entries = 0;
            }
            let limit = out.len() + target.saturating_sub(out.len()).min(64 * 1024);
            let (k, done) = inc.walk(&shard.dbs, out, 256, limit);
            n += k;
            if done && inc.pending.is_empty() {
                shard.inc = None;
                self.shard += 1;
            }
            parking_lot::MutexGuard::unlock_fair(guard);
        }
        self.keys += u64::from(n);
        n
    }

    /// Whether every change has been returned.
    pub fn is_done(&self) -> bool {
        self.shard >= self.engine.0.shards.len() && self.prelude.is_empty()
    }

    /// Entries returned so far.
    pub fn keys(&self) -> u64 {
        self.keys
    }
}

impl Drop for ChangeCursor {
    fn drop(&mut self) {
        let inner = &*self.engine.0;
        for slot in inner.shards.iter().skip(self.shard) {
            slot.lock().inc = None;
        }
        inner.snapshot_running.store(false, Ordering::Release);
    }
}

impl Engine {
    /// Turns per-key change tracking on (a fresh, empty change set in every
    /// shard) or off.
    pub fn set_change_tracking(&self, on: bool) {
        let databases = self.0.databases;
        for s in self.0.shards.iter() {
            s.lock().changes = on.then(|| Box::new(ChangeSet::new(databases)));
        }
    }

    /// Makes the next incremental backup refuse with
    /// [`IncrementalError::NeedsFull`] (if tracking is on): the data set was
    /// replaced by a path that tracks no keys — a replica's full sync loads
    /// its snapshot chunks directly, a rewind rebuilds memory.
    pub fn require_full_backup(&self) {
        for s in self.0.shards.iter() {
            if let Some(c) = s.lock().changes.as_mut() {
                c.swapped = true;
            }
        }
    }

    /// Whether change tracking is on.
    pub fn change_tracking(&self) -> bool {
        self.0.shards.first().is_some_and(|s| s.lock().changes.is_some())
    }

    /// Keys changed since the last backup point (for INFO and scheduling).
    pub fn changed_keys(&self) -> u64 {
        self.0
            .shards
            .iter()
            .map(|s| s.lock().changes.as_ref().map_or(0, |c| c.keys.iter().map(|k| k.len() as u64).sum()))
            .sum()
    }

    /// A full snapshot (see [`Engine::begin_snapshot`]) that is also the
    /// base of a backup chain: with tracking on, the change sets restart
    /// empty at its barrier.
    ///
    /// # Errors
    /// [`SnapshotBusy`] if a snapshot or backup is running.
    pub fn begin_backup_base<T>(&self, at: impl FnOnce() -> T) -> Result<(SnapshotCursor, T), SnapshotBusy> {
        self.begin_snapshot_with(at, true)
    }

    /// Starts an incremental backup: the keys changed since the last backup
    /// point, as they are at this instant. `at` runs with every shard locked
    /// and returns the log position the backup is consistent at; tracking
    /// goes on into fresh change sets from that instant.
    ///
    /// # Errors
    /// [`IncrementalError`]: busy, tracking off, or a SWAPDB since the last
    /// backup point (nothing is changed then).
    pub fn begin_incremental<T>(&self, at: impl FnOnce() -> T) -> Result<(ChangeCursor, T), IncrementalError> {
        let inner = &*self.0;
        if inner.snapshot_running.swap(true, Ordering::AcqRel) {
            return Err(IncrementalError::Busy);
        }
        let mut guards: Vec<_> = inner.shards.iter().map(|s| s.lock()).collect();
        let refuse = |e| {
            inner.snapshot_running.store(false, Ordering::Release);
            Err(e)
        };
        if guards.iter().any(|g| g.changes.is_none()) {
            drop(guards);
            return refuse(IncrementalError::NotTracking);
        }
        if guards.iter().any(|g| g.changes.as_ref().is_some_and(|c| c.swapped)) {
            drop(guards);
            return refuse(IncrementalError::NeedsFull);
        }
        let t = at();
        let databases = inner.databases;
        let mut cleared = vec![false; databases];
        for g in &mut guards {
            let Some(old) = g.changes.replace(Box::new(ChangeSet::new(databases))) else { continue };
            for (db, c) in old.cleared.iter().enumerate() {
                cleared[db] |= *c;
            }
            g.inc = Some(Box::new(IncWalk { todo: old.keys, order: None, pending: Vec::new(), pending_entries: 0 }));
        }
        drop(guards);
        let prelude = cleared.iter().enumerate().filter(|(_, c)| **c).map(|(db, _)| db as u32).collect();
        Ok((ChangeCursor { engine: self.clone(), shard: 0, prelude, keys: 0 }, t))
    }

    /// Applies one chunk of an incremental backup (as [`ChangeCursor::fill`]
    /// produced it) and returns how many changes it held. Meant for an
    /// engine being restored, before it serves clients; chunks must be
    /// applied in order.
    ///
    /// # Errors
    /// A [`SnapshotLoadError`] for bytes that are not valid changes; the
    /// changes before the bad one have been applied.
    pub fn apply_change_chunk(&self, raw: &[u8]) -> Result<u64, SnapshotLoadError> {
        let inner = &*self.0;
        let meta = inner.initial_meta(inner.clock.now_ms());
        let mut n = 0;
        for change in decode_changes(raw)? {
            n += 1;
            match change {
                ChangeEntry::ClearDb { db } => {
                    let db = check_db(inner.databases, db, b"")?;
                    for (si, s) in inner.shards.iter().enumerate() {
                        let mut g = s.lock();
                        let freed: isize = g.dbs[db].keys.iter().map(|e| e.mem() as isize).sum();
                        g.dbs[db].clear();
                        inner.add_used(si, -freed);
                    }
                }
                ChangeEntry::Delete { db, key } => {
                    let db = check_db(inner.databases, db, &key)?;
                    let h = hash(&key);
                    let si = inner.shard_of(h);
                    if let Some(old) = inner.shards[si].lock().dbs[db].remove(h, &key) {
                        inner.add_used(si, -(old.mem() as isize));
                    }
                }
                ChangeEntry::Put(e) => {
                    let db = check_db(inner.databases, e.db, &e.key)?;
                    let value = e.value.into_value().map_err(|err| SnapshotLoadError::Invalid {
                        key: String::from_utf8_lossy(&e.key).into_owned(),
                        reason: err.to_string(),
                    })?;
                    let mut entry = KeyEntry::new(&e.key, value);
                    entry.deadline = e.deadline_ms;
                    entry.meta = meta;
                    let h = hash(&e.key);
                    let si = inner.shard_of(h);
                    let new = entry.mem() as isize;
                    let old = inner.shards[si].lock().dbs[db].insert(h, entry);
                    inner.add_used(si, new - old.map_or(0, |o| o.mem() as isize));
                }
            }
        }
        Ok(n)
    }
}

fn check_db(databases: usize, db: u32, key: &[u8]) -> Result<usize, SnapshotLoadError> {
    if (db as usize) < databases {
        Ok(db as usize)
    } else {
        Err(SnapshotLoadError::Database { key: String::from_utf8_lossy(key).into_owned(), db, databases })
    }
}
