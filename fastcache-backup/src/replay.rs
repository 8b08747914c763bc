//! Re-applying WAL records after a backup, up to a target.

use std::path::Path;

use fastcache_core::{Engine, Record};
use fastcache_wal::{SyncPolicy, Wal, WalOptions};

use crate::error::{Error, Result};

/// Opens the log in `dir` if it holds a segment; `None` for a missing or
/// empty directory (nothing is created then).
///
/// NOTE: this is `Wal::open`: it takes the directory's lock (so a log a
/// running server writes is refused with `Locked`) and cuts a torn tail,
/// as the server would at start; damage in the middle is refused.
pub(crate) fn open_existing(dir: &Path) -> Result<Option<Wal>> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(None) };
    let has_segment = entries.flatten().any(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(".wal")));
    if !has_segment {
        return Ok(None);
    }
    // Existing segments keep their size; this one is for the spare the log
    // prepares at open (and removes at close), which nothing here uses.
    let opts = WalOptions { sync: SyncPolicy::Never, segment_size: 64 << 10, ..WalOptions::default() };
    let (wal, _report) = Wal::open(dir, opts)?;
    Ok(Some(wal))
}

/// Where a replay stops.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Stop {
    /// Apply records with an LSN up to this one.
    pub after_lsn: Option<u64>,
    /// Stop before the first record written after this time (unix ms).
    /// Records without a time (format version 1, time 0) are applied.
    pub after_time_ms: Option<u64>,
}

/// What a replay did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Replayed {
    /// Records applied.
    pub records: u64,
    /// Of those, records without a time (format version 1).
    pub untimed: u64,
    /// The LSN of the last record applied.
    pub last_lsn: Option<u64>,
    /// The time of the last timed record applied.
    pub last_time_ms: Option<u64>,
    /// The LSN of the record a time target stopped before.
    pub stopped_before: Option<u64>,
}

/// Applies the records of `wal` from `from` on until `stop`.
///
/// # Errors
/// [`Error::WalGap`] if the log does not hold `from` (nor a recorded gap
/// around it); `Wal`, `Record`, `Replay`.
pub(crate) fn replay(
    engine: &Engine,
    wal: &Wal,
    wal_dir: &Path,
    from: u64,
    stop: Stop,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Replayed> {
    let reader = match wal.reader(from) {
        Ok(r) => r,
        Err(fastcache_wal::Error::LsnUnavailable { first, last, .. }) => {
            return Err(Error::WalGap {
                wal: wal_dir.to_path_buf(),
                needed_from: from,
                wal_first: first,
                wal_last: last,
            })
        }
        Err(e) => return Err(e.into()),
    };
    let mut out = Replayed::default();
    for item in reader {
        let (lsn, payload) = item?;
        if stop.after_lsn.is_some_and(|n| lsn > n) {
            break;
        }
        let record = Record::decode(&payload).map_err(|source| Error::Record { lsn, source })?;
        if stop.after_time_ms.is_some_and(|t| record.time_ms > t) {
            out.stopped_before = Some(lsn);
            break;
        }
        engine.apply_record(&record).map_err(|source| Error::Replay { lsn, source })?;
        out.records += 1;
        out.last_lsn = Some(lsn);
        if record.time_ms == 0 {
            out.untimed += 1;
        } else {
            out.last_time_ms = Some(record.time_ms);
        }
        if out.records % 65_536 == 0 {
            progress(out.records, lsn);
        }
    }
    Ok(out)
}
