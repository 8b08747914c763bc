//! The execution context a command runs in.
//!
//! A [`Cx`] holds the locks of the shards a command (or a whole MULTI/EXEC
//! block) may touch, and is the only way command code reads or changes
//! keys. Every access goes through it so that the cross-cutting rules hold
//! for every command without the command knowing:
//!
//! - lazy expiry: a key past its deadline is deleted on access, and the
//!   deletion is recorded as a `DEL` effect (never during replay, where
//!   the log's own `DEL`s do it; in replica mode a read treats it as
//!   absent and leaves it to the primary's `DEL`);
//! - memory accounting, LRU/LFU metadata, WATCH invalidation;
//! - an emptied collection is deleted, as in Redis;
//! - the command's effect is recorded: by default the command itself, or
//!   whatever the command rewrote itself into ([`Cx::propagate`]).

use std::sync::atomic::Ordering;

use parking_lot::MutexGuard;
use smallvec::SmallVec;

use crate::engine::{Inner, Shard};
use crate::keyspace::{Db, KeyEntry, ObjRef, Value};
use crate::notify::{self, Event};
use crate::record::Op;
use crate::reply::{errors, Reply};
use crate::table::{hash, Keyed};
use crate::types::{Hash, List, Set, ZSet};

/// How a write treats the key's existing expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ttl {
    /// Remove any expiry (plain SET).
    Clear,
    /// Keep the existing expiry (KEEPTTL, or a value update in place).
    Keep,
    /// Expire at this absolute Unix time in milliseconds.
    At(u64),
}

/// Whether a key is looked up to be read or to be written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

/// What the current command records as its effect.
enum Propagate {
    /// Nothing changed (yet).
    Nothing,
    /// The command as the client sent it.
    Original,
    /// Explicit ops, chosen by the command.
    Rewritten(Vec<Op>),
}

