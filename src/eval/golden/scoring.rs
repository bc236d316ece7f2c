//! Scoring each task with bootstrap intervals and the paired baseline comparison, and judging
//! the gate ([`evaluate`]).

use super::*;

/// A metric's point estimate and bootstrap interval.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    pub value: Option<f64>,
    pub interval: Option<Interval>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClassRow {
    pub label: String,
    #[serde(flatten)]
    pub scores: metrics::ClassScores,
}

#[derive(Debug, Clone, Serialize)]
pub struct CriticalMiss {
    pub id: String,
    pub label: String,
    pub prediction: String,
    pub rationale: String,
}

/// The paired comparison with the baseline on the same examples.
#[derive(Debug, Clone, Serialize)]
pub struct Paired {
    pub baseline_model_id: String,
    pub metric: String,
    pub candidate: Option<f64>,
    pub baseline: Option<f64>,
    pub delta: Option<f64>,
    pub delta_interval: Option<Interval>,
    /// Deltas of every metric (candidate − baseline) with paired-bootstrap intervals.
    pub deltas: BTreeMap<String, Estimate>,
    /// Baseline right, candidate wrong.
    pub baseline_only_right: u64,
    /// Baseline wrong, candidate right.
    pub candidate_only_right: u64,
    pub mcnemar_mid_p: f64,
    pub non_inferiority_margin: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub check: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskReport {
    pub task: String,
    pub examples: usize,
    pub labels: Vec<String>,
    pub ordinal: bool,
    pub confusion: Vec<Vec<u64>>,
    pub classes: Vec<ClassRow>,
    /// Ratios that are 0/0 in this data, listed (never reported as 0).
    pub undefined: Vec<String>,
    pub metrics: BTreeMap<String, Estimate>,
    pub critical_examples: usize,
    pub critical_misses: Vec<CriticalMiss>,
    pub baseline: Option<Paired>,
    pub checks: Vec<Check>,
    pub passed: bool,
    /// The gate's thresholds on this task's metrics.
    pub thresholds: Vec<gate::Threshold>,
    /// The reliability diagram of the confidences (empty without confidences).
    pub reliability: Vec<metrics::Bin>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub dataset: String,
    pub dataset_version: String,
    pub model_id: String,
    pub predictions: String,
    pub predictions_sha256: String,
    pub baseline_model_id: Option<String>,
    pub bootstrap_resamples: usize,
    pub bootstrap_seed: u64,
    pub confidence: f64,
    pub tasks: Vec<TaskReport>,
    pub passed: bool,
    pub reasons: Vec<String>,
}

fn pred_of<'a>(ps: &'a [Prediction], a: &Aligned, i: usize) -> &'a Prediction {
    &ps[a.row[i]]
}

/// Per-item arrays of one task.
struct Items {
    k: usize,
    truth: Vec<u32>,
    pub(super) pred: Vec<u32>,
    pub(super) base: Option<Vec<u32>>,
    pub(super) conf: Option<Vec<f64>>,
    pub(super) ordinal: bool,
    bins: usize,
}

fn stats_of(c: &Confusion, ordinal: bool) -> [Option<f64>; 6] {
    let cls = metrics::per_class(c);
    [
        metrics::accuracy(c),
        metrics::macro_f1(&cls),
        metrics::weighted_f1(&cls),
        metrics::accuracy(c),
        metrics::kappa(c, false),
        if ordinal {
            metrics::kappa(c, true)
        } else {
            None
        },
    ]
}

impl Items {
    /// Statistics of the items at `idx`: the candidate's 6 confusion metrics, Brier, ECE,
    /// then (with a baseline) the 6 deltas.
    fn stats(&self, idx: &[u32], out: &mut [Option<f64>]) {
        let mut c = Confusion::new(self.k);
        let mut b = self.base.as_ref().map(|_| Confusion::new(self.k));
        for &i in idx {
            let i = i as usize;
            c.m[self.truth[i] as usize][self.pred[i] as usize] += 1;
            if let (Some(b), Some(base)) = (b.as_mut(), &self.base) {
                b.m[self.truth[i] as usize][base[i] as usize] += 1;
            }
        }
        let s = stats_of(&c, self.ordinal);
        out[..6].copy_from_slice(&s);
        if let Some(conf) = &self.conf {
            let mut cal = metrics::Calibration::new(self.bins);
            for &i in idx {
                let i = i as usize;
                cal.add(conf[i], self.truth[i] == self.pred[i]);
            }
            out[6] = cal.brier();
            out[7] = cal.errors().0;
        }
        if let Some(b) = b {
            let bs = stats_of(&b, self.ordinal);
            for j in 0..6 {
                out[8 + j] = s[j].zip(bs[j]).map(|(x, y)| x - y);
            }
        }
    }
}

