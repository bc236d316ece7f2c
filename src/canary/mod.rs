//! `gtmos canary` (SPEC §12): after the golden gate, a candidate model gets a slice of live
//! traffic against the current one, randomised by account; this module compares the arms
//! ([`compare`], with the statistics of [`stats`]) over the snapshot's traffic ([`traffic`]),
//! and writes the result down: `canary_results`, a `canary.rollout` decision. [`run`] is the
//! whole workflow, and it owns the golden gate: no canary verdict for a model version whose most
//! recent golden eval did not pass (golden → canary → promote), whoever calls it.
//! [`simulate`] replays the corpus' experiment model for studies.

pub mod compare;
mod ids;
pub mod simulate;
pub mod stats;
pub mod traffic;

use std::path::Path;

use arrow::array::{Array, AsArray};
use serde_json::{Value, json};

use self::compare::{Comparison, Config, Direction, Inference};
use self::traffic::Traffic;
use crate::builder::TableBuilder;
use crate::calendar::format_ts;
use crate::decisions::{self, Entry};
use crate::error::{Error, Result};
use crate::logs::{self, CANARY_RESULTS, EVAL_LOG};

/// What a canary run compares: one experiment of a snapshot's traffic, as of a time.
pub struct Request<'a> {
    pub warehouse: &'a Path,
    pub snapshot: &'a crate::snapshot::Snapshot,
    pub experiment: &'a str,
    pub as_of: i64,
    pub config: &'a Config,
    pub cuped: bool,
}

/// A canary run that compared the arms and recorded the result.
pub struct Run {
    pub run_id: String,
    pub decision_id: String,
    /// The golden eval run the variant passed.
    pub golden_eval: String,
    pub traffic: Traffic,
    pub comparison: Comparison,
}

/// Why a canary run was refused; nothing was logged.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    pub variant: String,
    pub reason: String,
}

/// The outcome of [`run`]: compared and recorded, or refused by the golden gate.
pub enum Canary {
    Done(Box<Run>),
    Refused(Refusal),
}

/// The canary workflow: read the experiment's traffic, check the variant passed its most
/// recent golden eval (else refuse, logging nothing), compare the arms (earlier looks of the
/// same experiment carry forward: the always-valid p-value is the running minimum), and
/// record `canary_results` and the `canary.rollout` decision. `progress` sees four steps.
pub fn run(req: &Request, progress: &crate::printer::Progress) -> Result<Canary> {
    progress.step("reading agent_decisions and decision_outcomes");
    let t = traffic::read(req.snapshot, req.experiment, req.as_of)?;
    progress.advance(1);
    if t.variant_models.len() != 1 || t.control_models.len() != 1 {
        return Err(Error::data(format!(
            "experiment {} must run one model per arm; control: {:?}, variant: {:?}",
            req.experiment, t.control_models, t.variant_models
        ))
        .with_table("agent_decisions")
        .with_column("model_version"));
    }
    let variant = t.variant_models[0].clone();
    let golden_eval = match golden_evals(req.warehouse, &variant)?.pop() {
        Some((run, d)) if d == "pass" => run,
        last => {
            return Ok(Canary::Refused(Refusal {
                reason: match last {
                    None => format!("the variant model {variant} has no golden eval"),
                    Some((run, d)) => format!(
                        "the variant model {variant} did not pass its most recent golden eval (run {run}: {d})"
                    ),
                },
                variant,
            }));
        }
    };
    progress.advance(1);
    progress.step(&format!(
        "comparing {} decisions of {} accounts",
        t.decisions,
        t.accounts.len()
    ));
    let hist = history(req.warehouse, &t.experiment_id, &variant)?;
    let c = compare::compare_after(&t.accounts, req.config, req.cuped, &hist);
    progress.advance(1);
    progress.step("recording canary_results and the decision");
    let run_id = logs::new_run_id();
    let inputs_hash = req.snapshot.manifest.inputs_hash();
    record_results(req.warehouse, &run_id, &t, &inputs_hash, &c)?;
    let decision_id = record_decision(req.warehouse, &run_id, &t, &inputs_hash, req.config, &c)?;
    progress.advance(1);
    Ok(Canary::Done(Box::new(Run {
        run_id,
        decision_id,
        golden_eval,
        traffic: t,
        comparison: c,
    })))
}

/// The decision node a canary run writes.
pub const ROLLOUT_NODE: &str = "canary.rollout";

/// Load and check `pipelines/canary.yml` (or another file).
pub fn load_config(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))?;
    let cfg: Config = serde_yaml_ng::from_str(&text).map_err(|e| {
        let mut err = Error::data(format!("not a canary configuration: {e}")).with_path(path);
        if let Some(l) = e.location() {
            err = err.with_row(l.line() as u64);
        }
        err
    })?;
    let problems = cfg.problems();
    if !problems.is_empty() {
        return Err(Error::data(problems.join("; ")).with_path(path));
    }
    Ok(cfg)
}

