//! `gtmos eval golden`: score, gate, log, report.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};

use crate::cli::Locations;
use crate::cli::{EvalArgs, EvalCommand};
use crate::error::{Error, Outcome, Result};
use crate::eval::brain::{self, BrainReport, Catalog};
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
        } => golden_gate(
            &a,
            &warehouse,
            predictions,
            baseline.as_deref(),
            dir,
            config.as_deref(),
        ),
        EvalCommand::Brain {
            outputs,
            scores,
            catalog,
            allow_contracts_mismatch,
        } => brain_eval(
            &a,
            &warehouse,
            outputs,
            scores,
            catalog,
            *allow_contracts_mismatch,
        ),
        EvalCommand::Probes { catalog } => probes(&a, catalog),
    }
}

fn golden_gate(
    a: &EvalArgs,
    warehouse: &Path,
    predictions: &Path,
    baseline: Option<&Path>,
    dir: &Path,
    config: Option<&Path>,
) -> Result<Outcome> {
    {
        let g = Golden::load(dir)?;
        let cfg_path = config.map_or_else(|| dir.join("eval.yml"), Path::to_path_buf);
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
        let report_json = serde_json::to_value(&report).unwrap_or(Value::Null);
        let text = |page: Option<&Path>| text(&report, &run_id, &decision_id, page);
        publish(a, &run_id, &decision_id, "golden", report_json, &text)?;
        Ok(if report.passed {
            Outcome::Success
        } else {
            Outcome::GateFailed
        })
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

/// Render the run's page (unless --no-report) and print the result as text or JSON.
fn publish(
    a: &EvalArgs,
    run_id: &str,
    decision_id: &str,
    key: &str,
    report: Value,
    text: &dyn Fn(Option<&Path>) -> String,
) -> Result<()> {
    let page = if a.no_report {
        None
    } else {
        let ctx = json!({
            "run": {"run_id": run_id, "gtmos_version": env!("CARGO_PKG_VERSION"), "footer": format!("eval run {run_id}")},
            key: report,
            "decision_id": decision_id,
        });
        Some(crate::reports::render_page(
            "eval.html",
            ctx,
            &reports_dir(&a.reports).join("eval"),
            run_id,
        )?)
    };
    match a.format {
        Format::Json => {
            let mut v = report;
            v["run_id"] = json!(run_id);
            v["decision_id"] = json!(decision_id);
            v["report"] = json!(page.as_ref().map(|p| p.display().to_string()));
            printer::out_json(&v)
        }
        Format::Text => printer::out(&text(page.as_deref())),
    }
}

fn brain_eval(
    a: &EvalArgs,
    warehouse: &Path,
    outputs_path: &Path,
    scores_path: &Path,
    dir: &Path,
    allow_mismatch: bool,
) -> Result<Outcome> {
    let catalog = Catalog::load(dir)?;
    let outputs = brain::read_outputs(outputs_path)?;
    let contracts_check = check_view_contracts(warehouse, &outputs, outputs_path, allow_mismatch)?;
    let scores = brain::read_scores(scores_path)?;
    let answers = brain::align(&catalog, &outputs, outputs_path, &scores, scores_path)?;
    // Reviewer independence is checked before anything is scored or written.
    let dependent = brain::dependent_reviewers(&catalog, &outputs, &scores);
    if !dependent.is_empty() {
        let who: Vec<String> = dependent
            .iter()
            .map(|(u, b)| format!("{u} ({b})"))
            .collect();
        eprintln!(
            "refused: reviewer independence — {} tuned the prompt of a brain under test (prompt-tuner registry {}); the eval is a measurement, not a target. Nothing was logged.",
            who.join(", "),
            dir.join("prompt_tuners.yml").display()
        );
        return Ok(Outcome::GateFailed);
    }
    let report = brain::evaluate(&catalog, &answers, outputs_path, scores_path)?;
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
        run_trigger: a.trigger.clone(),
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
        inputs_file: outputs_path.display().to_string(),
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
    eval::record(warehouse, &run, &questions)?;
    let thresholds = serde_json::to_value(&catalog.rubric).unwrap_or(Value::Null);
    let decision_id = eval::record_promotion(warehouse, &run, &thresholds, &run.aggregated_scores)?;
    let report_json = serde_json::to_value(&report).unwrap_or(Value::Null);
    let text = |page: Option<&Path>| brain_text(&report, &run_id, &decision_id, page);
    publish(a, &run_id, &decision_id, "brain", report_json, &text)?;
    Ok(if eval::promotes(&report.decision) {
        Outcome::Success
    } else {
        Outcome::GateFailed
    })
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

fn brain_text(r: &BrainReport, run_id: &str, decision_id: &str, page: Option<&Path>) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "brain eval: {} ({}) on catalog {}: {} questions, {} run(s), reviewer {}",
        r.brains.join(" + "),
        r.models.join(", "),
        r.catalog_version,
        r.questions,
        r.runs,
        r.reviewers.join(", ")
    );
    let _ = writeln!(
        s,
        "\n  {:<24} {:<5} {:>9} {:>9}  {:<6} detail",
        "criterion", "kind", "value", "threshold", "result"
    );
    for c in &r.criteria {
        let _ = writeln!(
            s,
            "  {:<24} {:<5} {:>9} {:>9}  {:<6} {}{}",
            c.name,
            if c.hard { "hard" } else { "soft" },
            c.value.map_or("—".into(), |v| format!("{v:.4}")),
            c.threshold,
            if c.met { "met" } else { "NOT MET" },
            c.detail,
            c.shortfall_points
                .filter(|p| *p > 0.0)
                .map_or(String::new(), |p| if p.is_finite() {
                    format!(" ({p:.1} points below)")
                } else {
                    " (not measurable)".into()
                })
        );
        if let Some(e) = &c.evidence {
            let _ = writeln!(s, "  {:<24} {}", "", e.statement);
        }
    }
    for a in r.answers.iter().filter(|a| !a.issues.is_empty()) {
        for i in &a.issues {
            let _ = writeln!(
                s,
                "  ISSUE {} run {} [{}]: {}",
                a.question_id,
                a.run,
                i.rule.name(),
                i.detail
            );
        }
    }
    for f in r.flakiness.iter().filter(|f| f.flaky) {
        let _ = writeln!(
            s,
            "  FLAKY {}: primary actions {} (disagreement {:.2}), verdicts {:?}",
            f.question_id,
            f.primary_actions.join(" / "),
            f.action_disagreement,
            f.verdicts
        );
    }
    let _ = writeln!(
        s,
        "\n{}: {} (eval run {run_id}; decision {decision_id}: {}; cost ${:.2})",
        r.decision.to_uppercase(),
        r.rationale,
        if eval::promotes(&r.decision) {
            "promote_to_canary"
        } else {
            "hold"
        },
        r.cost_usd
    );
    if let Some(p) = page {
        let _ = writeln!(s, "report: {}", p.display());
    }
    s
}

fn probes(a: &EvalArgs, dir: &Path) -> Result<Outcome> {
    let catalog = Catalog::load(dir)?;
    let results = brain::run_probes(&catalog.rubric);
    let ok = results.iter().all(|r| r.passed);
    match a.format {
        Format::Json => printer::out_json(&json!({"passed": ok, "probes": results}))?,
        Format::Text => {
            let mut s = String::new();
            for r in &results {
                let _ = writeln!(
                    s,
                    "{:<4} {:<7} {:<18} expects {:<6} {}{}",
                    if r.passed { "ok" } else { "FAIL" },
                    r.id,
                    r.rule,
                    r.expects,
                    r.what,
                    if r.issues.is_empty() {
                        String::new()
                    } else {
                        format!(
                            " — {}",
                            r.issues
                                .iter()
                                .map(|i| format!("{}: {}", i.rule.name(), i.detail))
                                .collect::<Vec<_>>()
                                .join("; ")
                        )
                    }
                );
            }
            let _ = writeln!(
                s,
                "\n{} of {} probes behave ({} validators)",
                results.iter().filter(|r| r.passed).count(),
                results.len(),
                brain::VALIDATORS.len()
            );
            printer::out(&s)?;
        }
    }
    Ok(if ok {
        Outcome::Success
    } else {
        Outcome::GateFailed
    })
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

/// The brain answered on the view contracts its outputs name; the warehouse publishes views
/// under its own. A difference means the answers were judged against other views than the
/// ones served: refused (exit 2, both hashes named) unless explicitly allowed, and then
/// recorded. Returns what goes in eval_log's `view_contracts_check`.
fn check_view_contracts(
    warehouse: &Path,
    outputs: &[brain::BrainOutput],
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
