//! The golden gate as a workflow ([`run`]): score a candidate's predictions on the golden
//! datasets, decide pass or fail, and write it down — one `eval_log` row, a row per example in
//! `eval_question_scores`, and a `model.promotion` decision. A passing run is what lets the
//! same model version into a canary ([`crate::canary::run`]).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{Aligned, GateConfig, Golden, Prediction, Report};
use crate::error::Result;
use crate::eval::{self, EvalRun, QuestionScore};

/// What a golden eval scores: a predictions file against the golden datasets of `golden`.
pub struct Request<'a> {
    pub warehouse: &'a Path,
    pub predictions: &'a Path,
    /// The current model's predictions, for the paired comparison.
    pub baseline: Option<&'a Path>,
    /// The golden directory (its `manifest.json`, datasets and `eval.yml`).
    pub golden: &'a Path,
    /// The gate's thresholds, when not `<golden>/eval.yml`.
    pub config: Option<&'a Path>,
    /// Who or what started the run (`--trigger`), recorded in `eval_log`.
    pub trigger: &'a str,
}

/// A recorded golden eval.
pub struct GoldenRun {
    pub run_id: String,
    pub decision_id: String,
    pub report: Report,
}

/// Score, gate and record one golden eval; whether it passed is `report.passed`.
pub fn run(req: &Request) -> Result<GoldenRun> {
    let g = Golden::load(req.golden)?;
    let cfg_path = req
        .config
        .map_or_else(|| req.golden.join("eval.yml"), Path::to_path_buf);
    let cfg = GateConfig::load(&cfg_path, &g)?;
    let preds = super::read_predictions(req.predictions)?;
    let aligned = super::align(&g, &preds, req.predictions)?;
    let base = match req.baseline {
        Some(p) => {
            let b = super::read_predictions(p)?;
            let al = super::align(&g, &b, p)?;
            Some((b, al))
        }
        None => None,
    };
    let report = super::evaluate(
        &g,
        &cfg,
        &preds,
        &aligned,
        base.as_ref().map(|(b, al)| (b.as_slice(), al)),
        req.predictions,
    )?;
    let run_id = crate::logs::new_run_id();
    let manifest: PathBuf = req.golden.join("manifest.json");
    let run = EvalRun {
        run_id: run_id.clone(),
        kind: "golden",
        run_trigger: req.trigger.to_string(),
        model_id: Some(report.model_id.clone()),
        catalog_version: format!("{} {}", report.dataset, report.dataset_version),
        catalog_sha256: crate::table_io::sha256_file(&manifest)?,
        inputs_file: req.predictions.display().to_string(),
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
    eval::record(req.warehouse, &run, &question_rows(&g, &preds, &aligned))?;
    let thresholds = serde_json::to_value(&cfg).unwrap_or(Value::Null);
    let decision_id =
        eval::record_promotion(req.warehouse, &run, &thresholds, &run.aggregated_scores)?;
    Ok(GoldenRun {
        run_id,
        decision_id,
        report,
    })
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

/// One `eval_question_scores` row per golden example.
fn question_rows(g: &Golden, preds: &[Prediction], al: &Aligned) -> Vec<QuestionScore> {
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
