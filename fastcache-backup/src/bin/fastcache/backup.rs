//! `fastcache backup`: offline (a data directory no server has open) or
//! online (`--from HOST:PORT`: BGSAVE on the server, then a copy of its
//! newest snapshot and WAL), full or `--incremental`, into a backup
//! directory of chains (`fastcache_backup::BackupDir`) plus a copy of the
//! WAL in `DEST/wal/` for restores to a point between backups. Also the
//! backup parts of `check` and `inspect`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use fastcache_backup::{verify_chain, BackupDir, Chain, ChainProblem, Error as BackupError, LinkInfo, LinkKind};
use fastcache_core::{decode_changes, ChangeEntry};
use fastcache_snapshot::{SnapshotKind, SnapshotReader, SnapshotStore};
use fastcache_wal::inspect::{DamageKind, LogScanner};
use serde_json::{json, Value};

use crate::check::{file_name, Kind, Problem};
use crate::out::Out;
use crate::resp::{Client, Resp};
use crate::util::{human_bytes, rfc3339_ms, show_bytes, snapshot_error_offset, DataDir};

pub struct Options {
    pub dir: Option<PathBuf>,
    pub dest: PathBuf,
    pub from: Option<String>,
    pub password: Option<String>,
    pub incremental: bool,
    pub timeout_secs: u64,
    pub retain: usize,
}

/// Where the files of a backup come from.
struct Staged {
    /// A data directory (`wal/`, `snapshots/`) to back up.
    data: DataDir,
    /// A scratch copy to remove afterwards.
    scratch: Option<PathBuf>,
    /// The server's data directory (online) for the report.
    server_dir: Option<PathBuf>,
}

pub fn run(opts: &Options, out: &Out) -> Result<bool> {
    let staged = match &opts.from {
        Some(addr) => stage_online(addr, opts, out)?,
        None => {
            let dir = opts.dir.clone().context("backup needs DIR DEST, or --from HOST:PORT DEST")?;
            stage_offline(&dir, out)?
        }
    };
    let result = write_backup(&staged, opts, out);
    if let Some(s) = &staged.scratch {
        let _ = std::fs::remove_dir_all(s);
    }
    result
}

/// Offline: the directory must not be in use, and its WAL must open.
fn stage_offline(dir: &Path, out: &Out) -> Result<Staged> {
    let data = DataDir::new(dir);
    if !data.exists() {
        bail!("{} is not a FastCache data directory (no wal/ or snapshots/)", dir.display());
    }
    if let Some(who) = data.lock_holder()? {
        bail!(
            "{} is in use by a running server ({who}): an offline backup would read files that are being written. \
             Use `fastcache backup --from HOST:PORT DEST` to back up a running server",
            dir.display()
        );
    }
    let a = crate::check::analyze(dir, None, &Out { progress: false, ..*out })?;
    if let Some(scan) = &a.wal {
        if let Some(d) = scan.damage.iter().find(|d| d.kind == DamageKind::Middle) {
            bail!(
                "the WAL of {} is damaged at {} offset {} ({}); run `fastcache check` and `fastcache repair` first",
                dir.display(),
                file_name(&d.segment),
                d.offset,
                d.reason
            );
        }
        if scan.damage.iter().any(|d| d.kind == DamageKind::TornTail) {
            out.line("note: the WAL ends in a torn write; it is cut as a server start would cut it");
        }
    }
    if let Some(p) = a.problems.iter().find(|p| p.kind == Kind::WalGap) {
        bail!("{}: {}", dir.display(), p.message);
    }
    Ok(Staged { data, scratch: None, server_dir: None })
}

fn info_field(info: &[u8], name: &str) -> Option<String> {
    String::from_utf8_lossy(info)
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')).map(|v| v.trim().to_string()))
}

