//! `gtmos build`: one run of the pipelines project over a snapshot (SPEC §2, §3, §6).
//!
//! A run is a [`BuildRun`] passed through its stages, one file each:
//!
//! | stage | file |
//! |---|---|
//! | 1. source contracts (ingest, quarantine, checks, freshness) | `sources.rs` |
//! | 2. models in DAG order, each checked by its data tests | `models.rs` |
//! | 3. singular tests over what was built | `models.rs` |
//! | 4. publish the next version: tables, brain-ready documents, state | `publish.rs` |
//! | 5. the close (`--close-through`) | `close.rs` |
//! | 6. decision nodes' proposals into the decision log | `publish.rs` |
//! | 7. commit; then the log tables | here, `logs.rs` |
//!
//! What may be published is decided in one place, the [`Gate`] (`gate.rs`): blocked sources,
//! upstream blocks, last good inputs and propagation. The record of the run is the
//! [`BuildReport`] (`report.rs`); the HTML report is rendered from it by the command.
//!
//! Everything is staged under the run's staging directory; `published/` changes only at the
//! commit, whole, so a run that fails midway leaves the previous published state intact. A
//! table whose contract (or any input's) fails is not republished: its last good version
//! stays, marked stale with the reason, and the rest of the build publishes.
//!
//! Identity: `inputs_hash` from the manifest, `pipelines_hash` over `pipelines/`, and
//! `build_id` = sha256(inputs_hash, pipelines_hash, effective config). Published tables carry
//! the build_id and are sorted, so identical inputs give byte-identical tables; the run id and
//! timings live only in the logs.

mod close;
mod gate;
mod logs;
mod models;
mod publish;
mod report;
mod reuse;
mod selection;
mod sources;
mod verify;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;

use crate::calendar::{Day, format_ts};
use crate::contracts;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::printer::Progress;
use crate::project::{Project, Renderer};
use crate::snapshot::Snapshot;
use crate::table_io::{WrittenFile, sha256_hex};
use crate::warehouse::Warehouse;

pub use gate::Gate;
pub use models::{build_model, key_test, ranged_inputs, through_ranges, write_order};
pub use report::{
    BuildReport, ModelResult, Step, ViewsSummary, quarantine_summary, warned_sources,
};
pub use reuse::{Decision, STEPS_FILE};
pub use selection::Selection;
pub use sources::{run_contracts, run_contracts_of};

#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The command that runs the build (`build`, `recognize`, `reconcile`): recorded in the
    /// run log, named in the report's headline.
    pub command: &'static str,
    pub project: PathBuf,
    pub snapshot: PathBuf,
    pub warehouse: PathBuf,
    /// Override of the snapshot's as_of (UTC µs).
    pub as_of: Option<i64>,
    pub threads: usize,
    /// Bytes the engine may hold in memory before spilling to the staging directory.
    pub memory_limit: usize,
    /// Models to build (names or `tag:<tag>`), with everything upstream; empty: all.
    pub select: Vec<String>,
    /// Freeze every month up to this one (its first day) into `closed_periods/`.
    pub close_through: Option<crate::calendar::Day>,
    /// Source tables read from elsewhere than the snapshot (e.g. reference figures).
    pub overrides: BTreeMap<String, PathBuf>,
    /// Project vars overridden for this run (`--vars`), as the SQL text they render to.
    pub vars: BTreeMap<String, String>,
    /// Compute every model, whatever the state says (`--full-refresh`).
    pub full_refresh: bool,
    /// Before committing, build the same snapshot again with `--full-refresh` beside this run
    /// and fail on the first difference (`--verify-full-refresh`).
    pub verify_full_refresh: bool,
    /// Where the SQL runs (`--engine`, `--scheduler`); published bytes do not depend on it.
    pub runner: crate::engine::Runner,
}

impl BuildOptions {
    pub fn new(project: &Path, snapshot: &Path, warehouse: &Path) -> BuildOptions {
        BuildOptions {
            command: "build",
            project: project.to_path_buf(),
            snapshot: snapshot.to_path_buf(),
            warehouse: warehouse.to_path_buf(),
            as_of: None,
            threads: 2,
            memory_limit: 1 << 30,
            select: Vec::new(),
            close_through: None,
            overrides: BTreeMap::new(),
            vars: BTreeMap::new(),
            full_refresh: false,
            verify_full_refresh: false,
            runner: crate::engine::Runner::Local,
        }
    }
}

/// build_id = sha256 over (inputs_hash, pipelines_hash, effective config).
pub fn build_id(inputs_hash: &str, pipelines_hash: &str, config: &serde_json::Value) -> String {
    sha256_hex(format!("{inputs_hash}\n{pipelines_hash}\n{config}").as_bytes())
}

