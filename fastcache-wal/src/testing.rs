//! Test support (feature `test-utils`): [`FaultFs`], an in-memory
//! [`FileSystem`] that keeps a *live* and a *durable* image of every file and
//! directory, can lose power, and fails on command.
//!
//! - A write through a mapping changes the live image; `flush` (msync) of a
//!   range copies the whole pages around it to the durable image, as the
//!   kernel writes whole pages; `sync_data` copies the whole file.
//! - Creations, renames and removals change the live directory; `sync_dir`
//!   makes the directory's entries durable.
//! - [`FaultFs::crash`] returns a new file system holding only the durable
//!   images (a power cut); [`FaultFs::crash_with_writeback`] also lets a
//!   random subset of the unsynced pages through, as the kernel's writeback
//!   may have written some of them in any order.
//! - Faults: fail a chosen sync (optionally after writing part of the range,
//!   a short write), fail allocations with ENOSPC, make the directory vanish.

use std::collections::{BTreeMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::fs::{FileLock, FileSystem, MappedRegion, OpenMode, WalFile, WriteMode};

const PAGE: usize = 4096;

/// The crash-simulating, fault-injecting file system. Clones share state.
#[derive(Clone, Default)]
pub struct FaultFs {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    dirs: HashSet<PathBuf>,
    live: BTreeMap<PathBuf, Arc<Node>>,
    durable: BTreeMap<PathBuf, Arc<Node>>,
    locks: HashSet<PathBuf>,
    /// Sync operations (flush, sync_data, sync_dir) attempted so far.
    syncs: u64,
    fail_sync_at: Option<u64>,
    fail_all_syncs: bool,
    short_write: bool,
    no_space: bool,
    allocations: u64,
    fail_allocation_at: Option<u64>,
    /// Every sync operation takes at least this long (a slow disk).
    sync_delay: std::time::Duration,
    /// Writes through a mapping fail (EIO) while set.
    fail_writes: bool,
}

#[derive(Default)]
struct Node {
    data: Mutex<Images>,
}

#[derive(Default, Clone)]
struct Images {
    live: Vec<u8>,
    durable: Vec<u8>,
}

fn parent(path: &Path) -> PathBuf {
    path.parent().map(Path::to_path_buf).unwrap_or_default()
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{}: not found", path.display()))
}

impl FaultFs {
    /// An empty file system.
    pub fn new() -> FaultFs {
        FaultFs::default()
    }

    /// This file system as an `Arc<dyn FileSystem>` for `WalOptions::fs`.
    pub fn as_fs(&self) -> Arc<dyn FileSystem> {
        Arc::new(self.clone())
    }

    /// A power cut now: a new file system with only what was made durable.
    /// Locks are not carried over (the process died with the power).
    pub fn crash(&self) -> FaultFs {
        self.crash_inner(None)
    }

    /// A power cut after the kernel wrote back a random half (decided by
    /// `seed`) of the pages that were dirty but not synced.
    pub fn crash_with_writeback(&self, seed: u64) -> FaultFs {
        self.crash_inner(Some(seed))
    }

    fn crash_inner(&self, writeback: Option<u64>) -> FaultFs {
        let st = self.state.lock();
        let mut rng = writeback.unwrap_or(0) | 1;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut durable = BTreeMap::new();
        for (path, node) in &st.durable {
            let images = node.data.lock();
            let mut bytes = images.durable.clone();
            if writeback.is_some() {
                bytes.resize(bytes.len().max(images.live.len().min(images.durable.len())), 0);
                for (i, page) in images.live.chunks(PAGE).enumerate() {
                    let at = i * PAGE;
                    if at < bytes.len() && next() % 2 == 0 {
                        let n = page.len().min(bytes.len() - at);
                        bytes[at..at + n].copy_from_slice(&page[..n]);
                    }
                }
            }
            let node = Arc::new(Node { data: Mutex::new(Images { live: bytes.clone(), durable: bytes }) });
            durable.insert(path.clone(), node);
        }
        FaultFs {
            state: Arc::new(Mutex::new(State {
                dirs: st.dirs.clone(),
                live: durable.clone(),
                durable,
                ..State::default()
            })),
        }
    }

    /// Fails the `n`-th sync operation from now (0 = the next one): flush,
    /// `sync_data` or `sync_dir`. With `short_write`, a failing flush first
    /// makes the first half of its pages durable.
    pub fn fail_sync_in(&self, n: u64, short_write: bool) {
        let mut st = self.state.lock();
        st.fail_sync_at = Some(st.syncs + n);
        st.short_write = short_write;
    }

    /// Every sync fails from now on (`false` heals the disk).
    pub fn fail_all_syncs(&self, fail: bool) {
        self.state.lock().fail_all_syncs = fail;
    }

    /// Allocations fail with ENOSPC while set.
    pub fn set_no_space(&self, full: bool) {
        self.state.lock().no_space = full;
    }

    /// The `n`-th allocation from now (0 = the next) fails with ENOSPC.
    pub fn fail_allocation_in(&self, n: u64) {
        let mut st = self.state.lock();
        st.fail_allocation_at = Some(st.allocations + n);
    }

    /// Writes into mapped segments fail with EIO while set (a failing
    /// `pwrite`).
    pub fn set_fail_writes(&self, fail: bool) {
        self.state.lock().fail_writes = fail;
    }

    /// Makes every sync operation take at least `delay` (a slow disk).
    pub fn set_sync_delay(&self, delay: std::time::Duration) {
        self.state.lock().sync_delay = delay;
    }

    /// Sync operations attempted so far.
    pub fn sync_count(&self) -> u64 {
        self.state.lock().syncs
    }

    /// Removes `dir` and everything in it, as `rm -rf` would.
    pub fn remove_dir_all(&self, dir: &Path) {
        let mut st = self.state.lock();
        st.dirs.retain(|d| !d.starts_with(dir));
        st.live.retain(|p, _| !p.starts_with(dir));
        st.durable.retain(|p, _| !p.starts_with(dir));
    }

    /// Names of the files in `dir` (live view), sorted.
    pub fn list(&self, dir: &Path) -> Vec<String> {
        let st = self.state.lock();
        st.live
            .keys()
            .filter(|p| parent(p) == dir)
            .filter_map(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
            .collect()
    }

    /// The live bytes of a file.
    pub fn read(&self, path: &Path) -> Option<Vec<u8>> {
        let st = self.state.lock();
        let node = st.live.get(path)?;
        let bytes = node.data.lock().live.clone();
        Some(bytes)
    }

    /// Changes a file's bytes in both images (damage "on the disk"); `f`
    /// may also change the length.
    pub fn modify(&self, path: &Path, f: impl FnOnce(&mut Vec<u8>)) -> bool {
        let st = self.state.lock();
        let Some(node) = st.live.get(path) else { return false };
        let mut images = node.data.lock();
        f(&mut images.live);
        images.durable = images.live.clone();
        true
    }

    /// Writes a file (both images, directory entry durable).
    pub fn write_file(&self, path: &Path, bytes: &[u8]) {
        let mut st = self.state.lock();
        let node = Arc::new(Node { data: Mutex::new(Images { live: bytes.to_vec(), durable: bytes.to_vec() }) });
        st.dirs.insert(parent(path));
        st.live.insert(path.to_path_buf(), node.clone());
        st.durable.insert(path.to_path_buf(), node);
    }

    fn check_sync(&self) -> io::Result<()> {
        let delay = self.state.lock().sync_delay;
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        let mut st = self.state.lock();
        let n = st.syncs;
        st.syncs += 1;
        if st.fail_all_syncs || st.fail_sync_at == Some(n) {
            return Err(io::Error::other("injected sync failure (EIO)"));
        }
        Ok(())
    }

    fn check_dir(st: &State, path: &Path) -> io::Result<()> {
        if st.dirs.contains(&parent(path)) {
            Ok(())
        } else {
            Err(not_found(&parent(path)))
        }
    }
}

impl FileSystem for FaultFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        for d in dir.ancestors() {
            st.dirs.insert(d.to_path_buf());
        }
        Ok(())
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        if !self.state.lock().dirs.contains(dir) {
            return Err(not_found(dir));
        }
        Ok(self.list(dir))
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn WalFile>> {
        let mut st = self.state.lock();
        Self::check_dir(&st, path)?;
        let node = match (mode, st.live.get(path)) {
            (OpenMode::Existing, Some(node)) => node.clone(),
            (OpenMode::Existing, None) => return Err(not_found(path)),
            (OpenMode::CreateNew, Some(_)) => return Err(io::ErrorKind::AlreadyExists.into()),
            (OpenMode::CreateNew, None) => {
                let node = Arc::new(Node::default());
                st.live.insert(path.to_path_buf(), node.clone());
                node
            }
        };
        Ok(Box::new(FaultFile { fs: self.clone(), node }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        Self::check_dir(&st, path)?;
        st.live.remove(path).map(|_| ()).ok_or_else(|| not_found(path))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut st = self.state.lock();
        Self::check_dir(&st, from)?;
        Self::check_dir(&st, to)?;
        let node = st.live.remove(from).ok_or_else(|| not_found(from))?;
        st.live.insert(to.to_path_buf(), node);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        if !self.state.lock().dirs.contains(dir) {
            return Err(not_found(dir));
        }
        self.check_sync()?;
        let mut st = self.state.lock();
        let live: Vec<(PathBuf, Arc<Node>)> =
            st.live.iter().filter(|(p, _)| parent(p) == dir).map(|(p, n)| (p.clone(), n.clone())).collect();
        st.durable.retain(|p, _| parent(p) != dir);
        st.durable.extend(live);
        Ok(())
    }

    fn lock(&self, path: &Path) -> io::Result<Box<dyn FileLock>> {
        let mut st = self.state.lock();
        Self::check_dir(&st, path)?;
        if !st.locks.insert(path.to_path_buf()) {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(Box::new(FaultLock { fs: self.clone(), path: path.to_path_buf() }))
    }
}

struct FaultLock {
    fs: FaultFs,
    path: PathBuf,
}

impl FileLock for FaultLock {}

impl Drop for FaultLock {
    fn drop(&mut self) {
        self.fs.state.lock().locks.remove(&self.path);
    }
}

struct FaultFile {
    fs: FaultFs,
    node: Arc<Node>,
}

impl WalFile for FaultFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.node.data.lock().live.len() as u64)
    }

    fn allocate(&self, len: u64) -> io::Result<()> {
        {
            let mut st = self.fs.state.lock();
            let n = st.allocations;
            st.allocations += 1;
            if st.no_space || st.fail_allocation_at == Some(n) {
                return Err(io::Error::from(io::ErrorKind::StorageFull));
            }
        }
        let mut images = self.node.data.lock();
        if (images.live.len() as u64) < len {
            images.live.resize(len as usize, 0);
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.node.data.lock().live.resize(len as usize, 0);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.fs.check_sync()?;
        let mut images = self.node.data.lock();
        images.durable = images.live.clone();
        Ok(())
    }

    fn map(&self, len: u64, frozen_from: u64, _mode: WriteMode, _populate: bool) -> io::Result<Box<dyn MappedRegion>> {
        let file_len = self.node.data.lock().live.len() as u64;
        if file_len < len || frozen_from > len || len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "map past the end of the file"));
        }
        Ok(Box::new(FaultRegion {
            fs: self.fs.clone(),
            node: self.node.clone(),
            len,
            frozen_from,
            published: AtomicU64::new(frozen_from),
        }))
    }
}

