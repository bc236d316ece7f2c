//! `gtmos build`: one run of the pipelines project over a snapshot (SPEC §2, §3, §6).
//!
//! Order: source contracts (ingest, quarantine, checks, freshness) → models in DAG order, each
//! checked by its tests → singular tests → publish → logs → report. Everything is staged under
//! the run's staging directory; `published/` changes only at the end, table by table, so a run
//! that fails midway leaves the previous published state intact. A table whose contract (or
//! any input's) fails is not republished: its last good version stays, marked stale with the
//! reason, and the rest of the build publishes.
//!
//! Identity: `inputs_hash` from the manifest, `pipelines_hash` over `pipelines/`, and
//! `build_id` = sha256(inputs_hash, pipelines_hash, effective config). Published tables carry
//! the build_id and are sorted, so identical inputs give byte-identical tables; the run id and
//! timings live only in the logs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::json;

use crate::builder::TableBuilder;
use crate::calendar::Day;
use crate::calendar::format_ts;
use crate::contracts::{self, FreshnessResult, SourceResult, TestResult};
use crate::engine::{CLOSED, Engine, LAST_GOOD, MODELS, SCRATCH, SOURCES, ident, quote};
use crate::error::{Error, Result};
use crate::logs::{self, CONTRACT_RESULTS, FRESHNESS_LOG, RUN_LOG};
use crate::printer::Progress;
use crate::project::template::{InputState, Ref};
use crate::project::tests::TestKind;
use crate::project::{Materialized, Model, Project, Renderer};
use crate::snapshot::Snapshot;
use crate::table_io::{TableWriter, WrittenFile, sha256_hex};
use crate::warehouse::{TableState, Warehouse};

#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The command that runs the build (`build`, `recognize`, `reconcile`): recorded in the
    /// run log, named in the report's headline.
    pub command: &'static str,
    pub project: PathBuf,
    pub snapshot: PathBuf,
    pub warehouse: PathBuf,
    /// Where HTML reports go (`<reports>/<run_id>/`, `<reports>/latest/`); None: no report.
    pub reports: Option<PathBuf>,
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
}

impl BuildOptions {
    pub fn new(project: &Path, snapshot: &Path, warehouse: &Path) -> BuildOptions {
        BuildOptions {
            command: "build",
            project: project.to_path_buf(),
            snapshot: snapshot.to_path_buf(),
            warehouse: warehouse.to_path_buf(),
            reports: None,
            as_of: None,
            threads: 2,
            memory_limit: 1 << 30,
            select: Vec::new(),
            close_through: None,
            overrides: BTreeMap::new(),
            vars: BTreeMap::new(),
        }
    }
}

/// What a run builds: the selected models with everything upstream, and the sources they need.
#[derive(Debug, Clone)]
pub struct Selection {
    pub models: BTreeSet<String>,
    pub sources: BTreeSet<String>,
}

impl Selection {
    pub fn resolve(project: &Project, selectors: &[String]) -> Result<Selection> {
        if selectors.is_empty() {
            return Ok(Selection {
                models: project.models.iter().map(|m| m.name.clone()).collect(),
                sources: project.sources.iter().map(|s| s.table.clone()).collect(),
            });
        }
        let mut models = BTreeSet::new();
        for sel in selectors {
            let matched: Vec<&Model> = match sel.strip_prefix("tag:") {
                Some(tag) => project
                    .models
                    .iter()
                    .filter(|m| m.tags.iter().any(|t| t == tag))
                    .collect(),
                None => project.model(sel).into_iter().collect(),
            };
            if matched.is_empty() {
                return Err(Error::usage_hint(
                    format!("--select `{sel}` matches no model"),
                    "select a model by name, or every model with a tag: tag:recognition",
                ));
            }
            models.extend(matched.into_iter().map(|m| m.name.clone()));
        }
        let mut sources = BTreeSet::new();
        for m in models.clone() {
            for r in project.upstream(&m) {
                match r {
                    Ref::Model(x) => {
                        models.insert(x);
                    }
                    Ref::Source(x) => {
                        sources.insert(x);
                    }
                }
            }
        }
        // Contracts read the sources their tests reference.
        let mut stack: Vec<String> = sources.iter().cloned().collect();
        while let Some(t) = stack.pop() {
            if let Some(c) = project.source(&t) {
                for d in &c.depends_on {
                    if sources.insert(d.clone()) {
                        stack.push(d.clone());
                    }
                }
            }
        }
        Ok(Selection { models, sources })
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    pub step: String,
    pub kind: &'static str,
    pub seconds: f64,
    pub rows_in: u64,
    pub rows_out: u64,
    pub quarantined: u64,
    pub status: String,
}

#[derive(Debug, Clone)]
pub struct ModelResult {
    pub name: String,
    pub file: PathBuf,
    pub materialized: Materialized,
    pub rows: u64,
    pub seconds: f64,
    pub tests: Vec<TestResult>,
    /// Why it was not (re)published.
    pub blocked: Option<String>,
    pub sha256: Option<String>,
    /// Blocked inputs it read at their last good version (`blocked_inputs='last_good'`).
    pub read_last_good: Vec<String>,
}

/// Everything a run did, for the summary, the logs and the report.
#[derive(Debug, Clone)]
pub struct BuildReport {
    /// The command that ran (see [`BuildOptions::command`]) and its `--select`ors.
    pub command: &'static str,
    pub select: Vec<String>,
    pub run_id: String,
    pub build_id: String,
    pub snapshot_id: String,
    pub snapshot_dir: PathBuf,
    pub as_of: i64,
    pub inputs_hash: String,
    pub pipelines_hash: String,
    pub project_name: String,
    pub project_version: String,
    pub effective_config: serde_json::Value,
    pub started_at: i64,
    pub seconds: f64,
    pub sources: Vec<SourceResult>,
    pub models: Vec<ModelResult>,
    pub singular: Vec<TestResult>,
    pub steps: Vec<Step>,
    pub published: Vec<String>,
    pub blocked: Vec<(String, String)>,
    pub report_dir: Option<PathBuf>,
    pub warehouse: PathBuf,
    /// Months frozen by this run (first days), and why a requested close did not advance.
    pub closed: Vec<String>,
    pub close_held: Option<String>,
    /// What each decision node evaluated this run proposed.
    pub decisions: Vec<crate::decisions::NodeOutcome>,
    /// sha256 over the brain-ready view contracts (SPEC §10), when the project has them.
    pub brain_view_contracts_hash: Option<String>,
    /// The brain-ready documents this run published: (composites, token max, stale views).
    pub views: Option<ViewsSummary>,
}

/// What the views stage published.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ViewsSummary {
    pub views: usize,
    pub composites: usize,
    pub composite_tokens_max: usize,
    pub composite_token_budget: usize,
    pub dropped_rows: usize,
    pub stale: Vec<String>,
}

