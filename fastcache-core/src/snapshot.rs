//! Point-in-time snapshots of the keyspace, taken while writes go on.
//!
//! # How a snapshot stays consistent without fork or a pause
//!
//! [`Engine::begin_snapshot`] locks every shard (in index order, like any
//! all-shard command), reads the caller's log position — every record at or
//! below it is in memory, none above it, because records are journalled
//! while their keys are locked — and arms each shard with a walk state.
//! Then all locks are released: the barrier costs 64 uncontended lock
//! acquisitions, not a copy.
//!
//! A [`SnapshotCursor`] then walks the shards, a few hundred keys per lock
//! hold, encoding each key as it is at that moment. The walk of a shard goes
//! database by database and, inside one, in the table's *position* order
//! (see `Table::visit_from`), so "has the walk passed this key?" is a
//! comparison. A write to a key the walk has not passed yet first encodes
//! the key's current value (or its absence) into the shard's pending buffer
//! and remembers the key, and the walk skips remembered keys. So every key
//! is encoded exactly once, with its value at the barrier, and the writer
//! pays one encode for the first write of each key during the snapshot:
//! Dragonfly's per-bucket versioning, at key granularity.
//!
//! Whole-database writes (FLUSHDB, FLUSHALL, SWAPDB) finish the walk of
//! every shard they lock before they run; they are rare and a snapshot of
//! what they are about to discard has to be taken anyway.
//!
//! Memory beyond the data set is the pending buffers (pre-images of keys
//! written during the snapshot) and the remembered keys — proportional to
//! the writes during the snapshot, not to the data set — plus the chunk
//! the caller is filling.
//!
//! # Entry encoding (version 1)
//!
//! A chunk of entries, as [`SnapshotCursor::fill`] appends them and
//! [`Engine::load_snapshot_chunk`] reads them, is a concatenation of
//! postcard-encoded [`SnapshotEntry`] values: database (varint), key
//! (length + bytes), deadline in Unix milliseconds (varint, 0 = none), and
//! the value as a [`ValueDto`]. The file around the chunks (compression,
//! checksums, manifest) belongs to `fastcache-snapshot`.

use std::sync::atomic::Ordering;

use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

use crate::dump::{ByteStr, ValueDto};
use crate::engine::{Engine, Shard};
use crate::keyspace::{Db, KeyEntry, ObjRef, Value};
use crate::table::{hash, position, Keyed, POS_END};
use crate::types::{Hash, List, Set, ZSet};

/// Keys encoded per lock hold by the walk: small enough that a writer
/// waiting on the shard waits tens of microseconds, large enough that the
/// locking does not dominate.
const WALK_STEP_KEYS: usize = 256;
/// Bytes encoded per lock hold, for shards of big collections.
const WALK_STEP_BYTES: usize = 64 * 1024;

/// One key as stored in a snapshot (the owned, decoded form).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotEntry {
    /// The database index.
    pub db: u32,
    /// The key.
    pub key: ByteStr,
    /// Absolute expiry in Unix milliseconds; 0 = none.
    pub deadline_ms: u64,
    /// The value.
    pub value: ValueDto,
}

/// Decodes every entry of a chunk, for tools that inspect a snapshot.
///
/// # Errors
/// [`SnapshotLoadError::Decode`] if the bytes are not a sequence of
/// entries.
pub fn decode_entries(raw: &[u8]) -> Result<Vec<SnapshotEntry>, SnapshotLoadError> {
    let mut out = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let offset = raw.len() - rest.len();
        let (e, r) = postcard::take_from_bytes::<SnapshotEntry>(rest)
            .map_err(|e| SnapshotLoadError::Decode { offset, reason: e.to_string() })?;
        out.push(e);
        rest = r;
    }
    Ok(out)
}

