//! The pipelines project (`pipelines/`): the rules analysts edit, loaded and validated before
//! anything runs (SPEC §2, §6).
//!
//! Layout, dbt-style: `gtmos_project.yml` (name, version, vars, paths, test defaults, engine
//! settings, freshness SLOs); `sources/*.yml` (the schema registry, with each source's data
//! tests and freshness); `models/**/*.sql` with `models/**/*.yml` properties (description,
//! config, column tests); `tests/*.sql` singular tests returning failing rows. Inputs are named
//! in SQL with `{{ ref('model') }}` and `{{ source('snapshot', 'table') }}`, so the DAG is
//! derived from the SQL; an unknown reference or a cycle is an error before anything runs.
//! Hands the build a [`Project`] in execution order.

pub mod data_tests;
pub mod files;
pub mod roster;
pub mod template;
pub mod unit_tests;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;
use sha2::{Digest, Sha256};

use self::data_tests::{Severity, TestSpec, Threshold};
use self::template::{ConfigValue, Piece, Ref};
use crate::engine::EngineConfig;
use crate::error::{Error, Result};
use crate::schema::{Registry, TableSchema};
use crate::table_io::hex;

pub const PROJECT_FILE: &str = "gtmos_project.yml";

/// Source freshness thresholds, in hours.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Freshness {
    pub loaded_at_field: String,
    pub warn_after_hours: Option<f64>,
    pub error_after_hours: Option<f64>,
}

/// One source table's contract: its tests in evaluation order and its freshness.
#[derive(Debug, Clone)]
pub struct SourceContract {
    pub table: String,
    pub file: PathBuf,
    /// The declared `contract_version`, or a hash of the table's declaration.
    pub contract_version: String,
    /// Column tests in column order, then table tests in declared order.
    pub tests: Vec<TestSpec>,
    pub freshness: Option<Freshness>,
    /// Other sources its relationships tests read (their contracts run first).
    pub depends_on: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Materialized {
    /// Written to `warehouse/published/<model>.parquet`.
    Table,
    /// Not written; other models read it as a view.
    View,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub name: String,
    pub file: PathBuf,
    pub description: Option<String>,
    pub pieces: Vec<Piece>,
    pub refs: Vec<Ref>,
    pub materialized: Materialized,
    /// Columns the published table is sorted by (all columns when empty), for byte-identical output.
    pub order_by: Vec<String>,
    pub tests: Vec<TestSpec>,
    /// Tags for selection (`--select tag:recognition`).
    pub tags: Vec<String>,
    /// The date column by which closed months are frozen (`config(freeze='month')`).
    pub freeze: Option<String>,
    /// Declared columns with types: when every output column is declared, the output is cast
    /// to them and checked (a dbt model contract).
    pub contract: Vec<(String, crate::schema::ColumnType)>,
    /// `config(blocked_inputs='last_good')`: run on the last good version of a blocked input
    /// instead of being blocked with it (per-metric publish gating).
    pub reads_last_good: bool,
    /// The declared `config(definition_version=…)`.
    pub definition_version: Option<String>,
    /// sha256 of the SQL file's text.
    pub text_sha256: String,
    /// `config(sort_in_ranges=N)`: published sorted piece by piece, about N rows per range of
    /// the first order_by column with a 4 GiB memory pool (in proportion with others), instead
    /// of by one global sort (for the largest tables).
    pub sort_in_ranges: Option<u64>,
    /// `config(build_in_ranges=N)`: the model's rows each depend only on input rows with the
    /// same value of its first order_by column (a per-account model), so it runs range by range
    /// of that column, about N input rows a range with a 4 GiB memory pool (in proportion with
    /// others), each range sorted and appended in order (for models whose whole query would
    /// not fit the memory pool).
    pub build_in_ranges: Option<u64>,
    /// `config(pushdown_filters=true)`: models reading this table evaluate their filters while
    /// decoding it (see [`crate::engine::Engine::register_parquet_with`]).
    pub pushdown_filters: bool,
}

impl Model {
    /// The published columns over the model's query `m`, whose output columns are `produced`:
    /// with a contract, exactly the declared columns in declared order, cast to their types;
    /// always with the run's `build_id`.
    pub fn output_select(&self, produced: &[&str], build_id: &str) -> Result<String> {
        use crate::engine::{ident, quote};
        let has_build_id = produced.contains(&"build_id");
        if self.contract.is_empty() {
            return Ok(if has_build_id {
                "m.*".to_string()
            } else {
                format!("m.*, {} AS build_id", quote(build_id))
            });
        }
        let declared: BTreeSet<&str> = self.contract.iter().map(|(n, _)| n.as_str()).collect();
        let produced: BTreeSet<&str> = produced
            .iter()
            .copied()
            .filter(|n| *n != "build_id" || declared.contains("build_id"))
            .collect();
        if let Some(missing) = declared
            .iter()
            .find(|c| !produced.contains(*c) && **c != "build_id")
        {
            return Err(Error::pipeline(
                &self.file,
                format!(
                    "model `{}`: declared column `{missing}` is not in its output",
                    self.name
                ),
            ));
        }
        if let Some(extra) = produced.iter().find(|c| !declared.contains(*c)) {
            return Err(Error::pipeline(
                &self.file,
                format!(
                    "model `{}`: output column `{extra}` is not declared in its properties",
                    self.name
                ),
            ));
        }
        let mut cols: Vec<String> = self
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
        Ok(cols.join(", "))
    }

