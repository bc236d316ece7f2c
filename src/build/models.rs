//! Stages 2 and 3, the models: each selected model in DAG order, through the gate, planned
//! from its rendered SQL, written sorted into staging (or registered as a view) and checked by
//! its data tests; then the singular tests over what was built.

use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow::datatypes::DataType;

use crate::contracts::{self, TestResult};
use crate::engine::write::{Sorting, write_sorted};
use crate::engine::{CLOSED, Engine, LAST_GOOD, MODELS, SCRATCH, SOURCES, ident};
use crate::error::{Error, Result};
use crate::project::data_tests::TestKind;
use crate::project::template::Ref;
use crate::project::{Materialized, Model, Project, Renderer};
use crate::table_io::WrittenFile;
use crate::warehouse::Warehouse;

use super::BuildRun;
use super::report::{ModelResult, Step};
use super::reuse::Decision;

/// Stage 2: build every selected model in DAG order; frozen months of closed periods are
/// readable as `closed.<model>`.
pub(super) fn build_all(run: &mut BuildRun) -> Result<()> {
    let project = run.project;
    let engine = run.cx.engine;
    let warehouse = run.cx.warehouse;
    let selected = |m: &&Model| run.selection.models.contains(&m.name);
    for model in project
        .models
        .iter()
        .filter(|m| m.freeze.is_some())
        .filter(selected)
    {
        register_closed(engine, warehouse, model)?;
    }
    let models: Vec<&Model> = project.models.iter().filter(selected).collect();
    for model in models {
        run.progress.step(&format!("model {}", model.name));
        let started = Instant::now();
        let upstream_block = run.gate.upstream_block(model);
        let mut result = ModelResult {
            name: model.name.clone(),
            file: model.file.clone(),
            materialized: model.materialized,
            rows: 0,
            seconds: 0.0,
            tests: Vec::new(),
            blocked: upstream_block.clone(),
            sha256: None,
            read_last_good: Vec::new(),
            decision: None,
        };
        if upstream_block.is_none() {
            let inputs = run.gate.last_good_inputs(project, model, warehouse);
            for (m, _) in inputs.iter().filter(|(_, s)| s.last_good) {
                let file = warehouse.published_file(m);
                engine.register_parquet(LAST_GOOD, m, &file.to_string_lossy(), None)?;
            }
            let read = |r: &Ref| match r {
                Ref::Model(m) if inputs.get(m).is_some_and(|s| s.last_good) => {
                    format!("{LAST_GOOD}.{}", ident(m))
                }
                _ => Renderer::relation(r),
            };
            let ranged = ranged_inputs(model, &read);
            let relation = |r: &Ref| through_ranges(&ranged, &read, r);
            let sql = run
                .renderer
                .model(project, model, &relation, &|m| inputs.get(m).cloned())?;
            result.read_last_good = inputs.keys().cloned().collect();
            let memo = run
                .reuse
                .memo(model, &sql, &|m| inputs.get(m).is_some_and(|s| s.last_good));
            let decision = if model.materialized == Materialized::Table {
                let last_good = inputs.values().any(|s| s.last_good);
                let must = must_compute(model, &sql, &run.report.build_id, last_good);
                Some(run.reuse.decide(warehouse, &model.name, &memo, must)?)
            } else {
                None
            };
            let (written, tests) = match decision {
                Some(Decision::Reuse { keyed }) => reuse_model(
                    &run.cx,
                    project,
                    model,
                    &warehouse.published_file(&model.name),
                    keyed,
                    &run.report.build_id,
                )?,
                _ => build_model(&run.cx, project, model, &sql, &ranged, &run.report.build_id)?,
            };
            if let Ok(memo) = &memo {
                run.reuse.built(&model.name, memo);
            }
            if let Some(w) = written {
                if let Ok(memo) = memo {
                    let keyed = key_test(model).is_some_and(|k| tests[k].failures == 0);
                    run.reuse.wrote(&model.name, memo, &w.sha256, keyed);
                }
                result.rows = w.rows;
                result.sha256 = Some(w.sha256.clone());
                run.staged.insert(model.name.clone(), w);
            }
            result.decision = decision;
            if let Some(t) = tests.iter().find(|t| t.spec.blocks(t.status)) {
                result.blocked = Some(format!(
                    "rule `{}` failed on {} rows",
                    t.spec.rule, t.failures
                ));
            }
            result.tests = tests;
        } else if run.gate.computed_anyway(&model.name)
            && let Ok(sql) = run
                .renderer
                .model(project, model, &Renderer::relation, &|_| None)
        {
            // Computed anyway, never tested or published, so that a model reading last good
            // versions can still show a blocked input that has none (its rows, values withheld).
            // Failure here is not the build's: the input is blocked already. Its readers'
            // fingerprints cover what it computes.
            if let Ok(memo) = run.reuse.memo(model, &sql, &|_| false) {
                run.reuse.built(&model.name, &memo);
            }
            let _ = materialize(
                engine,
                model,
                &sql,
                &[],
                &run.report.build_id,
                run.cx.staging,
                false,
            );
        }
        result.seconds = started.elapsed().as_secs_f64();
        if let Some(why) = &result.blocked {
            run.gate.block_model(&model.name, why.clone());
        }
        run.report.steps.push(Step::of_model(&result));
        run.report.models.push(result);
        run.progress.advance(1);
    }
    Ok(())
}

