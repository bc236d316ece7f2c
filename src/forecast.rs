//! The consumption forecast core (SPEC §9, TOOL-004): one account × SKU's daily usage →
//! trend pattern, growth, seasonality and the predicted overage date with a [low, high]
//! interval. Pure arithmetic, no I/O; the pipeline calls it through the
//! `consumption_forecast` SQL function (`engine::udf`).
//!
//! The seeds fix the rules (refuse under 30 days, seasonality only with 2 full cycles,
//! intervals that widen on short histories) and leave the method open; this is the method,
//! every threshold a field of [`Params`] set from the pipeline config:
//!
//! - **Series.** `z_t = ln(1 + units_t)` on the dense daily grid from the first observed day
//!   to the day before as_of (days without a row are missing, not zero). The noise of metered
//!   usage is multiplicative, so every model is judged on its residuals in log space.
//! - **Seasonal.** For each period P from `season_min_days` to min(`season_max_days`, n ÷ 2)
//!   (so ≥ 2 full cycles): remove the trend with a centred moving average of width P (which
//!   cancels a period-P cycle and any smooth trend), then take the correlation of the residual
//!   with itself P days later. The series is seasonal when the best correlation reaches
//!   `season_min_corr` and 4 ÷ √pairs (so a short series cannot pass on noise), and the cycle's
//!   amplitude (standard deviation of the phase means) reaches `season_min_amplitude`.
//!   Periods are judged on at least a full cycle of pairs (so in practice ~3 cycles of
//!   history); the best one wins unless a fraction of it (P ÷ k, ± 5 %) correlates within 90 %
//!   of it — then that fundamental does, so a multiple of the cycle never does.
//! - **Cliff.** The split that best separates two constant levels (each side ≥
//!   `cliff_min_segment_days`); a cliff when the levels differ by ≥ `cliff_min_ratio` ×, the
//!   step model leaves ≤ `cliff_max_rss_share` of the best smooth model's residual, and the step
//!   is abrupt: the 3 days either side differ by at least half the step. The forecast continues
//!   from the level after the latest such split.
//! - **Trend.** Log-linear (exponential) and linear least squares; growth per 30 days from the
//!   log-linear slope. Flat when |growth| < `flat_max_growth_30d` or the slope is within 2
//!   standard errors of 0; otherwise whichever of linear / exponential leaves less residual.
//! - **Interval.** Each future day's log forecast ± `interval_z` × σ × √(1 + 1/n + (t − t̄)²/Sxx)
//!   (σ the residual standard deviation), widened by √(`full_history_days` ÷ n) when the history
//!   is shorter. The low date is when the upper band's month-to-date total first exceeds the
//!   monthly commit, the high date when the lower band's does (null: not within the horizon).
//!
//! Its length (over 700 lines) is about 730 lines of one method (series, seasonality, trend,
//! bands, dates) and its worked-example tests.

use serde::Deserialize;

/// Thresholds, from the pipeline config (`forecast_*` vars).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub min_history_days: usize,
    pub horizon_days: usize,
    pub season_min_days: usize,
    pub season_max_days: usize,
    pub season_min_corr: f64,
    pub season_min_amplitude: f64,
    pub cliff_min_ratio: f64,
    pub cliff_max_rss_share: f64,
    pub cliff_min_segment_days: usize,
    pub flat_max_growth_30d: f64,
    pub interval_z: f64,
    pub full_history_days: usize,
}

/// The longest horizon the seed allows (TOOL-004: default 60, max 180 days).
pub const MAX_HORIZON_DAYS: usize = 180;

impl Default for Params {
    fn default() -> Self {
        Params {
            min_history_days: 30,
            horizon_days: 60,
            season_min_days: 7,
            season_max_days: 120,
            season_min_corr: 0.5,
            season_min_amplitude: 0.1,
            cliff_min_ratio: 1.5,
            cliff_max_rss_share: 0.5,
            cliff_min_segment_days: 7,
            flat_max_growth_30d: 0.01,
            interval_z: 1.96,
            full_history_days: 90,
        }
    }
}

impl Params {
    /// The parameters are usable: positive sizes, a horizon of at most 180 days.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.horizon_days == 0 || self.horizon_days > MAX_HORIZON_DAYS {
            return Err(format!(
                "forecast horizon {} days: must be 1..={MAX_HORIZON_DAYS}",
                self.horizon_days
            ));
        }
        if self.min_history_days < 2 || self.season_min_days < 2 || self.full_history_days == 0 {
            return Err("forecast history and season lengths must be at least 2 days".into());
        }
        if self.cliff_min_ratio <= 1.0 || self.interval_z <= 0.0 {
            return Err("forecast cliff ratio must exceed 1 and interval z be positive".into());
        }
        Ok(())
    }
}

