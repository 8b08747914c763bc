//! The mutation record: the deterministic effect of a write, as the WAL and
//! replicas carry it.
//!
//! A [`Record`] is a list of [`Op`]s, each a Redis command (database index
//! plus argument vector) that re-applies one effect through the engine's
//! ordinary command path ([`crate::Engine::apply_record`]). The engine
//! rewrites commands so that re-applying them gives the same state
//! whenever it happens (DESIGN.md, invariant 2): relative expiry becomes
//! absolute (`EXPIRE` → `PEXPIREAT`, `SET … EX` → `SET … PXAT`), random
//! choices become concrete (`SPOP` → `SREM` of the chosen members), float
//! arithmetic becomes the stored result (`INCRBYFLOAT` → `SET`), and keys
//! deleted by expiry or eviction become `DEL`. A MULTI/EXEC block is one
//! record, so it is logged, and lost, as a whole.
//!
//! This is an on-disk format: it is a versioned DTO, separate from the
//! engine's in-memory types, and documented byte by byte in
//! `docs/formats.md`.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The newest record format version this build writes; it also reads
/// version 1 (no time).
pub const RECORD_VERSION: u8 = 2;

/// The deterministic effect of one command or one MULTI/EXEC block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Record {
    /// The effects, in the order they were applied.
    pub ops: Vec<Op>,
    /// When the write happened, Unix milliseconds by the server's clock (0:
    /// unknown — records of format version 1). Restores to a point in time
    /// stop at the first record after it; it plays no part in re-applying.
    pub time_ms: u64,
}

/// Version 1 of the format: no time.
#[derive(Deserialize)]
struct RecordV1 {
    ops: Vec<Op>,
}

/// One effect: a command to re-apply in database `db`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// The logical database (0–15) the command applies to.
    pub db: u32,
    /// The command name and its arguments.
    pub argv: Vec<Arg>,
}

/// One argument; a newtype so that serde writes it as a byte string
/// (length + bytes) rather than as a sequence of integers.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arg(#[serde(with = "serde_bytes")] pub Vec<u8>);

impl std::fmt::Debug for Arg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

impl Op {
    /// An op from borrowed arguments.
    pub fn new(db: usize, argv: &[&[u8]]) -> Op {
        Op { db: db as u32, argv: argv.iter().map(|a| Arg(a.to_vec())).collect() }
    }

    /// An op from owned arguments.
    pub fn from_vecs(db: usize, argv: Vec<Vec<u8>>) -> Op {
        Op { db: db as u32, argv: argv.into_iter().map(Arg).collect() }
    }

    /// The command name, lossily as text, for messages.
    pub fn name(&self) -> String {
        self.argv.first().map(|a| String::from_utf8_lossy(&a.0).into_owned()).unwrap_or_default()
    }
}

impl Record {
    /// Encodes the record.
    ///
    /// Format: `{ version u8 = 1 | postcard(Record) }`; see `docs/formats.md`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size_hint());
        self.encode_into(&mut out);
        out
    }

    /// [`Record::encode`] into `out`, replacing its contents but keeping its
    /// capacity: a journal that reuses one buffer allocates nothing per
    /// record once the buffer has grown.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.clear();
        out.reserve(self.size_hint());
        out.push(RECORD_VERSION);
        // Serialising plain vectors and byte strings into a Vec cannot fail.
        if let Ok(buf) = postcard::to_extend(self, std::mem::take(out)) {
            *out = buf;
        }
    }

    /// At least the encoded length, give or take a few bytes: every length
    /// prefix and integer is a varint of at most 10 bytes.
    fn size_hint(&self) -> usize {
        let args: usize = self.ops.iter().flat_map(|op| &op.argv).map(|a| a.0.len() + 3).sum();
        1 + 20 + self.ops.len() * 8 + args
    }

    /// Decodes a record written by [`Record::encode`].
    ///
    /// # Errors
    /// [`Error::UnsupportedVersion`] for an unknown version byte,
    /// [`Error::Corrupted`] for bytes that do not decode completely.
    pub fn decode(bytes: &[u8]) -> Result<Record> {
        let (&version, body) = bytes.split_first().ok_or_else(|| Error::Corrupted { reason: "empty record".into() })?;
        let corrupted = |e: postcard::Error| Error::Corrupted { reason: e.to_string() };
        let (rec, rest): (Record, &[u8]) = match version {
            RECORD_VERSION => postcard::take_from_bytes(body).map_err(corrupted)?,
            1 => {
                let (v1, rest): (RecordV1, &[u8]) = postcard::take_from_bytes(body).map_err(corrupted)?;
                (Record { ops: v1.ops, time_ms: 0 }, rest)
            }
            _ => return Err(Error::UnsupportedVersion { found: version, supported: RECORD_VERSION }),
        };
        if !rest.is_empty() {
            return Err(Error::Corrupted { reason: format!("{} trailing bytes after the record", rest.len()) });
        }
        Ok(rec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let rec = Record {
            ops: vec![Op::new(0, &[b"SET", b"k", b"v", b"PXAT", b"123"]), Op::new(3, &[b"DEL", b"\x00\xff"])],
            time_ms: 1_700_000_000_123,
        };
        let bytes = rec.encode();
        assert_eq!(bytes[0], RECORD_VERSION);
        assert_eq!(Record::decode(&bytes).ok(), Some(rec));
    }

    #[test]
    fn encode_into_reuses_the_buffer_and_matches_encode() {
        let small = Record { ops: vec![Op::new(0, &[b"DEL", b"k"])], time_ms: 7 };
        let big = Record { ops: vec![Op::new(2, &[b"SET", b"key", &[b'v'; 300]])], time_ms: 1_700_000_000_000 };
        let mut buf = b"leftover bytes".to_vec();
        for rec in [&big, &small, &big] {
            rec.encode_into(&mut buf);
            assert_eq!(buf, rec.encode());
            assert_eq!(Record::decode(&buf).ok().as_ref(), Some(rec));
        }
    }

    #[test]
    fn reads_version_1() {
        // Version byte 1, then postcard { ops: [ { db: 0, argv: ["DEL", "k"] } ] }.
        let v1 = [1u8, 1, 0, 2, 3, b'D', b'E', b'L', 1, b'k'];
        let rec = Record::decode(&v1).expect("a version 1 record");
        assert_eq!(rec, Record { ops: vec![Op::new(0, &[b"DEL", b"k"])], time_ms: 0 });
    }

    #[test]
    fn rejects_damage() {
        let rec = Record { ops: vec![Op::new(0, &[b"SET", b"key", b"value"])], time_ms: 0 };
        let bytes = rec.encode();
        assert!(matches!(Record::decode(&[]), Err(Error::Corrupted { .. })));
        let mut v2 = bytes.clone();
        v2[0] = 9;
        assert!(matches!(Record::decode(&v2), Err(Error::UnsupportedVersion { found: 9, .. })));
        assert!(matches!(Record::decode(&bytes[..bytes.len() - 2]), Err(Error::Corrupted { .. })));
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(matches!(Record::decode(&extra), Err(Error::Corrupted { .. })));
    }
}
