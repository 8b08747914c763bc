//! The bytes of a snapshot file, version 1 (`docs/formats.md`, "Snapshot
//! file"): a fixed header, chunk frames back to back, a footer indexing the
//! frames. Every byte of the file is covered by exactly one checksum.
//!
//! ```text
//! +-------------+---------+---------+-----+---------------------------+
//! | header (64) | chunk 0 | chunk 1 | ... | footer (44 + 32 × chunks) |
//! +-------------+---------+---------+-----+---------------------------+
//! ```
//!
//! This module only encodes and decodes; it does no I/O. Decoders take the
//! file's path and the region's offset so their errors can name both.

use std::path::Path;

use crate::error::{Region, Result, SnapshotError};
use crate::writer::SnapshotKind;

/// Magic at offset 0.
pub(crate) const MAGIC: [u8; 8] = *b"FCSNAPSH";
/// Magic at the start of the footer.
pub(crate) const FOOTER_MAGIC: [u8; 8] = *b"FCSNPIDX";
/// The format version this build writes and reads.
pub(crate) const VERSION: u32 = 1;
/// Header flag: the file is an incremental backup (its chunks hold change
/// entries, not full entries) and bytes 52..60 hold its from-LSN.
pub(crate) const FLAG_INCREMENTAL: u32 = 1;
/// Flags this build understands.
pub(crate) const KNOWN_FLAGS: u32 = FLAG_INCREMENTAL;

/// Header length; chunk 0 starts here.
pub(crate) const HEADER_LEN: usize = 64;
/// Header field offsets.
const H_VERSION: usize = 8;
const H_FLAGS: usize = 12;
const H_LSN: usize = 16;
const H_CREATED: usize = 24;
const H_KEYS: usize = 32;
const H_FOOTER_OFFSET: usize = 40;
const H_CHUNKS: usize = 48;
/// Reserved (zero) in a full snapshot; the from-LSN of an incremental one.
const H_RESERVED: usize = 52;
const H_FROM_LSN: usize = H_RESERVED;
const H_CRC: usize = 60;

/// Chunk frame header length; the stored bytes follow it.
pub(crate) const FRAME_HEADER_LEN: usize = 20;
const F_STORED: usize = 0;
const F_RAW: usize = 4;
const F_ENTRIES: usize = 8;
const F_CODEC: usize = 12;
const F_RESERVED: usize = 13;
const F_CRC: usize = 16;

/// Footer: fixed part, then one index entry per chunk, then its checksum.
pub(crate) const FOOTER_FIXED_LEN: usize = 40;
pub(crate) const INDEX_ENTRY_LEN: usize = 32;
pub(crate) const FOOTER_CRC_LEN: usize = 4;
const T_CHUNKS: usize = 8;
const T_RESERVED: usize = 12;
const T_LSN: usize = 16;
const T_KEYS: usize = 24;
const T_RAW_BYTES: usize = 32;

/// The largest chunk payload (raw, before compression).
pub(crate) const MAX_CHUNK_LEN: usize = u32::MAX as usize;

/// How a chunk's payload is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    /// As is: the writer stores a chunk uncompressed when lz4 would not
    /// make it smaller.
    Stored = 0,
    /// One `lz4_flex` block (no size prefix; the raw length is in the frame).
    Lz4 = 1,
}

