//! The listener and the state every connection shares.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use fastcache_core::{Engine, EngineConfig};
use parking_lot::{Mutex, RwLock};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Notify};

use crate::blocking::Blocking;
use crate::config::Config;
use crate::params::Params;
use crate::pubsub::{Broker, Push};

/// Counters for INFO stats.
#[derive(Default)]
pub struct ServerStats {
    pub connections_received: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub commands_processed: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    /// Instantaneous rates, peak memory and the RESETSTAT baseline.
    pub info: crate::info::InfoState,
}

/// What the server knows about one connected client (CLIENT LIST, KILL,
/// UNBLOCK, INFO clients).
pub struct ClientInfo {
    pub id: u64,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    /// The socket's file descriptor (CLIENT LIST `fd=`).
    pub fd: i32,
    pub name: Mutex<Option<String>>,
    pub lib_name: Mutex<Option<String>>,
    pub lib_ver: Mutex<Option<String>>,
    pub created: Instant,
    /// Milliseconds since `created` of the last command.
    pub last_interaction_ms: AtomicU64,
    pub db: AtomicUsize,
    pub resp: AtomicU8,
    pub last_cmd: Mutex<String>,
    /// Number of channel + pattern subscriptions.
    pub subscriptions: AtomicUsize,
    pub in_multi: AtomicBool,
    pub blocked: AtomicBool,
    pub no_evict: AtomicBool,
    /// Set by CLIENT KILL; the connection closes at its next wake-up.
    pub killed: AtomicBool,
    /// The connection became a replica's stream (`PSYNC`): it stays listed
    /// (CLIENT LIST flag `S`, CLIENT KILL TYPE replica) until the sender
    /// thread ends.
    pub replica: AtomicBool,
    pub kill_notify: Notify,
    /// Pub/Sub messages for this client.
    pub tx: mpsc::UnboundedSender<Push>,
}

impl ClientInfo {
    /// Seconds since the last command.
    pub fn idle_secs(&self) -> u64 {
        let now = self.created.elapsed().as_millis() as u64;
        now.saturating_sub(self.last_interaction_ms.load(Ordering::Relaxed)) / 1000
    }

    /// Asks the connection to close.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.kill_notify.notify_one();
        let _ = self.tx.send(crate::pubsub::Push::Kill);
    }
}

/// State shared by all connections.
pub struct Shared {
    pub engine: Engine,
    /// The WAL and snapshots, unless persistence is off; set once crash
    /// recovery has finished (see [`Shared::persistence`]).
    pub persistence: OnceLock<Arc<crate::persist::Persistence>>,
    /// Crash recovery is running: commands get `-LOADING`.
    pub loading: crate::loading::Loading,
    /// Role, replication IDs, connected replicas, the link to a primary.
    pub replication: crate::replication::Replication,
    pub config: Config,
    /// Runtime parameters (CONFIG GET/SET).
    pub params: RwLock<Params>,
    pub clients: Mutex<HashMap<u64, Arc<ClientInfo>>>,
    pub broker: Broker,
    pub blocking: Blocking,
    pub stats: ServerStats,
    /// Collectors and health checks behind `/metrics` and `/health`.
    pub metrics: crate::metrics::Registry,
    pub started: Instant,
    pub run_id: String,
    pub port: u16,
    pub last_save_unix: AtomicU64,
    /// Flipped to true to stop the server (SHUTDOWN, signals).
    pub shutdown: watch::Sender<bool>,
    /// How the shutdown treats snapshots: 0 default (snapshot if there are
    /// changes), 1 SAVE (always), 2 NOSAVE (never).
    pub shutdown_save: AtomicU8,
    next_client_id: AtomicU64,
}

impl Shared {
    /// The engine a configuration asks for, empty.
    pub fn new_engine(config: &Config) -> Engine {
        Engine::new(EngineConfig {
            databases: config.databases,
            maxmemory: config.maxmemory,
            maxmemory_policy: config.maxmemory_policy,
            ..EngineConfig::default()
        })
    }

