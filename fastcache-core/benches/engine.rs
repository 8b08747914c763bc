//! Engine hot paths, measured directly (no network): GET, SET, ZADD, ZRANGE
//! on one core, and SET from two threads to show that shards scale.
//! Run with `cargo xtask bench`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use fastcache_core::Engine;

const KEYS: usize = 100_000;

fn keys() -> Vec<Vec<u8>> {
    (0..KEYS).map(|i| format!("key:{i:012}").into_bytes()).collect()
}

fn strings(c: &mut Criterion) {
    let engine = Engine::default();
    let mut s = engine.session();
    let keys = keys();
    let value = [b'v'; 64];
    for k in &keys {
        engine.execute(&mut s, &[b"SET", k, &value]);
    }
    let mut g = c.benchmark_group("strings");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("set_64b", |b| {
        b.iter(|| {
            i = (i + 7919) % KEYS;
            black_box(engine.execute(&mut s, &[b"SET", &keys[i], &value]))
        })
    });
    g.bench_function("get_64b", |b| {
        b.iter(|| {
            i = (i + 7919) % KEYS;
            black_box(engine.execute(&mut s, &[b"GET", &keys[i]]))
        })
    });
    g.finish();
}

fn set_two_threads(c: &mut Criterion) {
    let engine = Engine::default();
    let keys = keys();
    let value = [b'v'; 64];
    let mut g = c.benchmark_group("strings_2_threads");
    const BATCH: usize = 20_000;
    g.throughput(Throughput::Elements(2 * BATCH as u64));
    g.bench_function("set_64b", |b| {
        b.iter_batched(
            || (),
            |()| {
                std::thread::scope(|sc| {
                    for t in 0..2 {
                        let engine = &engine;
                        let keys = &keys;
                        sc.spawn(move || {
                            let mut s = engine.session();
                            for j in 0..BATCH {
                                let k = &keys[(j * 2 + t) % KEYS];
                                black_box(engine.execute(&mut s, &[b"SET", k, &value]));
                            }
                        });
                    }
                })
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn zsets(c: &mut Criterion) {
    let engine = Engine::default();
    let mut s = engine.session();
    let members: Vec<Vec<u8>> = (0..10_000).map(|i| format!("member:{i}").into_bytes()).collect();
    for (i, m) in members.iter().enumerate() {
        engine.execute(&mut s, &[b"ZADD", b"z", i.to_string().as_bytes(), m]);
    }
    let mut g = c.benchmark_group("zsets");
    g.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    g.bench_function("zadd_update_10k", |b| {
        b.iter(|| {
            i = (i + 7919) % members.len();
            let score = ((i * 31) % 100_000).to_string();
            black_box(engine.execute(&mut s, &[b"ZADD", b"z", score.as_bytes(), &members[i]]))
        })
    });
    g.bench_function("zrange_10_of_10k", |b| {
        b.iter(|| {
            i = (i + 7919) % (members.len() - 10);
            let (a, z) = (i.to_string(), (i + 9).to_string());
            black_box(engine.execute(&mut s, &[b"ZRANGE", b"z", a.as_bytes(), z.as_bytes()]))
        })
    });
    g.bench_function("zrank_10k", |b| {
        b.iter(|| {
            i = (i + 7919) % members.len();
            black_box(engine.execute(&mut s, &[b"ZRANK", b"z", &members[i]]))
        })
    });
    g.finish();
}

criterion_group!(benches, strings, set_two_threads, zsets);
criterion_main!(benches);
