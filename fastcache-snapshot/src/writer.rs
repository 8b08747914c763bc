//! Writing a snapshot file: chunks are compressed and appended to a
//! temporary file beside the final one; `finish` appends the footer,
//! rewrites the header with the totals, fsyncs, renames the file into
//! place and fsyncs the directory.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Result, SnapshotError};
use crate::format::{self, ChunkEntry, Codec, Header, FRAME_HEADER_LEN, HEADER_LEN, MAX_CHUNK_LEN};

/// What a snapshot is consistent with. Both values are the caller's: the
/// crate reads no clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SnapshotMeta {
    /// The snapshot holds the effect of every WAL record up to and
    /// including this LSN, and of none after it.
    pub lsn: u64,
    /// When the snapshot was started, in milliseconds since the Unix epoch.
    pub created_unix_ms: u64,
}

/// What a file of this format holds. The container is the same; the kind
/// is a header flag (`docs/formats.md`), so a tool given only the file can
/// tell, and a build that predates incremental files refuses them
/// (`UnsupportedFlags`) rather than load change entries as a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SnapshotKind {
    /// A full snapshot: every key as it was at the file's LSN.
    #[default]
    Full,
    /// An incremental backup: the keys written or deleted after `from_lsn`
    /// up to the file's LSN, as they were at that LSN (the chunks hold the
    /// caller's change entries).
    Incremental {
        /// The LSN the previous backup of its chain is consistent at.
        from_lsn: u64,
    },
}

/// How to write a snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterOptions {
    /// The largest file the writer may produce, in bytes (header, chunks
    /// and footer). A chunk that would make the finished file larger fails
    /// with [`SnapshotError::TooLarge`] and aborts the snapshot. `None`:
    /// no limit.
    pub max_size: Option<u64>,
}

/// A snapshot file as written (by [`SnapshotWriter::finish`]) or as found
/// (by [`crate::SnapshotReader::open`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The file.
    pub path: PathBuf,
    /// Its LSN and creation time.
    pub meta: SnapshotMeta,
    /// A full snapshot or an incremental backup.
    pub kind: SnapshotKind,
    /// Entries in the snapshot: the sum of the chunks' entry counts.
    pub keys: u64,
    /// Chunks in the file.
    pub chunks: u32,
    /// Payload bytes before compression.
    pub raw_bytes: u64,
    /// The file's length.
    pub file_bytes: u64,
}

enum State {
    /// Writing; the temporary file exists.
    Open(File),
    /// Renamed into place.
    Finished,
    /// Aborted by an error (or `abort`); the temporary file is gone.
    Failed(String),
}

/// Writes one snapshot file. Not thread-safe by itself (`&mut self`); the
/// caller feeds chunks from one thread.
///
/// Dropping a writer that was not finished aborts it: the temporary file
/// is removed, nothing else is touched.
pub struct SnapshotWriter {
    state: State,
    path: PathBuf,
    tmp_path: PathBuf,
    meta: SnapshotMeta,
    kind: SnapshotKind,
    max_size: Option<u64>,
    index: Vec<ChunkEntry>,
    /// Where the next frame goes (= bytes written so far).
    offset: u64,
    keys: u64,
    raw_bytes: u64,
    /// Frame being built: header, then the stored bytes.
    buf: Vec<u8>,
}

impl std::fmt::Debug for SnapshotWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotWriter")
            .field("path", &self.path)
            .field("meta", &self.meta)
            .field("chunks", &self.index.len())
            .field("bytes", &self.offset)
            .finish_non_exhaustive()
    }
}

/// `path` with `.tmp` appended.
pub(crate) fn tmp_path_for(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Makes the directory's entries (creations, renames, removals) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| SnapshotError::io("fsync directory", dir, e))
}

