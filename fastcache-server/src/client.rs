//! CLIENT: ID, SETNAME, GETNAME, LIST, INFO, KILL, NO-EVICT, REPLY,
//! UNBLOCK, SETINFO and HELP, with Redis 7.0's replies and errors.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use fastcache_core::util::parse_i64;
use fastcache_core::{errors, Reply};

use crate::connection::{Conn, ReplyMode};
use crate::server::ClientInfo;

/// Redis refuses client names with spaces or newlines.
pub fn validate_name(name: &[u8]) -> Result<(), Reply> {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(Reply::err("ERR Client names cannot contain spaces, newlines or special characters."));
    }
    Ok(())
}

const CLIENT_HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "    * ID <client-id>",
    "      Kill connections by client id.",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "    * ID <client-id> [<client-id> ...]",
    "      Return clients with the specified IDs.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "SETINFO <LIB-NAME|LIB-VER> <value>",
    "    Set client meta attributes (library name and version).",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "HELP",
    "    Prints this help.",
];

/// Client types of CLIENT LIST TYPE and CLIENT KILL TYPE. A replica's
/// stream is listed as a client of type `replica`; the link of a replica to
/// its primary is not a client here, but CLIENT KILL TYPE master cuts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientType {
    Normal,
    Pubsub,
    Replica,
    Master,
}

fn client_type(name: &[u8]) -> Result<ClientType, Reply> {
    match name.to_ascii_lowercase().as_slice() {
        b"normal" => Ok(ClientType::Normal),
        b"pubsub" => Ok(ClientType::Pubsub),
        b"replica" | b"slave" => Ok(ClientType::Replica),
        b"master" => Ok(ClientType::Master),
        _ => Err(Reply::error(format!("ERR Unknown client type '{}'", String::from_utf8_lossy(name)))),
    }
}

fn type_of(c: &ClientInfo) -> ClientType {
    if c.replica.load(Ordering::Relaxed) {
        ClientType::Replica
    } else if c.subscriptions.load(Ordering::Relaxed) > 0 {
        ClientType::Pubsub
    } else {
        ClientType::Normal
    }
}

