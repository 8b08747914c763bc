//! Snapshots in the server: SAVE, BGSAVE, BGREWRITEAOF, the schedule,
//! retention and WAL truncation, healing a failed log, and what INFO and
//! `/metrics` say about them.
//!
//! # Taking one
//! [`Persistence::take_snapshot`] starts a point-in-time snapshot of the
//! engine at the WAL's last LSN (the engine's barrier, see
//! `fastcache-core`'s `snapshot` module), streams its entries into a
//! snapshot file in 1 MiB chunks, waits until the WAL is durable up to that
//! LSN (so a published snapshot never covers records the log could lose —
//! their LSNs would otherwise be reused after a crash), publishes it, and
//! deletes WAL segments wholly below the *oldest* retained snapshot, so a
//! damaged newest snapshot can still be recovered around.
//!
//! # Healing
//! A failed WAL refuses writes (see `persist.rs`). The background thread
//! probes the data directory every second; once a file can be written and
//! fsynced there again, it snapshots memory at the log's last LSN,
//! publishes it, restarts the log after that LSN and lifts the write block.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fastcache_core::{errors, Reply};
use fastcache_snapshot::{SnapshotInfo, SnapshotMeta, SnapshotStore, WriterOptions};
use parking_lot::Mutex;

use crate::connection::Conn;
use crate::persist::Persistence;

/// Raw bytes per chunk: big enough to compress well, small enough that
/// loading spreads over every core.
const CHUNK_BYTES: usize = 1 << 20;

/// Why a snapshot is being taken (logged, and decides the reply texts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// SAVE.
    Save,
    /// BGSAVE.
    Bgsave,
    /// BGREWRITEAOF (compaction: snapshot, then WAL truncation).
    Rewrite,
    /// SNAPSHOT_INTERVAL elapsed with changes.
    Schedule,
    /// Healing a failed log.
    Heal,
    /// A clean shutdown (SHUTDOWN, SIGTERM, SIGINT).
    Shutdown,
    /// Not a snapshot: a replica's full resynchronisation replacing the
    /// data, during which no snapshot may be taken ([`Persistence::hold_copies`]).
    Replication,
}

impl Trigger {
    fn name(self) -> &'static str {
        match self {
            Trigger::Save => "SAVE",
            Trigger::Bgsave => "BGSAVE",
            Trigger::Rewrite => "BGREWRITEAOF",
            Trigger::Schedule => "schedule",
            Trigger::Heal => "heal",
            Trigger::Shutdown => "shutdown",
            Trigger::Replication => "replication",
        }
    }
}

/// The snapshot side of [`Persistence`].
pub struct Snapshots {
    pub store: SnapshotStore,
    pub interval: Duration,
    pub max_size: Option<u64>,
    state: Mutex<State>,
    /// Set by SHUTDOWN; the background thread exits.
    pub stop: AtomicBool,
}

#[derive(Default)]
struct State {
    running: Option<(Trigger, Instant)>,
    /// BGSAVE SCHEDULE while one was running.
    scheduled: bool,
    last: Option<SnapshotInfo>,
    last_ok_unix: u64,
    last_ok_at: Option<Instant>,
    last_failed: Option<String>,
    last_duration: Option<Duration>,
    ok: u64,
    failed: u64,
    /// `engine.dirty()` when the last good snapshot started.
    dirty_base: u64,
    heals: u64,
}

impl Snapshots {
    /// Opens the snapshot directory `dir`.
    pub fn open(dir: &Path, retain: usize, interval: Duration, max_size: u64) -> anyhow::Result<Snapshots> {
        let store = SnapshotStore::open(dir, retain)
            .map_err(|e| anyhow::anyhow!("opening the snapshot directory {}: {e}", dir.display()))?;
        Ok(Snapshots {
            store,
            interval,
            max_size: (max_size > 0).then_some(max_size),
            state: Mutex::new(State::default()),
            stop: AtomicBool::new(false),
        })
    }

    /// Unix seconds of the last good snapshot (0: none in this run).
    pub fn last_save_unix(&self) -> u64 {
        self.state.lock().last_ok_unix
    }
}

