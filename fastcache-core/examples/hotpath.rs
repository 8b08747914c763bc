//! Times the GET/SET hot path in a tight loop (sequential and scattered
//! keys), for profiling with callgrind or perf.
//!
//! `cargo run --release -p fastcache-core --example hotpath`

use std::time::Instant;

use fastcache_core::Engine;

fn main() {
    let engine = Engine::default();
    let mut s = engine.session();
    let n = 100_000usize;
    let keys: Vec<Vec<u8>> = (0..n).map(|i| format!("key:{i:012}").into_bytes()).collect();
    let value = [b'v'; 64];
    for k in &keys {
        engine.execute(&mut s, &[b"SET", k, &value]);
    }
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2_000_000);
    for (label, step) in [("sequential", 1usize), ("scattered", 7919)] {
        let t = Instant::now();
        let mut i = 0;
        for _ in 0..rounds {
            i = (i + step) % n;
            std::hint::black_box(engine.execute(&mut s, &[b"GET", &keys[i]]));
        }
        let get = t.elapsed().as_nanos() as f64 / rounds as f64;
        let t = Instant::now();
        for _ in 0..rounds {
            i = (i + step) % n;
            std::hint::black_box(engine.execute(&mut s, &[b"SET", &keys[i], &value]));
        }
        let set = t.elapsed().as_nanos() as f64 / rounds as f64;
        println!("{label:>10}: GET {get:.0} ns/op, SET {set:.0} ns/op");
    }
}
