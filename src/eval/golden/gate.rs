//! The gate's configuration (`golden/eval.yml`): metrics, thresholds, bootstrap and baseline.

use super::*;

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
