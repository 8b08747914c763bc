//! `fastcache restore SRC DIR`: a data directory from a backup directory
//! (chains, plus its WAL copy) at the latest point, an LSN or a time,
//! through `fastcache_backup::restore_with`.

use std::path::Path;

use anyhow::{Context, Result};
use fastcache_backup::{restore_with, LoadProgress, RestoreOptions, RestoreProgress};
use serde_json::json;

use crate::check::file_name;
use crate::out::Out;
use crate::util::{human_bytes, rfc3339_ms};

pub enum Target {
    Latest,
    Lsn(u64),
    Time(u64),
}

pub fn run(src: &Path, dir: &Path, target: Target, force: bool, out: &Out) -> Result<bool> {
    let target = match target {
        Target::Latest => fastcache_backup::Target::Latest,
        Target::Lsn(n) => fastcache_backup::Target::Lsn(n),
        Target::Time(t) => fastcache_backup::Target::Time(t),
    };
    let opts = RestoreOptions { force, databases: crate::util::new_engine().databases(), ..RestoreOptions::default() };
    let pb = out.bar(0, "chunks");
    pb.set_message("restoring");
    let report = restore_with(src, dir, target, &opts, |p| match p {
        RestoreProgress::Backup(LoadProgress::File { path, chunks_done, chunks }) => {
            pb.set_message(file_name(&path));
            pb.set_length(chunks);
            pb.set_position(chunks_done);
        }
        RestoreProgress::Wal { records, lsn } => {
            pb.set_message(format!("WAL LSN {lsn}"));
            pb.set_position(records);
        }
        _ => pb.set_message("writing"),
    })
    .with_context(|| format!("restoring {} from {}", dir.display(), src.display()))?;
    pb.finish_and_clear();
    if out.json {
        out.json(&json!({
            "src": src.display().to_string(),
            "dir": dir.display().to_string(),
            "target": target.to_string(),
            "lsn": report.lsn,
            "keys": report.keys,
            "backup_lsn": report.backup_lsn,
            "chain": report.source.as_ref().map(|p| p.display().to_string()),
            "links": report.links.iter().map(|l| json!({
                "file": file_name(&l.path), "from_lsn": l.from_lsn, "to_lsn": l.to_lsn, "created": rfc3339_ms(l.created_unix_ms),
            })).collect::<Vec<_>>(),
            "wal_records": report.wal_records,
            "untimed_records": report.untimed_records,
            "last_record_time": report.last_record_time_ms.map(rfc3339_ms),
            "snapshot": report.snapshot.display().to_string(),
            "elapsed_ms": report.elapsed.as_millis() as u64,
        }));
    } else {
        println!("restored {} to {target}: LSN {}, {} key(s)", dir.display(), report.lsn, report.keys);
        if let Some(chain) = &report.source {
            println!(
                "  from chain {} ({} file(s), up to LSN {})",
                chain.display(),
                report.links.len(),
                report.backup_lsn
            );
            for l in &report.links {
                println!(
                    "    {}  LSN {}..={}  taken {}  {}",
                    file_name(&l.path),
                    l.from_lsn,
                    l.to_lsn,
                    rfc3339_ms(l.created_unix_ms),
                    human_bytes(l.file_bytes)
                );
            }
        }
        if report.wal_records > 0 {
            println!("  then {} WAL record(s) after LSN {}", report.wal_records, report.backup_lsn);
        }
        if report.untimed_records > 0 {
            println!(
                "  note: {} record(s) carried no time (format version 1) and were applied as written before any moment",
                report.untimed_records
            );
        }
        println!(
            "  wrote {} and an empty WAL; start fastcache-server with PERSISTENCE_DIR={}",
            report.snapshot.display(),
            dir.display()
        );
    }
    Ok(true)
}
