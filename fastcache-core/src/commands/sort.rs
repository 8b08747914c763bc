//! SORT and SORT_RO (Redis' sort.c).
//!
//! `BY` and `GET` patterns name keys built from the elements being sorted,
//! so a SORT that uses them may touch any key: its key specification locks
//! every shard then. Otherwise it locks the sorted key and the STORE
//! destination only.
//!
//! `SORT … STORE` is logged as `DEL dest` followed by `RPUSH dest …` of the
//! result rather than as itself: the result depends on other keys and, for
//! an unsorted set, on iteration order, neither of which replay may rely on.

use std::cmp::Ordering;

use smallvec::{smallvec, SmallVec};

use super::flags::{DENYOOM, MOVABLE_KEYS, READONLY, WRITE};
use super::{cmd_keys, CommandSpec, LockSet};
use crate::cx::Cx;
use crate::keyspace::{ObjRef, Value};
use crate::notify;
use crate::reply::{errors, Reply};
use crate::types::List;
use crate::util::{eq_ic, int_arg};

pub(crate) const COMMANDS: &[CommandSpec] = &[
    cmd_keys("sort", -2, WRITE | DENYOOM | MOVABLE_KEYS, (1, 1, 1), "generic", sort_keys, sort),
    cmd_keys("sort_ro", -2, READONLY, (1, 1, 1), "generic", sort_ro_keys, sort_ro),
];

/// Elements per `RPUSH` op when a stored result is logged.
const RPUSH_CHUNK: usize = 1024;

/// Parsed SORT options.
struct SortOpts<'a> {
    desc: bool,
    alpha: bool,
    /// `LIMIT offset count` as given.
    limit: Option<(i64, i64)>,
    /// Argument position of the STORE destination.
    store: Option<usize>,
    /// The last `BY` pattern.
    by: Option<&'a [u8]>,
    /// Some `BY` pattern had no `*`: keep the native order.
    dontsort: bool,
    get: Vec<&'a [u8]>,
}

fn has_star(pattern: &[u8]) -> bool {
    pattern.contains(&b'*')
}

/// Parses the options after the key, in Redis' order and with its errors.
/// SORT_RO (`readonly`) does not know STORE.
fn parse<'a>(a: &[&'a [u8]], readonly: bool) -> Result<SortOpts<'a>, Reply> {
    let mut o =
        SortOpts { desc: false, alpha: false, limit: None, store: None, by: None, dontsort: false, get: Vec::new() };
    let mut j = 2;
    while j < a.len() {
        let left = a.len() - j - 1;
        let arg = a[j];
        if eq_ic(arg, "ASC") {
            o.desc = false;
        } else if eq_ic(arg, "DESC") {
            o.desc = true;
        } else if eq_ic(arg, "ALPHA") {
            o.alpha = true;
        } else if eq_ic(arg, "LIMIT") && left >= 2 {
            o.limit = Some((int_arg(a[j + 1])?, int_arg(a[j + 2])?));
            j += 2;
        } else if !readonly && eq_ic(arg, "STORE") && left >= 1 {
            o.store = Some(j + 1);
            j += 1;
        } else if eq_ic(arg, "BY") && left >= 1 {
            o.by = Some(a[j + 1]);
            if !has_star(a[j + 1]) {
                o.dontsort = true;
            }
            j += 1;
        } else if eq_ic(arg, "GET") && left >= 1 {
            o.get.push(a[j + 1]);
            j += 1;
        } else {
            return Err(errors::SYNTAX);
        }
        j += 1;
    }
    Ok(o)
}

/// The shards a SORT invocation needs: everything if a pattern may look up
/// other keys, else the sorted key and the destination. A syntax error
/// locks just the key; the handler fails before touching anything.
fn keys_for(a: &[&[u8]], readonly: bool) -> LockSet {
    let Ok(o) = parse(a, readonly) else {
        return LockSet::Args(smallvec![1]);
    };
    let by_looks_up = o.by.is_some_and(has_star);
    let get_looks_up = o.get.iter().any(|p| *p != b"#" && has_star(p));
    if by_looks_up || get_looks_up {
        return LockSet::All;
    }
    let mut keys: SmallVec<[usize; 4]> = smallvec![1];
    keys.extend(o.store);
    LockSet::Args(keys)
}

