//! `WalOptions::min_next_lsn`: a log whose end lies below a snapshot's LSN
//! continues after it, keeping its records; the gap survives reopening,
//! readers step over it, and a segment lost before it is still reported.

mod common;

use common::*;
use fastcache_wal::testing::FaultFs;
use fastcache_wal::{Error, Lsn, SyncPolicy, Wal, WalOptions};

const SEGMENT: u64 = 4096;

fn open_min(fs: &FaultFs, min_next_lsn: Lsn) -> fastcache_wal::Result<(Wal, fastcache_wal::OpenReport)> {
    Wal::open(&wal_dir(), WalOptions { min_next_lsn, ..fault_opts(fs, SEGMENT, SyncPolicy::Never) })
}

fn lsns(wal: &Wal, from: Lsn) -> fastcache_wal::Result<Vec<Lsn>> {
    wal.reader(from)?.map(|r| r.map(|r| r.0)).collect()
}

/// A closed log holding LSNs 1..=n.
fn log_with(n: u64, salt: u64) -> Result<FaultFs, Box<dyn std::error::Error>> {
    let fs = FaultFs::new();
    let (wal, _) = open_min(&fs, 0)?;
    for lsn in 1..=n {
        assert_eq!(wal.append(&payload(lsn, salt))?, lsn);
    }
    wal.close()?;
    Ok(fs)
}

#[test]
fn a_log_below_min_next_lsn_keeps_its_records_and_continues_after_a_gap() -> TestResult {
    let fs = log_with(60, 1)?;
    let (wal, report) = open_min(&fs, 100)?;
    assert_eq!((report.records, report.first_lsn, report.last_lsn, report.gap_after), (60, 1, 99, Some(60)));
    assert_eq!(wal.last_lsn(), 99);
    assert_eq!(wal.append(&payload(100, 1))?, 100);
    assert_eq!(wal.append(&payload(101, 1))?, 101);
    let all: Vec<Lsn> = (1..=60).chain([100, 101]).collect();
    assert_eq!(lsns(&wal, 0)?, all);
    for (lsn, p) in read_all(&wal)? {
        assert_eq!(p, payload(lsn, 1));
    }
    // `from` inside the gap starts at the first record after it.
    assert_eq!(lsns(&wal, 61)?, vec![100, 101]);
    assert_eq!(lsns(&wal, 99)?, vec![100, 101]);
    assert_eq!(lsns(&wal, 60)?, vec![60, 100, 101]);
    assert_eq!(lsns(&wal, 101)?, vec![101]);
    assert_eq!(lsns(&wal, 102)?, vec![]);
    assert!(matches!(wal.reader(103), Err(Error::LsnUnavailable { .. })));
    wal.sync()?;

    // The gap survives a power cut and reopening without the option.
    let image = fs.crash();
    drop(wal);
    let (wal, report) = open_min(&image, 0)?;
    assert_eq!((report.records, report.last_lsn, report.gap_after, report.truncated_bytes), (62, 101, None, 0));
    assert_eq!(lsns(&wal, 0)?, all);
    assert_eq!(lsns(&wal, 70)?, vec![100, 101]);
    wal.close()?;
    // A log at or past min_next_lsn opens unchanged.
    let (wal, report) = open_min(&image, 50)?;
    assert_eq!((report.last_lsn, report.gap_after), (101, None));
    assert_eq!(wal.append(b"next")?, 102);
    wal.close()?;
    Ok(())
}

#[test]
fn the_gap_is_durable_before_any_record_follows_it() -> TestResult {
    let fs = log_with(10, 2)?;
    let (wal, _) = open_min(&fs, 1000)?;
    let image = fs.crash();
    drop(wal);
    let (wal, report) = open_min(&image, 0)?;
    assert_eq!((report.records, report.last_lsn), (10, 999));
    assert_eq!(wal.append(b"x")?, 1000);
    wal.close()?;
    Ok(())
}

#[test]
fn an_empty_log_starts_at_min_next_lsn() -> TestResult {
    let fs = FaultFs::new();
    let (wal, report) = open_min(&fs, 100)?;
    assert_eq!((report.records, report.last_lsn, report.gap_after), (0, 99, Some(0)));
    assert_eq!(wal.append(b"first")?, 100);
    assert_eq!(lsns(&wal, 0)?, vec![100]);
    assert_eq!(lsns(&wal, 1)?, vec![100], "no record ever had LSN 1..99");
    wal.sync()?;
    let image = fs.crash();
    drop(wal);
    let (wal, report) = open_min(&image, 0)?;
    assert_eq!((report.first_lsn, report.last_lsn), (100, 100));
    wal.close()?;
    // 0 and 1 mean "no constraint".
    for min in [0, 1] {
        let fs = FaultFs::new();
        let (wal, report) = open_min(&fs, min)?;
        assert_eq!((report.last_lsn, report.gap_after), (0, None));
        assert_eq!(wal.append(b"first")?, 1);
        wal.close()?;
    }
    Ok(())
}

