//! The server's persistence: opening and replaying the WAL at start, the
//! journal every write goes through, and what happens when the disk fails.
//!
//! # The write path
//! The engine hands each write's record to [`WalJournal::append`] while
//! the written keys are locked, so the log order is the apply order. The
//! connection remembers the highest LSN its batch of commands produced and,
//! under `WAL_FSYNC=always`, awaits [`Persistence::wait_durable`] before it
//! writes any reply of that batch: one group commit covers every
//! connection's records appended before it.
//!
//! # When persisting fails (DESIGN.md invariant 6)
//! A failed append or sync poisons the log. The write that failed gets a
//! `MISCONF` error (or, when the failure is found while waiting for
//! durability, its connection is closed without replies, so nothing
//! unpersisted is acknowledged), the engine refuses further writes with the
//! same error, reads go on, and INFO, `/health` and the log say why.
//! Resuming writes needs a fresh snapshot of memory and a new log, which the
//! snapshot issue adds; until then the server stays read-only.

use std::cell::RefCell;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use fastcache_core::{Engine, Journal, JournalError, Record};
use fastcache_wal::{Lsn, SyncPolicy, Wal, WalOptions};
use parking_lot::Mutex;

use crate::config::{Config, FsyncPolicy};

/// The WAL, the snapshots and their state, shared by every connection.
pub struct Persistence {
    pub wal: Wal,
    pub policy: FsyncPolicy,
    /// The WAL's directory.
    pub dir: PathBuf,
    engine: Engine,
    /// The file system the WAL runs on (tests inject faults); the healing
    /// probe goes through it too.
    fs: Arc<dyn fastcache_wal::FileSystem>,
    /// Why the log stopped accepting writes, once it has.
    failure: Mutex<Option<String>>,
    /// What start-up recovery did.
    pub recovery: fastcache_recovery::RecoveryReport,
    /// Taking snapshots, unless ENABLE_SNAPSHOTS=false.
    pub snapshots: Option<crate::snapshots::Snapshots>,
    /// Incremental backups, with ENABLE_INCREMENTAL_BACKUP=true.
    pub backups: Option<crate::backups::Backups>,
    /// Tells this persistence's per-thread wait groups from another's.
    id: u64,
}

impl Persistence {
    /// Opens the WAL in `$PERSISTENCE_DIR/wal` and the snapshots in
    /// `$PERSISTENCE_DIR/snapshots`, and recovers `engine` (which must be
    /// empty) from them, unless persistence or the WAL is disabled.
    /// `progress` hears how recovery advances.
    ///
    /// # Errors
    /// Anything that keeps the data from being opened or recovered: the
    /// server must not start with a state that differs from its files.
    pub fn open(
        config: &Config,
        engine: &Engine,
        progress: impl FnMut(fastcache_recovery::Progress),
    ) -> anyhow::Result<Option<Arc<Persistence>>> {
        Persistence::open_on(config, engine, None, progress)
    }

