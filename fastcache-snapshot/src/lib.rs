//! `fastcache-snapshot` — point-in-time snapshots of a FastCache engine.
//!
//! **Status: not implemented yet.** This crate will write and read
//! versioned snapshot files (postcard entries in lz4-compressed,
//! crc32c-checked chunks) that are consistent at one WAL LSN, taken without
//! fork and without stopping the world (see `ARCHITECTURE.md`).
//!
//! Until it lands the crate exports nothing.
