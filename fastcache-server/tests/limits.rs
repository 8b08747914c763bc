//! Start-up configuration and connection limits of the real binary.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use common::{run_to_exit, Server};

const EXIT_WAIT: Duration = Duration::from_secs(20);

/// Runs the server with one bad variable and checks it refuses to start
/// with exit code 2 and a message naming the variable, the value and each
/// of `accepted`.
fn assert_rejected(var: &str, value: &str, accepted: &[&str]) {
    let dir = common::TempDir::new("badenv");
    let dir_s = dir.path().to_string_lossy().into_owned();
    let (status, out, err) =
        run_to_exit(&[("FASTCACHE_PORT", "0"), ("PERSISTENCE_DIR", &dir_s), (var, value)], &[], EXIT_WAIT);
    let Some(status) = status else {
        panic!("{var}={value:?}: the server kept running; stdout {out:?} stderr {err:?}");
    };
    assert_eq!(status.code(), Some(2), "{var}={value:?}: stderr {err:?}");
    assert!(!out.contains("listening"), "{var}={value:?} started listening: {out:?}");
    assert!(err.contains(var), "{var}={value:?}: message does not name the variable: {err:?}");
    assert!(err.contains(&format!("{value:?}")), "{var}={value:?}: message does not quote the value: {err:?}");
    for a in accepted {
        assert!(err.contains(a), "{var}={value:?}: message does not mention {a:?}: {err:?}");
    }
}

#[test]
fn bad_environment_values_stop_the_server() {
    assert_rejected("FASTCACHE_PORT", "abc", &["0-65535"]);
    assert_rejected("FASTCACHE_PORT", "70000", &["0-65535"]);
    assert_rejected("FASTCACHE_MAXMEMORY_POLICY", "lru", &["noeviction", "allkeys-lru", "volatile-ttl"]);
    assert_rejected("WAL_FSYNC", "sometimes", &["always", "interval", "never"]);
    assert_rejected("FASTCACHE_BIND", "localhost:99", &["IP address"]);
    assert_rejected("FASTCACHE_MAXCLIENTS", "0", &["1 or more"]);
    assert_rejected("FASTCACHE_DATABASES", "0", &["1-1024"]);
    assert_rejected("FASTCACHE_MAXMEMORY", "lots", &["512mb"]);
    assert_rejected("ENABLE_PERSISTENCE", "maybe", &["true", "false"]);
    assert_rejected("SNAPSHOT_INTERVAL", "5 parsecs", &["duration"]);
    assert_rejected("FASTCACHE_PROTO_MAX_BULK_LEN", "1.5mb", &["bulk"]);
}

#[test]
fn help_lists_every_variable() {
    let (status, out, err) = run_to_exit(&[], &["--help"], EXIT_WAIT);
    assert_eq!(status.and_then(|s| s.code()), Some(0), "stderr {err:?}");
    // Every variable config.rs reads, and any other source file reads with
    // std::env::var, must be documented in --help.
    let config = include_str!("../src/config.rs");
    let mut names: Vec<String> = Vec::new();
    let mut collect = |source: &str, markers: &[&str]| {
        for marker in markers {
            for part in source.split(marker).skip(1) {
                if let Some(name) = part.split('"').next() {
                    if !name.is_empty()
                        && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                    {
                        names.push(name.to_string());
                    }
                }
            }
        }
    };
    collect(config, &["name: \"", "get(\""]);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = std::fs::read_dir(&src).unwrap_or_else(|e| panic!("listing {}: {e}", src.display()));
    for f in files.flatten() {
        if f.path().extension().is_some_and(|x| x == "rs") {
            let text = std::fs::read_to_string(f.path()).unwrap_or_default();
            collect(&text, &["env::var(\"", "env::var_os(\""]);
        }
    }
    names.sort_unstable();
    names.dedup();
    assert!(names.len() >= 20, "found only {names:?} in config.rs");
    for name in &names {
        assert!(out.contains(name), "--help does not mention {name}:\n{out}");
    }
    for name in ["FASTCACHE_PORT", "FASTCACHE_REQUIREPASS", "PERSISTENCE_DIR", "WAL_FSYNC", "MAX_SNAPSHOT_SIZE"] {
        assert!(names.iter().any(|n| n == name), "{name} missing from config.rs's variables");
    }

    let (status, out, _) = run_to_exit(&[], &["--version"], EXIT_WAIT);
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    assert!(out.starts_with("fastcache-server "), "{out:?}");

    let (status, _, err) = run_to_exit(&[], &["--port", "1"], EXIT_WAIT);
    assert!(status.is_some_and(|s| !s.success()), "an unknown argument must fail");
    assert!(err.contains("--help"), "{err:?}");
}

