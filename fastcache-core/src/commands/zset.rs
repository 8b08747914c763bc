//! Sorted set commands, following Redis 7.0's `t_zset.c`: argument order of
//! checks, error strings, reply shapes (RESP2 flat WITHSCORES, RESP3 pairs)
//! and keyspace events.
//!
//! Write commands first read the key (without touching it) to find out
//! whether anything would change, and only then modify it: a write that
//! changes nothing must neither invalidate WATCHes nor be logged, as in
//! Redis where such commands do not bump `server.dirty`.

use std::collections::{HashMap, HashSet};

use smallvec::SmallVec;

use super::flags::{DENYOOM, FAST, MOVABLE_KEYS, RANDOM, READONLY, WRITE};
use super::set::MAX_REPEATED_SAMPLE;
use super::{cmd, cmd_keys, CommandSpec, LockSet};
use crate::cx::Cx;
use crate::keyspace::{ObjRef, Value};
use crate::notify;
use crate::reply::{errors, Reply};
use crate::types::{LexBound, LexRange, ScoreRange, Set, ZSet};
use crate::util::parse_scan_cursor as parse_cursor;
use crate::util::{eq_ic, float_arg, format_g17, glob_match, int_arg, parse_f64, parse_i64};

const GROUP: &str = "sorted-set";

pub(crate) const COMMANDS: &[CommandSpec] = &[
    cmd("zadd", -4, WRITE | DENYOOM | FAST, (1, 1, 1), GROUP, zadd),
    cmd("zincrby", 4, WRITE | DENYOOM | FAST, (1, 1, 1), GROUP, zincrby),
    cmd("zrem", -3, WRITE | FAST, (1, 1, 1), GROUP, zrem),
    cmd("zscore", 3, READONLY | FAST, (1, 1, 1), GROUP, zscore),
    cmd("zmscore", -3, READONLY | FAST, (1, 1, 1), GROUP, zmscore),
    cmd("zcard", 2, READONLY | FAST, (1, 1, 1), GROUP, zcard),
    cmd("zcount", 4, READONLY | FAST, (1, 1, 1), GROUP, zcount),
    cmd("zlexcount", 4, READONLY | FAST, (1, 1, 1), GROUP, zlexcount),
    cmd("zrank", 3, READONLY | FAST, (1, 1, 1), GROUP, zrank),
    cmd("zrevrank", 3, READONLY | FAST, (1, 1, 1), GROUP, zrevrank),
    cmd("zrange", -4, READONLY, (1, 1, 1), GROUP, zrange),
    cmd("zrangestore", -5, WRITE | DENYOOM, (1, 2, 1), GROUP, zrangestore),
    cmd("zrevrange", -4, READONLY, (1, 1, 1), GROUP, zrevrange),
    cmd("zrangebyscore", -4, READONLY, (1, 1, 1), GROUP, zrangebyscore),
    cmd("zrevrangebyscore", -4, READONLY, (1, 1, 1), GROUP, zrevrangebyscore),
    cmd("zrangebylex", -4, READONLY, (1, 1, 1), GROUP, zrangebylex),
    cmd("zrevrangebylex", -4, READONLY, (1, 1, 1), GROUP, zrevrangebylex),
    cmd("zremrangebyrank", 4, WRITE, (1, 1, 1), GROUP, zremrangebyrank),
    cmd("zremrangebyscore", 4, WRITE, (1, 1, 1), GROUP, zremrangebyscore),
    cmd("zremrangebylex", 4, WRITE, (1, 1, 1), GROUP, zremrangebylex),
    cmd("zpopmin", -2, WRITE | FAST, (1, 1, 1), GROUP, zpopmin),
    cmd("zpopmax", -2, WRITE | FAST, (1, 1, 1), GROUP, zpopmax),
    cmd("bzpopmin", -3, WRITE | FAST, (1, -2, 1), GROUP, bzpopmin),
    cmd("bzpopmax", -3, WRITE | FAST, (1, -2, 1), GROUP, bzpopmax),
    cmd("zrandmember", -2, READONLY | RANDOM, (1, 1, 1), GROUP, zrandmember),
    cmd_keys("zunionstore", -4, WRITE | DENYOOM | MOVABLE_KEYS, (1, 1, 1), GROUP, store_op_keys, zunionstore),
    cmd_keys("zinterstore", -4, WRITE | DENYOOM | MOVABLE_KEYS, (1, 1, 1), GROUP, store_op_keys, zinterstore),
    cmd_keys("zdiffstore", -4, WRITE | DENYOOM | MOVABLE_KEYS, (1, 1, 1), GROUP, store_op_keys, zdiffstore),
    cmd_keys("zunion", -3, READONLY | MOVABLE_KEYS, (0, 0, 0), GROUP, op_keys, zunion),
    cmd_keys("zinter", -3, READONLY | MOVABLE_KEYS, (0, 0, 0), GROUP, op_keys, zinter),
    cmd_keys("zdiff", -3, READONLY | MOVABLE_KEYS, (0, 0, 0), GROUP, op_keys, zdiff),
    cmd("zscan", -3, READONLY, (1, 1, 1), GROUP, zscan),
];

const ERR_NAN: Reply = Reply::err("ERR resulting score is not a number (NaN)");
const ERR_MINMAX_FLOAT: Reply = Reply::err("ERR min or max is not a float");
const ERR_MINMAX_LEX: Reply = Reply::err("ERR min or max not valid string range item");

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return e,
        }
    };
}

// ----- helpers ---------------------------------------------------------------

/// The sorted set at `key` for a write command's planning read: no access
/// statistics, like Redis' `lookupKeyWrite`.
fn peek_zset<'c>(cx: &'c mut Cx, key: &[u8]) -> Result<Option<&'c ZSet>, Reply> {
    match cx.peek(key).map(|e| e.obj()) {
        None => Ok(None),
        Some(ObjRef::ZSet(z)) => Ok(Some(z)),
        Some(_) => Err(errors::WRONGTYPE),
    }
}

/// Members (and scores) as a reply: RESP2 flattens WITHSCORES, RESP3 gives
/// `[member, score]` pairs, as Redis 7 does.
fn scored_reply<'a>(resp3: bool, items: impl Iterator<Item = (&'a [u8], f64)>, withscores: bool) -> Reply {
    crate::reply::pairs(resp3, withscores, items.map(|(m, s)| (Reply::bulk(m), Reply::Double(s))))
}

fn empty_array() -> Reply {
    Reply::Array(Vec::new())
}

/// Redis' `isspace` in the C locale.
fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// A range bound's number the way `zslParseRange` reads it: a bare
/// `strtod` whose whole input must be consumed, so leading spaces are
/// skipped and an empty string is 0.
fn parse_bound_number(s: &[u8]) -> Option<f64> {
    if s.is_empty() {
        return Some(0.0);
    }
    let start = s.iter().position(|&c| !is_c_space(c))?;
    let v: f64 = std::str::from_utf8(&s[start..]).ok()?.parse().ok()?;
    (!v.is_nan()).then_some(v)
}

fn parse_score_bound(s: &[u8]) -> Option<(f64, bool)> {
    match s.first() {
        Some(b'(') => parse_bound_number(&s[1..]).map(|v| (v, true)),
        _ => parse_bound_number(s).map(|v| (v, false)),
    }
}

fn parse_score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, Reply> {
    match (parse_score_bound(min), parse_score_bound(max)) {
        (Some((min, minex)), Some((max, maxex))) => Ok(ScoreRange { min, max, minex, maxex }),
        _ => Err(ERR_MINMAX_FLOAT),
    }
}

fn parse_lex_bound(s: &[u8]) -> Option<LexBound> {
    match s.first()? {
        b'+' if s.len() == 1 => Some(LexBound::PosInf),
        b'-' if s.len() == 1 => Some(LexBound::NegInf),
        b'(' => Some(LexBound::Excl(s[1..].to_vec())),
        b'[' => Some(LexBound::Incl(s[1..].to_vec())),
        _ => None,
    }
}

fn parse_lex_range(min: &[u8], max: &[u8]) -> Result<LexRange, Reply> {
    match (parse_lex_bound(min), parse_lex_bound(max)) {
        (Some(min), Some(max)) => Ok(LexRange { min, max }),
        _ => Err(ERR_MINMAX_LEX),
    }
}

/// Resolves a rank range like Redis (negative counts from the end); `None`
/// when empty.
fn rank_range(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let llen = len as i64;
    let mut start = if start < 0 { llen + start } else { start };
    let mut end = if end < 0 { llen + end } else { end };
    if start < 0 {
        start = 0;
    }
    if start > end || start >= llen {
        return None;
    }
    if end >= llen {
        end = llen - 1;
    }
    Some((start as usize, end as usize))
}

// ----- ZADD / ZINCRBY --------------------------------------------------------

fn zadd(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    zadd_generic(cx, a, false)
}

fn zincrby(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    zadd_generic(cx, a, true)
}

fn zadd_generic(cx: &mut Cx, a: &[&[u8]], zincrby: bool) -> Reply {
    let (mut nx, mut xx, mut ch, mut incr, mut gt, mut lt) = (false, false, false, zincrby, false, false);
    let mut i = 2;
    if !zincrby {
        while i < a.len() {
            let o = a[i];
            if eq_ic(o, "NX") {
                nx = true;
            } else if eq_ic(o, "XX") {
                xx = true;
            } else if eq_ic(o, "CH") {
                ch = true;
            } else if eq_ic(o, "INCR") {
                incr = true;
            } else if eq_ic(o, "GT") {
                gt = true;
            } else if eq_ic(o, "LT") {
                lt = true;
            } else {
                break;
            }
            i += 1;
        }
    }
    let rest = a.len() - i;
    if rest % 2 != 0 || rest == 0 {
        return errors::SYNTAX;
    }
    if nx && xx {
        return Reply::err("ERR XX and NX options at the same time are not compatible");
    }
    if ((gt || lt) && nx) || (gt && lt) {
        return Reply::err("ERR GT, LT, and/or NX options at the same time are not compatible");
    }
    if incr && rest > 2 {
        return Reply::err("ERR INCR option supports a single increment-element pair");
    }
    let mut pairs = Vec::with_capacity(rest / 2);
    for p in a[i..].chunks(2) {
        pairs.push((tri!(float_arg(p[0])), p[1]));
    }
    let key = a[1];

    // Plan against the current state, applying the pairs in order (a
    // member may appear twice), so that errors come before any write.
    let mut ops: Vec<(&[u8], f64)> = Vec::new();
    let (mut added, mut updated, mut processed, mut last) = (0i64, 0i64, 0i64, 0.0);
    {
        let z = tri!(peek_zset(cx, key));
        if z.is_none() && xx {
            return if incr { Reply::Nil } else { Reply::Int(0) };
        }
        // Only a member repeated within the command needs the overlay.
        let track = pairs.len() > 1;
        let mut overlay: HashMap<&[u8], f64> = HashMap::new();
        for &(score, member) in &pairs {
            let cur = overlay.get(member).copied().or_else(|| z.and_then(|z| z.score(member)));
            match cur {
                Some(cur) => {
                    if nx {
                        continue;
                    }
                    let mut s = score;
                    if incr {
                        s += cur;
                        if s.is_nan() {
                            return ERR_NAN;
                        }
                    }
                    if (lt && s >= cur) || (gt && s <= cur) {
                        continue;
                    }
                    processed += 1;
                    last = s;
                    if s != cur {
                        updated += 1;
                        if track {
                            overlay.insert(member, s);
                        }
                        ops.push((member, s));
                    }
                }
                None if !xx => {
                    added += 1;
                    processed += 1;
                    last = score;
                    if track {
                        overlay.insert(member, score);
                    }
                    ops.push((member, score));
                }
                None => {}
            }
        }
    }
    if !ops.is_empty() {
        tri!(cx.zset_mut(key, true, |z| {
            for &(m, s) in &ops {
                z.insert(m, s);
            }
        }));
        cx.notify(notify::ZSET, if incr { "zincr" } else { "zadd" }, key);
    }
    if incr {
        if processed > 0 {
            Reply::Double(last)
        } else {
            Reply::Nil
        }
    } else {
        Reply::Int(if ch { added + updated } else { added })
    }
}

