//! RESP2: a small blocking client (for `backup --from`) and a reader of
//! the command stream of a Redis AOF file (for `import-aof`).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

/// A reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Resp>>),
}

impl Resp {
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Resp::Simple(s) => Some(s.as_bytes()),
            Resp::Bulk(Some(b)) => Some(b),
            _ => None,
        }
    }
}

/// A blocking connection to a server.
pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    pub fn connect(addr: &str, timeout: Duration) -> Result<Client> {
        let addrs: Vec<_> = addr.to_socket_addrs().with_context(|| format!("resolving {addr}"))?.collect();
        let mut last = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, timeout) {
                Ok(s) => {
                    s.set_read_timeout(Some(timeout))?;
                    s.set_nodelay(true)?;
                    let writer = s.try_clone()?;
                    return Ok(Client { reader: BufReader::new(s), writer });
                }
                Err(e) => last = Some(e),
            }
        }
        Err(match last {
            Some(e) => anyhow!("connecting to {addr}: {e}"),
            None => anyhow!("{addr} resolves to no address"),
        })
    }

    /// Sends one command and reads its reply; an error reply is an `Err`.
    pub fn call(&mut self, args: &[&[u8]]) -> Result<Resp> {
        let mut buf = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            buf.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            buf.extend_from_slice(a);
            buf.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&buf)?;
        let name = String::from_utf8_lossy(args.first().copied().unwrap_or_default()).to_uppercase();
        match read_reply(&mut self.reader).with_context(|| format!("reading the reply to {name}"))? {
            Resp::Error(e) => bail!("the server answered {name} with an error: {e}"),
            r => Ok(r),
        }
    }
}

fn read_line(r: &mut impl BufRead) -> Result<Vec<u8>> {
    let mut line = Vec::new();
    let n = r.read_until(b'\n', &mut line)?;
    if n == 0 {
        bail!("connection closed");
    }
    if !line.ends_with(b"\r\n") {
        bail!("protocol error: line without CRLF");
    }
    line.truncate(line.len() - 2);
    Ok(line)
}

fn parse_int(b: &[u8]) -> Result<i64> {
    std::str::from_utf8(b).ok().and_then(|s| s.parse().ok()).ok_or_else(|| anyhow!("protocol error: bad integer"))
}

pub fn read_reply(r: &mut impl BufRead) -> Result<Resp> {
    let line = read_line(r)?;
    let (t, rest) = line.split_first().ok_or_else(|| anyhow!("protocol error: empty line"))?;
    Ok(match t {
        b'+' => Resp::Simple(String::from_utf8_lossy(rest).into_owned()),
        b'-' => Resp::Error(String::from_utf8_lossy(rest).into_owned()),
        b':' => Resp::Int(parse_int(rest)?),
        b'$' => {
            let n = parse_int(rest)?;
            if n < 0 {
                Resp::Bulk(None)
            } else {
                let mut b = vec![0u8; n as usize + 2];
                r.read_exact(&mut b)?;
                b.truncate(n as usize);
                Resp::Bulk(Some(b))
            }
        }
        b'*' => {
            let n = parse_int(rest)?;
            if n < 0 {
                Resp::Array(None)
            } else {
                let mut v = Vec::with_capacity(n.min(1024) as usize);
                for _ in 0..n {
                    v.push(read_reply(r)?);
                }
                Resp::Array(Some(v))
            }
        }
        other => bail!("protocol error: unexpected type byte {:?}", *other as char),
    })
}

/// One command of an AOF, with where it starts.
#[derive(Debug)]
pub struct AofCommand {
    pub argv: Vec<Vec<u8>>,
    pub offset: u64,
}

/// What the reader found next.
#[derive(Debug)]
pub enum AofItem {
    Command(AofCommand),
    /// The file ends in the middle of a command (Redis' `aof-load-truncated`
    /// case): the tail from `offset` is incomplete.
    Truncated {
        offset: u64,
    },
    End,
}

