//! HTML reports (SPEC §14): static pages rendered with minijinja from templates compiled into
//! the binary (`reports/templates/`), charts as inline SVG, no external assets. A build writes
//! `reports/<run_id>/` and refreshes `reports/latest/`; both are written beside their final
//! place and renamed in, so a reader never sees half a report.

pub mod canary;
pub mod eval;
pub mod finance;
pub mod lineage;
pub mod metrics;
pub mod overview;
pub mod strategy;
pub mod svg;
pub mod views;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use minijinja::Environment;
use serde_json::{Value, json};

use crate::build::BuildReport;
use crate::calendar::format_ts;
use crate::error::{Error, Result};
use crate::freshness::SloAttainment;
use crate::table_io;

const TEMPLATES: &[(&str, &str)] = &[
    (
        "base.html",
        include_str!("../../reports/templates/base.html"),
    ),
    (
        "index.html",
        include_str!("../../reports/templates/index.html"),
    ),
    (
        "contracts.html",
        include_str!("../../reports/templates/contracts.html"),
    ),
    (
        "freshness.html",
        include_str!("../../reports/templates/freshness.html"),
    ),
    (
        "recognition.html",
        include_str!("../../reports/templates/recognition.html"),
    ),
    (
        "reconciliation.html",
        include_str!("../../reports/templates/reconciliation.html"),
    ),
    (
        "metrics.html",
        include_str!("../../reports/templates/metrics.html"),
    ),
    (
        "views.html",
        include_str!("../../reports/templates/views.html"),
    ),
    (
        "decisions.html",
        include_str!("../../reports/templates/decisions.html"),
    ),
    (
        "eval.html",
        include_str!("../../reports/templates/eval.html"),
    ),
    (
        "canary.html",
        include_str!("../../reports/templates/canary.html"),
    ),
    (
        "lineage.html",
        include_str!("../../reports/templates/lineage.html"),
    ),
    (
        "strategy.html",
        include_str!("../../reports/templates/strategy.html"),
    ),
];

/// The pages of a build report: (file, title). The finance pages appear once their tables
/// are published.
const BUILD_PAGES: &[(&str, &str)] = &[
    ("index.html", "Overview"),
    ("contracts.html", "Contracts"),
    ("freshness.html", "Freshness"),
    ("recognition.html", "Recognition"),
    ("reconciliation.html", "Reconciliation"),
    ("metrics.html", "Metrics vs plan"),
    ("views.html", "Scores & brain views"),
    ("decisions.html", "Decision log"),
    ("strategy.html", "Strategy"),
    ("lineage.html", "Lineage"),
];

/// The pages of the other commands, each in its own folder under the reports root with a
/// `latest/` copy: (folder, file, title).
const OTHER_PAGES: &[(&str, &str, &str)] = &[
    ("eval", "eval.html", "Eval"),
    ("canary", "canary.html", "Canary"),
];

/// The navigation bar of a page `depth` folders below the reports root `root`: this page's
/// own set (`own`, beside it), the nightly build's pages when `own` is not them, and the
/// latest eval and canary pages, each only when it exists.
fn navigation(root: &Path, depth: usize, own: &[(&str, &str)], section: &str) -> Vec<Value> {
    let up = "../".repeat(depth);
    let mut nav: Vec<Value> = own
        .iter()
        .map(|(f, t)| json!({"file": f, "title": t}))
        .collect();
    if section != "build" {
        for (f, t) in BUILD_PAGES {
            if root.join("latest").join(f).exists() {
                nav.push(json!({"file": format!("{up}latest/{f}"), "title": t}));
            }
        }
    }
    for (folder, f, t) in OTHER_PAGES {
        if *folder != section && root.join(folder).join("latest").join(f).exists() {
            nav.push(json!({"file": format!("{up}{folder}/latest/{f}"), "title": t}));
        }
    }
    nav
}

/// `1234567.891` → `1,234,567.89`; negatives with a minus sign.
pub fn money(v: f64) -> String {
    group(&format!("{:.2}", v.abs()), v < 0.0 && v.abs() >= 0.005)
}

/// A figure to at most six decimals, without trailing zeros, digits grouped.
pub fn amount(v: f64) -> String {
    let s = format!("{:.6}", v.abs());
    let s = s.trim_end_matches('0').trim_end_matches('.');
    group(s, v < 0.0 && s != "0")
}

fn group(digits: &str, negative: bool) -> String {
    let (int, frac) = digits
        .split_once('.')
        .map_or((digits, None), |(i, f)| (i, Some(f)));
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    if negative { format!("−{out}") } else { out }
}

