//! A broken chain — a missing middle incremental, a flipped bit in one, a
//! damaged manifest, a gap a hand edit left — is refused with an error
//! naming the file and the LSNs; restoring to a point before the damage
//! still works (only the links up to the target are needed).

mod lib_common;

use std::path::PathBuf;

use fastcache_backup::{verify_chain, BackupDir, Chain, ChainProblem, Error, Target, CHAIN_MANIFEST};
use lib_common::{flip_bit, restore, History, Node, TestResult};

struct Setup {
    tmp: tempfile::TempDir,
    src: PathBuf,
    chain: Chain,
    history: History,
}

/// A base and three incrementals, and the WAL after them.
fn setup() -> TestResult<Setup> {
    let tmp = tempfile::tempdir()?;
    let src = tmp.path().join("backup");
    let node = Node::open(&src.join("wal"))?;
    let backups = BackupDir::open(&src, 2)?;
    node.run(11, 800, false);
    backups.write_full(&node.engine, || node.lsn(), |_| Ok(()))?;
    for seed in 12..15 {
        node.run(seed, 300, true);
        backups.write_incremental(&node.engine, || node.lsn(), |_| Ok(()))?;
    }
    node.run(15, 100, false);
    let chain = backups.chains()?.pop().ok_or("no chain")?;
    drop(backups);
    let history = node.finish()?;
    Ok(Setup { tmp, src, chain, history })
}

fn restore_err(s: &Setup, target: Target, name: &str) -> String {
    let dest = s.tmp.path().join(name);
    let r = restore(&s.src, &dest, target, false);
    assert!(!dest.exists(), "a refused restore writes nothing");
    match r {
        Err(e) => {
            assert!(e.is_corruption(), "{e}");
            e.to_string()
        }
        Ok(report) => panic!("restore to {target} should be refused, got {report:?}"),
    }
}

#[test]
fn a_missing_middle_incremental_is_refused_naming_it() -> TestResult {
    let s = setup()?;
    let middle = &s.chain.incrementals[1];
    std::fs::remove_file(&middle.path)?;
    let name = middle.path.file_name().and_then(|n| n.to_str()).ok_or("name")?;

    match verify_chain(&s.chain) {
        Err(Error::BrokenChain { problems, .. }) => {
            assert!(
                matches!(&problems[..], [ChainProblem::Missing { file, from_lsn, to_lsn }]
                    if file == &middle.path && *from_lsn == middle.from_lsn && *to_lsn == middle.to_lsn),
                "{problems:?}"
            );
        }
        other => return Err(format!("expected a broken chain, got {other:?}").into()),
    }
    for target in [Target::Latest, Target::Lsn(s.chain.lsn()), Target::Lsn(middle.to_lsn)] {
        let msg = restore_err(&s, target, "dest");
        assert!(msg.contains(name) && msg.contains("missing"), "{msg}");
        assert!(msg.contains(&format!("{}..={}", middle.from_lsn, middle.to_lsn)), "{msg}");
    }
    // Before the missing link, the chain is whole.
    let before = s.chain.incrementals[0].to_lsn + 7;
    let report = restore(&s.src, &s.tmp.path().join("before"), Target::Lsn(before), false)?;
    assert_eq!((report.lsn, report.links.len()), (before, 2));
    let (restored, _, _) = lib_common::load_data_dir_state(&s.tmp.path().join("before"))?;
    assert_eq!(restored.digest(), s.history.state_at(before)?.digest());
    Ok(())
}

#[test]
fn a_flipped_bit_in_an_incremental_is_refused_naming_the_file_and_offset() -> TestResult {
    let s = setup()?;
    let inc = &s.chain.incrementals[1];
    let len = std::fs::metadata(&inc.path)?.len() as usize;
    // In the first chunk's payload (after the 64-byte header and the
    // 20-byte frame header).
    flip_bit(&inc.path, 64 + 20 + 5, 3)?;
    let name = inc.path.file_name().and_then(|n| n.to_str()).ok_or("name")?;
    let msg = match verify_chain(&s.chain) {
        Err(e @ Error::BrokenChain { .. }) => e.to_string(),
        other => return Err(format!("expected a broken chain, got {other:?}").into()),
    };
    assert!(msg.contains(name) && msg.contains("damaged") && msg.contains("offset 64"), "{msg}");
    let msg = restore_err(&s, Target::Latest, "dest");
    assert!(msg.contains(name) && msg.contains("checksum"), "{msg}");

    // A cut file, and a flip in the footer, are found the same way.
    flip_bit(&inc.path, 64 + 20 + 5, 3)?;
    verify_chain(&s.chain)?;
    flip_bit(&inc.path, len - 3, 0)?;
    let msg = restore_err(&s, Target::Latest, "dest");
    assert!(msg.contains(name) && msg.contains("footer"), "{msg}");
    flip_bit(&inc.path, len - 3, 0)?;
    let bytes = std::fs::read(&inc.path)?;
    std::fs::write(&inc.path, &bytes[..len - 10])?;
    let msg = restore_err(&s, Target::Latest, "dest");
    assert!(msg.contains(name) && msg.contains("truncated"), "{msg}");
    Ok(())
}

#[test]
fn a_damaged_manifest_and_a_gap_are_refused() -> TestResult {
    let s = setup()?;
    let manifest = s.chain.dir.join(CHAIN_MANIFEST);
    let good = std::fs::read(&manifest)?;

    flip_bit(&manifest, 40, 1)?;
    assert!(matches!(Chain::open(&s.chain.dir), Err(Error::Corrupted { ref file, .. }) if file == &manifest));
    let msg = restore_err(&s, Target::Latest, "dest");
    assert!(msg.contains("MANIFEST") && msg.contains(&s.chain.dir.display().to_string()), "{msg}");
    // Not even an earlier point: the chain's links are unknown.
    restore_err(&s, Target::Lsn(s.chain.base.to_lsn), "dest");

    // A hand edit dropping the middle link (checksum recomputed): a gap.
    let text = String::from_utf8(good)?;
    let middle = s.chain.incrementals[1].path.file_name().and_then(|n| n.to_str()).ok_or("name")?;
    let mut body: String =
        text.lines().filter(|l| !l.contains(middle) && !l.starts_with("crc32c")).collect::<Vec<_>>().join("\n");
    body.push('\n');
    let crc = crc32c_hex(body.as_bytes());
    std::fs::write(&manifest, format!("{body}crc32c {crc}\n"))?;
    let chain = Chain::open(&s.chain.dir)?;
    match verify_chain(&chain) {
        Err(Error::BrokenChain { problems, .. }) => {
            let [ChainProblem::Gap { file, from_lsn, expected_from, previous }] = &problems[..] else {
                return Err(format!("expected one gap, got {problems:?}").into());
            };
            assert_eq!(file, &s.chain.incrementals[2].path);
            assert_eq!(previous, &s.chain.incrementals[0].path);
            assert_eq!((*from_lsn, *expected_from), (s.chain.incrementals[1].to_lsn, s.chain.incrementals[0].to_lsn));
        }
        other => return Err(format!("expected a gap, got {other:?}").into()),
    }
    let msg = restore_err(&s, Target::Latest, "dest");
    assert!(msg.contains("in no backup"), "{msg}");
    Ok(())
}

/// crc32c (Castagnoli) as 8 lowercase hex digits, bitwise.
fn crc32c_hex(bytes: &[u8]) -> String {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82f6_3b78 } else { crc >> 1 };
        }
    }
    format!("{:08x}", !crc)
}
