//! Tier-1 scores and brain-ready views (`build --select tag:scores,tag:views`: health, churn
//! risk, expansion, adoption, the consumption forecast, ICP, priority, the twenty views and
//! the per-account composites with their token counts) on a 100,000-account corpus: time and
//! peak memory.
//!
//! Then the health-score stage (`score_accounts`, `usage_weekly`, `customer_health_log`) side
//! by side with DuckDB, both doing what a build does with it: compute each table, write it in
//! the build's total order to Parquet (zstd level 1), and run its data tests. gtmos runs it
//! through `build::build_model`, the build's own per-model step; DuckDB runs the same SQL,
//! rendered from the pipeline and rewritten into its dialect, and the same data tests, over the
//! same checked inputs. The two alternate for `GTMOS_BENCH_RUNS` paired runs (default 5), so
//! both see the same machine and page cache; the figures are the medians. DuckDB's outputs
//! are checked row for row against the tables the build published.
//!
//! `cargo bench --bench scores` (release build; `pip install duckdb`).
//! `GTMOS_BENCH_ACCOUNTS` sets the corpus size, `GTMOS_MEMORY_MB` both engines' memory.

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use gtmos::contracts::Context;
use gtmos::contracts::duckdb::{DUCKDB_COPY_OPTIONS, duckdb_checks, duckdb_dialect};
use gtmos::engine::{Engine, MODELS, SOURCES};
use gtmos::project::template::Ref;
use gtmos::project::{Project, Renderer};
use gtmos::warehouse::Warehouse;

/// The health-score stage, in dependency order.
const HEALTH: [&str; 3] = ["score_accounts", "usage_weekly", "customer_health_log"];

fn runs() -> usize {
    std::env::var("GTMOS_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1)
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// What the full build fixed for the stage: its as_of and ids (both engines render with them).
struct Build<'a> {
    report: &'a gtmos::build::BuildReport,
    project: &'a Project,
}

impl Build<'_> {
    fn renderer(&self) -> Renderer {
        let r = self.report;
        Renderer::new(self.project, Some(r.as_of), Some(&r.build_id))
            .with_snapshot(&r.snapshot_id, &r.inputs_hash)
    }
}

/// One gtmos run of the stage: a fresh engine over the checked inputs (`files/<table>.parquet`,
/// `usage_billable` among them), each model built by the build's own step into `scratch`.
fn gtmos_stage(b: &Build, files: &Path, scratch: &Path) -> f64 {
    let _ = std::fs::remove_dir_all(scratch);
    let engine = Engine::new(
        &b.project.engine,
        common::threads(),
        &scratch.join("spill"),
        common::memory_limit(),
    )
    .expect("engine");
    for e in std::fs::read_dir(files).expect("inputs") {
        let path = e.expect("input").path();
        let table = path.file_stem().unwrap().to_string_lossy().to_string();
        let (schema, pushdown) = match b.project.model(&table) {
            Some(m) => (MODELS, m.pushdown_filters),
            None => (SOURCES, false),
        };
        engine
            .register_parquet_with(schema, &table, &path.to_string_lossy(), None, pushdown)
            .expect("register");
    }
    let renderer = b.renderer();
    let render = |t: &str| renderer.text(t);
    let warehouse = Warehouse::new(scratch);
    let cx = Context {
        engine: &engine,
        warehouse: &warehouse,
        staging: scratch,
        run_id: "bench",
        as_of: b.report.as_of,
        snapshot_as_of: b.report.as_of,
        render: &render,
        window_range_rows: gtmos::contracts::WINDOW_RANGE_ROWS,
    };
    let started = Instant::now();
    for m in HEALTH {
        let model = b.project.model(m).expect("model");
        let ranged = gtmos::build::ranged_inputs(model, &Renderer::relation);
        let relation = |r: &Ref| gtmos::build::through_ranges(&ranged, &Renderer::relation, r);
        let sql = renderer
            .model(b.project, model, &relation, &|_| None)
            .expect("renders");
        let (_, tests) =
            gtmos::build::build_model(&cx, b.project, model, &sql, &ranged, &b.report.build_id)
                .unwrap_or_else(|e| panic!("{m}: {e}"));
        assert!(
            tests.iter().all(|t| t.failures == 0),
            "{m}: a data test failed"
        );
    }
    started.elapsed().as_secs_f64()
}

