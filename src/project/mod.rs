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
mod models;
mod render;
pub mod roster;
mod sources;
pub mod template;
pub mod unit_tests;

pub use models::*;
pub use render::*;
pub use sources::*;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;
use sha2::{Digest, Sha256};

use self::data_tests::{Severity, TestSpec, Threshold};
use self::template::{ConfigValue, Piece, Ref};
use crate::engine::EngineConfig;
use crate::error::{Error, Result};
use crate::schema::{Registry, TableSchema, scalar_text};
use crate::table_io::hex;

pub const PROJECT_FILE: &str = "gtmos_project.yml";

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
            .and_then(scalar_text)
            .unwrap_or_else(|| "0".into());
        let path_of = |key: &Option<files::Paths>, default: &str| -> PathBuf {
            dir.join(key.as_ref().and_then(|p| p.first()).unwrap_or(default))
        };
        let mut vars = BTreeMap::new();
        for (k, v) in &p.vars {
            let v = scalar_text(v).ok_or_else(|| {
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

        for (kind, args) in &p.data_tests {
            data_tests::check_defaults(&pfile, kind, args)?;
        }
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
        let v = scalar_text(v).ok_or_else(|| bad(format!("`{name}` must be a scalar")))?;
        out.insert(name.to_string(), v);
    }
    Ok(out)
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