/// Score a prediction file against the golden set and judge the gate.
pub fn evaluate(
    golden: &Golden,
    cfg: &GateConfig,
    preds: &[Prediction],
    aligned: &Aligned,
    baseline: Option<(&[Prediction], &Aligned)>,
    predictions_path: &Path,
) -> Result<Report> {
    let mut tasks = Vec::new();
    let mut reasons = Vec::new();
    let progress = crate::printer::Progress::new("eval", golden.manifest.tasks.len() as u64);
    for (task, tm) in &golden.manifest.tasks {
        progress.step(&format!(
            "{task}: {} bootstrap resamples",
            cfg.bootstrap.resamples
        ));
        let ex: Vec<usize> = (0..golden.examples.len())
            .filter(|&i| &golden.examples[i].task == task)
            .collect();
        let critical_examples = ex.iter().filter(|&&i| golden.examples[i].critical).count();
        let index = |l: &str| {
            tm.labels
                .iter()
                .position(|x| x == l)
                .expect("aligned labels are known") as u32
        };
        let has_conf = ex
            .iter()
            .all(|&i| pred_of(preds, aligned, i).confidence.is_some());
        let items = Items {
            k: tm.labels.len(),
            truth: ex
                .iter()
                .map(|&i| index(&golden.examples[i].label))
                .collect(),
            pred: ex
                .iter()
                .map(|&i| index(&pred_of(preds, aligned, i).prediction))
                .collect(),
            base: baseline.map(|(bp, ba)| {
                ex.iter()
                    .map(|&i| index(&pred_of(bp, ba, i).prediction))
                    .collect()
            }),
            conf: has_conf.then(|| {
                ex.iter()
                    .map(|&i| pred_of(preds, aligned, i).confidence.unwrap_or(0.0))
                    .collect()
            }),
            ordinal: tm.ordinal,
            bins: cfg.calibration_bins,
        };
        let n = ex.len();
        let all: Vec<u32> = (0..n as u32).collect();
        let mut point = vec![None; 14];
        items.stats(&all, &mut point);
        let b = &cfg.bootstrap;
        // One stream family per task, so adding a task leaves the others' intervals alone.
        let seed = task
            .bytes()
            .fold(b.seed, |h, x| h.wrapping_mul(31).wrapping_add(u64::from(x)));
        let ci = metrics::bootstrap(n, b.resamples, seed, b.confidence, 14, |idx, out| {
            items.stats(idx, out)
        });
        let conf = Confusion::from_pairs(items.k, &items.truth, &items.pred);
        let cls = metrics::per_class(&conf);
        let mut undefined = Vec::new();
        for (l, c) in tm.labels.iter().zip(&cls) {
            if c.precision.is_none() {
                undefined.push(format!("precision of `{l}` (never predicted)"));
            }
            if c.recall.is_none() {
                undefined.push(format!("recall of `{l}` (no example has it)"));
            }
            if c.f1.is_none() {
                undefined.push(format!("F1 of `{l}` (neither predicted nor present)"));
            }
        }
        let mut est = BTreeMap::new();
        let names = METRICS.iter().copied();
        for (j, name) in names.enumerate() {
            if (name == "quadratic_weighted_kappa" && !tm.ordinal) || (j >= 6 && !has_conf) {
                continue;
            }
            if point[j].is_none() {
                undefined.push(format!("{name} (0/0 on this data)"));
            }
            est.insert(
                name.to_string(),
                Estimate {
                    value: point[j],
                    interval: ci[j],
                },
            );
        }
        let mut reliability = Vec::new();
        if has_conf {
            let cf = items.conf.as_ref().expect("has confidences");
            let right: Vec<bool> = (0..n).map(|i| items.truth[i] == items.pred[i]).collect();
            let cal = metrics::Calibration::of(cf, &right, cfg.calibration_bins);
            reliability = cal.bins();
            let mce = cal.errors().1;
            est.insert(
                "mce".into(),
                Estimate {
                    value: mce,
                    interval: None,
                },
            );
        }
        let mut critical_misses: Vec<CriticalMiss> = ex
            .iter()
            .zip(&items.pred)
            .zip(&items.truth)
            .filter(|((i, p), t)| golden.examples[**i].critical && p != t)
            .map(|((&i, &p), _)| {
                let e = &golden.examples[i];
                CriticalMiss {
                    id: e.id.clone(),
                    label: e.label.clone(),
                    prediction: tm.labels[p as usize].clone(),
                    rationale: e.rationale.clone(),
                }
            })
            .collect();
        critical_misses.sort_by(|a, b| a.id.cmp(&b.id));
        let mut checks = vec![Check {
            check: "critical examples".into(),
            passed: critical_misses.is_empty(),
            detail: format!(
                "{} of {} critical example(s) missed{}",
                critical_misses.len(),
                critical_examples,
                if critical_misses.is_empty() {
                    String::new()
                } else {
                    format!(
                        ": {}",
                        critical_misses
                            .iter()
                            .map(|m| m.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                }
            ),
        }];
        let pct = (b.confidence * 100.0).round();
        for t in cfg.tasks.get(task).into_iter().flatten() {
            let e = est.get(&t.metric);
            let (passed, detail) = match (e.and_then(|e| e.value), e.and_then(|e| e.interval)) {
                (Some(v), Some(i)) => match (t.min, t.max) {
                    (Some(min), _) => (
                        i.low >= min,
                        format!(
                            "{v:.3}, {pct}% interval [{:.3}, {:.3}]: lower bound {} {min}",
                            i.low,
                            i.high,
                            if i.low >= min { "≥" } else { "<" }
                        ),
                    ),
                    (_, Some(max)) => (
                        i.high <= max,
                        format!(
                            "{v:.3}, {pct}% interval [{:.3}, {:.3}]: upper bound {} {max}",
                            i.low,
                            i.high,
                            if i.high <= max { "≤" } else { ">" }
                        ),
                    ),
                    _ => unreachable!("validated: exactly one of min / max"),
                },
                _ => (
                    false,
                    "undefined on this data (or no confidences): cannot show the threshold is met"
                        .to_string(),
                ),
            };
            checks.push(Check {
                check: t.metric.clone(),
                passed,
                detail,
            });
        }
        let paired = baseline.map(|(_, ba)| {
            let base = items.base.as_ref().expect("baseline items");
            let (mut bo, mut co) = (0u64, 0u64);
            for i in 0..n {
                let (br, cr) = (base[i] == items.truth[i], items.pred[i] == items.truth[i]);
                bo += u64::from(br && !cr);
                co += u64::from(!br && cr);
            }
            let mut deltas = BTreeMap::new();
            for (j, name) in METRICS[..6].iter().enumerate() {
                if *name == "quadratic_weighted_kappa" && !tm.ordinal {
                    continue;
                }
                deltas.insert(
                    name.to_string(),
                    Estimate {
                        value: point[8 + j],
                        interval: ci[8 + j],
                    },
                );
            }
            let j = METRICS
                .iter()
                .position(|m| *m == cfg.baseline.metric)
                .expect("validated baseline metric");
            Paired {
                baseline_model_id: ba.model_id.clone(),
                metric: cfg.baseline.metric.clone(),
                candidate: point[j],
                baseline: point[j].zip(point[8 + j]).map(|(c, d)| c - d),
                delta: point[8 + j],
                delta_interval: ci[8 + j],
                deltas,
                baseline_only_right: bo,
                candidate_only_right: co,
                mcnemar_mid_p: metrics::mcnemar_mid_p(bo, co),
                non_inferiority_margin: cfg.baseline.non_inferiority_margin,
            }
        });
        if let Some(p) = &paired {
            let m = p.non_inferiority_margin;
            let (passed, detail) = match (p.delta, p.delta_interval) {
                (Some(d), Some(i)) => (
                    i.low >= -m,
                    format!(
                        "{} − baseline {}: {d:+.3}, {pct}% paired interval [{:+.3}, {:+.3}]: lower bound {} −{m}; McNemar mid-p {:.4} ({} vs {} discordant)",
                        p.metric,
                        p.baseline_model_id,
                        i.low,
                        i.high,
                        if i.low >= -m { "≥" } else { "<" },
                        p.mcnemar_mid_p,
                        p.candidate_only_right,
                        p.baseline_only_right
                    ),
                ),
                _ => (false, "the delta is undefined on this data".to_string()),
            };
            checks.push(Check {
                check: "non-inferior to baseline".into(),
                passed,
                detail,
            });
        }
        let passed = checks.iter().all(|c| c.passed);
        for c in checks.iter().filter(|c| !c.passed) {
            reasons.push(format!("{task}: {}: {}", c.check, c.detail));
        }
        progress.advance(1);
        tasks.push(TaskReport {
            task: task.clone(),
            examples: n,
            labels: tm.labels.clone(),
            ordinal: tm.ordinal,
            confusion: conf.m.clone(),
            classes: tm
                .labels
                .iter()
                .cloned()
                .zip(cls)
                .map(|(label, scores)| ClassRow { label, scores })
                .collect(),
            undefined,
            metrics: est,
            critical_examples,
            critical_misses,
            baseline: paired,
            checks,
            passed,
            thresholds: cfg.tasks.get(task).cloned().unwrap_or_default(),
            reliability,
        });
    }
    Ok(Report {
        dataset: golden.manifest.name.clone(),
        dataset_version: golden.manifest.version.clone(),
        model_id: aligned.model_id.clone(),
        predictions: predictions_path.display().to_string(),
        predictions_sha256: sha256_file(predictions_path)?,
        baseline_model_id: baseline.map(|(_, a)| a.model_id.clone()),
        bootstrap_resamples: cfg.bootstrap.resamples,
        bootstrap_seed: cfg.bootstrap.seed,
        confidence: cfg.bootstrap.confidence,
        passed: tasks.iter().all(|t| t.passed),
        tasks,
        reasons,
    })
}
