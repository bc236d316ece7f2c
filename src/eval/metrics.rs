//! Classification and calibration metrics, intervals and paired tests for `gtmos eval`
//! (SPEC §11). Pure functions over class indices; every ratio whose denominator is zero is
//! `None` ("undefined"), never silently 0.
//!
//! Conventions follow scikit-learn / scipy so that the stored reference values in
//! `tests/fixtures/eval_reference.json` can be compared number for number: F1 is
//! 2·TP / (2·TP + FP + FN); macro and support-weighted averages skip undefined classes
//! (`zero_division=np.nan`); micro F1 over all labels equals accuracy; quadratic-weighted kappa
//! uses weights (i − j)²; Brier score and calibration error are computed on the confidence in
//! the predicted label against whether it was right.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use rayon::prelude::*;
use serde::Serialize;
use statrs::distribution::{Beta, Binomial, ContinuousCDF, Discrete, DiscreteCDF};

/// A K × K confusion matrix: `m[truth][prediction]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Confusion {
    pub k: usize,
    pub m: Vec<Vec<u64>>,
}

impl Confusion {
    pub fn new(k: usize) -> Self {
        Confusion {
            k,
            m: vec![vec![0; k]; k],
        }
    }

    pub fn from_pairs(k: usize, truth: &[u32], pred: &[u32]) -> Self {
        let mut c = Confusion::new(k);
        for (&t, &p) in truth.iter().zip(pred) {
            c.m[t as usize][p as usize] += 1;
        }
        c
    }

    pub fn n(&self) -> u64 {
        self.m.iter().flatten().sum()
    }

    fn row(&self, i: usize) -> u64 {
        self.m[i].iter().sum()
    }

    fn col(&self, j: usize) -> u64 {
        self.m.iter().map(|r| r[j]).sum()
    }

    fn diag(&self) -> u64 {
        (0..self.k).map(|i| self.m[i][i]).sum()
    }
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b != 0.0).then(|| a / b)
}

/// Per-class precision, recall, F1 and support.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassScores {
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    pub f1: Option<f64>,
    pub support: u64,
}

pub fn per_class(c: &Confusion) -> Vec<ClassScores> {
    (0..c.k)
        .map(|i| {
            let tp = c.m[i][i] as f64;
            let (fp, fn_) = (c.col(i) as f64 - tp, c.row(i) as f64 - tp);
            ClassScores {
                precision: ratio(tp, tp + fp),
                recall: ratio(tp, tp + fn_),
                f1: ratio(2.0 * tp, 2.0 * tp + fp + fn_),
                support: c.row(i),
            }
        })
        .collect()
}

pub fn accuracy(c: &Confusion) -> Option<f64> {
    ratio(c.diag() as f64, c.n() as f64)
}

/// Mean F1 over the classes where it is defined.
pub fn macro_f1(classes: &[ClassScores]) -> Option<f64> {
    let f: Vec<f64> = classes.iter().filter_map(|c| c.f1).collect();
    ratio(f.iter().sum(), f.len() as f64)
}

/// F1 averaged with support weights, over the classes where it is defined.
pub fn weighted_f1(classes: &[ClassScores]) -> Option<f64> {
    let (mut s, mut w) = (0.0, 0.0);
    for c in classes {
        if let Some(f) = c.f1 {
            s += f * c.support as f64;
            w += c.support as f64;
        }
    }
    ratio(s, w)
}

/// Cohen's kappa, unweighted or with quadratic weights (i − j)² for ordinal labels.
pub fn kappa(c: &Confusion, quadratic: bool) -> Option<f64> {
    let n = c.n() as f64;
    if n == 0.0 {
        return None;
    }
    let w = |i: usize, j: usize| {
        if quadratic {
            ((i as f64) - (j as f64)).powi(2)
        } else {
            f64::from(u8::from(i != j))
        }
    };
    let (mut observed, mut expected) = (0.0, 0.0);
    for i in 0..c.k {
        for j in 0..c.k {
            observed += w(i, j) * c.m[i][j] as f64;
            expected += w(i, j) * c.row(i) as f64 * c.col(j) as f64 / n;
        }
    }
    ratio(observed, expected).map(|r| 1.0 - r)
}

