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
//! that does not fit its declared type) are dead-lettered before the rules run.
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
use crate::engine::{Engine, RAW, SCRATCH, SOURCES, ident};
use crate::error::{Error, Result};
use crate::project::tests::{OnFail, Status, TestSpec};
use crate::project::{Freshness, SourceContract};
use crate::schema::TableSchema;
use crate::snapshot::{Snapshot, parquet_files};
use crate::table_io::{self, TableWriter};
use crate::warehouse::Warehouse;

pub mod checks;
mod ingest;
#[cfg(test)]
mod reference;

pub use checks::{check_sql, run_checks, run_singular};
pub use ingest::ingest_sql;

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

/// Whether a Parquet column of type `found` read as `want` needs a row-by-row check (the
/// value may not fit: a wider integer or decimal than declared).
fn narrowing(found: &DataType, want: &DataType) -> bool {
    use DataType as D;
    match (found, want) {
        (D::Int64 | D::UInt32 | D::UInt64, D::Int32) | (D::UInt64, D::Int64) => true,
        (D::Decimal128(p, s), D::Decimal128(wp, ws)) => {
            s > ws || (*p as i16 - *s as i16) > (*wp as i16 - *ws as i16)
        }
        _ => false,
    }
}

/// Register `raw.<table>`. Values that cannot be typed go to `dead_letter/`; returns whether
/// the table was rewritten (and so must be re-read through the ingest query).
fn register_raw(
    cx: &Context,
    contract: &SourceContract,
    t: &TableSchema,
    location: &Path,
    result: &mut SourceResult,
) -> Result<Option<PathBuf>> {
    let files = parquet_files(location)?;
    let mut needs_check = false;
    for f in &files {
        let (schema, _) = table_io::read_parquet_schema(f)?;
        for c in &t.columns {
            if let Ok(field) = schema.field_with_name(&c.name)
                && narrowing(field.data_type(), &c.data_type())
            {
                needs_check = true;
            }
        }
    }
    // A NaN or infinite float is no measurement: it is dead-lettered like a value that does
    // not fit its type (one scan of the float columns decides whether the table is rewritten).
    let floats: Vec<&str> = t
        .columns
        .iter()
        .filter(|c| c.data_type().is_floating())
        .map(|c| c.name.as_str())
        .collect();
    if !needs_check {
        cx.engine.register_parquet(
            RAW,
            &t.name,
            &location.to_string_lossy(),
            Some(t.arrow_schema()),
        )?;
        let non_finite = match floats.is_empty() {
            true => 0,
            false => count(
                cx.engine,
                &format!(
                    "{RAW}.{} WHERE {}",
                    ident(&t.name),
                    floats
                        .iter()
                        .map(|c| format!("NOT is_finite_value({})", ident(c)))
                        .collect::<Vec<_>>()
                        .join(" OR ")
                ),
                &t.name,
            )?,
        };
        if non_finite == 0 {
            return Ok(None);
        }
    }
    // The typed copy keeps each row's position in the snapshot as `_row` (see `ingest`).
    let typed_path = cx.staging.join("raw").join(format!("{}.parquet", t.name));
    let mut typed_fields: Vec<Field> = t
        .arrow_schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    typed_fields.push(Field::new(ROW, DataType::UInt64, false));
    let typed_schema = Arc::new(Schema::new(typed_fields));
    let mut typed = TableWriter::create(&typed_path, typed_schema.clone(), &t.plain_columns())?
        .encode_threads(cx.engine.threads());
    let mut dead = DeadLetter::new(cx, &t.name, &contract.contract_version);
    let mut row0 = 0u64;
    for f in &files {
        let (_, batches) = table_io::read_parquet(f)?;
        for b in batches {
            let mut ok = vec![true; b.num_rows()];
            let mut cols: Vec<ArrayRef> = Vec::new();
            for c in &t.columns {
                let src = b.column_by_name(&c.name).ok_or_else(|| {
                    Error::data("column is missing")
                        .with_path(f)
                        .with_table(&t.name)
                        .with_column(&c.name)
                })?;
                let opts = arrow::compute::CastOptions {
                    safe: true,
                    ..Default::default()
                };
                let cast = cast_with_options(src, &c.data_type(), &opts).map_err(|e| {
                    Error::data(format!(
                        "cannot be read as {}: {e}",
                        c.column_type.sql_name()
                    ))
                    .with_path(f)
                    .with_table(&t.name)
                    .with_column(&c.name)
                })?;
                let finite = c
                    .data_type()
                    .is_floating()
                    .then(|| arrow::compute::cast(&cast, &DataType::Float64))
                    .transpose()
                    .map_err(|e| Error::arrow(format!("typing `{}`", t.name), e))?;
                for i in 0..b.num_rows() {
                    if !ok[i] || !src.is_valid(i) {
                        continue;
                    }
                    let (error, rule) = if cast.is_null(i) {
                        (
                            format!("does not fit {}", c.column_type.sql_name()),
                            "untyped_value",
                        )
                    } else if finite.as_ref().is_some_and(|f| {
                        !f.as_primitive::<arrow::datatypes::Float64Type>()
                            .value(i)
                            .is_finite()
                    }) {
                        ("is not a finite number".to_string(), "non_finite_value")
                    } else {
                        continue;
                    };
                    ok[i] = false;
                    dead.add(
                        row0 + i as u64,
                        &c.name,
                        &display(src, i),
                        &error,
                        record_json(&b, i),
                        rule,
                    )?;
                }
                cols.push(cast);
            }
            cols.push(Arc::new(UInt64Array::from_iter_values(
                row0..row0 + b.num_rows() as u64,
            )));
            let typed_batch = RecordBatch::try_new(typed_schema.clone(), cols)
                .map_err(|e| Error::arrow(format!("typing `{}`", t.name), e))?;
            let keep = BooleanArray::from(ok);
            typed.write(
                &filter_record_batch(&typed_batch, &keep)
                    .map_err(|e| Error::arrow("filtering", e))?,
            )?;
            row0 += b.num_rows() as u64;
        }
    }
    typed.finish()?;
    result.rows_in += dead.rows;
    result.dead_lettered += dead.rows;
    for (rule, (rows, sample)) in &dead.by_rule {
        result.tests.push(TestResult {
            node: t.name.clone(),
            node_kind: "source",
            spec: TestSpec {
                kind: crate::project::tests::TestKind::Expression("typed".into()),
                column: None,
                rule: rule.to_string(),
                severity: crate::project::tests::Severity::Warn,
                on_fail: OnFail::DeadLetter,
                error_if: None,
                warn_if: None,
                where_: None,
            },
            test: "type".into(),
            status: Status::Warn,
            failures: *rows,
            rows_checked: row0,
            action: "dead_lettered",
            sample: sample.clone(),
            contract_version: Some(contract.contract_version.clone()),
            declared_in: t.file.display().to_string(),
        });
    }
    dead.finish()?;
    cx.engine.register_parquet(
        RAW,
        &t.name,
        &typed_path.to_string_lossy(),
        Some(t.arrow_schema()),
    )?;
    Ok(Some(typed_path))
}

