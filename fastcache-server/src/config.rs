//! Configuration from the environment.
//!
//! Every variable is read once at start. A bad value stops the server with
//! a message naming the variable, the value and what is accepted; nothing
//! falls back silently to a default.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use fastcache_core::EvictionPolicy;

/// How the WAL is flushed (`WAL_FSYNC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Reply only after the record is on stable storage.
    Always,
    /// Flush every `WAL_FLUSH_INTERVAL`.
    Interval,
    /// Leave flushing to the operating system.
    Never,
}

/// The server's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: IpAddr,
    pub port: u16,
    pub requirepass: Option<String>,
    pub maxmemory: u64,
    pub maxmemory_policy: EvictionPolicy,
    pub maxclients: usize,
    pub databases: usize,
    pub proto_max_bulk_len: usize,
    pub client_query_buffer_limit: usize,
    /// Close connections idle this long (0 = never), Redis' `timeout`.
    pub timeout_secs: u64,
    /// Threads serving connections.
    pub io_threads: usize,
    /// Where `/metrics` and `/health` are served (`None`: `off`).
    pub metrics_addr: Option<SocketAddr>,
    // Persistence (acted on by the persistence issues; validated here).
    pub enable_persistence: bool,
    pub enable_wal: bool,
    pub enable_snapshots: bool,
    pub enable_incremental_backup: bool,
    /// Where incremental backups go (`$PERSISTENCE_DIR/backups` by default).
    pub backup_dir: PathBuf,
    pub incremental_backup_interval: Duration,
    /// Backup chains to keep.
    pub backup_retain: usize,
    pub enable_crash_recovery: bool,
    pub enable_node_recovery: bool,
    pub recovery_timeout: Duration,
    pub persistence_dir: PathBuf,
    pub snapshot_interval: Duration,
    pub wal_flush_interval: Duration,
    pub wal_fsync: FsyncPolicy,
    pub max_snapshot_size: u64,
    /// How many snapshots to keep (the WAL is kept back to the oldest).
    pub snapshot_retain: usize,
    /// What opening the WAL does with damage in the middle of the log.
    pub wal_recovery: fastcache_wal::RecoveryMode,
    pub wal_segment_size: u64,
    /// `FASTCACHE_REPLICAOF`: start as a replica of this primary.
    pub replicaof: Option<(String, u16)>,
    /// `FASTCACHE_MASTERAUTH`: the password this node's replication link
    /// sends to its primary.
    pub masterauth: Option<String>,
}

