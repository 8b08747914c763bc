//! Read-only inspection of a log directory, for operators' tools
//! (`fastcache check`, `fastcache inspect`).
//!
//! [`Wal::open`](crate::Wal::open) takes the directory lock, cuts a torn
//! tail and refuses damage in the middle: it *repairs* as it opens. A
//! [`LogScanner`] does neither. It reads the segment files with plain
//! reads (no mapping, no lock, no write, no rename), verifies what recovery
//! verifies — each header, each record's LSN and checksum, batches closed,
//! segments continuing each other or a recorded gap, seals — and classifies
//! every break the way an open would:
//!
//! - [`DamageKind::TornTail`]: no valid record follows and the bytes were
//!   not sealed as durable; an open cuts it (and reports `truncated_bytes`).
//! - [`DamageKind::Middle`]: a valid record follows, or the bytes were below
//!   a seal; an open refuses (`Error::Corrupted` / `ChecksumMismatch`)
//!   unless told to lose data (`RecoveryMode::PointInTime`,
//!   `RecoveryMode::SkipCorrupted`).
//!
//! Unlike an open, the scan goes on after damage in the middle (from the
//! next valid record, as `SkipCorrupted` would), so one pass reports every
//! damaged place. Records are handed to a visitor in LSN order, checksums
//! verified, batches only once closed.
//!
//! A scan of a directory that a running server is writing sees whatever
//! the files hold at the moment they are read: use [`is_locked`] to tell.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::naming::{self, LOCK_FILE};
use crate::record::{self, HeaderParse, Stop, HEADER_LEN};
use crate::recovery::last_nonzero;
use crate::segment::{self, SegmentHeader, SEGMENT_HEADER_LEN};
use crate::Lsn;

/// One valid record, as a [`LogScanner`] hands it to its visitor.
#[derive(Debug, Clone, Copy)]
pub struct ScannedRecord<'a> {
    /// The record's LSN.
    pub lsn: Lsn,
    /// Its payload (checksum verified).
    pub payload: &'a [u8],
    /// The segment file holding it.
    pub segment: &'a Path,
    /// Byte offset of its header in that file.
    pub offset: u64,
}

/// What a segment's seal says (`docs/formats.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealInfo {
    /// Every record before this offset was durable when it was written.
    pub end: u64,
    /// The log had moved on to the next segment.
    pub complete: bool,
}

/// One segment file, as the scan found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSummary {
    /// The file.
    pub path: PathBuf,
    /// The first LSN its name claims.
    pub name_lsn: Lsn,
    /// Its length on disk.
    pub file_bytes: u64,
    /// The size its header records (`None` if the header does not verify).
    pub segment_size: Option<u64>,
    /// The header records a gap: the last LSN of the log before it.
    pub after_gap: Option<Lsn>,
    /// Its seal, if one verifies.
    pub seal: Option<SealInfo>,
    /// First and last LSN of the valid records read in it.
    pub first_lsn: Option<Lsn>,
    /// See `first_lsn`.
    pub last_lsn: Option<Lsn>,
    /// Valid records read in it.
    pub records: u64,
    /// Payload bytes of those records.
    pub payload_bytes: u64,
    /// End of its last valid record (0 if the header does not verify).
    pub data_end: u64,
    /// False for a segment that lies wholly inside damage (or after the end
    /// of the log): an open would not read it.
    pub in_log: bool,
}

/// How an open would treat a break in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DamageKind {
    /// The end of a crashed write: no valid record follows and the bytes
    /// were not sealed as durable. An open cuts it.
    TornTail,
    /// Damage with valid records after it, or in bytes sealed as durable.
    /// An open refuses unless told to lose data.
    Middle,
}

/// Where a scan picked the log up again after damage in the middle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    /// The segment file of the next valid record.
    pub segment: PathBuf,
    /// Its offset.
    pub offset: u64,
    /// Its LSN.
    pub lsn: Lsn,
}

/// A place where the log does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The segment file where the damage starts.
    pub segment: PathBuf,
    /// Byte offset of the damage in it.
    pub offset: u64,
    /// What did not verify.
    pub reason: String,
    /// How an open treats it.
    pub kind: DamageKind,
    /// The stored and computed checksum, when a record's checksum failed.
    pub checksum: Option<(u32, u32)>,
    /// Non-zero bytes an open would cut (torn tail), or bytes up to the
    /// next valid record (middle).
    pub bytes: u64,
    /// The LSN the log needed next at the break.
    pub expected_lsn: Lsn,
    /// The next valid record after the damage, if any.
    pub resumes_at: Option<Resume>,
    /// Where `RecoveryMode::PointInTime` would cut: the segment and the
    /// offset (0 = the whole file) from which everything goes.
    pub cut_at: (PathBuf, u64),
}