    /// The declared columns as an Arrow schema (all nullable), e.g. for `closed.<model>`.
    pub fn contract_schema(&self) -> arrow::datatypes::SchemaRef {
        std::sync::Arc::new(arrow::datatypes::Schema::new(
            self.contract
                .iter()
                .map(|(n, t)| arrow::datatypes::Field::new(n, t.arrow(), true))
                .collect::<Vec<_>>(),
        ))
    }
}

/// A `tests/*.sql` file: a query that returns failing rows.
#[derive(Debug, Clone)]
pub struct SingularTest {
    pub name: String,
    pub file: PathBuf,
    pub pieces: Vec<Piece>,
    pub refs: Vec<Ref>,
    pub severity: Severity,
    pub error_if: Option<Threshold>,
    pub warn_if: Option<Threshold>,
}

impl SingularTest {
    pub fn spec(&self) -> TestSpec {
        TestSpec {
            kind: data_tests::TestKind::Expression("false".into()),
            column: None,
            rule: self.name.clone(),
            severity: self.severity,
            on_fail: data_tests::OnFail::None,
            error_if: self.error_if.clone(),
            warn_if: self.warn_if.clone(),
            where_: None,
        }
    }
}

/// A freshness SLO: the share of builds in a rolling window whose sources were all fresher
/// than `max_age_hours` must reach `target`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Slo {
    pub name: String,
    pub description: String,
    pub sources: Vec<String>,
    pub max_age_hours: f64,
    pub target: f64,
    pub window_days: f64,
}

#[derive(Debug, Clone)]
pub struct Project {
    pub dir: PathBuf,
    pub name: String,
    pub version: String,
    /// Project vars, as the SQL text `{{ var('x') }}` renders to.
    pub vars: BTreeMap<String, String>,
    pub registry: Registry,
    /// Source contracts in execution order (referenced sources first).
    pub sources: Vec<SourceContract>,
    /// Models in execution order (inputs first).
    pub models: Vec<Model>,
    pub tests: Vec<SingularTest>,
    /// `unit_tests:` of the model properties files: models run on given rows, against expected rows.
    pub unit_tests: Vec<unit_tests::UnitTest>,
    pub slos: Vec<Slo>,
    /// Decision nodes (SPEC §13), evaluated by their models every build.
    pub decision_nodes: Vec<DecisionNode>,
    pub engine: EngineConfig,
    /// The brain-ready view contracts (SPEC §10), when the project declares them.
    pub views: Option<crate::views::Catalog>,
    /// sha256 over every file of the project (relative path and bytes, in path order).
    pub hash: String,
}

