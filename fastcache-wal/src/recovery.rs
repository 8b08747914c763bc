//! Opening a log: verify every segment, find where the valid log ends and
//! decide whether what follows is a torn tail (cut it) or damage in the
//! middle (refuse, or skip it in a lossy mode).
//!
//! The scan walks the chain of records: each segment's header must verify
//! and start at the LSN after the previous segment's last record (or record
//! a gap in the LSNs that starts exactly there, `segment.rs`); each
//! record must have the next LSN, fit in the segment and match its
//! checksum; a batch must be closed. The first place where the chain breaks
//! is classified:
//!
//! - **torn tail** — no valid record (an LSN past the last good one whose
//!   checksum verifies) exists anywhere after the break, and the break is
//!   not below a seal: the tail is cut (zeroed; later segment files
//!   removed) and its size reported;
//! - **middle** — a valid record follows the break, or the break lies before
//!   a segment's seal (bytes known durable): `Error::Corrupted` /
//!   `Error::ChecksumMismatch` naming file and offset, unless the caller
//!   asked for `RecoveryMode::PointInTime` (cut there) or
//!   `RecoveryMode::SkipCorrupted` (jump to the next valid record).
//!
//! Everything here works on byte slices and never panics, whatever the
//! bytes.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::fs::{MappedRegion, WalFile};
use crate::record::{self, HeaderParse, Stop, HEADER_LEN};
use crate::segment::{self, SegmentHeader, SEGMENT_HEADER_LEN};
use crate::{Lsn, RecoveryMode};

/// Damage a lossy open skipped or cut off, as reported in `OpenReport`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corruption {
    /// The segment file where the damage starts.
    pub segment: PathBuf,
    /// Byte offset of the damage in that file.
    pub offset: u64,
    /// What did not verify.
    pub reason: String,
    /// Bytes of log passed over (up to the next valid record, or to the end
    /// of the data when the log was cut).
    pub bytes: u64,
    /// LSN of the first record read after the damage; `None` when the log
    /// was cut there (`RecoveryMode::PointInTime`).
    pub resumed_at: Option<Lsn>,
}

/// A segment file found in the directory, opened and mapped.
pub(crate) struct Candidate {
    pub path: PathBuf,
    pub name_lsn: Lsn,
    pub file: Box<dyn WalFile>,
    /// `None` for an empty file (nothing to map).
    pub region: Option<Box<dyn MappedRegion>>,
}

impl Candidate {
    fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> Result<R> {
        let Some(region) = &self.region else {
            return Ok(f(&[]));
        };
        let mut f = Some(f);
        let mut out = None;
        region
            .read_with(0, region.len(), &mut |b| {
                if let Some(f) = f.take() {
                    out = Some(f(b));
                }
            })
            .map_err(|e| Error::io("read segment", &self.path, e))?;
        out.ok_or_else(|| Error::io("read segment", &self.path, std::io::Error::other("mapping not readable")))
    }
}

/// A segment that stays in the log, with what the scan found in it.
#[derive(Debug, Clone)]
pub(crate) struct KeptSegment {
    /// Index into the candidates.
    pub idx: usize,
    /// First LSN readable in it (the header's first LSN for an empty one).
    pub first_lsn: Lsn,
    /// Offset of its first readable record.
    pub start: u64,
    /// End of its last valid record.
    pub end: u64,
    /// Byte ranges to jump over (lossy mode).
    pub skips: Vec<(u64, u64)>,
    /// New records may be appended after `end` (a clean, full-size segment
    /// that was not sealed complete).
    pub appendable: bool,
    /// Its seal already records it as complete.
    pub sealed_complete: bool,
    /// The file is shorter than its header says (`Some(header size)`); a
    /// torn tail's last segment is extended back to full size.
    pub short_of: Option<u64>,
    /// The header records a gap in the LSNs before the segment.
    pub after_gap: Option<Lsn>,
}

/// What `recover` decided; the caller carries it out.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub kept: Vec<KeptSegment>,
    /// Candidate indices whose files are removed (a torn tail).
    pub remove: Vec<usize>,
    /// `(candidate, from, to)`: byte ranges zeroed (a torn tail's garbage).
    pub zero: Vec<(usize, u64, u64)>,
    /// Candidates whose seal must be cleared: a lossy cut below the seal's
    /// durable end, which the seal would otherwise keep calling corruption
    /// at every later open.
    pub unseal: Vec<usize>,
    /// The LSN the next append gets.
    pub next_lsn: Lsn,
    pub records: u64,
    pub truncated_bytes: u64,
    pub skipped: Vec<Corruption>,
}

