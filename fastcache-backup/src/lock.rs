//! Directory locks with `flock`: a backup directory has one writer at a
//! time, and a restore never replaces a data directory a server has open.
//! The lock dies with the process, so a crash never leaves a stale one.

use std::fs::{File, OpenOptions};
use std::path::Path;

use crate::error::{Error, Result};

/// Name of the lock file (the WAL's is named the same).
pub(crate) const LOCK_FILE: &str = "LOCK";

/// A held exclusive lock; released when dropped.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

/// Locks `dir` exclusively (creating `dir/LOCK`), or fails with
/// [`Error::Locked`] if another open file description holds it.
pub(crate) fn lock_dir(dir: &Path) -> Result<DirLock> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io("open lock file", &path, e))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(DirLock { _file: file }),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Err(Error::Locked { path }),
        Err(e) => Err(Error::io("lock", path, e.into())),
    }
}

/// Whether someone holds the lock of `dir` (a directory without a lock
/// file is not locked). Takes no lock that outlives the call.
pub(crate) fn is_locked(dir: &Path) -> Result<bool> {
    let path = dir.join(LOCK_FILE);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io("open lock file", &path, e)),
    };
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared) {
        Ok(()) => Ok(false),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Ok(true),
        Err(e) => Err(Error::io("lock", path, e.into())),
    }
}
