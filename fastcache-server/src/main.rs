//! `fastcache-server` — FastCache on the network: RESP2/RESP3 over TCP in
//! front of the engine. Configuration comes from the environment
//! (`fastcache-server --help` lists every variable).

use std::net::SocketAddr;

use anyhow::Context;
use tokio::net::TcpListener;

mod admin;
mod blocking;
mod client;
mod command;
mod config;
mod connection;
mod cron;
mod info;
mod params;
mod pubsub;
mod resp;
mod server;

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
    let config = match config::Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fastcache-server: {e}");
            std::process::exit(2);
        }
    };
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async_main(config))
}

async fn async_main(config: config::Config) -> anyhow::Result<()> {
    let addr = SocketAddr::new(config.bind, config.port);
    let listener = TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr().context("reading the bound address")?;
    // Tests and scripts read this line to learn the port when FASTCACHE_PORT=0.
    println!("fastcache-server {} listening on {local}", env!("CARGO_PKG_VERSION"));
    eprintln!(
        "persistence is not implemented yet: data is in memory only and is lost when the server stops; \
         these settings are validated but not yet acted on: {}",
        config.persistence_summary()
    );
    let shared = server::Shared::new(config, local.port());
    let signals = shared.clone();
    tokio::spawn(async move {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("cannot listen for SIGTERM ({e}); only SIGINT and SHUTDOWN stop the server cleanly");
                let _ = tokio::signal::ctrl_c().await;
                let _ = signals.shutdown.send(true);
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => eprintln!("SIGINT received; stopping"),
            _ = term.recv() => eprintln!("SIGTERM received; stopping"),
        }
        let _ = signals.shutdown.send(true);
    });
    server::run(listener, shared).await
}
