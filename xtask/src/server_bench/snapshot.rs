//! The `snapshot` part of `cargo xtask bench`: FastCache's snapshots
//! against Redis' RDB on the same data, in one run.
//!
//! Both servers are filled the same deterministic way — keys
//! `key:000000000000` … (redis-benchmark's `-r` key shape, so the SET load
//! of (c) overwrites the filled keys instead of adding new ones) with
//! 64-byte values drawn from a fixed generator, streamed as RESP into
//! `redis-cli --pipe` — and each must then report `DBSIZE` = N. Then:
//!
//! - (a) `SAVE` time and the file it leaves (FastCache: every
//!   `snapshots/*.fcs`; Redis: `dump.rdb`);
//! - (b) restart on the same directory, spawn to `+PONG` with the data
//!   loaded (`DBSIZE` and sampled values checked);
//! - (c) SET p99 from redis-benchmark with no snapshot running and with
//!   `BGSAVE` re-issued whenever `rdb_bgsave_in_progress` drops to 0, so one
//!   is in progress for the whole measured run;
//! - (d) peak memory while a `BGSAVE` runs (idle, and under the load of
//!   (c)), sampled from `/proc` every 10 ms: the server's VmRSS plus that of
//!   any child it forked (Redis' BGSAVE is a fork, whose RSS counts the
//!   pages it shares with its parent), and the PSS sum, which splits
//!   shared pages between the two.