    /// Shared state without persistence (unit tests).
    #[cfg(test)]
    pub fn new(config: Config, port: u16) -> Arc<Shared> {
        let engine = Shared::new_engine(&config);
        Shared::with_engine(config, port, engine, None)
    }

    /// Shared state around an engine already recovered from `persistence`.
    pub fn with_engine(
        config: Config,
        port: u16,
        engine: Engine,
        persistence: Option<Arc<crate::persist::Persistence>>,
    ) -> Arc<Shared> {
        let now_unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let run_id: String = (0..40).map(|_| fastrand::alphanumeric().to_ascii_lowercase()).collect();
        let params = Params::new(&config);
        let (shutdown, _) = watch::channel(false);
        let broker = Broker::new(engine.clone());
        let metrics = crate::metrics::Registry::new(&engine);
        let cell = OnceLock::new();
        if let Some(p) = persistence {
            let _ = cell.set(p);
        }
        Arc::new(Shared {
            engine,
            persistence: cell,
            loading: crate::loading::Loading::default(),
            replication: crate::replication::Replication::default(),
            params: RwLock::new(params),
            config,
            clients: Mutex::new(HashMap::new()),
            broker,
            blocking: Blocking::default(),
            stats: ServerStats::default(),
            metrics,
            started: Instant::now(),
            run_id,
            port,
            last_save_unix: AtomicU64::new(now_unix),
            shutdown,
            shutdown_save: AtomicU8::new(0),
            next_client_id: AtomicU64::new(1),
        })
    }

    /// The persistence layer, once recovery has finished (`None` while
    /// loading and when persistence is off).
    pub fn persistence(&self) -> Option<&Arc<crate::persist::Persistence>> {
        self.persistence.get()
    }

    /// Crash recovery is over (or there is none): `-LOADING` now means a
    /// replica's sync, during which REPLICAOF may still repoint or promote
    /// it (as Redis allows until the final load).
    pub fn recovered(&self) -> bool {
        self.persistence().is_some() || !(self.config.enable_persistence && self.config.enable_wal)
    }

    pub fn next_client_id(&self) -> u64 {
        self.next_client_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// Accepts connections until shutdown.
pub async fn run(listener: TcpListener, shared: Arc<Shared>) -> anyhow::Result<()> {
    let expire_task = tokio::spawn(crate::cron::run(shared.clone()));
    let sampler_task = tokio::spawn(crate::info::sampler(shared.clone()));
    let result = accept_loop(listener, shared.clone()).await;
    // Connections do not watch the shutdown channel themselves (one shared
    // channel polled by every connection would be a contended cache line);
    // they are told one by one.
    for client in shared.clients.lock().values() {
        client.kill();
    }
    drain(&shared).await;
    expire_task.abort();
    sampler_task.abort();
    result
}

/// Waits (at most five seconds) for connections to finish the commands
/// they are executing, write their replies and close.
pub async fn drain(shared: &Shared) {
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let open = shared.clients.lock().len();
        if open == 0 {
            return;
        }
        if Instant::now() >= deadline {
            tracing::warn!(open, "connections still open after 5 s; exiting anyway");
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Accepts connections on this thread's runtime until shutdown.
pub async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) -> anyhow::Result<()> {
    let mut shutdown = shared.shutdown.subscribe();
    if *shutdown.borrow() {
        return Ok(());
    }
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, addr) = match accepted {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and similar: back off, keep serving.
                        tracing::error!("accept failed: {e}; retrying in 50 ms");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                shared.stats.connections_received.fetch_add(1, Ordering::Relaxed);
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                tokio::spawn(async move {
                    crate::connection::serve(stream, addr, shared).await;
                });
            }
            _ = shutdown.changed() => break,
        }
    }
    Ok(())
}
