//! `cargo xtask bench` — FastCache against Redis with the same
//! `redis-benchmark` runs, side by side. Four parts, each its own table:
//!
//! - `memory`: both servers with persistence off (FastCache
//!   `ENABLE_PERSISTENCE=false`, Redis `--appendonly no --save ''`); SET,
//!   GET, ZADD, LPUSH at `-P 1` and SET/GET at `-P 16`.
//! - `persistence`: SET with the log on — FastCache `WAL_FSYNC=always` vs
//!   Redis `--appendfsync always`, FastCache `WAL_FSYNC=interval` (1 s) vs
//!   Redis `--appendfsync everysec`, at `-P 1` and `-P 16`, and FastCache
//!   `always` vs FastCache with persistence off at `-P 16`.
//! - `restart`: both servers filled with N logged SETs (default 2,000,000),
//!   stopped, and restarted on the same directory; the time from spawn until
//!   PING answers `+PONG` with the data loaded.
//! - `snapshot` (in [`snapshot`]): N keys (default 5,000,000) with 64-byte
//!   values, filled the same way on both; FastCache `SAVE` vs Redis `SAVE`
//!   and the file sizes, restart from the snapshot vs from the RDB, SET p99
//!   with a `BGSAVE` always in progress vs none, and peak memory during a
//!   `BGSAVE` vs before (Redis: parent plus its forked child).
//! - `replication` (in [`replication`]): primary SET throughput with one
//!   replica attached vs none, full-sync time of N keys (default
//!   2,000,000), and replication lag under a SET load, against Redis'
//!   replication.
//!
//! Servers run on this machine on free 127.0.0.1 ports, each with a fresh
//! data directory in a scratch directory removed at the end; the runs
//! alternate between the servers round by round so that drift in the
//! machine's load hits both alike, and each row reports the median of the
//! rounds. Every server is stopped on success and on error (drop guards),
//! and every wait is bounded.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

mod replication;
mod snapshot;

const USAGE: &str = "usage: cargo xtask bench [--requests N] [--rounds R] [--restart-writes N] \
                     [--snapshot-keys N] [--repl-keys N] [--only PARTS | --skip PARTS] \
                     (PARTS: comma-separated memory,persistence,restart,snapshot,replication) \
                     | bench engine [criterion args]";

/// The parts of the benchmark, each printing its own table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// Persistence off on both sides.
    Memory,
    /// SET throughput with the log on (always / interval vs always / everysec).
    Persistence,
    /// Restart time after N logged writes.
    Restart,
    /// SAVE / restart / latency and memory during a snapshot, vs Redis' RDB.
    Snapshot,
    /// Throughput with a replica, full-sync time and lag, vs Redis' replication.
    Replication,
}

impl Part {
    const ALL: [Part; 5] = [Part::Memory, Part::Persistence, Part::Restart, Part::Snapshot, Part::Replication];

    fn name(self) -> &'static str {
        match self {
            Part::Memory => "memory",
            Part::Persistence => "persistence",
            Part::Restart => "restart",
            Part::Snapshot => "snapshot",
            Part::Replication => "replication",
        }
    }

    fn parse(s: &str) -> Result<Part> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "memory" | "off" | "no-persistence" => Part::Memory,
            "persistence" | "fsync" | "wal" | "aof" => Part::Persistence,
            "restart" | "recovery" => Part::Restart,
            "snapshot" | "snapshots" | "save" | "rdb" => Part::Snapshot,
            "replication" | "repl" | "replica" | "replicas" => Part::Replication,
            other => {
                bail!("unknown bench part {other:?}; the parts are memory, persistence, restart, snapshot, replication")
            }
        })
    }

    fn parse_list(s: &str) -> Result<Vec<Part>> {
        s.split(',').filter(|p| !p.trim().is_empty()).map(Part::parse).collect()
    }
}

/// The benchmark's settings (`cargo xtask bench --requests N --rounds R …`).
struct Options {
    requests: u64,
    rounds: usize,
    /// SETs logged before the restart measurement.
    restart_writes: u64,
    /// Keys filled before the snapshot measurements.
    snapshot_keys: u64,
    /// Keys of the replication part's full sync.
    repl_keys: u64,
    /// The parts to run, in order.
    parts: Vec<Part>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let mut o = Options {
            requests: 200_000,
            rounds: 3,
            restart_writes: 2_000_000,
            snapshot_keys: 5_000_000,
            repl_keys: 2_000_000,
            parts: Vec::new(),
        };
        let (mut only, mut skip): (Option<Vec<Part>>, Vec<Part>) = (None, Vec::new());
        let mut it = args.iter();
        while let Some(a) = it.next() {
            // `--flag value` or `--flag=value`.
            let (flag, inline) = match a.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
                _ => (a.as_str(), None),
            };
            let mut value = |name: &str| -> Result<String> {
                match &inline {
                    Some(v) => Ok(v.clone()),
                    None => it.next().cloned().with_context(|| format!("{name} needs a value; {USAGE}")),
                }
            };
            let number = |name: &str, v: String| -> Result<u64> {
                v.parse().with_context(|| format!("{name} {v:?}: expected a positive integer"))
            };
            match flag {
                "server" => {}
                "--requests" | "-n" => o.requests = number("--requests", value("--requests")?)?.max(1000),
                "--rounds" => o.rounds = number("--rounds", value("--rounds")?)?.clamp(1, 20) as usize,
                "--restart-writes" => {
                    o.restart_writes = number("--restart-writes", value("--restart-writes")?)?.max(1000);
                }
                "--snapshot-keys" => {
                    o.snapshot_keys = number("--snapshot-keys", value("--snapshot-keys")?)?.max(1000);
                }
                "--repl-keys" => o.repl_keys = number("--repl-keys", value("--repl-keys")?)?.max(1000),
                "--only" => only.get_or_insert_with(Vec::new).extend(Part::parse_list(&value("--only")?)?),
                "--skip" => skip.extend(Part::parse_list(&value("--skip")?)?),
                other => bail!("unknown bench option {other:?}; {USAGE}"),
            }
        }
        o.parts = Part::ALL
            .into_iter()
            .filter(|p| only.as_ref().is_none_or(|only| only.contains(p)) && !skip.contains(p))
            .collect();
        if o.parts.is_empty() {
            bail!("--only/--skip leave nothing to run; {USAGE}");
        }
        Ok(o)
    }
}

