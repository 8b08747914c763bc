//! Introspection and administration against the real binary: INFO, CONFIG
//! GET/SET/RESETSTAT/REWRITE, CLIENT and COMMAND. Expected replies are
//! those Redis 7.0 sends for the same input.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{encode_str, Resp, Server};
use redis::Value;

const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The text of a RESP2 bulk-string reply (`$N\r\n...\r\n`).
fn bulk_text(reply: &str) -> String {
    let (head, rest) = reply.split_once("\r\n").unwrap_or_else(|| panic!("not a bulk reply: {reply:?}"));
    assert!(head.starts_with('$'), "not a bulk reply: {reply:?}");
    rest.strip_suffix("\r\n").unwrap_or(rest).to_string()
}

/// INFO `args` as `field -> value` (section headers and blank lines dropped).
fn info_fields(c: &mut Resp, args: &[&str]) -> HashMap<String, String> {
    let mut cmd = vec!["INFO"];
    cmd.extend_from_slice(args);
    let text = bulk_text(&c.cmd(&cmd));
    text.split("\r\n")
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

fn info_num(c: &mut Resp, section: &str, field: &str) -> u64 {
    let f = info_fields(c, &[section]);
    f.get(field).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("INFO {section} has no numeric {field}: {f:?}"))
}

/// `key=value` fields of one CLIENT LIST line.
fn client_fields(line: &str) -> HashMap<String, String> {
    line.split(' ').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn client_id(c: &mut Resp) -> u64 {
    let r = c.cmd(&["CLIENT", "ID"]);
    r.trim_start_matches(':').trim_end().parse().unwrap_or_else(|e| panic!("CLIENT ID {r:?}: {e}"))
}

/// Polls `f` until it is true, for at most `limit`.
fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn info_sections_and_fields() {
    let s = Server::start();
    let mut c = s.resp();
    let text = bulk_text(&c.cmd(&["INFO"]));
    let headers: Vec<&str> = text.split("\r\n").filter(|l| l.starts_with("# ")).collect();
    assert_eq!(
        headers,
        [
            "# Server",
            "# Clients",
            "# Memory",
            "# Persistence",
            "# Stats",
            "# Replication",
            "# CPU",
            "# Modules",
            "# Cluster",
            "# Keyspace"
        ]
    );
    // CRLF line endings, one blank line between sections, no bare LF.
    assert!(text.contains("\r\n\r\n# Clients\r\n"), "{text:?}");
    assert_eq!(text.matches('\n').count(), text.matches("\r\n").count());
    assert!(text.ends_with("# Keyspace\r\n"), "empty keyspace section last: {text:?}");

    let f = info_fields(&mut c, &[]);
    assert_eq!(f["redis_version"], "7.0.15");
    assert_eq!(f["fastcache_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(f["redis_mode"], "standalone");
    assert_eq!(f["tcp_port"], s.port.to_string());
    assert_eq!(f["process_id"], s.pid().to_string());
    assert_eq!(f["hz"], "10");
    assert_eq!(f["config_file"], "");
    assert_eq!(f["run_id"].len(), 40);
    assert!(f["executable"].contains("fastcache-server"), "{}", f["executable"]);
    assert_eq!(f["connected_clients"], "1");
    assert_eq!(f["maxclients"], "10000");
    assert_eq!(f["blocked_clients"], "0");
    assert_eq!(f["maxmemory"], "0");
    assert_eq!(f["maxmemory_human"], "0B");
    assert_eq!(f["maxmemory_policy"], "noeviction");
    assert_eq!(f["mem_allocator"], "mimalloc");
    assert!(f["used_memory_rss"].parse::<u64>().is_ok_and(|n| n > 0));
    assert_eq!(f["loading"], "0");
    // The WAL is the append-only log: tools reading aof_enabled see it on.
    assert_eq!(f["aof_enabled"], "1");
    assert_eq!(f["rdb_bgsave_in_progress"], "0");
    // Persistence is on by default: the WAL reports itself.
    assert_eq!(f["fastcache_persistence"], "wal");
    assert_eq!(f["wal_fsync"], "interval");
    assert_eq!(f["wal_status"], "ok");
    assert_eq!(f["role"], "master");
    assert_eq!(f["connected_slaves"], "0");
    assert_eq!(f["master_repl_offset"], "0");
    assert_eq!(f["master_replid"].len(), 40);
    assert!(f["master_replid"].chars().all(|c| c.is_ascii_hexdigit()));
    assert!(f["used_cpu_user"].parse::<f64>().is_ok() && f["used_cpu_sys"].parse::<f64>().is_ok());
    assert_eq!(f["cluster_enabled"], "0");
    for k in ["uptime_in_seconds", "uptime_in_days", "server_time_usec", "total_net_input_bytes", "keyspace_hits"] {
        assert!(f[k].parse::<u64>().is_ok(), "{k}={}", f[k]);
    }

    // One section, several sections, unknown sections (empty), case.
    let server = bulk_text(&c.cmd(&["INFO", "SERVER"]));
    assert!(server.starts_with("# Server\r\nredis_version:7.0.15\r\n"), "{server:?}");
    assert!(!server.contains("# Clients"));
    let two = bulk_text(&c.cmd(&["INFO", "keyspace", "clients"]));
    assert!(two.starts_with("# Clients\r\n") && two.contains("\r\n\r\n# Keyspace\r\n"), "{two:?}");
    assert_eq!(c.cmd(&["INFO", "nosuch"]), "$0\r\n\r\n");
    for all in ["all", "everything", "default"] {
        assert!(bulk_text(&c.cmd(&["INFO", all])).contains("# Keyspace"), "{all}");
    }

    // Keyspace, persistence and stats follow the data.
    let dirty = info_num(&mut c, "persistence", "rdb_changes_since_last_save");
    assert_eq!(c.cmd(&["SET", "a", "1"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "b", "2", "EX", "100"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SELECT", "3"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "c", "3"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SELECT", "0"]), "+OK\r\n");
    let ks = bulk_text(&c.cmd(&["INFO", "keyspace"]));
    assert_eq!(ks, "# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=0\r\ndb3:keys=1,expires=0,avg_ttl=0\r\n");
    assert_eq!(info_num(&mut c, "persistence", "rdb_changes_since_last_save"), dirty + 3);
    let hits = info_num(&mut c, "stats", "keyspace_hits");
    let misses = info_num(&mut c, "stats", "keyspace_misses");
    c.cmd(&["GET", "a"]);
    c.cmd(&["GET", "nope"]);
    assert_eq!(info_num(&mut c, "stats", "keyspace_hits"), hits + 1);
    assert_eq!(info_num(&mut c, "stats", "keyspace_misses"), misses + 1);
    let processed = info_num(&mut c, "stats", "total_commands_processed");
    c.cmd(&["PING"]);
    // INFO itself counts, as in Redis.
    assert_eq!(info_num(&mut c, "stats", "total_commands_processed"), processed + 2);
    assert!(info_num(&mut c, "memory", "used_memory") > 0);

    // A second client shows up in the clients section and the counters.
    let mut other = s.resp();
    assert_eq!(other.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(info_num(&mut c, "clients", "connected_clients"), 2);
    assert!(info_num(&mut c, "stats", "total_connections_received") >= 2);
}

#[test]
fn info_counts_subscriptions_and_rates() {
    let s = Server::start();
    let mut c = s.resp();
    let mut sub = s.resp();
    sub.cmd(&["SUBSCRIBE", "news"]);
    sub.cmd(&["PSUBSCRIBE", "a*"]);
    let f = info_fields(&mut c, &["stats"]);
    assert_eq!((f["pubsub_channels"].as_str(), f["pubsub_patterns"].as_str()), ("1", "1"));

    // Sustained traffic shows up as a non-zero instantaneous rate within
    // the 1.6 s window the rates average over.
    let burst: Vec<u8> = (0..200).flat_map(|_| encode_str(&["PING"])).collect();
    let ok = eventually(Duration::from_secs(5), || {
        c.send(&burst);
        c.read_replies(200);
        info_num(&mut c, "stats", "instantaneous_ops_per_sec") > 0
    });
    assert!(ok, "instantaneous_ops_per_sec stayed 0 under load");
    let f = info_fields(&mut c, &["stats"]);
    assert!(f["instantaneous_input_kbps"].parse::<f64>().is_ok_and(|v| v > 0.0), "{f:?}");
}

#[test]
fn info_blocked_clients_and_client_unblock() {
    let s = Server::start();
    let mut c = s.resp();
    let mut blocked = s.resp();
    let id = client_id(&mut blocked);
    blocked.send(&encode_str(&["BLPOP", "q", "0"]));
    assert!(eventually(CLOSE_WAIT, || info_num(&mut c, "clients", "blocked_clients") == 1), "BLPOP never blocked");
    let line = bulk_text(&c.cmd(&["CLIENT", "LIST", "ID", &id.to_string()]));
    assert!(client_fields(line.trim_end()).get("flags").is_some_and(|f| f.contains('b')), "{line}");

    assert_eq!(
        c.cmd(&["CLIENT", "UNBLOCK", &id.to_string(), "maybe"]),
        "-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n"
    );
    assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", "x"]), "-ERR value is not an integer or out of range\r\n");
    assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", &id.to_string()]), ":1\r\n");
    // Unblocked with TIMEOUT: the timeout reply.
    assert_eq!(blocked.read_reply(), "*-1\r\n");
    assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", &id.to_string()]), ":0\r\n");
    assert_eq!(info_num(&mut c, "clients", "blocked_clients"), 0);

    blocked.send(&encode_str(&["BLPOP", "q", "0"]));
    assert!(eventually(CLOSE_WAIT, || info_num(&mut c, "clients", "blocked_clients") == 1));
    assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", &id.to_string(), "ERROR"]), ":1\r\n");
    assert_eq!(blocked.read_reply(), "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n");
    assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", "999999"]), ":0\r\n");
}

#[test]
fn config_get_and_set() {
    let s = Server::start();
    let mut c = s.resp();
    assert_eq!(c.cmd(&["CONFIG", "GET", "maxmemory"]), "*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n");
    // Several patterns, duplicates once, unknown names nothing.
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "maxmemory", "timeout", "maxmemory", "nosuch"]),
        "*4\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n$7\r\ntimeout\r\n$1\r\n0\r\n"
    );
    // An exact name is echoed as written.
    assert_eq!(c.cmd(&["CONFIG", "GET", "MAXCLIENTS"]), "*2\r\n$10\r\nMAXCLIENTS\r\n$5\r\n10000\r\n");
    let glob = c.cmd(&["CONFIG", "GET", "maxmemory*"]);
    for name in ["maxmemory", "maxmemory-policy", "maxmemory-samples"] {
        assert!(glob.contains(&format!("${}\r\n{name}\r\n", name.len())), "{name} in {glob:?}");
    }
    assert!(c.cmd(&["CONFIG", "GET", "*"]).starts_with('*'));
    assert_eq!(c.cmd(&["CONFIG", "GET", "databases"]), "*2\r\n$9\r\ndatabases\r\n$2\r\n16\r\n");
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "port"]),
        format!("*2\r\n$4\r\nport\r\n${}\r\n{}\r\n", s.port.to_string().len(), s.port)
    );
    assert_eq!(c.cmd(&["CONFIG", "GET", "appendonly"]), "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n");
    assert_eq!(c.cmd(&["CONFIG", "GET", "save"]), "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
    let dir = c.cmd(&["CONFIG", "GET", "dir"]);
    assert!(dir.contains(&s.dir.display().to_string()), "{dir:?}");

    // SET, several at once, sizes with units.
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "100mb", "timeout", "300"]), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "GET", "maxmemory"]), "*2\r\n$9\r\nmaxmemory\r\n$9\r\n104857600\r\n");
    assert_eq!(c.cmd(&["CONFIG", "GET", "timeout"]), "*2\r\n$7\r\ntimeout\r\n$3\r\n300\r\n");
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "1k"]), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "GET", "maxmemory"]), "*2\r\n$9\r\nmaxmemory\r\n$4\r\n1000\r\n");
    assert_eq!(info_fields(&mut c, &["memory"])["maxmemory_human"], "1000B");
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "0", "timeout", "0"]), "+OK\r\n");

    // Atomic: one bad value and nothing changes.
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "maxmemory", "10mb", "maxclients", "abc"]),
        "-ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument couldn't be parsed into an integer\r\n"
    );
    assert_eq!(c.cmd(&["CONFIG", "GET", "maxmemory"]), "*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n");

    // Redis' errors.
    let cases: &[(&[&str], &str)] = &[
        (&["CONFIG", "SET", "x", "1"], "-ERR Unknown option or number of arguments for CONFIG SET - 'x'\r\n"),
        (
            &["CONFIG", "SET", "maxmemory", "abc"],
            "-ERR CONFIG SET failed (possibly related to argument 'maxmemory') - argument must be a memory value\r\n",
        ),
        (
            &["CONFIG", "SET", "maxmemory", "1", "maxmemory", "2"],
            "-ERR CONFIG SET failed (possibly related to argument 'maxmemory') - duplicate parameter\r\n",
        ),
        (
            &["CONFIG", "SET", "databases", "3"],
            "-ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config\r\n",
        ),
        (&["CONFIG", "SET", "port", "1"], "-ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config\r\n"),
        (&["CONFIG", "SET", "bind", "0.0.0.0"], "-ERR CONFIG SET failed (possibly related to argument 'bind') - can't set immutable config\r\n"),
        (
            &["CONFIG", "SET", "maxmemory-policy", "lru"],
            "-ERR CONFIG SET failed (possibly related to argument 'maxmemory-policy') - argument(s) must be one of the following: volatile-lru, volatile-lfu, volatile-random, volatile-ttl, allkeys-lru, allkeys-lfu, allkeys-random, noeviction\r\n",
        ),
        (
            &["CONFIG", "SET", "maxclients", "0"],
            "-ERR CONFIG SET failed (possibly related to argument 'maxclients') - argument must be between 1 and 4294967295 inclusive\r\n",
        ),
        (
            &["CONFIG", "SET", "notify-keyspace-events", "Q"],
            "-ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'.\r\n",
        ),
        (
            &["CONFIG", "SET", "proto-max-bulk-len", "10"],
            "-ERR CONFIG SET failed (possibly related to argument 'proto-max-bulk-len') - argument must be between 1048576 and 9223372036854775807 inclusive\r\n",
        ),
        (
            &["CONFIG", "SET", "activerehashing", "maybe"],
            "-ERR CONFIG SET failed (possibly related to argument 'activerehashing') - argument must be 'yes' or 'no'\r\n",
        ),
        (
            &["CONFIG", "SET", "databases", "1", "nosuch", "2"],
            "-ERR CONFIG SET failed (possibly related to argument 'databases') - can't set immutable config\r\n",
        ),
        (&["CONFIG", "SET", "maxmemory", "abc", "nosuch", "2"], "-ERR Unknown option or number of arguments for CONFIG SET - 'nosuch'\r\n"),
        (&["CONFIG", "SET", "maxmemory"], "-ERR wrong number of arguments for 'config|set' command\r\n"),
        (&["CONFIG", "SET", "maxmemory", "1", "timeout"], "-ERR wrong number of arguments for 'config|set' command\r\n"),
        (&["CONFIG", "GET"], "-ERR wrong number of arguments for 'config|get' command\r\n"),
        (&["CONFIG"], "-ERR wrong number of arguments for 'config' command\r\n"),
        (&["CONFIG", "FOO"], "-ERR unknown subcommand 'FOO'. Try CONFIG HELP.\r\n"),
        (&["CONFIG", "RESETSTAT", "x"], "-ERR wrong number of arguments for 'config|resetstat' command\r\n"),
    ];
    for (cmd, want) in cases {
        assert_eq!(c.cmd(cmd), *want, "{cmd:?}");
    }

    // Parameters that do not apply are kept and echoed, aliases included.
    assert_eq!(c.cmd(&["CONFIG", "SET", "hash-max-ziplist-entries", "256", "ACTIVEREHASHING", "NO"]), "+OK\r\n");
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "hash-max-*-entries"]),
        "*4\r\n$25\r\nhash-max-listpack-entries\r\n$3\r\n256\r\n$24\r\nhash-max-ziplist-entries\r\n$3\r\n256\r\n"
    );
    assert_eq!(c.cmd(&["CONFIG", "GET", "activerehashing"]), "*2\r\n$15\r\nactiverehashing\r\n$2\r\nno\r\n");
    assert_eq!(c.cmd(&["CONFIG", "SET", "stream-node-max-bytes", "8kb"]), "+OK\r\n");
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "stream-node-max-bytes"]),
        "*2\r\n$21\r\nstream-node-max-bytes\r\n$4\r\n8192\r\n"
    );
    // hz is clamped to 1..=500 as Redis does; the actual rate stays 10.
    assert_eq!(c.cmd(&["CONFIG", "SET", "hz", "1000"]), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "GET", "hz"]), "*2\r\n$2\r\nhz\r\n$3\r\n500\r\n");
    assert_eq!(info_fields(&mut c, &["server"])["configured_hz"], "500");
    // Persistence switches cannot pretend: only the true value is accepted.
    assert_eq!(c.cmd(&["CONFIG", "SET", "save", ""]), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "no"]), "+OK\r\n");
    assert!(c.cmd(&["CONFIG", "SET", "appendonly", "yes"]).starts_with("-ERR CONFIG SET failed"));
    assert!(c.cmd(&["CONFIG", "SET", "save", "900 1"]).starts_with("-ERR CONFIG SET failed"));

    // Keyspace notifications render as Redis does.
    assert_eq!(c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]), "+OK\r\n");
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "notify-keyspace-events"]),
        "*2\r\n$22\r\nnotify-keyspace-events\r\n$3\r\nAKE\r\n"
    );
    let mut sub = s.resp();
    sub.cmd(&["SUBSCRIBE", "__keyevent@0__:set"]);
    c.cmd(&["SET", "k", "v"]);
    assert_eq!(sub.read_reply(), "*3\r\n$7\r\nmessage\r\n$18\r\n__keyevent@0__:set\r\n$1\r\nk\r\n");
    assert_eq!(c.cmd(&["CONFIG", "SET", "notify-keyspace-events", ""]), "+OK\r\n");
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "notify-keyspace-events"]),
        "*2\r\n$22\r\nnotify-keyspace-events\r\n$0\r\n\r\n"
    );

    // REWRITE has no file to write (configuration is the environment).
    assert_eq!(c.cmd(&["CONFIG", "REWRITE"]), "+OK\r\n");
    let help = c.cmd(&["CONFIG", "HELP"]);
    assert!(
        help.starts_with("*11\r\n+CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n"),
        "{help:?}"
    );
}

