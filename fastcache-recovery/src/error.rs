//! Errors of recovery.

/// Recovery's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why recovery could not rebuild the state.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The WAL could not be opened or read (I/O, lock, corruption in the
    /// middle of the log). The message names the file and offset; run
    /// `fastcache check` / `fastcache repair` on the data directory.
    #[error("write-ahead log: {0}")]
    Wal(#[from] fastcache_wal::Error),
    /// A WAL record does not decode as an engine record.
    #[error("WAL record {lsn} does not decode: {source}")]
    Record {
        /// The record's LSN.
        lsn: u64,
        /// The decoding error.
        source: fastcache_core::Error,
    },
    /// A WAL record decoded but re-applying it failed: the log does not fit
    /// the state it is replayed onto.
    #[error("replaying WAL record {lsn} failed: {source}")]
    Replay {
        /// The record's LSN.
        lsn: u64,
        /// The engine's error.
        source: fastcache_core::Error,
    },
    /// The snapshot directory or its manifest could not be read.
    #[error("snapshots: {0}")]
    Snapshots(fastcache_snapshot::SnapshotError),
    /// A snapshot is intact but cannot be loaded by this server (an I/O
    /// error, a configuration that cannot hold it).
    #[error("snapshot {} cannot be loaded: {reason}. Nothing was changed", path.display())]
    Unloadable {
        /// The snapshot file.
        path: std::path::PathBuf,
        /// Why.
        reason: String,
    },
    /// The WAL does not reach back to the records right after the snapshot
    /// recovery would start from: some writes exist in no file.
    #[error(
        "cannot recover a consistent state: the WAL starts at LSN {wal_first}, but LSN {needed_from} is needed{}{}. \
         Nothing was changed; run `fastcache check` on the data directory, restore it from a backup, or start \
         with ENABLE_CRASH_RECOVERY=false to move it aside and start empty",
        snapshot.as_ref().map(|p| format!(" after snapshot {}", p.display())).unwrap_or_else(|| " (no usable snapshot)".into()),
        if skipped.is_empty() { String::new() } else { format!("; damaged snapshots: {}", skipped.join("; ")) }
    )]
    Gap {
        /// The first LSN the state needs from the log.
        needed_from: u64,
        /// The first LSN the log holds.
        wal_first: u64,
        /// The snapshot recovery loaded, if any.
        snapshot: Option<std::path::PathBuf>,
        /// Damaged snapshots passed over, with their problems.
        skipped: Vec<String>,
    },
}
