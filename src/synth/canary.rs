//! Canary traffic: decisions GTM agents made about one account and the outcomes attached to
//! them. The last `weeks` weeks before as_of are an experiment randomised by account (control
//! vs variant model); the same number of weeks before that is a pre-period every account
//! spends on the control model, so CUPED has a pre-experiment rate per account.
//!
//! Each decision walks a funnel of steps, each with a baseline probability; the variant
//! multiplies a step's probability by (1 + its true effect). `oracle/canary.json` records the
//! effects and the expected per-decision rates per arm.

use std::fmt::Write as _;

use serde_json::json;

use super::catalog::*;
use super::crm::People;
use super::params::Resolved;
use super::plan::{AccountPlan, account_id};
use super::rng::Rng;
use super::summary::Summary;
use super::tables::Tables;
use crate::calendar::{Day, MICROS_PER_DAY, MICROS_PER_HOUR, MICROS_PER_MINUTE};

/// Baseline probability of each funnel step.
pub const BASELINE: [(&str, f64); 10] = [
    ("trust_block", 0.05),
    ("human_rejected", 0.40), // of trust-blocked decisions sent to human review
    ("duplicate_incident", 0.004),
    ("cooldown_violation", 0.003),
    ("bounce", 0.03),
    ("unsubscribe", 0.01),
    ("reply", 0.12),               // of delivered
    ("positive_reply", 0.40),      // of replies
    ("meeting_booked", 0.35),      // of positive replies
    ("opportunity_created", 0.50), // of meetings
];

fn base(step: &str) -> f64 {
    BASELINE
        .iter()
        .find(|(s, _)| *s == step)
        .map(|(_, p)| *p)
        .unwrap_or(0.0)
}

/// Probability of a step in an arm (0 control, 1 variant).
fn prob(p: &Resolved, arm: usize, step: &str) -> f64 {
    let b = base(step);
    if arm == 1 {
        (b * (1.0 + p.effect(step))).clamp(0.0, 1.0)
    } else {
        b
    }
}

