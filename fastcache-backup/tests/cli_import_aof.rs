//! `fastcache import-aof`: an AOF written by a real `redis-server` (a Redis
//! 7 multi-part appendonlydir with a rewritten base and an incremental
//! file) imports to the same data, read back through `fastcache-server`;
//! a hand-written plain AOF reports failed commands with their positions,
//! a truncated tail and an open MULTI; an RDB preamble is refused.

mod cli_support;

use std::path::Path;
use std::process::Command;

use cli_support::*;

fn on_path(bin: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn cli(port: u16, db: u32, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "-n", &db.to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn cli_stdin(port: u16, input: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("redis-cli runs");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write");
    String::from_utf8_lossy(&child.wait_with_output().expect("output").stdout).into_owned()
}

fn sorted_lines(s: &str) -> String {
    let mut v: Vec<&str> = s.lines().collect();
    v.sort_unstable();
    v.join("\n")
}

/// Every key of databases 0..3 with its type, value and whether it has a
/// TTL, in one comparable text, read with redis-cli.
fn dump(port: u16) -> String {
    let mut out = String::new();
    for db in 0..3 {
        let keys = sorted_lines(&cli(port, db, &["KEYS", "*"]));
        for key in keys.lines().filter(|k| !k.is_empty()) {
            let ty = cli(port, db, &["TYPE", key]).trim().to_string();
            let value = match ty.as_str() {
                "string" => cli(port, db, &["GET", key]),
                "list" => cli(port, db, &["LRANGE", key, "0", "-1"]),
                "hash" => {
                    // field/value pairs, sorted by field
                    let flat = cli(port, db, &["HGETALL", key]);
                    let l: Vec<&str> = flat.lines().collect();
                    let mut pairs: Vec<String> = l.chunks(2).map(|c| c.join("=")).collect();
                    pairs.sort();
                    pairs.join("\n")
                }
                "set" => sorted_lines(&cli(port, db, &["SMEMBERS", key])),
                "zset" => cli(port, db, &["ZRANGE", key, "0", "-1", "WITHSCORES"]),
                other => format!("<{other}>"),
            };
            let pttl: i64 = cli(port, db, &["PTTL", key]).trim().parse().unwrap_or(-3);
            let ttl = if pttl > 0 { "ttl" } else { "no-ttl" };
            out.push_str(&format!("db{db} {key} {ty} {ttl}\n{}\n", value.trim_end()));
        }
    }
    out
}

#[test]
fn an_aof_from_redis_server_imports_to_the_same_data() -> TestResult {
    if !on_path("redis-server") || !on_path("redis-cli") {
        eprintln!("NOTICE: redis-server or redis-cli is not on PATH; skipping the import-aof test against real Redis");
        return Ok(());
    }
    let Some(server) = server_bin() else { return Ok(()) };
    let tmp = tempfile::tempdir()?;
    let rdir = tmp.path().join("redis");
    std::fs::create_dir_all(&rdir)?;
    let port = free_port();
    let mut redis = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--appendonly", "yes"])
        .args(["--appendfsync", "always", "--aof-use-rdb-preamble", "no", "--save", ""])
        .args(["--dir", s(&rdir)])
        .stdout(std::process::Stdio::null())
        .spawn()?;
    let mut up = false;
    for _ in 0..200 {
        if cli(port, 0, &["PING"]).trim() == "PONG" {
            up = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(up, "redis-server did not start");

    // Every type, several databases, expiries, a transaction; then a
    // rewrite (the base file), then more writes (the incremental file).
    for i in 0..20 {
        cli(port, 0, &["SET", &format!("s:{i}"), &format!("v{i} with spaces")]);
    }
    cli(port, 0, &["SET", "ttl:key", "x", "EX", "100000"]);
    cli(port, 0, &["SET", "gone", "x", "PX", "1"]);
    cli(port, 0, &["RPUSH", "list", "a", "b", "c", "d"]);
    cli(port, 0, &["LPOP", "list"]);
    cli(port, 0, &["HSET", "hash", "f1", "1", "f2", "two", "f3", "3"]);
    cli(port, 0, &["HINCRBY", "hash", "f1", "41"]);
    cli(port, 0, &["SADD", "set", "x", "y", "z", "w"]);
    cli(port, 0, &["SREM", "set", "w"]);
    cli(port, 0, &["ZADD", "zset", "1.5", "one", "2", "two", "-3.25", "neg"]);
    cli(port, 0, &["INCRBYFLOAT", "float", "2.5"]);
    cli(port, 1, &["SET", "db1:key", "in db 1"]);
    cli(port, 1, &["SADD", "db1:set", "m"]);
    assert!(cli(port, 0, &["BGREWRITEAOF"]).contains("rewriting"), "BGREWRITEAOF started");
    let mut rewritten = false;
    for _ in 0..200 {
        let info = cli(port, 0, &["INFO", "persistence"]);
        if info.contains("aof_rewrite_in_progress:0") && info.contains("aof_rewrite_scheduled:0") {
            rewritten = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(rewritten, "the AOF rewrite finished");
    cli(port, 0, &["DEL", "s:0", "s:1"]);
    cli(port, 0, &["EXPIRE", "s:2", "50000"]);
    cli(port, 0, &["APPEND", "s:3", "-appended"]);
    cli(port, 0, &["ZINCRBY", "zset", "10", "one"]);
    cli(port, 2, &["RPUSH", "db2:list", "p", "q"]);
    let tx = cli_stdin(port, "MULTI\nSET tx:a 1\nINCR tx:a\nHSET tx:h k v\nEXEC\n");
    assert!(tx.contains("QUEUED"), "{tx}");
    cli(port, 1, &["DEL", "db1:set"]);
    std::thread::sleep(std::time::Duration::from_millis(5));
    let expected = dump(port);
    assert!(expected.contains("tx:a string") && expected.contains("db2 db2:list list"), "{expected}");
    assert!(!expected.contains("gone"), "{expected}");
    cli(port, 0, &["SHUTDOWN"]);
    let _ = redis.wait();

    let aofdir = rdir.join("appendonlydir");
    let files: Vec<String> =
        std::fs::read_dir(&aofdir)?.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert!(files.iter().any(|f| f.ends_with(".base.aof")), "a base AOF (no RDB preamble): {files:?}");
    assert!(files.iter().any(|f| f.ends_with(".incr.aof")), "{files:?}");

    let data = tmp.path().join("data");
    let (code, v) = fastcache_json(&["import-aof", s(&aofdir), s(&data)]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["failed"], 0, "{v:#}");
    assert!(v["commands"].as_u64().unwrap_or(0) > 20, "{v:#}");
    assert_eq!(v["transactions"], 1, "{v:#}");
    let (code, c) = fastcache_json(&["check", s(&data)]);
    assert_eq!(code, 0, "{c:#}");

    // The same data through fastcache-server.
    let fc = Server::start(&server, &data)?;
    let got = dump(fc.port);
    assert_eq!(got, expected);
    drop(fc);

    // The manifest file itself works too; a non-empty destination is refused.
    let manifest = files.iter().find(|f| f.ends_with(".manifest")).ok_or("manifest")?;
    let (code, v) = fastcache_json(&["import-aof", s(&aofdir.join(manifest)), s(&data)]);
    assert_eq!(code, 1);
    assert!(v["error"].as_str().unwrap_or_default().contains("not empty"), "{v:#}");
    Ok(())
}

fn resp(args: &[&str]) -> String {
    let mut s = format!("*{}\r\n", args.len());
    for a in args {
        s.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    s
}

#[test]
fn a_plain_aof_reports_failures_with_positions() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let aof = tmp.path().join("appendonly.aof");
    let mut text = String::new();
    text.push_str(&resp(&["SELECT", "0"]));
    text.push_str(&resp(&["SET", "a", "hello"]));
    let bad_at = text.len();
    text.push_str(&resp(&["INCR", "a"])); // fails: not an integer
    text.push_str("#TS:1700000000\r\n");
    text.push_str(&resp(&["SELECT", "3"]));
    text.push_str(&resp(&["MULTI"]));
    text.push_str(&resp(&["RPUSH", "l", "1", "2"]));
    text.push_str(&resp(&["SADD", "s", "m"]));
    text.push_str(&resp(&["EXEC"]));
    text.push_str(&resp(&["NOSUCHCOMMAND", "x"]));
    text.push_str(&resp(&["MULTI"]));
    text.push_str(&resp(&["SET", "never", "1"]));
    text.push_str("*3\r\n$3\r\nSET\r\n$1\r\nk"); // cut in the middle
    std::fs::write(&aof, &text)?;
    let data = tmp.path().join("data");
    let (code, v) = fastcache_json(&["import-aof", s(&aof), s(&data)]);
    assert_eq!(code, 1, "a failed command is reported: {v:#}");
    assert_eq!(v["failed"], 2, "{v:#}");
    assert_eq!(v["failures"][0]["offset"].as_u64(), Some(bad_at as u64), "{v:#}");
    assert_eq!(v["failures"][0]["command"], "incr");
    assert_eq!(v["failures"][0]["command_index"], 3);
    assert_eq!(v["failures"][1]["command"], "nosuchcommand");
    assert_eq!(v["transactions"], 1);
    assert_eq!(v["discarded_open_transaction"], 1, "{v:#}");
    assert!(v["truncated_tail"].is_object(), "{v:#}");
    assert_eq!((v["keys_per_db"]["0"].as_u64(), v["keys_per_db"]["3"].as_u64()), (Some(1), Some(2)), "{v:#}");
    // The directory was written and is healthy.
    let (code, c) = fastcache_json(&["check", s(&data)]);
    assert_eq!(code, 0, "{c:#}");

    // An RDB preamble is refused with the way out.
    let rdb = tmp.path().join("dump.aof");
    std::fs::write(&rdb, b"REDIS0011\xfa\x09redis-ver")?;
    let (code, v) = fastcache_json(&["import-aof", s(&rdb), s(&tmp.path().join("d2"))]);
    assert_eq!(code, 1);
    assert!(v["error"].as_str().unwrap_or_default().contains("aof-use-rdb-preamble no"), "{v:#}");
    // A manifest naming an RDB base, too.
    let dir = tmp.path().join("appendonlydir");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("appendonly.aof.1.base.rdb"), b"REDIS0011")?;
    std::fs::write(dir.join("appendonly.aof.1.incr.aof"), resp(&["SET", "a", "1"]))?;
    std::fs::write(
        dir.join("appendonly.aof.manifest"),
        "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n",
    )?;
    let (code, v) = fastcache_json(&["import-aof", s(&dir), s(&tmp.path().join("d3"))]);
    assert_eq!(code, 1);
    assert!(v["error"].as_str().unwrap_or_default().contains("aof-use-rdb-preamble no"), "{v:#}");
    assert!(!Path::new(&tmp.path().join("d3")).exists(), "nothing written");
    Ok(())
}
