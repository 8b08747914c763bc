//! Harness for the Sentinel tests: data nodes (FastCache, or a reference
//! `redis-server` when `FASTCACHE_TEST_REFERENCE` is set) on fixed ports and
//! directories so that a killed node can be restarted in place, and
//! `redis-sentinel` processes monitoring them.
//!
//! Every process is killed on drop; every wait is bounded and, when it runs
//! out, says what it was waiting for and what it saw last.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{reference_mode, Server, TempDir, IO_TIMEOUT};

/// The name every sentinel monitors the primary under.
pub const MASTER_NAME: &str = "mymaster";
/// Sentinel's binary (Debian's `redis-sentinel` package).
const SENTINEL_BIN: &str = "redis-sentinel";
/// How long a process may take to answer its first PING.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A port that was free a moment ago (bind :0, read it, release it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("finding a free port: {e}"))
}

/// Polls `probe` every 50 ms until it returns `Ok`, for at most `timeout`.
/// The error names `what` and the probe's last complaint.
pub fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Result<T, String>) -> Result<T, String> {
    let deadline = Instant::now() + timeout;
    loop {
        match probe() {
            Ok(v) => return Ok(v),
            Err(last) if Instant::now() >= deadline => {
                return Err(format!("{what}: not within {timeout:?}; last seen: {last}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// A connection to 127.0.0.1:`port` with read and write timeouts.
pub fn try_connect(port: u16) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let con = client.get_connection_with_timeout(IO_TIMEOUT)?;
    con.set_read_timeout(Some(IO_TIMEOUT))?;
    con.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(con)
}

/// [`try_connect`], panicking on failure.
pub fn connect(port: u16) -> redis::Connection {
    try_connect(port).unwrap_or_else(|e| panic!("connecting to 127.0.0.1:{port}: {e}"))
}

/// The `field:value` lines of `INFO section`.
pub fn info(con: &mut redis::Connection, section: &str) -> redis::RedisResult<BTreeMap<String, String>> {
    let text: String = redis::cmd("INFO").arg(section).query(con)?;
    Ok(text.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.to_string(), v.trim().to_string())).collect())
}

/// A reply element as text (numbers included), for ROLE and the like.
pub fn text(v: &redis::Value) -> String {
    match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        redis::Value::SimpleString(s) => s.clone(),
        redis::Value::Int(n) => n.to_string(),
        redis::Value::Okay => "OK".into(),
        other => format!("{other:?}"),
    }
}

/// The ROLE reply's elements as text (nested arrays as their debug form).
pub fn role(con: &mut redis::Connection) -> redis::RedisResult<Vec<String>> {
    let reply: Vec<redis::Value> = redis::cmd("ROLE").query(con)?;
    Ok(reply.iter().map(text).collect())
}

/// The binary reference mode runs: `FASTCACHE_TEST_REFERENCE` names it, as
/// for the rest of the suite; `1` means the `redis-server` on PATH.
fn reference_server_bin() -> PathBuf {
    match std::env::var_os("FASTCACHE_TEST_REFERENCE") {
        Some(v) if v != "1" && !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from("redis-server"),
    }
}

/// A data node: FastCache, or a reference Redis in reference mode.
pub enum Node {
    FastCache(Server),
    Redis(RedisServer),
}

/// What a data node is started with.
#[derive(Clone, Copy)]
pub struct NodeSpec<'a> {
    /// The data directory (kept by the caller, so a restart finds it).
    pub dir: &'a Path,
    /// The port; 0 lets FastCache pick one (Redis gets a free port).
    pub port: u16,
    /// Start as a replica of 127.0.0.1:this port.
    pub replica_of: Option<u16>,
}

impl Node {
    /// Starts a node whose every acknowledged write is on disk
    /// (FastCache: `WAL_FSYNC=always`; Redis: `appendonly yes`,
    /// `appendfsync always`), so a SIGKILLed node restarts with its data.
    pub fn start(spec: NodeSpec<'_>) -> Node {
        if reference_mode() {
            return Node::Redis(RedisServer::start(&reference_server_bin(), spec));
        }
        let dir = spec.dir.to_string_lossy().into_owned();
        let port = spec.port.to_string();
        let replicaof = spec.replica_of.map(|p| format!("127.0.0.1:{p}"));
        let mut env: Vec<(&str, &str)> =
            vec![("PERSISTENCE_DIR", &dir), ("FASTCACHE_PORT", &port), ("WAL_FSYNC", "always")];
        if let Some(r) = &replicaof {
            env.push(("FASTCACHE_REPLICAOF", r));
        }
        Node::FastCache(Server::start_with(&env))
    }

    pub fn port(&self) -> u16 {
        match self {
            Node::FastCache(s) => s.port,
            Node::Redis(r) => r.port,
        }
    }

    pub fn client(&self) -> redis::Connection {
        connect(self.port())
    }

    /// SIGKILL, then wait for the process to be gone.
    pub fn kill9(&mut self) {
        match self {
            Node::FastCache(s) => {
                let _ = Command::new("kill").args(["-KILL", &s.pid().to_string()]).status();
                assert!(s.wait_exit(Duration::from_secs(10)).is_some(), "the server survived SIGKILL");
            }
            Node::Redis(r) => {
                let _ = r.child.kill();
                let _ = r.child.wait();
            }
        }
    }

    /// The node's log (FastCache's stdout and stderr, Redis' logfile).
    pub fn log(&self) -> String {
        match self {
            Node::FastCache(s) => format!("{}{}", s.stdout_text(), s.stderr_text()),
            Node::Redis(r) => std::fs::read_to_string(&r.logfile).unwrap_or_default(),
        }
    }
}

/// A reference `redis-server` on a given port and directory, killed on drop.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    logfile: PathBuf,
}

