//! Segment files: a fixed-size header, then records back to back, then
//! zeros.
//!
//! ```text
//! offset size
//!  0      8   magic "FCWALSEG"
//!  8      4   format version u32 = 1
//! 12      4   flags u32 — bit 0 AFTER_GAP (0 in files written before gaps existed)
//! 16      8   first LSN u64
//! 24      8   segment size u64 (bytes, header included)
//! 32      4   crc32c of bytes 0..32
//! 36      4   AFTER_GAP: crc32c of bytes 56..64; else 0
//! 40      8   seal: end u64 — every record before this offset is durable
//! 48      4   seal: flags u32 — bit 0 COMPLETE: no record follows `end`
//! 52      4   seal: crc32c of bytes 40..52 (all three seal fields 0 = no seal)
//! 56      8   AFTER_GAP: previous last LSN u64; else 0
//! 64      …   records (`record.rs`), then zeros to the end of the file
//! ```
//! Bytes 0..40 and 56..64 are written once, when the segment becomes the
//! active one.
//!
//! **Gaps.** LSNs are contiguous except where the log was told to continue
//! after an LSN it does not hold (`WalOptions::min_next_lsn`,
//! `Wal::restart_after`): the segment created then has AFTER_GAP set and
//! records the last LSN the log held before it ("previous last LSN"); the
//! LSNs between the two belong to no record, ever. Recovery accepts such a
//! segment only right after a log that ends exactly at that LSN (or as the
//! first segment), so a lost segment before it is still reported. A build
//! that predates gaps ignores the flag and refuses the log as having an LSN
//! gap — it never misreads it.
//! The seal is written after the segment's records are durable: when the log
//! rotates away from it (COMPLETE) and on close. Recovery treats a record
//! that fails to verify *before* the seal's `end` as corruption even when
//! nothing valid follows it, because those bytes were known durable. A seal
//! whose checksum fails is ignored (it only ever strengthens checks).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::fs::{MappedRegion, WalFile};
use crate::lock::DirLock;
use crate::record::{u32_at, u64_at};
use crate::Lsn;

/// Bytes before the first record.
pub(crate) const SEGMENT_HEADER_LEN: u64 = 64;
const MAGIC: [u8; 8] = *b"FCWALSEG";
const VERSION: u32 = 1;
/// Where the seal starts, and its length.
pub(crate) const SEAL_OFFSET: u64 = 40;
const SEAL_LEN: usize = 16;
const SEAL_COMPLETE: u32 = 1;
/// Header flag: the segment starts after a gap in the LSNs.
const FLAG_AFTER_GAP: u32 = 1;
/// Where the gap's "previous last LSN" and its checksum live.
const GAP_LSN_OFFSET: usize = 56;
const GAP_CRC_OFFSET: usize = 36;
/// The smallest segment size accepted: a header and a few small records.
pub(crate) const MIN_SEGMENT_SIZE: u64 = 4096;

/// The immutable part of a segment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentHeader {
    pub first_lsn: Lsn,
    pub segment_size: u64,
    pub seal: Option<Seal>,
    /// AFTER_GAP: the last LSN of the log before this segment (the LSNs
    /// after it and before `first_lsn` belong to no record).
    pub after_gap: Option<Lsn>,
}

/// What the seal says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Seal {
    /// Every record before this offset was durable when the seal was written.
    pub end: u64,
    /// No record was (or will be) appended after `end`.
    pub complete: bool,
}

