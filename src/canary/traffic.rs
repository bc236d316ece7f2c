//! Canary traffic from a snapshot: `agent_decisions` + `decision_outcomes` of one experiment
//! turned into per-account tallies: the experiment period per arm and, for CUPED, the
//! pre-period of the same length before it. Accounts and decisions get dense integer codes,
//! so the join of outcomes to decisions is one hash probe per row and the tallies index
//! arrays (a Polars group-by on those codes was half of the time at 10 M decisions).

use std::collections::BTreeSet;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float64Type, TimestampMicrosecondType};
use polars::prelude::PlHashMap;
use rayon::prelude::*;

use super::compare::{Account, Counts};
use crate::error::{Error, Result};
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
    // The two tables are read at the same time (and each by row groups in parallel).
    let (dec, out) = rayon::join(
        || load("agent_decisions", &DECISION_COLUMNS),
        || load("decision_outcomes", &OUTCOME_COLUMNS),
    );
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

/// An account's counts of one period: slot = account code × 2 + period.
fn counts_of(accounts: &mut [Account], slot: u32) -> &mut Counts {
    let a = &mut accounts[(slot / 2) as usize];
    if slot % 2 == EXP {
        &mut a.exp
    } else {
        &mut a.pre
    }
}

/// The count an outcome type adds to (the pipeline of `opportunity_created` is summed instead).
fn count_of(c: &mut Counts, kind: u32) -> Option<&mut f64> {
    Some(match OUTCOME_TYPES[kind as usize] {
        "reply" => &mut c.reply,
        "positive_reply" => &mut c.positive_reply,
        "meeting_booked" => &mut c.meeting,
        "trust_block" => &mut c.trust_block,
        "human_rejected" => &mut c.human_rejected,
        "duplicate_incident" => &mut c.duplicate,
        "cooldown_violation" => &mut c.cooldown,
        _ => return None,
    })
}

/// Not an experiment decision / not a counted outcome.
const NONE: u32 = u32::MAX;

/// Pass 1 over the decisions: the experiment's window and every enrolled account's code and
/// arm (codes in order of each account's first experiment decision).
struct Enrolment<'a> {
    start: i64,
    end: i64,
    code: PlHashMap<&'a str, u32>,
    variant: Vec<bool>,
    models: [BTreeSet<String>; 2],
    /// Per batch, each row's account code when it is an experiment decision, else NONE.
    rows: Vec<Vec<u32>>,
}

fn enrol<'a>(dec: &'a [RecordBatch], id: &str, as_of: i64) -> Result<Enrolment<'a>> {
    let t = "agent_decisions";
    let mut e = Enrolment {
        start: i64::MAX,
        end: i64::MIN,
        code: PlHashMap::default(),
        variant: Vec::new(),
        models: Default::default(),
        rows: Vec::with_capacity(dec.len()),
    };
    let mut mixed: BTreeSet<String> = BTreeSet::new();
    let mut experiments: BTreeSet<String> = BTreeSet::new();
    let mut row = 0u64;
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
            let variant = match (!arms.is_null(i)).then(|| arms.value(i)) {
                Some("control") => false,
                Some("variant") => true,
                other => {
                    return Err(Error::data(format!(
                        "decision of experiment {id} has arm {other:?}; must be control or variant"
                    ))
                    .with_table(t)
                    .with_column("arm")
                    .with_row(row));
                }
            };
            e.start = e.start.min(at.value(i));
            e.end = e.end.max(at.value(i));
            let models = &mut e.models[usize::from(variant)];
            if !models.contains(model.value(i)) {
                models.insert(model.value(i).to_string());
            }
            let next = e.variant.len() as u32;
            let code = *e.code.entry(acct.value(i)).or_insert(next);
            if code == next {
                e.variant.push(variant);
            } else if e.variant[code as usize] != variant {
                mixed.insert(acct.value(i).to_string());
            }
            codes[i] = code;
        }
        e.rows.push(codes);
    }
    if e.variant.is_empty() {
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
    Ok(e)
}

/// The outcomes, coded: every decision id they refer to gets a code (the smaller side of the
/// join is the one hashed); per outcome its reference, its kind (NONE when not counted or not
/// yet observable) and its pipeline amount.
struct Outcomes<'a> {
    code: PlHashMap<&'a str, u32>,
    reference: Vec<u32>,
    kind: Vec<u32>,
    pipeline: Vec<f64>,
    unobserved: u64,
}

fn code_outcomes<'a>(out: &'a [RecordBatch], as_of: i64) -> Result<Outcomes<'a>> {
    let to = "decision_outcomes";
    let rows: usize = out.iter().map(|b| b.num_rows()).sum();
    let mut o = Outcomes {
        code: PlHashMap::with_capacity_and_hasher(rows, Default::default()),
        reference: Vec::with_capacity(rows),
        kind: Vec::with_capacity(rows),
        pipeline: Vec::with_capacity(rows),
        unobserved: 0,
    };
    for b in out {
        let (did, kind, at) = (
            strings(b, "decision_id", to)?,
            strings(b, "outcome_type", to)?,
            times(b, "outcome_at", to)?,
        );
        let pipe = floats(b, "pipeline_usd", to)?;
        for i in 0..b.num_rows() {
            let next = o.code.len() as u32;
            o.reference
                .push(*o.code.entry(did.value(i)).or_insert(next));
            let k = if at.value(i) >= as_of {
                o.unobserved += 1;
                NONE
            } else {
                OUTCOME_TYPES
                    .iter()
                    .position(|k| *k == kind.value(i))
                    .map_or(NONE, |k| k as u32)
            };
            o.kind.push(k);
            o.pipeline
                .push(if pipe.is_null(i) { 0.0 } else { pipe.value(i) });
        }
    }
    Ok(o)
}

