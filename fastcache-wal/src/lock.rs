//! The directory lock: one open `Wal` per directory, across processes.
//!
//! `LOCK` is `flock`ed exclusively for as long as the log — or any mapping
//! of one of its segments — is alive; every `Segment` holds an `Arc` of the
//! lock. `flock` locks belong to the open file description, so a second
//! `Wal::open` in the same process is refused just like another process.
//! The lock dies with the process, so a crash never leaves a stale lock.

use std::path::Path;

use crate::error::{Error, Result};
use crate::fs::{FileLock, FileSystem};
use crate::naming::LOCK_FILE;

/// The held lock of one log directory.
pub(crate) struct DirLock {
    _guard: Box<dyn FileLock>,
}

impl DirLock {
    /// Locks `dir`, or fails with `Error::Locked` if someone holds it.
    pub(crate) fn acquire(fs: &dyn FileSystem, dir: &Path) -> Result<DirLock> {
        let path = dir.join(LOCK_FILE);
        match fs.lock(&path) {
            Ok(guard) => Ok(DirLock { _guard: guard }),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Err(Error::Locked { path }),
            Err(e) => Err(Error::io("lock", path, e)),
        }
    }
}
