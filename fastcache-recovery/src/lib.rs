//! `fastcache-recovery` — crash and node recovery orchestration.
//!
//! **Status: not implemented yet.** This crate will plan and run recovery:
//! load the newest valid snapshot, apply newer incremental backups, replay
//! the WAL after the snapshot's LSN, and report what it did.
//!
//! Until it lands the crate exports nothing.
