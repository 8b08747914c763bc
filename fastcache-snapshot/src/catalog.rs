//! A directory of snapshots and the `MANIFEST` that says which of them
//! count (`docs/formats.md`, "Snapshot manifest").
//!
//! ```text
//! MANIFEST                                         the published snapshots, newest first
//! MANIFEST.tmp                                     a manifest being written (removed at open)
//! snapshot-00000000000000052117-1700000000123.fcs  a snapshot: LSN, creation time (unix ms)
//! snapshot-…fcs.tmp                                a snapshot being written (removed at open)
//! snapshot-…fcs.bad                                a snapshot dropped as damaged (kept for people)
//! ```
//!
//! A snapshot file counts once the manifest names it: publishing is the
//! commit point, and the manifest is replaced atomically (temp file, fsync,
//! rename, fsync the directory). A finished but unpublished file is an
//! orphan, removed by the next publish once a newer snapshot is published.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use crate::error::{Result, SnapshotError};
use crate::format::{parse_snapshot_file_name, snapshot_file_name};
use crate::reader::SnapshotReader;
use crate::writer::{parent_dir, sync_dir, SnapshotInfo, SnapshotKind, SnapshotMeta, SnapshotWriter, WriterOptions};

/// Name of the manifest file in a store's directory.
pub const MANIFEST_FILE: &str = "MANIFEST";
/// How many snapshots a store keeps unless told otherwise.
pub const DEFAULT_RETAIN: usize = 2;

const MANIFEST_TMP: &str = "MANIFEST.tmp";
const MANIFEST_FIRST_LINE: &str = "FCSNAP-MANIFEST 1";
const MANIFEST_MAGIC: &str = "FCSNAP-MANIFEST ";

/// A published snapshot as the manifest describes it (no file is read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotEntry {
    /// The snapshot file (in the store's directory).
    pub path: PathBuf,
    /// The LSN the snapshot is consistent at.
    pub lsn: u64,
    /// Its creation time, milliseconds since the Unix epoch.
    pub created_unix_ms: u64,
    /// Entries (keys) it holds.
    pub keys: u64,
    /// The file's length.
    pub file_bytes: u64,
}

impl SnapshotEntry {
    fn name(&self) -> String {
        snapshot_file_name(self.lsn, self.created_unix_ms)
    }

    /// Newest first: higher LSN, then later creation.
    fn order_key(&self) -> (u64, u64) {
        (self.lsn, self.created_unix_ms)
    }
}

/// A directory of snapshot files with a manifest and a retention count
/// (`$PERSISTENCE_DIR/snapshots` for the server). `Send + Sync`; the
/// manifest's read-modify-write operations are serialized inside.
///
/// # Invariants
/// - The manifest names only complete, fsynced files in this directory,
///   newest first, at most `retain` of them.
/// - A file is deleted only after a durable manifest stopped naming it.
///
/// One process at a time: the store takes no lock of its own (the server
/// holds the WAL's directory lock for the whole persistence directory).
#[derive(Debug)]
pub struct SnapshotStore {
    dir: PathBuf,
    retain: usize,
    removed_on_open: Vec<PathBuf>,
    /// Serializes manifest updates (publish, drop, rebuild).
    manifest_lock: Mutex<()>,
}