/// Walks `cursor` (a snapshot at `lsn`) into a new snapshot file of
/// `store`, not yet finished nor published.
///
/// # Errors
/// The client's error text for a failed create or write.
pub fn write_file(
    cursor: &mut fastcache_core::SnapshotCursor,
    store: &SnapshotStore,
    lsn: u64,
    max_size: Option<u64>,
) -> Result<fastcache_snapshot::SnapshotWriter, String> {
    let meta = SnapshotMeta { lsn, created_unix_ms: unix_ms() };
    let mut writer =
        store.create(meta, WriterOptions { max_size }).map_err(|e| format!("ERR creating the snapshot file: {e}"))?;
    let mut chunk = Vec::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 4);
    while !cursor.is_done() {
        chunk.clear();
        let n = cursor.fill(&mut chunk, CHUNK_BYTES);
        if n == 0 && chunk.is_empty() {
            continue;
        }
        writer.write_chunk(&chunk, n).map_err(|e| format!("ERR writing the snapshot: {e}"))?;
    }
    Ok(writer)
}

/// Snapshots and backups are held off while this lives
/// ([`Persistence::hold_copies`]).
pub struct CopyHold<'a> {
    snaps: Option<&'a Snapshots>,
    _backups: Option<parking_lot::MutexGuard<'a, ()>>,
}

impl Drop for CopyHold<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.snaps {
            s.state.lock().running = None;
        }
    }
}

