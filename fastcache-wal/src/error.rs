//! The crate's error type.
//!
//! Corruption (`Corrupted`, `ChecksumMismatch`) is kept apart from I/O so
//! that recovery code can branch on the difference: an I/O error may go away
//! on retry, corrupted bytes will not.

use std::io;
use std::path::PathBuf;

use crate::Lsn;

/// Every way a WAL operation can fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed; `op` names what the log was doing.
    #[error("{op} {path}: {source}")]
    Io {
        /// What the log was doing ("msync", "create segment", …).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The device (or quota) is full. Raised when a segment is allocated, so
    /// a full disk shows up at rotation and never as a fault on a mapped page.
    #[error("no space left on device for {path}")]
    NoSpace {
        /// The file that could not be allocated.
        path: PathBuf,
    },
    /// Bytes on disk do not form a valid log: a bad header, a record that
    /// does not verify followed by valid ones, a gap in the LSNs.
    #[error(
        "corrupted WAL segment {segment} at offset {offset}: {reason} (the log was left as it is; \
         open it with RecoveryMode::PointInTime to cut it here, or RecoveryMode::SkipCorrupted to skip the damage)"
    )]
    Corrupted {
        /// The segment file.
        segment: PathBuf,
        /// Byte offset of the damage within the segment file.
        offset: u64,
        /// What did not verify.
        reason: String,
    },
    /// A record's checksum does not match its bytes (and valid records follow
    /// it, so it is not a torn tail).
    #[error(
        "checksum mismatch in WAL segment {segment} at offset {offset}: stored {expected:#010x}, computed {got:#010x} \
         (the log was left as it is; open it with RecoveryMode::PointInTime or RecoveryMode::SkipCorrupted to repair)"
    )]
    ChecksumMismatch {
        /// The segment file.
        segment: PathBuf,
        /// Byte offset of the record within the segment file.
        offset: u64,
        /// The checksum stored in the record.
        expected: u32,
        /// The checksum of the bytes as read.
        got: u32,
    },
    /// Another process (or another `Wal` in this process) holds the log's lock.
    #[error("WAL directory is locked by another instance: {path}")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// An earlier write, allocation or sync failed; the log refuses further
    /// appends and syncs until it is reopened or restarted
    /// ([`Wal::restart_after`](crate::Wal::restart_after)). A failed fsync is never
    /// retried: the kernel may have dropped the dirty pages, and a second
    /// fsync would falsely succeed.
    #[error("WAL is poisoned by an earlier failure: {cause}")]
    Poisoned {
        /// The first failure.
        cause: String,
    },
    /// The log's directory was removed while the log was open.
    #[error("WAL directory vanished: {path}")]
    DirectoryVanished {
        /// The directory.
        path: PathBuf,
    },
    /// A record or batch is larger than one segment can hold.
    #[error("record of {len} bytes exceeds the maximum of {max} bytes for this segment size")]
    RecordTooLarge {
        /// Bytes the record (or the whole batch, with headers) needs.
        len: u64,
        /// The largest that fits.
        max: u64,
    },
    /// The requested LSN is no longer (or not yet) in the log.
    #[error("LSN {lsn} is not in the log (it holds {first}..={last})")]
    LsnUnavailable {
        /// The LSN asked for.
        lsn: Lsn,
        /// First LSN still in the log.
        first: Lsn,
        /// Last LSN in the log.
        last: Lsn,
    },
    /// [`Wal::restart_after`](crate::Wal::restart_after) was asked to
    /// continue after an LSN below the log's last one: LSNs the log already
    /// handed out would be handed out again.
    #[error("cannot restart the WAL after LSN {lsn}: it already holds LSNs up to {last}")]
    RestartBehind {
        /// The LSN asked for.
        lsn: Lsn,
        /// The log's last LSN.
        last: Lsn,
    },
    /// A waiter's record was appended but never made durable by the log
    /// before [`Wal::restart_after`](crate::Wal::restart_after) discarded
    /// it, and the log was not poisoned then (a poisoned log's waiters get
    /// `Poisoned` with the failure instead).
    #[error("LSN {lsn} was discarded unsynced when the WAL restarted after LSN {restarted_after}")]
    Discarded {
        /// The LSN waited for.
        lsn: Lsn,
        /// The LSN the log restarted after.
        restarted_after: Lsn,
    },
    /// The log was closed.
    #[error("WAL is closed")]
    Closed,
}

impl Error {
    /// True for the variants that describe damaged bytes rather than a
    /// failed operation.
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::Corrupted { .. } | Error::ChecksumMismatch { .. })
    }

    /// Classifies an I/O error: a full device, a vanished directory or
    /// anything else.
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        let path = path.into();
        match source.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => Error::NoSpace { path },
            _ => Error::Io { op, path, source },
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