#[derive(Debug)]
struct SegScan {
    header: Option<SegmentHeader>,
    size: u64,
    first: Option<Lsn>,
    last: Option<Lsn>,
    records: u64,
    /// Start of the scan (header end, or a lossy resume point).
    start: u64,
    /// End of the last committed record (`start` if none; 0 if the header
    /// itself is bad).
    valid_end: u64,
    /// The LSN the next record must have.
    next: Lsn,
    stop: Stop,
    /// The break lies before the seal's durable end.
    below_seal: bool,
    short: bool,
}

enum Start {
    /// Verify the header; `expected` is the LSN the segment must start at.
    Header { expected: Option<Lsn> },
    /// Lossy resume: scan from `offset`, whose record has LSN `lsn`.
    Resume { offset: u64, lsn: Lsn },
}

fn scan_segment(b: &[u8], name_lsn: Lsn, start: Start) -> SegScan {
    let header = segment::parse_header(b, name_lsn);
    let file_len = b.len() as u64;
    let mut scan = SegScan {
        header: header.as_ref().ok().copied(),
        size: file_len,
        first: None,
        last: None,
        records: 0,
        start: 0,
        valid_end: 0,
        next: name_lsn,
        stop: Stop::Clean,
        below_seal: false,
        short: false,
    };
    if let Some(h) = &scan.header {
        scan.size = file_len.min(h.segment_size);
        scan.short = file_len < h.segment_size;
    }
    let (from, expected) = match start {
        Start::Header { expected } => {
            let h = match header {
                Ok(h) => h,
                Err(reason) => {
                    scan.stop = Stop::Bad { at: 0, reason, checksum: None };
                    return scan;
                }
            };
            if let Some(e) = expected {
                // A recorded gap must start exactly where the log before it
                // ends, so a segment lost before it is still noticed.
                let fits = match h.after_gap {
                    Some(prev_last) => prev_last.checked_add(1) == Some(e),
                    None => h.first_lsn == e,
                };
                if !fits {
                    let recorded = match h.after_gap {
                        Some(prev_last) => format!(" after a gap recorded from LSN {prev_last}"),
                        None => String::new(),
                    };
                    scan.stop = Stop::Bad {
                        at: 0,
                        reason: format!(
                            "LSN gap: the log before this segment ends at LSN {}, the segment starts at {}{recorded}",
                            e.saturating_sub(1),
                            h.first_lsn
                        ),
                        checksum: None,
                    };
                    return scan;
                }
            }
            (SEGMENT_HEADER_LEN, h.first_lsn)
        }
        Start::Resume { offset, lsn } => (offset, lsn),
    };
    scan.start = from;
    scan.valid_end = from;
    scan.next = expected;
    scan_records(b, &mut scan);
    if scan.short && scan.stop == Stop::Clean {
        scan.stop = Stop::Bad {
            at: file_len,
            reason: format!(
                "segment file is {file_len} bytes, its header says {}",
                scan.header.map_or(0, |h| h.segment_size)
            ),
            checksum: None,
        };
    }
    if let Some(seal) = scan.header.and_then(|h| h.seal) {
        if scan.valid_end < seal.end {
            scan.below_seal = true;
            if scan.stop == Stop::Clean {
                scan.stop = Stop::Bad {
                    at: scan.valid_end,
                    reason: format!(
                        "records end at offset {} but the segment was sealed durable up to {}",
                        scan.valid_end, seal.end
                    ),
                    checksum: None,
                };
            }
        }
    }
    scan
}

/// Walks the records from `scan.valid_end`, committing closed batches.
fn scan_records(b: &[u8], scan: &mut SegScan) {
    let size = scan.size;
    let mut off = scan.valid_end;
    let mut expected = scan.next;
    // (records, first LSN) of a batch whose closing record is not seen yet.
    let mut pending: Option<(u64, Lsn)> = None;
    let stop = loop {
        let (h, end) = match record::verify_at(b, off, size, expected) {
            Ok(r) => r,
            Err(stop) => break stop,
        };
        expected = h.lsn.saturating_add(1);
        off = end;
        let (n, first) = pending.take().unwrap_or((0, h.lsn));
        if h.more {
            pending = Some((n + 1, first));
        } else {
            scan.records += n + 1;
            scan.first.get_or_insert(first);
            scan.last = Some(h.lsn);
            scan.valid_end = end;
            scan.next = expected;
        }
    };
    scan.stop = match (stop, pending) {
        (Stop::Clean, Some((n, first))) => Stop::Bad {
            at: off,
            reason: format!("batch of {n} records starting at LSN {first} is not closed (torn)"),
            checksum: None,
        },
        (stop, _) => stop,
    };
}

