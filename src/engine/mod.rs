//! The one place that builds a DataFusion session (SPEC §2): every SQL step of a build runs
//! here, in this process or on a Ballista cluster ([`Runner`]; [`cluster`] with
//! `--features distributed`). Tables are registered by location (a local path now; an
//! object-store URL is a change here only), results are streamed or collected, and gtmos'
//! functions are registered once ([`functions`]).
//!
//! Determinism: `target_partitions` is pinned by configuration, never derived from the thread
//! count, so plans — and the order partial results combine in — do not depend on `--threads`.
//! Threads only size the Tokio runtime that executes the plans.
//!
//! One optimizer rule is added to DataFusion's ([`dates::FastDates`]): casts of UTC timestamps
//! to dates, and dates plus or minus whole days, run as integer arithmetic instead of Arrow's
//! per-value calendar conversions.

#[cfg(feature = "distributed")]
pub mod cluster;
pub mod ctes;
pub mod dates;
pub mod key_hash;
pub mod numbered;
pub mod ranges;
pub mod repeated;
pub mod udf;
pub mod write;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::catalog::MemorySchemaProvider;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::{ScalarUDF, WindowUDF};
use datafusion::prelude::{DataFrame, ParquetReadOptions, SessionConfig, SessionContext};
use futures::StreamExt;

use crate::error::{Error, Result};

/// The schemas tables are registered in: `sources.<table>` (contract-checked source tables)
/// and `models.<model>` (built models).
pub const SOURCES: &str = "sources";
pub const MODELS: &str = "models";
/// Raw, unchecked source tables, read only by contracts.
pub const RAW: &str = "raw";
/// Frozen rows of closed periods: `closed.<model>`.
pub const CLOSED: &str = "closed";
/// Small intermediate tables data tests compute first (key sets, unmatched keys).
pub const SCRATCH: &str = "scratch";
/// The last good published version of a model blocked this run: `last_good.<model>`.
pub const LAST_GOOD: &str = "last_good";

/// A small table computed before the statements that read it ([`Engine::materialize`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Scratch {
    /// The rows of a query.
    Rows(String),
    /// Each combination of the query's `columns` that occurs in more than one of its rows, with
    /// how many (`_n`), found without grouping every combination ([`Engine::repeated`]).
    Repeated { sql: String, columns: Vec<String> },
    /// The values of the query's one UInt64 column `_h` (a `key_hash`) that occur in more than
    /// one of its rows.
    RepeatedHashes(String),
}

impl Scratch {
    /// The table as one SQL query, for a script or another engine.
    pub fn sql(&self) -> String {
        match self {
            Scratch::Rows(sql) => sql.clone(),
            Scratch::Repeated { sql, columns } => {
                let cols: Vec<String> = columns.iter().map(|c| ident(c)).collect();
                let cols = cols.join(", ");
                format!(
                    "SELECT {cols}, COUNT(*) AS _n FROM ({sql}) r GROUP BY {cols} HAVING COUNT(*) > 1"
                )
            }
            Scratch::RepeatedHashes(sql) => {
                format!("SELECT _h FROM ({sql}) r GROUP BY _h HAVING COUNT(*) > 1")
            }
        }
    }
}

/// Engine settings that affect results are recorded in the build's effective config.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EngineConfig {
    pub target_partitions: usize,
    pub batch_size: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            target_partitions: 4,
            batch_size: 8192,
        }
    }
}

/// Where a session's plans run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Runner {
    /// In this process.
    #[default]
    Local,
    /// On a Ballista cluster, through its scheduler (`df://host:port`): the SQL is planned
    /// here and executed by the cluster's executors ([`cluster`], `--features distributed`).
    Ballista { scheduler: String },
}

pub struct Engine {
    ctx: SessionContext,
    runtime: tokio::runtime::Runtime,
    threads: usize,
    memory_limit: usize,
    /// Where operators (and [`repeated`]'s buckets) spill.
    spill_dir: PathBuf,
    /// On a cluster, in-memory tables cannot travel with a plan: [`Engine::register_batches`]
    /// writes them here as Parquet (next to the run's other files) and registers the file.
    shared_tables: Option<(PathBuf, std::sync::atomic::AtomicU64)>,
}