impl BuildReport {
    /// A full nightly build: `gtmos build` of every model. Only it refreshes `reports/latest`.
    pub fn is_full(&self) -> bool {
        self.command == "build" && self.select.is_empty()
    }

    /// The command as a user would have typed it, for headlines: `build`,
    /// `build --select tag:metrics`, `recognize`, `reconcile`.
    pub fn command_line(&self) -> String {
        // recognize and reconcile add their own tag first; only the user's selectors count.
        let own = match self.command {
            "recognize" | "reconcile" => 1,
            _ => 0,
        };
        let user: Vec<&str> = self.select.iter().skip(own).map(String::as_str).collect();
        if user.is_empty() {
            self.command.to_string()
        } else {
            format!("{} --select {}", self.command, user.join(","))
        }
    }

    pub fn outcome(&self) -> &'static str {
        if self.blocked.is_empty() {
            "success"
        } else {
            "blocked"
        }
    }

    pub fn all_tests(&self) -> impl Iterator<Item = &TestResult> {
        self.sources
            .iter()
            .flat_map(|s| s.tests.iter())
            .chain(self.models.iter().flat_map(|m| m.tests.iter()))
            .chain(self.singular.iter())
    }

    pub fn warnings(&self) -> u64 {
        self.all_tests()
            .filter(|t| t.status == crate::project::tests::Status::Warn)
            .count() as u64
            + self.freshness().filter(|f| f.status != "pass").count() as u64
    }

    pub fn freshness(&self) -> impl Iterator<Item = &FreshnessResult> {
        self.sources.iter().filter_map(|s| s.freshness.as_ref())
    }

    pub fn quarantined_rows(&self) -> u64 {
        self.sources
            .iter()
            .map(|s| s.quarantined.values().sum::<u64>())
            .sum()
    }

    pub fn dead_lettered_rows(&self) -> u64 {
        self.sources.iter().map(|s| s.dead_lettered).sum()
    }
}

/// build_id = sha256 over (inputs_hash, pipelines_hash, effective config).
pub fn build_id(inputs_hash: &str, pipelines_hash: &str, config: &serde_json::Value) -> String {
    sha256_hex(format!("{inputs_hash}\n{pipelines_hash}\n{config}").as_bytes())
}

/// Hold the warehouse for one build at a time; released when the process ends.

