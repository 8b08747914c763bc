//! Durability: the group-commit sync, the background syncer and waiting for
//! an LSN to become durable (blocking, or as a `Future`).
//!
//! One sync covers every record appended before it: it takes the end of the
//! log under the writer lock (writing out buffered appends there with one
//! `pwrite`, under `Always` with `pwrite` writes), then — without that lock, so appends go on —
//! flushes and seals the segments rotated away from, syncs the directory if
//! a segment was renamed into it, and `msync`s the active segment's dirty
//! range. Only then does `durable_lsn` move, and every waiter at or below it
//! is released at once.
//!
//! Who syncs: the background syncer, asked by waiters (`Always`) or on its
//! schedule (`Interval`); a blocking waiter, on its own thread; or a
//! *leading* future (`Wal::wait_durable_leading`), on the thread that polls
//! it, when the sync lock is free and the last sync was quick — no hand-off
//! to the syncer and back (two thread wake-ups per group commit saved). A
//! leader that finds the lock taken registers first and then tries the
//! lock; whoever holds it wakes every leader after releasing it
//! (`SyncGuard`), so a leader whose record the running sync did not cover
//! leads the next one, and none is left waiting.
//!
//! A failed flush poisons the log: the pages the kernel failed to write may
//! have been marked clean, so a retried fsync could report success for data
//! that is not on disk (PostgreSQL's "fsyncgate"). The syncer then idles
//! until `restart_after` gives the log new segments (or it shuts down).
//!
//! A waiter's LSN at or below `durable_lsn` is durable — unless
//! `restart_after` moved `durable_lsn` over it without this log ever having
//! synced it (`Core::durable_outcome`).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::writer::{dir_error, seal_segment, Core};
use crate::{Lsn, SyncPolicy};

/// State shared with the syncer thread and the waiters, under `Core::sync`.
#[derive(Default)]
pub(crate) struct SyncShared {
    pub waiters: Vec<Waiter>,
    pub next_waiter: u64,
    /// A rotation left a segment to flush and seal.
    pub seal_pending: bool,
    pub shutdown: bool,
}

/// A leading [`DurableFuture`] syncs on its own thread only while the last
/// sync took at most this long (2 ms); after a slower one it leaves the
/// sync to the syncer thread, so a stalling disk does not hold up the
/// caller's thread (a server's other connections).
const LEAD_MAX_SYNC_NS: u64 = 2_000_000;

/// A registered [`DurableFuture`].
pub(crate) struct Waiter {
    id: u64,
    lsn: Lsn,
    waker: Waker,
    /// Syncs itself when it can (`Wal::wait_durable_leading`): woken also
    /// when a sync ends without covering it, to lead the next one.
    lead: bool,
}

/// The held sync lock. Dropping it releases the lock and then wakes the
/// leading waiters, so one of them can lead the next sync: a leader that
/// found the lock taken registered before it tried, so it is woken.
pub(crate) struct SyncGuard<'a> {
    core: &'a Core,
    guard: Option<parking_lot::MutexGuard<'a, ()>>,
}

impl Drop for SyncGuard<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        if self.core.leaders.load(Ordering::Acquire) > 0 {
            self.core.wake_leaders();
        }
    }
}