/// A recorded gap in the LSNs (`WalOptions::min_next_lsn`, `restart_after`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The last LSN before the gap.
    pub after: Lsn,
    /// The first LSN after it.
    pub next: Lsn,
    /// The segment that records it.
    pub segment: PathBuf,
}

/// What a scan found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogScan {
    /// The directory.
    pub dir: PathBuf,
    /// Segment files in name (LSN) order.
    pub segments: Vec<SegmentSummary>,
    /// Every break, in log order.
    pub damage: Vec<Damage>,
    /// Recorded gaps the log steps over.
    pub gaps: Vec<Gap>,
    /// Valid records.
    pub records: u64,
    /// Their payload bytes.
    pub payload_bytes: u64,
    /// First and last valid LSN.
    pub first_lsn: Option<Lsn>,
    /// See `first_lsn`.
    pub last_lsn: Option<Lsn>,
    /// Spare segments being prepared (`*.wal.tmp`), which an open removes.
    pub spare_files: Vec<PathBuf>,
    /// Files that are not part of a log (the `LOCK` file excluded).
    pub other_files: Vec<PathBuf>,
    /// False if the visitor stopped the scan early (the counts then cover
    /// only what was read).
    pub complete: bool,
}

impl LogScan {
    /// True when an open in the default mode would neither cut nor refuse
    /// anything.
    pub fn is_clean(&self) -> bool {
        self.damage.is_empty()
    }

    /// True when an open in the default mode refuses the log.
    pub fn has_middle_damage(&self) -> bool {
        self.damage.iter().any(|d| d.kind == DamageKind::Middle)
    }
}

type Visitor<'a> = Box<dyn FnMut(&ScannedRecord<'_>) -> ControlFlow<()> + 'a>;
type ProgressFn<'a> = Box<dyn FnMut(u64, u64) + 'a>;

/// A read-only scan of a log directory; see the module documentation.
///
/// ```
/// # fn main() -> fastcache_wal::Result<()> {
/// # let dir = std::env::temp_dir().join(format!("fastcache-wal-inspect-doc-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir);
/// # let (wal, _) = fastcache_wal::Wal::open(&dir, fastcache_wal::WalOptions { segment_size: 1 << 16, ..Default::default() })?;
/// # wal.append(b"a")?; wal.append(b"b")?; wal.close()?;
/// let mut lsns = Vec::new();
/// let scan = fastcache_wal::inspect::LogScanner::new(&dir)
///     .on_record(|r| { lsns.push(r.lsn); std::ops::ControlFlow::Continue(()) })
///     .run()?;
/// assert!(scan.is_clean());
/// assert_eq!((scan.records, scan.last_lsn), (2, Some(2)));
/// # drop(scan); assert_eq!(lsns, vec![1, 2]);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok(())
/// # }
/// ```
pub struct LogScanner<'a> {
    dir: PathBuf,
    visit: Option<Visitor<'a>>,
    progress: Option<ProgressFn<'a>>,
}

