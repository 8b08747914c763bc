//! The replica's end: a thread that connects to the primary, asks to
//! continue from its last applied LSN, applies what comes — a snapshot on a
//! full sync, then WAL records — and acknowledges. Any failure (the primary
//! vanished, a damaged frame, a record that does not follow) is logged and
//! followed by a reconnect with backoff; a replica never applies a record
//! it cannot place exactly after the previous one.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fastcache_core::{Journal, JournalError, Op, Record, RecordRef};
use fastcache_snapshot::{SnapshotMeta, SnapshotWriter, WriterOptions};

use super::{state, wire, Link, SyncReport};
use crate::persist::Persistence;
use crate::server::Shared;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Handshake replies must come within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The primary sends a heartbeat every second; this much silence means it
/// (or the network) is gone.
const SILENCE_LIMIT: Duration = Duration::from_secs(15);
/// Socket reads wake this often to acknowledge and to notice a stop.
const POLL: Duration = Duration::from_millis(100);
/// Acknowledge at least this often while nothing changes.
const ACK_EVERY: Duration = Duration::from_secs(1);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

type Result<T> = std::result::Result<T, String>;

/// The link thread: sessions with the primary until the link is stopped.
pub fn run(shared: Arc<Shared>, link: Arc<Link>) {
    let mut backoff = BACKOFF_MIN;
    let addr = format!("{}:{}", link.host, link.port);
    while !link.stopped() {
        let started = Instant::now();
        let result = session(&shared, &link);
        link.state.store(0, Ordering::Release);
        link.down_since.lock().get_or_insert_with(Instant::now);
        *link.socket.lock() = None;
        if link.stopped() {
            break;
        }
        if started.elapsed() > Duration::from_secs(10) {
            backoff = BACKOFF_MIN;
        }
        match result {
            Ok(()) => {}
            Err(e) => tracing::warn!(primary = %addr, "replication link: {e}; reconnecting in {backoff:?}"),
        }
        let until = Instant::now() + backoff;
        while Instant::now() < until && !link.stopped() {
            std::thread::sleep(Duration::from_millis(20));
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One connection: handshake, then frames until an error or a stop.
fn session(shared: &Arc<Shared>, link: &Arc<Link>) -> Result<()> {
    let target = (link.host.as_str(), link.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve the primary's address: {e}"))?
        .next()
        .ok_or("the primary's host name resolves to no address")?;
    let mut stream = TcpStream::connect_timeout(&target, CONNECT_TIMEOUT)
        .map_err(|e| format!("cannot connect to the primary: {e}"))?;
    let _ = stream.set_nodelay(true);
    *link.socket.lock() = stream.try_clone().ok();
    if link.stopped() {
        return Ok(());
    }
    link.state.store(1, Ordering::Release);
    stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT)).map_err(|e| e.to_string())?;
    let mut buf = Vec::with_capacity(1 << 20);
    let repl = &shared.replication;
    if let Some(pw) = &shared.config.masterauth {
        let r = command(&mut stream, &mut buf, &[b"AUTH", pw.as_bytes()])?;
        if r != "+OK" {
            return Err(format!("the primary refused AUTH ({r}); check FASTCACHE_MASTERAUTH"));
        }
    }
    let r = command(&mut stream, &mut buf, &[b"PING"])?;
    if r.starts_with("-NOAUTH") {
        return Err("the primary requires a password: set FASTCACHE_MASTERAUTH to its FASTCACHE_REQUIREPASS".into());
    }
    if r != "+PONG" {
        return Err(format!("the primary answered PING with {r}"));
    }
    let port = shared.port.to_string();
    let r = command(&mut stream, &mut buf, &[b"REPLCONF", b"listening-port", port.as_bytes()])?;
    if r != "+OK" {
        return Err(format!("the primary refused REPLCONF listening-port: {r}"));
    }
    let version = wire::PROTOCOL_VERSION.to_string();
    let r = command(&mut stream, &mut buf, &[b"REPLCONF", b"fastcache-protocol", version.as_bytes()])?;
    if r != "+OK" {
        return Err(format!(
            "the primary does not speak FastCache replication protocol {version} ({r}); a FastCache replica \
             replicates from a FastCache primary of the same protocol version"
        ));
    }
    let (replid, next) = {
        let applied = repl.applied.load(Ordering::Acquire);
        let ids = repl.ids.lock();
        if applied == 0 {
            ("?".to_string(), 0)
        } else {
            (ids.replid.clone(), applied + 1)
        }
    };
    let next_text = if next == 0 { "-1".to_string() } else { next.to_string() };
    let r = command(&mut stream, &mut buf, &[b"PSYNC", replid.as_bytes(), next_text.as_bytes()])?;
    let words: Vec<&str> = r.split(' ').collect();
    // Full syncs and rewinds replace the data set: no snapshot meanwhile
    // (waited for before the data lock, so a stop is never held up by it).
    let hold = match (words.first(), shared.persistence()) {
        (Some(&"+FULLRESYNC" | &"+REWIND"), Some(p)) => hold_copies(p, link)?,
        _ => None,
    };
    let guard = link.apply.lock();
    if link.stopped() {
        return Ok(());
    }
    let mut full = match words.as_slice() {
        ["+FULLRESYNC", id, lsn] if state::is_replid(id) => {
            let lsn: u64 = lsn.parse().map_err(|_| format!("bad +FULLRESYNC offset in {r:?}"))?;
            tracing::info!(primary_replid = %id, lsn, "full resynchronisation from the primary");
            Some(FullSync::begin(shared, link, id, lsn, hold)?)
        }
        ["+CONTINUE", id] if state::is_replid(id) => {
            {
                let mut ids = repl.ids.lock();
                if ids.replid != *id {
                    // The primary restarted or was promoted: same data,
                    // new name for its history.
                    ids.replid = id.to_string();
                }
            }
            let _ = repl.save_state(false);
            record_sync(shared, link, SyncReport { kind: "partial", ..Default::default() });
            tracing::info!(from_lsn = next, "partial resynchronisation: continuing from the primary's WAL");
            None
        }
        ["+REWIND", id, lsn] if state::is_replid(id) => {
            let to: u64 = lsn.parse().map_err(|_| format!("bad +REWIND offset in {r:?}"))?;
            rewind(shared, link, id, to)?;
            drop(hold);
            None
        }
        _ => return Err(format!("the primary refused PSYNC: {r}")),
    };
    drop(guard);
    stream.set_read_timeout(Some(POLL)).map_err(|e| e.to_string())?;
    let persistence = shared.persistence().cloned();
    let mut last_ack = (0u64, 0u64, Instant::now() - ACK_EVERY);
    // When the primary last asked for an acknowledgement (a `G` frame):
    // for a while after, every change of the durable LSN is reported at
    // once too (WAITAOF waits for it).
    let mut asked: Option<Instant> = None;
    let mut last_data = Instant::now();
    let mut tmp = vec![0u8; 256 << 10];
    loop {
        let mut used = 0;
        let guard = link.apply.lock();
        if link.stopped() {
            return Ok(());
        }
        while let Some((frame, len)) = wire::parse_frame(&buf[used..]).map_err(|e| e.to_string())? {
            used += len;
            match (frame, full.as_mut()) {
                (wire::Frame::Chunk { entries, data }, Some(f)) => f.chunk(shared, link, entries, data)?,
                (wire::Frame::SnapshotEnd { keys }, Some(_)) => {
                    if let Some(f) = full.take() {
                        f.finish(shared, link, keys)?;
                    }
                }
                (wire::Frame::Record { lsn, payload }, None) => apply(shared, persistence.as_deref(), lsn, payload)?,
                (wire::Frame::Heartbeat { .. }, _) => {}
                (wire::Frame::GetAck { .. }, _) => {
                    asked = Some(Instant::now());
                    // Forces the acknowledgement below.
                    last_ack.2 = Instant::now() - ACK_EVERY;
                }
                (frame, _) => {
                    return Err(format!(
                        "unexpected {} frame {}: the stream is out of order",
                        frame_name(&frame),
                        if full.is_some() { "during the snapshot" } else { "after the snapshot" }
                    ))
                }
            }
        }
        drop(guard);
        buf.drain(..used);
        if used > 0 {
            repl.on_append();
        }
        if full.is_none() {
            let applied = repl.applied.load(Ordering::Acquire);
            let durable = persistence.as_ref().map_or(applied, |p| p.wal.durable_lsn().min(applied));
            let eager =
                asked.is_some_and(|t| t.elapsed() < ACK_EVERY) && (applied, durable) != (last_ack.0, last_ack.1);
            if eager || last_ack.2.elapsed() >= ACK_EVERY {
                let (a, d) = (applied.to_string(), durable.to_string());
                let frame = crate::resp::encode_command(&[b"REPLCONF", b"ACK", a.as_bytes(), b"FACK", d.as_bytes()]);
                stream.write_all(&frame).map_err(|e| format!("acknowledging to the primary: {e}"))?;
                last_ack = (applied, durable, Instant::now());
            }
        }
        if link.stopped() {
            return Ok(());
        }
        match stream.read(&mut tmp) {
            Ok(0) => return Err("the primary closed the connection".into()),
            Ok(n) => {
                buf.extend_from_slice(&tmp[..n]);
                last_data = Instant::now();
                *link.last_io.lock() = last_data;
                if let Some(f) = full.as_mut() {
                    link.sync_bytes.fetch_add(n as u64, Ordering::Relaxed);
                    f.bytes += n as u64;
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                if last_data.elapsed() > SILENCE_LIMIT {
                    return Err(format!(
                        "nothing from the primary for {} s (it sends a heartbeat every second)",
                        SILENCE_LIMIT.as_secs()
                    ));
                }
            }
            Err(e) => return Err(format!("reading from the primary: {e}")),
        }
    }
}

fn frame_name(f: &wire::Frame) -> &'static str {
    match f {
        wire::Frame::Chunk { .. } => "snapshot chunk",
        wire::Frame::SnapshotEnd { .. } => "snapshot end",
        wire::Frame::Record { .. } => "record",
        wire::Frame::Heartbeat { .. } => "heartbeat",
        wire::Frame::GetAck { .. } => "acknowledge request",
    }
}

/// Sends one command and reads its one-line reply (handshake only: every
/// handshake reply is a simple string or an error).
fn command(stream: &mut TcpStream, buf: &mut Vec<u8>, argv: &[&[u8]]) -> Result<String> {
    stream.write_all(&crate::resp::encode_command(argv)).map_err(|e| format!("writing to the primary: {e}"))?;
    let mut tmp = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 2);
            return Ok(line);
        }
        if buf.len() > 64 << 10 {
            return Err("the primary's reply is not a line of the replication handshake".into());
        }
        match stream.read(&mut tmp) {
            Ok(0) => return Err("the primary closed the connection during the handshake".into()),
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
            Err(e) => return Err(format!("waiting for the primary's reply: {e}")),
        }
    }
}

