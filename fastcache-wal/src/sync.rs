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
    pub waiters: Vec<(u64, Lsn, Waker)>,
    pub next_waiter: u64,
    /// A rotation left a segment to flush and seal.
    pub seal_pending: bool,
    pub shutdown: bool,
}

impl Core {
    /// Makes every record appended so far durable; returns the durable LSN.
    pub(crate) fn sync_now(&self) -> Result<Lsn> {
        self.sync_covering(Lsn::MAX)
    }

    /// Makes every record appended so far durable, unless `need` is durable
    /// by the time this caller gets the sync lock: then a sync that ran
    /// while it waited covered it (the follower side of group commit).
    pub(crate) fn sync_covering(&self, need: Lsn) -> Result<Lsn> {
        let _sync = match self.sync_lock.try_lock() {
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

    /// Releases the waiters whose LSN is durable now.
    fn wake_durable(&self, durable: Lsn) {
        let ready: Vec<Waker> = {
            let mut st = self.sync.lock();
            let mut ready = Vec::new();
            st.waiters.retain(|(_, lsn, waker)| {
                if *lsn <= durable {
                    ready.push(waker.clone());
                    false
                } else {
                    true
                }
            });
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
            st.waiters.drain(..).map(|(_, _, w)| w).collect()
        };
        for w in all {
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
}

impl DurableFuture {
    pub(crate) fn new(core: Arc<Core>, lsn: Lsn) -> DurableFuture {
        DurableFuture { core, lsn, id: None }
    }

    /// The LSN this future waits for.
    pub fn lsn(&self) -> Lsn {
        self.lsn
    }

    fn ready(&self) -> Option<Result<()>> {
        let core = &self.core;
        if self.lsn <= core.durable_lsn.load(Ordering::Acquire) {
            return Some(core.durable_outcome(self.lsn));
        }
        if core.poisoned.load(Ordering::Acquire) {
            return Some(Err(core.poisoned_error()));
        }
        if core.policy == SyncPolicy::Never {
            return Some(Ok(()));
        }
        if core.closed.load(Ordering::Acquire) {
            return Some(Err(Error::Closed));
        }
        None
    }
}

impl Future for DurableFuture {
    type Output = Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        if let Some(r) = self.ready() {
            return Poll::Ready(r);
        }
        let this = &mut *self;
        let core = this.core.clone();
        let mut st = core.sync.lock();
        // Re-check under the lock: the syncer moves `durable_lsn` before it
        // takes this lock to wake waiters, so no wake-up is lost.
        if let Some(r) = this.ready() {
            return Poll::Ready(r);
        }
        match this.id.and_then(|id| st.waiters.iter_mut().find(|(i, _, _)| *i == id)) {
            Some((_, _, waker)) => waker.clone_from(cx.waker()),
            None => {
                let id = st.next_waiter;
                st.next_waiter += 1;
                st.waiters.push((id, this.lsn, cx.waker().clone()));
                this.id = Some(id);
            }
        }
        if core.policy == SyncPolicy::Always {
            core.requested.fetch_max(this.lsn, Ordering::AcqRel);
            core.syncer_cv.notify_one();
        }
        Poll::Pending
    }
}

impl Drop for DurableFuture {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.core.sync.lock().waiters.retain(|(i, _, _)| *i != id);
        }
    }
}
