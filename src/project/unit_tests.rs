//! Unit tests of models, dbt-style (`unit_tests:` in a model properties file): one model run
//! on given input rows, its output compared with expected rows. They pin a model's SQL to a
//! worked example whose answer comes from outside the code (the SPEC's oracles), and analysts
//! read and extend them beside the model. `gtmos test` runs them; so does `cargo test`.
//!
//! ```yaml
//! unit_tests:
//!   - name: magic_number_spec_oracle
//!     model: metric_magic_number
//!     given:
//!       - input: ref('metric_revenue')
//!         rows:
//!           - { account_id: A, segment: SMB, month: 2024-01-01, recurring_usd: 30000 }
//!       - input: ref('spend_by_month')
//!         rows: []
//!     expect:
//!       rows:
//!         - { cadence: quarterly, period: 2024-04-01, segment: SMB, metric_value: 1.0 }
//! ```
//!
//! - Each input is typed as the build reads it: a source by its declaration, a model by its
//!   published columns (planned over empty inputs). Columns a given row leaves out are null; a
//!   column the input does not have is an error; a list column takes a YAML list. A source not
//!   given is empty; a model not given is computed from empty sources, so a constant model
//!   (the `segments` list) keeps its rows and most others are empty.
//! - Only the columns the expected rows name are compared, as a multiset (row order does not
//!   matter). Numbers match within `tolerance` (default 1e-9: absolute up to 1, relative to
//!   the expected value above 1); other values are compared as the model's column type displays them.
//! - `overrides.as_of` renders `{{ as_of }}` (required when the model reads it); `vars`
//!   replace declared vars for this test only.
//!
//! Its length (over 700 lines) is one runner (about 620 lines with its documentation) and its
//! unit tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, StringArray, new_null_array};
use arrow::compute::{CastOptions, cast_with_options, concat_batches};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde::Deserialize;
use serde_yaml_ng::Value;

use super::template::{self, Call, Piece, Ref};
use super::{Materialized, Model, Project, Renderer};
use crate::engine::{CLOSED, Engine, MODELS, SOURCES};
use crate::error::{Error, Result};

/// A row as written: column → scalar.
pub type Row = BTreeMap<String, Value>;

