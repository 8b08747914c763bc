//! Torn and damaged logs: a torn tail is cut to the longest valid prefix,
//! damage in the middle is an error naming file and offset, lossy modes
//! skip or cut and report; never a panic, never a wrong record.

mod common;

use common::*;
use fastcache_wal::testing::FaultFs;
use fastcache_wal::{Error, Lsn, RecoveryMode, SyncPolicy, Wal, WalOptions};
use proptest::prelude::*;

type Model = Vec<(Lsn, Vec<u8>, bool)>;

/// A log of `singles` records then a batch of `batch` records, in
/// `segment_size` segments, synced but not closed (so not sealed) unless
/// `close`. Returns the file system (its durable image) and the model.
fn build(
    segment_size: u64,
    ops: &[usize],
    salt: u64,
    close: bool,
) -> Result<(FaultFs, Model), Box<dyn std::error::Error>> {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, segment_size, SyncPolicy::Never))?;
    let mut model = Model::new();
    for &n in ops {
        let first = wal.last_lsn() + 1;
        let payloads: Vec<Vec<u8>> = (0..n as u64).map(|i| payload(first + i, salt)).collect();
        let refs: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
        let last = wal.append_batch(&refs)?;
        assert_eq!(last, first + n as u64 - 1);
        for (i, p) in payloads.into_iter().enumerate() {
            model.push((first + i as u64, p, i + 1 < n));
        }
    }
    wal.sync()?;
    if close {
        wal.close()?;
        Ok((fs.crash(), model))
    } else {
        let image = fs.crash();
        drop(wal);
        Ok((image, model))
    }
}

fn open_mode(
    fs: &FaultFs,
    segment_size: u64,
    recovery: RecoveryMode,
) -> fastcache_wal::Result<(Wal, fastcache_wal::OpenReport)> {
    Wal::open(&wal_dir(), WalOptions { recovery, ..fault_opts(fs, segment_size, SyncPolicy::Never) })
}

fn records_of(wal: &Wal) -> fastcache_wal::Result<Vec<(Lsn, Vec<u8>)>> {
    read_all(wal)
}

fn assert_prefix(got: &[(Lsn, Vec<u8>)], model: &Model, n: usize) {
    assert_eq!(got.len(), n, "expected the first {n} records");
    for ((lsn, p), (mlsn, mp, _)) in got.iter().zip(model) {
        assert_eq!((lsn, p), (mlsn, mp), "wrong record");
    }
}

#[test]
fn cutting_the_tail_at_every_byte_yields_the_longest_valid_prefix() -> TestResult {
    // Three segments' worth of single records, then a batch of three.
    let seg = 4096;
    let mut ops = vec![1; 40];
    ops.push(3);
    let (fs, model) = build(seg, &ops, 11, false)?;
    let layout = fault_layout(&fs);
    let last = layout.last().ok_or("no segment")?.clone();
    assert!(layout.len() >= 2 && last.records.len() >= 5, "{layout:?}");
    let first_cut = last.records[last.records.len() - 5].offset;
    let bytes = fs.read(&last.path).ok_or("segment")?;
    for cut in first_cut..=last.data_end {
        // A record survives if it ends at or before the cut; a batch only whole.
        let first_bad = last.records.iter().find(|r| r.offset + r.len > cut).map_or(Lsn::MAX, |r| r.lsn);
        let keep = batch_prefix(&model, first_bad);
        let valid_end =
            last.records.iter().filter(|r| r.lsn <= model[keep - 1].0).map(|r| r.offset + r.len).max().unwrap_or(64);
        let garbage = bytes[valid_end..cut].iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);

        // Zeros from the cut on (a torn write of preallocated space) and,
        // separately, a file that ends at the cut.
        for short_file in [false, true] {
            let image = fs.crash();
            image.modify(&last.path, |b| {
                if short_file {
                    b.truncate(cut);
                } else {
                    b[cut..].fill(0);
                }
            });
            let (wal, report) = open_mode(&image, seg, RecoveryMode::TolerateTornTail)
                .map_err(|e| format!("cut at {cut} (short file: {short_file}): {e}"))?;
            assert_eq!(report.records as usize, keep, "cut at {cut}, short file {short_file}");
            assert_eq!(report.truncated_bytes, garbage as u64, "cut at {cut}");
            assert!(report.skipped.is_empty());
            assert_prefix(&records_of(&wal)?, &model, keep);
            // The log goes on after the cut, and the cut is durable.
            let lsn = wal.append(b"after the cut")?;
            assert_eq!(lsn, model[keep - 1].0 + 1);
            wal.close()?;
            let (wal, report) = open_mode(&image.crash(), seg, RecoveryMode::TolerateTornTail)?;
            assert_eq!((report.records as usize, report.truncated_bytes), (keep + 1, 0), "cut at {cut}");
            wal.close()?;
        }
    }
    Ok(())
}

