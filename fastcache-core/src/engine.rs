//! The engine: shards, sessions, and the one path every command takes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use smallvec::SmallVec;

use crate::clock::{Clock, SystemClock};
use crate::commands::{self, CommandSpec, LockSet};
use crate::cx::Cx;
use crate::error::{Error, Result};
use crate::evict::EvictionPolicy;
use crate::keyspace::Db;
use crate::notify::Event;
use crate::record::{Op, Record, RecordRef};
use crate::reply::{errors, Reply};
use crate::table::hash;

/// Configuration of an [`Engine`].
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Number of logical databases (Redis' `databases`, default 16).
    pub databases: usize,
    /// Number of lock shards; rounded up to a power of two. More shards
    /// mean less contention between cores and a little more fixed memory.
    pub shards: usize,
    /// Memory limit in bytes; 0 means none.
    pub maxmemory: u64,
    /// What to do when `maxmemory` is reached.
    pub maxmemory_policy: EvictionPolicy,
    /// Where time comes from.
    pub clock: Arc<dyn Clock>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            databases: 16,
            shards: 64,
            maxmemory: 0,
            maxmemory_policy: EvictionPolicy::NoEviction,
            clock: Arc::new(SystemClock),
        }
    }
}

/// Counters an operator reads in INFO (a snapshot, summed over shards).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Keys deleted because their TTL passed.
    pub expired_keys: u64,
    /// Keys deleted to stay under `maxmemory`.
    pub evicted_keys: u64,
    /// Successful key lookups.
    pub keyspace_hits: u64,
    /// Failed key lookups.
    pub keyspace_misses: u64,
    /// Changes since the last [`Engine::reset_dirty`].
    pub dirty: u64,
}

impl Stats {
    fn add(&mut self, o: &Stats) {
        self.expired_keys += o.expired_keys;
        self.evicted_keys += o.evicted_keys;
        self.keyspace_hits += o.keyspace_hits;
        self.keyspace_misses += o.keyspace_misses;
        self.dirty += o.dirty;
    }
}

/// Where the engine hands the records of writes, while the keys they touch
/// are still locked — so that records of the same key arrive in the order
/// they were applied (DESIGN.md, invariant 2).
pub trait Journal {
    /// Persists (or forwards) `record`. An error is answered to the client
    /// instead of the command's reply: the write is applied in memory but
    /// was not made durable, and the caller must stop acknowledging writes
    /// until it heals (invariant 6).
    fn append(&mut self, record: &Record) -> std::result::Result<(), JournalError>;

    /// Persists a record re-applied from its decoded-in-place form
    /// ([`Engine::apply_record_ref_with`]). The default builds the owned
    /// record and calls [`Journal::append`]; a journal that already holds
    /// the record's bytes (a replica writing its primary's) ignores it.
    fn append_replayed(&mut self, record: &RecordRef<'_>) -> std::result::Result<(), JournalError> {
        self.append(&record.to_record())
    }

    /// Whether records are wanted at all; when false the engine skips
    /// building them (persistence off).
    fn enabled(&self) -> bool {
        true
    }
}

/// A journal that drops records (persistence off).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoJournal;

impl Journal for NoJournal {
    fn append(&mut self, _record: &Record) -> std::result::Result<(), JournalError> {
        Ok(())
    }

    fn enabled(&self) -> bool {
        false
    }
}

impl<F: FnMut(&Record) -> std::result::Result<(), JournalError>> Journal for F {
    fn append(&mut self, record: &Record) -> std::result::Result<(), JournalError> {
        self(record)
    }
}

/// A journal failure; `message` is sent to the client as the error reply
/// (for example `MISCONF …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalError {
    /// The full error reply text, code first.
    pub message: String,
}

/// The result of executing one command.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The reply to send.
    pub reply: Reply,
    /// Keyspace events to publish (only classes enabled in
    /// [`Engine::set_notify_flags`]).
    pub events: Vec<Event>,
    /// How many keys the command changed (0 for reads); the server uses it
    /// to wake clients blocked on lists and sorted sets.
    pub changed: u64,
}

/// A key a session watches, and what it looked like when watched.
struct Watched {
    db: usize,
    key: Vec<u8>,
    /// The key existed with an expiry not yet reached at WATCH time; if it
    /// is past its deadline at EXEC, the transaction fails (Redis 7).
    deadline: u64,
}

/// The per-connection state the engine needs: selected database, protocol,
/// MULTI queue and WATCHed keys. Dropping a session unwatches its keys.
pub struct Session {
    engine: Engine,
    id: u64,
    db: usize,
    resp3: bool,
    multi: Option<Multi>,
    dirty_cas: Arc<AtomicBool>,
    watched: Vec<Watched>,
}

struct Multi {
    queue: Vec<Vec<Vec<u8>>>,
    aborted: bool,
}

impl Session {
    /// The session's unique id (CLIENT ID).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The selected database.
    pub fn db(&self) -> usize {
        self.db
    }

    /// Selects database `db`; false if it does not exist.
    pub fn select(&mut self, db: usize) -> bool {
        if db >= self.engine.0.databases {
            return false;
        }
        self.db = db;
        true
    }

    /// Whether the client speaks RESP3.
    pub fn resp3(&self) -> bool {
        self.resp3
    }

    /// Switches the reply shapes between RESP2 and RESP3.
    pub fn set_resp3(&mut self, on: bool) {
        self.resp3 = on;
    }

    /// Whether a MULTI is open.
    pub fn in_multi(&self) -> bool {
        self.multi.is_some()
    }

    /// Marks the open MULTI as failed, so EXEC answers EXECABORT: for
    /// commands the embedding server rejects while queueing (arity errors
    /// of its own commands).
    pub fn flag_multi_error(&mut self) {
        if let Some(m) = &mut self.multi {
            m.aborted = true;
        }
    }

    /// Leaves MULTI and forgets WATCHes (RESET, connection close).
    pub fn reset(&mut self) {
        self.multi = None;
        self.unwatch();
        self.db = 0;
        self.resp3 = false;
    }

    fn unwatch(&mut self) {
        if self.watched.is_empty() {
            return;
        }
        for w in std::mem::take(&mut self.watched) {
            let h = hash(&w.key);
            let mut shard = self.engine.0.shards[self.engine.0.shard_of(h)].lock();
            shard.unwatch(w.db, &w.key, &self.dirty_cas);
        }
        self.dirty_cas = Arc::new(AtomicBool::new(false));
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.unwatch();
    }
}