/// One documented variable: name, default (as text), what it accepts.
pub struct Var {
    pub name: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

/// Every variable the server reads, for `--help` and for validation.
pub const VARS: &[Var] = &[
    Var { name: "FASTCACHE_BIND", default: "127.0.0.1", help: "address to listen on (an IP address)" },
    Var { name: "FASTCACHE_PORT", default: "6379", help: "TCP port (0-65535; 0 picks a free port)" },
    Var { name: "FASTCACHE_REQUIREPASS", default: "", help: "password clients must AUTH with (empty: none)" },
    Var { name: "FASTCACHE_MAXMEMORY", default: "0", help: "memory limit, e.g. 512mb, 2gb (0: none)" },
    Var {
        name: "FASTCACHE_MAXMEMORY_POLICY",
        default: "noeviction",
        help: "noeviction | allkeys-lru | volatile-lru | allkeys-lfu | volatile-lfu | allkeys-random | volatile-random | volatile-ttl",
    },
    Var { name: "FASTCACHE_MAXCLIENTS", default: "10000", help: "maximum simultaneous clients (1 or more)" },
    Var { name: "FASTCACHE_DATABASES", default: "16", help: "number of logical databases (1-1024)" },
    Var { name: "FASTCACHE_PROTO_MAX_BULK_LEN", default: "512mb", help: "largest bulk string a client may send" },
    Var {
        name: "FASTCACHE_CLIENT_QUERY_BUFFER_LIMIT",
        default: "1gb",
        help: "a client whose unparsed input grows past this is disconnected",
    },
    Var { name: "FASTCACHE_TIMEOUT", default: "0", help: "close clients idle this many seconds (0: never)" },
    Var {
        name: "FASTCACHE_IO_THREADS",
        default: "number of cores",
        help: "threads serving connections (1-256); each runs its own event loop",
    },
    Var {
        name: "FASTCACHE_METRICS_ADDR",
        default: "127.0.0.1:9121",
        help: "IP:port of the HTTP /metrics (Prometheus) and /health (JSON) endpoints, or off",
    },
    Var { name: "ENABLE_PERSISTENCE", default: "true", help: "true | false: master switch for all persistence" },
    Var { name: "ENABLE_WRITE_AHEAD_LOG", default: "true", help: "true | false" },
    Var { name: "ENABLE_SNAPSHOTS", default: "true", help: "true | false" },
    Var { name: "ENABLE_INCREMENTAL_BACKUP", default: "false", help: "true | false" },
    Var {
        name: "INCREMENTAL_BACKUP_INTERVAL",
        default: "1m",
        help: "duration between incremental backups (when keys changed)",
    },
    Var { name: "BACKUP_DIR", default: "", help: "backup directory (empty: $PERSISTENCE_DIR/backups)" },
    Var { name: "BACKUP_RETAIN_COUNT", default: "2", help: "backup chains (full + incrementals) to keep (1-100)" },
    Var { name: "ENABLE_CRASH_RECOVERY", default: "true", help: "true | false" },
    Var { name: "ENABLE_NODE_RECOVERY", default: "true", help: "true | false" },
    Var { name: "RECOVERY_TIMEOUT", default: "10m", help: "duration, e.g. 30s, 10m" },
    Var { name: "PERSISTENCE_DIR", default: "./data", help: "data directory" },
    Var { name: "SNAPSHOT_INTERVAL", default: "5m", help: "duration between snapshots" },
    Var { name: "WAL_FLUSH_INTERVAL", default: "1s", help: "duration between WAL flushes with WAL_FSYNC=interval" },
    Var { name: "WAL_FSYNC", default: "interval", help: "always | interval | never" },
    Var { name: "FASTCACHE_WAL_SEGMENT_SIZE", default: "64mb", help: "size of each WAL segment file (1mb-4gb)" },
    Var { name: "MAX_SNAPSHOT_SIZE", default: "1GB", help: "size; a larger snapshot is abandoned" },
    Var {
        name: "FASTCACHE_WAL_RECOVERY",
        default: "strict",
        help: "strict | point-in-time | skip-corrupted: damage in the middle of the WAL stops the start (strict), \
               or keeps the records before it (point-in-time) or all valid ones (skip-corrupted), losing the rest",
    },
    Var {
        name: "FASTCACHE_REPLICAOF",
        default: "",
        help: "host:port of a primary to replicate from at start (empty: start as a primary)",
    },
    Var {
        name: "FASTCACHE_MASTERAUTH",
        default: "",
        help: "password the replication link sends to the primary (its FASTCACHE_REQUIREPASS)",
    },
    Var {
        name: "SNAPSHOT_RETAIN_COUNT",
        default: "2",
        help: "snapshots to keep (1-100); the WAL is kept back to the oldest, for fallback",
    },
];

/// A configuration error: which variable, its value, what is accepted.
#[derive(Debug)]
pub struct ConfigError {
    pub var: &'static str,
    pub value: String,
    pub expected: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid {}={:?}: expected {}", self.var, self.value, self.expected)
    }
}

impl std::error::Error for ConfigError {}

/// Parses a size: a number with an optional unit (`b`, `kb`, `mb`, `gb`,
/// `k`, `m`, `g`, case-insensitive; 1kb = 1024 bytes, as Redis).
pub fn parse_size(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" | "kb" => 1 << 10,
        "m" | "mb" => 1 << 20,
        "g" | "gb" => 1 << 30,
        "t" | "tb" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mul)
}