/// Wrap a DataFusion error with what gtmos was doing.
pub fn df_err(context: impl Into<String>) -> impl FnOnce(DataFusionError) -> Error {
    let context = context.into();
    move |e| Error::Engine {
        context,
        source: Box::new(e),
    }
}

/// The session settings every engine runs with, local or on a cluster.
fn session_config(
    config: &EngineConfig,
    memory_limit: usize,
    base: SessionConfig,
) -> SessionConfig {
    base.with_target_partitions(config.target_partitions)
        .with_batch_size(config.batch_size)
        .with_information_schema(true)
        .set_bool(
            "datafusion.execution.parquet.schema_force_view_types",
            false,
        )
        .set_bool("datafusion.execution.parquet.pushdown_filters", false)
        // Headroom each external sort keeps for merging its spill files: DataFusion's 10 MiB
        // default let other consumers take the memory a sorter freed, and the merge of a
        // 66 M-row sort then failed with ResourcesExhausted at 100,000 accounts.
        .set_usize(
            "datafusion.execution.sort_spill_reservation_bytes",
            (memory_limit / 32).clamp(1 << 20, 64 << 20),
        )
}

/// A memory pool of `memory_limit` bytes that spills to `spill_dir`.
fn runtime_env(
    memory_limit: usize,
    spill_dir: &Path,
) -> Result<Arc<datafusion::execution::runtime_env::RuntimeEnv>> {
    RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(FairSpillPool::new(memory_limit)))
        .with_disk_manager_builder(
            DiskManagerBuilder::default()
                .with_mode(DiskManagerMode::Directories(vec![spill_dir.to_path_buf()])),
        )
        .build_arc()
        .map_err(df_err("cannot configure the engine"))
}

impl Engine {
    /// A session with `threads` worker threads, spilling to `spill_dir` beyond `memory_limit` bytes.
    pub fn new(
        config: &EngineConfig,
        threads: usize,
        spill_dir: &Path,
        memory_limit: usize,
    ) -> Result<Engine> {
        Engine::start(config, threads, spill_dir, memory_limit, &Runner::Local)
    }

    /// [`Engine::new`], running its plans where `runner` says.
    pub fn start(
        config: &EngineConfig,
        threads: usize,
        spill_dir: &Path,
        memory_limit: usize,
        runner: &Runner,
    ) -> Result<Engine> {
        std::fs::create_dir_all(spill_dir)
            .map_err(|e| Error::io("cannot create spill directory", spill_dir, e))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("gtmos-engine")
            .enable_all()
            .build()
            .map_err(|e| Error::Internal(format!("cannot start the engine runtime: {e}")))?;
        let rt = runtime_env(memory_limit, spill_dir)?;
        let (ctx, shared_tables) = match runner {
            Runner::Local => {
                let session = session_config(config, memory_limit, SessionConfig::new());
                (SessionContext::new_with_config_rt(session, rt), None)
            }
            Runner::Ballista { scheduler } => {
                let ctx = runtime.block_on(cluster_session(config, memory_limit, rt, scheduler))?;
                let dir = spill_dir.join("tables");
                std::fs::create_dir_all(&dir)
                    .map_err(|e| Error::io("cannot create directory", &dir, e))?;
                (ctx, Some((dir, std::sync::atomic::AtomicU64::new(0))))
            }
        };
        let catalog = ctx
            .catalog("datafusion")
            .ok_or_else(|| Error::Internal("the default catalog is missing".into()))?;
        for schema in [RAW, SOURCES, MODELS, CLOSED, SCRATCH, LAST_GOOD] {
            catalog
                .register_schema(schema, Arc::new(MemorySchemaProvider::new()))
                .map_err(df_err(format!("cannot create schema {schema}")))?;
        }
        register_functions(&ctx);
        Ok(Engine {
            ctx,
            runtime,
            threads: threads.max(1),
            memory_limit,
            spill_dir: spill_dir.to_path_buf(),
            shared_tables,
        })
    }

    /// The bytes its memory pool holds before operators spill (`--memory-mb`).
    pub fn memory_limit(&self) -> usize {
        self.memory_limit
    }

