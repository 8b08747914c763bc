//! INFO, with Redis 7.0's sections and field names wherever the concept
//! applies to FastCache, and the counters behind it (instantaneous rates,
//! peak memory, CONFIG RESETSTAT).
//!
//! What FastCache does not have is left out rather than faked: there is no
//! error statistics section, and command statistics count calls and failed
//! calls but not time (`usec=0`). The replication section comes from
//! `replication::info_fields` (offsets are WAL LSNs), the persistence
//! section from the persistence layer.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fastcache_core::{Reply, Stats};
use parking_lot::Mutex;

use crate::admin::REDIS_COMPAT_VERSION;
use crate::connection::Conn;
use crate::server::Shared;

/// Samples kept for the instantaneous rates, as Redis (`STATS_METRIC_SAMPLES`).
const SAMPLES: usize = 16;
/// How often the rates are sampled, as Redis' 100 ms cron period.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// The background cycle's fixed frequency (INFO `hz`).
const ACTUAL_HZ: u32 = 10;

/// INFO's derived counters, kept in `ServerStats`.
#[derive(Default)]
pub struct InfoState {
    /// Engine counters at the last CONFIG RESETSTAT; INFO reports the
    /// difference, since the engine's own counters cannot be reset.
    engine_baseline: Mutex<Stats>,
    ops_per_sec: AtomicU64,
    /// KB/s × 100, so that two decimals survive an integer.
    input_kbps_x100: AtomicU64,
    output_kbps_x100: AtomicU64,
    peak_memory: AtomicU64,
}

/// One sample of the counters the rates are computed from.
#[derive(Clone, Copy)]
struct Point {
    at: Instant,
    commands: u64,
    input: u64,
    output: u64,
}

#[derive(Default)]
struct Rates {
    ops: [u64; SAMPLES],
    input: [f64; SAMPLES],
    output: [f64; SAMPLES],
    next: usize,
}

fn point(shared: &Shared) -> Point {
    let s = &shared.stats;
    Point {
        at: Instant::now(),
        commands: s.commands_processed.load(Ordering::Relaxed),
        input: s.net_input_bytes.load(Ordering::Relaxed),
        output: s.net_output_bytes.load(Ordering::Relaxed),
    }
}

/// Samples the counters every 100 ms for `instantaneous_*` (averaged over
/// the last 16 samples, as Redis) and tracks peak memory. Runs until the
/// server stops.
pub async fn sampler(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = point(&shared);
    let mut rates = Rates::default();
    loop {
        tick.tick().await;
        let now = point(&shared);
        let ms = now.at.duration_since(last.at).as_millis().max(1) as u64;
        // A RESETSTAT between samples makes a counter go backwards.
        let per_sec = |a: u64, b: u64| a.saturating_sub(b) * 1000 / ms;
        let i = rates.next;
        rates.ops[i] = per_sec(now.commands, last.commands);
        rates.input[i] = per_sec(now.input, last.input) as f64 / 1024.0;
        rates.output[i] = per_sec(now.output, last.output) as f64 / 1024.0;
        rates.next = (i + 1) % SAMPLES;
        last = now;
        let st = &shared.stats.info;
        st.ops_per_sec.store(rates.ops.iter().sum::<u64>() / SAMPLES as u64, Ordering::Relaxed);
        let avg = |v: &[f64; SAMPLES]| (v.iter().sum::<f64>() / SAMPLES as f64 * 100.0).round() as u64;
        st.input_kbps_x100.store(avg(&rates.input), Ordering::Relaxed);
        st.output_kbps_x100.store(avg(&rates.output), Ordering::Relaxed);
        st.peak_memory.fetch_max(shared.engine.used_memory(), Ordering::Relaxed);
    }
}

/// CONFIG RESETSTAT: zeroes the server's counters and re-bases the
/// engine's (expired, evicted, keyspace hits and misses).
pub fn reset_stats(shared: &Shared) {
    let s = &shared.stats;
    for c in [
        &s.connections_received,
        &s.rejected_connections,
        &s.commands_processed,
        &s.net_input_bytes,
        &s.net_output_bytes,
    ] {
        c.store(0, Ordering::Relaxed);
    }
    *s.info.engine_baseline.lock() = shared.engine.stats();
    crate::metrics::reset_command_counts();
    s.info.peak_memory.store(shared.engine.used_memory(), Ordering::Relaxed);
}

