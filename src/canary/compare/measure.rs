//! One metric's statistics for both arms: account-level values, CUPED adjustment, intervals
//! and the fixed-horizon and always-valid tests.

use super::*;

fn arm_value(
    def: &MetricDef,
    accts: &[&Account],
    confidence: f64,
) -> (ArmValue, Option<f64>, Vec<f64>) {
    let num: Vec<f64> = accts.iter().map(|a| (def.num)(&a.exp)).collect();
    let den: Vec<f64> = accts.iter().map(|a| (def.den)(&a.exp)).collect();
    let (sn, sd) = (num.iter().sum::<f64>(), den.iter().sum::<f64>());
    let mut v = ArmValue {
        value: None,
        low: None,
        high: None,
        numerator: sn,
        denominator: sd,
        accounts: accts.len(),
    };
    if def.measure == Measure::Continuous {
        let vals: Vec<f64> = num
            .iter()
            .zip(&den)
            .filter(|(_, d)| **d > 0.0)
            .map(|(n, d)| n / d)
            .collect();
        let m = Moments::of(&vals);
        if m.n >= 2.0 {
            let q = stats::z_crit(confidence);
            let se = (m.var / m.n).sqrt();
            v.value = Some(m.mean);
            v.low = Some(m.mean - q * se);
            v.high = Some(m.mean + q * se);
            return (v, Some(se * se), vals);
        }
        return (v, None, vals);
    }
    if sd <= 0.0 || accts.is_empty() {
        return (v, None, Vec::new());
    }
    let r = stats::ratio(&num, &den);
    v.value = Some(r.value);
    match def.measure {
        Measure::Ratio => {
            let h = stats::z_crit(confidence) * r.var.max(0.0).sqrt();
            v.low = Some(r.value - h);
            v.high = Some(r.value + h);
        }
        _ => {
            // Wilson with the effective sample size whose binomial variance matches the
            // cluster-robust one.
            let n_eff = if r.var > 0.0 {
                (r.value * (1.0 - r.value) / r.var).min(sd)
            } else {
                sd
            };
            let (lo, hi) = stats::wilson(r.value * n_eff, n_eff, confidence);
            v.low = Some(lo);
            v.high = Some(hi);
        }
    }
    (v, Some(r.var), Vec::new())
}

/// The pre-period covariates CUPED regresses on: the metric's own pre-period value and the
/// pre-period reply rate (the funnel's most frequent engagement outcome, which carries an
/// account's responsiveness with far less noise than a rare outcome's own history).
pub(super) fn covariates(def: &'static MetricDef) -> Vec<&'static MetricDef> {
    let mut v = vec![def];
    if let Some(reply) = metric("reply_rate")
        && reply.name != def.name
        && def.measure == Measure::Proportion
    {
        v.push(reply);
    }
    v
}

/// Solve the k×k system a·x = b (k ≤ 3) by Gaussian elimination with partial pivoting; None
/// when singular.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let k = b.len();
    for c in 0..k {
        let piv = (c..k).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))?;
        if a[piv][c].abs() < 1e-300 {
            return None;
        }
        a.swap(c, piv);
        b.swap(c, piv);
        for r in c + 1..k {
            let f = a[r][c] / a[c][c];
            for j in c..k {
                a[r][j] -= f * a[c][j];
            }
            b[r] -= f * b[c];
        }
    }
    let mut x = vec![0.0; k];
    for c in (0..k).rev() {
        let s: f64 = (c + 1..k).map(|j| a[c][j] * x[j]).sum();
        x[c] = (b[c] - s) / a[c][c];
    }
    Some(x)
}

