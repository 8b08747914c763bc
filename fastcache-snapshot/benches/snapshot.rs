//! Snapshot container benchmarks: writing (compress, checksum, fsync,
//! rename) and loading (read, verify, decompress) on 1, 2 and 4 threads.
//!
//! ```text
//! cargo bench -p fastcache-snapshot --bench snapshot             # everything
//! cargo bench -p fastcache-snapshot --bench snapshot -- load     # one group
//! SNAPSHOT_BENCH_MB=512 cargo bench -p fastcache-snapshot --bench snapshot
//! ```
//! The payload imitates the engine's: `SNAPSHOT_BENCH_MB` MiB (default 64)
//! of ~90-byte entries (a `key:N` key, a 64-byte value drawn from a small
//! alphabet, varint lengths), 1 MiB of raw entries per chunk. Files live in
//! a temporary directory under `$SNAPSHOT_BENCH_DIR` (default: the system
//! temp dir); loads run with the page cache warm.

use std::path::PathBuf;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use fastcache_snapshot::{SnapshotMeta, SnapshotReader, SnapshotWriter, WriterOptions};

const CHUNK: usize = 1 << 20;

fn bench_dir() -> tempfile::TempDir {
    let base = std::env::var_os("SNAPSHOT_BENCH_DIR").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    tempfile::tempdir_in(base).expect("create a benchmark directory")
}

/// Chunks of synthetic entries and their entry counts.
fn payload() -> Vec<(Vec<u8>, u32)> {
    let mb: usize = std::env::var("SNAPSHOT_BENCH_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    let mut rng = fastrand_like(0x5eed);
    let mut chunks = Vec::new();
    let (mut buf, mut entries, mut key) = (Vec::with_capacity(CHUNK + 128), 0u32, 0u64);
    while chunks.len() < mb {
        let k = format!("key:{key}");
        key += 1;
        buf.push(k.len() as u8);
        buf.extend_from_slice(k.as_bytes());
        buf.push(64);
        buf.extend((0..64).map(|_| b'a' + (rng() % 16) as u8));
        entries += 1;
        if buf.len() >= CHUNK {
            chunks.push((std::mem::take(&mut buf), entries));
            entries = 0;
        }
    }
    chunks
}

fn fastrand_like(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

fn write(path: &std::path::Path, chunks: &[(Vec<u8>, u32)]) {
    let meta = SnapshotMeta { lsn: 1, created_unix_ms: 1 };
    let mut w = SnapshotWriter::create(path, meta, WriterOptions::default()).expect("create");
    for (raw, entries) in chunks {
        w.write_chunk(raw, *entries).expect("write chunk");
    }
    w.finish().expect("finish");
}

fn benches(c: &mut Criterion) {
    let chunks = payload();
    let raw_bytes: u64 = chunks.iter().map(|(r, _)| r.len() as u64).sum();
    let dir = bench_dir();

    let mut g = c.benchmark_group("write");
    g.sample_size(10).measurement_time(Duration::from_secs(10)).throughput(Throughput::Bytes(raw_bytes));
    g.bench_function("compress_fsync_publish", |b| {
        b.iter(|| {
            let path = dir.path().join("w.fcs");
            let _ = std::fs::remove_file(&path);
            write(&path, &chunks);
        })
    });
    g.finish();

    let path = dir.path().join("r.fcs");
    write(&path, &chunks);
    let reader = SnapshotReader::open(&path).expect("open");
    let info = reader.info().clone();
    eprintln!(
        "snapshot: {} chunks, {} raw bytes, {} file bytes (ratio {:.2})",
        info.chunks,
        info.raw_bytes,
        info.file_bytes,
        info.raw_bytes as f64 / info.file_bytes as f64
    );

    let mut g = c.benchmark_group("load");
    g.sample_size(10).measurement_time(Duration::from_secs(10)).throughput(Throughput::Bytes(raw_bytes));
    for threads in [1usize, 2, 4] {
        g.bench_with_input(BenchmarkId::new("load_parallel", threads), &threads, |b, &threads| {
            b.iter(|| reader.load_parallel(threads, |_, _| Ok::<(), ()>(())).expect("load"))
        });
    }
    g.bench_function("verify", |b| b.iter(|| reader.verify().expect("verify")));
    g.finish();
}

criterion_group!(snapshot, benches);
criterion_main!(snapshot);
