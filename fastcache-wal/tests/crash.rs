//! Power cuts at random moments: reopening yields exactly a prefix of what
//! was appended, containing every record that was reported durable, with
//! batches all or nothing.

mod common;

use common::*;
use fastcache_wal::testing::FaultFs;
use fastcache_wal::{Lsn, RecoveryMode, SyncPolicy, Wal, WalOptions};
use proptest::prelude::*;

/// Two pages, so a power cut can keep a segment's second page and lose its
/// first; records of ~100 bytes, so a run crosses several segments.
const SEGMENT: u64 = 8192;

#[derive(Debug, Clone)]
enum Op {
    Append,
    Batch(usize),
    Sync,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![8 => Just(Op::Append), 2 => (2usize..6).prop_map(Op::Batch), 1 => Just(Op::Sync)]
}

type Model = Vec<(Lsn, Vec<u8>, bool)>;

/// Runs `ops`, taking a power-cut image after op number `crash_at`.
/// Returns the image, the model and the durable LSN just before the cut.
/// `always` runs under `SyncPolicy::Always`, whose appends are buffered in
/// memory until a sync (they are in neither image of the `FaultFs` before);
/// otherwise `Never`, whose appends go straight into the mapping.
fn run(
    ops: &[Op],
    crash_at: usize,
    salt: u64,
    writeback: Option<u64>,
    always: bool,
) -> Result<(FaultFs, Model, Lsn), String> {
    let fs = FaultFs::new();
    let policy = if always { SyncPolicy::Always } else { SyncPolicy::Never };
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, SEGMENT, policy)).map_err(|e| e.to_string())?;
    let mut model = Model::new();
    let mut image = None;
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Append => {
                let lsn = wal.last_lsn() + 1;
                let p = payload(lsn, salt);
                assert_eq!(wal.append(&p).map_err(|e| e.to_string())?, lsn);
                model.push((lsn, p, false));
            }
            Op::Batch(n) => {
                let first = wal.last_lsn() + 1;
                let ps: Vec<Vec<u8>> = (0..*n as u64).map(|j| payload(first + j, salt)).collect();
                let refs: Vec<&[u8]> = ps.iter().map(Vec::as_slice).collect();
                wal.append_batch(&refs).map_err(|e| e.to_string())?;
                for (j, p) in ps.into_iter().enumerate() {
                    model.push((first + j as u64, p, j + 1 < *n));
                }
            }
            Op::Sync => {
                wal.sync().map_err(|e| e.to_string())?;
            }
        }
        if i == crash_at {
            // Read before the cut: durable_lsn only moves after the flush.
            let durable = wal.durable_lsn();
            let cut = match writeback {
                Some(seed) => fs.crash_with_writeback(seed),
                None => fs.crash(),
            };
            image = Some((cut, durable));
        }
    }
    drop(wal);
    let (cut, durable) = image.ok_or("crash point after the last op")?;
    Ok((cut, model, durable))
}

fn check_prefix(got: &[(Lsn, Vec<u8>)], model: &Model, durable: Lsn) -> Result<(), TestCaseError> {
    prop_assert!(got.len() <= model.len());
    for ((lsn, p), (ml, mp, _)) in got.iter().zip(model) {
        prop_assert_eq!(lsn, ml, "not a prefix");
        prop_assert!(p == mp, "wrong payload at LSN {}", lsn);
    }
    let last = got.last().map_or(0, |r| r.0);
    prop_assert!(last >= durable, "durable LSN {} lost (recovered up to {})", durable, last);
    if let Some(n) = got.len().checked_sub(1) {
        prop_assert!(!model[n].2, "recovery ended inside a batch at LSN {}", last);
    }
    Ok(())
}

fn open(fs: &FaultFs, recovery: RecoveryMode) -> fastcache_wal::Result<(Wal, fastcache_wal::OpenReport)> {
    Wal::open(&wal_dir(), WalOptions { recovery, ..fault_opts(fs, SEGMENT, SyncPolicy::Never) })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// Only synced pages survive the cut.
    #[test]
    fn a_power_cut_keeps_a_prefix_with_every_durable_record(
        ops in prop::collection::vec(op(), 1..250),
        crash in any::<prop::sample::Index>(),
        salt in any::<u64>(),
        always in any::<bool>(),
    ) {
        let crash_at = crash.index(ops.len());
        let (image, model, durable) = run(&ops, crash_at, salt, None, always).map_err(TestCaseError::fail)?;
        let (wal, report) = open(&image, RecoveryMode::TolerateTornTail).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let got = read_all(&wal).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(got.len() as u64, report.records);
        check_prefix(&got, &model, durable)?;
        // The recovered log takes appends and survives another reopen.
        let next = wal.append(b"after").map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(next, report.last_lsn + 1);
        wal.close().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let (wal, again) = open(&image.crash(), RecoveryMode::TolerateTornTail).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(again.records, report.records + 1);
        prop_assert_eq!(again.truncated_bytes, 0);
        drop(wal);
    }

    /// The kernel also wrote back a random half of the unsynced pages, in no
    /// particular order: a later page may be on disk while an earlier one is
    /// not. The default mode then either finds a plain prefix or refuses with
    /// a corruption error (valid records after a hole); point-in-time
    /// recovery always yields a prefix with every durable record.
    #[test]
    fn a_power_cut_during_writeback_never_loses_durable_records(
        ops in prop::collection::vec(op(), 1..250),
        crash in any::<prop::sample::Index>(),
        salt in any::<u64>(),
        seed in any::<u64>(),
        always in any::<bool>(),
    ) {
        let crash_at = crash.index(ops.len());
        let (image, model, durable) = run(&ops, crash_at, salt, Some(seed), always).map_err(TestCaseError::fail)?;
        match open(&image.crash(), RecoveryMode::TolerateTornTail) {
            Ok((wal, _)) => check_prefix(&read_all(&wal).map_err(|e| TestCaseError::fail(e.to_string()))?, &model, durable)?,
            Err(e) => prop_assert!(e.is_corruption(), "{}", e),
        }
        let (wal, _) = open(&image, RecoveryMode::PointInTime).map_err(|e| TestCaseError::fail(e.to_string()))?;
        check_prefix(&read_all(&wal).map_err(|e| TestCaseError::fail(e.to_string()))?, &model, durable)?;
        drop(wal);
    }
}
