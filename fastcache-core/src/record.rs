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
use smallvec::SmallVec;

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

/// A record decoded without copying: every argument borrows from the
/// encoded bytes (WAL replay). Up to one op of up to four arguments costs no
/// allocation at all. Same format as [`Record`], decoded by the same serde
/// description.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
pub struct RecordRef<'a> {
    /// The effects, in the order they were applied.
    #[serde(borrow)]
    pub ops: SmallVec<[OpRef<'a>; 1]>,
    /// As [`Record::time_ms`].
    pub time_ms: u64,
}

/// Version 1 of the format, borrowed.
#[derive(Deserialize)]
struct RecordRefV1<'a> {
    #[serde(borrow)]
    ops: SmallVec<[OpRef<'a>; 1]>,
}

/// One effect of a [`RecordRef`].
#[derive(Clone, PartialEq, Eq, Deserialize)]
pub struct OpRef<'a> {
    /// The logical database the command applies to.
    pub db: u32,
    /// The command name and its arguments.
    #[serde(borrow)]
    pub argv: SmallVec<[&'a [u8]; 4]>,
}

impl std::fmt::Debug for OpRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let argv: Vec<_> = self.argv.iter().map(|a| String::from_utf8_lossy(a)).collect();
        f.debug_struct("OpRef").field("db", &self.db).field("argv", &argv).finish()
    }
}

impl OpRef<'_> {
    /// The command name, lossily as text, for messages.
    pub fn name(&self) -> String {
        self.argv.first().map(|a| String::from_utf8_lossy(a).into_owned()).unwrap_or_default()
    }
}

impl<'a> RecordRef<'a> {
    /// Decodes a record written by [`Record::encode`], borrowing its
    /// arguments from `bytes`.
    ///
    /// # Errors
    /// As [`Record::decode`].
    pub fn decode(bytes: &'a [u8]) -> Result<RecordRef<'a>> {
        decode_versioned(bytes, |v1: RecordRefV1<'a>| RecordRef { ops: v1.ops, time_ms: 0 })
    }

    /// An owned copy.
    pub fn to_record(&self) -> Record {
        Record { ops: self.ops.iter().map(|op| Op::new(op.db as usize, &op.argv)).collect(), time_ms: self.time_ms }
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
        decode_versioned(bytes, |v1: RecordV1| Record { ops: v1.ops, time_ms: 0 })
    }

    /// A view of the record borrowing its arguments, as
    /// [`RecordRef::decode`] would give.
    pub fn view(&self) -> RecordRef<'_> {
        RecordRef {
            ops: self
                .ops
                .iter()
                .map(|op| OpRef { db: op.db, argv: op.argv.iter().map(|a| a.0.as_slice()).collect() })
                .collect(),
            time_ms: self.time_ms,
        }
    }
}

/// The version byte, then the postcard body of the current version `R` or
/// of version 1 `V1`, and nothing after it.
fn decode_versioned<'a, R: Deserialize<'a>, V1: Deserialize<'a>>(
    bytes: &'a [u8],
    from_v1: impl FnOnce(V1) -> R,
) -> Result<R> {
    let (&version, body) = bytes.split_first().ok_or_else(|| Error::Corrupted { reason: "empty record".into() })?;
    let corrupted = |e: postcard::Error| Error::Corrupted { reason: e.to_string() };
    let (rec, rest) = match version {
        RECORD_VERSION => postcard::take_from_bytes::<R>(body).map_err(corrupted)?,
        1 => {
            let (v1, rest) = postcard::take_from_bytes::<V1>(body).map_err(corrupted)?;
            (from_v1(v1), rest)
        }
        _ => return Err(Error::UnsupportedVersion { found: version, supported: RECORD_VERSION }),
    };
    if !rest.is_empty() {
        return Err(Error::Corrupted { reason: format!("{} trailing bytes after the record", rest.len()) });
    }
    Ok(rec)
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
    fn a_borrowed_decode_equals_the_owned_one() {
        let recs = [
            Record { ops: vec![Op::new(0, &[b"SET", b"k", &[0xff; 200]])], time_ms: 1_700_000_000_123 },
            Record {
                ops: vec![Op::new(1, &[b"DEL", b"a", b"b", b"c", b"d", b"e"]), Op::new(15, &[b"FLUSHALL"])],
                time_ms: 0,
            },
            Record::default(),
        ];
        for rec in recs {
            let bytes = rec.encode();
            let view = RecordRef::decode(&bytes).expect("decodes");
            assert_eq!(view, rec.view());
            assert_eq!(view.to_record(), rec);
        }
        let v1 = [1u8, 1, 0, 2, 3, b'D', b'E', b'L', 1, b'k'];
        assert_eq!(RecordRef::decode(&v1).expect("a version 1 record").to_record(), Record::decode(&v1).expect("v1"));
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
        for bad in [&[][..], &v2, &bytes[..bytes.len() - 2], &extra] {
            let owned = Record::decode(bad).err().map(|e| e.to_string());
            assert!(owned.is_some());
            assert_eq!(RecordRef::decode(bad).err().map(|e| e.to_string()), owned);
        }
    }
}
