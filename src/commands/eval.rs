//! `gtmos eval golden|brain|probes`: resolve the arguments, run the library workflow
//! ([`golden::run`], [`brain::run`], which own the gate, the logs and the decision), render the
//! page and print.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{Value, json};

use crate::cli::Locations;
use crate::cli::{EvalArgs, EvalCommand};
use crate::error::{Outcome, Result};
use crate::eval;
use crate::eval::brain::{self, BrainReport, Catalog};
use crate::eval::golden::{self, Report};
use crate::printer::{self, Format};
use crate::settings::{Paths, reports_dir};

pub fn run(a: EvalArgs) -> Result<Outcome> {
    let warehouse = Paths::resolve(&Locations {
        project: None,
        snapshot: None,
        warehouse: a.warehouse.clone(),
    })?
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
    let r = golden::run(&golden::Request {
        warehouse,
        predictions,
        baseline,
        golden: dir,
        config,
        trigger: &a.trigger,
    })?;
    let report_json = serde_json::to_value(&r.report).unwrap_or(Value::Null);
    let text = |page: Option<&Path>| text(&r.report, &r.run_id, &r.decision_id, page);
    publish(a, &r.run_id, &r.decision_id, "golden", report_json, &text)?;
    Ok(if r.report.passed {
        Outcome::Success
    } else {
        Outcome::GateFailed
    })
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
        let charts = if key == "golden" {
            crate::reports::eval::golden_charts(&report)
        } else {
            Vec::new()
        };
        let ctx = json!({
            "run": {"run_id": run_id, "gtmos_version": env!("CARGO_PKG_VERSION"), "footer": format!("eval run {run_id}")},
            key: report,
            "charts": charts,
            "decision_id": decision_id,
        });
        Some(crate::reports::render_page(
            "eval.html",
            ctx,
            &reports_dir(&a.reports),
            "eval",
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
    outputs: &Path,
    scores: &Path,
    catalog: &Path,
    allow_contracts_mismatch: bool,
) -> Result<Outcome> {
    let r = match brain::run(&brain::Request {
        warehouse,
        outputs,
        scores,
        catalog,
        allow_contracts_mismatch,
        trigger: &a.trigger,
    })? {
        brain::BrainEval::Done(r) => r,
        brain::BrainEval::Refused(no) => {
            let who: Vec<String> = no
                .reviewers
                .iter()
                .map(|(u, b)| format!("{u} ({b})"))
                .collect();
            eprintln!(
                "refused: reviewer independence — {} tuned the prompt of a brain under test (prompt-tuner registry {}); the eval is a measurement, not a target. Nothing was logged.",
                who.join(", "),
                no.registry.display()
            );
            return Ok(Outcome::GateFailed);
        }
    };
    let report_json = serde_json::to_value(&r.report).unwrap_or(Value::Null);
    let text = |page: Option<&Path>| brain_text(&r.report, &r.run_id, &r.decision_id, page);
    publish(a, &r.run_id, &r.decision_id, "brain", report_json, &text)?;
    Ok(if eval::promotes(&r.report.decision) {
        Outcome::Success
    } else {
        Outcome::GateFailed
    })
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
    let results = brain::run_probes(&catalog.rubric, &brain::load_probes(dir)?);
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
