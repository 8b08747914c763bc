//! `cargo xtask bench` — FastCache against Redis with the same
//! `redis-benchmark` runs, side by side.
//!
//! Both servers run on this machine on free 127.0.0.1 ports with
//! persistence off; the runs alternate between them round by round so that
//! drift in the machine's load hits both alike, and each row reports the
//! median of the rounds.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The benchmark's settings (`cargo xtask bench --requests N --rounds R`).
struct Options {
    requests: u64,
    rounds: usize,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options> {
        let mut o = Options { requests: 200_000, rounds: 3 };
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = |name: &str| -> Result<u64> {
                let v = it.next().with_context(|| format!("{name} needs a value"))?;
                v.parse().with_context(|| format!("{name} {v:?}: expected a positive integer"))
            };
            match a.as_str() {
                "server" => {}
                "--requests" | "-n" => o.requests = value("--requests")?.max(1000),
                "--rounds" => o.rounds = value("--rounds")?.clamp(1, 20) as usize,
                other => bail!("unknown bench option {other:?}; usage: cargo xtask bench [--requests N] [--rounds R] | bench engine [criterion args]"),
            }
        }
        Ok(o)
    }
}

/// One comparison row: a label and the redis-benchmark arguments.
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

const CLIENTS: u32 = 50;
const KEYSPACE: u32 = 100_000;
const VALUE_SIZE: u32 = 64;
/// Longest a single redis-benchmark run may take.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

/// One redis-benchmark result.
#[derive(Debug, Clone, Copy)]
struct Sample {
    rps: f64,
    avg_ms: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// A server process we started; stopped (SHUTDOWN, then kill) on drop, so
/// an error anywhere in the benchmark still cleans up.
struct Running {
    name: &'static str,
    child: Child,
    port: u16,
}

impl Running {
    fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
            let _ = s.write_all(b"SHUTDOWN NOSAVE\r\n");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        eprintln!("{} did not stop after SHUTDOWN; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
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

/// Waits until the server on `port` answers PING, or fails.
fn wait_ready(server: &mut Running, log: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(st)) = server.child.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            bail!("{} exited during start-up ({st}):\n{text}", server.name);
        }
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", server.port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 7];
            if s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n" {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("{} on port {} did not answer PING within 20 s", server.name, server.port);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start_fastcache(bin: &Path, dir: &Path) -> Result<Running> {
    let log = dir.join("fastcache.log");
    let mut child = Command::new(bin)
        .env("FASTCACHE_PORT", "0")
        .env("FASTCACHE_BIND", "127.0.0.1")
        .env("ENABLE_PERSISTENCE", "false")
        .env("FASTCACHE_METRICS_ADDR", "off")
        .env("PERSISTENCE_DIR", dir.join("fastcache-data"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).context("creating the FastCache log")?)
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    // The first stdout line names the port; keep draining the rest.
    let (tx, rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
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
    let port = rx
        .recv_timeout(Duration::from_secs(20))
        .ok()
        .filter(|l| l.contains("listening on"))
        .and_then(|l| l.rsplit(':').next().and_then(|p| p.trim().parse::<u16>().ok()));
    let Some(port) = port else {
        let _ = child.kill();
        let _ = child.wait();
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        bail!("FastCache did not report its port:\n{text}");
    };
    let mut server = Running { name: "FastCache", child, port };
    wait_ready(&mut server, &log)?;
    Ok(server)
}

fn start_redis(dir: &Path) -> Result<Running> {
    let port = free_port()?;
    let log = dir.join("redis.log");
    let redis_dir = dir.join("redis-data");
    std::fs::create_dir_all(&redis_dir)?;
    let port_s = port.to_string();
    let child = Command::new("redis-server")
        .args(["--port", &port_s, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"])
        .arg("--dir")
        .arg(&redis_dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).context("creating the Redis log")?)
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting redis-server")?;
    let mut server = Running { name: "Redis", child, port };
    wait_ready(&mut server, &log)?;
    Ok(server)
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

/// Runs one redis-benchmark against `port`.
fn run_benchmark(port: u16, row: &Row, requests: u64) -> Result<Sample> {
    let args = [
        "-h".to_string(),
        "127.0.0.1".to_string(),
        "-p".to_string(),
        port.to_string(),
        "-t".to_string(),
        row.test.to_ascii_lowercase(),
        "-c".to_string(),
        CLIENTS.to_string(),
        "-P".to_string(),
        row.pipeline.to_string(),
        "-n".to_string(),
        (requests * row.scale).to_string(),
        "-r".to_string(),
        KEYSPACE.to_string(),
        "-d".to_string(),
        VALUE_SIZE.to_string(),
        "--csv".to_string(),
    ];
    let mut child = Command::new("redis-benchmark")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting redis-benchmark")?;
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
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("redis-benchmark {} did not finish within {RUN_TIMEOUT:?}", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    if !status.success() {
        bail!("redis-benchmark {} failed ({status}):\n{out}{err}", args.join(" "));
    }
    if err.contains("Error") || out.contains("Error") {
        bail!("redis-benchmark {} reported errors:\n{out}{err}", args.join(" "));
    }
    parse_csv(&out, row.test)
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

/// Builds the release server, starts FastCache and Redis, runs every row
/// against both, prints the table, and stops both servers.
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
    let fastcache = start_fastcache(&bin, &scratch.0)?;
    let redis = start_redis(&scratch.0)?;
    let servers = [&fastcache, &redis];

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "FastCache {} vs Redis {} — redis-benchmark {}; {cores} cores shared by both servers and redis-benchmark",
        env!("CARGO_PKG_VERSION"),
        version_of("redis-server"),
        version_of("redis-benchmark"),
    );
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
            // Alternate who goes first so neither always runs on a warmer machine.
            let order: [usize; 2] = if (round + r) % 2 == 0 { [0, 1] } else { [1, 0] };
            for &s in &order {
                let sample = run_benchmark(servers[s].port, row, opts.requests)
                    .with_context(|| format!("{} on {}", row.label, servers[s].name))?;
                eprintln!(
                    "round {}/{} {:<10} {:<9} {:>12} ops/s  p50 {:.3} ms  p99 {:.3} ms",
                    round + 1,
                    opts.rounds,
                    row.label,
                    servers[s].name,
                    thousands(sample.rps),
                    sample.p50_ms,
                    sample.p99_ms
                );
                results[r][s].push(sample);
            }
        }
    }
    drop(redis);
    drop(fastcache);

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
    println!("(ratio = FastCache ops/s ÷ Redis ops/s; benchmark time {:.0} s)", started.elapsed().as_secs_f64());
    Ok(())
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
    }

    #[test]
    fn options() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let o = Options::parse(&args(&["--requests", "5000", "--rounds", "2"])).map(|o| (o.requests, o.rounds));
        assert_eq!(o.ok(), Some((5000, 2)));
        assert!(Options::parse(&args(&["--bogus"])).is_err());
        assert!(Options::parse(&args(&["--rounds"])).is_err());
    }
}
