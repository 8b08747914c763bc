//! Set commands.
//!
//! Replies follow Redis 7.0: SMEMBERS, SINTER, SUNION, SDIFF and SPOP with a
//! count answer a RESP3 set (`~`, an array in RESP2); SRANDMEMBER with a
//! count answers an array, since a negative count may repeat members.
//!
//! SPOP is the one non-deterministic writer here: it is logged as the
//! `SREM` of the members it chose, or as `DEL` when it emptied the set
//! (DESIGN.md invariant 2). The *STORE commands are logged as themselves:
//! replaying them on the same state computes the same result.

use smallvec::SmallVec;

use super::flags::{DENYOOM, FAST, MOVABLE_KEYS, RANDOM, READONLY, WRITE};
use super::{cmd, cmd_keys, CommandSpec, LockSet};
use crate::cx::Cx;
use crate::keyspace::{ObjRef, Value};
use crate::notify;
use crate::reply::{errors, Reply};
use crate::types::Set;
use crate::util::parse_scan_cursor as parse_cursor;
use crate::util::{eq_ic, glob_match, int_arg, parse_i64};

pub(crate) const COMMANDS: &[CommandSpec] = &[
    cmd("sadd", -3, WRITE | DENYOOM | FAST, (1, 1, 1), "set", sadd),
    cmd("srem", -3, WRITE | FAST, (1, 1, 1), "set", srem),
    cmd("smove", 4, WRITE | FAST, (1, 2, 1), "set", smove),
    cmd("sismember", 3, READONLY | FAST, (1, 1, 1), "set", sismember),
    cmd("smismember", -3, READONLY | FAST, (1, 1, 1), "set", smismember),
    cmd("scard", 2, READONLY | FAST, (1, 1, 1), "set", scard),
    cmd("spop", -2, WRITE | RANDOM | FAST, (1, 1, 1), "set", spop),
    cmd("srandmember", -2, READONLY | RANDOM, (1, 1, 1), "set", srandmember),
    cmd("smembers", 2, READONLY, (1, 1, 1), "set", smembers),
    cmd("sinter", -2, READONLY, (1, -1, 1), "set", sinter),
    cmd_keys("sintercard", -3, READONLY | MOVABLE_KEYS, (0, 0, 0), "set", sintercard_keys, sintercard),
    cmd("sinterstore", -3, WRITE | DENYOOM, (1, -1, 1), "set", sinterstore),
    cmd("sunion", -2, READONLY, (1, -1, 1), "set", sunion),
    cmd("sunionstore", -3, WRITE | DENYOOM, (1, -1, 1), "set", sunionstore),
    cmd("sdiff", -2, READONLY, (1, -1, 1), "set", sdiff),
    cmd("sdiffstore", -3, WRITE | DENYOOM, (1, -1, 1), "set", sdiffstore),
    cmd("sscan", -3, READONLY | RANDOM, (1, 1, 1), "set", sscan),
];

/// The most members SRANDMEMBER with a negative count returns in one reply.
/// Redis streams such a reply until the client's output buffer limit closes
/// the connection; FastCache builds replies in memory, so it refuses counts
/// that could not be answered without exhausting it.
pub(crate) const MAX_REPEATED_SAMPLE: u64 = 1 << 24;

/// A RESP3 set reply of bulk strings.
fn set_reply<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Reply {
    Reply::Set(items.into_iter().map(Reply::bulk).collect())
}

fn empty_set() -> Reply {
    Reply::Set(Vec::new())
}

/// The set at `key` without touching access metadata or statistics, for
/// write commands (Redis' lookupKeyWrite) and for second passes over keys
/// already looked up. `Err` is WRONGTYPE.
fn peek_set<'c>(cx: &'c mut Cx, key: &[u8]) -> Result<Option<&'c Set>, Reply> {
    match cx.peek(key).map(|e| e.obj()) {
        None => Ok(None),
        Some(ObjRef::Set(s)) => Ok(Some(s)),
        Some(_) => Err(errors::WRONGTYPE),
    }
}

fn sadd(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let added = match cx.set_mut(a[1], true, |s| a[2..].iter().filter(|m| s.insert(m)).count()) {
        Ok(n) => n.unwrap_or(0),
        Err(e) => return e,
    };
    if added > 0 {
        cx.notify(notify::SET, "sadd", a[1]);
    } else {
        cx.propagate_nothing();
    }
    Reply::Int(added as i64)
}

/// Removes `members` from the set at `key` and emits Redis' events.
/// Returns how many were removed; `Err` is WRONGTYPE.
fn remove_members(cx: &mut Cx, key: &[u8], members: &[&[u8]]) -> Result<usize, Reply> {
    let r = cx.set_mut(key, false, |s| {
        let n = members.iter().filter(|m| s.remove(m)).count();
        (n, s.is_empty())
    })?;
    let Some((removed, emptied)) = r else {
        return Ok(0);
    };
    if removed == 0 {
        cx.propagate_nothing();
        return Ok(0);
    }
    cx.notify_removed(notify::SET, "srem", key, emptied);
    Ok(removed)
}

fn srem(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    match remove_members(cx, a[1], &a[2..]) {
        Ok(n) => Reply::Int(n as i64),
        Err(e) => e,
    }
}

