//! Appending and reading back: ordering, batches, readers following a
//! writer, concurrent appenders, rotation and retention.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;
use fastcache_wal::testing::FaultFs;
use fastcache_wal::{Error, SyncPolicy, Wal, WalOptions, WriteMode};

#[test]
fn records_round_trip_through_reopen_on_the_real_file_system() -> TestResult {
    for write_mode in [WriteMode::File, WriteMode::Mmap] {
        round_trip(write_mode)?;
    }
    Ok(())
}

fn round_trip(write_mode: WriteMode) -> TestResult {
    let dir = tempfile::tempdir()?;
    let opts = || WalOptions { write_mode, ..os_opts(32 << 10, SyncPolicy::Always) };
    let (wal, report) = Wal::open(dir.path(), opts())?;
    assert_eq!((report.records, report.first_lsn, report.last_lsn, report.segments), (0, 0, 0, 1));
    assert_eq!(wal.append(b"")?, 1, "an empty payload is a record");
    for lsn in 2..=500 {
        assert_eq!(wal.append(&payload(lsn, 1))?, lsn);
    }
    assert_eq!(wal.append_batch(&[b"a", b"bb", b"ccc"])?, 503);
    assert_eq!(wal.append_batch(&[])?, 503, "an empty batch appends nothing");
    assert_eq!(wal.last_lsn(), 503);
    wal.close()?;

    let (wal, report) = Wal::open(dir.path(), opts())?;
    assert_eq!((report.records, report.first_lsn, report.last_lsn, report.truncated_bytes), (503, 1, 503, 0));
    assert!(report.segments >= 2, "500 records of ~116 bytes need two 32 KiB segments");
    assert_eq!(wal.durable_lsn(), 503, "everything recovered is durable");
    let all = read_all(&wal)?;
    assert_eq!(all.len(), 503);
    assert_eq!(all[0], (1, Vec::new()));
    for (lsn, p) in &all[1..500] {
        assert_eq!(p, &payload(*lsn, 1));
    }
    assert_eq!(all[500..], [(501, b"a".to_vec()), (502, b"bb".to_vec()), (503, b"ccc".to_vec())]);
    // Numbering continues after reopen.
    assert_eq!(wal.append(b"next")?, 504);
    // A reader from the middle starts exactly there.
    let from_middle: Vec<_> = wal.reader(250)?.take(2).collect::<Result<_, _>>()?;
    assert_eq!(from_middle, vec![(250, payload(250, 1)), (251, payload(251, 1))]);
    wal.close()?;
    Ok(())
}

#[test]
fn reader_follows_a_writer_and_can_be_polled_again() -> TestResult {
    // `Never` writes into the mapping; `Always` buffers appends until a
    // sync, and a reader at the written end writes them out.
    for policy in [SyncPolicy::Never, SyncPolicy::Always] {
        reader_follows(policy)?;
    }
    Ok(())
}

fn reader_follows(policy: SyncPolicy) -> TestResult {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 4096, policy))?;
    let mut reader = wal.reader(1)?;
    assert!(reader.next().is_none(), "nothing yet");
    wal.append(b"one")?;
    assert_eq!(reader.next().transpose()?, Some((1, b"one".to_vec())));
    assert!(reader.next().is_none(), "caught up");

    // A writer thread appends across many rotations while we follow it.
    let total = 3000u64;
    let writer = {
        let wal = wal.clone();
        std::thread::spawn(move || -> fastcache_wal::Result<()> {
            for lsn in 2..=total {
                wal.append(&payload(lsn, 7))?;
            }
            Ok(())
        })
    };
    let mut next = 2;
    let deadline = Instant::now() + Duration::from_secs(30);
    while next <= total && Instant::now() < deadline {
        match reader.next() {
            Some(r) => {
                let (lsn, p) = r?;
                assert_eq!(lsn, next);
                assert_eq!(p, payload(lsn, 7));
                next += 1;
            }
            None => std::thread::yield_now(),
        }
    }
    writer.join().map_err(|_| "writer panicked")??;
    assert_eq!(next, total + 1, "the reader saw every record in order");
    assert!(wal.stats().rotations > 10, "the run crossed many segments");
    wal.close()?;
    Ok(())
}

