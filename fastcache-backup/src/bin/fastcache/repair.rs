//! `fastcache repair DIR`: plans from `check`'s analysis, shows the plan,
//! then carries it out under the directory's lock. Never guesses: damage
//! in the middle of the WAL needs an explicit, confirmed lossy mode.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use fastcache_snapshot::SnapshotStore;
use fastcache_wal::inspect::DamageKind;
use fastcache_wal::{RecoveryMode, Wal, WalOptions};
use serde_json::{json, Value};

use crate::check::{analyze, file_name, problem_json, problem_line, rel, Analysis, Kind};
use crate::out::Out;
use crate::util::ManifestState;

#[derive(Debug, Clone)]
enum Action {
    /// Open the WAL in the default mode: cuts the torn tail.
    CutTornTail { file: PathBuf, offset: u64, bytes: u64 },
    /// Open the WAL in a lossy mode.
    WalLossy { mode: RecoveryMode, what: String },
    /// Rewrite the manifest from the snapshot files that verify.
    RebuildManifest { reason: String },
    /// Take a snapshot out of the manifest and rename it `.bad`.
    DropSnapshot { path: PathBuf, reason: String },
}

impl Action {
    fn describe(&self, root: &Path) -> String {
        match self {
            Action::CutTornTail { file, offset, bytes } => format!(
                "cut the torn tail of the WAL: zero {bytes} byte(s) of {} from offset {offset} (an unfinished append; \
                 no acknowledged write is lost under WAL_FSYNC=always)",
                rel(root, file)
            ),
            Action::WalLossy { mode, what } => {
                let name = if *mode == RecoveryMode::PointInTime { "point-in-time" } else { "skip-corrupted" };
                format!("open the WAL with --wal {name}: {what}")
            }
            Action::RebuildManifest { reason } => {
                format!("rebuild snapshots/MANIFEST from the snapshot files whose header and footer verify ({reason})")
            }
            Action::DropSnapshot { path, reason } => format!(
                "drop {} from the manifest and rename it to {}.bad ({reason})",
                rel(root, path),
                file_name(path)
            ),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Action::CutTornTail { .. } => "cut-torn-tail",
            Action::WalLossy { .. } => "wal-lossy-open",
            Action::RebuildManifest { .. } => "rebuild-manifest",
            Action::DropSnapshot { .. } => "drop-snapshot",
        }
    }
}

struct Plan {
    actions: Vec<Action>,
    refusals: Vec<String>,
    /// Problems no action addresses.
    unrepairable: Vec<String>,
}

