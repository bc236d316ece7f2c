//! `backend_costs`: what serving a customer's metered consumption cost, per month and
//! deployment tier, and the margin truth TOOL-015's decomposition must recover.
//!
//! Every consumption customer's units are split over the deployment tiers its segment uses
//! (SMB all shared; mid-market some dedicated; enterprise dedicated and some
//! bring-your-own-cloud), each tier with a constant backend cost per unit, a fraction of the
//! account's unit price (`TIER_COST_SHARE`). On that flat ground, drawn from the account's own
//! stream so nothing else in the corpus moves, some accounts get a labelled event from a
//! quarter's first month — written to `oracle/margin`:
//! - `cost_shock`: the shared tier's unit cost rises (a provider's price change);
//! - `tier_migration`: part of the traffic moves from shared to dedicated;
//! - `cost_gap`: the cost feed misses one month (no rows), so the decomposition must refuse;
//! - `price_increase`: drawn by [`Lifecycle`] at a renewal, recorded here.
//!
//! Units served are the units metered (current rows, disputed included: served is served).

use super::catalog::*;
use super::lifecycle::Lifecycle;
use super::params::Resolved;
use super::plan::AccountPlan;
use super::rng::Rng;
use super::tables::Tables;
use super::usage::UsageOut;
use crate::calendar::{Day, month_start};

/// Units and cost of one account on one tier in one month.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TierMonth {
    pub tier: usize,
    pub units: i64,
    pub cost_cents: i128,
}

/// One account's backend: tier shares and unit costs, and its labelled events.
#[derive(Debug, Clone)]
pub struct Backend {
    /// Share of units on each tier before a migration.
    shares: [f64; 3],
    /// Backend cost per unit on each tier, micro-dollars.
    unit_cost: [i128; 3],
    /// (first month index, new ÷ old shared-tier unit cost).
    shock: Option<(i32, i128)>,
    /// (first month index, share of all units moved from shared to dedicated).
    migration: Option<(i32, f64)>,
    /// Month index whose cost was not delivered.
    gap: Option<i32>,
}

impl Backend {
    /// Draw the account's backend over the months it consumed (month index, ascending).
    fn draw(p: &Resolved, a: &AccountPlan, price_micros: i128, months: &[i32]) -> Backend {
        let mut r = Rng::stream(p.seed, "backend", a.idx as u64, 0);
        // Every draw is made whatever the outcome, so one account's events never shift another's.
        let dedicated = r.uniform(0.0, 1.0);
        let byoc = r.uniform(0.0, 1.0);
        let cost: Vec<f64> = TIER_COST_SHARE
            .iter()
            .map(|(lo, hi)| r.uniform(*lo, *hi))
            .collect();
        let draws: Vec<(bool, f64, f64)> = [COST_SHOCK_SHARE, TIER_MIGRATION_SHARE, COST_GAP_SHARE]
            .iter()
            .map(|&share| (r.chance(share), r.uniform(0.0, 1.0), r.uniform(0.0, 1.0)))
            .collect();
        let shares = match a.segment {
            0 => [1.0, 0.0, 0.0],
            1 if dedicated < 0.5 => [0.9 - dedicated * 0.4, 0.1 + dedicated * 0.4, 0.0],
            1 => [1.0, 0.0, 0.0],
            _ => {
                let d = 0.3 + dedicated * 0.3;
                let b = if byoc < 0.3 { 0.1 + byoc * 0.6 } else { 0.0 };
                [1.0 - d - b, d, b]
            }
        };
        let unit_cost = [0, 1, 2].map(|t| ((price_micros as f64) * cost[t]).round() as i128);
        // Events start at a quarter's first month with a full quarter observed before it and
        // the quarter it starts complete.
        let first = months.first().copied().unwrap_or(0);
        let last = months.last().copied().unwrap_or(-1);
        let starts: Vec<i32> = months
            .iter()
            .copied()
            .filter(|m| m.rem_euclid(3) == 0 && *m - 3 >= first && *m + 2 <= last)
            .collect();
        let whole: Vec<i32> = months
            .iter()
            .copied()
            .filter(|m| *m - m.rem_euclid(3) + 2 <= last)
            .collect();
        let pick =
            |u: f64, from: &[i32]| from[((u * from.len() as f64) as usize).min(from.len() - 1)];
        let (shock, migration, gap) = if starts.is_empty() {
            (None, None, None)
        } else {
            let (s, m, g) = (draws[0], draws[1], draws[2]);
            (
                s.0.then(|| {
                    let f = COST_SHOCK.0 + s.2 * (COST_SHOCK.1 - COST_SHOCK.0);
                    let new = ((unit_cost[0] as f64) * (1.0 + f)).round() as i128;
                    (pick(s.1, &starts), new)
                }),
                m.0.then(|| {
                    let moved = TIER_MIGRATION.0 + m.2 * (TIER_MIGRATION.1 - TIER_MIGRATION.0);
                    (pick(m.1, &starts), moved.min(shares[0] - 0.05))
                })
                .filter(|(_, moved)| *moved > 0.0),
                // a month of a quarter the data covers whole, so a decomposition meets it
                g.0.then(|| pick(g.1, &whole)),
            )
        };
        Backend {
            shares,
            unit_cost,
            shock,
            migration,
            gap,
        }
    }

