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
    disable_help_subcommand = true,
    after_help = "Documentation: README.md (start here) and docs/ — one page per command and per stage (docs/README.md lists them)."
)]
pub struct Cli {
    /// Draw no progress bars (they go to stderr, and only when it is a terminal).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the nightly build: contracts, models, publish gating, logs and the HTML report.
    ///
    /// With no flags it builds the default snapshot (generating the embedded default corpus
    /// into data/snapshots/default first if it is absent). Exit 1 when anything was blocked.
    Build(BuildArgs),
    /// Revenue recognition only (for finance): the recognition models and what they read.
    ///
    /// Same flags as build; --close-through YYYY-MM freezes months into closed_periods/.
    Recognize(BuildArgs),
    /// Tie recognised and metered figures to billing, GL and product references.
    ///
    /// Builds the reconciliation (and what it reads), prints every discrepancy and exits 1 when
    /// a monthly check fails: the close is held.
    Reconcile(ReconcileArgs),
    /// Reopen closed months: their frozen files are moved aside (kept), the close ends the month
    /// before, and who did it and why is recorded in closed_periods/close_state.json.
    ///
    /// The only way a closed month changes; close it again with build --close-through.
    Reopen(ReopenArgs),
    /// Print the resolved DAG and the compiled SQL of every step, without running anything.
    Compile(CompileArgs),
    /// Run the project's unit tests: each model on given rows, against expected rows.
    ///
    /// They are declared under `unit_tests:` in the models' properties files (docs/pipelines.md).
    /// Exit 0 all pass, 1 any fails, 2 a bad definition.
    Test(TestArgs),
    /// Print freshness SLO attainment from the warehouse's freshness log; exit 1 on a breach.
    Freshness(FreshnessArgs),
    /// Generate a deterministic synthetic corpus (a snapshot plus its oracle), or verify one.
    Synth(SynthArgs),
    /// Inspect or create snapshot manifests.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// The decision log: list, show, approve, reject or revert decisions (each change a new row).
    Decisions(DecisionsArgs),
    /// The brain-ready views of the last build: the catalog, or one account's composite.
    Views(ViewsArgs),
    /// Gate model promotions: golden-dataset scores, the brain eval harness, calibration probes.
    ///
    /// Exit 0 pass, 1 fail (the gate held the model), 2 bad input.
    Eval(EvalArgs),
    /// Compare a canary experiment's arms and decide: promote, keep_testing, rollback,
    /// insufficient_data (or invalid on a sample-ratio mismatch).
    ///
    /// Reads agent_decisions + decision_outcomes of the snapshot; refuses a variant model
    /// whose most recent golden eval in eval_log did not pass. Per arm the rates and measures
    /// with intervals; the differences with fixed-horizon and always-valid tests; the decision rule of
    /// pipelines/canary.yml. Appends canary_results and a canary.rollout decision. Exit 0
    /// promote, 1 anything else (or refused), 2 bad input.
    Canary(CanaryArgs),
    /// Run a Ballista scheduler that knows gtmos' functions (`--features distributed`).
    ///
    /// Builds reach it with `gtmos build --engine ballista --scheduler df://HOST:PORT`; it
    /// plans each query's stages and hands their tasks to the executors (docs/cluster.md).
    #[cfg(feature = "distributed")]
    Scheduler(SchedulerArgs),
    /// Run a Ballista executor that knows gtmos' functions and tables (`--features distributed`).
    ///
    /// It registers with the scheduler and runs the tasks it is given; every executor must
    /// read the snapshot, warehouse and staging paths the build reads (docs/cluster.md).
    #[cfg(feature = "distributed")]
    Executor(ExecutorArgs),
}

#[cfg(feature = "distributed")]
#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_host: String,
    /// Port to listen on.
    #[arg(long, default_value_t = 50050)]
    pub port: u16,
    /// Host name executors and builds reach this scheduler by.
    #[arg(long, default_value = "localhost")]
    pub external_host: String,
    /// Seconds without a heartbeat (executors send one every 5 s) before an executor is taken
    /// for dead and its tasks rerun on the others.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(10..))]
    pub executor_timeout_seconds: u64,
}