#[test]
fn config_get_is_a_map_in_resp3() {
    let s = Server::start();
    let mut con = s.client_resp3();
    let v: Value = redis::cmd("CONFIG").arg("GET").arg("maxmemory").arg("timeout").query(&mut con).expect("CONFIG GET");
    let Value::Map(pairs) = v else { panic!("expected a map, got {v:?}") };
    let pairs: Vec<(String, String)> = pairs
        .into_iter()
        .map(|(k, v)| (redis::from_redis_value(k).expect("name"), redis::from_redis_value(v).expect("value")))
        .collect();
    assert_eq!(pairs, [("maxmemory".to_string(), "0".to_string()), ("timeout".to_string(), "0".to_string())]);
}

#[test]
fn config_resetstat() {
    let s = Server::start();
    let mut c = s.resp();
    c.cmd(&["SET", "a", "1"]);
    c.cmd(&["GET", "a"]);
    c.cmd(&["GET", "b"]);
    assert!(info_num(&mut c, "stats", "keyspace_hits") >= 1);
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), "+OK\r\n");
    let f = info_fields(&mut c, &["stats"]);
    assert_eq!(f["keyspace_hits"], "0");
    assert_eq!(f["keyspace_misses"], "0");
    assert_eq!(f["rejected_connections"], "0");
    // Only the INFO call itself since the reset.
    assert_eq!(f["total_commands_processed"], "1");
    assert_eq!(f["total_connections_received"], "0");
    c.cmd(&["GET", "a"]);
    assert_eq!(info_num(&mut c, "stats", "keyspace_hits"), 1);
    // The data is untouched.
    assert_eq!(c.cmd(&["GET", "a"]), "$1\r\n1\r\n");
}

