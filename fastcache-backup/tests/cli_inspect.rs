//! `fastcache inspect`: WAL records from an LSN, and snapshot summaries.

mod cli_support;

use cli_support::*;

#[test]
fn inspect_lists_wal_records_from_an_lsn() -> TestResult {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    build_dir(root, 60, 60)?;
    let (code, v) = fastcache_json(&["inspect", s(root), "--from-lsn", "7", "--limit", "6"]);
    assert_eq!(code, 0, "{v:#}");
    let records = v["records"].as_array().cloned().unwrap_or_default();
    assert_eq!(records.len(), 6, "{v:#}");
    assert_eq!(records[0]["lsn"], 7);
    assert_eq!(records[5]["lsn"], 12);
    assert_eq!(v["more"], true);
    // Write i = 6 of round 0 is a SET of k0-6 (LSN 7).
    let op = &records[0]["ops"][0];
    assert_eq!((op["command"].as_str(), op["key"].as_str(), op["db"].as_u64()), (Some("set"), Some("k0-6"), Some(0)));
    assert!(records[0]["time_ms"].as_u64().unwrap_or(0) > 1_600_000_000_000, "records carry their time");
    // Every sixth write goes to database 1 (write 11 is LSN 12).
    assert_eq!(records[5]["ops"][0]["db"], 1, "{v:#}");

    // Everything, in the text form; the WAL directory itself works too.
    let out = fastcache(&["inspect", s(&root.join("wal")), "--limit", "0"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("RPUSH") && text.contains("ZADD") && text.contains("k1-59"), "{text}");
    assert!(!text.contains("more records follow"), "{text}");
    Ok(())
}

#[test]
fn inspect_summarises_a_snapshot() -> TestResult {
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    let engine = build_dir(root, 120, 0)?;
    let snap = snapshot_files(root)[0].clone();
    let (code, v) = fastcache_json(&["inspect", s(&snap)]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["kind"], "snapshot");
    assert_eq!(v["lsn"], 120);
    let keys = (engine.dbsize(0) + engine.dbsize(1)) as u64;
    assert_eq!(v["keys"].as_u64(), Some(keys), "{v:#}");
    assert_eq!(v["keys_per_db"]["1"].as_u64(), Some(engine.dbsize(1) as u64));
    for t in ["string", "list", "hash", "set", "zset"] {
        assert!(v["types"][t]["keys"].as_u64().unwrap_or(0) > 0, "{t}: {v:#}");
    }
    let out = fastcache(&["inspect", s(&snap)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("LSN 120") && text.contains("keys per database"), "{text}");

    // A damaged snapshot is an error naming the file.
    flip_bit(&snap, 100);
    let out = fastcache(&["inspect", s(&snap)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("checksum"), "{}", String::from_utf8_lossy(&out.stderr));
    Ok(())
}
