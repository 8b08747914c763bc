//! `fastcache-server` — the network front end of FastCache.
//!
//! **Status: not implemented yet.** The RESP server arrives with the
//! server issue; until then this binary refuses to start rather than
//! pretend to serve clients.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "fastcache-server {}: the network server is not implemented yet; \
         the engine (fastcache-core) can be embedded as a library meanwhile",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::from(2)
}
