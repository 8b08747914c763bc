//! Pub/Sub and keyspace notifications against the real server: exact
//! RESP2 and RESP3 frames over raw sockets.
//!
//! A subscriber's queued messages are written before it reads its next
//! request, so "publish, then PING the subscriber and get the pong first"
//! proves that no message was delivered, without sleeping.

mod common;

use std::time::{Duration, Instant};

use common::{Resp, Server};

fn bulk(s: &str) -> String {
    format!("${}\r\n{s}\r\n", s.len())
}

/// A RESP2 array (`*`) or RESP3 push frame (`>`) of bulk strings.
fn frame(kind: char, parts: &[&str]) -> String {
    let mut out = format!("{kind}{}\r\n", parts.len());
    for p in parts {
        out.push_str(&bulk(p));
    }
    out
}

/// A subscription confirmation: kind, channel or pattern, count.
fn confirm(kind: char, what: &str, name: &str, count: i64) -> String {
    format!("{kind}3\r\n{}{}:{count}\r\n", bulk(what), bulk(name))
}

fn message(channel: &str, payload: &str) -> String {
    frame('*', &["message", channel, payload])
}

fn pmessage(pattern: &str, channel: &str, payload: &str) -> String {
    frame('*', &["pmessage", pattern, channel, payload])
}

/// The RESP2 subscribed-context PING reply.
const PONG: &str = "*2\r\n$4\r\npong\r\n$0\r\n\r\n";

/// Asserts that nothing was delivered to a RESP2 subscriber so far.
fn assert_no_message(sub: &mut Resp) {
    assert_eq!(sub.cmd(&["PING"]), PONG);
}

fn enable_notifications(c: &mut Resp, flags: &str) {
    assert_eq!(c.cmd(&["CONFIG", "SET", "notify-keyspace-events", flags]), "+OK\r\n");
}

