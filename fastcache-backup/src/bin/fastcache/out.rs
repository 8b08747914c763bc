//! Output: human text on stdout (messages on stderr), or one JSON document
//! on stdout with `--json`; progress bars on stderr only when it is a
//! terminal and the output is for people.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How a subcommand reports.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    /// One JSON document on stdout, nothing else there.
    pub json: bool,
    /// Draw progress bars (stderr is a terminal, not `--json`, not `--no-progress`).
    pub progress: bool,
}

impl Out {
    pub fn new(json: bool, no_progress: bool) -> Out {
        Out { json, progress: !json && !no_progress && std::io::stderr().is_terminal() }
    }

    /// A line for people (suppressed under `--json`).
    pub fn line(&self, s: impl AsRef<str>) {
        if !self.json {
            println!("{}", s.as_ref());
        }
    }

    /// A bar counting `total` units of `what`; hidden unless drawing is on.
    pub fn bar(&self, total: u64, what: &str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let pb = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let style = if what == "bytes" {
            ProgressStyle::with_template("{msg:>12} [{bar:40}] {bytes}/{total_bytes} ({eta})")
        } else {
            ProgressStyle::with_template(&format!("{{msg:>12}} [{{bar:40}}] {{pos}}/{{len}} {what} ({{eta}})"))
        };
        if let Ok(style) = style {
            pb.set_style(style.progress_chars("=> "));
        }
        pb.enable_steady_tick(Duration::from_millis(200));
        pb
    }

    /// A spinner for work of unknown length.
    pub fn spinner(&self, msg: &str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {pos} ({elapsed})") {
            pb.set_style(style);
        }
        pb.set_message(msg.to_string());
        pb.enable_steady_tick(Duration::from_millis(200));
        pb
    }

    /// Prints the final JSON document.
    pub fn json(&self, v: &serde_json::Value) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()));
        }
    }
}