#[cfg(feature = "distributed")]
#[derive(Debug, Args)]
pub struct ExecutorArgs {
    /// The scheduler to join, df://HOST:PORT [default: GTMOS_SCHEDULER, or df://localhost:50050].
    #[arg(long, value_name = "URL")]
    pub scheduler: Option<String>,
    /// Address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub bind_host: String,
    /// Host name the scheduler and other executors reach this executor by [default: its IP].
    #[arg(long)]
    pub external_host: Option<String>,
    /// Arrow Flight port (shuffle data is fetched from it).
    #[arg(long, default_value_t = 50051)]
    pub port: u16,
    /// gRPC port (the scheduler sends tasks to it).
    #[arg(long, default_value_t = 50052)]
    pub grpc_port: u16,
    /// Tasks run at once [default: all cores].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: Option<u16>,
    /// Directory for shuffle files [default: a temporary directory].
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Memory its tasks may hold before spilling, in MiB [default: Ballista's share of RAM, or GTMOS_MEMORY_MB].
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(64..=16_777_216))]
    pub memory_mb: Option<u64>,
}

/// Where a build's SQL runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineKind {
    /// In this process.
    Local,
    /// On an Apache DataFusion Ballista cluster (needs --scheduler, `--features distributed`).
    Ballista,
}

#[derive(Debug, Args)]
pub struct CanaryArgs {
    /// The experiment to compare (agent_decisions.experiment_id)
    #[arg(long, value_name = "ID")]
    pub experiment: String,
    /// Snapshot directory (with manifest.json) or s3://bucket/prefix [default: data/snapshots/default]
    #[arg(long, value_name = "DIR")]
    pub snapshot: Option<PathBuf>,
    /// Warehouse whose eval_log is checked and whose logs the run appends to (a directory or s3://bucket/prefix) [default: data/warehouse]
    #[arg(long, value_name = "DIR")]
    pub warehouse: Option<PathBuf>,
    /// Metrics, margins and thresholds of the decision rule
    #[arg(long, value_name = "FILE", default_value = "pipelines/canary.yml")]
    pub config: PathBuf,
    /// Reduce variance with each account's pre-experiment behaviour (CUPED)
    #[arg(long)]
    pub cuped: bool,
    /// Judge the traffic as of this time (RFC 3339 or YYYY-MM-DD) instead of the snapshot's
    /// as_of: only decisions and outcomes before it count, as on that day.
    #[arg(long, value_name = "TS")]
    pub as_of: Option<String>,
    /// Where the HTML page is written [default: reports]
    #[arg(long, value_name = "DIR")]
    pub reports: Option<PathBuf>,
    /// Do not write the HTML page
    #[arg(long)]
    pub no_report: bool,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The warehouse directory whose logs the run appends to (or s3://bucket/prefix) [default: data/warehouse]
    #[arg(long, value_name = "DIR", global = true)]
    pub warehouse: Option<PathBuf>,
    /// Where the HTML page is written [default: reports]
    #[arg(long, value_name = "DIR", global = true)]
    pub reports: Option<PathBuf>,
    /// Do not write the HTML page
    #[arg(long, global = true)]
    pub no_report: bool,
    /// Why the eval runs (recorded in eval_log): pre_launch, quarterly, prompt_change,
    /// model_promotion, on_demand
    #[arg(
        long,
        value_name = "TRIGGER",
        default_value = "model_promotion",
        global = true
    )]
    pub trigger: String,
    #[arg(long, value_enum, default_value_t = Format::Text, global = true)]
    pub format: Format,
    #[command(subcommand)]
    pub command: EvalCommand,
}