    /// [`Persistence::open`] on a given file system for the WAL (tests
    /// inject faults).
    fn open_on(
        config: &Config,
        engine: &Engine,
        fs: Option<Arc<dyn fastcache_wal::FileSystem>>,
        progress: impl FnMut(fastcache_recovery::Progress),
    ) -> anyhow::Result<Option<Arc<Persistence>>> {
        if !config.enable_persistence || !config.enable_wal {
            tracing::warn!(
                "persistence is off (ENABLE_PERSISTENCE={}, ENABLE_WRITE_AHEAD_LOG={}): data is in memory only",
                config.enable_persistence,
                config.enable_wal
            );
            return Ok(None);
        }
        let dir = config.persistence_dir.join("wal");
        let snap_dir = config.persistence_dir.join("snapshots");
        if !config.enable_crash_recovery {
            move_aside(&config.persistence_dir, &[&dir, &snap_dir], "ENABLE_CRASH_RECOVERY=false")?;
        }
        let sync = match config.wal_fsync {
            FsyncPolicy::Always => SyncPolicy::Always,
            FsyncPolicy::Interval => SyncPolicy::Interval(config.wal_flush_interval),
            FsyncPolicy::Never => SyncPolicy::Never,
        };
        let mut opts = WalOptions {
            sync,
            segment_size: config.wal_segment_size,
            recovery: config.wal_recovery,
            ..WalOptions::default()
        };
        if let Some(fs) = fs {
            opts.fs = fs;
        }
        let fs = opts.fs.clone();
        let (wal, report) = Wal::open(&dir, opts).map_err(|e| {
            if e.is_corruption() {
                anyhow::anyhow!(
                    "the write-ahead log in {} is damaged in the middle, with valid records after the damage: {e}. \
                     Nothing was changed. To start with every record before the damage (the records after it are \
                     lost), start once with FASTCACHE_WAL_RECOVERY=point-in-time; to keep every record that still \
                     verifies, FASTCACHE_WAL_RECOVERY=skip-corrupted. Copy the directory first if you want to keep \
                     the damaged bytes",
                    dir.display()
                )
            } else {
                anyhow::anyhow!("opening the write-ahead log in {}: {e}", dir.display())
            }
        })?;
        for skip in &report.skipped {
            tracing::error!("FASTCACHE_WAL_RECOVERY dropped damaged WAL bytes: {skip:?}");
        }
        if report.truncated_bytes > 0 {
            tracing::warn!(
                bytes = report.truncated_bytes,
                "the WAL ended in a torn write (a crash during an append); truncated it to the last valid record"
            );
        }
        tracing::info!(
            dir = %dir.display(),
            segments = report.segments,
            records = report.records,
            first_lsn = report.first_lsn,
            last_lsn = report.last_lsn,
            "WAL opened"
        );
        let snapshots = crate::snapshots::Snapshots::open(
            &snap_dir,
            config.snapshot_retain,
            config.snapshot_interval,
            config.max_snapshot_size,
        )?;
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        // Backups help recovery whenever they are there (read-only unless
        // this server writes them).
        let backup_dir = if config.enable_incremental_backup {
            Some(
                fastcache_backup::BackupDir::open(&config.backup_dir, config.backup_retain)
                    .map(|d| d.with_databases(config.databases))
                    .map_err(|e| {
                        anyhow::anyhow!("opening the backup directory {}: {e}", config.backup_dir.display())
                    })?,
            )
        } else if config.backup_dir.is_dir() {
            fastcache_backup::BackupDir::open_read_only(&config.backup_dir).ok()
        } else {
            None
        };
        let recovery =
            fastcache_recovery::recover(engine, &wal, &snapshots.store, backup_dir.as_ref(), threads, progress)
                .map_err(|e| {
                    anyhow::anyhow!(
                        "crash recovery failed: {e}. The data directory {} is left untouched",
                        config.persistence_dir.display()
                    )
                })?;
        // A snapshot newer than the whole log (the log was lost or cut):
        // the log must continue after it, or new records would reuse LSNs
        // the snapshot already covers.
        if let Some(s) = &recovery.snapshot {
            if s.lsn > wal.last_lsn() {
                tracing::warn!(
                    snapshot_lsn = s.lsn,
                    wal_last_lsn = wal.last_lsn(),
                    "the WAL ends before the snapshot; restarting it after the snapshot's LSN"
                );
                wal.restart_after(s.lsn).map_err(|e| anyhow::anyhow!("restarting the WAL after the snapshot: {e}"))?;
            }
        }
        // Recovery counted its re-applied writes as changes; they are not new.
        engine.reset_dirty();
        let backups = match backup_dir {
            Some(dir) if config.enable_incremental_backup => {
                // From here on every write is tracked; the first backup is a
                // full base.
                engine.set_change_tracking(true);
                Some(crate::backups::Backups::new(dir, config.incremental_backup_interval))
            }
            _ => None,
        };
        tracing::info!(
            snapshot =
                recovery.snapshot.as_ref().map(|s| s.path.display().to_string()).unwrap_or_else(|| "none".into()),
            snapshot_lsn = recovery.snapshot.as_ref().map_or(0, |s| s.lsn),
            snapshot_keys = recovery.snapshot.as_ref().map_or(0, |s| s.keys),
            damaged_snapshots = recovery.skipped.len(),
            wal_records = recovery.wal.records,
            keys = engine.keyspace_info().iter().map(|k| k.1).sum::<usize>(),
            elapsed_ms = recovery.elapsed.as_millis() as u64,
            "crash recovery done"
        );
        if !config.enable_snapshots {
            tracing::warn!("ENABLE_SNAPSHOTS=false: no snapshots are taken; the WAL grows without bound");
        }
        Ok(Some(Arc::new(Persistence {
            wal,
            policy: config.wal_fsync,
            dir,
            engine: engine.clone(),
            fs,
            failure: Mutex::new(None),
            recovery,
            snapshots: config.enable_snapshots.then_some(snapshots),
            backups,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        })))
    }

