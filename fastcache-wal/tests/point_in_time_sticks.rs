//! A lossy open (`RecoveryMode::PointInTime`) that cuts the log inside a
//! sealed segment leaves a log that later strict opens accept: the cut
//! clears the seal that still claimed the cut bytes durable.

use fastcache_wal::{RecoveryMode, SyncPolicy, Wal, WalOptions};

fn opts(recovery: RecoveryMode) -> WalOptions {
    WalOptions { segment_size: 8 << 10, sync: SyncPolicy::Never, recovery, ..WalOptions::default() }
}

#[test]
fn a_point_in_time_cut_below_a_seal_is_accepted_by_the_next_strict_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wal_dir = dir.path().join("wal");
    {
        let (wal, _) = Wal::open(&wal_dir, opts(RecoveryMode::TolerateTornTail)).expect("open");
        for i in 0..2000u32 {
            wal.append(format!("record {i:06} padding padding").as_bytes()).expect("append");
        }
        wal.close().expect("close");
    }
    // Damage a record in the middle of the first (sealed) segment.
    let first = wal_dir.join("00000000000000000001.wal");
    let mut bytes = std::fs::read(&first).expect("segment");
    bytes[64 + 16 * 3 + 5] ^= 0x10;
    std::fs::write(&first, &bytes).expect("write");

    assert!(Wal::open(&wal_dir, opts(RecoveryMode::TolerateTornTail)).is_err(), "strict open refuses the damage");
    let (wal, report) = Wal::open(&wal_dir, opts(RecoveryMode::PointInTime)).expect("lossy open");
    assert_eq!(report.skipped.len(), 1, "{report:?}");
    let kept = wal.last_lsn();
    assert!(kept < 2000);
    wal.append(b"after the cut").expect("append after the cut");
    wal.close().expect("close");

    let (wal, report) = Wal::open(&wal_dir, opts(RecoveryMode::TolerateTornTail)).expect("strict open after the cut");
    assert!(report.skipped.is_empty());
    assert_eq!(wal.last_lsn(), kept + 1);
}