/// Journals a replicated record into the replica's WAL as the primary's
/// bytes, checking it lands at the primary's LSN.
struct ReplicaJournal<'a> {
    persistence: Option<&'a Persistence>,
    raw: &'a [u8],
    lsn: u64,
}

impl ReplicaJournal<'_> {
    fn append_raw(&mut self) -> std::result::Result<(), JournalError> {
        let Some(p) = self.persistence else { return Ok(()) };
        match p.wal.append(self.raw) {
            Ok(got) if got == self.lsn => Ok(()),
            Ok(got) => {
                let cause = format!("replicated record {} landed at LSN {got} of the local WAL", self.lsn);
                p.fail(&cause);
                Err(JournalError { message: cause })
            }
            Err(e) => {
                let cause = e.to_string();
                p.fail(&cause);
                Err(JournalError { message: cause })
            }
        }
    }
}

impl Journal for ReplicaJournal<'_> {
    fn append(&mut self, _record: &Record) -> std::result::Result<(), JournalError> {
        self.append_raw()
    }

    /// The primary's bytes are at hand: nothing is re-encoded.
    fn append_replayed(&mut self, _record: &RecordRef<'_>) -> std::result::Result<(), JournalError> {
        self.append_raw()
    }

    fn enabled(&self) -> bool {
        self.persistence.is_some()
    }
}

