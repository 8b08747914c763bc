//! CLIENT. (Skeleton: filled in by the introspection work.)

use fastcache_core::Reply;

use crate::connection::Conn;

/// Redis refuses client names with spaces or newlines.
pub fn validate_name(name: &[u8]) -> Result<(), Reply> {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(Reply::err("ERR Client names cannot contain spaces, newlines or special characters."));
    }
    Ok(())
}

pub fn client_command(_conn: &mut Conn, _argv: &[&[u8]]) -> Reply {
    Reply::err("ERR CLIENT is not available yet")
}
