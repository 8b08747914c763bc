//! `fastcache-wal` — a memory-mapped, segmented write-ahead log of opaque
//! byte records.
//!
//! **What it is.** An append-only log in a directory: records of arbitrary
//! bytes, each numbered by a log sequence number ([`Lsn`], the first is 1),
//! stored in fixed-size, preallocated, memory-mapped segment files, each
//! record checksummed with crc32c. Appends are thread-safe and ordered; a
//! batch is atomic across a crash; durability follows a [`SyncPolicy`] with
//! group commit (one `msync` covers every record appended before it); a
//! torn tail is cut on open, and damage in the middle is reported, never
//! silently skipped (unless a lossy [`RecoveryMode`] asks for it). A failed
//! sync poisons the log; once the owner has made everything durable
//! elsewhere (a snapshot), [`Wal::restart_after`] heals it in place, and
//! [`WalOptions::min_next_lsn`] keeps a log that lost its end from reusing
//! LSNs a snapshot covers.
//!
//! **What it is not.** It knows nothing about caches or what the payloads
//! mean, depends on no other FastCache crate, does not compress, and does
//! not replicate (a [`Reader`] is the building block for that). One process
//! at a time: the directory is locked.
//!
//! ```
//! use fastcache_wal::{Wal, WalOptions, SyncPolicy};
//!
//! # fn main() -> fastcache_wal::Result<()> {
//! let dir = std::env::temp_dir().join(format!("fastcache-wal-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let opts = WalOptions { segment_size: 1 << 20, sync: SyncPolicy::Always, ..WalOptions::default() };
//! let (wal, report) = Wal::open(&dir, opts)?;
//! assert_eq!(report.records, 0);
//!
//! let lsn = wal.append(b"SET k v")?;                  // ordered, not yet durable
//! wal.wait_durable_blocking(lsn)?;                    // group commit
//! let last = wal.append_batch(&[b"MULTI-a", b"MULTI-b"])?; // all or nothing
//!
//! let records: Vec<_> = wal.reader(1)?.collect::<Result<_, _>>()?;
//! assert_eq!(records, vec![(1, b"SET k v".to_vec()), (2, b"MULTI-a".to_vec()), (3, b"MULTI-b".to_vec())]);
//! assert_eq!(last, 3);
//! wal.close()?;
//!
//! // Reopening recovers every record; a torn tail would be cut and reported.
//! let (wal, report) = Wal::open(&dir, WalOptions::default())?;
//! assert_eq!((report.records, report.last_lsn, report.truncated_bytes), (3, 3, 0));
//! # wal.close()?;
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(())
//! # }
//! ```
//!
//! On-disk formats are in `docs/formats.md`, the durability argument (every
//! sync point, what is assumed of the disk, why the mapping is sound) in
//! `docs/durability.md`. The async server waits with [`Wal::wait_durable`],
//! a plain `Future` that needs no particular runtime.

mod error;
mod fs;
pub mod inspect;
mod lock;
#[allow(unsafe_code)]
mod mmap;
mod naming;
mod reader;
mod record;
mod recovery;
mod segment;
mod stats;
mod sync;
#[cfg(any(test, feature = "test-utils"))]
pub mod testing;
mod writer;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;

pub use crate::error::{Error, Result};
pub use crate::fs::{FileLock, FileSystem, MappedRegion, OpenMode, OsFileSystem, WalFile, WriteMode};
pub use crate::reader::Reader;
pub use crate::recovery::Corruption;
pub use crate::stats::{Histogram, WalStats, GROUP_COMMIT_BOUNDS, SYNC_LATENCY_BOUNDS_US};
pub use crate::sync::DurableFuture;

use crate::writer::Core;

/// A log sequence number. The first record is LSN 1; 0 means "nothing".
pub type Lsn = u64;

/// When appended records reach stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// A waiter ([`Wal::wait_durable`]) gets a sync at once; concurrent
    /// waiters share it (group commit).
    Always,
    /// The background syncer syncs on a fixed schedule (deadline after
    /// deadline, no drift); waiters resolve at the next tick.
    Interval(Duration),
    /// Syncs only when a segment is full and on close; waiters resolve at
    /// once.
    Never,
}