/// Applies one streamed record, which must follow the last applied one.
fn apply(shared: &Shared, persistence: Option<&Persistence>, lsn: u64, payload: &[u8]) -> Result<()> {
    let repl = &shared.replication;
    let applied = repl.applied.load(Ordering::Acquire);
    if lsn != applied + 1 {
        return Err(format!("the stream jumped from LSN {applied} to {lsn}; resynchronising"));
    }
    let record = RecordRef::decode(payload).map_err(|e| format!("record {lsn} does not decode: {e}"))?;
    let mut journal = ReplicaJournal { persistence, raw: payload, lsn };
    if let Err(e) = shared.engine.apply_record_ref_with(&record, &mut journal) {
        // Memory and the local WAL may now disagree: only a full sync
        // (which replaces both) is safe.
        repl.applied.store(0, Ordering::Release);
        return Err(format!("applying record {lsn} failed ({e}); a full resynchronisation follows"));
    }
    repl.applied.store(lsn, Ordering::Release);
    Ok(())
}

/// Makes the data directory hold exactly what memory holds, as the state
/// at `lsn` (default: the WAL's last LSN): a snapshot of memory becomes the
/// only one and the WAL restarts after it — forward or, after a rewind,
/// backwards. For a rewind, and for a replica promoted in the middle of a
/// full sync. The caller holds snapshots off. Returns the LSN.
pub(super) fn adopt_memory(shared: &Shared, p: &Persistence, lsn: Option<u64>) -> Result<u64> {
    let snaps = p.snapshots.as_ref().ok_or("snapshots are disabled (ENABLE_SNAPSHOTS=false)")?;
    let (mut cursor, lsn) = shared
        .engine
        .begin_snapshot(|| lsn.unwrap_or_else(|| p.wal.last_lsn()))
        .map_err(|_| "another snapshot is running".to_string())?;
    let writer = crate::snapshots::write_file(&mut cursor, &snaps.store, lsn, None)?;
    drop(cursor);
    let info = writer.finish().map_err(|e| format!("finishing the snapshot at LSN {lsn}: {e}"))?;
    p.wal.reset_after(lsn).map_err(|e| format!("restarting the WAL after LSN {lsn}: {e}"))?;
    snaps.store.publish_only(&info).map_err(|e| format!("publishing the snapshot at LSN {lsn}: {e}"))?;
    Ok(lsn)
}

