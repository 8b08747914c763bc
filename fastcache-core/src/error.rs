//! Errors of the engine's library API.
//!
//! Command errors are not here: a command that fails answers an error
//! [`Reply`](crate::Reply), exactly as Redis does. These are the errors of
//! decoding persisted records and re-applying (and re-journalling) them.

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong outside ordinary command execution.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A persisted record does not decode: its bytes are damaged or were
    /// not written by this format.
    #[error("corrupted record: {reason}")]
    Corrupted {
        /// What did not decode.
        reason: String,
    },
    /// A record of a format version this build does not know.
    #[error("record format version {found} is not supported (this build reads up to {supported}); upgrade FastCache to read this data")]
    UnsupportedVersion {
        /// The version byte found.
        found: u8,
        /// The newest version this build reads.
        supported: u8,
    },
    /// Re-applying a record failed: the record does not fit the state it is
    /// applied to, so the log and the state it is replayed onto diverge.
    #[error("replaying record op {op} ({command}) failed: {reply}")]
    Replay {
        /// Index of the failing operation inside the record.
        op: usize,
        /// The command name.
        command: String,
        /// The error reply the engine gave.
        reply: String,
    },
    /// The journal refused a re-applied record
    /// ([`Engine::apply_record_with`](crate::Engine::apply_record_with)):
    /// the record is applied in memory but was not journalled. The message
    /// is the journal's error reply text.
    #[error("journalling a replayed record failed: {0}")]
    Journal(String),
}
