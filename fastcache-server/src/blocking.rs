//! Blocking pops. (Skeleton: filled in by the blocking work.)

use fastcache_core::Reply;

use crate::connection::Conn;
use crate::server::Shared;

/// Clients waiting on keys.
#[derive(Default)]
pub struct Blocking {}

impl Blocking {
    pub fn has_waiters(&self) -> bool {
        false
    }

    pub fn on_write(&self, _shared: &Shared, _db: usize, _keys: Option<Vec<Vec<u8>>>) {}

    pub fn remove_client(&self, _id: u64) {}
}

pub async fn wait(_conn: &mut Conn, _argv: &[&[u8]]) -> Reply {
    Reply::NilArray
}
