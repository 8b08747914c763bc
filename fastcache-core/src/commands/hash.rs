//! Hash commands.

use std::collections::HashSet;

use super::flags::{DENYOOM, FAST, RANDOM, READONLY, WRITE};
use super::{cmd, CommandSpec};
use crate::cx::Cx;
use crate::keyspace::ObjRef;
use crate::notify;
use crate::reply::{errors, Reply};
use crate::types::Hash;
use crate::util::parse_scan_cursor as parse_cursor;
use crate::util::{eq_ic, float_arg, format_human, glob_match, int_arg, parse_f64, parse_i64};

pub(crate) const COMMANDS: &[CommandSpec] = &[
    cmd("hset", -4, WRITE | DENYOOM | FAST, (1, 1, 1), "hash", hset),
    cmd("hmset", -4, WRITE | DENYOOM | FAST, (1, 1, 1), "hash", hset),
    cmd("hsetnx", 4, WRITE | DENYOOM | FAST, (1, 1, 1), "hash", hsetnx),
    cmd("hget", 3, READONLY | FAST, (1, 1, 1), "hash", hget),
    cmd("hmget", -3, READONLY | FAST, (1, 1, 1), "hash", hmget),
    cmd("hdel", -3, WRITE | FAST, (1, 1, 1), "hash", hdel),
    cmd("hlen", 2, READONLY | FAST, (1, 1, 1), "hash", hlen),
    cmd("hstrlen", 3, READONLY | FAST, (1, 1, 1), "hash", hstrlen),
    cmd("hexists", 3, READONLY | FAST, (1, 1, 1), "hash", hexists),
    cmd("hgetall", 2, READONLY, (1, 1, 1), "hash", hgetall),
    cmd("hkeys", 2, READONLY, (1, 1, 1), "hash", hkeys),
    cmd("hvals", 2, READONLY, (1, 1, 1), "hash", hvals),
    cmd("hincrby", 4, WRITE | DENYOOM | FAST, (1, 1, 1), "hash", hincrby),
    cmd("hincrbyfloat", 4, WRITE | DENYOOM | FAST, (1, 1, 1), "hash", hincrbyfloat),
    cmd("hrandfield", -2, READONLY | RANDOM, (1, 1, 1), "hash", hrandfield),
    cmd("hscan", -3, READONLY | RANDOM, (1, 1, 1), "hash", hscan),
];

/// The hash at `key` for a write command's checks (no hit/miss statistics,
/// as Redis' `lookupKeyWrite`): `Ok(None)` if there is no key.
fn hash_for_write<'c>(cx: &'c mut Cx, key: &[u8]) -> Result<Option<&'c Hash>, Reply> {
    match cx.peek(key).map(|e| e.obj()) {
        None => Ok(None),
        Some(ObjRef::Hash(h)) => Ok(Some(h)),
        Some(_) => Err(errors::WRONGTYPE),
    }
}

/// HSET and HMSET (they differ only in the reply).
fn hset(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let hmset = eq_ic(a[0], "HMSET");
    if a.len() % 2 == 1 {
        return errors::wrong_args(if hmset { "hmset" } else { "hset" });
    }
    let key = a[1];
    let r = cx.hash_mut(key, true, |h| a[2..].chunks(2).filter(|fv| h.insert(fv[0], fv[1])).count());
    match r {
        Ok(created) => {
            cx.notify(notify::HASH, "hset", key);
            if hmset {
                Reply::OK
            } else {
                Reply::Int(created.unwrap_or(0) as i64)
            }
        }
        Err(e) => e,
    }
}

fn hsetnx(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let (key, field) = (a[1], a[2]);
    match hash_for_write(cx, key) {
        Ok(Some(h)) if h.contains(field) => return Reply::Int(0),
        Ok(_) => {}
        Err(e) => return e,
    }
    match cx.hash_mut(key, true, |h| h.insert(field, a[3])) {
        Ok(_) => {
            cx.notify(notify::HASH, "hset", key);
            Reply::Int(1)
        }
        Err(e) => e,
    }
}

