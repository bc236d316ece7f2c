//! Canary traffic from a snapshot: `agent_decisions` + `decision_outcomes` of one experiment
//! turned into per-account tallies: the experiment period per arm and, for CUPED, the
//! pre-period of the same length before it. Accounts and decisions get dense integer codes
//! ([`super::ids`]), so the join of outcomes to decisions is one prefetched hash probe per row
//! and the tallies index arrays (a Polars group-by on those codes was half of the time at
//! 10 M decisions). The columns are read compactly ([`read_table`]).

use std::collections::BTreeSet;

use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Float64Type, Int32Type, TimestampMicrosecondType};
use rayon::prelude::*;

use super::compare::{Account, Counts};
use super::ids::Ids;
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

/// A text column as read: plain, or dictionary-encoded (as [`read_table`] reads the
/// few-valued ones).
#[derive(Clone, Copy)]
enum Text<'a> {
    Plain(&'a StringArray),
    Dict {
        keys: &'a Int32Array,
        values: &'a StringArray,
        dict: &'a ArrayRef,
    },
}

impl<'a> Text<'a> {
    fn is_null(self, i: usize) -> bool {
        match self {
            Text::Plain(a) => a.is_null(i),
            Text::Dict { keys, .. } => keys.is_null(i),
        }
    }

    fn value(self, i: usize) -> &'a str {
        match self {
            Text::Plain(a) => a.value(i),
            Text::Dict { keys, values, .. } => values.value(keys.value(i) as usize),
        }
    }
}

fn text<'a>(b: &'a RecordBatch, name: &str, table: &str) -> Result<Text<'a>> {
    let c = b.column_by_name(name);
    if let Some(a) = c.and_then(|c| c.as_string_opt::<i32>()) {
        return Ok(Text::Plain(a));
    }
    if let Some(d) = c.and_then(|c| c.as_dictionary_opt::<Int32Type>())
        && let Some(values) = d.values().as_string_opt::<i32>()
    {
        return Ok(Text::Dict {
            keys: d.keys(),
            values,
            dict: d.values(),
        });
    }
    Err(Error::data("column is missing or not text")
        .with_table(table)
        .with_column(name))
}

/// Not yet looked up (in a [`Memo`]).
const UNKNOWN: u32 = u32::MAX - 1;

/// The code of each row's value of a few-valued text column: of a dictionary-encoded batch,
/// found once per dictionary entry instead of once per row.
#[derive(Default)]
struct Memo {
    dict: Option<ArrayRef>,
    codes: Vec<u32>,
}

