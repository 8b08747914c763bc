//! `fastcache check DIR`: a read-only health check of a data directory,
//! and the analysis `repair` plans from.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use fastcache_snapshot::{SnapshotEntry, SnapshotInfo, SnapshotReader};
use fastcache_wal::inspect::{DamageKind, LogScan, LogScanner};
use serde_json::{json, Value};

use crate::out::Out;
use crate::util::{
    human_bytes, list_snapshot_files, read_manifest, rfc3339_ms, snapshot_error_offset, DataDir, ManifestState,
};

/// What is wrong, where, and what would fix it.
#[derive(Debug, Clone)]
pub struct Problem {
    pub file: PathBuf,
    pub offset: Option<u64>,
    pub kind: Kind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The end of a crashed append; an open (or `repair`) cuts it.
    WalTornTail,
    /// Damage with valid records after it (or below a seal): ambiguous.
    WalCorruption,
    /// The WAL does not reach back to the snapshot recovery would load.
    WalGap,
    /// A snapshot file whose header, footer or a chunk does not verify.
    SnapshotDamaged,
    /// The manifest names a file that is not there.
    SnapshotMissing,
    /// The manifest's description of a file disagrees with the file.
    SnapshotMismatch,
    /// The manifest does not parse or its checksum fails.
    ManifestDamaged,
    /// A backup chain does not verify.
    Backup,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::WalTornTail => "wal-torn-tail",
            Kind::WalCorruption => "wal-corruption",
            Kind::WalGap => "wal-gap",
            Kind::SnapshotDamaged => "snapshot-damaged",
            Kind::SnapshotMissing => "snapshot-missing",
            Kind::SnapshotMismatch => "snapshot-mismatch",
            Kind::ManifestDamaged => "manifest-damaged",
            Kind::Backup => "backup",
        }
    }

    pub fn fix(self) -> &'static str {
        match self {
            Kind::WalTornTail => "`fastcache repair DIR` cuts it (the server also cuts a torn tail when it starts)",
            Kind::WalCorruption => {
                "ambiguous: `fastcache repair DIR --wal point-in-time --accept-data-loss` keeps every record before the \
                 damage, `--wal skip-corrupted --accept-data-loss` every record that still verifies"
            }
            Kind::WalGap => {
                "records are missing and no repair can bring them back: restore from a backup (`fastcache restore`)"
            }
            Kind::SnapshotDamaged | Kind::SnapshotMissing | Kind::SnapshotMismatch => {
                "`fastcache repair DIR` drops it from the manifest (the file is kept, renamed *.bad)"
            }
            Kind::ManifestDamaged => "`fastcache repair DIR` rebuilds the manifest from the snapshot files that verify",
            Kind::Backup => "take a new full backup (`fastcache backup`); the damaged chain cannot be restored past the damage",
        }
    }
}

/// One snapshot file as checked.
#[derive(Debug, Clone)]
pub struct SnapCheck {
    pub path: PathBuf,
    /// The manifest's line for it, if it names it.
    pub listed: Option<SnapshotEntry>,
    /// Header and footer, if they verify.
    pub info: Option<SnapshotInfo>,
    /// Every chunk verified too.
    pub ok: bool,
}

/// Everything `check` found.
pub struct Analysis {
    pub dir: DataDir,
    pub locked_by: Option<String>,
    pub wal: Option<LogScan>,
    pub manifest: Option<ManifestState>,
    pub snapshots: Vec<SnapCheck>,
    /// The snapshot recovery would load (newest listed that verifies).
    pub usable: Option<SnapCheck>,
    pub backups: Option<Value>,
    pub problems: Vec<Problem>,
    pub notes: Vec<String>,
}