    /// The tiers' units and costs in month `m` for `units` served: shares as of the month,
    /// whole units (the last tier in use takes the remainder), cost to the cent.
    fn month(&self, m: i32, units: i64) -> Vec<TierMonth> {
        let mut shares = self.shares;
        if let Some((from, moved)) = self.migration
            && m >= from
        {
            shares[0] -= moved;
            shares[1] += moved;
        }
        let used: Vec<usize> = (0..3).filter(|&t| shares[t] > 0.0).collect();
        let mut left = units;
        let mut out = Vec::with_capacity(used.len());
        for (i, &tier) in used.iter().enumerate() {
            let u = if i + 1 == used.len() {
                left
            } else {
                ((units as f64) * shares[tier] + 1e-9).floor() as i64
            };
            left -= u;
            let unit_cost = match self.shock {
                Some((from, new)) if tier == 0 && m >= from => new,
                _ => self.unit_cost[tier],
            };
            // micro-dollars → cents, half away from zero
            let cost_cents = (u as i128 * unit_cost + 5_000) / 10_000;
            if u > 0 {
                out.push(TierMonth {
                    tier,
                    units: u,
                    cost_cents,
                });
            }
        }
        out
    }
}

/// `backend_costs` rows and `oracle/margin` rows of one consumption customer.
pub fn generate(p: &Resolved, a: &AccountPlan, lc: &Lifecycle, used: &UsageOut, t: &mut Tables) {
    let Some(price) = lc
        .terms
        .iter()
        .find_map(|x| x.cons.as_ref().map(|c| c.price_micros))
    else {
        return;
    };
    let months: Vec<i32> = used
        .months
        .iter()
        .filter(|(_, u)| u.reference_units > 0)
        .map(|(m, _)| *m)
        .collect();
    let backend = Backend::draw(p, a, price, &months);
    let acct6 = format!("{:06}", a.idx + 1);
    let account = super::plan::account_id(a.idx);
    let mut id = String::with_capacity(24);
    let tb = &mut t.backend_costs;
    for &m in &months {
        // The feed delivers a month's cost in the last hour of the month.
        let received = month_start(m + 1).micros() - 3_600_000_000;
        if received >= p.as_of.micros() || backend.gap == Some(m) {
            continue;
        }
        let units = used.months[&m].reference_units;
        let first = month_start(m);
        for x in backend.month(m, units) {
            id.clear();
            id.push_str("BC-");
            id.push_str(&acct6);
            id.push('-');
            first.push_compact(&mut id);
            id.push('-');
            id.push_str(TIERS[x.tier]);
            let c = &tb.c;
            tb.b.str(c.cost_id, &id);
            tb.b.str(c.account_id, &account);
            tb.b.str(c.sku_id, CONSUMPTION_SKU);
            tb.b.date(c.month, first.0);
            tb.b.str(c.deployment_tier, TIERS[x.tier]);
            tb.b.f64(c.units, x.units as f64);
            tb.b.dec(c.backend_cost_usd, x.cost_cents);
            tb.b.ts(c.received_at, received);
            tb.b.end_row();
        }
    }

    let o = &mut t.oracle_margin;
    let mut event = |name: &str, day: Day, tier: Option<&str>, magnitude: Option<f64>| {
        o.b.str(o.c.account_id, &account);
        o.b.str(o.c.event, name);
        o.b.date(o.c.effective_date, day.0);
        o.b.opt_str(o.c.deployment_tier, tier);
        o.b.opt_f64(o.c.magnitude, magnitude);
        o.b.end_row();
    };
    if let Some((day, ratio)) = lc.price_increase {
        event("price_increase", day, None, Some(ratio));
    }
    if let Some((m, new)) = backend.shock {
        let ratio = new as f64 / backend.unit_cost[0] as f64;
        event("cost_shock", month_start(m), Some(TIERS[0]), Some(ratio));
    }
    if let Some((m, moved)) = backend.migration {
        event(
            "tier_migration",
            month_start(m),
            Some(TIERS[1]),
            Some(moved),
        );
    }
    if let Some(m) = backend.gap {
        event("cost_gap", month_start(m), None, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backend(shares: [f64; 3]) -> Backend {
        Backend {
            shares,
            unit_cost: [120_000, 80_000, 25_000],
            shock: Some((10, 150_000)),
            migration: Some((20, 0.25)),
            gap: None,
        }
    }

    #[test]
    fn units_split_whole_and_cost_rounds_to_the_cent() {
        // 1,001 units, 60/30/10: 600 and 300 by floor, the last tier takes the other 101.
        // Shared 600 × $0.12 = $72.00; dedicated 300 × $0.08 = $24.00; byoc 101 × $0.025 = $2.525
        // → $2.53 (half away from zero).
        let b = backend([0.6, 0.3, 0.1]);
        let rows = b.month(0, 1_001);
        assert_eq!(
            rows,
            vec![
                TierMonth {
                    tier: 0,
                    units: 600,
                    cost_cents: 7_200
                },
                TierMonth {
                    tier: 1,
                    units: 300,
                    cost_cents: 2_400
                },
                TierMonth {
                    tier: 2,
                    units: 101,
                    cost_cents: 253
                },
            ]
        );
    }

    #[test]
    fn a_shock_raises_the_shared_unit_cost_and_a_migration_moves_traffic_from_its_month() {
        let b = backend([0.7, 0.3, 0.0]);
        // Before both: 700 × 0.12 = 84.00, 300 × 0.08 = 24.00.
        assert_eq!(b.month(9, 1_000)[0].cost_cents, 8_400);
        // From month 10 the shared tier costs $0.15: 700 × 0.15 = 105.00.
        assert_eq!(b.month(10, 1_000)[0].cost_cents, 10_500);
        // From month 20 a quarter of all traffic is on dedicated: 450 shared, 550 dedicated.
        let after = b.month(20, 1_000);
        assert_eq!((after[0].units, after[1].units), (450, 550));
        assert_eq!(after[1].cost_cents, 4_400);
    }
}