#[test]
fn subscribe_publish_unsubscribe() {
    let s = Server::start();
    let mut sub = s.resp();
    let mut publ = s.resp();

    // Nothing to leave yet: one frame with a nil channel.
    assert_eq!(sub.cmd(&["UNSUBSCRIBE"]), "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n");
    assert_eq!(sub.cmd(&["PUNSUBSCRIBE"]), "*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:0\r\n");

    sub.send(&common::encode_str(&["SUBSCRIBE", "a", "b", "a"]));
    assert_eq!(
        sub.read_replies(3),
        [confirm('*', "subscribe", "a", 1), confirm('*', "subscribe", "b", 2), confirm('*', "subscribe", "a", 2)]
    );
    assert_eq!(publ.cmd(&["PUBLISH", "a", "hello"]), ":1\r\n");
    assert_eq!(sub.read_reply(), message("a", "hello"));
    assert_eq!(publ.cmd(&["PUBLISH", "nobody", "x"]), ":0\r\n");
    // Binary-safe payloads.
    assert_eq!(publ.cmd_bytes(&[b"PUBLISH", b"b", b"\0\r\n\xff"]), b":1\r\n".to_vec());
    assert_eq!(sub.read_reply_bytes(), b"*3\r\n$7\r\nmessage\r\n$1\r\nb\r\n$4\r\n\0\r\n\xff\r\n".to_vec());
    assert_no_message(&mut sub);

    assert_eq!(sub.cmd(&["UNSUBSCRIBE", "a"]), confirm('*', "unsubscribe", "a", 1));
    assert_eq!(publ.cmd(&["PUBLISH", "a", "gone"]), ":0\r\n");
    // Leaving a channel one is not in still answers, with the count.
    assert_eq!(sub.cmd(&["UNSUBSCRIBE", "zzz"]), confirm('*', "unsubscribe", "zzz", 1));
    assert_eq!(sub.cmd(&["UNSUBSCRIBE"]), confirm('*', "unsubscribe", "b", 0));
    // Back to normal mode.
    assert_eq!(sub.cmd(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(sub.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(publ.cmd(&["PUBLISH", "b", "x"]), ":0\r\n");

    // Many publications in one pipeline arrive complete and in order.
    sub.cmd(&["SUBSCRIBE", "seq"]);
    let mut pipeline = Vec::new();
    for i in 0..200 {
        pipeline.extend(common::encode_str(&["PUBLISH", "seq", &i.to_string()]));
    }
    publ.send(&pipeline);
    assert!(publ.read_replies(200).iter().all(|r| r == ":1\r\n"));
    for i in 0..200 {
        assert_eq!(sub.read_reply(), message("seq", &i.to_string()));
    }

    assert_eq!(sub.cmd(&["SUBSCRIBE"]), "-ERR wrong number of arguments for 'subscribe' command\r\n");
    assert_eq!(sub.cmd(&["PSUBSCRIBE"]), "-ERR wrong number of arguments for 'psubscribe' command\r\n");
    assert_eq!(publ.cmd(&["PUBLISH", "a"]), "-ERR wrong number of arguments for 'publish' command\r\n");
    assert_eq!(publ.cmd(&["PUBLISH", "a", "b", "c"]), "-ERR wrong number of arguments for 'publish' command\r\n");
}

#[test]
fn patterns() {
    let s = Server::start();
    let mut sub = s.resp();
    let mut other = s.resp();
    let mut publ = s.resp();

    sub.send(&common::encode_str(&["PSUBSCRIBE", "news.*", "h?llo"]));
    assert_eq!(sub.read_replies(2), [confirm('*', "psubscribe", "news.*", 1), confirm('*', "psubscribe", "h?llo", 2)]);
    assert_eq!(sub.cmd(&["SUBSCRIBE", "news.tech"]), confirm('*', "subscribe", "news.tech", 3));
    assert_eq!(other.cmd(&["PSUBSCRIBE", "news.*"]), confirm('*', "psubscribe", "news.*", 1));

    // Channel subscribers first, then pattern matches; one client
    // subscribed both ways receives (and counts) twice.
    assert_eq!(publ.cmd(&["PUBLISH", "news.tech", "rust"]), ":3\r\n");
    assert_eq!(sub.read_replies(2), [message("news.tech", "rust"), pmessage("news.*", "news.tech", "rust")]);
    assert_eq!(other.read_reply(), pmessage("news.*", "news.tech", "rust"));

    assert_eq!(publ.cmd(&["PUBLISH", "hello", "1"]), ":1\r\n");
    assert_eq!(sub.read_reply(), pmessage("h?llo", "hello", "1"));
    assert_eq!(publ.cmd(&["PUBLISH", "heello", "1"]), ":0\r\n");
    assert_eq!(publ.cmd(&["PUBLISH", "NEWS.tech", "1"]), ":0\r\n");
    assert_no_message(&mut sub);

    assert_eq!(sub.cmd(&["PUNSUBSCRIBE", "news.*"]), confirm('*', "punsubscribe", "news.*", 2));
    assert_eq!(publ.cmd(&["PUBLISH", "news.sport", "x"]), ":1\r\n");
    assert_eq!(other.read_reply(), pmessage("news.*", "news.sport", "x"));
    assert_no_message(&mut sub);

    // PUNSUBSCRIBE without arguments leaves only patterns.
    assert_eq!(sub.cmd(&["PUNSUBSCRIBE"]), confirm('*', "punsubscribe", "h?llo", 1));
    assert_eq!(sub.cmd(&["PUNSUBSCRIBE"]), "*3\r\n$12\r\npunsubscribe\r\n$-1\r\n:1\r\n");
    assert_eq!(publ.cmd(&["PUBLISH", "news.tech", "y"]), ":2\r\n");
    assert_eq!(sub.read_reply(), message("news.tech", "y"));
}

#[test]
fn pubsub_introspection() {
    let s = Server::start();
    let mut a = s.resp();
    let mut b = s.resp();
    let mut c = s.resp();

    assert_eq!(c.cmd(&["PUBSUB", "CHANNELS"]), "*0\r\n");
    assert_eq!(c.cmd(&["PUBSUB", "NUMPAT"]), ":0\r\n");
    assert_eq!(c.cmd(&["PUBSUB", "NUMSUB"]), "*0\r\n");

    a.send(&common::encode_str(&["SUBSCRIBE", "chan:1", "chan:2", "other"]));
    a.read_replies(3);
    b.cmd(&["SUBSCRIBE", "chan:1"]);
    a.cmd(&["PSUBSCRIBE", "p*"]);
    b.cmd(&["PSUBSCRIBE", "p*"]);
    b.cmd(&["PSUBSCRIBE", "q*"]);

    let mut channels = c.cmd(&["PUBSUB", "CHANNELS"]).split("\r\n").map(String::from).collect::<Vec<_>>();
    assert_eq!(channels[0], "*3");
    channels.retain(|l| !l.starts_with('*') && !l.starts_with('$') && !l.is_empty());
    channels.sort();
    assert_eq!(channels, ["chan:1", "chan:2", "other"]);
    let matching = c.cmd(&["PUBSUB", "CHANNELS", "chan:[1]"]);
    assert_eq!(matching, frame('*', &["chan:1"]));
    assert_eq!(c.cmd(&["pubsub", "channels", "x*"]), "*0\r\n");
    assert_eq!(
        c.cmd(&["PUBSUB", "NUMSUB", "chan:1", "chan:2", "p1", "none"]),
        "*8\r\n$6\r\nchan:1\r\n:2\r\n$6\r\nchan:2\r\n:1\r\n$2\r\np1\r\n:0\r\n$4\r\nnone\r\n:0\r\n"
    );
    // Distinct patterns, as Redis 7.0 counts them.
    assert_eq!(c.cmd(&["PUBSUB", "NUMPAT"]), ":2\r\n");
    assert_eq!(c.cmd(&["PUBSUB", "SHARDCHANNELS"]), "*0\r\n");
    assert_eq!(c.cmd(&["PUBSUB", "SHARDNUMSUB", "chan:1"]), "*2\r\n$6\r\nchan:1\r\n:0\r\n");

    let help = c.cmd(&["PUBSUB", "HELP"]);
    assert!(help.starts_with("*14\r\n+PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n"), "{help}");
    assert!(help.ends_with("+HELP\r\n+    Prints this help.\r\n"), "{help}");

    assert_eq!(c.cmd(&["PUBSUB"]), "-ERR wrong number of arguments for 'pubsub' command\r\n");
    assert_eq!(c.cmd(&["PUBSUB", "foo"]), "-ERR unknown subcommand 'foo'. Try PUBSUB HELP.\r\n");
    assert_eq!(c.cmd(&["PUBSUB", "NUMPAT", "x"]), "-ERR wrong number of arguments for 'pubsub|numpat' command\r\n");
    assert_eq!(c.cmd(&["PUBSUB", "help", "x"]), "-ERR wrong number of arguments for 'pubsub|help' command\r\n");
    assert_eq!(
        c.cmd(&["PUBSUB", "CHANNELS", "a", "b"]),
        "-ERR unknown subcommand or wrong number of arguments for 'CHANNELS'. Try PUBSUB HELP.\r\n"
    );

    // Leaving updates the counts.
    a.cmd(&["UNSUBSCRIBE", "chan:1"]);
    b.cmd(&["PUNSUBSCRIBE", "p*"]);
    assert_eq!(c.cmd(&["PUBSUB", "NUMSUB", "chan:1"]), "*2\r\n$6\r\nchan:1\r\n:1\r\n");
    assert_eq!(c.cmd(&["PUBSUB", "NUMPAT"]), ":2\r\n");
    a.cmd(&["PUNSUBSCRIBE", "p*"]);
    assert_eq!(c.cmd(&["PUBSUB", "NUMPAT"]), ":1\r\n");
}

#[test]
fn resp2_subscribed_context() {
    let s = Server::start();
    let mut sub = s.resp();
    let mut c = s.resp();
    sub.cmd(&["SUBSCRIBE", "ch"]);

    assert_eq!(
        sub.cmd(&["GET", "k"]),
        "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"
    );
    assert_eq!(sub.cmd(&["PING"]), PONG);
    assert_eq!(sub.cmd(&["PING", "hi"]), frame('*', &["pong", "hi"]));
    assert_eq!(sub.cmd(&["PSUBSCRIBE", "x*"]), confirm('*', "psubscribe", "x*", 2));

    // RESET leaves every subscription silently and restores normal mode.
    assert_eq!(sub.cmd(&["RESET"]), "+RESET\r\n");
    assert_eq!(c.cmd(&["PUBSUB", "NUMSUB", "ch"]), "*2\r\n$2\r\nch\r\n:0\r\n");
    assert_eq!(c.cmd(&["PUBSUB", "NUMPAT"]), ":0\r\n");
    assert_eq!(c.cmd(&["PUBLISH", "ch", "x"]), ":0\r\n");
    assert_eq!(sub.cmd(&["GET", "k"]), "$-1\r\n");

    // QUIT is allowed and closes the connection.
    sub.cmd(&["SUBSCRIBE", "ch"]);
    assert_eq!(sub.cmd(&["QUIT"]), "+OK\r\n");
    assert!(sub.is_closed_within(Duration::from_secs(5)));
}

#[test]
fn resp3_push_frames() {
    let s = Server::start();
    let mut sub = s.resp();
    let mut publ = s.resp();
    let hello = sub.cmd(&["HELLO", "3"]);
    assert!(hello.starts_with('%'), "{hello}");

    assert_eq!(sub.cmd(&["UNSUBSCRIBE"]), ">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n");
    sub.send(&common::encode_str(&["SUBSCRIBE", "a", "b"]));
    assert_eq!(sub.read_replies(2), [confirm('>', "subscribe", "a", 1), confirm('>', "subscribe", "b", 2)]);
    assert_eq!(sub.cmd(&["PSUBSCRIBE", "a*"]), confirm('>', "psubscribe", "a*", 3));

    // No subscribed context in RESP3: every command works.
    assert_eq!(sub.cmd(&["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(sub.cmd(&["GET", "k"]), "$1\r\nv\r\n");
    assert_eq!(sub.cmd(&["PING"]), "+PONG\r\n");

    assert_eq!(publ.cmd(&["PUBLISH", "a", "hi"]), ":2\r\n");
    assert_eq!(sub.read_replies(2), [frame('>', &["message", "a", "hi"]), frame('>', &["pmessage", "a*", "a", "hi"])]);

    assert_eq!(sub.cmd(&["PUNSUBSCRIBE", "a*"]), confirm('>', "punsubscribe", "a*", 2));
    sub.send(&common::encode_str(&["UNSUBSCRIBE"]));
    assert_eq!(sub.read_replies(2), [confirm('>', "unsubscribe", "a", 1), confirm('>', "unsubscribe", "b", 0)]);
    assert_eq!(publ.cmd(&["PUBLISH", "a", "hi"]), ":0\r\n");
    assert_eq!(sub.cmd(&["PING"]), "+PONG\r\n");
}

#[test]
fn keyspace_and_keyevent_notifications() {
    let s = Server::start();
    let mut c = s.resp();
    let mut sub = s.resp();
    sub.send(&common::encode_str(&["PSUBSCRIBE", "__keyspace@*__:*", "__keyevent@*__:*"]));
    sub.read_replies(2);

    // Off by default.
    assert_eq!(c.cmd(&["SET", "foo", "bar"]), "+OK\r\n");
    assert_no_message(&mut sub);

    enable_notifications(&mut c, "KEA");
    let ks = |ch: &str, ev: &str| pmessage("__keyspace@*__:*", ch, ev);
    let ke = |ch: &str, key: &str| pmessage("__keyevent@*__:*", ch, key);

    assert_eq!(c.cmd(&["SET", "foo", "baz"]), "+OK\r\n");
    assert_eq!(sub.read_replies(2), [ks("__keyspace@0__:foo", "set"), ke("__keyevent@0__:set", "foo")]);
    assert_eq!(c.cmd(&["LPUSH", "list", "a", "b"]), ":2\r\n");
    assert_eq!(sub.read_replies(2), [ks("__keyspace@0__:list", "lpush"), ke("__keyevent@0__:lpush", "list")]);
    assert_eq!(c.cmd(&["EXPIRE", "foo", "100"]), ":1\r\n");
    assert_eq!(sub.read_replies(2), [ks("__keyspace@0__:foo", "expire"), ke("__keyevent@0__:expire", "foo")]);
    assert_eq!(c.cmd(&["DEL", "foo", "nokey"]), ":1\r\n");
    assert_eq!(sub.read_replies(2), [ks("__keyspace@0__:foo", "del"), ke("__keyevent@0__:del", "foo")]);
    // A command that changes nothing announces nothing.
    assert_eq!(c.cmd(&["DEL", "nokey"]), ":0\r\n");
    assert_no_message(&mut sub);

    // Other databases are named in the channel.
    assert_eq!(c.cmd(&["SELECT", "3"]), "+OK\r\n");
    assert_eq!(c.cmd(&["HSET", "h", "f", "v"]), ":1\r\n");
    assert_eq!(sub.read_replies(2), [ks("__keyspace@3__:h", "hset"), ke("__keyevent@3__:hset", "h")]);

    // Only key-event channels, only for string commands.
    enable_notifications(&mut c, "E$");
    assert_eq!(c.cmd(&["SADD", "set", "m"]), ":1\r\n");
    assert_eq!(c.cmd(&["INCR", "n"]), ":1\r\n");
    assert_eq!(sub.read_reply(), ke("__keyevent@3__:incrby", "n"));
    assert_no_message(&mut sub);

    // A plain channel subscriber receives them too.
    let mut exact = s.resp();
    assert_eq!(
        exact.cmd(&["SUBSCRIBE", "__keyevent@3__:append"]),
        confirm('*', "subscribe", "__keyevent@3__:append", 1)
    );
    assert_eq!(c.cmd(&["APPEND", "n", "0"]), ":2\r\n");
    assert_eq!(exact.read_reply(), message("__keyevent@3__:append", "n"));
    assert_eq!(sub.read_reply(), ke("__keyevent@3__:append", "n"));

    enable_notifications(&mut c, "");
    assert_eq!(c.cmd(&["INCR", "n"]), ":11\r\n");
    assert_no_message(&mut sub);
}

#[test]
fn expired_events_from_the_active_cycle() {
    let s = Server::start();
    let mut c = s.resp();
    let mut sub = s.resp();
    enable_notifications(&mut c, "Ex");
    assert_eq!(
        sub.cmd(&["SUBSCRIBE", "__keyevent@0__:expired"]),
        confirm('*', "subscribe", "__keyevent@0__:expired", 1)
    );
    let started = Instant::now();
    assert_eq!(c.cmd(&["SET", "short", "v", "PX", "50"]), "+OK\r\n");
    // Nobody reads the key: only the active cycle (every 100 ms) can
    // expire it. The read times out after a few seconds if it never does.
    sub.stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap_or_else(|e| panic!("read timeout: {e}"));
    assert_eq!(sub.read_reply(), message("__keyevent@0__:expired", "short"));
    assert!(started.elapsed() >= Duration::from_millis(50));
    assert_eq!(c.cmd(&["EXISTS", "short"]), ":0\r\n");
}

#[test]
fn evicted_events_under_maxmemory() {
    let s = Server::start_with(&[("FASTCACHE_MAXMEMORY", "1mb"), ("FASTCACHE_MAXMEMORY_POLICY", "allkeys-lru")]);
    let mut c = s.resp();
    let mut sub = s.resp();
    enable_notifications(&mut c, "Ee");
    assert_eq!(
        sub.cmd(&["SUBSCRIBE", "__keyevent@0__:evicted"]),
        confirm('*', "subscribe", "__keyevent@0__:evicted", 1)
    );
    let value = "x".repeat(10_000);
    // 2 MB of values into a 1 MB limit: evictions must happen.
    for i in 0..200 {
        assert_eq!(c.cmd(&["SET", &format!("key:{i}"), &value]), "+OK\r\n");
    }
    let first = sub.read_reply();
    let prefix = "*3\r\n$7\r\nmessage\r\n$22\r\n__keyevent@0__:evicted\r\n$";
    assert!(first.starts_with(prefix), "{first}");
    let key = first.trim_end().rsplit("\r\n").next().unwrap_or_default().to_string();
    assert!(key.starts_with("key:"), "{first}");
    assert_eq!(c.cmd(&["EXISTS", &key]), ":0\r\n");
}

#[test]
fn disconnecting_subscriber_is_forgotten() {
    let s = Server::start();
    let mut c = s.resp();
    {
        let mut sub = s.resp();
        sub.send(&common::encode_str(&["SUBSCRIBE", "ch", "ch2"]));
        sub.read_replies(2);
        sub.cmd(&["PSUBSCRIBE", "c*"]);
        assert_eq!(c.cmd(&["PUBLISH", "ch", "x"]), ":2\r\n");
    }
    // The server notices the closed socket asynchronously.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let numsub = c.cmd(&["PUBSUB", "NUMSUB", "ch", "ch2"]);
        let numpat = c.cmd(&["PUBSUB", "NUMPAT"]);
        if numsub == "*4\r\n$2\r\nch\r\n:0\r\n$3\r\nch2\r\n:0\r\n" && numpat == ":0\r\n" {
            break;
        }
        assert!(Instant::now() < deadline, "still subscribed: {numsub} {numpat}");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(c.cmd(&["PUBLISH", "ch", "x"]), ":0\r\n");
    assert_eq!(c.cmd(&["PUBSUB", "CHANNELS"]), "*0\r\n");
}

#[test]
fn client_reply_off_and_skip_do_not_silence_pubsub() {
    let s = Server::start();
    let mut c = s.resp();
    let mut publ = s.resp();

    // SKIP is used up by SUBSCRIBE, whose confirmation is sent anyway.
    c.send(&common::encode_str(&["CLIENT", "REPLY", "SKIP"]));
    assert_eq!(c.cmd(&["SUBSCRIBE", "a"]), confirm('*', "subscribe", "a", 1));
    assert_eq!(c.cmd(&["PING"]), PONG);
    assert_eq!(c.cmd(&["RESET"]), "+RESET\r\n");

    // Under OFF, confirmations and messages still arrive (Redis 7.0).
    c.send(&common::encode_str(&["CLIENT", "REPLY", "OFF"]));
    assert_eq!(c.cmd(&["SUBSCRIBE", "b"]), confirm('*', "subscribe", "b", 1));
    assert_eq!(publ.cmd(&["PUBLISH", "b", "x"]), ":1\r\n");
    assert_eq!(c.read_reply(), message("b", "x"));
}
