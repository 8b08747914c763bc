//! Backup → mutate → incrementals (one taken while other threads write) →
//! restore to each link's LSN, to LSNs and times between links and after
//! the last one (with the WAL), to the latest state: each restored data
//! directory holds exactly the state of the log replayed to that point.
//! Without the WAL, the links' own LSNs still restore and the points
//! between them are refused.

mod lib_common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fastcache_backup::{verify_chain, BackupDir, Error, LinkInfo, Target};
use lib_common::{load_data_dir_state, random_command, restore, History, Node, TestResult, T0};

/// The durability hook a server passes: the log up to `lsn` is made durable.
fn durable(node: &Node) -> impl FnOnce(u64) -> Result<(), String> + '_ {
    move |lsn| node.wal.wait_durable_blocking(lsn).map_err(|e| e.to_string())
}

/// Restores `src` into a fresh directory and checks it against the log.
fn check_restore(node: &History, src: &Path, dest: &Path, target: Target, expected_lsn: u64) -> TestResult {
    let report = restore(src, dest, target, false).map_err(|e| format!("restore to {target}: {e}"))?;
    assert_eq!(report.lsn, expected_lsn, "restore to {target}: {report:?}");
    let (restored, wal_last, wal_records) = load_data_dir_state(dest)?;
    assert_eq!((wal_last, wal_records), (expected_lsn, 0), "restore to {target}: the new WAL continues after it");
    let expected = node.state_at(expected_lsn)?;
    assert_eq!(restored.digest(), expected.digest(), "restore to {target} (LSN {expected_lsn}): state differs");
    assert_eq!(restored.keyspace_info(), expected.keyspace_info(), "restore to {target}");
    assert_eq!(report.keys, restored.keyspace_info().iter().map(|(_, k, _)| *k as u64).sum::<u64>());
    Ok(())
}

