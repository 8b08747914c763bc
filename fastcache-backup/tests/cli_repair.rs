//! `fastcache repair`: a dry run changes nothing; a torn tail, a damaged
//! newest snapshot and a damaged manifest are fixed; damage in the middle
//! of the WAL is refused unless a lossy mode is chosen and confirmed; a
//! directory in use is refused.

mod cli_support;

use std::path::Path;

use cli_support::*;

/// Makes the last segment end in a torn append: its seal removed (as after
/// a crash: the active segment is sealed only on close) and half a record
/// after the last valid one.
fn tear_tail(root: &Path) {
    let seg = segments(root).last().cloned().expect("a segment");
    let end = data_end(&seg) as usize;
    let mut b = std::fs::read(&seg).expect("read");
    b[40..56].fill(0);
    let (head, tail) = b.split_at_mut(end);
    tail[..40].copy_from_slice(&head[64..104]);
    std::fs::write(&seg, b).expect("write");
}

fn kinds(v: &serde_json::Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .map(|a| {
            a.iter().map(|p| p["kind"].as_str().or(p["action"].as_str()).unwrap_or_default().to_string()).collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_dry_run_changes_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    build_dir_phases(root, &[200, 200, 200])?;
    tear_tail(root);
    flip_bit(snapshot_files(root).last().expect("snapshot"), 100);
    let before = tree(root);
    let (code, v) = fastcache_json(&["repair", s(root), "--dry-run"]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(kinds(&v, "plan"), vec!["cut-torn-tail", "drop-snapshot"], "{v:#}");
    assert_eq!(v["done"], false);
    assert_eq!(tree(root), before, "a dry run changed files");
    let out = fastcache(&["repair", s(root), "--dry-run"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("dry run") && text.contains("cut the torn tail"), "{text}");
    assert_eq!(tree(root), before);
    Ok(())
}

#[test]
fn repair_cuts_a_torn_tail_and_drops_a_damaged_newest_snapshot() -> TestResult {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    let engine = build_dir_phases(root, &[200, 200, 200])?;
    tear_tail(root);
    let snaps = snapshot_files(root);
    let newest = snaps.last().expect("two snapshots").clone();
    flip_bit(&newest, 100);
    let (code, v) = fastcache_json(&["check", s(root)]);
    assert_eq!(code, 1);
    assert_eq!(kinds(&v, "problems"), vec!["wal-torn-tail", "snapshot-damaged"], "{v:#}");

    let out = fastcache(&["repair", s(root)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("healthy now"), "{text}");
    let (code, v) = fastcache_json(&["check", s(root)]);
    assert_eq!(code, 0, "{v:#}");
    assert!(!newest.exists());
    assert!(newest.with_extension("fcs.bad").exists(), "the damaged snapshot is kept as .bad");
    assert_eq!(
        v["recovery_snapshot"].as_str(),
        Some(&*format!("snapshots/{}", snaps[0].file_name().and_then(|n| n.to_str()).unwrap_or_default()))
    );
    // Nothing acknowledged was lost: the older snapshot and the WAL give the same data.
    assert_eq!(recovered_digest(root)?, engine.digest());
    Ok(())
}

#[test]
fn repair_rebuilds_a_damaged_manifest() -> TestResult {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    let engine = build_dir_phases(root, &[200, 200])?;
    std::fs::write(root.join("snapshots/MANIFEST"), b"FCSNAP-MANIFEST 1\ngarbage\n")?;
    let (code, v) = fastcache_json(&["repair", s(root)]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(kinds(&v, "plan"), vec!["rebuild-manifest"]);
    assert_eq!(v["after"]["healthy"], true);
    assert_eq!(recovered_digest(root)?, engine.digest());
    Ok(())
}

#[test]
fn damage_in_the_middle_is_refused_until_a_lossy_mode_is_confirmed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    build_dir(root, 300, 300)?;
    let seg = segments(root)[1].clone();
    flip_bit(&seg, 64 + 16 + 3);
    let before = tree(root);

    let out = fastcache(&["repair", s(root)]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let name = seg.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    assert!(text.contains(name) && text.contains("offset 64"), "names file and offset: {text}");
    assert!(text.contains("--wal point-in-time") && text.contains("--wal skip-corrupted"), "{text}");
    assert!(text.contains("nothing was changed"), "{text}");
    assert_eq!(tree(root), before);

    let (code, v) = fastcache_json(&["repair", s(root), "--wal", "point-in-time"]);
    assert_eq!(code, 1, "needs --accept-data-loss: {v:#}");
    assert!(v["refused"][0].as_str().unwrap_or_default().contains("--accept-data-loss"), "{v:#}");
    assert_eq!(tree(root), before);

    let (code, v) = fastcache_json(&["repair", s(root), "--wal", "point-in-time", "--accept-data-loss"]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["after"]["healthy"], true, "{v:#}");
    let (code, v) = fastcache_json(&["check", s(root)]);
    assert_eq!(code, 0, "{v:#}");
    // Every record before the damage is kept: those are below the snapshot
    // (LSN 300) here, so the state is the snapshot's, written anew at its
    // LSN, and the log continues after it.
    let first_of_seg: u64 = name.trim_end_matches(".wal").parse()?;
    assert!(first_of_seg < 300);
    assert!(v["recovery_snapshot"].as_str().unwrap_or_default().contains(&format!("{:020}", 300)), "{v:#}");
    assert_eq!(v["wal"]["records"], 0, "{v:#}");
    Ok(())
}

#[test]
fn skip_corrupted_keeps_every_record_that_verifies() -> TestResult {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    build_dir(root, 300, 300)?;
    let seg = segments(root)[2].clone();
    flip_bit(&seg, 64 + 16 + 3);
    let (_, before) = fastcache_json(&["check", s(root)]);
    let last = before["wal"]["last_lsn"].as_u64().expect("last lsn");
    let (code, v) = fastcache_json(&["repair", s(root), "--wal", "skip-corrupted", "--accept-data-loss"]);
    assert_eq!(code, 0, "{v:#}");
    let (code, v) = fastcache_json(&["check", s(root)]);
    assert_eq!(code, 0, "{v:#}");
    // The state up to the last LSN is now a snapshot; the log continues after it.
    let newest = v["recovery_snapshot"].as_str().unwrap_or_default().to_string();
    assert!(newest.contains(&format!("{last:020}")), "{newest} at LSN {last}");
    assert!(std::fs::read_dir(root)?.flatten().any(|e| e.file_name().to_string_lossy().starts_with("wal-damaged-")));
    Ok(())
}

#[test]
fn a_directory_in_use_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    build_dir(root, 100, 100)?;
    flip_bit(&snapshot_files(root)[0], 100);
    let before = tree(&root.join("snapshots"));
    // A server holds the log open (and its lock).
    let (wal, _) = fastcache_wal::Wal::open(&root.join("wal"), wal_options())?;
    let out = fastcache(&["repair", s(root)]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by a running server"), "{err}");
    assert_eq!(tree(&root.join("snapshots")), before, "nothing changed");
    // check still works (read-only) and says so.
    let (_, v) = fastcache_json(&["check", s(root)]);
    assert!(v["in_use_by"].as_str().is_some_and(|p| p.contains(&std::process::id().to_string())), "{v:#}");
    wal.close()?;
    Ok(())
}
