//! Append-only logs under `warehouse/logs/<log>/` (SPEC §3): every append is a new Parquet
//! file with a unique name, linked into place so it can never replace another; nothing
//! rewrites or deletes a log row. Two processes appending at once both land.
//!
//! This module is the one place log schemas are declared, in the registry's type vocabulary.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::RecordBatch;
use arrow::datatypes::{Field, Schema, SchemaRef};

use crate::error::{Error, Result};
use crate::schema::ColumnType;
use crate::schema::ColumnType::*;
use crate::table_io;

/// A log table: its directory name and columns.
#[derive(Debug, Clone, Copy)]
pub struct LogSpec {
    pub name: &'static str,
    pub columns: &'static [(&'static str, ColumnType)],
}

impl LogSpec {
    pub fn schema(&self) -> SchemaRef {
        std::sync::Arc::new(Schema::new(
            self.columns
                .iter()
                .map(|(n, t)| Field::new(*n, t.arrow(), true))
                .collect::<Vec<_>>(),
        ))
    }

    pub fn dir(&self, warehouse: &Path) -> PathBuf {
        warehouse.join("logs").join(self.name)
    }
}

/// One row per run of `gtmos build` (and of the other commands that change the warehouse).
pub const RUN_LOG: LogSpec = LogSpec {
    name: "run_log",
    columns: &[
        ("run_id", Varchar),
        ("command", Varchar),
        ("started_at", Timestamp),
        ("finished_at", Timestamp),
        ("snapshot_id", Varchar),
        ("snapshot_dir", Varchar),
        ("as_of", Timestamp),
        ("inputs_hash", Varchar),
        ("pipelines_hash", Varchar),
        ("build_id", Varchar),
        ("gtmos_version", Varchar),
        ("outcome", Varchar),
        ("error", Varchar),
        ("published", Bigint),
        ("blocked", Bigint),
        ("quarantined_rows", Bigint),
        ("dead_lettered_rows", Bigint),
        ("warnings", Bigint),
        ("seconds", Double),
        ("steps", Varchar),
        ("brain_view_contracts_hash", Varchar),
    ],
};

/// One row per data test evaluated in a run.
pub const CONTRACT_RESULTS: LogSpec = LogSpec {
    name: "contract_results",
    columns: &[
        ("run_id", Varchar),
        ("build_id", Varchar),
        ("snapshot_id", Varchar),
        ("as_of", Timestamp),
        ("node", Varchar),
        ("node_kind", Varchar),
        ("rule", Varchar),
        ("test", Varchar),
        ("column_name", Varchar),
        ("severity", Varchar),
        ("on_fail", Varchar),
        ("status", Varchar),
        ("failures", Bigint),
        ("rows_checked", Bigint),
        ("action", Varchar),
        ("contract_version", Varchar),
        ("declared_in", Varchar),
        ("sample", Varchar),
    ],
};

/// One row per source with a freshness declaration, per run.
pub const FRESHNESS_LOG: LogSpec = LogSpec {
    name: "freshness_log",
    columns: &[
        ("run_id", Varchar),
        ("snapshot_id", Varchar),
        ("as_of", Timestamp),
        ("source", Varchar),
        ("loaded_at_field", Varchar),
        ("max_loaded_at", Timestamp),
        ("age_hours", Double),
        ("warn_after_hours", Double),
        ("error_after_hours", Double),
        ("status", Varchar),
        ("future_rows", Bigint),
    ],
};

/// The decision log (SPEC §13): proposals of the decision nodes and every status change, each
/// a new row (see `decisions`).
pub const DECISION_LOG: LogSpec = LogSpec {
    name: "decision_log",
    columns: &[
        ("decision_id", Varchar),
        ("timestamp", Timestamp),
        ("node", Varchar),
        ("node_version", Varchar),
        ("subject", Varchar),
        ("inputs_version", Varchar),
        ("inputs_hash", Varchar),
        ("build_id", Varchar),
        ("selected_thresholds", Varchar),
        ("evidence", Varchar),
        ("chosen_action", Varchar),
        ("status", Varchar),
        ("owner", Varchar),
        ("approvers", Varchar),
        ("changed_by", Varchar),
        ("note", Varchar),
        ("risk_notes", Varchar),
        ("reversal_plan", Varchar),
        ("reversal_outcome", Varchar),
        ("review_date", Date),
        ("run_id", Varchar),
        ("acted_as", Varchar),
    ],
};

