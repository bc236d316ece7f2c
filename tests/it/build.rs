//! `gtmos build` end to end on synthetic corpora: quarantine equals the oracle, reruns are
//! byte-identical, blocked tables keep their last good version, a failed run changes nothing,
//! bad inputs exit 2 with a precise message.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use gtmos::synth::params::SynthParams;

use crate::common::*;

/// The shared corpus built twice: into `warehouse` (no report) and `warehouse2` (with a
/// report under `reports/`). Returns (warehouse, reports, summary of the first build).
pub fn built_for_report() -> &'static (PathBuf, PathBuf, String) {
    built()
}

/// The warehouse of one build of the test corpus with the default settings, shared by the
/// tests that compare another way of building with it.
#[cfg(feature = "distributed")]
pub fn built_warehouse() -> &'static Path {
    &built().0
}

fn built() -> &'static (PathBuf, PathBuf, String) {
    static B: OnceLock<(PathBuf, PathBuf, String)> = OnceLock::new();
    B.get_or_init(|| {
        let root = corpus()
            .parent()
            .unwrap()
            .join(format!("built-{}", std::process::id()));
        let wh = root.join("warehouse");
        let reports = root.join("reports");
        std::fs::create_dir_all(&root).unwrap();
        let (code, out, err) = build(corpus(), &wh, &[]);
        assert!(code == 0 || code == 1, "{out}\n{err}");
        let project = project_dir();
        let wh2 = root.join("warehouse2");
        // An eval and a canary look before the build (the run index lists them) and after
        // it (their pages' navigation then reaches the build's pages).
        eval_and_canary(&root, &wh2, &reports, 7);
        let (code, out2, err) = gtmos(
            &[
                "build",
                "--project",
                project.to_str().unwrap(),
                "--snapshot",
                corpus().to_str().unwrap(),
                "--warehouse",
                root.join("warehouse2").to_str().unwrap(),
                "--reports",
                reports.to_str().unwrap(),
            ],
            &root,
        );
        assert!(code == 0 || code == 1, "{out2}\n{err}");
        eval_and_canary(&root, &wh2, &reports, 0);
        (wh, reports, out)
    })
}

/// Into the report build's warehouse and reports: a golden eval of the canary's variant model
/// against the baseline (it passes), then a look at the canary experiment `days_before` the
/// snapshot's as_of.
fn eval_and_canary(root: &Path, wh: &Path, reports: &Path, days_before: i64) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let predictions = root.join("agent_predictions.jsonl");
    let text = std::fs::read_to_string(repo.join("golden/predictions/candidate_good.jsonl"))
        .unwrap()
        .replace("gtm-labeler-v4.2", "gtm-agent-3.3-rc1");
    std::fs::write(&predictions, text).unwrap();
    let (w, r) = (wh.to_str().unwrap(), reports.to_str().unwrap());
    let (code, out, err) = gtmos(
        &[
            "eval",
            "--warehouse",
            w,
            "--reports",
            r,
            "golden",
            "--predictions",
            predictions.to_str().unwrap(),
            "--baseline",
            repo.join("golden/predictions/baseline.jsonl")
                .to_str()
                .unwrap(),
            "--golden",
            repo.join("golden").to_str().unwrap(),
        ],
        root,
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let as_of = gtmos::snapshot::Manifest::read(corpus())
        .unwrap()
        .as_of_micros()
        .unwrap();
    let at = gtmos::calendar::format_ts(as_of - days_before * 86_400_000_000);
    let (code, out, err) = gtmos(
        &[
            "canary",
            "--experiment",
            "exp-agent-canary-1",
            "--snapshot",
            corpus().to_str().unwrap(),
            "--warehouse",
            w,
            "--reports",
            r,
            "--as-of",
            &at,
            "--config",
            repo.join("pipelines/canary.yml").to_str().unwrap(),
        ],
        root,
    );
    // 160 accounts are below the canary's minimum sample: insufficient data, exit 1.
    assert_eq!(code, 1, "{out}\n{err}");
}

fn published_hashes(wh: &Path) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(wh.join("published")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) == Some("parquet") {
            m.insert(
                p.file_name().unwrap().to_string_lossy().into_owned(),
                gtmos::table_io::sha256_file(&p).unwrap(),
            );
        }
    }
    m
}

fn read_log(wh: &Path, log: &str) -> Vec<Table> {
    let dir = wh.join("logs").join(log);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|f| Table::read_file(f)).collect()
}

