//! Canary traffic from a snapshot: `agent_decisions` + `decision_outcomes` of one experiment
//! turned into per-account tallies (Polars joins and group-bys): the experiment period per arm
//! and, for CUPED, the pre-period of the same length before it.

use std::collections::BTreeSet;

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

/// The columns the comparison reads.
pub const DECISION_COLUMNS: [&str; 7] = [
    "decision_id",
    "decided_at",
    "account_id",
    "experiment_id",
    "arm",
    "model_version",
    "cost_usd",
];
pub const OUTCOME_COLUMNS: [&str; 4] =
    ["decision_id", "outcome_at", "outcome_type", "pipeline_usd"];

/// Read the experiment `id` from a snapshot (only the columns it needs; the snapshot's
/// schema was checked when it was opened), counting what happened before `as_of`.
pub fn read(snap: &Snapshot, id: &str, as_of: i64) -> Result<Traffic> {
    let load = |table: &str, cols: &[&str]| -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        for f in crate::snapshot::parquet_files(&snap.table_path(table)?)? {
            out.extend(crate::table_io::read_parquet_columns(&f, Some(cols))?.1);
        }
        Ok(out)
    };
    let dec = load("agent_decisions", &DECISION_COLUMNS)?;
    let out = load("decision_outcomes", &OUTCOME_COLUMNS)?;
    from_batches(&dec, &out, id, as_of).map_err(|e| e.with_path(&snap.dir))
}

/// The outcome types the comparison counts, by code.
const OUTCOME_TYPES: [&str; 8] = [
    "reply",
    "positive_reply",
    "meeting_booked",
    "trust_block",
    "human_rejected",
    "duplicate_incident",
    "cooldown_violation",
    "opportunity_created",
];

