//! `gtmos canary`: resolve the arguments, run the canary workflow ([`canary::run`], which owns
//! the golden gate), render the page and print.

use std::fmt::Write as _;

use serde_json::json;

use crate::calendar::{format_ts, parse_ts};
use crate::canary::{self, compare, traffic};
use crate::cli::{CanaryArgs, Locations};
use crate::error::{Outcome, Result};
use crate::printer::{self, Format};
use crate::schema::Registry;
use crate::settings::{Paths, reports_dir};
use crate::snapshot::Snapshot;

pub fn run(a: CanaryArgs) -> Result<Outcome> {
    let paths = Paths::resolve(&Locations {
        project: None,
        snapshot: a.snapshot.clone(),
        warehouse: a.warehouse.clone(),
    })?;
    let cfg = canary::load_config(&a.config)?;
    let snap = Snapshot::open(&paths.snapshot, Registry::embedded()?)?;
    let as_of = match &a.as_of {
        Some(s) => parse_ts(s)?,
        None => snap.manifest.as_of_micros()?,
    };
    let progress = crate::printer::Progress::new("canary", 4);
    let outcome = canary::run(
        &canary::Request {
            warehouse: &paths.warehouse,
            snapshot: &snap,
            experiment: &a.experiment,
            as_of,
            config: &cfg,
            cuped: a.cuped,
        },
        &progress,
    );
    progress.finish();
    let r = match outcome? {
        canary::Canary::Done(r) => r,
        canary::Canary::Refused(no) => {
            eprintln!(
                "refused: {} (in {}, kind golden). Run `gtmos eval golden --predictions …` for {} first: golden → canary → promote. Nothing was logged.",
                no.reason,
                crate::logs::EVAL_LOG.dir(&paths.warehouse).display(),
                no.variant
            );
            return Ok(Outcome::GateFailed);
        }
    };
    let (t, c, run_id, decision_id) = (&r.traffic, &r.comparison, &r.run_id, &r.decision_id);
    let variant = &t.variant_models[0];
    let report = json!({
        "experiment_id": t.experiment_id,
        "control_model": t.control_models[0],
        "variant_model": variant,
        "golden_eval": r.golden_eval,
        "window": {"pre_start": format_ts(t.pre_start), "start": format_ts(t.start), "last_decision": format_ts(t.end), "as_of": format_ts(t.as_of)},
        "decisions": t.decisions,
        "outcomes": t.outcomes,
        "unobserved_outcomes": t.unobserved_outcomes,
        "comparison": c,
        "run_id": run_id,
        "decision_id": decision_id,
    });
    let page = if a.no_report {
        None
    } else {
        let ctx = json!({
            "run": {"run_id": run_id, "gtmos_version": env!("CARGO_PKG_VERSION"), "footer": format!("canary run {run_id}")},
            "canary": report,
            "alpha": cfg.alpha,
            "charts": crate::reports::canary::charts(
                c,
                &cfg,
                &crate::reports::canary::looks(&paths.warehouse, &t.experiment_id, variant)?,
            ),
        });
        Some(crate::reports::render_page(
            "canary.html",
            ctx,
            &reports_dir(&a.reports),
            "canary",
            run_id,
        )?)
    };
    match a.format {
        Format::Json => {
            let mut v = report;
            v["report"] = json!(page.as_ref().map(|p| p.display().to_string()));
            printer::out_json(&v)?;
        }
        Format::Text => printer::out(&text(t, c, run_id, decision_id, page.as_deref()))?,
    }
    Ok(if c.verdict == "promote" {
        Outcome::Success
    } else {
        Outcome::GateFailed
    })
}

fn num(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.4}"),
    }
}

fn pval(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(p) if p < 1e-4 => format!("{p:.1e}"),
        Some(p) => format!("{p:.4}"),
    }
}

fn text(
    t: &traffic::Traffic,
    c: &compare::Comparison,
    run_id: &str,
    decision_id: &str,
    page: Option<&std::path::Path>,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "canary {}: {} (control) vs {} (variant), {} decisions to {} ({} outcomes not yet observable); inference {}{}",
        t.experiment_id,
        t.control_models.join(","),
        t.variant_models.join(","),
        t.decisions,
        format_ts(t.as_of),
        t.unobserved_outcomes,
        canary::inference_name(c.inference),
        if c.cuped { ", CUPED" } else { "" }
    );
    let _ = writeln!(
        s,
        "sample ratio: {} control / {} variant accounts (design {:.0} % variant): chi-square {:.2}, p {} — {}",
        c.srm.control_accounts,
        c.srm.variant_accounts,
        c.srm.expected_variant_share * 100.0,
        c.srm.chi_square,
        pval(Some(c.srm.p)),
        if c.srm.passed { "ok" } else { "MISMATCH" }
    );
    let _ = writeln!(
        s,
        "\n  {:<24} {:<9} {:>22} {:>22} {:>10} {:>9} {:>9} {:>8}  verdict",
        "metric",
        "role",
        "control [interval]",
        "variant [interval]",
        "Δ",
        "p fixed",
        "p always",
        "CUPED"
    );
    for m in &c.metrics {
        let arm =
            |v: &compare::ArmValue| format!("{} [{}, {}]", num(v.value), num(v.low), num(v.high));
        let _ = writeln!(
            s,
            "  {:<24} {:<9} {:>22} {:>22} {:>10} {:>9} {:>9} {:>8}  {}",
            m.metric,
            m.role,
            arm(&m.control),
            arm(&m.variant),
            num(m.delta),
            pval(m.p_fixed),
            pval(m.p_sequential),
            m.cuped.map_or("—".into(), |c| format!(
                "{:.1} %",
                c.variance_reduction * 100.0
            )),
            m.verdict
        );
    }
    let _ = writeln!(
        s,
        "\n{}: {} (canary run {run_id}; decision {decision_id})",
        c.verdict.to_uppercase(),
        c.reasons.join("; ")
    );
    if let Some(p) = page {
        let _ = writeln!(s, "report: {}", p.display());
    }
    s
}
