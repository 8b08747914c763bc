//! An incremental backup is only ever appended where it continues the
//! chain exactly; everywhere else the caller is told to write a full one
//! (`NeedsFull`). An offline data directory is backed up, incrementally
//! from its WAL too.

mod lib_common;

use fastcache_backup::{load_chain, BackupDir, Error, Target};
use fastcache_core::Engine;
use lib_common::{load_data_dir_state, restore, Node, TestResult};

fn needs_full<T: std::fmt::Debug>(r: Result<T, Error>) -> String {
    match r {
        Err(e @ Error::NeedsFull { .. }) => e.to_string(),
        other => panic!("expected NeedsFull, got {other:?}"),
    }
}

#[test]
fn incrementals_only_continue_a_chain_exactly() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let root = tmp.path().join("backups");
    let node = Node::open(&tmp.path().join("wal"))?;
    let backups = BackupDir::open(&root, 2)?;
    let e = &node.engine;
    node.run(50, 300, false);

    // No chain yet.
    let msg = needs_full(backups.write_incremental(e, || node.lsn(), |_| Ok(())));
    assert!(msg.contains("full backup"), "{msg}");

    // Tracking off when the base was taken: the chain gets no increments.
    e.set_change_tracking(false);
    backups.write_full(e, || node.lsn(), |_| Ok(()))?;
    needs_full(backups.write_incremental(e, || node.lsn(), |_| Ok(())));
    e.set_change_tracking(true);
    let base = backups.write_full(e, || node.lsn(), |_| Ok(()))?;
    assert_eq!(backups.continued_chain(), Some((base.chain.clone(), base.link.to_lsn)));

    // Nothing changed: nothing written.
    let same = backups.write_incremental(e, || node.lsn(), |_| Ok(()))?;
    assert!(!same.written);
    assert_eq!(same.link, base.link);

    // A snapshot running: busy, and nothing consumed.
    node.run(51, 100, false);
    let (cursor, ()) = e.begin_snapshot(|| ()).map_err(|_| "busy")?;
    assert!(matches!(backups.write_incremental(e, || node.lsn(), |_| Ok(())), Err(Error::Busy)));
    drop(cursor);
    let inc = backups.write_incremental(e, || node.lsn(), |_| Ok(()))?;
    assert!(inc.written && inc.link.keys > 0);

    // The log not durable: not published, and the changes it held are gone
    // to the chain, so the next one must be full.
    node.run(52, 100, false);
    let files = std::fs::read_dir(&base.chain)?.count();
    let r = backups.write_incremental(e, || node.lsn(), |lsn| Err(format!("fsync failed before {lsn}")));
    assert!(matches!(&r, Err(Error::Publish { reason, .. }) if reason.contains("fsync failed")), "{r:?}");
    assert_eq!(std::fs::read_dir(&base.chain)?.count(), files, "nothing left behind");
    assert_eq!(backups.chains()?.pop().ok_or("chain")?.incrementals.len(), 1);
    needs_full(backups.write_incremental(e, || node.lsn(), |_| Ok(())));

    // SWAPDB: only a full backup describes it.
    backups.write_full(e, || node.lsn(), |_| Ok(()))?;
    let mut s = e.session();
    node.exec(&mut s, &["SWAPDB".into(), "0".into(), "1".into()]);
    let msg = needs_full(backups.write_incremental(e, || node.lsn(), |_| Ok(())));
    assert!(msg.contains("SWAPDB"), "{msg}");

    // A restarted process (a new handle) continues nothing, until told
    // that its engine tracked every write since the chain's end.
    backups.write_full(e, || node.lsn(), |_| Ok(()))?;
    node.run(53, 50, false);
    drop(backups);
    let backups = BackupDir::open(&root, 2)?;
    needs_full(backups.write_incremental(e, || node.lsn(), |_| Ok(())));
    let chain = backups.chains()?.pop().ok_or("chain")?;
    needs_full(backups.continue_chain(&chain, chain.lsn() + 1));
    // (This engine's change sets restarted at that base: the claim holds.)
    backups.continue_chain(&chain, chain.lsn())?;
    let inc = backups.write_incremental(e, || node.lsn(), |_| Ok(()))?;
    assert_eq!(inc.link.from_lsn, chain.lsn());
    let copy = Engine::default();
    load_chain(&copy, &backups.chains()?.pop().ok_or("chain")?, None)?;
    assert_eq!(copy.digest(), e.digest());

    // A log position that went backwards is refused.
    let r = backups.write_incremental(e, || 1, |_| Ok(()));
    assert!(matches!(r, Err(Error::LsnBehind { lsn: 1, .. })), "{r:?}");
    Ok(())
}

#[test]
fn an_offline_data_directory_is_backed_up_fully_and_from_its_wal() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let node = Node::open(&data.join("wal"))?;
    node.run(60, 600, true);
    let history = node.finish()?;

    let backups = BackupDir::open(&tmp.path().join("backups"), 2)?;
    let full = backups.backup_data_dir(&data, false)?;
    assert_eq!(full.link.to_lsn, history.last());
    assert_eq!(backups.continued_chain(), None, "a scratch engine continues nothing");

    // The server runs on: more records in the same WAL (written here by a
    // fresh engine; only the records matter).
    let node = Node::open(&data.join("wal"))?;
    let mut s = node.engine.session();
    for cmd in [&["SET", "after", "1"][..], &["SET", "k1", "overwritten"], &["HSET", "h", "f", "v"], &["DEL", "after"]]
    {
        node.exec(&mut s, &cmd.iter().map(|w| w.to_string()).collect::<Vec<_>>());
    }
    let more = node.finish()?;
    assert_eq!(more.last(), history.last() + 4);
    let inc = backups.backup_data_dir(&data, true)?;
    assert!(inc.written);
    assert_eq!((inc.link.from_lsn, inc.link.to_lsn, inc.link.keys), (history.last(), more.last(), 3));
    assert_eq!(backups.continued_chain(), None);

    // Base + the increment = the first run's state with the new records.
    let expected = history.state_at(history.last())?;
    more.apply_to(&expected)?;
    let report = restore(&tmp.path().join("backups"), &tmp.path().join("restored"), Target::Latest, false)?;
    assert_eq!(report.lsn, more.last());
    let (restored, _, _) = load_data_dir_state(&tmp.path().join("restored"))?;
    assert_eq!(restored.digest(), expected.digest());

    // The data directory itself is a restore source too (its WAL alone here).
    let report = restore(&data, &tmp.path().join("from-data"), Target::Lsn(history.last()), false)?;
    assert_eq!(report.lsn, history.last());
    let (restored, _, _) = load_data_dir_state(&tmp.path().join("from-data"))?;
    assert_eq!(restored.digest(), history.state_at(history.last())?.digest());
    Ok(())
}
