//! Shared by the `cli_*` tests: running the built `fastcache` binary and
//! building data directories with the crates directly (the same files the
//! server writes: WAL segments of engine records, published snapshots).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fastcache_core::{Engine, EngineConfig, Journal, JournalError, Record};
use fastcache_snapshot::{SnapshotInfo, SnapshotMeta, SnapshotStore, WriterOptions};
use fastcache_wal::{SyncPolicy, Wal, WalOptions};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Runs `fastcache ARGS`.
pub fn fastcache(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_fastcache"))
        .args(args)
        .env_remove("FASTCACHE_PASSWORD")
        .output()
        .expect("the fastcache binary runs");
    if std::env::var_os("CLI_TEST_VERBOSE").is_some() {
        eprintln!(
            "$ fastcache {}\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// Runs `fastcache --json ARGS` and parses its output.
pub fn fastcache_json(args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = fastcache(&all);
    let code = out.status.code().unwrap_or(-1);
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "fastcache {args:?} printed no JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (code, v)
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Appends each record to the WAL, as the server's journal does.
pub struct WalJournal<'a>(pub &'a Wal);

impl Journal for WalJournal<'_> {
    fn append(&mut self, record: &Record) -> Result<(), JournalError> {
        self.0.append(&record.encode()).map(|_| ()).map_err(|e| JournalError { message: format!("ERR {e}") })
    }
}

pub fn wal_options() -> WalOptions {
    WalOptions { segment_size: 8 << 10, sync: SyncPolicy::Never, ..WalOptions::default() }
}

/// Writes `engine`'s state as a published snapshot at the WAL's last LSN.
pub fn snapshot(engine: &Engine, wal: &Wal, dir: &Path) -> Result<SnapshotInfo, Box<dyn std::error::Error>> {
    let store = SnapshotStore::open(dir, 2)?;
    let (mut cursor, lsn) = engine.begin_snapshot(|| wal.last_lsn()).map_err(|e| e.to_string())?;
    wal.sync()?;
    let created = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as u64;
    let mut w = store.create(SnapshotMeta { lsn, created_unix_ms: created }, WriterOptions::default())?;
    let mut chunk = Vec::new();
    while !cursor.is_done() {
        chunk.clear();
        // Small chunks, so a snapshot has several.
        let n = cursor.fill(&mut chunk, 4096);
        if n > 0 || !chunk.is_empty() {
            w.write_chunk(&chunk, n)?;
        }
    }
    drop(cursor);
    let info = w.finish()?;
    store.publish(&info)?;
    Ok(info)
}

/// Runs `n` writes of every type, round `round`.
pub fn writes(engine: &Engine, wal: &Wal, round: usize, n: usize) {
    let mut session = engine.session();
    let mut j = WalJournal(wal);
    for i in 0..n {
        let k = format!("k{round}-{i}");
        let cmds: Vec<Vec<String>> = match i % 6 {
            0 => vec![vec!["SET".into(), k.clone(), format!("value-{i}-{}", "x".repeat(40))]],
            1 => vec![vec!["RPUSH".into(), format!("list{}", i % 7), k.clone(), "b".into()]],
            2 => vec![vec!["HSET".into(), format!("hash{}", i % 5), k.clone(), i.to_string()]],
            3 => vec![vec!["SADD".into(), format!("set{}", i % 3), k.clone()]],
            4 => vec![vec!["ZADD".into(), "zset".into(), i.to_string(), k.clone()]],
            _ => vec![
                vec!["SELECT".into(), "1".into()],
                vec!["SET".into(), k.clone(), "in-db-1".into()],
                vec!["SELECT".into(), "0".into()],
            ],
        };
        for c in cmds {
            let argv: Vec<&[u8]> = c.iter().map(|a| a.as_bytes()).collect();
            let out = engine.execute_with(&mut session, &argv, &mut j);
            assert!(!matches!(out.reply, fastcache_core::Reply::Error(_)), "{c:?}: {:?}", out.reply);
        }
    }
}

/// A data directory: `pre` writes, a snapshot, `post` more writes, the
/// log closed cleanly (sealed). Returns the engine (the expected state).
pub fn build_dir(root: &Path, pre: usize, post: usize) -> Result<Engine, Box<dyn std::error::Error>> {
    build_dir_phases(root, &[pre, post])
}

/// Writes in phases with a snapshot between each two (the WAL keeps
/// everything, as after a crash before retention truncated it).
pub fn build_dir_phases(root: &Path, phases: &[usize]) -> Result<Engine, Box<dyn std::error::Error>> {
    let engine = Engine::new(EngineConfig::default());
    let (wal, _) = Wal::open(&root.join("wal"), wal_options())?;
    for (i, &n) in phases.iter().enumerate() {
        if i > 0 {
            snapshot(&engine, &wal, &root.join("snapshots"))?;
            // Distinct creation times.
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        writes(&engine, &wal, i, n);
    }
    wal.close()?;
    Ok(engine)
}

/// The WAL segment files, in LSN order.
pub fn segments(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root.join("wal"))
        .expect("wal dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    v.sort();
    v
}

/// The published snapshot files, in name order.
pub fn snapshot_files(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root.join("snapshots"))
        .expect("snapshots dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "fcs"))
        .collect();
    v.sort();
    v
}

pub fn flip_bit(path: &Path, offset: u64) {
    let mut b = std::fs::read(path).expect("read");
    b[offset as usize] ^= 0x10;
    std::fs::write(path, b).expect("write");
}

/// Every file under `root` with its bytes, to prove nothing changed.
pub fn tree(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).expect("read")));
            }
        }
    }
    out.sort();
    out
}

