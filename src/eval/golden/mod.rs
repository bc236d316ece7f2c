//! The golden-dataset gate (`gtmos eval golden`, SPEC §11): load the datasets the manifest
//! pins, read a prediction file, line it up with the examples (Polars), score each task with
//! bootstrap intervals and a paired baseline comparison, and judge the gate. [`run`] is the
//! whole workflow, recording the result (`workflow.rs`).

mod workflow;

pub use workflow::{GoldenRun, Request, run};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::keys::match_keys;
use super::metrics::{self, Confusion, Interval};
use crate::error::{Error, Result};
use crate::table_io::sha256_file;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub tasks: BTreeMap<String, TaskManifest>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TaskManifest {
    pub file: String,
    pub sha256: String,
    pub examples: usize,
    pub critical: usize,
    pub labels: Vec<String>,
    pub ordinal: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    pub id: String,
    pub task: String,
    pub input: serde_json::Value,
    pub label: String,
    pub critical: bool,
    pub version: String,
    pub rationale: String,
}

/// The golden datasets, checked against their manifest.
#[derive(Debug, Clone)]
pub struct Golden {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub examples: Vec<Example>,
}

/// Every problem found in an input file, as one error (the first 50 listed), or Ok when none.
pub(crate) fn refuse(path: &Path, what: &str, problems: Vec<String>) -> Result<()> {
    if problems.is_empty() {
        return Ok(());
    }
    let n = problems.len();
    let mut problems = problems;
    // In file order: problems naming a line by their line number, the rest first.
    problems.sort_by_key(|p| (line_of(p), p.clone()));
    let mut shown: Vec<String> = problems.into_iter().take(SHOWN).collect();
    if n > SHOWN {
        shown.push(format!("… and {} more", n - SHOWN));
    }
    Err(bad(
        path,
        None,
        format!("{n} problem(s) in {what}:\n  {}", shown.join("\n  ")),
    ))
}

/// A value quoted in an error, cut to 80 characters (a 1 MB label is not echoed whole).
pub(crate) fn clip(v: &str) -> String {
    match v.char_indices().nth(80) {
        Some((i, _)) => format!("{}… ({} bytes)", &v[..i], v.len()),
        None => v.to_string(),
    }
}

/// How many problems or ids an error lists before counting the rest.
pub(crate) const SHOWN: usize = 20;

/// The line a problem names (`line N: …`), for sorting; none sorts first.
fn line_of(problem: &str) -> Option<u64> {
    let rest = problem.strip_prefix("line ")?;
    rest[..rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len())]
        .parse()
        .ok()
}

/// A long list for an error message: sorted, the first [`SHOWN`], the rest counted.
pub(crate) fn short_list<S: AsRef<str>>(items: &[S]) -> String {
    let mut v: Vec<&str> = items.iter().map(AsRef::as_ref).collect();
    v.sort_unstable();
    let mut s = v[..v.len().min(SHOWN)].join(", ");
    if v.len() > SHOWN {
        s.push_str(&format!(" … and {} more", v.len() - SHOWN));
    }
    s
}

pub(crate) fn bad(path: &Path, line: Option<u64>, message: impl Into<String>) -> Error {
    let e = Error::data(message).with_path(path);
    match line {
        Some(l) => e.with_row(l),
        None => e,
    }
}

