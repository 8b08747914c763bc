//! Every data type's main commands through the `redis` crate, plus
//! transactions, databases, concurrency, AUTH and maxclients.

mod common;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use common::Server;
use redis::{Connection, FromRedisValue, RedisError, Value};

/// Runs a command that must succeed.
fn q<T: FromRedisValue>(c: &mut Connection, args: &[&str]) -> T {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// The error line Redis sent (code and message), e.g. `WRONGTYPE Operation …`.
fn err_line(e: &RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => e.to_string(),
    }
}

/// Runs a command that must fail and returns the error line.
fn e(c: &mut Connection, args: &[&str]) -> String {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    match cmd.query::<Value>(c) {
        Ok(v) => panic!("{args:?}: expected an error, got {v:?}"),
        Err(err) => err_line(&err),
    }
}

const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

#[test]
fn strings() {
    let s = Server::start();
    let c = &mut s.client();
    assert_eq!(q::<String>(c, &["SET", "s", "hello"]), "OK");
    assert_eq!(q::<String>(c, &["GET", "s"]), "hello");
    assert_eq!(q::<Option<String>>(c, &["GET", "nope"]), None);
    assert_eq!(q::<i64>(c, &["APPEND", "s", " world"]), 11);
    assert_eq!(q::<i64>(c, &["STRLEN", "s"]), 11);
    assert_eq!(q::<String>(c, &["GETRANGE", "s", "0", "4"]), "hello");
    assert_eq!(q::<i64>(c, &["SETRANGE", "s", "6", "WORLD"]), 11);
    assert_eq!(q::<String>(c, &["GET", "s"]), "hello WORLD");
    assert_eq!(q::<i64>(c, &["INCR", "n"]), 1);
    assert_eq!(q::<i64>(c, &["INCRBY", "n", "41"]), 42);
    assert_eq!(q::<i64>(c, &["DECR", "n"]), 41);
    assert_eq!(q::<i64>(c, &["DECRBY", "n", "40"]), 1);
    assert_eq!(q::<String>(c, &["INCRBYFLOAT", "f", "1.5"]), "1.5");
    assert_eq!(q::<String>(c, &["INCRBYFLOAT", "f", "0.25"]), "1.75");
    assert_eq!(e(c, &["INCR", "s"]), "ERR value is not an integer or out of range");
    assert_eq!(q::<String>(c, &["SET", "big", "9223372036854775807"]), "OK");
    assert_eq!(e(c, &["INCR", "big"]), "ERR increment or decrement would overflow");
    assert_eq!(q::<String>(c, &["MSET", "a", "1", "b", "2"]), "OK");
    assert_eq!(q::<Vec<Option<String>>>(c, &["MGET", "a", "nope", "b"]), [Some("1".into()), None, Some("2".into())]);
    assert_eq!(q::<i64>(c, &["MSETNX", "a", "x", "c", "3"]), 0);
    assert_eq!(q::<i64>(c, &["SETNX", "a", "x"]), 0);
    assert_eq!(q::<Option<String>>(c, &["SET", "a", "x", "NX"]), None);
    assert_eq!(q::<Option<String>>(c, &["SET", "zz", "x", "XX"]), None);
    assert_eq!(q::<Option<String>>(c, &["SET", "a", "10", "XX", "GET"]), Some("1".into()));
    assert_eq!(q::<Option<String>>(c, &["GETSET", "a", "11"]), Some("10".into()));
    assert_eq!(q::<Option<String>>(c, &["GETDEL", "a"]), Some("11".into()));
    assert_eq!(q::<i64>(c, &["EXISTS", "a"]), 0);
    assert_eq!(q::<String>(c, &["SET", "t", "v", "EX", "100"]), "OK");
    let ttl: i64 = q(c, &["TTL", "t"]);
    assert!((99..=100).contains(&ttl), "ttl {ttl}");
    assert_eq!(q::<String>(c, &["SETEX", "t2", "50", "v"]), "OK");
    assert_eq!(q::<Option<String>>(c, &["GETEX", "t2", "PERSIST"]), Some("v".into()));
    assert_eq!(q::<i64>(c, &["TTL", "t2"]), -1);
    assert_eq!(e(c, &["SET", "k", "v", "EX", "0"]), "ERR invalid expire time in 'set' command");
    assert_eq!(e(c, &["SET", "k", "v", "NX", "XX"]), "ERR syntax error");
    // Binary-safe values.
    let bin: Vec<u8> = (0..=255u8).collect();
    redis::cmd("SET").arg("bin").arg(&bin).query::<()>(c).unwrap_or_else(|e| panic!("{e}"));
    let back: Vec<u8> = redis::cmd("GET").arg("bin").query(c).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(back, bin);
}