pub fn build(opts: &BuildOptions) -> Result<BuildReport> {
    let mut project = Project::load(&opts.project)?;
    project.override_vars(&opts.vars)?;
    let snapshot = Snapshot::open(&opts.snapshot, &project.registry)?;
    let _lock = Warehouse::new(&opts.warehouse).lock()?;
    let started = Instant::now();
    let started_at = logs::now_micros();
    let run_id = logs::new_run_id();
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
            step: "inputs.verify".into(),
            kind: "inputs",
            seconds: verify_seconds,
            rows_in: snapshot.manifest.tables.values().map(|t| t.rows).sum(),
            rows_out: 0,
            quarantined: 0,
            status: "ok".into(),
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
            write_logs(&warehouse, &report, None)?;
            if let Some(dir) = &opts.reports {
                progress.step("report");
                let slos = crate::freshness::attainment(&opts.warehouse, &project.slos)?;
                report.report_dir = Some(crate::reports::render_build(&report, &slos, dir)?);
            }
            progress.advance(1);
            progress.finish();
            Ok(report)
        }
        Err(e) => {
            // The run log records the failure; published/ is untouched.
            let _ = write_logs(&warehouse, &report, Some(&e.to_string()));
            Err(e)
        }
    }
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
    // One unit per contract, model and singular test, then publishing, views and the report.
    progress.set_total(
        (selection.sources.len() + selection.models.len() + project.tests.len() + 3) as u64,
    );
    let engine = Engine::new(
        &project.engine,
        opts.threads,
        &staging.join("spill"),
        opts.memory_limit,
    )?;
    let close = warehouse.close_state()?;
    let frozen_through = close
        .closed_through
        .as_deref()
        .map(Day::parse)
        .transpose()?;
    let renderer = Renderer::new(project, Some(report.as_of), Some(&report.build_id))
        .with_frozen_through(frozen_through)
        .with_snapshot(&report.snapshot_id, &report.inputs_hash)
        .with_snapshot_as_of(snapshot.manifest.as_of_micros()?);
    let render = |text: &str| renderer.text(text);
    let cx = contracts::Context {
        engine: &engine,
        warehouse,
        staging,
        run_id: &report.run_id,
        as_of: report.as_of,
        snapshot_as_of: snapshot.manifest.as_of_micros()?,
        render: &render,
        window_range_rows: engine.rows_for_pool(contracts::WINDOW_RANGE_ROWS),
    };

    // 1. Source contracts.
    let mut blocked_sources: BTreeMap<String, String> = BTreeMap::new();
    for r in run_contracts_of(&cx, project, snapshot, &selection.sources, progress)? {
        report.steps.push(Step {
            step: format!("source.{}", r.table),
            kind: "source",
            seconds: r.seconds,
            rows_in: r.rows_in,
            rows_out: r.rows_accepted,
            quarantined: r.quarantined.values().sum::<u64>() + r.dead_lettered,
            status: if r.blocked.is_some() {
                "blocked".into()
            } else if r.present {
                "ok".into()
            } else {
                "absent".into()
            },
        });
        if let Some(reason) = &r.blocked {
            blocked_sources.insert(r.table.clone(), reason.clone());
        }
        report.sources.push(r);
    }

    // 2. Models in DAG order; frozen months of closed periods are readable as closed.<model>.
    for model in project
        .models
        .iter()
        .filter(|m| m.freeze.is_some() && selection.models.contains(&m.name))
    {
        register_closed(&engine, warehouse, model)?;
    }
    let mut blocked: BTreeMap<String, String> = BTreeMap::new();
    // Models some `blocked_inputs='last_good'` model reads, directly or not.
    let read_by_last_good: BTreeSet<String> = project
        .models
        .iter()
        .filter(|m| m.reads_last_good)
        .flat_map(|m| project.upstream(&m.name))
        .filter_map(|r| match r {
            Ref::Model(m) => Some(m),
            Ref::Source(_) => None,
        })
        .collect();
    let mut staged: BTreeMap<String, (PathBuf, WrittenFile)> = BTreeMap::new();
    for model in project
        .models
        .iter()
        .filter(|m| selection.models.contains(&m.name))
    {
        progress.step(&format!("model {}", model.name));
        let started = Instant::now();
        let upstream_block = model.refs.iter().find_map(|r| match r {
            Ref::Source(t) => blocked_sources
                .get(t)
                .map(|why| format!("input source `{t}` is blocked ({why})")),
            Ref::Model(_) if model.reads_last_good => None,
            Ref::Model(m) => blocked
                .get(m)
                .map(|_| format!("input model `{m}` is blocked")),
        });
        let mut result = ModelResult {
            name: model.name.clone(),
            file: model.file.clone(),
            materialized: model.materialized,
            rows: 0,
            seconds: 0.0,
            tests: Vec::new(),
            blocked: upstream_block.clone(),
            sha256: None,
            read_last_good: Vec::new(),
        };
        if upstream_block.is_none() {
            let mut inputs: BTreeMap<String, InputState> = BTreeMap::new();
            for r in &model.refs {
                if let Ref::Model(m) = r
                    && let Some(why) = blocked.get(m)
                {
                    let last_good = warehouse.published_file(m);
                    let last_good = last_good.exists()
                        && project
                            .model(m)
                            .is_some_and(|x| x.materialized == Materialized::Table);
                    if last_good {
                        engine.register_parquet(
                            LAST_GOOD,
                            m,
                            &warehouse.published_file(m).to_string_lossy(),
                            None,
                        )?;
                    }
                    inputs.insert(
                        m.clone(),
                        InputState {
                            last_good,
                            reason: why.clone(),
                        },
                    );
                }
            }
            let read = |r: &Ref| match r {
                Ref::Model(m) if inputs.get(m).is_some_and(|s| s.last_good) => {
                    format!("{LAST_GOOD}.{}", ident(m))
                }
                _ => Renderer::relation(r),
            };
            let ranged = ranged_inputs(model, &read);
            let relation = |r: &Ref| through_ranges(&ranged, &read, r);
            let sql = renderer.model(project, model, &relation, &|m| inputs.get(m).cloned())?;
            result.read_last_good = inputs.keys().cloned().collect();
            let (written, tests) =
                build_model(&cx, project, model, &sql, &ranged, &report.build_id)?;
            if let Some(w) = &written {
                result.rows = w.rows;
                result.sha256 = Some(w.sha256.clone());
                staged.insert(model.name.clone(), (w.path.clone(), w.clone()));
            }
            if let Some(t) = tests.iter().find(|t| t.spec.blocks(t.status)) {
                result.blocked = Some(format!(
                    "rule `{}` failed on {} rows",
                    t.spec.rule, t.failures
                ));
            }
            result.tests = tests;
        } else if read_by_last_good.contains(&model.name)
            && let Ok(sql) = renderer.model(project, model, &Renderer::relation, &|_| None)
        {
            // Computed anyway, never tested or published, so that a model reading last good
            // versions can still show a blocked input that has none (its rows, values withheld).
            // Failure here is not the build's: the input is blocked already.
            let _ = materialize(&engine, model, &sql, &[], &report.build_id, staging, false);
        }
        result.seconds = started.elapsed().as_secs_f64();
        if let Some(why) = &result.blocked {
            blocked.insert(model.name.clone(), why.clone());
        }
        report.steps.push(Step {
            step: format!("model.{}", model.name),
            kind: "model",
            seconds: result.seconds,
            rows_in: 0,
            rows_out: result.rows,
            quarantined: 0,
            status: if result.blocked.is_some() {
                "blocked".into()
            } else {
                "ok".into()
            },
        });
        report.models.push(result);
        progress.advance(1);
    }

    // 3. Singular tests over what was built; a failure blocks the models it reads.
    for t in &project.tests {
        let in_scope = t.refs.iter().all(|r| match r {
            Ref::Model(m) => selection.models.contains(m),
            Ref::Source(x) => selection.sources.contains(x),
        });
        let unavailable = t.refs.iter().any(|r| match r {
            Ref::Model(m) => blocked.contains_key(m),
            Ref::Source(x) => blocked_sources.contains_key(x),
        });
        if !in_scope || unavailable {
            continue;
        }
        progress.step(&format!("test {}", t.name));
        let started = Instant::now();
        let sql = renderer.file(&t.file, &t.pieces)?;
        let mut r = contracts::run_singular(&cx, &t.name, &t.file, &sql, &t.spec())?;
        if r.spec.blocks(r.status) {
            r.action = "blocked";
            for x in &t.refs {
                if let Ref::Model(m) = x {
                    blocked.entry(m.clone()).or_insert_with(|| {
                        format!("singular test `{}` failed ({} rows)", t.name, r.failures)
                    });
                }
            }
        }
        report.steps.push(Step {
            step: format!("test.{}", t.name),
            kind: "test",
            seconds: started.elapsed().as_secs_f64(),
            rows_in: 0,
            rows_out: r.failures,
            quarantined: 0,
            status: r.status.name().into(),
        });
        report.singular.push(r);
        progress.advance(1);
    }
    // Singular tests out of scope count as done.
    progress.advance((project.tests.len() - report.singular.len()) as u64);
    // Whatever reads a blocked model is blocked too.
    for model in project
        .models
        .iter()
        .filter(|m| selection.models.contains(&m.name))
    {
        // A model that reads last good versions was built knowing which inputs were blocked;
        // only an input blocked afterwards (by a singular test) blocks it.
        let read_last_good = report
            .models
            .iter()
            .find(|r| r.name == model.name)
            .map(|r| r.read_last_good.clone())
            .unwrap_or_default();
        let inputs = if model.reads_last_good {
            model.refs.iter().cloned().collect()
        } else {
            project.upstream(&model.name)
        };
        if !blocked.contains_key(&model.name)
            && let Some(up) = inputs.into_iter().find_map(|r| match r {
                Ref::Model(m) if blocked.contains_key(&m) && !read_last_good.contains(&m) => {
                    Some(m)
                }
                _ => None,
            })
        {
            blocked.insert(model.name.clone(), format!("input model `{up}` is blocked"));
        }
    }
    for m in &mut report.models {
        if m.blocked.is_none() {
            m.blocked = blocked.get(&m.name).cloned();
        }
    }

    // 4. Publish: assemble the next version beside the published one; nothing is visible
    // until the switch at the end.
    progress.step("publish");
    let mut state = warehouse.state()?;
    let next = warehouse.begin(&report.run_id)?;
    failpoint("publish.begun")?;
    for m in &report.models {
        if m.materialized != Materialized::Table {
            continue;
        }
        match &m.blocked {
            None => {
                let (path, w) = staged
                    .get(&m.name)
                    .ok_or_else(|| Error::Internal(format!("model `{}` was not staged", m.name)))?;
                next.publish(path, &m.name)?;
                failpoint("publish.table")?;
                state
                    .tables
                    .insert(m.name.clone(), published_state(report, w));
                report.published.push(m.name.clone());
            }
            Some(why) => {
                let e = state.tables.entry(m.name.clone()).or_insert(TableState {
                    build_id: None,
                    published_by_run: None,
                    snapshot_id: None,
                    rows: 0,
                    sha256: None,
                    stale: false,
                    stale_reason: None,
                    stale_since_run: None,
                });
                if !e.stale {
                    e.stale_since_run = Some(report.run_id.clone());
                }
                e.stale = true;
                e.stale_reason = Some(why.clone());
                report.blocked.push((m.name.clone(), why.clone()));
            }
        }
    }
    progress.advance(1);
    // 4b. Brain-ready views: the documents the brains read, from the views just published.
    if let Some(catalog) = &project.views
        && catalog.views.iter().any(|v| {
            report
                .published
                .contains(&crate::views::model_name(&v.name))
        })
    {
        progress.step("views: documents and token counts");
        let started = Instant::now();
        let summary = publish_views(catalog, &next, report, staging, &mut state)?;
        failpoint("publish.views")?;
        report.steps.push(Step {
            step: "views.assemble".into(),
            kind: "views",
            seconds: started.elapsed().as_secs_f64(),
            rows_in: 0,
            rows_out: summary.composites as u64,
            quarantined: 0,
            status: "ok".into(),
        });
        report.views = Some(summary);
    }
    next.write_state(&state)?;
    failpoint("publish.state")?;
    progress.advance(1);

    // 5. The close: freeze the newly closed months of every freezing model, or hold the close.
    if let Some(target) = opts.close_through {
        close_periods(project, &selection, &next, report, frozen_through, target)?;
        failpoint("close")?;
    }

    // 6. Decision nodes: the proposals of every node evaluated this run join the decision log.
    let dcx = crate::decisions::BuildContext {
        warehouse: &warehouse.root,
        run_id: &report.run_id,
        build_id: &report.build_id,
        snapshot_id: &report.snapshot_id,
        inputs_hash: &report.inputs_hash,
        as_of: report.as_of,
        vars: &project.vars,
    };
    let mut outcomes = Vec::new();
    let mut known = if project.decision_nodes.is_empty() {
        BTreeSet::new()
    } else {
        crate::decisions::known_ids(&warehouse.root)?
    };
    for node in &project.decision_nodes {
        if !selection.models.contains(&node.model) {
            continue;
        }
        let blocked = report
            .models
            .iter()
            .find(|m| m.name == node.model)
            .and_then(|m| m.blocked.clone());
        outcomes.push(match blocked {
            Some(why) => crate::decisions::NodeOutcome {
                node: node.name.clone(),
                model: node.model.clone(),
                proposed: Vec::new(),
                new: 0,
                none_because: Some(format!("its model `{}` is blocked: {why}", node.model)),
            },
            None => {
                let found = crate::decisions::proposals(&next.published_file(&node.model))?;
                crate::decisions::record(&dcx, node, &found, &mut known)?
            }
        });
    }
    report.decisions = outcomes;
    failpoint("decisions")?;

    // 7. The one commit point: readers switch from the old version to the new, whole.
    warehouse.commit(&next)?;
    failpoint("published")?;
    Ok(())
}

