//! Canary traffic simulated straight from the synthetic corpus' experiment model
//! (`synth::canary`: the same arm assignment, account responsiveness and decision funnel, with
//! the same true effects), without generating the other tables — for the studies that need
//! hundreds of replications: false-verdict rates, power, peeking, CUPED.

use super::compare::{Account, Counts};
use crate::calendar::{MICROS_PER_DAY, MICROS_PER_MINUTE};
use crate::synth::canary::{arm_of, funnel, responsiveness};
use crate::synth::params::Resolved;
use crate::synth::rng::Rng;

/// Decisions per account per week: prospects and customers, as in the corpus.
pub const WEEKLY_DECISIONS: [f64; 2] = [0.8, 0.5];

fn add(
    c: &mut Counts,
    outcomes: &[(i64, &str, Option<i128>)],
    cost: f64,
    observed: impl Fn(i64) -> bool,
) {
    c.decisions += 1.0;
    c.cost += cost;
    for &(delay, kind, pipeline) in outcomes {
        if !observed(delay) {
            continue;
        }
        match kind {
            "reply" => c.reply += 1.0,
            "positive_reply" => c.positive_reply += 1.0,
            "meeting_booked" => c.meeting += 1.0,
            "trust_block" => c.trust_block += 1.0,
            "human_rejected" => c.human_rejected += 1.0,
            "duplicate_incident" => c.duplicate += 1.0,
            "cooldown_violation" => c.cooldown += 1.0,
            "opportunity_created" => c.pipeline += pipeline.unwrap_or(0) as f64 / 1e6,
            _ => {}
        }
    }
}

/// The enrolled accounts of one simulated experiment of `days` days (and a pre-period of the
/// same length), as seen at the end of each day in `looks` (1-based: 1 is after the first day).
/// Only outcomes that have happened by a look are counted at that look.
pub fn simulate(p: &Resolved, days: i64, looks: &[i64]) -> Vec<Vec<Account>> {
    let mut out: Vec<Vec<Account>> = vec![Vec::new(); looks.len()];
    for idx in 0..p.accounts {
        let Some(g) = arm_of(p, idx) else {
            continue;
        };
        let mut r = Rng::stream(p.seed, "canary-sim", idx, 0);
        let responsiveness = responsiveness(p, &mut r);
        let segment = r.range(0, 3) as usize;
        let weekly = WEEKLY_DECISIONS[usize::from(!r.chance(p.prospect_share))];
        let mut pre = Counts::default();
        let mut exp: Vec<(i64, Vec<(i64, &'static str, Option<i128>)>, f64)> = Vec::new();
        for period in [0, 1] {
            let mut day0 = 0;
            while day0 < days {
                for _ in 0..r.poisson(weekly) {
                    let at = day0 * MICROS_PER_DAY + r.range(0, 7 * 24 * 60) * MICROS_PER_MINUTE;
                    let arm = if period == 0 { 0 } else { g };
                    let outcomes = funnel(p, arm, responsiveness, segment, &mut r);
                    let cost = r.uniform(0.02, 0.40);
                    if at >= days * MICROS_PER_DAY {
                        continue;
                    }
                    if period == 0 {
                        add(&mut pre, &outcomes, cost, |_| true);
                    } else {
                        exp.push((at, outcomes, cost));
                    }
                }
                day0 += 7;
            }
        }
        for (k, &look) in looks.iter().enumerate() {
            let end = look * MICROS_PER_DAY;
            let mut c = Counts::default();
            for (at, outcomes, cost) in exp.iter().filter(|e| e.0 < end) {
                add(&mut c, outcomes, *cost, |delay| at + delay < end);
            }
            if c.decisions > 0.0 {
                out[k].push(Account {
                    variant: g == 1,
                    exp: c,
                    pre,
                });
            }
        }
    }
    out
}
