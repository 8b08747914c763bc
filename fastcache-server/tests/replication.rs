//! Replication with real processes on loopback (issue 7, "Proof"): full
//! sync, partial resync after a replica restart, a replica killed in the
//! middle of a full sync, a primary killed in the middle of the stream, a
//! network cut (a TCP proxy the test severs), node recovery of an empty or a
//! damaged replica, a replica whose offset the primary's WAL no longer holds,
//! bad input (wrong protocol, a damaged frame, a primary that vanishes) and
//! the read-only replica.
//!
//! After each scenario the primary and the replica hold identical data:
//! `DEBUG DIGEST` (every database, key, value and deadline) is compared once
//! the replica's `slave_repl_offset` has reached the primary's
//! `master_repl_offset` and the primary's offset did not move meanwhile.
//! Writers run during the scenarios; what they got acknowledged is checked
//! on the replica.
//!
//! Bounded: writers stop after a number of batches or seconds, every wait
//! has its own limit and panics saying what it waited for, what it saw last
//! and the tail of the servers' logs. The file takes about a minute in a
//! debug build on two cores.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Server, TempDir, IO_TIMEOUT};

/// How long a replica may take to catch up with its primary.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(40);
/// How long a link may take to come (back) up: the reconnect backoff is at
/// most 5 s, a full sync of the test data sets a few seconds in debug.
const LINK_TIMEOUT: Duration = Duration::from_secs(30);
/// Redis' reply to a write on a replica.
const READONLY: &str = "-READONLY You can't write against a read only replica.\r\n";

// ---------------------------------------------------------------- harness

/// Prints how long a test took (`--show-output` shows it), also on panic.
struct Timed(&'static str, Instant);

impl Timed {
    fn start(name: &'static str) -> Timed {
        Timed(name, Instant::now())
    }
}

impl Drop for Timed {
    fn drop(&mut self) {
        eprintln!("[timing] {}: {:.1} s", self.0, self.1.elapsed().as_secs_f64());
    }
}

/// The last `n` lines of `s`.
fn tail(s: &str, n: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(n)..].join("\n")
}

/// The end of every server's log, for failure messages.
fn tails(servers: &[&Server]) -> String {
    servers
        .iter()
        .map(|s| format!("\n--- server on port {} (stderr tail)\n{}", s.port, tail(&s.stderr_text(), 40)))
        .collect()
}

/// Polls `probe` every 20 ms until it returns `Ok`, for at most `timeout`;
/// panics naming `what`, the probe's last complaint and the servers' logs.
fn wait_for<T>(what: &str, timeout: Duration, logs: &[&Server], mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match probe() {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => {
                panic!("{what}: not within {timeout:?}; last seen: {last}{}", tails(logs))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// SIGKILL, then wait until the process is gone.
fn kill9(server: &mut Server) {
    let _ = Command::new("kill").args(["-KILL", &server.pid().to_string()]).status();
    assert!(server.wait_exit(Duration::from_secs(10)).is_some(), "the server on port {} survived SIGKILL", server.port);
}

/// A `redis` connection to 127.0.0.1:`port` with timeouts.
fn try_connect(port: u16) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let con = client.get_connection_with_timeout(Duration::from_secs(2))?;
    con.set_read_timeout(Some(IO_TIMEOUT))?;
    con.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(con)
}

/// One command on a fresh raw connection; the whole reply as text (errors
/// included). `Err` only if the server cannot be reached or closes.
fn try_cmd(port: u16, args: &[&str]) -> Result<String, String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(IO_TIMEOUT)).map_err(|e| e.to_string())?;
    s.set_write_timeout(Some(IO_TIMEOUT)).map_err(|e| e.to_string())?;
    s.write_all(&common::encode_str(args)).map_err(|e| format!("write to {addr}: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        if let Some(end) = common::frame_end(&buf, 0) {
            buf.truncate(end);
            return Ok(String::from_utf8_lossy(&buf).into_owned());
        }
        match s.read(&mut chunk) {
            Ok(0) => return Err(format!("{addr} closed the connection")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("reading from {addr}: {e}")),
        }
    }
}

/// The body of a bulk-string reply.
fn bulk_body(reply: &str) -> Option<&str> {
    let (_, rest) = reply.strip_prefix('$')?.split_once("\r\n")?;
    Some(rest.strip_suffix("\r\n").unwrap_or(rest))
}

/// The `field:value` lines of an INFO text.
fn parse_info(text: &str) -> BTreeMap<String, String> {
    text.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.to_string(), v.trim().to_string())).collect()
}

/// `INFO section` of the server on `port`.
fn try_info(port: u16, section: &str) -> Result<BTreeMap<String, String>, String> {
    let reply = try_cmd(port, &["INFO", section])?;
    bulk_body(&reply).map(parse_info).ok_or_else(|| format!("INFO {section} answered {reply:?}"))
}

/// One INFO field, panicking if it cannot be read.
fn info_field(server: &Server, section: &str, name: &str) -> String {
    let map = try_info(server.port, section).unwrap_or_else(|e| panic!("INFO {section}: {e}{}", tails(&[server])));
    map.get(name).cloned().unwrap_or_else(|| panic!("INFO {section} of port {} has no {name}: {map:?}", server.port))
}

/// One numeric INFO field.
fn info_num(server: &Server, section: &str, name: &str) -> u64 {
    let v = info_field(server, section, name);
    v.parse().unwrap_or_else(|e| panic!("INFO {name}={v:?} is not a number: {e}"))
}

/// The primary's sync counters (INFO stats): (sync_full, sync_partial_ok, sync_partial_err).
fn sync_stats(primary: &Server) -> (u64, u64, u64) {
    let m = try_info(primary.port, "stats").unwrap_or_else(|e| panic!("INFO stats: {e}{}", tails(&[primary])));
    let n = |k: &str| m.get(k).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("INFO stats has no {k}: {m:?}"));
    (n("sync_full"), n("sync_partial_ok"), n("sync_partial_err"))
}

/// `DEBUG DIGEST` of the server on `port`.
fn digest(port: u16) -> Result<String, String> {
    let r = try_cmd(port, &["DEBUG", "DIGEST"])?;
    r.strip_prefix('+').map(|d| d.trim_end().to_string()).ok_or_else(|| format!("DEBUG DIGEST answered {r:?}"))
}

/// `DBSIZE` (of database 0) on `port`, or the error reply.
fn dbsize(port: u16) -> Result<u64, String> {
    let r = try_cmd(port, &["DBSIZE"])?;
    r.strip_prefix(':').and_then(|n| n.trim_end().parse().ok()).ok_or(r)
}

/// Waits until the replica's link is up (`master_link_status:up`).
fn wait_link_up(replica: &Server, primary: &Server, what: &str) {
    wait_for(what, LINK_TIMEOUT, &[primary, replica], || {
        let m = try_info(replica.port, "replication")?;
        match m.get("master_link_status").map(String::as_str) {
            Some("up") => Ok(()),
            other => Err(format!("master_link_status {other:?}")),
        }
    });
}

