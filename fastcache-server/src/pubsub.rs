//! Pub/Sub: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH,
//! PUBSUB, and keyspace notifications.
//!
//! The [`Broker`] maps channels and patterns to the subscribed clients'
//! message queues (`ClientInfo::tx`); each connection writes what it
//! receives between requests ([`write_push`]). A connection also keeps its
//! own sets (`Conn::channels` / `Conn::patterns`), which are the truth for
//! its subscription count and for filtering messages that were queued
//! before an unsubscribe took effect.
//!
//! Publishing is on the path of every write once keyspace notifications
//! are enabled, so it first reads one atomic counter of subscriptions and
//! returns without locking or allocating when nobody listens.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use fastcache_core::notify::{self, Event};
use fastcache_core::util::glob_match;
use fastcache_core::{errors, Engine, Reply};
use parking_lot::RwLock;
use tokio::sync::mpsc;

use crate::connection::{Conn, ReplyMode};
use crate::resp;

/// A message for one subscriber. Byte strings are shared between all the
/// receivers of one publication.
#[derive(Debug, Clone)]
pub enum Push {
    /// A publication on a channel the client subscribed to.
    Message { channel: Arc<[u8]>, payload: Arc<[u8]> },
    /// A publication on a channel matching a pattern the client subscribed to.
    PMessage { pattern: Arc<[u8]>, channel: Arc<[u8]>, payload: Arc<[u8]> },
    /// Not a message: the connection is to close (CLIENT KILL, shutdown).
    /// It travels on the same channel so that an idle connection waits on
    /// one thing, not two.
    Kill,
}

type Subscriber = (u64, mpsc::UnboundedSender<Push>);

/// A publication's channel and payload, shared by its receivers.
type Body = (Arc<[u8]>, Arc<[u8]>);

/// Subscribers in subscription order, which is the order Redis delivers in.
#[derive(Default)]
struct Subs {
    channels: HashMap<Arc<[u8]>, Vec<Subscriber>>,
    patterns: HashMap<Arc<[u8]>, Vec<Subscriber>>,
}

/// Channel and pattern subscriptions of every client.
pub struct Broker {
    /// The engine, for the notification flags in force.
    engine: Engine,
    /// Channel plus pattern subscriptions over all clients. Changed only
    /// under the write lock; read without the lock as the fast path.
    count: AtomicUsize,
    subs: RwLock<Subs>,
}

fn add(map: &mut HashMap<Arc<[u8]>, Vec<Subscriber>>, key: &[u8], sub: Subscriber) -> bool {
    let list = map.entry(Arc::from(key)).or_default();
    if list.iter().any(|(id, _)| *id == sub.0) {
        return false;
    }
    list.push(sub);
    true
}

fn remove(map: &mut HashMap<Arc<[u8]>, Vec<Subscriber>>, key: &[u8], id: u64) -> bool {
    let Some(list) = map.get_mut(key) else { return false };
    let Some(pos) = list.iter().position(|(i, _)| *i == id) else { return false };
    list.remove(pos);
    if list.is_empty() {
        // An active channel is one with subscribers (PUBSUB CHANNELS).
        map.remove(key);
    }
    true
}

impl Broker {
    pub fn new(engine: Engine) -> Broker {
        Broker { engine, count: AtomicUsize::new(0), subs: RwLock::new(Subs::default()) }
    }

    /// Whether any client subscribes to anything.
    fn idle(&self) -> bool {
        self.count.load(Ordering::Acquire) == 0
    }

    fn subscribe(&self, channel: &[u8], sub: Subscriber) {
        let mut subs = self.subs.write();
        if add(&mut subs.channels, channel, sub) {
            self.count.fetch_add(1, Ordering::Release);
        }
    }

    fn unsubscribe(&self, channel: &[u8], id: u64) {
        let mut subs = self.subs.write();
        if remove(&mut subs.channels, channel, id) {
            self.count.fetch_sub(1, Ordering::Release);
        }
    }

    fn psubscribe(&self, pattern: &[u8], sub: Subscriber) {
        let mut subs = self.subs.write();
        if add(&mut subs.patterns, pattern, sub) {
            self.count.fetch_add(1, Ordering::Release);
        }
    }

    fn punsubscribe(&self, pattern: &[u8], id: u64) {
        let mut subs = self.subs.write();
        if remove(&mut subs.patterns, pattern, id) {
            self.count.fetch_sub(1, Ordering::Release);
        }
    }

