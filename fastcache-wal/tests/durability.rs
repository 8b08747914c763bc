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
