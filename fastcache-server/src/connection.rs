//! One client connection: read, parse every complete request in the
//! buffer, execute, and write all replies back with one write.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use fastcache_core::{Reply, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::persist::WalJournal;
use crate::resp::{self, Parsed};
use crate::server::{ClientInfo, Shared};

/// Redis' CLIENT REPLY modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    On,
    Off,
    /// Skip the reply of the next command only.
    Skip,
}

/// What the connection loop does after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Send what is buffered, then close.
    Close,
    /// Send what is buffered, then give the socket to replication (PSYNC).
    HandOff,
}

/// The state of one connection.
pub struct Conn {
    pub shared: Arc<Shared>,
    pub info: Arc<ClientInfo>,
    pub session: Session,
    pub authed: bool,
    pub reply_mode: ReplyMode,
    /// Channels and patterns this client is subscribed to.
    pub channels: HashSet<Vec<u8>>,
    pub patterns: HashSet<Vec<u8>>,
    /// Encoded output waiting to be written.
    pub out: Vec<u8>,
    /// Input that arrived while the client was blocked (BLPOP and the
    /// like); executed after the wait, in order.
    pub pending_input: Vec<u8>,
    /// Server-level commands queued inside MULTI, with the number of engine
    /// commands queued before each (their place in EXEC's reply).
    multi_server: Vec<(usize, Vec<Vec<u8>>)>,
    multi_engine: usize,
    /// Whether the command being executed has replied with an error (for
    /// the per-command error counters).
    reply_error: bool,
    /// The highest WAL LSN the current batch of commands appended: with
    /// `WAL_FSYNC=always` no reply of the batch is written before it is
    /// durable.
    batch_lsn: u64,
    /// The highest LSN this connection's writes appended (WAIT, WAITAOF).
    pub last_write_lsn: u64,
    /// What a replica said in its handshake (`REPLCONF listening-port`,
    /// `REPLCONF fastcache-protocol`), and its `PSYNC`.
    pub repl_port: u16,
    pub repl_protocol: Option<u32>,
    pub psync: Option<crate::replication::PsyncRequest>,
}

/// Commands that may make a client wait.
const BLOCKING: &[&str] = &["blpop", "brpop", "blmove", "brpoplpush", "bzpopmin", "bzpopmax"];

/// Commands answered by the server rather than the engine.
pub(crate) const SERVER_COMMANDS: &[&str] = &[
    "ping",
    "echo",
    "quit",
    "reset",
    "auth",
    "hello",
    "client",
    "command",
    "info",
    "config",
    "time",
    "lastsave",
    "save",
    "bgsave",
    "bgrewriteaof",
    "shutdown",
    "debug",
    "subscribe",
    "unsubscribe",
    "psubscribe",
    "punsubscribe",
    "publish",
    "pubsub",
    "replconf",
    "psync",
    "sync",
    "replicaof",
    "slaveof",
    "role",
    "wait",
    "waitaof",
];

/// Commands allowed while a RESP2 client is subscribed.
const SUBSCRIBED_OK: &[&str] = &["subscribe", "unsubscribe", "psubscribe", "punsubscribe", "ping", "quit", "reset"];

/// A command name in lower case, without allocating for the usual short
/// names.
struct LowerName {
    buf: [u8; 24],
    len: usize,
    long: Option<String>,
}

impl LowerName {
    fn new(raw: &[u8]) -> LowerName {
        let mut n = LowerName { buf: [0; 24], len: 0, long: None };
        if raw.len() <= n.buf.len() && raw.is_ascii() {
            for (b, c) in n.buf.iter_mut().zip(raw) {
                *b = c.to_ascii_lowercase();
            }
            n.len = raw.len();
        } else {
            n.long = Some(String::from_utf8_lossy(raw).to_ascii_lowercase());
        }
        n
    }

    fn as_str(&self) -> &str {
        match &self.long {
            Some(s) => s,
            // ASCII by construction.
            None => std::str::from_utf8(&self.buf[..self.len]).unwrap_or(""),
        }
    }
}

