//! Damaged files: every truncation and every single-bit flip of a small
//! snapshot, and samples of both on a bigger one, must fail `open` or
//! `verify` with a typed corruption error — never panic, never hand out
//! bytes that differ from what was written.

mod common;

use std::path::Path;
use std::sync::Mutex;

use common::{payload, write_snapshot, TestResult};
use fastcache_snapshot::{Region, SnapshotError, SnapshotMeta, SnapshotReader};
use proptest::prelude::*;

const META: SnapshotMeta = SnapshotMeta { lsn: 77, created_unix_ms: 1_700_000_000_000 };

fn small_chunks() -> Vec<(Vec<u8>, u32)> {
    vec![(payload(1, 200, true), 3), (payload(2, 30, false), 1), (Vec::new(), 0), (payload(3, 5, true), 2)]
}

fn big_chunks() -> Vec<(Vec<u8>, u32)> {
    (0..40u64).map(|i| (payload(i, 2_000 + (i as usize * 517) % 9_000, i % 4 != 0), i as u32)).collect()
}

/// `open` then `verify`: the check a start-up does.
fn open_and_verify(path: &Path) -> Result<SnapshotReader, SnapshotError> {
    let reader = SnapshotReader::open(path)?;
    reader.verify()?;
    Ok(reader)
}

/// Asserts that reading `path` in every way fails with a corruption error
/// and that whatever payloads are handed out before the error are the ones
/// written (`chunks`).
fn assert_detected(path: &Path, chunks: &[(Vec<u8>, u32)], what: &str) -> TestResult {
    match open_and_verify(path) {
        Ok(_) => return Err(format!("{what}: damage not detected").into()),
        Err(e) if !e.is_corruption() => return Err(format!("{what}: not a corruption error: {e}").into()),
        Err(_) => {}
    }
    let Ok(reader) = SnapshotReader::open(path) else { return Ok(()) };
    // Damage inside a chunk: open succeeds, every reading path must stop
    // at the damage and deliver only correct payloads before it.
    let mut saw_error = false;
    for (i, item) in reader.chunks().enumerate() {
        match item {
            Ok(chunk) => assert_eq!(&chunk, &chunks[i], "{what}: chunks() returned wrong data for chunk {i}"),
            Err(e) => {
                assert!(e.is_corruption(), "{what}: {e}");
                saw_error = true;
            }
        }
    }
    assert!(saw_error, "{what}: chunks() did not report the damage");
    for threads in [1, 3] {
        let delivered = Mutex::new(Vec::new());
        let result = reader.load_parallel_indexed(threads, |i, raw, entries| {
            delivered.lock().map_err(|_| std::io::Error::other("poisoned"))?.push((i, raw.to_vec(), entries));
            Ok::<(), std::io::Error>(())
        });
        assert!(result.is_err(), "{what}: load_parallel({threads}) did not report the damage");
        for (i, raw, entries) in delivered.into_inner().map_err(|_| "poisoned")? {
            assert_eq!((raw, entries), chunks[i as usize], "{what}: load_parallel delivered wrong data for chunk {i}");
        }
    }
    Ok(())
}

#[test]
fn every_truncation_of_a_small_file_is_detected() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s.fcs");
    let chunks = small_chunks();
    write_snapshot(&path, META, &chunks)?;
    let good = std::fs::read(&path)?;
    let damaged = dir.path().join("d.fcs");
    for len in 0..good.len() {
        std::fs::write(&damaged, &good[..len])?;
        assert_detected(&damaged, &chunks, &format!("truncated to {len}"))?;
        if len >= 64 {
            let e = SnapshotReader::open(&damaged).err();
            assert!(
                matches!(e, Some(SnapshotError::Truncated { len: l, expected, .. }) if l == len as u64 && expected == good.len() as u64),
                "truncated to {len}: {e:?}"
            );
        }
    }
    // And a byte too many.
    let mut longer = good.clone();
    longer.push(0);
    std::fs::write(&damaged, &longer)?;
    assert_detected(&damaged, &chunks, "one byte appended")?;
    Ok(())
}

#[test]
fn every_bit_flip_in_a_small_file_is_detected() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s.fcs");
    let chunks = small_chunks();
    write_snapshot(&path, META, &chunks)?;
    let good = std::fs::read(&path)?;
    let damaged = dir.path().join("d.fcs");
    for i in 0..good.len() {
        for bit in 0..8 {
            let mut b = good.clone();
            b[i] ^= 1 << bit;
            std::fs::write(&damaged, &b)?;
            assert_detected(&damaged, &chunks, &format!("bit {bit} of byte {i} flipped"))?;
        }
    }
    Ok(())
}