/// The `build_id` a unit test's model sees.
const BUILD_ID: &str = "unit_test";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitTestDecl {
    pub name: String,
    pub model: String,
    pub description: Option<String>,
    #[serde(default)]
    pub given: Vec<GivenDecl>,
    pub expect: ExpectDecl,
    #[serde(default)]
    pub overrides: OverridesDecl,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GivenDecl {
    /// `ref('model')` or `source('snapshot', 'table')`.
    pub input: String,
    #[serde(default)]
    pub rows: Vec<Row>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectDecl {
    #[serde(default)]
    pub rows: Vec<Row>,
    pub tolerance: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverridesDecl {
    #[serde(default)]
    pub vars: BTreeMap<String, Value>,
    pub as_of: Option<String>,
}

/// A unit test, parsed.
#[derive(Debug, Clone)]
pub struct UnitTest {
    pub name: String,
    pub model: String,
    pub file: PathBuf,
    pub description: Option<String>,
    pub given: Vec<(Ref, Vec<Row>)>,
    pub expect: Vec<Row>,
    /// The columns the expected rows name.
    pub columns: Vec<String>,
    pub tolerance: f64,
    pub vars: BTreeMap<String, String>,
    pub as_of: Option<i64>,
}

impl UnitTest {
    pub fn new(file: &Path, d: UnitTestDecl) -> Result<UnitTest> {
        let err = |m: String| Error::pipeline(file, format!("unit test `{}`: {m}", d.name));
        let mut given = Vec::new();
        for g in &d.given {
            let pieces = template::parse(&format!("{{{{ {} }}}}", g.input))
                .map_err(|e| err(format!("input `{}`: {}", g.input, e.message)))?;
            let refs = template::refs(&pieces);
            let [r] = refs.as_slice() else {
                return Err(err(format!(
                    "input `{}` must be one ref('model') or source('snapshot', 'table')",
                    g.input
                )));
            };
            if given.iter().any(|(x, _)| x == r) {
                return Err(err(format!("input `{}` is given twice", g.input)));
            }
            given.push((r.clone(), g.rows.clone()));
        }
        let columns: Vec<String> = d
            .expect
            .rows
            .first()
            .map(|r| r.keys().cloned().collect())
            .unwrap_or_default();
        if let Some(i) = d
            .expect
            .rows
            .iter()
            .position(|r| r.keys().ne(columns.iter()))
        {
            return Err(err(format!(
                "expected row {} names other columns than the first; every expected row names the same columns",
                i + 1
            )));
        }
        let mut vars = BTreeMap::new();
        for (k, v) in &d.overrides.vars {
            let v = crate::schema::scalar_text(v)
                .ok_or_else(|| err(format!("var `{k}` must be a scalar")))?;
            vars.insert(k.clone(), v);
        }
        let as_of = match &d.overrides.as_of {
            Some(t) => Some(
                crate::calendar::parse_ts(t).map_err(|e| err(format!("overrides.as_of: {e}")))?,
            ),
            None => None,
        };
        let tolerance = d.expect.tolerance.unwrap_or(1e-9);
        if !(tolerance >= 0.0 && tolerance.is_finite()) {
            return Err(err("expect.tolerance must be a finite number ≥ 0".into()));
        }
        Ok(UnitTest {
            name: d.name,
            model: d.model,
            file: file.to_path_buf(),
            description: d.description,
            given,
            expect: d.expect.rows,
            columns,
            tolerance,
            vars,
            as_of,
        })
    }

    /// Checked against the loaded project: the model exists, every given input is one it
    /// reads, every var is declared and the model's `{{ as_of }}` has a value.
    pub fn check(&self, project: &Project) -> Result<()> {
        let err =
            |m: String| Error::pipeline(&self.file, format!("unit test `{}`: {m}", self.name));
        let model = project
            .model(&self.model)
            .ok_or_else(|| err(format!("no model `{}`", self.model)))?;
        for (r, _) in &self.given {
            if !model.refs.contains(r) {
                return Err(err(format!(
                    "model `{}` does not read {}",
                    self.model,
                    describe(r)
                )));
            }
        }
        if let Some(v) = self.vars.keys().find(|v| !project.vars.contains_key(*v)) {
            return Err(err(format!("var `{v}` is not a var of the project")));
        }
        if self.as_of.is_none() && reads_as_of(&model.pieces) {
            return Err(err(format!(
                "model `{}` reads {{{{ as_of }}}}: give the test `overrides: {{as_of: …}}`",
                self.model
            )));
        }
        Ok(())
    }
}

fn describe(r: &Ref) -> String {
    match r {
        Ref::Model(m) => format!("ref('{m}')"),
        Ref::Source(t) => format!("source('snapshot', '{t}')"),
    }
}

fn reads_as_of(pieces: &[Piece]) -> bool {
    pieces.iter().any(|p| {
        matches!(
            p,
            Piece::Call {
                call: Call::AsOf | Call::AsOfDate | Call::InputsLoadedAt(_),
                ..
            }
        )
    })
}

/// One unit test's result: `failure` says what differed (or what failed to run).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Outcome {
    pub name: String,
    pub model: String,
    pub file: PathBuf,
    pub failure: Option<String>,
}

/// Run the project's unit tests whose name or model is in `select` (all when empty).
pub fn run(project: &Project, select: &[String]) -> Result<Vec<Outcome>> {
    for s in select {
        if !project
            .unit_tests
            .iter()
            .any(|t| &t.name == s || &t.model == s)
        {
            return Err(Error::usage(format!(
                "--select `{s}`: no unit test or tested model of that name"
            )));
        }
    }
    let chosen: Vec<&UnitTest> = project
        .unit_tests
        .iter()
        .filter(|t| select.is_empty() || select.contains(&t.name) || select.contains(&t.model))
        .collect();
    if chosen.is_empty() {
        return Ok(Vec::new());
    }
    // The engines' spill directory (nothing this small spills), one per call.
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let spill =
        std::env::temp_dir().join(format!("gtmos-unit-tests-{}-{call}", std::process::id()));
    let result = (|| {
        let schemas = published_schemas(project, &spill)?;
        chosen
            .iter()
            .map(|t| run_one(project, t, &schemas, &spill))
            .collect()
    })();
    let _ = std::fs::remove_dir_all(&spill);
    result
}

/// A small engine with every source empty and every frozen model's `closed` table empty.
fn engine(project: &Project, spill: &Path) -> Result<Engine> {
    let engine = Engine::new(&project.engine, 1, spill, 256 << 20)?;
    for t in project.registry.tables() {
        engine.register_batches(SOURCES, &t.name, t.arrow_schema(), vec![])?;
    }
    for m in project.models.iter().filter(|m| m.freeze.is_some()) {
        engine.register_batches(CLOSED, &m.name, m.contract_schema(), vec![])?;
    }
    Ok(engine)
}

/// The published columns of every model, as the models downstream read them: each model
/// planned, in build order, over empty inputs.
fn published_schemas(project: &Project, spill: &Path) -> Result<BTreeMap<String, SchemaRef>> {
    let engine = engine(project, spill)?;
    let renderer = Renderer::new(project, Some(0), Some(BUILD_ID));
    let mut out = BTreeMap::new();
    for m in &project.models {
        let sql = published_sql(&engine, &renderer, project, m)?;
        engine.register_view(MODELS, &m.name, &sql, &format!("model `{}`", m.name))?;
        out.insert(
            m.name.clone(),
            engine.schema_of(
                &format!("{MODELS}.{}", crate::engine::ident(&m.name)),
                "unit test",
            )?,
        );
    }
    Ok(out)
}

/// A model's query with its published columns (its contract and `build_id`), as the build
/// writes it.
fn published_sql(
    engine: &Engine,
    renderer: &Renderer,
    project: &Project,
    model: &Model,
) -> Result<String> {
    // (A CTE marked `AS MATERIALIZED` is inlined: the same rows, on inputs this small.)
    let sql = crate::engine::ctes::without_hints(&renderer.model(
        project,
        model,
        &Renderer::relation,
        &|_| None,
    )?);
    if model.materialized == Materialized::View {
        return Ok(sql);
    }
    let what = format!("model `{}`", model.name);
    let planned = engine.sql(&sql, &what)?;
    let produced: Vec<(&str, &DataType)> = planned
        .schema()
        .fields()
        .iter()
        .map(|f| (f.name().as_str(), f.data_type()))
        .collect();
    let select = model.output_select(&produced, BUILD_ID)?;
    Ok(format!("SELECT {select} FROM ({sql}) m"))
}

fn run_one(
    project: &Project,
    t: &UnitTest,
    schemas: &BTreeMap<String, SchemaRef>,
    spill: &Path,
) -> Result<Outcome> {
    let mut project = project.clone();
    project.override_vars(&t.vars)?;
    let model = project
        .model(&t.model)
        .ok_or_else(|| Error::Internal(format!("unit test `{}`: no model", t.name)))?
        .clone();
    let engine = engine(&project, spill)?;
    // Models read but not given: computed from empty sources, with what they read in turn.
    let given = |r: &Ref| t.given.iter().any(|(g, _)| g == r);
    let mut needed: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    for r in model.refs.iter().filter(|r| !given(r)) {
        if let Ref::Model(m) = r {
            needed.insert(m.clone());
            needed.extend(project.upstream(m).into_iter().filter_map(|u| match u {
                Ref::Model(x) => Some(x),
                Ref::Source(_) => None,
            }));
        }
    }
    let renderer = Renderer::new(&project, t.as_of, Some(BUILD_ID));
    for m in project.models.iter().filter(|m| needed.contains(&m.name)) {
        let sql = published_sql(&engine, &renderer, &project, m)?;
        engine.register_view(MODELS, &m.name, &sql, &format!("model `{}`", m.name))?;
    }
    for r in model.refs.iter().filter(|r| given(r)) {
        let (schema_name, name, schema) = match r {
            Ref::Model(m) => (MODELS, m, schemas.get(m).cloned()),
            Ref::Source(s) => (
                SOURCES,
                s,
                project.registry.table(s).map(|x| x.arrow_schema()),
            ),
        };
        let schema = schema.ok_or_else(|| {
            Error::Internal(format!(
                "unit test `{}`: {} has no schema",
                t.name,
                describe(r)
            ))
        })?;
        let rows = t
            .given
            .iter()
            .find(|(g, _)| g == r)
            .map(|(_, rows)| rows.as_slice())
            .unwrap_or(&[]);
        // Any column may be left null in a given row, including ones the input never leaves null.
        let schema = Arc::new(arrow::datatypes::Schema::new(
            schema
                .fields()
                .iter()
                .map(|f| f.as_ref().clone().with_nullable(true))
                .collect::<Vec<_>>(),
        ));
        let batch = given_batch(&schema, rows).map_err(|m| {
            Error::pipeline(
                &t.file,
                format!("unit test `{}`, given {}: {m}", t.name, describe(r)),
            )
        })?;
        engine.register_batches(schema_name, name, schema, vec![batch])?;
    }
    let ran = published_sql(&engine, &renderer, &project, &model)
        .and_then(|sql| engine.query(&sql, &format!("model `{}`", model.name)));
    let failure = match ran {
        Err(e) => Some(format!("the model did not run: {e}")),
        Ok(batches) => compare(t, &batches).map_err(|m| {
            Error::pipeline(&t.file, format!("unit test `{}`, expect: {m}", t.name))
        })?,
    };
    Ok(Outcome {
        name: t.name.clone(),
        model: t.model.clone(),
        file: t.file.clone(),
        failure,
    })
}

/// The text a YAML scalar is read from (None for null).
fn scalar_text(v: &Value) -> std::result::Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        other => crate::schema::scalar_text(other)
            .map(Some)
            .ok_or_else(|| format!("{other:?} is not a scalar")),
    }
}

