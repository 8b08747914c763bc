//! The log's shared state, opening, appending, rotation, preallocation of
//! the next segment and retention.
//!
//! # Invariants
//! - Appends are serialized by `Core::writer`; a record's bytes are written
//!   into the mapping and *then* published, so readers and the syncer never
//!   see a partial record, and a batch is published as a whole.
//! - Under `SyncPolicy::Always` with `pwrite` writes (`Core::buffered`) an
//!   append only encodes its records into `WriterState::pending` (LSNs and
//!   offsets are still assigned in order, under the writer lock): the bytes
//!   `[offset - pending.len(), offset)` of the active segment exist only in
//!   memory. `write_pending` writes them with one `pwrite` and publishes
//!   them — at every group-commit sync, at rotation (before the old segment
//!   is handed over to be sealed), when a reader reaches the written end,
//!   and when the buffer exceeds `PENDING_LIMIT`. Readers bound themselves
//!   by the published end, so they never see a record not yet in the file.
//! - LSNs are contiguous: `next_lsn` grows by one per record, across
//!   segments; a segment is named after its first LSN. The one exception
//!   is a segment whose header records a gap (`segment.rs`), created when
//!   the log must continue after an LSN it does not hold
//!   (`WalOptions::min_next_lsn` on open, `Core::restart_after`).
//! - `next_lsn` only grows, except through `Wal::reset_after` (a replica
//!   adopting another history); after `restart_after(lsn)` it is `lsn + 1`,
//!   and the restart holds the sync lock and the writer lock throughout, so
//!   no append or sync straddles it.
//! - A batch never spans segments (a batch larger than a segment is
//!   refused), so recovery can discard a torn batch within one file.
//! - Segment files are allocated to full size and synced before they are
//!   renamed into the log and mapped for writing; only zeros follow the
//!   last record.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex, RwLock};

use crate::error::{Error, Result};
use crate::fs::{FileSystem, MappedRegion, OpenMode, WalFile, WriteMode};
use crate::lock::DirLock;
use crate::naming;
use crate::record::{self, HEADER_LEN, MAX_PAYLOAD};
use crate::recovery::{self, Candidate};
use crate::segment::{self, Seal, Segment, MIN_SEGMENT_SIZE, SEAL_OFFSET, SEGMENT_HEADER_LEN};
use crate::stats::Stats;
use crate::sync::SyncShared;
use crate::{Lsn, OpenReport, SyncPolicy, WalOptions};

/// Everything an open log shares between handles, readers, futures and
/// background threads.
pub(crate) struct Core {
    pub dir: PathBuf,
    pub fs: Arc<dyn FileSystem>,
    pub segment_size: u64,
    pub policy: SyncPolicy,
    pub write_mode: WriteMode,
    /// Appends are buffered in `WriterState::pending` and written out by the
    /// next sync (`Always` with `pwrite` writes); see the module docs.
    pub buffered: bool,
    pub lock: Arc<DirLock>,
    pub writer: Mutex<WriterState>,
    /// The log's segments in LSN order; the last one is the active one.
    pub segments: RwLock<Vec<Arc<Segment>>>,
    /// `next_lsn - 1`, readable without the writer lock.
    pub last_lsn: AtomicU64,
    pub durable_lsn: AtomicU64,
    /// Serializes syncs: a caller that waits here while another sync runs
    /// usually finds its records covered when it gets the lock (group commit).
    pub sync_lock: Mutex<()>,
    pub sync: Mutex<SyncShared>,
    /// Wakes the syncer thread.
    pub syncer_cv: Condvar,
    /// Wakes blocking waiters when `durable_lsn` moves or the log fails.
    pub durable_cv: Condvar,
    /// The highest LSN a waiter asked to be durable (`Always`).
    pub requested: AtomicU64,
    /// Leading waiters registered in `sync.waiters` (`Always`).
    pub leaders: AtomicUsize,
    /// LSNs `restart_after` discarded before they were durable, oldest
    /// first; a waiter for one of them fails (`Core::durable_outcome`).
    pub discarded: Mutex<Vec<DiscardedRange>>,
    /// The highest LSN in `discarded` (0: none), so waiters check the list
    /// only when it can matter.
    pub discarded_upto: AtomicU64,
    pub poison: Mutex<Option<String>>,
    pub poisoned: AtomicBool,
    pub closed: AtomicBool,
    pub spare: Mutex<SpareSlot>,
    pub spare_cv: Condvar,
    /// Numbers spare files, so a spare being prepared never shares a name
    /// with one being renamed into the log.
    pub spare_seq: AtomicU64,
    pub stats: Stats,
}

