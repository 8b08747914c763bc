//! Snapshot encode and decode throughput of the engine side: walking a
//! populated keyspace into entry bytes (`SnapshotCursor::fill`) and loading
//! those bytes into an empty engine (`Engine::load_snapshot_chunk`).
//! Compression and checksums are `fastcache-snapshot`'s bench.
//!
//! Reported per key (criterion's elements/s = keys/s) and per byte of
//! entry encoding (bytes/s = MB/s of snapshot payload).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use fastcache_core::Engine;

const KEYS: usize = 200_000;
const CHUNK: usize = 1 << 20;

/// Strings with 64-byte values, like the xtask save benchmark, plus a few
/// collections so every entry shape is exercised.
fn populated() -> Engine {
    let engine = Engine::default();
    let mut s = engine.session();
    let value = vec![b'v'; 64];
    for i in 0..KEYS {
        let key = format!("key:{i}");
        engine.execute(&mut s, &[b"SET", key.as_bytes(), &value]);
    }
    for c in 0..100 {
        let k = format!("coll:{c}");
        for m in 0..100 {
            let m = format!("m{m}");
            engine.execute(&mut s, &[b"HSET", format!("h{k}").as_bytes(), m.as_bytes(), b"x"]);
            engine.execute(&mut s, &[b"ZADD", format!("z{k}").as_bytes(), b"1.5", m.as_bytes()]);
            engine.execute(&mut s, &[b"RPUSH", format!("l{k}").as_bytes(), m.as_bytes()]);
        }
    }
    engine
}

fn encode_all(engine: &Engine) -> Vec<Vec<u8>> {
    let (mut cursor, ()) = engine.begin_snapshot(|| ()).expect("no snapshot running");
    let mut chunks = Vec::new();
    while !cursor.is_done() {
        let mut chunk = Vec::with_capacity(CHUNK + CHUNK / 4);
        cursor.fill(&mut chunk, CHUNK);
        if !chunk.is_empty() {
            chunks.push(chunk);
        }
    }
    chunks
}

fn bench(c: &mut Criterion) {
    let engine = populated();
    let keys = (KEYS + 300) as u64;
    let chunks = encode_all(&engine);
    let bytes: u64 = chunks.iter().map(|c| c.len() as u64).sum();

    let mut g = c.benchmark_group("snapshot");
    g.sample_size(10);
    g.throughput(Throughput::Elements(keys));
    g.bench_function("encode_keys", |b| b.iter(|| encode_all(&engine)));
    let load_all = |target: Engine| {
        for c in &chunks {
            target.load_snapshot_chunk(c).expect("valid chunk");
        }
        target
    };
    g.bench_function("decode_load_keys", |b| b.iter_batched(Engine::default, load_all, BatchSize::PerIteration));
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("encode_bytes", |b| b.iter(|| encode_all(&engine)));
    g.bench_function("decode_load_bytes", |b| b.iter_batched(Engine::default, load_all, BatchSize::PerIteration));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