impl Golden {
    pub fn load(dir: &Path) -> Result<Golden> {
        let mpath = dir.join("manifest.json");
        let text = std::fs::read_to_string(&mpath)
            .map_err(|e| Error::io("cannot read the golden manifest", &mpath, e))?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
            bad(
                &mpath,
                Some(e.line() as u64),
                format!("not a golden manifest: {e}"),
            )
        })?;
        let mut examples = Vec::new();
        for (task, t) in &manifest.tasks {
            let path = dir.join(&t.file);
            let bytes = std::fs::read(&path)
                .map_err(|e| Error::io("cannot read a golden dataset", &path, e))?;
            let sha = crate::table_io::sha256_hex(&bytes);
            if sha != t.sha256 {
                return Err(bad(
                    &path,
                    None,
                    format!(
                        "sha256 {sha} does not match the manifest's {} (edited without regenerating the manifest?)",
                        t.sha256
                    ),
                ));
            }
            let text = String::from_utf8(bytes)
                .map_err(|e| bad(&path, None, format!("not UTF-8 text: {e}")))?;
            let before = examples.len();
            for (line, e) in jsonl::<Example>(&path, &text, "a golden example")? {
                let line_no = Some(line);
                if &e.task != task || !t.labels.contains(&e.label) || e.version != manifest.version
                {
                    return Err(bad(
                        &path,
                        line_no,
                        format!(
                            "example {}: task `{}`, label `{}`, version `{}` do not fit the manifest (task `{task}`, labels {:?}, version {})",
                            e.id, e.task, e.label, e.version, t.labels, manifest.version
                        ),
                    ));
                }
                examples.push(e);
            }
            let found = &examples[before..];
            let crit = found.iter().filter(|e| e.critical).count();
            if found.len() != t.examples || crit != t.critical {
                return Err(bad(
                    &path,
                    None,
                    format!(
                        "{} examples ({crit} critical), the manifest says {} ({})",
                        found.len(),
                        t.examples,
                        t.critical
                    ),
                ));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(dup) = examples.iter().find(|e| !seen.insert(e.id.as_str())) {
            return Err(bad(
                dir,
                None,
                format!("golden id `{}` appears twice", dup.id),
            ));
        }
        Ok(Golden {
            dir: dir.to_path_buf(),
            manifest,
            examples,
        })
    }
}

/// One line of a prediction file.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub id: String,
    pub prediction: String,
    pub confidence: Option<f64>,
    pub model_id: Option<String>,
    /// 1-based line (JSONL) or row (Parquet).
    pub line: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictionLine {
    id: String,
    prediction: String,
    #[serde(default)]
    confidence: Option<f64>,
    #[serde(default)]
    model_id: Option<String>,
}

/// Read a prediction file: JSONL, or Parquet (by extension) with columns id, prediction and
/// optional confidence, model_id.
pub fn read_predictions(path: &Path) -> Result<Vec<Prediction>> {
    if path.extension().and_then(|e| e.to_str()) == Some("parquet") {
        return read_parquet_predictions(path);
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io("cannot read the predictions", path, e))?;
    Ok(jsonl::<PredictionLine>(path, &text, "a prediction")?
        .into_iter()
        .map(|(line, p)| Prediction {
            id: p.id,
            prediction: p.prediction,
            confidence: p.confidence,
            model_id: p.model_id,
            line,
        })
        .collect())
}

/// The objects of a JSONL text with their 1-based line numbers (blank lines skipped); the
/// first line that is not a `what` is an error naming it.
pub(crate) fn jsonl<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
    what: &str,
) -> Result<Vec<(u64, T)>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let line = i as u64 + 1;
            serde_json::from_str(l)
                .map(|v| (line, v))
                .map_err(|e| bad(path, Some(line), format!("not {what}: {e}")))
        })
        .collect()
}

fn read_parquet_predictions(path: &Path) -> Result<Vec<Prediction>> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Float64Type};
    let (schema, batches) = crate::table_io::read_parquet(path)?;
    let col = |name: &str, required: bool| -> Result<Option<usize>> {
        match schema.index_of(name) {
            Ok(i) => Ok(Some(i)),
            Err(_) if !required => Ok(None),
            Err(_) => Err(bad(
                path,
                None,
                format!("no column `{name}` (need id, prediction; optional confidence, model_id)"),
            )
            .with_column(name)),
        }
    };
    let (id, pred, conf, model) = (
        col("id", true)?,
        col("prediction", true)?,
        col("confidence", false)?,
        col("model_id", false)?,
    );
    let mut out = Vec::new();
    for b in &batches {
        let text = |i: Option<usize>, name: &str| -> Result<Option<arrow::array::ArrayRef>> {
            i.map(|i| {
                arrow::compute::cast(b.column(i), &DataType::Utf8).map_err(|e| {
                    bad(path, None, format!("column `{name}` is not text: {e}")).with_column(name)
                })
            })
            .transpose()
        };
        let (ids, preds, models) = (
            text(id, "id")?.expect("required"),
            text(pred, "prediction")?.expect("required"),
            text(model, "model_id")?,
        );
        let confs = conf
            .map(|i| {
                arrow::compute::cast(b.column(i), &DataType::Float64).map_err(|e| {
                    bad(
                        path,
                        None,
                        format!("column `confidence` is not a number: {e}"),
                    )
                    .with_column("confidence")
                })
            })
            .transpose()?;
        for r in 0..b.num_rows() {
            let line = out.len() as u64 + 1;
            let s = |a: &arrow::array::ArrayRef, name: &str| -> Result<String> {
                if a.is_null(r) {
                    return Err(
                        bad(path, Some(line), format!("`{name}` is null")).with_column(name)
                    );
                }
                Ok(a.as_string::<i32>().value(r).to_string())
            };
            out.push(Prediction {
                id: s(&ids, "id")?,
                prediction: s(&preds, "prediction")?,
                confidence: confs.as_ref().and_then(|c| {
                    (!c.is_null(r)).then(|| c.as_primitive::<Float64Type>().value(r))
                }),
                model_id: models.as_ref().and_then(|m| {
                    (!m.is_null(r)).then(|| m.as_string::<i32>().value(r).to_string())
                }),
                line,
            });
        }
    }
    Ok(out)
}

