//! List commands, and the non-blocking core of the blocking pops.
//!
//! BLPOP, BRPOP, BLMOVE and BRPOPLPUSH run here exactly like their
//! non-blocking forms when an element is available, and are logged as those
//! forms (`LPOP`, `RPOP`, `LMOVE`, `RPOPLPUSH`). When nothing is available
//! they answer the "timed out" reply; turning that into waiting is the
//! server's job.

use super::flags::{DENYOOM, FAST, READONLY, WRITE};
use super::{cmd, CommandSpec};
use crate::cx::Cx;
use crate::keyspace::ObjRef;
use crate::notify;
use crate::reply::{errors, Reply};
use crate::types::End;
use crate::util::{clamp_range, eq_ic, int_arg, parse_f64, parse_i64};

pub(crate) const COMMANDS: &[CommandSpec] = &[
    cmd("lpush", -3, WRITE | DENYOOM | FAST, (1, 1, 1), "list", lpush),
    cmd("rpush", -3, WRITE | DENYOOM | FAST, (1, 1, 1), "list", rpush),
    cmd("lpushx", -3, WRITE | DENYOOM | FAST, (1, 1, 1), "list", lpushx),
    cmd("rpushx", -3, WRITE | DENYOOM | FAST, (1, 1, 1), "list", rpushx),
    cmd("linsert", 5, WRITE | DENYOOM, (1, 1, 1), "list", linsert),
    cmd("lpop", -2, WRITE | FAST, (1, 1, 1), "list", lpop),
    cmd("rpop", -2, WRITE | FAST, (1, 1, 1), "list", rpop),
    cmd("llen", 2, READONLY | FAST, (1, 1, 1), "list", llen),
    cmd("lrange", 4, READONLY, (1, 1, 1), "list", lrange),
    cmd("lindex", 3, READONLY, (1, 1, 1), "list", lindex),
    cmd("lset", 4, WRITE | DENYOOM, (1, 1, 1), "list", lset),
    cmd("lrem", 4, WRITE, (1, 1, 1), "list", lrem),
    cmd("ltrim", 4, WRITE, (1, 1, 1), "list", ltrim),
    cmd("lpos", -3, READONLY, (1, 1, 1), "list", lpos),
    cmd("lmove", 5, WRITE | DENYOOM, (1, 2, 1), "list", lmove),
    cmd("rpoplpush", 3, WRITE | DENYOOM, (1, 2, 1), "list", rpoplpush),
    cmd("blpop", -3, WRITE, (1, -2, 1), "list", blpop),
    cmd("brpop", -3, WRITE, (1, -2, 1), "list", brpop),
    cmd("blmove", 6, WRITE | DENYOOM, (1, 2, 1), "list", blmove),
    cmd("brpoplpush", 4, WRITE | DENYOOM, (1, 2, 1), "list", brpoplpush),
];

const TIMEOUT_NOT_FLOAT: Reply = Reply::err("ERR timeout is not a float or out of range");
const TIMEOUT_NEGATIVE: Reply = Reply::err("ERR timeout is negative");
const TIMEOUT_OUT_OF_RANGE: Reply = Reply::err("ERR timeout is out of range");

/// Parses a blocking command's timeout in seconds (Redis'
/// `getTimeoutFromObjectOrReply` with `UNIT_SECONDS`) into the absolute
/// Unix time in milliseconds at which the wait ends, 0 meaning "forever".
pub(crate) fn parse_timeout(now: u64, arg: &[u8]) -> Result<u64, Reply> {
    let secs = parse_f64(arg).ok_or(TIMEOUT_NOT_FLOAT)?;
    let ms = secs * 1000.0;
    if ms > i64::MAX as f64 {
        return Err(TIMEOUT_OUT_OF_RANGE);
    }
    // Rounding up keeps a tiny positive timeout from meaning "forever";
    // `as` saturates, so a huge negative value stays negative.
    let ms = ms.ceil() as i64;
    if ms < 0 {
        return Err(TIMEOUT_NEGATIVE);
    }
    if ms == 0 {
        return Ok(0);
    }
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    match ms.checked_add(now) {
        Some(t) => Ok(t as u64),
        None => Err(TIMEOUT_OUT_OF_RANGE),
    }
}

fn push_event(end: End) -> &'static str {
    match end {
        End::Left => "lpush",
        End::Right => "rpush",
    }
}

fn pop_event(end: End) -> &'static str {
    match end {
        End::Left => "lpop",
        End::Right => "rpop",
    }
}

/// `LEFT` or `RIGHT`, as LMOVE and BLMOVE take them.
fn parse_end(arg: &[u8]) -> Result<End, Reply> {
    if eq_ic(arg, "LEFT") {
        Ok(End::Left)
    } else if eq_ic(arg, "RIGHT") {
        Ok(End::Right)
    } else {
        Err(errors::SYNTAX)
    }
}

/// The length of the list at `key`, `None` if there is no key: the type
/// check write commands do before they change anything (no hit/miss
/// statistics, as Redis' `lookupKeyWrite`).
fn list_len(cx: &mut Cx, key: &[u8]) -> Result<Option<usize>, Reply> {
    match cx.peek(key).map(|e| e.obj()) {
        None => Ok(None),
        Some(ObjRef::List(l)) => Ok(Some(l.len())),
        Some(_) => Err(errors::WRONGTYPE),
    }
}

