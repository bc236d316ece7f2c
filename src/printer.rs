//! Output conventions (SPEC §15): results go to stdout, as text or `--format json`; progress
//! and logs go to stderr. Progress bars appear only when stderr is a terminal, never in CI
//! logs or pipes, and use no colour.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How a command prints its results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
}

/// Write a result to stdout. A closed pipe (`| head`) ends output quietly.
pub fn out(text: &str) -> Result<()> {
    let mut o = std::io::stdout().lock();
    match o.write_all(text.as_bytes()).and_then(|_| o.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::io(
            "cannot write to",
            std::path::Path::new("stdout"),
            e,
        )),
    }
}

/// Write a JSON value to stdout, pretty-printed.
pub fn out_json(v: &serde_json::Value) -> Result<()> {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    out(&s)
}

/// A one-line progress bar on stderr, redrawn at most ten times a second.
pub struct Progress {
    label: String,
    total: u64,
    done: u64,
    enabled: bool,
    last: Option<Instant>,
    started: Instant,
}

impl Progress {
    /// A bar that shows only when stderr is a terminal.
    pub fn new(label: &str, total: u64) -> Progress {
        Progress::with_enabled(label, total, std::io::stderr().is_terminal())
    }

    pub fn with_enabled(label: &str, total: u64, enabled: bool) -> Progress {
        Progress {
            label: label.to_string(),
            total,
            done: 0,
            enabled,
            last: None,
            started: Instant::now(),
        }
    }

    pub fn advance(&mut self, n: u64) {
        self.done += n;
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        if self
            .last
            .is_some_and(|l| now - l < Duration::from_millis(100))
            && self.done < self.total
        {
            return;
        }
        self.last = Some(now);
        let width = 30;
        let filled = if self.total == 0 {
            width
        } else {
            (self.done * width as u64 / self.total) as usize
        };
        let bar: String = "#".repeat(filled.min(width)) + &".".repeat(width - filled.min(width));
        eprint!(
            "\r{} [{bar}] {}/{} ({:.0}s)",
            self.label,
            self.done,
            self.total,
            self.started.elapsed().as_secs_f64()
        );
        let _ = std::io::stderr().flush();
    }

    pub fn finish(&mut self) {
        if self.enabled && self.last.is_some() {
            eprintln!();
        }
        self.enabled = false;
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
