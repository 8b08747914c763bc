//! Sync policies: group commit under `Always`, a drift-free schedule under
//! `Interval`, `Never`, explicit syncs and what survives a power cut.

mod common;

use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use common::*;
use fastcache_wal::testing::FaultFs;
use fastcache_wal::{SyncPolicy, Wal};

const LIMIT: Duration = Duration::from_secs(10);

#[test]
fn always_futures_are_released_together_by_one_sync() -> TestResult {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 1 << 20, SyncPolicy::Always))?;
    let mut lsns = Vec::new();
    for i in 0..64u64 {
        lsns.push(wal.append(&payload(i + 1, 0))?);
    }
    assert_eq!(wal.durable_lsn(), 0, "appending alone does not sync");
    let wakes = Arc::new(WakeCounter::default());
    let mut futures: Vec<_> = lsns.iter().map(|&l| wal.wait_durable(l)).collect();
    // Register every waiter before the syncer runs (it needs the lock we
    // take in poll, but may win the race for the first few: those resolve).
    let pending = futures.iter_mut().map(|f| poll_once(f, &wakes).is_pending()).filter(|p| *p).count();
    // Let the sync finish before anything re-polls the futures: a re-poll
    // replaces the registered waker, and then the counter above would never
    // see the wake-up this test is about. Wakers run just after
    // `durable_lsn` moves, so allow them a moment.
    wal.wait_durable_blocking(64)?;
    let deadline = Instant::now() + LIMIT;
    while wakes.0.load(std::sync::atomic::Ordering::SeqCst) < pending.min(1) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    for f in futures {
        block_on(f, LIMIT).ok_or("future did not resolve")??;
    }
    let stats = wal.stats();
    assert_eq!(stats.durable_lsn, 64);
    assert!(stats.syncs <= 2, "{} syncs for 64 waiters", stats.syncs);
    assert!(
        stats.group_commit_records.counts[6] >= 1,
        "one sync covered ~64 records: {:?}",
        stats.group_commit_records
    );
    assert!(wakes.0.load(std::sync::atomic::Ordering::SeqCst) >= pending.min(1), "pending waiters were woken");
    // A future for an LSN that is already durable is ready at once.
    assert!(matches!(poll_once(&mut wal.wait_durable(10), &wakes), Poll::Ready(Ok(()))));
    wal.close()?;
    Ok(())
}

#[test]
fn always_wait_durable_on_the_real_disk() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (wal, _) = Wal::open(dir.path(), os_opts(1 << 20, SyncPolicy::Always))?;
    for i in 1..=20 {
        let lsn = wal.append(format!("set k{i}").as_bytes())?;
        block_on(wal.wait_durable(lsn), LIMIT).ok_or("timeout")??;
        assert!(wal.durable_lsn() >= lsn);
    }
    wal.close()?;
    Ok(())
}

#[test]
fn blocking_waiters_on_four_threads_share_syncs() -> TestResult {
    let fs = FaultFs::new();
    fs.set_sync_delay(Duration::from_millis(1));
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 1 << 20, SyncPolicy::Always))?;
    let per_thread = 150;
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let wal = wal.clone();
            std::thread::spawn(move || -> fastcache_wal::Result<()> {
                for i in 0..per_thread {
                    let lsn = wal.append(format!("{t}-{i}").as_bytes())?;
                    wal.wait_durable_blocking(lsn)?;
                    assert!(wal.durable_lsn() >= lsn);
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| "thread panicked")??;
    }
    let stats = wal.stats();
    assert_eq!(stats.durable_lsn, 4 * per_thread);
    assert!(stats.syncs < 4 * per_thread, "group commit: {} syncs for {} waits", stats.syncs, 4 * per_thread);
    wal.close()?;
    Ok(())
}

#[test]
fn interval_waiters_resolve_at_the_next_tick() -> TestResult {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 1 << 20, SyncPolicy::Interval(Duration::from_millis(50))))?;
    let lsn = wal.append(b"x")?;
    let started = Instant::now();
    block_on(wal.wait_durable(lsn), LIMIT).ok_or("timeout")??;
    assert!(started.elapsed() < Duration::from_secs(2));
    let lsn = wal.append(b"y")?;
    wal.wait_durable_blocking(lsn)?;
    assert!(wal.durable_lsn() >= lsn);
    wal.close()?;
    Ok(())
}

