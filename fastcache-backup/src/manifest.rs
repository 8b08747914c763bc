//! A chain's `MANIFEST`: the links of the chain, base first, as text with
//! a checksum line, replaced atomically (`docs/formats.md`, "Chain
//! MANIFEST").
//!
//! ```text
//! FCBACKUP-CHAIN 1
//! full full-00000000000000001000-1700000000000.fcs 0 1000 1700000000000 1000000 48213377
//! inc inc-00000000000000001000-00000000000000001500-1700000060000.fcs 1000 1500 1700000060000 5234 123456
//! crc32c 3c153751
//! ```
//!
//! The parser checks the form (version, checksum, names agreeing with
//! their fields, a full base first and incrementals after it) but not that
//! the links are contiguous: that is [`crate::verify_chain`]'s finding to
//! report, naming both files.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::chain::{Link, LinkKind};
use crate::error::{Error, Result};
use crate::naming::{full_file_name, inc_file_name, parse_full_file_name, parse_inc_file_name};

/// Name of a chain's manifest.
pub const CHAIN_MANIFEST: &str = "MANIFEST";
const MANIFEST_TMP: &str = "MANIFEST.tmp";
const FIRST_LINE: &str = "FCBACKUP-CHAIN 1";
const MAGIC: &str = "FCBACKUP-CHAIN ";

/// The file name a link has in its chain directory.
pub(crate) fn link_file_name(link: &Link) -> String {
    match link.kind {
        LinkKind::Full => full_file_name(link.to_lsn, link.created_unix_ms),
        LinkKind::Incremental => inc_file_name(link.from_lsn, link.to_lsn, link.created_unix_ms),
    }
}

// Format: "FCBACKUP-CHAIN 1\n"
//         { "<full|inc> <file> <from_lsn> <to_lsn> <created_ms> <keys> <file_bytes>\n" }+
//         "crc32c <8 lowercase hex digits: crc32c of every byte before this line>\n"
pub(crate) fn encode(links: &[Link]) -> String {
    let mut s = format!("{FIRST_LINE}\n");
    for l in links {
        let kind = match l.kind {
            LinkKind::Full => "full",
            LinkKind::Incremental => "inc",
        };
        s.push_str(&format!(
            "{kind} {} {} {} {} {} {}\n",
            link_file_name(l),
            l.from_lsn,
            l.to_lsn,
            l.created_unix_ms,
            l.keys,
            l.file_bytes
        ));
    }
    fastcache_snapshot::checked_text::seal(s)
}

/// Parses the manifest `file` of the chain in `dir`; every error names the
/// file and the byte offset of the line.
pub(crate) fn decode(dir: &Path, file: &Path, bytes: &[u8]) -> Result<Vec<Link>> {
    use fastcache_snapshot::checked_text::{open, Problem};
    let bad = |offset: usize, reason: String| Error::Corrupted { file: file.into(), offset: offset as u64, reason };
    let (lines, mut at) = open(bytes, FIRST_LINE, MAGIC, "backup chain manifest").map_err(|p| match p {
        Problem::UnsupportedVersion(version) => Error::UnsupportedVersion { file: file.into(), version },
        Problem::Corrupted { offset, reason } => bad(offset, reason),
    })?;
    let mut links: Vec<Link> = Vec::new();
    for line in lines.split_terminator('\n') {
        let link = parse_line(dir, line).ok_or_else(|| bad(at, format!("bad entry {line:?}")))?;
        let expected = if links.is_empty() { LinkKind::Full } else { LinkKind::Incremental };
        if link.kind != expected {
            return Err(bad(at, format!("entry {line:?}: a chain is one full backup, then incrementals")));
        }
        links.push(link);
        at += line.len() + 1;
    }
    if links.is_empty() {
        return Err(bad(at, "the manifest lists no backup".into()));
    }
    Ok(links)
}

fn parse_line(dir: &Path, line: &str) -> Option<Link> {
    let fields: Vec<&str> = line.split(' ').collect();
    let [kind, name, from, to, created, keys, bytes] = fields.as_slice() else { return None };
    let link = Link {
        kind: match *kind {
            "full" => LinkKind::Full,
            "inc" => LinkKind::Incremental,
            _ => return None,
        },
        path: dir.join(name),
        from_lsn: from.parse().ok()?,
        to_lsn: to.parse().ok()?,
        created_unix_ms: created.parse().ok()?,
        keys: keys.parse().ok()?,
        file_bytes: bytes.parse().ok()?,
    };
    let agrees = match link.kind {
        LinkKind::Full => link.from_lsn == 0 && parse_full_file_name(name) == Some((link.to_lsn, link.created_unix_ms)),
        LinkKind::Incremental => {
            link.from_lsn <= link.to_lsn
                && parse_inc_file_name(name) == Some((link.from_lsn, link.to_lsn, link.created_unix_ms))
        }
    };
    agrees.then_some(link)
}

