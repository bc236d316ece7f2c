#![allow(dead_code)] // each bench uses a subset of these helpers
//! What the side-by-side benchmarks share: the corpus under `target/bench-data/` (generated
//! once per size) and running a DuckDB script through `benches/run_duckdb.py`.

use std::path::{Path, PathBuf};
use std::process::Command;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn base() -> PathBuf {
    root().join("target/bench-data")
}

pub fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// The process's peak resident memory (VmHWM), in MiB.
pub fn peak_rss_mib() -> f64 {
    peak_rss_mib_of("self")
}

/// Another process's peak resident memory (VmHWM) so far, in MiB (0 once it has exited).
pub fn peak_rss_mib_of(pid: impl std::fmt::Display) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// `GTMOS_BENCH_ACCOUNTS` (default 100,000).
pub fn accounts() -> u64 {
    std::env::var("GTMOS_BENCH_ACCOUNTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

/// The memory budget of both engines: `GTMOS_MEMORY_MB` (default 4096), passed to DuckDB's
/// `memory_limit` by `run_duckdb.py` too, so neither side gets more memory than the other.
pub fn memory_limit() -> usize {
    gtmos::settings::memory_limit(None).expect("GTMOS_MEMORY_MB")
}

/// What every side-by-side bench starts from: its size, directories, threads, corpus and the
/// pipelines project.
pub struct Setup {
    pub accounts: u64,
    pub root: PathBuf,
    pub base: PathBuf,
    pub threads: usize,
    pub corpus: PathBuf,
    pub project: gtmos::project::Project,
}

pub fn setup() -> Setup {
    let accounts = accounts();
    let root = root();
    let project = gtmos::project::Project::load(&root.join("pipelines")).expect("project");
    Setup {
        accounts,
        base: base(),
        threads: threads(),
        corpus: corpus(accounts),
        project,
        root,
    }
}

/// The default-parameter corpus of `accounts` accounts, generated on first use.
pub fn corpus(accounts: u64) -> PathBuf {
    let corpus = base().join(format!("corpus-{accounts}"));
    if !corpus.join("manifest.json").exists() {
        eprintln!(
            "generating a {accounts}-account corpus into {}",
            corpus.display()
        );
        let p = gtmos::synth::params::SynthParams {
            accounts,
            ..Default::default()
        };
        gtmos::synth::generate(&p, &corpus, threads(), false).expect("synth");
    }
    corpus
}

/// DuckDB's output of `run_duckdb.py`: seconds, then per-phase seconds and comparison lines.
pub struct DuckRun {
    pub seconds: f64,
    pub lines: Vec<String>,
}

impl DuckRun {
    /// Seconds of the statements marked `-- phase NAME`.
    pub fn phase(&self, name: &str) -> Option<f64> {
        self.lines.iter().find_map(|l| {
            l.strip_prefix("phase ")?
                .strip_prefix(name)?
                .trim()
                .parse()
                .ok()
        })
    }

    /// The comparison lines (`TABLE rows differing: N`).
    pub fn compared(&self) -> impl Iterator<Item = &str> {
        self.lines
            .iter()
            .filter(|l| !l.starts_with("phase "))
            .map(String::as_str)
    }
}

/// Run `script` with `${OUT}` = `out` and the given substitutions; None when DuckDB is missing.
pub fn duckdb(
    script: &Path,
    out: &Path,
    subs: &[(&str, String)],
    compare: &[&str],
) -> Option<DuckRun> {
    let _ = std::fs::remove_dir_all(out);
    let mut cmd = Command::new("python3");
    cmd.env("GTMOS_MEMORY_MB", (memory_limit() >> 20).to_string());
    cmd.arg(root().join("benches/run_duckdb.py"))
        .arg(script)
        .arg(out);
    for (k, v) in subs {
        cmd.arg(format!("{k}={v}"));
    }
    if !compare.is_empty() {
        cmd.arg("--compare").args(compare);
    }
    let o = cmd.output().ok()?;
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
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    let mut lines = text.lines().map(str::to_string);
    let seconds = lines.next()?.trim().parse().ok()?;
    Some(DuckRun {
        seconds,
        lines: lines.collect(),
    })
}

/// The checked inputs of a side-by-side run: `tables` as `target/bench-data/<name>/files/
/// <table>.parquet` links to what gtmos' models read — the source contract's output where it
/// quarantined rows, otherwise the snapshot file. The contracts of `tables` (and of the sources
/// their tests reference) run into a scratch warehouse first.
pub fn checked_inputs(
    project: &gtmos::project::Project,
    corpus: &Path,
    name: &str,
    tables: &[&str],
) -> PathBuf {
    use gtmos::contracts::Context;
    use gtmos::engine::Engine;
    use gtmos::project::Renderer;
    use gtmos::snapshot::Snapshot;
    use gtmos::warehouse::Warehouse;

    let dir = base().join(name);
    // A fresh scratch warehouse each run: its quarantine files are append-only.
    let _ = std::fs::remove_dir_all(&dir);
    let snapshot = Snapshot::open(corpus, &project.registry).expect("snapshot");
    let as_of = snapshot.manifest.as_of_micros().expect("as_of");
    let scratch = Warehouse::new(&dir);
    let staging = scratch.staging("bench");
    let _ = std::fs::remove_dir_all(&staging);
    let engine = Engine::new(
        &project.engine,
        threads(),
        &staging.join("spill"),
        4096 << 20,
    )
    .expect("engine");
    let renderer = Renderer::new(project, Some(as_of), Some("bench"));
    let render = |t: &str| renderer.text(t);
    let cx = Context {
        engine: &engine,
        warehouse: &scratch,
        staging: &staging,
        run_id: "bench",
        as_of,
        snapshot_as_of: as_of,
        render: &render,
        window_range_rows: gtmos::contracts::WINDOW_RANGE_ROWS,
    };
    let mut sources: std::collections::BTreeSet<String> =
        tables.iter().map(|t| t.to_string()).collect();
    let mut stack: Vec<String> = sources.iter().cloned().collect();
    while let Some(t) = stack.pop() {
        for d in project
            .source(&t)
            .map(|c| c.depends_on.clone())
            .unwrap_or_default()
        {
            if sources.insert(d.clone()) {
                stack.push(d);
            }
        }
    }
    gtmos::build::run_contracts_of(
        &cx,
        project,
        &snapshot,
        &sources,
        &gtmos::printer::Progress::hidden(),
    )
    .expect("contracts");
    let files = dir.join("files");
    let _ = std::fs::remove_dir_all(&files);
    std::fs::create_dir_all(&files).unwrap();
    for t in tables {
        let checked = staging.join("sources").join(format!("{t}.parquet"));
        let src = if checked.exists() {
            checked
        } else {
            corpus.join(&snapshot.manifest.tables[*t].path)
        };
        std::os::unix::fs::symlink(&src, files.join(format!("{t}.parquet"))).unwrap();
    }
    files
}

/// `gtmos build --select <select>` of `corpus` into a fresh `target/bench-data/<warehouse>`,
/// with the benchmarks' threads and memory budget and the given var overrides.
pub fn build(
    corpus: &Path,
    warehouse: &str,
    select: &str,
    vars: &[(&str, &str)],
) -> (PathBuf, gtmos::build::BuildReport) {
    let wh = base().join(warehouse);
    let _ = std::fs::remove_dir_all(&wh);
    let mut opts = gtmos::build::BuildOptions::new(&root().join("pipelines"), corpus, &wh);
    opts.threads = threads();
    opts.memory_limit = memory_limit();
    opts.select = select.split(',').map(str::to_string).collect();
    opts.vars = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let r =
        gtmos::build::build(&opts).unwrap_or_else(|e| panic!("gtmos build --select {select}: {e}"));
    (wh, r)
}

/// Seconds of the build's steps that `pick` selects.
pub fn seconds(r: &gtmos::build::BuildReport, pick: impl Fn(&str) -> bool) -> f64 {
    r.steps
        .iter()
        .filter(|s| pick(&s.step))
        .map(|s| s.seconds)
        .sum()
}

/// Print gtmos' time beside DuckDB's with their ratio, then DuckDB's comparison lines.
pub fn print_comparison(gtmos_s: f64, duck: &Option<DuckRun>) {
    println!("{:>12} {:>12} {:>8}", "gtmos s", "duckdb s", "ratio");
    match duck {
        Some(d) => println!(
            "{gtmos_s:>12.2} {:>12.2} {:>8.2}",
            d.seconds,
            gtmos_s / d.seconds
        ),
        None => println!("{gtmos_s:>12.2} {:>12} {:>8}", "-", "-"),
    }
    for line in duck.iter().flat_map(|d| d.compared()) {
        println!("  {line}");
    }
}

/// Print the models `pick` selects with their seconds, slowest first.
pub fn print_model_times(label: &str, r: &gtmos::build::BuildReport, pick: impl Fn(&str) -> bool) {
    let mut steps: Vec<_> = r.steps.iter().filter(|s| pick(&s.step)).collect();
    steps.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    let list: Vec<String> = steps
        .iter()
        .map(|s| format!("{} {:.2}s", s.step.trim_start_matches("model."), s.seconds))
        .collect();
    println!("gtmos {label} models: {}", list.join(", "));
}

/// The order the build wrote the published table of `model` in, as DuckDB `ORDER BY` terms:
/// from the columns it published (but `build_id`, one value per table, which gtmos adds where
/// the SQL has none), the key alone when a test proves it one.
pub fn duckdb_write_order(
    model: &gtmos::project::Model,
    published: &gtmos::warehouse::Warehouse,
) -> String {
    let (schema, _) = gtmos::table_io::read_parquet_schema(&published.published_file(&model.name))
        .expect("schema");
    let columns: Vec<(String, arrow::datatypes::DataType)> = schema
        .fields()
        .iter()
        .filter(|f| f.name() != "build_id")
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect();
    let keyed = gtmos::build::key_test(model).is_some();
    gtmos::build::write_order(model, &columns, keyed)
        .iter()
        .map(|c| format!("{c} ASC NULLS FIRST"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A warehouse's published tables: (file name, bytes), by name.
pub fn published(warehouse: &Path) -> Vec<(String, Vec<u8>)> {
    let dir = gtmos::warehouse::Warehouse::new(warehouse).published_dir();
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("published")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .map(|p| {
            let bytes = std::fs::read(&p).expect("table");
            (p.file_name().unwrap().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    out.sort();
    out
}

/// One `gtmos build` of `snapshot` into `warehouse` (the release binary, in its own process,
/// with the bench's memory budget and `extra` flags): seconds, peak RSS (MiB) and its JSON
/// summary. Panics unless it exits 0 or 1.
pub fn gtmos_build(
    gtmos: &str,
    snapshot: &Path,
    warehouse: &Path,
    extra: &[&str],
) -> (f64, f64, serde_json::Value) {
    let memory = (memory_limit() >> 20).to_string();
    let started = std::time::Instant::now();
    let mut child = Command::new(gtmos)
        .args(["build", "--project"])
        .arg(root().join("pipelines"))
        .arg("--snapshot")
        .arg(snapshot)
        .arg("--warehouse")
        .arg(warehouse)
        .args([
            "--no-report",
            "-q",
            "--format",
            "json",
            "--memory-mb",
            &memory,
        ])
        .args(extra)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gtmos");
    // VmHWM only grows: its last reading before the process exits is its peak (to within the
    // polling interval).
    let mut peak = 0.0_f64;
    while child.try_wait().expect("wait").is_none() {
        peak = peak.max(peak_rss_mib_of(child.id()));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("gtmos output");
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        out.status.code().is_some_and(|c| c < 2),
        "gtmos build {extra:?} failed"
    );
    let summary = serde_json::from_slice(&out.stdout).expect("JSON summary");
    (seconds, peak, summary)
}