/// One account × SKU: daily units (day numbers as in [`crate::calendar::Day`]), the build's
/// as_of day (exclusive end of the history), and the current month's commit.
pub struct Input<'a> {
    pub days: &'a [i32],
    pub units: &'a [f64],
    pub as_of: i32,
    pub commit_units: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pattern {
    Linear,
    Exponential,
    Seasonal,
    Cliff,
    Flat,
}

impl Pattern {
    pub fn name(self) -> &'static str {
        match self {
            Pattern::Linear => "linear",
            Pattern::Exponential => "exponential",
            Pattern::Seasonal => "seasonal",
            Pattern::Cliff => "cliff",
            Pattern::Flat => "flat",
        }
    }
}

/// Where the month-to-date total stands against the commit over the horizon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outlook {
    /// Already past the commit in the current month.
    InOverage,
    /// Past the commit on a day within the horizon.
    Predicted,
    /// Not past the commit within the horizon.
    BeyondHorizon,
    /// No commit to run over.
    NoCommit,
}

impl Outlook {
    pub fn name(self) -> &'static str {
        match self {
            Outlook::InOverage => "in_overage",
            Outlook::Predicted => "predicted",
            Outlook::BeyondHorizon => "beyond_horizon",
            Outlook::NoCommit => "no_commit",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Forecast {
    /// Days from the first observed day to as_of.
    pub history_days: usize,
    /// Days with a row.
    pub observed_days: usize,
    /// Set when the core refuses; every other field is then empty.
    pub refusal: Option<String>,
    pub pattern: Option<Pattern>,
    /// Growth over 30 days as a fraction (0.1 = +10 %), from the log-linear trend.
    pub growth_rate_30d: Option<f64>,
    /// Standard deviation of the chosen model's residuals in log units.
    pub volatility: Option<f64>,
    pub seasonality_detected: bool,
    pub season_period_days: Option<usize>,
    /// The period's residual autocorrelation (reported even when below the bar).
    pub season_strength: Option<f64>,
    /// First day of the level after the latest cliff, and the level change as a fraction.
    pub cliff_day: Option<i32>,
    pub cliff_change: Option<f64>,
    /// Units forecast over the 30 days from as_of.
    pub next_30d_units: Option<f64>,
    pub month_to_date_units: Option<f64>,
    pub outlook: Option<Outlook>,
    pub overage_date: Option<i32>,
    pub overage_date_low: Option<i32>,
    pub overage_date_high: Option<i32>,
    /// The factor the interval was widened by for a short history (1 = not widened).
    pub interval_widening: Option<f64>,
    /// What the pattern means for the caller: real_expansion, one_time_spike,
    /// seasonal_recurrence, decline or steady.
    pub interpretation: Option<&'static str>,
}

impl Forecast {
    fn refused(history_days: usize, observed_days: usize, reason: String) -> Forecast {
        Forecast {
            history_days,
            observed_days,
            refusal: Some(reason),
            pattern: None,
            growth_rate_30d: None,
            volatility: None,
            seasonality_detected: false,
            season_period_days: None,
            season_strength: None,
            cliff_day: None,
            cliff_change: None,
            next_30d_units: None,
            month_to_date_units: None,
            outlook: None,
            overage_date: None,
            overage_date_low: None,
            overage_date_high: None,
            interval_widening: None,
            interpretation: None,
        }
    }
}

/// A least-squares line `a + b·t`, with the mean and spread of the t it was fitted on.
#[derive(Debug, Clone, Copy)]
struct Line {
    a: f64,
    b: f64,
    t_mean: f64,
    sxx: f64,
}

fn fit_line(ts: &[f64], ys: &[f64]) -> Line {
    let n = ts.len() as f64;
    let t_mean = ts.iter().sum::<f64>() / n;
    let y_mean = ys.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (t, y) in ts.iter().zip(ys) {
        sxy += (t - t_mean) * (y - y_mean);
        sxx += (t - t_mean) * (t - t_mean);
    }
    let b = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    Line {
        a: y_mean - b * t_mean,
        b,
        t_mean,
        sxx,
    }
}

impl Line {
    fn at(&self, t: f64) -> f64 {
        self.a + self.b * t
    }
}

fn log1p_pos(y: f64) -> f64 {
    y.max(0.0).ln_1p()
}

/// Running sums over the observed values of a dense series (NaN = missing), for moving means.
struct Prefix {
    sum: Vec<f64>,
    cnt: Vec<usize>,
}

impl Prefix {
    fn new(z: &[f64]) -> Prefix {
        let mut sum = vec![0.0; z.len() + 1];
        let mut cnt = vec![0usize; z.len() + 1];
        for (i, v) in z.iter().enumerate() {
            let ok = v.is_finite();
            sum[i + 1] = sum[i] + if ok { *v } else { 0.0 };
            cnt[i + 1] = cnt[i] + ok as usize;
        }
        Prefix { sum, cnt }
    }

    /// `z` less its centred moving mean of width `period` (window [i − period/2, + period)),
    /// NaN where the window leaves the series or holds fewer than half its days.
    fn detrend(&self, z: &[f64], period: usize, out: &mut [f64]) {
        let h = period / 2;
        for (i, r) in out.iter_mut().enumerate() {
            *r = f64::NAN;
            if i < h || i - h + period > z.len() || !z[i].is_finite() {
                continue;
            }
            let (lo, hi) = (i - h, i - h + period);
            let c = self.cnt[hi] - self.cnt[lo];
            if c * 2 >= period {
                *r = z[i] - (self.sum[hi] - self.sum[lo]) / c as f64;
            }
        }
    }
}

/// Mean of `resid` per phase (index mod `period`), zero-centred; phases never seen are 0.
fn phase_means(resid: &[f64], period: usize) -> Vec<f64> {
    let mut sum = vec![0.0; period];
    let mut cnt = vec![0usize; period];
    for (i, r) in resid.iter().enumerate() {
        if r.is_finite() {
            sum[i % period] += r;
            cnt[i % period] += 1;
        }
    }
    let seen = cnt.iter().filter(|c| **c > 0).count().max(1) as f64;
    let mut means: Vec<f64> = sum
        .iter()
        .zip(&cnt)
        .map(|(s, c)| if *c > 0 { s / *c as f64 } else { 0.0 })
        .collect();
    let m = means.iter().sum::<f64>() / seen;
    for (v, c) in means.iter_mut().zip(&cnt) {
        if *c > 0 {
            *v -= m;
        }
    }
    means
}

/// Pearson correlation of `x[i]` with `x[i + lag]` over the pairs where both are present:
/// (correlation, pairs), or None with fewer than 3 pairs or no variance.
fn lag_correlation(x: &[f64], lag: usize) -> Option<(f64, usize)> {
    let (mut sa, mut sb, mut saa, mut sbb, mut sab, mut m) = (0.0, 0.0, 0.0, 0.0, 0.0, 0usize);
    for i in 0..x.len().saturating_sub(lag) {
        let (a, b) = (x[i], x[i + lag]);
        if a.is_finite() && b.is_finite() {
            sa += a;
            sb += b;
            saa += a * a;
            sbb += b * b;
            sab += a * b;
            m += 1;
        }
    }
    if m < 3 {
        return None;
    }
    let mf = m as f64;
    let (va, vb) = (saa - sa * sa / mf, sbb - sb * sb / mf);
    if va <= 0.0 || vb <= 0.0 {
        return None;
    }
    Some(((sab - sa * sb / mf) / (va * vb).sqrt(), m))
}

/// A detected cycle: its period, residual autocorrelation at the period, the pairs it was
/// computed on, amplitude (standard deviation of the phase means) and the phase means.
struct Season {
    period: usize,
    corr: f64,
    pairs: usize,
    amplitude: f64,
    phase: Vec<f64>,
}

/// The best period of the dense log series `z` with at least 2 full cycles in it.
fn best_season(z: &[f64], p: &Params) -> Option<Season> {
    let n = z.len();
    let max_p = p.season_max_days.min(n / 2);
    if max_p < p.season_min_days {
        return None;
    }
    let prefix = Prefix::new(z);
    let mut resid = vec![f64::NAN; n];
    let mut scores: Vec<(usize, f64, usize)> = Vec::new();
    for period in p.season_min_days..=max_p {
        prefix.detrend(z, period, &mut resid);
        if let Some((corr, pairs)) = lag_correlation(&resid, period) {
            scores.push((period, corr, pairs));
        }
    }
    // The best period with a full cycle of pairs behind it (the moving mean costs half a
    // period at each end, so this asks for ~3 cycles of history) …
    let usable: Vec<(usize, f64, usize)> = scores
        .into_iter()
        .filter(|(p, _, pairs)| pairs >= p)
        .collect();
    let &(best_p, best, _) = usable
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))?;
    // … unless it is a multiple of a shorter cycle that correlates nearly as well: the
    // fundamental is the shortest best_p / k (± 5 %) within 90 % of the best.
    let fundamental = (2..=best_p / p.season_min_days.max(1)).rev().find_map(|k| {
        let target = best_p as f64 / k as f64;
        let tol = (target * 0.05).max(1.0);
        usable
            .iter()
            .filter(|c| (c.0 as f64 - target).abs() <= tol && c.1 >= 0.9 * best)
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            .copied()
    });
    let (period, corr, pairs) = fundamental.unwrap_or_else(|| {
        *usable
            .iter()
            .find(|c| c.0 == best_p)
            .expect("the best is usable")
    });
    prefix.detrend(z, period, &mut resid);
    let phase = phase_means(&resid, period);
    let amplitude = (phase.iter().map(|v| v * v).sum::<f64>() / period as f64).sqrt();
    Some(Season {
        period,
        corr,
        pairs,
        amplitude,
        phase,
    })
}