#[test]
fn interval_schedule_does_not_drift_with_slow_syncs() -> TestResult {
    // Syncs take ~20 ms; ticks every 25 ms. A schedule that waits a full
    // period *after* each sync would tick every ~45 ms (≈ 22 per second).
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 1 << 20, SyncPolicy::Interval(Duration::from_millis(25))))?;
    fs.set_sync_delay(Duration::from_millis(20));
    let started = Instant::now();
    let run = Duration::from_millis(1000);
    let mut n = 0u64;
    while started.elapsed() < run {
        n += 1;
        wal.append(&n.to_le_bytes())?;
        std::thread::sleep(Duration::from_millis(1));
    }
    let syncs = wal.stats().syncs;
    // 40 ticks in a second; allow for a loaded 2-core machine.
    assert!(syncs >= 31, "{syncs} syncs in {run:?} with a 25 ms interval");
    fs.set_sync_delay(Duration::ZERO);
    wal.close()?;
    Ok(())
}

#[test]
fn never_resolves_waiters_at_once_and_syncs_on_rotation_and_close() -> TestResult {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 4096, SyncPolicy::Never))?;
    let lsn = wal.append(b"first")?;
    let wakes = Arc::new(WakeCounter::default());
    assert!(matches!(poll_once(&mut wal.wait_durable(lsn), &wakes), Poll::Ready(Ok(()))));
    wal.wait_durable_blocking(lsn)?;
    assert_eq!(wal.durable_lsn(), 0, "nothing was synced");
    // Fill more than one segment: the rotation syncs the full one.
    let mut last = lsn;
    while wal.stats().rotations < 1 {
        last = wal.append(&[7u8; 100])?;
    }
    let deadline = Instant::now() + LIMIT;
    while wal.durable_lsn() < last - 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(wal.durable_lsn() >= last - 1, "the background syncer flushed the full segment");
    let crashed = fs.crash();
    let (reopened, report) = Wal::open(&wal_dir(), fault_opts(&crashed, 4096, SyncPolicy::Never))?;
    assert!(report.last_lsn >= last - 1, "records of the rotated segment survived the power cut");
    reopened.close()?;
    // Close syncs everything.
    wal.append(b"last words")?;
    let total = wal.last_lsn();
    wal.close()?;
    let (wal, report) = Wal::open(&wal_dir(), fault_opts(&fs.crash(), 4096, SyncPolicy::Never))?;
    assert_eq!(report.last_lsn, total);
    wal.close()?;
    Ok(())
}

#[test]
fn explicit_sync_survives_a_power_cut_and_unsynced_records_do_not_appear_corrupt() -> TestResult {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 1 << 16, SyncPolicy::Never))?;
    for i in 1..=10 {
        wal.append(&payload(i, 2))?;
    }
    assert_eq!(wal.sync()?, 10);
    for i in 11..=20 {
        wal.append(&payload(i, 2))?;
    }
    let crashed = fs.crash();
    drop(wal);
    let (wal, report) = Wal::open(&wal_dir(), fault_opts(&crashed, 1 << 16, SyncPolicy::Never))?;
    assert!(report.records >= 10);
    let all = read_all(&wal)?;
    for (lsn, p) in &all {
        assert_eq!(p, &payload(*lsn, 2));
    }
    wal.close()?;
    Ok(())
}

#[test]
fn a_leading_future_syncs_on_the_polling_thread() -> TestResult {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 1 << 20, SyncPolicy::Always))?;
    let wakes = Arc::new(WakeCounter::default());
    for i in 1..=10u64 {
        let lsn = wal.append(&payload(i, 0))?;
        let syncs = fs.sync_count();
        // No sync runs: the first poll makes the record durable itself.
        assert!(matches!(poll_once(&mut wal.wait_durable_leading(lsn), &wakes), Poll::Ready(Ok(()))));
        assert!(wal.durable_lsn() >= lsn);
        assert!(fs.sync_count() > syncs, "the poll synced");
    }
    assert_eq!(wal.stats().syncs, 10);
    // Already durable: ready without a sync.
    let syncs = fs.sync_count();
    assert!(matches!(poll_once(&mut wal.wait_durable_leading(3), &wakes), Poll::Ready(Ok(()))));
    assert_eq!(fs.sync_count(), syncs);
    wal.close()?;
    Ok(())
}

