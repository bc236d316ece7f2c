//! The usage path of `gtmos build` — the usage log's contract, `usage_corrections`,
//! `usage_current` and `usage_billable`, each with its data tests — side by side with DuckDB doing the same work
//! as an expert would write it (`benches/usage_path_duckdb.sql`), on the same Parquet files
//! with the same threads and memory budget; `usage_billable` and the quarantined rows (with
//! their rule) are compared row for row.
//!
//! `cargo bench --bench usage_path` (release). `GTMOS_BENCH_ACCOUNTS` sets the corpus size
//! (default 100,000), generated once under `target/bench-data/`; `GTMOS_MEMORY_MB` the memory
//! budget of both (default 4096).

mod common;

use gtmos::snapshot::Snapshot;

const PATH: [&str; 4] = [
    "source.usage_metering_log",
    "model.usage_corrections",
    "model.usage_current",
    "model.usage_billable",
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
    let snapshot = Snapshot::open(&corpus, &project.registry).expect("snapshot");
    let rows = snapshot.manifest.tables["usage_metering_log"].rows;
    let inputs = common::checked_inputs(
        &project,
        &corpus,
        "usage-path-inputs",
        &["accounts", "orders", "order_lines"],
    );

    // gtmos: the partial build that publishes usage_billable (and the three small sources its
    // contract reads); the path is the sum of its three steps.
    let (wh, report) = common::build(&corpus, "usage-path-warehouse", "usage_billable", &[]);
    let gtmos_s = common::seconds(&report, |s| PATH.contains(&s));
    let ours = base.join("usage-path-gtmos");
    let _ = std::fs::remove_dir_all(&ours);
    std::fs::create_dir_all(&ours).unwrap();
    std::os::unix::fs::symlink(
        wh.join("published/usage_billable.parquet"),
        ours.join("usage_billable.parquet"),
    )
    .unwrap();
    let quarantine = std::fs::read_dir(wh.join("quarantine/usage_metering_log"))
        .expect("a quarantine file")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "parquet"))
        .expect("a quarantine file");
    std::os::unix::fs::symlink(quarantine, ours.join("quarantine.parquet")).unwrap();

    let duck = common::duckdb(
        &root.join("benches/usage_path_duckdb.sql"),
        &base.join("usage-path-duckdb-out"),
        &[
            ("SNAPSHOT", corpus.display().to_string()),
            ("INPUTS", inputs.display().to_string()),
            ("AS_OF", snapshot.manifest.as_of.clone()),
        ],
        &[ours.to_str().unwrap(), "usage_billable", "quarantine"],
    );

    println!(
        "usage path: {accounts} accounts, {rows} usage rows, {threads} threads, {} MiB memory each, release build",
        common::memory_limit() >> 20
    );
    println!(
        "gtmos: {gtmos_s:.2} s ({:.2} M source rows/s), whole partial build {:.2} s, peak RSS {:.2} GiB",
        rows as f64 / gtmos_s / 1e6,
        report.seconds,
        common::peak_rss_mib() / 1024.0
    );
    common::print_model_times("usage path", &report, |s| PATH.contains(&s));
    if let Some(d) = &duck {
        let phases: Vec<String> = ["contract", "usage_current", "usage_billable"]
            .iter()
            .filter_map(|p| d.phase(p).map(|s| format!("{p} {s:.2}s")))
            .collect();
        println!("duckdb phases: {}", phases.join(", "));
    }
    common::print_comparison(gtmos_s, &duck);
}