/// Why a snapshot chunk could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotLoadError {
    /// The bytes at `offset` of the chunk are not an entry.
    #[error("entry at chunk offset {offset} does not decode: {reason}")]
    Decode {
        /// Byte offset inside the chunk's decompressed payload.
        offset: usize,
        /// The decoder's message.
        reason: String,
    },
    /// An entry names a database this engine does not have.
    #[error("entry for key {key:?} names database {db}, but the server has {databases} databases; raise FASTCACHE_DATABASES")]
    Database {
        /// The key.
        key: String,
        /// The database in the entry.
        db: u32,
        /// The engine's database count.
        databases: usize,
    },
    /// An entry's value could never have been produced by an engine.
    #[error("entry for key {key:?} is invalid: {reason}")]
    Invalid {
        /// The key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The same key appears twice in a snapshot.
    #[error("key {key:?} of database {db} appears twice in the snapshot")]
    Duplicate {
        /// The key.
        key: String,
        /// Its database.
        db: u32,
    },
}

/// A snapshot is already being taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a snapshot is already in progress")]
pub struct SnapshotBusy;

// ----- encoding straight from the engine's structures ------------------------

/// Serialises like [`SnapshotEntry`] but borrows from the engine, so the
/// walk encodes without building a DTO per key.
#[derive(Serialize)]
pub(crate) struct EntryRef<'a> {
    db: u32,
    #[serde(with = "serde_bytes")]
    key: &'a [u8],
    deadline_ms: u64,
    value: ObjSer<'a>,
}

impl<'a> EntryRef<'a> {
    /// The entry of `e` in database `db`.
    pub(crate) fn of(db: usize, e: &'a KeyEntry) -> EntryRef<'a> {
        EntryRef { db: db as u32, key: e.key(), deadline_ms: e.deadline, value: ObjSer(e.obj()) }
    }
}

struct ObjSer<'a>(ObjRef<'a>);
struct ListSer<'a>(&'a List);
struct HashSer<'a>(&'a Hash);
struct SetSer<'a>(&'a Set);
struct ZSetSer<'a>(&'a ZSet);

// Variant indexes and names must match `ValueDto`'s declaration order; the
// `borrowed_encoding_matches_the_dto` test holds them to it.
impl Serialize for ObjSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            ObjRef::Str(v) => s.serialize_newtype_variant("ValueDto", 0, "String", serde_bytes::Bytes::new(v)),
            ObjRef::List(l) => s.serialize_newtype_variant("ValueDto", 1, "List", &ListSer(l)),
            ObjRef::Hash(h) => s.serialize_newtype_variant("ValueDto", 2, "Hash", &HashSer(h)),
            ObjRef::Set(x) => s.serialize_newtype_variant("ValueDto", 3, "Set", &SetSer(x)),
            ObjRef::ZSet(z) => s.serialize_newtype_variant("ValueDto", 4, "ZSet", &ZSetSer(z)),
        }
    }
}

impl Serialize for ListSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for v in self.0.iter() {
            seq.serialize_element(serde_bytes::Bytes::new(v))?;
        }
        seq.end()
    }
}

impl Serialize for HashSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (f, v) in self.0.iter() {
            seq.serialize_element(&(serde_bytes::Bytes::new(f), serde_bytes::Bytes::new(v)))?;
        }
        seq.end()
    }
}

impl Serialize for SetSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for m in self.0.iter() {
            seq.serialize_element(serde_bytes::Bytes::new(m))?;
        }
        seq.end()
    }
}

impl Serialize for ZSetSer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (m, score) in self.0.iter() {
            seq.serialize_element(&(serde_bytes::Bytes::new(m), score))?;
        }
        seq.end()
    }
}

/// Appends one entry's encoding to `out`.
fn encode_entry(out: &mut Vec<u8>, db: usize, e: &KeyEntry) {
    let entry = EntryRef::of(db, e);
    // Writing into a Vec cannot fail, and every value serialises (no maps
    // with non-string keys, sequences always have a known length).
    if let Ok(v) = postcard::to_extend(&entry, std::mem::take(out)) {
        *out = v;
    }
}

/// Decoding form that borrows the key and short string values from the
/// chunk, so loading a string key allocates once (its entry).
#[derive(Deserialize)]
struct EntryDe<'a> {
    db: u32,
    #[serde(borrow)]
    key: &'a [u8],
    deadline_ms: u64,
    #[serde(borrow)]
    value: ValueDe<'a>,
}

#[derive(Deserialize)]
enum ValueDe<'a> {
    String(&'a [u8]),
    List(Vec<ByteStr>),
    Hash(Vec<(ByteStr, ByteStr)>),
    Set(Vec<ByteStr>),
    ZSet(Vec<(ByteStr, f64)>),
}