/// Stage 3: the singular tests over what was built; a failure blocks the models it reads. A
/// test is skipped when it reads something outside the selection or blocked.
pub(super) fn singular_tests(run: &mut BuildRun) -> Result<()> {
    let project = run.project;
    for t in &project.tests {
        let in_scope = t.refs.iter().all(|r| match r {
            Ref::Model(m) => run.selection.models.contains(m),
            Ref::Source(x) => run.selection.sources.contains(x),
        });
        if !in_scope || run.gate.any_blocked(&t.refs) {
            continue;
        }
        run.progress.step(&format!("test {}", t.name));
        let started = Instant::now();
        let sql = run.renderer.file(&t.file, &t.pieces)?;
        let mut r = contracts::run_singular(&run.cx, &t.name, &t.file, &sql, &t.spec())?;
        if r.spec.blocks(r.status) {
            r.action = "blocked";
            for x in &t.refs {
                if let Ref::Model(m) = x {
                    run.gate.block_model(
                        m,
                        format!("singular test `{}` failed ({} rows)", t.name, r.failures),
                    );
                }
            }
        }
        run.report
            .steps
            .push(Step::of_test(&r, started.elapsed().as_secs_f64()));
        run.report.singular.push(r);
        run.progress.advance(1);
    }
    // Singular tests out of scope count as done.
    run.progress
        .advance((project.tests.len() - run.report.singular.len()) as u64);
    Ok(())
}

/// Register `closed.<model>`: the frozen months so far (empty, with the model's contract schema, at first).
fn register_closed(engine: &Engine, warehouse: &Warehouse, model: &Model) -> Result<()> {
    warehouse.verify_closed(&model.name)?;
    let schema = model.contract_schema();
    let dir = warehouse.closed_dir().join(&model.name);
    let has_files = std::fs::read_dir(&dir)
        .map(|mut d| d.any(|e| e.is_ok()))
        .unwrap_or(false);
    if has_files {
        engine.register_parquet(CLOSED, &model.name, &dir.to_string_lossy(), Some(schema))
    } else {
        engine.register_batches(CLOSED, &model.name, schema, vec![])
    }
}

fn wrap_model(model: &Model, e: Error) -> Error {
    match e {
        Error::Engine { context, source } => Error::Engine {
            context: format!(
                "{}: model `{}`: {context}",
                model.file.display(),
                model.name
            ),
            source,
        },
        other => other,
    }
}

