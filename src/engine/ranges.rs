//! Work on a large result range by range of one column, so that no sort or hash table ever
//! holds more than a range.
//!
//! A single sort of tens of millions of wide rows must merge its spills, and DataFusion 55's
//! sort-merge can exhaust its memory pool doing so (apache/datafusion#24739, fixed after 55);
//! its hash joins do not spill at all. Three uses cut the range of a column into pieces of
//! about `rows_per_range` rows, from a narrow count per key value:
//!
//! - [`write_sorted_in_ranges`] writes a result in a total order without one global sort: one
//!   pass routes each row to its piece's staging file ([`stage_in_ranges`]); each piece is then
//!   read whole, sorted here (by the declared key in arrow's row format, the other columns
//!   breaking ties) and appended. The rows come out in exactly the order one global sort would
//!   give. A piece and its keys are held outside the engine's memory pool, so `rows_per_range`
//!   bounds that memory (4 M of `usage_billable`'s rows: about 1 GiB at the peak).
//! - The checks of a stored table stage the columns a windowed test reads the same way and run
//!   the window piece by piece (see `contracts::checks`).
//! - [`write_by_key_ranges`] runs a whole query piece by piece of its inputs' key, for a model
//!   whose rows each depend only on input rows with their own key (a per-account model).
//!
//! Its length (over 700 lines) is about 670 lines of code and their unit tests: the two ways
//! of cutting work by ranges share the bounds, the staging and the ordering rules.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use arrow::datatypes::{DataType, Int64Type, SchemaRef};

use super::{Engine, ident};
use crate::error::{Error, Result};
use crate::table_io::{TableWriter, WrittenFile};

/// Rows a staging file's row groups hold: small, because every piece's writer is open at
/// once (at 4 M rows a piece, a 660 M-row result has 165).
const STAGING_ROW_GROUP_ROWS: usize = 1 << 16;

/// Rows routed to all pieces held in memory before they are encoded.
const ROUTED_ROWS: usize = 1 << 21;

/// Where pieces of rows cut by a key start, and how many rows have no key (piece 0).
struct Bounds {
    starts: Starts,
    null_rows: u64,
}

/// The pieces' lower bounds: the first is the smallest key.
enum Starts {
    Text(Vec<String>),
    Int(Vec<i64>),
}

impl Bounds {
    /// The bounds of pieces of about `rows_per_range` rows of `sql` cut by its column `key`
    /// (text or an integer; `bad_key` makes the error for any other type). The first piece
    /// starts at the smallest key.
    fn of(
        engine: &Engine,
        sql: &str,
        key: &str,
        rows_per_range: u64,
        what: &str,
        bad_key: impl Fn(&DataType) -> Error,
    ) -> Result<Bounds> {
        let k = ident(key);
        let counts = engine.query(
            &format!(
                "SELECT {k} AS k, count(*) AS n FROM ({sql}) u GROUP BY {k} ORDER BY {k} ASC NULLS FIRST"
            ),
            what,
        )?;
        let key_type = counts
            .first()
            .map(|b| b.column(0).data_type().clone())
            .unwrap_or(DataType::Int64);
        let text = matches!(
            key_type,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        );
        if !text && !key_type.is_integer() {
            return Err(bad_key(&key_type));
        }
        // A piece starts at the first key after the previous one reached rows_per_range rows.
        let mut starts: Vec<ArrayRef> = Vec::new();
        let mut filled = 0u64;
        let mut null_rows = 0u64;
        for b in &counts {
            let n = b
                .column(1)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .ok_or_else(|| Error::Internal("count(*) is not Int64".into()))?;
            for i in 0..b.num_rows() {
                if b.column(0).is_null(i) {
                    null_rows += n.value(i) as u64;
                    continue;
                }
                if starts.is_empty() || filled >= rows_per_range {
                    starts.push(b.column(0).slice(i, 1));
                    filled = 0;
                }
                filled += n.value(i) as u64;
            }
        }
        let starts = if text {
            let values = starts
                .iter()
                .map(|a| {
                    Ok(cast(a, &DataType::Utf8)?
                        .as_string::<i32>()
                        .value(0)
                        .to_string())
                })
                .collect::<Result<_>>()?;
            Starts::Text(values)
        } else {
            let values = starts
                .iter()
                .map(|a| {
                    Ok(cast(a, &DataType::Int64)?
                        .as_primitive::<Int64Type>()
                        .value(0))
                })
                .collect::<Result<_>>()?;
            Starts::Int(values)
        };
        Ok(Bounds { starts, null_rows })
    }