#[test]
fn config_set_maxmemory_and_policy_take_effect() {
    let s = Server::start();
    let mut c = s.resp();
    let value = "x".repeat(1000);
    for i in 0..50 {
        assert_eq!(c.cmd(&["SET", &format!("k{i}"), &value]), "+OK\r\n");
    }
    let used = info_num(&mut c, "memory", "used_memory");
    assert!(used > 50_000, "used_memory {used}");
    // Under the limit with noeviction: writes are refused, reads go on.
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", &(used / 2).to_string()]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "new", "v"]), "-OOM command not allowed when used memory > 'maxmemory'.\r\n");
    assert_eq!(c.cmd(&["GET", "k1"]), format!("$1000\r\n{value}\r\n"));
    assert_eq!(c.cmd(&["DBSIZE"]), ":50\r\n");

    // A policy that evicts makes room instead.
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]), "+OK\r\n");
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "maxmemory-policy"]),
        "*2\r\n$16\r\nmaxmemory-policy\r\n$11\r\nallkeys-lru\r\n"
    );
    assert_eq!(c.cmd(&["SET", "new", "v"]), "+OK\r\n");
    assert!(info_num(&mut c, "stats", "evicted_keys") > 0);
    // Eviction runs before the write, as in Redis, so the new key itself
    // may overshoot the limit a little; half the old keys are gone.
    assert!(info_num(&mut c, "memory", "used_memory") < used * 3 / 4);
    let dbsize: u64 = c.cmd(&["DBSIZE"]).trim_start_matches(':').trim_end().parse().unwrap_or(u64::MAX);
    assert!(dbsize < 40, "DBSIZE {dbsize} after eviction");
    assert_eq!(info_fields(&mut c, &["memory"])["maxmemory_policy"], "allkeys-lru");

    // No limit: writes succeed again under noeviction.
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "0", "maxmemory-policy", "noeviction"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "again", &value]), "+OK\r\n");
}

