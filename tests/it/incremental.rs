//! Incremental builds (`gtmos build` reusing what its inputs have not changed): over ten nights
//! of one company, what the incremental warehouse publishes, quarantines and logs is after
//! every night what a warehouse rebuilt with `--full-refresh` every night holds.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use gtmos::snapshot::Manifest;
use gtmos::synth::nights::write_nights;
use gtmos::warehouse::Warehouse;

use crate::common::*;

/// A build's JSON summary, asserting it did not fail.
fn build_json(
    project: &Path,
    snapshot: &Path,
    warehouse: &Path,
    extra: &[&str],
) -> serde_json::Value {
    let mut args = extra.to_vec();
    args.extend(["--format", "json"]);
    let (code, out, err) = build_project(project, snapshot, warehouse, &args);
    assert!(code < 2, "{extra:?}: {err}");
    serde_json::from_str(&out).unwrap()
}

/// The models a build reused, and each other model's reason.
fn decisions(summary: &serde_json::Value) -> Vec<(String, String)> {
    summary["incremental"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["model"].as_str().unwrap().to_string(),
                d["decision"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn reused(summary: &serde_json::Value) -> usize {
    decisions(summary)
        .iter()
        .filter(|(_, d)| d == "reused")
        .count()
}

/// The rows a run wrote under `<warehouse>/<dir>/…/run=<run_id>…`, as sorted text without the
/// columns that name the run or its time.
fn run_rows(warehouse: &Path, dir: &str, run_id: &str) -> Vec<String> {
    let mut files = Vec::new();
    let root = warehouse.join(dir);
    let mut stack = vec![root.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("run={run_id}"))
            {
                files.push(p);
            }
        }
    }
    let mut rows: Vec<String> = files
        .iter()
        .flat_map(|f| {
            let table = f
                .parent()
                .unwrap()
                .strip_prefix(&root)
                .unwrap()
                .display()
                .to_string();
            gtmos::table_io::json_rows(f)
                .unwrap()
                .into_iter()
                .map(move |mut r| {
                    for c in ["run_id", "timestamp"] {
                        r.remove(c);
                    }
                    format!("{table}: {}", serde_json::Value::Object(r))
                })
        })
        .collect();
    rows.sort();
    rows
}

/// A copy of a night with the event partitions of the nights so far added (`extras`: path in
/// the usage table's directory, file) and, with `rewrite`, its first usage partition rewritten
/// (its last row gone); described again.
fn derived_night(night: &Path, to: &Path, extras: &[(String, PathBuf)], rewrite: bool) -> PathBuf {
    copy_dir(night, to);
    let m = Manifest::read(to).unwrap();
    let e = &m.tables["usage_metering_log"];
    for (rel, file) in extras {
        let at = to.join(&e.path).join(rel);
        std::fs::copy(file, &at).unwrap();
    }
    if rewrite {
        let part = to.join(&e.path).join(&e.files[0].path);
        let (schema, batches) = gtmos::table_io::read_parquet(&part).unwrap();
        let all = arrow::compute::concat_batches(&schema, &batches).unwrap();
        std::fs::remove_file(&part).unwrap();
        let kept = all.slice(0, all.num_rows() - 1);
        gtmos::table_io::write_table(&part, schema, &[], &[kept]).unwrap();
    }
    reinit(to, &m.as_of);
    to.to_path_buf()
}

/// What production adds to a night beyond the day's own rows, as one more usage partition
/// (`loaded_by=<night>/part-1.parquet`, received an hour before its as_of), picked by `k`: a
/// replay of an earlier event (the same row again), a correction of a November period (a
/// month the sequence closes) and a late arrival of another November period (from a backfill
/// system, weeks after the period ended). Written under `to`, returns its path in the table.
fn events_partition(night: &Path, k: usize, to: &Path) -> String {
    let m = Manifest::read(night).unwrap();
    let e = &m.tables["usage_metering_log"];
    let first = night.join(&e.path).join(&e.files[0].path);
    let engine = gtmos::engine::Engine::new(
        &gtmos::engine::EngineConfig::default(),
        2,
        &to.join("spill"),
        256 << 20,
    )
    .unwrap();
    engine
        .register_parquet("scratch", "p", first.to_str().unwrap(), None)
        .unwrap();
    let at = format!(
        "arrow_cast(TIMESTAMP '{}' - INTERVAL '1 hour', 'Timestamp(Microsecond, Some(\"UTC\"))')",
        m.as_of
    );
    let november = "period_start >= TIMESTAMP '2025-11-01T00:00:00Z' AND period_start < TIMESTAMP '2025-12-01T00:00:00Z' AND record_version = 1 AND sku_type = 'consumption'";
    let sql = format!(
        "(SELECT * REPLACE ({at} AS received_at) FROM scratch.p
            WHERE record_version = 1 AND ingest_event_id IS NOT NULL ORDER BY usage_id LIMIT 1 OFFSET {k})
         UNION ALL
         (SELECT * REPLACE (usage_id || '-c' AS usage_id, ingest_event_id || '-c' AS ingest_event_id,
                            arrow_cast(2, 'Int32') AS record_version, usage_id AS prior_version_id,
                            units_consumed + 100000 AS units_consumed, 'meter_recount' AS correction_reason,
                            {at} AS received_at)
            FROM scratch.p p WHERE {november}
              AND NOT EXISTS (SELECT 1 FROM scratch.p q WHERE q.prior_version_id = p.usage_id)
            ORDER BY usage_id LIMIT 1 OFFSET {k})
         UNION ALL
         (SELECT * REPLACE (usage_id || '-b' AS usage_id, ingest_event_id || '-b' AS ingest_event_id,
                            'backfill' AS source_system, {at} AS received_at)
            FROM scratch.p WHERE {november} ORDER BY usage_id DESC LIMIT 1 OFFSET {k})"
    );
    let batches = engine.query(&sql, "night events").unwrap();
    let schema = registry()
        .table("usage_metering_log")
        .unwrap()
        .arrow_schema();
    let batches: Vec<_> = batches
        .iter()
        .map(|b| {
            let columns = schema
                .fields()
                .iter()
                .map(|f| {
                    let c = b.column(b.schema().index_of(f.name()).unwrap());
                    arrow::compute::cast(c, f.data_type()).unwrap()
                })
                .collect();
            arrow::array::RecordBatch::try_new(schema.clone(), columns).unwrap()
        })
        .collect();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 3);
    let rel = format!("loaded_by={}/part-1.parquet", &m.as_of[..10]);
    let path = to.join(&rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    gtmos::table_io::write_table(&path, schema, &[], &batches).unwrap();
    rel
}