fn smove(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let (src, dst, member) = (a[1], a[2], a[3]);
    let src_has = match peek_set(cx, src) {
        Ok(None) => return Reply::Int(0),
        Ok(Some(s)) => s.contains(member),
        Err(e) => return e,
    };
    if let Err(e) = peek_set(cx, dst) {
        return e;
    }
    if src == dst {
        return Reply::Int(i64::from(src_has));
    }
    if !src_has {
        return Reply::Int(0);
    }
    if let Err(e) = remove_members(cx, src, &[member]) {
        return e;
    }
    match cx.set_mut(dst, true, |s| s.insert(member)) {
        Ok(Some(true)) => cx.notify(notify::SET, "sadd", dst),
        Ok(_) => {}
        Err(e) => return e,
    }
    Reply::Int(1)
}

fn sismember(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    match cx.get_set(a[1]) {
        Ok(s) => Reply::Int(i64::from(s.is_some_and(|s| s.contains(a[2])))),
        Err(e) => e,
    }
}

fn smismember(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    match cx.get_set(a[1]) {
        Ok(s) => Reply::Array(a[2..].iter().map(|m| Reply::Int(i64::from(s.is_some_and(|s| s.contains(m))))).collect()),
        Err(e) => e,
    }
}

fn scard(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    match cx.get_set(a[1]) {
        Ok(s) => Reply::Int(s.map_or(0, Set::len) as i64),
        Err(e) => e,
    }
}

fn smembers(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    match cx.get_set(a[1]) {
        Ok(Some(s)) => set_reply(s.ordered()),
        Ok(None) => empty_set(),
        Err(e) => e,
    }
}

fn spop(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let key = a[1];
    let count = match a.len() {
        2 => None,
        3 => match parse_i64(a[2]) {
            Some(n) if n >= 0 => Some(n as u64),
            _ => return errors::MUST_BE_POSITIVE,
        },
        _ => return errors::SYNTAX,
    };
    let size = match peek_set(cx, key) {
        Ok(Some(s)) => s.len() as u64,
        Ok(None) => return if count.is_some() { empty_set() } else { Reply::Nil },
        Err(e) => return e,
    };
    let mut rng = cx.rng.fork();
    let Some(count) = count else {
        let r = cx.set_mut(key, false, |s| (s.pop_random(&mut rng), s.is_empty()));
        let (member, emptied) = match r {
            Ok(Some((Some(m), emptied))) => (m, emptied),
            Ok(_) => return Reply::Nil,
            Err(e) => return e,
        };
        cx.propagate(vec![b"SREM".to_vec(), key.to_vec(), member.to_vec()]);
        cx.notify_removed(notify::SET, "spop", key, emptied);
        return Reply::Bulk(member.into_vec());
    };
    if count == 0 {
        return empty_set();
    }
    cx.notify(notify::SET, "spop", key);
    if count >= size {
        let db = cx.db;
        let reply = match cx.take_in(db, key) {
            Some((Value::Set(s), _)) => set_reply(s.ordered()),
            _ => empty_set(),
        };
        cx.propagate(vec![b"DEL".to_vec(), key.to_vec()]);
        cx.notify(notify::GENERIC, "del", key);
        return reply;
    }
    let popped = match cx
        .set_mut(key, false, |s| (0..count).filter_map(|_| s.pop_random(&mut rng)).collect::<Vec<Box<[u8]>>>())
    {
        Ok(p) => p.unwrap_or_default(),
        Err(e) => return e,
    };
    let mut argv = Vec::with_capacity(popped.len() + 2);
    argv.push(b"SREM".to_vec());
    argv.push(key.to_vec());
    argv.extend(popped.iter().map(|m| m.to_vec()));
    cx.propagate(argv);
    Reply::Set(popped.into_iter().map(|m| Reply::Bulk(m.into_vec())).collect())
}

fn srandmember(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let count = match a.len() {
        2 => None,
        3 => match int_arg(a[2]) {
            Ok(i64::MIN) => {
                return Reply::err(
                    "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
                )
            }
            Ok(n) => Some(n),
            Err(e) => return e,
        },
        _ => return errors::SYNTAX,
    };
    let mut rng = cx.rng.fork();
    let set = match cx.get_set(a[1]) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let Some(count) = count else {
        return set.and_then(|s| s.random(&mut rng)).map_or(Reply::Nil, Reply::bulk);
    };
    let Some(set) = set else {
        return Reply::Array(Vec::new());
    };
    if count == 0 || set.is_empty() {
        return Reply::Array(Vec::new());
    }
    if count < 0 {
        let n = count.unsigned_abs();
        if n > MAX_REPEATED_SAMPLE {
            return Reply::error(format!(
                "ERR count is out of range, at most {MAX_REPEATED_SAMPLE} members can be returned at once"
            ));
        }
        return Reply::Array((0..n).filter_map(|_| set.random(&mut rng)).map(Reply::bulk).collect());
    }
    let count = usize::try_from(count).unwrap_or(usize::MAX);
    Reply::Array(set.sample_distinct(&mut rng, count).into_iter().map(Reply::bulk).collect())
}

// ----- intersections, unions, differences ---------------------------------

/// Type-checks every key (WRONGTYPE wins over a missing key, as in Redis
/// 7.0) and returns each set's size, `None` for a missing key.
fn set_sizes(cx: &mut Cx, keys: &[&[u8]]) -> Result<Vec<Option<usize>>, Reply> {
    keys.iter().map(|k| cx.get_set(k).map(|s| s.map(Set::len))).collect()
}

/// The members of the set at `key` in Redis' iteration order, copied out.
fn members_of(cx: &mut Cx, key: &[u8]) -> Vec<Vec<u8>> {
    match peek_set(cx, key) {
        Ok(Some(s)) => s.ordered().into_iter().map(<[u8]>::to_vec).collect(),
        _ => Vec::new(),
    }
}

