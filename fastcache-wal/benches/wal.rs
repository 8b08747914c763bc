//! WAL benchmarks: append throughput per sync policy, payload size and
//! writer count, and replay throughput of a large log.
//!
//! ```text
//! cargo bench -p fastcache-wal --bench wal                    # everything
//! cargo bench -p fastcache-wal --bench wal -- append_always   # one group
//! WAL_BENCH_REPLAY_MB=1024 cargo bench -p fastcache-wal --bench wal -- replay
//! ```
//! The log lives in a temporary directory on the disk that holds
//! `$WAL_BENCH_DIR` (default: the system temp dir). `append_always` waits
//! for durability after every append (one thread waits for its own record;
//! with four threads, syncs are shared: group commit). `replay` opens a
//! log of `WAL_BENCH_REPLAY_MB` MiB (default 256, so CI stays fast) of
//! `WAL_BENCH_REPLAY_PAYLOAD`-byte records (default 100, a typical SET) and
//! reads every record back; it runs with the page cache warm, which is the
//! case after a process crash (not after a power cut).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fastcache_wal::{SyncPolicy, Wal, WalOptions, WriteMode};

fn bench_dir() -> tempfile::TempDir {
    let base = std::env::var_os("WAL_BENCH_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    tempfile::tempdir_in(base).expect("create a benchmark directory")
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// How an append waits for durability.
#[derive(Clone, Copy)]
enum Wait {
    No,
    /// `wait_durable_blocking`: under `Always` the caller syncs (leader) or
    /// finds its record covered by a concurrent sync (follower).
    Blocking,
    /// `wait_durable` polled by a minimal executor: the background syncer
    /// syncs and wakes the future (the async server's path).
    Future,
}

struct ThreadWaker(std::thread::Thread);

impl std::task::Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let waker = std::task::Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = std::task::Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// Runs `iters` appends spread over `threads` threads, each waiting for its
/// record as `wait` says. Old segments are deleted as the run goes
/// (as snapshots would), so the disk does not fill up.
fn run_appends(wal: &Wal, payload: &[u8], iters: u64, threads: u64, wait: Wait) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let n = iters / threads + u64::from(t < iters % threads);
            s.spawn(move || {
                for _ in 0..n {
                    let lsn = wal.append(payload).expect("append");
                    match wait {
                        Wait::No => {}
                        Wait::Blocking => wal.wait_durable_blocking(lsn).expect("durable"),
                        Wait::Future => block_on(wal.wait_durable(lsn)).expect("durable"),
                    }
                }
            });
        }
    });
    let took = start.elapsed();
    wal.truncate_before(wal.last_lsn()).expect("truncate");
    took
}

fn appends(c: &mut Criterion) {
    let policies = [
        ("append_always", SyncPolicy::Always, Wait::Blocking, WriteMode::Auto),
        ("append_always_future", SyncPolicy::Always, Wait::Future, WriteMode::Auto),
        ("append_always_mmap_writes", SyncPolicy::Always, Wait::Blocking, WriteMode::Mmap),
        ("append_interval_1s", SyncPolicy::Interval(Duration::from_secs(1)), Wait::No, WriteMode::Auto),
        ("append_never", SyncPolicy::Never, Wait::No, WriteMode::Auto),
        ("append_never_file_writes", SyncPolicy::Never, Wait::No, WriteMode::File),
    ];
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    for (name, policy, wait, write_mode) in policies {
        // Opening logs for a group that the command line filtered out would
        // only cost time and disk.
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str()) || f.contains(name)) {
            continue;
        }
        let mut group = c.benchmark_group(name);
        group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
        for size in [64usize, 1024] {
            for threads in [1u64, 4] {
                let dir = bench_dir();
                let opts = WalOptions { sync: policy, write_mode, ..WalOptions::default() };
                let (wal, _) = Wal::open(dir.path(), opts).expect("open");
                let payload = vec![0x5Au8; size];
                group.throughput(Throughput::ElementsAndBytes { elements: 1, bytes: size as u64 });
                group.bench_with_input(
                    BenchmarkId::new(format!("{size}B"), format!("{threads}thr")),
                    &threads,
                    |b, &threads| {
                        b.iter_custom(|iters| run_appends(&wal, &payload, iters, threads, wait));
                    },
                );
                let stats = wal.stats();
                let syncs = stats.syncs.max(1);
                eprintln!(
                    "  {name} {size}B {threads}thr: {} records, {} syncs ({:.1} records/sync), last sync {:?}",
                    stats.records_appended,
                    stats.syncs,
                    stats.records_appended as f64 / syncs as f64,
                    stats.last_sync_duration
                );
                wal.close().expect("close");
            }
        }
        group.finish();
    }
}

fn replay(c: &mut Criterion) {
    let mib = env_u64("WAL_BENCH_REPLAY_MB", 256);
    let payload_len = env_u64("WAL_BENCH_REPLAY_PAYLOAD", 100) as usize;
    let dir = bench_dir();
    let records = (mib << 20) / (payload_len as u64 + 16);
    {
        let (wal, _) =
            Wal::open(dir.path(), WalOptions { sync: SyncPolicy::Never, ..WalOptions::default() }).expect("open");
        let payload = vec![0xA5u8; payload_len];
        for _ in 0..records {
            wal.append(&payload).expect("append");
        }
        wal.close().expect("close");
    }
    let log_bytes = records * (payload_len as u64 + 16);
    let mut group = c.benchmark_group("replay");
    group.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::ElementsAndBytes { elements: records, bytes: log_bytes });
    let path = Arc::new(dir.path().to_path_buf());
    group.bench_function(BenchmarkId::new("open_and_read_all", format!("{mib}MiB_{payload_len}B")), |b| {
        b.iter(|| {
            let (wal, report) = Wal::open(&path, WalOptions::default()).expect("open");
            assert_eq!(report.records, records);
            let mut n = 0u64;
            let mut bytes = 0u64;
            for r in wal.reader(0).expect("reader") {
                let (_, p) = r.expect("record");
                n += 1;
                bytes += p.len() as u64;
            }
            assert_eq!(n, records);
            wal.close().expect("close");
            bytes
        });
    });
    group.finish();
}

criterion_group!(benches, appends, replay);
criterion_main!(benches);
