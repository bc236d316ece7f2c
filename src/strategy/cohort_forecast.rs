//! TOOL-013, the cohort retention forecaster: each signup cohort's retention curve projected
//! forward with a confidence band, from the triangle of all cohorts' curves (cohorts × quarters
//! since signup), as an actuary develops a loss triangle (the chain-ladder method).
//!
//! **Method.** A cell is a cohort's retention `v(c, k)` (in %, e.g. NRR) `k` quarters after
//! signup, with the cohort's weight `w(c)` (its base revenue, or its accounts for logo
//! retention).
//! 1. The development factor from age `k` to `k + 1` is the weighted ratio over the cohorts
//!    observed at both ages: `f(k) = Σ w·v(c, k+1) ÷ Σ w·v(c, k)`. With `w` the base revenue,
//!    `w·v` is the cohort's revenue, so `f(k)` is the revenue-weighted quarter-on-quarter
//!    retention of every cohort that has made that step.
//! 2. An age fewer than `min_cohorts` cohorts have stepped through takes the **tail factor**:
//!    the geometric mean of the last `tail_ages` factors that have enough cohorts.
//! 3. A cohort's curve continues from its last observed value: `v̂(c, k+h) = v(c, k) · Π f`.
//! 4. **Band.** Each factor's spread is the weighted variance of the cohorts' log ratios around
//!    it, `σ²(k) = Σ w (ln(v(c,k+1)/v(c,k)) − ln f(k))² ÷ Σ w × n/(n−1)` (n ≥ 2 cohorts with
//!    both values positive); an age with fewer takes the mean σ² of the ages that have one.
//!    Steps are taken as independent, so the variance of `ln v̂` after h steps is the sum of
//!    their σ², and the band is `v̂ · exp(±z √V)` (`z` = 1.645: a 90 % band).
//!
//! **Assumptions.** A cohort ages as the cohorts before it did at the same age (no trend across
//! cohorts: a change of product, pricing or market is not in the factors until cohorts live
//! through it); log ratios are roughly normal and independent across ages; the tail continues
//! the latest ages. **Refusals**, each a row with the reason and no figure: a cohort with fewer
//! than `min_quarters` observed quarters (too little history to anchor), a curve with a gap or
//! not starting at quarter 1, and an age no factor can be found for (no tail either).

use std::collections::BTreeMap;

use serde::Deserialize;

/// One observed cell of the triangle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    /// The cohort (any integer key; gtmos passes the signup quarter's number).
    pub cohort: i32,
    /// Quarters since signup, from 1.
    pub k: i32,
    /// Retention in %.
    pub value: f64,
    /// The cohort's weight (its base revenue, or its accounts).
    pub weight: f64,
}

/// The forecaster's settings (a JSON object in SQL).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Quarters projected past each cohort's last observed one.
    pub horizon: i32,
    /// No projection past this age.
    pub max_quarters: i32,
    /// A cohort needs this many observed quarters to be projected.
    pub min_quarters: i32,
    /// A development factor needs this many cohorts, else the tail is used.
    pub min_cohorts: usize,
    /// Ages the tail factor averages.
    pub tail_ages: usize,
    /// The band's normal quantile.
    pub z: f64,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            horizon: 4,
            max_quarters: 12,
            min_quarters: 3,
            min_cohorts: 2,
            tail_ages: 4,
            z: 1.645,
        }
    }
}

impl Params {
    pub fn validate(&self) -> Result<(), String> {
        if self.horizon < 1 || self.max_quarters < 2 || self.min_quarters < 1 {
            return Err("horizon, max_quarters and min_quarters must be positive".into());
        }
        if self.min_cohorts < 1 || self.tail_ages < 1 || !(self.z > 0.0 && self.z.is_finite()) {
            return Err("min_cohorts, tail_ages and z must be positive".into());
        }
        Ok(())
    }
}

/// One output row: a projected cell with its band, or a cohort's refusal.
#[derive(Debug, Clone, PartialEq)]
pub struct Projection {
    pub cohort: i32,
    pub k: i32,
    pub value: Option<f64>,
    pub low: Option<f64>,
    pub high: Option<f64>,
    /// The development factor applied for the step into `k`, and whether it is the tail's.
    pub factor: Option<f64>,
    pub tail: bool,
    pub refusal: Option<String>,
}

/// A development factor and its log variance (None when too few cohorts to measure it).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Factor {
    f: f64,
    var: Option<f64>,
}

