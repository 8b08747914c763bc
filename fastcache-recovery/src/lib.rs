//! `fastcache-recovery` — rebuilding an engine's state after a restart.
//!
//! Today: the WAL part of crash recovery — [`replay_wal`] re-applies every
//! record of a [`fastcache_wal::Wal`] to an empty [`fastcache_core::Engine`]
//! through the engine's one code path, so the result equals the state of
//! the run that wrote the log (DESIGN.md, invariants 2 and 3). Snapshots,
//! incremental backups and node recovery extend this crate in later issues.
//!
//! What it is not: it opens no sockets and reads no environment; the
//! server decides where the data directory is and when to recover.

mod error;
mod replay;

pub use error::{Error, Result};
pub use replay::{replay_wal, ReplayReport};