#[test]
fn damage_below_the_seal_of_a_closed_log_is_corruption() -> TestResult {
    let (fs, _model) = build(1 << 16, &[1; 20], 12, true)?;
    let last = fault_layout(&fs).pop().ok_or("no segment")?;
    let victim = last.records.last().ok_or("no record")?;
    // Even the very last record is known durable after a clean close.
    fs.modify(&last.path, |b| b[victim.offset + 20] ^= 0x01);
    match open_mode(&fs, 1 << 16, RecoveryMode::TolerateTornTail) {
        Err(Error::Corrupted { segment, offset, reason }) => {
            assert_eq!((segment, offset), (last.path.clone(), victim.offset as u64));
            assert!(reason.contains("sealed"), "{reason}");
        }
        other => return Err(format!("expected Corrupted, got {other:?}").into()),
    }
    let (wal, report) = open_mode(&fs, 1 << 16, RecoveryMode::PointInTime)?;
    assert_eq!(report.records, 19);
    assert_eq!(report.skipped.len(), 1);
    wal.close()?;
    Ok(())
}

#[test]
fn damage_in_the_middle_is_an_error_naming_segment_and_offset() -> TestResult {
    let (fs, model) = build(1 << 16, &[1; 30], 13, false)?;
    let seg = fault_layout(&fs).pop().ok_or("no segment")?;
    let victim = seg.records[10].clone();
    fs.modify(&seg.path, |b| b[victim.offset + 16] ^= 0x80);
    match open_mode(&fs, 1 << 16, RecoveryMode::TolerateTornTail) {
        Err(Error::ChecksumMismatch { segment, offset, expected, got }) => {
            assert_eq!((segment, offset), (seg.path.clone(), victim.offset as u64));
            assert_ne!(expected, got);
        }
        other => return Err(format!("expected ChecksumMismatch, got {other:?}").into()),
    }
    // The failed open changed nothing: the same error again.
    assert!(open_mode(&fs, 1 << 16, RecoveryMode::TolerateTornTail).is_err_and(|e| e.is_corruption()));

    // Lossy: skip the damaged record, report it, read the rest.
    let (wal, report) = open_mode(&fs, 1 << 16, RecoveryMode::SkipCorrupted)?;
    assert_eq!(report.records, 29);
    assert_eq!(report.skipped.len(), 1);
    let c = &report.skipped[0];
    assert_eq!(
        (c.segment.clone(), c.offset, c.bytes, c.resumed_at),
        (seg.path.clone(), victim.offset as u64, victim.len as u64, Some(12))
    );
    let got = records_of(&wal)?;
    let expected: Vec<_> = model.iter().filter(|m| m.0 != 11).map(|m| (m.0, m.1.clone())).collect();
    assert_eq!(got, expected);
    // New records go to a fresh segment; the damage stays on disk.
    assert_eq!(wal.append(b"new")?, 31);
    wal.close()?;
    let (wal, report) = open_mode(&fs, 1 << 16, RecoveryMode::SkipCorrupted)?;
    assert_eq!((report.records, report.skipped.len()), (30, 1));
    wal.close()?;

    // Point in time: the longest valid prefix.
    let (wal, report) = open_mode(&fs, 1 << 16, RecoveryMode::PointInTime)?;
    assert_eq!(report.records, 10);
    assert_eq!(report.skipped.first().and_then(|c| c.resumed_at), None);
    assert_prefix(&records_of(&wal)?, &model, 10);
    wal.close()?;
    Ok(())
}

