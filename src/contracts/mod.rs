//! Contracts (SPEC §6): each source table's data tests, run on DataFusion, before anything
//! downstream reads it.
//!
//! For a source, the tests that remove rows (`on_fail: quarantine | dead_letter`) label every
//! raw row with the first rule it fails, in declared order (column tests in column order, then
//! table tests); set tests — `deduplicate`, `version_sequence`, `unique` — only compare rows
//! still in the flow. [`ingest`] compiles them into a few narrow queries and one read of the
//! whole row; [`reference`] keeps the plain formulation as the oracle of a differential test.
//! The labelled rows are streamed once: labelled ones go to
//! `quarantine/<table>/run=<run_id>.parquet` (with `rule`, `contract_version`, `run_id`) or
//! `dead_letter/` (with the row's position in the snapshot), the rest become the checked source
//! every model reads as `source('snapshot', '<table>')`. Rows that cannot be typed (a value
//! that does not fit its declared type) are dead-lettered before the rules run ([`raw`]).
//!
//! The remaining tests (warn-only SOFT rules, blocking rules such as out-of-range spend, and
//! uniqueness) then run on the accepted rows: their failure counts are recorded, and an
//! error-severity failure blocks everything downstream of the table. Model tests and singular
//! tests use the same check machinery ([`checks`]): one pass streams the rows failing any test,
//! counting each test's failures and keeping a sample of them. Every outcome becomes a
//! `contract_results` row.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, StringArray, UInt64Array,
};
use arrow::compute::{cast_with_options, filter_record_batch, is_not_null, is_null};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, UInt64Type};
use arrow::util::display::{ArrayFormatter, FormatOptions};

use crate::engine::numbered::ROW;
use crate::engine::{Engine, RAW, SCRATCH, SOURCES, Scratch, ident};
use crate::error::{Error, Result};
use crate::project::data_tests::{OnFail, Status, TestSpec};
use crate::project::{Freshness, SourceContract};
use crate::schema::TableSchema;
use crate::snapshot::{Snapshot, parquet_files};
use crate::table_io::{self, TableWriter};
use crate::warehouse::Warehouse;

pub mod checks;
#[doc(hidden)]
pub mod duckdb;
mod ingest;
mod raw;
#[cfg(test)]
mod reference;

pub use checks::{check_sql, run_checks, run_singular};
pub use ingest::ingest_sql;
pub use raw::record_json;
use raw::{DeadLetter, display, register_raw};

/// Rows kept as a sample of each failing test, for the report and `contract_results`.
pub const SAMPLE_ROWS: usize = 5;

/// The outcome of one data test.
#[derive(Debug, Clone)]
pub struct TestResult {
    pub node: String,
    /// `source`, `model` or `test` (a singular test).
    pub node_kind: &'static str,
    pub spec: TestSpec,
    pub test: String,
    pub status: Status,
    pub failures: u64,
    pub rows_checked: u64,
    /// What happened: quarantined, dead_lettered, blocked, recorded or none.
    pub action: &'static str,
    pub sample: Vec<serde_json::Value>,
    pub contract_version: Option<String>,
    pub declared_in: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct FreshnessResult {
    pub source: String,
    pub loaded_at_field: String,
    pub max_loaded_at: Option<i64>,
    pub age_hours: Option<f64>,
    pub warn_after_hours: Option<f64>,
    pub error_after_hours: Option<f64>,
    pub status: &'static str,
    /// Rows loaded after the snapshot's export: impossible, so an error.
    pub future_rows: u64,
}

/// What running one source's contract did.
#[derive(Debug, Clone)]
pub struct SourceResult {
    pub table: String,
    pub present: bool,
    pub rows_in: u64,
    pub rows_accepted: u64,
    pub quarantined: BTreeMap<String, u64>,
    pub dead_lettered: u64,
    /// Rows of an append-only source loaded after the build's as_of, left out of a
    /// point-in-time build (not faults: they were not known yet).
    pub not_yet_loaded: u64,
    pub tests: Vec<TestResult>,
    /// Why publishing downstream is blocked, when it is.
    pub blocked: Option<String>,
    pub freshness: Option<FreshnessResult>,
    pub seconds: f64,
}

/// What a contract run needs from the build.
pub struct Context<'a> {
    pub engine: &'a Engine,
    pub warehouse: &'a Warehouse,
    pub staging: &'a Path,
    pub run_id: &'a str,
    pub as_of: i64,
    /// The snapshot's own as_of (its export). When the build's as_of is earlier (`--as-of`),
    /// append-only sources are read as they were known then, without the rows loaded after it;
    /// a load time after it is in the future of the data itself, a freshness error.
    pub snapshot_as_of: i64,
    /// Renders templates (`{{ as_of }}`, `{{ var() }}`) in test expressions.
    pub render: &'a dyn Fn(&str) -> Result<String>,
    /// Rows of a stored table above which its tests computed by a window run range by range
    /// ([`WINDOW_RANGE_ROWS`] scaled to the memory pool, in a build).
    pub window_range_rows: u64,
}

