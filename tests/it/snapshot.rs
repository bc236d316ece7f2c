//! Opening snapshots: missing tables and columns, wrong types and corrupt files are named
//! precisely (exit 2), never a panic.

use std::sync::Arc;

use arrow::array::{ArrayRef, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use gtmos::snapshot::Snapshot;

use crate::common::*;

/// A copy of the shared corpus to break.
fn copy() -> tempfile::TempDir {
    let dir = tempdir();
    for e in std::fs::read_dir(corpus()).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::copy(e.path(), dir.path().join(e.file_name())).unwrap();
        }
    }
    dir
}

fn check(dir: &std::path::Path) -> (i32, String) {
    let (code, out, err) = gtmos(&["snapshot", "check", dir.to_str().unwrap()], dir);
    assert!(!err.contains("panicked"), "{err}");
    (code, format!("{out}{err}"))
}

#[test]
fn a_good_snapshot_checks_clean_with_its_hashes() {
    let (code, out, err) = gtmos(
        &["snapshot", "check", corpus().to_str().unwrap(), "--hashes"],
        corpus(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("schema ok") && out.contains("every file matches"),
        "{out}"
    );
}

#[test]
fn a_truncated_parquet_file_is_named() {
    let dir = copy();
    let p = dir.path().join("contacts.parquet");
    let bytes = std::fs::read(&p).unwrap();
    std::fs::write(&p, &bytes[..bytes.len() / 3]).unwrap();
    let (code, msg) = check(dir.path());
    assert_eq!(code, 2);
    assert!(
        msg.contains("contacts.parquet") && msg.contains("not a readable Parquet file"),
        "{msg}"
    );
}

#[test]
fn corrupt_pages_are_an_error_naming_the_file_when_read() {
    let dir = copy();
    let p = dir.path().join("accounts.parquet");
    let mut bytes = std::fs::read(&p).unwrap();
    for b in bytes.iter_mut().skip(4).take(400) {
        *b = 0x5a;
    }
    std::fs::write(&p, bytes).unwrap();
    let snap = Snapshot::open(dir.path(), registry()).expect("the footer is intact");
    let e = snap.read("accounts").unwrap_err().to_string();
    assert!(e.contains("accounts.parquet"), "{e}");
    let (code, _, err) = gtmos(
        &[
            "snapshot",
            "check",
            dir.path().to_str().unwrap(),
            "--hashes",
        ],
        dir.path(),
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("files differ from manifest.json: accounts"),
        "{err}"
    );
}

#[test]
fn missing_and_mistyped_columns_are_named() {
    let dir = copy();
    // reps.parquet without `role`, and with `hire_date` as text.
    let schema = Arc::new(Schema::new(vec![
        Field::new("rep_id", DataType::Utf8, true),
        Field::new("full_name", DataType::Utf8, true),
        Field::new("segment", DataType::Utf8, true),
        Field::new("geo", DataType::Utf8, true),
        Field::new("hire_date", DataType::Utf8, true),
        Field::new("end_date", DataType::Int32, true),
        Field::new("annual_quota_usd", DataType::Utf8, true),
    ]));
    let s = |v: &str| Arc::new(StringArray::from(vec![v])) as ArrayRef;
    let b = RecordBatch::try_new(
        schema.clone(),
        vec![
            s("REP-1"),
            s("A B"),
            s("SMB"),
            s("NA"),
            s("2024-01-01"),
            Arc::new(Int32Array::from(vec![None])),
            s("1"),
        ],
    )
    .unwrap();
    gtmos::table_io::write_table(&dir.path().join("reps.parquet"), schema, &[], &[b]).unwrap();
    let (code, msg) = check(dir.path());
    assert_eq!(code, 2, "{msg}");
    assert!(
        msg.contains("table `reps`, column `role`: column is missing"),
        "{msg}"
    );
    assert!(
        msg.contains("table `reps`, column `hire_date`: has type Utf8 but must be date"),
        "{msg}"
    );
    assert!(msg.contains("column `end_date`"), "{msg}");
}

#[test]
fn missing_tables_and_manifests_are_named() {
    let dir = copy();
    let m = dir.path().join("manifest.json");
    let text = std::fs::read_to_string(&m).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["tables"].as_object_mut().unwrap().remove("invoices");
    std::fs::write(&m, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let (code, msg) = check(dir.path());
    assert_eq!(code, 2);
    assert!(
        msg.contains("table `invoices`: required table is missing"),
        "{msg}"
    );
    std::fs::remove_file(dir.path().join("orders.parquet")).unwrap();
    let (_, msg) = check(dir.path());
    assert!(
        msg.contains("table `orders`") && msg.contains("is missing"),
        "{msg}"
    );
    std::fs::remove_file(&m).unwrap();
    let (code, msg) = check(dir.path());
    assert_eq!(code, 2);
    assert!(msg.contains("no manifest.json"), "{msg}");
}

#[test]
fn snapshot_init_describes_exported_parquet_files() {
    let dir = copy();
    std::fs::remove_file(dir.path().join("manifest.json")).unwrap();
    // Optional tables may be absent.
    std::fs::remove_file(dir.path().join("restatements.parquet")).unwrap();
    let (code, out, err) = gtmos(
        &["snapshot", "init", ".", "--as-of", "2026-01-01T00:00:00Z"],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("30 tables"), "{out}");
    let snap = Snapshot::open(dir.path(), registry()).unwrap();
    assert!(!snap.has_table("restatements"));
    assert!(snap.verify_hashes().unwrap().is_empty());
    // Same tables, same inputs hash as the generated corpus minus the removed table.
    assert_eq!(
        snap.manifest.tables["usage_metering_log"],
        Snapshot::open(corpus(), registry())
            .unwrap()
            .manifest
            .tables["usage_metering_log"]
    );
    let (code, _, err) = gtmos(&["snapshot", "init", ".", "--as-of", "soon"], dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("invalid timestamp `soon`"), "{err}");
    // A failed init leaves the directory as it was: here, its earlier manifest.
    let good = std::fs::read(dir.path().join("manifest.json")).unwrap();
    std::fs::remove_file(dir.path().join("orders.parquet")).unwrap();
    let (code, _, err) = gtmos(
        &["snapshot", "init", ".", "--as-of", "2026-01-01T00:00:00Z"],
        dir.path(),
    );
    assert_eq!(code, 2, "a required table is missing: {err}");
    assert_eq!(
        std::fs::read(dir.path().join("manifest.json")).unwrap(),
        good
    );
    std::fs::remove_file(dir.path().join("manifest.json")).unwrap();
    let (code, _, _) = gtmos(
        &["snapshot", "init", ".", "--as-of", "2026-01-01T00:00:00Z"],
        dir.path(),
    );
    assert_eq!(code, 2);
    assert!(
        !dir.path().join("manifest.json").exists(),
        "no manifest is left behind"
    );
}

#[test]
fn a_column_that_appears_twice_is_refused() {
    use std::sync::Arc;
    let dir = copy();
    let reps = dir.path().join("reps.parquet");
    let (schema, batches) = gtmos::table_io::read_parquet(&reps).unwrap();
    // Every column, then `rep_id` once more with other values: which one is the column?
    let mut fields: Vec<arrow::datatypes::FieldRef> = schema.fields().iter().cloned().collect();
    let i = schema.index_of("rep_id").unwrap();
    fields.push(fields[i].clone());
    let doubled = Arc::new(arrow::datatypes::Schema::new(fields));
    let out: Vec<arrow::array::RecordBatch> = batches
        .iter()
        .map(|b| {
            let mut cols = b.columns().to_vec();
            cols.push(
                arrow::compute::kernels::concat::concat(&[
                    &b.column(i).slice(1, b.num_rows() - 1),
                    &b.column(i).slice(0, 1),
                ])
                .unwrap(),
            );
            arrow::array::RecordBatch::try_new(doubled.clone(), cols).unwrap()
        })
        .collect();
    gtmos::table_io::write_table(&reps, doubled, &[], &out).unwrap();
    let (code, msg) = check(dir.path());
    assert_eq!(code, 2, "{msg}");
    assert!(
        msg.contains("rep_id") && msg.contains("appears twice"),
        "{msg}"
    );
}

/// A table exported as a directory of partition files: the manifest lists each file with its
/// rows and sha256, and a partition added, rewritten or removed afterwards is named.
#[test]
fn a_partitioned_table_is_described_and_verified_file_by_file() {
    let dir = copy();
    std::fs::remove_file(dir.path().join("manifest.json")).unwrap();
    let log = dir.path().join("usage_metering_log.parquet");
    let (schema, batches) = gtmos::table_io::read_parquet(&log).unwrap();
    let all = arrow::compute::concat_batches(&schema, &batches).unwrap();
    std::fs::remove_file(&log).unwrap();
    let half = all.num_rows() / 2;
    let part = |name: &str| {
        dir.path()
            .join("usage_metering_log")
            .join(name)
            .join("part-0.parquet")
    };
    let write = |name: &str, b: &RecordBatch| {
        std::fs::create_dir_all(part(name).parent().unwrap()).unwrap();
        gtmos::table_io::write_table(&part(name), schema.clone(), &[], std::slice::from_ref(b))
            .unwrap()
    };
    let a = write("received_date=2025-12-30", &all.slice(0, half));
    let b = write(
        "received_date=2025-12-31",
        &all.slice(half, all.num_rows() - half),
    );
    let (code, _, err) = gtmos(
        &["snapshot", "init", ".", "--as-of", "2026-01-01T00:00:00Z"],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    let snap = Snapshot::open(dir.path(), registry()).unwrap();
    let entry = &snap.manifest.tables["usage_metering_log"];
    assert_eq!(entry.path, "usage_metering_log");
    assert_eq!(entry.rows, all.num_rows() as u64);
    let files: Vec<(&str, u64, &str)> = entry
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.rows, f.sha256.as_str()))
        .collect();
    assert_eq!(
        files,
        [
            (
                "received_date=2025-12-30/part-0.parquet",
                a.rows,
                a.sha256.as_str()
            ),
            (
                "received_date=2025-12-31/part-0.parquet",
                b.rows,
                b.sha256.as_str()
            ),
        ]
    );
    snap.verify().unwrap();
    // An unpartitioned table lists no files.
    assert!(snap.manifest.tables["accounts"].files.is_empty());

    // A rewritten partition, a new one and a missing one are each named.
    write("received_date=2025-12-31", &all.slice(half, 10));
    write("received_date=2026-01-01", &all.slice(0, 1));
    std::fs::remove_dir_all(part("received_date=2025-12-30").parent().unwrap()).unwrap();
    let msg = snap.verify().unwrap_err().to_string();
    for expected in [
        "partition received_date=2025-12-31/part-0.parquet: sha256",
        "partition received_date=2026-01-01/part-0.parquet is on disk but not in the manifest",
        "partition received_date=2025-12-30/part-0.parquet is in the manifest but not on disk",
    ] {
        assert!(msg.contains(expected), "{expected}\n{msg}");
    }
}
