//! Replication: a primary streams its WAL to replicas; **the WAL is the
//! backlog**.
//!
//! - Offsets are WAL LSNs. A replica writes every record it applies into its
//!   own WAL under the primary's LSN, so after a failover the promoted node
//!   continues the same numbering and the others can continue from it.
//! - A replica asks `PSYNC <replid> <next LSN>`. If the primary's history
//!   has that point and its WAL still holds the records from there, it
//!   answers `+CONTINUE` and streams them (partial resync); otherwise
//!   `+FULLRESYNC <replid> <lsn>`, a fork-less point-in-time snapshot at
//!   `lsn` (the snapshot issue's barrier) and then the records after it.
//! - The stream is checksummed binary frames (`wire.rs`); the replica
//!   acknowledges with `REPLCONF ACK <applied> FACK <durable>`.
//! - Replication IDs follow Redis: a primary gets a new ID at every start
//!   and on promotion, and keeps the previous one (`replid2`) valid up to
//!   the LSN where its history forked, so replicas of the old history
//!   continue partially. The ID the local data belongs to is kept in the
//!   data directory (`state.rs`).
//!
//! Both ends run on plain threads with blocking sockets: the sender reads
//! the WAL (memory-mapped) and the replica applies records under the
//! engine's locks; neither belongs on an IO thread's event loop.

mod primary;
mod replica;
pub mod state;
pub mod wire;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fastcache_core::Reply;
use parking_lot::{Mutex, RwLock};

use crate::server::Shared;

pub use primary::{hand_off, PsyncRequest};

/// Redis' reply to writes on a replica.
pub const READONLY_ERROR: &str = "READONLY You can't write against a read only replica.";

/// The node's role and replication IDs.
#[derive(Debug, Clone)]
struct Ids {
    /// The ID of the history this node's data follows (as a primary its
    /// own, as a replica its primary's).
    replid: String,
    /// The previous ID, valid for LSNs below `offset2`.
    replid2: String,
    /// First LSN *not* shared with `replid2`'s history (0: no `replid2`).
    offset2: u64,
}

/// What this node replicates from, if anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Primary,
    Replica { host: String, port: u16 },
}

/// A replica connected to this node (primary side).
pub struct Peer {
    pub id: u64,
    pub addr: SocketAddr,
    /// The port it serves clients on (`REPLCONF listening-port`).
    pub listening_port: u16,
    /// Highest LSN it applied.
    pub ack: AtomicU64,
    /// Highest LSN it made durable.
    pub fack: AtomicU64,
    /// `Instant` of the last acknowledgement, as ms since `created`.
    last_ack_ms: AtomicU64,
    created: Instant,
    /// 0 while it receives the snapshot of a full sync, 1 when streaming.
    online: AtomicU8,
    stop: AtomicBool,
    /// The sender is parked waiting for records (see `Replication::on_append`).
    parked: AtomicBool,
    /// The last `Replication::getack` generation it sent a `G` frame for.
    getack_sent: AtomicU64,
    /// The sender thread, woken when records are appended.
    thread: Mutex<Option<std::thread::Thread>>,
    /// A handle on the socket, to cut it on stop.
    socket: Mutex<Option<std::net::TcpStream>>,
}

