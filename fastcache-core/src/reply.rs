//! Typed replies, independent of the wire protocol.
//!
//! The engine answers every command with a [`Reply`]; the server renders it
//! as RESP2 or RESP3. Variants that only RESP3 has natively ([`Reply::Double`],
//! [`Reply::Map`], [`Reply::Set`], [`Reply::Bool`]) have a defined RESP2
//! rendering (bulk string, flat array, array, integer), as in Redis.

use std::borrow::Cow;

/// One reply to one command.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A simple string (`+OK`).
    Simple(Cow<'static, str>),
    /// An error; the text starts with its code (`ERR …`, `WRONGTYPE …`).
    Error(Cow<'static, str>),
    /// An integer.
    Int(i64),
    /// A bulk string.
    Bulk(Vec<u8>),
    /// The null bulk string (RESP2 `$-1`, RESP3 `_`).
    Nil,
    /// The null array (RESP2 `*-1`, RESP3 `_`).
    NilArray,
    /// An array.
    Array(Vec<Reply>),
    /// A double (RESP3 `,`); RESP2 renders it as a bulk string in `%.17g`.
    Double(f64),
    /// A map (RESP3 `%`); RESP2 renders it as a flat array.
    Map(Vec<(Reply, Reply)>),
    /// A set (RESP3 `~`); RESP2 renders it as an array.
    Set(Vec<Reply>),
    /// A boolean (RESP3 `#`); RESP2 renders it as 1 or 0.
    Bool(bool),
}

impl Reply {
    /// `+OK`.
    pub const OK: Reply = Reply::Simple(Cow::Borrowed("OK"));
    /// `+QUEUED`, the answer to a command queued inside MULTI.
    pub const QUEUED: Reply = Reply::Simple(Cow::Borrowed("QUEUED"));

    /// An error reply with a static message.
    pub const fn err(msg: &'static str) -> Reply {
        Reply::Error(Cow::Borrowed(msg))
    }

    /// An error reply with a formatted message.
    pub fn error(msg: String) -> Reply {
        Reply::Error(Cow::Owned(msg))
    }

    /// A bulk string copied from `b`.
    pub fn bulk(b: &[u8]) -> Reply {
        Reply::Bulk(b.to_vec())
    }

    /// An array of bulk strings.
    pub fn bulks<'a>(items: impl IntoIterator<Item = &'a [u8]>) -> Reply {
        Reply::Array(items.into_iter().map(Reply::bulk).collect())
    }

    /// Whether this is an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }
}

/// Items with optional companions (WITHSCORES, WITHVALUES): without them
/// a flat array of the items; with them RESP2 flattens `item, companion,
/// …` and RESP3 nests `[item, companion]` pairs, as Redis 7 does.
pub(crate) fn pairs(resp3: bool, with: bool, items: impl IntoIterator<Item = (Reply, Reply)>) -> Reply {
    let mut out = Vec::new();
    for (item, companion) in items {
        if !with {
            out.push(item);
        } else if resp3 {
            out.push(Reply::Array(vec![item, companion]));
        } else {
            out.push(item);
            out.push(companion);
        }
    }
    Reply::Array(out)
}

/// Redis' error strings, shared by every command.
pub mod errors {
    use super::Reply;

    /// Operation against a key of another type.
    pub const WRONGTYPE: Reply = Reply::err("WRONGTYPE Operation against a key holding the wrong kind of value");
    /// An argument that must be a 64-bit integer is not.
    pub const NOT_INTEGER: Reply = Reply::err("ERR value is not an integer or out of range");
    /// An argument that must be a float is not.
    pub const NOT_FLOAT: Reply = Reply::err("ERR value is not a valid float");
    /// A generic syntax error.
    pub const SYNTAX: Reply = Reply::err("ERR syntax error");
    /// The key does not exist.
    pub const NO_SUCH_KEY: Reply = Reply::err("ERR no such key");
    /// INCR family overflow.
    pub const OVERFLOW: Reply = Reply::err("ERR increment or decrement would overflow");
    /// An index outside the list.
    pub const INDEX_OUT_OF_RANGE: Reply = Reply::err("ERR index out of range");
    /// SELECT/MOVE/SWAPDB with a bad database number.
    pub const DB_INDEX: Reply = Reply::err("ERR DB index is out of range");
    /// A count that must be positive.
    pub const MUST_BE_POSITIVE: Reply = Reply::err("ERR value is out of range, must be positive");
    /// A value larger than the maximum string size.
    pub const STRING_TOO_LONG: Reply = Reply::err("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    /// A write refused under `maxmemory` with `noeviction`.
    pub const OOM: Reply = Reply::err("OOM command not allowed when used memory > 'maxmemory'.");
    /// A float operation produced NaN or infinity.
    pub const NAN_OR_INF: Reply = Reply::err("ERR increment would produce NaN or Infinity");

    /// `ERR wrong number of arguments for 'cmd' command`.
    pub fn wrong_args(cmd: &str) -> Reply {
        Reply::error(format!("ERR wrong number of arguments for '{}' command", cmd.to_ascii_lowercase()))
    }

    /// `ERR invalid expire time in 'cmd' command`.
    pub fn invalid_expire(cmd: &str) -> Reply {
        Reply::error(format!("ERR invalid expire time in '{}' command", cmd.to_ascii_lowercase()))
    }
}