/// The sessions watching one key: (database, the session's dirty flag).
type Watchers = Vec<(usize, Arc<AtomicBool>)>;

/// One shard: its part of every database, and the WATCHes on its keys.
pub(crate) struct Shard {
    pub(crate) dbs: Box<[Db]>,
    watched: HashMap<Box<[u8]>, Watchers>,
    pub(crate) rng: fastrand::Rng,
    /// Counted under the shard's lock, so counting costs no shared atomic.
    pub(crate) stats: Stats,
    /// This shard's part of a running snapshot (see `snapshot.rs`).
    pub(crate) snap: Option<Box<crate::snapshot::ShardSnap>>,
    /// Keys changed since the last backup point, when tracking is on.
    pub(crate) changes: Option<Box<crate::changes::ChangeSet>>,
    /// This shard's part of a running incremental backup.
    pub(crate) inc: Option<Box<crate::changes::IncWalk>>,
}

impl Shard {
    fn new(databases: usize) -> Shard {
        Shard {
            dbs: (0..databases).map(|_| Db::default()).collect(),
            watched: HashMap::new(),
            rng: fastrand::Rng::new(),
            stats: Stats::default(),
            snap: None,
            changes: None,
            inc: None,
        }
    }

    pub(crate) fn touch_watched(&mut self, db: usize, key: &[u8]) {
        if self.watched.is_empty() {
            return;
        }
        if let Some(ws) = self.watched.get(key) {
            for (d, flag) in ws {
                if *d == db {
                    flag.store(true, Ordering::Release);
                }
            }
        }
    }

    pub(crate) fn touch_all_watched(&mut self, db: usize) {
        for ws in self.watched.values() {
            for (d, flag) in ws {
                if *d == db {
                    flag.store(true, Ordering::Release);
                }
            }
        }
    }

    fn watch(&mut self, db: usize, key: &[u8], flag: &Arc<AtomicBool>) {
        self.watched.entry(key.into()).or_default().push((db, flag.clone()));
    }

    fn unwatch(&mut self, db: usize, key: &[u8], flag: &Arc<AtomicBool>) {
        if let Some(ws) = self.watched.get_mut(key) {
            ws.retain(|(d, f)| !(*d == db && Arc::ptr_eq(f, flag)));
            if ws.is_empty() {
                self.watched.remove(key);
            }
        }
    }
}

/// A shard's lock and its memory counter. The counter sits outside the lock
/// so that `used_memory` can be read without locking every shard, and
/// beside it so that a write touches no cache line another core writes.
pub(crate) struct ShardSlot {
    mutex: Mutex<Shard>,
    pub(crate) used: AtomicI64,
}

impl ShardSlot {
    pub(crate) fn lock(&self) -> parking_lot::MutexGuard<'_, Shard> {
        self.mutex.lock()
    }
}

/// A cache-line aligned value, so neighbouring shards do not share a line.
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);

impl<T> std::ops::Deref for Padded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

pub(crate) struct Inner {
    pub(crate) shards: Box<[Padded<ShardSlot>]>,
    shard_shift: u32,
    pub(crate) databases: usize,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) maxmemory: AtomicU64,
    pub(crate) policy: AtomicU8,
    pub(crate) notify_flags: AtomicU32,
    next_session: AtomicU64,
    /// Set while the persistence layer cannot accept writes; the flag
    /// spares every write a lock on the message.
    write_blocked: AtomicBool,
    write_block: Mutex<Option<String>>,
    pub(crate) lfu_log_factor: AtomicU32,
    pub(crate) lfu_decay_time: AtomicU32,
    /// A snapshot cursor is alive (one at a time).
    pub(crate) snapshot_running: AtomicBool,
    /// Replica mode ([`Engine::set_replica_mode`]); changed only while
    /// every shard is locked, and read under a shard lock by everything
    /// that would otherwise delete keys on its own.
    pub(crate) replica: AtomicBool,
}

impl Inner {
    pub(crate) fn shard_of(&self, h: u64) -> usize {
        if self.shard_shift >= 64 {
            0
        } else {
            (h >> self.shard_shift) as usize
        }
    }

    /// Adds `delta` bytes to the memory counter of shard `idx`.
    pub(crate) fn add_used(&self, idx: usize, delta: isize) {
        if delta != 0 {
            self.shards[idx].used.fetch_add(delta as i64, Ordering::Relaxed);
        }
    }

    pub(crate) fn used(&self) -> u64 {
        self.shards.iter().map(|s| s.used.load(Ordering::Relaxed)).sum::<i64>().max(0) as u64
    }
}

/// An embeddable, thread-safe Redis keyspace. Cloning is cheap and shares
/// the same data.
///
/// ```
/// use fastcache_core::{Engine, Reply};
///
/// let engine = Engine::default();
/// let mut session = engine.session();
/// assert_eq!(engine.execute(&mut session, &[b"SET", b"greeting", b"hello"]), Reply::OK);
/// assert_eq!(engine.execute(&mut session, &[b"GET", b"greeting"]), Reply::Bulk(b"hello".to_vec()));
/// ```
#[derive(Clone)]
pub struct Engine(pub(crate) Arc<Inner>);

impl Default for Engine {
    fn default() -> Self {
        Engine::new(EngineConfig::default())
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("shards", &self.0.shards.len())
            .field("databases", &self.0.databases)
            .field("used_memory", &self.0.used())
            .finish()
    }
}

impl Engine {
    /// A new, empty engine.
    pub fn new(config: EngineConfig) -> Engine {
        let nshards = config.shards.clamp(1, 1 << 12).next_power_of_two();
        let bits = nshards.trailing_zeros();
        let databases = config.databases.clamp(1, 1 << 16);
        let inner = Inner {
            shards: (0..nshards)
                .map(|_| Padded(ShardSlot { mutex: Mutex::new(Shard::new(databases)), used: AtomicI64::new(0) }))
                .collect(),
            shard_shift: 64 - bits,
            databases,
            clock: config.clock,
            maxmemory: AtomicU64::new(config.maxmemory),
            policy: AtomicU8::new(config.maxmemory_policy as u8),
            notify_flags: AtomicU32::new(0),
            next_session: AtomicU64::new(1),
            write_blocked: AtomicBool::new(false),
            write_block: Mutex::new(None),
            lfu_log_factor: AtomicU32::new(10),
            lfu_decay_time: AtomicU32::new(1),
            snapshot_running: AtomicBool::new(false),
            replica: AtomicBool::new(false),
        };
        Engine(Arc::new(inner))
    }

