//! Blocking pops against the real server: BLPOP, BRPOP, BLMOVE,
//! BRPOPLPUSH, BZPOPMIN, BZPOPMAX — immediate answers, waiting, timeouts,
//! FIFO fairness, chained BLMOVEs, transactions, disconnects, CLIENT
//! UNBLOCK.

mod common;

use std::time::{Duration, Instant};

use common::{Resp, Server};

/// Long enough for a reply that is not supposed to come to show up.
const QUIET: Duration = Duration::from_millis(150);

fn bulk(s: &str) -> String {
    format!("${}\r\n{s}\r\n", s.len())
}

fn pair(k: &str, v: &str) -> String {
    format!("*2\r\n{}{}", bulk(k), bulk(v))
}

/// Whether no reply arrives on `c` within `d`.
fn quiet_for(c: &mut Resp, d: Duration) -> bool {
    if !c.pending().is_empty() {
        return false;
    }
    let _ = c.stream.set_read_timeout(Some(d));
    let mut probe = [0u8; 1];
    let quiet = match c.stream.peek(&mut probe) {
        Ok(_) => false,
        Err(e) => matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
    };
    let _ = c.stream.set_read_timeout(Some(common::IO_TIMEOUT));
    quiet
}

/// The `blocked_clients` figure of INFO, if INFO reports it.
fn blocked_clients(admin: &mut Resp) -> Option<u64> {
    let info = admin.cmd(&["INFO", "clients"]);
    info.lines().find_map(|l| l.strip_prefix("blocked_clients:")).and_then(|v| v.trim().parse().ok())
}

