//! RESP framing over raw sockets: RESP2 and RESP3 replies, inline
//! commands, pipelining, malformed input and the input limits. Expected
//! bytes are those Redis 7.0 sends for the same input.

mod common;

use std::io::Write;
use std::time::Duration;

use common::{encode, encode_str, Server};

const CLOSE_WAIT: Duration = Duration::from_secs(5);

#[test]
fn resp2_reply_types() {
    let s = Server::start();
    let mut c = s.resp();
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(c.cmd(&["PING", "hi there"]), "$8\r\nhi there\r\n");
    assert_eq!(c.cmd(&["ECHO", ""]), "$0\r\n\r\n");
    assert_eq!(c.cmd(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "k"]), "$1\r\nv\r\n");
    assert_eq!(c.cmd(&["GET", "missing"]), "$-1\r\n");
    assert_eq!(c.cmd(&["INCR", "n"]), ":1\r\n");
    assert_eq!(c.cmd(&["INCRBY", "n", "-5"]), ":-4\r\n");
    assert_eq!(c.cmd(&["LRANGE", "nolist", "0", "-1"]), "*0\r\n");
    assert_eq!(c.cmd(&["INCR", "k"]), "-ERR value is not an integer or out of range\r\n");
    assert_eq!(c.cmd(&["ZADD", "z", "1.5", "a", "inf", "b"]), ":2\r\n");
    // RESP2 sends doubles as bulk strings.
    assert_eq!(c.cmd(&["ZSCORE", "z", "a"]), "$3\r\n1.5\r\n");
    assert_eq!(c.cmd(&["ZSCORE", "z", "b"]), "$3\r\ninf\r\n");
    assert_eq!(c.cmd(&["ZADD", "z", "0.1", "c"]), ":1\r\n");
    assert_eq!(c.cmd(&["ZSCORE", "z", "c"]), "$19\r\n0.10000000000000001\r\n");
    assert_eq!(c.cmd(&["ZRANGE", "z", "0", "0", "WITHSCORES"]), "*2\r\n$1\r\nc\r\n$19\r\n0.10000000000000001\r\n");
    assert_eq!(c.cmd(&["HSET", "h", "f", "v"]), ":1\r\n");
    assert_eq!(c.cmd(&["HGETALL", "h"]), "*2\r\n$1\r\nf\r\n$1\r\nv\r\n");
    assert_eq!(c.cmd(&["SADD", "s", "m"]), ":1\r\n");
    assert_eq!(c.cmd(&["SMEMBERS", "s"]), "*1\r\n$1\r\nm\r\n");
    assert_eq!(c.cmd(&["HMGET", "h", "f", "nope"]), "*2\r\n$1\r\nv\r\n$-1\r\n");
    assert_eq!(c.cmd(&["LPOP", "nolist", "2"]), "*-1\r\n");
    assert_eq!(c.cmd(&["TYPE", "h"]), "+hash\r\n");
    // HELLO without a version answers in the current protocol: a flat array.
    let hello = c.cmd(&["HELLO"]);
    assert!(hello.starts_with("*14\r\n$6\r\nserver\r\n$5\r\nredis\r\n"), "{hello:?}");
    assert!(hello.contains("$5\r\nproto\r\n:2\r\n"), "{hello:?}");
}

