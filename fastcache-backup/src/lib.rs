//! `fastcache-backup` — incremental per-key backups and restore chains.
//!
//! **Status: not implemented yet.** This crate will write change sets of
//! the keys modified within an LSN range, verify and consolidate backup
//! chains, and restore a data directory to a point in time.
//!
//! Until it lands the crate exports nothing.