impl SnapshotStore {
    /// Opens the store in `dir`, creating the directory if missing, and
    /// removes the temporary files an interrupted snapshot or manifest
    /// update left (`snapshot-*.fcs.tmp`, `MANIFEST.tmp`). `retain` (at
    /// least 1) is how many published snapshots to keep.
    ///
    /// # Errors
    /// `InvalidArgument` for `retain == 0`; `Io`.
    pub fn open(dir: &Path, retain: usize) -> Result<SnapshotStore> {
        if retain == 0 {
            return Err(SnapshotError::InvalidArgument("a snapshot store must retain at least 1 snapshot".into()));
        }
        std::fs::create_dir_all(dir).map_err(|e| SnapshotError::io("create snapshot directory", dir, e))?;
        let mut removed = Vec::new();
        for name in list_dir(dir)? {
            let ours = name == MANIFEST_TMP
                || name.strip_suffix(".tmp").is_some_and(|n| parse_snapshot_file_name(n).is_some());
            if ours {
                let path = dir.join(&name);
                match std::fs::remove_file(&path) {
                    Ok(()) => removed.push(path),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(SnapshotError::io("remove stray temp file", path, e)),
                }
            }
        }
        if !removed.is_empty() {
            sync_dir(dir)?;
        }
        Ok(SnapshotStore { dir: dir.to_path_buf(), retain, removed_on_open: removed, manifest_lock: Mutex::new(()) })
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many published snapshots are kept.
    pub fn retain(&self) -> usize {
        self.retain
    }

    /// The path of the manifest.
    pub fn manifest_path(&self) -> PathBuf {
        self.dir.join(MANIFEST_FILE)
    }

    /// The temporary files [`SnapshotStore::open`] removed (for the log).
    pub fn removed_on_open(&self) -> &[PathBuf] {
        &self.removed_on_open
    }

    /// The published snapshots, newest first, as the manifest lists them
    /// (empty if there is no manifest yet). Reads no snapshot file: use
    /// [`SnapshotStore::open_snapshot`] to open and check one.
    ///
    /// # Errors
    /// `Corrupted` (naming the manifest and the byte offset) if the
    /// manifest does not parse or its checksum fails,
    /// `UnsupportedVersion` for a manifest from a newer writer, `Io`.
    /// [`SnapshotStore::rebuild_manifest`] repairs a damaged manifest.
    pub fn list(&self) -> Result<Vec<SnapshotEntry>> {
        read_manifest(&self.dir)
    }

    /// Opens a listed snapshot (header and footer checked, see
    /// [`SnapshotReader::open`]) and checks it is the file the manifest
    /// describes.
    ///
    /// # Errors
    /// `MissingSnapshot` if the file is gone; `Corrupted` if it is not the
    /// one the manifest describes (an incremental backup file under a
    /// snapshot's name included); whatever `SnapshotReader::open` reports.
    pub fn open_snapshot(&self, entry: &SnapshotEntry) -> Result<SnapshotReader> {
        let reader = match SnapshotReader::open(&entry.path) {
            Err(SnapshotError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                return Err(SnapshotError::MissingSnapshot { manifest: self.manifest_path(), file: entry.path.clone() })
            }
            other => other?,
        };
        let info = reader.info();
        if let SnapshotKind::Incremental { from_lsn } = info.kind {
            return Err(SnapshotError::corrupted(
                &entry.path,
                0,
                format!("an incremental backup file (LSNs {from_lsn}..{}), not a snapshot", info.meta.lsn),
            ));
        }
        let found = (info.meta.lsn, info.meta.created_unix_ms, info.keys, info.file_bytes);
        let listed = (entry.lsn, entry.created_unix_ms, entry.keys, entry.file_bytes);
        if found != listed {
            return Err(SnapshotError::corrupted(
                &entry.path,
                0,
                format!(
                    "file (lsn, created, keys, bytes) = {found:?} does not match the manifest's {listed:?} in {}",
                    self.manifest_path().display()
                ),
            ));
        }
        Ok(reader)
    }

    /// Starts a snapshot in this store, named
    /// `snapshot-{lsn:020}-{created_unix_ms}.fcs`. It counts once
    /// [`SnapshotStore::publish`]ed.
    ///
    /// # Errors
    /// As [`SnapshotWriter::create`]: `AlreadyExists` for a second
    /// snapshot with the same LSN and creation time.
    pub fn create(&self, meta: SnapshotMeta, opts: WriterOptions) -> Result<SnapshotWriter> {
        SnapshotWriter::create(&self.dir.join(snapshot_file_name(meta.lsn, meta.created_unix_ms)), meta, opts)
    }

    /// Makes a finished snapshot of this store count: adds it to the
    /// manifest (written atomically), keeps the `retain` newest there, then
    /// deletes the snapshot files the manifest no longer names that are
    /// older than its newest one (those it dropped now, and orphans of
    /// earlier crashes). Returns the deleted paths. Publishing a snapshot
    /// twice is harmless.
    ///
    /// A snapshot older than the `retain` newest is deleted at once. A file
    /// that cannot be deleted is left and tried again by the next publish:
    /// once the manifest is written, the snapshot is published and `publish`
    /// returns `Ok`.
    ///
    /// # Errors
    /// `InvalidArgument` if `info` is not a full snapshot of this
    /// directory; `MissingSnapshot` if its file is gone; `Corrupted` if the
    /// current manifest is damaged (nothing is changed then:
    /// [`SnapshotStore::rebuild_manifest`] first); `Io`.
    pub fn publish(&self, info: &SnapshotInfo) -> Result<Vec<PathBuf>> {
        self.publish_with(info, false)
    }

    /// Publishes `info` as the *only* snapshot: the manifest names it alone
    /// and every other snapshot file of the directory is deleted, also ones
    /// with higher LSNs. For a replica that adopted its primary's history
    /// (a full resynchronisation): its older snapshots belong to another
    /// history and must never be recovered from. Errors as
    /// [`SnapshotStore::publish`].
    pub fn publish_only(&self, info: &SnapshotInfo) -> Result<Vec<PathBuf>> {
        self.publish_with(info, true)
    }

    fn publish_with(&self, info: &SnapshotInfo, only: bool) -> Result<Vec<PathBuf>> {
        let _guard = self.manifest_lock.lock().unwrap_or_else(PoisonError::into_inner);
        let name = self.own_name(&info.path)?;
        if info.kind != SnapshotKind::Full {
            return Err(SnapshotError::InvalidArgument(format!(
                "{} is an incremental backup file; a snapshot store publishes full snapshots only",
                info.path.display()
            )));
        }
        let len = match std::fs::metadata(&info.path) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SnapshotError::MissingSnapshot { manifest: self.manifest_path(), file: info.path.clone() })
            }
            Err(e) => return Err(SnapshotError::io("stat snapshot", &info.path, e)),
        };
        if len != info.file_bytes {
            return Err(SnapshotError::corrupted(
                &info.path,
                len.min(info.file_bytes),
                format!("file has {len} bytes, its writer wrote {}", info.file_bytes),
            ));
        }
        let mut entries = if only { Vec::new() } else { read_manifest(&self.dir)? };
        entries.retain(|e| e.name() != name);
        entries.push(SnapshotEntry {
            path: info.path.clone(),
            lsn: info.meta.lsn,
            created_unix_ms: info.meta.created_unix_ms,
            keys: info.keys,
            file_bytes: info.file_bytes,
        });
        entries.sort_by_key(|e| std::cmp::Reverse(e.order_key()));
        entries.truncate(self.retain);
        write_manifest(&self.dir, &entries)?;

        // The snapshot is published. What follows is clean-up, best
        // effort: whatever fails here is retried by the next publish.
        Ok(self.sweep(&entries, only))
    }

    /// Deletes the snapshot files `entries` (the new manifest) does not
    /// name, up to its newest snapshot: anything newer may be a snapshot
    /// finished but not yet published. Returns what was deleted.
    /// With `all`, newer files go too (`publish_only`).
    fn sweep(&self, entries: &[SnapshotEntry], all: bool) -> Vec<PathBuf> {
        let newest = entries.first().map(SnapshotEntry::order_key).unwrap_or_default();
        let mut deleted = Vec::new();
        for file in list_dir(&self.dir).unwrap_or_default() {
            let Some(key) = parse_snapshot_file_name(&file) else { continue };
            if (all || key < newest) && !entries.iter().any(|e| e.name() == file) {
                let path = self.dir.join(&file);
                if std::fs::remove_file(&path).is_ok() {
                    deleted.push(path);
                }
            }
        }
        if !deleted.is_empty() {
            // Not needed for correctness: a deletion lost to a crash leaves
            // an orphan the next publish removes.
            let _ = sync_dir(&self.dir);
        }
        deleted.sort();
        deleted
    }

    /// Removes a damaged snapshot from the manifest (atomically, first) and
    /// renames its file to `<name>.bad`, so that [`SnapshotStore::list`]
    /// offers the previous one. Returns the new path of the file, `None`
    /// if it was already gone. `.bad` files are never deleted by the store.
    ///
    /// # Errors
    /// `InvalidArgument` if `path` is not a snapshot of this directory;
    /// `Corrupted` if the manifest is damaged; `Io`.
    pub fn drop_snapshot(&self, path: &Path) -> Result<Option<PathBuf>> {
        let _guard = self.manifest_lock.lock().unwrap_or_else(PoisonError::into_inner);
        let name = self.own_name(path)?;
        let mut entries = read_manifest(&self.dir)?;
        let before = entries.len();
        entries.retain(|e| e.name() != name);
        if entries.len() != before {
            write_manifest(&self.dir, &entries)?;
        }
        let from = self.dir.join(&name);
        let to = self.dir.join(format!("{name}.bad"));
        match std::fs::rename(&from, &to) {
            Ok(()) => {
                sync_dir(&self.dir)?;
                Ok(Some(to))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(SnapshotError::io("rename damaged snapshot", from, e)),
        }
    }

    /// Rewrites the manifest from the full snapshot files in the directory
    /// whose header and footer verify (chunks are not read), newest first,
    /// at most `retain` of them; files that do not open are left where they
    /// are and not listed. The repair for a damaged or lost manifest, for
    /// start-up (while no snapshot is being written: a finished but
    /// unpublished file would be listed). Returns the new list.
    ///
    /// # Errors
    /// `Io` (listing the directory, reading a file, writing the manifest).
    pub fn rebuild_manifest(&self) -> Result<Vec<SnapshotEntry>> {
        let _guard = self.manifest_lock.lock().unwrap_or_else(PoisonError::into_inner);
        let mut entries = Vec::new();
        for file in list_dir(&self.dir)? {
            if parse_snapshot_file_name(&file).is_none() {
                continue;
            }
            let path = self.dir.join(&file);
            match SnapshotReader::open(&path) {
                Ok(reader) => {
                    let info = reader.info();
                    // The name must agree with the header, or the file was renamed by hand.
                    if parse_snapshot_file_name(&file) != Some((info.meta.lsn, info.meta.created_unix_ms))
                        || info.kind != SnapshotKind::Full
                    {
                        continue;
                    }
                    entries.push(SnapshotEntry {
                        path,
                        lsn: info.meta.lsn,
                        created_unix_ms: info.meta.created_unix_ms,
                        keys: info.keys,
                        file_bytes: info.file_bytes,
                    });
                }
                Err(e) if e.is_corruption() => {}
                Err(e) => return Err(e),
            }
        }
        entries.sort_by_key(|e| std::cmp::Reverse(e.order_key()));
        entries.truncate(self.retain);
        write_manifest(&self.dir, &entries)?;
        Ok(entries)
    }

    /// The file name of `path` if it is a snapshot name in this directory.
    fn own_name(&self, path: &Path) -> Result<String> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        if parse_snapshot_file_name(name).is_none() || parent_dir(path) != self.dir.as_path() {
            return Err(SnapshotError::InvalidArgument(format!(
                "{} is not a snapshot file of the store in {}",
                path.display(),
                self.dir.display()
            )));
        }
        Ok(name.to_owned())
    }
}

