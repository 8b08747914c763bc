//! `Wal::restart_after`: a log continues after an LSN a snapshot covers —
//! healing a poisoned log in place, with appenders, waiters and readers
//! around, and crash-safe at every step.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use common::*;
use fastcache_wal::testing::FaultFs;
use fastcache_wal::{Error, Lsn, SyncPolicy, Wal, WalOptions};

/// Appends `n` records after the current end; returns the last LSN.
fn fill(wal: &Wal, n: u64, salt: u64) -> fastcache_wal::Result<Lsn> {
    let mut last = wal.last_lsn();
    for _ in 0..n {
        last = wal.append(&payload(last + 1, salt))?;
    }
    Ok(last)
}

/// Poisons the log with a failed sync of the records appended last. (Every
/// sync fails meanwhile: the syncer sealing a segment, or the preallocator
/// syncing a spare, may run into the failure first.)
fn poison_by_failed_sync(wal: &Wal, fs: &FaultFs) -> TestResult {
    fs.fail_all_syncs(true);
    let synced = wal.sync();
    fs.fail_all_syncs(false);
    if synced.is_ok() {
        return Err("the sync should have failed".into());
    }
    let cause = wal.poisoned().ok_or("not poisoned")?;
    assert!(cause.contains("injected sync failure"), "{cause}");
    Ok(())
}

#[test]
fn a_poisoned_log_heals_and_continues_after_the_snapshot_lsn() -> TestResult {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 4096, SyncPolicy::Always))?;
    let durable = fill(&wal, 120, 1)?;
    wal.wait_durable_blocking(durable)?;
    fill(&wal, 5, 1)?;
    poison_by_failed_sync(&wal, &fs)?;
    assert!(fault_segments(&fs).len() > 2, "the old log spans several segments");
    assert!(matches!(wal.append(b"refused"), Err(Error::Poisoned { .. })));

    // The server's snapshot covers everything appended, durable or not.
    let snapshot = wal.last_lsn();
    wal.restart_after(snapshot)?;
    assert_eq!(wal.poisoned(), None);
    assert_eq!((wal.last_lsn(), wal.durable_lsn()), (snapshot, snapshot));
    assert_eq!(fault_segments(&fs), vec![wal_dir().join(format!("{:020}.wal", snapshot + 1))]);
    assert_eq!(read_all(&wal)?, vec![], "the old records are gone");

    // Appends continue at snapshot + 1, across rotations, and become durable.
    let mut fresh = Vec::new();
    for i in 0..40 {
        let lsn = wal.append(&payload(snapshot + 1 + i, 2))?;
        fresh.push((lsn, payload(lsn, 2)));
    }
    assert_eq!(fresh.first().map(|r| r.0), Some(snapshot + 1));
    let last = wal.append_batch(&[b"batch-a", b"batch-b"])?;
    fresh.push((last - 1, b"batch-a".to_vec()));
    fresh.push((last, b"batch-b".to_vec()));
    wal.wait_durable_blocking(last)?;
    assert_eq!(block_on(wal.wait_durable(last), Duration::from_secs(5)).transpose()?, Some(()));
    assert_eq!(read_all(&wal)?, fresh);
    assert!(wal.stats().rotations > 0);

    // A power cut now: the durable image holds exactly the new records.
    let image = fs.crash();
    drop(wal);
    let (wal, report) = Wal::open(&wal_dir(), fault_opts(&image, 4096, SyncPolicy::Always))?;
    assert_eq!((report.first_lsn, report.last_lsn, report.records), (snapshot + 1, last, fresh.len() as u64));
    assert_eq!((report.truncated_bytes, report.gap_after), (0, None));
    assert_eq!(read_all(&wal)?, fresh);
    assert_eq!(wal.append(b"next")?, last + 1);
    wal.close()?;
    Ok(())
}

#[test]
fn a_healed_log_is_crash_safe_right_after_the_restart() -> TestResult {
    // No record yet: the empty new segment alone says where numbering goes on.
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 4096, SyncPolicy::Never))?;
    let last = fill(&wal, 30, 3)?;
    poison_by_failed_sync(&wal, &fs)?;
    wal.restart_after(last)?;
    let image = fs.crash();
    drop(wal);
    let (wal, report) = Wal::open(&wal_dir(), fault_opts(&image, 4096, SyncPolicy::Never))?;
    assert_eq!((report.records, report.last_lsn), (0, last));
    assert_eq!(wal.append(b"first")?, last + 1);
    wal.close()?;
    Ok(())
}