/// Resolves a Redis index (negative counts from the tail) within a list of
/// `len` elements.
fn resolve_index(i: i64, len: usize) -> Option<usize> {
    let len = len as i64;
    let i = if i < 0 { len + i } else { i };
    if (0..len).contains(&i) {
        Some(i as usize)
    } else {
        None
    }
}

/// Events after elements were popped from `key` (Redis'
/// `listElementsRemoved`): the pop, then `del` if the list is gone.
fn removed_events(cx: &mut Cx, key: &[u8], end: End, emptied: bool) {
    cx.notify(notify::LIST, pop_event(end), key);
    if emptied {
        cx.notify(notify::GENERIC, "del", key);
    }
}

fn push_generic(cx: &mut Cx, a: &[&[u8]], end: End, only_existing: bool) -> Reply {
    let key = a[1];
    let r = cx.list_mut(key, !only_existing, |l| {
        for v in &a[2..] {
            l.push(end, v);
        }
        l.len()
    });
    match r {
        Ok(Some(n)) => {
            cx.notify(notify::LIST, push_event(end), key);
            Reply::Int(n as i64)
        }
        Ok(None) => Reply::Int(0),
        Err(e) => e,
    }
}

fn lpush(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    push_generic(cx, a, End::Left, false)
}

fn rpush(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    push_generic(cx, a, End::Right, false)
}

fn lpushx(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    push_generic(cx, a, End::Left, true)
}

fn rpushx(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    push_generic(cx, a, End::Right, true)
}

fn linsert(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let after = if eq_ic(a[2], "AFTER") {
        true
    } else if eq_ic(a[2], "BEFORE") {
        false
    } else {
        return errors::SYNTAX;
    };
    let (key, pivot, value) = (a[1], a[3], a[4]);
    let pos = match cx.peek(key).map(|e| e.obj()) {
        None => return Reply::Int(0),
        Some(ObjRef::List(l)) => l.position(pivot),
        Some(_) => return errors::WRONGTYPE,
    };
    let Some(pos) = pos else {
        return Reply::Int(-1);
    };
    let at = if after { pos + 1 } else { pos };
    match cx.list_mut(key, false, |l| {
        l.insert(at, value);
        l.len()
    }) {
        Ok(Some(n)) => {
            cx.notify(notify::LIST, "linsert", key);
            Reply::Int(n as i64)
        }
        Ok(None) => Reply::Int(0),
        Err(e) => e,
    }
}

/// Pops one element from `key`; `Ok(None)` if there is no key.
fn pop_one(cx: &mut Cx, key: &[u8], end: End) -> Result<Option<Vec<u8>>, Reply> {
    match cx.list_mut(key, false, |l| (l.pop(end), l.is_empty()))? {
        Some((Some(v), emptied)) => {
            removed_events(cx, key, end, emptied);
            Ok(Some(v.into_vec()))
        }
        // Emptied lists are deleted, so a list that exists has an element.
        Some((None, _)) | None => Ok(None),
    }
}

fn pop_generic(cx: &mut Cx, a: &[&[u8]], end: End) -> Reply {
    if a.len() > 3 {
        return errors::wrong_args(pop_event(end));
    }
    let key = a[1];
    if a.len() == 2 {
        return match pop_one(cx, key, end) {
            Ok(v) => v.map_or(Reply::Nil, Reply::Bulk),
            Err(e) => e,
        };
    }
    // Redis parses the count with "must be positive" as the message for
    // both a non-integer and a negative value.
    let count = match parse_i64(a[2]) {
        Some(n) if n >= 0 => n as usize,
        _ => return errors::MUST_BE_POSITIVE,
    };
    match list_len(cx, key) {
        Err(e) => return e,
        Ok(None) => return Reply::NilArray,
        Ok(Some(_)) => {}
    }
    if count == 0 {
        return Reply::Array(Vec::new());
    }
    match cx.list_mut(key, false, |l| (l.pop_many(end, count), l.is_empty())) {
        Ok(Some((vals, emptied))) => {
            removed_events(cx, key, end, emptied);
            Reply::Array(vals.into_iter().map(|v| Reply::Bulk(v.into_vec())).collect())
        }
        Ok(None) => Reply::NilArray,
        Err(e) => e,
    }
}

fn lpop(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    pop_generic(cx, a, End::Left)
}

fn rpop(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    pop_generic(cx, a, End::Right)
}

fn llen(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    match cx.get_list(a[1]) {
        Ok(l) => Reply::Int(l.map_or(0, |l| l.len()) as i64),
        Err(e) => e,
    }
}

fn lrange(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let (start, end) = match (int_arg(a[2]), int_arg(a[3])) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let l = match cx.get_list(a[1]) {
        Ok(Some(l)) => l,
        Ok(None) => return Reply::Array(Vec::new()),
        Err(e) => return e,
    };
    match clamp_range(start, end, l.len()) {
        Some((s, e)) => Reply::bulks(l.range(s, e)),
        None => Reply::Array(Vec::new()),
    }
}

fn lindex(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let l = match cx.get_list(a[1]) {
        Ok(Some(l)) => l,
        Ok(None) => return Reply::Nil,
        Err(e) => return e,
    };
    let Some(i) = parse_i64(a[2]) else {
        return errors::NOT_INTEGER;
    };
    resolve_index(i, l.len()).and_then(|p| l.get(p)).map_or(Reply::Nil, Reply::bulk)
}