/// When healing was last tried (at most once a second).
static HEAL_LAST_TRY: Mutex<Option<Instant>> = Mutex::new(None);

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Persistence {
    /// Takes a snapshot now, on the calling thread (blocking I/O: never on
    /// an async runtime thread).
    ///
    /// # Errors
    /// A message for the client and the log: another snapshot is running,
    /// the size limit was exceeded, the disk failed, or the WAL cannot be
    /// made durable up to the snapshot's LSN.
    pub fn take_snapshot(&self, trigger: Trigger) -> Result<SnapshotInfo, String> {
        self.claim(trigger)?;
        self.run_claimed(trigger)
    }

    /// Marks a snapshot as running (so INFO says so from now on).
    fn claim(&self, trigger: Trigger) -> Result<(), String> {
        let Some(snaps) = &self.snapshots else {
            return Err("ERR snapshots are disabled (ENABLE_SNAPSHOTS=false)".into());
        };
        let mut st = snaps.state.lock();
        if st.running.is_some() {
            return Err("ERR Background save already in progress".into());
        }
        st.running = Some((trigger, Instant::now()));
        Ok(())
    }

    /// Keeps snapshots and incremental backups from being taken until the
    /// returned guard is dropped, waiting (at most `wait`) for a snapshot
    /// that runs to finish, and for a running backup. A replica holds it
    /// while a full resynchronisation replaces memory, the WAL and the
    /// snapshots: neither a snapshot nor a backup of a half-loaded state
    /// may ever be published.
    ///
    /// # Errors
    /// A snapshot was still running after `wait`.
    pub fn hold_copies(&self, wait: Duration) -> Result<CopyHold<'_>, String> {
        let backups = self.backups.as_ref().map(|b| b.busy.lock());
        let Some(snaps) = &self.snapshots else { return Ok(CopyHold { snaps: None, _backups: backups }) };
        let deadline = Instant::now() + wait;
        loop {
            match self.claim(Trigger::Replication) {
                Ok(()) => return Ok(CopyHold { snaps: Some(snaps), _backups: backups }),
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(format!("a snapshot is still running: {e}")),
            }
        }
    }

    /// Takes the snapshot [`Persistence::claim`] announced.
    fn run_claimed(&self, trigger: Trigger) -> Result<SnapshotInfo, String> {
        let Some(snaps) = &self.snapshots else {
            return Err("ERR snapshots are disabled (ENABLE_SNAPSHOTS=false)".into());
        };
        let started = Instant::now();
        let dirty_at_start = self.engine().dirty();
        let result = self.write_snapshot(snaps, trigger);
        let elapsed = started.elapsed();
        let mut st = snaps.state.lock();
        st.running = None;
        st.last_duration = Some(elapsed);
        match &result {
            Ok(info) => {
                st.ok += 1;
                st.last = Some(info.clone());
                st.last_ok_unix = unix_now();
                st.last_ok_at = Some(Instant::now());
                st.last_failed = None;
                st.dirty_base = dirty_at_start;
                tracing::info!(
                    trigger = trigger.name(),
                    file = %info.path.display(),
                    lsn = info.meta.lsn,
                    keys = info.keys,
                    raw_bytes = info.raw_bytes,
                    file_bytes = info.file_bytes,
                    elapsed_ms = elapsed.as_millis() as u64,
                    "snapshot written"
                );
            }
            Err(e) => {
                st.failed += 1;
                st.last_failed = Some(e.clone());
                tracing::error!(trigger = trigger.name(), "snapshot failed: {e}; the WAL still holds every write");
            }
        }
        result
    }

    fn write_snapshot(&self, snaps: &Snapshots, trigger: Trigger) -> Result<SnapshotInfo, String> {
        let engine = self.engine();
        let (mut cursor, lsn) = engine
            .begin_snapshot(|| self.wal.last_lsn())
            .map_err(|_| "ERR Background save already in progress".to_string())?;
        let writer = write_file(&mut cursor, &snaps.store, lsn, snaps.max_size)?;
        drop(cursor);
        // The snapshot claims every record up to `lsn`; the log must hold
        // them durably before the claim is published. A healing snapshot
        // is the exception: the log is being replaced after `lsn`.
        if trigger != Trigger::Heal {
            self.make_durable(lsn)
                .map_err(|e| format!("ERR the WAL cannot be made durable up to the snapshot's LSN {lsn}: {e}"))?;
        }
        let info = writer.finish().map_err(|e| format!("ERR finishing the snapshot: {e}"))?;
        let removed = snaps.store.publish(&info).map_err(|e| format!("ERR publishing the snapshot: {e}"))?;
        for p in removed {
            tracing::info!(file = %p.display(), "old snapshot removed (retention)");
        }
        if trigger != Trigger::Heal {
            self.truncate_wal(snaps);
        }
        Ok(info)
    }

    /// Deletes WAL segments wholly below the oldest retained snapshot.
    fn truncate_wal(&self, snaps: &Snapshots) {
        let oldest = match snaps.store.list() {
            Ok(list) => list.iter().map(|s| s.lsn).min(),
            Err(e) => {
                tracing::warn!("not truncating the WAL: the snapshot list cannot be read ({e})");
                return;
            }
        };
        if let Some(lsn) = oldest {
            match self.wal.truncate_before(lsn + 1) {
                Ok(0) => {}
                Ok(n) => tracing::info!(segments = n, below_lsn = lsn + 1, "WAL segments covered by snapshots deleted"),
                Err(e) => tracing::warn!("deleting old WAL segments failed ({e}); they are kept"),
            }
        }
    }

    /// Starts a snapshot on a background thread. `Ok(false)`: one is
    /// running and `schedule` asked to run another after it.
    ///
    /// # Errors
    /// The client's error: snapshots disabled, or one already running
    /// without `schedule`.
    pub fn start_background(self: &Arc<Self>, trigger: Trigger, schedule: bool) -> Result<bool, String> {
        let Some(snaps) = &self.snapshots else {
            return Err("ERR snapshots are disabled (ENABLE_SNAPSHOTS=false)".into());
        };
        {
            // Claimed before the reply, as Redis sets its child pid before
            // answering: INFO right after BGSAVE shows it in progress.
            let mut st = snaps.state.lock();
            if st.running.is_some() {
                if schedule {
                    st.scheduled = true;
                    return Ok(false);
                }
                return Err("ERR Background save already in progress".into());
            }
            st.running = Some((trigger, Instant::now()));
        }
        let me = self.clone();
        let spawned = std::thread::Builder::new().name("fastcache-snapshot".into()).spawn(move || {
            lower_priority();
            let _ = me.run_claimed(trigger);
        });
        if let Err(e) = spawned {
            snaps.state.lock().running = None;
            return Err(format!("ERR cannot start the snapshot thread: {e}"));
        }
        Ok(true)
    }

    /// The background loop: scheduled snapshots, BGSAVE SCHEDULE, and
    /// healing a failed log. Runs until [`Snapshots::stop`] is set.
    pub fn run_background(self: Arc<Self>) {
        let Some(snaps) = &self.snapshots else { return };
        lower_priority();
        let mut last = Instant::now();
        while !snaps.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            if self.failure().is_some() {
                self.try_heal();
                continue;
            }
            let due = {
                let mut st = snaps.state.lock();
                if st.running.is_some() {
                    false
                } else if st.scheduled {
                    st.scheduled = false;
                    true
                } else {
                    let since = st.last_ok_at.unwrap_or(last).max(last);
                    since.elapsed() >= snaps.interval && self.engine().dirty() > st.dirty_base
                }
            };
            if due {
                let _ = self.take_snapshot(Trigger::Schedule);
                last = Instant::now();
            }
        }
    }

    /// The snapshot of a clean shutdown: taken when snapshots are on, the
    /// log is healthy and something changed since the last one (`force`:
    /// even without changes). Failure is logged; the WAL has every write.
    pub fn snapshot_on_shutdown(&self, force: bool) {
        let Some(snaps) = &self.snapshots else { return };
        snaps.stop.store(true, Ordering::Relaxed);
        if self.failure().is_some() {
            return;
        }
        let changes = self.engine().dirty().saturating_sub(snaps.state.lock().dirty_base);
        if changes == 0 && !force {
            return;
        }
        tracing::info!(changes, "writing a snapshot before stopping, so the next start loads it");
        // A snapshot already running: wait for it rather than fail.
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            match self.take_snapshot(Trigger::Shutdown) {
                Err(e) if e.contains("already in progress") && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                _ => break,
            }
        }
    }

    /// One healing attempt now (tests).
    #[cfg(test)]
    pub fn try_heal_now(&self) {
        *HEAL_LAST_TRY.lock() = None;
        self.try_heal();
    }

    /// One healing attempt, at most once a second.
    fn try_heal(&self) {
        let Some(snaps) = &self.snapshots else { return };
        {
            let st = snaps.state.lock();
            if st.running.is_some() {
                return;
            }
        }
        {
            let mut last = HEAL_LAST_TRY.lock();
            if last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
                return;
            }
            *last = Some(Instant::now());
        }
        if let Err(e) = self.probe_disk() {
            tracing::debug!("the data directory still fails ({e}); writes stay refused");
            return;
        }
        tracing::info!("the data directory accepts writes again; healing: snapshot of memory, then a new WAL");
        let info = match self.take_snapshot(Trigger::Heal) {
            Ok(info) => info,
            Err(e) => {
                tracing::warn!("healing snapshot failed ({e}); will retry");
                return;
            }
        };
        let lsn = info.meta.lsn;
        if let Err(e) = self.wal.restart_after(lsn) {
            tracing::error!("healing: restarting the WAL after LSN {lsn} failed ({e}); will retry");
            return;
        }
        self.truncate_wal(snaps);
        snaps.state.lock().heals += 1;
        self.clear_failure();
        tracing::info!(lsn, "healed: the WAL continues after the snapshot at LSN {lsn}; writes are accepted again");
    }

    /// INFO persistence lines of the snapshots.
    pub fn snapshot_info_fields(&self) -> Vec<(&'static str, String)> {
        let Some(snaps) = &self.snapshots else {
            return vec![("snapshots_enabled", "0".into())];
        };
        let st = snaps.state.lock();
        let kept = snaps.store.list().map(|l| l.len()).unwrap_or(0);
        let last = st.last.as_ref();
        vec![
            ("snapshots_enabled", "1".into()),
            ("snapshot_in_progress", u8::from(st.running.is_some()).to_string()),
            ("snapshot_last_status", if st.last_failed.is_some() { "err" } else { "ok" }.into()),
            ("snapshot_last_error", st.last_failed.clone().unwrap_or_default()),
            ("snapshot_last_duration_ms", st.last_duration.map_or(-1, |d| d.as_millis() as i64).to_string()),
            ("snapshot_last_lsn", last.map_or(0, |l| l.meta.lsn).to_string()),
            ("snapshot_last_keys", last.map_or(0, |l| l.keys).to_string()),
            ("snapshot_last_size", last.map_or(0, |l| l.file_bytes).to_string()),
            ("snapshot_last_raw_size", last.map_or(0, |l| l.raw_bytes).to_string()),
            ("snapshot_last_file", last.map(|l| l.path.display().to_string()).unwrap_or_default()),
            ("snapshots_taken", st.ok.to_string()),
            ("snapshots_failed", st.failed.to_string()),
            ("snapshots_kept", kept.to_string()),
            ("snapshot_interval_sec", snaps.interval.as_secs().to_string()),
            ("wal_heals", st.heals.to_string()),
        ]
    }

    /// The Redis-named INFO persistence fields that depend on snapshots.
    pub fn redis_snapshot_fields(&self) -> Vec<(&'static str, String)> {
        let Some(snaps) = &self.snapshots else { return Vec::new() };
        let st = snaps.state.lock();
        let running = st.running;
        let rewriting = matches!(running, Some((Trigger::Rewrite, _)));
        let cur = running.map_or(-1, |(_, t)| t.elapsed().as_secs() as i64);
        let last = st.last_duration.map_or(-1, |d| d.as_secs() as i64);
        let status = if st.last_failed.is_some() { "err" } else { "ok" };
        vec![
            ("rdb_changes_since_last_save", self.engine().dirty().saturating_sub(st.dirty_base).to_string()),
            ("rdb_bgsave_in_progress", u8::from(running.is_some() && !rewriting).to_string()),
            ("rdb_last_bgsave_status", status.into()),
            ("rdb_last_bgsave_time_sec", last.to_string()),
            ("rdb_current_bgsave_time_sec", if rewriting { -1 } else { cur }.to_string()),
            ("rdb_saves", st.ok.to_string()),
            ("aof_rewrite_in_progress", u8::from(rewriting).to_string()),
            ("aof_rewrite_scheduled", u8::from(st.scheduled).to_string()),
            ("aof_current_rewrite_time_sec", if rewriting { cur } else { -1 }.to_string()),
            ("aof_last_bgrewrite_status", status.into()),
        ]
    }

    /// Metrics and the `snapshot` health check.
    pub fn register_snapshots(self: &Arc<Self>, registry: &crate::metrics::Registry) {
        if self.snapshots.is_none() {
            return;
        }
        let me = self.clone();
        registry.register(Arc::new(move |w: &mut crate::metrics::MetricWriter| {
            let Some(snaps) = &me.snapshots else { return };
            let st = snaps.state.lock();
            w.counter("fastcache_snapshots_total", "snapshots written", &[("result", "ok")], st.ok);
            w.counter("fastcache_snapshots_total", "snapshots written", &[("result", "failed")], st.failed);
            w.gauge(
                "fastcache_snapshot_in_progress",
                "1 while a snapshot is written",
                &[],
                u64::from(st.running.is_some()),
            );
            if let Some(d) = st.last_duration {
                w.gauge(
                    "fastcache_snapshot_last_duration_seconds",
                    "duration of the last snapshot",
                    &[],
                    d.as_secs_f64(),
                );
            }
            if let Some(l) = &st.last {
                w.gauge("fastcache_snapshot_last_size_bytes", "file size of the last good snapshot", &[], l.file_bytes);
                w.gauge(
                    "fastcache_snapshot_last_raw_bytes",
                    "uncompressed entry bytes of the last good snapshot",
                    &[],
                    l.raw_bytes,
                );
                w.gauge("fastcache_snapshot_last_keys", "keys in the last good snapshot", &[], l.keys);
                w.gauge("fastcache_snapshot_last_lsn", "LSN the last good snapshot is consistent at", &[], l.meta.lsn);
            }
            if let Some(t) = st.last_ok_at {
                w.gauge(
                    "fastcache_snapshot_age_seconds",
                    "age of the last good snapshot",
                    &[],
                    t.elapsed().as_secs_f64(),
                );
            }
            w.counter("fastcache_wal_heals_total", "times a failed WAL was healed", &[], st.heals);
            let r = &me.recovery;
            w.gauge("fastcache_recovery_seconds", "time crash recovery took at start", &[], r.elapsed.as_secs_f64());
            w.gauge(
                "fastcache_recovery_snapshot_lsn",
                "LSN of the snapshot recovery loaded (0: none)",
                &[],
                r.snapshot.as_ref().map_or(0, |s| s.lsn),
            );
            w.gauge(
                "fastcache_recovery_snapshot_keys",
                "keys loaded from the snapshot at start",
                &[],
                r.snapshot.as_ref().map_or(0, |s| s.keys),
            );
            w.gauge(
                "fastcache_recovery_damaged_snapshots",
                "damaged snapshots recovery passed over",
                &[],
                r.skipped.len() as u64,
            );
        }));
        let me = self.clone();
        registry.register_check(Arc::new(move || me.snapshot_check()));
    }

    fn snapshot_check(&self) -> crate::metrics::Check {
        use crate::metrics::{Check, Status};
        let Some(snaps) = &self.snapshots else {
            return Check { name: "snapshot", status: Status::Ok, message: "disabled".into() };
        };
        let st = snaps.state.lock();
        let newest = match snaps.store.list() {
            Ok(l) => l.into_iter().next(),
            Err(e) => return Check { name: "snapshot", status: Status::Failed, message: format!("{e}") },
        };
        let age = st.last_ok_at.map(|t| t.elapsed());
        match (&st.last_failed, newest) {
            (Some(e), _) => Check {
                name: "snapshot",
                status: Status::Degraded,
                message: format!("last snapshot failed: {e}; the WAL keeps every write"),
            },
            (None, None) => Check { name: "snapshot", status: Status::Ok, message: "no snapshot yet".into() },
            (None, Some(s)) => {
                let stale = age.is_some_and(|a| a > snaps.interval * 3 + Duration::from_secs(60));
                let verified = if st.last.as_ref().is_some_and(|l| l.path == s.path) {
                    "checksums verified when written"
                } else if self.recovery.snapshot.as_ref().is_some_and(|r| r.path == s.path) {
                    "checksums verified when loaded at start"
                } else {
                    "not read in this run"
                };
                let message = format!(
                    "newest {} (LSN {}, {verified}); last good snapshot {}",
                    s.path.display(),
                    s.lsn,
                    age.map_or("written before this start".to_string(), |a| format!("{}s ago", a.as_secs()))
                );
                Check { name: "snapshot", status: if stale { Status::Degraded } else { Status::Ok }, message }
            }
        }
    }
}

