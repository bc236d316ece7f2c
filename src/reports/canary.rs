//! The canary page's charts: a forest plot of every metric's difference with its fixed-horizon
//! interval and always-valid confidence sequence, the decision thresholds drawn; each metric's
//! confidence sequence across the looks so far; the sample-ratio check.

use std::path::Path;

use serde_json::{Value, json};

use super::finance::text;
use super::svg::{self, ForestRow, Look};
use crate::canary::compare::{Comparison, Config, Direction, MetricResult};
use crate::error::Result;
use crate::logs::{self, CANARY_RESULTS};

/// A metric's thresholds on its difference (variant − control, in its own units), labelled:
/// the guardrail's non-inferiority margin, the band's edges, the primary's equivalence bounds.
fn thresholds(m: &MetricResult, cfg: &Config) -> Vec<(f64, String)> {
    let Some(cv) = m.control.value.filter(|v| *v != 0.0) else {
        return Vec::new();
    };
    match m.role {
        "guardrail" => cfg
            .guardrails
            .iter()
            .filter(|g| g.metric == m.metric)
            .map(|g| {
                let margin = g.margin.unwrap_or(g.margin_relative.unwrap_or(0.0) * cv);
                let sign = if g.direction == Direction::Lower {
                    1.0
                } else {
                    -1.0
                };
                (sign * margin, "non-inferiority margin".to_string())
            })
            .collect(),
        "band" => vec![
            (
                cfg.trust_block_band.relative_low * cv,
                "band, low edge".into(),
            ),
            (
                cfg.trust_block_band.relative_high * cv,
                "band, high edge".into(),
            ),
        ],
        "primary" => vec![
            (-cfg.equivalence_relative * cv, "equivalence bound".into()),
            (cfg.equivalence_relative * cv, "equivalence bound".into()),
        ],
        _ => Vec::new(),
    }
}

/// The page's charts. `looks` are this experiment's `canary_results` rows (every look so far,
/// this one included).
pub fn charts(c: &Comparison, cfg: &Config, looks: &[serde_json::Map<String, Value>]) -> Value {
    // Differences relative to the control arm, in %, so every metric shares one axis.
    let rows: Vec<ForestRow> = c
        .metrics
        .iter()
        .filter_map(|m| {
            let cv = m.control.value.filter(|v| v.abs() > 1e-12)?;
            let rel = |v: f64| 100.0 * v / cv;
            Some(ForestRow {
                label: format!("{} ({})", m.metric, m.role),
                value: m.delta.map(rel),
                // A missing interval is left out of the drawing.
                intervals: [m.ci_fixed, m.confidence_sequence]
                    .into_iter()
                    .flatten()
                    .map(|(a, b)| (rel(a), rel(b)))
                    .filter(|(a, b)| a.is_finite() && b.is_finite())
                    .collect(),
                marks: thresholds(m, cfg)
                    .into_iter()
                    .map(|(v, w)| (rel(v), w))
                    .collect(),
            })
        })
        .collect();
    let forest = svg::forest(
        "Variant − control, % of the control arm",
        "Per metric the difference relative to the control arm: the dot is the estimate, the thick line the fixed-horizon interval, the thin line below it the always-valid confidence sequence; red ticks are the decision thresholds (guardrail margins, band edges, equivalence bounds); the dashed line is no difference. The table below has the figures.",
        &rows,
        &["fixed-horizon interval", "confidence sequence"],
        Some(0.0),
        "%",
    );
    let sequences: Vec<Value> = c
        .metrics
        .iter()
        .filter(|m| m.role != "reported")
        .map(|m| {
            let mine: Vec<Look> = looks
                .iter()
                .filter(|r| text(r, "metric") == m.metric)
                .map(|r| Look {
                    label: text(r, "as_of").get(..10).unwrap_or_default().to_string(),
                    value: r["delta"].as_f64(),
                    low: r["cs_low"].as_f64(),
                    high: r["cs_high"].as_f64(),
                })
                .collect();
            let points: Vec<Value> = mine
                .iter()
                .map(|l| json!({"label": l.label, "value": l.value, "low": l.low, "high": l.high}))
                .collect();
            json!({
                "metric": m.metric,
                "points": points,
                "svg": svg::sequence(
                    &format!("{}: confidence sequence over {} look(s)", m.metric, mine.len()),
                    "The difference (variant − control) at each look with its always-valid confidence sequence shaded; the dashed line is no difference, dotted red lines the thresholds. It stays valid however often the canary is looked at.",
                    &mine,
                    &thresholds(m, cfg),
                    "",
                ),
            })
        })
        .collect();
    let s = &c.srm;
    let srm = svg::share(
        "Sample ratio: accounts per arm",
        &format!(
            "{} control and {} variant accounts against a {:.0} % variant design: chi-square {:.2}, p = {:.3}",
            s.control_accounts,
            s.variant_accounts,
            s.expected_variant_share * 100.0,
            s.chi_square,
            s.p
        ),
        &[
            ("control".into(), s.control_accounts as f64),
            ("variant".into(), s.variant_accounts as f64),
        ],
        1.0 - s.expected_variant_share,
    );
    json!({"forest": forest, "sequences": sequences, "srm": srm})
}

/// Every look at an experiment so far (its `canary_results` rows for this variant), oldest
/// first.
pub fn looks(
    warehouse: &Path,
    experiment: &str,
    variant: &str,
) -> Result<Vec<serde_json::Map<String, Value>>> {
    let mut rows: Vec<_> = logs::read_json(warehouse, &CANARY_RESULTS)?
        .into_iter()
        .filter(|r| text(r, "experiment_id") == experiment && text(r, "variant_model") == variant)
        .collect();
    rows.sort_by_key(|r| (text(r, "as_of"), text(r, "run_at")));
    Ok(rows)
}