/// Rows a piece of a windowed check holds with a 4 GiB pool (scaled to the pool in a build):
/// its narrow columns sort in well under 1 GiB.
pub const WINDOW_RANGE_ROWS: u64 = 4_000_000;

#[cfg(test)]
impl<'a> Context<'a> {
    /// A context at as_of 0 with run id `r`, for unit tests.
    fn for_tests(
        engine: &'a Engine,
        warehouse: &'a Warehouse,
        staging: &'a Path,
        render: &'a dyn Fn(&str) -> Result<String>,
    ) -> Context<'a> {
        Context {
            engine,
            warehouse,
            staging,
            run_id: "r",
            as_of: 0,
            snapshot_as_of: 0,
            render,
            window_range_rows: WINDOW_RANGE_ROWS,
        }
    }
}

/// Run a source's contract: register the raw table, quarantine / dead-letter, register the
/// accepted rows as `sources.<table>`, run the checks and the freshness test.
pub fn run_source(
    cx: &Context,
    contract: &SourceContract,
    t: &TableSchema,
    snapshot: &Snapshot,
) -> Result<SourceResult> {
    let started = std::time::Instant::now();
    let mut result = SourceResult {
        table: t.name.clone(),
        present: snapshot.has_table(&t.name),
        rows_in: 0,
        rows_accepted: 0,
        quarantined: BTreeMap::new(),
        dead_lettered: 0,
        not_yet_loaded: 0,
        tests: Vec::new(),
        blocked: None,
        freshness: None,
        seconds: 0.0,
    };
    if !result.present {
        // An optional table that is absent reads as empty.
        cx.engine
            .register_batches(RAW, &t.name, t.arrow_schema(), vec![])?;
        cx.engine
            .register_batches(SOURCES, &t.name, t.arrow_schema(), vec![])?;
        result.seconds = started.elapsed().as_secs_f64();
        return Ok(result);
    }
    let location = snapshot.table_path(&t.name)?;
    let typed = register_raw(cx, contract, t, &location, &mut result)?;
    let cut = match (
        &t.loaded_at_field,
        t.append_only && cx.as_of < cx.snapshot_as_of,
    ) {
        (Some(field), true) => cut_to_as_of(cx, t, field, &mut result)?,
        _ => None,
    };
    let removing: Vec<&TestSpec> = contract
        .tests
        .iter()
        .filter(|s| s.on_fail.removes_rows())
        .collect();
    // The Parquet files `sources.<table>` reads.
    let checked: Vec<PathBuf>;
    if removing.is_empty() && typed.is_none() && cut.is_none() {
        // Nothing to take out: the raw table is the checked table.
        cx.engine.register_parquet(
            SOURCES,
            &t.name,
            &location.to_string_lossy(),
            Some(t.arrow_schema()),
        )?;
        let n = count(cx.engine, &format!("{SOURCES}.{}", t.name), &t.name)?;
        result.rows_in += n;
        result.rows_accepted = n;
        checked = parquet_files(&location)?;
    } else {
        let files = match typed {
            Some(path) => vec![path],
            None => parquet_files(&location)?,
        };
        checked = vec![ingest(
            cx,
            contract,
            t,
            &removing,
            &files,
            cut.as_deref(),
            &mut result,
        )?];
    }

    let checks: Vec<TestSpec> = contract
        .tests
        .iter()
        .filter(|s| !s.on_fail.removes_rows())
        .cloned()
        .collect();
    let relation = format!("{SOURCES}.{}", ident(&t.name));
    let mut results = run_checks(
        cx,
        &t.name,
        "source",
        &relation,
        &checks,
        &|to: &str| source_relation(cx, to, &t.name),
        Some(&checked),
    )?;
    for r in &mut results {
        r.contract_version = Some(contract.contract_version.clone());
        r.declared_in = contract.file.display().to_string();
    }
    result.tests.extend(results);
    result.blocked = result
        .tests
        .iter()
        .find(|r| r.spec.blocks(r.status))
        .map(|r| {
            format!(
                "source `{}`: rule `{}` failed ({} rows)",
                t.name, r.spec.rule, r.failures
            )
        });
    for r in &mut result.tests {
        if r.status == Status::Fail && r.action == "recorded" {
            r.action = "blocked";
        }
    }
    if let Some(f) = &contract.freshness {
        result.freshness = Some(freshness(cx, &t.name, f)?);
    }
    result.seconds = started.elapsed().as_secs_f64();
    Ok(result)
}