/// What opening a log does with damaged bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// Cut a torn tail (no valid record after the damage); refuse to open
    /// (`Error::Corrupted` / `Error::ChecksumMismatch`) when valid records
    /// follow the damage or it lies in bytes known durable.
    #[default]
    TolerateTornTail,
    /// Lossy: skip damaged bytes and continue with the next valid record,
    /// reporting each skip in [`OpenReport::skipped`]. The damage stays on
    /// disk.
    SkipCorrupted,
    /// Lossy: cut the log at the first damage, dropping everything after it
    /// (the longest valid prefix), and report the cut. The repair for a log
    /// a power cut left with later pages written and an earlier one torn.
    PointInTime,
}

/// How to open a log.
#[derive(Clone)]
pub struct WalOptions {
    /// Bytes per segment file (default 64 MiB, at least 4 KiB). A record,
    /// or a whole batch, must fit in one segment. Existing segments keep the
    /// size they were created with.
    pub segment_size: u64,
    /// Durability policy (default `Interval(1s)`).
    pub sync: SyncPolicy,
    /// Damage handling on open (default `TolerateTornTail`).
    pub recovery: RecoveryMode,
    /// How records are written into the mapped segments (default
    /// `WriteMode::Auto`; see there for the measurements behind it).
    pub write_mode: WriteMode,
    /// The file system (default: the operating system's).
    pub fs: Arc<dyn FileSystem>,
    /// The lowest LSN the next append may get (default 0: no constraint;
    /// 1 is the same). When the opened log's last LSN is below
    /// `min_next_lsn - 1`, the log continues in a new segment whose first
    /// LSN is `min_next_lsn`; the records it holds are kept, and the LSNs
    /// in between belong to no record, ever (a *gap*, recorded in the new
    /// segment's header so that later opens accept it, and reported in
    /// [`OpenReport::gap_after`]). A log already at or past it is opened
    /// unchanged.
    ///
    /// The owner of a snapshot taken at LSN `S` opens with `S + 1`: if the
    /// log lost its end (restored from an older backup, a directory
    /// emptied, a crash in the middle of [`Wal::restart_after`]), new
    /// records must not reuse LSNs the snapshot already covers, or a later
    /// recovery from that snapshot would skip them.
    ///
    /// A [`Reader`] steps over a gap: it reads the last record before it,
    /// then the first after it, and `reader(from)` with `from` inside the
    /// gap starts at the first record after it.
    pub min_next_lsn: Lsn,
}

impl Default for WalOptions {
    fn default() -> WalOptions {
        WalOptions {
            segment_size: 64 << 20,
            sync: SyncPolicy::Interval(Duration::from_secs(1)),
            recovery: RecoveryMode::TolerateTornTail,
            write_mode: WriteMode::Auto,
            fs: Arc::new(OsFileSystem),
            min_next_lsn: 0,
        }
    }
}

impl std::fmt::Debug for WalOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalOptions")
            .field("segment_size", &self.segment_size)
            .field("sync", &self.sync)
            .field("recovery", &self.recovery)
            .field("write_mode", &self.write_mode)
            .field("min_next_lsn", &self.min_next_lsn)
            .finish_non_exhaustive()
    }
}

/// What opening found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenReport {
    /// Segments in the log after opening.
    pub segments: usize,
    /// Valid records found.
    pub records: u64,
    /// First LSN in the log (0 if it holds no record).
    pub first_lsn: Lsn,
    /// The LSN after which appends continue: the last LSN ever appended (0
    /// for a new log), or `min_next_lsn - 1` if that is higher. With no
    /// records left (all truncated) it is still the last LSN used, so
    /// numbering continues.
    pub last_lsn: Lsn,
    /// Bytes of a torn tail that were cut (zeroed or removed).
    pub truncated_bytes: u64,
    /// Damage a lossy [`RecoveryMode`] skipped or cut; empty otherwise.
    pub skipped: Vec<Corruption>,
    /// Set when [`WalOptions::min_next_lsn`] moved numbering forward: the
    /// last LSN the log held (0 for an empty log). The LSNs after it, up to
    /// `last_lsn`, belong to no record.
    pub gap_after: Option<Lsn>,
}