/// The development factors of every age that `min_cohorts` cohorts have stepped through.
fn factors(curves: &BTreeMap<i32, Vec<Cell>>, min_cohorts: usize) -> BTreeMap<i32, Factor> {
    let mut steps: BTreeMap<i32, Vec<(f64, f64, f64)>> = BTreeMap::new(); // k → (w, v_k, v_k+1)
    for cells in curves.values() {
        for w in cells.windows(2) {
            steps
                .entry(w[0].k)
                .or_default()
                .push((w[0].weight, w[0].value, w[1].value));
        }
    }
    let mut out = BTreeMap::new();
    for (k, s) in steps {
        let den: f64 = s.iter().map(|(w, a, _)| w * a).sum();
        if s.len() < min_cohorts || den <= 0.0 {
            continue;
        }
        let f = s.iter().map(|(w, _, b)| w * b).sum::<f64>() / den;
        let logs: Vec<(f64, f64)> = s
            .iter()
            .filter(|(_, a, b)| *a > 0.0 && *b > 0.0)
            .map(|(w, a, b)| (*w, (b / a).ln()))
            .collect();
        let var = (logs.len() >= 2 && f > 0.0).then(|| {
            let n = logs.len() as f64;
            let sw: f64 = logs.iter().map(|(w, _)| w).sum();
            let lf = f.ln();
            logs.iter().map(|(w, l)| w * (l - lf).powi(2)).sum::<f64>() / sw * n / (n - 1.0)
        });
        out.insert(k, Factor { f, var });
    }
    out
}

