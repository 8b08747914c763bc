//! `fastcache-backup` — incremental per-key backups, backup chains, and
//! restoring a data directory to a point in time.
//!
//! **What it is.** A backup directory ([`BackupDir`], `BACKUP_DIR`,
//! default `$PERSISTENCE_DIR/backups`) holds *chains*: one full backup (a
//! snapshot file) followed by incremental backups, each holding only the
//! keys written or deleted since the link before it — their values as they
//! were at its barrier, tombstones for deleted keys, markers for cleared
//! databases — in one checksummed, lz4-compressed file (the snapshot
//! container, flagged incremental, with its from-LSN in the header). A
//! chain's `MANIFEST` lists its links with their LSN ranges. The crate
//! writes links from a live engine (the engine's per-key change tracking
//! says what changed), verifies chains ([`verify_chain`]), loads them
//! ([`load_chain`]), merges a chain into a new full backup
//! ([`BackupDir::consolidate`]), keeps the newest N chains, and
//! [`restore`]s a data directory from a chain plus the WAL after it, to
//! the latest state, an LSN or a moment.
//!
//! **What it is not.** It decides nothing about when to back up (the
//! server's `INCREMENTAL_BACKUP_INTERVAL`), reads no environment, starts
//! no thread of its own (loading a base uses scoped threads), and does not
//! take over crash recovery (`fastcache-recovery`). It depends on
//! `fastcache-core`, `-snapshot` and `-wal`, and nothing depends on it but
//! the recovery crate, the server and the `fastcache` tool.
//!
//! ```
//! use fastcache_backup::{load_chain, restore, verify_chain, BackupDir, Target};
//! use fastcache_core::{Engine, Reply};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let tmp = std::env::temp_dir().join(format!("fastcache-backup-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&tmp);
//! let engine = Engine::default();
//! engine.set_change_tracking(true);                   // what incrementals are made of
//! let mut s = engine.session();
//! engine.execute(&mut s, &[b"SET", b"a", b"1"]);
//!
//! let backups = BackupDir::open(&tmp.join("backups"), 2)?;  // keep 2 chains
//! // `lsn_at` reads the log position at the barrier (the server: its WAL's
//! // last LSN); `before_publish` makes the log durable up to it.
//! backups.write_full(&engine, || 1, |_lsn| Ok(()))?;
//! engine.execute(&mut s, &[b"SET", b"b", b"2"]);
//! engine.execute(&mut s, &[b"DEL", b"a"]);
//! let inc = backups.write_incremental(&engine, || 3, |_lsn| Ok(()))?;
//! assert_eq!((inc.link.from_lsn, inc.link.to_lsn, inc.link.keys), (1, 3, 2));
//!
//! let chain = backups.chains()?.pop().expect("one chain");
//! verify_chain(&chain)?;                              // every checksum, no gap
//! let copy = Engine::default();
//! assert_eq!(load_chain(&copy, &chain, None)?, 3);
//! assert_eq!(copy.digest(), engine.digest());
//!
//! // A data directory a server can start from, at LSN 3.
//! let report = restore(&tmp.join("backups"), &tmp.join("restored"), Target::Latest, false)?;
//! assert_eq!((report.lsn, report.keys), (3, 1));
//! # drop(backups);
//! # std::fs::remove_dir_all(&tmp).ok();
//! # let _ = Reply::OK;
//! # Ok(())
//! # }
//! ```
//!
//! The byte layout of the files, the manifest and the directory are in
//! `docs/formats.md` ("Backup files and chains").

mod chain;
mod dir;
mod error;
mod lock;
mod manifest;
mod naming;
mod offline;
mod replay;
mod restore;

pub use crate::chain::{
    apply_incrementals, load_chain, verify_chain, Chain, ChainReport, Link, LinkKind, LoadProgress,
};
pub use crate::dir::{BackupDir, LinkInfo, DEFAULT_RETAIN};
pub use crate::error::{ChainProblem, Error, Result};
pub use crate::manifest::CHAIN_MANIFEST;
pub use crate::offline::{load_data_dir, DataDirState};
pub use crate::restore::{restore, restore_with, RestoreOptions, RestoreProgress, RestoreReport, Target};

#[cfg(test)]
mod tests {
    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn public_types_are_thread_safe() {
        // The server keeps a backup directory in its shared state and writes
        // from a background thread.
        send_sync::<crate::BackupDir>();
        send_sync::<crate::Chain>();
        send_sync::<crate::Error>();
        send_sync::<crate::RestoreReport>();
    }
}