/// The stage as a DuckDB script: per model, compute it, write it in the build's total order,
/// run its data tests — each statement marked with its phase.
fn duckdb_script(b: &Build, sources: &[String], published: &Warehouse) -> String {
    let renderer = b.renderer();
    let as_of = b.report.as_of;
    let relation = |x: &Ref| match x {
        Ref::Source(t) => format!("src_{t}"),
        Ref::Model(m) => format!("m_{m}"),
    };
    let rel = |to: &str| {
        if b.project.model(to).is_some() {
            format!("m_{to}")
        } else {
            format!("src_{to}")
        }
    };
    let render = |t: &str| renderer.text(t).map(|sql| duckdb_dialect(&sql, as_of));
    let mut script = String::from(
        "-- Generated by benches/scores.rs: gtmos' health-score stage in DuckDB's dialect.\n",
    );
    script.push_str(gtmos::contracts::duckdb::DUCKDB_PRELUDE);
    for t in sources {
        writeln!(
            script,
            "CREATE VIEW src_{t} AS SELECT * FROM read_parquet('${{INPUTS}}/{t}.parquet');"
        )
        .unwrap();
    }
    writeln!(
        script,
        "CREATE VIEW m_usage_billable AS SELECT * FROM read_parquet('${{INPUTS}}/usage_billable.parquet');"
    )
    .unwrap();
    for m in HEALTH {
        let model = b.project.model(m).expect("model");
        let sql = renderer
            .model(b.project, model, &relation, &|_| None)
            .expect("renders");
        writeln!(
            script,
            "-- phase compute\nCREATE TABLE m_{m} AS\n{};",
            duckdb_dialect(&sql, as_of)
        )
        .unwrap();
        // The build's write order: the key alone for all three models here.
        writeln!(
            script,
            "-- phase write\nCOPY (SELECT * FROM m_{m} ORDER BY {}) TO '${{OUT}}/{m}.parquet' {DUCKDB_COPY_OPTIONS};",
            common::duckdb_write_order(model, published)
        )
        .unwrap();
        let checks = duckdb_checks(m, &format!("m_{m}"), &model.tests, &rel, &render)
            .expect("checks render");
        for statement in checks.split(";\n").filter(|s| !s.trim().is_empty()) {
            writeln!(script, "-- phase tests\n{statement};").unwrap();
        }
    }
    script
}