#[test]
fn requirepass_at_runtime() {
    let s = Server::start();
    let mut admin = s.resp();
    assert_eq!(admin.cmd(&["CONFIG", "SET", "requirepass", "s3cret"]), "+OK\r\n");
    // The connection that set it stays authenticated.
    assert_eq!(admin.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(admin.cmd(&["CONFIG", "GET", "requirepass"]), "*2\r\n$11\r\nrequirepass\r\n$6\r\ns3cret\r\n");

    let mut c = s.resp();
    assert_eq!(c.cmd(&["PING"]), "-NOAUTH Authentication required.\r\n");
    assert_eq!(c.cmd(&["AUTH", "wrong"]), "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    assert_eq!(c.cmd(&["AUTH", "s3cret"]), "+OK\r\n");
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");

    // An empty password turns authentication off for new connections.
    assert_eq!(admin.cmd(&["CONFIG", "SET", "requirepass", ""]), "+OK\r\n");
    let mut c = s.resp();
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(
        c.cmd(&["AUTH", "x"]),
        "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n"
    );
}

#[test]
fn client_identity_and_list() {
    let s = Server::start();
    let mut c = s.resp();
    let id = client_id(&mut c);
    assert!(id > 0);
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), "$-1\r\n");
    assert_eq!(c.cmd(&["CLIENT", "SETNAME", "worker-1"]), "+OK\r\n");
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), "$8\r\nworker-1\r\n");
    assert_eq!(
        c.cmd(&["CLIENT", "SETNAME", "a b"]),
        "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
    );
    assert_eq!(c.cmd(&["CLIENT", "SETINFO", "LIB-NAME", "mylib"]), "+OK\r\n");
    assert_eq!(c.cmd(&["CLIENT", "SETINFO", "lib-ver", "1.2"]), "+OK\r\n");
    assert_eq!(c.cmd(&["CLIENT", "SETINFO", "color", "x"]), "-ERR Unrecognized option 'color'\r\n");
    assert_eq!(c.cmd(&["SELECT", "2"]), "+OK\r\n");

    let info = bulk_text(&c.cmd(&["CLIENT", "INFO"]));
    assert!(info.ends_with('\n') && info.matches('\n').count() == 1, "{info:?}");
    let keys: Vec<&str> = info.trim_end().split(' ').filter_map(|kv| kv.split_once('=').map(|(k, _)| k)).collect();
    assert_eq!(
        keys,
        [
            "id",
            "addr",
            "laddr",
            "fd",
            "name",
            "age",
            "idle",
            "flags",
            "db",
            "sub",
            "psub",
            "ssub",
            "multi",
            "qbuf",
            "qbuf-free",
            "argv-mem",
            "multi-mem",
            "rbs",
            "rbp",
            "obl",
            "oll",
            "omem",
            "tot-mem",
            "events",
            "cmd",
            "user",
            "redir",
            "resp",
            "lib-name",
            "lib-ver"
        ]
    );
    let f = client_fields(info.trim_end());
    assert_eq!(f["id"], id.to_string());
    assert_eq!(f["laddr"], format!("127.0.0.1:{}", s.port));
    assert_eq!(f["name"], "worker-1");
    assert_eq!(f["flags"], "N");
    assert_eq!(f["db"], "2");
    assert_eq!(f["multi"], "-1");
    assert_eq!(f["cmd"], "client|info");
    assert_eq!(f["user"], "default");
    assert_eq!(f["resp"], "2");
    assert_eq!(f["lib-name"], "mylib");
    assert_eq!(f["lib-ver"], "1.2");
    assert!(f["fd"].parse::<i32>().is_ok_and(|fd| fd > 2), "{}", f["fd"]);

    // redis-rs identifies itself with CLIENT SETINFO on connect.
    let mut lib = s.client();
    let _: String = redis::cmd("PING").query(&mut lib).expect("PING");
    let mut sub = s.resp();
    sub.cmd(&["SUBSCRIBE", "ch"]);
    sub.cmd(&["PSUBSCRIBE", "p*"]);

    let list = bulk_text(&c.cmd(&["CLIENT", "LIST"]));
    let lines: Vec<HashMap<String, String>> = list.lines().map(client_fields).collect();
    assert_eq!(lines.len(), 3, "{list}");
    let ids: Vec<u64> = lines.iter().map(|l| l["id"].parse().unwrap_or(0)).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "sorted by id: {ids:?}");
    assert!(lines.iter().any(|l| l["lib-name"] == "redis-rs"), "{list}");
    let subscriber = lines.iter().find(|l| l["flags"] == "P").unwrap_or_else(|| panic!("no pubsub client in {list}"));
    assert_eq!(subscriber["cmd"], "psubscribe");

    let normal = bulk_text(&c.cmd(&["CLIENT", "LIST", "TYPE", "normal"]));
    assert_eq!(normal.lines().count(), 2, "{normal}");
    let pubsub = bulk_text(&c.cmd(&["CLIENT", "LIST", "TYPE", "PUBSUB"]));
    assert_eq!(pubsub.lines().count(), 1, "{pubsub}");
    assert_eq!(c.cmd(&["CLIENT", "LIST", "TYPE", "master"]), "$0\r\n\r\n");
    let by_id = bulk_text(&c.cmd(&["CLIENT", "LIST", "ID", "999999", &id.to_string()]));
    assert_eq!(by_id.lines().count(), 1);
    assert_eq!(client_fields(by_id.trim_end())["id"], id.to_string());

    // NO-EVICT shows as flag e.
    assert_eq!(c.cmd(&["CLIENT", "NO-EVICT", "on"]), "+OK\r\n");
    assert_eq!(client_fields(bulk_text(&c.cmd(&["CLIENT", "INFO"])).trim_end())["flags"], "e");
    assert_eq!(c.cmd(&["CLIENT", "NO-EVICT", "OFF"]), "+OK\r\n");

    let cases: &[(&[&str], &str)] = &[
        (&["CLIENT"], "-ERR wrong number of arguments for 'client' command\r\n"),
        (&["CLIENT", "FOO"], "-ERR unknown subcommand 'FOO'. Try CLIENT HELP.\r\n"),
        (&["CLIENT", "ID", "x"], "-ERR wrong number of arguments for 'client|id' command\r\n"),
        (&["CLIENT", "SETNAME"], "-ERR wrong number of arguments for 'client|setname' command\r\n"),
        (&["CLIENT", "LIST", "TYPE", "foo"], "-ERR Unknown client type 'foo'\r\n"),
        (&["CLIENT", "LIST", "ID", "x"], "-ERR Invalid client ID\r\n"),
        (&["CLIENT", "LIST", "foo"], "-ERR syntax error\r\n"),
        (&["CLIENT", "NO-EVICT", "maybe"], "-ERR syntax error\r\n"),
        (&["CLIENT", "REPLY", "maybe"], "-ERR syntax error\r\n"),
        (&["CLIENT", "KILL", "ID", "0"], "-ERR client-id should be greater than 0\r\n"),
        (&["CLIENT", "KILL", "TYPE", "foo"], "-ERR Unknown client type 'foo'\r\n"),
        (&["CLIENT", "KILL", "USER", "bob"], "-ERR No such user 'bob'\r\n"),
        (&["CLIENT", "KILL", "SKIPME", "maybe"], "-ERR syntax error\r\n"),
        (&["CLIENT", "KILL", "foo", "bar"], "-ERR syntax error\r\n"),
        (&["CLIENT", "KILL", "ID", "5", "x"], "-ERR syntax error\r\n"),
        (&["CLIENT", "KILL", "1.2.3.4:5"], "-ERR No such client\r\n"),
    ];
    for (cmd, want) in cases {
        assert_eq!(c.cmd(cmd), *want, "{cmd:?}");
    }
    let help = c.cmd(&["CLIENT", "HELP"]);
    assert!(
        help.starts_with("*") && help.contains("+CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n")
    );
}