/// One row per `gtmos eval` run (SPEC §11; the seed's BrainEvalLog fields): golden gates and
/// brain harness runs alike, `kind` telling them apart.
pub const EVAL_LOG: LogSpec = LogSpec {
    name: "eval_log",
    columns: &[
        ("run_id", Varchar),
        ("run_at", Timestamp),
        ("kind", Varchar),
        ("run_trigger", Varchar),
        ("model_id", Varchar),
        ("brain_under_test", Varchar),
        ("system_prompt_hash", Varchar),
        ("brain_view_contracts_hash", Varchar),
        ("catalog_version", Varchar),
        ("catalog_sha256", Varchar),
        ("inputs_file", Varchar),
        ("inputs_sha256", Varchar),
        ("baseline_model_id", Varchar),
        ("reviewer_user_id", Varchar),
        ("reviewer_independence_verified", Boolean),
        ("bootstrap_resamples", Bigint),
        ("bootstrap_seed", Bigint),
        ("aggregated_scores", Varchar),
        ("hard_criteria_passed", Boolean),
        ("decision", Varchar),
        ("decision_rationale", Varchar),
        ("calibration_notes", Varchar),
        ("token_cost_usd", Double),
        ("gtmos_version", Varchar),
        ("view_contracts_check", Varchar),
    ],
};

/// One row per golden example or brain question per eval run.
pub const EVAL_QUESTION_SCORES: LogSpec = LogSpec {
    name: "eval_question_scores",
    columns: &[
        ("run_id", Varchar),
        ("kind", Varchar),
        ("question_id", Varchar),
        ("task", Varchar),
        ("attempt", Bigint),
        ("expected", Varchar),
        ("actual", Varchar),
        ("correct", Boolean),
        ("critical", Boolean),
        ("confidence", Double),
        ("uses_stale_fixture", Boolean),
        ("scores", Varchar),
        ("validator_issues", Varchar),
        ("reviewer_comments", Varchar),
    ],
};

/// One row per metric per `gtmos canary` run: both arms with their intervals, the difference,
/// its fixed-horizon and always-valid tests, and the verdicts.
pub const CANARY_RESULTS: LogSpec = LogSpec {
    name: "canary_results",
    columns: &[
        ("run_id", Varchar),
        ("run_at", Timestamp),
        ("experiment_id", Varchar),
        ("control_model", Varchar),
        ("variant_model", Varchar),
        ("snapshot_inputs_hash", Varchar),
        ("as_of", Timestamp),
        ("metric", Varchar),
        ("role", Varchar),
        ("measure", Varchar),
        ("direction", Varchar),
        ("control_accounts", Bigint),
        ("control_numerator", Double),
        ("control_denominator", Double),
        ("control_value", Double),
        ("control_low", Double),
        ("control_high", Double),
        ("variant_accounts", Bigint),
        ("variant_numerator", Double),
        ("variant_denominator", Double),
        ("variant_value", Double),
        ("variant_low", Double),
        ("variant_high", Double),
        ("delta", Double),
        ("relative_delta", Double),
        ("se", Double),
        ("test", Varchar),
        ("p_fixed", Double),
        ("ci_low", Double),
        ("ci_high", Double),
        ("p_sequential", Double),
        ("cs_low", Double),
        ("cs_high", Double),
        ("p_holm", Double),
        ("cuped_variance_reduction", Double),
        ("metric_verdict", Varchar),
        ("inference", Varchar),
        ("verdict", Varchar),
    ],
};

static APPENDS: AtomicU64 = AtomicU64::new(0);

/// Append a batch to a log as a new file; returns its path. Never replaces an existing file.
pub fn append(
    warehouse: &Path,
    spec: &LogSpec,
    run_id: &str,
    batch: &RecordBatch,
) -> Result<PathBuf> {
    if batch.schema().fields() != spec.schema().fields() {
        return Err(Error::Internal(format!(
            "a batch for log `{}` does not have its schema",
            spec.name
        )));
    }
    let dir = spec.dir(warehouse);
    let n = APPENDS.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!("run={run_id}-{}-{n}.parquet", std::process::id()));
    table_io::write_table_new(&path, spec.schema(), &[], std::slice::from_ref(batch))?;
    Ok(path)
}