fn plan(a: &Analysis, mode: Option<RecoveryMode>, accept: bool) -> Plan {
    let root = &a.dir.root;
    let mut p = Plan { actions: Vec::new(), refusals: Vec::new(), unrepairable: Vec::new() };
    if let Some(scan) = &a.wal {
        let middle: Vec<_> = scan.damage.iter().filter(|d| d.kind == DamageKind::Middle).collect();
        if let Some(first) = middle.first() {
            let last = scan.last_lsn.unwrap_or(0);
            let snap_lsn = a.usable.as_ref().and_then(|s| s.info.as_ref()).map_or(0, |i| i.meta.lsn);
            let covered = if snap_lsn >= first.expected_lsn {
                format!(" (those up to LSN {snap_lsn} are also in the snapshot recovery loads, so are not lost)")
            } else {
                String::new()
            };
            let pit = format!(
                "keeps every record before LSN {}, cutting {} at offset {}; the records from LSN {} to {last} that \
                 still verify after the damage are dropped{covered} (the result is written as a new snapshot and the \
                 WAL restarts after it; the damaged segment files are copied to DIR/wal-damaged-*)",
                first.expected_lsn,
                rel(root, &first.cut_at.0),
                first.cut_at.1,
                first.expected_lsn
            );
            let skipped: Vec<String> = middle
                .iter()
                .map(|d| {
                    let next = d.resumes_at.as_ref().map_or("the end".into(), |r| format!("LSN {}", r.lsn));
                    format!("{} bytes at {} offset {} (up to {next})", d.bytes, rel(root, &d.segment), d.offset)
                })
                .collect();
            let skip = format!(
                "keeps every record that verifies and steps over the damaged bytes: {}; the records in them are lost \
                 and later records are applied without them (the result is written as a new snapshot and the WAL \
                 restarts after it; the damaged segment files are copied to DIR/wal-damaged-*)",
                skipped.join("; ")
            );
            match (mode, accept) {
                (None, _) => {
                    let where_ = middle
                        .iter()
                        .map(|d| {
                            let follows = d.resumes_at.as_ref().map_or(String::new(), |r| {
                                format!(
                                    ", valid records follow from LSN {} ({} offset {})",
                                    r.lsn,
                                    file_name(&r.segment),
                                    r.offset
                                )
                            });
                            format!("{} at offset {}: {}{follows}", rel(root, &d.segment), d.offset, d.reason)
                        })
                        .collect::<Vec<_>>()
                        .join("; ");
                    p.refusals.push(format!(
                        "the WAL is damaged in the middle ({where_}). This is not a torn tail: records after the damage \
                         verify, so it is not known which writes were acknowledged. repair will not guess. Choose one, \
                         knowing what it loses, and confirm with --accept-data-loss:\n      \
                         --wal point-in-time: {pit}\n      --wal skip-corrupted: {skip}"
                    ));
                }
                (Some(m), false) => p.refusals.push(format!(
                    "--wal {} loses data; add --accept-data-loss to confirm ({})",
                    if m == RecoveryMode::PointInTime { "point-in-time" } else { "skip-corrupted" },
                    if m == RecoveryMode::PointInTime { pit } else { skip }
                )),
                (Some(m), true) => p
                    .actions
                    .push(Action::WalLossy { mode: m, what: if m == RecoveryMode::PointInTime { pit } else { skip } }),
            }
        } else if let Some(d) = scan.damage.iter().find(|d| d.kind == DamageKind::TornTail) {
            p.actions.push(Action::CutTornTail { file: d.segment.clone(), offset: d.offset, bytes: d.bytes });
        }
    }
    let manifest_damaged = matches!(a.manifest, Some(ManifestState::Damaged { .. }));
    if let Some(ManifestState::Damaged { offset, reason }) = &a.manifest {
        p.actions.push(Action::RebuildManifest { reason: format!("offset {offset}: {reason}") });
    }
    for prob in &a.problems {
        match prob.kind {
            Kind::SnapshotMissing if !manifest_damaged => p.actions.push(Action::DropSnapshot {
                path: prob.file.clone(),
                reason: "the manifest names it but the file is gone".into(),
            }),
            Kind::SnapshotDamaged | Kind::SnapshotMismatch => {
                let snap = a.snapshots.iter().find(|s| s.path == prob.file);
                // Listed now, or listed once the manifest is rebuilt (header and footer verify).
                let would_be_listed =
                    snap.is_some_and(|s| s.listed.is_some() || (manifest_damaged && s.info.is_some()));
                let already =
                    p.actions.iter().any(|x| matches!(x, Action::DropSnapshot { path, .. } if path == &prob.file));
                if would_be_listed && !already {
                    p.actions.push(Action::DropSnapshot { path: prob.file.clone(), reason: prob.message.clone() });
                }
            }
            Kind::WalGap | Kind::Backup => p.unrepairable.push(problem_line(root, prob)),
            _ => {}
        }
    }
    p
}

