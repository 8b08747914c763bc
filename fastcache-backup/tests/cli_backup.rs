//! `fastcache backup` and `fastcache restore`: offline full and
//! incremental backups, restores to each backup, to LSNs and times between
//! them (with the WAL copy), refusals; an online backup of a running
//! `fastcache-server`.

mod cli_support;

use std::path::Path;

use cli_support::*;
use fastcache_core::{Engine, EngineConfig, Record};
use fastcache_wal::Wal;

/// The state after the records of `root`'s WAL up to LSN `upto` (or, with
/// `until_ms`, up to the last record written at or before it).
fn digest_at(root: &Path, upto: u64, until_ms: Option<u64>) -> Result<u64, Box<dyn std::error::Error>> {
    let engine = Engine::new(EngineConfig::default());
    let mut seen = 0;
    fastcache_wal::inspect::LogScanner::new(&root.join("wal"))
        .on_record(|r| {
            let rec = Record::decode(r.payload).expect("a record");
            if r.lsn > upto || until_ms.is_some_and(|t| rec.time_ms > t) {
                return std::ops::ControlFlow::Break(());
            }
            engine.apply_record(&rec).expect("applies");
            seen = r.lsn;
            std::ops::ControlFlow::Continue(())
        })
        .run()?;
    assert!(seen > 0);
    Ok(engine.digest())
}

/// The time of the record at `lsn`.
fn time_of(root: &Path, lsn: u64) -> Result<u64, Box<dyn std::error::Error>> {
    let (_, v) = fastcache_json(&["inspect", s(root), "--from-lsn", &lsn.to_string(), "--limit", "1"]);
    Ok(v["records"][0]["time_ms"].as_u64().ok_or("no time")?)
}

fn rfc3339(ms: u64) -> String {
    // Days to a civil date (Howard Hinnant's algorithm).
    let secs = ms / 1000;
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let r = secs % 86_400;
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", r / 3600, r / 60 % 60, r % 60, ms % 1000)
}

/// More writes on the data directory's log, as a restarted server would.
fn more_writes(root: &Path, engine: &Engine, round: usize, n: usize) -> Result<u64, Box<dyn std::error::Error>> {
    let (wal, report) = Wal::open(&root.join("wal"), wal_options())?;
    assert_eq!(report.truncated_bytes, 0);
    writes(engine, &wal, round, n);
    let last = wal.last_lsn();
    wal.close()?;
    Ok(last)
}

fn backup(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["backup"];
    all.extend_from_slice(args);
    let (code, v) = fastcache_json(&all);
    assert_eq!(code, 0, "backup {args:?}: {v:#}");
    v
}

fn restore(src: &Path, dest: &Path, extra: &[&str]) -> Result<u64, Box<dyn std::error::Error>> {
    let mut args = vec!["restore", s(src), s(dest)];
    args.extend_from_slice(extra);
    let (code, v) = fastcache_json(&args);
    assert_eq!(code, 0, "restore {extra:?}: {v:#}");
    // The restored directory is healthy and recovers to the state.
    let (code, c) = fastcache_json(&["check", s(dest)]);
    assert_eq!(code, 0, "{c:#}");
    recovered_digest(dest)
}