/// Describe a snapshot directory again after its files changed.
fn reinit(dir: &Path, as_of: &str) {
    std::fs::remove_file(dir.join("manifest.json")).unwrap();
    let (code, _, err) = gtmos(
        &["snapshot", "init", "--as-of", as_of, dir.to_str().unwrap()],
        dir.parent().unwrap(),
    );
    assert_eq!(code, 0, "{err}");
}

#[test]
fn ten_nights_of_incremental_builds_publish_what_full_refreshes_do() {
    let dir = tempdir();
    let company = dir.path().join("company");
    let nights = write_nights(corpus(), &company, 10).unwrap();
    // A copy of the project, changed mid-sequence.
    let project = dir.path().join("pipelines");
    copy_dir(&project_dir(), &project);
    let (inc, full) = (dir.path().join("wh-inc"), dir.path().join("wh-full"));
    let mut seen = BTreeSet::new();
    let mut extras: Vec<(String, PathBuf)> = Vec::new();
    let mut duplicates = Vec::new();
    for (k, night) in nights.iter().enumerate() {
        let night_dir = company.join(&night.dir);
        let mut snapshot = night_dir.clone();
        let mut extra: Vec<&str> = Vec::new();
        // From the fifth night on, replays, corrections and late arrivals of November.
        if k >= 4 {
            let store = dir.path().join("events");
            let rel = events_partition(&night_dir, k, &store);
            extras.push((rel.clone(), store.join(&rel)));
        }
        match k {
            // November closes; later nights' corrections into it become adjustments.
            3 => extra.extend(["--close-through", "2025-11"]),
            // A pipeline change: a model's SQL.
            5 => {
                let f = project.join("models/metrics/metric_revenue.sql");
                let sql = std::fs::read_to_string(&f).unwrap();
                std::fs::write(&f, format!("-- changed mid-sequence\n{sql}")).unwrap();
            }
            _ => {}
        }
        // An old partition rewritten after the fact, on the eighth night.
        if !extras.is_empty() || k == 7 {
            let to = dir.path().join(format!("derived-{}", k + 1));
            snapshot = derived_night(&night_dir, &to, &extras, k == 7);
        }
        // The proof on the nights that change the most (each is a build more).
        let mut checked = extra.clone();
        if [0, 5, 7].contains(&k) {
            checked.push("--verify-full-refresh");
        }
        let a = build_json(&project, &snapshot, &inc, &checked);
        extra.push("--full-refresh");
        let b = build_json(&project, &snapshot, &full, &extra);
        assert_eq!(a["outcome"], b["outcome"], "night {}", k + 1);
        assert_eq!(a["build_id"], b["build_id"], "night {}", k + 1);
        assert!(
            decisions(&b)
                .iter()
                .all(|(_, d)| d.contains("--full-refresh")),
            "{:?}",
            decisions(&b)
        );
        let (pa, pb) = (published(&inc), published(&full));
        assert_eq!(
            pa.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            pb.iter().map(|(n, _)| n).collect::<Vec<_>>()
        );
        for ((name, x), (_, y)) in pa.iter().zip(&pb) {
            assert!(
                x == y,
                "night {}: {name} differs from a full refresh",
                k + 1
            );
        }
        duplicates.push(
            a["quarantined"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|q| q["rule"] == "duplicate_event")
                .map(|q| q["rows"].as_u64().unwrap())
                .sum::<u64>(),
        );
        let (ra, rb) = (a["run_id"].as_str().unwrap(), b["run_id"].as_str().unwrap());
        for d in ["quarantine", "dead_letter", "logs/decision_log"] {
            assert_eq!(
                run_rows(&inc, d, ra),
                run_rows(&full, d, rb),
                "night {}: {d}",
                k + 1
            );
        }
        for (model, d) in decisions(&a) {
            seen.insert(match k {
                0 => format!("{model}: {d}"),
                _ => d,
            });
        }
        match k {
            0 => assert_eq!(reused(&a), 0, "nothing to reuse on the first night"),
            5 => assert!(
                decisions(&a).contains(&(
                    "metric_revenue".into(),
                    "recomputed: its definition changed".into()
                )),
                "{:?}",
                decisions(&a)
            ),
            _ => {}
        }
        if k == 6 {
            // The same night again: every table whose inputs are unchanged is reused, and the
            // result is still a full refresh's.
            let again = build_json(&project, &snapshot, &inc, &["--verify-full-refresh"]);
            let n = reused(&again);
            let always = [
                "built or sorted in ranges",
                "uses the build id",
                "reads frozen months",
            ];
            for (model, d) in decisions(&again) {
                assert!(
                    d == "reused" || always.iter().any(|a| d.contains(a)),
                    "{model}: {d}"
                );
            }
            assert!(n > 40, "{n} reused");
            assert_eq!(
                published(&inc),
                pb,
                "a rerun reusing {n} tables publishes the same bytes"
            );
        }
    }
    // Every night added rows, and the incremental builds computed for the reasons they should.
    assert!(
        nights[1..]
            .iter()
            .all(|n| n.new_rows.values().sum::<u64>() > 0)
    );
    // What the events did: each replay was quarantined as one, and the corrections and late
    // arrivals of the closed November were booked as prior-period adjustments.
    assert!(
        duplicates[9] >= duplicates[3] + 6,
        "duplicate events by night: {duplicates:?}"
    );
    let log = Table::read_file(&Warehouse::new(&inc).published_file("revenue_recognition_log"));
    assert!(
        log.bool("prior_period_adjustment").contains(&Some(true)),
        "adjustments to the closed November"
    );
    assert!(
        seen.iter()
            .any(|d| d.contains("input `source:usage_metering_log` changed")),
        "{seen:?}"
    );
}

