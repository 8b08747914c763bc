//! `cargo xtask` — FastCache's project automation.
//!
//! - `cargo xtask test` — the whole test suite (the README's test command).
//! - `cargo xtask ci [--fast]` — what CI runs: fmt check, clippy with
//!   warnings as errors, then the tests (`--fast` skips clippy).
//! - `cargo xtask bench` — the engine's criterion benchmarks.

use std::process::Command;

use anyhow::{bail, Context, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("ci") => ci(args.iter().any(|a| a == "--fast")),
        Some("bench") => bench(&args[1..]),
        _ => {
            eprintln!("usage: cargo xtask <test | ci [--fast] | bench [criterion args]>");
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

fn test() -> Result<()> {
    cargo(&["test", "--workspace", "--all-targets"])?;
    cargo(&["test", "--workspace", "--doc"])
}

fn ci(fast: bool) -> Result<()> {
    cargo(&["fmt", "--all", "--", "--check"])?;
    if !fast {
        cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
    }
    test()
}

fn bench(extra: &[String]) -> Result<()> {
    let mut args = vec!["bench", "-p", "fastcache-core", "--bench", "engine", "--"];
    args.extend(extra.iter().map(String::as_str));
    cargo(&args)
}