// ----- the walk ----------------------------------------------------------------

/// A shard's part of a running snapshot; see the module documentation.
pub(crate) struct ShardSnap {
    /// The database the walk is in; every database below it is done.
    db: usize,
    /// The walk's position inside `db`: keys below it are done.
    pos: u64,
    /// Per database: keys a writer preserved ahead of the walk.
    preserved: Vec<foldhash::HashSet<Box<[u8]>>>,
    /// Encoded pre-images waiting for the cursor.
    pending: Vec<u8>,
    pending_entries: u32,
}

impl ShardSnap {
    fn new(databases: usize) -> ShardSnap {
        ShardSnap {
            db: 0,
            pos: 0,
            preserved: (0..databases).map(|_| foldhash::HashSet::default()).collect(),
            pending: Vec::new(),
            pending_entries: 0,
        }
    }

    fn passed(&self, db: usize, h: u64) -> bool {
        db < self.db || (db == self.db && position(h) < self.pos)
    }

    /// Keeps the value `key` has now (or its absence) before a write.
    fn preserve(&mut self, d: &Db, db: usize, h: u64, key: &[u8]) {
        if self.passed(db, h) || self.preserved[db].contains(key) {
            return;
        }
        self.preserved[db].insert(key.into());
        if let Some(e) = d.get(h, key) {
            encode_entry(&mut self.pending, db, e);
            self.pending_entries += 1;
        }
    }

    /// Walks on, appending to `out`, until about `max_keys` keys or
    /// `max_bytes` of `out` are reached. Returns the keys encoded; the walk
    /// is complete when `self.db == dbs.len()`.
    fn walk(&mut self, dbs: &[Db], out: &mut Vec<u8>, max_keys: usize, max_bytes: usize) -> u32 {
        let mut n = 0usize;
        while self.db < dbs.len() && n < max_keys && out.len() < max_bytes {
            let db = self.db;
            let preserved = &self.preserved[db];
            self.pos = dbs[db].keys.visit_from(self.pos, |e| {
                if preserved.is_empty() || !preserved.contains(e.key()) {
                    encode_entry(out, db, e);
                    n += 1;
                }
                n < max_keys && out.len() < max_bytes
            });
            if self.pos >= POS_END {
                self.preserved[db] = foldhash::HashSet::default();
                self.db += 1;
                self.pos = 0;
            }
        }
        n as u32
    }

    fn complete(&self, databases: usize) -> bool {
        self.db >= databases
    }
}

impl Shard {
    /// Lets a running snapshot keep `key`'s value before a write changes it.
    /// Every write to a key goes through here (via `Cx`, eviction and active
    /// expiry); with no snapshot running it is one branch.
    #[inline]
    pub(crate) fn before_write(&mut self, db: usize, h: u64, key: &[u8]) {
        if let Some(snap) = self.snap.as_deref_mut() {
            snap.preserve(&self.dbs[db], db, h, key);
        }
        if self.changes.is_some() || self.inc.is_some() {
            self.track_write(db, key);
        }
    }

    /// Finishes this shard's part of a running snapshot now, before a
    /// whole-database write (FLUSHDB, FLUSHALL, SWAPDB).
    pub(crate) fn snapshot_finish_walk(&mut self) {
        if let Some(snap) = self.snap.as_deref_mut() {
            let mut pending = std::mem::take(&mut snap.pending);
            let n = snap.walk(&self.dbs, &mut pending, usize::MAX, usize::MAX);
            snap.pending = pending;
            snap.pending_entries += n;
        }
    }
}

/// Pulls the entries of a running snapshot; see the module documentation.
/// Dropping it before it is done abandons the snapshot (writers stop paying
/// for it at once).
pub struct SnapshotCursor {
    engine: Engine,
    shard: usize,
    keys: u64,
}

impl std::fmt::Debug for SnapshotCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotCursor").field("shard", &self.shard).field("keys", &self.keys).finish()
    }
}