impl Core {
    /// Takes the sync lock, waiting for a running sync to end.
    pub(crate) fn lock_sync(&self) -> SyncGuard<'_> {
        let guard = match self.sync_lock.try_lock() {
            Some(guard) => guard,
            None => {
                let guard = self.sync_lock.lock();
                // We waited for another sync: the writers it released are
                // about to append again. Letting them run first puts their
                // records into this sync instead of the next one.
                std::thread::yield_now();
                guard
            }
        };
        SyncGuard { core: self, guard: Some(guard) }
    }

    /// Makes every record appended so far durable; returns the durable LSN.
    pub(crate) fn sync_now(&self) -> Result<Lsn> {
        self.sync_covering(Lsn::MAX)
    }

    /// Makes every record appended so far durable, unless `need` is durable
    /// by the time this caller gets the sync lock: then a sync that ran
    /// while it waited covered it (the follower side of group commit).
    pub(crate) fn sync_covering(&self, need: Lsn) -> Result<Lsn> {
        let sync = self.lock_sync();
        self.sync_locked(&sync, need)
    }

    /// The work of `sync_covering`, with the sync lock held.
    fn sync_locked(&self, _sync: &SyncGuard<'_>, need: Lsn) -> Result<Lsn> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(self.poisoned_error());
        }
        let durable = self.durable_lsn.load(Ordering::Acquire);
        if need <= durable {
            return Ok(durable);
        }
        let started = Instant::now();
        let (target, to_seal, active, to, dir_dirty) = {
            let mut w = self.writer.lock();
            // Buffered appends: one `pwrite` of everything appended since
            // the last sync (under the writer lock, so a concurrent write-out
            // cannot publish past bytes not yet written).
            self.write_pending(&mut w)?;
            let target = w.next_lsn - 1;
            (target, std::mem::take(&mut w.to_seal), w.active.clone(), w.offset, std::mem::take(&mut w.dir_dirty))
        };
        self.sync.lock().seal_pending = false;
        let from = active.flushed.load(Ordering::Acquire);
        if target <= durable && to_seal.is_empty() && !dir_dirty && from >= to {
            return Ok(durable);
        }
        let result = (|| {
            // Older segments first: a later LSN is never durable while an
            // earlier one is not.
            for seg in &to_seal {
                let (from, end) = (seg.flushed.load(Ordering::Acquire), seg.end());
                if end > from {
                    seg.region.flush(from, end - from).map_err(|e| Error::io("msync segment", &seg.path, e))?;
                    seg.flushed.store(end, Ordering::Release);
                }
                seal_segment(seg, true)?;
            }
            if dir_dirty {
                self.fs.sync_dir(&self.dir).map_err(|e| dir_error("fsync directory", &self.dir, e))?;
            }
            if to > from {
                active.region.flush(from, to - from).map_err(|e| Error::io("msync segment", &active.path, e))?;
                active.flushed.fetch_max(to, Ordering::AcqRel);
            }
            Ok(())
        })();
        if let Err(e) = result {
            self.poison(&e);
            return Err(e);
        }
        let previous = self.durable_lsn.fetch_max(target, Ordering::AcqRel);
        if target > previous {
            self.stats.record_sync(started.elapsed(), target - previous);
        }
        self.wake_durable(target);
        Ok(target.max(previous))
    }

    /// The outcome for a waiter whose `lsn` is at or below `durable_lsn`:
    /// `Ok`, unless `restart_after` discarded it unsynced — then the error
    /// that had poisoned the log, or `Discarded` if it was healthy.
    pub(crate) fn durable_outcome(&self, lsn: Lsn) -> Result<()> {
        if lsn > self.discarded_upto.load(Ordering::Acquire) {
            return Ok(());
        }
        let ranges = self.discarded.lock();
        match ranges.iter().find(|r| r.after < lsn && lsn <= r.upto) {
            None => Ok(()),
            Some(r) => Err(match &r.cause {
                Some(cause) => Error::Poisoned { cause: cause.clone() },
                None => Error::Discarded { lsn, restarted_after: r.upto },
            }),
        }
    }

    /// The outcome of a wait for `lsn` if it is settled now (see
    /// `Wal::durable_state`).
    pub(crate) fn durable_state(&self, lsn: Lsn) -> Option<Result<()>> {
        if lsn <= self.durable_lsn.load(Ordering::Acquire) {
            return Some(self.durable_outcome(lsn));
        }
        if self.poisoned.load(Ordering::Acquire) {
            return Some(Err(self.poisoned_error()));
        }
        if self.policy == SyncPolicy::Never {
            return Some(Ok(()));
        }
        if self.closed.load(Ordering::Acquire) {
            return Some(Err(Error::Closed));
        }
        None
    }

    /// Releases the waiters whose LSN is durable now.
    fn wake_durable(&self, durable: Lsn) {
        let ready: Vec<Waker> = {
            let mut st = self.sync.lock();
            let mut ready = Vec::new();
            let mut leaders = 0;
            st.waiters.retain(|w| {
                if w.lsn <= durable {
                    ready.push(w.waker.clone());
                    leaders += usize::from(w.lead);
                    false
                } else {
                    true
                }
            });
            self.leaders.fetch_sub(leaders, Ordering::AcqRel);
            self.durable_cv.notify_all();
            ready
        };
        for w in ready {
            w.wake();
        }
    }

    /// Releases every waiter (the log failed or closed); each re-checks.
    pub(crate) fn wake_all(&self) {
        let all: Vec<Waker> = {
            let mut st = self.sync.lock();
            self.durable_cv.notify_all();
            self.leaders.store(0, Ordering::Release);
            st.waiters.drain(..).map(|w| w.waker).collect()
        };
        for w in all {
            w.wake();
        }
    }

    /// Wakes the leading waiters (the sync lock was just released); each
    /// re-checks and, if still not durable, tries to lead a sync.
    fn wake_leaders(&self) {
        let leaders: Vec<Waker> = {
            let mut st = self.sync.lock();
            self.leaders.store(0, Ordering::Release);
            let mut leaders = Vec::new();
            st.waiters.retain(|w| {
                if w.lead {
                    leaders.push(w.waker.clone());
                }
                !w.lead
            });
            leaders
        };
        for w in leaders {
            w.wake();
        }
    }

    pub(crate) fn notify_syncer(&self) {
        let _st = self.sync.lock();
        self.syncer_cv.notify_one();
    }

    /// The background syncer: syncs on request (`Always`), on a fixed
    /// schedule (`Interval`) and after rotations (every policy).
    pub(crate) fn syncer_loop(&self) {
        let period = match self.policy {
            SyncPolicy::Interval(d) => Some(d.max(Duration::from_millis(1))),
            _ => None,
        };
        let mut deadline = period.map(|d| Instant::now() + d);
        loop {
            let tick = {
                let mut st = self.sync.lock();
                loop {
                    if st.shutdown {
                        return;
                    }
                    if st.seal_pending {
                        break false;
                    }
                    if self.policy == SyncPolicy::Always {
                        let durable = self.durable_lsn.load(Ordering::Acquire);
                        let wanted = self.requested.load(Ordering::Acquire).min(self.last_lsn.load(Ordering::Acquire));
                        if wanted > durable {
                            break false;
                        }
                    }
                    match deadline {
                        Some(d) if Instant::now() >= d => break true,
                        Some(d) => {
                            self.syncer_cv.wait_until(&mut st, d);
                        }
                        None => self.syncer_cv.wait(&mut st),
                    }
                }
            };
            if self.poisoned.load(Ordering::Acquire) {
                // Nothing more can be made durable; wait for shutdown or for
                // `restart_after` (which clears the poison, then notifies
                // under this lock, so the wake-up is not lost).
                let mut st = self.sync.lock();
                while !st.shutdown && self.poisoned.load(Ordering::Acquire) {
                    self.syncer_cv.wait(&mut st);
                }
                if st.shutdown {
                    return;
                }
                deadline = period.map(|d| Instant::now() + d);
                continue;
            }
            // Errors poison the log inside sync_now; waiters learn from that.
            let _ = self.sync_now();
            if tick {
                if let (Some(d), Some(prev)) = (period, deadline) {
                    // The next tick is one period after the previous
                    // *deadline*, not after this sync ended, so a slow sync
                    // does not push the schedule back (Redis' everysec
                    // postpones; we do not). Ticks missed entirely are
                    // skipped rather than run back to back.
                    let mut next = prev + d;
                    let now = Instant::now();
                    while next <= now {
                        next += d;
                    }
                    deadline = Some(next);
                }
            }
        }
    }

    /// Blocks until `lsn` is durable under the policy (see `Wal::wait_durable`).
    pub(crate) fn wait_durable_blocking(&self, lsn: Lsn) -> Result<()> {
        loop {
            if lsn <= self.durable_lsn.load(Ordering::Acquire) {
                return self.durable_outcome(lsn);
            }
            if self.poisoned.load(Ordering::Acquire) {
                return Err(self.poisoned_error());
            }
            match self.policy {
                SyncPolicy::Never => return Ok(()),
                // Sync on this thread: a caller arriving while another sync
                // runs waits for the sync lock and usually finds its record
                // covered (group commit without a thread hand-off).
                SyncPolicy::Always if lsn <= self.last_lsn.load(Ordering::Acquire) => {
                    self.sync_covering(lsn)?;
                }
                _ => {
                    if self.closed.load(Ordering::Acquire) {
                        return Err(Error::Closed);
                    }
                    self.requested.fetch_max(lsn, Ordering::AcqRel);
                    let mut st = self.sync.lock();
                    if lsn > self.durable_lsn.load(Ordering::Acquire) && !self.poisoned.load(Ordering::Acquire) {
                        self.syncer_cv.notify_one();
                        // Bounded so a closed log is noticed even without a wake-up.
                        self.durable_cv.wait_for(&mut st, Duration::from_millis(100));
                    }
                }
            }
        }
    }
}