fn sort_keys(a: &[&[u8]]) -> LockSet {
    keys_for(a, false)
}

fn sort_ro_keys(a: &[&[u8]]) -> LockSet {
    keys_for(a, true)
}

fn sort(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    sort_generic(cx, a, false)
}

fn sort_ro(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    sort_generic(cx, a, true)
}

/// Resolves a BY/GET pattern for element `elem` as Redis'
/// `lookupKeyByPattern`: `#` is the element itself; the first `*` is
/// replaced by the element; `key->field` reads a hash field. Missing keys,
/// keys of another type and patterns without `*` give `None`.
fn lookup_pattern(cx: &mut Cx, pattern: &[u8], elem: &[u8]) -> Option<Vec<u8>> {
    if pattern == b"#" {
        return Some(elem.to_vec());
    }
    let star = pattern.iter().position(|&c| c == b'*')?;
    let after = &pattern[star + 1..];
    let (postfix, field) = match after.windows(2).position(|w| w == b"->") {
        Some(f) if f + 2 < after.len() => (&after[..f], Some(&after[f + 2..])),
        _ => (after, None),
    };
    let mut key = Vec::with_capacity(star + elem.len() + postfix.len());
    key.extend_from_slice(&pattern[..star]);
    key.extend_from_slice(elem);
    key.extend_from_slice(postfix);
    match (cx.lookup(&key)?, field) {
        (ObjRef::Str(s), None) => Some(s.to_vec()),
        (ObjRef::Hash(h), Some(f)) => h.get(f).map(<[u8]>::to_vec),
        _ => None,
    }
}