#[test]
fn a_restart_may_skip_lsns_beyond_the_last_one() -> TestResult {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 4096, SyncPolicy::Never))?;
    let last = fill(&wal, 10, 4)?;
    wal.restart_after(last + 90)?;
    assert_eq!(wal.last_lsn(), last + 90);
    assert_eq!(wal.append(b"after")?, last + 91);
    wal.sync()?;
    drop(wal);
    let (wal, report) = Wal::open(&wal_dir(), fault_opts(&fs.crash(), 4096, SyncPolicy::Never))?;
    assert_eq!((report.first_lsn, report.last_lsn), (last + 91, last + 91));
    wal.close()?;
    Ok(())
}

#[test]
fn a_restart_below_the_last_lsn_is_refused_and_changes_nothing() -> TestResult {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 4096, SyncPolicy::Never))?;
    let last = fill(&wal, 10, 5)?;
    assert!(
        matches!(wal.restart_after(last - 1), Err(Error::RestartBehind { lsn, last: l }) if lsn == last - 1 && l == last)
    );
    assert_eq!(wal.append(b"still healthy")?, last + 1);
    poison_by_failed_sync(&wal, &fs)?;
    let cause = wal.poisoned();
    assert!(matches!(wal.restart_after(0), Err(Error::RestartBehind { .. })));
    assert_eq!(wal.poisoned(), cause, "still poisoned, with the same cause");
    assert_eq!(read_all(&wal)?.len() as u64, last + 1, "nothing was removed");
    drop(wal);
    Ok(())
}

#[test]
fn a_reset_may_go_back_and_reuses_the_lsns_above_it() -> TestResult {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 4096, SyncPolicy::Always))?;
    let last = fill(&wal, 80, 7)?;
    wal.wait_durable_blocking(last)?;
    // A replica adopting a primary's history that ends at LSN 30.
    wal.reset_after(30)?;
    assert_eq!((wal.last_lsn(), wal.durable_lsn()), (30, 30));
    assert_eq!(read_all(&wal)?, vec![], "the old records are gone");
    let again = fill(&wal, 5, 8)?;
    assert_eq!(again, 35);
    wal.wait_durable_blocking(again)?;
    let lsns: Vec<Lsn> = read_all(&wal)?.into_iter().map(|(l, _)| l).collect();
    assert_eq!(lsns, (31..=35).collect::<Vec<_>>());
    // Power cut: the durable image holds exactly the new history.
    let crashed = fs.crash();
    drop(wal);
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&crashed, 4096, SyncPolicy::Always))?;
    let records = read_all(&wal)?;
    assert_eq!(records.iter().map(|(l, _)| *l).collect::<Vec<_>>(), (31..=35).collect::<Vec<_>>());
    assert_eq!(records[0].1, payload(31, 8));
    Ok(())
}

#[test]
fn a_restart_that_cannot_allocate_keeps_the_log_poisoned() -> TestResult {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 4096, SyncPolicy::Always))?;
    let last = fill(&wal, 40, 6)?;
    poison_by_failed_sync(&wal, &fs)?;
    let segments = fault_segments(&fs);

    fs.set_no_space(true);
    assert!(matches!(wal.restart_after(last), Err(Error::NoSpace { .. })));
    let cause = wal.poisoned().ok_or("not poisoned")?;
    assert!(cause.contains("no space"), "the new cause: {cause}");
    match wal.append(b"x") {
        Err(Error::Poisoned { cause: c }) => assert_eq!(c, cause),
        other => return Err(format!("expected Poisoned, got {other:?}").into()),
    }
    assert_eq!(fault_segments(&fs), segments, "nothing removed before the new segment's file existed");
    assert_eq!(read_all(&wal)?.len() as u64, last, "reads go on");

    // Once there is space again, the same call heals it.
    fs.set_no_space(false);
    wal.restart_after(last)?;
    assert_eq!(wal.append(b"y")?, last + 1);
    wal.close()?;
    Ok(())
}

