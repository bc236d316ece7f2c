//! Comparing the arms: per-account tallies in, per-metric statistics and the verdict out.
//!
//! The account is the randomisation unit, so every rate is a ratio of sums over accounts with
//! a delta-method (cluster-robust) variance; Wilson intervals use the matching effective
//! sample size. Rare counts are tested exactly; continuous measures by Welch's t (or
//! Mann–Whitney) over account-level values. Each difference also gets an always-valid
//! p-value and confidence sequence (mSPRT), optionally on CUPED-adjusted values.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::stats::{self, Moments};

mod config;
mod measure;

pub use config::*;
use measure::*;

/// One account's decisions and outcomes in one period (a decision counts once per outcome
/// type).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub decisions: f64,
    pub reply: f64,
    pub positive_reply: f64,
    pub meeting: f64,
    pub trust_block: f64,
    pub human_rejected: f64,
    pub duplicate: f64,
    pub cooldown: f64,
    pub cost: f64,
    pub pipeline: f64,
}

/// An enrolled account: its arm's experiment-period counts and its pre-period counts (all on
/// the control model, before randomisation) for CUPED.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Account {
    pub variant: bool,
    pub exp: Counts,
    pub pre: Counts,
}

/// How a metric is measured and tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// outcomes ÷ decisions: z-test on the delta-method difference, Wilson intervals; Fisher
    /// when expected counts are small.
    Proportion,
    /// rare incidents per decision: the exact test of two Poisson rates when expected counts
    /// are small.
    Rare,
    /// a per-account mean: Welch's t (or Mann–Whitney U) over accounts.
    Continuous,
    /// a ratio of sums (spend ÷ meetings): delta-method interval.
    Ratio,
}

pub struct MetricDef {
    pub name: &'static str,
    pub measure: Measure,
    pub num: fn(&Counts) -> f64,
    pub den: fn(&Counts) -> f64,
}

/// Every measure of SPEC §12, per arm.
#[rustfmt::skip]
pub const METRICS: &[MetricDef] = &[
    MetricDef { name: "reply_rate", measure: Measure::Proportion, num: |c| c.reply, den: |c| c.decisions },
    MetricDef { name: "positive_reply_rate", measure: Measure::Proportion, num: |c| c.positive_reply, den: |c| c.decisions },
    MetricDef { name: "meeting_rate", measure: Measure::Proportion, num: |c| c.meeting, den: |c| c.decisions },
    MetricDef { name: "pipeline_per_decision", measure: Measure::Continuous, num: |c| c.pipeline, den: |c| c.decisions },
    MetricDef { name: "trust_block_rate", measure: Measure::Proportion, num: |c| c.trust_block, den: |c| c.decisions },
    MetricDef { name: "duplicate_incident_rate", measure: Measure::Rare, num: |c| c.duplicate, den: |c| c.decisions },
    MetricDef { name: "cooldown_violation_rate", measure: Measure::Rare, num: |c| c.cooldown, den: |c| c.decisions },
    MetricDef { name: "human_rejection_rate", measure: Measure::Proportion, num: |c| c.human_rejected, den: |c| c.trust_block },
    MetricDef { name: "spend_per_meeting", measure: Measure::Ratio, num: |c| c.cost, den: |c| c.meeting },
];

pub fn metric(name: &str) -> Option<&'static MetricDef> {
    METRICS.iter().find(|m| m.name == name)
}

// ---------------------------------------------------------------------------------------------
// Results

/// One arm's value of a metric with its interval.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct ArmValue {
    pub value: Option<f64>,
    pub low: Option<f64>,
    pub high: Option<f64>,
    pub numerator: f64,
    pub denominator: f64,
    pub accounts: usize,
}

