//! Snapshots through the real server: SAVE/BGSAVE/BGREWRITEAOF/LASTSAVE,
//! INFO persistence, restart from a snapshot, `-LOADING` while recovering,
//! RECOVERY_TIMEOUT, ENABLE_CRASH_RECOVERY=false and MAX_SNAPSHOT_SIZE.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Server, TempDir};
use redis::Commands;

fn info(con: &mut redis::Connection) -> BTreeMap<String, String> {
    let text: String = redis::cmd("INFO").arg("persistence").query(con).expect("INFO");
    text.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.to_string(), v.trim().to_string())).collect()
}

fn snapshot_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir.join("snapshots"))
        .map(|d| {
            d.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "fcs")).collect()
        })
        .unwrap_or_default()
}

fn fill(con: &mut redis::Connection, n: usize, value_len: usize) {
    let value = "x".repeat(value_len);
    for start in (0..n).step_by(1000) {
        let mut pipe = redis::pipe();
        for i in start..(start + 1000).min(n) {
            pipe.set(format!("key:{i}"), &value).ignore();
        }
        let () = pipe.query(con).expect("fill");
    }
}

fn dbsize(con: &mut redis::Connection) -> usize {
    redis::cmd("DBSIZE").query(con).expect("DBSIZE")
}

/// Sends one command on a raw connection and returns its reply as text.
fn call(raw: &mut common::Resp, args: &[&str]) -> String {
    raw.send(&common::encode_str(args));
    raw.read_reply()
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn save_bgsave_and_restart_from_the_snapshot() {
    let dir = TempDir::new("snap");
    let dir_s = dir.path().to_string_lossy().into_owned();
    let env = [("PERSISTENCE_DIR", dir_s.as_str()), ("SNAPSHOT_INTERVAL", "1h")];
    let mut server = Server::start_with(&env);
    let mut con = server.client();
    fill(&mut con, 2000, 100);
    let _: () = con.rpush("list", &["a", "b", "c"]).expect("rpush");
    let _: () = con.hset("hash", "f", "v").expect("hset");
    let _: () = con.zadd("zset", "m", 2.5).expect("zadd");
    let _: () = con.sadd("set", "s").expect("sadd");
    let _: () = con.set_ex("ttl", "v", 1000).expect("setex");

    let before = info(&mut con);
    assert_eq!(before["rdb_bgsave_in_progress"], "0");
    assert!(before["rdb_changes_since_last_save"].parse::<u64>().expect("number") >= 2005);
    let lastsave_before: i64 = redis::cmd("LASTSAVE").query(&mut con).expect("LASTSAVE");

    let r: String = redis::cmd("SAVE").query(&mut con).expect("SAVE");
    assert_eq!(r, "OK");
    assert_eq!(snapshot_files(dir.path()).len(), 1);
    let after = info(&mut con);
    assert_eq!(after["rdb_changes_since_last_save"], "0");
    assert_eq!(after["rdb_last_bgsave_status"], "ok");
    assert_eq!(after["snapshot_last_keys"], "2005");
    assert!(after["snapshot_last_size"].parse::<u64>().expect("number") > 0);
    let lastsave: i64 = redis::cmd("LASTSAVE").query(&mut con).expect("LASTSAVE");
    assert!(lastsave >= lastsave_before);

    // SAVE inside MULTI is refused, as in Redis.
    let _: () = redis::cmd("MULTI").query(&mut con).expect("MULTI");
    let e = redis::cmd("SAVE").query::<String>(&mut con).expect_err("SAVE in MULTI");
    assert!(e.to_string().contains("not allowed inside a transaction"), "{e}");
    let _: () = redis::cmd("DISCARD").query(&mut con).expect("DISCARD");

    // Writes after the snapshot come back from the WAL.
    let _: () = con.set("after", "1").expect("set");
    let r: String = redis::cmd("BGSAVE").query(&mut con).expect("BGSAVE");
    assert_eq!(r, "Background saving started");
    wait_until("BGSAVE", Duration::from_secs(20), || info(&mut con)["rdb_bgsave_in_progress"] == "0");
    let _: () = con.set("after2", "2").expect("set");
    let r: String = redis::cmd("BGREWRITEAOF").query(&mut con).expect("BGREWRITEAOF");
    assert!(r.starts_with("Background append only file rewriting"), "{r}");
    wait_until("BGREWRITEAOF", Duration::from_secs(20), || {
        let i = info(&mut con);
        i["aof_rewrite_in_progress"] == "0" && i["snapshots_taken"] == "3"
    });
    let _: () = con.incr("counter", 5).expect("incr");
    // Two snapshots are kept by default.
    assert_eq!(snapshot_files(dir.path()).len(), 2);
    drop(con);
    // A crash: no shutdown snapshot, the INCR is only in the WAL.
    let _ = std::process::Command::new("kill").args(["-KILL", &server.pid().to_string()]).status();
    let _ = server.wait_exit(Duration::from_secs(10));

    let mut server = Server::start_with(&env);
    let mut con = server.client();
    let i = info(&mut con);
    assert!(i["recovery_snapshot_lsn"].parse::<u64>().expect("number") > 0, "{i:?}");
    assert_eq!(i["wal_replayed_records"], "1", "only the INCR after the last snapshot is replayed");
    assert_eq!(con.get::<_, String>("key:1999").expect("get"), "x".repeat(100));
    assert_eq!(con.lrange::<_, Vec<String>>("list", 0, -1).expect("lrange"), ["a", "b", "c"]);
    assert_eq!(con.hget::<_, _, String>("hash", "f").expect("hget"), "v");
    assert_eq!(con.zscore::<_, _, f64>("zset", "m").expect("zscore"), 2.5);
    assert!(con.sismember::<_, _, bool>("set", "s").expect("sismember"));
    assert!(con.ttl::<_, i64>("ttl").expect("ttl") > 900);
    assert_eq!(con.get::<_, String>("after2").expect("get"), "2");
    assert_eq!(con.get::<_, i64>("counter").expect("get"), 5);

    // A clean stop writes a snapshot of what changed, so the next start
    // replays nothing.
    let _: () = con.incr("counter", 1).expect("incr");
    drop(con);
    server.terminate(Duration::from_secs(10));
    let server = Server::start_with(&env);
    let mut con = server.client();
    let i = info(&mut con);
    assert_eq!(i["wal_replayed_records"], "0", "{i:?}");
    assert_eq!(con.get::<_, i64>("counter").expect("get"), 6);
}

#[test]
fn commands_get_loading_while_recovery_runs_and_info_shows_progress() {
    let dir = TempDir::new("loading");
    let dir_s = dir.path().to_string_lossy().into_owned();
    // Without snapshots every write is replayed one by one: slow enough to
    // be seen loading.
    let env = [("PERSISTENCE_DIR", dir_s.as_str()), ("ENABLE_SNAPSHOTS", "false")];
    let mut server = Server::start_with(&env);
    let mut con = server.client();
    fill(&mut con, 150_000, 16);
    drop(con);
    server.terminate(Duration::from_secs(10));

    let mut server = Server::spawn_with(&env);
    let mut raw = server.resp();
    let mut saw_loading = false;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = call(&mut raw, &["PING"]);
        if reply.starts_with("-LOADING") {
            assert_eq!(reply, "-LOADING FastCache is loading the dataset in memory\r\n");
            saw_loading = true;
            let i = call(&mut raw, &["INFO", "persistence"]);
            if i.contains("loading:1") {
                assert!(i.contains("loading_loaded_perc:"), "{i}");
            }
            // Loading may end between two commands.
            let get = call(&mut raw, &["GET", "key:1"]);
            assert!(get.starts_with("-LOADING") || get.ends_with("xxxxxxxxxxxxxxxx\r\n"), "{get}");
        } else {
            assert_eq!(reply, "+PONG\r\n");
            break;
        }
        assert!(Instant::now() < deadline, "loading did not finish");
    }
    assert!(saw_loading, "recovery of 150000 records finished before the first PING");
    server.wait_loaded();
    let mut con = server.client();
    assert_eq!(dbsize(&mut con), 150_000);
}

