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
fn rendered_dom(page: &Path) -> String {
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
    for page in ["index.html", "contracts.html", "freshness.html"] {
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
    assert!(dom.contains("Build run"), "{dom}");
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