pub(crate) struct WriterState {
    pub active: Arc<Segment>,
    /// Where the next record goes in `active`.
    pub offset: u64,
    /// Encoded records not yet written to `active` (`Core::buffered` only):
    /// they belong at `[offset - pending.len(), offset)`.
    pub pending: Vec<u8>,
    /// `active` takes no more records (recovered damaged, short or sealed):
    /// the next append rotates.
    pub full: bool,
    pub next_lsn: Lsn,
    /// Segments rotated away from whose seal is not written yet (the syncer
    /// flushes and seals them, in order, before any later LSN is durable).
    pub to_seal: Vec<Arc<Segment>>,
    /// A segment was renamed into the directory and the directory is not
    /// synced yet.
    pub dir_dirty: bool,
}

/// LSNs `after + 1 ..= upto` were appended (or skipped) but never made
/// durable by the log before `restart_after(upto)` dropped its segments.
pub(crate) struct DiscardedRange {
    pub after: Lsn,
    pub upto: Lsn,
    /// What poisoned the log then (`None`: it was healthy).
    pub cause: Option<String>,
}

/// The next segment, prepared off the hot path.
pub(crate) struct Spare {
    path: PathBuf,
    file: Box<dyn WalFile>,
    region: Box<dyn MappedRegion>,
    size: u64,
}

#[derive(Default)]
pub(crate) struct SpareSlot {
    ready: Option<Spare>,
    /// Someone (the preallocator or a rotating appender) is preparing one.
    preparing: bool,
    /// The preallocator should prepare one.
    wanted: bool,
    pub shutdown: bool,
}

/// Pending bytes at which an appender writes the buffer out itself instead
/// of leaving it to the next sync, so memory stays bounded when syncs are
/// slow.
pub(crate) const PENDING_LIMIT: usize = 4 << 20;

/// Largest payload a segment of `size` bytes can hold.
pub(crate) fn max_record(size: u64) -> u64 {
    (size - SEGMENT_HEADER_LEN - HEADER_LEN as u64).min(u64::from(MAX_PAYLOAD))
}

impl Core {
    /// Opens (or creates) the log in `dir`: lock, recover, start threads.
    pub(crate) fn open(dir: &Path, opts: WalOptions) -> Result<(Arc<Core>, Vec<JoinHandle<()>>, OpenReport)> {
        let fs = opts.fs.clone();
        let mut opts = opts;
        if opts.write_mode == WriteMode::Auto {
            opts.write_mode = if opts.sync == SyncPolicy::Always { WriteMode::File } else { WriteMode::Mmap };
        }
        if opts.segment_size < MIN_SEGMENT_SIZE {
            return Err(Error::io(
                "open",
                dir,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("segment_size {} is below the minimum {MIN_SEGMENT_SIZE}", opts.segment_size),
                ),
            ));
        }
        fs.create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        let lock = Arc::new(DirLock::acquire(fs.as_ref(), dir)?);

        let mut names = fs.list_dir(dir).map_err(|e| dir_error("list directory", dir, e))?;
        names.sort();
        let mut cands = Vec::new();
        for name in &names {
            let path = dir.join(name);
            if naming::is_tmp_name(name) {
                // An interrupted preparation; never part of the log.
                fs.remove_file(&path).map_err(|e| Error::io("remove leftover", &path, e))?;
                continue;
            }
            let Some(name_lsn) = naming::parse_segment_name(name) else { continue };
            let file = fs.open(&path, OpenMode::Existing).map_err(|e| Error::io("open segment", &path, e))?;
            let len = file.len().map_err(|e| Error::io("stat segment", &path, e))?;
            let region = if len == 0 {
                None
            } else {
                Some(
                    file.map(len, SEGMENT_HEADER_LEN.min(len), opts.write_mode, false)
                        .map_err(|e| Error::io("map segment", &path, e))?,
                )
            };
            cands.push(Candidate { path, name_lsn, file, region });
        }
        cands.sort_by_key(|c| c.name_lsn);

        let plan = recovery::recover(&cands, opts.recovery)?;