/// Every regular file below `dir`, sorted.
fn files_below(dir: &Path, ext: &[&str]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| Error::io("cannot read directory", &d, e))? {
            let p = e
                .map_err(|e| Error::io("cannot read directory", &d, e))?
                .path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with('.') {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if ext.is_empty() || ext.iter().any(|x| name.ends_with(x)) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// sha256 over the project's files: `relative path \0 bytes \0` in path order.
fn project_hash(dir: &Path) -> Result<String> {
    let mut h = Sha256::new();
    for f in files_below(dir, &[])? {
        let rel = f
            .strip_prefix(dir)
            .unwrap_or(&f)
            .to_string_lossy()
            .replace('\\', "/");
        let bytes = std::fs::read(&f).map_err(|e| Error::io("cannot read", &f, e))?;
        h.update(rel.as_bytes());
        h.update([0]);
        h.update(&bytes);
        h.update([0]);
    }
    Ok(hex(&h.finalize()))
}

impl Project {
    /// Replace declared vars for one run (`--vars`); an undeclared name is a usage error, so a
    /// typo never silently leaves the default in force.
    pub fn override_vars(&mut self, overrides: &BTreeMap<String, String>) -> Result<()> {
        for (name, value) in overrides {
            match self.vars.get_mut(name) {
                Some(v) => *v = value.clone(),
                None => {
                    return Err(Error::usage_hint(
                        format!(
                            "--vars: `{name}` is not a var of {}",
                            self.dir.join(PROJECT_FILE).display()
                        ),
                        "declare it under `vars:` in gtmos_project.yml first",
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn load(dir: &Path) -> Result<Project> {
        let pfile = dir.join(PROJECT_FILE);
        if !pfile.exists() {
            return Err(Error::pipeline(
                &pfile,
                "not found: this is not a gtmos pipelines project",
            )
            .with_hint("pass --project DIR pointing at a directory with gtmos_project.yml"));
        }
        let p: files::ProjectFile = files::read(&pfile, "project file")?;
        let name = p.name.clone().unwrap_or_else(|| "gtmos".into());
        let version = p
            .version
            .as_ref()
            .and_then(scalar_sql)
            .unwrap_or_else(|| "0".into());
        let path_of = |key: &Option<files::Paths>, default: &str| -> PathBuf {
            dir.join(key.as_ref().and_then(|p| p.first()).unwrap_or(default))
        };
        let mut vars = BTreeMap::new();
        for (k, v) in &p.vars {
            let v = scalar_sql(v).ok_or_else(|| {
                Error::pipeline(&pfile, format!("var `{k}` must be a scalar value"))
            })?;
            vars.insert(k.clone(), v);
        }
        let engine = EngineConfig {
            target_partitions: p
                .engine
                .target_partitions
                .map(|n| n.max(1) as usize)
                .unwrap_or(EngineConfig::default().target_partitions),
            ..EngineConfig::default()
        };
        let default_materialized = match p.models.materialized.as_deref() {
            None | Some("table") => Materialized::Table,
            Some("view") => Materialized::View,
            Some(x) => {
                return Err(Error::pipeline(
                    &pfile,
                    format!("models.materialized `{x}` must be table or view"),
                ));
            }
        };
        let slos = parse_slos(&pfile, &p.freshness_slos)?;
        let decision_nodes = parse_decision_nodes(&pfile, &p.decision_nodes, &vars)?;

        let registry = Registry::load_dir(&path_of(&p.source_paths, "sources"))?;
        let mut sources = Vec::new();
        for t in registry.tables() {
            sources.push(source_contract(t, &p.data_tests)?);
        }
        let sources = order_sources(sources)?;
        for slo in &slos {
            for s in &slo.sources {
                if registry.table(s).is_none() {
                    return Err(Error::pipeline(
                        &pfile,
                        format!("freshness SLO `{}` names unknown source `{s}`", slo.name),
                    ));
                }
            }
        }

        let (mut models, unit_tests) = load_models(
            &path_of(&p.model_paths, "models"),
            default_materialized,
            &registry,
        )?;
        let views = crate::views::Catalog::load(&path_of(&p.view_paths, "views"))?;
        if let Some(c) = &views {
            for (name, sql, order_by, description) in c.models() {
                models.push(generated_view_model(
                    &c.file,
                    name,
                    &sql,
                    order_by,
                    description,
                )?);
            }
        }
        let tests = load_singular_tests(&path_of(&p.test_paths, "tests"))?;
        let mut project = Project {
            dir: dir.to_path_buf(),
            name,
            version,
            vars,
            registry,
            sources,
            models,
            tests,
            unit_tests,
            slos,
            decision_nodes,
            engine,
            views,
            hash: project_hash(dir)?,
        };
        project.check_and_order()?;
        for n in &project.decision_nodes {
            if project.model(&n.model).is_none() {
                return Err(Error::pipeline(
                    &pfile,
                    format!(
                        "decision node `{}` names unknown model `{}`",
                        n.name, n.model
                    ),
                ));
            }
        }
        project.check_templates()?;
        for (i, t) in project.unit_tests.iter().enumerate() {
            t.check(&project)?;
            if project.unit_tests[..i].iter().any(|x| x.name == t.name) {
                return Err(Error::pipeline(
                    &t.file,
                    format!("unit test `{}` is declared twice", t.name),
                ));
            }
        }
        // A roster role no node knows would silently grant nothing: say so now.
        let roster = roster::Roster::of(&pfile, p.decision_roster)?;
        for (who, roles) in &roster.people {
            for role in roles {
                let known = roster::MODEL_APPROVERS.contains(&role.as_str())
                    || project
                        .decision_nodes
                        .iter()
                        .any(|n| &n.owner == role || n.approvers.contains(role));
                if !known {
                    return Err(Error::pipeline(
                        &pfile,
                        format!(
                            "decision_roster: `{who}` holds `{role}`, which is no decision node's owner or approver"
                        ),
                    ));
                }
            }
        }
        Ok(project)
    }

    /// Every template of the project, checked before anything runs: the source tests' (which
    /// are otherwise parsed only when their contract runs) and every model's vars, each
    /// error naming its file (and line).
    fn check_templates(&self) -> Result<()> {
        let var_known =
            |v: &str, default: &Option<String>| default.is_some() || self.vars.contains_key(v);
        let check_spec = |file: &Path, owner: &str, spec: &TestSpec| -> Result<()> {
            let fail = |why: String| {
                Error::pipeline(file, format!("`{owner}`, rule `{}`: {why}", spec.rule))
            };
            for text in spec.templates() {
                let pieces = template::parse(text).map_err(|e| fail(e.message))?;
                for p in &pieces {
                    let Piece::Call { call, .. } = p else {
                        continue;
                    };
                    match call {
                        template::Call::Var(v, d) if !var_known(v, d) => {
                            return Err(fail(format!(
                                "var `{v}` is not set in the project's vars"
                            )));
                        }
                        template::Call::Ref(m) if self.model(m).is_none() => {
                            return Err(fail(format!("ref('{m}') names no model")));
                        }
                        template::Call::Source(_, t) if self.registry.table(t).is_none() => {
                            return Err(fail(format!(
                                "source table `{t}` is not in the schema registry"
                            )));
                        }
                        _ => {}
                    }
                }
            }
            Ok(())
        };
        for c in &self.sources {
            for spec in &c.tests {
                check_spec(&c.file, &c.table, spec)?;
            }
        }
        for m in &self.models {
            for spec in &m.tests {
                check_spec(&m.file, &m.name, spec)?;
            }
        }
        for m in &self.models {
            for p in &m.pieces {
                if let Piece::Call {
                    call: template::Call::Var(v, d),
                    line,
                } = p
                    && !var_known(v, d)
                {
                    return Err(Error::pipeline(
                        &m.file,
                        format!("line {line}: var `{v}` is not set in the project's vars"),
                    )
                    .with_hint("declare it under `vars:` in gtmos_project.yml"));
                }
            }
        }
        Ok(())
    }

    /// Validate every reference and sort models so inputs come first; a cycle is an error.
    fn check_and_order(&mut self) -> Result<()> {
        let names: BTreeSet<String> = self.models.iter().map(|m| m.name.clone()).collect();
        let check = |file: &Path, refs: &[Ref], pieces: &[Piece]| -> Result<()> {
            for r in refs {
                let ok = match r {
                    Ref::Model(m) => names.contains(m),
                    Ref::Source(t) => self.registry.table(t).is_some(),
                };
                if !ok {
                    let line = pieces
                        .iter()
                        .find_map(|p| match p {
                            Piece::Call {
                                call: template::Call::Ref(m),
                                line,
                            } if Ref::Model(m.clone()) == *r => Some(*line),
                            Piece::Call {
                                call: template::Call::Source(_, t),
                                line,
                            } if Ref::Source(t.clone()) == *r => Some(*line),
                            _ => None,
                        })
                        .unwrap_or(1);
                    let what = match r {
                        Ref::Model(m) => format!("ref('{m}') names no model"),
                        Ref::Source(t) => {
                            format!("source('snapshot', '{t}') names no declared source table")
                        }
                    };
                    return Err(Error::pipeline(file, format!("line {line}: {what}")));
                }
            }
            Ok(())
        };
        for m in &self.models {
            check(&m.file, &m.refs, &m.pieces)?;
        }
        for t in &self.tests {
            check(&t.file, &t.refs, &t.pieces)?;
        }
        // Topological order (Kahn), ties broken by name for a stable order.
        let mut remaining: BTreeMap<String, BTreeSet<String>> = self
            .models
            .iter()
            .map(|m| {
                let deps = m
                    .refs
                    .iter()
                    .filter_map(|r| {
                        if let Ref::Model(x) = r {
                            Some(x.clone())
                        } else {
                            None
                        }
                    })
                    .collect();
                (m.name.clone(), deps)
            })
            .collect();
        let mut order = Vec::new();
        while !remaining.is_empty() {
            let ready: Vec<String> = remaining
                .iter()
                .filter(|(_, d)| d.is_empty())
                .map(|(n, _)| n.clone())
                .collect();
            if ready.is_empty() {
                let cycle = find_cycle(&remaining);
                let file = self
                    .models
                    .iter()
                    .find(|m| m.name == cycle[0])
                    .map(|m| m.file.clone())
                    .unwrap_or_default();
                return Err(Error::pipeline(
                    &file,
                    format!("models form a cycle: {}", cycle.join(" → ")),
                ));
            }
            for n in ready {
                remaining.remove(&n);
                for d in remaining.values_mut() {
                    d.remove(&n);
                }
                order.push(n);
            }
        }
        let mut by_name: BTreeMap<String, Model> =
            self.models.drain(..).map(|m| (m.name.clone(), m)).collect();
        self.models = order.iter().filter_map(|n| by_name.remove(n)).collect();
        Ok(())
    }

    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.iter().find(|m| m.name == name)
    }

    pub fn source(&self, table: &str) -> Option<&SourceContract> {
        self.sources.iter().find(|s| s.table == table)
    }

    /// Every source and model a model depends on, transitively.
    pub fn upstream(&self, model: &str) -> BTreeSet<Ref> {
        let mut out = BTreeSet::new();
        let mut stack = vec![Ref::Model(model.to_string())];
        while let Some(r) = stack.pop() {
            if let Ref::Model(m) = &r
                && let Some(model) = self.model(m)
            {
                for x in &model.refs {
                    if out.insert(x.clone()) {
                        stack.push(x.clone());
                    }
                }
            }
        }
        out
    }

    /// `{{ definition_version }}` of a model: its declared version, then `+` and 8 hex digits of
    /// sha256 over its SQL, every upstream model's SQL and the values of the vars they read.
    pub fn definition_version(&self, model: &str) -> Option<String> {
        let m = self.model(model)?;
        let declared = m.definition_version.as_ref()?;
        let mut names: Vec<&str> = vec![model];
        let up = self.upstream(model);
        names.extend(up.iter().filter_map(|r| match r {
            Ref::Model(x) => Some(x.as_str()),
            Ref::Source(_) => None,
        }));
        let mut content = String::new();
        let mut vars = BTreeSet::new();
        for n in names {
            if let Some(x) = self.model(n) {
                content.push_str(&format!("{n}:{}\n", x.text_sha256));
                for p in &x.pieces {
                    if let Piece::Call {
                        call: template::Call::Var(v, _),
                        ..
                    } = p
                    {
                        vars.insert(v.clone());
                    }
                }
            }
        }
        for v in vars {
            content.push_str(&format!("{v}={}\n", self.vars.get(&v).map_or("", |x| x)));
        }
        let h = crate::table_io::sha256_hex(content.as_bytes());
        Some(format!("{declared}+{}", &h[..8]))
    }
}

/// Renders a project's templates for one run: `ref()` and `source()` become the engine's
/// `models.<name>` and `sources.<table>`, `{{ as_of }}` a UTC timestamp literal.
pub struct Renderer {
    vars: BTreeMap<String, String>,
    as_of: Option<String>,
    as_of_date: Option<String>,
    build_id: Option<String>,
    snapshot_id: Option<String>,
    inputs_hash: Option<String>,
    frozen_through: Option<String>,
    /// Per model and source: the sources it reads, with their load-time column if any.
    inputs: BTreeMap<String, Vec<(String, Option<String>)>>,
    /// `{{ inputs_loaded_at(…) }}` per model and source, for this as_of and snapshot.
    inputs_loaded_at: BTreeMap<String, String>,
    snapshot_as_of: Option<i64>,
    as_of_micros: Option<i64>,
}

impl Renderer {
    /// Without `as_of`, `{{ as_of }}` stays visible (compiling without a snapshot).
    pub fn new(project: &Project, as_of: Option<i64>, build_id: Option<&str>) -> Renderer {
        use crate::calendar::{Day, MICROS_PER_DAY};
        let loaded_at = |t: &str| {
            project
                .registry
                .table(t)
                .and_then(|t| t.loaded_at_field.clone())
        };
        let mut inputs = BTreeMap::new();
        for m in &project.models {
            let sources: Vec<(String, Option<String>)> = project
                .upstream(&m.name)
                .into_iter()
                .filter_map(|r| match r {
                    Ref::Source(t) => Some((t.clone(), loaded_at(&t))),
                    Ref::Model(_) => None,
                })
                .collect();
            inputs.insert(m.name.clone(), sources);
        }
        for s in &project.sources {
            inputs.insert(
                s.table.clone(),
                vec![(s.table.clone(), loaded_at(&s.table))],
            );
        }
        let mut r = Renderer {
            vars: project.vars.clone(),
            as_of: as_of.map(crate::engine::timestamp_literal),
            as_of_date: as_of
                .map(|t| format!("DATE '{}'", Day(t.div_euclid(MICROS_PER_DAY) as i32).iso())),
            build_id: build_id.map(crate::engine::quote),
            snapshot_id: None,
            inputs_hash: None,
            frozen_through: None,
            inputs,
            inputs_loaded_at: BTreeMap::new(),
            snapshot_as_of: None,
            as_of_micros: as_of,
        };
        r.inputs_loaded_at = r.loaded_at_sql();
        r
    }

    /// The snapshot's own as_of: when its tables without a load-time column were exported.
    pub fn with_snapshot_as_of(mut self, micros: i64) -> Renderer {
        self.snapshot_as_of = Some(micros);
        self.inputs_loaded_at = self.loaded_at_sql();
        self
    }

    /// `{{ inputs_loaded_at('x') }}`: the newest input `x` was built from — the newest load
    /// time, at or before as_of, of the sources it reads (or of `x` itself, a source) that
    /// declare a `loaded_at_field`; without any, the snapshot's export (its as_of, never later
    /// than the build's). A view over `x` is stale when nothing new reached it within its
    /// threshold: every feed it reads stopped, or the build judges a snapshot at a later as_of
    /// than the snapshot's. Null when its only inputs have no rows (read as stale).
    fn loaded_at_sql(&self) -> BTreeMap<String, String> {
        use crate::engine::{SOURCES, ident, timestamp_literal};
        let as_of = self.as_of.clone().unwrap_or_else(|| "{{ as_of }}".into());
        let exported = match (self.snapshot_as_of, self.as_of_micros) {
            (Some(s), Some(a)) => timestamp_literal(s.min(a)),
            _ => as_of.clone(),
        };
        self.inputs
            .iter()
            .map(|(name, sources)| {
                let mut terms: Vec<String> = sources
                    .iter()
                    .filter_map(|(t, field)| {
                        field.as_ref().map(|f| {
                            format!(
                                "(select max({f}) from {SOURCES}.{t} where {f} <= {as_of})",
                                f = ident(f),
                                t = ident(t)
                            )
                        })
                    })
                    .collect();
                let sql = match terms.len() {
                    0 if sources.is_empty() => {
                        "arrow_cast(NULL, 'Timestamp(µs, \"UTC\")')".to_string()
                    }
                    0 => exported.clone(),
                    1 => terms.remove(0),
                    _ => format!("greatest({})", terms.join(", ")),
                };
                (name.clone(), sql)
            })
            .collect()
    }

    /// The last month already frozen in `closed_periods/` (its first day), for `{{ frozen_through }}`.
    pub fn with_frozen_through(mut self, month: Option<crate::calendar::Day>) -> Renderer {
        self.frozen_through = month.map(|d| format!("DATE '{}'", d.iso()));
        self
    }

    /// The snapshot's id and inputs hash, for `{{ snapshot_id }}` and `{{ inputs_hash }}`.
    pub fn with_snapshot(mut self, snapshot_id: &str, inputs_hash: &str) -> Renderer {
        self.snapshot_id = Some(crate::engine::quote(snapshot_id));
        self.inputs_hash = Some(crate::engine::quote(inputs_hash));
        self
    }

    pub fn relation(r: &Ref) -> String {
        use crate::engine::{MODELS, SOURCES, ident};
        match r {
            Ref::Model(m) => format!("{MODELS}.{}", ident(m)),
            Ref::Source(t) => format!("{SOURCES}.{}", ident(t)),
        }
    }

    /// Render a parsed file; errors name the file and line.
    pub fn file(&self, file: &Path, pieces: &[Piece]) -> Result<String> {
        self.render(file, pieces, &Renderer::relation, None, &|_| None)
    }

    /// Render a model for one run: `relation` resolves its inputs (the last good version of a
    /// blocked one, for models that read it) and `input_state` says which inputs were blocked.
    pub fn model(
        &self,
        project: &Project,
        model: &Model,
        relation: &dyn Fn(&Ref) -> String,
        input_state: &dyn Fn(&str) -> Option<template::InputState>,
    ) -> Result<String> {
        let version = project
            .definition_version(&model.name)
            .map(|v| crate::engine::quote(&v));
        self.render(&model.file, &model.pieces, relation, version, input_state)
    }

    fn render(
        &self,
        file: &Path,
        pieces: &[Piece],
        relation: &dyn Fn(&Ref) -> String,
        definition_version: Option<String>,
        input_state: &dyn Fn(&str) -> Option<template::InputState>,
    ) -> Result<String> {
        let ctx = template::RenderContext {
            vars: &self.vars,
            as_of: self.as_of.clone(),
            as_of_date: self.as_of_date.clone(),
            build_id: self.build_id.clone(),
            snapshot_id: self.snapshot_id.clone(),
            inputs_hash: self.inputs_hash.clone(),
            frozen_through: self.frozen_through.clone(),
            relation,
            definition_version,
            input_state,
            inputs_loaded_at: &self.inputs_loaded_at,
        };
        template::render(pieces, &ctx)
            .map_err(|e| Error::pipeline(file, format!("line {}: {}", e.line, e.message)))
    }

    /// Render a test expression or other snippet.
    pub fn text(&self, text: &str) -> Result<String> {
        let pieces = template::parse(text)
            .map_err(|e| Error::usage(format!("template `{text}`: {}", e.message)))?;
        self.file(Path::new("(expression)"), &pieces)
    }
}

/// One cycle among the models left (each still has an unmet dependency).
fn find_cycle(remaining: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let start = remaining.keys().next().cloned().unwrap_or_default();
    let mut path = vec![start.clone()];
    let mut cur = start;
    loop {
        let next = remaining
            .get(&cur)
            .and_then(|d| d.iter().next())
            .cloned()
            .unwrap_or_default();
        if let Some(i) = path.iter().position(|p| *p == next) {
            let mut cycle = path[i..].to_vec();
            cycle.push(next);
            return cycle;
        }
        path.push(next.clone());
        cur = next;
    }
}

/// A YAML scalar as the SQL text a var renders to.
/// `--vars '{name: value, …}'`: a YAML mapping of var names to scalars.
pub fn parse_var_overrides(text: &str) -> Result<BTreeMap<String, String>> {
    let bad = |why: String| {
        Error::usage_hint(
            format!("--vars: {why}"),
            "give a YAML mapping of var names to values: --vars '{score_history_weeks: 52}'",
        )
    };
    let value: Value = serde_yaml_ng::from_str(text).map_err(|e| bad(e.to_string()))?;
    let Value::Mapping(m) = value else {
        return Err(bad("not a mapping".into()));
    };
    let mut out = BTreeMap::new();
    for (k, v) in &m {
        let name = k
            .as_str()
            .ok_or_else(|| bad(format!("{k:?} is not a var name")))?;
        let v = scalar_sql(v).ok_or_else(|| bad(format!("`{name}` must be a scalar")))?;
        out.insert(name.to_string(), v);
    }
    Ok(out)
}

fn scalar_sql(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A decision node of the project file (SPEC §13): the model that evaluates it and what every
/// proposal carries into the decision log.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DecisionNode {
    pub name: String,
    pub model: String,
    pub owner: String,
    pub approvers: Vec<String>,
    /// Names of the vars that are its thresholds (recorded with every proposal).
    pub thresholds: Vec<String>,
    pub risk_notes: Option<String>,
    pub reversal_plan: Option<String>,
    pub review_after_days: i64,
}

fn parse_decision_nodes(
    file: &Path,
    decls: &[files::DecisionNodeDecl],
    vars: &BTreeMap<String, String>,
) -> Result<Vec<DecisionNode>> {
    let mut out: Vec<DecisionNode> = Vec::new();
    for n in decls {
        let name = n.name.trim().to_string();
        if let Some(t) = n.thresholds.iter().find(|t| !vars.contains_key(*t)) {
            return Err(Error::pipeline(
                file,
                format!("decision node `{name}`: threshold `{t}` is not a var of the project"),
            ));
        }
        if out.iter().any(|x| x.name == name) {
            return Err(Error::pipeline(
                file,
                format!("decision node `{name}` is declared twice"),
            ));
        }
        let trimmed = |s: &Option<String>| s.as_ref().map(|s| s.trim().to_string());
        out.push(DecisionNode {
            model: n.model.trim().to_string(),
            owner: n.owner.trim().to_string(),
            approvers: n.approvers.clone(),
            thresholds: n.thresholds.clone(),
            risk_notes: trimmed(&n.risk_notes),
            reversal_plan: trimmed(&n.reversal_plan),
            review_after_days: n.review_after_days,
            name,
        });
    }
    Ok(out)
}

fn parse_slos(file: &Path, decls: &[files::SloDecl]) -> Result<Vec<Slo>> {
    let mut out = Vec::new();
    for s in decls {
        if !(0.0..=1.0).contains(&s.target) {
            return Err(Error::pipeline(
                file,
                format!("freshness SLO `{}`: target must be in [0, 1]", s.name),
            ));
        }
        out.push(Slo {
            name: s.name.clone(),
            description: s.description.clone(),
            sources: s.sources.clone(),
            max_age_hours: s.max_age_hours,
            target: s.target,
            window_days: s.window_days,
        });
    }
    Ok(out)
}

fn source_contract(t: &TableSchema, defaults: &BTreeMap<String, Value>) -> Result<SourceContract> {
    let mut tests = Vec::new();
    let default_for = |kind: &str| defaults.get(kind);
    for c in &t.columns {
        for entry in &c.tests {
            let kind = crate::schema::test_kind(entry).map(|k| k.0).unwrap_or("");
            tests.push(data_tests::parse_test(
                &t.file,
                &t.name,
                Some((&c.name, c.column_type)),
                entry,
                default_for(kind),
            )?);
        }
    }
    for entry in &t.decl.data_tests {
        let kind = crate::schema::test_kind(entry).map(|k| k.0).unwrap_or("");
        tests.push(data_tests::parse_test(
            &t.file,
            &t.name,
            None,
            entry,
            default_for(kind),
        )?);
    }
    // Set tests may only name declared columns.
    for s in &tests {
        let cols: Vec<&String> = match &s.kind {
            data_tests::TestKind::UniqueCombination(c) => c.iter().collect(),
            data_tests::TestKind::Deduplicate { key, order_by } => {
                key.iter().chain(order_by).collect()
            }
            data_tests::TestKind::VersionSequence {
                key,
                version,
                order_by,
            } => key.iter().chain(order_by).chain([version]).collect(),
            _ => Vec::new(),
        };
        for c in cols {
            if t.column(c).is_none() {
                return Err(Error::pipeline(
                    &t.file,
                    format!(
                        "table `{}`: rule `{}` names unknown column `{c}`",
                        t.name, s.rule
                    ),
                ));
            }
        }
    }
    // (The registry refuses freshness without a loaded_at_field.)
    let freshness = match (&t.decl.freshness, &t.loaded_at_field) {
        (Some(f), Some(field)) => Some(Freshness {
            loaded_at_field: field.clone(),
            warn_after_hours: f.warn_after.as_ref().map(crate::schema::After::hours),
            error_after_hours: f.error_after.as_ref().map(crate::schema::After::hours),
        }),
        _ => None,
    };
    let mut depends_on: BTreeSet<String> = BTreeSet::new();
    for s in &tests {
        match &s.kind {
            data_tests::TestKind::Relationships { to, .. } if *to != t.name => {
                depends_on.insert(to.clone());
            }
            data_tests::TestKind::Exists { relation, .. } => {
                let pieces = template::parse(relation).map_err(|e| {
                    Error::pipeline(
                        &t.file,
                        format!("table `{}`, rule `{}`: {}", t.name, s.rule, e.message),
                    )
                })?;
                for r in template::refs(&pieces) {
                    match r {
                        Ref::Source(x) if x != t.name => {
                            depends_on.insert(x);
                        }
                        Ref::Source(_) => {}
                        Ref::Model(m) => {
                            return Err(Error::pipeline(
                                &t.file,
                                format!(
                                    "table `{}`, rule `{}`: a source test cannot read model `{m}`",
                                    t.name, s.rule
                                ),
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let depends_on: Vec<String> = depends_on.into_iter().collect();
    let contract_version = match t.decl.contract_version.as_ref().and_then(scalar_sql) {
        Some(v) => v,
        None => {
            let canonical = serde_json::to_string(&t.raw).unwrap_or_default();
            format!(
                "sha256:{}",
                &crate::table_io::sha256_hex(canonical.as_bytes())[..12]
            )
        }
    };
    Ok(SourceContract {
        table: t.name.clone(),
        file: t.file.clone(),
        contract_version,
        tests,
        freshness,
        depends_on,
    })
}

/// Sources whose relationships read other sources run after them; a cycle is an error.
fn order_sources(mut sources: Vec<SourceContract>) -> Result<Vec<SourceContract>> {
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    while !sources.is_empty() {
        let before = sources.len();
        let mut i = 0;
        while i < sources.len() {
            if sources[i].depends_on.iter().all(|d| done.contains(d)) {
                let s = sources.remove(i);
                done.insert(s.table.clone());
                out.push(s);
            } else {
                i += 1;
            }
        }
        if sources.len() == before {
            let names: Vec<&str> = sources.iter().map(|s| s.table.as_str()).collect();
            return Err(Error::pipeline(
                &sources[0].file,
                format!(
                    "relationships tests between sources form a cycle among: {}",
                    names.join(", ")
                ),
            ));
        }
    }
    Ok(out)
}

fn config_str(c: &BTreeMap<String, ConfigValue>, k: &str) -> Option<String> {
    match c.get(k)? {
        ConfigValue::Str(s) => Some(s.clone()),
        _ => None,
    }
}

/// The models under `dir` (each `.sql` file with its properties from any `.yml` there) and
/// the unit tests those properties files declare.
fn load_models(
    dir: &Path,
    default_materialized: Materialized,
    registry: &Registry,
) -> Result<(Vec<Model>, Vec<unit_tests::UnitTest>)> {
    // Properties from every YAML file under the models directory.
    let mut props: BTreeMap<String, (PathBuf, files::ModelDecl)> = BTreeMap::new();
    let mut unit_tests = Vec::new();
    for f in files_below(dir, &[".yml", ".yaml"])? {
        let file: files::ModelsFile = files::read(&f, "model properties")?;
        for m in file.models {
            let name = m.name.clone();
            if props.insert(name.clone(), (f.clone(), m)).is_some() {
                return Err(Error::pipeline(
                    &f,
                    format!("model `{name}` has properties in two places"),
                ));
            }
        }
        for t in file.unit_tests {
            unit_tests.push(unit_tests::UnitTest::new(&f, t)?);
        }
    }
    let mut models: Vec<Model> = Vec::new();
    for f in files_below(dir, &[".sql"])? {
        let name = f
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_string();
        if registry.table(&name).is_some() {
            return Err(Error::pipeline(
                &f,
                format!("model `{name}` has the name of a source table; rename it"),
            ));
        }
        if let Some(prev) = models.iter().find(|m| m.name == name) {
            return Err(Error::pipeline(
                &f,
                format!("model `{name}` is also defined in {}", prev.file.display()),
            ));
        }
        let text = std::fs::read_to_string(&f).map_err(|e| Error::io("cannot read", &f, e))?;
        let pieces = template::parse(&text)
            .map_err(|e| Error::pipeline(&f, format!("line {}: {}", e.line, e.message)))?;
        let refs = template::refs(&pieces);
        let mut cfg = template::config(&pieces);
        files::check_config_keys(
            &f,
            &format!("model `{name}`"),
            cfg.keys(),
            files::MODEL_CONFIG_KEYS,
        )?;
        let (yaml_file, yaml) = match props.remove(&name) {
            Some((f, m)) => (Some(f), Some(m)),
            None => (None, None),
        };
        if let (Some(yf), Some(y)) = (&yaml_file, &yaml) {
            files::check_config_keys(
                yf,
                &format!("model `{name}`"),
                y.config.keys(),
                files::MODEL_CONFIG_KEYS,
            )?;
            for (k, v) in &y.config {
                let cv = match v {
                    Value::String(s) => ConfigValue::Str(s.clone()),
                    Value::Bool(b) => ConfigValue::Bool(*b),
                    Value::Sequence(l) => {
                        ConfigValue::List(l.iter().filter_map(scalar_sql).collect())
                    }
                    Value::Number(n) => ConfigValue::Num(n.as_f64().unwrap_or(0.0)),
                    _ => {
                        return Err(Error::pipeline(
                            yf,
                            format!("model `{name}`: config `{k}` must be a scalar or a list"),
                        ));
                    }
                };
                // SQL config() wins over YAML, as in dbt.
                cfg.entry(k.clone()).or_insert(cv);
            }
        }
        if matches!(cfg.get("enabled"), Some(ConfigValue::Bool(false))) {
            continue;
        }
        let materialized = match config_str(&cfg, "materialized").as_deref() {
            None => default_materialized,
            Some("table") => Materialized::Table,
            Some("view") => Materialized::View,
            Some(x) => {
                return Err(Error::pipeline(
                    &f,
                    format!("materialized `{x}` must be table or view"),
                ));
            }
        };
        let order_by = match cfg.get("order_by") {
            Some(ConfigValue::List(l)) => l.clone(),
            Some(ConfigValue::Str(s)) => s
                .split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect(),
            _ => Vec::new(),
        };
        let mut tests = Vec::new();
        let mut contract = Vec::new();
        let tfile = yaml_file.clone().unwrap_or_else(|| f.clone());
        let no_columns = Vec::new();
        let no_tests = Vec::new();
        let (columns, table_tests) = match &yaml {
            Some(y) => (&y.columns, &y.data_tests),
            None => (&no_columns, &no_tests),
        };
        for c in columns {
            let cname = c.name.as_str();
            if let Some(dt) = c.data_type.as_deref() {
                let ty = crate::schema::ColumnType::parse(dt).ok_or_else(|| {
                    Error::pipeline(
                        &tfile,
                        format!("model `{name}`, column `{cname}`: unknown data_type `{dt}`"),
                    )
                })?;
                contract.push((cname.to_string(), ty));
            }
            for entry in &c.data_tests {
                // Model columns' types come from the SQL; quote accepted values unless told otherwise.
                tests.push(model_test(
                    &tfile,
                    &name,
                    Some((cname, crate::schema::ColumnType::Varchar)),
                    entry,
                )?);
            }
        }
        for entry in table_tests {
            tests.push(model_test(&tfile, &name, None, entry)?);
        }
        let tags = match cfg.get("tags") {
            Some(ConfigValue::List(l)) => l.clone(),
            Some(ConfigValue::Str(s)) => vec![s.clone()],
            _ => Vec::new(),
        };
        let freeze = config_str(&cfg, "freeze");
        if freeze.is_some() && contract.is_empty() {
            return Err(Error::pipeline(
                &f,
                format!(
                    "model `{name}` freezes closed periods, so it needs declared columns with data_type"
                ),
            ));
        }
        if let Some(col) = &freeze
            && !contract
                .iter()
                .any(|(c, t)| c == col && *t == crate::schema::ColumnType::Date)
        {
            return Err(Error::pipeline(
                &f,
                format!("model `{name}`: freeze column `{col}` must be a declared date column"),
            ));
        }
        let reads_last_good = match config_str(&cfg, "blocked_inputs").as_deref() {
            None | Some("block") => false,
            Some("last_good") => true,
            Some(x) => {
                return Err(Error::pipeline(
                    &f,
                    format!("blocked_inputs `{x}` must be block or last_good"),
                ));
            }
        };
        let definition_version = match cfg.get("definition_version") {
            Some(ConfigValue::Str(s)) => Some(s.clone()),
            Some(ConfigValue::Num(n)) => Some(n.to_string()),
            _ => None,
        };
        let sort_in_ranges = match cfg.get("sort_in_ranges") {
            None => None,
            Some(ConfigValue::Num(n)) if *n >= 1.0 && !order_by.is_empty() => Some(*n as u64),
            Some(_) => {
                return Err(Error::pipeline(
                    &f,
                    format!(
                        "model `{name}`: sort_in_ranges must be a positive row count, with order_by"
                    ),
                ));
            }
        };
        let build_in_ranges = match cfg.get("build_in_ranges") {
            None => None,
            Some(n) => {
                let why = match n {
                    ConfigValue::Num(n) if *n >= 1.0 => None,
                    _ => Some("must be a positive row count"),
                }
                .or(order_by.is_empty().then_some("needs order_by"))
                .or((materialized != Materialized::Table).then_some("needs a table"))
                .or(sort_in_ranges
                    .is_some()
                    .then_some("replaces sort_in_ranges"));
                match (why, n) {
                    (None, ConfigValue::Num(n)) => Some(*n as u64),
                    (why, _) => {
                        return Err(Error::pipeline(
                            &f,
                            format!(
                                "model `{name}`: build_in_ranges {}",
                                why.unwrap_or("must be a positive row count")
                            ),
                        ));
                    }
                }
            }
        };
        let pushdown_filters = match cfg.get("pushdown_filters") {
            None => false,
            Some(ConfigValue::Bool(b)) => *b,
            Some(_) => {
                return Err(Error::pipeline(
                    &f,
                    format!("model `{name}`: pushdown_filters must be true or false"),
                ));
            }
        };
        models.push(Model {
            sort_in_ranges,
            build_in_ranges,
            pushdown_filters,
            reads_last_good,
            definition_version,
            text_sha256: crate::table_io::sha256_hex(text.as_bytes()),
            tags,
            freeze,
            contract,
            name,
            file: f,
            description: yaml
                .as_ref()
                .and_then(|y| y.description.as_deref())
                .map(|s| s.trim().to_string()),
            pieces,
            refs,
            materialized,
            order_by,
            tests,
        });
    }
    if let Some((name, (f, _))) = props.into_iter().next() {
        return Err(Error::pipeline(
            &f,
            format!("properties for model `{name}`, but there is no {name}.sql"),
        ));
    }
    Ok((models, unit_tests))
}

/// The model a brain-ready view contract generates: a table tagged `views` that reads the last
/// good version of a blocked input (so the view goes stale rather than missing).
fn generated_view_model(
    file: &Path,
    name: String,
    sql: &str,
    order_by: Vec<String>,
    description: String,
) -> Result<Model> {
    let pieces = template::parse(sql).map_err(|e| {
        Error::pipeline(
            file,
            format!("view model `{name}`, line {}: {}", e.line, e.message),
        )
    })?;
    Ok(Model {
        refs: template::refs(&pieces),
        pieces,
        materialized: Materialized::Table,
        order_by,
        tests: Vec::new(),
        tags: vec!["views".into()],
        freeze: None,
        contract: Vec::new(),
        reads_last_good: true,
        sort_in_ranges: None,
        build_in_ranges: None,
        pushdown_filters: false,
        definition_version: None,
        text_sha256: crate::table_io::sha256_hex(sql.as_bytes()),
        file: file.to_path_buf(),
        description: Some(description),
        name,
    })
}

/// A model test: rows of a model cannot be quarantined, so failing tests block its publishing.
fn model_test(
    file: &Path,
    model: &str,
    column: Option<(&str, crate::schema::ColumnType)>,
    entry: &Value,
) -> Result<TestSpec> {
    let t = data_tests::parse_test(file, model, column, entry, None)?;
    if t.on_fail.removes_rows() {
        return Err(Error::pipeline(
            file,
            format!(
                "model `{model}`, rule `{}`: on_fail {} applies to source rows only; use block or none",
                t.rule,
                t.on_fail.name()
            ),
        ));
    }
    Ok(t)
}

fn load_singular_tests(dir: &Path) -> Result<Vec<SingularTest>> {
    let mut out = Vec::new();
    for f in files_below(dir, &[".sql"])? {
        let text = std::fs::read_to_string(&f).map_err(|e| Error::io("cannot read", &f, e))?;
        let pieces = template::parse(&text)
            .map_err(|e| Error::pipeline(&f, format!("line {}: {}", e.line, e.message)))?;
        let cfg = template::config(&pieces);
        files::check_config_keys(
            &f,
            "singular test",
            cfg.keys(),
            files::SINGULAR_TEST_CONFIG_KEYS,
        )?;
        let severity = match config_str(&cfg, "severity").as_deref() {
            None | Some("error") => Severity::Error,
            Some("warn") => Severity::Warn,
            Some(x) => {
                return Err(Error::pipeline(
                    &f,
                    format!("severity `{x}` must be error or warn"),
                ));
            }
        };
        let threshold = |k: &str| -> Result<Option<Threshold>> {
            match config_str(&cfg, k) {
                None => Ok(None),
                Some(t) => Threshold::parse(&t)
                    .map(Some)
                    .ok_or_else(|| Error::pipeline(&f, format!("{k} `{t}` is not a threshold"))),
            }
        };
        let refs = template::refs(&pieces);
        if refs.is_empty() {
            return Err(Error::pipeline(
                &f,
                "a singular test must read a model or source through ref() or source()",
            ));
        }
        out.push(SingularTest {
            name: f
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("")
                .to_string(),
            file: f.clone(),
            refs,
            severity,
            error_if: threshold("error_if")?,
            warn_if: threshold("warn_if")?,
            pieces,
        });
    }
    Ok(out)
}

/// A minimal project for unit tests: `files` (path under `pipelines/`, text) beside an
/// empty `gtmos_project.yml`, loaded.
#[cfg(test)]
pub(crate) fn test_project(dir: &Path, files: &[(&str, &str)]) -> Project {
    let root = dir.join("pipelines");
    for d in ["models", "sources", "tests"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::write(
        root.join("gtmos_project.yml"),
        "name: t\nversion: 1.0.0\nmodel-paths: [models]\n",
    )
    .unwrap();
    for (path, text) in files {
        std::fs::write(root.join(path), text).unwrap();
    }
    Project::load(&root).unwrap()
}
