//! The golden-gate page's charts, per task: precision and recall per class, the reliability
//! diagram of the model's confidences, the scores with their intervals against the gate's
//! thresholds, and the paired candidate − baseline differences against the non-inferiority
//! margin. They are drawn from the gate's own report, so they show what it judged.

use serde_json::{Value, json};

use super::svg::{self, Bin, ForestRow};

/// Metrics where lower is better (a margin sits above zero for them).
const LOWER_IS_BETTER: [&str; 3] = ["brier", "ece", "mce"];

fn estimate_row(name: &str, e: &Value, marks: Vec<(f64, String)>) -> ForestRow {
    let interval = e["interval"]["low"]
        .as_f64()
        .zip(e["interval"]["high"].as_f64());
    ForestRow {
        label: name.to_string(),
        value: e["value"].as_f64(),
        intervals: interval.into_iter().collect(),
        marks,
    }
}

/// The charts of one task of a golden report (`t` as the report serialises it).
fn task_charts(t: &Value, confidence: f64) -> Value {
    let task = t["task"].as_str().unwrap_or_default();
    let pct = format!("{:.0} % bootstrap interval", confidence * 100.0);
    let classes = t["classes"].as_array().cloned().unwrap_or_default();
    let of = |k: &str| classes.iter().map(|c| c[k].as_f64()).collect::<Vec<_>>();
    let per_class = svg::grouped(
        &format!("{task}: precision and recall per class"),
        "Per class, the share of its predictions that were right (precision) and the share of its examples found (recall); a ratio that is 0/0 on this data is marked undefined. The class table below has the figures and each class's support.",
        &classes
            .iter()
            .map(|c| c["label"].as_str().unwrap_or_default().to_string())
            .collect::<Vec<_>>(),
        &[("precision", of("precision")), ("recall", of("recall"))],
        1.0,
        3,
    );
    let bins: Vec<Bin> = t["reliability"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|b| {
            Some(Bin {
                low: b["low"].as_f64()?,
                high: b["high"].as_f64()?,
                n: b["n"].as_u64()?,
                confidence: b["confidence"].as_f64()?,
                accuracy: b["accuracy"].as_f64()?,
            })
        })
        .collect();
    let reliability = svg::reliability(
        &format!("{task}: reliability of the model's confidence"),
        &format!(
            "Per equal-width confidence bin, the share of predictions that were right (bars; the red dot at the bin's mean confidence); on the dashed diagonal a model is perfectly calibrated. Bins: {}.",
            bins.iter()
                .filter(|b| b.n > 0)
                .map(|b| format!(
                    "{:.1}–{:.1}: {} items, {:.3} correct at {:.3} confidence",
                    b.low, b.high, b.n, b.accuracy, b.confidence
                ))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        &bins,
    );
    let thresholds = t["thresholds"].as_array().cloned().unwrap_or_default();
    let scores: Vec<ForestRow> = t["metrics"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, e)| {
            let marks = thresholds
                .iter()
                .filter(|x| x["metric"] == name.as_str())
                .flat_map(|x| {
                    [("min", "gate minimum"), ("max", "gate maximum")]
                        .into_iter()
                        .filter_map(|(k, what)| Some((x[k].as_f64()?, what.to_string())))
                        .collect::<Vec<_>>()
                })
                .collect();
            estimate_row(name, e, marks)
        })
        .collect();
    let scores = svg::forest(
        &format!("{task}: scores against the gate"),
        &format!(
            "Each metric with its {pct}; red ticks are the gate's thresholds, which the interval's bound must clear. The scores table above has the figures."
        ),
        &scores,
        &[pct.as_str()],
        None,
        "",
    );
    let deltas = match t["baseline"].as_object() {
        Some(b) => {
            let gated = b["metric"].as_str().unwrap_or_default();
            let margin = b["non_inferiority_margin"].as_f64().unwrap_or(0.0);
            let rows: Vec<ForestRow> = b["deltas"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, e)| {
                    let marks = if name == gated {
                        let sign = if LOWER_IS_BETTER.contains(&name.as_str()) {
                            1.0
                        } else {
                            -1.0
                        };
                        vec![(sign * margin, "non-inferiority margin".to_string())]
                    } else {
                        Vec::new()
                    };
                    estimate_row(name, e, marks)
                })
                .collect();
            svg::forest(
                &format!(
                    "{task}: candidate − baseline {}",
                    b["baseline_model_id"].as_str().unwrap_or_default()
                ),
                &format!(
                    "Per metric the paired difference candidate − baseline with its {pct}; the dashed line is no difference, the red tick the non-inferiority margin on {gated}, which the interval's worse bound must not cross. The differences table below has the figures."
                ),
                &rows,
                &[pct.as_str()],
                Some(0.0),
                "",
            )
        }
        None => String::new(),
    };
    json!({"per_class": per_class, "reliability": reliability, "scores": scores, "deltas": deltas})
}

/// The charts of a golden report, one entry per task in its order.
pub fn golden_charts(report: &Value) -> Vec<Value> {
    let confidence = report["confidence"].as_f64().unwrap_or(0.95);
    report["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| task_charts(t, confidence))
        .collect()
}
