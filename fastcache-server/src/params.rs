//! Runtime parameters: what CONFIG GET/SET read and change.
//!
//! Typed fields are the ones the server acts on; `extra` keeps Redis'
//! tuning parameters that do not apply to FastCache (encoding thresholds
//! and the like) so that tools setting them keep working. The memory
//! limit, the eviction policy and the keyspace notification classes live
//! in the engine, which is their single source of truth.

use std::collections::BTreeMap;
use std::path::Path;

use fastcache_core::util::{glob_match, parse_i64};
use fastcache_core::{errors, EvictionPolicy, Reply};

use crate::config::Config;
use crate::connection::Conn;
use crate::server::Shared;

/// The parameters in force.
#[derive(Debug, Clone)]
pub struct Params {
    pub requirepass: Option<String>,
    pub maxclients: usize,
    pub proto_max_bulk_len: usize,
    pub client_query_buffer_limit: usize,
    pub timeout_secs: u64,
    /// Redis' `hz` as configured (clamped to 1..=500 as Redis does). The
    /// background cycle itself runs at a fixed 10 Hz.
    pub hz: i64,
    /// Kept and echoed: eviction samples a fixed number of keys.
    pub maxmemory_samples: i64,
    /// Kept and echoed: the engine keeps Redis' LFU defaults (10 and 1).
    pub lfu_log_factor: i64,
    /// Kept and echoed, as `lfu_log_factor`.
    pub lfu_decay_time: i64,
    /// Parameters accepted, kept and echoed back, by canonical name.
    pub extra: BTreeMap<String, String>,
}

impl Params {
    pub fn new(config: &Config) -> Params {
        let extra = PARAMS
            .iter()
            .filter_map(|p| match p.kind {
                Kind::Extra(_, default) => Some((p.name.to_string(), default.to_string())),
                _ => None,
            })
            .collect();
        Params {
            requirepass: config.requirepass.clone(),
            maxclients: config.maxclients,
            proto_max_bulk_len: config.proto_max_bulk_len,
            client_query_buffer_limit: config.client_query_buffer_limit,
            timeout_secs: config.timeout_secs,
            hz: 10,
            maxmemory_samples: 5,
            lfu_log_factor: 10,
            lfu_decay_time: 1,
            extra,
        }
    }
}

/// How a value is checked and normalised (Redis' config types).
#[derive(Debug, Clone, Copy)]
enum Check {
    /// An integer within a range.
    Int(i64, i64),
    /// A memory value (`100mb`, `1gb`, `1k`) within a range.
    Memory(u64, u64),
    /// `yes` or `no`.
    Bool,
    /// One of these words.
    Enum(&'static [&'static str]),
}