    /// The engine this persists.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Makes every record up to `lsn` durable now, whatever the policy (a
    /// snapshot or backup about to be published must not wait for the next
    /// interval tick, nor claim records the log could still lose).
    ///
    /// # Errors
    /// The log's failure (it is then poisoned).
    pub fn make_durable(&self, lsn: Lsn) -> Result<(), String> {
        if self.wal.durable_lsn() >= lsn {
            return Ok(());
        }
        match self.wal.sync() {
            Ok(durable) if durable >= lsn => Ok(()),
            Ok(durable) => Err(format!("the WAL is durable up to LSN {durable} only, not {lsn}")),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Lifts the write block after the log was healed.
    pub fn clear_failure(&self) {
        *self.failure.lock() = None;
        self.engine.set_write_block(None);
    }

    /// Writes, fsyncs and removes a probe file in the WAL directory through
    /// the WAL's file system: would the log work there again?
    pub fn probe_disk(&self) -> std::io::Result<()> {
        let p = self.dir.join(".fastcache-probe");
        let _ = self.fs.remove_file(&p);
        let f = self.fs.open(&p, fastcache_wal::OpenMode::CreateNew)?;
        let r = f.allocate(4096).and_then(|()| f.sync_data());
        drop(f);
        let _ = self.fs.remove_file(&p);
        r
    }

    /// Why writes are refused, if they are.
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().clone()
    }

    /// Records a persistence failure: refuse writes from now on, loudly.
    pub fn fail(&self, cause: &str) {
        let mut f = self.failure.lock();
        if f.is_none() {
            tracing::error!(
                "the write-ahead log failed: {cause}. Write commands are refused from now on (reads go on); \
                 free disk space or fix the disk: once it accepts writes again the server snapshots memory, \
                 starts a new log and resumes writes by itself{}",
                if self.snapshots.is_some() { "" } else { " (not with ENABLE_SNAPSHOTS=false: restart the server)" }
            );
            self.engine.set_write_block(Some(misconf(cause)));
            *f = Some(cause.to_string());
        }
    }

    /// Waits until every record up to `lsn` is durable.
    ///
    /// # Errors
    /// The cause, if the log could not make it durable (it is then
    /// poisoned and [`Persistence::fail`] has been called).
    pub async fn wait_durable(&self, lsn: Lsn) -> Result<(), String> {
        if lsn == 0 || self.wal.durable_lsn() >= lsn {
            return Ok(());
        }
        let grouped = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread);
        let outcome = if grouped {
            ThreadWait { persistence: self, lsn, key: None, direct: None }.await
        } else {
            self.wal.wait_durable(lsn).await
        };
        match outcome {
            Ok(()) => Ok(()),
            Err(e) => {
                let cause = e.to_string();
                self.fail(&cause);
                Err(cause)
            }
        }
    }

    /// Whether replies must wait for durability.
    pub fn sync_replies(&self) -> bool {
        self.policy == FsyncPolicy::Always
    }
}

impl Persistence {
    /// The INFO persistence lines of the WAL (`name`, value).
    pub fn info_fields(&self) -> Vec<(&'static str, String)> {
        let st = self.wal.stats();
        let policy = match self.policy {
            FsyncPolicy::Always => "always",
            FsyncPolicy::Interval => "interval",
            FsyncPolicy::Never => "never",
        };
        let failure = self.failure().or(st.poisoned.clone());
        vec![
            ("fastcache_persistence", "wal".to_string()),
            ("wal_enabled", "1".to_string()),
            ("wal_fsync", policy.to_string()),
            ("wal_status", if failure.is_some() { "poisoned" } else { "ok" }.to_string()),
            ("wal_error", failure.unwrap_or_default()),
            ("wal_dir", self.dir.display().to_string()),
            ("wal_segments", st.segments.to_string()),
            ("wal_size", st.segment_bytes.to_string()),
            ("wal_first_lsn", st.first_lsn.to_string()),
            ("wal_last_lsn", st.last_lsn.to_string()),
            ("wal_durable_lsn", st.durable_lsn.to_string()),
            ("wal_records_appended", st.records_appended.to_string()),
            ("wal_bytes_appended", st.log_bytes_appended.to_string()),
            ("wal_syncs", st.syncs.to_string()),
            ("wal_last_sync_usec", st.last_sync_duration.as_micros().to_string()),
            ("wal_rotations", st.rotations.to_string()),
            ("wal_replayed_records", self.recovery.wal.records.to_string()),
            ("wal_replay_time_ms", self.recovery.wal.elapsed.as_millis().to_string()),
            ("recovery_time_ms", self.recovery.elapsed.as_millis().to_string()),
            (
                "recovery_snapshot",
                self.recovery.snapshot.as_ref().map(|s| s.path.display().to_string()).unwrap_or_default(),
            ),
            ("recovery_snapshot_lsn", self.recovery.snapshot.as_ref().map_or(0, |s| s.lsn).to_string()),
            ("recovery_snapshot_keys", self.recovery.snapshot.as_ref().map_or(0, |s| s.keys).to_string()),
            ("recovery_damaged_snapshots", self.recovery.skipped.len().to_string()),
        ]
    }