impl std::fmt::Debug for LogScanner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogScanner").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl<'a> LogScanner<'a> {
    /// A scan of the log in `dir`.
    pub fn new(dir: &Path) -> LogScanner<'a> {
        LogScanner { dir: dir.to_path_buf(), visit: None, progress: None }
    }

    /// Calls `f` for every valid record in LSN order; `Break` ends the scan
    /// (the report then has `complete == false`).
    pub fn on_record(mut self, f: impl FnMut(&ScannedRecord<'_>) -> ControlFlow<()> + 'a) -> Self {
        self.visit = Some(Box::new(f));
        self
    }

    /// Calls `f(bytes_read, bytes_total)` after each segment file.
    pub fn on_progress(mut self, f: impl FnMut(u64, u64) + 'a) -> Self {
        self.progress = Some(Box::new(f));
        self
    }

    /// Runs the scan. Reads every segment file once (and, after damage,
    /// searches the following ones for the next valid record).
    ///
    /// # Errors
    /// `Io` if the directory or a file cannot be read. Damaged bytes are
    /// not errors: they are reported in [`LogScan::damage`].
    pub fn run(mut self) -> Result<LogScan> {
        let dir = self.dir.clone();
        let mut report = LogScan { dir: dir.clone(), complete: true, ..LogScan::default() };
        let mut files: Vec<(Lsn, PathBuf, u64)> = Vec::new();
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::io("list WAL directory", &dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list WAL directory", &dir, e))?;
            let path = entry.path();
            let Ok(name) = entry.file_name().into_string() else {
                report.other_files.push(path);
                continue;
            };
            if name == LOCK_FILE {
                continue;
            }
            if naming::is_tmp_name(&name) {
                report.spare_files.push(path);
                continue;
            }
            match naming::parse_segment_name(&name) {
                Some(lsn) => {
                    let len = entry.metadata().map_err(|e| Error::io("stat segment", &path, e))?.len();
                    files.push((lsn, path, len));
                }
                None => report.other_files.push(path),
            }
        }
        files.sort();
        report.spare_files.sort();
        report.other_files.sort();
        let total: u64 = files.iter().map(|f| f.2).sum();
        report.segments = files
            .iter()
            .map(|(lsn, path, len)| SegmentSummary {
                path: path.clone(),
                name_lsn: *lsn,
                file_bytes: *len,
                segment_size: None,
                after_gap: None,
                seal: None,
                first_lsn: None,
                last_lsn: None,
                records: 0,
                payload_bytes: 0,
                data_end: 0,
                in_log: false,
            })
            .collect();
        let mut state = State { next: None, resume: None, stopped: false };
        let mut done_bytes = 0u64;
        let mut i = 0;
        while i < files.len() && !state.stopped {
            let bytes = read_file(&files[i].1)?;
            let outcome = self.scan_one(&files, i, &bytes, &mut state, &mut report)?;
            done_bytes += files[i].2;
            if let Some(p) = self.progress.as_mut() {
                p(done_bytes, total);
            }
            match outcome {
                Next::Segment => i += 1,
                Next::Jump(t) => {
                    // Segments wholly inside the damage are not part of the log.
                    i = t;
                }
                Next::End => break,
            }
        }
        if let Some(p) = self.progress.as_mut() {
            p(total, total);
        }
        report.complete = !state.stopped;
        Ok(report)
    }

    /// Scans segment `i` (from its header, or from a resume point) and
    /// classifies the break, if any.
    fn scan_one(
        &mut self,
        files: &[(Lsn, PathBuf, u64)],
        i: usize,
        b: &[u8],
        state: &mut State,
        report: &mut LogScan,
    ) -> Result<Next> {
        let (name_lsn, path, _) = &files[i];
        let is_last = i + 1 == files.len();
        let header = segment::parse_header(b, *name_lsn);
        let resumed = state.resume.take();
        let mut seg = SegScan::default();
        if let Ok(h) = &header {
            seg.size = (b.len() as u64).min(h.segment_size);
            seg.short = (b.len() as u64) < h.segment_size;
            let s = &mut report.segments[i];
            s.segment_size = Some(h.segment_size);
            s.after_gap = h.after_gap;
            s.seal = h.seal.map(|s| SealInfo { end: s.end, complete: s.complete });
        } else {
            seg.size = b.len() as u64;
        }
        let start = match resumed {
            Some((offset, lsn)) => Some((offset, lsn)),
            None => match &header {
                Err(reason) => {
                    seg.stop = Stop::Bad { at: 0, reason: reason.clone(), checksum: None };
                    None
                }
                Ok(h) => match continuity(h, state.next) {
                    Err(reason) => {
                        seg.stop = Stop::Bad { at: 0, reason, checksum: None };
                        None
                    }
                    Ok(()) => {
                        if let Some(prev) = h.after_gap {
                            report.gaps.push(Gap { after: prev, next: h.first_lsn, segment: path.clone() });
                        }
                        Some((SEGMENT_HEADER_LEN, h.first_lsn))
                    }
                },
            },
        };
        if let Some((from, lsn)) = start {
            seg.valid_end = from;
            seg.next = lsn;
            report.segments[i].in_log = true;
            if report.segments[i].data_end < from {
                report.segments[i].data_end = from;
            }
            self.scan_records(b, path, &mut seg, state, report, i);
            if state.stopped {
                return Ok(Next::End);
            }
            if seg.short && seg.stop == Stop::Clean {
                seg.stop = Stop::Bad {
                    at: b.len() as u64,
                    reason: format!(
                        "segment file is {} bytes, its header says {}",
                        b.len(),
                        header.as_ref().map_or(0, |h| h.segment_size)
                    ),
                    checksum: None,
                };
            }
            if let Some(seal) = header.as_ref().ok().and_then(|h| h.seal) {
                if seg.valid_end < seal.end {
                    seg.below_seal = true;
                    if seg.stop == Stop::Clean {
                        seg.stop = Stop::Bad {
                            at: seg.valid_end,
                            reason: format!(
                                "records end at offset {} but the segment was sealed durable up to {}",
                                seg.valid_end, seal.end
                            ),
                            checksum: None,
                        };
                    }
                }
            }
            state.next = Some(seg.next);
        }
        let kept_prev = last_kept(report, i);
        let (at, reason, checksum, cut, search) = match seg.stop.clone() {
            Stop::Clean if !is_last => return Ok(Next::Segment),
            Stop::Clean => {
                let at = seg.valid_end;
                (at, format!("the records end at offset {at} (zeros follow)"), None, (i, at), (i, at))
            }
            Stop::Bad { at, reason, checksum } => {
                let cut = if start.is_none() {
                    match kept_prev {
                        Some(prev) => (prev, report.segments[prev].data_end),
                        None => (i, 0),
                    }
                } else {
                    (i, seg.valid_end)
                };
                let search = if start.is_none() { cut } else { (i, at) };
                (at, reason, checksum, cut, search)
            }
        };
        let min_lsn = state.next.unwrap_or(*name_lsn);
        let found = search_valid(files, b, i, search, min_lsn)?;
        if !seg.below_seal && found.is_none() {
            // A torn tail, or a clean end with nothing after it.
            let bytes = tail_bytes(files, b, i, cut)?;
            if bytes > 0 || seg.stop != Stop::Clean {
                report.damage.push(Damage {
                    segment: path.clone(),
                    offset: at,
                    reason,
                    kind: DamageKind::TornTail,
                    checksum,
                    bytes,
                    expected_lsn: min_lsn,
                    resumes_at: None,
                    cut_at: (files[cut.0].1.clone(), cut.1),
                });
            }
            return Ok(Next::End);
        }
        let mut reason = reason;
        if seg.below_seal {
            reason.push_str("; these bytes were sealed as durable");
        }
        match found {
            None => {
                let bytes = tail_bytes(files, b, i, cut)?;
                report.damage.push(Damage {
                    segment: path.clone(),
                    offset: at,
                    reason,
                    kind: DamageKind::Middle,
                    checksum,
                    bytes,
                    expected_lsn: min_lsn,
                    resumes_at: None,
                    cut_at: (files[cut.0].1.clone(), cut.1),
                });
                Ok(Next::End)
            }
            Some((t, r, lsn)) => {
                let bytes = span_bytes(files, b, i, cut, (t, r));
                report.damage.push(Damage {
                    segment: path.clone(),
                    offset: at,
                    reason,
                    kind: DamageKind::Middle,
                    checksum,
                    bytes,
                    expected_lsn: min_lsn,
                    resumes_at: Some(Resume { segment: files[t].1.clone(), offset: r, lsn }),
                    cut_at: (files[cut.0].1.clone(), cut.1),
                });
                state.next = Some(lsn);
                state.resume = Some((r, lsn));
                Ok(Next::Jump(t))
            }
        }
    }

    /// Walks the records from `seg.valid_end`, handing closed batches to
    /// the visitor (the same rules as the open's scan).
    fn scan_records(
        &mut self,
        b: &[u8],
        path: &Path,
        seg: &mut SegScan,
        state: &mut State,
        report: &mut LogScan,
        i: usize,
    ) {
        let size = seg.size;
        let mut off = seg.valid_end;
        let mut expected = seg.next;
        // Records of a batch whose closing record is not seen yet: (offset, header).
        let mut pending: Vec<(u64, record::RecordHeader)> = Vec::new();
        let stop = loop {
            let (h, end) = match record::verify_at(b, off, size, expected) {
                Ok(r) => r,
                Err(stop) => break stop,
            };
            expected = h.lsn.saturating_add(1);
            pending.push((off, h));
            off = end;
            if !h.more {
                let s = &mut report.segments[i];
                for (roff, rh) in pending.drain(..) {
                    let payload =
                        b.get((roff as usize + HEADER_LEN)..(roff + rh.total_len()) as usize).unwrap_or_default();
                    s.records += 1;
                    s.payload_bytes += u64::from(rh.len);
                    s.first_lsn.get_or_insert(rh.lsn);
                    s.last_lsn = Some(rh.lsn);
                    report.records += 1;
                    report.payload_bytes += u64::from(rh.len);
                    report.first_lsn.get_or_insert(rh.lsn);
                    report.last_lsn = Some(rh.lsn);
                    if !state.stopped {
                        if let Some(visit) = self.visit.as_mut() {
                            let r = ScannedRecord { lsn: rh.lsn, payload, segment: path, offset: roff };
                            if visit(&r).is_break() {
                                state.stopped = true;
                            }
                        }
                    }
                }
                s.data_end = end;
                seg.valid_end = end;
                seg.next = expected;
                if state.stopped {
                    return;
                }
            }
        };
        seg.stop = match (stop, pending.first()) {
            (Stop::Clean, Some((_, first))) => Stop::Bad {
                at: off,
                reason: format!(
                    "batch of {} records starting at LSN {} is not closed (torn)",
                    pending.len(),
                    first.lsn
                ),
                checksum: None,
            },
            (stop, _) => stop,
        };
    }
}