/// Parses a duration: a number with a unit `ms`, `s`, `m`, `h` (a bare
/// number is seconds).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        _ => return None,
    })
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Some(true),
        "false" | "no" | "0" | "off" => Some(false),
        _ => None,
    }
}

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        let vars: BTreeMap<String, String> = std::env::vars().collect();
        Config::from_map(&vars)
    }

    /// Reads the configuration from a map of variables (tests use this).
    pub fn from_map(env: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
        let get = |name: &'static str| -> (&'static str, String) {
            let default = VARS.iter().find(|v| v.name == name).map_or("", |v| v.default);
            (name, env.get(name).cloned().unwrap_or_else(|| default.to_string()))
        };
        fn help(name: &str) -> String {
            VARS.iter().find(|v| v.name == name).map_or(String::new(), |v| v.help.to_string())
        }
        fn parse<T>((var, value): (&'static str, String), f: impl Fn(&str) -> Option<T>) -> Result<T, ConfigError> {
            f(&value).ok_or_else(|| ConfigError { var, expected: help(var), value })
        }
        let nonempty = |s: &str| if s.is_empty() { None } else { Some(s.to_string()) };
        let mut c = Config {
            bind: parse(get("FASTCACHE_BIND"), |s| s.trim().parse().ok())?,
            port: parse(get("FASTCACHE_PORT"), |s| s.trim().parse().ok())?,
            requirepass: nonempty(&get("FASTCACHE_REQUIREPASS").1),
            maxmemory: parse(get("FASTCACHE_MAXMEMORY"), parse_size)?,
            maxmemory_policy: parse(get("FASTCACHE_MAXMEMORY_POLICY"), |s| EvictionPolicy::parse(s.trim()))?,
            maxclients: parse(get("FASTCACHE_MAXCLIENTS"), |s| s.trim().parse().ok().filter(|&n: &usize| n >= 1))?,
            databases: parse(get("FASTCACHE_DATABASES"), |s| {
                s.trim().parse().ok().filter(|n: &usize| (1..=1024).contains(n))
            })?,
            proto_max_bulk_len: parse(get("FASTCACHE_PROTO_MAX_BULK_LEN"), |s| {
                parse_size(s).filter(|&n| n >= 1024).map(|n| n as usize)
            })?,
            client_query_buffer_limit: parse(get("FASTCACHE_CLIENT_QUERY_BUFFER_LIMIT"), |s| {
                parse_size(s).filter(|&n| n >= 1024).map(|n| n as usize)
            })?,
            timeout_secs: parse(get("FASTCACHE_TIMEOUT"), |s| s.trim().parse().ok())?,
            io_threads: match env.get("FASTCACHE_IO_THREADS") {
                None => std::thread::available_parallelism().map_or(2, |n| n.get()),
                Some(v) => parse(("FASTCACHE_IO_THREADS", v.clone()), |s| {
                    s.trim().parse().ok().filter(|n: &usize| (1..=256).contains(n))
                })?,
            },
            metrics_addr: parse(get("FASTCACHE_METRICS_ADDR"), |s| match s.trim() {
                off if off.eq_ignore_ascii_case("off") => Some(None),
                addr => addr.parse().ok().map(Some),
            })?,
            enable_persistence: parse(get("ENABLE_PERSISTENCE"), parse_bool)?,
            enable_wal: parse(get("ENABLE_WRITE_AHEAD_LOG"), parse_bool)?,
            enable_snapshots: parse(get("ENABLE_SNAPSHOTS"), parse_bool)?,
            enable_incremental_backup: parse(get("ENABLE_INCREMENTAL_BACKUP"), parse_bool)?,
            incremental_backup_interval: parse(get("INCREMENTAL_BACKUP_INTERVAL"), |s| {
                parse_duration(s).filter(|d| !d.is_zero())
            })?,
            backup_dir: PathBuf::new(),
            backup_retain: parse(get("BACKUP_RETAIN_COUNT"), |s| {
                s.trim().parse().ok().filter(|n: &usize| (1..=100).contains(n))
            })?,
            enable_crash_recovery: parse(get("ENABLE_CRASH_RECOVERY"), parse_bool)?,
            enable_node_recovery: parse(get("ENABLE_NODE_RECOVERY"), parse_bool)?,
            recovery_timeout: parse(get("RECOVERY_TIMEOUT"), parse_duration)?,
            persistence_dir: parse(get("PERSISTENCE_DIR"), |s| nonempty(s).map(PathBuf::from))?,
            snapshot_interval: parse(get("SNAPSHOT_INTERVAL"), |s| parse_duration(s).filter(|d| !d.is_zero()))?,
            wal_flush_interval: parse(get("WAL_FLUSH_INTERVAL"), |s| parse_duration(s).filter(|d| !d.is_zero()))?,
            wal_fsync: parse(get("WAL_FSYNC"), |s| match s.trim().to_ascii_lowercase().as_str() {
                "always" => Some(FsyncPolicy::Always),
                "interval" | "everysec" => Some(FsyncPolicy::Interval),
                "never" | "no" => Some(FsyncPolicy::Never),
                _ => None,
            })?,
            max_snapshot_size: parse(get("MAX_SNAPSHOT_SIZE"), |s| parse_size(s).filter(|&n| n > 0))?,
            wal_recovery: parse(get("FASTCACHE_WAL_RECOVERY"), |s| match s.trim().to_ascii_lowercase().as_str() {
                "strict" => Some(fastcache_wal::RecoveryMode::TolerateTornTail),
                "point-in-time" => Some(fastcache_wal::RecoveryMode::PointInTime),
                "skip-corrupted" => Some(fastcache_wal::RecoveryMode::SkipCorrupted),
                _ => None,
            })?,
            snapshot_retain: parse(get("SNAPSHOT_RETAIN_COUNT"), |s| {
                s.trim().parse().ok().filter(|n: &usize| (1..=100).contains(n))
            })?,
            wal_segment_size: parse(get("FASTCACHE_WAL_SEGMENT_SIZE"), |s| {
                parse_size(s).filter(|n| (1 << 20..=4 << 30).contains(n))
            })?,
            replicaof: parse(get("FASTCACHE_REPLICAOF"), |s| match s.trim() {
                "" => Some(None),
                hp => parse_host_port(hp).map(Some),
            })?,
            masterauth: nonempty(&get("FASTCACHE_MASTERAUTH").1),
        };
        let dir = get("BACKUP_DIR").1;
        c.backup_dir =
            if dir.trim().is_empty() { c.persistence_dir.join("backups") } else { PathBuf::from(dir.trim()) };
        Ok(c)
    }
}

