//! The directory lock: one open log per directory.

mod common;

use common::*;
use fastcache_wal::testing::FaultFs;
use fastcache_wal::{Error, SyncPolicy, Wal};

#[test]
fn a_second_open_is_refused_until_the_first_closes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (wal, _) = Wal::open(dir.path(), os_opts(1 << 16, SyncPolicy::Never))?;
    wal.append(b"mine")?;
    match Wal::open(dir.path(), os_opts(1 << 16, SyncPolicy::Never)) {
        Err(Error::Locked { path }) => assert_eq!(path, dir.path().join("LOCK")),
        other => return Err(format!("expected Locked, got {other:?}").into()),
    }
    // Another process is refused too (flock(1) from util-linux).
    let status = std::process::Command::new("flock").arg("-n").arg(dir.path().join("LOCK")).arg("true").status();
    if let Ok(status) = status {
        assert!(!status.success(), "another process took the lock");
    }
    wal.close()?;
    let (wal, report) = Wal::open(dir.path(), os_opts(1 << 16, SyncPolicy::Never))?;
    assert_eq!(report.records, 1);
    wal.close()?;
    Ok(())
}

#[test]
fn dropping_the_last_handle_releases_the_lock() -> TestResult {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 4096, SyncPolicy::Never))?;
    let clone = wal.clone();
    assert!(matches!(Wal::open(&wal_dir(), fault_opts(&fs, 4096, SyncPolicy::Never)), Err(Error::Locked { .. })));
    drop(wal);
    assert!(matches!(Wal::open(&wal_dir(), fault_opts(&fs, 4096, SyncPolicy::Never)), Err(Error::Locked { .. })));
    drop(clone);
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 4096, SyncPolicy::Never))?;
    // A reader keeps the mapping, and with it the lock, past close.
    let reader = wal.reader(0)?;
    wal.close()?;
    assert!(matches!(Wal::open(&wal_dir(), fault_opts(&fs, 4096, SyncPolicy::Never)), Err(Error::Locked { .. })));
    drop(reader);
    Wal::open(&wal_dir(), fault_opts(&fs, 4096, SyncPolicy::Never))?.0.close()?;
    Ok(())
}
