//! `gtmos build`: resolve locations, generate the default corpus if needed, build, summarise.

use serde_json::json;

use super::{thousands, threads};
use crate::build::{BuildOptions, BuildReport, quarantine_summary};
use crate::calendar::{Day, format_ts, parse_ts};
use crate::cli::BuildArgs;
use crate::error::Error;
use crate::error::{Outcome, Result};
use crate::printer::{Format, Progress, out, out_json};
use crate::settings::{Paths, memory_limit, reports_dir, runner};
use crate::snapshot::MANIFEST;
use crate::synth::params::SynthParams;

pub fn run(a: BuildArgs) -> Result<Outcome> {
    let opts = options(&a)?;
    let r = build_and_report(&opts, &a)?;
    print_summary(&r, a.format)?;
    Ok(outcome(&r))
}

/// `gtmos recognize`: the recognition models and what they read.
pub fn recognize(a: BuildArgs) -> Result<Outcome> {
    let mut opts = options(&a)?;
    opts.command = "recognize";
    opts.select.insert(0, "tag:recognition".into());
    let r = build_and_report(&opts, &a)?;
    print_summary(&r, a.format)?;
    Ok(outcome(&r))
}

/// Run the build, then render its HTML report (`<reports>/<run_id>/`, and `<reports>/latest/`
/// for a full build) unless `--no-report`, still under the warehouse's run lock.
pub fn build_and_report(opts: &BuildOptions, a: &BuildArgs) -> Result<BuildReport> {
    crate::build::build_then(opts, |r, project| {
        if a.no_report {
            return Ok(());
        }
        let progress = Progress::new(opts.command, 1);
        progress.step("report");
        let slos = crate::freshness::attainment(&opts.warehouse, &project.slos)?;
        r.report_dir = Some(crate::reports::render_build(
            r,
            project,
            &slos,
            &reports_dir(&a.reports),
        )?);
        progress.advance(1);
        progress.finish();
        Ok(())
    })
}

/// Exit 1 when anything was blocked or a requested close was held.
pub fn outcome(r: &BuildReport) -> Outcome {
    if r.blocked.is_empty() && r.close_held.is_none() {
        Outcome::Success
    } else {
        Outcome::GateFailed
    }
}

pub fn print_summary(r: &BuildReport, format: Format) -> Result<()> {
    match format {
        Format::Json => out_json(&summary_json(r)),
        Format::Text => out(&summary_text(r)),
    }
}

