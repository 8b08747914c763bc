//! The `replication` part of `cargo xtask bench` (issue 7's figures):
//! FastCache's replication against Redis 7.0's, in one run.
//!
//! - (1) primary SET throughput — redis-benchmark `-t set -c 50 -r 1000000
//!   -d 64` at `-P 1` and `-P 16` — on a primary with one replica attached
//!   and on a lone primary of the same kind, alternating round by round.
//!   After each run on the primary with a replica the bench waits
//!   (bounded) until the replica's `slave_repl_offset` reaches the
//!   primary's `master_repl_offset` and checks that both hold as many keys,
//!   so no run leaves a backlog to the next one.
//! - (2) full sync of N keys (`--repl-keys`, default 2,000,000): a fresh
//!   primary filled through `redis-cli --pipe` with fixed keys and 64-byte
//!   values (`DBSIZE` = N checked); each round a fresh, empty replica is
//!   sent `REPLICAOF` and timed until its INFO says
//!   `master_link_status:up` and its `DBSIZE` equals the primary's; the
//!   primary's `sync_full` must grow by exactly one.
//! - (3) replication lag under load: while redis-benchmark runs SET at
//!   `-P 16` on the primary with a replica, a probe SETs `probe:<i>` to the
//!   current time in ns on the primary, one every 10 ms, and polls GET on
//!   the replica until it shows that value (bounded); the lag is the time
//!   from the primary's `+OK` to the replica's answer; p50 and p99 over all
//!   probes of all rounds.
//!
//! Persistence is the same on primaries and replicas: FastCache's defaults
//! (the WAL with `WAL_FSYNC=interval`, `WAL_FLUSH_INTERVAL=1s`, snapshots
//! every 5 minutes), Redis `appendonly yes`, `appendfsync everysec`. Redis
//! syncs diskless (7.0's default `repl-diskless-sync yes`) with
//! `repl-diskless-sync-delay 0`: its default of 5 s only waits for more
//! replicas before the transfer starts.
//!
//! Until FastCache implements replication its side stops at the first
//! error, with the reason; the Redis side still runs and the table shows
//! its columns, and the part then returns FastCache's error.

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

use super::{
    fill_timeout, info_field, log_tail, median, median_sample, progress, read_reply, run_benchmark, thousands, verdict,
    Bench, Kind, Options, Persist, Reply, Running, Sample, Spec, CLIENTS, RUN_TIMEOUT, START_TIMEOUT, VALUE_SIZE,
};

/// `-r` of the SET loads: keys `key:000000000000` … `key:000000999999`.
const KEYSPACE: u64 = 1_000_000;
/// (1)'s rows: the pipeline depth, and requests as a multiple of `--requests`.
const ROWS: [(u32, u64); 2] = [(1, 1), (16, 5)];
/// (1): FastCache's SET op/s with a replica ÷ without, at least.
const WITH_TARGET: f64 = 0.9;
/// (3): the load's pipeline depth.
const LAG_PIPELINE: u32 = 16;
/// (3): probes per round, one every [`PROBE_EVERY`].
const PROBES: u32 = 200;
const PROBE_EVERY: Duration = Duration::from_millis(10);
/// (3): longest a probe waits for the replica to show its write.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// (3): longest all the probes of one round may take.
const PROBES_TIMEOUT: Duration = Duration::from_secs(120);
/// (3): the load runs this long before the first probe.
const LOAD_WARMUP: Duration = Duration::from_millis(500);
/// How often the sync and catch-up waits poll INFO.
const POLL: Duration = Duration::from_millis(10);
/// Longest an empty replica may take to attach to an empty primary.
const ATTACH_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a replica may take to catch up after a load.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(120);
/// Bound on one command's reply.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest a full sync of `keys` keys may take (at least 10k keys/s).
fn sync_timeout(keys: u64) -> Duration {
    Duration::from_secs(60 + keys / 10_000)
}

/// FastCache's results go in column 0, Redis' in column 1.
const KINDS: [Kind; 2] = [Kind::FastCache, Kind::Redis];

fn ix(kind: Kind) -> usize {
    match kind {
        Kind::FastCache => 0,
        Kind::Redis => 1,
    }
}

/// One server of the part, started from `spec` on a fresh data directory
/// (FastCache's defaults, Redis with its AOF every second and diskless
/// sync without delay).
fn spec(kind: Kind, bin: &Path, name: &'static str, dir: &Path, slug: &str) -> Spec {
    match kind {
        // Persist::Interval spells out FastCache's defaults.
        Kind::FastCache => Spec::fastcache(bin, name, Persist::Interval, dir, &format!("fastcache-{slug}")),
        Kind::Redis => {
            let mut s = Spec::redis(name, Persist::Interval, dir, &format!("redis-{slug}"));
            s.args.extend(["--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"].map(String::from));
            s
        }
    }
}

