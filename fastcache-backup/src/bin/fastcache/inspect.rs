//! `fastcache inspect`: WAL records of a data directory, or a summary of a
//! snapshot (or backup) file. Read-only.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::Path;

use anyhow::{bail, Context, Result};
use fastcache_core::{decode_entries, Record, SnapshotEntry, ValueDto};
use fastcache_snapshot::SnapshotReader;
use fastcache_wal::inspect::LogScanner;
use serde_json::{json, Value};

use crate::check::file_name;
use crate::out::Out;
use crate::util::{human_bytes, now_ms, rfc3339_ms, show_bytes};

/// Commands whose first argument is not a key.
const KEYLESS: &[&str] = &["flushall", "flushdb", "swapdb", "select", "script", "function", "multi", "exec"];

pub fn run(path: &Path, from_lsn: u64, limit: u64, out: &Out) -> Result<bool> {
    if path.is_file() {
        return summarize_file(path, out);
    }
    let wal = if path.join("wal").is_dir() {
        path.join("wal")
    } else if path.is_dir() {
        path.to_path_buf()
    } else {
        bail!("{}: no such file or directory", path.display());
    };
    list_records(&wal, from_lsn, limit, out)
}

fn op_key(command: &str, argv: &[Vec<u8>]) -> Option<Vec<u8>> {
    if KEYLESS.contains(&command) {
        return None;
    }
    argv.get(1).cloned()
}

fn list_records(wal: &Path, from_lsn: u64, limit: u64, out: &Out) -> Result<bool> {
    let mut records: Vec<Value> = Vec::new();
    let mut listed = 0u64;
    let mut more = false;
    let mut bad_payloads = Vec::new();
    if !out.json {
        println!("{:>10}  {:<24}  {:>3}  {:<12}  KEY", "LSN", "TIME", "DB", "COMMAND");
    }
    let pb = out.spinner("records read");
    let scan = LogScanner::new(wal)
        .on_record(|r| {
            pb.inc(1);
            if r.lsn < from_lsn {
                return ControlFlow::Continue(());
            }
            if limit > 0 && listed >= limit {
                more = true;
                return ControlFlow::Break(());
            }
            listed += 1;
            match Record::decode(r.payload) {
                Ok(rec) => {
                    let time = (rec.time_ms > 0).then(|| rfc3339_ms(rec.time_ms));
                    let mut ops = Vec::new();
                    for (i, op) in rec.ops.iter().enumerate() {
                        let argv: Vec<Vec<u8>> = op.argv.iter().map(|a| a.0.clone()).collect();
                        let command =
                            argv.first().map(|c| String::from_utf8_lossy(c).to_lowercase()).unwrap_or_default();
                        let key = op_key(&command, &argv);
                        let extra = argv.len().saturating_sub(if key.is_some() { 2 } else { 1 });
                        if out.json {
                            ops.push(json!({
                                "db": op.db,
                                "command": command,
                                "key": key.as_deref().map(show_bytes),
                                "args": argv.iter().skip(1).map(|a| show_bytes(a)).collect::<Vec<_>>(),
                            }));
                        } else {
                            let lsn = if i == 0 { r.lsn.to_string() } else { "+".to_string() };
                            let t = if i == 0 { time.clone().unwrap_or_else(|| "-".into()) } else { String::new() };
                            let more_args = if extra > 0 { format!("  (+{extra} args)") } else { String::new() };
                            pb.suspend(|| {
                                println!(
                                    "{lsn:>10}  {t:<24}  {:>3}  {:<12}  {}{more_args}",
                                    op.db,
                                    command.to_uppercase(),
                                    key.as_deref().map(show_bytes).unwrap_or_default()
                                )
                            });
                        }
                    }
                    if out.json {
                        records.push(json!({
                            "lsn": r.lsn,
                            "time_ms": rec.time_ms,
                            "time": time,
                            "ops": ops,
                            "file": file_name(r.segment),
                            "offset": r.offset,
                        }));
                    }
                }
                Err(e) => {
                    let msg = format!(
                        "LSN {} ({} at offset {}): payload is not a record: {e}",
                        r.lsn,
                        file_name(r.segment),
                        r.offset
                    );
                    if out.json {
                        records.push(
                            json!({"lsn": r.lsn, "error": msg, "file": file_name(r.segment), "offset": r.offset}),
                        );
                    } else {
                        pb.suspend(|| println!("{:>10}  <undecodable record: {e}>", r.lsn));
                    }
                    bad_payloads.push(msg);
                }
            }
            ControlFlow::Continue(())
        })
        .run()
        .with_context(|| format!("reading the WAL in {}", wal.display()))?;
    pb.finish_and_clear();
    let damage: Vec<Value> = scan
        .damage
        .iter()
        .map(|d| {
            json!({
                "file": file_name(&d.segment),
                "offset": d.offset,
                "kind": match d.kind { fastcache_wal::inspect::DamageKind::TornTail => "torn-tail", fastcache_wal::inspect::DamageKind::Middle => "corruption" },
                "reason": d.reason,
            })
        })
        .collect();
    if out.json {
        out.json(&json!({
            "wal": wal.display().to_string(),
            "from_lsn": from_lsn,
            "limit": limit,
            "records": records,
            "more": more,
            "damage": damage,
            "undecodable": bad_payloads,
        }));
    } else {
        if more {
            println!("… more records follow (raise --limit, or --limit 0 for all)");
        } else if listed == 0 {
            println!("(no records from LSN {from_lsn})");
        }
        for d in &scan.damage {
            eprintln!(
                "warning: the WAL is damaged at {} offset {}: {} (run `fastcache check`)",
                file_name(&d.segment),
                d.offset,
                d.reason
            );
        }
    }
    Ok(bad_payloads.is_empty())
}