/// YAML values (None: absent) as an array of type `to`: scalars parsed from their text, a
/// list of text from a YAML list.
fn column(values: &[Option<&Value>], to: &DataType) -> std::result::Result<ArrayRef, String> {
    if let DataType::List(item) = to {
        if item.data_type() != &DataType::Utf8 {
            return Err(format!("lists of {} cannot be given", item.data_type()));
        }
        let mut b = arrow::array::ListBuilder::new(arrow::array::StringBuilder::new())
            .with_field(item.clone());
        for (i, v) in values.iter().enumerate() {
            match v {
                None | Some(Value::Null) => b.append_null(),
                Some(Value::Sequence(items)) => {
                    for x in items {
                        let text = scalar_text(x).map_err(|m| format!("row {}: {m}", i + 1))?;
                        b.values().append_option(text);
                    }
                    b.append(true);
                }
                Some(other) => {
                    return Err(format!(
                        "row {}: {other:?} is not a list (write [a, b], or [] for none)",
                        i + 1
                    ));
                }
            }
        }
        return Ok(Arc::new(b.finish()));
    }
    let texts = values
        .iter()
        .enumerate()
        .map(|(i, v)| match v {
            None => Ok(None),
            Some(v) => scalar_text(v).map_err(|m| format!("row {}: {m}", i + 1)),
        })
        .collect::<std::result::Result<Vec<_>, String>>()?;
    typed(texts, to)
}