#[test]
fn a_restart_interrupted_at_any_sync_leaves_a_log_that_opens() -> TestResult {
    // A restart syncs the new file, the directory after each removal, the
    // directory after the rename and the new header. Fail each in turn, cut
    // the power, and open the way the server does (min_next_lsn = L + 1).
    for k in 0.. {
        let fs = FaultFs::new();
        let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 4096, SyncPolicy::Never))?;
        let durable = fill(&wal, 40, 7)?;
        wal.sync()?;
        let last = fill(&wal, 10, 7)?;
        poison_by_failed_sync(&wal, &fs)?;
        // Let the preallocator finish its spare, so the k-th sync is the restart's.
        wait_for_quiet(&fs);
        fs.fail_sync_in(k, false);
        let restarted = wal.restart_after(last);
        let image = fs.crash();
        drop(wal);

        // Whatever the step, the old log left is a suffix of what was
        // durable, and the server's open continues after L.
        let opts = WalOptions { min_next_lsn: last + 1, ..fault_opts(&image, 4096, SyncPolicy::Never) };
        let (wal, report) = Wal::open(&wal_dir(), opts)?;
        assert_eq!(report.last_lsn, last, "step {k}");
        let records = read_all(&wal)?;
        if let (Some(first), Some(end)) = (records.first(), records.last()) {
            assert!(restarted.is_err(), "step {k}: old records survived a restart that succeeded");
            assert_eq!(end.0, durable, "step {k}: a suffix of the durable log");
            for (i, (lsn, p)) in records.iter().enumerate() {
                assert_eq!((*lsn, p), (first.0 + i as u64, &payload(*lsn, 7)), "step {k}");
            }
        }
        assert_eq!(wal.append(b"after")?, last + 1, "step {k}");
        wal.close()?;
        if restarted.is_ok() {
            assert!(k >= 4, "a restart makes at least four syncs");
            break;
        }
        assert!(k < 100, "the restart never succeeded");
    }
    Ok(())
}

/// Waits until the background threads make no more syncs (the
/// preallocator may be finishing a spare), so the next sync is ours.
fn wait_for_quiet(fs: &FaultFs) {
    let mut seen = fs.sync_count();
    for _ in 0..100 {
        std::thread::sleep(Duration::from_millis(10));
        let now = fs.sync_count();
        if now == seen {
            return;
        }
        seen = now;
    }
}

#[test]
fn a_failed_restart_can_be_retried() -> TestResult {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 4096, SyncPolicy::Never))?;
    let last = fill(&wal, 80, 8)?;
    poison_by_failed_sync(&wal, &fs)?;
    assert!(fault_segments(&fs).len() >= 2);
    // The directory sync after the second removal fails: one old segment
    // is gone, the others are still there.
    wait_for_quiet(&fs);
    fs.fail_sync_in(2, false);
    let err = wal.restart_after(last).err().ok_or("the restart should have failed")?;
    assert_eq!(wal.poisoned(), Some(err.to_string()));
    assert!(matches!(wal.append(b"x"), Err(Error::Poisoned { .. })));
    wal.restart_after(last)?;
    assert_eq!(wal.append(b"y")?, last + 1);
    assert_eq!(fault_segments(&fs).len(), 1);
    wal.close()?;
    Ok(())
}

#[test]
fn waiters_for_records_the_old_log_never_synced_fail_with_the_poison() -> TestResult {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 1 << 16, SyncPolicy::Always))?;
    let synced = wal.append(b"synced")?;
    wal.wait_durable_blocking(synced)?;
    let lost = wal.append(b"never synced")?;
    // Created before the failure, polled only after the restart.
    let early = wal.wait_durable(lost);
    poison_by_failed_sync(&wal, &fs)?;
    let cause = wal.poisoned().ok_or("not poisoned")?;
    wal.restart_after(lost)?;

    let is_old_poison =
        |r: Option<fastcache_wal::Result<()>>| matches!(r, Some(Err(Error::Poisoned { cause: ref c })) if *c == cause);
    assert!(is_old_poison(block_on(early, Duration::from_secs(5))));
    assert!(is_old_poison(block_on(wal.wait_durable(lost), Duration::from_secs(5))), "also when created after");
    assert!(matches!(wal.wait_durable_blocking(lost), Err(Error::Poisoned { cause: c }) if c == cause));
    // What the old log did make durable stays durable.
    assert_eq!(block_on(wal.wait_durable(synced), Duration::from_secs(5)).transpose()?, Some(()));
    wal.wait_durable_blocking(synced)?;
    // The new log's records: the syncer is back at work.
    let fresh = wal.append(b"fresh")?;
    assert_eq!(fresh, lost + 1);
    assert_eq!(block_on(wal.wait_durable(fresh), Duration::from_secs(5)).transpose()?, Some(()));
    assert_eq!(wal.durable_lsn(), fresh);
    wal.close()?;
    Ok(())
}