/// One comparison row of the `memory` table: a label and the
/// redis-benchmark arguments.
struct Row {
    label: &'static str,
    /// The test name in redis-benchmark's CSV.
    test: &'static str,
    pipeline: u32,
    /// Requests as a multiple of `--requests` (pipelined runs are faster).
    scale: u64,
}

const ROWS: &[Row] = &[
    Row { label: "SET", test: "SET", pipeline: 1, scale: 1 },
    Row { label: "GET", test: "GET", pipeline: 1, scale: 1 },
    Row { label: "SET -P 16", test: "SET", pipeline: 16, scale: 5 },
    Row { label: "GET -P 16", test: "GET", pipeline: 16, scale: 5 },
    Row { label: "ZADD", test: "ZADD", pipeline: 1, scale: 1 },
    Row { label: "LPUSH", test: "LPUSH", pipeline: 1, scale: 1 },
];

/// The servers of the `persistence` table, indexes into [`PersistRow`].
const P_FC_ALWAYS: usize = 0;
const P_REDIS_ALWAYS: usize = 1;
const P_FC_INTERVAL: usize = 2;
const P_REDIS_EVERYSEC: usize = 3;
const P_FC_OFF: usize = 4;
const P_FC_BACKUPS: usize = 5;

/// One row of the `persistence` table: SET on server `a` vs server `b`.
struct PersistRow {
    label: &'static str,
    a: usize,
    b: usize,
    pipeline: u32,
    /// Requests as a multiple of `--requests`.
    scale: u64,
    /// The ratio a / b the issue asks for (at least).
    target: f64,
}

const PERSIST_ROWS: &[PersistRow] = &[
    PersistRow {
        label: "always / Redis always",
        a: P_FC_ALWAYS,
        b: P_REDIS_ALWAYS,
        pipeline: 1,
        scale: 1,
        target: 1.5,
    },
    PersistRow {
        label: "always / Redis always",
        a: P_FC_ALWAYS,
        b: P_REDIS_ALWAYS,
        pipeline: 16,
        scale: 5,
        target: 1.0,
    },
    PersistRow {
        label: "interval / Redis everysec",
        a: P_FC_INTERVAL,
        b: P_REDIS_EVERYSEC,
        pipeline: 1,
        scale: 1,
        target: 1.0,
    },
    PersistRow {
        label: "interval / Redis everysec",
        a: P_FC_INTERVAL,
        b: P_REDIS_EVERYSEC,
        pipeline: 16,
        scale: 5,
        target: 1.0,
    },
    PersistRow { label: "always / FastCache off", a: P_FC_ALWAYS, b: P_FC_OFF, pipeline: 16, scale: 5, target: 0.85 },
    // Change tracking for incremental backups must not show in write
    // throughput (issue 6): within noise of the same server without it.
    PersistRow {
        label: "interval+backups / interval",
        a: P_FC_BACKUPS,
        b: P_FC_INTERVAL,
        pipeline: 1,
        scale: 1,
        target: 0.95,
    },
    PersistRow {
        label: "interval+backups / interval",
        a: P_FC_BACKUPS,
        b: P_FC_INTERVAL,
        pipeline: 16,
        scale: 5,
        target: 0.95,
    },
];

/// Restart must take at most this fraction of Redis' time.
const RESTART_TARGET: f64 = 0.5;

const CLIENTS: u32 = 50;
const KEYSPACE: u64 = 100_000;
const VALUE_SIZE: u32 = 64;
/// Pipeline depth of the restart part's fill.
const FILL_PIPELINE: u32 = 64;
/// Longest a single redis-benchmark run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest an empty server may take to answer PING.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest a server may take to exit once asked to.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest a fill of `writes` SETs may take (at least 20k SET/s).
fn fill_timeout(writes: u64) -> Duration {
    RUN_TIMEOUT + Duration::from_secs(writes / 20_000)
}

/// Longest a restart that loads `writes` logged SETs may take (at least 10k
/// records/s).
fn restart_timeout(writes: u64) -> Duration {
    Duration::from_secs(120 + writes / 10_000)
}

/// One redis-benchmark result.
#[derive(Debug, Clone, Copy)]
struct Sample {
    rps: f64,
    avg_ms: f64,
    p50_ms: f64,
    p99_ms: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    FastCache,
    Redis,
}

/// Which log the server keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Persist {
    /// None (FastCache `ENABLE_PERSISTENCE=false`, Redis `--appendonly no`).
    Off,
    /// `WAL_FSYNC=always` / `--appendfsync always`.
    Always,
    /// `WAL_FSYNC=interval` with `WAL_FLUSH_INTERVAL=1s` / `--appendfsync everysec`.
    Interval,
    /// FastCache only: `Interval` plus incremental backups
    /// (`ENABLE_INCREMENTAL_BACKUP=true`, default 1m interval), so every
    /// write pays for per-key change tracking.
    IntervalBackups,
    /// FastCache only: `Interval` with `ENABLE_SNAPSHOTS=false`, so a
    /// restart replays the whole WAL (a clean stop would otherwise write a
    /// snapshot and the restart would load that instead).
    IntervalWalOnly,
}

