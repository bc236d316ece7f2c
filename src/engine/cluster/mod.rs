//! gtmos on an Apache DataFusion Ballista cluster (SPEC §1–2, `--features distributed`).
//!
//! A build's SQL is planned in the `gtmos build` process ([`client`]) and executed by the
//! cluster: `gtmos scheduler` ([`run_scheduler`]) splits each plan into stages and
//! `gtmos executor` ([`run_executor`]) runs their tasks. Plans travel as protobuf and name their
//! functions, so the scheduler and every executor register gtmos' own ([`super::functions`]);
//! the stock Ballista binaries cannot run a gtmos plan. One kind of table is gtmos' own and
//! travels through [`LogicalCodec`] / [`PhysicalCodec`]: a contract's numbered Parquet scan
//! ([`super::numbered`]), by its description (files, columns, partitions). In-memory tables do
//! not travel at all: on a cluster the engine writes them as Parquet files and registers those
//! ([`super::Engine::register_batches`]). Every node therefore reads the same paths: one
//! machine, or a file system shared at the same mount point.
//!
//! Determinism: Ballista's adaptive planning (which picks joins from run-time sizes) is off,
//! and results are ordered before they are written, as on the local engine.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use ballista::prelude::{SessionConfigExt, SessionContextExt};
use ballista_core::JobId;
use ballista_core::config::TaskSchedulingPolicy;
use ballista_core::extension::{
    ballista_aggregate_functions, ballista_scalar_functions, ballista_window_functions,
};
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::serde::protobuf::{
    RuntimeStatsReport, ShuffleWritePartition, TaskColumnStats, WindowStateReport,
};
use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use ballista_executor::execution_engine::{
    DefaultExecutionEngine, ExecutionEngine, QueryStageExecutor,
};
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, Result as DfResult, TableReference};
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::execution::TaskContext;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::{Extension, LogicalPlan, WindowUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::prelude::{SessionConfig, SessionContext};
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};

mod rules;

use rules::{OuterNestedLoopInOneTask, ReversedWindows};

use super::numbered::{Description, NumberedExec, NumberedParquet};
use super::{df_err, register_functions};
use crate::error::{Error, Result};

/// Marks a payload as one of gtmos' own (then JSON), not Ballista's protobuf.
const MAGIC: &[u8] = b"gtmos/numbered\n";

#[derive(serde::Serialize, serde::Deserialize)]
struct Scan {
    table: Description,
    /// Columns read, by position in the table's schema (`_row` last); none for a table.
    projection: Option<Vec<usize>>,
}

fn encode(scan: &Scan, buf: &mut Vec<u8>) -> DfResult<()> {
    buf.extend_from_slice(MAGIC);
    serde_json::to_writer(&mut *buf, scan).map_err(|e| DataFusionError::External(Box::new(e)))
}

fn decode(buf: &[u8]) -> Option<DfResult<Scan>> {
    let json = buf.strip_prefix(MAGIC)?;
    Some(serde_json::from_slice(json).map_err(|e| DataFusionError::External(Box::new(e))))
}