#[test]
fn restarting_a_healthy_log_fails_its_unsynced_waiters_with_discarded() -> TestResult {
    let fs = FaultFs::new();
    let opts = fault_opts(&fs, 1 << 16, SyncPolicy::Interval(Duration::from_secs(3600)));
    let (wal, _) = Wal::open(&wal_dir(), opts)?;
    let lsn = wal.append(b"unsynced")?;
    let mut fut = wal.wait_durable(lsn);
    let wakes = Arc::new(WakeCounter::default());
    if let Poll::Ready(r) = poll_once(&mut fut, &wakes) {
        return Err(format!("resolved before any sync: {r:?}").into());
    }
    wal.restart_after(lsn + 5)?;
    assert!(wakes.0.load(Ordering::SeqCst) > 0, "a registered waiter is woken by the restart");
    for r in [poll_once(&mut fut, &wakes), Poll::Ready(wal.wait_durable_blocking(lsn))] {
        match r {
            Poll::Ready(Err(Error::Discarded { lsn: l, restarted_after })) => {
                assert_eq!((l, restarted_after), (lsn, lsn + 5))
            }
            other => return Err(format!("expected Discarded, got {other:?}").into()),
        }
    }
    wal.close()?;
    Ok(())
}

#[test]
fn a_restart_during_concurrent_appends_never_hands_out_an_lsn_at_or_below_it() -> TestResult {
    for policy in [SyncPolicy::Always, SyncPolicy::Never] {
        let fs = FaultFs::new();
        let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 4096, policy))?;
        fill(&wal, 20, 9)?;
        poison_by_failed_sync(&wal, &fs)?;
        let snapshot = wal.last_lsn();
        let refused = Arc::new(AtomicU64::new(0));
        let appenders: Vec<_> = (0..2)
            .map(|t| {
                let (wal, refused) = (wal.clone(), refused.clone());
                std::thread::spawn(move || -> fastcache_wal::Result<Vec<Lsn>> {
                    let mut got = Vec::new();
                    while got.len() < 300 {
                        match wal.append(format!("t{t}-{}", got.len()).as_bytes()) {
                            Ok(lsn) => got.push(lsn),
                            Err(Error::Poisoned { .. }) => {
                                refused.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    Ok(got)
                })
            })
            .collect();
        // Both threads are hammering the poisoned log when it heals.
        while refused.load(Ordering::Relaxed) < 100 {
            std::thread::yield_now();
        }
        wal.restart_after(snapshot)?;
        let mut all = Vec::new();
        for a in appenders {
            all.extend(a.join().map_err(|_| "appender panicked")??);
        }
        all.sort_unstable();
        let want: Vec<Lsn> = (snapshot + 1..=snapshot + all.len() as u64).collect();
        assert_eq!(all, want, "{policy:?}: every LSN handed out is above the restart LSN, none twice");
        let read: Vec<Lsn> = read_all(&wal)?.into_iter().map(|r| r.0).collect();
        assert_eq!(read, want);
        wal.close()?;
    }
    Ok(())
}

#[test]
fn a_restart_of_a_healthy_log_under_concurrent_appends() -> TestResult {
    // Appenders never fail here: an LSN at or below the restart LSN was
    // handed out before the restart, and one handed out to a call that
    // began after it returned is above it.
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 4096, SyncPolicy::Never))?;
    let restarted = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let appenders: Vec<_> = (0..2)
        .map(|_| {
            let (wal, restarted, stop) = (wal.clone(), restarted.clone(), stop.clone());
            std::thread::spawn(move || -> fastcache_wal::Result<Vec<(bool, Lsn)>> {
                let mut got = Vec::new();
                for i in 0..1_000_000u32 {
                    if stop.load(Ordering::Acquire) {
                        break;
                    }
                    let after = restarted.load(Ordering::Acquire);
                    got.push((after, wal.append(&i.to_le_bytes())?));
                }
                Ok(got)
            })
        })
        .collect();
    while wal.last_lsn() < 1000 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let snapshot = loop {
        let at = wal.last_lsn() + 1000;
        match wal.restart_after(at) {
            Ok(()) => break at,
            Err(Error::RestartBehind { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    };
    restarted.store(true, Ordering::Release);
    while wal.last_lsn() < snapshot + 1000 {
        std::thread::sleep(Duration::from_millis(1));
    }
    stop.store(true, Ordering::Release);
    let (mut below, mut above) = (Vec::new(), Vec::new());
    for a in appenders {
        for (after, lsn) in a.join().map_err(|_| "appender panicked")?? {
            assert!(!(after && lsn <= snapshot), "LSN {lsn} handed out after restart_after({snapshot}) returned");
            if lsn <= snapshot {
                below.push(lsn);
            } else {
                above.push(lsn);
            }
        }
    }
    // Each LSN once: 1..=old last before the restart, snapshot + 1.. after.
    below.sort_unstable();
    above.sort_unstable();
    assert_eq!(below, (1..=below.len() as u64).collect::<Vec<_>>());
    assert!(!above.is_empty(), "appends went on after the restart");
    let want: Vec<Lsn> = (snapshot + 1..=snapshot + above.len() as u64).collect();
    assert_eq!(above, want);
    let read: Vec<Lsn> = wal.reader(snapshot + 1)?.map(|r| r.map(|r| r.0)).collect::<Result<_, _>>()?;
    assert_eq!(read, want);
    wal.close()?;
    Ok(())
}

#[test]
fn readers_across_a_restart() -> TestResult {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 1 << 16, SyncPolicy::Never))?;
    let last = fill(&wal, 10, 10)?;
    let mut caught_up = wal.reader(1)?;
    assert_eq!(caught_up.by_ref().count() as u64, last);
    let mut lagging = wal.reader(1)?;
    assert_eq!(lagging.by_ref().take(4).count(), 4);

    wal.restart_after(last + 5)?;
    let a = wal.append(b"a")?;
    let b = wal.append(b"b")?;
    assert_eq!((a, b), (last + 6, last + 7));
    let lsns = |r: fastcache_wal::Reader| r.map(|r| r.map(|r| r.0)).collect::<fastcache_wal::Result<Vec<Lsn>>>();

    // A reader that had read the whole old log steps over the gap.
    assert_eq!(lsns(caught_up)?, vec![a, b]);
    // One that had not reads the rest of its (still mapped) segment first.
    assert_eq!(lsns(lagging)?, (5..=last).chain([a, b]).collect::<Vec<_>>());
    // New readers: the old records are gone, the skipped LSNs lead to the first new one.
    assert_eq!(lsns(wal.reader(0)?)?, vec![a, b]);
    assert_eq!(lsns(wal.reader(last + 1)?)?, vec![a, b]);
    assert_eq!(lsns(wal.reader(last + 6)?)?, vec![a, b]);
    assert_eq!(lsns(wal.reader(b)?)?, vec![b]);
    assert!(matches!(wal.reader(last), Err(Error::LsnUnavailable { .. })));
    assert!(matches!(wal.reader(1), Err(Error::LsnUnavailable { .. })));
    wal.close()?;
    Ok(())
}

