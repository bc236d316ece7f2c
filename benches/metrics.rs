//! The metric layer of `gtmos build` (the models tagged `metrics` and the spend they read:
//! revenue per account × month, the retention base, NRR/GRR, Magic Number, both CAC paybacks,
//! Rule of 40, pipeline coverage, the funnel, pricing and routing evidence, plan targets and
//! `metrics_calc_log`) on a 100,000-account corpus, side by side with the same metrics written
//! by hand in DuckDB SQL (`benches/metrics_duckdb.sql`) over the same inputs, each table then
//! written in the build's order and put through the model's data tests as the build does
//! (generated here, as the scores bench does) — and checked row for row against gtmos'
//! published tables.
//!
//! `cargo bench --bench metrics` (release build; `pip install duckdb`).
//! `GTMOS_BENCH_ACCOUNTS` sets the corpus size. gtmos runs `build --select tag:metrics`; its
//! figure is the time of the metric-layer models (the contracts, usage and recognition models
//! upstream are the other benchmarks' subjects and are reported apart). DuckDB reads the
//! checked sources and the published `revenue_recognition_log`.

mod common;

use std::path::Path;

use gtmos::warehouse::Warehouse;

/// The sources the metric layer reads.
const INPUTS: [&str; 7] = [
    "accounts",
    "opportunities",
    "gtm_spend",
    "financials",
    "fpa_plan",
    "price_tests",
    "routing_shadow_log",
];
/// The metric layer: every model it builds, in dependency order (all compared row for row).
const LAYER: [&str; 14] = [
    "spend_by_month",
    "plan_targets",
    "metric_revenue",
    "retention_base",
    "metric_retention",
    "metric_magic_number",
    "metric_cac_payback",
    "metric_cac_payback_cohort",
    "metric_rule_of_40",
    "metric_pipeline_coverage",
    "metric_gtm_funnel",
    "metric_pricing",
    "metric_routing",
    "metrics_calc_log",
];

fn main() {
    let common::Setup {
        accounts,
        root,
        base,
        threads,
        corpus,
        project,
    } = common::setup();

    // gtmos. The Decision OS QA bounds of the cohort payback block publishing when any cohort
    // reaches them (the default corpus's thin new-logo months of 2025 do); lifted here so that
    // every metric is published and compared. They are tests on the output, not part of
    // computing it.
    let lifted = [("payback_max_months", "1e12"), ("cac_max_usd", "1e15")];
    let (wh_dir, r) = common::build(&corpus, "metrics-warehouse", "tag:metrics", &lifted);
    assert!(r.blocked.is_empty(), "blocked: {:?}", r.blocked);
    let in_layer = |step: &str| {
        step.strip_prefix("model.")
            .is_some_and(|m| LAYER.contains(&m))
    };
    let gtmos_s = common::seconds(&r, in_layer);
    let contracts_s = common::seconds(&r, |s| s.starts_with("source."));
    let upstream_s = common::seconds(&r, |s| s.starts_with("model.") && !in_layer(s));
    let rows = |model: &str| {
        r.steps
            .iter()
            .find(|s| s.step == format!("model.{model}"))
            .map(|s| s.rows_out)
            .unwrap_or(0)
    };

    // DuckDB: the same checked sources and the published recognition log.
    let published = Warehouse::new(&wh_dir);
    let inputs = common::checked_inputs(&project, &corpus, "metrics-inputs", &INPUTS);
    std::os::unix::fs::symlink(
        published.published_file("revenue_recognition_log"),
        inputs.join("revenue_recognition_log.parquet"),
    )
    .unwrap();
    let mut subs = vec![
        ("INPUTS", inputs.display().to_string()),
        (
            "AS_OF_DATE",
            gtmos::calendar::format_ts(r.as_of)[..10].to_string(),
        ),
        ("AS_OF_MICROS", r.as_of.to_string()),
        ("BUILD_ID", r.build_id.clone()),
        ("SNAPSHOT_ID", r.snapshot_id.clone()),
        ("INPUTS_HASH", r.inputs_hash.clone()),
        (
            "PAYBACK_MIN_COHORT",
            project.vars["payback_min_cohort_accounts"].clone(),
        ),
    ];
    let versions: Vec<(String, String)> = LAYER
        .iter()
        .filter_map(|m| Some((format!("DV_{m}"), project.definition_version(m)?)))
        .collect();
    subs.extend(versions.iter().map(|(k, v)| (k.as_str(), v.clone())));
    let mut compare = vec![published.published_dir().display().to_string()];
    compare.extend(LAYER.iter().map(|t| t.to_string()));
    let script = base.join("metrics_duckdb_full.sql");
    std::fs::write(
        &script,
        duckdb_script(&root, &project, &r, &published, &lifted),
    )
    .unwrap();
    let duck = common::duckdb(
        &script,
        &base.join("metrics-duckdb-out"),
        &subs,
        &compare.iter().map(String::as_str).collect::<Vec<_>>(),
    );

    println!(
        "metric layer: {accounts} accounts, {} revenue rows (account × month), {} metrics_calc_log rows, {threads} threads, release build",
        rows("metric_revenue"),
        rows("metrics_calc_log")
    );
    common::print_comparison(gtmos_s, &duck);
    if let Some(d) = &duck {
        let (write, tests) = (
            d.phase("write").unwrap_or(0.0),
            d.phase("tests").unwrap_or(0.0),
        );
        println!(
            "duckdb: compute {:.2}s, sorted writes {write:.2}s, data tests {tests:.2}s",
            d.seconds - write - tests
        );
    }
    common::print_model_times("metric", &r, in_layer);
    println!(
        "not in the figure: source contracts {contracts_s:.1}s, usage and recognition models {upstream_s:.1}s, whole build {:.1}s",
        r.seconds
    );
}

