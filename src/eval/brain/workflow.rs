//! The brain eval as a workflow ([`run`]): check the outputs were answered on the published
//! view contracts and that no reviewer tuned a brain under test, score every answer against
//! the rubric, decide, and write it down — one `eval_log` row, a row per answer in
//! `eval_question_scores`, and a `model.promotion` decision.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{
    BrainOutput, BrainReport, Catalog, align, dependent_reviewers, evaluate, read_outputs,
    read_scores,
};
use crate::error::{Error, Result};
use crate::eval::{self, EvalRun, QuestionScore};

/// What a brain eval scores: the brains' outputs and the reviewers' scores, on a catalog.
pub struct Request<'a> {
    pub warehouse: &'a Path,
    pub outputs: &'a Path,
    pub scores: &'a Path,
    /// The catalog directory (questions, rubric, prompt-tuner registry).
    pub catalog: &'a Path,
    /// Score outputs answered on other view contracts than the warehouse publishes (recorded).
    pub allow_contracts_mismatch: bool,
    /// Who or what started the run (`--trigger`), recorded in `eval_log`.
    pub trigger: &'a str,
}

/// A recorded brain eval; whether it promotes is `eval::promotes(&report.decision)`.
pub struct BrainRun {
    pub run_id: String,
    pub decision_id: String,
    pub report: BrainReport,
}

/// A brain eval refused for reviewer independence; nothing was logged.
pub struct Refusal {
    /// (reviewer, brain whose prompt they tuned).
    pub reviewers: Vec<(String, String)>,
    /// The prompt-tuner registry that says so.
    pub registry: PathBuf,
}

/// The outcome of [`run`].
pub enum BrainEval {
    Done(Box<BrainRun>),
    Refused(Refusal),
}

/// Check, score, decide and record one brain eval. Reviewer independence is checked before
/// anything is scored or written: the eval is a measurement, not a target.
pub fn run(req: &Request) -> Result<BrainEval> {
    let dir = req.catalog;
    let catalog = Catalog::load(dir)?;
    let outputs = read_outputs(req.outputs)?;
    let contracts_check = check_view_contracts(
        req.warehouse,
        &outputs,
        req.outputs,
        req.allow_contracts_mismatch,
    )?;
    let scores = read_scores(req.scores)?;
    let answers = align(&catalog, &outputs, req.outputs, &scores, req.scores)?;
    // Reviewer independence is checked before anything is scored or written.
    let dependent = dependent_reviewers(&catalog, &outputs, &scores);
    if !dependent.is_empty() {
        return Ok(BrainEval::Refused(Refusal {
            reviewers: dependent,
            registry: dir.join("prompt_tuners.yml"),
        }));
    }
    let report = evaluate(&catalog, &answers, req.outputs, req.scores)?;
    let run_id = crate::logs::new_run_id();
    let joined = |v: &[String]| v.join(",");
    let aggregated = json!({
        "criteria": report.criteria.iter().map(|c| (c.name.to_string(), json!({
            "hard": c.hard, "value": c.value, "threshold": c.threshold, "met": c.met,
            "shortfall_points": c.shortfall_points.filter(|s| s.is_finite()),
            "evidence": c.evidence.as_ref().map(|e| json!({"failures": e.failures, "n": e.n, "upper_bound": e.upper_bound, "n_to_prove": e.n_to_prove})),
        }))).collect::<serde_json::Map<_, _>>(),
        "soft_met": report.soft_met,
        "validator_issues": report.validator_issues,
        "flaky_questions": report.flakiness.iter().filter(|f| f.flaky).map(|f| &f.question_id).collect::<Vec<_>>(),
    });
    let run = EvalRun {
        run_id: run_id.clone(),
        kind: "brain",
        run_trigger: req.trigger.to_string(),
        model_id: Some(joined(&report.models)),
        brain_under_test: Some(joined(&report.brains)),
        system_prompt_hash: Some(
            report
                .prompt_hashes
                .iter()
                .map(|(b, h)| format!("{b}={}", h.join("|")))
                .collect::<Vec<_>>()
                .join(";"),
        ),
        brain_view_contracts_hash: Some(joined(&report.view_contracts_hashes))
            .filter(|s| !s.is_empty()),
        catalog_version: report.catalog_version.clone(),
        catalog_sha256: report.catalog_sha256.clone(),
        inputs_file: req.outputs.display().to_string(),
        inputs_sha256: report.outputs_sha256.clone(),
        reviewer_user_id: Some(joined(&report.reviewers)),
        reviewer_independence_verified: Some(true),
        aggregated_scores: aggregated,
        hard_criteria_passed: report.hard_passed,
        decision: report.decision.clone(),
        decision_rationale: report.rationale.clone(),
        calibration_notes: Some(flakiness_note(&report)),
        token_cost_usd: Some(report.cost_usd),
        view_contracts_check: Some(contracts_check),
        ..Default::default()
    };
    let questions: Vec<QuestionScore> = report
        .answers
        .iter()
        .zip(&answers)
        .map(|(s, a)| QuestionScore {
            question_id: s.question_id.clone(),
            task: s.question_type.clone(),
            attempt: s.run as i64,
            expected: Some(a.question.ground_truth.clone()),
            actual: Some(s.actions.join(",")),
            correct: Some(s.passed),
            critical: None,
            confidence: s.confidence,
            uses_stale_fixture: Some(s.uses_stale_fixture),
            scores: Some(json!({
                "analysis_id": s.analysis_id,
                "factual_sentences": s.factual_sentences,
                "cited_sentences": s.cited_sentences,
                "hallucinations_detected": s.hallucinations,
                "total_claims": s.claims,
                "diagnosis_accuracy_score": s.diagnosis,
                "narrative_coherence_rating": s.coherence,
                "lever_mapping_violations": s.lever_violations,
                "staleness_correctly_recognized": s.staleness_recognised,
                "lever_mapping_correct": s.lever_correct,
            })),
            validator_issues: Some(serde_json::to_value(&s.issues).unwrap_or(Value::Null)),
            reviewer_comments: s.comments.clone(),
        })
        .collect();
    eval::record(req.warehouse, &run, &questions)?;
    let thresholds = serde_json::to_value(&catalog.rubric).unwrap_or(Value::Null);
    let decision_id =
        eval::record_promotion(req.warehouse, &run, &thresholds, &run.aggregated_scores)?;
    Ok(BrainEval::Done(Box::new(BrainRun {
        run_id,
        decision_id,
        report,
    })))
}