/// Runs one connection to its end.
pub async fn serve(stream: TcpStream, addr: SocketAddr, shared: Arc<Shared>) {
    let laddr = stream.local_addr().unwrap_or(addr);
    let fd = std::os::fd::AsRawFd::as_raw_fd(&stream);
    let (tx, rx) = mpsc::unbounded_channel();
    let id = shared.next_client_id();
    let info = Arc::new(ClientInfo {
        id,
        addr,
        laddr,
        fd,
        name: Default::default(),
        lib_name: Default::default(),
        lib_ver: Default::default(),
        created: std::time::Instant::now(),
        last_interaction_ms: Default::default(),
        db: Default::default(),
        resp: 2.into(),
        last_cmd: parking_lot::Mutex::new("NULL".into()),
        subscriptions: Default::default(),
        in_multi: Default::default(),
        blocked: Default::default(),
        no_evict: Default::default(),
        killed: Default::default(),
        replica: Default::default(),
        kill_notify: Default::default(),
        tx,
    });
    let mut stream = stream;
    let admitted = {
        let maxclients = shared.params.read().maxclients;
        let mut clients = shared.clients.lock();
        let ok = clients.len() < maxclients;
        if ok {
            clients.insert(id, info.clone());
        }
        ok
    };
    if !admitted {
        shared.stats.rejected_connections.fetch_add(1, Ordering::Relaxed);
        let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
        return;
    }
    let authed = shared.params.read().requirepass.is_none();
    let mut conn = Conn {
        session: shared.engine.session(),
        shared: shared.clone(),
        info: info.clone(),
        authed,
        reply_mode: ReplyMode::On,
        channels: HashSet::new(),
        patterns: HashSet::new(),
        out: Vec::with_capacity(1024),
        pending_input: Vec::new(),
        multi_server: Vec::new(),
        multi_engine: 0,
        batch_lsn: 0,
        reply_error: false,
        last_write_lsn: 0,
        repl_port: 0,
        repl_protocol: None,
        psync: None,
    };
    conn.run(stream, rx).await;
    crate::pubsub::unsubscribe_all(&mut conn);
    shared.blocking.remove_client(id);
    // A replica's stream lives on in a sender thread, which unlists it.
    if !info.replica.load(Ordering::Acquire) {
        shared.clients.lock().remove(&id);
    }
}