fn external(e: Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// Ballista's logical codec, plus gtmos' numbered Parquet tables.
#[derive(Debug, Default)]
pub struct LogicalCodec {
    inner: BallistaLogicalExtensionCodec,
}

impl LogicalExtensionCodec for LogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> DfResult<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> DfResult<()> {
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> DfResult<Arc<dyn TableProvider>> {
        match decode(buf) {
            Some(scan) => Ok(Arc::new(scan?.table.open().map_err(external)?)),
            None => self
                .inner
                .try_decode_table_provider(buf, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> DfResult<()> {
        match node.downcast_ref::<NumberedParquet>() {
            Some(t) => encode(
                &Scan {
                    table: t.description(),
                    projection: None,
                },
                buf,
            ),
            None => self.inner.try_encode_table_provider(table_ref, node, buf),
        }
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> DfResult<Arc<dyn FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> DfResult<()> {
        self.inner.try_encode_file_format(buf, node)
    }
}

/// Ballista's physical codec, plus the scan of gtmos' numbered Parquet tables.
#[derive(Debug, Default)]
pub struct PhysicalCodec {
    inner: BallistaPhysicalExtensionCodec,
}

impl PhysicalExtensionCodec for PhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        match decode(buf) {
            Some(scan) => {
                let scan = scan?;
                let projection = scan.projection.ok_or_else(|| {
                    DataFusionError::Internal("a numbered scan without its columns".into())
                })?;
                scan.table.exec(projection).map_err(external)
            }
            None => self.inner.try_decode(buf, inputs, ctx, proto_converter),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<()> {
        match node.downcast_ref::<NumberedExec>() {
            Some(scan) => {
                let (table, projection) = scan.description();
                encode(
                    &Scan {
                        table: table.clone(),
                        projection: Some(projection.to_vec()),
                    },
                    buf,
                )
            }
            None => self.inner.try_encode(node, buf, proto_converter),
        }
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> DfResult<Arc<WindowUDF>> {
        match rules::decode_window(buf, window_functions()) {
            Some(fun) => fun,
            None => self.inner.try_decode_udwf(name, buf),
        }
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> DfResult<()> {
        if rules::encode_window(node, buf) {
            return Ok(());
        }
        self.inner.try_encode_udwf(node, buf)
    }
}

/// Every window function a gtmos plan may name: DataFusion's and gtmos'.
fn window_functions() -> impl Iterator<Item = Arc<WindowUDF>> {
    ballista_window_functions()
        .into_iter()
        .chain(super::functions().1.into_iter().map(Arc::new))
}

/// The session settings a cluster client starts from: Ballista's, gtmos' codecs, and no
/// adaptive planning (its join choices follow run-time sizes).
pub fn client_config() -> SessionConfig {
    SessionConfig::new_with_ballista()
        .with_ballista_logical_extension_codec(Arc::new(LogicalCodec::default()))
        .with_ballista_physical_extension_codec(Arc::new(PhysicalCodec::default()))
        .with_ballista_adaptive_query_planner(false)
}

/// A session planning here and executing on the cluster behind `scheduler` (`df://host:port`).
/// Fails at once, naming the address, when nothing answers there.
pub async fn client(
    config: SessionConfig,
    rt: Arc<RuntimeEnv>,
    scheduler: &str,
) -> Result<SessionContext> {
    let (url, addr) = scheduler_address(scheduler)?;
    reachable(scheduler, &addr)?;
    let state = SessionStateBuilder::new_from_existing(
        session_state(config).map_err(df_err("cannot configure the cluster session"))?,
    )
    .with_runtime_env(rt)
    .build();
    let ctx = SessionContext::remote_with_state(&url, state)
        .await
        .map_err(df_err(format!(
            "cannot connect to the scheduler at {scheduler}"
        )))?;
    Ok(ctx)
}

/// `df://host:port` (or `host:port`) as a `df://` URL and a socket address.
fn scheduler_address(scheduler: &str) -> Result<(String, SocketAddr)> {
    let hostport = scheduler
        .strip_prefix("df://")
        .unwrap_or(scheduler)
        .trim_end_matches('/');
    let bad = || {
        Error::usage_hint(
            format!("scheduler address `{scheduler}` is not df://HOST:PORT"),
            "e.g. --scheduler df://127.0.0.1:50050",
        )
    };
    if !hostport.contains(':') {
        return Err(bad());
    }
    let addr = hostport
        .to_socket_addrs()
        .map_err(|_| bad())?
        .next()
        .ok_or_else(bad)?;
    Ok((format!("df://{hostport}"), addr))
}

fn reachable(scheduler: &str, addr: &SocketAddr) -> Result<()> {
    TcpStream::connect_timeout(addr, Duration::from_secs(5))
        .map(|_| ())
        .map_err(|e| {
            Error::usage_hint(
                format!("cannot reach the scheduler at {scheduler} ({addr}): {e}"),
                "start one with `gtmos scheduler`, or check --scheduler / GTMOS_SCHEDULER",
            )
        })
}

/// Ballista's session state with gtmos' functions and optimizer rules: what the client plans
/// with and what the scheduler plans each job with.
fn session_state(config: SessionConfig) -> DfResult<SessionState> {
    let state = SessionStateBuilder::new_from_existing(
        ballista_core::utils::default_session_builder(config)?,
    )
    .with_physical_optimizer_rule(Arc::new(OuterNestedLoopInOneTask))
    .with_physical_optimizer_rule(Arc::new(ReversedWindows))
    .build();
    let ctx = SessionContext::new_with_state(state);
    register_functions(&ctx);
    Ok(ctx.state())
}

/// Where a scheduler listens.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    pub bind_host: String,
    pub port: u16,
    /// The host name executors and clients reach it by.
    pub external_host: String,
    /// Seconds without a heartbeat (executors send one every 5 s) after which an executor is
    /// taken for dead and its tasks run elsewhere.
    pub executor_timeout_seconds: u64,
}

/// Run a scheduler that knows gtmos' functions, until the process is stopped.
pub fn run_scheduler(opts: &SchedulerOptions) -> Result<()> {
    let addr: SocketAddr = format!("{}:{}", opts.bind_host, opts.port)
        .parse()
        .map_err(|e| {
            Error::usage(format!(
                "bind address {}:{}: {e}",
                opts.bind_host, opts.port
            ))
        })?;
    let config = SchedulerConfig::default()
        .with_hostname(opts.external_host.clone())
        .with_port(opts.port)
        .with_override_config_producer(Arc::new(client_config))
        .with_override_session_builder(Arc::new(session_state));
    let config = SchedulerConfig {
        bind_host: opts.bind_host.clone(),
        // Executors ask for tasks rather than being handed them. Handing them out, Ballista 55
        // does not give back the slot of a task it cancels when an executor dies and the
        // stages reading from it run again: a build could then wait forever on a live
        // executor with no free slot. Asking, each executor reports its free slots itself,
        // at up to 50 ms per stage (docs/cluster.md).
        scheduling_policy: TaskSchedulingPolicy::PullStaged,
        executor_timeout_seconds: opts.executor_timeout_seconds,
        no_executors_grace_period_seconds: opts.executor_timeout_seconds,
        expire_dead_executor_interval_seconds: (opts.executor_timeout_seconds / 2).clamp(1, 15),
        override_logical_codec: Some(Arc::new(LogicalCodec::default())),
        override_physical_codec: Some(Arc::new(PhysicalCodec::default())),
        ..config
    };
    server_runtime()?.block_on(async move {
        let cluster = BallistaCluster::new_from_config(&config)
            .await
            .map_err(|e| Error::Internal(format!("cannot start the scheduler: {e}")))?;
        start_server(cluster, addr, Arc::new(config))
            .await
            .map_err(|e| Error::Internal(format!("scheduler at {addr}: {e}")))
    })
}

/// How an executor joins a cluster.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    pub bind_host: String,
    /// The host name the scheduler and other executors reach it by.
    pub external_host: Option<String>,
    /// The Arrow Flight port (shuffle data) and the gRPC port (tasks).
    pub port: u16,
    pub grpc_port: u16,
    pub scheduler: String,
    /// Tasks it runs at once.
    pub concurrency: usize,
    /// Where it keeps shuffle files.
    pub work_dir: Option<String>,
    /// Bytes its tasks may hold before spilling.
    pub memory_limit: Option<u64>,
}

/// Run an executor that knows gtmos' functions and tables, until the process is stopped.
pub fn run_executor(opts: &ExecutorOptions) -> Result<()> {
    let (_, addr) = scheduler_address(&opts.scheduler)?;
    // Every function a gtmos plan may name. Ballista's default executor registry leaves out
    // DataFusion's nested (array) functions, which its scheduler plans with (`cardinality`).
    let mut registry = BallistaFunctionRegistry::default();
    let scalar = ballista_scalar_functions()
        .into_iter()
        .chain(super::functions().0.into_iter().map(Arc::new));
    registry
        .scalar_functions
        .extend(scalar.map(|f| (f.name().to_string(), f)));
    registry
        .window_functions
        .extend(window_functions().map(|f| (f.name().to_string(), f)));
    registry.aggregate_functions.extend(
        ballista_aggregate_functions()
            .into_iter()
            .map(|f| (f.name().to_string(), f)),
    );
    let config = ExecutorProcessConfig {
        bind_host: opts.bind_host.clone(),
        external_host: opts.external_host.clone(),
        port: opts.port,
        grpc_port: opts.grpc_port,
        scheduler_host: addr.ip().to_string(),
        scheduler_port: addr.port(),
        // Wait for a scheduler that is still starting.
        scheduler_connect_timeout_seconds: 30,
        vcores: opts.concurrency.max(1),
        work_dir: opts.work_dir.clone(),
        memory_pool_size: opts.memory_limit,
        print_thread_info: false,
        executor_heartbeat_interval_seconds: 5,
        // As the scheduler expects (`run_scheduler`).
        task_scheduling_policy: TaskSchedulingPolicy::PullStaged,
        override_function_registry: Some(Arc::new(registry)),
        override_execution_engine: Some(Arc::new(RootMetricsOnly(DefaultExecutionEngine::new()))),
        override_config_producer: Some(Arc::new(client_config)),
        override_logical_codec: Some(Arc::new(LogicalCodec::default())),
        override_physical_codec: Some(Arc::new(PhysicalCodec::default())),
        ..Default::default()
    };
    server_runtime()?.block_on(async move {
        start_executor_process(Arc::new(config))
            .await
            .map_err(|e| Error::Internal(format!("executor: {e}")))
    })
}

/// Ballista's execution engine, with each task reporting only its stage's root metrics (the
/// shuffle writer's: rows, bytes, time). Ballista 55 requires every task of a stage to report
/// as many operator metric sets as the first did, and a task that ran another branch of a
/// `UNION ALL` reports fewer (some operators create their metrics only when they first run,
/// e.g. the one-row source of a `SELECT` without `FROM`): its status update fails and the job
/// never finishes.
struct RootMetricsOnly(DefaultExecutionEngine);

impl ExecutionEngine for RootMetricsOnly {
    fn create_query_stage_exec(
        &self,
        job_id: JobId,
        stage_id: usize,
        task_id: usize,
        global_output_partition_ids: Vec<usize>,
        plan: Arc<dyn ExecutionPlan>,
        work_dir: &str,
        config: &SessionConfig,
    ) -> DfResult<Arc<dyn QueryStageExecutor>> {
        let label = format!("{job_id}/{stage_id}");
        let stage = self.0.create_query_stage_exec(
            job_id,
            stage_id,
            task_id,
            global_output_partition_ids,
            plan,
            work_dir,
            config,
        )?;
        Ok(Arc::new(RootMetricsStage { stage, label }))
    }
}

/// A stage's task, which also logs what it wrote to the shuffle (one line per task: the
/// figures a cluster's shuffle volume per stage is read from).
#[derive(Debug)]
struct RootMetricsStage {
    stage: Arc<dyn QueryStageExecutor>,
    /// `job/stage`.
    label: String,
}

impl std::fmt::Display for RootMetricsStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.stage.fmt(f)
    }
}

#[async_trait::async_trait]
impl QueryStageExecutor for RootMetricsStage {
    async fn execute_query_stage(
        &self,
        task_id: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<Vec<ShuffleWritePartition>> {
        let started = std::time::Instant::now();
        let written = self.stage.execute_query_stage(task_id, context).await?;
        log::info!(
            "shuffle {} task {task_id}: {} rows, {} bytes in {} partitions, {:.3} s",
            self.label,
            written.iter().map(|p| p.num_rows).sum::<u64>(),
            written.iter().map(|p| p.num_bytes).sum::<u64>(),
            written.len(),
            started.elapsed().as_secs_f64()
        );
        Ok(written)
    }

    fn collect_plan_metrics(&self) -> Vec<MetricsSet> {
        self.stage
            .collect_plan_metrics()
            .into_iter()
            .take(1)
            .collect()
    }

    fn collect_runtime_stats_reports(&self) -> Vec<RuntimeStatsReport> {
        self.stage.collect_runtime_stats_reports()
    }

    fn collect_window_state_reports(&self) -> DfResult<Vec<WindowStateReport>> {
        self.stage.collect_window_state_reports()
    }

    fn collect_column_stats(&self) -> Vec<TaskColumnStats> {
        self.stage.collect_column_stats()
    }
}

/// Ballista's messages on stderr, at the level `GTMOS_LOG` names (error, warn, info, debug,
/// trace; default info), each with its time and origin.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            eprintln!(
                "{} {:5} {}: {}",
                crate::calendar::format_ts(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_micros() as i64)
                        .unwrap_or(0)
                ),
                r.level(),
                r.target(),
                r.args()
            );
        }
    }

    fn flush(&self) {}
}

