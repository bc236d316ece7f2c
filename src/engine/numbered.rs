//! Parquet files read with their row numbers: the table a source contract runs on.
//!
//! A contract's set rules (`deduplicate`, `version_sequence`, `unique`, …) are computed over a
//! few columns and their findings joined back to the whole row; that needs an identity for a
//! row, and a snapshot row has only one that always exists: its position. `_row` is that
//! position in the table's files (sorted by path, then row order), counted from 0. Partitions
//! are runs of whole row groups, so any number of threads numbers rows the same way, and a
//! query reads only the columns it uses (`_row` costs nothing to read).

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, UInt64Array, new_null_array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Statistics};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ParquetRecordBatchReaderBuilder, RowSelection,
};

use crate::error::{Error, Result};

/// The name of the row-number column.
pub const ROW: &str = "_row";

/// Consecutive row groups of one file, read by one partition.
#[derive(Debug, Clone)]
struct Chunk {
    file: usize,
    row_groups: Vec<usize>,
    first_row: u64,
    rows: u64,
}

/// The files of one table with `_row` appended to `schema` (see the module doc).
#[derive(Debug)]
pub struct NumberedParquet {
    files: Arc<Vec<(PathBuf, ArrowReaderMetadata)>>,
    /// The table's columns, then `_row`.
    schema: SchemaRef,
    parts: Arc<Vec<Vec<Chunk>>>,
    rows: u64,
    /// The partitions asked for (a cluster rebuilds the table from its files and this).
    partitions: usize,
}

impl NumberedParquet {
    /// `files` in the order their rows are numbered, read as `schema` (columns by name, cast to
    /// its types; a column a file lacks reads as null), in at most `partitions` partitions.
    pub fn try_new(files: &[PathBuf], schema: &Schema, partitions: usize) -> Result<Self> {
        let mut opened = Vec::with_capacity(files.len());
        let mut groups: Vec<(usize, usize, u64)> = Vec::new();
        for (i, path) in files.iter().enumerate() {
            let f = File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
            let meta = ArrowReaderMetadata::load(&f, Default::default()).map_err(|e| {
                Error::data(format!("is not a readable Parquet file: {e}")).with_path(path)
            })?;
            for (g, rg) in meta.metadata().row_groups().iter().enumerate() {
                groups.push((i, g, rg.num_rows() as u64));
            }
            opened.push((path.clone(), meta));
        }
        let rows: u64 = groups.iter().map(|g| g.2).sum();
        // Runs of row groups of about rows / partitions each, in file order.
        let target = rows.div_ceil(partitions.max(1) as u64).max(1);
        let mut parts: Vec<Vec<Chunk>> = vec![Vec::new()];
        let (mut first, mut in_part) = (0u64, 0u64);
        for (file, g, n) in groups {
            if in_part >= target {
                parts.push(Vec::new());
                in_part = 0;
            }
            let part = parts.last_mut().expect("one partition at least");
            match part.last_mut() {
                Some(c) if c.file == file => {
                    c.row_groups.push(g);
                    c.rows += n;
                }
                _ => part.push(Chunk {
                    file,
                    row_groups: vec![g],
                    first_row: first,
                    rows: n,
                }),
            }
            first += n;
            in_part += n;
        }
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new(ROW, DataType::UInt64, false));
        Ok(NumberedParquet {
            files: Arc::new(opened),
            schema: Arc::new(Schema::new(fields)),
            parts: Arc::new(parts),
            rows,
            partitions,
        })
    }

    /// The rows at `positions` (their `_row`), in that order's sorted order, with the table's
    /// columns (no `_row`): reads only the row groups that hold them, and only those rows.
    pub fn read_rows(&self, positions: &[u64]) -> Result<Vec<RecordBatch>> {
        let mut wanted: Vec<u64> = positions.to_vec();
        wanted.sort_unstable();
        wanted.dedup();
        let columns: Vec<usize> = (0..self.schema.fields().len() - 1).collect();
        let schema = Arc::new(
            self.schema
                .project(&columns)
                .map_err(|e| Error::arrow("row read", e))?,
        );
        let mut out = Vec::new();
        let mut first = 0u64;
        let mut at = 0usize;
        for (file, (path, meta)) in self.files.iter().enumerate() {
            for (g, rg) in meta.metadata().row_groups().iter().enumerate() {
                let n = rg.num_rows() as u64;
                let end = first + n;
                let from = at;
                while at < wanted.len() && wanted[at] < end {
                    at += 1;
                }
                if at > from {
                    let ranges = wanted[from..at].iter().map(|&r| {
                        let local = (r - first) as usize;
                        local..local + 1
                    });
                    let selection = RowSelection::from_consecutive_ranges(ranges, n as usize);
                    let chunk = Chunk {
                        file,
                        row_groups: vec![g],
                        first_row: first,
                        rows: n,
                    };
                    for b in read_chunk(&self.files, &chunk, &schema, Some(selection))
                        .map_err(|e| Error::Internal(format!("{}: {e}", path.display())))?
                    {
                        out.push(
                            b.map_err(|e| Error::Internal(format!("{}: {e}", path.display())))?,
                        );
                    }
                }
                first = end;
            }
        }
        Ok(out)
    }

    /// The scan of the columns at `projection` (positions in [`TableProvider::schema`]).
    fn exec(&self, projection: Vec<usize>) -> datafusion::common::Result<NumberedExec> {
        let schema = Arc::new(self.schema.project(&projection)?);
        let stats = self.statistics(&schema);
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(self.parts.len()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(NumberedExec {
            table: self.description(),
            projection,
            files: self.files.clone(),
            parts: self.parts.clone(),
            schema,
            stats: Arc::new(stats),
            properties,
        })
    }

    /// What rebuilds this table elsewhere: its files, columns and partitions.
    pub fn description(&self) -> Description {
        Description {
            files: self.files.iter().map(|(p, _)| p.clone()).collect(),
            columns: columns_of(&self.schema),
            partitions: self.partitions,
        }
    }

    /// How many rows the files hold.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The row count only. A byte size would be the files' encoded size, which can be far
    /// below the decoded rows' (dictionaries, run lengths): the engine, comparing it with an
    /// in-memory key set's, then built a join's hash table on these rows. Without it, the
    /// engine compares row counts.
    fn statistics(&self, schema: &Schema) -> Statistics {
        Statistics::new_unknown(schema).with_num_rows(Precision::Exact(self.rows as usize))
    }
}

