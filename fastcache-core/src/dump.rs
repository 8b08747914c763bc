//! The value DTO and the DUMP/RESTORE payload.
//!
//! [`ValueDto`] is the persisted form of one key's value: a versioned data
//! transfer object, separate from the engine's in-memory types
//! ([`Value`] and the collections in `types/`), so the engine can change
//! its representation without breaking payloads written before. DUMP and
//! RESTORE carry it, and snapshots reuse it.
//!
//! FastCache does not pretend to speak RDB: a payload from Redis' DUMP is
//! rejected by RESTORE here, and the other way round.
//!
//! # Payload format (version 1)
//! ```text
//! offset   size  field
//! 0        6     magic "FCDUMP"
//! 6        2     format version, u16 little endian (= 1)
//! 8        n     postcard(ValueDto)
//! 8+n      4     crc32c of bytes 0 .. 8+n, u32 little endian
//!
//! +--------+---------+----------------------+-----------+
//! | FCDUMP | ver u16 | postcard(ValueDto)   | crc32c u32|
//! +--------+---------+----------------------+-----------+
//! ```
//! In postcard, the enum's variant is a varint index (String = 0, List = 1,
//! Hash = 2, Set = 3, ZSet = 4), sequences are a varint length followed by
//! their elements, byte strings a varint length followed by the bytes, and a
//! score an `f64` in 8 little-endian bytes. New variants are only ever
//! appended, so a newer build reads every older payload of the same
//! version; a change to an existing variant's shape takes a new version.

use serde::{Deserialize, Serialize};

use crate::keyspace::{ObjRef, Value};
use crate::types::{Hash, List, Set, ZSet};

/// The magic bytes that open every payload.
pub(crate) const DUMP_MAGIC: &[u8; 6] = b"FCDUMP";

/// The payload format version this build writes and reads.
pub const DUMP_VERSION: u16 = 1;

const HEADER_LEN: usize = DUMP_MAGIC.len() + 2;
const CRC_LEN: usize = 4;

/// A byte string (key, member, field, value); a newtype so that serde
/// writes it as length + bytes rather than as a sequence of integers.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct ByteStr(#[serde(with = "serde_bytes")] pub Vec<u8>);

impl std::fmt::Debug for ByteStr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

impl From<&[u8]> for ByteStr {
    fn from(b: &[u8]) -> Self {
        ByteStr(b.to_vec())
    }
}

impl From<Vec<u8>> for ByteStr {
    fn from(b: Vec<u8>) -> Self {
        ByteStr(b)
    }
}

impl std::ops::Deref for ByteStr {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// The persisted form of one value. See the module documentation for its
/// encoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ValueDto {
    /// A string.
    String(ByteStr),
    /// A list, head first.
    List(Vec<ByteStr>),
    /// A hash's field/value pairs, in no particular order; fields unique.
    Hash(Vec<(ByteStr, ByteStr)>),
    /// A set's members, in no particular order; members unique.
    Set(Vec<ByteStr>),
    /// A sorted set's members and scores, in rank order; members unique,
    /// scores never NaN.
    ZSet(Vec<(ByteStr, f64)>),
}

/// Why a [`ValueDto`] cannot become an engine value. Each case is a DTO
/// that no engine state could have produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum DtoError {
    /// A collection with no elements (the engine deletes those).
    #[error("empty {0}")]
    Empty(&'static str),
    /// A set member, hash field or sorted-set member appears twice.
    #[error("duplicate element in {0}")]
    Duplicate(&'static str),
    /// A sorted-set score that is NaN.
    #[error("NaN score")]
    NanScore,
}

/// Why a DUMP payload was rejected; the two cases are Redis' two RESTORE
/// errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PayloadError {
    /// Wrong magic, unknown version, too short, or a checksum mismatch:
    /// not a payload this build wrote (`ERR DUMP payload version or
    /// checksum are wrong`).
    VersionOrChecksum,
    /// The envelope is intact but its content does not decode into a
    /// valid value (`ERR Bad data format`).
    BadData,
}

