//! `fastcache import-aof FILE DIR`: a data directory from a Redis AOF.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use fastcache_core::Reply;
use serde_json::{json, Value};

use crate::check::file_name;
use crate::out::Out;
use crate::resp::{AofItem, AofReader};
use crate::util::{create_empty_wal, human_bytes, require_empty, show_bytes, write_engine_snapshot, DataDir};

/// How many failed commands are listed in full.
const MAX_LISTED_FAILURES: usize = 100;

/// The files of an AOF in the order Redis loads them.
struct Source {
    files: Vec<PathBuf>,
    manifest: Option<PathBuf>,
}

fn rdb_refusal(path: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "{} is an RDB file (an AOF with an RDB preamble): FastCache cannot read RDB. In Redis, run \
         `CONFIG SET aof-use-rdb-preamble no` and then `BGREWRITEAOF`, wait for it to finish, and import the new AOF \
         (or start Redis with --aof-use-rdb-preamble no before its next rewrite)",
        path.display()
    )
}

fn starts_with_rdb(path: &Path) -> Result<bool> {
    let mut head = [0u8; 5];
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let n = f.read(&mut head)?;
    Ok(n == 5 && &head == b"REDIS")
}

/// Splits a manifest line into words, honouring Redis' quoting
/// (`"a b"`, `\"`, `\\`, `\n`, `\xHH`).
fn split_words(line: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&c) = chars.peek() else { break };
        let mut w = String::new();
        if c == '"' {
            chars.next();
            loop {
                match chars.next() {
                    None => bail!("unbalanced quotes in {line:?}"),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some('n') => w.push('\n'),
                        Some('r') => w.push('\r'),
                        Some('t') => w.push('\t'),
                        Some('x') => {
                            let h: String = chars.by_ref().take(2).collect();
                            let b = u8::from_str_radix(&h, 16).with_context(|| format!("bad escape in {line:?}"))?;
                            w.push(b as char);
                        }
                        Some(o) => w.push(o),
                        None => bail!("unbalanced quotes in {line:?}"),
                    },
                    Some(o) => w.push(o),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                w.push(c);
                chars.next();
            }
        }
        words.push(w);
    }
    Ok(words)
}

/// Reads a Redis 7 multi-part AOF manifest: the base file, then the
/// incremental files by sequence number (history files are skipped).
fn read_manifest(path: &Path) -> Result<Source> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut base = None;
    let mut incr: Vec<(u64, PathBuf)> = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words = split_words(line)?;
        let get = |k: &str| words.chunks(2).find(|kv| kv[0] == k).and_then(|kv| kv.get(1)).cloned();
        let (Some(name), Some(ty)) = (get("file"), get("type")) else {
            bail!("{} line {}: not a manifest line: {line:?}", path.display(), n + 1);
        };
        let seq: u64 = get("seq").and_then(|s| s.parse().ok()).unwrap_or(0);
        let file = dir.join(&name);
        match ty.as_str() {
            "b" => base = Some(file),
            "i" => incr.push((seq, file)),
            "h" => {}
            other => bail!("{} line {}: unknown file type {other:?}", path.display(), n + 1),
        }
    }
    incr.sort();
    let mut files = Vec::new();
    if let Some(b) = base {
        if b.extension().is_some_and(|e| e == "rdb") || starts_with_rdb(&b)? {
            return Err(rdb_refusal(&b));
        }
        files.push(b);
    }
    files.extend(incr.into_iter().map(|(_, f)| f));
    if files.is_empty() {
        bail!("{} names no base or incremental AOF file", path.display());
    }
    Ok(Source { files, manifest: Some(path.to_path_buf()) })
}

