//! Reading a snapshot file: `open` checks the header and the footer (a
//! few hundred bytes to a few hundred KiB), chunk reads check each chunk's
//! checksum, its agreement with the index and its decompressed length.
//! Chunks are read with `pread` (`read_exact_at`), so any number of threads
//! can read one `SnapshotReader` at once.

use std::convert::Infallible;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::error::{LoadError, Result, SnapshotError};
use crate::format::{self, ChunkEntry, Codec, Header, FRAME_HEADER_LEN, HEADER_LEN};
use crate::writer::{SnapshotInfo, SnapshotMeta};

/// An open snapshot file whose header and footer verified. `Send + Sync`.
pub struct SnapshotReader {
    file: File,
    info: SnapshotInfo,
    index: Vec<ChunkEntry>,
}

impl std::fmt::Debug for SnapshotReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotReader").field("info", &self.info).finish_non_exhaustive()
    }
}

/// What a complete [`SnapshotReader::load_parallel`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadStats {
    /// Chunks handed to the closure (all of them).
    pub chunks: u32,
    /// Sum of their entry counts (the snapshot's key count).
    pub entries: u64,
    /// Payload bytes handed to the closure.
    pub raw_bytes: u64,
    /// Worker threads used, the calling thread included.
    pub threads: usize,
    /// Wall-clock time of the load.
    pub elapsed: Duration,
}

/// A worker's reusable buffers.
#[derive(Default)]
struct ChunkBufs {
    frame: Vec<u8>,
    raw: Vec<u8>,
}

impl SnapshotReader {
    /// Opens `path` and checks its header (magic, version, checksum), its
    /// length against the header, and its footer (checksum, agreement with
    /// the header, chunk frames tiling the file, totals adding up). Chunks
    /// are not read.
    ///
    /// # Errors
    /// `Io` if the file cannot be opened or read (`NotFound` included);
    /// `BadMagic`, `UnsupportedVersion`, `UnsupportedFlags`,
    /// `ChecksumMismatch`, `Truncated`, `Corrupted` for damaged bytes.
    pub fn open(path: &Path) -> Result<SnapshotReader> {
        let file = File::open(path).map_err(|e| SnapshotError::io("open snapshot", path, e))?;
        let len = file.metadata().map_err(|e| SnapshotError::io("stat snapshot", path, e))?.len();
        if len < HEADER_LEN as u64 {
            return Err(SnapshotError::Truncated { file: path.into(), len, expected: HEADER_LEN as u64 });
        }
        let mut hb = [0u8; HEADER_LEN];
        file.read_exact_at(&mut hb, 0).map_err(|e| SnapshotError::io("read snapshot header", path, e))?;
        let header = Header::decode(path, &hb)?;
        let expected = header.file_len().ok_or_else(|| {
            SnapshotError::corrupted(path, 40, format!("footer offset {} overflows", header.footer_offset))
        })?;
        if len < expected {
            return Err(SnapshotError::Truncated { file: path.into(), len, expected });
        }
        if len > expected {
            return Err(SnapshotError::corrupted(
                path,
                expected,
                format!("{} bytes after the end of the footer", len - expected),
            ));
        }
        // Bounded by the file's length, checked above.
        let mut fb = vec![0u8; (expected - header.footer_offset) as usize];
        file.read_exact_at(&mut fb, header.footer_offset)
            .map_err(|e| SnapshotError::io("read snapshot footer", path, e))?;
        let footer = format::decode_footer(path, &header, &fb)?;
        let info = SnapshotInfo {
            path: path.to_path_buf(),
            meta: SnapshotMeta { lsn: header.lsn, created_unix_ms: header.created_unix_ms },
            kind: header.kind,
            keys: header.keys,
            chunks: header.chunks,
            raw_bytes: footer.raw_bytes,
            file_bytes: len,
        };
        Ok(SnapshotReader { file, info, index: footer.index })
    }

    /// The snapshot's LSN, counts and sizes, from its header and footer.
    pub fn info(&self) -> &SnapshotInfo {
        &self.info
    }