/// The DuckDB side of the comparison, doing the build's work: the hand-written metric layer
/// (`benches/metrics_duckdb.sql`), then per model a write in the
/// build's total order and the model's data tests (rendered as the build renders them, with
/// the same lifted vars), each statement marked with its phase.
fn duckdb_script(
    root: &Path,
    project: &gtmos::project::Project,
    r: &gtmos::build::BuildReport,
    published: &Warehouse,
    lifted: &[(&str, &str)],
) -> String {
    use std::fmt::Write as _;
    let hand = std::fs::read_to_string(root.join("benches/metrics_duckdb.sql")).unwrap();
    let mut script = hand;
    // After the hand-written SQL: the prelude changes integer division, which the tests use.
    script.push_str(gtmos::contracts::duckdb::DUCKDB_PRELUDE);
    let mut vars = project.vars.clone();
    for (k, v) in lifted {
        vars.insert(k.to_string(), v.to_string());
    }
    let mut project = project.clone();
    project.vars = vars;
    let renderer = gtmos::project::Renderer::new(&project, Some(r.as_of), Some(&r.build_id))
        .with_snapshot(&r.snapshot_id, &r.inputs_hash);
    let render = |t: &str| {
        renderer
            .text(t)
            .map(|sql| gtmos::contracts::duckdb::duckdb_dialect(&sql, r.as_of))
    };
    let rel = |to: &str| to.to_string();
    for m in LAYER {
        let model = project.model(m).expect("model");
        writeln!(
            script,
            "-- phase write\nCOPY (SELECT * FROM {m} ORDER BY {}) TO '${{OUT}}/{m}.parquet' {};",
            common::duckdb_write_order(model, published),
            gtmos::contracts::duckdb::DUCKDB_COPY_OPTIONS
        )
        .unwrap();
        let checks = gtmos::contracts::duckdb::duckdb_checks(m, m, &model.tests, &rel, &render)
            .expect("checks render");
        for statement in checks.split(";\n").filter(|s| !s.trim().is_empty()) {
            writeln!(script, "-- phase tests\n{statement};").unwrap();
        }
    }
    script
}