impl Season {
    /// The correlation clears the configured bar and 4 ÷ √pairs (noise on few pairs cannot
    /// pass), and the cycle is large enough to matter.
    fn passes(&self, p: &Params) -> bool {
        self.corr >= p.season_min_corr
            && self.corr >= 4.0 / (self.pairs as f64).sqrt()
            && self.amplitude >= p.season_min_amplitude
    }
}

/// The best two-level split of the observed points within `[from, n)`: (split index, level
/// before, level after, rss).
fn best_split(zs: &[f64], from: usize, min_seg: usize) -> Option<(usize, f64, f64, f64)> {
    let k = zs.len();
    if from >= k || k - from < 2 * min_seg {
        return None;
    }
    let (s, q) = (
        &zs[from..],
        zs[from..].iter().map(|v| v * v).collect::<Vec<_>>(),
    );
    let total: f64 = s.iter().sum();
    let total_q: f64 = q.iter().sum();
    let m = s.len();
    let (mut left, mut left_q) = (0.0, 0.0);
    let mut best: Option<(usize, f64, f64, f64)> = None;
    for j in 0..m {
        if j >= min_seg && m - j >= min_seg {
            let (nl, nr) = (j as f64, (m - j) as f64);
            let (ml, mr) = (left / nl, (total - left) / nr);
            let rss = (left_q - nl * ml * ml) + ((total_q - left_q) - nr * mr * mr);
            if best.is_none_or(|b| rss < b.3) {
                best = Some((from + j, ml, mr, rss));
            }
        }
        left += s[j];
        left_q += q[j];
    }
    best
}

