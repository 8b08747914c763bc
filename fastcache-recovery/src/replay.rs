//! Re-applying the WAL to the engine, on one thread or several.
//!
//! # Parallel replay
//! Two records whose shard sets ([`Engine::record_shards`]) are disjoint
//! commute, so the log is split by shard: the calling thread reads and
//! decodes each record and routes it to the worker that owns its shards
//! (shard `s` belongs to worker `s % threads`), in batches; each worker
//! applies its records in log order. So every shard sees exactly the
//! sequence of records serial replay would give it, and the result is the
//! same state. A record whose shards belong to several workers, or that may
//! touch any key (FLUSHALL, SWAPDB, a MULTI over many keys, …), is a
//! barrier: every worker drains, the calling thread applies it alone, and
//! parallel work resumes. A barrier empties the pipeline, so where they
//! come more often than every few hundred records the calling thread
//! applies every record itself until they thin out again (measured on 2
//! cores: a barrier every 1,000 records still gains, every 400 loses).
//!
//! The calling thread decodes each record to find its shards and the worker
//! decodes it again to apply it: decoding borrows from the payload
//! ([`RecordRef`]) and costs little next to applying, while sending
//! decoded records would mean sending their allocations across threads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::time::{Duration, Instant};

use fastcache_core::{Engine, RecordRef};
use fastcache_wal::{Lsn, Wal};
use parking_lot::Mutex;

use crate::error::{Error, Result};

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Records re-applied.
    pub records: u64,
    /// Payload bytes read.
    pub bytes: u64,
    /// The first and last LSN applied (0 when none).
    pub first_lsn: Lsn,
    /// The last LSN applied.
    pub last_lsn: Lsn,
    /// How long it took.
    pub elapsed: Duration,
}

/// Re-applies every record of `wal` from `from` on, through the engine's
/// one code path ([`Engine::apply_record`]), on the calling thread.
/// `progress` is called about once a second with the report so far, so a
/// long replay shows it is moving.
///
/// # Errors
/// [`Error::Wal`] if the log cannot be read, [`Error::Record`] /
/// [`Error::Replay`] if a record does not decode or apply; the engine then
/// holds every record before it.
pub fn replay_wal(engine: &Engine, wal: &Wal, from: Lsn, progress: impl FnMut(&ReplayReport)) -> Result<ReplayReport> {
    replay_wal_until(engine, wal, from, Lsn::MAX, progress)
}

/// [`replay_wal`] that stops after the record `until`.
///
/// # Errors
/// As [`replay_wal`].
pub fn replay_wal_until(
    engine: &Engine,
    wal: &Wal,
    from: Lsn,
    until: Lsn,
    progress: impl FnMut(&ReplayReport),
) -> Result<ReplayReport> {
    replay_wal_parallel(engine, wal, from, until, 1, progress)
}

/// [`replay_wal_until`] with `threads` workers applying records of
/// different shards at the same time (see the module documentation); with
/// `threads` ≤ 1 it is exactly [`replay_wal_until`]. The resulting state
/// and the report are those of serial replay.
///
/// # Errors
/// As [`replay_wal`], with the LSN serial replay would report. What the
/// engine then holds:
/// - after [`Error::Wal`], or an [`Error::Record`] / [`Error::Replay`] at a
///   record the calling thread handles (one that does not decode, a
///   barrier, any record while barriers are dense), exactly what serial
///   replay leaves: every record before it;
/// - after an [`Error::Replay`] in a worker: every record before it too,
///   and in addition possibly some records after it that touch none of the
///   failing record's shards and come before the next barrier (they were
///   already applied by other workers when it failed). Recovery refuses to
///   start after any of these errors, so the extra records never serve.
pub fn replay_wal_parallel(
    engine: &Engine,
    wal: &Wal,
    from: Lsn,
    until: Lsn,
    threads: usize,
    progress: impl FnMut(&ReplayReport),
) -> Result<ReplayReport> {
    let mut tally = Tally::new(progress);
    if threads <= 1 {
        for item in wal.reader(from)? {
            let (lsn, payload) = item?;
            if lsn > until {
                break;
            }
            let record = RecordRef::decode(&payload).map_err(|source| Error::Record { lsn, source })?;
            engine.apply_record_ref(&record).map_err(|source| Error::Replay { lsn, source })?;
            tally.add(lsn, payload.len());
        }
    } else {
        parallel(engine, wal, from, until, threads, &mut tally)?;
    }
    Ok(tally.finish())
}

/// Records per message to a worker (at most): per-record channel traffic
/// would cost more than applying.
const BATCH_RECORDS: usize = 512;
/// Payload bytes per message to a worker, give or take a record.
const BATCH_BYTES: usize = 256 << 10;
/// Batches queued for all workers together before the reader waits (at
/// most 64 per worker, at least 4): deep, so that a worker the scheduler
/// set aside for a moment (the reader and the workers share the cores) does
/// not stall the reader, and with it the others (4 per worker instead of 64
/// cost about 15% on 2 cores), with payloads in flight around 32 MiB.
const QUEUED_BATCHES: usize = 128;