/// Whether the log in `dir` is open in some process (its `LOCK` file is
/// `flock`ed). Takes the lock for an instant if it is free and releases it
/// at once; creates nothing (no `LOCK` file: not locked).
///
/// # Errors
/// `Io` if the lock file exists but cannot be opened or probed.
pub fn is_locked(dir: &Path) -> Result<bool> {
    let path = dir.join(LOCK_FILE);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io("open lock file", &path, e)),
    };
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared) {
        Ok(()) => {
            // Closing the descriptor (drop) releases it; say so explicitly.
            let _ = rustix::fs::flock(&file, rustix::fs::FlockOperation::Unlock);
            Ok(false)
        }
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(true),
        Err(e) => Err(Error::io("probe lock file", &path, std::io::Error::from(e))),
    }
}

/// The held lock of a log directory, for tools that change the files of a
/// log (and of the data directory around it) without opening the log.
/// Released on drop.
pub struct DirGuard {
    _lock: crate::lock::DirLock,
}

impl std::fmt::Debug for DirGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DirGuard")
    }
}

/// Takes the lock of the log in `dir` (creating `LOCK`, as an open does)
/// so that no server opens it meanwhile.
///
/// # Errors
/// `Locked` if a process has the log open; `Io`.
pub fn lock_dir(dir: &Path) -> Result<DirGuard> {
    Ok(DirGuard { _lock: crate::lock::DirLock::acquire(&crate::fs::OsFileSystem, dir)? })
}