fn environment() -> Result<Environment<'static>> {
    let mut env = Environment::new();
    env.add_filter("money", money);
    env.add_filter("amount", amount);
    for (name, text) in TEMPLATES {
        env.add_template(name, text)
            .map_err(|e| Error::Internal(format!("report template {name}: {e}")))?;
    }
    Ok(env)
}

fn run_context(r: &BuildReport, state: &crate::warehouse::PublishState) -> Value {
    let tables: Vec<Value> = r
        .models
        .iter()
        .filter(|m| m.materialized == crate::project::Materialized::Table)
        .map(|m| {
            let s = state.tables.get(&m.name);
            json!({
                "name": m.name,
                "state": match (&m.blocked, s.and_then(|s| s.build_id.as_ref())) {
                    (None, _) => "published",
                    (Some(_), Some(_)) => "stale",
                    (Some(_), None) => "blocked",
                },
                "reason": m.blocked,
                "rows": s.map(|s| s.rows).unwrap_or(0),
                "build_id": s.and_then(|s| s.build_id.clone()),
                "sha256": s.and_then(|s| s.sha256.clone()),
            })
        })
        .collect();
    json!({
        "command": r.command_line(),
        "full": r.is_full(),
        "run_id": r.run_id,
        "build_id": r.build_id,
        "snapshot_id": r.snapshot_id,
        "snapshot_dir": crate::store::display(&r.snapshot_dir),
        "as_of": format_ts(r.as_of),
        "outcome": r.outcome(),
        "seconds": format!("{:.2}", r.seconds),
        "inputs_hash": r.inputs_hash,
        "pipelines_hash": r.pipelines_hash,
        "project_name": r.project_name,
        "project_version": r.project_version,
        "effective_config": r.effective_config.to_string(),
        "gtmos_version": env!("CARGO_PKG_VERSION"),
        "published": r.published,
        "blocked": r.blocked.iter().map(|(t, why)| json!({"table": t, "reason": why})).collect::<Vec<_>>(),
        "quarantined_rows": r.quarantined_rows(),
        "dead_lettered_rows": r.dead_lettered_rows(),
        "warnings": r.warnings(),
        "steps": r.steps,
        "tables": tables,
    })
}

fn test_json(t: &crate::contracts::TestResult) -> Value {
    json!({
        "rule": t.spec.rule,
        "test": t.test,
        "column": t.spec.column,
        "severity": match t.spec.severity { crate::project::data_tests::Severity::Error => "error", crate::project::data_tests::Severity::Warn => "warn" },
        "on_fail": t.spec.on_fail.name(),
        "status": t.status.name(),
        "failures": t.failures,
        "rows_checked": t.rows_checked,
        "action": t.action,
        "sample": sample_table(&t.sample),
    })
}

/// Failing rows as a small table: the union of their fields as columns, in first-seen order;
/// a value that is not an object is one column of its own.
fn sample_table(rows: &[Value]) -> Value {
    if rows.is_empty() {
        return Value::Null;
    }
    let mut columns: Vec<String> = Vec::new();
    for r in rows {
        match r {
            Value::Object(m) => {
                for k in m.keys() {
                    if !columns.contains(k) {
                        columns.push(k.clone());
                    }
                }
            }
            _ if !columns.iter().any(|c| c == "value") => columns.push("value".into()),
            _ => {}
        }
    }
    let cell = |v: Option<&Value>| match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| match r {
                    Value::Object(m) => cell(m.get(c)),
                    v if c == "value" => cell(Some(v)),
                    _ => String::new(),
                })
                .collect()
        })
        .collect();
    json!({"columns": columns, "rows": body})
}

/// Failed first, then warned, then passed.
fn status_rank(status: &str) -> u8 {
    match status {
        "fail" => 0,
        "warn" => 1,
        _ => 2,
    }
}