pub fn run(dir: &Path, dry_run: bool, mode: Option<RecoveryMode>, accept: bool, out: &Out) -> Result<bool> {
    let a = analyze(dir, None, out)?;
    let root = a.dir.root.clone();
    if let Some(who) = &a.locked_by {
        let msg = format!(
            "refusing to repair {}: the directory is in use by a running server ({who}); stop it first. Nothing was changed",
            root.display()
        );
        if out.json {
            out.json(&json!({"dir": root.display().to_string(), "refused": [msg], "done": false}));
        } else {
            eprintln!("fastcache: {msg}");
        }
        return Ok(false);
    }
    let p = plan(&a, mode, accept);
    let plan_json: Vec<Value> =
        p.actions.iter().map(|x| json!({"action": x.name(), "description": x.describe(&root)})).collect();
    if !out.json {
        if a.problems.is_empty() {
            println!("{}: healthy, nothing to repair", root.display());
        } else {
            println!("{}: {} problem(s) found", root.display(), a.problems.len());
            for prob in &a.problems {
                println!("{}", problem_line(&root, prob));
            }
        }
        if !p.actions.is_empty() {
            println!("plan{}:", if dry_run { " (dry run: nothing will be changed)" } else { "" });
            for (i, x) in p.actions.iter().enumerate() {
                println!("  {}. {}", i + 1, x.describe(&root));
            }
        }
        for r in &p.refusals {
            println!("refused: {r}");
        }
        for u in &p.unrepairable {
            println!("cannot be repaired here:\n{u}");
        }
    }
    if !p.refusals.is_empty() || dry_run || p.actions.is_empty() {
        let ok = p.refusals.is_empty() && (dry_run || p.unrepairable.is_empty());
        if out.json {
            out.json(&json!({
                "dir": root.display().to_string(),
                "dry_run": dry_run,
                "problems": a.problems.iter().map(|x| problem_json(&root, x)).collect::<Vec<_>>(),
                "plan": plan_json,
                "refused": p.refusals,
                "unrepairable": p.unrepairable,
                "done": false,
            }));
        } else if !p.refusals.is_empty() {
            println!("nothing was changed");
        } else if dry_run && !p.actions.is_empty() {
            println!("dry run: nothing was changed; run without --dry-run to carry out the plan");
        }
        return Ok(ok);
    }

    execute(&a, &p.actions)?;

    // What is left.
    let after = analyze(dir, None, &Out { progress: false, ..*out })?;
    if out.json {
        out.json(&json!({
            "dir": root.display().to_string(),
            "dry_run": false,
            "problems": a.problems.iter().map(|x| problem_json(&root, x)).collect::<Vec<_>>(),
            "plan": plan_json,
            "refused": [],
            "done": true,
            "after": {
                "healthy": after.healthy(),
                "problems": after.problems.iter().map(|x| problem_json(&root, x)).collect::<Vec<_>>(),
            },
        }));
    } else if after.healthy() {
        println!("done: the directory is healthy now");
    } else {
        println!("done, but {} problem(s) remain:", after.problems.len());
        for prob in &after.problems {
            println!("{}", problem_line(&root, prob));
        }
    }
    Ok(after.healthy())
}

fn execute(a: &Analysis, actions: &[Action]) -> Result<()> {
    let wal_mode = actions.iter().find_map(|x| match x {
        Action::CutTornTail { .. } => Some(RecoveryMode::TolerateTornTail),
        Action::WalLossy { mode, .. } => Some(*mode),
        _ => None,
    });
    // The lock is held from here to the end: by the opened log, or by a
    // guard when the log itself needs nothing.
    let mut guard = None;
    let mut wal = None;
    if let Some(mode) = wal_mode {
        let segment_size = a
            .wal
            .as_ref()
            .and_then(|s| s.segments.iter().rev().find_map(|g| g.segment_size))
            .unwrap_or(WalOptions::default().segment_size);
        let opts = WalOptions { recovery: mode, segment_size, ..WalOptions::default() };
        let (w, report) =
            Wal::open(&a.dir.wal, opts).with_context(|| format!("opening the WAL in {}", a.dir.wal.display()))?;
        eprintln!(
            "WAL opened: {} record(s), LSN {}..={}; {} byte(s) cut{}",
            report.records,
            report.first_lsn,
            report.last_lsn,
            report.truncated_bytes,
            if report.skipped.is_empty() {
                String::new()
            } else {
                format!("; {} damaged place(s) passed over", report.skipped.len())
            }
        );
        wal = Some(w);
    } else if a.dir.wal.is_dir() {
        guard = Some(fastcache_wal::inspect::lock_dir(&a.dir.wal).context("locking the data directory")?);
    }
    let snap_actions: Vec<&Action> =
        actions.iter().filter(|x| matches!(x, Action::RebuildManifest { .. } | Action::DropSnapshot { .. })).collect();
    if !snap_actions.is_empty() {
        let files = crate::util::list_snapshot_files(&a.dir.snapshots)?;
        let retain = files.snapshots.len().max(fastcache_snapshot::DEFAULT_RETAIN);
        let store = SnapshotStore::open(&a.dir.snapshots, retain)?;
        for x in &snap_actions {
            if let Action::RebuildManifest { .. } = x {
                let listed = store.rebuild_manifest()?;
                eprintln!("manifest rebuilt: {} snapshot(s) listed", listed.len());
            }
        }
        for x in &snap_actions {
            if let Action::DropSnapshot { path, .. } = x {
                match store.drop_snapshot(path)? {
                    Some(bad) => eprintln!("dropped {}; the file is now {}", file_name(path), bad.display()),
                    None => eprintln!("dropped {} from the manifest (the file was already gone)", file_name(path)),
                }
            }
        }
    }
    if let Some(w) = wal {
        if matches!(wal_mode, Some(RecoveryMode::SkipCorrupted | RecoveryMode::PointInTime)) {
            rewrite_past_damage(a, &w)?;
        }
        w.close()?;
    }
    drop(guard);
    Ok(())
}

