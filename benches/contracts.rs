//! The ingest + contracts stage of `gtmos build` on a 100,000-account corpus, side by side
//! with DuckDB running the same rules as one SQL script over the same Parquet files.
//!
//! `cargo bench --bench contracts` (release build). `GTMOS_BENCH_ACCOUNTS` sets the corpus
//! size (default 100000); the corpus is generated once under `target/bench-data/`. The DuckDB
//! script is `benches/contracts_duckdb.sql`, generated from `pipelines/` by
//! `gtmos::contracts::duckdb_script` (a test keeps the committed copy in sync) and run by
//! `benches/run_duckdb.py` (`pip install duckdb`). Both write the accepted rows and the
//! quarantined rows of every source to Parquet and compute every check count.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use gtmos::build::run_contracts;
use gtmos::contracts::Context;
use gtmos::engine::Engine;
use gtmos::project::{Project, Renderer};
use gtmos::snapshot::Snapshot;
use gtmos::warehouse::Warehouse;

fn main() {
    let accounts: u64 = std::env::var("GTMOS_BENCH_ACCOUNTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let base = root.join("target/bench-data");
    let corpus = base.join(format!("contracts-corpus-{accounts}"));
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if !corpus.join("manifest.json").exists() {
        eprintln!(
            "generating a {accounts}-account corpus into {}",
            corpus.display()
        );
        let p = gtmos::synth::params::SynthParams {
            accounts,
            ..Default::default()
        };
        gtmos::synth::generate(&p, &corpus, threads, false).expect("synth");
    }
    let project = Project::load(&root.join("pipelines")).expect("project");
    let snapshot = Snapshot::open(&corpus, &project.registry).expect("snapshot");
    let as_of = snapshot.manifest.as_of_micros().unwrap();
    let rows: u64 = snapshot.manifest.tables.values().map(|t| t.rows).sum();

    // gtmos
    let wh_dir = base.join("contracts-warehouse");
    let _ = std::fs::remove_dir_all(&wh_dir);
    let warehouse = Warehouse::new(&wh_dir);
    let staging = warehouse.staging("bench");
    let engine =
        Engine::new(&project.engine, threads, &staging.join("spill"), 4096 << 20).expect("engine");
    let renderer = Renderer::new(&project, Some(as_of), Some("bench"));
    let render = |t: &str| renderer.text(t);
    let cx = Context {
        engine: &engine,
        warehouse: &warehouse,
        staging: &staging,
        run_id: "bench",
        as_of,
        render: &render,
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
        gtmos::contracts::duckdb_script(&project, as_of).expect("script"),
    )
    .unwrap();
    let duck = duckdb_seconds(&root, &script, &corpus, &base.join("contracts-duckdb-out"));

    println!(
        "ingest + contracts stage: {accounts} accounts, {rows} rows in 28 tables, {threads} threads, release build"
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

fn duckdb_seconds(root: &Path, script: &Path, corpus: &Path, out: &Path) -> Option<f64> {
    let _ = std::fs::remove_dir_all(out);
    let o = Command::new("python3")
        .arg(root.join("benches/run_duckdb.py"))
        .arg(script)
        .arg(corpus)
        .arg(out)
        .output()
        .ok()?;
    if !o.status.success() {
        eprintln!(
            "duckdb run failed (pip install duckdb): {}",
            String::from_utf8_lossy(&o.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        return None;
    }
    let _ = std::fs::remove_dir_all(out);
    String::from_utf8_lossy(&o.stdout).trim().parse().ok()
}