/// Forecast one series. Never panics on any input: bad values (negative, NaN) are the
/// caller's to reject; here they count as missing.
pub fn forecast(input: &Input, p: &Params) -> Forecast {
    // Observed days before as_of, summed per day.
    let mut obs: Vec<(i32, f64)> = input
        .days
        .iter()
        .zip(input.units)
        .filter(|(d, u)| **d < input.as_of && u.is_finite() && **u >= 0.0)
        .map(|(d, u)| (*d, *u))
        .collect();
    obs.sort_by_key(|o| o.0);
    obs.dedup_by(|b, a| {
        if a.0 == b.0 {
            a.1 += b.1;
            true
        } else {
            false
        }
    });
    let first = obs.first().map(|o| o.0);
    let history_days = first.map_or(0, |f| (input.as_of - f) as usize);
    let observed = obs.len();
    if observed < p.min_history_days {
        return Forecast::refused(
            history_days,
            observed,
            format!(
                "{observed} days of usage history, fewer than the {} required",
                p.min_history_days
            ),
        );
    }
    let first = first.unwrap_or(input.as_of);
    let n = history_days;
    let mut z = vec![f64::NAN; n];
    for (d, u) in &obs {
        z[(d - first) as usize] = log1p_pos(*u);
    }
    let ts: Vec<f64> = (0..n)
        .filter(|i| z[*i].is_finite())
        .map(|i| i as f64)
        .collect();
    let zs: Vec<f64> = ts.iter().map(|t| z[*t as usize]).collect();
    let ys: Vec<f64> = ts.iter().map(|t| z[*t as usize].exp_m1()).collect();
    let k = zs.len() as f64;

    let rss = |pred: &dyn Fn(usize) -> f64| -> f64 {
        (0..zs.len()).map(|i| (zs[i] - pred(i)).powi(2)).sum()
    };
    let exp_line = fit_line(&ts, &zs);
    let lin_line = fit_line(&ts, &ys);
    let rss_exp = rss(&|i| exp_line.at(ts[i]));
    let rss_lin = rss(&|i| log1p_pos(lin_line.at(ts[i])));
    let growth = (30.0 * exp_line.b).exp() - 1.0;
    let slope_se = if exp_line.sxx > 0.0 && k > 2.0 {
        (rss_exp / (k - 2.0) / exp_line.sxx).sqrt()
    } else {
        f64::INFINITY
    };

    // Seasonality first: a cycle would otherwise read as noise around a trend.
    let season = best_season(&z, p);
    let season_strength = season.as_ref().map(|s| s.corr);
    // The trend of the deseasonalised series.
    let seasonal: Option<(usize, Vec<f64>, Line)> = season.filter(|s| s.passes(p)).map(|s| {
        let de: Vec<f64> = ts
            .iter()
            .zip(&zs)
            .map(|(t, v)| v - s.phase[*t as usize % s.period])
            .collect();
        (s.period, s.phase, fit_line(&ts, &de))
    });

    // Cliffs: the best split, then any later one, each judged against the smooth models.
    let smooth_rss = rss_exp.min(rss_lin);
    let abrupt = |j: usize, step: f64| -> bool {
        let w = 3usize;
        if j < w || j + w > zs.len() {
            return false;
        }
        let before = zs[j - w..j].iter().sum::<f64>() / w as f64;
        let after = zs[j..j + w].iter().sum::<f64>() / w as f64;
        (after - before).abs() >= 0.5 * step.abs()
    };
    let mut cliff: Option<(usize, f64, f64)> = None;
    if seasonal.is_none() {
        let mut from = 0;
        while let Some((j, before, after, split_rss)) =
            best_split(&zs, from, p.cliff_min_segment_days)
        {
            let step = after - before;
            // The first split is judged on the whole series, later ones on what follows the
            // previous level change.
            let reference = if from == 0 {
                smooth_rss
            } else {
                let tail_ts = &ts[from..];
                let tail_zs = &zs[from..];
                let l = fit_line(tail_ts, tail_zs);
                tail_ts
                    .iter()
                    .zip(tail_zs)
                    .map(|(t, v)| (v - l.at(*t)).powi(2))
                    .sum()
            };
            if step.abs() >= p.cliff_min_ratio.ln()
                && split_rss <= p.cliff_max_rss_share * reference
                && abrupt(j, step)
            {
                cliff = Some((j, after, step));
                from = j;
            } else {
                break;
            }
        }
    }

    let widening = (p.full_history_days as f64 / n as f64).sqrt().max(1.0);
    // The chosen model: log forecast at dense index t and its standard error factor.
    let (pattern, sigma, model): (Pattern, f64, Box<dyn Fn(f64) -> (f64, f64)>) =
        if let Some((period, phase, line)) = seasonal.clone() {
            let r: f64 = ts
                .iter()
                .zip(&zs)
                .map(|(t, v)| (v - line.at(*t) - phase[*t as usize % period]).powi(2))
                .sum();
            let sigma = (r / (k - 2.0 - period as f64).max(1.0)).sqrt();
            let kk = k;
            (
                Pattern::Seasonal,
                sigma,
                Box::new(move |t: f64| {
                    let se =
                        (1.0 + 1.0 / kk + (t - line.t_mean).powi(2) / line.sxx.max(1e-9)).sqrt();
                    (line.at(t) + phase[t as usize % period], se)
                }),
            )
        } else if let Some((j, level, _)) = cliff {
            let tail = &zs[j..];
            let m = tail.len() as f64;
            let r: f64 = tail.iter().map(|v| (v - level).powi(2)).sum();
            let sigma = (r / (m - 1.0).max(1.0)).sqrt();
            (
                Pattern::Cliff,
                sigma,
                Box::new(move |_t: f64| (level, (1.0 + 1.0 / m).sqrt())),
            )
        } else if growth.abs() < p.flat_max_growth_30d || exp_line.b.abs() < 2.0 * slope_se {
            let mean = zs.iter().sum::<f64>() / k;
            let r: f64 = zs.iter().map(|v| (v - mean).powi(2)).sum();
            let sigma = (r / (k - 1.0).max(1.0)).sqrt();
            (
                Pattern::Flat,
                sigma,
                Box::new(move |_t: f64| (mean, (1.0 + 1.0 / k).sqrt())),
            )
        } else if rss_exp <= rss_lin {
            let sigma = (rss_exp / (k - 2.0).max(1.0)).sqrt();
            let l = exp_line;
            (
                Pattern::Exponential,
                sigma,
                Box::new(move |t: f64| {
                    let se = (1.0 + 1.0 / k + (t - l.t_mean).powi(2) / l.sxx.max(1e-9)).sqrt();
                    (l.at(t), se)
                }),
            )
        } else {
            let sigma = (rss_lin / (k - 2.0).max(1.0)).sqrt();
            let l = lin_line;
            (
                Pattern::Linear,
                sigma,
                Box::new(move |t: f64| {
                    let se = (1.0 + 1.0 / k + (t - l.t_mean).powi(2) / l.sxx.max(1e-9)).sqrt();
                    (log1p_pos(l.at(t)), se)
                }),
            )
        };

    // Month to date: the observed units of as_of's month before as_of.
    let month_start = crate::calendar::Day(input.as_of).first_of_month().0;
    let mtd: f64 = obs
        .iter()
        .filter(|(d, _)| *d >= month_start)
        .map(|(_, u)| *u)
        .sum();
    // Daily (central, lower, upper) for the horizon, and the next 30 days' total.
    let horizon = p.horizon_days.max(30);
    let q = p.interval_z * sigma * widening;
    let daily: Vec<(f64, f64, f64)> = (0..horizon)
        .map(|h| {
            let t = (n + h) as f64;
            let (c, se) = model(t);
            (
                c.exp_m1().max(0.0),
                (c - q * se).exp_m1().max(0.0),
                (c + q * se).exp_m1().max(0.0),
            )
        })
        .collect();
    let next_30d: f64 = daily.iter().take(30).map(|d| d.0).sum();

    let crossing = |pick: fn(&(f64, f64, f64)) -> f64, commit: f64| -> Option<i32> {
        let mut cum = mtd;
        for (h, d) in daily.iter().take(p.horizon_days).enumerate() {
            let day = crate::calendar::Day(input.as_of + h as i32);
            if h > 0 && day.day_of_month() == 1 {
                cum = 0.0;
            }
            cum += pick(d);
            // Past the commit by more than rounding (a forecast of exactly the commit is not).
            if cum > commit * (1.0 + 1e-9) {
                return Some(day.0);
            }
        }
        None
    };
    let (outlook, date, low, high) = match input.commit_units.filter(|c| *c > 0.0) {
        None => (Outlook::NoCommit, None, None, None),
        Some(c) if mtd > c => (
            Outlook::InOverage,
            Some(input.as_of),
            Some(input.as_of),
            Some(input.as_of),
        ),
        Some(c) => {
            let date = crossing(|d| d.0, c);
            let low = crossing(|d| d.2, c);
            let high = crossing(|d| d.1, c);
            let outlook = if date.is_some() {
                Outlook::Predicted
            } else {
                Outlook::BeyondHorizon
            };
            (outlook, date, low, high)
        }
    };

    let interpretation = match pattern {
        Pattern::Seasonal => "seasonal_recurrence",
        Pattern::Cliff => {
            // A level that rose and then fell back (or fell after a rise) is a one-off spike.
            let (_, _, step) = cliff.unwrap_or((0, 0.0, 0.0));
            let peak_before = zs.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            if step < 0.0 && peak_before - zs[0] >= p.cliff_min_ratio.ln() {
                "one_time_spike"
            } else if step < 0.0 {
                "decline"
            } else {
                "real_expansion"
            }
        }
        Pattern::Flat => "steady",
        Pattern::Linear | Pattern::Exponential => {
            if growth > 0.0 {
                "real_expansion"
            } else {
                "decline"
            }
        }
    };

    Forecast {
        history_days,
        observed_days: observed,
        refusal: None,
        pattern: Some(pattern),
        growth_rate_30d: Some(growth),
        volatility: Some(sigma),
        seasonality_detected: pattern == Pattern::Seasonal,
        season_period_days: seasonal.as_ref().map(|s| s.0),
        season_strength,
        cliff_day: cliff.map(|(j, _, _)| first + ts[j] as i32),
        cliff_change: cliff.map(|(_, _, step)| step.exp() - 1.0),
        next_30d_units: Some(next_30d),
        month_to_date_units: Some(mtd),
        outlook: Some(outlook),
        overage_date: date,
        overage_date_low: low,
        overage_date_high: high,
        interval_widening: Some(widening),
        interpretation: Some(interpretation),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::Day;
    use crate::synth::rng::Rng;

    /// `days` days of `f(t)` ending the day before 2026-01-01, with ±`noise` multiplicative
    /// log-normal noise (seeded).
    fn series(days: usize, noise: f64, f: impl Fn(f64) -> f64) -> (Vec<i32>, Vec<f64>, i32) {
        let as_of = Day::from_ymd(2026, 1, 1).unwrap().0;
        let mut rng = Rng::stream(7, "forecast-test", days as u64, 0);
        let d: Vec<i32> = (0..days).map(|i| as_of - days as i32 + i as i32).collect();
        let u: Vec<f64> = (0..days)
            .map(|t| (f(t as f64) * rng.lognormal(0.0, noise)).round())
            .collect();
        (d, u, as_of)
    }

    fn run(s: &(Vec<i32>, Vec<f64>, i32), commit: Option<f64>) -> Forecast {
        forecast(
            &Input {
                days: &s.0,
                units: &s.1,
                as_of: s.2,
                commit_units: commit,
            },
            &Params::default(),
        )
    }

    #[test]
    fn refuses_under_30_days_of_history() {
        let f = run(&series(29, 0.05, |_| 100.0), Some(1000.0));
        assert_eq!(f.pattern, None);
        assert!(f.refusal.unwrap().contains("29 days"));
        let f = run(&series(30, 0.05, |_| 100.0), Some(1000.0));
        assert_eq!(f.refusal, None);
        assert_eq!(f.pattern, Some(Pattern::Flat));
    }

    #[test]
    fn recognises_linear_exponential_seasonal_cliff_and_flat_series() {
        let cases: [(&str, Pattern, Box<dyn Fn(f64) -> f64>); 5] = [
            ("linear", Pattern::Linear, Box::new(|t| 100.0 + 4.0 * t)),
            (
                "exponential",
                Pattern::Exponential,
                Box::new(|t| 50.0 * (0.02 * t).exp()),
            ),
            (
                "seasonal",
                Pattern::Seasonal,
                Box::new(|t| 100.0 * (1.0 + 0.4 * (2.0 * std::f64::consts::PI * t / 28.0).sin())),
            ),
            (
                "cliff",
                Pattern::Cliff,
                Box::new(|t| if t < 100.0 { 400.0 } else { 120.0 }),
            ),
            ("flat", Pattern::Flat, Box::new(|_| 250.0)),
        ];
        for (name, want, f) in cases {
            let fc = run(&series(150, 0.08, f), None);
            assert_eq!(fc.pattern, Some(want), "{name}: {fc:?}");
            assert_eq!(fc.seasonality_detected, want == Pattern::Seasonal, "{name}");
        }
    }

    #[test]
    fn the_forecast_follows_each_pattern() {
        // Seasonal: the 28-day cycle is found and its next peak forecast.
        let fc = run(
            &series(180, 0.05, |t| {
                100.0 * (1.0 + 0.4 * (2.0 * std::f64::consts::PI * t / 28.0).sin())
            }),
            None,
        );
        assert_eq!(fc.season_period_days, Some(28));
        assert_eq!(fc.interpretation, Some("seasonal_recurrence"));
        // 30 days of a cycle averaging 100 a day (+ the 2 days past a full cycle).
        let next = fc.next_30d_units.unwrap();
        assert!((2700.0..3300.0).contains(&next), "{next}");
        // Cliff: the level after the drop continues; the day and size of the drop are named.
        let s = series(120, 0.05, |t| if t < 90.0 { 400.0 } else { 100.0 });
        let fc = run(&s, None);
        assert_eq!(fc.cliff_day, Some(s.0[90]));
        assert!((fc.cliff_change.unwrap() + 0.75).abs() < 0.05, "{fc:?}");
        assert!((fc.next_30d_units.unwrap() / 3000.0 - 1.0).abs() < 0.05);
        assert_eq!(fc.interpretation, Some("decline"));
        // A spike that crashes is a one-time spike, forecast at its post-crash level.
        let s = series(150, 0.05, |t| match t {
            t if t < 60.0 => 100.0,
            t if t < 90.0 => 450.0,
            _ => 40.0,
        });
        let fc = run(&s, None);
        assert_eq!(fc.pattern, Some(Pattern::Cliff));
        assert_eq!(fc.cliff_day, Some(s.0[90]), "{fc:?}");
        assert_eq!(fc.interpretation, Some("one_time_spike"));
        assert!((fc.next_30d_units.unwrap() / 1200.0 - 1.0).abs() < 0.05);
        // Exponential growth of 2 % a day: +82 % over 30 days.
        let fc = run(&series(120, 0.03, |t| 50.0 * (0.02 * t).exp()), None);
        assert!((fc.growth_rate_30d.unwrap() - ((0.6f64).exp() - 1.0)).abs() < 0.03);
        assert_eq!(fc.interpretation, Some("real_expansion"));
    }

    #[test]
    fn never_seasonal_with_fewer_than_two_full_cycles() {
        let wave = |period: f64| {
            move |t: f64| 100.0 * (1.0 + 0.5 * (2.0 * std::f64::consts::PI * t / period).sin())
        };
        for (days, period) in [(150, 91.0), (50, 28.0), (40, 21.0), (181, 91.0)] {
            let fc = run(&series(days, 0.03, wave(period)), None);
            assert!(
                !fc.seasonality_detected,
                "{days} days of a {period}-day cycle: {fc:?}"
            );
            assert!(fc.season_period_days.is_none());
        }
        // With enough cycles the same waves are seasonal.
        for (days, period) in [(365, 91.0), (120, 28.0), (120, 21.0)] {
            let fc = run(&series(days, 0.03, wave(period)), None);
            assert_eq!(
                fc.season_period_days,
                Some(period as usize),
                "{days}/{period}"
            );
        }
        // Pure noise over many candidate periods is never seasonal.
        for seed_days in 30..60 {
            let fc = run(&series(seed_days * 4, 0.2, |_| 100.0), None);
            assert!(!fc.seasonality_detected, "{} days: {fc:?}", seed_days * 4);
        }
    }

    #[test]
    fn the_overage_date_and_its_interval() {
        // 100 a day against a monthly commit of 2,500: the 26th day crosses it.
        let s = series(120, 0.0, |_| 100.0);
        let fc = run(&s, Some(2500.0));
        assert_eq!(fc.outlook, Some(Outlook::Predicted));
        assert_eq!(fc.overage_date, Some(s.2 + 25));
        // No noise: the interval collapses onto the date.
        assert_eq!(fc.overage_date_low, fc.overage_date);
        assert_eq!(fc.overage_date_high, fc.overage_date);
        // With noise: low ≤ date ≤ high. (With much more noise the lower band never reaches
        // the commit within the horizon and high is null: "not within 60 days".)
        let fc = run(&series(120, 0.06, |_| 100.0), Some(2500.0));
        let (lo, d, hi) = (
            fc.overage_date_low.unwrap(),
            fc.overage_date.unwrap(),
            fc.overage_date_high.unwrap(),
        );
        assert!(lo <= d && d <= hi && lo < hi, "{lo} {d} {hi}");
        // A commit that is never reached within the horizon; no commit at all.
        let fc = run(&s, Some(1e9));
        assert_eq!(fc.outlook, Some(Outlook::BeyondHorizon));
        assert_eq!(fc.overage_date, None);
        assert_eq!(run(&s, None).outlook, Some(Outlook::NoCommit));
        // Already past the commit this month (as_of mid-month).
        let mut s = series(120, 0.0, |_| 100.0);
        s.2 -= 16; // as_of 2025-12-16: 15 days of December before it
        let fc = run(&s, Some(1000.0));
        assert_eq!(fc.month_to_date_units, Some(1500.0));
        assert_eq!(fc.outlook, Some(Outlook::InOverage));
        assert_eq!(fc.overage_date, Some(s.2));
    }

    #[test]
    fn intervals_widen_as_history_shortens() {
        let width = |days: usize| {
            let fc = run(&series(days, 0.15, |_| 100.0), Some(2500.0));
            assert_eq!(fc.pattern, Some(Pattern::Flat));
            (
                fc.overage_date_high.unwrap_or(i32::MAX) - fc.overage_date_low.unwrap(),
                fc.interval_widening.unwrap(),
            )
        };
        let (short, short_factor) = width(35);
        let (mid, mid_factor) = width(70);
        let (long, long_factor) = width(180);
        assert!(short_factor > mid_factor && mid_factor > 1.0 && long_factor == 1.0);
        assert!(
            short >= mid && mid >= long && short > long,
            "{short} {mid} {long}"
        );
    }

    #[test]
    fn missing_days_and_bad_values_are_not_zero_usage() {
        // Every other day missing, and NaN / negative values: still a flat 100.
        let (d, mut u, as_of) = series(120, 0.0, |_| 100.0);
        u[3] = f64::NAN;
        u[5] = -4.0;
        let keep: Vec<usize> = (0..d.len()).filter(|i| i % 2 == 0 || *i < 10).collect();
        let d: Vec<i32> = keep.iter().map(|i| d[*i]).collect();
        let u: Vec<f64> = keep.iter().map(|i| u[*i]).collect();
        let fc = run(&(d, u, as_of), None);
        assert_eq!(fc.pattern, Some(Pattern::Flat));
        assert!((fc.next_30d_units.unwrap() - 3000.0).abs() < 1.0);
        assert_eq!(fc.history_days, 120);
        assert_eq!(fc.observed_days, 63);
    }

    #[test]
    fn horizon_is_bounded() {
        let p = Params {
            horizon_days: 181,
            ..Params::default()
        };
        assert!(p.validate().is_err());
        assert!(Params::default().validate().is_ok());
    }
}
