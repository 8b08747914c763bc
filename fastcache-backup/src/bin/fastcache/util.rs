//! Helpers shared by the subcommands: the layout of a data directory, the
//! read-only view of a snapshot manifest, writing an engine's state as a
//! snapshot, time and byte formatting, and key escaping.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use fastcache_core::Engine;
use fastcache_snapshot::{SnapshotEntry, SnapshotError, SnapshotInfo, SnapshotMeta, SnapshotStore, WriterOptions};
use fastcache_wal::{Lsn, Wal, WalOptions};

/// Raw bytes of entries per snapshot chunk (the server writes ~1 MiB).
pub const CHUNK_BYTES: usize = 1 << 20;

/// The parts of a data directory (`$PERSISTENCE_DIR`).
#[derive(Debug, Clone)]
pub struct DataDir {
    pub root: PathBuf,
    pub wal: PathBuf,
    pub snapshots: PathBuf,
}

impl DataDir {
    pub fn new(root: &Path) -> DataDir {
        DataDir { root: root.to_path_buf(), wal: root.join("wal"), snapshots: root.join("snapshots") }
    }

    /// Whether `root` looks like a data directory (has `wal/` or `snapshots/`).
    pub fn exists(&self) -> bool {
        self.wal.is_dir() || self.snapshots.is_dir()
    }

    /// Whether nothing of a data directory is there (missing or empty
    /// `wal/` and `snapshots/`, nothing else in `root`).
    pub fn is_empty(&self) -> Result<bool> {
        if !self.root.exists() {
            return Ok(true);
        }
        let entries = std::fs::read_dir(&self.root).with_context(|| format!("listing {}", self.root.display()))?;
        for e in entries {
            let e = e?;
            let p = e.path();
            if (p == self.wal || p == self.snapshots) && p.is_dir() {
                if std::fs::read_dir(&p)?.next().is_some() {
                    return Ok(false);
                }
                continue;
            }
            return Ok(false);
        }
        Ok(true)
    }

    /// The holder of the WAL's lock, if a process has the log open.
    pub fn lock_holder(&self) -> Result<Option<String>> {
        if !self.wal.is_dir() {
            return Ok(None);
        }
        if fastcache_wal::inspect::is_locked(&self.wal)? {
            let pid = std::fs::read_to_string(self.wal.join("LOCK")).unwrap_or_default();
            let pid = pid.trim();
            return Ok(Some(if pid.is_empty() { "an unknown process".into() } else { format!("pid {pid}") }));
        }
        Ok(None)
    }
}

/// What the manifest of a snapshot directory says, read without opening a
/// `SnapshotStore` on it (which would remove temporary files).
pub enum ManifestState {
    /// No `MANIFEST` file.
    Missing,
    /// Parsed and its checksum verified.
    Ok(Vec<SnapshotEntry>),
    /// Does not parse: the file, the byte offset and why.
    Damaged { offset: u64, reason: String },
}

/// Reads `dir/MANIFEST` without touching `dir`: the manifest is copied into
/// a scratch directory and parsed there by the snapshot crate's own parser.
pub fn read_manifest(dir: &Path) -> Result<ManifestState> {
    let manifest = dir.join(fastcache_snapshot::MANIFEST_FILE);
    let bytes = match std::fs::read(&manifest) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ManifestState::Missing),
        Err(e) => return Err(e).with_context(|| format!("reading {}", manifest.display())),
    };
    let scratch = Scratch::new("manifest")?;
    std::fs::write(scratch.path.join(fastcache_snapshot::MANIFEST_FILE), &bytes)?;
    let store = SnapshotStore::open(&scratch.path, usize::MAX)?;
    match store.list() {
        Ok(entries) => Ok(ManifestState::Ok(
            entries
                .into_iter()
                .map(|mut e| {
                    e.path = dir.join(e.path.file_name().unwrap_or_default());
                    e
                })
                .collect(),
        )),
        Err(SnapshotError::Corrupted { offset, reason, .. }) => Ok(ManifestState::Damaged { offset, reason }),
        Err(SnapshotError::UnsupportedVersion { version, .. }) => Ok(ManifestState::Damaged {
            offset: 0,
            reason: format!("manifest version {version} is not one this build reads"),
        }),
        Err(e) => Err(e.into()),
    }
}

