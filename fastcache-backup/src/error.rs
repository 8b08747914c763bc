//! The crate's error types.
//!
//! Damaged or inconsistent backups (`BrokenChain`, `Corrupted`) are kept
//! apart from failed operations (`Io`) and from refusals that tell the
//! caller what to do instead (`NeedsFull`, `Busy`, `DestNotEmpty`,
//! `Unreachable`, `WalGap`). Every problem with a file names the file, and
//! every problem with a range of history names the LSNs.

use std::fmt;
use std::io;
use std::path::PathBuf;

use fastcache_snapshot::SnapshotError;

use crate::restore::Target;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One thing wrong with a backup chain. A chain is usable only without
/// any; [`crate::verify_chain`] lists all of them.
#[derive(Debug)]
#[non_exhaustive]
pub enum ChainProblem {
    /// The chain's `MANIFEST` cannot be read or does not parse.
    Manifest {
        /// The manifest.
        file: PathBuf,
        /// Why.
        error: Box<Error>,
    },
    /// The manifest lists a file that does not exist.
    Missing {
        /// The file.
        file: PathBuf,
        /// The LSN range the file covered (`from` is 0 for a full backup).
        from_lsn: u64,
        /// Its end.
        to_lsn: u64,
    },
    /// A file's bytes do not verify (checksum, truncation, bad header…).
    Damaged {
        /// The file.
        file: PathBuf,
        /// The LSN range the file covered.
        from_lsn: u64,
        /// Its end.
        to_lsn: u64,
        /// What did not verify, with the byte offset.
        error: SnapshotError,
    },
    /// A file verifies but is not the one the manifest describes (kind,
    /// LSNs, creation time, key count or size differ).
    Mismatch {
        /// The file.
        file: PathBuf,
        /// What differs.
        reason: String,
    },
    /// A link does not start where the previous one ends: the records in
    /// between are in no backup of the chain.
    Gap {
        /// The link after the gap.
        file: PathBuf,
        /// Where it starts.
        from_lsn: u64,
        /// Where the previous link ends.
        expected_from: u64,
        /// The previous link.
        previous: PathBuf,
    },
    /// A file verifies but its entries cannot be applied.
    Undecodable {
        /// The file.
        file: PathBuf,
        /// The chunk and the decoder's message.
        reason: String,
    },
}

impl fmt::Display for ChainProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainProblem::Manifest { file, error } => write!(f, "manifest {}: {error}", file.display()),
            ChainProblem::Missing { file, from_lsn, to_lsn } => {
                write!(f, "{} (LSNs {from_lsn}..={to_lsn}) is missing", file.display())
            }
            ChainProblem::Damaged { file, from_lsn, to_lsn, error } => {
                write!(f, "{} (LSNs {from_lsn}..={to_lsn}) is damaged: {error}", file.display())
            }
            ChainProblem::Mismatch { file, reason } => write!(f, "{}: {reason}", file.display()),
            ChainProblem::Gap { file, from_lsn, expected_from, previous } => write!(
                f,
                "{} starts after LSN {from_lsn} but the link before it, {}, ends at LSN {expected_from}: \
                 the records between are in no backup of the chain",
                file.display(),
                previous.display()
            ),
            ChainProblem::Undecodable { file, reason } => {
                write!(f, "{}: entries cannot be applied: {reason}", file.display())
            }
        }
    }
}

