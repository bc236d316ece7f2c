//! The strategy page of the build report: what the strategy brain (AGT-903) reads, drawn —
//! cohort retention curves with TOOL-013's projections, cohort heatmaps, the ICP against
//! outcomes, TOOL-015's gross-profit bridge, the metric layer over quarters, win-loss by
//! segment — from the published strategy tables, and the views the snapshot cannot support.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::finance::{num, text};
use super::svg::{self, Curve, Heat, Point};
use crate::error::Result;
use crate::warehouse::Warehouse;

type Row = Map<String, Value>;

/// Cohorts drawn as curves (the most recent ones; the heatmaps and tables have them all).
const CURVES: usize = 6;

fn rows(w: &Warehouse, table: &str) -> Result<Vec<Row>> {
    Ok(super::finance::published_rows(w, table)?.unwrap_or_default())
}

fn opt(r: &Row, k: &str) -> Option<f64> {
    r.get(k).and_then(Value::as_f64)
}

/// NRR or logo retention curves of the latest cohorts, each continued by its projection.
fn cohort_curves(cohorts: &[Row], forecast: &[Row], metric: &str, column: &str) -> String {
    let mut by: BTreeMap<String, Curve> = BTreeMap::new();
    for r in cohorts {
        let c = by.entry(text(r, "cohort")).or_insert_with(|| Curve {
            label: text(r, "cohort"),
            ..Default::default()
        });
        if let Some(v) = opt(r, column) {
            c.observed.push((num(r, "quarters_since"), v));
        }
    }
    for r in forecast.iter().filter(|r| text(r, "metric") == metric) {
        if let (Some(c), Some(v), Some(lo), Some(hi)) = (
            by.get_mut(&text(r, "cohort")),
            opt(r, "projected_pct"),
            opt(r, "low_pct"),
            opt(r, "high_pct"),
        ) {
            c.projected.push((num(r, "quarters_since"), v, lo, hi));
        }
    }
    let shown: Vec<Curve> = by.into_values().rev().take(CURVES).collect();
    let name = if metric == "nrr" {
        "Net revenue retention"
    } else {
        "Logo retention"
    };
    svg::curves(
        &format!(
            "{name} by quarters since signup, latest {} cohorts, %",
            shown.len()
        ),
        "Each line is a signup cohort's retention in the quarters after its first full quarter (= 100 %); the dashed continuation is TOOL-013's projection inside its 90 % band. The cohort and forecast tables below have every figure.",
        &shown,
        "quarters since signup",
        "%",
    )
}

fn heat(cohorts: &[Row], column: &str, title: &str) -> String {
    let mut names: Vec<String> = cohorts.iter().map(|r| text(r, "cohort")).collect();
    names.dedup();
    let width = cohorts
        .iter()
        .map(|r| num(r, "quarters_since") as usize)
        .max()
        .unwrap_or(0);
    let mut values = vec![vec![None; width]; names.len()];
    for r in cohorts {
        let i = names
            .iter()
            .position(|n| *n == text(r, "cohort"))
            .expect("listed");
        let k = num(r, "quarters_since") as usize;
        if k >= 1 {
            values[i][k - 1] = opt(r, column);
        }
    }
    svg::heatmap(
        title,
        "Rows: signup cohorts; columns: quarters after the cohort's first full quarter; each cell in %, green above 100, red below. The cohort table below has every figure.",
        &Heat {
            rows: names,
            columns: (1..=width).map(|k| format!("+{k}")).collect(),
            values,
            centre: 100.0,
        },
        "%",
    )
}

