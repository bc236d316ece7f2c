//! Writing a large result in a total order without one global sort.
//!
//! A single sort of tens of millions of wide rows must merge its spills, and DataFusion 55's
//! sort-merge can exhaust its memory pool doing so (apache/datafusion#24739, fixed after 55).
//! [`write_sorted_in_ranges`] cuts the range of the first sort column into pieces of about
//! `rows_per_range` rows, so only one piece is ever sorted at once:
//!
//! 1. rows per key value, in key order (a narrow aggregate over the key alone) give the
//!    pieces' lower bounds;
//! 2. one pass over the result routes each row to its piece's staging file;
//! 3. each piece is read whole, sorted here (not by the engine: by the declared key in
//!    arrow's row format, the other columns breaking ties) and appended to the output.
//!
//! The rows come out in exactly the order one global sort would give. Each piece is read
//! once: routing in one pass replaces a scan of the whole staged result per piece. A piece
//! and its keys are held outside the engine's memory pool, so `rows_per_range` bounds that
//! memory (4 M of `usage_billable`'s rows: about 1 GiB at the peak).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use arrow::datatypes::{DataType, Int64Type};

use super::{Engine, ident};
use crate::error::{Error, Result};
use crate::table_io::{TableWriter, WrittenFile};

/// Rows a staging file's row groups hold: small, because every piece's writer is open at
/// once (at 4 M rows a piece, a 660 M-row result has 165).
const STAGING_ROW_GROUP_ROWS: usize = 1 << 16;

/// Rows routed to all pieces held in memory before they are encoded.
const ROUTED_ROWS: usize = 1 << 21;

/// The pieces' lower bounds: the first is the smallest key.
enum Bounds {
    Text(Vec<String>),
    Int(Vec<i64>),
}

impl Bounds {
    fn len(&self) -> usize {
        match self {
            Bounds::Text(b) => b.len(),
            Bounds::Int(b) => b.len(),
        }
    }

    /// Each row's piece: 0 for a null key, then 1 + the last bound at or below the key.
    fn pieces(&self, keys: &ArrayRef) -> Result<Vec<usize>> {
        let piece = |i: usize, above: usize| {
            if keys.is_null(i) { 0 } else { above.max(1) }
        };
        Ok(match self {
            Bounds::Text(b) => {
                let k = cast(keys, &DataType::Utf8)?;
                let k = k.as_string::<i32>();
                (0..k.len())
                    .map(|i| piece(i, b.partition_point(|x| x.as_str() <= k.value(i))))
                    .collect()
            }
            Bounds::Int(b) => {
                let k = cast(keys, &DataType::Int64)?;
                let k = k.as_primitive::<Int64Type>();
                (0..k.len())
                    .map(|i| piece(i, b.partition_point(|x| *x <= k.value(i))))
                    .collect()
            }
        })
    }
}

fn cast(a: &ArrayRef, to: &DataType) -> Result<ArrayRef> {
    arrow::compute::cast(a, to).map_err(|e| Error::arrow("cannot cast a sort key", e))
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
    for b in &counts {
        let n = b
            .column(1)
            .as_any()
            .downcast_ref::<arrow::array::Int64Array>()
            .ok_or_else(|| Error::Internal("count(*) is not Int64".into()))?;
        for i in 0..b.num_rows() {
            if b.column(0).is_valid(i) && (starts.is_empty() || filled >= rows_per_range) {
                starts.push(b.column(0).slice(i, 1));
                filled = 0;
            }
            filled += n.value(i) as u64;
        }
    }
    let bounds = if text {
        let values = starts
            .iter()
            .map(|a| {
                Ok(cast(a, &DataType::Utf8)?
                    .as_string::<i32>()
                    .value(0)
                    .to_string())
            })
            .collect::<Result<_>>()?;
        Bounds::Text(values)
    } else {
        let values = starts
            .iter()
            .map(|a| {
                Ok(cast(a, &DataType::Int64)?
                    .as_primitive::<Int64Type>()
                    .value(0))
            })
            .collect::<Result<_>>()?;
        Bounds::Int(values)
    };

    // Route every row to its piece: piece 0 holds the null keys, piece i the i-th range.
    let df = engine.sql(sql, what)?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let pieces = bounds.len() + 1;
    let staged: Vec<PathBuf> = (0..pieces)
        .map(|i| path.with_extension(format!("piece-{i:05}.parquet")))
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
        .map_err(|e| Error::arrow(format!("{what}: no sort key `{key}`"), e))?;
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
    let mut staged_rows = Vec::with_capacity(pieces);
    for p in 0..pieces {
        router.flush(p)?;
        let w = router.writers[p].take().expect("a piece's writer");
        staged_rows.push(w.finish()?.rows);
    }

    // Sort each piece and append it.
    let mut out = TableWriter::create(path, schema, &[])?.encode_threads(engine.threads());
    for (p, file) in staged.iter().enumerate() {
        if staged_rows[p] > 0 {
            let (_, piece) = crate::table_io::read_parquet(file)?;
            let sorted = sorted_rows(&piece, order, prefix)?;
            let piece: Vec<&RecordBatch> = piece.iter().collect();
            for chunk in sorted.chunks(WRITE_ROWS) {
                let b = arrow::compute::interleave_record_batch(&piece, chunk)
                    .map_err(|e| Error::arrow(what.to_string(), e))?;
                out.write(&b)?;
            }
        }
        let _ = std::fs::remove_file(file);
    }
    out.finish()
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
    }
}