/// Where a parameter's value lives.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Maxmemory,
    MaxmemoryPolicy,
    Requirepass,
    Maxclients,
    NotifyKeyspaceEvents,
    Timeout,
    ProtoMaxBulkLen,
    ClientQueryBufferLimit,
    Hz,
    MaxmemorySamples,
    LfuLogFactor,
    LfuDecayTime,
    /// Fixed by the environment at start (`databases`, `port`, `bind`, `dir`).
    Immutable,
    /// Persistence switches FastCache does not take from CONFIG SET: only
    /// the value that is true (`no`, `""`) is accepted.
    Fixed(&'static str),
    /// Kept in `Params::extra`, with its check and Redis' default.
    Extra(Check, &'static str),
}

/// One parameter: its name, an alias (Redis 7 renamed the ziplist
/// parameters to listpack and kept the old names), and its kind.
struct Param {
    name: &'static str,
    alias: Option<&'static str>,
    kind: Kind,
}

const fn p(name: &'static str, kind: Kind) -> Param {
    Param { name, alias: None, kind }
}

const fn alias(name: &'static str, alias: &'static str, kind: Kind) -> Param {
    Param { name, alias: Some(alias), kind }
}

const INT_MAX: i64 = i32::MAX as i64;
const LONG_MAX: u64 = i64::MAX as u64;
const LOGLEVELS: &[&str] = &["debug", "verbose", "notice", "warning"];

/// Every parameter CONFIG knows, in the order CONFIG GET lists them.
const PARAMS: &[Param] = &[
    p("active-expire-effort", Kind::Extra(Check::Int(1, 10), "1")),
    p("activedefrag", Kind::Extra(Check::Bool, "no")),
    p("activerehashing", Kind::Extra(Check::Bool, "yes")),
    p("appendonly", Kind::Fixed("no")),
    p("bind", Kind::Immutable),
    p("client-query-buffer-limit", Kind::ClientQueryBufferLimit),
    p("databases", Kind::Immutable),
    p("dir", Kind::Immutable),
    p("dynamic-hz", Kind::Extra(Check::Bool, "yes")),
    alias("hash-max-listpack-entries", "hash-max-ziplist-entries", Kind::Extra(Check::Int(0, i64::MAX), "512")),
    alias("hash-max-listpack-value", "hash-max-ziplist-value", Kind::Extra(Check::Int(0, i64::MAX), "64")),
    p("hll-sparse-max-bytes", Kind::Extra(Check::Memory(0, LONG_MAX), "3000")),
    p("hz", Kind::Hz),
    p("latency-monitor-threshold", Kind::Extra(Check::Int(0, i64::MAX), "0")),
    p("lazyfree-lazy-eviction", Kind::Extra(Check::Bool, "no")),
    p("lazyfree-lazy-expire", Kind::Extra(Check::Bool, "no")),
    p("lazyfree-lazy-server-del", Kind::Extra(Check::Bool, "no")),
    p("lazyfree-lazy-user-del", Kind::Extra(Check::Bool, "no")),
    p("lazyfree-lazy-user-flush", Kind::Extra(Check::Bool, "no")),
    p("lfu-decay-time", Kind::LfuDecayTime),
    p("lfu-log-factor", Kind::LfuLogFactor),
    p("list-compress-depth", Kind::Extra(Check::Int(0, INT_MAX), "0")),
    alias("list-max-listpack-size", "list-max-ziplist-size", Kind::Extra(Check::Int(i32::MIN as i64, INT_MAX), "-2")),
    p("loglevel", Kind::Extra(Check::Enum(LOGLEVELS), "notice")),
    p("maxclients", Kind::Maxclients),
    p("maxmemory", Kind::Maxmemory),
    p("maxmemory-eviction-tenacity", Kind::Extra(Check::Int(0, 100), "10")),
    p("maxmemory-policy", Kind::MaxmemoryPolicy),
    p("maxmemory-samples", Kind::MaxmemorySamples),
    p("notify-keyspace-events", Kind::NotifyKeyspaceEvents),
    p("port", Kind::Immutable),
    p("protected-mode", Kind::Extra(Check::Bool, "yes")),
    p("proto-max-bulk-len", Kind::ProtoMaxBulkLen),
    p("requirepass", Kind::Requirepass),
    p("save", Kind::Fixed("")),
    p("set-max-intset-entries", Kind::Extra(Check::Int(0, i64::MAX), "512")),
    p("set-max-listpack-entries", Kind::Extra(Check::Int(0, i64::MAX), "128")),
    p("set-max-listpack-value", Kind::Extra(Check::Int(0, i64::MAX), "64")),
    p("slowlog-log-slower-than", Kind::Extra(Check::Int(-1, i64::MAX), "10000")),
    p("slowlog-max-len", Kind::Extra(Check::Int(0, i64::MAX), "128")),
    p("stream-node-max-bytes", Kind::Extra(Check::Memory(0, LONG_MAX), "4096")),
    p("stream-node-max-entries", Kind::Extra(Check::Int(0, i64::MAX), "100")),
    p("tcp-keepalive", Kind::Extra(Check::Int(0, INT_MAX), "300")),
    p("timeout", Kind::Timeout),
    alias("zset-max-listpack-entries", "zset-max-ziplist-entries", Kind::Extra(Check::Int(0, i64::MAX), "128")),
    alias("zset-max-listpack-value", "zset-max-ziplist-value", Kind::Extra(Check::Int(0, i64::MAX), "64")),
];

const POLICY_CHOICES: &str =
    "volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction";

fn find(name: &str) -> Option<&'static Param> {
    PARAMS.iter().find(|p| p.name.eq_ignore_ascii_case(name) || p.alias.is_some_and(|a| a.eq_ignore_ascii_case(name)))
}

/// Parses a memory value as Redis' `memtoull`: `k`/`m`/`g` are powers of
/// 1000, `kb`/`mb`/`gb` powers of 1024, case-insensitive.
pub fn parse_memory(s: &str) -> Option<u64> {
    let t = s.to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return None;
    }
    let n: u64 = num.parse().ok()?;
    let mul: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    n.checked_mul(mul)
}