        // Carry out the plan: zero torn tails, remove torn segments.
        for &(idx, from, to) in &plan.zero {
            let cand = &cands[idx];
            if let Some(region) = &cand.region {
                zero_range(region.as_ref(), from, to).map_err(|e| Error::io("zero torn tail", &cand.path, e))?;
                region.flush(from, to - from).map_err(|e| Error::io("msync torn tail", &cand.path, e))?;
            }
        }
        for &idx in &plan.unseal {
            let cand = &cands[idx];
            if let Some(region) = &cand.region {
                region
                    .write(SEAL_OFFSET, &[&[0u8; 16]])
                    .and_then(|()| region.flush(SEAL_OFFSET, 16))
                    .map_err(|e| Error::io("clear the seal of a cut segment", &cand.path, e))?;
            }
        }
        for &idx in &plan.remove {
            let path = &cands[idx].path;
            fs.remove_file(path).map_err(|e| Error::io("remove torn segment", path, e))?;
        }
        if !plan.remove.is_empty() {
            fs.sync_dir(dir).map_err(|e| dir_error("fsync directory", dir, e))?;
        }

        // `min_next_lsn` above the log's end: the log continues after a gap,
        // in a new segment that records where the gap starts.
        let found_next = plan.next_lsn;
        let next_lsn = found_next.max(opts.min_next_lsn);
        let gap_after = (next_lsn > found_next).then(|| found_next - 1);

        let mut cands: Vec<Option<Candidate>> = cands.into_iter().map(Some).collect();
        let mut segments = Vec::new();
        let kept_count = plan.kept.len();
        let mut active_appendable = false;
        for (n, kept) in plan.kept.iter().enumerate() {
            let Some(Candidate { path, file, region: Some(mut region), .. }) =
                cands.get_mut(kept.idx).and_then(Option::take)
            else {
                continue;
            };
            let last = n + 1 == kept_count;
            // After a gap the last recovered segment is not the active one.
            let active = last && gap_after.is_none();
            let mut appendable = kept.appendable;
            if let Some(size) = kept.short_of {
                if last {
                    // The torn tail of a segment whose end was cut off (its
                    // bytes after `kept.end` are zero by now): give it back
                    // its full size so it is an ordinary segment again.
                    drop(region);
                    file.allocate(size)
                        .and_then(|()| file.sync_data())
                        .map_err(|e| Error::io("extend short segment", &path, e))?;
                    region = file
                        .map(size, SEGMENT_HEADER_LEN, opts.write_mode, false)
                        .map_err(|e| Error::io("map segment", &path, e))?;
                } else {
                    appendable = false;
                }
            }
            region.publish(kept.end).map_err(|e| Error::io("publish recovered records", &path, e))?;
            // Whatever a crashed process left in the page cache becomes
            // durable now, so everything recovered counts as durable.
            region.flush(0, kept.end).map_err(|e| Error::io("msync recovered segment", &path, e))?;
            if active {
                active_appendable = appendable;
            }
            let seg = Segment {
                path,
                first_lsn: kept.first_lsn,
                start: kept.start,
                region,
                _file: file,
                complete: AtomicBool::new(!active),
                flushed: AtomicU64::new(kept.end),
                sealed: AtomicBool::new(kept.sealed_complete),
                skips: kept.skips.clone(),
                after_gap: kept.after_gap,
                _lock: lock.clone(),
            };
            if !active && !kept.sealed_complete && kept.skips.is_empty() && kept.start == SEGMENT_HEADER_LEN {
                // A segment the log rotated away from before its seal was
                // written, or the end of the log before a gap: seal it now
                // (its records were made durable just above).
                seal_segment(&seg, true)?;
            }
            segments.push(Arc::new(seg));
        }
        let first_lsn = plan.kept.iter().find(|k| k.end > k.start).map_or(0, |k| k.first_lsn);

        let (active, offset, full) = match (segments.last(), plan.kept.last(), gap_after) {
            (Some(seg), Some(kept), None) => (seg.clone(), kept.end, !active_appendable),
            _ => {
                // An empty (or entirely torn) log: its first segment now; or
                // the segment after a gap.
                let spare = prepare_spare(fs.as_ref(), dir, 0, opts.segment_size, opts.write_mode)?;
                let seg = Arc::new(activate(fs.as_ref(), dir, spare, next_lsn, gap_after, &lock)?);
                fs.sync_dir(dir).map_err(|e| dir_error("fsync directory", dir, e))?;
                seg.region.flush(0, SEGMENT_HEADER_LEN).map_err(|e| Error::io("msync segment header", &seg.path, e))?;
                seg.flushed.store(SEGMENT_HEADER_LEN, Ordering::Relaxed);
                segments.push(seg.clone());
                (seg, SEGMENT_HEADER_LEN, false)
            }
        };

