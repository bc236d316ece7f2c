//! The metric-layer pages of the build report: metrics vs plan (trends with plan and board
//! lines, stale and blocked values marked), the NRR/GRR acquisition-cohort table, and the
//! decision log. They read the warehouse's published tables and logs.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::finance::text;
use super::svg::{Point, trend};
use crate::calendar::Day;
use crate::error::Result;
use crate::warehouse::Warehouse;

/// The charts of the page: (metric, cadence, channel, periods shown, unit, title).
const SERIES: &[(&str, &str, Option<&str>, usize, &str, &str)] = &[
    (
        "nrr",
        "monthly",
        None,
        13,
        "%",
        "Net revenue retention (NRR), %",
    ),
    (
        "grr",
        "monthly",
        None,
        13,
        "%",
        "Gross revenue retention (GRR), %",
    ),
    ("magic_number", "quarterly", None, 8, "", "Magic Number"),
    (
        "cac_payback_months",
        "quarterly",
        None,
        8,
        "mo",
        "CAC payback, months",
    ),
    (
        "rule_of_40_ebitda",
        "quarterly",
        None,
        8,
        "",
        "Rule of 40 (EBITDA margin)",
    ),
    (
        "rule_of_40_fcf",
        "quarterly",
        None,
        8,
        "",
        "Rule of 40 (FCF margin)",
    ),
    (
        "rule_of_40_operating",
        "quarterly",
        None,
        8,
        "",
        "Rule of 40 (operating margin)",
    ),
    (
        "pipeline_coverage",
        "weekly",
        None,
        13,
        "×",
        "Pipeline coverage",
    ),
    (
        "cac_per_sqo",
        "monthly",
        Some("ALL"),
        13,
        "$",
        "CAC per SQO, all channels (trailing quarter)",
    ),
    (
        "sql_to_win_pct",
        "monthly",
        None,
        13,
        "%",
        "SQL → win rate, % (trailing quarter)",
    ),
];

pub(super) fn label(period: &str, cadence: &str) -> String {
    match (cadence, Day::parse(period).ok()) {
        ("quarterly", Some(d)) => format!("{}-Q{}", d.year(), (d.month() - 1) / 3 + 1),
        ("monthly", _) => period.get(..7).unwrap_or(period).to_string(),
        _ => period.to_string(),
    }
}

/// One series of `metrics_calc_log`, oldest period first.
pub(super) fn series_rows<'a>(
    log: &'a [Map<String, Value>],
    metric: &str,
    cadence: &str,
    channel: Option<&str>,
    segment: &str,
) -> Vec<&'a Map<String, Value>> {
    let mut rows: Vec<&Map<String, Value>> = log
        .iter()
        .filter(|r| {
            text(r, "metric_name") == metric
                && text(r, "cadence") == cadence
                && text(r, "segment") == segment
                && r.get("channel").and_then(Value::as_str) == channel
        })
        .collect();
    rows.sort_by_key(|r| text(r, "period"));
    rows
}

