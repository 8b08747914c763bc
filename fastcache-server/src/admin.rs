//! Connection and server commands that do not touch the keyspace: PING,
//! ECHO, AUTH, HELLO, RESET, TIME, LASTSAVE, SHUTDOWN, and the dispatch to
//! INFO, CONFIG, CLIENT, COMMAND and Pub/Sub.

use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use fastcache_core::{errors, Reply};

use crate::connection::{Conn, Flow, ReplyMode};

/// The Redis version FastCache reports to clients (HELLO, INFO), so that
/// client libraries enable the Redis 7.0 features FastCache implements.
pub const REDIS_COMPAT_VERSION: &str = "7.0.15";

/// Redis' arity of each server-level command (positive: exact, negative:
/// at least), checked when such a command is queued inside MULTI.
pub fn server_arity(name: &str) -> Option<i32> {
    Some(match name {
        "ping" | "quit" | "hello" | "command" | "info" | "shutdown" | "unsubscribe" | "punsubscribe" => -1,
        "echo" => 2,
        "reset" | "time" | "lastsave" | "save" | "bgrewriteaof" => 1,
        "bgsave" => -1,
        "auth" | "client" | "config" | "debug" | "subscribe" | "psubscribe" | "pubsub" => -2,
        "publish" => 3,
        "replconf" | "role" => -1,
        "sync" => 1,
        "psync" => -3,
        "replicaof" | "slaveof" | "wait" => 3,
        "waitaof" => 4,
        _ => return None,
    })
}

/// Runs a server-level command that completes without waiting.
pub fn sync_server_command(conn: &mut Conn, argv: &[&[u8]]) -> Reply {
    let name = String::from_utf8_lossy(argv[0]).to_ascii_lowercase();
    match name.as_str() {
        "ping" => ping(conn, argv),
        "echo" => {
            if argv.len() != 2 {
                return errors::wrong_args("echo");
            }
            Reply::bulk(argv[1])
        }
        "auth" => auth(conn, argv),
        "hello" => hello(conn, argv),
        "reset" if argv.len() != 1 => errors::wrong_args("reset"),
        "reset" => reset(conn),
        "time" => {
            if argv.len() != 1 {
                return errors::wrong_args("time");
            }
            let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
            Reply::Array(vec![
                Reply::Bulk(now.as_secs().to_string().into_bytes()),
                Reply::Bulk(now.subsec_micros().to_string().into_bytes()),
            ])
        }
        "lastsave" => {
            if argv.len() != 1 {
                return errors::wrong_args("lastsave");
            }
            let snap = conn.shared.persistence().and_then(|p| p.snapshots.as_ref()).map_or(0, |s| s.last_save_unix());
            Reply::Int(if snap > 0 { snap } else { conn.shared.last_save_unix.load(Ordering::Relaxed) } as i64)
        }
        "bgsave" => crate::snapshots::bgsave_command(conn, argv),
        "bgrewriteaof" => crate::snapshots::bgrewriteaof_command(conn, argv),
        // SAVE waits for the snapshot; inside MULTI it is refused earlier.
        "save" => Reply::err("ERR Command not allowed inside a transaction"),
        "info" => crate::info::info(conn, argv),
        "config" => crate::params::config_command(conn, argv),
        "client" => crate::client::client_command(conn, argv),
        "command" => crate::command::command_command(conn, argv),
        "publish" => crate::pubsub::publish_command(conn, argv),
        "pubsub" => crate::pubsub::pubsub_command(conn, argv),
        "debug" if argv.len() == 2 && argv[1].eq_ignore_ascii_case(b"digest") => {
            Reply::Simple(format!("{:040x}", conn.shared.engine.digest()).into())
        }
        "debug" => Reply::err("ERR DEBUG subcommand not supported by FastCache (only DEBUG SLEEP and DEBUG DIGEST)"),
        "replconf" => crate::replication::replconf_command(conn, argv),
        "replicaof" | "slaveof" => crate::replication::replicaof_command(&conn.shared.clone(), argv),
        "role" if argv.len() != 1 => errors::wrong_args("role"),
        "role" => crate::replication::role_reply(&conn.shared),
        "wait" | "waitaof" => crate::replication::wait_now(conn, argv),
        "psync" | "sync" => Reply::err("ERR Command not allowed inside a transaction"),
        // Subscription commands inside MULTI: their replies are pushed
        // frames; EXEC gets a placeholder for each.
        "subscribe" | "unsubscribe" | "psubscribe" | "punsubscribe" => {
            crate::pubsub::subscription_command(conn, &name, argv);
            Reply::Nil
        }
        _ => Reply::error(format!("ERR unknown command '{name}'")),
    }
}

fn ping(conn: &Conn, argv: &[&[u8]]) -> Reply {
    if argv.len() > 2 {
        return errors::wrong_args("ping");
    }
    if conn.subscribed() && !conn.resp3() {
        // In the RESP2 subscribed context PING answers like a message.
        let msg = argv.get(1).map_or(Vec::new(), |m| m.to_vec());
        return Reply::Array(vec![Reply::bulk(b"pong"), Reply::Bulk(msg)]);
    }
    match argv.get(1) {
        Some(m) => Reply::bulk(m),
        None => Reply::Simple("PONG".into()),
    }
}