use std::io::{BufReader, BufWriter, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::{
    fastcache_replay_time, fill_timeout, info_field, median, read_reply, restart_timeout, run_benchmark, thousands,
    verdict, wait_client, Bench, Kind, Options, Persist, Reply, Running, Sample, Spec, RESTART_TARGET, RUN_TIMEOUT,
    START_TIMEOUT, VALUE_SIZE,
};

/// (c): FastCache's SET p99 with a snapshot running ÷ without, at most.
const LATENCY_TARGET: f64 = 2.0;
/// (d): FastCache's peak RSS during a snapshot ÷ before, at most.
const MEMORY_TARGET: f64 = 1.1;
/// How often (d) samples `/proc` and (c) polls `INFO persistence`.
const SAMPLE_EVERY: Duration = Duration::from_millis(10);
/// (d) reads the PSS (a walk of the page tables) every this many samples.
const PSS_EVERY: u32 = 5;
/// Values the restart check reads back.
const CHECKED_VALUES: u64 = 16;

/// Longest one snapshot of `keys` keys may take (at least 20k keys/s).
fn snapshot_timeout(keys: u64) -> Duration {
    Duration::from_secs(60 + keys / 20_000)
}

/// Key `i` of the fill: redis-benchmark's `key:__rand_int__` with `-r`
/// (twelve zero-padded digits).
pub(super) fn key(i: u64) -> String {
    format!("key:{i:012}")
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const VALUE_LEN: usize = VALUE_SIZE as usize;

/// Value `i` of the fill: 64 characters of a 64-letter alphabet drawn from
/// splitmix64 seeded with `i` — 6 bits of entropy per byte, so neither
/// Redis' LZF nor a snapshot compressor gets the easy win that
/// redis-benchmark's `xxx…` values would give.
fn value(i: u64) -> [u8; VALUE_LEN] {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let (mut state, mut bits, mut left) = (i, 0u64, 0u32);
    let mut out = [0; VALUE_LEN];
    for b in &mut out {
        if left < 6 {
            bits = splitmix64(&mut state);
            left = 64;
        }
        *b = ALPHABET[(bits & 63) as usize];
        bits >>= 6;
        left -= 6;
    }
    out
}

/// `SET key(i) value(i)` as RESP.
fn write_set(w: &mut impl Write, i: u64) -> std::io::Result<()> {
    let k = key(i);
    write!(w, "*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n${VALUE_LEN}\r\n", k.len())?;
    w.write_all(&value(i))?;
    w.write_all(b"\r\n")
}

/// One client connection with a bound on every reply.
struct Conn {
    r: BufReader<TcpStream>,
}

impl Conn {
    fn open(port: u16, timeout: Duration) -> Result<Conn> {
        let s = TcpStream::connect(("127.0.0.1", port)).with_context(|| format!("connecting to port {port}"))?;
        s.set_read_timeout(Some(timeout))?;
        s.set_write_timeout(Some(Duration::from_secs(10)))?;
        s.set_nodelay(true)?;
        Ok(Conn { r: BufReader::new(s) })
    }

    fn cmd(&mut self, argv: &[&str]) -> Result<Reply> {
        let mut req = format!("*{}\r\n", argv.len());
        for a in argv {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.r.get_mut().write_all(req.as_bytes())?;
        read_reply(&mut self.r).with_context(|| argv.join(" "))
    }

    fn info(&mut self, section: &str) -> Result<String> {
        match self.cmd(&["INFO", section])? {
            Reply::Bulk(Some(b)) => Ok(String::from_utf8_lossy(&b).into_owned()),
            other => bail!("INFO {section} answered {other:?}"),
        }
    }

    /// `rdb_bgsave_in_progress` from INFO persistence.
    fn bgsave_in_progress(&mut self) -> Result<bool> {
        let info = self.info("persistence")?;
        match info_field(&info, "rdb_bgsave_in_progress") {
            Some("0") => Ok(false),
            Some("1") => Ok(true),
            other => bail!("INFO persistence has rdb_bgsave_in_progress:{}", other.unwrap_or("(missing)")),
        }
    }

    /// Sends BGSAVE: `Ok(true)` if it started one, `Ok(false)` if one was
    /// already running.
    fn bgsave(&mut self, name: &str) -> Result<bool> {
        match self.cmd(&["BGSAVE"])? {
            Reply::Status(s) if s.starts_with("Background saving started") => Ok(true),
            Reply::Error(e) if e.contains("already in progress") => Ok(false),
            other => bail!("{name} answered BGSAVE with {other:?}{}", not_wired(&other)),
        }
    }

    /// `rdb_saves` from INFO persistence: snapshots completed so far.
    fn saves(&mut self) -> Result<u64> {
        let info = self.info("persistence")?;
        info_field(&info, "rdb_saves").and_then(|v| v.parse().ok()).with_context(|| {
            format!("INFO persistence has rdb_saves:{}", info_field(&info, "rdb_saves").unwrap_or("(missing)"))
        })
    }

    /// Waits (at most `timeout`) until a snapshot completes after `saves`
    /// had (`rdb_saves` grows) and none is in progress; checks that it
    /// succeeded. `rdb_bgsave_in_progress` alone does not tell: FastCache
    /// may answer BGSAVE before its snapshot thread marks itself running.
    fn wait_saved_after(&mut self, name: &str, saves: u64, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let info = self.info("persistence")?;
            let running = info_field(&info, "rdb_bgsave_in_progress") != Some("0");
            let done = info_field(&info, "rdb_saves").and_then(|v| v.parse::<u64>().ok()).is_some_and(|n| n > saves);
            let status = info_field(&info, "rdb_last_bgsave_status");
            if !running && done {
                return match status {
                    Some("ok") => Ok(()),
                    other => bail!("{name} reports rdb_last_bgsave_status:{}", other.unwrap_or("(missing)")),
                };
            }
            if !running && status == Some("err") {
                bail!("{name}'s BGSAVE failed (rdb_last_bgsave_status:err):\n{info}");
            }
            if Instant::now() > deadline {
                bail!("{name} completed no snapshot within {timeout:?} of a BGSAVE");
            }
            std::thread::sleep(SAMPLE_EVERY);
        }
    }

    /// Waits (at most `timeout`) until no snapshot is in progress and checks
    /// that the last one succeeded.
    fn wait_snapshot_done(&mut self, name: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while self.bgsave_in_progress()? {
            if Instant::now() > deadline {
                bail!("{name} still had a snapshot in progress after {timeout:?}");
            }
            std::thread::sleep(SAMPLE_EVERY);
        }
        let info = self.info("persistence")?;
        match info_field(&info, "rdb_last_bgsave_status") {
            Some("ok") => Ok(()),
            other => bail!("{name} reports rdb_last_bgsave_status:{}", other.unwrap_or("(missing)")),
        }
    }
}

/// A hint when a reply says the command does not exist yet.
fn not_wired(reply: &Reply) -> &'static str {
    match reply {
        Reply::Error(e) if e.to_ascii_lowercase().contains("unknown command") => {
            " — the server does not implement it (yet)"
        }
        _ => "",
    }
}

/// Streams the N SETs of the fill into `redis-cli --pipe` and checks its
/// account (no errors, N replies); returns the time taken. The replication
/// part fills its primaries with it too.
pub(super) fn fill(server: &mut Running, keys: u64, timeout: Duration) -> Result<Duration> {
    let started = Instant::now();
    let mut child = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &server.port.to_string(), "--pipe"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting redis-cli --pipe")?;
    let stdin = child.stdin.take().context("redis-cli's stdin")?;
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        let mut w = BufWriter::with_capacity(1 << 20, stdin);
        for i in 0..keys {
            write_set(&mut w, i)?;
        }
        w.flush()
        // Dropping the pipe tells redis-cli the stream has ended.
    });
    // Killing redis-cli on a failure breaks the pipe, which ends the writer.
    let what = format!("the fill (redis-cli --pipe, {keys} SETs within {timeout:?})");
    let waited = wait_client(&mut child, server, started + timeout, &what);
    let elapsed = started.elapsed();
    let wrote = writer.join().map_err(|_| anyhow::anyhow!("the fill writer panicked"))?;
    let (status, out, err) = waited?;
    if let Err(e) = wrote {
        bail!("writing the fill into redis-cli --pipe: {e}\n{out}{err}");
    }
    if !status.success() {
        bail!("redis-cli --pipe failed ({status}):\n{out}{err}");
    }
    // "errors: 0, replies: 5000000"
    let account = pipe_account(&out).with_context(|| format!("redis-cli --pipe printed no account:\n{out}{err}"))?;
    if account != (0, keys) {
        bail!(
            "redis-cli --pipe into {} counted {} errors and {} replies for {keys} SETs:\n{out}{err}",
            server.name,
            account.0,
            account.1
        );
    }
    Ok(elapsed)
}