// Format: { magic [8] | version u32 | flags u32 | first_lsn u64 | size u64 | crc32c u32 | gap crc32c u32 | seal [16] | gap prev_last u64 }
pub(crate) fn encode_header(
    first_lsn: Lsn,
    segment_size: u64,
    after_gap: Option<Lsn>,
) -> [u8; SEGMENT_HEADER_LEN as usize] {
    let mut h = [0u8; SEGMENT_HEADER_LEN as usize];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    if let Some(prev_last) = after_gap {
        h[12..16].copy_from_slice(&FLAG_AFTER_GAP.to_le_bytes());
        h[GAP_LSN_OFFSET..GAP_LSN_OFFSET + 8].copy_from_slice(&prev_last.to_le_bytes());
        let crc = crc32c::crc32c(&h[GAP_LSN_OFFSET..GAP_LSN_OFFSET + 8]);
        h[GAP_CRC_OFFSET..GAP_CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
    }
    h[16..24].copy_from_slice(&first_lsn.to_le_bytes());
    h[24..32].copy_from_slice(&segment_size.to_le_bytes());
    let crc = crc32c::crc32c(&h[0..32]);
    h[32..36].copy_from_slice(&crc.to_le_bytes());
    h
}

// Format: { end u64 | flags u32 | crc32c u32 }
pub(crate) fn encode_seal(seal: Seal) -> [u8; SEAL_LEN] {
    let mut s = [0u8; SEAL_LEN];
    s[0..8].copy_from_slice(&seal.end.to_le_bytes());
    s[8..12].copy_from_slice(&(if seal.complete { SEAL_COMPLETE } else { 0 }).to_le_bytes());
    let crc = crc32c::crc32c(&s[0..12]);
    s[12..16].copy_from_slice(&crc.to_le_bytes());
    s
}

/// Decodes and verifies a header; `name_lsn` is the LSN in the file's name.
/// The error is the reason, for a `Corrupted` error. Never panics.
pub(crate) fn parse_header(bytes: &[u8], name_lsn: Lsn) -> Result<SegmentHeader, String> {
    let Some(h) = bytes.get(..SEGMENT_HEADER_LEN as usize) else {
        return Err(format!("segment file of {} bytes is shorter than its header", bytes.len()));
    };
    if h.iter().all(|&b| b == 0) {
        return Err("segment header is all zeros (never written)".into());
    }
    if h[0..8] != MAGIC {
        return Err("bad segment magic".into());
    }
    let stored = u32_at(h, 32);
    let computed = crc32c::crc32c(&h[0..32]);
    if stored != computed {
        return Err(format!("segment header checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"));
    }
    let version = u32_at(h, 8);
    if version != VERSION {
        return Err(format!("unsupported segment format version {version} (this build reads {VERSION})"));
    }
    let first_lsn = u64_at(h, 16);
    if first_lsn != name_lsn {
        return Err(format!("header says first LSN {first_lsn}, file name says {name_lsn}"));
    }
    let segment_size = u64_at(h, 24);
    if segment_size < MIN_SEGMENT_SIZE {
        return Err(format!("segment size {segment_size} in header is below the minimum {MIN_SEGMENT_SIZE}"));
    }
    let flags = u32_at(h, 12);
    if flags & !FLAG_AFTER_GAP != 0 {
        return Err(format!("unknown segment header flags {flags:#x} (written by a newer version?)"));
    }
    let after_gap = if flags & FLAG_AFTER_GAP != 0 {
        let prev_last = u64_at(h, GAP_LSN_OFFSET);
        let stored = u32_at(h, GAP_CRC_OFFSET);
        let computed = crc32c::crc32c(&h[GAP_LSN_OFFSET..GAP_LSN_OFFSET + 8]);
        if stored != computed {
            return Err(format!(
                "segment gap field checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ));
        }
        if prev_last >= first_lsn {
            return Err(format!("segment gap after LSN {prev_last} does not end before its first LSN {first_lsn}"));
        }
        Some(prev_last)
    } else {
        None
    };
    let seal = parse_seal(&h[SEAL_OFFSET as usize..SEAL_OFFSET as usize + SEAL_LEN], segment_size);
    Ok(SegmentHeader { first_lsn, segment_size, seal, after_gap })
}

fn parse_seal(s: &[u8], segment_size: u64) -> Option<Seal> {
    if s.iter().all(|&b| b == 0) || u32_at(s, 12) != crc32c::crc32c(&s[0..12]) {
        return None;
    }
    let end = u64_at(s, 0);
    let flags = u32_at(s, 8);
    if end < SEGMENT_HEADER_LEN || end > segment_size || flags & !SEAL_COMPLETE != 0 {
        return None;
    }
    Some(Seal { end, complete: flags & SEAL_COMPLETE != 0 })
}

/// A segment of an open log: its file, its mapping and what is known about
/// it. Shared by the writer, the syncer and readers.
pub(crate) struct Segment {
    pub path: PathBuf,
    /// The first LSN readable in this segment.
    pub first_lsn: Lsn,
    /// Offset of its first record (past the header; further after a lossy
    /// recovery skipped damage at its start).
    pub start: u64,
    /// The mapping. The frozen range (`published`) is exactly the records
    /// readers may see.
    pub region: Box<dyn MappedRegion>,
    /// The open file (the mapping does not need it; kept for diagnostics).
    pub _file: Box<dyn WalFile>,
    /// Set (after the last `publish`) when the log has moved on to the next
    /// segment; readers then continue there.
    pub complete: AtomicBool,
    /// Bytes `[0, flushed)` are durable.
    pub flushed: AtomicU64,
    /// Whether the seal on disk already covers everything (sealed complete).
    pub sealed: AtomicBool,
    /// Byte ranges a lossy recovery skipped; readers jump over them.
    pub skips: Vec<(u64, u64)>,
    /// The segment starts after a gap: the last LSN the log held before it
    /// (see the module docs). A reader that has read up to that LSN, or
    /// asks for one inside the gap, continues here.
    pub after_gap: Option<Lsn>,
    /// Keeps the directory locked for as long as this mapping exists (see
    /// `mmap.rs`). Declared last so the mapping is dropped first.
    pub _lock: Arc<DirLock>,
}

impl Segment {
    /// The end of the records readers may see.
    pub fn end(&self) -> u64 {
        self.region.published()
    }

    pub fn is_complete(&self) -> bool {
        self.complete.load(Ordering::Acquire)
    }

    /// Whether a reader that wants LSN `want` next continues in this
    /// segment: it starts there, or `want` lies in the gap before it.
    pub fn continues_at(&self, want: Lsn) -> bool {
        want == self.first_lsn || self.after_gap.is_some_and(|prev| prev < want && want <= self.first_lsn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_damage() {
        let mut h = encode_header(7, 1 << 20, None);
        assert_eq!(
            parse_header(&h, 7),
            Ok(SegmentHeader { first_lsn: 7, segment_size: 1 << 20, seal: None, after_gap: None })
        );
        assert!(parse_header(&h, 8).is_err(), "name and header disagree");
        assert!(parse_header(&h[..10], 7).is_err());
        let seal = Seal { end: 4000, complete: true };
        h[40..56].copy_from_slice(&encode_seal(seal));
        assert_eq!(parse_header(&h, 7).map(|h| h.seal), Ok(Some(seal)));
        let mut damaged_seal = h;
        damaged_seal[41] ^= 1;
        assert_eq!(parse_header(&damaged_seal, 7).map(|h| h.seal), Ok(None), "a bad seal is ignored");
        for byte in 0..32 {
            let mut damaged = h;
            damaged[byte] ^= 0x10;
            assert!(parse_header(&damaged, 7).is_err(), "byte {byte}");
        }
        assert!(parse_header(&[0u8; 64], 7).is_err());
    }

    #[test]
    fn gap_header_round_trips_and_rejects_damage() {
        let h = encode_header(100, 1 << 20, Some(10));
        assert_eq!(parse_header(&h, 100).map(|h| h.after_gap), Ok(Some(10)));
        assert_eq!(parse_header(&encode_header(100, 1 << 20, Some(0)), 100).map(|h| h.after_gap), Ok(Some(0)));
        // The gap field and its checksum, the flags (covered by the header checksum).
        for byte in (36..40).chain(56..64).chain(12..16) {
            let mut damaged = h;
            damaged[byte] ^= 0x04;
            assert!(parse_header(&damaged, 100).is_err(), "byte {byte}");
        }
        // A previous last LSN at or past the first LSN is no gap.
        assert!(parse_header(&encode_header(100, 1 << 20, Some(100)), 100).is_err());
        // A header from before gaps: reserved bytes 36..40 and 56..64 are not read.
        let mut old = encode_header(100, 1 << 20, None);
        old[56] = 0xff;
        old[36] = 0xff;
        assert_eq!(parse_header(&old, 100).map(|h| h.after_gap), Ok(None));
    }
}