fn server_runtime() -> Result<tokio::runtime::Runtime> {
    let level = std::env::var("GTMOS_LOG")
        .ok()
        .and_then(|l| l.parse::<log::LevelFilter>().ok())
        .unwrap_or(log::LevelFilter::Info);
    if log::set_logger(&StderrLog).is_ok() {
        log::set_max_level(level);
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("gtmos-cluster")
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the runtime: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_addresses_take_df_urls_or_host_and_port() {
        let (url, addr) = scheduler_address("df://127.0.0.1:50050").unwrap();
        assert_eq!((url.as_str(), addr.port()), ("df://127.0.0.1:50050", 50050));
        let (url, _) = scheduler_address("127.0.0.1:7").unwrap();
        assert_eq!(url, "df://127.0.0.1:7");
        for bad in ["df://127.0.0.1", "localhost", "df://:x"] {
            let e = scheduler_address(bad).unwrap_err();
            assert!(
                e.to_string().contains("is not df://HOST:PORT"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn a_numbered_scan_travels_as_its_description() {
        let scan = Scan {
            table: Description {
                files: vec!["/data/usage/part-0.parquet".into()],
                columns: vec![("units".into(), "Float64".into(), true)],
                partitions: 4,
            },
            projection: Some(vec![0, 1]),
        };
        let mut buf = Vec::new();
        encode(&scan, &mut buf).unwrap();
        let back = decode(&buf).unwrap().unwrap();
        assert_eq!(back.table, scan.table);
        assert_eq!(back.projection, scan.projection);
        // Ballista's own payloads are left to Ballista's codec.
        assert!(decode(b"\x0a\x02ab").is_none());
    }
}
