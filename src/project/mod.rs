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
pub mod roster;
pub mod template;

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
    pub slos: Vec<Slo>,
    /// Decision nodes (SPEC §13), evaluated by their models every build.
    pub decision_nodes: Vec<DecisionNode>,
    pub engine: EngineConfig,
    /// The brain-ready view contracts (SPEC §10), when the project declares them.
    pub views: Option<crate::views::Catalog>,
    /// sha256 over every file of the project (relative path and bytes, in path order).
    pub hash: String,
}

fn read_yaml(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))?;
    serde_yaml_ng::from_str(&text).map_err(|e| Error::pipeline(path, format!("invalid YAML: {e}")))
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Sequence(s)) => s
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
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

fn hours(v: Option<&Value>) -> Option<f64> {
    let v = v?;
    let count = v.get("count").and_then(Value::as_f64)?;
    let per = match v.get("period").and_then(Value::as_str).unwrap_or("hour") {
        "minute" => 1.0 / 60.0,
        "day" => 24.0,
        _ => 1.0,
    };
    Some(count * per)
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
        let p = read_yaml(&pfile)?;
        let name = p
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("gtmos")
            .to_string();
        let version = match p.get("version") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => "0".into(),
        };
        let path_of = |key: &str, default: &str| -> PathBuf {
            let v = str_list(p.get(key));
            dir.join(v.first().map(String::as_str).unwrap_or(default))
        };
        let mut vars = BTreeMap::new();
        if let Some(Value::Mapping(m)) = p.get("vars") {
            for (k, v) in m {
                let (Some(k), Some(v)) = (k.as_str(), scalar_sql(v)) else {
                    return Err(Error::pipeline(
                        &pfile,
                        "vars must map names to scalar values",
                    ));
                };
                vars.insert(k.to_string(), v);
            }
        }
        let test_defaults = p.get("data_tests").cloned();
        let engine = EngineConfig {
            target_partitions: p
                .get("engine")
                .and_then(|e| e.get("target_partitions"))
                .and_then(Value::as_u64)
                .map(|n| n.max(1) as usize)
                .unwrap_or(EngineConfig::default().target_partitions),
            ..EngineConfig::default()
        };
        let default_materialized = match p
            .get("models")
            .and_then(|m| m.get("materialized"))
            .and_then(Value::as_str)
        {
            Some("view") => Materialized::View,
            _ => Materialized::Table,
        };
        let slos = parse_slos(&pfile, p.get("freshness_slos"))?;
        let decision_nodes = parse_decision_nodes(&pfile, p.get("decision_nodes"), &vars)?;

        let registry = Registry::load_dir(&path_of("source-paths", "sources"))?;
        let mut sources = Vec::new();
        for t in registry.tables() {
            sources.push(source_contract(t, test_defaults.as_ref())?);
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

        let mut models = load_models(
            &path_of("model-paths", "models"),
            default_materialized,
            &registry,
        )?;
        let views = crate::views::Catalog::load(&path_of("view-paths", "views"))?;
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
        let tests = load_singular_tests(&path_of("test-paths", "tests"))?;
        let mut project = Project {
            dir: dir.to_path_buf(),
            name,
            version,
            vars,
            registry,
            sources,
            models,
            tests,
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
        // A roster role no node knows would silently grant nothing: say so now.
        let roster = roster::Roster::load(&pfile)?;
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
    v: Option<&Value>,
    vars: &BTreeMap<String, String>,
) -> Result<Vec<DecisionNode>> {
    let mut out: Vec<DecisionNode> = Vec::new();
    let Some(Value::Sequence(list)) = v else {
        return Ok(out);
    };
    for n in list {
        let text = |k: &str| {
            n.get(k)
                .and_then(Value::as_str)
                .map(|s| s.trim().to_string())
        };
        let name = text("name")
            .ok_or_else(|| Error::pipeline(file, "every decision node needs a name"))?;
        let need = |k: &str| {
            text(k)
                .ok_or_else(|| Error::pipeline(file, format!("decision node `{name}` needs `{k}`")))
        };
        let thresholds = str_list(n.get("thresholds"));
        if let Some(t) = thresholds.iter().find(|t| !vars.contains_key(*t)) {
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
        out.push(DecisionNode {
            model: need("model")?,
            owner: need("owner")?,
            approvers: str_list(n.get("approvers")),
            thresholds,
            risk_notes: text("risk_notes"),
            reversal_plan: text("reversal_plan"),
            review_after_days: n
                .get("review_after_days")
                .and_then(Value::as_i64)
                .unwrap_or(14),
            name,
        });
    }
    Ok(out)
}

fn parse_slos(file: &Path, v: Option<&Value>) -> Result<Vec<Slo>> {
    let mut out = Vec::new();
    let Some(Value::Sequence(list)) = v else {
        return Ok(out);
    };
    for s in list {
        let name = s
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::pipeline(file, "every freshness SLO needs a name"))?;
        let num = |k: &str| -> Result<f64> {
            s.get(k).and_then(Value::as_f64).ok_or_else(|| {
                Error::pipeline(
                    file,
                    format!("freshness SLO `{name}` needs a numeric `{k}`"),
                )
            })
        };
        let target = num("target")?;
        if !(0.0..=1.0).contains(&target) {
            return Err(Error::pipeline(
                file,
                format!("freshness SLO `{name}`: target must be in [0, 1]"),
            ));
        }
        out.push(Slo {
            name: name.to_string(),
            description: s
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            sources: str_list(s.get("sources")),
            max_age_hours: num("max_age_hours")?,
            target,
            window_days: num("window_days")?,
        });
    }
    Ok(out)
}

fn source_contract(t: &TableSchema, defaults: Option<&Value>) -> Result<SourceContract> {
    let mut tests = Vec::new();
    let default_for = |kind: &str| defaults.and_then(|d| d.get(kind));
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
    if let Some(Value::Sequence(list)) = t.raw.get("data_tests") {
        for entry in list {
            let kind = crate::schema::test_kind(entry).map(|k| k.0).unwrap_or("");
            tests.push(data_tests::parse_test(
                &t.file,
                &t.name,
                None,
                entry,
                default_for(kind),
            )?);
        }
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
    let freshness = match (t.raw.get("freshness"), &t.loaded_at_field) {
        (Some(f), Some(field)) => Some(Freshness {
            loaded_at_field: field.clone(),
            warn_after_hours: hours(f.get("warn_after")),
            error_after_hours: hours(f.get("error_after")),
        }),
        (Some(_), None) => {
            return Err(Error::pipeline(
                &t.file,
                format!(
                    "table `{}` declares freshness but no loaded_at_field",
                    t.name
                ),
            ));
        }
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
    let contract_version = match t.raw.get("contract_version").and_then(scalar_sql) {
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

fn load_models(
    dir: &Path,
    default_materialized: Materialized,
    registry: &Registry,
) -> Result<Vec<Model>> {
    // Properties from every YAML file under the models directory.
    let mut props: BTreeMap<String, (PathBuf, Value)> = BTreeMap::new();
    for f in files_below(dir, &[".yml", ".yaml"])? {
        let v = read_yaml(&f)?;
        if let Some(Value::Sequence(list)) = v.get("models") {
            for m in list {
                let name = m
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| Error::pipeline(&f, "a model entry without `name`"))?;
                if props
                    .insert(name.to_string(), (f.clone(), m.clone()))
                    .is_some()
                {
                    return Err(Error::pipeline(
                        &f,
                        format!("model `{name}` has properties in two places"),
                    ));
                }
            }
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
        let (yaml_file, yaml) = props
            .remove(&name)
            .map(|(f, v)| (Some(f), v))
            .unwrap_or((None, Value::Null));
        if let Some(Value::Mapping(m)) = yaml.get("config") {
            for (k, v) in m {
                let Some(k) = k.as_str() else { continue };
                let cv = match v {
                    Value::String(s) => ConfigValue::Str(s.clone()),
                    Value::Bool(b) => ConfigValue::Bool(*b),
                    Value::Sequence(_) => ConfigValue::List(str_list(Some(v))),
                    Value::Number(n) => ConfigValue::Num(n.as_f64().unwrap_or(0.0)),
                    _ => continue,
                };
                // SQL config() wins over YAML, as in dbt.
                cfg.entry(k.to_string()).or_insert(cv);
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
        if let Some(Value::Sequence(cols)) = yaml.get("columns") {
            for c in cols {
                let cname = c.get("name").and_then(Value::as_str).ok_or_else(|| {
                    Error::pipeline(&tfile, format!("model `{name}`: a column without `name`"))
                })?;
                if let Some(dt) = c.get("data_type").and_then(Value::as_str) {
                    let ty = crate::schema::ColumnType::parse(dt).ok_or_else(|| {
                        Error::pipeline(
                            &tfile,
                            format!("model `{name}`, column `{cname}`: unknown data_type `{dt}`"),
                        )
                    })?;
                    contract.push((cname.to_string(), ty));
                }
                if let Some(Value::Sequence(list)) = c.get("data_tests").or_else(|| c.get("tests"))
                {
                    for entry in list {
                        // Model columns' types come from the SQL; quote accepted values unless told otherwise.
                        tests.push(model_test(
                            &tfile,
                            &name,
                            Some((cname, crate::schema::ColumnType::Varchar)),
                            entry,
                        )?);
                    }
                }
            }
        }
        if let Some(Value::Sequence(list)) = yaml.get("data_tests").or_else(|| yaml.get("tests")) {
            for entry in list {
                tests.push(model_test(&tfile, &name, None, entry)?);
            }
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
                .get("description")
                .and_then(Value::as_str)
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
    Ok(models)
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