/// The views a model built in ranges (`config(build_in_ranges=N)`) reads its inputs through, as
/// (view name in `scratch`, the relation `read` gives the input); none for other models.
pub fn ranged_inputs(model: &Model, read: &dyn Fn(&Ref) -> String) -> Vec<(String, String)> {
    if model.build_in_ranges.is_none() {
        return Vec::new();
    }
    model
        .refs
        .iter()
        .map(|r| {
            let input = match r {
                Ref::Model(m) => format!("m_{m}"),
                Ref::Source(t) => format!("s_{t}"),
            };
            (format!("{}__{input}", model.name), read(r))
        })
        .collect()
}

/// The relation a model reads for `r`: its range view when it has one in `ranged`
/// ([`ranged_inputs`]), else what `read` gives.
pub fn through_ranges(
    ranged: &[(String, String)],
    read: &dyn Fn(&Ref) -> String,
    r: &Ref,
) -> String {
    let relation = read(r);
    match ranged.iter().find(|(_, rel)| *rel == relation) {
        Some((view, _)) => format!("{SCRATCH}.{}", ident(view)),
        None => relation,
    }
}

/// One model as a build runs it: planned from its rendered `sql`, written sorted and stamped
/// with `build_id` into the staging directory (or registered as a view), registered as
/// `models.<name>`, then its data tests run over what was written (a failing test marked as
/// blocking its publication). Public for the benchmarks, which time exactly this.
pub fn build_model(
    cx: &contracts::Context,
    project: &Project,
    model: &Model,
    sql: &str,
    ranged: &[(String, String)],
    build_id: &str,
) -> Result<(Option<WrittenFile>, Vec<TestResult>)> {
    let key = key_test(model);
    let mut written = materialize(
        cx.engine,
        model,
        sql,
        ranged,
        build_id,
        cx.staging,
        key.is_some(),
    )?;
    let tests = check_model(cx, project, model, &written)?;
    if key.is_some_and(|k| tests[k].failures > 0) {
        // The key has duplicates, so `order_by` alone left ties: written again in the total
        // order, for the same bytes on every run (the tests saw the same rows).
        written = materialize(cx.engine, model, sql, ranged, build_id, cx.staging, false)?;
    }
    Ok((written, tests))
}

/// Why a table model is computed whatever the state says, if it must be: one built or
/// sorted in ranges (its file is written range by range, not through the one sorted writer
/// a reused table goes through), one reading a last good input or frozen months (whose rows
/// carry other builds' ids), or one whose SQL may put the build id anywhere but its
/// `build_id` column.
fn must_compute(model: &Model, sql: &str, build_id: &str, last_good: bool) -> Option<String> {
    if model.build_in_ranges.is_some() || model.sort_in_ranges.is_some() {
        Some("built or sorted in ranges, so always computed".into())
    } else if last_good {
        Some("it reads a last good version".into())
    } else if sql.contains(&format!("{CLOSED}.")) {
        // Frozen rows keep the build id of the close that froze them.
        Some("it reads frozen months".into())
    } else if !stamps_only(sql, build_id) {
        Some("its SQL uses the build id beyond stamping it".into())
    } else {
        None
    }
}