/// A test-only failure at a named step boundary: `GTMOS_FAILPOINT=<step>` makes the run fail
/// there (an error, as a full disk would), `GTMOS_FAILPOINT=<step>:abort` kills the process
/// on the spot (as kill -9 would). The fault-injection tests use them; nothing else sets them.
fn failpoint(step: &str) -> Result<()> {
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
    Err(Error::Internal(format!(
        "failpoint `{step}` (GTMOS_FAILPOINT)"
    )))
}

/// The publish state of a table this run wrote.
fn published_state(report: &BuildReport, w: &WrittenFile) -> TableState {
    TableState {
        build_id: Some(report.build_id.clone()),
        published_by_run: Some(report.run_id.clone()),
        snapshot_id: Some(report.snapshot_id.clone()),
        rows: w.rows,
        sha256: Some(w.sha256.clone()),
        stale: false,
        stale_reason: None,
        stale_since_run: None,
    }
}

/// Assemble the brain-ready documents and publish `account_composite` and `view_catalog`.
fn publish_views(
    catalog: &crate::views::Catalog,
    warehouse: &Warehouse,
    report: &mut BuildReport,
    staging: &Path,
    state: &mut crate::warehouse::PublishState,
) -> Result<ViewsSummary> {
    use crate::views::{CATALOG_TABLE, COMPOSITE_TABLE};
    let as_of = format_ts(report.as_of);
    let composite_path = staging.join(format!("{COMPOSITE_TABLE}.parquet"));
    let catalog_path = staging.join(format!("{CATALOG_TABLE}.parquet"));
    let mut composites = crate::views::CompositeWriter::create(&composite_path, &report.build_id)?;
    let a = crate::views::assemble(
        catalog,
        &warehouse.published_dir(),
        &as_of,
        &report.build_id,
        crate::views::COMPOSITE_CHUNK,
        &mut |c| composites.write(c),
    )?;
    let catalog_table = crate::views::catalog_batch(&a, catalog, &report.build_id, report.as_of)?;
    let written = [
        (COMPOSITE_TABLE, &composite_path, composites.finish()?),
        (
            CATALOG_TABLE,
            &catalog_path,
            crate::table_io::write_table(
                &catalog_path,
                catalog_table.schema(),
                &[],
                &[catalog_table],
            )?,
        ),
    ];
    for (name, path, w) in written {
        warehouse.publish(path, name)?;
        state
            .tables
            .insert(name.to_string(), published_state(report, &w));
        report.published.push(name.to_string());
    }
    Ok(ViewsSummary {
        views: a.catalog.iter().filter(|r| r.kind != "composite").count(),
        composites: a.composites,
        composite_tokens_max: a.composite_tokens_max,
        composite_token_budget: catalog.composite.token_budget,
        dropped_rows: a.dropped_rows,
        stale: a
            .catalog
            .iter()
            .filter(|r| r.is_stale && r.kind != "composite")
            .map(|r| r.view_name.clone())
            .collect(),
    })
}

/// Register `closed.<model>`: the frozen months so far (empty, with the model's contract schema, at first).
fn register_closed(engine: &Engine, warehouse: &Warehouse, model: &Model) -> Result<()> {
    warehouse.verify_closed(&model.name)?;
    let schema = contract_schema(model);
    let dir = warehouse.closed_dir().join(&model.name);
    let has_files = std::fs::read_dir(&dir)
        .map(|mut d| d.any(|e| e.is_ok()))
        .unwrap_or(false);
    if has_files {
        engine.register_parquet(CLOSED, &model.name, &dir.to_string_lossy(), Some(schema))
    } else {
        engine.register_batches(CLOSED, &model.name, schema, vec![])
    }
}