#[test]
fn recovery_timeout_exits_non_zero_saying_how_far_it_got() {
    let dir = TempDir::new("timeout");
    let dir_s = dir.path().to_string_lossy().into_owned();
    let env = [("PERSISTENCE_DIR", dir_s.as_str()), ("ENABLE_SNAPSHOTS", "false")];
    let mut server = Server::start_with(&env);
    let mut con = server.client();
    fill(&mut con, 100_000, 16);
    drop(con);
    server.terminate(Duration::from_secs(10));

    let env = [("PERSISTENCE_DIR", dir_s.as_str()), ("ENABLE_SNAPSHOTS", "false"), ("RECOVERY_TIMEOUT", "1ms")];
    let mut server = Server::spawn_with(&env);
    let status = server.wait_exit(Duration::from_secs(30)).expect("the server did not exit");
    assert_eq!(status.code(), Some(1));
    let err = server.stderr_text();
    assert!(err.contains("did not finish within RECOVERY_TIMEOUT"), "{err}");
    // The data is untouched: a patient restart has all of it.
    let env = [("PERSISTENCE_DIR", dir_s.as_str()), ("ENABLE_SNAPSHOTS", "false")];
    let server = Server::start_with(&env);
    assert_eq!(dbsize(&mut server.client()), 100_000);
}

