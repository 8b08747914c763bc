//! `fastcache` — the operator's tool for FastCache data directories:
//! check, repair, inspect, back up, restore, and import from Redis.
//!
//! Exit codes: 0 ok; 1 problems found, a refusal, or a failure; 2 usage
//! (a bad command line). `--json` prints one JSON document on stdout for
//! scripts. See `docs/operations.md`.
//!
//! The modules live in `src/bin/fastcache/`, one per subcommand.

#[path = "fastcache/aof.rs"]
mod aof;
#[path = "fastcache/backup.rs"]
mod backup;
#[path = "fastcache/check.rs"]
mod check;
#[path = "fastcache/inspect.rs"]
mod inspect;
#[path = "fastcache/out.rs"]
mod out;
#[path = "fastcache/repair.rs"]
mod repair;
#[path = "fastcache/resp.rs"]
mod resp;
#[path = "fastcache/restore.rs"]
mod restore;
#[path = "fastcache/util.rs"]
mod util;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::out::Out;

const EXIT_CODES: &str = "\
Exit codes:
  0  ok (healthy, done)
  1  problems found, refused (nothing changed unless the output says so), or failed
  2  usage: the command line is wrong

A data directory is the server's PERSISTENCE_DIR: wal/ (segments, LOCK) and snapshots/ (*.fcs, MANIFEST).
See docs/operations.md.";