/// Keeps the members of `base` that are (`keep_if_member`) or are not in
/// the set at `key`.
fn filter_by(cx: &mut Cx, base: &mut Vec<Vec<u8>>, key: &[u8], keep_if_member: bool) {
    if let Ok(Some(s)) = peek_set(cx, key) {
        base.retain(|m| s.contains(m) == keep_if_member);
    } else if keep_if_member {
        base.clear();
    }
}

/// The intersection of the sets at `keys`, in the iteration order of the
/// smallest one, stopping after `limit` members (0 = no limit); `Err` is
/// WRONGTYPE.
fn intersect(cx: &mut Cx, keys: &[&[u8]], limit: usize) -> Result<Vec<Vec<u8>>, Reply> {
    let sizes = set_sizes(cx, keys)?;
    if sizes.iter().any(Option::is_none) {
        return Ok(Vec::new());
    }
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_key(|&i| sizes[i]);
    let mut result = members_of(cx, keys[order[0]]);
    for &i in &order[1..] {
        if result.is_empty() {
            break;
        }
        if keys[i] != keys[order[0]] {
            filter_by(cx, &mut result, keys[i], true);
        }
    }
    if limit > 0 {
        result.truncate(limit);
    }
    Ok(result)
}

/// The union of the sets at `keys`; `Err` is WRONGTYPE.
fn union(cx: &mut Cx, keys: &[&[u8]]) -> Result<Set, Reply> {
    set_sizes(cx, keys)?;
    let mut out = Set::new();
    for k in keys {
        if let Ok(Some(s)) = peek_set(cx, k) {
            for m in s.ordered() {
                out.insert(m);
            }
        }
    }
    Ok(out)
}

/// The members of the first set that are in none of the others; `Err` is
/// WRONGTYPE.
fn difference(cx: &mut Cx, keys: &[&[u8]]) -> Result<Set, Reply> {
    let sizes = set_sizes(cx, keys)?;
    let mut out = Set::new();
    if sizes[0].is_none() || keys[1..].contains(&keys[0]) {
        return Ok(out);
    }
    let mut rest: Vec<usize> = (1..keys.len()).filter(|&i| sizes[i].is_some()).collect();
    // Larger sets first: the members they remove are found sooner.
    rest.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
    let mut result = members_of(cx, keys[0]);
    for i in rest {
        if result.is_empty() {
            break;
        }
        filter_by(cx, &mut result, keys[i], false);
    }
    for m in &result {
        out.insert(m);
    }
    Ok(out)
}

/// Stores `result` at `dst` (replacing any value of any type, without TTL)
/// or deletes `dst` when the result is empty; replies with the cardinality.
fn store(cx: &mut Cx, dst: &[u8], result: Set, event: &'static str) -> Reply {
    let n = result.len();
    if n > 0 {
        cx.set_value(dst, Value::Set(result), 0);
        cx.notify(notify::SET, event, dst);
    } else if cx.delete(dst) {
        cx.notify(notify::GENERIC, "del", dst);
    }
    Reply::Int(n as i64)
}

fn sinter(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    match intersect(cx, &a[1..], 0) {
        Ok(v) => set_reply(v.iter().map(Vec::as_slice)),
        Err(e) => e,
    }
}

fn sinterstore(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    match intersect(cx, &a[2..], 0) {
        Ok(v) => {
            let mut s = Set::new();
            for m in &v {
                s.insert(m);
            }
            store(cx, a[1], s, "sinterstore")
        }
        Err(e) => e,
    }
}

/// SINTERCARD's `numkeys`, with Redis' error strings.
fn sintercard_numkeys(a: &[&[u8]]) -> Result<usize, Reply> {
    let n = match parse_i64(a[1]) {
        Some(n) if n >= 1 => n as u64,
        _ => return Err(Reply::err("ERR numkeys should be greater than 0")),
    };
    if n > (a.len() - 2) as u64 {
        return Err(Reply::err("ERR Number of keys can't be greater than number of args"));
    }
    Ok(n as usize)
}

fn sintercard_keys(a: &[&[u8]]) -> LockSet {
    let n = sintercard_numkeys(a).unwrap_or(0);
    LockSet::Args((2..2 + n).collect::<SmallVec<[usize; 4]>>())
}

fn sintercard(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let n = match sintercard_numkeys(a) {
        Ok(n) => n,
        Err(e) => return e,
    };
    let mut limit = 0usize;
    let mut j = 2 + n;
    while j < a.len() {
        if eq_ic(a[j], "LIMIT") && j + 1 < a.len() {
            match parse_i64(a[j + 1]) {
                Some(l) if l >= 0 => limit = usize::try_from(l).unwrap_or(usize::MAX),
                _ => return Reply::err("ERR LIMIT can't be negative"),
            }
            j += 2;
        } else {
            return errors::SYNTAX;
        }
    }
    match intersect(cx, &a[2..2 + n], limit) {
        Ok(v) => Reply::Int(v.len() as i64),
        Err(e) => e,
    }
}

fn sunion(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    match union(cx, &a[1..]) {
        Ok(s) => set_reply(s.ordered()),
        Err(e) => e,
    }
}

fn sunionstore(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    match union(cx, &a[2..]) {
        Ok(s) => store(cx, a[1], s, "sunionstore"),
        Err(e) => e,
    }
}

fn sdiff(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    match difference(cx, &a[1..]) {
        Ok(s) => set_reply(s.ordered()),
        Err(e) => e,
    }
}

fn sdiffstore(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    match difference(cx, &a[2..]) {
        Ok(s) => store(cx, a[1], s, "sdiffstore"),
        Err(e) => e,
    }
}

// ----- SSCAN ---------------------------------------------------------------

