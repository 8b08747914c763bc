//! Blocking pops: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BZPOPMIN, BZPOPMAX.
//!
//! The engine runs these commands without waiting: with data they pop and
//! reply, without data they answer the "timed out" reply. The server turns
//! the second case into waiting, with Redis 7.0 semantics:
//!
//! - A blocked client is a [`Waiter`] queued, in arrival order, on every key
//!   it waits on (for BLMOVE/BRPOPLPUSH only the source).
//! - Whoever writes serves the waiters, as Redis' `serveClientsBlockedOnKey`
//!   does: for each written key with waiters, the first waiter's command is
//!   run through the engine on its behalf, for that key only, and the reply
//!   goes through the waiter's oneshot. This repeats while the key still has
//!   data and waiters; a BLMOVE that pushes into a key with waiters makes that
//!   key ready in turn.
//! - Every hand-off happens under the registry lock, and a waiter leaves the
//!   registry only under that lock. A waiter whose wait ends for another
//!   reason (timeout, kill, disconnect) removes itself under the lock; if it
//!   is already gone, it was served and its reply is in its oneshot. So the
//!   server never pops a value that no one receives.
//!
//! **Lock order:** registry, then engine shard locks. The engine never calls
//! back into the server, so executing a waiter's command while holding the
//! registry lock cannot deadlock.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use fastcache_core::notify::Event;
use fastcache_core::{Outcome, Reply, Session};
use parking_lot::Mutex;
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::connection::{Conn, Flow};
use crate::server::Shared;

/// The reply a client unblocked by `CLIENT UNBLOCK id ERROR` receives.
const UNBLOCKED: Reply = Reply::err("UNBLOCKED client unblocked via CLIENT UNBLOCK");

/// Waits longer than this are treated as "forever": no timer that far out
/// is meaningful, and it keeps `Instant` arithmetic far from overflow.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The families of blocking commands, by what they wait on and how they
/// answer a timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// BLPOP, BRPOP: keys `1..last`, timeout reply `*-1`.
    ListPop,
    /// BLMOVE, BRPOPLPUSH: waits on the source only, timeout reply `$-1`.
    ListMove,
    /// BZPOPMIN, BZPOPMAX: keys `1..last`, timeout reply `*-1`.
    ZSetPop,
}

impl Kind {
    fn of(name: &[u8]) -> Option<Kind> {
        let lower = name.to_ascii_lowercase();
        match lower.as_slice() {
            b"blpop" | b"brpop" => Some(Kind::ListPop),
            b"blmove" | b"brpoplpush" => Some(Kind::ListMove),
            b"bzpopmin" | b"bzpopmax" => Some(Kind::ZSetPop),
            _ => None,
        }
    }

    /// What Redis answers when the wait ends without data.
    fn timeout_reply(self) -> Reply {
        match self {
            Kind::ListMove => Reply::Nil,
            Kind::ListPop | Kind::ZSetPop => Reply::NilArray,
        }
    }

    /// The TYPE a key must have for this command to be served from it.
    fn type_name(self) -> &'static str {
        match self {
            Kind::ListPop | Kind::ListMove => "list",
            Kind::ZSetPop => "zset",
        }
    }

    /// The keys the client waits on (each once, in argument order).
    fn waited_keys(self, argv: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let keys: &[Vec<u8>] = match self {
            Kind::ListMove => argv.get(1..2).unwrap_or(&[]),
            Kind::ListPop | Kind::ZSetPop => argv.get(1..argv.len().saturating_sub(1)).unwrap_or(&[]),
        };
        let mut out: Vec<Vec<u8>> = Vec::with_capacity(keys.len());
        for k in keys {
            if !out.contains(k) {
                out.push(k.clone());
            }
        }
        out
    }

    /// The command that serves this waiter from `key`. Like Redis, a client
    /// waiting on several keys is served from the key that became ready,
    /// not from the first of its keys that has data. The timeout is already
    /// validated; "0" keeps the engine from re-checking it against the clock.
    fn serve_argv(self, argv: &[Vec<u8>], key: &[u8]) -> Vec<Vec<u8>> {
        match self {
            Kind::ListMove => {
                let mut v = argv.to_vec();
                if let Some(last) = v.last_mut() {
                    *last = b"0".to_vec();
                }
                v
            }
            Kind::ListPop | Kind::ZSetPop => {
                let name = argv.first().cloned().unwrap_or_default();
                vec![name, key.to_vec(), b"0".to_vec()]
            }
        }
    }
}