fn resolve(path: &Path) -> Result<Source> {
    if path.is_dir() {
        let mut manifests: Vec<PathBuf> = std::fs::read_dir(path)?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "manifest"))
            .collect();
        manifests.sort();
        return match manifests.as_slice() {
            [m] => read_manifest(m),
            [] => bail!("{} holds no *.manifest file: not a Redis 7 appendonlydir", path.display()),
            _ => bail!("{} holds several *.manifest files; pass the one to import", path.display()),
        };
    }
    if !path.is_file() {
        bail!("{}: no such file or directory", path.display());
    }
    if path.extension().is_some_and(|e| e == "manifest") {
        return read_manifest(path);
    }
    if starts_with_rdb(path)? {
        return Err(rdb_refusal(path));
    }
    Ok(Source { files: vec![path.to_path_buf()], manifest: None })
}

struct Failure {
    file: PathBuf,
    offset: u64,
    index: u64,
    command: String,
    error: String,
}

pub fn run(file: &Path, dir: &Path, databases: usize, out: &Out) -> Result<bool> {
    let data = DataDir::new(dir);
    require_empty(&data, false, "import-aof")?;
    let source = resolve(file)?;
    let total: u64 = source.files.iter().map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0)).sum();
    let engine = fastcache_core::Engine::new(fastcache_core::EngineConfig {
        databases,
        ..fastcache_core::EngineConfig::default()
    });
    let mut session = engine.session();
    let pb = out.bar(total, "bytes");
    pb.set_message("importing");
    let mut commands = 0u64;
    let mut applied = 0u64;
    let mut transactions = 0u64;
    let mut failures: Vec<Failure> = Vec::new();
    let mut truncated: Option<(PathBuf, u64)> = None;
    let mut done_before = 0u64;
    // Commands queued in the open MULTI: (file, offset, index, name).
    let mut queued: Vec<(PathBuf, u64, u64, String)> = Vec::new();
    for (fi, path) in source.files.iter().enumerate() {
        let f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut reader = AofReader::new(BufReader::with_capacity(1 << 20, f));
        loop {
            let item = reader.next_item().with_context(|| format!("reading {}", path.display()))?;
            let cmd = match item {
                AofItem::End => break,
                AofItem::Truncated { offset } => {
                    if fi + 1 != source.files.len() {
                        bail!(
                            "{} ends in the middle of a command at offset {offset}, and it is not the last file",
                            path.display()
                        );
                    }
                    truncated = Some((path.clone(), offset));
                    break;
                }
                AofItem::Command(c) => c,
            };
            commands += 1;
            if commands % 4096 == 0 {
                pb.set_position(done_before + cmd.offset);
            }
            let name = String::from_utf8_lossy(cmd.argv.first().map_or(&b""[..], |v| v.as_slice())).to_lowercase();
            let argv: Vec<&[u8]> = cmd.argv.iter().map(Vec::as_slice).collect();
            let in_multi = session.in_multi();
            let reply = engine.execute(&mut session, &argv);
            let fail = |error: String, failures: &mut Vec<Failure>| {
                failures.push(Failure {
                    file: path.clone(),
                    offset: cmd.offset,
                    index: commands,
                    command: name.clone(),
                    error,
                });
            };
            match (&reply, name.as_str()) {
                (Reply::Error(e), _) => {
                    fail(e.to_string(), &mut failures);
                    if name == "exec" {
                        queued.clear();
                    }
                }
                (Reply::Array(replies), "exec") if in_multi => {
                    transactions += 1;
                    for ((qpath, qoff, qidx, qname), r) in queued.drain(..).zip(replies) {
                        if let Reply::Error(e) = r {
                            failures.push(Failure {
                                file: qpath,
                                offset: qoff,
                                index: qidx,
                                command: qname,
                                error: e.to_string(),
                            });
                        } else {
                            applied += 1;
                        }
                    }
                }
                (_, "multi" | "exec" | "discard") => {
                    queued.clear();
                }
                (_, _) if in_multi => queued.push((path.clone(), cmd.offset, commands, name.clone())),
                _ => applied += 1,
            }
        }
        done_before += std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        pb.set_position(done_before);
    }
    pb.finish_and_clear();
    let open_multi = session.in_multi();
    let discarded = if open_multi { queued.len() } else { 0 };
    drop(session);

    // The data directory: one snapshot holding everything, and an empty WAL
    // that continues after it.
    let data_pb = out.bar(1, "shards");
    data_pb.set_message("snapshot");
    let info = write_engine_snapshot(&engine, &data.snapshots, 0, |done, total| {
        data_pb.set_length(total as u64);
        data_pb.set_position(done as u64);
    })?;
    data_pb.finish_and_clear();
    create_empty_wal(&data.wal, info.meta.lsn, None)?;

    let keyspace: Vec<(usize, usize)> =
        (0..engine.databases()).map(|db| (db, engine.dbsize(db))).filter(|(_, n)| *n > 0).collect();
    let keys: usize = keyspace.iter().map(|(_, n)| n).sum();
    let failed_json: Vec<Value> = failures
        .iter()
        .take(MAX_LISTED_FAILURES)
        .map(|f| {
            json!({"file": f.file.display().to_string(), "offset": f.offset, "command_index": f.index, "command": f.command, "error": f.error})
        })
        .collect();
    if out.json {
        out.json(&json!({
            "source": source.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            "manifest": source.manifest.as_ref().map(|m| m.display().to_string()),
            "dir": dir.display().to_string(),
            "commands": commands,
            "applied": applied,
            "transactions": transactions,
            "failed": failures.len(),
            "failures": failed_json,
            "truncated_tail": truncated.as_ref().map(|(p, o)| json!({"file": p.display().to_string(), "offset": o})),
            "discarded_open_transaction": open_multi.then_some(discarded),
            "keys": keys,
            "keys_per_db": keyspace.iter().map(|(db, n)| (db.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "snapshot": info.path.display().to_string(),
            "snapshot_bytes": info.file_bytes,
            "digest": format!("{:016x}", engine.digest()),
        }));
    } else {
        if let Some(m) = &source.manifest {
            println!("manifest {}: {} file(s)", m.display(), source.files.len());
        }
        for f in &source.files {
            println!("  read {}", f.display());
        }
        println!(
            "{commands} command(s) read, {applied} applied, {} failed, {transactions} MULTI/EXEC block(s)",
            failures.len()
        );
        if let Some((p, o)) = &truncated {
            println!("note: {} ends in an incomplete command at offset {o}; it was ignored (as Redis' aof-load-truncated does)", file_name(p));
        }
        if open_multi {
            println!(
                "note: the AOF ends inside MULTI; the {discarded} queued command(s) were discarded, as Redis does"
            );
        }
        let per_db: Vec<String> = keyspace.iter().map(|(db, n)| format!("db{db} {n}")).collect();
        println!("{keys} key(s){}", if per_db.is_empty() { String::new() } else { format!(": {}", per_db.join(", ")) });
        println!(
            "wrote {} ({}) and an empty WAL in {}",
            info.path.display(),
            human_bytes(info.file_bytes),
            data.wal.display()
        );
        if !failures.is_empty() {
            println!("failed commands (file, byte offset, command number):");
            for f in failures.iter().take(MAX_LISTED_FAILURES) {
                println!(
                    "  {} offset {} #{} {}: {}",
                    file_name(&f.file),
                    f.offset,
                    f.index,
                    show_bytes(f.command.as_bytes()),
                    f.error
                );
            }
            if failures.len() > MAX_LISTED_FAILURES {
                println!("  … and {} more", failures.len() - MAX_LISTED_FAILURES);
            }
        }
    }
    Ok(failures.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_words_are_split_like_redis() -> Result<()> {
        assert_eq!(split_words("file appendonly.aof.1.base.aof seq 1 type b")?.len(), 6);
        assert_eq!(split_words(r#"file "a b\x41.aof" seq 2 type i"#)?[1], "a bA.aof");
        assert!(split_words(r#"file "oops"#).is_err());
        Ok(())
    }
}