/// Compares without leaking, through timing, how many bytes matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    diff == 0
}

/// Checks credentials; `Err` is the reply to send.
fn check_password(conn: &mut Conn, user: Option<&[u8]>, pass: &[u8]) -> Result<(), Reply> {
    let required = conn.shared.params.read().requirepass.clone();
    let user_ok = user.is_none_or(|u| u == b"default");
    match required {
        None if user.is_none() => Err(Reply::err(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        )),
        None if user_ok => {
            conn.authed = true;
            Ok(())
        }
        Some(p) if user_ok && constant_time_eq(p.as_bytes(), pass) => {
            conn.authed = true;
            Ok(())
        }
        _ => Err(Reply::err("WRONGPASS invalid username-password pair or user is disabled.")),
    }
}

fn auth(conn: &mut Conn, argv: &[&[u8]]) -> Reply {
    match argv.len() {
        2 => check_password(conn, None, argv[1]).map_or_else(|e| e, |()| Reply::OK),
        3 => check_password(conn, Some(argv[1]), argv[2]).map_or_else(|e| e, |()| Reply::OK),
        _ => errors::SYNTAX,
    }
}

fn hello(conn: &mut Conn, argv: &[&[u8]]) -> Reply {
    let mut proto = None;
    let mut i = 1;
    if let Some(v) = argv.get(1) {
        match fastcache_core::util::parse_i64(v) {
            Some(n @ 2..=3) => proto = Some(n),
            Some(_) => return Reply::err("NOPROTO unsupported protocol version"),
            None => return Reply::err("ERR Protocol version is not an integer or out of range"),
        }
        i = 2;
    }
    let mut setname = None;
    while i < argv.len() {
        if argv[i].eq_ignore_ascii_case(b"AUTH") && i + 2 < argv.len() {
            if let Err(e) = check_password(conn, Some(argv[i + 1]), argv[i + 2]) {
                return e;
            }
            i += 3;
        } else if argv[i].eq_ignore_ascii_case(b"SETNAME") && i + 1 < argv.len() {
            if let Err(e) = crate::client::validate_name(argv[i + 1]) {
                return e;
            }
            setname = Some(String::from_utf8_lossy(argv[i + 1]).into_owned());
            i += 2;
        } else {
            return Reply::error(format!("ERR Syntax error in HELLO option '{}'", String::from_utf8_lossy(argv[i])));
        }
    }
    if !conn.authed {
        return Reply::err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
    }
    if let Some(p) = proto {
        conn.session.set_resp3(p == 3);
        conn.info.resp.store(p as u8, Ordering::Relaxed);
    }
    if let Some(n) = setname {
        *conn.info.name.lock() = if n.is_empty() { None } else { Some(n) };
    }
    let s = |x: &str| Reply::Bulk(x.as_bytes().to_vec());
    Reply::Map(vec![
        (s("server"), s("redis")),
        (s("version"), s(REDIS_COMPAT_VERSION)),
        (s("proto"), Reply::Int(if conn.resp3() { 3 } else { 2 })),
        (s("id"), Reply::Int(conn.info.id as i64)),
        (s("mode"), s("standalone")),
        (s("role"), s("master")),
        (s("modules"), Reply::Array(Vec::new())),
    ])
}

fn reset(conn: &mut Conn) -> Reply {
    conn.session.reset();
    crate::pubsub::unsubscribe_all(conn);
    conn.reply_mode = ReplyMode::On;
    conn.info.resp.store(2, Ordering::Relaxed);
    conn.info.db.store(0, Ordering::Relaxed);
    conn.info.no_evict.store(false, Ordering::Relaxed);
    *conn.info.name.lock() = None;
    conn.authed = conn.shared.params.read().requirepass.is_none();
    Reply::Simple("RESET".into())
}

/// SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE] [ABORT]. The server stops
/// accepting, closes every connection and — unless NOSAVE — writes a
/// snapshot if anything changed since the last one (SAVE: always), so the
/// next start loads it instead of replaying the log. Like Redis, a
/// successful SHUTDOWN sends no reply.
pub fn shutdown(conn: &mut Conn, argv: &[&[u8]]) -> Flow {
    for a in &argv[1..] {
        let ok = ["NOSAVE", "SAVE", "NOW", "FORCE"].iter().any(|k| a.eq_ignore_ascii_case(k.as_bytes()));
        if a.eq_ignore_ascii_case(b"ABORT") {
            conn.reply(&Reply::err("ERR No shutdown in progress."));
            return Flow::Continue;
        }
        if !ok {
            conn.reply(&errors::SYNTAX);
            return Flow::Continue;
        }
    }
    let mode = if argv[1..].iter().any(|a| a.eq_ignore_ascii_case(b"NOSAVE")) {
        2
    } else if argv[1..].iter().any(|a| a.eq_ignore_ascii_case(b"SAVE")) {
        1
    } else {
        0
    };
    conn.shared.shutdown_save.store(mode, Ordering::Relaxed);
    tracing::info!(client = conn.info.id, addr = %conn.info.addr, "SHUTDOWN requested; stopping");
    let _ = conn.shared.shutdown.send(true);
    Flow::Close
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn password_compare() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret1"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }
}