/// The experiment `id` from the rows of `agent_decisions` and `decision_outcomes` (at least
/// the columns of [`DECISION_COLUMNS`] and [`OUTCOME_COLUMNS`], in the registry's types).
///
/// Accounts and referenced decisions get dense integer codes on the way in (one hash lookup
/// per row), so the per-account tallies index arrays instead of grouping by key. Pass 1 and
/// the coding of the outcomes run side by side; pass 2 classifies the decisions one batch
/// per task. Everything is merged in row order, so the result does not depend on threads.
pub fn from_batches(
    dec: &[RecordBatch],
    out: &[RecordBatch],
    id: &str,
    as_of: i64,
) -> Result<Traffic> {
    let t = "agent_decisions";
    let (e, o) = rayon::join(|| enrol(dec, id, as_of), || code_outcomes(out, as_of));
    let (e, o) = (e?, o?);
    let (start, end) = (e.start, e.end);
    let pre_start = start - (as_of - start);

    // Pass 2, one batch per task: each decision of either period of an enrolled account as
    // (account code × 2 + period, cost), and which referenced decision each row is.
    const UNSEEN: u32 = u32::MAX;
    const OUTSIDE: u32 = u32::MAX - 1;
    struct Part {
        decisions: Vec<(u32, f64)>,
        /// (referenced decision, its slot or OUTSIDE, row)
        refs: Vec<(u32, u32, usize)>,
        experiment: u64,
    }
    let parts: Vec<Part> = dec
        .par_iter()
        .zip(&e.rows)
        .map(|(b, codes)| -> Result<Part> {
            let (did, eid, acct, at) = (
                strings(b, "decision_id", t)?,
                strings(b, "experiment_id", t)?,
                strings(b, "account_id", t)?,
                times(b, "decided_at", t)?,
            );
            let cost = floats(b, "cost_usd", t)?;
            let mut p = Part {
                decisions: Vec::new(),
                refs: Vec::new(),
                experiment: 0,
            };
            for i in 0..b.num_rows() {
                let slot = if codes[i] != NONE {
                    p.experiment += 1;
                    Some(codes[i] * 2 + EXP)
                } else if eid.is_null(i) && at.value(i) >= pre_start && at.value(i) < start {
                    e.code.get(acct.value(i)).map(|a| a * 2 + PRE)
                } else {
                    None
                };
                if let Some(s) = slot {
                    p.decisions.push((s, cost.value(i)));
                }
                if let Some(&r) = o.code.get(did.value(i)) {
                    p.refs.push((r, slot.unwrap_or(OUTSIDE), i));
                }
            }
            Ok(p)
        })
        .collect::<Result<_>>()?;

    let mut accounts: Vec<Account> = e
        .variant
        .iter()
        .map(|&variant| Account {
            variant,
            ..Default::default()
        })
        .collect();
    let mut target = vec![UNSEEN; o.code.len()];
    let mut n_decisions = 0u64;
    let mut repeated: Vec<String> = Vec::new();
    for (k, p) in parts.into_iter().enumerate() {
        for (slot, cost) in p.decisions {
            let c = counts_of(&mut accounts, slot);
            c.decisions += 1.0;
            c.cost += cost;
        }
        for (r, slot, row) in p.refs {
            if target[r as usize] != UNSEEN && repeated.len() < 5 {
                repeated.push(strings(&dec[k], "decision_id", t)?.value(row).to_string());
            }
            target[r as usize] = slot;
        }
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
    let to = "decision_outcomes";
    let orphans: Vec<usize> = (0..o.reference.len())
        .filter(|&i| target[o.reference[i] as usize] == UNSEEN)
        .collect();
    if !orphans.is_empty() {
        let ids: std::collections::BTreeMap<u32, &str> = o
            .code
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
                    ids.get(&o.reference[i]).copied().unwrap_or("?"),
                    i + 1
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .with_table(to)
        .with_column("decision_id"));
    }

    // The outcomes: a decision counts once per outcome type (one bit per type and decision);
    // pipeline sums every opportunity's amount.
    let mut seen = vec![0u8; o.code.len()];
    for i in 0..o.reference.len() {
        let (r, kind) = (o.reference[i] as usize, o.kind[i]);
        if kind == NONE || target[r] == OUTSIDE {
            continue;
        }
        let c = counts_of(&mut accounts, target[r]);
        match count_of(c, kind) {
            Some(n) => {
                if seen[r] & (1 << kind) == 0 {
                    seen[r] |= 1 << kind;
                    *n += 1.0;
                }
            }
            None => c.pipeline += o.pipeline[i],
        }
    }
    Ok(Traffic {
        experiment_id: id.to_string(),
        accounts,
        control_models: e.models[0].iter().cloned().collect(),
        variant_models: e.models[1].iter().cloned().collect(),
        start,
        end,
        pre_start,
        as_of,
        decisions: n_decisions,
        outcomes: o.reference.len() as u64,
        unobserved_outcomes: o.unobserved,
    })
}