impl Conn {
    async fn run(&mut self, stream: TcpStream, mut rx: mpsc::UnboundedReceiver<crate::pubsub::Push>) {
        let (mut rd, mut wr) = stream.into_split();
        let mut buf: Vec<u8> = Vec::with_capacity(4096);
        loop {
            // Execute every complete request already buffered. Shared
            // counters and parameters are touched once per batch, not once
            // per command: with pipelining a batch is many commands, and
            // every shared atomic is a cache line the cores fight over.
            let (max_bulk, limit, idle) = {
                let p = self.shared.params.read();
                (p.proto_max_bulk_len, p.client_query_buffer_limit, p.timeout_secs)
            };
            self.info.last_interaction_ms.store(self.info.created.elapsed().as_millis() as u64, Ordering::Relaxed);
            let (mut commands, mut input_bytes) = (0u64, 0u64);
            let mut start = 0;
            let mut flow = Flow::Continue;
            while flow == Flow::Continue {
                match resp::parse(&buf[start..], max_bulk) {
                    Ok(Parsed::Incomplete) => break,
                    Ok(Parsed::Request { args, consumed }) => {
                        let base = start;
                        start += consumed;
                        if args.is_empty() {
                            continue;
                        }
                        let frame = &buf[base..base + consumed];
                        let inline = frame.first() != Some(&b'*');
                        let owned: Vec<Vec<u8>>;
                        let argv: Vec<&[u8]> = if inline {
                            owned = args.iter().map(|r| resp::decode_inline_arg(&frame[r.clone()])).collect();
                            owned.iter().map(Vec::as_slice).collect()
                        } else {
                            args.iter().map(|r| &frame[r.clone()]).collect()
                        };
                        input_bytes += consumed as u64;
                        commands += 1;
                        flow = self.execute(&argv, &rd).await;
                        buf.append(&mut self.pending_input);
                    }
                    Err(e) => {
                        // Redis sends protocol errors with the ERR code.
                        self.out.extend_from_slice(b"-ERR ");
                        self.out.extend_from_slice(e.0.as_bytes());
                        self.out.extend_from_slice(b"\r\n");
                        tracing::warn!(
                            client = self.info.id,
                            addr = %self.info.addr,
                            "{}; closing the connection",
                            e.0
                        );
                        flow = Flow::Close;
                    }
                }
            }
            buf.drain(..start);
            if commands > 0 {
                self.shared.stats.commands_processed.fetch_add(commands, Ordering::Relaxed);
                self.shared.stats.net_input_bytes.fetch_add(input_bytes, Ordering::Relaxed);
            }
            let lsn = std::mem::take(&mut self.batch_lsn);
            if lsn > 0 {
                self.shared.replication.on_append();
            }
            if let Some(p) = self.shared.persistence() {
                if p.sync_replies() && p.wait_durable(lsn).await.is_err() {
                    // The batch's writes are applied in memory but not
                    // durable: none of its replies may be sent. Closing
                    // tells the client nothing was acknowledged.
                    tracing::warn!(
                        client = self.info.id,
                        "closing the connection: its writes could not be made durable"
                    );
                    return;
                }
            }
            if !self.out.is_empty() {
                if wr.write_all(&self.out).await.is_err() {
                    return;
                }
                self.shared.stats.net_output_bytes.fetch_add(self.out.len() as u64, Ordering::Relaxed);
                self.out.clear();
                if self.out.capacity() > 1 << 20 {
                    self.out.shrink_to(1024);
                }
            }
            if flow == Flow::HandOff {
                if let Some(req) = self.psync.take() {
                    let leftover = std::mem::take(&mut buf);
                    match rd
                        .reunite(wr)
                        .map_err(|e| e.to_string())
                        .and_then(|s| s.into_std().map_err(|e| e.to_string()))
                    {
                        Ok(stream) => {
                            let _ = stream.set_nonblocking(false);
                            self.info.replica.store(true, Ordering::Release);
                            crate::replication::hand_off(self.shared.clone(), stream, leftover, req, self.info.clone());
                        }
                        Err(e) => tracing::warn!("cannot hand the connection to replication: {e}"),
                    }
                }
                return;
            }
            if flow == Flow::Close || self.info.killed.load(Ordering::Acquire) {
                return;
            }
            if buf.len() > limit {
                tracing::warn!(
                    client = self.info.id,
                    addr = %self.info.addr,
                    bytes = buf.len(),
                    limit,
                    "query buffer exceeds client-query-buffer-limit; closing the connection"
                );
                return;
            }
            if buf.capacity() > 1 << 20 && buf.len() < 4096 {
                buf.shrink_to(4096);
            }
            let idle_timer = async {
                if idle == 0 || !self.channels.is_empty() || !self.patterns.is_empty() {
                    std::future::pending::<()>().await;
                } else {
                    tokio::time::sleep(Duration::from_secs(idle)).await;
                }
            };
            tokio::select! {
                r = rd.read_buf(&mut buf) => match r {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                },
                // Messages, and CLIENT KILL / shutdown as `Push::Kill`.
                Some(msg) = rx.recv() => {
                    if matches!(msg, crate::pubsub::Push::Kill) {
                        return;
                    }
                    crate::pubsub::write_push(self, &msg);
                    // Deliver everything else already queued in the same write.
                    while let Ok(msg) = rx.try_recv() {
                        if matches!(msg, crate::pubsub::Push::Kill) {
                            return;
                        }
                        crate::pubsub::write_push(self, &msg);
                    }
                }
                _ = idle_timer => return,
            }
        }
    }

    /// Whether the client speaks RESP3.
    pub fn resp3(&self) -> bool {
        self.session.resp3()
    }

    /// Appends a reply, honouring CLIENT REPLY OFF/SKIP.
    pub fn reply(&mut self, r: &Reply) {
        self.reply_error |= r.is_error();
        match self.reply_mode {
            ReplyMode::On => {
                let resp3 = self.resp3();
                resp::write_reply(&mut self.out, r, resp3);
            }
            ReplyMode::Off => {}
            ReplyMode::Skip => self.reply_mode = ReplyMode::On,
        }
    }