/// Put another value in a published table in place (its first row's segment), as a stray
/// write would; returns the file's sha256 before and after.
fn tamper(file: &Path) -> (String, String) {
    let (schema, batches) = gtmos::table_io::read_parquet(file).unwrap();
    let all = arrow::compute::concat_batches(&schema, &batches).unwrap();
    let old_sha = gtmos::table_io::sha256_file(file).unwrap();
    let mut segments = Table::read_file(file).str("segment");
    std::fs::remove_file(file).unwrap();
    let c = schema.index_of("segment").unwrap();
    segments[0] = Some("TAMPERED".into());
    let mut columns = all.columns().to_vec();
    columns[c] = std::sync::Arc::new(arrow::array::StringArray::from(segments));
    let altered = [arrow::array::RecordBatch::try_new(schema.clone(), columns).unwrap()];
    gtmos::table_io::write_table(file, schema, &[], &altered).unwrap();
    (old_sha, gtmos::table_io::sha256_file(file).unwrap())
}

/// Verified inputs hold for reuse: a published table changed after publishing (its recorded
/// sha256 left as it was) is computed again, not reused, and the build publishes it as it was.
#[test]
fn a_published_table_changed_after_the_fact_is_computed_again_not_reused() {
    let dir = tempdir();
    let wh = dir.path().join("wh");
    let (code, _, err) = build(corpus(), &wh, &[]);
    assert!(code < 2, "{err}");
    let file = Warehouse::new(&wh).published_file("metric_revenue");
    let (old_sha, _) = tamper(&file);
    let summary = build_json(&project_dir(), corpus(), &wh, &[]);
    assert!(
        decisions(&summary).contains(&(
            "metric_revenue".into(),
            "recomputed: its published file does not hash to the recorded sha256".into()
        )),
        "{:?}",
        decisions(&summary)
    );
    assert!(reused(&summary) > 40, "the rest is reused");
    let again = Warehouse::new(&wh).published_file("metric_revenue");
    assert_eq!(gtmos::table_io::sha256_file(&again).unwrap(), old_sha);
}

