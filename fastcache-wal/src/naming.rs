//! File names inside a log directory.
//!
//! ```text
//! LOCK                      the directory lock (flock'ed, never removed)
//! 00000000000000000001.wal  a segment, named by its first LSN, 20 digits
//! spare-000001.wal.tmp      a spare segment being prepared (numbered per
//!                           open); renamed to `<first-lsn>.wal` when it
//!                           becomes the active one
//! ```
//! Twenty digits hold every `u64`, so lexical order is LSN order.

use std::path::{Path, PathBuf};

use crate::Lsn;

/// Name of the lock file.
pub(crate) const LOCK_FILE: &str = "LOCK";
/// Suffix of segment files.
const SEGMENT_SUFFIX: &str = ".wal";
/// Suffix of files that are not yet part of the log.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// `{first_lsn:020}.wal`.
pub(crate) fn segment_file_name(first_lsn: Lsn) -> String {
    format!("{first_lsn:020}{SEGMENT_SUFFIX}")
}

/// The name of spare segment number `seq` while it is prepared.
pub(crate) fn spare_file_name(seq: u64) -> String {
    format!("spare-{seq:06}{SEGMENT_SUFFIX}{TMP_SUFFIX}")
}

/// The path of the segment starting at `first_lsn` in `dir`.
pub(crate) fn segment_path(dir: &Path, first_lsn: Lsn) -> PathBuf {
    dir.join(segment_file_name(first_lsn))
}

/// The first LSN a segment file name claims, or `None` if the name is not a
/// segment's.
pub(crate) fn parse_segment_name(name: &str) -> Option<Lsn> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// True for leftovers of an interrupted preparation, removed at open.
pub(crate) fn is_tmp_name(name: &str) -> bool {
    name.ends_with(TMP_SUFFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_by_lsn() {
        assert_eq!(segment_file_name(1), "00000000000000000001.wal");
        assert_eq!(parse_segment_name(&segment_file_name(u64::MAX)), Some(u64::MAX));
        assert!(segment_file_name(9) < segment_file_name(10));
        assert_eq!(parse_segment_name("1.wal"), None);
        assert_eq!(parse_segment_name("0000000000000000000x.wal"), None);
        assert_eq!(parse_segment_name("99999999999999999999.wal"), None, "overflows u64");
        assert_eq!(parse_segment_name(&spare_file_name(3)), None);
        assert!(is_tmp_name(&spare_file_name(3)));
        assert!(!is_tmp_name(LOCK_FILE));
    }
}