/// Resolves when an LSN is durable under the log's policy; see
/// [`Wal::wait_durable`](crate::Wal::wait_durable). Runtime-agnostic: it
/// uses the `Waker` it is polled with and never blocks the polling thread.
#[must_use = "futures do nothing unless polled"]
pub struct DurableFuture {
    core: Arc<Core>,
    lsn: Lsn,
    /// Our entry in the waiter list, once registered.
    id: Option<u64>,
    /// Sync on the polling thread when no sync runs
    /// (`Wal::wait_durable_leading`).
    lead: bool,
}

impl DurableFuture {
    pub(crate) fn new(core: Arc<Core>, lsn: Lsn) -> DurableFuture {
        DurableFuture { core, lsn, id: None, lead: false }
    }

    pub(crate) fn leading(core: Arc<Core>, lsn: Lsn) -> DurableFuture {
        let lead = core.policy == SyncPolicy::Always;
        DurableFuture { core, lsn, id: None, lead }
    }

    /// Removes our entry from the waiter list.
    fn deregister(&mut self, st: &mut SyncShared) {
        if let Some(id) = self.id.take() {
            if let Some(i) = st.waiters.iter().position(|w| w.id == id) {
                let w = st.waiters.swap_remove(i);
                if w.lead {
                    self.core.leaders.fetch_sub(1, Ordering::AcqRel);
                }
            }
        }
    }