fn start(spec: &Spec) -> Result<Running> {
    let (server, _) = spec.start(START_TIMEOUT)?;
    spec.verify(server.port)?;
    Ok(server)
}

/// Fails if `server` has exited.
fn alive(server: &mut Running) -> Result<()> {
    if let Some(st) = server.child.try_wait()? {
        bail!("{} exited ({st}):\n{}", server.name, log_tail(&server.log));
    }
    Ok(())
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

/// One client connection with a bound on every reply.
struct Conn {
    r: BufReader<TcpStream>,
    name: &'static str,
}

impl Conn {
    fn open(server: &Running) -> Result<Conn> {
        let s = TcpStream::connect(("127.0.0.1", server.port))
            .with_context(|| format!("connecting to {} on port {}", server.name, server.port))?;
        s.set_read_timeout(Some(REPLY_TIMEOUT))?;
        s.set_write_timeout(Some(Duration::from_secs(10)))?;
        s.set_nodelay(true)?;
        Ok(Conn { r: BufReader::new(s), name: server.name })
    }

    fn cmd(&mut self, argv: &[&str]) -> Result<Reply> {
        let mut req = format!("*{}\r\n", argv.len());
        for a in argv {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        self.r.get_mut().write_all(req.as_bytes())?;
        read_reply(&mut self.r).with_context(|| format!("{} on {}", argv.join(" "), self.name))
    }

    fn info(&mut self, section: &str) -> Result<String> {
        match self.cmd(&["INFO", section])? {
            Reply::Bulk(Some(b)) => Ok(String::from_utf8_lossy(&b).into_owned()),
            other => bail!("{} answered INFO {section} with {other:?}", self.name),
        }
    }

    /// DBSIZE, or `None` while the server answers it with an error (Redis
    /// says `-LOADING` while a replica loads what its primary sent).
    fn dbsize(&mut self) -> Result<Option<u64>> {
        match self.cmd(&["DBSIZE"])? {
            Reply::Int(n) if n >= 0 => Ok(Some(n as u64)),
            Reply::Error(_) => Ok(None),
            other => bail!("{} answered DBSIZE with {other:?}", self.name),
        }
    }

    fn dbsize_now(&mut self) -> Result<u64> {
        match self.cmd(&["DBSIZE"])? {
            Reply::Int(n) if n >= 0 => Ok(n as u64),
            other => bail!("{} answered DBSIZE with {other:?}", self.name),
        }
    }

    /// An integer field of an INFO section.
    fn info_number(&mut self, section: &str, field: &str) -> Result<u64> {
        let info = self.info(section)?;
        number(&info, field).with_context(|| format!("INFO {section} of {}:\n{info}", self.name))
    }

    /// (`sync_full`, `sync_partial_ok`) from INFO stats.
    fn syncs(&mut self) -> Result<(u64, u64)> {
        let info = self.info("stats")?;
        let n = |f: &str| number(&info, f).with_context(|| format!("INFO stats of {}", self.name));
        Ok((n("sync_full")?, n("sync_partial_ok")?))
    }
}

/// An unsigned integer field of INFO text.
fn number(info: &str, field: &str) -> Result<u64> {
    let v = info_field(info, field).with_context(|| format!("no {field} field"))?;
    v.parse().with_context(|| format!("{field}:{v} is not a number"))
}

/// A `key=value` of an INFO `slaveN:` line (`ip=…,port=…,state=online,offset=…,lag=…`).
fn slave_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split(',').find_map(|kv| kv.split_once('=').filter(|(k, _)| k.trim() == key).map(|(_, v)| v.trim()))
}

/// Whether a primary's INFO replication shows a replica online.
fn replica_online(info: &str) -> bool {
    number(info, "connected_slaves").is_ok_and(|n| n >= 1)
        && info_field(info, "slave0").and_then(|l| slave_field(l, "state")) == Some("online")
}

/// What one `REPLICAOF` took.
#[derive(Debug, Clone, Copy)]
struct SyncTimes {
    /// To `master_link_status:up` on the replica.
    up: Duration,
    /// To the link up and the replica's DBSIZE equal to the primary's.
    done: Duration,
    /// Redis only: to the end of the AOF rewrite a replica with
    /// `appendonly yes` starts once it has loaded what its primary sent
    /// (until then the synced data is not in its AOF, and it refuses
    /// SHUTDOWN: "Writing initial AOF, can't exit").
    aof_written: Option<Duration>,
    /// When REPLICAOF was sent.
    at: Instant,
}

/// Sends `REPLICAOF 127.0.0.1 <primary>` to `replica` and waits (at most
/// `timeout`) until the link is up and the replica holds as many keys as
/// the primary (which takes no writes meanwhile), then until the primary
/// shows it online.
fn replicate(primary: &mut Running, replica: &mut Running, timeout: Duration) -> Result<SyncTimes> {
    let mut p = Conn::open(primary)?;
    let mut r = Conn::open(replica)?;
    let keys = p.dbsize_now()?;
    let port = primary.port.to_string();
    let started = Instant::now();
    let deadline = started + timeout;
    match r.cmd(&["REPLICAOF", "127.0.0.1", &port])? {
        Reply::Status(s) if s.starts_with("OK") => {}
        other => bail!("{} answered REPLICAOF 127.0.0.1 {port} with {other:?}{}", replica.name, not_wired(&other)),
    }
    let mut up = None;
    let done = loop {
        alive(primary)?;
        alive(replica)?;
        let info = r.info("replication")?;
        if info_field(&info, "master_link_status") == Some("up") {
            let at = *up.get_or_insert_with(|| started.elapsed());
            if r.dbsize()? == Some(keys) {
                break SyncTimes { up: at, done: started.elapsed(), aof_written: None, at: started };
            }
        }
        if Instant::now() > deadline {
            let size = r.dbsize().ok().flatten().map_or("?".into(), |n| n.to_string());
            bail!(
                "{} was not in sync with {} ({keys} keys) within {timeout:?} of REPLICAOF: DBSIZE {size}, \
                 INFO replication:\n{}\nits log:\n{}",
                replica.name,
                primary.name,
                info.trim_end(),
                log_tail(&replica.log)
            );
        }
        std::thread::sleep(POLL);
    };
    loop {
        let info = p.info("replication")?;
        if replica_online(&info) {
            return Ok(done);
        }
        if Instant::now() > deadline {
            bail!(
                "{} does not show {} online within {timeout:?} of REPLICAOF; its INFO replication:\n{}",
                primary.name,
                replica.name,
                info.trim_end()
            );
        }
        std::thread::sleep(POLL);
    }
}

/// Waits (at most `timeout`) until the replica's offset reaches the
/// primary's and checks both hold as many keys; returns the time from the
/// call until the replica first reached the primary's offset. A killed
/// load's pipelined commands may still be running on the primary when this
/// starts: the key counts are compared only once the primary's offset stood
/// still across the comparison.
fn caught_up(primary: &mut Running, replica: &mut Running, timeout: Duration) -> Result<Duration> {
    let mut p = Conn::open(primary)?;
    let mut r = Conn::open(replica)?;
    let started = Instant::now();
    let mut took = None;
    loop {
        alive(primary)?;
        alive(replica)?;
        let target = p.info_number("replication", "master_repl_offset")?;
        let info = r.info("replication")?;
        let offset = number(&info, "slave_repl_offset")
            .with_context(|| format!("INFO replication of {}:\n{info}", replica.name))?;
        if offset >= target && info_field(&info, "master_link_status") == Some("up") {
            let reached = *took.get_or_insert_with(|| started.elapsed());
            let (a, b) = (p.dbsize_now()?, r.dbsize_now()?);
            let still = p.info_number("replication", "master_repl_offset")? == target
                && number(&r.info("replication")?, "slave_repl_offset").ok() == Some(target);
            if still {
                if a != b {
                    bail!(
                        "{} holds {a} keys and its replica {b} at the same replication offset {target}",
                        primary.name
                    );
                }
                return Ok(reached);
            }
        }
        if Instant::now() > started + timeout {
            bail!(
                "{} did not reach {}'s offset {target} (and hold still) within {timeout:?}; its INFO replication:\n{}",
                replica.name,
                primary.name,
                info.trim_end()
            );
        }
        std::thread::sleep(POLL);
    }
}

/// FastCache's side stops at its first error (its replication may not be
/// there yet): `Ok(None)` then, and from then on, with the reason kept in
/// `failed`. Redis' errors end the part.
fn attempt<T>(kind: Kind, failed: &mut Option<String>, what: &str, f: impl FnOnce() -> Result<T>) -> Result<Option<T>> {
    if kind == Kind::Redis {
        return f().with_context(|| format!("Redis: {what}")).map(Some);
    }
    if failed.is_some() {
        return Ok(None);
    }
    match f() {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            let msg = format!("{what}: {e:#}");
            eprintln!("FastCache: stopped its side of the replication part — {msg}");
            *failed = Some(msg);
            Ok(None)
        }
    }
}