#[test]
fn buffered_appends_reach_the_file_at_the_sync_in_one_write() -> TestResult {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 1 << 16, SyncPolicy::Always))?;
    let segment = wal_dir().join(fs.list(&wal_dir()).into_iter().find(|n| n.ends_with(".wal")).ok_or("no segment")?);
    let live = |fs: &FaultFs| fs.read(&segment).unwrap_or_default();
    let before = live(&fs);
    for lsn in 1..=20 {
        assert_eq!(wal.append(&payload(lsn, 3))?, lsn);
    }
    assert_eq!(live(&fs), before, "buffered appends are not in the file yet");
    // A power cut now loses them all (none was acknowledged as durable).
    let (cut, report) = Wal::open(&wal_dir(), fault_opts(&fs.crash(), 1 << 16, SyncPolicy::Always))?;
    assert_eq!(report.records, 0);
    drop(cut);
    wal.wait_durable_blocking(20)?;
    assert_ne!(live(&fs), before);
    let (cut, report) = Wal::open(&wal_dir(), fault_opts(&fs.crash(), 1 << 16, SyncPolicy::Always))?;
    assert_eq!((report.records, report.last_lsn), (20, 20));
    drop(cut);
    wal.close()?;

    // A buffer past its limit (a few MiB) is written out by the appender
    // itself, without a sync.
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 16 << 20, SyncPolicy::Always))?;
    let segment = wal_dir().join(fs.list(&wal_dir()).into_iter().find(|n| n.ends_with(".wal")).ok_or("no segment")?);
    let before = fs.read(&segment).unwrap_or_default();
    let big = vec![7u8; 50 << 10];
    for lsn in 1..=100 {
        assert_eq!(wal.append(&big)?, lsn);
    }
    assert_eq!(wal.durable_lsn(), 0, "nothing was synced");
    assert_ne!(fs.read(&segment).unwrap_or_default(), before, "the appender wrote the full buffer out");
    assert_eq!(read_all(&wal)?.len(), 100);
    wal.close()?;
    Ok(())
}

#[test]
fn concurrent_appenders_get_ordered_unique_lsns() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (wal, _) = Wal::open(dir.path(), os_opts(256 << 10, SyncPolicy::Interval(Duration::from_millis(5))))?;
    let per_thread = 2000u64;
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            let wal = wal.clone();
            std::thread::spawn(move || -> fastcache_wal::Result<Vec<u64>> {
                let mut lsns = Vec::new();
                for i in 0..per_thread {
                    let body = format!("{t}:{i}");
                    lsns.push(if i % 10 == 0 {
                        wal.append_batch(&[body.as_bytes(), body.as_bytes()])?
                    } else {
                        wal.append(body.as_bytes())?
                    });
                }
                Ok(lsns)
            })
        })
        .collect();
    let mut per_thread_lsns = Vec::new();
    for h in handles {
        let lsns = h.join().map_err(|_| "appender panicked")??;
        assert!(lsns.windows(2).all(|w| w[0] < w[1]), "a thread's own LSNs increase");
        per_thread_lsns.push(lsns);
    }
    let expected_total = 4 * (per_thread + per_thread / 10);
    assert_eq!(wal.last_lsn(), expected_total);
    wal.sync()?;
    let all = read_all(&wal)?;
    assert_eq!(all.len() as u64, expected_total);
    // Records are contiguous, and each thread's records appear in its order.
    let mut seen: HashMap<u64, u64> = HashMap::new();
    for (i, (lsn, p)) in all.iter().enumerate() {
        assert_eq!(*lsn, i as u64 + 1);
        let text = std::str::from_utf8(p)?;
        let (t, n) = text.split_once(':').ok_or("bad payload")?;
        let (t, n): (u64, u64) = (t.parse()?, n.parse()?);
        let last = seen.entry(t).or_insert(0);
        assert!(n >= *last, "thread {t} out of order");
        *last = n;
    }
    // Batches are contiguous: the batch's last LSN is what append_batch returned.
    for (t, lsns) in per_thread_lsns.iter().enumerate() {
        for (i, lsn) in lsns.iter().enumerate().step_by(10) {
            let body = format!("{t}:{i}").into_bytes();
            assert_eq!(all[*lsn as usize - 1].1, body);
            assert_eq!(all[*lsn as usize - 2].1, body);
        }
    }
    wal.close()?;
    Ok(())
}