/// One CLIENT LIST line (Redis 7.0's fields, in its order, then 7.2's
/// `lib-name`/`lib-ver` since FastCache accepts CLIENT SETINFO). Buffer
/// sizes FastCache does not track per client are reported as 0.
fn describe(conn: &Conn, c: &ClientInfo) -> String {
    let own = c.id == conn.info.id;
    let (sub, psub) = if own {
        (conn.channels.len(), conn.patterns.len())
    } else {
        // Other connections publish only their total subscription count.
        (c.subscriptions.load(Ordering::Relaxed), 0)
    };
    let mut flags = String::new();
    if c.replica.load(Ordering::Relaxed) {
        flags.push('S');
    }
    if sub + psub > 0 {
        flags.push('P');
    }
    if c.in_multi.load(Ordering::Relaxed) {
        flags.push('x');
    }
    if c.blocked.load(Ordering::Relaxed) {
        flags.push('b');
    }
    if c.killed.load(Ordering::Relaxed) {
        flags.push('A');
    }
    if c.no_evict.load(Ordering::Relaxed) {
        flags.push('e');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let multi: i64 = if c.in_multi.load(Ordering::Relaxed) { 0 } else { -1 };
    let name = c.name.lock().clone().unwrap_or_default();
    let cmd = c.last_cmd.lock().clone();
    let lib_name = c.lib_name.lock().clone().unwrap_or_default();
    let lib_ver = c.lib_ver.lock().clone().unwrap_or_default();
    let mut s = String::with_capacity(256);
    let _ = write!(
        s,
        "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub=0 multi={} \
         qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} \
         user=default redir=-1 resp={} lib-name={} lib-ver={}",
        c.id,
        c.addr,
        c.laddr,
        c.fd,
        name,
        c.created.elapsed().as_secs(),
        if own { 0 } else { c.idle_secs() },
        flags,
        c.db.load(Ordering::Relaxed),
        sub,
        psub,
        multi,
        cmd,
        c.resp.load(Ordering::Relaxed),
        lib_name,
        lib_ver,
    );
    s
}

fn all_clients(conn: &Conn) -> Vec<Arc<ClientInfo>> {
    let mut v: Vec<Arc<ClientInfo>> = conn.shared.clients.lock().values().cloned().collect();
    v.sort_by_key(|c| c.id);
    v
}

/// CLIENT and its subcommands.
pub fn client_command(conn: &mut Conn, argv: &[&[u8]]) -> Reply {
    let sub = match crate::command::subcommand(conn, "client", argv) {
        Ok(s) => s,
        Err(e) => return e,
    };
    match sub {
        "id" => Reply::Int(conn.info.id as i64),
        "setname" => {
            if let Err(e) = validate_name(argv[2]) {
                return e;
            }
            let name = String::from_utf8_lossy(argv[2]).into_owned();
            *conn.info.name.lock() = if name.is_empty() { None } else { Some(name) };
            Reply::OK
        }
        "getname" => conn.info.name.lock().as_ref().map_or(Reply::Nil, |n| Reply::bulk(n.as_bytes())),
        "list" => list(conn, argv),
        "info" => {
            let info = conn.info.clone();
            let mut line = describe(conn, &info);
            line.push('\n');
            Reply::Bulk(line.into_bytes())
        }
        "kill" => kill(conn, argv),
        "no-evict" => match on_off(argv[2]) {
            Some(on) => {
                conn.info.no_evict.store(on, Ordering::Relaxed);
                Reply::OK
            }
            None => errors::SYNTAX,
        },
        "reply" => {
            let mode = argv[2].to_ascii_lowercase();
            match mode.as_slice() {
                b"on" => {
                    conn.reply_mode = ReplyMode::On;
                    Reply::OK
                }
                // The caller appends this reply through `Conn::reply`, which
                // swallows it in the new mode, so OFF answers nothing.
                b"off" => {
                    conn.reply_mode = ReplyMode::Off;
                    Reply::OK
                }
                // Outside MULTI the connection routes SKIP to `reply_skip`;
                // here (inside EXEC) the next reply skipped is EXEC's own.
                b"skip" => {
                    if conn.reply_mode != ReplyMode::Off {
                        conn.reply_mode = ReplyMode::Skip;
                    }
                    Reply::OK
                }
                _ => errors::SYNTAX,
            }
        }
        "unblock" => unblock(conn, argv),
        "setinfo" => setinfo(conn, argv),
        _ => Reply::Array(CLIENT_HELP.iter().map(|l| Reply::Simple((*l).into())).collect()),
    }
}

/// Whether `argv` is `CLIENT REPLY SKIP`, which sends no reply itself and
/// suppresses the next command's; the connection calls [`reply_skip`] for
/// it instead of appending a reply.
pub fn is_reply_skip(argv: &[&[u8]]) -> bool {
    argv.len() == 3 && argv[1].eq_ignore_ascii_case(b"reply") && argv[2].eq_ignore_ascii_case(b"skip")
}

/// CLIENT REPLY SKIP outside MULTI: no reply, and the next command's reply
/// is dropped (unless replies are already OFF).
pub fn reply_skip(conn: &mut Conn) {
    if let Some(mut last) = conn.info.last_cmd.try_lock() {
        last.clear();
        last.push_str("client|reply");
    }
    if conn.reply_mode != ReplyMode::Off {
        conn.reply_mode = ReplyMode::Skip;
    }
}

fn on_off(arg: &[u8]) -> Option<bool> {
    if arg.eq_ignore_ascii_case(b"on") {
        Some(true)
    } else if arg.eq_ignore_ascii_case(b"off") {
        Some(false)
    } else {
        None
    }
}

/// CLIENT LIST [TYPE type | ID id [id ...]].
fn list(conn: &Conn, argv: &[&[u8]]) -> Reply {
    let mut out = String::new();
    if argv.len() == 4 && argv[2].eq_ignore_ascii_case(b"type") {
        let wanted = match client_type(argv[3]) {
            Ok(t) => t,
            Err(e) => return e,
        };
        for c in all_clients(conn).iter().filter(|c| type_of(c) == wanted) {
            out.push_str(&describe(conn, c));
            out.push('\n');
        }
    } else if argv.len() > 3 && argv[2].eq_ignore_ascii_case(b"id") {
        let mut ids = Vec::with_capacity(argv.len() - 3);
        for a in &argv[3..] {
            match parse_i64(a) {
                Some(id) => ids.push(id),
                None => return Reply::err("ERR Invalid client ID"),
            }
        }
        // In the order asked, as Redis.
        for id in ids {
            let c = u64::try_from(id).ok().and_then(|id| conn.shared.clients.lock().get(&id).cloned());
            if let Some(c) = c {
                out.push_str(&describe(conn, &c));
                out.push('\n');
            }
        }
    } else if argv.len() != 2 {
        return errors::SYNTAX;
    } else {
        for c in all_clients(conn) {
            out.push_str(&describe(conn, &c));
            out.push('\n');
        }
    }
    Reply::Bulk(out.into_bytes())
}

/// CLIENT KILL ip:port, or CLIENT KILL with ID, TYPE, ADDR, LADDR, USER and
/// SKIPME filters (all must match).
fn kill(conn: &mut Conn, argv: &[&[u8]]) -> Reply {
    let mut addr: Option<String> = None;
    let mut laddr: Option<String> = None;
    let mut ctype: Option<ClientType> = None;
    let mut id: Option<u64> = None;
    let old_form = argv.len() == 3;
    // The old form may kill the caller itself.
    let mut skipme = !old_form;
    if old_form {
        addr = Some(String::from_utf8_lossy(argv[2]).into_owned());
    } else {
        let mut i = 2;
        while i < argv.len() {
            let Some(&value) = argv.get(i + 1) else {
                return errors::SYNTAX;
            };
            let opt = argv[i].to_ascii_lowercase();
            match opt.as_slice() {
                b"id" => match parse_i64(value) {
                    Some(n) if n >= 1 => id = Some(n as u64),
                    _ => return Reply::err("ERR client-id should be greater than 0"),
                },
                b"type" => match client_type(value) {
                    Ok(t) => ctype = Some(t),
                    Err(e) => return e,
                },
                b"addr" => addr = Some(String::from_utf8_lossy(value).into_owned()),
                b"laddr" => laddr = Some(String::from_utf8_lossy(value).into_owned()),
                // FastCache has one user, `default`.
                b"user" if value == b"default" => {}
                b"user" => {
                    return Reply::error(format!("ERR No such user '{}'", String::from_utf8_lossy(value)));
                }
                b"skipme" => match value.to_ascii_lowercase().as_slice() {
                    b"yes" => skipme = true,
                    b"no" => skipme = false,
                    _ => return errors::SYNTAX,
                },
                _ => return errors::SYNTAX,
            }
            i += 2;
        }
    }
    let me = conn.info.id;
    let mut killed = 0i64;
    for c in all_clients(conn) {
        let matches = addr.as_ref().is_none_or(|a| *a == c.addr.to_string())
            && laddr.as_ref().is_none_or(|a| *a == c.laddr.to_string())
            && ctype.is_none_or(|t| t == type_of(&c))
            && id.is_none_or(|i| i == c.id)
            && !(skipme && c.id == me)
            // Killed but not yet gone from the registry: already closing.
            && !c.killed.load(Ordering::Acquire);
        if matches {
            // The caller's own connection closes after this reply is sent:
            // the loop checks `killed` once the output is written.
            c.kill();
            if c.replica.load(Ordering::Acquire) {
                conn.shared.replication.stop_peer(c.id);
            }
            killed += 1;
        }
    }
    if ctype == Some(ClientType::Master) && addr.is_none() && laddr.is_none() && id.is_none() {
        // The link reconnects at once, as Redis' master client does.
        killed += i64::from(conn.shared.replication.cut_link());
    }
    if old_form {
        if killed == 0 {
            Reply::err("ERR No such client")
        } else {
            Reply::OK
        }
    } else {
        Reply::Int(killed)
    }
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR]: 1 if the client was blocked and is
/// now woken, 0 otherwise.
fn unblock(conn: &Conn, argv: &[&[u8]]) -> Reply {
    let mut error = false;
    if argv.len() == 4 {
        if argv[3].eq_ignore_ascii_case(b"timeout") {
            error = false;
        } else if argv[3].eq_ignore_ascii_case(b"error") {
            error = true;
        } else {
            return Reply::err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
        }
    }
    let Some(id) = parse_i64(argv[2]) else {
        return errors::NOT_INTEGER;
    };
    let woken = u64::try_from(id).is_ok_and(|id| conn.shared.blocking.unblock(id, error));
    Reply::Int(i64::from(woken))
}

/// CLIENT SETINFO LIB-NAME|LIB-VER value (Redis 7.2; client libraries
/// send it on connect).
fn setinfo(conn: &Conn, argv: &[&[u8]]) -> Reply {
    let attr = String::from_utf8_lossy(argv[2]).into_owned();
    let slot = if attr.eq_ignore_ascii_case("lib-name") {
        &conn.info.lib_name
    } else if attr.eq_ignore_ascii_case("lib-ver") {
        &conn.info.lib_ver
    } else {
        return Reply::error(format!("ERR Unrecognized option '{attr}'"));
    };
    let value = argv[3];
    if value.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Reply::error(format!("ERR {attr} cannot contain spaces, newlines or special characters."));
    }
    *slot.lock() = if value.is_empty() { None } else { Some(String::from_utf8_lossy(value).into_owned()) };
    Reply::OK
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name(b"worker-1").is_ok());
        assert!(validate_name(b"").is_ok());
        assert!(validate_name(b"a b").is_err());
        assert!(validate_name(b"a\nb").is_err());
    }

    #[test]
    fn types() {
        assert_eq!(client_type(b"NORMAL").ok(), Some(ClientType::Normal));
        assert_eq!(client_type(b"slave").ok(), Some(ClientType::Replica));
        assert_eq!(client_type(b"foo").err(), Some(Reply::err("ERR Unknown client type 'foo'")));
    }

    #[test]
    fn reply_skip_detection() {
        assert!(is_reply_skip(&[b"CLIENT", b"reply", b"SKIP"]));
        assert!(!is_reply_skip(&[b"client", b"reply", b"off"]));
        assert!(!is_reply_skip(&[b"client", b"reply", b"skip", b"x"]));
    }
}
