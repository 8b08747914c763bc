//! Failover with redis-sentinel: three real `redis-sentinel` processes
//! monitor FastCache nodes on loopback ports (Debian's `redis-sentinel`
//! package; `.ci/run` installs it).
//!
//! With `FASTCACHE_TEST_REFERENCE` set (`1` for the `redis-server` on PATH,
//! or a binary's path) the same scenarios run against Redis, to check that
//! the expectations are Redis'; FastCache-only checks are skipped there.
//!
//! Bounded: each wait has its own limit; the file takes about 20 s (the
//! tests run in parallel; Sentinel waits 8 s before it converts a restarted
//! old primary).

mod common;
#[path = "common/sentinel.rs"]
mod sentinel_harness;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{reference_mode, TempDir};
use redis::Commands;
use sentinel_harness::{dataset, debug_digest, info, role, try_connect, wait_for, Node, NodeSpec, Sentinels};

/// Hello messages go out every 2 s: three sentinels know each other well
/// within this.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(20);
/// down-after-milliseconds is 1 s; the quorum is asked every second.
const DOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// A failover normally ends 2–5 s after the kill. A split vote makes the
/// sentinels retry after twice the failover timeout (20 s), so allow one.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(35);
/// A restarted old primary is converted to a replica once it has reported
/// `role:master` for 8 s (Sentinel's 4 × publish period), then syncs.
const REJOIN_TIMEOUT: Duration = Duration::from_secs(30);

fn fail(what: &str, sentinels: &Sentinels, nodes: &[&Node]) -> ! {
    let logs: String = nodes.iter().map(|n| format!("--- node {}\n{}", n.port(), tail(&n.log(), 40))).collect();
    panic!("{what}\nsentinel events:\n{}\n{logs}", sentinels.events());
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

fn field(con: &mut redis::Connection, section: &str, name: &str) -> Result<String, String> {
    let map = info(con, section).map_err(|e| e.to_string())?;
    map.get(name).cloned().ok_or_else(|| format!("INFO {section} has no {name}"))
}

#[test]
fn sentinel_monitors_a_fastcache_primary() {
    let t0 = Instant::now();
    let dir = TempDir::new("sentinel-primary");
    let mut primary = Node::start(NodeSpec { dir: dir.path(), port: 0, replica_of: None });
    let port = primary.port();
    let sentinels = Sentinels::start_three(port);

    // They find each other through the primary's `__sentinel__:hello`
    // channel, and each sees a healthy master at the primary's address.
    for s in &sentinels.0 {
        let seen = wait_for("num-other-sentinels = 2", DISCOVERY_TIMEOUT, || {
            let m = s.master().map_err(|e| e.to_string())?;
            let ok = m.get("num-other-sentinels").is_some_and(|n| n == "2")
                && m.get("flags").is_some_and(|f| f == "master")
                && m.get("role-reported").is_some_and(|r| r == "master");
            if ok {
                Ok(m)
            } else {
                Err(format!("{m:?}"))
            }
        });
        let m = seen.unwrap_or_else(|e| fail(&e, &sentinels, &[&primary]));
        assert_eq!(m.get("port"), Some(&port.to_string()), "{m:?}");
        assert_eq!(s.master_port().ok().flatten(), Some(port), "GET-MASTER-ADDR-BY-NAME");
    }
    let discovered = t0.elapsed();

    // What they did on the primary: each has a named command link and a
    // named Pub/Sub link subscribed to the hello channel, and none of the
    // commands they sent failed.
    let mut con = primary.client();
    let subs: Vec<(String, i64)> =
        redis::cmd("PUBSUB").arg("NUMSUB").arg("__sentinel__:hello").query(&mut con).unwrap();
    assert_eq!(subs, vec![("__sentinel__:hello".to_string(), 3)]);
    let list: String = redis::cmd("CLIENT").arg("LIST").query(&mut con).unwrap();
    let named = |suffix: &str| {
        list.lines().filter(|l| l.split(' ').any(|f| f.starts_with("name=sentinel-") && f.ends_with(suffix))).count()
    };
    assert_eq!((named("-cmd"), named("-pubsub")), (3, 3), "CLIENT LIST:\n{list}");
    if !reference_mode() {
        let stats = info(&mut con, "commandstats").unwrap();
        let failed: Vec<_> = stats.iter().filter(|(_, v)| !v.contains("failed_calls=0")).collect();
        assert!(failed.is_empty(), "commands that failed for Sentinel: {failed:?}");
    }
    // No sentinel found the primary unresponsive while it was up.
    for s in &sentinels.0 {
        let log = s.log();
        assert!(!log.contains("+sdown"), "sdown before the kill:\n{log}");
    }

    // SIGKILL: every sentinel sees it down, subjectively and then by quorum.
    primary.kill9();
    let killed = Instant::now();
    for s in &sentinels.0 {
        let flags = wait_for("flags s_down and o_down", DOWN_TIMEOUT, || {
            let m = s.master().map_err(|e| e.to_string())?;
            let flags = m.get("flags").cloned().unwrap_or_default();
            let set: Vec<&str> = flags.split(',').collect();
            if set.contains(&"s_down") && set.contains(&"o_down") && set.contains(&"master") {
                Ok(flags)
            } else {
                Err(flags)
            }
        });
        flags.unwrap_or_else(|e| fail(&e, &sentinels, &[&primary]));
    }
    println!(
        "sentinel_monitors_a_fastcache_primary: discovery {discovered:?}, o_down on all three {:?} after the kill, total {:?}",
        killed.elapsed(),
        t0.elapsed()
    );
}

/// The (key, value) pairs a writer saw WAIT acknowledge, and how many of its
/// writes WAIT reported on no replica.
type Writes = (Vec<(String, String)>, usize);

/// Writes `SET k v` + `WAIT 1 1000` from two threads for at most `run_for`
/// or until the first error (the primary is gone); returns the keys whose
/// WAIT saw at least one replica, and how many writes WAIT reported
/// unreplicated.
fn waited_writes(node: &Node, run_for: Duration, stop: Arc<AtomicBool>) -> Vec<JoinHandle<Writes>> {
    (0..2)
        .map(|t| {
            let mut con = node.client();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let (mut acked, mut unreplicated) = (Vec::new(), 0);
                let end = Instant::now() + run_for;
                let mut i = 0u64;
                while Instant::now() < end && !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let (k, v) = (format!("k:{t}:{i}"), format!("v{i}"));
                    if con.set::<_, _, ()>(&k, &v).is_err() {
                        break;
                    }
                    match redis::cmd("WAIT").arg(1).arg(1000).query::<i64>(&mut con) {
                        Ok(n) if n >= 1 => acked.push((k, v)),
                        Ok(_) => unreplicated += 1,
                        Err(_) => break,
                    }
                }
                (acked, unreplicated)
            })
        })
        .collect()
}

