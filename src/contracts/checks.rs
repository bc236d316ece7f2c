//! The checks of a table, model or view that remove no rows: one pass computes every test's
//! flag and streams the failing rows, counting each test's failures and keeping a sample.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type, UInt64Type};

use super::{Compiled, Context, SAMPLE_ROWS, TestResult, record_json};
use crate::engine::numbered::ROW;
use crate::engine::ranges::{stage_in_ranges, windows_of};
use crate::engine::{SCRATCH, ident};
use crate::error::{Error, Result};
use crate::project::data_tests::{SqlContext, TestSpec};

/// The check query: `_n` rows and one failure count `_f<k>` per test; and the query of the
/// rows with their `_v<k>` flags, for samples. `scope` names the table or model under test.
pub fn check_sql(
    scope: &str,
    relation: &str,
    tests: &[TestSpec],
    rel: &dyn Fn(&str) -> String,
    render: &dyn Fn(&str) -> Result<String>,
) -> Result<(Compiled, String)> {
    let mut materialize = Vec::new();
    let mut joins = Vec::new();
    let mut cols = Vec::new();
    for (k, s) in tests.iter().enumerate() {
        let sc = SqlContext {
            alias: "t",
            n: k,
            scope,
            relation: rel,
            survivors: None,
            render,
            this: Some(relation),
        };
        let v = s.violation(&sc)?;
        for m in v.materialize {
            if !materialize.contains(&m) {
                materialize.push(m);
            }
        }
        joins.extend(v.joins);
        cols.push(format!("({}) AS _v{k}", v.predicate));
    }
    let inner = format!(
        "SELECT t.*, {} FROM {}",
        cols.join(", "),
        crate::project::data_tests::from_joined(&format!("{relation} t"), &joins)
    );
    let sums: Vec<String> = (0..tests.len())
        .map(|k| format!("SUM(CASE WHEN _v{k} THEN 1 ELSE 0 END) AS _f{k}"))
        .collect();
    let sql = format!(
        "SELECT COUNT(*) AS _n, {} FROM ({inner}) x",
        sums.join(", ")
    );
    Ok((Compiled { materialize, sql }, inner))
}

/// What the checks found: rows checked, each test's failures, and a sample of each test's
/// failing rows.
type Findings = (u64, Vec<u64>, Vec<Vec<serde_json::Value>>);

/// The tests computed by windows that can run range by range, grouped by the column that cuts
/// the ranges (with the columns they read): every window partitions by that column, a text or
/// integer column of the table, and the test reads only the table `numbered`, in one scan, and
/// materialises nothing.
fn ranged_tests(
    cx: &Context,
    node: &str,
    numbered: &str,
    schema: &arrow::datatypes::Schema,
    tests: &[TestSpec],
    rel: &dyn Fn(&str) -> String,
    what: &str,
) -> Result<BTreeMap<String, (Vec<usize>, Vec<String>)>> {
    let mut ranged: BTreeMap<String, (Vec<usize>, Vec<String>)> = BTreeMap::new();
    for (k, s) in tests.iter().enumerate() {
        let (compiled, inner) = check_sql(node, numbered, std::slice::from_ref(s), rel, cx.render)?;
        if !compiled.materialize.is_empty() {
            continue;
        }
        let flags = format!("SELECT {ROW}, _v0 FROM ({inner}) x");
        let Some(w) = windows_of(cx.engine, &flags, what)? else {
            continue;
        };
        // Cut by a column of the table (not an expression the planner named), text or an
        // integer; and only a test that scans the table once, so that no piece's check
        // reads anything but its piece.
        let cuttable = |c: &&String| {
            w.reads.contains(c)
                && schema.field_with_name(c).is_ok_and(|f| {
                    f.data_type().is_integer()
                        || matches!(
                            f.data_type(),
                            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
                        )
                })
        };
        let Some(key) = w.partitioned_by.iter().find(cuttable) else {
            continue;
        };
        if w.tables != [numbered.to_string()] {
            continue;
        }
        let (ks, reads) = ranged.entry(key.clone()).or_default();
        ks.push(k);
        for c in w.reads {
            if !reads.contains(&c) {
                reads.push(c);
            }
        }
    }
    Ok(ranged)
}

