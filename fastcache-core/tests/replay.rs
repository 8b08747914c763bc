//! Record-replay equivalence (DESIGN.md invariant 2): for random command
//! sequences — including random picks (SPOP), relative expiry, float
//! arithmetic, lazy expiry, MULTI/EXEC, SORT … STORE and database moves —
//! encoding every journalled record, decoding it and applying it to an
//! empty engine gives the same state as the run that produced it. Applied
//! as a replica applies them (`apply_record_with`, replica mode), each record
//! is journalled unchanged and reads answer as on the primary without
//! deleting expired keys.

use std::sync::Arc;

use fastcache_core::{Engine, EngineConfig, ManualClock, Record, Reply, Session};
use proptest::prelude::*;

fn key(k: u8) -> String {
    format!("k{}", k % 4)
}

fn elem(e: u8) -> String {
    format!("{}", e % 7)
}

/// One step: a command (as words) or a clock advance (empty vec + ms).
#[derive(Debug, Clone)]
enum Step {
    Cmd(Vec<String>),
    Multi(Vec<Vec<String>>),
    Advance(u64),
}

fn command() -> impl Strategy<Value = Vec<String>> {
    let k = any::<u8>();
    let e = any::<u8>();
    let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    prop_oneof![
        (k, e).prop_map(move |(k, e)| w(&["SET", &key(k), &elem(e)])),
        (k, e, 1u32..3000).prop_map(move |(k, e, t)| w(&["SET", &key(k), &elem(e), "PX", &t.to_string()])),
        (k, e, 1u32..3).prop_map(move |(k, e, t)| w(&["SETEX", &key(k), &t.to_string(), &elem(e)])),
        k.prop_map(move |k| w(&["INCRBYFLOAT", &key(k), "1.1"])),
        (k, e).prop_map(move |(k, e)| w(&["APPEND", &key(k), &elem(e)])),
        (k, 1u32..3000).prop_map(move |(k, t)| w(&["GETEX", &key(k), "PX", &t.to_string()])),
        k.prop_map(move |k| w(&["GETEX", &key(k), "PERSIST"])),
        (k, 1u32..3).prop_map(move |(k, t)| w(&["EXPIRE", &key(k), &t.to_string()])),
        (k, 1u32..3000).prop_map(move |(k, t)| w(&["PEXPIRE", &key(k), &t.to_string(), "GT"])),
        k.prop_map(move |k| w(&["EXPIRE", &key(k), "-1"])),
        k.prop_map(move |k| w(&["PERSIST", &key(k)])),
        k.prop_map(move |k| w(&["GET", &key(k)])),
        k.prop_map(move |k| w(&["DEL", &key(k)])),
        (k, any::<u8>()).prop_map(move |(a, b)| w(&["RENAME", &key(a), &key(b)])),
        (k, any::<u8>()).prop_map(move |(a, b)| w(&["COPY", &key(a), &key(b), "REPLACE"])),
        k.prop_map(move |k| w(&["MOVE", &key(k), "1"])),
        (0u8..2).prop_map(move |d| w(&["SELECT", &d.to_string()])),
        (k, e).prop_map(move |(k, e)| w(&["LPUSH", &key(k), &elem(e), &elem(e.wrapping_add(1))])),
        k.prop_map(move |k| w(&["RPOP", &key(k)])),
        (k, any::<u8>()).prop_map(move |(a, b)| w(&["LMOVE", &key(a), &key(b), "LEFT", "RIGHT"])),
        k.prop_map(move |k| w(&["BLPOP", &key(k), "0"])),
        (k, e).prop_map(move |(k, e)| w(&["SADD", &key(k), &elem(e), &elem(e.wrapping_add(3))])),
        k.prop_map(move |k| w(&["SPOP", &key(k)])),
        k.prop_map(move |k| w(&["SPOP", &key(k), "2"])),
        k.prop_map(move |k| w(&["SRANDMEMBER", &key(k), "-3"])),
        (k, any::<u8>(), e).prop_map(move |(a, b, e)| w(&["SMOVE", &key(a), &key(b), &elem(e)])),
        (k, any::<u8>()).prop_map(move |(a, b)| w(&["SINTERSTORE", "dst", &key(a), &key(b)])),
        (k, e, e).prop_map(move |(k, f, v)| w(&["HSET", &key(k), &elem(f), &elem(v)])),
        (k, e).prop_map(move |(k, f)| w(&["HINCRBYFLOAT", &key(k), &elem(f), "0.25"])),
        (k, e).prop_map(move |(k, f)| w(&["HDEL", &key(k), &elem(f)])),
        (k, e, e).prop_map(move |(k, s, m)| w(&["ZADD", &key(k), &elem(s), &elem(m)])),
        (k, e).prop_map(move |(k, m)| w(&["ZINCRBY", &key(k), "0.5", &elem(m)])),
        k.prop_map(move |k| w(&["ZPOPMIN", &key(k)])),
        (k, any::<u8>()).prop_map(move |(a, b)| w(&["ZUNIONSTORE", "zdst", "2", &key(a), &key(b)])),
        k.prop_map(move |k| w(&["SORT", &key(k), "ALPHA", "STORE", "sorted"])),
        Just(w(&["SWAPDB", "0", "1"])),
        Just(w(&["FLUSHDB"])),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        12 => command().prop_map(Step::Cmd),
        2 => proptest::collection::vec(command(), 1..4).prop_map(Step::Multi),
        3 => (1u64..2500).prop_map(Step::Advance),
    ]
}