/// `(errors, replies)` from redis-cli --pipe's last line.
fn pipe_account(out: &str) -> Option<(u64, u64)> {
    let line = out.lines().rev().find(|l| l.starts_with("errors:"))?;
    let mut nums = line.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(str::parse);
    Some((nums.next()?.ok()?, nums.next()?.ok()?))
}

/// Checks DBSIZE and a spread of the filled values.
fn check_data(name: &str, port: u16, keys: u64) -> Result<()> {
    let mut c = Conn::open(port, Duration::from_secs(30))?;
    match c.cmd(&["DBSIZE"])? {
        Reply::Int(n) if n >= 0 && n as u64 == keys => {}
        other => bail!("{name} answered DBSIZE with {other:?}; it was filled with {keys} keys"),
    }
    for j in 0..CHECKED_VALUES {
        let i = j * (keys - 1) / (CHECKED_VALUES - 1);
        match c.cmd(&["GET", &key(i)])? {
            Reply::Bulk(Some(v)) if v == value(i) => {}
            other => bail!("{name}: GET {} answered {other:?}, not the value it was filled with", key(i)),
        }
    }
    Ok(())
}

/// The snapshot's bytes on disk and how many files hold them.
fn snapshot_files(kind: Kind, data: &Path) -> Result<(u64, usize)> {
    match kind {
        Kind::Redis => {
            let path = data.join("dump.rdb");
            let meta = std::fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?;
            Ok((meta.len(), 1))
        }
        Kind::FastCache => {
            let dir = data.join("snapshots");
            let (mut bytes, mut files) = (0, 0);
            for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
                let entry = entry?;
                if entry.path().extension().is_some_and(|e| e == "fcs") {
                    bytes += entry.metadata()?.len();
                    files += 1;
                }
            }
            if files == 0 {
                bail!("SAVE answered +OK but {} holds no *.fcs file", dir.display());
            }
            Ok((bytes, files))
        }
    }
}

/// The last `DB loaded from disk: S seconds` in Redis' log.
fn redis_rdb_load_time(log: &str) -> Option<Duration> {
    let line = log.lines().rev().find(|l| l.contains("DB loaded from disk"))?;
    let secs = line.split("disk:").nth(1)?.split_whitespace().next()?;
    secs.parse().ok().map(Duration::from_secs_f64)
}

/// `field:  N kB` of a `/proc` file, in bytes.
fn proc_kb(path: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].split_whitespace().next()?.parse::<u64>().ok().map(|kb| kb * 1024)
}

/// The processes whose parent is `pid` (`/proc/PID/task/*/children` needs
/// CONFIG_PROC_CHILDREN, which not every kernel has: scan `/proc/*/stat`).
fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut out = Vec::new();
    for entry in dir.flatten() {
        let Some(child) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else { continue };
        // "pid (comm) state ppid …" — comm may hold spaces and parentheses.
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1));
        if ppid.and_then(|p| p.parse::<u32>().ok()) == Some(pid) {
            out.push(child);
        }
    }
    out
}

/// One look at a server's memory.
#[derive(Debug, Clone, Copy, Default)]
struct Mem {
    /// The server's own VmRSS.
    rss: u64,
    /// The server's own RssAnon (VmRSS less file-backed pages such as a
    /// memory-mapped log).
    anon: u64,
    /// VmRSS of the server plus its children (a fork counts its shared pages).
    rss_total: u64,
    /// PSS of the server plus its children, when read.
    pss_total: Option<u64>,
    /// Whether a child process was running.
    forked: bool,
}