/// An open write-ahead log. Cheap to clone (an `Arc`); `Send + Sync`.
#[derive(Clone)]
pub struct Wal {
    handle: Arc<Handle>,
}

/// Owns the background threads; the last `Wal` clone dropped stops them.
struct Handle {
    core: Arc<Core>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let threads = std::mem::take(&mut *self.threads.lock());
        if !threads.is_empty() {
            // Dropped without `close`: make what was appended durable if we
            // can (an error has nobody to go to; the log is poisoned then).
            let _ = self.core.close(threads);
        }
    }
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.handle.core.dir)
            .field("last_lsn", &self.last_lsn())
            .field("durable_lsn", &self.durable_lsn())
            .finish_non_exhaustive()
    }
}

impl Wal {
    /// Opens the log in `dir`, creating the directory if missing, and
    /// recovers it (see [`RecoveryMode`]).
    ///
    /// # Errors
    /// `Locked` if another instance has it open; `Corrupted` /
    /// `ChecksumMismatch` for damage that is not a torn tail (in the default
    /// mode); `Io` / `NoSpace` for failing operations.
    pub fn open(dir: &Path, opts: WalOptions) -> Result<(Wal, OpenReport)> {
        let (core, threads, report) = Core::open(dir, opts)?;
        Ok((Wal { handle: Arc::new(Handle { core, threads: Mutex::new(threads) }) }, report))
    }

    fn core(&self) -> &Arc<Core> {
        &self.handle.core
    }

    /// Appends one record and returns its LSN. Thread-safe; LSNs follow the
    /// order in which appends take the log's lock. The record is not durable
    /// until a sync covers it ([`Wal::wait_durable`], [`Wal::sync`]).
    ///
    /// # Errors
    /// `Poisoned` after an earlier failure, `Closed`, `RecordTooLarge`, and
    /// whatever rotating to a new segment hit (`NoSpace`, …), which poisons.
    pub fn append(&self, payload: &[u8]) -> Result<Lsn> {
        self.core().append_batch(&[payload])
    }

    /// Appends `payloads` atomically: after a crash either all of them are
    /// in the log or none is. Returns the LSN of the last one (the current
    /// last LSN for an empty batch). A batch must fit in one segment.
    pub fn append_batch(&self, payloads: &[&[u8]]) -> Result<Lsn> {
        self.core().append_batch(payloads)
    }

    /// The last LSN appended (0 for an empty new log), or the LSN the log
    /// was last restarted after ([`Wal::restart_after`],
    /// [`WalOptions::min_next_lsn`]) if no record came since.
    pub fn last_lsn(&self) -> Lsn {
        self.core().last_lsn.load(Ordering::Acquire)
    }

    /// The last LSN known to be on stable storage.
    pub fn durable_lsn(&self) -> Lsn {
        self.core().durable_lsn.load(Ordering::Acquire)
    }

    /// Makes everything appended so far durable, whatever the policy, and
    /// returns the durable LSN. Concurrent callers share syncs.
    ///
    /// # Errors
    /// `Poisoned` — and the failure that poisons the log, if this sync fails.
    pub fn sync(&self) -> Result<Lsn> {
        self.core().check_usable()?;
        self.core().sync_now()
    }

    /// A future resolving when `lsn` is durable: under `Always` it asks the
    /// background syncer for a sync right away (all waiters covered by one
    /// sync resolve together); under `Interval` it resolves at the next
    /// tick; under `Never` at once. It never blocks the polling thread and
    /// needs no particular async runtime. Resolves to `Err(Poisoned)` if the
    /// log fails first, `Err(Closed)` if it is closed first.
    pub fn wait_durable(&self, lsn: Lsn) -> DurableFuture {
        DurableFuture::new(self.core().clone(), lsn)
    }