#[test]
fn rotation_across_many_small_segments() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (wal, _) = Wal::open(dir.path(), os_opts(4096, SyncPolicy::Never))?;
    for lsn in 1..=2000 {
        wal.append(&payload(lsn, 3))?;
    }
    let stats = wal.stats();
    assert!(stats.rotations >= 40, "rotations: {}", stats.rotations);
    assert_eq!(stats.segments, stats.rotations as usize + 1);
    assert_eq!(stats.records_appended, 2000);
    wal.close()?;
    let files = segment_files(dir.path());
    assert_eq!(files.len(), stats.segments);
    // Each file is named by its first LSN, and is preallocated to full size.
    let (wal, report) = Wal::open(dir.path(), os_opts(4096, SyncPolicy::Never))?;
    assert_eq!(report.records, 2000);
    let mut expected_first = 1;
    let mut reader = wal.reader(1)?;
    for f in &files {
        assert_eq!(std::fs::metadata(f)?.len(), 4096);
        let name = f.file_stem().and_then(|s| s.to_str()).ok_or("name")?;
        assert_eq!(name.parse::<u64>()?, expected_first);
        // Advance the reader to the next file's first LSN.
        let records_in_file = files.iter().position(|g| g == f).and_then(|i| files.get(i + 1)).map(|next| {
            next.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0) - expected_first
        });
        match records_in_file {
            Some(n) => {
                for _ in 0..n {
                    reader.next().ok_or("short log")??;
                }
                expected_first += n;
            }
            None => break,
        }
    }
    assert_eq!(read_all(&wal)?.len(), 2000);
    wal.close()?;
    Ok(())
}

#[test]
fn truncate_before_deletes_whole_segments_only() -> TestResult {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 4096, SyncPolicy::Never))?;
    for lsn in 1..=1000 {
        wal.append(&payload(lsn, 5))?;
    }
    wal.sync()?;
    let before = fault_segments(&fs);
    assert!(before.len() > 10);
    let firsts: Vec<u64> = before
        .iter()
        .map(|p| p.file_stem().and_then(|s| s.to_str()).and_then(|s| s.parse().ok()).unwrap_or(0))
        .collect();
    // A cut inside segment k keeps segment k (it holds LSNs ≥ the cut).
    let cut = firsts[5] + 1;
    let mut reader_in_old_segment = wal.reader(1)?;
    assert_eq!(wal.truncate_before(cut)?, 5);
    assert_eq!(wal.truncate_before(cut)?, 0, "idempotent");
    assert_eq!(fault_segments(&fs).len(), before.len() - 5);
    assert_eq!(wal.stats().first_lsn, firsts[5]);
    assert!(matches!(wal.reader(1), Err(Error::LsnUnavailable { lsn: 1, .. })));
    let from_cut: Vec<_> = wal.reader(cut)?.collect::<Result<_, _>>()?;
    assert_eq!(from_cut.first().map(|r| r.0), Some(cut));
    assert_eq!(from_cut.len() as u64, 1000 - cut + 1);
    // A reader inside a deleted segment finishes it, then reports the gap.
    let mut n = 0;
    let mut gap = false;
    for r in reader_in_old_segment.by_ref() {
        match r {
            Ok(_) => n += 1,
            Err(Error::LsnUnavailable { .. }) => gap = true,
            Err(e) => return Err(e.into()),
        }
    }
    assert!(gap && n >= firsts[1] - 1, "read {n} records then hit the truncated range");
    // Readers keep their segment's mapping, and so the directory lock, alive.
    drop(reader_in_old_segment);
    // The active segment is never deleted, even past the end.
    let removed = wal.truncate_before(u64::MAX)?;
    assert_eq!(fault_segments(&fs).len(), 1, "removed {removed}, only the active one is left");
    assert_eq!(wal.append(b"more")?, 1001);
    wal.close()?;
    let (wal, report) = Wal::open(&wal_dir(), fault_opts(&fs, 4096, SyncPolicy::Never))?;
    assert_eq!(report.last_lsn, 1001);
    assert_eq!(read_all(&wal)?.last(), Some(&(1001, b"more".to_vec())));
    wal.close()?;
    Ok(())
}