impl Codec {
    fn from_u8(b: u8) -> Option<Codec> {
        match b {
            0 => Some(Codec::Stored),
            1 => Some(Codec::Lz4),
            _ => None,
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

fn magic_at(b: &[u8], at: usize) -> [u8; 8] {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    x
}

/// Length of the footer of a file with `chunks` chunks.
pub(crate) fn footer_len(chunks: u64) -> u64 {
    (FOOTER_FIXED_LEN + FOOTER_CRC_LEN) as u64 + chunks * INDEX_ENTRY_LEN as u64
}

/// The fixed header at offset 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub lsn: u64,
    pub created_unix_ms: u64,
    pub keys: u64,
    pub footer_offset: u64,
    pub chunks: u32,
    pub kind: SnapshotKind,
}

impl Header {
    // Format: { magic [8] | version u32 | flags u32 | lsn u64 | created_ms u64 | keys u64
    //           | footer_offset u64 | chunks u32 | from_lsn u64 (INCREMENTAL) or reserved [8]
    //           | crc32c u32 of bytes 0..60 }
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..8].copy_from_slice(&MAGIC);
        b[H_VERSION..H_VERSION + 4].copy_from_slice(&VERSION.to_le_bytes());
        let flags = match self.kind {
            SnapshotKind::Full => 0,
            SnapshotKind::Incremental { from_lsn } => {
                b[H_FROM_LSN..H_FROM_LSN + 8].copy_from_slice(&from_lsn.to_le_bytes());
                FLAG_INCREMENTAL
            }
        };
        b[H_FLAGS..H_FLAGS + 4].copy_from_slice(&flags.to_le_bytes());
        b[H_LSN..H_LSN + 8].copy_from_slice(&self.lsn.to_le_bytes());
        b[H_CREATED..H_CREATED + 8].copy_from_slice(&self.created_unix_ms.to_le_bytes());
        b[H_KEYS..H_KEYS + 8].copy_from_slice(&self.keys.to_le_bytes());
        b[H_FOOTER_OFFSET..H_FOOTER_OFFSET + 8].copy_from_slice(&self.footer_offset.to_le_bytes());
        b[H_CHUNKS..H_CHUNKS + 4].copy_from_slice(&self.chunks.to_le_bytes());
        let crc = crc32c::crc32c(&b[..H_CRC]);
        b[H_CRC..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Checks, in this order: magic, version (so that a file from a newer
    /// writer says so instead of failing its checksum), checksum, flags,
    /// reserved bytes (or, in an incremental file, that its from-LSN is not
    /// above its LSN), and that the footer offset is plausible.
    pub(crate) fn decode(file: &Path, b: &[u8; HEADER_LEN]) -> Result<Header> {
        let magic = magic_at(b, 0);
        if magic != MAGIC {
            return Err(SnapshotError::BadMagic { file: file.into(), offset: 0, found: magic });
        }
        let version = u32_at(b, H_VERSION);
        if version != VERSION {
            return Err(SnapshotError::UnsupportedVersion { file: file.into(), version });
        }
        let stored = u32_at(b, H_CRC);
        let computed = crc32c::crc32c(&b[..H_CRC]);
        if stored != computed {
            return Err(SnapshotError::ChecksumMismatch {
                file: file.into(),
                region: Region::Header,
                offset: 0,
                stored,
                computed,
            });
        }
        let flags = u32_at(b, H_FLAGS);
        if flags & !KNOWN_FLAGS != 0 {
            return Err(SnapshotError::UnsupportedFlags { file: file.into(), flags });
        }
        let lsn = u64_at(b, H_LSN);
        let kind = if flags & FLAG_INCREMENTAL != 0 {
            let from_lsn = u64_at(b, H_FROM_LSN);
            if from_lsn > lsn {
                return Err(SnapshotError::corrupted(
                    file,
                    H_FROM_LSN as u64,
                    format!("incremental file's from-LSN {from_lsn} is above its LSN {lsn}"),
                ));
            }
            SnapshotKind::Incremental { from_lsn }
        } else {
            if b[H_RESERVED..H_CRC].iter().any(|&x| x != 0) {
                return Err(SnapshotError::corrupted(file, H_RESERVED as u64, "reserved header bytes are not zero"));
            }
            SnapshotKind::Full
        };
        let header = Header {
            lsn,
            created_unix_ms: u64_at(b, H_CREATED),
            keys: u64_at(b, H_KEYS),
            footer_offset: u64_at(b, H_FOOTER_OFFSET),
            chunks: u32_at(b, H_CHUNKS),
            kind,
        };
        if header.footer_offset < HEADER_LEN as u64 {
            return Err(SnapshotError::corrupted(
                file,
                H_FOOTER_OFFSET as u64,
                format!("footer offset {} lies inside the header", header.footer_offset),
            ));
        }
        Ok(header)
    }

    /// The file length this header implies.
    pub(crate) fn file_len(&self) -> Option<u64> {
        self.footer_offset.checked_add(footer_len(u64::from(self.chunks)))
    }
}

/// One chunk as the footer indexes it (and its frame header repeats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkEntry {
    /// Offset of the frame (its header) in the file.
    pub offset: u64,
    /// Bytes stored after the frame header.
    pub stored_len: u32,
    /// Payload length after decompression.
    pub raw_len: u32,
    /// Entries the payload holds (the caller's count).
    pub entries: u32,
    pub codec: Codec,
    /// crc32c of the frame header's first 16 bytes ‖ the stored bytes.
    pub crc: u32,
}

impl ChunkEntry {
    /// Frame header plus stored bytes.
    pub(crate) fn frame_len(&self) -> u64 {
        FRAME_HEADER_LEN as u64 + u64::from(self.stored_len)
    }

    /// Writes the frame header into `frame[..FRAME_HEADER_LEN]` and fills
    /// in the checksum (over those header bytes and `frame[FRAME_HEADER_LEN..]`).
    // Format: { stored_len u32 | raw_len u32 | entries u32 | codec u8 | reserved [3]
    //           | crc32c u32 of bytes 0..16 ‖ stored bytes } stored bytes
    pub(crate) fn seal_frame(stored_len: u32, raw_len: u32, entries: u32, codec: Codec, frame: &mut [u8]) -> u32 {
        frame[F_STORED..F_STORED + 4].copy_from_slice(&stored_len.to_le_bytes());
        frame[F_RAW..F_RAW + 4].copy_from_slice(&raw_len.to_le_bytes());
        frame[F_ENTRIES..F_ENTRIES + 4].copy_from_slice(&entries.to_le_bytes());
        frame[F_CODEC] = codec as u8;
        frame[F_RESERVED..F_CRC].fill(0);
        let crc = crc32c::crc32c_append(crc32c::crc32c(&frame[..F_CRC]), &frame[FRAME_HEADER_LEN..]);
        frame[F_CRC..FRAME_HEADER_LEN].copy_from_slice(&crc.to_le_bytes());
        crc
    }

    /// Verifies a frame read from `self.offset` (`frame.len() ==
    /// self.frame_len()`) against its checksum and against this index
    /// entry, and returns the stored bytes.
    pub(crate) fn check_frame<'a>(&self, file: &Path, index: u32, frame: &'a [u8]) -> Result<&'a [u8]> {
        if frame.len() as u64 != self.frame_len() {
            return Err(SnapshotError::corrupted(file, self.offset, "chunk frame read with the wrong length"));
        }
        let (head, stored) = frame.split_at(FRAME_HEADER_LEN);
        let stored_crc = u32_at(head, F_CRC);
        let computed = crc32c::crc32c_append(crc32c::crc32c(&head[..F_CRC]), stored);
        if stored_crc != computed {
            return Err(SnapshotError::ChecksumMismatch {
                file: file.into(),
                region: Region::Chunk(index),
                offset: self.offset,
                stored: stored_crc,
                computed,
            });
        }
        let same = u32_at(head, F_STORED) == self.stored_len
            && u32_at(head, F_RAW) == self.raw_len
            && u32_at(head, F_ENTRIES) == self.entries
            && head[F_CODEC] == self.codec as u8
            && head[F_RESERVED..F_CRC].iter().all(|&x| x == 0)
            && stored_crc == self.crc;
        if !same {
            return Err(SnapshotError::corrupted(
                file,
                self.offset,
                format!("chunk {index}: frame header disagrees with the footer's index"),
            ));
        }
        Ok(stored)
    }