// ----- ZREM and range removals -----------------------------------------------

fn zrem(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let key = a[1];
    match tri!(peek_zset(cx, key)) {
        Some(z) if a[2..].iter().any(|m| z.contains(m)) => {}
        _ => return Reply::Int(0),
    }
    let (deleted, emptied) = tri!(cx.zset_mut(key, false, |z| {
        let n = a[2..].iter().filter(|m| z.remove(m)).count();
        (n, z.is_empty())
    }))
    .unwrap_or((0, false));
    cx.notify_removed(notify::ZSET, "zrem", key, emptied);
    Reply::Int(deleted as i64)
}

enum RemRange {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

fn zremrangebyrank(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let start = tri!(int_arg(a[2]));
    let end = tri!(int_arg(a[3]));
    zremrange_generic(cx, a[1], RemRange::Rank(start, end), "zremrangebyrank")
}

fn zremrangebyscore(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let r = tri!(parse_score_range(a[2], a[3]));
    zremrange_generic(cx, a[1], RemRange::Score(r), "zremrangebyscore")
}

fn zremrangebylex(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let r = tri!(parse_lex_range(a[2], a[3]));
    zremrange_generic(cx, a[1], RemRange::Lex(r), "zremrangebylex")
}

fn zremrange_generic(cx: &mut Cx, key: &[u8], range: RemRange, event: &'static str) -> Reply {
    let mut ranks = (0, 0);
    let Some(z) = tri!(peek_zset(cx, key)) else {
        return Reply::Int(0);
    };
    let any = match &range {
        RemRange::Rank(s, e) => rank_range(*s, *e, z.len()).map(|r| ranks = r).is_some(),
        RemRange::Score(r) => z.count_in_score(r) > 0,
        RemRange::Lex(r) => z.lex_removal_nonempty(r),
    };
    if !any {
        return Reply::Int(0);
    }
    let (deleted, emptied) = tri!(cx.zset_mut(key, false, |z| {
        let n = match &range {
            RemRange::Rank(..) => z.remove_range_by_rank(ranks.0, ranks.1, |_, _| {}),
            RemRange::Score(r) => z.remove_range_by_score(r),
            RemRange::Lex(r) => z.remove_range_by_lex(r),
        };
        (n, z.is_empty())
    }))
    .unwrap_or((0, false));
    if deleted > 0 {
        cx.notify_removed(notify::ZSET, event, key, emptied);
    }
    Reply::Int(deleted as i64)
}

// ----- simple reads ----------------------------------------------------------

fn zscore(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    match tri!(cx.get_zset(a[1])).and_then(|z| z.score(a[2])) {
        Some(s) => Reply::Double(s),
        None => Reply::Nil,
    }
}

fn zmscore(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let z = tri!(cx.get_zset(a[1]));
    Reply::Array(a[2..].iter().map(|m| z.and_then(|z| z.score(m)).map_or(Reply::Nil, Reply::Double)).collect())
}

fn zcard(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    Reply::Int(tri!(cx.get_zset(a[1])).map_or(0, ZSet::len) as i64)
}

fn zcount(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let r = tri!(parse_score_range(a[2], a[3]));
    Reply::Int(tri!(cx.get_zset(a[1])).map_or(0, |z| z.count_in_score(&r)) as i64)
}

fn zlexcount(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let r = tri!(parse_lex_range(a[2], a[3]));
    Reply::Int(tri!(cx.get_zset(a[1])).map_or(0, |z| z.count_in_lex(&r)) as i64)
}

fn zrank(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    zrank_generic(cx, a, false)
}

fn zrevrank(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    zrank_generic(cx, a, true)
}

fn zrank_generic(cx: &mut Cx, a: &[&[u8]], rev: bool) -> Reply {
    let Some(z) = tri!(cx.get_zset(a[1])) else {
        return Reply::Nil;
    };
    match z.rank(a[2]) {
        Some(r) if rev => Reply::Int((z.len() - 1 - r) as i64),
        Some(r) => Reply::Int(r as i64),
        None => Reply::Nil,
    }
}

// ----- ZRANGE and friends ----------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeType {
    Rank,
    Score,
    Lex,
}

enum RangeSpec {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange),
}

fn zrange(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    zrange_generic(cx, a, 1, false, None, None)
}

fn zrangestore(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    zrange_generic(cx, a, 2, true, None, None)
}

fn zrevrange(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    zrange_generic(cx, a, 1, false, Some(RangeType::Rank), Some(true))
}

fn zrangebyscore(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    zrange_generic(cx, a, 1, false, Some(RangeType::Score), Some(false))
}

fn zrevrangebyscore(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    zrange_generic(cx, a, 1, false, Some(RangeType::Score), Some(true))
}

fn zrangebylex(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    zrange_generic(cx, a, 1, false, Some(RangeType::Lex), Some(false))
}

fn zrevrangebylex(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    zrange_generic(cx, a, 1, false, Some(RangeType::Lex), Some(true))
}

/// Redis' `zrangeGenericCommand`: `a[start]` is the source key, followed by
/// min, max and options; `store` means ZRANGESTORE (destination `a[1]`).
fn zrange_generic(
    cx: &mut Cx,
    a: &[&[u8]],
    start: usize,
    store: bool,
    mut rangetype: Option<RangeType>,
    mut rev: Option<bool>,
) -> Reply {
    let key = a[start];
    let (mut minarg, mut maxarg) = (a[start + 1], a[start + 2]);
    let mut withscores = false;
    let (mut offset, mut limit) = (0i64, -1i64);
    let mut j = start + 3;
    while j < a.len() {
        let left = a.len() - j - 1;
        let o = a[j];
        if !store && eq_ic(o, "WITHSCORES") {
            withscores = true;
        } else if eq_ic(o, "LIMIT") && left >= 2 {
            offset = tri!(int_arg(a[j + 1]));
            limit = tri!(int_arg(a[j + 2]));
            j += 2;
        } else if rev.is_none() && eq_ic(o, "REV") {
            rev = Some(true);
        } else if rangetype.is_none() && eq_ic(o, "BYLEX") {
            rangetype = Some(RangeType::Lex);
        } else if rangetype.is_none() && eq_ic(o, "BYSCORE") {
            rangetype = Some(RangeType::Score);
        } else {
            return errors::SYNTAX;
        }
        j += 1;
    }
    let rev = rev.unwrap_or(false);
    let rangetype = rangetype.unwrap_or(RangeType::Rank);
    if limit != -1 && rangetype == RangeType::Rank {
        return Reply::err("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX");
    }
    if withscores && rangetype == RangeType::Lex {
        return Reply::err("ERR syntax error, WITHSCORES not supported in combination with BYLEX");
    }
    if rev && rangetype != RangeType::Rank {
        std::mem::swap(&mut minarg, &mut maxarg);
    }
    let spec = match rangetype {
        RangeType::Rank => RangeSpec::Rank(tri!(int_arg(minarg)), tri!(int_arg(maxarg))),
        RangeType::Score => RangeSpec::Score(tri!(parse_score_range(minarg, maxarg))),
        RangeType::Lex => RangeSpec::Lex(tri!(parse_lex_range(minarg, maxarg))),
    };
    let resp3 = cx.resp3;
    let Some(z) = tri!(cx.get_zset(key)) else {
        return if store { store_result(cx, a[1], ZSet::default(), "zrangestore") } else { empty_array() };
    };
    let items = range_items(z, &spec, rev, offset, limit);
    if !store {
        return scored_reply(resp3, items.into_iter(), withscores);
    }
    let mut out = ZSet::default();
    for (m, s) in items {
        out.insert(m, s);
    }
    store_result(cx, a[1], out, "zrangestore")
}

/// The elements a ZRANGE selects, in reply order.
fn range_items<'z>(z: &'z ZSet, spec: &'z RangeSpec, rev: bool, offset: i64, limit: i64) -> Vec<(&'z [u8], f64)> {
    let (skip, take) = match spec {
        RangeSpec::Rank(..) => (0, usize::MAX),
        // Redis skips a negative offset forever (so nothing is returned),
        // and a negative limit means no limit.
        _ if offset < 0 || (offset > 0 && offset as u64 >= z.len() as u64) => return Vec::new(),
        _ => (offset as usize, if limit < 0 { usize::MAX } else { limit as usize }),
    };
    match spec {
        RangeSpec::Rank(s, e) => {
            let Some((start, end)) = rank_range(*s, *e, z.len()) else {
                return Vec::new();
            };
            let first = if rev { z.len() - 1 - start } else { start };
            z.iter_from_rank(first, rev).take(end - start + 1).collect()
        }
        RangeSpec::Score(r) => z.range_by_score(r, rev).skip(skip).take(take).collect(),
        RangeSpec::Lex(r) => z.range_by_lex(r, rev).skip(skip).take(take).collect(),
    }
}

/// Stores a computed sorted set at `dst` (Redis' `setKey`: any old value
/// and its expiry go), or deletes `dst` when the result is empty. Replies
/// with the result's size.
fn store_result(cx: &mut Cx, dst: &[u8], z: ZSet, event: &'static str) -> Reply {
    let n = z.len();
    if n > 0 {
        cx.set_value(dst, Value::ZSet(z), 0);
        cx.notify(notify::ZSET, event, dst);
    } else if cx.delete(dst) {
        cx.notify(notify::GENERIC, "del", dst);
    }
    Reply::Int(n as i64)
}

// ----- ZPOPMIN / ZPOPMAX -------------------------------------------------------

fn zpopmin(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    zpop_generic(cx, a, false)
}

fn zpopmax(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    zpop_generic(cx, a, true)
}

fn zpop_generic(cx: &mut Cx, a: &[&[u8]], max: bool) -> Reply {
    if a.len() > 3 {
        return errors::SYNTAX;
    }
    let count = match a.get(2) {
        // getPositiveLongFromObjectOrReply: not a number is "out of range" too.
        Some(c) => match parse_i64(c) {
            Some(n) if n >= 0 => Some(n as u64),
            _ => return errors::MUST_BE_POSITIVE,
        },
        None => None,
    };
    // With a count, RESP3 clients get [member, score] pairs.
    let nested = cx.resp3 && count.is_some();
    let key = a[1];
    match tri!(peek_zset(cx, key)) {
        Some(z) if !z.is_empty() => {}
        _ => return empty_array(),
    }
    let count = count.unwrap_or(1);
    if count == 0 {
        return empty_array();
    }
    let n = usize::try_from(count).unwrap_or(usize::MAX);
    let (popped, emptied) =
        tri!(cx.zset_mut(key, false, |z| (z.pop(n, max), z.is_empty()))).unwrap_or((Vec::new(), false));
    cx.notify_removed(notify::ZSET, if max { "zpopmax" } else { "zpopmin" }, key, emptied);
    let mut out = Vec::with_capacity(popped.len() * 2);
    for (m, s) in popped {
        if nested {
            out.push(Reply::Array(vec![Reply::Bulk(m), Reply::Double(s)]));
        } else {
            out.push(Reply::Bulk(m));
            out.push(Reply::Double(s));
        }
    }
    Reply::Array(out)
}