fn hget(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    match cx.get_hash(a[1]) {
        Ok(h) => h.and_then(|h| h.get(a[2])).map_or(Reply::Nil, Reply::bulk),
        Err(e) => e,
    }
}

fn hmget(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    match cx.get_hash(a[1]) {
        Ok(h) => {
            Reply::Array(a[2..].iter().map(|f| h.and_then(|h| h.get(f)).map_or(Reply::Nil, Reply::bulk)).collect())
        }
        Err(e) => e,
    }
}

fn hdel(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let key = a[1];
    let fields = &a[2..];
    match hash_for_write(cx, key) {
        Ok(Some(h)) if fields.iter().any(|f| h.contains(f)) => {}
        Ok(_) => return Reply::Int(0),
        Err(e) => return e,
    }
    let r = cx.hash_mut(key, false, |h| {
        let deleted = fields.iter().filter(|f| h.remove(f)).count();
        (deleted, h.is_empty())
    });
    match r {
        Ok(Some((deleted, emptied))) => {
            cx.notify_removed(notify::HASH, "hdel", key, emptied);
            Reply::Int(deleted as i64)
        }
        Ok(None) => Reply::Int(0),
        Err(e) => e,
    }
}

fn hlen(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    match cx.get_hash(a[1]) {
        Ok(h) => Reply::Int(h.map_or(0, Hash::len) as i64),
        Err(e) => e,
    }
}

fn hstrlen(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    match cx.get_hash(a[1]) {
        Ok(h) => Reply::Int(h.and_then(|h| h.get(a[2])).map_or(0, <[u8]>::len) as i64),
        Err(e) => e,
    }
}

fn hexists(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    match cx.get_hash(a[1]) {
        Ok(h) => Reply::Int(i64::from(h.is_some_and(|h| h.contains(a[2])))),
        Err(e) => e,
    }
}

fn hgetall(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    match cx.get_hash(a[1]) {
        Ok(h) => {
            Reply::Map(h.map_or_else(Vec::new, |h| h.iter().map(|(f, v)| (Reply::bulk(f), Reply::bulk(v))).collect()))
        }
        Err(e) => e,
    }
}

fn hkeys(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    match cx.get_hash(a[1]) {
        Ok(h) => Reply::Array(h.map_or_else(Vec::new, |h| h.iter().map(|(f, _)| Reply::bulk(f)).collect())),
        Err(e) => e,
    }
}

fn hvals(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    match cx.get_hash(a[1]) {
        Ok(h) => Reply::Array(h.map_or_else(Vec::new, |h| h.iter().map(|(_, v)| Reply::bulk(v)).collect())),
        Err(e) => e,
    }
}

