//! The warehouse (SPEC §3): where a build's outputs live, and the publish state.
//!
//! ```text
//! <warehouse>/published/<model>.parquet    what passed its contracts (last good version)
//! <warehouse>/published/_state.json        per table: build_id, run, rows, sha256, stale + reason
//! <warehouse>/quarantine/<table>/run=<run_id>.parquet
//! <warehouse>/dead_letter/<table>/run=<run_id>.parquet
//! <warehouse>/logs/<log>/…                 append-only (see `logs`)
//! <warehouse>/.staging/<run_id>/           a run's work in progress, removed at the end
//! ```
//!
//! A run writes everything under its staging directory first; only when it completes are the
//! publishable tables moved into `published/` (each an atomic rename) and `_state.json`
//! rewritten. A run that fails midway leaves `published/` as it was.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::table_io;

pub const STATE_FILE: &str = "_state.json";
pub const CLOSE_FILE: &str = "close_state.json";

/// The close: the last month frozen, and every close that advanced it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CloseState {
    /// First day of the last closed month (`YYYY-MM-01`).
    pub closed_through: Option<String>,
    pub history: Vec<CloseEvent>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloseEvent {
    pub run_id: String,
    pub build_id: String,
    pub closed_through: String,
    /// The frozen files written by this close, with their sha256.
    pub files: BTreeMap<String, String>,
}

/// The publish state of one table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableState {
    /// build_id of the version in `published/` (None: never published).
    pub build_id: Option<String>,
    /// The run that published it.
    pub published_by_run: Option<String>,
    pub snapshot_id: Option<String>,
    pub rows: u64,
    pub sha256: Option<String>,
    /// True when the latest run could not republish it; the version in place is the last good one.
    pub stale: bool,
    pub stale_reason: Option<String>,
    pub stale_since_run: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PublishState {
    pub tables: BTreeMap<String, TableState>,
}

#[derive(Debug, Clone)]
pub struct Warehouse {
    pub root: PathBuf,
}

impl Warehouse {
    pub fn new(root: &Path) -> Warehouse {
        Warehouse {
            root: root.to_path_buf(),
        }
    }

    pub fn published_dir(&self) -> PathBuf {
        self.root.join("published")
    }

    pub fn published_file(&self, table: &str) -> PathBuf {
        self.published_dir().join(format!("{table}.parquet"))
    }

    pub fn quarantine_file(&self, table: &str, run_id: &str) -> PathBuf {
        self.root
            .join("quarantine")
            .join(table)
            .join(format!("run={run_id}.parquet"))
    }

    pub fn dead_letter_file(&self, table: &str, run_id: &str) -> PathBuf {
        self.root
            .join("dead_letter")
            .join(table)
            .join(format!("run={run_id}.parquet"))
    }

    pub fn closed_dir(&self) -> PathBuf {
        self.root.join("closed_periods")
    }

    /// The frozen rows of one month of a model.
    pub fn closed_file(&self, model: &str, month: &str) -> PathBuf {
        self.closed_dir()
            .join(model)
            .join(format!("month={}.parquet", &month[..7]))
    }

    pub fn close_state(&self) -> Result<CloseState> {
        let p = self.closed_dir().join(CLOSE_FILE);
        match std::fs::read_to_string(&p) {
            Ok(t) => serde_json::from_str(&t)
                .map_err(|e| Error::data(format!("invalid close state: {e}")).with_path(&p)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CloseState::default()),
            Err(e) => Err(Error::io("cannot read", &p, e)),
        }
    }

    pub fn write_close_state(&self, s: &CloseState) -> Result<()> {
        let mut text = serde_json::to_string_pretty(s).unwrap_or_default();
        text.push('\n');
        table_io::write_atomic(&self.closed_dir().join(CLOSE_FILE), text.as_bytes()).map(|_| ())
    }

    pub fn staging(&self, run_id: &str) -> PathBuf {
        self.root.join(".staging").join(run_id)
    }

    pub fn state(&self) -> Result<PublishState> {
        let p = self.published_dir().join(STATE_FILE);
        match std::fs::read_to_string(&p) {
            Ok(t) => serde_json::from_str(&t)
                .map_err(|e| Error::data(format!("invalid publish state: {e}")).with_path(&p)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PublishState::default()),
            Err(e) => Err(Error::io("cannot read", &p, e)),
        }
    }

    pub fn write_state(&self, s: &PublishState) -> Result<()> {
        let mut text = serde_json::to_string_pretty(s).unwrap_or_default();
        text.push('\n');
        table_io::write_atomic(&self.published_dir().join(STATE_FILE), text.as_bytes()).map(|_| ())
    }

    /// Move a staged table into `published/` (atomic rename; same file system).
    pub fn publish(&self, staged: &Path, table: &str) -> Result<()> {
        let target = self.published_file(table);
        std::fs::create_dir_all(self.published_dir())
            .map_err(|e| Error::io("cannot create", &self.published_dir(), e))?;
        std::fs::rename(staged, &target).map_err(|e| Error::io("cannot publish", &target, e))
    }
}