#[test]
fn a_segment_lost_before_the_gap_is_still_reported() -> TestResult {
    let fs = log_with(120, 3)?;
    let (wal, _) = open_min(&fs, 1000)?;
    wal.append(b"after the gap")?;
    wal.close()?;
    let segments = fault_segments(&fs);
    assert!(segments.len() >= 4, "{segments:?}");
    let gap_segment = wal_dir().join(format!("{:020}.wal", 1000));
    assert_eq!(segments.last(), Some(&gap_segment));

    // Losing the segment right before the gap segment is damage, not a gap.
    let lost = FaultFs::crash(&fs);
    let before_gap = &segments[segments.len() - 2];
    fastcache_wal::FileSystem::remove_file(&lost, before_gap)?;
    fastcache_wal::FileSystem::sync_dir(&lost, &wal_dir())?;
    match open_min(&lost, 0) {
        Err(Error::Corrupted { segment, reason, .. }) => {
            assert_eq!(segment, gap_segment);
            assert!(reason.contains("LSN gap"), "{reason}");
        }
        other => return Err(format!("expected Corrupted, got {:?}", other.map(|r| r.1)).into()),
    }

    // Losing the oldest segments is retention (a suffix of the log): fine.
    let truncated = fs.crash();
    for old in &segments[..2] {
        fastcache_wal::FileSystem::remove_file(&truncated, old)?;
    }
    let (wal, report) = open_min(&truncated, 0)?;
    assert_eq!(report.last_lsn, 1000);
    assert_eq!(lsns(&wal, 0)?.last(), Some(&1000));
    wal.close()?;
    Ok(())
}

#[test]
fn retention_across_the_gap() -> TestResult {
    let fs = log_with(120, 4)?;
    let (wal, _) = open_min(&fs, 500)?;
    let a = wal.append(b"a")?;
    assert!(wal.truncate_before(a)? >= 2);
    assert_eq!(lsns(&wal, 0)?, vec![a]);
    // The gap is still known: a reader from inside it starts after it.
    assert_eq!(lsns(&wal, 300)?, vec![a]);
    assert!(matches!(wal.reader(120), Err(Error::LsnUnavailable { .. })), "LSN 120 existed and is gone");
    wal.close()?;
    let (wal, report) = open_min(&fs.crash(), 0)?;
    assert_eq!((report.first_lsn, report.last_lsn), (a, a));
    assert_eq!(lsns(&wal, 300)?, vec![a]);
    wal.close()?;
    Ok(())
}

#[test]
fn a_reader_follows_the_writer_over_the_gap_into_later_segments() -> TestResult {
    let fs = log_with(30, 5)?;
    let (wal, _) = open_min(&fs, 200)?;
    let mut reader = wal.reader(1)?;
    assert_eq!(reader.by_ref().count(), 30);
    let mut expected = Vec::new();
    for i in 0..100u64 {
        expected.push(wal.append(&payload(200 + i, 5))?);
    }
    let got: Vec<Lsn> = reader.map(|r| r.map(|r| r.0)).collect::<fastcache_wal::Result<_>>()?;
    assert_eq!(got, expected);
    assert_eq!(expected.first(), Some(&200));
    assert!(wal.stats().rotations > 0);
    wal.close()?;
    Ok(())
}

#[test]
fn min_next_lsn_on_the_real_file_system() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("wal");
    let (wal, _) = Wal::open(&dir, os_opts(1 << 16, SyncPolicy::Always))?;
    let a = wal.append(b"old")?;
    wal.close()?;
    let (wal, report) = Wal::open(&dir, WalOptions { min_next_lsn: 50, ..os_opts(1 << 16, SyncPolicy::Always) })?;
    assert_eq!((report.last_lsn, report.gap_after), (49, Some(a)));
    let b = wal.append(b"new")?;
    wal.wait_durable_blocking(b)?;
    wal.close()?;
    let (wal, report) = Wal::open(&dir, os_opts(1 << 16, SyncPolicy::Always))?;
    assert_eq!((report.records, report.last_lsn), (2, 50));
    assert_eq!(read_all(&wal)?, vec![(a, b"old".to_vec()), (50, b"new".to_vec())]);
    wal.close()?;
    Ok(())
}
