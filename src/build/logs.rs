//! The run's append-only log tables (SPEC §3): `contract_results` (every test of every node),
//! `freshness_log` and `run_log` (one row per run, with its steps). A failed run still logs its
//! tests and its run row, with the error; published tables are not touched here.

use crate::builder::TableBuilder;
use crate::error::Result;
use crate::logs::{self, CONTRACT_RESULTS, FRESHNESS_LOG, RUN_LOG};
use crate::warehouse::Warehouse;

use super::report::BuildReport;

/// Append this run's rows to the log tables; `error`: the run failed with it (its freshness rows
/// are then not logged).
pub fn write_logs(warehouse: &Warehouse, r: &BuildReport, error: Option<&str>) -> Result<()> {
    let root = &warehouse.root;
    // contract_results
    let mut b = TableBuilder::new(CONTRACT_RESULTS.name, CONTRACT_RESULTS.schema())?;
    let c = ContractCols::new(&b)?;
    for t in r.all_tests() {
        b.str(c.run_id, &r.run_id);
        b.str(c.build_id, &r.build_id);
        b.str(c.snapshot_id, &r.snapshot_id);
        b.ts(c.as_of, r.as_of);
        b.str(c.node, &t.node);
        b.str(c.node_kind, t.node_kind);
        b.str(c.rule, &t.spec.rule);
        b.str(c.test, &t.test);
        b.opt_str(c.column_name, t.spec.column.as_deref());
        b.str(
            c.severity,
            match t.spec.severity {
                crate::project::data_tests::Severity::Error => "error",
                crate::project::data_tests::Severity::Warn => "warn",
            },
        );
        b.str(c.on_fail, t.spec.on_fail.name());
        b.str(c.status, t.status.name());
        b.i64(c.failures, t.failures as i64);
        b.i64(c.rows_checked, t.rows_checked as i64);
        b.str(c.action, t.action);
        b.opt_str(c.contract_version, t.contract_version.as_deref());
        b.str(c.declared_in, &t.declared_in);
        b.str(
            c.sample,
            &serde_json::Value::Array(t.sample.clone()).to_string(),
        );
        b.end_row();
    }
    if b.rows() > 0 {
        logs::append(root, &CONTRACT_RESULTS, &r.run_id, &b.finish()?)?;
    }
    // freshness_log
    let mut b = TableBuilder::new(FRESHNESS_LOG.name, FRESHNESS_LOG.schema())?;
    let c = FreshnessCols::new(&b)?;
    for f in r.freshness() {
        b.str(c.run_id, &r.run_id);
        b.str(c.snapshot_id, &r.snapshot_id);
        b.ts(c.as_of, r.as_of);
        b.str(c.source, &f.source);
        b.str(c.loaded_at_field, &f.loaded_at_field);
        b.opt_ts(c.max_loaded_at, f.max_loaded_at);
        b.opt_f64(c.age_hours, f.age_hours);
        b.opt_f64(c.warn_after_hours, f.warn_after_hours);
        b.opt_f64(c.error_after_hours, f.error_after_hours);
        b.str(c.status, f.status);
        b.i64(c.future_rows, f.future_rows as i64);
        b.end_row();
    }
    if b.rows() > 0 && error.is_none() {
        logs::append(root, &FRESHNESS_LOG, &r.run_id, &b.finish()?)?;
    }
    // run_log
    let mut b = TableBuilder::new(RUN_LOG.name, RUN_LOG.schema())?;
    let c = RunCols::new(&b)?;
    b.str(c.run_id, &r.run_id);
    b.str(c.command, r.command);
    b.ts(c.started_at, r.started_at);
    b.ts(c.finished_at, logs::now_micros());
    b.str(c.snapshot_id, &r.snapshot_id);
    b.str(c.snapshot_dir, &crate::store::display(&r.snapshot_dir));
    b.ts(c.as_of, r.as_of);
    b.str(c.inputs_hash, &r.inputs_hash);
    b.str(c.pipelines_hash, &r.pipelines_hash);
    b.str(c.build_id, &r.build_id);
    b.str(c.gtmos_version, env!("CARGO_PKG_VERSION"));
    b.str(
        c.outcome,
        if error.is_some() {
            "failed"
        } else {
            r.outcome()
        },
    );
    b.opt_str(c.error, error);
    b.i64(c.published, r.published.len() as i64);
    b.i64(c.blocked, r.blocked.len() as i64);
    b.i64(c.quarantined_rows, r.quarantined_rows() as i64);
    b.i64(c.dead_lettered_rows, r.dead_lettered_rows() as i64);
    b.i64(c.warnings, r.warnings() as i64);
    b.f64(c.seconds, r.seconds);
    b.str(
        c.steps,
        &serde_json::to_string(&r.steps).unwrap_or_default(),
    );
    b.opt_str(
        c.brain_view_contracts_hash,
        r.brain_view_contracts_hash.as_deref(),
    );
    b.end_row();
    logs::append(root, &RUN_LOG, &r.run_id, &b.finish()?)?;
    Ok(())
}

crate::table_columns! { struct ContractCols {
    run_id: crate::builder::StrCol, build_id: crate::builder::StrCol, snapshot_id: crate::builder::StrCol,
    as_of: crate::builder::TsCol, node: crate::builder::StrCol, node_kind: crate::builder::StrCol,
    rule: crate::builder::StrCol, test: crate::builder::StrCol, column_name: crate::builder::StrCol,
    severity: crate::builder::StrCol, on_fail: crate::builder::StrCol, status: crate::builder::StrCol,
    failures: crate::builder::I64Col, rows_checked: crate::builder::I64Col, action: crate::builder::StrCol,
    contract_version: crate::builder::StrCol, declared_in: crate::builder::StrCol, sample: crate::builder::StrCol,
} }
crate::table_columns! { struct FreshnessCols {
    run_id: crate::builder::StrCol, snapshot_id: crate::builder::StrCol, as_of: crate::builder::TsCol,
    source: crate::builder::StrCol, loaded_at_field: crate::builder::StrCol, max_loaded_at: crate::builder::TsCol,
    age_hours: crate::builder::F64Col, warn_after_hours: crate::builder::F64Col, error_after_hours: crate::builder::F64Col,
    status: crate::builder::StrCol, future_rows: crate::builder::I64Col,
} }
crate::table_columns! { struct RunCols {
    run_id: crate::builder::StrCol, command: crate::builder::StrCol, started_at: crate::builder::TsCol,
    finished_at: crate::builder::TsCol, snapshot_id: crate::builder::StrCol, snapshot_dir: crate::builder::StrCol,
    as_of: crate::builder::TsCol, inputs_hash: crate::builder::StrCol, pipelines_hash: crate::builder::StrCol,
    build_id: crate::builder::StrCol, gtmos_version: crate::builder::StrCol, outcome: crate::builder::StrCol,
    error: crate::builder::StrCol, published: crate::builder::I64Col, blocked: crate::builder::I64Col,
    quarantined_rows: crate::builder::I64Col, dead_lettered_rows: crate::builder::I64Col, warnings: crate::builder::I64Col,
    seconds: crate::builder::F64Col, steps: crate::builder::StrCol,
    brain_view_contracts_hash: crate::builder::StrCol,
} }