#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Score a candidate's predictions on the golden datasets and judge the promotion gate.
    ///
    /// Per task: accuracy, per-class precision / recall / F1, macro / weighted / micro F1,
    /// confusion matrix, Cohen's kappa (quadratic-weighted for ordinal tasks), Brier and
    /// calibration error with confidences, percentile bootstrap intervals; with --baseline a
    /// paired comparison (McNemar mid-p, paired bootstrap deltas). Fails on any critical miss
    /// or a threshold not met by its interval's bound.
    Golden {
        /// Candidate predictions: JSONL or Parquet with id, prediction, confidence?, model_id
        #[arg(long, value_name = "FILE")]
        predictions: PathBuf,
        /// The model in production, for the paired comparison
        #[arg(long, value_name = "FILE")]
        baseline: Option<PathBuf>,
        /// The golden datasets (with manifest.json) [default: golden]
        #[arg(long, value_name = "DIR", default_value = "golden")]
        golden: PathBuf,
        /// The gate's thresholds [default: <golden>/eval.yml]
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
    /// Score brain answers to the question catalog and compute the rubric's decision.
    ///
    /// Lines the outputs (BrainAnalysisLog JSONL, one line per question per run) and the
    /// reviewer scores up with the catalog, runs every validator, and judges the rubric: hard
    /// criteria (hallucination rate, staleness recognition, lever mapping) with the
    /// Clopper–Pearson bound their sample supports, soft criteria (citation rate, diagnosis
    /// accuracy, confidence calibration, coherence), per-question flakiness across runs.
    /// Decision pass / pass_with_notes / conditional / fail, never overridden; exit 1 unless
    /// pass or pass_with_notes, or when a reviewer tuned a brain under test.
    Brain {
        /// Brain answers: BrainAnalysisLog JSONL
        #[arg(long, value_name = "FILE")]
        outputs: PathBuf,
        /// Reviewer scores: JSONL, one line per answer
        #[arg(long, value_name = "FILE")]
        scores: PathBuf,
        /// Catalog, rubric and prompt-tuner registry [default: golden/brain_eval]
        #[arg(long, value_name = "DIR", default_value = "golden/brain_eval")]
        catalog: PathBuf,
        /// Score the outputs even when the view contracts they were answered on
        /// (brain_view_contracts_hash) differ from the warehouse's published ones, or cannot be
        /// compared; the mismatch is recorded in eval_log (view_contracts_check).
        #[arg(long)]
        allow_contracts_mismatch: bool,
    },
    /// Run the calibration probes: synthetic violating outputs every validator must catch,
    /// and negative controls they must pass in silence. Exit 1 if any probe misbehaves.
    Probes {
        /// The rubric (taxonomies, levers, disclosure phrases) [default: golden/brain_eval]
        #[arg(long, value_name = "DIR", default_value = "golden/brain_eval")]
        catalog: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct ViewsArgs {
    /// The warehouse directory or s3://bucket/prefix [default: data/warehouse]
    #[arg(long, value_name = "DIR", global = true)]
    pub warehouse: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text, global = true)]
    pub format: Format,
    #[command(subcommand)]
    pub command: ViewsCommand,
}

#[derive(Debug, Subcommand)]
pub enum ViewsCommand {
    /// Every view with its contract, staleness and token sizes (budget vs p50 / p95 / max).
    List,
    /// One document as a brain reads it: an account's composite (by account id), or a
    /// cross-population or strategy view's document (by view name). An unavailable view
    /// prints why and exits 1.
    Show {
        #[arg(value_name = "ACCOUNT_ID|VIEW")]
        account_id: String,
    },
}

#[derive(Debug, Args)]
pub struct DecisionsArgs {
    /// The warehouse directory or s3://bucket/prefix [default: data/warehouse]
    #[arg(long, value_name = "DIR", global = true)]
    pub warehouse: Option<PathBuf>,
    /// The pipelines project whose decision_roster says who holds which role [default: pipelines]
    #[arg(long, value_name = "DIR", global = true)]
    pub project: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = Format::Text, global = true)]
    pub format: Format,
    #[command(subcommand)]
    pub command: DecisionsCommand,
}

