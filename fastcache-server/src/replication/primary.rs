//! The primary's end: `PSYNC` turns a client connection into a replica's
//! stream, served by a thread of its own.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fastcache_wal::Reader;

use super::{wire, Peer};
use crate::persist::Persistence;
use crate::server::Shared;

/// Bytes of frames gathered before one socket write.
const BATCH: usize = 256 << 10;
/// A heartbeat goes out after this long without frames, so the replica can
/// tell a quiet primary from a dead one.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// A batch smaller than this means records trickle in one by one…
const TRICKLE: usize = 16 << 10;
/// …so the sender waits this long before looking again (the replication
/// lag it adds is at most this).
const GATHER: Duration = Duration::from_micros(200);
/// A replica that takes longer than this to accept bytes is cut off.
const WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a full sync waits for a running snapshot or backup to end.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(600);

/// A replica's `PSYNC`, with what it said before it.
#[derive(Debug, Clone)]
pub struct PsyncRequest {
    /// The history it follows (`?`: none).
    pub replid: String,
    /// The next LSN it needs (0 with `?`).
    pub offset: u64,
    /// `REPLCONF listening-port`.
    pub listening_port: u16,
}

/// Takes over a connection that sent `PSYNC`: the socket and whatever it
/// sent after it go to a sender thread.
pub fn hand_off(
    shared: Arc<Shared>,
    stream: TcpStream,
    leftover: Vec<u8>,
    req: PsyncRequest,
    client: Arc<crate::server::ClientInfo>,
) {
    let id = client.id;
    let unlist = shared.clone();
    let spawned = std::thread::Builder::new().name("fastcache-repl-send".into()).spawn(move || {
        let addr = client.addr;
        let peer = shared.replication.add_peer(id, addr, req.listening_port);
        *peer.socket.lock() = stream.try_clone().ok();
        match serve(&shared, &peer, stream, leftover, &req) {
            Ok(()) => tracing::info!(replica = %addr, "replica disconnected"),
            Err(e) => tracing::warn!(replica = %addr, "replication to the replica stopped: {e}"),
        }
        shared.replication.remove_peer(peer.id);
        shared.clients.lock().remove(&id);
    });
    if let Err(e) = spawned {
        tracing::error!("cannot start a replication sender thread: {e}");
        unlist.clients.lock().remove(&id);
    }
}

