//! The snapshot directory: publication, retention, crash leftovers,
//! damaged snapshots and a damaged or stale manifest.

mod common;

use std::path::PathBuf;

use common::{file_names, payload, TestResult};
use fastcache_snapshot::{SnapshotError, SnapshotInfo, SnapshotMeta, SnapshotStore, WriterOptions, MANIFEST_FILE};

fn snapshot(store: &SnapshotStore, lsn: u64, created: u64) -> TestResult<SnapshotInfo> {
    let mut w = store.create(SnapshotMeta { lsn, created_unix_ms: created }, WriterOptions::default())?;
    w.write_chunk(&payload(lsn, 3000, true), 10)?;
    w.write_chunk(&payload(lsn + 1, 100, false), 2)?;
    Ok(w.finish()?)
}

fn listed(store: &SnapshotStore) -> TestResult<Vec<(u64, u64)>> {
    Ok(store.list()?.iter().map(|e| (e.lsn, e.created_unix_ms)).collect())
}

#[test]
fn publishing_three_with_retain_two_deletes_the_oldest() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SnapshotStore::open(dir.path(), 2)?;
    assert!(store.list()?.is_empty(), "a new store lists nothing");

    let a = snapshot(&store, 10, 1000)?;
    assert_eq!(store.publish(&a)?, Vec::<PathBuf>::new());
    let b = snapshot(&store, 20, 2000)?;
    assert_eq!(store.publish(&b)?, Vec::<PathBuf>::new());
    assert_eq!(listed(&store)?, [(20, 2000), (10, 1000)]);

    let c = snapshot(&store, 30, 3000)?;
    assert_eq!(store.publish(&c)?, vec![a.path.clone()]);
    assert_eq!(listed(&store)?, [(30, 3000), (20, 2000)]);
    assert!(!a.path.exists());
    assert_eq!(
        file_names(dir.path())?,
        [MANIFEST_FILE, "snapshot-00000000000000000020-2000.fcs", "snapshot-00000000000000000030-3000.fcs"]
    );

    // The entries describe the files; each opens and verifies.
    for entry in store.list()? {
        let reader = store.open_snapshot(&entry)?;
        assert_eq!((reader.info().keys, reader.info().file_bytes), (entry.keys, entry.file_bytes));
        reader.verify()?;
    }
    // Publishing again changes nothing; a reopened store sees the same.
    assert_eq!(store.publish(&c)?, Vec::<PathBuf>::new());
    assert_eq!(listed(&SnapshotStore::open(dir.path(), 2)?)?, [(30, 3000), (20, 2000)]);
    Ok(())
}

#[test]
fn publish_only_leaves_just_that_snapshot_even_below_newer_ones() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SnapshotStore::open(dir.path(), 3)?;
    for (lsn, created) in [(10, 1000), (50, 2000)] {
        let s = snapshot(&store, lsn, created)?;
        store.publish(&s)?;
    }
    // An unpublished newer file (a snapshot finished but never published).
    snapshot(&store, 90, 2500)?;
    // A replica adopts its primary's history at LSN 30: its own snapshots,
    // newer or not, belong to another history.
    let adopted = snapshot(&store, 30, 3000)?;
    let mut removed = store.publish_only(&adopted)?;
    removed.sort();
    assert_eq!(removed.len(), 3, "{removed:?}");
    assert_eq!(listed(&store)?, [(30, 3000)]);
    assert_eq!(file_names(dir.path())?, [MANIFEST_FILE, "snapshot-00000000000000000030-3000.fcs"]);
    assert_eq!(listed(&SnapshotStore::open(dir.path(), 3)?)?, [(30, 3000)]);
    Ok(())
}

#[test]
fn two_snapshots_at_one_lsn_do_not_collide() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SnapshotStore::open(dir.path(), 3)?;
    let a = snapshot(&store, 5, 100)?;
    let b = snapshot(&store, 5, 101)?;
    store.publish(&a)?;
    store.publish(&b)?;
    assert_eq!(listed(&store)?, [(5, 101), (5, 100)]);
    assert!(matches!(
        store.create(SnapshotMeta { lsn: 5, created_unix_ms: 100 }, WriterOptions::default()),
        Err(SnapshotError::AlreadyExists { .. })
    ));
    Ok(())
}

#[test]
fn crash_leftovers_are_removed_on_open() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SnapshotStore::open(dir.path(), 2)?;
    let kept = snapshot(&store, 1, 1)?;
    store.publish(&kept)?;

    // A crash in the middle of a snapshot and of a manifest update.
    let mut w = store.create(SnapshotMeta { lsn: 2, created_unix_ms: 2 }, WriterOptions::default())?;
    w.write_chunk(b"half a snapshot", 1)?;
    std::mem::forget(w);
    std::fs::write(dir.path().join("MANIFEST.tmp"), b"FCSNAP-MANIFEST 1\n")?;
    std::fs::write(dir.path().join("notes.txt"), b"not ours")?;
    drop(store);

    let store = SnapshotStore::open(dir.path(), 2)?;
    let mut removed: Vec<String> =
        store.removed_on_open().iter().filter_map(|p| p.file_name()?.to_str().map(String::from)).collect();
    removed.sort();
    assert_eq!(removed, ["MANIFEST.tmp", "snapshot-00000000000000000002-2.fcs.tmp"]);
    assert_eq!(file_names(dir.path())?, [MANIFEST_FILE, "notes.txt", "snapshot-00000000000000000001-1.fcs"]);
    assert_eq!(listed(&store)?, [(1, 1)]);
    Ok(())
}