fn lset(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let key = a[1];
    let len = match list_len(cx, key) {
        Ok(Some(n)) => n,
        Ok(None) => return errors::NO_SUCH_KEY,
        Err(e) => return e,
    };
    let Some(i) = parse_i64(a[2]) else {
        return errors::NOT_INTEGER;
    };
    let Some(pos) = resolve_index(i, len) else {
        return errors::INDEX_OUT_OF_RANGE;
    };
    match cx.list_mut(key, false, |l| l.set(pos, a[3])) {
        Ok(_) => {
            cx.notify(notify::LIST, "lset", key);
            Reply::OK
        }
        Err(e) => e,
    }
}

fn lrem(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let count = match int_arg(a[2]) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let (key, value) = (a[1], a[3]);
    let found = match cx.peek(key).map(|e| e.obj()) {
        None => false,
        Some(ObjRef::List(l)) => l.iter().any(|x| x == value),
        Some(_) => return errors::WRONGTYPE,
    };
    if !found {
        return Reply::Int(0);
    }
    match cx.list_mut(key, false, |l| (l.remove_matching(value, count), l.is_empty())) {
        Ok(Some((removed, emptied))) => {
            cx.notify_removed(notify::LIST, "lrem", key, emptied);
            Reply::Int(removed as i64)
        }
        Ok(None) => Reply::Int(0),
        Err(e) => e,
    }
}