/// CUPED's adjustment of a difference.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Cuped {
    /// θ of the metric's own pre-period value (further covariates have their own).
    pub theta: f64,
    /// 1 − Var(adjusted difference) ÷ Var(unadjusted difference).
    pub variance_reduction: f64,
    pub delta: f64,
    pub se: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MetricResult {
    pub metric: &'static str,
    pub measure: Measure,
    /// primary, guardrail, band, or reported.
    pub role: &'static str,
    pub direction: Option<Direction>,
    pub control: ArmValue,
    pub variant: ArmValue,
    /// variant − control (CUPED-adjusted when CUPED applied).
    pub delta: Option<f64>,
    pub relative_delta: Option<f64>,
    pub se: Option<f64>,
    /// The fixed-horizon test and its two-sided p-value and interval of the difference.
    pub test: &'static str,
    pub p_fixed: Option<f64>,
    pub ci_fixed: Option<(f64, f64)>,
    /// Always-valid p-value and confidence sequence of the difference (mSPRT).
    pub p_sequential: Option<f64>,
    pub confidence_sequence: Option<(f64, f64)>,
    /// Holm-adjusted p-value among the primaries (of the inference in force).
    pub p_holm: Option<f64>,
    pub cuped: Option<Cuped>,
    /// better, worse, equivalent, inconclusive (primary); non_inferior, worse, not_shown
    /// (guardrail); in_band, above_band, below_band, inconclusive (band); no_information.
    pub verdict: String,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SrmCheck {
    pub control_accounts: u64,
    pub variant_accounts: u64,
    pub expected_variant_share: f64,
    pub chi_square: f64,
    pub p: f64,
    pub passed: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Comparison {
    pub srm: SrmCheck,
    pub decisions: [f64; 2],
    pub metrics: Vec<MetricResult>,
    pub inference: Inference,
    pub cuped: bool,
    /// promote, keep_testing, rollback, insufficient_data, or invalid (SRM).
    pub verdict: String,
    pub reasons: Vec<String>,
}

/// The interval the verdict is judged on.
fn interval(r: &MetricResult, inf: Inference) -> Option<(f64, f64)> {
    match inf {
        Inference::Sequential => r.confidence_sequence,
        Inference::Fixed => r.ci_fixed,
    }
}

fn p_of(r: &MetricResult, inf: Inference) -> Option<f64> {
    match inf {
        Inference::Sequential => r.p_sequential,
        Inference::Fixed => r.p_fixed,
    }
}

/// Earlier looks at the same experiment: per metric the smallest always-valid p-value and the
/// intersection of the confidence sequences so far (both stay valid at every look, so the
/// running minimum and the running intersection are too).
pub type History = std::collections::BTreeMap<String, (f64, f64, f64)>;

/// Compare the arms of the enrolled accounts and apply the decision rule in its order:
/// sample-ratio check → minimum sample → safety (guardrails, trust-block band) → business.
pub fn compare(accounts: &[Account], cfg: &Config, cuped: bool) -> Comparison {
    compare_after(accounts, cfg, cuped, &History::new())
}

/// [`compare`], carrying the always-valid figures of earlier looks forward.
pub fn compare_after(
    accounts: &[Account],
    cfg: &Config,
    cuped: bool,
    history: &History,
) -> Comparison {
    let arms: [Vec<&Account>; 2] = [
        accounts.iter().filter(|a| !a.variant).collect(),
        accounts.iter().filter(|a| a.variant).collect(),
    ];
    let counts = [arms[0].len() as u64, arms[1].len() as u64];
    let share = cfg.srm.variant_share;
    let (chi, _, p) = stats::chi_square_gof(&counts, &[1.0 - share, share]);
    let srm = SrmCheck {
        control_accounts: counts[0],
        variant_accounts: counts[1],
        expected_variant_share: share,
        chi_square: chi,
        p,
        passed: p >= cfg.srm.p_min,
    };
    let decisions = [
        arms[0].iter().map(|a| a.exp.decisions).sum::<f64>(),
        arms[1].iter().map(|a| a.exp.decisions).sum::<f64>(),
    ];
    let inf = cfg.inference;
    // Each metric on its own task; collected in METRICS order.
    let mut metrics: Vec<MetricResult> = METRICS
        .par_iter()
        .map(|d| measure(d, [&arms[0], &arms[1]], cfg, cuped))
        .collect();

    for m in metrics.iter_mut() {
        if let (Some(&(p, lo, hi)), Some(mp), Some((mlo, mhi))) =
            (history.get(m.metric), m.p_sequential, m.confidence_sequence)
        {
            m.p_sequential = Some(mp.min(p));
            m.confidence_sequence = Some((mlo.max(lo), mhi.min(hi)));
        }
    }

    // Holm across the primaries, on the p-values of the inference in force.
    let prim: Vec<usize> = (0..metrics.len())
        .filter(|&i| metrics[i].role == "primary" && p_of(&metrics[i], inf).is_some())
        .collect();
    let adj = stats::holm(
        &prim
            .iter()
            .map(|&i| p_of(&metrics[i], inf).unwrap())
            .collect::<Vec<_>>(),
    );
    for (k, &i) in prim.iter().enumerate() {
        metrics[i].p_holm = Some(adj[k]);
    }

    // Per-metric verdicts.
    let good = |d: Direction, x: f64| match d {
        Direction::Higher => x > 0.0,
        Direction::Lower => x < 0.0,
    };
    for m in metrics.iter_mut() {
        if m.verdict == "no_information" {
            continue;
        }
        let (Some(delta), Some((lo, hi)), Some(dir)) = (m.delta, interval(m, inf), m.direction)
        else {
            m.verdict = "reported".into();
            continue;
        };
        let cv = m.control.value.unwrap_or(0.0).abs();
        m.verdict = match m.role {
            "primary" => {
                let sig = m.p_holm.is_some_and(|p| p < cfg.alpha) && (lo > 0.0 || hi < 0.0);
                let eq = cfg.equivalence_relative * cv;
                if sig && good(dir, delta) {
                    "better"
                } else if sig {
                    "worse"
                } else if lo >= -eq && hi <= eq {
                    "equivalent"
                } else {
                    "inconclusive"
                }
            }
            "guardrail" => {
                let g = cfg
                    .guardrails
                    .iter()
                    .find(|g| g.metric == m.metric)
                    .expect("role");
                let margin = g
                    .margin
                    .unwrap_or_else(|| g.margin_relative.unwrap_or(0.0) * cv);
                // Worse-direction bound of the difference, signed so that positive is worse.
                let (worse_lo, worse_hi) = match dir {
                    Direction::Lower => (lo, hi),
                    Direction::Higher => (-hi, -lo),
                };
                // Inferior: worse by more than the margin across the whole interval (and, for
                // an exactly tested count, significant by the exact test too).
                let exact = m.test.starts_with("exact") || m.test.starts_with("Fisher");
                let inferior =
                    worse_lo > margin && (!exact || m.p_fixed.is_some_and(|p| p < cfg.alpha));
                if inferior {
                    "worse"
                } else if worse_hi <= margin {
                    "non_inferior"
                } else {
                    "not_shown"
                }
            }
            "band" => {
                let b = &cfg.trust_block_band;
                let (low, high) = (b.relative_low * cv, b.relative_high * cv);
                if lo > high {
                    "above_band"
                } else if hi < low {
                    "below_band"
                } else if lo >= low && hi <= high {
                    "in_band"
                } else {
                    "inconclusive"
                }
            }
            _ => "reported",
        }
        .into();
    }

    // The decision rule, in order.
    let mut reasons = Vec::new();
    let by = |role: &str, verdict: &str| -> Vec<&MetricResult> {
        metrics
            .iter()
            .filter(|m| m.role == role && m.verdict == verdict)
            .collect()
    };
    let list = |ms: &[&MetricResult]| {
        ms.iter()
            .map(|m| {
                format!(
                    "{} ({} → {}, Δ {})",
                    m.metric,
                    fmt(m.control.value),
                    fmt(m.variant.value),
                    fmt(m.delta)
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let verdict = if !srm.passed {
        reasons.push(format!(
            "sample-ratio mismatch: {} control and {} variant accounts against a {:.0} % variant design (chi-square p = {:.2e} < {}); the randomisation is broken, no verdict",
            counts[0], counts[1], share * 100.0, p, cfg.srm.p_min
        ));
        "invalid"
    } else if counts.iter().any(|&n| n < cfg.minimum.accounts_per_arm)
        || decisions
            .iter()
            .any(|&d| d < cfg.minimum.decisions_per_arm as f64)
    {
        reasons.push(format!(
            "below the minimum sample per arm ({} accounts, {} decisions): control {} accounts / {} decisions, variant {} / {}",
            cfg.minimum.accounts_per_arm, cfg.minimum.decisions_per_arm, counts[0], decisions[0], counts[1], decisions[1]
        ));
        "insufficient_data"
    } else {
        let g_worse = by("guardrail", "worse");
        let p_worse = by("primary", "worse");
        let band_out: Vec<&MetricResult> = metrics
            .iter()
            .filter(|m| {
                m.role == "band" && (m.verdict == "above_band" || m.verdict == "below_band")
            })
            .collect();
        let g_open: Vec<&MetricResult> = metrics
            .iter()
            .filter(|m| {
                m.role == "guardrail" && m.verdict != "non_inferior" && m.verdict != "worse"
            })
            .collect();
        let p_better = by("primary", "better");
        let primaries = metrics.iter().filter(|m| m.role == "primary").count();
        let p_equiv = by("primary", "equivalent");
        if !g_worse.is_empty() {
            reasons.push(format!("safety regression: {}", list(&g_worse)));
            "rollback"
        } else if !p_worse.is_empty() {
            reasons.push(format!("business regression: {}", list(&p_worse)));
            "rollback"
        } else if !band_out.is_empty() {
            reasons.push(format!(
                "trust-block rate outside its band [{:+.0} %, {:+.0} %] of control: {}{}",
                cfg.trust_block_band.relative_low * 100.0,
                cfg.trust_block_band.relative_high * 100.0,
                list(&band_out),
                if p_better.is_empty() {
                    String::new()
                } else {
                    format!("; business improves ({})", list(&p_better))
                }
            ));
            "keep_testing"
        } else if !g_open.is_empty() {
            reasons.push(format!(
                "guardrails not yet shown non-inferior: {}",
                list(&g_open)
            ));
            "keep_testing"
        } else if !p_better.is_empty() {
            reasons.push(format!(
                "better on {} with no safety regression",
                list(&p_better)
            ));
            "promote"
        } else if primaries > 0 && p_equiv.len() == primaries {
            reasons.push(format!(
                "safely equivalent: every primary within ±{:.0} % of control",
                cfg.equivalence_relative * 100.0
            ));
            "promote"
        } else {
            reasons.push("no primary metric shown better or equivalent yet".into());
            "keep_testing"
        }
    };
    Comparison {
        srm,
        decisions,
        metrics,
        inference: inf,
        cuped,
        verdict: verdict.into(),
        reasons,
    }
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| {
        if v.abs() >= 100.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.4}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuped_by_hand() {
        // One decision per account and period; pipeline per decision. Pre-period x: control
        // (1, 3), variant (2, 4); experiment y = 2x in control, 2x + 5 in variant. The naive
        // difference 11 − 4 = 7 carries the variant's higher pre-period values. Linearised:
        // y − R per arm = (−2, 2) in both; x − 2.5 = control (−1.5, 0.5), variant (−0.5, 1.5).
        // Pooled within-arm: Sxy = 4 + 4, Sxx = 2 + 2 → θ = 2. Adjusted values are constant
        // (control 1, 1; variant −1, −1): no variance left. Shift θ·(0.5 − (−0.5)) = 2, so
        // the CUPED difference is 7 − 2 = 5, the true effect.
        let account = |variant: bool, x: f64, y: f64| Account {
            variant,
            exp: Counts {
                decisions: 1.0,
                pipeline: y,
                ..Default::default()
            },
            pre: Counts {
                decisions: 1.0,
                pipeline: x,
                ..Default::default()
            },
        };
        let control = [account(false, 1.0, 2.0), account(false, 3.0, 6.0)];
        let variant = [account(true, 2.0, 9.0), account(true, 4.0, 13.0)];
        let c: Vec<&Account> = control.iter().collect();
        let v: Vec<&Account> = variant.iter().collect();
        let def = metric("pipeline_per_decision").unwrap();
        let cu = cuped_delta(def, [&c, &v], 1.0).unwrap();
        assert!((cu.theta - 2.0).abs() < 1e-12, "{cu:?}");
        assert!((cu.delta - 5.0).abs() < 1e-12, "{cu:?}");
        assert!(cu.se.abs() < 1e-12 && (cu.variance_reduction - 1.0).abs() < 1e-12);
    }
}