/// A scratch directory removed on drop.
pub struct Scratch {
    pub path: PathBuf,
}

impl Scratch {
    pub fn new(what: &str) -> Result<Scratch> {
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("fastcache-cli-{what}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Scratch { path })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The snapshot files (`snapshot-*.fcs`) in `dir`, sorted by name, and the
/// other files (`.bad`, `.tmp`, unknown) by kind.
#[derive(Debug, Default)]
pub struct SnapshotFiles {
    pub snapshots: Vec<PathBuf>,
    pub bad: Vec<PathBuf>,
    pub tmp: Vec<PathBuf>,
    pub other: Vec<PathBuf>,
}

pub fn list_snapshot_files(dir: &Path) -> Result<SnapshotFiles> {
    let mut out = SnapshotFiles::default();
    if !dir.is_dir() {
        return Ok(out);
    }
    for e in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if name == fastcache_snapshot::MANIFEST_FILE {
            continue;
        }
        if name.starts_with("snapshot-") && name.ends_with(".fcs") {
            out.snapshots.push(path);
        } else if name.ends_with(".bad") {
            out.bad.push(path);
        } else if name.ends_with(".tmp") {
            out.tmp.push(path);
        } else {
            out.other.push(path);
        }
    }
    out.snapshots.sort();
    out.bad.sort();
    out.tmp.sort();
    out.other.sort();
    Ok(out)
}

/// The byte offset a snapshot error names, if any.
pub fn snapshot_error_offset(e: &SnapshotError) -> Option<u64> {
    match e {
        SnapshotError::BadMagic { offset, .. }
        | SnapshotError::ChecksumMismatch { offset, .. }
        | SnapshotError::Corrupted { offset, .. } => Some(*offset),
        SnapshotError::Truncated { len, .. } => Some(*len),
        SnapshotError::UnsupportedVersion { .. } | SnapshotError::UnsupportedFlags { .. } => Some(0),
        _ => None,
    }
}

/// Writes the whole of `engine` as a published snapshot at `lsn` into the
/// store in `dir` (created if missing).
pub fn write_engine_snapshot(
    engine: &Engine,
    dir: &Path,
    lsn: Lsn,
    mut progress: impl FnMut(usize, usize),
) -> Result<SnapshotInfo> {
    let store = SnapshotStore::open(dir, fastcache_snapshot::DEFAULT_RETAIN)?;
    let (mut cursor, ()) = engine.begin_snapshot(|| ()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let meta = SnapshotMeta { lsn, created_unix_ms: now_ms() };
    let mut writer = store.create(meta, WriterOptions::default())?;
    let mut chunk = Vec::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 4);
    while !cursor.is_done() {
        chunk.clear();
        let n = cursor.fill(&mut chunk, CHUNK_BYTES);
        let (done, total) = cursor.progress();
        progress(done, total);
        if n == 0 && chunk.is_empty() {
            continue;
        }
        writer.write_chunk(&chunk, n)?;
    }
    drop(cursor);
    let info = writer.finish()?;
    store.publish(&info)?;
    Ok(info)
}

/// An engine as the server makes it: `FASTCACHE_DATABASES` databases
/// (default 16).
pub fn new_engine() -> Engine {
    let databases = std::env::var("FASTCACHE_DATABASES").ok().and_then(|v| v.parse().ok()).unwrap_or(16);
    Engine::new(fastcache_core::EngineConfig { databases, ..fastcache_core::EngineConfig::default() })
}

/// Loads a snapshot file into `engine` (every chunk verified).
pub fn load_snapshot(engine: &Engine, path: &Path) -> Result<SnapshotInfo> {
    let reader = fastcache_snapshot::SnapshotReader::open(path)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    reader
        .load_parallel(threads, |raw, _| engine.load_snapshot_chunk(raw).map(|_| ()))
        .map_err(|e| anyhow::anyhow!("loading {}: {e}", path.display()))?;
    Ok(reader.info().clone())
}

/// Creates an empty WAL in `dir` whose first record will be `lsn + 1`.
pub fn create_empty_wal(dir: &Path, after: Lsn, segment_size: Option<u64>) -> Result<()> {
    let mut opts = WalOptions { min_next_lsn: after + 1, ..WalOptions::default() };
    if let Some(s) = segment_size {
        opts.segment_size = s;
    }
    let (wal, _) = Wal::open(dir, opts).with_context(|| format!("creating the WAL in {}", dir.display()))?;
    wal.close()?;
    Ok(())
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// `1700000000123` → `2023-11-14T22:13:20.123Z`.
pub fn rfc3339_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem / 60 % 60, rem % 60, ms % 1000)
}

/// Parses an RFC 3339 time (`2024-05-01T12:00:00Z`, fractions and `±hh:mm`
/// offsets allowed) into Unix milliseconds.
pub fn parse_rfc3339(s: &str) -> Result<u64> {
    let bad = || anyhow::anyhow!("{s:?} is not an RFC 3339 time such as 2024-05-01T12:00:00Z");
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64> {
        let t = s.get(r).ok_or_else(bad)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        t.parse::<i64>().map_err(|_| bad())
    };
    let (y, mo, d, h, mi, sec) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return Err(bad());
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
        let digits = &s[start..i];
        let ms3: String = digits.chars().chain("000".chars()).take(3).collect();
        frac_ms = ms3.parse().map_err(|_| bad())?;
    }
    let offset_min = match b.get(i) {
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if i + 6 == b.len() && b[i + 3] == b':' => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let o = oh * 60 + om;
            if sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return Err(bad()),
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    let ms = secs * 1000 + frac_ms;
    u64::try_from(ms).map_err(|_| anyhow::anyhow!("{s:?} is before 1970"))
}

// Howard Hinnant's algorithms (public domain).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `1536` → `1.5 KiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A key or argument for people: printable ASCII as is, the rest escaped
/// like redis-cli does (`\x00`, `\n`, `\"`), quoted when it needs escapes
/// or has spaces.
pub fn show_bytes(b: &[u8]) -> String {
    let plain = !b.is_empty() && b.iter().all(|&c| c.is_ascii_graphic() && c != b'"' && c != b'\\');
    if plain {
        return String::from_utf8_lossy(b).into_owned();
    }
    let mut s = String::from("\"");
    for &c in b {
        match c {
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            c if c.is_ascii_graphic() || c == b' ' => s.push(c as char),
            c => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push('"');
    s
}

/// Refuses unless `dir` is a new or empty data directory (or `force`).
pub fn require_empty(dir: &DataDir, force: bool, what: &str) -> Result<()> {
    if force || dir.is_empty()? {
        return Ok(());
    }
    bail!(
        "{} is not empty: {what} writes a new data directory and refuses to mix it with existing files \
         (choose an empty directory{})",
        dir.root.display(),
        if what == "restore" { ", or pass --force to replace what is there" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() -> Result<()> {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20.123Z")?, 1_700_000_000_123);
        assert_eq!(parse_rfc3339("2023-11-14T23:13:20.1+01:00")?, 1_700_000_000_100);
        assert_eq!(parse_rfc3339("2024-02-29T00:00:00Z")?, 1_709_164_800_000);
        assert!(parse_rfc3339("2024-02-29").is_err());
        assert!(parse_rfc3339("2024-13-01T00:00:00Z").is_err());
        Ok(())
    }

    #[test]
    fn bytes_are_shown_escaped() {
        assert_eq!(show_bytes(b"user:1"), "user:1");
        assert_eq!(show_bytes(b"a b"), "\"a b\"");
        assert_eq!(show_bytes(b"\x00\n"), "\"\\x00\\n\"");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