        let report = OpenReport {
            segments: segments.len(),
            records: plan.records,
            first_lsn,
            last_lsn: next_lsn - 1,
            truncated_bytes: plan.truncated_bytes,
            skipped: plan.skipped,
            gap_after,
        };
        let core = Arc::new(Core {
            dir: dir.to_path_buf(),
            fs,
            segment_size: opts.segment_size,
            policy: opts.sync,
            write_mode: opts.write_mode,
            buffered: opts.sync == SyncPolicy::Always && opts.write_mode == WriteMode::File,
            lock,
            writer: Mutex::new(WriterState {
                active,
                offset,
                pending: Vec::new(),
                full,
                next_lsn,
                to_seal: Vec::new(),
                dir_dirty: false,
            }),
            segments: RwLock::new(segments),
            last_lsn: AtomicU64::new(next_lsn - 1),
            durable_lsn: AtomicU64::new(next_lsn - 1),
            sync_lock: Mutex::new(()),
            sync: Mutex::new(SyncShared::default()),
            syncer_cv: Condvar::new(),
            durable_cv: Condvar::new(),
            requested: AtomicU64::new(0),
            leaders: AtomicUsize::new(0),
            discarded: Mutex::new(Vec::new()),
            discarded_upto: AtomicU64::new(0),
            poison: Mutex::new(None),
            poisoned: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            spare: Mutex::new(SpareSlot { wanted: true, ..SpareSlot::default() }),
            spare_cv: Condvar::new(),
            spare_seq: AtomicU64::new(1),
            stats: Stats::new(),
        });
        let threads = start_threads(&core)?;
        Ok((core, threads, report))
    }

    /// The error for an operation on a poisoned or closed log, if it is.
    pub(crate) fn check_usable(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(self.poisoned_error());
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    pub(crate) fn poisoned_error(&self) -> Error {
        Error::Poisoned { cause: self.poison.lock().clone().unwrap_or_else(|| "unknown failure".into()) }
    }

    /// Marks the log failed (the first cause wins) and releases every waiter
    /// with the error.
    pub(crate) fn poison(&self, cause: &Error) {
        {
            let mut poison = self.poison.lock();
            if poison.is_none() {
                *poison = Some(cause.to_string());
            }
            self.poisoned.store(true, Ordering::Release);
        }
        self.wake_all();
    }

    /// Marks the log failed with `cause`, replacing an earlier cause (a
    /// failed `restart_after`: the old cause no longer describes the log).
    fn repoison(&self, cause: &Error) {
        {
            let mut poison = self.poison.lock();
            *poison = Some(cause.to_string());
            self.poisoned.store(true, Ordering::Release);
        }
        self.wake_all();
    }

    /// Appends `payloads` as one batch; returns the last LSN.
    pub(crate) fn append_batch(&self, payloads: &[&[u8]]) -> Result<Lsn> {
        if payloads.is_empty() {
            self.check_usable()?;
            return Ok(self.last_lsn.load(Ordering::Acquire));
        }
        let max = max_record(self.segment_size);
        let mut total = 0u64;
        let mut payload_bytes = 0u64;
        for p in payloads {
            if p.len() as u64 > max {
                return Err(Error::RecordTooLarge { len: p.len() as u64, max });
            }
            total += HEADER_LEN as u64 + p.len() as u64;
            payload_bytes += p.len() as u64;
        }
        if total > max + HEADER_LEN as u64 {
            return Err(Error::RecordTooLarge { len: total, max: max + HEADER_LEN as u64 });
        }
        let mut w = self.writer.lock();
        self.check_usable()?;
        let size = w.active.region.len();
        if w.full || w.offset + total > size {
            self.rotate(&mut w).inspect_err(|e| self.poison(e))?;
        }
        let first = w.next_lsn;
        let n = payloads.len();
        if self.buffered {
            // No system call here: the next sync writes the whole buffer.
            let ws = &mut *w;
            ws.pending.reserve(total as usize);
            for (i, p) in payloads.iter().enumerate() {
                ws.pending.extend_from_slice(&record::encode_header(p, i + 1 < n, first + i as u64));
                ws.pending.extend_from_slice(p);
            }
            ws.offset += total;
            if ws.pending.len() >= PENDING_LIMIT {
                self.write_pending(ws)?;
            }
        } else {
            let mut off = w.offset;
            for (i, p) in payloads.iter().enumerate() {
                let lsn = first + i as u64;
                let header = record::encode_header(p, i + 1 < n, lsn);
                if let Err(e) = w.active.region.write(off, &[&header, p]) {
                    let err = Error::io("write record", &w.active.path, e);
                    self.poison(&err);
                    return Err(err);
                }
                off += HEADER_LEN as u64 + p.len() as u64;
            }
            if let Err(e) = w.active.region.publish(off) {
                let err = Error::io("publish record", &w.active.path, e);
                self.poison(&err);
                return Err(err);
            }
            w.offset = off;
        }
        let last = first + n as u64 - 1;
        w.next_lsn = last + 1;
        self.last_lsn.store(last, Ordering::Release);
        drop(w);

        self.stats.records.fetch_add(n as u64, Ordering::Relaxed);
        self.stats.payload_bytes.fetch_add(payload_bytes, Ordering::Relaxed);
        self.stats.log_bytes.fetch_add(total, Ordering::Relaxed);
        // Someone waits for an LSN that did not exist yet: let the syncer know.
        if self.requested.load(Ordering::Acquire) >= first {
            self.notify_syncer();
        }
        Ok(last)
    }

    /// Writes the active segment's pending bytes (one `pwrite`) and
    /// publishes them. Called with the writer lock held, so the buffer and
    /// the file agree on where each record goes. A failure poisons the log.
    pub(crate) fn write_pending(&self, w: &mut WriterState) -> Result<()> {
        if w.pending.is_empty() {
            return Ok(());
        }
        let from = w.offset - w.pending.len() as u64;
        let written = w
            .active
            .region
            .write(from, &[&w.pending])
            .map_err(|e| Error::io("write record", &w.active.path, e))
            .and_then(|()| {
                w.active.region.publish(w.offset).map_err(|e| Error::io("publish record", &w.active.path, e))
            });
        if let Err(e) = written {
            self.poison(&e);
            return Err(e);
        }
        w.pending.clear();
        if w.pending.capacity() > PENDING_LIMIT {
            // A burst (or one huge record) grew it; give the memory back.
            w.pending = Vec::new();
        }
        Ok(())
    }

    /// For a reader at the written end of `seg`: writes out the pending
    /// records if `seg` is the active segment and has any. Returns whether
    /// the written end moved.
    pub(crate) fn write_pending_of(&self, seg: &Arc<Segment>) -> Result<bool> {
        if !self.buffered {
            return Ok(false);
        }
        let mut w = self.writer.lock();
        if w.pending.is_empty() || !Arc::ptr_eq(&w.active, seg) || self.poisoned.load(Ordering::Acquire) {
            return Ok(false);
        }
        self.write_pending(&mut w)?;
        Ok(true)
    }

    /// Moves appends to the next segment. The old one's pending records are
    /// written out first; it is then handed to the syncer to be flushed and
    /// sealed.
    fn rotate(&self, w: &mut WriterState) -> Result<()> {
        self.write_pending(w)?;
        let spare = self.take_spare()?;
        let seg = Arc::new(activate(self.fs.as_ref(), &self.dir, spare, w.next_lsn, None, &self.lock)?);
        // Readers find the new segment before they learn the old one is done.
        self.segments.write().push(seg.clone());
        let old = std::mem::replace(&mut w.active, seg);
        old.complete.store(true, Ordering::Release);
        if !old.sealed.load(Ordering::Acquire) {
            w.to_seal.push(old);
        }
        w.offset = SEGMENT_HEADER_LEN;
        w.full = false;
        w.dir_dirty = true;
        self.stats.rotations.fetch_add(1, Ordering::Relaxed);
        self.sync.lock().seal_pending = true;
        self.syncer_cv.notify_one();
        Ok(())
    }

    /// The prepared spare, or one made here if the preallocator has none.
    fn take_spare(&self) -> Result<Spare> {
        let mut slot = self.spare.lock();
        loop {
            if let Some(spare) = slot.ready.take() {
                slot.wanted = true;
                self.spare_cv.notify_all();
                return Ok(spare);
            }
            self.stats.rotation_stalls.fetch_add(1, Ordering::Relaxed);
            if slot.preparing {
                self.spare_cv.wait(&mut slot);
                continue;
            }
            slot.preparing = true;
            drop(slot);
            let seq = self.spare_seq.fetch_add(1, Ordering::Relaxed);
            let made = prepare_spare(self.fs.as_ref(), &self.dir, seq, self.segment_size, self.write_mode);
            let mut slot = self.spare.lock();
            slot.preparing = false;
            slot.wanted = true;
            self.spare_cv.notify_all();
            return made;
        }
    }

    /// Deletes the segments whose records all have LSNs below `lsn`; the
    /// active segment always stays.
    pub(crate) fn truncate_before(&self, lsn: Lsn) -> Result<usize> {
        let removed: Vec<Arc<Segment>> = {
            let mut segs = self.segments.write();
            let n = segs.iter().skip(1).take_while(|s| s.first_lsn <= lsn).count();
            segs.drain(..n).collect()
        };
        for seg in &removed {
            match self.fs.remove_file(&seg.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(dir_error("remove segment", &seg.path, e)),
            }
            // One directory sync per removal, oldest first: whatever a crash
            // keeps is a suffix of the log, never a log with a hole.
            if let Err(e) = self.fs.sync_dir(&self.dir) {
                let err = dir_error("fsync directory", &self.dir, e);
                // A failed directory fsync may have lost earlier renames too.
                self.poison(&err);
                return Err(err);
            }
        }
        Ok(removed.len())
    }

    /// Drops every segment and continues the log in a new one whose first
    /// LSN is `lsn + 1` (see `Wal::restart_after` for the contract).
    ///
    /// Holds the sync lock (so a running sync — perhaps the failing one —
    /// ends first and none starts) and the writer lock (so no append runs)
    /// from the check of `lsn` to the end: appends either fail before it or
    /// get LSNs above `lsn` after it.
    pub(crate) fn restart_after(&self, lsn: Lsn, allow_behind: bool) -> Result<()> {
        if lsn == Lsn::MAX {
            let e = std::io::Error::new(std::io::ErrorKind::InvalidInput, "no LSN follows u64::MAX");
            return Err(Error::io("restart", &self.dir, e));
        }
        let _sync = self.lock_sync();
        let mut w = self.writer.lock();
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let last = w.next_lsn - 1;
        if lsn < last && !allow_behind {
            return Err(Error::RestartBehind { lsn, last });
        }
        self.replace_segments(&mut w, lsn, last).inspect_err(|e| self.repoison(e))
    }

    /// The work of `restart_after`, in crash-safe order: the new file is
    /// allocated (a full disk fails here, with nothing changed), the old
    /// segments are removed oldest first with a directory sync after each
    /// (a crash leaves a suffix of the old log, never a hole), then the new
    /// segment is renamed in and made durable. Only then does the in-memory
    /// state change.
    fn replace_segments(&self, w: &mut WriterState, lsn: Lsn, last: Lsn) -> Result<()> {
        let seq = self.spare_seq.fetch_add(1, Ordering::Relaxed);
        let spare = prepare_spare(self.fs.as_ref(), &self.dir, seq, self.segment_size, self.write_mode)?;
        let old: Vec<Arc<Segment>> = self.segments.read().clone();
        for seg in &old {
            let removed = match self.fs.remove_file(&seg.path) {
                Ok(()) => self.fs.sync_dir(&self.dir).map_err(|e| dir_error("fsync directory", &self.dir, e)),
                // Removed by an earlier, failed restart (or `truncate_before`).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(dir_error("remove segment", &seg.path, e)),
            };
            if let Err(e) = removed {
                let _ = self.fs.remove_file(&spare.path);
                return Err(e);
            }
        }
        let after_gap = (lsn > last).then_some(last);
        let seg = Arc::new(activate(self.fs.as_ref(), &self.dir, spare, lsn + 1, after_gap, &self.lock)?);
        self.fs.sync_dir(&self.dir).map_err(|e| dir_error("fsync directory", &self.dir, e))?;
        seg.region.flush(0, SEGMENT_HEADER_LEN).map_err(|e| Error::io("msync segment header", &seg.path, e))?;
        seg.flushed.store(SEGMENT_HEADER_LEN, Ordering::Release);

        // Waiters for what the old log never made durable fail from now on,
        // with what poisoned it (or `Discarded`); recorded before
        // `durable_lsn` moves past them.
        let durable = self.durable_lsn.load(Ordering::Acquire);
        if durable < lsn {
            let cause = if self.poisoned.load(Ordering::Acquire) { self.poison.lock().clone() } else { None };
            self.discarded.lock().push(DiscardedRange { after: durable, upto: lsn, cause });
            self.discarded_upto.store(lsn, Ordering::Release);
        }
        let old_active = std::mem::replace(&mut w.active, seg.clone());
        w.offset = SEGMENT_HEADER_LEN;
        // Buffered records of the old log: never written, covered by the
        // caller's snapshot.
        w.pending = Vec::new();
        w.full = false;
        w.next_lsn = lsn + 1;
        w.to_seal.clear();
        w.dir_dirty = false;
        {
            // Under the segments lock, so a new reader sees the new log's
            // segments together with its last LSN.
            let mut segs = self.segments.write();
            *segs = vec![seg];
            self.last_lsn.store(lsn, Ordering::Release);
            // Moving back (`Wal::reset_after`) the durable LSN follows: the
            // records above `lsn` are gone.
            if lsn < last {
                self.durable_lsn.store(lsn, Ordering::Release);
            } else {
                self.durable_lsn.fetch_max(lsn, Ordering::AcqRel);
            }
        }
        // Readers at the end of the old active segment move on: into the
        // new one if they read everything up to `last`, else they learn
        // their next records are gone (`LsnUnavailable`).
        old_active.complete.store(true, Ordering::Release);
        {
            let mut poison = self.poison.lock();
            *poison = None;
            self.poisoned.store(false, Ordering::Release);
        }
        {
            let mut slot = self.spare.lock();
            slot.wanted = true;
            self.spare_cv.notify_all();
        }
        {
            // The syncer waits while the log is poisoned; let it go on.
            let mut st = self.sync.lock();
            st.seal_pending = false;
            self.syncer_cv.notify_all();
        }
        // Registered waiters re-check: discarded LSNs fail, later ones wait
        // for the new log.
        self.wake_all();
        Ok(())
    }

    /// Final sync, seal of the active segment, threads stopped.
    pub(crate) fn close(&self, threads: Vec<JoinHandle<()>>) -> Result<()> {
        let result = {
            let w = self.writer.lock();
            self.closed.store(true, Ordering::Release);
            drop(w);
            if self.poisoned.load(Ordering::Acquire) {
                Err(self.poisoned_error())
            } else {
                self.sync_now().and_then(|_| {
                    let w = self.writer.lock();
                    if w.offset > SEGMENT_HEADER_LEN && !w.full {
                        seal_segment(&w.active, false)
                    } else {
                        Ok(())
                    }
                })
            }
        };
        self.stop_threads(threads);
        // The prepared spare is not part of the log; the next open would
        // delete it anyway.
        if let Some(spare) = self.spare.lock().ready.take() {
            let _ = self.fs.remove_file(&spare.path);
        }
        self.wake_all();
        result
    }

    pub(crate) fn stop_threads(&self, threads: Vec<JoinHandle<()>>) {
        self.sync.lock().shutdown = true;
        self.syncer_cv.notify_all();
        self.spare.lock().shutdown = true;
        self.spare_cv.notify_all();
        for t in threads {
            let _ = t.join();
        }
    }
}