fn io(what: &str) -> impl Fn(std::io::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

fn serve(
    shared: &Arc<Shared>,
    peer: &Arc<Peer>,
    mut stream: TcpStream,
    leftover: Vec<u8>,
    req: &PsyncRequest,
) -> Result<(), String> {
    let _ = stream.set_nodelay(true);
    stream.set_write_timeout(Some(WRITE_TIMEOUT)).map_err(io("socket option"))?;
    let Some(p) = shared.persistence().cloned() else {
        let _ = stream.write_all(
            b"-ERR this FastCache node has no write-ahead log (ENABLE_PERSISTENCE / ENABLE_WRITE_AHEAD_LOG are off \
              or it is still loading); replication streams the WAL\r\n",
        );
        return Err("no WAL to replicate from".into());
    };
    let repl = &shared.replication;
    let replid = repl.ids.lock().replid.clone();
    let (mut reader, mut first) = match partial(shared, &p, req) {
        Some(Partial { reader, first, rewind_to }) => {
            let line = match rewind_to {
                None => format!("+CONTINUE {replid}\r\n"),
                Some(to) => format!("+REWIND {replid} {to}\r\n"),
            };
            stream.write_all(line.as_bytes()).map_err(io("answering PSYNC"))?;
            repl.sync_partial_ok.fetch_add(1, Ordering::Relaxed);
            match rewind_to {
                None => {
                    tracing::info!(replica = %peer.addr, from_lsn = req.offset, "partial resynchronisation: streaming the WAL")
                }
                Some(to) => tracing::info!(
                    replica = %peer.addr,
                    fork_lsn = to,
                    replica_next_lsn = req.offset,
                    "partial resynchronisation: the replica drops its records after the fork, then the WAL streams"
                ),
            }
            start_acks(shared, peer, &stream, leftover)?;
            (reader, first)
        }
        None => {
            if req.replid != "?" {
                repl.sync_partial_err.fetch_add(1, Ordering::Relaxed);
            }
            repl.sync_full.fetch_add(1, Ordering::Relaxed);
            let reader = full_sync(shared, &p, peer, &mut stream, leftover, &replid)?;
            (reader, None)
        }
    };
    peer.online.store(1, Ordering::Release);
    let mut out = Vec::with_capacity(BATCH + (64 << 10));
    let mut last_send = Instant::now();
    loop {
        if peer.stopped() {
            return Ok(());
        }
        out.clear();
        if let Some((lsn, payload)) = first.take() {
            wire::push_record(&mut out, lsn, &payload);
        }
        while out.len() < BATCH {
            match reader.next() {
                Some(Ok((lsn, payload))) => wire::push_record(&mut out, lsn, &payload),
                Some(Err(e)) => return Err(format!("reading the WAL: {e}")),
                None => break,
            }
        }
        let getack = repl.getack.load(Ordering::Acquire);
        if peer.getack_sent.swap(getack, Ordering::AcqRel) != getack {
            wire::push_getack(&mut out, p.wal.last_lsn());
        }
        if out.is_empty() {
            if last_send.elapsed() < HEARTBEAT {
                // Parked until `Replication::on_append` (or a WAIT) wakes
                // it. The flags go up before the last look at the log, so
                // an append after that look finds them and wakes us.
                peer.parked.store(true, Ordering::SeqCst);
                repl.any_parked.store(true, Ordering::SeqCst);
                match reader.next() {
                    Some(Ok(r)) => first = Some(r),
                    Some(Err(e)) => return Err(format!("reading the WAL: {e}")),
                    None => std::thread::park_timeout(Duration::from_millis(100)),
                }
                peer.parked.store(false, Ordering::Release);
                continue;
            }
            wire::push_heartbeat(&mut out, p.wal.last_lsn());
        }
        stream.write_all(&out).map_err(io("sending to the replica"))?;
        last_send = Instant::now();
        if out.len() < TRICKLE {
            // A steady trickle of records would otherwise cost a wake-up
            // (a futex call on the writer's IO thread, a context switch
            // here) and a socket write per record: gather for a moment
            // instead, unparked by nothing but a WAIT.
            std::thread::sleep(GATHER);
        }
    }
}

/// How a partial resynchronisation goes on.
struct Partial {
    reader: Reader,
    /// The first record, read to check that the log does not start after it.
    first: Option<(u64, Vec<u8>)>,
    /// The replica's history went on past the point where ours forked from
    /// it (it was the primary, or nearer to it, before a failover): it
    /// drops its records after this LSN first.
    rewind_to: Option<u64>,
}

/// A reader from where the replica continues, if its history is ours up to
/// there and the WAL still holds the records from there on.
fn partial(shared: &Shared, p: &Persistence, req: &PsyncRequest) -> Option<Partial> {
    let ids = shared.replication.ids.lock().clone();
    let off = req.offset;
    let last = p.wal.last_lsn();
    let same = req.replid == ids.replid && off <= last + 1;
    let previous = ids.offset2 > 0 && req.replid == ids.replid2;
    if off == 0 || !(same || previous) {
        return None;
    }
    let (from, rewind_to) = if !same && off > ids.offset2 { (ids.offset2, Some(ids.offset2 - 1)) } else { (off, None) };
    let mut reader = p.wal.reader(from).ok()?;
    if from > last {
        return Some(Partial { reader, first: None, rewind_to });
    }
    match reader.next() {
        Some(Ok((lsn, payload))) if lsn == from => Some(Partial { reader, first: Some((lsn, payload)), rewind_to }),
        // A gap (the log continued after a snapshot): not continuous.
        _ => None,
    }
}

/// Streams a point-in-time snapshot and returns a reader of the records
/// after it.
fn full_sync(
    shared: &Arc<Shared>,
    p: &Persistence,
    peer: &Arc<Peer>,
    stream: &mut TcpStream,
    leftover: Vec<u8>,
    replid: &str,
) -> Result<Reader, String> {
    let started = Instant::now();
    let (mut cursor, lsn) = loop {
        // Another snapshot (BGSAVE, a backup, another replica's sync) may be
        // walking the keyspace: one at a time.
        match shared.engine.begin_snapshot(|| p.wal.last_lsn()) {
            Ok(x) => break x,
            Err(_) if started.elapsed() < SNAPSHOT_WAIT && !peer.stopped() => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => return Err("no snapshot could be started for the full sync".into()),
        }
    };
    // Created at the barrier: the records after it cannot be truncated
    // away while the snapshot streams (the reader holds their segment).
    let reader = p.wal.reader(lsn + 1).map_err(|e| format!("opening the WAL after LSN {lsn}: {e}"))?;
    stream.write_all(format!("+FULLRESYNC {replid} {lsn}\r\n").as_bytes()).map_err(io("writing +FULLRESYNC"))?;
    start_acks(shared, peer, stream, leftover)?;
    tracing::info!(replica = %peer.addr, lsn, "full resynchronisation: streaming a snapshot");
    let mut chunk = Vec::with_capacity(BATCH + (16 << 10));
    let mut out = Vec::with_capacity(BATCH + (32 << 10));
    let mut bytes = 0u64;
    while !cursor.is_done() {
        if peer.stopped() {
            return Err("the replica went away during the full sync".into());
        }
        chunk.clear();
        let n = cursor.fill(&mut chunk, BATCH);
        if n == 0 && chunk.is_empty() {
            continue;
        }
        out.clear();
        wire::push_chunk(&mut out, n, &chunk);
        stream.write_all(&out).map_err(io("sending the snapshot"))?;
        bytes += out.len() as u64;
    }
    out.clear();
    wire::push_snapshot_end(&mut out, cursor.keys());
    stream.write_all(&out).map_err(io("sending the snapshot"))?;
    tracing::info!(
        replica = %peer.addr,
        lsn,
        keys = cursor.keys(),
        bytes,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "full resynchronisation: snapshot sent; streaming the WAL after it"
    );
    Ok(reader)
}

/// Reads the replica's `REPLCONF ACK <applied> FACK <durable>` on a thread
/// of its own; the socket closing stops the sender too.
fn start_acks(shared: &Arc<Shared>, peer: &Arc<Peer>, stream: &TcpStream, mut buf: Vec<u8>) -> Result<(), String> {
    let mut rd = stream.try_clone().map_err(io("cloning the socket"))?;
    let (shared, peer) = (shared.clone(), peer.clone());
    let spawned = std::thread::Builder::new().name("fastcache-repl-acks".into()).spawn(move || {
        let mut tmp = [0u8; 4096];
        loop {
            let mut start = 0;
            while let Ok(crate::resp::Parsed::Request { args, consumed }) = crate::resp::parse(&buf[start..], 1 << 20) {
                let frame = &buf[start..start + consumed];
                let argv: Vec<&[u8]> = args.iter().map(|r| &frame[r.clone()]).collect();
                if let Some((applied, durable)) = parse_ack(&argv) {
                    peer.acked(applied, durable);
                    shared.replication.acks.notify_waiters();
                }
                start += consumed;
            }
            buf.drain(..start);
            match rd.read(&mut tmp) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&tmp[..n]),
            }
            if buf.len() > 1 << 20 {
                tracing::warn!(replica = %peer.addr, "the replica sent a malformed acknowledgement; disconnecting");
                break;
            }
        }
        peer.stop();
    });
    spawned.map(|_| ()).map_err(io("starting the acknowledgement thread"))
}

/// `REPLCONF ACK <applied> [FACK <durable>]`.
fn parse_ack(argv: &[&[u8]]) -> Option<(u64, u64)> {
    let num = |a: &[u8]| std::str::from_utf8(a).ok()?.parse::<u64>().ok();
    if argv.len() < 3 || !argv[0].eq_ignore_ascii_case(b"replconf") || !argv[1].eq_ignore_ascii_case(b"ack") {
        return None;
    }
    let applied = num(argv[2])?;
    let durable = match argv.get(3..5) {
        Some([k, v]) if k.eq_ignore_ascii_case(b"fack") => num(v)?,
        _ => 0,
    };
    Some((applied, durable))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_parse() {
        assert_eq!(parse_ack(&[b"REPLCONF", b"ACK", b"12", b"FACK", b"10"]), Some((12, 10)));
        assert_eq!(parse_ack(&[b"replconf", b"ack", b"7"]), Some((7, 0)));
        assert_eq!(parse_ack(&[b"REPLCONF", b"ACK", b"x"]), None);
        assert_eq!(parse_ack(&[b"PING"]), None);
    }
}