impl SnapshotCursor {
    /// Appends encoded entries to `out` until it holds at least `target`
    /// bytes or the snapshot is complete, and returns how many entries it
    /// appended. Locks one shard at a time, briefly.
    pub fn fill(&mut self, out: &mut Vec<u8>, target: usize) -> u32 {
        let inner = &*self.engine.0;
        let databases = inner.databases;
        let mut n = 0u32;
        while self.shard < inner.shards.len() && out.len() < target {
            let mut guard = inner.shards[self.shard].lock();
            let shard = &mut *guard;
            let Some(snap) = shard.snap.as_deref_mut() else {
                // Only this cursor disarms shards; a shard without state
                // has nothing left.
                self.shard += 1;
                continue;
            };
            if !snap.pending.is_empty() {
                out.extend_from_slice(&snap.pending);
                n += snap.pending_entries;
                snap.pending.clear();
                snap.pending_entries = 0;
            }
            let budget = target.saturating_sub(out.len()).min(WALK_STEP_BYTES);
            let limit = out.len() + budget;
            n += snap.walk(&shard.dbs, out, WALK_STEP_KEYS, limit);
            if snap.complete(databases) && snap.pending.is_empty() {
                shard.snap = None;
                self.shard += 1;
            }
            // Hand the lock to a waiting writer rather than re-taking it at
            // once: the walk would otherwise win the race for its own next
            // step and starve the clients of this shard.
            parking_lot::MutexGuard::unlock_fair(guard);
        }
        self.keys += u64::from(n);
        n
    }

    /// Whether every entry has been returned.
    pub fn is_done(&self) -> bool {
        self.shard >= self.engine.0.shards.len()
    }

    /// Entries returned so far.
    pub fn keys(&self) -> u64 {
        self.keys
    }

    /// Shards finished so far, and the total.
    pub fn progress(&self) -> (usize, usize) {
        (self.shard, self.engine.0.shards.len())
    }
}

impl Drop for SnapshotCursor {
    fn drop(&mut self) {
        let inner = &*self.engine.0;
        for slot in inner.shards.iter().skip(self.shard) {
            slot.lock().snap = None;
        }
        inner.snapshot_running.store(false, Ordering::Release);
    }
}

impl Engine {
    /// Starts a point-in-time snapshot.
    ///
    /// `at` runs while every shard is locked, so nothing is written while
    /// it runs: it returns the log position the snapshot is consistent at
    /// (the server reads its WAL's last LSN). The returned cursor yields the
    /// state as it was at that instant, however long it takes and whatever
    /// is written meanwhile.
    ///
    /// # Errors
    /// [`SnapshotBusy`] if another snapshot's cursor is still alive.
    pub fn begin_snapshot<T>(&self, at: impl FnOnce() -> T) -> Result<(SnapshotCursor, T), SnapshotBusy> {
        self.begin_snapshot_with(at, false)
    }

    /// [`Engine::begin_snapshot`]; `reset_changes` also restarts change
    /// tracking (if on) at the barrier.
    pub(crate) fn begin_snapshot_with<T>(
        &self,
        at: impl FnOnce() -> T,
        reset_changes: bool,
    ) -> Result<(SnapshotCursor, T), SnapshotBusy> {
        let inner = &*self.0;
        if inner.snapshot_running.swap(true, Ordering::AcqRel) {
            return Err(SnapshotBusy);
        }
        let mut guards: Vec<_> = inner.shards.iter().map(|s| s.lock()).collect();
        let t = at();
        // Old change sets are freed after the barrier: freeing a million
        // keys under every shard's lock would pause all clients.
        let mut retired = Vec::new();
        for g in &mut guards {
            g.snap = Some(Box::new(ShardSnap::new(inner.databases)));
            if reset_changes && g.changes.is_some() {
                retired.push(g.changes.replace(Box::new(crate::changes::ChangeSet::new(inner.databases))));
            }
        }
        drop(guards);
        drop(retired);
        Ok((SnapshotCursor { engine: self.clone(), shard: 0, keys: 0 }, t))
    }

    /// Whether a snapshot's cursor is alive.
    pub fn snapshot_in_progress(&self) -> bool {
        self.0.snapshot_running.load(Ordering::Acquire)
    }