/// The first offset `≥ from` holding a record with an LSN `≥ min_lsn` that
/// verifies. Used only after the chain broke.
fn find_valid(b: &[u8], from: u64, min_lsn: Lsn) -> Option<(u64, Lsn)> {
    // A record's header is not all zeros, so it starts at or before the last
    // non-zero byte: on a clean tail this search is a fast zero check.
    let last = last_nonzero(b)? as u64;
    let mut off = from;
    while off <= last && off + HEADER_LEN as u64 <= b.len() as u64 {
        let lsn = record::u64_at(b, off as usize + 8);
        // LSNs of later records lie in a narrow window after the last good
        // one; random bytes almost never do, which keeps this search linear.
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

/// Index of the last non-zero byte.
pub(crate) fn last_nonzero(b: &[u8]) -> Option<usize> {
    let mut end = b.len();
    while end > 0 {
        let start = end.saturating_sub(4096);
        let chunk = b.get(start..end).unwrap_or_default();
        // OR-folding vectorizes; the exact position is only needed once.
        if chunk.iter().fold(0u8, |acc, &x| acc | x) != 0 {
            return chunk.iter().rposition(|&x| x != 0).map(|p| start + p);
        }
        end = start;
    }
    None
}

/// Bytes in `[from, end of the last non-zero byte)`.
fn garbage_after(b: &[u8], from: u64) -> u64 {
    match last_nonzero(b) {
        Some(last) if last as u64 >= from => last as u64 + 1 - from,
        _ => 0,
    }
}

/// Where the chain broke, and where to cut or resume.
struct Break {
    /// Segment and offset reported in errors.
    seg: usize,
    at: u64,
    reason: String,
    checksum: Option<(u32, u32)>,
    below_seal: bool,
    /// The log is cut here if this is a tail: `(candidate, offset)`; offset 0
    /// removes the candidate itself.
    cut: (usize, u64),
    /// Where the search for later valid records starts.
    search: (usize, u64),
}

/// Scans the candidates (sorted by name LSN) and decides what to keep.
pub(crate) fn recover(cands: &[Candidate], mode: RecoveryMode) -> Result<Plan> {
    let mut plan = Plan { next_lsn: cands.first().map_or(1, |c| c.name_lsn.max(1)), ..Plan::default() };
    let mut i = 0;
    let mut resume: Option<(u64, Lsn)> = None;
    while i < cands.len() {
        let cand = &cands[i];
        let resumed = resume.take();
        let start = match resumed {
            Some((offset, lsn)) => Start::Resume { offset, lsn },
            None => Start::Header { expected: if plan.kept.is_empty() { None } else { Some(plan.next_lsn) } },
        };
        let scan = cand.with_bytes(|b| scan_segment(b, cand.name_lsn, start))?;
        plan.records += scan.records;
        if scan.valid_end > 0 {
            plan.next_lsn = scan.next;
            let sealed_complete = scan.header.and_then(|h| h.seal).is_some_and(|s| s.complete);
            let appendable = scan.header.is_some() && resumed.is_none() && !sealed_complete;
            match plan.kept.last_mut() {
                // A lossy resume inside the segment kept last: extend it.
                Some(k) if k.idx == i => {
                    k.end = scan.valid_end;
                    k.appendable = false;
                }
                _ => plan.kept.push(KeptSegment {
                    idx: i,
                    first_lsn: scan.first.unwrap_or(scan.next),
                    start: scan.start,
                    end: scan.valid_end,
                    skips: Vec::new(),
                    appendable,
                    sealed_complete,
                    short_of: scan.header.filter(|_| scan.short).map(|h| h.segment_size),
                    after_gap: scan.header.and_then(|h| h.after_gap),
                }),
            }
        }
        let is_last = i + 1 == cands.len();
        let brk = match scan.stop {
            Stop::Clean if !is_last => {
                i += 1;
                continue;
            }
            Stop::Clean => Break {
                seg: i,
                at: scan.valid_end,
                reason: format!("the records end at offset {} (zeros follow)", scan.valid_end),
                checksum: None,
                below_seal: false,
                cut: (i, scan.valid_end),
                search: (i, scan.valid_end),
            },
            Stop::Bad { at, reason, checksum } => {
                // A bad header or an LSN gap: cut at the end of the previous
                // segment's records, and look for valid ones from there.
                let cut = match (scan.valid_end, plan.kept.last()) {
                    (0, Some(prev)) => (prev.idx, prev.end),
                    (0, None) => (i, 0),
                    (end, _) => (i, end),
                };
                let search = if scan.valid_end == 0 { cut } else { (i, at) };
                Break { seg: i, at, reason, checksum, below_seal: scan.below_seal, cut, search }
            }
        };
        let found = search(cands, brk.search, plan.next_lsn)?;
        if !brk.below_seal && found.is_none() {
            // A torn tail (or a clean end with, at most, garbage after it).
            cut_tail(cands, &mut plan, brk.cut)?;
            break;
        }
        match (mode, found) {
            (RecoveryMode::TolerateTornTail, found) => return Err(corruption_error(cands, &brk, found)),
            (RecoveryMode::PointInTime, _) | (RecoveryMode::SkipCorrupted, None) => {
                let before = plan.truncated_bytes;
                cut_tail(cands, &mut plan, brk.cut)?;
                if brk.below_seal && brk.cut.1 > 0 {
                    plan.unseal.push(brk.cut.0);
                }
                plan.skipped.push(Corruption {
                    segment: cands[brk.seg].path.clone(),
                    offset: brk.at,
                    reason: brk.reason,
                    bytes: plan.truncated_bytes - before,
                    resumed_at: None,
                });
                break;
            }
            (RecoveryMode::SkipCorrupted, Some((t, r, lsn))) => {
                let bytes = cands.iter().enumerate().skip(brk.cut.0).take(t + 1 - brk.cut.0).try_fold(
                    0u64,
                    |acc, (j, c)| {
                        let from = if j == brk.cut.0 { brk.cut.1 } else { 0 };
                        let to = if j == t { r } else { c.with_bytes(|b| b.len() as u64)? };
                        Ok::<u64, Error>(acc + to.saturating_sub(from))
                    },
                )?;
                plan.skipped.push(Corruption {
                    segment: cands[brk.seg].path.clone(),
                    offset: brk.at,
                    reason: brk.reason,
                    bytes,
                    resumed_at: Some(lsn),
                });
                if let Some(k) = plan.kept.last_mut().filter(|k| k.idx == t) {
                    match k.skips.last_mut() {
                        // Damage right after a resume point: one longer skip.
                        Some(last) if last.1 == k.end => last.1 = r,
                        _ => k.skips.push((k.end, r)),
                    }
                    k.appendable = false;
                }
                // Segments wholly inside the damage stay on disk, out of the log.
                plan.next_lsn = lsn;
                resume = Some((r, lsn));
                i = t;
            }
        }
    }
    Ok(plan)
}

/// The first valid record at or after `from` with an LSN ≥ `min_lsn`:
/// `(candidate, offset, lsn)`.
fn search(cands: &[Candidate], from: (usize, u64), min_lsn: Lsn) -> Result<Option<(usize, u64, Lsn)>> {
    for (j, cand) in cands.iter().enumerate().skip(from.0) {
        let start = if j == from.0 { from.1 } else { 0 };
        if let Some((off, lsn)) = cand.with_bytes(|b| find_valid(b, start, min_lsn))? {
            return Ok(Some((j, off, lsn)));
        }
    }
    Ok(None)
}

/// Cuts the log at `cut`: zeros the rest of that segment's bytes and removes
/// every later candidate (and the segment itself for offset 0).
fn cut_tail(cands: &[Candidate], plan: &mut Plan, cut: (usize, u64)) -> Result<()> {
    let (seg, off) = cut;
    for (j, cand) in cands.iter().enumerate().skip(seg) {
        if j == seg && off > 0 {
            let garbage = cand.with_bytes(|b| garbage_after(b, off))?;
            if garbage > 0 {
                plan.zero.push((j, off, off + garbage));
                plan.truncated_bytes += garbage;
            }
            if let Some(k) = plan.kept.iter_mut().find(|k| k.idx == j) {
                k.end = off;
            }
        } else {
            plan.truncated_bytes += cand.with_bytes(|b| garbage_after(b, 0))?;
            plan.remove.push(j);
        }
    }
    plan.kept.retain(|k| !plan.remove.contains(&k.idx));
    Ok(())
}

fn corruption_error(cands: &[Candidate], brk: &Break, found: Option<(usize, u64, Lsn)>) -> Error {
    let segment = cands[brk.seg].path.clone();
    let mut reason = brk.reason.clone();
    if brk.below_seal {
        reason.push_str("; these bytes were sealed as durable");
    }
    if let Some((t, off, lsn)) = found {
        reason.push_str(&format!(
            "; a valid record (LSN {lsn}) follows in {} at offset {off}, so this is not a torn tail",
            cands[t].path.display()
        ));
    }
    match brk.checksum {
        Some((expected, got)) if !brk.below_seal => Error::ChecksumMismatch { segment, offset: brk.at, expected, got },
        _ => Error::Corrupted { segment, offset: brk.at, reason },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::encode_header;

    fn segment(first_lsn: Lsn, size: usize, records: &[(&[u8], bool)]) -> Vec<u8> {
        let mut b = vec![0u8; size];
        b[..64].copy_from_slice(&segment::encode_header(first_lsn, size as u64, None));
        let mut off = 64;
        for (i, (p, more)) in records.iter().enumerate() {
            let h = encode_header(p, *more, first_lsn + i as u64);
            b[off..off + 16].copy_from_slice(&h);
            b[off + 16..off + 16 + p.len()].copy_from_slice(p);
            off += 16 + p.len();
        }
        b
    }

    #[test]
    fn scan_stops_cleanly_and_counts_batches() {
        let b = segment(5, 4096, &[(b"a", false), (b"b", true), (b"c", false)]);
        let s = scan_segment(&b, 5, Start::Header { expected: None });
        assert_eq!(s.stop, Stop::Clean);
        assert_eq!((s.records, s.first, s.last, s.next), (3, Some(5), Some(7), 8));
        assert_eq!(s.valid_end, 64 + 17 * 3);
    }

    #[test]
    fn torn_batch_is_not_committed() {
        let b = segment(1, 4096, &[(b"a", false), (b"b", true), (b"c", true)]);
        let s = scan_segment(&b, 1, Start::Header { expected: None });
        assert_eq!((s.records, s.valid_end), (1, 64 + 17));
        assert!(matches!(s.stop, Stop::Bad { at, .. } if at == 64 + 17 * 3));
    }

    #[test]
    fn gap_and_bad_headers_are_breaks() {
        let b = segment(9, 4096, &[(b"a", false)]);
        let s = scan_segment(&b, 9, Start::Header { expected: Some(8) });
        assert!(matches!(s.stop, Stop::Bad { at: 0, .. }));
        let s = scan_segment(&b[..40], 9, Start::Header { expected: None });
        assert!(matches!(s.stop, Stop::Bad { at: 0, .. }));
        let s = scan_segment(&[], 9, Start::Header { expected: None });
        assert!(matches!(s.stop, Stop::Bad { at: 0, .. }));
    }

    #[test]
    fn a_recorded_gap_is_accepted_only_where_the_log_ends() {
        let mut b = segment(100, 4096, &[(b"a", false)]);
        b[..64].copy_from_slice(&segment::encode_header(100, 4096, Some(10)));
        let s = scan_segment(&b, 100, Start::Header { expected: Some(11) });
        assert_eq!((s.stop, s.records, s.next), (Stop::Clean, 1, 101));
        let s = scan_segment(&b, 100, Start::Header { expected: None });
        assert_eq!((s.stop, s.next), (Stop::Clean, 101), "as the first segment");
        for expected in [10, 12, 100] {
            let s = scan_segment(&b, 100, Start::Header { expected: Some(expected) });
            assert!(matches!(s.stop, Stop::Bad { at: 0, .. }), "log ending at {}", expected - 1);
        }
    }

    #[test]
    fn find_valid_skips_garbage_and_old_lsns() {
        let b = segment(1, 4096, &[(b"aaaa", false), (b"bbbb", false)]);
        assert_eq!(find_valid(&b, 0, 1), Some((64, 1)));
        assert_eq!(find_valid(&b, 65, 1), Some((84, 2)));
        assert_eq!(find_valid(&b, 0, 3), None);
        assert_eq!(find_valid(&[0u8; 100], 0, 1), None);
        assert_eq!(last_nonzero(&b), Some(84 + 20 - 1));
        assert_eq!(last_nonzero(&[0u8; 10_000]), None);
    }

    #[test]
    fn scanning_arbitrary_bytes_never_panics() {
        let mut x = 0x1234_5678_9abc_def0u64;
        for len in [0usize, 1, 15, 16, 63, 64, 65, 100, 4096] {
            for _ in 0..50 {
                let b: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
                let _ = scan_segment(&b, 1, Start::Header { expected: None });
                let _ = scan_segment(&b, 1, Start::Resume { offset: 3, lsn: 2 });
                let _ = find_valid(&b, 0, 1);
            }
        }
    }
}