    // Format: { offset u64 | stored_len u32 | raw_len u32 | entries u32 | codec u8 | reserved [3]
    //           | crc32c u32 (the frame's) | reserved [4] }
    fn encode(&self, b: &mut [u8]) {
        b[0..8].copy_from_slice(&self.offset.to_le_bytes());
        b[8..12].copy_from_slice(&self.stored_len.to_le_bytes());
        b[12..16].copy_from_slice(&self.raw_len.to_le_bytes());
        b[16..20].copy_from_slice(&self.entries.to_le_bytes());
        b[20] = self.codec as u8;
        b[21..24].fill(0);
        b[24..28].copy_from_slice(&self.crc.to_le_bytes());
        b[28..32].fill(0);
    }

    fn decode(file: &Path, at: u64, b: &[u8]) -> Result<ChunkEntry> {
        let codec = Codec::from_u8(b[20])
            .ok_or_else(|| SnapshotError::corrupted(file, at + 20, format!("unknown chunk codec {}", b[20])))?;
        if b[21..24].iter().chain(&b[28..32]).any(|&x| x != 0) {
            return Err(SnapshotError::corrupted(file, at, "reserved index bytes are not zero"));
        }
        Ok(ChunkEntry {
            offset: u64_at(b, 0),
            stored_len: u32_at(b, 8),
            raw_len: u32_at(b, 12),
            entries: u32_at(b, 16),
            codec,
            crc: u32_at(b, 24),
        })
    }
}

