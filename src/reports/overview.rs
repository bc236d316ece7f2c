//! The top of the run index: what needs action, the headline KPIs against plan with their
//! recent trend, quarantine volume per rule over recent builds, and the recent runs of every
//! command with links to their pages. It reads the warehouse's published tables and logs,
//! and the other pages' contexts, so it shows what those pages show.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::{Map, Value, json};

use super::finance::text;
use super::svg;
use crate::build::BuildReport;
use crate::error::Result;
use crate::freshness::SloAttainment;
use crate::logs::{self, CANARY_RESULTS, CONTRACT_RESULTS, EVAL_LOG};

type Row = Map<String, Value>;

/// The headline figures: (metric, cadence, periods in the sparkline, unit, name, higher is
/// better).
const HEADLINE: &[(&str, &str, usize, &str, &str, bool)] = &[
    ("nrr", "monthly", 13, "%", "NRR", true),
    ("grr", "monthly", 13, "%", "GRR", true),
    ("magic_number", "quarterly", 8, "", "Magic Number", true),
    (
        "cac_payback_months",
        "quarterly",
        8,
        "mo",
        "CAC payback",
        false,
    ),
    (
        "rule_of_40_ebitda",
        "quarterly",
        8,
        "",
        "Rule of 40 (EBITDA)",
        true,
    ),
];

/// Recent runs listed, and builds in the quarantine history.
const RECENT_RUNS: usize = 15;
const QUARANTINE_RUNS: usize = 10;

/// One thing a reader must act on: its kind, what it is, why, and the page that explains it.
fn item(kind: &str, what: String, why: String, link: &str) -> Value {
    json!({"kind": kind, "what": what, "why": why, "link": link})
}

/// What needs action after this run, most serious first: blocked tables, a held close,
/// failed contracts, freshness breaches, stale views, decisions awaiting approval.
pub fn attention(r: &BuildReport, slos: &[SloAttainment], pages: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    // A table blocked only because its input is blocked is listed under that input.
    let blocked: BTreeSet<&str> = r.blocked.iter().map(|(t, _)| t.as_str()).collect();
    let cause = |why: &str| -> Option<String> {
        let input = why.strip_prefix("input model `")?.split('`').next()?;
        blocked.contains(input).then(|| input.to_string())
    };
    let root_of = |t: &str| {
        let mut t = t.to_string();
        let mut hops = 0;
        while let Some(up) = r
            .blocked
            .iter()
            .find(|(x, _)| *x == t)
            .and_then(|(_, w)| cause(w))
        {
            t = up;
            hops += 1;
            if hops > r.blocked.len() {
                break;
            }
        }
        t
    };
    for (t, why) in r.blocked.iter().filter(|(_, w)| cause(w).is_none()) {
        let downstream: Vec<&str> = r
            .blocked
            .iter()
            .filter(|(x, w)| x != t && cause(w).is_some() && root_of(x) == *t)
            .map(|(x, _)| x.as_str())
            .collect();
        let also = if downstream.is_empty() {
            String::new()
        } else {
            format!(
                "; {} downstream table(s) blocked with it: {}",
                downstream.len(),
                downstream.join(", ")
            )
        };
        out.push(item(
            "blocked table",
            t.clone(),
            format!("{why}{also}"),
            &format!("lineage.html#t-{t}"),
        ));
    }
    let rec = &pages["reconciliation"];
    if rec["close_held"].as_bool() == Some(true) || r.close_held.is_some() {
        let n = rec["failures"].as_array().map_or(0, Vec::len);
        out.push(item(
            "close held",
            "month-end close".into(),
            r.close_held.clone().unwrap_or_else(|| {
                format!("{n} reconciliation discrepancies outside tolerance hold the close")
            }),
            "reconciliation.html#discrepancies",
        ));
    }
    for t in r
        .all_tests()
        .filter(|t| t.status == crate::project::data_tests::Status::Fail)
    {
        out.push(item(
            "failed contract",
            format!("{} ({})", t.spec.rule, t.test),
            format!("{} failing rows; {}", t.failures, t.action),
            "contracts.html#failed",
        ));
    }
    for f in r.freshness().filter(|f| f.status != "pass") {
        out.push(item(
            "freshness",
            f.source.clone(),
            format!(
                "newest row {} h old ({}; warn after {} h, error after {} h)",
                f.age_hours.map_or("—".into(), |a| format!("{a:.1}")),
                f.status,
                f.warn_after_hours.map_or("—".into(), |v| v.to_string()),
                f.error_after_hours.map_or("—".into(), |v| v.to_string()),
            ),
            "freshness.html",
        ));
    }
    for s in slos.iter().filter(|s| s.breached) {
        out.push(item(
            "SLO breached",
            s.name.clone(),
            format!(
                "{:.1} % of {} builds met it, target {:.1} %",
                s.attainment.unwrap_or(0.0) * 100.0,
                s.observations,
                s.target * 100.0
            ),
            "freshness.html",
        ));
    }
    for v in pages["views"]["catalog"].as_array().into_iter().flatten() {
        // (An unavailable view is a known gap, catalogued with why, not an action.)
        if v["is_stale"].as_bool() == Some(true) && v["unavailable_reason"].is_null() {
            out.push(item(
                "stale view",
                text(v.as_object().expect("row"), "view_name"),
                format!(
                    "last refreshed {}, older than its {} h threshold: brains reading it must decline",
                    v["last_refresh_timestamp"].as_str().unwrap_or("never"),
                    v["staleness_threshold_hours"]
                ),
                "views.html#catalog",
            ));
        }
    }
    for d in pages["decisions"]["decisions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let e = &d["decision"];
        let status = e["status"].as_str().unwrap_or_default();
        if status == "proposed" || status == "partially_approved" {
            out.push(item(
                "awaiting approval",
                format!(
                    "{} {} → {}",
                    e["node"].as_str().unwrap_or_default(),
                    e["subject"].as_str().unwrap_or_default(),
                    e["chosen_action"].as_str().unwrap_or_default()
                ),
                format!(
                    "{status}; approvers {}",
                    e["approvers"]
                        .as_array()
                        .map(|a| a
                            .iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(", "))
                        .unwrap_or_default()
                ),
                "decisions.html#log",
            ));
        }
    }
    out
}

