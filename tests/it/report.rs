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
    chromium(&["--dump-dom".into(), format!("file://{}", page.display())])
}

/// The nightly build's pages, then the eval and canary pages (under `eval/latest/` and
/// `canary/latest/` beside the build's `latest/`).
const PAGES: [&str; 12] = [
    "index.html",
    "contracts.html",
    "freshness.html",
    "recognition.html",
    "reconciliation.html",
    "metrics.html",
    "views.html",
    "decisions.html",
    "strategy.html",
    "lineage.html",
    "../eval/latest/eval.html",
    "../canary/latest/canary.html",
];

#[test]
fn report_pages_link_up_and_use_no_external_assets() {
    let dir = report_dir();
    for page in PAGES {
        let path = dir.join(page);
        let html = std::fs::read_to_string(&path).unwrap();
        for attr in ["src=\"http", "href=\"http", "url(http", "<script"] {
            assert!(
                !html.contains(attr),
                "{page} uses an external asset or script ({attr})"
            );
        }
        let links: Vec<String> = html
            .split("href=\"")
            .skip(1)
            .map(|s| s.split('"').next().unwrap().replace("&#x2f;", "/"))
            .collect();
        for link in &links {
            let file = link.split('#').next().unwrap();
            if !file.is_empty() {
                assert!(
                    path.parent().unwrap().join(file).exists(),
                    "{page} links to missing {link}"
                );
            }
        }
        let title = html
            .split("<title>")
            .nth(1)
            .unwrap()
            .split("</title>")
            .next()
            .unwrap();
        assert!(
            title.len() < 120 && !title.contains('<'),
            "{page}: title {title}"
        );
        // One navigation bar reaches every page, from every page.
        let nav = html
            .split("<nav")
            .nth(1)
            .unwrap()
            .split("</nav>")
            .next()
            .unwrap();
        for other in PAGES {
            let name = other.rsplit('/').next().unwrap();
            assert!(nav.contains(name), "{page}: the navigation lacks {name}");
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
    // 26 views and the composite, each with its staleness and token sizes; the 5 unavailable
    // views listed apart, with why.
    assert_eq!(dom.matches("<tr class=\"unavailable\">").count(), 5);
    assert!(dom.contains("market_strategy_view") && dom.contains("no market-assumptions table"));
    assert_eq!(
        dom.matches("<tr class=\"view\">").count(),
        27,
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

/// Measures a page as Chromium lays it out (in a frame, see [`probe`]): the viewport's width (without a scroll bar), the
/// document's width and height, the elements sticking out to the right (outside a box that
/// scrolls them), and every chart's accessible name, title and text alternative. The test
/// adds it to a copy of the page; the report itself has no scripts.
const PROBE: &str = r#"<script>(function () {
  var d = document.documentElement, vw = d.clientWidth, out = [];
  document.querySelectorAll('body *').forEach(function (e) {
    if (e.parentElement.closest('.scroll')) return;
    if (e.getBoundingClientRect().right > vw + 0.5 && out.length < 8)
      out.push(e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && e.className.baseVal === undefined ? '.' + e.className : ''));
  });
  var charts = [].map.call(document.querySelectorAll('svg[role=img]'), function (s) {
    var t = s.querySelector('title'), x = s.querySelector('desc');
    return {label: s.getAttribute('aria-label') || '', title: t ? t.textContent : '', desc: x ? x.textContent : '',
            width: s.getBoundingClientRect().width};
  });
  var p = parent.document.createElement('pre');
  p.id = 'probe-' + frameElement.getAttribute('width');
  p.textContent = JSON.stringify({viewport: vw, width: d.scrollWidth, height: d.scrollHeight, offenders: out, charts: charts});
  parent.document.body.appendChild(p);
})();</script>"#;

#[derive(serde::Deserialize, Debug)]
struct Probe {
    viewport: f64,
    width: f64,
    height: f64,
    offenders: Vec<String>,
    charts: Vec<Chart>,
}

#[derive(serde::Deserialize, Debug)]
struct Chart {
    label: String,
    title: String,
    desc: String,
    width: f64,
}

/// Headless Chromium with a fresh profile, no network and `args`; its standard output.
fn chromium(args: &[String]) -> String {
    let profile = tempdir();
    let out = Command::new(browser())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", profile.path().display()),
        ])
        .args(args)
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The widths every page is laid out at: a desktop, and a phone.
const WIDTHS: [u32; 2] = [1400, 390];