    /// Registers the WAL's metrics and health checks (the seed's
    /// "Persistence Metrics" and "Health Checks").
    pub fn register(self: &Arc<Self>, registry: &crate::metrics::Registry) {
        registry.set_persistence("wal");
        let me = self.clone();
        registry.register(Arc::new(move |w: &mut crate::metrics::MetricWriter| {
            let st = me.wal.stats();
            w.counter("fastcache_wal_records_appended", "records appended to the WAL", &[], st.records_appended);
            w.counter(
                "fastcache_wal_bytes_appended",
                "bytes appended to the WAL (with headers)",
                &[],
                st.log_bytes_appended,
            );
            w.gauge("fastcache_wal_segments", "WAL segment files", &[], st.segments as u64);
            w.gauge("fastcache_wal_size_bytes", "bytes of WAL segment files", &[], st.segment_bytes);
            w.gauge("fastcache_wal_last_lsn", "last LSN appended", &[], st.last_lsn);
            w.gauge("fastcache_wal_durable_lsn", "last LSN on stable storage", &[], st.durable_lsn);
            w.counter("fastcache_wal_syncs", "syncs (msync/fdatasync) of the WAL", &[], st.syncs);
            w.gauge(
                "fastcache_wal_poisoned",
                "1 if the WAL refuses writes after a failure",
                &[],
                u64::from(me.failure().is_some() || st.poisoned.is_some()),
            );
            w.gauge(
                "fastcache_wal_replay_seconds",
                "time crash recovery spent replaying the WAL at start",
                &[],
                me.recovery.wal.elapsed.as_secs_f64(),
            );
            w.gauge("fastcache_wal_replayed_records", "WAL records replayed at start", &[], me.recovery.wal.records);
            let lat = cumulative(&st.sync_latency_us.counts, st.sync_latency_us.bounds, 1e-6);
            w.histogram(
                "fastcache_wal_sync_duration_seconds",
                "duration of WAL syncs (sum approximated from bucket bounds)",
                &[],
                crate::metrics::Histogram { buckets: &lat.0, sum: lat.1, count: lat.2 },
            );
            let batch = cumulative(&st.group_commit_records.counts, st.group_commit_records.bounds, 1.0);
            w.histogram(
                "fastcache_wal_group_commit_records",
                "records made durable by one sync (sum approximated from bucket bounds)",
                &[],
                crate::metrics::Histogram { buckets: &batch.0, sum: batch.1, count: batch.2 },
            );
        }));
        let me = self.clone();
        registry.register_check(Arc::new(move || {
            let cause = me.failure().or(me.wal.poisoned());
            match cause {
                None => crate::metrics::Check {
                    name: "wal",
                    status: crate::metrics::Status::Ok,
                    message: format!("healthy; durable up to LSN {}", me.wal.durable_lsn()),
                },
                Some(c) => crate::metrics::Check {
                    name: "wal",
                    status: crate::metrics::Status::Failed,
                    message: format!("poisoned: {c}; writes are refused, reads still work"),
                },
            }
        }));
        let dir = self.dir.clone();
        registry.register_check(Arc::new(move || disk_check(&dir)));
    }
}

/// Moves the WAL and snapshot directories aside into a dated folder
/// (ENABLE_CRASH_RECOVERY=false): the server starts empty and nothing is
/// destroyed.
pub fn move_aside(root: &std::path::Path, dirs: &[&std::path::Path], why: &str) -> anyhow::Result<()> {
    let present: Vec<&&std::path::Path> = dirs.iter().filter(|d| d.exists()).collect();
    if present.is_empty() {
        tracing::info!("{why}: no previous data; starting empty");
        return Ok(());
    }
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let aside = root.join(format!("moved-aside-{}", utc_stamp(secs)));
    std::fs::create_dir_all(&aside).map_err(|e| anyhow::anyhow!("creating {}: {e}", aside.display()))?;
    for d in present {
        let to = aside.join(d.file_name().unwrap_or_default());
        std::fs::rename(d, &to).map_err(|e| anyhow::anyhow!("moving {} to {}: {e}", d.display(), to.display()))?;
    }
    tracing::warn!(moved_to = %aside.display(), "{why}: the previous WAL and snapshots were moved aside, not recovered");
    Ok(())
}

/// The directories crash recovery reads, which [`move_aside`] sets aside.
pub fn data_dirs(config: &Config) -> [PathBuf; 2] {
    [config.persistence_dir.join("wal"), config.persistence_dir.join("snapshots")]
}

/// `YYYYMMDDTHHMMSSZ` for Unix seconds (UTC).
pub fn utc_stamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Free space and writability of the data directory.
fn disk_check(dir: &std::path::Path) -> crate::metrics::Check {
    use crate::metrics::{Check, Status};
    let free = rustix::fs::statvfs(dir).map(|s| s.f_bavail.saturating_mul(s.f_frsize));
    let writable = rustix::fs::access(dir, rustix::fs::Access::WRITE_OK).is_ok();
    match free {
        Err(e) => Check { name: "disk", status: Status::Failed, message: format!("{}: {e}", dir.display()) },
        Ok(_) if !writable => {
            Check { name: "disk", status: Status::Failed, message: format!("{} is not writable", dir.display()) }
        }
        Ok(bytes) if bytes < 64 << 20 => Check {
            name: "disk",
            status: Status::Degraded,
            message: format!("{bytes} bytes free in {}; the WAL will fail soon", dir.display()),
        },
        Ok(bytes) => Check { name: "disk", status: Status::Ok, message: format!("{bytes} bytes free, writable") },
    }
}