    /// Pieces of keys, not counting piece 0 (no key).
    fn len(&self) -> usize {
        match &self.starts {
            Starts::Text(b) => b.len(),
            Starts::Int(b) => b.len(),
        }
    }

    /// The SQL condition on the column `k` (an identifier) that holds the rows of piece `i`.
    fn condition(&self, i: usize, k: &str) -> String {
        if i == 0 {
            return format!("{k} IS NULL");
        }
        let start = |j: usize| match &self.starts {
            Starts::Text(b) => super::quote(&b[j]),
            Starts::Int(b) => b[j].to_string(),
        };
        if i < self.len() {
            format!("{k} >= {} AND {k} < {}", start(i - 1), start(i))
        } else {
            format!("{k} >= {}", start(i - 1))
        }
    }

    /// Each row's piece: 0 for a null key, then 1 + the last bound at or below the key (a key
    /// below the first bound, which no piece holds, is counted in piece 1).
    fn pieces(&self, keys: &ArrayRef) -> Result<Vec<usize>> {
        Ok(self
            .above(keys)?
            .into_iter()
            .map(|a| a.map_or(0, |a| a.max(1)))
            .collect())
    }

    /// Whether a row with one of `keys` lies outside piece `piece` (by [`Bounds::condition`]).
    fn outside(&self, piece: usize, keys: &ArrayRef) -> Result<bool> {
        Ok(self.above(keys)?.into_iter().any(|a| match a {
            None => piece != 0,
            Some(a) => a != piece || piece == 0,
        }))
    }

    /// For each key, how many bounds are at or below it (`None` for a null key).
    fn above(&self, keys: &ArrayRef) -> Result<Vec<Option<usize>>> {
        let at = |i: usize, n: usize| (!keys.is_null(i)).then_some(n);
        Ok(match &self.starts {
            Starts::Text(b) => {
                let k = cast(keys, &DataType::Utf8)?;
                let k = k.as_string::<i32>();
                (0..k.len())
                    .map(|i| at(i, b.partition_point(|x| x.as_str() <= k.value(i))))
                    .collect()
            }
            Starts::Int(b) => {
                let k = cast(keys, &DataType::Int64)?;
                let k = k.as_primitive::<Int64Type>();
                (0..k.len())
                    .map(|i| at(i, b.partition_point(|x| *x <= k.value(i))))
                    .collect()
            }
        })
    }
}

fn cast(a: &ArrayRef, to: &DataType) -> Result<ArrayRef> {
    arrow::compute::cast(a, to).map_err(|e| Error::arrow("cannot cast a sort key", e))
}