    /// Like [`Wal::wait_durable`], but under `Always` the polling thread
    /// makes `lsn` durable itself when no sync is running: a poll may block
    /// it for one write and fdatasync (leader/follower group commit, with no
    /// hand-off to the syncer thread and back). While another sync runs the
    /// future waits; when that sync ends it either covered `lsn` or this
    /// future leads the next one. For callers that would wait for the sync
    /// anyway, such as a server's IO thread before it may reply.
    pub fn wait_durable_leading(&self, lsn: Lsn) -> DurableFuture {
        DurableFuture::leading(self.core().clone(), lsn)
    }

    /// Whether a wait for `lsn` would be over now, without waiting or
    /// registering anything: `Some(Ok(()))` if it is durable (or the policy
    /// is `Never`), `Some(Err(_))` if the log failed, was closed or
    /// discarded it (the outcome [`Wal::wait_durable`] would resolve to),
    /// `None` while it is still to come. Lets a caller that multiplexes many
    /// waits over one [`DurableFuture`] settle each of them.
    pub fn durable_state(&self, lsn: Lsn) -> Option<Result<()>> {
        self.core().durable_state(lsn)
    }

    /// Blocks the calling thread until `lsn` is durable (same rules as
    /// [`Wal::wait_durable`]; under `Always` the caller syncs itself, or
    /// finds a concurrent sync covered it).
    pub fn wait_durable_blocking(&self, lsn: Lsn) -> Result<()> {
        self.core().wait_durable_blocking(lsn)
    }

    /// A reader from `from` (0 = the first record in the log). It sees
    /// records appended after it was created; see [`Reader`]. A `from`
    /// inside a gap in the LSNs ([`WalOptions::min_next_lsn`],
    /// [`Wal::restart_after`]) starts at the first record after the gap.
    ///
    /// # Errors
    /// `LsnUnavailable` if `from` was truncated away or lies beyond the next
    /// LSN to be appended.
    pub fn reader(&self, from: Lsn) -> Result<Reader> {
        Reader::new(self.core().clone(), from)
    }

    /// Deletes the segment files whose records all have LSNs below `lsn`
    /// (a checkpoint: a snapshot covers them). Returns how many. The active
    /// segment is never deleted. Readers inside a deleted segment finish it.
    pub fn truncate_before(&self, lsn: Lsn) -> Result<usize> {
        self.core().truncate_before(lsn)
    }

    /// Starts the log afresh after `lsn`, which the caller has made durable
    /// elsewhere (a published snapshot taken at `lsn`): deletes every
    /// segment and continues in a new, empty one whose first LSN is
    /// `lsn + 1`. Clears a poison: this is how a log that failed (a failed
    /// sync, write or allocation) is healed without reopening it. Every
    /// clone of this `Wal` sees the restarted log.
    ///
    /// The healing protocol (`docs/durability.md`): once the disk works
    /// again, take a snapshot at `L = wal.last_lsn()` (memory holds every
    /// record appended, durable or not), publish it durably, then call
    /// `restart_after(L)`.
    ///
    /// In order: waits for a running sync to end (and keeps others and
    /// appends out until it returns); allocates and syncs the new segment's
    /// file — a full disk fails here with nothing changed; removes the old
    /// segments, oldest first, syncing the directory after each (a crash
    /// leaves a suffix of the old log, which [`WalOptions::min_next_lsn`] =
    /// `L + 1` continues correctly on the next open); renames the new
    /// segment in and syncs the directory and its header. Then the last
    /// and the durable LSN are `lsn`, appends get `lsn + 1, lsn + 2, …`,
    /// and the syncer and preallocator go on.
    ///
    /// Concurrent callers: an append either completes before the restart
    /// (it got an LSN ≤ the old last LSN, or failed with `Poisoned`) or
    /// after it (an LSN > `lsn`); none gets an LSN ≤ `lsn` once this
    /// returns.
    ///
    /// Waiters ([`Wal::wait_durable`], [`Wal::wait_durable_blocking`]) for
    /// an LSN the old log had not made durable — above its durable LSN and
    /// at most `lsn` — resolve to the error that poisoned it
    /// (`Err(Poisoned { cause })`), or to `Err(Discarded)` if it was
    /// healthy, whenever they are polled, also if they are created only
    /// after the restart: this log never made those records durable, and
    /// the owner already treats them as failed. Waiters for LSNs the old
    /// log had made durable resolve `Ok`, waiters above `lsn` wait for the
    /// new log's records.
    ///
    /// Readers keep reading the old segments they are in (their mappings
    /// stay valid); one that has read everything up to the old last LSN
    /// continues with the new log's records, one that has not gets
    /// `LsnUnavailable` at the end of its segment. `reader(from)` with
    /// `from ≤` the old last LSN gets `LsnUnavailable`, with `from` between
    /// it and `lsn` starts at `lsn + 1`.
    ///
    /// # Errors
    /// `RestartBehind` if `lsn` is below [`Wal::last_lsn`] (nothing is
    /// changed); `Closed`; otherwise the failure of a step above, which
    /// poisons the log with that failure as the cause (replacing an earlier
    /// one), since old segments may already be gone — call it again once
    /// the disk is fixed.
    pub fn restart_after(&self, lsn: Lsn) -> Result<()> {
        self.core().restart_after(lsn, false)
    }

