//! TOOL-015, the gross-profit decomposition: where a customer's realised gross profit from a
//! metered SKU went from one quarter to the next, split into four effects that sum exactly, to
//! the cent, to the change.
//!
//! For a customer, a SKU and quarter q against q−1 (money in integer cents; `round` half away
//! from zero):
//! - r = realised revenue (recognised consumption revenue: commit plus overage);
//! - Q = billed units: each order line's revenue ÷ its list unit price, so Q prices every unit
//!   billed (committed or overage) at the list price of its line;
//! - per deployment tier t: u_t units served and c_t backend cost; U = Σ u_t, C = Σ c_t;
//! - GP = r − C.
//!
//! Then, with R* = round(Q_q · r_{q−1} / Q_{q−1}) the revenue of q at q−1's prices,
//! B_t = round(u_{t,q} · c_{t,q−1} / u_{t,q−1}) each tier's cost at its q−1 unit cost (a tier
//! new in q at its own cost), and V = round(U_q · C_{q−1} / U_{q−1}) the cost at q−1's average
//! unit cost:
//! - **pricing** = r_q − R*: list-price changes. Zero when every line of both quarters has the
//!   same list price; a commit resized at renewal is volume, not price;
//! - **utilisation** = (R* − r_{q−1}) − (V − C_{q−1}): units billed and served at constant
//!   prices and unit costs, commit breakage included;
//! - **backend cost** = Σ B_t − C_q: unit-cost changes within each tier (negative when serving
//!   got dearer);
//! - **tier mix** = V − Σ B_t: traffic moved between tiers of different unit cost (positive
//!   when it moved to cheaper ones).
//!
//! The four sum to GP_q − GP_{q−1} by construction, whatever the rounding. A quarter is
//! refused, with the reason, when it or the quarter before has a month of consumption revenue
//! without backend cost (the cost feed is incomplete), or when the quarter before has no
//! consumption revenue to compare with.

/// One deployment tier's units and cost in a quarter.
#[derive(Debug, Clone, PartialEq)]
pub struct Tier {
    pub tier: String,
    pub units: f64,
    pub cost_cents: i64,
}

/// A customer-SKU's quarter: revenue, billed units, the months of revenue without backend cost,
/// and the tiers that served it.
#[derive(Debug, Clone, PartialEq)]
pub struct Quarter {
    /// Quarter number: year × 4 + quarter − 1.
    pub quarter: i32,
    pub revenue_cents: i64,
    pub billed_units: f64,
    pub months_without_cost: i32,
    pub tiers: Vec<Tier>,
}

impl Quarter {
    fn cost(&self) -> i64 {
        self.tiers.iter().map(|t| t.cost_cents).sum()
    }
    fn units(&self) -> f64 {
        self.tiers.iter().map(|t| t.units).sum()
    }
    pub fn gross_profit(&self) -> i64 {
        self.revenue_cents - self.cost()
    }
    fn tier(&self, name: &str) -> Option<&Tier> {
        self.tiers.iter().find(|t| t.tier == name)
    }
}

/// The decomposition of one quarter against the one before, in cents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effects {
    pub prior_gp: i64,
    pub pricing: i64,
    pub utilisation: i64,
    pub backend_cost: i64,
    pub tier_mix: i64,
}

impl Effects {
    pub fn total(&self) -> i64 {
        self.pricing + self.utilisation + self.backend_cost + self.tier_mix
    }
}

/// `x · num / den` rounded half away from zero; `fallback` when there is nothing to scale by.
fn scaled(x: f64, num: i64, den: f64, fallback: i64) -> i64 {
    if den > 0.0 {
        (x * num as f64 / den).round() as i64
    } else {
        fallback
    }
}

/// Quarter `q` against `prev` (the quarter immediately before it).
pub fn decompose(prev: &Quarter, q: &Quarter) -> Result<Effects, String> {
    for x in [prev, q] {
        if x.months_without_cost > 0 {
            return Err(format!(
                "backend cost missing for {} month{} of {} with consumption revenue",
                x.months_without_cost,
                if x.months_without_cost == 1 { "" } else { "s" },
                quarter_label(x.quarter)
            ));
        }
    }
    let at_prior_prices = scaled(
        q.billed_units,
        prev.revenue_cents,
        prev.billed_units,
        q.revenue_cents,
    );
    let tiers_at_prior_cost: i64 = q
        .tiers
        .iter()
        .map(|t| match prev.tier(&t.tier) {
            Some(p) => scaled(t.units, p.cost_cents, p.units, t.cost_cents),
            None => t.cost_cents,
        })
        .sum();
    let at_prior_average = scaled(q.units(), prev.cost(), prev.units(), tiers_at_prior_cost);
    Ok(Effects {
        prior_gp: prev.gross_profit(),
        pricing: q.revenue_cents - at_prior_prices,
        utilisation: (at_prior_prices - prev.revenue_cents) - (at_prior_average - prev.cost()),
        backend_cost: tiers_at_prior_cost - q.cost(),
        tier_mix: at_prior_average - tiers_at_prior_cost,
    })
}

/// Every quarter of one customer-SKU (any order) against the quarter before it.
pub fn decompose_all(quarters: &[Quarter]) -> Vec<(i32, Result<Effects, String>)> {
    let mut sorted: Vec<&Quarter> = quarters.iter().collect();
    sorted.sort_by_key(|x| x.quarter);
    sorted
        .iter()
        .map(|q| {
            let prev = sorted.iter().find(|p| p.quarter == q.quarter - 1);
            let out = match prev {
                Some(p) => decompose(p, q),
                None => Err(format!(
                    "no consumption revenue in {}: nothing to compare with",
                    quarter_label(q.quarter - 1)
                )),
            };
            (q.quarter, out)
        })
        .collect()
}