#[test]
fn quarantine_equals_the_oracle_no_more_no_less() {
    let (wh, _, _) = built();
    let o = Table::read(corpus(), "oracle/faults");
    let mut expected: BTreeSet<(String, String)> = BTreeSet::new();
    let mut warn_expected: BTreeMap<String, i64> = BTreeMap::new();
    for ((table, key), expect) in o
        .s("table_name")
        .into_iter()
        .zip(o.s("key"))
        .zip(o.s("expected"))
    {
        match expect.as_str() {
            "reject" | "quarantine" | "duplicate" => {
                expected.insert((table, key));
            }
            "warn" => {
                let class =
                    o.s("fault_class")[o.s("key").iter().position(|k| *k == key).unwrap()].clone();
                *warn_expected.entry(class).or_default() += 1;
            }
            _ => {}
        }
    }
    let mut quarantined: BTreeSet<(String, String)> = BTreeSet::new();
    let key_of = |table: &str| {
        registry()
            .table(table)
            .unwrap()
            .columns
            .iter()
            .find(|c| c.unique)
            .unwrap()
            .name
            .clone()
    };
    for e in std::fs::read_dir(wh.join("quarantine")).unwrap() {
        let dir = e.unwrap().path();
        let table = dir.file_name().unwrap().to_string_lossy().into_owned();
        for f in std::fs::read_dir(&dir).unwrap() {
            let t = Table::read_file(&f.unwrap().path());
            for k in t.s(&key_of(&table)) {
                quarantined.insert((table.clone(), k));
            }
        }
    }
    assert_eq!(quarantined, expected);
    assert!(
        !wh.join("dead_letter").exists(),
        "nothing in the corpus is untyped"
    );
    // SOFT rules: the recorded counts are the labelled ones.
    let mut warned: BTreeMap<String, i64> = BTreeMap::new();
    for t in read_log(wh, "contract_results") {
        for ((rule, test), n) in t
            .s("rule")
            .into_iter()
            .zip(t.s("test"))
            .zip(t.i64("failures"))
        {
            if test == "expression_is_true"
                && ["late_arrival", "effective_at_drift", "usage_anomaly"].contains(&rule.as_str())
            {
                warned.insert(rule, n.unwrap());
            }
        }
    }
    assert_eq!(warned, warn_expected);
}

#[test]
fn a_rebuild_of_the_same_snapshot_is_byte_identical() {
    let (wh, _, _) = built();
    let first = published_hashes(wh);
    let second = published_hashes(&wh.parent().unwrap().join("warehouse2"));
    assert!(first.contains_key("usage_billable.parquet"));
    // The shared corpus carries an out-of-range spend month: that table was never publishable.
    assert!(!first.contains_key("spend_by_month.parquet"));
    assert_eq!(first, second);
    // Published tables carry the build_id, and nothing run-specific.
    let t = Table::read_file(&wh.join("published/usage_billable.parquet"));
    let ids: BTreeSet<String> = t.s("build_id").into_iter().collect();
    assert_eq!(ids.len(), 1);
    let run = &read_log(wh, "run_log")[0];
    assert_eq!(ids.into_iter().next().unwrap(), run.s("build_id")[0]);
    assert!(!t.cols.contains_key("run_id"));
}

#[test]
fn every_run_is_logged_with_its_lineage() {
    let (wh, _, summary) = built();
    let runs = read_log(wh, "run_log");
    assert_eq!(runs.len(), 1);
    let r = &runs[0];
    let manifest = gtmos::snapshot::Manifest::read(corpus()).unwrap();
    assert_eq!(r.s("snapshot_id")[0], manifest.snapshot_id);
    assert_eq!(r.s("inputs_hash")[0], manifest.inputs_hash());
    assert_eq!(
        r.s("outcome")[0],
        "blocked",
        "the shared corpus blocks spend_by_month"
    );
    let steps: serde_json::Value = serde_json::from_str(&r.s("steps")[0]).unwrap();
    let names: Vec<&str> = steps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"source.usage_metering_log") && names.contains(&"model.usage_billable"),
        "{names:?}"
    );
    assert!(
        summary.contains("usage_metering_log.negative_units: 2"),
        "{summary}"
    );
    let freshness = read_log(wh, "freshness_log");
    let sources: BTreeSet<String> = freshness.iter().flat_map(|t| t.s("source")).collect();
    assert!(sources.contains("usage_metering_log") && sources.contains("accounts"));
}

fn small_corpus(dir: &Path, spend_fault: bool) -> PathBuf {
    let out = dir.join(if spend_fault { "bad-spend" } else { "good" });
    let mut p = SynthParams {
        accounts: 30,
        ..SynthParams::default()
    };
    if spend_fault {
        p.fault_rates.insert("spend_out_of_range".into(), 0.05);
    }
    gtmos::synth::generate(&p, &out, 2, false).unwrap();
    out
}