/// Consecutive records of one worker: their payloads end to end, and each
/// one's LSN and end offset.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    records: Vec<(Lsn, usize)>,
}

impl Batch {
    fn push(&mut self, lsn: Lsn, payload: &[u8]) {
        self.bytes.extend_from_slice(payload);
        self.records.push((lsn, self.bytes.len()));
    }

    fn clear(&mut self) {
        self.bytes.clear();
        self.records.clear();
    }
}

enum Msg {
    Records(Batch),
    /// Reply on the acknowledgement channel once everything before is
    /// applied.
    Drain,
}

/// What the workers share with the reader.
struct Shared {
    /// The lowest LSN a worker failed at (`Lsn::MAX`: none); records after
    /// it are no longer applied.
    stop: AtomicU64,
    /// The error at `stop`.
    error: Mutex<Option<(Lsn, Error)>>,
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire) != Lsn::MAX
    }

    fn fail(&self, lsn: Lsn, error: Error) {
        let mut slot = self.error.lock();
        if slot.as_ref().is_none_or(|(l, _)| lsn < *l) {
            *slot = Some((lsn, error));
            self.stop.fetch_min(lsn, Ordering::AcqRel);
        }
    }
}

fn parallel<F: FnMut(&ReplayReport)>(
    engine: &Engine,
    wal: &Wal,
    from: Lsn,
    until: Lsn,
    threads: usize,
    tally: &mut Tally<F>,
) -> Result<()> {
    let reader = wal.reader(from)?;
    let shared = Shared { stop: AtomicU64::new(Lsn::MAX), error: Mutex::new(None) };
    let (ack_tx, ack_rx) = mpsc::channel::<bool>();
    let (free_tx, free_rx) = mpsc::channel::<Batch>();
    // More workers than shards would have nothing to do.
    let threads = threads.min(engine.shard_count());
    let depth = (QUEUED_BATCHES / threads).clamp(4, 64);
    let routed = std::thread::scope(|s| {
        let mut queues = Vec::with_capacity(threads);
        for i in 0..threads {
            let (tx, rx) = mpsc::sync_channel::<Msg>(depth);
            let (shared, ack_tx, free_tx) = (&shared, ack_tx.clone(), free_tx.clone());
            let work = move || worker(engine, rx, shared, ack_tx, free_tx);
            // A thread that cannot be spawned is not an error: fewer
            // workers do the work (none: the reader applies every record).
            if std::thread::Builder::new().name(format!("wal-replay-{i}")).spawn_scoped(s, work).is_ok() {
                queues.push(tx);
            }
        }
        let pending = queues.iter().map(|_| Batch::default()).collect();
        let mut router = Router { queues, pending, free_rx, ack_rx, busy: false };
        let routed = route(engine, reader, until, &shared, &mut router, tally);
        // Whatever happened, the records already read are applied (or
        // skipped after a worker's failure) before returning: the engine
        // then holds every record before the one that failed.
        router.flush_all();
        drop(router.queues);
        routed
    });
    if let Some((_, e)) = shared.error.into_inner() {
        // A worker's record comes before anything the reader stopped at.
        return Err(e);
    }
    routed
}

/// The reader's side: per-worker queues and the batches being filled.
struct Router {
    queues: Vec<SyncSender<Msg>>,
    pending: Vec<Batch>,
    free_rx: Receiver<Batch>,
    /// `true`: a worker drained; `false`: a worker panicked.
    ack_rx: Receiver<bool>,
    /// Records were sent since the last drain.
    busy: bool,
}

impl Router {
    fn push(&mut self, worker: usize, lsn: Lsn, payload: &[u8]) {
        self.busy = true;
        self.pending[worker].push(lsn, payload);
        let batch = &self.pending[worker];
        if batch.records.len() >= BATCH_RECORDS || batch.bytes.len() >= BATCH_BYTES {
            self.flush(worker);
        }
    }

    fn flush(&mut self, worker: usize) {
        if self.pending[worker].records.is_empty() {
            return;
        }
        let fresh = self.free_rx.try_recv().unwrap_or_default();
        let batch = std::mem::replace(&mut self.pending[worker], fresh);
        // A worker only goes away by panicking, which the scope re-raises.
        let _ = self.queues[worker].send(Msg::Records(batch));
    }

    fn flush_all(&mut self) {
        for w in 0..self.queues.len() {
            self.flush(w);
        }
    }

    /// Returns once every worker has applied everything sent to it; false
    /// if a worker panicked (the scope re-raises the panic once the reader
    /// hangs up).
    fn drain(&mut self) -> bool {
        if !self.busy {
            return true;
        }
        self.busy = false;
        self.flush_all();
        let mut asked = 0;
        for q in &self.queues {
            asked += usize::from(q.send(Msg::Drain).is_ok());
        }
        (0..asked).all(|_| self.ack_rx.recv().unwrap_or(false))
    }
}

