//! Crash tests: the real server under concurrent writers is killed with
//! SIGKILL at a random moment and restarted on the same directory; every
//! write it acknowledged must be there (DESIGN.md invariant 1).
//!
//! Bounded: `FASTCACHE_CRASH_ROUNDS` rounds (default 8), each with a
//! random 200–1200 ms of load.

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Server, TempDir};
use redis::Commands;

/// What the writers saw acknowledged in one round.
#[derive(Default, Debug)]
struct Acked {
    strings: BTreeMap<String, String>,
    counter: i64,
    list: Vec<String>,
    hash: BTreeMap<String, String>,
    zset: BTreeMap<String, f64>,
    sets: Vec<String>,
    /// (ack time, key) of SETs, for the interval loss window.
    timeline: Vec<(Instant, String)>,
}

fn rounds() -> usize {
    std::env::var("FASTCACHE_CRASH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(8)
}

/// Runs writers against `server` until `stop`, recording every acknowledged
/// reply. A writer stops at its first error (the server is gone).
fn load(server: &Server, round: usize, stop: Arc<AtomicBool>) -> Arc<Mutex<Acked>> {
    let acked = Arc::new(Mutex::new(Acked::default()));
    let mut handles = Vec::new();
    for kind in 0..5 {
        let mut con = server.client();
        let (acked, stop) = (acked.clone(), stop.clone());
        handles.push(std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) && i < 1_000_000 {
                i += 1;
                let ok = match kind {
                    0 => {
                        let (k, v) = (format!("r{round}:s:{i}"), format!("v{i}"));
                        let r: redis::RedisResult<()> = con.set(&k, &v);
                        r.map(|()| {
                            let mut a = acked.lock().unwrap_or_else(|e| e.into_inner());
                            a.timeline.push((Instant::now(), k.clone()));
                            a.strings.insert(k, v);
                        })
                    }
                    1 => con.incr::<_, _, i64>(format!("r{round}:counter"), 1).map(|n| {
                        let mut a = acked.lock().unwrap_or_else(|e| e.into_inner());
                        a.counter = a.counter.max(n);
                    }),
                    2 => con.rpush::<_, _, i64>(format!("r{round}:list"), format!("e{i}")).map(|_| {
                        acked.lock().unwrap_or_else(|e| e.into_inner()).list.push(format!("e{i}"));
                    }),
                    3 => {
                        // A MULTI/EXEC block: both or neither after a crash.
                        let r: redis::RedisResult<()> = redis::pipe()
                            .atomic()
                            .hset(format!("r{round}:hash"), format!("f{i}"), i)
                            .zadd(format!("r{round}:zset"), format!("m{i}"), i as f64)
                            .query(&mut con);
                        r.map(|()| {
                            let mut a = acked.lock().unwrap_or_else(|e| e.into_inner());
                            a.hash.insert(format!("f{i}"), i.to_string());
                            a.zset.insert(format!("m{i}"), i as f64);
                        })
                    }
                    _ => con.sadd::<_, _, i64>(format!("r{round}:set"), format!("x{i}")).map(|_| {
                        acked.lock().unwrap_or_else(|e| e.into_inner()).sets.push(format!("x{i}"));
                    }),
                };
                if ok.is_err() {
                    break;
                }
            }
        }));
    }
    let joiner = acked.clone();
    std::thread::spawn(move || {
        for h in handles {
            let _ = h.join();
        }
        drop(joiner);
    });
    acked
}

