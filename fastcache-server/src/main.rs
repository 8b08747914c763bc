//! `fastcache-server` — FastCache on the network: RESP2/RESP3 over TCP in
//! front of the engine. Configuration comes from the environment
//! (`fastcache-server --help` lists every variable).

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;

mod admin;
mod backups;
mod blocking;
mod client;
mod command;
mod config;
mod connection;
mod cron;
mod http;
mod info;
mod loading;
mod metrics;
mod params;
mod persist;
mod pubsub;
mod replication;
mod resp;
mod server;
mod snapshots;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{}", config::help_text());
        return Ok(());
    }
    if args.iter().any(|a| a == "--version" || a == "-v") {
        println!("fastcache-server {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    if let Some(a) = args.first() {
        anyhow::bail!("unknown argument {a:?}; configuration comes from environment variables, see --help");
    }
    init_logging();
    let config = match config::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("fastcache-server: {e}");
            std::process::exit(2);
        }
    };
    let threads = config.io_threads;
    let addr = SocketAddr::new(config.bind, config.port);
    let listener = std::net::TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
    listener.set_nonblocking(true).context("making the listener non-blocking")?;
    // One single-threaded runtime per core, each accepting from the same
    // socket: a connection lives on one thread from accept to close, so a
    // request costs no cross-thread wake-up or work stealing. Shared state
    // (the engine, Pub/Sub, blocked clients) is thread-safe on its own.
    let mut workers = Vec::new();
    for i in 1..threads {
        let listener = listener.try_clone().context("sharing the listener")?;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        workers.push((
            std::thread::Builder::new().name(format!("fastcache-io-{i}")).spawn(move || -> anyhow::Result<()> {
                let rt = single_thread_runtime()?;
                rt.block_on(async move {
                    let shared: std::sync::Arc<server::Shared> = ready_rx.recv().context("waiting for start-up")?;
                    let listener = TcpListener::from_std(listener).context("registering the listener")?;
                    let result = server::accept_loop(listener, shared.clone()).await;
                    server::drain(&shared).await;
                    result
                })
            })?,
            ready_tx,
        ));
    }
    let rt = single_thread_runtime()?;
    let result = rt.block_on(async_main(config, listener, workers.iter().map(|(_, tx)| tx.clone()).collect()));
    for (w, _) in workers {
        let _ = w.join();
    }
    result
}

/// Logs go to stderr through `tracing`; the level comes from `RUST_LOG`
/// (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

fn single_thread_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the async runtime")
}

async fn async_main(
    config: config::Config,
    listener: std::net::TcpListener,
    workers: Vec<std::sync::mpsc::Sender<std::sync::Arc<server::Shared>>>,
) -> anyhow::Result<()> {
    let listener = TcpListener::from_std(listener).context("registering the listener")?;
    let local = listener.local_addr().context("reading the bound address")?;
    let metrics = match config.metrics_addr {
        Some(addr) => Some(http::bind_or_exit(addr).await),
        None => None,
    };
    let engine = server::Shared::new_engine(&config);
    let persistent = config.enable_persistence && config.enable_wal;
    let shared = server::Shared::with_engine(config, local.port(), engine, None);
    replication::register_metrics(&shared);
    if persistent {
        // Crash recovery runs on its own thread while connections are
        // already accepted: commands get -LOADING until it is done, so no
        // client sees a state the files have not been fully loaded into.
        shared.loading.start();
        start_recovery(shared.clone())?;
    } else {
        persist::Persistence::open(&shared.config, &shared.engine, |_| {})?;
        replication::Replication::init(&shared, None);
    }
    let announce_now = !persistent;
    // Tests and scripts read this line to learn the port when FASTCACHE_PORT=0.
    println!("fastcache-server {} listening on {local}", env!("CARGO_PKG_VERSION"));
    if let Some(l) = &metrics {
        // Always after the line above, which must stay the first.
        println!("metrics listening on {}", l.local_addr().context("reading the metrics address")?);
    }
    let config = &shared.config;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        addr = %local,
        io_threads = config.io_threads,
        databases = config.databases,
        maxmemory = config.maxmemory,
        maxmemory_policy = config.maxmemory_policy.name(),
        maxclients = config.maxclients,
        requirepass = config.requirepass.is_some(),
        "FastCache started"
    );
    if announce_now {
        announce_ready();
    }
    if persistent {
        tracing::info!("persistence: {}", config.persistence_summary());
    }
    if let Some(l) = metrics {
        tokio::spawn(http::serve(l, shared.clone()));
    }
    for w in workers {
        let _ = w.send(shared.clone());
    }
    let signals = shared.clone();
    tokio::spawn(async move {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot listen for SIGTERM ({e}); only SIGINT and SHUTDOWN stop the server cleanly");
                let _ = tokio::signal::ctrl_c().await;
                let _ = signals.shutdown.send(true);
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received; shutting down"),
            _ = term.recv() => tracing::info!("SIGTERM received; shutting down"),
        }
        let _ = signals.shutdown.send(true);
    });
    let result = server::run(listener, shared.clone()).await;
    if let Some(p) = shared.persistence().cloned() {
        let mode = shared.shutdown_save.load(std::sync::atomic::Ordering::Relaxed);
        if mode != 2 {
            let _ = tokio::task::spawn_blocking(move || p.snapshot_on_shutdown(mode == 1)).await;
        }
    }
    tracing::info!("FastCache stopped");
    result
}