#[test]
fn a_blocked_table_keeps_its_last_good_version_and_the_rest_publishes() {
    let dir = tempdir();
    let wh = dir.path().join("wh");
    let good = small_corpus(dir.path(), false);
    let (code, out, err) = build(&good, &wh, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let before = published_hashes(&wh);
    let bad = small_corpus(dir.path(), true);
    let (code, out, err) = build(&bad, &wh, &[]);
    assert_eq!(code, 1, "publish blocked exits 1\n{out}{err}");
    assert!(
        out.contains("spend_by_month stays at its last good version"),
        "{out}"
    );
    // On a warehouse that never published it, there is no last good version to speak of.
    let (code, fresh, _) = build(&bad, &dir.path().join("wh-new"), &[]);
    assert_eq!(code, 1);
    assert!(
        fresh.contains("spend_by_month is not published (no good version yet)"),
        "{fresh}"
    );
    let after = published_hashes(&wh);
    assert_eq!(
        after["spend_by_month.parquet"], before["spend_by_month.parquet"],
        "the last good version stays in place"
    );
    assert_ne!(
        after["usage_billable.parquet"], before["usage_billable.parquet"],
        "other tables publish"
    );
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(wh.join("published/_state.json")).unwrap())
            .unwrap();
    let s = &state["tables"]["spend_by_month"];
    assert_eq!(s["stale"], true);
    assert!(
        s["stale_reason"]
            .as_str()
            .unwrap()
            .contains("spend_out_of_range"),
        "{s}"
    );
    assert_eq!(state["tables"]["usage_billable"]["stale"], false);
    // The failing contract is on record.
    let blocked: Vec<String> = read_log(&wh, "contract_results")
        .iter()
        .flat_map(|t| {
            t.s("rule")
                .into_iter()
                .zip(t.s("action"))
                .collect::<Vec<_>>()
        })
        .filter(|(_, a)| a == "blocked")
        .map(|(r, _)| r)
        .collect();
    assert_eq!(blocked, vec!["spend_out_of_range"]);
    // A good build again clears the stale mark.
    let (code, _, _) = build(&good, &wh, &[]);
    assert_eq!(code, 0);
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(wh.join("published/_state.json")).unwrap())
            .unwrap();
    assert_eq!(state["tables"]["spend_by_month"]["stale"], false);
}

/// A copy of the repository's project to modify.
fn project_copy(dir: &Path) -> PathBuf {
    let dst = dir.join("pipelines");
    let src = project_dir();
    for f in walk(&src) {
        let to = dst.join(f.strip_prefix(&src).unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&f, &to).unwrap();
    }
    dst
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p))
        } else {
            out.push(p)
        }
    }
    out
}

fn build_with(project: &Path, snap: &Path, wh: &Path) -> (i32, String, String) {
    gtmos(
        &[
            "build",
            "--project",
            project.to_str().unwrap(),
            "--snapshot",
            snap.to_str().unwrap(),
            "--warehouse",
            wh.to_str().unwrap(),
            "--no-report",
        ],
        wh.parent().unwrap(),
    )
}

#[test]
fn a_build_that_fails_midway_leaves_the_published_state_intact() {
    let dir = tempdir();
    let wh = dir.path().join("wh");
    let snap = small_corpus(dir.path(), false);
    let project = project_copy(dir.path());
    let (code, _, err) = build_with(&project, &snap, &wh);
    assert_eq!(code, 0, "{err}");
    let before = published_hashes(&wh);
    let state_before = std::fs::read_to_string(wh.join("published/_state.json")).unwrap();
    // A model that plans but fails while running, after the others were staged.
    std::fs::write(
        project.join("models/zz_exploding.sql"),
        "select cast(usage_id as int) as boom from {{ ref('usage_billable') }}\n",
    )
    .unwrap();
    let (code, _, err) = build_with(&project, &snap, &wh);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("zz_exploding"),
        "the error names the model: {err}"
    );
    assert_eq!(published_hashes(&wh), before);
    assert_eq!(
        std::fs::read_to_string(wh.join("published/_state.json")).unwrap(),
        state_before
    );
    assert!(
        std::fs::read_dir(wh.join(".staging"))
            .unwrap()
            .next()
            .is_none(),
        "staging is cleaned up"
    );
    let runs = read_log(&wh, "run_log");
    let outcomes: Vec<String> = runs.iter().flat_map(|t| t.s("outcome")).collect();
    assert_eq!(outcomes, vec!["success", "failed"]);
    // Still readable.
    assert!(Table::read_file(&wh.join("published/usage_billable.parquet")).rows > 0);
}