/// One build: load the project, verify the snapshot, hold the warehouse's run lock (one run at
/// a time), run the stages, write the logs.
pub fn build(opts: &BuildOptions) -> Result<BuildReport> {
    build_then(opts, |_, _| Ok(()))
}

/// [`build`], then `after` on the finished report (and the project it ran) while the run lock
/// is still held: the command renders the HTML report there, so no other run can switch
/// `published/` halfway through its pages.
pub fn build_then(
    opts: &BuildOptions,
    after: impl FnOnce(&mut BuildReport, &Project) -> Result<()>,
) -> Result<BuildReport> {
    let mut project = Project::load(&opts.project)?;
    project.override_vars(&opts.vars)?;
    let snapshot = Snapshot::open(&opts.snapshot, &project.registry)?;
    let _lock = Warehouse::new(&opts.warehouse).lock()?;
    let started = Instant::now();
    let started_at = crate::logs::now_micros();
    let run_id = crate::logs::new_run_id();
    let as_of = match opts.as_of {
        Some(t) => t,
        None => snapshot.manifest.as_of_micros()?,
    };
    let mut snapshot = snapshot;
    for (table, path) in &opts.overrides {
        snapshot.override_table(table, path)?;
    }
    let verifying = Instant::now();
    snapshot.verify()?;
    let verify_seconds = verifying.elapsed().as_secs_f64();
    let inputs_hash = snapshot.manifest.inputs_hash();
    let warehouse_state = Warehouse::new(&opts.warehouse);
    let close = warehouse_state.close_state()?;
    if let Some(month) = opts.close_through
        && month.add_months(1).micros() > as_of
    {
        return Err(Error::usage(format!(
            "cannot close {}: the month has not ended by as_of {}",
            &month.iso()[..7],
            format_ts(as_of)
        )));
    }
    let effective_config = json!({
        "as_of": format_ts(as_of),
        "engine": project.engine,
        "gtmos": env!("CARGO_PKG_VERSION"),
        "select": opts.select,
        "close_through": opts.close_through.map(|d| d.iso()[..7].to_string()),
        "closed_through": close.closed_through,
        "vars": opts.vars,
    });
    let build_id = build_id(&inputs_hash, &project.hash, &effective_config);
    // What killed or failed runs left is removed, under the lock; then this run's handle on
    // the version published now (its last good tables).
    let warehouse = Warehouse::new(&opts.warehouse).prepare(&run_id)?;
    let mut report = BuildReport {
        command: opts.command,
        select: opts.select.clone(),
        run_id: run_id.clone(),
        build_id,
        snapshot_id: snapshot.manifest.snapshot_id.clone(),
        snapshot_dir: opts.snapshot.clone(),
        as_of,
        inputs_hash,
        pipelines_hash: project.hash.clone(),
        project_name: project.name.clone(),
        project_version: project.version.clone(),
        effective_config,
        started_at,
        seconds: 0.0,
        sources: Vec::new(),
        models: Vec::new(),
        singular: Vec::new(),
        steps: vec![Step {
            rows_in: snapshot.manifest.tables.values().map(|t| t.rows).sum(),
            ..Step::ok("inputs", "verify", verify_seconds)
        }],
        published: Vec::new(),
        blocked: Vec::new(),
        report_dir: None,
        warehouse: opts.warehouse.clone(),
        closed: Vec::new(),
        close_held: None,
        decisions: Vec::new(),
        brain_view_contracts_hash: project.views.as_ref().map(|v| v.hash.clone()),
        views: None,
    };
    let staging = warehouse.staging(&run_id);
    let progress = Progress::new(opts.command, 0);
    let outcome = run(
        opts,
        &project,
        &snapshot,
        &warehouse,
        &staging,
        &mut report,
        &progress,
    );
    let _ = std::fs::remove_dir_all(&staging);
    report.seconds = started.elapsed().as_secs_f64();
    match outcome {
        Ok(()) => {
            progress.step("logs");
            logs::write_logs(&warehouse, &report, None)?;
            progress.finish();
            after(&mut report, &project)?;
            Ok(report)
        }
        Err(e) => {
            // The run log records the failure; published/ is untouched.
            let _ = logs::write_logs(&warehouse, &report, Some(&e.to_string()));
            Err(e)
        }
    }
}

/// One run in progress: what its stages read, and what they add to.
struct BuildRun<'a> {
    cx: contracts::Context<'a>,
    project: &'a Project,
    renderer: &'a Renderer,
    selection: Selection,
    gate: Gate,
    /// The tables written to staging, by model.
    staged: BTreeMap<String, WrittenFile>,
    /// What the published version was built from, and what this run builds from.
    reuse: reuse::Reuse,
    report: &'a mut BuildReport,
    progress: &'a Progress,
}

