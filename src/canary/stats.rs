//! The statistics of a canary comparison (SPEC §12), each a small function checked against
//! scipy (tests/fixtures/canary_reference.py) or a hand-worked example: the sample-ratio
//! check, Wilson intervals and two-proportion z-tests, exact tests for rare counts (Fisher,
//! the conditional binomial test of two Poisson rates), Welch's t, Mann–Whitney U with ties,
//! the delta method for ratio metrics, Holm's correction, the mixture sequential probability
//! ratio test (always-valid p-values and confidence sequences) and CUPED.

use serde::Serialize;
use statrs::distribution::{
    Binomial, ChiSquared, ContinuousCDF, Discrete, Hypergeometric, Normal, StudentsT,
};

fn normal() -> Normal {
    Normal::new(0.0, 1.0).expect("standard normal")
}

/// The two-sided critical value of the standard normal at `confidence`.
pub fn z_crit(confidence: f64) -> f64 {
    normal().inverse_cdf(1.0 - (1.0 - confidence) / 2.0)
}

/// Pearson's chi-square goodness-of-fit of observed counts against expected shares:
/// (statistic, degrees of freedom, p-value). The sample-ratio-mismatch check.
pub fn chi_square_gof(observed: &[u64], shares: &[f64]) -> (f64, f64, f64) {
    let n: u64 = observed.iter().sum();
    let total: f64 = shares.iter().sum();
    let stat: f64 = observed
        .iter()
        .zip(shares)
        .map(|(&o, &s)| {
            let e = n as f64 * s / total;
            (o as f64 - e).powi(2) / e
        })
        .sum();
    let df = (observed.len() - 1) as f64;
    let p = ChiSquared::new(df)
        .map(|d| 1.0 - d.cdf(stat))
        .unwrap_or(f64::NAN);
    (stat, df, p)
}

/// The Wilson score interval of a proportion x / n at `confidence`. `n` may be an effective
/// sample size (not an integer) when observations are clustered.
pub fn wilson(x: f64, n: f64, confidence: f64) -> (f64, f64) {
    if n <= 0.0 {
        return (0.0, 1.0);
    }
    let z = z_crit(confidence);
    let p = x / n;
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denom;
    let half = z / denom * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    ((center - half).max(0.0), (center + half).min(1.0))
}

/// A z statistic and its two-sided p-value.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct ZTest {
    pub z: f64,
    pub p: f64,
}

/// A z-test of an estimate against zero given its standard error.
pub fn z_test(estimate: f64, se: f64) -> ZTest {
    if se <= 0.0 || !se.is_finite() {
        return ZTest {
            z: f64::NAN,
            p: f64::NAN,
        };
    }
    let z = estimate / se;
    ZTest {
        z,
        p: (2.0 * (1.0 - normal().cdf(z.abs()))).min(1.0),
    }
}

/// The pooled two-proportion z-test of x2/n2 − x1/n1 (variant minus control).
pub fn two_proportion_z(x1: f64, n1: f64, x2: f64, n2: f64) -> ZTest {
    let pooled = (x1 + x2) / (n1 + n2);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    z_test(x2 / n2 - x1 / n1, se)
}

/// Sum of the probabilities no more likely than the observed one (scipy's two-sided rule, with
/// its relative tolerance of 1e-7 for ties).
fn two_sided_exact(support: impl Iterator<Item = f64>, observed: f64) -> f64 {
    let limit = observed * (1.0 + 1e-7);
    support.filter(|&p| p <= limit).sum::<f64>().min(1.0)
}

/// Fisher's exact test of the 2×2 table [[a, b], [c, d]]: the two-sided p-value.
pub fn fisher_exact(a: u64, b: u64, c: u64, d: u64) -> f64 {
    let (row1, row2, col1) = (a + b, c + d, a + c);
    let Ok(h) = Hypergeometric::new(row1 + row2, row1, col1) else {
        return 1.0;
    };
    let lo = col1.saturating_sub(row2);
    let hi = col1.min(row1);
    two_sided_exact((lo..=hi).map(|x| h.pmf(x)), h.pmf(a))
}

/// The exact two-sided binomial test of k successes in n trials against probability p.
pub fn binomial_test(k: u64, n: u64, p: f64) -> f64 {
    if n == 0 {
        return 1.0;
    }
    let b = Binomial::new(p, n).expect("0 ≤ p ≤ 1");
    two_sided_exact((0..=n).map(|y| b.pmf(y)), b.pmf(k))
}

