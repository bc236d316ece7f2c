//! Reading a source table of the snapshot: its Parquet files cast to the declared types, with
//! every value that does not fit (a wider integer or decimal than declared) dead-lettered row
//! by row — column, value and the whole record — before any rule runs.

use super::*;

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
pub(super) fn register_raw(
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
                kind: crate::project::data_tests::TestKind::Expression("typed".into()),
                column: None,
                rule: rule.to_string(),
                severity: crate::project::data_tests::Severity::Warn,
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
pub(super) struct DeadLetter<'a> {
    pub(super) cx: &'a Context<'a>,
    pub(super) table: String,
    pub(super) contract_version: String,
    writer: Option<TableWriter>,
    pub(super) rows: u64,
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
    pub(super) fn new(cx: &'a Context<'a>, table: &str, contract_version: &str) -> Self {
        DeadLetter {
            cx,
            table: table.into(),
            contract_version: contract_version.into(),
            writer: None,
            rows: 0,
            by_rule: BTreeMap::new(),
        }
    }

    pub(super) fn add(
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

    pub(super) fn finish(self) -> Result<()> {
        if let Some(w) = self.writer {
            w.finish()?;
        }
        Ok(())
    }
}

/// One cell as text.
pub(super) fn display(a: &ArrayRef, i: usize) -> String {
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