    /// Sends `payload` to the subscribers of `channel` and of every
    /// matching pattern; returns how many messages were queued (a client
    /// subscribed both ways counts twice, as in Redis).
    pub fn publish(&self, channel: &[u8], payload: &[u8]) -> usize {
        if self.idle() {
            return 0;
        }
        let subs = self.subs.read();
        // Shared copies are made only once somebody receives the message.
        let mut shared: Option<Body> = None;
        let mut bytes = || shared.get_or_insert_with(|| (Arc::from(channel), Arc::from(payload))).clone();
        let mut receivers = 0;
        if let Some(list) = subs.channels.get(channel) {
            let (channel, payload) = bytes();
            for (_, tx) in list {
                // A closed queue is a client on its way out; it unsubscribes
                // itself when its connection ends.
                let _ = tx.send(Push::Message { channel: channel.clone(), payload: payload.clone() });
                receivers += 1;
            }
        }
        for (pattern, list) in &subs.patterns {
            if !glob_match(pattern, channel, false) {
                continue;
            }
            let (channel, payload) = bytes();
            for (_, tx) in list {
                let _ = tx.send(Push::PMessage {
                    pattern: pattern.clone(),
                    channel: channel.clone(),
                    payload: payload.clone(),
                });
                receivers += 1;
            }
        }
        receivers
    }

    /// Publishes keyspace notifications: `__keyspace@<db>__:<key>` with the
    /// event name and/or `__keyevent@<db>__:<event>` with the key, as
    /// `notify-keyspace-events` enables (the engine only reports events of
    /// enabled classes).
    pub fn publish_events(&self, events: &[Event]) {
        if events.is_empty() || self.idle() {
            return;
        }
        let flags = self.engine.notify_flags();
        // One buffer for every channel name; writing into a Vec cannot fail.
        let mut channel = Vec::new();
        for e in events {
            if flags & notify::KEYSPACE != 0 {
                channel.clear();
                let _ = write!(channel, "__keyspace@{}__:", e.db);
                channel.extend_from_slice(&e.key);
                self.publish(&channel, e.event.as_bytes());
            }
            if flags & notify::KEYEVENT != 0 {
                channel.clear();
                let _ = write!(channel, "__keyevent@{}__:{}", e.db, e.event);
                self.publish(&channel, &e.key);
            }
        }
    }

    /// Removes one client from every channel and pattern it subscribed to.
    fn remove_client<'a>(
        &self,
        id: u64,
        channels: impl Iterator<Item = &'a Vec<u8>>,
        patterns: impl Iterator<Item = &'a Vec<u8>>,
    ) {
        let mut subs = self.subs.write();
        let mut removed = 0;
        for c in channels {
            removed += usize::from(remove(&mut subs.channels, c, id));
        }
        for p in patterns {
            removed += usize::from(remove(&mut subs.patterns, p, id));
        }
        self.count.fetch_sub(removed, Ordering::Release);
    }

    /// Channels with at least one subscriber, matching `pattern` if given.
    fn active_channels(&self, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        let subs = self.subs.read();
        subs.channels.keys().filter(|c| pattern.is_none_or(|p| glob_match(p, c, false))).map(|c| c.to_vec()).collect()
    }

    /// Channel subscribers of `channel` (pattern subscribers not counted).
    fn numsub(&self, channel: &[u8]) -> usize {
        self.subs.read().channels.get(channel).map_or(0, Vec::len)
    }

    /// Distinct patterns with at least one subscriber (Redis 7.0 NUMPAT).
    fn numpat(&self) -> usize {
        self.subs.read().patterns.len()
    }
}

/// Writes a message received from the broker, in the client's protocol.
/// Messages still queued for a channel or pattern the client has since
/// left are dropped: after the unsubscribe confirmation nothing more
/// arrives, so a RESP2 client back in normal mode never mistakes a late
/// message for a reply. Like Redis 7.0, messages are sent even under
/// CLIENT REPLY OFF/SKIP.
pub fn write_push(conn: &mut Conn, msg: &Push) {
    let resp3 = conn.resp3();
    match msg {
        Push::Message { channel, payload } => {
            if conn.channels.contains(&channel[..]) {
                resp::write_push(&mut conn.out, &[b"message", channel, payload], None, resp3);
            }
        }
        Push::PMessage { pattern, channel, payload } => {
            if conn.patterns.contains(&pattern[..]) {
                resp::write_push(&mut conn.out, &[b"pmessage", pattern, channel, payload], None, resp3);
            }
        }
        Push::Kill => {}
    }
}

/// The client's channel plus pattern subscriptions.
fn count(conn: &Conn) -> i64 {
    (conn.channels.len() + conn.patterns.len()) as i64
}

fn sync_count(conn: &Conn) {
    conn.info.subscriptions.store(conn.channels.len() + conn.patterns.len(), Ordering::Relaxed);
}

