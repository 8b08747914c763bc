//! The crate's error types.
//!
//! Damaged bytes (`BadMagic`, `ChecksumMismatch`, `Truncated`, `Corrupted`,
//! …) are kept apart from failed operations (`Io`) so that recovery can
//! branch on the difference: a damaged snapshot is dropped and the previous
//! one tried, a failed read may be worth retrying. Every corruption names
//! the file and the byte offset of the damage.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A part of a snapshot file that carries its own checksum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    /// The fixed header at offset 0.
    Header,
    /// Chunk number `n` (0-based, in file order).
    Chunk(u32),
    /// The footer: the chunk index and the totals.
    Footer,
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Region::Header => f.write_str("header"),
            Region::Chunk(n) => write!(f, "chunk {n}"),
            Region::Footer => f.write_str("footer"),
        }
    }
}

/// Every way a snapshot operation can fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// An operating-system call failed; `op` names what was being done.
    #[error("{op} {path}: {source}")]
    Io {
        /// What the crate was doing ("fsync snapshot", "read chunk", …).
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The file does not start (or its footer does not start) with the
    /// expected magic: it is not a snapshot file, or it is damaged.
    #[error("{file}: bad magic at offset {offset}: found {found:02x?}")]
    BadMagic {
        /// The snapshot file.
        file: PathBuf,
        /// Offset of the magic (0 for the header, the footer's offset for the footer).
        offset: u64,
        /// The bytes found instead.
        found: [u8; 8],
    },
    /// The file was written in a format version this build cannot read.
    #[error("{file}: unsupported snapshot format version {version} (this build reads version 1)")]
    UnsupportedVersion {
        /// The snapshot file.
        file: PathBuf,
        /// The version in the header.
        version: u32,
    },
    /// The header sets a flag this build does not know (a feature of a newer writer).
    #[error("{file}: unsupported header flags {flags:#010x} (this build knows 0x00000001, INCREMENTAL)")]
    UnsupportedFlags {
        /// The snapshot file.
        file: PathBuf,
        /// The flags in the header.
        flags: u32,
    },
    /// A region's checksum does not match its bytes.
    #[error("{file}: {region} checksum mismatch at offset {offset}: stored {stored:#010x}, computed {computed:#010x}")]
    ChecksumMismatch {
        /// The snapshot file.
        file: PathBuf,
        /// Which region.
        region: Region,
        /// Offset of the region in the file.
        offset: u64,
        /// The checksum stored in the file.
        stored: u32,
        /// The checksum of the bytes as read.
        computed: u32,
    },
    /// The file is shorter than its header says: it was cut.
    #[error("{file}: truncated: {len} bytes, the header says {expected}")]
    Truncated {
        /// The snapshot file.
        file: PathBuf,
        /// Its length.
        len: u64,
        /// The length it should have (at least the header's for a file
        /// too short to hold one).
        expected: u64,
    },
    /// Bytes that verify individually but do not form a valid snapshot:
    /// the index disagrees with a chunk, a chunk decompresses to the wrong
    /// length, the entry counts do not add up, a reserved field is set,
    /// the file is longer than its header says; or a manifest line that
    /// does not parse.
    #[error("{file}: corrupted at offset {offset}: {reason}")]
    Corrupted {
        /// The snapshot (or manifest) file.
        file: PathBuf,
        /// Byte offset of the damage.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// The manifest names a snapshot file that does not exist.
    #[error("manifest {manifest} names snapshot {file}, which does not exist")]
    MissingSnapshot {
        /// The manifest.
        manifest: PathBuf,
        /// The missing file.
        file: PathBuf,
    },
    /// The snapshot would exceed the writer's size limit; the temporary
    /// file has been removed and the writer is aborted.
    #[error("snapshot exceeds the size limit of {limit} bytes ({written} bytes with this chunk)")]
    TooLarge {
        /// The limit ([`crate::WriterOptions::max_size`]).
        limit: u64,
        /// The size the file would have reached, footer included.
        written: u64,
    },
    /// A chunk's payload is larger than a chunk can hold (`u32::MAX` bytes).
    #[error("chunk of {len} bytes exceeds the maximum of {max} bytes")]
    ChunkTooLarge {
        /// The payload's length.
        len: u64,
        /// The largest payload a chunk holds.
        max: u64,
    },
    /// A snapshot file with this name already exists (same LSN and
    /// creation time).
    #[error("snapshot file already exists: {path}")]
    AlreadyExists {
        /// The existing file.
        path: PathBuf,
    },
    /// An earlier error aborted this writer and removed its temporary file.
    #[error("snapshot writer for {path} was aborted by an earlier error: {cause}")]
    Aborted {
        /// The snapshot the writer was writing.
        path: PathBuf,
        /// The first error.
        cause: String,
    },
    /// A caller passed an argument the operation cannot use.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl SnapshotError {
    /// True for the variants that describe damaged or unreadable bytes
    /// (including a version or flags from a newer writer) rather than a
    /// failed operation or a misuse.
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            SnapshotError::BadMagic { .. }
                | SnapshotError::UnsupportedVersion { .. }
                | SnapshotError::UnsupportedFlags { .. }
                | SnapshotError::ChecksumMismatch { .. }
                | SnapshotError::Truncated { .. }
                | SnapshotError::Corrupted { .. }
        )
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> SnapshotError {
        SnapshotError::Io { op, path: path.into(), source }
    }

    pub(crate) fn corrupted(file: impl Into<PathBuf>, offset: u64, reason: impl Into<String>) -> SnapshotError {
        SnapshotError::Corrupted { file: file.into(), offset, reason: reason.into() }
    }
}

/// `Result` with this crate's [`SnapshotError`].
pub type Result<T> = std::result::Result<T, SnapshotError>;

/// Why [`crate::SnapshotReader::load_parallel`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum LoadError<E> {
    /// Reading or verifying the snapshot failed.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The caller's closure returned an error for a chunk.
    #[error("{file}: loading chunk {chunk} failed: {error}")]
    Callback {
        /// The snapshot file.
        file: PathBuf,
        /// The chunk whose payload the closure rejected.
        chunk: u32,
        /// The closure's error.
        #[source]
        error: E,
    },
}