/// One equal-width confidence bin of a reliability diagram.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Bin {
    pub low: f64,
    pub high: f64,
    pub n: u64,
    /// Mean confidence and share correct of its items (0 when empty).
    pub confidence: f64,
    pub accuracy: f64,
}

/// Brier score and calibration error accumulated item by item (no per-item storage, so a
/// bootstrap resample costs no allocation beyond its bins). Bins are equal-width:
/// bin = min(⌊confidence · bins⌋, bins − 1).
#[derive(Debug, Clone)]
pub struct Calibration {
    n: Vec<u64>,
    conf: Vec<f64>,
    right: Vec<u64>,
    squared_error: f64,
}

impl Calibration {
    pub fn new(bins: usize) -> Self {
        Calibration {
            n: vec![0; bins],
            conf: vec![0.0; bins],
            right: vec![0; bins],
            squared_error: 0.0,
        }
    }

    pub fn add(&mut self, p: f64, right: bool) {
        let bins = self.n.len();
        let b = ((p * bins as f64).floor() as usize).min(bins - 1);
        self.n[b] += 1;
        self.conf[b] += p;
        self.right[b] += u64::from(right);
        self.squared_error += (p - f64::from(u8::from(right))).powi(2);
    }

    fn total(&self) -> f64 {
        self.n.iter().sum::<u64>() as f64
    }

    /// Mean (confidence − correct)².
    pub fn brier(&self) -> Option<f64> {
        ratio(self.squared_error, self.total())
    }

    /// Expected and maximum calibration error; empty bins are skipped.
    pub fn errors(&self) -> (Option<f64>, Option<f64>) {
        let total = self.total();
        if total == 0.0 {
            return (None, None);
        }
        let (mut ece, mut mce) = (0.0, 0.0f64);
        for b in 0..self.n.len() {
            if self.n[b] > 0 {
                let n = self.n[b] as f64;
                let gap = (self.right[b] as f64 / n - self.conf[b] / n).abs();
                ece += n / total * gap;
                mce = mce.max(gap);
            }
        }
        (Some(ece), Some(mce))
    }

    /// The reliability diagram's bins: bounds, items, mean confidence and share correct.
    pub fn bins(&self) -> Vec<Bin> {
        let k = self.n.len() as f64;
        (0..self.n.len())
            .map(|b| {
                let n = self.n[b];
                let per = |x: f64| if n == 0 { 0.0 } else { x / n as f64 };
                Bin {
                    low: b as f64 / k,
                    high: (b + 1) as f64 / k,
                    n,
                    confidence: per(self.conf[b]),
                    accuracy: per(self.right[b] as f64),
                }
            })
            .collect()
    }

    pub fn of(conf: &[f64], correct: &[bool], bins: usize) -> Self {
        let mut c = Calibration::new(bins);
        for (&p, &y) in conf.iter().zip(correct) {
            c.add(p, y);
        }
        c
    }
}

/// Brier score of the confidence in the predicted label: mean (confidence − correct)².
pub fn brier(conf: &[f64], correct: &[bool]) -> Option<f64> {
    Calibration::of(conf, correct, 1).brier()
}

/// McNemar's test, mid-p version (Fagerland, Lydersen & Laake 2013), on the discordant pairs:
/// `b` = baseline right and candidate wrong, `c` = baseline wrong and candidate right.
pub fn mcnemar_mid_p(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let x = b.min(c);
    let dist = Binomial::new(0.5, n).expect("p = 0.5 is a valid binomial");
    (2.0 * (dist.cdf(x) - 0.5 * dist.pmf(x))).min(1.0)
}

/// One-sided upper Clopper–Pearson bound on a failure rate with `x` failures in `n`.
pub fn clopper_pearson_upper(x: u64, n: u64, confidence: f64) -> f64 {
    if n == 0 || x >= n {
        return 1.0;
    }
    Beta::new((x + 1) as f64, (n - x) as f64)
        .expect("positive shapes")
        .inverse_cdf(confidence)
}

/// The smallest number of trials with zero failures whose upper bound proves a failure rate
/// of at most `rate`: n ≥ ln(1 − confidence) / ln(1 − rate). None when `rate` is 0 (a rate of
/// exactly zero can never be proven by sampling).
pub fn n_to_prove(rate: f64, confidence: f64) -> Option<u64> {
    (rate > 0.0 && rate < 1.0).then(|| ((1.0 - confidence).ln() / (1.0 - rate).ln()).ceil() as u64)
}