/// A point-in-time read of an append-only source: `raw.<table>` becomes the rows loaded by
/// as_of (a null load time stays, for the contract to judge). Returns the condition that keeps
/// them when any row was left out.
fn cut_to_as_of(
    cx: &Context,
    t: &TableSchema,
    field: &str,
    result: &mut SourceResult,
) -> Result<Option<String>> {
    let relation = format!("{RAW}.{}", ident(&t.name));
    let at = crate::engine::timestamp_literal(cx.as_of);
    let later = count(
        cx.engine,
        &format!("{relation} WHERE {} > {at}", ident(field)),
        &t.name,
    )?;
    if later == 0 {
        return Ok(None);
    }
    let known = format!("{f} IS NULL OR {f} <= {at}", f = ident(field));
    cx.engine.register_view(
        RAW,
        &t.name,
        &format!("SELECT * FROM {relation} WHERE {known}"),
        &format!("reading `{}` as known at as_of", t.name),
    )?;
    result.not_yet_loaded = later;
    Ok(Some(known))
}

/// Relationships read the checked version of another source, or the raw table itself.
fn source_relation(cx: &Context, to: &str, this: &str) -> String {
    if to != this && cx.engine.has_table(SOURCES, to) {
        format!("{SOURCES}.{}", ident(to))
    } else {
        format!("{RAW}.{}", ident(to))
    }
}

fn count(engine: &Engine, relation: &str, what: &str) -> Result<u64> {
    let b = engine.query(
        &format!("SELECT COUNT(*) FROM {relation}"),
        &format!("counting rows of `{what}`"),
    )?;
    Ok(b.first()
        .map(|b| {
            b.column(0)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .value(0) as u64
        })
        .unwrap_or(0))
}

/// A data-test query and the small tables it reads, to be materialised first, in order.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub materialize: Vec<(String, Scratch)>,
    pub sql: String,
}

impl Compiled {
    /// As one script: `CREATE TABLE … AS …;` per materialised table, then the query.
    pub fn script(&self) -> String {
        let mut s = String::new();
        for (name, table) in &self.materialize {
            s.push_str(&format!("CREATE TABLE {name} AS {};\n", table.sql()));
        }
        s.push_str(&self.sql);
        s
    }
}

