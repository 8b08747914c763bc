//! `fastcache-snapshot` — versioned, compressed, checksummed snapshot files
//! and the directory (catalog) that publishes them.
//!
//! **What it is.** A file container: a header naming the LSN the snapshot
//! is consistent at, then chunks of opaque payload bytes, each lz4-compressed
//! (block format) with its own crc32c, then a footer indexing the chunks with
//! a checksum of its own — every byte of a file is covered by a checksum.
//! A [`SnapshotWriter`] writes a temporary file and publishes it with
//! fsync, rename, fsync of the directory; a [`SnapshotReader`] checks the
//! header and footer on open and every chunk as it reads it, on as many
//! threads as asked ([`SnapshotReader::load_parallel`]). A
//! [`SnapshotStore`] is a directory with a `MANIFEST` naming the published
//! snapshots, newest first, and a retention count.
//!
//! The same container also carries incremental backups
//! ([`SnapshotKind::Incremental`], [`SnapshotWriter::create_incremental`]):
//! a header flag and the LSN the file starts from say so. A store lists and
//! opens full snapshots only.
//!
//! **What it is not.** It does not know what the payload means (the engine
//! encodes its entries into chunk payloads and decodes them in the load
//! closure), reads no clock, takes no snapshot of anything, and takes no
//! lock on its directory. It depends on no other FastCache crate.
//!
//! ```
//! use fastcache_snapshot::{SnapshotMeta, SnapshotStore, WriterOptions};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("fastcache-snapshot-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let store = SnapshotStore::open(&dir, 2)?;          // keep the 2 newest
//!
//! let meta = SnapshotMeta { lsn: 1234, created_unix_ms: 1_700_000_000_000 };
//! let mut w = store.create(meta, WriterOptions::default())?;
//! w.write_chunk(b"entry-1entry-2", 2)?;              // payload, entry count
//! w.write_chunk(b"entry-3", 1)?;
//! let info = w.finish()?;                             // fsync, rename, fsync dir
//! store.publish(&info)?;                              // now it counts
//!
//! let newest = &store.list()?[0];
//! assert_eq!((newest.lsn, newest.keys), (1234, 3));
//! let reader = store.open_snapshot(newest)?;          // header + footer checked
//! let total = std::sync::atomic::AtomicU64::new(0);
//! let stats = reader.load_parallel(2, |payload, entries| {
//!     total.fetch_add(payload.len() as u64, std::sync::atomic::Ordering::Relaxed);
//!     Ok::<(), std::convert::Infallible>(())
//! })?;
//! assert_eq!((stats.entries, total.into_inner()), (3, 21));
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(())
//! # }
//! ```
//!
//! The byte layout of the file and the manifest, and why publication
//! happens in the order it does, are in `docs/formats.md` ("Snapshot
//! file").

mod catalog;
pub mod checked_text;
mod error;
mod format;
mod reader;
mod writer;

pub use crate::catalog::{SnapshotEntry, SnapshotStore, DEFAULT_RETAIN, MANIFEST_FILE};
pub use crate::error::{LoadError, Region, Result, SnapshotError};
pub use crate::reader::{Chunks, LoadStats, SnapshotReader};
pub use crate::writer::{SnapshotInfo, SnapshotKind, SnapshotMeta, SnapshotWriter, WriterOptions};

/// The snapshot file format version this build writes and reads.
pub const FORMAT_VERSION: u32 = format::VERSION;
