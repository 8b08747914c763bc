//! Names of chain directories and backup files (`docs/formats.md`, "Backup
//! files and chains"). LSNs are twenty decimal digits so that name order
//! is LSN order; the creation time keeps two backups at one LSN apart.
//! Only canonical names parse, so one backup has one name.

/// Suffix of backup files (the snapshot container's).
pub(crate) const FILE_SUFFIX: &str = ".fcs";
/// Suffix of a chain directory being created.
pub(crate) const CREATING_SUFFIX: &str = ".tmp";
/// Suffix of a chain directory being deleted.
pub(crate) const DELETING_SUFFIX: &str = ".del";

/// `chain-{base lsn:020}-{created_ms}`.
pub(crate) fn chain_dir_name(lsn: u64, created_ms: u64) -> String {
    format!("chain-{lsn:020}-{created_ms}")
}

/// `full-{lsn:020}-{created_ms}.fcs`.
pub(crate) fn full_file_name(lsn: u64, created_ms: u64) -> String {
    format!("full-{lsn:020}-{created_ms}{FILE_SUFFIX}")
}

/// `inc-{from:020}-{to:020}-{created_ms}.fcs`.
pub(crate) fn inc_file_name(from: u64, to: u64, created_ms: u64) -> String {
    format!("inc-{from:020}-{to:020}-{created_ms}{FILE_SUFFIX}")
}

fn lsn_field(s: &str) -> Option<u64> {
    (s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

fn ms_field(s: &str) -> Option<u64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

/// The (base LSN, creation time) of a chain directory name.
pub(crate) fn parse_chain_dir_name(name: &str) -> Option<(u64, u64)> {
    let (lsn, created) = name.strip_prefix("chain-")?.split_once('-')?;
    let (lsn, created) = (lsn_field(lsn)?, ms_field(created)?);
    (chain_dir_name(lsn, created) == name).then_some((lsn, created))
}

/// The (LSN, creation time) of a full backup file name.
pub(crate) fn parse_full_file_name(name: &str) -> Option<(u64, u64)> {
    let (lsn, created) = name.strip_prefix("full-")?.strip_suffix(FILE_SUFFIX)?.split_once('-')?;
    let (lsn, created) = (lsn_field(lsn)?, ms_field(created)?);
    (full_file_name(lsn, created) == name).then_some((lsn, created))
}

/// The (from LSN, to LSN, creation time) of an incremental file name.
pub(crate) fn parse_inc_file_name(name: &str) -> Option<(u64, u64, u64)> {
    let rest = name.strip_prefix("inc-")?.strip_suffix(FILE_SUFFIX)?;
    let (from, rest) = rest.split_once('-')?;
    let (to, created) = rest.split_once('-')?;
    let (from, to, created) = (lsn_field(from)?, lsn_field(to)?, ms_field(created)?);
    (inc_file_name(from, to, created) == name).then_some((from, to, created))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_only_canonical_names_parse() {
        assert_eq!(chain_dir_name(5, 17), "chain-00000000000000000005-17");
        assert_eq!(parse_chain_dir_name("chain-00000000000000000005-17"), Some((5, 17)));
        assert_eq!(parse_full_file_name(&full_file_name(9, 3)), Some((9, 3)));
        assert_eq!(parse_inc_file_name(&inc_file_name(9, 12, 3)), Some((9, 12, 3)));
        assert_eq!(
            parse_inc_file_name(&inc_file_name(u64::MAX, u64::MAX, u64::MAX)),
            Some((u64::MAX, u64::MAX, u64::MAX))
        );
        for bad in [
            "chain-5-17",
            "chain-00000000000000000005-017",
            "chain-00000000000000000005-17.tmp",
            "chain-00000000000000000005-",
            "full-00000000000000000005-1.fcs.tmp",
            "inc-00000000000000000005-1.fcs",
            "MANIFEST",
        ] {
            assert_eq!(parse_chain_dir_name(bad), None, "{bad}");
            assert_eq!(parse_full_file_name(bad), None, "{bad}");
            assert_eq!(parse_inc_file_name(bad), None, "{bad}");
        }
        assert!(chain_dir_name(9, 5) < chain_dir_name(10, 1));
    }
}