    /// Like [`Wal::restart_after`], but `lsn` may also lie *below*
    /// [`Wal::last_lsn`]: the whole log is discarded and numbering continues
    /// at `lsn + 1`, reusing the LSNs above `lsn` for new records. For a
    /// replica adopting a primary's history after a full resynchronisation
    /// (its own records above `lsn` belong to another history). The caller
    /// must make sure nothing still waits for, or reads, the discarded
    /// records: waiters above `lsn` are not failed, and readers past `lsn`
    /// may see the new records under old LSNs. Crash order as for
    /// `restart_after` — a crash can leave a suffix of the old log, so the
    /// caller also needs its own marker that the reset was under way.
    ///
    /// # Errors
    /// As [`Wal::restart_after`], without `RestartBehind`.
    pub fn reset_after(&self, lsn: Lsn) -> Result<()> {
        self.core().restart_after(lsn, true)
    }

    /// The cause, if an earlier failure poisoned the log.
    pub fn poisoned(&self) -> Option<String> {
        self.core().poison.lock().clone()
    }

    /// Counters for metrics and INFO.
    pub fn stats(&self) -> WalStats {
        let core = self.core();
        let s = &core.stats;
        let (segments, segment_bytes, first_lsn) = {
            let segs = core.segments.read();
            let first = segs.iter().find(|s| s.end() > s.start).map_or(0, |s| s.first_lsn);
            (segs.len(), segs.iter().map(|s| s.region.len()).sum(), first)
        };
        WalStats {
            records_appended: s.records.load(Ordering::Relaxed),
            payload_bytes_appended: s.payload_bytes.load(Ordering::Relaxed),
            log_bytes_appended: s.log_bytes.load(Ordering::Relaxed),
            segments,
            segment_bytes,
            first_lsn,
            last_lsn: self.last_lsn(),
            durable_lsn: self.durable_lsn(),
            syncs: s.syncs.load(Ordering::Relaxed),
            last_sync_duration: Duration::from_nanos(s.last_sync_ns.load(Ordering::Relaxed)),
            sync_latency_us: s.sync_latency(),
            group_commit_records: s.group_commit(),
            rotations: s.rotations.load(Ordering::Relaxed),
            rotation_stalls: s.rotation_stalls.load(Ordering::Relaxed),
            poisoned: self.poisoned(),
        }
    }

    /// Syncs everything (under every policy), seals the active segment,
    /// stops the background threads and releases the directory lock (once
    /// no [`Reader`] or [`DurableFuture`] of this log is left; they keep the
    /// mapping, and so the lock, alive). Other clones of this `Wal` get
    /// `Closed` afterwards.
    ///
    /// # Errors
    /// `Poisoned`, or the failure of the final sync.
    pub fn close(self) -> Result<()> {
        let threads = std::mem::take(&mut *self.handle.threads.lock());
        if threads.is_empty() {
            // Already closed through another clone.
            return Ok(());
        }
        self.core().close(threads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn public_types_are_thread_safe() {
        assert_send_sync::<Wal>();
        assert_send_sync::<Reader>();
        assert_send_sync::<DurableFuture>();
        assert_send_sync::<Error>();
    }
}