#[test]
fn resp3_reply_types() {
    let s = Server::start();
    let mut c = s.resp();
    let hello = c.cmd(&["HELLO", "3"]);
    assert!(
        hello.starts_with(
            "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:"
        ),
        "{hello:?}"
    );
    assert!(
        hello.ends_with("$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n"),
        "{hello:?}"
    );
    assert_eq!(c.cmd(&["GET", "missing"]), "_\r\n");
    assert_eq!(c.cmd(&["LPOP", "nolist", "2"]), "_\r\n");
    assert_eq!(c.cmd(&["ZADD", "z", "1.5", "a", "inf", "b", "0.1", "c"]), ":3\r\n");
    assert_eq!(c.cmd(&["ZSCORE", "z", "a"]), ",1.5\r\n");
    assert_eq!(c.cmd(&["ZSCORE", "z", "b"]), ",inf\r\n");
    assert_eq!(c.cmd(&["ZINCRBY", "z", "0.2", "c"]), ",0.30000000000000004\r\n");
    assert_eq!(c.cmd(&["ZSCORE", "z", "nosuch"]), "_\r\n");
    assert_eq!(c.cmd(&["ZMSCORE", "z", "b", "nosuch"]), "*2\r\n,inf\r\n_\r\n");
    // WITHSCORES pairs each member with its score in RESP3.
    assert_eq!(
        c.cmd(&["ZRANGE", "z", "0", "-1", "WITHSCORES"]),
        "*3\r\n*2\r\n$1\r\nc\r\n,0.30000000000000004\r\n*2\r\n$1\r\na\r\n,1.5\r\n*2\r\n$1\r\nb\r\n,inf\r\n"
    );
    assert_eq!(c.cmd(&["HSET", "h", "f", "v"]), ":1\r\n");
    assert_eq!(c.cmd(&["HGETALL", "h"]), "%1\r\n$1\r\nf\r\n$1\r\nv\r\n");
    assert_eq!(c.cmd(&["HGETALL", "nohash"]), "%0\r\n");
    assert_eq!(c.cmd(&["SADD", "s", "m"]), ":1\r\n");
    assert_eq!(c.cmd(&["SMEMBERS", "s"]), "~1\r\n$1\r\nm\r\n");
    assert_eq!(c.cmd(&["SMEMBERS", "noset"]), "~0\r\n");
    assert_eq!(c.cmd(&["HMGET", "h", "f", "nope"]), "*2\r\n$1\r\nv\r\n_\r\n");
    assert_eq!(c.cmd(&["INCR", "n"]), ":1\r\n");
    // HELLO 2 goes back to RESP2 on the same connection.
    let hello = c.cmd(&["HELLO", "2"]);
    assert!(hello.starts_with("*14\r\n"), "{hello:?}");
    assert_eq!(c.cmd(&["GET", "missing"]), "$-1\r\n");
    assert_eq!(c.cmd(&["HELLO", "4"]), "-NOPROTO unsupported protocol version\r\n");
    assert_eq!(c.cmd(&["HELLO", "abc"]), "-ERR Protocol version is not an integer or out of range\r\n");
    assert_eq!(c.cmd(&["HELLO", "3", "BOGUS"]), "-ERR Syntax error in HELLO option 'BOGUS'\r\n");
    // A failed HELLO leaves the protocol as it was.
    assert_eq!(c.cmd(&["GET", "missing"]), "$-1\r\n");
}

#[test]
fn inline_commands() {
    let s = Server::start();
    let mut c = s.resp();
    c.send(b"PING\r\n");
    assert_eq!(c.read_reply(), "+PONG\r\n");
    // A bare LF ends an inline command too; blank lines are skipped.
    c.send(b"\r\n\r\nPING\n");
    assert_eq!(c.read_reply(), "+PONG\r\n");
    c.send(b"SET k \"a b\\x41\\n\"\r\nGET k\r\n");
    assert_eq!(c.read_replies(2), ["+OK\r\n", "$5\r\na bA\n\r\n"]);
    c.send(b"SET k2 'it\\'s'\r\nGET k2\r\n");
    assert_eq!(c.read_replies(2), ["+OK\r\n", "$4\r\nit's\r\n"]);
    c.send(b"   ECHO    spaced   \r\n");
    assert_eq!(c.read_reply(), "$6\r\nspaced\r\n");
    c.send(b"ECHO \"\"\r\n");
    assert_eq!(c.read_reply(), "$0\r\n\r\n");
    // Inline and multibulk requests mix freely in one stream.
    let mut mixed = b"SET m 1\r\n".to_vec();
    mixed.extend_from_slice(&encode_str(&["INCR", "m"]));
    mixed.extend_from_slice(b"GET m\r\n");
    c.send(&mixed);
    assert_eq!(c.read_replies(3), ["+OK\r\n", ":2\r\n", "$1\r\n2\r\n"]);
}

#[test]
fn inline_unbalanced_quotes_is_a_protocol_error() {
    let s = Server::start();
    for bad in [&b"SET k \"oops\r\n"[..], b"GET \"a\"b\r\n"] {
        let mut c = s.resp();
        c.send(bad);
        assert_eq!(c.read_reply(), "-ERR Protocol error: unbalanced quotes in request\r\n");
        assert!(c.is_closed_within(CLOSE_WAIT));
    }
}

