//! Runtime parameters: what CONFIG GET/SET read and change.
//!
//! Typed fields are the ones the server acts on; `extra` keeps Redis'
//! tuning parameters that do not apply to FastCache (encoding thresholds
//! and the like) so that tools setting them keep working.

use std::collections::BTreeMap;

use crate::config::Config;

/// The parameters in force.
#[derive(Debug, Clone)]
pub struct Params {
    pub requirepass: Option<String>,
    pub maxclients: usize,
    pub proto_max_bulk_len: usize,
    pub client_query_buffer_limit: usize,
    pub timeout_secs: u64,
    /// Parameters accepted, kept and echoed back.
    pub extra: BTreeMap<String, String>,
}

impl Params {
    pub fn new(config: &Config) -> Params {
        Params {
            requirepass: config.requirepass.clone(),
            maxclients: config.maxclients,
            proto_max_bulk_len: config.proto_max_bulk_len,
            client_query_buffer_limit: config.client_query_buffer_limit,
            timeout_secs: config.timeout_secs,
            extra: BTreeMap::new(),
        }
    }
}

/// CONFIG GET/SET/RESETSTAT/REWRITE. (Skeleton: filled in by the
/// introspection work.)
pub fn config_command(_conn: &mut crate::connection::Conn, _argv: &[&[u8]]) -> fastcache_core::Reply {
    fastcache_core::Reply::err("ERR CONFIG is not available yet")
}