/// SCAN-family options after the cursor: `(pattern, count)`, with Redis'
/// errors. `None` pattern means everything matches.
pub(crate) fn scan_options<'a>(args: &[&'a [u8]]) -> Result<(Option<&'a [u8]>, usize), Reply> {
    let mut pattern = None;
    let mut count = 10usize;
    let mut i = 0;
    while i < args.len() {
        if eq_ic(args[i], "COUNT") && i + 1 < args.len() {
            let n = int_arg(args[i + 1])?;
            if n < 1 {
                return Err(errors::SYNTAX);
            }
            count = usize::try_from(n).unwrap_or(usize::MAX);
        } else if eq_ic(args[i], "MATCH") && i + 1 < args.len() {
            // "*" matches everything: the same as no pattern.
            pattern = (args[i + 1] != b"*").then_some(args[i + 1]);
        } else {
            return Err(errors::SYNTAX);
        }
        i += 2;
    }
    Ok((pattern, count))
}

fn sscan(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let Some(cursor) = parse_cursor(a[2]) else {
        return Reply::err("ERR invalid cursor");
    };
    let set = match cx.get_set(a[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return Reply::Array(vec![Reply::bulk(b"0"), Reply::Array(Vec::new())]),
        Err(e) => return e,
    };
    let (pattern, count) = match scan_options(&a[3..]) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let mut found: Vec<Vec<u8>> = Vec::new();
    let next = if set.is_intset() {
        // Redis returns a compactly encoded set whole, whatever the cursor.
        found = set.ordered().into_iter().map(<[u8]>::to_vec).collect();
        0
    } else {
        let mut cursor = cursor;
        let mut budget = count.saturating_mul(10);
        loop {
            cursor = set.scan(cursor, |m| found.push(m.to_vec()));
            budget = budget.saturating_sub(1);
            if cursor == 0 || budget == 0 || found.len() >= count {
                break cursor;
            }
        }
    };
    if let Some(p) = pattern {
        found.retain(|m| glob_match(p, m, false));
    }
    Reply::Array(vec![
        Reply::Bulk(next.to_string().into_bytes()),
        Reply::Array(found.into_iter().map(Reply::Bulk).collect()),
    ])
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use crate::notify;
    use crate::record::Record;
    use crate::reply::Reply;
    use crate::testutil::{bulk, bulks, err, T};

    const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

    /// The members of a set (or array) reply, sorted.
    fn members(r: &Reply) -> BTreeSet<String> {
        match r {
            Reply::Set(v) | Reply::Array(v) => v
                .iter()
                .map(|x| match x {
                    Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                    other => panic!("not a bulk: {other:?}"),
                })
                .collect(),
            other => panic!("not a collection: {other:?}"),
        }
    }

    fn set_of(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn sset(items: &[&str]) -> Reply {
        Reply::Set(items.iter().map(|s| bulk(s)).collect())
    }

    /// Runs a command and returns its reply and keyspace events.
    fn run_ev(t: &mut T, args: &[&str]) -> (Reply, Vec<(&'static str, String)>) {
        let argv: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let log = &mut t.log;
        let mut journal = |r: &Record| {
            log.push(r.clone());
            Ok(())
        };
        let out = t.engine.execute_with(&mut t.session, &argv, &mut journal);
        (out.reply, out.events.iter().map(|e| (e.event, String::from_utf8_lossy(&e.key).into_owned())).collect())
    }

    #[test]
    fn add_remove_membership() {
        let mut t = T::new();
        assert_eq!(t.run(&["SADD", "s", "a", "b", "a", "c"]), Reply::Int(3));
        assert_eq!(t.run(&["SADD", "s", "a"]), Reply::Int(0));
        assert_eq!(t.run(&["SCARD", "s"]), Reply::Int(3));
        assert_eq!(t.run(&["SCARD", "nope"]), Reply::Int(0));
        assert_eq!(t.run(&["SISMEMBER", "s", "a"]), Reply::Int(1));
        assert_eq!(t.run(&["SISMEMBER", "s", "z"]), Reply::Int(0));
        assert_eq!(t.run(&["SISMEMBER", "nope", "z"]), Reply::Int(0));
        assert_eq!(
            t.run(&["SMISMEMBER", "s", "a", "z", "c"]),
            Reply::Array(vec![Reply::Int(1), Reply::Int(0), Reply::Int(1)])
        );
        assert_eq!(t.run(&["SMISMEMBER", "nope", "a"]), Reply::Array(vec![Reply::Int(0)]));
        assert_eq!(members(&t.run(&["SMEMBERS", "s"])), set_of(&["a", "b", "c"]));
        assert!(matches!(t.run(&["SMEMBERS", "s"]), Reply::Set(_)), "SMEMBERS replies with a RESP3 set");
        assert_eq!(t.run(&["SMEMBERS", "nope"]), Reply::Set(vec![]));
        assert_eq!(t.run(&["SREM", "s", "a", "z"]), Reply::Int(1));
        assert_eq!(t.run(&["SREM", "s", "z"]), Reply::Int(0));
        assert_eq!(t.run(&["SREM", "nope", "z"]), Reply::Int(0));
        assert_eq!(t.run(&["SREM", "s", "b", "c"]), Reply::Int(2));
        assert_eq!(t.run(&["SCARD", "s"]), Reply::Int(0), "an emptied set is deleted");
        // Small integer sets come back in numeric order, as Redis' intsets.
        t.run(&["SADD", "n", "10", "-2", "3", "1"]);
        assert_eq!(t.run(&["SMEMBERS", "n"]), sset(&["-2", "1", "3", "10"]));
        assert_eq!(t.run(&["SADD"]), err("ERR wrong number of arguments for 'sadd' command"));
        assert_eq!(t.run(&["SADD", "s"]), err("ERR wrong number of arguments for 'sadd' command"));
        assert_eq!(t.run(&["SREM", "s"]), err("ERR wrong number of arguments for 'srem' command"));
        assert_eq!(t.run(&["SISMEMBER", "s"]), err("ERR wrong number of arguments for 'sismember' command"));
        assert_eq!(t.run(&["SCARD", "s", "x"]), err("ERR wrong number of arguments for 'scard' command"));
        t.check_replay();
    }

    #[test]
    fn wrongtype_everywhere() {
        let mut t = T::new();
        t.run(&["SET", "str", "v"]);
        t.run(&["SADD", "s", "a"]);
        for cmd in [
            &["SADD", "str", "a"][..],
            &["SREM", "str", "a"],
            &["SISMEMBER", "str", "a"],
            &["SMISMEMBER", "str", "a"],
            &["SCARD", "str"],
            &["SMEMBERS", "str"],
            &["SPOP", "str"],
            &["SPOP", "str", "2"],
            &["SRANDMEMBER", "str"],
            &["SRANDMEMBER", "str", "-2"],
            &["SMOVE", "str", "s", "a"],
            &["SMOVE", "s", "str", "a"],
            &["SINTER", "s", "str"],
            &["SINTER", "nope", "str"],
            &["SINTERCARD", "2", "nope", "str"],
            &["SINTERSTORE", "d", "s", "str"],
            &["SUNION", "s", "str"],
            &["SUNIONSTORE", "d", "str"],
            &["SDIFF", "s", "str"],
            &["SDIFF", "nope", "str"],
            &["SDIFFSTORE", "d", "s", "str"],
            &["SSCAN", "str", "0"],
        ] {
            assert_eq!(t.run(cmd), err(WRONGTYPE), "{cmd:?}");
        }
        // Nothing changed: the string and the set are intact, no d.
        assert_eq!(t.run(&["GET", "str"]), bulk("v"));
        assert_eq!(t.run(&["SMEMBERS", "s"]), sset(&["a"]));
        assert_eq!(t.run(&["SCARD", "d"]), Reply::Int(0));
        // A missing source of SMOVE answers 0 even if the destination has
        // the wrong type, as in Redis.
        assert_eq!(t.run(&["SMOVE", "nope", "str", "a"]), Reply::Int(0));
        t.check_replay();
    }

    #[test]
    fn smove_cases() {
        let mut t = T::new();
        t.engine.set_notify_flags(notify::KEYEVENT | notify::ALL);
        t.run(&["SADD", "src", "a", "b"]);
        t.run(&["SADD", "dst", "b"]);
        let (r, ev) = run_ev(&mut t, &["SMOVE", "src", "dst", "a"]);
        assert_eq!(r, Reply::Int(1));
        assert_eq!(ev, vec![("srem", "src".into()), ("sadd", "dst".into())]);
        assert_eq!(t.run(&["SMOVE", "src", "dst", "zz"]), Reply::Int(0));
        // Already in the destination: removed from the source, no sadd.
        let (r, ev) = run_ev(&mut t, &["SMOVE", "src", "dst", "b"]);
        assert_eq!(r, Reply::Int(1));
        assert_eq!(ev, vec![("srem", "src".into()), ("del", "src".into())]);
        assert_eq!(t.run(&["SCARD", "src"]), Reply::Int(0));
        assert_eq!(members(&t.run(&["SMEMBERS", "dst"])), set_of(&["a", "b"]));
        // Same source and destination: membership only.
        assert_eq!(t.run(&["SMOVE", "dst", "dst", "a"]), Reply::Int(1));
        assert_eq!(t.run(&["SMOVE", "dst", "dst", "q"]), Reply::Int(0));
        // A missing destination is created.
        assert_eq!(t.run(&["SMOVE", "dst", "new", "a"]), Reply::Int(1));
        assert_eq!(t.run(&["SMEMBERS", "new"]), sset(&["a"]));
        assert_eq!(t.run(&["SMOVE", "dst", "new"]), err("ERR wrong number of arguments for 'smove' command"));
        t.check_replay();
    }

    #[test]
    fn spop_is_logged_as_srem_or_del() {
        let mut t = T::new();
        t.engine.set_notify_flags(notify::KEYEVENT | notify::ALL);
        t.run(&["SADD", "s", "a", "b", "c", "d", "e"]);
        let (r, ev) = run_ev(&mut t, &["SPOP", "s"]);
        let Reply::Bulk(m) = r else { panic!("expected a member, got {r:?}") };
        let m = String::from_utf8(m).unwrap_or_default();
        assert_eq!(ev, vec![("spop", "s".into())]);
        assert_eq!(t.last_ops(), vec![vec!["SREM".to_string(), "s".into(), m.clone()]]);
        assert_eq!(t.run(&["SISMEMBER", "s", &m]), Reply::Int(0));
        let r = t.run(&["SPOP", "s", "2"]);
        assert!(matches!(r, Reply::Set(_)), "SPOP with a count replies with a set");
        let popped = members(&r);
        assert_eq!(popped.len(), 2);
        let ops = t.last_ops();
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0][..2], ["SREM".to_string(), "s".to_string()]);
        assert_eq!(ops[0][2..].iter().cloned().collect::<BTreeSet<_>>(), popped);
        assert_eq!(t.run(&["SCARD", "s"]), Reply::Int(2));
        // Popping everything deletes the set and is logged as DEL.
        let (r, ev) = run_ev(&mut t, &["SPOP", "s", "10"]);
        assert_eq!(members(&r).len(), 2);
        assert_eq!(ev, vec![("spop", "s".into()), ("del", "s".into())]);
        assert_eq!(t.last_ops(), vec![vec!["DEL".to_string(), "s".into()]]);
        assert_eq!(t.run(&["SCARD", "s"]), Reply::Int(0));
        // The last member popped singly deletes the key too.
        t.run(&["SADD", "one", "x"]);
        let (r, ev) = run_ev(&mut t, &["SPOP", "one"]);
        assert_eq!(r, bulk("x"));
        assert_eq!(ev, vec![("spop", "one".into()), ("del", "one".into())]);
        assert_eq!(t.run(&["SPOP", "nope"]), Reply::Nil);
        assert_eq!(t.run(&["SPOP", "nope", "3"]), Reply::Set(vec![]));
        t.run(&["SADD", "s", "a"]);
        let n = t.log.len();
        assert_eq!(t.run(&["SPOP", "s", "0"]), Reply::Set(vec![]));
        assert_eq!(t.log.len(), n, "SPOP 0 writes nothing");
        assert_eq!(t.run(&["SPOP", "s", "-1"]), err("ERR value is out of range, must be positive"));
        assert_eq!(t.run(&["SPOP", "s", "x"]), err("ERR value is out of range, must be positive"));
        assert_eq!(t.run(&["SPOP", "s", "1", "2"]), err("ERR syntax error"));
        // Most of a large set, to exercise the bulk path.
        for i in 0..300 {
            t.run(&["SADD", "big", &i.to_string(), &format!("m{i}")]);
        }
        assert_eq!(members(&t.run(&["SPOP", "big", "550"])).len(), 550);
        assert_eq!(t.run(&["SCARD", "big"]), Reply::Int(50));
        t.check_replay();
    }

    #[test]
    fn srandmember_counts() {
        let mut t = T::new();
        t.run(&["SADD", "s", "a", "b", "c"]);
        let n = t.log.len();
        let one = t.run(&["SRANDMEMBER", "s"]);
        assert!(matches!(&one, Reply::Bulk(b) if [&b"a"[..], b"b", b"c"].contains(&b.as_slice())));
        let r = t.run(&["SRANDMEMBER", "s", "2"]);
        assert!(matches!(r, Reply::Array(ref v) if v.len() == 2));
        assert_eq!(members(&r).len(), 2, "a positive count gives distinct members");
        let r = t.run(&["SRANDMEMBER", "s", "10"]);
        assert_eq!(members(&r), set_of(&["a", "b", "c"]));
        let r = t.run(&["SRANDMEMBER", "s", "-10"]);
        assert!(matches!(r, Reply::Array(ref v) if v.len() == 10), "a negative count may repeat");
        assert!(members(&r).is_subset(&set_of(&["a", "b", "c"])));
        assert_eq!(t.run(&["SRANDMEMBER", "s", "0"]), Reply::Array(vec![]));
        assert_eq!(t.run(&["SRANDMEMBER", "nope"]), Reply::Nil);
        assert_eq!(t.run(&["SRANDMEMBER", "nope", "5"]), Reply::Array(vec![]));
        assert_eq!(t.run(&["SRANDMEMBER", "nope", "-5"]), Reply::Array(vec![]));
        assert_eq!(t.log.len(), n, "SRANDMEMBER writes nothing");
        assert_eq!(t.run(&["SRANDMEMBER", "s", "x"]), err("ERR value is not an integer or out of range"));
        assert_eq!(
            t.run(&["SRANDMEMBER", "s", "-9223372036854775808"]),
            err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
        );
        assert!(t.run(&["SRANDMEMBER", "s", "-9223372036854775807"]).is_error(), "refused, not built");
        assert_eq!(t.run(&["SRANDMEMBER", "s", "1", "2"]), err("ERR syntax error"));
        // Both sampling strategies on a larger set.
        for i in 0..200 {
            t.run(&["SADD", "big", &format!("m{i}")]);
        }
        for count in ["5", "150"] {
            let r = t.run(&["SRANDMEMBER", "big", count]);
            assert_eq!(members(&r).len(), count.parse::<usize>().unwrap_or(0));
        }
        t.check_replay();
    }

    #[test]
    fn algebra() {
        let mut t = T::new();
        t.run(&["SADD", "a", "1", "2", "3", "x"]);
        t.run(&["SADD", "b", "2", "3", "4", "x"]);
        t.run(&["SADD", "c", "3", "x", "y"]);
        assert_eq!(members(&t.run(&["SINTER", "a", "b", "c"])), set_of(&["3", "x"]));
        assert!(matches!(t.run(&["SINTER", "a", "b"]), Reply::Set(_)));
        assert_eq!(members(&t.run(&["SINTER", "a"])), set_of(&["1", "2", "3", "x"]));
        assert_eq!(members(&t.run(&["SINTER", "a", "a"])), set_of(&["1", "2", "3", "x"]));
        assert_eq!(t.run(&["SINTER", "a", "nope"]), Reply::Set(vec![]));
        assert_eq!(members(&t.run(&["SUNION", "a", "b", "nope"])), set_of(&["1", "2", "3", "4", "x"]));
        assert!(matches!(t.run(&["SUNION", "a"]), Reply::Set(_)));
        assert_eq!(t.run(&["SUNION", "nope"]), Reply::Set(vec![]));
        assert_eq!(members(&t.run(&["SDIFF", "a", "b"])), set_of(&["1"]));
        assert_eq!(members(&t.run(&["SDIFF", "a", "c", "nope"])), set_of(&["1", "2"]));
        assert_eq!(t.run(&["SDIFF", "a", "b", "a"]), Reply::Set(vec![]));
        assert_eq!(t.run(&["SDIFF", "nope", "a"]), Reply::Set(vec![]));
        assert!(matches!(t.run(&["SDIFF", "a"]), Reply::Set(_)));
        // SINTERCARD.
        assert_eq!(t.run(&["SINTERCARD", "2", "a", "b"]), Reply::Int(3));
        assert_eq!(t.run(&["SINTERCARD", "3", "a", "b", "c"]), Reply::Int(2));
        assert_eq!(t.run(&["SINTERCARD", "2", "a", "b", "LIMIT", "2"]), Reply::Int(2));
        assert_eq!(t.run(&["SINTERCARD", "2", "a", "b", "limit", "0"]), Reply::Int(3));
        assert_eq!(t.run(&["SINTERCARD", "2", "a", "b", "LIMIT", "10"]), Reply::Int(3));
        assert_eq!(t.run(&["SINTERCARD", "2", "a", "nope"]), Reply::Int(0));
        assert_eq!(t.run(&["SINTERCARD", "1", "a"]), Reply::Int(4));
        assert_eq!(t.run(&["SINTERCARD", "0", "a"]), err("ERR numkeys should be greater than 0"));
        assert_eq!(t.run(&["SINTERCARD", "-1", "a"]), err("ERR numkeys should be greater than 0"));
        assert_eq!(t.run(&["SINTERCARD", "x", "a"]), err("ERR numkeys should be greater than 0"));
        assert_eq!(
            t.run(&["SINTERCARD", "3", "a", "b"]),
            err("ERR Number of keys can't be greater than number of args")
        );
        assert_eq!(t.run(&["SINTERCARD", "2", "a", "b", "LIMIT", "-1"]), err("ERR LIMIT can't be negative"));
        assert_eq!(t.run(&["SINTERCARD", "2", "a", "b", "LIMIT", "x"]), err("ERR LIMIT can't be negative"));
        assert_eq!(t.run(&["SINTERCARD", "2", "a", "b", "LIMIT"]), err("ERR syntax error"));
        assert_eq!(t.run(&["SINTERCARD", "1", "a", "b"]), err("ERR syntax error"));
        assert_eq!(t.run(&["SINTERCARD", "1"]), err("ERR wrong number of arguments for 'sintercard' command"));
        t.check_replay();
    }

    #[test]
    fn store_variants() {
        let mut t = T::new();
        t.engine.set_notify_flags(notify::KEYEVENT | notify::ALL);
        t.run(&["SADD", "a", "1", "2", "3"]);
        t.run(&["SADD", "b", "2", "3", "4"]);
        let (r, ev) = run_ev(&mut t, &["SINTERSTORE", "d", "a", "b"]);
        assert_eq!(r, Reply::Int(2));
        assert_eq!(ev, vec![("sinterstore", "d".into())]);
        assert_eq!(t.run(&["SMEMBERS", "d"]), sset(&["2", "3"]));
        // The destination may hold any type, and loses its TTL.
        t.run(&["SET", "str", "v", "EX", "100"]);
        let (r, ev) = run_ev(&mut t, &["SUNIONSTORE", "str", "a", "b"]);
        assert_eq!(r, Reply::Int(4));
        assert_eq!(ev, vec![("sunionstore", "str".into())]);
        assert_eq!(t.run(&["SMEMBERS", "str"]), sset(&["1", "2", "3", "4"]));
        assert_eq!(t.run(&["PTTL", "str"]), Reply::Int(-1));
        let (r, ev) = run_ev(&mut t, &["SDIFFSTORE", "d2", "a", "b"]);
        assert_eq!(r, Reply::Int(1));
        assert_eq!(ev, vec![("sdiffstore", "d2".into())]);
        assert_eq!(t.run(&["SMEMBERS", "d2"]), sset(&["1"]));
        // A source may be the destination.
        assert_eq!(t.run(&["SUNIONSTORE", "a", "a", "b"]), Reply::Int(4));
        assert_eq!(t.run(&["SMEMBERS", "a"]), sset(&["1", "2", "3", "4"]));
        // An empty result deletes the destination.
        let (r, ev) = run_ev(&mut t, &["SINTERSTORE", "d", "a", "nope"]);
        assert_eq!(r, Reply::Int(0));
        assert_eq!(ev, vec![("del", "d".into())]);
        assert_eq!(t.run(&["SCARD", "d"]), Reply::Int(0));
        let (r, ev) = run_ev(&mut t, &["SDIFFSTORE", "d2", "b", "a"]);
        assert_eq!(r, Reply::Int(0));
        assert_eq!(ev, vec![("del", "d2".into())]);
        assert_eq!(t.run(&["SUNIONSTORE", "str", "nope"]), Reply::Int(0));
        assert_eq!(t.run(&["GET", "str"]), Reply::Nil);
        // Nothing to delete and nothing to store: nothing is logged.
        let n = t.log.len();
        assert_eq!(t.run(&["SINTERSTORE", "d", "nope", "a"]), Reply::Int(0));
        assert_eq!(t.log.len(), n);
        assert_eq!(t.run(&["SINTERSTORE", "d"]), err("ERR wrong number of arguments for 'sinterstore' command"));
        t.check_replay();
    }

    #[test]
    fn sscan_walks_everything() {
        let mut t = T::new();
        for i in 0..500 {
            t.run(&["SADD", "s", &format!("m{i}")]);
        }
        let mut seen = BTreeSet::new();
        let mut cursor = "0".to_string();
        let mut calls = 0;
        loop {
            let r = t.run(&["SSCAN", "s", &cursor, "COUNT", "20"]);
            let Reply::Array(parts) = r else { panic!("bad SSCAN reply {r:?}") };
            let Reply::Bulk(c) = &parts[0] else { panic!("bad cursor") };
            cursor = String::from_utf8_lossy(c).into_owned();
            seen.extend(members(&parts[1]));
            calls += 1;
            if cursor == "0" {
                break;
            }
        }
        assert!(calls > 1, "a hashtable set is scanned in steps");
        assert_eq!(seen.len(), 500);
        // MATCH filters after the step.
        let mut matched = BTreeSet::new();
        let mut cursor = "0".to_string();
        loop {
            let r = t.run(&["SSCAN", "s", &cursor, "MATCH", "m1?", "COUNT", "1000"]);
            let Reply::Array(parts) = r else { panic!("bad SSCAN reply") };
            let Reply::Bulk(c) = &parts[0] else { panic!("bad cursor") };
            cursor = String::from_utf8_lossy(c).into_owned();
            matched.extend(members(&parts[1]));
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(matched, (10..20).map(|i| format!("m{i}")).collect());
        // An intset comes back whole and sorted.
        t.run(&["SADD", "n", "3", "1", "2"]);
        assert_eq!(t.run(&["SSCAN", "n", "0"]), Reply::Array(vec![bulk("0"), bulks(&["1", "2", "3"])]));
        assert_eq!(t.run(&["SSCAN", "n", "0", "MATCH", "[12]"]), Reply::Array(vec![bulk("0"), bulks(&["1", "2"])]));
        assert_eq!(t.run(&["SSCAN", "nope", "0", "BOGUS"]), Reply::Array(vec![bulk("0"), bulks(&[])]));
        assert_eq!(t.run(&["SSCAN", "n", "x"]), err("ERR invalid cursor"));
        assert_eq!(t.run(&["SSCAN", "n", " 1"]), err("ERR invalid cursor"));
        assert_eq!(t.run(&["SSCAN", "n", "18446744073709551616"]), err("ERR invalid cursor"));
        assert!(!t.run(&["SSCAN", "n", "18446744073709551615"]).is_error());
        assert_eq!(t.run(&["SSCAN", "n", "0", "COUNT", "0"]), err("ERR syntax error"));
        assert_eq!(t.run(&["SSCAN", "n", "0", "COUNT", "x"]), err("ERR value is not an integer or out of range"));
        assert_eq!(t.run(&["SSCAN", "n", "0", "MATCH"]), err("ERR syntax error"));
        assert_eq!(t.run(&["SSCAN", "n", "0", "TYPE", "set"]), err("ERR syntax error"));
        assert_eq!(t.run(&["SSCAN", "n"]), err("ERR wrong number of arguments for 'sscan' command"));
        t.check_replay();
    }

    #[test]
    fn memory_accounting_follows_the_set() {
        let mut t = T::new();
        let base = t.engine.used_memory();
        for i in 0..300 {
            t.run(&["SADD", "s", &format!("member-{i}")]);
        }
        t.run(&["SUNIONSTORE", "u", "s"]);
        assert!(t.engine.used_memory() > base + 2 * 300 * 32);
        t.run(&["SPOP", "s", "100"]);
        t.run(&["SPOP", "s"]);
        t.run(&["SMOVE", "s", "u", "member-0"]);
        t.run(&["SINTERSTORE", "u", "u", "s"]);
        t.run(&["SPOP", "s", "1000"]);
        assert_eq!(t.run(&["SCARD", "s"]), Reply::Int(0));
        t.run(&["SDIFFSTORE", "u", "nope"]);
        assert_eq!(t.engine.used_memory(), base);
        t.check_replay();
    }

    #[test]
    fn cursor_parsing_follows_strtoul() {
        use super::parse_cursor;
        assert_eq!(parse_cursor(b"0"), Some(0));
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"+5"), Some(5));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"007"), Some(7));
        assert_eq!(parse_cursor(b"+"), None);
        assert_eq!(parse_cursor(b"1x"), None);
        assert_eq!(parse_cursor(b"\t1"), None);
    }

    #[test]
    fn transactions_and_events() {
        let mut t = T::new();
        t.engine.set_notify_flags(notify::KEYEVENT | notify::ALL);
        let (_, ev) = run_ev(&mut t, &["SADD", "s", "a", "b"]);
        assert_eq!(ev, vec![("sadd", "s".into())]);
        let (_, ev) = run_ev(&mut t, &["SADD", "s", "a"]);
        assert!(ev.is_empty(), "no event when nothing was added");
        let (_, ev) = run_ev(&mut t, &["SREM", "s", "zz"]);
        assert!(ev.is_empty());
        let (_, ev) = run_ev(&mut t, &["SREM", "s", "a", "b"]);
        assert_eq!(ev, vec![("srem", "s".into()), ("del", "s".into())]);
        // Two SPOPs in one MULTI draw independently and log SREMs.
        t.run(&["SADD", "m", "1", "2", "3", "4", "5", "6", "7", "8"]);
        t.run(&["MULTI"]);
        t.run(&["SPOP", "m", "3"]);
        t.run(&["SPOP", "m"]);
        t.run(&["SRANDMEMBER", "m", "2"]);
        let r = t.run(&["EXEC"]);
        let Reply::Array(v) = r else { panic!("EXEC failed") };
        assert_eq!(members(&v[0]).len(), 3);
        assert_eq!(t.run(&["SCARD", "m"]), Reply::Int(4));
        let ops = t.last_ops();
        assert_eq!(ops.iter().map(|o| o[0].as_str()).collect::<Vec<_>>(), ["SREM", "SREM"]);
        t.check_replay();
    }
}
