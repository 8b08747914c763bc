//! Small versioned text files sealed by a checksum line — the snapshot
//! MANIFEST and the backup chain MANIFEST share this envelope:
//!
//! ```text
//! <MAGIC> <version>\n
//! <body lines>\n…
//! crc32c <8 lowercase hex digits: crc32c of every byte before this line>\n
//! ```

const CRC_PREFIX: &str = "crc32c ";

/// Appends the checksum line to `text` (which starts with the first line and
/// ends with a newline).
pub fn seal(mut text: String) -> String {
    let crc = crc32c::crc32c(text.as_bytes());
    text.push_str(&format!("{CRC_PREFIX}{crc:08x}\n"));
    text
}

/// Replaces the file at `path` with `text` atomically: a temp file beside
/// it (`<name>.tmp`), fsync, rename, fsync of the directory. A crash leaves
/// either the old or the new content.
///
/// # Errors
/// The first failing step (the temp file is removed then).
pub fn write_file(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    std::fs::File::open(dir)?.sync_all()
}

/// What is wrong with a sealed text file; `offset` is the byte offset of the
/// line (or byte) at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The first line is `<magic><version>` with a version this build does
    /// not read.
    UnsupportedVersion(u32),
    /// Anything else, at `offset`.
    Corrupted {
        /// Byte offset of the fault.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
}

/// Checks the envelope of `bytes`: the first line must be `first_line`
/// (`magic` is its prefix before the version), the last a matching
/// checksum. Returns the body lines and the offset of the first one.
///
/// # Errors
/// A [`Problem`]; `what` names the kind of file in its messages.
pub fn open<'a>(bytes: &'a [u8], first_line: &str, magic: &str, what: &str) -> Result<(&'a str, usize), Problem> {
    let bad = |offset: usize, reason: String| Problem::Corrupted { offset, reason };
    let text = std::str::from_utf8(bytes).map_err(|e| bad(e.valid_up_to(), "not UTF-8 text".into()))?;
    let first = text.split('\n').next().unwrap_or_default();
    if first != first_line {
        if let Some(Ok(version)) = first.strip_prefix(magic).map(str::parse::<u32>) {
            return Err(Problem::UnsupportedVersion(version));
        }
        return Err(bad(0, format!("not a {what} (first line {first:?})")));
    }
    let body = text.strip_suffix('\n').ok_or_else(|| bad(text.len(), "truncated: no newline at the end".into()))?;
    let crc_at = body.rfind('\n').map_or(0, |i| i + 1);
    let crc_line = &body[crc_at..];
    let stored = crc_line
        .strip_prefix(CRC_PREFIX)
        .filter(|h| h.len() == 8 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .and_then(|h| u32::from_str_radix(h, 16).ok())
        .ok_or_else(|| bad(crc_at, format!("last line is not a checksum: {crc_line:?}")))?;
    let computed = crc32c::crc32c(&bytes[..crc_at]);
    if stored != computed {
        return Err(bad(crc_at, format!("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")));
    }
    let start = (first.len() + 1).min(crc_at);
    Ok((&text[start..crc_at], start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_and_damage() {
        let sealed = seal("MAGIC 1\na b\nc d\n".to_string());
        assert_eq!(open(sealed.as_bytes(), "MAGIC 1", "MAGIC ", "test file"), Ok(("a b\nc d\n", 8)));
        let mut bad = sealed.clone().into_bytes();
        bad[9] ^= 1;
        assert!(matches!(open(&bad, "MAGIC 1", "MAGIC ", "t"), Err(Problem::Corrupted { .. })));
        let newer = seal("MAGIC 7\n".to_string());
        assert_eq!(open(newer.as_bytes(), "MAGIC 1", "MAGIC ", "t"), Err(Problem::UnsupportedVersion(7)));
        assert!(matches!(open(b"MAGIC 1\n", "MAGIC 1", "MAGIC ", "t"), Err(Problem::Corrupted { .. })));
    }
}