/// Names (not paths) of the entries of `dir`; names that are not UTF-8
/// are not ours and are skipped.
fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| SnapshotError::io("list snapshot directory", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| SnapshotError::io("list snapshot directory", dir, e))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    Ok(names)
}

/// The manifest's text for `entries` (newest first).
// Format: "FCSNAP-MANIFEST 1\n" { "<file> <lsn> <created_ms> <keys> <file_bytes>\n" }*
//         "crc32c <8 hex digits of the crc32c of every byte before this line>\n"
fn encode_manifest(entries: &[SnapshotEntry]) -> String {
    let mut s = format!("{MANIFEST_FIRST_LINE}\n");
    for e in entries {
        s.push_str(&format!("{} {} {} {} {}\n", e.name(), e.lsn, e.created_unix_ms, e.keys, e.file_bytes));
    }
    crate::checked_text::seal(s)
}

/// Parses a manifest; every error names `file` and the offset of the line.
fn decode_manifest(dir: &Path, file: &Path, bytes: &[u8]) -> Result<Vec<SnapshotEntry>> {
    use crate::checked_text::{open, Problem};
    let bad = |offset: usize, reason: String| SnapshotError::corrupted(file, offset as u64, reason);
    let (lines, mut at) =
        open(bytes, MANIFEST_FIRST_LINE, MANIFEST_MAGIC, "snapshot manifest").map_err(|p| match p {
            Problem::UnsupportedVersion(version) => SnapshotError::UnsupportedVersion { file: file.into(), version },
            Problem::Corrupted { offset, reason } => bad(offset, reason),
        })?;
    let mut entries: Vec<SnapshotEntry> = Vec::new();
    for line in lines.split_terminator('\n') {
        let fields: Vec<&str> = line.split(' ').collect();
        let parsed = match fields.as_slice() {
            [name, lsn, created, keys, bytes] => parse_snapshot_file_name(name).and_then(|(n_lsn, n_created)| {
                let e = SnapshotEntry {
                    path: dir.join(name),
                    lsn: lsn.parse().ok()?,
                    created_unix_ms: created.parse().ok()?,
                    keys: keys.parse().ok()?,
                    file_bytes: bytes.parse().ok()?,
                };
                (e.lsn == n_lsn && e.created_unix_ms == n_created).then_some(e)
            }),
            _ => None,
        };
        let e = parsed.ok_or_else(|| bad(at, format!("bad entry {line:?}")))?;
        if let Some(prev) = entries.last() {
            if e.order_key() >= prev.order_key() {
                return Err(bad(at, format!("entry {line:?} is not older than the one before it")));
            }
        }
        entries.push(e);
        at += line.len() + 1;
    }
    Ok(entries)
}