/// Writes the seal into a segment's header and flushes it. The records it
/// covers must already be durable.
pub(crate) fn seal_segment(seg: &Segment, complete: bool) -> Result<()> {
    let seal = segment::encode_seal(Seal { end: seg.end(), complete });
    seg.region.write(SEAL_OFFSET, &[&seal]).map_err(|e| Error::io("write seal", &seg.path, e))?;
    seg.region.flush(0, SEGMENT_HEADER_LEN).map_err(|e| Error::io("msync seal", &seg.path, e))?;
    if complete {
        seg.sealed.store(true, Ordering::Release);
    }
    Ok(())
}

fn zero_range(region: &dyn MappedRegion, from: u64, to: u64) -> std::io::Result<()> {
    let zeros = [0u8; 4096];
    let mut at = from;
    while at < to {
        let n = (to - at).min(zeros.len() as u64) as usize;
        region.write(at, &[&zeros[..n]])?;
        at += n as u64;
    }
    Ok(())
}

/// Classifies a failure of an operation on the directory: `NotFound` means
/// the directory itself is gone.
pub(crate) fn dir_error(op: &'static str, path: &Path, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        let dir = path.parent().filter(|_| path.extension().is_some()).unwrap_or(path);
        Error::DirectoryVanished { path: dir.to_path_buf() }
    } else {
        Error::io(op, path, e)
    }
}