/// How to start one server: its program, environment and arguments, data
/// directory and log file. Starting it again reuses the data directory.
struct Spec {
    name: &'static str,
    kind: Kind,
    persist: Persist,
    program: PathBuf,
    env: Vec<(&'static str, String)>,
    /// Arguments after `--port N` (Redis; FastCache takes none).
    args: Vec<String>,
    data: PathBuf,
    /// stdout/stderr of every start, appended.
    log: PathBuf,
}

impl Spec {
    fn fastcache(bin: &Path, name: &'static str, persist: Persist, dir: &Path, slug: &str) -> Spec {
        let mut env = vec![("FASTCACHE_PORT", "0".to_string()), ("FASTCACHE_BIND", "127.0.0.1".to_string())];
        match persist {
            Persist::Off => env.push(("ENABLE_PERSISTENCE", "false".into())),
            Persist::Always => {
                env.extend([("ENABLE_PERSISTENCE", "true".into()), ("WAL_FSYNC", "always".into())]);
            }
            Persist::Interval => env.extend([
                ("ENABLE_PERSISTENCE", "true".into()),
                ("WAL_FSYNC", "interval".into()),
                ("WAL_FLUSH_INTERVAL", "1s".into()),
            ]),
            Persist::IntervalWalOnly => env.extend([
                ("ENABLE_PERSISTENCE", "true".into()),
                ("WAL_FSYNC", "interval".into()),
                ("WAL_FLUSH_INTERVAL", "1s".into()),
                ("ENABLE_SNAPSHOTS", "false".into()),
            ]),
            Persist::IntervalBackups => env.extend([
                ("ENABLE_PERSISTENCE", "true".into()),
                ("WAL_FSYNC", "interval".into()),
                ("WAL_FLUSH_INTERVAL", "1s".into()),
                ("ENABLE_INCREMENTAL_BACKUP", "true".into()),
            ]),
        }
        let data = dir.join(format!("{slug}-data"));
        env.push(("FASTCACHE_METRICS_ADDR", "off".into()));
        env.push(("PERSISTENCE_DIR", data.display().to_string()));
        Spec {
            name,
            kind: Kind::FastCache,
            persist,
            program: bin.to_path_buf(),
            env,
            args: Vec::new(),
            data,
            log: dir.join(format!("{slug}.log")),
        }
    }

    fn redis(name: &'static str, persist: Persist, dir: &Path, slug: &str) -> Spec {
        let data = dir.join(format!("{slug}-data"));
        let mut args: Vec<String> = ["--bind", "127.0.0.1", "--save", ""].map(String::from).to_vec();
        match persist {
            Persist::Off => args.extend(["--appendonly", "no"].map(String::from)),
            Persist::Always | Persist::Interval | Persist::IntervalBackups | Persist::IntervalWalOnly => args.extend(
                [
                    "--appendonly",
                    "yes",
                    "--appendfsync",
                    if persist == Persist::Always { "always" } else { "everysec" },
                    "--aof-use-rdb-preamble",
                    "no",
                    // No background rewrite (a fork) in the middle of a timed
                    // run, and the restart part loads the log as written.
                    "--auto-aof-rewrite-percentage",
                    "0",
                ]
                .map(String::from),
            ),
        }
        args.extend(["--daemonize", "no", "--dir"].map(String::from));
        args.push(data.display().to_string());
        Spec {
            name,
            kind: Kind::Redis,
            persist,
            program: PathBuf::from("redis-server"),
            env: Vec::new(),
            args,
            data,
            log: dir.join(format!("{slug}.log")),
        }
    }

    /// The shell command that starts this server (on `port`, for Redis).
    fn command_line(&self, port: u16) -> String {
        let mut words: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={}", shell_quote(v))).collect();
        words.push(shell_quote(&self.program.display().to_string()));
        if self.kind == Kind::Redis {
            words.extend(["--port".to_string(), port.to_string()]);
        }
        words.extend(self.args.iter().map(|a| shell_quote(a)));
        words.join(" ")
    }

    /// Starts the server and waits (at most `timeout`) until it answers
    /// PING with `+PONG`; returns it and the time from spawn to that reply.
    fn start(&self, timeout: Duration) -> Result<(Running, Duration)> {
        std::fs::create_dir_all(&self.data).with_context(|| format!("creating {}", self.data.display()))?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .with_context(|| format!("opening {}", self.log.display()))?;
        let port = match self.kind {
            Kind::FastCache => 0,
            Kind::Redis => free_port()?,
        };
        let mut cmd = Command::new(&self.program);
        cmd.envs(self.env.iter().map(|(k, v)| (k, v))).stdin(Stdio::null());
        match self.kind {
            Kind::FastCache => cmd.stdout(Stdio::piped()).stderr(log),
            Kind::Redis => {
                cmd.arg("--port").arg(port.to_string()).args(&self.args);
                cmd.stdout(log.try_clone().context("sharing the Redis log")?).stderr(log)
            }
        };
        let started = Instant::now();
        let deadline = started + timeout;
        let child = cmd.spawn().with_context(|| format!("starting {}", self.command_line(port)))?;
        let mut server = Running { name: self.name, kind: self.kind, child, port, log: self.log.clone() };
        if self.kind == Kind::FastCache {
            // The first stdout line names the port; FastCache prints it only
            // after replaying its log. Keep draining the rest.
            let (tx, rx) = mpsc::channel();
            if let Some(out) = server.child.stdout.take() {
                std::thread::spawn(move || {
                    let mut tx = Some(tx);
                    for line in BufReader::new(out).lines() {
                        let Ok(line) = line else { break };
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(line);
                        }
                    }
                });
            }
            let line = match rx.recv_timeout(timeout) {
                Ok(line) => line,
                Err(mpsc::RecvTimeoutError::Timeout) => bail!(
                    "{} printed no listening line within {timeout:?} (still replaying its log?):\n{}",
                    self.name,
                    log_tail(&self.log)
                ),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = server.child.wait_timeout(Duration::from_secs(2));
                    bail!("{} exited during start-up:\n{}", self.name, log_tail(&self.log));
                }
            };
            server.port = line
                .contains("listening on")
                .then(|| line.rsplit(':').next().and_then(|p| p.trim().parse::<u16>().ok()))
                .flatten()
                .with_context(|| format!("{} did not report its port (said {line:?})", self.name))?;
        }
        wait_pong(&mut server, deadline, timeout)?;
        Ok((server, started.elapsed()))
    }

    /// Checks through INFO that the server runs with the log this spec
    /// asks for (a wrong variable name would silently bench something else).
    fn verify(&self, port: u16) -> Result<()> {
        let info = info(port, "persistence")?;
        let (field, want) = match (self.kind, self.persist) {
            (Kind::FastCache, Persist::Off) => ("fastcache_persistence", "disabled"),
            (Kind::FastCache, Persist::Always) => ("wal_fsync", "always"),
            (Kind::FastCache, Persist::Interval) => ("wal_fsync", "interval"),
            (Kind::FastCache, Persist::IntervalBackups) => ("incremental_backups_enabled", "1"),
            (Kind::FastCache, Persist::IntervalWalOnly) => ("snapshots_enabled", "0"),
            (Kind::Redis, Persist::Off) => ("aof_enabled", "0"),
            (Kind::Redis, _) => ("aof_enabled", "1"),
        };
        let got = info_field(&info, field);
        if got != Some(want) {
            bail!("{} reports {field}:{} in INFO persistence, expected {want}", self.name, got.unwrap_or("(missing)"));
        }
        Ok(())
    }
}