/// One outcome of a decision: (delay after the decision in µs, outcome type, pipeline in
/// micro-dollars).
pub type Outcome = (i64, &'static str, Option<i128>);

/// Walk one decision through the funnel in arm `g` (0 control, 1 variant) for an account of
/// this responsiveness and segment: every outcome it will have, in draw order.
pub fn funnel(
    p: &Resolved,
    g: usize,
    responsiveness: f64,
    segment: usize,
    r: &mut Rng,
) -> Vec<Outcome> {
    let mut outcomes: Vec<Outcome> = Vec::new();
    let blocked = r.chance(prob(p, g, "trust_block"));
    let mut executed = true;
    if blocked {
        outcomes.push((1_000_000, "trust_block", None));
        let rejected = r.chance(prob(p, g, "human_rejected"));
        let review = r.between(30, 48 * 60) * MICROS_PER_MINUTE;
        outcomes.push((
            review,
            if rejected {
                "human_rejected"
            } else {
                "human_approved"
            },
            None,
        ));
        executed = !rejected;
    }
    if executed {
        if r.chance(prob(p, g, "duplicate_incident")) {
            outcomes.push((
                r.between(1, 120) * MICROS_PER_MINUTE,
                "duplicate_incident",
                None,
            ));
        }
        if r.chance(prob(p, g, "cooldown_violation")) {
            outcomes.push((
                r.between(1, 120) * MICROS_PER_MINUTE,
                "cooldown_violation",
                None,
            ));
        }
        if r.chance(prob(p, g, "bounce")) {
            outcomes.push((r.between(1, 30) * MICROS_PER_MINUTE, "bounce", None));
        } else {
            if r.chance(prob(p, g, "unsubscribe")) {
                outcomes.push((r.between(1, 72) * MICROS_PER_HOUR, "unsubscribe", None));
            }
            if r.chance((prob(p, g, "reply") * responsiveness).min(0.95)) {
                let t_reply = r.between(1, 72) * MICROS_PER_HOUR;
                outcomes.push((t_reply, "reply", None));
                if r.chance(prob(p, g, "positive_reply")) {
                    outcomes.push((t_reply + MICROS_PER_MINUTE, "positive_reply", None));
                    if r.chance(prob(p, g, "meeting_booked")) {
                        let t_meet = t_reply + r.between(2, 96) * MICROS_PER_HOUR;
                        outcomes.push((t_meet, "meeting_booked", None));
                        if r.chance(prob(p, g, "opportunity_created")) {
                            let (lo, hi) =
                                [(8_000, 40_000), (40_000, 200_000), (150_000, 900_000)][segment];
                            let cents = r.between(lo / 100, hi / 100) as i128 * 10_000;
                            outcomes.push((
                                t_meet + r.between(1, 14) * MICROS_PER_DAY,
                                "opportunity_created",
                                Some(cents),
                            ));
                        }
                    }
                }
            }
        }
    }
    outcomes
}

pub fn experiment_window(p: &Resolved) -> (Day, Day, Day) {
    let exp_start = p.as_of.plus(-(7 * p.canary.weeks as i32));
    let pre_start = exp_start.plus(-(7 * p.canary.weeks as i32));
    (pre_start, exp_start, p.as_of)
}

/// The account's arm, or None when it is not enrolled.
pub fn arm(p: &Resolved, a: &AccountPlan) -> Option<usize> {
    arm_of(p, a.idx as u64)
}

/// An account's responsiveness: log-normal with mean 1 and σ `responsiveness_sigma`, capped
/// at 4; the same in the pre-period and the experiment.
pub fn responsiveness(p: &Resolved, r: &mut Rng) -> f64 {
    let s = p.canary.responsiveness_sigma;
    r.lognormal(-s * s / 2.0, s).min(4.0)
}

/// The arm of the account with this index, or None when it is not enrolled.
pub fn arm_of(p: &Resolved, idx: u64) -> Option<usize> {
    let mut r = Rng::stream(p.seed, "canary-assign", idx, 0);
    let enrolled = r.chance(p.canary.share);
    let variant = r.chance(p.canary.variant_share);
    enrolled.then_some(variant as usize)
}

pub fn generate(
    p: &Resolved,
    a: &AccountPlan,
    people: &People,
    active_to: Day,
    t: &mut Tables,
    s: &mut Summary,
) -> Option<usize> {
    let mut r = Rng::stream(p.seed, "canary", a.idx as u64, 0);
    let (pre_start, exp_start, end) = experiment_window(p);
    let arm = arm(p, a);
    if let Some(k) = arm {
        s.canary_accounts[k] += 1;
    }
    // Accounts differ in how responsive they are; the same multiplier holds in both periods.
    let responsiveness = responsiveness(p, &mut r);
    let weekly = if a.is_customer() { 0.5 } else { 0.8 };
    let aid = account_id(a.idx);
    let mut k = 0;
    let mut id = String::new();
    let mut week = pre_start;
    while week < end {
        let in_exp = week >= exp_start;
        for _ in 0..r.poisson(weekly) {
            let decided = week.micros() + r.range(0, 7 * 24 * 60) * MICROS_PER_MINUTE;
            let day = Day(decided.div_euclid(MICROS_PER_DAY) as i32);
            if decided >= end.micros() || day >= active_to {
                continue;
            }
            let contacts = people.active_with(
                day,
                &[
                    "economic_buyer",
                    "champion",
                    "technical_evaluator",
                    "end_user",
                    "other",
                    "procurement",
                ],
            );
            let contact = (!contacts.is_empty()).then(|| {
                contacts[r.range(0, contacts.len() as i64) as usize]
                    .id
                    .clone()
            });
            let (exp_arm, model) = match (in_exp, arm) {
                (true, Some(1)) => (Some(1), p.canary.variant_model.as_str()),
                (true, Some(0)) => (Some(0), p.canary.control_model.as_str()),
                _ => (None, p.canary.control_model.as_str()),
            };
            let g = exp_arm.unwrap_or(0);
            if let Some(x) = exp_arm {
                s.canary_decisions[x] += 1;
            }
            let lane = if a.is_customer() {
                ["tam", "marketing"][r.range(0, 2) as usize]
            } else {
                ["inbound", "tam"][r.weighted(&[0.4, 0.6])]
            };
            let action = r.weighted(&ACTION_WEIGHTS);
            let (clo, chi) = ACTION_COST_CENTS[action];
            let cost_micros = (r.between(clo, chi) as f64
                * 10_000.0
                * if g == 1 { 1.0 + p.effect("cost") } else { 1.0 })
            .round() as i128;

            k += 1;
            id.clear();
            let _ = write!(id, "DEC-{:06}-{k:04}", a.idx + 1);
            let mut outcomes = funnel(p, g, responsiveness, a.segment, &mut r);
            let blocked = outcomes.iter().any(|o| o.1 == "trust_block");
            let trust = if blocked {
                r.uniform(0.30, 0.69)
            } else {
                r.uniform(0.70, 0.99)
            };
            let gate = if blocked {
                "hold"
            } else if r.chance(0.12) {
                "scheduled"
            } else {
                "pass"
            };
            let d = &mut t.decisions;
            d.b.str(d.c.decision_id, &id);
            d.b.ts(d.c.decided_at, decided);
            d.b.str(d.c.account_id, &aid);
            d.b.opt_str(d.c.contact_id, contact.as_deref());
            d.b.str(d.c.lane, lane);
            d.b.str(d.c.action_type, ACTION_TYPES[action]);
            d.b.opt_str(
                d.c.experiment_id,
                exp_arm.map(|_| p.canary.experiment_id.as_str()),
            );
            d.b.opt_str(d.c.arm, exp_arm.map(|x| ["control", "variant"][x]));
            d.b.str(d.c.model_version, model);
            d.b.str(d.c.policy_version, "policy-2025.11");
            d.b.f64(d.c.trust_score, (trust * 1000.0).round() / 1000.0);
            d.b.str(d.c.gate_result, gate);
            d.b.dec(d.c.cost_usd, cost_micros);
            d.b.end_row();
            outcomes.sort_by_key(|o| o.0);
            for (j, (delay, kind, pipeline)) in outcomes.iter().enumerate() {
                let at = decided + delay;
                if at >= p.as_of.micros() {
                    continue; // not observed yet
                }
                let o = &mut t.outcomes;
                o.b.str(o.c.outcome_id, &format!("{id}-{}", j + 1));
                o.b.str(o.c.decision_id, &id);
                o.b.ts(o.c.outcome_at, at);
                o.b.str(o.c.outcome_type, kind);
                o.b.opt_dec(o.c.pipeline_usd, *pipeline);
                o.b.end_row();
            }
        }
        week = week.plus(7);
    }
    arm
}

/// The expected per-decision rate of each outcome in arm `g` (before censoring at as_of;
/// replies assume mean responsiveness 1).
pub fn expected_rates(p: &Resolved, g: usize) -> serde_json::Value {
    let tb = prob(p, g, "trust_block");
    let executed = 1.0 - tb * prob(p, g, "human_rejected");
    let delivered = executed * (1.0 - prob(p, g, "bounce"));
    let reply = delivered * prob(p, g, "reply");
    let positive = reply * prob(p, g, "positive_reply");
    let meeting = positive * prob(p, g, "meeting_booked");
    json!({
        "trust_block": tb,
        "human_rejected": tb * prob(p, g, "human_rejected"),
        "duplicate_incident": executed * prob(p, g, "duplicate_incident"),
        "cooldown_violation": executed * prob(p, g, "cooldown_violation"),
        "bounce": executed * prob(p, g, "bounce"),
        "unsubscribe": delivered * prob(p, g, "unsubscribe"),
        "reply": reply,
        "positive_reply": positive,
        "meeting_booked": meeting,
        "opportunity_created": meeting * prob(p, g, "opportunity_created"),
    })
}

/// `oracle/canary.json`: the experiment, its true effects and the expected per-decision rate of
/// each outcome per arm (before censoring at as_of; replies assume mean responsiveness 1).
pub fn oracle_json(p: &Resolved, s: &Summary) -> serde_json::Value {
    let (pre_start, exp_start, end) = experiment_window(p);
    let rates = |g: usize| expected_rates(p, g);
    json!({
        "experiment_id": p.canary.experiment_id,
        "control_model": p.canary.control_model,
        "variant_model": p.canary.variant_model,
        "randomisation_unit": "account",
        "share_enrolled": p.canary.share,
        "pre_period": {"start": pre_start.iso(), "end": exp_start.iso()},
        "experiment": {"start": exp_start.iso(), "end": end.iso()},
        "baseline_step_probabilities": BASELINE.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "true_effects": p.canary.effects,
        "expected_rates": {"control": rates(0), "variant": rates(1)},
        "enrolled_accounts": {"control": s.canary_accounts[0], "variant": s.canary_accounts[1]},
        "decisions": {"control": s.canary_decisions[0], "variant": s.canary_decisions[1]},
    })
}
