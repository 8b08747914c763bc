//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use fastcache_wal::testing::FaultFs;
use fastcache_wal::{Lsn, RecoveryMode, SyncPolicy, Wal, WalOptions};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The log directory used inside a `FaultFs`.
pub fn wal_dir() -> PathBuf {
    PathBuf::from("/wal")
}

pub fn fault_opts(fs: &FaultFs, segment_size: u64, sync: SyncPolicy) -> WalOptions {
    WalOptions { segment_size, sync, recovery: RecoveryMode::TolerateTornTail, fs: fs.as_fs(), ..WalOptions::default() }
}

pub fn os_opts(segment_size: u64, sync: SyncPolicy) -> WalOptions {
    WalOptions { segment_size, sync, ..WalOptions::default() }
}

/// Every record from the start.
pub fn read_all(wal: &Wal) -> fastcache_wal::Result<Vec<(Lsn, Vec<u8>)>> {
    wal.reader(0)?.collect()
}

/// A payload determined by its LSN (and a per-test salt), of varying length,
/// so a wrong or shifted record is noticed.
pub fn payload(lsn: Lsn, salt: u64) -> Vec<u8> {
    let mut x = lsn.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt ^ 0xD1B5_4A32_D192_ED03;
    let len = (x % 200) as usize;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Names of the segment files in a real directory, sorted.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "wal")).collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Segment paths inside a `FaultFs` directory, sorted.
pub fn fault_segments(fs: &FaultFs) -> Vec<PathBuf> {
    fs.list(&wal_dir()).into_iter().filter(|n| n.ends_with(".wal")).map(|n| wal_dir().join(n)).collect()
}

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// A minimal executor: polls `f` on this thread, parking between wake-ups,
/// for at most `limit`. `None` if it did not finish in time.
pub fn block_on<F: Future>(f: F, limit: Duration) -> Option<F::Output> {
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    let deadline = Instant::now() + limit;
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return Some(v);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::park_timeout(deadline - now);
    }
}

/// Polls `f` once with a waker that only counts wake-ups.
pub fn poll_once<F: Future + Unpin>(f: &mut F, wakes: &Arc<WakeCounter>) -> Poll<F::Output> {
    let waker = Waker::from(wakes.clone());
    let mut cx = Context::from_waker(&waker);
    std::pin::Pin::new(f).poll(&mut cx)
}

#[derive(Default)]
pub struct WakeCounter(pub std::sync::atomic::AtomicUsize);

impl Wake for WakeCounter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Where a record sits, found by a parser written from `docs/formats.md`
/// independently of the crate's.
#[derive(Debug, Clone)]
pub struct RecordAt {
    pub lsn: Lsn,
    pub offset: usize,
    pub len: usize,
    pub more: bool,
}

#[derive(Debug, Clone)]
pub struct SegmentLayout {
    pub path: PathBuf,
    pub first_lsn: Lsn,
    pub size: usize,
    pub records: Vec<RecordAt>,
    /// End of the last record.
    pub data_end: usize,
}

pub fn layout_of(path: &Path, bytes: &[u8]) -> SegmentLayout {
    let u32_at = |b: &[u8], i: usize| u32::from_le_bytes(b[i..i + 4].try_into().unwrap_or([0; 4]));
    let u64_at = |b: &[u8], i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
    assert_eq!(&bytes[0..8], b"FCWALSEG", "magic");
    let first_lsn = u64_at(bytes, 16);
    let size = u64_at(bytes, 24) as usize;
    let mut records = Vec::new();
    let mut off = 64;
    while off + 16 <= size && bytes[off..off + 16].iter().any(|&b| b != 0) {
        let len_field = u32_at(bytes, off);
        let len = 16 + (len_field & 0x3fff_ffff) as usize;
        records.push(RecordAt { lsn: u64_at(bytes, off + 8), offset: off, len, more: len_field & 0x8000_0000 != 0 });
        off += len;
    }
    SegmentLayout { path: path.to_path_buf(), first_lsn, size, records, data_end: off }
}

/// Layout of every segment of a `FaultFs` log.
pub fn fault_layout(fs: &FaultFs) -> Vec<SegmentLayout> {
    fault_segments(fs).iter().filter_map(|p| fs.read(p).map(|b| layout_of(p, &b))).collect()
}

/// The longest prefix of `model` that ends at a batch boundary and contains
/// no LSN ≥ `first_bad`.
pub fn batch_prefix(model: &[(Lsn, Vec<u8>, bool)], first_bad: Lsn) -> usize {
    let mut keep = 0;
    for (i, (lsn, _, more)) in model.iter().enumerate() {
        if *lsn >= first_bad {
            break;
        }
        if !more {
            keep = i + 1;
        }
    }
    keep
}