/// `host:port` (the host non-empty, the port 1-65535).
fn parse_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|&p| p > 0)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| (host.to_string(), port))
}

impl Config {
    /// The persistence settings as `NAME=value` pairs, for the start-up log.
    pub fn persistence_summary(&self) -> String {
        let fsync = match self.wal_fsync {
            FsyncPolicy::Always => "always",
            FsyncPolicy::Interval => "interval",
            FsyncPolicy::Never => "never",
        };
        format!(
            "ENABLE_PERSISTENCE={} ENABLE_WRITE_AHEAD_LOG={} ENABLE_SNAPSHOTS={} ENABLE_INCREMENTAL_BACKUP={} \
             ENABLE_CRASH_RECOVERY={} ENABLE_NODE_RECOVERY={} RECOVERY_TIMEOUT={:?} PERSISTENCE_DIR={} \
             SNAPSHOT_INTERVAL={:?} WAL_FLUSH_INTERVAL={:?} WAL_FSYNC={fsync} MAX_SNAPSHOT_SIZE={} SNAPSHOT_RETAIN_COUNT={}",
            self.enable_persistence,
            self.enable_wal,
            self.enable_snapshots,
            self.enable_incremental_backup,
            self.enable_crash_recovery,
            self.enable_node_recovery,
            self.recovery_timeout,
            self.persistence_dir.display(),
            self.snapshot_interval,
            self.wal_flush_interval,
            self.max_snapshot_size,
            self.snapshot_retain,
        )
    }
}

