//! Power cuts at random moments: reopening yields exactly a prefix of what
//! was appended, containing every record that was reported durable, with
//! batches all or nothing. Runs include `restart_after`: after one, the log
//! holds only what was appended since, numbered from the restart LSN on.

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
    /// `restart_after(last_lsn + skip)`, as after a snapshot.
    Restart(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => Just(Op::Append),
        2 => (2usize..6).prop_map(Op::Batch),
        1 => Just(Op::Sync),
        1 => (0u64..3).prop_map(Op::Restart),
    ]
}

type Model = Vec<(Lsn, Vec<u8>, bool)>;

/// What a power cut left, and what the log had promised by then.
struct Cut {
    image: FaultFs,
    /// Records appended since the last restart (all of them, if none).
    model: Model,
    durable: Lsn,
    /// The LSN of the last restart (0 if none): the snapshot LSN the owner
    /// reopens with (`min_next_lsn = base + 1`).
    base: Lsn,
}

/// Runs `ops`, taking a power-cut image after op number `crash_at`.
/// `always` runs under `SyncPolicy::Always`, whose appends are buffered in
/// memory until a sync (they are in neither image of the `FaultFs` before);
/// otherwise `Never`, whose appends go straight into the mapping.
fn run(ops: &[Op], crash_at: usize, salt: u64, writeback: Option<u64>, always: bool) -> Result<Cut, String> {
    let fs = FaultFs::new();
    let policy = if always { SyncPolicy::Always } else { SyncPolicy::Never };
    let (wal, _) = Wal::open(&wal_dir(), fault_opts(&fs, SEGMENT, policy)).map_err(|e| e.to_string())?;
    let mut model = Model::new();
    let mut base = 0;
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
            Op::Restart(skip) => {
                base = wal.last_lsn() + skip;
                wal.restart_after(base).map_err(|e| e.to_string())?;
                model.clear();
            }
        }
        if i == crash_at {
            // Read before the cut: durable_lsn only moves after the flush.
            let durable = wal.durable_lsn();
            let cut = match writeback {
                Some(seed) => fs.crash_with_writeback(seed),
                None => fs.crash(),
            };
            image = Some(Cut { image: cut, model: model.clone(), durable, base });
        }
    }
    drop(wal);
    image.ok_or_else(|| "crash point after the last op".into())
}

fn check_prefix(got: &[(Lsn, Vec<u8>)], cut: &Cut) -> Result<(), TestCaseError> {
    let Cut { model, durable, base, .. } = cut;
    let durable = *durable;
    prop_assert!(got.len() <= model.len());
    for ((lsn, p), (ml, mp, _)) in got.iter().zip(model) {
        prop_assert_eq!(lsn, ml, "not a prefix");
        prop_assert!(p == mp, "wrong payload at LSN {}", lsn);
    }
    let last = got.last().map_or(*base, |r| r.0);
    prop_assert!(last >= durable, "durable LSN {} lost (recovered up to {})", durable, last);
    if let Some(n) = got.len().checked_sub(1) {
        prop_assert!(!model[n].2, "recovery ended inside a batch at LSN {}", last);
    }
    Ok(())
}

fn open(fs: &FaultFs, recovery: RecoveryMode, base: Lsn) -> fastcache_wal::Result<(Wal, fastcache_wal::OpenReport)> {
    let opts = WalOptions { recovery, min_next_lsn: base + 1, ..fault_opts(fs, SEGMENT, SyncPolicy::Never) };
    Wal::open(&wal_dir(), opts)
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
        let cut = run(&ops, crash_at, salt, None, always).map_err(TestCaseError::fail)?;
        let (wal, report) = open(&cut.image, RecoveryMode::TolerateTornTail, cut.base).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let got = read_all(&wal).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(got.len() as u64, report.records);
        check_prefix(&got, &cut)?;
        // The recovered log takes appends above the restart LSN and survives
        // another reopen (without the option: the log itself knows).
        prop_assert!(report.last_lsn >= cut.base);
        let next = wal.append(b"after").map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(next, report.last_lsn + 1);
        wal.close().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let (wal, again) = open(&cut.image.crash(), RecoveryMode::TolerateTornTail, 0).map_err(|e| TestCaseError::fail(e.to_string()))?;
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
        let cut = run(&ops, crash_at, salt, Some(seed), always).map_err(TestCaseError::fail)?;
        match open(&cut.image.crash(), RecoveryMode::TolerateTornTail, cut.base) {
            Ok((wal, _)) => check_prefix(&read_all(&wal).map_err(|e| TestCaseError::fail(e.to_string()))?, &cut)?,
            Err(e) => prop_assert!(e.is_corruption(), "{}", e),
        }
        let (wal, _) = open(&cut.image, RecoveryMode::PointInTime, cut.base).map_err(|e| TestCaseError::fail(e.to_string()))?;
        check_prefix(&read_all(&wal).map_err(|e| TestCaseError::fail(e.to_string()))?, &cut)?;
        drop(wal);
    }
}