/// Records over which the reader counts barriers to choose between
/// parallel and serial replay.
const WINDOW: u32 = 4096;
/// More barriers than this in a window: replay serially. Each barrier
/// empties the pipeline (the reader waits for the slowest worker, then the
/// workers wait for the reader), so below a few hundred records between
/// barriers parallel replay is slower than serial replay.
const ENTER_SERIAL: u32 = 8;
/// Back to parallel replay when a window has at most this many barriers.
const LEAVE_SERIAL: u32 = 4;
/// Replaying serially, one record in this many is classified (finding a
/// record's shards costs about 5% of applying it).
const SERIAL_SAMPLE: u32 = 8;

/// Reads the log and hands each record to its worker, applying barriers
/// itself — and every record, while barriers are frequent. Returns early
/// when a worker failed.
fn route<F: FnMut(&ReplayReport)>(
    engine: &Engine,
    reader: fastcache_wal::Reader,
    until: Lsn,
    shared: &Shared,
    router: &mut Router,
    tally: &mut Tally<F>,
) -> Result<()> {
    let workers = router.queues.len();
    let mut serial = workers == 0;
    let (mut seen, mut barriers) = (0, 0);
    for item in reader {
        if shared.stopped() {
            break;
        }
        let (lsn, payload) = item?;
        if lsn > until {
            break;
        }
        let record = RecordRef::decode(&payload).map_err(|source| Error::Record { lsn, source })?;
        // Serially, only every SERIAL_SAMPLE-th record is looked at, to
        // notice when barriers thin out.
        let classify = !serial || seen % SERIAL_SAMPLE == 0;
        let shards = if classify { engine.record_shards(&record) } else { None };
        let owner = shards.filter(|_| workers > 0).and_then(|shards| {
            let w = shards.first()? % workers;
            shards.iter().all(|s| s % workers == w).then_some(w)
        });
        match owner {
            Some(w) if !serial => router.push(w, lsn, &payload),
            _ => {
                if !router.drain() || shared.stopped() {
                    break;
                }
                engine.apply_record_ref(&record).map_err(|source| Error::Replay { lsn, source })?;
            }
        }
        tally.add(lsn, payload.len());
        seen += 1;
        barriers += u32::from(classify && owner.is_none());
        if seen == WINDOW {
            serial =
                workers == 0 || if serial { barriers * SERIAL_SAMPLE > LEAVE_SERIAL } else { barriers > ENTER_SERIAL };
            (seen, barriers) = (0, 0);
        }
    }
    Ok(())
}

/// A worker: applies the records it is sent, in order, until the reader
/// hangs up.
fn worker(engine: &Engine, rx: Receiver<Msg>, shared: &Shared, ack_tx: Sender<bool>, free_tx: Sender<Batch>) {
    // NOTE: a worker that panics must still answer a drain, or the reader
    // would wait for it forever instead of re-raising the panic.
    struct Gone<'a>(&'a Sender<bool>);
    impl Drop for Gone<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                let _ = self.0.send(false);
            }
        }
    }
    let _gone = Gone(&ack_tx);
    for msg in rx {
        match msg {
            Msg::Records(mut batch) => {
                let mut start = 0;
                for &(lsn, end) in &batch.records {
                    let payload = &batch.bytes[start..end];
                    start = end;
                    if lsn > shared.stop.load(Ordering::Acquire) {
                        continue;
                    }
                    let applied = RecordRef::decode(payload)
                        .map_err(|source| Error::Record { lsn, source })
                        .and_then(|r| engine.apply_record_ref(&r).map_err(|source| Error::Replay { lsn, source }));
                    if let Err(e) = applied {
                        shared.fail(lsn, e);
                    }
                }
                batch.clear();
                let _ = free_tx.send(batch);
            }
            Msg::Drain => {
                let _ = ack_tx.send(true);
            }
        }
    }
}

/// The report being built, and the progress calls.
struct Tally<F> {
    start: Instant,
    last_progress: Instant,
    report: ReplayReport,
    progress: F,
}

impl<F: FnMut(&ReplayReport)> Tally<F> {
    fn new(progress: F) -> Tally<F> {
        let start = Instant::now();
        Tally { start, last_progress: start, report: ReplayReport::default(), progress }
    }

    fn add(&mut self, lsn: Lsn, bytes: usize) {
        let report = &mut self.report;
        if report.first_lsn == 0 {
            report.first_lsn = lsn;
        }
        report.last_lsn = lsn;
        report.records += 1;
        report.bytes += bytes as u64;
        // Reading the clock for every record costs more than the progress
        // line is worth; every 4096 records is still about once a second
        // at worst.
        if report.records % 4096 == 0 && self.last_progress.elapsed() >= Duration::from_secs(1) {
            self.last_progress = Instant::now();
            report.elapsed = self.start.elapsed();
            (self.progress)(report);
        }
    }

    fn finish(mut self) -> ReplayReport {
        self.report.elapsed = self.start.elapsed();
        self.report
    }
}