/// The checks of a table stored in Parquet `files`, read with row positions: one pass computes
/// every test's flag over only the columns the tests read (a window sorts those, not the whole
/// row) and returns the positions of the failing rows; each test's sample is its first
/// [`SAMPLE_ROWS`] failing rows in table order, then read by position.
///
/// A test computed by a window over a table of more than [`Context::window_range_rows`] rows
/// runs range by range of a column all its windows partition by: the columns it reads are
/// staged in pieces of about that many rows ([`stage_in_ranges`]), and each piece is checked
/// alone. Every partition lies whole in one piece, so each row's flag is the one a check of the
/// whole table gives, and no sort ever holds more than one piece. (One sort of the whole
/// table must merge its spills, which DataFusion 55 cannot always do in a bounded pool:
/// apache/datafusion#24739.)
fn checks_by_position(
    cx: &Context,
    node: &str,
    relation: &str,
    files: &[PathBuf],
    tests: &[TestSpec],
    rel: &dyn Fn(&str) -> String,
    what: &str,
) -> Result<Findings> {
    let name = format!("{}_checked", crate::engine::ident_part(node));
    let schema = cx.engine.schema_of(relation, what)?;
    let table = cx
        .engine
        .register_numbered(SCRATCH, &name, files, &schema)?;
    let numbered = format!("{SCRATCH}.{name}");
    let mut tally = Tally::new(tests.len());

    // The tests to run range by range, by the column that cuts the ranges.
    let ranged = if table.rows() > cx.window_range_rows {
        ranged_tests(cx, node, &numbered, &schema, tests, rel, what)?
    } else {
        BTreeMap::new()
    };
    let whole: Vec<usize> = (0..tests.len())
        .filter(|k| !ranged.values().any(|(ks, _)| ks.contains(k)))
        .collect();
    if !whole.is_empty() {
        let subset: Vec<TestSpec> = whole.iter().map(|&k| tests[k].clone()).collect();
        let (compiled, inner) = check_sql(node, &numbered, &subset, rel, cx.render)?;
        cx.engine.materialize(&compiled.materialize, what)?;
        tally.flags(cx, &inner, &whole, what)?;
    }
    for (key, (ks, reads)) in &ranged {
        let subset: Vec<TestSpec> = ks.iter().map(|&k| tests[k].clone()).collect();
        let columns: Vec<String> = reads.iter().map(|c| ident(c)).collect();
        let staged = stage_in_ranges(
            cx.engine,
            &format!("SELECT {} FROM {numbered}", columns.join(", ")),
            key,
            cx.window_range_rows,
            &cx.staging.join(format!("{name}.ranges")),
            what,
            |t| Error::Internal(format!("{what}: cannot cut ranges of `{key}` ({t})")),
        )?;
        let piece = format!("{name}_piece");
        for file in &staged.pieces {
            cx.engine
                .register_parquet(SCRATCH, &piece, &file.to_string_lossy(), None)?;
            let (_, inner) =
                check_sql(node, &format!("{SCRATCH}.{piece}"), &subset, rel, cx.render)?;
            tally.flags(cx, &inner, ks, what)?;
            let _ = std::fs::remove_file(file);
        }
    }

    let wanted: BTreeSet<u64> = tally.firsts.iter().flatten().copied().collect();
    let mut by_position: BTreeMap<u64, serde_json::Value> = BTreeMap::new();
    let mut positions = wanted.iter();
    for b in table.read_rows(&wanted.iter().copied().collect::<Vec<_>>())? {
        for i in 0..b.num_rows() {
            if let Some(p) = positions.next() {
                by_position.insert(*p, record_json(&b, i));
            }
        }
    }
    let samples = tally
        .firsts
        .iter()
        .map(|f| {
            f.iter()
                .filter_map(|p| by_position.get(p).cloned())
                .collect()
        })
        .collect();
    Ok((table.rows(), tally.failures, samples))
}

/// Each test's failures and the positions of its first [`SAMPLE_ROWS`] failing rows.
struct Tally {
    failures: Vec<u64>,
    firsts: Vec<BTreeSet<u64>>,
}

impl Tally {
    fn new(tests: usize) -> Self {
        Tally {
            failures: vec![0; tests],
            firsts: vec![BTreeSet::new(); tests],
        }
    }