impl SnapshotWriter {
    /// Starts a snapshot that will be published at `path` (the file is
    /// written as `path` + `.tmp` until [`SnapshotWriter::finish`]).
    /// [`crate::SnapshotStore::create`] picks the path in a store.
    ///
    /// # Errors
    /// `AlreadyExists` if `path` exists; `Io` if the temporary file cannot
    /// be created (also when it exists: another writer may be using it).
    pub fn create(path: &Path, meta: SnapshotMeta, opts: WriterOptions) -> Result<SnapshotWriter> {
        SnapshotWriter::create_kind(path, meta, SnapshotKind::Full, opts)
    }

    /// Like [`SnapshotWriter::create`], for an incremental backup file
    /// covering the records after `from_lsn` up to `meta.lsn` (the header
    /// says so; the chunks hold the caller's change entries).
    ///
    /// # Errors
    /// `InvalidArgument` if `from_lsn > meta.lsn`; otherwise as
    /// [`SnapshotWriter::create`].
    pub fn create_incremental(
        path: &Path,
        meta: SnapshotMeta,
        from_lsn: u64,
        opts: WriterOptions,
    ) -> Result<SnapshotWriter> {
        if from_lsn > meta.lsn {
            return Err(SnapshotError::InvalidArgument(format!(
                "an incremental file from LSN {from_lsn} cannot end at LSN {}",
                meta.lsn
            )));
        }
        SnapshotWriter::create_kind(path, meta, SnapshotKind::Incremental { from_lsn }, opts)
    }

