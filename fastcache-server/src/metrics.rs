//! Metrics and health: what `/metrics` (Prometheus text exposition format,
//! version 0.0.4) and `/health` (JSON) report — the HTTP side is in
//! [`crate::http`].
//!
//! # Extension points
//!
//! Later layers (WAL, snapshots, recovery) add to the [`Registry`] in
//! `Shared::metrics` once at start, and never touch this module or
//! `http.rs`:
//!
//! - **Metrics**: implement [`Collector`] (any `Fn(&mut MetricWriter)` does)
//!   and call [`Registry::register`]. At every scrape each collector writes
//!   its current values through the [`MetricWriter`], which takes care of the
//!   format: `# HELP`/`# TYPE` once per family, samples of a family kept
//!   together even when several collectors add to it, label escaping, and
//!   the `_total` suffix of counters. A collector reads counters its layer
//!   already keeps; it must not block for long (it runs on the main thread,
//!   beside the main accept loop).
//!
//!   ```ignore
//!   let wal = wal.clone();
//!   shared.metrics.register(Arc::new(move |w: &mut MetricWriter| {
//!       w.counter("fastcache_wal_fsyncs", "fsync calls on WAL segments", &[], wal.fsyncs());
//!       w.gauge("fastcache_wal_segments", "WAL segment files on disk", &[], wal.segments());
//!   }));
//!   ```
//!
//! - **Health**: implement [`HealthCheck`] (any `Fn() -> Check` does) and
//!   call [`Registry::register_check`]; `/health` lists every check and its
//!   overall `status` is the worst of them ([`Status::Failed`] answers HTTP
//!   503). The persistence layer also sets what `/health` reports as
//!   `persistence` with [`Registry::set_persistence`] (`"disabled"` until it
//!   exists, because that is the truth).
//!
//! # Per-command counters
//!
//! Calls and error replies per command are counted without any shared,
//! contended atomic on the hot path: a connection lives on one thread from
//! accept to close (one current-thread runtime per core), so every thread
//! counts into its own array, registered once in a global list, and a
//! scrape sums the arrays. Each array has one writer — its thread — so an
//! increment is a plain load and store; readers on other threads see every
//! value eventually, and never a torn one.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use fastcache_core::{Engine, EvictionPolicy};
use parking_lot::{Mutex, RwLock};

use crate::server::Shared;

/// Writes current values into a scrape (see the module docs).
pub trait Collector: Send + Sync {
    /// Writes this collector's families; called once per scrape.
    fn collect(&self, out: &mut MetricWriter);
}

impl<F: Fn(&mut MetricWriter) + Send + Sync> Collector for F {
    fn collect(&self, out: &mut MetricWriter) {
        self(out)
    }
}

/// How healthy one part of the server is. Ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Working as configured.
    Ok,
    /// Serving, but not as configured (for example refusing writes).
    Degraded,
    /// Not able to do its job; `/health` answers 503.
    Failed,
}

impl Status {
    /// The name `/health` reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Degraded => "degraded",
            Status::Failed => "failed",
        }
    }
}

/// The outcome of one health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// A short, stable name (`memory`, `wal`, …).
    pub name: &'static str,
    pub status: Status,
    /// What an operator should know, in one sentence.
    pub message: String,
}

/// One health check, run at every `/health` request (see the module docs).
pub trait HealthCheck: Send + Sync {
    /// Checks now; must be quick and must not block on I/O.
    fn check(&self) -> Check;
}

impl<F: Fn() -> Check + Send + Sync> HealthCheck for F {
    fn check(&self) -> Check {
        self()
    }
}

/// The collectors and health checks of the process.
pub struct Registry {
    collectors: RwLock<Vec<Arc<dyn Collector>>>,
    checks: RwLock<Vec<Arc<dyn HealthCheck>>>,
    persistence: RwLock<String>,
}

impl Registry {
    /// A registry with the server's built-in health check (memory).
    pub fn new(engine: &Engine) -> Registry {
        init_command_table(engine);
        let registry = Registry {
            collectors: RwLock::default(),
            checks: RwLock::default(),
            persistence: "disabled".to_string().into(),
        };
        let engine = engine.clone();
        registry.register_check(Arc::new(move || memory_check(&engine)));
        registry
    }

