//! The memory mapping of a segment file: the only `unsafe` code in the
//! workspace.
//!
//! # Soundness argument
//!
//! A [`MmapRegion`] maps `len` bytes of a segment file shared and writable
//! ([`memmap2::MmapRaw`], which only hands out raw pointers). Rust code
//! touches those bytes only through the methods below, which copy bytes in
//! and out (`read`, `write`) or lend a slice for the duration of one closure
//! call (`read_with`). A `write` is either a store into the mapping
//! (`WriteMode::Mmap`) or a `pwrite` into the page cache pages the mapping
//! shows (`WriteMode::File`; see `WriteMode` for when each is faster); for
//! the argument below the two are the same — bytes change under
//! `write_lock`, in ranges no lock-free reader looks at. No reference into the mapping escapes a method call,
//! so no slice can outlive the mapping, and the mapping (owned by the
//! region) is unmapped only when the region is dropped.
//!
//! Two things could still go wrong with a file mapping, and here is why
//! neither does:
//!
//! 1. **Data races inside this process.** The region splits its bytes in
//!    three parts: the header area `[0, frozen_from)`, the *frozen* range
//!    `[frozen_from, published)` and the open range `[published, len)`.
//!    `published` only grows (checked in `publish`). Every write holds
//!    `write_lock` and is refused unless it lies entirely in the header area
//!    or entirely in the open range, so the frozen range is never written
//!    after it was published. Reads of the frozen range go without the lock:
//!    the `Acquire` load of `published` pairs with the `Release` store in
//!    `publish`, which happens after every write into the range (writes and
//!    publish hold the same lock). Every other read holds `write_lock`. Hence
//!    no two accesses to one byte race, whatever the caller does.
//!
//! 2. **The file changing under the mapping** — another process truncating
//!    it (a later access would raise SIGBUS) or writing into it. The log
//!    directory is locked with `flock` (`LOCK`) before any segment is mapped,
//!    and each segment keeps the lock alive for as long as its mapping
//!    exists, so another FastCache process cannot open the log. This crate
//!    never shrinks a mapped file: segments are allocated to full size
//!    *before* they are mapped (`WalFile::allocate`), `MmapRegion::new`
//!    refuses to map past the end of the file, recovery "truncates" a torn
//!    tail by writing zeros, and retention unlinks whole files (an unlinked
//!    file stays valid for as long as it is mapped). Blocks are allocated up
//!    front, so a full disk shows up as `NoSpace` at allocation, not as a
//!    SIGBUS on a page fault. A process that ignores the lock (or a person
//!    truncating a segment by hand) is outside what any mapped file can
//!    defend against; every record is checksummed when it is read, so
//!    changed bytes are reported as corruption rather than trusted.
//!
//! Persistence is `msync(MS_SYNC)` over a byte range (`flush`), which on
//! Linux is `fdatasync` of that range: the data and the metadata needed to
//! read it back.

use std::fs::File;
use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};
use parking_lot::Mutex;

use crate::fs::{MappedRegion, WriteMode};

/// A shared, writable mapping of the first `len` bytes of a file. See the
/// module documentation for the rules that make it sound.
pub(crate) struct MmapRegion {
    map: MmapRaw,
    /// With `WriteMode::File`, writes are `pwrite`s through this handle
    /// into the page cache the mapping shows; otherwise stores into the
    /// mapping.
    file: Option<File>,
    len: u64,
    frozen_from: u64,
    /// End of the frozen range; only grows.
    published: AtomicU64,
    /// Held by every write and by every read outside the frozen range.
    write_lock: Mutex<()>,
}