    /// Inserts the entries of one snapshot chunk (as [`SnapshotCursor::fill`]
    /// produced them) and returns how many. Several threads may load
    /// different chunks at once; meant for an engine being restored, before
    /// it serves clients. Keys already past their deadline are loaded too:
    /// the log replayed after the snapshot may still refer to them, and
    /// expiry removes them afterwards.
    ///
    /// # Errors
    /// A [`SnapshotLoadError`] for bytes that are not valid entries; the
    /// entries before the bad one may have been inserted.
    pub fn load_snapshot_chunk(&self, raw: &[u8]) -> Result<u64, SnapshotLoadError> {
        let inner = &*self.0;
        let nshards = inner.shards.len();
        let now = inner.clock.now_ms();
        let meta = inner.initial_meta(now);
        let mut by_shard: Vec<Vec<(u64, usize, KeyEntry)>> = (0..nshards).map(|_| Vec::new()).collect();
        let mut rest = raw;
        let mut count = 0u64;
        while !rest.is_empty() {
            let offset = raw.len() - rest.len();
            let (e, r) = postcard::take_from_bytes::<EntryDe<'_>>(rest)
                .map_err(|err| SnapshotLoadError::Decode { offset, reason: err.to_string() })?;
            rest = r;
            let lossy = || String::from_utf8_lossy(e.key).into_owned();
            let db = e.db as usize;
            if db >= inner.databases {
                return Err(SnapshotLoadError::Database { key: lossy(), db: e.db, databases: inner.databases });
            }
            let mut entry = match e.value {
                ValueDe::String(s) => KeyEntry::new_str(e.key, s),
                other => {
                    let dto = match other {
                        ValueDe::String(_) => unreachable!("handled above"),
                        ValueDe::List(v) => ValueDto::List(v),
                        ValueDe::Hash(v) => ValueDto::Hash(v),
                        ValueDe::Set(v) => ValueDto::Set(v),
                        ValueDe::ZSet(v) => ValueDto::ZSet(v),
                    };
                    let value: Value = dto
                        .into_value()
                        .map_err(|err| SnapshotLoadError::Invalid { key: lossy(), reason: err.to_string() })?;
                    KeyEntry::new(e.key, value)
                }
            };
            entry.deadline = e.deadline_ms;
            entry.meta = meta;
            let h = hash(e.key);
            by_shard[inner.shard_of(h)].push((h, db, entry));
            count += 1;
        }
        for (si, entries) in by_shard.into_iter().enumerate() {
            if entries.is_empty() {
                continue;
            }
            let mut shard = inner.shards[si].lock();
            let mut added = 0isize;
            for (h, db, entry) in entries {
                added += entry.mem() as isize;
                if let Some(old) = shard.dbs[db].insert(h, entry) {
                    let key = String::from_utf8_lossy(old.key()).into_owned();
                    // Put the first one back: the state stays as loaded so far.
                    shard.dbs[db].insert(h, old);
                    inner.add_used(si, added);
                    return Err(SnapshotLoadError::Duplicate { key, db: db as u32 });
                }
            }
            inner.add_used(si, added);
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::T;

    fn snapshot_all(engine: &Engine) -> Vec<u8> {
        let (mut cur, ()) = engine.begin_snapshot(|| ()).unwrap();
        let mut out = Vec::new();
        while !cur.is_done() {
            cur.fill(&mut out, 1 << 20);
        }
        out
    }

    #[test]
    fn borrowed_encoding_matches_the_dto() {
        let mut t = T::new();
        t.ok(&["SET", "s", "v"]);
        t.ok(&["RPUSH", "l", "a", "b"]);
        t.ok(&["HSET", "h", "f", "v"]);
        t.ok(&["SADD", "st", "m"]);
        t.ok(&["ZADD", "z", "1.5", "m"]);
        t.ok(&["PEXPIREAT", "s", "99999999999999"]);
        let raw = snapshot_all(&t.engine);
        let entries = decode_entries(&raw).unwrap();
        assert_eq!(entries.len(), 5);
        for e in &entries {
            let k = std::str::from_utf8(&e.key).unwrap().to_string();
            let want = match k.as_str() {
                "s" => ValueDto::String(b"v".as_slice().into()),
                "l" => ValueDto::List(vec![b"a".as_slice().into(), b"b".as_slice().into()]),
                "h" => ValueDto::Hash(vec![(b"f".as_slice().into(), b"v".as_slice().into())]),
                "st" => ValueDto::Set(vec![b"m".as_slice().into()]),
                "z" => ValueDto::ZSet(vec![(b"m".as_slice().into(), 1.5)]),
                other => panic!("unexpected key {other}"),
            };
            assert_eq!(e.value, want);
            assert_eq!(e.deadline_ms, if k == "s" { 99999999999999 } else { 0 });
        }
    }

    #[test]
    fn writes_during_a_snapshot_do_not_leak_into_it() {
        let mut t = T::new();
        for i in 0..2000 {
            t.ok(&["SET", &format!("k{i}"), &format!("v{i}")]);
        }
        t.ok(&["SELECT", "3"]);
        t.ok(&["RPUSH", "list", "a"]);
        t.ok(&["SELECT", "0"]);
        let before = t.engine.clone();
        let expected = crate::testutil::state(&before);
        let (mut cur, ()) = t.engine.begin_snapshot(|| ()).unwrap();
        let mut out = Vec::new();
        let mut round = 0;
        while !cur.is_done() {
            let target = out.len() + 4096;
            cur.fill(&mut out, target);
            // Interleave writes of every kind with the walk.
            round += 1;
            t.ok(&["SET", &format!("k{round}"), "changed"]);
            t.ok(&["DEL", &format!("k{}", 1999 - round)]);
            t.ok(&["SET", &format!("new{round}"), "x"]);
            if round == 3 {
                t.ok(&["SELECT", "3"]);
                t.ok(&["RPUSH", "list", "b"]);
                t.ok(&["SELECT", "0"]);
            }
        }
        drop(cur);
        let copy = Engine::default();
        copy.load_snapshot_chunk(&out).unwrap();
        assert_eq!(crate::testutil::state(&copy), expected);
    }

    #[test]
    fn flush_and_swap_during_a_snapshot_keep_the_old_state() {
        let mut t = T::new();
        for i in 0..500 {
            t.ok(&["SET", &format!("k{i}"), "v"]);
        }
        t.ok(&["SELECT", "1"]);
        t.ok(&["SET", "one", "1"]);
        t.ok(&["SELECT", "0"]);
        let expected = crate::testutil::state(&t.engine);
        let (mut cur, ()) = t.engine.begin_snapshot(|| ()).unwrap();
        let mut out = Vec::new();
        cur.fill(&mut out, 100);
        t.ok(&["SWAPDB", "0", "1"]);
        t.ok(&["FLUSHALL"]);
        while !cur.is_done() {
            let target = out.len() + 1000;
            cur.fill(&mut out, target);
        }
        let copy = Engine::default();
        copy.load_snapshot_chunk(&out).unwrap();
        assert_eq!(crate::testutil::state(&copy), expected);
    }

    #[test]
    fn only_one_snapshot_at_a_time_and_drop_disarms() {
        let t = T::new();
        let (cur, ()) = t.engine.begin_snapshot(|| ()).unwrap();
        assert!(t.engine.begin_snapshot(|| ()).is_err());
        assert!(t.engine.snapshot_in_progress());
        drop(cur);
        assert!(!t.engine.snapshot_in_progress());
        assert!(t.engine.0.shards.iter().all(|s| s.lock().snap.is_none()));
        assert!(t.engine.begin_snapshot(|| ()).is_ok());
    }

    #[test]
    fn bad_chunks_are_errors_not_panics() {
        let mut t = T::new();
        t.ok(&["SET", "a", "1"]);
        t.ok(&["SADD", "s", "x", "y"]);
        let raw = snapshot_all(&t.engine);
        for cut in 0..raw.len() {
            let e = Engine::default();
            let _ = e.load_snapshot_chunk(&raw[..cut]);
        }
        let e = Engine::default();
        e.load_snapshot_chunk(&raw).unwrap();
        assert!(matches!(e.load_snapshot_chunk(&raw), Err(SnapshotLoadError::Duplicate { .. })));
        let small = Engine::new(crate::EngineConfig { databases: 1, ..Default::default() });
        let mut t2 = T::new();
        t2.ok(&["SELECT", "5"]);
        t2.ok(&["SET", "a", "1"]);
        let raw2 = snapshot_all(&t2.engine);
        assert!(matches!(small.load_snapshot_chunk(&raw2), Err(SnapshotLoadError::Database { db: 5, .. })));
    }
}
