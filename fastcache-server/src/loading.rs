//! The server's state while crash recovery runs: connections are accepted
//! from the start, and commands without Redis' `loading` flag are answered
//! `-LOADING FastCache is loading the dataset in memory`, as Redis does,
//! with progress in INFO persistence.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use fastcache_recovery::Progress;
use parking_lot::Mutex;

/// The error commands get while loading (Redis' text, with our name).
pub const LOADING_ERROR: &str = "LOADING FastCache is loading the dataset in memory";

/// See the module documentation.
#[derive(Default)]
pub struct Loading {
    active: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    started: Option<Instant>,
    started_unix: u64,
    progress: Option<Progress>,
}

impl Loading {
    /// Recovery starts.
    pub fn start(&self) {
        let mut st = self.state.lock();
        st.started = Some(Instant::now());
        st.started_unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        st.progress = None;
        self.active.store(true, Ordering::Release);
    }

    /// Recovery reports progress.
    pub fn update(&self, p: Progress) {
        self.state.lock().progress = Some(p);
    }

    /// Recovery is over: commands are served.
    pub fn finish(&self) {
        self.active.store(false, Ordering::Release);
    }

    /// Whether commands must get `-LOADING`. One atomic load: it is read for
    /// every command.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Acquire)
    }

    /// The phase and percentage done of the current phase.
    fn phase(&self) -> (&'static str, f64) {
        match self.state.lock().progress {
            None => ("opening", 0.0),
            Some(Progress::Snapshot { chunks_done, chunks }) => {
                ("snapshot", chunks_done as f64 * 100.0 / chunks.max(1) as f64)
            }
            Some(Progress::Wal { lsn, last_lsn, records }) => {
                let first = lsn.saturating_sub(records);
                let total = last_lsn.saturating_sub(first).max(1);
                ("wal", lsn.saturating_sub(first) as f64 * 100.0 / total as f64)
            }
        }
    }

    /// A sentence saying how far recovery got (for the timeout message).
    pub fn describe(&self) -> String {
        let elapsed = self.state.lock().started.map_or(0.0, |t| t.elapsed().as_secs_f64());
        let p = self.state.lock().progress;
        let detail = match p {
            None => "opening the data directory".to_string(),
            Some(Progress::Snapshot { chunks_done, chunks }) => {
                format!("loading the snapshot, chunk {chunks_done} of {chunks}")
            }
            Some(Progress::Wal { records, lsn, last_lsn }) => {
                format!("replaying the WAL, {records} records, at LSN {lsn} of {last_lsn}")
            }
        };
        format!("{detail} after {elapsed:.1}s")
    }

    /// INFO persistence's loading fields.
    pub fn info_fields(&self) -> Vec<(&'static str, String)> {
        if !self.is_active() {
            return vec![("loading", "0".into()), ("async_loading", "0".into())];
        }
        let (phase, perc) = self.phase();
        let st = self.state.lock();
        let elapsed = st.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
        let eta = if perc > 0.0 { elapsed * (100.0 - perc) / perc } else { 0.0 };
        vec![
            ("loading", "1".into()),
            ("async_loading", "0".into()),
            ("loading_start_time", st.started_unix.to_string()),
            ("loading_loaded_perc", format!("{perc:.2}")),
            ("loading_eta_seconds", format!("{}", eta.round() as u64)),
            ("loading_phase", phase.into()),
        ]
    }
}