fn run(engine: &Engine, s: &mut Session, log: &mut Vec<Vec<u8>>, words: &[String]) -> Reply {
    let argv: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
    let mut journal = |r: &Record| {
        // Every record goes through its byte encoding, as through the WAL.
        log.push(r.encode());
        Ok(())
    };
    engine.execute_with(s, &argv, &mut journal).reply
}

/// Everything observable about one key, read without side effects that
/// would differ between the two engines (they share the clock).
fn observe(engine: &Engine, db: usize, k: &str) -> Vec<Reply> {
    let mut s = engine.session();
    let mut q = |words: &[&str]| {
        let argv: Vec<&[u8]> = words.iter().map(|w| w.as_bytes()).collect();
        engine.execute(&mut s, &argv)
    };
    q(&["SELECT", &db.to_string()]);
    let ty = q(&["TYPE", k]);
    let value = match &ty {
        Reply::Simple(t) if t == "string" => q(&["GET", k]),
        Reply::Simple(t) if t == "list" => q(&["LRANGE", k, "0", "-1"]),
        Reply::Simple(t) if t == "hash" => sorted(q(&["HGETALL", k])),
        Reply::Simple(t) if t == "set" => sorted(q(&["SMEMBERS", k])),
        Reply::Simple(t) if t == "zset" => q(&["ZRANGE", k, "0", "-1", "WITHSCORES"]),
        _ => Reply::Nil,
    };
    vec![ty, value, q(&["PEXPIRETIME", k])]
}

fn sorted(r: Reply) -> Reply {
    let items = match r {
        Reply::Array(v) | Reply::Set(v) => v,
        Reply::Map(m) => m.into_iter().flat_map(|(a, b)| [a, b]).collect(),
        other => return other,
    };
    let mut text: Vec<String> = items.iter().map(|x| format!("{x:?}")).collect();
    text.sort();
    Reply::Array(text.into_iter().map(|t| Reply::Bulk(t.into_bytes())).collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn replaying_the_journal_rebuilds_the_state(steps in proptest::collection::vec(step(), 1..80)) {
        let clock = ManualClock::new(1_700_000_000_000);
        let config = || EngineConfig { clock: Arc::new(clock.clone()), ..EngineConfig::default() };
        let engine = Engine::new(config());
        let mut s = engine.session();
        let mut log: Vec<Vec<u8>> = Vec::new();
        for st in &steps {
            match st {
                Step::Advance(ms) => clock.advance(*ms),
                Step::Cmd(words) => {
                    run(&engine, &mut s, &mut log, words);
                }
                Step::Multi(cmds) => {
                    run(&engine, &mut s, &mut log, &["MULTI".to_string()]);
                    for c in cmds {
                        run(&engine, &mut s, &mut log, c);
                    }
                    run(&engine, &mut s, &mut log, &["EXEC".to_string()]);
                }
            }
        }
        let copy = Engine::new(config());
        // A replica applies the same records and journals each one as given.
        let replica = Engine::new(config());
        replica.set_replica_mode(true);
        let mut rejournalled: Vec<Vec<u8>> = Vec::new();
        for bytes in &log {
            let rec = Record::decode(bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
            copy.apply_record(&rec).map_err(|e| TestCaseError::fail(format!("{e} in {rec:?}")))?;
            let mut journal = |r: &Record| {
                rejournalled.push(r.encode());
                Ok(())
            };
            replica.apply_record_with(&rec, &mut journal).map_err(|e| TestCaseError::fail(format!("{e} in {rec:?}")))?;
        }
        prop_assert_eq!(&rejournalled, &log);
        prop_assert_eq!(replica.digest(), copy.digest());
        let replica_state = replica.digest();
        for db in 0..2 {
            for k in ["k0", "k1", "k2", "k3", "dst", "zdst", "sorted"] {
                let seen = observe(&engine, db, k);
                prop_assert_eq!(&seen, &observe(&copy, db, k), "db {} key {}", db, k);
                // A replica's reads see what the primary's see, and expire
                // nothing themselves.
                prop_assert_eq!(&seen, &observe(&replica, db, k), "replica: db {} key {}", db, k);
            }
        }
        prop_assert_eq!(replica.digest(), replica_state);
    }
}