fn hincrby(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let by = match int_arg(a[3]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let (key, field) = (a[1], a[2]);
    let cur = match hash_for_write(cx, key) {
        Ok(h) => match h.and_then(|h| h.get(field)) {
            Some(v) => match parse_i64(v) {
                Some(n) => n,
                None => return Reply::err("ERR hash value is not an integer"),
            },
            None => 0,
        },
        Err(e) => return e,
    };
    let Some(n) = cur.checked_add(by) else {
        return errors::OVERFLOW;
    };
    match cx.hash_mut(key, true, |h| h.insert(field, n.to_string().as_bytes())) {
        Ok(_) => {
            cx.notify(notify::HASH, "hincrby", key);
            Reply::Int(n)
        }
        Err(e) => e,
    }
}

fn hincrbyfloat(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let by = match float_arg(a[3]) {
        Ok(v) => v,
        Err(e) => return e,
    };
    if !by.is_finite() {
        return Reply::err("ERR value is NaN or Infinity");
    }
    let (key, field) = (a[1], a[2]);
    let cur = match hash_for_write(cx, key) {
        Ok(h) => match h.and_then(|h| h.get(field)) {
            Some(v) => match parse_f64(v) {
                Some(n) => n,
                None => return Reply::err("ERR hash value is not a float"),
            },
            None => 0.0,
        },
        Err(e) => return e,
    };
    let n = cur + by;
    if !n.is_finite() {
        return errors::NAN_OR_INF;
    }
    let text = format_human(n).into_bytes();
    match cx.hash_mut(key, true, |h| h.insert(field, &text)) {
        Ok(_) => {
            // Float arithmetic is logged as its result, so replay cannot
            // drift with precision or formatting.
            cx.propagate(vec![b"HSET".to_vec(), key.to_vec(), field.to_vec(), text.clone()]);
            cx.notify(notify::HASH, "hincrbyfloat", key);
            Reply::Bulk(text)
        }
        Err(e) => e,
    }
}

/// HRANDFIELD key [count [WITHVALUES]], following Redis'
/// `hrandfieldWithCountCommand` case by case.
fn hrandfield(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let mut rng = cx.rng.fork();
    let resp3 = cx.resp3;
    if a.len() == 2 {
        return match cx.get_hash(a[1]) {
            Ok(Some(h)) => h.random(&mut rng).map_or(Reply::Nil, |(f, _)| Reply::bulk(f)),
            Ok(None) => Reply::Nil,
            Err(e) => e,
        };
    }
    let l = match parse_i64(a[2]) {
        Some(i64::MIN) => {
            return Reply::err(
                "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            )
        }
        Some(n) => n,
        None => return errors::NOT_INTEGER,
    };
    if a.len() > 4 || (a.len() == 4 && !eq_ic(a[3], "WITHVALUES")) {
        return errors::SYNTAX;
    }
    let withvalues = a.len() == 4;
    if withvalues && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
        return Reply::err("ERR value is out of range");
    }
    let h = match cx.get_hash(a[1]) {
        Ok(Some(h)) => h,
        Ok(None) => return Reply::Array(Vec::new()),
        Err(e) => return e,
    };
    let size = h.len();
    let count = usize::try_from(l.unsigned_abs()).unwrap_or(usize::MAX);
    if count == 0 {
        return Reply::Array(Vec::new());
    }
    let picked: Vec<(&[u8], &[u8])> = if l < 0 || count == 1 {
        // Repeats allowed: independent draws, in draw order.
        (0..count).filter_map(|_| h.random(&mut rng)).collect()
    } else if count >= size {
        h.iter().collect()
    } else if count * 3 > size {
        // Most of the hash: drop random fields until `count` remain.
        let mut all: Vec<(&[u8], &[u8])> = h.iter().collect();
        while all.len() > count {
            let i = rng.usize(..all.len());
            all.swap_remove(i);
        }
        all
    } else {
        // A small part: draw until `count` distinct fields came up.
        let mut seen = HashSet::with_capacity(count);
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            if let Some((f, v)) = h.random(&mut rng) {
                if seen.insert(f) {
                    out.push((f, v));
                }
            }
        }
        out
    };
    crate::reply::pairs(resp3, withvalues, picked.into_iter().map(|(f, v)| (Reply::bulk(f), Reply::bulk(v))))
}