#[test]
fn offline_full_and_incremental_backups_restore_to_every_point() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let root = tmp.path().join("data");
    let dest = tmp.path().join("backups");
    let engine = build_dir(&root, 200, 100)?;
    let d1 = engine.digest();

    let v = backup(&[s(&root), s(&dest)]);
    assert_eq!(v["kind"], "full", "{v:#}");
    let l1 = v["to_lsn"].as_u64().ok_or("to_lsn")?;
    assert_eq!(l1, 300);

    std::thread::sleep(std::time::Duration::from_millis(30));
    let l2 = more_writes(&root, &engine, 2, 120)?;
    let d2 = engine.digest();
    let v = backup(&[s(&root), s(&dest), "--incremental"]);
    assert_eq!(
        (v["kind"].as_str(), v["from_lsn"].as_u64(), v["to_lsn"].as_u64()),
        (Some("incremental"), Some(l1), Some(l2)),
        "{v:#}"
    );
    let inc1 = v["file"].as_str().ok_or("file")?.to_string();

    std::thread::sleep(std::time::Duration::from_millis(30));
    let l3 = more_writes(&root, &engine, 3, 90)?;
    let d3 = engine.digest();
    let v = backup(&[s(&root), s(&dest), "--incremental"]);
    assert_eq!(
        (v["kind"].as_str(), v["to_lsn"].as_u64(), v["chain_links"].as_u64()),
        (Some("incremental"), Some(l3), Some(3)),
        "{v:#}"
    );

    // Every point: the latest, each link, and between links (the WAL copy).
    let r = tmp.path().join("r");
    assert_eq!(restore(&dest, &r, &[])?, d3);
    assert_eq!(restore(&dest, &r, &["--force", "--to-lsn", &l1.to_string()])?, d1);
    assert_eq!(restore(&dest, &r, &["--force", "--to-lsn", &l2.to_string()])?, d2);
    let mid = l1 + 37;
    assert_eq!(restore(&dest, &r, &["--force", "--to-lsn", &mid.to_string()])?, digest_at(&root, mid, None)?);
    let mid = l2 + 11;
    assert_eq!(restore(&dest, &r, &["--force", "--to-lsn", &mid.to_string()])?, digest_at(&root, mid, None)?);
    // To a moment: the end of the second round of writes.
    let t2 = time_of(&root, l2)?;
    assert_eq!(restore(&dest, &r, &["--force", "--to-time", &rfc3339(t2)])?, d2);
    let t = time_of(&root, 150)?;
    assert_eq!(restore(&dest, &r, &["--force", "--to-time", &rfc3339(t)])?, digest_at(&root, u64::MAX, Some(t))?);

    // A non-empty destination is refused without --force.
    let (code, v) = fastcache_json(&["restore", s(&dest), s(&r)]);
    assert_eq!(code, 1);
    assert!(v["error"].as_str().unwrap_or_default().contains("not empty"), "{v:#}");
    // Usage errors are 2.
    let out = fastcache(&["restore", s(&dest), s(&r), "--to-lsn", "5", "--to-time", "2024-01-01T00:00:00Z"]);
    assert_eq!(out.status.code(), Some(2));
    let out = fastcache(&["restore", s(&dest), s(&r), "--to-time", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));

    // check verifies the backups; inspect reads an incremental file.
    let (code, v) = fastcache_json(&["check", s(&root), "--backups", s(&dest)]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["backups"]["chains"][0]["ok"], true, "{v:#}");
    let (code, v) = fastcache_json(&["inspect", &inc1]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(
        (v["kind"].as_str(), v["from_lsn"].as_u64(), v["to_lsn"].as_u64()),
        (Some("incremental"), Some(l1), Some(l2))
    );

    // check of the backup directory itself checks its chains.
    let (code, v) = fastcache_json(&["check", s(&dest)]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["backups"]["chains"].as_array().map(Vec::len), Some(1), "{v:#}");

    // A damaged incremental: check names it, restore refuses naming it.
    flip_bit(Path::new(&inc1), 100);
    let (code, v) = fastcache_json(&["check", s(&root), "--backups", s(&dest)]);
    assert_eq!(code, 1, "{v:#}");
    let name = Path::new(&inc1).file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    assert!(
        v["problems"].as_array().is_some_and(|p| p
            .iter()
            .any(|p| p["kind"] == "backup" && p["file"].as_str().is_some_and(|f| f.contains(&name)))),
        "{v:#}"
    );
    let (code, _) = fastcache_json(&["check", s(&dest)]);
    assert_eq!(code, 1);
    let (code, v) = fastcache_json(&["restore", s(&dest), s(&tmp.path().join("r2"))]);
    assert_eq!(code, 1);
    assert!(v["error"].as_str().unwrap_or_default().contains(&name), "{v:#}");
    Ok(())
}