fn contract_schema(model: &Model) -> arrow::datatypes::SchemaRef {
    std::sync::Arc::new(arrow::datatypes::Schema::new(
        model
            .contract
            .iter()
            .map(|(n, t)| arrow::datatypes::Field::new(n, t.arrow(), true))
            .collect::<Vec<_>>(),
    ))
}

/// Freeze months (frozen_through, target] of every freezing model from its published table.
fn close_periods(
    project: &Project,
    selection: &Selection,
    warehouse: &Warehouse,
    report: &mut BuildReport,
    frozen_through: Option<Day>,
    target: Day,
) -> Result<()> {
    if frozen_through.is_some_and(|f| f >= target) {
        return Ok(());
    }
    let freezing: Vec<&Model> = project
        .models
        .iter()
        .filter(|m| m.freeze.is_some())
        .collect();
    for m in &freezing {
        if !selection.models.contains(&m.name) {
            report.close_held = Some(format!("`{}` was not built in this run", m.name));
            return Ok(());
        }
        if let Some(why) = report
            .blocked
            .iter()
            .find(|(t, _)| *t == m.name)
            .map(|(_, w)| w.clone())
        {
            report.close_held = Some(format!("`{}` is blocked: {why}", m.name));
            return Ok(());
        }
    }
    let first = frozen_through
        .map(|d| d.add_months(1))
        .unwrap_or(Day(i32::MIN));
    let mut files = BTreeMap::new();
    for m in &freezing {
        let column = m.freeze.clone().unwrap_or_default();
        let published = warehouse.published_file(&m.name);
        let (schema, batches) = crate::table_io::read_parquet(&published)?;
        let idx = schema
            .index_of(&column)
            .map_err(|e| Error::arrow(format!("freezing `{}`", m.name), e))?;
        let mut by_month: BTreeMap<i32, Vec<arrow::array::RecordBatch>> = BTreeMap::new();
        for b in &batches {
            let months =
                arrow::array::AsArray::as_primitive::<arrow::datatypes::Date32Type>(b.column(idx));
            let mut keys: BTreeSet<i32> = BTreeSet::new();
            for v in months.iter().flatten() {
                if v >= first.0 && v <= target.0 {
                    keys.insert(v);
                }
            }
            for k in keys {
                let mask = arrow::compute::kernels::cmp::eq(
                    months,
                    &arrow::array::Date32Array::new_scalar(k),
                )
                .map_err(|e| Error::arrow("freezing", e))?;
                let part = arrow::compute::filter_record_batch(b, &mask)
                    .map_err(|e| Error::arrow("freezing", e))?;
                by_month.entry(k).or_default().push(part);
            }
        }
        // Every month in the range is frozen, even one with no rows, so the close is explicit.
        let mut month = if frozen_through.is_some() {
            first
        } else {
            by_month.keys().next().map(|k| Day(*k)).unwrap_or(target)
        };
        while month <= target {
            let parts = by_month.remove(&month.0).unwrap_or_default();
            let path = warehouse.closed_file(&m.name, &month.iso());
            let w = crate::table_io::write_table_new(&path, schema.clone(), &[], &parts)?;
            files.insert(
                format!(
                    "{}/{}",
                    m.name,
                    path.file_name().and_then(|n| n.to_str()).unwrap_or("")
                ),
                w.sha256,
            );
            report.closed.push(month.iso());
            month = month.add_months(1);
        }
    }
    report.closed.sort();
    report.closed.dedup();
    let mut state = warehouse.close_state()?;
    state.closed_through = Some(target.iso());
    state.history.push(crate::warehouse::CloseEvent {
        run_id: report.run_id.clone(),
        build_id: report.build_id.clone(),
        closed_through: target.iso(),
        files,
    });
    warehouse.write_close_state(&state)
}

/// The contracts of the given sources, referenced sources first.
pub fn run_contracts_of(
    cx: &contracts::Context,
    project: &Project,
    snapshot: &Snapshot,
    sources: &BTreeSet<String>,
    progress: &Progress,
) -> Result<Vec<SourceResult>> {
    let mut out = Vec::new();
    for contract in project
        .sources
        .iter()
        .filter(|c| sources.contains(&c.table))
    {
        progress.step(&format!("contract {}", contract.table));
        let t = project.registry.expect_table(&contract.table)?;
        out.push(contracts::run_source(cx, contract, t, snapshot)?);
        progress.advance(1);
    }
    Ok(out)
}

/// The ingest + contracts stage: every source's contract, referenced sources first.
pub fn run_contracts(
    cx: &contracts::Context,
    project: &Project,
    snapshot: &Snapshot,
) -> Result<Vec<SourceResult>> {
    let all = project.sources.iter().map(|c| c.table.clone()).collect();
    run_contracts_of(cx, project, snapshot, &all, &Progress::hidden())
}

fn wrap_model(model: &Model, e: Error) -> Error {
    match e {
        Error::Engine { context, source } => Error::Engine {
            context: format!(
                "{}: model `{}`: {context}",
                model.file.display(),
                model.name
            ),
            source,
        },
        other => other,
    }
}

/// The views a model built in ranges (`config(build_in_ranges=N)`) reads its inputs through, as
/// (view name in `scratch`, the relation `read` gives the input); none for other models.
pub fn ranged_inputs(model: &Model, read: &dyn Fn(&Ref) -> String) -> Vec<(String, String)> {
    if model.build_in_ranges.is_none() {
        return Vec::new();
    }
    model
        .refs
        .iter()
        .map(|r| {
            let input = match r {
                Ref::Model(m) => format!("m_{m}"),
                Ref::Source(t) => format!("s_{t}"),
            };
            (format!("{}__{input}", model.name), read(r))
        })
        .collect()
}

/// The relation a model reads for `r`: its range view when it has one in `ranged`
/// ([`ranged_inputs`]), else what `read` gives.
pub fn through_ranges(
    ranged: &[(String, String)],
    read: &dyn Fn(&Ref) -> String,
    r: &Ref,
) -> String {
    let relation = read(r);
    match ranged.iter().find(|(_, rel)| *rel == relation) {
        Some((view, _)) => format!("{SCRATCH}.{}", ident(view)),
        None => relation,
    }
}

