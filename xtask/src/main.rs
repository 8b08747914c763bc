//! `cargo xtask` — FastCache's project automation.
//!
//! - `cargo xtask test` — the whole test suite (the README's test command).
//! - `cargo xtask ci [--fast]` — what CI runs: fmt check, clippy with
//!   warnings as errors, then the tests (`--fast` skips clippy).
//! - `cargo xtask bench [--requests N] [--rounds R] [--restart-writes N]
//!   [--snapshot-keys N] [--only PARTS | --skip PARTS]` — the release
//!   server against Redis 7.0 with the same `redis-benchmark` runs, side by
//!   side (installs Debian's redis-server/redis-tools when missing). Parts: `memory` (persistence
//!   off), `persistence` (SET with `always`/`interval` logs vs Redis'
//!   AOF), `restart` (restart time after N logged writes), `snapshot`
//!   (SAVE time and size, restart from the snapshot, SET p99 and memory
//!   while a BGSAVE runs, against Redis' RDB).
//! - `cargo xtask bench engine [criterion args]` — the engine's criterion
//!   benchmarks.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

mod server_bench;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("ci") => ci(args.iter().any(|a| a == "--fast")),
        Some("bench") => bench(&args[1..]),
        _ => {
            eprintln!(
                "usage: cargo xtask <test | ci [--fast] | bench [--requests N] [--rounds R] [--restart-writes N] [--snapshot-keys N] [--only|--skip memory,persistence,restart,snapshot] | bench engine [criterion args]>"
            );
            bail!("unknown or missing task")
        }
    }
}

fn cargo(args: &[&str]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("+ cargo {}", args.join(" "));
    let status =
        Command::new(&cargo).args(args).status().with_context(|| format!("running cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("cargo {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// Runs cargo test with `args`, echoing its output, and returns the summed
/// (passed, failed) counts of every test binary it ran.
fn cargo_test(args: &[&str]) -> Result<(u64, u64)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("+ cargo {}", args.join(" "));
    let out = Command::new(&cargo)
        .args(args)
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running cargo {}", args.join(" ")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    print!("{text}");
    let (mut passed, mut failed) = (0, 0);
    for line in text.lines().filter(|l| l.starts_with("test result:")) {
        let count = |word: &str| -> u64 {
            line.split(';')
                .find(|part| part.trim_end().ends_with(word))
                .and_then(|part| part.split_whitespace().rev().nth(1))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        passed += count("passed");
        failed += count("failed");
    }
    if !out.status.success() {
        println!("{passed} passed, {} failed", failed.max(1));
        bail!("cargo {} failed ({})", args.join(" "), out.status);
    }
    Ok((passed, failed))
}

fn test() -> Result<()> {
    let (p1, f1) = cargo_test(&["test", "--workspace", "--all-targets"])?;
    let (p2, f2) = cargo_test(&["test", "--workspace", "--doc"])?;
    // One closing line for the whole suite.
    println!("{} passed, {} failed", p1 + p2, f1 + f2);
    Ok(())
}

fn ci(fast: bool) -> Result<()> {
    cargo(&["fmt", "--all", "--", "--check"])?;
    if !fast {
        cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
    }
    test()
}

fn bench(args: &[String]) -> Result<()> {
    if args.first().map(String::as_str) == Some("engine") {
        let mut cargo_args = vec!["bench", "-p", "fastcache-core", "--bench", "engine", "--"];
        cargo_args.extend(args[1..].iter().map(String::as_str));
        return cargo(&cargo_args);
    }
    // xtask lives one level below the workspace root.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("locating the workspace root")?;
    server_bench::run(root, args)
}
