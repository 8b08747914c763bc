//! `fastcache-wal` — FastCache's write-ahead log.
//!
//! **Status: not implemented yet.** This crate will hold a memory-mapped,
//! segmented log of opaque byte records addressed by LSN, with group commit
//! and torn-tail recovery (see the WAL issue and `ARCHITECTURE.md`). It
//! knows nothing about caches and depends on no other FastCache crate.
//!
//! Until it lands the crate exports nothing, so that nothing can call an
//! API that pretends to persist data.