/// One model as a build runs it: planned from its rendered `sql`, written sorted and stamped
/// with `build_id` into the staging directory (or registered as a view), registered as
/// `models.<name>`, then its data tests run over what was written (a failing test marked as
/// blocking its publication). Public for the benchmarks, which time exactly this.
pub fn build_model(
    cx: &contracts::Context,
    project: &Project,
    model: &Model,
    sql: &str,
    ranged: &[(String, String)],
    build_id: &str,
) -> Result<(Option<WrittenFile>, Vec<TestResult>)> {
    let key = key_test(model);
    let mut written = materialize(
        cx.engine,
        model,
        sql,
        ranged,
        build_id,
        cx.staging,
        key.is_some(),
    )?;
    let rel_of = |to: &str| {
        if project.model(to).is_some() {
            format!("{MODELS}.{}", ident(to))
        } else {
            format!("{SOURCES}.{}", ident(to))
        }
    };
    let files: Option<Vec<PathBuf>> = written.as_ref().map(|w| vec![w.path.clone()]);
    let mut tests = contracts::run_checks(
        cx,
        &model.name,
        "model",
        &format!("{MODELS}.{}", ident(&model.name)),
        &model.tests,
        &rel_of,
        files.as_deref(),
    )
    .map_err(|e| wrap_model(model, e))?;
    if key.is_some_and(|k| tests[k].failures > 0) {
        // The key has duplicates, so `order_by` alone left ties: written again in the total
        // order, for the same bytes on every run (the tests saw the same rows).
        written = materialize(cx.engine, model, sql, ranged, build_id, cx.staging, false)?;
    }
    for t in &mut tests {
        t.declared_in = model.file.display().to_string();
        if t.status == crate::project::tests::Status::Fail {
            t.action = "blocked";
        }
    }
    Ok((written, tests))
}

/// The data test, by its index in the model's tests, that proves the declared `order_by` a
/// key: a `unique_combination_of_columns` over some of those columns, on every row (it counts
/// NULLs as equal). When it passes, `order_by` alone orders the table totally.
pub fn key_test(model: &Model) -> Option<usize> {
    model.tests.iter().position(|t| {
        t.where_.is_none()
            && matches!(&t.kind, TestKind::UniqueCombination(cols)
                if !cols.is_empty() && cols.iter().all(|c| model.order_by.contains(c)))
    })
}

/// The order a model's table is written in: its declared `order_by` when a key test proves it
/// total ([`key_test`]; `keyed`), else [`total_order`]. Sorting on the key alone gives the
/// same rows in the same order, without comparing the trailing columns.
pub fn write_order(
    model: &Model,
    columns: &[(String, arrow::datatypes::DataType)],
    keyed: bool,
) -> Vec<String> {
    if keyed {
        model.order_by.clone()
    } else {
        total_order(model, columns)
    }
}

/// The order a model's table is written in, a total one: its declared `order_by`, then every
/// other sortable column of its output `columns`.
fn total_order(model: &Model, columns: &[(String, arrow::datatypes::DataType)]) -> Vec<String> {
    let mut order: Vec<String> = model.order_by.clone();
    for (n, t) in columns {
        if !order.contains(n)
            && !matches!(
                t,
                arrow::datatypes::DataType::List(_) | arrow::datatypes::DataType::Struct(_)
            )
        {
            order.push(n.clone());
        }
    }
    order
}

/// Plan a model, then write it (tables) sorted with its build_id, or register it as a view.
/// `keyed`: sorted on the declared `order_by` alone (see [`write_order`]).
#[allow(clippy::too_many_arguments)]
fn materialize(
    engine: &Engine,
    model: &Model,
    sql: &str,
    ranged: &[(String, String)],
    build_id: &str,
    staging: &Path,
    keyed: bool,
) -> Result<Option<WrittenFile>> {
    let what = format!("{}: model `{}`", model.file.display(), model.name);
    let qualified = format!("{MODELS}.{}", ident(&model.name));
    // Planned first over the whole of each input.
    for (view, relation) in ranged {
        engine.register_view(SCRATCH, view, &format!("SELECT * FROM {relation}"), &what)?;
    }
    if model.materialized == Materialized::View {
        engine.query(
            &format!("CREATE OR REPLACE VIEW {qualified} AS {sql}"),
            &what,
        )?;
        return Ok(None);
    }
    let planned = engine.sql(sql, &what)?;
    let columns: Vec<(String, arrow::datatypes::DataType)> = planned
        .schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect();
    for c in &model.order_by {
        if !columns.iter().any(|(n, _)| n == c) {
            return Err(Error::pipeline(
                &model.file,
                format!(
                    "model `{}`: order_by column `{c}` is not in its output",
                    model.name
                ),
            ));
        }
    }
    let order = write_order(model, &columns, keyed);
    let has_build_id = columns.iter().any(|(n, _)| n == "build_id");
    let select = if !model.contract.is_empty() {
        // A model contract: exactly the declared columns, in declared order, cast to their types.
        let declared: BTreeSet<&str> = model.contract.iter().map(|(n, _)| n.as_str()).collect();
        let produced: BTreeSet<&str> = columns
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| *n != "build_id" || declared.contains("build_id"))
            .collect();
        if let Some(missing) = declared
            .iter()
            .find(|c| !produced.contains(*c) && **c != "build_id")
        {
            return Err(Error::pipeline(
                &model.file,
                format!(
                    "model `{}`: declared column `{missing}` is not in its output",
                    model.name
                ),
            ));
        }
        if let Some(extra) = produced.iter().find(|c| !declared.contains(*c)) {
            return Err(Error::pipeline(
                &model.file,
                format!(
                    "model `{}`: output column `{extra}` is not declared in its properties",
                    model.name
                ),
            ));
        }
        let mut cols: Vec<String> = model
            .contract
            .iter()
            .map(|(n, t)| {
                if n == "build_id" && !has_build_id {
                    format!("{} AS build_id", quote(build_id))
                } else {
                    format!("arrow_cast(m.{c}, '{}') AS {c}", t.arrow(), c = ident(n))
                }
            })
            .collect();
        if !declared.contains("build_id") {
            cols.push(format!("{} AS build_id", quote(build_id)));
        }
        cols.join(", ")
    } else if has_build_id {
        "m.*".to_string()
    } else {
        format!("m.*, {} AS build_id", quote(build_id))
    };
    let order_sql: Vec<String> = order
        .iter()
        .map(|c| format!("c.{} ASC NULLS FIRST", ident(c)))
        .collect();
    let path = staging
        .join("models")
        .join(format!("{}.parquet", model.name));
    let final_sql = format!(
        "SELECT * FROM (SELECT {select} FROM ({sql}) m) c ORDER BY {}",
        order_sql.join(", ")
    );
    // (A model built in ranges but rendered over its whole inputs, `ranged` empty, is one query.)
    let by_key = model.build_in_ranges.filter(|_| !ranged.is_empty());
    let written = match (&model.sort_in_ranges, &by_key) {
        (_, Some(rows_per_range)) => crate::engine::ranges::write_by_key_ranges(
            engine,
            &final_sql,
            &order[0],
            ranged,
            // A range's memory is the whole query's.
            engine.rows_for_pool(*rows_per_range),
            &path,
            &what,
            |t| {
                Error::pipeline(
                    &model.file,
                    format!(
                        "model `{}`: build_in_ranges needs inputs with a text or integer column `{}` (its first order_by column){}",
                        model.name,
                        order[0],
                        match t {
                            arrow::datatypes::DataType::Null => ": none has it".to_string(),
                            t => format!(", not {t}"),
                        }
                    ),
                )
            },
            |range| {
                Error::pipeline(
                    &model.file,
                    format!(
                        "model `{}` is built in ranges of `{}`, but the range `{range}` of its inputs gave a row outside it: each row must depend only on input rows with its own `{}`",
                        model.name, order[0], order[0]
                    ),
                )
            },
        )?,
        (None, None) => {
            let df = engine.sql(&final_sql, &what)?;
            let schema = std::sync::Arc::new(df.schema().as_arrow().clone());
            let mut w = TableWriter::create(&path, schema, &[])?.encode_threads(engine.threads());
            engine.for_each_batch(df, &what, |b| w.write(&b))?;
            w.finish()?
        }
        (Some(rows_per_range), None) => crate::engine::ranges::write_sorted_in_ranges(
            engine,
            &format!("SELECT {select} FROM ({sql}) m"),
            &order,
            model.order_by.len(),
            // A range and its keys are held outside the pool, sorted here.
            engine.rows_for_pool(*rows_per_range),
            &path,
            &what,
            |t| {
                Error::pipeline(
                    &model.file,
                    format!(
                        "model `{}`: sort_in_ranges needs a text or integer first order_by column, not {t}",
                        model.name
                    ),
                )
            },
        )?,
    };
    engine.register_parquet_with(
        MODELS,
        &model.name,
        &path.to_string_lossy(),
        None,
        model.pushdown_filters,
    )?;
    Ok(Some(written))
}