#[test]
fn restores_reach_exactly_each_link_and_every_point_between() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let src = tmp.path().join("backup");
    let node = Node::open(&src.join("wal"))?;
    let backups = BackupDir::open(&src, 2)?;

    node.run(1, 1500, false);
    let full = backups.write_full(&node.engine, || node.lsn(), durable(&node))?;
    let mut links: Vec<LinkInfo> = vec![full];

    // Increment 1: quiet. Increment 2: two writers run during it.
    // Increment 3: after FLUSHDBs. Then writes only the WAL holds.
    node.run(2, 700, false);
    links.push(backups.write_incremental(&node.engine, || node.lsn(), durable(&node))?);

    let stop = AtomicBool::new(false);
    let concurrent = std::thread::scope(|scope| -> TestResult<LinkInfo> {
        let writers: Vec<_> = (0..2u64)
            .map(|t| {
                let (node, stop) = (&node, &stop);
                scope.spawn(move || {
                    let mut s = node.engine.session();
                    let mut rng = fastrand::Rng::with_seed(100 + t);
                    let mut n = 0u64;
                    while n < 200_000 && (!stop.load(Ordering::Relaxed) || n < 500) {
                        node.exec(&mut s, &random_command(&mut rng, true));
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        // Writers running before, during and after the barrier.
        let wait_for = |lsn: u64| {
            let deadline = Instant::now() + Duration::from_secs(20);
            while node.lsn() < lsn && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        wait_for(node.lsn() + 300);
        let before = node.lsn();
        let inc = backups.write_incremental(&node.engine, || node.lsn(), durable(&node));
        if let Ok(inc) = &inc {
            wait_for(inc.link.to_lsn + 300);
        }
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            assert!(w.join().map_err(|_| "writer panicked")? >= 500);
        }
        let inc = inc?;
        assert!(inc.link.to_lsn >= before, "the barrier is after what was written before it");
        assert!(node.lsn() > inc.link.to_lsn, "writes landed after the barrier");
        Ok(inc)
    })?;
    links.push(concurrent);

    node.run(3, 600, true);
    links.push(backups.write_incremental(&node.engine, || node.lsn(), durable(&node))?);
    node.run(4, 400, false);
    let last = node.lsn();
    node.wal.sync()?;

    let chain = backups.chains()?.pop().ok_or("no chain")?;
    assert_eq!(chain.incrementals.len(), 3);
    let report = verify_chain(&chain)?;
    assert_eq!((report.links, report.lsn), (4, links[3].link.to_lsn));
    for pair in links.windows(2) {
        assert_eq!(pair[1].link.from_lsn, pair[0].link.to_lsn, "contiguous");
        assert!(pair[1].link.keys < chain.base.keys + 1000, "an incremental holds the changed keys only");
    }

    // The WAL must be closed for a restore to read it (its lock).
    let node = node.finish()?;
    assert_eq!(node.last(), last);

    let mut targets: Vec<(Target, u64)> = Vec::new();
    let lsns: Vec<u64> = links.iter().map(|l| l.link.to_lsn).collect();
    for &l in &lsns {
        targets.push((Target::Lsn(l), l));
    }
    for pair in lsns.windows(2) {
        let mid = (pair[0] + pair[1]) / 2;
        targets.push((Target::Lsn(mid), mid));
        targets.push((Target::Lsn(pair[0] + 1), pair[0] + 1));
        let t = node.time_of(mid);
        targets.push((Target::Time(t), node.lsn_at_time(t)));
    }
    targets.push((Target::Lsn(last - 5), last - 5));
    targets.push((Target::Lsn(last), last));
    targets.push((Target::Latest, last));
    targets.push((Target::Time(node.time_of(last - 100)), node.lsn_at_time(node.time_of(last - 100))));
    targets.push((Target::Time(u64::MAX), last));
    // Before the base: the WAL alone, from its first record.
    targets.push((Target::Lsn(lsns[0] / 2), lsns[0] / 2));
    targets.push((Target::Time(T0 + 10), node.lsn_at_time(T0 + 10)));
    targets.push((Target::Time(T0), 0));

    for (i, (target, expected)) in targets.iter().enumerate() {
        check_restore(&node, &src, &tmp.path().join(format!("restored-{i}")), *target, *expected)?;
    }

    // Beyond the log: refused, nothing written.
    let dest = tmp.path().join("beyond");
    let err = restore(&src, &dest, Target::Lsn(last + 1), false).err();
    assert!(matches!(err, Some(Error::Unreachable { reachable, has_wal: true, .. }) if reachable == last), "{err:?}");
    assert!(!dest.exists());

    // Without the WAL: the links' own LSNs restore; points between are
    // refused; the latest state is the last link's.
    std::fs::rename(src.join("wal"), tmp.path().join("wal-aside"))?;
    for &l in &lsns {
        check_restore(&node, &src, &tmp.path().join(format!("nowal-{l}")), Target::Lsn(l), l)?;
    }
    check_restore(&node, &src, &tmp.path().join("nowal-latest"), Target::Latest, lsns[3])?;
    let t = links[2].link.created_unix_ms;
    check_restore(&node, &src, &tmp.path().join("nowal-time"), Target::Time(t + 1), lsns[2])?;
    let err = restore(&src, &tmp.path().join("nowal-mid"), Target::Lsn(lsns[1] + 1), false).err();
    assert!(
        matches!(err, Some(Error::Unreachable { reachable, has_wal: false, .. }) if reachable == lsns[1]),
        "{err:?}"
    );
    let err = restore(&src, &tmp.path().join("nowal-early"), Target::Lsn(lsns[0] - 1), false).err();
    assert!(matches!(err, Some(Error::NoBackup { .. })), "{err:?}");
    Ok(())
}

#[test]
fn a_restored_directory_is_refused_as_a_destination_unless_forced() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let src = tmp.path().join("backup");
    let node = Node::open(&src.join("wal"))?;
    let backups = BackupDir::open(&src, 2)?;
    node.run(7, 300, false);
    backups.write_full(&node.engine, || node.lsn(), durable(&node))?;
    node.run(8, 300, false);
    let first = node.lsn();
    backups.write_incremental(&node.engine, || node.lsn(), durable(&node))?;
    let node = node.finish()?;

    let dest = tmp.path().join("data");
    check_restore(&node, &src, &dest, Target::Latest, first)?;
    std::fs::write(dest.join("keep-me"), b"operator's notes")?;
    let err = restore(&src, &dest, Target::Lsn(first - 10), false).err();
    let msg = err.as_ref().map(ToString::to_string).unwrap_or_default();
    assert!(matches!(err, Some(Error::DestNotEmpty { .. })) && msg.contains("snapshots"), "{msg}");

    // A server holding the destination's WAL is never overwritten.
    let (held, _) = fastcache_wal::Wal::open(&dest.join("wal"), fastcache_wal::WalOptions::default())?;
    let err = restore(&src, &dest, Target::Lsn(first - 10), true).err();
    assert!(matches!(err, Some(Error::Locked { .. })), "{err:?}");
    held.close()?;

    // Forced: the data is replaced, the rest of the directory is left.
    let report = restore(&src, &dest, Target::Lsn(first - 10), true)?;
    assert_eq!(report.lsn, first - 10);
    let (restored, last, records) = load_data_dir_state(&dest)?;
    assert_eq!((last, records), (first - 10, 0));
    assert_eq!(restored.digest(), node.state_at(first - 10)?.digest());
    assert_eq!(std::fs::read(dest.join("keep-me"))?, b"operator's notes");
    let snapshots = std::fs::read_dir(dest.join("snapshots"))?.count();
    assert_eq!(snapshots, 2, "one snapshot and its MANIFEST");

    // The destination overlapping the source is refused.
    let err = restore(&src, &src, Target::Latest, true).err();
    assert!(matches!(err, Some(Error::InvalidArgument(_))), "{err:?}");
    Ok(())
}