#[async_trait::async_trait]
impl TableProvider for NumberedParquet {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        let projection: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        Ok(Arc::new(self.exec(projection)?))
    }

    fn statistics(&self) -> Option<Statistics> {
        Some(self.statistics(&self.schema))
    }
}

/// A [`NumberedParquet`] as a cluster's scheduler and executors rebuild it: the files (which
/// they must reach at the same paths), the table's columns without `_row`, as `(name, Arrow
/// type, nullable)`, and the partitions asked for.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Description {
    pub files: Vec<PathBuf>,
    pub columns: Vec<(String, String, bool)>,
    pub partitions: usize,
}

impl Description {
    /// The table again, its files' metadata read anew.
    pub fn open(&self) -> Result<NumberedParquet> {
        let mut fields = Vec::with_capacity(self.columns.len());
        for (name, ty, nullable) in &self.columns {
            let ty: DataType = ty
                .parse()
                .map_err(|e| Error::Internal(format!("column `{name}`: type {ty}: {e}")))?;
            fields.push(Field::new(name, ty, *nullable));
        }
        NumberedParquet::try_new(&self.files, &Schema::new(fields), self.partitions)
    }

    /// The scan of the columns at `projection`, as the table's own scan would plan it.
    pub fn exec(&self, projection: Vec<usize>) -> Result<Arc<dyn ExecutionPlan>> {
        let table = self.open()?;
        Ok(Arc::new(table.exec(projection).map_err(|e| {
            Error::Internal(format!("numbered scan: {e}"))
        })?))
    }
}

