//! `gtmos eval golden`: score, gate, log, report.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::cli::Locations;
use crate::cli::{EvalArgs, EvalCommand};
use crate::error::{Outcome, Result};
use crate::eval::golden::{self, GateConfig, Golden, Report};
use crate::eval::{self, EvalRun, QuestionScore};
use crate::printer::{self, Format};
use crate::settings::{Paths, reports_dir};

pub fn run(a: EvalArgs) -> Result<Outcome> {
    let warehouse = Paths::resolve(&Locations {
        project: None,
        snapshot: None,
        warehouse: a.warehouse.clone(),
    })
    .warehouse;
    match &a.command {
        EvalCommand::Golden {
            predictions,
            baseline,
            golden: dir,
            config,
        } => {
            let g = Golden::load(dir)?;
            let cfg_path = config.clone().unwrap_or_else(|| dir.join("eval.yml"));
            let cfg = GateConfig::load(&cfg_path, &g)?;
            let preds = golden::read_predictions(predictions)?;
            let aligned = golden::align(&g, &preds, predictions)?;
            let base = match baseline {
                Some(p) => {
                    let b = golden::read_predictions(p)?;
                    let al = golden::align(&g, &b, p)?;
                    Some((b, al))
                }
                None => None,
            };
            let report = golden::evaluate(
                &g,
                &cfg,
                &preds,
                &aligned,
                base.as_ref().map(|(b, al)| (b.as_slice(), al)),
                predictions,
            )?;
            let run_id = crate::logs::new_run_id();
            let manifest_sha = crate::table_io::sha256_file(&dir.join("manifest.json"))?;
            let run = EvalRun {
                run_id: run_id.clone(),
                kind: "golden",
                run_trigger: a.trigger.clone(),
                model_id: Some(report.model_id.clone()),
                catalog_version: format!("{} {}", report.dataset, report.dataset_version),
                catalog_sha256: manifest_sha,
                inputs_file: predictions.display().to_string(),
                inputs_sha256: report.predictions_sha256.clone(),
                baseline_model_id: report.baseline_model_id.clone(),
                bootstrap: Some((cfg.bootstrap.resamples as u64, cfg.bootstrap.seed)),
                aggregated_scores: aggregated(&report),
                hard_criteria_passed: report.tasks.iter().all(|t| t.critical_misses.is_empty()),
                decision: if report.passed { "pass" } else { "fail" }.into(),
                decision_rationale: if report.passed {
                    "every task met its thresholds on the interval bound, no critical miss".into()
                } else {
                    report.reasons.join("; ")
                },
                ..Default::default()
            };
            let questions = question_rows(&g, &preds, &aligned);
            eval::record(&warehouse, &run, &questions)?;
            let thresholds = serde_json::to_value(&cfg).unwrap_or(Value::Null);
            let decision_id =
                eval::record_promotion(&warehouse, &run, &thresholds, &run.aggregated_scores)?;
            let page = if a.no_report {
                None
            } else {
                let ctx = json!({
                    "run": {"run_id": run_id, "gtmos_version": env!("CARGO_PKG_VERSION"), "footer": format!("eval run {run_id}")},
                    "golden": report,
                    "decision_id": decision_id,
                });
                Some(crate::reports::render_page(
                    "eval.html",
                    ctx,
                    &reports_dir(&a.reports).join("eval"),
                    &run_id,
                )?)
            };
            match a.format {
                Format::Json => {
                    let mut v = serde_json::to_value(&report).unwrap_or(Value::Null);
                    v["run_id"] = json!(run_id);
                    v["decision_id"] = json!(decision_id);
                    v["report"] = json!(page.as_ref().map(|p| p.display().to_string()));
                    printer::out(&format!(
                        "{}\n",
                        serde_json::to_string_pretty(&v).unwrap_or_default()
                    ))?;
                }
                Format::Text => {
                    printer::out(&text(&report, &run_id, &decision_id, page.as_deref()))?
                }
            }
            Ok(if report.passed {
                Outcome::Success
            } else {
                Outcome::GateFailed
            })
        }
    }
}

