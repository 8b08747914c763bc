//! `fastcache check`: healthy directories pass, every planted corruption is
//! found with its file and offset, and nothing is changed.

mod cli_support;

use std::path::Path;

use cli_support::*;

fn problems(v: &serde_json::Value) -> Vec<(String, String, Option<u64>, String)> {
    v["problems"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|p| {
                    (
                        p["kind"].as_str().unwrap_or_default().to_string(),
                        p["file"].as_str().unwrap_or_default().to_string(),
                        p["offset"].as_u64(),
                        p["message"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).expect("inside").display().to_string()
}

#[test]
fn a_healthy_directory_passes_with_a_summary() -> TestResult {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    build_dir(root, 300, 300)?;
    let (code, v) = fastcache_json(&["check", s(root)]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["healthy"], true);
    // SELECT is not a record; every sixth write is two (SET in db 1 and back).
    assert!(v["wal"]["records"].as_u64().unwrap_or(0) >= 600, "{v:#}");
    assert_eq!(v["wal"]["first_lsn"], 1);
    assert!(v["wal"]["segments"].as_u64().unwrap_or(0) >= 2, "several segments: {v:#}");
    assert_eq!(v["snapshots"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["snapshots"][0]["ok"], true);
    assert_eq!(v["manifest"]["state"], "ok");
    assert!(problems(&v).is_empty());

    // The human form says so too.
    let out = fastcache(&["check", s(root)]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("healthy"), "{text}");
    assert!(text.contains("WAL:"), "{text}");
    Ok(())
}

/// A fresh directory, damaged by `plant`; check must exit 1 and report a
/// problem of `kind` in `file` at `offset`, and change nothing.
fn planted(plant: impl FnOnce(&Path) -> (String, Option<u64>), kind: &str) -> TestResult {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    build_dir(root, 300, 300)?;
    let (file, offset) = plant(root);
    let before = tree(root);
    let (code, v) = fastcache_json(&["check", s(root)]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["healthy"], false);
    let found = problems(&v);
    assert!(
        found.iter().any(|(k, f, o, _)| k == kind && *f == file && (offset.is_none() || *o == offset)),
        "expected {kind} in {file} at {offset:?}, found {found:#?}"
    );
    assert_eq!(tree(root), before, "check changed files");
    // The text form names the file and the offset.
    let out = fastcache(&["check", s(root)]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&file), "{text}");
    if let Some(o) = offset {
        assert!(text.contains(&format!("offset {o}")), "{text}");
    }
    Ok(())
}

#[test]
fn a_truncated_middle_segment_is_found() -> TestResult {
    planted(
        |root| {
            let seg = &segments(root)[1];
            let f = std::fs::OpenOptions::new().write(true).open(seg).expect("open");
            f.set_len(5000).expect("truncate");
            (rel(root, seg), None)
        },
        "wal-corruption",
    )
}

#[test]
fn a_truncated_last_segment_is_found() -> TestResult {
    planted(
        |root| {
            let seg = segments(root).last().cloned().expect("a segment");
            let end = data_end(&seg);
            let f = std::fs::OpenOptions::new().write(true).open(&seg).expect("open");
            // Through the last record: the bytes were sealed durable.
            f.set_len(end - 10).expect("truncate");
            (rel(root, &seg), None)
        },
        "wal-corruption",
    )
}

#[test]
fn a_flipped_bit_in_a_wal_record_is_found_with_its_offset() -> TestResult {
    planted(
        |root| {
            let seg = &segments(root)[1];
            // The payload of the first record of the segment (header at 64).
            flip_bit(seg, 64 + 16 + 3);
            (rel(root, seg), Some(64))
        },
        "wal-corruption",
    )
}

#[test]
fn a_flipped_bit_in_a_snapshot_chunk_is_found_with_its_offset() -> TestResult {
    planted(
        |root| {
            let snap = &snapshot_files(root)[0];
            // Chunk 0's frame starts right after the 64-byte header.
            flip_bit(snap, 64 + 20 + 7);
            (rel(root, snap), Some(64))
        },
        "snapshot-damaged",
    )
}

#[test]
fn a_flipped_bit_in_the_manifest_is_found() -> TestResult {
    planted(
        |root| {
            let m = root.join("snapshots/MANIFEST");
            let text = std::fs::read_to_string(&m).expect("manifest");
            let second_line = text.find('\n').expect("line") + 1;
            // A digit of the key count in the entry line.
            let at = second_line + text[second_line..].find(' ').expect("space") + 1;
            flip_bit(&m, at as u64);
            let crc_line = text.rfind("crc32c").expect("crc line") as u64;
            ("snapshots/MANIFEST".to_string(), Some(crc_line))
        },
        "manifest-damaged",
    )
}

#[test]
fn a_missing_middle_segment_is_found() -> TestResult {
    planted(
        |root| {
            let segs = segments(root);
            std::fs::remove_file(&segs[1]).expect("rm");
            (rel(root, &segs[2]), Some(0))
        },
        "wal-corruption",
    )
}

#[test]
fn a_wal_that_does_not_reach_the_snapshot_is_a_gap() -> TestResult {
    planted(
        |root| {
            // Without the snapshot, recovery needs the log from LSN 1.
            std::fs::remove_file(root.join("snapshots/MANIFEST")).expect("rm manifest");
            let segs = segments(root);
            std::fs::remove_file(&segs[0]).expect("rm first segment");
            (rel(root, &segs[1]), Some(0))
        },
        "wal-gap",
    )
}

#[test]
fn not_a_data_directory_is_an_error() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (code, v) = fastcache_json(&["check", s(dir.path())]);
    assert_eq!(code, 1);
    assert!(v["error"].as_str().unwrap_or_default().contains("not a FastCache data directory"), "{v}");
    // A usage error is 2.
    let out = fastcache(&["check"]);
    assert_eq!(out.status.code(), Some(2));
    let out = fastcache(&["check", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    Ok(())
}