    /// Reads chunk `i`, checks it and returns its payload (in one of `bufs`).
    fn read_chunk<'b>(&self, i: u32, bufs: &'b mut ChunkBufs) -> Result<&'b [u8]> {
        let path = &self.info.path;
        let entry = self
            .index
            .get(i as usize)
            .ok_or_else(|| SnapshotError::InvalidArgument(format!("chunk {i} of {} does not exist", path.display())))?;
        let ChunkBufs { frame, raw } = bufs;
        // frame_len ≤ the file's length, which was read into memory-sized
        // integers when the footer was checked.
        let frame_len = usize::try_from(entry.frame_len())
            .map_err(|_| SnapshotError::corrupted(path, entry.offset, "chunk larger than the address space"))?;
        frame.resize(frame_len, 0);
        self.file.read_exact_at(frame, entry.offset).map_err(|e| SnapshotError::io("read snapshot chunk", path, e))?;
        let stored = entry.check_frame(path, i, frame)?;
        match entry.codec {
            Codec::Stored => Ok(stored),
            Codec::Lz4 => {
                raw.resize(entry.raw_len as usize, 0);
                let data_at = entry.offset + FRAME_HEADER_LEN as u64;
                let n = lz4_flex::block::decompress_into(stored, raw).map_err(|e| {
                    SnapshotError::corrupted(path, data_at, format!("chunk {i}: lz4 block does not decode: {e}"))
                })?;
                if n != raw.len() {
                    return Err(SnapshotError::corrupted(
                        path,
                        data_at,
                        format!("chunk {i}: decompressed to {n} bytes, the index says {}", entry.raw_len),
                    ));
                }
                Ok(&raw[..n])
            }
        }
    }

    /// Reads every chunk and checks every checksum and length, on the
    /// calling thread, without handing the payloads anywhere (start-up
    /// checks, `/health`). [`SnapshotReader::load_parallel`] does the same
    /// checks while loading, so a load need not be preceded by this.
    ///
    /// # Errors
    /// The first damaged chunk (`ChecksumMismatch`, `Corrupted`), or `Io`.
    pub fn verify(&self) -> Result<()> {
        match self.load_parallel_indexed(1, |_, _, _| Ok::<(), Infallible>(())) {
            Ok(_) => Ok(()),
            Err(LoadError::Snapshot(e)) => Err(e),
            Err(LoadError::Callback { error, .. }) => match error {},
        }
    }

    /// Reads, verifies and decompresses the chunks on `threads` threads
    /// (the calling thread is one of them; clamped to 1..=chunks) and calls
    /// `f(payload, entries)` for each, concurrently and in no particular
    /// order. Workers take the next chunk from a shared counter and read it
    /// with `pread`, so one slow chunk does not hold the others up.
    ///
    /// The first error — a damaged chunk or an error from `f` — wins: the
    /// other workers stop after the chunk they are on, and the error is
    /// returned. `f` may have been called for other chunks by then; the
    /// caller discards the partial load. `f` is never called with bytes
    /// that did not verify.
    pub fn load_parallel<E, F>(&self, threads: usize, f: F) -> std::result::Result<LoadStats, LoadError<E>>
    where
        E: Send,
        F: Fn(&[u8], u32) -> std::result::Result<(), E> + Sync,
    {
        self.load_parallel_indexed(threads, |_, raw, entries| f(raw, entries))
    }

    /// [`SnapshotReader::load_parallel`], with the chunk's index (its
    /// position in the file, from 0) as the closure's first argument:
    /// `f(index, payload, entries)`.
    pub fn load_parallel_indexed<E, F>(&self, threads: usize, f: F) -> std::result::Result<LoadStats, LoadError<E>>
    where
        E: Send,
        F: Fn(u32, &[u8], u32) -> std::result::Result<(), E> + Sync,
    {
        let start = Instant::now();
        let n = self.index.len();
        let threads = threads.clamp(1, n.max(1));
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let first_error: Mutex<Option<LoadError<E>>> = Mutex::new(None);

        let work = || {
            let mut bufs = ChunkBufs::default();
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                // i < n ≤ u32::MAX + 1 chunks (the count is a u32).
                let i = u32::try_from(i).unwrap_or(u32::MAX);
                let result = match self.read_chunk(i, &mut bufs) {
                    Ok(raw) => {
                        let entries = self.index.get(i as usize).map_or(0, |e| e.entries);
                        f(i, raw, entries).map_err(|error| LoadError::Callback {
                            file: self.info.path.clone(),
                            chunk: i,
                            error,
                        })
                    }
                    Err(e) => Err(LoadError::Snapshot(e)),
                };
                if let Err(e) = result {
                    stop.store(true, Ordering::Relaxed);
                    first_error.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(e);
                    break;
                }
            }
        };

        let mut used = 1;
        if threads == 1 {
            work();
        } else {
            std::thread::scope(|s| {
                for k in 1..threads {
                    // A thread that cannot be spawned is not an error: the
                    // others, the calling thread included, take its chunks.
                    let spawned = std::thread::Builder::new().name(format!("snapshot-load-{k}")).spawn_scoped(s, work);
                    if spawned.is_ok() {
                        used += 1;
                    }
                }
                work();
            });
        }

        if let Some(e) = first_error.into_inner().unwrap_or_else(PoisonError::into_inner) {
            return Err(e);
        }
        Ok(LoadStats {
            chunks: self.info.chunks,
            entries: self.info.keys,
            raw_bytes: self.info.raw_bytes,
            threads: used,
            elapsed: start.elapsed(),
        })
    }

    /// The chunks in file order, one at a time on the calling thread, each
    /// as `(payload, entries)`, verified like in `load_parallel`. After an
    /// error the iterator ends.
    pub fn chunks(&self) -> Chunks<'_> {
        Chunks { reader: self, next: 0, bufs: ChunkBufs::default(), done: false }
    }
}

