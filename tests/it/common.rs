//! Shared fixtures: small synthetic corpora generated once per test run, and a table reader
//! that hands columns back as plain Rust values.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use arrow::array::{Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float64Type, Int64Type, TimestampMicrosecondType,
};
use gtmos::schema::Registry;
use gtmos::synth::params::{FaultClass, SynthParams};

/// A table's rows, column by column.
pub struct Table {
    pub name: String,
    pub rows: usize,
    pub cols: BTreeMap<String, arrow::array::ArrayRef>,
}

impl Table {
    pub fn read_file(path: &Path) -> Table {
        let (schema, batches) = gtmos::table_io::read_parquet(path).expect("readable parquet");
        let mut cols = BTreeMap::new();
        let rows = batches.iter().map(|b| b.num_rows()).sum();
        for (i, f) in schema.fields().iter().enumerate() {
            let arrays: Vec<&dyn Array> = batches.iter().map(|b| b.column(i).as_ref()).collect();
            let col = if arrays.is_empty() {
                arrow::array::new_empty_array(f.data_type())
            } else {
                arrow::compute::concat(&arrays).expect("concat")
            };
            cols.insert(f.name().clone(), col);
        }
        Table {
            name: path.display().to_string(),
            rows,
            cols,
        }
    }

    pub fn read(dir: &Path, name: &str) -> Table {
        Table::read_file(&dir.join(format!("{name}.parquet")))
    }

    fn col(&self, c: &str) -> &arrow::array::ArrayRef {
        self.cols
            .get(c)
            .unwrap_or_else(|| panic!("{}: no column {c}", self.name))
    }

    pub fn str(&self, c: &str) -> Vec<Option<String>> {
        let a = cast(self.col(c), &DataType::Utf8).expect("utf8");
        a.as_string::<i32>()
            .iter()
            .map(|v| v.map(str::to_string))
            .collect()
    }

    pub fn s(&self, c: &str) -> Vec<String> {
        self.str(c)
            .into_iter()
            .map(|v| v.unwrap_or_default())
            .collect()
    }

    pub fn f64(&self, c: &str) -> Vec<Option<f64>> {
        let a = cast(self.col(c), &DataType::Float64).expect("f64");
        a.as_primitive::<Float64Type>().iter().collect()
    }

    pub fn i64(&self, c: &str) -> Vec<Option<i64>> {
        let a = cast(self.col(c), &DataType::Int64).expect("i64");
        a.as_primitive::<Int64Type>().iter().collect()
    }

    pub fn date(&self, c: &str) -> Vec<Option<i32>> {
        self.col(c).as_primitive::<Date32Type>().iter().collect()
    }

    pub fn ts(&self, c: &str) -> Vec<Option<i64>> {
        self.col(c)
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .collect()
    }

    pub fn bool(&self, c: &str) -> Vec<Option<bool>> {
        self.col(c).as_boolean().iter().collect()
    }

    /// Unscaled decimal values (cents for decimal(18,2)).
    pub fn dec(&self, c: &str) -> Vec<Option<i128>> {
        self.col(c)
            .as_primitive::<Decimal128Type>()
            .iter()
            .collect()
    }
}

pub fn registry() -> &'static Registry {
    Registry::embedded().expect("registry")
}

pub fn day(y: i32, m: u32, d: u32) -> i32 {
    gtmos::calendar::Day::from_ymd(y, m, d).expect("date").0
}

/// `target/tmp/fixtures/`, with the fixtures of earlier test runs (named `<kind>-<pid>` after
/// processes that have ended) removed the first time it is asked for.
fn scratch() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fixtures");
        std::fs::create_dir_all(&dir).expect("fixture dir");
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let pid = name.rsplit('-').next().and_then(|p| p.parse::<u32>().ok());
            if let Some(pid) = pid
                && pid != std::process::id()
                && !Path::new(&format!("/proc/{pid}")).exists()
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        dir
    })
    .clone()
}