#[test]
fn a_reader_behind_unwritten_records_learns_they_are_gone() -> TestResult {
    // Under `Always` appends are buffered until a sync; a poisoned log
    // never wrote them, so a reader cannot step from the old log's written
    // end into the new log.
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 1 << 16, SyncPolicy::Always))?;
    let written = fill(&wal, 5, 11)?;
    wal.sync()?;
    let mut reader = wal.reader(1)?;
    assert_eq!(reader.by_ref().count() as u64, written);
    fs.set_fail_writes(true);
    let last = fill(&wal, 3, 11)?;
    assert!(wal.sync().is_err());
    fs.set_fail_writes(false);
    wal.restart_after(last)?;
    wal.append(b"new")?;
    assert!(matches!(reader.next(), Some(Err(Error::LsnUnavailable { lsn, .. })) if lsn == written + 1));
    wal.close()?;
    Ok(())
}

#[test]
fn restart_after_on_the_real_file_system() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("wal");
    let (wal, _) = Wal::open(&dir, os_opts(1 << 16, SyncPolicy::Always))?;
    let mut last = 0;
    for i in 0..2000u64 {
        last = wal.append(&payload(i, 12))?;
    }
    wal.wait_durable_blocking(last)?;
    assert!(segment_files(&dir).len() > 2);
    wal.restart_after(last)?;
    assert_eq!(segment_files(&dir), vec![dir.join(format!("{:020}.wal", last + 1))]);
    let a = wal.append(b"after restart")?;
    wal.wait_durable_blocking(a)?;
    wal.close()?;
    let (wal, report) = Wal::open(&dir, os_opts(1 << 16, SyncPolicy::Always))?;
    assert_eq!((report.first_lsn, report.last_lsn, report.records), (a, a, 1));
    assert_eq!(read_all(&wal)?, vec![(a, b"after restart".to_vec())]);
    wal.close()?;
    Ok(())
}