#[test]
fn a_port_in_use_is_reported() {
    let s = Server::start();
    let port = s.port.to_string();
    let dir = common::TempDir::new("busy");
    let dir_s = dir.path().to_string_lossy().into_owned();
    let (status, _, err) = run_to_exit(&[("FASTCACHE_PORT", &port), ("PERSISTENCE_DIR", &dir_s)], &[], EXIT_WAIT);
    assert!(status.is_some_and(|s| !s.success()), "second server on a busy port did not fail: {err:?}");
    assert!(err.contains(&port), "message does not name the port: {err:?}");
    // The first server is unaffected.
    assert_eq!(s.resp().cmd(&["PING"]), "+PONG\r\n");
}

#[test]
fn a_thousand_idle_connections() {
    let s = Server::start();
    let mut idle: Vec<_> = (0..1000).map(|_| s.raw()).collect();
    // The server still answers a new client promptly.
    let started = Instant::now();
    let mut c = s.resp();
    assert_eq!(c.cmd(&["SET", "k", "v"]), "+OK\r\n");
    assert!(started.elapsed() < Duration::from_secs(5), "slow with 1000 idle clients: {:?}", started.elapsed());
    // And every idle connection was admitted and is served.
    for conn in idle.iter_mut() {
        conn.write_all(b"GET k\r\n").unwrap_or_else(|e| panic!("write: {e}"));
    }
    for (i, conn) in idle.iter_mut().enumerate() {
        let mut got = [0u8; 7];
        conn.read_exact(&mut got).unwrap_or_else(|e| panic!("idle connection {i}: {e}"));
        assert_eq!(&got, b"$1\r\nv\r\n", "idle connection {i}");
    }
    drop(idle);
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
}

#[test]
fn idle_timeout_closes_quiet_clients() {
    let s = Server::start_with(&[("FASTCACHE_TIMEOUT", "1")]);
    let mut c = s.resp();
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
    let started = Instant::now();
    assert!(c.is_closed_within(Duration::from_secs(5)), "idle client not closed");
    assert!(started.elapsed() >= Duration::from_millis(900), "closed too early: {:?}", started.elapsed());
}

#[test]
fn databases_bound_select() {
    let s = Server::start_with(&[("FASTCACHE_DATABASES", "2")]);
    let mut c = s.resp();
    assert_eq!(c.cmd(&["SELECT", "1"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SELECT", "2"]), "-ERR DB index is out of range\r\n");
}

#[test]
fn sigterm_finishes_in_flight_work_and_exits_zero() {
    let mut server = Server::start();
    let mut client = server.resp();
    // A pipelined batch in flight when the signal arrives is still answered.
    let mut batch = Vec::new();
    for i in 0..200 {
        batch.extend_from_slice(&common::encode_str(&["SET", &format!("k{i}"), "v"]));
    }
    client.send(&batch);
    let replies = client.read_replies(200);
    assert!(replies.iter().all(|r| r == "+OK\r\n"), "{replies:?}");
    let status = std::process::Command::new("kill").args(["-TERM", &server.pid().to_string()]).status();
    assert!(status.is_ok_and(|s| s.success()));
    let exit = server.wait_exit(EXIT_WAIT).expect("the server did not exit after SIGTERM");
    assert_eq!(exit.code(), Some(0), "stderr: {}", server.stderr_text());
    assert!(server.stderr_text().contains("SIGTERM received"), "stderr: {}", server.stderr_text());
}