/// `sql`'s rows cut by ranges of the column `key` (text or an integer; `bad_key` makes the
/// error for any other type) into pieces of about `rows_per_range` rows, each staged in its own
/// Parquet file beside `stem`: the nulls first, then the ranges in key order. Every row of one
/// key value is in one piece. Pieces without rows are not kept.
///
/// The cut needs the rows per key before the first row is routed. A query that only scans,
/// filters and joins is run twice: the count reads little more than the key. A query that
/// aggregates is run once: its rows are staged whole, then counted and routed from that file
/// (`reconciliation_results` aggregates every usage row: at 1,000,000 accounts, 660 M).
pub fn stage_in_ranges(
    engine: &Engine,
    sql: &str,
    key: &str,
    rows_per_range: u64,
    stem: &Path,
    what: &str,
    bad_key: impl Fn(&DataType) -> Error,
) -> Result<Staged> {
    let staged_whole = if aggregates(engine, sql, what)? {
        Some(stage_whole(engine, sql, stem, what)?)
    } else {
        None
    };
    let sql = staged_whole.as_ref().map_or(sql, |w| w.sql.as_str());
    let bounds = Bounds::of(engine, sql, key, rows_per_range, what, bad_key)?;

    // Route every row to its piece: piece 0 holds the null keys, piece i the i-th range.
    let df = engine.sql(sql, what)?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let pieces = bounds.len() + 1;
    let staged: Vec<PathBuf> = (0..pieces)
        .map(|i| stem.with_extension(format!("piece-{i:05}.parquet")))
        .collect();
    let mut router = Router {
        writers: Vec::new(),
        held: vec![Vec::new(); pieces],
        held_rows: vec![0; pieces],
        flush_rows: (ROUTED_ROWS / pieces).max(8192),
    };
    for p in &staged {
        router.writers.push(Some(
            TableWriter::create(p, schema.clone(), &[])?
                .row_group_rows(STAGING_ROW_GROUP_ROWS)
                .encode_threads(engine.threads()),
        ));
    }
    let key_index = schema
        .index_of(key)
        .map_err(|e| Error::arrow(format!("{what}: no column `{key}`"), e))?;
    engine.for_each_batch(df, what, |b| {
        let of_row = bounds.pieces(b.column(key_index))?;
        let mut rows: Vec<Vec<u32>> = vec![Vec::new(); pieces];
        for (i, p) in of_row.into_iter().enumerate() {
            rows[p].push(i as u32);
        }
        for (p, rows) in rows.into_iter().enumerate() {
            if rows.len() == b.num_rows() {
                router.hold(p, b.clone())?;
            } else if !rows.is_empty() {
                let taken = arrow::compute::take_record_batch(&b, &UInt32Array::from(rows))
                    .map_err(|e| Error::arrow(what.to_string(), e))?;
                router.hold(p, taken)?;
            }
        }
        Ok(())
    })?;
    let mut kept = Vec::with_capacity(pieces);
    for (p, file) in staged.into_iter().enumerate() {
        router.flush(p)?;
        let w = router.writers[p].take().expect("a piece's writer");
        if w.finish()?.rows > 0 {
            kept.push(file);
        } else {
            let _ = std::fs::remove_file(&file);
        }
    }
    Ok(Staged {
        schema,
        pieces: kept,
    })
}

/// A query's rows staged whole in one file, registered in [`SCRATCH`](super::SCRATCH); the
/// file is removed when this is dropped.
struct StagedWhole {
    file: PathBuf,
    /// The query reading it back.
    sql: String,
}

