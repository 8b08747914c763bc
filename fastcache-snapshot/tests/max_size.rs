//! `WriterOptions::max_size`: a snapshot that would exceed it is aborted
//! with `TooLarge` and leaves nothing behind.

mod common;

use common::{file_names, payload, TestResult};
use fastcache_snapshot::{SnapshotError, SnapshotMeta, SnapshotReader, SnapshotStore, SnapshotWriter, WriterOptions};

const META: SnapshotMeta = SnapshotMeta { lsn: 3, created_unix_ms: 4 };

fn chunks() -> Vec<Vec<u8>> {
    (0..5).map(|i| payload(i, 10_000, i % 2 == 0)).collect()
}

/// Writes `chunks()` with `max_size`; returns the error of the first
/// failing call, if any.
fn write_with_limit(path: &std::path::Path, max_size: Option<u64>) -> TestResult<Result<u64, SnapshotError>> {
    let mut w = SnapshotWriter::create(path, META, WriterOptions { max_size })?;
    for c in chunks() {
        if let Err(e) = w.write_chunk(&c, 1) {
            // Every later call fails too; nothing is written.
            assert!(matches!(w.write_chunk(b"more", 1), Err(SnapshotError::Aborted { .. })));
            assert!(matches!(w.finish(), Err(SnapshotError::Aborted { .. })));
            return Ok(Err(e));
        }
    }
    Ok(w.finish().map(|info| info.file_bytes))
}

#[test]
fn exceeding_the_limit_gives_too_large_and_leaves_no_file() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("s.fcs");
    match write_with_limit(&path, Some(15_000))? {
        Err(SnapshotError::TooLarge { limit: 15_000, written }) => assert!(written > 15_000),
        other => return Err(format!("expected TooLarge, got {other:?}").into()),
    }
    assert!(file_names(dir.path())?.is_empty(), "{:?}", file_names(dir.path())?);
    Ok(())
}

#[test]
fn the_limit_is_the_finished_file_size_footer_included() -> TestResult {
    let dir = tempfile::tempdir()?;
    let full = write_with_limit(&dir.path().join("unlimited.fcs"), None)??;
    // Exactly the size fits ...
    assert_eq!(write_with_limit(&dir.path().join("exact.fcs"), Some(full))??, full);
    SnapshotReader::open(&dir.path().join("exact.fcs"))?.verify()?;
    // ... one byte less fails at the last chunk, which would reach `full`.
    match write_with_limit(&dir.path().join("short.fcs"), Some(full - 1))? {
        Err(SnapshotError::TooLarge { limit, written }) => assert_eq!((limit, written), (full - 1, full)),
        other => return Err(format!("expected TooLarge, got {other:?}").into()),
    }
    assert_eq!(file_names(dir.path())?, ["exact.fcs", "unlimited.fcs"]);
    // An empty snapshot that cannot even hold its header and footer fails at finish.
    let w = SnapshotWriter::create(&dir.path().join("tiny.fcs"), META, WriterOptions { max_size: Some(10) })?;
    assert!(matches!(w.finish(), Err(SnapshotError::TooLarge { limit: 10, written: 108 })));
    assert_eq!(file_names(dir.path())?, ["exact.fcs", "unlimited.fcs"]);
    Ok(())
}

#[test]
fn a_too_large_snapshot_in_a_store_touches_nothing_else() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SnapshotStore::open(dir.path(), 2)?;
    let mut w = store.create(SnapshotMeta { lsn: 1, created_unix_ms: 1 }, WriterOptions::default())?;
    w.write_chunk(b"small", 1)?;
    let first = w.finish()?;
    store.publish(&first)?;
    let before = file_names(dir.path())?;
    let manifest = std::fs::read(store.manifest_path())?;

    let mut w = store.create(SnapshotMeta { lsn: 2, created_unix_ms: 2 }, WriterOptions { max_size: Some(4096) })?;
    let err = w.write_chunk(&payload(9, 100_000, false), 1).err();
    assert!(matches!(err, Some(SnapshotError::TooLarge { limit: 4096, .. })), "{err:?}");
    drop(w);
    assert_eq!(file_names(dir.path())?, before);
    assert_eq!(std::fs::read(store.manifest_path())?, manifest);
    Ok(())
}