impl MmapRegion {
    /// Maps `[0, len)` of `file`. `frozen_from` is where the frozen range
    /// starts (the segment header ends); nothing is frozen yet.
    ///
    /// # Errors
    /// `InvalidInput` if the file is shorter than `len` (mapping past its end
    /// would fault) or `frozen_from > len`; the OS error if `mmap` fails.
    pub(crate) fn new(
        file: &File,
        len: u64,
        frozen_from: u64,
        mode: WriteMode,
        populate: bool,
    ) -> io::Result<MmapRegion> {
        let file_len = file.metadata()?.len();
        if file_len < len || frozen_from > len || len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot map {len} bytes (frozen from {frozen_from}) of a {file_len}-byte file"),
            ));
        }
        let map_len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let mut options = MmapOptions::new();
        options.len(map_len);
        if populate {
            // Fault the pages in now (this runs off the hot path) instead of
            // on the first append to each page.
            options.populate();
        }
        let map = options.map_raw(file)?;
        if populate && mode == WriteMode::Mmap {
            // MAP_POPULATE maps the pages read-only: the first store into
            // each would still fault (`page_mkwrite`), inside the append's
            // locks, where the other appenders queue behind it. Fault them
            // in writable now. They become dirty zero pages; written back
            // before they are used (a spare kept for more than the kernel's
            // dirty expiry), they just fault again later. Best effort: an
            // older kernel without MADV_POPULATE_WRITE faults on first use.
            let _ = map.advise(memmap2::Advice::PopulateWrite);
        }
        let file = match mode {
            WriteMode::File => Some(file.try_clone()?),
            WriteMode::Mmap | WriteMode::Auto => None,
        };
        Ok(MmapRegion {
            map,
            file,
            len,
            frozen_from,
            published: AtomicU64::new(frozen_from),
            write_lock: Mutex::new(()),
        })
    }

    fn check_range(&self, offset: u64, len: u64) -> io::Result<(usize, usize)> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => {
                // `self.len` fits in usize (checked in `new`), so both do.
                Ok((offset as usize, len as usize))
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("range {offset}+{len} outside a {}-byte mapping", self.len),
            )),
        }
    }

    fn in_frozen(&self, offset: u64, len: u64) -> bool {
        offset >= self.frozen_from && offset + len <= self.published.load(Ordering::Acquire)
    }
}

impl MappedRegion for MmapRegion {
    fn len(&self) -> u64 {
        self.len
    }

    fn published(&self) -> u64 {
        self.published.load(Ordering::Acquire)
    }

    fn publish(&self, end: u64) -> io::Result<()> {
        let _guard = self.write_lock.lock();
        let current = self.published.load(Ordering::Relaxed);
        if end < current || end > self.len {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("publish {end}: must be within {current}..={}", self.len),
            ));
        }
        self.published.store(end, Ordering::Release);
        Ok(())
    }

    fn read(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let (start, len) = self.check_range(offset, buf.len() as u64)?;
        let _guard = if self.in_frozen(offset, len as u64) { None } else { Some(self.write_lock.lock()) };
        // SAFETY: `start + len ≤ self.len`, the mapped length, so the source
        // is inside the live mapping (owned by `self`, so still mapped).
        // Either the range is frozen (never written again, see the module
        // docs) or we hold `write_lock`, which every writer holds: no write
        // races this read. `buf` is a distinct Rust allocation, so the
        // ranges do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(self.map.as_ptr().add(start), buf.as_mut_ptr(), len);
        }
        Ok(())
    }

    fn read_with(&self, offset: u64, len: u64, f: &mut dyn FnMut(&[u8])) -> io::Result<()> {
        let (start, len) = self.check_range(offset, len)?;
        let _guard = if self.in_frozen(offset, len as u64) { None } else { Some(self.write_lock.lock()) };
        // SAFETY: in bounds of the live mapping as in `read`. The slice lives
        // only for the call to `f` (it cannot escape: `f` receives it with a
        // lifetime local to this call), while the mapping is kept alive by
        // `&self`. For its duration no write touches these bytes: they are
        // frozen, or we hold `write_lock` and `f` cannot write to the region
        // without it (a write from inside `f` would deadlock, not race).
        let bytes = unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(start), len) };
        f(bytes);
        Ok(())
    }

    fn write(&self, offset: u64, parts: &[&[u8]]) -> io::Result<()> {
        let total: u64 = parts.iter().map(|p| p.len() as u64).sum();
        let (start, _) = self.check_range(offset, total)?;
        let _guard = self.write_lock.lock();
        let published = self.published.load(Ordering::Relaxed);
        if !(offset + total <= self.frozen_from || offset >= published) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("write {offset}+{total} would overlap the frozen range {}..{published}", self.frozen_from),
            ));
        }
        if let Some(file) = &self.file {
            // The kernel copies into the page cache pages this mapping
            // shows, under the same lock and range rules as a store would.
            return pwrite_all(file, parts, offset);
        }
        let mut at = start;
        for part in parts {
            // SAFETY: `at + part.len() ≤ start + total ≤ self.len` (checked
            // above), so the destination is inside the live mapping. We hold
            // `write_lock` and the range lies outside the frozen range, so no
            // lock-free reader looks at it and every other access waits for
            // the lock. `part` is caller memory, not the mapping (nothing
            // hands out references into it), so the ranges do not overlap.
            unsafe {
                std::ptr::copy_nonoverlapping(part.as_ptr(), self.map.as_mut_ptr().add(at), part.len());
            }
            at += part.len();
        }
        Ok(())
    }

    fn flush(&self, offset: u64, len: u64) -> io::Result<()> {
        let (start, len) = self.check_range(offset, len)?;
        if len == 0 {
            return Ok(());
        }
        self.map.flush_range(start, len)
    }
}