    /// Adds a collector to every later scrape.
    #[allow(dead_code, reason = "extension point for the persistence layers (module docs)")]
    pub fn register(&self, collector: Arc<dyn Collector>) {
        self.collectors.write().push(collector);
    }

    /// Adds a check to every later `/health`.
    pub fn register_check(&self, check: Arc<dyn HealthCheck>) {
        self.checks.write().push(check);
    }

    /// Sets what `/health` reports as `persistence`.
    #[allow(dead_code, reason = "extension point for the persistence layers (module docs)")]
    pub fn set_persistence(&self, state: &str) {
        *self.persistence.write() = state.to_string();
    }

    /// What `/health` reports as `persistence`.
    pub fn persistence(&self) -> String {
        self.persistence.read().clone()
    }

    /// Runs every registered collector.
    pub fn collect(&self, out: &mut MetricWriter) {
        // Cloned so that a collector may register another without deadlock.
        let collectors: Vec<Arc<dyn Collector>> = self.collectors.read().clone();
        for c in collectors {
            c.collect(out);
        }
    }

    /// Runs every registered health check.
    pub fn run_checks(&self) -> Vec<Check> {
        let checks: Vec<Arc<dyn HealthCheck>> = self.checks.read().clone();
        checks.iter().map(|c| c.check()).collect()
    }
}

/// Degraded when writes are being refused for lack of memory.
fn memory_check(engine: &Engine) -> Check {
    let (used, max) = (engine.used_memory(), engine.maxmemory());
    if max > 0 && used >= max && engine.maxmemory_policy() == EvictionPolicy::NoEviction {
        Check {
            name: "memory",
            status: Status::Degraded,
            message: format!(
                "used_memory {used} has reached maxmemory {max} with maxmemory-policy noeviction: writes are refused"
            ),
        }
    } else {
        Check { name: "memory", status: Status::Ok, message: format!("used_memory {used}, maxmemory {max}") }
    }
}

/// A Prometheus family type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    #[allow(dead_code, reason = "extension point for the persistence layers (module docs)")]
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// A sample value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(i64),
    UInt(u64),
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::UInt(v)
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Value {
        Value::UInt(v as u64)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::UInt(u64::from(v))
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Value::Int(v) => write!(f, "{v}"),
            Value::UInt(v) => write!(f, "{v}"),
            Value::Float(v) if v.is_nan() => f.write_str("NaN"),
            Value::Float(v) if v.is_infinite() => f.write_str(if v > 0.0 { "+Inf" } else { "-Inf" }),
            Value::Float(v) => write!(f, "{v}"),
        }
    }
}

/// A histogram's state: cumulative counts per upper bound (ascending, the
/// `+Inf` bucket implied by `count`), the sum and the count of
/// observations.
#[allow(dead_code, reason = "extension point for the persistence layers (module docs)")]
#[derive(Debug, Clone, Copy)]
pub struct Histogram<'a> {
    pub buckets: &'a [(f64, u64)],
    pub sum: f64,
    pub count: u64,
}

struct Family {
    name: String,
    help: String,
    kind: Kind,
    samples: String,
}