fn write_logs(warehouse: &Warehouse, r: &BuildReport, error: Option<&str>) -> Result<()> {
    let root = &warehouse.root;
    // contract_results
    let mut b = TableBuilder::new(CONTRACT_RESULTS.name, CONTRACT_RESULTS.schema())?;
    let c = ContractCols::new(&b)?;
    for t in r.all_tests() {
        b.str(c.run_id, &r.run_id);
        b.str(c.build_id, &r.build_id);
        b.str(c.snapshot_id, &r.snapshot_id);
        b.ts(c.as_of, r.as_of);
        b.str(c.node, &t.node);
        b.str(c.node_kind, t.node_kind);
        b.str(c.rule, &t.spec.rule);
        b.str(c.test, &t.test);
        b.opt_str(c.column_name, t.spec.column.as_deref());
        b.str(
            c.severity,
            match t.spec.severity {
                crate::project::tests::Severity::Error => "error",
                crate::project::tests::Severity::Warn => "warn",
            },
        );
        b.str(c.on_fail, t.spec.on_fail.name());
        b.str(c.status, t.status.name());
        b.i64(c.failures, t.failures as i64);
        b.i64(c.rows_checked, t.rows_checked as i64);
        b.str(c.action, t.action);
        b.opt_str(c.contract_version, t.contract_version.as_deref());
        b.str(c.declared_in, &t.declared_in);
        b.str(
            c.sample,
            &serde_json::Value::Array(t.sample.clone()).to_string(),
        );
        b.end_row();
    }
    if b.rows() > 0 {
        logs::append(root, &CONTRACT_RESULTS, &r.run_id, &b.finish()?)?;
    }
    // freshness_log
    let mut b = TableBuilder::new(FRESHNESS_LOG.name, FRESHNESS_LOG.schema())?;
    let c = FreshnessCols::new(&b)?;
    for f in r.freshness() {
        b.str(c.run_id, &r.run_id);
        b.str(c.snapshot_id, &r.snapshot_id);
        b.ts(c.as_of, r.as_of);
        b.str(c.source, &f.source);
        b.str(c.loaded_at_field, &f.loaded_at_field);
        b.opt_ts(c.max_loaded_at, f.max_loaded_at);
        b.opt_f64(c.age_hours, f.age_hours);
        b.opt_f64(c.warn_after_hours, f.warn_after_hours);
        b.opt_f64(c.error_after_hours, f.error_after_hours);
        b.str(c.status, f.status);
        b.i64(c.future_rows, f.future_rows as i64);
        b.end_row();
    }
    if b.rows() > 0 && error.is_none() {
        logs::append(root, &FRESHNESS_LOG, &r.run_id, &b.finish()?)?;
    }
    // run_log
    let mut b = TableBuilder::new(RUN_LOG.name, RUN_LOG.schema())?;
    let c = RunCols::new(&b)?;
    b.str(c.run_id, &r.run_id);
    b.str(c.command, r.command);
    b.ts(c.started_at, r.started_at);
    b.ts(c.finished_at, logs::now_micros());
    b.str(c.snapshot_id, &r.snapshot_id);
    b.str(c.snapshot_dir, &r.snapshot_dir.display().to_string());
    b.ts(c.as_of, r.as_of);
    b.str(c.inputs_hash, &r.inputs_hash);
    b.str(c.pipelines_hash, &r.pipelines_hash);
    b.str(c.build_id, &r.build_id);
    b.str(c.gtmos_version, env!("CARGO_PKG_VERSION"));
    b.str(
        c.outcome,
        if error.is_some() {
            "failed"
        } else {
            r.outcome()
        },
    );
    b.opt_str(c.error, error);
    b.i64(c.published, r.published.len() as i64);
    b.i64(c.blocked, r.blocked.len() as i64);
    b.i64(c.quarantined_rows, r.quarantined_rows() as i64);
    b.i64(c.dead_lettered_rows, r.dead_lettered_rows() as i64);
    b.i64(c.warnings, r.warnings() as i64);
    b.f64(c.seconds, r.seconds);
    b.str(
        c.steps,
        &serde_json::to_string(&r.steps).unwrap_or_default(),
    );
    b.opt_str(
        c.brain_view_contracts_hash,
        r.brain_view_contracts_hash.as_deref(),
    );
    b.end_row();
    logs::append(root, &RUN_LOG, &r.run_id, &b.finish()?)?;
    Ok(())
}