/// Execution context; see the module documentation.
pub(crate) struct Cx<'a> {
    pub(crate) eng: &'a Inner,
    guards: SmallVec<[(usize, MutexGuard<'a, Shard>); 4]>,
    /// The selected database.
    pub(crate) db: usize,
    /// The time the command runs at, read once so a command sees one instant.
    pub(crate) now: u64,
    /// Re-applying a record: no lazy expiry, no eviction, no effects.
    pub(crate) replay: bool,
    /// The client speaks RESP3 (some replies are shaped differently).
    pub(crate) resp3: bool,
    /// The engine is a replica's: reads leave expired keys in place. Read
    /// once, while the context's shards are locked, so a command runs
    /// wholly in one mode (`Engine::set_replica_mode` switches under every
    /// shard lock).
    replica: bool,
    journaling: bool,
    effects: Vec<Op>,
    propagate: Propagate,
    cmd_db: usize,
    pub(crate) events: Vec<Event>,
    /// Keys changed by this context, for WATCH-free bookkeeping such as
    /// blocking-pop wake-ups (read by the server).
    pub(crate) changed: u64,
    pub(crate) rng: fastrand::Rng,
}

impl<'a> Cx<'a> {
    pub(crate) fn new(
        eng: &'a Inner,
        guards: SmallVec<[(usize, MutexGuard<'a, Shard>); 4]>,
        db: usize,
        replay: bool,
        resp3: bool,
        journaling: bool,
    ) -> Self {
        Cx {
            eng,
            guards,
            db,
            now: eng.clock.now_ms(),
            replay,
            resp3,
            replica: eng.replica.load(Ordering::Relaxed),
            journaling: journaling && !replay,
            effects: Vec::new(),
            propagate: Propagate::Nothing,
            cmd_db: db,
            events: Vec::new(),
            changed: 0,
            rng: fastrand::Rng::new(),
        }
    }

    // ----- locking ---------------------------------------------------------

    fn shard_index(&self, h: u64) -> usize {
        self.eng.shard_of(h)
    }

    fn shard_mut(&mut self, idx: usize) -> &mut Shard {
        if self.guards.len() == self.eng.shards.len() {
            return &mut self.guards[idx].1;
        }
        match self.guards.iter_mut().find(|(i, _)| *i == idx) {
            Some((_, g)) => g,
            // A command touched a key its key specification did not name:
            // a bug in the command table, never a consequence of input.
            None => panic!("shard {idx} is not locked by this command; its key specification is wrong"),
        }
    }

    /// All locked shards (every shard for commands that lock everything).
    pub(crate) fn shards_mut(&mut self) -> impl Iterator<Item = &mut Shard> + use<'_, 'a> {
        self.guards.iter_mut().map(|(_, g)| &mut **g)
    }

    pub(crate) fn locks_all(&self) -> bool {
        self.guards.len() == self.eng.shards.len()
    }

    fn db_of(&mut self, h: u64, db: usize) -> &mut Db {
        let idx = self.shard_index(h);
        &mut self.shard_mut(idx).dbs[db]
    }

    /// The database part for a write of `key`: a running snapshot keeps the
    /// key's value first. Every write to a key gets its `Db` here.
    fn db_for_write(&mut self, h: u64, db: usize, key: &[u8]) -> &mut Db {
        let idx = self.shard_index(h);
        let shard = self.shard_mut(idx);
        shard.before_write(db, h, key);
        &mut shard.dbs[db]
    }

    /// The current database's part in the shard of hash `h`.
    pub(crate) fn db_mut(&mut self, h: u64) -> &mut Db {
        let db = self.db;
        self.db_of(h, db)
    }

    // ----- command bookkeeping --------------------------------------------

    /// Called by the engine before each command of the context.
    ///
    /// The clock is read once per context: every command of a MULTI/EXEC
    /// block sees the same time, as in Redis 7.
    pub(crate) fn begin_command(&mut self) {
        self.propagate = Propagate::Nothing;
        self.cmd_db = self.db;
    }

    /// Called by the engine after each command: records its effect.
    pub(crate) fn end_command(&mut self, argv: &[&[u8]], reply: &Reply) {
        let p = std::mem::replace(&mut self.propagate, Propagate::Nothing);
        // A command that failed changed nothing (commands validate before
        // they write), except for the lazy expirations already recorded.
        if reply.is_error() {
            return;
        }
        let n = match p {
            Propagate::Nothing => 0,
            Propagate::Original => {
                if self.journaling {
                    self.effects.push(Op::new(self.cmd_db, argv));
                }
                1
            }
            Propagate::Rewritten(ops) => {
                let n = ops.len() as u64;
                if self.journaling {
                    self.effects.extend(ops);
                }
                n
            }
        };
        if n > 0 {
            if let Some((_, g)) = self.guards.first_mut() {
                g.stats.dirty += n;
            }
        }
    }

    /// Takes the effects recorded so far.
    pub(crate) fn take_effects(&mut self) -> Vec<Op> {
        std::mem::take(&mut self.effects)
    }

    /// Records the command itself as its effect, unless it already chose a
    /// rewritten form. Every write helper calls this.
    pub(crate) fn mark_dirty(&mut self) {
        if matches!(self.propagate, Propagate::Nothing) {
            self.propagate = Propagate::Original;
        }
    }

    /// Records `argv` (in the current database) as (part of) this command's
    /// effect instead of the command itself. Call it once per op, in order.
    pub(crate) fn propagate(&mut self, argv: Vec<Vec<u8>>) {
        let op = Op::from_vecs(self.db, argv);
        match &mut self.propagate {
            Propagate::Rewritten(ops) => ops.push(op),
            p => *p = Propagate::Rewritten(vec![op]),
        }
    }

    /// Whether rewritten effects are being collected (callers may skip
    /// building them when not).
    pub(crate) fn journaling(&self) -> bool {
        self.journaling
    }

    /// The command changed nothing after all; record no effect for it.
    pub(crate) fn propagate_nothing(&mut self) {
        self.propagate = Propagate::Nothing;
    }

    /// Emits a keyspace event if notifications of `class` are enabled.
    pub(crate) fn notify(&mut self, class: u32, event: &'static str, key: &[u8]) {
        self.notify_db(class, event, key, self.db);
    }

    /// Emits `event` for a removal from a collection, then `del` if the
    /// removal emptied (and so deleted) it — Redis' order.
    pub(crate) fn notify_removed(&mut self, class: u32, event: &'static str, key: &[u8], emptied: bool) {
        self.notify(class, event, key);
        if emptied {
            self.notify(notify::GENERIC, "del", key);
        }
    }

    pub(crate) fn notify_db(&mut self, class: u32, event: &'static str, key: &[u8], db: usize) {
        let flags = self.eng.notify_flags.load(Ordering::Relaxed);
        if self.replay || flags & class == 0 || flags & (notify::KEYSPACE | notify::KEYEVENT) == 0 {
            return;
        }
        self.events.push(Event { class, event, db, key: key.to_vec() });
    }

    fn add_used(&self, h: u64, delta: isize) {
        self.eng.add_used(self.eng.shard_of(h), delta);
    }

    /// Invalidates WATCHes on `key` in `db` and counts the change.
    fn key_changed(&mut self, h: u64, db: usize, key: &[u8]) {
        self.changed += 1;
        let idx = self.shard_index(h);
        let shard = self.shard_mut(idx);
        shard.touch_watched(db, key);
    }

    // ----- reads -----------------------------------------------------------

    /// Whether `key` is past its deadline, and so absent for this command.
    /// An expired key is deleted and the deletion recorded as a `DEL` —
    /// except for a read in replica mode, which leaves it in place: a
    /// replica changes nothing on its own, the primary's `DEL` removes it.
    ///
    /// NOTE: a write in replica mode (only if the embedder lets a client
    /// write to a replica) deletes and journals as a primary does, so that
    /// the replica's own log stays equal to its memory.
    fn expire_if_needed(&mut self, h: u64, db: usize, key: &[u8], access: Access) -> bool {
        if self.replay {
            return false;
        }
        let now = self.now;
        let expired = self.db_of(h, db).get(h, key).is_some_and(|e| e.deadline != 0 && e.deadline <= now);
        if !expired {
            return false;
        }
        if self.replica && access == Access::Read {
            return true;
        }
        if let Some(old) = self.db_for_write(h, db, key).remove(h, key) {
            self.add_used(h, -(old.mem() as isize));
        }
        self.key_changed(h, db, key);
        let idx = self.shard_index(h);
        let stats = &mut self.shard_mut(idx).stats;
        stats.expired_keys += 1;
        stats.dirty += 1;
        if self.journaling {
            self.effects.push(Op::new(db, &[b"DEL", key]));
        }
        self.notify_db(notify::EXPIRED, "expired", key, db);
        true
    }

    /// Looks `key` up for reading: expires it if due, updates its access
    /// metadata, counts a hit or a miss.
    pub(crate) fn lookup(&mut self, key: &[u8]) -> Option<ObjRef<'_>> {
        let h = hash(key);
        let db = self.db;
        let expired = self.expire_if_needed(h, db, key, Access::Read);
        let eng = self.eng;
        let now = self.now;
        let replay = self.replay;
        let idx = self.shard_index(h);
        let shard = self.shard_mut(idx);
        let found = if expired { None } else { shard.dbs[db].get_mut(h, key) };
        match found {
            Some(e) => {
                if !replay {
                    eng.touch_meta(&mut e.meta, now);
                    shard.stats.keyspace_hits += 1;
                }
                Some(e.obj())
            }
            None => {
                if !replay {
                    shard.stats.keyspace_misses += 1;
                }
                None
            }
        }
    }

    /// Like [`Cx::lookup`] but without touching access metadata or hit
    /// statistics (TYPE, EXISTS-like internal checks, OBJECT).
    pub(crate) fn peek(&mut self, key: &[u8]) -> Option<&KeyEntry> {
        let h = hash(key);
        let db = self.db;
        if self.expire_if_needed(h, db, key, Access::Read) {
            return None;
        }
        self.db_of(h, db).get(h, key)
    }

    /// Like [`Cx::peek`] in database `db`.
    pub(crate) fn peek_in(&mut self, db: usize, key: &[u8]) -> Option<&KeyEntry> {
        let h = hash(key);
        if self.expire_if_needed(h, db, key, Access::Read) {
            return None;
        }
        self.db_of(h, db).get(h, key)
    }

    pub(crate) fn exists(&mut self, key: &[u8]) -> bool {
        self.peek(key).is_some()
    }

    /// The key's string value; WRONGTYPE for other types.
    pub(crate) fn get_str(&mut self, key: &[u8]) -> Result<Option<&[u8]>, Reply> {
        match self.lookup(key) {
            None => Ok(None),
            Some(ObjRef::Str(s)) => Ok(Some(s)),
            Some(_) => Err(errors::WRONGTYPE),
        }
    }

    pub(crate) fn get_list(&mut self, key: &[u8]) -> Result<Option<&List>, Reply> {
        match self.lookup(key) {
            None => Ok(None),
            Some(ObjRef::List(l)) => Ok(Some(l)),
            Some(_) => Err(errors::WRONGTYPE),
        }
    }

    pub(crate) fn get_hash(&mut self, key: &[u8]) -> Result<Option<&Hash>, Reply> {
        match self.lookup(key) {
            None => Ok(None),
            Some(ObjRef::Hash(h)) => Ok(Some(h)),
            Some(_) => Err(errors::WRONGTYPE),
        }
    }

    pub(crate) fn get_set(&mut self, key: &[u8]) -> Result<Option<&Set>, Reply> {
        match self.lookup(key) {
            None => Ok(None),
            Some(ObjRef::Set(s)) => Ok(Some(s)),
            Some(_) => Err(errors::WRONGTYPE),
        }
    }

    pub(crate) fn get_zset(&mut self, key: &[u8]) -> Result<Option<&ZSet>, Reply> {
        match self.lookup(key) {
            None => Ok(None),
            Some(ObjRef::ZSet(z)) => Ok(Some(z)),
            Some(_) => Err(errors::WRONGTYPE),
        }
    }

    /// The key's deadline: `None` if the key does not exist, `Some(0)` if it
    /// has no expiry.
    pub(crate) fn deadline(&mut self, key: &[u8]) -> Option<u64> {
        self.peek(key).map(|e| e.deadline)
    }

    // ----- writes ----------------------------------------------------------

    /// Sets `key` to the string `val`, replacing any value of any type.
    pub(crate) fn set_str(&mut self, key: &[u8], val: &[u8], ttl: Ttl) {
        let h = hash(key);
        let db = self.db;
        self.expire_if_needed(h, db, key, Access::Write);
        let meta = self.eng.initial_meta(self.now);
        let d = self.db_for_write(h, db, key);
        let delta = match d.get_mut(h, key) {
            Some(e) if ttl == Ttl::Keep || (ttl == Ttl::Clear && e.deadline == 0) => {
                let old = e.mem() as isize;
                e.set_str(val);
                e.meta = meta;
                e.mem() as isize - old
            }
            _ => {
                let mut e = KeyEntry::new_str(key, val);
                e.meta = meta;
                if let Ttl::At(t) = ttl {
                    e.deadline = t;
                }
                let new = e.mem() as isize;
                match d.insert(h, e) {
                    Some(old) => new - old.mem() as isize,
                    None => new,
                }
            }
        };
        self.add_used(h, delta);
        self.key_changed(h, db, key);
        self.mark_dirty();
    }

    /// Sets `key` to `value` (any type) in database `db`, replacing what was
    /// there, with expiry `deadline` (0 = none).
    pub(crate) fn set_value_in(&mut self, db: usize, key: &[u8], value: Value, deadline: u64) {
        let h = hash(key);
        self.expire_if_needed(h, db, key, Access::Write);
        let mut e = KeyEntry::new(key, value);
        e.deadline = deadline;
        e.meta = self.eng.initial_meta(self.now);
        let new = e.mem() as isize;
        let delta = match self.db_for_write(h, db, key).insert(h, e) {
            Some(old) => new - old.mem() as isize,
            None => new,
        };
        self.add_used(h, delta);
        self.key_changed(h, db, key);
        self.mark_dirty();
    }

    /// [`Cx::set_value_in`] in the current database.
    pub(crate) fn set_value(&mut self, key: &[u8], value: Value, deadline: u64) {
        self.set_value_in(self.db, key, value, deadline);
    }

    /// Deletes `key` from database `db`; true if it existed.
    pub(crate) fn delete_in(&mut self, db: usize, key: &[u8]) -> bool {
        self.take_in(db, key).is_some()
    }

    /// Deletes `key`; true if it existed.
    pub(crate) fn delete(&mut self, key: &[u8]) -> bool {
        self.delete_in(self.db, key)
    }

    /// Removes `key` from database `db` and returns its value and deadline.
    pub(crate) fn take_in(&mut self, db: usize, key: &[u8]) -> Option<(Value, u64)> {
        let h = hash(key);
        self.expire_if_needed(h, db, key, Access::Write);
        let old = self.db_for_write(h, db, key).remove(h, key)?;
        self.add_used(h, -(old.mem() as isize));
        self.key_changed(h, db, key);
        self.mark_dirty();
        let deadline = old.deadline;
        Some((old.into_value(), deadline))
    }

    /// A deep copy of `key`'s value and its deadline, from database `db`.
    pub(crate) fn clone_in(&mut self, db: usize, key: &[u8]) -> Option<(Value, u64)> {
        self.peek_in(db, key).map(|e| (e.clone_value(), e.deadline))
    }

    /// Sets (`deadline > 0`) or removes (`0`) the expiry of `key`; false if
    /// the key does not exist.
    pub(crate) fn set_deadline(&mut self, key: &[u8], deadline: u64) -> bool {
        let h = hash(key);
        let db = self.db;
        self.expire_if_needed(h, db, key, Access::Write);
        if !self.db_for_write(h, db, key).set_deadline(h, key, deadline) {
            return false;
        }
        self.key_changed(h, db, key);
        self.mark_dirty();
        true
    }

    /// Runs `f` on the value of `key` for modification.
    ///
    /// `check` extracts the wanted type from the value (`None` means
    /// WRONGTYPE); `create` makes an empty value when the key is missing
    /// (`None`: a missing key returns `Ok(None)` and `f` does not run).
    /// Afterwards memory is re-accounted, an emptied collection is deleted,
    /// WATCHes are invalidated and the command is marked as a write.
    pub(crate) fn modify<T, R>(
        &mut self,
        key: &[u8],
        create: Option<fn() -> Value>,
        check: fn(&mut Value) -> Option<&mut T>,
        f: impl FnOnce(&mut T) -> R,
    ) -> Result<Option<R>, Reply> {
        let h = hash(key);
        let db = self.db;
        self.expire_if_needed(h, db, key, Access::Write);
        let meta = self.eng.initial_meta(self.now);
        let d = self.db_for_write(h, db, key);
        let (r, delta, emptied) = match d.get_mut(h, key) {
            Some(e) => {
                // Ask the type check about an empty string before touching
                // an inline string, so a WRONGTYPE leaves it inline.
                if e.is_inline_str() && check(&mut Value::Str(Vec::new())).is_none() {
                    return Err(errors::WRONGTYPE);
                }
                let old = e.mem() as isize;
                let Some(t) = check(e.value_mut()) else {
                    return Err(errors::WRONGTYPE);
                };
                let r = f(t);
                e.meta = meta;
                let emptied = e.value_mut().is_empty_collection();
                (r, e.mem() as isize - old, emptied)
            }
            None => {
                let Some(make) = create else {
                    return Ok(None);
                };
                let mut v = make();
                let Some(t) = check(&mut v) else {
                    return Err(errors::WRONGTYPE);
                };
                let r = f(t);
                if v.is_empty_collection() {
                    return Ok(Some(r));
                }
                let mut e = KeyEntry::new(key, v);
                e.meta = meta;
                let new = e.mem() as isize;
                d.insert(h, e);
                (r, new, false)
            }
        };
        self.add_used(h, delta);
        if emptied {
            if let Some(old) = self.db_of(h, db).remove(h, key) {
                self.add_used(h, -(old.mem() as isize));
            }
        }
        self.key_changed(h, db, key);
        self.mark_dirty();
        Ok(Some(r))
    }

    /// [`Cx::modify`] for strings (an inline string moves to a growable
    /// buffer, as APPEND and SETRANGE want).
    pub(crate) fn str_mut<R>(
        &mut self,
        key: &[u8],
        create: bool,
        f: impl FnOnce(&mut Vec<u8>) -> R,
    ) -> Result<Option<R>, Reply> {
        self.modify(
            key,
            create.then_some((|| Value::Str(Vec::new())) as fn() -> Value),
            |v| match v {
                Value::Str(s) => Some(s),
                _ => None,
            },
            f,
        )
    }

    /// [`Cx::modify`] for lists.
    pub(crate) fn list_mut<R>(
        &mut self,
        key: &[u8],
        create: bool,
        f: impl FnOnce(&mut List) -> R,
    ) -> Result<Option<R>, Reply> {
        self.modify(
            key,
            create.then_some((|| Value::List(List::new())) as fn() -> Value),
            |v| match v {
                Value::List(l) => Some(l),
                _ => None,
            },
            f,
        )
    }

    /// [`Cx::modify`] for hashes.
    pub(crate) fn hash_mut<R>(
        &mut self,
        key: &[u8],
        create: bool,
        f: impl FnOnce(&mut Hash) -> R,
    ) -> Result<Option<R>, Reply> {
        self.modify(
            key,
            create.then_some((|| Value::Hash(Hash::new())) as fn() -> Value),
            |v| match v {
                Value::Hash(x) => Some(x),
                _ => None,
            },
            f,
        )
    }

    /// [`Cx::modify`] for sets.
    pub(crate) fn set_mut<R>(
        &mut self,
        key: &[u8],
        create: bool,
        f: impl FnOnce(&mut Set) -> R,
    ) -> Result<Option<R>, Reply> {
        self.modify(
            key,
            create.then_some((|| Value::Set(Set::new())) as fn() -> Value),
            |v| match v {
                Value::Set(x) => Some(x),
                _ => None,
            },
            f,
        )
    }

    /// [`Cx::modify`] for sorted sets.
    pub(crate) fn zset_mut<R>(
        &mut self,
        key: &[u8],
        create: bool,
        f: impl FnOnce(&mut ZSet) -> R,
    ) -> Result<Option<R>, Reply> {
        self.modify(
            key,
            create.then_some((|| Value::ZSet(ZSet::default())) as fn() -> Value),
            |v| match v {
                Value::ZSet(x) => Some(x),
                _ => None,
            },
            f,
        )
    }

    // ----- whole databases -------------------------------------------------

    /// Deletes every key of database `db` in the locked shards. Returns the
    /// number of keys removed.
    pub(crate) fn flush_db(&mut self, db: usize) -> usize {
        let mut removed = 0;
        let eng = self.eng;
        for (idx, shard) in self.guards.iter_mut() {
            shard.snapshot_finish_walk();
            shard.track_whole_db(db, false);
            let d = &mut shard.dbs[db];
            removed += d.len();
            let freed = d.keys.iter().map(|e| e.mem() as isize).sum::<isize>();
            eng.add_used(*idx, -freed);
            d.clear();
            shard.touch_all_watched(db);
        }
        self.changed += removed as u64;
        self.mark_dirty();
        removed
    }

    /// Swaps databases `a` and `b` in every locked shard.
    pub(crate) fn swap_dbs(&mut self, a: usize, b: usize) {
        let mut moved = 0;
        for shard in self.shards_mut() {
            shard.snapshot_finish_walk();
            shard.track_whole_db(a, true);
            moved += shard.dbs[a].len() + shard.dbs[b].len();
            shard.dbs.swap(a, b);
            shard.touch_all_watched(a);
            shard.touch_all_watched(b);
        }
        // Every key of both databases changed place: clients blocked on
        // either must be looked at again.
        self.changed += moved.max(1) as u64;
        self.mark_dirty();
    }

    /// A random live key of the current database, if any.
    pub(crate) fn random_key(&mut self) -> Option<Vec<u8>> {
        let db = self.db;
        let nonempty: Vec<usize> = (0..self.guards.len()).filter(|&i| self.guards[i].1.dbs[db].len() > 0).collect();
        // Expired keys are skipped (and deleted) like Redis' dbRandomKey,
        // within a bounded number of tries.
        for _ in 0..100 {
            if nonempty.is_empty() {
                return None;
            }
            let gi = nonempty[self.rng.usize(..nonempty.len())];
            let rng = &mut self.rng;
            let Some(key) = self.guards[gi].1.dbs[db].keys.random(rng).map(|e| e.key().to_vec()) else {
                continue;
            };
            if self.peek(&key).is_some() {
                return Some(key);
            }
        }
        None
    }
}