/// The corpus most tests read: 160 accounts over the default two-year window, with every
/// fault class raised so each appears at least twice.
pub fn corpus() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = scratch().join(format!("corpus-{}", std::process::id()));
        let mut p = SynthParams {
            seed: 7,
            accounts: 160,
            ..SynthParams::default()
        };
        for f in FaultClass::ALL {
            p.fault_rates.insert(f.name().to_string(), 0.015);
        }
        p.fault_rates.insert("reference_gl_discrepancy".into(), 0.1);
        p.fault_rates.insert("spend_out_of_range".into(), 0.05);
        gtmos::synth::generate(&p, &dir, 2, false).expect("corpus generates");
        dir
    })
}

/// A fresh temporary directory for a test that writes.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("gtmos-it-")
        .tempdir_in(scratch())
        .expect("tempdir")
}

/// Run the gtmos binary; returns (exit code, stdout, stderr).
pub fn gtmos(args: &[&str], cwd: &Path) -> (i32, String, String) {
    gtmos_env(args, cwd, &[])
}

/// [`gtmos`] with environment variables set for it.
pub fn gtmos_env(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gtmos"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(cwd)
        .output()
        .expect("gtmos runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A batch of a registry table from JSON rows: strings for varchar, `YYYY-MM-DD` for dates,
/// RFC 3339 for timestamps, numbers, booleans, arrays of strings; missing keys are null.
pub fn rows(table: &str, data: &[serde_json::Value]) -> arrow::array::RecordBatch {
    use gtmos::builder::TableBuilder;
    use gtmos::schema::ColumnType;
    let t = registry()
        .table(table)
        .unwrap_or_else(|| panic!("no table {table}"));
    let mut b = TableBuilder::new(table, t.arrow_schema()).unwrap();
    for row in data {
        for c in &t.columns {
            let v = &row[&c.name];
            if v.is_null() {
                continue;
            }
            match c.column_type {
                ColumnType::Varchar => {
                    let h = b.str_col(&c.name).unwrap();
                    b.str(h, v.as_str().expect("string"));
                }
                ColumnType::VarcharList => {
                    let h = b.list_col(&c.name).unwrap();
                    let items: Vec<&str> = v
                        .as_array()
                        .expect("array")
                        .iter()
                        .map(|x| x.as_str().unwrap())
                        .collect();
                    b.list(h, &items);
                }
                ColumnType::Date => {
                    let h = b.date_col(&c.name).unwrap();
                    b.date(
                        h,
                        gtmos::calendar::Day::parse(v.as_str().unwrap()).unwrap().0,
                    );
                }
                ColumnType::Timestamp => {
                    let h = b.ts_col(&c.name).unwrap();
                    b.ts(h, gtmos::calendar::parse_ts(v.as_str().unwrap()).unwrap());
                }
                ColumnType::Boolean => {
                    let h = b.bool_col(&c.name).unwrap();
                    b.bool(h, v.as_bool().unwrap());
                }
                ColumnType::Integer => {
                    let h = b.i32_col(&c.name).unwrap();
                    b.i32(h, v.as_i64().unwrap() as i32);
                }
                ColumnType::Bigint => {
                    let h = b.i64_col(&c.name).unwrap();
                    b.i64(h, v.as_i64().unwrap());
                }
                ColumnType::Double => {
                    let h = b.f64_col(&c.name).unwrap();
                    b.f64(h, v.as_f64().unwrap());
                }
                ColumnType::Decimal { scale, .. } => {
                    let h = b.dec_col(&c.name).unwrap();
                    b.dec(
                        h,
                        (v.as_f64().unwrap() * 10f64.powi(scale as i32)).round() as i128,
                    );
                }
            }
        }
        b.end_row();
    }
    b.finish().unwrap()
}

/// A snapshot holding the given tables; every other registry table is present and empty.
pub fn mini_snapshot(dir: &Path, as_of: &str, tables: Vec<(&str, arrow::array::RecordBatch)>) {
    use gtmos::snapshot::{Manifest, TableEntry};
    let given: BTreeMap<&str, arrow::array::RecordBatch> = tables.into_iter().collect();
    let mut entries = BTreeMap::new();
    for t in registry().tables() {
        let path = dir.join(format!("{}.parquet", t.name));
        let batches: Vec<arrow::array::RecordBatch> =
            given.get(t.name.as_str()).cloned().into_iter().collect();
        let w = gtmos::table_io::write_table(&path, t.arrow_schema(), &[], &batches).unwrap();
        entries.insert(
            t.name.clone(),
            TableEntry {
                path: format!("{}.parquet", t.name),
                rows: w.rows,
                sha256: w.sha256,
                files: Vec::new(),
            },
        );
    }
    let as_of = gtmos::calendar::parse_ts(as_of).unwrap();
    Manifest::new(
        as_of,
        as_of,
        serde_json::json!({"name": "hand-made"}),
        entries,
        BTreeMap::new(),
    )
    .write(dir)
    .unwrap();
}

/// The pipelines project of this repository.
pub fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pipelines")
}

/// Build `snapshot` into `warehouse` with the repository's project; returns (exit, stdout, stderr).
pub fn build(snapshot: &Path, warehouse: &Path, extra: &[&str]) -> (i32, String, String) {
    build_project(&project_dir(), snapshot, warehouse, extra)
}

/// [`build`] with another pipelines project (e.g. an edited copy).
pub fn build_project(
    project: &Path,
    snapshot: &Path,
    warehouse: &Path,
    extra: &[&str],
) -> (i32, String, String) {
    build_project_env(project, snapshot, warehouse, extra, &[])
}

/// [`build_project`] with environment variables set for the run.
pub fn build_project_env(
    project: &Path,
    snapshot: &Path,
    warehouse: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let mut args = vec![
        "build",
        "--project",
        project.to_str().unwrap(),
        "--snapshot",
        snapshot.to_str().unwrap(),
        "--warehouse",
        warehouse.to_str().unwrap(),
        "--no-report",
        "--threads",
        "2",
    ];
    args.extend_from_slice(extra);
    gtmos_env(&args, warehouse.parent().unwrap(), env)
}

/// An `accounts` row for hand-made snapshots: `id` in `segment`, acquired inbound, owned by REP-1.
pub fn account_row(id: &str, segment: &str) -> serde_json::Value {
    serde_json::json!({"account_id": id, "account_name": id, "domain": format!("{id}.com"), "segment": segment,
           "vertical": "SaaS", "geo": "NA", "employee_count": 10, "annual_revenue_usd": 1000.0,
           "acquisition_channel": "inbound", "owner_rep_id": "REP-1", "updated_at": "2019-01-01T00:00:00Z"})
}

/// The one rep hand-made snapshots need.
pub fn rep_row() -> serde_json::Value {
    serde_json::json!({"rep_id": "REP-1", "full_name": "R", "role": "AE", "segment": "SMB", "geo": "NA", "hire_date": "2010-01-01"})
}

/// One seat contract: an order and its single line `<id>-L`, recognised over [start, end).
pub fn seat_contract(
    id: &str,
    account: &str,
    start: &str,
    end: &str,
    amount: f64,
) -> (serde_json::Value, serde_json::Value) {
    (
        serde_json::json!({"order_id": id, "account_id": account, "order_date": start, "term_start": start,
               "term_end": end, "status": "active", "billing_frequency": "annual"}),
        serde_json::json!({"order_line_id": format!("{id}-L"), "order_id": id, "account_id": account,
               "sku_id": "SEAT-PLATFORM", "sku_type": "seat", "quantity": 1,
               "unit_price_usd": amount, "line_amount_usd": amount}),
    )
}

/// Copy a directory tree (e.g. the pipelines project, to edit a copy).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let target = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &target);
        } else {
            std::fs::copy(&p, &target).unwrap();
        }
    }
}

/// Every row of an append-only log of a warehouse, files in name (= run) order, as JSON.
pub fn log_rows(warehouse: &Path, log: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let d = warehouse.join("logs").join(log);
    let mut files: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| gtmos::table_io::json_rows(f).unwrap())
        .collect()
}

/// A warehouse's published tables: (file name, bytes), by name.
/// Two lists from [`published`]: the same tables, each with the same bytes (`what` names the
/// two sides in the message).
#[cfg(feature = "distributed")]
pub fn assert_same_tables(a: &[(String, Vec<u8>)], b: &[(String, Vec<u8>)], what: &str) {
    assert_eq!(
        a.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        b.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    for ((name, x), (_, y)) in a.iter().zip(b) {
        assert!(x == y, "{name} differs between {what}");
    }
}

pub fn published(warehouse: &Path) -> Vec<(String, Vec<u8>)> {
    let dir = gtmos::warehouse::Warehouse::new(warehouse).published_dir();
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}