/// `pwritev` of all of `parts` at `offset`: one system call in practice,
/// `pwrite`s of the rest after a short write.
fn pwrite_all(file: &File, parts: &[&[u8]], offset: u64) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut slices = [IoSlice::new(&[]); 4];
    let used = parts.len().min(slices.len());
    for (slot, part) in slices.iter_mut().zip(parts) {
        *slot = IoSlice::new(part);
    }
    let mut done = loop {
        match rustix::io::pwritev(file, &slices[..used], offset) {
            Ok(n) => break n,
            Err(e) if e == rustix::io::Errno::INTR => continue,
            Err(e) => return Err(e.into()),
        }
    };
    let mut at = offset;
    for part in parts {
        let skip = done.min(part.len());
        done -= skip;
        if skip < part.len() {
            file.write_all_at(&part[skip..], at + skip as u64)?;
        }
        at += part.len() as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(len: u64, mode: WriteMode) -> io::Result<(tempfile::TempDir, MmapRegion)> {
        let dir = tempfile::tempdir()?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("f"))?;
        file.set_len(len)?;
        let region = MmapRegion::new(&file, len, 64, mode, false)?;
        Ok((dir, region))
    }

    #[test]
    fn frozen_range_is_read_only_and_header_stays_writable() -> io::Result<()> {
        for mode in [WriteMode::File, WriteMode::Mmap] {
            frozen_range_rules(mode)?;
        }
        Ok(())
    }

    fn frozen_range_rules(mode: WriteMode) -> io::Result<()> {
        let (_dir, r) = region(8192, mode)?;
        r.write(64, &[b"abc", b"def"])?;
        r.publish(70)?;
        let mut buf = [0u8; 6];
        r.read(64, &mut buf)?;
        assert_eq!(&buf, b"abcdef");
        assert!(r.write(66, &[b"x"]).is_err(), "frozen bytes cannot be rewritten");
        assert!(r.write(60, &[b"xxxxxxxx"]).is_err(), "a write straddling into the frozen range is refused");
        r.write(0, &[b"hdr"])?;
        r.write(70, &[b"more"])?;
        assert!(r.publish(69).is_err(), "published never shrinks");
        assert!(r.publish(8193).is_err());
        let mut seen = Vec::new();
        r.read_with(64, 10, &mut |b| seen.extend_from_slice(b))?;
        assert_eq!(seen, b"abcdefmore");
        r.flush(0, 8192)?;
        assert!(r.read(8190, &mut buf).is_err(), "reads past the end are refused");
        assert!(r.read(u64::MAX, &mut buf).is_err());
        Ok(())
    }

    #[test]
    fn refuses_to_map_past_the_end_of_the_file() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.path().join("f"))?;
        file.set_len(4096)?;
        assert!(MmapRegion::new(&file, 8192, 64, WriteMode::File, false).is_err());
        Ok(())
    }
}