/// Reads the commands of an AOF: RESP arrays of bulk strings, and `#…`
/// annotation lines (timestamps), which are skipped.
pub struct AofReader<R> {
    r: R,
    offset: u64,
}

impl<R: BufRead> AofReader<R> {
    pub fn new(r: R) -> AofReader<R> {
        AofReader { r, offset: 0 }
    }

    fn line(&mut self) -> Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        let n = self.r.read_until(b'\n', &mut line)?;
        self.offset += n as u64;
        if n == 0 || !line.ends_with(b"\r\n") {
            return Ok(None);
        }
        line.truncate(line.len() - 2);
        Ok(Some(line))
    }

    /// The next command; a format error names the byte offset.
    pub fn next_item(&mut self) -> Result<AofItem> {
        loop {
            let start = self.offset;
            let first = {
                let buf = self.r.fill_buf()?;
                match buf.first() {
                    None => return Ok(AofItem::End),
                    Some(&b) => b,
                }
            };
            if first == b'#' {
                if self.line()?.is_none() {
                    return Ok(AofItem::Truncated { offset: start });
                }
                continue;
            }
            if first != b'*' {
                bail!("not a RESP command at offset {start} (byte {:?}): not an AOF file, or damaged", first as char);
            }
            let Some(line) = self.line()? else { return Ok(AofItem::Truncated { offset: start }) };
            let n = parse_int(&line[1..]).with_context(|| format!("bad array length at offset {start}"))?;
            if !(1..=1 << 20).contains(&n) {
                bail!("bad command length {n} at offset {start}");
            }
            let mut argv = Vec::with_capacity(n as usize);
            for _ in 0..n {
                let at = self.offset;
                let Some(l) = self.line()? else { return Ok(AofItem::Truncated { offset: start }) };
                if l.first() != Some(&b'$') {
                    bail!("expected a bulk string at offset {at}");
                }
                let len = parse_int(&l[1..]).with_context(|| format!("bad bulk length at offset {at}"))?;
                if !(0..=512 << 20).contains(&len) {
                    bail!("bad bulk length {len} at offset {at}");
                }
                let mut b = vec![0u8; len as usize + 2];
                let mut got = 0;
                while got < b.len() {
                    let k = self.r.read(&mut b[got..])?;
                    if k == 0 {
                        self.offset += got as u64;
                        return Ok(AofItem::Truncated { offset: start });
                    }
                    got += k;
                }
                self.offset += b.len() as u64;
                if &b[len as usize..] != b"\r\n" {
                    bail!("bulk string at offset {at} does not end in CRLF");
                }
                b.truncate(len as usize);
                argv.push(b);
            }
            return Ok(AofItem::Command(AofCommand { argv, offset: start }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aof_reader_reads_commands_annotations_and_a_truncated_tail() -> Result<()> {
        let data = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n#TS:1700000000\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv1\r\n*3\r\n$3\r\nSET\r\n$1\r\nk";
        let mut r = AofReader::new(&data[..]);
        let AofItem::Command(c) = r.next_item()? else { bail!("no command") };
        assert_eq!((c.argv, c.offset), (vec![b"SELECT".to_vec(), b"0".to_vec()], 0));
        let AofItem::Command(c) = r.next_item()? else { bail!("no command") };
        assert_eq!(c.argv[2], b"v1");
        assert!(matches!(r.next_item()?, AofItem::Truncated { .. }));
        let mut r = AofReader::new(&b"REDIS0009"[..]);
        assert!(r.next_item().is_err());
        Ok(())
    }

    #[test]
    fn replies_parse() -> Result<()> {
        let mut r = &b"*2\r\n$3\r\ndir\r\n$4\r\n/tmp\r\n"[..];
        let v = read_reply(&mut r)?;
        assert_eq!(v, Resp::Array(Some(vec![Resp::Bulk(Some(b"dir".to_vec())), Resp::Bulk(Some(b"/tmp".to_vec()))])));
        Ok(())
    }
}
