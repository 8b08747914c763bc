//! Failure to persist is loud: a failed sync, write or allocation poisons
//! the log; a full disk and a vanished directory are typed errors.

mod common;

use std::task::Poll;
use std::time::Duration;

use common::*;
use fastcache_wal::testing::FaultFs;
use fastcache_wal::{Error, SyncPolicy, Wal, WalOptions, WriteMode};

#[test]
fn a_failed_sync_poisons_the_log_and_is_never_retried() -> TestResult {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 1 << 16, SyncPolicy::Always))?;
    let a = wal.append(b"durable")?;
    wal.wait_durable_blocking(a)?;
    let b = wal.append(b"lost")?;
    fs.fail_sync_in(0, false);
    assert!(matches!(wal.sync(), Err(Error::Io { op: "msync segment", .. })));
    let cause = wal.poisoned().ok_or("not poisoned")?;
    assert!(cause.contains("injected sync failure"), "{cause}");
    let syncs = fs.sync_count();
    // Everything that would write or sync now refuses, without touching the disk.
    assert!(matches!(wal.append(b"x"), Err(Error::Poisoned { .. })));
    assert!(matches!(wal.append_batch(&[b"x", b"y"]), Err(Error::Poisoned { .. })));
    assert!(matches!(wal.sync(), Err(Error::Poisoned { .. })));
    assert!(matches!(wal.wait_durable_blocking(b), Err(Error::Poisoned { .. })));
    assert!(matches!(block_on(wal.wait_durable(b), Duration::from_secs(5)), Some(Err(Error::Poisoned { .. }))));
    assert_eq!(fs.sync_count(), syncs, "no sync was retried");
    assert_eq!(wal.durable_lsn(), a);
    assert_eq!(wal.stats().poisoned, Some(cause));
    // Reads go on.
    assert_eq!(read_all(&wal)?.len(), 2);
    assert!(matches!(wal.close(), Err(Error::Poisoned { .. })));
    // Reopening (the server's "fresh start") works once the disk is healthy.
    let (wal, report) = Wal::open(&wal_dir(), fault_opts(&fs.crash(), 1 << 16, SyncPolicy::Always))?;
    assert!(report.records >= 1);
    assert!(wal.poisoned().is_none());
    wal.close()?;
    Ok(())
}

#[test]
fn a_failed_write_poisons_the_log() -> TestResult {
    // Unbuffered writes (`pwrite` per append): the append itself fails.
    let fs = FaultFs::new();
    let opts = WalOptions { write_mode: WriteMode::File, ..fault_opts(&fs, 1 << 16, SyncPolicy::Never) };
    let (wal, _) = Wal::open(&wal_dir(), opts)?;
    let a = wal.append(b"kept")?;
    wal.sync()?;
    fs.set_fail_writes(true);
    assert!(matches!(wal.append(b"lost"), Err(Error::Io { op: "write record", .. })));
    fs.set_fail_writes(false);
    assert!(matches!(wal.append(b"x"), Err(Error::Poisoned { .. })), "a healed disk does not un-poison");
    assert_eq!(wal.last_lsn(), a, "the failed record took no LSN");
    drop(wal);
    let (wal, report) = Wal::open(&wal_dir(), fault_opts(&fs.crash(), 1 << 16, SyncPolicy::Always))?;
    assert_eq!(report.records, 1);
    wal.close()?;
    Ok(())
}

#[test]
fn a_failed_write_of_buffered_appends_poisons_the_log() -> TestResult {
    // `Always` buffers appends; the sync's one `pwrite` fails, so the
    // records it should have covered are never reported durable.
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 1 << 16, SyncPolicy::Always))?;
    let a = wal.append(b"kept")?;
    wal.wait_durable_blocking(a)?;
    fs.set_fail_writes(true);
    let b = wal.append(b"lost")?;
    assert_eq!(b, a + 1, "a buffered append takes its LSN");
    assert!(matches!(wal.wait_durable_blocking(b), Err(Error::Io { op: "write record", .. })));
    fs.set_fail_writes(false);
    assert!(matches!(wal.append(b"x"), Err(Error::Poisoned { .. })), "a healed disk does not un-poison");
    assert!(matches!(wal.wait_durable_blocking(b), Err(Error::Poisoned { .. })));
    assert_eq!(wal.durable_lsn(), a);
    drop(wal);
    let (wal, report) = Wal::open(&wal_dir(), fault_opts(&fs.crash(), 1 << 16, SyncPolicy::Always))?;
    assert_eq!(report.records, 1);
    wal.close()?;
    Ok(())
}