/// Background snapshots yield the CPU to the threads serving clients: on a
/// machine with as many busy threads as cores, an equal-priority walk takes
/// a core from the clients for the whole snapshot. On Linux `nice` applies
/// to the calling thread only.
fn lower_priority() {
    if let Err(e) = rustix::process::nice(10) {
        tracing::debug!("could not lower the snapshot thread's priority ({e})");
    }
}

fn no_persistence() -> Reply {
    Reply::err(
        "ERR persistence is disabled (ENABLE_PERSISTENCE=false or ENABLE_WRITE_AHEAD_LOG=false): nothing to save to",
    )
}

/// SAVE: writes a snapshot and answers when it is published. Unlike
/// Redis' SAVE it blocks only the calling client; everyone else goes on.
pub async fn save_command(conn: &mut Conn, argv: &[&[u8]]) -> Reply {
    if argv.len() != 1 {
        return errors::wrong_args("save");
    }
    let Some(p) = conn.shared.persistence().cloned() else {
        return no_persistence();
    };
    match tokio::task::spawn_blocking(move || p.take_snapshot(Trigger::Save)).await {
        Ok(Ok(_)) => Reply::OK,
        Ok(Err(e)) => Reply::error(e),
        Err(e) => Reply::error(format!("ERR the snapshot task failed: {e}")),
    }
}