/// Hold a log's lock (blocking until any other holder is done) for a read-check-append that
/// must see every earlier append: a decision's status change checks the current state under
/// it, so concurrent changes of one decision form a valid sequence. Appends that only add
/// rows (a build's proposals, eval and canary runs) need no lock. Released when dropped.
pub fn lock(warehouse: &Path, spec: &LogSpec) -> Result<std::fs::File> {
    let p = spec.dir(warehouse).join(".lock");
    let f = table_io::lock_file(&p)?;
    f.lock().map_err(|e| Error::io("cannot lock", &p, e))?;
    Ok(f)
}

/// Every row of a log, oldest file first (file names start with the time-ordered run id).
/// Every row of a log as JSON objects ([`table_io::json_rows`]' conventions), in append order.
pub fn read_json(
    warehouse: &Path,
    spec: &LogSpec,
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>> {
    table_io::batches_as_json(&read(warehouse, spec)?, &spec.dir(warehouse))
}

pub fn read(warehouse: &Path, spec: &LogSpec) -> Result<Vec<RecordBatch>> {
    let dir = spec.dir(warehouse);
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| Error::io("cannot read log directory", &dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("parquet"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let (_, batches) = table_io::read_parquet(&f)?;
        for b in batches {
            out.push(conform(b, spec).map_err(|e| {
                Error::arrow(format!("{}: not a {} file", f.display(), spec.name), e)
            })?);
        }
    }
    Ok(out)
}

/// A log file's batch in the log's current schema. Log schemas only ever grow by appending
/// columns: a file written before a column existed reads with nulls in it.
fn conform(
    b: RecordBatch,
    spec: &LogSpec,
) -> std::result::Result<RecordBatch, arrow::error::ArrowError> {
    let schema = spec.schema();
    if b.num_columns() < schema.fields().len() {
        let mut cols = b.columns().to_vec();
        for f in &schema.fields()[b.num_columns()..] {
            cols.push(arrow::array::new_null_array(f.data_type(), b.num_rows()));
        }
        return RecordBatch::try_new(schema, cols);
    }
    b.with_schema(schema)
}

/// A new run id: `r<UTC time>-<pid><counter>`, ordered by time, unique across processes.
pub fn new_run_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let t = chrono::DateTime::from_timestamp(now.as_secs() as i64, now.subsec_nanos())
        .unwrap_or_default();
    let n = APPENDS.fetch_add(1, Ordering::Relaxed);
    format!(
        "r{}-{:x}{:x}",
        t.format("%Y%m%dT%H%M%S%6fZ"),
        std::process::id(),
        n
    )
}

/// Wall-clock now in microseconds, for logs only (never inside a computation).
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::TableBuilder;

    fn row(run: &str) -> RecordBatch {
        let mut b = TableBuilder::new("freshness_log", FRESHNESS_LOG.schema()).unwrap();
        let c = b.str_col("run_id").unwrap();
        let s = b.str_col("source").unwrap();
        b.str(c, run);
        b.str(s, "accounts");
        b.end_row();
        b.finish().unwrap()
    }

    #[test]
    fn appends_never_replace_and_concurrent_appends_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path().to_path_buf();
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let w = w.clone();
                std::thread::spawn(move || {
                    append(
                        &w,
                        &FRESHNESS_LOG,
                        &format!("run{i}"),
                        &row(&format!("run{i}")),
                    )
                    .unwrap()
                })
            })
            .collect();
        let paths: Vec<PathBuf> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let distinct: std::collections::BTreeSet<_> = paths.iter().collect();
        assert_eq!(distinct.len(), 8);
        let rows: usize = read(&w, &FRESHNESS_LOG)
            .unwrap()
            .iter()
            .map(|b| b.num_rows())
            .sum();
        assert_eq!(rows, 8);
        let a = new_run_id();
        let b = new_run_id();
        assert_ne!(a, b);
        assert!(a.starts_with('r') && a.len() > 20);
    }
}