/// The golden evals (`eval_log`, kind golden) of a model version, oldest first: (run id,
/// decision). The canary needs the most recent one to have passed.
pub fn golden_evals(warehouse: &Path, model: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for b in logs::read(warehouse, &EVAL_LOG)? {
        let col = |n: &str| b.column_by_name(n).map(|c| c.as_string::<i32>().clone());
        let (Some(run), Some(kind), Some(m), Some(d)) =
            (col("run_id"), col("kind"), col("model_id"), col("decision"))
        else {
            continue;
        };
        for i in 0..b.num_rows() {
            if !kind.is_null(i)
                && kind.value(i) == "golden"
                && !m.is_null(i)
                && m.value(i) == model
                && !d.is_null(i)
            {
                out.push((run.value(i).to_string(), d.value(i).to_string()));
            }
        }
    }
    Ok(out)
}

/// The always-valid figures of earlier runs on this experiment and variant (`canary_results`):
/// per metric the smallest p-value and the intersection of the confidence sequences.
pub fn history(warehouse: &Path, experiment: &str, variant: &str) -> Result<compare::History> {
    let mut h = compare::History::new();
    for b in logs::read(warehouse, &CANARY_RESULTS)? {
        let s = |n: &str| b.column_by_name(n).map(|c| c.as_string::<i32>().clone());
        let f = |n: &str| {
            b.column_by_name(n)
                .map(|c| c.as_primitive::<arrow::datatypes::Float64Type>().clone())
        };
        let (Some(e), Some(v), Some(m), Some(p), Some(lo), Some(hi)) = (
            s("experiment_id"),
            s("variant_model"),
            s("metric"),
            f("p_sequential"),
            f("cs_low"),
            f("cs_high"),
        ) else {
            continue;
        };
        for i in 0..b.num_rows() {
            if e.is_null(i) || e.value(i) != experiment || v.is_null(i) || v.value(i) != variant {
                continue;
            }
            if p.is_null(i) || lo.is_null(i) || hi.is_null(i) {
                continue;
            }
            let entry =
                h.entry(m.value(i).to_string())
                    .or_insert((1.0, f64::NEG_INFINITY, f64::INFINITY));
            entry.0 = entry.0.min(p.value(i));
            entry.1 = entry.1.max(lo.value(i));
            entry.2 = entry.2.min(hi.value(i));
        }
    }
    Ok(h)
}

fn dir_name(d: Option<Direction>) -> Option<&'static str> {
    d.map(|d| match d {
        Direction::Higher => "higher",
        Direction::Lower => "lower",
    })
}

pub fn inference_name(i: Inference) -> &'static str {
    match i {
        Inference::Sequential => "sequential",
        Inference::Fixed => "fixed",
    }
}

