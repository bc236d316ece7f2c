//! The HTML report: parsed as text, and rendered in headless Chromium (the DOM must hold the
//! run's figures). `.ci/run` installs Debian's chromium; without a browser this test fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

fn report_dir() -> PathBuf {
    let (wh, reports, _) = crate::build::built_for_report();
    let _ = wh;
    let latest = reports.join("latest");
    assert!(
        latest.join("index.html").exists(),
        "no report at {}",
        latest.display()
    );
    latest
}

fn browser() -> PathBuf {
    for c in [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ] {
        if let Ok(out) = Command::new("which").arg(c).output()
            && out.status.success()
        {
            return PathBuf::from(String::from_utf8_lossy(&out.stdout).trim().to_string());
        }
    }
    panic!(
        "no headless browser found: install Debian's chromium (apt-get install chromium), as .ci/run does"
    );
}

/// The DOM after Chromium loaded and rendered the page.
pub fn rendered_dom(page: &Path) -> String {
    let profile = tempdir();
    let out = Command::new(browser())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.path().display()),
            "--dump-dom",
            &format!("file://{}", page.display()),
        ])
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn report_pages_link_up_and_use_no_external_assets() {
    let dir = report_dir();
    for page in [
        "index.html",
        "contracts.html",
        "freshness.html",
        "recognition.html",
        "reconciliation.html",
        "metrics.html",
        "views.html",
        "decisions.html",
    ] {
        let html = std::fs::read_to_string(dir.join(page)).unwrap();
        for attr in ["src=\"http", "href=\"http", "url(http", "<script"] {
            assert!(
                !html.contains(attr),
                "{page} uses an external asset or script ({attr})"
            );
        }
        for link in html
            .split("href=\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap())
        {
            assert!(dir.join(link).exists(), "{page} links to missing {link}");
        }
    }
    let contracts = std::fs::read_to_string(dir.join("contracts.html")).unwrap();
    assert!(
        contracts.contains("negative_units") && contracts.contains("<svg"),
        "contracts page lists rules with a chart"
    );
    let run_pages: Vec<_> = std::fs::read_dir(dir.parent().unwrap())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('r'))
        .collect();
    assert_eq!(run_pages.len(), 1, "one directory per run beside latest/");
}

#[test]
fn the_index_renders_in_headless_chromium_with_the_runs_figures() {
    let dir = report_dir();
    let dom = rendered_dom(&dir.join("index.html"));
    let manifest = gtmos::snapshot::Manifest::read(corpus()).unwrap();
    assert!(dom.contains("<h1>gtmos build <span"), "{dom}");
    assert!(dom.contains(&manifest.snapshot_id), "snapshot id rendered");
    assert!(
        dom.contains(&manifest.inputs_hash()),
        "lineage shows the inputs hash"
    );
    assert!(
        dom.contains("tables published") && dom.contains("usage_billable"),
        "published tables listed"
    );
    assert!(
        dom.contains("spend_by_month")
            && dom.contains("not republished")
            && dom.contains("spend_out_of_range"),
        "the blocked table and why"
    );
    let contracts = rendered_dom(&dir.join("contracts.html"));
    assert!(
        contracts.contains("orphan_account_id") && contracts.contains("quarantined"),
        "contracts page"
    );
    let freshness = rendered_dom(&dir.join("freshness.html"));
    assert!(
        freshness.contains("metric_inputs_fresh") && freshness.contains("usage_metering_log"),
        "freshness page"
    );
}

/// Cents as the report prints money: `1,234.56`.
fn money(cents: i128) -> String {
    let (sign, c) = if cents < 0 {
        ("−", -cents)
    } else {
        ("", cents)
    };
    let int = (c / 100).to_string();
    let mut grouped = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    format!("{sign}{grouped}.{:02}", c % 100)
}

#[test]
fn the_recognition_page_rolls_deferred_revenue_forward_and_lists_restatements() {
    let dir = report_dir();
    let (wh, _, _) = crate::build::built_for_report();
    let dom = rendered_dom(&dir.join("recognition.html"));
    let roll = Table::read_file(&wh.join("published/deferred_revenue_rollforward.parquet"));
    let section = dom
        .split("id=\"rollforward-table\"")
        .nth(1)
        .unwrap()
        .split("</table>")
        .next()
        .unwrap();
    assert_eq!(
        section.matches("<tr").count(),
        roll.rows + 1,
        "one line per month"
    );
    let closing = roll.dec("closing_usd");
    let last = closing[roll.rows - 1].unwrap();
    assert!(
        section.contains(&money(last)),
        "last closing {} shown",
        money(last)
    );
    let restatements = Table::read(corpus(), "restatements");
    assert!(restatements.rows > 0, "the corpus carries restatements");
    let listed = dom.matches("class=\"restatement\"").count();
    assert_eq!(
        listed, restatements.rows,
        "each restatement on a line of its own"
    );
    for id in restatements.s("restatement_id") {
        assert!(dom.contains(&id), "{id} listed");
    }
    assert!(dom.contains("id=\"waterfall-table\""), "waterfall rendered");
}