/// The dead-letter file of a table in this run, created on first use.
struct DeadLetter<'a> {
    cx: &'a Context<'a>,
    table: String,
    contract_version: String,
    writer: Option<TableWriter>,
    rows: u64,
    /// Per rule (why a value could not be taken): rows and a sample of them.
    by_rule: BTreeMap<String, (u64, Vec<serde_json::Value>)>,
}

fn dead_letter_schema() -> SchemaRef {
    let v = |n: &str| Field::new(n, DataType::Utf8, true);
    Arc::new(Schema::new(vec![
        Field::new("row_number", DataType::Int64, true),
        v("column_name"),
        v("raw_value"),
        v("error"),
        v("record"),
        v("rule"),
        v("contract_version"),
        v("run_id"),
    ]))
}

impl<'a> DeadLetter<'a> {
    fn new(cx: &'a Context<'a>, table: &str, contract_version: &str) -> Self {
        DeadLetter {
            cx,
            table: table.into(),
            contract_version: contract_version.into(),
            writer: None,
            rows: 0,
            by_rule: BTreeMap::new(),
        }
    }

    fn add(
        &mut self,
        row: u64,
        column: &str,
        value: &str,
        error: &str,
        record: serde_json::Value,
        rule: &str,
    ) -> Result<()> {
        if self.writer.is_none() {
            let path = self
                .cx
                .warehouse
                .dead_letter_file(&self.table, self.cx.run_id);
            self.writer = Some(TableWriter::create_new(&path, dead_letter_schema(), &[])?);
        }
        let per_rule = self.by_rule.entry(rule.to_string()).or_default();
        per_rule.0 += 1;
        if per_rule.1.len() < SAMPLE_ROWS {
            per_rule.1.push(record.clone());
        }
        let s = |x: &str| Arc::new(StringArray::from(vec![x])) as ArrayRef;
        let b = RecordBatch::try_new(
            dead_letter_schema(),
            vec![
                Arc::new(Int64Array::from(vec![row as i64])),
                s(column),
                s(value),
                s(error),
                s(&record.to_string()),
                s(rule),
                s(&self.contract_version),
                s(self.cx.run_id),
            ],
        )
        .map_err(|e| Error::arrow("dead letter row", e))?;
        if let Some(w) = &mut self.writer {
            w.write(&b)?;
        }
        self.rows += 1;
        Ok(())
    }

