//! Promotion chains replicas correctly: after `REPLICAOF NO ONE` on one
//! replica, the other replica and the old primary continue from it by
//! partial resynchronisation (its previous replication ID stays valid), and
//! an old primary whose log went past the promotion point drops that tail
//! (`+REWIND`) instead of receiving a snapshot. Real processes on loopback.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::Server;

fn cmd(server: &Server, args: &[&str]) -> redis::Value {
    let mut c = server.client();
    let mut command = redis::cmd(args[0]);
    for a in &args[1..] {
        command.arg(*a);
    }
    command.query(&mut c).unwrap_or_else(|e| panic!("{args:?} on port {}: {e}", server.port))
}

fn info(server: &Server, section: &str) -> BTreeMap<String, String> {
    let text: String = redis::cmd("INFO").arg(section).query(&mut server.client()).expect("INFO");
    text.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.to_string(), v.trim().to_string())).collect()
}

fn num(server: &Server, section: &str, field: &str) -> u64 {
    info(server, section).get(field).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn digest(server: &Server) -> String {
    redis::cmd("DEBUG").arg("DIGEST").query(&mut server.client()).expect("DEBUG DIGEST")
}

/// Waits until `replica` streams from `primary` at its offset with the same
/// data.
fn converge(primary: &Server, replica: &Server, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = info(replica, "replication");
        let target = num(primary, "replication", "master_repl_offset");
        let up = r.get("master_link_status").map(String::as_str) == Some("up");
        let at = r.get("slave_repl_offset").and_then(|v| v.parse::<u64>().ok()) == Some(target);
        if up && at && digest(primary) == digest(replica) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: the replica did not converge (its INFO replication {r:?}, primary offset {target});\n\
             replica log:\n{}",
            replica.stderr_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn write(server: &Server, prefix: &str, n: usize) {
    let mut c = server.client();
    for i in 0..n {
        let _: () = redis::pipe()
            .cmd("SET")
            .arg(format!("{prefix}:{i}"))
            .arg(i)
            .cmd("HSET")
            .arg(format!("{prefix}:h"))
            .arg(i)
            .arg(i)
            .ignore()
            .query(&mut c)
            .expect("write");
    }
}

fn replica_of(primary: &Server) -> Server {
    let of = format!("127.0.0.1:{}", primary.port);
    Server::start_with(&[("FASTCACHE_REPLICAOF", of.as_str())])
}

#[test]
fn a_promoted_replica_continues_the_others_partially() {
    let p = Server::start();
    write(&p, "before", 500);
    let a = replica_of(&p);
    let b = replica_of(&p);
    converge(&p, &a, "replica A");
    converge(&p, &b, "replica B");
    let old_id = info(&p, "replication")["master_replid"].clone();
    let promoted_at = num(&p, "replication", "master_repl_offset");

    // The old primary keeps taking writes for a while after A is promoted:
    // its log goes past the promotion point (as when a failover cuts off
    // writes that never reached the replica).
    assert_eq!(cmd(&a, &["REPLICAOF", "NO", "ONE"]), redis::Value::Okay);
    write(&p, "lost", 50);
    let a_info = info(&a, "replication");
    assert_eq!(a_info["role"], "master");
    assert_eq!(a_info["master_replid2"], old_id, "the previous ID is kept");
    assert_eq!(a_info["second_repl_offset"], (promoted_at + 1).to_string());
    write(&a, "after", 200);

    // B follows A: same history up to where A forked, so partially.
    let port = a.port.to_string();
    assert_eq!(cmd(&b, &["REPLICAOF", "127.0.0.1", &port]), redis::Value::Okay);
    converge(&a, &b, "replica B after the promotion");
    assert_eq!((num(&a, "stats", "sync_full"), num(&a, "stats", "sync_partial_ok")), (0, 1), "B continued partially");

    // The old primary follows A too: it drops the 50 writes A never had.
    assert_eq!(cmd(&p, &["REPLICAOF", "127.0.0.1", &port]), redis::Value::Okay);
    converge(&a, &p, "the old primary after the promotion");
    assert_eq!(
        (num(&a, "stats", "sync_full"), num(&a, "stats", "sync_partial_ok")),
        (0, 2),
        "the old primary continued partially (rewound); its log:\n{}",
        p.stderr_text()
    );
    assert!(p.stderr_text().contains("dropping the records after the fork"), "{}", p.stderr_text());
    assert_eq!(cmd(&p, &["EXISTS", "lost:0"]), redis::Value::Int(0));
    assert_eq!(cmd(&p, &["GET", "after:199"]), redis::Value::BulkString(b"199".to_vec()));
    assert_eq!(info(&p, "replication")["fastcache_last_sync"], "partial");

    // Writes on A reach both.
    write(&a, "later", 100);
    converge(&a, &b, "replica B at the end");
    converge(&a, &p, "the old primary at the end");
}

#[test]
fn replication_metrics_and_role() {
    let p = Server::start_with(&[("FASTCACHE_METRICS_ADDR", "127.0.0.1:0")]);
    write(&p, "k", 10);
    let r = replica_of(&p);
    converge(&p, &r, "replica");
    let scrape = |s: &Server| {
        let mut stream = std::net::TcpStream::connect(s.metrics_addr()).expect("metrics");
        use std::io::{Read, Write};
        stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n").expect("request");
        let mut body = String::new();
        stream.read_to_string(&mut body).expect("response");
        body
    };
    let m = scrape(&p);
    assert!(m.contains("fastcache_replication_connected_replicas 1"), "{m}");
    assert!(m.contains("fastcache_replication_syncs_served_total{kind=\"full\"} 1"), "{m}");
    let role = cmd(&r, &["ROLE"]);
    let redis::Value::Array(parts) = role else { panic!("ROLE: {role:?}") };
    assert_eq!(parts[0], redis::Value::BulkString(b"slave".to_vec()));
    assert_eq!(parts[3], redis::Value::BulkString(b"connected".to_vec()));
    let role = cmd(&p, &["ROLE"]);
    let redis::Value::Array(parts) = role else { panic!("ROLE: {role:?}") };
    assert_eq!(parts[0], redis::Value::BulkString(b"master".to_vec()));
    let redis::Value::Array(replicas) = &parts[2] else { panic!("ROLE replicas: {parts:?}") };
    assert_eq!(replicas.len(), 1);
}

#[test]
fn promoted_in_the_middle_of_a_full_sync_the_data_directory_matches_memory() {
    let p = Server::start();
    {
        // Enough that the sync takes a moment: 200k keys of 100 bytes.
        let mut c = p.client();
        let value = "v".repeat(100);
        for start in (0..200_000).step_by(1000) {
            let mut mset = redis::cmd("MSET");
            for i in start..start + 1000 {
                mset.arg(format!("bulk:{i}")).arg(&value);
            }
            let _: () = mset.query(&mut c).expect("MSET");
        }
        let _: () = redis::cmd("SET").arg("counter").arg(5).query(&mut c).expect("SET");
    }
    let dir = common::TempDir::new("promoted-mid-sync");
    let dir_s = dir.path().to_string_lossy().into_owned();
    let mut r = Server::start_with(&[("PERSISTENCE_DIR", dir_s.as_str())]);
    write(&r, "own", 20);
    let port = p.port.to_string();
    assert_eq!(cmd(&r, &["REPLICAOF", "127.0.0.1", &port]), redis::Value::Okay);
    // Promote as soon as the sync is under way (bounded).
    let deadline = Instant::now() + Duration::from_secs(20);
    let mid_sync = loop {
        let text: String = redis::cmd("INFO").arg("replication").query(&mut r.client()).unwrap_or_default();
        if text.contains("master_sync_in_progress:1") || text.contains("fastcache_last_sync:full") {
            break text.contains("master_sync_in_progress:1");
        }
        assert!(Instant::now() < deadline, "the full sync never started:\n{text}\n{}", r.stderr_text());
        std::thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(cmd(&r, &["REPLICAOF", "NO", "ONE"]), redis::Value::Okay);
    if mid_sync {
        assert!(r.stderr_text().contains("promoted during a full sync"), "{}", r.stderr_text());
    }
    // Acknowledged writes on the promoted node, some depending on what it holds.
    let mut c = r.client();
    let counter: i64 = redis::cmd("INCR").arg("counter").query(&mut c).expect("INCR");
    let _: () = redis::cmd("SET").arg("after-promotion").arg("yes").query(&mut c).expect("SET");
    let before = digest(&r);
    // A crash now must bring back exactly what clients saw.
    let _ = std::process::Command::new("kill").args(["-KILL", &r.pid().to_string()]).status();
    assert!(r.wait_exit(Duration::from_secs(10)).is_some());
    drop(r);
    let r = Server::start_with(&[("PERSISTENCE_DIR", dir_s.as_str())]);
    assert_eq!(digest(&r), before, "after the crash the data differs from what was served; log:\n{}", r.stderr_text());
    assert_eq!(cmd(&r, &["GET", "counter"]), redis::Value::BulkString(counter.to_string().into_bytes()));
    assert_eq!(cmd(&r, &["GET", "after-promotion"]), redis::Value::BulkString(b"yes".to_vec()));
    drop(dir);
}