/// `s` quoted for a POSIX shell when it needs to be.
fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "_./:=,+-".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The last lines of a server's log, for error messages.
fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// `Child::wait` with a bound.
trait WaitTimeout {
    fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<std::process::ExitStatus>>;
}

impl WaitTimeout for Child {
    fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<std::process::ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.try_wait()? {
                return Ok(Some(st));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// A server process we started; stopped (FastCache: SIGTERM; Redis:
/// `SHUTDOWN NOSAVE`, which keeps the AOF and writes no RDB; then kill) on
/// drop, so an error anywhere in the benchmark still cleans up.
struct Running {
    name: &'static str,
    kind: Kind,
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Running {
    /// Stops the server the graceful way and checks that it exited cleanly.
    fn stop(&mut self) -> Result<()> {
        if let Some(st) = self.child.try_wait()? {
            bail!("{} had already exited ({st}):\n{}", self.name, log_tail(&self.log));
        }
        let asked = match self.kind {
            Kind::FastCache => Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success()),
            Kind::Redis => TcpStream::connect(("127.0.0.1", self.port)).is_ok_and(|mut s| {
                let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
                s.write_all(b"SHUTDOWN NOSAVE\r\n").is_ok()
            }),
        };
        let waited = if asked { self.child.wait_timeout(STOP_TIMEOUT)? } else { None };
        match waited {
            Some(st) if st.success() => Ok(()),
            Some(st) => bail!("{} exited with {st} when stopped:\n{}", self.name, log_tail(&self.log)),
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                if asked {
                    bail!("{} did not stop within {STOP_TIMEOUT:?}; killed it", self.name)
                }
                bail!("could not ask {} to stop; killed it", self.name)
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        if let Err(e) = self.stop() {
            eprintln!("{e:#}");
        }
    }
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tool_works(tool: &str) -> bool {
    Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Installs Debian's redis-server and redis-tools when they are missing.
fn ensure_redis_tools() -> Result<()> {
    if tool_works("redis-server") && tool_works("redis-benchmark") {
        return Ok(());
    }
    eprintln!("redis-server or redis-benchmark is missing; installing Debian's redis-server and redis-tools");
    let run = |args: &[&str]| -> Result<()> {
        eprintln!("+ apt-get {}", args.join(" "));
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            // Keep the package's init script from starting a system-wide redis.
            .env("RUNLEVEL", "1")
            .status()
            .context("running apt-get (the bench needs redis-server and redis-benchmark)")?;
        if !status.success() {
            bail!("apt-get {} failed ({status}); install redis-server and redis-tools by hand", args.join(" "));
        }
        Ok(())
    };
    run(&["update", "-qq"])?;
    run(&["install", "-y", "-qq", "redis-server", "redis-tools"])?;
    if !(tool_works("redis-server") && tool_works("redis-benchmark")) {
        bail!("redis-server or redis-benchmark still not runnable after apt-get install");
    }
    Ok(())
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// Polls PING until the server answers `+PONG` (Redis answers `-LOADING`
/// while it loads its AOF), or fails at `deadline`.
fn wait_pong(server: &mut Running, deadline: Instant, timeout: Duration) -> Result<()> {
    loop {
        if let Some(st) = server.child.try_wait()? {
            bail!("{} exited during start-up ({st}):\n{}", server.name, log_tail(&server.log));
        }
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", server.port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 7];
            if s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n" {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("{} on port {} did not answer PING with +PONG within {timeout:?}", server.name, server.port);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A RESP reply, as far as the bench needs one.
#[derive(Debug, PartialEq)]
enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
}

/// Sends one command and reads its reply (no arrays).
fn call(port: u16, argv: &[&str]) -> Result<Reply> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).with_context(|| format!("connecting to port {port}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!("*{}\r\n", argv.len());
    for a in argv {
        req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s.write_all(req.as_bytes())?;
    read_reply(&mut BufReader::new(s)).with_context(|| format!("{} on port {port}", argv.join(" ")))
}

fn read_reply(r: &mut impl BufRead) -> Result<Reply> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let line = line.strip_suffix("\r\n").with_context(|| format!("truncated reply {line:?}"))?;
    let (kind, rest) = line.split_at_checked(1).context("empty reply")?;
    Ok(match kind {
        "+" => Reply::Status(rest.into()),
        "-" => Reply::Error(rest.into()),
        ":" => Reply::Int(rest.parse().with_context(|| format!("bad integer reply {line:?}"))?),
        "$" => {
            let len: i64 = rest.parse().with_context(|| format!("bad bulk length {line:?}"))?;
            if len < 0 {
                Reply::Bulk(None)
            } else {
                let mut buf = vec![0; len as usize + 2];
                r.read_exact(&mut buf)?;
                buf.truncate(len as usize);
                Reply::Bulk(Some(buf))
            }
        }
        _ => bail!("unexpected reply {line:?}"),
    })
}

fn dbsize(port: u16) -> Result<u64> {
    match call(port, &["DBSIZE"])? {
        Reply::Int(n) if n >= 0 => Ok(n as u64),
        other => bail!("DBSIZE answered {other:?}"),
    }
}

fn info(port: u16, section: &str) -> Result<String> {
    match call(port, &["INFO", section])? {
        Reply::Bulk(Some(b)) => Ok(String::from_utf8_lossy(&b).into_owned()),
        other => bail!("INFO {section} answered {other:?}"),
    }
}

/// The value of `field` in INFO text.
fn info_field<'a>(info: &'a str, field: &str) -> Option<&'a str> {
    info.lines().find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':'))).map(str::trim)
}

/// The version number `tool --version` prints: `redis-server` says
/// `Redis server v=7.0.15 sha=…`, `redis-benchmark` says `redis-benchmark 7.0.15`.
fn version_of(tool: &str) -> String {
    let text = Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("v="))
        .or_else(|| text.split_whitespace().nth(1))
        .unwrap_or("(unknown version)")
        .to_string()
}

/// Parses redis-benchmark's `--csv` output and returns the row of `test`.
/// Columns are found by header name: 7.0 prints
/// `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"`.
fn parse_csv(text: &str, test: &str) -> Result<Sample> {
    let split =
        |line: &str| -> Vec<String> { line.split(',').map(|f| f.trim().trim_matches('"').to_string()).collect() };
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let header = split(lines.next().context("redis-benchmark printed nothing")?);
    let col =
        |name: &str| header.iter().position(|h| h == name).with_context(|| format!("no {name:?} column in {header:?}"));
    let (c_test, c_rps, c_avg, c_p50, c_p99) =
        (col("test")?, col("rps")?, col("avg_latency_ms")?, col("p50_latency_ms")?, col("p99_latency_ms")?);
    for line in lines {
        let f = split(line);
        if f.get(c_test).map(String::as_str) != Some(test) {
            continue;
        }
        let num = |i: usize| -> Result<f64> {
            f.get(i).and_then(|v| v.parse().ok()).with_context(|| format!("bad number in column {i} of {line:?}"))
        };
        return Ok(Sample { rps: num(c_rps)?, avg_ms: num(c_avg)?, p50_ms: num(c_p50)?, p99_ms: num(c_p99)? });
    }
    bail!("no {test:?} row in redis-benchmark's output:\n{text}")
}

/// One redis-benchmark run's parameters.
struct Bench {
    /// The test name in redis-benchmark's CSV (`-t` takes it in lower case).
    test: &'static str,
    pipeline: u32,
    requests: u64,
    keyspace: u64,
}

impl Bench {
    /// The arguments against `port` (a number, or a placeholder to print).
    fn args(&self, port: &str) -> Vec<String> {
        [
            "-h",
            "127.0.0.1",
            "-p",
            port,
            "-t",
            &self.test.to_ascii_lowercase(),
            "-c",
            &CLIENTS.to_string(),
            "-P",
            &self.pipeline.to_string(),
            "-n",
            &self.requests.to_string(),
            "-r",
            &self.keyspace.to_string(),
            "-d",
            &VALUE_SIZE.to_string(),
            "--csv",
        ]
        .map(String::from)
        .to_vec()
    }