#[derive(Debug, Subcommand)]
pub enum DecisionsCommand {
    /// Every decision at its current status, oldest proposal first.
    List {
        /// Only decisions with this status (proposed, partially_approved, approved, rejected,
        /// executed, reverted).
        #[arg(long)]
        status: Option<String>,
        /// Only decisions of this node (e.g. channel.invest).
        #[arg(long)]
        node: Option<String>,
    },
    /// One decision: its current state and every row of its history.
    Show { id: String },
    /// Approve a proposed decision as one of its approvers; it is approved once all have.
    Approve {
        id: String,
        /// Who approves: one of the decision's approver roles, or a person of the project's
        /// decision_roster holding one (recorded with the role acted as).
        #[arg(long)]
        by: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Reject a proposed (or partially approved) decision, as one of its approvers.
    Reject {
        id: String,
        #[arg(long)]
        by: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Record that an approved decision was carried out (by its owner or an approver).
    Execute {
        id: String,
        #[arg(long)]
        by: String,
        /// What was done, e.g. "budget split applied in the ads console".
        #[arg(long)]
        note: Option<String>,
    },
    /// Revert an approved (or executed) decision, recording what the reversal did (by its
    /// owner or an approver).
    Revert {
        id: String,
        #[arg(long)]
        by: String,
        /// The reversal outcome, e.g. "price card rolled back at 14:05; bookings back in band".
        #[arg(long)]
        outcome: String,
        #[arg(long)]
        note: Option<String>,
    },
}

/// Where a command finds the project, snapshot, warehouse and reports. Each also reads a
/// `GTMOS_*` environment variable (GTMOS_PROJECT, GTMOS_SNAPSHOT, GTMOS_WAREHOUSE, GTMOS_REPORTS).
#[derive(Debug, Args, Clone)]
pub struct Locations {
    /// The pipelines project directory [default: pipelines]
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// The snapshot directory or s3://bucket/prefix [default: data/snapshots/default]
    #[arg(long, value_name = "DIR")]
    pub snapshot: Option<PathBuf>,
    /// The warehouse directory or s3://bucket/prefix [default: data/warehouse]
    #[arg(long, value_name = "DIR")]
    pub warehouse: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub at: Locations,
    /// Evaluate as of this time instead of the snapshot's as_of (RFC 3339 or YYYY-MM-DD).
    #[arg(long, value_name = "TS")]
    pub as_of: Option<String>,
    /// Worker threads (default: all cores). Published bytes do not depend on it.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Where HTML reports are written [default: reports]
    #[arg(long, value_name = "DIR")]
    pub reports: Option<PathBuf>,
    /// Skip the HTML report.
    #[arg(long)]
    pub no_report: bool,
    /// Memory the engine may use before spilling to disk, in MiB [default: 4096, or GTMOS_MEMORY_MB].
    #[arg(long, value_name = "MIB", value_parser = clap::value_parser!(u64).range(64..=16_777_216))]
    pub memory_mb: Option<u64>,
    /// Build only these models (names or tag:<tag>, comma-separated or repeated) and what they read.
    #[arg(long, value_name = "MODEL|tag:TAG")]
    pub select: Vec<String>,
    /// Close the books through this month (YYYY-MM): freeze its recognition into closed_periods/.
    #[arg(long, value_name = "YYYY-MM")]
    pub close_through: Option<String>,
    /// Override project vars for this run, as a YAML mapping: `--vars '{score_history_weeks: 52}'`.
    /// Only vars declared in gtmos_project.yml; they change the build_id.
    #[arg(long, value_name = "YAML")]
    pub vars: Option<String>,
    /// Compute every model, even those whose inputs and definition are unchanged since the
    /// published version (by default such a table is reused, restamped, not computed).
    #[arg(long)]
    pub full_refresh: bool,
    /// Before publishing, build the same snapshot again as a full refresh beside this run and
    /// fail (exit 2, nothing published) on the first table, row and column that differ.
    #[arg(long)]
    pub verify_full_refresh: bool,
    /// Where the SQL runs: local or ballista [default: GTMOS_ENGINE, or local]. Published
    /// bytes do not depend on it.
    #[arg(long, value_enum)]
    pub engine: Option<EngineKind>,
    /// The Ballista scheduler for --engine ballista, df://HOST:PORT [default: GTMOS_SCHEDULER].
    #[arg(long, value_name = "URL")]
    pub scheduler: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    /// Directory with the reference figures (reference_usage, reference_billing, reference_gl
    /// as Parquet files or a snapshot holding them) [default: the snapshot's own]
    #[arg(long, value_name = "DIR")]
    pub reference: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReopenArgs {
    /// The warehouse directory or s3://bucket/prefix [default: data/warehouse]
    #[arg(long, value_name = "DIR")]
    pub warehouse: Option<PathBuf>,
    /// The first month to reopen (YYYY-MM); every later closed month reopens too.
    #[arg(long, value_name = "YYYY-MM")]
    pub from: String,
    /// Who reopens the books (recorded).
    #[arg(long)]
    pub by: String,
    /// Why (recorded), e.g. "auditor adjustment to February revenue".
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct CompileArgs {
    #[command(flatten)]
    pub at: Locations,
    /// Render `{{ as_of }}` for this time (default: the snapshot's as_of when it exists).
    #[arg(long, value_name = "TS")]
    pub as_of: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The pipelines project directory [default: pipelines]
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// Only these unit tests, or the unit tests of these models (repeatable)
    #[arg(long, value_name = "NAME")]
    pub select: Vec<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct FreshnessArgs {
    #[command(flatten)]
    pub at: Locations,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
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
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
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
    /// Share of enrolled accounts assigned to the variant (0.5 by design; e.g. 0.55 injects a
    /// sample-ratio mismatch).
    #[arg(long, default_value_t = 0.5)]
    pub canary_variant_share: f64,
    /// How much accounts differ in responsiveness (σ of a log-normal with mean 1, the same in
    /// the pre-period and the experiment): larger makes the pre-period more informative.
    #[arg(long, default_value_t = 0.5)]
    pub canary_responsiveness_sigma: f64,
    /// Also write N nightly snapshots of the company, one day apart and sharing their files: the
    /// corpus goes to OUT/corpus, the nights to OUT/night-01 … OUT/night-N (the last at the
    /// corpus' as_of), each append-only source a directory of one partition per night.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=366))]
    pub nights: Option<u32>,
    /// Regenerate the corpus in DIR from its manifest and exit 1 if any file's bytes differ.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["nights", "seed", "accounts", "start", "end", "out", "mix", "fault_rate", "no_faults", "canary_effect", "canary_variant_share", "canary_responsiveness_sigma"])]
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
