//! Resolved settings: a command-line flag wins, then a `GTMOS_*` environment variable, then the
//! default relative to the working directory (SPEC §15).

use std::path::PathBuf;

use crate::cli::Locations;
use crate::store;

pub const DEFAULT_PROJECT: &str = "pipelines";
pub const DEFAULT_SNAPSHOT: &str = "data/snapshots/default";
pub const DEFAULT_WAREHOUSE: &str = "data/warehouse";
pub const DEFAULT_REPORTS: &str = "reports";

fn pick(flag: &Option<PathBuf>, env: &str, default: &str) -> PathBuf {
    flag.clone()
        .or_else(|| {
            std::env::var_os(env)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(default))
}

#[derive(Debug, Clone)]
pub struct Paths {
    pub project: PathBuf,
    pub snapshot: PathBuf,
    /// Whether the snapshot is the default one (and may be generated when absent).
    pub default_snapshot: bool,
    pub warehouse: PathBuf,
}

impl Paths {
    /// The flags, else the environment, else the defaults. An `s3://` snapshot or warehouse
    /// resolves to this process's local mirror of it ([`crate::store`]).
    pub fn resolve(at: &Locations) -> crate::Result<Paths> {
        let default_snapshot = at.snapshot.is_none()
            && std::env::var_os("GTMOS_SNAPSHOT").is_none_or(|v| v.is_empty());
        Ok(Paths {
            project: project_dir(&at.project),
            snapshot: snapshot_dir(&at.snapshot)?,
            default_snapshot,
            warehouse: store::local(
                pick(&at.warehouse, "GTMOS_WAREHOUSE", DEFAULT_WAREHOUSE),
                store::Kind::Warehouse,
            )?,
        })
    }
}

/// The pipelines project, for a command that needs nothing else.
pub fn project_dir(flag: &Option<PathBuf>) -> PathBuf {
    pick(flag, "GTMOS_PROJECT", DEFAULT_PROJECT)
}

/// The snapshot (its local copy when it is `s3://`), for a command that needs no warehouse.
pub fn snapshot_dir(flag: &Option<PathBuf>) -> crate::Result<PathBuf> {
    store::local(
        pick(flag, "GTMOS_SNAPSHOT", DEFAULT_SNAPSHOT),
        store::Kind::Snapshot,
    )
}

pub fn reports_dir(flag: &Option<PathBuf>) -> PathBuf {
    pick(flag, "GTMOS_REPORTS", DEFAULT_REPORTS)
}

/// Engine memory before spilling, in bytes: `--memory-mb` (64 MiB to 16 TiB, checked by the
/// parser), else `GTMOS_MEMORY_MB`, else 4,096 MiB. A variable that is not such a number is
/// bad input, never silently replaced by the default.
pub fn memory_limit(flag: Option<u64>) -> crate::Result<usize> {
    const RANGE: std::ops::RangeInclusive<u64> = 64..=16_777_216;
    let mb = match flag {
        Some(mb) => mb,
        None => match std::env::var("GTMOS_MEMORY_MB") {
            Ok(v) if !v.trim().is_empty() => v
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|mb| RANGE.contains(mb))
                .ok_or_else(|| {
                    crate::Error::usage(format!(
                        "GTMOS_MEMORY_MB={v}: expected MiB from {} to {}",
                        RANGE.start(),
                        RANGE.end()
                    ))
                })?,
            _ => 4096,
        },
    };
    usize::try_from(mb << 20).map_err(|_| {
        crate::Error::usage(format!(
            "--memory-mb {mb} does not fit this machine's address space"
        ))
    })
}

/// Where a build's SQL runs: `--engine` / `--scheduler`, else `GTMOS_ENGINE` /
/// `GTMOS_SCHEDULER`, else this process.
pub fn runner(
    engine: Option<crate::cli::EngineKind>,
    scheduler: Option<&str>,
) -> crate::Result<crate::engine::Runner> {
    use crate::cli::EngineKind;
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let engine = match engine {
        Some(e) => e,
        None => match env("GTMOS_ENGINE").as_deref() {
            None | Some("local") => EngineKind::Local,
            Some("ballista") => EngineKind::Ballista,
            Some(other) => {
                return Err(crate::Error::usage(format!(
                    "GTMOS_ENGINE={other}: expected local or ballista"
                )));
            }
        },
    };
    let scheduler = scheduler
        .map(str::to_string)
        .or_else(|| env("GTMOS_SCHEDULER"));
    match (engine, scheduler) {
        (EngineKind::Local, _) => Ok(crate::engine::Runner::Local),
        (EngineKind::Ballista, Some(scheduler)) => {
            Ok(crate::engine::Runner::Ballista { scheduler })
        }
        (EngineKind::Ballista, None) => Err(crate::Error::usage_hint(
            "--engine ballista needs the scheduler's address",
            "--scheduler df://HOST:PORT, or GTMOS_SCHEDULER",
        )),
    }
}