    fn command_line(&self, port: &str) -> String {
        format!("redis-benchmark {}", self.args(port).join(" "))
    }
}

/// Runs one redis-benchmark against `server`, for at most `timeout`;
/// fails as soon as the server exits (redis-benchmark would keep trying to
/// reconnect until the timeout).
fn run_benchmark(server: &mut Running, bench: &Bench, timeout: Duration) -> Result<Sample> {
    if let Some(st) = server.child.try_wait()? {
        bail!("{} is not running ({st}):\n{}", server.name, log_tail(&server.log));
    }
    let args = bench.args(&server.port.to_string());
    let mut child = Command::new("redis-benchmark")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting redis-benchmark")?;
    let what = format!("redis-benchmark {}", args.join(" "));
    let (status, out, err) = wait_client(&mut child, server, Instant::now() + timeout, &what)?;
    if !status.success() {
        bail!("redis-benchmark {} failed ({status}):\n{out}{err}", args.join(" "));
    }
    if err.contains("Error") || out.contains("Error") {
        bail!("redis-benchmark {} reported errors:\n{out}{err}", args.join(" "));
    }
    parse_csv(&out, bench.test)
}

/// Waits for a client tool (`what`, for messages) run against `server`
/// until it exits or `deadline`, collecting its stdout and stderr; fails as
/// soon as the server exits (the tool would keep retrying); the tool is
/// then killed.
fn wait_client(
    child: &mut Child,
    server: &mut Running,
    deadline: Instant,
    what: &str,
) -> Result<(std::process::ExitStatus, String, String)> {
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let _ = r.read_to_string(&mut s);
            }
            s
        })
    };
    let out = drain(child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let err = drain(child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>));
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        let died = server.child.try_wait()?;
        if died.is_some() || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            if let Some(st) = died {
                bail!("{} exited during {what} ({st}):\n{}", server.name, log_tail(&server.log));
            }
            bail!("{what} did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok((status, out.join().unwrap_or_default(), err.join().unwrap_or_default()))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn median_sample(samples: &[Sample]) -> Sample {
    let m = |f: fn(&Sample) -> f64| median(samples.iter().map(f).collect());
    Sample { rps: m(|s| s.rps), avg_ms: m(|s| s.avg_ms), p50_ms: m(|s| s.p50_ms), p99_ms: m(|s| s.p99_ms) }
}

/// `12345678.9` → `12,345,679`.
fn thousands(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `met` or `MISSED` for a ratio against its target.
fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "MISSED"
    }
}

fn progress(round: usize, rounds: usize, label: &str, name: &str, s: &Sample) {
    eprintln!(
        "round {}/{} {:<34} {:<18} {:>12} ops/s  p50 {:.3} ms  p99 {:.3} ms",
        round + 1,
        rounds,
        label,
        name,
        thousands(s.rps),
        s.p50_ms,
        s.p99_ms
    );
}

/// Builds the release server once, then runs the selected parts, each
/// printing its table.
pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let opts = Options::parse(args)?;
    crate::cargo(&["build", "--release", "-p", "fastcache-server"])?;
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let bin = target.join("release").join("fastcache-server");
    if !bin.exists() {
        bail!("{} was not built", bin.display());
    }
    ensure_redis_tools()?;

    let scratch = Scratch(std::env::temp_dir().join(format!("fastcache-bench-{}", std::process::id())));
    std::fs::create_dir_all(&scratch.0).with_context(|| format!("creating {}", scratch.0.display()))?;

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "FastCache {} vs Redis {} — redis-benchmark {}; {cores} cores shared by both servers and redis-benchmark",
        env!("CARGO_PKG_VERSION"),
        version_of("redis-server"),
        version_of("redis-benchmark"),
    );
    println!(
        "parts: {} (choose with --only/--skip memory,persistence,restart,snapshot,replication); scratch directory {}",
        opts.parts.iter().map(|p| p.name()).collect::<Vec<_>>().join(", "),
        scratch.0.display()
    );
    let started = Instant::now();
    for part in &opts.parts {
        let dir = scratch.0.join(part.name());
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        println!();
        match part {
            Part::Memory => memory_part(&bin, &dir, &opts)?,
            Part::Persistence => persistence_part(&bin, &dir, &opts)?,
            Part::Restart => restart_part(&bin, &dir, &opts)?,
            Part::Snapshot => snapshot::snapshot_part(&bin, &dir, &opts)?,
            Part::Replication => replication::replication_part(&bin, &dir, &opts)?,
        }
        // Each part's logs and data go as soon as it is done.
        let _ = std::fs::remove_dir_all(&dir);
    }
    println!();
    println!("(benchmark time {:.0} s)", started.elapsed().as_secs_f64());
    Ok(())
}