#[test]
fn pipeline_errors_are_caught_before_anything_runs() {
    let dir = tempdir();
    let snap = small_corpus(dir.path(), false);
    let cases: Vec<(&str, &str, &str)> = vec![
        (
            "models/loop_a.sql",
            "select * from {{ ref('loop_b') }}",
            "cycle",
        ),
        (
            "models/unknown.sql",
            "select * from {{ ref('nowhere') }}",
            "ref('nowhere') names no model",
        ),
        (
            "models/bad_source.sql",
            "select * from {{ source('snapshot', 'ledger') }}",
            "names no declared source table",
        ),
        (
            "models/bad_template.sql",
            "select {{ frobnicate() }}",
            "unknown function `frobnicate`",
        ),
        (
            "sources/broken.yml",
            "sources: [ {name: snapshot, tables: [ {name: x",
            "invalid sources file",
        ),
        (
            "models/finance/_typo.yml",
            "models:\n  - name: spend_by_month\n    descripton: misspelt\n",
            "unknown field `descripton`",
        ),
    ];
    for (file, text, needle) in cases {
        let sub = tempfile::tempdir_in(dir.path()).unwrap();
        let project = project_copy(sub.path());
        std::fs::write(project.join(file), text).unwrap();
        if file == "models/loop_a.sql" {
            std::fs::write(
                project.join("models/loop_b.sql"),
                "select * from {{ ref('loop_a') }}",
            )
            .unwrap();
        }
        let wh = sub.path().join("wh");
        let (code, _, err) = build_with(&project, &snap, &wh);
        assert_eq!(code, 2, "{file}: {err}");
        assert!(err.contains(needle), "{file}: `{needle}` not in {err}");
        assert!(
            err.contains(file.rsplit('/').next().unwrap()) || file == "models/loop_a.sql",
            "{file} not named: {err}"
        );
        assert!(!wh.join("published").exists(), "nothing ran");
    }
}

#[test]
fn bad_snapshots_exit_2_naming_file_table_and_column() {
    let dir = tempdir();
    let snap = small_corpus(dir.path(), false);
    let wh = dir.path().join("wh");
    let p = snap.join("invoices.parquet");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
    let (code, _, err) = build(&snap, &wh, &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("invoices.parquet") && err.contains("not a readable Parquet file"),
        "{err}"
    );
    std::fs::write(&p, &bytes).unwrap();
    // A missing column.
    let (schema, batches) = gtmos::table_io::read_parquet(&snap.join("reps.parquet")).unwrap();
    let idx: Vec<usize> = (0..schema.fields().len())
        .filter(|i| schema.field(*i).name() != "geo")
        .collect();
    let projected: Vec<_> = batches.iter().map(|b| b.project(&idx).unwrap()).collect();
    gtmos::table_io::write_table(
        &snap.join("reps.parquet"),
        std::sync::Arc::new(schema.project(&idx).unwrap()),
        &[],
        &projected,
    )
    .unwrap();
    let (code, _, err) = build(&snap, &wh, &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("table `reps`, column `geo`: column is missing"),
        "{err}"
    );
}