/// Every way a backup operation can fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed; `op` names what was being done.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What the crate was doing.
        op: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// Writing or reading a backup file failed (see
    /// [`SnapshotError::is_corruption`] for damaged bytes).
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// The write-ahead log could not be opened or read.
    #[error("write-ahead log: {0}")]
    Wal(#[from] fastcache_wal::Error),
    /// A chain manifest does not parse or its checksum fails.
    #[error("{}: corrupted at offset {offset}: {reason}", file.display())]
    Corrupted {
        /// The manifest.
        file: PathBuf,
        /// Byte offset of the line that is wrong.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A chain manifest from a newer writer.
    #[error("{}: unsupported chain manifest version {version} (this build reads version 1)", file.display())]
    UnsupportedVersion {
        /// The manifest.
        file: PathBuf,
        /// The version it declares.
        version: u32,
    },
    /// Another process (a server, another backup) has the backup directory
    /// open for writing.
    #[error("{} is locked by another process (a running server or another backup)", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A write on a directory opened with [`crate::BackupDir::open_read_only`].
    #[error("backup directory {} was opened read-only", path.display())]
    ReadOnly {
        /// The directory.
        path: PathBuf,
    },
    /// An incremental backup cannot continue the chain; a full backup (a
    /// new chain) can.
    #[error("an incremental backup is not possible: {reason}; write a full backup (a new chain) first")]
    NeedsFull {
        /// Why.
        reason: String,
    },
    /// Another snapshot or backup of the engine is running; try again later.
    #[error("a snapshot or backup of this engine is already in progress")]
    Busy,
    /// A chain has a gap, a missing or damaged file: it is refused.
    #[error(
        "backup chain {} is broken: {}",
        chain.display(),
        problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    BrokenChain {
        /// The chain's directory.
        chain: PathBuf,
        /// Everything found wrong (at least one).
        problems: Vec<ChainProblem>,
    },
    /// `before_publish` failed: the log is not durable up to the backup's
    /// LSN, so the backup was not published (it would claim records a crash
    /// could lose).
    #[error("the backup at LSN {lsn} was not published: the log is not durable up to it: {reason}")]
    Publish {
        /// The backup's LSN.
        lsn: u64,
        /// The caller's message.
        reason: String,
    },
    /// The caller's log position went backwards (a different log, or one
    /// restarted from an older state).
    #[error(
        "the log position {lsn} is below the chain's last LSN {tip}: the engine no longer writes the log the \
         chain was taken from"
    )]
    LsnBehind {
        /// The position `lsn_at` returned.
        lsn: u64,
        /// The chain's last LSN.
        tip: u64,
    },
    /// A WAL record does not decode as an engine record.
    #[error("WAL record {lsn} does not decode: {source}")]
    Record {
        /// The record's LSN.
        lsn: u64,
        /// The decoding error.
        #[source]
        source: fastcache_core::Error,
    },
    /// A WAL record decoded but re-applying it failed.
    #[error("replaying WAL record {lsn} failed: {source}")]
    Replay {
        /// The record's LSN.
        lsn: u64,
        /// The engine's error.
        #[source]
        source: fastcache_core::Error,
    },
    /// Nothing in the source reaches back to the target.
    #[error("no backup in {} reaches back to {target}: {reason}", src.display())]
    NoBackup {
        /// The restore source.
        src: PathBuf,
        /// The target asked for.
        target: Target,
        /// What was found.
        reason: String,
    },
    /// The backups and the log end before the target.
    #[error("{target} cannot be reached: the backups and the WAL in {} end at LSN {reachable}{}", src.display(),
        if *has_wal { "" } else { " (no wal/ directory: only the backups' own LSNs can be restored to)" })]
    Unreachable {
        /// The restore source.
        src: PathBuf,
        /// The target asked for.
        target: Target,
        /// The highest LSN that can be restored.
        reachable: u64,
        /// Whether the source has a WAL.
        has_wal: bool,
    },
    /// The WAL does not hold the records right after the backup restore
    /// would start from.
    #[error(
        "the WAL in {} does not hold LSN {needed_from} (it holds {wal_first}..={wal_last}), which is needed \
         after the backup at LSN {}; restore to LSN {} or earlier, or provide a WAL that reaches back",
        wal.display(), needed_from - 1, needed_from - 1
    )]
    WalGap {
        /// The WAL directory.
        wal: PathBuf,
        /// The first LSN needed.
        needed_from: u64,
        /// The first LSN the log holds (0: none).
        wal_first: u64,
        /// The last LSN of the log.
        wal_last: u64,
    },
    /// The restore destination holds files and `force` was not given.
    #[error("{} is not empty (it holds {entries}); restore refuses to replace its data unless forced", path.display())]
    DestNotEmpty {
        /// The destination.
        path: PathBuf,
        /// A few of the names found.
        entries: String,
    },
    /// A caller passed an argument the operation cannot use.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl Error {
    /// True for damaged or inconsistent bytes (a broken chain, a manifest
    /// or backup file that does not verify) rather than a failed operation
    /// or a refusal.
    pub fn is_corruption(&self) -> bool {
        match self {
            Error::BrokenChain { .. } | Error::Corrupted { .. } | Error::UnsupportedVersion { .. } => true,
            Error::Snapshot(e) => e.is_corruption(),
            Error::Wal(e) => e.is_corruption(),
            _ => false,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io { op, path: path.into(), source }
    }

    pub(crate) fn needs_full(reason: impl Into<String>) -> Error {
        Error::NeedsFull { reason: reason.into() }
    }

    pub(crate) fn broken(chain: impl Into<PathBuf>, problem: ChainProblem) -> Error {
        Error::BrokenChain { chain: chain.into(), problems: vec![problem] }
    }
}