/// TOOL-015's effects summed per quarter over the customers it decomposed, as stacked columns
/// with the GP change as a line, and the same per quarter for the table with the refusals
/// counted. Quarters where every customer was refused (before the cost feed began) are left
/// out of both and counted apart.
fn gp_bridge(gp: &[Row]) -> (String, Vec<Value>, usize) {
    const EFFECTS: [(&str, &str, &str); 4] = [
        ("pricing", "pricing_effect_usd", "#2f5fb3"),
        ("utilisation", "utilisation_effect_usd", "#2e8b57"),
        ("backend cost", "backend_cost_effect_usd", "#c0392b"),
        ("tier mix", "tier_mix_effect_usd", "#d9822b"),
    ];
    // quarter → (decomposed, refused, [GP, change, effects…] over the decomposed)
    let mut by: BTreeMap<String, (u32, u32, [f64; 6])> = BTreeMap::new();
    for r in gp {
        let q = by.entry(text(r, "quarter")).or_default();
        if opt(r, "pricing_effect_usd").is_none() {
            q.1 += 1;
            continue;
        }
        q.0 += 1;
        q.2[0] += num(r, "gross_profit_usd");
        q.2[1] += num(r, "gross_profit_change_usd");
        for (i, (_, column, _)) in EFFECTS.iter().enumerate() {
            q.2[2 + i] += num(r, column);
        }
    }
    let all_refused = by.values().filter(|q| q.0 == 0).count();
    by.retain(|_, q| q.0 > 0);
    let labels: Vec<String> = by
        .keys()
        .map(|q| super::metrics::label(q, "quarterly"))
        .collect();
    let series: Vec<svg::Series> = EFFECTS
        .iter()
        .enumerate()
        .map(|(i, (name, _, colour))| svg::Series {
            name: (*name).into(),
            values: by.values().map(|q| q.2[2 + i]).collect(),
            colour: (*colour).into(),
            faded: false,
        })
        .collect();
    let change = svg::Series {
        name: "GP change".into(),
        values: by.values().map(|q| q.2[1]).collect(),
        colour: "#1d2430".into(),
        faded: false,
    };
    let chart = svg::columns(
        "Gross-profit bridge per quarter, consumption SKUs (USD)",
        "Per quarter, over the customers TOOL-015 could decompose: the change in gross profit on the quarter before, split into pricing, utilisation, backend-cost and tier-mix effects (up adds GP, down takes it); the line is the change itself, which the four sum to exactly. Refused customer-quarters are left out and counted in the table below.",
        &labels,
        &series,
        Some(&change),
        true,
        "$",
    );
    let table = by
        .values()
        .zip(&labels)
        .map(|((n, refused, v), label)| {
            json!({
                "quarter": label, "decomposed": n, "refused": refused, "gross_profit_usd": v[0],
                "change_usd": v[1], "pricing_usd": v[2], "utilisation_usd": v[3],
                "backend_cost_usd": v[4], "tier_mix_usd": v[5],
            })
        })
        .collect();
    (chart, table, all_refused)
}