/// Creates spare file number `seq`, allocates it to full size, makes that
/// durable and maps it.
pub(crate) fn prepare_spare(fs: &dyn FileSystem, dir: &Path, seq: u64, size: u64, mode: WriteMode) -> Result<Spare> {
    // Stores into the mapping fault each page on first write (inside the
    // append's locks); fault them in writable here, off the hot path.
    // `pwrite`s need no mapped pages.
    let populate = mode == WriteMode::Mmap;
    let path = dir.join(naming::spare_file_name(seq));
    match fs.remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(dir_error("remove stale spare", &path, e)),
    }
    let file = fs.open(&path, OpenMode::CreateNew).map_err(|e| dir_error("create segment", &path, e))?;
    let made = file
        .allocate(size)
        .map_err(|e| Error::io("allocate segment", &path, e))
        .and_then(|()| file.sync_data().map_err(|e| Error::io("fdatasync new segment", &path, e)))
        .and_then(|()| {
            file.map(size, SEGMENT_HEADER_LEN, mode, populate).map_err(|e| Error::io("map segment", &path, e))
        });
    match made {
        Ok(region) => Ok(Spare { path, file, region, size }),
        Err(e) => {
            // Give the space back; the error is what matters.
            let _ = fs.remove_file(&path);
            Err(e)
        }
    }
}