#[test]
fn pipelining_keeps_order() {
    let s = Server::start();
    let mut c = s.resp();
    let mut batch = Vec::new();
    for i in 0..1000 {
        match i % 4 {
            0 | 1 => batch.extend_from_slice(&encode_str(&["INCR", "counter"])),
            2 => batch.extend_from_slice(&encode_str(&["SET", &format!("key:{i}"), &format!("value:{i}")])),
            _ => batch.extend_from_slice(&encode_str(&["GET", &format!("key:{}", i - 1)])),
        }
    }
    c.send(&batch);
    let replies = c.read_replies(1000);
    let mut incrs = 0;
    for (i, r) in replies.iter().enumerate() {
        let want = match i % 4 {
            0 | 1 => {
                incrs += 1;
                format!(":{incrs}\r\n")
            }
            2 => "+OK\r\n".to_string(),
            _ => {
                let v = format!("value:{}", i - 1);
                format!("${}\r\n{v}\r\n", v.len())
            }
        };
        assert_eq!(r, &want, "reply {i}");
    }
    assert!(c.pending().is_empty(), "extra bytes after 1000 replies: {:?}", c.pending());
    // Inline requests pipeline too.
    c.send("PING\r\n".repeat(1000).as_bytes());
    assert!(c.read_replies(1000).iter().all(|r| r == "+PONG\r\n"));
}

#[test]
fn requests_split_across_writes() {
    let s = Server::start();
    let mut c = s.resp();
    let frame = encode_str(&["SET", "split", "across many writes"]);
    for b in &frame {
        c.stream.write_all(std::slice::from_ref(b)).unwrap_or_else(|e| panic!("write: {e}"));
    }
    assert_eq!(c.read_reply(), "+OK\r\n");
    // Two requests where the second starts in the first's write.
    let two = [encode_str(&["GET", "split"]), encode_str(&["ECHO", "x"])].concat();
    let (a, b) = two.split_at(frame.len() / 2);
    c.send(a);
    std::thread::sleep(Duration::from_millis(20));
    c.send(b);
    assert_eq!(c.read_replies(2), ["$18\r\nacross many writes\r\n", "$1\r\nx\r\n"]);
}

#[test]
fn binary_safe_and_large_values() {
    let s = Server::start();
    let mut c = s.resp();
    let key: &[u8] = b"bin\r\n\0key";
    let value: Vec<u8> = (0..=255u8).cycle().take(3 * 1024 * 1024 + 7).collect();
    assert_eq!(c.cmd_bytes(&[b"SET", key, &value]), b"+OK\r\n");
    let mut want = format!("${}\r\n", value.len()).into_bytes();
    want.extend_from_slice(&value);
    want.extend_from_slice(b"\r\n");
    assert!(c.cmd_bytes(&[b"GET", key]) == want, "3 MiB value did not round-trip");
    assert_eq!(c.cmd(&["STRLEN", "bin\r\n\0key"]), format!(":{}\r\n", value.len()));
}