/// Linear-interpolation quantile (numpy's default) of sorted values.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let h = (sorted.len() - 1) as f64 * q;
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    Some(sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo]))
}

/// A percentile interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

/// Percentile intervals of several statistics from `resamples` bootstrap resamples of `n`
/// items drawn with replacement. `stat` fills one value per statistic from the resample's
/// item indices (None = undefined in that resample, left out). The resamples are seeded
/// (ChaCha8, one stream per resample) and so the intervals do not depend on thread count.
pub fn bootstrap<F>(
    n: usize,
    resamples: usize,
    seed: u64,
    confidence: f64,
    stats: usize,
    stat: F,
) -> Vec<Option<Interval>>
where
    F: Fn(&[u32], &mut [Option<f64>]) + Sync,
{
    if n == 0 {
        return vec![None; stats];
    }
    let draws: Vec<Vec<Option<f64>>> = (0..resamples)
        .into_par_iter()
        .map_init(
            || vec![0u32; n],
            |idx, r| {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                rng.set_stream(r as u64);
                for i in idx.iter_mut() {
                    // Lemire's nearly divisionless bounded draw (unbiased).
                    *i = bounded(&mut rng, n as u32);
                }
                let mut out = vec![None; stats];
                stat(idx, &mut out);
                out
            },
        )
        .collect();
    let alpha = 1.0 - confidence;
    (0..stats)
        .map(|s| {
            let mut v: Vec<f64> = draws.iter().filter_map(|d| d[s]).collect();
            v.sort_by(f64::total_cmp);
            Some(Interval {
                low: quantile(&v, alpha / 2.0)?,
                high: quantile(&v, 1.0 - alpha / 2.0)?,
            })
        })
        .collect()
}