    /// Count the failing rows of `inner` (rows with `_row` and the flags `_v<j>` of the tests
    /// numbered `ks[j]`).
    fn flags(&mut self, cx: &Context, inner: &str, ks: &[usize], what: &str) -> Result<()> {
        let flags: Vec<String> = (0..ks.len()).map(|j| format!("_v{j}")).collect();
        let df = cx.engine.sql(
            &format!(
                "SELECT {ROW}, {} FROM ({inner}) x WHERE {}",
                flags.join(", "),
                flags.join(" OR ")
            ),
            what,
        )?;
        cx.engine.for_each_batch(df, what, |b| {
            let rows = b.column(0).as_primitive::<UInt64Type>();
            for (j, &k) in ks.iter().enumerate() {
                let flag = b.column(j + 1).as_boolean();
                for i in 0..b.num_rows() {
                    if flag.is_valid(i) && flag.value(i) {
                        self.failures[k] += 1;
                        self.firsts[k].insert(rows.value(i));
                        if self.firsts[k].len() > SAMPLE_ROWS {
                            self.firsts[k].pop_last();
                        }
                    }
                }
            }
            Ok(())
        })
    }
}

/// The checks of any relation (a view): one query counts each test's failures; when some
/// failed, one more pass over the rows failing any test keeps a sample of each.
fn checks_by_query(
    cx: &Context,
    relation: &str,
    tests: &[TestSpec],
    node: &str,
    rel: &dyn Fn(&str) -> String,
    what: &str,
) -> Result<Findings> {
    let (compiled, inner) = check_sql(node, relation, tests, rel, cx.render)?;
    cx.engine.materialize(&compiled.materialize, what)?;
    let b = cx.engine.query(&compiled.sql, what)?;
    let row = b
        .first()
        .ok_or_else(|| Error::Internal(format!("{what}: no result row")))?;
    let get = |k: usize| -> u64 {
        let c = row.column(k);
        if c.is_null(0) {
            return 0;
        }
        arrow::compute::cast(c, &DataType::Int64)
            .map(|a| a.as_primitive::<Int64Type>().value(0).max(0) as u64)
            .unwrap_or(0)
    };
    let n = get(0);
    let failures: Vec<u64> = (0..tests.len()).map(|k| get(k + 1)).collect();
    let mut samples: Vec<Vec<serde_json::Value>> = vec![Vec::new(); tests.len()];
    let failing: Vec<usize> = (0..tests.len()).filter(|&k| failures[k] > 0).collect();
    if !failing.is_empty() {
        let any: Vec<String> = failing.iter().map(|k| format!("_v{k}")).collect();
        let df = cx.engine.sql(
            &format!("SELECT * FROM ({inner}) x WHERE {}", any.join(" OR ")),
            what,
        )?;
        cx.engine.for_each_batch(df, what, |b| {
            for &k in &failing {
                let flag = b
                    .column_by_name(&format!("_v{k}"))
                    .and_then(|c| c.as_boolean_opt())
                    .ok_or_else(|| Error::Internal(format!("{what}: no flag of test {k}")))?;
                for i in 0..b.num_rows() {
                    if samples[k].len() < SAMPLE_ROWS && flag.is_valid(i) && flag.value(i) {
                        samples[k].push(record_json(&b, i));
                    }
                }
            }
            Ok(())
        })?;
    }
    Ok((n, failures, samples))
}

/// Run non-removing tests against `relation` and judge them. `files`, when given, are the
/// Parquet files `relation` reads (as written by this run), so the checks can use row
/// positions.
pub fn run_checks(
    cx: &Context,
    node: &str,
    node_kind: &'static str,
    relation: &str,
    tests: &[TestSpec],
    rel: &dyn Fn(&str) -> String,
    files: Option<&[PathBuf]>,
) -> Result<Vec<TestResult>> {
    if tests.is_empty() {
        return Ok(Vec::new());
    }
    let what = format!("checks of {node_kind} `{node}`");
    let (n, failures, samples) = match files {
        Some(files) => checks_by_position(cx, node, relation, files, tests, rel, &what)?,
        None => checks_by_query(cx, relation, tests, node, rel, &what)?,
    };
    let mut out = Vec::new();
    for ((k, s), sample) in tests.iter().enumerate().zip(samples) {
        let failures = failures[k];
        let status = s.status(failures, n);
        out.push(TestResult {
            node: node.to_string(),
            node_kind,
            spec: s.clone(),
            test: s.kind.name().into(),
            status,
            failures,
            rows_checked: n,
            action: if failures > 0 { "recorded" } else { "none" },
            sample,
            contract_version: None,
            declared_in: String::new(),
        });
    }
    Ok(out)
}