struct State {
    /// The LSN the log needs next (`None` before the first segment read).
    next: Option<Lsn>,
    /// Resume the next segment scanned at `(offset, lsn)`.
    resume: Option<(u64, Lsn)>,
    /// The visitor asked to stop.
    stopped: bool,
}

enum Next {
    Segment,
    Jump(usize),
    End,
}

#[derive(Debug, Default)]
struct SegScan {
    size: u64,
    short: bool,
    valid_end: u64,
    next: Lsn,
    stop: Stop,
    below_seal: bool,
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io("read segment", path, e))
}

/// A header must start where the log before it ends, or record a gap that
/// starts there.
fn continuity(h: &SegmentHeader, expected: Option<Lsn>) -> std::result::Result<(), String> {
    let Some(e) = expected else { return Ok(()) };
    let fits = match h.after_gap {
        Some(prev_last) => prev_last.checked_add(1) == Some(e),
        None => h.first_lsn == e,
    };
    if fits {
        return Ok(());
    }
    let recorded = match h.after_gap {
        Some(prev_last) => format!(" after a gap recorded from LSN {prev_last}"),
        None => String::new(),
    };
    Err(format!(
        "LSN gap: the log before this segment ends at LSN {}, the segment starts at {}{recorded}",
        e.saturating_sub(1),
        h.first_lsn
    ))
}

/// The last segment before `i` that is part of the log.
fn last_kept(report: &LogScan, i: usize) -> Option<usize> {
    (0..i).rev().find(|&j| report.segments[j].in_log)
}

