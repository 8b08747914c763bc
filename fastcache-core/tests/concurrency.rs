//! Many sessions on many threads: counters are exact and MULTI/EXEC blocks
//! spanning shards are atomic. Bounded in operations, not time.

use std::thread;

use fastcache_core::{Engine, Reply};

#[test]
fn concurrent_incr_is_exact() {
    let engine = Engine::default();
    const THREADS: usize = 4;
    const N: usize = 5_000;
    thread::scope(|s| {
        for _ in 0..THREADS {
            let engine = &engine;
            s.spawn(move || {
                let mut session = engine.session();
                for _ in 0..N {
                    engine.execute(&mut session, &[b"INCR", b"counter"]);
                    engine.execute(&mut session, &[b"HINCRBY", b"h", b"f", b"2"]);
                }
            });
        }
    });
    let mut s = engine.session();
    assert_eq!(engine.execute(&mut s, &[b"GET", b"counter"]), Reply::Bulk((THREADS * N).to_string().into_bytes()));
    assert_eq!(engine.execute(&mut s, &[b"HGET", b"h", b"f"]), Reply::Bulk((2 * THREADS * N).to_string().into_bytes()));
}

fn int(r: &Reply) -> i64 {
    match r {
        Reply::Bulk(b) => String::from_utf8_lossy(b).parse().unwrap_or(i64::MIN),
        Reply::Int(n) => *n,
        _ => i64::MIN,
    }
}

#[test]
fn transactions_across_shards_are_atomic() {
    let engine = Engine::default();
    let accounts: Vec<Vec<u8>> = (0..8).map(|i| format!("acct:{i}").into_bytes()).collect();
    let mut s = engine.session();
    for a in &accounts {
        engine.execute(&mut s, &[b"SET", a, b"1000"]);
    }
    const TRANSFERS: usize = 3_000;
    thread::scope(|sc| {
        for t in 0..2 {
            let (engine, accounts) = (&engine, &accounts);
            sc.spawn(move || {
                let mut s = engine.session();
                for i in 0..TRANSFERS {
                    let from = &accounts[(i + t) % accounts.len()];
                    let to = &accounts[(i * 3 + 1 + t) % accounts.len()];
                    engine.execute(&mut s, &[b"MULTI"]);
                    engine.execute(&mut s, &[b"DECRBY", from, b"7"]);
                    engine.execute(&mut s, &[b"INCRBY", to, b"7"]);
                    let r = engine.execute(&mut s, &[b"EXEC"]);
                    assert!(matches!(r, Reply::Array(ref v) if v.len() == 2), "{r:?}");
                }
            });
        }
        let (engine, accounts) = (&engine, &accounts);
        sc.spawn(move || {
            let mut s = engine.session();
            for _ in 0..1_000 {
                let mut argv: Vec<&[u8]> = vec![b"MGET"];
                argv.extend(accounts.iter().map(Vec::as_slice));
                let r = engine.execute(&mut s, &argv);
                let Reply::Array(vals) = r else { panic!("MGET answered {r:?}") };
                // MGET locks every shard it reads at once: it sees no
                // transfer half done.
                assert_eq!(vals.iter().map(int).sum::<i64>(), 8_000);
            }
        });
    });
}