/// `2025-Q3` for a quarter number.
pub fn quarter_label(n: i32) -> String {
    format!("{}-Q{}", n.div_euclid(4), n.rem_euclid(4) + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier(name: &str, units: f64, cost_cents: i64) -> Tier {
        Tier {
            tier: name.into(),
            units,
            cost_cents,
        }
    }

    fn quarter(n: i32, revenue: i64, billed: f64, tiers: Vec<Tier>) -> Quarter {
        Quarter {
            quarter: n,
            revenue_cents: revenue,
            billed_units: billed,
            months_without_cost: 0,
            tiers,
        }
    }

    /// Worked by hand. q−1: 10,000 units billed at $0.20 = $2,000.00; served 8,000 shared at
    /// $0.10 ($800.00) and 2,000 dedicated at $0.06 ($120.00); GP $1,080.00.
    /// q: the price rises 10 % to $0.22 and 12,000 units are billed = $2,640.00; served 7,000
    /// shared at a shocked $0.12 ($840.00) and 5,000 dedicated at $0.06 ($300.00); GP $1,500.00.
    /// ΔGP = $420.00.
    /// - R* = 12,000 × 2,000.00 / 10,000 = $2,400.00 → pricing = 2,640 − 2,400 = $240.00;
    /// - B = 7,000 × 0.10 + 5,000 × 0.06 = 700 + 300 = $1,000.00 → backend = 1,000 − 1,140 = −$140.00;
    /// - V = 12,000 × 920 / 10,000 = $1,104.00 → mix = 1,104 − 1,000 = $104.00;
    /// - utilisation = (2,400 − 2,000) − (1,104 − 920) = 400 − 184 = $216.00.
    ///
    /// 240 − 140 + 104 + 216 = 420.
    #[test]
    fn a_worked_quarter() {
        let prev = quarter(
            8_100,
            200_000,
            10_000.0,
            vec![
                tier("shared", 8_000.0, 80_000),
                tier("dedicated", 2_000.0, 12_000),
            ],
        );
        let q = quarter(
            8_101,
            264_000,
            12_000.0,
            vec![
                tier("shared", 7_000.0, 84_000),
                tier("dedicated", 5_000.0, 30_000),
            ],
        );
        let e = decompose(&prev, &q).unwrap();
        assert_eq!(
            e,
            Effects {
                prior_gp: 108_000,
                pricing: 24_000,
                utilisation: 21_600,
                backend_cost: -14_000,
                tier_mix: 10_400,
            }
        );
        assert_eq!(e.total(), q.gross_profit() - prev.gross_profit());
    }

    /// Nothing changes but volume: price, unit costs and tier shares constant, 50 % more units.
    /// Only utilisation moves, by half the prior GP.
    #[test]
    fn volume_alone_is_utilisation() {
        let prev = quarter(1, 100_000, 5_000.0, vec![tier("shared", 5_000.0, 40_000)]);
        let q = quarter(2, 150_000, 7_500.0, vec![tier("shared", 7_500.0, 60_000)]);
        let e = decompose(&prev, &q).unwrap();
        assert_eq!((e.pricing, e.backend_cost, e.tier_mix), (0, 0, 0));
        assert_eq!(e.utilisation, 30_000);
    }

    /// Unit costs that do not divide evenly, and a tier new in q: every B_t rounds, and the
    /// four effects still sum to the change to the cent.
    #[test]
    fn the_effects_sum_exactly_whatever_the_rounding() {
        let prev = quarter(
            1,
            33_333,
            2_999.0,
            vec![tier("shared", 1_999.0, 6_667), tier("byoc", 1_000.0, 333)],
        );
        let q = quarter(
            2,
            47_777,
            3_331.0,
            vec![
                tier("shared", 1_001.0, 4_001),
                tier("byoc", 1_333.0, 555),
                tier("dedicated", 997.0, 2_993),
            ],
        );
        let e = decompose(&prev, &q).unwrap();
        assert_eq!(e.total(), q.gross_profit() - prev.gross_profit());
        // The new dedicated tier is priced at its own cost: no backend effect of its own.
        assert_eq!(
            e.backend_cost,
            (1_001.0_f64 * 6_667.0 / 1_999.0).round() as i64
                + (1_333.0_f64 * 333.0 / 1_000.0).round() as i64
                + 2_993
                - (4_001 + 555 + 2_993)
        );
    }

    #[test]
    fn refuses_when_cost_is_missing_or_there_is_nothing_to_compare() {
        let mut prev = quarter(8_099, 100, 10.0, vec![tier("shared", 10.0, 50)]);
        let q = quarter(8_100, 100, 10.0, vec![tier("shared", 10.0, 50)]);
        prev.months_without_cost = 1;
        assert_eq!(
            decompose(&prev, &q),
            Err("backend cost missing for 1 month of 2024-Q4 with consumption revenue".into())
        );
        let all = decompose_all(std::slice::from_ref(&q));
        assert_eq!(
            all,
            vec![(
                8_100,
                Err("no consumption revenue in 2024-Q4: nothing to compare with".into())
            )]
        );
        // A gap of a quarter: q+2 has no q+1 to compare with.
        let later = quarter(8_102, 100, 10.0, vec![tier("shared", 10.0, 50)]);
        let all = decompose_all(&[later, q]);
        assert!(all[1].1.as_ref().unwrap_err().contains("2025-Q2"));
    }
}