impl Analysis {
    pub fn healthy(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Reads and verifies everything in `dir`; changes nothing.
pub fn analyze(root: &Path, backups: Option<&Path>, out: &Out) -> Result<Analysis> {
    let dir = DataDir::new(root);
    if !root.is_dir() {
        bail!("{} is not a directory", root.display());
    }
    if !dir.exists() {
        bail!(
            "{} is not a FastCache data directory (it has neither wal/ nor snapshots/; pass the server's PERSISTENCE_DIR)",
            root.display()
        );
    }
    // A backup directory (chains and a WAL copy, as `fastcache backup`
    // writes it): its chains and WAL copy are what there is to check.
    let is_backup_dir = !dir.snapshots.is_dir()
        && fastcache_backup::BackupDir::open_read_only(root).and_then(|b| b.chain_dirs()).is_ok_and(|d| !d.is_empty());
    if is_backup_dir {
        let (value, problems) = crate::backup::check_backups(root, out)?;
        return Ok(Analysis {
            locked_by: None,
            dir,
            wal: None,
            manifest: None,
            snapshots: Vec::new(),
            usable: None,
            backups: Some(value),
            problems,
            notes: vec![format!("{} is a backup directory: its chains and WAL copy were checked", root.display())],
        });
    }
    let mut a = Analysis {
        locked_by: dir.lock_holder()?,
        dir: dir.clone(),
        wal: None,
        manifest: None,
        snapshots: Vec::new(),
        usable: None,
        backups: None,
        problems: Vec::new(),
        notes: Vec::new(),
    };
    if let Some(who) = &a.locked_by {
        a.notes.push(format!(
            "the directory is in use by a running server ({who}): files can change while they are read, so what follows \
             may be out of date"
        ));
    }

    // The WAL.
    if dir.wal.is_dir() {
        let total: u64 =
            std::fs::read_dir(&dir.wal)?.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum();
        let pb = out.bar(total, "bytes");
        pb.set_message("WAL");
        let scan = LogScanner::new(&dir.wal).on_progress(|done, _| pb.set_position(done)).run()?;
        pb.finish_and_clear();
        for d in &scan.damage {
            let (kind, what) = match d.kind {
                DamageKind::TornTail => (
                    Kind::WalTornTail,
                    format!("torn tail ({} bytes after the last valid record, LSN {})", d.bytes, d.expected_lsn - 1),
                ),
                DamageKind::Middle => (Kind::WalCorruption, "damage in the middle of the log".to_string()),
            };
            let mut message = format!("{what}: {}", d.reason);
            if let Some((stored, computed)) = d.checksum {
                message.push_str(&format!(" (stored {stored:#010x}, computed {computed:#010x})"));
            }
            if let Some(r) = &d.resumes_at {
                message.push_str(&format!(
                    "; valid records follow: LSN {} in {} at offset {}",
                    r.lsn,
                    file_name(&r.segment),
                    r.offset
                ));
            } else if d.kind == DamageKind::Middle {
                message.push_str("; nothing valid follows, but the bytes were sealed as durable");
            }
            a.problems.push(Problem { file: d.segment.clone(), offset: Some(d.offset), kind, message });
        }
        for f in &scan.spare_files {
            a.notes
                .push(format!("{}: a spare segment being prepared (removed when the log is next opened)", f.display()));
        }
        for f in &scan.other_files {
            a.notes.push(format!("{}: not a WAL file", f.display()));
        }
        a.wal = Some(scan);
    } else {
        a.notes.push(format!("{} does not exist (no WAL)", dir.wal.display()));
    }

    // The snapshots and the manifest.
    if dir.snapshots.is_dir() {
        let manifest = read_manifest(&dir.snapshots)?;
        let listed: Vec<SnapshotEntry> = match &manifest {
            ManifestState::Ok(l) => l.clone(),
            ManifestState::Missing => Vec::new(),
            ManifestState::Damaged { offset, reason } => {
                a.problems.push(Problem {
                    file: dir.snapshots.join(fastcache_snapshot::MANIFEST_FILE),
                    offset: Some(*offset),
                    kind: Kind::ManifestDamaged,
                    message: format!("the snapshot manifest is damaged: {reason}"),
                });
                Vec::new()
            }
        };
        let files = list_snapshot_files(&dir.snapshots)?;
        if matches!(manifest, ManifestState::Missing) && !files.snapshots.is_empty() {
            a.notes.push(format!(
                "{} has snapshot files but no MANIFEST: no snapshot counts (a server would start from the WAL alone)",
                dir.snapshots.display()
            ));
        }
        for e in &listed {
            if !e.path.exists() {
                a.problems.push(Problem {
                    file: e.path.clone(),
                    offset: None,
                    kind: Kind::SnapshotMissing,
                    message: format!(
                        "the manifest names snapshot {} (LSN {}), which does not exist",
                        file_name(&e.path),
                        e.lsn
                    ),
                });
            }
        }
        let mut opened = Vec::new();
        for path in &files.snapshots {
            let entry = listed.iter().find(|e| e.path.file_name() == path.file_name()).cloned();
            match SnapshotReader::open(path) {
                Ok(r) => opened.push((path.clone(), entry, r)),
                Err(e) if !e.is_corruption() => return Err(e.into()),
                Err(e) => {
                    a.problems.push(Problem {
                        file: path.clone(),
                        offset: snapshot_error_offset(&e),
                        kind: Kind::SnapshotDamaged,
                        message: format!("snapshot does not verify: {e}"),
                    });
                    a.snapshots.push(SnapCheck { path: path.clone(), listed: entry, info: None, ok: false });
                }
            }
        }
        let total_chunks: u64 = opened.iter().map(|(_, _, r)| u64::from(r.info().chunks)).sum();
        let pb = out.bar(total_chunks, "chunks");
        pb.set_message("snapshots");
        for (path, entry, reader) in opened {
            let info = reader.info().clone();
            let mut ok = true;
            for chunk in reader.chunks() {
                pb.inc(1);
                if let Err(e) = chunk {
                    ok = false;
                    a.problems.push(Problem {
                        file: path.clone(),
                        offset: snapshot_error_offset(&e),
                        kind: Kind::SnapshotDamaged,
                        message: format!("snapshot chunk does not verify: {e}"),
                    });
                    break;
                }
            }
            if let Some(e) = &entry {
                let found = (info.meta.lsn, info.meta.created_unix_ms, info.keys, info.file_bytes);
                let said = (e.lsn, e.created_unix_ms, e.keys, e.file_bytes);
                if found != said {
                    ok = false;
                    a.problems.push(Problem {
                        file: path.clone(),
                        offset: Some(0),
                        kind: Kind::SnapshotMismatch,
                        message: format!(
                            "the file (lsn, created, keys, bytes) = {found:?} does not match the manifest's {said:?}"
                        ),
                    });
                }
            } else if matches!(manifest, ManifestState::Ok(_)) {
                a.notes.push(format!(
                    "{}: not named by the manifest (an orphan the next snapshot removes, or one being published)",
                    path.display()
                ));
            }
            a.snapshots.push(SnapCheck { path, listed: entry, info: Some(info), ok });
        }
        pb.finish_and_clear();
        a.snapshots.sort_by(|x, y| x.path.cmp(&y.path));
        for f in &files.bad {
            a.notes.push(format!("{}: a snapshot set aside as damaged (kept for people, never read)", f.display()));
        }
        for f in &files.tmp {
            a.notes
                .push(format!("{}: an unfinished temporary file (removed when the store is next opened)", f.display()));
        }
        // What recovery would load: the newest listed snapshot that verifies
        // (from the files themselves when the manifest is damaged).
        let mut candidates: Vec<&SnapCheck> = a
            .snapshots
            .iter()
            .filter(|s| s.ok && (s.listed.is_some() || matches!(manifest, ManifestState::Damaged { .. })))
            .collect();
        candidates.sort_by_key(|s| s.info.as_ref().map(|i| (i.meta.lsn, i.meta.created_unix_ms)));
        a.usable = candidates.last().map(|s| (*s).clone());
        a.manifest = Some(manifest);
    } else {
        a.notes.push(format!("{} does not exist (no snapshots)", dir.snapshots.display()));
    }

    // Does the log reach back to the snapshot recovery would start from?
    if let Some(scan) = &a.wal {
        let from = a.usable.as_ref().and_then(|s| s.info.as_ref()).map_or(0, |i| i.meta.lsn);
        if let (Some(first), Some(last)) = (scan.first_lsn, scan.last_lsn) {
            if last > from && first > from + 1 {
                let what = match &a.usable {
                    Some(s) => format!(
                        "the snapshot recovery would load ({}) holds records up to LSN {from}",
                        file_name(&s.path)
                    ),
                    None => "there is no usable snapshot, so recovery needs the log from LSN 1".to_string(),
                };
                let file = scan.segments.iter().find(|s| s.in_log).map_or(dir.wal.clone(), |s| s.path.clone());
                a.problems.push(Problem {
                    file,
                    offset: Some(0),
                    kind: Kind::WalGap,
                    message: format!(
                        "{what}, but the WAL starts at LSN {first}: records {}..={} are missing (a server refuses to start)",
                        from + 1,
                        first - 1
                    ),
                });
            }
        }
    }

    // Backups.
    let backup_dir = backups.map(Path::to_path_buf).unwrap_or_else(|| root.join("backups"));
    if backup_dir.is_dir() {
        let (value, problems) = crate::backup::check_backups(&backup_dir, out)?;
        a.backups = Some(value);
        a.problems.extend(problems);
    } else if let Some(b) = backups {
        bail!("--backups {}: not a directory", b.display());
    }
    Ok(a)
}

pub fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// The file's path relative to the data directory when it is inside it.
pub fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).map_or_else(|_| p.display().to_string(), |r| r.display().to_string())
}