/// Encodes the footer for `index`.
// Format: { magic "FCSNPIDX" | chunks u32 | reserved [4] | lsn u64 | keys u64 | raw_bytes u64
//           | index entry [32] × chunks | crc32c u32 of everything before it in the footer }
pub(crate) fn encode_footer(lsn: u64, keys: u64, raw_bytes: u64, index: &[ChunkEntry]) -> Vec<u8> {
    let chunks = u32::try_from(index.len()).unwrap_or(u32::MAX);
    let mut b = vec![0u8; FOOTER_FIXED_LEN + index.len() * INDEX_ENTRY_LEN + FOOTER_CRC_LEN];
    b[..8].copy_from_slice(&FOOTER_MAGIC);
    b[T_CHUNKS..T_CHUNKS + 4].copy_from_slice(&chunks.to_le_bytes());
    b[T_LSN..T_LSN + 8].copy_from_slice(&lsn.to_le_bytes());
    b[T_KEYS..T_KEYS + 8].copy_from_slice(&keys.to_le_bytes());
    b[T_RAW_BYTES..T_RAW_BYTES + 8].copy_from_slice(&raw_bytes.to_le_bytes());
    let body_end = b.len() - FOOTER_CRC_LEN;
    for (entry, slot) in index.iter().zip(b[FOOTER_FIXED_LEN..body_end].chunks_exact_mut(INDEX_ENTRY_LEN)) {
        entry.encode(slot);
    }
    let crc = crc32c::crc32c(&b[..body_end]);
    b[body_end..].copy_from_slice(&crc.to_le_bytes());
    b
}

/// What the footer holds beyond the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Footer {
    pub raw_bytes: u64,
    pub index: Vec<ChunkEntry>,
}

/// Decodes and checks the footer `b` (exactly `footer_len(header.chunks)`
/// bytes read at `header.footer_offset`) against the header: magic,
/// checksum, the repeated fields, that the frames tile the bytes between
/// the header and the footer with no gap or overlap, and that the entry
/// counts and raw lengths add up.
pub(crate) fn decode_footer(file: &Path, header: &Header, b: &[u8]) -> Result<Footer> {
    let at = header.footer_offset;
    if b.len() as u64 != footer_len(u64::from(header.chunks)) {
        return Err(SnapshotError::corrupted(file, at, "footer read with the wrong length"));
    }
    let magic = magic_at(b, 0);
    if magic != FOOTER_MAGIC {
        return Err(SnapshotError::BadMagic { file: file.into(), offset: at, found: magic });
    }
    let body_end = b.len() - FOOTER_CRC_LEN;
    let stored = u32_at(b, body_end);
    let computed = crc32c::crc32c(&b[..body_end]);
    if stored != computed {
        return Err(SnapshotError::ChecksumMismatch {
            file: file.into(),
            region: Region::Footer,
            offset: at,
            stored,
            computed,
        });
    }
    if b[T_RESERVED..T_LSN].iter().any(|&x| x != 0) {
        return Err(SnapshotError::corrupted(file, at + T_RESERVED as u64, "reserved footer bytes are not zero"));
    }
    let disagree = |field: &str, offset: usize, footer: u64, header: u64| {
        SnapshotError::corrupted(
            file,
            at + offset as u64,
            format!("footer says {field} {footer}, the header says {header}"),
        )
    };
    let chunks = u32_at(b, T_CHUNKS);
    if chunks != header.chunks {
        return Err(disagree("chunk count", T_CHUNKS, chunks.into(), header.chunks.into()));
    }
    let lsn = u64_at(b, T_LSN);
    if lsn != header.lsn {
        return Err(disagree("LSN", T_LSN, lsn, header.lsn));
    }
    let keys = u64_at(b, T_KEYS);
    if keys != header.keys {
        return Err(disagree("key count", T_KEYS, keys, header.keys));
    }
    let raw_bytes = u64_at(b, T_RAW_BYTES);

    let mut index = Vec::with_capacity(header.chunks as usize);
    let mut next = HEADER_LEN as u64;
    let (mut sum_entries, mut sum_raw) = (0u64, 0u64);
    for (i, slot) in b[FOOTER_FIXED_LEN..body_end].chunks_exact(INDEX_ENTRY_LEN).enumerate() {
        let slot_at = at + (FOOTER_FIXED_LEN + i * INDEX_ENTRY_LEN) as u64;
        let entry = ChunkEntry::decode(file, slot_at, slot)?;
        if entry.offset != next {
            return Err(SnapshotError::corrupted(
                file,
                slot_at,
                format!("chunk {i} is indexed at offset {}, the previous one ends at {next}", entry.offset),
            ));
        }
        let plausible = match entry.codec {
            Codec::Stored => entry.raw_len == entry.stored_len,
            // NOTE: an lz4 block expands at most ~255× (a match length
            // grows by 255 per byte); the bound keeps a damaged-but-
            // checksummed index from asking for absurd allocations.
            Codec::Lz4 => u64::from(entry.raw_len) <= u64::from(entry.stored_len) * 256 + 4096,
        };
        if !plausible {
            return Err(SnapshotError::corrupted(
                file,
                slot_at,
                format!("chunk {i}: raw length {} impossible for {} stored bytes", entry.raw_len, entry.stored_len),
            ));
        }
        next = next.saturating_add(entry.frame_len());
        sum_entries = sum_entries.saturating_add(u64::from(entry.entries));
        sum_raw = sum_raw.saturating_add(u64::from(entry.raw_len));
        index.push(entry);
    }
    if next != header.footer_offset {
        return Err(SnapshotError::corrupted(
            file,
            at,
            format!("chunks end at offset {next}, the footer starts at {}", header.footer_offset),
        ));
    }
    if sum_entries != header.keys {
        return Err(disagree("key count (sum of chunk entries)", T_KEYS, sum_entries, header.keys));
    }
    if sum_raw != raw_bytes {
        return Err(disagree("raw byte count (sum of chunks)", T_RAW_BYTES, sum_raw, raw_bytes));
    }
    Ok(Footer { raw_bytes, index })
}