fn read_manifest(dir: &Path) -> Result<Vec<SnapshotEntry>> {
    let path = dir.join(MANIFEST_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => decode_manifest(dir, &path, &bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(SnapshotError::io("read snapshot manifest", path, e)),
    }
}

/// Replaces the manifest atomically (`checked_text::write_file`: temp file
/// `MANIFEST.tmp`, fsync, rename, fsync the directory). A crash leaves
/// either the old or the new manifest.
fn write_manifest(dir: &Path, entries: &[SnapshotEntry]) -> Result<()> {
    let path = dir.join(MANIFEST_FILE);
    crate::checked_text::write_file(&path, &encode_manifest(entries))
        .map_err(|e| SnapshotError::io("write manifest", &path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(lsn: u64, created: u64) -> SnapshotEntry {
        SnapshotEntry {
            path: Path::new("/d").join(snapshot_file_name(lsn, created)),
            lsn,
            created_unix_ms: created,
            keys: lsn * 10,
            file_bytes: 1000 + lsn,
        }
    }

    #[test]
    fn manifest_round_trips() -> Result<()> {
        let dir = Path::new("/d");
        let file = dir.join(MANIFEST_FILE);
        for entries in [vec![], vec![entry(9, 2)], vec![entry(9, 2), entry(9, 1), entry(3, 7)]] {
            let text = encode_manifest(&entries);
            assert_eq!(decode_manifest(dir, &file, text.as_bytes())?, entries);
        }
        let body = "FCSNAP-MANIFEST 1\nsnapshot-00000000000000000005-1.fcs 5 1 50 1005\n";
        assert_eq!(encode_manifest(&[entry(5, 1)]), format!("{body}crc32c {:08x}\n", crc32c::crc32c(body.as_bytes())));
        Ok(())
    }

    #[test]
    fn the_example_in_docs_formats_md_parses() -> Result<()> {
        let text = "FCSNAP-MANIFEST 1\n\
            snapshot-00000000000000052117-1700000000123.fcs 52117 1700000000123 1000000 48213377\n\
            snapshot-00000000000000041000-1699999990000.fcs 41000 1699999990000 998000 48101233\n\
            crc32c 339d4b8d\n";
        let entries = decode_manifest(Path::new("/d"), Path::new("/d/MANIFEST"), text.as_bytes())?;
        assert_eq!(entries.iter().map(|e| (e.lsn, e.keys)).collect::<Vec<_>>(), [(52117, 1_000_000), (41000, 998_000)]);
        Ok(())
    }

    #[test]
    fn every_damaged_manifest_is_refused() {
        let dir = Path::new("/d");
        let file = dir.join(MANIFEST_FILE);
        let good = encode_manifest(&[entry(9, 2), entry(3, 7)]).into_bytes();
        for len in 0..good.len() {
            assert!(decode_manifest(dir, &file, &good[..len]).is_err(), "truncated to {len}");
        }
        for i in 0..good.len() {
            for bit in 0..8 {
                let mut b = good.clone();
                b[i] ^= 1 << bit;
                let r = decode_manifest(dir, &file, &b);
                assert!(r.as_ref().is_err_and(SnapshotError::is_corruption), "flip {i}.{bit}: {r:?}");
            }
        }
        // A valid checksum over entries in the wrong order is refused too.
        let mut text = format!("{MANIFEST_FIRST_LINE}\n");
        for e in [entry(3, 7), entry(9, 2)] {
            text.push_str(&format!("{} {} {} {} {}\n", e.name(), e.lsn, e.created_unix_ms, e.keys, e.file_bytes));
        }
        let text = crate::checked_text::seal(text);
        assert!(matches!(decode_manifest(dir, &file, text.as_bytes()), Err(SnapshotError::Corrupted { .. })));
        assert!(matches!(
            decode_manifest(dir, &file, b"FCSNAP-MANIFEST 2\nwhatever\n"),
            Err(SnapshotError::UnsupportedVersion { version: 2, .. })
        ));
    }
}