/// Waits until the replica has applied everything the primary has and both
/// hold the same data: the replica's offset reaches the primary's, the
/// primary's offset did not move while the digests were read, and the
/// digests are equal. Returns the common offset.
fn converge(primary: &Server, replica: &Server, what: &str) -> u64 {
    let probe = || -> Result<u64, String> {
        let p_off: u64 = try_info(primary.port, "replication")?
            .get("master_repl_offset")
            .and_then(|v| v.parse().ok())
            .ok_or("no master_repl_offset on the primary")?;
        let p_digest = digest(primary.port)?;
        let r_off: u64 = try_info(replica.port, "replication")?
            .get("slave_repl_offset")
            .and_then(|v| v.parse().ok())
            .ok_or("no slave_repl_offset on the replica")?;
        if r_off < p_off {
            return Err(format!("replica at offset {r_off}, primary at {p_off}"));
        }
        let r_digest = digest(replica.port)?;
        let r_keys = dbsize(replica.port)?;
        let p_keys = dbsize(primary.port)?;
        let p_off2: u64 = try_info(primary.port, "replication")?
            .get("master_repl_offset")
            .and_then(|v| v.parse().ok())
            .ok_or("no master_repl_offset on the primary")?;
        if p_off2 != p_off {
            return Err(format!("the primary moved from {p_off} to {p_off2} while comparing"));
        }
        if r_digest != p_digest {
            return Err(format!(
                "offsets primary {p_off} / replica {r_off} but digests differ: primary {p_digest}, replica {r_digest}"
            ));
        }
        if r_keys != p_keys {
            return Err(format!("equal digests at offset {p_off} but DBSIZE primary {p_keys}, replica {r_keys}"));
        }
        if r_off != p_off {
            return Err(format!("replica offset {r_off} is past the primary's {p_off}"));
        }
        Ok(p_off)
    };
    wait_for(&format!("{what}: replica and primary converge"), CONVERGE_TIMEOUT, &[primary, replica], probe)
}

/// Fills the server with `n` keys of every type (strings, lists, hashes,
/// sets, sorted sets; about a third with a TTL of an hour or more), 100 keys
/// in database 3 and `short_ttls` strings that expire within a second (their
/// expiry reaches replicas as the primary's DELs).
fn populate(port: u16, prefix: &str, n: usize, value_len: usize, short_ttls: usize) {
    let mut con = try_connect(port).unwrap_or_else(|e| panic!("connecting to {port}: {e}"));
    let value = "v".repeat(value_len);
    let mut pipe = redis::pipe();
    let mut queued = 0;
    let flush = |pipe: &mut redis::Pipeline, queued: &mut usize, con: &mut redis::Connection| {
        pipe.query::<()>(con).unwrap_or_else(|e| panic!("populating {port}: {e}"));
        pipe.clear();
        *queued = 0;
    };
    for i in 0..n {
        let k = format!("{prefix}:{i}");
        match i % 5 {
            0 => {
                pipe.cmd("SET").arg(&k).arg(format!("{value}{i}"));
                if i % 3 == 0 {
                    pipe.cmd("EXPIRE").arg(&k).arg(3600);
                }
            }
            1 => {
                pipe.cmd("RPUSH").arg(&k).arg(&value).arg(i).arg("tail");
            }
            2 => {
                pipe.cmd("HSET").arg(&k).arg("a").arg(&value).arg("b").arg(i).arg("c").arg("z");
            }
            3 => {
                pipe.cmd("SADD").arg(&k).arg("m1").arg(i).arg(&value);
            }
            _ => {
                pipe.cmd("ZADD").arg(&k).arg(1.5).arg("one").arg(i as f64 / 7.0).arg("two").arg(-3).arg(&value);
            }
        }
        if i % 7 == 0 {
            pipe.cmd("PEXPIRE").arg(&k).arg(3_600_000 + i as u64);
        }
        queued += 1;
        if queued >= 1000 {
            flush(&mut pipe, &mut queued, &mut con);
        }
    }
    pipe.cmd("SELECT").arg(3);
    for i in 0..100 {
        pipe.cmd("SET").arg(format!("{prefix}:db3:{i}")).arg(i);
    }
    pipe.cmd("SELECT").arg(0);
    for i in 0..short_ttls {
        pipe.cmd("SET").arg(format!("{prefix}:short:{i}")).arg(i).arg("PX").arg(300 + (i % 50) * 20);
    }
    flush(&mut pipe, &mut queued, &mut con);
}

/// `n` strings of `value_len` bytes, written with MSETs of 1000 keys.
fn bulk_load(port: u16, prefix: &str, n: usize, value_len: usize) {
    let mut con = try_connect(port).unwrap_or_else(|e| panic!("connecting to {port}: {e}"));
    let value = "b".repeat(value_len);
    let starts: Vec<usize> = (0..n).step_by(1000).collect();
    for group in starts.chunks(8) {
        let mut pipe = redis::pipe();
        for &start in group {
            let mut cmd = redis::cmd("MSET");
            for i in start..(start + 1000).min(n) {
                cmd.arg(format!("{prefix}:{i}")).arg(&value);
            }
            pipe.add_command(cmd);
        }
        pipe.query::<()>(&mut con).unwrap_or_else(|e| panic!("bulk load on {port}: {e}"));
    }
}

/// What a writer got acknowledged.
#[derive(Default, Debug)]
struct Acked {
    /// SETs answered OK: (key, value).
    sets: Vec<(String, String)>,
    /// SETs of batches that `WAIT 1` confirmed on a replica.
    confirmed: Vec<(String, String)>,
    batches: u64,
    errors: u64,
    last_error: String,
}

/// A client thread writing batches of mixed commands to a primary.
struct Writer {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Acked>>,
}

#[derive(Clone)]
struct WriterSpec {
    port: u16,
    prefix: String,
    max_batches: u64,
    max_time: Duration,
    /// End each batch with `WAIT 1 2000` and record what it confirmed.
    wait_replica: bool,
    /// Reconnect after errors (the primary is killed and restarted)
    /// instead of stopping.
    keep_going: bool,
}

impl WriterSpec {
    fn new(port: u16, prefix: &str) -> WriterSpec {
        WriterSpec {
            port,
            prefix: prefix.to_string(),
            max_batches: 3000,
            max_time: Duration::from_secs(25),
            wait_replica: false,
            keep_going: false,
        }
    }
}