fn main() {
    let common::Setup {
        accounts,
        base,
        threads,
        corpus,
        project,
        ..
    } = common::setup();

    // The metrics view reads the metric layer, whose cohort-payback QA bounds block it on the
    // default corpus; lifted as in the metrics bench, so that every view is published.
    let lifted = [("payback_max_months", "1e12"), ("cac_max_usd", "1e15")];
    let (wh_dir, r) = common::build(&corpus, "scores-warehouse", "tag:scores,tag:views", &lifted);
    let peak = common::peak_rss_mib();
    assert!(r.blocked.is_empty(), "blocked: {:?}", r.blocked);
    let tagged = |step: &str, tag: &str| {
        step.strip_prefix("model.")
            .and_then(|m| project.model(m))
            .is_some_and(|m| m.tags.iter().any(|t| t == tag))
    };
    let scores_s = common::seconds(&r, |s| tagged(s, "scores"));
    let views_s = common::seconds(&r, |s| tagged(s, "views") || s == "views.assemble");
    let assemble_s = common::seconds(&r, |s| s == "views.assemble");
    let in_build: Vec<(&str, f64)> = HEALTH
        .iter()
        .map(|m| (*m, common::seconds(&r, |s| s == format!("model.{m}"))))
        .collect();
    let contracts_s = common::seconds(&r, |s| s.starts_with("source."));
    let views = r.views.as_ref().expect("views were built");
    println!(
        "scores + views: {accounts} accounts, {threads} threads, release build; peak memory {peak:.0} MiB (the whole process)"
    );
    println!(
        "  scores {scores_s:.1}s, views {views_s:.1}s (of which assembling and token-counting {} composites {assemble_s:.1}s; max {} of {} tokens, {} rows dropped to fit)",
        views.composites,
        views.composite_tokens_max,
        views.composite_token_budget,
        views.dropped_rows
    );
    common::print_model_times("score and view", &r, |s| {
        tagged(s, "scores") || tagged(s, "views")
    });
    println!(
        "not in the figures: source contracts {contracts_s:.1}s; whole build {:.1}s",
        r.seconds
    );

    // The health stage side by side, over the checked inputs of its sources and the published
    // usage_billable.
    let sources: Vec<String> = HEALTH
        .iter()
        .flat_map(|m| project.model(m).expect("model").refs.clone())
        .filter_map(|r| match r {
            Ref::Source(t) => Some(t),
            Ref::Model(_) => None,
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let files = common::checked_inputs(
        &project,
        &corpus,
        "scores-inputs",
        &sources.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let published = Warehouse::new(&wh_dir);
    let billable = files.join("usage_billable.parquet");
    let _ = std::fs::remove_file(&billable);
    std::os::unix::fs::symlink(published.published_file("usage_billable"), &billable).unwrap();
    let b = Build {
        report: &r,
        project: &project,
    };
    let script_path = base.join("scores_duckdb.sql");
    std::fs::write(&script_path, duckdb_script(&b, &sources, &published)).unwrap();
    let inputs = [("INPUTS", files.display().to_string())];
    let published_dir = published.published_dir().display().to_string();
    let mut compare: Vec<&str> = vec![&published_dir];
    compare.extend(HEALTH);

    println!(
        "health-score stage ({}), compute + sorted Parquet write + data tests, {} paired runs:",
        HEALTH.join(", "),
        runs()
    );
    println!(
        "{:>5} {:>9} {:>9} {:>8}   duckdb: compute / write / tests",
        "run", "gtmos s", "duckdb s", "ratio"
    );
    let (mut g, mut d) = (Vec::new(), Vec::new());
    let mut phases: Vec<Vec<f64>> = vec![Vec::new(); 3];
    let mut checked = Vec::new();
    for run in 0..runs() {
        let gtmos_s = gtmos_stage(&b, &files, &base.join("scores-stage"));
        let Some(duck) = common::duckdb(
            &script_path,
            &base.join("scores-duckdb-out"),
            &inputs,
            if run == 0 { &compare[..] } else { &[][..] },
        ) else {
            println!("{:>5} {gtmos_s:>9.2} {:>9} {:>8}", run + 1, "-", "-");
            g.push(gtmos_s);
            continue;
        };
        let phase = |name: &str| duck.phase(name).unwrap_or(0.0);
        println!(
            "{:>5} {gtmos_s:>9.2} {:>9.2} {:>8.2}   {:.2} / {:.2} / {:.2}",
            run + 1,
            duck.seconds,
            gtmos_s / duck.seconds,
            phase("compute"),
            phase("write"),
            phase("tests")
        );
        for (k, name) in ["compute", "write", "tests"].iter().enumerate() {
            phases[k].push(phase(name));
        }
        g.push(gtmos_s);
        d.push(duck.seconds);
        if run == 0 {
            checked = duck.compared().map(str::to_string).collect();
        }
    }
    let gm = median(&g);
    if d.is_empty() {
        println!("median: gtmos {gm:.2}s (DuckDB not available: pip install duckdb)");
    } else {
        let dm = median(&d);
        println!(
            "median: gtmos {gm:.2}s, DuckDB {dm:.2}s (compute {:.2}s, write {:.2}s, tests {:.2}s), ratio {:.2}",
            median(&phases[0]),
            median(&phases[1]),
            median(&phases[2]),
            gm / dm
        );
    }
    for line in checked {
        println!("  DuckDB against the published {line}");
    }
    let total: f64 = in_build.iter().map(|(_, s)| s).sum();
    let parts: Vec<String> = in_build
        .iter()
        .map(|(m, s)| format!("{m} {s:.2}s"))
        .collect();
    println!(
        "the same stage inside the full build: {total:.2}s ({})",
        parts.join(", ")
    );
}
