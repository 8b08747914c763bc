//! What a node's data directory says about replication, in
//! `$PERSISTENCE_DIR/replication` (a sealed text file, atomically replaced):
//!
//! ```text
//! fastcache-replication 1
//! replid <40 hex digits>   the history the local WAL and snapshots belong to
//! syncing <0|1>            1 while a full resynchronisation replaces them
//! crc32c <8 hex digits>
//! ```
//!
//! `syncing 1` found at start means a full resynchronisation was cut short:
//! the data directory mixes two histories, and the node discards it.

use std::path::{Path, PathBuf};

use fastcache_snapshot::checked_text;

const FIRST_LINE: &str = "fastcache-replication 1";
const MAGIC: &str = "fastcache-replication ";

/// The replication facts of a data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saved {
    pub replid: String,
    pub syncing: bool,
}

/// Where the file lives in a data directory.
pub fn path(persistence_dir: &Path) -> PathBuf {
    persistence_dir.join("replication")
}

/// Reads the file; `Ok(None)` if there is none.
///
/// # Errors
/// A message naming the file and what is wrong with it.
pub fn load(path: &Path) -> Result<Option<Saved>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    let (body, _) = checked_text::open(&bytes, FIRST_LINE, MAGIC, "replication state file")
        .map_err(|p| format!("{} is damaged: {p:?}", path.display()))?;
    let mut replid = None;
    let mut syncing = None;
    for line in body.lines() {
        match line.split_once(' ') {
            Some(("replid", v)) if is_replid(v) => replid = Some(v.to_string()),
            Some(("syncing", "0")) => syncing = Some(false),
            Some(("syncing", "1")) => syncing = Some(true),
            _ => return Err(format!("{} has an unknown line {line:?}", path.display())),
        }
    }
    match (replid, syncing) {
        (Some(replid), Some(syncing)) => Ok(Some(Saved { replid, syncing })),
        _ => Err(format!("{} lacks a replid or syncing line", path.display())),
    }
}

/// Replaces the file (durably).
///
/// # Errors
/// The failing I/O step.
pub fn save(path: &Path, saved: &Saved) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = format!("{FIRST_LINE}\nreplid {}\nsyncing {}\n", saved.replid, u8::from(saved.syncing));
    checked_text::write_file(path, &checked_text::seal(text))
}

/// 40 lowercase hex digits, like Redis' replication IDs.
pub fn is_replid(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A fresh random replication ID.
pub fn new_replid() -> String {
    (0..40).map(|_| char::from_digit(fastrand::u32(0..16), 16).unwrap_or('0')).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_loads_and_refuses_damage() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path());
        assert_eq!(load(&p), Ok(None));
        let s = Saved { replid: new_replid(), syncing: true };
        assert!(is_replid(&s.replid));
        save(&p, &s).unwrap();
        assert_eq!(load(&p), Ok(Some(s.clone())));
        let s2 = Saved { syncing: false, ..s };
        save(&p, &s2).unwrap();
        assert_eq!(load(&p), Ok(Some(s2)));
        let mut bytes = std::fs::read(&p).unwrap();
        bytes[30] ^= 1;
        std::fs::write(&p, &bytes).unwrap();
        assert!(load(&p).unwrap_err().contains("damaged"));
    }
}