/// A lone primary, and a primary with its replica.
struct Trio {
    alone: Running,
    primary: Running,
    replica: Running,
}

/// redis-benchmark as the load of (3), killed when dropped.
struct Load(Child);

impl Drop for Load {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What one round of (3) saw.
struct LagRun {
    lags: Vec<Duration>,
    /// Probes the replica did not show within [`PROBE_TIMEOUT`].
    lost: u32,
    /// The primary's commands per second while the probes ran.
    load_rps: f64,
    /// Whether the load had ended before the last probe.
    ended_early: bool,
}

fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// One round of (3) on `trio`'s primary and replica.
fn lag_run(trio: &mut Trio, load: &Bench) -> Result<LagRun> {
    let Trio { primary, replica, .. } = trio;
    let args = load.args(&primary.port.to_string());
    let mut load = Load(
        Command::new("redis-benchmark")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-benchmark")?,
    );
    std::thread::sleep(LOAD_WARMUP);
    if let Some(st) = load.0.try_wait()? {
        bail!("the load (redis-benchmark {}) ended ({st}) before the first probe", args.join(" "));
    }
    alive(primary)?;
    alive(replica)?;
    let mut p = Conn::open(primary)?;
    let mut r = Conn::open(replica)?;
    let commands = |c: &mut Conn| c.info_number("stats", "total_commands_processed");
    let before = commands(&mut p)?;
    let started = Instant::now();
    let (mut lags, mut lost) = (Vec::with_capacity(PROBES as usize), 0);
    for i in 0..PROBES {
        if let Some(wait) = (started + PROBE_EVERY * i).checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        if started.elapsed() > PROBES_TIMEOUT {
            bail!("{PROBES} probes did not finish within {PROBES_TIMEOUT:?} ({i} done, {lost} not seen in time)");
        }
        let key = format!("probe:{i}");
        // Unique across rounds: a value left by an earlier round never counts.
        let value = now_ns().to_string();
        match p.cmd(&["SET", &key, &value])? {
            Reply::Status(s) if s == "OK" => {}
            other => bail!("{} answered SET {key} with {other:?}", primary.name),
        }
        let acked = Instant::now();
        loop {
            match r.cmd(&["GET", &key])? {
                Reply::Bulk(Some(v)) if v == value.as_bytes() => {
                    lags.push(acked.elapsed());
                    break;
                }
                Reply::Bulk(_) => {}
                other => bail!("{} answered GET {key} with {other:?}", replica.name),
            }
            if acked.elapsed() > PROBE_TIMEOUT {
                lost += 1;
                break;
            }
        }
    }
    let elapsed = started.elapsed();
    let after = commands(&mut p)?;
    let ended_early = load.0.try_wait()?.is_some();
    drop(load);
    Ok(LagRun { lags, lost, load_rps: after.saturating_sub(before) as f64 / elapsed.as_secs_f64(), ended_early })
}

/// The `nearest-rank` percentile `q` (0–1) of sorted `v`.
fn percentile(v: &[Duration], q: f64) -> Option<Duration> {
    if v.is_empty() {
        return None;
    }
    let rank = (q * v.len() as f64).ceil().max(1.0) as usize;
    v.get(rank.min(v.len()) - 1).copied()
}

/// Streams `SET key(i) value(i)` for every `i < keys` into `redis-cli
/// --pipe` (the snapshot part's fill) and checks its account; returns the
/// time taken.
fn fill(server: &mut Running, keys: u64) -> Result<Duration> {
    super::snapshot::fill(server, keys, fill_timeout(keys))
}

/// Everything measured, column 0 FastCache, column 1 Redis.
#[derive(Default)]
struct Results {
    /// (1): per row of [`ROWS`], runs on the lone primary and on the one with a replica.
    alone: [[Vec<Sample>; 2]; 2],
    with: [[Vec<Sample>; 2]; 2],
    /// (1): the replica's catch-up after each run with a replica.
    catch_up: [Vec<Duration>; 2],
    /// (1) and (3): syncs the primary with a replica served during the loads
    /// (`sync_full`, `sync_partial_ok` grown).
    resyncs: [Option<(u64, u64)>; 2],
    /// (2): the fill of the primary, then each round's sync.
    fill: [Option<Duration>; 2],
    syncs: [Vec<SyncTimes>; 2],
    /// (3): every probe's lag over all rounds, and the rest of what it saw.
    lags: [Vec<Duration>; 2],
    lost: [u32; 2],
    load_rps: [Vec<f64>; 2],
    ended_early: [u32; 2],
}

/// The `replication` part (see the module doc).
pub(super) fn replication_part(bin: &Path, dir: &Path, opts: &Options) -> Result<()> {
    let mut failed: Option<String> = None;
    let mut res = Results::default();
    let load = Bench {
        test: "SET",
        pipeline: LAG_PIPELINE,
        // Ended once the probes are done; long enough to outlast them.
        requests: (opts.requests * 100).max(10_000_000),
        keyspace: KEYSPACE,
    };

    println!(
        "replication: FastCache defaults (WAL_FSYNC=interval, WAL_FLUSH_INTERVAL=1s, snapshots on) vs Redis \
         appendonly yes, appendfsync everysec, repl-diskless-sync yes (7.0 default), repl-diskless-sync-delay 0; \
         the same on primaries and replicas, each with a fresh data directory"
    );
    // (1) and (3) on a lone primary and a primary with one replica per kind.
    let specs = KINDS.map(|kind| {
        let name = |s: &'static str, r: &'static str| if kind == Kind::FastCache { s } else { r };
        [
            spec(kind, bin, name("FastCache alone", "Redis alone"), dir, "alone"),
            spec(kind, bin, name("FastCache primary", "Redis primary"), dir, "primary"),
            spec(kind, bin, name("FastCache replica", "Redis replica"), dir, "replica"),
        ]
    });
    let mut trios: [Option<Trio>; 2] = [None, None];
    for kind in KINDS {
        let [a, p, r] = &specs[ix(kind)];
        trios[ix(kind)] = attempt(kind, &mut failed, "attaching an empty replica to an empty primary", || {
            let (alone, mut primary, mut replica) = (start(a)?, start(p)?, start(r)?);
            for (s, server) in [(a, &alone), (p, &primary), (r, &replica)] {
                println!("  {:<17} {}", s.name, s.command_line(server.port));
            }
            let t = replicate(&mut primary, &mut replica, ATTACH_TIMEOUT)?;
            println!("  {:<17} REPLICAOF 127.0.0.1 {}: link up in {:.3} s", r.name, primary.port, t.done.as_secs_f64());
            Ok(Trio { alone, primary, replica })
        })?;
    }
    let mut syncs_before: [Option<(u64, u64)>; 2] = [None, None];
    for kind in KINDS {
        if let Some(trio) = trios[ix(kind)].as_mut() {
            syncs_before[ix(kind)] = attempt(kind, &mut failed, "INFO stats", || Conn::open(&trio.primary)?.syncs())?;
        }
    }
    println!(
        "  (1) load: {} (-P 16: -n {}), on the primary with a replica and on the lone one; median of {} round(s), \
         servers alternating",
        Bench { test: "SET", pipeline: 1, requests: opts.requests, keyspace: KEYSPACE }.command_line("PORT"),
        opts.requests * ROWS[1].1,
        opts.rounds
    );
    throughput(&mut trios, &mut failed, opts, &mut res)?;
    println!(
        "  (3) load: {} (ended after the probes); {PROBES} probes per round, one every {} ms, each waiting at most \
         {PROBE_TIMEOUT:?}",
        load.command_line("PORT"),
        PROBE_EVERY.as_millis()
    );
    lag(&mut trios, &mut failed, opts, &load, &mut res)?;
    for kind in KINDS {
        let i = ix(kind);
        if let (Some(trio), Some(before)) = (trios[i].as_mut(), syncs_before[i]) {
            res.resyncs[i] = attempt(kind, &mut failed, "INFO stats", || {
                let (full, partial) = Conn::open(&trio.primary)?.syncs()?;
                Ok((full - before.0, partial - before.1))
            })?;
        }
        if let Some(mut trio) = trios[i].take() {
            attempt(kind, &mut failed, "stopping the servers", || {
                trio.replica.stop()?;
                trio.primary.stop()?;
                trio.alone.stop()
            })?;
        }
    }

    full_sync(bin, dir, opts, &mut failed, &mut res)?;
    print_table(&res, opts, failed.as_deref());
    match failed {
        Some(e) => bail!("FastCache's replication could not be measured: {e}"),
        None => Ok(()),
    }
}

/// (1): SET on the lone primaries and on those with a replica.
fn throughput(
    trios: &mut [Option<Trio>; 2],
    failed: &mut Option<String>,
    opts: &Options,
    res: &mut Results,
) -> Result<()> {
    for round in 0..opts.rounds {
        for (row, &(pipeline, scale)) in ROWS.iter().enumerate() {
            let bench = Bench { test: "SET", pipeline, requests: opts.requests * scale, keyspace: KEYSPACE };
            let mut order =
                [(Kind::FastCache, false), (Kind::FastCache, true), (Kind::Redis, false), (Kind::Redis, true)];
            if (round + row) % 2 == 1 {
                order.reverse();
            }
            for (kind, with) in order {
                let i = ix(kind);
                let Some(trio) = trios[i].as_mut() else { continue };
                let label = format!("SET -P {pipeline}, {} replica", if with { "one" } else { "no" });
                let run = attempt(kind, failed, &label, || {
                    if !with {
                        return Ok((run_benchmark(&mut trio.alone, &bench, RUN_TIMEOUT)?, None));
                    }
                    let sample = run_benchmark(&mut trio.primary, &bench, RUN_TIMEOUT)?;
                    Ok((sample, Some(caught_up(&mut trio.primary, &mut trio.replica, CATCH_UP_TIMEOUT)?)))
                })?;
                let Some((sample, catch_up)) = run else {
                    trios[i] = None;
                    continue;
                };
                let name = if with { trio.primary.name } else { trio.alone.name };
                progress(round, opts.rounds, &label, name, &sample);
                if let Some(t) = catch_up {
                    eprintln!("    its replica caught up {:.1} ms after the run", t.as_secs_f64() * 1e3);
                    res.catch_up[i].push(t);
                }
                let runs = if with { &mut res.with } else { &mut res.alone };
                runs[i][row].push(sample);
            }
        }
    }
    Ok(())
}

/// (3): probes under load on the primaries with a replica.
fn lag(
    trios: &mut [Option<Trio>; 2],
    failed: &mut Option<String>,
    opts: &Options,
    load: &Bench,
    res: &mut Results,
) -> Result<()> {
    for round in 0..opts.rounds {
        let order = if round % 2 == 0 { KINDS } else { [Kind::Redis, Kind::FastCache] };
        for kind in order {
            let i = ix(kind);
            let Some(trio) = trios[i].as_mut() else { continue };
            let run = attempt(kind, failed, "replication lag under load", || {
                let run = lag_run(trio, load)?;
                let t = caught_up(&mut trio.primary, &mut trio.replica, CATCH_UP_TIMEOUT)?;
                Ok((run, t))
            })?;
            let Some((mut run, caught)) = run else {
                trios[i] = None;
                continue;
            };
            run.lags.sort();
            let ms = |d: Option<Duration>| d.map_or("?".into(), |d| format!("{:.3} ms", d.as_secs_f64() * 1e3));
            eprintln!(
                "round {}/{} lag {:<17} p50 {}  p99 {}  max {}  ({} probes seen, {} not within {PROBE_TIMEOUT:?}; \
                 load {} op/s{}; caught up {:.1} ms after)",
                round + 1,
                opts.rounds,
                trio.primary.name,
                ms(percentile(&run.lags, 0.5)),
                ms(percentile(&run.lags, 0.99)),
                ms(run.lags.last().copied()),
                run.lags.len(),
                run.lost,
                thousands(run.load_rps),
                if run.ended_early { ", ENDED before the last probe" } else { "" },
                caught.as_secs_f64() * 1e3
            );
            res.lags[i].extend(run.lags);
            res.lost[i] += run.lost;
            res.load_rps[i].push(run.load_rps);
            res.ended_early[i] += u32::from(run.ended_early);
        }
    }
    for v in &mut res.lags {
        v.sort();
    }
    Ok(())
}

/// (2): a primary per kind filled with `--repl-keys` keys; each round a
/// fresh empty replica syncs from it.
fn full_sync(bin: &Path, dir: &Path, opts: &Options, failed: &mut Option<String>, res: &mut Results) -> Result<()> {
    let keys = opts.repl_keys;
    println!(
        "  (2) full sync: {} keys {}…{} with {VALUE_SIZE}-byte values (fixed generator) sent by redis-cli --pipe to \
         a fresh primary; each round a fresh empty replica, timed from REPLICAOF until master_link_status:up and \
         DBSIZE equal (bound {:?})",
        thousands(keys as f64),
        super::snapshot::key(0),
        super::snapshot::key(keys - 1),
        sync_timeout(keys)
    );
    let mut primaries: [Option<Running>; 2] = [None, None];
    for kind in KINDS {
        let i = ix(kind);
        let name = if kind == Kind::FastCache { "FastCache primary" } else { "Redis primary" };
        let s = spec(kind, bin, name, dir, "sync-primary");
        primaries[i] = attempt(kind, failed, "filling the full-sync primary", || {
            let mut server = start(&s)?;
            println!("  {:<17} {}", s.name, s.command_line(server.port));
            let took = fill(&mut server, keys)?;
            let n = Conn::open(&server)?.dbsize_now()?;
            if n != keys {
                bail!("{} holds {n} keys after a fill of {keys}", server.name);
            }
            eprintln!("filled {} with {} keys in {:.1} s", server.name, thousands(keys as f64), took.as_secs_f64());
            res.fill[i] = Some(took);
            Ok(server)
        })?;
    }
    for round in 0..opts.rounds {
        let order = if round % 2 == 0 { KINDS } else { [Kind::Redis, Kind::FastCache] };
        for kind in order {
            let i = ix(kind);
            let Some(primary) = primaries[i].as_mut() else { continue };
            let name = if kind == Kind::FastCache { "FastCache replica" } else { "Redis replica" };
            let s = spec(kind, bin, name, dir, &format!("sync-replica-{round}"));
            let run = attempt(kind, failed, "full sync", || {
                let mut replica = start(&s)?;
                if round == 0 {
                    println!("  {:<17} {}", s.name, s.command_line(replica.port));
                }
                let before = Conn::open(primary)?.syncs()?;
                let mut t = replicate(primary, &mut replica, sync_timeout(keys))?;
                if kind == Kind::Redis {
                    let mut r = Conn::open(&replica)?;
                    let deadline = t.at + sync_timeout(keys);
                    loop {
                        let info = r.info("persistence")?;
                        let busy = |f: &str| info_field(&info, f) != Some("0");
                        if !busy("aof_rewrite_in_progress") && !busy("aof_rewrite_scheduled") {
                            if info_field(&info, "aof_last_bgrewrite_status") != Some("ok") {
                                bail!("{}'s AOF rewrite after the sync failed:\n{}", replica.name, info.trim_end());
                            }
                            break;
                        }
                        if Instant::now() > deadline {
                            bail!("{}'s AOF rewrite after the sync was still running at the bound", replica.name);
                        }
                        std::thread::sleep(POLL);
                    }
                    t.aof_written = Some(t.at.elapsed());
                }
                let after = Conn::open(primary)?.syncs()?;
                if after.0 != before.0 + 1 {
                    bail!(
                        "{}'s sync_full went from {} to {} while an empty replica synced (one full sync expected)",
                        primary.name,
                        before.0,
                        after.0
                    );
                }
                replica.stop().with_context(|| format!("its log:\n{}", log_tail(&replica.log)))?;
                Ok(t)
            })?;
            let _ = std::fs::remove_dir_all(&s.data);
            let Some(t) = run else {
                primaries[i] = None;
                continue;
            };
            eprintln!(
                "round {}/{} full sync {:<17} {:>8.3} s (link up at {:.3} s{})",
                round + 1,
                opts.rounds,
                name,
                t.done.as_secs_f64(),
                t.up.as_secs_f64(),
                t.aof_written
                    .map_or(String::new(), |d| format!(", initial AOF rewrite done at {:.3} s", d.as_secs_f64()))
            );
            res.syncs[i].push(t);
        }
    }
    for kind in KINDS {
        if let Some(mut p) = primaries[ix(kind)].take() {
            attempt(kind, failed, "stopping the full-sync primary", || p.stop())?;
        }
    }
    Ok(())
}

fn print_table(res: &Results, opts: &Options, failed: Option<&str>) {
    let row = |label: &str, a: String, b: String, rest: String| {
        println!("{}", format!("{label:<52} {a:>18} {b:>18} {rest}").trim_end());
    };
    let dash = || "—".to_string();
    let cell = |v: Option<String>| v.unwrap_or_else(dash);
    let some = |v: f64| (!v.is_nan()).then_some(v);
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:>6.2}x", a / b),
        _ => format!("{:>7}", "—"),
    };
    let ops = |v: Option<f64>| cell(v.map(|v| format!("{} op/s", thousands(v))));
    let secs = |v: Option<f64>| cell(v.map(|v| format!("{v:.3} s")));
    let ms = |v: Option<f64>| cell(v.map(|v| format!("{v:.3} ms")));
    let rps = |v: &[Sample]| (!v.is_empty()).then(|| median_sample(v).rps);

    println!();
    row("replication", "FastCache".into(), "Redis".into(), format!("{:>7} {:>7}", "ratio", "target"));
    // (1)
    for (r, &(pipeline, _)) in ROWS.iter().enumerate() {
        let alone = [rps(&res.alone[0][r]), rps(&res.alone[1][r])];
        let with = [rps(&res.with[0][r]), rps(&res.with[1][r])];
        let head = if r == 0 { "(1)" } else { "   " };
        row(&format!("{head} SET -P {pipeline}, no replica"), ops(alone[0]), ops(alone[1]), ratio(alone[0], alone[1]));
        row(
            &format!("    SET -P {pipeline}, one replica attached"),
            ops(with[0]),
            ops(with[1]),
            ratio(with[0], with[1]),
        );
        let keep = |k: usize| with[k].zip(alone[k]).map(|(w, a)| w / a);
        let target = match keep(0) {
            Some(k) => format!("{:>7} {:>7} {}", "", format!("≥{WITH_TARGET:.2}x"), verdict(k >= WITH_TARGET)),
            None => String::new(),
        };
        row(
            "    one replica ÷ none (FastCache's target)",
            cell(keep(0).map(|k| format!("{k:.2}x"))),
            cell(keep(1).map(|k| format!("{k:.2}x"))),
            target,
        );
    }
    let catch = |k: usize| {
        some(median(res.catch_up[k].iter().map(|d| d.as_secs_f64() * 1e3).collect())).map(|m| {
            let max = res.catch_up[k].iter().max().map_or(0.0, |d| d.as_secs_f64() * 1e3);
            format!("{m:.1} / {max:.1} ms")
        })
    };
    row("    replica caught up after a run, median / max", cell(catch(0)), cell(catch(1)), String::new());
    let resync = |k: usize| res.resyncs[k].map(|(f, p)| format!("{f} full, {p} partial"));
    row("    resyncs during (1) and (3)", cell(resync(0)), cell(resync(1)), String::new());
    // (2)
    let sync = |k: usize, f: fn(&SyncTimes) -> Duration| {
        some(median(res.syncs[k].iter().map(|t| f(t).as_secs_f64()).collect()))
    };
    let (d0, d1) = (sync(0, |t| t.done), sync(1, |t| t.done));
    row(
        &format!("(2) full sync, {} keys: REPLICAOF → in sync", thousands(opts.repl_keys as f64)),
        secs(d0),
        secs(d1),
        ratio(d0, d1),
    );
    let (u0, u1) = (sync(0, |t| t.up), sync(1, |t| t.up));
    row("    of which to master_link_status:up", secs(u0), secs(u1), String::new());
    let aof = some(median(res.syncs[1].iter().filter_map(|t| t.aof_written).map(|d| d.as_secs_f64()).collect()));
    row("    to the replica's initial AOF rewrite done", "n/a (its WAL)".into(), secs(aof), String::new());
    let fill = |k: usize| res.fill[k].map(|d| opts.repl_keys as f64 / d.as_secs_f64());
    row(
        "    primary's fill (redis-cli --pipe)",
        cell(fill(0).map(|v| format!("{} SET/s", thousands(v)))),
        cell(fill(1).map(|v| format!("{} SET/s", thousands(v)))),
        String::new(),
    );
    // (3)
    let pct = |k: usize, q: f64| percentile(&res.lags[k], q).map(|d| d.as_secs_f64() * 1e3);
    for (label, q) in [(format!("(3) lag under SET -P {LAG_PIPELINE} load, p50"), 0.5), ("    p99".to_string(), 0.99)] {
        let (a, b) = (pct(0, q), pct(1, q));
        row(&label, ms(a), ms(b), ratio(a, b));
    }
    let max = |k: usize| res.lags[k].last().map(|d| d.as_secs_f64() * 1e3);
    row("    max", ms(max(0)), ms(max(1)), String::new());
    let seen = |k: usize| {
        (!res.lags[k].is_empty() || res.lost[k] > 0).then(|| format!("{} / {}", res.lags[k].len(), res.lost[k]))
    };
    row(
        &format!("    probes seen / not within {}s", PROBE_TIMEOUT.as_secs()),
        cell(seen(0)),
        cell(seen(1)),
        String::new(),
    );
    let load = |k: usize| some(median(res.load_rps[k].clone()));
    row("    primary's commands/s while probing", ops(load(0)), ops(load(1)), String::new());
    println!(
        "(ratio = FastCache ÷ Redis, medians of {} round(s), alternating; {CLIENTS} clients, -r {KEYSPACE}, \
         -d {VALUE_SIZE}; catch-up = the benchmark's end until the replica's slave_repl_offset reaches the \
         primary's master_repl_offset (key counts then checked equal); lag = the primary's +OK to the replica's \
         GET showing the probe's value, p50/p99 over all probes of all rounds)",
        opts.rounds
    );
    for k in 0..2 {
        if res.ended_early[k] > 0 {
            println!(
                "note: in {} round(s) of (3) {}'s load ended before the last probe",
                res.ended_early[k],
                ["FastCache", "Redis"][k]
            );
        }
    }
    if let Some(e) = failed {
        println!("FastCache: not measured (—) — {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let parse = |v: &[&str]| super::super::Options::parse(&args(v)).map(|o| (o.parts, o.repl_keys)).ok();
        assert_eq!(parse(&["--only", "replication"]), Some((vec![super::super::Part::Replication], 2_000_000)));
        assert_eq!(
            parse(&["--only=repl", "--repl-keys", "200000"]),
            Some((vec![super::super::Part::Replication], 200_000))
        );
        assert_eq!(parse(&["--only", "replica", "--repl-keys=10"]).map(|p| p.1), Some(1000));
        assert!(parse(&["--repl-keys"]).is_none());
        assert!(parse(&["--repl-keys", "many"]).is_none());
        let all = parse(&["--skip", "replication"]).map(|p| p.0);
        assert!(all.is_some_and(|p| !p.is_empty() && !p.contains(&super::super::Part::Replication)));
    }

    #[test]
    fn info_fields() {
        let info = "# Replication\r\nrole:master\r\nconnected_slaves:1\r\n\
                    slave0:ip=127.0.0.1,port=40001,state=online,offset=12345,lag=0\r\nmaster_repl_offset:12345\r\n";
        assert_eq!(number(info, "master_repl_offset").ok(), Some(12345));
        assert!(number(info, "slave_repl_offset").is_err());
        assert!(number("role:master\r\n", "role").is_err());
        let line = info_field(info, "slave0").unwrap_or("");
        assert_eq!(slave_field(line, "offset"), Some("12345"));
        assert_eq!(slave_field(line, "state"), Some("online"));
        assert_eq!(slave_field(line, "port"), Some("40001"));
        assert_eq!(slave_field(line, "off"), None);
        assert!(replica_online(info));
        assert!(!replica_online(&info.replace("online", "wait_bgsave")));
        assert!(!replica_online("connected_slaves:0\r\n"));
    }

    #[test]
    fn percentiles() {
        let v: Vec<Duration> = (1..=200).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 0.5), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&v, 0.99), Some(Duration::from_millis(198)));
        assert_eq!(percentile(&v, 1.0), Some(Duration::from_millis(200)));
        assert_eq!(percentile(&v[..1], 0.99), Some(Duration::from_millis(1)));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