#[test]
fn compile_prints_the_dag_and_the_sql_without_running() {
    let dir = tempdir();
    let project = project_dir();
    let (code, out, err) = gtmos(
        &[
            "compile",
            "--project",
            project.to_str().unwrap(),
            "--snapshot",
            corpus().to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    let dag = out.split("\n-- ").next().unwrap();
    let pos = |s: &str| {
        dag.find(s)
            .unwrap_or_else(|| panic!("{s} not in DAG:\n{dag}"))
    };
    assert!(pos("usage_current") < pos("usage_billable"), "inputs first");
    assert!(
        pos("source accounts") < pos("source usage_metering_log"),
        "relationships read checked sources"
    );
    assert!(
        out.contains(
            "ROW_NUMBER() OVER (PARTITION BY s.source_system, s.ingest_event_id ORDER BY s.received_at, s.usage_id, s._row)"
        ),
        "the dedupe rule compiles to SQL"
    );
    assert!(
        out.contains("trailing_median(units_consumed"),
        "the anomaly rule uses the Rust kernel"
    );
    assert!(!dir.path().join("data").exists(), "compile writes nothing");
    let (code, out, _) = gtmos(
        &[
            "compile",
            "--project",
            project.to_str().unwrap(),
            "--format",
            "json",
            "--snapshot",
            "none",
        ],
        dir.path(),
    );
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let model = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "usage_billable")
        .unwrap();
    assert_eq!(
        model["depends_on"],
        serde_json::json!(["model.usage_current"])
    );
}

/// `gtmos freshness` of the project's SLOs over a warehouse.
fn freshness_cli(wh: &Path, cwd: &Path) -> (i32, String, String) {
    let project = project_dir();
    gtmos(
        &[
            "freshness",
            "--project",
            project.to_str().unwrap(),
            "--warehouse",
            wh.to_str().unwrap(),
        ],
        cwd,
    )
}

#[test]
fn freshness_slos_are_judged_from_the_log() {
    let dir = tempdir();
    let wh = dir.path().join("wh");
    let fresh = |wh: &Path| freshness_cli(wh, dir.path());
    let (code, _, err) = fresh(&wh);
    assert_eq!(code, 2, "no observations yet");
    assert!(err.contains("run `gtmos build` first"), "{err}");
    let snap = small_corpus(dir.path(), false);
    // Evaluated ten days after the snapshot: every source is stale.
    let (code, out, err) = build(&snap, &wh, &["--as-of", "2026-01-11T00:00:00Z"]);
    assert_eq!(code, 0, "stale inputs warn; they do not block\n{out}{err}");
    assert!(out.contains("freshness  8 sources: 0 pass"), "{out}");
    let (code, out, _) = fresh(&wh);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("metric_inputs_fresh")
            && out.contains("BREACHED")
            && out.contains("attainment 0.0 %"),
        "{out}"
    );
    let project = project_dir();
    let (code, out, _) = gtmos(
        &[
            "freshness",
            "--project",
            project.to_str().unwrap(),
            "--warehouse",
            wh.to_str().unwrap(),
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(
        v["breached"]
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b == "metric_inputs_fresh")
    );
}

/// A model published piece by piece (`config(sort_in_ranges=N)`) holds exactly the rows, in
/// exactly the order, of one global sort.
#[test]
fn sorting_in_ranges_gives_the_global_order() {
    let (wh, _, _) = built();
    let dir = tempdir();
    let project = dir.path().join("pipelines");
    copy_dir(&project_dir(), &project);
    let model = project.join("models/staging/usage_billable.sql");
    let sql = std::fs::read_to_string(&model).unwrap();
    assert!(sql.contains("sort_in_ranges=4000000"));
    std::fs::write(
        &model,
        sql.replace("sort_in_ranges=4000000", "sort_in_ranges=7000"),
    )
    .unwrap();
    let wh2 = dir.path().join("wh");
    let (code, out, err) = build_project(&project, corpus(), &wh2, &["--select", "usage_billable"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let rows = |w: &Path| {
        let mut v =
            gtmos::table_io::json_rows(&w.join("published/usage_billable.parquet")).unwrap();
        for r in &mut v {
            r.remove("build_id");
        }
        v
    };
    let (global, ranged) = (rows(wh), rows(&wh2));
    assert!(
        global.len() > 10 * 7000,
        "{} rows: more than ten ranges",
        global.len()
    );
    assert!(global == ranged, "same rows in the same order");
}

/// A per-account model built range by range of its inputs (`config(build_in_ranges=N)`) holds
/// exactly the rows, in exactly the order, of its query over the whole inputs; a range size
/// that is not a positive row count is refused.
#[test]
fn building_in_ranges_gives_the_whole_query() {
    let (wh, _, _) = built();
    let dir = tempdir();
    let project = dir.path().join("pipelines");
    copy_dir(&project_dir(), &project);
    let model = project.join("models/scores/customer_health_log.sql");
    let sql = std::fs::read_to_string(&model).unwrap();
    assert!(sql.contains("build_in_ranges=20000000"));
    // One range at this size, as in `built()`; 200 rows of its inputs a range here.
    std::fs::write(
        &model,
        sql.replace("build_in_ranges=20000000", "build_in_ranges=200"),
    )
    .unwrap();
    let wh2 = dir.path().join("wh");
    let select = ["--select", "customer_health_log", "--memory-mb", "4096"];
    let (code, out, err) = build_project(&project, corpus(), &wh2, &select);
    assert_eq!(code, 0, "{out}\n{err}");
    let rows = |w: &Path| {
        let mut v =
            gtmos::table_io::json_rows(&w.join("published/customer_health_log.parquet")).unwrap();
        for r in &mut v {
            r.remove("build_id");
        }
        v
    };
    let inputs: u64 = ["score_accounts", "usage_weekly"]
        .iter()
        .map(|t| {
            gtmos::table_io::json_rows(&wh.join(format!("published/{t}.parquet")))
                .unwrap()
                .len() as u64
        })
        .sum();
    assert!(
        inputs > 10 * 200,
        "{inputs} input rows: more than ten ranges"
    );
    assert!(rows(wh) == rows(&wh2), "same rows in the same order");

    std::fs::write(
        &model,
        sql.replace("build_in_ranges=20000000", "build_in_ranges=0"),
    )
    .unwrap();
    let (code, _, err) = build_project(&project, corpus(), &dir.path().join("wh3"), &select);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("build_in_ranges must be a positive row count"),
        "{err}"
    );
}

/// Every published table of a warehouse as rows (JSON text), without what names the build or
/// the snapshot (they differ between two snapshots by construction): the build id wherever it
/// appears, the snapshot's id and hash, and the brain documents' token counts and fit (each
/// document embeds the build id, whose digits count as tokens, so a budget may keep a row
/// more or less; the view rows the documents are made of are compared).
fn published_rows(wh: &Path) -> BTreeMap<String, Vec<String>> {
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(wh.join("published/_state.json")).unwrap())
            .unwrap();
    let build_id = state["tables"]["usage_billable"]["build_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(wh.join("published")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        let Some(table) = name.strip_suffix(".parquet") else {
            continue;
        };
        let rows = gtmos::table_io::json_rows(&e.path())
            .unwrap()
            .into_iter()
            .map(|mut r| {
                for k in [
                    "snapshot_id",
                    "inputs_hash",
                    "tokens",
                    "tokens_p50",
                    "tokens_p95",
                    "tokens_max",
                    "document",
                    "dropped_rows",
                ] {
                    r.remove(k);
                }
                if table == "view_catalog" {
                    r.remove("rows"); // the rows a document kept
                }
                serde_json::to_string(&r)
                    .unwrap()
                    .replace(&build_id, "BUILD")
            })
            .collect();
        out.insert(table.to_string(), rows);
    }
    out
}