    /// Whether the RESP2 subscribed context applies.
    pub fn subscribed(&self) -> bool {
        !self.channels.is_empty() || !self.patterns.is_empty()
    }

    async fn execute(&mut self, argv: &[&[u8]], input: &OwnedReadHalf) -> Flow {
        let lowered = LowerName::new(argv[0]);
        let name = lowered.as_str();
        if let Some(mut last) = self.info.last_cmd.try_lock() {
            last.clear();
            last.push_str(name);
        }

        if !self.authed && !matches!(name, "auth" | "hello" | "quit" | "reset") {
            self.reply(&Reply::err("NOAUTH Authentication required."));
            return Flow::Continue;
        }
        if self.shared.loading.is_active()
            && !crate::command::allowed_while_loading(&self.shared.engine, name)
            && !(matches!(name, "replicaof" | "slaveof") && self.shared.recovered())
        {
            self.reply(&Reply::err(crate::loading::LOADING_ERROR));
            return Flow::Continue;
        }
        if self.subscribed() && !self.resp3() && !SUBSCRIBED_OK.contains(&name) {
            // Redis names container commands with their subcommand.
            let full = match argv.get(1) {
                Some(sub)
                    if matches!(name, "client" | "config" | "pubsub" | "command" | "object" | "memory" | "debug") =>
                {
                    format!("{name}|{}", String::from_utf8_lossy(sub).to_ascii_lowercase())
                }
                _ => name.to_string(),
            };
            let msg = format!(
                "ERR Can't execute '{full}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
            );
            self.reply(&Reply::error(msg));
            return Flow::Continue;
        }

        let is_server = SERVER_COMMANDS.contains(&name);
        if self.shared.replication.is_replica() && self.shared.engine.command(argv[0]).is_some_and(|s| s.is_write()) {
            if self.session.in_multi() {
                self.session.flag_multi_error();
            }
            self.reply(&Reply::err(crate::replication::READONLY_ERROR));
            crate::metrics::count_command(name, true);
            return Flow::Continue;
        }
        if matches!(name, "save" | "psync" | "sync") && self.session.in_multi() {
            self.session.flag_multi_error();
            self.reply(&Reply::err("ERR Command not allowed inside a transaction"));
            crate::metrics::count_command(name, true);
            return Flow::Continue;
        }
        if is_server && self.session.in_multi() && !matches!(name, "quit" | "reset") {
            let arity_ok = crate::admin::server_arity(name).is_none_or(|a| {
                if a >= 0 {
                    argv.len() == a as usize
                } else {
                    argv.len() >= a.unsigned_abs() as usize
                }
            });
            if !arity_ok {
                // As for engine commands: the error now, EXECABORT at EXEC.
                self.session.flag_multi_error();
                self.reply(&fastcache_core::errors::wrong_args(name));
                crate::metrics::count_command(name, true);
                return Flow::Continue;
            }
            // Queued like any command; answered in EXEC's reply.
            self.multi_server.push((self.multi_engine, argv.iter().map(|a| a.to_vec()).collect()));
            self.reply(&Reply::QUEUED);
            crate::metrics::count_command(name, false);
            return Flow::Continue;
        }
        self.reply_error = false;
        let flow = if is_server {
            self.server_command(name, argv).await
        } else {
            self.engine_command(name, argv, input).await
        };
        crate::metrics::count_command(name, self.reply_error);
        flow
    }