impl ValueDto {
    /// The DTO of a value as the engine holds it, copying its bytes (for
    /// an owned [`Value`], pass `value.as_ref()`).
    ///
    /// Lists keep their order and sorted sets their rank order; hashes and
    /// sets come out in table order, which means nothing.
    pub(crate) fn from_obj(obj: ObjRef<'_>) -> ValueDto {
        match obj {
            ObjRef::Str(s) => ValueDto::String(s.into()),
            ObjRef::List(l) => ValueDto::List(l.iter().map(ByteStr::from).collect()),
            ObjRef::Hash(h) => ValueDto::Hash(h.iter().map(|(f, v)| (f.into(), v.into())).collect()),
            ObjRef::Set(s) => ValueDto::Set(s.iter().map(ByteStr::from).collect()),
            ObjRef::ZSet(z) => ValueDto::ZSet(z.iter().map(|(m, sc)| (m.into(), sc)).collect()),
        }
    }

    /// The engine value this DTO describes.
    ///
    /// # Errors
    /// A [`DtoError`] for a DTO the engine could never have produced (an
    /// empty collection, a duplicate member or field, a NaN score): the
    /// engine's invariants are never given up to accept a damaged or
    /// hand-made payload.
    pub(crate) fn into_value(self) -> Result<Value, DtoError> {
        match self {
            ValueDto::String(s) => Ok(Value::Str(s.0)),
            ValueDto::List(items) => {
                if items.is_empty() {
                    return Err(DtoError::Empty("list"));
                }
                let mut l = List::new();
                for it in &items {
                    l.push_back(it);
                }
                Ok(Value::List(l))
            }
            ValueDto::Hash(pairs) => {
                if pairs.is_empty() {
                    return Err(DtoError::Empty("hash"));
                }
                let mut h = Hash::new();
                for (f, v) in &pairs {
                    if !h.insert(f, v) {
                        return Err(DtoError::Duplicate("hash"));
                    }
                }
                Ok(Value::Hash(h))
            }
            ValueDto::Set(members) => {
                if members.is_empty() {
                    return Err(DtoError::Empty("set"));
                }
                let mut s = Set::new();
                for m in &members {
                    if !s.insert(m) {
                        return Err(DtoError::Duplicate("set"));
                    }
                }
                Ok(Value::Set(s))
            }
            ValueDto::ZSet(entries) => {
                if entries.is_empty() {
                    return Err(DtoError::Empty("zset"));
                }
                if entries.iter().any(|(_, sc)| sc.is_nan()) {
                    return Err(DtoError::NanScore);
                }
                let mut z = ZSet::default();
                for (m, sc) in &entries {
                    if !z.insert(m, *sc) {
                        return Err(DtoError::Duplicate("zset"));
                    }
                }
                Ok(Value::ZSet(z))
            }
        }
    }
}

