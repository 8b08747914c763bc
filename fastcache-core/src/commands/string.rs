//! String commands.

use super::flags::{DENYOOM, FAST, READONLY, WRITE};
use super::{cmd, CommandSpec};
use crate::cx::{Cx, Ttl};
use crate::notify;
use crate::reply::{errors, Reply};
use crate::util::{eq_ic, float_arg, format_human, int_arg, parse_f64, parse_i64};

/// Redis' `proto-max-bulk-len` default: the largest string value.
pub(crate) const MAX_STRING: usize = 512 * 1024 * 1024;

pub(crate) const COMMANDS: &[CommandSpec] = &[
    cmd("get", 2, READONLY | FAST, (1, 1, 1), "string", get),
    cmd("set", -3, WRITE | DENYOOM, (1, 1, 1), "string", set),
    cmd("setnx", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", setnx),
    cmd("setex", 4, WRITE | DENYOOM, (1, 1, 1), "string", setex),
    cmd("psetex", 4, WRITE | DENYOOM, (1, 1, 1), "string", psetex),
    cmd("mget", -2, READONLY | FAST, (1, -1, 1), "string", mget),
    cmd("mset", -3, WRITE | DENYOOM, (1, -1, 2), "string", mset),
    cmd("msetnx", -3, WRITE | DENYOOM, (1, -1, 2), "string", msetnx),
    cmd("getset", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", getset),
    cmd("getdel", 2, WRITE | FAST, (1, 1, 1), "string", getdel),
    cmd("getex", -2, WRITE | FAST, (1, 1, 1), "string", getex),
    cmd("incr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), "string", incr),
    cmd("decr", 2, WRITE | DENYOOM | FAST, (1, 1, 1), "string", decr),
    cmd("incrby", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", incrby),
    cmd("decrby", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", decrby),
    cmd("incrbyfloat", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", incrbyfloat),
    cmd("append", 3, WRITE | DENYOOM | FAST, (1, 1, 1), "string", append),
    cmd("strlen", 2, READONLY | FAST, (1, 1, 1), "string", strlen),
    cmd("getrange", 4, READONLY, (1, 1, 1), "string", getrange),
    cmd("substr", 4, READONLY, (1, 1, 1), "string", getrange),
    cmd("setrange", 4, WRITE | DENYOOM, (1, 1, 1), "string", setrange),
];

fn bulk_or_nil(v: Option<&[u8]>) -> Reply {
    v.map_or(Reply::Nil, Reply::bulk)
}

fn get(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    match cx.get_str(a[1]) {
        Ok(v) => bulk_or_nil(v),
        Err(e) => e,
    }
}

/// Converts an expiry argument (`EX`/`PX`/`EXAT`/`PXAT` and its value) into
/// an absolute Unix time in milliseconds, with Redis' errors. `cmd` names
/// the command in the "invalid expire time" error.
pub(crate) fn absolute_expiry(cx: &Cx, unit: &[u8], value: &[u8], cmd: &str) -> Result<u64, Reply> {
    let v = parse_i64(value).ok_or(errors::NOT_INTEGER)?;
    if v <= 0 {
        return Err(errors::invalid_expire(cmd));
    }
    let (ms, relative) = if eq_ic(unit, "EX") {
        (v.checked_mul(1000), true)
    } else if eq_ic(unit, "PX") {
        (Some(v), true)
    } else if eq_ic(unit, "EXAT") {
        (v.checked_mul(1000), false)
    } else {
        (Some(v), false)
    };
    let ms = ms.ok_or_else(|| errors::invalid_expire(cmd))?;
    let abs = if relative { ms.checked_add(cx.now as i64) } else { Some(ms) };
    match abs {
        Some(t) if t > 0 => Ok(t as u64),
        _ => Err(errors::invalid_expire(cmd)),
    }
}

fn is_expiry_unit(a: &[u8]) -> bool {
    eq_ic(a, "EX") || eq_ic(a, "PX") || eq_ic(a, "EXAT") || eq_ic(a, "PXAT")
}

/// Options of SET.
struct SetOpts {
    nx: bool,
    xx: bool,
    get: bool,
    ttl: Ttl,
}

fn parse_set_opts(cx: &Cx, a: &[&[u8]]) -> Result<SetOpts, Reply> {
    let mut o = SetOpts { nx: false, xx: false, get: false, ttl: Ttl::Clear };
    let mut expiry_seen = false;
    let mut i = 3;
    while i < a.len() {
        let arg = a[i];
        if eq_ic(arg, "NX") && !o.xx {
            o.nx = true;
        } else if eq_ic(arg, "XX") && !o.nx {
            o.xx = true;
        } else if eq_ic(arg, "GET") {
            o.get = true;
        } else if eq_ic(arg, "KEEPTTL") && !expiry_seen {
            o.ttl = Ttl::Keep;
            expiry_seen = true;
        } else if is_expiry_unit(arg) && !expiry_seen && i + 1 < a.len() {
            expiry_seen = true;
            i += 1;
            o.ttl = Ttl::At(absolute_expiry(cx, arg, a[i], "set")?);
        } else {
            return Err(errors::SYNTAX);
        }
        i += 1;
    }
    Ok(o)
}

fn set(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let o = match parse_set_opts(cx, a) {
        Ok(o) => o,
        Err(e) => return e,
    };
    let (key, val) = (a[1], a[2]);
    let old: Option<Vec<u8>> = if o.get {
        match cx.get_str(key) {
            Ok(v) => v.map(<[u8]>::to_vec),
            Err(e) => return e,
        }
    } else {
        None
    };
    let exists = if o.get { old.is_some() } else { (o.nx || o.xx) && cx.exists(key) };
    if (o.nx && exists) || (o.xx && !exists) {
        return if o.get { bulk_or_nil(old.as_deref()) } else { Reply::Nil };
    }
    store_string(cx, key, val, o.ttl);
    if o.get {
        bulk_or_nil(old.as_deref())
    } else {
        Reply::OK
    }
}

/// Stores a string with the given expiry and records the deterministic
/// effect: `SET key value [PXAT ms | KEEPTTL]`.
fn store_string(cx: &mut Cx, key: &[u8], val: &[u8], ttl: Ttl) {
    cx.set_str(key, val, ttl);
    if cx.journaling() {
        let mut argv = vec![b"SET".to_vec(), key.to_vec(), val.to_vec()];
        match ttl {
            Ttl::Clear => {}
            Ttl::Keep => argv.push(b"KEEPTTL".to_vec()),
            Ttl::At(t) => {
                argv.push(b"PXAT".to_vec());
                argv.push(t.to_string().into_bytes());
            }
        }
        cx.propagate(argv);
    }
    cx.notify(notify::STRING, "set", key);
    if matches!(ttl, Ttl::At(_)) {
        cx.notify(notify::GENERIC, "expire", key);
    }
}

fn setnx(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    if cx.exists(a[1]) {
        return Reply::Int(0);
    }
    store_string(cx, a[1], a[2], Ttl::Clear);
    Reply::Int(1)
}

fn setex_generic(cx: &mut Cx, a: &[&[u8]], unit: &str, name: &str) -> Reply {
    match absolute_expiry(cx, unit.as_bytes(), a[2], name) {
        Ok(t) => {
            store_string(cx, a[1], a[3], Ttl::At(t));
            Reply::OK
        }
        Err(e) => e,
    }
}

fn setex(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    setex_generic(cx, a, "EX", "setex")
}

fn psetex(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    setex_generic(cx, a, "PX", "psetex")
}

fn mget(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    Reply::Array(a[1..].iter().map(|k| bulk_or_nil(cx.get_str(k).ok().flatten())).collect())
}

fn mset(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    if a.len() % 2 == 0 {
        return errors::wrong_args(if eq_ic(a[0], "msetnx") { "msetnx" } else { "mset" });
    }
    for kv in a[1..].chunks(2) {
        cx.set_str(kv[0], kv[1], Ttl::Clear);
        cx.notify(notify::STRING, "set", kv[0]);
    }
    Reply::OK
}

fn msetnx(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    if a.len() % 2 == 0 {
        return errors::wrong_args("msetnx");
    }
    if a[1..].chunks(2).any(|kv| cx.exists(kv[0])) {
        return Reply::Int(0);
    }
    mset(cx, a);
    Reply::Int(1)
}

fn getset(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let old = match cx.get_str(a[1]) {
        Ok(v) => v.map(<[u8]>::to_vec),
        Err(e) => return e,
    };
    store_string(cx, a[1], a[2], Ttl::Clear);
    bulk_or_nil(old.as_deref())
}

fn getdel(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let old = match cx.get_str(a[1]) {
        Ok(Some(v)) => v.to_vec(),
        Ok(None) => return Reply::Nil,
        Err(e) => return e,
    };
    cx.delete(a[1]);
    cx.notify(notify::GENERIC, "del", a[1]);
    Reply::Bulk(old)
}

fn getex(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    enum Act {
        None,
        Persist,
        At(u64),
    }
    let mut act = Act::None;
    let mut i = 2;
    while i < a.len() {
        if eq_ic(a[i], "PERSIST") && matches!(act, Act::None) {
            act = Act::Persist;
        } else if is_expiry_unit(a[i]) && matches!(act, Act::None) && i + 1 < a.len() {
            match absolute_expiry(cx, a[i], a[i + 1], "getex") {
                Ok(t) => act = Act::At(t),
                Err(e) => return e,
            }
            i += 1;
        } else {
            return errors::SYNTAX;
        }
        i += 1;
    }
    let val = match cx.get_str(a[1]) {
        Ok(Some(v)) => v.to_vec(),
        Ok(None) => return Reply::Nil,
        Err(e) => return e,
    };
    let key = a[1];
    match act {
        Act::None => {}
        Act::Persist => {
            if cx.deadline(key).is_some_and(|d| d != 0) {
                cx.set_deadline(key, 0);
                cx.propagate(vec![b"PERSIST".to_vec(), key.to_vec()]);
                cx.notify(notify::GENERIC, "persist", key);
            }
        }
        Act::At(t) if t <= cx.now && !cx.replay => {
            cx.delete(key);
            cx.propagate(vec![b"DEL".to_vec(), key.to_vec()]);
            cx.notify(notify::GENERIC, "del", key);
        }
        Act::At(t) => {
            cx.set_deadline(key, t);
            cx.propagate(vec![b"PEXPIREAT".to_vec(), key.to_vec(), t.to_string().into_bytes()]);
            cx.notify(notify::GENERIC, "expire", key);
        }
    }
    Reply::Bulk(val)
}

fn incr_generic(cx: &mut Cx, key: &[u8], by: i64) -> Reply {
    let cur = match cx.get_str(key) {
        Ok(Some(v)) => match parse_i64(v) {
            Some(n) => n,
            None => return errors::NOT_INTEGER,
        },
        Ok(None) => 0,
        Err(e) => return e,
    };
    let Some(n) = cur.checked_add(by) else {
        return errors::OVERFLOW;
    };
    cx.set_str(key, n.to_string().as_bytes(), Ttl::Keep);
    cx.notify(notify::STRING, "incrby", key);
    Reply::Int(n)
}

fn incr(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    incr_generic(cx, a[1], 1)
}

fn decr(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    incr_generic(cx, a[1], -1)
}

fn incrby(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    match int_arg(a[2]) {
        Ok(by) => incr_generic(cx, a[1], by),
        Err(e) => e,
    }
}

fn decrby(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    match int_arg(a[2]) {
        Ok(i64::MIN) => Reply::err("ERR decrement would overflow"),
        Ok(by) => incr_generic(cx, a[1], -by),
        Err(e) => e,
    }
}

fn incrbyfloat(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let by = match float_arg(a[2]) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let cur = match cx.get_str(a[1]) {
        Ok(Some(v)) => match parse_f64(v) {
            Some(n) => n,
            None => return errors::NOT_FLOAT,
        },
        Ok(None) => 0.0,
        Err(e) => return e,
    };
    let n = cur + by;
    if !n.is_finite() {
        return errors::NAN_OR_INF;
    }
    let text = format_human(n);
    // Float arithmetic is logged as its result, so replay cannot drift.
    cx.set_str(a[1], text.as_bytes(), Ttl::Keep);
    cx.propagate(vec![b"SET".to_vec(), a[1].to_vec(), text.clone().into_bytes(), b"KEEPTTL".to_vec()]);
    cx.notify(notify::STRING, "incrbyfloat", a[1]);
    Reply::Bulk(text.into_bytes())
}

fn append(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let cur_len = match cx.get_str(a[1]) {
        Ok(v) => v.map_or(0, <[u8]>::len),
        Err(e) => return e,
    };
    if cur_len + a[2].len() > MAX_STRING {
        return errors::STRING_TOO_LONG;
    }
    let r = cx.str_mut(a[1], true, |s| {
        s.extend_from_slice(a[2]);
        s.len()
    });
    match r {
        Ok(Some(n)) => {
            cx.notify(notify::STRING, "append", a[1]);
            Reply::Int(n as i64)
        }
        Ok(None) => Reply::Int(0),
        Err(e) => e,
    }
}

fn strlen(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    match cx.get_str(a[1]) {
        Ok(v) => Reply::Int(v.map_or(0, <[u8]>::len) as i64),
        Err(e) => e,
    }
}

fn getrange(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let (Ok(mut start), Ok(mut end)) = (int_arg(a[2]), int_arg(a[3])) else {
        return errors::NOT_INTEGER;
    };
    let s = match cx.get_str(a[1]) {
        Ok(Some(s)) => s,
        Ok(None) => return Reply::Bulk(Vec::new()),
        Err(e) => return e,
    };
    let len = s.len() as i64;
    if start < 0 && end < 0 && start > end {
        return Reply::Bulk(Vec::new());
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return Reply::Bulk(Vec::new());
    }
    Reply::bulk(&s[start as usize..=end as usize])
}

fn setrange(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let offset = match int_arg(a[2]) {
        Ok(o) if o < 0 => return Reply::err("ERR offset is out of range"),
        Ok(o) => o as usize,
        Err(e) => return e,
    };
    let val = a[3];
    let cur_len = match cx.get_str(a[1]) {
        Ok(v) => v.map(<[u8]>::len),
        Err(e) => return e,
    };
    if val.is_empty() {
        return Reply::Int(cur_len.unwrap_or(0) as i64);
    }
    if offset + val.len() > MAX_STRING {
        return errors::STRING_TOO_LONG;
    }
    let r = cx.str_mut(a[1], true, |s| {
        if s.len() < offset + val.len() {
            s.resize(offset + val.len(), 0);
        }
        s[offset..offset + val.len()].copy_from_slice(val);
        s.len()
    });
    match r {
        Ok(n) => {
            cx.notify(notify::STRING, "setrange", a[1]);
            Reply::Int(n.unwrap_or(0) as i64)
        }
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use crate::reply::Reply;
    use crate::testutil::{bulk, err, T};

    #[test]
    fn set_get_options() {
        let mut t = T::new();
        assert_eq!(t.run(&["SET", "k", "v"]), Reply::OK);
        assert_eq!(t.run(&["GET", "k"]), bulk("v"));
        assert_eq!(t.run(&["SET", "k", "w", "NX"]), Reply::Nil);
        assert_eq!(t.run(&["SET", "k", "w", "XX", "GET"]), bulk("v"));
        assert_eq!(t.run(&["SET", "k", "x", "NX", "XX"]), err("ERR syntax error"));
        assert_eq!(t.run(&["SET", "k", "x", "EX", "0"]), err("ERR invalid expire time in 'set' command"));
        assert_eq!(t.run(&["SET", "k", "x", "EX", "abc"]), err("ERR value is not an integer or out of range"));
        assert_eq!(t.run(&["SET", "k", "x", "EX", "10", "PX", "5"]), err("ERR syntax error"));
        assert_eq!(t.run(&["SET", "e", "x", "EX", "10"]), Reply::OK);
        assert_eq!(t.run(&["GET", "e"]), bulk("x"));
        t.clock.advance(10_000);
        assert_eq!(t.run(&["GET", "e"]), Reply::Nil);
        assert_eq!(t.run(&["MSET", "a", "1", "b"]), err("ERR wrong number of arguments for 'mset' command"));
        assert_eq!(t.run(&["NOPE", "a"]), err("ERR unknown command 'NOPE', with args beginning with: 'a' "));
        assert_eq!(t.run(&["GET"]), err("ERR wrong number of arguments for 'get' command"));
        t.check_replay();
    }

    #[test]
    fn counters_and_ranges() {
        let mut t = T::new();
        assert_eq!(t.run(&["INCR", "n"]), Reply::Int(1));
        assert_eq!(t.run(&["INCRBY", "n", "41"]), Reply::Int(42));
        assert_eq!(t.run(&["DECRBY", "n", "2"]), Reply::Int(40));
        assert_eq!(t.run(&["SET", "big", "9223372036854775807"]), Reply::OK);
        assert_eq!(t.run(&["INCR", "big"]), err("ERR increment or decrement would overflow"));
        assert_eq!(t.run(&["SET", "s", "abc"]), Reply::OK);
        assert_eq!(t.run(&["INCR", "s"]), err("ERR value is not an integer or out of range"));
        assert_eq!(t.run(&["INCRBYFLOAT", "f", "10.5"]), bulk("10.5"));
        assert_eq!(t.run(&["INCRBYFLOAT", "f", "0.1"]), bulk("10.6"));
        assert_eq!(t.run(&["APPEND", "s", "def"]), Reply::Int(6));
        assert_eq!(t.run(&["GETRANGE", "s", "1", "-2"]), bulk("bcde"));
        assert_eq!(t.run(&["GETRANGE", "s", "-100", "100"]), bulk("abcdef"));
        assert_eq!(t.run(&["SETRANGE", "pad", "3", "x"]), Reply::Int(4));
        assert_eq!(t.run(&["GET", "pad"]), Reply::Bulk(b"\0\0\0x".to_vec()));
        assert_eq!(t.run(&["STRLEN", "pad"]), Reply::Int(4));
        assert_eq!(t.run(&["GETDEL", "pad"]), Reply::Bulk(b"\0\0\0x".to_vec()));
        assert_eq!(t.run(&["EXISTS", "pad"]), Reply::Int(0));
        t.check_replay();
    }

    #[test]
    fn getex_and_transactions() {
        let mut t = T::new();
        t.run(&["SET", "k", "v"]);
        assert_eq!(t.run(&["GETEX", "k", "PX", "500"]), bulk("v"));
        assert_eq!(t.run(&["PTTL", "k"]), Reply::Int(500));
        assert_eq!(t.run(&["GETEX", "k", "PERSIST"]), bulk("v"));
        assert_eq!(t.run(&["TTL", "k"]), Reply::Int(-1));
        assert_eq!(t.run(&["MULTI"]), Reply::OK);
        assert_eq!(t.run(&["INCR", "c"]), Reply::QUEUED);
        assert_eq!(t.run(&["INCR", "c"]), Reply::QUEUED);
        assert_eq!(t.run(&["EXEC"]), Reply::Array(vec![Reply::Int(1), Reply::Int(2)]));
        assert_eq!(t.log.last().map(|r| r.ops.len()), Some(2), "one record for the whole block");
        assert_eq!(t.run(&["MULTI"]), Reply::OK);
        assert_eq!(t.run(&["GET"]), err("ERR wrong number of arguments for 'get' command"));
        assert_eq!(t.run(&["EXEC"]), err("EXECABORT Transaction discarded because of previous errors."));
        t.check_replay();
    }

    #[test]
    fn watch_aborts_on_change() {
        let mut t = T::new();
        let mut other = t.engine.session();
        t.run(&["SET", "w", "1"]);
        assert_eq!(t.run(&["WATCH", "w"]), Reply::OK);
        t.engine.execute(&mut other, &[b"SET", b"w", b"2"]);
        t.run(&["MULTI"]);
        t.run(&["SET", "w", "3"]);
        assert_eq!(t.run(&["EXEC"]), Reply::NilArray);
        assert_eq!(t.run(&["GET", "w"]), bulk("2"));
        // Unchanged watched key: EXEC runs.
        t.run(&["WATCH", "w"]);
        t.run(&["MULTI"]);
        t.run(&["SET", "w", "4"]);
        assert_eq!(t.run(&["EXEC"]), Reply::Array(vec![Reply::OK]));
    }
}
