//! Freshness SLOs (SPEC §6, Decision OS): attainment over a rolling window of builds, read
//! from `logs/freshness_log`.
//!
//! An observation is one snapshot: per source, the age its latest run that read the source
//! measured (a partial run — `--select`, `recognize`, `reconcile` — measures only the sources
//! it reads, and leaves the others as earlier runs of the snapshot saw them). It is good for
//! an SLO when every source the SLO names was fresher than `max_age_hours` at that snapshot's
//! as_of; a snapshot no run read all of an SLO's sources of is no observation of that SLO
//! (not read is not stale; read and empty is). Attainment is the share of good observations
//! among those whose as_of lies in the `window_days` ending at the newest as_of. An SLO is
//! breached when attainment is below its target.

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
    /// None when the source has rows loaded after the snapshot's export (impossible: not
    /// fresh, whatever the newest plausible row says), as when it has none at all.
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
        let future = b
            .column_by_name("future_rows")
            .map(|c| c.as_primitive::<arrow::datatypes::Int64Type>().clone());
        for i in 0..b.num_rows() {
            let in_future = future
                .as_ref()
                .is_some_and(|f| f.is_valid(i) && f.value(i) > 0);
            out.push(Row {
                run_id: run.value(i).to_string(),
                snapshot_id: snap.value(i).to_string(),
                as_of: as_of.value(i),
                source: src.value(i).to_string(),
                age_hours: (!age.is_null(i) && !in_future).then(|| age.value(i)),
            });
        }
    }
    Ok(out)
}

pub fn attainment(warehouse: &Path, slos: &[Slo]) -> Result<Vec<SloAttainment>> {
    let all = rows(warehouse)?;
    // Per (snapshot, as_of) and source, the latest run that read the source.
    let mut latest: BTreeMap<(i64, String), BTreeMap<String, (String, Option<f64>)>> =
        BTreeMap::new();
    for r in &all {
        let seen = latest
            .entry((r.as_of, r.snapshot_id.clone()))
            .or_default()
            .entry(r.source.clone())
            .or_insert_with(|| (r.run_id.clone(), r.age_hours));
        if r.run_id > seen.0 {
            *seen = (r.run_id.clone(), r.age_hours);
        }
    }
    let obs: BTreeMap<(i64, String), BTreeMap<String, Option<f64>>> = latest
        .into_iter()
        .map(|(k, m)| (k, m.into_iter().map(|(s, (_, age))| (s, age)).collect()))
        .collect();
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
        // The newest snapshot that observed this SLO's sources anchors its window.
        let observed =
            |ages: &BTreeMap<String, Option<f64>>| slo.sources.iter().all(|s| ages.contains_key(s));
        let newest = obs
            .iter()
            .filter(|(_, ages)| observed(ages))
            .map(|(k, _)| k.0)
            .max();
        if let Some(newest) = newest {
            let from = newest - (slo.window_days * 86_400_000_000.0) as i64;
            for ((as_of, _), ages) in &obs {
                if *as_of <= from || !observed(ages) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::TableBuilder;
    use crate::logs::{FRESHNESS_LOG, append};

    const HOUR: i64 = 3_600_000_000;
    const DAY: i64 = 24 * HOUR;

    fn log(w: &Path, run: &str, snapshot: &str, as_of: i64, ages: &[(&str, f64)]) {
        let ages: Vec<(&str, Option<f64>)> = ages.iter().map(|(s, h)| (*s, Some(*h))).collect();
        log_opt(w, run, snapshot, as_of, &ages)
    }

    /// A run's rows; an age of None is a source read with no loaded_at value at all.
    fn log_opt(w: &Path, run: &str, snapshot: &str, as_of: i64, ages: &[(&str, Option<f64>)]) {
        let mut b = TableBuilder::new("freshness_log", FRESHNESS_LOG.schema()).unwrap();
        let (r, s, a, src, age) = (
            b.str_col("run_id").unwrap(),
            b.str_col("snapshot_id").unwrap(),
            b.ts_col("as_of").unwrap(),
            b.str_col("source").unwrap(),
            b.f64_col("age_hours").unwrap(),
        );
        for (source, h) in ages {
            b.str(r, run);
            b.str(s, snapshot);
            b.ts(a, as_of);
            b.str(src, source);
            b.opt_f64(age, *h);
            b.end_row();
        }
        append(w, &FRESHNESS_LOG, run, &b.finish().unwrap()).unwrap();
    }

    fn slo() -> Slo {
        Slo {
            name: "fresh".into(),
            description: String::new(),
            sources: vec!["a".into(), "b".into()],
            max_age_hours: 24.0,
            target: 0.98,
            window_days: 28.0,
        }
    }

    #[test]
    fn attainment_counts_snapshots_in_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path();
        // 49 daily snapshots; the one 10 days ago had a stale source; one 40 days ago (outside).
        for d in 0..49 {
            let stale = d == 10 || d == 40;
            log(
                w,
                &format!("r{d:03}"),
                &format!("s{d}"),
                1_000 * DAY - d * DAY,
                &[("a", 2.0), ("b", if stale { 30.0 } else { 5.0 })],
            );
        }
        // A rerun of the newest snapshot replaces its observation (still fresh).
        log(w, "r999", "s0", 1_000 * DAY, &[("a", 1.0), ("b", 1.0)]);
        let a = &attainment(w, &[slo()]).unwrap()[0];
        // Window (as_of − 28 d, as_of]: days 0..27 → 28 observations, 1 bad.
        assert_eq!(a.observations, 28);
        assert_eq!(a.good, 27);
        assert!((a.attainment.unwrap() - 27.0 / 28.0).abs() < 1e-12);
        assert!(a.breached, "96.4 % < 98 %");
        assert_eq!(a.latest_ages["b"], Some(1.0));
        let lenient = Slo {
            target: 0.95,
            ..slo()
        };
        assert!(!attainment(w, &[lenient]).unwrap()[0].breached);
    }

    #[test]
    fn a_partial_run_observes_only_what_it_read() {
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path();
        // A run that read only `a` is no observation of an SLO over a and b: not read is not stale.
        log(w, "r1", "s1", DAY, &[("a", 1.0)]);
        let a = &attainment(w, &[slo()]).unwrap()[0];
        assert_eq!((a.observations, a.breached), (0, false));
        // A later partial run of the same snapshot reads `b`: with the earlier `a`, one good
        // observation; and a partial rerun reading only `a` again keeps b's measurement.
        log(w, "r2", "s1", DAY, &[("b", 3.0)]);
        log(w, "r3", "s1", DAY, &[("a", 2.0)]);
        let a = &attainment(w, &[slo()]).unwrap()[0];
        assert_eq!((a.observations, a.good), (1, 1));
        assert_eq!(a.latest_ages["a"], Some(2.0));
        assert_eq!(a.latest_ages["b"], Some(3.0));
        // A source read that had no load time at all is not fresh.
        log_opt(w, "r4", "s2", 2 * DAY, &[("a", Some(1.0)), ("b", None)]);
        let a = &attainment(w, &[slo()]).unwrap()[0];
        assert_eq!((a.observations, a.good), (2, 1));
        assert_eq!(a.latest_ages["b"], None);
    }
}
