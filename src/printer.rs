//! Output conventions (SPEC §15): results go to stdout, as text or `--format json`; progress
//! and logs go to stderr. Progress bars appear only when stderr is a terminal, never in CI
//! logs or pipes, and use no colour.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// Set by `--quiet`: no progress bars at all, even on a terminal.
static QUIET: AtomicBool = AtomicBool::new(false);

/// Silence every progress bar of this process (`--quiet`).
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether progress may be drawn: stderr is a terminal and `--quiet` was not given.
pub fn progress_wanted() -> bool {
    !QUIET.load(Ordering::Relaxed) && std::io::stderr().is_terminal()
}

/// A one-line progress bar on stderr: `label [####....] done/total step (elapsed)`, redrawn
/// at most ten times a second. Drawn only when [`progress_wanted`]; piped or in CI it prints
/// nothing. Shared by reference (the state is behind a lock) so a stage can report its steps.
pub struct Progress {
    label: String,
    enabled: bool,
    started: Instant,
    state: Mutex<BarState>,
}

struct BarState {
    total: u64,
    done: u64,
    step: String,
    last: Option<Instant>,
    drawn: bool,
    finished: bool,
}

impl Progress {
    /// A bar that shows only when stderr is a terminal and progress is not silenced.
    pub fn new(label: &str, total: u64) -> Progress {
        Progress::with_enabled(label, total, progress_wanted())
    }

    pub fn with_enabled(label: &str, total: u64, enabled: bool) -> Progress {
        Progress {
            label: label.to_string(),
            enabled: enabled && !QUIET.load(Ordering::Relaxed),
            started: Instant::now(),
            state: Mutex::new(BarState {
                total,
                done: 0,
                step: String::new(),
                last: None,
                drawn: false,
                finished: false,
            }),
        }
    }

    /// A bar that never draws (library callers, benches).
    pub fn hidden() -> Progress {
        Progress::with_enabled("", 0, false)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, BarState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Change the number of units the bar runs to.
    pub fn set_total(&self, total: u64) {
        self.state().total = total;
    }

    /// Name the step now running; drawn at once.
    pub fn step(&self, step: &str) {
        let mut s = self.state();
        s.step = step.to_string();
        self.draw(&mut s, true);
    }

    pub fn advance(&self, n: u64) {
        let mut s = self.state();
        s.done += n;
        self.draw(&mut s, false);
    }

    fn draw(&self, s: &mut BarState, force: bool) {
        if !self.enabled || s.finished {
            return;
        }
        let now = Instant::now();
        if !force
            && s.last.is_some_and(|l| now - l < Duration::from_millis(100))
            && s.done < s.total
        {
            return;
        }
        s.last = Some(now);
        s.drawn = true;
        let width = 30;
        let filled = (s.done.min(s.total) * width as u64)
            .checked_div(s.total)
            .map_or(width, |f| f as usize);
        let bar: String = "#".repeat(filled) + &".".repeat(width - filled);
        let step: String = s.step.chars().take(48).collect();
        // The step is padded so a shorter one overwrites what a longer one left behind.
        eprint!(
            "\r{} [{bar}] {}/{} ({:.0}s) {step:<48}",
            self.label,
            s.done,
            s.total,
            self.started.elapsed().as_secs_f64(),
        );
        let _ = std::io::stderr().flush();
    }

    /// End the bar's line (if it drew one); later calls draw nothing.
    pub fn finish(&self) {
        let mut s = self.state();
        if s.drawn && !s.finished {
            eprintln!();
        }
        s.finished = true;
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