/// Append one `canary_results` row per metric.
pub fn record_results(
    warehouse: &Path,
    run_id: &str,
    t: &Traffic,
    inputs_hash: &str,
    c: &Comparison,
) -> Result<()> {
    let spec = &CANARY_RESULTS;
    let mut b = TableBuilder::new(spec.name, spec.schema())?;
    let s = |b: &TableBuilder, n: &str| b.str_col(n);
    let f = |b: &TableBuilder, n: &str| b.f64_col(n);
    let (rid, exp, cm, vm, hash, metric, role, measure, dir, test, mv, inf, verdict) = (
        s(&b, "run_id")?,
        s(&b, "experiment_id")?,
        s(&b, "control_model")?,
        s(&b, "variant_model")?,
        s(&b, "snapshot_inputs_hash")?,
        s(&b, "metric")?,
        s(&b, "role")?,
        s(&b, "measure")?,
        s(&b, "direction")?,
        s(&b, "test")?,
        s(&b, "metric_verdict")?,
        s(&b, "inference")?,
        s(&b, "verdict")?,
    );
    let (run_at, as_of) = (b.ts_col("run_at")?, b.ts_col("as_of")?);
    let (ca, va) = (
        b.i64_col("control_accounts")?,
        b.i64_col("variant_accounts")?,
    );
    let names = [
        "control_numerator",
        "control_denominator",
        "control_value",
        "control_low",
        "control_high",
        "variant_numerator",
        "variant_denominator",
        "variant_value",
        "variant_low",
        "variant_high",
        "delta",
        "relative_delta",
        "se",
        "p_fixed",
        "ci_low",
        "ci_high",
        "p_sequential",
        "cs_low",
        "cs_high",
        "p_holm",
        "cuped_variance_reduction",
    ];
    let fcols = names.iter().map(|n| f(&b, n)).collect::<Result<Vec<_>>>()?;
    let now = logs::now_micros();
    for m in &c.metrics {
        b.str(rid, run_id);
        b.ts(run_at, now);
        b.str(exp, &t.experiment_id);
        b.str(cm, &t.control_models.join(","));
        b.str(vm, &t.variant_models.join(","));
        b.str(hash, inputs_hash);
        b.ts(as_of, t.as_of);
        b.str(metric, m.metric);
        b.str(role, m.role);
        b.str(
            measure,
            serde_json::to_value(m.measure)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .as_deref()
                .unwrap_or(""),
        );
        b.opt_str(dir, dir_name(m.direction));
        b.i64(ca, m.control.accounts as i64);
        b.i64(va, m.variant.accounts as i64);
        let values = [
            Some(m.control.numerator),
            Some(m.control.denominator),
            m.control.value,
            m.control.low,
            m.control.high,
            Some(m.variant.numerator),
            Some(m.variant.denominator),
            m.variant.value,
            m.variant.low,
            m.variant.high,
            m.delta,
            m.relative_delta,
            m.se,
            m.p_fixed,
            m.ci_fixed.map(|x| x.0),
            m.ci_fixed.map(|x| x.1),
            m.p_sequential,
            m.confidence_sequence.map(|x| x.0),
            m.confidence_sequence.map(|x| x.1),
            m.p_holm,
            m.cuped.map(|x| x.variance_reduction),
        ];
        for (col, v) in fcols.iter().zip(values) {
            b.opt_f64(*col, v.filter(|v| v.is_finite()));
        }
        b.str(test, m.test);
        b.str(mv, &m.verdict);
        b.str(inf, inference_name(c.inference));
        b.str(verdict, &c.verdict);
        b.end_row();
    }
    logs::append(warehouse, spec, run_id, &b.finish()?)?;
    Ok(())
}

/// The evidence a `canary.rollout` decision carries: per metric the values the rule used.
pub fn evidence(c: &Comparison) -> Value {
    json!({
        "srm": c.srm,
        "decisions": {"control": c.decisions[0], "variant": c.decisions[1]},
        "inference": inference_name(c.inference),
        "cuped": c.cuped,
        "metrics": c.metrics.iter().map(|m| (m.metric.to_string(), json!({
            "role": m.role, "control": m.control.value, "variant": m.variant.value,
            "delta": m.delta, "p_fixed": m.p_fixed, "p_sequential": m.p_sequential,
            "p_holm": m.p_holm, "confidence_sequence": m.confidence_sequence,
            "ci": m.ci_fixed, "verdict": m.verdict,
        }))).collect::<serde_json::Map<_, _>>(),
        "reasons": c.reasons,
    })
}

/// Append the `canary.rollout` decision: the verdict as the chosen action, the evidence, the
/// thresholds in force.
pub fn record_decision(
    warehouse: &Path,
    run_id: &str,
    t: &Traffic,
    inputs_hash: &str,
    cfg: &Config,
    c: &Comparison,
) -> Result<String> {
    let variant = t.variant_models.join(",");
    let id = decisions::decision_id(
        ROLLOUT_NODE,
        &t.experiment_id,
        inputs_hash,
        &variant,
        &c.verdict,
    );
    let entry = Entry {
        decision_id: id.clone(),
        timestamp: format_ts(logs::now_micros()),
        node: ROLLOUT_NODE.into(),
        node_version: Some(t.experiment_id.clone()),
        subject: Some(variant),
        inputs_version: Some(format_ts(t.as_of)),
        inputs_hash: Some(inputs_hash.to_string()),
        build_id: None,
        selected_thresholds: Some(serde_json::to_value(cfg).unwrap_or(Value::Null).to_string()),
        evidence: Some(evidence(c).to_string()),
        chosen_action: Some(c.verdict.clone()),
        status: "proposed".into(),
        owner: Some(decisions::MODEL_OWNER.into()),
        approvers: Some(json!(decisions::MODEL_APPROVERS).to_string()),
        changed_by: Some("gtmos canary".into()),
        note: Some(c.reasons.join("; ")),
        risk_notes: (c.verdict == "keep_testing")
            .then(|| "the variant keeps its slice of traffic; look again tomorrow (always-valid inference)".to_string()),
        reversal_plan: Some(format!(
            "route the experiment's traffic back to {}",
            t.control_models.join(",")
        )),
        reversal_outcome: None,
        review_date: None,
        run_id: Some(run_id.to_string()),
        acted_as: None,
    };
    decisions::append(warehouse, run_id, &[entry])?;
    Ok(id)
}
