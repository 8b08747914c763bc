//! Crash recovery end to end on real files: snapshot + WAL, fallback from a
//! damaged newest snapshot, and refusal when the log has a gap.

use std::path::Path;

use fastcache_core::{Engine, Record};
use fastcache_recovery::{recover, Error};
use fastcache_snapshot::{SnapshotMeta, SnapshotStore, WriterOptions};
use fastcache_wal::{SyncPolicy, Wal, WalOptions};

fn open_wal(dir: &Path) -> Wal {
    let opts = WalOptions { segment_size: 64 << 10, sync: SyncPolicy::Never, ..WalOptions::default() };
    Wal::open(&dir.join("wal"), opts).expect("open wal").0
}

fn write(engine: &Engine, wal: &Wal, n: usize, tag: &str) {
    let mut s = engine.session();
    for i in 0..n {
        let key = format!("k{}", i % 300);
        let val = format!("{tag}{i}");
        let cmds: [&[&[u8]]; 3] =
            [&[b"SET", key.as_bytes(), val.as_bytes()], &[b"INCR", b"counter"], &[b"RPUSH", b"list", val.as_bytes()]];
        for argv in cmds {
            let mut journal = |r: &Record| {
                wal.append(&r.encode()).map(|_| ()).map_err(|e| fastcache_core::JournalError { message: e.to_string() })
            };
            engine.execute_with(&mut s, argv, &mut journal);
        }
    }
}

fn snapshot(engine: &Engine, wal: &Wal, store: &SnapshotStore) -> u64 {
    let (mut cursor, lsn) = engine.begin_snapshot(|| wal.last_lsn()).expect("no other snapshot");
    let mut w = store.create(SnapshotMeta { lsn, created_unix_ms: lsn }, WriterOptions::default()).expect("create");
    let mut chunk = Vec::new();
    while !cursor.is_done() {
        chunk.clear();
        let n = cursor.fill(&mut chunk, 4096);
        if n > 0 {
            w.write_chunk(&chunk, n).expect("chunk");
        }
    }
    let info = w.finish().expect("finish");
    store.publish(&info).expect("publish");
    lsn
}

fn flip_middle_byte(path: &Path) {
    let mut bytes = std::fs::read(path).expect("read snapshot");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(path, bytes).expect("write snapshot");
}

#[test]
fn snapshot_then_wal_rebuilds_the_exact_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::default();
    let wal = open_wal(dir.path());
    let store = SnapshotStore::open(&dir.path().join("snapshots"), 2).expect("store");
    write(&engine, &wal, 500, "a");
    let lsn = snapshot(&engine, &wal, &store);
    write(&engine, &wal, 200, "b");
    wal.sync().expect("sync");
    let digest = engine.digest();
    drop(wal);

    let copy = Engine::default();
    let wal = open_wal(dir.path());
    let report = recover(&copy, &wal, &store, None, 2, |_| {}).expect("recover");
    assert_eq!(report.snapshot.as_ref().map(|s| s.lsn), Some(lsn));
    assert_eq!(report.wal.records, 600, "only the records after the snapshot");
    assert_eq!(copy.digest(), digest);
}

#[test]
fn a_damaged_newest_snapshot_falls_back_to_the_previous_one_without_loss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::default();
    let wal = open_wal(dir.path());
    let store = SnapshotStore::open(&dir.path().join("snapshots"), 2).expect("store");
    write(&engine, &wal, 300, "a");
    let older = snapshot(&engine, &wal, &store);
    write(&engine, &wal, 300, "b");
    let newer = snapshot(&engine, &wal, &store);
    write(&engine, &wal, 100, "c");
    wal.sync().expect("sync");
    let digest = engine.digest();
    drop(wal);
    let list = store.list().expect("list");
    assert_eq!(list[0].lsn, newer);
    flip_middle_byte(&list[0].path);

    let copy = Engine::default();
    let wal = open_wal(dir.path());
    let report = recover(&copy, &wal, &store, None, 2, |_| {}).expect("recover");
    assert_eq!(report.skipped.len(), 1, "{report:?}");
    assert_eq!(report.snapshot.as_ref().map(|s| s.lsn), Some(older));
    assert_eq!(copy.digest(), digest, "the longer stretch of WAL makes up for the damaged snapshot");
    // The damaged file is out of the manifest, so retention cannot prefer it.
    assert_eq!(store.list().expect("list").len(), 1);
}