    /// A new session (one per client connection).
    pub fn session(&self) -> Session {
        Session {
            engine: self.clone(),
            id: self.0.next_session.fetch_add(1, Ordering::Relaxed),
            db: 0,
            resp3: false,
            multi: None,
            dirty_cas: Arc::new(AtomicBool::new(false)),
            watched: Vec::new(),
        }
    }

    /// Executes one command without a journal and returns its reply.
    pub fn execute(&self, session: &mut Session, argv: &[&[u8]]) -> Reply {
        self.execute_with(session, argv, &mut NoJournal).reply
    }

    /// Executes one command; the record of its effect (if it wrote) goes to
    /// `journal` while the keys it touched are still locked.
    pub fn execute_with(&self, session: &mut Session, argv: &[&[u8]], journal: &mut dyn Journal) -> Outcome {
        let Some(name) = argv.first() else {
            return plain(Reply::err("ERR empty command"));
        };
        let Some(spec) = commands::lookup(name) else {
            if let Some(m) = &mut session.multi {
                m.aborted = true;
            }
            return plain(unknown_command(argv));
        };
        if !spec.arity_ok(argv.len()) {
            if let Some(m) = &mut session.multi {
                m.aborted = true;
            }
            return plain(errors::wrong_args(spec.name));
        }
        if let Some(m) = &mut session.multi {
            if !spec.is_transaction_control() {
                m.queue.push(argv.iter().map(|a| a.to_vec()).collect());
                return plain(Reply::QUEUED);
            }
        }
        match spec.name {
            "multi" => {
                if session.multi.is_some() {
                    return plain(Reply::err("ERR MULTI calls can not be nested"));
                }
                session.multi = Some(Multi { queue: Vec::new(), aborted: false });
                plain(Reply::OK)
            }
            "discard" => {
                if session.multi.take().is_none() {
                    return plain(Reply::err("ERR DISCARD without MULTI"));
                }
                session.unwatch();
                plain(Reply::OK)
            }
            "exec" => self.exec(session, journal),
            "watch" => {
                if session.multi.is_some() {
                    return plain(Reply::err("ERR WATCH inside MULTI is not allowed"));
                }
                self.watch(session, &argv[1..]);
                plain(Reply::OK)
            }
            "unwatch" => {
                session.unwatch();
                plain(Reply::OK)
            }
            _ => {
                let cmds = [BatchCmd { spec, argv, db: None }];
                let batch =
                    self.run_batch(session.db, session.resp3, &cmds, journal, Run::Client { watched_expiry: None });
                session.db = batch.db;
                Outcome {
                    reply: batch.replies.into_iter().next().unwrap_or(Reply::NilArray),
                    events: batch.events,
                    changed: batch.changed,
                }
            }
        }
    }

    fn watch(&self, session: &mut Session, keys: &[&[u8]]) {
        let now = self.0.clock.now_ms();
        for key in keys {
            let h = hash(key);
            let mut shard = self.0.shards[self.0.shard_of(h)].lock();
            let deadline =
                shard.dbs[session.db].get(h, key).map(|e| e.deadline).filter(|&d| d != 0 && d > now).unwrap_or(0);
            shard.watch(session.db, key, &session.dirty_cas);
            session.watched.push(Watched { db: session.db, key: key.to_vec(), deadline });
        }
    }

    fn exec(&self, session: &mut Session, journal: &mut dyn Journal) -> Outcome {
        let Some(multi) = session.multi.take() else {
            return plain(Reply::err("ERR EXEC without MULTI"));
        };
        if multi.aborted {
            session.unwatch();
            return plain(Reply::err("EXECABORT Transaction discarded because of previous errors."));
        }
        if session.dirty_cas.load(Ordering::Acquire) {
            session.unwatch();
            return plain(Reply::NilArray);
        }
        let owned: Vec<Vec<&[u8]>> = multi.queue.iter().map(|c| c.iter().map(|a| a.as_slice()).collect()).collect();
        // Every queued command was looked up when it was queued.
        let cmds: Vec<BatchCmd<'_>> = owned
            .iter()
            .filter_map(|c| commands::lookup(c[0]).map(|spec| BatchCmd { spec, argv: c.as_slice(), db: None }))
            .collect();
        let watched: Vec<(usize, &[u8], u64)> =
            session.watched.iter().filter(|w| w.deadline != 0).map(|w| (w.db, w.key.as_slice(), w.deadline)).collect();
        let run = Run::Client { watched_expiry: Some(&watched) };
        let batch = self.run_batch(session.db, session.resp3, &cmds, journal, run);
        session.db = batch.db;
        session.unwatch();
        let reply = if batch.aborted { Reply::NilArray } else { Reply::Array(batch.replies.into_vec()) };
        // A journal failure replaces the whole reply: nothing of the block
        // was made durable.
        let reply = match batch.journal_error {
            Some(e) => Reply::error(e),
            None => reply,
        };
        Outcome { reply, events: batch.events, changed: batch.changed }
    }