/// Both servers with persistence off, every row of [`ROWS`].
fn memory_part(bin: &Path, dir: &Path, opts: &Options) -> Result<()> {
    let specs = [
        Spec::fastcache(bin, "FastCache", Persist::Off, dir, "fastcache"),
        Spec::redis("Redis", Persist::Off, dir, "redis"),
    ];
    let mut servers = Vec::new();
    for spec in &specs {
        let (server, _) = spec.start(START_TIMEOUT)?;
        spec.verify(server.port)?;
        servers.push(server);
    }
    println!("memory: persistence off on both sides");
    for (spec, server) in specs.iter().zip(&servers) {
        println!("  {:<9} {}", spec.name, spec.command_line(server.port));
    }
    println!(
        "{CLIENTS} clients, {} requests per run ({}× for -P 16), -r {KEYSPACE}, -d {VALUE_SIZE}, persistence off; median of {} round(s), servers alternating",
        opts.requests,
        ROWS.iter().map(|r| r.scale).max().unwrap_or(1),
        opts.rounds
    );

    let started = Instant::now();
    let mut results: Vec<[Vec<Sample>; 2]> = ROWS.iter().map(|_| [Vec::new(), Vec::new()]).collect();
    for round in 0..opts.rounds {
        for (r, row) in ROWS.iter().enumerate() {
            let bench = Bench {
                test: row.test,
                pipeline: row.pipeline,
                requests: opts.requests * row.scale,
                keyspace: KEYSPACE,
            };
            // Alternate who goes first so neither always runs on a warmer machine.
            let order: [usize; 2] = if (round + r) % 2 == 0 { [0, 1] } else { [1, 0] };
            for &s in &order {
                let sample = run_benchmark(&mut servers[s], &bench, RUN_TIMEOUT)
                    .with_context(|| format!("{} on {}", row.label, servers[s].name))?;
                progress(round, opts.rounds, row.label, servers[s].name, &sample);
                results[r][s].push(sample);
            }
        }
    }
    for s in &mut servers {
        s.stop()?;
    }

    println!();
    println!(
        "{:<10} {:>14} {:>14} {:>7}   {:>17}   {:>17}",
        "test", "FastCache op/s", "Redis op/s", "ratio", "p50 ms FC / Redis", "p99 ms FC / Redis"
    );
    for (row, [fc, rd]) in ROWS.iter().zip(&results) {
        let (fc, rd) = (median_sample(fc), median_sample(rd));
        println!(
            "{:<10} {:>14} {:>14} {:>6.2}x   {:>7.3} / {:<7.3}   {:>7.3} / {:<7.3}",
            row.label,
            thousands(fc.rps),
            thousands(rd.rps),
            fc.rps / rd.rps,
            fc.p50_ms,
            rd.p50_ms,
            fc.p99_ms,
            rd.p99_ms
        );
    }
    println!("(ratio = FastCache ops/s ÷ Redis ops/s; {:.0} s)", started.elapsed().as_secs_f64());
    Ok(())
}