#[test]
fn crash_recovery_off_moves_the_old_data_aside_and_starts_empty() {
    let dir = TempDir::new("aside");
    let dir_s = dir.path().to_string_lossy().into_owned();
    let env = [("PERSISTENCE_DIR", dir_s.as_str())];
    let mut server = Server::start_with(&env);
    let mut con = server.client();
    let _: () = con.set("old", "1").expect("set");
    let _: String = redis::cmd("SAVE").query(&mut con).expect("SAVE");
    drop(con);
    server.terminate(Duration::from_secs(10));

    let env = [("PERSISTENCE_DIR", dir_s.as_str()), ("ENABLE_CRASH_RECOVERY", "false")];
    let mut server = Server::start_with(&env);
    let mut con = server.client();
    assert_eq!(dbsize(&mut con), 0);
    let _: () = con.set("new", "1").expect("set");
    drop(con);
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("moved-aside-"))
        .collect();
    assert_eq!(aside.len(), 1);
    assert!(aside[0].path().join("wal").is_dir());
    assert_eq!(snapshot_files(&aside[0].path()).len(), 1, "the old snapshot was kept");
    assert!(server.stderr_text().contains("moved aside"), "{}", server.stderr_text());
    server.terminate(Duration::from_secs(10));
    // The new data is recovered normally afterwards.
    let server = Server::start_with(&[("PERSISTENCE_DIR", dir_s.as_str())]);
    let mut con = server.client();
    assert_eq!(con.get::<_, Option<String>>("new").expect("get"), Some("1".into()));
    assert_eq!(con.get::<_, Option<String>>("old").expect("get"), None);
}

#[test]
fn a_snapshot_over_max_snapshot_size_is_abandoned_and_nothing_is_lost() {
    let dir = TempDir::new("maxsize");
    let dir_s = dir.path().to_string_lossy().into_owned();
    let env = [("PERSISTENCE_DIR", dir_s.as_str()), ("MAX_SNAPSHOT_SIZE", "64kb"), ("SNAPSHOT_INTERVAL", "1h")];
    let mut server = Server::start_with(&env);
    let mut con = server.client();
    // Random values so compression cannot squeeze them under the limit.
    let mut rng = fastrand::Rng::with_seed(7);
    for i in 0..2000 {
        let v: String = (0..64).map(|_| rng.alphanumeric()).collect();
        let _: () = con.set(format!("k{i}"), v).expect("set");
    }
    let e = redis::cmd("SAVE").query::<String>(&mut con).expect_err("SAVE over the limit");
    assert!(
        e.to_string().to_lowercase().contains("larger")
            || e.to_string().contains("MAX_SNAPSHOT_SIZE")
            || e.to_string().contains("limit"),
        "{e}"
    );
    let i = info(&mut con);
    assert_eq!(i["rdb_last_bgsave_status"], "err");
    assert_eq!(i["snapshots_failed"], "1");
    assert!(snapshot_files(dir.path()).is_empty());
    wait_until("the failure in the log", Duration::from_secs(10), || server.stderr_text().contains("snapshot failed"));
    drop(con);
    server.terminate(Duration::from_secs(10));
    let server = Server::start_with(&env);
    assert_eq!(dbsize(&mut server.client()), 2000, "the WAL kept everything");
}

#[test]
fn mid_log_corruption_refuses_to_start_and_names_the_file_and_the_way_out() {
    let dir = TempDir::new("midlog");
    let dir_s = dir.path().to_string_lossy().into_owned();
    let env = [("PERSISTENCE_DIR", dir_s.as_str()), ("ENABLE_SNAPSHOTS", "false"), ("WAL_FSYNC", "always")];
    let mut server = Server::start_with(&env);
    let mut con = server.client();
    for i in 0..500 {
        let _: () = con.set(format!("k{i}"), i).expect("set");
    }
    drop(con);
    let _ = std::process::Command::new("kill").args(["-KILL", &server.pid().to_string()]).status();
    let _ = server.wait_exit(Duration::from_secs(10));
    drop(server);

    // Flip one byte inside an early record: hundreds of valid records follow.
    let segment = dir.path().join("wal").join("00000000000000000001.wal");
    let mut bytes = std::fs::read(&segment).expect("segment");
    bytes[64 + 100] ^= 0x01;
    std::fs::write(&segment, &bytes).expect("write segment");

    let mut server = Server::spawn_with(&env);
    let status = server.wait_exit(Duration::from_secs(30)).expect("the server must refuse to start");
    assert_eq!(status.code(), Some(1));
    let err = server.stderr_text();
    assert!(err.contains("00000000000000000001.wal"), "names the file: {err}");
    assert!(err.contains("offset"), "names the offset: {err}");
    assert!(err.contains("FASTCACHE_WAL_RECOVERY=point-in-time"), "says the way out: {err}");
    // The directory is untouched: the damaged byte is still there.
    assert_eq!(std::fs::read(&segment).expect("segment")[64 + 100], bytes[64 + 100]);

    // The operator chooses to keep the records before the damage.
    let mut lossy = env.to_vec();
    lossy.push(("FASTCACHE_WAL_RECOVERY", "point-in-time"));
    let server = Server::start_with(&lossy);
    let mut con = server.client();
    assert!(dbsize(&mut con) < 500);
    let _: () = con.set("after", "1").expect("writes work after the lossy start");
}