fn sample_mem(pid: u32, with_pss: bool) -> Mem {
    let status = |p: u32, field: &str| proc_kb(&format!("/proc/{p}/status"), field).unwrap_or(0);
    let rss = |p: u32| status(p, "VmRSS:");
    let pss = |p: u32| proc_kb(&format!("/proc/{p}/smaps_rollup"), "Pss:");
    let kids = children(pid);
    let own = rss(pid);
    Mem {
        rss: own,
        anon: status(pid, "RssAnon:"),
        rss_total: own + kids.iter().map(|&k| rss(k)).sum::<u64>(),
        pss_total: with_pss.then(|| pss(pid).map(|p| p + kids.iter().filter_map(|&k| pss(k)).sum::<u64>())).flatten(),
        forked: !kids.is_empty(),
    }
}

/// Peaks of [`Mem`] over a stretch of time.
#[derive(Debug, Clone, Copy, Default)]
struct MemPeak {
    rss: u64,
    anon: u64,
    rss_total: u64,
    pss_total: u64,
    forked: bool,
}

impl MemPeak {
    fn add(&mut self, m: Mem) {
        self.rss = self.rss.max(m.rss);
        self.anon = self.anon.max(m.anon);
        self.rss_total = self.rss_total.max(m.rss_total);
        self.pss_total = self.pss_total.max(m.pss_total.unwrap_or(0));
        self.forked |= m.forked;
    }
}

/// Samples a process's memory every [`SAMPLE_EVERY`] on a thread until
/// stopped.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<MemPeak>,
}

impl Sampler {
    fn start(pid: u32) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = MemPeak::default();
            let mut n = 0u32;
            loop {
                // The last sample is taken after the stop was asked for.
                let last = flag.load(Ordering::Relaxed);
                peak.add(sample_mem(pid, n % PSS_EVERY == 0 || last));
                n = n.wrapping_add(1);
                if last {
                    return peak;
                }
                std::thread::sleep(SAMPLE_EVERY);
            }
        });
        Sampler { stop, thread }
    }

    fn finish(self) -> MemPeak {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

/// What the BGSAVE driver of (c) saw while the load ran.
#[derive(Debug, Clone, Copy, Default)]
struct Driven {
    polls: u64,
    in_progress: u64,
    bgsaves: u64,
    /// Snapshots completed from the first BGSAVE until the driver stopped.
    completed: u64,
}

/// Keeps a snapshot in progress: BGSAVE, wait (bounded) until INFO shows it
/// running, report that on `started`, then poll INFO every
/// [`SAMPLE_EVERY`] and BGSAVE again whenever none runs, until `stop`.
fn drive_bgsave(
    name: &'static str,
    port: u16,
    keys: u64,
    stop: Arc<AtomicBool>,
    started: mpsc::Sender<Result<()>>,
) -> Result<Driven> {
    let run = || -> Result<(Conn, Driven)> {
        let mut c = Conn::open(port, Duration::from_secs(30))?;
        let saves = c.saves()?;
        let mut d = Driven { bgsaves: u64::from(c.bgsave(name)?), completed: saves, ..Driven::default() };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !c.bgsave_in_progress()? {
            if Instant::now() > deadline {
                bail!("{name}: BGSAVE was accepted but rdb_bgsave_in_progress stayed 0 for 10 s");
            }
            // A snapshot that finished before the first poll: start another.
            d.bgsaves += u64::from(c.bgsave(name)?);
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok((c, d))
    };
    let (mut c, mut d) = match run() {
        Ok(v) => {
            let _ = started.send(Ok(()));
            v
        }
        Err(e) => {
            let msg = format!("{e:#}");
            let _ = started.send(Err(e));
            bail!(msg);
        }
    };
    // The load runs for at most RUN_TIMEOUT; the driver never outlives it by much.
    let deadline = Instant::now() + RUN_TIMEOUT + snapshot_timeout(keys);
    while !stop.load(Ordering::Relaxed) {
        if Instant::now() > deadline {
            bail!("{name}: the BGSAVE driver was not stopped within {:?}", RUN_TIMEOUT + snapshot_timeout(keys));
        }
        d.polls += 1;
        if c.bgsave_in_progress()? {
            d.in_progress += 1;
        } else {
            d.bgsaves += u64::from(c.bgsave(name)?);
        }
        std::thread::sleep(SAMPLE_EVERY);
    }
    d.completed = c.saves()?.saturating_sub(d.completed);
    Ok(d)
}

/// One SET run of (c) and what was seen around it.
#[derive(Debug, Clone, Copy)]
struct LoadRun {
    sample: Sample,
    /// During-snapshot runs only.
    driven: Option<Driven>,
    before: Mem,
    peak: MemPeak,
}

/// One SET run of (c) on `server`, with or without snapshots kept running.
fn load_run(server: &mut Running, bench: &Bench, keys: u64, snapshot: bool) -> Result<LoadRun> {
    let name = server.name;
    let pid = server.child.id();
    let mut c = Conn::open(server.port, Duration::from_secs(30))?;
    c.wait_snapshot_done(name, snapshot_timeout(keys))?;
    let before = sample_mem(pid, true);
    let sampler = Sampler::start(pid);
    let stop = Arc::new(AtomicBool::new(false));
    let driver = if snapshot {
        let (tx, rx) = mpsc::channel();
        let (port, flag) = (server.port, stop.clone());
        let handle = std::thread::spawn(move || drive_bgsave(name, port, keys, flag, tx));
        // The driver answers within its own 10 s bound (plus a reply's 30 s).
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = sampler.finish();
                let _ = handle.join();
                return Err(e.context(format!("starting a snapshot on {name}")));
            }
            Err(_) => {
                stop.store(true, Ordering::Relaxed);
                let _ = sampler.finish();
                bail!("{name}: the BGSAVE driver did not report within 60 s");
            }
        }
        Some(handle)
    } else {
        None
    };
    let sample = run_benchmark(server, bench, RUN_TIMEOUT);
    stop.store(true, Ordering::Relaxed);
    let driven = match driver {
        Some(h) => Some(h.join().map_err(|_| anyhow::anyhow!("the BGSAVE driver panicked"))??),
        None => None,
    };
    let sample = sample?;
    // Wait out the last snapshot so the memory peak covers it too.
    c.wait_snapshot_done(name, snapshot_timeout(keys))?;
    let peak = sampler.finish();
    Ok(LoadRun { sample, driven, before, peak })
}

