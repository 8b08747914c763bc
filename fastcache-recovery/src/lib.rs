//! `fastcache-recovery` — rebuilding an engine's state after a restart.
//!
//! [`recover`] loads the newest snapshot whose checksums verify (falling
//! back to older ones), then [`replay_wal_parallel`] re-applies the WAL
//! records after its LSN through the engine's one code path — on several
//! threads, shard by shard — so the result equals the state of the run that
//! wrote them (DESIGN.md, invariants 2 and 3). It
//! refuses ([`Error::Gap`]) rather than start with less data when the log
//! does not reach back to the snapshot. Incremental backups and node
//! recovery extend this crate in later issues.
//!
//! What it is not: it opens no sockets and reads no environment; the
//! server decides where the data directory is and when to recover.

mod error;
mod recover;
mod replay;

pub use error::{Error, Result};
pub use recover::{recover, rewind, LoadedSnapshot, Progress, RecoveryReport, SkippedSnapshot};
pub use replay::{replay_wal, replay_wal_parallel, replay_wal_until, ReplayReport};