/// Parse texts as `to` (exactly: a value that does not parse is an error, never a null).
fn typed(texts: Vec<Option<String>>, to: &DataType) -> std::result::Result<ArrayRef, String> {
    if texts.iter().all(Option::is_none) {
        return Ok(new_null_array(to, texts.len()));
    }
    let strings: ArrayRef = Arc::new(StringArray::from(texts));
    let options = CastOptions {
        safe: false,
        ..Default::default()
    };
    cast_with_options(&strings, to, &options).map_err(|e| e.to_string())
}

/// Given rows as one batch of the input's schema.
fn given_batch(schema: &SchemaRef, rows: &[Row]) -> std::result::Result<RecordBatch, String> {
    for (i, r) in rows.iter().enumerate() {
        if let Some(c) = r.keys().find(|c| schema.field_with_name(c).is_err()) {
            return Err(format!("row {}: the input has no column `{c}`", i + 1));
        }
    }
    let mut columns = Vec::new();
    for f in schema.fields() {
        let values: Vec<Option<&Value>> = rows.iter().map(|r| r.get(f.name())).collect();
        columns.push(
            column(&values, f.data_type())
                .map_err(|e| format!("column `{}` ({}): {e}", f.name(), f.data_type()))?,
        );
    }
    let options = arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows.len()));
    RecordBatch::try_new_with_options(schema.clone(), columns, &options).map_err(|e| e.to_string())
}