/// The non-blocking core of BZPOPMIN/BZPOPMAX: pops from the first
/// non-empty key and answers `[key, member, score]`, or a null array when
/// every key is empty (the server then makes the client wait). Logged as
/// `ZPOPMIN key` / `ZPOPMAX key`.
fn bzpop_generic(cx: &mut Cx, a: &[&[u8]], max: bool) -> Reply {
    let last = a.len() - 1;
    tri!(super::list::parse_timeout(cx.now, a[last]));
    for &key in &a[1..last] {
        match tri!(peek_zset(cx, key)) {
            Some(z) if !z.is_empty() => {}
            _ => continue,
        }
        let (popped, emptied) =
            tri!(cx.zset_mut(key, false, |z| (z.pop(1, max), z.is_empty()))).unwrap_or((Vec::new(), false));
        let Some((m, score)) = popped.into_iter().next() else { continue };
        cx.notify_removed(notify::ZSET, if max { "zpopmax" } else { "zpopmin" }, key, emptied);
        let name: &[u8] = if max { b"ZPOPMAX" } else { b"ZPOPMIN" };
        cx.propagate(vec![name.to_vec(), key.to_vec()]);
        return Reply::Array(vec![Reply::bulk(key), Reply::Bulk(m), Reply::Double(score)]);
    }
    Reply::NilArray
}

fn bzpopmin(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    bzpop_generic(cx, a, false)
}

fn bzpopmax(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    bzpop_generic(cx, a, true)
}

// ----- ZRANDMEMBER -------------------------------------------------------------

fn zrandmember(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let mut rng = cx.rng.fork();
    if a.len() < 3 {
        return match tri!(cx.get_zset(a[1])).and_then(|z| z.random(&mut rng)) {
            Some((m, _)) => Reply::bulk(m),
            None => Reply::Nil,
        };
    }
    let l = tri!(int_arg(a[2]));
    if l == i64::MIN {
        return Reply::err(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        );
    }
    if a.len() > 4 || (a.len() == 4 && !eq_ic(a[3], "WITHSCORES")) {
        return errors::SYNTAX;
    }
    let withscores = a.len() == 4;
    if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
        return Reply::err("ERR value is out of range");
    }
    let resp3 = cx.resp3;
    let Some(z) = tri!(cx.get_zset(a[1])) else {
        return empty_array();
    };
    let (count, uniq) = (l.unsigned_abs(), l >= 0);
    if count == 0 || z.is_empty() {
        return empty_array();
    }
    let size = z.len() as u64;
    // Case 1: repetitions allowed (or a single pick): sample every time.
    // Redis would build a reply of any size; the reply is built in memory
    // here, so the same cap as SRANDMEMBER applies.
    if !uniq && count > MAX_REPEATED_SAMPLE {
        return Reply::error(format!(
            "ERR count is out of range, at most {MAX_REPEATED_SAMPLE} members can be returned at once"
        ));
    }
    if !uniq || count == 1 {
        let picks = (0..count).filter_map(|_| z.random(&mut rng));
        return scored_reply(resp3, picks, withscores);
    }
    // Case 2: the whole set.
    if count >= size {
        return scored_reply(resp3, z.iter(), withscores);
    }
    let count = count as usize;
    // Case 3: most of the set: drop random elements from a copy.
    if count * 3 > z.len() {
        let mut all: Vec<(&[u8], f64)> = z.iter().collect();
        while all.len() > count {
            let i = rng.usize(..all.len());
            all.swap_remove(i);
        }
        return scored_reply(resp3, all.into_iter(), withscores);
    }
    // Case 4: a few: sample until enough distinct members.
    let mut seen: HashSet<&[u8]> = HashSet::with_capacity(count);
    let mut picks = Vec::with_capacity(count);
    while picks.len() < count {
        if let Some((m, s)) = z.random(&mut rng) {
            if seen.insert(m) {
                picks.push((m, s));
            }
        }
    }
    scored_reply(resp3, picks.into_iter(), withscores)
}

// ----- ZUNION / ZINTER / ZDIFF (and STORE) -------------------------------------

/// Lock positions for `ZxxxSTORE dst numkeys key...`: the destination and
/// the keys numkeys announces (only those present; a malformed numkeys is
/// answered by the handler).
fn store_op_keys(a: &[&[u8]]) -> LockSet {
    numkeys_positions(a, 2, true)
}

/// Lock positions for `Zxxx numkeys key...`.
fn op_keys(a: &[&[u8]]) -> LockSet {
    numkeys_positions(a, 1, false)
}

fn numkeys_positions(a: &[&[u8]], idx: usize, dst: bool) -> LockSet {
    let mut out: SmallVec<[usize; 4]> = SmallVec::new();
    if dst && a.len() > 1 {
        out.push(1);
    }
    if let Some(n) = a.get(idx).and_then(|n| parse_i64(n)).filter(|&n| n > 0) {
        let end = (idx + 1).saturating_add(usize::try_from(n).unwrap_or(usize::MAX)).min(a.len());
        out.extend(idx + 1..end);
    }
    LockSet::Args(out)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// Redis' `zunionInterAggregate`: a sum of +inf and -inf is 0, and a NaN
/// value never wins a MIN or MAX.
fn aggregate(target: &mut f64, v: f64, agg: Aggregate) {
    match agg {
        Aggregate::Sum => {
            *target += v;
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if v < *target {
                *target = v;
            }
        }
        Aggregate::Max => {
            if v > *target {
                *target = v;
            }
        }
    }
}

/// An input of a set operation: sorted sets, and plain sets with score 1.
enum Src<'a> {
    Missing,
    ZSet(&'a ZSet),
    Set(&'a Set),
}

impl Src<'_> {
    fn len(&self) -> usize {
        match self {
            Src::Missing => 0,
            Src::ZSet(z) => z.len(),
            Src::Set(s) => s.len(),
        }
    }

    fn score(&self, m: &[u8]) -> Option<f64> {
        match self {
            Src::Missing => None,
            Src::ZSet(z) => z.score(m),
            Src::Set(s) => s.contains(m).then_some(1.0),
        }
    }

    fn for_each(&self, mut f: impl FnMut(&[u8], f64)) {
        match self {
            Src::Missing => {}
            Src::ZSet(z) => z.iter().for_each(|(m, s)| f(m, s)),
            Src::Set(s) => s.iter().for_each(|m| f(m, 1.0)),
        }
    }
}

fn src_of(obj: Option<ObjRef<'_>>) -> Result<Src<'_>, Reply> {
    match obj {
        None => Ok(Src::Missing),
        Some(ObjRef::ZSet(z)) => Ok(Src::ZSet(z)),
        Some(ObjRef::Set(s)) => Ok(Src::Set(s)),
        Some(_) => Err(errors::WRONGTYPE),
    }
}

/// Re-reads an input already type-checked by [`zsetop`].
fn peek_src<'c>(cx: &'c mut Cx, key: &[u8]) -> Src<'c> {
    src_of(cx.peek(key).map(|e| e.obj())).unwrap_or(Src::Missing)
}

fn zunionstore(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    zsetop(cx, a, SetOp::Union, true, "zunionstore")
}

fn zinterstore(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    zsetop(cx, a, SetOp::Inter, true, "zinterstore")
}

fn zdiffstore(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    zsetop(cx, a, SetOp::Diff, true, "zdiffstore")
}

fn zunion(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    zsetop(cx, a, SetOp::Union, false, "zunion")
}

fn zinter(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    zsetop(cx, a, SetOp::Inter, false, "zinter")
}

fn zdiff(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    zsetop(cx, a, SetOp::Diff, false, "zdiff")
}

/// Redis' `zunionInterDiffGenericCommand`.
fn zsetop(cx: &mut Cx, a: &[&[u8]], op: SetOp, store: bool, name: &'static str) -> Reply {
    let nk = if store { 2 } else { 1 };
    let setnum = tri!(int_arg(a[nk]));
    if setnum < 1 {
        return Reply::error(format!("ERR at least 1 input key is needed for '{name}' command"));
    }
    if setnum > (a.len() - (nk + 1)) as i64 {
        return errors::SYNTAX;
    }
    let setnum = setnum as usize;
    let keys = &a[nk + 1..nk + 1 + setnum];
    let mut lens = Vec::with_capacity(setnum);
    for k in keys {
        // Like lookupKeyRead (ZUNION…) / lookupKeyWrite (…STORE).
        let obj = if store { cx.peek(k).map(|e| e.obj()) } else { cx.lookup(k) };
        lens.push(tri!(src_of(obj)).len());
    }
    let mut weights = vec![1.0f64; setnum];
    let mut agg = Aggregate::Sum;
    let mut withscores = false;
    let mut j = nk + 1 + setnum;
    while j < a.len() {
        let remaining = a.len() - j;
        if op != SetOp::Diff && remaining > setnum && eq_ic(a[j], "WEIGHTS") {
            for (w, arg) in weights.iter_mut().zip(&a[j + 1..=j + setnum]) {
                *w = tri!(parse_f64(arg).ok_or(Reply::err("ERR weight value is not a float")));
            }
            j += 1 + setnum;
        } else if op != SetOp::Diff && remaining >= 2 && eq_ic(a[j], "AGGREGATE") {
            agg = if eq_ic(a[j + 1], "SUM") {
                Aggregate::Sum
            } else if eq_ic(a[j + 1], "MIN") {
                Aggregate::Min
            } else if eq_ic(a[j + 1], "MAX") {
                Aggregate::Max
            } else {
                return errors::SYNTAX;
            };
            j += 2;
        } else if !store && eq_ic(a[j], "WITHSCORES") {
            withscores = true;
            j += 1;
        } else {
            return errors::SYNTAX;
        }
    }

    let mut result = ZSet::default();
    match op {
        SetOp::Union => {
            // Smallest inputs first, as Redis sorts them: the order in which
            // scores are summed is part of the result.
            let mut order: Vec<usize> = (0..setnum).collect();
            order.sort_by_key(|&i| lens[i]);
            let mut acc: HashMap<Vec<u8>, f64> = HashMap::new();
            for &i in &order {
                if lens[i] == 0 {
                    continue;
                }
                let w = weights[i];
                peek_src(cx, keys[i]).for_each(|m, s| {
                    let mut v = w * s;
                    if v.is_nan() {
                        v = 0.0;
                    }
                    match acc.get_mut(m) {
                        Some(t) => aggregate(t, v, agg),
                        None => {
                            acc.insert(m.to_vec(), v);
                        }
                    }
                });
            }
            for (m, s) in acc {
                result.insert(&m, s);
            }
        }
        SetOp::Inter => {
            let mut order: Vec<usize> = (0..setnum).collect();
            order.sort_by_key(|&i| lens[i]);
            if lens[order[0]] > 0 {
                let w0 = weights[order[0]];
                let mut cands: Vec<(Vec<u8>, f64)> = Vec::with_capacity(lens[order[0]]);
                peek_src(cx, keys[order[0]]).for_each(|m, s| {
                    let v = w0 * s;
                    cands.push((m.to_vec(), if v.is_nan() { 0.0 } else { v }));
                });
                for &i in &order[1..] {
                    let w = weights[i];
                    let src = peek_src(cx, keys[i]);
                    cands.retain_mut(|(m, sc)| match src.score(m) {
                        Some(v) => {
                            aggregate(sc, v * w, agg);
                            true
                        }
                        None => false,
                    });
                }
                for (m, s) in cands {
                    result.insert(&m, s);
                }
            }
        }
        SetOp::Diff => {
            if lens[0] > 0 {
                let mut cands: Vec<(Vec<u8>, f64)> = Vec::with_capacity(lens[0]);
                peek_src(cx, keys[0]).for_each(|m, s| cands.push((m.to_vec(), s)));
                for i in 1..setnum {
                    if lens[i] == 0 {
                        continue;
                    }
                    let src = peek_src(cx, keys[i]);
                    cands.retain(|(m, _)| src.score(m).is_none());
                }
                for (m, s) in cands {
                    result.insert(&m, s);
                }
            }
        }
    }
    if store {
        let event = match op {
            SetOp::Union => "zunionstore",
            SetOp::Inter => "zinterstore",
            SetOp::Diff => "zdiffstore",
        };
        return store_result(cx, a[1], result, event);
    }
    scored_reply(cx.resp3, result.iter(), withscores)
}

