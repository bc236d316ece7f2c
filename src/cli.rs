//! Command-line arguments (clap derive). The `///` comments are the `--help` text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::printer::Format;

/// gtmos: the deterministic backbone of go-to-market decision systems.
///
/// Reads Parquet snapshots of GTM and finance tables, runs declarative pipelines over them,
/// and writes Parquet tables, HTML reports and append-only decision logs.
/// Exit codes: 0 success, 1 a gate / contract / drift failure, 2 bad usage or input.
#[derive(Debug, Parser)]
#[command(
    name = "gtmos",
    version,
    propagate_version = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate a deterministic synthetic corpus (a snapshot plus its oracle), or verify one.
    Synth(SynthArgs),
    /// Inspect or create snapshot manifests.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Seed of every random stream; the same seed and parameters give byte-identical files.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Number of accounts (customers and prospects).
    #[arg(long, default_value_t = 2_000)]
    pub accounts: u64,
    /// First day of the corpus window (YYYY-MM-DD).
    #[arg(long, default_value = "2024-01-01")]
    pub start: String,
    /// Last day of the corpus window (YYYY-MM-DD); the snapshot's as_of is the day after.
    #[arg(long, default_value = "2025-12-31")]
    pub end: String,
    /// Directory to write the snapshot to (replaced if it holds a previous snapshot).
    #[arg(long, default_value = "data/snapshots/default")]
    pub out: PathBuf,
    /// Worker threads (default: all cores). Output does not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Share of accounts that are prospects rather than customers.
    #[arg(long, default_value_t = 0.2)]
    pub prospect_share: f64,
    /// Archetype weights among customers, e.g. `seasonal=2,stalled_onboarding=0`
    /// (unlisted archetypes keep their default weight).
    #[arg(long, value_name = "NAME=WEIGHT,...")]
    pub mix: Option<String>,
    /// Fault rates (per account; per month for reference_gl_discrepancy and spend_out_of_range),
    /// e.g. `negative_units=0.01,duplicate_event=0.05`.
    #[arg(long, value_name = "CLASS=RATE,...")]
    pub fault_rate: Option<String>,
    /// Inject no faults at all (applied before --fault-rate).
    #[arg(long)]
    pub no_faults: bool,
    /// True relative effects of the canary variant per outcome, e.g. `meeting_booked=0.2,trust_block=0.5`.
    #[arg(long, value_name = "OUTCOME=EFFECT,...")]
    pub canary_effect: Option<String>,
    /// Share of accounts enrolled in the canary experiment.
    #[arg(long, default_value_t = 0.5)]
    pub canary_share: f64,
    /// Weeks of the canary experiment (ending at --end), and of its pre-period before it.
    #[arg(long, default_value_t = 6)]
    pub canary_weeks: u32,
    /// Regenerate the corpus in DIR from its manifest and exit 1 if any file's bytes differ.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["seed", "accounts", "start", "end", "out", "mix", "fault_rate", "no_faults", "canary_effect"])]
    pub verify: Option<PathBuf>,
    /// Output format of the summary.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Check a snapshot: its manifest, every required table and column, and (with --hashes) its bytes.
    Check {
        /// The snapshot directory.
        dir: PathBuf,
        /// Also recompute every file's sha256 and compare it with the manifest.
        #[arg(long)]
        hashes: bool,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Write a manifest.json for a directory of Parquet files named after the source tables.
    Init {
        /// The directory holding `<table>.parquet` files (or `<table>/` directories of them).
        dir: PathBuf,
        /// The snapshot's logical "now" (RFC 3339, e.g. 2026-01-01T00:00:00Z).
        #[arg(long)]
        as_of: String,
        /// A name for where the data came from, recorded in the manifest.
        #[arg(long, default_value = "export")]
        source: String,
    },
}