/// Run the ingest queries over `files` (the rows `known` keeps, when as_of cuts the table) and
/// split the result; returns the accepted rows' file.
fn ingest(
    cx: &Context,
    contract: &SourceContract,
    t: &TableSchema,
    removing: &[&TestSpec],
    files: &[PathBuf],
    known: Option<&str>,
    result: &mut SourceResult,
) -> Result<PathBuf> {
    let rows = ingest::rows_relation(&t.name);
    let (schema, name) = rows
        .split_once('.')
        .ok_or_else(|| Error::Internal(format!("unqualified relation {rows}")))?;
    match known {
        None => {
            cx.engine
                .register_numbered(schema, name, files, &t.arrow_schema())?;
        }
        Some(known) => {
            let all = format!("{name}_all");
            cx.engine
                .register_numbered(schema, &all, files, &t.arrow_schema())?;
            cx.engine.register_view(
                schema,
                name,
                &format!("SELECT * FROM {schema}.{all} WHERE {known}"),
                &format!("reading `{}` as known at as_of", t.name),
            )?;
        }
    }
    let compiled = ingest_sql(
        t,
        removing,
        &|to: &str| source_relation(cx, to, &t.name),
        cx.render,
    )?;
    let what = format!(
        "{}: contract of source `{}`",
        contract.file.display(),
        t.name
    );
    cx.engine.materialize(&compiled.materialize, &what)?;
    let df = cx.engine.sql(&compiled.sql, &what)?;
    let accepted_path = cx
        .staging
        .join("sources")
        .join(format!("{}.parquet", t.name));
    let mut accepted = TableWriter::create(&accepted_path, t.arrow_schema(), &t.plain_columns())?
        .encode_threads(cx.engine.threads());
    let q_schema = quarantine_schema(t);
    let mut per_test = vec![0u64; removing.len()];
    // Each rule's sample: its failing rows of the smallest positions, so the same on every
    // run whatever order the engine hands the rows back in.
    let mut samples: Vec<Vec<(u64, serde_json::Value)>> = vec![Vec::new(); removing.len()];
    let mut quarantine: Option<TableWriter> = None;
    let mut dead = DeadLetter::new(cx, &t.name, &contract.contract_version);
    let mut rows_in = 0u64;
    let n_cols = t.columns.len();
    cx.engine.for_each_batch(df, &what, |b| {
        rows_in += b.num_rows() as u64;
        let row = b.column(n_cols).as_primitive::<UInt64Type>().clone();
        let rule = b.column(n_cols + 1).as_primitive::<Int64Type>().clone();
        let data = conform(&t.arrow_schema(), &b.columns()[..n_cols], &what)?;
        let ok = is_null(&rule).map_err(|e| Error::arrow(&what, e))?;
        accepted.write(&filter_record_batch(&data, &ok).map_err(|e| Error::arrow(&what, e))?)?;
        if ok.true_count() == b.num_rows() {
            return Ok(());
        }
        let bad = is_not_null(&rule).map_err(|e| Error::arrow(&what, e))?;
        let filter =
            |a: &dyn Array| arrow::compute::filter(a, &bad).map_err(|e| Error::arrow(&what, e));
        let bad_batch = filter_record_batch(&data, &bad).map_err(|e| Error::arrow(&what, e))?;
        let (labels, positions) = (filter(&rule)?, filter(&row)?);
        let (labels, positions) = (
            labels.as_primitive::<Int64Type>(),
            positions.as_primitive::<UInt64Type>(),
        );
        let mut q_rows = Vec::new();
        let mut q_labels: Vec<usize> = Vec::new();
        for i in 0..bad_batch.num_rows() {
            let k = usize::try_from(labels.value(i))
                .map_err(|_| Error::Internal(format!("{what}: bad rule label")))?;
            let spec = removing
                .get(k)
                .ok_or_else(|| Error::Internal(format!("{what}: rule label out of range")))?;
            per_test[k] += 1;
            *result.quarantined.entry(spec.rule.clone()).or_default() += 1;
            let at = positions.value(i);
            let sample = &mut samples[k];
            if sample.len() < SAMPLE_ROWS || sample.last().is_some_and(|(p, _)| at < *p) {
                let slot = sample.partition_point(|(p, _)| *p < at);
                sample.insert(slot, (at, record_json(&bad_batch, i)));
                sample.truncate(SAMPLE_ROWS);
            }
            if spec.on_fail == OnFail::DeadLetter {
                let col = spec.column.clone().unwrap_or_default();
                let value = t
                    .column_index(&col)
                    .map(|c| display(bad_batch.column(c), i))
                    .unwrap_or_default();
                dead.add(
                    positions.value(i),
                    &col,
                    &value,
                    &format!("rule {}", spec.rule),
                    record_json(&bad_batch, i),
                    &spec.rule,
                )?;
            } else {
                q_rows.push(i as u32);
                q_labels.push(k);
            }
        }
        if !q_rows.is_empty() {
            let idx = arrow::array::UInt32Array::from(q_rows);
            let picked = arrow::compute::take_record_batch(&bad_batch, &idx)
                .map_err(|e| Error::arrow(&what, e))?;
            let n = picked.num_rows();
            let mut cols: Vec<ArrayRef> = picked.columns()[..n_cols].to_vec();
            cols.push(Arc::new(StringArray::from(
                q_labels
                    .iter()
                    .map(|k| removing[*k].rule.as_str())
                    .collect::<Vec<_>>(),
            )));
            cols.push(Arc::new(StringArray::from(
                q_labels
                    .iter()
                    .map(|k| test_label(removing[*k]))
                    .collect::<Vec<_>>(),
            )));
            cols.push(Arc::new(StringArray::from(vec![
                contract
                    .contract_version
                    .as_str();
                n
            ])));
            cols.push(Arc::new(StringArray::from(vec![cx.run_id; n])));
            let qb =
                RecordBatch::try_new(q_schema.clone(), cols).map_err(|e| Error::arrow(&what, e))?;
            if quarantine.is_none() {
                let path = cx.warehouse.quarantine_file(&t.name, cx.run_id);
                quarantine = Some(TableWriter::create_new(&path, q_schema.clone(), &[])?);
            }
            if let Some(w) = &mut quarantine {
                w.write(&qb)?;
            }
        }
        Ok(())
    })?;
    let written = accepted.finish()?;
    if let Some(w) = quarantine {
        w.finish()?;
    }
    result.dead_lettered += dead.rows;
    dead.finish()?;
    result.rows_in += rows_in;
    result.rows_accepted = written.rows;
    cx.engine.register_parquet(
        SOURCES,
        &t.name,
        &accepted_path.to_string_lossy(),
        Some(t.arrow_schema()),
    )?;
    for (k, s) in removing.iter().enumerate() {
        let failures = per_test[k];
        let status = s.status(failures, rows_in);
        let action = if failures == 0 {
            "none"
        } else if s.on_fail == OnFail::DeadLetter {
            "dead_lettered"
        } else {
            "quarantined"
        };
        result.tests.push(TestResult {
            node: t.name.clone(),
            node_kind: "source",
            spec: (*s).clone(),
            test: s.kind.name().into(),
            status,
            failures,
            rows_checked: rows_in,
            action,
            sample: std::mem::take(&mut samples[k])
                .into_iter()
                .map(|(_, v)| v)
                .collect(),
            contract_version: Some(contract.contract_version.clone()),
            declared_in: contract.file.display().to_string(),
        });
    }
    Ok(accepted_path)
}