#[test]
fn lists() {
    let s = Server::start();
    let c = &mut s.client();
    assert_eq!(q::<i64>(c, &["RPUSH", "l", "a", "b", "c"]), 3);
    assert_eq!(q::<i64>(c, &["LPUSH", "l", "z"]), 4);
    assert_eq!(q::<Vec<String>>(c, &["LRANGE", "l", "0", "-1"]), ["z", "a", "b", "c"]);
    assert_eq!(q::<i64>(c, &["LLEN", "l"]), 4);
    assert_eq!(q::<String>(c, &["LINDEX", "l", "-1"]), "c");
    assert_eq!(q::<Option<String>>(c, &["LINDEX", "l", "99"]), None);
    assert_eq!(q::<String>(c, &["LSET", "l", "0", "y"]), "OK");
    assert_eq!(e(c, &["LSET", "l", "99", "y"]), "ERR index out of range");
    assert_eq!(q::<i64>(c, &["LINSERT", "l", "BEFORE", "b", "x"]), 5);
    assert_eq!(q::<Vec<String>>(c, &["LRANGE", "l", "0", "-1"]), ["y", "a", "x", "b", "c"]);
    assert_eq!(q::<i64>(c, &["RPUSH", "l", "a"]), 6);
    assert_eq!(q::<i64>(c, &["LPOS", "l", "a", "RANK", "2"]), 5);
    assert_eq!(q::<i64>(c, &["LREM", "l", "0", "a"]), 2);
    assert_eq!(q::<String>(c, &["LPOP", "l"]), "y");
    assert_eq!(q::<String>(c, &["RPOP", "l"]), "c");
    assert_eq!(q::<Vec<String>>(c, &["LPOP", "l", "5"]), ["x", "b"]);
    // Popping the last element deletes the key.
    assert_eq!(q::<i64>(c, &["EXISTS", "l"]), 0);
    assert_eq!(q::<i64>(c, &["RPUSH", "src", "1", "2", "3"]), 3);
    assert_eq!(q::<String>(c, &["LMOVE", "src", "dst", "LEFT", "RIGHT"]), "1");
    assert_eq!(q::<String>(c, &["RPOPLPUSH", "src", "dst"]), "3");
    assert_eq!(q::<Vec<String>>(c, &["LRANGE", "dst", "0", "-1"]), ["3", "1"]);
    assert_eq!(q::<i64>(c, &["RPUSH", "t", "0", "1", "2", "3", "4"]), 5);
    assert_eq!(q::<String>(c, &["LTRIM", "t", "1", "-2"]), "OK");
    assert_eq!(q::<Vec<String>>(c, &["LRANGE", "t", "0", "-1"]), ["1", "2", "3"]);
    assert_eq!(q::<i64>(c, &["LPUSHX", "none", "a"]), 0);
    assert_eq!(q::<Option<String>>(c, &["LPOP", "none"]), None);
}

#[test]
fn hashes() {
    let s = Server::start();
    let c = &mut s.client();
    assert_eq!(q::<i64>(c, &["HSET", "h", "a", "1", "b", "2"]), 2);
    assert_eq!(q::<i64>(c, &["HSET", "h", "a", "10"]), 0);
    assert_eq!(q::<String>(c, &["HGET", "h", "a"]), "10");
    assert_eq!(q::<Option<String>>(c, &["HGET", "h", "zz"]), None);
    assert_eq!(q::<Vec<Option<String>>>(c, &["HMGET", "h", "a", "zz"]), [Some("10".into()), None]);
    let all: HashMap<String, String> = q(c, &["HGETALL", "h"]);
    assert_eq!(all, HashMap::from([("a".into(), "10".into()), ("b".into(), "2".into())]));
    assert_eq!(q::<i64>(c, &["HLEN", "h"]), 2);
    assert_eq!(q::<i64>(c, &["HEXISTS", "h", "b"]), 1);
    assert_eq!(q::<i64>(c, &["HINCRBY", "h", "b", "5"]), 7);
    assert_eq!(q::<String>(c, &["HINCRBYFLOAT", "h", "f", "2.5"]), "2.5");
    assert_eq!(e(c, &["HINCRBY", "h", "f", "1"]), "ERR hash value is not an integer");
    assert_eq!(q::<i64>(c, &["HSETNX", "h", "a", "x"]), 0);
    assert_eq!(q::<i64>(c, &["HSTRLEN", "h", "a"]), 2);
    let mut keys: Vec<String> = q(c, &["HKEYS", "h"]);
    keys.sort();
    assert_eq!(keys, ["a", "b", "f"]);
    let mut vals: Vec<String> = q(c, &["HVALS", "h"]);
    vals.sort();
    assert_eq!(vals, ["10", "2.5", "7"]);
    assert_eq!(q::<i64>(c, &["HDEL", "h", "a", "b", "f", "zz"]), 3);
    assert_eq!(q::<i64>(c, &["EXISTS", "h"]), 0);
    assert_eq!(e(c, &["HSET", "h", "a"]), "ERR wrong number of arguments for 'hset' command");
}