/// The page's data, or None when the build published no strategy tables.
pub fn strategy(w: &Warehouse, catalog: Option<&Value>) -> Result<Option<Value>> {
    let cohorts = rows(w, "cohort_retention")?;
    let forecast = rows(w, "cohort_retention_forecast")?;
    let icp = rows(w, "icp_outcomes")?;
    let metrics = rows(w, "metrics_strategy")?;
    let win_loss = rows(w, "win_loss_quarterly")?;
    let (gp_chart, gp_quarters, gp_all_refused) = gp_bridge(&rows(w, "gp_decomposition")?);
    if cohorts.is_empty() && icp.is_empty() && metrics.is_empty() && win_loss.is_empty() {
        return Ok(None);
    }
    // ICP tiers against outcomes, all cohorts together.
    let tiers: Vec<&Row> = icp
        .iter()
        .filter(|r| text(r, "dimension") == "icp_tier" && text(r, "cohort") == "ALL")
        .collect();
    let icp_chart = svg::grouped(
        "ICP tier against outcomes, all cohorts, %",
        "Per ICP tier at as_of: the win rate of its accounts' closed opportunities, its customers' churn rate and their net revenue retention since their first full quarter. A tier without the data says undefined. The table below has every dimension and cohort.",
        &tiers.iter().map(|r| text(r, "band")).collect::<Vec<_>>(),
        &[
            (
                "win rate",
                tiers.iter().map(|r| opt(r, "win_rate_pct")).collect(),
            ),
            (
                "churn rate",
                tiers.iter().map(|r| opt(r, "churn_rate_pct")).collect(),
            ),
            ("NRR", tiers.iter().map(|r| opt(r, "nrr_pct")).collect()),
        ],
        tiers
            .iter()
            .flat_map(|r| {
                [
                    opt(r, "win_rate_pct"),
                    opt(r, "churn_rate_pct"),
                    opt(r, "nrr_pct"),
                ]
            })
            .flatten()
            .fold(100.0f64, f64::max),
        1,
    );
    // The metric layer over quarters.
    let mut series: BTreeMap<String, Vec<&Row>> = BTreeMap::new();
    for r in &metrics {
        series.entry(text(r, "metric_name")).or_default().push(r);
    }
    let trends: Vec<Value> = series
        .iter()
        .map(|(m, rs)| {
            let points: Vec<Point> = rs
                .iter()
                .map(|r| Point {
                    label: super::metrics::label(&text(r, "period"), "quarterly"),
                    value: opt(r, "metric_value"),
                    stale: r["stale"].as_bool().unwrap_or(false),
                    plan: opt(r, "plan_target"),
                    board: opt(r, "board_plan_target"),
                })
                .collect();
            let last = rs.last().expect("a series has rows");
            json!({
                "metric": m,
                "svg": svg::trend(&format!("{m}, quarterly, last {} quarters", rs.len()), &points, if m.starts_with("nrr") || m.starts_with("grr") { "%" } else { "" }),
                "trend": last.get("trend"),
                "change_yoy": last.get("change_yoy"),
            })
        })
        .collect();
    // Win rate per segment over quarters.
    let mut segments: BTreeMap<String, Vec<&Row>> = BTreeMap::new();
    for r in &win_loss {
        segments.entry(text(r, "segment")).or_default().push(r);
    }
    let win_curves: Vec<Curve> = segments
        .iter()
        .map(|(seg, rs)| Curve {
            label: seg.clone(),
            observed: rs
                .iter()
                .enumerate()
                .filter_map(|(i, r)| Some((i as f64, opt(r, "win_rate_pct")?)))
                .collect(),
            projected: Vec::new(),
        })
        .collect();
    let quarters: Vec<String> = segments
        .values()
        .next()
        .map(|rs| rs.iter().map(|r| text(r, "quarter")).collect())
        .unwrap_or_default();
    let win_chart = svg::curves(
        "Win rate by segment, per close quarter, %",
        &format!(
            "Win rate (won ÷ closed) of the opportunities closed in each quarter, per segment and over all; quarter 0 is {}. The table below has every quarter, cycle length and the top loss reasons.",
            quarters.first().map_or("the first", String::as_str)
        ),
        &win_curves,
        "quarters, oldest first",
        "%",
    );
    let unavailable: Vec<Value> = catalog
        .and_then(|c| c["catalog"].as_array())
        .into_iter()
        .flatten()
        .filter(|v| !v["unavailable_reason"].is_null())
        .cloned()
        .collect();
    Ok(Some(json!({
        "nrr_curves": cohort_curves(&cohorts, &forecast, "nrr", "nrr_pct"),
        "logo_curves": cohort_curves(&cohorts, &forecast, "logo_retention", "logo_retention_pct"),
        "nrr_heatmap": heat(&cohorts, "nrr_pct", "NRR by signup cohort, %"),
        "logo_heatmap": heat(&cohorts, "logo_retention_pct", "Logo retention by signup cohort, %"),
        "cohorts": cohorts,
        "forecast": forecast,
        "icp_chart": icp_chart,
        "icp": icp,
        "gp_chart": gp_chart,
        "gp_quarters": gp_quarters,
        "gp_all_refused": gp_all_refused,
        "trends": trends,
        "win_chart": win_chart,
        "win_loss": win_loss,
        "unavailable": unavailable,
    })))
}