#[test]
fn pending_waiters_receive_the_failure() -> TestResult {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 1 << 16, SyncPolicy::Always))?;
    let lsn = wal.append(b"doomed")?;
    fs.fail_all_syncs(true);
    let mut fut = wal.wait_durable(lsn);
    let wakes = std::sync::Arc::new(WakeCounter::default());
    if let Poll::Ready(r) = poll_once(&mut fut, &wakes) {
        return Err(format!("resolved before the sync: {r:?}").into());
    }
    match block_on(fut, Duration::from_secs(5)) {
        Some(Err(Error::Poisoned { cause })) => assert!(cause.contains("injected")),
        other => return Err(format!("expected Poisoned, got {other:?}").into()),
    }
    // A blocking waiter for the same LSN fails the same way.
    assert!(matches!(wal.wait_durable_blocking(lsn), Err(Error::Poisoned { .. })));
    drop(wal);
    Ok(())
}

#[test]
fn a_short_write_then_power_cut_leaves_a_valid_prefix() -> TestResult {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 1 << 16, SyncPolicy::Never))?;
    for i in 1..=50 {
        wal.append(&payload(i, 4))?;
    }
    wal.sync()?;
    for i in 51..=300 {
        wal.append(&payload(i, 4))?;
    }
    fs.fail_sync_in(0, true);
    assert!(wal.sync().is_err());
    let crashed = fs.crash();
    drop(wal);
    let (wal, report) = Wal::open(&wal_dir(), fault_opts(&crashed, 1 << 16, SyncPolicy::Never))?;
    assert!(report.records >= 50 && report.records < 300, "{report:?}");
    let all = read_all(&wal)?;
    for (i, (lsn, p)) in all.iter().enumerate() {
        assert_eq!((*lsn, p), (i as u64 + 1, &payload(*lsn, 4)));
    }
    wal.close()?;
    Ok(())
}

#[test]
fn a_full_disk_shows_up_at_rotation_as_no_space() -> TestResult {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 4096, SyncPolicy::Never))?;
    fs.set_no_space(true);
    let mut appended = 0u64;
    let err = loop {
        match wal.append(&[1u8; 500]) {
            Ok(lsn) => appended = lsn,
            Err(e) => break e,
        }
        if appended > 100 {
            return Err("no NoSpace after 100 appends into 4 KiB segments".into());
        }
    };
    assert!(matches!(err, Error::NoSpace { .. }), "{err:?}");
    assert!(wal.poisoned().is_some());
    assert!(matches!(wal.append(b"x"), Err(Error::Poisoned { .. })));
    assert_eq!(read_all(&wal)?.len() as u64, appended, "what was appended before stays readable");
    drop(wal);
    fs.set_no_space(false);
    let (wal, report) = Wal::open(&wal_dir(), fault_opts(&fs, 4096, SyncPolicy::Never))?;
    assert_eq!(report.records, appended, "appended records were kept (the process did not crash)");
    wal.close()?;
    Ok(())
}

#[test]
fn a_full_disk_fails_open_of_a_new_log() {
    let fs = FaultFs::new();
    fs.set_no_space(true);
    assert!(matches!(Wal::open(&wal_dir(), fault_opts(&fs, 4096, SyncPolicy::Never)), Err(Error::NoSpace { .. })));
}

#[test]
fn a_vanished_directory_is_reported() -> TestResult {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 4096, SyncPolicy::Never))?;
    wal.append(b"before")?;
    fs.remove_dir_all(&wal_dir());
    let err = loop {
        if let Err(e) = wal.append(&[0u8; 1000]) {
            break e;
        }
        if wal.last_lsn() > 20 {
            return Err("rotation did not notice the missing directory".into());
        }
    };
    assert!(matches!(err, Error::DirectoryVanished { ref path } if path == &wal_dir()), "{err:?}");
    assert!(wal.poisoned().is_some());
    drop(wal);
    Ok(())
}