/// The engine's counters since the last RESETSTAT.
fn engine_stats(shared: &Shared) -> Stats {
    let now = shared.engine.stats();
    let base = *shared.stats.info.engine_baseline.lock();
    Stats {
        expired_keys: now.expired_keys.saturating_sub(base.expired_keys),
        evicted_keys: now.evicted_keys.saturating_sub(base.evicted_keys),
        keyspace_hits: now.keyspace_hits.saturating_sub(base.keyspace_hits),
        keyspace_misses: now.keyspace_misses.saturating_sub(base.keyspace_misses),
        dirty: now.dirty,
    }
}

/// Sections in Redis' output order.
const SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "cluster",
    "keyspace",
];

/// Sections only `all`, `everything` or their own name select, as Redis.
const NOT_DEFAULT: &[&str] = &["commandstats"];

/// Which sections INFO's arguments ask for: none means `default`; `all`,
/// `default` and `everything` are every section FastCache has; unknown
/// names select nothing, as in Redis.
fn wanted(args: &[&[u8]]) -> Vec<&'static str> {
    let names: Vec<String> = if args.is_empty() {
        vec!["default".to_string()]
    } else {
        args.iter().map(|a| String::from_utf8_lossy(a).to_ascii_lowercase()).collect()
    };
    let all = names.iter().any(|n| matches!(n.as_str(), "all" | "everything"));
    let default = names.iter().any(|n| n == "default");
    SECTIONS
        .iter()
        .copied()
        .filter(|s| all || (default && !NOT_DEFAULT.contains(s)) || names.iter().any(|n| n == s))
        .collect()
}

/// Redis' `bytesToHuman`.
pub fn human_bytes(n: u64) -> String {
    let d = n as f64;
    const K: f64 = 1024.0;
    if n < 1024 {
        format!("{n}B")
    } else if d < K * K {
        format!("{:.2}K", d / K)
    } else if d < K * K * K {
        format!("{:.2}M", d / (K * K))
    } else if d < K * K * K * K {
        format!("{:.2}G", d / (K * K * K))
    } else if d < K * K * K * K * K {
        format!("{:.2}T", d / (K * K * K * K))
    } else {
        format!("{:.2}P", d / (K * K * K * K * K))
    }
}

/// A `Name: N kB` line of a /proc file, in bytes.
fn proc_kb(path: &str, field: &str) -> u64 {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Resident set size in bytes (0 where /proc is not available). VmRSS is
/// statm's resident pages already multiplied by the page size.
fn rss_bytes() -> u64 {
    proc_kb("/proc/self/status", "VmRSS:")
}

/// User and system CPU seconds of this process, from /proc/self/stat
/// (`utime` and `stime`, in clock ticks of 1/100 s: Linux' USER_HZ is 100).
fn cpu_seconds() -> (f64, f64) {
    let text = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name may contain spaces; fields resume after its ')'.
    let rest = text.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0) as f64 / 100.0;
    (ticks(11), ticks(12))
}

/// `Linux 6.1.0 x86_64`, as Redis' `uname` line.
fn os_line() -> String {
    let read = |p: &str| std::fs::read_to_string(p).map(|s| s.trim().to_string()).ok();
    let sys = read("/proc/sys/kernel/ostype").unwrap_or_else(|| std::env::consts::OS.to_string());
    match read("/proc/sys/kernel/osrelease") {
        Some(rel) => format!("{sys} {rel} {}", std::env::consts::ARCH),
        None => format!("{sys} {}", std::env::consts::ARCH),
    }
}

fn unix_now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// Counts from PUBSUB's own answers (the broker's only public view).
fn pubsub_counts(conn: &mut Conn) -> (usize, usize) {
    let channels = match crate::pubsub::pubsub_command(conn, &[b"pubsub", b"channels"]) {
        Reply::Array(v) => v.len(),
        _ => 0,
    };
    let patterns = match crate::pubsub::pubsub_command(conn, &[b"pubsub", b"numpat"]) {
        Reply::Int(n) => n.max(0) as usize,
        _ => 0,
    };
    (channels, patterns)
}

