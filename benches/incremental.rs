//! The nightly build, incremental against full refresh: two nights of one company
//! (`gtmos synth --nights 2` over the bench corpus), the first built in full, then the second
//! built incrementally on that warehouse and, in the same run, as a full refresh into another;
//! then the second night once more (a rerun: nothing new). Each build is the `gtmos` binary in
//! its own process, so its time and peak resident memory are its own. The two warehouses'
//! published tables are compared byte for byte.
//!
//! `cargo bench --bench incremental` (release). `GTMOS_BENCH_ACCOUNTS` sets the corpus size
//! (default 100,000), `GTMOS_MEMORY_MB` the memory budget (default 4096).

mod common;

use std::path::Path;
use std::time::Instant;

/// One `gtmos build` of `snapshot` into `warehouse`: seconds, peak RSS (MiB) and its JSON
/// summary.
fn build(snapshot: &Path, warehouse: &Path, extra: &[&str]) -> (f64, f64, serde_json::Value) {
    common::gtmos_build(env!("CARGO_BIN_EXE_gtmos"), snapshot, warehouse, extra)
}

fn reused(summary: &serde_json::Value) -> (usize, usize) {
    let all = summary["incremental"].as_array().expect("incremental");
    let n = all.iter().filter(|d| d["decision"] == "reused").count();
    (n, all.len())
}

fn main() {
    let accounts = common::accounts();
    let corpus = common::corpus(accounts);
    let base = common::base().join(format!("incremental-{accounts}"));
    let _ = std::fs::remove_dir_all(&base);
    let started = Instant::now();
    let nights = gtmos::synth::nights::write_nights(&corpus, &base, 2).expect("nights");
    println!(
        "incremental bench: {accounts} accounts; 2 nights written in {:.1} s; night 2 adds {} append-only rows",
        started.elapsed().as_secs_f64(),
        nights[1].new_rows.values().sum::<u64>()
    );
    let (n1, n2) = (base.join(&nights[0].dir), base.join(&nights[1].dir));
    let (inc, full) = (base.join("wh-incremental"), base.join("wh-full"));

    let (s1, m1, _) = build(&n1, &inc, &[]);
    println!("  night 1, first build           {s1:8.1} s  peak {m1:7.0} MiB");
    let (si, mi, ri) = build(&n2, &inc, &[]);
    let (ui, ti) = reused(&ri);
    println!(
        "  night 2, incremental           {si:8.1} s  peak {mi:7.0} MiB  ({ui} of {ti} tables reused)"
    );
    let (sf, mf, _) = build(&n2, &full, &["--full-refresh"]);
    println!("  night 2, full refresh          {sf:8.1} s  peak {mf:7.0} MiB");
    let (sr, mr, rr) = build(&n2, &inc, &[]);
    let (ur, tr) = reused(&rr);
    println!(
        "  night 2 again (nothing new)    {sr:8.1} s  peak {mr:7.0} MiB  ({ur} of {tr} tables reused)"
    );
    let why: std::collections::BTreeMap<String, usize> = ri["incremental"]
        .as_array()
        .expect("incremental")
        .iter()
        .filter_map(|d| d["decision"].as_str())
        .filter(|d| *d != "reused")
        .fold(Default::default(), |mut m, d| {
            *m.entry(d.to_string()).or_default() += 1;
            m
        });
    println!("  night 2 incremental, computed because:");
    for (d, n) in &why {
        println!("    {n:3}  {d}");
    }
    let (a, b) = (common::published(&inc), common::published(&full));
    let differing: Vec<&str> = a
        .iter()
        .zip(&b)
        .filter(|(x, y)| x != y)
        .map(|(x, _)| x.0.as_str())
        .collect();
    println!(
        "  published tables: {} incremental, {} full refresh, {} differing {:?}",
        a.len(),
        b.len(),
        differing.len(),
        differing
    );
    println!(
        "  ratio incremental / full refresh: {:.2}; target {} s",
        si / sf,
        if accounts >= 100_000 {
            "≤ 30"
        } else {
            "≤ 3"
        }
    );
}