#[test]
fn a_log_that_does_not_reach_back_to_the_snapshot_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::default();
    let wal = open_wal(dir.path());
    let store = SnapshotStore::open(&dir.path().join("snapshots"), 1).expect("store");
    // Enough records for many 64 KiB segments.
    write(&engine, &wal, 3000, "a");
    let lsn = snapshot(&engine, &wal, &store);
    write(&engine, &wal, 3000, "b");
    wal.sync().expect("sync");
    // Lose the WAL right after the snapshot: delete segments below a
    // later LSN.
    let removed = wal.truncate_before(lsn + 5000).expect("truncate");
    assert!(removed > 0);
    drop(wal);
    let copy = Engine::default();
    let wal = open_wal(dir.path());
    match recover(&copy, &wal, &store, None, 2, |_| {}) {
        Err(e @ Error::Gap { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("cannot recover a consistent state"), "{msg}");
        }
        other => panic!("expected a gap error, got {other:?}"),
    }
}

#[test]
fn incremental_backups_newer_than_the_snapshot_shorten_the_replay_and_change_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::default();
    engine.set_change_tracking(true);
    let wal = open_wal(dir.path());
    let store = SnapshotStore::open(&dir.path().join("snapshots"), 2).expect("store");
    let backups = fastcache_backup::BackupDir::open(&dir.path().join("backups"), 2).expect("backups");
    write(&engine, &wal, 200, "a");
    let base = backups.write_full(&engine, || wal.last_lsn(), |_| Ok(())).expect("full backup");
    write(&engine, &wal, 200, "b");
    let snap = snapshot(&engine, &wal, &store);
    write(&engine, &wal, 200, "c");
    let inc = backups.write_incremental(&engine, || wal.last_lsn(), |_| Ok(())).expect("incremental");
    write(&engine, &wal, 50, "d");
    wal.sync().expect("sync");
    let digest = engine.digest();
    let last = wal.last_lsn();
    let (base_lsn, inc_to) = (base.link.to_lsn, inc.link.to_lsn);
    assert!(base_lsn < snap && snap < inc_to, "the snapshot lies inside the incremental");
    drop(wal);

    let with = Engine::default();
    let wal = open_wal(dir.path());
    let report = recover(&with, &wal, &store, Some(&backups), 2, |_| {}).expect("recover with backups");
    assert_eq!(report.backup_lsn, Some(inc_to));
    assert_eq!(report.wal.records, last - inc_to, "only the WAL after the incremental is replayed");
    assert_eq!(with.digest(), digest);
    drop(wal);

    let without = Engine::default();
    let wal = open_wal(dir.path());
    let report = recover(&without, &wal, &store, None, 2, |_| {}).expect("recover without backups");
    assert_eq!(report.backup_lsn, None);
    assert_eq!(without.digest(), digest, "the same state with or without backups");
}

#[test]
fn rewind_rebuilds_the_state_at_an_earlier_lsn_from_an_older_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::default();
    let wal = open_wal(dir.path());
    let store = SnapshotStore::open(&dir.path().join("snapshots"), 2).expect("store");
    write(&engine, &wal, 300, "a");
    let first = snapshot(&engine, &wal, &store);
    write(&engine, &wal, 100, "b");
    // The state to go back to, then more records and a newer snapshot.
    let (fork, digest_at_fork) = (wal.last_lsn(), engine.digest());
    write(&engine, &wal, 100, "c");
    let newer = snapshot(&engine, &wal, &store);
    write(&engine, &wal, 50, "d");
    assert!(newer > fork && first < fork);

    let rebuilt = Engine::default();
    let report = fastcache_recovery::rewind(&rebuilt, &wal, &store, fork, 2).expect("rewind");
    assert_eq!(report.snapshot.as_ref().map(|s| s.lsn), Some(first), "the newest snapshot at or below the fork");
    assert_eq!(report.wal.last_lsn, fork);
    assert_eq!(rebuilt.digest(), digest_at_fork);
    // Rewinding onto an engine that holds other data empties it first.
    write(&rebuilt, &open_wal(&dir.path().join("other")), 10, "x");
    fastcache_recovery::rewind(&rebuilt, &wal, &store, fork, 2).expect("rewind again");
    assert_eq!(rebuilt.digest(), digest_at_fork);
    // Nothing of the log or the snapshots changed.
    assert_eq!(store.list().expect("list").len(), 2);
    assert!(wal.last_lsn() > newer);
}

#[test]
fn rewind_refuses_when_the_log_no_longer_reaches_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let engine = Engine::default();
    let wal = open_wal(dir.path());
    let store = SnapshotStore::open(&dir.path().join("snapshots"), 1).expect("store");
    write(&engine, &wal, 4000, "a");
    let lsn = snapshot(&engine, &wal, &store);
    assert!(wal.truncate_before(lsn + 1).expect("truncate") > 0, "the log spans several segments");
    write(&engine, &wal, 10, "b");
    let target = lsn / 2;
    let err = fastcache_recovery::rewind(&Engine::default(), &wal, &store, target, 2).expect_err("gap");
    assert!(matches!(err, Error::Gap { .. }), "{err}");
}