/// Resolved build options from the flags (generating the default corpus when needed).
pub fn options(a: &BuildArgs) -> Result<BuildOptions> {
    let paths = Paths::resolve(&a.at)?;
    let threads = threads(a.threads);
    let runner = runner(a.engine, a.scheduler.as_deref())?;
    if paths.default_snapshot && !paths.snapshot.join(MANIFEST).exists() {
        eprintln!(
            "gtmos: no snapshot at {}; generating the default corpus (seed 42, 2,000 accounts, 2024-01-01..2025-12-31)",
            paths.snapshot.display()
        );
        crate::synth::generate(
            &SynthParams::default(),
            &paths.snapshot,
            threads,
            crate::printer::progress_wanted(),
        )?;
    }
    Ok(BuildOptions {
        command: "build",
        project: paths.project.clone(),
        snapshot: paths.snapshot.clone(),
        warehouse: paths.warehouse.clone(),
        as_of: a.as_of.as_deref().map(parse_ts).transpose()?,
        threads,
        memory_limit: memory_limit(a.memory_mb)?,
        select: a
            .select
            .iter()
            .flat_map(|s| s.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        close_through: a.close_through.as_deref().map(parse_month).transpose()?,
        overrides: Default::default(),
        vars: match &a.vars {
            Some(text) => crate::project::parse_var_overrides(text)?,
            None => Default::default(),
        },
        full_refresh: a.full_refresh,
        verify_full_refresh: a.verify_full_refresh,
        runner,
    })
}

fn summary_json(r: &BuildReport) -> serde_json::Value {
    json!({
        "command": r.command_line(),
        "run_id": r.run_id,
        "build_id": r.build_id,
        "snapshot_id": r.snapshot_id,
        "as_of": format_ts(r.as_of),
        "outcome": r.outcome(),
        "published": r.published,
        "blocked": r.blocked.iter().map(|(t, why)| json!({"table": t, "reason": why})).collect::<Vec<_>>(),
        "quarantined": quarantine_summary(r).iter().map(|((t, rule), n)| json!({"table": t, "rule": rule, "rows": n})).collect::<Vec<_>>(),
        "dead_lettered_rows": r.dead_lettered_rows(),
        "not_yet_loaded": r.sources.iter().filter(|x| x.not_yet_loaded > 0).map(|x| json!({"table": x.table, "rows": x.not_yet_loaded})).collect::<Vec<_>>(),
        "warnings": r.warnings(),
        "seconds": r.seconds,
        "report": r.report_dir.as_ref().map(|d| d.join("index.html").display().to_string()),
        "views": r.views,
        "closed_months": r.closed,
        "close_held": r.close_held,
        "decisions": r.decisions,
        "incremental": r.models.iter().filter_map(|m| m.decision.as_ref().map(|d| json!({"model": m.name, "decision": d.describe()}))).collect::<Vec<_>>(),
    })
}

/// What the run computed and what it reused, with the reasons for recomputing by count.
fn incremental_line(r: &BuildReport) -> String {
    use crate::build::Decision;
    let decided: Vec<&Decision> = r
        .models
        .iter()
        .filter_map(|m| m.decision.as_ref())
        .collect();
    let reused = decided
        .iter()
        .filter(|d| matches!(d, Decision::Reuse { .. }))
        .count();
    let mut why: std::collections::BTreeMap<&str, usize> = Default::default();
    for d in &decided {
        if let Decision::Recompute(w) = d {
            *why.entry(w.as_str()).or_default() += 1;
        }
    }
    let mut why: Vec<(&str, usize)> = why.into_iter().collect();
    why.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut s = format!(
        "  incremental {reused} tables reused, {} computed\n",
        decided.len() - reused
    );
    for (w, n) in why {
        s.push_str(&format!("    {n} computed: {w}\n"));
    }
    s
}

fn summary_text(r: &BuildReport) -> String {
    let mut s = format!(
        "{} {} {} (build_id {}, snapshot {}, as_of {}) in {:.1} s\n",
        r.command_line(),
        r.run_id,
        r.outcome(),
        &r.build_id[..16],
        r.snapshot_id,
        format_ts(r.as_of),
        r.seconds
    );
    let blocked_sources = r.sources.iter().filter(|x| x.blocked.is_some()).count();
    s.push_str(&format!(
        "  sources    {} checked, {} blocked; {} rows quarantined, {} dead-lettered\n",
        r.sources.iter().filter(|x| x.present).count(),
        blocked_sources,
        thousands(r.quarantined_rows()),
        thousands(r.dead_lettered_rows())
    ));
    for ((table, rule), n) in quarantine_summary(r) {
        s.push_str(&format!("    {table}.{rule}: {}\n", thousands(n)));
    }
    let later: Vec<String> = r
        .sources
        .iter()
        .filter(|x| x.not_yet_loaded > 0)
        .map(|x| format!("{} {}", x.table, thousands(x.not_yet_loaded)))
        .collect();
    if !later.is_empty() {
        s.push_str(&format!(
            "    point in time: rows loaded after as_of left out (not yet known then): {}\n",
            later.join(", ")
        ));
    }
    for src in r.sources.iter().filter(|x| x.blocked.is_some()) {
        s.push_str(&format!(
            "    blocked: {}\n",
            src.blocked.as_deref().unwrap_or("")
        ));
    }
    s.push_str(&format!(
        "  models     {} published, {} blocked\n",
        r.published.len(),
        r.blocked.len()
    ));
    s.push_str(&incremental_line(r));
    let warehouse = crate::warehouse::Warehouse::new(&r.warehouse);
    for (t, why) in &r.blocked {
        if warehouse.published_file(t).exists() {
            s.push_str(&format!(
                "    {t} stays at its last good version (stale): {why}\n"
            ));
        } else {
            s.push_str(&format!(
                "    {t} is not published (no good version yet): {why}\n"
            ));
        }
    }
    let warns = r
        .all_tests()
        .filter(|t| t.status == crate::project::data_tests::Status::Warn)
        .count();
    s.push_str(&format!(
        "  tests      {} run, {} warned\n",
        r.all_tests().count(),
        warns
    ));
    let fresh: Vec<_> = r.freshness().collect();
    s.push_str(&format!(
        "  freshness  {} sources: {} pass, {} warn, {} error\n",
        fresh.len(),
        fresh.iter().filter(|f| f.status == "pass").count(),
        fresh.iter().filter(|f| f.status == "warn").count(),
        fresh.iter().filter(|f| f.status == "error").count()
    ));
    if let (Some(first), Some(last)) = (r.closed.first(), r.closed.last()) {
        s.push_str(&format!(
            "  close      frozen {} month(s), {}..{}, into {}\n",
            r.closed.len(),
            &first[..7],
            &last[..7],
            r.warehouse.join("closed_periods").display()
        ));
    }
    if let Some(why) = &r.close_held {
        s.push_str(&format!("  close      HELD: {why}\n"));
    }
    if let Some(v) = &r.views {
        s.push_str(&format!(
            "  views      {} views, {} account composites (max {} of {} tokens, {} rows dropped to fit){}{}; contracts {}\n",
            v.views,
            v.composites,
            v.composite_tokens_max,
            v.composite_token_budget,
            v.dropped_rows,
            if v.stale.is_empty() {
                String::new()
            } else {
                format!("; STALE: {}", v.stale.join(", "))
            },
            if v.unavailable.is_empty() {
                String::new()
            } else {
                format!("; {} unavailable (catalogued with why)", v.unavailable.len())
            },
            r.brain_view_contracts_hash
                .as_deref()
                .map_or("", |h| &h[..16.min(h.len())]),
        ));
    }
    for d in &r.decisions {
        match &d.none_because {
            Some(why) => s.push_str(&format!(
                "  decision   {}: nothing proposed ({why})\n",
                d.node
            )),
            None => s.push_str(&format!(
                "  decision   {}: {} proposed, {} new in the decision log\n",
                d.node,
                d.proposed.len(),
                d.new
            )),
        }
    }
    if let Some(d) = &r.report_dir {
        s.push_str(&format!(
            "  report     {}\n",
            d.join("index.html").display()
        ));
    }
    s
}

/// `YYYY-MM` → the month's first day.
pub fn parse_month(s: &str) -> Result<Day> {
    Day::parse(&format!("{}-01", s.trim()))
        .map_err(|_| Error::usage(format!("invalid month `{s}`: expected YYYY-MM")))
}