/// Whether `sql` uses the build id only to stamp the `build_id` column: the id's literal
/// only as `'<id>' as build_id` or, where that appears too, as the last item of a select
/// (`'<id>' from`, a later union branch), and a `build_id` column only passed through (`build_id,` `build_id from`,
/// `exclude (build_id)`) or named (`… as build_id`), never computed with or renamed.
pub(super) fn stamps_only(sql: &str, build_id: &str) -> bool {
    let lower = sql.to_ascii_lowercase();
    let literal = crate::engine::quote(build_id).to_ascii_lowercase();
    let next_words = |from: usize, n: usize| -> Vec<String> {
        lower[from..]
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ','))
            .filter(|w| !w.is_empty())
            .take(n)
            .map(str::to_string)
            .collect()
    };
    let mut stamped = false;
    let mut unnamed = false;
    for (i, _) in lower.match_indices(&literal) {
        let after = next_words(i + literal.len(), 2);
        if after == ["as", "build_id"] || after == ["as", "build_id,"] {
            stamped = true;
        } else if after.first().map(String::as_str) == Some("from") {
            unnamed = true;
        } else {
            return false;
        }
    }
    // Unnamed, it is a later union branch's column: the first branch must name it.
    if unnamed && !stamped {
        return false;
    }
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    for (i, w) in lower.match_indices("build_id") {
        let (head, tail) = (&lower[..i], &lower[i + w.len()..]);
        if head.ends_with(ident) || tail.starts_with(ident) {
            continue; // part of another name
        }
        let (before, after) = (head.trim_end(), tail.trim_start());
        // `… as build_id`: only the stamp itself, `'<id>' as build_id`.
        if let Some(b) = before
            .strip_suffix("as")
            .filter(|b| b.ends_with(char::is_whitespace))
        {
            if b.trim_end().ends_with(&literal) {
                continue;
            }
            return false;
        }
        let passed = after.is_empty()
            || after.starts_with(',')
            || after.starts_with("from") && !after[4..].starts_with(ident);
        let excluded = (before.ends_with("exclude (") || before.ends_with("exclude("))
            && after.starts_with(')');
        if !(passed || excluded) {
            return false;
        }
    }
    true
}

/// A table model whose published rows are this build's ([`super::reuse`]): those rows,
/// stamped with `build_id` and written in the order computing them would use, then checked by
/// its data tests like a computed one.
pub fn reuse_model(
    cx: &contracts::Context,
    project: &Project,
    model: &Model,
    published: &Path,
    keyed: bool,
    build_id: &str,
) -> Result<(Option<WrittenFile>, Vec<TestResult>)> {
    let mut written = Some(restamp(
        cx.engine, model, published, build_id, cx.staging, keyed,
    )?);
    let tests = check_model(cx, project, model, &written)?;
    if keyed && key_test(model).is_some_and(|k| tests[k].failures > 0) {
        written = Some(restamp(
            cx.engine, model, published, build_id, cx.staging, false,
        )?);
    }
    Ok((written, tests))
}

/// A model's data tests over what was written (a failing test marked as blocking it).
fn check_model(
    cx: &contracts::Context,
    project: &Project,
    model: &Model,
    written: &Option<WrittenFile>,
) -> Result<Vec<TestResult>> {
    let rel_of = |to: &str| {
        if project.model(to).is_some() {
            format!("{MODELS}.{}", ident(to))
        } else {
            format!("{SOURCES}.{}", ident(to))
        }
    };
    let files: Option<Vec<PathBuf>> = written.as_ref().map(|w| vec![w.path.clone()]);
    let mut tests = contracts::run_checks(
        cx,
        &model.name,
        "model",
        &format!("{MODELS}.{}", ident(&model.name)),
        &model.tests,
        &rel_of,
        files.as_deref(),
    )
    .map_err(|e| wrap_model(model, e))?;
    for t in &mut tests {
        t.declared_in = model.file.display().to_string();
        if t.status == crate::project::data_tests::Status::Fail {
            t.action = "blocked";
        }
    }
    Ok(tests)
}

/// The data test, by its index in the model's tests, that proves the declared `order_by` a
/// key: a `unique_combination_of_columns` over some of those columns, on every row (it counts
/// NULLs as equal). When it passes, `order_by` alone orders the table totally.
pub fn key_test(model: &Model) -> Option<usize> {
    model.tests.iter().position(|t| {
        t.where_.is_none()
            && matches!(&t.kind, TestKind::UniqueCombination(cols)
                if !cols.is_empty() && cols.iter().all(|c| model.order_by.contains(c)))
    })
}