/// Says on stdout (after the listening line) and in the log that commands
/// are served now; test harnesses and scripts wait for this line.
fn announce_ready() {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "ready to accept commands");
    let _ = out.flush();
    tracing::info!("ready to accept commands");
}

/// Ends the process during start-up with a message (log and stderr).
fn fail_start(msg: &str) -> ! {
    tracing::error!("{msg}");
    eprintln!("fastcache-server: {msg}");
    std::process::exit(1);
}

/// Runs crash recovery on a thread of its own, then hands the persistence
/// layer to the server and lifts `-LOADING`. A failure, or recovery
/// outlasting RECOVERY_TIMEOUT, ends the process with a message saying why
/// and how far it got; the data directory is left as it was.
fn start_recovery(shared: std::sync::Arc<server::Shared>) -> anyhow::Result<()> {
    let timeout = shared.config.recovery_timeout;
    let watched = shared.clone();
    std::thread::Builder::new()
        .name("fastcache-recovery-watchdog".into())
        .spawn(move || {
            let deadline = std::time::Instant::now() + timeout;
            while watched.loading.is_active() {
                if std::time::Instant::now() >= deadline {
                    let msg = format!(
                        "crash recovery did not finish within RECOVERY_TIMEOUT ({timeout:?}): it was {}. \
                         The data directory is untouched; raise RECOVERY_TIMEOUT and start again",
                        watched.loading.describe()
                    );
                    tracing::error!("{msg}");
                    eprintln!("fastcache-server: {msg}");
                    std::process::exit(1);
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        })
        .context("starting the recovery watchdog")?;
    std::thread::Builder::new()
        .name("fastcache-recovery".into())
        .spawn(move || {
            let config = &shared.config;
            let state_path = replication::state::path(&config.persistence_dir);
            let saved = replication::state::load(&state_path).unwrap_or_else(|e| {
                tracing::warn!("{e}; the data is treated as having no replication history (a replica resyncs fully)");
                None
            });
            let node_recovery = config.enable_node_recovery && config.replicaof.is_some();
            let [wal_dir, snap_dir] = persist::data_dirs(config);
            if saved.as_ref().is_some_and(|s| s.syncing) {
                // The data directory mixes two histories: a full
                // resynchronisation was cut short.
                if let Err(e) = persist::move_aside(
                    &config.persistence_dir,
                    &[&wal_dir, &snap_dir],
                    "a full resynchronisation from the primary was interrupted (the data is incomplete)",
                ) {
                    fail_start(&format!("{e:#}"));
                }
            }
            let mut opened = persist::Persistence::open(config, &shared.engine, |p| shared.loading.update(p));
            let mut fetched = false;
            if let (Err(e), true) = (&opened, node_recovery) {
                let (host, port) = config.replicaof.clone().unwrap_or_default();
                tracing::error!(
                    "crash recovery failed: {e:#}. ENABLE_NODE_RECOVERY=true and FASTCACHE_REPLICAOF is set: the WAL \
                     and snapshots are moved aside and the data set is fetched from the primary {host}:{port} instead"
                );
                if let Err(e) = persist::move_aside(
                    &config.persistence_dir,
                    &[&wal_dir, &snap_dir],
                    "node recovery (the local data could not be recovered)",
                ) {
                    fail_start(&format!("{e:#}"));
                }
                // Whatever recovery loaded before it failed goes.
                let _ = shared.engine.apply_op(&fastcache_core::Op::new(0, &[b"FLUSHALL"]));
                opened = persist::Persistence::open(config, &shared.engine, |p| shared.loading.update(p));
                fetched = true;
            }
            let p = match opened {
                Ok(p) => p,
                Err(e) => fail_start(&format!("{e:#}")),
            };
            if let Some(p) = &p {
                p.register(&shared.metrics);
                p.register_snapshots(&shared.metrics);
                p.register_backups(&shared.metrics);
                if p.backups.is_some() {
                    let bg = p.clone();
                    if let Err(e) =
                        std::thread::Builder::new().name("fastcache-backups".into()).spawn(move || bg.run_backups())
                    {
                        tracing::error!("cannot start the backup thread ({e}); no incremental backups");
                    }
                }
                let _ = shared.persistence.set(p.clone());
                if p.snapshots.is_some() {
                    let bg = p.clone();
                    if let Err(e) = std::thread::Builder::new()
                        .name("fastcache-snapshots".into())
                        .spawn(move || bg.run_background())
                    {
                        tracing::error!("cannot start the snapshot thread ({e}); no scheduled snapshots");
                    }
                }
            }
            let empty = p.as_ref().is_none_or(|p| p.wal.last_lsn() == 0);
            let start = replication::Replication::init(&shared, saved);
            if let (Some(link), true) = (start.link, node_recovery && (fetched || empty)) {
                // Serving an empty data set would look like data loss to
                // clients: stay -LOADING until the primary's state is here
                // (RECOVERY_TIMEOUT bounds the wait, see the watchdog).
                tracing::info!(
                    primary = %format!("{}:{}", link.host, link.port),
                    "node recovery: no local data; fetching the data set from the primary before serving"
                );
                shared.replication.mark_node_recovery();
                // A REPLICAOF meanwhile (promotion, another primary) ends the wait too.
                while !link.synced.load(std::sync::atomic::Ordering::Acquire) && !link.stopped() {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
            shared.loading.finish();
            announce_ready();
        })
        .context("starting crash recovery")?;
    Ok(())
}