fn section(out: &mut String, conn: &mut Conn, name: &str) {
    let shared = conn.shared.clone();
    let sh = &*shared;
    let mut line = |k: &str, v: &dyn std::fmt::Display| {
        let _ = write!(out, "{k}:{v}\r\n");
    };
    match name {
        "server" => {
            let up = sh.started.elapsed().as_secs();
            let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default();
            let params = sh.params.read();
            line("redis_version", &REDIS_COMPAT_VERSION);
            line("fastcache_version", &env!("CARGO_PKG_VERSION"));
            line("redis_mode", &"standalone");
            line("os", &os_line());
            line("arch_bits", &usize::BITS);
            line("multiplexing_api", &if cfg!(target_os = "linux") { "epoll" } else { "kqueue" });
            line("process_id", &std::process::id());
            line("run_id", &sh.run_id);
            line("tcp_port", &sh.port);
            line("server_time_usec", &unix_now().as_micros());
            line("uptime_in_seconds", &up);
            line("uptime_in_days", &(up / 86400));
            line("hz", &ACTUAL_HZ);
            line("configured_hz", &params.hz);
            line("executable", &exe);
            line("config_file", &"");
        }
        "clients" => {
            // As Redis: replicas' streams are not counted.
            let connected = sh.clients.lock().values().filter(|c| !c.replica.load(Ordering::Relaxed)).count();
            line("connected_clients", &connected);
            line("maxclients", &sh.params.read().maxclients);
            line("blocked_clients", &sh.blocking.blocked_count());
        }
        "memory" => {
            let used = sh.engine.used_memory();
            let peak = sh.stats.info.peak_memory.fetch_max(used, Ordering::Relaxed).max(used);
            let rss = rss_bytes();
            let total = proc_kb("/proc/meminfo", "MemTotal:");
            let max = sh.engine.maxmemory();
            line("used_memory", &used);
            line("used_memory_human", &human_bytes(used));
            line("used_memory_rss", &rss);
            line("used_memory_rss_human", &human_bytes(rss));
            line("used_memory_peak", &peak);
            line("used_memory_peak_human", &human_bytes(peak));
            line("total_system_memory", &total);
            line("total_system_memory_human", &human_bytes(total));
            line("maxmemory", &max);
            line("maxmemory_human", &human_bytes(max));
            line("maxmemory_policy", &sh.engine.maxmemory_policy().name());
            line("mem_allocator", &"mimalloc");
        }
        "persistence" => {
            for (k, v) in sh.loading.info_fields() {
                line(k, &v);
            }
            let p = sh.persistence();
            let snap_fields = p.map(|p| p.redis_snapshot_fields()).unwrap_or_default();
            if snap_fields.is_empty() {
                line("rdb_changes_since_last_save", &sh.engine.dirty());
                line("rdb_bgsave_in_progress", &0);
                line("rdb_last_bgsave_status", &"ok");
                line("aof_rewrite_in_progress", &0);
            }
            let last_snap = p.and_then(|p| p.snapshots.as_ref()).map_or(0, |s| s.last_save_unix());
            let last_save = if last_snap > 0 { last_snap } else { sh.last_save_unix.load(Ordering::Relaxed) };
            line("rdb_last_save_time", &last_save);
            for (k, v) in snap_fields {
                line(k, &v);
            }
            line("aof_enabled", &u8::from(p.is_some()));
            match p {
                Some(p) => {
                    for (k, v) in
                        p.info_fields().into_iter().chain(p.snapshot_info_fields()).chain(p.backup_info_fields())
                    {
                        line(k, &v);
                    }
                }
                None if sh.loading.is_active() => line("fastcache_persistence", &"loading"),
                None => line("fastcache_persistence", &"disabled"),
            }
        }
        "stats" => {
            let s = &sh.stats;
            let e = engine_stats(sh);
            let kbps = |a: &AtomicU64| format!("{:.2}", a.load(Ordering::Relaxed) as f64 / 100.0);
            line("total_connections_received", &s.connections_received.load(Ordering::Relaxed));
            line("total_commands_processed", &s.commands_processed.load(Ordering::Relaxed));
            line("instantaneous_ops_per_sec", &s.info.ops_per_sec.load(Ordering::Relaxed));
            line("total_net_input_bytes", &s.net_input_bytes.load(Ordering::Relaxed));
            line("total_net_output_bytes", &s.net_output_bytes.load(Ordering::Relaxed));
            line("instantaneous_input_kbps", &kbps(&s.info.input_kbps_x100));
            line("instantaneous_output_kbps", &kbps(&s.info.output_kbps_x100));
            line("rejected_connections", &s.rejected_connections.load(Ordering::Relaxed));
            let r = &sh.replication;
            line("sync_full", &r.sync_full.load(Ordering::Relaxed));
            line("sync_partial_ok", &r.sync_partial_ok.load(Ordering::Relaxed));
            line("sync_partial_err", &r.sync_partial_err.load(Ordering::Relaxed));
            line("expired_keys", &e.expired_keys);
            line("evicted_keys", &e.evicted_keys);
            line("keyspace_hits", &e.keyspace_hits);
            line("keyspace_misses", &e.keyspace_misses);
            let (channels, patterns) = pubsub_counts(conn);
            let _ = write!(out, "pubsub_channels:{channels}\r\npubsub_patterns:{patterns}\r\n");
        }
        "replication" => {
            for (k, v) in crate::replication::info_fields(sh) {
                line(&k, &v);
            }
        }
        "cpu" => {
            let (user, sys) = cpu_seconds();
            line("used_cpu_sys", &format!("{sys:.6}"));
            line("used_cpu_user", &format!("{user:.6}"));
            line("used_cpu_sys_children", &"0.000000");
            line("used_cpu_user_children", &"0.000000");
        }
        "cluster" => line("cluster_enabled", &0),
        "commandstats" => {
            // FastCache does not time commands: usec stays 0. Rejected calls
            // (NOAUTH and the like) are not counted; every error reply of an
            // executed command is a failed call.
            for c in crate::metrics::command_counts_since_reset().0 {
                let _ = write!(
                    out,
                    "cmdstat_{}:calls={},usec=0,usec_per_call=0.00,rejected_calls=0,failed_calls={}\r\n",
                    c.name, c.calls, c.errors
                );
            }
        }
        "keyspace" => {
            for (db, keys, expires) in sh.engine.keyspace_info() {
                let _ = write!(out, "db{db}:keys={keys},expires={expires},avg_ttl=0\r\n");
            }
        }
        // FastCache loads no modules: the section is present and empty.
        _ => {}
    }
}