/// The exact test of two Poisson rates — x1 events in exposure t1 against x2 in t2 —
/// conditional on the total: x2 | x1 + x2 ~ Binomial(x1 + x2, t2 / (t1 + t2)). For rare
/// incidents (duplicates, cooldown violations) where a z-test's normal approximation fails.
pub fn poisson_rates_exact(x1: u64, t1: f64, x2: u64, t2: f64) -> f64 {
    binomial_test(x2, x1 + x2, t2 / (t1 + t2))
}

/// Mean, sample variance and count of a sample.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Default)]
pub struct Moments {
    pub n: f64,
    pub mean: f64,
    pub var: f64,
}

impl Moments {
    pub fn of(xs: &[f64]) -> Moments {
        let n = xs.len() as f64;
        if xs.is_empty() {
            return Moments::default();
        }
        let mean = xs.iter().sum::<f64>() / n;
        let var = if xs.len() > 1 {
            xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        Moments { n, mean, var }
    }
}

/// Welch's unequal-variance t-test of b − a.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Welch {
    pub diff: f64,
    pub se: f64,
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    pub p: f64,
    pub low: f64,
    pub high: f64,
}

pub fn welch(a: &Moments, b: &Moments, confidence: f64) -> Welch {
    let (va, vb) = (a.var / a.n, b.var / b.n);
    let se = (va + vb).sqrt();
    let df = (va + vb).powi(2) / (va * va / (a.n - 1.0) + vb * vb / (b.n - 1.0));
    let diff = b.mean - a.mean;
    let t = diff / se;
    let (p, q) = match StudentsT::new(0.0, 1.0, df) {
        Ok(d) if se > 0.0 => (
            (2.0 * (1.0 - d.cdf(t.abs()))).min(1.0),
            d.inverse_cdf(1.0 - (1.0 - confidence) / 2.0),
        ),
        _ => (f64::NAN, f64::NAN),
    };
    Welch {
        diff,
        se,
        t,
        df,
        p,
        low: diff - q * se,
        high: diff + q * se,
    }
}

/// Mann–Whitney U of x against y: U of x, the tie-corrected normal approximation with
/// continuity correction (scipy's `method="asymptotic"`), two-sided. When every value ties
/// the test has no information: `p` is None, never a pass.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct MannWhitney {
    pub u: f64,
    pub z: Option<f64>,
    pub p: Option<f64>,
}

pub fn mann_whitney(x: &[f64], y: &[f64]) -> MannWhitney {
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    let mut all: Vec<(f64, bool)> = x
        .iter()
        .map(|&v| (v, true))
        .chain(y.iter().map(|&v| (v, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = all.len();
    let (mut r1, mut ties) = (0.0, 0.0);
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && all[j + 1].0 == all[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        let t = (j - i + 1) as f64;
        ties += t * t * t - t;
        r1 += all[i..=j].iter().filter(|v| v.1).count() as f64 * rank;
        i = j + 1;
    }
    let u1 = r1 - n1 * (n1 + 1.0) / 2.0;
    let nf = n as f64;
    let var = n1 * n2 / 12.0 * ((nf + 1.0) - ties / (nf * (nf - 1.0)));
    if n1 == 0.0 || n2 == 0.0 || var <= 0.0 {
        return MannWhitney {
            u: u1,
            z: None,
            p: None,
        };
    }
    let mu = n1 * n2 / 2.0;
    let u = u1.max(n1 * n2 - u1);
    let z = (u - mu - 0.5) / var.sqrt();
    MannWhitney {
        u: u1,
        z: Some(z),
        p: Some((2.0 * (1.0 - normal().cdf(z))).min(1.0)),
    }
}

/// A ratio of sums over clusters (accounts) and its delta-method variance:
/// R = Σnum / Σden, Var(R) ≈ s²(num − R·den) / (n · mean(den)²).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Ratio {
    pub value: f64,
    pub var: f64,
    pub clusters: f64,
}

pub fn ratio(num: &[f64], den: &[f64]) -> Ratio {
    let (r, lin) = linearise(num, den);
    let n = num.len() as f64;
    Ratio {
        value: r,
        var: Moments::of(&lin).var / n,
        clusters: n,
    }
}

/// The linearisation of a ratio of sums over clusters: R = Σnum / Σden and each cluster's
/// (num − R·den) / mean(den), whose sample variance ÷ n is the delta-method variance of R.
/// CUPED on a ratio metric adjusts these values (Deng et al., 2013).
pub fn linearise(num: &[f64], den: &[f64]) -> (f64, Vec<f64>) {
    let n = num.len() as f64;
    let my = den.iter().sum::<f64>() / n;
    let r = num.iter().sum::<f64>() / den.iter().sum::<f64>();
    (
        r,
        num.iter().zip(den).map(|(x, y)| (x - r * y) / my).collect(),
    )
}

/// Holm's step-down adjusted p-values (family-wise error control), in input order.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut out = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (k, &i) in order.iter().enumerate() {
        running = running.max(((m - k) as f64 * p[i]).min(1.0));
        out[i] = running;
    }
    out
}

