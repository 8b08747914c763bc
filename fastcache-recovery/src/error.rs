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
}
