//! Freshness SLOs (SPEC §6, Decision OS): attainment over a rolling window of builds, read
//! from `logs/freshness_log`.
//!
//! An observation is one snapshot (its latest run): it is good for an SLO when every source
//! the SLO names was fresher than `max_age_hours` at that snapshot's as_of. Attainment is the
//! share of good observations among those whose as_of lies in the `window_days` ending at the
//! newest as_of. An SLO is breached when attainment is below its target.

use std::collections::BTreeMap;
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Float64Type, TimestampMicrosecondType};

use crate::error::Result;
use crate::logs::{self, FRESHNESS_LOG};
use crate::project::Slo;

#[derive(Debug, Clone, serde::Serialize)]
pub struct SloAttainment {
    pub name: String,
    pub description: String,
    pub target: f64,
    pub max_age_hours: f64,
    pub window_days: f64,
    /// Snapshots observed in the window, and how many met the SLO.
    pub observations: u64,
    pub good: u64,
    pub attainment: Option<f64>,
    pub breached: bool,
    /// Per source, the age at the newest observation (hours).
    pub latest_ages: BTreeMap<String, Option<f64>>,
    /// (as_of, good) of every observation in the window, oldest first.
    pub history: Vec<(i64, bool)>,
}

/// One row of the freshness log.
#[derive(Debug, Clone)]
struct Row {
    run_id: String,
    snapshot_id: String,
    as_of: i64,
    source: String,
    age_hours: Option<f64>,
}

fn rows(warehouse: &Path) -> Result<Vec<Row>> {
    let mut out = Vec::new();
    for b in logs::read(warehouse, &FRESHNESS_LOG)? {
        let s = |n: &str| b.column_by_name(n).map(|c| c.as_string::<i32>().clone());
        let (Some(run), Some(snap), Some(src)) = (s("run_id"), s("snapshot_id"), s("source"))
        else {
            continue;
        };
        let as_of = b
            .column_by_name("as_of")
            .map(|c| c.as_primitive::<TimestampMicrosecondType>().clone());
        let age = b
            .column_by_name("age_hours")
            .map(|c| c.as_primitive::<Float64Type>().clone());
        let (Some(as_of), Some(age)) = (as_of, age) else {
            continue;
        };
        for i in 0..b.num_rows() {
            out.push(Row {
                run_id: run.value(i).to_string(),
                snapshot_id: snap.value(i).to_string(),
                as_of: as_of.value(i),
                source: src.value(i).to_string(),
                age_hours: (!age.is_null(i)).then(|| age.value(i)),
            });
        }
    }
    Ok(out)
}

pub fn attainment(warehouse: &Path, slos: &[Slo]) -> Result<Vec<SloAttainment>> {
    let all = rows(warehouse)?;
    // The latest run of each (snapshot, as_of) is its observation.
    let mut latest_run: BTreeMap<(String, i64), String> = BTreeMap::new();
    for r in &all {
        let e = latest_run
            .entry((r.snapshot_id.clone(), r.as_of))
            .or_insert_with(|| r.run_id.clone());
        if r.run_id > *e {
            *e = r.run_id.clone();
        }
    }
    let mut obs: BTreeMap<(i64, String), BTreeMap<String, Option<f64>>> = BTreeMap::new();
    for r in &all {
        if latest_run.get(&(r.snapshot_id.clone(), r.as_of)) == Some(&r.run_id) {
            obs.entry((r.as_of, r.snapshot_id.clone()))
                .or_default()
                .insert(r.source.clone(), r.age_hours);
        }
    }
    let newest = obs.keys().map(|k| k.0).max();
    let mut out = Vec::new();
    for slo in slos {
        let mut a = SloAttainment {
            name: slo.name.clone(),
            description: slo.description.clone(),
            target: slo.target,
            max_age_hours: slo.max_age_hours,
            window_days: slo.window_days,
            observations: 0,
            good: 0,
            attainment: None,
            breached: false,
            latest_ages: BTreeMap::new(),
            history: Vec::new(),
        };
        if let Some(newest) = newest {
            let from = newest - (slo.window_days * 86_400_000_000.0) as i64;
            for ((as_of, _), ages) in &obs {
                if *as_of <= from {
                    continue;
                }
                let good = slo.sources.iter().all(|s| {
                    ages.get(s)
                        .copied()
                        .flatten()
                        .is_some_and(|h| h < slo.max_age_hours)
                });
                a.observations += 1;
                a.good += good as u64;
                a.history.push((*as_of, good));
                if *as_of == newest {
                    a.latest_ages = slo
                        .sources
                        .iter()
                        .map(|s| (s.clone(), ages.get(s).copied().flatten()))
                        .collect();
                }
            }
        }
        if a.observations > 0 {
            let att = a.good as f64 / a.observations as f64;
            a.attainment = Some(att);
            a.breached = att < slo.target;
        }
        out.push(a);
    }
    Ok(out)
}