#[test]
fn sets() {
    let s = Server::start();
    let c = &mut s.client();
    assert_eq!(q::<i64>(c, &["SADD", "s1", "a", "b", "c", "a"]), 3);
    assert_eq!(q::<i64>(c, &["SADD", "s2", "b", "c", "d"]), 3);
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<HashSet<String>>();
    assert_eq!(q::<HashSet<String>>(c, &["SMEMBERS", "s1"]), set(&["a", "b", "c"]));
    assert_eq!(q::<i64>(c, &["SISMEMBER", "s1", "a"]), 1);
    assert_eq!(q::<Vec<i64>>(c, &["SMISMEMBER", "s1", "a", "z"]), [1, 0]);
    assert_eq!(q::<i64>(c, &["SCARD", "s1"]), 3);
    assert_eq!(q::<HashSet<String>>(c, &["SINTER", "s1", "s2"]), set(&["b", "c"]));
    assert_eq!(q::<HashSet<String>>(c, &["SUNION", "s1", "s2"]), set(&["a", "b", "c", "d"]));
    assert_eq!(q::<HashSet<String>>(c, &["SDIFF", "s1", "s2"]), set(&["a"]));
    assert_eq!(q::<i64>(c, &["SINTERSTORE", "dst", "s1", "s2"]), 2);
    assert_eq!(q::<HashSet<String>>(c, &["SMEMBERS", "dst"]), set(&["b", "c"]));
    assert_eq!(q::<i64>(c, &["SMOVE", "s1", "s2", "a"]), 1);
    assert_eq!(q::<i64>(c, &["SREM", "s1", "b", "zz"]), 1);
    let popped: String = q(c, &["SPOP", "s1"]);
    assert_eq!(popped, "c");
    assert_eq!(q::<i64>(c, &["EXISTS", "s1"]), 0);
    let r: String = q(c, &["SRANDMEMBER", "s2"]);
    assert!(set(&["a", "b", "c", "d"]).contains(&r));
    assert_eq!(q::<Vec<String>>(c, &["SRANDMEMBER", "s2", "-10"]).len(), 10);
}

#[test]
fn sorted_sets() {
    let s = Server::start();
    let c = &mut s.client();
    assert_eq!(q::<i64>(c, &["ZADD", "z", "1", "a", "2", "b", "3", "c"]), 3);
    assert_eq!(q::<i64>(c, &["ZADD", "z", "XX", "CH", "1.5", "a"]), 1);
    assert_eq!(q::<f64>(c, &["ZSCORE", "z", "a"]), 1.5);
    assert_eq!(q::<Vec<String>>(c, &["ZRANGE", "z", "0", "-1"]), ["a", "b", "c"]);
    let with: Vec<(String, f64)> = q(c, &["ZRANGE", "z", "0", "-1", "WITHSCORES"]);
    assert_eq!(with, [("a".into(), 1.5), ("b".into(), 2.0), ("c".into(), 3.0)]);
    assert_eq!(q::<Vec<String>>(c, &["ZREVRANGE", "z", "0", "1"]), ["c", "b"]);
    assert_eq!(q::<Vec<String>>(c, &["ZRANGEBYSCORE", "z", "(1.5", "+inf"]), ["b", "c"]);
    assert_eq!(q::<Vec<String>>(c, &["ZRANGE", "z", "2", "1", "BYSCORE", "REV"]), ["b", "a"]);
    assert_eq!(q::<i64>(c, &["ZRANK", "z", "c"]), 2);
    assert_eq!(q::<i64>(c, &["ZREVRANK", "z", "c"]), 0);
    assert_eq!(q::<Option<i64>>(c, &["ZRANK", "z", "nope"]), None);
    assert_eq!(q::<i64>(c, &["ZCOUNT", "z", "-inf", "2"]), 2);
    assert_eq!(q::<f64>(c, &["ZINCRBY", "z", "10", "a"]), 11.5);
    assert_eq!(q::<i64>(c, &["ZCARD", "z"]), 3);
    let popped: Vec<(String, f64)> = q(c, &["ZPOPMIN", "z"]);
    assert_eq!(popped, [("b".into(), 2.0)]);
    assert_eq!(q::<i64>(c, &["ZREM", "z", "c", "nope"]), 1);
    assert_eq!(q::<i64>(c, &["ZADD", "y", "1", "a", "5", "q"]), 2);
    assert_eq!(q::<i64>(c, &["ZUNIONSTORE", "u", "2", "z", "y", "WEIGHTS", "1", "2"]), 2);
    let u: Vec<(String, f64)> = q(c, &["ZRANGE", "u", "0", "-1", "WITHSCORES"]);
    assert_eq!(u, [("q".into(), 10.0), ("a".into(), 13.5)]);
    assert_eq!(q::<i64>(c, &["ZADD", "lex", "0", "a", "0", "b", "0", "c"]), 3);
    assert_eq!(q::<Vec<String>>(c, &["ZRANGEBYLEX", "lex", "[b", "+"]), ["b", "c"]);
    assert_eq!(e(c, &["ZADD", "z", "nan", "x"]), "ERR value is not a valid float");
    assert_eq!(e(c, &["ZADD", "z", "NX", "XX", "1", "x"]), "ERR XX and NX options at the same time are not compatible");
}