/// Render a build's pages into `<dir>/<run_id>/` and refresh `<dir>/latest/`. Returns the
/// run's directory. Only a full nightly build writes there; a partial run (`recognize`,
/// `reconcile`, `build --select`) writes under `<dir>/<recognize|reconcile|select>/` with a
/// `latest/` of its own, so it never hides the nightly report.
pub fn render_build(
    r: &BuildReport,
    project: &crate::project::Project,
    slos: &[SloAttainment],
    root: &Path,
) -> Result<PathBuf> {
    let dir = &partial_dir(r, root);
    let depth = if r.is_full() { 1 } else { 2 };
    let env = environment()?;
    let mut nodes: Vec<Value> = Vec::new();
    let mut add_node = |kind: &str,
                        name: &str,
                        cv: Option<String>,
                        tests: &[crate::contracts::TestResult]| {
        let mut tests: Vec<Value> = tests.iter().map(test_json).collect();
        tests.sort_by_key(|t| status_rank(t["status"].as_str().unwrap_or_default()));
        let worst = tests
            .first()
            .map_or(2, |t| status_rank(t["status"].as_str().unwrap_or_default()));
        nodes.push(json!({"kind": kind, "name": name, "contract_version": cv, "worst": worst, "tests": tests}));
    };
    for s in &r.sources {
        if !s.tests.is_empty() {
            let cv = s.tests.iter().find_map(|t| t.contract_version.clone());
            add_node("source", &s.table, cv, &s.tests);
        }
    }
    for m in &r.models {
        if !m.tests.is_empty() {
            add_node("model", &m.name, None, &m.tests);
        }
    }
    if !r.singular.is_empty() {
        add_node("singular tests", "tests/", None, &r.singular);
    }
    nodes.sort_by_key(|n| n["worst"].as_u64().unwrap_or(2));
    // Every failed and warned test, failures first, with the node it belongs to.
    let mut flagged: Vec<Value> = nodes
        .iter()
        .flat_map(|n| {
            n["tests"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| t["status"] != "pass")
                .map(|t| json!({"node": n["name"], "kind": n["kind"], "test": t}))
        })
        .collect();
    flagged.sort_by_key(|f| status_rank(f["test"]["status"].as_str().unwrap_or_default()));
    let quarantine = crate::build::quarantine_summary(r);
    let q_rows: Vec<Value> = quarantine
        .iter()
        .map(|((t, rule), n)| json!({"table": t, "rule": rule, "rows": n}))
        .collect();
    let all: Vec<&crate::contracts::TestResult> = r.all_tests().collect();
    let status_count =
        |s: crate::project::data_tests::Status| all.iter().filter(|t| t.status == s).count();
    let freshness: Vec<Value> = r
        .freshness()
        .map(|f| {
            json!({
                "source": f.source, "loaded_at_field": f.loaded_at_field,
                "max_loaded_at": f.max_loaded_at.map(format_ts), "age_hours": f.age_hours,
                "warn_after_hours": f.warn_after_hours, "error_after_hours": f.error_after_hours, "status": f.status,
            })
        })
        .collect();
    let mut charts = BTreeMap::new();
    let mut steps: Vec<(String, f64)> = r
        .steps
        .iter()
        .map(|s| (s.step.clone(), s.seconds))
        .collect();
    steps.sort_by(|a, b| b.1.total_cmp(&a.1));
    steps.truncate(15);
    charts.insert("steps", svg::bars("Slowest steps", &steps, "s"));
    charts.insert(
        "quarantine",
        svg::bars(
            "Rows removed per rule",
            &quarantine
                .iter()
                .map(|((t, rule), n)| (format!("{t}.{rule}"), *n as f64))
                .collect::<Vec<_>>(),
            "rows",
        ),
    );
    charts.insert(
        "freshness",
        svg::bars(
            "Age of newest row (hours)",
            &r.freshness()
                .map(|f| (f.source.clone(), f.age_hours.unwrap_or(0.0)))
                .collect::<Vec<_>>(),
            "h",
        ),
    );
    let warehouse = crate::warehouse::Warehouse::new(&r.warehouse);
    // The publish state, read once: the run header's tables and the lineage page's nodes.
    let state = warehouse.state().unwrap_or_default();
    let recognition = finance::recognition(&warehouse)?;
    let reconciliation = finance::reconciliation(&warehouse)?;
    let calc_log = finance::published_rows(&warehouse, "metrics_calc_log")?;
    let metric_page = metrics::metrics(&warehouse, calc_log.as_deref())?;
    let decision_page = metrics::decisions(&warehouse, &r.decisions)?;
    let views_page = views::views(&warehouse, &r.snapshot_dir)?;
    let strategy_page = strategy::strategy(&warehouse, views_page.as_ref())?;
    let shown: Vec<(&str, &str)> = BUILD_PAGES
        .iter()
        .filter(|(f, _)| match *f {
            "recognition.html" => recognition.is_some(),
            "reconciliation.html" => reconciliation.is_some(),
            "metrics.html" => metric_page.is_some(),
            "decisions.html" => decision_page.is_some(),
            "views.html" => views_page.is_some(),
            "strategy.html" => strategy_page.is_some(),
            _ => true,
        })
        .copied()
        .collect();
    let mut base = json!({
        "run": run_context(r, &state),
        "pages": navigation(root, depth, &shown, "build"),
        "charts": charts,
        "contracts": {"total": all.len(), "warned": status_count(crate::project::data_tests::Status::Warn), "failed": status_count(crate::project::data_tests::Status::Fail), "quarantine": q_rows, "nodes": nodes, "flagged": flagged},
        "freshness": freshness,
        "slos": slos,
        "recognition": recognition,
        "reconciliation": reconciliation,
        "metrics": metric_page,
        "decisions": decision_page,
        "views": views_page,
        "strategy": strategy_page,
        "lineage": lineage::lineage(r, project, &state),
    });
    let run_log = crate::logs::read_json(&r.warehouse, &crate::logs::RUN_LOG)?;
    base["overview"] = json!({
        "attention": overview::attention(r, slos, &base),
        "headline": overview::headline(calc_log.as_deref().unwrap_or_default()),
        "quarantine": overview::quarantine_history(&r.warehouse, &run_log)?,
        "runs": overview::recent_runs(&r.warehouse, &run_log, root, &"../".repeat(depth), &r.run_id)?,
    });
    let mut files = Vec::new();
    for (file, _) in shown {
        let mut ctx = base.clone();
        ctx["current"] = json!(file);
        let tpl = env
            .get_template(file)
            .map_err(|e| Error::Internal(format!("report template {file}: {e}")))?;
        let html = tpl
            .render(minijinja::Value::from(minijinja::value::Serde(&ctx)))
            .map_err(|e| Error::Internal(format!("rendering {file}: {e:#}")))?;
        files.push((file.to_string(), html));
    }
    write_report(dir, &r.run_id, &files)
}