    /// The LSN this future waits for.
    pub fn lsn(&self) -> Lsn {
        self.lsn
    }

    fn ready(&self) -> Option<Result<()>> {
        self.core.durable_state(self.lsn)
    }
}

impl Future for DurableFuture {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if let Some(r) = self.ready() {
            if self.id.is_some() {
                let core = self.core.clone();
                self.deregister(&mut core.sync.lock());
            }
            return Poll::Ready(r);
        }
        let this = &mut *self;
        let core = this.core.clone();
        // A leader syncs itself if its record is in the log (a future for an
        // LSN not appended yet waits like any other), and only while syncs
        // are quick: when the disk stalls, the syncer thread waits for it
        // rather than the caller's thread.
        let lead = this.lead
            && this.lsn <= core.last_lsn.load(Ordering::Acquire)
            && core.stats.last_sync_ns.load(Ordering::Relaxed) <= LEAD_MAX_SYNC_NS;
        {
            let mut st = core.sync.lock();
            // Re-check under the lock: the syncer moves `durable_lsn` before
            // it takes this lock to wake waiters, so no wake-up is lost.
            if let Some(r) = this.ready() {
                this.deregister(&mut st);
                return Poll::Ready(r);
            }
            match this.id.and_then(|id| st.waiters.iter_mut().find(|w| w.id == id)) {
                Some(w) => w.waker.clone_from(cx.waker()),
                None => {
                    let id = st.next_waiter;
                    st.next_waiter += 1;
                    st.waiters.push(Waiter { id, lsn: this.lsn, waker: cx.waker().clone(), lead });
                    if lead {
                        core.leaders.fetch_add(1, Ordering::AcqRel);
                    }
                    this.id = Some(id);
                }
            }
            if !lead && core.policy == SyncPolicy::Always {
                core.requested.fetch_max(this.lsn, Ordering::AcqRel);
                core.syncer_cv.notify_one();
            }
        }
        if lead {
            // Registered first, then the lock: if it is taken, its holder
            // wakes us after releasing it (`SyncGuard`), so no wake-up is lost.
            if let Some(guard) = core.sync_lock.try_lock() {
                let sync = SyncGuard { core: &core, guard: Some(guard) };
                this.deregister(&mut core.sync.lock());
                let synced = core.sync_locked(&sync, this.lsn);
                drop(sync);
                if let Err(e) = synced {
                    return Poll::Ready(Err(e));
                }
                if let Some(r) = this.ready() {
                    return Poll::Ready(r);
                }
                // Not covered (a restart moved the log): wait again.
                cx.waker().wake_by_ref();
            }
        }
        Poll::Pending
    }
}

impl Drop for DurableFuture {
    fn drop(&mut self) {
        if self.id.is_some() {
            let core = self.core.clone();
            self.deregister(&mut core.sync.lock());
        }
    }
}