fn ltrim(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let (start, end) = match (int_arg(a[2]), int_arg(a[3])) {
        (Ok(s), Ok(e)) => (s, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    let key = a[1];
    let len = match list_len(cx, key) {
        Ok(Some(n)) => n,
        Ok(None) => return Reply::OK,
        Err(e) => return e,
    };
    let keep = clamp_range(start, end, len);
    let removed = keep.map_or(len, |(s, e)| len - (e - s + 1));
    let r = cx.list_mut(key, false, |l| {
        match keep {
            Some((s, e)) => l.trim(s, e),
            None => l.clear(),
        }
        l.is_empty()
    });
    match r {
        Ok(emptied) => {
            // Redis signals the key and sends the event even when nothing
            // was trimmed, but propagates nothing then.
            if removed == 0 {
                cx.propagate_nothing();
            }
            cx.notify(notify::LIST, "ltrim", key);
            if emptied == Some(true) {
                cx.notify(notify::GENERIC, "del", key);
            }
            Reply::OK
        }
        Err(e) => e,
    }
}

fn lpos(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let mut rank: i64 = 1;
    // -1: no COUNT option; 0: every match.
    let mut count: i64 = -1;
    let mut maxlen: i64 = 0;
    let mut j = 3;
    while j < a.len() {
        let more = j + 1 < a.len();
        if eq_ic(a[j], "RANK") && more {
            j += 1;
            rank =
                match parse_i64(a[j]) {
                    Some(i64::MIN) => return Reply::err(
                        "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                    ),
                    Some(0) => {
                        return Reply::err(
                            "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... \
                         or use negative to start from the end of the list",
                        )
                    }
                    Some(r) => r,
                    None => return errors::NOT_INTEGER,
                };
        } else if eq_ic(a[j], "COUNT") && more {
            j += 1;
            count = match parse_i64(a[j]) {
                Some(n) if n >= 0 => n,
                _ => return Reply::err("ERR COUNT can't be negative"),
            };
        } else if eq_ic(a[j], "MAXLEN") && more {
            j += 1;
            maxlen = match parse_i64(a[j]) {
                Some(n) if n >= 0 => n,
                _ => return Reply::err("ERR MAXLEN can't be negative"),
            };
        } else {
            return errors::SYNTAX;
        }
        j += 1;
    }
    let from_tail = rank < 0;
    let rank = rank.unsigned_abs();
    let l = match cx.get_list(a[1]) {
        Ok(Some(l)) => l,
        Ok(None) if count != -1 => return Reply::Array(Vec::new()),
        Ok(None) => return Reply::Nil,
        Err(e) => return e,
    };
    let len = l.len();
    let scan: Box<dyn Iterator<Item = (usize, &[u8])>> =
        if from_tail { Box::new(l.iter().enumerate().rev()) } else { Box::new(l.iter().enumerate()) };
    let limit = if maxlen == 0 { len } else { usize::try_from(maxlen).unwrap_or(usize::MAX).min(len) };
    let mut matches: u64 = 0;
    let mut found = Vec::new();
    for (pos, x) in scan.take(limit) {
        if x != a[2] {
            continue;
        }
        matches += 1;
        if matches < rank {
            continue;
        }
        found.push(Reply::Int(pos as i64));
        if count == -1 || (count != 0 && matches - rank + 1 >= count as u64) {
            break;
        }
    }
    if count != -1 {
        Reply::Array(found)
    } else {
        found.pop().unwrap_or(Reply::Nil)
    }
}

/// LMOVE and friends: moves one element from `src`'s `from` end to
/// `dst`'s `to` end. Replies with the element, or nil if `src` is missing.
fn lmove_generic(cx: &mut Cx, src: &[u8], dst: &[u8], from: End, to: End) -> Reply {
    match list_len(cx, src) {
        Err(e) => return e,
        Ok(None) => return Reply::Nil,
        Ok(Some(_)) => {}
    }
    if let Err(e) = list_len(cx, dst) {
        return e;
    }
    let (value, emptied) = if src == dst {
        let r = cx.list_mut(src, false, |l| {
            let v = l.pop(from);
            if let Some(v) = &v {
                l.push(to, v);
            }
            v
        });
        match r {
            Ok(Some(Some(v))) => (v, false),
            Ok(_) => return Reply::Nil,
            Err(e) => return e,
        }
    } else {
        let (v, emptied) = match cx.list_mut(src, false, |l| (l.pop(from), l.is_empty())) {
            Ok(Some((Some(v), emptied))) => (v, emptied),
            Ok(_) => return Reply::Nil,
            Err(e) => return e,
        };
        if let Err(e) = cx.list_mut(dst, true, |l| l.push(to, &v)) {
            return e;
        }
        (v, emptied)
    };
    cx.notify(notify::LIST, push_event(to), dst);
    removed_events(cx, src, from, emptied);
    Reply::Bulk(value.into_vec())
}

fn lmove(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let (from, to) = match (parse_end(a[3]), parse_end(a[4])) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    lmove_generic(cx, a[1], a[2], from, to)
}

fn rpoplpush(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    lmove_generic(cx, a[1], a[2], End::Right, End::Left)
}

fn bpop_generic(cx: &mut Cx, a: &[&[u8]], end: End) -> Reply {
    let last = a.len() - 1;
    if let Err(e) = parse_timeout(cx.now, a[last]) {
        return e;
    }
    for &key in &a[1..last] {
        match list_len(cx, key) {
            Err(e) => return e,
            Ok(None) => continue,
            Ok(Some(_)) => {}
        }
        match pop_one(cx, key, end) {
            Ok(Some(v)) => {
                let name = match end {
                    End::Left => b"LPOP".to_vec(),
                    End::Right => b"RPOP".to_vec(),
                };
                cx.propagate(vec![name, key.to_vec()]);
                return Reply::Array(vec![Reply::bulk(key), Reply::Bulk(v)]);
            }
            Ok(None) => continue,
            Err(e) => return e,
        }
    }
    Reply::NilArray
}

fn blpop(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    bpop_generic(cx, a, End::Left)
}

fn brpop(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    bpop_generic(cx, a, End::Right)
}

/// The non-blocking core of BLMOVE/BRPOPLPUSH, logged as `rewrite`.
fn blmove_generic(cx: &mut Cx, a: &[&[u8]], from: End, to: End, rewrite: Vec<Vec<u8>>) -> Reply {
    let reply = lmove_generic(cx, a[1], a[2], from, to);
    if matches!(reply, Reply::Bulk(_)) {
        cx.propagate(rewrite);
    }
    reply
}

fn blmove(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let (from, to) = match (parse_end(a[3]), parse_end(a[4])) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    if let Err(e) = parse_timeout(cx.now, a[5]) {
        return e;
    }
    let rewrite = [&b"LMOVE"[..], a[1], a[2], a[3], a[4]].iter().map(|x| x.to_vec()).collect();
    blmove_generic(cx, a, from, to, rewrite)
}

fn brpoplpush(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    if let Err(e) = parse_timeout(cx.now, a[3]) {
        return e;
    }
    let rewrite = vec![b"RPOPLPUSH".to_vec(), a[1].to_vec(), a[2].to_vec()];
    blmove_generic(cx, a, End::Right, End::Left, rewrite)
}

#[cfg(test)]
mod tests {
    use super::parse_timeout;
    use crate::notify;
    use crate::record::Record;
    use crate::reply::Reply;
    use crate::testutil::{bulk, bulks, err, T};

    const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

    fn ints(v: &[i64]) -> Reply {
        Reply::Array(v.iter().map(|&i| Reply::Int(i)).collect())
    }

    /// Runs a command with keyspace events on; returns the reply and the
    /// events as `event:key`.
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

    fn exists(t: &T, key: &str) -> bool {
        crate::testutil::state(&t.engine).contains_key(&(0, key.as_bytes().to_vec()))
    }

    fn ops(v: &[&[&str]]) -> Vec<Vec<String>> {
        v.iter().map(|op| op.iter().map(|s| s.to_string()).collect()).collect()
    }

    #[test]
    fn push_pop_len_range() {
        let mut t = T::new();
        assert_eq!(t.run(&["LPUSH", "l", "a", "b", "c"]), Reply::Int(3));
        assert_eq!(t.run(&["RPUSH", "l", "d", "e"]), Reply::Int(5));
        assert_eq!(t.run(&["LRANGE", "l", "0", "-1"]), bulks(&["c", "b", "a", "d", "e"]));
        assert_eq!(t.run(&["LRANGE", "l", "1", "2"]), bulks(&["b", "a"]));
        assert_eq!(t.run(&["LRANGE", "l", "-2", "100"]), bulks(&["d", "e"]));
        assert_eq!(t.run(&["LRANGE", "l", "-100", "0"]), bulks(&["c"]));
        assert_eq!(t.run(&["LRANGE", "l", "3", "1"]), bulks(&[]));
        assert_eq!(t.run(&["LRANGE", "l", "5", "10"]), bulks(&[]));
        assert_eq!(t.run(&["LRANGE", "l", "x", "1"]), err("ERR value is not an integer or out of range"));
        assert_eq!(t.run(&["LRANGE", "nope", "0", "-1"]), bulks(&[]));
        assert_eq!(t.run(&["LLEN", "l"]), Reply::Int(5));
        assert_eq!(t.run(&["LLEN", "nope"]), Reply::Int(0));
        assert_eq!(t.run(&["LPUSHX", "nope", "a"]), Reply::Int(0));
        assert!(!exists(&t, "nope"));
        assert_eq!(t.run(&["LPUSHX", "l", "x", "y"]), Reply::Int(7));
        assert_eq!(t.run(&["RPUSHX", "l", "z"]), Reply::Int(8));
        assert_eq!(t.run(&["LPOP", "l"]), bulk("y"));
        assert_eq!(t.run(&["RPOP", "l"]), bulk("z"));
        assert_eq!(t.run(&["LPOP", "l", "2"]), bulks(&["x", "c"]));
        assert_eq!(t.run(&["RPOP", "l", "2"]), bulks(&["e", "d"]));
        assert_eq!(t.run(&["LPOP", "l", "0"]), bulks(&[]));
        assert_eq!(t.run(&["LPOP", "l", "-1"]), err("ERR value is out of range, must be positive"));
        assert_eq!(t.run(&["LPOP", "l", "x"]), err("ERR value is out of range, must be positive"));
        assert_eq!(t.run(&["LPOP", "l", "1", "2"]), err("ERR wrong number of arguments for 'lpop' command"));
        assert_eq!(t.run(&["RPOP", "l", "1", "2"]), err("ERR wrong number of arguments for 'rpop' command"));
        assert_eq!(t.run(&["LPOP", "nope"]), Reply::Nil);
        assert_eq!(t.run(&["LPOP", "nope", "2"]), Reply::NilArray);
        assert_eq!(t.run(&["LPOP", "nope", "0"]), Reply::NilArray);
        assert_eq!(t.run(&["RPOP", "l", "10"]), bulks(&["a", "b"]));
        assert!(!exists(&t, "l"));
        assert_eq!(t.run(&["LPUSH"]), err("ERR wrong number of arguments for 'lpush' command"));
        assert_eq!(t.run(&["LPUSH", "l"]), err("ERR wrong number of arguments for 'lpush' command"));
        t.check_replay();
    }

    #[test]
    fn wrongtype_everywhere() {
        let mut t = T::new();
        t.run(&["SET", "s", "v"]);
        t.run(&["RPUSH", "l", "a"]);
        for cmd in [
            &["LPUSH", "s", "a"][..],
            &["RPUSH", "s", "a"],
            &["LPUSHX", "s", "a"],
            &["RPUSHX", "s", "a"],
            &["LINSERT", "s", "BEFORE", "a", "b"],
            &["LPOP", "s"],
            &["RPOP", "s", "0"],
            &["LLEN", "s"],
            &["LRANGE", "s", "0", "-1"],
            &["LINDEX", "s", "0"],
            &["LSET", "s", "0", "x"],
            &["LREM", "s", "0", "x"],
            &["LTRIM", "s", "0", "1"],
            &["LPOS", "s", "a"],
            &["LMOVE", "s", "l", "LEFT", "RIGHT"],
            &["LMOVE", "l", "s", "LEFT", "RIGHT"],
            &["RPOPLPUSH", "s", "l"],
            &["RPOPLPUSH", "l", "s"],
            &["BLPOP", "s", "0"],
            &["BRPOP", "nope", "s", "0"],
            &["BLMOVE", "s", "l", "LEFT", "LEFT", "0"],
            &["BLMOVE", "l", "s", "LEFT", "LEFT", "0"],
            &["BRPOPLPUSH", "s", "l", "0"],
        ] {
            assert_eq!(t.run(cmd), err(WRONGTYPE), "{cmd:?}");
        }
        assert_eq!(t.run(&["GET", "s"]), bulk("v"));
        assert_eq!(t.run(&["LRANGE", "l", "0", "-1"]), bulks(&["a"]));
        // Missing keys take precedence over argument errors where Redis
        // looks the key up first.
        assert_eq!(t.run(&["LINDEX", "nope", "x"]), Reply::Nil);
        assert_eq!(t.run(&["LINDEX", "s", "x"]), err(WRONGTYPE));
        assert!(t.log.iter().all(|r| r.ops.iter().all(|op| op.name() != "LPUSH")));
        t.check_replay();
    }

    #[test]
    fn index_set_insert() {
        let mut t = T::new();
        t.run(&["RPUSH", "l", "a", "b", "c"]);
        assert_eq!(t.run(&["LINDEX", "l", "0"]), bulk("a"));
        assert_eq!(t.run(&["LINDEX", "l", "-1"]), bulk("c"));
        assert_eq!(t.run(&["LINDEX", "l", "3"]), Reply::Nil);
        assert_eq!(t.run(&["LINDEX", "l", "-4"]), Reply::Nil);
        assert_eq!(t.run(&["LINDEX", "l", "x"]), err("ERR value is not an integer or out of range"));
        assert_eq!(t.run(&["LSET", "l", "1", "B"]), Reply::OK);
        assert_eq!(t.run(&["LSET", "l", "-1", "C"]), Reply::OK);
        assert_eq!(t.run(&["LSET", "l", "3", "x"]), err("ERR index out of range"));
        assert_eq!(t.run(&["LSET", "l", "-4", "x"]), err("ERR index out of range"));
        assert_eq!(t.run(&["LSET", "l", "x", "x"]), err("ERR value is not an integer or out of range"));
        assert_eq!(t.run(&["LSET", "nope", "0", "x"]), err("ERR no such key"));
        assert_eq!(t.run(&["LRANGE", "l", "0", "-1"]), bulks(&["a", "B", "C"]));
        assert_eq!(t.run(&["LINSERT", "l", "BEFORE", "B", "x"]), Reply::Int(4));
        assert_eq!(t.run(&["LINSERT", "l", "after", "C", "y"]), Reply::Int(5));
        assert_eq!(t.run(&["LINSERT", "l", "AFTER", "zz", "y"]), Reply::Int(-1));
        assert_eq!(t.run(&["LINSERT", "nope", "AFTER", "a", "y"]), Reply::Int(0));
        assert_eq!(t.run(&["LINSERT", "l", "MIDDLE", "a", "y"]), err("ERR syntax error"));
        assert_eq!(t.run(&["LINSERT", "nope", "MIDDLE", "a", "y"]), err("ERR syntax error"));
        assert!(!exists(&t, "nope"));
        assert_eq!(t.run(&["LRANGE", "l", "0", "-1"]), bulks(&["a", "x", "B", "C", "y"]));
        let (r, ev) = run_ev(&mut t, &["LINSERT", "l", "BEFORE", "a", "first"]);
        assert_eq!((r, ev), (Reply::Int(6), vec!["linsert:l".to_string()]));
        let (r, ev) = run_ev(&mut t, &["LSET", "l", "0", "v"]);
        assert_eq!((r, ev), (Reply::OK, vec!["lset:l".to_string()]));
        t.check_replay();
    }

    #[test]
    fn lrem_ltrim() {
        let mut t = T::new();
        t.run(&["RPUSH", "l", "a", "b", "a", "c", "a", "a"]);
        assert_eq!(t.run(&["LREM", "l", "2", "a"]), Reply::Int(2));
        assert_eq!(t.run(&["LRANGE", "l", "0", "-1"]), bulks(&["b", "c", "a", "a"]));
        assert_eq!(t.run(&["LREM", "l", "-1", "a"]), Reply::Int(1));
        assert_eq!(t.run(&["LRANGE", "l", "0", "-1"]), bulks(&["b", "c", "a"]));
        let before = t.log.len();
        assert_eq!(t.run(&["LREM", "l", "0", "zz"]), Reply::Int(0));
        assert_eq!(t.log.len(), before, "a no-op LREM is not logged");
        assert_eq!(t.run(&["LREM", "l", "x", "a"]), err("ERR value is not an integer or out of range"));
        assert_eq!(t.run(&["LREM", "nope", "0", "a"]), Reply::Int(0));
        let (r, ev) = run_ev(&mut t, &["LREM", "l", "0", "a"]);
        assert_eq!((r, ev), (Reply::Int(1), vec!["lrem:l".to_string()]));
        t.run(&["RPUSH", "m", "x", "x"]);
        let (r, ev) = run_ev(&mut t, &["LREM", "m", "0", "x"]);
        assert_eq!((r, ev), (Reply::Int(2), vec!["lrem:m".to_string(), "del:m".to_string()]));

        t.run(&["LTRIM", "l", "1", "0"]);
        t.run(&["RPUSH", "l", "0", "1", "2", "3", "4", "5"]);
        assert_eq!(t.run(&["LTRIM", "l", "1", "-2"]), Reply::OK);
        assert_eq!(t.run(&["LRANGE", "l", "0", "-1"]), bulks(&["1", "2", "3", "4"]));
        assert_eq!(t.run(&["LTRIM", "l", "-100", "100"]), Reply::OK);
        assert_eq!(t.run(&["LLEN", "l"]), Reply::Int(4));
        assert_eq!(t.run(&["LTRIM", "l", "x", "1"]), err("ERR value is not an integer or out of range"));
        assert_eq!(t.run(&["LTRIM", "nope", "0", "1"]), Reply::OK);
        let before = t.log.len();
        let (r, ev) = run_ev(&mut t, &["LTRIM", "l", "0", "-1"]);
        assert_eq!((r, ev), (Reply::OK, vec!["ltrim:l".to_string()]));
        assert_eq!(t.log.len(), before, "a no-op LTRIM is not logged");
        let (r, ev) = run_ev(&mut t, &["LTRIM", "l", "2", "1"]);
        assert_eq!((r, ev), (Reply::OK, vec!["ltrim:l".to_string(), "del:l".to_string()]));
        assert!(!exists(&t, "l"));
        t.check_replay();
    }

    #[test]
    fn lpos_options() {
        let mut t = T::new();
        t.run(&["RPUSH", "l", "a", "b", "c", "1", "2", "3", "c", "c"]);
        assert_eq!(t.run(&["LPOS", "l", "c"]), Reply::Int(2));
        assert_eq!(t.run(&["LPOS", "l", "zz"]), Reply::Nil);
        assert_eq!(t.run(&["LPOS", "l", "c", "RANK", "2"]), Reply::Int(6));
        assert_eq!(t.run(&["LPOS", "l", "c", "RANK", "-1"]), Reply::Int(7));
        assert_eq!(t.run(&["LPOS", "l", "c", "RANK", "-3"]), Reply::Int(2));
        assert_eq!(t.run(&["LPOS", "l", "c", "RANK", "4"]), Reply::Nil);
        assert_eq!(t.run(&["LPOS", "l", "c", "COUNT", "2"]), ints(&[2, 6]));
        assert_eq!(t.run(&["LPOS", "l", "c", "COUNT", "0"]), ints(&[2, 6, 7]));
        assert_eq!(t.run(&["LPOS", "l", "c", "COUNT", "0", "RANK", "2"]), ints(&[6, 7]));
        assert_eq!(t.run(&["LPOS", "l", "c", "COUNT", "0", "RANK", "-1"]), ints(&[7, 6, 2]));
        assert_eq!(t.run(&["LPOS", "l", "c", "COUNT", "0", "MAXLEN", "7"]), ints(&[2, 6]));
        assert_eq!(t.run(&["LPOS", "l", "c", "COUNT", "0", "RANK", "-1", "MAXLEN", "2"]), ints(&[7, 6]));
        assert_eq!(t.run(&["LPOS", "l", "c", "MAXLEN", "2"]), Reply::Nil);
        assert_eq!(t.run(&["LPOS", "l", "zz", "COUNT", "1"]), ints(&[]));
        assert_eq!(t.run(&["LPOS", "nope", "a"]), Reply::Nil);
        assert_eq!(t.run(&["LPOS", "nope", "a", "COUNT", "1"]), ints(&[]));
        assert_eq!(
            t.run(&["LPOS", "l", "c", "RANK", "0"]),
            err("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use \
                 negative to start from the end of the list")
        );
        assert_eq!(
            t.run(&["LPOS", "l", "c", "RANK", "-9223372036854775808"]),
            err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
        );
        assert_eq!(t.run(&["LPOS", "l", "c", "RANK", "x"]), err("ERR value is not an integer or out of range"));
        assert_eq!(t.run(&["LPOS", "l", "c", "COUNT", "-1"]), err("ERR COUNT can't be negative"));
        assert_eq!(t.run(&["LPOS", "l", "c", "COUNT", "x"]), err("ERR COUNT can't be negative"));
        assert_eq!(t.run(&["LPOS", "l", "c", "MAXLEN", "-1"]), err("ERR MAXLEN can't be negative"));
        assert_eq!(t.run(&["LPOS", "l", "c", "COUNT"]), err("ERR syntax error"));
        assert_eq!(t.run(&["LPOS", "l", "c", "FOO", "1"]), err("ERR syntax error"));
        assert_eq!(t.run(&["LPOS", "nope", "c", "FOO", "1"]), err("ERR syntax error"));
    }

    #[test]
    fn lmove_and_rpoplpush() {
        let mut t = T::new();
        t.run(&["RPUSH", "src", "a", "b", "c"]);
        assert_eq!(t.run(&["LMOVE", "src", "dst", "LEFT", "RIGHT"]), bulk("a"));
        assert_eq!(t.run(&["LMOVE", "src", "dst", "right", "left"]), bulk("c"));
        assert_eq!(t.run(&["LRANGE", "dst", "0", "-1"]), bulks(&["c", "a"]));
        assert_eq!(t.run(&["RPOPLPUSH", "dst", "src"]), bulk("a"));
        assert_eq!(t.run(&["LRANGE", "src", "0", "-1"]), bulks(&["a", "b"]));
        // Same source and destination rotates.
        t.run(&["RPUSH", "r", "1", "2", "3"]);
        assert_eq!(t.run(&["RPOPLPUSH", "r", "r"]), bulk("3"));
        assert_eq!(t.run(&["LMOVE", "r", "r", "LEFT", "RIGHT"]), bulk("3"));
        assert_eq!(t.run(&["LRANGE", "r", "0", "-1"]), bulks(&["1", "2", "3"]));
        assert_eq!(t.run(&["LMOVE", "r", "r", "LEFT", "LEFT"]), bulk("1"));
        assert_eq!(t.run(&["LRANGE", "r", "0", "-1"]), bulks(&["1", "2", "3"]));
        t.run(&["RPUSH", "one", "x"]);
        assert_eq!(t.run(&["LMOVE", "one", "one", "LEFT", "RIGHT"]), bulk("x"));
        assert_eq!(t.run(&["LRANGE", "one", "0", "-1"]), bulks(&["x"]));
        assert_eq!(t.run(&["LMOVE", "nope", "dst", "LEFT", "RIGHT"]), Reply::Nil);
        assert_eq!(t.run(&["RPOPLPUSH", "nope", "dst"]), Reply::Nil);
        assert_eq!(t.run(&["LMOVE", "src", "dst", "UP", "RIGHT"]), err("ERR syntax error"));
        assert_eq!(t.run(&["LMOVE", "src", "dst", "LEFT", "DOWN"]), err("ERR syntax error"));
        // Events: push on the destination, pop on the source, del when emptied.
        t.run(&["LTRIM", "src", "1", "0"]);
        t.run(&["LTRIM", "dst", "1", "0"]);
        t.run(&["RPUSH", "src", "only"]);
        let (r, ev) = run_ev(&mut t, &["LMOVE", "src", "dst", "RIGHT", "LEFT"]);
        assert_eq!(r, bulk("only"));
        assert_eq!(ev, ["lpush:dst", "rpop:src", "del:src"]);
        assert!(!exists(&t, "src"));
        let (_, ev) = run_ev(&mut t, &["RPOPLPUSH", "dst", "dst"]);
        assert_eq!(ev, ["lpush:dst", "rpop:dst"]);
        t.check_replay();
    }

    #[test]
    fn pop_events_and_log() {
        let mut t = T::new();
        let (r, ev) = run_ev(&mut t, &["RPUSH", "l", "a", "b", "c"]);
        assert_eq!((r, ev), (Reply::Int(3), vec!["rpush:l".to_string()]));
        let (_, ev) = run_ev(&mut t, &["LPUSH", "l", "z"]);
        assert_eq!(ev, ["lpush:l"]);
        let (_, ev) = run_ev(&mut t, &["LPOP", "l"]);
        assert_eq!(ev, ["lpop:l"]);
        assert_eq!(t.last_ops(), ops(&[&["LPOP", "l"]]));
        let (_, ev) = run_ev(&mut t, &["RPOP", "l", "5"]);
        assert_eq!(ev, ["rpop:l", "del:l"]);
        assert_eq!(t.last_ops(), ops(&[&["RPOP", "l", "5"]]));
        let before = t.log.len();
        let (_, ev) = run_ev(&mut t, &["LPUSHX", "l", "a"]);
        assert!(ev.is_empty());
        assert_eq!(t.log.len(), before);
        t.check_replay();
    }

    #[test]
    fn blocking_pops_without_waiting() {
        let mut t = T::new();
        assert_eq!(t.run(&["BLPOP", "a", "b", "0"]), Reply::NilArray);
        assert_eq!(t.run(&["BRPOP", "a", "1.5"]), Reply::NilArray);
        assert!(t.log.is_empty(), "nothing popped, nothing logged");
        t.run(&["RPUSH", "b", "1", "2"]);
        t.run(&["RPUSH", "c", "x"]);
        let (r, ev) = run_ev(&mut t, &["BLPOP", "a", "b", "c", "0"]);
        assert_eq!(r, bulks(&["b", "1"]));
        assert_eq!(ev, ["lpop:b"]);
        assert_eq!(t.last_ops(), ops(&[&["LPOP", "b"]]));
        let (r, ev) = run_ev(&mut t, &["BRPOP", "c", "b", "0.1"]);
        assert_eq!(r, bulks(&["c", "x"]));
        assert_eq!(ev, ["rpop:c", "del:c"]);
        assert_eq!(t.last_ops(), ops(&[&["RPOP", "c"]]));
        // BLMOVE / BRPOPLPUSH.
        assert_eq!(t.run(&["BLMOVE", "nope", "d", "LEFT", "RIGHT", "0"]), Reply::Nil);
        assert_eq!(t.run(&["BRPOPLPUSH", "nope", "d", "0"]), Reply::Nil);
        let (r, ev) = run_ev(&mut t, &["BLMOVE", "b", "d", "left", "RIGHT", "0"]);
        assert_eq!(r, bulk("2"));
        assert_eq!(ev, ["rpush:d", "lpop:b", "del:b"]);
        assert_eq!(t.last_ops(), ops(&[&["LMOVE", "b", "d", "left", "RIGHT"]]));
        let (r, _) = run_ev(&mut t, &["BRPOPLPUSH", "d", "e", "0"]);
        assert_eq!(r, bulk("2"));
        assert_eq!(t.last_ops(), ops(&[&["RPOPLPUSH", "d", "e"]]));
        assert_eq!(t.run(&["LRANGE", "e", "0", "-1"]), bulks(&["2"]));
        assert_eq!(t.run(&["BLMOVE", "e", "d", "UP", "RIGHT", "0"]), err("ERR syntax error"));
        // Timeout validation comes before anything else.
        let not_float = "ERR timeout is not a float or out of range";
        for cmd in [
            &["BLPOP", "e", "x"][..],
            &["BRPOP", "e", ""],
            &["BLMOVE", "e", "d", "LEFT", "LEFT", "1s"],
            &["BRPOPLPUSH", "e", "d", "nan"],
        ] {
            assert_eq!(t.run(cmd), err(not_float), "{cmd:?}");
        }
        assert_eq!(t.run(&["BLPOP", "e", "-1"]), err("ERR timeout is negative"));
        assert_eq!(t.run(&["BRPOPLPUSH", "e", "d", "-0.5"]), err("ERR timeout is negative"));
        assert_eq!(t.run(&["BLPOP", "e", "1e300"]), err("ERR timeout is out of range"));
        assert_eq!(t.run(&["BLPOP", "e", "inf"]), err("ERR timeout is out of range"));
        assert_eq!(t.run(&["BLPOP", "e", "9223372036854775"]), err("ERR timeout is out of range"));
        assert_eq!(t.run(&["LRANGE", "e", "0", "-1"]), bulks(&["2"]));
        assert_eq!(t.run(&["BLPOP", "e"]), err("ERR wrong number of arguments for 'blpop' command"));
        // Inside MULTI the non-blocking answer is the only one.
        t.run(&["MULTI"]);
        t.run(&["BLPOP", "e", "0"]);
        t.run(&["BLPOP", "e", "0"]);
        assert_eq!(t.run(&["EXEC"]), Reply::Array(vec![bulks(&["e", "2"]), Reply::NilArray]));
        t.check_replay();
    }

    #[test]
    fn timeouts() {
        let now = 1_000_000;
        assert_eq!(parse_timeout(now, b"0"), Ok(0));
        assert_eq!(parse_timeout(now, b"1"), Ok(now + 1000));
        assert_eq!(parse_timeout(now, b"0.0001"), Ok(now + 1));
        assert_eq!(parse_timeout(now, b"-0.0001"), Ok(0));
        assert_eq!(parse_timeout(now, b"2.5"), Ok(now + 2500));
    }

    #[test]
    fn expired_lists_are_gone() {
        let mut t = T::new();
        t.run(&["RPUSH", "l", "a", "b"]);
        t.run(&["PEXPIRE", "l", "100"]);
        t.clock.advance(200);
        assert_eq!(t.run(&["LPUSHX", "l", "x"]), Reply::Int(0));
        assert_eq!(t.run(&["BLPOP", "l", "0"]), Reply::NilArray);
        assert_eq!(t.run(&["RPUSH", "l", "c"]), Reply::Int(1));
        assert_eq!(t.run(&["LRANGE", "l", "0", "-1"]), bulks(&["c"]));
        t.check_replay();
    }
}
