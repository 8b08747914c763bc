//! COMMAND. (Skeleton: filled in by the introspection work.)

use fastcache_core::Reply;

use crate::connection::Conn;

pub fn command_command(_conn: &mut Conn, _argv: &[&[u8]]) -> Reply {
    Reply::Array(Vec::new())
}