/// Converts a sort weight as SORT's use of C's `strtod` does: the whole
/// string (up to a NUL) must be a number, leading whitespace allowed, an
/// empty string is 0; NaN and out-of-range values (ERANGE) are errors.
fn parse_weight(s: &[u8]) -> Option<f64> {
    let s = s.iter().position(|&c| c == 0).map_or(s, |i| &s[..i]);
    if s.is_empty() {
        return Some(0.0);
    }
    let start = s.iter().position(|c| !matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r'))?;
    let text = std::str::from_utf8(&s[start..]).ok()?;
    let (neg, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if body.starts_with(['+', '-']) {
        return None;
    }
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(if neg { f64::NEG_INFINITY } else { f64::INFINITY });
    }
    let v = if let Some(hex) = lower.strip_prefix("0x") {
        parse_hex_float(hex)?
    } else {
        // Rust's float grammar accepts what strtod consumes entirely, apart
        // from the spellings of infinity and NaN handled here.
        if lower.contains("inf") || lower.contains("nan") || lower.is_empty() {
            return None;
        }
        let v: f64 = body.parse().ok()?;
        let mantissa = lower.split('e').next().unwrap_or("");
        if v == 0.0 && mantissa.bytes().any(|c| (b'1'..=b'9').contains(&c)) {
            return None;
        }
        v
    };
    if v.is_infinite() || v.is_nan() || (v != 0.0 && v.abs() < f64::MIN_POSITIVE) {
        return None;
    }
    Some(if neg { -v } else { v })
}

/// The part of a C99 hexadecimal float after `0x`: hex digits, an optional
/// fraction, an optional binary exponent `p±n`.
fn parse_hex_float(s: &str) -> Option<f64> {
    let (mant, exp) = match s.split_once('p') {
        Some((m, e)) => (m, Some(e)),
        None => (s, None),
    };
    let (int, frac) = mant.split_once('.').unwrap_or((mant, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut v = 0f64;
    for c in int.chars() {
        v = v * 16.0 + f64::from(c.to_digit(16)?);
    }
    let mut scale = 1.0 / 16.0;
    for c in frac.chars() {
        v += f64::from(c.to_digit(16)?) * scale;
        scale /= 16.0;
    }
    if let Some(e) = exp {
        let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
        if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let n: i32 = e.parse().unwrap_or(if e.starts_with('-') { i32::MIN } else { i32::MAX });
        v *= 2f64.powi(n);
    }
    Some(v)
}

/// One element being sorted and what it sorts by.
struct Item {
    elem: Vec<u8>,
    score: f64,
    /// The BY value for ALPHA sorting by a pattern (`None`: no such key,
    /// which sorts first).
    cmp: Option<Vec<u8>>,
}

/// Which type the sorted key holds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    List,
    Set,
    ZSet,
}

fn sort_generic(cx: &mut Cx, a: &[&[u8]], readonly: bool) -> Reply {
    let o = match parse(a, readonly) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let (kind, elems): (Kind, Vec<Vec<u8>>) = match cx.lookup(a[1]) {
        None => (Kind::List, Vec::new()),
        Some(ObjRef::List(l)) => (Kind::List, l.iter().map(<[u8]>::to_vec).collect()),
        Some(ObjRef::Set(s)) => (Kind::Set, s.ordered().into_iter().map(<[u8]>::to_vec).collect()),
        Some(ObjRef::ZSet(z)) => (Kind::ZSet, z.iter().map(|(m, _)| m.to_vec()).collect()),
        Some(_) => return errors::WRONGTYPE,
    };
    let (mut dontsort, mut alpha, mut by) = (o.dontsort, o.alpha, o.by);
    // An unsorted set would be stored in iteration order, which differs
    // between processes; Redis sorts it lexicographically instead.
    if dontsort && kind == Kind::Set && o.store.is_some() {
        dontsort = false;
        alpha = true;
        by = None;
    }

    let n = elems.len() as i64;
    let (offset, count) = o.limit.unwrap_or((0, -1));
    let mut start = offset.max(0);
    let mut end = if count < 0 { n - 1 } else { start.saturating_add(count) - 1 };
    if start >= n {
        start = n - 1;
        end = n - 2;
    }
    if end >= n {
        end = n - 1;
    }

    let ordered: Vec<Vec<u8>> = if dontsort {
        let mut v = elems;
        // Lists and sorted sets keep their native order, reversed by DESC.
        if o.desc && kind != Kind::Set {
            v.reverse();
        }
        v
    } else {
        let mut items = Vec::with_capacity(elems.len());
        for elem in elems {
            let mut item = Item { elem, score: 0.0, cmp: None };
            let weight = match by {
                Some(p) => lookup_pattern(cx, p, &item.elem),
                None => None,
            };
            if alpha {
                item.cmp = weight;
            } else if by.is_none() || weight.is_some() {
                let w = weight.as_deref().unwrap_or(&item.elem);
                match parse_weight(w) {
                    Some(v) => item.score = v,
                    None => return Reply::err("ERR One or more scores can't be converted into double"),
                }
            }
            items.push(item);
        }
        let by_pattern = by.is_some();
        let desc = o.desc;
        items.sort_by(|x, y| {
            let c = if !alpha {
                x.score.partial_cmp(&y.score).unwrap_or(Ordering::Equal).then_with(|| x.elem.cmp(&y.elem))
            } else if by_pattern {
                // Equal (or both missing) weights fall back to the elements
                // so that the order is deterministic.
                x.cmp.cmp(&y.cmp).then_with(|| x.elem.cmp(&y.elem))
            } else {
                x.elem.cmp(&y.elem)
            };
            if desc {
                c.reverse()
            } else {
                c
            }
        });
        items.into_iter().map(|i| i.elem).collect()
    };
    let range: &[Vec<u8>] = if end >= start && start >= 0 { &ordered[start as usize..=end as usize] } else { &[] };

    let Some(dst_pos) = o.store else {
        let mut out = Vec::with_capacity(range.len() * o.get.len().max(1));
        for elem in range {
            if o.get.is_empty() {
                out.push(Reply::bulk(elem));
            }
            for p in &o.get {
                out.push(lookup_pattern(cx, p, elem).map_or(Reply::Nil, Reply::Bulk));
            }
        }
        return Reply::Array(out);
    };

    let mut out: Vec<Vec<u8>> = Vec::with_capacity(range.len() * o.get.len().max(1));
    for elem in range {
        if o.get.is_empty() {
            out.push(elem.clone());
        }
        for p in &o.get {
            out.push(lookup_pattern(cx, p, elem).unwrap_or_default());
        }
    }
    let dst = a[dst_pos];
    if out.is_empty() {
        if cx.delete(dst) {
            cx.propagate(vec![b"DEL".to_vec(), dst.to_vec()]);
            cx.notify(notify::GENERIC, "del", dst);
        }
        return Reply::Int(0);
    }
    let mut list = List::new();
    for v in &out {
        list.push_back(v);
    }
    cx.set_value(dst, Value::List(list), 0);
    if cx.journaling() {
        cx.propagate(vec![b"DEL".to_vec(), dst.to_vec()]);
        for chunk in out.chunks(RPUSH_CHUNK) {
            let mut argv = Vec::with_capacity(chunk.len() + 2);
            argv.push(b"RPUSH".to_vec());
            argv.push(dst.to_vec());
            argv.extend(chunk.iter().cloned());
            cx.propagate(argv);
        }
    }
    cx.notify(notify::LIST, "sortstore", dst);
    Reply::Int(out.len() as i64)
}

#[cfg(test)]
mod tests {
    use super::{parse_weight, LockSet};
    use crate::notify;
    use crate::record::Record;
    use crate::reply::Reply;
    use crate::testutil::{bulk, bulks, err, T};

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

    fn lock_positions(args: &[&str]) -> Option<Vec<usize>> {
        let argv: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let spec = crate::commands::lookup(argv[0]).map(|s| s.lock_set(&argv));
        match spec {
            Some(LockSet::Args(p)) => Some(p.to_vec()),
            Some(LockSet::All) => None,
            _ => Some(Vec::new()),
        }
    }

    #[test]
    fn numeric_and_alpha() {
        let mut t = T::new();
        t.run(&["RPUSH", "l", "3", "1", "2", "10", "-1.5"]);
        assert_eq!(t.run(&["SORT", "l"]), bulks(&["-1.5", "1", "2", "3", "10"]));
        assert_eq!(t.run(&["SORT", "l", "DESC"]), bulks(&["10", "3", "2", "1", "-1.5"]));
        assert_eq!(t.run(&["SORT", "l", "ALPHA"]), bulks(&["-1.5", "1", "10", "2", "3"]));
        assert_eq!(t.run(&["SORT", "l", "alpha", "desc"]), bulks(&["3", "2", "10", "1", "-1.5"]));
        assert_eq!(t.run(&["SORT", "l", "LIMIT", "1", "2"]), bulks(&["1", "2"]));
        assert_eq!(t.run(&["SORT", "l", "LIMIT", "-5", "2"]), bulks(&["-1.5", "1"]));
        assert_eq!(t.run(&["SORT", "l", "LIMIT", "3", "-1"]), bulks(&["3", "10"]));
        assert_eq!(t.run(&["SORT", "l", "LIMIT", "4", "100"]), bulks(&["10"]));
        assert_eq!(t.run(&["SORT", "l", "LIMIT", "5", "1"]), bulks(&[]));
        assert_eq!(t.run(&["SORT", "l", "LIMIT", "0", "0"]), bulks(&[]));
        assert_eq!(
            t.run(&["SORT", "l", "LIMIT", "9223372036854775807", "9223372036854775807"]),
            bulks(&[]),
            "huge limits do not overflow"
        );
        // Equal scores fall back to byte order, so the result is stable.
        t.run(&["RPUSH", "eq", "1.0", "1", "01", "1e0"]);
        assert_eq!(t.run(&["SORT", "eq"]), bulks(&["01", "1", "1.0", "1e0"]));
        assert_eq!(t.run(&["SORT", "eq", "DESC"]), bulks(&["1e0", "1.0", "1", "01"]));
        t.run(&["RPUSH", "words", "b", "a"]);
        assert_eq!(t.run(&["SORT", "words"]), err("ERR One or more scores can't be converted into double"));
        assert_eq!(t.run(&["SORT", "words", "ALPHA"]), bulks(&["a", "b"]));
        assert_eq!(t.run(&["SORT", "nope"]), bulks(&[]));
        // Sets and their intset order.
        t.run(&["SADD", "s", "5", "2", "9"]);
        assert_eq!(t.run(&["SORT", "s"]), bulks(&["2", "5", "9"]));
        assert_eq!(t.run(&["SORT", "s", "DESC", "LIMIT", "0", "2"]), bulks(&["9", "5"]));
        assert_eq!(t.run(&["SORT_RO", "s", "DESC"]), bulks(&["9", "5", "2"]));
        t.check_replay();
    }

    #[test]
    fn errors_and_wrongtype() {
        let mut t = T::new();
        t.run(&["SET", "str", "x"]);
        t.run(&["RPUSH", "l", "1"]);
        assert_eq!(t.run(&["SORT", "str"]), err("WRONGTYPE Operation against a key holding the wrong kind of value"));
        assert_eq!(
            t.run(&["SORT_RO", "str"]),
            err("WRONGTYPE Operation against a key holding the wrong kind of value")
        );
        assert_eq!(t.run(&["SORT", "str", "BOGUS"]), err("ERR syntax error"), "options are parsed first");
        assert_eq!(t.run(&["SORT", "l", "LIMIT", "1"]), err("ERR syntax error"));
        assert_eq!(t.run(&["SORT", "l", "LIMIT", "x", "1"]), err("ERR value is not an integer or out of range"));
        assert_eq!(t.run(&["SORT", "l", "LIMIT", "0", "y"]), err("ERR value is not an integer or out of range"));
        assert_eq!(t.run(&["SORT", "l", "BY"]), err("ERR syntax error"));
        assert_eq!(t.run(&["SORT", "l", "GET"]), err("ERR syntax error"));
        assert_eq!(t.run(&["SORT", "l", "STORE"]), err("ERR syntax error"));
        assert_eq!(t.run(&["SORT_RO", "l", "STORE", "d"]), err("ERR syntax error"));
        assert_eq!(t.run(&["SORT"]), err("ERR wrong number of arguments for 'sort' command"));
        assert_eq!(t.run(&["SORT_RO"]), err("ERR wrong number of arguments for 'sort_ro' command"));
        // A failed conversion stores nothing.
        t.run(&["RPUSH", "w", "a"]);
        assert_eq!(t.run(&["SORT", "w", "STORE", "d"]), err("ERR One or more scores can't be converted into double"));
        assert_eq!(t.run(&["EXISTS", "d"]), Reply::Int(0));
        t.check_replay();
    }

    #[test]
    fn by_and_get_patterns() {
        let mut t = T::new();
        t.run(&["RPUSH", "ids", "1", "2", "3", "4"]);
        for (id, w, name) in [("1", "30", "one"), ("2", "10", "two"), ("3", "20", "three")] {
            t.run(&["SET", &format!("w_{id}"), w]);
            t.run(&["SET", &format!("name_{id}"), name]);
        }
        // A missing weight counts as 0.
        assert_eq!(t.run(&["SORT", "ids", "BY", "w_*"]), bulks(&["4", "2", "3", "1"]));
        assert_eq!(t.run(&["SORT", "ids", "BY", "w_*", "DESC"]), bulks(&["1", "3", "2", "4"]));
        // ALPHA by pattern: a missing weight sorts first.
        assert_eq!(t.run(&["SORT", "ids", "BY", "w_*", "ALPHA"]), bulks(&["4", "2", "3", "1"]));
        assert_eq!(
            t.run(&["SORT", "ids", "BY", "w_*", "GET", "name_*", "GET", "#"]),
            Reply::Array(vec![
                Reply::Nil,
                bulk("4"),
                bulk("two"),
                bulk("2"),
                bulk("three"),
                bulk("3"),
                bulk("one"),
                bulk("1")
            ])
        );
        assert_eq!(t.run(&["SORT", "ids", "BY", "w_*", "LIMIT", "1", "2", "GET", "name_*"]), bulks(&["two", "three"]));
        // A GET pattern without '*' never matches; GET of another type is nil.
        t.run(&["SADD", "name_4", "x"]);
        assert_eq!(t.run(&["SORT", "ids", "GET", "fixed", "LIMIT", "0", "1"]), Reply::Array(vec![Reply::Nil]));
        assert_eq!(t.run(&["SORT", "ids", "GET", "name_*", "LIMIT", "3", "1"]), Reply::Array(vec![Reply::Nil]));
        // Non-numeric weights are an error.
        t.run(&["SET", "w_4", "heavy"]);
        assert_eq!(t.run(&["SORT", "ids", "BY", "w_*"]), err("ERR One or more scores can't be converted into double"));
        assert_eq!(t.run(&["SORT", "ids", "BY", "w_*", "ALPHA"]), bulks(&["2", "3", "1", "4"]));
        // BY without '*' keeps the native order (and DESC reverses it).
        assert_eq!(t.run(&["SORT", "ids", "BY", "nosort"]), bulks(&["1", "2", "3", "4"]));
        assert_eq!(t.run(&["SORT", "ids", "BY", "nosort", "DESC"]), bulks(&["4", "3", "2", "1"]));
        assert_eq!(t.run(&["SORT", "ids", "BY", "nosort", "DESC", "LIMIT", "1", "2"]), bulks(&["3", "2"]));
        assert_eq!(t.run(&["SORT_RO", "ids", "BY", "nosort", "GET", "name_*"]), {
            Reply::Array(vec![bulk("one"), bulk("two"), bulk("three"), Reply::Nil])
        });
        t.check_replay();
    }

    #[test]
    fn store_logs_del_and_rpush() {
        let mut t = T::new();
        t.engine.set_notify_flags(notify::KEYEVENT | notify::ALL);
        t.run(&["RPUSH", "l", "3", "1", "2"]);
        t.run(&["SET", "dst", "old", "EX", "100"]);
        let (r, ev) = run_ev(&mut t, &["SORT", "l", "STORE", "dst"]);
        assert_eq!(r, Reply::Int(3));
        assert_eq!(ev, vec![("sortstore", "dst".into())]);
        assert_eq!(
            t.last_ops(),
            vec![
                vec!["DEL".to_string(), "dst".into()],
                vec!["RPUSH".to_string(), "dst".into(), "1".into(), "2".into(), "3".into()]
            ]
        );
        assert_eq!(t.run(&["LRANGE", "dst", "0", "-1"]), bulks(&["1", "2", "3"]));
        assert_eq!(t.run(&["TTL", "dst"]), Reply::Int(-1));
        // GET misses store empty strings.
        t.run(&["SET", "v_1", "a"]);
        assert_eq!(t.run(&["SORT", "l", "GET", "v_*", "GET", "#", "STORE", "dst"]), Reply::Int(6));
        assert_eq!(t.run(&["LRANGE", "dst", "0", "-1"]), bulks(&["a", "1", "", "2", "", "3"]));
        // An empty result deletes the destination.
        let (r, ev) = run_ev(&mut t, &["SORT", "nope", "STORE", "dst"]);
        assert_eq!(r, Reply::Int(0));
        assert_eq!(ev, vec![("del", "dst".into())]);
        assert_eq!(t.last_ops(), vec![vec!["DEL".to_string(), "dst".into()]]);
        assert_eq!(t.run(&["EXISTS", "dst"]), Reply::Int(0));
        let n = t.log.len();
        assert_eq!(t.run(&["SORT", "l", "LIMIT", "0", "0", "STORE", "dst"]), Reply::Int(0));
        assert_eq!(t.log.len(), n, "nothing to store or delete: nothing logged");
        // The destination may be the source.
        assert_eq!(t.run(&["SORT", "l", "DESC", "STORE", "l"]), Reply::Int(3));
        assert_eq!(t.run(&["LRANGE", "l", "0", "-1"]), bulks(&["3", "2", "1"]));
        // An unsorted set is stored sorted, so the result is deterministic.
        t.run(&["SADD", "s", "b", "c", "a"]);
        assert_eq!(t.run(&["SORT", "s", "BY", "nosort", "STORE", "d2"]), Reply::Int(3));
        assert_eq!(t.run(&["LRANGE", "d2", "0", "-1"]), bulks(&["a", "b", "c"]));
        // A large result is logged in chunks.
        for i in 0..2500 {
            t.run(&["SADD", "big", &i.to_string()]);
        }
        assert_eq!(t.run(&["SORT", "big", "STORE", "bigl"]), Reply::Int(2500));
        let ops = t.last_ops();
        assert_eq!(ops.len(), 4);
        assert_eq!(ops[1].len(), 2 + 1024);
        assert_eq!(t.run(&["LINDEX", "bigl", "2499"]), bulk("2499"));
        t.check_replay();
    }

    #[test]
    fn hash_field_patterns() {
        let mut t = T::new();
        t.run(&["SADD", "users", "1", "2", "3"]);
        t.run(&["HSET", "user:1", "age", "40", "name", "ann"]);
        t.run(&["HSET", "user:2", "age", "25", "name", "bob"]);
        t.run(&["HSET", "user:3", "name", "cy"]);
        assert_eq!(t.run(&["SORT", "users", "BY", "user:*->age"]), bulks(&["3", "2", "1"]));
        assert_eq!(
            t.run(&["SORT", "users", "BY", "user:*->age", "DESC", "GET", "user:*->name", "GET", "user:*->age"]),
            Reply::Array(vec![bulk("ann"), bulk("40"), bulk("bob"), bulk("25"), bulk("cy"), Reply::Nil])
        );
        assert_eq!(
            t.run(&["SORT", "users", "BY", "user:*->name", "ALPHA", "DESC", "GET", "#"]),
            bulks(&["3", "2", "1"])
        );
        // `->` applies to hashes only; a string key gives nothing, and an
        // empty field name means a plain key lookup of "user:1->".
        t.run(&["SET", "plain:1", "x"]);
        assert_eq!(t.run(&["SORT", "users", "GET", "plain:*->f", "LIMIT", "0", "1"]), Reply::Array(vec![Reply::Nil]));
        t.run(&["SET", "user:1->", "arrow"]);
        assert_eq!(t.run(&["SORT", "users", "GET", "user:*->", "LIMIT", "0", "1"]), bulks(&["arrow"]));
        // The field text may itself contain "->".
        t.run(&["HSET", "user:1", "a->b", "nested"]);
        assert_eq!(t.run(&["SORT", "users", "GET", "user:*->a->b", "LIMIT", "0", "1"]), bulks(&["nested"]));
        t.run(&["HSET", "user:3", "age", "x"]);
        assert_eq!(
            t.run(&["SORT", "users", "BY", "user:*->age", "STORE", "out"]),
            err("ERR One or more scores can't be converted into double")
        );
        t.run(&["HSET", "user:3", "age", "30"]);
        assert_eq!(
            t.run(&["SORT", "users", "BY", "user:*->age", "GET", "user:*->name", "STORE", "out"]),
            Reply::Int(3)
        );
        assert_eq!(t.run(&["LRANGE", "out", "0", "-1"]), bulks(&["bob", "cy", "ann"]));
        t.check_replay();
    }

    #[test]
    fn sorted_sets() {
        let mut t = T::new();
        t.run(&["ZADD", "z", "3", "c", "1", "a", "2", "b", "0", "d"]);
        // BY nosort keeps the score order, DESC reverses it, LIMIT slices it.
        assert_eq!(t.run(&["SORT", "z", "BY", "nosort"]), bulks(&["d", "a", "b", "c"]));
        assert_eq!(t.run(&["SORT", "z", "BY", "nosort", "DESC"]), bulks(&["c", "b", "a", "d"]));
        assert_eq!(t.run(&["SORT", "z", "BY", "nosort", "LIMIT", "1", "2"]), bulks(&["a", "b"]));
        assert_eq!(t.run(&["SORT", "z", "BY", "nosort", "DESC", "LIMIT", "1", "2"]), bulks(&["b", "a"]));
        assert_eq!(t.run(&["SORT", "z", "ALPHA"]), bulks(&["a", "b", "c", "d"]));
        assert_eq!(t.run(&["SORT", "z"]), err("ERR One or more scores can't be converted into double"));
        // Stored in score order, deterministically logged.
        assert_eq!(t.run(&["SORT", "z", "BY", "nosort", "STORE", "zl"]), Reply::Int(4));
        assert_eq!(t.run(&["LRANGE", "zl", "0", "-1"]), bulks(&["d", "a", "b", "c"]));
        t.run(&["ZADD", "nums", "1", "10", "2", "9", "3", "100"]);
        assert_eq!(t.run(&["SORT", "nums"]), bulks(&["9", "10", "100"]));
        assert_eq!(t.run(&["SORT_RO", "nums", "DESC", "LIMIT", "0", "1"]), bulks(&["100"]));
        t.check_replay();
    }

    #[test]
    fn lock_sets() {
        assert_eq!(lock_positions(&["SORT", "k"]), Some(vec![1]));
        assert_eq!(lock_positions(&["SORT", "k", "STORE", "d", "LIMIT", "0", "1"]), Some(vec![1, 3]));
        assert_eq!(lock_positions(&["SORT", "k", "BY", "nosort", "GET", "#", "STORE", "d"]), Some(vec![1, 7]));
        assert_eq!(lock_positions(&["SORT", "k", "BY", "w_*"]), None);
        assert_eq!(lock_positions(&["SORT", "k", "GET", "n_*"]), None);
        assert_eq!(lock_positions(&["SORT", "k", "GET", "h_*->f", "STORE", "d"]), None);
        assert_eq!(lock_positions(&["SORT_RO", "k", "GET", "n_*"]), None);
        assert_eq!(lock_positions(&["SORT_RO", "k", "BY", "nosort"]), Some(vec![1]));
        assert_eq!(lock_positions(&["SORT_RO", "k", "STORE", "d"]), Some(vec![1]), "a syntax error for SORT_RO");
    }

    #[test]
    fn weights_parse_like_strtod() {
        assert_eq!(parse_weight(b"1.5"), Some(1.5));
        assert_eq!(parse_weight(b""), Some(0.0));
        assert_eq!(parse_weight(b"  -2"), Some(-2.0));
        assert_eq!(parse_weight(b"1e3"), Some(1000.0));
        assert_eq!(parse_weight(b".5"), Some(0.5));
        assert_eq!(parse_weight(b"5."), Some(5.0));
        assert_eq!(parse_weight(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_weight(b"Infinity"), Some(f64::INFINITY));
        assert_eq!(parse_weight(b"0x10"), Some(16.0));
        assert_eq!(parse_weight(b"0x1p-1"), Some(0.5));
        assert_eq!(parse_weight(b"3\0junk"), Some(3.0));
        for bad in [&b"nan"[..], b"1 ", b" ", b"abc", b"1e", b"1e400", b"1e-400", b"--1", b"+-1", b"0x", b"."] {
            assert_eq!(parse_weight(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