/// Encodes a DUMP payload.
///
/// Format: `{ magic "FCDUMP" | version u16 LE | postcard(ValueDto) | crc32c u32 LE }`,
/// the checksum covering everything before it.
pub(crate) fn encode_payload(dto: &ValueDto) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(DUMP_MAGIC);
    out.extend_from_slice(&DUMP_VERSION.to_le_bytes());
    // Serialising vectors, byte strings and floats into a Vec cannot fail;
    // were it to, the payload would carry no body and RESTORE would refuse it.
    if let Ok(body) = postcard::to_allocvec(dto) {
        out.extend_from_slice(&body);
    }
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Decodes a payload written by [`encode_payload`].
///
/// # Errors
/// [`PayloadError::VersionOrChecksum`] unless the magic, version and
/// checksum are right; [`PayloadError::BadData`] if the body then does not
/// decode completely.
pub(crate) fn decode_payload(bytes: &[u8]) -> Result<ValueDto, PayloadError> {
    if bytes.len() < HEADER_LEN + CRC_LEN || &bytes[..DUMP_MAGIC.len()] != DUMP_MAGIC {
        return Err(PayloadError::VersionOrChecksum);
    }
    let version = u16::from_le_bytes([bytes[6], bytes[7]]);
    if version != DUMP_VERSION {
        return Err(PayloadError::VersionOrChecksum);
    }
    let (covered, crc) = bytes.split_at(bytes.len() - CRC_LEN);
    let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32c::crc32c(covered) != stored {
        return Err(PayloadError::VersionOrChecksum);
    }
    match postcard::take_from_bytes::<ValueDto>(&covered[HEADER_LEN..]) {
        Ok((dto, [])) => Ok(dto),
        _ => Err(PayloadError::BadData),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> ByteStr {
        ByteStr(s.as_bytes().to_vec())
    }

    #[test]
    fn payload_roundtrip_and_layout() {
        let dto = ValueDto::Hash(vec![(b("f"), b("v")), (b("g"), ByteStr(vec![0, 0xff]))]);
        let p = encode_payload(&dto);
        assert_eq!(&p[..6], b"FCDUMP");
        assert_eq!(&p[6..8], &[1, 0]);
        let crc = crc32c::crc32c(&p[..p.len() - 4]);
        assert_eq!(&p[p.len() - 4..], &crc.to_le_bytes());
        assert_eq!(decode_payload(&p), Ok(dto));
    }

    #[test]
    fn rejects_damage() {
        let p = encode_payload(&ValueDto::List(vec![b("a"), b("b")]));
        assert_eq!(decode_payload(&[]), Err(PayloadError::VersionOrChecksum));
        assert_eq!(decode_payload(&p[..p.len() - 1]), Err(PayloadError::VersionOrChecksum));
        for i in 0..p.len() {
            let mut bad = p.clone();
            bad[i] ^= 0x40;
            assert_eq!(decode_payload(&bad), Err(PayloadError::VersionOrChecksum), "flipped byte {i}");
        }
        // A future version is refused even with a valid checksum.
        let mut v2 = p[..p.len() - 4].to_vec();
        v2[6] = 2;
        let crc = crc32c::crc32c(&v2);
        v2.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(decode_payload(&v2), Err(PayloadError::VersionOrChecksum));
        // An intact envelope around a body that does not decode.
        let mut junk = p[..8].to_vec();
        junk.extend_from_slice(&[9, 9, 9]);
        let crc = crc32c::crc32c(&junk);
        junk.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(decode_payload(&junk), Err(PayloadError::BadData));
    }

    #[test]
    fn dto_conversions() {
        let dtos = [
            ValueDto::String(b("hello")),
            ValueDto::List(vec![b("x"), b("y"), b("x")]),
            ValueDto::Hash(vec![(b("f"), b("1"))]),
            ValueDto::Set(vec![b("m")]),
            ValueDto::ZSet(vec![(b("a"), 1.0), (b("b"), 2.5)]),
        ];
        for dto in dtos {
            let v = dto.clone().into_value().map_err(|e| e.to_string());
            assert_eq!(v.map(|v| ValueDto::from_obj(v.as_ref())), Ok(dto));
        }
        assert_eq!(ValueDto::List(vec![]).into_value().err(), Some(DtoError::Empty("list")));
        assert_eq!(ValueDto::Set(vec![b("a"), b("a")]).into_value().err(), Some(DtoError::Duplicate("set")));
        assert_eq!(
            ValueDto::Hash(vec![(b("a"), b("1")), (b("a"), b("2"))]).into_value().err(),
            Some(DtoError::Duplicate("hash"))
        );
        assert_eq!(
            ValueDto::ZSet(vec![(b("a"), 1.0), (b("a"), 2.0)]).into_value().err(),
            Some(DtoError::Duplicate("zset"))
        );
        assert_eq!(ValueDto::ZSet(vec![(b("a"), f64::NAN)]).into_value().err(), Some(DtoError::NanScore));
    }
}