/// The headline KPIs from `metrics_calc_log`'s rows (all segments): latest period, value,
/// plan, difference to plan (good or bad by the metric's direction), stale flag, sparkline.
pub fn headline(log: &[Row]) -> Vec<Value> {
    let mut out = Vec::new();
    for (metric, cadence, keep, unit, name, higher) in HEADLINE {
        let rows = super::metrics::series_rows(log, metric, cadence, None, "ALL");
        let Some(last) = rows.last() else {
            continue;
        };
        let shown = &rows[rows.len().saturating_sub(*keep)..];
        let values: Vec<Option<f64>> = shown.iter().map(|r| r["metric_value"].as_f64()).collect();
        let (value, plan) = (last["metric_value"].as_f64(), last["plan_target"].as_f64());
        let diff = value.zip(plan).map(|(v, p)| v - p);
        out.push(json!({
            "metric": metric,
            "name": name,
            "unit": unit,
            "period": super::metrics::label(&text(last, "period"), cadence),
            "value": value,
            "plan": plan,
            "diff": diff,
            "good": diff.map(|d| if *higher { d >= 0.0 } else { d <= 0.0 }),
            "stale": last["stale"].as_bool().unwrap_or(false),
            "stale_reason": last.get("stale_reason").cloned().unwrap_or(Value::Null),
            "spark": svg::sparkline(&format!("{name}, last {} {cadence} periods", values.len()), &values, plan, unit),
        }));
    }
    out
}

