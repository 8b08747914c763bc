//! RESP framing: requests in (multibulk and inline), replies out (RESP2 and
//! RESP3).
//!
//! Parsing is `check` and `parse` in one pass over the buffer: an
//! incomplete frame is a normal outcome ([`Parsed::Incomplete`]), never an
//! error, and nothing is copied — a request is a list of byte ranges into
//! the connection's read buffer.

use std::io::Write;
use std::ops::Range;

use fastcache_core::util::format_g17;
use fastcache_core::Reply;

/// The largest multibulk count Redis accepts.
const MAX_MULTIBULK: i64 = 1024 * 1024;
/// The longest inline request Redis accepts (`PROTO_INLINE_MAX_SIZE`).
pub const MAX_INLINE: usize = 64 * 1024;

/// The outcome of looking at the front of a read buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// More bytes are needed.
    Incomplete,
    /// A request: its arguments as ranges of the buffer, and how many bytes
    /// it used. An empty argument list is a blank inline line to skip.
    Request { args: Vec<Range<usize>>, consumed: usize },
}

/// A malformed request; the text is Redis' (`Protocol error: …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 1 < buf.len() {
        match memchr(b'\r', &buf[i..buf.len() - 1]) {
            Some(p) => {
                let at = i + p;
                if buf[at + 1] == b'\n' {
                    return Some(at);
                }
                i = at + 1;
            }
            None => return None,
        }
    }
    None
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

fn parse_len(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let (neg, digits) = if s[0] == b'-' { (true, &s[1..]) } else { (false, s) };
    if digits.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(i64::from(c - b'0'))?;
    }
    Some(if neg { -v } else { v })
}

/// Looks at the front of `buf` for one request. `max_bulk` bounds a single
/// argument (`proto-max-bulk-len`).
///
/// # Errors
/// A [`ProtocolError`] for a malformed frame; the connection is then closed
/// after the error is sent, as Redis does.
pub fn parse(buf: &[u8], max_bulk: usize) -> Result<Parsed, ProtocolError> {
    if buf.is_empty() {
        return Ok(Parsed::Incomplete);
    }
    if buf[0] != b'*' {
        return parse_inline(buf);
    }
    let Some(end) = find_crlf(buf, 1) else {
        if buf.len() > MAX_INLINE {
            return Err(ProtocolError("Protocol error: too big mbulk count string".into()));
        }
        return Ok(Parsed::Incomplete);
    };
    let count = match parse_len(&buf[1..end]) {
        Some(n) if n <= MAX_MULTIBULK => n,
        _ => return Err(ProtocolError("Protocol error: invalid multibulk length".into())),
    };
    let mut pos = end + 2;
    if count <= 0 {
        return Ok(Parsed::Request { args: Vec::new(), consumed: pos });
    }
    let mut args = Vec::with_capacity(count as usize);
    for _ in 0..count {
        if pos >= buf.len() {
            return Ok(Parsed::Incomplete);
        }
        if buf[pos] != b'$' {
            return Err(ProtocolError(format!("Protocol error: expected '$', got '{}'", buf[pos] as char)));
        }
        let Some(end) = find_crlf(buf, pos + 1) else {
            if buf.len() - pos > MAX_INLINE {
                return Err(ProtocolError("Protocol error: too big bulk count string".into()));
            }
            return Ok(Parsed::Incomplete);
        };
        let len = match parse_len(&buf[pos + 1..end]) {
            Some(n) if n >= 0 && (n as u64) <= max_bulk as u64 => n as usize,
            _ => return Err(ProtocolError("Protocol error: invalid bulk length".into())),
        };
        let start = end + 2;
        if buf.len() < start + len + 2 {
            return Ok(Parsed::Incomplete);
        }
        if &buf[start + len..start + len + 2] != b"\r\n" {
            return Err(ProtocolError("Protocol error: invalid bulk length".into()));
        }
        args.push(start..start + len);
        pos = start + len + 2;
    }
    Ok(Parsed::Request { args, consumed: pos })
}

/// An inline request: one line, arguments split on spaces with Redis'
/// quoting rules (`sdssplitargs`).
fn parse_inline(buf: &[u8]) -> Result<Parsed, ProtocolError> {
    let Some(nl) = memchr(b'\n', buf) else {
        if buf.len() > MAX_INLINE {
            return Err(ProtocolError("Protocol error: too big inline request".into()));
        }
        return Ok(Parsed::Incomplete);
    };
    let line_end = if nl > 0 && buf[nl - 1] == b'\r' { nl - 1 } else { nl };
    let args = split_args(buf, 0, line_end)
        .ok_or_else(|| ProtocolError("Protocol error: unbalanced quotes in request".into()))?;
    Ok(Parsed::Request { args, consumed: nl + 1 })
}