    /// A piece size in rows, declared for a 4 GiB pool, for this session's pool: every piece
    /// of work cut by rows (a model's `sort_in_ranges` and `build_in_ranges`, a windowed
    /// check's pieces) follows `--memory-mb`, so the flag bounds what a piece holds.
    pub fn rows_for_pool(&self, rows_at_4_gib: u64) -> u64 {
        ((rows_at_4_gib as u128 * self.memory_limit as u128) >> 32).max(1) as u64
    }

    /// The worker threads it was started with (`--threads`); table writers encode on as many.
    pub fn threads(&self) -> usize {
        self.threads
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// Register the Parquet file(s) at `location` as `schema.name`, read with `table_schema`.
    pub fn register_parquet(
        &self,
        schema: &str,
        name: &str,
        location: &str,
        table_schema: Option<SchemaRef>,
    ) -> Result<()> {
        self.register_parquet_with(schema, name, location, table_schema, false)
    }

    /// [`Engine::register_parquet`]; with `pushdown_filters`, queries evaluate their filters
    /// on this table while decoding it (late materialization: the other columns are decoded
    /// only for the rows that pass). That pays on a large table of which readers keep a small
    /// part, and costs a little on the rest, so it is a per-table choice (a model's
    /// `config(pushdown_filters=true)`), not a session setting.
    pub fn register_parquet_with(
        &self,
        schema: &str,
        name: &str,
        location: &str,
        table_schema: Option<SchemaRef>,
        pushdown_filters: bool,
    ) -> Result<()> {
        use datafusion::datasource::file_format::options::ReadOptions;
        let qualified = format!("{schema}.{name}");
        let _ = self.ctx.deregister_table(qualified.as_str());
        let opts = ParquetReadOptions {
            schema: table_schema.as_deref(),
            ..Default::default()
        };
        let mut table_options = self.ctx.copied_table_options();
        table_options.parquet.global.pushdown_filters = pushdown_filters;
        let listing = opts.to_listing_options(&self.ctx.copied_config(), table_options);
        self.block_on(self.ctx.register_listing_table(
            qualified.as_str(),
            location,
            listing,
            table_schema,
            None,
        ))
        .map_err(df_err(format!("cannot register {location} as {qualified}")))
    }

    /// Register the Parquet `files` as `schema.name` with their row numbers
    /// ([`numbered::NumberedParquet`]), read as `table_schema`.
    pub fn register_numbered(
        &self,
        schema: &str,
        name: &str,
        files: &[std::path::PathBuf],
        table_schema: &arrow::datatypes::Schema,
    ) -> Result<Arc<numbered::NumberedParquet>> {
        let qualified = format!("{schema}.{name}");
        let _ = self.ctx.deregister_table(qualified.as_str());
        // On a cluster, one partition: Ballista hands each task a slice of a stage's
        // partitions by rewriting the scans it knows (Parquet, memory, shuffle reads), and
        // leaves any other scan whole, so every task of a stage over a scan of N partitions
        // read all N: each row N times.
        let partitions = if self.shared_tables.is_some() {
            1
        } else {
            self.threads
        };
        let table = Arc::new(numbered::NumberedParquet::try_new(
            files,
            table_schema,
            partitions,
        )?);
        self.ctx
            .register_table(qualified.as_str(), table.clone())
            .map_err(df_err(format!("cannot register {qualified}")))?;
        Ok(table)
    }

    /// The columns of `relation`.
    pub fn schema_of(&self, relation: &str, what: &str) -> Result<SchemaRef> {
        let df = self.sql(&format!("SELECT * FROM {relation}"), what)?;
        Ok(Arc::new(df.schema().as_arrow().clone()))
    }

    /// Register in-memory batches as `schema.name`.
    pub fn register_batches(
        &self,
        schema: &str,
        name: &str,
        table_schema: SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> Result<()> {
        let qualified = format!("{schema}.{name}");
        if let Some((dir, n)) = &self.shared_tables {
            let n = n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = dir.join(format!("{n}-{schema}.{name}.parquet"));
            let mut w = crate::table_io::TableWriter::create(&path, table_schema.clone(), &[])?;
            for b in &batches {
                w.write(b)?;
            }
            w.finish()?;
            return self.register_parquet(
                schema,
                name,
                &path.to_string_lossy(),
                Some(table_schema),
            );
        }
        let _ = self.ctx.deregister_table(qualified.as_str());
        let table = MemTable::try_new(table_schema, vec![batches])
            .map_err(df_err(format!("cannot register {qualified}")))?;
        self.ctx
            .register_table(qualified.as_str(), Arc::new(table))
            .map(|_| ())
            .map_err(df_err(format!("cannot register {qualified}")))
    }

    /// Register the query `sql` as the view `schema.name`. The query is planned now, so it may
    /// read the table the view replaces.
    pub fn register_view(&self, schema: &str, name: &str, sql: &str, what: &str) -> Result<()> {
        let df = self.sql(sql, what)?;
        let view = df.into_view();
        let qualified = format!("{schema}.{name}");
        let _ = self.ctx.deregister_table(qualified.as_str());
        self.ctx
            .register_table(qualified.as_str(), view)
            .map(|_| ())
            .map_err(df_err(format!("cannot register {qualified}")))
    }

    /// Compute each (`schema.name`, table) in order and register its rows in memory under
    /// that name, so later statements read it with exact statistics.
    pub fn materialize(&self, tables: &[(String, Scratch)], what: &str) -> Result<()> {
        for (qualified, table) in tables {
            let (schema, batches) = match table {
                Scratch::Rows(sql) => {
                    let df = self.sql(sql, what)?;
                    let schema = Arc::new(df.schema().as_arrow().clone());
                    (schema, self.collect(df, what)?)
                }
                Scratch::Repeated { sql, columns } => self.repeated(sql, columns, what)?,
                Scratch::RepeatedHashes(sql) => self.repeated_hashes(sql, what)?,
            };
            let (schema_name, name) = qualified
                .split_once('.')
                .ok_or_else(|| Error::Internal(format!("{what}: unqualified table {qualified}")))?;
            self.register_batches(schema_name, name, schema, batches)?;
        }
        Ok(())
    }

    /// Plan a SQL statement. `what` names the step for error messages.
    pub fn sql(&self, sql: &str, what: &str) -> Result<DataFrame> {
        self.block_on(self.ctx.sql(sql)).map_err(df_err(what))
    }

    pub fn collect(&self, df: DataFrame, what: &str) -> Result<Vec<RecordBatch>> {
        self.block_on(df.collect()).map_err(df_err(what))
    }

    /// Run a SQL statement and collect its result.
    pub fn query(&self, sql: &str, what: &str) -> Result<Vec<RecordBatch>> {
        let df = self.sql(sql, what)?;
        self.collect(df, what)
    }

    /// Execute `df`, handing each result batch to `f` as it streams.
    pub fn for_each_batch(
        &self,
        df: DataFrame,
        what: &str,
        mut f: impl FnMut(RecordBatch) -> Result<()>,
    ) -> Result<()> {
        self.block_on(async {
            let mut stream = df.execute_stream().await.map_err(df_err(what))?;
            while let Some(b) = stream.next().await {
                f(b.map_err(df_err(what))?)?;
            }
            Ok(())
        })
    }

    /// Drop the table `schema.name` from the session, if registered.
    pub fn deregister(&self, schema: &str, name: &str) {
        let _ = self
            .ctx
            .deregister_table(format!("{schema}.{name}").as_str());
    }

    pub fn has_table(&self, schema: &str, name: &str) -> bool {
        self.ctx
            .table_exist(format!("{schema}.{name}").as_str())
            .unwrap_or(false)
    }
}

/// A session whose plans run on the Ballista cluster behind `scheduler`.
#[cfg(feature = "distributed")]
async fn cluster_session(
    config: &EngineConfig,
    memory_limit: usize,
    rt: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    scheduler: &str,
) -> Result<SessionContext> {
    cluster::client(
        session_config(config, memory_limit, cluster::client_config()),
        rt,
        scheduler,
    )
    .await
}

#[cfg(not(feature = "distributed"))]
async fn cluster_session(
    _config: &EngineConfig,
    _memory_limit: usize,
    _rt: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    scheduler: &str,
) -> Result<SessionContext> {
    Err(Error::usage(format!(
        "--engine ballista (scheduler {scheduler}) needs a gtmos built with `--features distributed`"
    )))
}

/// Every function gtmos adds to DataFusion: registered with each session by [`Engine::new`],
/// and by name with a cluster's scheduler and executors, since plans name their functions.
pub fn functions() -> (Vec<ScalarUDF>, Vec<WindowUDF>) {
    let mut scalar = udf::scalar_functions();
    scalar.push(ScalarUDF::from(key_hash::KeyHash::new()));
    // So plans naming it resolve: the `FastDates` rule writes it.
    scalar.push(ScalarUDF::from(dates::UtcDate::default()));
    (scalar, udf::window_functions())
}

/// Register gtmos' functions and its optimizer rule ([`dates::FastDates`]) with a session.
pub fn register_functions(ctx: &SessionContext) {
    let (scalar, window) = functions();
    for f in scalar {
        ctx.register_udf(f);
    }
    for f in window {
        ctx.register_udwf(f);
    }
    ctx.add_optimizer_rule(Arc::new(dates::FastDates));
}

/// A SQL string literal.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A SQL identifier, quoted when it is not a plain lower-case name.
pub fn ident(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
    {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

/// A piece of a generated identifier (a scratch table's name): lower case, every character
/// other than a letter or digit as `_`.
pub fn ident_part(s: &str) -> String {
    s.chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '_',
        })
        .collect()
}

/// A UTC timestamp literal with microsecond precision, comparable with `timestamp` columns.
pub fn timestamp_literal(micros: i64) -> String {
    format!("arrow_cast({micros}, 'Timestamp(µs, \"UTC\")')")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        let dir = tempfile::tempdir().unwrap();
        Engine::new(&EngineConfig::default(), 2, dir.path(), 256 << 20).unwrap()
    }

    #[test]
    fn piece_sizes_follow_the_memory_pool() {
        let dir = tempfile::tempdir().unwrap();
        let with = |mib: usize| Engine::new(&EngineConfig::default(), 2, dir.path(), mib << 20);
        assert_eq!(with(4096).unwrap().rows_for_pool(4_000_000), 4_000_000);
        assert_eq!(with(1024).unwrap().rows_for_pool(4_000_000), 1_000_000);
        assert_eq!(with(12288).unwrap().rows_for_pool(4_000_000), 12_000_000);
        // 256 MiB: a sixteenth of 4 GiB; never less than one row.
        assert_eq!(engine().rows_for_pool(4_000_000), 250_000);
        assert_eq!(engine().rows_for_pool(1), 1);
    }

    #[test]
    fn pushdown_filters_is_a_per_table_choice_with_the_same_rows() {
        use arrow::array::{AsArray, Int64Array};
        let e = engine();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("x", arrow::datatypes::DataType::Int64, true),
        ]));
        let b = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(Int64Array::from_iter_values(0..100))],
        )
        .unwrap();
        crate::table_io::write_table(&path, schema, &[], &[b]).unwrap();
        let at = path.to_string_lossy();
        e.register_parquet_with(MODELS, "late", &at, None, true)
            .unwrap();
        e.register_parquet(MODELS, "plain", &at, None).unwrap();
        for (table, late) in [("late", true), ("plain", false)] {
            let q = format!("select sum(x) from {MODELS}.{table} where x >= 90");
            let sum = e.query(&q, "test").unwrap()[0]
                .column(0)
                .as_primitive::<arrow::datatypes::Int64Type>()
                .value(0);
            assert_eq!(sum, (90..100).sum::<i64>());
            let plan = e.query(&format!("explain analyze {q}"), "test").unwrap();
            let text: String = plan
                .iter()
                .flat_map(|b| {
                    let c = b.column(1).as_string::<i32>();
                    (0..b.num_rows()).map(move |i| c.value(i).to_string())
                })
                .collect();
            // Late materialization drops rows while decoding; without it the filter runs after.
            assert_eq!(
                text.contains("pushdown_rows_pruned=90"),
                late,
                "{table}: {text}"
            );
        }
    }

    #[test]
    fn timestamps_compare_with_literals_and_intervals() {
        let e = engine();
        let as_of = crate::calendar::parse_ts("2026-01-01T00:00:00Z").unwrap();
        let sql = format!(
            "select {lit} > arrow_cast({early}, 'Timestamp(µs, \"UTC\")') + interval '24 hours' as later",
            lit = timestamp_literal(as_of),
            early = as_of - 2 * 86_400_000_000
        );
        let b = e.query(&sql, "test").unwrap();
        let v = arrow::array::AsArray::as_boolean(b[0].column(0)).value(0);
        assert!(v);
    }
}
