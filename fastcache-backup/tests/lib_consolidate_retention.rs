//! Consolidation merges a chain into a full backup equal to the chain, and
//! incrementals go on from it; retention keeps the newest chains; what an
//! interrupted write leaves is removed at open; one writer per directory.

mod lib_common;

use fastcache_backup::{apply_incrementals, load_chain, verify_chain, BackupDir, Error, LinkKind, DEFAULT_RETAIN};
use fastcache_core::Engine;
use lib_common::{Node, TestResult};

fn names(dir: &std::path::Path) -> TestResult<Vec<String>> {
    let mut v: Vec<String> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    v.sort();
    Ok(v)
}

#[test]
fn a_consolidated_chain_equals_the_chain_and_is_continued() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let node = Node::open(&tmp.path().join("wal"))?;
    let backups = BackupDir::open(&tmp.path().join("backups"), 3)?;
    node.run(21, 1000, false);
    backups.write_full(&node.engine, || node.lsn(), |_| Ok(()))?;
    for seed in 22..26 {
        node.run(seed, 400, true);
        backups.write_incremental(&node.engine, || node.lsn(), |_| Ok(()))?;
    }
    let chain = backups.chains()?.pop().ok_or("no chain")?;
    assert_eq!(chain.incrementals.len(), 4);

    let merged = backups.consolidate(&chain)?;
    assert!(merged.written);
    assert_eq!(merged.link.kind, LinkKind::Full);
    assert_eq!((merged.link.to_lsn, merged.link.created_unix_ms), (chain.lsn(), chain.tip().created_unix_ms));
    let chains = backups.chains()?;
    assert_eq!(chains.len(), 2);
    let new = chains.last().ok_or("no chain")?;
    assert_eq!(new.dir, merged.chain);
    assert!(new.incrementals.is_empty());
    verify_chain(new)?;
    // A chain of one base has nothing to merge.
    let again = backups.consolidate(new)?;
    assert!(!again.written);
    assert_eq!(backups.chains()?.len(), 2);

    let (a, b) = (Engine::default(), Engine::default());
    assert_eq!(load_chain(&a, &chain, None)?, chain.lsn());
    assert_eq!(load_chain(&b, new, None)?, chain.lsn());
    assert_eq!(a.digest(), b.digest());
    assert_eq!(a.keyspace_info(), b.keyspace_info());
    assert_eq!(a.digest(), node.engine.digest(), "nothing was written since the last link");

    // The directory continues the consolidated chain.
    node.run(26, 300, false);
    let inc = backups.write_incremental(&node.engine, || node.lsn(), |_| Ok(()))?;
    assert_eq!((inc.chain.clone(), inc.link.from_lsn), (merged.chain.clone(), chain.lsn()));
    let c = Engine::default();
    load_chain(&c, &backups.chains()?.pop().ok_or("no chain")?, None)?;
    assert_eq!(c.digest(), node.engine.digest());

    // Upto: the chain up to a link, not beyond.
    let d = Engine::default();
    let upto = chain.incrementals[1].to_lsn;
    assert_eq!(load_chain(&d, &chain, Some(upto + 3))?, upto);
    let history = node.finish()?;
    assert_eq!(d.digest(), history.state_at(upto)?.digest());
    assert!(matches!(
        load_chain(&Engine::default(), &chain, Some(chain.base.to_lsn - 1)),
        Err(Error::InvalidArgument(_))
    ));

    // Recovery's way: an engine at some LSN (here: the log replayed to the
    // second link's end) gets the incrementals that continue from there.
    let mid = chain.incrementals[1].to_lsn;
    let e = history.state_at(mid)?;
    assert_eq!(apply_incrementals(&e, &chain, mid, None)?, chain.lsn());
    assert_eq!(e.digest(), a.digest());
    let e = history.state_at(chain.base.to_lsn)?;
    assert_eq!(apply_incrementals(&e, &chain, chain.base.to_lsn, Some(mid))?, mid);
    assert_eq!(e.digest(), history.state_at(mid)?.digest());
    // An LSN inside a link: that link and the ones after it still apply
    // (a link holds every key changed in its range as it is at its end).
    assert!(mid + 1 < chain.lsn());
    let e = history.state_at(mid + 1)?;
    assert_eq!(apply_incrementals(&e, &chain, mid + 1, None)?, chain.lsn());
    assert_eq!(e.digest(), a.digest());
    // At or past the chain's end: nothing is applied.
    let e = history.state_at(chain.lsn())?;
    assert_eq!(apply_incrementals(&e, &chain, chain.lsn(), None)?, chain.lsn());
    assert_eq!(e.digest(), a.digest());
    Ok(())
}

#[test]
fn retention_keeps_the_newest_chains_and_open_cleans_up() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let root = tmp.path().join("backups");
    let node = Node::open(&tmp.path().join("wal"))?;
    let backups = BackupDir::open(&root, DEFAULT_RETAIN)?;
    let mut fulls = Vec::new();
    for seed in 0..4u64 {
        node.run(30 + seed, 200, false);
        node.clock.advance(1000);
        let full = backups.write_full(&node.engine, || node.lsn(), |_| Ok(()))?;
        node.run(40 + seed, 50, false);
        backups.write_incremental(&node.engine, || node.lsn(), |_| Ok(()))?;
        fulls.push(full);
    }
    assert_eq!(fulls[2].removed_chains, vec![fulls[0].chain.clone()]);
    assert_eq!(fulls[3].removed_chains, vec![fulls[1].chain.clone()]);
    let dirs = backups.chain_dirs()?;
    assert_eq!(dirs, vec![fulls[2].chain.clone(), fulls[3].chain.clone()]);
    assert_eq!(names(&root)?.len(), 3, "two chains and the LOCK: {:?}", names(&root)?);

    // One writer at a time; readers need no lock.
    assert!(matches!(BackupDir::open(&root, 2), Err(Error::Locked { .. })));
    let reader = BackupDir::open_read_only(&root)?;
    assert_eq!(reader.chains()?.len(), 2);
    let r = reader.write_full(&node.engine, || node.lsn(), |_| Ok(()));
    assert!(matches!(r, Err(Error::ReadOnly { .. })), "{r:?}");
    drop(backups);

    // What a crash can leave: a chain being created, one being deleted, a
    // file being written, a finished file no manifest names, a manifest
    // being written. Opening removes exactly those.
    let newest = &fulls[3].chain;
    std::fs::create_dir(root.join("chain-00000000000000099999-5.tmp"))?;
    std::fs::create_dir(root.join("chain-00000000000000000001-5.del"))?;
    std::fs::write(newest.join("inc-00000000000000000001-00000000000000000002-3.fcs.tmp"), b"x")?;
    std::fs::write(newest.join("inc-00000000000000099999-00000000000000099999-3.fcs"), b"x")?;
    std::fs::write(newest.join("MANIFEST.tmp"), b"x")?;
    std::fs::write(root.join("notes.txt"), b"not ours")?;
    let before = names(newest)?;
    let backups = BackupDir::open(&root, DEFAULT_RETAIN)?;
    assert_eq!(backups.removed_on_open().len(), 5, "{:?}", backups.removed_on_open());
    assert_eq!(names(newest)?.len(), before.len() - 3);
    assert!(names(&root)?.contains(&"notes.txt".to_string()));
    for chain in backups.chains()? {
        verify_chain(&chain)?;
    }
    assert!(matches!(BackupDir::open(&root, 0), Err(Error::InvalidArgument(_))));
    Ok(())
}
