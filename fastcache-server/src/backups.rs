//! Incremental backups in the server (ENABLE_INCREMENTAL_BACKUP): every
//! INCREMENTAL_BACKUP_INTERVAL with changes, the keys changed since the
//! last backup go to one incremental file in BACKUP_DIR; the first backup of
//! a run, or one after a SWAPDB, is a full base that starts a new chain
//! (`fastcache-backup`). Like snapshots, a backup is published only once the
//! WAL is durable up to its LSN.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fastcache_backup::{BackupDir, LinkInfo, LinkKind};
use parking_lot::Mutex;

use crate::persist::Persistence;

/// The backup side of [`Persistence`].
pub struct Backups {
    pub dir: BackupDir,
    pub interval: Duration,
    state: Mutex<State>,
    pub stop: AtomicBool,
    /// Held while a backup is taken, and by [`Persistence::hold_copies`]
    /// (a replica replacing its data set): never both at once.
    pub(crate) busy: Mutex<()>,
}

#[derive(Default)]
struct State {
    full: u64,
    incremental: u64,
    failed: u64,
    last: Option<LinkInfo>,
    last_error: Option<String>,
    last_ok_at: Option<Instant>,
}

impl Backups {
    /// Wraps an open backup directory.
    pub fn new(dir: BackupDir, interval: Duration) -> Backups {
        Backups {
            dir,
            interval,
            state: Mutex::new(State::default()),
            stop: AtomicBool::new(false),
            busy: Mutex::new(()),
        }
    }
}

impl Persistence {
    /// Takes one backup now: incremental if the chain continues, else full.
    ///
    /// # Errors
    /// The cause, for the log and INFO (another snapshot running, the disk,
    /// the WAL not durable).
    pub fn take_backup(&self) -> Result<LinkInfo, String> {
        let Some(b) = &self.backups else { return Err("incremental backups are disabled".into()) };
        let _busy = b.busy.lock();
        let engine = self.engine();
        let durable = |lsn| self.make_durable(lsn);
        let result = match b.dir.write_incremental(engine, || self.wal.last_lsn(), durable) {
            Err(fastcache_backup::Error::NeedsFull { reason }) => {
                tracing::info!("starting a new backup chain with a full backup ({reason})");
                b.dir.write_full(engine, || self.wal.last_lsn(), durable)
            }
            other => other,
        };
        let mut st = b.state.lock();
        match result {
            Ok(info) => {
                if info.written {
                    match info.link.kind {
                        LinkKind::Full => st.full += 1,
                        LinkKind::Incremental => st.incremental += 1,
                    }
                    tracing::info!(
                        kind = ?info.link.kind,
                        file = %info.link.path.display(),
                        from_lsn = info.link.from_lsn,
                        to_lsn = info.link.to_lsn,
                        keys = info.link.keys,
                        bytes = info.link.file_bytes,
                        elapsed_ms = info.elapsed.as_millis() as u64,
                        "backup written"
                    );
                }
                for removed in &info.removed_chains {
                    tracing::info!(chain = %removed.display(), "old backup chain removed (retention)");
                }
                st.last_error = None;
                st.last_ok_at = Some(Instant::now());
                st.last = Some(info.clone());
                Ok(info)
            }
            Err(e) => {
                let msg = e.to_string();
                st.failed += 1;
                st.last_error = Some(msg.clone());
                Err(msg)
            }
        }
    }

    /// The backup loop; runs until [`Backups::stop`] is set.
    pub fn run_backups(self: Arc<Self>) {
        let Some(b) = &self.backups else { return };
        let mut next = Instant::now();
        while !b.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
            if Instant::now() < next || self.failure().is_some() {
                continue;
            }
            let first = b.state.lock().last.is_none();
            if !first && self.engine().changed_keys() == 0 {
                next = Instant::now() + b.interval;
                continue;
            }
            match self.take_backup() {
                Ok(_) => next = Instant::now() + b.interval,
                Err(e) if e.contains("in progress") || e.contains("busy") || e.contains("Busy") => {
                    // A snapshot holds the engine's one cursor: soon again.
                    next = Instant::now() + Duration::from_millis(200);
                }
                Err(e) => {
                    tracing::error!("backup failed: {e}; the WAL still holds every write");
                    next = Instant::now() + b.interval;
                }
            }
        }
    }

    /// INFO persistence lines of the backups.
    pub fn backup_info_fields(&self) -> Vec<(&'static str, String)> {
        let Some(b) = &self.backups else { return vec![("incremental_backups_enabled", "0".into())] };
        let st = b.state.lock();
        let last = st.last.as_ref();
        vec![
            ("incremental_backups_enabled", "1".into()),
            ("backup_dir", b.dir.dir().display().to_string()),
            ("backups_full", st.full.to_string()),
            ("backups_incremental", st.incremental.to_string()),
            ("backups_failed", st.failed.to_string()),
            ("backup_last_status", if st.last_error.is_some() { "err" } else { "ok" }.into()),
            ("backup_last_error", st.last_error.clone().unwrap_or_default()),
            (
                "backup_last_kind",
                last.map_or("", |l| if l.link.kind == LinkKind::Full { "full" } else { "incremental" }).into(),
            ),
            ("backup_last_lsn", last.map_or(0, |l| l.link.to_lsn).to_string()),
            ("backup_last_size", last.map_or(0, |l| l.link.file_bytes).to_string()),
            ("backup_last_duration_ms", last.map_or(0, |l| l.elapsed.as_millis() as u64).to_string()),
            ("backup_changed_keys", self.engine().changed_keys().to_string()),
        ]
    }

    /// Metrics of the backups.
    pub fn register_backups(self: &Arc<Self>, registry: &crate::metrics::Registry) {
        if self.backups.is_none() {
            return;
        }
        let me = self.clone();
        registry.register(Arc::new(move |w: &mut crate::metrics::MetricWriter| {
            let Some(b) = &me.backups else { return };
            let st = b.state.lock();
            w.counter("fastcache_backups_total", "backups written", &[("kind", "full")], st.full);
            w.counter("fastcache_backups_total", "backups written", &[("kind", "incremental")], st.incremental);
            w.counter("fastcache_backups_failed_total", "backups that failed", &[], st.failed);
            if let Some(l) = &st.last {
                w.gauge("fastcache_backup_last_size_bytes", "file size of the last backup", &[], l.link.file_bytes);
                w.gauge("fastcache_backup_last_lsn", "LSN the last backup is consistent at", &[], l.link.to_lsn);
            }
            if let Some(t) = st.last_ok_at {
                w.gauge("fastcache_backup_age_seconds", "age of the last good backup", &[], t.elapsed().as_secs_f64());
            }
        }));
    }
}