/// Turns per-bucket counts into Prometheus' cumulative buckets (scaled
/// bounds), an approximate sum (each observation at its bucket's bound) and
/// the count.
fn cumulative(counts: &[u64], bounds: &[u64], scale: f64) -> (Vec<(f64, u64)>, f64, u64) {
    let mut out = Vec::with_capacity(bounds.len());
    let (mut acc, mut sum) = (0u64, 0.0);
    for (i, &n) in counts.iter().enumerate() {
        acc += n;
        let bound = bounds.get(i).copied().or(bounds.last().copied()).unwrap_or(0) as f64 * scale;
        sum += n as f64 * bound;
        if i < bounds.len() {
            out.push((bound, acc));
        }
    }
    (out, sum, acc)
}

/// The `MISCONF` error write commands get once the log failed.
fn misconf(cause: &str) -> String {
    format!(
        "MISCONF FastCache cannot persist writes: the write-ahead log failed ({cause}). \
         Write commands are refused until the disk accepts writes again (the server then heals by itself); \
         reads still work. See INFO persistence."
    )
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

// Group commit per IO thread.
//
// Every connection of an IO thread that waits for durability registers in
// its thread's `ThreadGroup` (no lock, no system call); one `Driver` task
// per thread waits on the WAL for the highest LSN any of them needs. So the
// WAL has one waiter per thread, not one per connection: a group commit
// wakes each IO thread once (one cross-thread wake-up — an eventfd write —
// instead of one per connection), and the driver wakes its thread's
// connections locally. Only for current-thread runtimes (the server's IO
// threads), where a task always runs on the thread that spawned it.

/// The connections of one thread waiting for one persistence's log.
struct ThreadGroup {
    /// `Persistence::id`.
    id: u64,
    /// Waiting connections: key, LSN, waker.
    waiters: Vec<(u64, Lsn, Waker)>,
    next_key: u64,
    /// The highest LSN registered since the driver last looked.
    max_lsn: Lsn,
    /// The driver task, while one runs: woken when `max_lsn` grows.
    driver: Option<Waker>,
    driving: bool,
}

thread_local! {
    /// `WalJournal::append` encodes records here.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static GROUPS: RefCell<Vec<ThreadGroup>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's group for persistence `id` (created if
/// missing). `None` once the thread's locals are gone (thread exit).
fn with_group<R>(id: u64, f: impl FnOnce(&mut ThreadGroup) -> R) -> Option<R> {
    GROUPS
        .try_with(|groups| {
            let mut groups = groups.borrow_mut();
            let i = match groups.iter().position(|g| g.id == id) {
                Some(i) => i,
                None => {
                    groups.push(ThreadGroup {
                        id,
                        waiters: Vec::new(),
                        next_key: 0,
                        max_lsn: 0,
                        driver: None,
                        driving: false,
                    });
                    groups.len() - 1
                }
            };
            let r = f(&mut groups[i]);
            if !groups[i].driving && groups[i].waiters.is_empty() {
                groups.swap_remove(i);
            }
            r
        })
        .ok()
}

/// One connection's wait, registered in its thread's group.
struct ThreadWait<'a> {
    persistence: &'a Persistence,
    lsn: Lsn,
    key: Option<u64>,
    /// The plain wait on the log, if the group could not be used.
    direct: Option<fastcache_wal::DurableFuture>,
}

impl Future for ThreadWait<'_> {
    type Output = fastcache_wal::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let p = this.persistence;
        if let Some(r) = p.wal.durable_state(this.lsn) {
            this.deregister();
            return Poll::Ready(r);
        }
        let (lsn, key) = (this.lsn, this.key);
        let registered = with_group(p.id, |g| {
            let key = match key.and_then(|k| g.waiters.iter_mut().find(|w| w.0 == k)) {
                Some(w) => {
                    w.2.clone_from(cx.waker());
                    w.0
                }
                None => {
                    let k = g.next_key;
                    g.next_key += 1;
                    g.waiters.push((k, lsn, cx.waker().clone()));
                    k
                }
            };
            let mut wake_driver = None;
            if lsn > g.max_lsn {
                g.max_lsn = lsn;
                wake_driver = g.driver.clone();
            }
            let spawn = !g.driving;
            g.driving = true;
            (key, spawn, wake_driver)
        });
        let Some((key, spawn, wake_driver)) = registered else {
            // No thread locals (the thread is exiting): wait on the log directly.
            this.key = None;
            let direct = this.direct.get_or_insert_with(|| p.wal.wait_durable(lsn));
            return Pin::new(direct).poll(cx);
        };
        this.key = Some(key);
        if let Some(w) = wake_driver {
            w.wake();
        }
        if spawn {
            tokio::spawn(Driver {
                id: p.id,
                wal: p.wal.clone(),
                wait: None,
                target: 0,
                yielding: None,
                finished: false,
            });
        }
        Poll::Pending
    }
}

impl ThreadWait<'_> {
    fn deregister(&mut self) {
        if let Some(key) = self.key.take() {
            with_group(self.persistence.id, |g| g.waiters.retain(|w| w.0 != key));
        }
    }
}

impl Drop for ThreadWait<'_> {
    fn drop(&mut self) {
        self.deregister();
    }
}