fn hscan(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let Some(cursor) = parse_cursor(a[2]) else {
        return Reply::err("ERR invalid cursor");
    };
    let h = match cx.get_hash(a[1]) {
        Ok(Some(h)) => h,
        Ok(None) => return Reply::Array(vec![Reply::bulk(b"0"), Reply::Array(Vec::new())]),
        Err(e) => return e,
    };
    let mut count: i64 = 10;
    let mut pattern: Option<&[u8]> = None;
    let mut i = 3;
    while i < a.len() {
        let more = i + 1 < a.len();
        if eq_ic(a[i], "COUNT") && more {
            count = match int_arg(a[i + 1]) {
                Ok(n) if n >= 1 => n,
                Ok(_) => return errors::SYNTAX,
                Err(e) => return e,
            };
        } else if eq_ic(a[i], "MATCH") && more {
            // "*" matches everything: skip the matching altogether.
            pattern = if a[i + 1] == b"*" { None } else { Some(a[i + 1]) };
        } else {
            return errors::SYNTAX;
        }
        i += 2;
    }
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    // Redis counts a hash's replies as field + value (twice COUNT) and
    // bounds the empty buckets it walks at ten times that.
    let mut budget = count.saturating_mul(20);
    // Fields are counted before the MATCH filter, as in Redis.
    let mut seen = 0usize;
    let mut items = Vec::new();
    let mut cursor = cursor;
    loop {
        cursor = h.scan(cursor, |f, v| {
            seen += 1;
            if pattern.is_none_or(|p| glob_match(p, f, false)) {
                items.push(Reply::bulk(f));
                items.push(Reply::bulk(v));
            }
        });
        if cursor == 0 || budget == 0 || seen >= count {
            break;
        }
        budget -= 1;
    }
    Reply::Array(vec![Reply::Bulk(cursor.to_string().into_bytes()), Reply::Array(items)])
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::parse_cursor;
    use crate::notify;
    use crate::record::Record;
    use crate::reply::Reply;
    use crate::testutil::{bulk, bulks, err, T};

    const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

    fn run_ev(t: &mut T, args: &[&str]) -> (Reply, Vec<String>) {
        t.engine.set_notify_flags(notify::KEYEVENT | notify::ALL);
        let argv: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let log = &mut t.log;
        let mut journal = |r: &Record| {
            log.push(r.clone());
            Ok(())
        };
        let out = t.engine.execute_with(&mut t.session, &argv, &mut journal);
        let ev = out.events.iter().map(|e| format!("{}:{}", e.event, String::from_utf8_lossy(&e.key))).collect();
        (out.reply, ev)
    }

    fn last_op(t: &T) -> Vec<String> {
        t.log
            .last()
            .and_then(|r| r.ops.last())
            .map(|op| op.argv.iter().map(|a| String::from_utf8_lossy(&a.0).into_owned()).collect())
            .unwrap_or_default()
    }

    fn exists(t: &T, key: &str) -> bool {
        crate::testutil::state(&t.engine).contains_key(&(0, key.as_bytes().to_vec()))
    }

    fn text(r: &Reply) -> String {
        match r {
            Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            other => panic!("expected a bulk reply, got {other:?}"),
        }
    }

    fn strings(r: &Reply) -> Vec<String> {
        match r {
            Reply::Array(v) => v.iter().map(text).collect(),
            other => panic!("expected an array, got {other:?}"),
        }
    }

    fn sorted(r: &Reply) -> Vec<String> {
        let mut v = strings(r);
        v.sort();
        v
    }

    #[test]
    fn set_get_del() {
        let mut t = T::new();
        assert_eq!(t.run(&["HSET", "h", "a", "1", "b", "2"]), Reply::Int(2));
        assert_eq!(t.run(&["HSET", "h", "a", "10", "c", "3"]), Reply::Int(1));
        assert_eq!(t.run(&["HSET", "h", "a", "1", "b"]), err("ERR wrong number of arguments for 'hset' command"));
        assert_eq!(t.run(&["HSET", "h", "a"]), err("ERR wrong number of arguments for 'hset' command"));
        assert_eq!(t.run(&["HMSET", "h", "d", "4", "e"]), err("ERR wrong number of arguments for 'hmset' command"));
        assert_eq!(t.run(&["HMSET", "h", "d", "4", "e", "5"]), Reply::OK);
        assert_eq!(t.run(&["HGET", "h", "a"]), bulk("10"));
        assert_eq!(t.run(&["HGET", "h", "zz"]), Reply::Nil);
        assert_eq!(t.run(&["HGET", "nope", "a"]), Reply::Nil);
        assert_eq!(t.run(&["HMGET", "h", "a", "zz", "b"]), Reply::Array(vec![bulk("10"), Reply::Nil, bulk("2")]));
        assert_eq!(t.run(&["HMGET", "nope", "a", "b"]), Reply::Array(vec![Reply::Nil, Reply::Nil]));
        assert_eq!(t.run(&["HLEN", "h"]), Reply::Int(5));
        assert_eq!(t.run(&["HLEN", "nope"]), Reply::Int(0));
        assert_eq!(t.run(&["HSTRLEN", "h", "a"]), Reply::Int(2));
        assert_eq!(t.run(&["HSTRLEN", "h", "zz"]), Reply::Int(0));
        assert_eq!(t.run(&["HSTRLEN", "nope", "a"]), Reply::Int(0));
        assert_eq!(t.run(&["HEXISTS", "h", "a"]), Reply::Int(1));
        assert_eq!(t.run(&["HEXISTS", "h", "zz"]), Reply::Int(0));
        assert_eq!(t.run(&["HEXISTS", "nope", "a"]), Reply::Int(0));
        assert_eq!(t.run(&["HSETNX", "h", "a", "x"]), Reply::Int(0));
        assert_eq!(t.run(&["HSETNX", "h", "f", "6"]), Reply::Int(1));
        assert_eq!(t.run(&["HSETNX", "new", "f", "6"]), Reply::Int(1));
        assert_eq!(t.run(&["HGET", "h", "a"]), bulk("10"));
        assert_eq!(sorted(&t.run(&["HKEYS", "h"])), ["a", "b", "c", "d", "e", "f"]);
        assert_eq!(sorted(&t.run(&["HVALS", "h"])), ["10", "2", "3", "4", "5", "6"]);
        assert_eq!(t.run(&["HKEYS", "nope"]), bulks(&[]));
        assert_eq!(t.run(&["HVALS", "nope"]), bulks(&[]));
        let all = match t.run(&["HGETALL", "h"]) {
            Reply::Map(m) => m.iter().map(|(f, v)| (text(f), text(v))).collect::<BTreeMap<_, _>>(),
            other => panic!("HGETALL replied {other:?}"),
        };
        let want: BTreeMap<String, String> = [("a", "10"), ("b", "2"), ("c", "3"), ("d", "4"), ("e", "5"), ("f", "6")]
            .iter()
            .map(|(f, v)| (f.to_string(), v.to_string()))
            .collect();
        assert_eq!(all, want);
        assert_eq!(t.run(&["HGETALL", "nope"]), Reply::Map(Vec::new()));
        assert_eq!(t.run(&["HDEL", "h", "a", "a", "zz", "b"]), Reply::Int(2));
        let before = t.log.len();
        assert_eq!(t.run(&["HDEL", "h", "zz"]), Reply::Int(0));
        assert_eq!(t.run(&["HDEL", "nope", "zz"]), Reply::Int(0));
        assert_eq!(t.log.len(), before, "a no-op HDEL is not logged");
        assert_eq!(t.run(&["HDEL", "h", "c", "d", "e", "f"]), Reply::Int(4));
        assert!(!exists(&t, "h"));
        t.check_replay();
    }

    #[test]
    fn wrongtype_everywhere() {
        let mut t = T::new();
        t.run(&["SET", "s", "v"]);
        for cmd in [
            &["HSET", "s", "a", "1"][..],
            &["HMSET", "s", "a", "1"],
            &["HSETNX", "s", "a", "1"],
            &["HGET", "s", "a"],
            &["HMGET", "s", "a"],
            &["HDEL", "s", "a"],
            &["HLEN", "s"],
            &["HSTRLEN", "s", "a"],
            &["HEXISTS", "s", "a"],
            &["HGETALL", "s"],
            &["HKEYS", "s"],
            &["HVALS", "s"],
            &["HINCRBY", "s", "a", "1"],
            &["HINCRBYFLOAT", "s", "a", "1"],
            &["HRANDFIELD", "s"],
            &["HRANDFIELD", "s", "2", "WITHVALUES"],
            &["HSCAN", "s", "0"],
            &["HSCAN", "s", "0", "COUNT", "0"],
        ] {
            assert_eq!(t.run(cmd), err(WRONGTYPE), "{cmd:?}");
        }
        assert_eq!(t.run(&["GET", "s"]), bulk("v"));
        t.check_replay();
    }

    #[test]
    fn counters() {
        let mut t = T::new();
        assert_eq!(t.run(&["HINCRBY", "h", "n", "5"]), Reply::Int(5));
        assert_eq!(t.run(&["HINCRBY", "h", "n", "-7"]), Reply::Int(-2));
        assert_eq!(t.run(&["HINCRBY", "h", "n", "x"]), err("ERR value is not an integer or out of range"));
        t.run(&["HSET", "h", "s", "abc", "big", "9223372036854775807", "f", "1.5"]);
        assert_eq!(t.run(&["HINCRBY", "h", "s", "1"]), err("ERR hash value is not an integer"));
        assert_eq!(t.run(&["HINCRBY", "h", "f", "1"]), err("ERR hash value is not an integer"));
        assert_eq!(t.run(&["HINCRBY", "h", "big", "1"]), err("ERR increment or decrement would overflow"));
        assert_eq!(t.run(&["HINCRBY", "h", "n", "-9223372036854775806"]), Reply::Int(i64::MIN));
        assert_eq!(t.run(&["HINCRBY", "h", "n", "-1"]), err("ERR increment or decrement would overflow"));
        let (r, ev) = run_ev(&mut t, &["HINCRBY", "h", "m", "1"]);
        assert_eq!((r, ev), (Reply::Int(1), vec!["hincrby:h".to_string()]));

        assert_eq!(t.run(&["HINCRBYFLOAT", "h", "f", "0.1"]), bulk("1.6"));
        assert_eq!(t.run(&["HINCRBYFLOAT", "h", "g", "10.5"]), bulk("10.5"));
        assert_eq!(last_op(&t), ["HSET", "h", "g", "10.5"]);
        assert_eq!(t.run(&["HINCRBYFLOAT", "h", "g", "-10.5"]), bulk("0"));
        assert_eq!(t.run(&["HINCRBYFLOAT", "h", "m", "2.5e3"]), bulk("2501"));
        assert_eq!(t.run(&["HINCRBYFLOAT", "h", "s", "1"]), err("ERR hash value is not a float"));
        assert_eq!(t.run(&["HINCRBYFLOAT", "h", "g", "x"]), err("ERR value is not a valid float"));
        assert_eq!(t.run(&["HINCRBYFLOAT", "h", "g", "inf"]), err("ERR value is NaN or Infinity"));
        t.run(&["HSET", "h", "huge", "1.7e308"]);
        assert_eq!(
            t.run(&["HINCRBYFLOAT", "h", "huge", "1.7e308"]),
            err("ERR increment would produce NaN or Infinity")
        );
        let (r, ev) = run_ev(&mut t, &["HINCRBYFLOAT", "h", "g", "1"]);
        assert_eq!((r, ev), (bulk("1"), vec!["hincrbyfloat:h".to_string()]));
        t.check_replay();
    }

    #[test]
    fn events() {
        let mut t = T::new();
        let (_, ev) = run_ev(&mut t, &["HSET", "h", "a", "1", "b", "2"]);
        assert_eq!(ev, ["hset:h"]);
        let (_, ev) = run_ev(&mut t, &["HMSET", "h", "c", "3"]);
        assert_eq!(ev, ["hset:h"]);
        let (_, ev) = run_ev(&mut t, &["HSETNX", "h", "c", "3"]);
        assert!(ev.is_empty());
        let (_, ev) = run_ev(&mut t, &["HSETNX", "h", "d", "4"]);
        assert_eq!(ev, ["hset:h"]);
        let (_, ev) = run_ev(&mut t, &["HDEL", "h", "zz"]);
        assert!(ev.is_empty());
        let (_, ev) = run_ev(&mut t, &["HDEL", "h", "a", "b"]);
        assert_eq!(ev, ["hdel:h"]);
        let (_, ev) = run_ev(&mut t, &["HDEL", "h", "c", "d"]);
        assert_eq!(ev, ["hdel:h", "del:h"]);
        t.check_replay();
    }

    #[test]
    fn randfield() {
        let mut t = T::new();
        assert_eq!(t.run(&["HRANDFIELD", "nope"]), Reply::Nil);
        assert_eq!(t.run(&["HRANDFIELD", "nope", "3"]), bulks(&[]));
        assert_eq!(t.run(&["HRANDFIELD", "nope", "-3", "WITHVALUES"]), bulks(&[]));
        let fields: Vec<String> = (0..30).map(|i| format!("f{i}")).collect();
        let mut args = vec!["HSET".to_string(), "h".to_string()];
        for f in &fields {
            args.push(f.clone());
            args.push(format!("v{}", &f[1..]));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        t.run(&args);
        let all: BTreeSet<String> = fields.iter().cloned().collect();
        let before = t.log.len();
        let one = text(&t.run(&["HRANDFIELD", "h"]));
        assert!(all.contains(&one));
        assert_eq!(t.run(&["HRANDFIELD", "h", "0"]), bulks(&[]));
        // Distinct fields, whichever sampling strategy the count selects.
        for n in [1usize, 5, 12, 29, 30, 100] {
            let got = strings(&t.run(&["HRANDFIELD", "h", &n.to_string()]));
            assert_eq!(got.len(), n.min(30), "count {n}");
            let set: BTreeSet<String> = got.iter().cloned().collect();
            assert_eq!(set.len(), got.len(), "count {n} repeated a field");
            assert!(set.is_subset(&all));
        }
        // Negative counts may repeat and return exactly that many.
        let got = strings(&t.run(&["HRANDFIELD", "h", "-100"]));
        assert_eq!(got.len(), 100);
        assert!(got.iter().all(|f| all.contains(f)));
        // WITHVALUES: flat pairs in RESP2, nested pairs in RESP3.
        let flat = strings(&t.run(&["HRANDFIELD", "h", "-5", "withvalues"]));
        assert_eq!(flat.len(), 10);
        for pair in flat.chunks(2) {
            assert_eq!(pair[1], format!("v{}", &pair[0][1..]));
        }
        t.session.set_resp3(true);
        match t.run(&["HRANDFIELD", "h", "3", "WITHVALUES"]) {
            Reply::Array(v) => {
                assert_eq!(v.len(), 3);
                for p in &v {
                    let p = strings(p);
                    assert_eq!(p[1], format!("v{}", &p[0][1..]));
                }
            }
            other => panic!("got {other:?}"),
        }
        t.session.set_resp3(false);
        assert_eq!(t.run(&["HRANDFIELD", "h", "1", "WITHSCORES"]), err("ERR syntax error"));
        assert_eq!(t.run(&["HRANDFIELD", "h", "1", "WITHVALUES", "x"]), err("ERR syntax error"));
        assert_eq!(t.run(&["HRANDFIELD", "h", "x"]), err("ERR value is not an integer or out of range"));
        assert_eq!(
            t.run(&["HRANDFIELD", "h", "-9223372036854775808"]),
            err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
        );
        assert_eq!(t.run(&["HRANDFIELD", "h", "-9223372036854775807", "WITHVALUES"]), err("ERR value is out of range"));
        assert_eq!(t.log.len(), before, "HRANDFIELD writes nothing");
        t.check_replay();
    }

    #[test]
    fn scan() {
        let mut t = T::new();
        assert_eq!(t.run(&["HSCAN", "nope", "0"]), Reply::Array(vec![bulk("0"), bulks(&[])]));
        assert_eq!(t.run(&["HSCAN", "nope", "0", "COUNT", "0"]), Reply::Array(vec![bulk("0"), bulks(&[])]));
        assert_eq!(t.run(&["HSCAN", "nope", "x"]), err("ERR invalid cursor"));
        t.run(&["HSET", "small", "a", "1", "b", "2"]);
        match t.run(&["HSCAN", "small", "0"]) {
            Reply::Array(v) => {
                assert_eq!(v[0], bulk("0"));
                let mut pairs: Vec<Vec<String>> = strings(&v[1]).chunks(2).map(|c| c.to_vec()).collect();
                pairs.sort();
                assert_eq!(pairs, [["a", "1"], ["b", "2"]]);
            }
            other => panic!("got {other:?}"),
        }
        let mut args = vec!["HSET".to_string(), "h".to_string()];
        for i in 0..500 {
            args.push(format!("field:{i}"));
            args.push(i.to_string());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        t.run(&args);
        // A full iteration sees every field, with its value.
        let mut seen = BTreeMap::new();
        let mut cursor = "0".to_string();
        let mut calls = 0;
        loop {
            let r = t.run(&["HSCAN", "h", &cursor, "COUNT", "20"]);
            let Reply::Array(v) = r else { panic!("bad reply") };
            cursor = text(&v[0]);
            for c in strings(&v[1]).chunks(2) {
                seen.insert(c[0].clone(), c[1].clone());
            }
            calls += 1;
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(seen.len(), 500);
        assert!(calls > 5, "COUNT 20 over 500 fields took {calls} calls");
        assert_eq!(seen.get("field:42").map(String::as_str), Some("42"));
        // MATCH filters fields after the walk.
        let mut matched = BTreeSet::new();
        let mut cursor = "0".to_string();
        loop {
            let Reply::Array(v) = t.run(&["HSCAN", "h", &cursor, "MATCH", "field:1?", "COUNT", "1000"]) else {
                panic!("bad reply")
            };
            cursor = text(&v[0]);
            for c in strings(&v[1]).chunks(2) {
                matched.insert(c[0].clone());
            }
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(matched.len(), 10);
        assert_eq!(t.run(&["HSCAN", "h", "0", "COUNT", "0"]), err("ERR syntax error"));
        assert_eq!(t.run(&["HSCAN", "h", "0", "COUNT", "x"]), err("ERR value is not an integer or out of range"));
        assert_eq!(t.run(&["HSCAN", "h", "0", "COUNT"]), err("ERR syntax error"));
        assert_eq!(t.run(&["HSCAN", "h", "0", "TYPE", "string"]), err("ERR syntax error"));
        assert_eq!(t.run(&["HSCAN", "h", " 1"]), err("ERR invalid cursor"));
        assert_eq!(t.run(&["HSCAN", "h", "18446744073709551616"]), err("ERR invalid cursor"));
    }

    #[test]
    fn cursors() {
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"+12"), Some(12));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551616"), None);
        assert_eq!(parse_cursor(b"1a"), None);
        assert_eq!(parse_cursor(b"-"), None);
        assert_eq!(parse_cursor(b" 1"), None);
    }

    #[test]
    fn mem_is_exact_after_churn() {
        let mut t = T::new();
        for i in 0..200 {
            t.run(&["HSET", "h", &format!("f{i}"), &"x".repeat(i % 40)]);
        }
        for i in (0..200).step_by(3) {
            t.run(&["HDEL", "h", &format!("f{i}")]);
        }
        for i in 0..50 {
            t.run(&["HINCRBY", "h", &format!("n{i}"), "7"]);
        }
        // The running counters add up to what the entries hold now.
        let mut total = 0;
        for shard in t.engine.0.shards.iter() {
            let shard = shard.lock();
            total += shard.dbs.iter().flat_map(|d| d.keys.iter()).map(|e| e.mem() as u64).sum::<u64>();
        }
        assert_eq!(t.engine.0.used(), total);
        t.check_replay();
    }
}