    /// Runs commands atomically under one set of shard locks and, still
    /// holding them, journals what they did as one record: the effects they
    /// recorded (a client's batch) or the replayed record itself.
    fn run_batch(
        &self,
        db: usize,
        resp3: bool,
        cmds: &[BatchCmd<'_>],
        journal: &mut dyn Journal,
        run: Run<'_, '_>,
    ) -> Batch {
        let inner = &*self.0;
        let (replay, watched_expiry) = match run {
            Run::Client { watched_expiry } => (false, watched_expiry),
            Run::Replay { .. } => (true, None),
        };
        if !replay && inner.write_blocked.load(Ordering::Acquire) && cmds.iter().any(|c| c.spec.is_write()) {
            if let Some(msg) = inner.write_block.lock().clone() {
                return Batch::single(db, Reply::error(msg));
            }
        }
        // Keys evicted to make room are announced before the command's own
        // events, in the order Redis publishes them.
        let mut evicted = Vec::new();
        if !replay && cmds.iter().any(|c| c.spec.denies_oom()) && !crate::evict::make_room(self, journal, &mut evicted)
        {
            let mut batch = Batch::single(db, errors::OOM);
            batch.events = evicted;
            return batch;
        }

        // Lock every shard the batch may touch, in ascending order.
        let nshards = inner.shards.len();
        let mut guards = SmallVec::new();
        match self.lock_shards(cmds, watched_expiry) {
            None => {
                guards.reserve_exact(nshards);
                for i in 0..nshards {
                    guards.push((i, inner.shards[i].lock()));
                }
            }
            Some(idx) => {
                for &i in &idx {
                    guards.push((i, inner.shards[i].lock()));
                }
            }
        }

        let mut cx = Cx::new(inner, guards, db, replay, resp3, !replay && journal.enabled());
        cx.events = evicted;
        let mut aborted = false;
        if let Some(w) = watched_expiry {
            let now = cx.now;
            // A watched key that existed with a TTL and has since expired
            // counts as modified (Redis 7), even if nobody touched it.
            aborted =
                w.iter().any(|&(wdb, k, _)| cx.peek_in(wdb, k).is_none_or(|e| e.deadline != 0 && e.deadline <= now));
        }
        let mut replies = SmallVec::new();
        if !aborted {
            for c in cmds {
                if let Some(db) = c.db {
                    cx.db = db;
                }
                cx.begin_command();
                let reply = (c.spec.handler)(&mut cx, c.argv);
                cx.end_command(c.argv, &reply);
                // A replayed op that fails means the record does not fit
                // this state; the ops after it are not applied.
                let stop = replay && reply.is_error();
                replies.push(reply);
                if stop {
                    break;
                }
            }
        }
        let appended = match run {
            Run::Client { .. } => {
                let effects = cx.take_effects();
                if effects.is_empty() {
                    Ok(())
                } else {
                    journal.append(&Record { ops: effects, time_ms: cx.now })
                }
            }
            Run::Replay { view, owned } if journal.enabled() && !replies.last().is_some_and(Reply::is_error) => {
                match owned {
                    Some(record) => journal.append(record),
                    None => journal.append_replayed(view),
                }
            }
            Run::Replay { .. } => Ok(()),
        };
        let journal_error = appended.err().map(|e| e.message);
        // A client gets the journal's error instead of every reply: nothing
        // of the batch was made durable. A replay reports it separately.
        if !replay {
            if let Some(msg) = &journal_error {
                for r in &mut replies {
                    *r = Reply::error(msg.clone());
                }
            }
        }
        Batch {
            db: cx.db,
            replies,
            events: std::mem::take(&mut cx.events),
            changed: cx.changed,
            aborted,
            journal_error,
        }
    }

    /// The shards `cmds` (and a transaction's watched keys) must lock,
    /// ascending and without duplicates; `None` for every shard. A key's
    /// shard does not depend on its database, so commands of a replayed
    /// record lock the same way whatever database each runs in.
    fn lock_shards(
        &self,
        cmds: &[BatchCmd<'_>],
        watched_expiry: Option<&[(usize, &[u8], u64)]>,
    ) -> Option<SmallVec<[usize; 4]>> {
        let inner = &*self.0;
        let mut idx: SmallVec<[usize; 4]> = SmallVec::new();
        for c in cmds {
            match c.spec.lock_set(c.argv) {
                LockSet::None => {}
                LockSet::All => return None,
                LockSet::Args(positions) => {
                    for p in positions {
                        if let Some(k) = c.argv.get(p) {
                            idx.push(inner.shard_of(hash(k)));
                        }
                    }
                }
            }
        }
        for (_, k, _) in watched_expiry.unwrap_or_default() {
            idx.push(inner.shard_of(hash(k)));
        }
        idx.sort_unstable();
        idx.dedup();
        Some(idx)
    }

    /// The commands of a record to re-apply, each in its own database.
    ///
    /// # Errors
    /// [`Error::Replay`] for an op that is not a command this engine can
    /// run (bad database, unknown command, wrong number of arguments).
    fn replay_cmds<'r>(&self, record: &'r RecordRef<'_>) -> Result<SmallVec<[BatchCmd<'r>; 1]>> {
        let mut cmds = SmallVec::with_capacity(record.ops.len());
        for (i, op) in record.ops.iter().enumerate() {
            let db = op.db as usize;
            if db >= self.0.databases || op.argv.is_empty() {
                return Err(Error::Replay { op: i, command: op.name(), reply: "bad database or empty op".into() });
            }
            let Some(spec) = commands::lookup(op.argv[0]) else {
                return Err(Error::Replay { op: i, command: op.name(), reply: "unknown command".into() });
            };
            if !spec.arity_ok(op.argv.len()) {
                return Err(Error::Replay { op: i, command: op.name(), reply: "wrong number of arguments".into() });
            }
            cmds.push(BatchCmd { spec, argv: op.argv.as_slice(), db: Some(db) });
        }
        Ok(cmds)
    }

    /// The number of lock shards (a power of two).
    pub fn shard_count(&self) -> usize {
        self.0.shards.len()
    }

    /// The shards re-applying `record` locks — ascending, without
    /// duplicates, each below [`Engine::shard_count`] — or `None` when an op
    /// may touch any key (FLUSHALL, SWAPDB, …) or is not a command this
    /// engine can run (re-applying it fails). An empty set means the record
    /// touches no key.
    ///
    /// Records whose shard sets are disjoint commute: applying them in
    /// either order, or at the same time from different threads, gives the
    /// same state. Parallel WAL replay relies on this, so it is the very set
    /// [`Engine::apply_record`] locks.
    pub fn record_shards(&self, record: &RecordRef<'_>) -> Option<SmallVec<[usize; 4]>> {
        let cmds = self.replay_cmds(record).ok()?;
        self.lock_shards(&cmds, None)
    }

    /// Re-applies a record produced by this engine (WAL replay). Equivalent
    /// to [`Engine::apply_record_with`] with [`NoJournal`].
    ///
    /// # Errors
    /// [`Error::Replay`] if an op is not a known command or fails.
    pub fn apply_record(&self, record: &Record) -> Result<()> {
        self.apply_record_with(record, &mut NoJournal)
    }

    /// Re-applies a record produced by an engine (WAL replay, or a replica
    /// applying its primary's stream) and hands `record` itself, unchanged,
    /// to `journal`.
    ///
    /// Every op of the record runs in its own database (`Op::db`) in one
    /// execution context, under the locks of the union of the shards the
    /// ops touch, and the record reaches `journal` before those locks are
    /// released. So a reader never sees part of a MULTI/EXEC record, and a
    /// barrier that locks every shard (like [`Engine::begin_snapshot`])
    /// sees every record the journal has and none that it lacks — a replica
    /// that journals with its primary's LSNs can snapshot at a LSN exactly
    /// as a primary does.
    ///
    /// Replay never expires keys lazily, never evicts, ignores
    /// [`Engine::set_write_block`] and produces no keyspace events and no
    /// effects of its own: the record's own `DEL`s do the expiring, so the
    /// result equals the state of the run that produced the records. This
    /// holds in replica mode too ([`Engine::set_replica_mode`]).
    ///
    /// # Errors
    /// - [`Error::Replay`] if an op is not a known command or fails. The ops
    ///   before the failing one stay applied (an op that does not decode
    ///   into a command fails before anything is applied), and nothing is
    ///   journalled: the state and the log it is replayed from diverge, and
    ///   a replica must resynchronise.
    /// - [`Error::Journal`] if `journal` refused the record; the record is
    ///   applied in memory but not journalled.
    pub fn apply_record_with(&self, record: &Record, journal: &mut dyn Journal) -> Result<()> {
        self.apply_view(&record.view(), Some(record), journal)
    }

    /// [`Engine::apply_record`] of a record decoded in place
    /// ([`RecordRef::decode`]): WAL replay, which then copies no argument.
    ///
    /// # Errors
    /// As [`Engine::apply_record`].
    pub fn apply_record_ref(&self, record: &RecordRef<'_>) -> Result<()> {
        self.apply_view(record, None, &mut NoJournal)
    }

    /// [`Engine::apply_record_with`] of a record decoded in place; the
    /// journal gets it through [`Journal::append_replayed`] (a replica
    /// appends its primary's bytes, copying no argument).
    ///
    /// # Errors
    /// As [`Engine::apply_record_with`].
    pub fn apply_record_ref_with(&self, record: &RecordRef<'_>, journal: &mut dyn Journal) -> Result<()> {
        self.apply_view(record, None, journal)
    }

    /// Applies `view`; `record`, the same record owned, is what `journal`
    /// gets if the caller has it (else `journal.append_replayed(view)`).
    fn apply_view(&self, view: &RecordRef<'_>, record: Option<&Record>, journal: &mut dyn Journal) -> Result<()> {
        let cmds = self.replay_cmds(view)?;
        let batch = self.run_batch(0, false, &cmds, journal, Run::Replay { view, owned: record });
        if let Some((i, Reply::Error(e))) = batch.replies.iter().enumerate().find(|(_, r)| r.is_error()) {
            return Err(Error::Replay { op: i, command: view.ops[i].name(), reply: e.to_string() });
        }
        match batch.journal_error {
            Some(message) => Err(Error::Journal(message)),
            None => Ok(()),
        }
    }

    /// Runs a command as a client would but with the time-dependent and
    /// random parts already resolved; used by tests and tools to build a
    /// record by hand. Equivalent to [`Engine::apply_record`] of one op.
    ///
    /// # Errors
    /// As [`Engine::apply_record`].
    pub fn apply_op(&self, op: &Op) -> Result<()> {
        self.apply_record(&Record { ops: vec![op.clone()], time_ms: 0 })
    }

    /// A digest of the whole keyspace — every database, key, value and
    /// deadline — independent of insertion order and of the process (like
    /// Redis' `DEBUG DIGEST`): two engines with the same data have the same
    /// digest. Locks one shard at a time, so it is only exact while nothing
    /// writes. For tests, replication checks and tools.
    pub fn digest(&self) -> u64 {
        // A fixed seed: the digest must agree between processes.
        let state = foldhash::fast::FixedState::with_seed(0x6661_7374_6361_6368);
        let mut sum = 0u64;
        for s in self.0.shards.iter() {
            let s = s.lock();
            for (dbi, db) in s.dbs.iter().enumerate() {
                for e in db.keys.iter() {
                    sum = sum.wrapping_add(e.digest(&state, dbi));
                }
            }
        }
        sum
    }

    /// Estimated bytes used by keys and values.
    pub fn used_memory(&self) -> u64 {
        self.0.used()
    }

    /// Number of keys in database `db` (expired keys not yet collected
    /// included, as Redis' DBSIZE).
    pub fn dbsize(&self, db: usize) -> usize {
        if db >= self.0.databases {
            return 0;
        }
        self.0.shards.iter().map(|s| s.lock().dbs[db].len()).sum()
    }

    /// Per-database key count, keys with an expiry, and the average TTL
    /// (INFO keyspace).
    pub fn keyspace_info(&self) -> Vec<(usize, usize, usize)> {
        let mut out = vec![(0usize, 0usize, 0usize); self.0.databases];
        for s in self.0.shards.iter() {
            let s = s.lock();
            for (i, d) in s.dbs.iter().enumerate() {
                out[i].0 += d.len();
                out[i].1 += d.volatile.len();
            }
        }
        out.into_iter().enumerate().filter(|(_, c)| c.0 > 0).map(|(i, c)| (i, c.0, c.1)).collect()
    }

    /// Number of logical databases.
    pub fn databases(&self) -> usize {
        self.0.databases
    }

    /// The engine's counters, summed over shards.
    pub fn stats(&self) -> Stats {
        let mut total = Stats::default();
        for s in self.0.shards.iter() {
            total.add(&s.lock().stats);
        }
        total
    }

    /// Changes since [`Engine::reset_dirty`] (INFO `rdb_changes_since_last_save`).
    pub fn dirty(&self) -> u64 {
        self.stats().dirty
    }

    /// Resets the change counter (after a snapshot).
    pub fn reset_dirty(&self) {
        for s in self.0.shards.iter() {
            s.lock().stats.dirty = 0;
        }
    }

    /// The memory limit in bytes (0 = none).
    pub fn maxmemory(&self) -> u64 {
        self.0.maxmemory.load(Ordering::Relaxed)
    }

    /// Sets the memory limit in bytes (0 = none).
    pub fn set_maxmemory(&self, bytes: u64) {
        self.0.maxmemory.store(bytes, Ordering::Relaxed);
    }

    /// The eviction policy.
    pub fn maxmemory_policy(&self) -> EvictionPolicy {
        EvictionPolicy::from_u8(self.0.policy.load(Ordering::Relaxed))
    }

    /// Sets the eviction policy.
    pub fn set_maxmemory_policy(&self, p: EvictionPolicy) {
        self.0.policy.store(p as u8, Ordering::Relaxed);
    }

    /// Enables keyspace notification classes (see [`crate::notify`]).
    pub fn set_notify_flags(&self, flags: u32) {
        self.0.notify_flags.store(flags, Ordering::Relaxed);
    }

    /// The enabled keyspace notification classes.
    pub fn notify_flags(&self) -> u32 {
        self.0.notify_flags.load(Ordering::Relaxed)
    }

    /// Refuses every write with `message` (for example a MISCONF error
    /// while the WAL cannot be written) until called with `None`. Reads go
    /// on.
    pub fn set_write_block(&self, message: Option<String>) {
        let mut slot = self.0.write_block.lock();
        self.0.write_blocked.store(message.is_some(), Ordering::Release);
        *slot = message;
    }

    /// Switches replica mode on (this engine holds a replica's data) or off
    /// (promotion to primary).
    ///
    /// A replica never changes its data on its own: every change comes from
    /// its primary's records through [`Engine::apply_record_with`];
    /// otherwise its log would get records the primary does not have and
    /// the LSNs would diverge. So in replica mode, as in Redis 7:
    ///
    /// - a key past its deadline reads as absent (GET nil, EXISTS 0, TTL
    ///   -2, TYPE none; KEYS, SCAN and RANDOMKEY skip it) but stays in
    ///   memory and in DBSIZE: no `DEL` is journalled, no `expired` event
    ///   is produced, and the primary's `DEL` removes it;
    /// - [`Engine::active_expire_cycle`] does nothing;
    /// - `maxmemory` is not enforced: nothing is evicted and no command is
    ///   refused with OOM (Redis' `replica-ignore-maxmemory yes`).
    ///
    /// Re-applying records is the same in both modes. Refusing clients'
    /// writes (Redis' READONLY) is the embedder's job, for example with
    /// [`Engine::set_write_block`]; a write it lets through anyway deletes
    /// and journals an expired key it touches as a primary does, so the
    /// replica's log stays equal to its memory.
    ///
    /// Switching off resumes normal expiry: expired keys are then deleted
    /// lazily and actively, and the deletions journalled, as usual.
    /// Switching locks every shard, so each command, active expiry step
    /// and eviction runs wholly in one mode.
    pub fn set_replica_mode(&self, on: bool) {
        let guards: Vec<_> = self.0.shards.iter().map(|s| s.lock()).collect();
        self.0.replica.store(on, Ordering::Relaxed);
        drop(guards);
    }

    /// Whether replica mode is on (see [`Engine::set_replica_mode`]).
    pub fn replica_mode(&self) -> bool {
        self.0.replica.load(Ordering::Relaxed)
    }

    /// The engine's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.0.clock
    }