/// Waits on the log for its thread's group and wakes the group's
/// connections when their LSNs may be settled.
struct Driver {
    id: u64,
    wal: Wal,
    /// The wait on the log, for `target`.
    wait: Option<fastcache_wal::DurableFuture>,
    target: Lsn,
    /// The yield before a new wait, while it is pending.
    yielding: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    /// Ended normally (the group needs no wake-up on drop).
    finished: bool,
}

impl Future for Driver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        loop {
            let max = with_group(this.id, |g| {
                match &mut g.driver {
                    Some(w) => w.clone_from(cx.waker()),
                    None => g.driver = Some(cx.waker().clone()),
                }
                g.max_lsn
            })
            .unwrap_or(0);
            if max > this.target {
                // First let the rest of this pass of the event loop run —
                // `yield_now` resumes after the runtime has polled for I/O
                // and run the connections that made ready — so that one sync
                // covers every connection of the thread that has a request
                // in, as Redis' one fsync per event-loop iteration does.
                let yielding = this.yielding.get_or_insert_with(|| Box::pin(tokio::task::yield_now()));
                if yielding.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.yielding = None;
                // Then sync on this thread if no sync is running (the
                // connections wait for it anyway), else wait for the running
                // one and lead the next if it did not cover `max`. Replaces
                // a wait for a lower LSN.
                this.target = max;
                this.wait = Some(this.wal.wait_durable_leading(max));
            }
            let Some(wait) = this.wait.as_mut() else {
                // Nothing (more) to wait for: every waiter's LSN is at most
                // `target`, which is settled. The next wait starts a driver.
                with_group(this.id, |g| {
                    g.driving = false;
                    g.driver = None;
                    g.max_lsn = 0;
                });
                this.finished = true;
                return Poll::Ready(());
            };
            match Pin::new(wait).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(r) => {
                    this.wait = None;
                    let durable = this.wal.durable_lsn();
                    let failed = r.is_err();
                    let ready: Vec<Waker> = with_group(this.id, |g| {
                        g.waiters.iter().filter(|w| failed || w.1 <= durable).map(|w| w.2.clone()).collect()
                    })
                    .unwrap_or_default();
                    for w in ready {
                        w.wake();
                    }
                    // Loop: a connection that registered a higher LSN
                    // meanwhile raised `max_lsn`.
                }
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // Dropped while waiting (the runtime shuts down): the next wait on
        // this thread starts a new driver; the waiters re-check.
        with_group(self.id, |g| {
            g.driving = false;
            g.driver = None;
            g.max_lsn = 0;
            for w in &g.waiters {
                w.2.wake_by_ref();
            }
        });
    }
}

/// The journal a connection passes to the engine: appends each record to
/// the WAL and remembers the highest LSN, for the durability wait.
pub struct WalJournal<'a> {
    persistence: Option<&'a Persistence>,
    /// The highest LSN appended through this journal.
    pub last_lsn: Lsn,
}

impl<'a> WalJournal<'a> {
    /// A journal over `persistence` (`None`: persistence off, records are
    /// not even built).
    pub fn new(persistence: Option<&'a Persistence>) -> WalJournal<'a> {
        WalJournal { persistence, last_lsn: 0 }
    }
}

impl Journal for WalJournal<'_> {
    fn append(&mut self, record: &Record) -> Result<(), JournalError> {
        let Some(p) = self.persistence else {
            return Ok(());
        };
        // Encoded into a buffer kept per thread: no allocation per record.
        let appended = SCRATCH
            .try_with(|buf| {
                let mut buf = buf.borrow_mut();
                record.encode_into(&mut buf);
                let r = p.wal.append(&buf);
                if buf.capacity() > 1 << 20 {
                    // A huge record grew it; give the memory back.
                    *buf = Vec::new();
                }
                r
            })
            .unwrap_or_else(|_| p.wal.append(&record.encode()));
        match appended {
            Ok(lsn) => {
                self.last_lsn = self.last_lsn.max(lsn);
                Ok(())
            }
            Err(e) => {
                let cause = e.to_string();
                p.fail(&cause);
                Err(JournalError { message: misconf(&cause) })
            }
        }
    }

