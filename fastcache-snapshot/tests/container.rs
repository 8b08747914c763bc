//! Round trips of random chunk payloads through the writer and every way
//! of reading them back.

mod common;

use std::sync::Mutex;

use common::{payload, write_snapshot, TestResult};
use fastcache_snapshot::{SnapshotMeta, SnapshotReader};
use proptest::prelude::*;

/// One chunk to write: a size class, a seed, compressible or not, entries.
fn chunk_spec() -> impl Strategy<Value = (usize, u64, bool, u32)> {
    let size = prop_oneof![
        3 => Just(0usize),
        6 => 1usize..64,
        6 => 64usize..4096,
        3 => 4096usize..65_536,
        1 => Just(1usize << 20),
    ];
    (size, any::<u64>(), any::<bool>(), any::<u32>())
}

/// Everything `load_parallel_indexed` handed over, sorted by chunk index.
fn load_all(reader: &SnapshotReader, threads: usize) -> TestResult<Vec<(Vec<u8>, u32)>> {
    let got = Mutex::new(Vec::new());
    reader.load_parallel_indexed(threads, |i, raw, entries| {
        got.lock().map_err(|_| std::io::Error::other("poisoned"))?.push((i, raw.to_vec(), entries));
        Ok::<(), std::io::Error>(())
    })?;
    let mut got = got.into_inner().map_err(|_| "poisoned")?;
    got.sort_by_key(|(i, _, _)| *i);
    let indices: Vec<u32> = got.iter().map(|(i, _, _)| *i).collect();
    assert_eq!(indices, (0..reader.info().chunks).collect::<Vec<_>>(), "every chunk exactly once");
    Ok(got.into_iter().map(|(_, raw, entries)| (raw, entries)).collect())
}

fn round_trip(specs: &[(usize, u64, bool, u32)], lsn: u64, created: u64) -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("r.fcs");
    let chunks: Vec<(Vec<u8>, u32)> =
        specs.iter().map(|&(len, seed, compressible, entries)| (payload(seed, len, compressible), entries)).collect();
    let meta = SnapshotMeta { lsn, created_unix_ms: created };
    let written = write_snapshot(&path, meta, &chunks)?;

    let keys: u64 = chunks.iter().map(|(_, e)| u64::from(*e)).sum();
    let raw: u64 = chunks.iter().map(|(r, _)| r.len() as u64).sum();
    assert_eq!((written.keys, written.chunks as usize, written.raw_bytes), (keys, chunks.len(), raw));
    assert_eq!(written.file_bytes, std::fs::metadata(&path)?.len());

    let reader = SnapshotReader::open(&path)?;
    assert_eq!(reader.info(), &written);
    reader.verify()?;

    let sequential: Vec<(Vec<u8>, u32)> = reader.chunks().collect::<Result<_, _>>()?;
    assert_eq!(sequential, chunks, "chunks()");
    assert_eq!(load_all(&reader, 1)?, chunks, "load_parallel_indexed, 1 thread");
    assert_eq!(load_all(&reader, 4)?, chunks, "load_parallel_indexed, 4 threads");

    // The plain closure gets the same payloads (in some order).
    let got = Mutex::new(Vec::new());
    let stats = reader.load_parallel(4, |raw, entries| {
        got.lock().map_err(|_| std::io::Error::other("poisoned"))?.push((raw.to_vec(), entries));
        Ok::<(), std::io::Error>(())
    })?;
    let mut got = got.into_inner().map_err(|_| "poisoned")?;
    let mut want = chunks.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "load_parallel, 4 threads");
    assert_eq!((stats.chunks as usize, stats.entries, stats.raw_bytes), (chunks.len(), keys, raw));
    assert!(stats.threads >= 1 && stats.threads <= 4.min(chunks.len().max(1)));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_chunks_round_trip(
        specs in proptest::collection::vec(chunk_spec(), 0..12),
        lsn in any::<u64>(),
        created in any::<u64>(),
    ) {
        round_trip(&specs, lsn, created).map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
}

#[test]
fn one_mebibyte_chunks_of_both_kinds_round_trip() -> TestResult {
    round_trip(&[(1 << 20, 1, true, 1000), (1 << 20, 2, false, 1), (0, 3, true, 0), (1 << 20, 4, true, u32::MAX)], 7, 8)
}

#[test]
fn many_small_chunks_round_trip_on_many_threads() -> TestResult {
    let specs: Vec<_> = (0..500u64).map(|i| ((i % 97) as usize, i, i % 3 == 0, (i % 5) as u32)).collect();
    round_trip(&specs, 1, 2)
}

#[test]
fn a_chunk_of_zeros_compresses_to_its_limit_and_still_reads() -> TestResult {
    // The extreme lz4 ratio (~255×) must pass the reader's plausibility bound.
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("z.fcs");
    let chunks = vec![(vec![0u8; 4 << 20], 1)];
    let info = write_snapshot(&path, SnapshotMeta { lsn: 1, created_unix_ms: 1 }, &chunks)?;
    assert!(info.file_bytes < 20_000, "{info:?}");
    let reader = SnapshotReader::open(&path)?;
    assert_eq!(reader.chunks().collect::<Result<Vec<_>, _>>()?, chunks);
    Ok(())
}
