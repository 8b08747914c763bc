//! `maxmemory` with every policy family, and active expiry: limits hold,
//! policies choose from the right keys, deletions are journalled as DEL.

use std::sync::Arc;
use std::time::Duration;

use fastcache_core::{Engine, EngineConfig, EvictionPolicy, ManualClock, Record, Reply};

fn engine(max: u64, policy: EvictionPolicy) -> Engine {
    Engine::new(EngineConfig { maxmemory: max, maxmemory_policy: policy, ..EngineConfig::default() })
}

#[test]
fn noeviction_refuses_writes_but_serves_reads() {
    let e = engine(200_000, EvictionPolicy::NoEviction);
    let mut s = e.session();
    let value = vec![b'x'; 1000];
    let mut refused = None;
    for i in 0..1000 {
        let r = e.execute(&mut s, &[b"SET", format!("k{i}").as_bytes(), &value]);
        if r != Reply::OK {
            refused = Some((i, r));
            break;
        }
    }
    let (i, r) = refused.expect("writes must be refused once over maxmemory");
    assert_eq!(r, Reply::Error("OOM command not allowed when used memory > 'maxmemory'.".into()));
    assert!(i > 50, "refused too early: {i}");
    assert_eq!(e.execute(&mut s, &[b"GET", b"k0"]), Reply::Bulk(value.clone()));
    // Commands that free memory are still allowed.
    assert_eq!(e.execute(&mut s, &[b"DEL", b"k0"]), Reply::Int(1));
}

#[test]
fn allkeys_lru_stays_under_the_limit_and_journals_evictions() {
    let max = 500_000;
    let e = engine(max, EvictionPolicy::AllKeysLru);
    let mut s = e.session();
    let value = vec![b'x'; 1000];
    let mut dels = 0;
    let mut journal = |r: &Record| {
        dels += r.ops.iter().filter(|op| op.argv[0].0 == b"DEL").count();
        Ok(())
    };
    for i in 0..5_000 {
        let r = e.execute_with(&mut s, &[b"SET", format!("k{i}").as_bytes(), &value], &mut journal).reply;
        assert_eq!(r, Reply::OK);
        // Eviction runs before each write, so usage exceeds the limit by
        // at most one write.
        assert!(e.used_memory() <= max + 2_000, "used {} > max {max}", e.used_memory());
    }
    let evicted = e.stats().evicted_keys;
    assert!(evicted > 4_000, "evicted only {evicted}");
    assert_eq!(dels as u64, evicted);
    assert_eq!(e.dbsize(0) as u64 + evicted, 5_000);
}

#[test]
fn volatile_policies_evict_only_keys_with_a_ttl() {
    for policy in [
        EvictionPolicy::VolatileLru,
        EvictionPolicy::VolatileRandom,
        EvictionPolicy::VolatileTtl,
        EvictionPolicy::VolatileLfu,
    ] {
        let e = engine(400_000, policy);
        let mut s = e.session();
        let value = vec![b'x'; 1000];
        for i in 0..100 {
            assert_eq!(e.execute(&mut s, &[b"SET", format!("keep{i}").as_bytes(), &value]), Reply::OK);
        }
        for i in 0..1_000 {
            let r = e.execute(&mut s, &[b"SET", format!("tmp{i}").as_bytes(), &value, b"EX", b"1000"]);
            if r != Reply::OK {
                // Only when every volatile key is gone may a write fail.
                assert_eq!(e.keyspace_info()[0].2, 0, "{policy:?}: {r:?}");
                break;
            }
        }
        for i in 0..100 {
            assert_eq!(e.execute(&mut s, &[b"EXISTS", format!("keep{i}").as_bytes()]), Reply::Int(1), "{policy:?}");
        }
        assert!(e.stats().evicted_keys > 0, "{policy:?} evicted nothing");
    }
}

#[test]
fn active_expiry_collects_keys_nobody_reads() {
    let clock = ManualClock::new(1_700_000_000_000);
    let e = Engine::new(EngineConfig { clock: Arc::new(clock.clone()), ..EngineConfig::default() });
    let mut s = e.session();
    for i in 0..2_000 {
        e.execute(&mut s, &[b"SET", format!("t{i}").as_bytes(), b"v", b"PX", b"100"]);
    }
    for i in 0..100 {
        e.execute(&mut s, &[b"SET", format!("p{i}").as_bytes(), b"v"]);
    }
    clock.advance(101);
    let mut deleted = Vec::new();
    let mut journal = |r: &Record| {
        deleted.extend(r.ops.iter().map(|op| op.argv[1].0.clone()));
        Ok(())
    };
    let report = e.active_expire_cycle(&mut journal, Duration::from_secs(10));
    assert_eq!(report.expired, 2_000);
    assert!(!report.timed_out);
    assert_eq!(deleted.len(), 2_000);
    assert_eq!(e.dbsize(0), 100);
    assert_eq!(e.stats().expired_keys, 2_000);
    // A budget of zero stops at once and keeps what it did consistent.
    assert!(e.active_expire_cycle(&mut |_: &Record| Ok(()), Duration::ZERO).expired <= 2_000);
}