/// The scores eval_log keeps: per task the point estimates, intervals and critical misses.
fn aggregated(r: &Report) -> Value {
    let tasks: serde_json::Map<String, Value> = r
        .tasks
        .iter()
        .map(|t| {
            (
                t.task.clone(),
                json!({
                    "metrics": t.metrics,
                    "critical_misses": t.critical_misses.iter().map(|m| &m.id).collect::<Vec<_>>(),
                    "baseline_delta": t.baseline.as_ref().map(|b| json!({"metric": b.metric, "delta": b.delta, "interval": b.delta_interval, "mcnemar_mid_p": b.mcnemar_mid_p})),
                    "passed": t.passed,
                }),
            )
        })
        .collect();
    json!({"tasks": tasks, "passed": r.passed})
}

fn question_rows(
    g: &Golden,
    preds: &[golden::Prediction],
    al: &golden::Aligned,
) -> Vec<QuestionScore> {
    g.examples
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let p = &preds[al.row[i]];
            QuestionScore {
                question_id: e.id.clone(),
                task: e.task.clone(),
                attempt: 1,
                expected: Some(e.label.clone()),
                actual: Some(p.prediction.clone()),
                correct: Some(p.prediction == e.label),
                critical: Some(e.critical),
                confidence: p.confidence,
                ..Default::default()
            }
        })
        .collect()
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("undefined".into(), |v| format!("{v:.3}"))
}

fn text(r: &Report, run_id: &str, decision_id: &str, page: Option<&std::path::Path>) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "golden gate: model {} on {} {} ({} bootstrap resamples, seed {}){}",
        r.model_id,
        r.dataset,
        r.dataset_version,
        r.bootstrap_resamples,
        r.bootstrap_seed,
        r.baseline_model_id
            .as_ref()
            .map_or(String::new(), |b| format!(", baseline {b}"))
    );
    for t in &r.tasks {
        let _ = writeln!(
            s,
            "\n{} ({} examples, {} critical): {}",
            t.task,
            t.examples,
            t.critical_examples,
            if t.passed { "PASS" } else { "FAIL" }
        );
        for (name, e) in &t.metrics {
            let _ = writeln!(
                s,
                "  {name:<26} {:>9}  {}",
                fmt(e.value),
                e.interval
                    .map_or(String::new(), |i| format!("[{:.3}, {:.3}]", i.low, i.high))
            );
        }
        let _ = writeln!(
            s,
            "  {:<22} {:>9} {:>9} {:>9} {:>8}",
            "class", "precision", "recall", "F1", "support"
        );
        for c in &t.classes {
            let _ = writeln!(
                s,
                "  {:<22} {:>9} {:>9} {:>9} {:>8}",
                c.label,
                fmt(c.scores.precision),
                fmt(c.scores.recall),
                fmt(c.scores.f1),
                c.scores.support
            );
        }
        if !t.undefined.is_empty() {
            let _ = writeln!(s, "  undefined: {}", t.undefined.join("; "));
        }
        let _ = writeln!(
            s,
            "  confusion (rows truth, columns prediction; {}):",
            t.labels.join(", ")
        );
        for (l, row) in t.labels.iter().zip(&t.confusion) {
            let _ = writeln!(
                s,
                "    {l:<22} {}",
                row.iter().map(|n| format!("{n:>5}")).collect::<String>()
            );
        }
        for m in &t.critical_misses {
            let _ = writeln!(
                s,
                "  CRITICAL MISS {}: expected {}, predicted {} — {}",
                m.id, m.label, m.prediction, m.rationale
            );
        }
        for c in &t.checks {
            let _ = writeln!(
                s,
                "  [{}] {}: {}",
                if c.passed { "pass" } else { "FAIL" },
                c.check,
                c.detail
            );
        }
    }
    let _ = writeln!(
        s,
        "\n{}: {} (eval run {run_id}; decision {decision_id}: {})",
        if r.passed { "PASS" } else { "FAIL" },
        if r.passed {
            "promote to canary".to_string()
        } else {
            format!("{} reason(s)", r.reasons.len())
        },
        if r.passed {
            "promote_to_canary"
        } else {
            "hold"
        }
    );
    if let Some(p) = page {
        let _ = writeln!(s, "report: {}", p.display());
    }
    s
}