/// One confirmation frame: kind, channel or pattern (nil when there was
/// nothing to unsubscribe from), and the client's subscription count.
fn confirm(conn: &mut Conn, kind: &[u8], name: Option<&[u8]>) {
    let n = count(conn);
    let resp3 = conn.resp3();
    match name {
        Some(name) => resp::write_push(&mut conn.out, &[kind, name], Some(n), resp3),
        None => {
            conn.out.extend_from_slice(if resp3 { b">3\r\n" } else { b"*3\r\n" });
            resp::write_bulk(&mut conn.out, kind);
            resp::write_reply(&mut conn.out, &Reply::Nil, resp3);
            resp::write_reply(&mut conn.out, &Reply::Int(n), resp3);
        }
    }
}

/// SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE: one confirmation
/// frame per channel or pattern, written directly (RESP3 push frames,
/// RESP2 arrays).
pub fn subscription_command(conn: &mut Conn, name: &str, argv: &[&[u8]]) {
    if argv.len() < 2 && matches!(name, "subscribe" | "psubscribe") {
        conn.reply(&errors::wrong_args(name));
        return;
    }
    // Like Redis 7.0, confirmations are sent even under CLIENT REPLY
    // OFF/SKIP; a pending SKIP is used up by this command all the same.
    if conn.reply_mode == ReplyMode::Skip {
        conn.reply_mode = ReplyMode::On;
    }
    let shared = conn.shared.clone();
    let broker = &shared.broker;
    let id = conn.info.id;
    match name {
        "subscribe" | "psubscribe" => {
            let pattern = name == "psubscribe";
            for &target in &argv[1..] {
                if pattern {
                    if !conn.patterns.contains(target) {
                        broker.psubscribe(target, (id, conn.info.tx.clone()));
                        conn.patterns.insert(target.to_vec());
                    }
                } else if !conn.channels.contains(target) {
                    broker.subscribe(target, (id, conn.info.tx.clone()));
                    conn.channels.insert(target.to_vec());
                }
                sync_count(conn);
                confirm(conn, name.as_bytes(), Some(target));
            }
        }
        _ => {
            let pattern = name == "punsubscribe";
            let targets: Vec<Vec<u8>> = if argv.len() > 1 {
                argv[1..].iter().map(|a| a.to_vec()).collect()
            } else {
                let set = if pattern { &conn.patterns } else { &conn.channels };
                let mut all: Vec<Vec<u8>> = set.iter().cloned().collect();
                // Deterministic for clients and tests; Redis' order is its
                // hash table's.
                all.sort_unstable();
                all
            };
            if targets.is_empty() {
                confirm(conn, name.as_bytes(), None);
                return;
            }
            for target in targets {
                let removed = if pattern { conn.patterns.remove(&target) } else { conn.channels.remove(&target) };
                if removed {
                    if pattern {
                        broker.punsubscribe(&target, id);
                    } else {
                        broker.unsubscribe(&target, id);
                    }
                }
                sync_count(conn);
                confirm(conn, name.as_bytes(), Some(&target));
            }
        }
    }
}

/// Leaves every channel and pattern without replying: the connection is
/// closing, or RESET.
pub fn unsubscribe_all(conn: &mut Conn) {
    if conn.channels.is_empty() && conn.patterns.is_empty() {
        return;
    }
    conn.shared.broker.remove_client(conn.info.id, conn.channels.iter(), conn.patterns.iter());
    conn.channels.clear();
    conn.patterns.clear();
    sync_count(conn);
}

/// PUBLISH channel message.
pub fn publish_command(conn: &mut Conn, argv: &[&[u8]]) -> Reply {
    if argv.len() != 3 {
        return errors::wrong_args("publish");
    }
    Reply::Int(conn.shared.broker.publish(argv[1], argv[2]) as i64)
}

const PUBSUB_HELP: &[&str] = &[
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
];