#[test]
fn the_reconciliation_page_names_every_discrepancy_and_its_tolerance() {
    let dir = report_dir();
    let dom = rendered_dom(&dir.join("reconciliation.html"));
    let o = Table::read(corpus(), "oracle/faults");
    let discrepancies = dom
        .split("id=\"discrepancies\"")
        .nth(1)
        .unwrap()
        .split("</table>")
        .next()
        .unwrap();
    for (class, key) in o.s("fault_class").into_iter().zip(o.s("key")) {
        if class.starts_with("reference_") {
            let shown = key.replace('|', " × ");
            assert!(discrepancies.contains(&shown), "{class} {shown} not listed");
        }
    }
    for tolerance in ["±0.01 %", "±0.001 %", "±$0.01", "±$1"] {
        assert!(dom.contains(tolerance), "tolerance {tolerance} shown");
    }
    assert!(dom.contains("held"), "the close is held");
}

#[test]
fn the_metrics_page_charts_every_metric_against_plan_and_marks_blocked_ones() {
    let (wh, _, _) = crate::build::built_for_report();
    let dir = report_dir();
    let dom = rendered_dom(&dir.join("metrics.html"));
    for metric in [
        "nrr",
        "grr",
        "magic_number",
        "cac_payback_months",
        "rule_of_40_ebitda",
        "pipeline_coverage",
    ] {
        let chart = dom
            .split(&format!("id=\"trend-{metric}\""))
            .nth(1)
            .unwrap_or_else(|| panic!("no trend for {metric}"));
        let svg = chart.split("</svg>").next().unwrap();
        if ["magic_number", "cac_payback_months"].contains(&metric) {
            // Blocked by the corpus' negative spend, with no good value yet: every period a gap.
            assert!(
                svg.contains("class=\"gap\"") && !svg.contains("class=\"actual\""),
                "{metric}"
            );
        } else {
            assert!(
                svg.contains("<svg") && svg.contains("class=\"actual\""),
                "{metric} has a line"
            );
        }
    }
    // NRR has plan and board lines (the corpus plan has monthly NRR targets).
    let nrr = dom
        .split("id=\"trend-nrr\"")
        .nth(1)
        .unwrap()
        .split("</svg>")
        .next()
        .unwrap();
    assert!(nrr.contains("class=\"plan\"") && nrr.contains("class=\"board\""));
    // The shared corpus blocks spend_by_month: Magic Number is blocked and marked as such.
    let stale = dom
        .split("id=\"stale-metrics\"")
        .nth(1)
        .expect("stale metrics listed");
    assert!(stale.split("</p>").next().unwrap().contains("magic_number"));
    // The latest NRR in the summary table is the published figure.
    let log = gtmos::table_io::json_rows(&wh.join("published/metrics_calc_log.parquet")).unwrap();
    let latest = log
        .iter()
        .filter(|r| r["metric_name"] == "nrr" && r["cadence"] == "monthly" && r["segment"] == "ALL")
        .max_by_key(|r| r["period"].as_str().unwrap().to_string())
        .unwrap();
    let shown = format!("{:.2} %", latest["metric_value"].as_f64().unwrap());
    let summary = dom
        .split("id=\"metric-summary\"")
        .nth(1)
        .unwrap()
        .split("</table>")
        .next()
        .unwrap();
    assert!(summary.contains(&shown), "{shown} in the summary");
    assert!(dom.contains("id=\"cohort-table\""), "cohort table rendered");
    let cohorts = dom
        .split("id=\"cohort-table\"")
        .nth(1)
        .unwrap()
        .split("</table>")
        .next()
        .unwrap();
    assert!(cohorts.contains(">NRR<") && cohorts.contains(">GRR<") && cohorts.contains("100.0"));
    let decisions = rendered_dom(&dir.join("decisions.html"));
    assert!(decisions.contains("channel.invest") && decisions.contains("icp.update"));
}

#[test]
fn the_views_page_shows_the_catalog_and_tier_distributions_by_archetype() {
    let dir = report_dir();
    let dom = rendered_dom(&dir.join("views.html"));
    // 20 views and the composite, each with its staleness and token sizes.
    assert_eq!(
        dom.matches("<tr class=\"view\">").count(),
        21,
        "catalog rows"
    );
    assert!(dom.contains("account_composite") && dom.contains("o200k_base"));
    let hash = gtmos::project::Project::load(&project_dir())
        .unwrap()
        .views
        .unwrap()
        .hash;
    assert!(dom.contains(&hash), "the contracts hash is shown");
    // Each scorer's tiers by the corpus archetypes.
    for title in [
        "Churn risk (AGT-502)",
        "ICP (AGT-201)",
        "Consumption forecast (TOOL-004)",
    ] {
        assert!(dom.contains(title), "{title}");
    }
    for archetype in ["champion_loss_decliner", "seasonal", "ideal_power_user"] {
        assert!(dom.contains(archetype), "{archetype}");
    }
    assert!(dom.contains("Critical") && dom.contains("T1"));
}