/// The columns of a numbered table's schema, without `_row`.
fn columns_of(schema: &Schema) -> Vec<(String, String, bool)> {
    schema
        .fields()
        .iter()
        .filter(|f| f.name() != ROW)
        .map(|f| (f.name().clone(), f.data_type().to_string(), f.is_nullable()))
        .collect()
}

/// The scan of a [`NumberedParquet`] with the columns a query reads.
#[derive(Debug)]
pub struct NumberedExec {
    table: Description,
    projection: Vec<usize>,
    files: Arc<Vec<(PathBuf, ArrowReaderMetadata)>>,
    parts: Arc<Vec<Vec<Chunk>>>,
    /// The projected columns (possibly including `_row`).
    schema: SchemaRef,
    stats: Arc<Statistics>,
    properties: Arc<PlanProperties>,
}

impl NumberedExec {
    /// The table it scans and the columns it reads, for a cluster's codec.
    pub fn description(&self) -> (&Description, &[usize]) {
        (&self.table, &self.projection)
    }
}

impl DisplayAs for NumberedExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let names: Vec<&str> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        write!(
            f,
            "NumberedParquetExec: files={}, partitions={}, projection=[{}]",
            self.files.len(),
            self.parts.len(),
            names.join(", ")
        )
    }
}

impl ExecutionPlan for NumberedExec {
    fn name(&self) -> &str {
        "NumberedParquetExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> datafusion::common::Result<TreeNodeRecursion>,
    ) -> datafusion::common::Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> datafusion::common::Result<Arc<dyn ExecutionPlan>> {
        if children.is_empty() {
            Ok(self)
        } else {
            Err(DataFusionError::Internal(
                "a numbered Parquet scan has no inputs".into(),
            ))
        }
    }

    fn partition_statistics(
        &self,
        partition: Option<usize>,
    ) -> datafusion::common::Result<Arc<Statistics>> {
        Ok(match partition.and_then(|p| self.parts.get(p)) {
            Some(part) => Arc::new(
                Statistics::new_unknown(&self.schema)
                    .with_num_rows(Precision::Exact(part.iter().map(|c| c.rows as usize).sum())),
            ),
            None => self.stats.clone(),
        })
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> datafusion::common::Result<SendableRecordBatchStream> {
        let chunks = self.parts.get(partition).cloned().unwrap_or_default();
        let (files, schema) = (self.files.clone(), self.schema.clone());
        let batches =
            chunks
                .into_iter()
                .flat_map(move |c| match read_chunk(&files, &c, &schema, None) {
                    Ok(it) => it,
                    Err(e) => Box::new(std::iter::once(Err(e))),
                });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            futures::stream::iter(batches),
        )))
    }
}

type Batches = Box<dyn Iterator<Item = datafusion::common::Result<RecordBatch>> + Send>;