/// The text of `fastcache-server --help`.
pub fn help_text() -> String {
    let mut s = format!(
        "fastcache-server {} — a Redis-compatible, durable in-memory data store\n\n\
         Usage: fastcache-server [--help | --version]\n\n\
         Configuration comes from environment variables (default in brackets):\n",
        env!("CARGO_PKG_VERSION")
    );
    for v in VARS {
        s.push_str(&format!("  {:<38} [{}]\n      {}\n", v.name, v.default, v.help));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults() {
        let c = Config::from_map(&env(&[])).map_err(|e| e.to_string());
        let c = c.as_ref().map_err(String::as_str);
        assert_eq!(c.map(|c| c.port), Ok(6379));
        assert_eq!(c.map(|c| c.bind.to_string()), Ok("127.0.0.1".to_string()));
        assert_eq!(c.map(|c| c.wal_fsync), Ok(FsyncPolicy::Interval));
        assert_eq!(c.map(|c| c.snapshot_interval), Ok(Duration::from_secs(300)));
        assert_eq!(c.map(|c| c.max_snapshot_size), Ok(1 << 30));
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = Config::from_map(&env(&[("FASTCACHE_PORT", "70000")])).err().map(|e| e.to_string());
        assert_eq!(
            e,
            Some("invalid FASTCACHE_PORT=\"70000\": expected TCP port (0-65535; 0 picks a free port)".into())
        );
        let e = Config::from_map(&env(&[("FASTCACHE_MAXMEMORY_POLICY", "lru")])).err().map(|e| e.var);
        assert_eq!(e, Some("FASTCACHE_MAXMEMORY_POLICY"));
        let e = Config::from_map(&env(&[("WAL_FSYNC", "sometimes")])).err().map(|e| e.var);
        assert_eq!(e, Some("WAL_FSYNC"));
        let e = Config::from_map(&env(&[("SNAPSHOT_INTERVAL", "5 parsecs")])).err().map(|e| e.var);
        assert_eq!(e, Some("SNAPSHOT_INTERVAL"));
    }

    #[test]
    fn metrics_address() {
        let addr = |v: Option<&str>| {
            let pairs: Vec<(&str, &str)> = v.map(|v| ("FASTCACHE_METRICS_ADDR", v)).into_iter().collect();
            Config::from_map(&env(&pairs)).map(|c| c.metrics_addr.map(|a| a.to_string())).map_err(|e| e.var)
        };
        assert_eq!(addr(None), Ok(Some("127.0.0.1:9121".into())));
        assert_eq!(addr(Some("0.0.0.0:9000")), Ok(Some("0.0.0.0:9000".into())));
        assert_eq!(addr(Some("[::1]:0")), Ok(Some("[::1]:0".into())));
        assert_eq!(addr(Some("off")), Ok(None));
        assert_eq!(addr(Some("OFF")), Ok(None));
        for bad in ["", "9121", "localhost:9121", "127.0.0.1", "127.0.0.1:70000", "no"] {
            assert_eq!(addr(Some(bad)), Err("FASTCACHE_METRICS_ADDR"), "{bad:?}");
        }
    }

    #[test]
    fn replicaof() {
        let of =
            |v: &str| Config::from_map(&env(&[("FASTCACHE_REPLICAOF", v)])).map(|c| c.replicaof).map_err(|e| e.var);
        assert_eq!(of(""), Ok(None));
        assert_eq!(of("127.0.0.1:7000"), Ok(Some(("127.0.0.1".into(), 7000))));
        assert_eq!(of("primary.local:6379"), Ok(Some(("primary.local".into(), 6379))));
        assert_eq!(of("[::1]:6379"), Ok(Some(("::1".into(), 6379))));
        for bad in ["7000", "host:", ":7000", "host:0", "host:70000", "host:port"] {
            assert_eq!(of(bad), Err("FASTCACHE_REPLICAOF"), "{bad:?}");
        }
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("64KB"), Some(65536));
        assert_eq!(parse_size("1gb"), Some(1 << 30));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("1.5gb"), None);
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("x"), None);
    }
}