/// The first valid record at or after `from` with an LSN ≥ `min_lsn`:
/// `(segment index, offset, lsn)`. `cur` holds the bytes of segment `i`.
fn search_valid(
    files: &[(Lsn, PathBuf, u64)],
    cur: &[u8],
    i: usize,
    from: (usize, u64),
    min_lsn: Lsn,
) -> Result<Option<(usize, u64, Lsn)>> {
    for (j, file) in files.iter().enumerate().skip(from.0) {
        let start = if j == from.0 { from.1 } else { 0 };
        let found =
            if j == i { find_valid(cur, start, min_lsn) } else { find_valid(&read_file(&file.1)?, start, min_lsn) };
        if let Some((off, lsn)) = found {
            return Ok(Some((j, off, lsn)));
        }
    }
    Ok(None)
}

/// As the open's search: a record header at `off` with a plausible LSN
/// whose checksum verifies.
fn find_valid(b: &[u8], from: u64, min_lsn: Lsn) -> Option<(u64, Lsn)> {
    let last = last_nonzero(b)? as u64;
    let mut off = from;
    while off <= last && off + HEADER_LEN as u64 <= b.len() as u64 {
        let lsn = record::u64_at(b, off as usize + 8);
        if lsn >= min_lsn && lsn - min_lsn < (1 << 40) {
            if let Some(at) = b.get(off as usize..) {
                if let HeaderParse::Header(h) = record::parse_header(at) {
                    let end = off + h.total_len();
                    if let Some(payload) = b.get(off as usize + HEADER_LEN..end as usize) {
                        if record::computed_crc(&h, payload) == h.crc {
                            return Some((off, h.lsn));
                        }
                    }
                }
            }
        }
        off += 1;
    }
    None
}

/// Non-zero bytes from `cut` to the end of the log (what an open zeroes or
/// removes).
fn tail_bytes(files: &[(Lsn, PathBuf, u64)], cur: &[u8], i: usize, cut: (usize, u64)) -> Result<u64> {
    let mut total = 0;
    for (j, file) in files.iter().enumerate().skip(cut.0) {
        let from = if j == cut.0 { cut.1 } else { 0 };
        let garbage = |b: &[u8]| match last_nonzero(b) {
            Some(last) if last as u64 >= from => last as u64 + 1 - from,
            _ => 0,
        };
        total += if j == i { garbage(cur) } else { garbage(&read_file(&file.1)?) };
    }
    Ok(total)
}