/// The value of a parameter as CONFIG GET shows it.
fn value(shared: &Shared, params: &Params, param: &Param) -> String {
    let engine = &shared.engine;
    match param.kind {
        Kind::Maxmemory => engine.maxmemory().to_string(),
        Kind::MaxmemoryPolicy => engine.maxmemory_policy().name().to_string(),
        Kind::Requirepass => params.requirepass.clone().unwrap_or_default(),
        Kind::Maxclients => params.maxclients.to_string(),
        Kind::NotifyKeyspaceEvents => fastcache_core::notify::flags_to_string(engine.notify_flags()),
        Kind::Timeout => params.timeout_secs.to_string(),
        Kind::ProtoMaxBulkLen => params.proto_max_bulk_len.to_string(),
        Kind::ClientQueryBufferLimit => params.client_query_buffer_limit.to_string(),
        Kind::Hz => params.hz.to_string(),
        Kind::MaxmemorySamples => params.maxmemory_samples.to_string(),
        Kind::LfuLogFactor => params.lfu_log_factor.to_string(),
        Kind::LfuDecayTime => params.lfu_decay_time.to_string(),
        Kind::Fixed(v) => v.to_string(),
        Kind::Extra(_, default) => params.extra.get(param.name).cloned().unwrap_or_else(|| default.to_string()),
        Kind::Immutable => match param.name {
            "databases" => shared.config.databases.to_string(),
            "port" => shared.port.to_string(),
            "bind" => shared.config.bind.to_string(),
            _ => absolute(&shared.config.persistence_dir),
        },
    }
}

/// Redis reports `dir` as an absolute path.
fn absolute(dir: &Path) -> String {
    let full = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir().map(|cwd| cwd.join(dir)).unwrap_or_else(|_| dir.to_path_buf())
    };
    full.display().to_string()
}