#[test]
fn keys_and_ttl() {
    let s = Server::start();
    let c = &mut s.client();
    assert_eq!(q::<String>(c, &["MSET", "k1", "a", "k2", "b", "other", "c"]), "OK");
    assert_eq!(q::<i64>(c, &["EXISTS", "k1", "k2", "nope", "k1"]), 3);
    let mut ks: Vec<String> = q(c, &["KEYS", "k*"]);
    ks.sort();
    assert_eq!(ks, ["k1", "k2"]);
    assert_eq!(q::<i64>(c, &["DBSIZE"]), 3);
    assert_eq!(q::<String>(c, &["TYPE", "k1"]), "string");
    assert_eq!(q::<String>(c, &["TYPE", "nope"]), "none");
    assert_eq!(q::<i64>(c, &["TTL", "k1"]), -1);
    assert_eq!(q::<i64>(c, &["TTL", "nope"]), -2);
    assert_eq!(q::<i64>(c, &["EXPIRE", "k1", "100"]), 1);
    assert_eq!(q::<i64>(c, &["EXPIRE", "k1", "50", "GT"]), 0);
    let pttl: i64 = q(c, &["PTTL", "k1"]);
    assert!((99_000..=100_000).contains(&pttl), "pttl {pttl}");
    assert_eq!(q::<i64>(c, &["PERSIST", "k1"]), 1);
    assert_eq!(q::<i64>(c, &["TTL", "k1"]), -1);
    assert_eq!(q::<String>(c, &["RENAME", "k1", "k3"]), "OK");
    assert_eq!(q::<i64>(c, &["RENAMENX", "k3", "k2"]), 0);
    assert_eq!(e(c, &["RENAME", "nope", "x"]), "ERR no such key");
    assert_eq!(q::<i64>(c, &["COPY", "k3", "k4"]), 1);
    assert_eq!(q::<i64>(c, &["DEL", "k3", "nope"]), 1);
    assert_eq!(q::<i64>(c, &["UNLINK", "k4"]), 1);
    assert!(q::<Option<String>>(c, &["RANDOMKEY"]).is_some());
    // A short expiry: the key disappears (lazily on access or actively).
    assert_eq!(q::<i64>(c, &["PEXPIRE", "k2", "50"]), 1);
    let deadline = Instant::now() + Duration::from_secs(5);
    while q::<i64>(c, &["EXISTS", "k2"]) == 1 {
        assert!(Instant::now() < deadline, "k2 never expired");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(q::<Option<String>>(c, &["GET", "k2"]), None);
    // Active expiry removes keys nobody reads.
    for i in 0..50 {
        assert_eq!(q::<String>(c, &["SET", &format!("tmp:{i}"), "v", "PX", "30"]), "OK");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while q::<i64>(c, &["DBSIZE"]) > 1 {
        assert!(Instant::now() < deadline, "active expiry left {} keys", q::<i64>(c, &["DBSIZE"]));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(q::<String>(c, &["FLUSHDB"]), "OK");
    assert_eq!(q::<i64>(c, &["DBSIZE"]), 0);
}

/// Iterates a SCAN-family command to the end and returns every element.
fn scan_all(c: &mut Connection, args: &[&str]) -> Vec<String> {
    let mut cursor = "0".to_string();
    let mut seen = Vec::new();
    for _ in 0..10_000 {
        let mut cmd = redis::cmd(args[0]);
        if args.len() > 1 && args[0] != "SCAN" {
            cmd.arg(args[1]);
        }
        cmd.arg(&cursor);
        let rest = if args[0] == "SCAN" { &args[1..] } else { &args[2..] };
        for a in rest {
            cmd.arg(*a);
        }
        let (next, batch): (String, Vec<String>) = cmd.query(c).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        seen.extend(batch);
        if next == "0" {
            return seen;
        }
        cursor = next;
    }
    panic!("{args:?} did not finish in 10000 calls")
}

#[test]
fn scan_iterates_everything() {
    let s = Server::start();
    let c = &mut s.client();
    let mut pipe = redis::pipe();
    for i in 0..1000 {
        pipe.cmd("SET").arg(format!("user:{i}")).arg(i).ignore();
        pipe.cmd("SADD").arg("set").arg(format!("m{i}")).ignore();
        pipe.cmd("HSET").arg("hash").arg(format!("f{i}")).arg(i).ignore();
        pipe.cmd("ZADD").arg("zset").arg(i).arg(format!("z{i}")).ignore();
    }
    for i in 0..100 {
        pipe.cmd("RPUSH").arg(format!("other:{i}")).arg(i).ignore();
    }
    pipe.query::<()>(c).unwrap_or_else(|e| panic!("{e}"));

    let keys: HashSet<String> = scan_all(c, &["SCAN", "COUNT", "100"]).into_iter().collect();
    assert_eq!(keys.len(), 1000 + 100 + 3);
    let users: HashSet<String> = scan_all(c, &["SCAN", "MATCH", "user:*", "COUNT", "50"]).into_iter().collect();
    assert_eq!(users, (0..1000).map(|i| format!("user:{i}")).collect());
    let lists: HashSet<String> = scan_all(c, &["SCAN", "TYPE", "list"]).into_iter().collect();
    assert_eq!(lists.len(), 100);
    let members: HashSet<String> = scan_all(c, &["SSCAN", "set", "COUNT", "64"]).into_iter().collect();
    assert_eq!(members.len(), 1000);
    // HSCAN and ZSCAN return field/value (member/score) pairs.
    let hash = scan_all(c, &["HSCAN", "hash", "MATCH", "f1*"]);
    let fields: HashSet<&String> = hash.iter().step_by(2).collect();
    // f1, f10..f19, f100..f199
    assert_eq!(fields.len(), 111, "fields {fields:?}");
    let zs = scan_all(c, &["ZSCAN", "zset", "COUNT", "1000"]);
    assert_eq!(zs.len(), 2000);
    assert_eq!(e(c, &["SCAN", "notanumber"]), "ERR invalid cursor");
}

#[test]
fn dump_and_restore() {
    let s = Server::start();
    let c = &mut s.client();
    assert_eq!(q::<i64>(c, &["RPUSH", "l", "a", "b", "c"]), 3);
    assert_eq!(q::<i64>(c, &["ZADD", "z", "1", "a", "2.5", "b"]), 2);
    let dump_l: Vec<u8> = redis::cmd("DUMP").arg("l").query(c).unwrap_or_else(|e| panic!("{e}"));
    let dump_z: Vec<u8> = redis::cmd("DUMP").arg("z").query(c).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(q::<Option<Vec<u8>>>(c, &["DUMP", "nope"]), None);
    let restore = |c: &mut Connection, key: &str, ttl: &str, payload: &[u8], extra: &[&str]| {
        let mut cmd = redis::cmd("RESTORE");
        cmd.arg(key).arg(ttl).arg(payload);
        for a in extra {
            cmd.arg(*a);
        }
        cmd.query::<String>(c)
    };
    assert_eq!(restore(c, "l2", "0", &dump_l, &[]).ok().as_deref(), Some("OK"));
    assert_eq!(q::<Vec<String>>(c, &["LRANGE", "l2", "0", "-1"]), ["a", "b", "c"]);
    assert_eq!(restore(c, "z2", "5000", &dump_z, &[]).ok().as_deref(), Some("OK"));
    let with: Vec<(String, f64)> = q(c, &["ZRANGE", "z2", "0", "-1", "WITHSCORES"]);
    assert_eq!(with, [("a".into(), 1.0), ("b".into(), 2.5)]);
    let pttl: i64 = q(c, &["PTTL", "z2"]);
    assert!((1..=5000).contains(&pttl), "pttl {pttl}");
    let busy = restore(c, "l2", "0", &dump_z, &[]).err().map(|e| err_line(&e));
    assert_eq!(busy.as_deref(), Some("BUSYKEY Target key name already exists."));
    assert_eq!(restore(c, "l2", "0", &dump_z, &["REPLACE"]).ok().as_deref(), Some("OK"));
    assert_eq!(q::<String>(c, &["TYPE", "l2"]), "zset");
    let mut bad = dump_l.clone();
    if let Some(last) = bad.last_mut() {
        *last ^= 0xff;
    }
    let err = restore(c, "l3", "0", &bad, &[]).err().map(|e| err_line(&e));
    assert_eq!(err.as_deref(), Some("ERR DUMP payload version or checksum are wrong"));
    assert_eq!(q::<i64>(c, &["EXISTS", "l3"]), 0);
}

#[test]
fn sort() {
    let s = Server::start();
    let c = &mut s.client();
    assert_eq!(q::<i64>(c, &["RPUSH", "n", "3", "10", "1", "2"]), 4);
    assert_eq!(q::<Vec<String>>(c, &["SORT", "n"]), ["1", "2", "3", "10"]);
    assert_eq!(q::<Vec<String>>(c, &["SORT", "n", "DESC", "LIMIT", "0", "2"]), ["10", "3"]);
    assert_eq!(q::<Vec<String>>(c, &["SORT", "n", "ALPHA"]), ["1", "10", "2", "3"]);
    assert_eq!(q::<i64>(c, &["RPUSH", "w", "x"]), 1);
    assert_eq!(e(c, &["SORT", "w"]), "ERR One or more scores can't be converted into double");
    // BY and GET patterns.
    assert_eq!(q::<i64>(c, &["SADD", "ids", "1", "2", "3"]), 3);
    assert_eq!(q::<String>(c, &["MSET", "weight_1", "30", "weight_2", "10", "weight_3", "20"]), "OK");
    assert_eq!(q::<i64>(c, &["HSET", "obj_1", "name", "one"]), 1);
    assert_eq!(q::<i64>(c, &["HSET", "obj_2", "name", "two"]), 1);
    assert_eq!(q::<i64>(c, &["HSET", "obj_3", "name", "three"]), 1);
    assert_eq!(q::<Vec<String>>(c, &["SORT", "ids", "BY", "weight_*"]), ["2", "3", "1"]);
    assert_eq!(
        q::<Vec<Option<String>>>(c, &["SORT", "ids", "BY", "weight_*", "GET", "#", "GET", "obj_*->name"]),
        [
            Some("2".into()),
            Some("two".into()),
            Some("3".into()),
            Some("three".into()),
            Some("1".into()),
            Some("one".into())
        ]
    );
    assert_eq!(q::<i64>(c, &["SORT", "n", "STORE", "sorted"]), 4);
    assert_eq!(q::<Vec<String>>(c, &["LRANGE", "sorted", "0", "-1"]), ["1", "2", "3", "10"]);
    assert_eq!(q::<Vec<String>>(c, &["SORT_RO", "n", "DESC"]), ["10", "3", "2", "1"]);
}

#[test]
fn wrongtype_errors() {
    let s = Server::start();
    let c = &mut s.client();
    assert_eq!(q::<String>(c, &["SET", "str", "v"]), "OK");
    assert_eq!(q::<i64>(c, &["RPUSH", "list", "v"]), 1);
    assert_eq!(q::<i64>(c, &["HSET", "hash", "f", "v"]), 1);
    assert_eq!(q::<i64>(c, &["SADD", "set", "v"]), 1);
    assert_eq!(q::<i64>(c, &["ZADD", "zset", "1", "v"]), 1);
    let cases: &[&[&str]] = &[
        &["GET", "list"],
        &["INCR", "hash"],
        &["APPEND", "set", "x"],
        &["LPUSH", "str", "x"],
        &["LRANGE", "zset", "0", "-1"],
        &["HGET", "str", "f"],
        &["HSET", "list", "f", "v"],
        &["SADD", "hash", "x"],
        &["SMEMBERS", "zset"],
        &["ZADD", "set", "1", "x"],
        &["ZSCORE", "str", "x"],
        &["SINTER", "set", "list"],
        &["LMOVE", "list", "str", "LEFT", "LEFT"],
    ];
    for args in cases {
        assert_eq!(e(c, args), WRONGTYPE, "{args:?}");
    }
    // Nothing was changed by the failed commands.
    assert_eq!(q::<String>(c, &["GET", "str"]), "v");
    assert_eq!(q::<Vec<String>>(c, &["LRANGE", "list", "0", "-1"]), ["v"]);
    // SET overwrites any type.
    assert_eq!(q::<String>(c, &["SET", "list", "now a string"]), "OK");
    assert_eq!(q::<String>(c, &["TYPE", "list"]), "string");
}

#[test]
fn transactions() {
    let s = Server::start();
    let c = &mut s.client();
    // MULTI/EXEC through the crate's atomic pipeline.
    let (a, b): (i64, i64) = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg("tx")
        .cmd("INCRBY")
        .arg("tx")
        .arg(10)
        .query(c)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((a, b), (1, 11));
    // By hand: queued replies, EXEC array with a runtime error kept in
    // place (raw, since the crate turns any nested error into an Err).
    let mut raw = s.resp();
    assert_eq!(raw.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(raw.cmd(&["SET", "s", "x"]), "+QUEUED\r\n");
    assert_eq!(raw.cmd(&["INCR", "s"]), "+QUEUED\r\n");
    assert_eq!(raw.cmd(&["PING"]), "+QUEUED\r\n");
    assert_eq!(raw.cmd(&["EXEC"]), "*3\r\n+OK\r\n-ERR value is not an integer or out of range\r\n+PONG\r\n");
    assert_eq!(q::<String>(c, &["GET", "s"]), "x");
    // DISCARD drops the queue.
    assert_eq!(q::<String>(c, &["MULTI"]), "OK");
    assert_eq!(q::<String>(c, &["SET", "discarded", "1"]), "QUEUED");
    assert_eq!(q::<String>(c, &["DISCARD"]), "OK");
    assert_eq!(q::<i64>(c, &["EXISTS", "discarded"]), 0);
    assert_eq!(e(c, &["EXEC"]), "ERR EXEC without MULTI");
    assert_eq!(e(c, &["DISCARD"]), "ERR DISCARD without MULTI");
    // A queue-time error aborts the whole transaction.
    assert_eq!(q::<String>(c, &["MULTI"]), "OK");
    assert_eq!(q::<String>(c, &["SET", "aborted", "1"]), "QUEUED");
    assert_eq!(e(c, &["GET"]), "ERR wrong number of arguments for 'get' command");
    assert_eq!(e(c, &["EXEC"]), "EXECABORT Transaction discarded because of previous errors.");
    assert_eq!(q::<i64>(c, &["EXISTS", "aborted"]), 0);
}

#[test]
fn watch_is_invalidated_by_another_client() {
    let s = Server::start();
    let c = &mut s.client();
    let other = &mut s.client();
    assert_eq!(q::<String>(c, &["SET", "balance", "100"]), "OK");
    assert_eq!(q::<String>(c, &["WATCH", "balance"]), "OK");
    let seen: i64 = q(c, &["GET", "balance"]);
    assert_eq!(q::<String>(other, &["SET", "balance", "50"]), "OK");
    assert_eq!(q::<String>(c, &["MULTI"]), "OK");
    assert_eq!(q::<String>(c, &["SET", "balance", &(seen - 10).to_string()]), "QUEUED");
    assert_eq!(q::<Option<Vec<Value>>>(c, &["EXEC"]), None);
    assert_eq!(q::<i64>(c, &["GET", "balance"]), 50);
    // Without interference the same transaction commits; EXEC unwatches.
    assert_eq!(q::<String>(c, &["WATCH", "balance"]), "OK");
    assert_eq!(q::<String>(c, &["MULTI"]), "OK");
    assert_eq!(q::<String>(c, &["DECRBY", "balance", "10"]), "QUEUED");
    assert_eq!(q::<Option<Vec<i64>>>(c, &["EXEC"]), Some(vec![40]));
    // Deleting or expiring a watched key also invalidates; UNWATCH forgets.
    assert_eq!(q::<String>(c, &["WATCH", "balance"]), "OK");
    assert_eq!(q::<i64>(other, &["DEL", "balance"]), 1);
    assert_eq!(q::<String>(c, &["MULTI"]), "OK");
    assert_eq!(q::<String>(c, &["SET", "balance", "1"]), "QUEUED");
    assert_eq!(q::<Option<Vec<Value>>>(c, &["EXEC"]), None);
    assert_eq!(q::<String>(c, &["WATCH", "balance"]), "OK");
    assert_eq!(q::<String>(other, &["SET", "balance", "7"]), "OK");
    assert_eq!(q::<String>(c, &["UNWATCH"]), "OK");
    assert_eq!(q::<String>(c, &["MULTI"]), "OK");
    assert_eq!(q::<String>(c, &["INCR", "balance"]), "QUEUED");
    assert_eq!(q::<Option<Vec<i64>>>(c, &["EXEC"]), Some(vec![8]));
}

#[test]
fn databases_select_move_swapdb() {
    let s = Server::start();
    let c = &mut s.client();
    assert_eq!(q::<String>(c, &["SET", "k", "db0"]), "OK");
    assert_eq!(q::<String>(c, &["SELECT", "1"]), "OK");
    assert_eq!(q::<Option<String>>(c, &["GET", "k"]), None);
    assert_eq!(q::<String>(c, &["SET", "k", "db1"]), "OK");
    assert_eq!(q::<String>(c, &["SET", "only1", "x"]), "OK");
    assert_eq!(q::<i64>(c, &["MOVE", "only1", "0"]), 1);
    assert_eq!(q::<i64>(c, &["MOVE", "k", "0"]), 0, "MOVE onto an existing key must fail");
    assert_eq!(e(c, &["MOVE", "k", "1"]), "ERR source and destination objects are the same");
    assert_eq!(e(c, &["SELECT", "16"]), "ERR DB index is out of range");
    // Another client sees its own database 0.
    let other = &mut s.client();
    assert_eq!(q::<String>(other, &["GET", "k"]), "db0");
    assert_eq!(q::<String>(other, &["GET", "only1"]), "x");
    assert_eq!(q::<String>(c, &["SWAPDB", "0", "1"]), "OK");
    assert_eq!(q::<String>(other, &["GET", "k"]), "db1");
    assert_eq!(q::<String>(c, &["GET", "k"]), "db0");
    assert_eq!(q::<i64>(other, &["EXISTS", "only1"]), 0);
    assert_eq!(e(c, &["SWAPDB", "0", "99"]), "ERR DB index is out of range");
    // The redis crate can select a database in its URL.
    let db2 = &mut s.client_url(&format!("{}2", s.url()));
    assert_eq!(q::<String>(db2, &["SET", "k", "db2"]), "OK");
    assert_eq!(q::<String>(c, &["SELECT", "2"]), "OK");
    assert_eq!(q::<String>(c, &["GET", "k"]), "db2");
}

#[test]
fn concurrent_clients_count_exactly() {
    let s = Server::start();
    let url = s.url();
    let threads: Vec<_> = (0..20)
        .map(|t| {
            let mut c = s.client_url(&url);
            std::thread::spawn(move || {
                for i in 0..500 {
                    let _: i64 = redis::cmd("INCR").arg("counter").query(&mut c).unwrap_or_else(|e| panic!("{e}"));
                    if i % 50 == 0 {
                        let _: i64 = redis::cmd("HINCRBY")
                            .arg("per-thread")
                            .arg(t)
                            .arg(50)
                            .query(&mut c)
                            .unwrap_or_else(|e| panic!("{e}"));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().is_ok(), "a client thread failed");
    }
    let c = &mut s.client();
    assert_eq!(q::<i64>(c, &["GET", "counter"]), 20 * 500);
    let per: HashMap<String, i64> = q(c, &["HGETALL", "per-thread"]);
    assert_eq!(per.len(), 20);
    assert!(per.values().all(|&v| v == 500), "{per:?}");
}

#[test]
fn resp3_through_the_crate() {
    let s = Server::start();
    let c = &mut s.client_resp3();
    assert_eq!(q::<i64>(c, &["HSET", "h", "a", "1", "b", "2"]), 2);
    let m: HashMap<String, i64> = q(c, &["HGETALL", "h"]);
    assert_eq!(m, HashMap::from([("a".into(), 1), ("b".into(), 2)]));
    assert!(matches!(q::<Value>(c, &["HGETALL", "h"]), Value::Map(_)));
    assert_eq!(q::<i64>(c, &["SADD", "s", "x"]), 1);
    assert!(matches!(q::<Value>(c, &["SMEMBERS", "s"]), Value::Set(_)));
    assert_eq!(q::<i64>(c, &["ZADD", "z", "2.5", "m"]), 1);
    assert_eq!(q::<Value>(c, &["ZSCORE", "z", "m"]), Value::Double(2.5));
    assert_eq!(q::<Value>(c, &["GET", "nope"]), Value::Nil);
}

#[test]
fn auth_with_requirepass() {
    let s = Server::start_with(&[("FASTCACHE_REQUIREPASS", "hunter2")]);
    let c = &mut s.client();
    assert_eq!(e(c, &["GET", "k"]), "NOAUTH Authentication required.");
    assert_eq!(e(c, &["SET", "k", "v"]), "NOAUTH Authentication required.");
    assert_eq!(e(c, &["AUTH", "wrong"]), "WRONGPASS invalid username-password pair or user is disabled.");
    assert_eq!(e(c, &["AUTH", "nobody", "hunter2"]), "WRONGPASS invalid username-password pair or user is disabled.");
    assert_eq!(e(c, &["GET", "k"]), "NOAUTH Authentication required.");
    assert_eq!(q::<String>(c, &["AUTH", "hunter2"]), "OK");
    assert_eq!(q::<String>(c, &["SET", "k", "v"]), "OK");
    assert_eq!(q::<String>(c, &["AUTH", "default", "hunter2"]), "OK");
    // The crate authenticates from the URL; a wrong password fails to connect.
    let authed = &mut s.client_url(&format!("redis://:hunter2@127.0.0.1:{}/", s.port));
    assert_eq!(q::<String>(authed, &["GET", "k"]), "v");
    let bad = redis::Client::open(format!("redis://:nope@127.0.0.1:{}/", s.port))
        .and_then(|cl| cl.get_connection_with_timeout(Duration::from_secs(5)));
    assert!(bad.is_err(), "connecting with a wrong password succeeded");
    // Without requirepass, AUTH is an error of its own.
    let open = Server::start();
    assert_eq!(
        e(&mut open.client(), &["AUTH", "x"]),
        "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"
    );
}

#[test]
fn maxclients_rejects_the_extra_connection() {
    let s = Server::start_with(&[("FASTCACHE_MAXCLIENTS", "2")]);
    let mut first = s.resp();
    let mut second = s.resp();
    assert_eq!(first.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(second.cmd(&["PING"]), "+PONG\r\n");
    let mut third = s.resp();
    assert_eq!(third.read_reply(), "-ERR max number of clients reached\r\n");
    assert!(third.is_closed_within(Duration::from_secs(5)));
    // The admitted clients are unaffected, and a freed slot is reusable.
    assert_eq!(first.cmd(&["SET", "k", "v"]), "+OK\r\n");
    drop(second);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = s.resp();
        c.send(b"GET k\r\n");
        let r = c.read_reply();
        if r == "$1\r\nv\r\n" {
            break;
        }
        assert_eq!(r, "-ERR max number of clients reached\r\n");
        assert!(Instant::now() < deadline, "the freed slot never became available");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn server_command_arity_errors_inside_multi_abort_exec() {
    let server = Server::start();
    let mut raw = server.resp();
    assert_eq!(raw.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(raw.cmd(&["ECHO"]), "-ERR wrong number of arguments for 'echo' command\r\n");
    assert_eq!(raw.cmd(&["PING"]), "+QUEUED\r\n");
    assert_eq!(raw.cmd(&["EXEC"]), "-EXECABORT Transaction discarded because of previous errors.\r\n");
}