    fn enabled(&self) -> bool {
        self.persistence.is_some()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use fastcache_core::Reply;
    use fastcache_wal::testing::FaultFs;

    use super::*;

    /// A configuration whose snapshots go to a real scratch directory
    /// (the WAL runs on the fault-injecting file system under the same
    /// path). The directory is removed when the guard drops.
    fn config(fsync: &str) -> (Config, tempfile::TempDir) {
        let dir = match tempfile::Builder::new().prefix("fastcache-persist-").tempdir() {
            Ok(d) => d,
            Err(e) => panic!("scratch directory: {e}"),
        };
        let env: BTreeMap<String, String> = [
            ("PERSISTENCE_DIR", dir.path().to_string_lossy().as_ref()),
            ("WAL_FSYNC", fsync),
            ("FASTCACHE_WAL_SEGMENT_SIZE", "1mb"),
            ("FASTCACHE_METRICS_ADDR", "off"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        match Config::from_map(&env) {
            Ok(c) => (c, dir),
            Err(e) => panic!("test config: {e}"),
        }
    }

    fn open(cfg: &Config, engine: &Engine, fs: &FaultFs) -> Arc<Persistence> {
        match Persistence::open_on(cfg, engine, Some(fs.as_fs()), |_| {}) {
            Ok(Some(p)) => p,
            other => panic!("open: {:?}", other.err()),
        }
    }

    fn run(engine: &Engine, s: &mut fastcache_core::Session, p: &Persistence, args: &[&str]) -> (Reply, Lsn) {
        let argv: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let mut journal = WalJournal::new(Some(p));
        let reply = engine.execute_with(s, &argv, &mut journal).reply;
        (reply, journal.last_lsn)
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt.block_on(f),
            Err(e) => panic!("runtime: {e}"),
        }
    }

    #[test]
    fn a_failed_sync_refuses_writes_but_serves_reads_and_loses_nothing_acknowledged() {
        let fs = FaultFs::new();
        let (cfg, _dir) = config("always");
        let engine = crate::server::Shared::new_engine(&cfg);
        let p = open(&cfg, &engine, &fs);
        let mut s = engine.session();
        let (r, lsn) = run(&engine, &mut s, &p, &["SET", "acked", "1"]);
        assert_eq!(r, Reply::OK);
        assert_eq!(block_on(p.wait_durable(lsn)), Ok(()));

        // The disk starts failing: the next write is applied in memory but
        // its durability wait fails, so it is never acknowledged.
        fs.fail_all_syncs(true);
        let (r, lsn) = run(&engine, &mut s, &p, &["SET", "unacked", "2"]);
        assert_eq!(r, Reply::OK, "the append itself succeeds; the sync fails");
        assert!(block_on(p.wait_durable(lsn)).is_err());
        assert!(p.failure().is_some());

        // From now on writes get MISCONF, reads go on.
        let (r, _) = run(&engine, &mut s, &p, &["SET", "later", "3"]);
        match r {
            Reply::Error(e) => assert!(e.starts_with("MISCONF"), "{e}"),
            other => panic!("expected MISCONF, got {other:?}"),
        }
        assert_eq!(run(&engine, &mut s, &p, &["GET", "acked"]).0, Reply::Bulk(b"1".to_vec()));
        assert!(p.info_fields().iter().any(|(k, v)| *k == "wal_status" && v == "poisoned"));

        // Power loss, then recovery from what reached the disk: the
        // acknowledged write is there.
        let after = fs.crash();
        let engine2 = crate::server::Shared::new_engine(&cfg);
        let p2 = open(&cfg, &engine2, &after);
        let mut s2 = engine2.session();
        assert_eq!(run(&engine2, &mut s2, &p2, &["GET", "acked"]).0, Reply::Bulk(b"1".to_vec()));
    }

    #[test]
    fn persistence_off_builds_no_records() {
        let (mut cfg, _dir) = config("always");
        cfg.enable_wal = false;
        let engine = crate::server::Shared::new_engine(&cfg);
        assert!(matches!(Persistence::open_on(&cfg, &engine, Some(FaultFs::new().as_fs()), |_| {}), Ok(None)));
        let journal = WalJournal::new(None);
        assert!(!fastcache_core::Journal::enabled(&journal));
    }

    #[test]
    fn a_healed_log_resumes_writes_and_loses_nothing_acknowledged_across_a_later_crash() {
        let fs = FaultFs::new();
        let (cfg, _dir) = config("always");
        let engine = crate::server::Shared::new_engine(&cfg);
        let p = open(&cfg, &engine, &fs);
        let mut s = engine.session();
        for i in 0..50 {
            let (r, lsn) = run(&engine, &mut s, &p, &["RPUSH", "list", &i.to_string()]);
            assert_eq!(r, Reply::Int(i + 1));
            assert_eq!(block_on(p.wait_durable(lsn)), Ok(()));
        }
        // The disk fails: the log is poisoned, writes are refused.
        fs.fail_all_syncs(true);
        let (_, lsn) = run(&engine, &mut s, &p, &["RPUSH", "list", "unacked"]);
        assert!(block_on(p.wait_durable(lsn)).is_err());
        assert!(p.failure().is_some());
        assert!(run(&engine, &mut s, &p, &["SET", "k", "v"]).0.is_error());
        // While the disk still fails, healing does nothing.
        p.try_heal_now();
        assert!(p.failure().is_some());
        // The disk recovers: healing snapshots memory, restarts the log and
        // lifts the block.
        fs.fail_all_syncs(false);
        p.try_heal_now();
        assert_eq!(p.failure(), None, "healed");
        for i in 0..20 {
            let (r, lsn) = run(&engine, &mut s, &p, &["SET", &format!("after{i}"), "x"]);
            assert_eq!(r, Reply::OK);
            assert_eq!(block_on(p.wait_durable(lsn)), Ok(()));
        }
        // Power loss: every acknowledged write, before and after the heal,
        // comes back from the healing snapshot plus the new log.
        let after = fs.crash();
        let engine2 = crate::server::Shared::new_engine(&cfg);
        let p2 = open(&cfg, &engine2, &after);
        let mut s2 = engine2.session();
        assert!(p2.recovery.snapshot.is_some(), "recovered from the healing snapshot");
        let Reply::Array(items) = run(&engine2, &mut s2, &p2, &["LRANGE", "list", "0", "49"]).0 else {
            panic!("list lost")
        };
        assert_eq!(items.len(), 50);
        for i in 0..20 {
            assert_eq!(run(&engine2, &mut s2, &p2, &["GET", &format!("after{i}")]).0, Reply::Bulk(b"x".to_vec()));
        }
    }

    #[test]
    fn a_snapshot_truncates_the_wal_and_recovery_uses_it() {
        let fs = FaultFs::new();
        let (cfg, _dir) = config("always");
        let engine = crate::server::Shared::new_engine(&cfg);
        let p = open(&cfg, &engine, &fs);
        let mut s = engine.session();
        let value = "v".repeat(1000);
        // About 3 MiB of log: several 1 MiB segments.
        for i in 0..3000 {
            let (_, lsn) = run(&engine, &mut s, &p, &["SET", &format!("k{}", i % 500), &value]);
            if i % 500 == 0 {
                assert_eq!(block_on(p.wait_durable(lsn)), Ok(()));
            }
        }
        let (_, lsn) = run(&engine, &mut s, &p, &["INCR", "counter"]);
        assert_eq!(block_on(p.wait_durable(lsn)), Ok(()));
        let before = p.wal.stats().segments;
        let info = match p.take_snapshot(crate::snapshots::Trigger::Save) {
            Ok(i) => i,
            Err(e) => panic!("snapshot: {e}"),
        };
        assert_eq!(info.keys, 501);
        assert!(p.wal.stats().segments < before, "segments below the snapshot were deleted");
        let (_, lsn) = run(&engine, &mut s, &p, &["INCR", "counter"]);
        assert_eq!(block_on(p.wait_durable(lsn)), Ok(()));
        let digest = engine.digest();
        let after = fs.crash();
        let engine2 = crate::server::Shared::new_engine(&cfg);
        let p2 = open(&cfg, &engine2, &after);
        assert_eq!(p2.recovery.snapshot.as_ref().map(|s| s.lsn), Some(info.meta.lsn));
        assert_eq!(p2.recovery.wal.records, 1, "only the record after the snapshot is replayed");
        assert_eq!(engine2.digest(), digest);
    }

    /// Writes from `n` sessions, then waits for each on its own task of
    /// one current-thread runtime (the server's IO threads); returns the
    /// outcomes.
    fn wait_on_one_thread(engine: &Engine, p: &Arc<Persistence>, n: usize) -> Vec<Result<(), String>> {
        block_on(async {
            let mut tasks = Vec::new();
            for i in 0..n {
                let mut s = engine.session();
                let (r, lsn) = run(engine, &mut s, p, &["SET", &format!("k{i}"), "v"]);
                assert_eq!(r, Reply::OK);
                let p = p.clone();
                tasks.push(tokio::spawn(async move { p.wait_durable(lsn).await }));
            }
            let mut out = Vec::new();
            for t in tasks {
                match t.await {
                    Ok(r) => out.push(r),
                    Err(e) => panic!("task: {e}"),
                }
            }
            out
        })
    }

    #[test]
    fn connections_of_one_thread_share_one_wait_and_one_sync() {
        let fs = FaultFs::new();
        let (cfg, _dir) = config("always");
        let engine = crate::server::Shared::new_engine(&cfg);
        let p = open(&cfg, &engine, &fs);
        for round in 0..3 {
            let syncs = p.wal.stats().syncs;
            let results = wait_on_one_thread(&engine, &p, 20);
            assert!(results.iter().all(Result::is_ok), "{results:?}");
            assert_eq!(p.wal.durable_lsn(), p.wal.last_lsn());
            // The thread's driver yields until every task has registered,
            // then one sync covers them all.
            let used = p.wal.stats().syncs - syncs;
            assert!(used <= 2, "round {round}: {used} syncs for 20 waits on one thread");
        }
    }

    #[test]
    fn a_failed_sync_fails_every_wait_of_the_thread() {
        let fs = FaultFs::new();
        let (cfg, _dir) = config("always");
        let engine = crate::server::Shared::new_engine(&cfg);
        let p = open(&cfg, &engine, &fs);
        assert!(wait_on_one_thread(&engine, &p, 5).iter().all(Result::is_ok));
        fs.fail_all_syncs(true);
        let results = wait_on_one_thread(&engine, &p, 10);
        assert!(results.iter().all(Result::is_err), "{results:?}");
        assert!(p.failure().is_some());
    }
}