// ----- ZSCAN -------------------------------------------------------------------

fn zscan(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let Some(mut cursor) = parse_cursor(a[2]) else {
        return Reply::err("ERR invalid cursor");
    };
    let Some(z) = tri!(cx.get_zset(a[1])) else {
        return Reply::Array(vec![Reply::bulk(b"0"), empty_array()]);
    };
    let mut count = 10i64;
    let mut pattern: Option<&[u8]> = None;
    let mut i = 3;
    while i < a.len() {
        let left = a.len() - i;
        if eq_ic(a[i], "COUNT") && left >= 2 {
            count = tri!(int_arg(a[i + 1]));
            if count < 1 {
                return errors::SYNTAX;
            }
            i += 2;
        } else if eq_ic(a[i], "MATCH") && left >= 2 {
            pattern = Some(a[i + 1]).filter(|p| *p != b"*");
            i += 2;
        } else {
            return errors::SYNTAX;
        }
    }
    let mut found: Vec<(Vec<u8>, f64)> = Vec::new();
    // Redis' loop: `while (cursor && maxiterations-- && listLength(keys) <
    // count)`, where the list holds both members and scores.
    let mut maxiterations = count.saturating_mul(10);
    loop {
        cursor = z.scan(cursor, |m, s| found.push((m.to_vec(), s)));
        if cursor == 0 || maxiterations == 0 {
            break;
        }
        maxiterations -= 1;
        if (found.len() as i64).saturating_mul(2) >= count {
            break;
        }
    }
    let mut out = Vec::with_capacity(found.len() * 2);
    for (m, s) in found {
        if pattern.is_some_and(|p| !glob_match(p, &m, false)) {
            continue;
        }
        out.push(Reply::Bulk(m));
        out.push(Reply::Bulk(format_g17(s).into_bytes()));
    }
    Reply::Array(vec![Reply::Bulk(cursor.to_string().into_bytes()), Reply::Array(out)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Record;
    use crate::testutil::{bulk, bulks, err, T};

    const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

    fn d(x: f64) -> Reply {
        Reply::Double(x)
    }

    fn arr(v: Vec<Reply>) -> Reply {
        Reply::Array(v)
    }

    fn empty() -> Reply {
        Reply::Array(vec![])
    }

    /// A flat WITHSCORES reply from (member, score) pairs.
    fn scored(pairs: &[(&str, f64)]) -> Reply {
        arr(pairs.iter().flat_map(|(m, s)| [bulk(m), d(*s)]).collect())
    }

    /// A RESP3 WITHSCORES reply from (member, score) pairs.
    fn pairs3(pairs: &[(&str, f64)]) -> Reply {
        arr(pairs.iter().map(|(m, s)| arr(vec![bulk(m), d(*s)])).collect())
    }

    /// Runs a command and returns its reply and its keyspace events as
    /// `event:key`.
    fn ev(t: &mut T, args: &[&str]) -> (Reply, Vec<String>) {
        let argv: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let log = &mut t.log;
        let mut journal = |r: &Record| {
            log.push(r.clone());
            Ok(())
        };
        let out = t.engine.execute_with(&mut t.session, &argv, &mut journal);
        let events = out.events.iter().map(|e| format!("{}:{}", e.event, String::from_utf8_lossy(&e.key))).collect();
        (out.reply, events)
    }

    fn setup(t: &mut T) {
        assert_eq!(t.run(&["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"]), Reply::Int(5));
        assert_eq!(t.run(&["ZADD", "l", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e"]), Reply::Int(5));
        assert_eq!(t.run(&["SET", "str", "v"]), Reply::OK);
    }

    #[test]
    fn zadd_options() {
        let mut t = T::new();
        assert_eq!(t.run(&["ZADD", "z", "1", "a", "2", "b"]), Reply::Int(2));
        assert_eq!(t.run(&["ZADD", "z", "3", "a"]), Reply::Int(0));
        assert_eq!(t.run(&["ZSCORE", "z", "a"]), d(3.0));
        assert_eq!(t.run(&["ZADD", "z", "CH", "4", "a", "5", "c", "2", "b"]), Reply::Int(2));
        assert_eq!(t.run(&["ZCARD", "z"]), Reply::Int(3));
        // NX only adds.
        assert_eq!(t.run(&["zadd", "z", "nx", "10", "a", "1", "d"]), Reply::Int(1));
        assert_eq!(t.run(&["ZSCORE", "z", "a"]), d(4.0));
        // XX only updates.
        assert_eq!(t.run(&["ZADD", "z", "XX", "CH", "10", "a", "1", "e"]), Reply::Int(1));
        assert_eq!(t.run(&["ZSCORE", "z", "a"]), d(10.0));
        assert_eq!(t.run(&["ZSCORE", "z", "e"]), Reply::Nil);
        assert_eq!(t.run(&["ZADD", "nokey", "XX", "1", "a"]), Reply::Int(0));
        assert_eq!(t.run(&["ZADD", "nokey", "XX", "INCR", "1", "a"]), Reply::Nil);
        assert_eq!(t.run(&["EXISTS", "nokey"]), Reply::Int(0));
        // GT / LT update only in one direction, but still add.
        assert_eq!(t.run(&["ZADD", "z", "GT", "CH", "5", "a"]), Reply::Int(0));
        assert_eq!(t.run(&["ZADD", "z", "GT", "CH", "20", "a"]), Reply::Int(1));
        assert_eq!(t.run(&["ZADD", "z", "LT", "CH", "30", "a"]), Reply::Int(0));
        assert_eq!(t.run(&["ZADD", "z", "LT", "CH", "1", "a"]), Reply::Int(1));
        assert_eq!(t.run(&["ZADD", "z", "GT", "7", "f"]), Reply::Int(1));
        // INCR.
        assert_eq!(t.run(&["ZADD", "z", "INCR", "2.5", "a"]), d(3.5));
        assert_eq!(t.run(&["ZADD", "z", "INCR", "NX", "1", "a"]), Reply::Nil);
        assert_eq!(t.run(&["ZADD", "z", "INCR", "GT", "-1", "a"]), Reply::Nil);
        assert_eq!(t.run(&["ZADD", "z", "INCR", "LT", "0", "a"]), Reply::Nil);
        assert_eq!(t.run(&["ZADD", "z", "INCR", "1", "new"]), d(1.0));
        assert_eq!(t.run(&["ZADD", "z", "INCR", "0", "new"]), d(1.0));
        // A member given twice: added, then updated.
        assert_eq!(t.run(&["ZADD", "dup", "CH", "1", "x", "2", "x"]), Reply::Int(2));
        assert_eq!(t.run(&["ZSCORE", "dup", "x"]), d(2.0));
        assert_eq!(t.run(&["ZADD", "dup", "NX", "1", "y", "5", "y"]), Reply::Int(1));
        assert_eq!(t.run(&["ZSCORE", "dup", "y"]), d(1.0));
        // Scores: inf, exponents, -0.
        assert_eq!(t.run(&["ZADD", "f", "-inf", "lo", "+inf", "hi", "1e3", "k", "-0", "z"]), Reply::Int(4));
        assert_eq!(t.run(&["ZRANGE", "f", "0", "-1"]), bulks(&["lo", "z", "k", "hi"]));
        assert_eq!(t.run(&["ZSCORE", "f", "hi"]), d(f64::INFINITY));
        assert_eq!(t.run(&["ZSCORE", "f", "k"]), d(1000.0));
        t.check_replay();
    }

    #[test]
    fn zadd_errors_change_nothing() {
        let mut t = T::new();
        t.run(&["SET", "str", "v"]);
        t.run(&["ZADD", "z", "1", "a"]);
        assert_eq!(
            t.run(&["ZADD", "z", "NX", "XX", "1", "a"]),
            err("ERR XX and NX options at the same time are not compatible")
        );
        let gtlt = err("ERR GT, LT, and/or NX options at the same time are not compatible");
        assert_eq!(t.run(&["ZADD", "z", "GT", "LT", "1", "a"]), gtlt);
        assert_eq!(t.run(&["ZADD", "z", "NX", "GT", "1", "a"]), gtlt);
        assert_eq!(t.run(&["ZADD", "z", "LT", "NX", "1", "a"]), gtlt);
        assert_eq!(
            t.run(&["ZADD", "z", "INCR", "1", "a", "2", "b"]),
            err("ERR INCR option supports a single increment-element pair")
        );
        assert_eq!(t.run(&["ZADD", "z", "1", "a", "2"]), err("ERR syntax error"));
        assert_eq!(t.run(&["ZADD", "z", "NX", "1"]), err("ERR syntax error"));
        assert_eq!(t.run(&["ZADD", "z", "NX"]), err("ERR wrong number of arguments for 'zadd' command"));
        assert_eq!(t.run(&["ZADD", "z", "2", "b", "x", "c"]), err("ERR value is not a valid float"));
        assert_eq!(t.run(&["ZADD", "z", "nan", "c"]), err("ERR value is not a valid float"));
        assert_eq!(t.run(&["ZCARD", "z"]), Reply::Int(1));
        // Argument errors come before the type check.
        assert_eq!(t.run(&["ZADD", "str", "x", "a"]), err("ERR value is not a valid float"));
        assert_eq!(t.run(&["ZADD", "str", "1", "a"]), err(WRONGTYPE));
        assert_eq!(t.run(&["ZINCRBY", "str", "1", "a"]), err(WRONGTYPE));
        assert_eq!(t.run(&["ZINCRBY", "z", "one", "a"]), err("ERR value is not a valid float"));
        // inf + -inf.
        t.run(&["ZADD", "n", "inf", "m"]);
        let nan = err("ERR resulting score is not a number (NaN)");
        assert_eq!(t.run(&["ZADD", "n", "INCR", "-inf", "m"]), nan);
        assert_eq!(t.run(&["ZINCRBY", "n", "-inf", "m"]), nan);
        assert_eq!(t.run(&["ZSCORE", "n", "m"]), d(f64::INFINITY));
        assert_eq!(t.run(&["ZINCRBY", "z", "2", "a"]), d(3.0));
        assert_eq!(t.run(&["ZINCRBY", "z", "-1.5", "new"]), d(-1.5));
        assert_eq!(t.run(&["ZINCRBY", "z"]), err("ERR wrong number of arguments for 'zincrby' command"));
        t.check_replay();
    }

    #[test]
    fn noop_writes_are_not_logged() {
        let mut t = T::new();
        t.run(&["ZADD", "z", "1", "a", "2", "b"]);
        let n = t.log.len();
        assert_eq!(t.run(&["ZADD", "z", "1", "a"]), Reply::Int(0));
        assert_eq!(t.run(&["ZADD", "z", "NX", "5", "a"]), Reply::Int(0));
        assert_eq!(t.run(&["ZADD", "z", "GT", "0", "a"]), Reply::Int(0));
        assert_eq!(t.run(&["ZREM", "z", "nope"]), Reply::Int(0));
        assert_eq!(t.run(&["ZREMRANGEBYSCORE", "z", "10", "20"]), Reply::Int(0));
        assert_eq!(t.run(&["ZREMRANGEBYRANK", "z", "5", "9"]), Reply::Int(0));
        assert_eq!(t.run(&["ZREMRANGEBYLEX", "z", "[x", "[y"]), Reply::Int(0));
        assert_eq!(t.run(&["ZPOPMIN", "nokey"]), empty());
        assert_eq!(t.run(&["ZINTERSTORE", "out", "2", "z", "nokey"]), Reply::Int(0));
        assert!(!t.run(&["ZRANDMEMBER", "z", "-5", "WITHSCORES"]).is_error());
        assert_eq!(t.log.len(), n);
        t.check_replay();
    }

    #[test]
    fn zrem_zcard_zscore_zmscore() {
        let mut t = T::new();
        setup(&mut t);
        assert_eq!(t.run(&["ZREM", "z", "a", "b", "nope", "a"]), Reply::Int(2));
        assert_eq!(t.run(&["ZCARD", "z"]), Reply::Int(3));
        assert_eq!(t.run(&["ZCARD", "nokey"]), Reply::Int(0));
        assert_eq!(t.run(&["ZREM", "nokey", "a"]), Reply::Int(0));
        assert_eq!(t.run(&["ZREM", "z", "c", "d", "e"]), Reply::Int(3));
        assert_eq!(t.run(&["EXISTS", "z"]), Reply::Int(0));
        assert_eq!(t.run(&["ZSCORE", "l", "a"]), d(0.0));
        assert_eq!(t.run(&["ZSCORE", "l", "x"]), Reply::Nil);
        assert_eq!(t.run(&["ZSCORE", "nokey", "x"]), Reply::Nil);
        assert_eq!(t.run(&["ZMSCORE", "l", "a", "x", "b"]), arr(vec![d(0.0), Reply::Nil, d(0.0)]));
        assert_eq!(t.run(&["ZMSCORE", "nokey", "a", "b"]), arr(vec![Reply::Nil, Reply::Nil]));
        for c in [&["ZREM", "str", "a"][..], &["ZCARD", "str"], &["ZSCORE", "str", "a"], &["ZMSCORE", "str", "a"]] {
            assert_eq!(t.run(c), err(WRONGTYPE), "{c:?}");
        }
        assert_eq!(t.run(&["ZMSCORE", "l"]), err("ERR wrong number of arguments for 'zmscore' command"));
        t.check_replay();
    }

    #[test]
    fn counts_and_ranks() {
        let mut t = T::new();
        setup(&mut t);
        assert_eq!(t.run(&["ZCOUNT", "z", "2", "4"]), Reply::Int(3));
        assert_eq!(t.run(&["ZCOUNT", "z", "(2", "(4"]), Reply::Int(1));
        assert_eq!(t.run(&["ZCOUNT", "z", "-inf", "+inf"]), Reply::Int(5));
        assert_eq!(t.run(&["ZCOUNT", "z", "4", "2"]), Reply::Int(0));
        assert_eq!(t.run(&["ZCOUNT", "z", "(3", "3"]), Reply::Int(0));
        // zslParseRange's strtod: leading spaces, and "" or "(" mean 0.
        assert_eq!(t.run(&["ZCOUNT", "z", " 2", "3"]), Reply::Int(2));
        assert_eq!(t.run(&["ZCOUNT", "z", "(", "5"]), Reply::Int(5));
        assert_eq!(t.run(&["ZCOUNT", "z", "", ""]), Reply::Int(0));
        assert_eq!(t.run(&["ZCOUNT", "z", "1x", "3"]), err("ERR min or max is not a float"));
        assert_eq!(t.run(&["ZCOUNT", "z", "1", "nan"]), err("ERR min or max is not a float"));
        assert_eq!(t.run(&["ZCOUNT", "str", "a", "3"]), err("ERR min or max is not a float"));
        assert_eq!(t.run(&["ZCOUNT", "str", "1", "3"]), err(WRONGTYPE));
        assert_eq!(t.run(&["ZCOUNT", "nokey", "1", "3"]), Reply::Int(0));
        assert_eq!(t.run(&["ZLEXCOUNT", "l", "-", "+"]), Reply::Int(5));
        assert_eq!(t.run(&["ZLEXCOUNT", "l", "[b", "(d"]), Reply::Int(2));
        assert_eq!(t.run(&["ZLEXCOUNT", "l", "(b", "[b"]), Reply::Int(0));
        assert_eq!(t.run(&["ZLEXCOUNT", "l", "+", "-"]), Reply::Int(0));
        assert_eq!(t.run(&["ZLEXCOUNT", "l", "-", "-"]), Reply::Int(0));
        assert_eq!(t.run(&["ZLEXCOUNT", "l", "[", "+"]), Reply::Int(5));
        let lexerr = err("ERR min or max not valid string range item");
        assert_eq!(t.run(&["ZLEXCOUNT", "l", "a", "+"]), lexerr);
        assert_eq!(t.run(&["ZLEXCOUNT", "l", "-", "++"]), lexerr);
        assert_eq!(t.run(&["ZLEXCOUNT", "l", "", "+"]), lexerr);
        assert_eq!(t.run(&["ZLEXCOUNT", "str", "x", "+"]), lexerr);
        assert_eq!(t.run(&["ZLEXCOUNT", "str", "-", "+"]), err(WRONGTYPE));
        assert_eq!(t.run(&["ZLEXCOUNT", "nokey", "-", "+"]), Reply::Int(0));
        assert_eq!(t.run(&["ZRANK", "z", "a"]), Reply::Int(0));
        assert_eq!(t.run(&["ZRANK", "z", "d"]), Reply::Int(3));
        assert_eq!(t.run(&["ZREVRANK", "z", "d"]), Reply::Int(1));
        assert_eq!(t.run(&["ZREVRANK", "z", "e"]), Reply::Int(0));
        assert_eq!(t.run(&["ZRANK", "z", "x"]), Reply::Nil);
        assert_eq!(t.run(&["ZREVRANK", "nokey", "x"]), Reply::Nil);
        assert_eq!(t.run(&["ZRANK", "str", "x"]), err(WRONGTYPE));
        assert_eq!(t.run(&["ZREVRANK", "str", "x"]), err(WRONGTYPE));
        assert_eq!(t.run(&["ZRANK", "z", "a", "WITHSCORE"]), err("ERR wrong number of arguments for 'zrank' command"));
    }

    #[test]
    fn zrange_by_rank() {
        let mut t = T::new();
        setup(&mut t);
        assert_eq!(t.run(&["ZRANGE", "z", "0", "-1"]), bulks(&["a", "b", "c", "d", "e"]));
        assert_eq!(t.run(&["ZRANGE", "z", "1", "2"]), bulks(&["b", "c"]));
        assert_eq!(t.run(&["ZRANGE", "z", "-2", "-1"]), bulks(&["d", "e"]));
        assert_eq!(t.run(&["ZRANGE", "z", "-100", "100"]), bulks(&["a", "b", "c", "d", "e"]));
        assert_eq!(t.run(&["ZRANGE", "z", "3", "1"]), empty());
        assert_eq!(t.run(&["ZRANGE", "z", "5", "10"]), empty());
        assert_eq!(t.run(&["ZRANGE", "z", "0", "1", "WITHSCORES"]), scored(&[("a", 1.0), ("b", 2.0)]));
        assert_eq!(t.run(&["ZRANGE", "z", "0", "1", "REV"]), bulks(&["e", "d"]));
        assert_eq!(
            t.run(&["ZRANGE", "z", "1", "-1", "rev", "withscores"]),
            scored(&[("d", 4.0), ("c", 3.0), ("b", 2.0), ("a", 1.0)])
        );
        assert_eq!(t.run(&["ZREVRANGE", "z", "0", "1"]), bulks(&["e", "d"]));
        assert_eq!(t.run(&["ZREVRANGE", "z", "-1", "-1", "WITHSCORES"]), scored(&[("a", 1.0)]));
        assert_eq!(t.run(&["ZRANGE", "nokey", "0", "-1"]), empty());
        assert_eq!(t.run(&["ZRANGE", "str", "0", "-1"]), err(WRONGTYPE));
        assert_eq!(t.run(&["ZRANGE", "z", "a", "1"]), err("ERR value is not an integer or out of range"));
        assert_eq!(
            t.run(&["ZRANGE", "z", "0", "1", "LIMIT", "0", "1"]),
            err("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
        );
        assert_eq!(
            t.run(&["ZREVRANGE", "z", "0", "1", "LIMIT", "0", "1"]),
            err("ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX")
        );
        assert_eq!(t.run(&["ZRANGE", "z", "0", "1", "REV", "REV"]), err("ERR syntax error"));
        assert_eq!(t.run(&["ZRANGE", "z", "0", "1", "BYSCORE", "BYLEX"]), err("ERR syntax error"));
        assert_eq!(t.run(&["ZRANGE", "z", "0", "1", "LIMIT", "0"]), err("ERR syntax error"));
        assert_eq!(t.run(&["ZRANGE", "z", "0", "1", "FOO"]), err("ERR syntax error"));
        assert_eq!(t.run(&["ZREVRANGE", "z", "0", "1", "REV"]), err("ERR syntax error"));
        assert_eq!(t.run(&["ZREVRANGE", "z", "0", "1", "BYSCORE"]), err("ERR syntax error"));
        assert_eq!(
            t.run(&["ZRANGE", "z", "0", "1", "LIMIT", "x", "1", "BYSCORE"]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(t.run(&["ZRANGE", "z", "0"]), err("ERR wrong number of arguments for 'zrange' command"));
    }

    #[test]
    fn zrange_by_score_and_lex() {
        let mut t = T::new();
        setup(&mut t);
        assert_eq!(t.run(&["ZRANGE", "z", "2", "4", "BYSCORE"]), bulks(&["b", "c", "d"]));
        assert_eq!(t.run(&["ZRANGE", "z", "(2", "4", "BYSCORE", "WITHSCORES"]), scored(&[("c", 3.0), ("d", 4.0)]));
        assert_eq!(t.run(&["ZRANGE", "z", "4", "2", "BYSCORE", "REV"]), bulks(&["d", "c", "b"]));
        assert_eq!(t.run(&["ZRANGE", "z", "2", "4", "BYSCORE", "REV"]), empty());
        assert_eq!(t.run(&["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "1", "2"]), bulks(&["b", "c"]));
        assert_eq!(
            t.run(&["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "1", "-1"]),
            bulks(&["b", "c", "d", "e"])
        );
        assert_eq!(t.run(&["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "-1", "2"]), empty());
        assert_eq!(t.run(&["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "5", "2"]), empty());
        assert_eq!(t.run(&["ZRANGE", "z", "-inf", "+inf", "BYSCORE", "LIMIT", "0", "0"]), empty());
        assert_eq!(t.run(&["ZRANGE", "z", "+inf", "-inf", "BYSCORE", "REV", "LIMIT", "1", "2"]), bulks(&["d", "c"]));
        assert_eq!(t.run(&["ZRANGE", "z", "a", "2", "BYSCORE"]), err("ERR min or max is not a float"));
        assert_eq!(t.run(&["ZRANGEBYSCORE", "z", "(1", "3", "WITHSCORES"]), scored(&[("b", 2.0), ("c", 3.0)]));
        assert_eq!(t.run(&["ZRANGEBYSCORE", "z", "-inf", "+inf", "LIMIT", "2", "2"]), bulks(&["c", "d"]));
        assert_eq!(t.run(&["ZREVRANGEBYSCORE", "z", "4", "(2"]), bulks(&["d", "c"]));
        assert_eq!(t.run(&["ZREVRANGEBYSCORE", "z", "+inf", "-inf", "LIMIT", "0", "1", "WITHSCORES"]), {
            scored(&[("e", 5.0)])
        });
        assert_eq!(t.run(&["ZRANGEBYSCORE", "z", "1", "2", "REV"]), err("ERR syntax error"));
        assert_eq!(t.run(&["ZRANGEBYSCORE", "z", "1", "x"]), err("ERR min or max is not a float"));
        assert_eq!(t.run(&["ZRANGEBYSCORE", "str", "1", "2"]), err(WRONGTYPE));
        assert_eq!(t.run(&["ZRANGEBYSCORE", "nokey", "1", "2"]), empty());

        assert_eq!(t.run(&["ZRANGE", "l", "[b", "(d", "BYLEX"]), bulks(&["b", "c"]));
        assert_eq!(t.run(&["ZRANGE", "l", "(d", "[b", "BYLEX", "REV"]), bulks(&["c", "b"]));
        assert_eq!(t.run(&["ZRANGE", "l", "-", "+", "BYLEX", "LIMIT", "1", "2"]), bulks(&["b", "c"]));
        assert_eq!(t.run(&["ZRANGE", "l", "+", "-", "BYLEX", "REV", "LIMIT", "0", "2"]), bulks(&["e", "d"]));
        assert_eq!(
            t.run(&["ZRANGE", "l", "-", "+", "BYLEX", "WITHSCORES"]),
            err("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
        );
        assert_eq!(t.run(&["ZRANGE", "l", "x", "+", "BYLEX"]), err("ERR min or max not valid string range item"));
        assert_eq!(t.run(&["ZRANGEBYLEX", "l", "[b", "[c"]), bulks(&["b", "c"]));
        assert_eq!(t.run(&["ZRANGEBYLEX", "l", "(a", "+", "LIMIT", "1", "10"]), bulks(&["c", "d", "e"]));
        assert_eq!(t.run(&["ZREVRANGEBYLEX", "l", "[c", "[b"]), bulks(&["c", "b"]));
        assert_eq!(t.run(&["ZREVRANGEBYLEX", "l", "[b", "[c"]), empty());
        assert_eq!(t.run(&["ZRANGEBYLEX", "l", "b", "c"]), err("ERR min or max not valid string range item"));
        assert_eq!(
            t.run(&["ZRANGEBYLEX", "l", "-", "+", "WITHSCORES"]),
            err("ERR syntax error, WITHSCORES not supported in combination with BYLEX")
        );
        assert_eq!(t.run(&["ZRANGEBYLEX", "str", "-", "+"]), err(WRONGTYPE));
    }

    #[test]
    fn resp3_shapes() {
        let mut t = T::new();
        setup(&mut t);
        t.session.set_resp3(true);
        assert_eq!(t.run(&["ZRANGE", "z", "0", "1", "WITHSCORES"]), pairs3(&[("a", 1.0), ("b", 2.0)]));
        assert_eq!(t.run(&["ZRANGE", "z", "0", "1"]), bulks(&["a", "b"]));
        assert_eq!(
            t.run(&["ZUNION", "1", "z", "WITHSCORES"]),
            pairs3(&[("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 4.0), ("e", 5.0)])
        );
        assert_eq!(t.run(&["ZPOPMIN", "z"]), scored(&[("a", 1.0)]));
        assert_eq!(t.run(&["ZPOPMIN", "z", "1"]), pairs3(&[("b", 2.0)]));
        assert_eq!(t.run(&["ZPOPMAX", "z", "2"]), pairs3(&[("e", 5.0), ("d", 4.0)]));
        assert_eq!(t.run(&["ZRANDMEMBER", "z", "1", "WITHSCORES"]), pairs3(&[("c", 3.0)]));
        assert_eq!(t.run(&["ZRANDMEMBER", "z", "-2", "WITHSCORES"]), pairs3(&[("c", 3.0), ("c", 3.0)]));
        t.check_replay();
    }

    #[test]
    fn zrangestore() {
        let mut t = T::new();
        setup(&mut t);
        let (r, e) = ev(&mut t, &["ZRANGESTORE", "dst", "z", "0", "1"]);
        assert_eq!(r, Reply::Int(2));
        assert!(e.is_empty(), "notifications are off: {e:?}");
        assert_eq!(t.run(&["ZRANGE", "dst", "0", "-1", "WITHSCORES"]), scored(&[("a", 1.0), ("b", 2.0)]));
        assert_eq!(t.run(&["ZRANGESTORE", "dst", "z", "5", "2", "BYSCORE", "REV", "LIMIT", "1", "2"]), Reply::Int(2));
        assert_eq!(t.run(&["ZRANGE", "dst", "0", "-1"]), bulks(&["c", "d"]));
        assert_eq!(t.run(&["ZRANGESTORE", "dst", "l", "[b", "[c", "BYLEX"]), Reply::Int(2));
        assert_eq!(t.run(&["ZRANGE", "dst", "0", "-1"]), bulks(&["b", "c"]));
        // The destination's old value and expiry are replaced.
        t.run(&["SET", "s2", "v"]);
        t.run(&["EXPIRE", "s2", "100"]);
        assert_eq!(t.run(&["ZRANGESTORE", "s2", "z", "0", "0"]), Reply::Int(1));
        assert_eq!(t.run(&["TTL", "s2"]), Reply::Int(-1));
        assert_eq!(t.run(&["ZRANGE", "s2", "0", "-1"]), bulks(&["a"]));
        // Empty results delete the destination.
        assert_eq!(t.run(&["ZRANGESTORE", "dst", "z", "10", "20"]), Reply::Int(0));
        assert_eq!(t.run(&["EXISTS", "dst"]), Reply::Int(0));
        t.run(&["ZADD", "dst", "1", "x"]);
        assert_eq!(t.run(&["ZRANGESTORE", "dst", "nokey", "0", "-1"]), Reply::Int(0));
        assert_eq!(t.run(&["EXISTS", "dst"]), Reply::Int(0));
        // The source may be the destination.
        assert_eq!(t.run(&["ZRANGESTORE", "z", "z", "1", "2"]), Reply::Int(2));
        assert_eq!(t.run(&["ZRANGE", "z", "0", "-1"]), bulks(&["b", "c"]));
        assert_eq!(t.run(&["ZRANGESTORE", "dst", "z", "0", "-1", "WITHSCORES"]), err("ERR syntax error"));
        assert_eq!(t.run(&["ZRANGESTORE", "dst", "str", "0", "-1"]), err(WRONGTYPE));
        assert_eq!(
            t.run(&["ZRANGESTORE", "dst", "z", "0"]),
            err("ERR wrong number of arguments for 'zrangestore' command")
        );
        t.check_replay();
    }

    #[test]
    fn zremrange() {
        let mut t = T::new();
        setup(&mut t);
        assert_eq!(t.run(&["ZREMRANGEBYRANK", "z", "0", "1"]), Reply::Int(2));
        assert_eq!(t.run(&["ZRANGE", "z", "0", "-1"]), bulks(&["c", "d", "e"]));
        assert_eq!(t.run(&["ZREMRANGEBYRANK", "z", "-1", "-1"]), Reply::Int(1));
        assert_eq!(t.run(&["ZREMRANGEBYRANK", "z", "5", "10"]), Reply::Int(0));
        assert_eq!(t.run(&["ZREMRANGEBYRANK", "z", "a", "1"]), err("ERR value is not an integer or out of range"));
        assert_eq!(t.run(&["ZREMRANGEBYRANK", "str", "0", "1"]), err(WRONGTYPE));
        assert_eq!(t.run(&["ZREMRANGEBYRANK", "nokey", "0", "1"]), Reply::Int(0));
        t.run(&["ZADD", "z", "1", "a", "2", "b", "5", "e"]);
        assert_eq!(t.run(&["ZREMRANGEBYSCORE", "z", "(1", "3"]), Reply::Int(2));
        assert_eq!(t.run(&["ZRANGE", "z", "0", "-1"]), bulks(&["a", "d", "e"]));
        assert_eq!(t.run(&["ZREMRANGEBYSCORE", "z", "x", "3"]), err("ERR min or max is not a float"));
        assert_eq!(t.run(&["ZREMRANGEBYSCORE", "str", "x", "3"]), err("ERR min or max is not a float"));
        assert_eq!(t.run(&["ZREMRANGEBYSCORE", "str", "1", "3"]), err(WRONGTYPE));
        assert_eq!(t.run(&["ZREMRANGEBYSCORE", "z", "-inf", "+inf"]), Reply::Int(3));
        assert_eq!(t.run(&["EXISTS", "z"]), Reply::Int(0));
        assert_eq!(t.run(&["ZREMRANGEBYLEX", "l", "[a", "(c"]), Reply::Int(2));
        assert_eq!(t.run(&["ZRANGE", "l", "0", "-1"]), bulks(&["c", "d", "e"]));
        assert_eq!(t.run(&["ZREMRANGEBYLEX", "l", "a", "c"]), err("ERR min or max not valid string range item"));
        assert_eq!(t.run(&["ZREMRANGEBYLEX", "str", "-", "+"]), err(WRONGTYPE));
        assert_eq!(t.run(&["ZREMRANGEBYLEX", "l", "-", "+"]), Reply::Int(3));
        assert_eq!(t.run(&["EXISTS", "l"]), Reply::Int(0));
        t.check_replay();
    }

    #[test]
    fn zpop() {
        let mut t = T::new();
        setup(&mut t);
        assert_eq!(t.run(&["ZPOPMIN", "z"]), scored(&[("a", 1.0)]));
        assert_eq!(t.run(&["ZPOPMAX", "z"]), scored(&[("e", 5.0)]));
        assert_eq!(t.run(&["ZPOPMAX", "z", "2"]), scored(&[("d", 4.0), ("c", 3.0)]));
        assert_eq!(t.run(&["ZPOPMIN", "z", "0"]), empty());
        assert_eq!(t.run(&["ZPOPMIN", "z", "-1"]), err("ERR value is out of range, must be positive"));
        assert_eq!(t.run(&["ZPOPMIN", "z", "x"]), err("ERR value is out of range, must be positive"));
        assert_eq!(t.run(&["ZPOPMIN", "z", "1", "2"]), err("ERR syntax error"));
        assert_eq!(t.run(&["ZPOPMIN", "z", "10"]), scored(&[("b", 2.0)]));
        assert_eq!(t.run(&["EXISTS", "z"]), Reply::Int(0));
        assert_eq!(t.run(&["ZPOPMIN", "z"]), empty());
        assert_eq!(t.run(&["ZPOPMAX", "z", "3"]), empty());
        assert_eq!(t.run(&["ZPOPMIN", "str"]), err(WRONGTYPE));
        assert_eq!(t.run(&["ZPOPMAX", "str", "0"]), err(WRONGTYPE));
        t.check_replay();
    }

    #[test]
    fn zrandmember() {
        let mut t = T::new();
        setup(&mut t);
        let n = t.log.len();
        let all = ["a", "b", "c", "d", "e"];
        let score = |m: &[u8]| f64::from(m[0] - b'a' + 1);
        let members = |r: Reply| -> Vec<Vec<u8>> {
            match r {
                Reply::Array(v) => v
                    .into_iter()
                    .map(|x| match x {
                        Reply::Bulk(b) => b,
                        other => panic!("not a bulk: {other:?}"),
                    })
                    .collect(),
                other => panic!("not an array: {other:?}"),
            }
        };
        for _ in 0..20 {
            match t.run(&["ZRANDMEMBER", "z"]) {
                Reply::Bulk(m) => assert!(all.contains(&std::str::from_utf8(&m).unwrap_or(""))),
                other => panic!("{other:?}"),
            }
            let mut v = members(t.run(&["ZRANDMEMBER", "z", "3"]));
            assert_eq!(v.len(), 3);
            v.sort();
            v.dedup();
            assert_eq!(v.len(), 3);
            let mut v = members(t.run(&["ZRANDMEMBER", "z", "2"]));
            v.dedup();
            assert_eq!(v.len(), 2);
            let mut v = members(t.run(&["ZRANDMEMBER", "z", "10"]));
            v.sort();
            assert_eq!(v, all.map(|m| m.as_bytes().to_vec()));
            assert_eq!(members(t.run(&["ZRANDMEMBER", "z", "-10"])).len(), 10);
            match t.run(&["ZRANDMEMBER", "z", "-4", "WITHSCORES"]) {
                Reply::Array(v) => {
                    assert_eq!(v.len(), 8);
                    for p in v.chunks(2) {
                        match (&p[0], &p[1]) {
                            (Reply::Bulk(m), Reply::Double(s)) => assert_eq!(score(m), *s),
                            other => panic!("{other:?}"),
                        }
                    }
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(t.run(&["ZRANDMEMBER", "z", "0"]), empty());
        assert_eq!(t.run(&["ZRANDMEMBER", "nokey"]), Reply::Nil);
        assert_eq!(t.run(&["ZRANDMEMBER", "nokey", "5"]), empty());
        assert_eq!(t.run(&["ZRANDMEMBER", "z", "1", "foo"]), err("ERR syntax error"));
        assert_eq!(t.run(&["ZRANDMEMBER", "z", "1", "WITHSCORES", "x"]), err("ERR syntax error"));
        assert_eq!(t.run(&["ZRANDMEMBER", "z", "x"]), err("ERR value is not an integer or out of range"));
        assert_eq!(
            t.run(&["ZRANDMEMBER", "z", "-9223372036854775808"]),
            err("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807")
        );
        assert_eq!(t.run(&["ZRANDMEMBER", "z", "9223372036854775807", "WITHSCORES"]), err("ERR value is out of range"));
        assert_eq!(
            t.run(&["ZRANDMEMBER", "z", "-16777217"]),
            err("ERR count is out of range, at most 16777216 members can be returned at once")
        );
        assert_eq!(t.run(&["ZRANDMEMBER", "str"]), err(WRONGTYPE));
        assert_eq!(t.run(&["ZRANDMEMBER", "str", "2"]), err(WRONGTYPE));
        assert_eq!(t.log.len(), n, "ZRANDMEMBER wrote something");
        t.check_replay();
    }

    #[test]
    fn union_inter_diff() {
        let mut t = T::new();
        t.run(&["SET", "str", "v"]);
        t.run(&["ZADD", "z1", "1", "a", "2", "b", "3", "c"]);
        t.run(&["ZADD", "z2", "10", "b", "20", "c", "30", "d"]);
        t.run(&["SADD", "s", "c", "d", "x"]);
        assert_eq!(t.run(&["ZUNIONSTORE", "out", "2", "z1", "z2"]), Reply::Int(4));
        assert_eq!(
            t.run(&["ZRANGE", "out", "0", "-1", "WITHSCORES"]),
            scored(&[("a", 1.0), ("b", 12.0), ("c", 23.0), ("d", 30.0)])
        );
        assert_eq!(
            t.run(&["ZUNION", "2", "z1", "z2", "WEIGHTS", "2", "1", "AGGREGATE", "MAX", "WITHSCORES"]),
            scored(&[("a", 2.0), ("b", 10.0), ("c", 20.0), ("d", 30.0)])
        );
        assert_eq!(t.run(&["ZUNION", "2", "z1", "z2"]), bulks(&["a", "b", "c", "d"]));
        assert_eq!(t.run(&["ZINTERSTORE", "out", "2", "z1", "z2"]), Reply::Int(2));
        assert_eq!(t.run(&["ZRANGE", "out", "0", "-1", "WITHSCORES"]), scored(&[("b", 12.0), ("c", 23.0)]));
        assert_eq!(
            t.run(&["ZINTER", "2", "z1", "z2", "AGGREGATE", "MIN", "WITHSCORES"]),
            scored(&[("b", 2.0), ("c", 3.0)])
        );
        assert_eq!(
            t.run(&["ZINTER", "2", "z1", "z2", "weights", "1", "-1", "aggregate", "sum", "withscores"]),
            scored(&[("c", -17.0), ("b", -8.0)])
        );
        assert_eq!(t.run(&["ZDIFFSTORE", "out", "2", "z1", "z2"]), Reply::Int(1));
        assert_eq!(t.run(&["ZRANGE", "out", "0", "-1", "WITHSCORES"]), scored(&[("a", 1.0)]));
        assert_eq!(t.run(&["ZDIFF", "2", "z2", "z1", "WITHSCORES"]), scored(&[("d", 30.0)]));
        assert_eq!(t.run(&["ZDIFF", "1", "z1"]), bulks(&["a", "b", "c"]));
        // Plain sets take part with score 1.
        assert_eq!(
            t.run(&["ZUNION", "2", "z1", "s", "WITHSCORES"]),
            scored(&[("a", 1.0), ("d", 1.0), ("x", 1.0), ("b", 2.0), ("c", 4.0)])
        );
        assert_eq!(t.run(&["ZINTER", "2", "z2", "s", "WITHSCORES"]), scored(&[("c", 21.0), ("d", 31.0)]));
        assert_eq!(t.run(&["ZDIFF", "2", "s", "z1", "WITHSCORES"]), scored(&[("d", 1.0), ("x", 1.0)]));
        assert_eq!(t.run(&["ZINTERSTORE", "out", "1", "s"]), Reply::Int(3));
        // Missing inputs are empty sets.
        assert_eq!(t.run(&["ZUNION", "2", "z1", "nokey"]), bulks(&["a", "b", "c"]));
        assert_eq!(t.run(&["ZINTER", "2", "z1", "nokey"]), empty());
        assert_eq!(t.run(&["ZDIFF", "2", "nokey", "z1"]), empty());
        // Empty results delete the destination.
        assert_eq!(t.run(&["ZINTERSTORE", "out", "2", "z1", "nokey"]), Reply::Int(0));
        assert_eq!(t.run(&["EXISTS", "out"]), Reply::Int(0));
        // 0 * inf is 0, and inf + -inf is 0.
        t.run(&["ZADD", "zi", "inf", "m"]);
        t.run(&["ZADD", "zn", "-inf", "m"]);
        assert_eq!(t.run(&["ZUNION", "1", "zi", "WEIGHTS", "0", "WITHSCORES"]), scored(&[("m", 0.0)]));
        assert_eq!(t.run(&["ZUNION", "2", "zi", "zn", "WITHSCORES"]), scored(&[("m", 0.0)]));
        assert_eq!(t.run(&["ZINTER", "2", "zi", "zn", "WITHSCORES"]), scored(&[("m", 0.0)]));
        assert_eq!(t.run(&["ZINTER", "2", "zi", "zn", "AGGREGATE", "MAX", "WITHSCORES"]), {
            scored(&[("m", f64::INFINITY)])
        });
        // The destination may be an input, and loses its expiry.
        t.run(&["EXPIRE", "z1", "100"]);
        assert_eq!(t.run(&["ZUNIONSTORE", "z1", "2", "z1", "z2"]), Reply::Int(4));
        assert_eq!(t.run(&["TTL", "z1"]), Reply::Int(-1));
        assert_eq!(t.run(&["ZSCORE", "z1", "c"]), d(23.0));
        t.check_replay();
    }

    #[test]
    fn union_inter_diff_errors() {
        let mut t = T::new();
        t.run(&["SET", "str", "v"]);
        t.run(&["ZADD", "z1", "1", "a"]);
        t.run(&["ZADD", "z2", "2", "a"]);
        for (name, argv) in [
            ("zunionstore", &["ZUNIONSTORE", "out", "0", "z1"][..]),
            ("zinterstore", &["ZINTERSTORE", "out", "-1", "z1"]),
            ("zdiffstore", &["ZDIFFSTORE", "out", "0", "z1"]),
            ("zunion", &["ZUNION", "0", "z1"]),
            ("zinter", &["ZINTER", "0", "z1"]),
            ("zdiff", &["ZDIFF", "0", "z1"]),
        ] {
            assert_eq!(t.run(argv), err(&format!("ERR at least 1 input key is needed for '{name}' command")));
        }
        let syntax = err("ERR syntax error");
        assert_eq!(t.run(&["ZUNIONSTORE", "out", "3", "z1", "z2"]), syntax);
        assert_eq!(t.run(&["ZUNION", "2", "z1"]), syntax);
        assert_eq!(t.run(&["ZUNIONSTORE", "out", "x", "z1"]), err("ERR value is not an integer or out of range"));
        assert_eq!(t.run(&["ZUNION", "2", "z1", "z2", "WEIGHTS", "1"]), syntax);
        assert_eq!(t.run(&["ZUNION", "2", "z1", "z2", "WEIGHTS", "1", "x"]), err("ERR weight value is not a float"));
        assert_eq!(t.run(&["ZUNION", "2", "z1", "z2", "AGGREGATE", "AVG"]), syntax);
        assert_eq!(t.run(&["ZUNION", "2", "z1", "z2", "AGGREGATE"]), syntax);
        assert_eq!(t.run(&["ZDIFF", "2", "z1", "z2", "WEIGHTS", "1", "1"]), syntax);
        assert_eq!(t.run(&["ZDIFF", "2", "z1", "z2", "AGGREGATE", "SUM"]), syntax);
        assert_eq!(t.run(&["ZUNIONSTORE", "out", "2", "z1", "z2", "WITHSCORES"]), syntax);
        assert_eq!(t.run(&["ZUNION", "2", "z1", "z2", "FOO"]), syntax);
        // The type check comes before the options.
        assert_eq!(t.run(&["ZUNION", "2", "z1", "str", "AGGREGATE", "AVG"]), err(WRONGTYPE));
        assert_eq!(t.run(&["ZINTERSTORE", "out", "2", "z1", "str"]), err(WRONGTYPE));
        assert_eq!(t.run(&["ZDIFFSTORE", "out", "1", "str"]), err(WRONGTYPE));
        assert_eq!(t.run(&["EXISTS", "out"]), Reply::Int(0));
        assert_eq!(t.run(&["ZUNIONSTORE", "out", "1"]), err("ERR wrong number of arguments for 'zunionstore' command"));
        assert_eq!(t.run(&["ZUNION", "1"]), err("ERR wrong number of arguments for 'zunion' command"));
        t.check_replay();
    }

    #[test]
    fn movable_key_positions() {
        let pos = |f: KeysFn, argv: &[&str]| -> Vec<usize> {
            let argv: Vec<&[u8]> = argv.iter().map(|a| a.as_bytes()).collect();
            match f(&argv) {
                LockSet::Args(p) => p.to_vec(),
                _ => panic!("expected positions"),
            }
        };
        type KeysFn = fn(&[&[u8]]) -> LockSet;
        assert_eq!(pos(store_op_keys, &["zunionstore", "d", "2", "a", "b", "WEIGHTS", "1", "2"]), [1, 3, 4]);
        assert_eq!(pos(store_op_keys, &["zunionstore", "d", "5", "a", "b"]), [1, 3, 4]);
        assert_eq!(pos(store_op_keys, &["zunionstore", "d", "x", "a"]), [1]);
        assert_eq!(pos(store_op_keys, &["zunionstore", "d", "-3", "a"]), [1]);
        assert_eq!(pos(op_keys, &["zunion", "3", "a", "b", "c", "WITHSCORES"]), [2, 3, 4]);
        assert_eq!(pos(op_keys, &["zinter", "0", "a"]), Vec::<usize>::new());
    }

    #[test]
    fn zscan() {
        let mut t = T::new();
        setup(&mut t);
        for i in 0..200 {
            t.run(&["ZADD", "big", &i.to_string(), &format!("m{i}")]);
        }
        let mut seen = HashMap::new();
        let mut cursor = "0".to_string();
        let mut calls = 0;
        loop {
            let r = t.run(&["ZSCAN", "big", &cursor, "COUNT", "20"]);
            let Reply::Array(v) = r else { panic!("{r:?}") };
            let (Reply::Bulk(c), Reply::Array(items)) = (&v[0], &v[1]) else { panic!("{v:?}") };
            for p in items.chunks(2) {
                let (Reply::Bulk(m), Reply::Bulk(s)) = (&p[0], &p[1]) else { panic!("{p:?}") };
                seen.insert(m.clone(), String::from_utf8_lossy(s).into_owned());
            }
            calls += 1;
            cursor = String::from_utf8_lossy(c).into_owned();
            if cursor == "0" {
                break;
            }
        }
        assert!(calls > 1);
        assert_eq!(seen.len(), 200);
        assert_eq!(seen.get(&b"m7"[..]).map(String::as_str), Some("7"));
        t.run(&["ZADD", "fl", "0.1", "x", "-inf", "y"]);
        let r = t.run(&["ZSCAN", "fl", "0", "MATCH", "x*", "COUNT", "100"]);
        assert_eq!(r, arr(vec![bulk("0"), bulks(&["x", "0.10000000000000001"])]));
        let r = t.run(&["ZSCAN", "fl", "0", "MATCH", "*"]);
        let Reply::Array(v) = r else { panic!("{r:?}") };
        let Reply::Array(items) = &v[1] else { panic!("{v:?}") };
        let mut pairs: Vec<_> = items.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect();
        pairs.sort_by_key(|p| format!("{p:?}"));
        assert_eq!(pairs, vec![(bulk("x"), bulk("0.10000000000000001")), (bulk("y"), bulk("-inf"))]);
        assert_eq!(t.run(&["ZSCAN", "nokey", "0"]), arr(vec![bulk("0"), empty()]));
        assert_eq!(t.run(&["ZSCAN", "nokey", "0", "COUNT", "0"]), arr(vec![bulk("0"), empty()]));
        assert_eq!(t.run(&["ZSCAN", "z", "x"]), err("ERR invalid cursor"));
        assert_eq!(t.run(&["ZSCAN", "z", " 1"]), err("ERR invalid cursor"));
        assert_eq!(t.run(&["ZSCAN", "z", "99999999999999999999"]), err("ERR invalid cursor"));
        assert_eq!(t.run(&["ZSCAN", "str", "x"]), err("ERR invalid cursor"));
        assert_eq!(t.run(&["ZSCAN", "str", "0"]), err(WRONGTYPE));
        assert_eq!(t.run(&["ZSCAN", "z", "0", "COUNT", "0"]), err("ERR syntax error"));
        assert_eq!(t.run(&["ZSCAN", "z", "0", "COUNT", "x"]), err("ERR value is not an integer or out of range"));
        assert_eq!(t.run(&["ZSCAN", "z", "0", "MATCH"]), err("ERR syntax error"));
        assert_eq!(t.run(&["ZSCAN", "z", "0", "TYPE", "zset"]), err("ERR syntax error"));
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"+7"), Some(7));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551616"), None);
        assert_eq!(parse_cursor(b"-"), None);
    }

    #[test]
    fn keyspace_events() {
        let mut t = T::new();
        t.engine.set_notify_flags(notify::ALL | notify::KEYSPACE | notify::KEYEVENT);
        let cases: &[(&[&str], &[&str])] = &[
            (&["ZADD", "z", "1", "a", "2", "b", "3", "c"], &["zadd:z"]),
            (&["ZADD", "z", "1", "a"], &[]),
            (&["ZADD", "z", "INCR", "1", "a"], &["zincr:z"]),
            (&["ZINCRBY", "z", "1", "a"], &["zincr:z"]),
            (&["ZREM", "z", "nope"], &[]),
            (&["ZREM", "z", "a"], &["zrem:z"]),
            (&["ZADD", "z", "1", "a", "4", "d", "5", "e"], &["zadd:z"]),
            (&["ZREMRANGEBYRANK", "z", "0", "0"], &["zremrangebyrank:z"]),
            (&["ZREMRANGEBYSCORE", "z", "2", "2"], &["zremrangebyscore:z"]),
            (&["ZREMRANGEBYLEX", "z", "[c", "[c"], &["zremrangebylex:z"]),
            (&["ZREMRANGEBYLEX", "z", "[x", "[y"], &[]),
            (&["ZPOPMIN", "z"], &["zpopmin:z"]),
            (&["ZADD", "z2", "1", "a"], &["zadd:z2"]),
            (&["ZUNIONSTORE", "u", "2", "z", "z2"], &["zunionstore:u"]),
            (&["ZINTERSTORE", "u", "2", "z", "z2"], &["del:u"]),
            (&["ZINTERSTORE", "u", "2", "z", "z2"], &[]),
            (&["ZDIFFSTORE", "u", "1", "z"], &["zdiffstore:u"]),
            (&["ZINTERSTORE", "u", "1", "z2"], &["zinterstore:u"]),
            (&["ZRANGESTORE", "r", "z", "0", "-1"], &["zrangestore:r"]),
            (&["ZRANGESTORE", "r", "z", "5", "6"], &["del:r"]),
            (&["ZPOPMAX", "z"], &["zpopmax:z", "del:z"]),
            (&["ZREM", "z2", "a"], &["zrem:z2", "del:z2"]),
            (&["ZADD", "z", "1", "a"], &["zadd:z"]),
            (&["ZREMRANGEBYRANK", "z", "0", "-1"], &["zremrangebyrank:z", "del:z"]),
        ];
        for (argv, want) in cases {
            let (r, e) = ev(&mut t, argv);
            assert!(!r.is_error(), "{argv:?}: {r:?}");
            assert_eq!(e, want.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "{argv:?}");
        }
        t.check_replay();
    }

    #[test]
    fn noop_writes_keep_watches() {
        let mut t = T::new();
        t.run(&["ZADD", "z", "1", "a"]);
        t.run(&["WATCH", "z"]);
        t.run(&["ZADD", "z", "NX", "2", "a"]);
        t.run(&["ZREM", "z", "nope"]);
        t.run(&["ZREMRANGEBYSCORE", "z", "5", "6"]);
        t.run(&["MULTI"]);
        t.run(&["ZCARD", "z"]);
        assert_eq!(t.run(&["EXEC"]), arr(vec![Reply::Int(1)]));
        t.run(&["WATCH", "z"]);
        t.run(&["ZADD", "z", "2", "a"]);
        t.run(&["MULTI"]);
        t.run(&["ZCARD", "z"]);
        assert_eq!(t.run(&["EXEC"]), Reply::NilArray);
        t.check_replay();
    }

    /// Random commands against a model (member → score), checked through
    /// ZRANGE/ZRANK, then replayed.
    #[test]
    fn randomized_commands_against_model() {
        let mut t = T::new();
        let mut rng = fastrand::Rng::with_seed(42);
        let mut model: HashMap<String, f64> = HashMap::new();
        let sorted = |m: &HashMap<String, f64>| {
            let mut v: Vec<(String, f64)> = m.iter().map(|(k, s)| (k.clone(), *s)).collect();
            v.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            v
        };
        for _ in 0..600 {
            let m = format!("m{}", rng.usize(..60));
            let s = rng.i32(-10..10);
            match rng.u8(..10) {
                0..=3 => {
                    t.run(&["ZADD", "z", &s.to_string(), &m]);
                    model.insert(m, f64::from(s));
                }
                4 => {
                    t.run(&["ZINCRBY", "z", &s.to_string(), &m]);
                    *model.entry(m).or_insert(0.0) += f64::from(s);
                }
                5 => {
                    let r = t.run(&["ZREM", "z", &m]);
                    assert_eq!(r, Reply::Int(i64::from(model.remove(&m).is_some())));
                }
                6 => {
                    let (lo, hi) = (s, s + rng.i32(0..4));
                    let r = t.run(&["ZREMRANGEBYSCORE", "z", &lo.to_string(), &format!("({hi}")]);
                    let before = model.len();
                    model.retain(|_, v| !(*v >= f64::from(lo) && *v < f64::from(hi)));
                    assert_eq!(r, Reply::Int((before - model.len()) as i64));
                }
                7 => {
                    let v = sorted(&model);
                    let r = t.run(&["ZPOPMAX", "z", "2"]);
                    let want: Vec<(&str, f64)> = v.iter().rev().take(2).map(|(m, s)| (m.as_str(), *s)).collect();
                    assert_eq!(r, scored(&want));
                    for (m, _) in want {
                        model.remove(m);
                    }
                }
                8 => {
                    let v = sorted(&model);
                    let want = v.iter().position(|(x, _)| *x == m).map_or(Reply::Nil, |i| Reply::Int(i as i64));
                    assert_eq!(t.run(&["ZRANK", "z", &m]), want);
                }
                _ => {
                    let v = sorted(&model);
                    let (a, b) = (rng.i64(-70..70), rng.i64(-70..70));
                    let want: Vec<&str> = match rank_range(a, b, v.len()) {
                        Some((x, y)) => v[x..=y].iter().map(|(m, _)| m.as_str()).collect(),
                        None => vec![],
                    };
                    assert_eq!(t.run(&["ZRANGE", "z", &a.to_string(), &b.to_string()]), bulks(&want));
                }
            }
        }
        let v = sorted(&model);
        let want: Vec<(&str, f64)> = v.iter().map(|(m, s)| (m.as_str(), *s)).collect();
        assert_eq!(t.run(&["ZRANGE", "z", "0", "-1", "WITHSCORES"]), scored(&want));
        t.check_replay();
    }

    #[test]
    fn memory_accounting_follows_the_set() {
        let mut t = T::new();
        let base = t.engine.used_memory();
        for i in 0..300 {
            t.run(&["ZADD", "z", &i.to_string(), &format!("member-{i}")]);
        }
        assert!(t.engine.used_memory() > base + 300 * 40);
        t.run(&["ZREMRANGEBYRANK", "z", "0", "-1"]);
        assert_eq!(t.engine.used_memory(), base);
        t.check_replay();
    }

    #[test]
    fn bzpop_without_blocking() {
        let mut t = T::new();
        assert_eq!(t.run(&["BZPOPMIN", "none", "0"]), Reply::NilArray);
        assert_eq!(t.run(&["BZPOPMIN", "z", "-1"]), err("ERR timeout is negative"));
        assert_eq!(t.run(&["BZPOPMIN", "z", "x"]), err("ERR timeout is not a float or out of range"));
        t.run(&["ZADD", "z", "1", "a", "2", "b"]);
        assert_eq!(
            t.run(&["BZPOPMIN", "none", "z", "0"]),
            Reply::Array(vec![bulk("z"), bulk("a"), Reply::Double(1.0)])
        );
        assert_eq!(t.run(&["BZPOPMAX", "z", "1.5"]), Reply::Array(vec![bulk("z"), bulk("b"), Reply::Double(2.0)]));
        assert_eq!(t.run(&["EXISTS", "z"]), Reply::Int(0));
        assert_eq!(t.log.last().map(|r| r.ops[0].argv[0].0.clone()), Some(b"ZPOPMAX".to_vec()));
        t.check_replay();
    }
}
