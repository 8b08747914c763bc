//! The record format: one opaque payload with its LSN and checksum.
//!
//! ```text
//! // Format: { len u32 | crc32c u32 | lsn u64 | payload }
//! len   bits 0..=29  payload length in bytes (at most 2^30 - 1)
//!       bit  30      reserved, always 0
//!       bit  31      MORE: another record of the same batch follows
//! crc   crc32c over len (4 bytes LE) ‖ lsn (8 bytes LE) ‖ payload
//! lsn   the record's log sequence number, ≥ 1
//! ```
//! A batch is a run of records whose last one has `MORE` clear; recovery
//! discards a run that is not closed, so a batch is all or nothing. A
//! 16-byte header of zeros is "no record here": the end of the log (a real
//! record has `lsn ≥ 1`, so its header is never all zeros).

use crate::Lsn;

/// Bytes of a record header.
pub(crate) const HEADER_LEN: usize = 16;
/// Set on every record of a batch but the last.
const MORE: u32 = 1 << 31;
/// Must be zero; a set bit means the header is not one we wrote.
const RESERVED: u32 = 1 << 30;
/// The largest payload the length field can express.
pub(crate) const MAX_PAYLOAD: u32 = RESERVED - 1;

/// A decoded record header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    /// Payload length in bytes.
    pub len: u32,
    /// Another record of the same batch follows.
    pub more: bool,
    /// The stored checksum.
    pub crc: u32,
    /// The record's LSN.
    pub lsn: Lsn,
}

impl RecordHeader {
    /// Bytes the whole record occupies.
    pub fn total_len(&self) -> u64 {
        HEADER_LEN as u64 + u64::from(self.len)
    }
}

/// What 16 bytes at a record position are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HeaderParse {
    /// All zeros: no record was written here.
    Zero,
    /// Bytes that cannot be a header we wrote.
    Invalid(&'static str),
    /// A plausible header; the payload's checksum is still to be verified.
    Header(RecordHeader),
}

/// The checksum of a record.
// NOTE: hashing the payload is cheap next to everything else an append
// does (crc32c runs at tens of GB/s in hardware); combining a payload
// checksum computed outside the lock with `crc32c_combine` was tried and
// cost microseconds per record.
fn record_crc(len_field: u32, lsn: Lsn, payload: &[u8]) -> u32 {
    let mut head = [0u8; 12];
    head[..4].copy_from_slice(&len_field.to_le_bytes());
    head[4..].copy_from_slice(&lsn.to_le_bytes());
    crc32c::crc32c_append(crc32c::crc32c(&head), payload)
}

/// Encodes the header of a record holding `payload` (at most
/// `MAX_PAYLOAD` bytes, which the writer checks first).
// Format: { len u32 | crc32c u32 | lsn u64 | payload }
pub(crate) fn encode_header(payload: &[u8], more: bool, lsn: Lsn) -> [u8; HEADER_LEN] {
    debug_assert!(payload.len() <= MAX_PAYLOAD as usize);
    let len_field = (payload.len() as u32 & MAX_PAYLOAD) | if more { MORE } else { 0 };
    let crc = record_crc(len_field, lsn, payload);
    let mut out = [0u8; HEADER_LEN];
    out[0..4].copy_from_slice(&len_field.to_le_bytes());
    out[4..8].copy_from_slice(&crc.to_le_bytes());
    out[8..16].copy_from_slice(&lsn.to_le_bytes());
    out
}

/// Decodes the header at the start of `bytes` (which may be shorter than a
/// header: then it is `Invalid`). Never panics.
pub(crate) fn parse_header(bytes: &[u8]) -> HeaderParse {
    let Some(h) = bytes.get(..HEADER_LEN) else {
        return HeaderParse::Invalid("record header cut short");
    };
    if h.iter().all(|&b| b == 0) {
        return HeaderParse::Zero;
    }
    let len_field = u32_at(h, 0);
    let crc = u32_at(h, 4);
    let lsn = u64_at(h, 8);
    if len_field & RESERVED != 0 {
        return HeaderParse::Invalid("reserved bit set in record length");
    }
    if lsn == 0 {
        return HeaderParse::Invalid("record with LSN 0");
    }
    HeaderParse::Header(RecordHeader { len: len_field & MAX_PAYLOAD, more: len_field & MORE != 0, crc, lsn })
}