/// (d) at rest: memory before and during one BGSAVE with no load.
fn idle_bgsave(server: &Running, keys: u64) -> Result<(Mem, MemPeak, Duration)> {
    let pid = server.child.id();
    let mut c = Conn::open(server.port, Duration::from_secs(30))?;
    c.wait_snapshot_done(server.name, snapshot_timeout(keys))?;
    let saves = c.saves()?;
    let before = sample_mem(pid, true);
    let sampler = Sampler::start(pid);
    let started = Instant::now();
    let ran = c.bgsave(server.name).and_then(|_| c.wait_saved_after(server.name, saves, snapshot_timeout(keys)));
    let took = started.elapsed();
    let peak = sampler.finish();
    ran?;
    Ok((before, peak, took))
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

fn median_duration(v: &[Duration]) -> Duration {
    Duration::from_secs_f64(median(v.iter().map(Duration::as_secs_f64).collect()))
}

/// Results of one server, in the order of the table.
#[derive(Default)]
struct Side {
    empty_start: Duration,
    fill: Duration,
    saves: Vec<Duration>,
    /// Bytes and files after the first SAVE.
    file: (u64, usize),
    restarts: Vec<Duration>,
    loads: Vec<Duration>,
    /// FastCache: WAL records replayed at the last restart.
    replayed: Option<String>,
    quiet: Vec<LoadRun>,
    busy: Vec<LoadRun>,
    /// Idle BGSAVEs: before, peak, time.
    idle: Vec<(Mem, MemPeak, Duration)>,
}

/// The `snapshot` part (see the module doc).
pub(super) fn snapshot_part(bin: &Path, dir: &Path, opts: &Options) -> Result<()> {
    let keys = opts.snapshot_keys;
    let mut fc = Spec::fastcache(bin, "FastCache", Persist::Interval, dir, "fastcache");
    fc.env.extend([("ENABLE_SNAPSHOTS", "true".to_string()), ("SNAPSHOT_INTERVAL", "24h".to_string())]);
    let specs = [fc, Spec::redis("Redis", Persist::Off, dir, "redis")];
    let load = Bench { test: "SET", pipeline: 1, requests: opts.requests, keyspace: keys };
    let mut sides: [Side; 2] = Default::default();

    println!(
        "snapshot: {} keys {}…{} with {VALUE_LEN}-byte values (fixed generator), sent by redis-cli --pipe",
        thousands(keys as f64),
        key(0),
        key(keys - 1)
    );
    // Fill both; each stays running for (a).
    let mut servers = Vec::new();
    for (spec, side) in specs.iter().zip(&mut sides) {
        let (mut server, t) = spec.start(START_TIMEOUT)?;
        spec.verify(server.port)?;
        println!("  {:<9} {}", spec.name, spec.command_line(server.port));
        side.empty_start = t;
        side.fill = fill(&mut server, keys, fill_timeout(keys)).with_context(|| format!("filling {}", spec.name))?;
        check_data(spec.name, server.port, keys)?;
        eprintln!("filled {} with {} keys in {:.1} s", spec.name, thousands(keys as f64), side.fill.as_secs_f64());
        servers.push(server);
    }

    // (a) SAVE, alternating.
    for round in 0..opts.rounds {
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for &i in &order {
            let server = &servers[i];
            let mut c = Conn::open(server.port, snapshot_timeout(keys))?;
            let started = Instant::now();
            let reply = c.cmd(&["SAVE"]).with_context(|| format!("SAVE on {}", server.name))?;
            let took = started.elapsed();
            if reply != Reply::Status("OK".into()) {
                bail!("{} answered SAVE with {reply:?}{}", server.name, not_wired(&reply));
            }
            if sides[i].saves.is_empty() {
                sides[i].file = snapshot_files(specs[i].kind, &specs[i].data)?;
            }
            sides[i].saves.push(took);
            eprintln!("round {}/{} SAVE {:<9} {:>8.3} s", round + 1, opts.rounds, server.name, took.as_secs_f64());
        }
    }
    for s in &mut servers {
        s.stop()?;
    }
    drop(servers);

    // (b) restart on the same directory, alternating.
    let timeout = restart_timeout(keys);
    for round in 0..opts.rounds {
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for &i in &order {
            let spec = &specs[i];
            let (mut server, wall) = spec.start(timeout).with_context(|| format!("restarting {}", spec.name))?;
            check_data(spec.name, server.port, keys).with_context(|| format!("after restarting {}", spec.name))?;
            if spec.kind == Kind::FastCache {
                let info = Conn::open(server.port, Duration::from_secs(30))?.info("persistence")?;
                sides[i].replayed = info_field(&info, "wal_replayed_records").map(str::to_string);
            }
            server.stop().with_context(|| format!("stopping {} after its restart", spec.name))?;
            let text = std::fs::read_to_string(&spec.log).unwrap_or_default();
            let loaded = match spec.kind {
                Kind::FastCache => fastcache_replay_time(&text),
                Kind::Redis => redis_rdb_load_time(&text),
            };
            eprintln!(
                "round {}/{} restart {:<9} {:>8.3} s to +PONG (load {})",
                round + 1,
                opts.rounds,
                spec.name,
                wall.as_secs_f64(),
                loaded.map_or("?".to_string(), secs)
            );
            sides[i].restarts.push(wall);
            sides[i].loads.extend(loaded);
        }
    }

    // (c) and (d) on the restarted servers.
    let mut servers = Vec::new();
    for spec in &specs {
        let (server, _) = spec.start(timeout).with_context(|| format!("starting {} again", spec.name))?;
        servers.push(server);
    }
    println!("  (c) load: {} (PORT is each server's)", load.command_line("PORT"));
    for round in 0..opts.rounds {
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for &i in &order {
            let server = &mut servers[i];
            // Which of the two runs goes first alternates too.
            for snapshot in [round % 2 == 1, round % 2 == 0] {
                let run = load_run(server, &load, keys, snapshot)
                    .with_context(|| format!("SET load on {} (snapshot running: {snapshot})", server.name))?;
                eprintln!(
                    "round {}/{} SET {:<9} {:<16} {:>9} ops/s  p99 {:.3} ms{}",
                    round + 1,
                    opts.rounds,
                    server.name,
                    if snapshot { "during snapshot" } else { "no snapshot" },
                    thousands(run.sample.rps),
                    run.sample.p99_ms,
                    run.driven.map_or(String::new(), |d| format!(
                        "  ({} BGSAVEs started, {} completed, in progress at {}/{} polls)",
                        d.bgsaves, d.completed, d.in_progress, d.polls
                    ))
                );
                if snapshot {
                    sides[i].busy.push(run);
                } else {
                    sides[i].quiet.push(run);
                }
            }
            let idle = idle_bgsave(server, keys).with_context(|| format!("idle BGSAVE on {}", server.name))?;
            eprintln!(
                "round {}/{} BGSAVE {:<9} idle: {:.3} s, RSS {} → peak {} (with children)",
                round + 1,
                opts.rounds,
                server.name,
                idle.2.as_secs_f64(),
                mb(idle.0.rss_total),
                mb(idle.1.rss_total)
            );
            sides[i].idle.push(idle);
        }
    }
    for (server, spec) in servers.iter().zip(&specs) {
        check_dbsize(spec.name, server.port, keys)?;
    }
    for s in &mut servers {
        s.stop()?;
    }

    print_table(&sides, keys, opts, &load);
    Ok(())
}

/// The key count after (c): its SETs only overwrite filled keys.
fn check_dbsize(name: &str, port: u16, keys: u64) -> Result<()> {
    match Conn::open(port, Duration::from_secs(30))?.cmd(&["DBSIZE"])? {
        Reply::Int(n) if n >= 0 && n as u64 == keys => Ok(()),
        other => bail!("{name} answered DBSIZE with {other:?} after the SET load; expected {keys}"),
    }
}

fn print_table(sides: &[Side; 2], keys: u64, opts: &Options, load: &Bench) {
    let [fc, rd] = sides;
    let row = |label: &str, a: String, b: String, rest: String| {
        println!("{}", format!("{label:<44} {a:>20} {b:>20} {rest}").trim_end());
    };
    let ratio = |a: f64, b: f64| format!("{:>6.2}x", a / b);
    let target = |r: f64, le: f64| format!("{:>7} {:>6}", format!("≤{le:.2}x"), verdict(r <= le));

    println!();
    row("snapshot", "FastCache".into(), "Redis".into(), format!("{:>7} {:>7}", "ratio", "target"));
    // (a)
    let (sa, sb) = (median_duration(&fc.saves), median_duration(&rd.saves));
    row("(a) SAVE", secs(sa), secs(sb), ratio(sa.as_secs_f64(), sb.as_secs_f64()));
    row(
        "    file size",
        mb(fc.file.0),
        mb(rd.file.0),
        format!(
            "{}   (FastCache {} snapshots/*.fcs file(s), Redis dump.rdb)",
            ratio(fc.file.0 as f64, rd.file.0 as f64),
            fc.file.1
        ),
    );
    let rate = |side: &Side| format!("{} SET/s", thousands(keys as f64 / side.fill.as_secs_f64()));
    row("    fill (redis-cli --pipe)", rate(fc), rate(rd), String::new());
    // (b)
    let (ra, rb) = (median_duration(&fc.restarts), median_duration(&rd.restarts));
    let r = ra.as_secs_f64() / rb.as_secs_f64();
    row(
        "(b) restart: spawn → +PONG with data",
        secs(ra),
        secs(rb),
        format!("{} {}", ratio(ra.as_secs_f64(), rb.as_secs_f64()), target(r, RESTART_TARGET)),
    );
    let loaded = |side: &Side| if side.loads.is_empty() { "?".to_string() } else { secs(median_duration(&side.loads)) };
    row("      of which loading (server's log)", loaded(fc), loaded(rd), String::new());
    row("    empty start → +PONG", secs(fc.empty_start), secs(rd.empty_start), String::new());
    row(
        "    keys after restart (DBSIZE, values checked)",
        thousands(keys as f64),
        thousands(keys as f64),
        String::new(),
    );
    row(
        "    WAL records replayed at restart",
        fc.replayed.clone().unwrap_or_else(|| "?".into()),
        "-".into(),
        String::new(),
    );
    // (c)
    let p99 = |runs: &[LoadRun]| median(runs.iter().map(|r| r.sample.p99_ms).collect());
    let rps = |runs: &[LoadRun]| median(runs.iter().map(|r| r.sample.rps).collect());
    let ms = |v: f64| format!("{v:.3} ms");
    let (qa, qb, ba, bb) = (p99(&fc.quiet), p99(&rd.quiet), p99(&fc.busy), p99(&rd.busy));
    row("(c) SET p99, no snapshot", ms(qa), ms(qb), ratio(qa, qb));
    row("    SET p99, snapshot in progress", ms(ba), ms(bb), ratio(ba, bb));
    row(
        "    in progress ÷ none (FastCache's target)",
        format!("{:.2}x", ba / qa),
        format!("{:.2}x", bb / qb),
        format!("{:>7} {}", "", target(ba / qa, LATENCY_TARGET)),
    );
    let ops = |side: &Side| format!("{} / {}", thousands(rps(&side.quiet)), thousands(rps(&side.busy)));
    row("    SET op/s none / in progress", ops(fc), ops(rd), String::new());
    let cover = |side: &Side| {
        let (mut polls, mut on, mut saves) = (0, 0, 0);
        for d in side.busy.iter().filter_map(|r| r.driven) {
            polls += d.polls;
            on += d.in_progress;
            saves += d.completed;
        }
        format!("{:.0}%, {saves} saved", 100.0 * on as f64 / polls.max(1) as f64)
    };
    row("    snapshot seen in progress (INFO polls)", cover(fc), cover(rd), String::new());
    // (d): per side, the round with the largest peak ÷ before.
    let worst = |runs: Vec<(Mem, MemPeak)>| {
        runs.into_iter().max_by(|a, b| {
            (a.1.rss_total as f64 / a.0.rss_total as f64).total_cmp(&(b.1.rss_total as f64 / b.0.rss_total as f64))
        })
    };
    let idle = |side: &Side| worst(side.idle.iter().map(|(b, p, _)| (*b, *p)).collect());
    let busy = |side: &Side| worst(side.busy.iter().map(|r| (r.before, r.peak)).collect());
    let forked = |p: &MemPeak| if p.forked { " (fork)" } else { "" };
    for (label, a, b) in [("idle BGSAVE", idle(fc), idle(rd)), ("BGSAVEs under the SET load", busy(fc), busy(rd))] {
        let (Some((fb, fp)), Some((rb_, rp))) = (a, b) else { continue };
        println!("(d) memory, {label}");
        row("    RSS before", mb(fb.rss_total), mb(rb_.rss_total), String::new());
        row(
            "    peak RSS, server + children",
            format!("{}{}", mb(fp.rss_total), forked(&fp)),
            format!("{}{}", mb(rp.rss_total), forked(&rp)),
            String::new(),
        );
        let fr = fp.rss_total as f64 / fb.rss_total as f64;
        row(
            "    peak ÷ before (FastCache's target)",
            format!("{fr:.2}x"),
            format!("{:.2}x", rp.rss_total as f64 / rb_.rss_total as f64),
            format!("{:>7} {}", "", target(fr, MEMORY_TARGET)),
        );
        let pss = |before: &Mem, peak: &MemPeak| match before.pss_total {
            Some(b) if b > 0 && peak.pss_total > 0 => format!("{:.2}x", peak.pss_total as f64 / b as f64),
            _ => "?".into(),
        };
        row("    peak PSS ÷ before (shared pages split)", pss(&fb, &fp), pss(&rb_, &rp), String::new());
        row("    peak RSS of the server process alone", mb(fp.rss), mb(rp.rss), String::new());
        let anon = |before: &Mem, peak: &MemPeak| format!("{} → {}", mb(before.anon), mb(peak.anon));
        row("    its anonymous RSS, before → peak", anon(&fb, &fp), anon(&rb_, &rp), String::new());
        let anon_ratio = |before: &Mem, peak: &MemPeak| format!("{:.2}x", peak.anon as f64 / before.anon.max(1) as f64);
        row("    its anonymous RSS, peak ÷ before", anon_ratio(&fb, &fp), anon_ratio(&rb_, &rp), String::new());
    }
    let idle_time = |side: &Side| secs(median_duration(&side.idle.iter().map(|x| x.2).collect::<Vec<_>>()));
    row("    idle BGSAVE time", idle_time(fc), idle_time(rd), String::new());
    println!(
        "(time ratios = FastCache ÷ Redis, medians of {} round(s), alternating; (c): {}, p99 medians; \
         (d): VmRSS sampled every {} ms, the round with the largest peak ÷ before; a forked child's RSS \
         includes the pages it shares with its parent, so Redis' sum overstates, PSS does not; RSS includes \
         file-backed pages such as FastCache's memory-mapped WAL, anonymous RSS does not)",
        opts.rounds,
        load.command_line("PORT"),
        SAMPLE_EVERY.as_millis()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_data_is_fixed() {
        assert_eq!(key(0), "key:000000000000");
        assert_eq!(key(4_999_999), "key:000004999999");
        assert_eq!(value(7), value(7));
        assert_ne!(value(7), value(8));
        assert!(value(1).iter().all(|b| b.is_ascii_graphic()));
        let mut buf = Vec::new();
        write_set(&mut buf, 3).ok();
        let head = b"*3\r\n$3\r\nSET\r\n$16\r\nkey:000000000003\r\n$64\r\n";
        assert_eq!(&buf[..head.len()], head);
        assert_eq!(buf.len(), head.len() + 64 + 2);
    }

    #[test]
    fn parses_tool_output() {
        let out = "All data transferred. Waiting for the last reply...\nLast reply received from server.\n\
                   errors: 0, replies: 5000000\n";
        assert_eq!(pipe_account(out), Some((0, 5_000_000)));
        assert_eq!(pipe_account("nothing"), None);
        let log = "1:M 01 Jan 2025 00:00:00.000 * DB loaded from disk: 2.345 seconds\n";
        assert_eq!(redis_rdb_load_time(log), Some(Duration::from_millis(2345)));
        assert_eq!(redis_rdb_load_time("x"), None);
    }

    #[test]
    fn reads_own_memory() {
        let m = sample_mem(std::process::id(), true);
        assert!(m.rss > 0 && m.rss_total >= m.rss);
        assert!(m.pss_total.is_some_and(|p| p > 0));
    }
}