#[test]
fn offline_backup_refuses_a_directory_in_use() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let root = tmp.path().join("data");
    build_dir(&root, 50, 50)?;
    // `flock` belongs to the open file description: a child process that
    // another test forks at the wrong moment holds `build_dir`'s LOCK fd
    // until it execs (close-on-exec), so the lock may outlive `close` by a
    // moment. Retry, bounded.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let (wal, _) = loop {
        match Wal::open(&root.join("wal"), wal_options()) {
            Err(fastcache_wal::Error::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => break other?,
        }
    };
    let (code, v) = fastcache_json(&["backup", s(&root), s(&tmp.path().join("b"))]);
    assert_eq!(code, 1);
    assert!(v["error"].as_str().unwrap_or_default().contains("--from"), "{v:#}");
    wal.close()?;
    // An incremental backup with no chain yet falls back to a full one.
    let v = backup(&[s(&root), s(&tmp.path().join("b")), "--incremental"]);
    assert_eq!(v["kind"], "full");
    assert!(v["fell_back_to_full"].is_string(), "{v:#}");
    Ok(())
}

#[test]
fn online_backup_of_a_running_server() -> TestResult {
    let Some(bin) = server_bin() else { return Ok(()) };
    let tmp = tempfile::tempdir()?;
    let data = tmp.path().join("data");
    let dest = tmp.path().join("backups");
    let server = Server::start(&bin, &data)?;
    for i in 0..300 {
        server.call(&["SET", &format!("key:{i}"), &format!("value-{i}")])?;
        if i % 10 == 0 {
            server.call(&["RPUSH", "list", &i.to_string()])?;
            server.call(&["HSET", "hash", &format!("f{i}"), "v"])?;
        }
    }
    // An offline backup of a directory in use is refused.
    let (code, _) = fastcache_json(&["backup", s(&data), s(&dest)]);
    assert_eq!(code, 1);
    // check reads it anyway and says it is in use.
    let (_, v) = fastcache_json(&["check", s(&data)]);
    assert!(v["in_use_by"].is_string(), "{v:#}");

    let v = backup(&["--from", &server.addr(), s(&dest)]);
    assert_eq!((v["kind"].as_str(), v["online"].as_bool()), (Some("full"), Some(true)), "{v:#}");
    let l1 = v["to_lsn"].as_u64().ok_or("to_lsn")?;
    assert!(l1 >= 360, "{v:#}");
    for i in 0..50 {
        server.call(&["SET", &format!("key:{i}"), "changed"])?;
        server.call(&["DEL", &format!("key:{}", 100 + i)])?;
    }
    let v = backup(&["--from", &server.addr(), s(&dest), "--incremental"]);
    assert_eq!(v["kind"], "incremental", "{v:#}");
    assert_eq!(v["from_lsn"].as_u64(), Some(l1), "{v:#}");
    assert_eq!(v["keys"].as_u64(), Some(100), "50 changed, 50 deleted: {v:#}");

    // No more writes: the server's final state is what the backup restores.
    let _ = server.call(&["SHUTDOWN"]);
    server.wait()?;
    let r = tmp.path().join("restored");
    let got = restore(&dest, &r, &[])?;
    assert_eq!(got, recovered_digest(&data)?);
    // And a server starts on the restored directory with that data.
    let restored = Server::start(&bin, &r)?;
    assert_eq!(restored.call(&["GET", "key:3"])?, "$7\r\nchanged\r\n");
    assert_eq!(restored.call(&["EXISTS", "key:120"])?, ":0\r\n");
    assert_eq!(restored.call(&["DBSIZE"])?, ":252\r\n");
    Ok(())
}