/// The iterator of [`SnapshotReader::chunks`].
pub struct Chunks<'a> {
    reader: &'a SnapshotReader,
    next: u32,
    bufs: ChunkBufs,
    done: bool,
}

impl std::fmt::Debug for Chunks<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunks").field("file", &self.reader.info.path).field("next", &self.next).finish()
    }
}

impl Iterator for Chunks<'_> {
    type Item = Result<(Vec<u8>, u32)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.next >= self.reader.info.chunks {
            return None;
        }
        let i = self.next;
        self.next += 1;
        let entries = self.reader.index.get(i as usize).map_or(0, |e| e.entries);
        match self.reader.read_chunk(i, &mut self.bufs) {
            Ok(raw) => Some(Ok((raw.to_vec(), entries))),
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = if self.done { 0 } else { (self.reader.info.chunks - self.next) as usize };
        (0, Some(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::{SnapshotWriter, WriterOptions};

    fn send_sync<T: Send + Sync>() {}

    #[test]
    fn public_types_are_thread_safe() {
        send_sync::<SnapshotReader>();
        send_sync::<SnapshotError>();
        send_sync::<crate::SnapshotStore>();
        // A writer moves to the thread that writes the snapshot.
        fn send<T: Send>() {}
        send::<SnapshotWriter>();
    }

    #[test]
    fn an_empty_snapshot_round_trips() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| SnapshotError::io("tempdir", "", e))?;
        let path = dir.path().join("e.fcs");
        let meta = SnapshotMeta { lsn: 0, created_unix_ms: 5 };
        let info = SnapshotWriter::create(&path, meta, WriterOptions::default())?.finish()?;
        let r = SnapshotReader::open(&path)?;
        assert_eq!(r.info(), &info);
        assert_eq!(info.file_bytes, (HEADER_LEN + 44) as u64);
        r.verify()?;
        assert_eq!(r.chunks().count(), 0);
        // No chunk, so the closure (which would fail) is never called.
        let stats = r.load_parallel(4, |_, _| Err::<(), ()>(()));
        assert!(matches!(stats, Ok(LoadStats { chunks: 0, entries: 0, raw_bytes: 0, threads: 1, .. })), "{stats:?}");
        Ok(())
    }

    #[test]
    fn a_callback_error_stops_the_load() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| SnapshotError::io("tempdir", "", e))?;
        let path = dir.path().join("c.fcs");
        let mut w =
            SnapshotWriter::create(&path, SnapshotMeta { lsn: 1, created_unix_ms: 1 }, WriterOptions::default())?;
        for i in 0..50u32 {
            w.write_chunk(&i.to_le_bytes(), 1)?;
        }
        w.finish()?;
        let r = SnapshotReader::open(&path)?;
        let result = r.load_parallel_indexed(3, |i, raw, _| {
            assert_eq!(raw, i.to_le_bytes());
            if i == 10 {
                Err("bad entry")
            } else {
                Ok(())
            }
        });
        assert!(
            matches!(result, Err(LoadError::Callback { chunk: 10, error: "bad entry", .. })),
            "expected the callback's error, got {result:?}"
        );
        Ok(())
    }
}