#[test]
fn a_torn_batch_is_discarded_whole() -> TestResult {
    let (fs, model) = build(1 << 16, &[1, 1, 4], 14, false)?;
    let seg = fault_layout(&fs).pop().ok_or("no segment")?;
    assert!(seg.records[2].more && !seg.records[5].more);
    // The batch's closing record never reached the disk.
    let last = seg.records[5].clone();
    fs.modify(&seg.path, |b| b[last.offset..last.offset + last.len].fill(0));
    let (wal, report) = open_mode(&fs, 1 << 16, RecoveryMode::TolerateTornTail)?;
    assert_eq!(report.records, 2);
    assert_eq!(report.truncated_bytes, (last.offset - seg.records[2].offset) as u64);
    assert_prefix(&records_of(&wal)?, &model, 2);
    assert_eq!(wal.append(b"x")?, 3, "the torn batch's LSNs are reused");
    wal.close()?;
    Ok(())
}

#[test]
fn a_missing_middle_segment_is_a_gap() -> TestResult {
    let (fs, model) = build(4096, &[1; 150], 15, true)?;
    let layout = fault_layout(&fs);
    assert!(layout.len() >= 4);
    let gone = layout[1].clone();
    fs.remove_dir_all(&gone.path);
    match open_mode(&fs, 4096, RecoveryMode::TolerateTornTail) {
        Err(Error::Corrupted { segment, reason, .. }) => {
            assert_eq!(segment, layout[2].path);
            assert!(reason.contains("LSN gap"), "{reason}");
        }
        other => return Err(format!("expected Corrupted, got {other:?}").into()),
    }
    let (wal, report) = open_mode(&fs, 4096, RecoveryMode::SkipCorrupted)?;
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.skipped[0].resumed_at, Some(layout[2].first_lsn));
    let got = records_of(&wal)?;
    let expected: Vec<_> = model
        .iter()
        .filter(|m| m.0 < gone.first_lsn || m.0 >= layout[2].first_lsn)
        .map(|m| (m.0, m.1.clone()))
        .collect();
    assert_eq!(got, expected, "the reader crosses the gap");
    wal.close()?;
    Ok(())
}

#[test]
fn partially_created_segments_at_the_end_are_removed_and_in_the_middle_are_errors() -> TestResult {
    let (fs, model) = build(4096, &[1; 100], 16, false)?;
    let layout = fault_layout(&fs);
    assert!(layout.len() >= 3);
    let next = model.len() as u64 + 1;
    // A file named for the next LSN, shorter than a header, or full of
    // garbage: a segment whose creation was torn.
    let torn_path = wal_dir().join(format!("{next:020}.wal"));
    for contents in [vec![0u8; 10], vec![0xA5; 4096], Vec::new()] {
        let image = fs.crash();
        image.write_file(&torn_path, &contents);
        let (wal, report) = open_mode(&image, 4096, RecoveryMode::TolerateTornTail)?;
        assert_eq!(report.records as usize, model.len());
        assert_eq!(report.truncated_bytes, contents.iter().filter(|&&b| b != 0).count() as u64);
        assert!(
            !image.list(&wal_dir()).contains(&format!("{next:020}.wal")) || wal.stats().segments == layout.len() + 1
        );
        wal.close()?;
    }
    // In the middle: the second segment cut to half its size.
    let image = fs.crash();
    image.modify(&layout[1].path, |b| b.truncate(2000));
    let r = open_mode(&image, 4096, RecoveryMode::TolerateTornTail);
    assert!(r.as_ref().is_err_and(|e| e.is_corruption()), "{:?} {layout:?}", r.map(|r| r.1));
    Ok(())
}