#[derive(Default)]
struct Tally {
    keys: u64,
    by_db: BTreeMap<u32, u64>,
    by_type: BTreeMap<&'static str, (u64, u64)>,
    with_ttl: u64,
    expired: u64,
    largest: Vec<(u64, u32, Vec<u8>, &'static str)>,
}

fn type_and_size(v: &ValueDto) -> (&'static str, u64, u64) {
    match v {
        ValueDto::String(s) => ("string", 1, s.0.len() as u64),
        ValueDto::List(l) => ("list", l.len() as u64, l.iter().map(|e| e.0.len() as u64).sum()),
        ValueDto::Hash(h) => ("hash", h.len() as u64, h.iter().map(|(f, v)| (f.0.len() + v.0.len()) as u64).sum()),
        ValueDto::Set(s) => ("set", s.len() as u64, s.iter().map(|e| e.0.len() as u64).sum()),
        ValueDto::ZSet(z) => ("zset", z.len() as u64, z.iter().map(|(m, _)| m.0.len() as u64 + 8).sum()),
    }
}

impl Tally {
    fn add(&mut self, e: &SnapshotEntry, now: u64) {
        self.keys += 1;
        *self.by_db.entry(e.db).or_default() += 1;
        let (ty, _elems, bytes) = type_and_size(&e.value);
        let t = self.by_type.entry(ty).or_default();
        t.0 += 1;
        t.1 += bytes;
        if e.deadline_ms != 0 {
            self.with_ttl += 1;
            if e.deadline_ms <= now {
                self.expired += 1;
            }
        }
        let size = bytes + e.key.0.len() as u64;
        if self.largest.len() < 5 || size > self.largest.last().map_or(0, |l| l.0) {
            self.largest.push((size, e.db, e.key.0.clone(), ty));
            self.largest.sort_by_key(|l| std::cmp::Reverse(l.0));
            self.largest.truncate(5);
        }
    }

    fn json(&self) -> Value {
        json!({
            "keys": self.keys,
            "keys_per_db": self.by_db.iter().map(|(db, n)| (db.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "types": self.by_type.iter().map(|(t, (n, b))| (t.to_string(), json!({"keys": n, "value_bytes": b}))).collect::<serde_json::Map<_, _>>(),
            "with_expiry": self.with_ttl,
            "already_expired": self.expired,
            "largest_keys": self.largest.iter().map(|(s, db, k, t)| json!({"db": db, "key": show_bytes(k), "type": t, "bytes": s})).collect::<Vec<_>>(),
        })
    }

    fn print(&self) {
        let dbs: Vec<String> = self.by_db.iter().map(|(db, n)| format!("db{db} {n}")).collect();
        println!("  keys per database: {}", if dbs.is_empty() { "-".into() } else { dbs.join(", ") });
        let types: Vec<String> =
            self.by_type.iter().map(|(t, (n, b))| format!("{t} {n} ({})", human_bytes(*b))).collect();
        println!("  types: {}", if types.is_empty() { "-".into() } else { types.join(", ") });
        println!("  with an expiry: {} ({} already past)", self.with_ttl, self.expired);
        if !self.largest.is_empty() {
            println!("  largest keys:");
            for (s, db, k, t) in &self.largest {
                println!("    db{db} {} ({t}, {})", show_bytes(k), human_bytes(*s));
            }
        }
    }
}

/// A snapshot file, or a backup file the backup library understands.
fn summarize_file(path: &Path, out: &Out) -> Result<bool> {
    if let Some(done) = crate::backup::summarize_backup_file(path, out)? {
        return Ok(done);
    }
    let reader = SnapshotReader::open(path).with_context(|| format!("opening {}", path.display()))?;
    let info = reader.info().clone();
    let mut tally = Tally::default();
    let now = now_ms();
    let pb = out.bar(u64::from(info.chunks), "chunks");
    pb.set_message("reading");
    for chunk in reader.chunks() {
        let (raw, _) = chunk?;
        let entries = decode_entries(&raw).with_context(|| format!("decoding a chunk of {}", path.display()))?;
        for e in &entries {
            tally.add(e, now);
        }
        pb.inc(1);
    }
    pb.finish_and_clear();
    let ratio = if info.file_bytes > 0 { info.raw_bytes as f64 / info.file_bytes as f64 } else { 0.0 };
    if out.json {
        let mut v = json!({
            "file": path.display().to_string(),
            "kind": "snapshot",
            "lsn": info.meta.lsn,
            "created_unix_ms": info.meta.created_unix_ms,
            "created": rfc3339_ms(info.meta.created_unix_ms),
            "chunks": info.chunks,
            "raw_bytes": info.raw_bytes,
            "file_bytes": info.file_bytes,
            "format_version": fastcache_snapshot::FORMAT_VERSION,
        });
        if let (Value::Object(m), Value::Object(t)) = (&mut v, tally.json()) {
            m.extend(t);
        }
        out.json(&v);
    } else {
        println!("snapshot {}", path.display());
        println!(
            "  LSN {} (holds every write up to it), created {}",
            info.meta.lsn,
            rfc3339_ms(info.meta.created_unix_ms)
        );
        println!(
            "  {} keys in {} chunk(s); {} of entries, {} on disk (lz4 ratio {ratio:.2})",
            info.keys,
            info.chunks,
            human_bytes(info.raw_bytes),
            human_bytes(info.file_bytes)
        );
        tally.print();
        println!("  every checksum verified");
    }
    Ok(true)
}