/// The order a model's table is written in: its declared `order_by` when a key test proves it
/// total ([`key_test`]; `keyed`), else [`total_order`]. Sorting on the key alone gives the
/// same rows in the same order, without comparing the trailing columns.
pub fn write_order(model: &Model, columns: &[(String, DataType)], keyed: bool) -> Vec<String> {
    if keyed {
        model.order_by.clone()
    } else {
        total_order(model, columns)
    }
}

/// The order a model's table is written in, a total one: its declared `order_by`, then every
/// other sortable column of its output `columns`.
fn total_order(model: &Model, columns: &[(String, DataType)]) -> Vec<String> {
    let mut order: Vec<String> = model.order_by.clone();
    for (n, t) in columns {
        if !order.contains(n) && !matches!(t, DataType::List(_) | DataType::Struct(_)) {
            order.push(n.clone());
        }
    }
    order
}

/// Plan a model, then write it (tables) sorted with its build_id, or register it as a view.
/// `keyed`: sorted on the declared `order_by` alone (see [`write_order`]).
#[allow(clippy::too_many_arguments)]
fn materialize(
    engine: &Engine,
    model: &Model,
    sql: &str,
    ranged: &[(String, String)],
    build_id: &str,
    staging: &Path,
    keyed: bool,
) -> Result<Option<WrittenFile>> {
    let what = format!("{}: model `{}`", model.file.display(), model.name);
    let qualified = format!("{MODELS}.{}", ident(&model.name));
    // Planned first over the whole of each input.
    for (view, relation) in ranged {
        engine.register_view(SCRATCH, view, &format!("SELECT * FROM {relation}"), &what)?;
    }
    if model.materialized == Materialized::View {
        // A view's CTEs are inlined into its readers' plans: a hint has nothing to hold.
        engine.query(
            &format!(
                "CREATE OR REPLACE VIEW {qualified} AS {}",
                crate::engine::ctes::without_hints(sql)
            ),
            &what,
        )?;
        return Ok(None);
    }
    // CTEs marked `AS MATERIALIZED`, computed once and held until the table is written.
    let (sql, ctes) = crate::engine::ctes::materialize(
        engine,
        sql,
        &model.file,
        &format!("model `{}`", model.name),
    )?;
    if !ranged.is_empty() && !ctes.is_empty() {
        return Err(Error::pipeline(
            &model.file,
            format!(
                "model `{}`: a model built in ranges cannot materialise CTEs (each range reads its own rows)",
                model.name
            ),
        ));
    }
    let sql = sql.as_str();
    let planned = engine.sql(sql, &what)?;
    let columns: Vec<(String, DataType)> = planned
        .schema()
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect();
    for c in &model.order_by {
        if !columns.iter().any(|(n, _)| n == c) {
            return Err(Error::pipeline(
                &model.file,
                format!(
                    "model `{}`: order_by column `{c}` is not in its output",
                    model.name
                ),
            ));
        }
    }
    let order = write_order(model, &columns, keyed);
    let produced: Vec<(&str, &DataType)> = columns.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let select = model.output_select(&produced, build_id)?;
    let path = staged_path(staging, model);
    // (A model built in ranges but rendered over its whole inputs, `ranged` empty, is one query.)
    let by_key = model.build_in_ranges.filter(|_| !ranged.is_empty());
    let (sorting, ranges) = match (model.sort_in_ranges, by_key) {
        // A range's memory is the whole query's.
        (_, Some(rows_per_range)) => (
            Sorting::BuildInRanges {
                rows_per_range,
                inputs: ranged,
            },
            "build_in_ranges",
        ),
        // A range and its keys are held outside the pool, sorted there.
        (Some(rows_per_range), None) => (
            Sorting::InRanges {
                rows_per_range,
                prefix: model.order_by.len(),
            },
            "sort_in_ranges",
        ),
        (None, None) => (Sorting::Whole, ""),
    };
    let written = write_sorted(
        engine,
        &format!("SELECT {select} FROM ({sql}) m"),
        &order,
        sorting,
        &path,
        &what,
        |t| {
            let why = match t {
                DataType::Null => ": none of its inputs has it".to_string(),
                t => format!(", not {t}"),
            };
            Error::pipeline(
                &model.file,
                format!(
                    "model `{}`: {ranges} needs a text or integer first order_by column `{}`{why}",
                    model.name, order[0]
                ),
            )
        },
        |range| {
            Error::pipeline(
                &model.file,
                format!(
                    "model `{}` is built in ranges of `{}`, but the range `{range}` of its inputs gave a row outside it: each row must depend only on input rows with its own `{}`",
                    model.name, order[0], order[0]
                ),
            )
        },
    )?;
    register_staged(engine, model, &path)?;
    Ok(Some(written))
}