fn bounded(rng: &mut ChaCha8Rng, n: u32) -> u32 {
    let mut m = u64::from(rng.next_u32()) * u64::from(n);
    if (m as u32) < n {
        let t = n.wrapping_neg() % n;
        while (m as u32) < t {
            m = u64::from(rng.next_u32()) * u64::from(n);
        }
    }
    (m >> 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) {
        let a = a.expect("defined");
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn worked_binary_example() {
        // truth/pred over 10 items: TP=4 (class 1 right), TN=3, FP=1, FN=2.
        let truth = [1, 1, 1, 1, 1, 1, 0, 0, 0, 0];
        let pred = [1, 1, 1, 1, 0, 0, 0, 0, 0, 1];
        let c = Confusion::from_pairs(2, &truth, &pred);
        close(accuracy(&c), 0.7);
        let k = per_class(&c);
        // class 1: P = 4/5, R = 4/6, F1 = 8/(8+1+2) = 8/11; class 0: P = 3/5, R = 3/4, F1 = 6/9.
        close(k[1].precision, 0.8);
        close(k[1].recall, 4.0 / 6.0);
        close(k[1].f1, 8.0 / 11.0);
        close(k[0].f1, 6.0 / 9.0);
        close(macro_f1(&k), (8.0 / 11.0 + 6.0 / 9.0) / 2.0);
        close(weighted_f1(&k), (6.0 * 8.0 / 11.0 + 4.0 * 6.0 / 9.0) / 10.0);
        // po = 0.7; pe = (6·5 + 4·5)/100 = 0.5; kappa = 0.2/0.5 = 0.4.
        close(kappa(&c, false), 0.4);
    }

    #[test]
    fn undefined_is_none_never_zero() {
        // Class 2 never predicted and never true; class 1 never predicted.
        let c = Confusion::from_pairs(3, &[0, 0, 1], &[0, 0, 0]);
        let k = per_class(&c);
        assert_eq!(k[1].precision, None);
        assert_eq!(k[1].recall, Some(0.0));
        assert_eq!(k[1].f1, Some(0.0));
        assert_eq!((k[2].precision, k[2].recall, k[2].f1), (None, None, None));
        // macro over classes 0 and 1 only: (0.8 + 0)/2.
        close(macro_f1(&k), 0.4);
        // Every item the same class on both sides: pe = 1, kappa undefined.
        assert_eq!(
            kappa(&Confusion::from_pairs(2, &[0, 0], &[0, 0]), false),
            None
        );
    }

    #[test]
    fn quadratic_kappa_by_hand() {
        // 3 ordinal classes; truth 0,1,2,2 pred 0,2,2,1.
        // O: (0,0)=1,(1,2)=1,(2,2)=1,(2,1)=1. rows 1,1,2; cols 1,1,2; n = 4.
        // Σw·O = 1 + 1 = 2. E_ij = r_i c_j / 4; Σw·E = Σ (i−j)² r_i c_j / 4
        //   = [r0(c1·1 + c2·4) + r1(c0·1 + c2·1) + r2(c0·4 + c1·1)] / 4 = [9 + 3 + 10] / 4 = 5.5.
        let c = Confusion::from_pairs(3, &[0, 1, 2, 2], &[0, 2, 2, 1]);
        close(kappa(&c, true), 1.0 - 2.0 / 5.5);
    }

    #[test]
    fn calibration_by_hand() {
        let conf = [0.95, 0.9, 0.65, 0.6, 0.2];
        let right = [true, false, true, true, false];
        // Brier: (0.05² + 0.9² + 0.35² + 0.4² + 0.2²)/5
        close(
            brier(&conf, &right),
            (0.0025 + 0.81 + 0.1225 + 0.16 + 0.04) / 5.0,
        );
        // bins: 9 → {0.95 ✓, 0.9 ✗}: acc 0.5, conf 0.925, gap 0.425; 6 → {0.65 ✓, 0.6 ✓}:
        // gap 0.375; 2 → {0.2 ✗}: gap 0.2. ECE = (2·0.425 + 2·0.375 + 0.2)/5 = 0.36.
        let bins = Calibration::of(&conf, &right, 10).bins();
        assert_eq!(bins.len(), 10);
        assert_eq!((bins[9].n, bins[9].accuracy), (2, 0.5));
        assert!((bins[9].confidence - 0.925).abs() < 1e-12 && bins[9].low == 0.9);
        assert_eq!((bins[6].n, bins[6].accuracy), (2, 1.0));
        let (ece, mce) = Calibration::of(&conf, &right, 10).errors();
        close(ece, 0.36);
        close(mce, 0.425);
    }

    #[test]
    fn mcnemar_and_clopper_pearson_by_hand() {
        // b = 1, c = 5: P(X ≤ 1) = 7/64, P(X = 1) = 6/64; mid-p = 2(7/64 − 3/64) = 0.125.
        assert!((mcnemar_mid_p(1, 5) - 0.125).abs() < 1e-12);
        assert_eq!(mcnemar_mid_p(0, 0), 1.0);
        // 0 failures in 50: 1 − 0.05^(1/50) = 0.05815…
        let u = clopper_pearson_upper(0, 50, 0.95);
        assert!((u - (1.0 - 0.05f64.powf(1.0 / 50.0))).abs() < 1e-9, "{u}");
        // Proving ≤ 2 % with no failures takes ⌈ln 0.05 / ln 0.98⌉ = 149 trials.
        assert_eq!(n_to_prove(0.02, 0.95), Some(149));
        assert_eq!(n_to_prove(0.0, 0.95), None);
    }

    #[test]
    fn bootstrap_is_seeded_and_about_as_wide_as_the_binomial_interval() {
        let n = 400;
        let right: Vec<bool> = (0..n).map(|i| i % 5 != 0).collect(); // accuracy 0.8
        let acc = |idx: &[u32], out: &mut [Option<f64>]| {
            out[0] =
                Some(idx.iter().filter(|&&i| right[i as usize]).count() as f64 / idx.len() as f64);
        };
        let a = bootstrap(n, 2000, 7, 0.95, 1, acc);
        let b = bootstrap(n, 2000, 7, 0.95, 1, acc);
        assert_eq!(a, b);
        let i = a[0].unwrap();
        // Normal approximation: ±1.96·√(0.8·0.2/400) = ±0.0392.
        assert!(i.low < 0.8 && i.high > 0.8);
        let half = (i.high - i.low) / 2.0;
        assert!((half - 0.0392).abs() < 0.006, "half-width {half}");
        assert_ne!(bootstrap(n, 2000, 8, 0.95, 1, acc), a);
    }
}
