//! Canary traffic from a snapshot: `agent_decisions` + `decision_outcomes` of one experiment
//! turned into per-account tallies (Polars joins and group-bys): the experiment period per arm
//! and, for CUPED, the pre-period of the same length before it.

use std::collections::{BTreeSet, HashMap};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, TimestampMicrosecondType};
use polars::prelude::*;

use super::compare::{Account, Counts};
use crate::error::{Error, Result};
use crate::eval::keys::polars_err;
use crate::snapshot::Snapshot;

/// What was read: the enrolled accounts and the experiment's facts.
#[derive(Debug, Clone)]
pub struct Traffic {
    pub experiment_id: String,
    pub accounts: Vec<Account>,
    pub control_models: Vec<String>,
    pub variant_models: Vec<String>,
    /// First and last decision of the experiment, and the pre-period start (µs since epoch).
    pub start: i64,
    pub end: i64,
    pub pre_start: i64,
    pub as_of: i64,
    pub decisions: u64,
    pub outcomes: u64,
    /// Outcomes after `as_of`, not yet observable.
    pub unobserved_outcomes: u64,
}

fn strings<'a>(
    b: &'a RecordBatch,
    name: &str,
    table: &str,
) -> Result<&'a arrow::array::StringArray> {
    b.column_by_name(name)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| {
            Error::data("column is missing or not text")
                .with_table(table)
                .with_column(name)
        })
}

fn floats(b: &RecordBatch, name: &str, table: &str) -> Result<arrow::array::Float64Array> {
    let c = b.column_by_name(name).ok_or_else(|| {
        Error::data("column is missing")
            .with_table(table)
            .with_column(name)
    })?;
    let f = arrow::compute::cast(c, &DataType::Float64).map_err(|e| {
        Error::data(format!("not a number: {e}"))
            .with_table(table)
            .with_column(name)
    })?;
    Ok(f.as_primitive::<Float64Type>().clone())
}

fn times<'a>(
    b: &'a RecordBatch,
    name: &str,
    table: &str,
) -> Result<&'a arrow::array::TimestampMicrosecondArray> {
    b.column_by_name(name)
        .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
        .ok_or_else(|| {
            Error::data("column is missing or not a timestamp")
                .with_table(table)
                .with_column(name)
        })
}

const EXP: u32 = 1;
const PRE: u32 = 0;

/// Read the experiment `id` from a snapshot, counting what happened before `as_of`.
pub fn read(snap: &Snapshot, id: &str, as_of: i64) -> Result<Traffic> {
    let (_, dec) = snap.read("agent_decisions")?;
    let (_, out) = snap.read("decision_outcomes")?;
    from_batches(&dec, &out, id, as_of).map_err(|e| e.with_path(&snap.dir))
}