/// Where a run's report goes: `dir` for a full build, a folder per kind of partial run.
pub fn partial_dir(r: &BuildReport, dir: &Path) -> PathBuf {
    if r.is_full() {
        dir.to_path_buf()
    } else if r.command == "build" {
        dir.join("select")
    } else {
        dir.join(r.command)
    }
}

/// Render one standalone page (`template` with `ctx`, whose `run` object feeds the header)
/// into `<root>/<section>/<name>/` and `<root>/<section>/latest/`. Returns the page's path.
pub fn render_page(
    template: &str,
    mut ctx: Value,
    root: &Path,
    section: &str,
    name: &str,
) -> Result<PathBuf> {
    let env = environment()?;
    let title = OTHER_PAGES
        .iter()
        .find(|(f, _, _)| *f == section)
        .map_or(section, |(_, _, t)| *t);
    ctx["pages"] = json!(navigation(root, 2, &[(template, title)], section));
    ctx["current"] = json!(template);
    let html = env
        .get_template(template)
        .and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(&ctx))))
        .map_err(|e| Error::Internal(format!("rendering {template}: {e:#}")))?;
    Ok(write_report(&root.join(section), name, &[(template.to_string(), html)])?.join(template))
}

/// Every table in a box of the page's width that scrolls sideways when the table is wider,
/// so a wide table never widens the page (a phone scrolls the table, not the page).
fn scrollable(html: &str) -> String {
    html.replace("<table", "<div class=\"scroll\"><table")
        .replace("</table>", "</table></div>")
}

/// Write pages into `<dir>/<name>/` and `<dir>/latest/`, each via a temporary directory.
pub fn write_report(dir: &Path, name: &str, files: &[(String, String)]) -> Result<PathBuf> {
    let target = dir.join(name);
    for d in [target.clone(), dir.join("latest")] {
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            d.file_name().and_then(|n| n.to_str()).unwrap_or("report"),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&tmp);
        for (f, html) in files {
            table_io::write_atomic(&tmp.join(f), scrollable(html).as_bytes())?;
        }
        let old = dir.join(format!(
            ".{}.old-{}",
            d.file_name().and_then(|n| n.to_str()).unwrap_or("report"),
            std::process::id()
        ));
        if d.exists() {
            std::fs::rename(&d, &old).map_err(|e| Error::io("cannot replace", &d, e))?;
        }
        std::fs::rename(&tmp, &d).map_err(|e| Error::io("cannot write report", &d, e))?;
        let _ = std::fs::remove_dir_all(&old);
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_grouped_and_signed() {
        assert_eq!(money(1_234_567.891), "1,234,567.89");
        assert_eq!(money(-0.004), "0.00");
        assert_eq!(money(-12.5), "−12.50");
        assert_eq!(money(999.0), "999.00");
        assert_eq!(amount(10_001.0), "10,001");
        assert_eq!(amount(-0.0125), "−0.0125");
        assert_eq!(amount(0.0), "0");
    }
}
