//! INFO. (Skeleton: filled in by the introspection work.)

use fastcache_core::Reply;

use crate::connection::Conn;

pub fn info(_conn: &mut Conn, _argv: &[&[u8]]) -> Reply {
    Reply::Bulk(b"# Server\r\nredis_version:7.0.15\r\n".to_vec())
}