/// The metrics page's data from `metrics_calc_log`'s rows (`log`, None when it has not been
/// published, and then no page).
pub fn metrics(w: &Warehouse, log: Option<&[Map<String, Value>]>) -> Result<Option<Value>> {
    let Some(log) = log else {
        return Ok(None);
    };
    let mut charts = Vec::new();
    for (metric, cadence, channel, keep, unit, title) in SERIES {
        let rows = series_rows(log, metric, cadence, *channel, "ALL");
        if rows.is_empty() {
            continue;
        }
        let shown = &rows[rows.len().saturating_sub(*keep)..];
        let points: Vec<Point> = shown
            .iter()
            .map(|r| Point {
                label: label(&text(r, "period"), cadence),
                value: r["metric_value"].as_f64(),
                stale: r["stale"].as_bool().unwrap_or(false),
                plan: r["plan_target"].as_f64(),
                board: r["board_plan_target"].as_f64(),
            })
            .collect();
        let last = shown[shown.len() - 1];
        charts.push(json!({
            "metric": metric,
            "cadence": cadence,
            "svg": trend(title, &points, unit),
            "points": points.iter().map(|p| json!({"label": p.label, "value": p.value, "stale": p.stale, "plan": p.plan, "board": p.board})).collect::<Vec<_>>(),
            "latest": Value::Object((*last).clone()),
            "latest_label": label(&text(last, "period"), cadence),
            "stale": shown.iter().any(|r| r["stale"].as_bool().unwrap_or(false)),
            "gaps": shown.iter().filter(|r| r["metric_value"].is_null()).count(),
        }));
    }
    // Latest period of every metric × cadence, each segment side by side.
    let mut latest: BTreeMap<(String, String), String> = BTreeMap::new();
    for r in log.iter().filter(|r| r["channel"].is_null()) {
        let k = (text(r, "metric_name"), text(r, "cadence"));
        let p = text(r, "period");
        if latest.get(&k).is_none_or(|x| *x < p) {
            latest.insert(k, p);
        }
    }
    let segments: Vec<Value> = latest
        .iter()
        .map(|((metric, cadence), period)| {
            let cell = |seg: &str| {
                log.iter()
                    .find(|r| {
                        text(r, "metric_name") == *metric
                            && text(r, "cadence") == *cadence
                            && text(r, "period") == *period
                            && text(r, "segment") == seg
                            && r["channel"].is_null()
                    })
                    .map(|r| Value::Object(r.clone()))
                    .unwrap_or(Value::Null)
            };
            json!({
                "metric": metric, "cadence": cadence, "period": label(period, cadence),
                "SMB": cell("SMB"), "MM": cell("MM"), "ENT": cell("ENT"), "ALL": cell("ALL"),
            })
        })
        .collect();
    let stale: std::collections::BTreeSet<String> = log
        .iter()
        .filter(|r| r["stale"].as_bool().unwrap_or(false))
        .map(|r| text(r, "metric_name"))
        .collect();
    Ok(Some(json!({
        "charts": charts,
        "segments": segments,
        "stale_metrics": stale,
        "cohorts": cohorts(w)?,
        "definition_versions": log.iter().map(|r| (text(r, "metric_name"), text(r, "definition_version"))).collect::<BTreeMap<_, _>>(),
    })))
}

