//! Writing a query's rows sorted, for byte-identical tables: one global sort, or piece by piece
//! ([`super::ranges`]) when the table is too large for one sort in the memory pool.

use std::path::Path;
use std::sync::Arc;

use arrow::datatypes::DataType;

use super::{Engine, ident};
use crate::error::{Error, Result};
use crate::table_io::{TableWriter, WrittenFile};

/// How a query's rows are sorted on their way to the file.
pub enum Sorting<'a> {
    /// One `ORDER BY` over all rows.
    Whole,
    /// Routed by ranges of the first order column, about `rows_per_range` rows each, each range
    /// sorted alone; the first `prefix` columns order nearly every row, the rest break ties.
    InRanges { rows_per_range: u64, prefix: usize },
    /// The query itself run range by range of its inputs' first order column (about
    /// `rows_per_range` input rows each), through the views `inputs` (see
    /// [`super::ranges::write_by_key_ranges`]).
    BuildInRanges {
        rows_per_range: u64,
        inputs: &'a [(String, String)],
    },
}

/// Write the rows of `select` (a query) to `path` ordered by `order` (each ascending, nulls
/// first). `bad_key` makes the error for a first order column the ranges cannot cut (not text
/// or an integer; for [`Sorting::BuildInRanges`], `DataType::Null` when no input has it);
/// `outside` the error for a row outside its range (from the range's condition).
#[allow(clippy::too_many_arguments)]
pub fn write_sorted(
    engine: &Engine,
    select: &str,
    order: &[String],
    sorting: Sorting,
    path: &Path,
    what: &str,
    bad_key: impl Fn(&DataType) -> Error,
    outside: impl Fn(&str) -> Error,
) -> Result<WrittenFile> {
    let order_sql: Vec<String> = order
        .iter()
        .map(|c| format!("c.{} ASC NULLS FIRST", ident(c)))
        .collect();
    let sorted = format!(
        "SELECT * FROM ({select}) c ORDER BY {}",
        order_sql.join(", ")
    );
    match sorting {
        Sorting::Whole => {
            let df = engine.sql(&sorted, what)?;
            let schema = Arc::new(df.schema().as_arrow().clone());
            let mut w = TableWriter::create(path, schema, &[])?.encode_threads(engine.threads());
            engine.for_each_batch(df, what, |b| w.write(&b))?;
            w.finish()
        }
        Sorting::InRanges {
            rows_per_range,
            prefix,
        } => super::ranges::write_sorted_in_ranges(
            engine,
            select,
            order,
            prefix,
            engine.rows_for_pool(rows_per_range),
            path,
            what,
            bad_key,
        ),
        Sorting::BuildInRanges {
            rows_per_range,
            inputs,
        } => super::ranges::write_by_key_ranges(
            engine,
            &sorted,
            &order[0],
            inputs,
            engine.rows_for_pool(rows_per_range),
            path,
            what,
            bad_key,
            outside,
        ),
    }
}