/// The experiment `id` from the rows of `agent_decisions` and `decision_outcomes` (at least
/// the columns of [`DECISION_COLUMNS`] and [`OUTCOME_COLUMNS`], in the registry's types).
///
/// Accounts and decisions get integer codes on the way in (one hash lookup per row), so the
/// Polars group-bys run on integers, not strings.
pub fn from_batches(
    dec: &[RecordBatch],
    out: &[RecordBatch],
    id: &str,
    as_of: i64,
) -> Result<Traffic> {
    let t = "agent_decisions";
    // Pass 1: the experiment's window and every account's arm.
    let (mut start, mut end) = (i64::MAX, i64::MIN);
    let mut acct_code: PlHashMap<&str, u32> = PlHashMap::default();
    let mut arm: Vec<u32> = Vec::new();
    let mut mixed: BTreeSet<String> = BTreeSet::new();
    let mut models: [BTreeSet<String>; 2] = Default::default();
    let mut experiments: BTreeSet<String> = BTreeSet::new();
    let mut row = 0u64;
    for b in dec {
        let (eid, arms, acct, at, model) = (
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
            let g = match (!arms.is_null(i)).then(|| arms.value(i)) {
                Some("control") => 0,
                Some("variant") => 1,
                other => {
                    return Err(Error::data(format!(
                        "decision of experiment {id} has arm {other:?}; must be control or variant"
                    ))
                    .with_table(t)
                    .with_column("arm")
                    .with_row(row));
                }
            };
            start = start.min(at.value(i));
            end = end.max(at.value(i));
            if !models[g as usize].contains(model.value(i)) {
                models[g as usize].insert(model.value(i).to_string());
            }
            let next = arm.len() as u32;
            let code = *acct_code.entry(acct.value(i)).or_insert(next);
            if code == next {
                arm.push(g);
            } else if arm[code as usize] != g {
                mixed.insert(acct.value(i).to_string());
            }
        }
    }
    if arm.is_empty() {
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

    // Pass 2: every decision id (to find outcomes without a decision), and the decisions of
    // both periods by code.
    const OUTSIDE: u32 = u32::MAX;
    let rows: usize = dec.iter().map(|b| b.num_rows()).sum();
    let mut dec_code: PlHashMap<&str, u32> =
        PlHashMap::with_capacity_and_hasher(rows, Default::default());
    let (mut d_acct, mut d_period, mut d_cost) = (Vec::new(), Vec::new(), Vec::new());
    let mut n_decisions = 0u64;
    let mut repeated: Vec<String> = Vec::new();
    for b in dec {
        let (did, eid, acct, at) = (
            strings(b, "decision_id", t)?,
            strings(b, "experiment_id", t)?,
            strings(b, "account_id", t)?,
            times(b, "decided_at", t)?,
        );
        let cost = floats(b, "cost_usd", t)?;
        for i in 0..b.num_rows() {
            let code = match acct_code.get(acct.value(i)) {
                Some(&a) if at.value(i) < as_of => {
                    let period = if !eid.is_null(i) && eid.value(i) == id {
                        Some(EXP)
                    } else if eid.is_null(i) && at.value(i) >= pre_start && at.value(i) < start {
                        Some(PRE)
                    } else {
                        None
                    };
                    period.map(|p| {
                        if p == EXP {
                            n_decisions += 1;
                        }
                        d_acct.push(a);
                        d_period.push(p);
                        d_cost.push(cost.value(i));
                        d_acct.len() as u32 - 1
                    })
                }
                _ => None,
            };
            if dec_code
                .insert(did.value(i), code.unwrap_or(OUTSIDE))
                .is_some()
                && repeated.len() < 5
            {
                repeated.push(did.value(i).to_string());
            }
        }
    }
    if !repeated.is_empty() {
        return Err(Error::data(format!(
            "decision_id repeated, e.g. {}",
            repeated.join(", ")
        ))
        .with_table(t)
        .with_column("decision_id"));
    }

    // Outcomes: every one must belong to a decision; count those observed before as_of.
    let t = "decision_outcomes";
    let (mut o_dec, mut o_kind, mut o_pipe) = (Vec::new(), Vec::new(), Vec::new());
    let (mut n_out, mut unobserved) = (0u64, 0u64);
    let (mut orphans, mut orphan_rows) = (0u64, Vec::new());
    for b in out {
        let (did, kind, at) = (
            strings(b, "decision_id", t)?,
            strings(b, "outcome_type", t)?,
            times(b, "outcome_at", t)?,
        );
        let pipe = floats(b, "pipeline_usd", t)?;
        for i in 0..b.num_rows() {
            n_out += 1;
            let Some(&code) = dec_code.get(did.value(i)) else {
                orphans += 1;
                if orphan_rows.len() < 5 {
                    orphan_rows.push(format!("`{}` (row {n_out})", did.value(i)));
                }
                continue;
            };
            if at.value(i) >= as_of {
                unobserved += 1;
                continue;
            }
            let Some(k) = OUTCOME_TYPES.iter().position(|k| *k == kind.value(i)) else {
                continue;
            };
            if code == OUTSIDE {
                continue;
            }
            o_dec.push(code);
            o_kind.push(k as u32);
            o_pipe.push(if pipe.is_null(i) { 0.0 } else { pipe.value(i) });
        }
    }
    if orphans > 0 {
        return Err(Error::data(format!(
            "{orphans} outcome(s) refer to no decision, e.g. decision_id {}",
            orphan_rows.join(", ")
        ))
        .with_table(t)
        .with_column("decision_id"));
    }

    // Per-account tallies (Polars).
    let frame = |cols: Vec<Column>| DataFrame::new_infer_height(cols).map_err(polars_err);
    let u32s = |df: &DataFrame, c: &str| -> Result<Vec<u32>> {
        Ok(df
            .column(c)
            .and_then(|c| c.u32().cloned())
            .map_err(polars_err)?
            .into_no_null_iter()
            .collect())
    };
    let f64s = |df: &DataFrame, c: &str| -> Result<Vec<f64>> {
        Ok(df
            .column(c)
            .and_then(|c| c.f64().cloned())
            .map_err(polars_err)?
            .iter()
            .map(|v| v.unwrap_or(0.0))
            .collect())
    };
    let n_dec = d_acct.len();
    let d = frame(vec![
        Column::new("account".into(), d_acct.clone()),
        Column::new("period".into(), d_period.clone()),
        Column::new("one".into(), vec![1.0f64; n_dec]),
        Column::new("cost".into(), d_cost),
    ])?;
    #[allow(deprecated)]
    let per_decision = d
        .group_by(["account", "period"])
        .and_then(|g| g.select(["one", "cost"]).sum())
        .map_err(polars_err)?;
    // One row per (decision, outcome type): a decision counts once per type.
    let o = frame(vec![
        Column::new("decision".into(), o_dec),
        Column::new("kind".into(), o_kind),
        Column::new("pipeline".into(), o_pipe),
    ])?;
    #[allow(deprecated)]
    let once = o
        .group_by(["decision", "kind"])
        .and_then(|g| g.select(["pipeline"]).sum())
        .map_err(polars_err)?;
    let dcodes = u32s(&once, "decision")?;
    let n_once = dcodes.len();
    let o2 = frame(vec![
        Column::new(
            "account".into(),
            dcodes
                .iter()
                .map(|&c| d_acct[c as usize])
                .collect::<Vec<u32>>(),
        ),
        Column::new(
            "period".into(),
            dcodes
                .iter()
                .map(|&c| d_period[c as usize])
                .collect::<Vec<u32>>(),
        ),
        once.column("kind").map_err(polars_err)?.clone(),
        Column::new("one".into(), vec![1.0f64; n_once]),
        once.column("pipeline_sum").map_err(polars_err)?.clone(),
    ])?;
    #[allow(deprecated)]
    let per_outcome = o2
        .group_by(["account", "period", "kind"])
        .and_then(|g| g.select(["one", "pipeline_sum"]).sum())
        .map_err(polars_err)?;

    // Assemble the accounts, in order of their first experiment decision.
    let mut accounts: Vec<Account> = arm
        .iter()
        .map(|&g| Account {
            variant: g == 1,
            ..Default::default()
        })
        .collect();
    {
        let (a, p, n, c) = (
            u32s(&per_decision, "account")?,
            u32s(&per_decision, "period")?,
            f64s(&per_decision, "one_sum")?,
            f64s(&per_decision, "cost_sum")?,
        );
        for i in 0..a.len() {
            let acc = &mut accounts[a[i] as usize];
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
            u32s(&per_outcome, "account")?,
            u32s(&per_outcome, "period")?,
            u32s(&per_outcome, "kind")?,
            f64s(&per_outcome, "one_sum")?,
            f64s(&per_outcome, "pipeline_sum_sum")?,
        );
        for i in 0..a.len() {
            let acc = &mut accounts[a[i] as usize];
            let k: &mut Counts = if p[i] == EXP {
                &mut acc.exp
            } else {
                &mut acc.pre
            };
            match OUTCOME_TYPES[kind[i] as usize] {
                "reply" => k.reply = n[i],
                "positive_reply" => k.positive_reply = n[i],
                "meeting_booked" => k.meeting = n[i],
                "trust_block" => k.trust_block = n[i],
                "human_rejected" => k.human_rejected = n[i],
                "duplicate_incident" => k.duplicate = n[i],
                "cooldown_violation" => k.cooldown = n[i],
                _ => k.pipeline = pipe[i],
            }
        }
    }
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