impl Memo {
    /// Row `i`'s code, `find` giving the code of a value (never [`UNKNOWN`]).
    fn code<'a>(&mut self, col: Text<'a>, i: usize, mut find: impl FnMut(&'a str) -> u32) -> u32 {
        match col {
            Text::Plain(a) => find(a.value(i)),
            Text::Dict { keys, values, dict } => {
                if !self.dict.as_ref().is_some_and(|d| Arc::ptr_eq(d, dict)) {
                    self.dict = Some(dict.clone());
                    self.codes.clear();
                    self.codes.resize(values.len(), UNKNOWN);
                }
                let k = keys.value(i) as usize;
                if self.codes[k] == UNKNOWN {
                    self.codes[k] = find(values.value(k));
                }
                self.codes[k]
            }
        }
    }
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

/// One Parquet file of `agent_decisions` or `decision_outcomes` as the comparison reads it:
/// only `columns`; the text columns whose values repeat (account, experiment, arm, model,
/// outcome type) as dictionaries, so a dictionary-encoded column chunk is not expanded into a
/// string per row (and the few-valued ones are coded once per entry, see [`Memo`]); decimals
/// stored in 64 bits as `Decimal64`. Any other types work too, e.g. the registry's own.
pub fn read_table(file: &Path, columns: &[&str]) -> Result<Vec<RecordBatch>> {
    let retype = |f: &arrow::datatypes::Field| match (f.name().as_str(), f.data_type()) {
        (
            "account_id" | "experiment_id" | "arm" | "model_version" | "outcome_type",
            DataType::Utf8,
        ) => Some(DataType::Dictionary(
            Box::new(DataType::Int32),
            Box::new(DataType::Utf8),
        )),
        (_, DataType::Decimal128(p, s)) if *p <= 18 => Some(DataType::Decimal64(*p, *s)),
        _ => None,
    };
    Ok(crate::table_io::read_parquet_columns_as(file, Some(columns), &retype)?.1)
}

/// Read the experiment `id` from a snapshot (only the columns it needs; the snapshot's
/// schema was checked when it was opened), counting what happened before `as_of`.
pub fn read(snap: &Snapshot, id: &str, as_of: i64) -> Result<Traffic> {
    let load = |table: &str, cols: &[&str]| -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        for f in crate::snapshot::parquet_files(&snap.table_path(table)?)? {
            out.extend(read_table(&f, cols)?);
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

/// The count an outcome type adds to, by its code in [`OUTCOME_TYPES`] (the pipeline of
/// `opportunity_created` is summed instead).
fn count_of(c: &mut Counts, kind: u32) -> Option<&mut f64> {
    Some(match kind {
        0 => &mut c.reply,
        1 => &mut c.positive_reply,
        2 => &mut c.meeting,
        3 => &mut c.trust_block,
        4 => &mut c.human_rejected,
        5 => &mut c.duplicate,
        6 => &mut c.cooldown,
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
    code: Ids<'a>,
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
        code: Ids::with_capacity(1 << 16),
        variant: Vec::new(),
        models: Default::default(),
        rows: Vec::with_capacity(dec.len()),
    };
    let mut mixed: BTreeSet<String> = BTreeSet::new();
    let mut experiments: BTreeSet<String> = BTreeSet::new();
    // The few-valued columns are coded once per dictionary entry: whether an experiment id is
    // this one (1) or not (0), the arm (0 control, 1 variant, NONE neither), the model (its
    // index in `names`, and which arms used it).
    let (mut experiment, mut arm, mut model): (Memo, Memo, Memo) = Default::default();
    let mut names: Vec<&str> = Vec::new();
    let mut used: Vec<[bool; 2]> = Vec::new();
    let mut row = 0u64;
    // Per batch, the experiment's decisions and their arms; their accounts are coded after.
    let mut enrolled: Vec<(u32, bool)> = Vec::new();
    for b in dec {
        let mut codes = vec![NONE; b.num_rows()];
        enrolled.clear();
        let (eid, arms, acct, at, models) = (
            text(b, "experiment_id", t)?,
            text(b, "arm", t)?,
            text(b, "account_id", t)?,
            times(b, "decided_at", t)?,
            text(b, "model_version", t)?,
        );
        for i in 0..b.num_rows() {
            if eid.is_null(i) || at.value(i) >= as_of {
                continue;
            }
            let this = experiment.code(eid, i, |v| {
                if v == id {
                    return 1;
                }
                if !experiments.contains(v) {
                    experiments.insert(v.to_string());
                }
                0
            });
            if this == 0 {
                continue;
            }
            let a = if arms.is_null(i) {
                NONE
            } else {
                arm.code(arms, i, |v| match v {
                    "control" => 0,
                    "variant" => 1,
                    _ => NONE,
                })
            };
            if a == NONE {
                let other = (!arms.is_null(i)).then(|| arms.value(i));
                return Err(Error::data(format!(
                    "decision of experiment {id} has arm {other:?}; must be control or variant"
                ))
                .with_table(t)
                .with_column("arm")
                .with_row(row + i as u64 + 1));
            }
            if acct.is_null(i) {
                return Err(Error::data(format!(
                    "decision of experiment {id} has no account_id: the account is what is randomised"
                ))
                .with_table(t)
                .with_column("account_id")
                .with_row(row + i as u64 + 1));
            }
            let variant = a == 1;
            e.start = e.start.min(at.value(i));
            e.end = e.end.max(at.value(i));
            let m = model.code(models, i, |v| {
                names.iter().position(|n| *n == v).unwrap_or_else(|| {
                    names.push(v);
                    used.push([false; 2]);
                    names.len() - 1
                }) as u32
            });
            used[m as usize][a as usize] = true;
            enrolled.push((i as u32, variant));
        }
        let arms = &mut e.variant;
        e.code.code_each(
            enrolled.len(),
            |j| acct.value(enrolled[j].0 as usize),
            |j, code| {
                let (i, variant) = enrolled[j];
                if code as usize == arms.len() {
                    arms.push(variant);
                } else if arms[code as usize] != variant {
                    mixed.insert(acct.value(i as usize).to_string());
                }
                codes[i as usize] = code;
            },
        );
        row += b.num_rows() as u64;
        e.rows.push(codes);
    }
    for (name, used) in names.iter().zip(&used) {
        for (models, used) in e.models.iter_mut().zip(used) {
            if *used {
                models.insert(name.to_string());
            }
        }
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
    code: Ids<'a>,
    reference: Vec<u32>,
    kind: Vec<u32>,
    pipeline: Vec<f64>,
    /// When each outcome happened (µs).
    at: Vec<i64>,
    unobserved: u64,
}

fn code_outcomes<'a>(out: &'a [RecordBatch], as_of: i64) -> Result<Outcomes<'a>> {
    let to = "decision_outcomes";
    let rows: usize = out.iter().map(|b| b.num_rows()).sum();
    let mut o = Outcomes {
        code: Ids::with_capacity(rows),
        reference: Vec::with_capacity(rows),
        kind: Vec::with_capacity(rows),
        pipeline: Vec::with_capacity(rows),
        at: Vec::with_capacity(rows),
        unobserved: 0,
    };
    let mut kinds = Memo::default();
    for b in out {
        let (did, kind, at) = (
            text(b, "decision_id", to)?,
            text(b, "outcome_type", to)?,
            times(b, "outcome_at", to)?,
        );
        let pipe = floats(b, "pipeline_usd", to)?;
        let reference = &mut o.reference;
        o.code
            .code_each(b.num_rows(), |i| did.value(i), |_, r| reference.push(r));
        for i in 0..b.num_rows() {
            o.at.push(at.value(i));
            let k = if at.value(i) >= as_of {
                o.unobserved += 1;
                NONE
            } else {
                kinds.code(kind, i, |v| {
                    OUTCOME_TYPES
                        .iter()
                        .position(|k| *k == v)
                        .map_or(NONE, |k| k as u32)
                })
            };
            o.kind.push(k);
            o.pipeline
                .push(if pipe.is_null(i) { 0.0 } else { pipe.value(i) });
        }
    }
    Ok(o)
}

/// Where each decision's counts go, and the accounts they go to.
struct Slots {
    start: i64,
    end: i64,
    pre_start: i64,
    models: [BTreeSet<String>; 2],
    /// Per batch, each row's slot (account code × 2 + period) when it is a decision of either
    /// period of an enrolled account, else NONE.
    rows: Vec<Vec<u32>>,
    /// The enrolled accounts, by code, with nothing counted yet.
    accounts: Vec<Account>,
}

/// Enrol the accounts (pass 1), then set every row's slot in parallel: the pre-period's
/// decisions are only known once every account is.
fn assign(dec: &[RecordBatch], id: &str, as_of: i64) -> Result<Slots> {
    let t = "agent_decisions";
    let Enrolment {
        start,
        end,
        code,
        variant,
        models,
        mut rows,
    } = enrol(dec, id, as_of)?;
    let pre_start = start - (as_of - start);
    rows.par_iter_mut()
        .zip(dec)
        .try_for_each(|(slots, b)| -> Result<()> {
            let (eid, acct, at) = (
                text(b, "experiment_id", t)?,
                text(b, "account_id", t)?,
                times(b, "decided_at", t)?,
            );
            let mut pre = Vec::new();
            for (i, s) in slots.iter_mut().enumerate() {
                if *s != NONE {
                    *s = *s * 2 + EXP;
                } else if eid.is_null(i) && at.value(i) >= pre_start && at.value(i) < start {
                    pre.push(i);
                }
            }
            code.find_each(
                pre.len(),
                |j| acct.value(pre[j]),
                |j, a| slots[pre[j]] = a * 2 + PRE,
            );
            Ok(())
        })?;
    let accounts = variant
        .iter()
        .map(|&variant| Account {
            variant,
            ..Default::default()
        })
        .collect();
    Ok(Slots {
        start,
        end,
        pre_start,
        models,
        rows,
        accounts,
    })
}

/// Per batch of decisions, (referenced decision, row) for every decision an outcome refers to.
fn probe(dec: &[RecordBatch], o: &Outcomes) -> Result<Vec<Vec<(u32, u32)>>> {
    dec.par_iter()
        .map(|b| {
            let did = text(b, "decision_id", "agent_decisions")?;
            let mut refs = Vec::new();
            o.code.find_each(
                b.num_rows(),
                |i| did.value(i),
                |i, r| refs.push((r, i as u32)),
            );
            Ok(refs)
        })
        .collect()
}

/// The experiment `id` from the rows of `agent_decisions` and `decision_outcomes` (at least
/// the columns of [`DECISION_COLUMNS`] and [`OUTCOME_COLUMNS`], in the registry's types or as
/// [`read_table`] reads them).
///
/// Accounts and referenced decisions get dense integer codes on the way in (one hash lookup
/// per row), so the per-account tallies index arrays instead of grouping by key. Two things
/// run side by side: enrolling the accounts (codes in order of first experiment decision, so
/// one pass) and then setting each decision's slot; coding the outcomes and then finding
/// which decision each refers to. The counts are then summed in row order, so the result
/// does not depend on threads.
pub fn from_batches(
    dec: &[RecordBatch],
    out: &[RecordBatch],
    id: &str,
    as_of: i64,
) -> Result<Traffic> {
    let t = "agent_decisions";
    let (s, o) = rayon::join(
        || assign(dec, id, as_of),
        || code_outcomes(out, as_of).and_then(|o| Ok((probe(dec, &o)?, o))),
    );
    let (
        Slots {
            start,
            end,
            pre_start,
            models,
            rows: slots,
            mut accounts,
        },
        (refs, o),
    ) = (s?, o?);
    const UNSEEN: u32 = u32::MAX;
    const OUTSIDE: u32 = u32::MAX - 1;
    let mut target = vec![UNSEEN; o.code.len()];
    // When each referenced decision was made: an outcome cannot precede it.
    let mut decided = vec![i64::MIN; o.code.len()];
    let mut n_decisions = 0u64;
    let mut repeated: Vec<String> = Vec::new();
    for ((b, slots), refs) in dec.iter().zip(&slots).zip(&refs) {
        let cost = floats(b, "cost_usd", t)?;
        let at = times(b, "decided_at", t)?;
        for (i, &s) in slots.iter().enumerate() {
            if s != NONE {
                n_decisions += u64::from(s % 2 == EXP);
                let c = counts_of(&mut accounts, s);
                c.decisions += 1.0;
                c.cost += cost.value(i);
            }
        }
        for &(r, i) in refs {
            if target[r as usize] != UNSEEN && repeated.len() < 5 {
                repeated.push(text(b, "decision_id", t)?.value(i as usize).to_string());
            }
            let s = slots[i as usize];
            target[r as usize] = if s == NONE { OUTSIDE } else { s };
            decided[r as usize] = at.value(i as usize);
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
    let to = "decision_outcomes";
    let orphans: Vec<usize> = (0..o.reference.len())
        .filter(|&i| target[o.reference[i] as usize] == UNSEEN)
        .collect();
    if !orphans.is_empty() {
        return Err(Error::data(format!(
            "{} outcome(s) refer to no decision, e.g. decision_id {}",
            orphans.len(),
            orphans
                .iter()
                .take(5)
                .map(|&i| format!("`{}` (row {})", o.code.key(o.reference[i]), i + 1))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .with_table(to)
        .with_column("decision_id"));
    }

    let early: Vec<usize> = (0..o.reference.len())
        .filter(|&i| o.at[i] < decided[o.reference[i] as usize])
        .collect();
    if !early.is_empty() {
        return Err(Error::data(format!(
            "{} outcome(s) happened before their decision, e.g. {}",
            early.len(),
            early
                .iter()
                .take(5)
                .map(|&i| format!(
                    "row {} (decision_id `{}`)",
                    i + 1,
                    o.code.key(o.reference[i])
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .with_table(to)
        .with_column("outcome_at"));
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
        control_models: models[0].iter().cloned().collect(),
        variant_models: models[1].iter().cloned().collect(),
        start,
        end,
        pre_start,
        as_of,
        decisions: n_decisions,
        outcomes: o.reference.len() as u64,
        unobserved_outcomes: o.unobserved,
    })
}
