//! The replication stream after `+FULLRESYNC` / `+CONTINUE`: binary frames,
//! each checksummed, so a damaged byte on the wire is a clear error and a
//! reconnect — never a silently divergent replica.
//!
//! A frame is `kind: u8`, `len: u32 LE`, `crc: u32 LE` (crc32c of the kind,
//! the length and the body), then `len` bytes of body:
//!
//! | kind | body | meaning |
//! |------|------|---------|
//! | `C`  | `entries: u32`, chunk bytes | a chunk of the full-sync snapshot (the engine's snapshot entries) |
//! | `E`  | `keys: u64` | end of the snapshot |
//! | `R`  | `lsn: u64`, payload | one WAL record, exactly as in the primary's log |
//! | `H`  | `last_lsn: u64` | heartbeat while nothing else is sent |
//! | `G`  | `last_lsn: u64` | acknowledge now (a client waits in WAIT / WAITAOF) |
//!
//! The replica answers with RESP commands (`REPLCONF ACK <applied> FACK
//! <durable>`): once a second, and at once after a `G` — so an idle WAIT
//! costs nothing and a busy stream is not answered record by record.
//! `docs/formats.md` describes the same bytes.

/// The version a replica announces with `REPLCONF fastcache-protocol N`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Largest frame body accepted: a WAL record is at most a segment (which
/// is at most 1 GiB); anything larger is a damaged length.
pub const MAX_FRAME: u32 = 1 << 30;

const HEADER: usize = 9;

/// One decoded frame, borrowing from the receive buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame<'a> {
    Chunk { entries: u32, data: &'a [u8] },
    SnapshotEnd { keys: u64 },
    Record { lsn: u64, payload: &'a [u8] },
    Heartbeat { last_lsn: u64 },
    GetAck { last_lsn: u64 },
}

/// Why a stream could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("replication frame checksum mismatch (kind {kind:?}, {len} bytes): the stream is damaged")]
    Checksum { kind: char, len: u32 },
    #[error("replication frame of unknown kind {0:?}: the primary speaks another protocol")]
    UnknownKind(char),
    #[error("replication frame of {0} bytes is larger than any record can be: the stream is damaged")]
    TooLarge(u32),
    #[error("replication frame {kind:?} has a body of {len} bytes, too short for its fields")]
    Short { kind: char, len: u32 },
}

fn push_frame(out: &mut Vec<u8>, kind: u8, fields: &[u8], body: &[u8]) {
    let len = (fields.len() + body.len()) as u32;
    let mut crc = crc32c::crc32c(&[kind]);
    crc = crc32c::crc32c_append(crc, &len.to_le_bytes());
    crc = crc32c::crc32c_append(crc, fields);
    crc = crc32c::crc32c_append(crc, body);
    out.push(kind);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(fields);
    out.extend_from_slice(body);
}

/// Appends a snapshot chunk frame.
pub fn push_chunk(out: &mut Vec<u8>, entries: u32, data: &[u8]) {
    push_frame(out, b'C', &entries.to_le_bytes(), data);
}

/// Appends the end-of-snapshot frame.
pub fn push_snapshot_end(out: &mut Vec<u8>, keys: u64) {
    push_frame(out, b'E', &keys.to_le_bytes(), &[]);
}

/// Appends a WAL record frame.
pub fn push_record(out: &mut Vec<u8>, lsn: u64, payload: &[u8]) {
    push_frame(out, b'R', &lsn.to_le_bytes(), payload);
}

/// Appends a heartbeat frame.
pub fn push_heartbeat(out: &mut Vec<u8>, last_lsn: u64) {
    push_frame(out, b'H', &last_lsn.to_le_bytes(), &[]);
}

/// Appends an acknowledge-now frame.
pub fn push_getack(out: &mut Vec<u8>, last_lsn: u64) {
    push_frame(out, b'G', &last_lsn.to_le_bytes(), &[]);
}

fn u64_at(body: &[u8], kind: char) -> Result<u64, WireError> {
    match body.get(..8) {
        Some(b) => Ok(u64::from_le_bytes(b.try_into().unwrap_or([0; 8]))),
        None => Err(WireError::Short { kind, len: body.len() as u32 }),
    }
}