/// Where a model's table is written in the run's staging directory.
fn staged_path(staging: &Path, model: &Model) -> PathBuf {
    staging
        .join("models")
        .join(format!("{}.parquet", model.name))
}

/// Register a model's staged table as `models.<name>`, for its tests and its readers.
fn register_staged(engine: &Engine, model: &Model, path: &Path) -> Result<()> {
    engine.register_parquet_with(
        MODELS,
        &model.name,
        &path.to_string_lossy(),
        None,
        model.pushdown_filters,
    )
}

/// Write the rows of a published table again, stamped with `build_id`, through the writer
/// and in the order [`materialize`] writes the model (`keyed`: on its `order_by` alone): the
/// same rows give the same bytes. Registered as `models.<name>`.
fn restamp(
    engine: &Engine,
    model: &Model,
    published: &Path,
    build_id: &str,
    staging: &Path,
    keyed: bool,
) -> Result<WrittenFile> {
    let what = format!("{}: model `{}` (reused)", model.file.display(), model.name);
    let (schema, _) = crate::table_io::read_parquet_schema(published)?;
    let from = format!("reused__{}", model.name);
    engine.register_parquet(
        SCRATCH,
        &from,
        &published.to_string_lossy(),
        Some(schema.clone()),
    )?;
    let columns: Vec<(String, DataType)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect();
    let id = crate::engine::quote(build_id);
    let select: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| match f.name().as_str() {
            // As nullable as computing it made it (a union with a frozen month's rows is).
            "build_id" if f.is_nullable() => format!("nullif({id}, '') AS build_id"),
            "build_id" => format!("{id} AS build_id"),
            n => format!("r.{}", ident(n)),
        })
        .collect();
    let path = staged_path(staging, model);
    let written = write_sorted(
        engine,
        &format!(
            "SELECT {} FROM {SCRATCH}.{} r",
            select.join(", "),
            ident(&from)
        ),
        &write_order(model, &columns, keyed),
        Sorting::Whole,
        &path,
        &what,
        |_| Error::Internal(format!("{what}: not sorted in ranges")),
        |_| Error::Internal(format!("{what}: not built in ranges")),
    )?;
    register_staged(engine, model, &path)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A project of one model `t`: its SQL and the data tests of its schema entry (YAML).
    fn project(dir: &Path, sql: &str, data_tests: &str) -> Project {
        let schema = format!("version: 2\nmodels:\n  - name: t\n    data_tests:\n{data_tests}");
        crate::project::test_project(
            dir,
            &[("models/t.sql", sql), ("models/schema.yml", &schema)],
        )
    }

    const KEYED: &str = "{{ config(order_by=['a', 'b']) }}\nselect 1 as a, 2 as b, 3 as c\n";

    #[test]
    fn only_a_uniqueness_test_over_order_by_columns_on_every_row_is_a_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = |tests: &str| key_test(project(dir.path(), KEYED, tests).model("t").unwrap());
        let combo = |cols: &str| {
            format!("      - unique_combination_of_columns: {{ columns: [{cols}] }}\n")
        };
        assert_eq!(key(&combo("a, b")), Some(0));
        assert_eq!(key(&combo("b")), Some(0));
        let not_null = "      - expression_is_true: { rule: r, expression: a is not null }\n";
        assert_eq!(key(&format!("{not_null}{}", combo("a, b"))), Some(1));
        assert_eq!(key(&combo("a, c")), None, "c is not in order_by");
        assert_eq!(
            key("      - unique_combination_of_columns: { columns: [a, b], where: c > 0 }\n"),
            None,
            "a test of some rows proves nothing of the others"
        );
        assert_eq!(key(not_null), None);
    }

    #[test]
    fn only_a_stamped_build_id_lets_a_table_be_reused() {
        let id = "abc123";
        let ok = [
            "select a, 'abc123' as build_id from t",
            "select a, 'abc123' AS build_id, b from t",
            "select a, 'abc123'\n from t union all select b, 'abc123' as build_id from u",
            "select * exclude (build_id) from t",
            "select a, build_id from final",
            "select a, build_id, b from final",
            "select a from t where a_build_id > 0",
            "select a, 'abc123'\nas build_id from t",
        ];
        for sql in ok {
            assert!(stamps_only(sql, id), "{sql}");
        }
        let not_ok = [
            "select a, 'abc123' as source_build from t",
            "select a, build_id as computed_in_build from t",
            "select a, concat('abc123', a) as build_id from t",
            "select a, 'abc123', b from t",
            "select a from t where build_id = 'x'",
            "select a, upper(b) as build_id from t",
            "select a, hash(build_id) from t",
            "select a, 'abc123' from t",
        ];
        for sql in not_ok {
            assert!(!stamps_only(sql, id), "{sql}");
        }
    }

    #[test]
    fn a_key_with_duplicates_is_written_in_the_total_order() {
        let dir = tempfile::tempdir().unwrap();
        // 40 rows of one key, listed with b descending, and one row of another key.
        let rows: Vec<String> = (0..40)
            .rev()
            .map(|b| format!("('k', {b})"))
            .chain(["('j', 7)".to_string()])
            .collect();
        let sql = format!(
            "{{{{ config(order_by=['a']) }}}}\nselect * from (values {}) v(a, b)\n",
            rows.join(", ")
        );
        let p = project(
            dir.path(),
            &sql,
            "      - unique_combination_of_columns: { columns: [a] }\n",
        );
        let model = p.model("t").unwrap();
        assert_eq!(key_test(model), Some(0));
        let engine = Engine::new(&p.engine, 2, &dir.path().join("spill"), 64 << 20).unwrap();
        let renderer = Renderer::new(&p, Some(0), Some("b1"));
        let sql = renderer
            .model(&p, model, &Renderer::relation, &|_| None)
            .unwrap();
        let render = |t: &str| renderer.text(t);
        let staging = dir.path().join("staging");
        let warehouse = Warehouse::new(&dir.path().join("wh"));
        let cx = contracts::Context {
            engine: &engine,
            warehouse: &warehouse,
            staging: &staging,
            run_id: "r1",
            as_of: 0,
            snapshot_as_of: 0,
            render: &render,
            window_range_rows: contracts::WINDOW_RANGE_ROWS,
        };
        let (written, tests) = build_model(&cx, &p, model, &sql, &[], "b1").unwrap();
        assert_eq!(tests[0].failures, 40, "the 40 rows of key k are duplicates");
        let rows = crate::table_io::json_rows(&written.unwrap().path).unwrap();
        let order: Vec<(String, i64)> = rows
            .iter()
            .map(|r| {
                (
                    r["a"].as_str().unwrap().to_string(),
                    r["b"].as_i64().unwrap(),
                )
            })
            .collect();
        let mut expected = vec![("j".to_string(), 7)];
        expected.extend((0..40).map(|b| ("k".to_string(), b)));
        assert_eq!(order, expected, "ties broken by b, the next column");
    }
}
