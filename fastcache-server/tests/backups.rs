//! Incremental backups through the real server: a full base, then
//! incrementals of what changed, restorable into a new data directory that
//! a new server starts from with exactly the data.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Server, TempDir};
use redis::Commands;

fn info(con: &mut redis::Connection) -> BTreeMap<String, String> {
    let text: String = redis::cmd("INFO").arg("persistence").query(con).expect("INFO");
    text.lines().filter_map(|l| l.split_once(':')).map(|(k, v)| (k.to_string(), v.trim().to_string())).collect()
}

fn wait_for(con: &mut redis::Connection, what: &str, mut f: impl FnMut(&BTreeMap<String, String>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let i = info(con);
        if f(&i) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {i:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn incremental_backups_restore_to_the_latest_backup() {
    let dir = TempDir::new("backups");
    let dir_s = dir.path().to_string_lossy().into_owned();
    let env = [
        ("PERSISTENCE_DIR", dir_s.as_str()),
        ("ENABLE_INCREMENTAL_BACKUP", "true"),
        ("INCREMENTAL_BACKUP_INTERVAL", "200ms"),
        ("SNAPSHOT_INTERVAL", "1h"),
    ];
    let mut server = Server::start_with(&env);
    let mut con = server.client();
    for i in 0..1000 {
        let _: () = con.set(format!("k{i}"), i).expect("set");
    }
    // The backup thread may already run while the keys are written; wait
    // until everything written is in a backup.
    let caught_up = |i: &BTreeMap<String, String>| i["backup_last_lsn"] == i["wal_last_lsn"];
    wait_for(&mut con, "a full backup", |i| i["backups_full"] == "1" && caught_up(i));
    // 1% of the keys change, plus a deletion and a new type.
    for i in 0..10 {
        let _: () = con.set(format!("k{i}"), "changed").expect("set");
    }
    let _: () = con.del("k999").expect("del");
    let _: () = con.rpush("list", &["a", "b"]).expect("rpush");
    wait_for(&mut con, "an incremental backup", |i| i["backups_incremental"] != "0" && caught_up(i));
    let i = info(&mut con);
    assert_eq!(i["backup_last_kind"], "incremental");
    assert_eq!(i["backup_last_status"], "ok");
    let last_lsn: u64 = i["backup_last_lsn"].parse().expect("lsn");
    drop(con);
    server.terminate(Duration::from_secs(10));

    // Restore the backups alone (no WAL, no snapshots) into a new directory.
    let backups = dir.path().join("backups");
    let target = TempDir::new("restored");
    let restored = target.path().join("data");
    let report =
        fastcache_backup::restore(&backups, &restored, fastcache_backup::Target::Latest, false).expect("restore");
    assert_eq!(report.lsn, last_lsn, "{i:?} {report:?}");
    assert_eq!(i["backups_full"], "1", "one chain: later backups are incremental");
    let restored_s = restored.to_string_lossy().into_owned();
    let server = Server::start_with(&[("PERSISTENCE_DIR", restored_s.as_str())]);
    let mut con = server.client();
    assert_eq!(con.get::<_, String>("k0").expect("get"), "changed");
    assert_eq!(con.get::<_, String>("k500").expect("get"), "500");
    assert_eq!(con.get::<_, Option<String>>("k999").expect("get"), None);
    assert_eq!(con.lrange::<_, Vec<String>>("list", 0, -1).expect("lrange"), ["a", "b"]);
    let n: usize = redis::cmd("DBSIZE").query(&mut con).expect("DBSIZE");
    assert_eq!(n, 1000);
}