/// One blocked client.
struct Waiter {
    kind: Kind,
    db: usize,
    keys: Vec<Vec<u8>>,
    argv: Vec<Vec<u8>>,
    resp3: bool,
    /// Receives the reply that ends the wait (served, or CLIENT UNBLOCK).
    tx: oneshot::Sender<Reply>,
}

/// Waiters by client id, and the order they queue on each key.
#[derive(Default)]
struct Registry {
    waiters: HashMap<u64, Waiter>,
    /// key → database → client ids in arrival order. Keyed by name first so
    /// that a write can find waiters on the same name in every database
    /// (MOVE and COPY … DB write a key of another database).
    keys: HashMap<Vec<u8>, HashMap<usize, VecDeque<u64>>>,
}

impl Registry {
    fn queue(&self, db: usize, key: &[u8]) -> Option<&VecDeque<u64>> {
        self.keys.get(key).and_then(|dbs| dbs.get(&db)).filter(|q| !q.is_empty())
    }
}

/// The outcome of trying to serve one waiter from one key.
enum Attempt {
    /// The key holds nothing: no later waiter on it can be served either.
    Empty,
    /// The key holds another type (a BLPOP waiter on a key that is now a
    /// sorted set): this waiter keeps waiting, the next one may be served.
    WrongType,
    /// The waiter's command ran; this is its reply.
    Served(Reply),
}

/// Clients waiting on keys.
#[derive(Default)]
pub struct Blocking {
    registry: Mutex<Registry>,
    /// Number of registered waiters, readable without the lock: it is
    /// checked after every write.
    count: AtomicUsize,
}

impl Blocking {
    /// Whether any client is blocked (cheap; runs after every write).
    pub fn has_waiters(&self) -> bool {
        self.count.load(Ordering::SeqCst) > 0
    }

    /// Number of blocked clients (INFO `blocked_clients`).
    pub fn blocked_count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Serves the clients blocked on keys a command just changed. `keys`
    /// `None` means any key may have changed (EXEC, FLUSHALL, SWAPDB).
    ///
    /// Waiters on the named keys are looked up in every database, not only
    /// `db`: MOVE and COPY … DB write a key of another database, and trying
    /// a waiter whose key is empty costs one engine call and changes nothing.
    pub fn on_write(&self, shared: &Shared, db: usize, keys: Option<Vec<Vec<u8>>>) {
        if !self.has_waiters() {
            return;
        }
        let mut events = Vec::new();
        {
            let mut reg = self.registry.lock();
            let mut ready: VecDeque<(usize, Vec<u8>)> = VecDeque::new();
            match keys {
                Some(keys) => {
                    for key in keys {
                        let Some(dbs) = reg.keys.get(&key) else { continue };
                        // The written database first, so its waiters are
                        // served in the order the write made keys ready.
                        let mut dbs: Vec<usize> = dbs.keys().copied().collect();
                        dbs.sort_unstable_by_key(|&d| (d != db, d));
                        for d in dbs {
                            if !ready.iter().any(|(rd, rk)| *rd == d && *rk == key) {
                                ready.push_back((d, key.clone()));
                            }
                        }
                    }
                }
                None => {
                    for (key, dbs) in &reg.keys {
                        for &d in dbs.keys() {
                            ready.push_back((d, key.clone()));
                        }
                    }
                }
            }
            self.serve(shared, &mut reg, ready, &mut events);
        }
        if !events.is_empty() {
            shared.broker.publish_events(&events);
        }
    }

    /// Forgets a client's wait (it disconnected). Its wait, if still
    /// running, ends as if the connection closed.
    pub fn remove_client(&self, id: u64) {
        if !self.has_waiters() {
            return;
        }
        let mut reg = self.registry.lock();
        self.take(&mut reg, id);
    }

    /// CLIENT UNBLOCK: ends client `id`'s wait with the timeout reply, or
    /// with `-UNBLOCKED …` when `error`. False if it was not blocked.
    pub fn unblock(&self, id: u64, error: bool) -> bool {
        let mut reg = self.registry.lock();
        let Some(w) = self.take(&mut reg, id) else {
            return false;
        };
        let reply = if error { UNBLOCKED } else { w.kind.timeout_reply() };
        // A closed receiver means the connection is gone; nothing was popped.
        let _ = w.tx.send(reply);
        true
    }

