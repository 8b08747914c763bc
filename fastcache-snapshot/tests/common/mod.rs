//! Helpers shared by the integration tests.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::Path;

use fastcache_snapshot::{SnapshotInfo, SnapshotMeta, SnapshotWriter, WriterOptions};

/// Errors of any kind, so tests can use `?` on I/O and snapshot calls alike.
pub type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

/// A deterministic payload of `len` bytes: compressible (short runs from a
/// small alphabet, like encoded keys and values) or random (lz4 cannot
/// shrink it, so the writer stores it as is).
pub fn payload(seed: u64, len: usize, compressible: bool) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let r = next();
        if compressible {
            let run = 1 + (r % 12) as usize;
            let byte = b'a' + ((r >> 8) % 6) as u8;
            out.extend(std::iter::repeat_n(byte, run.min(len - out.len())));
        } else {
            out.extend(r.to_le_bytes().iter().take(len - out.len()));
        }
    }
    out
}

/// Writes `chunks` as a snapshot at `path`.
pub fn write_snapshot(path: &Path, meta: SnapshotMeta, chunks: &[(Vec<u8>, u32)]) -> TestResult<SnapshotInfo> {
    let mut w = SnapshotWriter::create(path, meta, WriterOptions::default())?;
    for (raw, entries) in chunks {
        w.write_chunk(raw, *entries)?;
    }
    Ok(w.finish()?)
}

/// Names of the files in `dir`, sorted.
pub fn file_names(dir: &Path) -> TestResult<Vec<String>> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(dir)? {
        names.push(e?.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}