/// Predictions lined up with the golden examples: `row[i]` is the prediction for example i.
#[derive(Debug, Clone)]
pub struct Aligned {
    pub model_id: String,
    pub row: Vec<usize>,
}

/// Line predictions up with the examples, or list every problem: ids not in the golden set,
/// examples without a prediction, ids predicted twice, labels outside the task, confidences
/// outside [0, 1] or not numbers, more than one model in a file. Nothing is dropped.
pub fn align(golden: &Golden, preds: &[Prediction], path: &Path) -> Result<Aligned> {
    let m = match_keys(
        &golden
            .examples
            .iter()
            .map(|e| e.id.as_str())
            .collect::<Vec<_>>(),
        &preds.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(),
    )?;
    let mut problems: Vec<String> = Vec::new();
    let at = |r: u32| format!("line {}", preds[r as usize].line);
    // Ids predicted more than once.
    for lines in &m.dup_right {
        problems.push(format!(
            "id `{}` predicted {} times ({})",
            preds[lines[0] as usize].id,
            lines.len(),
            lines.iter().map(|&r| at(r)).collect::<Vec<_>>().join(", ")
        ));
    }
    // Ids not in the golden set.
    for &r in &m.right_only {
        problems.push(format!(
            "{}: id `{}` is not in the golden set",
            at(r),
            clip(&preds[r as usize].id)
        ));
    }
    // Examples without a prediction.
    if !m.left_only.is_empty() {
        let ids: Vec<&str> = m
            .left_only
            .iter()
            .map(|&r| golden.examples[r as usize].id.as_str())
            .collect();
        problems.push(format!(
            "{} golden example(s) have no prediction: {}",
            ids.len(),
            short_list(&ids)
        ));
    }
    // Labels outside the example's task.
    let mut wrong: Vec<(u32, u32)> = m
        .pairs
        .iter()
        .filter(|&&(g, p)| {
            let task = &golden.examples[g as usize].task;
            !golden.manifest.tasks[task]
                .labels
                .contains(&preds[p as usize].prediction)
        })
        .map(|&(g, p)| (p, g))
        .collect();
    wrong.sort_unstable();
    for (r, gr) in wrong {
        let pr = &preds[r as usize];
        let task = &golden.examples[gr as usize].task;
        problems.push(format!(
            "{}: `{}` is not a label of task {task} (labels: {})",
            at(r),
            clip(&pr.prediction),
            golden.manifest.tasks[task].labels.join(", ")
        ));
    }
    for (i, pr) in preds.iter().enumerate() {
        if let Some(c) = pr.confidence
            && !(0.0..=1.0).contains(&c)
        {
            problems.push(format!(
                "{}: confidence {c} is outside [0, 1]",
                at(i as u32)
            ));
        }
    }
    let with_conf = preds.iter().filter(|p| p.confidence.is_some()).count();
    if with_conf != 0 && with_conf != preds.len() {
        // Name the lines of the minority: the ones that break "all or none".
        let has = with_conf * 2 < preds.len();
        let lines: Vec<u64> = preds
            .iter()
            .filter(|p| p.confidence.is_some() == has)
            .map(|p| p.line)
            .collect();
        let mut shown: Vec<String> = lines.iter().take(SHOWN).map(u64::to_string).collect();
        if lines.len() > SHOWN {
            shown.push(format!("… and {} more", lines.len() - SHOWN));
        }
        problems.push(format!(
            "{with_conf} of {} predictions carry a confidence: all or none must (calibration needs every one); {} {}: line {}",
            preds.len(),
            if has { "with one" } else { "without one" },
            if lines.len() == 1 { "is" } else { "are" },
            shown.join(", ")
        ));
    }
    let models: std::collections::BTreeSet<&str> = preds
        .iter()
        .map(|p| p.model_id.as_deref().unwrap_or(""))
        .collect();
    if models.len() > 1 || models.contains("") {
        let first = |m: &str| {
            preds
                .iter()
                .find(|p| p.model_id.as_deref().unwrap_or("") == m)
                .map_or(0, |p| p.line)
        };
        problems.push(format!(
            "model_id must be present on every line and the same throughout; found {}",
            models
                .iter()
                .map(|m| if m.is_empty() {
                    format!("none (first at line {})", first(m))
                } else {
                    format!("`{m}` (first at line {})", first(m))
                })
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    refuse(path, "the predictions", problems)?;
    let mut row = vec![0usize; golden.examples.len()];
    for &(g, p) in &m.pairs {
        row[g as usize] = p as usize;
    }
    Ok(Aligned {
        model_id: models.into_iter().next().unwrap_or_default().to_string(),
        row,
    })
}

/// The gate's configuration (`golden/eval.yml`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GateConfig {
    pub bootstrap: BootstrapConfig,
    pub calibration_bins: usize,
    pub baseline: BaselineConfig,
    pub tasks: BTreeMap<String, Vec<Threshold>>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BootstrapConfig {
    pub resamples: usize,
    pub confidence: f64,
    pub seed: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineConfig {
    pub metric: String,
    pub non_inferiority_margin: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Threshold {
    pub metric: String,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
}

/// Metrics a threshold may name, in the order the statistics vector holds them (the six
/// confusion metrics, then Brier and ECE); `max` thresholds are for the lower-is-better ones.
pub const METRICS: [&str; 8] = [
    "accuracy",
    "macro_f1",
    "weighted_f1",
    "micro_f1",
    "cohen_kappa",
    "quadratic_weighted_kappa",
    "brier",
    "ece",
];

impl GateConfig {
    pub fn load(path: &Path, golden: &Golden) -> Result<GateConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io("cannot read the eval config", path, e))?;
        let c: GateConfig = serde_yaml_ng::from_str(&text).map_err(|e| {
            bad(
                path,
                e.location().map(|l| l.line() as u64),
                format!("not an eval config: {e}"),
            )
        })?;
        let fail = |m: String| Err(bad(path, None, m));
        if c.bootstrap.resamples < 2000 {
            return fail(format!(
                "bootstrap.resamples is {}: at least 2,000 for a 95 % percentile interval",
                c.bootstrap.resamples
            ));
        }
        if !(0.5..1.0).contains(&c.bootstrap.confidence) || c.calibration_bins == 0 {
            return fail(
                "bootstrap.confidence must be in [0.5, 1) and calibration_bins positive".into(),
            );
        }
        // The paired deltas are of the six confusion metrics.
        let known = &METRICS[..6];
        if !known.contains(&c.baseline.metric.as_str()) {
            return fail(format!(
                "baseline.metric `{}` is not one of {known:?}",
                c.baseline.metric
            ));
        }
        for (task, ts) in &c.tasks {
            let Some(tm) = golden.manifest.tasks.get(task) else {
                return fail(format!("task `{task}` is not in the golden manifest"));
            };
            for t in ts {
                if !METRICS.contains(&t.metric.as_str()) || t.min.is_some() == t.max.is_some() {
                    return fail(format!(
                        "task {task}: threshold on `{}` needs a known metric ({METRICS:?}) and exactly one of min / max",
                        t.metric
                    ));
                }
                if t.metric == "quadratic_weighted_kappa" && !tm.ordinal {
                    return fail(format!(
                        "task {task} is not ordinal: quadratic_weighted_kappa does not apply"
                    ));
                }
            }
        }
        Ok(c)
    }
}

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
    pred: Vec<u32>,
    base: Option<Vec<u32>>,
    conf: Option<Vec<f64>>,
    ordinal: bool,
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
        if has_conf {
            let cf = items.conf.as_ref().expect("has confidences");
            let right: Vec<bool> = (0..n).map(|i| items.truth[i] == items.pred[i]).collect();
            let mce = metrics::calibration_error(cf, &right, cfg.calibration_bins).1;
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