    fn create_kind(path: &Path, meta: SnapshotMeta, kind: SnapshotKind, opts: WriterOptions) -> Result<SnapshotWriter> {
        if path.exists() {
            return Err(SnapshotError::AlreadyExists { path: path.to_path_buf() });
        }
        let tmp_path = tmp_path_for(path);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp_path)
            .map_err(|e| SnapshotError::io("create snapshot temp file", &tmp_path, e))?;
        // A provisional header (footer offset 0, which no reader accepts),
        // rewritten by `finish`: an unfinished file is never mistaken for
        // a snapshot, even if it were renamed by hand.
        let provisional =
            Header { lsn: meta.lsn, created_unix_ms: meta.created_unix_ms, keys: 0, footer_offset: 0, chunks: 0, kind };
        if let Err(e) = file.write_all(&provisional.encode()) {
            drop(file);
            let _ = std::fs::remove_file(&tmp_path);
            return Err(SnapshotError::io("write snapshot header", &tmp_path, e));
        }
        Ok(SnapshotWriter {
            state: State::Open(file),
            path: path.to_path_buf(),
            tmp_path,
            meta,
            kind,
            max_size: opts.max_size,
            index: Vec::new(),
            offset: HEADER_LEN as u64,
            keys: 0,
            raw_bytes: 0,
            buf: Vec::new(),
        })
    }

    /// The path the snapshot will have once finished.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes written so far (header and chunks; the footer comes at the end).
    pub fn bytes_written(&self) -> u64 {
        self.offset
    }

    /// Chunks written so far.
    pub fn chunks_written(&self) -> u32 {
        u32::try_from(self.index.len()).unwrap_or(u32::MAX)
    }

    /// Removes the temporary file and remembers why, so every later call
    /// fails with `Aborted`.
    fn fail(&mut self, cause: &SnapshotError) {
        if let State::Open(file) = std::mem::replace(&mut self.state, State::Failed(cause.to_string())) {
            drop(file);
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }

    fn file(&self) -> Result<&File> {
        match &self.state {
            State::Open(file) => Ok(file),
            State::Failed(cause) => Err(SnapshotError::Aborted { path: self.path.clone(), cause: cause.clone() }),
            State::Finished => {
                Err(SnapshotError::Aborted { path: self.path.clone(), cause: "already finished".into() })
            }
        }
    }

    /// Compresses `raw` (the encoded entries of one chunk; `entries` of
    /// them) and appends it as the next chunk. A chunk lz4 cannot shrink is
    /// stored as is.
    ///
    /// # Errors
    /// `ChunkTooLarge` for a payload over `u32::MAX` bytes (the writer stays
    /// usable). `TooLarge` if the finished file would exceed
    /// [`WriterOptions::max_size`]; `Io` if the write fails. Both abort the
    /// snapshot: the temporary file is removed and later calls fail with
    /// `Aborted`.
    pub fn write_chunk(&mut self, raw: &[u8], entries: u32) -> Result<()> {
        self.file()?;
        let raw_len = u32::try_from(raw.len())
            .map_err(|_| SnapshotError::ChunkTooLarge { len: raw.len() as u64, max: MAX_CHUNK_LEN as u64 })?;
        if self.index.len() >= u32::MAX as usize {
            return Err(SnapshotError::InvalidArgument("a snapshot holds at most u32::MAX chunks".into()));
        }

        // Compress into the frame buffer after room for the frame header.
        let capacity = FRAME_HEADER_LEN + lz4_flex::block::get_maximum_output_size(raw.len()).max(raw.len());
        if self.buf.len() < capacity {
            self.buf.resize(capacity, 0);
        }
        let (codec, stored_len) = match lz4_flex::block::compress_into(raw, &mut self.buf[FRAME_HEADER_LEN..capacity]) {
            Ok(n) if n < raw.len() => (Codec::Lz4, n),
            // Incompressible (or empty): store the payload as is.
            _ => {
                self.buf[FRAME_HEADER_LEN..FRAME_HEADER_LEN + raw.len()].copy_from_slice(raw);
                (Codec::Stored, raw.len())
            }
        };
        // stored_len ≤ raw.len() ≤ u32::MAX by the branches above.
        let stored_len32 = u32::try_from(stored_len).unwrap_or(u32::MAX);
        let frame_len = FRAME_HEADER_LEN + stored_len;

        let end = self.offset + frame_len as u64;
        let total = end + format::footer_len(self.index.len() as u64 + 1);
        if let Some(limit) = self.max_size {
            if total > limit {
                let err = SnapshotError::TooLarge { limit, written: total };
                self.fail(&err);
                return Err(err);
            }
        }

        let crc = ChunkEntry::seal_frame(stored_len32, raw_len, entries, codec, &mut self.buf[..frame_len]);
        let result = self.file().and_then(|mut file| {
            file.write_all(&self.buf[..frame_len]).map_err(|e| SnapshotError::io("write snapshot", &self.tmp_path, e))
        });
        if let Err(err) = result {
            self.fail(&err);
            return Err(err);
        }
        self.index.push(ChunkEntry { offset: self.offset, stored_len: stored_len32, raw_len, entries, codec, crc });
        self.offset = end;
        self.keys += u64::from(entries);
        self.raw_bytes += u64::from(raw_len);
        Ok(())
    }

    /// Completes the snapshot: appends the footer, rewrites the header with
    /// the totals (`pwrite` at offset 0), fsyncs the file, renames it into
    /// place and fsyncs the directory. Only then does the file exist under
    /// its final name; it still has to be published
    /// ([`crate::SnapshotStore::publish`]) to count.
    ///
    /// # Errors
    /// `Aborted` after an earlier error; `TooLarge` if the footer does not
    /// fit the limit; `AlreadyExists` if a file took the final name
    /// meanwhile; `Io`. On error nothing is left behind.
    pub fn finish(mut self) -> Result<SnapshotInfo> {
        match self.finish_inner() {
            Ok(info) => Ok(info),
            Err(err) => {
                self.fail(&err);
                Err(err)
            }
        }
    }

    fn finish_inner(&mut self) -> Result<SnapshotInfo> {
        let chunks = u32::try_from(self.index.len())
            .map_err(|_| SnapshotError::InvalidArgument("a snapshot holds at most u32::MAX chunks".into()))?;
        let footer = format::encode_footer(self.meta.lsn, self.keys, self.raw_bytes, &self.index);
        let file_bytes = self.offset + footer.len() as u64;
        if let Some(limit) = self.max_size {
            if file_bytes > limit {
                return Err(SnapshotError::TooLarge { limit, written: file_bytes });
            }
        }
        let header = Header {
            lsn: self.meta.lsn,
            created_unix_ms: self.meta.created_unix_ms,
            keys: self.keys,
            footer_offset: self.offset,
            chunks,
            kind: self.kind,
        };
        let tmp = &self.tmp_path;
        let mut file = self.file()?;
        file.write_all(&footer).map_err(|e| SnapshotError::io("write snapshot footer", tmp, e))?;
        file.write_all_at(&header.encode(), 0).map_err(|e| SnapshotError::io("write snapshot header", tmp, e))?;
        // NOTE: a failed fsync is never retried (the kernel may have dropped
        // the dirty pages); the snapshot is abandoned instead.
        file.sync_all().map_err(|e| SnapshotError::io("fsync snapshot", tmp, e))?;
        if self.path.exists() {
            return Err(SnapshotError::AlreadyExists { path: self.path.clone() });
        }
        std::fs::rename(tmp, &self.path).map_err(|e| SnapshotError::io("rename snapshot into place", tmp, e))?;
        self.state = State::Finished;
        if let Err(err) = sync_dir(parent_dir(&self.path)) {
            // The rename may not be durable; do not leave a file that looks
            // finished behind an error.
            let _ = std::fs::remove_file(&self.path);
            self.state = State::Failed(err.to_string());
            return Err(err);
        }
        Ok(SnapshotInfo {
            path: self.path.clone(),
            meta: self.meta,
            kind: self.kind,
            keys: self.keys,
            chunks,
            raw_bytes: self.raw_bytes,
            file_bytes,
        })
    }

    /// Abandons the snapshot and removes the temporary file (what dropping
    /// an unfinished writer does too).
    pub fn abort(mut self) {
        self.fail(&SnapshotError::InvalidArgument("aborted".into()));
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        if let State::Open(file) = std::mem::replace(&mut self.state, State::Finished) {
            drop(file);
            let _ = std::fs::remove_file(&self.tmp_path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> SnapshotMeta {
        SnapshotMeta { lsn: 42, created_unix_ms: 1_700_000_000_000 }
    }

    #[test]
    fn compressible_chunks_shrink_and_random_ones_are_stored() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| SnapshotError::io("tempdir", "", e))?;
        let path = dir.path().join("s.fcs");
        let mut w = SnapshotWriter::create(&path, meta(), WriterOptions::default())?;
        w.write_chunk(&[7u8; 10_000], 1)?;
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let random: Vec<u8> = (0..10_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        w.write_chunk(&random, 2)?;
        w.write_chunk(&[], 0)?;
        assert_eq!(w.index[0].codec, Codec::Lz4);
        assert!(w.index[0].stored_len < 1000);
        assert_eq!(w.index[1].codec, Codec::Stored);
        assert_eq!(w.index[2].codec, Codec::Stored);
        let info = w.finish()?;
        assert_eq!((info.keys, info.chunks, info.raw_bytes), (3, 3, 20_000));
        assert_eq!(std::fs::metadata(&path).map_err(|e| SnapshotError::io("stat", &path, e))?.len(), info.file_bytes);
        assert!(!tmp_path_for(&path).exists());
        Ok(())
    }

    #[test]
    fn an_unfinished_writer_leaves_nothing() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| SnapshotError::io("tempdir", "", e))?;
        let path = dir.path().join("s.fcs");
        let mut w = SnapshotWriter::create(&path, meta(), WriterOptions::default())?;
        w.write_chunk(b"abc", 1)?;
        assert!(tmp_path_for(&path).exists());
        drop(w);
        assert!(!tmp_path_for(&path).exists() && !path.exists());

        let w = SnapshotWriter::create(&path, meta(), WriterOptions::default())?;
        w.abort();
        assert!(!tmp_path_for(&path).exists() && !path.exists());
        Ok(())
    }

    #[test]
    fn an_existing_file_is_never_replaced() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| SnapshotError::io("tempdir", "", e))?;
        let path = dir.path().join("s.fcs");
        SnapshotWriter::create(&path, meta(), WriterOptions::default())?.finish()?;
        assert!(matches!(
            SnapshotWriter::create(&path, meta(), WriterOptions::default()),
            Err(SnapshotError::AlreadyExists { .. })
        ));
        Ok(())
    }
}