#[test]
fn an_unpublished_snapshot_is_an_orphan_until_a_newer_one_is_published() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SnapshotStore::open(dir.path(), 2)?;
    store.publish(&snapshot(&store, 10, 1)?)?;
    // Finished, never published (a crash between finish and publish).
    let orphan = snapshot(&store, 15, 2)?;
    // Finished and newer than anything published: may be in flight, kept.
    let in_flight = snapshot(&store, 40, 4)?;
    assert_eq!(listed(&store)?, [(10, 1)]);

    let deleted = store.publish(&snapshot(&store, 20, 3)?)?;
    assert_eq!(deleted, vec![orphan.path.clone()]);
    assert!(in_flight.path.exists());
    assert_eq!(listed(&store)?, [(20, 3), (10, 1)]);
    Ok(())
}

#[test]
fn a_damaged_newest_snapshot_is_dropped_and_the_previous_one_listed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SnapshotStore::open(dir.path(), 2)?;
    store.publish(&snapshot(&store, 10, 1)?)?;
    let newest = snapshot(&store, 20, 2)?;
    store.publish(&newest)?;

    // Damage a chunk: the header and footer still verify, the chunk does not.
    let mut bytes = std::fs::read(&newest.path)?;
    bytes[100] ^= 0x04;
    std::fs::write(&newest.path, &bytes)?;
    let entry = store.list()?.remove(0);
    let err = store.open_snapshot(&entry)?.verify().err();
    assert!(err.as_ref().is_some_and(SnapshotError::is_corruption), "{err:?}");

    let bad = store.drop_snapshot(&entry.path)?;
    let bad = bad.ok_or("the damaged file should have been renamed")?;
    assert!(bad.to_string_lossy().ends_with("snapshot-00000000000000000020-2.fcs.bad"));
    assert!(bad.exists() && !newest.path.exists());
    assert_eq!(listed(&store)?, [(10, 1)]);
    store.open_snapshot(&store.list()?[0])?.verify()?;
    // Dropping it again is harmless.
    assert_eq!(store.drop_snapshot(&entry.path)?, None);
    Ok(())
}

#[test]
fn a_manifest_naming_a_missing_file_is_reported() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SnapshotStore::open(dir.path(), 2)?;
    let info = snapshot(&store, 7, 1)?;
    store.publish(&info)?;
    std::fs::remove_file(&info.path)?;

    let entry = store.list()?.remove(0);
    match store.open_snapshot(&entry) {
        Err(SnapshotError::MissingSnapshot { manifest, file }) => {
            assert_eq!(manifest, dir.path().join(MANIFEST_FILE));
            assert_eq!(file, info.path);
        }
        other => return Err(format!("expected MissingSnapshot, got {other:?}").into()),
    }
    let msg = store.open_snapshot(&entry).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("MANIFEST") && msg.contains("snapshot-00000000000000000007-1.fcs"), "{msg}");
    // Publishing a file that is gone is refused the same way.
    assert!(matches!(store.publish(&info), Err(SnapshotError::MissingSnapshot { .. })));
    Ok(())
}

#[test]
fn a_file_that_is_not_the_listed_one_is_reported() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SnapshotStore::open(dir.path(), 2)?;
    let info = snapshot(&store, 7, 1)?;
    store.publish(&info)?;
    // Another valid snapshot put in its place (by hand, or a stale copy).
    let other = tempfile::tempdir()?;
    let mut w = SnapshotStore::open(other.path(), 2)?
        .create(SnapshotMeta { lsn: 7, created_unix_ms: 9 }, WriterOptions::default())?;
    w.write_chunk(b"x", 1)?;
    std::fs::copy(w.finish()?.path, &info.path)?;
    let err = store.open_snapshot(&store.list()?[0]).err();
    assert!(matches!(&err, Some(SnapshotError::Corrupted { offset: 0, .. })), "{err:?}");
    Ok(())
}

#[test]
fn a_damaged_manifest_is_reported_and_can_be_rebuilt() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SnapshotStore::open(dir.path(), 2)?;
    for (lsn, created) in [(10, 1), (20, 2), (30, 3)] {
        store.publish(&snapshot(&store, lsn, created)?)?;
    }
    let manifest = dir.path().join(MANIFEST_FILE);
    let mut bytes = std::fs::read(&manifest)?;
    bytes[30] ^= 0x01;
    std::fs::write(&manifest, &bytes)?;

    let err = store.list().err();
    assert!(
        matches!(&err, Some(SnapshotError::Corrupted { file, .. }) if file == &manifest),
        "list must name the manifest: {err:?}"
    );
    // Nothing is published on top of a damaged manifest.
    let next = snapshot(&store, 40, 4)?;
    assert!(matches!(store.publish(&next), Err(SnapshotError::Corrupted { .. })));

    // A damaged snapshot file is left out of the rebuilt manifest.
    let mut damaged = std::fs::read(&next.path)?;
    damaged[10] ^= 1;
    std::fs::write(&next.path, &damaged)?;
    let rebuilt: Vec<(u64, u64)> = store.rebuild_manifest()?.iter().map(|e| (e.lsn, e.created_unix_ms)).collect();
    assert_eq!(rebuilt, [(30, 3), (20, 2)]);
    assert_eq!(listed(&store)?, rebuilt);
    Ok(())
}

#[test]
fn misuse_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    assert!(matches!(SnapshotStore::open(dir.path(), 0), Err(SnapshotError::InvalidArgument(_))));
    let store = SnapshotStore::open(&dir.path().join("a"), 2)?;
    let elsewhere = SnapshotStore::open(&dir.path().join("b"), 2)?;
    let info = snapshot(&elsewhere, 1, 1)?;
    assert!(matches!(store.publish(&info), Err(SnapshotError::InvalidArgument(_))));
    assert!(matches!(store.drop_snapshot(&dir.path().join("a/MANIFEST")), Err(SnapshotError::InvalidArgument(_))));
    Ok(())
}
