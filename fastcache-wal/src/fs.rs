//! The I/O seam: everything the log does to the disk goes through
//! [`FileSystem`], so tests can swap in a file system that fails on purpose
//! or loses power (`testing::FaultFs`, feature `test-utils`).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::mmap::MmapRegion;

/// How records get into a mapped segment. Reads, recovery and `msync`
/// always go through the mapping.
///
/// Measured on this project's machines (ext4, Linux 6.18, 80-byte records):
/// a store into the mapping costs ~0.2 µs, a `pwrite` ~2–4 µs; but a page
/// dirtied through the mapping takes a write fault and makes the next
/// `fdatasync` commit the journal, so one append plus sync costs ~350 µs
/// that way against ~115 µs with `pwrite`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WriteMode {
    /// `File` under `SyncPolicy::Always` (every append is followed by a
    /// sync soon), `Mmap` otherwise (syncs are rare, appends are many).
    /// Under `Always`, `File` appends are buffered in memory and written
    /// with one `pwrite` per group-commit sync (`docs/durability.md`).
    #[default]
    Auto,
    /// `pwrite` into the page cache pages the mapping shows.
    File,
    /// Store into the mapping (`memcpy`): no system call per append.
    Mmap,
}

/// How [`FileSystem::open`] treats a missing or existing file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Open a file that exists.
    Existing,
    /// Create a file that must not exist yet.
    CreateNew,
}

/// The directory operations the log needs. Implementations must be usable
/// from several threads at once.
pub trait FileSystem: Send + Sync {
    /// Creates `dir` and its parents if missing.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// Names of the entries of `dir` (not paths).
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Opens `path` for reading and writing.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn WalFile>>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Renames a file (atomically replacing `to`).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes the directory's entries (creations, renames, removals) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Takes an exclusive lock on `path` (creating the file), held until the
    /// returned guard is dropped. Fails with `ErrorKind::WouldBlock` if
    /// anyone — another process or another guard in this one — holds it.
    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>>;
}

/// An exclusive lock, released on drop.
pub trait FileLock: Send + Sync {}

/// An open file.
pub trait WalFile: Send + Sync {
    /// Current length in bytes.
    fn len(&self) -> io::Result<u64>;
    /// True for a file of zero bytes.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }
    /// Makes `[0, len)` allocated on the device, extending the file with
    /// zeros (bytes already in the file are kept), so that
    /// writing through a mapping later needs no allocation — a full disk
    /// fails here (`ErrorKind::StorageFull`), not as a fault on a mapped
    /// page — and, ideally, no metadata update on sync.
    fn allocate(&self, len: u64) -> io::Result<()>;
    /// Sets the length (never used on a mapped file).
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// `fdatasync`: the file's data and the metadata needed to read it.
    fn sync_data(&self) -> io::Result<()>;
    /// Maps `[0, len)` shared and writable. `frozen_from` starts the range
    /// that [`MappedRegion::publish`] freezes; `mode` says how
    /// [`MappedRegion::write`] changes bytes; `populate` asks to fault the
    /// pages in now.
    fn map(&self, len: u64, frozen_from: u64, mode: WriteMode, populate: bool) -> io::Result<Box<dyn MappedRegion>>;
}

/// A mapped file region. Bytes `[frozen_from, published)` are frozen:
/// writes there are refused, so readers may copy them without coordination.
/// Writes go to the header area `[0, frozen_from)` or to `[published, len)`.
pub trait MappedRegion: Send + Sync {
    /// Mapped length.
    fn len(&self) -> u64;
    /// True for a zero-length mapping (which `map` never creates).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// End of the frozen range.
    fn published(&self) -> u64;
    /// Freezes everything up to `end` (`published ≤ end ≤ len`).
    fn publish(&self, end: u64) -> io::Result<()>;
    /// Copies `[offset, offset + buf.len())` into `buf`.
    fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Calls `f` with `[offset, offset + len)`; the slice lives for that call only.
    fn read_with(&self, offset: u64, len: u64, f: &mut dyn FnMut(&[u8])) -> io::Result<()>;
    /// Writes the concatenation of `parts` at `offset`.
    fn write(&self, offset: u64, parts: &[&[u8]]) -> io::Result<()>;
    /// `msync(MS_SYNC)` of `[offset, offset + len)` (whole pages around it).
    fn flush(&self, offset: u64, len: u64) -> io::Result<()>;
}

/// The real file system (`std::fs`, `fallocate`, `flock`, `mmap`).
#[derive(Debug, Default, Clone, Copy)]
pub struct OsFileSystem;

impl FileSystem for OsFileSystem {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            // A name that is not UTF-8 is not one of ours.
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn WalFile>> {
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        if mode == OpenMode::CreateNew {
            options.create_new(true);
        }
        Ok(Box::new(OsFile { file: options.open(path)?, path: path.to_path_buf() }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(|e| {
            if e == rustix::io::Errno::WOULDBLOCK {
                io::Error::from(io::ErrorKind::WouldBlock)
            } else {
                io::Error::from(e)
            }
        })?;
        // For people looking at the directory: who holds it. Best effort;
        // the lock is the flock, not the contents.
        let pid = format!("{}\n", std::process::id());
        if file.set_len(0).is_ok() {
            let _ = file.write_all_at(pid.as_bytes(), 0);
        }
        Ok(Box::new(OsLock { _file: file }))
    }
}

/// Holds the `flock`; closing the descriptor releases it.
struct OsLock {
    _file: File,
}

impl FileLock for OsLock {}

struct OsFile {
    file: File,
    path: PathBuf,
}

/// Zeros are written in chunks of this size when allocating.
const ZERO_CHUNK: usize = 1 << 20;

impl WalFile for OsFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        // Only the bytes past the current end are new; what is before stays.
        let start = self.file.metadata()?.len();
        // fallocate reserves the blocks, so ENOSPC shows up here. Where it
        // is not supported, writing the zeros below allocates as well.
        match rustix::fs::fallocate(&self.file, rustix::fs::FallocateFlags::empty(), 0, len) {
            Ok(()) => {}
            Err(e) if e == rustix::io::Errno::OPNOTSUPP || e == rustix::io::Errno::NOSYS => {}
            Err(e) => return Err(e.into()),
        }
        // NOTE: fallocate leaves "unwritten" extents; the first writeback of
        // each block would then convert the extent, a metadata change every
        // msync has to journal. Writing real zeros once, here and off the
        // hot path, makes later syncs pure data overwrites (about twice as
        // fast for small syncs on ext4).
        let zeros = vec![0u8; ZERO_CHUNK];
        let mut at = start;
        while at < len {
            let n = (len - at).min(ZERO_CHUNK as u64) as usize;
            self.file.write_all_at(&zeros[..n], at)?;
            at += n as u64;
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn map(&self, len: u64, frozen_from: u64, mode: WriteMode, populate: bool) -> io::Result<Box<dyn MappedRegion>> {
        MmapRegion::new(&self.file, len, frozen_from, mode, populate)
            .map(|r| Box::new(r) as Box<dyn MappedRegion>)
            .map_err(|e| io::Error::new(e.kind(), format!("mmap {}: {e}", self.path.display())))
    }
}