/// Quarantined rows per source and rule over the last builds (of `run_log`'s rows): a stacked
/// chart and its table.
pub fn quarantine_history(w: &Path, run_log: &[Row]) -> Result<Value> {
    let mut order: Vec<(String, String)> = run_log
        .iter()
        .filter(|r| text(r, "command") == "build")
        .map(|r| (text(r, "started_at"), text(r, "run_id")))
        .collect();
    order.sort();
    let order: Vec<(String, String)> = order
        .into_iter()
        .rev()
        .take(QUARANTINE_RUNS)
        .rev()
        .collect();
    let index: BTreeMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, (_, id))| (id.as_str(), i))
        .collect();
    let mut by_rule: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for r in logs::read_json(w, &CONTRACT_RESULTS)? {
        let Some(&i) = index.get(text(&r, "run_id").as_str()) else {
            continue;
        };
        if text(&r, "on_fail") != "quarantine" {
            continue;
        }
        let n = r["failures"].as_f64().unwrap_or(0.0);
        let key = format!("{}.{}", text(&r, "node"), text(&r, "rule"));
        let cells = by_rule.entry(key).or_insert_with(|| vec![0.0; order.len()]);
        cells[i] += n;
    }
    by_rule.retain(|_, v| v.iter().any(|n| *n > 0.0));
    let labels: Vec<String> = order
        .iter()
        .map(|(t, id)| {
            format!(
                "{} {}",
                t.get(5..16).unwrap_or(t),
                &id[id.len().saturating_sub(4)..]
            )
        })
        .collect();
    const PALETTE: [&str; 8] = [
        "#2f5fb3", "#d9822b", "#2e8b57", "#8e44ad", "#b3261e", "#17a2b8", "#8a6d3b", "#5b6678",
    ];
    let series: Vec<svg::Series> = by_rule
        .iter()
        .enumerate()
        .map(|(k, (rule, v))| svg::Series {
            name: rule.clone(),
            values: v.clone(),
            colour: PALETTE[k % PALETTE.len()].into(),
            faded: false,
        })
        .collect();
    let chart = svg::columns(
        &format!("Quarantined rows per rule, last {} builds", order.len()),
        "Stacked columns: one per build, oldest first; each colour is a source table's rule. The table below has every figure.",
        &labels,
        &series,
        None,
        true,
        "rows",
    );
    Ok(json!({
        "chart": chart,
        "runs": labels,
        "rules": by_rule.iter().map(|(k, v)| json!({"rule": k, "rows": v})).collect::<Vec<_>>(),
    }))
}

/// The recent runs of every command (build, recognize, reconcile from `run_log`'s rows; eval
/// and canary from their logs), newest first, each linked to its page when that page exists.
/// `up` leads from the page being written to the reports root; `current` is the run being
/// rendered (its page is `index.html` beside this one).
pub fn recent_runs(
    w: &Path,
    run_log: &[Row],
    reports: &Path,
    up: &str,
    current: &str,
) -> Result<Vec<Value>> {
    let mut runs: Vec<(String, Value)> = Vec::new();
    let link = |rel: String| -> Option<String> {
        reports.join(&rel).exists().then(|| format!("{up}{rel}"))
    };
    for r in run_log {
        let (id, command) = (text(r, "run_id"), text(r, "command"));
        let href = if id == current {
            Some("index.html".to_string())
        } else {
            [
                format!("{id}/index.html"),
                format!("{command}/{id}/index.html"),
                format!("select/{id}/index.html"),
            ]
            .into_iter()
            .find_map(link)
        };
        runs.push((
            text(r, "started_at"),
            json!({"run_id": id, "command": command, "when": text(r, "started_at"), "outcome": text(r, "outcome"),
                   "detail": format!("{} published, {} blocked, {:.1} s", r["published"], r["blocked"], r["seconds"].as_f64().unwrap_or(0.0)),
                   "href": href}),
        ));
    }
    for r in logs::read_json(w, &EVAL_LOG)? {
        let id = text(&r, "run_id");
        runs.push((
            text(&r, "run_at"),
            json!({"run_id": id, "command": format!("eval {}", text(&r, "kind")), "when": text(&r, "run_at"),
                   "outcome": text(&r, "decision"),
                   "detail": r.get("model_id").and_then(Value::as_str).or(r.get("brain_under_test").and_then(Value::as_str)).unwrap_or_default(),
                   "href": link(format!("eval/{id}/eval.html"))}),
        ));
    }
    let mut seen = BTreeSet::new();
    for r in logs::read_json(w, &CANARY_RESULTS)? {
        let id = text(&r, "run_id");
        if !seen.insert(id.clone()) {
            continue;
        }
        runs.push((
            text(&r, "run_at"),
            json!({"run_id": id, "command": "canary", "when": text(&r, "run_at"), "outcome": text(&r, "verdict"),
                   "detail": format!("{}: {} vs {}", text(&r, "experiment_id"), text(&r, "variant_model"), text(&r, "control_model")),
                   "href": link(format!("canary/{id}/canary.html"))}),
        ));
    }
    runs.sort_by(|a, b| b.0.cmp(&a.0));
    runs.truncate(RECENT_RUNS);
    Ok(runs.into_iter().map(|(_, v)| v).collect())
}