fn flakiness_note(r: &BrainReport) -> String {
    if r.flakiness.is_empty() {
        return "one run per question: flakiness not measured".into();
    }
    let flaky: Vec<String> = r
        .flakiness
        .iter()
        .filter(|f| f.flaky)
        .map(|f| format!("{} ({})", f.question_id, f.primary_actions.join(" / ")))
        .collect();
    format!(
        "{} of {} questions with several runs disagree across runs{}",
        flaky.len(),
        r.flakiness.len(),
        if flaky.is_empty() {
            String::new()
        } else {
            format!(": {}", flaky.join(", "))
        }
    )
}

/// The brain answered on the view contracts its outputs name; the warehouse publishes views
/// under its own. A difference means the answers were judged against other views than the
/// ones served: refused (exit 2, both hashes named) unless explicitly allowed, and then
/// recorded. Returns what goes in eval_log's `view_contracts_check`.
fn check_view_contracts(
    warehouse: &Path,
    outputs: &[BrainOutput],
    outputs_path: &Path,
    allow: bool,
) -> Result<String> {
    let published = crate::views::published_contracts_hash(warehouse)?;
    let mut named: Vec<(&str, u64)> = Vec::new();
    let mut unnamed: Vec<u64> = Vec::new();
    for o in outputs {
        match o.brain_view_contracts_hash.as_deref() {
            Some(h) => {
                if !named.iter().any(|(x, _)| *x == h) {
                    named.push((h, o.line));
                }
            }
            None => unnamed.push(o.line),
        }
    }
    let mut problems = Vec::new();
    let Some(published) = published else {
        let why = format!(
            "{} has no published view_catalog to compare the outputs' brain_view_contracts_hash with",
            warehouse.display()
        );
        if allow {
            return Ok(format!("not compared (allowed): {why}"));
        }
        return Err(Error::usage_hint(
            why,
            "run `gtmos build` first, or pass --allow-contracts-mismatch to score them anyway (recorded)",
        ));
    };
    for (h, line) in &named {
        if *h != published {
            problems.push(format!(
                "line {line}: brain_view_contracts_hash {h} differs from the warehouse's {published}"
            ));
        }
    }
    if !unnamed.is_empty() {
        let lines: Vec<String> = unnamed.iter().map(u64::to_string).collect();
        problems.push(format!(
            "{} answer(s) name no brain_view_contracts_hash (line {})",
            unnamed.len(),
            crate::eval::golden::short_list(&lines)
        ));
    }
    if problems.is_empty() {
        return Ok(format!("match {published}"));
    }
    if allow {
        return Ok(format!("mismatch allowed: {}", problems.join("; ")));
    }
    Err(crate::eval::golden::bad(
        outputs_path,
        None,
        format!(
            "the outputs were answered on other view contracts than {} publishes:\n  {}",
            warehouse.display(),
            problems.join("\n  ")
        ),
    )
    .with_hint("rebuild the views the brain read, re-run the brain on the published views, or pass --allow-contracts-mismatch (recorded in eval_log)"))
}