/// Renames a spare into the log as the segment starting at `first_lsn` and
/// writes its header (recording a gap after `after_gap`, if given). The caller makes the directory durable before any of
/// its records count as durable.
fn activate(
    fs: &dyn FileSystem,
    dir: &Path,
    spare: Spare,
    first_lsn: Lsn,
    after_gap: Option<Lsn>,
    lock: &Arc<DirLock>,
) -> Result<Segment> {
    let path = naming::segment_path(dir, first_lsn);
    fs.rename(&spare.path, &path).map_err(|e| dir_error("rename segment", &spare.path, e))?;
    let header = segment::encode_header(first_lsn, spare.size, after_gap);
    spare.region.write(0, &[&header]).map_err(|e| Error::io("write segment header", &path, e))?;
    Ok(Segment {
        path,
        first_lsn,
        start: SEGMENT_HEADER_LEN,
        region: spare.region,
        _file: spare.file,
        complete: AtomicBool::new(false),
        flushed: AtomicU64::new(0),
        sealed: AtomicBool::new(false),
        skips: Vec::new(),
        after_gap,
        _lock: lock.clone(),
    })
}

fn start_threads(core: &Arc<Core>) -> Result<Vec<JoinHandle<()>>> {
    let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new().name(name.into()).spawn(f).map_err(|e| Error::io("spawn thread", &core.dir, e))
    };
    let syncer = {
        let core = core.clone();
        spawn("wal-syncer", Box::new(move || core.syncer_loop()))?
    };
    let prealloc = {
        let core = core.clone();
        spawn("wal-prealloc", Box::new(move || preallocator_loop(&core)))
    };
    match prealloc {
        Ok(p) => Ok(vec![syncer, p]),
        Err(e) => {
            core.stop_threads(vec![syncer]);
            Err(e)
        }
    }
}

/// Keeps one spare segment ready so rotation is a rename.
fn preallocator_loop(core: &Core) {
    loop {
        let mut slot = core.spare.lock();
        while !(slot.shutdown || slot.wanted && slot.ready.is_none() && !slot.preparing) {
            core.spare_cv.wait(&mut slot);
        }
        if slot.shutdown {
            return;
        }
        slot.preparing = true;
        drop(slot);
        let seq = core.spare_seq.fetch_add(1, Ordering::Relaxed);
        let made = prepare_spare(core.fs.as_ref(), &core.dir, seq, core.segment_size, core.write_mode);
        let mut slot = core.spare.lock();
        slot.preparing = false;
        match made {
            Ok(spare) => slot.ready = Some(spare),
            // No retry loop: the next rotation tries again on its own and
            // reports the error (a full disk, a vanished directory).
            Err(_) => slot.wanted = false,
        }
        core.spare_cv.notify_all();
    }
}