    fn insert(&self, reg: &mut Registry, id: u64, w: Waiter) {
        // A connection blocks on one command at a time; a leftover entry
        // would only be a bug, and replacing it keeps the queues consistent.
        self.take(reg, id);
        for key in &w.keys {
            reg.keys.entry(key.clone()).or_default().entry(w.db).or_default().push_back(id);
        }
        reg.waiters.insert(id, w);
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    /// Removes client `id` from the registry and every key queue.
    fn take(&self, reg: &mut Registry, id: u64) -> Option<Waiter> {
        let w = reg.waiters.remove(&id)?;
        for key in &w.keys {
            if let Some(dbs) = reg.keys.get_mut(key) {
                if let Some(q) = dbs.get_mut(&w.db) {
                    q.retain(|&x| x != id);
                    if q.is_empty() {
                        dbs.remove(&w.db);
                    }
                }
                if dbs.is_empty() {
                    reg.keys.remove(key);
                }
            }
        }
        self.count.fetch_sub(1, Ordering::SeqCst);
        Some(w)
    }

    /// Serves waiters on `ready` keys in FIFO order per key, following
    /// keys that served BLMOVEs push into. Runs under the registry lock.
    ///
    /// Terminates: a key is queued again only after a waiter was served
    /// (and removed), and a visit tries each waiter at most once.
    fn serve(
        &self,
        shared: &Shared,
        reg: &mut Registry,
        mut ready: VecDeque<(usize, Vec<u8>)>,
        events: &mut Vec<Event>,
    ) {
        while let Some((db, key)) = ready.pop_front() {
            let Some(queue) = reg.queue(db, &key) else { continue };
            let ids: Vec<u64> = queue.iter().copied().collect();
            for id in ids {
                let Some(w) = reg.waiters.get(&id) else { continue };
                match attempt(shared, w, db, &key, events) {
                    Attempt::Empty => break,
                    Attempt::WrongType => continue,
                    Attempt::Served(reply) => {
                        let Some(w) = self.take(reg, id) else { continue };
                        if w.kind == Kind::ListMove && matches!(reply, Reply::Bulk(_)) {
                            if let Some(dst) = w.argv.get(2) {
                                if reg.queue(db, dst).is_some() && !ready.iter().any(|(d, k)| *d == db && k == dst) {
                                    ready.push_back((db, dst.clone()));
                                }
                            }
                        }
                        // The receiver lives until its owner has removed the
                        // waiter under this lock, so this send is received.
                        let _ = w.tx.send(reply);
                    }
                }
            }
        }
    }
}

/// Runs a command for a waiter. The single place where served pops reach
/// the engine, so the single place a persistence journal goes.
/// Runs one command for a waiter; its effect goes to the WAL like any
/// client's. (The waiter waits for durability before it replies.)
fn run_for_waiter(shared: &Shared, session: &mut Session, argv: &[&[u8]]) -> Outcome {
    let mut journal = crate::persist::WalJournal::new(shared.persistence().map(|p| &**p));
    shared.engine.execute_with(session, argv, &mut journal)
}

/// Tries to serve waiter `w` from `key`. The key's type and the pop are
/// read in one transaction, so "the key is not of my type" (keep waiting,
/// as Redis skips such waiters) cannot be confused with BLMOVE's
/// WRONGTYPE for its destination (which Redis answers to the waiter).
fn attempt(shared: &Shared, w: &Waiter, db: usize, key: &[u8], events: &mut Vec<Event>) -> Attempt {
    let mut session = shared.engine.session();
    if !session.select(db) {
        return Attempt::Empty;
    }
    session.set_resp3(w.resp3);
    let cmd = w.kind.serve_argv(&w.argv, key);
    let cmd: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
    run_for_waiter(shared, &mut session, &[b"MULTI"]);
    run_for_waiter(shared, &mut session, &[b"TYPE", key]);
    run_for_waiter(shared, &mut session, &cmd);
    let out = run_for_waiter(shared, &mut session, &[b"EXEC"]);
    events.extend(out.events);
    match out.reply {
        Reply::Array(mut replies) if replies.len() == 2 => {
            let reply = replies.pop().unwrap_or(Reply::Nil);
            match replies.pop() {
                Some(Reply::Simple(t)) if t == "none" => Attempt::Empty,
                Some(Reply::Simple(t)) if t == w.kind.type_name() => {
                    if matches!(reply, Reply::Nil | Reply::NilArray) {
                        Attempt::Empty
                    } else {
                        Attempt::Served(reply)
                    }
                }
                _ => Attempt::WrongType,
            }
        }
        // The transaction was refused as a whole (OOM for BLMOVE, writes
        // blocked, a journal failure): nothing was popped, or the pop was
        // not made durable. The waiter gets the error, as a client running
        // the command itself would.
        Reply::Array(mut replies) if replies.len() == 1 => {
            Attempt::Served(replies.pop().unwrap_or_else(|| w.kind.timeout_reply()))
        }
        other => Attempt::Served(other),
    }
}

/// The deadline of a blocking command, from its last argument (seconds, a
/// float; 0 waits forever), rounded up to milliseconds like Redis.
fn wait_duration(arg: &[u8]) -> Option<Duration> {
    let secs = fastcache_core::util::parse_f64(arg)?;
    let ms = (secs * 1000.0).ceil();
    if !ms.is_finite() || ms <= 0.0 {
        return None;
    }
    let d = Duration::try_from_secs_f64(ms / 1000.0).ok()?;
    (d < FOREVER).then_some(d)
}

/// Removes its waiter from the registry when the wait ends, however it
/// ends (including the connection's task being dropped), while the
/// receiver is still alive: a waiter is never served into a dropped
/// receiver.
struct Registration<'a> {
    blocking: &'a Blocking,
    id: u64,
    rx: oneshot::Receiver<Reply>,
}