/// Bytes from `cut` to `to` across files (by file lengths).
fn span_bytes(files: &[(Lsn, PathBuf, u64)], cur: &[u8], i: usize, cut: (usize, u64), to: (usize, u64)) -> u64 {
    let mut total = 0;
    for (j, file) in files.iter().enumerate().skip(cut.0).take((to.0 + 1).saturating_sub(cut.0)) {
        let len = if j == i { cur.len() as u64 } else { file.2 };
        let from = if j == cut.0 { cut.1 } else { 0 };
        let end = if j == to.0 { to.1 } else { len };
        total += end.saturating_sub(from);
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Wal, WalOptions};

    fn tempdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fastcache-wal-inspect-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn write_log(dir: &Path, n: u64) -> Result<()> {
        let (wal, _) = Wal::open(dir, WalOptions { segment_size: 4096, ..WalOptions::default() })?;
        for i in 0..n {
            wal.append(format!("record-{i:04}-{}", "x".repeat(100)).as_bytes())?;
        }
        wal.close()
    }

    fn segments(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "wal"))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_clean_log_scans_clean_and_hands_out_every_record() -> Result<()> {
        let dir = tempdir("clean");
        write_log(&dir, 100)?;
        let mut seen = Vec::new();
        let scan = LogScanner::new(&dir)
            .on_record(|r| {
                seen.push((r.lsn, r.payload.to_vec()));
                ControlFlow::Continue(())
            })
            .run()?;
        assert!(scan.is_clean(), "{:?}", scan.damage);
        assert_eq!((scan.records, scan.first_lsn, scan.last_lsn), (100, Some(1), Some(100)));
        assert!(scan.segments.len() > 2);
        assert_eq!(seen.len(), 100);
        assert_eq!(seen[7].1, format!("record-0007-{}", "x".repeat(100)).into_bytes());
        assert!(!is_locked(&dir)?);
        let (wal, _) = Wal::open(&dir, WalOptions::default())?;
        assert!(is_locked(&dir)?);
        wal.close()?;
        std::fs::remove_dir_all(&dir).ok();
        Ok(())
    }

    #[test]
    fn damage_is_classified_like_an_open_and_nothing_changes() -> Result<()> {
        let dir = tempdir("damage");
        write_log(&dir, 100)?;
        let segs = segments(&dir);
        // A flipped bit in the first segment's third record: middle damage.
        let mut b = std::fs::read(&segs[0]).map_err(|e| Error::io("read", &segs[0], e))?;
        let off = 64 + 2 * (16 + 112) + 20;
        b[off] ^= 0x01;
        std::fs::write(&segs[0], &b).map_err(|e| Error::io("write", &segs[0], e))?;
        let before: Vec<Vec<u8>> = segments(&dir).iter().map(|p| std::fs::read(p).unwrap_or_default()).collect();
        let scan = LogScanner::new(&dir).run()?;
        assert_eq!(scan.damage.len(), 1, "{:?}", scan.damage);
        let d = &scan.damage[0];
        assert_eq!((d.kind, d.offset, d.segment.clone()), (DamageKind::Middle, 64 + 2 * 128, segs[0].clone()));
        assert_eq!(d.resumes_at.as_ref().map(|r| r.lsn), Some(4));
        assert_eq!(scan.records, 99, "the scan goes on after the damage");
        let after: Vec<Vec<u8>> = segments(&dir).iter().map(|p| std::fs::read(p).unwrap_or_default()).collect();
        assert_eq!(before, after, "a scan writes nothing");
        assert!(matches!(Wal::open(&dir, WalOptions::default()), Err(e) if e.is_corruption()));

        // A missing middle segment is a gap in the middle.
        let dir2 = tempdir("missing");
        write_log(&dir2, 100)?;
        let segs = segments(&dir2);
        std::fs::remove_file(&segs[1]).map_err(|e| Error::io("rm", &segs[1], e))?;
        let scan = LogScanner::new(&dir2).run()?;
        assert_eq!(scan.damage.len(), 1);
        assert_eq!((scan.damage[0].kind, scan.damage[0].offset), (DamageKind::Middle, 0));
        assert!(scan.damage[0].reason.contains("LSN gap"), "{}", scan.damage[0].reason);

        // A cut through sealed records is damage an open refuses.
        let dir3 = tempdir("torn");
        write_log(&dir3, 100)?;
        let segs = segments(&dir3);
        let last = segs.last().cloned().unwrap_or_default();
        let f = std::fs::OpenOptions::new().write(true).open(&last).map_err(|e| Error::io("open", &last, e))?;
        f.set_len(64 + 128 + 50).map_err(|e| Error::io("truncate", &last, e))?;
        drop(f);
        let scan = LogScanner::new(&dir3).run()?;
        assert_eq!(scan.damage.len(), 1, "{:?}", scan.damage);
        assert_eq!((scan.damage[0].kind, scan.damage[0].offset), (DamageKind::Middle, 64 + 128));
        assert!(matches!(Wal::open(&dir3, WalOptions::default()), Err(e) if e.is_corruption()));

        // An unsealed segment ending in half a record is a torn tail, which an open cuts.
        std::fs::remove_dir_all(&dir3).ok();
        write_log(&dir3, 100)?;
        let last = segments(&dir3).last().cloned().unwrap_or_default();
        let mut b = std::fs::read(&last).map_err(|e| Error::io("read", &last, e))?;
        b[40..56].fill(0);
        let end = 64 + 7 * 128;
        b.copy_within(64..104, end);
        b[end + 8..end + 16].copy_from_slice(&101u64.to_le_bytes());
        std::fs::write(&last, &b).map_err(|e| Error::io("write", &last, e))?;
        let scan = LogScanner::new(&dir3).run()?;
        assert_eq!(scan.damage.len(), 1, "{:?}", scan.damage);
        assert_eq!(
            (scan.damage[0].kind, scan.damage[0].offset, scan.damage[0].bytes),
            (DamageKind::TornTail, end as u64, 40)
        );
        let (wal, report) = Wal::open(&dir3, WalOptions::default())?;
        assert_eq!(Some(report.last_lsn), scan.last_lsn);
        wal.close()?;
        assert!(LogScanner::new(&dir3).run()?.is_clean());
        for d in [dir, dir2, dir3] {
            std::fs::remove_dir_all(&d).ok();
        }
        Ok(())
    }
}