#[test]
fn a_build_at_a_past_as_of_equals_one_of_a_snapshot_exported_then() {
    let dir = tempdir();
    let full = small_corpus(dir.path(), false);
    let at = "2025-11-15T00:00:00Z";
    let t = gtmos::calendar::parse_ts(at).unwrap();
    // The snapshot an export at `at` would have held: the append-only logs without the rows
    // loaded later; everything else as it is (current-state tables have no history).
    let exported = dir.path().join("exported");
    std::fs::create_dir_all(&exported).unwrap();
    let mut cut = 0;
    for table in registry().tables() {
        let src = full.join(format!("{}.parquet", table.name));
        if !src.exists() {
            continue;
        }
        let dst = exported.join(format!("{}.parquet", table.name));
        match (&table.loaded_at_field, table.append_only) {
            (Some(field), true) => {
                let (schema, batches) = gtmos::table_io::read_parquet(&src).unwrap();
                let mut kept = Vec::new();
                for b in batches {
                    let col = arrow::compute::cast(
                        b.column_by_name(field).unwrap(),
                        &arrow::datatypes::DataType::Int64,
                    )
                    .unwrap();
                    let col = col
                        .as_any()
                        .downcast_ref::<arrow::array::Int64Array>()
                        .unwrap();
                    let keep: arrow::array::BooleanArray =
                        col.iter().map(|v| Some(v.is_none_or(|v| v <= t))).collect();
                    cut += keep.iter().filter(|k| *k == Some(false)).count();
                    kept.push(arrow::compute::filter_record_batch(&b, &keep).unwrap());
                }
                gtmos::table_io::write_table(&dst, schema, &[], &kept).unwrap();
            }
            _ => {
                std::fs::copy(&src, &dst).unwrap();
            }
        }
    }
    assert!(
        cut > 1_000,
        "the month after `at` is cut from the logs ({cut} rows)"
    );
    let (code, _, err) = gtmos(
        &[
            "snapshot",
            "init",
            exported.to_str().unwrap(),
            "--as-of",
            at,
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");

    let (code, out, err) = build(
        &full,
        &dir.path().join("wh-asof"),
        &["--as-of", at, "--format", "json"],
    );
    assert_eq!(code, 0, "{out}{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    let later = summary["not_yet_loaded"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["table"] == "usage_metering_log")
        .map(|x| x["rows"].as_u64().unwrap())
        .unwrap_or(0);
    assert!(
        later > 1_000,
        "usage received after as_of is left out: {out}"
    );
    // Rows received later are not faults: only the injected future-dated rows are quarantined
    // as such (a handful), not the month of usage after as_of.
    let future: u64 = summary["quarantined"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|q| q["rule"] == "future_dated_period")
        .map(|q| q["rows"].as_u64().unwrap())
        .sum();
    assert!(
        future < 20,
        "{future} rows quarantined as future-dated:\n{out}"
    );
    let (code, out2, err) = build(&exported, &dir.path().join("wh-exported"), &[]);
    assert_eq!(code, 0, "{out2}{err}");
    let (a, b) = (
        published_rows(&dir.path().join("wh-asof")),
        published_rows(&dir.path().join("wh-exported")),
    );
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "the same tables publish"
    );
    for (table, rows) in &a {
        assert_eq!(rows.len(), b[table].len(), "{table}: row count");
        for (i, (x, y)) in rows.iter().zip(&b[table]).enumerate() {
            assert_eq!(x, y, "{table} row {i} differs");
        }
    }
    // Freshness at a past as_of: never negative.
    for f in read_log(&dir.path().join("wh-asof"), "freshness_log") {
        for age in f.f64("age_hours").into_iter().flatten() {
            assert!(age >= 0.0, "negative freshness age {age}");
        }
    }
}

#[test]
fn partial_runs_leave_the_nightly_report_and_freshness_alone() {
    let dir = tempdir();
    let snap = dir.path().join("snap");
    let p = SynthParams {
        accounts: 200,
        ..SynthParams::default()
    };
    gtmos::synth::generate(&p, &snap, 2, false).unwrap();
    let (wh, reports) = (dir.path().join("wh"), dir.path().join("reports"));
    let project = project_dir();
    let run = |args: &[&str]| {
        let mut a: Vec<&str> = args.to_vec();
        a.extend([
            "--project",
            project.to_str().unwrap(),
            "--snapshot",
            snap.to_str().unwrap(),
            "--warehouse",
            wh.to_str().unwrap(),
            "--reports",
            reports.to_str().unwrap(),
        ]);
        gtmos(&a, dir.path())
    };
    let freshness = || freshness_cli(&wh, dir.path());
    let (code, out, err) = run(&["build"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, before, _) = freshness();
    assert_eq!(code, 0, "{before}");
    let nightly = std::fs::read_to_string(reports.join("latest/index.html")).unwrap();
    assert!(nightly.contains("<h1>gtmos build <span"));
    // The corpus's labelled reference discrepancies hold the close: reconcile exits 1.
    for (args, exit, dir_name, headline) in [
        (
            vec!["recognize"],
            0,
            "recognize",
            "<h1>gtmos recognize <span",
        ),
        (
            vec!["reconcile"],
            1,
            "reconcile",
            "<h1>gtmos reconcile <span",
        ),
        (
            vec!["build", "--select", "tag:metrics"],
            0,
            "select",
            "<h1>gtmos build --select tag:metrics <span",
        ),
    ] {
        let (code, out, err) = run(&args);
        assert_eq!(code, exit, "{args:?}\n{out}{err}");
        let first = out.lines().next().unwrap_or("");
        assert!(
            first.starts_with(&args.join(" ")),
            "the summary names the command: {first}"
        );
        // Its report is its own; the nightly one is untouched.
        let own = std::fs::read_to_string(reports.join(dir_name).join("latest/index.html"))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert!(own.contains(headline), "{args:?}");
        assert_eq!(
            std::fs::read_to_string(reports.join("latest/index.html")).unwrap(),
            nightly,
            "{args:?} replaced the nightly report"
        );
        // It measured freshness only of what it read, and breached nothing.
        let (code, after, err) = freshness();
        assert_eq!(
            code, 0,
            "{args:?}: freshness after a partial run\n{after}{err}"
        );
        assert!(
            !after.contains("no data") && !after.contains("BREACHED"),
            "{after}"
        );
    }
    let commands: BTreeSet<String> = read_log(&wh, "run_log")
        .iter()
        .flat_map(|t| t.s("command"))
        .collect();
    assert_eq!(
        commands,
        ["build", "recognize", "reconcile"].map(String::from).into()
    );
}

#[test]
fn a_snapshot_whose_files_differ_from_its_manifest_is_refused() {
    let dir = tempdir();
    let snap = dir.path().join("snap");
    copy_dir(&small_corpus(dir.path(), false), &snap);
    let manifest = gtmos::snapshot::Manifest::read(&snap).unwrap();
    let wh = dir.path().join("wh");
    // `reps` without its first row: the inputs hash would still say the old bytes.
    let reps = snap.join("reps.parquet");
    let good = std::fs::read(&reps).unwrap();
    let (schema, batches) = gtmos::table_io::read_parquet(&reps).unwrap();
    let fewer: Vec<_> = batches
        .iter()
        .map(|b| b.slice(1, b.num_rows() - 1))
        .collect();
    gtmos::table_io::write_table(&reps, schema, &[], &fewer).unwrap();
    let (code, out, err) = build(&snap, &wh, &[]);
    assert_eq!(code, 2, "{out}{err}");
    let on_disk = gtmos::table_io::sha256_file(&reps).unwrap();
    assert!(
        err.contains(&format!(
            "table `reps` (reps.parquet): sha256 {on_disk} on disk, {} in the manifest",
            manifest.tables["reps"].sha256
        )),
        "{err}"
    );
    assert!(!wh.join("published").exists(), "nothing was built from it");
    std::fs::write(&reps, &good).unwrap();
    // The right bytes, a wrong row count.
    let text = std::fs::read_to_string(snap.join("manifest.json")).unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rows = m["tables"]["reps"]["rows"].as_u64().unwrap();
    m["tables"]["reps"]["rows"] = (rows + 1).into();
    std::fs::write(snap.join("manifest.json"), m.to_string()).unwrap();
    let (code, _, err) = build(&snap, &wh, &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!(
            "table `reps` (reps.parquet): {rows} rows on disk, {} in the manifest",
            rows + 1
        )),
        "{err}"
    );
    std::fs::write(snap.join("manifest.json"), text).unwrap();
    let (code, out, err) = build(&snap, &wh, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let steps = read_log(&wh, "run_log")[0].s("steps").join("");
    assert!(
        steps.contains("inputs.verify"),
        "the verification is timed: {steps}"
    );
}

/// A copy of the small corpus with one table's rows changed by `edit`, described anew.
fn edited_corpus(
    dir: &Path,
    table: &str,
    edit: &dyn Fn(&arrow::array::RecordBatch) -> arrow::array::RecordBatch,
) -> PathBuf {
    let snap = dir.join(format!("edited-{table}"));
    copy_dir(&small_corpus(dir, false), &snap);
    let path = snap.join(format!("{table}.parquet"));
    let (schema, batches) = gtmos::table_io::read_parquet(&path).unwrap();
    let edited: Vec<_> = batches.iter().map(edit).collect();
    gtmos::table_io::write_table(&path, schema, &[], &edited).unwrap();
    std::fs::remove_file(snap.join("manifest.json")).unwrap();
    let (code, _, err) = gtmos(
        &[
            "snapshot",
            "init",
            snap.to_str().unwrap(),
            "--as-of",
            "2026-01-01T00:00:00Z",
        ],
        dir,
    );
    assert_eq!(code, 0, "{err}");
    snap
}

/// `b` with column `name` replaced by `f(old column)`.
fn with_column(
    b: &arrow::array::RecordBatch,
    name: &str,
    f: &dyn Fn(&arrow::array::ArrayRef) -> arrow::array::ArrayRef,
) -> arrow::array::RecordBatch {
    let i = b.schema().index_of(name).unwrap();
    let mut cols = b.columns().to_vec();
    cols[i] = f(&cols[i]);
    arrow::array::RecordBatch::try_new(b.schema(), cols).unwrap()
}

#[test]
fn nan_and_infinite_usage_is_dead_lettered_not_billed() {
    use arrow::array::{Array, AsArray, Float64Array};
    let dir = tempdir();
    let snap = edited_corpus(dir.path(), "usage_metering_log", &|b| {
        with_column(b, "units_consumed", &|c| {
            let v = arrow::compute::cast(c, &arrow::datatypes::DataType::Float64).unwrap();
            let v = v.as_primitive::<arrow::datatypes::Float64Type>();
            let out: Float64Array = (0..v.len())
                .map(|i| match i {
                    0 | 1 => Some(f64::NAN),
                    2 => Some(f64::INFINITY),
                    3 => Some(f64::NEG_INFINITY),
                    _ => (!v.is_null(i)).then(|| v.value(i)),
                })
                .collect();
            arrow::compute::cast(&out, c.data_type()).unwrap()
        })
    });
    let wh = dir.path().join("wh");
    let (code, out, err) = build(&snap, &wh, &["--format", "json"]);
    assert_eq!(code, 0, "{out}{err}");
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["dead_lettered_rows"], 4, "{out}");
    let file = std::fs::read_dir(wh.join("dead_letter/usage_metering_log"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().ends_with(".parquet"))
        .unwrap()
        .path();
    let dl = Table::read_file(&file);
    assert_eq!(dl.s("rule"), vec!["non_finite_value"; 4]);
    assert_eq!(dl.s("error"), vec!["is not a finite number"; 4]);
    // Nothing non-finite reaches the books.
    let billable = Table::read(&wh.join("published"), "usage_billable");
    for c in ["units_consumed"] {
        for v in billable.f64(c).into_iter().flatten() {
            assert!(v.is_finite(), "{c}: {v}");
        }
    }
}

#[test]
fn a_load_time_in_the_future_is_a_freshness_error_never_a_negative_age() {
    let dir = tempdir();
    let snap = edited_corpus(dir.path(), "payment_events", &|b| {
        with_column(b, "event_ts", &|c| {
            let v = c
                .as_any()
                .downcast_ref::<arrow::array::TimestampMicrosecondArray>()
                .unwrap();
            let far = gtmos::calendar::parse_ts("9999-12-31T00:00:00Z").unwrap();
            let out: arrow::array::TimestampMicrosecondArray = v
                .iter()
                .enumerate()
                .map(|(i, x)| if i == 0 { Some(far) } else { x })
                .collect();
            std::sync::Arc::new(out.with_timezone_opt(v.timezone()))
        })
    });
    let wh = dir.path().join("wh");
    let (code, out, err) = build(&snap, &wh, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let log = &read_log(&wh, "freshness_log")[0];
    let sources = log.s("source");
    let i = sources.iter().position(|s| s == "payment_events").unwrap();
    assert_eq!(
        log.s("status")[i],
        "error",
        "a 9999-12-31 load time is not fresh"
    );
    assert_eq!(log.i64("future_rows")[i], Some(1));
    for age in log.f64("age_hours").into_iter().flatten() {
        assert!(age >= 0.0, "negative age {age}");
    }
}

/// What the command does after a build (rendering the report) runs while the warehouse's run
/// lock is still held, so no other run can switch `published/` under it; after the build, the
/// lock is free again.
#[test]
fn the_work_after_a_build_runs_under_the_run_lock() {
    let tmp = tempdir();
    let wh = tmp.path().join("wh");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut opts = gtmos::build::BuildOptions::new(&root.join("pipelines"), corpus(), &wh);
    opts.select = vec!["spend_by_month".into()];
    let mut saw = None;
    let r = gtmos::build::build_then(&opts, |r, project| {
        assert_eq!(project.name, r.project_name);
        saw = Some(gtmos::warehouse::Warehouse::new(&wh).lock().map(|_| ()));
        Ok(())
    })
    .unwrap();
    assert!(r.models.iter().any(|m| m.name == "spend_by_month"));
    let during = saw.expect("the work after the build ran");
    assert!(
        during
            .unwrap_err()
            .to_string()
            .contains("another gtmos run holds the warehouse"),
    );
    assert!(gtmos::warehouse::Warehouse::new(&wh).lock().is_ok());
}