impl Registration<'_> {
    /// Leaves the registry. `Some(reply)` if the waiter had already been
    /// served or unblocked: that reply must be delivered.
    fn leave(&mut self) -> Option<Reply> {
        let removed = {
            let mut reg = self.blocking.registry.lock();
            self.blocking.take(&mut reg, self.id).is_some()
        };
        if removed {
            None
        } else {
            self.rx.try_recv().ok()
        }
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut reg = self.blocking.registry.lock();
        self.blocking.take(&mut reg, self.id);
    }
}

/// Why a wait ended without a reply from the registry.
enum Ended {
    Woken(Result<Reply, oneshot::error::RecvError>),
    Timeout,
    /// Killed, server shutdown, or the client went away.
    Close,
}

/// Waits on input from a blocked client without executing it: bytes are
/// kept in `stash` for after the wait, as Redis keeps a blocked client's
/// query buffer. Returns when the client closed the connection (or sent
/// more than the query buffer limit).
async fn watch_input(stream: &TcpStream, stash: &mut Vec<u8>, limit: usize) {
    let mut chunk = vec![0u8; 4096];
    loop {
        if stream.readable().await.is_err() {
            return;
        }
        match stream.try_read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => {
                stash.extend_from_slice(&chunk[..n]);
                if stash.len() > limit {
                    tracing::warn!(
                        bytes = stash.len(),
                        "blocked client sent more than client-query-buffer-limit; closing the connection"
                    );
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return,
        }
    }
}

/// Blocks the connection on the command in `argv`, which the engine just
/// answered with the "nothing to pop" reply. Returns the reply to send
/// (none when the connection closes without one) and what the connection
/// does next. While waiting, further input is read into
/// `conn.pending_input` but not executed.
pub async fn wait(conn: &mut Conn, argv: &[&[u8]], input: &OwnedReadHalf) -> (Option<Reply>, Flow) {
    let owned: Vec<Vec<u8>> = argv.iter().map(|a| a.to_vec()).collect();
    let Some(kind) = argv.first().and_then(|n| Kind::of(n)) else {
        return (Some(Reply::NilArray), Flow::Continue);
    };
    let shared = conn.shared.clone();
    let info = conn.info.clone();
    let id = info.id;
    let duration = argv.last().and_then(|t| wait_duration(t));
    let mut shutdown = shared.shutdown.subscribe();
    if info.killed.load(Ordering::Acquire) || *shutdown.borrow() {
        return (None, Flow::Close);
    }

    let (tx, rx) = oneshot::channel();
    let keys = kind.waited_keys(&owned);
    let db = conn.session.db();
    let waiter = Waiter { kind, db, keys: keys.clone(), argv: owned, resp3: conn.resp3(), tx };
    let blocking = &shared.blocking;
    let mut events = Vec::new();
    {
        let mut reg = blocking.registry.lock();
        blocking.insert(&mut reg, id, waiter);
        // A write between the engine's answer and this registration found
        // no waiter to serve; look at the keys again now that it would.
        let ready = keys.into_iter().map(|k| (db, k)).collect();
        blocking.serve(&shared, &mut reg, ready, &mut events);
    }
    if !events.is_empty() {
        shared.broker.publish_events(&events);
    }
    let mut reg = Registration { blocking, id, rx };
    if let Ok(reply) = reg.rx.try_recv() {
        return (Some(reply), Flow::Continue);
    }

    info.blocked.store(true, Ordering::Relaxed);
    let limit = shared.params.read().client_query_buffer_limit;
    let timer = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending::<()>().await,
        }
    };
    let ended = tokio::select! {
        biased;
        r = &mut reg.rx => Ended::Woken(r),
        _ = info.kill_notify.notified() => Ended::Close,
        _ = shutdown.changed() => Ended::Close,
        _ = timer => Ended::Timeout,
        _ = watch_input(input.as_ref(), &mut conn.pending_input, limit) => Ended::Close,
    };
    info.blocked.store(false, Ordering::Relaxed);
    match ended {
        Ended::Woken(Ok(reply)) => (Some(reply), Flow::Continue),
        // Dropped by `remove_client`: the client is being disconnected.
        Ended::Woken(Err(_)) => (None, Flow::Close),
        Ended::Timeout => match reg.leave() {
            Some(reply) => (Some(reply), Flow::Continue),
            None => (Some(kind.timeout_reply()), Flow::Continue),
        },
        // Served at the last moment: the value is already popped, so it is
        // still sent before the connection closes.
        Ended::Close => (reg.leave(), Flow::Close),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use super::*;
    use crate::config::Config;
    use fastcache_core::NoJournal;

    fn shared() -> Arc<Shared> {
        let config = Config::from_map(&BTreeMap::new()).expect("default config");
        Shared::new(config, 0)
    }

    fn run(shared: &Shared, session: &mut Session, args: &[&str]) -> Reply {
        let argv: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let out = shared.engine.execute_with(session, &argv, &mut NoJournal);
        if out.changed > 0 || args[0].eq_ignore_ascii_case("swapdb") {
            let keys = shared.engine.command(argv[0]).and_then(|s| s.keys(&argv));
            let keys = keys.map(|k| k.iter().map(|k| k.to_vec()).collect());
            shared.blocking.on_write(shared, session.db(), keys);
        }
        out.reply
    }

    /// Registers client `id` as blocked on `args` in db 0.
    fn block(shared: &Shared, id: u64, args: &[&str]) -> oneshot::Receiver<Reply> {
        let argv: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
        let kind = Kind::of(&argv[0]).expect("a blocking command");
        let (tx, rx) = oneshot::channel();
        let keys = kind.waited_keys(&argv);
        let w = Waiter { kind, db: 0, keys, argv, resp3: false, tx };
        let mut reg = shared.blocking.registry.lock();
        shared.blocking.insert(&mut reg, id, w);
        rx
    }

    fn pair(k: &str, v: &str) -> Reply {
        Reply::Array(vec![Reply::bulk(k.as_bytes()), Reply::bulk(v.as_bytes())])
    }

    #[test]
    fn unblock_timeout_and_error() {
        let s = shared();
        let mut a = block(&s, 1, &["BLPOP", "k", "0"]);
        let mut b = block(&s, 2, &["BLMOVE", "k", "d", "LEFT", "LEFT", "0"]);
        let mut c = block(&s, 3, &["BZPOPMIN", "z", "0"]);
        assert_eq!(s.blocking.blocked_count(), 3);
        assert!(s.blocking.unblock(1, false));
        assert!(!s.blocking.unblock(1, false), "already unblocked");
        assert!(s.blocking.unblock(2, false));
        assert!(s.blocking.unblock(3, true));
        assert!(!s.blocking.unblock(99, true));
        assert_eq!(a.try_recv(), Ok(Reply::NilArray));
        assert_eq!(b.try_recv(), Ok(Reply::Nil));
        assert_eq!(c.try_recv(), Ok(Reply::err("UNBLOCKED client unblocked via CLIENT UNBLOCK")));
        assert!(!s.blocking.has_waiters());
        assert!(s.blocking.registry.lock().keys.is_empty());
    }

    #[test]
    fn fifo_and_multi_key() {
        let s = shared();
        let mut session = s.engine.session();
        let mut a = block(&s, 1, &["BLPOP", "x", "k", "0"]);
        let mut b = block(&s, 2, &["BRPOP", "k", "0"]);
        let mut c = block(&s, 3, &["BLPOP", "k", "0"]);
        assert_eq!(run(&s, &mut session, &["RPUSH", "k", "1", "2"]), Reply::Int(2));
        assert_eq!(a.try_recv(), Ok(pair("k", "1")));
        assert_eq!(b.try_recv(), Ok(pair("k", "2")));
        assert!(c.try_recv().is_err(), "nothing left for the third waiter");
        assert_eq!(s.blocking.blocked_count(), 1);
        // The first waiter left its other key too.
        assert!(s.blocking.registry.lock().queue(0, b"x").is_none());
        run(&s, &mut session, &["LPUSH", "k", "3"]);
        assert_eq!(c.try_recv(), Ok(pair("k", "3")));
        assert!(!s.blocking.has_waiters());
        assert_eq!(run(&s, &mut session, &["EXISTS", "k"]), Reply::Int(0));
    }

    #[test]
    fn wrong_type_waiter_keeps_waiting() {
        let s = shared();
        let mut session = s.engine.session();
        let mut list = block(&s, 1, &["BLPOP", "k", "0"]);
        let mut zset = block(&s, 2, &["BZPOPMAX", "k", "0"]);
        run(&s, &mut session, &["ZADD", "k", "1", "a", "2", "b"]);
        assert!(list.try_recv().is_err());
        assert_eq!(zset.try_recv(), Ok(Reply::Array(vec![Reply::bulk(b"k"), Reply::bulk(b"b"), Reply::Double(2.0)])));
        assert_eq!(s.blocking.blocked_count(), 1);
        s.blocking.remove_client(1);
        assert!(!s.blocking.has_waiters());
        assert!(list.try_recv().is_err(), "removed, not answered");
    }

    #[test]
    fn blmove_chain_and_destination_type() {
        let s = shared();
        let mut session = s.engine.session();
        let mut mover = block(&s, 1, &["BLMOVE", "src", "dst", "RIGHT", "LEFT", "0"]);
        let mut popper = block(&s, 2, &["BLPOP", "dst", "0"]);
        run(&s, &mut session, &["RPUSH", "src", "v"]);
        assert_eq!(mover.try_recv(), Ok(Reply::bulk(b"v")));
        assert_eq!(popper.try_recv(), Ok(pair("dst", "v")));
        assert_eq!(run(&s, &mut session, &["EXISTS", "src", "dst"]), Reply::Int(0));

        // A destination of the wrong type answers WRONGTYPE and pops nothing.
        run(&s, &mut session, &["SET", "dst", "x"]);
        let mut mover = block(&s, 3, &["BRPOPLPUSH", "src", "dst", "0"]);
        run(&s, &mut session, &["RPUSH", "src", "w"]);
        match mover.try_recv() {
            Ok(Reply::Error(e)) => assert!(e.starts_with("WRONGTYPE"), "{e}"),
            other => panic!("expected WRONGTYPE, got {other:?}"),
        }
        assert_eq!(run(&s, &mut session, &["LLEN", "src"]), Reply::Int(1));
    }

    #[test]
    fn keyless_write_serves_any_database() {
        let s = shared();
        let mut session = s.engine.session();
        let mut a = block(&s, 1, &["BLPOP", "k", "0"]);
        assert_eq!(run(&s, &mut session, &["SELECT", "1"]), Reply::OK);
        run(&s, &mut session, &["RPUSH", "k", "v"]);
        assert!(a.try_recv().is_err(), "db 1 is not db 0");
        assert_eq!(run(&s, &mut session, &["SWAPDB", "0", "1"]), Reply::OK);
        assert_eq!(a.try_recv(), Ok(pair("k", "v")));
    }

    #[test]
    fn move_to_waiting_database() {
        let s = shared();
        let mut session = s.engine.session();
        let mut a = block(&s, 1, &["BLPOP", "k", "0"]);
        run(&s, &mut session, &["SELECT", "2"]);
        run(&s, &mut session, &["RPUSH", "k", "v"]);
        assert_eq!(run(&s, &mut session, &["MOVE", "k", "0"]), Reply::Int(1));
        assert_eq!(a.try_recv(), Ok(pair("k", "v")));
    }

    #[test]
    fn durations() {
        assert_eq!(wait_duration(b"0"), None);
        assert_eq!(wait_duration(b"0.0"), None);
        assert_eq!(wait_duration(b"1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(wait_duration(b"0.0001"), Some(Duration::from_millis(1)));
        assert_eq!(wait_duration(b"1e30"), None);
    }
}