pub fn problem_json(root: &Path, p: &Problem) -> Value {
    json!({
        "file": rel(root, &p.file),
        "path": p.file.display().to_string(),
        "offset": p.offset,
        "kind": p.kind.name(),
        "message": p.message,
        "fix": p.kind.fix(),
    })
}

pub fn problem_line(root: &Path, p: &Problem) -> String {
    let at = p.offset.map_or(String::new(), |o| format!(" at offset {o}"));
    format!("  [{}] {}{at}: {}\n      fix: {}", p.kind.name(), rel(root, &p.file), p.message, p.kind.fix())
}

pub fn analysis_json(a: &Analysis) -> Value {
    let root = &a.dir.root;
    let wal = a.wal.as_ref().map(|s| {
        json!({
            "segments": s.segments.len(),
            "bytes": s.segments.iter().map(|g| g.file_bytes).sum::<u64>(),
            "records": s.records,
            "payload_bytes": s.payload_bytes,
            "first_lsn": s.first_lsn,
            "last_lsn": s.last_lsn,
            "gaps": s.gaps.iter().map(|g| json!({"after": g.after, "next": g.next, "file": rel(root, &g.segment)})).collect::<Vec<_>>(),
            "segment_files": s.segments.iter().map(|g| json!({
                "file": rel(root, &g.path),
                "name_lsn": g.name_lsn,
                "bytes": g.file_bytes,
                "records": g.records,
                "first_lsn": g.first_lsn,
                "last_lsn": g.last_lsn,
                "sealed": g.seal.map(|s| if s.complete { "complete" } else { "closed" }),
                "in_log": g.in_log,
            })).collect::<Vec<_>>(),
        })
    });
    let manifest = a.manifest.as_ref().map(|m| match m {
        ManifestState::Missing => json!({"state": "missing"}),
        ManifestState::Ok(l) => json!({"state": "ok", "entries": l.len()}),
        ManifestState::Damaged { offset, reason } => json!({"state": "damaged", "offset": offset, "reason": reason}),
    });
    let snapshots: Vec<Value> = a
        .snapshots
        .iter()
        .map(|s| {
            json!({
                "file": rel(root, &s.path),
                "listed": s.listed.is_some(),
                "ok": s.ok,
                "lsn": s.info.as_ref().map(|i| i.meta.lsn),
                "created_unix_ms": s.info.as_ref().map(|i| i.meta.created_unix_ms),
                "created": s.info.as_ref().map(|i| rfc3339_ms(i.meta.created_unix_ms)),
                "keys": s.info.as_ref().map(|i| i.keys),
                "chunks": s.info.as_ref().map(|i| i.chunks),
                "raw_bytes": s.info.as_ref().map(|i| i.raw_bytes),
                "bytes": s.info.as_ref().map(|i| i.file_bytes),
            })
        })
        .collect();
    json!({
        "dir": root.display().to_string(),
        "healthy": a.healthy(),
        "in_use_by": a.locked_by,
        "wal": wal,
        "manifest": manifest,
        "snapshots": snapshots,
        "recovery_snapshot": a.usable.as_ref().map(|s| rel(root, &s.path)),
        "backups": a.backups,
        "problems": a.problems.iter().map(|p| problem_json(root, p)).collect::<Vec<_>>(),
        "notes": a.notes,
    })
}