impl Writer {
    fn start(spec: WriterSpec) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || write_loop(&spec, &flag));
        Writer { stop, handle: Some(handle) }
    }

    /// Stops the writer and returns what it got acknowledged.
    fn finish(mut self) -> Acked {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().map(|h| h.join().expect("the writer thread panicked")).unwrap_or_default()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn write_loop(spec: &WriterSpec, stop: &AtomicBool) -> Acked {
    const BATCH: u64 = 8;
    let mut acked = Acked::default();
    let deadline = Instant::now() + spec.max_time;
    let mut con: Option<redis::Connection> = None;
    let p = &spec.prefix;
    let mut next = 0u64;
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && acked.batches < spec.max_batches {
        let c = match con.as_mut() {
            Some(c) => c,
            None => match try_connect(spec.port) {
                Ok(c) => con.insert(c),
                Err(e) => {
                    acked.errors += 1;
                    acked.last_error = e.to_string();
                    if !spec.keep_going {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            },
        };
        let mut pipe = redis::pipe();
        let mut sets = Vec::new();
        for n in next..next + BATCH {
            match n % 8 {
                0..=2 => {
                    let (k, v) = (format!("{p}:s:{n}"), format!("value-{n}"));
                    pipe.cmd("SET").arg(&k).arg(&v);
                    sets.push((k, v));
                }
                3 => {
                    pipe.cmd("RPUSH").arg(format!("{p}:list")).arg(n);
                }
                4 => {
                    pipe.cmd("HSET").arg(format!("{p}:h:{}", n % 64)).arg(format!("f{n}")).arg(n);
                }
                5 => {
                    pipe.cmd("SADD").arg(format!("{p}:set:{}", n % 16)).arg(n);
                    pipe.cmd("ZADD").arg(format!("{p}:z")).arg(n).arg(format!("m{n}"));
                }
                6 => {
                    // Gone within a second: the primary's DEL replicates.
                    pipe.cmd("SET").arg(format!("{p}:t:{n}")).arg(n).arg("PX").arg(200);
                }
                _ => {
                    pipe.cmd("INCR").arg(format!("{p}:counter"));
                    pipe.cmd("EXPIRE").arg(format!("{p}:s:{}", n - 7)).arg(3600);
                }
            }
        }
        if spec.wait_replica {
            pipe.cmd("WAIT").arg(1).arg(2000);
        }
        next += BATCH;
        match pipe.query::<Vec<redis::Value>>(c) {
            Ok(replies) => {
                acked.batches += 1;
                if spec.wait_replica && matches!(replies.last(), Some(redis::Value::Int(n)) if *n >= 1) {
                    acked.confirmed.extend(sets.iter().cloned());
                }
                acked.sets.extend(sets);
            }
            Err(e) => {
                acked.errors += 1;
                acked.last_error = e.to_string();
                con = None;
                if !spec.keep_going {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Moderate load: two cores run the servers, the writers and the
        // other tests.
        std::thread::sleep(Duration::from_millis(2));
    }
    acked
}

/// Asserts that every (key, value) is on the server on `port`.
fn assert_has(server: &Server, pairs: &[(String, String)], what: &str) {
    let mut con = try_connect(server.port).unwrap_or_else(|e| panic!("{what}: connecting: {e}"));
    let mut missing = Vec::new();
    for chunk in pairs.chunks(500) {
        let keys: Vec<&str> = chunk.iter().map(|(k, _)| k.as_str()).collect();
        let got: Vec<Option<String>> =
            redis::cmd("MGET").arg(&keys).query(&mut con).unwrap_or_else(|e| panic!("{what}: MGET: {e}"));
        for ((k, v), g) in chunk.iter().zip(got) {
            if g.as_deref() != Some(v.as_str()) {
                missing.push(format!("{k}={g:?} (want {v})"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "{what}: {} of {} acknowledged writes missing or wrong on port {}, e.g. {:?}{}",
        missing.len(),
        pairs.len(),
        server.port,
        &missing[..missing.len().min(5)],
        tails(&[server])
    );
}

fn dir_str(d: &TempDir) -> String {
    d.path().to_string_lossy().into_owned()
}

/// Starts a primary on `dir` (and `port`, 0 = any) with extra variables.
fn start_primary(dir: &str, port: u16, extra: &[(&str, &str)]) -> Server {
    let port = port.to_string();
    let mut env = vec![("PERSISTENCE_DIR", dir), ("FASTCACHE_PORT", port.as_str())];
    env.extend_from_slice(extra);
    Server::start_with(&env)
}

/// Spawns a replica of 127.0.0.1:`of` on `dir` (FASTCACHE_REPLICAOF),
/// without waiting for it to be ready (node recovery holds it).
fn spawn_replica(dir: &str, of: u16, extra: &[(&str, &str)]) -> Server {
    let of = format!("127.0.0.1:{of}");
    let mut env = vec![("PERSISTENCE_DIR", dir), ("FASTCACHE_REPLICAOF", of.as_str())];
    env.extend_from_slice(extra);
    Server::spawn_with(&env)
}

/// [`spawn_replica`], then waits for `ready to accept commands`.
fn start_replica(dir: &str, of: u16, extra: &[(&str, &str)]) -> Server {
    let mut s = spawn_replica(dir, of, extra);
    s.wait_loaded();
    s
}

/// Entries of `dir` whose name starts with `prefix`.
fn entries_starting(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------- 1. full sync

#[test]
fn full_sync_of_every_type_while_a_writer_writes() {
    let _t = Timed::start("1 full_sync");
    let pdir = TempDir::new("repl-full-p");
    let rdir = TempDir::new("repl-full-r");
    let primary = start_primary(&dir_str(&pdir), 0, &[]);
    populate(primary.port, "full", 20_000, 32, 200);
    // The replica starts as a primary of its own (with a key the sync must
    // replace) and is attached with REPLICAOF while a writer writes.
    let replica = start_primary(&dir_str(&rdir), 0, &[]);
    assert_eq!(try_cmd(replica.port, &["SET", "replica-own", "x"]).as_deref(), Ok("+OK\r\n"));
    let writer = Writer::start(WriterSpec::new(primary.port, "w1"));
    std::thread::sleep(Duration::from_millis(200));
    let port = primary.port.to_string();
    assert_eq!(try_cmd(replica.port, &["REPLICAOF", "127.0.0.1", &port]).as_deref(), Ok("+OK\r\n"));
    wait_link_up(&replica, &primary, "the replica's link after REPLICAOF");
    std::thread::sleep(Duration::from_millis(500));
    let acked = writer.finish();
    assert!(acked.batches > 0 && acked.errors == 0, "the writer failed: {acked:?}");
    converge(&primary, &replica, "full sync");

    // The replica asked to continue its own history (it had written a
    // key): a failed partial resync, counted as Redis counts it (any
    // replid but `?`), then one full sync.
    assert_eq!(sync_stats(&primary), (1, 0, 1), "(sync_full, sync_partial_ok, sync_partial_err) on the primary");
    assert_eq!(info_field(&replica, "replication", "fastcache_last_sync"), "full");
    assert!(info_num(&replica, "replication", "fastcache_last_sync_bytes") > 0);
    assert_eq!(info_field(&replica, "replication", "fastcache_node_recovery"), "0");
    assert_eq!(info_field(&primary, "replication", "connected_slaves"), "1");
    let slave0 = info_field(&primary, "replication", "slave0");
    assert!(slave0.contains("state=online") && slave0.contains(&format!("port={}", replica.port)), "{slave0}");
    assert_eq!(try_cmd(replica.port, &["EXISTS", "replica-own"]).as_deref(), Ok(":0\r\n"), "the sync replaced it");
    assert_has(&replica, &acked.sets, "full sync: the writer's SETs on the replica");
    eprintln!(
        "1: {} keys, {} SETs acknowledged during the sync, {} bytes synced",
        dbsize(primary.port).unwrap_or(0),
        acked.sets.len(),
        info_field(&replica, "replication", "fastcache_last_sync_bytes")
    );
}

// ---------------------------------------------------------------- 2. partial resync

#[test]
fn partial_resync_after_a_replica_restart_sends_no_snapshot() {
    let _t = Timed::start("2 partial_resync_after_restart");
    let pdir = TempDir::new("repl-part-p");
    let rdir = TempDir::new("repl-part-r");
    let (pd, rd) = (dir_str(&pdir), dir_str(&rdir));
    let primary = start_primary(&pd, 0, &[]);
    populate(primary.port, "part", 5_000, 16, 0);
    let mut replica = start_replica(&rd, primary.port, &[]);
    converge(&primary, &replica, "initial sync");
    let before = sync_stats(&primary);
    assert_eq!(before, (1, 0, 0), "one full sync (node recovery of the empty replica)");

    let writer = Writer::start(WriterSpec::new(primary.port, "w2"));
    std::thread::sleep(Duration::from_millis(300));
    kill9(&mut replica);
    drop(replica);
    // The primary writes on while the replica is down.
    std::thread::sleep(Duration::from_millis(700));
    let replica = start_replica(&rd, primary.port, &[]);
    wait_link_up(&replica, &primary, "the restarted replica's link");
    std::thread::sleep(Duration::from_millis(300));
    let acked = writer.finish();
    assert!(acked.errors == 0, "the writer failed: {acked:?}");
    converge(&primary, &replica, "partial resync after restart");

    let after = sync_stats(&primary);
    assert_eq!(
        after,
        (before.0, before.1 + 1, before.2),
        "(sync_full, sync_partial_ok, sync_partial_err): one partial resync, no snapshot sent{}",
        tails(&[&primary, &replica])
    );
    assert_eq!(info_field(&replica, "replication", "fastcache_last_sync"), "partial");
    assert_eq!(info_field(&replica, "replication", "fastcache_last_sync_bytes"), "0");
    assert_has(&replica, &acked.sets, "partial resync: the writer's SETs on the replica");
    eprintln!("2: {} SETs acknowledged across the replica's restart", acked.sets.len());
}

// ---------------------------------------------------------------- 3. killed mid-full-sync

#[test]
fn replica_killed_in_the_middle_of_a_full_sync_resyncs_fully() {
    let _t = Timed::start("3 killed_mid_full_sync");
    let pdir = TempDir::new("repl-mid-p");
    let rdir = TempDir::new("repl-mid-r");
    let (pd, rd) = (dir_str(&pdir), dir_str(&rdir));
    let primary = start_primary(&pd, 0, &[]);
    bulk_load(primary.port, "big", 200_000, 100);
    let writer = Writer::start(WriterSpec::new(primary.port, "w3"));

    let mut replica = spawn_replica(&rd, primary.port, &[]);
    // Kill it as soon as it is receiving the snapshot.
    let mut probe = replica.resp();
    let deadline = Instant::now() + LINK_TIMEOUT;
    let seen = loop {
        let reply = probe.cmd(&["INFO", "replication"]);
        let m = parse_info(bulk_body(&reply).unwrap_or_default());
        let bytes: u64 = m.get("master_sync_read_bytes").and_then(|v| v.parse().ok()).unwrap_or(0);
        if m.get("master_sync_in_progress").map(String::as_str) == Some("1") && bytes > 0 {
            break m;
        }
        assert!(
            m.get("master_link_status").map(String::as_str) != Some("up"),
            "the full sync finished before it could be interrupted (make the data set bigger): {m:?}"
        );
        assert!(Instant::now() < deadline, "the full sync never started: {m:?}{}", tails(&[&primary, &replica]));
        std::thread::sleep(Duration::from_millis(2));
    };
    drop(probe);
    kill9(&mut replica);
    drop(replica);
    let state = std::fs::read_to_string(rdir.path().join("replication")).unwrap_or_default();
    assert!(state.contains("syncing 1"), "the state file says a sync was running: {state:?} (INFO then: {seen:?})");

    let replica = start_replica(&rd, primary.port, &[]);
    let log = replica.stderr_text();
    assert!(log.contains("interrupted"), "the restart says the previous sync was cut short:\n{log}");
    assert_eq!(entries_starting(rdir.path(), "moved-aside-").len(), 1, "the mixed data went aside");
    assert_eq!(info_field(&replica, "replication", "fastcache_node_recovery"), "1");
    std::thread::sleep(Duration::from_millis(300));
    let acked = writer.finish();
    assert!(acked.errors == 0, "the writer failed: {acked:?}");
    converge(&primary, &replica, "after the interrupted full sync");
    let (full, partial_ok, _) = sync_stats(&primary);
    assert_eq!((full, partial_ok), (2, 0), "(sync_full, sync_partial_ok): the interrupted sync and a new full one");
    assert_eq!(info_field(&replica, "replication", "fastcache_last_sync"), "full");
    assert_has(&replica, &acked.sets, "killed mid-sync: the writer's SETs on the replica");
    eprintln!(
        "3: killed after {} bytes of the full sync; {} SETs acknowledged",
        seen.get("master_sync_read_bytes").map_or("?", String::as_str),
        acked.sets.len()
    );
}

// ---------------------------------------------------------------- 4. primary killed mid-stream

#[test]
fn primary_killed_mid_stream_restarts_and_the_replica_continues_partially() {
    let _t = Timed::start("4 primary_killed_mid_stream");
    let pdir = TempDir::new("repl-pk-p");
    let rdir = TempDir::new("repl-pk-r");
    let (pd, rd) = (dir_str(&pdir), dir_str(&rdir));
    let always = [("WAL_FSYNC", "always")];
    let mut primary = start_primary(&pd, 0, &always);
    let port = primary.port;
    populate(port, "pk", 3_000, 16, 0);
    let replica = start_replica(&rd, port, &always);
    converge(&primary, &replica, "initial sync");

    let mut spec = WriterSpec::new(port, "w4");
    spec.wait_replica = true;
    spec.keep_going = true;
    let writer = Writer::start(spec);
    std::thread::sleep(Duration::from_millis(1000));
    kill9(&mut primary);
    drop(primary);
    let down = wait_for("the replica sees the link down", Duration::from_secs(10), &[&replica], || {
        let m = try_info(replica.port, "replication")?;
        match m.get("master_link_status").map(String::as_str) {
            Some("down") => Ok(m),
            other => Err(format!("master_link_status {other:?}")),
        }
    });
    // The replica keeps serving what it has.
    let offset_down: u64 = down["slave_repl_offset"].parse().unwrap_or(0);
    assert!(dbsize(replica.port).is_ok_and(|n| n > 0), "the replica serves reads while its primary is down");
    std::thread::sleep(Duration::from_millis(300));

    let primary = start_primary(&pd, port, &always);
    wait_link_up(&replica, &primary, "the replica reconnects to the restarted primary");
    // Writes after the restart reach the replica too.
    std::thread::sleep(Duration::from_millis(700));
    let acked = writer.finish();
    converge(&primary, &replica, "after the primary restart");

    let stats = sync_stats(&primary);
    assert_eq!(
        stats,
        (0, 1, 0),
        "(sync_full, sync_partial_ok, sync_partial_err) of the restarted primary: the replica continued partially \
         from offset {offset_down}{}",
        tails(&[&primary, &replica])
    );
    assert_eq!(info_field(&replica, "replication", "fastcache_last_sync"), "partial");
    assert!(
        !acked.confirmed.is_empty(),
        "WAIT 1 confirmed nothing: {} batches, {} errors",
        acked.batches,
        acked.errors
    );
    assert_has(&replica, &acked.confirmed, "every write confirmed by WAIT 1 is on the replica");
    assert_has(&replica, &acked.sets, "every acknowledged write (WAL_FSYNC=always) is on the replica");
    assert_has(&primary, &acked.sets, "every acknowledged write (WAL_FSYNC=always) is on the restarted primary");
    eprintln!(
        "4: {} SETs acknowledged, {} confirmed by WAIT 1, {} failed batches around the kill; replica down at {offset_down}",
        acked.sets.len(),
        acked.confirmed.len(),
        acked.errors
    );
}

// ---------------------------------------------------------------- 5. network cut

/// A TCP proxy between a replica and its primary that the test can sever.
struct Proxy {
    port: u16,
    accepted: Arc<AtomicUsize>,
    sockets: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy bind");
        listener.set_nonblocking(true).expect("proxy nonblocking");
        let port = listener.local_addr().expect("proxy addr").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let sockets: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (acc, socks, st) = (accepted.clone(), sockets.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                let client = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    }
                };
                let _ = client.set_nonblocking(false);
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", target)) else { continue };
                let _ = (client.set_nodelay(true), upstream.set_nodelay(true));
                let (Ok(c2), Ok(u2), Ok(c3), Ok(u3)) =
                    (client.try_clone(), upstream.try_clone(), client.try_clone(), upstream.try_clone())
                else {
                    continue;
                };
                socks.lock().unwrap_or_else(|e| e.into_inner()).extend([c3, u3]);
                acc.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || pump(client, u2));
                std::thread::spawn(move || pump(upstream, c2));
            }
        });
        Proxy { port, accepted, sockets, stop }
    }

    /// Cuts every connection through the proxy (both sides).
    fn sever(&self) {
        for s in self.sockets.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.sever();
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

#[test]
fn network_cut_through_a_proxy_reconnects_and_resyncs_partially() {
    let _t = Timed::start("5 network_cut");
    let pdir = TempDir::new("repl-cut-p");
    let rdir = TempDir::new("repl-cut-r");
    let primary = start_primary(&dir_str(&pdir), 0, &[]);
    populate(primary.port, "cut", 3_000, 16, 100);
    let proxy = Proxy::start(primary.port);
    let replica = start_replica(&dir_str(&rdir), proxy.port, &[]);
    converge(&primary, &replica, "initial sync through the proxy");
    assert_eq!(sync_stats(&primary), (1, 0, 0));

    let writer = Writer::start(WriterSpec::new(primary.port, "w5"));
    const CUTS: usize = 3;
    for cut in 1..=CUTS {
        std::thread::sleep(Duration::from_millis(300));
        proxy.sever();
        wait_for(
            &format!("cut {cut}: the replica reconnects through the proxy"),
            LINK_TIMEOUT,
            &[&primary, &replica],
            || {
                let n = proxy.accepted.load(Ordering::SeqCst);
                let m = try_info(replica.port, "replication")?;
                let up = m.get("master_link_status").is_some_and(|s| s == "up");
                if n > cut && up {
                    Ok(())
                } else {
                    Err(format!("{n} connections through the proxy, link {:?}", m.get("master_link_status")))
                }
            },
        );
        let (full, partial_ok, partial_err) = sync_stats(&primary);
        assert_eq!(
            (full, partial_ok, partial_err),
            (1, cut as u64, 0),
            "cut {cut}: (sync_full, sync_partial_ok, sync_partial_err){}",
            tails(&[&primary, &replica])
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    let acked = writer.finish();
    assert!(acked.errors == 0, "the writer failed: {acked:?}");
    converge(&primary, &replica, "after the network cuts");
    let log = replica.stderr_text();
    assert!(log.matches("reconnecting in").count() >= CUTS, "each cut is logged with its retry:\n{}", tail(&log, 30));
    assert_eq!(info_field(&replica, "replication", "fastcache_last_sync"), "partial");
    assert_has(&replica, &acked.sets, "network cut: the writer's SETs on the replica");
    eprintln!("5: {CUTS} cuts, {} SETs acknowledged", acked.sets.len());
}

#[test]
fn client_kill_type_replica_cuts_the_link_and_the_replica_resyncs_partially() {
    let _t = Timed::start("5b client_kill_type_replica");
    let pdir = TempDir::new("repl-ck-p");
    let rdir = TempDir::new("repl-ck-r");
    let primary = start_primary(&dir_str(&pdir), 0, &[]);
    populate(primary.port, "ck", 1_000, 16, 0);
    let replica = start_replica(&dir_str(&rdir), primary.port, &[]);
    converge(&primary, &replica, "initial sync");
    let writer = Writer::start(WriterSpec::new(primary.port, "w5b"));
    std::thread::sleep(Duration::from_millis(200));

    // Redis lists the replica's connection as type replica and kills it.
    let list = try_cmd(primary.port, &["CLIENT", "LIST", "TYPE", "replica"]).unwrap_or_default();
    let killed = try_cmd(primary.port, &["CLIENT", "KILL", "TYPE", "replica"]).unwrap_or_default();
    let acked_early = writer.finish();
    let slaves = info_field(&primary, "replication", "connected_slaves");
    assert_eq!(
        killed, ":1\r\n",
        "CLIENT KILL TYPE replica on the primary must cut the one replica (connected_slaves:{slaves}, CLIENT LIST \
         TYPE replica: {list:?})"
    );
    assert!(bulk_body(&list).is_some_and(|l| l.lines().count() == 1), "CLIENT LIST TYPE replica: {list:?}");
    wait_for("the replica resyncs after CLIENT KILL", LINK_TIMEOUT, &[&primary, &replica], || {
        let (_, partial_ok, _) = sync_stats(&primary);
        (partial_ok == 1).then_some(()).ok_or(format!("sync_partial_ok {partial_ok}"))
    });
    converge(&primary, &replica, "after CLIENT KILL TYPE replica");
    assert_eq!(sync_stats(&primary).0, 1, "no second full sync");
    assert_has(&replica, &acked_early.sets, "CLIENT KILL: the writer's SETs on the replica");
}

// ---------------------------------------------------------------- 6. node recovery

#[test]
fn node_recovery_of_an_empty_replica_serves_the_data_as_soon_as_it_is_ready() {
    let _t = Timed::start("6a node_recovery_empty");
    let pdir = TempDir::new("repl-nr-p");
    let rdir = TempDir::new("repl-nr-r");
    let primary = start_primary(&dir_str(&pdir), 0, &[]);
    populate(primary.port, "nr", 20_000, 32, 0);
    let want = dbsize(primary.port).expect("DBSIZE on the primary");
    // Writes go on during the recovery, in another database so that
    // database 0 stays comparable key for key.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (port, stop) = (primary.port, stop.clone());
        std::thread::spawn(move || {
            let mut con = try_connect(port).expect("writer connect");
            let _: () = redis::cmd("SELECT").arg(1).query(&mut con).expect("SELECT 1");
            let deadline = Instant::now() + Duration::from_secs(10);
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline && n < 20_000 {
                let r: redis::RedisResult<()> = redis::pipe()
                    .cmd("SET")
                    .arg(format!("db1:{n}"))
                    .arg(n)
                    .cmd("LPUSH")
                    .arg("db1:list")
                    .arg(n)
                    .query(&mut con);
                r.expect("writer in db 1");
                n += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            n
        })
    };

    let mut replica = spawn_replica(&dir_str(&rdir), primary.port, &[]);
    // While it recovers it answers -LOADING, never a partial data set.
    let mut probe = replica.resp();
    let mut loading_replies = 0;
    let deadline = Instant::now() + LINK_TIMEOUT;
    loop {
        let r = probe.cmd(&["DBSIZE"]);
        if r.starts_with("-LOADING") {
            loading_replies += 1;
            assert!(replica.is_running(), "the replica exited during node recovery{}", tails(&[&replica]));
            assert!(Instant::now() < deadline, "node recovery did not end{}", tails(&[&primary, &replica]));
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        assert_eq!(r, format!(":{want}\r\n"), "the first DBSIZE the recovering replica answers{}", tails(&[&replica]));
        break;
    }
    replica.wait_loaded();
    // Right after `ready to accept commands`: no waiting.
    assert_eq!(dbsize(replica.port), Ok(want), "DBSIZE right after ready");
    assert_eq!(info_field(&replica, "replication", "fastcache_node_recovery"), "1");
    assert_eq!(info_field(&replica, "replication", "fastcache_last_sync"), "full");
    let log = replica.stderr_text();
    assert!(log.contains("node recovery"), "the replica logs what it did:\n{}", tail(&log, 20));
    eprintln!("6a: {loading_replies} -LOADING replies before the data was served");
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().expect("writer");
    assert!(written > 0);
    converge(&primary, &replica, "node recovery of an empty replica");
}

/// The WAL records of a segment: (offset, payload length) of each.
fn wal_records(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 64;
    while at + 16 <= bytes.len() {
        let word = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
        let len = (word & 0x3FFF_FFFF) as usize;
        let lsn = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap_or([0; 8]));
        if lsn == 0 || at + 16 + len > bytes.len() {
            break;
        }
        out.push((at, len));
        at += 16 + len;
    }
    out
}

#[test]
fn a_replica_with_a_corrupted_wal_exits_without_node_recovery_and_is_rebuilt_with_it() {
    let _t = Timed::start("6bc node_recovery_corrupted_wal");
    let pdir = TempDir::new("repl-cw-p");
    let rdir = TempDir::new("repl-cw-r");
    let (pd, rd) = (dir_str(&pdir), dir_str(&rdir));
    let primary = start_primary(&pd, 0, &[]);
    populate(primary.port, "cw", 2_000, 16, 0);
    let mut replica = start_replica(&rd, primary.port, &[]);
    // Records after the full sync's snapshot: individual SETs.
    {
        let mut con = try_connect(primary.port).expect("connect");
        for chunk in 0..6 {
            let mut pipe = redis::pipe();
            for i in 0..500 {
                pipe.cmd("SET").arg(format!("after:{chunk}:{i}")).arg(i);
            }
            pipe.query::<()>(&mut con).expect("writes after the sync");
        }
    }
    converge(&primary, &replica, "before the damage");
    kill9(&mut replica);
    drop(replica);

    // Damage a record in the middle of the replica's WAL; valid ones follow.
    let mut segments = entries_starting(&rdir.path().join("wal"), "0");
    segments.retain(|p| p.extension().is_some_and(|e| e == "wal"));
    let (segment, records) = segments
        .iter()
        .map(|p| (p.clone(), wal_records(&std::fs::read(p).unwrap_or_default())))
        .max_by_key(|(_, r)| r.len())
        .unwrap_or_else(|| panic!("no WAL segment in {}", rdir.path().display()));
    assert!(records.len() > 1000, "{} holds {} records", segment.display(), records.len());
    eprintln!("6bc: damaging record {} of {} in {}", records.len() / 2, records.len(), segment.display());
    let (at, len) = records[records.len() / 2];
    let mut bytes = std::fs::read(&segment).expect("segment");
    let flip = at + 16 + len / 2;
    bytes[flip] ^= 0x5A;
    bytes[flip.saturating_sub(1)] ^= 0xA5;
    std::fs::write(&segment, &bytes).expect("writing the damaged segment");
    let name = segment.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();

    // (c) Without node recovery: exit 1 with a message; nothing moved.
    let mut strict = spawn_replica(&rd, primary.port, &[("ENABLE_NODE_RECOVERY", "false")]);
    let status = strict.wait_exit(Duration::from_secs(30));
    let err = strict.stderr_text();
    assert_eq!(status.and_then(|s| s.code()), Some(1), "ENABLE_NODE_RECOVERY=false: exit 1; stderr:\n{err}");
    assert!(err.contains(&name), "the message names the damaged segment {name}:\n{err}");
    assert!(entries_starting(rdir.path(), "moved-aside-").is_empty(), "nothing is moved without node recovery");
    assert_eq!(std::fs::read(&segment).expect("segment")[flip], bytes[flip], "the segment is untouched");
    drop(strict);

    // (b) With node recovery (the default): rebuilt from the primary.
    let before = sync_stats(&primary);
    let writer = Writer::start(WriterSpec::new(primary.port, "w6b"));
    let mut replica = start_replica(&rd, primary.port, &[]);
    assert!(replica.is_running(), "the replica keeps running");
    let log = replica.stderr_text();
    assert!(log.contains("crash recovery failed"), "the replica says why it recovers from the primary:\n{log}");
    let aside = entries_starting(rdir.path(), "moved-aside-");
    assert_eq!(aside.len(), 1, "one moved-aside directory: {aside:?}");
    assert!(aside[0].join("wal").join(&name).exists(), "the damaged segment is kept in {}", aside[0].display());
    assert_eq!(info_field(&replica, "replication", "fastcache_node_recovery"), "1");
    std::thread::sleep(Duration::from_millis(300));
    let acked = writer.finish();
    assert!(acked.errors == 0, "the writer failed: {acked:?}");
    converge(&primary, &replica, "node recovery of a damaged replica");
    assert_eq!(sync_stats(&primary).0, before.0 + 1, "one more full sync");
    assert_has(&replica, &acked.sets, "node recovery: the writer's SETs on the replica");
}

// ---------------------------------------------------------------- 7. offset older than the WAL

#[test]
fn a_replica_behind_the_oldest_wal_segment_falls_back_to_a_full_sync() {
    let _t = Timed::start("7 offset_older_than_wal");
    let pdir = TempDir::new("repl-old-p");
    let rdir = TempDir::new("repl-old-r");
    let (pd, rd) = (dir_str(&pdir), dir_str(&rdir));
    let primary = start_primary(&pd, 0, &[("SNAPSHOT_RETAIN_COUNT", "1")]);
    populate(primary.port, "old", 2_000, 16, 0);
    let mut replica = start_replica(&rd, primary.port, &[]);
    let offset = converge(&primary, &replica, "initial sync");
    kill9(&mut replica);
    drop(replica);

    // More than two 4 MiB segments, then a rewrite drops the old ones.
    bulk_load(primary.port, "fill", 40_000, 300);
    let r = try_cmd(primary.port, &["BGREWRITEAOF"]).unwrap_or_default();
    assert!(r.starts_with("+Background append only file rewriting"), "BGREWRITEAOF: {r:?}");
    let first = wait_for("the rewrite drops the WAL the replica needs", Duration::from_secs(30), &[&primary], || {
        let m = try_info(primary.port, "persistence")?;
        let r = try_info(primary.port, "replication")?;
        let first: u64 = r.get("repl_backlog_first_byte_offset").and_then(|v| v.parse().ok()).unwrap_or(0);
        let idle = m.get("aof_rewrite_in_progress").is_some_and(|v| v == "0")
            && m.get("aof_rewrite_scheduled").is_some_and(|v| v == "0");
        if idle && first > offset + 1 {
            Ok(first)
        } else {
            Err(format!("rewrite idle {idle}, WAL starts at {first}, the replica needs {}", offset + 1))
        }
    });
    let before = sync_stats(&primary);

    let writer = Writer::start(WriterSpec::new(primary.port, "w7"));
    let replica = start_replica(&rd, primary.port, &[]);
    wait_link_up(&replica, &primary, "the restarted replica's link");
    std::thread::sleep(Duration::from_millis(300));
    let acked = writer.finish();
    assert!(acked.errors == 0, "the writer failed: {acked:?}");
    converge(&primary, &replica, "after the fallback to a full sync");
    let after = sync_stats(&primary);
    assert_eq!(
        after,
        (before.0 + 1, before.1, before.2 + 1),
        "(sync_full, sync_partial_ok, sync_partial_err): the partial resync from {} failed (the WAL starts at \
         {first}) and a full one followed{}",
        offset + 1,
        tails(&[&primary, &replica])
    );
    assert_eq!(info_field(&replica, "replication", "fastcache_last_sync"), "full");
    assert_eq!(info_field(&replica, "replication", "fastcache_node_recovery"), "0");
    assert_has(&replica, &acked.sets, "fallback: the writer's SETs on the replica");
    eprintln!("7: replica needed LSN {}, the primary's WAL started at {first}", offset + 1);
}

// ---------------------------------------------------------------- 8. bad input

#[test]
fn a_fake_replica_with_an_unknown_protocol_or_no_protocol_is_refused() {
    let _t = Timed::start("8a bad_protocol_fake_replica");
    let primary = Server::start();
    let mut r = primary.resp();
    assert_eq!(r.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(r.cmd(&["REPLCONF", "listening-port", "1234"]), "+OK\r\n");
    let e = r.cmd(&["REPLCONF", "fastcache-protocol", "99"]);
    assert!(e.starts_with("-ERR") && e.contains("99") && e.contains("version 1"), "names both versions: {e:?}");
    let e = r.cmd(&["PSYNC", "?", "-1"]);
    assert!(e.starts_with("-ERR") && e.contains("fastcache-protocol"), "PSYNC without the protocol: {e:?}");
    // The connection is still an ordinary client.
    assert_eq!(r.cmd(&["PING"]), "+PONG\r\n");
    let mut fresh = primary.resp();
    let e = fresh.cmd(&["PSYNC", "?", "-1"]);
    assert!(e.starts_with("-ERR") && e.contains("fastcache-protocol"), "PSYNC as first command: {e:?}");
    let e = fresh.cmd(&["SYNC"]);
    assert!(e.starts_with("-ERR"), "SYNC: {e:?}");
    assert_eq!(info_field(&primary, "replication", "connected_slaves"), "0");
    wait_for("the primary logs the refused version", Duration::from_secs(5), &[&primary], || {
        let log = primary.stderr_text();
        log.contains("unsupported replication protocol version").then_some(()).ok_or_else(|| tail(&log, 5))
    });
}

/// A fake primary: answers the handshake, refuses the protocol on its first
/// connection, then sends `+FULLRESYNC` and a frame with a bad checksum.
struct FakePrimary {
    port: u16,
    /// Each connection's commands.
    conns: Arc<Mutex<Vec<Vec<String>>>>,
    stop: Arc<AtomicBool>,
}

impl FakePrimary {
    fn start() -> FakePrimary {
        let listener = TcpListener::bind("127.0.0.1:0").expect("fake primary bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let conns: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (cs, st) = (conns.clone(), stop.clone());
        std::thread::spawn(move || {
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let index = {
                            let mut c = cs.lock().unwrap_or_else(|e| e.into_inner());
                            c.push(Vec::new());
                            c.len() - 1
                        };
                        fake_session(s, index, &cs, &st);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        FakePrimary { port, conns, stop }
    }

    fn connections(&self) -> Vec<Vec<String>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for FakePrimary {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The arguments of one RESP multibulk request.
fn request_args(frame: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(frame);
    let mut lines = text.split("\r\n");
    let n: usize = lines.next().and_then(|l| l.strip_prefix('*')).and_then(|n| n.parse().ok()).unwrap_or(0);
    (0..n)
        .map(|_| {
            lines.next();
            lines.next().unwrap_or("").to_string()
        })
        .collect()
}

fn fake_session(mut s: TcpStream, index: usize, conns: &Mutex<Vec<Vec<String>>>, stop: &AtomicBool) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(20) {
        while let Some(end) = common::frame_end(&buf, 0) {
            let args = request_args(&buf[..end]);
            buf.drain(..end);
            let name = args.first().map(|a| a.to_ascii_uppercase()).unwrap_or_default();
            let line = args.join(" ");
            conns.lock().unwrap_or_else(|e| e.into_inner())[index].push(line);
            let reply: Vec<u8> = match name.as_str() {
                "PING" => b"+PONG\r\n".to_vec(),
                "REPLCONF"
                    if index == 0 && args.get(1).is_some_and(|a| a.eq_ignore_ascii_case("fastcache-protocol")) =>
                {
                    b"-ERR unsupported FastCache replication protocol version 1: this server speaks version 7\r\n"
                        .to_vec()
                }
                "PSYNC" => {
                    let mut out = format!("+FULLRESYNC {} 5\r\n", "ab".repeat(20)).into_bytes();
                    // A chunk frame whose checksum does not match its bytes.
                    let (kind, body) = (b'C', [1u8, 0, 0, 0, 9, 9, 9, 9]);
                    let len = (body.len() as u32).to_le_bytes();
                    let good = crc32c::crc32c_append(crc32c::crc32c_append(crc32c::crc32c(&[kind]), &len), &body);
                    out.push(kind);
                    out.extend_from_slice(&len);
                    out.extend_from_slice(&(good ^ 0xDEAD_BEEF).to_le_bytes());
                    out.extend_from_slice(&body);
                    out
                }
                _ => b"+OK\r\n".to_vec(),
            };
            if s.write_all(&reply).is_err() {
                return;
            }
        }
        match s.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return,
        }
    }
}

#[test]
fn a_fake_primary_refusing_the_protocol_or_sending_a_damaged_frame_gets_retries_never_a_synced_replica() {
    let _t = Timed::start("8b fake_primary_bad_frames");
    let fake = FakePrimary::start();
    let rdir = TempDir::new("repl-fake-r");
    let replica = start_primary(&dir_str(&rdir), 0, &[]);
    assert_eq!(try_cmd(replica.port, &["SET", "local", "1"]).as_deref(), Ok("+OK\r\n"));
    let fport = fake.port.to_string();
    assert_eq!(try_cmd(replica.port, &["REPLICAOF", "127.0.0.1", &fport]).as_deref(), Ok("+OK\r\n"));

    // Connection 1: protocol refused. Connection 2: a damaged frame after
    // +FULLRESYNC. Connection 3: the retry after the damaged frame.
    let mut link_states = Vec::new();
    wait_for("the replica's third connection to the fake primary", Duration::from_secs(15), &[&replica], || {
        let m = try_info(replica.port, "replication")?;
        link_states.push(m.get("master_link_status").cloned().unwrap_or_default());
        let conns = fake.connections();
        let psyncs = conns.iter().filter(|c| c.iter().any(|l| l.starts_with("PSYNC"))).count();
        if conns.len() >= 3 && psyncs >= 2 {
            Ok(())
        } else {
            Err(format!("connections {conns:?}"))
        }
    });
    let conns = fake.connections();
    let log = replica.stderr_text();
    assert!(
        log.contains("does not speak FastCache replication protocol"),
        "the refused protocol is logged:\n{}",
        tail(&log, 30)
    );
    assert!(log.contains("checksum"), "the damaged frame is logged as a checksum error:\n{}", tail(&log, 30));
    assert!(log.contains("reconnecting in"), "and followed by a retry:\n{}", tail(&log, 30));
    assert!(conns[0].iter().all(|l| !l.starts_with("PSYNC")), "no PSYNC after the refused protocol: {conns:?}");
    // The first PSYNC continues the node's own history (it had written a
    // key); once a full sync began to replace its data, it never claims a
    // history again, least of all the one it did not finish receiving.
    let psyncs: Vec<&String> = conns.iter().filter_map(|c| c.iter().find(|l| l.starts_with("PSYNC"))).collect();
    assert!(psyncs.iter().all(|p| !p.contains(&"ab".repeat(20))), "PSYNCs: {psyncs:?}");
    assert!(psyncs[1..].iter().all(|p| *p == "PSYNC ? -1"), "PSYNCs after the damaged sync: {psyncs:?}");
    assert!(link_states.iter().all(|s| s == "down"), "the link was never up: {link_states:?}");
    assert_eq!(info_field(&replica, "replication", "master_link_status"), "down");
    // Not a silently empty (or partial) data set served as if synced.
    let got = try_cmd(replica.port, &["GET", "local"]).unwrap_or_default();
    assert!(got.starts_with("-LOADING"), "reads during the failed sync: {got:?}");
    let w = try_cmd(replica.port, &["SET", "x", "1"]).unwrap_or_default();
    assert!(w == READONLY || w.starts_with("-LOADING"), "a write during the failed sync: {w:?}");

    // Pointed at a real primary, it syncs and serves again.
    let pdir = TempDir::new("repl-fake-p");
    let primary = start_primary(&dir_str(&pdir), 0, &[]);
    populate(primary.port, "real", 500, 8, 0);
    let pport = primary.port.to_string();
    let repoint = try_cmd(replica.port, &["REPLICAOF", "127.0.0.1", &pport]).unwrap_or_default();
    if repoint != "+OK\r\n" {
        let promote = try_cmd(replica.port, &["REPLICAOF", "NO", "ONE"]).unwrap_or_default();
        let m = try_info(replica.port, "replication").unwrap_or_default();
        panic!(
            "a replica whose full sync failed cannot be pointed elsewhere: REPLICAOF 127.0.0.1 {pport} -> {repoint:?}, \
             REPLICAOF NO ONE -> {promote:?}; INFO: master_link_status={:?} master_sync_in_progress={:?}{}",
            m.get("master_link_status"),
            m.get("master_sync_in_progress"),
            tails(&[&replica])
        );
    }
    wait_link_up(&replica, &primary, "the link to the real primary");
    converge(&primary, &replica, "after the fake primary");
    assert_eq!(try_cmd(replica.port, &["EXISTS", "local"]).as_deref(), Ok(":0\r\n"));
}

/// The `reconnecting in X` durations of a log, in order.
fn backoffs(log: &str) -> Vec<Duration> {
    log.lines()
        .filter_map(|l| {
            let rest = &l[l.find("reconnecting in ")? + "reconnecting in ".len()..];
            let d = rest.split_whitespace().next()?;
            if let Some(ms) = d.strip_suffix("ms") {
                ms.parse::<f64>().ok().map(|v| Duration::from_secs_f64(v / 1000.0))
            } else {
                d.strip_suffix('s')?.parse::<f64>().ok().map(Duration::from_secs_f64)
            }
        })
        .collect()
}

#[test]
fn a_primary_that_vanishes_leaves_a_serving_replica_that_retries_with_backoff() {
    let _t = Timed::start("8c primary_vanishes");
    let pdir = TempDir::new("repl-van-p");
    let rdir = TempDir::new("repl-van-r");
    let mut primary = start_primary(&dir_str(&pdir), 0, &[]);
    let port = primary.port;
    populate(port, "van", 2_000, 16, 0);
    let replica = start_replica(&dir_str(&rdir), port, &[]);
    converge(&primary, &replica, "initial sync");
    let keys = dbsize(replica.port).expect("DBSIZE");
    let sum = digest(replica.port).expect("digest");
    let retries_before = backoffs(&replica.stderr_text()).len();
    kill9(&mut primary);
    drop(primary);

    // About 3.5 s without a primary: backoff 100 ms, 200 ms, 400 ms, …
    let until = Instant::now() + Duration::from_millis(3500);
    while Instant::now() < until {
        assert_eq!(info_field(&replica, "replication", "master_link_status"), "down");
        assert_eq!(dbsize(replica.port), Ok(keys), "the replica serves reads");
        assert_eq!(try_cmd(replica.port, &["HGET", "van:2", "c"]).as_deref(), Ok("$1\r\nz\r\n"));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(digest(replica.port).as_deref(), Ok(sum.as_str()), "nothing changed on the replica");
    let log = replica.stderr_text();
    let waits = backoffs(&log)[retries_before..].to_vec();
    assert!(waits.len() >= 3, "retries are logged: {waits:?}\n{}", tail(&log, 20));
    assert!(waits.windows(2).all(|w| w[0] <= w[1]), "the backoff grows: {waits:?}");
    assert!(waits[0] <= Duration::from_millis(200) && waits.iter().all(|w| *w <= Duration::from_secs(5)), "{waits:?}");
    assert!(log.contains("cannot connect to the primary"), "the reason is logged:\n{}", tail(&log, 20));
    eprintln!("8c: backoffs while the primary was gone: {waits:?}");

    // A new primary (another data set) on the same port: the replica
    // reconnects by itself and follows it.
    let ndir = TempDir::new("repl-van-n");
    let primary = start_primary(&dir_str(&ndir), port, &[]);
    populate(port, "new", 500, 8, 0);
    let writer = Writer::start(WriterSpec::new(port, "w8c"));
    wait_link_up(&replica, &primary, "the replica reconnects to the new primary");
    std::thread::sleep(Duration::from_millis(300));
    let acked = writer.finish();
    assert!(acked.errors == 0, "the writer failed: {acked:?}");
    converge(&primary, &replica, "after the new primary came up");
    assert_eq!(try_cmd(replica.port, &["EXISTS", "van:2"]).as_deref(), Ok(":0\r\n"), "the old data set is gone");
    assert_has(&replica, &acked.sets, "new primary: the writer's SETs on the replica");
}

// ---------------------------------------------------------------- 9. read-only replica

#[test]
fn a_replica_is_read_only_and_wait_and_role_answer_as_redis() {
    let _t = Timed::start("9 readonly_wait_role");
    let pdir = TempDir::new("repl-ro-p");
    let rdir = TempDir::new("repl-ro-r");
    let primary = start_primary(&dir_str(&pdir), 0, &[]);
    populate(primary.port, "ro", 500, 8, 0);
    let replica = start_replica(&dir_str(&rdir), primary.port, &[]);
    converge(&primary, &replica, "initial sync");
    let writer = Writer::start(WriterSpec::new(primary.port, "w9"));

    let mut r = replica.resp();
    for cmd in [
        &["SET", "k", "v"][..],
        &["DEL", "ro:0"],
        &["INCR", "n"],
        &["LPUSH", "ro:1", "x"],
        &["HSET", "ro:2", "f", "v"],
        &["EXPIRE", "ro:0", "10"],
        &["FLUSHALL"],
    ] {
        assert_eq!(r.cmd(cmd), READONLY, "{cmd:?} on the replica");
    }
    // A MULTI with a write is refused as a whole.
    assert_eq!(r.cmd(&["MULTI"]), "+OK\r\n");
    let queued = r.cmd(&["SET", "k", "v"]);
    let exec = r.cmd(&["EXEC"]);
    assert!(
        queued == READONLY || exec.starts_with("-EXECABORT") || exec.starts_with("-READONLY"),
        "MULTI/SET/EXEC on a replica: {queued:?} then {exec:?}"
    );
    // Reads work.
    assert_eq!(r.cmd(&["GET", "ro:0"]), "$9\r\nvvvvvvvv0\r\n");
    assert_eq!(r.cmd(&["HGET", "ro:2", "c"]), "$1\r\nz\r\n");
    assert_eq!(r.cmd(&["LLEN", "ro:1"]), ":3\r\n");
    // WAIT on a replica is an error, as in Redis.
    let e = r.cmd(&["WAIT", "1", "100"]);
    assert!(e.starts_with("-ERR WAIT cannot be used with replica instances"), "WAIT on the replica: {e:?}");

    // WAIT 1 on the primary with the replica attached.
    let mut p = primary.resp();
    assert_eq!(p.cmd(&["SET", "waited", "1"]), "+OK\r\n");
    assert_eq!(p.cmd(&["WAIT", "1", "5000"]), ":1\r\n");
    assert_eq!(p.cmd(&["WAIT", "2", "200"]), ":1\r\n", "only one replica: WAIT 2 times out with 1");
    assert_eq!(r.cmd(&["GET", "waited"]), "$1\r\n1\r\n", "WAIT 1 returned: the replica has it");

    let acked = writer.finish();
    let offset = converge(&primary, &replica, "read-only checks");
    let mut pc = try_connect(primary.port).expect("connect");
    let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut pc).expect("ROLE on the primary");
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Int(n) => n.to_string(),
        other => format!("{other:?}"),
    };
    assert_eq!(text(&role[0]), "master", "{role:?}");
    assert_eq!(text(&role[1]), offset.to_string(), "{role:?}");
    match &role[2] {
        redis::Value::Array(list) => {
            assert_eq!(list.len(), 1, "{role:?}");
            let redis::Value::Array(one) = &list[0] else { panic!("{role:?}") };
            let one: Vec<String> = one.iter().map(text).collect();
            assert_eq!(one, vec!["127.0.0.1".to_string(), replica.port.to_string(), offset.to_string()], "{role:?}");
        }
        other => panic!("ROLE's replica list: {other:?}"),
    }
    let mut rc = try_connect(replica.port).expect("connect");
    let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut rc).expect("ROLE on the replica");
    let role: Vec<String> = role.iter().map(text).collect();
    assert_eq!(
        role,
        vec![
            "slave".to_string(),
            "127.0.0.1".to_string(),
            primary.port.to_string(),
            "connected".to_string(),
            offset.to_string()
        ]
    );
    assert_eq!(info_field(&replica, "replication", "role"), "slave");
    assert_has(&replica, &acked.sets, "read-only test: the writer's SETs on the replica");
}