impl Drop for StagedWhole {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

/// Whether the query `sql` aggregates (a `GROUP BY` or an aggregate function, anywhere in its
/// plan but its subqueries).
fn aggregates(engine: &Engine, sql: &str, what: &str) -> Result<bool> {
    use datafusion::common::tree_node::TreeNode;
    use datafusion::logical_expr::LogicalPlan;
    engine
        .sql(sql, what)?
        .into_optimized_plan()
        .map_err(super::df_err(what))?
        .exists(|node| Ok(matches!(node, LogicalPlan::Aggregate(_))))
        .map_err(super::df_err(what))
}

/// Run `sql` once and stage its rows beside `stem`.
fn stage_whole(engine: &Engine, sql: &str, stem: &Path, what: &str) -> Result<StagedWhole> {
    let file = stem.with_extension("whole.parquet");
    let df = engine.sql(sql, what)?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let mut w = TableWriter::create(&file, schema.clone(), &[])?.encode_threads(engine.threads());
    engine.for_each_batch(df, what, |b| w.write(&b))?;
    w.finish()?;
    let stem_name = stem.file_stem().unwrap_or_default().to_string_lossy();
    let name = super::ident_part(&format!("whole_{stem_name}"));
    engine.register_parquet(super::SCRATCH, &name, &file.to_string_lossy(), Some(schema))?;
    Ok(StagedWhole {
        sql: format!("SELECT * FROM {}.{}", super::SCRATCH, ident(&name)),
        file,
    })
}

/// The pieces [`stage_in_ranges`] wrote, in key order.
pub struct Staged {
    pub schema: SchemaRef,
    pub pieces: Vec<PathBuf>,
}

/// Run the query `sql` range by range of its inputs' column `key`, writing its rows to `path`
/// in the order its own `ORDER BY` gives each range. `inputs` are the views `sql` reads, as
/// (name in [`SCRATCH`](super::SCRATCH), the relation it stands for): for each range, a view
/// over a relation with a `key` column holds only that range's rows, the others all their rows.
/// The ranges hold about `rows_per_range` input rows each (rows without a key are a range of
/// their own, first) and are run in key order, so when `sql` sorts by `key` first and each of
/// its rows depends only on input rows with its own key, the file is the whole query's result.
/// A row whose key lies outside its range breaks that promise: `outside` makes the error (from
/// the range's condition). `bad_key` makes the error for a key that is neither text nor an
/// integer or whose type differs between inputs, and for no input with the key at all (given
/// `DataType::Null`).
#[allow(clippy::too_many_arguments)]
pub fn write_by_key_ranges(
    engine: &Engine,
    sql: &str,
    key: &str,
    inputs: &[(String, String)],
    rows_per_range: u64,
    path: &Path,
    what: &str,
    bad_key: impl Fn(&DataType) -> Error,
    outside: impl Fn(&str) -> Error,
) -> Result<WrittenFile> {
    let k = ident(key);
    let mut keyed = Vec::new();
    let mut key_type: Option<DataType> = None;
    for (view, relation) in inputs {
        let schema = engine.schema_of(relation, what)?;
        if let Ok(field) = schema.field_with_name(key) {
            // One key type, so that the ranges' bounds compare alike in every input.
            match &key_type {
                Some(t) if t != field.data_type() => return Err(bad_key(field.data_type())),
                _ => key_type = Some(field.data_type().clone()),
            }
            keyed.push((view, relation));
        } else {
            engine.register_view(
                super::SCRATCH,
                view,
                &format!("SELECT * FROM {relation}"),
                what,
            )?;
        }
    }
    if keyed.is_empty() {
        return Err(bad_key(&DataType::Null));
    }
    let keys: Vec<String> = keyed
        .iter()
        .map(|(_, relation)| format!("SELECT {k} FROM {relation}"))
        .collect();
    let bounds = Bounds::of(
        engine,
        &keys.join(" UNION ALL "),
        key,
        rows_per_range,
        what,
        bad_key,
    )?;
    // Each piece's number and condition; with no input rows, one run over the empty inputs.
    let pieces: Vec<Option<(usize, String)>> = if bounds.len() == 0 && bounds.null_rows == 0 {
        vec![None]
    } else {
        (0..=bounds.len())
            .filter(|&p| p > 0 || bounds.null_rows > 0)
            .map(|p| Some((p, bounds.condition(p, &k))))
            .collect()
    };
    let mut out: Option<TableWriter> = None;
    for piece in &pieces {
        let filter = match piece {
            Some((_, condition)) => format!(" WHERE {condition}"),
            None => String::new(),
        };
        for (view, relation) in &keyed {
            engine.register_view(
                super::SCRATCH,
                view,
                &format!("SELECT * FROM {relation}{filter}"),
                what,
            )?;
        }
        let df = engine.sql(sql, what)?;
        let schema = Arc::new(df.schema().as_arrow().clone());
        let at = schema
            .index_of(key)
            .map_err(|e| Error::arrow(format!("{what}: no column `{key}`"), e))?;
        let w = match &mut out {
            Some(w) => w,
            None => {
                out.insert(TableWriter::create(path, schema, &[])?.encode_threads(engine.threads()))
            }
        };
        engine.for_each_batch(df, what, |b| {
            if let Some((p, condition)) = piece
                && bounds.outside(*p, b.column(at))?
            {
                return Err(outside(condition));
            }
            w.write(&b)
        })?;
    }
    // Left as they were planned: over the whole inputs.
    for (view, relation) in &keyed {
        engine.register_view(
            super::SCRATCH,
            view,
            &format!("SELECT * FROM {relation}"),
            what,
        )?;
    }
    out.expect("at least one piece").finish()
}

/// Write `sql`'s rows to `path` in the order of the columns `order` (each ascending, nulls
/// first; the first, the key that cuts the pieces, must be text or an integer — `bad_key`
/// makes the error for any other type), sorting pieces of about `rows_per_range` rows. The
/// first `prefix` columns order nearly every row (a model's declared order_by); the rest break
/// ties.
#[allow(clippy::too_many_arguments)]
pub fn write_sorted_in_ranges(
    engine: &Engine,
    sql: &str,
    order: &[String],
    prefix: usize,
    rows_per_range: u64,
    path: &Path,
    what: &str,
    bad_key: impl Fn(&DataType) -> Error,
) -> Result<WrittenFile> {
    let key = order
        .first()
        .ok_or_else(|| Error::Internal(format!("{what}: no sort columns")))?;
    let staged = stage_in_ranges(engine, sql, key, rows_per_range, path, what, bad_key)?;

    // Sort each piece and append it.
    let mut out = TableWriter::create(path, staged.schema, &[])?.encode_threads(engine.threads());
    for file in &staged.pieces {
        let (_, piece) = crate::table_io::read_parquet(file)?;
        let sorted = sorted_rows(&piece, order, prefix)?;
        let piece: Vec<&RecordBatch> = piece.iter().collect();
        for chunk in sorted.chunks(WRITE_ROWS) {
            let b = arrow::compute::interleave_record_batch(&piece, chunk)
                .map_err(|e| Error::arrow(what.to_string(), e))?;
            out.write(&b)?;
        }
        let _ = std::fs::remove_file(file);
    }
    out.finish()
}

/// What a query's windows need. A query whose windows share a partition column computes the
/// same rows over any cut of its input into ranges of that column.
#[derive(Debug, PartialEq)]
pub struct Windows {
    /// The columns every window function partitions by, in the first one's order.
    pub partitioned_by: Vec<String>,
    /// The columns it reads from its tables.
    pub reads: Vec<String>,
    /// The tables it scans, once per scan.
    pub tables: Vec<String>,
}

/// The [`Windows`] of the query `sql`, or `None` when it has no window function.
pub fn windows_of(engine: &Engine, sql: &str, what: &str) -> Result<Option<Windows>> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::logical_expr::{Expr, LogicalPlan};
    let plan = engine
        .sql(sql, what)?
        .into_optimized_plan()
        .map_err(super::df_err(what))?;
    let mut partitions: Option<Vec<String>> = None;
    let mut reads: Vec<String> = Vec::new();
    let mut tables: Vec<String> = Vec::new();
    plan.apply(|node| {
        match node {
            LogicalPlan::Window(w) => {
                for e in &w.window_expr {
                    let mut e = e;
                    while let Expr::Alias(a) = e {
                        e = &a.expr;
                    }
                    let columns: Vec<String> = match e {
                        Expr::WindowFunction(f) => f
                            .params
                            .partition_by
                            .iter()
                            .filter_map(|p| match p {
                                Expr::Column(c) => Some(c.name.clone()),
                                _ => None,
                            })
                            .collect(),
                        _ => Vec::new(),
                    };
                    partitions = Some(match partitions.take() {
                        None => columns,
                        Some(before) => {
                            before.into_iter().filter(|c| columns.contains(c)).collect()
                        }
                    });
                }
            }
            LogicalPlan::TableScan(t) => {
                tables.push(t.table_name.to_string());
                for f in t.projected_schema.fields() {
                    if !reads.contains(f.name()) {
                        reads.push(f.name().clone());
                    }
                }
            }
            _ => {}
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(super::df_err(what))?;
    Ok(partitions.map(|partitioned_by| Windows {
        partitioned_by,
        reads,
        tables,
    }))
}

/// Rows gathered and written at a time from a sorted piece.
const WRITE_ROWS: usize = 1 << 16;

/// The order of the rows of `piece` (its batches), as (batch, row) pairs, by the columns
/// `order`, each ascending with nulls first (as the engine sorts: floats by their total order,
/// text by bytes). The first `prefix` columns are compared as one normalised byte string
/// (arrow's row format); runs of rows equal in those are then ordered by the rest. Rows equal
/// in every column of `order` keep no particular order (they are equal wherever sorted).
fn sorted_rows(
    piece: &[RecordBatch],
    order: &[String],
    prefix: usize,
) -> Result<Vec<(usize, usize)>> {
    use arrow::compute::{SortColumn, SortOptions};
    use arrow::row::{RowConverter, SortField};
    use rayon::prelude::*;
    let err = |e| Error::arrow("cannot sort a piece", e);
    let opts = SortOptions {
        descending: false,
        nulls_first: true,
    };
    let Some(first) = piece.first() else {
        return Ok(Vec::new());
    };
    let schema = first.schema();
    let positions = order
        .iter()
        .map(|c| {
            schema
                .index_of(c)
                .map_err(|_| Error::Internal(format!("no sort column `{c}`")))
        })
        .collect::<Result<Vec<usize>>>()?;
    let prefix = prefix.clamp(1, positions.len());
    let (head, rest) = positions.split_at(prefix);
    let converter = RowConverter::new(
        head.iter()
            .map(|&i| SortField::new_with_options(schema.field(i).data_type().clone(), opts))
            .collect(),
    )
    .map_err(err)?;
    let mut keys = converter.empty_rows(0, 0);
    let mut at: Vec<(usize, usize)> = Vec::new();
    for (bi, b) in piece.iter().enumerate() {
        let columns: Vec<ArrayRef> = head.iter().map(|&i| b.column(i).clone()).collect();
        converter.append(&mut keys, &columns).map_err(err)?;
        at.extend((0..b.num_rows()).map(|r| (bi, r)));
    }
    let mut sorted: Vec<u32> = (0..at.len() as u32).collect();
    sorted.par_sort_unstable_by(|&a, &b| keys.row(a as usize).cmp(&keys.row(b as usize)));
    // Runs of rows equal in the prefix are ordered by the rest.
    let refs: Vec<&RecordBatch> = piece.iter().collect();
    let mut start = 0;
    while !rest.is_empty() && start < sorted.len() {
        let key = keys.row(sorted[start] as usize);
        let mut end = start + 1;
        while end < sorted.len() && keys.row(sorted[end] as usize) == key {
            end += 1;
        }
        if end - start > 1 {
            let pairs: Vec<(usize, usize)> =
                sorted[start..end].iter().map(|&i| at[i as usize]).collect();
            let run = arrow::compute::interleave_record_batch(&refs, &pairs).map_err(err)?;
            let columns: Vec<SortColumn> = rest
                .iter()
                .map(|&i| SortColumn {
                    values: run.column(i).clone(),
                    options: Some(opts),
                })
                .collect();
            let within = arrow::compute::lexsort_to_indices(&columns, None).map_err(err)?;
            let reordered: Vec<u32> = within
                .values()
                .iter()
                .map(|&i| sorted[start + i as usize])
                .collect();
            sorted[start..end].copy_from_slice(&reordered);
        }
        start = end;
    }
    Ok(sorted.into_iter().map(|i| at[i as usize]).collect())
}

/// Rows routed to each piece, held until there are enough to encode well.
struct Router {
    writers: Vec<Option<TableWriter>>,
    held: Vec<Vec<RecordBatch>>,
    held_rows: Vec<usize>,
    flush_rows: usize,
}

impl Router {
    fn hold(&mut self, piece: usize, b: RecordBatch) -> Result<()> {
        self.held_rows[piece] += b.num_rows();
        self.held[piece].push(b);
        if self.held_rows[piece] >= self.flush_rows {
            self.flush(piece)?;
        }
        Ok(())
    }

    fn flush(&mut self, piece: usize) -> Result<()> {
        let held = std::mem::take(&mut self.held[piece]);
        self.held_rows[piece] = 0;
        let Some(first) = held.first() else {
            return Ok(());
        };
        let all = arrow::compute::concat_batches(&first.schema(), &held)
            .map_err(|e| Error::arrow("cannot gather a piece's rows", e))?;
        self.writers[piece]
            .as_mut()
            .expect("a piece's writer")
            .write(&all)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{EngineConfig, MODELS};
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};

    /// Integer keys with nulls and long runs of ties, cut into pieces smaller than a run:
    /// the same rows in the same order as one global sort.
    #[test]
    fn pieces_come_out_in_the_global_order() {
        let dir = tempfile::tempdir().unwrap();
        let e = Engine::new(&EngineConfig::default(), 2, dir.path(), 256 << 20).unwrap();
        let n = 5000i64;
        let keys: Vec<Option<i64>> = (0..n)
            .map(|i| (i % 11 != 0).then_some((i * 7919) % 37 - 18))
            .collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("v", DataType::Utf8, false),
        ]));
        let b = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(keys)),
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| format!("r{i}")),
                )),
            ],
        )
        .unwrap();
        e.register_batches(MODELS, "t", schema, vec![b]).unwrap();
        let order = ["k".to_string(), "v".to_string()];
        let sql = format!("SELECT * FROM {MODELS}.t");
        let read = |p: &Path| {
            let (_, batches) = crate::table_io::read_parquet(p).unwrap();
            arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
        };
        let global = e
            .query(
                &format!("{sql} ORDER BY k ASC NULLS FIRST, v ASC NULLS FIRST"),
                "t",
            )
            .unwrap();
        let global = arrow::compute::concat_batches(&global[0].schema(), &global).unwrap();
        for (rows_per_range, prefix) in [(1, 1), (97, 2), (1000, 1), (100_000, 2)] {
            let path = dir.path().join(format!("out-{rows_per_range}.parquet"));
            let written =
                write_sorted_in_ranges(&e, &sql, &order, prefix, rows_per_range, &path, "t", |t| {
                    Error::Internal(t.to_string())
                })
                .unwrap();
            assert_eq!(written.rows, n as u64);
            assert_eq!(read(&path), global, "{rows_per_range} rows a piece");
            let left: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .flatten()
                .filter(|f| f.file_name().to_string_lossy().contains("piece"))
                .collect();
            assert!(left.is_empty(), "staging files removed");
        }
        // An aggregating query is staged whole once, then cut from that file.
        let agg = format!("SELECT k, count(*) AS n, min(v) AS v FROM {MODELS}.t GROUP BY k");
        assert!(aggregates(&e, &agg, "t").unwrap());
        assert!(!aggregates(&e, &sql, "t").unwrap());
        let expected = e
            .query(&format!("{agg} ORDER BY k ASC NULLS FIRST"), "t")
            .unwrap();
        let expected = arrow::compute::concat_batches(&expected[0].schema(), &expected).unwrap();
        for rows_per_range in [1, 5, 1000] {
            let path = dir.path().join(format!("agg-{rows_per_range}.parquet"));
            let order = ["k".to_string()];
            write_sorted_in_ranges(&e, &agg, &order, 1, rows_per_range, &path, "t", |t| {
                Error::Internal(t.to_string())
            })
            .unwrap();
            assert_eq!(read(&path), expected, "{rows_per_range} rows a piece");
            let left: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .flatten()
                .filter(|f| {
                    let n = f.file_name().to_string_lossy().to_string();
                    n.contains("piece") || n.contains("whole")
                })
                .collect();
            assert!(left.is_empty(), "staging files removed");
        }
    }

    /// A window's partition columns are shared across its functions; a window without a
    /// partition leaves none; every scan is counted.
    #[test]
    fn windows_name_their_shared_partition_columns_and_the_columns_read() {
        let dir = tempfile::tempdir().unwrap();
        let e = Engine::new(&EngineConfig::default(), 1, dir.path(), 64 << 20).unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Utf8, true),
            Field::new("b", DataType::Int64, true),
            Field::new("c", DataType::Int64, true),
            Field::new("unused", DataType::Int64, true),
        ]));
        e.register_batches(
            MODELS,
            "t",
            schema.clone(),
            vec![RecordBatch::new_empty(schema)],
        )
        .unwrap();
        let of = |sql: &str| windows_of(&e, sql, "t").unwrap();
        assert_eq!(of("SELECT a, c FROM models.t WHERE b > 1"), None);
        let w = of(
            "SELECT c > lag(c) OVER (PARTITION BY b, a ORDER BY c) AS v, \
             sum(c) OVER (PARTITION BY a ORDER BY b) AS s FROM models.t",
        )
        .unwrap();
        assert_eq!(w.partitioned_by, ["a"]);
        let mut reads = w.reads.clone();
        reads.sort();
        assert_eq!(reads, ["a", "b", "c"]);
        assert_eq!(w.tables, ["models.t"]);
        let w = of(
            "SELECT lag(x.c) OVER (PARTITION BY x.a ORDER BY x.c) FROM models.t x \
             JOIN models.t y ON y.a = x.a",
        )
        .unwrap();
        assert_eq!(w.tables, ["models.t", "models.t"]);
        let w = of("SELECT lag(c) OVER (PARTITION BY a ORDER BY c), lag(c) OVER (ORDER BY c) FROM models.t")
            .unwrap();
        assert!(w.partitioned_by.is_empty());
    }

    /// A per-key query over two keyed inputs (one with null keys) and an input without the
    /// key gives, range by range, the rows of the whole query in its order; a query whose rows
    /// leave their range is refused.
    #[test]
    fn key_ranges_give_the_whole_query() {
        let dir = tempfile::tempdir().unwrap();
        let e = Engine::new(&EngineConfig::default(), 2, dir.path(), 256 << 20).unwrap();
        let n = 2000i64;
        let events = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("t", DataType::Int64, false),
            Field::new("v", DataType::Int64, false),
        ]));
        let b = RecordBatch::try_new(
            events.clone(),
            vec![
                Arc::new(StringArray::from(
                    (0..n)
                        .map(|i| (i % 17 != 0).then(|| format!("a{:03}", (i * 31) % 113)))
                        .collect::<Vec<_>>(),
                )),
                Arc::new(Int64Array::from_iter_values(0..n)),
                Arc::new(Int64Array::from_iter_values(
                    (0..n).map(|i| (i * 7919) % 89),
                )),
            ],
        )
        .unwrap();
        e.register_batches(MODELS, "events", events, vec![b])
            .unwrap();
        let owners = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, false),
            Field::new("owner", DataType::Int64, false),
        ]));
        let b = RecordBatch::try_new(
            owners.clone(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    (0..113).map(|i| format!("a{i:03}")),
                )),
                Arc::new(Int64Array::from_iter_values((0..113).map(|i| i % 5))),
            ],
        )
        .unwrap();
        e.register_batches(MODELS, "owners", owners, vec![b])
            .unwrap();
        let names = Arc::new(Schema::new(vec![
            Field::new("owner", DataType::Int64, false),
            Field::new("name", DataType::Utf8, false),
        ]));
        let b = RecordBatch::try_new(
            names.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(0..5)),
                Arc::new(StringArray::from_iter_values(
                    (0..5).map(|i| format!("rep {i}")),
                )),
            ],
        )
        .unwrap();
        e.register_batches(MODELS, "names", names, vec![b]).unwrap();
        let query = |events: &str, owners: &str, names: &str| {
            format!(
                "SELECT e.k, e.t, e.v - lag(e.v) OVER (PARTITION BY e.k ORDER BY e.t) AS dv, \
                 sum(e.v) OVER (PARTITION BY e.k) AS total, n.name \
                 FROM {events} e LEFT JOIN {owners} o ON o.k = e.k LEFT JOIN {names} n ON n.owner = o.owner \
                 ORDER BY e.k ASC NULLS FIRST, e.t"
            )
        };
        let whole = e
            .query(
                &query("models.events", "models.owners", "models.names"),
                "t",
            )
            .unwrap();
        let whole = arrow::compute::concat_batches(&whole[0].schema(), &whole).unwrap();
        let inputs: Vec<(String, String)> = ["events", "owners", "names"]
            .iter()
            .map(|t| (format!("m__{t}"), format!("{MODELS}.{t}")))
            .collect();
        let ranged = query("scratch.m__events", "scratch.m__owners", "scratch.m__names");
        let read = |p: &Path| {
            let (_, batches) = crate::table_io::read_parquet(p).unwrap();
            arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap()
        };
        let fail = |t: &str| Error::Internal(t.to_string());
        for rows_per_range in [1, 7, 500, 100_000] {
            let path = dir.path().join(format!("out-{rows_per_range}.parquet"));
            let written = write_by_key_ranges(
                &e,
                &ranged,
                "k",
                &inputs,
                rows_per_range,
                &path,
                "t",
                |t| fail(&t.to_string()),
                fail,
            )
            .unwrap();
            assert_eq!(written.rows, n as u64);
            assert_eq!(read(&path), whole, "{rows_per_range} rows a range");
        }
        // Rows above every range, and below the first one.
        for leaks in [
            "SELECT 'zzzz' AS k FROM scratch.m__events",
            "SELECT '' AS k FROM scratch.m__events WHERE k IS NOT NULL",
        ] {
            let path = dir.path().join("leaks.parquet");
            let err = write_by_key_ranges(
                &e,
                leaks,
                "k",
                &inputs,
                50,
                &path,
                "t",
                |t| fail(&t.to_string()),
                |r| Error::Internal(format!("outside {r}")),
            )
            .unwrap_err();
            assert!(err.to_string().contains("outside"), "{err}");
        }
    }
}