/// Checks that everything in `acked` survived; returns the SET keys lost.
fn verify(server: &Server, round: usize, acked: &Acked, allow_loss: bool) -> Vec<String> {
    let mut con = server.client();
    let mut lost = Vec::new();
    for (k, v) in &acked.strings {
        let got: Option<String> = con.get(k).unwrap_or(None);
        match got {
            Some(g) => assert_eq!(&g, v, "round {round}: {k} has the wrong value"),
            None => lost.push(k.clone()),
        }
    }
    if !allow_loss {
        assert!(
            lost.is_empty(),
            "round {round}: {} acknowledged SETs lost, e.g. {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        );
        let counter: i64 = con.get(format!("r{round}:counter")).unwrap_or(0);
        assert!(counter >= acked.counter, "round {round}: counter {counter} < acknowledged {}", acked.counter);
        let list: Vec<String> = con.lrange(format!("r{round}:list"), 0, -1).unwrap_or_default();
        assert!(
            list.len() >= acked.list.len(),
            "round {round}: list has {} < {} acknowledged",
            list.len(),
            acked.list.len()
        );
        assert_eq!(&list[..acked.list.len()], &acked.list[..], "round {round}: list prefix differs");
        let hash: BTreeMap<String, String> = con.hgetall(format!("r{round}:hash")).unwrap_or_default();
        for (f, v) in &acked.hash {
            assert_eq!(hash.get(f), Some(v), "round {round}: hash field {f}");
        }
        for (m, s) in &acked.zset {
            let got: Option<f64> = con.zscore(format!("r{round}:zset"), m).unwrap_or(None);
            assert_eq!(got, Some(*s), "round {round}: zset member {m}");
            // MULTI/EXEC atomicity: the hash field of the same block exists.
        }
        // Blocks are all-or-nothing: every zset member has its hash field.
        let members: Vec<String> = con.zrange(format!("r{round}:zset"), 0, -1).unwrap_or_default();
        for m in members {
            let f = format!("f{}", &m[1..]);
            assert!(hash.contains_key(&f), "round {round}: {m} without {f}: a MULTI block was torn");
        }
        for x in &acked.sets {
            let there: bool = con.sismember(format!("r{round}:set"), x).unwrap_or(false);
            assert!(there, "round {round}: set member {x}");
        }
    }
    lost
}

fn kill9(server: &mut Server) {
    let _ = std::process::Command::new("kill").args(["-KILL", &server.pid().to_string()]).status();
    let _ = server.wait_exit(Duration::from_secs(10));
}

fn crash_rounds(fsync: &str, extra: &[(&str, &str)]) -> Vec<(usize, usize, Duration)> {
    crash_rounds_in(fsync, extra).0
}

/// [`crash_rounds`], also returning how many snapshot files the data
/// directory holds at the end.
fn crash_rounds_in(fsync: &str, extra: &[(&str, &str)]) -> (Vec<(usize, usize, Duration)>, usize) {
    let dir = TempDir::new(&format!("crash-{fsync}"));
    let dir_s = dir.path().to_string_lossy().into_owned();
    let mut env: Vec<(&str, &str)> = vec![("PERSISTENCE_DIR", &dir_s), ("WAL_FSYNC", fsync)];
    env.extend_from_slice(extra);
    let mut history: Vec<(usize, Acked)> = Vec::new();
    let mut windows = Vec::new();
    for round in 0..rounds() {
        let mut server = Server::start_with(&env);
        // Everything acknowledged in earlier rounds is still there.
        for (r, acked) in &history {
            verify(&server, *r, acked, fsync != "always");
        }
        let stop = Arc::new(AtomicBool::new(false));
        let acked = load(&server, round, stop.clone());
        // With snapshots on, keep one running nearly all the time so that
        // kills land in the middle of snapshots, not only between them.
        let snapshotter = env.iter().any(|(k, _)| *k == "SNAPSHOT_INTERVAL").then(|| {
            let mut con = server.client();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut started = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    match redis::cmd("BGSAVE").query::<String>(&mut con) {
                        Ok(_) => started += 1,
                        Err(e) if e.to_string().contains("in progress") => {}
                        Err(_) => break,
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                started
            })
        });
        let run_for = Duration::from_millis(200 + fastrand_ms(round) % 1000);
        std::thread::sleep(run_for);
        let killed_at = Instant::now();
        kill9(&mut server);
        stop.store(true, Ordering::Relaxed);
        if let Some(t) = snapshotter {
            let started = t.join().unwrap_or(0);
            assert!(started > 0, "round {round}: no BGSAVE was started");
        }
        std::thread::sleep(Duration::from_millis(50));
        drop(server);
        let acked = std::mem::take(&mut *acked.lock().unwrap_or_else(|e| e.into_inner()));
        let restarted = Server::start_with(&env);
        let lost = verify(&restarted, round, &acked, fsync != "always");
        // The loss window: from the first lost acknowledged write to the kill.
        let window = acked
            .timeline
            .iter()
            .filter(|(_, k)| lost.contains(k))
            .map(|(t, _)| killed_at.saturating_duration_since(*t))
            .max()
            .unwrap_or_default();
        windows.push((acked.strings.len(), lost.len(), window));
        drop(restarted);
        history.push((round, acked));
    }
    let snapshots = std::fs::read_dir(dir.path().join("snapshots"))
        .map(|d| d.filter_map(Result::ok).filter(|e| e.file_name().to_string_lossy().ends_with(".fcs")).count())
        .unwrap_or(0);
    (windows, snapshots)
}

/// A cheap per-round pseudo-random number, so each round kills at a
/// different moment without a dependency.
fn fastrand_ms(round: usize) -> u64 {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    u64::from(nanos) ^ (round as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[test]
fn sigkill_loses_no_acknowledged_write_with_fsync_always() {
    let windows = crash_rounds("always", &[]);
    let acked: usize = windows.iter().map(|w| w.0).sum();
    assert!(acked > 0, "no write was acknowledged at all");
    eprintln!("always: {} rounds, {acked} acknowledged SETs, none lost", windows.len());
}

#[test]
fn sigkill_loss_window_with_fsync_interval_is_bounded() {
    let interval = Duration::from_millis(200);
    let windows = crash_rounds("interval", &[("WAL_FLUSH_INTERVAL", "200ms")]);
    for (i, (acked, lost, window)) in windows.iter().enumerate() {
        eprintln!("interval round {i}: {acked} acknowledged SETs, {lost} lost, loss window {window:?}");
        assert!(
            *window <= interval + Duration::from_millis(300),
            "round {i}: loss window {window:?} exceeds the flush interval"
        );
    }
}

#[test]
fn sigkill_during_continuous_snapshots_loses_no_acknowledged_write() {
    // A snapshot is due every 100 ms while writers run, so kills land
    // before, during and after snapshots; recovery loads the newest one
    // and replays the WAL after it.
    let (windows, snapshots) = crash_rounds_in("always", &[("SNAPSHOT_INTERVAL", "100ms")]);
    let acked: usize = windows.iter().map(|w| w.0).sum();
    assert!(acked > 0, "no write was acknowledged at all");
    assert!(snapshots > 0, "no snapshot was ever published");
    eprintln!(
        "always + snapshots: {} rounds, {acked} acknowledged SETs, none lost, {snapshots} snapshots kept",
        windows.len()
    );
}