/// BGSAVE [SCHEDULE].
pub fn bgsave_command(conn: &mut Conn, argv: &[&[u8]]) -> Reply {
    let schedule = match argv.len() {
        1 => false,
        2 if argv[1].eq_ignore_ascii_case(b"SCHEDULE") => true,
        _ => return errors::SYNTAX,
    };
    let Some(p) = conn.shared.persistence() else {
        return no_persistence();
    };
    match p.start_background(Trigger::Bgsave, schedule) {
        Ok(true) => Reply::Simple("Background saving started".into()),
        Ok(false) => Reply::Simple("Background saving scheduled".into()),
        Err(e) => Reply::error(e),
    }
}

/// BGREWRITEAOF: compacts the log — a snapshot, then the WAL segments it
/// covers are deleted. Scheduled if a snapshot is running, as Redis
/// schedules a rewrite during a BGSAVE.
pub fn bgrewriteaof_command(conn: &mut Conn, argv: &[&[u8]]) -> Reply {
    if argv.len() != 1 {
        return errors::wrong_args("bgrewriteaof");
    }
    let Some(p) = conn.shared.persistence() else {
        return no_persistence();
    };
    match p.start_background(Trigger::Rewrite, true) {
        Ok(true) => Reply::Simple("Background append only file rewriting started".into()),
        Ok(false) => Reply::Simple("Background append only file rewriting scheduled".into()),
        Err(e) => Reply::error(e),
    }
}