/// Reads and parses the manifest of the chain in `dir`.
pub(crate) fn read(dir: &Path) -> Result<Vec<Link>> {
    let path = dir.join(CHAIN_MANIFEST);
    let bytes = std::fs::read(&path).map_err(|e| Error::io("read chain manifest", &path, e))?;
    decode(dir, &path, &bytes)
}

/// Replaces the manifest of the chain in `dir` atomically: temp file,
/// fsync, rename, fsync the directory. A crash leaves the old manifest or
/// the new one.
pub(crate) fn write(dir: &Path, links: &[Link]) -> Result<()> {
    let tmp = dir.join(MANIFEST_TMP);
    let path = dir.join(CHAIN_MANIFEST);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| Error::io("create chain manifest temp file", &tmp, e))?;
        f.write_all(encode(links).as_bytes()).map_err(|e| Error::io("write chain manifest", &tmp, e))?;
        f.sync_all().map_err(|e| Error::io("fsync chain manifest", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io("rename chain manifest into place", &tmp, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    sync_dir(dir)
}

/// Makes a directory's entries (creations, renames, removals) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io("fsync directory", dir, e))
}

/// Whether `name` is the manifest's temporary file.
pub(crate) fn is_manifest_tmp(name: &str) -> bool {
    name == MANIFEST_TMP
}

/// The path of the manifest of the chain in `dir`.
pub(crate) fn path_in(dir: &Path) -> PathBuf {
    dir.join(CHAIN_MANIFEST)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> Vec<Link> {
        let dir = Path::new("/b/chain-00000000000000001000-1700000000000");
        let full = Link {
            kind: LinkKind::Full,
            path: dir.join(full_file_name(1000, 1_700_000_000_000)),
            from_lsn: 0,
            to_lsn: 1000,
            created_unix_ms: 1_700_000_000_000,
            keys: 1_000_000,
            file_bytes: 48_213_377,
        };
        let inc = Link {
            kind: LinkKind::Incremental,
            path: dir.join(inc_file_name(1000, 1500, 1_700_000_060_000)),
            from_lsn: 1000,
            to_lsn: 1500,
            created_unix_ms: 1_700_000_060_000,
            keys: 5234,
            file_bytes: 123_456,
        };
        vec![full, inc]
    }

    #[test]
    fn manifest_round_trips_and_matches_the_documented_example() -> Result<()> {
        let dir = Path::new("/b/chain-00000000000000001000-1700000000000");
        let file = dir.join(CHAIN_MANIFEST);
        let text = encode(&links());
        assert_eq!(decode(dir, &file, text.as_bytes())?, links());
        let doc = "FCBACKUP-CHAIN 1\n\
            full full-00000000000000001000-1700000000000.fcs 0 1000 1700000000000 1000000 48213377\n\
            inc inc-00000000000000001000-00000000000000001500-1700000060000.fcs 1000 1500 1700000060000 5234 123456\n";
        assert_eq!(text, format!("{doc}crc32c {:08x}\n", crc32c::crc32c(doc.as_bytes())));
        // The example in docs/formats.md, checksum included.
        assert_eq!(decode(dir, &file, format!("{doc}crc32c 3c153751\n").as_bytes())?, links());
        Ok(())
    }

    #[test]
    fn every_damaged_manifest_is_refused() {
        let dir = Path::new("/b/c");
        let file = dir.join(CHAIN_MANIFEST);
        let good = encode(&links()).into_bytes();
        for len in 0..good.len() {
            assert!(decode(dir, &file, &good[..len]).is_err(), "truncated to {len}");
        }
        for i in 0..good.len() {
            for bit in 0..8 {
                let mut b = good.clone();
                b[i] ^= 1 << bit;
                let r = decode(dir, &file, &b);
                assert!(r.as_ref().is_err_and(Error::is_corruption), "flip {i}.{bit}: {r:?}");
            }
        }
        // Well-formed and checksummed, but not a chain: an incremental first,
        // or nothing at all.
        for bad in [vec![links()[1].clone()], vec![]] {
            let text = encode(&bad);
            assert!(matches!(decode(dir, &file, text.as_bytes()), Err(Error::Corrupted { .. })), "{text}");
        }
        assert!(matches!(
            decode(dir, &file, b"FCBACKUP-CHAIN 2\nwhatever\n"),
            Err(Error::UnsupportedVersion { version: 2, .. })
        ));
    }
}