/// Splits `buf[from..to]` into arguments. Quoted arguments are returned
/// as ranges only when they need no unescaping; otherwise the caller
/// receives the decoded text through [`decode_inline_arg`].
fn split_args(buf: &[u8], from: usize, to: usize) -> Option<Vec<Range<usize>>> {
    let mut args = Vec::new();
    let mut i = from;
    while i < to {
        while i < to && buf[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= to {
            break;
        }
        let start = i;
        if buf[i] == b'"' || buf[i] == b'\'' {
            let q = buf[i];
            i += 1;
            loop {
                if i >= to {
                    return None;
                }
                if q == b'"' && buf[i] == b'\\' && i + 1 < to {
                    i += 2;
                    continue;
                }
                // Inside single quotes only \' is an escape (sdssplitargs).
                if q == b'\'' && buf[i] == b'\\' && i + 1 < to && buf[i + 1] == b'\'' {
                    i += 2;
                    continue;
                }
                if buf[i] == q {
                    i += 1;
                    // A closing quote must be followed by a space or the end.
                    if i < to && !buf[i].is_ascii_whitespace() {
                        return None;
                    }
                    break;
                }
                i += 1;
            }
        } else {
            while i < to && !buf[i].is_ascii_whitespace() {
                i += 1;
            }
        }
        args.push(start..i);
    }
    Some(args)
}

/// Decodes one inline argument: strips quotes and, inside double quotes,
/// handles `\n \r \t \b \a \\ \" \xHH` as Redis does.
pub fn decode_inline_arg(raw: &[u8]) -> Vec<u8> {
    if raw.len() < 2 || !(raw[0] == b'"' || raw[0] == b'\'') {
        return raw.to_vec();
    }
    let q = raw[0];
    let inner = &raw[1..raw.len() - 1];
    if q == b'\'' {
        let mut out = Vec::with_capacity(inner.len());
        let mut i = 0;
        while i < inner.len() {
            if inner[i] == b'\\' && i + 1 < inner.len() && inner[i + 1] == b'\'' {
                out.push(b'\'');
                i += 2;
            } else {
                out.push(inner[i]);
                i += 1;
            }
        }
        return out;
    }
    let mut out = Vec::with_capacity(inner.len());
    let mut i = 0;
    while i < inner.len() {
        if inner[i] == b'\\' && i + 1 < inner.len() {
            let c = inner[i + 1];
            let hex = |b: u8| (b as char).to_digit(16);
            if c == b'x' && i + 3 < inner.len() {
                if let (Some(h), Some(l)) = (hex(inner[i + 2]), hex(inner[i + 3])) {
                    out.push((h * 16 + l) as u8);
                    i += 4;
                    continue;
                }
            }
            out.push(match c {
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'b' => 8,
                b'a' => 7,
                other => other,
            });
            i += 2;
        } else {
            out.push(inner[i]);
            i += 1;
        }
    }
    out
}

/// Appends `reply` to `out` in RESP2 or RESP3.
pub fn write_reply(out: &mut Vec<u8>, reply: &Reply, resp3: bool) {
    match reply {
        Reply::Simple(s) => {
            out.push(b'+');
            out.extend_from_slice(s.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Reply::Error(e) => {
            out.push(b'-');
            // An error line must not contain newlines.
            out.extend(e.bytes().map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
            out.extend_from_slice(b"\r\n");
        }
        Reply::Int(n) => {
            let _ = write!(out, ":{n}\r\n");
        }
        Reply::Bulk(b) => write_bulk(out, b),
        Reply::Nil => out.extend_from_slice(if resp3 { b"_\r\n" } else { b"$-1\r\n" }),
        Reply::NilArray => out.extend_from_slice(if resp3 { b"_\r\n" } else { b"*-1\r\n" }),
        Reply::Array(items) => {
            let _ = write!(out, "*{}\r\n", items.len());
            for i in items {
                write_reply(out, i, resp3);
            }
        }
        Reply::Double(d) => {
            if resp3 {
                let text = if d.is_infinite() {
                    if *d > 0.0 {
                        "inf".to_string()
                    } else {
                        "-inf".to_string()
                    }
                } else {
                    format_g17(*d)
                };
                let _ = write!(out, ",{text}\r\n");
            } else {
                write_bulk(out, format_g17(*d).as_bytes());
            }
        }
        Reply::Map(pairs) => {
            if resp3 {
                let _ = write!(out, "%{}\r\n", pairs.len());
            } else {
                let _ = write!(out, "*{}\r\n", pairs.len() * 2);
            }
            for (k, v) in pairs {
                write_reply(out, k, resp3);
                write_reply(out, v, resp3);
            }
        }
        Reply::Set(items) => {
            let _ = write!(out, "{}{}\r\n", if resp3 { '~' } else { '*' }, items.len());
            for i in items {
                write_reply(out, i, resp3);
            }
        }
        Reply::Bool(b) => {
            if resp3 {
                out.extend_from_slice(if *b { b"#t\r\n" } else { b"#f\r\n" });
            } else {
                out.extend_from_slice(if *b { b":1\r\n" } else { b":0\r\n" });
            }
        }
    }
}

/// A command as a RESP multibulk request (for talking to another server).
pub fn encode_command(argv: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", argv.len()).into_bytes();
    for a in argv {
        write_bulk(&mut out, a);
    }
    out
}

/// Appends a bulk string.
pub fn write_bulk(out: &mut Vec<u8>, b: &[u8]) {
    let _ = write!(out, "${}\r\n", b.len());
    out.extend_from_slice(b);
    out.extend_from_slice(b"\r\n");
}

/// Appends a RESP3 push frame (or a RESP2 array) of bulk strings and one
/// optional trailing integer: the shape of Pub/Sub messages.
pub fn write_push(out: &mut Vec<u8>, parts: &[&[u8]], count: Option<i64>, resp3: bool) {
    let n = parts.len() + usize::from(count.is_some());
    let _ = write!(out, "{}{}\r\n", if resp3 { '>' } else { '*' }, n);
    for p in parts {
        write_bulk(out, p);
    }
    if let Some(c) = count {
        let _ = write!(out, ":{c}\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(buf: &[u8]) -> Vec<Vec<u8>> {
        match parse(buf, 512 << 20) {
            Ok(Parsed::Request { args, .. }) => args.into_iter().map(|r| decode_inline_arg(&buf[r])).collect(),
            other => panic!("expected a request, got {other:?}"),
        }
    }

    #[test]
    fn multibulk() {
        assert_eq!(args(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"), vec![b"GET".to_vec(), b"k".to_vec()]);
        assert_eq!(parse(b"*2\r\n$3\r\nGET\r\n$1\r\n", 100), Ok(Parsed::Incomplete));
        assert_eq!(parse(b"*2\r\n$3\r\nGE", 100), Ok(Parsed::Incomplete));
        assert_eq!(parse(b"*2\r", 100), Ok(Parsed::Incomplete));
        assert_eq!(parse(b"*1\r\n+3\r\n", 100), Err(ProtocolError("Protocol error: expected '$', got '+'".into())));
        assert_eq!(parse(b"*x\r\n", 100), Err(ProtocolError("Protocol error: invalid multibulk length".into())));
        assert_eq!(parse(b"*1\r\n$-5\r\n", 100), Err(ProtocolError("Protocol error: invalid bulk length".into())));
        assert_eq!(parse(b"*1\r\n$101\r\n", 100), Err(ProtocolError("Protocol error: invalid bulk length".into())));
        assert_eq!(parse(b"*0\r\n", 100), Ok(Parsed::Request { args: vec![], consumed: 4 }));
    }

    #[test]
    fn inline() {
        assert_eq!(args(b"SET k v\r\n"), vec![b"SET".to_vec(), b"k".to_vec(), b"v".to_vec()]);
        assert_eq!(args(b"PING\n"), vec![b"PING".to_vec()]);
        assert_eq!(args(b"SET k \"a b\\x41\\n\"\r\n")[2], b"a bA\n".to_vec());
        assert_eq!(args(b"SET k 'it\\'s'\r\n")[2], b"it's".to_vec());
        assert_eq!(
            parse(b"SET k \"oops\r\n", 100),
            Err(ProtocolError("Protocol error: unbalanced quotes in request".into()))
        );
        assert_eq!(parse(b"\r\n", 100), Ok(Parsed::Request { args: vec![], consumed: 2 }));
        assert_eq!(parse(b"PING", 100), Ok(Parsed::Incomplete));
    }

    #[test]
    fn replies() {
        let mut out = Vec::new();
        write_reply(&mut out, &Reply::Double(1.5), false);
        write_reply(&mut out, &Reply::Double(1.5), true);
        write_reply(&mut out, &Reply::Nil, false);
        write_reply(&mut out, &Reply::Nil, true);
        write_reply(&mut out, &Reply::Map(vec![(Reply::Int(1), Reply::Bool(true))]), false);
        write_reply(&mut out, &Reply::Map(vec![(Reply::Int(1), Reply::Bool(true))]), true);
        assert_eq!(out, b"$3\r\n1.5\r\n,1.5\r\n$-1\r\n_\r\n*2\r\n:1\r\n:1\r\n%1\r\n:1\r\n#t\r\n".to_vec());
    }
}
