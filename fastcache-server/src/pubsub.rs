//! Pub/Sub. (Skeleton: filled in by the Pub/Sub work.)

use fastcache_core::notify::Event;
use fastcache_core::Reply;

use crate::connection::Conn;

/// A message for one subscriber.
#[derive(Debug, Clone)]
pub enum Push {
    Message { channel: Vec<u8>, payload: Vec<u8> },
}

/// Channel and pattern subscriptions of every client.
#[derive(Default)]
pub struct Broker {}

impl Broker {
    pub fn publish_events(&self, _events: &[Event]) {}
}

pub fn write_push(_conn: &mut Conn, _msg: &Push) {}

pub fn subscription_command(conn: &mut Conn, _name: &str, _argv: &[&[u8]]) {
    conn.reply(&Reply::err("ERR Pub/Sub is not available yet"));
}

pub fn unsubscribe_all(_conn: &mut Conn) {}

pub fn publish_command(_conn: &mut Conn, _argv: &[&[u8]]) -> Reply {
    Reply::err("ERR Pub/Sub is not available yet")
}

pub fn pubsub_command(_conn: &mut Conn, _argv: &[&[u8]]) -> Reply {
    Reply::err("ERR Pub/Sub is not available yet")
}
