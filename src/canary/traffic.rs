//! Canary traffic from a snapshot: `agent_decisions` + `decision_outcomes` of one experiment
//! turned into per-account tallies (Polars joins and group-bys): the experiment period per arm
//! and, for CUPED, the pre-period of the same length before it.

use std::collections::BTreeSet;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, TimestampMicrosecondType};
use polars::prelude::*;
use rayon::prelude::*;

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
    // The two tables are read at the same time.
    let (dec, out) = std::thread::scope(|s| {
        let d = s.spawn(|| load("agent_decisions", &DECISION_COLUMNS));
        let o = load("decision_outcomes", &OUTCOME_COLUMNS);
        (d.join().expect("the reading thread does not panic"), o)
    });
    let (dec, out) = (dec?, out?);
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
    // Each row's account code when it is an experiment decision, else NONE.
    const NONE: u32 = u32::MAX;
    let mut exp_codes: Vec<Vec<u32>> = Vec::with_capacity(dec.len());
    for b in dec {
        let mut codes = vec![NONE; b.num_rows()];
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
            codes[i] = code;
        }
        exp_codes.push(codes);
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

    // The outcomes first: every decision id they refer to gets a code (the smaller side of the
    // join is the one hashed).
    let to = "decision_outcomes";
    let rows_out: usize = out.iter().map(|b| b.num_rows()).sum();
    let mut ref_code: PlHashMap<&str, u32> =
        PlHashMap::with_capacity_and_hasher(rows_out, Default::default());
    // Per outcome: its reference, its kind (NONE when not counted or not yet observable).
    let (mut o_ref, mut o_kind, mut o_pipe) = (
        Vec::with_capacity(rows_out),
        Vec::with_capacity(rows_out),
        Vec::with_capacity(rows_out),
    );
    let mut unobserved = 0u64;
    for b in out {
        let (did, kind, at) = (
            strings(b, "decision_id", to)?,
            strings(b, "outcome_type", to)?,
            times(b, "outcome_at", to)?,
        );
        let pipe = floats(b, "pipeline_usd", to)?;
        for i in 0..b.num_rows() {
            let next = ref_code.len() as u32;
            o_ref.push(*ref_code.entry(did.value(i)).or_insert(next));
            let k = if at.value(i) >= as_of {
                unobserved += 1;
                NONE
            } else {
                OUTCOME_TYPES
                    .iter()
                    .position(|k| *k == kind.value(i))
                    .map_or(NONE, |k| k as u32)
            };
            o_kind.push(k);
            o_pipe.push(if pipe.is_null(i) { 0.0 } else { pipe.value(i) });
        }
    }
    let n_out = o_ref.len() as u64;

    // Pass 2, one batch per task: the decisions of both periods by code, and which referenced
    // decision each row is. Merged in batch order, so the result does not depend on threads.
    const UNSEEN: u32 = u32::MAX;
    const OUTSIDE: u32 = u32::MAX - 1;
    struct Part {
        acct: Vec<u32>,
        period: Vec<u32>,
        cost: Vec<f64>,
        /// (referenced decision, index into this part or OUTSIDE, row)
        refs: Vec<(u32, u32, usize)>,
        experiment: u64,
    }
    let parts: Vec<Part> = dec
        .par_iter()
        .zip(&exp_codes)
        .map(|(b, codes)| -> Result<Part> {
            let (did, eid, acct, at) = (
                strings(b, "decision_id", t)?,
                strings(b, "experiment_id", t)?,
                strings(b, "account_id", t)?,
                times(b, "decided_at", t)?,
            );
            let cost = floats(b, "cost_usd", t)?;
            let mut p = Part {
                acct: Vec::new(),
                period: Vec::new(),
                cost: Vec::new(),
                refs: Vec::new(),
                experiment: 0,
            };
            for i in 0..b.num_rows() {
                let (acct_of, period) = if codes[i] != NONE {
                    p.experiment += 1;
                    (Some(codes[i]), EXP)
                } else if eid.is_null(i) && at.value(i) >= pre_start && at.value(i) < start {
                    (acct_code.get(acct.value(i)).copied(), PRE)
                } else {
                    (None, PRE)
                };
                let code = match acct_of {
                    Some(a) => {
                        p.acct.push(a);
                        p.period.push(period);
                        p.cost.push(cost.value(i));
                        p.acct.len() as u32 - 1
                    }
                    None => OUTSIDE,
                };
                if let Some(&r) = ref_code.get(did.value(i)) {
                    p.refs.push((r, code, i));
                }
            }
            Ok(p)
        })
        .collect::<Result<_>>()?;
    let mut target = vec![UNSEEN; ref_code.len()];
    let (mut d_acct, mut d_period, mut d_cost) = (Vec::new(), Vec::new(), Vec::new());
    let mut n_decisions = 0u64;
    let mut repeated: Vec<String> = Vec::new();
    for (k, p) in parts.into_iter().enumerate() {
        let offset = d_acct.len() as u32;
        for (r, code, row) in p.refs {
            if target[r as usize] != UNSEEN && repeated.len() < 5 {
                repeated.push(strings(&dec[k], "decision_id", t)?.value(row).to_string());
            }
            target[r as usize] = if code == OUTSIDE {
                OUTSIDE
            } else {
                offset + code
            };
        }
        d_acct.extend(p.acct);
        d_period.extend(p.period);
        d_cost.extend(p.cost);
        n_decisions += p.experiment;
    }
    if !repeated.is_empty() {
        return Err(Error::data(format!(
            "decision_id repeated, e.g. {}",
            repeated.join(", ")
        ))
        .with_table(t)
        .with_column("decision_id"));
    }
    let orphans: Vec<usize> = (0..o_ref.len())
        .filter(|&i| target[o_ref[i] as usize] == UNSEEN)
        .collect();
    if !orphans.is_empty() {
        let ids: std::collections::BTreeMap<u32, &str> = ref_code
            .iter()
            .map(|(k, v)| (*v, *k))
            .filter(|(v, _)| target[*v as usize] == UNSEEN)
            .take(5)
            .collect();
        return Err(Error::data(format!(
            "{} outcome(s) refer to no decision, e.g. decision_id {}",
            orphans.len(),
            orphans
                .iter()
                .take(5)
                .map(|&i| format!(
                    "`{}` (row {})",
                    ids.get(&o_ref[i]).copied().unwrap_or("?"),
                    i + 1
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .with_table(to)
        .with_column("decision_id"));
    }

    // Per-account tallies (Polars group-bys on one integer key each).
    let frame = |cols: Vec<Column>| DataFrame::new_infer_height(cols).map_err(polars_err);
    let u64s = |df: &DataFrame, c: &str| -> Result<Vec<u64>> {
        Ok(df
            .column(c)
            .and_then(|c| c.u64().cloned())
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
    let slot = |d: u32| u64::from(d_acct[d as usize]) * 2 + u64::from(d_period[d as usize]);
    let n_dec = d_acct.len();
    let d = frame(vec![
        Column::new(
            "slot".into(),
            (0..n_dec as u32).map(slot).collect::<Vec<u64>>(),
        ),
        Column::new("one".into(), vec![1.0f64; n_dec]),
        Column::new("cost".into(), d_cost),
    ])?;
    #[allow(deprecated)]
    let per_decision = d
        .group_by(["slot"])
        .and_then(|g| g.select(["one", "cost"]).sum())
        .map_err(polars_err)?;
    // One row per (decision, outcome type): a decision counts once per type.
    let (mut keys, mut pipes) = (Vec::new(), Vec::new());
    for i in 0..o_ref.len() {
        let dcode = target[o_ref[i] as usize];
        if o_kind[i] == NONE || dcode == OUTSIDE {
            continue;
        }
        keys.push(u64::from(dcode) * 8 + u64::from(o_kind[i]));
        pipes.push(o_pipe[i]);
    }
    let o = frame(vec![
        Column::new("key".into(), keys),
        Column::new("pipeline".into(), pipes),
    ])?;
    #[allow(deprecated)]
    let once = o
        .group_by(["key"])
        .and_then(|g| g.select(["pipeline"]).sum())
        .map_err(polars_err)?;
    let once_keys = u64s(&once, "key")?;
    let n_once = once_keys.len();
    let o2 = frame(vec![
        Column::new(
            "key".into(),
            once_keys
                .iter()
                .map(|k| slot((k / 8) as u32) * 8 + k % 8)
                .collect::<Vec<u64>>(),
        ),
        Column::new("one".into(), vec![1.0f64; n_once]),
        once.column("pipeline_sum").map_err(polars_err)?.clone(),
    ])?;
    #[allow(deprecated)]
    let per_outcome = o2
        .group_by(["key"])
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
        let (slots, n, c) = (
            u64s(&per_decision, "slot")?,
            f64s(&per_decision, "one_sum")?,
            f64s(&per_decision, "cost_sum")?,
        );
        for i in 0..slots.len() {
            let acc = &mut accounts[(slots[i] / 2) as usize];
            let k = if slots[i] % 2 == u64::from(EXP) {
                &mut acc.exp
            } else {
                &mut acc.pre
            };
            k.decisions = n[i];
            k.cost = c[i];
        }
    }
    {
        let (keys, n, pipe) = (
            u64s(&per_outcome, "key")?,
            f64s(&per_outcome, "one_sum")?,
            f64s(&per_outcome, "pipeline_sum_sum")?,
        );
        for i in 0..keys.len() {
            let (slot, kind) = (keys[i] / 8, keys[i] % 8);
            let acc = &mut accounts[(slot / 2) as usize];
            let k: &mut Counts = if slot % 2 == u64::from(EXP) {
                &mut acc.exp
            } else {
                &mut acc.pre
            };
            match OUTCOME_TYPES[kind as usize] {
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