/// The operator's tool for FastCache data directories.
#[derive(Debug, Parser)]
#[command(name = "fastcache", version, after_help = EXIT_CODES, propagate_version = true)]
struct Cli {
    /// Print one JSON document on stdout (for scripts); no progress bars.
    #[arg(long, global = true)]
    json: bool,
    /// Never draw progress bars (they are drawn only when stderr is a terminal).
    #[arg(long, global = true)]
    no_progress: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

/// How `repair` may lose data to get past damage in the middle of the WAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum WalRepair {
    /// Keep every record before the first damage; drop everything after it.
    PointInTime,
    /// Keep every record that still verifies; step over the damaged bytes.
    SkipCorrupted,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Validate every WAL segment, snapshot, the manifest and backups (read-only).
    #[command(after_help = "Exit 0 only if healthy; 1 lists each problem with its file and offset.")]
    Check {
        /// The data directory (the server's PERSISTENCE_DIR).
        dir: PathBuf,
        /// Backup directory to verify too (default: DIR/backups if present).
        #[arg(long, value_name = "PATH")]
        backups: Option<PathBuf>,
    },
    /// Fix what can be fixed without guessing: a torn WAL tail, damaged snapshots, a damaged manifest.
    #[command(after_help = "\
Prints the plan first, then carries it out (or stops there with --dry-run). Refuses while a server has the \
directory open. Damage in the middle of the WAL (valid records after it) is never repaired silently: choose \
--wal point-in-time or --wal skip-corrupted and confirm with --accept-data-loss.
Exit 0: repaired (or nothing to do, or a --dry-run plan that can be carried out); 1: refused or problems remain.")]
    Repair {
        /// The data directory.
        dir: PathBuf,
        /// Show what would be done; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Lossy repair of damage in the middle of the WAL (needs --accept-data-loss).
        #[arg(long, value_enum, value_name = "MODE")]
        wal: Option<WalRepair>,
        /// Confirm a repair that loses data (--wal, or dropping a snapshot the WAL cannot replace).
        #[arg(long)]
        accept_data_loss: bool,
    },
    /// List WAL records, or summarise a snapshot or backup file.
    #[command(after_help = "\
PATH is a data directory (or its wal/ directory): lists records (LSN, time, database, command, key).
PATH is a snapshot (*.fcs) or backup file: summarises it (types, keys per database, sizes, LSN, created).")]
    Inspect {
        /// A data directory, a WAL directory, or a snapshot/backup file.
        path: PathBuf,
        /// First LSN to list.
        #[arg(long, value_name = "N", default_value_t = 1)]
        from_lsn: u64,
        /// Records to list at most (0 = all).
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: u64,
    },
    /// Back up a data directory (offline) or a running server (--from), fully or incrementally.
    #[command(after_help = "\
fastcache backup DIR DEST               offline: the newest valid snapshot + the WAL after it, verified, copied
fastcache backup --from HOST:PORT DEST  online: BGSAVE on the server, then its newest snapshot + WAL
--incremental                           only the keys changed since the last backup in DEST (a chain)")]
    Backup {
        /// DIR DEST (offline), or DEST alone with --from.
        #[arg(value_name = "PATHS", num_args = 1..=2, required = true)]
        paths: Vec<PathBuf>,
        /// A running server to back up (HOST:PORT); its data directory must be readable here.
        #[arg(long, value_name = "HOST:PORT")]
        from: Option<String>,
        /// Password for AUTH on the server (--from).
        #[arg(long, env = "FASTCACHE_PASSWORD", hide_env_values = true)]
        password: Option<String>,
        /// Write an incremental backup (changed keys since the newest backup in DEST).
        #[arg(long)]
        incremental: bool,
        /// Give up waiting for the server's BGSAVE after this many seconds.
        #[arg(long, value_name = "SECS", default_value_t = 600)]
        timeout: u64,
        /// Chains (full backups with their incrementals) to keep in DEST.
        #[arg(long, value_name = "N", default_value_t = fastcache_backup::DEFAULT_RETAIN)]
        retain: usize,
    },
    /// Rebuild a data directory from a backup (to the latest point, an LSN, or a time).
    Restore {
        /// The backup directory (as `fastcache backup` writes it).
        src: PathBuf,
        /// The data directory to create.
        dir: PathBuf,
        /// Restore up to and including this LSN.
        #[arg(long, value_name = "N", conflicts_with = "to_time")]
        to_lsn: Option<u64>,
        /// Restore up to this moment (RFC 3339, e.g. 2024-05-01T12:00:00Z).
        #[arg(long, value_name = "RFC3339")]
        to_time: Option<String>,
        /// Write into a non-empty DIR (its wal/ and snapshots/ are replaced).
        #[arg(long)]
        force: bool,
    },
    /// Build a data directory from a Redis AOF (a file, or a Redis 7 appendonlydir / its manifest).
    #[command(
        name = "import-aof",
        after_help = "\
Runs every command of the AOF through the engine (SELECT switches database, MULTI/EXEC blocks apply as units), \
then writes one snapshot and an empty WAL, so fastcache-server started on DIR loads the data. An AOF with an \
RDB preamble cannot be read: rewrite it in Redis with `aof-use-rdb-preamble no` first."
    )]
    ImportAof {
        /// The AOF file, the appendonlydir directory, or its *.manifest file.
        file: PathBuf,
        /// The data directory to create (must be empty or new).
        dir: PathBuf,
        /// Number of databases (as the server's FASTCACHE_DATABASES).
        #[arg(long, value_name = "N", default_value_t = 16)]
        databases: usize,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = Out::new(cli.json, cli.no_progress);
    let result = match cli.cmd {
        Cmd::Check { dir, backups } => check::run(&dir, backups.as_deref(), &out),
        Cmd::Repair { dir, dry_run, wal, accept_data_loss } => {
            let mode = wal.map(|w| match w {
                WalRepair::PointInTime => fastcache_wal::RecoveryMode::PointInTime,
                WalRepair::SkipCorrupted => fastcache_wal::RecoveryMode::SkipCorrupted,
            });
            repair::run(&dir, dry_run, mode, accept_data_loss, &out)
        }
        Cmd::Inspect { path, from_lsn, limit } => inspect::run(&path, from_lsn, limit, &out),
        Cmd::Backup { paths, from, password, incremental, timeout, retain } => {
            let (dir, dest) = match (paths.as_slice(), &from) {
                ([dest], Some(_)) => (None, dest.clone()),
                ([dir, dest], _) => (Some(dir.clone()), dest.clone()),
                _ => return usage("backup needs DIR DEST, or --from HOST:PORT DEST"),
            };
            let opts = backup::Options { dir, dest, from, password, incremental, timeout_secs: timeout, retain };
            backup::run(&opts, &out)
        }
        Cmd::Restore { src, dir, to_lsn, to_time, force } => {
            let target = match (to_lsn, to_time) {
                (Some(n), _) => restore::Target::Lsn(n),
                (None, Some(t)) => match util::parse_rfc3339(&t) {
                    Ok(ms) => restore::Target::Time(ms),
                    Err(e) => return usage(&format!("--to-time: {e}")),
                },
                (None, None) => restore::Target::Latest,
            };
            restore::run(&src, &dir, target, force, &out)
        }
        Cmd::ImportAof { file, dir, databases } => aof::run(&file, &dir, databases, &out),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            if out.json {
                out.json(&serde_json::json!({ "ok": false, "error": format!("{e:#}") }));
            }
            eprintln!("fastcache: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn usage(msg: &str) -> ExitCode {
    eprintln!("fastcache: {msg}\n\nFor more information, try '--help'.");
    ExitCode::from(2)
}
