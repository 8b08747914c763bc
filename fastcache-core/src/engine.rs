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
use crate::record::{Op, Record};
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
                let cmds = [(spec, argv)];
                let batch = self.run_batch(session.db, session.resp3, &cmds, journal, false, None);
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
        let cmds: Vec<(&'static CommandSpec, &[&[u8]])> =
            owned.iter().filter_map(|c| commands::lookup(c[0]).map(|s| (s, c.as_slice()))).collect();
        let watched: Vec<(usize, &[u8], u64)> =
            session.watched.iter().filter(|w| w.deadline != 0).map(|w| (w.db, w.key.as_slice(), w.deadline)).collect();
        let batch = self.run_batch(session.db, session.resp3, &cmds, journal, false, Some(&watched));
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

    /// Runs commands atomically under one set of shard locks and journals
    /// their effects as one record.
    fn run_batch(
        &self,
        db: usize,
        resp3: bool,
        cmds: &[(&'static CommandSpec, &[&[u8]])],
        journal: &mut dyn Journal,
        replay: bool,
        watched_expiry: Option<&[(usize, &[u8], u64)]>,
    ) -> Batch {
        let inner = &*self.0;
        if !replay && inner.write_blocked.load(Ordering::Acquire) && cmds.iter().any(|(s, _)| s.is_write()) {
            if let Some(msg) = inner.write_block.lock().clone() {
                return Batch::single(db, Reply::error(msg));
            }
        }
        // Keys evicted to make room are announced before the command's own
        // events, in the order Redis publishes them.
        let mut evicted = Vec::new();
        if !replay && cmds.iter().any(|(s, _)| s.denies_oom()) && !crate::evict::make_room(self, journal, &mut evicted)
        {
            let mut batch = Batch::single(db, errors::OOM);
            batch.events = evicted;
            return batch;
        }

        // Lock every shard the batch may touch, in ascending order.
        let nshards = inner.shards.len();
        let mut all = false;
        let mut idx: SmallVec<[usize; 4]> = SmallVec::new();
        for (spec, argv) in cmds {
            match spec.lock_set(argv) {
                LockSet::None => {}
                LockSet::All => all = true,
                LockSet::Args(positions) => {
                    for p in positions {
                        if let Some(k) = argv.get(p) {
                            idx.push(inner.shard_of(hash(k)));
                        }
                    }
                }
            }
        }
        if let Some(w) = watched_expiry {
            for (_, k, _) in w {
                idx.push(inner.shard_of(hash(k)));
            }
        }
        let mut guards = SmallVec::new();
        if all {
            guards.reserve_exact(nshards);
            for i in 0..nshards {
                guards.push((i, inner.shards[i].lock()));
            }
        } else {
            idx.sort_unstable();
            idx.dedup();
            for &i in &idx {
                guards.push((i, inner.shards[i].lock()));
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
            for (spec, argv) in cmds {
                cx.begin_command();
                let reply = (spec.handler)(&mut cx, argv);
                cx.end_command(argv, &reply);
                replies.push(reply);
            }
        }
        let effects = cx.take_effects();
        let mut journal_error = None;
        if !effects.is_empty() {
            if let Err(e) = journal.append(&Record { ops: effects, time_ms: cx.now }) {
                journal_error = Some(e.message);
            }
        }
        if let Some(msg) = &journal_error {
            for r in &mut replies {
                *r = Reply::error(msg.clone());
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

    /// Re-applies a record produced by this engine (WAL replay, replicas).
    ///
    /// Replay never expires keys lazily and never evicts: the record's own
    /// `DEL`s do that, so the result equals the state of the run that
    /// produced the records.
    ///
    /// # Errors
    /// [`Error::Replay`] if an op is not a known command or fails; the state
    /// may then hold the ops before it.
    pub fn apply_record(&self, record: &Record) -> Result<()> {
        let owned: Vec<Vec<&[u8]>> =
            record.ops.iter().map(|op| op.argv.iter().map(|a| a.0.as_slice()).collect()).collect();
        // Ops of one record may name different databases; they are applied
        // one by one, each under its own locks.
        for (i, (op, argv)) in record.ops.iter().zip(&owned).enumerate() {
            let db = op.db as usize;
            if db >= self.0.databases || argv.is_empty() {
                return Err(Error::Replay { op: i, command: op.name(), reply: "bad database or empty op".into() });
            }
            let Some(spec) = commands::lookup(argv[0]) else {
                return Err(Error::Replay { op: i, command: op.name(), reply: "unknown command".into() });
            };
            if !spec.arity_ok(argv.len()) {
                return Err(Error::Replay { op: i, command: op.name(), reply: "wrong number of arguments".into() });
            }
            let cmds = [(spec, argv.as_slice())];
            let batch = self.run_batch(db, false, &cmds, &mut NoJournal, true, None);
            if let Some(Reply::Error(e)) = batch.replies.first() {
                return Err(Error::Replay { op: i, command: op.name(), reply: e.to_string() });
            }
        }
        Ok(())
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