/// Waits until the server counts `n` blocked clients, so that the order in
/// which clients block is known. Bounded: fails after 5 s.
fn wait_blocked(admin: &mut Resp, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let now = blocked_clients(admin);
        if now == Some(n) {
            return;
        }
        assert!(now.is_some(), "INFO clients does not report blocked_clients");
        assert!(Instant::now() < deadline, "blocked_clients stayed {now:?}, expected {n}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn immediate_with_data() {
    let s = Server::start();
    let mut c = s.resp();
    assert_eq!(c.cmd(&["RPUSH", "k", "a", "b", "c"]), ":3\r\n");
    assert_eq!(c.cmd(&["BLPOP", "none", "k", "0"]), pair("k", "a"));
    assert_eq!(c.cmd(&["BRPOP", "k", "0"]), pair("k", "c"));
    assert_eq!(c.cmd(&["BLMOVE", "k", "d", "LEFT", "RIGHT", "0"]), bulk("b"));
    assert_eq!(c.cmd(&["BRPOPLPUSH", "d", "e", "0"]), bulk("b"));
    assert_eq!(c.cmd(&["EXISTS", "k", "d"]), ":0\r\n");
    // Timeout validation comes first, as in Redis.
    assert_eq!(c.cmd(&["BLPOP", "k", "x"]), "-ERR timeout is not a float or out of range\r\n");
    assert_eq!(c.cmd(&["BLPOP", "k", "-1"]), "-ERR timeout is negative\r\n");
    assert_eq!(c.cmd(&["SET", "s", "v"]), "+OK\r\n");
    assert!(c.cmd(&["BLPOP", "s", "0"]).starts_with("-WRONGTYPE"));
}

#[test]
fn blocks_until_push_from_another_client() {
    let s = Server::start();
    let mut waiter = s.resp();
    let mut admin = s.resp();
    let mut pusher = s.resp();
    waiter.send(&common::encode_str(&["BLPOP", "a", "k", "0"]));
    wait_blocked(&mut admin, 1);
    assert!(quiet_for(&mut waiter, QUIET));
    assert_eq!(pusher.cmd(&["LPUSH", "k", "v"]), ":1\r\n");
    assert_eq!(waiter.read_reply(), pair("k", "v"));
    assert_eq!(pusher.cmd(&["EXISTS", "k"]), ":0\r\n");
    wait_blocked(&mut admin, 0);
    // The served client is back to normal.
    assert_eq!(waiter.cmd(&["PING"]), "+PONG\r\n");
}

#[test]
fn pipelined_commands_wait_for_the_blocking_one() {
    let s = Server::start();
    let mut waiter = s.resp();
    let mut admin = s.resp();
    let mut req = common::encode_str(&["BRPOP", "k", "0"]);
    req.extend(common::encode_str(&["PING", "after"]));
    waiter.send(&req);
    wait_blocked(&mut admin, 1);
    // Sent while blocked: read, but executed only after the wait.
    waiter.send(&common::encode_str(&["ECHO", "later"]));
    assert!(quiet_for(&mut waiter, QUIET));
    assert_eq!(admin.cmd(&["RPUSH", "k", "x"]), ":1\r\n");
    assert_eq!(waiter.read_reply(), pair("k", "x"));
    assert_eq!(waiter.read_reply(), bulk("after"));
    assert_eq!(waiter.read_reply(), bulk("later"));
}

#[test]
fn timeouts_reply_nil_of_the_right_kind() {
    let s = Server::start();
    let mut c = s.resp();
    let cases: &[(&[&str], &str)] = &[
        (&["BLPOP", "k", "0.2"], "*-1\r\n"),
        (&["BRPOP", "k", "k2", "0.2"], "*-1\r\n"),
        (&["BLMOVE", "k", "d", "LEFT", "LEFT", "0.2"], "$-1\r\n"),
        (&["BRPOPLPUSH", "k", "d", "0.2"], "$-1\r\n"),
        (&["BZPOPMIN", "z", "0.2"], "*-1\r\n"),
        (&["BZPOPMAX", "z", "0.2"], "*-1\r\n"),
    ];
    for (args, want) in cases {
        let t = Instant::now();
        assert_eq!(c.cmd(args), *want, "{args:?}");
        let took = t.elapsed();
        assert!(took >= Duration::from_millis(190), "{args:?} returned after {took:?}");
        assert!(took < Duration::from_secs(3), "{args:?} returned after {took:?}");
    }
    // RESP3 renders both kinds of nil as `_`.
    assert!(c.cmd(&["HELLO", "3"]).starts_with('%'));
    assert_eq!(c.cmd(&["BLPOP", "k", "0.05"]), "_\r\n");
    assert_eq!(c.cmd(&["BLMOVE", "k", "d", "LEFT", "LEFT", "0.05"]), "_\r\n");
    assert_eq!(c.cmd(&["EXISTS", "k", "d", "z"]), ":0\r\n");
}

#[test]
fn fifo_fairness() {
    let s = Server::start();
    let mut admin = s.resp();
    let mut waiters: Vec<Resp> = Vec::new();
    for i in 0..3 {
        let mut w = s.resp();
        w.send(&common::encode_str(&["BLPOP", "k", "0"]));
        wait_blocked(&mut admin, i + 1);
        waiters.push(w);
    }
    for v in ["1", "2", "3"] {
        assert_eq!(admin.cmd(&["RPUSH", "k", v]), ":1\r\n");
    }
    for (w, v) in waiters.iter_mut().zip(["1", "2", "3"]) {
        assert_eq!(w.read_reply(), pair("k", v));
    }
    // One push of several values serves waiters in order too.
    let mut waiters: Vec<Resp> = Vec::new();
    for i in 0..3 {
        let mut w = s.resp();
        w.send(&common::encode_str(&["BRPOP", "k", "0"]));
        wait_blocked(&mut admin, i + 1);
        waiters.push(w);
    }
    assert_eq!(admin.cmd(&["RPUSH", "k", "a", "b"]), ":2\r\n");
    assert_eq!(waiters[0].read_reply(), pair("k", "b"));
    assert_eq!(waiters[1].read_reply(), pair("k", "a"));
    assert!(quiet_for(&mut waiters[2], QUIET));
    assert_eq!(admin.cmd(&["LPUSH", "k", "c"]), ":1\r\n");
    assert_eq!(waiters[2].read_reply(), pair("k", "c"));
    wait_blocked(&mut admin, 0);
}

#[test]
fn blmove_chain_wakes_destination_waiter() {
    let s = Server::start();
    let mut admin = s.resp();
    let mut mover = s.resp();
    let mut popper = s.resp();
    mover.send(&common::encode_str(&["BLMOVE", "src", "dst", "RIGHT", "LEFT", "0"]));
    wait_blocked(&mut admin, 1);
    popper.send(&common::encode_str(&["BRPOP", "dst", "0"]));
    wait_blocked(&mut admin, 2);
    assert_eq!(admin.cmd(&["RPUSH", "src", "v"]), ":1\r\n");
    assert_eq!(mover.read_reply(), bulk("v"));
    assert_eq!(popper.read_reply(), pair("dst", "v"));
    assert_eq!(admin.cmd(&["EXISTS", "src", "dst"]), ":0\r\n");

    // BRPOPLPUSH onto a key another BRPOPLPUSH waits on: a chain of two.
    let mut first = s.resp();
    let mut second = s.resp();
    first.send(&common::encode_str(&["BRPOPLPUSH", "a", "b", "0"]));
    wait_blocked(&mut admin, 1);
    second.send(&common::encode_str(&["BRPOPLPUSH", "b", "c", "0"]));
    wait_blocked(&mut admin, 2);
    assert_eq!(admin.cmd(&["LPUSH", "a", "x"]), ":1\r\n");
    assert_eq!(first.read_reply(), bulk("x"));
    assert_eq!(second.read_reply(), bulk("x"));
    assert_eq!(admin.cmd(&["LRANGE", "c", "0", "-1"]), format!("*1\r\n{}", bulk("x")));
    assert_eq!(admin.cmd(&["EXISTS", "a", "b"]), ":0\r\n");
}

#[test]
fn sorted_set_pops() {
    let s = Server::start();
    let mut admin = s.resp();
    assert_eq!(admin.cmd(&["ZADD", "z", "1", "a", "2", "b", "3", "c"]), ":3\r\n");
    assert_eq!(admin.cmd(&["BZPOPMIN", "z", "0"]), format!("*3\r\n{}{}{}", bulk("z"), bulk("a"), bulk("1")));
    assert_eq!(admin.cmd(&["BZPOPMAX", "z", "0"]), format!("*3\r\n{}{}{}", bulk("z"), bulk("c"), bulk("3")));

    let mut min = s.resp();
    let mut max = s.resp();
    min.send(&common::encode_str(&["BZPOPMIN", "y", "0"]));
    wait_blocked(&mut admin, 1);
    assert!(max.cmd(&["HELLO", "3"]).starts_with('%'));
    max.send(&common::encode_str(&["BZPOPMAX", "x", "y", "0"]));
    wait_blocked(&mut admin, 2);
    assert_eq!(admin.cmd(&["ZADD", "y", "5", "m", "7", "n"]), ":2\r\n");
    assert_eq!(min.read_reply(), format!("*3\r\n{}{}{}", bulk("y"), bulk("m"), bulk("5")));
    // RESP3 gets the score as a double.
    assert_eq!(max.read_reply(), format!("*3\r\n{}{},7\r\n", bulk("y"), bulk("n")));
    assert_eq!(admin.cmd(&["EXISTS", "y"]), ":0\r\n");
}

#[test]
fn waiter_of_another_type_keeps_waiting() {
    let s = Server::start();
    let mut admin = s.resp();
    let mut list = s.resp();
    let mut zset = s.resp();
    list.send(&common::encode_str(&["BLPOP", "k", "0"]));
    wait_blocked(&mut admin, 1);
    zset.send(&common::encode_str(&["BZPOPMIN", "k", "0"]));
    wait_blocked(&mut admin, 2);
    assert_eq!(admin.cmd(&["ZADD", "k", "1", "m"]), ":1\r\n");
    assert_eq!(zset.read_reply(), format!("*3\r\n{}{}{}", bulk("k"), bulk("m"), bulk("1")));
    assert_eq!(admin.cmd(&["SET", "k", "string"]), "+OK\r\n");
    assert!(quiet_for(&mut list, QUIET));
    assert_eq!(admin.cmd(&["DEL", "k"]), ":1\r\n");
    assert_eq!(admin.cmd(&["RPUSH", "k", "v"]), ":1\r\n");
    assert_eq!(list.read_reply(), pair("k", "v"));
}

#[test]
fn push_inside_multi_exec_serves_waiter() {
    let s = Server::start();
    let mut admin = s.resp();
    let mut waiter = s.resp();
    let mut other_db = s.resp();
    waiter.send(&common::encode_str(&["BLPOP", "k", "0"]));
    wait_blocked(&mut admin, 1);
    assert_eq!(admin.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(admin.cmd(&["LPUSH", "k", "a"]), "+QUEUED\r\n");
    assert_eq!(admin.cmd(&["LPUSH", "k", "b"]), "+QUEUED\r\n");
    // Nothing is served before EXEC.
    assert!(quiet_for(&mut waiter, QUIET));
    assert_eq!(admin.cmd(&["EXEC"]), "*2\r\n:1\r\n:2\r\n");
    assert_eq!(waiter.read_reply(), pair("k", "b"));
    assert_eq!(admin.cmd(&["LRANGE", "k", "0", "-1"]), format!("*1\r\n{}", bulk("a")));

    // A waiter in database 1, served by a transaction that selects it.
    assert_eq!(other_db.cmd(&["SELECT", "1"]), "+OK\r\n");
    other_db.send(&common::encode_str(&["BLPOP", "q", "0"]));
    wait_blocked(&mut admin, 1);
    assert_eq!(admin.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(admin.cmd(&["SELECT", "1"]), "+QUEUED\r\n");
    assert_eq!(admin.cmd(&["RPUSH", "q", "x"]), "+QUEUED\r\n");
    assert_eq!(admin.cmd(&["EXEC"]), "*2\r\n+OK\r\n:1\r\n");
    assert_eq!(other_db.read_reply(), pair("q", "x"));
}

#[test]
fn blocking_command_in_multi_does_not_block() {
    let s = Server::start();
    let mut c = s.resp();
    assert_eq!(c.cmd(&["MULTI"]), "+OK\r\n");
    assert_eq!(c.cmd(&["BLPOP", "k", "0"]), "+QUEUED\r\n");
    assert_eq!(c.cmd(&["BLMOVE", "k", "d", "LEFT", "LEFT", "0"]), "+QUEUED\r\n");
    assert_eq!(c.cmd(&["BZPOPMAX", "z", "0"]), "+QUEUED\r\n");
    let t = Instant::now();
    assert_eq!(c.cmd(&["EXEC"]), "*3\r\n*-1\r\n$-1\r\n*-1\r\n");
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[test]
fn disconnected_waiter_pops_nothing() {
    let s = Server::start();
    let mut admin = s.resp();
    let mut waiter = s.resp();
    waiter.send(&common::encode_str(&["BLPOP", "k", "0"]));
    wait_blocked(&mut admin, 1);
    drop(waiter);
    wait_blocked(&mut admin, 0);
    assert_eq!(admin.cmd(&["RPUSH", "k", "v"]), ":1\r\n");
    assert_eq!(admin.cmd(&["LLEN", "k"]), ":1\r\n");
}

#[test]
fn swapdb_serves_waiter() {
    let s = Server::start();
    let mut admin = s.resp();
    let mut waiter = s.resp();
    waiter.send(&common::encode_str(&["BLPOP", "k", "0"]));
    wait_blocked(&mut admin, 1);
    assert_eq!(admin.cmd(&["SELECT", "3"]), "+OK\r\n");
    assert_eq!(admin.cmd(&["RPUSH", "k", "v"]), ":1\r\n");
    assert!(quiet_for(&mut waiter, QUIET));
    assert_eq!(admin.cmd(&["SWAPDB", "0", "3"]), "+OK\r\n");
    assert_eq!(waiter.read_reply(), pair("k", "v"));
}

#[test]
fn client_unblock() {
    let s = Server::start();
    let mut admin = s.resp();
    let mut waiter = s.resp();
    let id = waiter.cmd(&["CLIENT", "ID"]);
    let id = id.trim().trim_start_matches(':').to_string();
    assert!(id.parse::<u64>().is_ok(), "CLIENT ID answered {id:?}");
    assert_eq!(admin.cmd(&["CLIENT", "UNBLOCK", &id]), ":0\r\n");

    waiter.send(&common::encode_str(&["BLPOP", "k", "0"]));
    wait_blocked(&mut admin, 1);
    assert_eq!(admin.cmd(&["CLIENT", "UNBLOCK", &id]), ":1\r\n");
    assert_eq!(waiter.read_reply(), "*-1\r\n");

    waiter.send(&common::encode_str(&["BLMOVE", "k", "d", "LEFT", "LEFT", "0"]));
    wait_blocked(&mut admin, 1);
    assert_eq!(admin.cmd(&["CLIENT", "UNBLOCK", &id, "TIMEOUT"]), ":1\r\n");
    assert_eq!(waiter.read_reply(), "$-1\r\n");

    waiter.send(&common::encode_str(&["BZPOPMIN", "z", "0"]));
    wait_blocked(&mut admin, 1);
    assert_eq!(admin.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"]), ":1\r\n");
    assert_eq!(waiter.read_reply(), "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n");
    wait_blocked(&mut admin, 0);
    // Nothing of the wait is left behind: a push stays in the list.
    assert_eq!(admin.cmd(&["RPUSH", "k", "v"]), ":1\r\n");
    assert_eq!(admin.cmd(&["LLEN", "k"]), ":1\r\n");
}

#[test]
fn killed_waiter_closes_and_pops_nothing() {
    let s = Server::start();
    let mut admin = s.resp();
    let mut waiter = s.resp();
    let id = waiter.cmd(&["CLIENT", "ID"]);
    let id = id.trim().trim_start_matches(':').to_string();
    waiter.send(&common::encode_str(&["BLPOP", "k", "0"]));
    wait_blocked(&mut admin, 1);
    assert_eq!(admin.cmd(&["CLIENT", "KILL", "ID", &id]), ":1\r\n");
    assert!(waiter.is_closed_within(Duration::from_secs(5)), "killed client still open");
    wait_blocked(&mut admin, 0);
    assert_eq!(admin.cmd(&["RPUSH", "k", "v"]), ":1\r\n");
    assert_eq!(admin.cmd(&["LLEN", "k"]), ":1\r\n");
}

/// Waiters with very short timeouts racing a pusher: every pushed value is
/// either received by exactly one client or still in the list — a waiter
/// that times out while being served still gets what was popped for it.
#[test]
fn timeouts_racing_pushes_lose_nothing() {
    const WAITERS: usize = 6;
    const PUSHES: usize = 300;
    let s = Server::start();
    let deadline = Instant::now() + Duration::from_secs(20);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let handles: Vec<_> = (0..WAITERS)
        .map(|_| {
            let mut c = s.resp();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Acquire) && Instant::now() < deadline {
                    let r = c.cmd(&["BLPOP", "k", "0.001"]);
                    if r != "*-1\r\n" {
                        got.push(r);
                    }
                }
                got
            })
        })
        .collect();
    let mut pusher = s.resp();
    for i in 0..PUSHES {
        assert_eq!(pusher.cmd(&["RPUSH", "k", &i.to_string()]).chars().next(), Some(':'));
        if i % 50 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Release);
    let mut received = Vec::new();
    for h in handles {
        received.extend(h.join().expect("waiter thread"));
    }
    let left = pusher.cmd(&["LLEN", "k"]);
    let left: usize = left.trim().trim_start_matches(':').parse().expect("LLEN");
    assert!(!received.is_empty(), "no waiter was ever served");
    assert_eq!(received.len() + left, PUSHES, "received {} + left {left}", received.len());
    let mut values: Vec<usize> =
        received.iter().map(|r| r.rsplit("\r\n").nth(1).and_then(|v| v.parse().ok()).expect("a value")).collect();
    values.sort_unstable();
    values.dedup();
    assert_eq!(values.len(), received.len(), "a value was delivered twice");
}
