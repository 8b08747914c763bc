//! Counters behind `Wal::stats`: lock-free atomics, read without stopping
//! writers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::Lsn;

/// Upper bounds (inclusive, microseconds) of the sync latency buckets; a
/// last, unbounded bucket follows.
pub const SYNC_LATENCY_BOUNDS_US: [u64; 13] =
    [50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000];
/// Upper bounds (inclusive) of the group-commit buckets, in records made
/// durable by one sync; a last, unbounded bucket follows.
pub const GROUP_COMMIT_BOUNDS: [u64; 11] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/// A histogram: `counts[i]` counts values `≤ bounds[i]` (and above the
/// previous bound); `counts[bounds.len()]` counts everything larger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    /// Inclusive upper bounds of all buckets but the last.
    pub bounds: &'static [u64],
    /// One count per bucket, `bounds.len() + 1` of them.
    pub counts: Vec<u64>,
}

/// A snapshot of the log's counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalStats {
    /// Records appended since open.
    pub records_appended: u64,
    /// Payload bytes appended since open.
    pub payload_bytes_appended: u64,
    /// Bytes written to segments since open (payloads plus record headers).
    pub log_bytes_appended: u64,
    /// Segments in the log now.
    pub segments: usize,
    /// Bytes of segment files in the log now.
    pub segment_bytes: u64,
    /// First LSN still in the log (0 if it holds no record).
    pub first_lsn: Lsn,
    /// Last LSN appended.
    pub last_lsn: Lsn,
    /// Last LSN known durable.
    pub durable_lsn: Lsn,
    /// Syncs that made records durable.
    pub syncs: u64,
    /// Duration of the last of them.
    pub last_sync_duration: Duration,
    /// Their durations ([`SYNC_LATENCY_BOUNDS_US`]).
    pub sync_latency_us: Histogram,
    /// Records each of them made durable ([`GROUP_COMMIT_BOUNDS`]).
    pub group_commit_records: Histogram,
    /// Segment rotations since open.
    pub rotations: u64,
    /// Rotations that had to wait for (or make) the next segment on the hot path.
    pub rotation_stalls: u64,
    /// The cause, if the log is poisoned.
    pub poisoned: Option<String>,
}

pub(crate) struct Stats {
    pub records: AtomicU64,
    pub payload_bytes: AtomicU64,
    pub log_bytes: AtomicU64,
    pub syncs: AtomicU64,
    pub last_sync_ns: AtomicU64,
    pub rotations: AtomicU64,
    pub rotation_stalls: AtomicU64,
    sync_latency: [AtomicU64; SYNC_LATENCY_BOUNDS_US.len() + 1],
    group_commit: [AtomicU64; GROUP_COMMIT_BOUNDS.len() + 1],
}

impl Stats {
    pub fn new() -> Stats {
        Stats {
            records: AtomicU64::new(0),
            payload_bytes: AtomicU64::new(0),
            log_bytes: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            last_sync_ns: AtomicU64::new(0),
            rotations: AtomicU64::new(0),
            rotation_stalls: AtomicU64::new(0),
            sync_latency: std::array::from_fn(|_| AtomicU64::new(0)),
            group_commit: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    pub fn record_sync(&self, took: Duration, records: u64) {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.last_sync_ns.store(ns, Ordering::Relaxed);
        bump(&self.sync_latency, &SYNC_LATENCY_BOUNDS_US, ns / 1_000);
        bump(&self.group_commit, &GROUP_COMMIT_BOUNDS, records);
    }

    pub fn sync_latency(&self) -> Histogram {
        Histogram {
            bounds: &SYNC_LATENCY_BOUNDS_US,
            counts: self.sync_latency.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
        }
    }

    pub fn group_commit(&self) -> Histogram {
        Histogram {
            bounds: &GROUP_COMMIT_BOUNDS,
            counts: self.group_commit.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
        }
    }
}

fn bump(buckets: &[AtomicU64], bounds: &[u64], value: u64) {
    let i = bounds.partition_point(|&b| b < value);
    if let Some(bucket) = buckets.get(i) {
        bucket.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_inclusive_upper_bounds() {
        let s = Stats::new();
        s.record_sync(Duration::from_micros(50), 1);
        s.record_sync(Duration::from_micros(51), 2);
        s.record_sync(Duration::from_secs(5), 5000);
        let lat = s.sync_latency();
        assert_eq!((lat.counts[0], lat.counts[1], lat.counts[SYNC_LATENCY_BOUNDS_US.len()]), (1, 1, 1));
        let gc = s.group_commit();
        assert_eq!((gc.counts[0], gc.counts[1], gc.counts[GROUP_COMMIT_BOUNDS.len()]), (1, 1, 1));
        assert_eq!(s.syncs.load(Ordering::Relaxed), 3);
    }
}
