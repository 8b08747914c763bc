//! Re-applying the WAL to the engine.

use std::time::{Duration, Instant};

use fastcache_core::{Engine, Record};
use fastcache_wal::{Lsn, Wal};

use crate::error::{Error, Result};

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Records re-applied.
    pub records: u64,
    /// Payload bytes read.
    pub bytes: u64,
    /// The first and last LSN applied (0 when none).
    pub first_lsn: Lsn,
    /// The last LSN applied.
    pub last_lsn: Lsn,
    /// How long it took.
    pub elapsed: Duration,
}

/// Re-applies every record of `wal` from `from` on, through the engine's
/// one code path ([`Engine::apply_record`]). `progress` is called about
/// once a second with the report so far, so a long replay shows it is
/// moving.
///
/// # Errors
/// [`Error::Wal`] if the log cannot be read, [`Error::Record`] /
/// [`Error::Replay`] if a record does not decode or apply; the engine then
/// holds every record before it.
pub fn replay_wal(engine: &Engine, wal: &Wal, from: Lsn, progress: impl FnMut(&ReplayReport)) -> Result<ReplayReport> {
    replay_wal_until(engine, wal, from, Lsn::MAX, progress)
}

/// [`replay_wal`] that stops after the record `until`.
///
/// # Errors
/// As [`replay_wal`].
pub fn replay_wal_until(
    engine: &Engine,
    wal: &Wal,
    from: Lsn,
    until: Lsn,
    mut progress: impl FnMut(&ReplayReport),
) -> Result<ReplayReport> {
    let start = Instant::now();
    let mut last_progress = start;
    let mut report = ReplayReport::default();
    for item in wal.reader(from)? {
        let (lsn, payload) = item?;
        if lsn > until {
            break;
        }
        let record = Record::decode(&payload).map_err(|source| Error::Record { lsn, source })?;
        engine.apply_record(&record).map_err(|source| Error::Replay { lsn, source })?;
        if report.first_lsn == 0 {
            report.first_lsn = lsn;
        }
        report.last_lsn = lsn;
        report.records += 1;
        report.bytes += payload.len() as u64;
        // Reading the clock for every record costs more than the progress
        // line is worth; every 4096 records is still about once a second
        // at worst.
        if report.records % 4096 == 0 && last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            report.elapsed = start.elapsed();
            progress(&report);
        }
    }
    report.elapsed = start.elapsed();
    Ok(report)
}