/// Online: BGSAVE, wait for it, then copy the newest snapshot and the WAL.
fn stage_online(addr: &str, opts: &Options, out: &Out) -> Result<Staged> {
    let timeout = Duration::from_secs(opts.timeout_secs.max(1));
    let mut c = Client::connect(addr, Duration::from_secs(30))?;
    if let Some(pw) = &opts.password {
        c.call(&[b"AUTH", pw.as_bytes()])?;
    }
    let server_dir = match &opts.dir {
        Some(d) => d.clone(),
        None => match c.call(&[b"CONFIG", b"GET", b"dir"])? {
            Resp::Array(Some(v)) if v.len() == 2 => {
                PathBuf::from(String::from_utf8_lossy(v[1].as_bytes().unwrap_or_default()).into_owned())
            }
            other => bail!("CONFIG GET dir answered {other:?}"),
        },
    };
    let data = DataDir::new(&server_dir);
    if !data.snapshots.is_dir() || !data.wal.is_dir() {
        bail!(
            "the server's data directory {} (CONFIG GET dir) is not readable here, or has no wal/ and snapshots/: \
             run the backup on the server's machine, or pass its path as DIR",
            server_dir.display()
        );
    }
    let pb = out.spinner("waiting for BGSAVE");
    let info = |c: &mut Client| -> Result<(bool, u64)> {
        let r = c.call(&[b"INFO", b"persistence"])?;
        let text = r.as_bytes().unwrap_or_default().to_vec();
        let running = info_field(&text, "rdb_bgsave_in_progress").is_some_and(|v| v == "1");
        let saves = info_field(&text, "rdb_saves")
            .and_then(|v| v.parse().ok())
            .context("INFO persistence has no rdb_saves field: is this a FastCache server with snapshots enabled?")?;
        Ok((running, saves))
    };
    let start = Instant::now();
    // One BGSAVE of our own: a save already running may have started before
    // the writes we are asked to back up.
    let saves_before = loop {
        let (running, saves) = info(&mut c)?;
        if !running {
            match c.call(&[b"BGSAVE"]) {
                Ok(_) => break saves,
                Err(e) if e.to_string().contains("in progress") => {}
                Err(e) => return Err(e),
            }
        }
        if start.elapsed() > timeout {
            bail!("the server was busy saving for {}s; try again or raise --timeout", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    loop {
        let (running, saves) = info(&mut c)?;
        if !running && saves > saves_before {
            break;
        }
        if !running {
            let r = c.call(&[b"INFO", b"persistence"])?;
            let text = r.as_bytes().unwrap_or_default().to_vec();
            if info_field(&text, "rdb_last_bgsave_status").is_some_and(|s| s != "ok") {
                bail!("the server's BGSAVE failed (INFO persistence: rdb_last_bgsave_status is not ok); see its log");
            }
        }
        if start.elapsed() > timeout {
            bail!("BGSAVE did not finish within {}s (raise --timeout)", timeout.as_secs());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    pb.finish_and_clear();

    // The copy goes into DEST so that moving it in place is a rename.
    std::fs::create_dir_all(&opts.dest).with_context(|| format!("creating {}", opts.dest.display()))?;
    let scratch = opts.dest.join(format!(".incoming-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let staged = DataDir::new(&scratch);
    std::fs::create_dir_all(&staged.snapshots)?;
    std::fs::create_dir_all(&staged.wal)?;
    let result = (|| -> Result<()> {
        copy_newest_snapshot(&data.snapshots, &staged.snapshots)?;
        copy_wal(&data.wal, &staged.wal, out)?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&scratch);
        return Err(e);
    }
    Ok(Staged { data: staged, scratch: Some(scratch), server_dir: Some(server_dir) })
}

/// Copies the newest snapshot the server's manifest lists (retrying if the
/// server's retention removes it meanwhile) and publishes it in `to`.
fn copy_newest_snapshot(from: &Path, to: &Path) -> Result<()> {
    for _ in 0..5 {
        let entries = match crate::util::read_manifest(from)? {
            crate::util::ManifestState::Ok(e) => e,
            crate::util::ManifestState::Missing => bail!("the server has no published snapshot in {}", from.display()),
            crate::util::ManifestState::Damaged { offset, reason } => {
                bail!("the server's snapshot manifest is damaged at offset {offset}: {reason}")
            }
        };
        let Some(newest) = entries.first() else { bail!("the server's manifest lists no snapshot") };
        let target = to.join(file_name(&newest.path));
        match std::fs::copy(&newest.path, &target) {
            Ok(_) => {
                let reader = SnapshotReader::open(&target)?;
                reader.verify().with_context(|| format!("verifying the copy of {}", newest.path.display()))?;
                let store = SnapshotStore::open(to, fastcache_snapshot::DEFAULT_RETAIN)?;
                store.publish(reader.info())?;
                return Ok(());
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("copying {}", newest.path.display())),
        }
    }
    bail!("the server's newest snapshot kept disappearing while it was copied; try again")
}

/// Copies every WAL segment (a live log: segments may be removed by
/// retention meanwhile, and the active one may end in a torn write), then
/// checks the copy: damage is allowed only as a torn tail.
fn copy_wal(from: &Path, to: &Path, out: &Out) -> Result<()> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(from)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    names.sort();
    let total: u64 = names.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    let pb = out.bar(total, "bytes");
    pb.set_message("copying WAL");
    for p in &names {
        match std::fs::copy(p, to.join(file_name(p))) {
            Ok(n) => pb.inc(n),
            // Removed by retention after a snapshot: older than what we need.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("copying {}", p.display())),
        }
    }
    pb.finish_and_clear();
    let scan = LogScanner::new(to).run()?;
    if let Some(d) = scan.damage.iter().find(|d| d.kind == DamageKind::Middle) {
        // A segment removed between listing and copying leaves a gap at the
        // start; anything else is real damage.
        bail!(
            "the copy of the server's WAL does not verify at {} offset {}: {}",
            file_name(&d.segment),
            d.offset,
            d.reason
        );
    }
    Ok(())
}

fn write_backup(staged: &Staged, opts: &Options, out: &Out) -> Result<bool> {
    let dest = &opts.dest;
    let databases = crate::util::new_engine().databases();
    let backups = BackupDir::open(dest, opts.retain.max(1))
        .with_context(|| format!("opening the backup directory {}", dest.display()))?
        .with_databases(databases);
    let pb = out.spinner(if opts.incremental { "incremental backup" } else { "full backup" });
    let mut fell_back = None;
    let link = match backups.backup_data_dir(&staged.data.root, opts.incremental) {
        Ok(l) => l,
        Err(BackupError::NeedsFull { reason, .. }) if opts.incremental => {
            fell_back = Some(reason.clone());
            pb.suspend(|| {
                eprintln!("note: an incremental backup is not possible ({reason}); taking a full backup (a new chain)")
            });
            backups.backup_data_dir(&staged.data.root, false)?
        }
        Err(e) => return Err(e.into()),
    };
    pb.finish_and_clear();
    // The WAL copy, for restores to a point between backups: replaced whole
    // by the log as it is now (a suffix of it the next time).
    let wal_copy = refresh_wal_copy(&staged.data.wal, dest)?;
    let chain = Chain::open(&link.chain)?;
    let report = verify_chain(&chain).map_err(|e| anyhow::anyhow!("the backup just written does not verify: {e}"))?;
    print_link(&link, &report, staged, fell_back.as_deref(), wal_copy, out);
    Ok(true)
}

/// Replaces `dest/wal` with a copy of `wal` (when there is one).
fn refresh_wal_copy(wal: &Path, dest: &Path) -> Result<Option<(u64, u64)>> {
    if !wal.is_dir() {
        return Ok(None);
    }
    let tmp = dest.join(format!(".wal-new-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    for e in std::fs::read_dir(wal)?.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "wal") {
            std::fs::copy(&p, tmp.join(e.file_name()))?;
        }
    }
    let scan = LogScanner::new(&tmp).run()?;
    let target = dest.join("wal");
    let old = dest.join(format!(".wal-old-{}", std::process::id()));
    if target.exists() {
        std::fs::rename(&target, &old)?;
    }
    std::fs::rename(&tmp, &target)?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(scan.first_lsn.zip(scan.last_lsn))
}

fn print_link(
    link: &LinkInfo,
    report: &fastcache_backup::ChainReport,
    staged: &Staged,
    fell_back: Option<&str>,
    wal: Option<(u64, u64)>,
    out: &Out,
) {
    let kind = match link.link.kind {
        LinkKind::Full => "full",
        LinkKind::Incremental => "incremental",
    };
    if out.json {
        out.json(&json!({
            "kind": kind,
            "written": link.written,
            "fell_back_to_full": fell_back,
            "source": staged.server_dir.as_ref().unwrap_or(&staged.data.root).display().to_string(),
            "online": staged.server_dir.is_some(),
            "chain": link.chain.display().to_string(),
            "file": link.link.path.display().to_string(),
            "from_lsn": link.link.from_lsn,
            "to_lsn": link.link.to_lsn,
            "keys": link.link.keys,
            "file_bytes": link.link.file_bytes,
            "raw_bytes": link.raw_bytes,
            "created": rfc3339_ms(link.link.created_unix_ms),
            "chain_links": report.links,
            "removed_chains": link.removed_chains.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "wal_copy": wal.map(|(f, l)| json!({"first_lsn": f, "last_lsn": l})),
            "verified": true,
        }));
        return;
    }
    if !link.written {
        println!("nothing changed since the last backup (LSN {}): no file written", link.link.to_lsn);
    } else {
        println!(
            "{kind} backup {} — LSN {}..={}, {} key(s), {} ({} of entries)",
            link.link.path.display(),
            link.link.from_lsn,
            link.link.to_lsn,
            link.link.keys,
            human_bytes(link.link.file_bytes),
            human_bytes(link.raw_bytes)
        );
    }
    println!(
        "chain {}: {} link(s) up to LSN {}, every checksum verified",
        link.chain.display(),
        report.links,
        report.lsn
    );
    if let Some((f, l)) = wal {
        println!("WAL copy: LSN {f}..={l} (for restores to a point between backups)");
    }
    for p in &link.removed_chains {
        println!("removed old chain {} (retention)", p.display());
    }
}

fn problem_offset(p: &ChainProblem) -> (PathBuf, Option<u64>) {
    match p {
        ChainProblem::Manifest { file, .. } => (file.clone(), None),
        ChainProblem::Missing { file, .. } | ChainProblem::Mismatch { file, .. } | ChainProblem::Gap { file, .. } => {
            (file.clone(), None)
        }
        ChainProblem::Damaged { file, error, .. } => (file.clone(), snapshot_error_offset(error)),
        ChainProblem::Undecodable { file, .. } => (file.clone(), None),
        _ => (PathBuf::new(), None),
    }
}

/// Verifies every chain of a backup directory (read-only), for `check`.
pub fn check_backups(dir: &Path, out: &Out) -> Result<(Value, Vec<Problem>)> {
    let backups = BackupDir::open_read_only(dir)?;
    let mut chains = Vec::new();
    let mut problems = Vec::new();
    let dirs = backups.chain_dirs()?;
    let pb = out.bar(dirs.len() as u64, "chains");
    pb.set_message("backups");
    for d in dirs {
        pb.inc(1);
        let chain = match Chain::open(&d) {
            Ok(c) => c,
            Err(e) => {
                problems.push(Problem {
                    file: d.join(fastcache_backup::CHAIN_MANIFEST),
                    offset: None,
                    kind: Kind::Backup,
                    message: format!("the chain's manifest cannot be read: {e}"),
                });
                chains.push(json!({"dir": d.display().to_string(), "ok": false}));
                continue;
            }
        };
        let links: Vec<Value> = chain
            .links()
            .map(|l| {
                json!({
                    "file": file_name(&l.path),
                    "kind": if l.kind == LinkKind::Full { "full" } else { "incremental" },
                    "from_lsn": l.from_lsn,
                    "to_lsn": l.to_lsn,
                    "created": rfc3339_ms(l.created_unix_ms),
                    "keys": l.keys,
                    "bytes": l.file_bytes,
                })
            })
            .collect();
        match verify_chain(&chain) {
            Ok(r) => chains.push(json!({
                "dir": d.display().to_string(), "ok": true, "links": links, "base_lsn": r.base_lsn, "lsn": r.lsn,
                "bytes": r.file_bytes,
            })),
            Err(BackupError::BrokenChain { problems: ps, .. }) => {
                for p in &ps {
                    let (file, offset) = problem_offset(p);
                    problems.push(Problem { file, offset, kind: Kind::Backup, message: format!("backup chain: {p}") });
                }
                chains.push(json!({"dir": d.display().to_string(), "ok": false, "links": links}));
            }
            Err(e) => return Err(e.into()),
        }
    }
    pb.finish_and_clear();
    let wal = dir.join("wal");
    let mut wal_copy = Value::Null;
    if wal.is_dir() {
        let scan = LogScanner::new(&wal).run()?;
        for d in scan.damage.iter().filter(|d| d.kind == DamageKind::Middle) {
            problems.push(Problem {
                file: d.segment.clone(),
                offset: Some(d.offset),
                kind: Kind::Backup,
                message: format!("the backup's WAL copy is damaged: {}", d.reason),
            });
        }
        wal_copy = json!({"first_lsn": scan.first_lsn, "last_lsn": scan.last_lsn, "records": scan.records});
    }
    Ok((json!({"dir": dir.display().to_string(), "chains": chains, "wal_copy": wal_copy}), problems))
}

pub fn print_backups(v: &Value, out: &Out) {
    let chains = v["chains"].as_array().cloned().unwrap_or_default();
    out.line(format!("backups {}: {} chain(s)", v["dir"].as_str().unwrap_or_default(), chains.len()));
    for c in &chains {
        let status = if c["ok"] == true { "ok" } else { "BROKEN" };
        let links = c["links"].as_array().map_or(0, Vec::len);
        out.line(format!(
            "  {}  {links} link(s), LSN {}..={}  {status}",
            c["dir"].as_str().map(|d| file_name(Path::new(d))).unwrap_or_default(),
            c["base_lsn"],
            c["lsn"]
        ));
    }
    if let Some(w) = v.get("wal_copy").filter(|w| !w.is_null()) {
        out.line(format!("  WAL copy: LSN {}..={}", w["first_lsn"], w["last_lsn"]));
    }
}

/// `inspect` of an incremental backup file; `None` for other files.
pub fn summarize_backup_file(path: &Path, out: &Out) -> Result<Option<bool>> {
    let Ok(reader) = SnapshotReader::open(path) else { return Ok(None) };
    let info = reader.info().clone();
    let SnapshotKind::Incremental { from_lsn } = info.kind else { return Ok(None) };
    let mut puts = std::collections::BTreeMap::<u32, u64>::new();
    let mut deletes = std::collections::BTreeMap::<u32, u64>::new();
    let mut cleared = Vec::new();
    let mut types = std::collections::BTreeMap::<&'static str, u64>::new();
    let mut sample = Vec::new();
    for chunk in reader.chunks() {
        let (raw, _) = chunk?;
        for e in decode_changes(&raw).with_context(|| format!("decoding a chunk of {}", path.display()))? {
            match e {
                ChangeEntry::Put(s) => {
                    *puts.entry(s.db).or_default() += 1;
                    let ty = match s.value {
                        fastcache_core::ValueDto::String(_) => "string",
                        fastcache_core::ValueDto::List(_) => "list",
                        fastcache_core::ValueDto::Hash(_) => "hash",
                        fastcache_core::ValueDto::Set(_) => "set",
                        fastcache_core::ValueDto::ZSet(_) => "zset",
                    };
                    *types.entry(ty).or_default() += 1;
                    if sample.len() < 10 {
                        sample.push(format!("put db{} {}", s.db, show_bytes(&s.key.0)));
                    }
                }
                ChangeEntry::Delete { db, key } => {
                    *deletes.entry(db).or_default() += 1;
                    if sample.len() < 10 {
                        sample.push(format!("delete db{db} {}", show_bytes(&key.0)));
                    }
                }
                ChangeEntry::ClearDb { db } => cleared.push(db),
            }
        }
    }
    let map = |m: &std::collections::BTreeMap<u32, u64>| {
        m.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>()
    };
    if out.json {
        out.json(&json!({
            "file": path.display().to_string(),
            "kind": "incremental",
            "from_lsn": from_lsn,
            "to_lsn": info.meta.lsn,
            "created": rfc3339_ms(info.meta.created_unix_ms),
            "created_unix_ms": info.meta.created_unix_ms,
            "entries": info.keys,
            "chunks": info.chunks,
            "raw_bytes": info.raw_bytes,
            "file_bytes": info.file_bytes,
            "puts_per_db": map(&puts),
            "deletes_per_db": map(&deletes),
            "cleared_dbs": cleared,
            "types": types.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        }));
    } else {
        println!("incremental backup {}", path.display());
        println!(
            "  the changes after LSN {from_lsn} up to LSN {}, taken {}",
            info.meta.lsn,
            rfc3339_ms(info.meta.created_unix_ms)
        );
        println!(
            "  {} entries in {} chunk(s); {} of entries, {} on disk",
            info.keys,
            info.chunks,
            human_bytes(info.raw_bytes),
            human_bytes(info.file_bytes)
        );
        let per = |m: &std::collections::BTreeMap<u32, u64>| {
            let v: Vec<String> = m.iter().map(|(db, n)| format!("db{db} {n}")).collect();
            if v.is_empty() {
                "-".to_string()
            } else {
                v.join(", ")
            }
        };
        println!("  keys written: {}", per(&puts));
        println!("  keys deleted: {}", per(&deletes));
        let t: Vec<String> = types.iter().map(|(k, v)| format!("{k} {v}")).collect();
        println!("  types written: {}", if t.is_empty() { "-".into() } else { t.join(", ") });
        if !cleared.is_empty() {
            println!("  databases cleared (FLUSHDB/FLUSHALL): {cleared:?}");
        }
        for s in sample {
            println!("    {s}");
        }
        println!("  every checksum verified");
    }
    Ok(Some(true))
}