/// SET with the log on, every row of [`PERSIST_ROWS`].
fn persistence_part(bin: &Path, dir: &Path, opts: &Options) -> Result<()> {
    // In the order of the P_* indexes.
    let specs = [
        Spec::fastcache(bin, "FastCache always", Persist::Always, dir, "fastcache-always"),
        Spec::redis("Redis always", Persist::Always, dir, "redis-always"),
        Spec::fastcache(bin, "FastCache interval", Persist::Interval, dir, "fastcache-interval"),
        Spec::redis("Redis everysec", Persist::Interval, dir, "redis-everysec"),
        Spec::fastcache(bin, "FastCache off", Persist::Off, dir, "fastcache-off"),
        Spec::fastcache(bin, "FastCache backups", Persist::IntervalBackups, dir, "fastcache-backups"),
    ];
    let mut servers = Vec::new();
    for spec in &specs {
        let (server, _) = spec.start(START_TIMEOUT)?;
        spec.verify(server.port)?;
        servers.push(server);
    }
    println!("persistence: SET with the log on; each server has its own fresh data directory");
    for (spec, server) in specs.iter().zip(&servers) {
        println!("  {:<18} {}", spec.name, spec.command_line(server.port));
    }
    let scale = PERSIST_ROWS.iter().map(|r| r.scale).max().unwrap_or(1);
    println!(
        "  load: {} (-P 16 runs: -n {})",
        Bench { test: "SET", pipeline: 1, requests: opts.requests, keyspace: KEYSPACE }.command_line("PORT"),
        opts.requests * scale
    );
    println!("  (PORT is each server's; median of {} round(s), servers alternating)", opts.rounds);

    let started = Instant::now();
    let mut results: Vec<[Vec<Sample>; 2]> = PERSIST_ROWS.iter().map(|_| [Vec::new(), Vec::new()]).collect();
    for round in 0..opts.rounds {
        for (r, row) in PERSIST_ROWS.iter().enumerate() {
            let bench =
                Bench { test: "SET", pipeline: row.pipeline, requests: opts.requests * row.scale, keyspace: KEYSPACE };
            let label = format!("{} -P {}", row.label, row.pipeline);
            let order = if (round + r) % 2 == 0 { [row.a, row.b] } else { [row.b, row.a] };
            for s in order {
                let sample = run_benchmark(&mut servers[s], &bench, RUN_TIMEOUT)
                    .with_context(|| format!("SET -P {} on {}", row.pipeline, servers[s].name))?;
                progress(round, opts.rounds, &label, servers[s].name, &sample);
                results[r][usize::from(s == row.b)].push(sample);
            }
        }
    }
    for s in &mut servers {
        s.stop()?;
    }

    println!();
    println!(
        "{:<26} {:>3} {:>13} {:>13} {:>7} {:>7} {:>6}   {:>17}   {:>17}",
        "SET: FastCache / baseline",
        "-P",
        "FC op/s",
        "base op/s",
        "ratio",
        "target",
        "",
        "p50 ms FC / base",
        "p99 ms FC / base"
    );
    for (row, [a, b]) in PERSIST_ROWS.iter().zip(&results) {
        let (a, b) = (median_sample(a), median_sample(b));
        let ratio = a.rps / b.rps;
        println!(
            "{:<26} {:>3} {:>13} {:>13} {:>6.2}x {:>6}x {:>6}   {:>7.3} / {:<7.3}   {:>7.3} / {:<7.3}",
            row.label,
            row.pipeline,
            thousands(a.rps),
            thousands(b.rps),
            ratio,
            format!("≥{:.2}", row.target),
            verdict(ratio >= row.target),
            a.p50_ms,
            b.p50_ms,
            a.p99_ms,
            b.p99_ms
        );
    }
    println!(
        "(ratio = FastCache ops/s ÷ baseline ops/s; always = WAL_FSYNC=always vs --appendfsync always, \
         interval = WAL_FSYNC=interval WAL_FLUSH_INTERVAL=1s vs --appendfsync everysec, \
         FastCache off = ENABLE_PERSISTENCE=false, interval+backups = interval with \
         ENABLE_INCREMENTAL_BACKUP=true (per-key change tracking, a backup every minute); {:.0} s)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// What one restart measured.
struct Restart {
    /// Spawn to `+PONG`.
    wall: Duration,
    /// The server's own account of loading its log, from its log file.
    load: Option<Duration>,
}

/// Fills both servers with `--restart-writes` logged SETs, stops them, and
/// times restarts on the same directories.
fn restart_part(bin: &Path, dir: &Path, opts: &Options) -> Result<()> {
    let writes = opts.restart_writes;
    let specs = [
        // Snapshots off: the restart replays the whole WAL, like Redis its
        // AOF (with snapshots on, the clean stop writes a snapshot and the
        // restart loads it — see the snapshot part for that case).
        Spec::fastcache(bin, "FastCache interval", Persist::IntervalWalOnly, dir, "fastcache"),
        Spec::redis("Redis everysec", Persist::Interval, dir, "redis"),
    ];
    let fill = Bench { test: "SET", pipeline: FILL_PIPELINE, requests: writes, keyspace: writes };
    let timeout = restart_timeout(writes);

    // Fill both (an empty start's time is the floor under every restart).
    let mut empty_start = Vec::new();
    let mut filled = Vec::new();
    let mut log_bytes = Vec::new();
    let mut fill_rps = Vec::new();
    println!("restart: {} logged SETs, then stop and restart on the same directory", thousands(writes as f64));
    for spec in &specs {
        let (mut server, t) = spec.start(START_TIMEOUT)?;
        spec.verify(server.port)?;
        println!("  {:<18} {}", spec.name, spec.command_line(server.port));
        println!("  {:<18} {}", "  fill", fill.command_line(&server.port.to_string()));
        let sample = run_benchmark(&mut server, &fill, fill_timeout(writes))
            .with_context(|| format!("filling {} with {writes} SETs", spec.name))?;
        eprintln!("filled {} at {} SET/s", spec.name, thousands(sample.rps));
        let keys = dbsize(server.port)?;
        let info = info(server.port, "persistence")?;
        let bytes = match spec.kind {
            Kind::FastCache => info_field(&info, "wal_bytes_appended"),
            Kind::Redis => info_field(&info, "aof_current_size"),
        }
        .and_then(|v| v.parse::<u64>().ok());
        server.stop().with_context(|| format!("stopping {} after the fill", spec.name))?;
        empty_start.push(t);
        filled.push(keys);
        log_bytes.push(bytes);
        fill_rps.push(sample.rps);
    }
    println!(
        "  stop: FastCache SIGTERM, Redis SHUTDOWN NOSAVE (the AOF stays, no RDB); restart: the same command \
         (Redis on a fresh free --port); timed from spawn until PING answers +PONG (bound {timeout:?})"
    );
    // redis-benchmark seeds its key generator from the clock, so the two
    // key sets differ; their sizes agree within a few standard deviations
    // (about 0.3·√N for N draws over N keys).
    let tolerance = ((writes as f64).sqrt() * 3.0).max(10.0) as u64;
    let diff = filled[0].abs_diff(filled[1]);
    if diff > tolerance {
        bail!(
            "after the fill FastCache has {} keys and Redis {}: more apart than redis-benchmark's randomness explains (±{tolerance})",
            filled[0],
            filled[1]
        );
    }

    let mut restarts: [Vec<Restart>; 2] = [Vec::new(), Vec::new()];
    for round in 0..opts.rounds {
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for &i in &order {
            let spec = &specs[i];
            let (mut server, wall) = spec.start(timeout).with_context(|| format!("restarting {}", spec.name))?;
            let keys = dbsize(server.port)?;
            server.stop().with_context(|| format!("stopping {} after its restart", spec.name))?;
            if keys != filled[i] {
                bail!("{} came back with {keys} keys after its restart; it had {} before", spec.name, filled[i]);
            }
            let text = std::fs::read_to_string(&spec.log).unwrap_or_default();
            let load = match spec.kind {
                Kind::FastCache => fastcache_replay_time(&text),
                Kind::Redis => redis_load_time(&text),
            };
            eprintln!(
                "round {}/{} restart {:<18} {:>8.3} s to +PONG ({} keys; load {})",
                round + 1,
                opts.rounds,
                spec.name,
                wall.as_secs_f64(),
                thousands(keys as f64),
                load.map_or("?".to_string(), |d| format!("{:.3} s", d.as_secs_f64()))
            );
            restarts[i].push(Restart { wall, load });
        }
    }

    let wall = |i: usize| median(restarts[i].iter().map(|r| r.wall.as_secs_f64()).collect());
    let load = |i: usize| {
        let v: Vec<f64> = restarts[i].iter().filter_map(|r| r.load.map(|d| d.as_secs_f64())).collect();
        if v.is_empty() {
            "?".to_string()
        } else {
            format!("{:.3} s", median(v))
        }
    };
    let (fc, rd) = (wall(0), wall(1));
    let mb = |b: Option<u64>| b.map_or("?".to_string(), |b| format!("{:.1} MB", b as f64 / 1e6));
    println!();
    println!("{:<34} {:>14} {:>14} {:>7} {:>7} {:>6}", "restart", "FastCache", "Redis", "ratio", "target", "");
    println!(
        "{:<34} {:>12.3} s {:>12.3} s {:>6.2}x {:>6}x {:>6}",
        "spawn → +PONG with data loaded",
        fc,
        rd,
        fc / rd,
        format!("≤{RESTART_TARGET:.2}"),
        verdict(fc / rd <= RESTART_TARGET)
    );
    println!("{:<34} {:>14} {:>14}", "  of which loading (server's log)", load(0), load(1));
    println!(
        "{:<34} {:>12.3} s {:>12.3} s",
        "empty start → +PONG",
        empty_start[0].as_secs_f64(),
        empty_start[1].as_secs_f64()
    );
    println!(
        "{:<34} {:>14} {:>14}",
        "keys (DBSIZE, same after restart)",
        thousands(filled[0] as f64),
        thousands(filled[1] as f64)
    );
    println!("{:<34} {:>14} {:>14}", "log written", mb(log_bytes[0]), mb(log_bytes[1]));
    println!("{:<34} {:>14} {:>14}", "fill SET/s (-P 64)", thousands(fill_rps[0]), thousands(fill_rps[1]));
    println!(
        "(ratio = FastCache time ÷ Redis time, median of {} restart(s) each, alternating; \
         key counts differ by {diff}, within redis-benchmark's randomness ±{tolerance}; \
         log written = FastCache wal_bytes_appended, Redis aof_current_size)",
        opts.rounds
    );
    Ok(())
}

/// `text` without ANSI escape sequences (tracing colours its fields).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ … final byte in @..~
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The last `crash recovery done … elapsed_ms=N` in FastCache's log.
fn fastcache_replay_time(log: &str) -> Option<Duration> {
    let log = strip_ansi(log);
    let line = log.lines().rev().find(|l| l.contains("crash recovery done"))?;
    let ms = line.split("elapsed_ms=").nth(1)?.split(|c: char| !c.is_ascii_digit()).next()?;
    ms.parse().ok().map(Duration::from_millis)
}

/// The last `DB loaded from append only file: S seconds` in Redis' log.
fn redis_load_time(log: &str) -> Option<Duration> {
    let line = log.lines().rev().find(|l| l.contains("DB loaded from append only file"))?;
    let secs = line.split("file:").nth(1)?.split_whitespace().next()?;
    secs.parse().ok().map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_redis_benchmark_7_csv() {
        let text = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
                    \"SET\",\"83333.34\",\"0.330\",\"0.096\",\"0.279\",\"0.495\",\"1.559\",\"1.911\"\n";
        let s = parse_csv(text, "SET").map_err(|e| e.to_string());
        let s = s.as_ref().map(|s| (s.rps, s.avg_ms, s.p50_ms, s.p99_ms));
        assert_eq!(s, Ok((83333.34, 0.330, 0.279, 1.559)));
        assert!(parse_csv(text, "GET").is_err());
        assert!(parse_csv("", "SET").is_err());
    }

    #[test]
    fn formatting() {
        assert_eq!(thousands(1234567.8), "1,234,568");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("/tmp/a-b_1"), "/tmp/a-b_1");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn options() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let o = Options::parse(&args(&["--requests", "5000", "--rounds", "2"])).map(|o| (o.requests, o.rounds));
        assert_eq!(o.ok(), Some((5000, 2)));
        assert!(Options::parse(&args(&["--bogus"])).is_err());
        assert!(Options::parse(&args(&["--rounds"])).is_err());
        let parts = |v: &[&str]| Options::parse(&args(v)).map(|o| o.parts).ok();
        assert_eq!(parts(&[]), Some(Part::ALL.to_vec()));
        assert_eq!(parts(&["--only", "persistence"]), Some(vec![Part::Persistence]));
        assert_eq!(parts(&["--only=restart,memory"]), Some(vec![Part::Memory, Part::Restart]));
        assert_eq!(
            parts(&["--skip", "memory"]),
            Some(vec![Part::Persistence, Part::Restart, Part::Snapshot, Part::Replication])
        );
        assert_eq!(parts(&["--only", "snapshot"]), Some(vec![Part::Snapshot]));
        assert_eq!(parts(&["--only", "memory", "--skip", "memory"]), None);
        assert_eq!(parts(&["--only", "disk"]), None);
        let w = Options::parse(&args(&["--restart-writes", "300000"])).map(|o| o.restart_writes);
        assert_eq!(w.ok(), Some(300_000));
        let k = Options::parse(&args(&["--snapshot-keys=200000"])).map(|o| o.snapshot_keys);
        assert_eq!(k.ok(), Some(200_000));
    }

    #[test]
    fn replies_and_info() {
        let mut r = BufReader::new(&b":42\r\n$5\r\nhello\r\n$-1\r\n+OK\r\n-LOADING x\r\n"[..]);
        assert_eq!(read_reply(&mut r).ok(), Some(Reply::Int(42)));
        assert_eq!(read_reply(&mut r).ok(), Some(Reply::Bulk(Some(b"hello".to_vec()))));
        assert_eq!(read_reply(&mut r).ok(), Some(Reply::Bulk(None)));
        assert_eq!(read_reply(&mut r).ok(), Some(Reply::Status("OK".into())));
        assert_eq!(read_reply(&mut r).ok(), Some(Reply::Error("LOADING x".into())));
        assert!(read_reply(&mut r).is_err());
        let info = "# Persistence\r\naof_enabled:1\r\nwal_fsync:always\r\n";
        assert_eq!(info_field(info, "aof_enabled"), Some("1"));
        assert_eq!(info_field(info, "wal_fsync"), Some("always"));
        assert_eq!(info_field(info, "wal"), None);
    }

    #[test]
    fn load_times_from_logs() {
        let fc = "2025-01-01T00:00:00Z  INFO \u{1b}[3mrecords\u{1b}[0m\u{1b}[2m=\u{1b}[0m5 crash recovery done \
                  \u{1b}[3melapsed_ms\u{1b}[0m\u{1b}[2m=\u{1b}[0m1234\n";
        assert_eq!(fastcache_replay_time(fc), Some(Duration::from_millis(1234)));
        let rd = "1:M 01 Jan 2025 00:00:00.000 * DB loaded from append only file: 3.210 seconds\n";
        assert_eq!(redis_load_time(rd), Some(Duration::from_millis(3210)));
        assert_eq!(redis_load_time("nothing"), None);
    }
}