/// Proof, not hope: a published table altered after the fact, with the hashes recorded for it
/// altered to match, is reused by an incremental build; `--verify-full-refresh` finds the
/// difference, names it, and publishes nothing.
#[test]
fn verify_full_refresh_catches_a_reused_table_that_is_not_what_computing_gives() {
    let dir = tempdir();
    let wh = dir.path().join("wh");
    let (code, _, err) = build(corpus(), &wh, &[]);
    assert!(code < 2, "{err}");
    let w = Warehouse::new(&wh);
    let table = "metric_revenue";
    let file = w.published_file(table);
    let (old_sha, new_sha) = tamper(&file);
    for state in ["_state.json", gtmos::build::STEPS_FILE] {
        let p = w.published_dir().join(state);
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replace(&old_sha, &new_sha);
        std::fs::remove_file(&p).unwrap();
        std::fs::write(&p, text).unwrap();
    }
    let before = published(&wh);
    let (code, _, err) = build(corpus(), &wh, &["--verify-full-refresh"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(
            "--verify-full-refresh: table `metric_revenue` differs at row 0, column `segment`"
        ) && err.contains("was not published"),
        "{err}"
    );
    assert_eq!(published(&wh), before, "nothing published");
    // Without the proof the same build reuses the altered rows (which is why it exists), and a
    // full refresh computes them again.
    let (code, out, err) = build(corpus(), &wh, &["--full-refresh"]);
    assert!(code < 2, "{err}");
    assert!(out.contains("incremental 0 tables reused"), "{out}");
    assert_ne!(
        gtmos::table_io::sha256_file(&Warehouse::new(&wh).published_file(table)).unwrap(),
        new_sha
    );
}