/// Columns cast to a schema's types (the engine may hand back equivalent encodings, e.g. views).
pub fn conform(schema: &SchemaRef, columns: &[ArrayRef], what: &str) -> Result<RecordBatch> {
    let mut cols = Vec::with_capacity(columns.len());
    for (f, c) in schema.fields().iter().zip(columns) {
        cols.push(if c.data_type() == f.data_type() {
            c.clone()
        } else {
            arrow::compute::cast(c, f.data_type())
                .map_err(|e| Error::arrow(format!("{what}: column `{}`", f.name()), e))?
        });
    }
    RecordBatch::try_new(schema.clone(), cols).map_err(|e| Error::arrow(what.to_string(), e))
}

/// `accepted_values(stage)`: the test and the column it checks.
pub fn test_label(s: &TestSpec) -> String {
    match &s.column {
        Some(c) => format!("{}({c})", s.kind.name()),
        None => s.kind.name().to_string(),
    }
}

/// Quarantine files: the table's columns plus `rule`, `test`, `contract_version`, `run_id`.
pub fn quarantine_schema(t: &TableSchema) -> SchemaRef {
    let mut fields: Vec<Field> = t
        .arrow_schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    for n in ["rule", "test", "contract_version", "run_id"] {
        fields.push(Field::new(n, DataType::Utf8, true));
    }
    Arc::new(Schema::new(fields))
}