/// The batches of one chunk, shaped as `schema` (`_row` where the schema has it).
fn read_chunk(
    files: &Arc<Vec<(PathBuf, ArrowReaderMetadata)>>,
    c: &Chunk,
    schema: &SchemaRef,
    selection: Option<RowSelection>,
) -> datafusion::common::Result<Batches> {
    let (path, meta) = &files[c.file];
    let shown = path.display().to_string();
    let ext = move |e: String| DataFusionError::External(format!("{shown}: {e}").into());
    let file = File::open(path).map_err(|e| ext(e.to_string()))?;
    let file_schema = meta.schema().clone();
    // Where each output column comes from: a file column (by position among those read), the
    // row's position, or nothing (null). A file written with `_row` (a typed copy of the
    // snapshot) keeps the numbers it was written with.
    enum From {
        File(usize),
        Position,
        Null,
    }
    let mut read: Vec<usize> = Vec::new();
    let mut sources: Vec<From> = Vec::new();
    for f in schema.fields() {
        sources.push(match file_schema.index_of(f.name()) {
            Ok(i) => {
                read.push(i);
                From::File(i)
            }
            Err(_) if f.name() == ROW => From::Position,
            Err(_) => From::Null,
        });
    }
    let mask = ProjectionMask::roots(meta.parquet_schema(), read.iter().copied());
    let mut builder = ParquetRecordBatchReaderBuilder::new_with_metadata(file, meta.clone())
        .with_row_groups(c.row_groups.clone())
        .with_projection(mask)
        .with_batch_size(8192);
    if let Some(selection) = selection {
        builder = builder.with_row_selection(selection);
    }
    let reader = builder.build().map_err(|e| ext(e.to_string()))?;
    let schema = schema.clone();
    let mut next_row = c.first_row;
    let ext = ext.clone();
    Ok(Box::new(reader.map(move |b| {
        let b = b.map_err(|e| ext(e.to_string()))?;
        let n = b.num_rows();
        let mut cols: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
        for (f, src) in schema.fields().iter().zip(&sources) {
            let col = match src {
                From::File(i) => {
                    let at = read
                        .binary_search(i)
                        .map_err(|_| ext("column map".into()))?;
                    let c = b.column(at);
                    if c.data_type() == f.data_type() {
                        c.clone()
                    } else {
                        arrow::compute::cast(c, f.data_type())?
                    }
                }
                From::Position => {
                    Arc::new(UInt64Array::from_iter_values(next_row..next_row + n as u64))
                        as ArrayRef
                }
                From::Null => new_null_array(f.data_type(), n),
            };
            cols.push(col);
        }
        next_row += n as u64;
        Ok(RecordBatch::try_new(schema.clone(), cols)?)
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};

    fn write(path: &std::path::Path, values: &[i64], group: usize) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("v", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        let b = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(values.to_vec())),
                Arc::new(StringArray::from(
                    values.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
                )),
            ],
        )
        .unwrap();
        crate::table_io::write_in_row_groups(path, &b, group);
    }

    /// Rows are numbered by position across files and row groups, whatever the partitioning,
    /// and a projection without `_row`, or of `_row` alone, reads.
    #[test]
    fn rows_are_numbered_by_position_for_any_partitioning() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.parquet"), dir.path().join("b.parquet"));
        write(&a, &(0..25).collect::<Vec<_>>(), 4);
        write(&b, &(25..40).collect::<Vec<_>>(), 6);
        let schema = Schema::new(vec![
            Field::new("v", DataType::Int64, false),
            Field::new("missing", DataType::Utf8, true),
        ]);
        for partitions in [1, 2, 3, 16] {
            let ctx = datafusion::prelude::SessionContext::new();
            let t = NumberedParquet::try_new(&[a.clone(), b.clone()], &schema, partitions).unwrap();
            ctx.register_table("t", Arc::new(t)).unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let q = |sql: &str| {
                rt.block_on(async { ctx.sql(sql).await.unwrap().collect().await.unwrap() })
            };
            let r = q(
                "SELECT COUNT(*) AS n, SUM(CASE WHEN v = CAST(_row AS BIGINT) THEN 1 ELSE 0 END) AS same, COUNT(missing) AS m FROM t",
            );
            let n = r[0]
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .value(0);
            let same = r[0]
                .column(1)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .value(0);
            let m = r[0]
                .column(2)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .value(0);
            assert_eq!((n, same, m), (40, 40, 0), "{partitions} partitions");
            let rows = NumberedParquet::try_new(&[a.clone(), b.clone()], &schema, partitions)
                .unwrap()
                .read_rows(&[39, 3, 24, 25, 3])
                .unwrap();
            let v: Vec<i64> = rows
                .iter()
                .flat_map(|b| {
                    b.column(0)
                        .as_any()
                        .downcast_ref::<Int64Array>()
                        .unwrap()
                        .values()
                        .to_vec()
                })
                .collect();
            assert_eq!(v, vec![3, 24, 25, 39], "rows by position, each once");
            assert_eq!(rows[0].num_columns(), 2, "the table's columns, no _row");
            let r = q("SELECT MAX(_row) FROM t");
            let max = r[0]
                .column(0)
                .as_any()
                .downcast_ref::<UInt64Array>()
                .unwrap()
                .value(0);
            assert_eq!(max, 39);
        }
    }
}