crate::table_columns! { struct ContractCols {
    run_id: crate::builder::StrCol, build_id: crate::builder::StrCol, snapshot_id: crate::builder::StrCol,
    as_of: crate::builder::TsCol, node: crate::builder::StrCol, node_kind: crate::builder::StrCol,
    rule: crate::builder::StrCol, test: crate::builder::StrCol, column_name: crate::builder::StrCol,
    severity: crate::builder::StrCol, on_fail: crate::builder::StrCol, status: crate::builder::StrCol,
    failures: crate::builder::I64Col, rows_checked: crate::builder::I64Col, action: crate::builder::StrCol,
    contract_version: crate::builder::StrCol, declared_in: crate::builder::StrCol, sample: crate::builder::StrCol,
} }
crate::table_columns! { struct FreshnessCols {
    run_id: crate::builder::StrCol, snapshot_id: crate::builder::StrCol, as_of: crate::builder::TsCol,
    source: crate::builder::StrCol, loaded_at_field: crate::builder::StrCol, max_loaded_at: crate::builder::TsCol,
    age_hours: crate::builder::F64Col, warn_after_hours: crate::builder::F64Col, error_after_hours: crate::builder::F64Col,
    status: crate::builder::StrCol, future_rows: crate::builder::I64Col,
} }
crate::table_columns! { struct RunCols {
    run_id: crate::builder::StrCol, command: crate::builder::StrCol, started_at: crate::builder::TsCol,
    finished_at: crate::builder::TsCol, snapshot_id: crate::builder::StrCol, snapshot_dir: crate::builder::StrCol,
    as_of: crate::builder::TsCol, inputs_hash: crate::builder::StrCol, pipelines_hash: crate::builder::StrCol,
    build_id: crate::builder::StrCol, gtmos_version: crate::builder::StrCol, outcome: crate::builder::StrCol,
    error: crate::builder::StrCol, published: crate::builder::I64Col, blocked: crate::builder::I64Col,
    quarantined_rows: crate::builder::I64Col, dead_lettered_rows: crate::builder::I64Col, warnings: crate::builder::I64Col,
    seconds: crate::builder::F64Col, steps: crate::builder::StrCol,
    brain_view_contracts_hash: crate::builder::StrCol,
} }

/// Tables a build published, blocked, and the rules that quarantined rows, for the CLI summary.
pub fn quarantine_summary(r: &BuildReport) -> BTreeMap<(String, String), u64> {
    let mut m = BTreeMap::new();
    for s in &r.sources {
        for (rule, n) in &s.quarantined {
            *m.entry((s.table.clone(), rule.clone())).or_default() += n;
        }
    }
    m
}

/// Sources whose tests warned (names only).
pub fn warned_sources(r: &BuildReport) -> BTreeSet<String> {
    r.sources
        .iter()
        .filter(|s| {
            s.tests
                .iter()
                .any(|t| t.status != crate::project::tests::Status::Pass)
        })
        .map(|s| s.table.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A project of one model `t`: its SQL and the data tests of its schema entry (YAML).
    fn project(dir: &Path, sql: &str, data_tests: &str) -> Project {
        let root = dir.join("pipelines");
        for d in ["models", "sources", "tests"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(
            root.join("gtmos_project.yml"),
            "name: t\nversion: 1.0.0\nmodel-paths: [models]\n",
        )
        .unwrap();
        std::fs::write(root.join("models/t.sql"), sql).unwrap();
        std::fs::write(
            root.join("models/schema.yml"),
            format!("version: 2\nmodels:\n  - name: t\n    data_tests:\n{data_tests}"),
        )
        .unwrap();
        Project::load(&root).unwrap()
    }

    const KEYED: &str = "{{ config(order_by=['a', 'b']) }}\nselect 1 as a, 2 as b, 3 as c\n";

    #[test]
    fn only_a_uniqueness_test_over_order_by_columns_on_every_row_is_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = |tests: &str| key_test(project(dir.path(), KEYED, tests).model("t").unwrap());
        let combo = |cols: &str| {
            format!("      - unique_combination_of_columns: {{ columns: [{cols}] }}\n")
        };
        assert_eq!(key(&combo("a, b")), Some(0));
        assert_eq!(key(&combo("b")), Some(0));
        let not_null = "      - expression_is_true: { rule: r, expression: a is not null }\n";
        assert_eq!(key(&format!("{not_null}{}", combo("a, b"))), Some(1));
        assert_eq!(key(&combo("a, c")), None, "c is not in order_by");
        assert_eq!(
            key("      - unique_combination_of_columns: { columns: [a, b], where: c > 0 }\n"),
            None,
            "a test of some rows proves nothing of the others"
        );
        assert_eq!(key(not_null), None);
    }

    #[test]
    fn a_key_with_duplicates_is_written_in_the_total_order() {
        let dir = tempfile::tempdir().unwrap();
        // 40 rows of one key, listed with b descending, and one row of another key.
        let rows: Vec<String> = (0..40)
            .rev()
            .map(|b| format!("('k', {b})"))
            .chain(["('j', 7)".to_string()])
            .collect();
        let sql = format!(
            "{{{{ config(order_by=['a']) }}}}\nselect * from (values {}) v(a, b)\n",
            rows.join(", ")
        );
        let p = project(
            dir.path(),
            &sql,
            "      - unique_combination_of_columns: { columns: [a] }\n",
        );
        let model = p.model("t").unwrap();
        assert_eq!(key_test(model), Some(0));
        let engine = Engine::new(&p.engine, 2, &dir.path().join("spill"), 64 << 20).unwrap();
        let renderer = Renderer::new(&p, Some(0), Some("b1"));
        let sql = renderer
            .model(&p, model, &Renderer::relation, &|_| None)
            .unwrap();
        let render = |t: &str| renderer.text(t);
        let staging = dir.path().join("staging");
        let warehouse = Warehouse::new(&dir.path().join("wh"));
        let cx = contracts::Context {
            engine: &engine,
            warehouse: &warehouse,
            staging: &staging,
            run_id: "r1",
            as_of: 0,
            snapshot_as_of: 0,
            render: &render,
            window_range_rows: contracts::WINDOW_RANGE_ROWS,
        };
        let (written, tests) = build_model(&cx, &p, model, &sql, &[], "b1").unwrap();
        assert_eq!(tests[0].failures, 40, "the 40 rows of key k are duplicates");
        let rows = crate::table_io::json_rows(&written.unwrap().path).unwrap();
        let order: Vec<(String, i64)> = rows
            .iter()
            .map(|r| {
                (
                    r["a"].as_str().unwrap().to_string(),
                    r["b"].as_i64().unwrap(),
                )
            })
            .collect();
        let mut expected = vec![("j".to_string(), 7)];
        expected.extend((0..40).map(|b| ("k".to_string(), b)));
        assert_eq!(order, expected, "ties broken by b, the next column");
    }
}
