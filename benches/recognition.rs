//! The recognition stage of `gtmos build` (the models tagged `recognition`: schedules,
//! consumption, services, the revenue log, deferred revenue, roll-forward, waterfall) on a
//! 100,000-account corpus, side by side with the same recognition written by hand in DuckDB SQL
//! (`benches/recognition_duckdb.sql`) over the same inputs — and checked row for row against
//! gtmos' published tables.
//!
//! `cargo bench --bench recognition` (release build; `pip install duckdb`).
//! `GTMOS_BENCH_ACCOUNTS` sets the corpus size. gtmos runs `build --select tag:recognition`;
//! its figure is the time of the recognition models (the source contracts they read, the
//! usage ingest above all, are the contracts benchmark's subject and are reported apart).
//! DuckDB reads the checked finance sources and the published `usage_billable`.

mod common;

use std::collections::BTreeSet;

use gtmos::warehouse::Warehouse;

/// What the recognition models read from the sources.
const INPUTS: [&str; 6] = [
    "orders",
    "order_lines",
    "invoices",
    "invoice_lines",
    "service_milestones",
    "restatements",
];
const OUTPUTS: [&str; 4] = [
    "revenue_recognition_log",
    "deferred_revenue_schedule",
    "deferred_revenue_rollforward",
    "revenue_waterfall",
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

    // gtmos
    let (wh_dir, r) = common::build(&corpus, "recognition-warehouse", "tag:recognition", &[]);
    let recognition: BTreeSet<String> = project
        .models
        .iter()
        .filter(|m| m.tags.iter().any(|t| t == "recognition"))
        .map(|m| format!("model.{}", m.name))
        .collect();
    let gtmos_s = common::seconds(&r, |s| recognition.contains(s));
    let contracts_s = common::seconds(&r, |s| s.starts_with("source."));
    let upstream_s = common::seconds(&r, |s| s.starts_with("model.") && !recognition.contains(s));
    let log_rows = r
        .steps
        .iter()
        .find(|s| s.step == "model.revenue_recognition_log")
        .map(|s| s.rows_out)
        .unwrap_or(0);

    // DuckDB's inputs: the same checked finance sources, and the published usage.
    let inputs = common::checked_inputs(&project, &corpus, "recognition-inputs", &INPUTS);
    let as_of = r.as_of;
    std::os::unix::fs::symlink(
        Warehouse::new(&wh_dir).published_file("usage_billable"),
        inputs.join("usage_billable.parquet"),
    )
    .unwrap();
    let as_of_date = gtmos::calendar::format_ts(as_of)[..10].to_string();
    let mut compare = vec![
        Warehouse::new(&wh_dir)
            .published_dir()
            .display()
            .to_string(),
    ];
    compare.extend(OUTPUTS.iter().map(|t| t.to_string()));
    let duck = common::duckdb(
        &root.join("benches/recognition_duckdb.sql"),
        &base.join("recognition-duckdb-out"),
        &[
            ("INPUTS", inputs.display().to_string()),
            ("AS_OF_DATE", as_of_date),
            ("METHOD", project.vars["recognition_method"].clone()),
        ],
        &compare.iter().map(String::as_str).collect::<Vec<_>>(),
    );

    println!(
        "recognition stage: {accounts} accounts, {log_rows} revenue log rows, {threads} threads, release build"
    );
    common::print_comparison(gtmos_s, &duck);
    common::print_model_times("recognition", &r, |s| recognition.contains(s));
    println!(
        "not in the figure: source contracts {contracts_s:.1}s, usage models {upstream_s:.1}s, whole build {:.1}s",
        r.seconds
    );
}