fn run(
    opts: &BuildOptions,
    project: &Project,
    snapshot: &Snapshot,
    warehouse: &Warehouse,
    staging: &Path,
    report: &mut BuildReport,
    progress: &Progress,
) -> Result<()> {
    std::fs::create_dir_all(staging)
        .map_err(|e| Error::io("cannot create staging directory", staging, e))?;
    let selection = Selection::resolve(project, &opts.select)?;
    // One unit per contract, model and singular test, then publishing and the views.
    progress.set_total(
        (selection.sources.len() + selection.models.len() + project.tests.len() + 2) as u64,
    );
    let engine = Engine::start(
        &project.engine,
        opts.threads,
        &staging.join("spill"),
        opts.memory_limit,
        &opts.runner,
    )?;
    let close = warehouse.close_state()?;
    let frozen_through = close
        .closed_through
        .as_deref()
        .map(Day::parse)
        .transpose()?;
    let snapshot_as_of = snapshot.manifest.as_of_micros()?;
    let renderer = Renderer::new(project, Some(report.as_of), Some(&report.build_id))
        .with_frozen_through(frozen_through)
        .with_snapshot(&report.snapshot_id, &report.inputs_hash)
        .with_snapshot_as_of(snapshot_as_of);
    let render = |text: &str| renderer.text(text);
    let run_id = report.run_id.clone();
    // The warehouse as this run finds it, for the full refresh to start from.
    let scratch = if opts.verify_full_refresh {
        Some(verify::seed(warehouse, staging)?)
    } else {
        None
    };
    let mut run = BuildRun {
        cx: contracts::Context {
            engine: &engine,
            warehouse,
            staging,
            run_id: &run_id,
            as_of: report.as_of,
            snapshot_as_of,
            render: &render,
            window_range_rows: engine.rows_for_pool(contracts::WINDOW_RANGE_ROWS),
        },
        project,
        renderer: &renderer,
        selection,
        gate: Gate::new(project),
        staged: BTreeMap::new(),
        reuse: reuse::Reuse::new(project, warehouse, &close, opts.full_refresh)?,
        report,
        progress,
    };
    // 1. Source contracts.
    sources::check(&mut run, snapshot)?;
    // 2. Models in DAG order, each checked by its tests.
    models::build_all(&mut run)?;
    // 3. Singular tests over what was built; then whatever reads a blocked model is blocked.
    models::singular_tests(&mut run)?;
    run.gate
        .propagate(project, &run.selection, &mut run.report.models);
    // 4. Publish into the next version, beside the published one.
    let next = publish::tables(&mut run)?;
    // 5. The close: freeze the newly closed months of every freezing model, or hold the close.
    if let Some(target) = opts.close_through {
        close::close_periods(
            project,
            &run.selection,
            &next,
            run.report,
            frozen_through,
            target,
        )?;
        failpoint("close")?;
    }
    // 6. Decision nodes: the proposals of every node evaluated this run join the decision log.
    publish::decisions(&mut run, &next)?;
    // The proof, when asked for: a full refresh beside this run, compared before publishing.
    if let Some(scratch) = &scratch {
        run.progress
            .step("verify: a full refresh beside this build");
        let started = Instant::now();
        verify::against_full_refresh(opts, scratch, &next, run.report)?;
        run.report.steps.push(Step::ok(
            "verify",
            "full_refresh",
            started.elapsed().as_secs_f64(),
        ));
    }
    // 7. The one commit point: readers switch from the old version to the new, whole.
    warehouse.commit(&next)?;
    failpoint("published")?;
    Ok(())
}

/// A test-only failure at a named step boundary: `GTMOS_FAILPOINT=<step>` makes the run fail
/// there (an error, as a full disk would), `GTMOS_FAILPOINT=<step>:abort` kills the process
/// on the spot (as kill -9 would), and `<step>:wait=<path>` holds the run there until `path`
/// exists (as a slow run would, so a test can have another overtake it exactly). The
/// fault-injection tests use them; nothing else sets them.
pub(crate) fn failpoint(step: &str) -> Result<()> {
    let Ok(spec) = std::env::var("GTMOS_FAILPOINT") else {
        return Ok(());
    };
    let (at, how) = spec.split_once(':').unwrap_or((spec.as_str(), "error"));
    if at != step {
        return Ok(());
    }
    if how == "abort" {
        std::process::abort();
    }
    if let Some(path) = how.strip_prefix("wait=") {
        // Hold here until a test creates `path` (at most two minutes), so it can interleave
        // another run with this one exactly.
        let until = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !std::path::Path::new(path).exists() && std::time::Instant::now() < until {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        return Ok(());
    }
    Err(Error::Internal(format!(
        "failpoint `{step}` (GTMOS_FAILPOINT)"
    )))
}