/// Run a singular test (a query returning failing rows).
pub fn run_singular(
    cx: &Context,
    name: &str,
    file: &Path,
    sql: &str,
    spec: &TestSpec,
) -> Result<TestResult> {
    let what = format!("{}: singular test `{name}`", file.display());
    let b = cx
        .engine
        .query(&format!("SELECT COUNT(*) FROM ({sql}) q"), &what)?;
    let failures = b
        .first()
        .map(|b| {
            b.column(0)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .value(0)
                .max(0) as u64
        })
        .unwrap_or(0);
    let sample = if failures > 0 {
        let rows = cx.engine.query(
            &format!("SELECT * FROM ({sql}) q LIMIT {SAMPLE_ROWS}"),
            &what,
        )?;
        rows.iter()
            .flat_map(|b| (0..b.num_rows()).map(move |i| record_json(b, i)))
            .collect()
    } else {
        Vec::new()
    };
    let status = spec.status(failures, failures);
    Ok(TestResult {
        node: name.to_string(),
        node_kind: "test",
        spec: spec.clone(),
        test: "singular".into(),
        status,
        failures,
        rows_checked: failures,
        action: if failures > 0 { "recorded" } else { "none" },
        sample,
        contract_version: None,
        declared_in: file.display().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::engine::Engine;
    use crate::project::data_tests::parse_test;
    use crate::warehouse::Warehouse;

    /// A stored table is checked by row position: the failure count is every failing row, and
    /// the sample is the first five failing rows in file order, whatever the partitioning.
    #[test]
    fn samples_are_the_first_failing_rows_in_table_order() {
        for threads in [1, 2, 3] {
            let dir = tempfile::tempdir().unwrap();
            let engine = Engine::new(&Default::default(), threads, dir.path(), 64 << 20).unwrap();
            let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
            // 0..100; the odd ones above 40 fail `x <= 40 or x % 2 = 0`: 41, 43, … 99.
            let b = RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(Int64Array::from_iter_values(0..100))],
            )
            .unwrap();
            let file = dir.path().join("t.parquet");
            crate::table_io::write_in_row_groups(&file, &b, 7);
            engine
                .register_parquet(crate::engine::MODELS, "t", &file.to_string_lossy(), None)
                .unwrap();
            let warehouse = Warehouse::new(dir.path());
            let render = |s: &str| Ok(s.to_string());
            let cx = Context::for_tests(&engine, &warehouse, dir.path(), &render);
            let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(
                "{expression_is_true: {expression: 'x <= 40 or x % 2 = 0'}}",
            )
            .unwrap();
            let spec = parse_test(Path::new("t.yml"), "t", None, &v, None).unwrap();
            let rel = |t: &str| format!("models.{t}");
            let r = run_checks(
                &cx,
                "t",
                "model",
                "models.t",
                &[spec],
                &rel,
                Some(std::slice::from_ref(&file)),
            )
            .unwrap();
            assert_eq!((r[0].failures, r[0].rows_checked), (30, 100));
            let sample: Vec<String> = r[0]
                .sample
                .iter()
                .map(|j| j["x"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(sample, ["41", "43", "45", "47", "49"], "{threads} threads");
        }
    }

    /// Tests computed by windows give the same failures and samples range by range as over the
    /// whole table: a window partitioned by `g` (nulls included) runs in pieces cut by `g`, one
    /// partitioned by (`h`, `g`) in pieces cut by `h`; one without a partition, and a row test,
    /// run whole.
    #[test]
    fn windowed_tests_give_the_same_findings_range_by_range() {
        use arrow::array::StringArray;
        let dir = tempfile::tempdir().unwrap();
        let n = 3000i64;
        let schema = Arc::new(Schema::new(vec![
            Field::new("g", DataType::Utf8, true),
            Field::new("h", DataType::Int64, false),
            Field::new("i", DataType::Int64, false),
            Field::new("x", DataType::Int64, false),
        ]));
        let g: Vec<Option<String>> = (0..n)
            .map(|i| (i % 13 != 0).then(|| format!("g{:02}", (i * 7) % 41)))
            .collect();
        let b = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(g)),
                Arc::new(Int64Array::from_iter_values((0..n).map(|i| i % 3))),
                Arc::new(Int64Array::from_iter_values(0..n)),
                Arc::new(Int64Array::from_iter_values(
                    (0..n).map(|i| (i * 7919) % 101),
                )),
            ],
        )
        .unwrap();
        let file = dir.path().join("t.parquet");
        crate::table_io::write_in_row_groups(&file, &b, 250);
        let tests = [
            "x <= coalesce(lag(x) over (partition by g order by i), x) + 50",
            "x >= coalesce(min(x) over (partition by h, g order by i rows between 4 preceding and 1 preceding), 0) + 3",
            "x <= coalesce(lag(x) over (order by i), x) + 30",
            "x % 7 <> 3",
        ];
        let specs: Vec<TestSpec> = tests
            .iter()
            .map(|e| {
                let v = serde_yaml_ng::Value::Mapping(
                    [(
                        "expression_is_true".into(),
                        serde_yaml_ng::Value::Mapping(
                            [("expression".into(), (*e).into())].into_iter().collect(),
                        ),
                    )]
                    .into_iter()
                    .collect(),
                );
                parse_test(Path::new("t.yml"), "t", None, &v, None).unwrap()
            })
            .collect();
        let run = |threads: usize, window_range_rows: u64| {
            let engine = Engine::new(&Default::default(), threads, dir.path(), 64 << 20).unwrap();
            engine
                .register_parquet(crate::engine::MODELS, "t", &file.to_string_lossy(), None)
                .unwrap();
            let warehouse = Warehouse::new(dir.path());
            let render = |s: &str| Ok(s.to_string());
            let mut cx = Context::for_tests(&engine, &warehouse, dir.path(), &render);
            cx.window_range_rows = window_range_rows;
            let rel = |t: &str| format!("models.{t}");
            run_checks(
                &cx,
                "t",
                "model",
                "models.t",
                &specs,
                &rel,
                Some(std::slice::from_ref(&file)),
            )
            .unwrap()
            .into_iter()
            .map(|r| (r.failures, r.sample))
            .collect::<Vec<_>>()
        };
        // The two partitioned windows run range by range, each cut by its first partition
        // column; the unpartitioned window and the row test run whole.
        {
            let engine = Engine::new(&Default::default(), 1, dir.path(), 64 << 20).unwrap();
            let warehouse = Warehouse::new(dir.path());
            let render = |s: &str| Ok(s.to_string());
            let cx = Context::for_tests(&engine, &warehouse, dir.path(), &render);
            engine
                .register_numbered(SCRATCH, "t_checked", std::slice::from_ref(&file), &schema)
                .unwrap();
            let rel = |t: &str| format!("models.{t}");
            let ranged = ranged_tests(
                &cx,
                "t",
                &format!("{SCRATCH}.t_checked"),
                &schema,
                &specs,
                &rel,
                "test",
            )
            .unwrap();
            assert_eq!(
                ranged
                    .iter()
                    .map(|(k, (ks, _))| (k.as_str(), ks.clone()))
                    .collect::<Vec<_>>(),
                vec![("g", vec![0]), ("h", vec![1])]
            );
        }
        let whole = run(1, u64::MAX);
        assert!(
            whole.iter().all(|(f, _)| *f > 0),
            "every test fails somewhere: {whole:?}"
        );
        for (threads, rows) in [(1, 1), (2, 97), (3, 700), (2, 2999)] {
            assert_eq!(
                run(threads, rows),
                whole,
                "{threads} threads, {rows} rows a range"
            );
        }
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .filter(|f| f.file_name().to_string_lossy().contains("piece"))
            .collect();
        assert!(left.is_empty(), "staging files removed: {left:?}");
    }
}