/// Suffix of snapshot files.
pub(crate) const SNAPSHOT_SUFFIX: &str = ".fcs";

/// `snapshot-{lsn:020}-{created_ms}.fcs`: twenty digits so that name
/// order is LSN order; the creation time keeps two snapshots taken at the
/// same LSN apart.
pub(crate) fn snapshot_file_name(lsn: u64, created_unix_ms: u64) -> String {
    format!("snapshot-{lsn:020}-{created_unix_ms}{SNAPSHOT_SUFFIX}")
}

/// The (LSN, creation time) a snapshot file name claims, or `None` if the
/// name is not exactly one [`snapshot_file_name`] produces.
pub(crate) fn parse_snapshot_file_name(name: &str) -> Option<(u64, u64)> {
    let rest = name.strip_prefix("snapshot-")?.strip_suffix(SNAPSHOT_SUFFIX)?;
    let (lsn, created) = rest.split_once('-')?;
    if lsn.len() != 20 || !lsn.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if created.is_empty() || !created.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (lsn, created) = (lsn.parse().ok()?, created.parse().ok()?);
    // Canonical form only (no leading zeros in the time), so that one
    // snapshot has one name.
    (snapshot_file_name(lsn, created) == name).then_some((lsn, created))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> &'static Path {
        Path::new("t.fcs")
    }

    #[test]
    fn header_round_trips() -> Result<()> {
        let h = Header {
            lsn: 7,
            created_unix_ms: 1_700_000_000_000,
            keys: 3,
            footer_offset: 100,
            chunks: 2,
            kind: SnapshotKind::Full,
        };
        assert_eq!(Header::decode(p(), &h.encode())?, h);
        let inc = Header { kind: SnapshotKind::Incremental { from_lsn: 5 }, ..h };
        let b = inc.encode();
        assert_eq!(u32_at(&b, H_FLAGS), FLAG_INCREMENTAL);
        assert_eq!(u64_at(&b, H_FROM_LSN), 5);
        assert_eq!(Header::decode(p(), &b)?, inc);
        // An empty range (no write between two backups) is a valid file.
        let empty = Header { kind: SnapshotKind::Incremental { from_lsn: 7 }, ..h };
        assert_eq!(Header::decode(p(), &empty.encode())?, empty);
        Ok(())
    }

    #[test]
    fn header_checks_magic_then_version_then_checksum() {
        let h = Header { lsn: 1, created_unix_ms: 2, keys: 0, footer_offset: 64, chunks: 0, kind: SnapshotKind::Full }
            .encode();
        let mut b = h;
        b[0] ^= 1;
        assert!(matches!(Header::decode(p(), &b), Err(SnapshotError::BadMagic { offset: 0, .. })));
        let mut b = h;
        b[H_VERSION] = 2;
        assert!(matches!(Header::decode(p(), &b), Err(SnapshotError::UnsupportedVersion { version: 2, .. })));
        let mut b = h;
        b[H_LSN] ^= 1;
        assert!(matches!(Header::decode(p(), &b), Err(SnapshotError::ChecksumMismatch { region: Region::Header, .. })));
    }

    #[test]
    fn unknown_flags_and_reserved_bytes_are_refused_even_with_a_valid_checksum() {
        let h = Header { lsn: 1, created_unix_ms: 2, keys: 0, footer_offset: 64, chunks: 0, kind: SnapshotKind::Full }
            .encode();
        let reseal = |mut b: [u8; HEADER_LEN]| {
            let crc = crc32c::crc32c(&b[..H_CRC]);
            b[H_CRC..].copy_from_slice(&crc.to_le_bytes());
            b
        };
        let mut b = h;
        b[H_FLAGS] = 2;
        assert!(matches!(Header::decode(p(), &reseal(b)), Err(SnapshotError::UnsupportedFlags { flags: 2, .. })));
        let mut b = h;
        b[H_RESERVED + 3] = 1;
        assert!(matches!(Header::decode(p(), &reseal(b)), Err(SnapshotError::Corrupted { .. })));
        // An incremental file whose range ends before it starts.
        let mut b = h;
        b[H_FLAGS] = 1;
        b[H_FROM_LSN] = 2;
        assert!(matches!(Header::decode(p(), &reseal(b)), Err(SnapshotError::Corrupted { offset: 52, .. })));
    }

    #[test]
    fn footer_round_trips_and_checks_tiling() -> Result<()> {
        let mut frame = vec![0u8; FRAME_HEADER_LEN + 3];
        frame[FRAME_HEADER_LEN..].copy_from_slice(b"abc");
        let crc = ChunkEntry::seal_frame(3, 3, 1, Codec::Stored, &mut frame);
        let e0 = ChunkEntry { offset: 64, stored_len: 3, raw_len: 3, entries: 1, codec: Codec::Stored, crc };
        let e1 = ChunkEntry { offset: 64 + 23, ..e0 };
        let header =
            Header { lsn: 9, created_unix_ms: 1, keys: 2, footer_offset: 64 + 46, chunks: 2, kind: SnapshotKind::Full };
        let b = encode_footer(9, 2, 6, &[e0, e1]);
        assert_eq!(b.len() as u64, footer_len(2));
        let footer = decode_footer(p(), &header, &b)?;
        assert_eq!(footer, Footer { raw_bytes: 6, index: vec![e0, e1] });
        assert_eq!(e0.check_frame(p(), 0, &frame)?, b"abc");

        // A gap between chunks is refused even though the footer verifies.
        let gap = encode_footer(9, 2, 6, &[e0, ChunkEntry { offset: 64 + 24, ..e0 }]);
        assert!(matches!(decode_footer(p(), &header, &gap), Err(SnapshotError::Corrupted { .. })));
        // So is a key count that does not add up.
        let wrong_keys = encode_footer(9, 2, 6, &[e0, ChunkEntry { entries: 2, ..e1 }]);
        assert!(matches!(decode_footer(p(), &header, &wrong_keys), Err(SnapshotError::Corrupted { .. })));
        Ok(())
    }

    #[test]
    fn names_round_trip_and_sort_by_lsn() {
        let a = snapshot_file_name(5, 1_700_000_000_123);
        assert_eq!(a, "snapshot-00000000000000000005-1700000000123.fcs");
        assert_eq!(parse_snapshot_file_name(&a), Some((5, 1_700_000_000_123)));
        assert_eq!(parse_snapshot_file_name(&snapshot_file_name(u64::MAX, u64::MAX)), Some((u64::MAX, u64::MAX)));
        assert!(snapshot_file_name(9, 0) < snapshot_file_name(10, 0));
        for bad in [
            "snapshot-5-1.fcs",
            "snapshot-00000000000000000005-01.fcs",
            "snapshot-00000000000000000005-.fcs",
            "snapshot-00000000000000000005-1.fcs.tmp",
            "snapshot-0000000000000000000x-1.fcs",
            "MANIFEST",
        ] {
            assert_eq!(parse_snapshot_file_name(bad), None, "{bad}");
        }
    }
}