/// A validated change, applied only once every argument has passed.
enum Change {
    Maxmemory(u64),
    Policy(EvictionPolicy),
    Requirepass(Option<String>),
    Maxclients(usize),
    Notify(u32),
    Timeout(u64),
    ProtoMaxBulkLen(usize),
    ClientQueryBufferLimit(usize),
    Hz(i64),
    MaxmemorySamples(i64),
    LfuLogFactor(i64),
    LfuDecayTime(i64),
    Extra(&'static str, String),
    /// Accepted and nothing to do (a fixed parameter set to its value).
    Nothing,
}

const NOT_INTEGER: &str = "argument couldn't be parsed into an integer";
const NOT_MEMORY: &str = "argument must be a memory value";

fn int_in(v: &str, min: i64, max: i64) -> Result<i64, String> {
    let n = parse_i64(v.as_bytes()).ok_or_else(|| NOT_INTEGER.to_string())?;
    if n < min || n > max {
        return Err(format!("argument must be between {min} and {max} inclusive"));
    }
    Ok(n)
}

fn memory_in(v: &str, min: u64, max: u64) -> Result<u64, String> {
    let n = parse_memory(v).ok_or_else(|| NOT_MEMORY.to_string())?;
    if n < min || n > max {
        return Err(format!("argument must be between {min} and {max} inclusive"));
    }
    Ok(n)
}

fn check(c: Check, v: &str) -> Result<String, String> {
    match c {
        Check::Int(min, max) => int_in(v, min, max).map(|n| n.to_string()),
        Check::Memory(min, max) => memory_in(v, min, max).map(|n| n.to_string()),
        Check::Bool => match v.to_ascii_lowercase().as_str() {
            b @ ("yes" | "no") => Ok(b.to_string()),
            _ => Err("argument must be 'yes' or 'no'".into()),
        },
        Check::Enum(words) => words
            .iter()
            .find(|w| w.eq_ignore_ascii_case(v))
            .map(|w| w.to_string())
            .ok_or_else(|| format!("argument(s) must be one of the following: {}", words.join(", "))),
    }
}

/// Validates one `name value` pair; the error is the text after Redis'
/// `CONFIG SET failed (possibly related to argument '…') - `.
fn validate(param: &'static Param, v: &str) -> Result<Change, String> {
    Ok(match param.kind {
        Kind::Maxmemory => Change::Maxmemory(memory_in(v, 0, LONG_MAX)?),
        Kind::MaxmemoryPolicy => Change::Policy(
            EvictionPolicy::parse(v)
                .ok_or_else(|| format!("argument(s) must be one of the following: {POLICY_CHOICES}"))?,
        ),
        Kind::Requirepass => Change::Requirepass(if v.is_empty() { None } else { Some(v.to_string()) }),
        Kind::Maxclients => Change::Maxclients(int_in(v, 1, i64::from(u32::MAX))? as usize),
        Kind::NotifyKeyspaceEvents => Change::Notify(
            fastcache_core::notify::parse_flags(v)
                .ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".to_string())?,
        ),
        Kind::Timeout => Change::Timeout(int_in(v, 0, INT_MAX)? as u64),
        Kind::ProtoMaxBulkLen => Change::ProtoMaxBulkLen(memory_in(v, 1024 * 1024, LONG_MAX)? as usize),
        Kind::ClientQueryBufferLimit => Change::ClientQueryBufferLimit(memory_in(v, 1024 * 1024, LONG_MAX)? as usize),
        // Redis clamps hz to 1..=500 rather than refusing.
        Kind::Hz => Change::Hz(int_in(v, 0, INT_MAX)?.clamp(1, 500)),
        Kind::MaxmemorySamples => Change::MaxmemorySamples(int_in(v, 1, INT_MAX)?),
        Kind::LfuLogFactor => Change::LfuLogFactor(int_in(v, 0, INT_MAX)?),
        Kind::LfuDecayTime => Change::LfuDecayTime(int_in(v, 0, INT_MAX)?),
        Kind::Immutable => return Err("can't set immutable config".into()),
        Kind::Fixed(only) if v.eq_ignore_ascii_case(only) => Change::Nothing,
        Kind::Fixed(_) if param.name == "appendonly" => {
            check(Check::Bool, v)?;
            return Err("FastCache's persistence is configured with ENABLE_PERSISTENCE and ENABLE_WRITE_AHEAD_LOG, not appendonly".into());
        }
        Kind::Fixed(_) => {
            return Err(
                "FastCache's snapshots are configured with ENABLE_SNAPSHOTS and SNAPSHOT_INTERVAL, not save".into()
            )
        }
        Kind::Extra(c, _) => Change::Extra(param.name, check(c, v)?),
    })
}

fn apply(shared: &Shared, params: &mut Params, change: Change) {
    match change {
        Change::Maxmemory(n) => shared.engine.set_maxmemory(n),
        Change::Policy(p) => shared.engine.set_maxmemory_policy(p),
        Change::Requirepass(p) => params.requirepass = p,
        Change::Maxclients(n) => params.maxclients = n,
        Change::Notify(f) => shared.engine.set_notify_flags(f),
        Change::Timeout(n) => params.timeout_secs = n,
        Change::ProtoMaxBulkLen(n) => params.proto_max_bulk_len = n,
        Change::ClientQueryBufferLimit(n) => params.client_query_buffer_limit = n,
        Change::Hz(n) => params.hz = n,
        Change::MaxmemorySamples(n) => params.maxmemory_samples = n,
        Change::LfuLogFactor(n) => params.lfu_log_factor = n,
        Change::LfuDecayTime(n) => params.lfu_decay_time = n,
        Change::Extra(name, v) => {
            params.extra.insert(name.to_string(), v);
        }
        Change::Nothing => {}
    }
}

const CONFIG_HELP: &[&str] = &[
    "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GET <pattern>",
    "    Return parameters matching the glob-like <pattern> and their values.",
    "SET <directive> <value>",
    "    Set the configuration <directive> to <value>.",
    "RESETSTAT",
    "    Reset statistics reported by the INFO command.",
    "REWRITE",
    "    Rewrite the configuration file.",
    "HELP",
    "    Prints this help.",
];

/// CONFIG GET/SET/RESETSTAT/REWRITE/HELP.
///
/// CONFIG REWRITE replies OK and writes nothing: FastCache's configuration
/// comes from environment variables, so there is no file to rewrite.
pub fn config_command(conn: &mut Conn, argv: &[&[u8]]) -> Reply {
    let sub = match crate::command::subcommand(conn, "config", argv) {
        Ok(s) => s,
        Err(e) => return e,
    };
    match sub {
        "get" => config_get(conn, &argv[2..]),
        // Redis checks the pairing itself after the arity check (-4).
        "set" if argv.len() % 2 != 0 => errors::wrong_args("config|set"),
        "set" => config_set(conn, &argv[2..]),
        "resetstat" => {
            crate::info::reset_stats(&conn.shared);
            Reply::OK
        }
        "rewrite" => Reply::OK,
        _ => Reply::Array(CONFIG_HELP.iter().map(|l| Reply::Simple((*l).into())).collect()),
    }
}

fn config_get(conn: &Conn, patterns: &[&[u8]]) -> Reply {
    let shared = &conn.shared;
    let params = shared.params.read();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for &pat in patterns {
        let is_glob = pat.iter().any(|c| matches!(c, b'*' | b'?' | b'['));
        if !is_glob {
            // An exact name is echoed as the client wrote it, as Redis does.
            let name = String::from_utf8_lossy(pat).into_owned();
            if let Some(param) = find(&name) {
                if seen.insert(name.to_ascii_lowercase()) {
                    out.push((name, value(shared, &params, param)));
                }
            }
            continue;
        }
        for param in PARAMS {
            for name in std::iter::once(param.name).chain(param.alias) {
                if glob_match(pat, name.as_bytes(), true) && seen.insert(name.to_string()) {
                    out.push((name.to_string(), value(shared, &params, param)));
                }
            }
        }
    }
    Reply::Map(out.into_iter().map(|(k, v)| (Reply::Bulk(k.into_bytes()), Reply::Bulk(v.into_bytes()))).collect())
}

fn config_set(conn: &Conn, pairs: &[&[u8]]) -> Reply {
    let shared = &conn.shared;
    // Like Redis, names are checked for every pair first (unknown,
    // immutable, repeated), then values; nothing changes unless all pass.
    let mut found: Vec<(&'static Param, &'static str)> = Vec::with_capacity(pairs.len() / 2);
    for pair in pairs.chunks(2) {
        let name = String::from_utf8_lossy(pair[0]);
        let Some(param) = find(&name) else {
            return Reply::error(format!("ERR Unknown option or number of arguments for CONFIG SET - '{name}'"));
        };
        let failed = |why: &str| set_failed(&name, why);
        if matches!(param.kind, Kind::Immutable) {
            return failed("can't set immutable config");
        }
        // An alias and its canonical name count as different arguments
        // (Redis 7.0 accepts both in one call); the same spelling twice is
        // refused.
        let spelled = if param.name.eq_ignore_ascii_case(&name) { param.name } else { param.alias.unwrap_or("") };
        if found.iter().any(|&(_, s)| s == spelled) {
            return failed("duplicate parameter");
        }
        found.push((param, spelled));
    }
    let mut changes = Vec::with_capacity(found.len());
    for (&(param, spelled), pair) in found.iter().zip(pairs.chunks(2)) {
        match validate(param, &String::from_utf8_lossy(pair[1])) {
            Ok(c) => changes.push(c),
            // Value errors name the parameter in lower case, by the name
            // (or alias) it was given.
            Err(why) => return set_failed(spelled, &why),
        }
    }
    let mut params = shared.params.write();
    for c in changes {
        apply(shared, &mut params, c);
    }
    Reply::OK
}

fn set_failed(name: &str, why: &str) -> Reply {
    Reply::error(format!("ERR CONFIG SET failed (possibly related to argument '{name}') - {why}"))
}

/// Whether CONFIG knows `name` (for tests of the table).
#[cfg(test)]
fn known(name: &str) -> bool {
    find(name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_values() {
        assert_eq!(parse_memory("100mb"), Some(100 << 20));
        assert_eq!(parse_memory("1k"), Some(1000));
        assert_eq!(parse_memory("1KB"), Some(1024));
        assert_eq!(parse_memory("2M"), Some(2_000_000));
        assert_eq!(parse_memory("3gb"), Some(3 << 30));
        assert_eq!(parse_memory("0"), Some(0));
        assert_eq!(parse_memory("-5"), None);
        assert_eq!(parse_memory("1.5gb"), None);
        assert_eq!(parse_memory("mb"), None);
        assert_eq!(parse_memory(""), None);
        assert_eq!(parse_memory("99999999999999999999"), None);
    }

    #[test]
    fn names_and_aliases() {
        assert!(known("MAXMEMORY"));
        assert!(known("hash-max-ziplist-entries"));
        assert!(known("hash-max-listpack-entries"));
        assert!(!known("nope"));
        let mut names: Vec<&str> = PARAMS.iter().map(|p| p.name).collect();
        let sorted = {
            let mut s = names.clone();
            s.sort_unstable();
            s
        };
        assert_eq!(names, sorted, "PARAMS stays sorted");
        names.dedup();
        assert_eq!(names.len(), PARAMS.len());
    }

    #[test]
    fn checks_use_redis_messages() {
        assert_eq!(check(Check::Bool, "YES"), Ok("yes".into()));
        assert_eq!(check(Check::Bool, "maybe"), Err("argument must be 'yes' or 'no'".into()));
        assert_eq!(check(Check::Int(0, 10), "x"), Err(NOT_INTEGER.into()));
        assert_eq!(check(Check::Int(0, 10), "11"), Err("argument must be between 0 and 10 inclusive".into()));
        assert_eq!(check(Check::Memory(0, LONG_MAX), "4kb"), Ok("4096".into()));
        assert_eq!(check(Check::Enum(LOGLEVELS), "NOTICE"), Ok("notice".into()));
        let hz = find("hz").map(|p| validate(p, "1000"));
        assert!(matches!(hz, Some(Ok(Change::Hz(500)))));
        let db = find("databases").map(|p| validate(p, "3").err());
        assert_eq!(db, Some(Some("can't set immutable config".to_string())));
    }
}