#[test]
fn empty_and_null_multibulk_are_ignored() {
    let s = Server::start();
    let mut c = s.resp();
    c.send(b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n");
    assert_eq!(c.read_reply(), "+PONG\r\n");
    assert!(!c.is_closed_within(Duration::from_millis(100)));
}

#[test]
fn malformed_frames_close_only_that_connection() {
    let s = Server::start();
    let mut bystander = s.resp();
    assert_eq!(bystander.cmd(&["SET", "safe", "1"]), "+OK\r\n");
    let cases: &[(&[u8], &str)] = &[
        (b"*1\r\n+PING\r\n", "-ERR Protocol error: expected '$', got '+'\r\n"),
        (b"*x\r\n", "-ERR Protocol error: invalid multibulk length\r\n"),
        (b"*1\r\n$-1\r\n", "-ERR Protocol error: invalid bulk length\r\n"),
        (b"*1\r\n$abc\r\n", "-ERR Protocol error: invalid bulk length\r\n"),
        (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$999999999999\r\n", "-ERR Protocol error: invalid bulk length\r\n"),
        // Replies before the bad frame still arrive, in order.
        (b"PING\r\n*1\r\n:1\r\n", "+PONG\r\n-ERR Protocol error: expected '$', got ':'\r\n"),
    ];
    for (input, want) in cases {
        let mut c = s.resp();
        c.send(input);
        let got: String = (0..want.matches("\r\n").count()).map(|_| c.read_reply()).collect();
        assert_eq!(&got, want, "input {:?}", String::from_utf8_lossy(input));
        assert!(c.is_closed_within(CLOSE_WAIT), "connection left open after {:?}", String::from_utf8_lossy(input));
        assert_eq!(
            bystander.cmd(&["INCR", "safe"]),
            format!(":{}\r\n", 2 + cases.iter().position(|x| x.0 == *input).unwrap_or(0))
        );
    }
    // Nothing written before the error was lost.
    assert_eq!(bystander.cmd(&["GET", "safe"]), format!("$1\r\n{}\r\n", 1 + cases.len()));
}

#[test]
fn a_client_that_vanishes_mid_frame_does_not_disturb_others() {
    let s = Server::start();
    {
        let mut c = s.resp();
        c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\npartial");
    }
    let mut c = s.resp();
    assert_eq!(c.cmd(&["EXISTS", "k"]), ":0\r\n");
    assert_eq!(c.cmd(&["PING"]), "+PONG\r\n");
}

#[test]
fn proto_max_bulk_len_is_enforced() {
    // 1mb: Redis' smallest accepted proto-max-bulk-len, so the test also
    // runs against a reference Redis.
    let s = Server::start_with(&[("FASTCACHE_PROTO_MAX_BULK_LEN", "1mb")]);
    let mut ok = s.resp();
    let at_limit = "x".repeat(1 << 20);
    assert_eq!(ok.cmd(&["SET", "k", &at_limit]), "+OK\r\n");
    assert_eq!(ok.cmd(&["STRLEN", "k"]), ":1048576\r\n");
    let mut c = s.resp();
    // The length alone is refused, before any payload is sent.
    c.send(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048577\r\n");
    assert_eq!(c.read_reply(), "-ERR Protocol error: invalid bulk length\r\n");
    assert!(c.is_closed_within(CLOSE_WAIT));
    assert_eq!(ok.cmd(&["STRLEN", "k"]), ":1048576\r\n");
}

/// Writes as much of `bytes` as the server takes; it may close first.
fn send_until_closed(c: &mut common::Resp, bytes: &[u8]) {
    for chunk in bytes.chunks(4096) {
        if c.stream.write_all(chunk).is_err() {
            return;
        }
    }
}

#[test]
fn query_buffer_limit_disconnects() {
    let s = Server::start_with(&[("FASTCACHE_CLIENT_QUERY_BUFFER_LIMIT", "1mb")]);
    let mut bystander = s.resp();
    // Half of a 4 MiB argument is already past the limit: the client is
    // dropped without a reply.
    let mut c = s.resp();
    let mut frame = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4194304\r\n".to_vec();
    frame.extend_from_slice(&vec![b'b'; 2 << 20]);
    send_until_closed(&mut c, &frame);
    assert!(c.is_closed_within(CLOSE_WAIT), "bulk flood not disconnected");
    assert!(c.pending().is_empty(), "unexpected reply {:?}", String::from_utf8_lossy(c.pending()));
    // Requests under the limit still work, for the others and for new clients.
    assert_eq!(bystander.cmd(&["SET", "k", &"v".repeat(100_000)]), "+OK\r\n");
    assert_eq!(s.resp().cmd(&["STRLEN", "k"]), ":100000\r\n");
    if common::reference_mode() {
        return;
    }
    assert!(s.stderr_text().contains("client-query-buffer-limit"), "{}", s.stderr_text());
    // FastCache accepts limits below the inline maximum: an endless inline
    // request is then cut at the limit.
    let s = Server::start_with(&[("FASTCACHE_CLIENT_QUERY_BUFFER_LIMIT", "4kb")]);
    let mut c = s.resp();
    send_until_closed(&mut c, &vec![b'a'; 32 * 1024]);
    assert!(c.is_closed_within(CLOSE_WAIT), "inline flood not disconnected");
    assert!(c.pending().is_empty(), "unexpected reply {:?}", String::from_utf8_lossy(c.pending()));
    assert_eq!(s.resp().cmd(&["PING"]), "+PONG\r\n");
}

#[test]
fn too_big_inline_request() {
    let s = Server::start();
    let mut c = s.resp();
    send_until_closed(&mut c, &vec![b'a'; 70 * 1024]);
    assert_eq!(c.read_reply(), "-ERR Protocol error: too big inline request\r\n");
    assert!(c.is_closed_within(CLOSE_WAIT));
}

#[test]
fn unknown_commands_and_arity() {
    let s = Server::start();
    let mut c = s.resp();
    assert_eq!(c.cmd(&["NOSUCH", "a", "b"]), "-ERR unknown command 'NOSUCH', with args beginning with: 'a' 'b' \r\n");
    assert_eq!(c.cmd(&["nosuch"]), "-ERR unknown command 'nosuch', with args beginning with: \r\n");
    assert_eq!(c.cmd(&["GET"]), "-ERR wrong number of arguments for 'get' command\r\n");
    assert_eq!(c.cmd(&["get", "a", "b"]), "-ERR wrong number of arguments for 'get' command\r\n");
    assert_eq!(c.cmd(&["SET", "k"]), "-ERR wrong number of arguments for 'set' command\r\n");
    assert_eq!(c.cmd(&["ECHO"]), "-ERR wrong number of arguments for 'echo' command\r\n");
    assert_eq!(c.cmd(&["PING", "a", "b"]), "-ERR wrong number of arguments for 'ping' command\r\n");
    assert_eq!(c.cmd(&["RESET", "x"]), "-ERR wrong number of arguments for 'reset' command\r\n");
    // Command names are case-insensitive; errors keep the connection open.
    assert_eq!(c.cmd(&["pInG"]), "+PONG\r\n");
    // Inside MULTI an unknown command aborts the transaction.
    assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "t", "1"]), "+QUEUED\r\n");
    assert_eq!(c.cmd(&["NOSUCH"]), "-ERR unknown command 'NOSUCH', with args beginning with: \r\n");
    assert_eq!(c.cmd(&["EXEC"]), "-EXECABORT Transaction discarded because of previous errors.\r\n");
    assert_eq!(c.cmd(&["EXISTS", "t"]), ":0\r\n");
}