/// The checksum the bytes of `header` and `payload` actually have.
pub(crate) fn computed_crc(header: &RecordHeader, payload: &[u8]) -> u32 {
    let len_field = header.len | if header.more { MORE } else { 0 };
    record_crc(len_field, header.lsn, payload)
}

/// Reads a little-endian `u32` at `at`; callers pass slices known to be long
/// enough (a shorter one reads as zero rather than panicking).
pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4).and_then(|s| s.try_into().ok()).map_or(0, u32::from_le_bytes)
}

/// Reads a little-endian `u64` at `at` (zero if out of range).
pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    b.get(at..at + 8).and_then(|s| s.try_into().ok()).map_or(0, u64::from_le_bytes)
}

/// Why a walk over a segment's records stopped (recovery and the read-only
/// scanner walk the same way).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) enum Stop {
    /// The records end cleanly (zeros, or no room for another header).
    #[default]
    Clean,
    /// The record (or header) at `at` does not verify.
    Bad { at: u64, reason: String, checksum: Option<(u32, u32)> },
}

/// Reads and verifies the record at `off` of a segment's first `size` bytes
/// `b`: a valid header, the LSN `expected`, inside the segment, checksum.
/// Returns its header and where it ends, or why the walk stops there.
pub(crate) fn verify_at(b: &[u8], off: u64, size: u64, expected: Lsn) -> Result<(RecordHeader, u64), Stop> {
    if off + HEADER_LEN as u64 > size {
        return Err(Stop::Clean);
    }
    let Some(at) = b.get(off as usize..size as usize) else { return Err(Stop::Clean) };
    let h = match parse_header(at) {
        HeaderParse::Zero => return Err(Stop::Clean),
        HeaderParse::Invalid(reason) => return Err(Stop::Bad { at: off, reason: reason.into(), checksum: None }),
        HeaderParse::Header(h) => h,
    };
    if h.lsn != expected {
        return Err(Stop::Bad {
            at: off,
            reason: format!("record has LSN {} where {expected} was expected", h.lsn),
            checksum: None,
        });
    }
    let end = off + h.total_len();
    if end > size {
        return Err(Stop::Bad {
            at: off,
            reason: format!("record of {} bytes runs past the end of the segment", h.len),
            checksum: None,
        });
    }
    let payload = b.get((off as usize + HEADER_LEN)..end as usize).unwrap_or_default();
    let got = computed_crc(&h, payload);
    if got != h.crc {
        return Err(Stop::Bad { at: off, reason: "record checksum mismatch".into(), checksum: Some((h.crc, got)) });
    }
    Ok((h, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_checksum_covers_everything() {
        let payload = b"hello, log";
        let h = encode_header(payload, true, 42);
        let HeaderParse::Header(parsed) = parse_header(&h) else { panic!("not a header") };
        assert_eq!(parsed.len, payload.len() as u32);
        assert!(parsed.more);
        assert_eq!(parsed.lsn, 42);
        assert_eq!(computed_crc(&parsed, payload), parsed.crc);
        // The checksum is that of len ‖ lsn ‖ payload.
        let mut all = Vec::new();
        all.extend_from_slice(&h[0..4]);
        all.extend_from_slice(&h[8..16]);
        all.extend_from_slice(payload);
        assert_eq!(crc32c::crc32c(&all), parsed.crc);
        // Any flipped bit in len, lsn or payload changes the checksum.
        for bit in 0..(all.len() * 8) {
            let mut damaged = all.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(crc32c::crc32c(&damaged), parsed.crc, "bit {bit}");
        }
    }

    #[test]
    fn zero_and_invalid_headers() {
        assert_eq!(parse_header(&[0u8; 16]), HeaderParse::Zero);
        assert!(matches!(parse_header(&[1u8; 3]), HeaderParse::Invalid(_)));
        let mut h = encode_header(&[], false, 1);
        assert!(matches!(parse_header(&h), HeaderParse::Header(_)), "an empty payload is a record");
        h[3] |= 0x40;
        assert!(matches!(parse_header(&h), HeaderParse::Invalid(_)));
        let zero_lsn = encode_header(b"x", false, 0);
        assert!(matches!(parse_header(&zero_lsn), HeaderParse::Invalid(_)));
    }
}