/// CUPED on a ratio metric (Deng et al., 2013): regress each arm's linearised values on the
/// accounts' pre-period values of [`covariates`] — each linearised the same way around its
/// pooled pre-period ratio; an account without pre-period decisions has 0 — with θ from the
/// pooled within-arm covariances, and subtract θ·(x̄_variant − x̄_control) from the difference.
/// Pre-period behaviour does not depend on the arm, so the estimate stays unbiased.
pub(super) fn cuped_delta(
    def: &'static MetricDef,
    arms: [&[&Account]; 2],
    unadjusted_var: f64,
) -> Option<Cuped> {
    let mut lin: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let mut r = [0.0; 2];
    for g in 0..2 {
        let num: Vec<f64> = arms[g].iter().map(|a| (def.num)(&a.exp)).collect();
        let den: Vec<f64> = arms[g].iter().map(|a| (def.den)(&a.exp)).collect();
        let (rg, l) = stats::linearise(&num, &den);
        r[g] = rg;
        lin[g] = l;
    }
    let all: Vec<&Account> = arms.iter().flat_map(|a| a.iter().copied()).collect();
    // x[g][c][i]: covariate c of account i in arm g.
    let mut x: [Vec<Vec<f64>>; 2] = [Vec::new(), Vec::new()];
    for cov in covariates(def) {
        let (pn, pd) = all.iter().fold((0.0, 0.0), |(n, d), a| {
            (n + (cov.num)(&a.pre), d + (cov.den)(&a.pre))
        });
        if pd <= 0.0 {
            continue;
        }
        let (r_pre, mean_pre) = (pn / pd, pd / all.len() as f64);
        for g in 0..2 {
            x[g].push(
                arms[g]
                    .iter()
                    .map(|a| ((cov.num)(&a.pre) - r_pre * (cov.den)(&a.pre)) / mean_pre)
                    .collect(),
            );
        }
    }
    let k = x[0].len();
    if k == 0 {
        return None;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    // Pooled within-arm (co)variances.
    let (mut sxx, mut sxy) = (vec![vec![0.0; k]; k], vec![0.0; k]);
    for g in 0..2 {
        let ml = mean(&lin[g]);
        let mx: Vec<f64> = x[g].iter().map(|c| mean(c)).collect();
        for i in 0..lin[g].len() {
            for a in 0..k {
                let da = x[g][a][i] - mx[a];
                sxy[a] += da * (lin[g][i] - ml);
                for b in 0..k {
                    sxx[a][b] += da * (x[g][b][i] - mx[b]);
                }
            }
        }
    }
    let theta = solve(sxx, sxy)?;
    let mut var = 0.0;
    let mut shift = 0.0;
    for g in 0..2 {
        let adj: Vec<f64> = (0..lin[g].len())
            .map(|i| lin[g][i] - (0..k).map(|c| theta[c] * x[g][c][i]).sum::<f64>())
            .collect();
        var += Moments::of(&adj).var / adj.len() as f64;
        let sign = if g == 1 { 1.0 } else { -1.0 };
        shift += sign * (0..k).map(|c| theta[c] * mean(&x[g][c])).sum::<f64>();
    }
    Some(Cuped {
        theta: theta[0],
        variance_reduction: if unadjusted_var > 0.0 {
            1.0 - var / unadjusted_var
        } else {
            0.0
        },
        delta: r[1] - r[0] - shift,
        se: var.sqrt(),
    })
}

fn role_of<'a>(
    cfg: &'a Config,
    name: &str,
) -> (
    &'static str,
    Option<Direction>,
    Option<&'a Primary>,
    Option<&'a Guardrail>,
) {
    if let Some(p) = cfg.primary.iter().find(|p| p.metric == name) {
        return ("primary", Some(p.direction), Some(p), None);
    }
    if let Some(g) = cfg.guardrails.iter().find(|g| g.metric == name) {
        return ("guardrail", Some(g.direction), None, Some(g));
    }
    if cfg.trust_block_band.metric == name {
        return ("band", Some(Direction::Lower), None, None);
    }
    ("reported", None, None, None)
}

