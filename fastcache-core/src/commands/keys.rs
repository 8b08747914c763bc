//! Generic key commands: deletion and existence, KEYS/SCAN/RANDOMKEY,
//! RENAME/COPY/MOVE, the EXPIRE and TTL families, OBJECT, MEMORY USAGE,
//! and DUMP/RESTORE.

use std::sync::atomic::Ordering;

use super::flags::{ALL_KEYS, DENYOOM, FAST, RANDOM, READONLY, WRITE};
use super::{cmd, CommandSpec};
use crate::cx::Cx;
use crate::dump::{decode_payload, encode_payload, PayloadError, ValueDto};
use crate::engine::{Inner, Shard};
use crate::evict::{lfu_minutes, lru_clock, EvictionPolicy, LRU_MASK};
use crate::keyspace::{KeyEntry, ObjRef};
use crate::notify;
use crate::reply::{errors, Reply};
use crate::table::{hash, Keyed};
use crate::util::parse_scan_cursor as parse_cursor;
use crate::util::{eq_ic, glob_match, int_arg, parse_i64};

pub(crate) const COMMANDS: &[CommandSpec] = &[
    cmd("del", -2, WRITE, (1, -1, 1), "generic", del),
    cmd("unlink", -2, WRITE | FAST, (1, -1, 1), "generic", del),
    cmd("exists", -2, READONLY | FAST, (1, -1, 1), "generic", exists),
    cmd("type", 2, READONLY | FAST, (1, 1, 1), "generic", type_cmd),
    cmd("keys", 2, READONLY | ALL_KEYS, (0, 0, 0), "generic", keys),
    cmd("scan", -2, READONLY | ALL_KEYS, (0, 0, 0), "generic", scan),
    cmd("randomkey", 1, READONLY | RANDOM | ALL_KEYS, (0, 0, 0), "generic", randomkey),
    cmd("rename", 3, WRITE, (1, 2, 1), "generic", rename),
    cmd("renamenx", 3, WRITE | FAST, (1, 2, 1), "generic", renamenx),
    cmd("copy", -3, WRITE | DENYOOM, (1, 2, 1), "generic", copy),
    cmd("move", 3, WRITE | FAST, (1, 1, 1), "generic", move_cmd),
    cmd("touch", -2, READONLY | FAST, (1, -1, 1), "generic", touch),
    cmd("expire", -3, WRITE | FAST, (1, 1, 1), "generic", expire),
    cmd("pexpire", -3, WRITE | FAST, (1, 1, 1), "generic", pexpire),
    cmd("expireat", -3, WRITE | FAST, (1, 1, 1), "generic", expireat),
    cmd("pexpireat", -3, WRITE | FAST, (1, 1, 1), "generic", pexpireat),
    cmd("ttl", 2, READONLY | FAST, (1, 1, 1), "generic", ttl),
    cmd("pttl", 2, READONLY | FAST, (1, 1, 1), "generic", pttl),
    cmd("expiretime", 2, READONLY | FAST, (1, 1, 1), "generic", expiretime),
    cmd("pexpiretime", 2, READONLY | FAST, (1, 1, 1), "generic", pexpiretime),
    cmd("persist", 2, WRITE | FAST, (1, 1, 1), "generic", persist),
    // Container commands: the key, when the subcommand has one, is the
    // third argument (OBJECT ENCODING key, MEMORY USAGE key).
    cmd("object", -2, READONLY, (2, 2, 1), "generic", object),
    cmd("memory", -2, READONLY, (2, 2, 1), "server", memory),
    cmd("dump", 2, READONLY, (1, 1, 1), "generic", dump),
    cmd("restore", -4, WRITE | DENYOOM, (1, 1, 1), "generic", restore),
];

/// Redis' `shared.sameobjecterr`.
const SAME_OBJECT: Reply = Reply::err("ERR source and destination objects are the same");

fn bulk_lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A database argument with Redis' errors: not a 32-bit integer, then out
/// of range.
fn db_arg(cx: &Cx, arg: &[u8]) -> Result<usize, Reply> {
    let n = parse_i64(arg).filter(|n| i32::try_from(*n).is_ok()).ok_or(errors::NOT_INTEGER)?;
    if n < 0 || n as usize >= cx.eng.databases {
        return Err(errors::DB_INDEX);
    }
    Ok(n as usize)
}

// ----- existence and deletion ----------------------------------------------

fn del(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let mut n = 0;
    for key in &a[1..] {
        if cx.delete(key) {
            cx.notify(notify::GENERIC, "del", key);
            n += 1;
        }
    }
    Reply::Int(n)
}

fn exists(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    Reply::Int(a[1..].iter().filter(|k| cx.exists(k)).count() as i64)
}

fn type_cmd(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    Reply::Simple(cx.peek(a[1]).map_or("none", KeyEntry::type_name).into())
}

fn touch(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    Reply::Int(a[1..].iter().filter(|k| cx.lookup(k).is_some()).count() as i64)
}

// ----- keyspace-wide --------------------------------------------------------

fn keys(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    debug_assert!(cx.locks_all(), "KEYS must lock every shard");
    let pattern = a[1];
    let all = pattern == b"*";
    let (db, now) = (cx.db, cx.now);
    let mut out = Vec::new();
    for shard in cx.shards_mut() {
        for e in shard.dbs[db].keys.iter() {
            // Like Redis 7.0, KEYS hides logically expired keys but leaves
            // their deletion to the next access.
            let live = e.deadline == 0 || e.deadline > now;
            if live && (all || glob_match(pattern, e.key(), false)) {
                out.push(Reply::bulk(e.key()));
            }
        }
    }
    Reply::Array(out)
}

/// SCAN over the sharded keyspace.
///
/// The cursor packs the shard being walked into its low bits and that
/// shard's table cursor (Redis' reverse-binary cursor) above them:
/// `cursor = (table_cursor << shard_bits) | shard`. Shards are walked in
/// index order, each to completion before the next, so a key present for
/// the whole iteration is returned at least once however tables resize in
/// between, and a full iteration ends with cursor 0.
fn scan(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    debug_assert!(cx.locks_all(), "SCAN must lock every shard");
    let Some(cursor) = parse_cursor(a[1]) else {
        return Reply::err("ERR invalid cursor");
    };
    let mut count: i64 = 10;
    let mut pattern: Option<&[u8]> = None;
    let mut type_name: Option<&[u8]> = None;
    let mut i = 2;
    while i < a.len() {
        let left = a.len() - i;
        if eq_ic(a[i], "COUNT") && left >= 2 {
            count = match int_arg(a[i + 1]) {
                Ok(n) if n < 1 => return errors::SYNTAX,
                Ok(n) => n,
                Err(e) => return e,
            };
        } else if eq_ic(a[i], "MATCH") && left >= 2 {
            pattern = (a[i + 1] != b"*").then_some(a[i + 1]);
        } else if eq_ic(a[i], "TYPE") && left >= 2 {
            type_name = Some(a[i + 1]);
        } else {
            return errors::SYNTAX;
        }
        i += 2;
    }

    let (db, now, replay) = (cx.db, cx.now, cx.replay);
    let nshards = cx.eng.shards.len();
    let bits = nshards.trailing_zeros();
    let mut shard = (cursor & (nshards as u64 - 1)) as usize;
    let mut table_cursor = cursor >> bits;
    let count = count as u64;
    // Bounds the work of one call when MATCH or TYPE filter out most keys,
    // as Redis' `maxiterations`.
    let mut budget = count.saturating_mul(10);
    let mut visited = 0u64;
    let mut found: Vec<Reply> = Vec::new();
    let mut expired: Vec<Vec<u8>> = Vec::new();
    let next = {
        let shards: Vec<&mut Shard> = cx.shards_mut().collect();
        loop {
            let table = &shards[shard].dbs[db].keys;
            if table.is_empty() {
                table_cursor = 0;
            } else {
                table_cursor = table.scan(table_cursor, |e| {
                    visited += 1;
                    if pattern.is_some_and(|p| !glob_match(p, e.key(), false)) {
                        return;
                    }
                    if !replay && e.deadline != 0 && e.deadline <= now {
                        expired.push(e.key().to_vec());
                        return;
                    }
                    if type_name.is_some_and(|t| !eq_ic(t, e.type_name())) {
                        return;
                    }
                    found.push(Reply::bulk(e.key()));
                });
                budget = budget.saturating_sub(1);
            }
            if table_cursor == 0 {
                shard += 1;
                if shard == nshards {
                    break 0;
                }
            }
            if visited >= count || budget == 0 {
                break (table_cursor << bits) | shard as u64;
            }
        }
    };
    // Matching keys found past their deadline are deleted now, as Redis'
    // SCAN does (the lookup records the deletion).
    for key in expired {
        cx.peek(&key);
    }
    Reply::Array(vec![Reply::Bulk(next.to_string().into_bytes()), Reply::Array(found)])
}

fn randomkey(cx: &mut Cx, _: &[&[u8]]) -> Reply {
    cx.random_key().map_or(Reply::Nil, Reply::Bulk)
}

// ----- RENAME, COPY, MOVE ---------------------------------------------------