    fn finish(self) -> Result<()> {
        if let Some(w) = self.writer {
            w.finish()?;
        }
        Ok(())
    }
}

/// One cell as text.
fn display(a: &ArrayRef, i: usize) -> String {
    if a.is_null(i) {
        return String::new();
    }
    ArrayFormatter::try_new(a.as_ref(), &FormatOptions::default())
        .map(|f| f.value(i).to_string())
        .unwrap_or_default()
}

/// One row as a JSON object of text values (null stays null).
pub fn record_json(b: &RecordBatch, i: usize) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (f, c) in b.schema().fields().iter().zip(b.columns()) {
        if f.name().starts_with("_v") || f.name() == "_rule" || f.name() == ROW {
            continue;
        }
        let v = if c.is_null(i) {
            serde_json::Value::Null
        } else {
            serde_json::Value::String(display(c, i))
        };
        m.insert(f.name().clone(), v);
    }
    serde_json::Value::Object(m)
}

/// A data-test query and the small tables it reads, to be materialised first, in order.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub materialize: Vec<(String, String)>,
    pub sql: String,
}

impl Compiled {
    /// As one script: `CREATE TABLE … AS …;` per materialised table, then the query.
    pub fn script(&self) -> String {
        let mut s = String::new();
        for (name, sql) in &self.materialize {
            s.push_str(&format!("CREATE TABLE {name} AS {sql};\n"));
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
    let mut samples: Vec<Vec<serde_json::Value>> = vec![Vec::new(); removing.len()];
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
            if samples[k].len() < SAMPLE_ROWS {
                samples[k].push(record_json(&bad_batch, i));
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
            sample: std::mem::take(&mut samples[k]),
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

/// The same contracts as one DuckDB SQL script, for side-by-side benchmarks: for each source
/// in order, label the raw rows, write the accepted rows and the quarantined ones to Parquet,
/// and compute the check counts — the work `gtmos build` does in its ingest + contracts stage.
/// `${SNAPSHOT}` and `${OUT}` are left for the caller to substitute.
pub fn duckdb_script(project: &crate::project::Project, as_of: i64) -> Result<String> {
    let renderer = crate::project::Renderer::new(project, Some(as_of), None);
    let render = |text: &str| {
        renderer
            .text(text)
            .map(|sql| duckdb_dialect(&sql, as_of).replace(&format!("{SOURCES}."), "src_"))
    };
    let mut s = String::from(
        "-- Generated by gtmos from pipelines/ (contracts::duckdb_script); do not edit by hand.\n\
         -- The ingest + contracts stage of `gtmos build`, as DuckDB SQL over the same Parquet files.\n",
    );
    s.push_str(DUCKDB_PRELUDE);
    let copy = DUCKDB_COPY_OPTIONS;
    for c in &project.sources {
        let t = project.registry.expect_table(&c.table)?;
        let name = ident(&t.name);
        let raw = format!("read_parquet('${{SNAPSHOT}}/{}.parquet')", t.name);
        s.push_str(&format!("\n-- source {}\n", t.name));
        let removing: Vec<&TestSpec> = c
            .tests
            .iter()
            .filter(|x| x.on_fail.removes_rows())
            .collect();
        let this = t.name.clone();
        let rel = |to: &str| {
            if to == this {
                format!("read_parquet('${{SNAPSHOT}}/{to}.parquet')")
            } else {
                format!("src_{to}")
            }
        };
        if removing.is_empty() {
            s.push_str(&format!(
                "CREATE VIEW src_{} AS SELECT * FROM {raw};\n",
                t.name
            ));
        } else {
            let c = ingest_sql(t, &removing, &rel, &render)?;
            let local = |sql: &str| {
                sql.replace(&format!("{RAW}.{name}"), &raw)
                    .replace(&format!("{SCRATCH}."), "scratch_")
            };
            // The rows with their position, as `ingest` reads them.
            s.push_str(&format!(
                "CREATE OR REPLACE TEMP VIEW {} AS SELECT * EXCLUDE (file_row_number), CAST(file_row_number AS UBIGINT) AS _row FROM read_parquet('${{SNAPSHOT}}/{}.parquet', file_row_number = true);\n",
                local(&ingest::rows_relation(&t.name)),
                t.name
            ));
            for (table, sql) in &c.materialize {
                s.push_str(&format!(
                    "CREATE OR REPLACE TEMP TABLE {} AS {};\n",
                    local(table),
                    local(sql)
                ));
            }
            let sql = local(&c.sql);
            let cols: Vec<String> = t.columns.iter().map(|c| ident(&c.name)).collect();
            s.push_str(&format!("CREATE TABLE labelled_{} AS {sql};\n", t.name));
            s.push_str(&format!(
                "CREATE TABLE src_{0} AS SELECT {1} FROM labelled_{0} WHERE _rule IS NULL;\n",
                t.name,
                cols.join(", ")
            ));
            s.push_str(&format!(
                "COPY src_{0} TO '${{OUT}}/{0}.parquet' {copy};\n",
                t.name
            ));
            s.push_str(&format!("COPY (SELECT * FROM labelled_{0} WHERE _rule IS NOT NULL) TO '${{OUT}}/quarantine_{0}.parquet' {copy};\n", t.name));
            s.push_str(&format!("DROP TABLE labelled_{};\n", t.name));
        }
        let checks: Vec<TestSpec> = c
            .tests
            .iter()
            .filter(|x| !x.on_fail.removes_rows())
            .cloned()
            .collect();
        s.push_str(&duckdb_checks(
            &t.name,
            &format!("src_{}", t.name),
            &checks,
            &rel,
            &render,
        )?);
    }
    Ok(s)
}

/// How the side-by-side DuckDB scripts write Parquet: zstd level 1, as gtmos does.
pub const DUCKDB_COPY_OPTIONS: &str = "(FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)";

/// The data tests `tests` of `relation` as DuckDB statements (the scratch tables they compute
/// first, then the one query counting each test's failures): what [`run_checks`] runs.
pub fn duckdb_checks(
    node: &str,
    relation: &str,
    tests: &[TestSpec],
    rel: &dyn Fn(&str) -> String,
    render: &dyn Fn(&str) -> Result<String>,
) -> Result<String> {
    if tests.is_empty() {
        return Ok(String::new());
    }
    let (c, _) = check_sql(node, relation, true, tests, rel, render)?;
    let local = |sql: &str| sql.replace(&format!("{SCRATCH}."), "scratch_");
    let mut s = String::new();
    for (table, sql) in &c.materialize {
        s.push_str(&format!(
            "CREATE OR REPLACE TEMP TABLE {} AS {};\n",
            local(table),
            local(sql)
        ));
    }
    s.push_str(&local(&c.sql));
    s.push_str(";\n");
    Ok(s)
}

/// What a DuckDB script needs before SQL rewritten by [`duckdb_dialect`]: UTC, integer
/// division as DataFusion divides integers, and gtmos' day-number, finiteness and key-hash
/// functions as macros (`key_hash` as DuckDB's `hash`, for up to eight columns).
pub const DUCKDB_PRELUDE: &str = "SET TimeZone = 'UTC';
SET integer_division = true;
CREATE MACRO day_number(d) AS CAST(date_diff('day', DATE '1970-01-01', d) AS INTEGER);
CREATE MACRO date_of_day_number(n) AS DATE '1970-01-01' + CAST(n AS INTEGER);
CREATE MACRO is_finite_value(x) AS isfinite(x);
CREATE MACRO key_hash(a) AS hash(a), (a, b) AS hash(a, b), (a, b, c) AS hash(a, b, c),
  (a, b, c, d) AS hash(a, b, c, d), (a, b, c, d, e) AS hash(a, b, c, d, e),
  (a, b, c, d, e, f) AS hash(a, b, c, d, e, f), (a, b, c, d, e, f, g) AS hash(a, b, c, d, e, f, g),
  (a, b, c, d, e, f, g, h) AS hash(a, b, c, d, e, f, g, h);
";

/// Rewrite gtmos' engine-specific SQL for DuckDB (for the side-by-side benchmarks): timestamp
/// literals, `arrow_cast` as `CAST`, `round(x, d)` as DataFusion rounds a double (scaled by
/// 10^d, rounded half away from zero, scaled back — DuckDB 2 rounds the double's exact binary
/// value instead, so 5.595, stored just below it, went to 5.59 there and 5.60 here),
/// `cardinality` of a list as `len`, and `trailing_median` as DuckDB's windowed median over a
/// RANGE frame ending just before the current row. Run the result after [`DUCKDB_PRELUDE`].
pub fn duckdb_dialect(sql: &str, as_of: i64) -> String {
    let lit = crate::engine::timestamp_literal(as_of);
    let mut out = sql.replace(&lit, &format!("make_timestamp({as_of})::TIMESTAMPTZ"));
    // arrow_cast(x, 'Date32') → CAST(x AS DATE)
    let mut from = 0;
    while let Some((at, args, close)) = next_call(&out, "arrow_cast", from) {
        let [expr, ty] = args.as_slice() else {
            from = at + "arrow_cast(".len();
            continue;
        };
        let duck = match ty.trim_matches('\'') {
            "Date32" => "DATE",
            "Int32" => "INTEGER",
            "Int64" => "BIGINT",
            "Float64" => "DOUBLE",
            "Boolean" => "BOOLEAN",
            t if t.starts_with("Timestamp") => "TIMESTAMPTZ",
            t if t.starts_with("Decimal128") => "DECIMAL(18,2)",
            _ => "VARCHAR",
        };
        let cast = format!("CAST({expr} AS {duck})");
        out = format!("{}{cast}{}", &out[..at], &out[close + 1..]);
        from = at + "CAST(".len();
    }
    // round(x, d) → (round((x) * 1ed) / 1ed), inner calls next
    let mut from = 0;
    while let Some((at, args, close)) = next_call(&out, "round", from) {
        let [expr, digits] = args.as_slice() else {
            from = at + "round(".len();
            continue;
        };
        let Ok(d) = digits.parse::<u32>() else {
            from = at + "round(".len();
            continue;
        };
        let scaled = format!("(round(({expr}) * 1e{d}) / 1e{d})");
        out = format!("{}{scaled}{}", &out[..at], &out[close + 1..]);
        from = at + "(round((".len();
    }
    out = out.replace("cardinality(", "len(");
    let mut from = 0;
    while let Some((at, args, close)) = next_call(&out, "trailing_median", from) {
        let rest = &out[close + 1..];
        let Some(over_at) = rest.to_ascii_lowercase().find("over") else {
            break;
        };
        let Some(open) = rest[over_at..].find('(').map(|i| over_at + i) else {
            break;
        };
        let (Some(end), [value, _ts, min, days]) = (closing_paren(rest, open), args.as_slice())
        else {
            break;
        };
        // The window as a frame: the days before the current row's time, up to just before it.
        let frame = format!(
            "({} RANGE BETWEEN INTERVAL ({days}) DAYS PRECEDING AND INTERVAL 1 MICROSECOND PRECEDING)",
            rest[open + 1..end].trim()
        );
        let replacement = format!(
            "(CASE WHEN count({value}) OVER {frame} >= {min} THEN median({value}) OVER {frame} END)"
        );
        out = format!("{}{replacement}{}", &out[..at], &rest[end + 1..]);
        from = at + replacement.len();
    }
    out
}

/// The first call of `name(…)` in `sql` at or after byte `from` (the name not part of a
/// longer identifier; any case): where it starts, its top-level arguments, and where its
/// closing parenthesis is.
fn next_call<'a>(sql: &'a str, name: &str, from: usize) -> Option<(usize, Vec<&'a str>, usize)> {
    let lower = sql.to_ascii_lowercase();
    let pattern = format!("{}(", name.to_ascii_lowercase());
    let mut search = from;
    loop {
        let at = search + lower.get(search..)?.find(&pattern)?;
        search = at + pattern.len();
        let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        if sql[..at].chars().next_back().is_some_and(word) {
            continue;
        }
        let open = at + name.len();
        let close = closing_paren(sql, open)?;
        return Some((at, split_args(&sql[open + 1..close]), close));
    }
}

/// Where the parenthesis opened at byte `open` closes (parentheses in quotes do not count).
fn closing_paren(sql: &str, open: usize) -> Option<usize> {
    let (mut depth, mut quoted) = (0usize, false);
    for (i, ch) in sql[open..].char_indices() {
        match ch {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(open + i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The top-level, trimmed arguments of a call's inside: commas in quotes or parentheses do
/// not split (type names like 'Timestamp(µs, "UTC")' hold commas).
fn split_args(inner: &str) -> Vec<&str> {
    let (mut depth, mut quoted, mut start) = (0usize, false, 0);
    let mut args = Vec::new();
    for (i, ch) in inner.char_indices() {
        match ch {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth = depth.saturating_sub(1),
            ',' if !quoted && depth == 0 => {
                args.push(inner[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    args.push(inner[start..].trim());
    args
}

#[cfg(test)]
mod duckdb_tests {
    use super::*;

    #[test]
    fn dialect_rewrites_literals_and_the_trailing_median() {
        let sql = format!(
            "x <= {} and u <= 10 * coalesce(trailing_median(u, t, 7, 30) over (partition by a, b order by t), u)",
            crate::engine::timestamp_literal(5)
        );
        let d = duckdb_dialect(&sql, 5);
        assert_eq!(
            d,
            "x <= make_timestamp(5)::TIMESTAMPTZ and u <= 10 * coalesce((CASE WHEN count(u) OVER (partition by a, b order by t RANGE BETWEEN INTERVAL (30) DAYS PRECEDING AND INTERVAL 1 MICROSECOND PRECEDING) >= 7 THEN median(u) OVER (partition by a, b order by t RANGE BETWEEN INTERVAL (30) DAYS PRECEDING AND INTERVAL 1 MICROSECOND PRECEDING) END), u)"
        );
    }
    #[test]
    fn dialect_rounds_doubles_as_datafusion_does() {
        assert_eq!(
            duckdb_dialect(
                "round(a.x * 2, 2) + myround(y, 2) + round(z) + round(w, d)",
                0
            ),
            "(round((a.x * 2) * 1e2) / 1e2) + myround(y, 2) + round(z) + round(w, d)"
        );
        assert_eq!(
            duckdb_dialect("ROUND(round(arrow_cast(x, 'Float64'), 9) / 3, 2)", 0),
            "(round(((round((CAST(x AS DOUBLE)) * 1e9) / 1e9) / 3) * 1e2) / 1e2)"
        );
        // What the rewrite mirrors: DataFusion scales, rounds half away from zero and scales
        // back, so 12 × 0.46625 (= 5.595, stored as 5.59499999…) rounds to 5.6; rounding the
        // double's exact value (DuckDB 2, Python) gives 5.59. An upgrade that changes this
        // must change the rewrite.
        let dir = tempfile::tempdir().unwrap();
        let e = crate::engine::Engine::new(&Default::default(), 1, dir.path(), 64 << 20).unwrap();
        let b = e
            .query(
                "select round(12 * (0.5 * 0.4325 + 0.25 * 0.5 + 0.25 * 0.5), 2) as r",
                "t",
            )
            .unwrap();
        let r = b[0]
            .column(0)
            .as_primitive::<arrow::datatypes::Float64Type>()
            .value(0);
        assert_eq!(r, 5.6);
    }

    #[test]
    fn dialect_rewrites_casts_with_commas_in_their_type_and_list_lengths() {
        let d = duckdb_dialect(
            "arrow_cast(d - interval '3 days', 'Timestamp(Microsecond, Some(\"UTC\"))') < t and cardinality(l) > arrow_cast(x, 'Float64')",
            0,
        );
        assert_eq!(
            d,
            "CAST(d - interval '3 days' AS TIMESTAMPTZ) < t and len(l) > CAST(x AS DOUBLE)"
        );
    }
}

#[cfg(test)]
mod committed_script {
    #[test]
    fn the_committed_duckdb_benchmark_script_is_current() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let project = crate::project::Project::load(&root.join("pipelines")).unwrap();
        let as_of = crate::calendar::parse_ts("2026-01-01T00:00:00Z").unwrap();
        let fresh = super::duckdb_script(&project, as_of).unwrap();
        let path = root.join("benches/contracts_duckdb.sql");
        if std::env::var("GTMOS_UPDATE_SCRIPT").is_ok() {
            std::fs::write(&path, &fresh).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "benches/contracts_duckdb.sql is stale: rerun with GTMOS_UPDATE_SCRIPT=1"
        );
    }
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
    use crate::project::tests::parse_test;
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