/// Parses the frame at the start of `buf`: `Ok(None)` while it is
/// incomplete, else the frame and the bytes it took. The stream is read
/// into a buffer and parsed from there, so a read timeout in the middle of a
/// frame loses nothing.
///
/// # Errors
/// A checksum mismatch, an unknown kind, an impossible length.
pub fn parse_frame(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, WireError> {
    let Some(head) = buf.get(..HEADER) else {
        return Ok(None);
    };
    let kind = head[0];
    let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
    let crc = u32::from_le_bytes([head[5], head[6], head[7], head[8]]);
    if !matches!(kind, b'C' | b'E' | b'R' | b'H' | b'G') {
        return Err(WireError::UnknownKind(kind as char));
    }
    if len > MAX_FRAME {
        return Err(WireError::TooLarge(len));
    }
    let Some(body) = buf.get(HEADER..HEADER + len as usize) else {
        return Ok(None);
    };
    let got = crc32c::crc32c_append(crc32c::crc32c(&head[..5]), body);
    if got != crc {
        return Err(WireError::Checksum { kind: kind as char, len });
    }
    let k = kind as char;
    let frame = match kind {
        b'C' => {
            let Some(entries) = body.get(..4) else {
                return Err(WireError::Short { kind: k, len });
            };
            let entries = u32::from_le_bytes([entries[0], entries[1], entries[2], entries[3]]);
            Frame::Chunk { entries, data: &body[4..] }
        }
        b'E' => Frame::SnapshotEnd { keys: u64_at(body, k)? },
        b'R' => Frame::Record { lsn: u64_at(body, k)?, payload: &body[8..] },
        b'G' => Frame::GetAck { last_lsn: u64_at(body, k)? },
        _ => Frame::Heartbeat { last_lsn: u64_at(body, k)? },
    };
    Ok(Some((frame, HEADER + len as usize)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_frames() -> (Vec<u8>, Vec<Frame<'static>>) {
        let mut out = Vec::new();
        push_chunk(&mut out, 3, b"chunk bytes");
        push_record(&mut out, 42, b"payload");
        push_heartbeat(&mut out, 43);
        push_snapshot_end(&mut out, 7);
        push_record(&mut out, 44, b"");
        push_getack(&mut out, 44);
        let frames = vec![
            Frame::Chunk { entries: 3, data: b"chunk bytes" },
            Frame::Record { lsn: 42, payload: b"payload" },
            Frame::Heartbeat { last_lsn: 43 },
            Frame::SnapshotEnd { keys: 7 },
            Frame::Record { lsn: 44, payload: b"" },
            Frame::GetAck { last_lsn: 44 },
        ];
        (out, frames)
    }

    #[test]
    fn frames_round_trip() {
        let (bytes, want) = all_frames();
        let mut at = 0;
        for f in want {
            // Every prefix of a frame is incomplete, never an error.
            let (_, len) = parse_frame(&bytes[at..]).unwrap().unwrap();
            for cut in 0..len {
                assert!(parse_frame(&bytes[at..at + cut]).unwrap().is_none());
            }
            assert_eq!(parse_frame(&bytes[at..]).unwrap(), Some((f, len)));
            at += len;
        }
        assert_eq!(at, bytes.len());
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let (bytes, want) = all_frames();
        for i in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[i / 8] ^= 1 << (i % 8);
            let mut got = Vec::new();
            let mut at = 0;
            while let Ok(Some((f, len))) = parse_frame(&damaged[at..]) {
                got.push(f);
                at += len;
            }
            // Whatever was read before the damage is exactly what was sent;
            // the damaged frame itself never comes out.
            assert!(got.len() < want.len(), "bit {i}: damage went unnoticed");
            assert_eq!(got[..], want[..got.len()], "bit {i}");
        }
    }

    #[test]
    fn unknown_kinds_and_huge_lengths_are_errors() {
        let mut bytes = vec![b'X'];
        bytes.extend_from_slice(&[0; 8]);
        assert!(matches!(parse_frame(&bytes), Err(WireError::UnknownKind('X'))));
        let mut bytes = vec![b'R'];
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&[0; 4]);
        assert!(matches!(parse_frame(&bytes), Err(WireError::TooLarge(_))));
    }
}
