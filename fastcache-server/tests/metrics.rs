//! The observability endpoint: `/metrics` in the Prometheus text format,
//! `/health` as JSON, on FASTCACHE_METRICS_ADDR, spoken to with plain
//! HTTP/1.1 over a `TcpStream`.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{run_to_exit, Server};

const EXIT_WAIT: Duration = Duration::from_secs(20);
const WITH_METRICS: (&str, &str) = ("FASTCACHE_METRICS_ADDR", "127.0.0.1:0");

struct HttpResponse {
    status: u16,
    headers: String,
    body: String,
}

/// One request on a fresh connection (`Connection: close`, so the body
/// ends with the stream).
fn http(addr: SocketAddr, method: &str, path: &str) -> HttpResponse {
    let mut s = TcpStream::connect_timeout(&addr, common::IO_TIMEOUT).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap_or_else(|e| panic!("timeout: {e}"));
    let req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap_or_else(|e| panic!("write: {e}"));
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap_or_else(|e| panic!("read: {e}"));
    let text = String::from_utf8(raw).unwrap_or_else(|e| panic!("response is not UTF-8: {e}"));
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no end of headers in {text:?}"));
    let (status_line, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    let status = status_line
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    HttpResponse { status, headers: headers.to_ascii_lowercase(), body: body.to_string() }
}

/// Checks the exposition format and returns the samples by `name{labels}`.
///
/// Every sample belongs to a family declared before it by exactly one
/// `# HELP` and one `# TYPE` line, a family's samples are contiguous,
/// counters end in `_total`, and every value is a number.
fn parse_exposition(text: &str) -> BTreeMap<String, f64> {
    assert!(text.ends_with('\n'), "the exposition must end with a newline");
    let mut samples = BTreeMap::new();
    let mut help: HashMap<String, usize> = HashMap::new();
    let mut types: HashMap<String, String> = HashMap::new();
    let mut closed: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or_default().to_string();
            *help.entry(name.clone()).or_default() += 1;
            assert_eq!(help[&name], 1, "two HELP lines for {name}");
            assert!(!closed.contains(&name), "{name} declared again after other families");
            if let Some(prev) = current.replace(name.clone()) {
                if prev != name {
                    closed.push(prev);
                }
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or_else(|| panic!("bad TYPE line {line:?}"));
            assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind), "{line:?}");
            assert!(types.insert(name.to_string(), kind.to_string()).is_none(), "two TYPE lines for {name}");
            assert_eq!(current.as_deref(), Some(name), "TYPE {name} not right after its HELP");
            if kind == "counter" {
                assert!(name.ends_with("_total"), "counter {name} does not end in _total");
            }
            continue;
        }
        assert!(!line.starts_with('#') && !line.is_empty(), "unexpected line {line:?}");
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad sample {line:?}"));
        let name = series.split('{').next().unwrap_or_default();
        let family = current.as_deref().unwrap_or_else(|| panic!("sample {line:?} before any family"));
        let in_family = name == family
            || (types.get(family).is_some_and(|t| t == "histogram")
                && [format!("{family}_bucket"), format!("{family}_sum"), format!("{family}_count")]
                    .iter()
                    .any(|n| n == name));
        assert!(in_family, "sample {line:?} outside its family {family}");
        if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
            assert!(labels.starts_with('{') && labels.ends_with('}'), "bad labels in {line:?}");
        }
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().unwrap_or_else(|e| panic!("bad value in {line:?}: {e}")),
        };
        assert!(samples.insert(series.to_string(), v).is_none(), "duplicate series {series}");
    }
    samples
}

fn scrape(s: &Server) -> BTreeMap<String, f64> {
    let r = http(s.metrics_addr(), "GET", "/metrics");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.headers.contains("content-type: text/plain; version=0.0.4"), "{}", r.headers);
    parse_exposition(&r.body)
}

fn value(m: &BTreeMap<String, f64>, series: &str) -> f64 {
    *m.get(series).unwrap_or_else(|| panic!("no {series} in {m:#?}"))
}

fn health(s: &Server) -> (u16, serde_json::Value) {
    let r = http(s.metrics_addr(), "GET", "/health");
    assert!(r.headers.contains("content-type: application/json"), "{}", r.headers);
    let json = serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("/health is not JSON ({e}): {:?}", r.body));
    (r.status, json)
}

