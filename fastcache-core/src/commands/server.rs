//! Database-level commands (SELECT, DBSIZE, FLUSHDB, FLUSHALL, SWAPDB) and
//! the transaction commands' table entries.

use super::flags::{ALL_KEYS, FAST, READONLY, TRANSACTION, WRITE};
use super::{cmd, CommandSpec};
use crate::cx::Cx;
use crate::reply::{errors, Reply};
use crate::util::{eq_ic, parse_i64};

pub(crate) const COMMANDS: &[CommandSpec] = &[
    cmd("select", 2, FAST, (0, 0, 0), "connection", select),
    cmd("dbsize", 1, READONLY | FAST | ALL_KEYS, (0, 0, 0), "server", dbsize),
    cmd("flushdb", -1, WRITE | ALL_KEYS, (0, 0, 0), "server", flushdb),
    cmd("flushall", -1, WRITE | ALL_KEYS, (0, 0, 0), "server", flushall),
    cmd("swapdb", 3, WRITE | FAST | ALL_KEYS, (0, 0, 0), "server", swapdb),
    // Handled by the session in `Engine::execute_with`; never dispatched.
    cmd("multi", 1, FAST | TRANSACTION, (0, 0, 0), "transactions", session_only),
    cmd("exec", 1, TRANSACTION, (0, 0, 0), "transactions", session_only),
    cmd("discard", 1, FAST | TRANSACTION, (0, 0, 0), "transactions", session_only),
    cmd("watch", -2, FAST | TRANSACTION, (1, -1, 1), "transactions", session_only),
    cmd("unwatch", 1, FAST | TRANSACTION, (0, 0, 0), "transactions", session_only),
];

fn session_only(_: &mut Cx, a: &[&[u8]]) -> Reply {
    Reply::error(format!("ERR '{}' is handled by the session", String::from_utf8_lossy(a[0])))
}

/// Parses a database index with Redis' errors.
pub(crate) fn db_index(cx: &Cx, arg: &[u8]) -> Result<usize, Reply> {
    let n = parse_i64(arg).ok_or(errors::NOT_INTEGER)?;
    if n < 0 || n as usize >= cx.eng.databases {
        return Err(errors::DB_INDEX);
    }
    Ok(n as usize)
}

fn select(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    match db_index(cx, a[1]) {
        Ok(db) => {
            cx.db = db;
            Reply::OK
        }
        Err(e) => e,
    }
}

fn dbsize(cx: &mut Cx, _: &[&[u8]]) -> Reply {
    let db = cx.db;
    Reply::Int(cx.shards_mut().map(|s| s.dbs[db].len() as i64).sum())
}

fn flush_mode_ok(a: &[&[u8]]) -> bool {
    match a.len() {
        1 => true,
        2 => eq_ic(a[1], "ASYNC") || eq_ic(a[1], "SYNC"),
        _ => false,
    }
}

fn flushdb(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    if !flush_mode_ok(a) {
        return errors::SYNTAX;
    }
    let db = cx.db;
    cx.flush_db(db);
    Reply::OK
}

fn flushall(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    if !flush_mode_ok(a) {
        return errors::SYNTAX;
    }
    for db in 0..cx.eng.databases {
        cx.flush_db(db);
    }
    Reply::OK
}

fn swapdb(cx: &mut Cx, a: &[&[u8]]) -> Reply {
    let Some(x) = parse_i64(a[1]) else {
        return Reply::err("ERR invalid first DB index");
    };
    let Some(y) = parse_i64(a[2]) else {
        return Reply::err("ERR invalid second DB index");
    };
    let n = cx.eng.databases as i64;
    if !(0..n).contains(&x) || !(0..n).contains(&y) {
        return errors::DB_INDEX;
    }
    cx.swap_dbs(x as usize, y as usize);
    Reply::OK
}