/// A "mapping" of a [`FaultFs`] file: reads and writes go to the live image
/// under the node's lock; the frozen-range rules of the real mapping are
/// enforced the same way, so tests catch a writer that breaks them.
struct FaultRegion {
    fs: FaultFs,
    node: Arc<Node>,
    len: u64,
    frozen_from: u64,
    published: AtomicU64,
}

impl FaultRegion {
    fn check(&self, offset: u64, len: u64) -> io::Result<(usize, usize)> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok((offset as usize, end as usize)),
            _ => Err(io::Error::new(io::ErrorKind::InvalidInput, "range outside the mapping")),
        }
    }
}

impl MappedRegion for FaultRegion {
    fn len(&self) -> u64 {
        self.len
    }

    fn published(&self) -> u64 {
        self.published.load(Ordering::Acquire)
    }

    fn publish(&self, end: u64) -> io::Result<()> {
        let _images = self.node.data.lock();
        if end < self.published.load(Ordering::Relaxed) || end > self.len {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "publish out of order"));
        }
        self.published.store(end, Ordering::Release);
        Ok(())
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let (from, to) = self.check(offset, buf.len() as u64)?;
        let images = self.node.data.lock();
        let src = images.live.get(from..to).ok_or_else(|| io::Error::other("file shrank under a mapping (SIGBUS)"))?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn read_with(&self, offset: u64, len: u64, f: &mut dyn FnMut(&[u8])) -> io::Result<()> {
        let (from, to) = self.check(offset, len)?;
        let images = self.node.data.lock();
        let src = images.live.get(from..to).ok_or_else(|| io::Error::other("file shrank under a mapping (SIGBUS)"))?;
        f(src);
        Ok(())
    }

    fn write(&self, offset: u64, parts: &[&[u8]]) -> io::Result<()> {
        let total: u64 = parts.iter().map(|p| p.len() as u64).sum();
        let (mut at, _) = self.check(offset, total)?;
        if self.fs.state.lock().fail_writes {
            return Err(io::Error::other("injected write failure (EIO)"));
        }
        let mut images = self.node.data.lock();
        let published = self.published.load(Ordering::Relaxed);
        if !(offset + total <= self.frozen_from || offset >= published) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "write into the frozen range"));
        }
        for part in parts {
            let dst = images
                .live
                .get_mut(at..at + part.len())
                .ok_or_else(|| io::Error::other("file shrank under a mapping (SIGBUS)"))?;
            dst.copy_from_slice(part);
            at += part.len();
        }
        Ok(())
    }

    fn flush(&self, offset: u64, len: u64) -> io::Result<()> {
        let (from, to) = self.check(offset, len)?;
        if from == to {
            return Ok(());
        }
        // Whole pages, like msync.
        let from = from / PAGE * PAGE;
        let to = to.div_ceil(PAGE) * PAGE;
        let failed = self.fs.check_sync();
        let short = failed.is_err() && self.fs.state.lock().short_write;
        let mut images = self.node.data.lock();
        let live_len = images.live.len();
        if images.durable.len() < live_len {
            images.durable.resize(live_len, 0);
        }
        let to = to.min(live_len);
        let to = if short { from + ((to - from) / PAGE / 2) * PAGE } else { to };
        if failed.is_ok() || short {
            let Images { live, durable } = &mut *images;
            durable[from..to].copy_from_slice(&live[from..to]);
        }
        failed
    }
}