impl Peer {
    fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        if let Some(s) = self.socket.lock().as_ref() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        if let Some(t) = self.thread.lock().as_ref() {
            t.unpark();
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn lag_secs(&self) -> u64 {
        let now = self.created.elapsed().as_millis() as u64;
        now.saturating_sub(self.last_ack_ms.load(Ordering::Relaxed)) / 1000
    }

    fn acked(&self, applied: u64, durable: u64) {
        self.ack.fetch_max(applied, Ordering::AcqRel);
        self.fack.fetch_max(durable, Ordering::AcqRel);
        self.last_ack_ms.store(self.created.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

/// How the last synchronisation with the primary went (replica side), for
/// INFO and metrics.
#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    /// "full" or "partial"; empty before the first.
    pub kind: &'static str,
    pub bytes: u64,
    pub seconds: f64,
    pub keys: u64,
    /// It rebuilt a node whose data directory was empty or unrecoverable.
    pub node_recovery: bool,
}

/// The replica side's link to its primary.
pub struct Link {
    pub host: String,
    pub port: u16,
    stop: AtomicBool,
    socket: Mutex<Option<std::net::TcpStream>>,
    /// 0 connecting, 1 handshake, 2 receiving a full sync, 3 connected.
    state: AtomicU8,
    /// When the link went down (None while up).
    down_since: Mutex<Option<Instant>>,
    last_io: Mutex<Instant>,
    /// Bytes of the full sync received so far (INFO while syncing).
    sync_bytes: AtomicU64,
    /// Set once the first synchronisation finished (node recovery waits).
    pub synced: AtomicBool,
    /// A full sync of this link turned `-LOADING` on and must end it.
    holds_loading: AtomicBool,
    /// Held while the link changes the data set (a batch of records, a
    /// chunk, a rewind); `stop` is checked under it. Stopping takes it once
    /// after setting `stop`: from then on the link changes nothing.
    apply: Mutex<()>,
}

impl Link {
    fn new(host: String, port: u16) -> Link {
        Link {
            host,
            port,
            stop: AtomicBool::new(false),
            socket: Mutex::new(None),
            state: AtomicU8::new(0),
            down_since: Mutex::new(Some(Instant::now())),
            last_io: Mutex::new(Instant::now()),
            sync_bytes: AtomicU64::new(0),
            synced: AtomicBool::new(false),
            holds_loading: AtomicBool::new(false),
            apply: Mutex::new(()),
        }
    }

    /// REPLICAOF stopped this link (promotion, or another primary).
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn is_up(&self) -> bool {
        self.state.load(Ordering::Acquire) == 3
    }
}

/// Replication state of the node, shared by every connection.
pub struct Replication {
    ids: Mutex<Ids>,
    role: RwLock<Role>,
    /// Copy of `role != Primary`, read on every write command.
    replica: AtomicBool,
    /// Highest LSN applied from the primary (replica side; with a WAL this
    /// equals its last LSN).
    applied: AtomicU64,
    peers: Mutex<Vec<Arc<Peer>>>,
    /// Copy of `!peers.is_empty()`, read after every write batch.
    has_peers: AtomicBool,
    /// Some sender is parked: only then does an append need to wake one
    /// (one relaxed load per write batch while senders are busy).
    any_parked: AtomicBool,
    /// Bumped by WAIT / WAITAOF to ask replicas for an acknowledgement now.
    getack: AtomicU64,
    /// Woken when a replica acknowledges (WAIT, WAITAOF).
    pub acks: tokio::sync::Notify,
    link: Mutex<Option<Arc<Link>>>,
    /// A full sync or rewind began replacing the data set and has not
    /// finished: memory and the data directory disagree until one does.
    replacing: AtomicBool,
    last_sync: Mutex<SyncReport>,
    state_path: Mutex<Option<PathBuf>>,
    pub sync_full: AtomicU64,
    pub sync_partial_ok: AtomicU64,
    pub sync_partial_err: AtomicU64,
    /// Replica side: full / partial synchronisations done.
    pub syncs_full_done: AtomicU64,
    pub syncs_partial_done: AtomicU64,
}

impl Default for Replication {
    fn default() -> Self {
        Replication {
            ids: Mutex::new(Ids { replid: state::new_replid(), replid2: "0".repeat(40), offset2: 0 }),
            role: RwLock::new(Role::Primary),
            replica: AtomicBool::new(false),
            applied: AtomicU64::new(0),
            peers: Mutex::new(Vec::new()),
            has_peers: AtomicBool::new(false),
            any_parked: AtomicBool::new(false),
            getack: AtomicU64::new(0),
            acks: tokio::sync::Notify::new(),
            link: Mutex::new(None),
            replacing: AtomicBool::new(false),
            last_sync: Mutex::new(SyncReport::default()),
            state_path: Mutex::new(None),
            sync_full: AtomicU64::new(0),
            sync_partial_ok: AtomicU64::new(0),
            sync_partial_err: AtomicU64::new(0),
            syncs_full_done: AtomicU64::new(0),
            syncs_partial_done: AtomicU64::new(0),
        }
    }
}

/// What start-up decided (see [`Replication::init`]).
pub struct Start {
    /// The link, when the node starts as a replica.
    pub link: Option<Arc<Link>>,
}

impl Replication {
    /// Whether this node is a replica (writes from clients are refused).
    pub fn is_replica(&self) -> bool {
        self.replica.load(Ordering::Relaxed)
    }

    /// The role now.
    pub fn role(&self) -> Role {
        self.role.read().clone()
    }

    /// Sets the IDs and the role after crash recovery: a primary starts a
    /// new history (its previous ID stays valid up to what it recovered,
    /// so replicas of the previous run continue partially); a replica
    /// (`FASTCACHE_REPLICAOF`) keeps the ID of the history its data
    /// follows and starts its link.
    pub fn init(shared: &Arc<Shared>, saved: Option<state::Saved>) -> Start {
        let repl = &shared.replication;
        let last = last_lsn(shared);
        let dir = shared.persistence().map(|_| state::path(&shared.config.persistence_dir));
        *repl.state_path.lock() = dir;
        repl.applied.store(last, Ordering::Release);
        let data_replid = saved.filter(|s| !s.syncing).map(|s| s.replid);
        match shared.config.replicaof.clone() {
            Some((host, port)) => {
                {
                    let mut ids = repl.ids.lock();
                    // Without local data the ID means nothing: ask for a full sync.
                    if let Some(id) = data_replid.filter(|_| last > 0) {
                        ids.replid = id;
                    }
                }
                let link = repl.become_replica(shared, host, port);
                Start { link: Some(link) }
            }
            None => {
                {
                    let mut ids = repl.ids.lock();
                    if let Some(old) = data_replid {
                        ids.replid2 = old;
                        ids.offset2 = last + 1;
                    }
                }
                let _ = repl.save_state(false);
                Start { link: None }
            }
        }
    }

    /// Writes the state file (no-op without persistence). A failure is
    /// logged and returned: marking `syncing` must succeed before data is
    /// replaced (the caller gives up otherwise); a failed update of the ID
    /// alone only costs a full sync after the next start.
    fn save_state(&self, syncing: bool) -> Result<(), String> {
        let Some(path) = self.state_path.lock().clone() else { return Ok(()) };
        let saved = state::Saved { replid: self.ids.lock().replid.clone(), syncing };
        state::save(&path, &saved).map_err(|e| {
            let msg = format!("writing {}: {e}", path.display());
            tracing::error!("{msg}; the next start will need a full resynchronisation");
            msg
        })
    }

    /// The offset INFO and ROLE report: the last LSN of the WAL (primary)
    /// or the last applied (replica).
    pub fn offset(&self, shared: &Shared) -> u64 {
        if self.is_replica() {
            self.applied.load(Ordering::Acquire)
        } else {
            last_lsn(shared)
        }
    }

    /// Wakes the senders after records were appended (called once per
    /// write batch; one relaxed load when no replica is connected).
    pub fn on_append(&self) {
        if !self.has_peers.load(Ordering::Relaxed)
            || !self.any_parked.load(Ordering::Relaxed)
            || !self.any_parked.swap(false, Ordering::AcqRel)
        {
            return;
        }
        self.wake_senders();
    }

    fn wake_senders(&self) {
        for p in self.peers.lock().iter() {
            if p.parked.swap(false, Ordering::AcqRel) {
                if let Some(t) = p.thread.lock().as_ref() {
                    t.unpark();
                }
            }
        }
    }

    /// Asks every replica to acknowledge now (a client waits in WAIT).
    fn request_acks(&self) {
        self.getack.fetch_add(1, Ordering::AcqRel);
        self.any_parked.store(false, Ordering::Release);
        self.wake_senders();
    }

    /// Replicas that applied (or, with `durable`, made durable) `lsn`.
    pub fn count_acked(&self, lsn: u64, durable: bool) -> usize {
        self.peers
            .lock()
            .iter()
            .filter(|p| p.online.load(Ordering::Acquire) == 1)
            .filter(
                |p| if durable { p.fack.load(Ordering::Acquire) >= lsn } else { p.ack.load(Ordering::Acquire) >= lsn },
            )
            .count()
    }

    /// Registers a replica's stream; `id` is its client ID (CLIENT KILL ID).
    fn add_peer(&self, id: u64, addr: SocketAddr, listening_port: u16) -> Arc<Peer> {
        let peer = Arc::new(Peer {
            id,
            addr,
            listening_port,
            ack: AtomicU64::new(0),
            fack: AtomicU64::new(0),
            last_ack_ms: AtomicU64::new(0),
            created: Instant::now(),
            online: AtomicU8::new(0),
            stop: AtomicBool::new(false),
            parked: AtomicBool::new(false),
            getack_sent: AtomicU64::new(0),
            thread: Mutex::new(Some(std::thread::current())),
            socket: Mutex::new(None),
        });
        let mut peers = self.peers.lock();
        peers.push(peer.clone());
        self.has_peers.store(true, Ordering::Relaxed);
        peer
    }

    fn remove_peer(&self, id: u64) {
        let mut peers = self.peers.lock();
        peers.retain(|p| p.id != id);
        self.has_peers.store(!peers.is_empty(), Ordering::Relaxed);
        drop(peers);
        self.acks.notify_waiters();
    }

    /// Disconnects the replica whose client ID is `id` (CLIENT KILL).
    pub fn stop_peer(&self, id: u64) {
        for p in self.peers.lock().iter().filter(|p| p.id == id) {
            p.stop();
        }
    }

    /// Cuts the link to the primary (CLIENT KILL TYPE master); it
    /// reconnects and continues. Whether there was a connection to cut.
    pub fn cut_link(&self) -> bool {
        let link = self.link.lock().clone();
        let socket = link.as_ref().and_then(|l| l.socket.lock().as_ref().and_then(|s| s.try_clone().ok()));
        socket.is_some_and(|s| s.shutdown(std::net::Shutdown::Both).is_ok())
    }

    /// Disconnects every replica of this node (they reconnect and resync).
    fn drop_peers(&self) {
        for p in self.peers.lock().iter() {
            p.stop();
        }
    }

    /// Stops the link to the primary, if any: once this returns, the link
    /// changes nothing any more (it waits for the batch being applied, not
    /// for the thread, which may sit in a connect or a read and ends on its
    /// own). A full sync it interrupted leaves what was loaded, as Redis does.
    fn stop_link(&self, shared: &Shared) {
        let link = self.link.lock().take();
        if let Some(link) = link {
            link.stop.store(true, Ordering::Release);
            if let Some(s) = link.socket.lock().as_ref() {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
            drop(link.apply.lock());
            if link.holds_loading.swap(false, Ordering::AcqRel) {
                tracing::warn!("the replication link stopped during a full sync; the data set is incomplete");
                shared.loading.finish();
            }
        }
    }

    /// Makes this node a replica of `host:port` and starts the link.
    fn become_replica(&self, shared: &Arc<Shared>, host: String, port: u16) -> Arc<Link> {
        self.stop_link(shared);
        self.drop_peers();
        shared.engine.set_replica_mode(true);
        *self.role.write() = Role::Replica { host: host.clone(), port };
        self.replica.store(true, Ordering::Release);
        self.applied.store(last_lsn(shared), Ordering::Release);
        let link = Arc::new(Link::new(host, port));
        *self.link.lock() = Some(link.clone());
        let (sh, l) = (shared.clone(), link.clone());
        if let Err(e) = std::thread::Builder::new().name("fastcache-replica".into()).spawn(move || replica::run(sh, l))
        {
            tracing::error!("cannot start the replication thread: {e}");
        }
        tracing::info!(primary = %format!("{}:{}", link.host, link.port), "replicating from a primary");
        link
    }

    /// Promotes this replica: stops the link, starts a new history whose
    /// previous ID stays valid up to what was applied.
    fn become_primary(&self, shared: &Shared) {
        self.stop_link(shared);
        if self.replacing.swap(false, Ordering::AcqRel) {
            // Promoted in the middle of a full sync: memory holds part of the
            // primary's data set, the data directory the old one. New writes
            // apply to memory, so the directory must become memory first.
            if let Some(p) = shared.persistence() {
                let adopted =
                    p.hold_copies(Duration::from_secs(60)).and_then(|_hold| replica::adopt_memory(shared, p, None));
                match adopted {
                    Ok(lsn) => tracing::warn!(
                        lsn,
                        "promoted during a full sync: the data set is incomplete; it was snapshotted as it is and \
                         the WAL restarted after it"
                    ),
                    Err(e) => {
                        let cause =
                            format!("promoted during a full sync and the partial data set could not be saved: {e}");
                        tracing::error!("{cause}");
                        // Writes are refused until healing snapshots memory
                        // (no write is acknowledged before the directory
                        // matches memory again).
                        p.fail(&cause);
                    }
                }
            }
        }
        {
            let mut ids = self.ids.lock();
            let applied = self.applied.load(Ordering::Acquire);
            ids.replid2 = std::mem::replace(&mut ids.replid, state::new_replid());
            ids.offset2 = applied + 1;
        }
        shared.engine.set_replica_mode(false);
        *self.role.write() = Role::Primary;
        self.replica.store(false, Ordering::Release);
        let _ = self.save_state(false);
        tracing::info!(offset = self.applied.load(Ordering::Acquire), "promoted to primary (REPLICAOF NO ONE)");
    }

    /// The link's progress, for INFO and metrics.
    pub fn last_sync(&self) -> SyncReport {
        self.last_sync.lock().clone()
    }
}

/// The WAL's last LSN (0 without persistence).
fn last_lsn(shared: &Shared) -> u64 {
    shared.persistence().map_or(0, |p| p.wal.last_lsn())
}

/// `REPLICAOF host port | NO ONE` (and `SLAVEOF`).
pub fn replicaof_command(shared: &Arc<Shared>, argv: &[&[u8]]) -> Reply {
    if argv.len() != 3 {
        return fastcache_core::errors::wrong_args(&String::from_utf8_lossy(argv[0]).to_ascii_lowercase());
    }
    let repl = &shared.replication;
    if argv[1].eq_ignore_ascii_case(b"no") && argv[2].eq_ignore_ascii_case(b"one") {
        if repl.is_replica() {
            repl.become_primary(shared);
        }
        return Reply::OK;
    }
    let host = String::from_utf8_lossy(argv[1]).into_owned();
    let Some(port) = std::str::from_utf8(argv[2]).ok().and_then(|s| s.parse::<i64>().ok()) else {
        return Reply::err("ERR value is not an integer or out of range");
    };
    let Ok(port) = u16::try_from(port) else {
        return Reply::err("ERR Invalid master port");
    };
    if shared.persistence().is_none() && shared.config.enable_persistence && shared.config.enable_wal {
        return Reply::err(crate::loading::LOADING_ERROR);
    }
    if repl.role() == (Role::Replica { host: host.clone(), port }) {
        return Reply::Simple("OK Already connected to specified master".into());
    }
    {
        // Our own data is the history we ask to continue: if nothing was
        // written since the ID changed, the previous ID names it too, and
        // the new primary is more likely to know that one.
        let mut ids = repl.ids.lock();
        if ids.offset2 > 0 && last_lsn(shared) + 1 == ids.offset2 {
            ids.replid = ids.replid2.clone();
        }
    }
    repl.become_replica(shared, host, port);
    Reply::OK
}

/// `ROLE`.
pub fn role_reply(shared: &Shared) -> Reply {
    let repl = &shared.replication;
    let offset = repl.offset(shared) as i64;
    match repl.role() {
        Role::Primary => {
            let peers = repl.peers.lock();
            let list = peers
                .iter()
                .map(|p| {
                    Reply::Array(vec![
                        Reply::Bulk(p.addr.ip().to_string().into_bytes()),
                        Reply::Bulk(p.listening_port.to_string().into_bytes()),
                        Reply::Bulk(p.ack.load(Ordering::Acquire).to_string().into_bytes()),
                    ])
                })
                .collect();
            Reply::Array(vec![Reply::bulk(b"master"), Reply::Int(offset), Reply::Array(list)])
        }
        Role::Replica { host, port } => {
            let state = match repl.link.lock().as_ref().map(|l| l.state.load(Ordering::Acquire)) {
                Some(3) => "connected",
                Some(2) => "sync",
                Some(1) => "handshake",
                _ => "connect",
            };
            Reply::Array(vec![
                Reply::bulk(b"slave"),
                Reply::Bulk(host.into_bytes()),
                Reply::Int(i64::from(port)),
                Reply::bulk(state.as_bytes()),
                Reply::Int(offset),
            ])
        }
    }
}

/// The `# Replication` section of INFO, with Redis' field names.
pub fn info_fields(shared: &Shared) -> Vec<(String, String)> {
    let repl = &shared.replication;
    let mut f: Vec<(String, String)> = Vec::new();
    let mut put = |k: &str, v: String| f.push((k.to_string(), v));
    let offset = repl.offset(shared);
    match repl.role() {
        Role::Primary => put("role", "master".into()),
        Role::Replica { host, port } => {
            put("role", "slave".into());
            put("master_host", host);
            put("master_port", port.to_string());
            let link = repl.link.lock().clone();
            let up = link.as_ref().is_some_and(|l| l.is_up());
            put("master_link_status", if up { "up" } else { "down" }.into());
            let io = link.as_ref().map_or(0, |l| l.last_io.lock().elapsed().as_secs());
            put("master_last_io_seconds_ago", if up { io.to_string() } else { "-1".into() });
            let syncing = link.as_ref().is_some_and(|l| l.state.load(Ordering::Acquire) == 2);
            put("master_sync_in_progress", u8::from(syncing).to_string());
            put("slave_read_repl_offset", offset.to_string());
            put("slave_repl_offset", offset.to_string());
            if syncing {
                let bytes = link.as_ref().map_or(0, |l| l.sync_bytes.load(Ordering::Relaxed));
                put("master_sync_total_bytes", "-1".into());
                put("master_sync_read_bytes", bytes.to_string());
            }
            if !up {
                let since = link.as_ref().and_then(|l| *l.down_since.lock()).map_or(0, |t| t.elapsed().as_secs());
                put("master_link_down_since_seconds", since.to_string());
            }
            put("slave_priority", "100".into());
            put("slave_read_only", "1".into());
            put("replica_announced", "1".into());
            let s = repl.last_sync();
            put("fastcache_last_sync", if s.kind.is_empty() { "none" } else { s.kind }.into());
            put("fastcache_last_sync_bytes", s.bytes.to_string());
            put("fastcache_last_sync_seconds", format!("{:.3}", s.seconds));
            put("fastcache_node_recovery", u8::from(s.node_recovery).to_string());
        }
    }
    let peers = repl.peers.lock().clone();
    put("connected_slaves", peers.len().to_string());
    for (i, p) in peers.iter().enumerate() {
        let state = if p.online.load(Ordering::Acquire) == 1 { "online" } else { "wait_bgsave" };
        put(
            &format!("slave{i}"),
            format!(
                "ip={},port={},state={state},offset={},lag={}",
                p.addr.ip(),
                p.listening_port,
                p.ack.load(Ordering::Acquire),
                p.lag_secs()
            ),
        );
    }
    let ids = repl.ids.lock().clone();
    put("master_failover_state", "no-failover".into());
    put("master_replid", ids.replid);
    put("master_replid2", ids.replid2);
    put("master_repl_offset", offset.to_string());
    put("second_repl_offset", if ids.offset2 == 0 { "-1".into() } else { ids.offset2.to_string() });
    // The backlog is the WAL: what it holds is what a replica can continue from.
    let (active, first, len) = match shared.persistence() {
        Some(p) => {
            let s = p.wal.stats();
            (1, s.first_lsn.max(1), s.last_lsn.saturating_sub(s.first_lsn.max(1)) + 1)
        }
        None => (0, 0, 0),
    };
    put("repl_backlog_active", active.to_string());
    put("repl_backlog_size", shared.config.wal_segment_size.to_string());
    put("repl_backlog_first_byte_offset", first.to_string());
    put("repl_backlog_histlen", len.to_string());
    f
}

/// `REPLCONF option value [option value …]`: what a replica says about
/// itself before `PSYNC`.
pub fn replconf_command(conn: &mut crate::connection::Conn, argv: &[&[u8]]) -> Reply {
    if argv.len() % 2 == 0 {
        return Reply::err("ERR syntax error");
    }
    for pair in argv[1..].chunks(2) {
        let (opt, value) = (String::from_utf8_lossy(pair[0]).to_ascii_lowercase(), pair[1]);
        let number = std::str::from_utf8(value).ok().and_then(|v| v.parse::<u64>().ok());
        match opt.as_str() {
            "listening-port" => match number.and_then(|n| u16::try_from(n).ok()) {
                Some(p) => conn.repl_port = p,
                None => return Reply::err("ERR value is not an integer or out of range"),
            },
            "fastcache-protocol" => match number {
                Some(v) if v == u64::from(wire::PROTOCOL_VERSION) => conn.repl_protocol = Some(wire::PROTOCOL_VERSION),
                Some(v) => {
                    tracing::warn!(
                        client = %conn.info.addr,
                        version = v,
                        "a replica asked for an unsupported replication protocol version"
                    );
                    return Reply::error(format!(
                        "ERR unsupported FastCache replication protocol version {v}: this server speaks version {}; \
                         run the same FastCache release on the primary and its replicas",
                        wire::PROTOCOL_VERSION
                    ));
                }
                None => return Reply::err("ERR value is not an integer or out of range"),
            },
            // Accepted and ignored, as Redis does for what does not apply.
            "ip-address" | "capa" | "ack" | "getack" | "rdb-only" | "rdb-filter-only" => {}
            _ => return Reply::error(format!("ERR Unrecognized REPLCONF option: {opt}")),
        }
    }
    Reply::OK
}

/// `PSYNC replid offset` (and `SYNC`): checks the request; the connection
/// then hands its socket to a sender thread.
///
/// # Errors
/// The reply for a request that cannot be served.
pub fn psync_command(conn: &crate::connection::Conn, argv: &[&[u8]]) -> Result<PsyncRequest, Reply> {
    if argv[0].eq_ignore_ascii_case(b"sync") {
        return Err(Reply::err(
            "ERR SYNC is not supported: FastCache replicas use PSYNC with the FastCache replication protocol",
        ));
    }
    if argv.len() < 3 {
        return Err(fastcache_core::errors::wrong_args("psync"));
    }
    if conn.repl_protocol.is_none() {
        return Err(Reply::err(
            "ERR this is a FastCache server: only a FastCache replica can replicate from it (REPLCONF \
             fastcache-protocol first); a Redis replica cannot read its stream",
        ));
    }
    let replid = String::from_utf8_lossy(argv[1]).into_owned();
    let offset = match std::str::from_utf8(argv[2]).ok().and_then(|s| s.parse::<i64>().ok()) {
        Some(n) if n > 0 => n as u64,
        Some(_) => 0,
        None => return Err(Reply::err("ERR value is not an integer or out of range")),
    };
    Ok(PsyncRequest { replid, offset, listening_port: conn.repl_port })
}

/// The parsed arguments of WAIT / WAITAOF.
struct WaitArgs {
    aof: bool,
    numlocal: i64,
    numreplicas: i64,
    timeout_ms: u64,
}

fn wait_args(conn: &crate::connection::Conn, argv: &[&[u8]]) -> Result<WaitArgs, Reply> {
    let aof = argv[0].eq_ignore_ascii_case(b"waitaof");
    let name = if aof { "waitaof" } else { "wait" };
    if argv.len() != if aof { 4 } else { 3 } {
        return Err(fastcache_core::errors::wrong_args(name));
    }
    let int = |a: &[u8]| std::str::from_utf8(a).ok().and_then(|s| s.parse::<i64>().ok());
    let counts: Option<Vec<i64>> = argv[1..argv.len() - 1].iter().map(|a| int(a)).collect();
    let Some(counts) = counts else {
        return Err(Reply::err("ERR value is not an integer or out of range"));
    };
    let timeout = match int(argv[argv.len() - 1]) {
        None => return Err(Reply::err("ERR timeout is not an integer or out of range")),
        Some(t) if t < 0 => return Err(Reply::err("ERR timeout is negative")),
        Some(t) => t as u64,
    };
    if conn.shared.replication.is_replica() {
        return Err(Reply::error(if aof {
            "ERR WAITAOF cannot be used with replica instances. Please also note that writes to replicas are just \
             local and are not propagated."
                .to_string()
        } else {
            "ERR WAIT cannot be used with replica instances. Please also note that since Redis 4.0 if a replica is \
             configured to be writable (which is not the default) writes to replicas are just local and are not \
             propagated."
                .to_string()
        }));
    }
    let (numlocal, numreplicas) = if aof { (counts[0], counts[1]) } else { (0, counts[0]) };
    if aof && numlocal > 0 && conn.shared.persistence().is_none() {
        return Err(Reply::err("ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled."));
    }
    Ok(WaitArgs { aof, numlocal, numreplicas, timeout_ms: timeout })
}

/// `WAIT numreplicas timeout` / `WAITAOF numlocal numreplicas timeout`:
/// waits until that many replicas acknowledged (WAITAOF: made durable)
/// this connection's last write, or the timeout. With `block` false
/// (inside MULTI) it answers at once, as Redis does.
pub async fn wait_command(conn: &mut crate::connection::Conn, argv: &[&[u8]], block: bool) -> Reply {
    let args = match wait_args(conn, argv) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let shared = conn.shared.clone();
    let lsn = conn.last_write_lsn;
    let deadline = (args.timeout_ms > 0).then(|| tokio::time::Instant::now() + Duration::from_millis(args.timeout_ms));
    loop {
        let notified = shared.replication.acks.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let replicas = shared.replication.count_acked(lsn, args.aof) as i64;
        let local = i64::from(shared.persistence().is_some_and(|p| p.wal.durable_lsn() >= lsn));
        let reply =
            if args.aof { Reply::Array(vec![Reply::Int(local), Reply::Int(replicas)]) } else { Reply::Int(replicas) };
        let done = replicas >= args.numreplicas && (!args.aof || local >= args.numlocal);
        if done || !block || deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
            return reply;
        }
        if replicas < args.numreplicas {
            shared.replication.request_acks();
        }
        // Local durability has no notification here: look again soon.
        let poll = if args.aof && local < args.numlocal { Duration::from_millis(5) } else { Duration::from_secs(1) };
        let wake = tokio::time::Instant::now() + poll;
        let wake = deadline.map_or(wake, |d| d.min(wake));
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep_until(wake) => {}
        }
    }
}

/// WAIT / WAITAOF inside MULTI: the counts now, without waiting.
pub fn wait_now(conn: &mut crate::connection::Conn, argv: &[&[u8]]) -> Reply {
    let fut = wait_command(conn, argv, false);
    // Never pends with `block` false: the first pass returns.
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut fut = std::pin::pin!(fut);
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(r) => r,
        std::task::Poll::Pending => Reply::err("ERR WAIT could not be answered inside MULTI"),
    }
}

impl Replication {
    /// Records that this node's data came from its primary because its own
    /// directory had nothing (or nothing recoverable): INFO and metrics say so.
    pub fn mark_node_recovery(&self) {
        self.last_sync.lock().node_recovery = true;
    }
}

/// `/metrics` families of replication (a weak handle: the registry lives
/// inside `Shared`).
pub fn register_metrics(shared: &Arc<Shared>) {
    let weak = Arc::downgrade(shared);
    shared.metrics.register(Arc::new(move |w: &mut crate::metrics::MetricWriter| {
        let Some(sh) = weak.upgrade() else { return };
        let r = &sh.replication;
        let replica = r.is_replica();
        w.gauge("fastcache_replication_is_replica", "1 on a replica, 0 on a primary", &[], u64::from(replica));
        w.gauge("fastcache_replication_offset", "the replication offset (LSN)", &[], r.offset(&sh));
        w.gauge("fastcache_replication_connected_replicas", "replicas connected", &[], r.peers.lock().len());
        for (kind, n) in
            [("full", &r.sync_full), ("partial_ok", &r.sync_partial_ok), ("partial_err", &r.sync_partial_err)]
        {
            w.counter(
                "fastcache_replication_syncs_served_total",
                "resyncs served to replicas",
                &[("kind", kind)],
                n.load(Ordering::Relaxed),
            );
        }
        if replica {
            let up = r.link.lock().as_ref().is_some_and(|l| l.is_up());
            w.gauge("fastcache_replication_link_up", "1 while the link to the primary streams", &[], u64::from(up));
            for (kind, n) in [("full", &r.syncs_full_done), ("partial", &r.syncs_partial_done)] {
                w.counter(
                    "fastcache_replication_syncs_total",
                    "resyncs with the primary",
                    &[("kind", kind)],
                    n.load(Ordering::Relaxed),
                );
            }
            let s = r.last_sync();
            w.gauge("fastcache_replication_last_sync_bytes", "bytes of the last full sync", &[], s.bytes);
            w.gauge("fastcache_replication_last_sync_seconds", "duration of the last full sync", &[], s.seconds);
            w.gauge("fastcache_replication_last_sync_keys", "keys of the last full sync", &[], s.keys);
            w.gauge(
                "fastcache_replication_node_recovery",
                "1 if this node was rebuilt from its primary",
                &[],
                u64::from(s.node_recovery),
            );
        }
    }));
}