#[test]
fn client_kill_closes_other_connections() {
    let s = Server::start();
    let mut c = s.resp();
    let mut victim = s.resp();
    let victim_id = client_id(&mut victim);
    assert_eq!(c.cmd(&["CLIENT", "KILL", "ID", &victim_id.to_string()]), ":1\r\n");
    assert!(victim.is_closed_within(CLOSE_WAIT), "killed connection stayed open");
    assert!(eventually(CLOSE_WAIT, || info_num(&mut c, "clients", "connected_clients") == 1));
    assert_eq!(c.cmd(&["CLIENT", "KILL", "ID", &victim_id.to_string()]), ":0\r\n");

    // The old form by address.
    let mut victim = s.resp();
    let addr = client_fields(bulk_text(&victim.cmd(&["CLIENT", "INFO"])).trim_end())["addr"].clone();
    assert_eq!(c.cmd(&["CLIENT", "KILL", &addr]), "+OK\r\n");
    assert!(victim.is_closed_within(CLOSE_WAIT));
    assert_eq!(c.cmd(&["CLIENT", "KILL", &addr]), "-ERR No such client\r\n");

    // By type: subscribers only.
    let mut subscriber = s.resp();
    subscriber.cmd(&["SUBSCRIBE", "ch"]);
    let mut bystander = s.resp();
    assert_eq!(c.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"]), ":1\r\n");
    assert!(subscriber.is_closed_within(CLOSE_WAIT));
    assert_eq!(bystander.cmd(&["PING"]), "+PONG\r\n");

    // Filters combine; the caller is skipped unless SKIPME no.
    let own = client_id(&mut c);
    let laddr = format!("127.0.0.1:{}", s.port);
    assert_eq!(c.cmd(&["CLIENT", "KILL", "ID", &own.to_string()]), ":0\r\n");
    assert_eq!(c.cmd(&["CLIENT", "KILL", "LADDR", &laddr, "USER", "default", "TYPE", "normal"]), ":1\r\n");
    assert!(bystander.is_closed_within(CLOSE_WAIT));
    assert_eq!(c.cmd(&["CLIENT", "KILL", "ID", &own.to_string(), "SKIPME", "no"]), ":1\r\n");
    assert!(c.is_closed_within(CLOSE_WAIT), "CLIENT KILL SKIPME no left the caller open");
}

#[test]
fn client_reply_off_on_skip() {
    let s = Server::start();
    let mut c = s.resp();
    // Pipelined, as redis-cli would never do it: only the replies Redis
    // sends arrive, in order.
    let mut batch = Vec::new();
    for cmd in [
        &["CLIENT", "REPLY", "OFF"][..],
        &["SET", "a", "1"],
        &["PING"],
        &["CLIENT", "REPLY", "SKIP"],
        &["GET", "a"],
        &["CLIENT", "REPLY", "ON"],
        &["GET", "a"],
        &["CLIENT", "REPLY", "SKIP"],
        &["PING", "skipped"],
        &["PING", "shown"],
    ] {
        batch.extend(encode_str(cmd));
    }
    c.send(&batch);
    assert_eq!(c.read_replies(3), ["+OK\r\n", "$1\r\n1\r\n", "$5\r\nshown\r\n"]);
    // Commands under OFF ran all the same.
    assert_eq!(c.cmd(&["GET", "a"]), "$1\r\n1\r\n");

    // One at a time, as a client library would.
    assert_eq!(c.cmd(&["CLIENT", "REPLY", "ON"]), "+OK\r\n");
    c.send(&encode_str(&["CLIENT", "REPLY", "OFF"]));
    c.send(&encode_str(&["INCR", "n"]));
    c.send(&encode_str(&["CLIENT", "REPLY", "ON"]));
    assert_eq!(c.read_reply(), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "n"]), "$1\r\n1\r\n");
    assert!(c.pending().is_empty());
}