/// Project every cohort of the triangle (cells in any order).
pub fn forecast(cells: &[Cell], p: &Params) -> Vec<Projection> {
    let mut curves: BTreeMap<i32, Vec<Cell>> = BTreeMap::new();
    for c in cells
        .iter()
        .filter(|c| c.value.is_finite() && c.weight.is_finite())
    {
        curves.entry(c.cohort).or_default().push(*c);
    }
    for cells in curves.values_mut() {
        cells.sort_by_key(|c| c.k);
    }
    let refuse = |cohort: i32, k: i32, why: String| Projection {
        cohort,
        k,
        value: None,
        low: None,
        high: None,
        factor: None,
        tail: false,
        refusal: Some(why),
    };
    // Only well-formed curves (k = 1, 2, …) feed the factors.
    let (good, bad): (BTreeMap<i32, Vec<Cell>>, BTreeMap<i32, Vec<Cell>>) = curves
        .into_iter()
        .partition(|(_, cells)| cells.iter().enumerate().all(|(i, c)| c.k == i as i32 + 1));
    let fs = factors(&good, p.min_cohorts);
    let measured: Vec<f64> = fs.values().filter_map(|f| f.var).collect();
    let mean_var =
        (!measured.is_empty()).then(|| measured.iter().sum::<f64>() / measured.len() as f64);
    let tail_ages: Vec<&Factor> = fs.values().rev().take(p.tail_ages).collect();
    let tail = (!tail_ages.is_empty() && tail_ages.iter().all(|f| f.f > 0.0)).then(|| Factor {
        f: (tail_ages.iter().map(|f| f.f.ln()).sum::<f64>() / tail_ages.len() as f64).exp(),
        var: {
            let v: Vec<f64> = tail_ages.iter().filter_map(|f| f.var).collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        },
    });
    let mut out = Vec::new();
    for (cohort, cells) in &bad {
        let last = cells.last().map_or(1, |c| c.k);
        out.push(refuse(
            *cohort,
            last + 1,
            format!(
                "the curve must run from quarter 1 without gaps; it has quarters {}",
                cells
                    .iter()
                    .map(|c| c.k.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    for (cohort, cells) in &good {
        let last = cells.last().expect("a cohort has a cell");
        if last.k >= p.max_quarters {
            continue;
        }
        if cells.len() < p.min_quarters as usize {
            out.push(refuse(
                *cohort,
                last.k + 1,
                format!(
                    "too little history: {} observed quarter(s), the forecaster needs {}",
                    cells.len(),
                    p.min_quarters
                ),
            ));
            continue;
        }
        let (mut value, mut var) = (last.value, 0.0);
        let until = (last.k + p.horizon).min(p.max_quarters);
        for k in last.k + 1..=until {
            let (factor, is_tail) = match fs.get(&(k - 1)) {
                Some(f) => (*f, false),
                None => match tail {
                    Some(t) => (t, true),
                    None => {
                        out.push(refuse(
                            *cohort,
                            k,
                            format!(
                                "no development factor from quarter {} to {k}: fewer than {} cohorts have made that step, and no later age gives a tail",
                                k - 1,
                                p.min_cohorts
                            ),
                        ));
                        break;
                    }
                },
            };
            value *= factor.f;
            var += factor.var.or(mean_var).unwrap_or(0.0);
            let spread = (p.z * var.sqrt()).exp();
            out.push(Projection {
                cohort: *cohort,
                k,
                value: Some(value),
                low: Some(value / spread),
                high: Some(value * spread),
                factor: Some(factor.f),
                tail: is_tail,
                refusal: None,
            });
        }
    }
    out.sort_by_key(|p| (p.cohort, p.k));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(cohort: i32, k: i32, value: f64) -> Cell {
        Cell {
            cohort,
            k,
            value,
            weight: 10.0,
        }
    }

    fn close(a: Option<f64>, b: f64) {
        let a = a.expect("a value");
        assert!((a - b).abs() < 5e-4, "{a} vs {b}");
    }

    /// Three cohorts, equal weights: c1 100 → 90 → 81, c2 100 → 110, c3 100.
    fn triangle() -> Vec<Cell> {
        vec![
            cell(3, 1, 100.0),
            cell(1, 2, 90.0),
            cell(2, 2, 110.0),
            cell(1, 1, 100.0),
            cell(1, 3, 81.0),
            cell(2, 1, 100.0),
        ]
    }

    #[test]
    fn factors_and_bands_by_hand() {
        let p = Params {
            horizon: 2,
            max_quarters: 4,
            min_quarters: 2,
            min_cohorts: 1,
            tail_ages: 4,
            z: 1.645,
        };
        let out = forecast(&triangle(), &p);
        // f(1) = (10·90 + 10·110) ÷ (10·100 + 10·100) = 1.0; f(2) = 81 ÷ 90 = 0.9 (c1 alone).
        // σ²(1): log ratios ln 0.9 = −0.105361 and ln 1.1 = 0.095310 around ln 1 = 0, equal
        // weights, × 2/1: 0.011101 + 0.009084 = 0.020185. σ²(2): one cohort, so the mean of
        // the measured ones: 0.020185. The tail (age 3 → 4): geometric mean of 1.0 and 0.9 =
        // 0.948683, its σ² the mean of the measured: 0.020185.
        let v1 = 0.105361f64.powi(2) + 0.095310f64.powi(2);
        // c1 (last k = 3, 81): k = 4 by the tail: 81 × 0.948683 = 76.8433, V = σ²;
        // band ×÷ exp(1.645 √0.020185) = exp(0.233706) = 1.263279.
        let c1: Vec<&Projection> = out.iter().filter(|x| x.cohort == 1).collect();
        assert_eq!(c1.len(), 1, "max_quarters 4 stops it");
        assert_eq!((c1[0].k, c1[0].tail), (4, true));
        close(c1[0].value, 76.8433);
        close(c1[0].high, 76.8433 * 1.263279);
        close(c1[0].low, 76.8433 / 1.263279);
        // c2 (last k = 2, 110): k = 3 by f(2) = 0.9 → 99.0, V = σ²; k = 4 by the tail →
        // 93.9196, V = 2σ², band ×÷ exp(1.645 √0.040370) = exp(0.330510) = 1.391688.
        let c2: Vec<&Projection> = out.iter().filter(|x| x.cohort == 2).collect();
        assert_eq!(c2.len(), 2);
        close(c2[0].value, 99.0);
        assert!(!c2[0].tail && c2[0].factor == Some(81.0 / 90.0));
        close(c2[0].high, 99.0 * (1.645 * v1.sqrt()).exp());
        close(c2[1].value, 93.9196);
        close(c2[1].high, 93.9196 * 1.391688);
        // c3 has one quarter: refused, no figure.
        let c3: Vec<&Projection> = out.iter().filter(|x| x.cohort == 3).collect();
        assert_eq!(c3.len(), 1);
        assert!(c3[0].value.is_none());
        assert!(
            c3[0]
                .refusal
                .as_deref()
                .unwrap()
                .contains("too little history: 1 observed quarter(s), the forecaster needs 2")
        );
    }

    #[test]
    fn refusals_name_what_is_missing_and_the_order_of_cells_does_not_matter() {
        let strict = Params {
            min_cohorts: 2,
            min_quarters: 2,
            ..Params::default()
        };
        let mut cells = triangle();
        // f(1) has two cohorts; f(2) has one: the tail is f(1) = 1.0 alone.
        let out = forecast(&cells, &strict);
        let c2: Vec<&Projection> = out.iter().filter(|x| x.cohort == 2).collect();
        assert!(c2.iter().all(|x| x.tail && x.value == Some(110.0)));
        cells.reverse();
        assert_eq!(forecast(&cells, &strict), out);
        // With no factor at all (a single cohort and min_cohorts 2): refused, naming the step.
        let lone = forecast(&[cell(7, 1, 100.0), cell(7, 2, 95.0)], &strict);
        assert_eq!(lone.len(), 1);
        assert!(
            lone[0]
                .refusal
                .as_deref()
                .unwrap()
                .contains("no development factor from quarter 2 to 3")
        );
        // A gap in a curve: refused, and it does not feed the factors.
        let gap = forecast(&[cell(8, 1, 100.0), cell(8, 3, 90.0)], &Params::default());
        assert!(gap[0].refusal.as_deref().unwrap().contains("quarters 1, 3"));
    }
}