/// Collects samples and renders them in the Prometheus text format.
///
/// A family is declared by its first sample; later samples of the same
/// name join it wherever they come from, so the output keeps each family's
/// lines together as the format requires. A sample whose name, labels or
/// type are invalid is dropped with a warning rather than corrupting the
/// whole scrape.
#[derive(Default)]
pub struct MetricWriter {
    families: Vec<Family>,
    index: HashMap<String, usize>,
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__` (reserved).
fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    !name.starts_with("__")
        && chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn escape_label_value(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

impl MetricWriter {
    pub fn new() -> MetricWriter {
        MetricWriter::default()
    }

    /// A counter sample. `_total` is appended to `name` unless present.
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: impl Into<Value>) {
        let name = if name.ends_with("_total") { name.to_string() } else { format!("{name}_total") };
        self.sample(&name, help, Kind::Counter, &name, labels, None, value.into());
    }

    /// A gauge sample.
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: impl Into<Value>) {
        self.sample(name, help, Kind::Gauge, name, labels, None, value.into());
    }

    /// A histogram: `name_bucket{le=…}` per bound plus `+Inf`, `name_sum`,
    /// `name_count`.
    #[allow(dead_code, reason = "extension point for the persistence layers (module docs)")]
    pub fn histogram(&mut self, name: &str, help: &str, labels: &[(&str, &str)], h: Histogram<'_>) {
        if labels.iter().any(|(k, _)| *k == "le") {
            tracing::warn!(metric = name, "a histogram cannot have a label named le; sample dropped");
            return;
        }
        let bucket = format!("{name}_bucket");
        for &(le, n) in h.buckets {
            let le = Value::Float(le).to_string();
            self.sample(name, help, Kind::Histogram, &bucket, labels, Some(("le", &le)), Value::UInt(n));
        }
        self.sample(name, help, Kind::Histogram, &bucket, labels, Some(("le", "+Inf")), Value::UInt(h.count));
        self.sample(name, help, Kind::Histogram, &format!("{name}_sum"), labels, None, Value::Float(h.sum));
        self.sample(name, help, Kind::Histogram, &format!("{name}_count"), labels, None, Value::UInt(h.count));
    }

    #[allow(clippy::too_many_arguments, reason = "one private helper behind the three public kinds")]
    fn sample(
        &mut self,
        family: &str,
        help: &str,
        kind: Kind,
        name: &str,
        labels: &[(&str, &str)],
        extra: Option<(&str, &str)>,
        value: Value,
    ) {
        if !valid_metric_name(family) || !valid_metric_name(name) {
            tracing::warn!(metric = name, "invalid metric name; sample dropped");
            return;
        }
        if let Some((bad, _)) = labels.iter().find(|(k, _)| !valid_label_name(k)) {
            tracing::warn!(metric = name, label = bad, "invalid label name; sample dropped");
            return;
        }
        let i = match self.index.get(family) {
            Some(&i) => i,
            None => {
                self.families.push(Family {
                    name: family.to_string(),
                    help: escape_help(help),
                    kind,
                    samples: String::new(),
                });
                self.index.insert(family.to_string(), self.families.len() - 1);
                self.families.len() - 1
            }
        };
        let f = &mut self.families[i];
        if f.kind != kind {
            tracing::warn!(
                metric = family,
                declared = f.kind.as_str(),
                got = kind.as_str(),
                "metric family written with two types; sample dropped"
            );
            return;
        }
        let out = &mut f.samples;
        out.push_str(name);
        let mut all = labels.iter().copied().chain(extra).peekable();
        if all.peek().is_some() {
            out.push('{');
            for (n, (k, v)) in all.enumerate() {
                if n > 0 {
                    out.push(',');
                }
                out.push_str(k);
                out.push_str("=\"");
                escape_label_value(out, v);
                out.push('"');
            }
            out.push('}');
        }
        let _ = writeln!(out, " {value}");
    }

    /// The exposition text.
    pub fn finish(self) -> String {
        let mut out = String::with_capacity(self.families.iter().map(|f| f.samples.len() + 128).sum());
        for f in &self.families {
            let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.as_str());
            out.push_str(&f.samples);
        }
        out
    }
}

/// Command name → counter slot: engine commands at their position in
/// `engine.commands()`, then the server's own, then one slot for names
/// neither knows.
struct CommandTable {
    names: Vec<&'static str>,
    by_name: HashMap<&'static str, usize, foldhash::fast::FixedState>,
    /// Every thread's counters (two per slot: calls, errors). Kept after a
    /// thread ends so that totals never go down.
    threads: Mutex<Vec<Arc<[AtomicU64]>>>,
    /// Sums at the last CONFIG RESETSTAT (INFO commandstats starts over;
    /// `/metrics` counters never do).
    baseline: Mutex<Vec<u64>>,
}

static TABLE: OnceLock<CommandTable> = OnceLock::new();

thread_local! {
    static LOCAL: OnceCell<Arc<[AtomicU64]>> = const { OnceCell::new() };
}

impl CommandTable {
    fn slots(&self) -> usize {
        self.names.len() + 1
    }

    fn slot(&self, name: &str) -> usize {
        self.by_name.get(name).copied().unwrap_or(self.names.len())
    }

    fn register_thread(&self) -> Arc<[AtomicU64]> {
        let counters: Arc<[AtomicU64]> = (0..self.slots() * 2).map(|_| AtomicU64::new(0)).collect();
        self.threads.lock().push(counters.clone());
        counters
    }

    fn sums(&self) -> Vec<u64> {
        let mut sums = vec![0u64; self.slots() * 2];
        for t in self.threads.lock().iter() {
            for (s, c) in sums.iter_mut().zip(t.iter()) {
                *s = s.wrapping_add(c.load(Ordering::Relaxed));
            }
        }
        sums
    }
}

fn init_command_table(engine: &Engine) {
    TABLE.get_or_init(|| {
        let names: Vec<&'static str> = engine
            .commands()
            .iter()
            .map(|c| c.name)
            .chain(
                crate::connection::SERVER_COMMANDS.iter().copied().filter(|n| engine.command(n.as_bytes()).is_none()),
            )
            .collect();
        let by_name = names.iter().enumerate().map(|(i, &n)| (n, i)).collect();
        CommandTable { names, by_name, threads: Mutex::default(), baseline: Mutex::default() }
    });
}

/// Counts one executed command (`name` in lower case) and whether its
/// reply was an error. Called by the connection after every command.
pub fn count_command(name: &str, error: bool) {
    let Some(table) = TABLE.get() else { return };
    let slot = table.slot(name);
    LOCAL.with(|local| {
        let counters = local.get_or_init(|| table.register_thread());
        // One writer per array (this thread): a load and a store suffice.
        let bump = |c: &AtomicU64| c.store(c.load(Ordering::Relaxed).wrapping_add(1), Ordering::Relaxed);
        bump(&counters[slot * 2]);
        if error {
            bump(&counters[slot * 2 + 1]);
        }
    });
}

/// Calls and errors of one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommandCount {
    pub name: &'static str,
    pub calls: u64,
    pub errors: u64,
}

/// Per-command totals since start, for every command called at least once,
/// and the calls of unknown commands.
pub fn command_counts() -> (Vec<CommandCount>, u64) {
    counts(false)
}

/// As [`command_counts`], since the last CONFIG RESETSTAT.
pub fn command_counts_since_reset() -> (Vec<CommandCount>, u64) {
    counts(true)
}

fn counts(since_reset: bool) -> (Vec<CommandCount>, u64) {
    let Some(table) = TABLE.get() else { return (Vec::new(), 0) };
    let mut sums = table.sums();
    if since_reset {
        let base = table.baseline.lock();
        for (s, b) in sums.iter_mut().zip(base.iter()) {
            *s = s.saturating_sub(*b);
        }
    }
    let list = table
        .names
        .iter()
        .enumerate()
        .map(|(i, &name)| CommandCount { name, calls: sums[i * 2], errors: sums[i * 2 + 1] })
        .filter(|c| c.calls > 0)
        .collect();
    (list, sums[table.names.len() * 2])
}

/// CONFIG RESETSTAT: INFO commandstats starts over.
pub fn reset_command_counts() {
    if let Some(table) = TABLE.get() {
        *table.baseline.lock() = table.sums();
    }
}

/// The server's own metrics, then every registered collector's.
pub fn render(shared: &Shared) -> String {
    let mut w = MetricWriter::new();
    server_metrics(shared, &mut w);
    shared.metrics.collect(&mut w);
    w.finish()
}

fn server_metrics(sh: &Shared, w: &mut MetricWriter) {
    w.gauge("fastcache_build_info", "Version of the running server", &[("version", env!("CARGO_PKG_VERSION"))], 1u64);
    w.gauge("fastcache_uptime_seconds", "Seconds since the server started", &[], sh.started.elapsed().as_secs());

    let (commands, unknown) = command_counts();
    for c in &commands {
        w.counter("fastcache_commands", "Commands executed, per command", &[("cmd", c.name)], c.calls);
    }
    for c in &commands {
        w.counter(
            "fastcache_command_errors",
            "Commands that replied with an error, per command",
            &[("cmd", c.name)],
            c.errors,
        );
    }
    w.counter("fastcache_unknown_commands", "Requests naming a command the server does not have", &[], unknown);

    let clients = sh.clients.lock().len();
    w.gauge("fastcache_connected_clients", "Client connections open", &[], clients);
    w.gauge("fastcache_maxclients", "Most client connections accepted at once", &[], sh.params.read().maxclients);
    w.gauge("fastcache_blocked_clients", "Clients waiting in a blocking command", &[], sh.blocking.blocked_count());
    let s = &sh.stats;
    // These are zeroed by CONFIG RESETSTAT, which Prometheus sees as a counter reset.
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
    w.counter("fastcache_connections_received", "Connections accepted", &[], load(&s.connections_received));
    w.counter(
        "fastcache_connections_rejected",
        "Connections refused because of maxclients",
        &[],
        load(&s.rejected_connections),
    );
    w.counter("fastcache_net_input_bytes", "Bytes of requests read from clients", &[], load(&s.net_input_bytes));
    w.counter("fastcache_net_output_bytes", "Bytes of replies written to clients", &[], load(&s.net_output_bytes));

    let e = &sh.engine;
    w.gauge("fastcache_used_memory_bytes", "Estimated bytes used by keys and values", &[], e.used_memory());
    w.gauge("fastcache_maxmemory_bytes", "Memory limit in bytes (0: none)", &[], e.maxmemory());
    let stats = e.stats();
    w.counter("fastcache_evicted_keys", "Keys deleted to stay under maxmemory", &[], stats.evicted_keys);
    w.counter("fastcache_expired_keys", "Keys deleted because their TTL passed", &[], stats.expired_keys);
    w.counter("fastcache_keyspace_hits", "Key lookups that found the key", &[], stats.keyspace_hits);
    w.counter("fastcache_keyspace_misses", "Key lookups that did not find the key", &[], stats.keyspace_misses);
    let keyspace = e.keyspace_info();
    for &(db, keys, _) in &keyspace {
        w.gauge("fastcache_keys", "Keys per database", &[("db", &db.to_string())], keys);
    }
    for &(db, _, expires) in &keyspace {
        w.gauge("fastcache_keys_with_expiry", "Keys with a TTL per database", &[("db", &db.to_string())], expires);
    }
}

/// The `/health` document and its overall status: the worst of the checks.
pub fn health(sh: &Shared) -> (Status, serde_json::Value) {
    let checks = sh.metrics.run_checks();
    let status = checks.iter().map(|c| c.status).max().unwrap_or(Status::Ok);
    let body = serde_json::json!({
        "status": status.as_str(),
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": sh.started.elapsed().as_secs(),
        "connected_clients": sh.clients.lock().len(),
        "used_memory": sh.engine.used_memory(),
        "maxmemory": sh.engine.maxmemory(),
        "persistence": sh.metrics.persistence(),
        "checks": checks
            .iter()
            .map(|c| serde_json::json!({ "name": c.name, "status": c.status.as_str(), "message": c.message }))
            .collect::<Vec<_>>(),
    });
    (status, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_grouped_with_one_help_and_type() {
        let mut w = MetricWriter::new();
        w.counter("a", "first", &[("cmd", "get")], 1u64);
        w.gauge("b", "second", &[], 2.5);
        w.counter("a_total", "ignored", &[("cmd", "set")], 3u64);
        let text = w.finish();
        assert_eq!(
            text,
            "# HELP a_total first\n# TYPE a_total counter\na_total{cmd=\"get\"} 1\na_total{cmd=\"set\"} 3\n\
             # HELP b second\n# TYPE b gauge\nb 2.5\n"
        );
    }

    #[test]
    fn escaping() {
        let mut w = MetricWriter::new();
        w.gauge("g", "a \\ back\nslash", &[("k", "q\"uo\\te\nx"), ("z", "")], -1i64);
        assert_eq!(w.finish(), "# HELP g a \\\\ back\\nslash\n# TYPE g gauge\ng{k=\"q\\\"uo\\\\te\\nx\",z=\"\"} -1\n");
    }

    #[test]
    fn float_values() {
        assert_eq!(Value::Float(f64::NAN).to_string(), "NaN");
        assert_eq!(Value::Float(f64::INFINITY).to_string(), "+Inf");
        assert_eq!(Value::Float(f64::NEG_INFINITY).to_string(), "-Inf");
        assert_eq!(Value::Float(0.25).to_string(), "0.25");
        assert_eq!(Value::Float(3.0).to_string(), "3");
    }

    #[test]
    fn invalid_samples_are_dropped() {
        let mut w = MetricWriter::new();
        w.gauge("9bad", "", &[], 1u64);
        w.gauge("ok", "", &[("__reserved", "x")], 1u64);
        w.gauge("ok", "", &[("bad-label", "x")], 1u64);
        w.gauge("ok", "h", &[("good", "x")], 1u64);
        // Same family with another type.
        w.counter("ok_total", "", &[], 1u64);
        w.gauge("ok_total", "", &[], 1u64);
        assert_eq!(
            w.finish(),
            "# HELP ok h\n# TYPE ok gauge\nok{good=\"x\"} 1\n# HELP ok_total \n# TYPE ok_total counter\nok_total 1\n"
        );
    }

    #[test]
    fn histogram() {
        let mut w = MetricWriter::new();
        let h = Histogram { buckets: &[(0.001, 2), (0.1, 5)], sum: 0.25, count: 6 };
        w.histogram("lat_seconds", "latency", &[("op", "fsync")], h);
        assert_eq!(
            w.finish(),
            "# HELP lat_seconds latency\n# TYPE lat_seconds histogram\n\
             lat_seconds_bucket{op=\"fsync\",le=\"0.001\"} 2\nlat_seconds_bucket{op=\"fsync\",le=\"0.1\"} 5\n\
             lat_seconds_bucket{op=\"fsync\",le=\"+Inf\"} 6\nlat_seconds_sum{op=\"fsync\"} 0.25\n\
             lat_seconds_count{op=\"fsync\"} 6\n"
        );
    }

    #[test]
    fn registry_runs_collectors_and_checks() {
        let engine = Engine::new(Default::default());
        let r = Registry::new(&engine);
        r.register(Arc::new(|w: &mut MetricWriter| w.gauge("x", "y", &[], 7u64)));
        r.register_check(Arc::new(|| Check { name: "wal", status: Status::Failed, message: "disk full".into() }));
        let mut w = MetricWriter::new();
        r.collect(&mut w);
        assert_eq!(w.finish(), "# HELP x y\n# TYPE x gauge\nx 7\n");
        let checks = r.run_checks();
        assert_eq!(
            checks.iter().map(|c| (c.name, c.status)).collect::<Vec<_>>(),
            [("memory", Status::Ok), ("wal", Status::Failed)]
        );
        assert_eq!(checks.iter().map(|c| c.status).max(), Some(Status::Failed));
        assert_eq!(r.persistence(), "disabled");
    }

    #[test]
    fn per_thread_counts_add_up() {
        let engine = Engine::new(Default::default());
        let _r = Registry::new(&engine);
        let before = command_counts();
        let find = |v: &[CommandCount], n: &str| v.iter().find(|c| c.name == n).map_or((0, 0), |c| (c.calls, c.errors));
        let threads: Vec<_> = (0..3)
            .map(|_| {
                std::thread::spawn(|| {
                    for i in 0..100 {
                        count_command("hset", i % 10 == 0);
                    }
                    count_command("ping", false);
                    count_command("no-such-command", true);
                })
            })
            .collect();
        for t in threads {
            let _ = t.join();
        }
        let after = command_counts();
        let (c0, e0) = find(&before.0, "hset");
        let (c1, e1) = find(&after.0, "hset");
        assert_eq!((c1 - c0, e1 - e0), (300, 30));
        assert!(find(&after.0, "ping").0 >= 3);
        assert!(after.1 >= before.1 + 3);
        reset_command_counts();
        assert_eq!(find(&command_counts_since_reset().0, "hset"), (0, 0));
        assert_eq!(find(&command_counts().0, "hset"), (c1, e1));
    }
}