/// One metric's statistics (its verdict is set by [`compare`]).
pub(super) fn measure(
    def: &'static MetricDef,
    arms: [&[&Account]; 2],
    cfg: &Config,
    cuped: bool,
) -> MetricResult {
    let confidence = 1.0 - cfg.alpha;
    let (role, direction, primary, _) = role_of(cfg, def.name);
    let (c, cvar, cvals) = arm_value(def, arms[0], confidence);
    let (v, vvar, vvals) = arm_value(def, arms[1], confidence);
    let mut r = MetricResult {
        metric: def.name,
        measure: def.measure,
        role,
        direction,
        control: c,
        variant: v,
        delta: None,
        relative_delta: None,
        se: None,
        test: "",
        p_fixed: None,
        ci_fixed: None,
        p_sequential: None,
        confidence_sequence: None,
        p_holm: None,
        cuped: None,
        verdict: "inconclusive".into(),
        note: None,
    };
    let (Some(cv), Some(vv), Some(cvar), Some(vvar)) = (c.value, v.value, cvar, vvar) else {
        r.verdict = "no_information".into();
        r.note = Some("an arm has no denominator for this metric".into());
        return r;
    };
    let mut delta = vv - cv;
    let mut var = cvar + vvar;
    let q = stats::z_crit(confidence);
    match def.measure {
        Measure::Continuous => {
            let test = primary.and_then(|p| p.test).unwrap_or(Test::Welch);
            let w = stats::welch(&Moments::of(&cvals), &Moments::of(&vvals), confidence);
            match test {
                Test::Welch => {
                    r.test = "Welch t (account means)";
                    r.p_fixed = Some(w.p);
                    r.ci_fixed = Some((w.low, w.high));
                }
                Test::MannWhitney => {
                    r.test = "Mann–Whitney U (account means, tie-corrected)";
                    let m = stats::mann_whitney(&vvals, &cvals);
                    r.p_fixed = m.p;
                    r.ci_fixed = Some((w.low, w.high));
                    if m.p.is_none() {
                        r.delta = Some(delta);
                        r.verdict = "no_information".into();
                        r.note = Some("every value ties: the rank test has no information".into());
                        return r;
                    }
                }
            }
        }
        Measure::Rare | Measure::Proportion => {
            let pooled = (c.numerator + v.numerator) / (c.denominator + v.denominator);
            let min_expected = [c.denominator, v.denominator]
                .iter()
                .flat_map(|n| [pooled * n, (1.0 - pooled) * n])
                .fold(f64::INFINITY, f64::min);
            let exact = min_expected < cfg.exact_below_expected;
            if exact && def.measure == Measure::Rare {
                r.test = "exact test of two Poisson rates";
                r.p_fixed = Some(stats::poisson_rates_exact(
                    c.numerator as u64,
                    c.denominator,
                    v.numerator as u64,
                    v.denominator,
                ));
            } else if exact {
                r.test = "Fisher exact";
                r.p_fixed = Some(stats::fisher_exact(
                    c.numerator as u64,
                    (c.denominator - c.numerator) as u64,
                    v.numerator as u64,
                    (v.denominator - v.numerator) as u64,
                ));
            } else {
                r.test = "z (delta-method, by account)";
                r.p_fixed = Some(stats::z_test(delta, var.sqrt()).p);
            }
            r.ci_fixed = Some((delta - q * var.sqrt(), delta + q * var.sqrt()));
            if cuped
                && def.measure == Measure::Proportion
                && let Some(cu) = cuped_delta(def, arms, var)
            {
                delta = cu.delta;
                var = cu.se * cu.se;
                if !exact {
                    r.p_fixed = Some(stats::z_test(delta, cu.se).p);
                }
                r.ci_fixed = Some((delta - q * cu.se, delta + q * cu.se));
                r.cuped = Some(cu);
            }
        }
        Measure::Ratio => {
            r.test = "z (delta-method ratio, by account)";
            r.p_fixed = Some(stats::z_test(delta, var.sqrt()).p);
            r.ci_fixed = Some((delta - q * var.sqrt(), delta + q * var.sqrt()));
        }
    }
    r.delta = Some(delta);
    r.relative_delta = (cv != 0.0).then(|| delta / cv);
    if !(var > 0.0 && var.is_finite()) {
        // Both arms constant (no meeting at all, say): nothing to test.
        r.p_fixed = None;
        r.ci_fixed = None;
        r.verdict = "no_information".into();
        r.note = Some("no variation in either arm".into());
        return r;
    }
    r.se = Some(var.sqrt());
    // The mixture's scale: relative to the control value, or to the pooled value when the
    // control arm's is zero.
    let pooled = (c.numerator + v.numerator) / (c.denominator + v.denominator);
    let scale = if cv != 0.0 {
        cv.abs()
    } else {
        pooled.abs().max(vv.abs())
    };
    let tau2 = (cfg.sequential.tau_relative * scale).powi(2);
    if tau2 > 0.0 {
        r.p_sequential = Some(stats::msprt_p(delta, var, tau2));
        r.confidence_sequence = Some(stats::confidence_sequence(delta, var, tau2, cfg.alpha));
    }
    r.p_fixed = r.p_fixed.filter(|p| p.is_finite());
    r.ci_fixed = r.ci_fixed.filter(|(a, b)| a.is_finite() && b.is_finite());
    r
}