/// Acquisition cohorts (first quarter with recurring revenue) × quarters since their first
/// full quarter: net retention Σ R(q0+k) ÷ Σ R(q0) and gross retention Σ min(R(q0+k), R(q0))
/// ÷ Σ R(q0), in %, for the last eight cohorts with a full quarter.
fn cohorts(w: &Warehouse) -> Result<Value> {
    let path = w.published_file("metric_revenue");
    if !path.exists() {
        return Ok(Value::Null);
    }
    let quarter = |m: &str| Day::parse(m).ok().map(|d| d.first_of_quarter().0);
    // account → quarter → recurring revenue; and the last complete quarter.
    let mut rev: BTreeMap<String, BTreeMap<i32, f64>> = BTreeMap::new();
    let mut last_month: Option<i32> = None;
    // One row per account-month (millions at scale): read in batches.
    crate::table_io::for_each_json_row(&path, |r| {
        let month = r.get("month");
        let month = month.as_str().unwrap_or_default();
        let Some(q) = quarter(month) else {
            return Ok(());
        };
        let account = r.get("account_id");
        *rev.entry(account.as_str().unwrap_or_default().to_string())
            .or_default()
            .entry(q)
            .or_default() += r.get("recurring_usd").as_f64().unwrap_or(0.0);
        last_month = last_month.max(Day::parse(month).ok().map(|d| d.0));
        Ok(())
    })?;
    let Some(last_month) = last_month else {
        return Ok(Value::Null);
    };
    // The last quarter whose final month is in the data.
    let last_q = Day(last_month).add_months(-2).first_of_quarter().0;
    let last_q = if Day(last_q).add_months(2).0 <= last_month {
        last_q
    } else {
        Day(last_q).add_months(-3).0
    };
    // cohort (first revenue quarter) → [(Σ base, Σ now, Σ capped) per offset]
    let mut table: BTreeMap<i32, Vec<(f64, f64, f64)>> = BTreeMap::new();
    let mut sizes: BTreeMap<i32, usize> = BTreeMap::new();
    for qs in rev.values() {
        let Some((&first, _)) = qs.iter().find(|(_, v)| **v > 0.0) else {
            continue;
        };
        let q0 = Day(first).add_months(3).0;
        let base = qs.get(&q0).copied().unwrap_or(0.0);
        if base <= 0.0 || q0 > last_q {
            continue;
        }
        *sizes.entry(first).or_default() += 1;
        let cells = table.entry(first).or_default();
        let mut q = q0;
        let mut k = 0;
        while q <= last_q && k < 9 {
            let now = qs.get(&q).copied().unwrap_or(0.0);
            if cells.len() <= k {
                cells.push((0.0, 0.0, 0.0));
            }
            cells[k].0 += base;
            cells[k].1 += now;
            cells[k].2 += now.min(base);
            q = Day(q).add_months(3).0;
            k += 1;
        }
    }
    let rows: Vec<Value> = table
        .iter()
        .rev()
        .take(8)
        .rev()
        .map(|(c, cells)| {
            json!({
                "cohort": label(&Day(*c).iso(), "quarterly"),
                "accounts": sizes[c],
                "nrr": cells.iter().map(|(b, n, _)| 100.0 * n / b).collect::<Vec<_>>(),
                "grr": cells.iter().map(|(b, _, g)| 100.0 * g / b).collect::<Vec<_>>(),
            })
        })
        .collect();
    let width = rows
        .iter()
        .map(|r| r["nrr"].as_array().map_or(0, Vec::len))
        .max()
        .unwrap_or(0);
    let heat = |key: &str, title: &str| {
        let heat = super::svg::Heat {
            rows: rows
                .iter()
                .map(|r| text(r.as_object().expect("row"), "cohort"))
                .collect(),
            columns: (0..width).map(|k| format!("+{k}q")).collect(),
            values: rows
                .iter()
                .map(|r| {
                    let v = r[key].as_array().cloned().unwrap_or_default();
                    (0..width)
                        .map(|k| v.get(k).and_then(Value::as_f64))
                        .collect()
                })
                .collect(),
            centre: 100.0,
        };
        super::svg::heatmap(
            title,
            "Rows: acquisition cohorts; columns: quarters after the cohort's first full quarter; each cell the retention in %, green above 100, red below. The table below holds the same figures.",
            &heat,
            "%",
        )
    };
    Ok(json!({
        "rows": rows,
        "offsets": (0..width).collect::<Vec<_>>(),
        "nrr_heatmap": heat("nrr", "Net revenue retention by cohort, %"),
        "grr_heatmap": heat("grr", "Gross revenue retention by cohort, %"),
    }))
}

/// The decision-log page: this build's node outcomes with every subject's verdict, and every
/// decision at its current status with its history.
pub fn decisions(
    w: &Warehouse,
    outcomes: &[crate::decisions::NodeOutcome],
) -> Result<Option<Value>> {
    let log = crate::decisions::read_log(&w.root)?;
    if log.is_empty() && outcomes.is_empty() {
        return Ok(None);
    }
    let nodes: Vec<Value> = outcomes
        .iter()
        .map(|o| {
            let rows = super::finance::published_rows(w, &o.model)?.unwrap_or_default();
            Ok(json!({"outcome": o, "rows": rows}))
        })
        .collect::<Result<_>>()?;
    let current = crate::decisions::current(&log);
    let history: BTreeMap<String, Vec<&crate::decisions::Entry>> =
        log.iter().fold(BTreeMap::new(), |mut m, e| {
            m.entry(e.decision_id.clone())
                .or_insert_with(Vec::new)
                .push(e);
            m
        });
    let decisions: Vec<Value> = current
        .iter()
        .rev()
        .map(|e| {
            let h = history
                .get(&e.decision_id)
                .map(|h| h.iter().map(|x| x.to_json()).collect::<Vec<_>>());
            json!({"decision": e.to_json(), "history": h})
        })
        .collect();
    let count = |s: &str| current.iter().filter(|e| e.status == s).count();
    Ok(Some(json!({
        "nodes": nodes,
        "decisions": decisions,
        "counts": {"proposed": count("proposed"), "partially_approved": count("partially_approved"), "approved": count("approved"), "executed": count("executed"), "rejected": count("rejected"), "reverted": count("reverted")},
    })))
}