#[test]
fn errors_name_the_file_the_region_and_the_offset() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s.fcs");
    let chunks = small_chunks();
    write_snapshot(&path, META, &chunks)?;
    let good = std::fs::read(&path)?;

    // Header.
    let mut b = good.clone();
    b[20] ^= 0x10;
    std::fs::write(&path, &b)?;
    let e = SnapshotReader::open(&path).err();
    assert!(
        matches!(&e, Some(SnapshotError::ChecksumMismatch { file, region: Region::Header, offset: 0, .. }) if file == &path),
        "{e:?}"
    );
    // Magic.
    let mut b = good.clone();
    b[0] = b'X';
    std::fs::write(&path, &b)?;
    let e = SnapshotReader::open(&path).err();
    assert!(matches!(&e, Some(SnapshotError::BadMagic { offset: 0, .. })), "{e:?}");
    // Version.
    let mut b = good.clone();
    b[8] = 2;
    std::fs::write(&path, &b)?;
    let e = SnapshotReader::open(&path).err();
    assert!(matches!(&e, Some(SnapshotError::UnsupportedVersion { version: 2, .. })), "{e:?}");
    // The second chunk's stored bytes (chunk 0's frame is 20 + its stored
    // length, read from its own frame header).
    let chunk0_len = 20 + u32::from_le_bytes([good[64], good[65], good[66], good[67]]) as u64;
    let chunk1 = 64 + chunk0_len;
    let mut b = good.clone();
    b[chunk1 as usize + 25] ^= 1;
    std::fs::write(&path, &b)?;
    let e = open_and_verify(&path).err();
    assert!(
        matches!(&e, Some(SnapshotError::ChecksumMismatch { region: Region::Chunk(1), offset, .. }) if *offset == chunk1),
        "{e:?}"
    );
    // Footer: its last byte is part of its checksum.
    let mut b = good.clone();
    let last = b.len() - 1;
    b[last] ^= 0x80;
    std::fs::write(&path, &b)?;
    let e = SnapshotReader::open(&path).err();
    assert!(matches!(&e, Some(SnapshotError::ChecksumMismatch { region: Region::Footer, .. })), "{e:?}");
    let msg = e.map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("s.fcs") && msg.contains("footer checksum mismatch at offset"), "{msg}");
    Ok(())
}

#[test]
fn sampled_damage_in_a_bigger_file_is_detected() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("b.fcs");
    let chunks = big_chunks();
    write_snapshot(&path, META, &chunks)?;
    let good = std::fs::read(&path)?;
    let damaged = dir.path().join("d.fcs");

    // Truncations: around every chunk boundary, and a spread of others.
    let mut offsets: Vec<usize> = (0..good.len()).step_by(good.len() / 150 + 1).collect();
    let mut at = 64usize;
    for _ in 0..chunks.len() {
        offsets.extend([at - 1, at, at + 1, at + 19, at + 20, at + 21]);
        at += 20 + u32::from_le_bytes([good[at], good[at + 1], good[at + 2], good[at + 3]]) as usize;
    }
    offsets.extend([at - 1, at, at + 1, good.len() - 4, good.len() - 1]);
    for len in offsets {
        std::fs::write(&damaged, &good[..len])?;
        assert_detected(&damaged, &chunks, &format!("truncated to {len}"))?;
    }

    // Bit flips at a pseudo-random sample of positions.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..300 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let i = (x % good.len() as u64) as usize;
        let bit = (x >> 32) % 8;
        let mut b = good.clone();
        b[i] ^= 1 << bit;
        std::fs::write(&damaged, &b)?;
        assert_detected(&damaged, &chunks, &format!("bit {bit} of byte {i} flipped"))?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Arbitrary bytes, and a valid file with arbitrary bytes overwritten,
    /// never make the reader panic; damage is always reported.
    #[test]
    fn arbitrary_bytes_never_panic(
        garbage in proptest::collection::vec(any::<u8>(), 0..600),
        splat in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("g.fcs");
        std::fs::write(&path, &garbage)?;
        prop_assert!(open_and_verify(&path).is_err());

        let path = dir.path().join("s.fcs");
        let chunks = small_chunks();
        write_snapshot(&path, META, &chunks).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut b = std::fs::read(&path)?;
        let good = b.clone();
        for (i, v) in &splat {
            let i = i.index(b.len());
            b[i] = *v;
        }
        std::fs::write(&path, &b)?;
        if b != good {
            assert_detected(&path, &chunks, "overwritten bytes").map_err(|e| TestCaseError::fail(e.to_string()))?;
        }
    }
}