#[test]
fn quit_replies_then_closes() {
    let s = Server::start();
    let mut c = s.resp();
    // Requests pipelined after QUIT are not executed.
    c.send(b"SET before 1\r\nQUIT\r\nSET after 1\r\n");
    assert_eq!(c.read_replies(2), ["+OK\r\n", "+OK\r\n"]);
    assert!(c.is_closed_within(CLOSE_WAIT));
    let mut c = s.resp();
    assert_eq!(c.cmd(&["EXISTS", "before", "after"]), ":1\r\n");
}

#[test]
fn reset_restores_a_fresh_connection_state() {
    let s = Server::start();
    let mut c = s.resp();
    assert!(c.cmd(&["HELLO", "3"]).starts_with('%'));
    assert_eq!(c.cmd(&["SELECT", "3"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "in3", "x"]), "+OK\r\n");
    assert_eq!(c.cmd(&["WATCH", "in3"]), "+OK\r\n");
    assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "queued", "1"]), "+QUEUED\r\n");
    assert_eq!(c.cmd(&["RESET"]), "+RESET\r\n");
    // Out of MULTI, back in db 0, back to RESP2.
    assert_eq!(c.cmd(&["EXEC"]), "-ERR EXEC without MULTI\r\n");
    assert_eq!(c.cmd(&["GET", "in3"]), "$-1\r\n");
    assert_eq!(c.cmd(&["EXISTS", "queued"]), ":0\r\n");
    assert_eq!(c.cmd(&["SELECT", "3"]), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "in3"]), "$1\r\nx\r\n");
}

#[test]
fn reset_with_requirepass_needs_auth_again() {
    let s = Server::start_with(&[("FASTCACHE_REQUIREPASS", "s3cret")]);
    let mut c = s.resp();
    assert_eq!(c.cmd(&["GET", "k"]), "-NOAUTH Authentication required.\r\n");
    assert_eq!(c.cmd(&["AUTH", "s3cret"]), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "k"]), "$-1\r\n");
    assert_eq!(c.cmd(&["RESET"]), "+RESET\r\n");
    assert_eq!(c.cmd(&["GET", "k"]), "-NOAUTH Authentication required.\r\n");
    // HELLO can authenticate and switch protocol at once.
    let hello = c.cmd(&["HELLO", "3", "AUTH", "default", "s3cret"]);
    assert!(hello.starts_with("%7\r\n"), "{hello:?}");
    assert_eq!(c.cmd(&["GET", "k"]), "_\r\n");
}

#[test]
fn many_clients_pipeline_concurrently() {
    let s = Server::start();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let mut c = s.resp();
            std::thread::spawn(move || {
                let mut batch = Vec::new();
                for i in 0..200 {
                    batch.extend_from_slice(&encode(&[
                        b"RPUSH",
                        format!("list:{t}").as_bytes(),
                        i.to_string().as_bytes(),
                    ]));
                }
                c.send(&batch);
                let replies = c.read_replies(200);
                for (i, r) in replies.iter().enumerate() {
                    assert_eq!(r, &format!(":{}\r\n", i + 1));
                }
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().is_ok(), "a pipelining client failed");
    }
    let mut c = s.resp();
    for t in 0..8 {
        assert_eq!(c.cmd(&["LLEN", &format!("list:{t}")]), ":200\r\n");
    }
}
