//! `gtmos eval` (SPEC §11): the golden-dataset gate a candidate model passes before canary
//! traffic ([`golden`], scored with [`metrics`]), and the brain eval harness ([`brain`]) with
//! its calibration probes. Every run appends to `eval_log` and `eval_question_scores`, and a
//! golden gate appends a `model.promotion` row to the decision log.

pub mod brain;
pub mod golden;
pub mod keys;
pub mod metrics;

use std::path::Path;

use serde_json::{Value, json};

use crate::builder::TableBuilder;
use crate::calendar::format_ts;
use crate::decisions::{self, Entry};
use crate::error::Result;
use crate::logs::{self, EVAL_LOG, EVAL_QUESTION_SCORES};

/// The decision node a golden gate writes.
pub const PROMOTION_NODE: &str = "model.promotion";

/// One `eval_log` row.
#[derive(Debug, Clone, Default)]
pub struct EvalRun {
    pub run_id: String,
    pub kind: &'static str,
    pub run_trigger: String,
    pub model_id: Option<String>,
    pub brain_under_test: Option<String>,
    pub system_prompt_hash: Option<String>,
    pub brain_view_contracts_hash: Option<String>,
    pub catalog_version: String,
    pub catalog_sha256: String,
    pub inputs_file: String,
    pub inputs_sha256: String,
    pub baseline_model_id: Option<String>,
    pub reviewer_user_id: Option<String>,
    pub reviewer_independence_verified: Option<bool>,
    pub bootstrap: Option<(u64, u64)>,
    pub aggregated_scores: Value,
    pub hard_criteria_passed: bool,
    pub decision: String,
    pub decision_rationale: String,
    pub calibration_notes: Option<String>,
    pub token_cost_usd: Option<f64>,
    /// How the brain outputs' view-contracts hash compared with the warehouse's (`match`, or
    /// the mismatch an explicit flag allowed); none for golden runs.
    pub view_contracts_check: Option<String>,
}

/// One `eval_question_scores` row.
#[derive(Debug, Clone, Default)]
pub struct QuestionScore {
    pub question_id: String,
    pub task: String,
    pub attempt: i64,
    pub expected: Option<String>,
    pub actual: Option<String>,
    pub correct: Option<bool>,
    pub critical: Option<bool>,
    pub confidence: Option<f64>,
    pub uses_stale_fixture: Option<bool>,
    pub scores: Option<Value>,
    pub validator_issues: Option<Value>,
    pub reviewer_comments: Option<String>,
}