#[test]
fn sentinel_fails_over_to_the_replica_without_losing_waited_writes() {
    let t0 = Instant::now();
    let (pdir, rdir) = (TempDir::new("sentinel-p"), TempDir::new("sentinel-r"));
    let mut p = Node::start(NodeSpec { dir: pdir.path(), port: 0, replica_of: None });
    let p_port = p.port();
    let r = Node::start(NodeSpec { dir: rdir.path(), port: 0, replica_of: Some(p_port) });
    let r_port = r.port();
    let (mut pc, mut rc) = (p.client(), r.client());
    let linked = wait_for("the replica's link is up", Duration::from_secs(15), || {
        let link = field(&mut rc, "replication", "master_link_status")?;
        let slaves = field(&mut pc, "replication", "connected_slaves")?;
        if link == "up" && slaves == "1" {
            Ok(())
        } else {
            Err(format!("master_link_status:{link} connected_slaves:{slaves}"))
        }
    });
    if let Err(e) = linked {
        panic!("{e}\n--- primary\n{}\n--- replica\n{}", tail(&p.log(), 40), tail(&r.log(), 40));
    }

    // Sentinels learn the replica from the primary's INFO and connect to it.
    let sentinels = Sentinels::start_three(p_port);
    for s in &sentinels.0 {
        let ready = wait_for("two other sentinels and a healthy replica", DISCOVERY_TIMEOUT, || {
            let m = s.master().map_err(|e| e.to_string())?;
            let reps = s.replicas().map_err(|e| e.to_string())?;
            let healthy = reps.iter().any(|r| {
                r.get("port") == Some(&r_port.to_string())
                    && r.get("flags").is_some_and(|f| f == "slave")
                    && r.get("master-link-status").is_some_and(|l| l == "ok")
            });
            if m.get("num-other-sentinels").is_some_and(|n| n == "2") && healthy {
                Ok(())
            } else {
                Err(format!("master {m:?} replicas {reps:?}"))
            }
        });
        ready.unwrap_or_else(|e| fail(&e, &sentinels, &[&p, &r]));
    }
    let monitored = t0.elapsed();

    // Waited writes, and a SIGKILL of the primary in the middle of them.
    let stop = Arc::new(AtomicBool::new(false));
    let writers = waited_writes(&p, Duration::from_secs(2), stop.clone());
    std::thread::sleep(Duration::from_millis(1000));
    p.kill9();
    let killed = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let mut acked: Vec<(String, String)> = Vec::new();
    let mut unreplicated = 0;
    for w in writers {
        let (a, u) = w.join().expect("writer thread panicked");
        acked.extend(a);
        unreplicated += u;
    }
    assert!(!acked.is_empty(), "no write was acknowledged by WAIT 1 before the kill");

    // The sentinels promote the replica and send clients to it.
    for s in &sentinels.0 {
        let promoted = wait_for("GET-MASTER-ADDR-BY-NAME is the replica", FAILOVER_TIMEOUT, || match s.master_port() {
            Ok(Some(port)) if port == r_port => Ok(()),
            other => Err(format!("{other:?}")),
        });
        promoted.unwrap_or_else(|e| fail(&e, &sentinels, &[&p, &r]));
    }
    let failover = killed.elapsed();
    let mut rc = r.client();
    let r_role = role(&mut rc).unwrap();
    assert_eq!(r_role.first().map(String::as_str), Some("master"), "ROLE on the promoted replica: {r_role:?}");
    let asked = sentinels.0[0].master_port().unwrap().expect("a master address");
    let mut nc = sentinel_harness::connect(asked);
    let mut missing = Vec::new();
    for (k, v) in &acked {
        let got: Option<String> = nc.get(k).unwrap();
        if got.as_deref() != Some(v.as_str()) {
            missing.push((k.clone(), got));
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} writes acknowledged by WAIT 1 are not on the new primary, e.g. {:?}",
        missing.len(),
        acked.len(),
        &missing[..missing.len().min(5)]
    );
    for i in 0..100 {
        let written: redis::RedisResult<()> = nc.set(format!("after:{i}"), i);
        written.unwrap_or_else(|e| fail(&format!("write to the new primary: {e}"), &sentinels, &[&p, &r]));
    }
    let before = info(&mut rc, "stats").unwrap();
    let count = |m: &BTreeMap<String, String>, k: &str| m.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);

    // The old primary comes back on its data and port; Sentinel makes it
    // a replica of the new primary, and it catches up.
    drop(p);
    let restarted = Instant::now();
    let p = Node::start(NodeSpec { dir: pdir.path(), port: p_port, replica_of: None });
    // NOTE: Sentinel's reconfiguration ends with CLIENT KILL TYPE normal,
    // so every probe of the old primary uses a fresh connection.
    let rejoined = wait_for("the old primary is a connected replica of the new one", REJOIN_TIMEOUT, || {
        let mut pc = try_connect(p_port).map_err(|e| e.to_string())?;
        let role = role(&mut pc).map_err(|e| e.to_string())?;
        let link = field(&mut pc, "replication", "master_link_status").unwrap_or_default();
        let r_port_s = r_port.to_string();
        match role.as_slice() {
            [kind, _, port, state, ..]
                if kind == "slave" && *port == r_port_s && state == "connected" && link == "up" =>
            {
                Ok(())
            }
            _ => Err(format!("ROLE {role:?} master_link_status:{link}")),
        }
    });
    rejoined.unwrap_or_else(|e| fail(&e, &sentinels, &[&p, &r]));
    let rejoin = restarted.elapsed();
    let after = info(&mut rc, "stats").unwrap();
    let (full, partial) = (
        count(&after, "sync_full") - count(&before, "sync_full"),
        count(&after, "sync_partial_ok") - count(&before, "sync_partial_ok"),
    );
    if !reference_mode() {
        // The WAL is the backlog: the old primary continues from its own
        // log instead of receiving a snapshot.
        assert_eq!(
            (full, partial),
            (0, 1),
            "sync_full and sync_partial_ok growth on the new primary; old primary's log:\n{}\nnew primary's log:\n{}",
            p.log(),
            r.log()
        );
    }

    // Both hold the same data.
    let same = wait_for("the old primary's data equals the new primary's", Duration::from_secs(15), || {
        let (mut rc, mut pc) = (r.client(), try_connect(p_port).map_err(|e| e.to_string())?);
        let want = dataset(&mut rc).map_err(|e| e.to_string())?;
        let got = dataset(&mut pc).map_err(|e| e.to_string())?;
        if want != got {
            let only_r = want.keys().filter(|k| !got.contains_key(*k)).count();
            let only_p = got.keys().filter(|k| !want.contains_key(*k)).count();
            return Err(format!(
                "{} vs {} keys; {only_r} only on the new primary, {only_p} only on the old",
                want.len(),
                got.len()
            ));
        }
        match (debug_digest(&mut rc), debug_digest(&mut pc)) {
            (Some(a), Some(b)) if a != b => Err(format!("DEBUG DIGEST {a} vs {b}")),
            _ => Ok(want.len()),
        }
    });
    let keys = same.unwrap_or_else(|e| fail(&e, &sentinels, &[&p, &r]));
    println!(
        "sentinel_fails_over_…: monitored after {monitored:?}; {} waited writes ({unreplicated} WAIT 0); \
         promotion {failover:?} after the kill; rejoin {rejoin:?} after the restart (sync_full +{full}, \
         sync_partial_ok +{partial}); {keys} keys equal; total {:?}",
        acked.len(),
        t0.elapsed()
    );
}