/// The normal-mixture sequential probability ratio test (mSPRT; Johari, Pekelis & Walsh,
/// "Always valid inference", 2017) of an estimate θ̂ with variance v against θ = 0, mixing
/// over θ ~ N(0, τ²): Λ = √(v / (v + τ²)) · exp(θ̂² τ² / (2 v (v + τ²))). 1/Λ is a p-value that
/// stays valid however often it is looked at; the running minimum over looks is reported.
pub fn msprt_p(estimate: f64, var: f64, tau2: f64) -> f64 {
    if var <= 0.0 || !var.is_finite() {
        return 1.0;
    }
    let log_lambda =
        0.5 * (var / (var + tau2)).ln() + estimate * estimate * tau2 / (2.0 * var * (var + tau2));
    (-log_lambda).exp().min(1.0)
}

/// The confidence sequence matching [`msprt_p`]: every θ whose mSPRT would not reject at α,
/// θ̂ ± √(v (v + τ²) / τ² · (ln((v + τ²) / v) − 2 ln α)).
pub fn confidence_sequence(estimate: f64, var: f64, tau2: f64, alpha: f64) -> (f64, f64) {
    let half = (var * (var + tau2) / tau2 * (((var + tau2) / var).ln() - 2.0 * alpha.ln())).sqrt();
    (estimate - half, estimate + half)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holm_by_hand() {
        // p = (0.01, 0.04, 0.03, 0.005), m = 4. Sorted: 0.005·4 = 0.02, 0.01·3 = 0.03,
        // 0.03·2 = 0.06, 0.04·1 = 0.04 → running max 0.06.
        let adj = holm(&[0.01, 0.04, 0.03, 0.005]);
        let want = [0.03, 0.06, 0.06, 0.02];
        for (a, w) in adj.iter().zip(want) {
            assert!((a - w).abs() < 1e-12, "{adj:?}");
        }
    }

    #[test]
    fn ratio_by_hand() {
        // Costs (2, 4, 6) over meetings (1, 1, 2): R = 12 / 4 = 3. The residuals x − R·y are
        // (−1, 1, 0), sample variance 1; mean meetings 4/3. Var = 1 / (3 · 16/9) = 0.1875.
        let r = ratio(&[2.0, 4.0, 6.0], &[1.0, 1.0, 2.0]);
        assert_eq!(r.value, 3.0);
        assert!((r.var - 0.1875).abs() < 1e-15, "{}", r.var);
        // Every account at exactly R: no variance.
        let r = ratio(&[3.0, 3.0, 6.0], &[1.0, 1.0, 2.0]);
        assert!(r.var.abs() < 1e-15);
    }

    #[test]
    fn mann_whitney_with_no_information() {
        let m = mann_whitney(&[0.0; 5], &[0.0; 7]);
        assert_eq!(m.p, None);
        assert_eq!(m.u, 17.5);
    }

    #[test]
    fn msprt_by_hand() {
        // θ̂ = 0.1, v = 0.0025, τ² = 0.01: Λ = √(0.2) · exp(0.01·0.01 / (2·0.0025·0.0125))
        // = 0.4472136 · e^1.6 = 0.4472136 · 4.9530324 = 2.2150634 → p = 0.4514543.
        let p = msprt_p(0.1, 0.0025, 0.01);
        assert!((p - 0.4514543).abs() < 1e-7, "{p}");
        // The confidence sequence excludes 0 exactly when p < α.
        let (lo, _) = confidence_sequence(0.1, 0.0025, 0.01, 0.05);
        assert!(lo < 0.0);
        let (lo, _) = confidence_sequence(0.3, 0.0025, 0.01, 0.05);
        assert!(lo > 0.0 && msprt_p(0.3, 0.0025, 0.01) < 0.05);
    }
}