/// Which records a set of flipped bits damages, and where strict recovery's
/// chain breaks: the batch-aligned prefix before it is what a successful
/// open must return.
fn expected_prefix(layout: &[SegmentLayout], model: &Model, flips: &[(usize, usize)]) -> usize {
    let mut first_bad = Lsn::MAX;
    for &(s, off) in flips {
        let seg = &layout[s];
        let next_first = layout.get(s + 1).map_or(Lsn::MAX, |n| n.first_lsn);
        let seg_first = seg.records.first().map_or(next_first, |r| r.lsn);
        let bad = if off < 36 {
            // Magic, version, first LSN, size, checksum: the whole segment.
            seg_first
        } else if off < 64 {
            // Reserved bytes and the seal: a bad seal is only ignored.
            Lsn::MAX
        } else if let Some(r) = seg.records.iter().find(|r| off >= r.offset && off < r.offset + r.len) {
            r.lsn
        } else if off < seg.data_end + 16 && seg.data_end + 16 <= seg.size && s + 1 < layout.len() {
            // Where the end-of-records zeros of a full segment should be.
            next_first
        } else {
            Lsn::MAX
        };
        first_bad = first_bad.min(bad);
    }
    batch_prefix(model, first_bad)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bit_flips_never_yield_a_wrong_record(
        ops in prop::collection::vec(prop_oneof![3 => Just(1usize), 1 => 2usize..5], 10..60),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 0usize..4096, 0u8..8), 1..4),
        salt in any::<u64>(),
    ) {
        let (fs, model) = build(4096, &ops, salt, false).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let layout = fault_layout(&fs);
        let positions: Vec<(usize, usize)> = flips.iter().map(|(seg, off, _)| (seg.index(layout.len()), *off)).collect();
        for (&(s, off), (_, _, bit)) in positions.iter().zip(&flips) {
            fs.modify(&layout[s].path, |b| b[off] ^= 1 << bit);
        }
        let expected = expected_prefix(&layout, &model, &positions);

        // Default mode: the longest valid prefix, or a corruption error.
        match open_mode(&fs.crash(), 4096, RecoveryMode::TolerateTornTail) {
            Ok((wal, report)) => {
                prop_assert_eq!(report.records as usize, expected);
                let got = records_of(&wal).map_err(|e| TestCaseError::fail(e.to_string()))?;
                assert_prefix(&got, &model, expected);
                drop(wal);
            }
            Err(e) => prop_assert!(e.is_corruption(), "{e}"),
        }
        // Point in time: always the longest valid prefix.
        let (wal, report) = open_mode(&fs.crash(), 4096, RecoveryMode::PointInTime).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(report.records as usize, expected);
        assert_prefix(&records_of(&wal).map_err(|e| TestCaseError::fail(e.to_string()))?, &model, expected);
        drop(wal);
        // Skip: a subsequence of the model, at least the valid prefix, and
        // every loss reported.
        let (wal, report) = open_mode(&fs.crash(), 4096, RecoveryMode::SkipCorrupted).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let got = records_of(&wal).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(got.len() as u64, report.records);
        let mut m = model.iter();
        for (lsn, p) in &got {
            prop_assert!(m.any(|(ml, mp, _)| ml == lsn && mp == p), "record {} is not the model's", lsn);
        }
        prop_assert!(got.len() >= expected);
        if got.len() < model.len() {
            prop_assert!(!report.skipped.is_empty() || report.truncated_bytes > 0);
        }
        drop(wal);
    }
}