/// INFO [section ...].
pub fn info(conn: &mut Conn, argv: &[&[u8]]) -> Reply {
    let mut out = String::with_capacity(4096);
    for (i, name) in wanted(&argv[1..]).into_iter().enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        let mut title: Vec<char> = name.chars().collect();
        if let Some(c) = title.first_mut() {
            *c = c.to_ascii_uppercase();
        }
        let title: String = if name == "cpu" { "CPU".into() } else { title.into_iter().collect() };
        let _ = write!(out, "# {title}\r\n");
        section(&mut out, conn, name);
    }
    Reply::Bulk(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human() {
        assert_eq!(human_bytes(0), "0B");
        assert_eq!(human_bytes(1023), "1023B");
        assert_eq!(human_bytes(1024), "1.00K");
        assert_eq!(human_bytes(941136), "919.08K");
        assert_eq!(human_bytes(100 << 20), "100.00M");
        assert_eq!(human_bytes(3 << 30), "3.00G");
    }

    #[test]
    fn section_selection() {
        let default: Vec<&str> = SECTIONS.iter().copied().filter(|s| *s != "commandstats").collect();
        assert_eq!(wanted(&[]), default);
        assert_eq!(wanted(&[b"default"]), default);
        assert_eq!(wanted(&[b"EVERYTHING"]), SECTIONS.to_vec());
        assert_eq!(wanted(&[b"all"]), SECTIONS.to_vec());
        assert_eq!(wanted(&[b"keyspace", b"Server"]), vec!["server", "keyspace"]);
        assert!(wanted(&[b"nope"]).is_empty());
        assert_eq!(wanted(&[b"commandstats"]), vec!["commandstats"]);
        assert_eq!(wanted(&[b"default", b"commandstats"]), SECTIONS.to_vec());
    }

    #[test]
    fn proc_readers_do_not_fail() {
        let (user, sys) = cpu_seconds();
        assert!(user >= 0.0 && sys >= 0.0);
        if cfg!(target_os = "linux") {
            assert!(rss_bytes() > 0);
            assert!(os_line().starts_with("Linux "));
        }
    }
}