    async fn engine_command(&mut self, name: &str, argv: &[&[u8]], input: &OwnedReadHalf) -> Flow {
        let shared = self.shared.clone();
        let was_multi = self.session.in_multi();
        if name == "multi" && !was_multi {
            self.multi_server.clear();
            self.multi_engine = 0;
        }
        let db_before = self.session.db();
        let mut journal = WalJournal::new(shared.persistence().map(|p| &**p));
        let outcome = shared.engine.execute_with(&mut self.session, argv, &mut journal);
        self.batch_lsn = self.batch_lsn.max(journal.last_lsn);
        self.last_write_lsn = self.last_write_lsn.max(journal.last_lsn);
        let mut reply = outcome.reply;
        if was_multi {
            match name {
                "exec" => reply = self.merge_exec(reply),
                "discard" => self.multi_server.clear(),
                _ if reply == Reply::QUEUED => self.multi_engine += 1,
                _ => {}
            }
        }
        self.info.in_multi.store(self.session.in_multi(), Ordering::Relaxed);
        self.info.db.store(self.session.db(), Ordering::Relaxed);
        if !outcome.events.is_empty() {
            shared.broker.publish_events(&outcome.events);
        }
        // SWAPDB reports no changed keys but can make keys of both databases ready.
        if (outcome.changed > 0 || name == "swapdb") && shared.blocking.has_waiters() {
            let keys = shared.engine.command(argv[0]).and_then(|s| s.keys(argv));
            let keys = if name == "exec" { None } else { keys.map(|k| k.iter().map(|k| k.to_vec()).collect()) };
            shared.blocking.on_write(&shared, db_before, keys);
        }
        if BLOCKING.contains(&name) && !self.session.in_multi() && matches!(reply, Reply::Nil | Reply::NilArray) {
            let (woken, flow) = crate::blocking::wait(self, argv, input).await;
            if let Some(r) = woken {
                // The pop was made (and logged) by the client that served
                // us; the log holds it by now, so waiting for everything
                // appended so far covers it.
                if let Some(p) = shared.persistence() {
                    self.batch_lsn = self.batch_lsn.max(p.wal.last_lsn());
                    self.last_write_lsn = self.last_write_lsn.max(self.batch_lsn);
                }
                self.reply(&r);
            }
            return flow;
        }
        self.reply(&reply);
        Flow::Continue
    }

    /// Splices the replies of server-level commands queued in MULTI into
    /// EXEC's reply, running them now.
    fn merge_exec(&mut self, reply: Reply) -> Reply {
        let queued = std::mem::take(&mut self.multi_server);
        self.multi_engine = 0;
        let Reply::Array(engine_replies) = reply else {
            return reply;
        };
        if queued.is_empty() {
            return Reply::Array(engine_replies);
        }
        let mut out = Vec::with_capacity(engine_replies.len() + queued.len());
        let mut it = engine_replies.into_iter();
        let mut taken = 0;
        for (pos, argv) in queued {
            while taken < pos {
                if let Some(r) = it.next() {
                    out.push(r);
                }
                taken += 1;
            }
            let args: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
            out.push(crate::admin::sync_server_command(self, &args));
        }
        out.extend(it);
        Reply::Array(out)
    }

    async fn server_command(&mut self, name: &str, argv: &[&[u8]]) -> Flow {
        match name {
            "quit" => {
                self.reply(&Reply::OK);
                Flow::Close
            }
            "shutdown" => crate::admin::shutdown(self, argv),
            // CLIENT REPLY SKIP sends no reply of its own.
            "client" if crate::client::is_reply_skip(argv) => {
                crate::client::reply_skip(self);
                Flow::Continue
            }
            "debug" if argv.len() == 3 && argv[1].eq_ignore_ascii_case(b"sleep") => {
                match fastcache_core::util::parse_f64(argv[2]) {
                    Some(secs) if secs >= 0.0 => {
                        tokio::time::sleep(Duration::from_secs_f64(secs.min(3600.0))).await;
                        self.reply(&Reply::OK);
                    }
                    _ => self.reply(&fastcache_core::errors::NOT_FLOAT),
                }
                Flow::Continue
            }
            "subscribe" | "unsubscribe" | "psubscribe" | "punsubscribe" => {
                crate::pubsub::subscription_command(self, name, argv);
                Flow::Continue
            }
            "save" => {
                let r = crate::snapshots::save_command(self, argv).await;
                self.reply(&r);
                Flow::Continue
            }
            "wait" | "waitaof" => {
                let r = crate::replication::wait_command(self, argv, true).await;
                self.reply(&r);
                Flow::Continue
            }
            "psync" | "sync" => match crate::replication::psync_command(self, argv) {
                Ok(req) => {
                    self.psync = Some(req);
                    Flow::HandOff
                }
                Err(r) => {
                    self.reply(&r);
                    Flow::Continue
                }
            },
            _ => {
                let r = crate::admin::sync_server_command(self, argv);
                self.reply(&r);
                Flow::Continue
            }
        }
    }
}
