//! `gtmos compile`: the resolved DAG and compiled SQL of every step, without running anything.

use serde_json::json;

use crate::calendar::parse_ts;
use crate::cli::CompileArgs;
use crate::contracts::{check_sql, ingest_sql};
use crate::engine::{RAW, SOURCES, ident};
use crate::error::{Outcome, Result};
use crate::printer::{Format, out, out_json};
use crate::project::template::Ref;
use crate::project::{Materialized, Project, Renderer};
use crate::settings::{project_dir, snapshot_dir};
use crate::snapshot::Manifest;

pub fn run(a: CompileArgs) -> Result<Outcome> {
    // No warehouse: an `s3://` one is not mirrored for a command that does not read it.
    let project = Project::load(&project_dir(&a.at.project))?;
    let as_of = match &a.as_of {
        Some(t) => Some(parse_ts(t)?),
        None => Manifest::read(&snapshot_dir(&a.at.snapshot)?)
            .ok()
            .and_then(|m| m.as_of_micros().ok()),
    };
    let renderer = Renderer::new(&project, as_of, None);
    let render = |text: &str| renderer.text(text);
    let mut nodes = Vec::new();
    for c in &project.sources {
        let t = project.registry.expect_table(&c.table)?;
        let removing: Vec<_> = c
            .tests
            .iter()
            .filter(|s| s.on_fail.removes_rows())
            .collect();
        let this = c.table.clone();
        let rel = |to: &str| {
            if to == this {
                format!("{RAW}.{}", ident(to))
            } else {
                format!("{SOURCES}.{}", ident(to))
            }
        };
        let ingest = if removing.is_empty() {
            None
        } else {
            Some(ingest_sql(t, &removing, &rel, &render)?.script())
        };
        let checks: Vec<_> = c
            .tests
            .iter()
            .filter(|s| !s.on_fail.removes_rows())
            .cloned()
            .collect();
        let check = if checks.is_empty() {
            None
        } else {
            Some(
                check_sql(
                    &c.table,
                    &format!("{SOURCES}.{}", ident(&c.table)),
                    &checks,
                    &rel,
                    &render,
                )?
                .0
                .script(),
            )
        };
        nodes.push(json!({
            "kind": "source", "name": c.table, "file": c.file.display().to_string(), "depends_on": c.depends_on,
            "contract_version": c.contract_version, "tests": c.tests.len(),
            "rules": c.tests.iter().map(|s| json!({"rule": s.rule, "test": s.kind.name(), "on_fail": s.on_fail.name()})).collect::<Vec<_>>(),
            "ingest_sql": ingest, "check_sql": check,
        }));
    }
    for m in &project.models {
        let sql = renderer.model(&project, m, &Renderer::relation, &|_| None)?;
        let deps: Vec<String> = m
            .refs
            .iter()
            .map(|r| match r {
                Ref::Model(x) => format!("model.{x}"),
                Ref::Source(x) => format!("source.{x}"),
            })
            .collect();
        nodes.push(json!({
            "kind": "model", "name": m.name, "file": m.file.display().to_string(), "depends_on": deps,
            "materialized": if m.materialized == Materialized::Table { "table" } else { "view" },
            "order_by": m.order_by, "tests": m.tests.len(), "sql": sql,
        }));
    }
    for t in &project.tests {
        let sql = renderer.file(&t.file, &t.pieces)?;
        let deps: Vec<String> = t
            .refs
            .iter()
            .map(|r| match r {
                Ref::Model(x) => format!("model.{x}"),
                Ref::Source(x) => format!("source.{x}"),
            })
            .collect();
        nodes.push(json!({"kind": "test", "name": t.name, "file": t.file.display().to_string(), "depends_on": deps, "sql": sql}));
    }
    match a.format {
        Format::Json => out_json(
            &json!({"project": project.name, "version": project.version, "pipelines_hash": project.hash, "nodes": nodes}),
        )?,
        Format::Text => {
            let mut s = format!(
                "project {} {} (pipelines hash {})\n",
                project.name,
                project.version,
                &project.hash[..16]
            );
            if as_of.is_none() {
                s.push_str(
                    "(no snapshot: {{ as_of }} is left unrendered; pass --as-of or --snapshot)\n",
                );
            }
            s.push_str("\nDAG, in execution order:\n");
            for n in &nodes {
                let deps = n["depends_on"]
                    .as_array()
                    .map(|d| {
                        d.iter()
                            .filter_map(|x| x.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                s.push_str(&format!(
                    "  {:<6} {:<28} ← {}\n",
                    n["kind"].as_str().unwrap_or(""),
                    n["name"].as_str().unwrap_or(""),
                    if deps.is_empty() {
                        "(snapshot)".into()
                    } else {
                        deps
                    }
                ));
            }
            for n in &nodes {
                s.push_str(&format!(
                    "\n-- {} {} ({})\n",
                    n["kind"].as_str().unwrap_or(""),
                    n["name"].as_str().unwrap_or(""),
                    n["file"].as_str().unwrap_or("")
                ));
                for key in ["ingest_sql", "check_sql", "sql"] {
                    if let Some(sql) = n[key].as_str() {
                        s.push_str(&format!("-- {key}\n{};\n", sql.trim()));
                    }
                }
            }
            out(&s)?;
        }
    }
    Ok(Outcome::Success)
}