/// The experiment `id` from the rows of `agent_decisions` and `decision_outcomes` (in the
/// registry's types).
pub fn from_batches(
    dec: &[RecordBatch],
    out: &[RecordBatch],
    id: &str,
    as_of: i64,
) -> Result<Traffic> {
    let t = "agent_decisions";

    // Pass 1: the experiment's window and every account's arm.
    let (mut start, mut end) = (i64::MAX, i64::MIN);
    let mut arm_of: HashMap<String, u32> = HashMap::new();
    let mut mixed: BTreeSet<String> = BTreeSet::new();
    let mut models: [BTreeSet<String>; 2] = Default::default();
    let mut experiments: BTreeSet<String> = BTreeSet::new();
    let mut row = 0u64;
    for b in dec {
        let (eid, arm, acct, at, model) = (
            strings(b, "experiment_id", t)?,
            strings(b, "arm", t)?,
            strings(b, "account_id", t)?,
            times(b, "decided_at", t)?,
            strings(b, "model_version", t)?,
        );
        for i in 0..b.num_rows() {
            row += 1;
            if eid.is_null(i) || at.value(i) >= as_of {
                continue;
            }
            if eid.value(i) != id {
                experiments.insert(eid.value(i).to_string());
                continue;
            }
            let g =
                match (!arm.is_null(i)).then(|| arm.value(i)) {
                    Some("control") => 0,
                    Some("variant") => 1,
                    other => return Err(Error::data(format!(
                        "decision of experiment {id} has arm {other:?}; must be control or variant"
                    ))
                    .with_table(t)
                    .with_column("arm")
                    .with_row(row)),
                };
            start = start.min(at.value(i));
            end = end.max(at.value(i));
            models[g as usize].insert(model.value(i).to_string());
            match arm_of.get(acct.value(i)) {
                Some(&prev) if prev != g => {
                    mixed.insert(acct.value(i).to_string());
                }
                Some(_) => {}
                None => {
                    arm_of.insert(acct.value(i).to_string(), g);
                }
            }
        }
    }
    if arm_of.is_empty() {
        return Err(Error::data(format!(
            "no decision belongs to experiment `{id}`; experiments in this snapshot: {}",
            if experiments.is_empty() {
                "none".to_string()
            } else {
                experiments.into_iter().collect::<Vec<_>>().join(", ")
            }
        ))
        .with_table(t)
        .with_column("experiment_id"));
    }
    if !mixed.is_empty() {
        let n = mixed.len();
        return Err(Error::data(format!(
            "{n} account(s) have decisions in both arms — the account is the randomisation unit: {}",
            mixed.into_iter().take(10).collect::<Vec<_>>().join(", ")
        ))
        .with_table(t)
        .with_column("arm"));
    }
    let pre_start = start - (as_of - start);

    // Pass 2: the decisions of both periods as a frame.
    let (mut ids, mut accts, mut periods, mut arms, mut costs) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut all_ids: Vec<&str> = Vec::new();
    let mut n_decisions = 0u64;
    let cost_cols: Vec<arrow::array::Float64Array> = dec
        .iter()
        .map(|b| floats(b, "cost_usd", t))
        .collect::<Result<_>>()?;
    for (b, cost) in dec.iter().zip(&cost_cols) {
        let (did, eid, acct, at) = (
            strings(b, "decision_id", t)?,
            strings(b, "experiment_id", t)?,
            strings(b, "account_id", t)?,
            times(b, "decided_at", t)?,
        );
        for i in 0..b.num_rows() {
            all_ids.push(did.value(i));
            let Some(&g) = arm_of.get(acct.value(i)) else {
                continue;
            };
            if at.value(i) >= as_of {
                continue;
            }
            let period = if !eid.is_null(i) && eid.value(i) == id {
                EXP
            } else if eid.is_null(i) && at.value(i) >= pre_start && at.value(i) < start {
                PRE
            } else {
                continue;
            };
            if period == EXP {
                n_decisions += 1;
            }
            ids.push(did.value(i));
            accts.push(acct.value(i));
            periods.push(period);
            arms.push(g);
            costs.push(cost.value(i));
        }
    }
    let frame = |cols: Vec<Column>| DataFrame::new_infer_height(cols).map_err(polars_err);
    let n = ids.len();
    let d = frame(vec![
        Column::new("decision_id".into(), ids),
        Column::new("account_id".into(), accts),
        Column::new("period".into(), periods),
        Column::new("arm".into(), arms),
        Column::new("one".into(), vec![1.0f64; n]),
        Column::new("cost".into(), costs),
    ])?;

    // Outcomes: every one must belong to a decision; count those observed before as_of.
    let t = "decision_outcomes";
    let (mut o_ids, mut o_types, mut o_pipe) = (Vec::new(), Vec::new(), Vec::new());
    let (mut n_out, mut unobserved) = (0u64, 0u64);
    let pipe_cols: Vec<arrow::array::Float64Array> = out
        .iter()
        .map(|b| floats(b, "pipeline_usd", t))
        .collect::<Result<_>>()?;
    let mut out_ids: Vec<&str> = Vec::new();
    for (b, pipe) in out.iter().zip(&pipe_cols) {
        let (did, kind, at) = (
            strings(b, "decision_id", t)?,
            strings(b, "outcome_type", t)?,
            times(b, "outcome_at", t)?,
        );
        for i in 0..b.num_rows() {
            out_ids.push(did.value(i));
            n_out += 1;
            if at.value(i) >= as_of {
                unobserved += 1;
                continue;
            }
            o_ids.push(did.value(i));
            o_types.push(kind.value(i));
            o_pipe.push(if pipe.is_null(i) { 0.0 } else { pipe.value(i) });
        }
    }
    let orphans = crate::eval::keys::match_keys(&all_ids, &out_ids)?.right_only;
    if !orphans.is_empty() {
        return Err(Error::data(format!(
            "{} outcome(s) refer to no decision, e.g. decision_id {}",
            orphans.len(),
            orphans
                .iter()
                .take(5)
                .map(|&r| format!("`{}` (row {})", out_ids[r as usize], r + 1))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .with_table(t)
        .with_column("decision_id"));
    }
    let o = frame(vec![
        Column::new("decision_id".into(), o_ids),
        Column::new("outcome_type".into(), o_types),
        Column::new("pipeline".into(), o_pipe),
    ])?;

    #[allow(deprecated)]
    let (per_decision, per_outcome) = {
        // One row per (decision, outcome type): a decision counts once per type.
        let once = o
            .group_by(["decision_id", "outcome_type"])
            .and_then(|g| g.select(["pipeline"]).sum())
            .map_err(polars_err)?;
        let joined = once
            .join(
                &d,
                ["decision_id"],
                ["decision_id"],
                JoinArgs::new(JoinType::Inner),
                None,
            )
            .map_err(polars_err)?;
        let per_outcome = joined
            .group_by(["account_id", "period", "arm", "outcome_type"])
            .and_then(|g| g.select(["one", "pipeline_sum"]).sum())
            .map_err(polars_err)?;
        let per_decision = d
            .group_by(["account_id", "period", "arm"])
            .and_then(|g| g.select(["one", "cost"]).sum())
            .map_err(polars_err)?;
        (per_decision, per_outcome)
    };

    // Assemble the accounts.
    let col_str = |df: &DataFrame, c: &str| -> Result<Vec<String>> {
        Ok(df
            .column(c)
            .and_then(|c| c.str().cloned())
            .map_err(polars_err)?
            .iter()
            .map(|v| v.unwrap_or_default().to_string())
            .collect())
    };
    let col_u32 = |df: &DataFrame, c: &str| -> Result<Vec<u32>> {
        Ok(df
            .column(c)
            .and_then(|c| c.u32().cloned())
            .map_err(polars_err)?
            .into_no_null_iter()
            .collect())
    };
    let col_f64 = |df: &DataFrame, c: &str| -> Result<Vec<f64>> {
        Ok(df
            .column(c)
            .and_then(|c| c.f64().cloned())
            .map_err(polars_err)?
            .iter()
            .map(|v| v.unwrap_or(0.0))
            .collect())
    };
    let mut by_account: HashMap<String, Account> = HashMap::new();
    {
        let (a, p, g, n, c) = (
            col_str(&per_decision, "account_id")?,
            col_u32(&per_decision, "period")?,
            col_u32(&per_decision, "arm")?,
            col_f64(&per_decision, "one_sum")?,
            col_f64(&per_decision, "cost_sum")?,
        );
        for i in 0..a.len() {
            let acc = by_account.entry(a[i].clone()).or_default();
            acc.variant = g[i] == 1;
            let k = if p[i] == EXP {
                &mut acc.exp
            } else {
                &mut acc.pre
            };
            k.decisions = n[i];
            k.cost = c[i];
        }
    }
    {
        let (a, p, kind, n, pipe) = (
            col_str(&per_outcome, "account_id")?,
            col_u32(&per_outcome, "period")?,
            col_str(&per_outcome, "outcome_type")?,
            col_f64(&per_outcome, "one_sum")?,
            col_f64(&per_outcome, "pipeline_sum_sum")?,
        );
        for i in 0..a.len() {
            let acc = by_account
                .get_mut(&a[i])
                .expect("decisions define the accounts");
            let k: &mut Counts = if p[i] == EXP {
                &mut acc.exp
            } else {
                &mut acc.pre
            };
            match kind[i].as_str() {
                "reply" => k.reply = n[i],
                "positive_reply" => k.positive_reply = n[i],
                "meeting_booked" => k.meeting = n[i],
                "trust_block" => k.trust_block = n[i],
                "human_rejected" => k.human_rejected = n[i],
                "duplicate_incident" => k.duplicate = n[i],
                "cooldown_violation" => k.cooldown = n[i],
                "opportunity_created" => k.pipeline = pipe[i],
                _ => {}
            }
        }
    }
    let mut keys: Vec<String> = by_account.keys().cloned().collect();
    keys.sort();
    // Accounts enrolled but with no decision in the experiment period (only pre-period rows)
    // cannot exist: enrolment is seen through experiment decisions.
    let accounts = keys.into_iter().map(|k| by_account[&k]).collect();
    Ok(Traffic {
        experiment_id: id.to_string(),
        accounts,
        control_models: models[0].iter().cloned().collect(),
        variant_models: models[1].iter().cloned().collect(),
        start,
        end,
        pre_start,
        as_of,
        decisions: n_decisions,
        outcomes: n_out,
        unobserved_outcomes: unobserved,
    })
}