/// Waits until no snapshot or backup runs and keeps new ones from starting (a
/// stopped link gives up).
fn hold_copies<'a>(p: &'a Persistence, link: &Link) -> Result<Option<crate::snapshots::CopyHold<'a>>> {
    loop {
        match p.hold_copies(Duration::ZERO) {
            Ok(hold) => return Ok(Some(hold)),
            Err(_) if !link.stopped() => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(e),
        }
    }
}

/// `+REWIND`: this node's history went on past the point `to` where the
/// primary's forked from it (it was the primary before a failover, and its
/// last records never reached the replica that was promoted). Those records
/// are dropped — as a full sync would, but without one: the state at `to`
/// is rebuilt from the local snapshot and WAL, a snapshot at `to` becomes
/// the only one and the WAL restarts after it; then the primary's records
/// stream from `to + 1`. The `syncing` mark covers a crash in between.
fn rewind(shared: &Shared, link: &Link, replid: &str, to: u64) -> Result<()> {
    let p = shared.persistence().cloned().ok_or("no local WAL to rewind")?;
    let snaps = p.snapshots.as_ref().ok_or("snapshots are disabled (ENABLE_SNAPSHOTS=false); a rewind needs them")?;
    let last = p.wal.last_lsn();
    tracing::warn!(
        fork_lsn = to,
        dropped_from = to + 1,
        dropped_to = last,
        "rejoining a primary whose history forked from ours: dropping the records after the fork (they were never \
         replicated before the failover)"
    );
    begin_replacing(shared, link)?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    fastcache_recovery::rewind(&shared.engine, &p.wal, &snaps.store, to, threads)
        .map_err(|e| format!("rebuilding the state at LSN {to} failed ({e}); a full resynchronisation follows"))?;
    adopt_memory(shared, &p, Some(to))?;
    finish_replacing(shared, link, replid, to, SyncReport { kind: "partial", ..Default::default() });
    Ok(())
}

/// A full sync or rewind starts replacing the data set: the `syncing` mark
/// goes to disk first (a crash from here on makes the next start discard
/// the directory, which mixes two histories), any failure asks for a full
/// sync next time, sub-replicas resync, and clients get `-LOADING` until
/// it is done (node recovery may already hold it: its thread ends it).
fn begin_replacing(shared: &Shared, link: &Link) -> Result<()> {
    let repl = &shared.replication;
    link.state.store(2, Ordering::Release);
    repl.save_state(true)?;
    repl.replacing.store(true, Ordering::Release);
    repl.applied.store(0, Ordering::Release);
    repl.drop_peers();
    if !shared.loading.is_active() {
        shared.loading.start();
        link.holds_loading.store(true, Ordering::Release);
    }
    Ok(())
}

/// The data set (memory and directory) now follows `replid` up to `lsn`:
/// the mark is cleared, the next backup is a full base (the data bypassed
/// change tracking) and the link is up.
fn finish_replacing(shared: &Shared, link: &Link, replid: &str, lsn: u64, report: SyncReport) {
    let repl = &shared.replication;
    {
        let mut ids = repl.ids.lock();
        ids.replid = replid.to_string();
        ids.replid2 = "0".repeat(40);
        ids.offset2 = 0;
    }
    repl.applied.store(lsn, Ordering::Release);
    let _ = repl.save_state(false);
    repl.replacing.store(false, Ordering::Release);
    shared.engine.require_full_backup();
    if link.holds_loading.swap(false, Ordering::AcqRel) {
        shared.loading.finish();
    }
    record_sync(shared, link, report);
}