/// One value as compared.
#[derive(Debug, Clone, PartialEq)]
enum Cell {
    Null,
    Num(f64),
    Text(String),
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cell::Null => write!(f, "null"),
            Cell::Num(x) => write!(f, "{x}"),
            Cell::Text(s) => write!(f, "{s}"),
        }
    }
}

fn cells(a: &ArrayRef) -> std::result::Result<Vec<Cell>, String> {
    if a.data_type().is_numeric() {
        let f = arrow::compute::cast(a, &DataType::Float64).map_err(|e| e.to_string())?;
        let f = f
            .as_any()
            .downcast_ref::<arrow::array::Float64Array>()
            .ok_or("not a float array")?;
        return Ok((0..f.len())
            .map(|i| {
                if f.is_null(i) {
                    Cell::Null
                } else {
                    Cell::Num(f.value(i))
                }
            })
            .collect());
    }
    let fmt = ArrayFormatter::try_new(a.as_ref(), &FormatOptions::default())
        .map_err(|e| e.to_string())?;
    Ok((0..a.len())
        .map(|i| {
            if a.is_null(i) {
                Cell::Null
            } else {
                Cell::Text(fmt.value(i).to_string())
            }
        })
        .collect())
}

/// The model's rows against the expected ones: None when they match, else what differs.
fn compare(t: &UnitTest, batches: &[RecordBatch]) -> std::result::Result<Option<String>, String> {
    let Some(first) = batches.first() else {
        return Ok((!t.expect.is_empty())
            .then(|| format!("the model returned no rows; expected {}", t.expect.len())));
    };
    let schema = first.schema();
    let all = concat_batches(&schema, batches).map_err(|e| e.to_string())?;
    // Compared columns in the model's output order.
    let mut columns: Vec<(usize, String)> = Vec::new();
    for c in &t.columns {
        let i = schema
            .index_of(c)
            .map_err(|_| format!("the model outputs no column `{c}`"))?;
        columns.push((i, c.clone()));
    }
    columns.sort();
    let mut actual: Vec<Vec<Cell>> = vec![Vec::new(); all.num_rows()];
    let mut expected: Vec<Vec<Cell>> = vec![Vec::new(); t.expect.len()];
    for (i, name) in &columns {
        let col = all.column(*i);
        for (row, cell) in actual.iter_mut().zip(cells(col)?) {
            row.push(cell);
        }
        let values: Vec<Option<&Value>> = t.expect.iter().map(|row| row.get(name)).collect();
        let as_type = if col.data_type().is_numeric() {
            DataType::Float64
        } else {
            col.data_type().clone()
        };
        let typed = column(&values, &as_type)
            .map_err(|e| format!("column `{name}` ({}): {e}", col.data_type()))?;
        for (row, cell) in expected.iter_mut().zip(cells(&typed)?) {
            row.push(cell);
        }
    }
    let same = |a: &Cell, e: &Cell| match (a, e) {
        (Cell::Num(a), Cell::Num(e)) => (a - e).abs() <= t.tolerance * e.abs().max(1.0),
        _ => a == e,
    };
    let mut unmatched: Vec<Option<&Vec<Cell>>> = actual.iter().map(Some).collect();
    let mut missing = Vec::new();
    for e in &expected {
        let hit = unmatched
            .iter_mut()
            .find(|a| a.is_some_and(|a| a.iter().zip(e).all(|(a, e)| same(a, e))));
        match hit {
            Some(slot) => *slot = None,
            None => missing.push(e),
        }
    }
    let unexpected: Vec<&Vec<Cell>> = unmatched.into_iter().flatten().collect();
    if missing.is_empty() && unexpected.is_empty() {
        return Ok(None);
    }
    let show = |r: &Vec<Cell>| {
        let parts: Vec<String> = columns
            .iter()
            .zip(r)
            .map(|((_, c), v)| format!("{c}: {v}"))
            .collect();
        format!("{{{}}}", parts.join(", "))
    };
    let mut out = format!(
        "the model returned {} rows, {} expected; {} expected rows not returned, {} rows not expected",
        actual.len(),
        expected.len(),
        missing.len(),
        unexpected.len()
    );
    const SHOWN: usize = 10;
    for r in missing.iter().take(SHOWN) {
        out.push_str(&format!("\n  - expected, not returned: {}", show(r)));
    }
    for r in unexpected.iter().take(SHOWN) {
        out.push_str(&format!("\n  + returned, not expected: {}", show(r)));
    }
    if missing.len() > SHOWN || unexpected.len() > SHOWN {
        out.push_str("\n  (first 10 of each shown)");
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = "{{ config(order_by=['account_id']) }}\nselect account_id, sum(units) as units, max(day) as last_day, bool_or(units > {{ var('big') }}) as big\nfrom {{ source('snapshot', 'usage') }}\nwhere day <= {{ as_of_date }}\ngroup by account_id\n";
    const SOURCES: &str = "sources:\n  - name: snapshot\n    tables:\n      - name: usage\n        columns:\n          - { name: account_id, data_type: varchar }\n          - { name: day, data_type: date }\n          - { name: units, data_type: double }\n          - { name: note, data_type: varchar }\n";

    /// The project of these tests, with `yml` as the model's properties.
    fn write(dir: &Path, yml: &str) -> Result<Project> {
        let root = dir.join("pipelines");
        for d in ["models", "sources"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        for (path, text) in [
            (
                "gtmos_project.yml",
                "name: t\nversion: 1.0.0\nvars:\n  big: 10\n",
            ),
            ("sources/s.yml", SOURCES),
            ("models/per_account.sql", MODEL),
            ("models/per_account.yml", yml),
        ] {
            std::fs::write(root.join(path), text).unwrap();
        }
        Project::load(&root)
    }

    const GIVEN: &str = "unit_tests:\n  - name: sums\n    model: per_account\n    overrides: { as_of: 2024-01-31 }\n    given:\n      - input: source('snapshot', 'usage')\n        rows:\n          - { account_id: a, day: 2024-01-01, units: 4 }\n          - { account_id: a, day: 2024-01-02, units: 8 }\n          - { account_id: b, day: 2024-01-03, units: 11 }\n          - { account_id: b, day: 2024-02-01, units: 100 }\n";

    fn load(expect: &str) -> (tempfile::TempDir, Project) {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), &format!("{GIVEN}{expect}")).unwrap();
        (dir, p)
    }

    #[test]
    fn a_model_on_given_rows_matches_its_worked_example() {
        let (_d, p) = load(
            "    expect:\n      rows:\n        - { account_id: b, units: 11, last_day: 2024-01-03, big: true }\n        - { account_id: a, units: 12.0, last_day: 2024-01-02, big: false }\n",
        );
        let out = run(&p, &[]).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].failure, None, "{:?}", out[0].failure);
    }

    #[test]
    fn a_wrong_expectation_fails_and_says_which_rows_differ() {
        let (_d, p) = load(
            "    expect:\n      rows:\n        - { account_id: a, units: 12.5 }\n        - { account_id: b, units: 11 }\n",
        );
        let out = run(&p, &["per_account".into()]).unwrap();
        let f = out[0].failure.as_deref().expect("must fail");
        assert!(
            f.contains("- expected, not returned: {account_id: a, units: 12.5}"),
            "{f}"
        );
        assert!(
            f.contains("+ returned, not expected: {account_id: a, units: 12}"),
            "{f}"
        );
        // A missing row fails too: the comparison is a multiset, not a subset.
        let (_d, p) = load("    expect:\n      rows:\n        - { account_id: a }\n");
        let f = run(&p, &[]).unwrap()[0].failure.clone().expect("must fail");
        assert!(
            f.contains("+ returned, not expected: {account_id: b}"),
            "{f}"
        );
    }

    #[test]
    fn vars_and_as_of_are_overridden_per_test() {
        let (_d, p) = load(
            "    expect:\n      rows:\n        - { account_id: a, big: true }\n        - { account_id: b, big: true }\n",
        );
        assert!(run(&p, &[]).unwrap()[0].failure.is_some());
        let mut p2 = p.clone();
        p2.unit_tests[0].vars.insert("big".into(), "3".into());
        assert_eq!(run(&p2, &[]).unwrap()[0].failure, None);
        // A later as_of takes in February's row.
        let mut p3 = p.clone();
        p3.unit_tests[0].as_of = Some(crate::calendar::parse_ts("2024-02-01").unwrap());
        p3.unit_tests[0].expect = vec![
            serde_yaml_ng::from_str("{account_id: b, units: 111}").unwrap(),
            serde_yaml_ng::from_str("{account_id: a, units: 12}").unwrap(),
        ];
        p3.unit_tests[0].columns = vec!["account_id".into(), "units".into()];
        assert_eq!(run(&p3, &[]).unwrap()[0].failure, None);
    }

    #[test]
    fn list_columns_take_yaml_lists_and_a_model_not_given_is_computed() {
        let dir = tempfile::tempdir().unwrap();
        let p = super::super::test_project(
            dir.path(),
            &[
                (
                    "sources/s.yml",
                    "sources:\n  - name: snapshot\n    tables:\n      - name: t\n        columns:\n          - { name: id, data_type: varchar }\n          - { name: tags, data_type: \"varchar[]\" }\n",
                ),
                (
                    "models/weights.sql",
                    "select 'x' as tag, 2 as w union all select 'y', 3",
                ),
                (
                    "models/scored.sql",
                    "with e as (select id, unnest(tags) as tag from {{ source('snapshot', 't') }})\nselect e.id, sum(w.w) as score from e join {{ ref('weights') }} w on w.tag = e.tag group by e.id\n",
                ),
                (
                    "models/scored.yml",
                    "unit_tests:\n  - name: scored\n    model: scored\n    given:\n      - input: source('snapshot', 't')\n        rows:\n          - { id: a, tags: [x, y] }\n          - { id: b, tags: [y] }\n          - { id: c, tags: [] }\n          - { id: d }\n    expect:\n      rows:\n        - { id: a, score: 5 }\n        - { id: b, score: 3 }\n",
                ),
            ],
        );
        let out = run(&p, &[]).unwrap();
        assert_eq!(out[0].failure, None, "{:?}", out[0].failure);
        // Given as the empty table instead, the weights match nothing.
        let mut p2 = p.clone();
        p2.unit_tests[0]
            .given
            .push((Ref::Model("weights".into()), vec![]));
        assert!(run(&p2, &[]).unwrap()[0].failure.is_some());
    }

    #[test]
    fn bad_definitions_are_errors_naming_the_test() {
        let bad_column = GIVEN.replace("units: 4 }", "unit: 4 }");
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            &format!("{bad_column}    expect: {{ rows: [] }}\n"),
        )
        .unwrap();
        let e = run(&p, &[]).unwrap_err().to_string();
        assert!(e.contains("unit test `sums`, given source('snapshot', 'usage'): row 1: the input has no column `unit`"), "{e}");

        let no_as_of = GIVEN.replace("    overrides: { as_of: 2024-01-31 }\n", "");
        let e = write(
            dir.path(),
            &format!("{no_as_of}    expect: {{ rows: [] }}\n"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("reads {{ as_of }}"), "{e}");

        let not_read = GIVEN.replace("source('snapshot', 'usage')", "ref('other')");
        let e = write(
            dir.path(),
            &format!("{not_read}    expect: {{ rows: [] }}\n"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("does not read ref('other')"), "{e}");

        let bad_value = GIVEN.replace("day: 2024-01-01", "day: yesterday");
        let p = write(
            dir.path(),
            &format!("{bad_value}    expect: {{ rows: [] }}\n"),
        )
        .unwrap();
        let e = run(&p, &[]).unwrap_err().to_string();
        assert!(e.contains("column `day`"), "{e}");
    }
}