pub fn print_summary(a: &Analysis, out: &Out) {
    let root = &a.dir.root;
    out.line(format!("data directory {}", root.display()));
    if let Some(who) = &a.locked_by {
        out.line(format!("  in use by a running server ({who})"));
    }
    if let Some(s) = &a.wal {
        let bytes: u64 = s.segments.iter().map(|g| g.file_bytes).sum();
        let range = match (s.first_lsn, s.last_lsn) {
            (Some(f), Some(l)) => format!("LSN {f}..={l}"),
            _ => "no records".into(),
        };
        out.line(format!(
            "WAL: {} segment(s), {} on disk, {} record(s) ({} of payload), {range}",
            s.segments.len(),
            human_bytes(bytes),
            s.records,
            human_bytes(s.payload_bytes)
        ));
        for g in &s.gaps {
            out.line(format!("  recorded gap after LSN {} (next {}) in {}", g.after, g.next, rel(root, &g.segment)));
        }
    }
    if let Some(m) = &a.manifest {
        let state = match m {
            ManifestState::Missing => "no MANIFEST".to_string(),
            ManifestState::Ok(l) => format!("MANIFEST lists {}", l.len()),
            ManifestState::Damaged { .. } => "MANIFEST damaged".to_string(),
        };
        out.line(format!("snapshots: {} file(s), {state}", a.snapshots.len()));
        for s in &a.snapshots {
            let status = if s.ok { "ok" } else { "DAMAGED" };
            let listed = if s.listed.is_some() { "listed" } else { "not listed" };
            match &s.info {
                Some(i) => out.line(format!(
                    "  {}  LSN {}  created {}  {} keys  {}  {listed}  {status}",
                    rel(root, &s.path),
                    i.meta.lsn,
                    rfc3339_ms(i.meta.created_unix_ms),
                    i.keys,
                    human_bytes(i.file_bytes)
                )),
                None => out.line(format!("  {}  {listed}  {status}", rel(root, &s.path))),
            }
        }
        if let Some(u) = &a.usable {
            out.line(format!("  recovery would load {}", rel(root, &u.path)));
        }
    }
    if let Some(b) = &a.backups {
        crate::backup::print_backups(b, out);
    }
    for n in &a.notes {
        out.line(format!("note: {n}"));
    }
}

/// `fastcache check`.
pub fn run(dir: &Path, backups: Option<&Path>, out: &Out) -> Result<bool> {
    let a = analyze(dir, backups, out)?;
    if out.json {
        out.json(&analysis_json(&a));
    } else {
        print_summary(&a, out);
        if a.healthy() {
            out.line("healthy: no problems found");
        } else {
            out.line(format!("{} problem(s):", a.problems.len()));
            for p in &a.problems {
                out.line(problem_line(&a.dir.root, p));
            }
        }
    }
    Ok(a.healthy())
}
