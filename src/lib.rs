//! gtmos: a deterministic batch analytics and evaluation pipeline for go-to-market decision
//! systems (SPEC §1–2).
//!
//! The data flows through the stage modules in this order:
//!
//! ```text
//! synth ─▶ snapshot (Parquet + manifest.json)
//!            └▶ contracts ─▶ recognition ─▶ metrics ─▶ scores ─▶ views ─▶ decisions ─▶ reports
//!          eval and canary beside them, over the logs
//! ```
//!
//! Supporting modules: [`schema`] (the one schema registry), [`table_io`] (the one atomic
//! writer and the pinned Parquet settings), [`builder`] (row-by-row batch building),
//! [`calendar`] and [`money`] (the one clock arithmetic and rounding rule), [`printer`]
//! (stdout/stderr conventions), [`error`] (the one error type), [`cli`] and [`commands`].

// Local tuples of intermediate results read better in place than as one-use type aliases, and
// index loops in the numeric code (matrices, paired samples) follow the formulas they implement.
#![allow(clippy::type_complexity, clippy::needless_range_loop)]

// The data flow, in order: generate a snapshot; load the pipelines project; build (contracts,
// models on the engine, reconciliation, publish); the brain-ready views; decisions; reports.
pub mod build;
pub mod contracts;
pub mod decisions;
pub mod engine;
pub mod forecast;
pub mod freshness;
pub mod project;
pub mod reconciliation;
pub mod reports;
pub mod snapshot;
pub mod strategy;
pub mod synth;
pub mod views;
// Beside them, over the logs: golden-dataset evals and canary comparisons.
pub mod canary;
pub mod eval;

// Supporting modules.
pub mod builder;
pub mod calendar;
pub mod cli;
pub mod commands;
pub mod error;
pub mod logs;
pub mod money;
pub mod printer;
pub mod schema;
pub mod settings;
pub mod store;
pub mod table_io;
pub mod warehouse;

pub use error::{Error, Outcome, Result};

/// Parse arguments and run a command; the binary's whole job besides printing errors.
pub fn main_with_args<I, T>(args: I) -> u8
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::Parser;
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match commands::run(cli) {
        Ok(outcome) => outcome.exit_code(),
        Err(e) if e.is_broken_pipe() => 0,
        Err(e) => {
            error::report(&e);
            e.exit_code()
        }
    }
}
