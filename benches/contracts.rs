//! The ingest + contracts stage of `gtmos build` on a 100,000-account corpus, side by side
//! with DuckDB running the same rules as one SQL script over the same Parquet files.
//!
//! `cargo bench --bench contracts` (release build). `GTMOS_BENCH_ACCOUNTS` sets the corpus
//! size (default 100000); the corpus is generated once under `target/bench-data/`. The DuckDB
//! script is `benches/contracts_duckdb.sql`, generated from `pipelines/` by
//! `gtmos::contracts::duckdb::duckdb_script` (a test keeps the committed copy in sync) and run by
//! `benches/run_duckdb.py` (`pip install duckdb`). Both write the accepted rows and the
//! quarantined rows of every source to Parquet and compute every check count.

mod common;

use std::time::Instant;

use gtmos::build::run_contracts;
use gtmos::contracts::Context;
use gtmos::engine::Engine;
use gtmos::project::Renderer;
use gtmos::snapshot::Snapshot;
use gtmos::warehouse::Warehouse;

fn main() {
    let common::Setup {
        accounts,
        base,
        threads,
        corpus,
        project,
        ..
    } = common::setup();
    let snapshot = Snapshot::open(&corpus, &project.registry).expect("snapshot");
    let as_of = snapshot.manifest.as_of_micros().unwrap();
    let rows: u64 = snapshot.manifest.tables.values().map(|t| t.rows).sum();

    // gtmos
    let wh_dir = base.join("contracts-warehouse");
    let _ = std::fs::remove_dir_all(&wh_dir);
    let warehouse = Warehouse::new(&wh_dir);
    let staging = warehouse.staging("bench");
    let engine = Engine::new(
        &project.engine,
        threads,
        &staging.join("spill"),
        common::memory_limit(),
    )
    .expect("engine");
    let renderer = Renderer::new(&project, Some(as_of), Some("bench"));
    let render = |t: &str| renderer.text(t);
    let cx = Context {
        engine: &engine,
        warehouse: &warehouse,
        staging: &staging,
        run_id: "bench",
        as_of,
        snapshot_as_of: as_of,
        render: &render,
        window_range_rows: gtmos::contracts::WINDOW_RANGE_ROWS,
    };
    let t = Instant::now();
    let results = run_contracts(&cx, &project, &snapshot).expect("contracts");
    let gtmos_s = t.elapsed().as_secs_f64();
    let quarantined: u64 = results
        .iter()
        .map(|r| r.quarantined.values().sum::<u64>())
        .sum();
    let mut slowest: Vec<(String, f64)> = results
        .iter()
        .map(|r| (r.table.clone(), r.seconds))
        .collect();
    slowest.sort_by(|a, b| b.1.total_cmp(&a.1));

    // DuckDB, same rules
    let script = base.join("contracts_duckdb.sql");
    std::fs::write(
        &script,
        gtmos::contracts::duckdb::duckdb_script(&project, as_of).expect("script"),
    )
    .unwrap();
    let duck = common::duckdb(
        &script,
        &base.join("contracts-duckdb-out"),
        &[("SNAPSHOT", corpus.display().to_string())],
        &[],
    )
    .map(|d| d.seconds);

    println!(
        "ingest + contracts stage: {accounts} accounts, {rows} rows in 28 tables, {threads} threads, {} MiB memory each, release build",
        common::memory_limit() >> 20
    );
    println!(
        "{:>12} {:>12} {:>14} {:>8}",
        "gtmos s", "duckdb s", "quarantined", "ratio"
    );
    match duck {
        Some(d) => println!(
            "{gtmos_s:>12.2} {d:>12.2} {quarantined:>14} {:>8.2}",
            gtmos_s / d
        ),
        None => println!("{gtmos_s:>12.2} {:>12} {quarantined:>14} {:>8}", "-", "-"),
    }
    println!(
        "slowest gtmos steps: {}",
        slowest
            .iter()
            .take(5)
            .map(|(t, s)| format!("{t} {s:.2}s"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = std::fs::remove_dir_all(&wh_dir);
}