#[test]
fn truncation_removes_every_old_segment_after_a_full_checkpoint() -> TestResult {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 4096, SyncPolicy::Never))?;
    for lsn in 1..=300 {
        wal.append(&payload(lsn, 9))?;
    }
    let last = wal.last_lsn();
    wal.truncate_before(last + 1)?;
    wal.close()?;
    let (wal, report) = Wal::open(&wal_dir(), fault_opts(&fs, 4096, SyncPolicy::Never))?;
    // Numbering continues from the active segment's records.
    assert_eq!(report.last_lsn, last);
    assert_eq!(wal.append(b"x")?, last + 1);
    wal.close()?;
    Ok(())
}

#[test]
fn oversized_records_and_batches_are_refused_without_poisoning() -> TestResult {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 4096, SyncPolicy::Never))?;
    let max = 4096 - 64 - 16;
    assert!(matches!(wal.append(&vec![1u8; max + 1]), Err(Error::RecordTooLarge { .. })));
    assert!(matches!(wal.append_batch(&[&[1u8; 2010], &[2u8; 2010]]), Err(Error::RecordTooLarge { .. })));
    assert_eq!(wal.append(&vec![7u8; max])?, 1, "the largest record fits an empty segment");
    assert_eq!(wal.append(b"after")?, 2);
    assert!(wal.poisoned().is_none());
    assert_eq!(read_all(&wal)?.len(), 2);
    wal.close()?;
    Ok(())
}

#[test]
fn stats_count_appends_syncs_and_group_commits() -> TestResult {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 1 << 16, SyncPolicy::Always))?;
    for _ in 0..10 {
        wal.append(b"0123456789")?;
    }
    wal.sync()?;
    wal.append(b"x")?;
    wal.wait_durable_blocking(11)?;
    let s = wal.stats();
    assert_eq!((s.records_appended, s.payload_bytes_appended, s.log_bytes_appended), (11, 101, 101 + 11 * 16));
    assert_eq!((s.last_lsn, s.durable_lsn, s.syncs), (11, 11, 2));
    assert_eq!(s.group_commit_records.counts.iter().sum::<u64>(), 2);
    assert_eq!(s.group_commit_records.counts[0], 1, "one sync covered 1 record");
    assert_eq!(s.group_commit_records.counts[4], 1, "one covered 10 (bucket ≤ 16)");
    assert_eq!(s.sync_latency_us.counts.iter().sum::<u64>(), 2);
    assert_eq!(s.segments, 1);
    assert!(s.poisoned.is_none());
    wal.close()?;
    Ok(())
}

#[test]
fn appends_after_close_fail_on_other_clones() -> TestResult {
    let fs = FaultFs::new();
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, 4096, SyncPolicy::Always))?;
    let other = wal.clone();
    wal.append(b"a")?;
    wal.close()?;
    assert!(matches!(other.append(b"b"), Err(Error::Closed)));
    assert!(other.close().is_ok(), "closing twice is harmless");
    Ok(())
}