    /// Command metadata, for COMMAND and for the server's own checks.
    pub fn command(&self, name: &[u8]) -> Option<&'static CommandSpec> {
        commands::lookup(name)
    }

    /// Every command the engine implements.
    pub fn commands(&self) -> &'static [CommandSpec] {
        commands::all()
    }
}

fn plain(reply: Reply) -> Outcome {
    Outcome { reply, events: Vec::new(), changed: 0 }
}

/// One command of a batch.
struct BatchCmd<'c> {
    spec: &'static CommandSpec,
    argv: &'c [&'c [u8]],
    /// The database this command runs in, for replayed ops (each carries
    /// its own); `None` keeps the batch's current one, which a SELECT inside
    /// MULTI may have changed.
    db: Option<usize>,
}

/// Whose commands a batch runs, which decides what is journalled.
#[derive(Clone, Copy)]
enum Run<'a, 'r> {
    /// A client's command or MULTI/EXEC block: effects are recorded and
    /// journalled as a new record. EXEC passes its WATCHed keys that had a
    /// TTL, whose expiry aborts the block.
    Client { watched_expiry: Option<&'a [(usize, &'a [u8], u64)]> },
    /// An existing record re-applied: no lazy expiry, eviction or effects;
    /// the record itself is journalled if every op applied — `owned` when
    /// the caller has it, else from `view` ([`Journal::append_replayed`]).
    Replay { view: &'a RecordRef<'r>, owned: Option<&'a Record> },
}