impl RedisServer {
    fn start(bin: &Path, spec: NodeSpec<'_>) -> RedisServer {
        let port = if spec.port == 0 { free_port() } else { spec.port };
        let logfile = spec.dir.join(format!("redis-{port}.log"));
        let mut cmd = Command::new(bin);
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--daemonize", "no", "--save", ""])
            .args(["--appendonly", "yes", "--appendfsync", "always", "--repl-diskless-sync-delay", "0"])
            .arg("--dir")
            .arg(spec.dir)
            .arg("--logfile")
            .arg(&logfile);
        if let Some(p) = spec.replica_of {
            cmd.args(["--replicaof", "127.0.0.1", &p.to_string()]);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()));
        let mut server = RedisServer { child, port, logfile };
        let up = wait_for("redis-server answers PING", START_TIMEOUT, || {
            if let Ok(Some(st)) = server.child.try_wait() {
                return Ok(Err(format!("exited with {st}")));
            }
            let mut con = try_connect(port).map_err(|e| e.to_string())?;
            // LOADING is an answer too: the AOF is being replayed.
            match redis::cmd("PING").query::<String>(&mut con) {
                Ok(_) => Ok(Ok(())),
                Err(e) if e.to_string().contains("LOADING") => Err("loading".into()),
                Err(e) => Err(e.to_string()),
            }
        });
        if let Err(e) = up.and_then(|r| r) {
            panic!("{}: {e}; log:\n{}", bin.display(), std::fs::read_to_string(&server.logfile).unwrap_or_default());
        }
        server
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `redis-sentinel` process with its own directory (it rewrites its
/// configuration file), killed on drop.
pub struct Sentinel {
    child: Child,
    pub port: u16,
    dir: TempDir,
}

impl Sentinel {
    /// Starts a sentinel monitoring 127.0.0.1:`master_port` as
    /// [`MASTER_NAME`] with quorum 2, a 1 s down-after period and a 10 s
    /// failover timeout.
    pub fn start(master_port: u16) -> Sentinel {
        let dir = TempDir::new("sentinel");
        let port = free_port();
        let d = dir.path().display();
        let conf = format!(
            "port {port}\n\
             bind 127.0.0.1\n\
             daemonize no\n\
             dir \"{d}\"\n\
             logfile \"{d}/sentinel.log\"\n\
             loglevel verbose\n\
             sentinel resolve-hostnames no\n\
             sentinel announce-hostnames no\n\
             sentinel monitor {MASTER_NAME} 127.0.0.1 {master_port} 2\n\
             sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
             sentinel failover-timeout {MASTER_NAME} 10000\n\
             sentinel parallel-syncs {MASTER_NAME} 1\n"
        );
        let path = dir.path().join("sentinel.conf");
        std::fs::write(&path, conf).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        let child = Command::new(SENTINEL_BIN)
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {SENTINEL_BIN} (Debian package redis-sentinel): {e}"));
        let mut sentinel = Sentinel { child, port, dir };
        let up = wait_for("redis-sentinel answers PING", START_TIMEOUT, || {
            if let Ok(Some(st)) = sentinel.child.try_wait() {
                return Ok(Err(format!("exited with {st}")));
            }
            let mut con = try_connect(port).map_err(|e| e.to_string())?;
            redis::cmd("PING").query::<String>(&mut con).map(Ok).map_err(|e| e.to_string())
        });
        if let Err(e) = up.and_then(|r| r.map(drop)) {
            panic!("sentinel on port {port}: {e}; log:\n{}", sentinel.log());
        }
        sentinel
    }

    pub fn client(&self) -> redis::RedisResult<redis::Connection> {
        try_connect(self.port)
    }

    /// SENTINEL MASTER mymaster, as a field → value map.
    pub fn master(&self) -> redis::RedisResult<BTreeMap<String, String>> {
        let flat: Vec<String> = redis::cmd("SENTINEL").arg("MASTER").arg(MASTER_NAME).query(&mut self.client()?)?;
        Ok(pairs(flat))
    }

    /// SENTINEL REPLICAS mymaster, each as a field → value map.
    pub fn replicas(&self) -> redis::RedisResult<Vec<BTreeMap<String, String>>> {
        let all: Vec<Vec<String>> =
            redis::cmd("SENTINEL").arg("REPLICAS").arg(MASTER_NAME).query(&mut self.client()?)?;
        Ok(all.into_iter().map(pairs).collect())
    }

    /// SENTINEL GET-MASTER-ADDR-BY-NAME mymaster: the port clients are sent to.
    pub fn master_port(&self) -> redis::RedisResult<Option<u16>> {
        let addr: Option<(String, String)> =
            redis::cmd("SENTINEL").arg("GET-MASTER-ADDR-BY-NAME").arg(MASTER_NAME).query(&mut self.client()?)?;
        Ok(addr.and_then(|(_, port)| port.parse().ok()))
    }

    /// The sentinel's log file so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sentinel.log")).unwrap_or_default()
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pairs(flat: Vec<String>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut it = flat.into_iter();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.insert(k, v);
    }
    out
}

/// Three sentinels monitoring the same primary (quorum 2).
pub struct Sentinels(pub Vec<Sentinel>);

impl Sentinels {
    pub fn start_three(master_port: u16) -> Sentinels {
        Sentinels((0..3).map(|_| Sentinel::start(master_port)).collect())
    }

    /// Every sentinel's log, the Sentinel event lines only (the ones
    /// starting with `#` or `*` after the time stamp), for failure reports.
    pub fn events(&self) -> String {
        let mut out = String::new();
        for s in &self.0 {
            out.push_str(&format!("--- sentinel {}\n", s.port));
            for l in s.log().lines().filter(|l| l.contains(" # ") || l.contains(" * ")) {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

/// Every key of database 0 with its DUMP payload, read with SCAN.
pub fn dataset(con: &mut redis::Connection) -> redis::RedisResult<BTreeMap<Vec<u8>, Vec<u8>>> {
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, batch): (String, Vec<Vec<u8>>) =
            redis::cmd("SCAN").arg(&cursor).arg("COUNT").arg(1000).query(con)?;
        keys.extend(batch);
        if next == "0" {
            break;
        }
        cursor = next;
    }
    keys.sort();
    keys.dedup();
    let mut out = BTreeMap::new();
    for chunk in keys.chunks(500) {
        let mut pipe = redis::pipe();
        for k in chunk {
            pipe.cmd("DUMP").arg(k);
        }
        let dumps: Vec<Option<Vec<u8>>> = pipe.query(con)?;
        for (k, d) in chunk.iter().zip(dumps) {
            // A key that expired between SCAN and DUMP is simply absent.
            if let Some(d) = d {
                out.insert(k.clone(), d);
            }
        }
    }
    Ok(out)
}

/// DEBUG DIGEST, or `None` where the server does not implement it.
pub fn debug_digest(con: &mut redis::Connection) -> Option<String> {
    redis::cmd("DEBUG").arg("DIGEST").query::<String>(con).ok()
}