/// Counts a finished synchronisation, keeps it for INFO and metrics, and
/// marks the link up.
fn record_sync(shared: &Shared, link: &Link, report: SyncReport) {
    let repl = &shared.replication;
    let counter = if report.kind == "full" { &repl.syncs_full_done } else { &repl.syncs_partial_done };
    counter.fetch_add(1, Ordering::Relaxed);
    {
        let mut last = repl.last_sync.lock();
        *last = SyncReport { node_recovery: last.node_recovery, ..report };
    }
    link.state.store(3, Ordering::Release);
    *link.down_since.lock() = None;
    link.synced.store(true, Ordering::Release);
}

/// A full resynchronisation in progress: memory, the WAL and the snapshots
/// are being replaced by the primary's state at `lsn`.
struct FullSync<'a> {
    replid: String,
    lsn: u64,
    started: Instant,
    writer: Option<SnapshotWriter>,
    bytes: u64,
    keys: u64,
    _hold: Option<crate::snapshots::CopyHold<'a>>,
    persistence: Option<Arc<Persistence>>,
}

impl<'a> FullSync<'a> {
    fn begin(
        shared: &'a Arc<Shared>,
        link: &Link,
        replid: &str,
        lsn: u64,
        hold: Option<crate::snapshots::CopyHold<'a>>,
    ) -> Result<FullSync<'a>> {
        link.sync_bytes.store(0, Ordering::Relaxed);
        begin_replacing(shared, link)?;
        let persistence = shared.persistence().cloned();
        shared
            .engine
            .apply_op(&Op::new(0, &[b"FLUSHALL"]))
            .map_err(|e| format!("emptying memory for the full sync: {e}"))?;
        let writer = match persistence.as_ref().and_then(|p| p.snapshots.as_ref()) {
            Some(s) => {
                let created = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
                let meta = SnapshotMeta { lsn, created_unix_ms: created };
                Some(
                    s.store
                        .create(meta, WriterOptions::default())
                        .map_err(|e| format!("creating the snapshot of the full sync: {e}"))?,
                )
            }
            None => {
                if persistence.is_some() {
                    tracing::warn!(
                        "ENABLE_SNAPSHOTS=false on a replica: the full sync is in memory only, and the next start \
                         needs another one"
                    );
                }
                None
            }
        };
        Ok(FullSync {
            replid: replid.to_string(),
            lsn,
            started: Instant::now(),
            writer,
            bytes: 0,
            keys: 0,
            _hold: hold,
            persistence,
        })
    }

    fn chunk(&mut self, shared: &Shared, link: &Link, entries: u32, data: &[u8]) -> Result<()> {
        if link.stopped() {
            return Err("stopped during the full sync".into());
        }
        self.keys += shared.engine.load_snapshot_chunk(data).map_err(|e| format!("loading the full sync: {e}"))?;
        if let Some(w) = &mut self.writer {
            w.write_chunk(data, entries).map_err(|e| format!("writing the full sync's snapshot: {e}"))?;
        }
        Ok(())
    }

    fn finish(mut self, shared: &Shared, link: &Link, keys: u64) -> Result<()> {
        if keys != self.keys {
            return Err(format!("the full sync announced {keys} keys but carried {}", self.keys));
        }
        if let Some(p) = &self.persistence {
            // The local log restarts at the primary's LSN; the old one
            // (another history) is gone, then the snapshot becomes the only one.
            p.wal.reset_after(self.lsn).map_err(|e| format!("restarting the WAL after LSN {}: {e}", self.lsn))?;
            p.clear_failure();
            if let (Some(w), Some(s)) = (self.writer.take(), p.snapshots.as_ref()) {
                let info = w.finish().map_err(|e| format!("finishing the full sync's snapshot: {e}"))?;
                s.store.publish_only(&info).map_err(|e| format!("publishing the full sync's snapshot: {e}"))?;
            }
        }
        shared.engine.reset_dirty();
        let seconds = self.started.elapsed().as_secs_f64();
        let report = SyncReport { kind: "full", bytes: self.bytes, seconds, keys: self.keys, node_recovery: false };
        finish_replacing(shared, link, &self.replid, self.lsn, report);
        tracing::info!(
            lsn = self.lsn,
            keys = self.keys,
            bytes = self.bytes,
            seconds = format!("{seconds:.3}"),
            "full resynchronisation done; streaming"
        );
        Ok(())
    }
}

impl Drop for FullSync<'_> {
    fn drop(&mut self) {
        if let Some(w) = self.writer.take() {
            w.abort();
        }
        // An unfinished sync leaves -LOADING on: memory is incomplete until
        // the next sync finishes (or the link stops: `Replication::stop_link`).
    }
}