struct Batch {
    db: usize,
    replies: SmallVec<[Reply; 1]>,
    events: Vec<Event>,
    changed: u64,
    aborted: bool,
    journal_error: Option<String>,
}

impl Batch {
    fn single(db: usize, reply: Reply) -> Batch {
        Batch {
            db,
            replies: smallvec::smallvec![reply],
            events: Vec::new(),
            changed: 0,
            aborted: false,
            journal_error: None,
        }
    }
}

/// Redis' unknown-command error, with the first arguments quoted.
fn unknown_command(argv: &[&[u8]]) -> Reply {
    let mut args = String::new();
    for a in &argv[1..] {
        if args.len() >= 128 {
            break;
        }
        let room = 128 - args.len();
        let text = String::from_utf8_lossy(a);
        let cut: String = text.chars().take(room).collect();
        args.push_str(&format!("'{cut}' "));
    }
    let name: String = String::from_utf8_lossy(argv[0]).chars().take(128).collect();
    let msg = format!("ERR unknown command '{name}', with args beginning with: {args}");
    Reply::error(msg.replace(['\r', '\n'], " "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{bulk, bulks};

    /// Runs `words` in `session` with no journal.
    fn q(engine: &Engine, session: &mut Session, words: &[&str]) -> Reply {
        let argv: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        engine.execute(session, &argv)
    }

    fn op(db: usize, words: &[&str]) -> Op {
        let argv: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        Op::new(db, &argv)
    }

    #[test]
    fn a_multi_record_applies_in_one_step_and_is_journalled_once() -> Result<()> {
        let engine = Engine::default();
        let record = Record {
            ops: vec![
                op(0, &["SET", "a", "1"]),
                op(3, &["SET", "b", "2"]),
                op(0, &["RPUSH", "l", "x", "y"]),
                op(3, &["SADD", "s", "m"]),
                op(3, &["MOVE", "s", "0"]),
                op(0, &["HSET", "h", "f", "v"]),
            ],
            time_ms: 42,
        };
        let shards: std::collections::BTreeSet<usize> =
            ["a", "b", "l", "s", "h"].iter().map(|k| engine.0.shard_of(hash(k.as_bytes()))).collect();
        assert!(shards.len() >= 3, "the record should span several shards: {shards:?}");

        let mut log = Vec::new();
        engine.apply_record_with(&record, &mut |r: &Record| {
            log.push(r.clone());
            Ok(())
        })?;
        assert_eq!(log, [record]);

        let mut s = engine.session();
        assert_eq!(q(&engine, &mut s, &["GET", "a"]), bulk("1"));
        assert_eq!(q(&engine, &mut s, &["LRANGE", "l", "0", "-1"]), Reply::Array(vec![bulk("x"), bulk("y")]));
        assert_eq!(q(&engine, &mut s, &["SISMEMBER", "s", "m"]), Reply::Int(1));
        assert_eq!(q(&engine, &mut s, &["HGET", "h", "f"]), bulk("v"));
        q(&engine, &mut s, &["SELECT", "3"]);
        assert_eq!(q(&engine, &mut s, &["GET", "b"]), bulk("2"));
        assert_eq!(q(&engine, &mut s, &["EXISTS", "s", "a"]), Reply::Int(0));
        Ok(())
    }

    #[test]
    fn a_record_applied_in_place_reaches_the_journal_through_append_replayed() -> Result<()> {
        struct Raw(Vec<Record>, usize);
        impl Journal for Raw {
            fn append(&mut self, _record: &Record) -> std::result::Result<(), JournalError> {
                panic!("an in-place record goes through append_replayed");
            }
            fn append_replayed(&mut self, record: &RecordRef<'_>) -> std::result::Result<(), JournalError> {
                self.0.push(record.to_record());
                self.1 += 1;
                Ok(())
            }
        }
        let engine = Engine::default();
        let record = Record { ops: vec![op(0, &["SET", "a", "1"]), op(2, &["RPUSH", "l", "x"])], time_ms: 7 };
        let bytes = record.encode();
        let mut journal = Raw(Vec::new(), 0);
        engine.apply_record_ref_with(&RecordRef::decode(&bytes)?, &mut journal)?;
        assert_eq!((journal.0, journal.1), (vec![record], 1));
        // A failing op journals nothing.
        let bad = Record { ops: vec![op(0, &["LPUSH", "a", "x"])], time_ms: 8 }.encode();
        let mut journal = Raw(Vec::new(), 0);
        assert!(engine.apply_record_ref_with(&RecordRef::decode(&bad)?, &mut journal).is_err());
        assert_eq!(journal.1, 0);
        // The default builds the owned record for `append`.
        let mut owned = Vec::new();
        engine.apply_record_ref_with(&RecordRef::decode(&bytes)?, &mut |r: &Record| {
            owned.push(r.clone());
            Ok(())
        })?;
        assert_eq!(owned.len(), 1);
        Ok(())
    }

    #[test]
    fn readers_never_see_part_of_a_replayed_multi_record() -> Result<()> {
        let engine = Engine::default();
        let writer = {
            let engine = engine.clone();
            std::thread::spawn(move || -> Result<()> {
                for i in 0..20_000 {
                    let v = i.to_string();
                    let record = Record { ops: vec![op(0, &["SET", "a", &v]), op(3, &["SET", "b", &v])], time_ms: 0 };
                    engine.apply_record_with(&record, &mut NoJournal)?;
                }
                Ok(())
            })
        };
        let mut s = engine.session();
        let mut reads = 0;
        while !writer.is_finished() && reads < 100_000 {
            for words in [&["MULTI"][..], &["SELECT", "0"], &["GET", "a"], &["SELECT", "3"], &["GET", "b"]] {
                q(&engine, &mut s, words);
            }
            let Reply::Array(replies) = q(&engine, &mut s, &["EXEC"]) else {
                panic!("EXEC did not run");
            };
            assert_eq!(replies[1], replies[3], "a reader saw half a record");
            reads += 1;
        }
        writer.join().expect("writer panicked")
    }

    #[test]
    fn a_failing_op_is_a_replay_error_and_nothing_is_journalled() {
        let engine = Engine::default();
        let mut log = Vec::new();
        let mut journal = |r: &Record| {
            log.push(r.clone());
            Ok(())
        };
        let record = Record {
            ops: vec![op(0, &["SET", "k", "v"]), op(0, &["LPUSH", "k", "x"]), op(0, &["SET", "after", "1"])],
            time_ms: 0,
        };
        let e = engine.apply_record_with(&record, &mut journal);
        assert!(matches!(&e, Err(Error::Replay { op: 1, command, .. }) if command == "LPUSH"), "{e:?}");

        // An op that is no command fails before anything is applied.
        let record = Record { ops: vec![op(0, &["SET", "x", "1"]), op(0, &["NOPE"])], time_ms: 0 };
        let e = engine.apply_record_with(&record, &mut journal);
        assert!(matches!(&e, Err(Error::Replay { op: 1, command, .. }) if command == "NOPE"), "{e:?}");
        let record = Record { ops: vec![op(99, &["SET", "x", "1"])], time_ms: 0 };
        assert!(matches!(engine.apply_record_with(&record, &mut journal), Err(Error::Replay { op: 0, .. })));
        assert!(log.is_empty(), "{log:?}");

        // The ops before the failing one stay applied, the ones after it
        // do not.
        let mut s = engine.session();
        assert_eq!(q(&engine, &mut s, &["GET", "k"]), bulk("v"));
        assert_eq!(q(&engine, &mut s, &["EXISTS", "after", "x"]), Reply::Int(0));
    }

    /// Runs `words` in `t`'s session, journalling into `t.log`.
    fn run_out(t: &mut crate::testutil::T, words: &[&str]) -> Outcome {
        let argv: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        let log = &mut t.log;
        let mut journal = |r: &Record| {
            log.push(r.clone());
            Ok(())
        };
        t.engine.execute_with(&mut t.session, &argv, &mut journal)
    }

    #[test]
    fn a_replica_reads_expired_keys_as_absent_and_deletes_nothing() {
        let mut t = crate::testutil::T::new();
        t.ok(&["SET", "s", "v", "PX", "100"]);
        t.ok(&["HSET", "h", "f", "v"]);
        t.ok(&["RPUSH", "l", "a"]);
        t.ok(&["SADD", "st", "m"]);
        t.ok(&["ZADD", "z", "1", "m"]);
        for k in ["h", "l", "st", "z"] {
            t.ok(&["PEXPIRE", k, "100"]);
        }
        t.ok(&["SET", "live", "v"]);
        t.clock.advance(200);
        t.engine.set_replica_mode(true);
        assert!(t.engine.replica_mode());
        t.engine.set_notify_flags(crate::notify::KEYSPACE | crate::notify::ALL);
        let journalled = t.log.len();

        let none = || Reply::Simple("none".into());
        let empty = || Reply::Array(vec![]);
        let reads: Vec<(&[&str], Reply)> = vec![
            (&["GET", "s"], Reply::Nil),
            (&["STRLEN", "s"], Reply::Int(0)),
            (&["EXISTS", "s", "h", "l", "st", "z"], Reply::Int(0)),
            (&["TTL", "s"], Reply::Int(-2)),
            (&["PTTL", "h"], Reply::Int(-2)),
            (&["TYPE", "s"], none()),
            (&["TYPE", "z"], none()),
            (&["HGET", "h", "f"], Reply::Nil),
            (&["HLEN", "h"], Reply::Int(0)),
            (&["LRANGE", "l", "0", "-1"], empty()),
            (&["SISMEMBER", "st", "m"], Reply::Int(0)),
            (&["ZSCORE", "z", "m"], Reply::Nil),
            (&["DUMP", "s"], Reply::Nil),
            (&["OBJECT", "ENCODING", "l"], Reply::Nil),
            (&["KEYS", "*"], bulks(&["live"])),
            (&["SCAN", "0", "COUNT", "1000"], Reply::Array(vec![bulk("0"), bulks(&["live"])])),
            (&["RANDOMKEY"], bulk("live")),
            (&["GET", "live"], bulk("v")),
            (&["TYPE", "live"], Reply::Simple("string".into())),
            (&["DBSIZE"], Reply::Int(6)),
        ];
        for (words, want) in reads {
            let out = run_out(&mut t, words);
            assert_eq!(out.reply, want, "{words:?}");
            assert!(out.events.is_empty(), "{words:?}: {:?}", out.events);
        }
        for words in [&["MULTI"][..], &["GET", "s"], &["EXISTS", "h"]] {
            run_out(&mut t, words);
        }
        assert_eq!(run_out(&mut t, &["EXEC"]).reply, Reply::Array(vec![Reply::Nil, Reply::Int(0)]));
        assert_eq!(t.log.len(), journalled, "a replica journalled {:?}", &t.log[journalled..]);
        assert_eq!(t.engine.stats().expired_keys, 0);
        assert_eq!(t.engine.dbsize(0), 6);

        // Promoted: the next read deletes the key and journals the DEL.
        t.engine.set_replica_mode(false);
        let out = run_out(&mut t, &["GET", "s"]);
        assert_eq!(out.reply, Reply::Nil);
        assert_eq!(t.log.len(), journalled + 1);
        assert_eq!(t.last_ops(), [["DEL", "s"]]);
        assert_eq!(out.events.iter().map(|e| e.event).collect::<Vec<_>>(), ["expired"]);
        assert_eq!(t.engine.stats().expired_keys, 1);
        assert_eq!(t.engine.dbsize(0), 5);
        t.check_replay();
    }

    #[test]
    fn record_shards_are_the_shards_a_record_locks() {
        let engine = Engine::new(EngineConfig { shards: 8, ..EngineConfig::default() });
        assert_eq!(engine.shard_count(), 8);
        let shard = |k: &str| engine.0.shard_of(hash(k.as_bytes()));
        let a = shard("a");
        let kb = (0..).map(|i| format!("b{i}")).find(|k| shard(k) != a).expect("a key in another shard");
        let kb = kb.as_str();
        let b = shard(kb);
        let shards = |ops: Vec<Op>| engine.record_shards(&Record { ops, time_ms: 0 }.view()).map(|s| s.into_vec());

        assert_eq!(shards(vec![op(0, &["SET", "a", "1"])]), Some(vec![a]));
        // Databases do not matter; keys are deduplicated and sorted.
        assert_eq!(
            shards(vec![op(3, &["DEL", kb, "a", kb]), op(0, &["SADD", "a", "m"])]),
            Some(vec![a.min(b), a.max(b)])
        );
        assert_eq!(shards(vec![op(0, &["RENAME", "a", kb])]), Some(vec![a.min(b), a.max(b)]));
        assert_eq!(
            shards(vec![op(0, &["ZUNIONSTORE", "a", "2", kb, "a"])]),
            Some(vec![a.min(b), a.max(b)]),
            "movable keys"
        );
        // Every shard: commands that may touch any key, and ops that cannot
        // be applied at all (so that they fail where serial replay fails).
        for ops in [
            vec![op(0, &["SET", "a", "1"]), op(0, &["FLUSHALL"])],
            vec![op(0, &["SWAPDB", "0", "1"])],
            vec![op(0, &["FLUSHDB"])],
            vec![op(0, &["NOPE", "a"])],
            vec![op(0, &["SET", "a"])],
            vec![op(99, &["SET", "a", "1"])],
        ] {
            assert_eq!(shards(ops.clone()), None, "{ops:?}");
        }
        assert_eq!(shards(vec![]), Some(vec![]));
    }

    #[test]
    fn a_borrowed_record_applies_as_the_owned_one() -> Result<()> {
        let record = Record {
            ops: vec![op(0, &["SET", "a", "1"]), op(2, &["RPUSH", "l", "x", "y", "z", "w", "v"])],
            time_ms: 0,
        };
        let bytes = record.encode();
        let (owned, borrowed) = (Engine::default(), Engine::default());
        owned.apply_record(&record)?;
        borrowed.apply_record_ref(&RecordRef::decode(&bytes)?)?;
        assert_eq!(owned.digest(), borrowed.digest());
        assert_ne!(owned.digest(), Engine::default().digest());
        let bad = Record { ops: vec![op(0, &["LPUSH", "a", "x"])], time_ms: 0 };
        let e = borrowed.apply_record_ref(&bad.view());
        assert!(matches!(&e, Err(Error::Replay { op: 0, command, .. }) if command == "LPUSH"), "{e:?}");
        Ok(())
    }

    #[test]
    fn a_refused_record_is_a_journal_error_but_applied() {
        let engine = Engine::default();
        // Replay is not a client write: a write block does not stop it.
        engine.set_write_block(Some("MISCONF blocked".into()));
        let mut refusing = |_: &Record| Err(JournalError { message: "MISCONF disk full".into() });
        let record = Record { ops: vec![op(0, &["SET", "k", "v"])], time_ms: 0 };
        let e = engine.apply_record_with(&record, &mut refusing);
        assert!(matches!(&e, Err(Error::Journal(m)) if m == "MISCONF disk full"), "{e:?}");
        assert_eq!(q(&engine, &mut engine.session(), &["GET", "k"]), bulk("v"));
    }
}
