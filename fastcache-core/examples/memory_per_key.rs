//! Measures bytes per key the way Redis' figure was taken: N string keys
//! shaped like `DEBUG POPULATE N key 64` (`key:0`, `key:1`, … with 64-byte
//! values), then the engine's own accounting (`used_memory`) and the growth
//! of the process' resident set, each divided by N.
//!
//! `cargo run --release -p fastcache-core --example memory_per_key [N]`

use fastcache_core::{Engine, Reply};

fn rss_bytes() -> u64 {
    // /proc/self/statm: size resident shared … in pages.
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    pages * 4096
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(5_000_000);
    let engine = Engine::default();
    let mut session = engine.session();
    let before = rss_bytes();
    let value = [b'x'; 64];
    for i in 0..n {
        let key = format!("key:{i}");
        let r = engine.execute(&mut session, &[b"SET", key.as_bytes(), &value]);
        assert_eq!(r, Reply::OK);
    }
    let after = rss_bytes();
    println!("keys:                 {n}");
    println!("used_memory:          {} bytes", engine.used_memory());
    println!("used_memory per key:  {:.1} bytes", engine.used_memory() as f64 / n as f64);
    println!("RSS growth per key:   {:.1} bytes", (after.saturating_sub(before)) as f64 / n as f64);
    println!("(Redis 7.0 on this machine: 157 bytes per key used_memory, same shape)");
}