/// [`PROBE`]'s findings for `page` laid out at each of [`WIDTHS`] CSS pixels, in one browser
/// run. The page (with the probe) is the `srcdoc` of an iframe that wide — a headless window
/// is at least 500 pixels wide — and a frame shares its parent's origin, so each probe hands
/// its findings up.
fn probe(page: &Path) -> Vec<Probe> {
    let html = std::fs::read_to_string(page).unwrap();
    let framed = html
        .replace("</body>", &format!("{PROBE}</body>"))
        .replace('&', "&amp;")
        .replace('"', "&quot;");
    let frames: String = WIDTHS
        .iter()
        .map(|w| {
            format!(
                "<iframe width=\"{w}\" style=\"display:block;border:0;width:{w}px;height:900px\" srcdoc=\"{framed}\"></iframe>"
            )
        })
        .collect();
    let dir = tempdir();
    let wrapper = dir.path().join("wrapper.html");
    std::fs::write(
        &wrapper,
        format!("<!doctype html><html><body style=\"margin:0\">{frames}</body></html>"),
    )
    .unwrap();
    let dom = chromium(&[
        format!("--window-size={},1000", WIDTHS.iter().max().unwrap() + 40),
        "--virtual-time-budget=5000".into(),
        "--dump-dom".into(),
        format!("file://{}", wrapper.display()),
    ]);
    WIDTHS
        .iter()
        .map(|w| {
            let json = dom
                .split(&format!("<pre id=\"probe-{w}\">"))
                .nth(1)
                .and_then(|s| s.split("</pre>").next())
                .unwrap_or_else(|| panic!("{}: the probe at {w} px did not run", page.display()));
            let json = json
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&nbsp;", "\u{a0}")
                .replace("&amp;", "&");
            serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"))
        })
        .collect()
}

/// The charts each page must draw (a part of each chart's title).
fn required_charts(page: &str) -> &'static [&'static str] {
    match page {
        "index.html" => &[
            "NRR, last",
            "GRR, last",
            "Quarantined rows per rule, last",
            "Slowest steps",
        ],
        "contracts.html" => &["Rows removed per rule"],
        "freshness.html" => &["Age of newest row"],
        "recognition.html" => &["Deferred revenue roll-forward", "Revenue waterfall"],
        "metrics.html" => &[
            "Net revenue retention (NRR)",
            "Net revenue retention by cohort",
            "Gross revenue retention by cohort",
        ],
        "views.html" => &[
            "Churn risk (AGT-502): accounts per tier",
            "ICP (AGT-201): accounts per tier",
        ],
        "strategy.html" => &[
            "Net revenue retention by quarters since signup",
            "Logo retention by quarters since signup",
            "NRR by signup cohort",
            "ICP tier against outcomes",
            "Gross-profit bridge per quarter",
            "nrr, quarterly, last",
            "Win rate by segment",
        ],
        "../eval/latest/eval.html" => &[
            "precision and recall per class",
            "reliability of the model's confidence",
            "scores against the gate",
            "candidate − baseline",
        ],
        "../canary/latest/canary.html" => &[
            "Variant − control, % of the control arm",
            "confidence sequence over 2 look(s)",
            "Sample ratio",
        ],
        _ => &[],
    }
}