/// Append the run and its per-question rows (two new log files; nothing is rewritten).
pub fn record(warehouse: &Path, run: &EvalRun, questions: &[QuestionScore]) -> Result<()> {
    let mut b = TableBuilder::new(EVAL_LOG.name, EVAL_LOG.schema())?;
    let s = |b: &TableBuilder, c: &str| b.str_col(c);
    let (
        run_id,
        kind,
        trigger,
        model,
        brain,
        prompt,
        views,
        cat_v,
        cat_sha,
        file,
        sha,
        base,
        reviewer,
    ) = (
        s(&b, "run_id")?,
        s(&b, "kind")?,
        s(&b, "run_trigger")?,
        s(&b, "model_id")?,
        s(&b, "brain_under_test")?,
        s(&b, "system_prompt_hash")?,
        s(&b, "brain_view_contracts_hash")?,
        s(&b, "catalog_version")?,
        s(&b, "catalog_sha256")?,
        s(&b, "inputs_file")?,
        s(&b, "inputs_sha256")?,
        s(&b, "baseline_model_id")?,
        s(&b, "reviewer_user_id")?,
    );
    let (scores, decision, rationale, notes, version, contracts_check) = (
        s(&b, "aggregated_scores")?,
        s(&b, "decision")?,
        s(&b, "decision_rationale")?,
        s(&b, "calibration_notes")?,
        s(&b, "gtmos_version")?,
        s(&b, "view_contracts_check")?,
    );
    let (at, indep, hard) = (
        b.ts_col("run_at")?,
        b.bool_col("reviewer_independence_verified")?,
        b.bool_col("hard_criteria_passed")?,
    );
    let (resamples, seed, cost) = (
        b.i64_col("bootstrap_resamples")?,
        b.i64_col("bootstrap_seed")?,
        b.f64_col("token_cost_usd")?,
    );
    b.str(run_id, &run.run_id);
    b.ts(at, logs::now_micros());
    b.str(kind, run.kind);
    b.str(trigger, &run.run_trigger);
    b.opt_str(model, run.model_id.as_deref());
    b.opt_str(brain, run.brain_under_test.as_deref());
    b.opt_str(prompt, run.system_prompt_hash.as_deref());
    b.opt_str(views, run.brain_view_contracts_hash.as_deref());
    b.str(cat_v, &run.catalog_version);
    b.str(cat_sha, &run.catalog_sha256);
    b.str(file, &run.inputs_file);
    b.str(sha, &run.inputs_sha256);
    b.opt_str(base, run.baseline_model_id.as_deref());
    b.opt_str(reviewer, run.reviewer_user_id.as_deref());
    if let Some(v) = run.reviewer_independence_verified {
        b.bool(indep, v);
    }
    if let Some((n, s)) = run.bootstrap {
        b.i64(resamples, n as i64);
        b.i64(seed, s as i64);
    }
    b.str(scores, &run.aggregated_scores.to_string());
    b.bool(hard, run.hard_criteria_passed);
    b.str(decision, &run.decision);
    b.str(rationale, &run.decision_rationale);
    b.opt_str(notes, run.calibration_notes.as_deref());
    b.opt_f64(cost, run.token_cost_usd);
    b.str(version, env!("CARGO_PKG_VERSION"));
    b.opt_str(contracts_check, run.view_contracts_check.as_deref());
    b.end_row();
    logs::append(warehouse, &EVAL_LOG, &run.run_id, &b.finish()?)?;

    let mut q = TableBuilder::new(EVAL_QUESTION_SCORES.name, EVAL_QUESTION_SCORES.schema())?;
    let s = |c: &str| q.str_col(c);
    let (rid, kind, qid, task, exp, act, sc, issues, comments) = (
        s("run_id")?,
        s("kind")?,
        s("question_id")?,
        s("task")?,
        s("expected")?,
        s("actual")?,
        s("scores")?,
        s("validator_issues")?,
        s("reviewer_comments")?,
    );
    let (attempt, correct, critical, conf, stale) = (
        q.i64_col("attempt")?,
        q.bool_col("correct")?,
        q.bool_col("critical")?,
        q.f64_col("confidence")?,
        q.bool_col("uses_stale_fixture")?,
    );
    for r in questions {
        q.str(rid, &run.run_id);
        q.str(kind, run.kind);
        q.str(qid, &r.question_id);
        q.str(task, &r.task);
        q.i64(attempt, r.attempt);
        q.opt_str(exp, r.expected.as_deref());
        q.opt_str(act, r.actual.as_deref());
        for (c, v) in [
            (correct, r.correct),
            (critical, r.critical),
            (stale, r.uses_stale_fixture),
        ] {
            if let Some(v) = v {
                q.bool(c, v);
            }
        }
        q.opt_f64(conf, r.confidence);
        q.opt_str(sc, r.scores.as_ref().map(Value::to_string).as_deref());
        q.opt_str(
            issues,
            r.validator_issues.as_ref().map(Value::to_string).as_deref(),
        );
        q.opt_str(comments, r.reviewer_comments.as_deref());
        q.end_row();
    }
    logs::append(warehouse, &EVAL_QUESTION_SCORES, &run.run_id, &q.finish()?)?;
    Ok(())
}

/// Whether an eval decision lets the model on to canary traffic: a golden gate's `pass`, a
/// brain rubric's `pass` or `pass_with_notes`.
pub fn promotes(decision: &str) -> bool {
    matches!(decision, "pass" | "pass_with_notes")
}

/// The `model.promotion` decision of an eval run: promote_to_canary when it passed, else
/// hold, with the evidence and the thresholds in force.
pub fn record_promotion(
    warehouse: &Path,
    run: &EvalRun,
    thresholds: &Value,
    evidence: &Value,
) -> Result<String> {
    let action = if promotes(&run.decision) {
        "promote_to_canary"
    } else {
        "hold"
    };
    let model = run.model_id.clone().unwrap_or_default();
    let id = decisions::decision_id(
        PROMOTION_NODE,
        &run.catalog_version,
        &run.inputs_sha256,
        &model,
        action,
    );
    let entry = Entry {
        decision_id: id.clone(),
        timestamp: format_ts(logs::now_micros()),
        node: PROMOTION_NODE.into(),
        node_version: Some(run.catalog_version.clone()),
        subject: Some(model),
        inputs_version: Some(run.catalog_version.clone()),
        inputs_hash: Some(run.inputs_sha256.clone()),
        build_id: None,
        selected_thresholds: Some(thresholds.to_string()),
        evidence: Some(evidence.to_string()),
        chosen_action: Some(action.into()),
        status: "proposed".into(),
        owner: Some(decisions::MODEL_OWNER.into()),
        approvers: Some(json!(decisions::MODEL_APPROVERS).to_string()),
        changed_by: Some(format!("gtmos eval {}", run.kind)),
        note: Some(run.decision_rationale.clone()),
        risk_notes: (run.decision == "conditional")
            .then(|| "conditional: the brain may run in shadow mode only".to_string()),
        reversal_plan: Some("route all traffic back to the baseline model".into()),
        reversal_outcome: None,
        review_date: None,
        run_id: Some(run.run_id.clone()),
        acted_as: None,
    };
    decisions::append(warehouse, &run.run_id, &[entry])?;
    Ok(id)
}