/// The end of the valid records of a segment (offset of the first zero header).
pub fn data_end(path: &Path) -> u64 {
    let b = std::fs::read(path).expect("read");
    let mut off = 64usize;
    while off + 16 <= b.len() && b[off..off + 16].iter().any(|&x| x != 0) {
        let len = u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes")) & ((1 << 30) - 1);
        off += 16 + len as usize;
    }
    off as u64
}

/// Recovers a data directory the way the server does (newest snapshot +
/// WAL) into a fresh engine and returns its digest.
pub fn recovered_digest(root: &Path) -> Result<u64, Box<dyn std::error::Error>> {
    let engine = Engine::new(EngineConfig::default());
    let store = SnapshotStore::open(&root.join("snapshots"), 2)?;
    let mut from = 0;
    if let Some(e) = store.list()?.first() {
        let r = store.open_snapshot(e)?;
        r.load_parallel(1, |raw, _| engine.load_snapshot_chunk(raw).map(|_| ()))?;
        from = e.lsn;
    }
    let (wal, _) = Wal::open(&root.join("wal"), WalOptions { min_next_lsn: from + 1, ..wal_options() })?;
    if wal.last_lsn() > from {
        for r in wal.reader(from + 1)? {
            let (_, payload) = r?;
            engine.apply_record(&Record::decode(&payload)?)?;
        }
    }
    wal.close()?;
    Ok(engine.digest())
}

/// The `fastcache-server` binary beside the `fastcache` one (built by
/// `cargo build -p fastcache-server`, or by `cargo test --workspace`);
/// `None` with a printed notice when it is not there.
pub fn server_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FASTCACHE_SERVER_BIN") {
        return Some(PathBuf::from(p));
    }
    let p = Path::new(env!("CARGO_BIN_EXE_fastcache")).with_file_name("fastcache-server");
    if p.is_file() {
        return Some(p);
    }
    eprintln!("NOTICE: {} not found (run `cargo build -p fastcache-server`); skipping the server part", p.display());
    None
}

/// A `fastcache-server` child process on a free port, killed on drop.
pub struct Server {
    pub child: std::process::Child,
    pub port: u16,
}

impl Server {
    pub fn start(bin: &Path, dir: &Path) -> Result<Server, Box<dyn std::error::Error>> {
        use std::io::BufRead;
        let mut child = Command::new(bin)
            .env("PERSISTENCE_DIR", dir)
            .env("FASTCACHE_PORT", "0")
            .env("FASTCACHE_BIND", "127.0.0.1")
            .env("RUST_LOG", "warn")
            .env("FASTCACHE_WAL_SEGMENT_SIZE", "1mb")
            .env("WAL_FSYNC", "always")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut port = None;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) =
                    line.split("listening on ").nth(1).filter(|_| port.is_none() && !line.starts_with("metrics"))
                {
                    port = rest.rsplit(':').next().and_then(|p| p.trim().parse::<u16>().ok());
                }
                if line.contains("ready to accept commands") {
                    let _ = tx.send(port);
                }
            }
        });
        let port = match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(Some(p)) => p,
            other => {
                let _ = child.kill();
                return Err(format!("fastcache-server did not start: {other:?}").into());
            }
        };
        Ok(Server { child, port })
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Sends one command and returns the raw reply (RESP2 text).
    pub fn call(&self, args: &[&str]) -> Result<String, Box<dyn std::error::Error>> {
        call(self.port, args)
    }

    /// Waits for the process to exit (after SHUTDOWN).
    pub fn wait(mut self) -> Result<(), Box<dyn std::error::Error>> {
        for _ in 0..600 {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Err("the server did not exit".into())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One command over a fresh connection; the reply as RESP2 text.
pub fn call(port: u16, args: &[&str]) -> Result<String, Box<dyn std::error::Error>> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let mut buf = format!("*{}\r\n", args.len());
    for a in args {
        buf.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(buf.as_bytes())?;
    // Read until one complete reply has arrived (good enough for tests:
    // simple replies, integers, bulk strings and flat arrays).
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&chunk[..n]);
        if complete(&out) {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

fn complete(b: &[u8]) -> bool {
    fn one(b: &[u8], at: usize) -> Option<usize> {
        let end = at + b.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
        let line = std::str::from_utf8(&b[at + 1..end]).ok()?;
        match b[at] {
            b'+' | b'-' | b':' => Some(end + 2),
            b'$' => {
                let n: i64 = line.parse().ok()?;
                if n < 0 {
                    return Some(end + 2);
                }
                let stop = end + 2 + n as usize + 2;
                (b.len() >= stop).then_some(stop)
            }
            b'*' => {
                let n: i64 = line.parse().ok()?;
                let mut pos = end + 2;
                for _ in 0..n.max(0) {
                    pos = one(b, pos)?;
                }
                Some(pos)
            }
            _ => None,
        }
    }
    one(b, 0).is_some()
}
