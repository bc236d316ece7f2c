//! `gtmos scheduler` and `gtmos executor`: the processes of a Ballista cluster that runs
//! gtmos' SQL (docs/cluster.md).

use super::threads;
use crate::cli::{ExecutorArgs, SchedulerArgs};
use crate::engine::cluster::{ExecutorOptions, SchedulerOptions, run_executor, run_scheduler};
use crate::error::{Outcome, Result};

pub fn scheduler(a: SchedulerArgs) -> Result<Outcome> {
    eprintln!(
        "gtmos: scheduler listening on {}:{} (reached as df://{}:{})",
        a.bind_host, a.port, a.external_host, a.port
    );
    run_scheduler(&SchedulerOptions {
        bind_host: a.bind_host,
        port: a.port,
        external_host: a.external_host,
        executor_timeout_seconds: a.executor_timeout_seconds,
    })?;
    Ok(Outcome::Success)
}

pub fn executor(a: ExecutorArgs) -> Result<Outcome> {
    let scheduler = a
        .scheduler
        .or_else(|| {
            std::env::var("GTMOS_SCHEDULER")
                .ok()
                .filter(|s| !s.trim().is_empty())
        })
        .unwrap_or_else(|| "df://localhost:50050".into());
    let memory_limit = match a.memory_mb {
        Some(mb) => Some(crate::settings::memory_limit(Some(mb))? as u64),
        None if std::env::var_os("GTMOS_MEMORY_MB").is_some() => {
            Some(crate::settings::memory_limit(None)? as u64)
        }
        None => None,
    };
    eprintln!(
        "gtmos: executor on {}:{} (flight) / {} (grpc), joining {scheduler}",
        a.bind_host, a.port, a.grpc_port
    );
    run_executor(&ExecutorOptions {
        bind_host: a.bind_host,
        external_host: a.external_host,
        port: a.port,
        grpc_port: a.grpc_port,
        scheduler,
        concurrency: threads(a.concurrency),
        work_dir: a.work_dir.map(|d| d.to_string_lossy().into_owned()),
        memory_limit,
    })?;
    Ok(Outcome::Success)
}