#[test]
fn every_page_fits_a_desktop_and_a_phone_and_each_chart_has_its_text_alternative() {
    let dir = report_dir();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let mut failures = Vec::new();
    for page in PAGES {
        let path = dir.join(page);
        let name = page.rsplit('/').next().unwrap().trim_end_matches(".html");
        for (width, p) in WIDTHS.into_iter().zip(probe(&path)) {
            if p.width > p.viewport + 0.5 || !p.offenders.is_empty() {
                failures.push(format!(
                    "{page} at {width} px: {} px wide in a {} px viewport; sticking out: {:?}",
                    p.width, p.viewport, p.offenders
                ));
            }
            for c in &p.charts {
                if c.label.is_empty() || c.title != c.label || c.desc.trim().is_empty() {
                    failures.push(format!(
                        "{page}: a chart without its title or text alternative: {c:?}"
                    ));
                }
                if c.width > p.viewport + 0.5 {
                    failures.push(format!(
                        "{page} at {width} px: chart {:?} is {} px wide",
                        c.label, c.width
                    ));
                }
            }
            for want in required_charts(page) {
                if !p.charts.iter().any(|c| c.label.contains(want)) {
                    failures.push(format!("{page}: no chart titled …{want}…"));
                }
            }
            if width == 1400 {
                // The whole page, kept as an artifact of the test run.
                let shot = shots.join(format!("{name}.png"));
                chromium(&[
                    format!(
                        "--window-size=1400,{}",
                        (p.height as u32).clamp(600, 12_000)
                    ),
                    format!("--screenshot={}", shot.display()),
                    format!("file://{}", path.display()),
                ]);
                assert!(shot.exists(), "no screenshot of {page}");
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_index_answers_first_what_needs_action_and_the_headline_figures() {
    let (_, reports, _) = crate::build::built_for_report();
    let wh2 = reports.parent().unwrap().join("warehouse2");
    let dom = rendered_dom(&report_dir().join("index.html"));
    // What needs action, before the figures: the blocked table, the held close.
    let attention = dom
        .split("id=\"attention-list\"")
        .nth(1)
        .expect("a needs-action list")
        .split("</ul>")
        .next()
        .unwrap();
    assert!(dom.find("id=\"attention-list\"") < dom.find("id=\"headline\""));
    assert!(attention.contains("spend_by_month") && attention.contains("spend_out_of_range"));
    // Tables blocked only through it are listed with it, not as items of their own.
    assert!(attention.contains("downstream table(s) blocked with it: metric_gtm_funnel"));
    assert_eq!(attention.matches("blocked table").count(), 1, "{attention}");
    assert!(
        attention.contains("close held") && attention.contains("reconciliation.html#discrepancies")
    );
    assert!(dom.contains("class=\"verdict attention\""));
    // The headline figures are the published ones.
    let log = gtmos::table_io::json_rows(&wh2.join("published/metrics_calc_log.parquet")).unwrap();
    for metric in ["nrr", "grr"] {
        let latest = log
            .iter()
            .filter(|r| {
                r["metric_name"] == metric
                    && r["cadence"] == "monthly"
                    && r["segment"] == "ALL"
                    && r["channel"].is_null()
            })
            .max_by_key(|r| r["period"].as_str().unwrap().to_string())
            .unwrap();
        let card = dom
            .split(&format!("id=\"kpi-{metric}\""))
            .nth(1)
            .unwrap_or_else(|| panic!("no {metric} card"))
            .split("</svg>")
            .next()
            .unwrap();
        let shown = format!("{:.2} %", latest["metric_value"].as_f64().unwrap());
        assert!(card.contains(&shown), "{metric}: {shown} not in {card}");
        let plan = format!("plan {:.2} %", latest["plan_target"].as_f64().unwrap());
        assert!(card.contains(&plan), "{metric}: {plan} not in {card}");
    }
    // Blocked by the corpus' negative spend with no good value: said, not drawn as zero.
    let magic = dom
        .split("id=\"kpi-magic_number\"")
        .nth(1)
        .unwrap()
        .split("</div></div>")
        .next()
        .unwrap();
    assert!(magic.contains("no value"), "{magic}");
    // Every command's recent runs, linked to their pages.
    let runs = dom
        .split("id=\"runs-table\"")
        .nth(1)
        .unwrap()
        .split("</table>")
        .next()
        .unwrap();
    for (command, href) in [
        ("build", "index.html"),
        ("eval golden", "../eval/"),
        ("canary", "../canary/"),
    ] {
        assert!(
            runs.contains(&format!("<td>{command}</td>")),
            "{command} listed"
        );
        assert!(
            runs.contains(&format!("href=\"{href}")),
            "{command} linked: {runs}"
        );
    }
    // Lineage: the published metric table traced back to its sources.
    let lineage = rendered_dom(&report_dir().join("lineage.html"));
    let tree = lineage
        .split("id=\"t-metrics_calc_log\"")
        .nth(1)
        .unwrap()
        .split("</details>")
        .next()
        .unwrap();
    assert!(
        tree.contains("metric_revenue")
            && tree.contains(">source<")
            && tree.contains("usage_metering_log")
    );
}

#[test]
fn the_contracts_page_lists_failures_first_with_their_samples_as_tables() {
    let dom = rendered_dom(&report_dir().join("contracts.html"));
    let flagged = dom
        .split("id=\"flagged\"")
        .nth(1)
        .unwrap()
        .split("Quarantined rows per rule</h2>")
        .next()
        .unwrap();
    let first = flagged.split("class=\"flagged ").nth(1).unwrap();
    assert!(first.starts_with("fail"), "a failure comes first: {first}");
    let sample = dom
        .split("<table class=\"sample\">")
        .nth(1)
        .expect("samples are tables")
        .split("</table>")
        .next()
        .unwrap();
    assert!(
        sample.contains("<th>month</th>") && sample.contains("<td class=\"mono\">"),
        "a column per field, a row per failing row: {sample}"
    );
    // Failed before warned before passed, across the page's node sections too.
    let statuses: Vec<&str> = flagged
        .split("class=\"flagged ")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    let mut sorted = statuses.clone();
    sorted.sort_by_key(|s| if *s == "fail" { 0 } else { 1 });
    assert_eq!(statuses, sorted);
}

#[test]
fn the_strategy_page_draws_what_the_strategy_views_read() {
    let (_, reports, _) = crate::build::built_for_report();
    let wh2 = reports.parent().unwrap().join("warehouse2");
    let dom = rendered_dom(&report_dir().join("strategy.html"));
    // Every published cohort cell is in the table beneath the charts, and every projection or
    // refusal of TOOL-013 beneath its own.
    let cohorts = Table::read(&wh2.join("published"), "cohort_retention");
    let forecast = Table::read(&wh2.join("published"), "cohort_retention_forecast");
    let section = |id: &str| {
        dom.split(&format!("id=\"{id}\""))
            .nth(1)
            .unwrap()
            .split("</table>")
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        section("cohort-retention-table").matches("<tr>").count(),
        cohorts.rows + 1
    );
    assert_eq!(
        section("cohort-forecast-table").matches("<tr>").count(),
        forecast.rows + 1
    );
    assert!(
        forecast.str("refusal_reason").iter().any(Option::is_some),
        "a cohort too young is refused"
    );
    assert!(dom.contains("too little history"));
    // TOOL-015's bridge: one table row per quarter with a decomposed customer, and every
    // decomposed customer-quarter counted once.
    let gp = Table::read(&wh2.join("published"), "gp_decomposition");
    let pricing = gp.dec("pricing_effect_usd");
    let decomposed: std::collections::BTreeMap<_, usize> = gp
        .date("quarter")
        .into_iter()
        .zip(&pricing)
        .filter(|(_, p)| p.is_some())
        .fold(Default::default(), |mut m, (q, _)| {
            *m.entry(q).or_default() += 1;
            m
        });
    let bridge = section("gp-bridge-table");
    assert_eq!(bridge.matches("<tr>").count(), decomposed.len() + 1);
    let counted: usize = bridge
        .split("<tr>")
        .skip(2)
        .map(|row| {
            let cell = row.split("<td class=\"num\">").nth(1).unwrap();
            cell.split('<').next().unwrap().parse::<usize>().unwrap()
        })
        .sum();
    assert_eq!(counted, decomposed.values().sum::<usize>());
    // The unavailable views, with why.
    assert!(section("strategy-unavailable").contains("forecast_strategy_view"));
}