fn rename_generic(cx: &mut Cx, a: &[&[u8]], nx: bool) -> Reply {
    let (src, dst) = (a[1], a[2]);
    if !cx.exists(src) {
        return errors::NO_SUCH_KEY;
    }
    let done = if nx { Reply::Int(1) } else { Reply::OK };
    let skipped = if nx { Reply::Int(0) } else { Reply::OK };
    if src == dst {
        return skipped;
    }
    if nx && cx.exists(dst) {
        return Reply::Int(0);
    }
    let db = cx.db;
    let Some((value, deadline)) = cx.take_in(db, src) else {
        return errors::NO_SUCH_KEY;
    };
    cx.set_value(dst, value, deadline);
    cx.notify(notify::GENERIC, "rename_from", src);
    cx.notify(notify::GENERIC, "rename_to", dst);
    done
}

fn rename(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    rename_generic(cx, a, false)
}

fn renamenx(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    rename_generic(cx, a, true)
}

fn copy(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let src_db = cx.db;
    let mut dst_db = src_db;
    let mut replace = false;
    let mut j = 3;
    while j < a.len() {
        if eq_ic(a[j], "REPLACE") {
            replace = true;
        } else if eq_ic(a[j], "DB") && j + 1 < a.len() {
            dst_db = match db_arg(cx, a[j + 1]) {
                Ok(d) => d,
                Err(e) => return e,
            };
            j += 1;
        } else {
            return errors::SYNTAX;
        }
        j += 1;
    }
    let (src, dst) = (a[1], a[2]);
    if src_db == dst_db && src == dst {
        return SAME_OBJECT;
    }
    let Some((value, deadline)) = cx.clone_in(src_db, src) else {
        return Reply::Int(0);
    };
    if cx.peek_in(dst_db, dst).is_some() && !replace {
        return Reply::Int(0);
    }
    cx.set_value_in(dst_db, dst, value, deadline);
    cx.notify_db(notify::GENERIC, "copy_to", dst, dst_db);
    Reply::Int(1)
}

fn move_cmd(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let key = a[1];
    let src_db = cx.db;
    let dst_db = match db_arg(cx, a[2]) {
        Ok(d) => d,
        Err(e) => return e,
    };
    if dst_db == src_db {
        return SAME_OBJECT;
    }
    if !cx.exists(key) || cx.peek_in(dst_db, key).is_some() {
        return Reply::Int(0);
    }
    let Some((value, deadline)) = cx.take_in(src_db, key) else {
        return Reply::Int(0);
    };
    cx.set_value_in(dst_db, key, value, deadline);
    cx.notify_db(notify::GENERIC, "move_from", key, src_db);
    cx.notify_db(notify::GENERIC, "move_to", key, dst_db);
    Reply::Int(1)
}

// ----- expiry ---------------------------------------------------------------

/// EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT (Redis' `expireGenericCommand`).
///
/// The effect is logged as `PEXPIREAT key abs_ms`, or as `DEL key` when the
/// time is already past (outside replay, where a past time is set as is and
/// the log's own `DEL` follows).
fn expire_generic(cx: &mut Cx, a: &[&[u8]], name: &str, seconds: bool, relative: bool) -> Reply {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in &a[3..] {
        if eq_ic(opt, "NX") {
            nx = true;
        } else if eq_ic(opt, "XX") {
            xx = true;
        } else if eq_ic(opt, "GT") {
            gt = true;
        } else if eq_ic(opt, "LT") {
            lt = true;
        } else {
            return Reply::error(format!("ERR Unsupported option {}", bulk_lossy(opt)));
        }
    }
    if nx && (xx || gt || lt) {
        return Reply::err("ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if gt && lt {
        return Reply::err("ERR GT and LT options at the same time are not compatible");
    }
    let mut when = match int_arg(a[2]) {
        Ok(v) => v,
        Err(e) => return e,
    };
    if seconds {
        match when.checked_mul(1000) {
            Some(ms) => when = ms,
            None => return errors::invalid_expire(name),
        }
    }
    if relative {
        match when.checked_add(cx.now as i64) {
            Some(t) => when = t,
            None => return errors::invalid_expire(name),
        }
    }
    let key = a[1];
    let Some(current) = cx.deadline(key) else {
        return Reply::Int(0);
    };
    let current = (current != 0).then_some(current as i64);
    let refused = (nx && current.is_some())
        || (xx && current.is_none())
        // No expiry counts as an infinite one: GT never beats it, LT always does.
        || (gt && current.is_none_or(|c| when <= c))
        || (lt && current.is_some_and(|c| when >= c));
    if refused {
        return Reply::Int(0);
    }
    if when <= cx.now as i64 && !cx.replay {
        cx.delete(key);
        cx.propagate(vec![b"DEL".to_vec(), key.to_vec()]);
        cx.notify(notify::GENERIC, "del", key);
    } else {
        // 0 means "no expiry": a replayed time at or before the epoch
        // still has to read as expired.
        let deadline = when.max(1) as u64;
        cx.set_deadline(key, deadline);
        cx.propagate(vec![b"PEXPIREAT".to_vec(), key.to_vec(), deadline.to_string().into_bytes()]);
        cx.notify(notify::GENERIC, "expire", key);
    }
    Reply::Int(1)
}

fn expire(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    expire_generic(cx, a, "expire", true, true)
}

fn pexpire(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    expire_generic(cx, a, "pexpire", false, true)
}

fn expireat(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    expire_generic(cx, a, "expireat", true, false)
}

fn pexpireat(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    expire_generic(cx, a, "pexpireat", false, false)
}

/// TTL, PTTL, EXPIRETIME and PEXPIRETIME: -2 for a missing key, -1 for no
/// expiry; seconds are rounded to the nearest, as Redis does.
fn ttl_generic(cx: &mut Cx, key: &[u8], ms: bool, absolute: bool) -> Reply {
    let deadline = match cx.deadline(key) {
        None => return Reply::Int(-2),
        Some(0) => return Reply::Int(-1),
        Some(d) => i64::try_from(d).unwrap_or(i64::MAX),
    };
    let t = if absolute { deadline } else { deadline - cx.now as i64 }.max(0);
    Reply::Int(if ms { t } else { t.saturating_add(500) / 1000 })
}

fn ttl(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    ttl_generic(cx, a[1], false, false)
}

fn pttl(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    ttl_generic(cx, a[1], true, false)
}

fn expiretime(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    ttl_generic(cx, a[1], false, true)
}

fn pexpiretime(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    ttl_generic(cx, a[1], true, true)
}

fn persist(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    match cx.deadline(a[1]) {
        Some(d) if d != 0 => {
            cx.set_deadline(a[1], 0);
            cx.notify(notify::GENERIC, "persist", a[1]);
            Reply::Int(1)
        }
        _ => Reply::Int(0),
    }
}

// ----- OBJECT and MEMORY ----------------------------------------------------

fn policy(eng: &Inner) -> EvictionPolicy {
    EvictionPolicy::from_u8(eng.policy.load(Ordering::Relaxed))
}

/// `ERR unknown subcommand 'x'. Try CMD HELP.`, as Redis answers for a
/// container command's unknown subcommand.
fn unknown_subcommand(container: &str, sub: &[u8]) -> Reply {
    let sub: String = bulk_lossy(sub).chars().take(128).collect();
    Reply::error(format!("ERR unknown subcommand '{sub}'. Try {container} HELP."))
}

/// Redis' `addReplyHelp`: a header, the lines, and the HELP entry.
fn help(container: &str, lines: &[&'static str]) -> Reply {
    let mut out =
        vec![Reply::Simple(format!("{container} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:").into())];
    out.extend(lines.iter().map(|l| Reply::Simple((*l).into())));
    out.push(Reply::Simple("HELP".into()));
    out.push(Reply::Simple("    Print this help.".into()));
    Reply::Array(out)
}

const OBJECT_HELP: &[&str] = &[
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
];

const MEMORY_HELP: &[&str] = &[
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
];

/// Redis' `OBJ_ENCODING_EMBSTR_SIZE_LIMIT`.
const EMBSTR_MAX: usize = 44;
/// Redis 7.0's defaults for `hash-max-listpack-entries` and `-value`.
const LISTPACK_ENTRIES: usize = 128;
const LISTPACK_VALUE: usize = 64;
/// Redis' `OBJ_SHARED_INTEGERS`: 0..10000 are shared objects.
const SHARED_INTEGERS: i64 = 10_000;

/// The encoding Redis 7.0 would report for this value, with its default
/// thresholds. Sets and sorted sets track their (one-way) conversion
/// themselves; a hash is judged from its current contents.
fn encoding(e: &KeyEntry) -> &'static str {
    match e.obj() {
        // APPEND and SETRANGE leave a growable (raw) string behind, as in
        // Redis; only a string stored whole is a candidate for int/embstr.
        ObjRef::Str(_) if !e.is_inline_str() => "raw",
        ObjRef::Str(s) if parse_i64(s).is_some() => "int",
        ObjRef::Str(s) if s.len() <= EMBSTR_MAX => "embstr",
        ObjRef::Str(_) => "raw",
        // Redis 7.0 encodes every list as a quicklist (a listpack encoding
        // for small lists arrived in 7.2).
        ObjRef::List(_) => "quicklist",
        ObjRef::Hash(h) => {
            if h.len() <= LISTPACK_ENTRIES
                && h.iter().all(|(f, v)| f.len() <= LISTPACK_VALUE && v.len() <= LISTPACK_VALUE)
            {
                "listpack"
            } else {
                "hashtable"
            }
        }
        ObjRef::Set(s) => s.encoding(),
        ObjRef::ZSet(z) => z.encoding(),
    }
}

/// OBJECT REFCOUNT: Redis shares the integers 0..9999 (refcount INT_MAX)
/// unless an LRU/LFU policy with a memory limit needs per-key metadata.
fn refcount(eng: &Inner, e: &KeyEntry) -> i64 {
    let p = policy(eng);
    let lru_or_lfu = matches!(p, EvictionPolicy::AllKeysLru | EvictionPolicy::VolatileLru) || p.is_lfu();
    let sharing = eng.maxmemory.load(Ordering::Relaxed) == 0 || !lru_or_lfu;
    let shared = match e.obj() {
        ObjRef::Str(s) => {
            sharing && encoding(e) == "int" && parse_i64(s).is_some_and(|n| (0..SHARED_INTEGERS).contains(&n))
        }
        _ => false,
    };
    if shared {
        i64::from(i32::MAX)
    } else {
        1
    }
}

fn object(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let sub = a[1];
    if eq_ic(sub, "HELP") {
        if a.len() != 2 {
            return errors::wrong_args("object|help");
        }
        return help("OBJECT", OBJECT_HELP);
    }
    let Some(name) = ["encoding", "freq", "idletime", "refcount"].into_iter().find(|n| eq_ic(sub, n)) else {
        return unknown_subcommand("OBJECT", sub);
    };
    if a.len() != 3 {
        return errors::wrong_args(&format!("object|{name}"));
    }
    let (now, eng) = (cx.now, cx.eng);
    let lfu = policy(eng).is_lfu();
    let Some(e) = cx.peek(a[2]) else {
        return Reply::Nil;
    };
    match name {
        "encoding" => Reply::bulk(encoding(e).as_bytes()),
        "refcount" => Reply::Int(refcount(eng, e)),
        "idletime" if lfu => Reply::err(
            "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
        ),
        "idletime" => Reply::Int(eng.idle_seconds(e.meta, now) as i64),
        _ if !lfu => Reply::err(
            "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
        ),
        _ => Reply::Int(i64::from(eng.lfu_decayed(e.meta, now))),
    }
}

fn memory(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let sub = a[1];
    if eq_ic(sub, "HELP") {
        if a.len() != 2 {
            return errors::wrong_args("memory|help");
        }
        return help("MEMORY", MEMORY_HELP);
    }
    if eq_ic(sub, "USAGE") {
        if a.len() < 3 {
            return errors::wrong_args("memory|usage");
        }
        // SAMPLES is validated for compatibility; the size is exact anyway
        // (every collection keeps a running byte count).
        let mut j = 3;
        while j < a.len() {
            if !(eq_ic(a[j], "SAMPLES") && j + 1 < a.len()) {
                return errors::SYNTAX;
            }
            match int_arg(a[j + 1]) {
                Ok(n) if n < 0 => return errors::SYNTAX,
                Ok(_) => {}
                Err(e) => return e,
            }
            j += 2;
        }
        // Like Redis, this reads the table directly: a key past its
        // deadline that nobody has touched yet still has a size.
        let key = a[2];
        let h = hash(key);
        return match cx.db_mut(h).get(h, key) {
            Some(e) => Reply::Int(e.mem() as i64),
            None => Reply::Nil,
        };
    }
    let simple = ["purge", "malloc-stats"].into_iter().find(|n| eq_ic(sub, n));
    match simple {
        Some(name) if a.len() != 2 => errors::wrong_args(&format!("memory|{name}")),
        // The allocator is the system's; there are no dirty pages of ours
        // to purge and no statistics to report.
        Some("purge") => Reply::OK,
        Some(_) => Reply::bulk(b"Stats not supported for the current allocator"),
        None => unknown_subcommand("MEMORY", sub),
    }
}

// ----- DUMP and RESTORE -----------------------------------------------------

const BAD_DATA: Reply = Reply::err("ERR Bad data format");

fn dump(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    match cx.lookup(a[1]) {
        Some(obj) => Reply::Bulk(encode_payload(&ValueDto::from_obj(obj))),
        None => Reply::Nil,
    }
}

/// The access metadata RESTORE's IDLETIME or FREQ asks for (Redis'
/// `objectSetLRUOrLFU`): FREQ counts under an LFU policy, IDLETIME under
/// any other; the one that does not apply is ignored.
fn restored_meta(eng: &Inner, now: u64, idle: Option<i64>, freq: Option<i64>) -> Option<u32> {
    if policy(eng).is_lfu() {
        return freq.map(|f| (lfu_minutes(now) << 8) | (f as u32 & 0xFF));
    }
    let secs = idle?;
    let clock = i64::from(lru_clock(now));
    let max = i64::from(LRU_MASK);
    let abs = clock - secs;
    // An idle time longer than the wrapping clock's history: half-way in
    // the future is the best guess that does not get the key evicted at once.
    Some(if abs < 0 { ((clock + max / 2) % max) as u32 } else { abs as u32 })
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f].
///
/// Logged as `RESTORE key abs_ms_or_0 payload REPLACE ABSTTL`, which gives
/// the same key whenever it is replayed; an absolute time already past
/// creates nothing (and a REPLACEd key is logged as deleted).
fn restore(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let key = a[1];
    let (mut replace, mut absttl) = (false, false);
    let (mut idle, mut freq): (Option<i64>, Option<i64>) = (None, None);
    let mut j = 4;
    while j < a.len() {
        let has_value = j + 1 < a.len();
        if eq_ic(a[j], "REPLACE") {
            replace = true;
        } else if eq_ic(a[j], "ABSTTL") {
            absttl = true;
        } else if eq_ic(a[j], "IDLETIME") && has_value && freq.is_none() {
            match int_arg(a[j + 1]) {
                Ok(v) if v < 0 => return Reply::err("ERR Invalid IDLETIME value, must be >= 0"),
                Ok(v) => idle = Some(v),
                Err(e) => return e,
            }
            j += 1;
        } else if eq_ic(a[j], "FREQ") && has_value && idle.is_none() {
            match int_arg(a[j + 1]) {
                Ok(v) if !(0..=255).contains(&v) => {
                    return Reply::err("ERR Invalid FREQ value, must be >= 0 and <= 255");
                }
                Ok(v) => freq = Some(v),
                Err(e) => return e,
            }
            j += 1;
        } else {
            return errors::SYNTAX;
        }
        j += 1;
    }
    if !replace && cx.exists(key) {
        return Reply::err("BUSYKEY Target key name already exists.");
    }
    let ttl = match int_arg(a[2]) {
        Ok(t) if t < 0 => return Reply::err("ERR Invalid TTL value, must be >= 0"),
        Ok(t) => t,
        Err(e) => return e,
    };
    let value = match decode_payload(a[3]) {
        Ok(dto) => match dto.into_value() {
            Ok(v) => v,
            Err(_) => return BAD_DATA,
        },
        Err(PayloadError::VersionOrChecksum) => return Reply::err("ERR DUMP payload version or checksum are wrong"),
        Err(PayloadError::BadData) => return BAD_DATA,
    };
    let deadline = match ttl {
        0 => 0,
        t if absttl => t as u64,
        t => (cx.now as i64).saturating_add(t) as u64,
    };
    if deadline != 0 && deadline <= cx.now && !cx.replay {
        if replace && cx.delete(key) {
            cx.propagate(vec![b"DEL".to_vec(), key.to_vec()]);
            cx.notify(notify::GENERIC, "del", key);
        }
        return Reply::OK;
    }
    cx.set_value(key, value, deadline);
    if let Some(meta) = restored_meta(cx.eng, cx.now, idle, freq) {
        let h = hash(key);
        if let Some(e) = cx.db_mut(h).get_mut(h, key) {
            e.meta = meta;
        }
    }
    if cx.journaling() {
        cx.propagate(vec![
            b"RESTORE".to_vec(),
            key.to_vec(),
            deadline.to_string().into_bytes(),
            a[3].to_vec(),
            b"REPLACE".to_vec(),
            b"ABSTTL".to_vec(),
        ]);
    }
    cx.notify(notify::GENERIC, "restore", key);
    Reply::OK
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use crate::dump::{encode_payload, ByteStr, ValueDto};
    use crate::evict::EvictionPolicy;
    use crate::notify;
    use crate::record::Record;
    use crate::reply::Reply;
    use crate::testutil::{bulk, bulks, err, state, T};

    const NOW: u64 = 1_000_000_000_000;

    fn run_ev(t: &mut T, args: &[&str]) -> (Reply, Vec<(&'static str, usize, String)>) {
        let argv: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let log = &mut t.log;
        let mut journal = |r: &Record| {
            log.push(r.clone());
            Ok(())
        };
        let out = t.engine.execute_with(&mut t.session, &argv, &mut journal);
        (out.reply, out.events.iter().map(|e| (e.event, e.db, String::from_utf8_lossy(&e.key).into_owned())).collect())
    }

    fn ops(args: &[&str]) -> Vec<Vec<String>> {
        vec![args.iter().map(|s| s.to_string()).collect()]
    }

    fn b(s: &str) -> ByteStr {
        ByteStr(s.as_bytes().to_vec())
    }

    /// Creates `key` holding `dto` through RESTORE, so the journal has it.
    fn seed(t: &mut T, key: &str, dto: &ValueDto) {
        let payload = encode_payload(dto);
        let argv: [&[u8]; 5] = [b"RESTORE", key.as_bytes(), b"0", &payload, b"REPLACE"];
        assert_eq!(t.run_bytes(&argv), Reply::OK);
    }

    fn text_set(r: &Reply) -> BTreeSet<String> {
        match r {
            Reply::Array(items) => items
                .iter()
                .map(|i| match i {
                    Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
                    other => panic!("expected bulk, got {other:?}"),
                })
                .collect(),
            other => panic!("expected array, got {other:?}"),
        }
    }

    /// One SCAN call: (next cursor, keys).
    fn scan_once(t: &mut T, args: &[&str]) -> (String, BTreeSet<String>) {
        match t.run(args) {
            Reply::Array(v) if v.len() == 2 => {
                let Reply::Bulk(c) = &v[0] else { panic!("cursor is not a bulk: {v:?}") };
                (String::from_utf8_lossy(c).into_owned(), text_set(&v[1]))
            }
            other => panic!("unexpected SCAN reply {other:?}"),
        }
    }

    fn encoding(t: &mut T, key: &str) -> Reply {
        t.run(&["OBJECT", "ENCODING", key])
    }

    #[test]
    fn del_exists_type_touch() {
        let mut t = T::new();
        t.engine.set_notify_flags(notify::KEYEVENT | notify::ALL);
        assert_eq!(t.run(&["MSET", "a", "1", "b", "2", "c", "3"]), Reply::OK);
        assert_eq!(t.run(&["EXISTS", "a", "a", "b", "nope"]), Reply::Int(3));
        assert_eq!(t.run(&["TOUCH", "a", "b", "nope", "a"]), Reply::Int(3));
        let (r, ev) = run_ev(&mut t, &["DEL", "a", "nope", "b"]);
        assert_eq!(r, Reply::Int(2));
        assert_eq!(ev, vec![("del", 0, "a".into()), ("del", 0, "b".into())]);
        assert_eq!(t.last_ops(), ops(&["DEL", "a", "nope", "b"]));
        let n = t.log.len();
        assert_eq!(t.run(&["DEL", "a", "b"]), Reply::Int(0));
        assert_eq!(t.log.len(), n, "a DEL that deleted nothing is not logged");
        assert_eq!(t.run(&["UNLINK", "c", "c"]), Reply::Int(1));
        assert_eq!(t.run(&["EXISTS", "c"]), Reply::Int(0));
        assert_eq!(t.run(&["DEL"]), err("ERR wrong number of arguments for 'del' command"));
        assert_eq!(t.run(&["EXISTS"]), err("ERR wrong number of arguments for 'exists' command"));

        assert_eq!(t.run(&["TYPE", "nope"]), Reply::Simple("none".into()));
        t.run(&["SET", "s", "v"]);
        assert_eq!(t.run(&["TYPE", "s"]), Reply::Simple("string".into()));
        seed(&mut t, "l", &ValueDto::List(vec![b("x")]));
        seed(&mut t, "h", &ValueDto::Hash(vec![(b("f"), b("v"))]));
        seed(&mut t, "st", &ValueDto::Set(vec![b("m")]));
        seed(&mut t, "z", &ValueDto::ZSet(vec![(b("m"), 1.0)]));
        for (k, ty) in [("l", "list"), ("h", "hash"), ("st", "set"), ("z", "zset")] {
            assert_eq!(t.run(&["TYPE", k]), Reply::Simple(ty.into()), "{k}");
        }
        // A key past its deadline is gone for every command.
        t.run(&["SET", "e", "v", "PX", "10"]);
        assert_eq!(t.run(&["EXISTS", "e"]), Reply::Int(1));
        t.clock.advance(10);
        assert_eq!(t.run(&["EXISTS", "e"]), Reply::Int(0));
        assert_eq!(t.run(&["TYPE", "e"]), Reply::Simple("none".into()));
        t.check_replay();
    }

    #[test]
    fn keys_pattern_and_expiry() {
        let mut t = T::new();
        assert_eq!(t.run(&["KEYS", "*"]), Reply::Array(vec![]));
        t.run(&["MSET", "hello", "1", "hallo", "2", "hxllo", "3", "world", "4", "h*llo", "5"]);
        assert_eq!(text_set(&t.run(&["KEYS", "*"])).len(), 5);
        let want = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        assert_eq!(text_set(&t.run(&["KEYS", "h?llo"])), want(&["hello", "hallo", "hxllo", "h*llo"]));
        assert_eq!(text_set(&t.run(&["KEYS", "h[ae]llo"])), want(&["hello", "hallo"]));
        assert_eq!(text_set(&t.run(&["KEYS", "h\\*llo"])), want(&["h*llo"]));
        assert_eq!(text_set(&t.run(&["KEYS", "nomatch*"])), want(&[]));
        t.run(&["SET", "hullo", "x", "PX", "5"]);
        assert!(text_set(&t.run(&["KEYS", "*"])).contains("hullo"));
        t.clock.advance(5);
        assert!(!text_set(&t.run(&["KEYS", "*"])).contains("hullo"));
        assert_eq!(t.run(&["KEYS"]), err("ERR wrong number of arguments for 'keys' command"));
        t.check_replay();
    }

    #[test]
    fn scan_visits_every_key_across_shards() {
        let mut t = T::new();
        let n = 300;
        for chunk in (0..n).collect::<Vec<_>>().chunks(50) {
            let mut argv = vec!["MSET".to_string()];
            for i in chunk {
                argv.push(format!("key:{i}"));
                argv.push(i.to_string());
            }
            let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
            assert_eq!(t.run(&argv), Reply::OK);
        }
        for count in ["1", "3", "10", "1000"] {
            let mut seen = BTreeSet::new();
            let mut cursor = "0".to_string();
            let mut calls = 0;
            loop {
                let (next, keys) = scan_once(&mut t, &["SCAN", &cursor, "COUNT", count]);
                calls += 1;
                seen.extend(keys);
                cursor = next;
                if cursor == "0" {
                    break;
                }
                assert!(calls < 10_000, "SCAN does not terminate");
            }
            assert_eq!(seen.len(), n, "COUNT {count} missed keys");
        }
        // One call with a huge COUNT returns everything and ends the iteration.
        let (next, keys) = scan_once(&mut t, &["SCAN", "0", "COUNT", "100000"]);
        assert_eq!((next.as_str(), keys.len()), ("0", n));
        t.check_replay();
    }

    #[test]
    fn scan_guarantee_holds_while_tables_resize() {
        let mut t = T::new();
        for i in 0..200 {
            t.run(&["SET", &format!("stay{i}"), "v"]);
        }
        let mut seen = BTreeSet::new();
        let mut cursor = "0".to_string();
        let mut round = 0;
        loop {
            let (next, keys) = scan_once(&mut t, &["SCAN", &cursor, "COUNT", "2"]);
            seen.extend(keys);
            cursor = next;
            round += 1;
            // Grow every shard's table mid-iteration, then shrink them.
            if round == 5 {
                for i in 0..2000 {
                    t.run(&["SET", &format!("tmp{i}"), "v"]);
                }
            }
            if round == 60 {
                for i in 0..2000 {
                    t.run(&["DEL", &format!("tmp{i}")]);
                }
            }
            if cursor == "0" {
                break;
            }
        }
        for i in 0..200 {
            assert!(seen.contains(&format!("stay{i}")), "missed stay{i}");
        }
        t.check_replay();
    }

    #[test]
    fn scan_options_and_errors() {
        let mut t = T::new();
        t.run(&["MSET", "s1", "a", "s2", "b", "other", "c"]);
        seed(&mut t, "l1", &ValueDto::List(vec![b("x")]));
        seed(&mut t, "h1", &ValueDto::Hash(vec![(b("f"), b("v"))]));
        let (c, keys) = scan_once(&mut t, &["SCAN", "0", "COUNT", "1000", "MATCH", "s*"]);
        assert_eq!(c, "0");
        assert_eq!(keys, ["s1", "s2"].iter().map(|s| s.to_string()).collect());
        let (_, keys) = scan_once(&mut t, &["SCAN", "0", "count", "1000", "type", "LIST"]);
        assert_eq!(keys, ["l1".to_string()].into_iter().collect());
        let (_, keys) = scan_once(&mut t, &["SCAN", "0", "COUNT", "1000", "TYPE", "string", "MATCH", "*1"]);
        assert_eq!(keys, ["s1".to_string()].into_iter().collect());
        let (_, keys) = scan_once(&mut t, &["SCAN", "0", "COUNT", "1000", "TYPE", "nosuchtype"]);
        assert!(keys.is_empty());
        let (_, keys) = scan_once(&mut t, &["SCAN", "0", "COUNT", "1000", "MATCH", "*"]);
        assert_eq!(keys.len(), 5);

        assert_eq!(t.run(&["SCAN", "abc"]), err("ERR invalid cursor"));
        assert_eq!(t.run(&["SCAN", " 1"]), err("ERR invalid cursor"));
        assert_eq!(t.run(&["SCAN", "1x"]), err("ERR invalid cursor"));
        assert_eq!(t.run(&["SCAN", "-"]), err("ERR invalid cursor"));
        assert_eq!(t.run(&["SCAN", "18446744073709551616"]), err("ERR invalid cursor"));
        // strtoul accepts all of these.
        for c in ["18446744073709551615", "-1", "+0", ""] {
            assert!(matches!(t.run(&["SCAN", c]), Reply::Array(_)), "cursor {c:?}");
        }
        assert_eq!(t.run(&["SCAN", "0", "COUNT", "0"]), err("ERR syntax error"));
        assert_eq!(t.run(&["SCAN", "0", "COUNT", "x"]), err("ERR value is not an integer or out of range"));
        assert_eq!(t.run(&["SCAN", "0", "COUNT"]), err("ERR syntax error"));
        assert_eq!(t.run(&["SCAN", "0", "MATCH"]), err("ERR syntax error"));
        assert_eq!(t.run(&["SCAN", "0", "BOGUS", "1"]), err("ERR syntax error"));
        assert_eq!(t.run(&["SCAN"]), err("ERR wrong number of arguments for 'scan' command"));
        t.check_replay();
    }

    #[test]
    fn scan_hides_and_deletes_expired_keys() {
        let mut t = T::new();
        t.run(&["SET", "live", "v"]);
        t.run(&["SET", "gone", "v", "PX", "100"]);
        t.run(&["SET", "gone2", "v", "PX", "100"]);
        t.clock.advance(100);
        let (c, keys) = scan_once(&mut t, &["SCAN", "0", "COUNT", "1000", "MATCH", "gone"]);
        assert_eq!(c, "0");
        assert!(keys.is_empty());
        // The matching expired key was deleted (and the deletion logged);
        // the other one waits for its own access.
        assert_eq!(t.last_ops(), ops(&["DEL", "gone"]));
        assert_eq!(t.engine.dbsize(0), 2);
        let (_, keys) = scan_once(&mut t, &["SCAN", "0", "COUNT", "1000"]);
        assert_eq!(keys, ["live".to_string()].into_iter().collect());
        assert_eq!(t.engine.dbsize(0), 1);
        t.check_replay();
    }

    #[test]
    fn randomkey() {
        let mut t = T::new();
        assert_eq!(t.run(&["RANDOMKEY"]), Reply::Nil);
        t.run(&["MSET", "a", "1", "b", "2"]);
        for _ in 0..20 {
            let r = t.run(&["RANDOMKEY"]);
            assert!(r == bulk("a") || r == bulk("b"), "{r:?}");
        }
        t.run(&["DEL", "a", "b"]);
        t.run(&["SET", "e", "v", "PX", "1"]);
        t.clock.advance(1);
        assert_eq!(t.run(&["RANDOMKEY"]), Reply::Nil);
        assert_eq!(t.run(&["RANDOMKEY", "x"]), err("ERR wrong number of arguments for 'randomkey' command"));
        t.check_replay();
    }

    #[test]
    fn rename_and_renamenx() {
        let mut t = T::new();
        t.engine.set_notify_flags(notify::KEYEVENT | notify::ALL);
        assert_eq!(t.run(&["RENAME", "nope", "x"]), err("ERR no such key"));
        assert_eq!(t.run(&["RENAMENX", "nope", "x"]), err("ERR no such key"));
        t.run(&["SET", "a", "1", "PX", "5000"]);
        let n = t.log.len();
        assert_eq!(t.run(&["RENAME", "a", "a"]), Reply::OK);
        assert_eq!(t.run(&["RENAMENX", "a", "a"]), Reply::Int(0));
        assert_eq!(t.log.len(), n, "renaming a key to itself changes nothing");
        let (r, ev) = run_ev(&mut t, &["RENAME", "a", "b"]);
        assert_eq!(r, Reply::OK);
        assert_eq!(ev, vec![("rename_from", 0, "a".into()), ("rename_to", 0, "b".into())]);
        assert_eq!(t.run(&["GET", "b"]), bulk("1"));
        assert_eq!(t.run(&["EXISTS", "a"]), Reply::Int(0));
        assert_eq!(t.run(&["PTTL", "b"]), Reply::Int(5000), "RENAME keeps the TTL");
        // Overwrites a destination of another type, dropping its TTL state.
        seed(&mut t, "l", &ValueDto::List(vec![b("x")]));
        assert_eq!(t.run(&["RENAME", "l", "b"]), Reply::OK);
        assert_eq!(t.run(&["TYPE", "b"]), Reply::Simple("list".into()));
        assert_eq!(t.run(&["TTL", "b"]), Reply::Int(-1));
        t.run(&["SET", "c", "3"]);
        assert_eq!(t.run(&["RENAMENX", "c", "b"]), Reply::Int(0));
        assert_eq!(t.run(&["RENAMENX", "c", "d"]), Reply::Int(1));
        assert_eq!(t.run(&["GET", "d"]), bulk("3"));
        // An expired source is missing.
        t.run(&["SET", "e", "v", "PX", "10"]);
        t.clock.advance(10);
        assert_eq!(t.run(&["RENAME", "e", "f"]), err("ERR no such key"));
        assert_eq!(t.run(&["RENAME", "a"]), err("ERR wrong number of arguments for 'rename' command"));
        t.check_replay();
    }

    #[test]
    fn copy_between_keys_and_databases() {
        let mut t = T::new();
        t.engine.set_notify_flags(notify::KEYEVENT | notify::ALL);
        t.run(&["SET", "a", "1", "PX", "9000"]);
        assert_eq!(t.run(&["COPY", "a", "a"]), err("ERR source and destination objects are the same"));
        assert_eq!(t.run(&["COPY", "a", "a", "DB", "0"]), err("ERR source and destination objects are the same"));
        assert_eq!(t.run(&["COPY", "a", "b", "DB", "16"]), err("ERR DB index is out of range"));
        assert_eq!(t.run(&["COPY", "a", "b", "DB", "-1"]), err("ERR DB index is out of range"));
        assert_eq!(t.run(&["COPY", "a", "b", "DB", "x"]), err("ERR value is not an integer or out of range"));
        assert_eq!(t.run(&["COPY", "a", "b", "DB", "99999999999"]), err("ERR value is not an integer or out of range"));
        assert_eq!(t.run(&["COPY", "a", "b", "DB"]), err("ERR syntax error"));
        assert_eq!(t.run(&["COPY", "a", "b", "BOGUS"]), err("ERR syntax error"));
        assert_eq!(t.run(&["COPY", "nope", "b"]), Reply::Int(0));
        let (r, ev) = run_ev(&mut t, &["COPY", "a", "b"]);
        assert_eq!(r, Reply::Int(1));
        assert_eq!(ev, vec![("copy_to", 0, "b".into())]);
        assert_eq!(t.run(&["GET", "b"]), bulk("1"));
        assert_eq!(t.run(&["PTTL", "b"]), Reply::Int(9000));
        t.run(&["SET", "a", "2"]);
        assert_eq!(t.run(&["COPY", "a", "b"]), Reply::Int(0));
        assert_eq!(t.run(&["COPY", "a", "b", "replace"]), Reply::Int(1));
        assert_eq!(t.run(&["GET", "b"]), bulk("2"));
        assert_eq!(t.run(&["TTL", "b"]), Reply::Int(-1));
        // Into another database, same name.
        let (r, ev) = run_ev(&mut t, &["COPY", "a", "a", "DB", "3"]);
        assert_eq!(r, Reply::Int(1));
        assert_eq!(ev, vec![("copy_to", 3, "a".into())]);
        assert_eq!(t.run(&["COPY", "a", "a", "DB", "3"]), Reply::Int(0));
        assert_eq!(t.run(&["COPY", "a", "a", "REPLACE", "DB", "3"]), Reply::Int(1));
        // The copy is deep: changing it leaves the source alone.
        seed(&mut t, "l", &ValueDto::List(vec![b("x"), b("y")]));
        assert_eq!(t.run(&["COPY", "l", "l2"]), Reply::Int(1));
        assert_eq!(t.run(&["RPUSH", "l2", "z"]), Reply::Int(3));
        assert_eq!(t.run(&["LRANGE", "l", "0", "-1"]), bulks(&["x", "y"]));
        assert_eq!(t.run(&["SELECT", "3"]), Reply::OK);
        assert_eq!(t.run(&["GET", "a"]), bulk("2"));
        t.check_replay();
    }

    #[test]
    fn move_between_databases() {
        let mut t = T::new();
        t.engine.set_notify_flags(notify::KEYEVENT | notify::ALL);
        t.run(&["SET", "k", "v", "PX", "7000"]);
        assert_eq!(t.run(&["MOVE", "k", "0"]), err("ERR source and destination objects are the same"));
        assert_eq!(t.run(&["MOVE", "k", "16"]), err("ERR DB index is out of range"));
        assert_eq!(t.run(&["MOVE", "k", "-1"]), err("ERR DB index is out of range"));
        assert_eq!(t.run(&["MOVE", "k", "one"]), err("ERR value is not an integer or out of range"));
        assert_eq!(t.run(&["MOVE", "nope", "1"]), Reply::Int(0));
        let (r, ev) = run_ev(&mut t, &["MOVE", "k", "1"]);
        assert_eq!(r, Reply::Int(1));
        assert_eq!(ev, vec![("move_from", 0, "k".into()), ("move_to", 1, "k".into())]);
        assert_eq!(t.run(&["EXISTS", "k"]), Reply::Int(0));
        t.run(&["SET", "k", "other"]);
        assert_eq!(t.run(&["MOVE", "k", "1"]), Reply::Int(0), "the target already has the key");
        assert_eq!(t.run(&["GET", "k"]), bulk("other"));
        t.run(&["SELECT", "1"]);
        assert_eq!(t.run(&["GET", "k"]), bulk("v"));
        assert_eq!(t.run(&["PTTL", "k"]), Reply::Int(7000), "MOVE keeps the TTL");
        assert_eq!(t.run(&["MOVE", "k", "0"]), Reply::Int(0));
        t.check_replay();
    }

    #[test]
    fn expire_family_and_ttls() {
        let mut t = T::new();
        t.engine.set_notify_flags(notify::KEYEVENT | notify::ALL);
        assert_eq!(t.run(&["EXPIRE", "nope", "10"]), Reply::Int(0));
        assert_eq!(t.run(&["TTL", "nope"]), Reply::Int(-2));
        assert_eq!(t.run(&["PTTL", "nope"]), Reply::Int(-2));
        assert_eq!(t.run(&["EXPIRETIME", "nope"]), Reply::Int(-2));
        assert_eq!(t.run(&["PEXPIRETIME", "nope"]), Reply::Int(-2));
        t.run(&["SET", "k", "v"]);
        assert_eq!(t.run(&["TTL", "k"]), Reply::Int(-1));
        assert_eq!(t.run(&["PEXPIRETIME", "k"]), Reply::Int(-1));

        let (r, ev) = run_ev(&mut t, &["EXPIRE", "k", "100"]);
        assert_eq!(r, Reply::Int(1));
        assert_eq!(ev, vec![("expire", 0, "k".into())]);
        let at = NOW + 100_000;
        assert_eq!(t.last_ops(), ops(&["PEXPIREAT", "k", &at.to_string()]));
        assert_eq!(t.run(&["TTL", "k"]), Reply::Int(100));
        assert_eq!(t.run(&["PTTL", "k"]), Reply::Int(100_000));
        assert_eq!(t.run(&["EXPIRETIME", "k"]), Reply::Int((at / 1000) as i64));
        assert_eq!(t.run(&["PEXPIRETIME", "k"]), Reply::Int(at as i64));
        // TTL rounds to the nearest second.
        t.clock.advance(1_499);
        assert_eq!(t.run(&["TTL", "k"]), Reply::Int(99));
        t.clock.advance(2);
        assert_eq!(t.run(&["TTL", "k"]), Reply::Int(98));
        assert_eq!(t.run(&["PTTL", "k"]), Reply::Int(98_499));

        let now = NOW + 1_501;
        assert_eq!(t.run(&["PEXPIRE", "k", "2500"]), Reply::Int(1));
        assert_eq!(t.last_ops(), ops(&["PEXPIREAT", "k", &(now + 2500).to_string()]));
        let at = (now / 1000 + 50) * 1000;
        assert_eq!(t.run(&["EXPIREAT", "k", &(at / 1000).to_string()]), Reply::Int(1));
        assert_eq!(t.last_ops(), ops(&["PEXPIREAT", "k", &at.to_string()]));
        assert_eq!(t.run(&["PEXPIREAT", "k", &(at + 7).to_string()]), Reply::Int(1));
        assert_eq!(t.run(&["PEXPIRETIME", "k"]), Reply::Int((at + 7) as i64));

        let (r, ev) = run_ev(&mut t, &["PERSIST", "k"]);
        assert_eq!(r, Reply::Int(1));
        assert_eq!(ev, vec![("persist", 0, "k".into())]);
        assert_eq!(t.last_ops(), ops(&["PERSIST", "k"]));
        assert_eq!(t.run(&["PERSIST", "k"]), Reply::Int(0));
        assert_eq!(t.run(&["PERSIST", "nope"]), Reply::Int(0));
        assert_eq!(t.run(&["TTL", "k"]), Reply::Int(-1));

        // A time in the past deletes the key, logged as DEL.
        let (r, ev) = run_ev(&mut t, &["EXPIRE", "k", "-1"]);
        assert_eq!(r, Reply::Int(1));
        assert_eq!(ev, vec![("del", 0, "k".into())]);
        assert_eq!(t.last_ops(), ops(&["DEL", "k"]));
        assert_eq!(t.run(&["EXISTS", "k"]), Reply::Int(0));
        t.run(&["SET", "k", "v"]);
        assert_eq!(t.run(&["PEXPIREAT", "k", &now.to_string()]), Reply::Int(1));
        assert_eq!(t.run(&["EXISTS", "k"]), Reply::Int(0));
        t.run(&["SET", "k", "v"]);
        assert_eq!(t.run(&["EXPIREAT", "k", "0"]), Reply::Int(1));
        assert_eq!(t.run(&["EXISTS", "k"]), Reply::Int(0));

        // The key really expires when its time comes.
        t.run(&["SET", "k", "v"]);
        t.run(&["PEXPIRE", "k", "10"]);
        t.clock.advance(10);
        assert_eq!(t.run(&["TTL", "k"]), Reply::Int(-2));
        t.check_replay();
    }

    #[test]
    fn expire_errors() {
        let mut t = T::new();
        t.run(&["SET", "k", "v"]);
        assert_eq!(t.run(&["EXPIRE", "k", "abc"]), err("ERR value is not an integer or out of range"));
        assert_eq!(t.run(&["EXPIRE", "k", "1.5"]), err("ERR value is not an integer or out of range"));
        assert_eq!(t.run(&["EXPIRE", "k", "9223372036854775807"]), err("ERR invalid expire time in 'expire' command"));
        assert_eq!(t.run(&["EXPIRE", "k", "-9223372036854775808"]), err("ERR invalid expire time in 'expire' command"));
        assert_eq!(
            t.run(&["PEXPIRE", "k", "9223372036854775807"]),
            err("ERR invalid expire time in 'pexpire' command")
        );
        assert_eq!(
            t.run(&["EXPIREAT", "k", "9223372036854775807"]),
            err("ERR invalid expire time in 'expireat' command")
        );
        // PEXPIREAT takes any 64-bit time as is.
        assert_eq!(t.run(&["PEXPIREAT", "k", "9223372036854775807"]), Reply::Int(1));
        assert_eq!(t.run(&["PERSIST", "k"]), Reply::Int(1));
        assert_eq!(t.run(&["EXPIRE", "k", "10", "FOO"]), err("ERR Unsupported option FOO"));
        let nx_err = err("ERR NX and XX, GT or LT options at the same time are not compatible");
        for combo in [["NX", "XX"], ["NX", "GT"], ["lt", "nx"]] {
            assert_eq!(t.run(&["EXPIRE", "k", "10", combo[0], combo[1]]), nx_err, "{combo:?}");
        }
        assert_eq!(
            t.run(&["PEXPIRE", "k", "10", "GT", "LT"]),
            err("ERR GT and LT options at the same time are not compatible")
        );
        // Options are checked before the time.
        assert_eq!(t.run(&["EXPIRE", "k", "abc", "NX", "XX"]), nx_err);
        assert_eq!(t.run(&["EXPIRE", "k"]), err("ERR wrong number of arguments for 'expire' command"));
        assert_eq!(t.run(&["TTL"]), err("ERR wrong number of arguments for 'ttl' command"));
        assert_eq!(t.run(&["TTL", "k"]), Reply::Int(-1), "errors change nothing");
        t.check_replay();
    }

    #[test]
    fn expire_nx_xx_gt_lt_matrix() {
        let mut t = T::new();
        // (options, key has a TTL of 100s?, new TTL in s, expected reply)
        let cases: &[(&[&str], bool, i64, i64)] = &[
            (&["NX"], false, 50, 1),
            (&["NX"], true, 50, 0),
            (&["XX"], false, 50, 0),
            (&["XX"], true, 50, 1),
            (&["GT"], false, 50, 0),
            (&["GT"], true, 50, 0),
            (&["GT"], true, 100, 0),
            (&["GT"], true, 150, 1),
            (&["LT"], false, 50, 1),
            (&["LT"], true, 50, 1),
            (&["LT"], true, 100, 0),
            (&["LT"], true, 150, 0),
            (&["XX", "GT"], false, 150, 0),
            (&["XX", "GT"], true, 150, 1),
            (&["XX", "GT"], true, 50, 0),
            (&["XX", "LT"], false, 50, 0),
            (&["XX", "LT"], true, 50, 1),
            (&["gt", "xx"], true, 150, 1),
            (&["NX", "NX"], false, 50, 1),
        ];
        for (i, &(opts, has_ttl, secs, want)) in cases.iter().enumerate() {
            let key = format!("k{i}");
            t.run(&["SET", &key, "v"]);
            if has_ttl {
                t.run(&["EXPIRE", &key, "100"]);
            }
            let secs_s = secs.to_string();
            let mut argv = vec!["EXPIRE", key.as_str(), secs_s.as_str()];
            argv.extend_from_slice(opts);
            assert_eq!(t.run(&argv), Reply::Int(want), "case {i}: {opts:?} ttl={has_ttl} new={secs}");
            let ttl = match (want, has_ttl) {
                (1, _) => secs,
                (_, true) => 100,
                (_, false) => -1,
            };
            assert_eq!(t.run(&["TTL", &key]), Reply::Int(ttl), "case {i}: {opts:?}");
        }
        // LT with no TTL sets one even when the time is in the past: the key goes.
        t.run(&["SET", "p", "v"]);
        assert_eq!(t.run(&["EXPIRE", "p", "-5", "LT"]), Reply::Int(1));
        assert_eq!(t.run(&["EXISTS", "p"]), Reply::Int(0));
        t.check_replay();
    }

    #[test]
    fn replayed_past_expiry_sets_the_deadline() {
        let t = T::new();
        let key = b"k".as_slice();
        for argv in [[b"SET".as_slice(), key, b"v"], [b"PEXPIREAT", key, b"5"], [b"EXPIRE", key, b"-10"]] {
            let r = t.engine.apply_op(&crate::record::Op::new(0, &argv));
            assert!(r.is_ok(), "{argv:?}: {r:?}");
        }
        let s = state(&t.engine);
        // Replay never deletes because a time has passed: the log's own DEL does.
        assert_eq!(s.get(&(0, b"k".to_vec())).map(|v| v.1), Some(NOW - 10_000));
    }

    #[test]
    fn object_encoding() {
        let mut t = T::new();
        assert_eq!(encoding(&mut t, "nope"), Reply::Nil);
        t.run(&["SET", "int", "12345"]);
        t.run(&["SET", "neg", "-9223372036854775808"]);
        t.run(&["SET", "notint", "0123"]);
        t.run(&["SET", "emb", &"x".repeat(44)]);
        t.run(&["SET", "raw", &"x".repeat(45)]);
        t.run(&["SET", "big", &"x".repeat(1000)]);
        t.run(&["SET", "app", "1"]);
        t.run(&["APPEND", "app", "2"]);
        t.run(&["SET", "rng", "abc"]);
        t.run(&["SETRANGE", "rng", "0", "x"]);
        t.run(&["INCR", "ctr"]);
        for (k, enc) in [
            ("int", "int"),
            ("neg", "int"),
            ("notint", "embstr"),
            ("emb", "embstr"),
            ("raw", "raw"),
            ("big", "raw"),
            ("app", "raw"),
            ("rng", "raw"),
            ("ctr", "int"),
        ] {
            assert_eq!(encoding(&mut t, k), bulk(enc), "{k}");
        }

        seed(&mut t, "list", &ValueDto::List(vec![b("a")]));
        seed(&mut t, "biglist", &ValueDto::List((0..500).map(|i| b(&i.to_string())).collect()));
        assert_eq!(encoding(&mut t, "list"), bulk("quicklist"));
        assert_eq!(encoding(&mut t, "biglist"), bulk("quicklist"));

        let small: Vec<(ByteStr, ByteStr)> = (0..128).map(|i| (b(&format!("f{i}")), b(&"v".repeat(64)))).collect();
        seed(&mut t, "h", &ValueDto::Hash(small.clone()));
        assert_eq!(encoding(&mut t, "h"), bulk("listpack"));
        let mut many = small.clone();
        many.push((b("extra"), b("v")));
        seed(&mut t, "h2", &ValueDto::Hash(many));
        assert_eq!(encoding(&mut t, "h2"), bulk("hashtable"));
        seed(&mut t, "h3", &ValueDto::Hash(vec![(b("f"), b(&"v".repeat(65)))]));
        assert_eq!(encoding(&mut t, "h3"), bulk("hashtable"));
        seed(&mut t, "h4", &ValueDto::Hash(vec![(b(&"f".repeat(65)), b("v"))]));
        assert_eq!(encoding(&mut t, "h4"), bulk("hashtable"));

        seed(&mut t, "s", &ValueDto::Set((0..512).map(|i| b(&i.to_string())).collect()));
        assert_eq!(encoding(&mut t, "s"), bulk("intset"));
        seed(&mut t, "s2", &ValueDto::Set((0..513).map(|i| b(&i.to_string())).collect()));
        assert_eq!(encoding(&mut t, "s2"), bulk("hashtable"));
        seed(&mut t, "s3", &ValueDto::Set(vec![b("1"), b("a")]));
        assert_eq!(encoding(&mut t, "s3"), bulk("hashtable"));

        let zs: Vec<(ByteStr, f64)> = (0..128).map(|i| (b(&format!("{i:064}")), f64::from(i))).collect();
        seed(&mut t, "z", &ValueDto::ZSet(zs.clone()));
        assert_eq!(encoding(&mut t, "z"), bulk("listpack"));
        let mut zbig = zs;
        zbig.push((b("one more"), 1000.0));
        seed(&mut t, "z2", &ValueDto::ZSet(zbig));
        assert_eq!(encoding(&mut t, "z2"), bulk("skiplist"));
        seed(&mut t, "z3", &ValueDto::ZSet(vec![(b(&"m".repeat(65)), 1.0)]));
        assert_eq!(encoding(&mut t, "z3"), bulk("skiplist"));
        t.check_replay();
    }

    #[test]
    fn object_freq_idletime_refcount_help() {
        let mut t = T::new();
        t.run(&["SET", "k", "hello"]);
        t.run(&["SET", "n", "100"]);
        t.run(&["SET", "bign", "10000"]);
        assert_eq!(t.run(&["OBJECT", "REFCOUNT", "k"]), Reply::Int(1));
        assert_eq!(t.run(&["OBJECT", "REFCOUNT", "n"]), Reply::Int(2147483647));
        assert_eq!(t.run(&["OBJECT", "REFCOUNT", "bign"]), Reply::Int(1));
        assert_eq!(t.run(&["OBJECT", "REFCOUNT", "nope"]), Reply::Nil);
        t.clock.advance(7_000);
        assert_eq!(t.run(&["OBJECT", "IDLETIME", "k"]), Reply::Int(7));
        assert_eq!(t.run(&["OBJECT", "IDLETIME", "k"]), Reply::Int(7), "OBJECT does not touch the key");
        t.run(&["GET", "k"]);
        assert_eq!(t.run(&["OBJECT", "IDLETIME", "k"]), Reply::Int(0));
        assert_eq!(
            t.run(&["OBJECT", "FREQ", "k"]),
            err(
                "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."
            )
        );
        assert_eq!(t.run(&["OBJECT", "FREQ", "nope"]), Reply::Nil);

        t.engine.set_maxmemory_policy(EvictionPolicy::AllKeysLfu);
        t.run(&["SET", "f", "v"]);
        assert_eq!(t.run(&["OBJECT", "FREQ", "f"]), Reply::Int(5), "LFU_INIT_VAL");
        assert_eq!(
            t.run(&["OBJECT", "IDLETIME", "f"]),
            err(
                "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust."
            )
        );
        // Shared integers are off when an LRU/LFU policy has a limit to enforce.
        assert_eq!(t.run(&["OBJECT", "REFCOUNT", "n"]), Reply::Int(2147483647));
        t.engine.set_maxmemory(1 << 30);
        assert_eq!(t.run(&["OBJECT", "REFCOUNT", "n"]), Reply::Int(1));
        t.engine.set_maxmemory(0);

        let Reply::Array(help) = t.run(&["OBJECT", "help"]) else { panic!("OBJECT HELP is an array") };
        assert_eq!(help.len(), 15);
        assert_eq!(help[0], Reply::Simple("OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:".into()));
        assert_eq!(help[1], Reply::Simple("ENCODING <key>".into()));
        assert_eq!(help[14], Reply::Simple("    Print this help.".into()));
        assert_eq!(t.run(&["OBJECT", "foo", "k"]), err("ERR unknown subcommand 'foo'. Try OBJECT HELP."));
        assert_eq!(t.run(&["OBJECT", "ENCODING"]), err("ERR wrong number of arguments for 'object|encoding' command"));
        assert_eq!(
            t.run(&["OBJECT", "encoding", "k", "x"]),
            err("ERR wrong number of arguments for 'object|encoding' command")
        );
        assert_eq!(t.run(&["OBJECT", "HELP", "x"]), err("ERR wrong number of arguments for 'object|help' command"));
        assert_eq!(t.run(&["OBJECT"]), err("ERR wrong number of arguments for 'object' command"));
        t.check_replay();
    }

    #[test]
    fn memory_usage() {
        let mut t = T::new();
        t.run(&["SET", "k", "v"]);
        t.run(&["SET", "big", &"x".repeat(5000)]);
        let Reply::Int(small) = t.run(&["MEMORY", "USAGE", "k"]) else { panic!("MEMORY USAGE is an integer") };
        let Reply::Int(big) = t.run(&["memory", "usage", "big", "SAMPLES", "0"]) else { panic!("integer") };
        assert!(small > 0 && big > 5000 && big > small, "{small} {big}");
        assert_eq!(t.run(&["MEMORY", "USAGE", "nope"]), Reply::Nil);
        assert_eq!(t.run(&["MEMORY", "USAGE", "k", "SAMPLES", "-1"]), err("ERR syntax error"));
        assert_eq!(
            t.run(&["MEMORY", "USAGE", "k", "SAMPLES", "x"]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(t.run(&["MEMORY", "USAGE", "k", "SAMPLES"]), err("ERR syntax error"));
        assert_eq!(t.run(&["MEMORY", "USAGE", "k", "FOO", "1"]), err("ERR syntax error"));
        assert_eq!(t.run(&["MEMORY", "USAGE"]), err("ERR wrong number of arguments for 'memory|usage' command"));
        assert_eq!(t.run(&["MEMORY", "PURGE"]), Reply::OK);
        assert_eq!(t.run(&["MEMORY", "nope"]), err("ERR unknown subcommand 'nope'. Try MEMORY HELP."));
        let Reply::Array(help) = t.run(&["MEMORY", "HELP"]) else { panic!("MEMORY HELP is an array") };
        assert_eq!(help.len(), 14);
        assert_eq!(help[0], Reply::Simple("MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:".into()));
        t.check_replay();
    }

    #[test]
    fn dump_restore_roundtrip_every_type() {
        let mut t = T::new();
        t.engine.set_notify_flags(notify::KEYEVENT | notify::ALL);
        assert_eq!(t.run(&["DUMP", "nope"]), Reply::Nil);
        t.run(&["SET", "str", "hello world"]);
        t.run(&["SET", "bigstr", &"y".repeat(3000)]);
        t.run(&["RPUSH", "list", "a", "b", "a", ""]);
        t.run(&["SADD", "set", "x", "y", "1"]);
        seed(&mut t, "hash", &ValueDto::Hash(vec![(b("f1"), b("v1")), (b("f2"), ByteStr(vec![0, 255, 10]))]));
        seed(&mut t, "zset", &ValueDto::ZSet(vec![(b("lo"), f64::NEG_INFINITY), (b("mid"), -1.5), (b("hi"), 3.25)]));
        for key in ["str", "bigstr", "list", "set", "hash", "zset"] {
            let Reply::Bulk(payload) = t.run(&["DUMP", key]) else { panic!("DUMP {key} is a bulk") };
            assert!(payload.starts_with(b"FCDUMP"));
            let copy = format!("{key}:copy");
            let argv: [&[u8]; 4] = [b"RESTORE", copy.as_bytes(), b"0", &payload];
            let out = {
                let log = &mut t.log;
                let mut journal = |r: &Record| {
                    log.push(r.clone());
                    Ok(())
                };
                t.engine.execute_with(&mut t.session, &argv, &mut journal)
            };
            assert_eq!(out.reply, Reply::OK, "{key}");
            assert_eq!(out.events.iter().map(|e| e.event).collect::<Vec<_>>(), vec!["restore"]);
            let s = state(&t.engine);
            assert_eq!(s.get(&(0, key.as_bytes().to_vec())), s.get(&(0, copy.as_bytes().to_vec())), "{key}");
            // The copy dumps to the same payload.
            assert_eq!(t.run(&["DUMP", &copy]), Reply::Bulk(payload.clone()), "{key}");
        }
        assert_eq!(t.run(&["LRANGE", "list:copy", "0", "-1"]), bulks(&["a", "b", "a", ""]));
        assert_eq!(t.run(&["DUMP"]), err("ERR wrong number of arguments for 'dump' command"));
        t.check_replay();
    }

    #[test]
    fn restore_ttl_options_and_logging() {
        let mut t = T::new();
        t.run(&["RPUSH", "src", "a", "b"]);
        let Reply::Bulk(p) = t.run(&["DUMP", "src"]) else { panic!("bulk") };
        let restore = |t: &mut T, args: &[&[u8]]| {
            let mut argv: Vec<&[u8]> = vec![b"RESTORE"];
            argv.extend_from_slice(args);
            t.run_bytes(&argv)
        };
        // Relative TTL: logged as an absolute one.
        assert_eq!(restore(&mut t, &[b"k", b"5000", &p]), Reply::OK);
        assert_eq!(t.run(&["PTTL", "k"]), Reply::Int(5000));
        let logged = &t.log[t.log.len() - 1].ops[0].argv;
        let logged: Vec<&[u8]> = logged.iter().map(|a| a.0.as_slice()).collect();
        let at = (NOW + 5000).to_string();
        assert_eq!(logged, vec![b"RESTORE".as_slice(), b"k", at.as_bytes(), &p, b"REPLACE", b"ABSTTL"]);

        assert_eq!(restore(&mut t, &[b"k", b"0", &p]), err("BUSYKEY Target key name already exists."));
        assert_eq!(restore(&mut t, &[b"k", b"0", &p, b"REPLACE"]), Reply::OK);
        assert_eq!(t.run(&["TTL", "k"]), Reply::Int(-1));
        let at = (NOW + 60_000).to_string();
        assert_eq!(restore(&mut t, &[b"k", at.as_bytes(), &p, b"replace", b"absttl"]), Reply::OK);
        assert_eq!(t.run(&["PEXPIRETIME", "k"]), Reply::Int(NOW as i64 + 60_000));

        // ABSTTL in the past: nothing created; a REPLACEd key is deleted (logged as DEL).
        let past = (NOW - 1).to_string();
        assert_eq!(restore(&mut t, &[b"new", past.as_bytes(), &p, b"ABSTTL"]), Reply::OK);
        assert_eq!(t.run(&["EXISTS", "new"]), Reply::Int(0));
        assert_eq!(restore(&mut t, &[b"k", past.as_bytes(), &p, b"ABSTTL", b"REPLACE"]), Reply::OK);
        assert_eq!(t.run(&["EXISTS", "k"]), Reply::Int(0));
        assert_eq!(t.last_ops(), ops(&["DEL", "k"]));

        // Errors, in Redis' order: options, BUSYKEY, TTL, payload.
        t.run(&["SET", "busy", "v"]);
        assert_eq!(restore(&mut t, &[b"k", b"0", &p, b"BOGUS"]), err("ERR syntax error"));
        assert_eq!(restore(&mut t, &[b"busy", b"-1", b"junk"]), err("BUSYKEY Target key name already exists."));
        assert_eq!(restore(&mut t, &[b"k", b"-1", &p]), err("ERR Invalid TTL value, must be >= 0"));
        assert_eq!(restore(&mut t, &[b"k", b"x", &p]), err("ERR value is not an integer or out of range"));
        assert_eq!(
            restore(&mut t, &[b"k", b"0", &p, b"IDLETIME", b"-1"]),
            err("ERR Invalid IDLETIME value, must be >= 0")
        );
        assert_eq!(restore(&mut t, &[b"k", b"0", &p, b"IDLETIME"]), err("ERR syntax error"));
        assert_eq!(
            restore(&mut t, &[b"k", b"0", &p, b"FREQ", b"256"]),
            err("ERR Invalid FREQ value, must be >= 0 and <= 255")
        );
        assert_eq!(
            restore(&mut t, &[b"k", b"0", &p, b"FREQ", b"x"]),
            err("ERR value is not an integer or out of range")
        );
        assert_eq!(restore(&mut t, &[b"k", b"0", &p, b"IDLETIME", b"1", b"FREQ", b"1"]), err("ERR syntax error"));
        assert_eq!(restore(&mut t, &[b"k", b"0"]), err("ERR wrong number of arguments for 'restore' command"));

        // IDLETIME sets the LRU clock back; FREQ counts only under LFU.
        assert_eq!(restore(&mut t, &[b"idle", b"0", &p, b"IDLETIME", b"1000"]), Reply::OK);
        assert_eq!(t.run(&["OBJECT", "IDLETIME", "idle"]), Reply::Int(1000));
        t.engine.set_maxmemory_policy(EvictionPolicy::AllKeysLfu);
        assert_eq!(restore(&mut t, &[b"hot", b"0", &p, b"FREQ", b"200"]), Reply::OK);
        assert_eq!(t.run(&["OBJECT", "FREQ", "hot"]), Reply::Int(200));
        t.check_replay();
    }

    #[test]
    fn restore_rejects_corrupted_payloads() {
        let mut t = T::new();
        t.run(&["SET", "k", "value"]);
        let Reply::Bulk(p) = t.run(&["DUMP", "k"]) else { panic!("bulk") };
        let wrong = err("ERR DUMP payload version or checksum are wrong");
        let n = t.log.len();
        let try_restore = |t: &mut T, payload: &[u8]| {
            let argv: [&[u8]; 5] = [b"RESTORE", b"dst", b"0", payload, b"REPLACE"];
            t.run_bytes(&argv)
        };
        for i in 0..p.len() {
            let mut bad = p.clone();
            bad[i] = bad[i].wrapping_add(1);
            assert_eq!(try_restore(&mut t, &bad), wrong, "byte {i}");
        }
        assert_eq!(try_restore(&mut t, &p[..p.len() - 1]), wrong);
        assert_eq!(try_restore(&mut t, b""), wrong);
        assert_eq!(try_restore(&mut t, b"not a payload at all"), wrong);
        // A Redis RDB payload is not ours.
        assert_eq!(try_restore(&mut t, b"\x00\x05hello\x0a\x00\x8c\x06\xf4\x0c\xfa\x7f\xe5\x9a"), wrong);
        // A well-formed envelope around a value the engine cannot hold.
        assert_eq!(try_restore(&mut t, &encode_payload(&ValueDto::List(vec![]))), err("ERR Bad data format"));
        assert_eq!(
            try_restore(&mut t, &encode_payload(&ValueDto::Set(vec![b("a"), b("a")]))),
            err("ERR Bad data format")
        );
        assert_eq!(t.log.len(), n, "rejected payloads change nothing");
        assert_eq!(t.run(&["EXISTS", "dst"]), Reply::Int(0));
        t.check_replay();
    }

    #[test]
    fn commands_inside_multi() {
        let mut t = T::new();
        t.run(&["SET", "a", "1"]);
        assert_eq!(t.run(&["MULTI"]), Reply::OK);
        assert_eq!(t.run(&["EXPIRE", "a", "10"]), Reply::QUEUED);
        assert_eq!(t.run(&["SCAN", "0"]), Reply::QUEUED);
        assert_eq!(t.run(&["RENAME", "a", "b"]), Reply::QUEUED);
        let Reply::Array(r) = t.run(&["EXEC"]) else { panic!("EXEC replies an array") };
        assert_eq!(r[0], Reply::Int(1));
        assert_eq!(r[2], Reply::OK);
        assert_eq!(t.run(&["TTL", "b"]), Reply::Int(10));
        t.check_replay();
    }
}