/// PUBSUB CHANNELS | NUMSUB | NUMPAT | SHARDCHANNELS | SHARDNUMSUB | HELP.
/// FastCache has no sharded Pub/Sub (SSUBSCRIBE), so the SHARD*
/// introspection truthfully reports no shard channels.
pub fn pubsub_command(conn: &mut Conn, argv: &[&[u8]]) -> Reply {
    if argv.len() < 2 {
        return errors::wrong_args("pubsub");
    }
    let sub = String::from_utf8_lossy(argv[1]).to_ascii_lowercase();
    // Redis checks a subcommand's arity before running it; CHANNELS and
    // SHARDCHANNELS then reject extra arguments themselves.
    let too_many = || {
        Reply::error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
            String::from_utf8_lossy(argv[1])
        ))
    };
    let broker = &conn.shared.broker;
    match sub.as_str() {
        "channels" | "shardchannels" => {
            if argv.len() > 3 {
                return too_many();
            }
            if sub == "shardchannels" {
                return Reply::Array(Vec::new());
            }
            let list = broker.active_channels(argv.get(2).copied());
            Reply::Array(list.into_iter().map(Reply::Bulk).collect())
        }
        "numsub" | "shardnumsub" => {
            let mut out = Vec::with_capacity((argv.len() - 2) * 2);
            for &ch in &argv[2..] {
                let n = if sub == "numsub" { broker.numsub(ch) } else { 0 };
                out.push(Reply::bulk(ch));
                out.push(Reply::Int(n as i64));
            }
            Reply::Array(out)
        }
        "numpat" | "help" if argv.len() != 2 => errors::wrong_args(&format!("pubsub|{sub}")),
        "numpat" => Reply::Int(broker.numpat() as i64),
        "help" => Reply::Array(PUBSUB_HELP.iter().map(|l| Reply::Simple((*l).into())).collect()),
        _ => {
            let shown: String = String::from_utf8_lossy(argv[1]).chars().take(128).collect();
            Reply::error(format!("ERR unknown subcommand '{shown}'. Try PUBSUB HELP."))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(id: u64) -> (Subscriber, mpsc::UnboundedReceiver<Push>) {
        let (tx, rx) = mpsc::unbounded_channel();
        ((id, tx), rx)
    }

    fn drain(rx: &mut mpsc::UnboundedReceiver<Push>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(m) = rx.try_recv() {
            out.push(match m {
                Push::Message { channel, payload } => {
                    format!("message {} {}", String::from_utf8_lossy(&channel), String::from_utf8_lossy(&payload))
                }
                Push::PMessage { pattern, channel, payload } => format!(
                    "pmessage {} {} {}",
                    String::from_utf8_lossy(&pattern),
                    String::from_utf8_lossy(&channel),
                    String::from_utf8_lossy(&payload)
                ),
                Push::Kill => "kill".to_string(),
            });
        }
        out
    }

    #[test]
    fn publish_counts_channel_and_pattern_receivers() {
        let b = Broker::new(Engine::default());
        assert_eq!(b.publish(b"news", b"x"), 0);
        let (s1, mut r1) = client(1);
        let (s2, mut r2) = client(2);
        b.subscribe(b"news", s1.clone());
        b.subscribe(b"news", s1.clone()); // already subscribed: no change
        b.psubscribe(b"n*", s1.clone());
        b.psubscribe(b"n*", s2.clone());
        b.psubscribe(b"x*", s2.clone());
        assert_eq!(b.count.load(Ordering::Relaxed), 4);
        assert_eq!(b.publish(b"news", b"hi"), 3);
        assert_eq!(drain(&mut r1), ["message news hi", "pmessage n* news hi"]);
        assert_eq!(drain(&mut r2), ["pmessage n* news hi"]);
        assert_eq!(b.numsub(b"news"), 1);
        assert_eq!(b.numpat(), 2);
        assert_eq!(b.active_channels(Some(b"n?ws")), vec![b"news".to_vec()]);
        assert!(b.active_channels(Some(b"x")).is_empty());

        b.unsubscribe(b"news", 1);
        b.unsubscribe(b"news", 1);
        assert_eq!(b.numsub(b"news"), 0);
        assert!(b.active_channels(None).is_empty());
        let pats = [b"n*".to_vec(), b"x*".to_vec()];
        b.remove_client(2, [].iter(), pats.iter());
        b.punsubscribe(b"n*", 1);
        assert_eq!(b.count.load(Ordering::Relaxed), 0);
        assert_eq!(b.numpat(), 0);
        assert_eq!(b.publish(b"news", b"x"), 0);
    }

    #[test]
    fn keyspace_events_follow_the_flags() {
        let engine = Engine::default();
        let b = Broker::new(engine.clone());
        let (s, mut r) = client(1);
        b.psubscribe(b"__key*__:*", s);
        let ev = |event: &'static str, key: &[u8]| Event { class: notify::GENERIC, event, db: 2, key: key.to_vec() };
        engine.set_notify_flags(notify::KEYSPACE | notify::KEYEVENT | notify::ALL);
        b.publish_events(&[ev("del", b"k1"), ev("expire", b"k2")]);
        assert_eq!(
            drain(&mut r),
            [
                "pmessage __key*__:* __keyspace@2__:k1 del",
                "pmessage __key*__:* __keyevent@2__:del k1",
                "pmessage __key*__:* __keyspace@2__:k2 expire",
                "pmessage __key*__:* __keyevent@2__:expire k2",
            ]
        );
        engine.set_notify_flags(notify::KEYEVENT | notify::ALL);
        b.publish_events(&[ev("del", b"k1")]);
        assert_eq!(drain(&mut r), ["pmessage __key*__:* __keyevent@2__:del k1"]);
    }
}