/// Freshness of a checked source against as_of: the newest load time at or before as_of, and
/// its age. A row stamped after as_of (a current-state table's later update, read at an earlier
/// `--as-of`) cannot make a source look fresher than as_of, so ages are never negative. A load time after the snapshot's own export
/// is in the future of the data (a clock ahead, a sentinel date such as 9999-12-31): the
/// source's freshness is then an error, whatever its newest plausible row says.
fn freshness(cx: &Context, table: &str, f: &Freshness) -> Result<FreshnessResult> {
    let c = ident(&f.loaded_at_field);
    let sql = format!(
        "SELECT MAX(CASE WHEN {c} <= {at} THEN {c} END), COUNT(CASE WHEN {c} > {export} THEN 1 END) \
         FROM {SOURCES}.{t}",
        t = ident(table),
        at = crate::engine::timestamp_literal(cx.as_of),
        export = crate::engine::timestamp_literal(cx.snapshot_as_of.max(cx.as_of)),
    );
    let b = cx.engine.query(&sql, &format!("freshness of `{table}`"))?;
    let max = b.first().and_then(|b| {
        let c = arrow::compute::cast(
            b.column(0),
            &DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None),
        )
        .ok()?;
        let c = arrow::compute::cast(&c, &DataType::Int64).ok()?;
        let c = c.as_primitive::<arrow::datatypes::Int64Type>();
        (!c.is_null(0)).then(|| c.value(0))
    });
    let future_rows = b
        .first()
        .and_then(|b| arrow::compute::cast(b.column(1), &DataType::Int64).ok())
        .map(|c| {
            c.as_primitive::<arrow::datatypes::Int64Type>()
                .value(0)
                .max(0) as u64
        })
        .unwrap_or(0);
    let age = max.map(|m| (cx.as_of - m) as f64 / 3_600_000_000.0);
    let status = match age {
        _ if future_rows > 0 => "error",
        None => "error",
        Some(a) if f.error_after_hours.is_some_and(|e| a > e) => "error",
        Some(a) if f.warn_after_hours.is_some_and(|w| a > w) => "warn",
        Some(_) => "pass",
    };
    Ok(FreshnessResult {
        source: table.to_string(),
        loaded_at_field: f.loaded_at_field.clone(),
        max_loaded_at: max,
        age_hours: age,
        warn_after_hours: f.warn_after_hours,
        error_after_hours: f.error_after_hours,
        status,
        future_rows,
    })
}

/// Every data test against the values that slip through naive comparisons: NaN, ±Inf, nulls,
/// signed zero and the range boundaries. Answers from IEEE 754 and dbt's semantics (a null is
/// not a range or value violation; boundaries are inclusive by default).
#[cfg(test)]
mod edge_values {
    use std::sync::Arc;

    use arrow::array::{Float64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::project::data_tests::parse_test;
    use crate::schema::ColumnType;

    /// x: 0, -0, 10, 5, NaN, +Inf, -Inf, null, 10.5, -0.5 (rows 1–10).
    fn checks(tests: &[&str]) -> Vec<u64> {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::new(&Default::default(), 1, dir.path(), 64 << 20).unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Float64, true)]));
        let x = Float64Array::from(vec![
            Some(0.0),
            Some(-0.0),
            Some(10.0),
            Some(5.0),
            Some(f64::NAN),
            Some(f64::INFINITY),
            Some(f64::NEG_INFINITY),
            None,
            Some(10.5),
            Some(-0.5),
        ]);
        let b = RecordBatch::try_new(schema.clone(), vec![Arc::new(x)]).unwrap();
        engine
            .register_batches(crate::engine::MODELS, "t", schema, vec![b])
            .unwrap();
        let warehouse = Warehouse::new(dir.path());
        let render = |s: &str| Ok(s.to_string());
        let cx = Context::for_tests(&engine, &warehouse, dir.path(), &render);
        let specs: Vec<TestSpec> = tests
            .iter()
            .map(|y| {
                let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(y).unwrap();
                parse_test(
                    Path::new("t.yml"),
                    "t",
                    Some(("x", ColumnType::Double)),
                    &v,
                    None,
                )
                .unwrap()
            })
            .collect();
        let rel = |t: &str| format!("models.{t}");
        run_checks(&cx, "t", "model", "models.t", &specs, &rel, None)
            .unwrap()
            .iter()
            .map(|r| r.failures)
            .collect()
    }

    #[test]
    fn non_finite_numbers_fail_every_range_and_nulls_none() {
        let failures = checks(&[
            // 10.5, NaN, +Inf, -Inf
            "{accepted_range: {max_value: 10}}",
            // -0.5, NaN, +Inf, -Inf: a one-sided range lets no non-finite value through (and
            // -0 is 0, not below it)
            "{accepted_range: {min_value: 0}}",
            // both sides: 10.5, -0.5, NaN, +Inf, -Inf
            "{accepted_range: {min_value: 0, max_value: 10}}",
            // exclusive bounds also drop the boundaries 0, -0 (= 0) and 10
            "{accepted_range: {min_value: 0, max_value: 10, inclusive: false}}",
            "not_null",
            // NaN, ±Inf, 10.5, -0.5 are not among 0, 5, 10 (-0 is 0); a null is no violation
            "{accepted_values: {values: [0, 5, 10], quote: false}}",
            // 0 and -0 are one value, twice; NaN once
            "unique",
        ]);
        assert_eq!(failures, vec![4, 4, 5, 8, 1, 5, 2]);
    }
}
