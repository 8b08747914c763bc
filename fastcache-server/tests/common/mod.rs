//! Shared harness for the server's integration tests: start the real
//! binary on a free port, talk to it with the `redis` crate or raw RESP.
//!
//! Every wait here is bounded; a server that does not come up, or a reply
//! that does not arrive, fails the test instead of hanging it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// The server binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_fastcache-server");

/// How long the server may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Read timeout of every client the harness hands out.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Environment variable prefixes the server reads; the harness removes
/// inherited ones so a developer's shell cannot change a test's outcome.
const SERVER_ENV_PREFIXES: &[&str] =
    &["FASTCACHE_", "ENABLE_", "PERSISTENCE_", "RECOVERY_", "SNAPSHOT_", "WAL_", "MAX_SNAPSHOT_"];

fn scrubbed_command(env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if SERVER_ENV_PREFIXES.iter().any(|p| k.starts_with(p)) {
            cmd.env_remove(k.as_ref());
        }
    }
    // Parallel tests would fight over the default metrics port; a test
    // that wants the endpoint passes FASTCACHE_METRICS_ADDR=127.0.0.1:0.
    cmd.env("FASTCACHE_METRICS_ADDR", "off");
    // Every test server persists into its own temporary directory; small
    // segments keep dozens of them cheap.
    cmd.env("FASTCACHE_WAL_SEGMENT_SIZE", "4mb");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates a fresh, empty directory whose name contains `label`.
    pub fn new(label: &str) -> TempDir {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let path = std::env::temp_dir().join(format!(
            "fastcache-test-{label}-{}-{}-{nanos}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A running `fastcache-server`, killed on drop.
pub struct Server {
    child: Child,
    pub port: u16,
    /// The data directory the server was given.
    pub dir: PathBuf,
    /// Present when the harness created the directory (removed on drop).
    _own_dir: Option<TempDir>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts a server with the default configuration.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts a server with extra environment variables. FASTCACHE_PORT=0,
    /// FASTCACHE_BIND=127.0.0.1 and FASTCACHE_METRICS_ADDR=off are set
    /// unless `env` sets them; without
    /// PERSISTENCE_DIR in `env` a temporary directory is used and removed
    /// when the server is dropped (pass one to restart on the same data).
    ///
    /// With `FASTCACHE_TEST_REFERENCE=redis-server` in the environment the
    /// same tests run against a real Redis instead, to check that their
    /// expectations are Redis' (see [`Server::start_reference`]).
    pub fn start_with(env: &[(&str, &str)]) -> Server {
        let mut server = Server::spawn_with(env);
        server.wait_loaded_if_fastcache();
        server
    }

    /// Like [`Server::start_with`] but returns as soon as the server
    /// listens, possibly still loading its data (`-LOADING`).
    pub fn spawn_with(env: &[(&str, &str)]) -> Server {
        if let Some(reference) = std::env::var_os("FASTCACHE_TEST_REFERENCE").filter(|v| !v.is_empty()) {
            return Server::start_reference(Path::new(&reference), env);
        }
        let has = |name: &str| env.iter().any(|(k, _)| *k == name);
        let own_dir = if has("PERSISTENCE_DIR") { None } else { Some(TempDir::new("data")) };
        let dir = match &own_dir {
            Some(d) => d.path().to_path_buf(),
            None => {
                env.iter().find(|(k, _)| *k == "PERSISTENCE_DIR").map(|(_, v)| PathBuf::from(v)).unwrap_or_default()
            }
        };
        let mut cmd = scrubbed_command(&[]);
        cmd.env("FASTCACHE_PORT", "0").env("FASTCACHE_BIND", "127.0.0.1").env("PERSISTENCE_DIR", &dir);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawning {BIN}: {e}"));

        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (first_line_tx, first_line_rx) = mpsc::channel::<String>();
        if let Some(out) = child.stdout.take() {
            let sink = stdout.clone();
            std::thread::spawn(move || {
                // Keep draining after the first line so the server never
                // blocks on a full pipe.
                let mut tx = Some(first_line_tx);
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(line.clone());
                    }
                    if let Ok(mut s) = sink.lock() {
                        s.push_str(&line);
                        s.push('\n');
                    }
                }
            });
        }
        if let Some(err) = child.stderr.take() {
            let sink = stderr.clone();
            std::thread::spawn(move || {
                let mut err = err;
                let mut chunk = [0u8; 4096];
                while let Ok(n) = err.read(&mut chunk) {
                    if n == 0 {
                        break;
                    }
                    if let Ok(mut s) = sink.lock() {
                        s.push_str(&String::from_utf8_lossy(&chunk[..n]));
                    }
                }
            });
        }

        let line = first_line_rx.recv_timeout(START_TIMEOUT);
        let port = line.as_ref().ok().and_then(|l| parse_listening_port(l));
        let Some(port) = port else {
            let _ = child.kill();
            let status = child.wait().ok();
            // Give the stderr thread a moment to collect the reason.
            std::thread::sleep(Duration::from_millis(100));
            let err = stderr.lock().map(|s| s.clone()).unwrap_or_default();
            panic!("server did not report a listening port (first line {line:?}, exit {status:?}); stderr:\n{err}");
        };
        Server { child, port, dir, _own_dir: own_dir, stdout, stderr }
    }

    fn wait_loaded_if_fastcache(&mut self) {
        if !reference_mode() {
            self.wait_loaded();
        }
    }

    /// Waits until crash recovery is over: the server prints `ready to
    /// accept commands` on stdout (no command is sent, so command counters
    /// stay untouched). Panics if the server exits first (with its stderr).
    pub fn wait_loaded(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.stdout.lock().is_ok_and(|s| s.contains("ready to accept commands")) {
                return;
            }
            if !self.is_running() {
                std::thread::sleep(Duration::from_millis(100));
                panic!("the server exited during crash recovery; stderr:\n{}", self.stderr_text());
            }
            assert!(Instant::now() < deadline, "the server did not finish loading; stderr:\n{}", self.stderr_text());
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Starts a Redis binary with the FastCache variables of `env` mapped
    /// to its options (others are ignored).
    pub fn start_reference(bin: &Path, env: &[(&str, &str)]) -> Server {
        let own_dir = TempDir::new("reference");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("finding a free port: {e}"));
        let mut cmd = Command::new(bin);
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
        cmd.arg("--dir").arg(own_dir.path());
        for (k, v) in env {
            let option = match *k {
                "FASTCACHE_REQUIREPASS" => "requirepass",
                "FASTCACHE_MAXCLIENTS" => "maxclients",
                "FASTCACHE_DATABASES" => "databases",
                "FASTCACHE_TIMEOUT" => "timeout",
                "FASTCACHE_PROTO_MAX_BULK_LEN" => "proto-max-bulk-len",
                "FASTCACHE_CLIENT_QUERY_BUFFER_LIMIT" => "client-query-buffer-limit",
                "FASTCACHE_MAXMEMORY" => "maxmemory",
                "FASTCACHE_MAXMEMORY_POLICY" => "maxmemory-policy",
                _ => continue,
            };
            cmd.arg(format!("--{option}")).arg(v);
        }
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        let child = cmd.spawn().unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()));
        let dir = own_dir.path().to_path_buf();
        let mut server =
            Server { child, port, dir, _own_dir: Some(own_dir), stdout: Arc::default(), stderr: Arc::default() };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(mut s) = TcpStream::connect(server.addr()) {
                let _ = s.set_read_timeout(Some(IO_TIMEOUT));
                let mut buf = [0u8; 1];
                // Any reply (even NOAUTH) means it is serving.
                if s.write_all(b"PING\r\n").is_ok() && s.read(&mut buf).is_ok_and(|n| n == 1) {
                    return server;
                }
            }
            assert!(server.is_running(), "{} exited during start-up", bin.display());
            assert!(Instant::now() < deadline, "{} did not start", bin.display());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `redis://127.0.0.1:PORT/` for the `redis` crate.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A synchronous `redis` connection (RESP2) with a read timeout.
    pub fn client(&self) -> redis::Connection {
        self.client_url(&self.url())
    }

    /// A synchronous `redis` connection that negotiates RESP3.
    pub fn client_resp3(&self) -> redis::Connection {
        self.client_url(&format!("{}?protocol=resp3", self.url()))
    }

    /// A synchronous `redis` connection to `url` (e.g. with a password).
    pub fn client_url(&self, url: &str) -> redis::Connection {
        let client = redis::Client::open(url).unwrap_or_else(|e| panic!("client for {url}: {e}"));
        let con = client.get_connection_with_timeout(IO_TIMEOUT).unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
        con.set_read_timeout(Some(IO_TIMEOUT)).unwrap_or_else(|e| panic!("setting read timeout: {e}"));
        con.set_write_timeout(Some(IO_TIMEOUT)).unwrap_or_else(|e| panic!("setting write timeout: {e}"));
        con
    }

    /// A raw TCP connection with read and write timeouts.
    pub fn raw(&self) -> TcpStream {
        let s = TcpStream::connect_timeout(&self.addr(), IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.addr()));
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap_or_else(|e| panic!("read timeout: {e}"));
        s.set_write_timeout(Some(IO_TIMEOUT)).unwrap_or_else(|e| panic!("write timeout: {e}"));
        let _ = s.set_nodelay(true);
        s
    }

    /// A raw connection wrapped in the RESP helper.
    pub fn resp(&self) -> Resp {
        Resp::new(self.raw())
    }

    /// The address of `/metrics` and `/health`, from the server's
    /// `metrics listening on ADDR` line (start it with
    /// FASTCACHE_METRICS_ADDR=127.0.0.1:0). Panics if the line does not
    /// appear within the start-up timeout.
    pub fn metrics_addr(&self) -> SocketAddr {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let out = self.stdout_text();
            let addr = out.lines().find_map(|l| l.strip_prefix("metrics listening on ")?.trim().parse().ok());
            if let Some(addr) = addr {
                return addr;
            }
            assert!(Instant::now() < deadline, "no `metrics listening on` line; stdout:\n{out}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// What the server printed on stdout so far.
    pub fn stdout_text(&self) -> String {
        self.stdout.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// What the server printed on stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits up to `timeout` for the server to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(st)) => return Some(st),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                _ => return None,
            }
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The child's process id (e.g. to send it a signal with `kill`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM through the `kill` utility and waits for the exit.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        self.wait_exit(timeout)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the tests run against a reference Redis
/// (`FASTCACHE_TEST_REFERENCE`), so FastCache-only checks are skipped.
pub fn reference_mode() -> bool {
    std::env::var_os("FASTCACHE_TEST_REFERENCE").is_some_and(|v| !v.is_empty())
}

/// The port in `fastcache-server X listening on 127.0.0.1:PORT`.
pub fn parse_listening_port(line: &str) -> Option<u16> {
    if !line.contains("listening on") {
        return None;
    }
    line.trim().rsplit(':').next()?.trim().parse().ok()
}

/// Runs the binary to completion with `env` and `args` (nothing inherited
/// from the caller's FASTCACHE_* variables); `None` status if it was still
/// running after `timeout` and had to be killed. Returns (status, stdout, stderr).
pub fn run_to_exit(env: &[(&str, &str)], args: &[&str], timeout: Duration) -> (Option<ExitStatus>, String, String) {
    let mut cmd = scrubbed_command(env);
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawning {BIN}: {e}"));
    let read_all = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut s);
            }
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = read_all(child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let err = read_all(child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    (status, out.join().unwrap_or_default(), err.join().unwrap_or_default())
}

/// Encodes a request as a RESP multibulk.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Encodes a request of text arguments.
pub fn encode_str(args: &[&str]) -> Vec<u8> {
    let v: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    encode(&v)
}

fn line_end(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?.windows(2).position(|w| w == b"\r\n").map(|p| from + p)
}

fn int_at(buf: &[u8], from: usize, to: usize) -> Option<i64> {
    std::str::from_utf8(&buf[from..to]).ok()?.parse().ok()
}

/// If `buf[pos..]` starts with one complete RESP2/RESP3 frame, the index
/// just past it. Panics on a byte that starts no RESP type, since that is
/// a server bug the test should report.
pub fn frame_end(buf: &[u8], pos: usize) -> Option<usize> {
    let t = *buf.get(pos)?;
    let end = line_end(buf, pos + 1)?;
    let next = end + 2;
    match t {
        b'+' | b'-' | b':' | b'_' | b'#' | b',' | b'(' => Some(next),
        b'$' | b'!' | b'=' => {
            let n = int_at(buf, pos + 1, end)?;
            if n < 0 {
                return Some(next);
            }
            let stop = next + n as usize + 2;
            (buf.len() >= stop).then_some(stop)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = int_at(buf, pos + 1, end)?;
            if n < 0 {
                return Some(next);
            }
            let items = if matches!(t, b'%' | b'|') { n * 2 } else { n };
            let mut p = next;
            for _ in 0..items {
                p = frame_end(buf, p)?;
            }
            // An attribute map precedes the reply it describes.
            if t == b'|' {
                return frame_end(buf, p);
            }
            Some(p)
        }
        other => panic!("not a RESP type byte {:?} in {:?}", other as char, String::from_utf8_lossy(&buf[pos..])),
    }
}

/// A raw RESP connection: write bytes, read whole replies, in order.
pub struct Resp {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Resp {
    pub fn new(stream: TcpStream) -> Resp {
        Resp { stream, buf: Vec::new() }
    }

    /// Writes `bytes` as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap_or_else(|e| panic!("write: {e}"));
    }

    /// Reads more input; `Ok(0)` at end of stream.
    fn fill(&mut self) -> std::io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Reads one complete reply and returns its bytes (lossy text).
    pub fn read_reply(&mut self) -> String {
        String::from_utf8_lossy(&self.read_reply_bytes()).into_owned()
    }

    /// Reads one complete reply and returns its raw bytes.
    pub fn read_reply_bytes(&mut self) -> Vec<u8> {
        loop {
            if let Some(end) = frame_end(&self.buf, 0) {
                return self.buf.drain(..end).collect();
            }
            match self.fill() {
                Ok(0) => panic!("connection closed with a partial reply {:?}", String::from_utf8_lossy(&self.buf)),
                Ok(_) => {}
                Err(e) => panic!("reading a reply: {e}; have {:?}", String::from_utf8_lossy(&self.buf)),
            }
        }
    }

    /// Reads one reply if it arrives within `timeout` (e.g. to check that
    /// no Pub/Sub message or unblocking reply is sent); `None` otherwise.
    pub fn try_read_reply(&mut self, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        let result = loop {
            if let Some(end) = frame_end(&self.buf, 0) {
                break Some(String::from_utf8_lossy(&self.buf.drain(..end).collect::<Vec<u8>>()).into_owned());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break None;
            }
            let _ = self.stream.set_read_timeout(Some(left));
            match self.fill() {
                Ok(0) => break None,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    break None
                }
                Err(e) => panic!("reading a reply: {e}"),
            }
        };
        let _ = self.stream.set_read_timeout(Some(IO_TIMEOUT));
        result
    }

    /// Reads `n` replies.
    pub fn read_replies(&mut self, n: usize) -> Vec<String> {
        (0..n).map(|_| self.read_reply()).collect()
    }

    /// Sends a command of text arguments and reads its reply.
    pub fn cmd(&mut self, args: &[&str]) -> String {
        self.send(&encode_str(args));
        self.read_reply()
    }

    /// Sends a command of byte arguments and reads its reply.
    pub fn cmd_bytes(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.send(&encode(args));
        self.read_reply_bytes()
    }

    /// Whether the server closed the connection: waits up to `timeout` for
    /// end of stream (or a reset), failing if a reply arrives instead.
    pub fn is_closed_within(&mut self, timeout: Duration) -> bool {
        let _ = self.stream.set_read_timeout(Some(timeout));
        let closed = loop {
            if !self.buf.is_empty() {
                break false;
            }
            match self.fill() {
                Ok(0) => break true,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    break false
                }
                // Reset by peer and the like: closed.
                Err(_) => break true,
            }
        };
        let _ = self.stream.set_read_timeout(Some(IO_TIMEOUT));
        closed
    }

    /// Bytes received but not yet returned as a reply.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }
}