/// Makes a lossy open permanent. A skip-corrupted open leaves the damaged
/// bytes on disk, and a point-in-time cut below a segment's seal leaves
/// the seal claiming the cut bytes (in both cases the next strict open
/// refuses again); a log cannot hold a hole in its LSNs mid-segment. So the
/// state the lossy open yields — the snapshot recovery loads plus every
/// record the open kept — is written as a new snapshot at the log's last
/// LSN, the damaged segment files are copied aside for people, and the log
/// restarts empty after that LSN (`Wal::restart_after`, the same step that
/// heals a failed log).
fn rewrite_past_damage(a: &Analysis, wal: &Wal) -> Result<()> {
    let engine = crate::util::new_engine();
    let usable = a.usable.as_ref().and_then(|s| s.info.as_ref().map(|i| (s.path.clone(), i.meta.lsn)));
    let from = match &usable {
        Some((path, _)) => crate::util::load_snapshot(&engine, path)?.meta.lsn,
        None => 0,
    };
    let last = wal.last_lsn();
    let first = wal.stats().first_lsn;
    if last > from && first > from + 1 {
        anyhow::bail!("the WAL starts at LSN {first}, after the snapshot's LSN {from} + 1: records are missing; nothing more was changed");
    }
    let mut applied = 0u64;
    if last > from {
        for rec in wal.reader(from + 1)? {
            let (lsn, payload) = rec?;
            let record = fastcache_core::Record::decode(&payload)
                .with_context(|| format!("decoding the record at LSN {lsn}"))?;
            engine.apply_record(&record).with_context(|| format!("re-applying the record at LSN {lsn}"))?;
            applied += 1;
        }
    }
    let lsn = last.max(from);
    let aside = a.dir.root.join(format!("wal-damaged-{}", crate::util::now_ms()));
    std::fs::create_dir_all(&aside)?;
    if let Some(scan) = &a.wal {
        let mut copied = Vec::new();
        for d in &scan.damage {
            for f in [&d.segment, &d.cut_at.0] {
                if !copied.contains(f) && f.exists() {
                    std::fs::copy(f, aside.join(file_name(f)))?;
                    copied.push(f.clone());
                }
            }
        }
    }
    let info = crate::util::write_engine_snapshot(&engine, &a.dir.snapshots, lsn, |_, _| {})?;
    wal.restart_after(lsn)?;
    eprintln!(
        "rewrote the log past the damage: {applied} record(s) after LSN {from} re-applied, snapshot {} at LSN {lsn} \
         published, the WAL restarted after it; the damaged segments were copied to {}",
        file_name(&info.path),
        aside.display()
    );
    Ok(())
}
