//! The decision rule's configuration (`pipelines/canary.yml`): the primary metric, guardrails,
//! bands, minimum sample and sequential settings, checked on load.

use super::*;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Srm {
    pub p_min: f64,
    pub variant_share: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Minimum {
    pub accounts_per_arm: u64,
    pub decisions_per_arm: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Sequential {
    pub tau_relative: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Higher,
    Lower,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Inference {
    Sequential,
    Fixed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Test {
    Welch,
    MannWhitney,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Primary {
    pub metric: String,
    pub direction: Direction,
    #[serde(default)]
    pub test: Option<Test>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Guardrail {
    pub metric: String,
    pub direction: Direction,
    #[serde(default)]
    pub margin: Option<f64>,
    #[serde(default)]
    pub margin_relative: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Band {
    pub metric: String,
    pub relative_low: f64,
    pub relative_high: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub alpha: f64,
    pub srm: Srm,
    pub minimum: Minimum,
    pub exact_below_expected: f64,
    pub inference: Inference,
    pub sequential: Sequential,
    pub primary: Vec<Primary>,
    pub equivalence_relative: f64,
    pub guardrails: Vec<Guardrail>,
    pub trust_block_band: Band,
}

impl Config {
    /// Every problem with the configuration: unknown metrics, a guardrail without exactly one
    /// margin, values out of range.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let names = self
            .primary
            .iter()
            .map(|m| &m.metric)
            .chain(self.guardrails.iter().map(|g| &g.metric))
            .chain(std::iter::once(&self.trust_block_band.metric));
        for n in names {
            if metric(n).is_none() {
                p.push(format!(
                    "unknown metric `{n}` (known: {})",
                    METRICS
                        .iter()
                        .map(|m| m.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        for g in &self.guardrails {
            if g.margin.is_some() == g.margin_relative.is_some() {
                p.push(format!(
                    "guardrail `{}` needs exactly one of margin, margin_relative",
                    g.metric
                ));
            }
        }
        if !(self.alpha > 0.0 && self.alpha < 0.5) {
            p.push(format!("alpha {} is not in (0, 0.5)", self.alpha));
        }
        if !(self.srm.variant_share > 0.0 && self.srm.variant_share < 1.0) {
            p.push("srm.variant_share must be in (0, 1)".into());
        }
        if self.sequential.tau_relative <= 0.0 {
            p.push("sequential.tau_relative must be positive".into());
        }
        p
    }
}