#[test]
fn command_introspection() {
    let s = Server::start();
    let mut con = s.client();
    let count: i64 = redis::cmd("COMMAND").arg("COUNT").query(&mut con).expect("COUNT");
    let all: Vec<Value> = redis::cmd("COMMAND").query(&mut con).expect("COMMAND");
    assert_eq!(all.len() as i64, count);
    let names: Vec<String> = all
        .iter()
        .filter_map(|v| match v {
            Value::Array(e) => redis::from_redis_value_ref(&e[0]).ok(),
            _ => None,
        })
        .collect();
    for name in [
        "get",
        "set",
        "zadd",
        "blpop",
        "sort",
        "object",
        "ping",
        "echo",
        "auth",
        "hello",
        "client",
        "info",
        "config",
        "command",
        "subscribe",
        "psubscribe",
        "publish",
        "pubsub",
        "quit",
        "reset",
        "time",
        "lastsave",
        "shutdown",
        "debug",
        "multi",
        "exec",
    ] {
        assert!(names.iter().any(|n| n == name), "COMMAND lacks {name}");
    }
    assert!(all.iter().all(|v| matches!(v, Value::Array(e) if e.len() == 10)), "every entry has 10 elements");

    let mut c = s.resp();
    // Redis 7.0's exact entry for GET.
    assert_eq!(
        c.cmd(&["COMMAND", "INFO", "get"]),
        "*1\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n*3\r\n+@read\r\n+@string\r\n+@fast\r\n*0\r\n\
         *1\r\n*6\r\n$5\r\nflags\r\n*2\r\n+RO\r\n+access\r\n$12\r\nbegin_search\r\n*4\r\n$4\r\ntype\r\n$5\r\nindex\r\n$4\r\nspec\r\n\
         *2\r\n$5\r\nindex\r\n:1\r\n$9\r\nfind_keys\r\n*4\r\n$4\r\ntype\r\n$5\r\nrange\r\n$4\r\nspec\r\n*6\r\n$7\r\nlastkey\r\n:0\r\n\
         $7\r\nkeystep\r\n:1\r\n$5\r\nlimit\r\n:0\r\n*0\r\n"
    );
    assert_eq!(c.cmd(&["COMMAND", "INFO", "nosuch"]), "*1\r\n$-1\r\n");
    assert_eq!(
        c.cmd(&["COMMAND", "INFO", "ping"]),
        "*1\r\n*10\r\n$4\r\nping\r\n:-1\r\n*1\r\n+fast\r\n:0\r\n:0\r\n:0\r\n*2\r\n+@fast\r\n+@connection\r\n\
         *2\r\n$25\r\nrequest_policy:all_shards\r\n$29\r\nresponse_policy:all_succeeded\r\n*0\r\n*0\r\n"
    );
    let client = c.cmd(&["COMMAND", "INFO", "client"]);
    assert!(client.contains("$11\r\nclient|list\r\n:-2\r\n"), "{client:?}");
    assert!(c.cmd(&["COMMAND", "INFO", "CLIENT|KILL"]).starts_with("*1\r\n*10\r\n$11\r\nclient|kill\r\n:-3\r\n"));

    // DOCS: summary, since, group, complexity.
    assert_eq!(
        c.cmd(&["COMMAND", "DOCS", "get", "nosuch"]),
        "*2\r\n$3\r\nget\r\n*8\r\n$7\r\nsummary\r\n$22\r\nGet the value of a key\r\n$5\r\nsince\r\n$5\r\n1.0.0\r\n\
         $5\r\ngroup\r\n$6\r\nstring\r\n$10\r\ncomplexity\r\n$4\r\nO(1)\r\n"
    );
    let mut con3 = s.client_resp3();
    let docs: Value = redis::cmd("COMMAND").arg("DOCS").query(&mut con3).expect("DOCS");
    let Value::Map(docs) = docs else { panic!("DOCS is a map in RESP3") };
    assert_eq!(docs.len() as i64, count);
    for (name, doc) in &docs {
        let Value::Map(fields) = doc else { panic!("doc of {name:?} is not a map") };
        let keys: Vec<String> = fields.iter().filter_map(|(k, _)| redis::from_redis_value_ref(k).ok()).collect();
        assert_eq!(&keys[..4], ["summary", "since", "group", "complexity"], "{name:?}");
    }

    // LIST includes subcommands; FILTERBY narrows.
    let list: Vec<String> = redis::cmd("COMMAND").arg("LIST").query(&mut con).expect("LIST");
    assert!(list.len() as i64 > count);
    assert!(list.iter().any(|n| n == "client|list") && list.iter().any(|n| n == "get"));
    let filtered: Vec<String> =
        redis::cmd("COMMAND").arg("LIST").arg("FILTERBY").arg("PATTERN").arg("config*").query(&mut con).expect("LIST");
    assert_eq!(filtered, ["config", "config|get", "config|help", "config|resetstat", "config|rewrite", "config|set"]);
    let cat: Vec<String> =
        redis::cmd("COMMAND").arg("LIST").arg("FILTERBY").arg("ACLCAT").arg("hash").query(&mut con).expect("LIST");
    assert!(cat.iter().any(|n| n == "hset") && !cat.iter().any(|n| n == "get"), "{cat:?}");
    assert_eq!(c.cmd(&["COMMAND", "LIST", "FILTERBY", "MODULE", "x"]), "*0\r\n");

    // GETKEYS and GETKEYSANDFLAGS.
    assert_eq!(c.cmd(&["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"]), "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    assert_eq!(
        c.cmd(&["COMMAND", "GETKEYS", "ZUNIONSTORE", "d", "2", "x", "y", "WEIGHTS", "1", "2"]),
        "*3\r\n$1\r\nd\r\n$1\r\nx\r\n$1\r\ny\r\n"
    );
    assert_eq!(c.cmd(&["COMMAND", "GETKEYS", "OBJECT", "ENCODING", "k"]), "*1\r\n$1\r\nk\r\n");
    assert_eq!(c.cmd(&["COMMAND", "GETKEYS", "SORT", "k", "STORE", "d"]), "*2\r\n$1\r\nk\r\n$1\r\nd\r\n");
    assert_eq!(
        c.cmd(&["COMMAND", "GETKEYSANDFLAGS", "LMOVE", "a", "b", "LEFT", "RIGHT"]),
        "*2\r\n*2\r\n$1\r\na\r\n*3\r\n+RW\r\n+access\r\n+delete\r\n*2\r\n$1\r\nb\r\n*2\r\n+RW\r\n+insert\r\n"
    );
    let cases: &[(&[&str], &str)] = &[
        (&["COMMAND", "GETKEYS"], "-ERR wrong number of arguments for 'command|getkeys' command\r\n"),
        (&["COMMAND", "GETKEYS", "get"], "-ERR wrong number of arguments for 'command|getkeys' command\r\n"),
        (&["COMMAND", "GETKEYS", "nosuch", "a"], "-ERR Invalid command specified\r\n"),
        (&["COMMAND", "GETKEYS", "ping", "x"], "-ERR The command has no key arguments\r\n"),
        (&["COMMAND", "GETKEYS", "client", "list", "x"], "-ERR The command has no key arguments\r\n"),
        (&["COMMAND", "GETKEYS", "get", "a", "b"], "-ERR Invalid number of arguments specified for command\r\n"),
        (
            &["COMMAND", "GETKEYS", "zunionstore", "d", "5", "a", "b"],
            "-ERR Invalid arguments specified for command\r\n",
        ),
        (&["COMMAND", "GETKEYS", "object", "foo", "k"], "-ERR Invalid command specified\r\n"),
        (&["COMMAND", "FOO"], "-ERR unknown subcommand 'FOO'. Try COMMAND HELP.\r\n"),
        (&["COMMAND", "COUNT", "x"], "-ERR wrong number of arguments for 'command|count' command\r\n"),
        (&["COMMAND", "LIST", "foo"], "-ERR syntax error\r\n"),
        (&["COMMAND", "LIST", "FILTERBY", "foo", "x"], "-ERR syntax error\r\n"),
    ];
    for (cmd, want) in cases {
        assert_eq!(c.cmd(cmd), *want, "{cmd:?}");
    }
    assert!(c.cmd(&["COMMAND", "HELP"]).starts_with("*21\r\n+COMMAND <subcommand>"));
}

#[test]
fn admin_commands_inside_multi() {
    let s = Server::start();
    let mut c = s.resp();
    assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"]), "+QUEUED\r\n");
    assert_eq!(c.cmd(&["SET", "k", "v"]), "+QUEUED\r\n");
    assert_eq!(c.cmd(&["CLIENT", "SETNAME", "tx"]), "+QUEUED\r\n");
    assert_eq!(c.cmd(&["EXEC"]), "*3\r\n+OK\r\n+OK\r\n+OK\r\n");
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "maxmemory-policy"]),
        "*2\r\n$16\r\nmaxmemory-policy\r\n$11\r\nallkeys-lfu\r\n"
    );
    assert_eq!(c.cmd(&["CLIENT", "GETNAME"]), "$2\r\ntx\r\n");
}