#[test]
fn metrics_count_commands_keys_and_memory() {
    let s = Server::start_with(&[WITH_METRICS]);
    let mut c = s.resp();
    assert_eq!(c.cmd(&["SET", "a", "1"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "b", "x"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "c", "1", "EX", "1000"]), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "a"]), "$1\r\n1\r\n");
    assert_eq!(c.cmd(&["GET", "missing"]), "$-1\r\n");
    assert!(c.cmd(&["LPUSH", "a", "x"]).starts_with("-WRONGTYPE"));
    assert!(c.cmd(&["INCR", "b"]).starts_with("-ERR"));
    assert!(c.cmd(&["INCR", "b"]).starts_with("-ERR"));
    assert!(c.cmd(&["GET"]).starts_with("-ERR wrong number of arguments"));
    assert!(c.cmd(&["NOSUCHCOMMAND"]).starts_with("-ERR unknown command"));
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(c.cmd(&["SET", "gone", "1", "PX", "1"]), "+OK\r\n");
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(c.cmd(&["GET", "gone"]), "$-1\r\n");
    assert_eq!(c.cmd(&["SELECT", "3"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "d", "1"]), "+OK\r\n");

    let m = scrape(&s);
    assert_eq!(value(&m, r#"fastcache_commands_total{cmd="set"}"#), 5.0);
    assert_eq!(value(&m, r#"fastcache_command_errors_total{cmd="set"}"#), 0.0);
    assert_eq!(value(&m, r#"fastcache_commands_total{cmd="get"}"#), 4.0);
    assert_eq!(value(&m, r#"fastcache_command_errors_total{cmd="get"}"#), 1.0);
    assert_eq!(value(&m, r#"fastcache_commands_total{cmd="incr"}"#), 2.0);
    assert_eq!(value(&m, r#"fastcache_command_errors_total{cmd="incr"}"#), 2.0);
    assert_eq!(value(&m, r#"fastcache_command_errors_total{cmd="lpush"}"#), 1.0);
    assert_eq!(value(&m, r#"fastcache_commands_total{cmd="ping"}"#), 1.0);
    assert_eq!(value(&m, r#"fastcache_commands_total{cmd="select"}"#), 1.0);
    assert_eq!(value(&m, "fastcache_unknown_commands_total"), 1.0);
    assert!(!m.contains_key(r#"fastcache_commands_total{cmd="hset"}"#), "a command never called is listed");

    assert_eq!(value(&m, r#"fastcache_keys{db="0"}"#), 3.0);
    assert_eq!(value(&m, r#"fastcache_keys{db="3"}"#), 1.0);
    assert_eq!(value(&m, r#"fastcache_keys_with_expiry{db="0"}"#), 1.0);
    assert_eq!(value(&m, r#"fastcache_keys_with_expiry{db="3"}"#), 0.0);
    assert!(value(&m, "fastcache_used_memory_bytes") > 0.0);
    assert_eq!(value(&m, "fastcache_maxmemory_bytes"), 0.0);
    assert_eq!(value(&m, "fastcache_evicted_keys_total"), 0.0);
    assert_eq!(value(&m, "fastcache_expired_keys_total"), 1.0);
    assert!(value(&m, "fastcache_keyspace_hits_total") >= 1.0);
    assert!(value(&m, "fastcache_keyspace_misses_total") >= 2.0);
    assert_eq!(value(&m, "fastcache_connected_clients"), 1.0);
    assert_eq!(value(&m, "fastcache_blocked_clients"), 0.0);
    assert_eq!(value(&m, "fastcache_connections_received_total"), 1.0);
    assert_eq!(value(&m, "fastcache_connections_rejected_total"), 0.0);
    assert!(value(&m, "fastcache_net_input_bytes_total") > 100.0);
    assert!(value(&m, "fastcache_net_output_bytes_total") > 50.0);
    assert!(value(&m, "fastcache_uptime_seconds") >= 0.0);
    let version = format!(r#"fastcache_build_info{{version="{}"}}"#, env!("CARGO_PKG_VERSION"));
    assert_eq!(value(&m, &version), 1.0);

    // A scrape does not count as a command, and counters only grow.
    assert_eq!(c.cmd(&["GET", "a"]), "$-1\r\n");
    let m2 = scrape(&s);
    assert_eq!(value(&m2, r#"fastcache_commands_total{cmd="get"}"#), 5.0);
    assert_eq!(value(&m2, r#"fastcache_commands_total{cmd="set"}"#), 5.0);
}

#[test]
fn commands_on_every_io_thread_are_summed() {
    let s = Server::start_with(&[WITH_METRICS, ("FASTCACHE_IO_THREADS", "3")]);
    let mut clients: Vec<_> = (0..6).map(|_| s.resp()).collect();
    for round in 0..20 {
        for (i, c) in clients.iter_mut().enumerate() {
            // Pipelined: two commands in one write.
            let mut req = common::encode_str(&["HSET", &format!("h{i}"), &format!("f{round}"), "v"]);
            req.extend(common::encode_str(&["HGET", &format!("h{i}"), "nope", "extra"]));
            c.send(&req);
            assert_eq!(c.read_reply(), ":1\r\n");
            assert!(c.read_reply().starts_with("-ERR wrong number"));
        }
    }
    let m = scrape(&s);
    assert_eq!(value(&m, r#"fastcache_commands_total{cmd="hset"}"#), 120.0);
    assert_eq!(value(&m, r#"fastcache_command_errors_total{cmd="hset"}"#), 0.0);
    assert_eq!(value(&m, r#"fastcache_commands_total{cmd="hget"}"#), 120.0);
    assert_eq!(value(&m, r#"fastcache_command_errors_total{cmd="hget"}"#), 120.0);
    assert_eq!(value(&m, r#"fastcache_keys{db="0"}"#), 6.0);
    assert_eq!(value(&m, "fastcache_connected_clients"), 6.0);
    assert_eq!(value(&m, "fastcache_connections_received_total"), 6.0);
}

#[test]
fn info_commandstats_uses_the_same_counters() {
    let s = Server::start_with(&[WITH_METRICS]);
    let mut c = s.resp();
    for _ in 0..3 {
        c.cmd(&["SET", "k", "v"]);
    }
    assert!(c.cmd(&["LLEN", "k"]).starts_with("-WRONGTYPE"));
    let info = c.cmd(&["INFO", "commandstats"]);
    assert!(info.contains("# Commandstats\r\n"), "{info}");
    assert!(
        info.contains("cmdstat_set:calls=3,usec=0,usec_per_call=0.00,rejected_calls=0,failed_calls=0\r\n"),
        "{info}"
    );
    assert!(info.contains("cmdstat_llen:calls=1,usec=0,usec_per_call=0.00,rejected_calls=0,failed_calls=1\r\n"));
    assert!(!info.contains("cmdstat_info"), "the INFO being answered is counted after it: {info}");
    // Not in the default sections, as in Redis; in `all`.
    assert!(!c.cmd(&["INFO"]).contains("cmdstat_"));
    assert!(c.cmd(&["INFO", "all"]).contains("cmdstat_set:calls=3"));

    // RESETSTAT starts INFO over; Prometheus counters never go down.
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), "+OK\r\n");
    c.cmd(&["SET", "k", "v"]);
    let info = c.cmd(&["INFO", "commandstats"]);
    assert!(info.contains("cmdstat_set:calls=1,"), "{info}");
    assert!(!info.contains("cmdstat_llen"), "{info}");
    let m = scrape(&s);
    assert_eq!(value(&m, r#"fastcache_commands_total{cmd="set"}"#), 4.0);
    assert_eq!(value(&m, r#"fastcache_command_errors_total{cmd="llen"}"#), 1.0);
}

#[test]
fn health_is_json_and_ok() {
    let s = Server::start_with(&[WITH_METRICS]);
    let mut c = s.resp();
    assert_eq!(c.cmd(&["SET", "k", "v"]), "+OK\r\n");
    let (status, h) = health(&s);
    assert_eq!(status, 200, "{h}");
    assert_eq!(h["status"], "ok", "{h}");
    assert_eq!(h["version"], env!("CARGO_PKG_VERSION"));
    assert!(h["uptime_seconds"].is_u64(), "{h}");
    assert_eq!(h["connected_clients"], 1, "{h}");
    assert!(h["used_memory"].as_u64().is_some_and(|n| n > 0), "{h}");
    assert_eq!(h["maxmemory"], 0, "{h}");
    assert_eq!(h["persistence"], "wal", "{h}");
    let checks = h["checks"].as_array().unwrap_or_else(|| panic!("no checks in {h}"));
    assert!(checks.iter().any(|c| c["name"] == "memory" && c["status"] == "ok"), "{h}");
    // The WAL's state and the data directory's free space and writability.
    assert!(checks.iter().any(|c| c["name"] == "wal" && c["status"] == "ok"), "{h}");
    assert!(checks.iter().any(|c| c["name"] == "disk" && c["status"] == "ok"), "{h}");
}

#[test]
fn health_is_degraded_while_writes_are_refused() {
    let s = Server::start_with(&[
        WITH_METRICS,
        ("FASTCACHE_MAXMEMORY", "1mb"),
        ("FASTCACHE_MAXMEMORY_POLICY", "noeviction"),
    ]);
    let mut c = s.resp();
    let value = "x".repeat(1000);
    let mut refused = false;
    for i in 0..5000 {
        let r = c.cmd(&["SET", &format!("k{i}"), &value]);
        if r.starts_with("-OOM") {
            refused = true;
            break;
        }
    }
    assert!(refused, "1 MB limit never reached");
    let (status, h) = health(&s);
    assert_eq!(status, 200, "degraded still serves: {h}");
    assert_eq!(h["status"], "degraded", "{h}");
    assert_eq!(h["maxmemory"], 1 << 20, "{h}");
    let memory = h["checks"].as_array().and_then(|v| v.iter().find(|c| c["name"] == "memory")).cloned();
    let memory = memory.unwrap_or_else(|| panic!("no memory check in {h}"));
    assert_eq!(memory["status"], "degraded");
    assert!(memory["message"].as_str().is_some_and(|m| m.contains("noeviction")), "{memory}");
}

#[test]
fn evictions_are_counted() {
    let s = Server::start_with(&[
        WITH_METRICS,
        ("FASTCACHE_MAXMEMORY", "1mb"),
        ("FASTCACHE_MAXMEMORY_POLICY", "allkeys-lru"),
    ]);
    let mut c = s.resp();
    let v = "x".repeat(1000);
    for i in 0..3000 {
        assert_eq!(c.cmd(&["SET", &format!("k{i}"), &v]), "+OK\r\n");
    }
    let m = scrape(&s);
    assert!(value(&m, "fastcache_evicted_keys_total") > 0.0);
    assert_eq!(value(&m, "fastcache_maxmemory_bytes"), 1048576.0);
    assert!(value(&m, r#"fastcache_keys{db="0"}"#) < 3000.0);
    let (status, h) = health(&s);
    assert_eq!((status, h["status"].as_str()), (200, Some("ok")), "evicting is working as configured: {h}");
}

#[test]
fn other_paths_and_methods() {
    let s = Server::start_with(&[WITH_METRICS]);
    let addr = s.metrics_addr();
    for path in ["/", "/metricsx", "/health/", "/debug/pprof"] {
        assert_eq!(http(addr, "GET", path).status, 404, "{path}");
    }
    let r = http(addr, "POST", "/metrics");
    assert_eq!(r.status, 405);
    assert!(r.headers.contains("allow: get, head"), "{}", r.headers);
    let r = http(addr, "HEAD", "/metrics");
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty(), "HEAD has no body: {:?}", r.body);
    // A query string does not change the route.
    assert_eq!(http(addr, "GET", "/health?verbose=1").status, 200);
    // Keep-alive: two requests on one connection.
    let mut conn = TcpStream::connect_timeout(&addr, common::IO_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
    conn.set_read_timeout(Some(common::IO_TIMEOUT)).unwrap_or_else(|e| panic!("{e}"));
    let req = format!(
        "GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\nGET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(req.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    let mut all = String::new();
    conn.read_to_string(&mut all).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(all.matches("HTTP/1.1 200 OK").count(), 2, "{all}");
    // The server itself is unaffected.
    assert_eq!(s.resp().cmd(&["PING"]), "+PONG\r\n");
}

/// Inodes of the TCP sockets the process listens on (Linux).
fn listening_sockets(pid: u32) -> usize {
    let mut inodes = std::collections::HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // st 0A = LISTEN; the inode is the tenth field.
            if f.get(3) == Some(&"0A") {
                if let Some(inode) = f.get(9) {
                    inodes.insert(format!("socket:[{inode}]"));
                }
            }
        }
    }
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap_or_else(|e| panic!("listing fds: {e}"));
    let mut mine = std::collections::HashSet::new();
    for fd in fds.flatten() {
        if let Ok(target) = std::fs::read_link(fd.path()) {
            let t = target.to_string_lossy().into_owned();
            if inodes.contains(&t) {
                mine.insert(t);
            }
        }
    }
    mine.len()
}

#[test]
fn off_serves_nothing() {
    let s = Server::start_with(&[("FASTCACHE_METRICS_ADDR", "off")]);
    assert_eq!(s.resp().cmd(&["PING"]), "+PONG\r\n");
    assert!(!s.stdout_text().contains("metrics"), "{}", s.stdout_text());
    if cfg!(target_os = "linux") {
        assert_eq!(listening_sockets(s.pid()), 1, "only the RESP port is open");
        let on = Server::start_with(&[WITH_METRICS]);
        let _ = on.metrics_addr();
        assert_eq!(listening_sockets(on.pid()), 2, "the RESP port and the metrics port");
    }
}

#[test]
fn a_bad_address_stops_the_server() {
    let dir = common::TempDir::new("metrics-bad");
    let dir_s = dir.path().to_string_lossy().into_owned();
    for bad in ["localhost:9121", "9121", "127.0.0.1", "127.0.0.1:99999", "", "none"] {
        let (status, out, err) = run_to_exit(
            &[("FASTCACHE_PORT", "0"), ("PERSISTENCE_DIR", &dir_s), ("FASTCACHE_METRICS_ADDR", bad)],
            &[],
            EXIT_WAIT,
        );
        assert_eq!(status.and_then(|s| s.code()), Some(2), "{bad:?}: stderr {err:?}");
        assert!(!out.contains("listening"), "{bad:?}: {out:?}");
        assert!(err.contains("FASTCACHE_METRICS_ADDR"), "{bad:?}: {err:?}");
        assert!(err.contains(&format!("{bad:?}")), "{bad:?}: value not quoted: {err:?}");
        assert!(err.contains("IP:port") && err.contains("off"), "{bad:?}: accepted values not named: {err:?}");
    }
}

#[test]
fn a_busy_metrics_port_stops_the_server() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = taken.local_addr().unwrap_or_else(|e| panic!("{e}")).to_string();
    let dir = common::TempDir::new("metrics-busy");
    let dir_s = dir.path().to_string_lossy().into_owned();
    let (status, out, err) = run_to_exit(
        &[("FASTCACHE_PORT", "0"), ("PERSISTENCE_DIR", &dir_s), ("FASTCACHE_METRICS_ADDR", &addr)],
        &[],
        EXIT_WAIT,
    );
    assert_eq!(status.and_then(|s| s.code()), Some(2), "stderr {err:?}");
    assert!(!out.contains("listening"), "no listening line before the metrics port is bound: {out:?}");
    assert!(err.contains("FASTCACHE_METRICS_ADDR") && err.contains(&addr), "{err:?}");
}

#[test]
fn snapshots_report_metrics_and_health() {
    let s = Server::start_with(&[WITH_METRICS]);
    let mut c = s.resp();
    assert_eq!(c.cmd(&["SET", "k", "v"]), "+OK\r\n");
    let (_, h) = health(&s);
    let checks = h["checks"].as_array().unwrap_or_else(|| panic!("no checks in {h}"));
    assert!(checks.iter().any(|c| c["name"] == "snapshot" && c["status"] == "ok"), "{h}");
    assert_eq!(c.cmd(&["SAVE"]), "+OK\r\n");
    let m = scrape(&s);
    assert_eq!(value(&m, "fastcache_snapshots_total{result=\"ok\"}"), 1.0);
    assert_eq!(value(&m, "fastcache_snapshot_last_keys"), 1.0);
    assert!(value(&m, "fastcache_snapshot_last_size_bytes") > 0.0);
    assert!(value(&m, "fastcache_snapshot_last_raw_bytes") > 0.0);
    assert!(m.contains_key("fastcache_snapshot_age_seconds"), "{m:?}");
    assert!(m.contains_key("fastcache_recovery_seconds"), "{m:?}");
    let (status, h) = health(&s);
    assert_eq!(status, 200, "{h}");
    let checks = h["checks"].as_array().unwrap_or_else(|| panic!("no checks in {h}"));
    let snap = checks.iter().find(|c| c["name"] == "snapshot").unwrap_or_else(|| panic!("no snapshot check in {h}"));
    assert_eq!(snap["status"], "ok", "{h}");
    assert!(snap["message"].as_str().is_some_and(|m| m.contains("verified when written")), "{h}");
}