#[test]
fn a_leader_that_finds_a_sync_running_is_woken_when_it_ends() -> TestResult {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 1 << 20, SyncPolicy::Always))?;
    // Syncs take 1 ms, under the leading limit, until the slow one below.
    fs.set_sync_delay(Duration::from_millis(1));
    let lsn = wal.append(&payload(1, 0))?;
    wal.wait_durable_blocking(lsn)?;
    // The scenario needs the second record appended while the first sync
    // runs; a slow machine may miss that window, so try a few times.
    for attempt in 0..10u64 {
        fs.set_sync_delay(Duration::from_millis(300));
        let first = wal.append(&payload(2 + 2 * attempt, 0))?;
        let other = wal.clone();
        let syncing = std::thread::spawn(move || other.wait_durable_blocking(first));
        std::thread::sleep(Duration::from_millis(50));
        let second = wal.append(&payload(3 + 2 * attempt, 0))?;
        let wakes = Arc::new(WakeCounter::default());
        let mut leader = wal.wait_durable_leading(second);
        let first_poll = poll_once(&mut leader, &wakes);
        syncing.join().map_err(|_| "thread panicked")??;
        fs.set_sync_delay(Duration::from_millis(1));
        match first_poll {
            // We got the lock first: we led (the scenario did not happen).
            Poll::Ready(r) => {
                r?;
                continue;
            }
            Poll::Pending => {
                // The running sync ended: we are woken whether or not it
                // covered `second` (no syncer is asked to sync it).
                let deadline = Instant::now() + LIMIT;
                while wakes.0.load(std::sync::atomic::Ordering::SeqCst) == 0 && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(1));
                }
                assert!(wakes.0.load(std::sync::atomic::Ordering::SeqCst) >= 1, "the leader was woken");
                // Covered by that sync, or made durable by the next (after a
                // 300 ms sync by the syncer thread, see the test below).
                block_on(leader, LIMIT).ok_or("the leader did not resolve")??;
                assert!(wal.durable_lsn() >= second);
                wal.close()?;
                return Ok(());
            }
        }
    }
    Err("no attempt appended during a running sync".into())
}

#[test]
fn leading_waiters_on_four_threads_share_syncs() -> TestResult {
    let fs = FaultFs::new();
    fs.set_sync_delay(Duration::from_millis(1));
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 1 << 20, SyncPolicy::Always))?;
    let per_thread = 150;
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let wal = wal.clone();
            std::thread::spawn(move || -> fastcache_wal::Result<()> {
                for i in 0..per_thread {
                    let lsn = wal.append(format!("{t}-{i}").as_bytes())?;
                    match block_on(wal.wait_durable_leading(lsn), LIMIT) {
                        Some(r) => r?,
                        None => panic!("a leading wait for {lsn} never resolved"),
                    }
                    assert!(wal.durable_lsn() >= lsn);
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| "thread panicked")??;
    }
    let stats = wal.stats();
    assert_eq!(stats.durable_lsn, 4 * per_thread);
    assert!(stats.syncs < 4 * per_thread, "group commit: {} syncs for {} waits", stats.syncs, 4 * per_thread);
    wal.close()?;
    Ok(())
}

#[test]
fn after_a_slow_sync_a_leading_future_leaves_the_sync_to_the_syncer() -> TestResult {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 1 << 20, SyncPolicy::Always))?;
    fs.set_sync_delay(Duration::from_millis(20));
    let lsn = wal.append(&payload(1, 0))?;
    wal.wait_durable_blocking(lsn)?;
    assert!(wal.stats().last_sync_duration >= Duration::from_millis(20));
    // The disk is slow: the first poll does not sync on this thread.
    let lsn = wal.append(&payload(2, 0))?;
    let wakes = Arc::new(WakeCounter::default());
    let mut f = wal.wait_durable_leading(lsn);
    let started = Instant::now();
    let first = poll_once(&mut f, &wakes);
    assert!(first.is_pending() || started.elapsed() < Duration::from_millis(20), "did not sync in the poll");
    block_on(f, LIMIT).ok_or("the syncer did not make it durable")??;
    assert!(wal.durable_lsn() >= lsn);
    wal.close()?;
    Ok(())
}

#[test]
fn a_leading_future_reports_a_failed_sync_and_the_log_is_poisoned() -> TestResult {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 1 << 20, SyncPolicy::Always))?;
    let lsn = wal.append(&payload(1, 0))?;
    fs.fail_all_syncs(true);
    let wakes = Arc::new(WakeCounter::default());
    assert!(matches!(poll_once(&mut wal.wait_durable_leading(lsn), &wakes), Poll::Ready(Err(_))));
    assert!(wal.poisoned().is_some());
    // Never retried: a later leader gets the poison, not a second sync.
    let syncs = fs.sync_count();
    let r = block_on(wal.wait_durable_leading(lsn), LIMIT).ok_or("timeout")?;
    assert!(matches!(r, Err(fastcache_wal::Error::Poisoned { .. })), "{r:?}");
    assert_eq!(fs.sync_count(), syncs);
    assert!(wal.append(&payload(2, 0)).is_err());
    Ok(())
}
