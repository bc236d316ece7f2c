//! One customer's latent state: its archetype story, contract chain and the daily curves
//! (usage intensity, seat utilisation, mood) that every table of the account is drawn from.
//! This is what makes an account's tables coherent: usage, engagement, calls, tickets, NPS,
//! payments and renewals all read the same story.

use super::catalog::*;
use super::params::{Archetype, Resolved};
use super::plan::AccountPlan;
use super::rng::{self, Rng};
use crate::calendar::Day;

/// The archetype's story, fixed per account.
#[derive(Debug, Clone, Default)]
pub struct Story {
    pub champion_departure: Option<Day>,
    /// (start, end exclusive, peak multiplier, level after the crash as a share of baseline).
    pub spike: Option<(Day, Day, f64, f64)>,
    /// (period days, amplitude, phase days).
    pub season: Option<(i32, f64, i32)>,
    /// Daily growth rate of usage (expansion_ready, ideal_power_user).
    pub growth: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TermKind {
    NewLogo,
    Renewal,
}

#[derive(Debug, Clone)]
pub struct Consumption {
    /// Committed units per month.
    pub commit: i64,
    pub price_micros: i128,
    pub overage_micros: i128,
}

#[derive(Debug, Clone)]
pub struct Milestone {
    pub name: &'static str,
    pub amount_cents: i128,
    pub planned: Day,
    pub completed: Option<Day>,
    pub sign_off: Option<Day>,
}

/// One contract term (an order) of the chain.
#[derive(Debug, Clone)]
pub struct Term {
    pub n: u32,
    pub kind: TermKind,
    pub order_date: Day,
    pub start: Day,
    pub end: Day,
    pub seats: i64,
    pub seat_price_micros: i128,
    pub cons: Option<Consumption>,
    pub services: Vec<Milestone>,
    /// Re-papered: this order was superseded by an identical one (recognition ignores it).
    pub superseded: bool,
}

/// A mid-term add-on (amendment) of seats, co-terminous with its parent term.
#[derive(Debug, Clone)]
pub struct AddOn {
    pub n: u32,
    pub parent: u32,
    pub order_date: Day,
    pub start: Day,
    pub end: Day,
    pub seats: i64,
    pub seat_price_micros: i128,
    pub cancelled: bool,
}

#[derive(Debug, Clone)]
pub struct Lifecycle {
    pub archetype: Archetype,
    pub story: Story,
    pub terms: Vec<Term>,
    pub addons: Vec<AddOn>,
    /// Day service ended when the customer churned (the last term's end).
    pub churn_date: Option<Day>,
    /// A renewal still to come at as_of: (term end = renewal date).
    pub next_renewal: Option<Day>,
    pub billing: &'static str,
    /// Consumption demand at full intensity, units per day.
    pub base_units: f64,
    /// First day with telemetry (window start or contract start) and the day after the last.
    pub active_from: Day,
    pub active_to: Day,
    pub first_start: Day,
    /// A consumption list-price increase at a renewal: (the renewed term's start, new ÷ old
    /// unit price). Drawn from its own stream, so the rest of the story is unchanged by it.
    pub price_increase: Option<(Day, f64)>,
}

fn term_months(r: &mut Rng, segment: usize) -> i32 {
    if segment == 2 && r.chance(0.3) {
        24
    } else {
        12
    }
}

impl Lifecycle {
    pub fn build(p: &Resolved, a: &AccountPlan) -> Lifecycle {
        let archetype = a.archetype.unwrap_or(Archetype::IdealPowerUser);
        let first_start = a.first_term_start.unwrap_or(p.start);
        let mut r = Rng::stream(p.seed, "lifecycle", a.idx as u64, 0);
        let seg = a.segment;
        let active_from = p.start.max(first_start);
        let story = Story::draw(p, &mut r, archetype, active_from);
        let billing = {
            let w: [f64; 3] = match seg {
                0 => [0.6, 0.2, 0.2],
                1 => [0.2, 0.4, 0.4],
                _ => [0.0, 0.3, 0.7],
            };
            ["monthly", "quarterly", "annual"][r.weighted(&w)]
        };
        let (ulo, uhi) = DAILY_UNITS[seg];
        let base_units = rng::exp(r.uniform(rng::ln(ulo), rng::ln(uhi))).round();
        let (slo, shi) = SEATS[seg];
        let mut seats = r.between(slo, shi);
        let (plo, phi) = SEAT_PRICE_USD[seg];
        let mut seat_price_micros = r.between(plo, phi) as i128 * 1_000_000;
        let cons = a.has_consumption.then(|| {
            let (clo, chi) = UNIT_PRICE_CENTS[seg];
            let price_cents = r.between(clo, chi) as i128;
            let ratio = commit_ratio(archetype);
            let sign_intensity = if archetype == Archetype::SpikeThenCrash {
                0.8
            } else {
                0.9
            };
            Consumption {
                commit: ((base_units * sign_intensity * 30.0 * ratio).round() as i64).max(100),
                price_micros: price_cents * 10_000,
                overage_micros: ((price_cents * 125 + 50) / 100) * 10_000,
            }
        });
        let services = if a.has_services {
            draw_services(p, &mut r, archetype, seg, first_start)
        } else {
            Vec::new()
        };

        let mut lc = Lifecycle {
            archetype,
            story,
            terms: Vec::new(),
            addons: Vec::new(),
            churn_date: None,
            next_renewal: None,
            billing,
            base_units,
            active_from,
            active_to: p.as_of,
            first_start,
            price_increase: None,
        };
        // TOOL-015's injected truth: some consumption customers take a list-price increase at
        // their first renewal at least a quarter into the window and four months before as_of,
        // so the quarters on both sides of it are observed.
        let mut raise = Rng::stream(p.seed, "price-increase", a.idx as u64, 0);
        let raise = (cons.is_some() && raise.chance(PRICE_INCREASE_SHARE))
            .then(|| raise.uniform(PRICE_INCREASE.0, PRICE_INCREASE.1));

        // The contract chain: renew, resize or churn at each term end up to as_of.
        let mut start = first_start;
        let mut cons = cons;
        let mut n = 1;
        let mut kind = TermKind::NewLogo;
        let mut services = services;
        loop {
            let months = term_months(&mut r, seg);
            let end = start.add_months(months);
            let order_date = match kind {
                TermKind::NewLogo => start.plus(-(r.between(0, 20) as i32)),
                TermKind::Renewal => start.plus(-(r.between(5, 30) as i32)),
            };
            if order_date >= p.as_of {
                lc.next_renewal = Some(start);
                break;
            }
            let superseded = n == 1 && r.chance(0.03);
            lc.terms.push(Term {
                n,
                kind,
                order_date,
                start,
                end,
                seats,
                seat_price_micros,
                cons: cons.clone(),
                services: std::mem::take(&mut services),
                superseded,
            });
            lc.draw_addons(
                p,
                &mut r,
                n,
                order_date.max(start),
                end,
                seats,
                seat_price_micros,
            );
            if end >= p.as_of {
                lc.next_renewal = Some(end);
                break;
            }
            // Renewal decision at `end`.
            match lc.renewal(p, &mut r, end) {
                None => {
                    lc.churn_date = Some(end);
                    lc.active_to = end.max(lc.active_from);
                    break;
                }
                Some(factor) => {
                    let addon_seats: i64 = lc
                        .addons
                        .iter()
                        .filter(|x| x.parent == n && !x.cancelled)
                        .map(|x| x.seats)
                        .sum();
                    seats = (((seats + addon_seats) as f64) * factor).round().max(1.0) as i64;
                    if r.chance(0.5) {
                        seat_price_micros = ((seat_price_micros / 1_000_000) as f64 * 1.03).round()
                            as i128
                            * 1_000_000;
                    }
                    if let Some(c) = &mut cons {
                        let demand = lc.intensity(end.plus(-30)) * lc.base_units * 30.0;
                        c.commit = ((demand * commit_ratio(archetype)).round() as i64).max(100);
                        if let Some(x) = raise
                            && lc.price_increase.is_none()
                            && end >= p.start.add_months(3)
                            && end < p.as_of.add_months(-4)
                        {
                            let old = c.price_micros / 10_000;
                            let new = ((old as f64) * (1.0 + x)).round() as i128;
                            c.price_micros = new * 10_000;
                            c.overage_micros = ((new * 125 + 50) / 100) * 10_000;
                            lc.price_increase = Some((end, new as f64 / old as f64));
                        }
                    }
                }
            }
            start = end;
            n += 1;
            kind = TermKind::Renewal;
        }
        lc
    }

    /// Seat factor at a renewal, or None when the customer churns.
    fn renewal(&self, p: &Resolved, r: &mut Rng, at: Day) -> Option<f64> {
        if at < p.start {
            return Some(r.uniform(1.0, 1.1));
        }
        let s = &self.story;
        match self.archetype {
            Archetype::ChampionLossDecliner => match s.champion_departure {
                Some(d) if at >= d.plus(90) => {
                    if r.chance(0.6) {
                        None
                    } else {
                        Some(r.uniform(0.5, 0.7))
                    }
                }
                _ => Some(1.0),
            },
            Archetype::SpikeThenCrash => match s.spike {
                Some((_, end, _, _)) if at >= end.plus(30) => {
                    if r.chance(0.3) {
                        None
                    } else {
                        Some(r.uniform(0.5, 0.75))
                    }
                }
                _ => Some(1.0),
            },
            Archetype::SurfaceOnlyAdopter => {
                if r.chance(0.12) {
                    None
                } else {
                    Some(r.uniform(0.85, 1.0))
                }
            }
            Archetype::IdealPowerUser => Some(r.uniform(1.05, 1.15)),
            Archetype::ExpansionReady => Some(r.uniform(1.15, 1.35)),
            Archetype::Seasonal => Some(r.uniform(0.95, 1.08)),
            Archetype::Activating | Archetype::StalledOnboarding => Some(1.0),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn draw_addons(
        &mut self,
        p: &Resolved,
        r: &mut Rng,
        parent: u32,
        from: Day,
        end: Day,
        seats: i64,
        price: i128,
    ) {
        let p_add = match self.archetype {
            Archetype::ExpansionReady => 0.7,
            Archetype::IdealPowerUser => 0.2,
            _ => 0.0,
        };
        let months = end.month_index() - from.month_index();
        if months >= 6 && r.chance(p_add) {
            let start = from
                .first_of_month()
                .add_months(r.between(3, (months - 3) as i64) as i32);
            let order_date = start.plus(-(r.between(3, 20) as i32));
            if order_date < p.as_of && start >= p.start.add_months(-24) {
                let n = self.addons.len() as u32 + 1;
                let add = ((seats as f64) * r.uniform(0.2, 0.35)).round().max(1.0) as i64;
                self.addons.push(AddOn {
                    n,
                    parent,
                    order_date,
                    start,
                    end,
                    seats: add,
                    seat_price_micros: price,
                    cancelled: false,
                });
            }
        }
        // An add-on booked then cancelled before it started: no invoices, no revenue.
        if r.chance(0.03) && months >= 4 {
            let start = from
                .first_of_month()
                .add_months(r.between(1, (months - 2) as i64) as i32);
            let order_date = start.plus(-10);
            if order_date < p.as_of {
                let n = self.addons.len() as u32 + 1;
                self.addons.push(AddOn {
                    n,
                    parent,
                    order_date,
                    start,
                    end,
                    seats: r.between(1, 10),
                    seat_price_micros: price,
                    cancelled: true,
                });
            }
        }
    }

    /// The term (non-superseded) covering `d`.
    pub fn term_at(&self, d: Day) -> Option<&Term> {
        self.terms.iter().find(|t| t.start <= d && d < t.end)
    }

    /// Seats licensed on `d`: the term's plus active add-ons'.
    pub fn seats_at(&self, d: Day) -> i64 {
        let Some(t) = self.term_at(d) else { return 0 };
        let add: i64 = self
            .addons
            .iter()
            .filter(|x| !x.cancelled && x.parent == t.n && x.start <= d && d < x.end)
            .map(|x| x.seats)
            .sum();
        t.seats + add
    }

    /// Usage intensity relative to `base_units` on day `d` (deterministic; noise is added by callers).
    pub fn intensity(&self, d: Day) -> f64 {
        let age = d.minus(self.first_start).max(0) as f64;
        let s = &self.story;
        match self.archetype {
            Archetype::IdealPowerUser => 0.9 * rng::exp(s.growth * age),
            // Growth is drawn over the window, so it compounds from the first day with telemetry.
            Archetype::ExpansionReady => {
                0.9 * rng::exp(s.growth * d.minus(self.active_from).max(0) as f64)
            }
            Archetype::Activating => 0.15 + 0.85 * (1.0 - rng::exp(-age / 20.0)),
            Archetype::SurfaceOnlyAdopter => 0.45,
            Archetype::StalledOnboarding => 0.08 + 0.04 * (1.0 - rng::exp(-age / 10.0)),
            Archetype::ChampionLossDecliner => match s.champion_departure {
                Some(dep) if d >= dep => {
                    0.95 * (0.35 + 0.65 * rng::exp(-(d.minus(dep) as f64) / 30.0))
                }
                _ => 0.95,
            },
            Archetype::SpikeThenCrash => match s.spike {
                Some((st, en, mult, _)) if d >= st && d < en => {
                    let ramp = ((d.minus(st) + 1) as f64 / 2.0).min(1.0);
                    0.8 * (1.0 + (mult - 1.0) * ramp)
                }
                Some((_, en, _, crash)) if d >= en => 0.8 * crash,
                _ => 0.8,
            },
            Archetype::Seasonal => match s.season {
                Some((period, amp, phase)) => {
                    0.8 * (1.0
                        + amp
                            * rng::sin(
                                2.0 * std::f64::consts::PI * (d.0 + phase) as f64 / period as f64,
                            ))
                }
                None => 0.8,
            },
        }
    }

    /// Share of licensed seats active on day `d`.
    pub fn utilization(&self, d: Day, as_of: Day) -> f64 {
        let age = d.minus(self.first_start).max(0) as f64;
        let s = &self.story;
        match self.archetype {
            Archetype::IdealPowerUser => 0.74,
            Archetype::ExpansionReady => {
                // Rising past 80 % and staying there for the last months.
                let to_end = as_of.minus(d) as f64;
                if to_end <= 150.0 {
                    0.9
                } else {
                    (0.9 - (to_end - 150.0) / 2_000.0).max(0.72)
                }
            }
            Archetype::Activating => 0.10 + 0.45 * (1.0 - rng::exp(-age / 25.0)),
            Archetype::SurfaceOnlyAdopter => 0.36,
            Archetype::StalledOnboarding => 0.08,
            Archetype::ChampionLossDecliner => match s.champion_departure {
                Some(dep) if d >= dep => 0.35 + 0.37 * rng::exp(-(d.minus(dep) as f64) / 40.0),
                _ => 0.72,
            },
            Archetype::SpikeThenCrash => match s.spike {
                Some((st, en, _, _)) if d >= st && d < en => 0.9,
                Some((_, en, _, _)) if d >= en => 0.3,
                _ => 0.6,
            },
            Archetype::Seasonal => 0.55 + 0.25 * (self.intensity(d) / 0.8 - 1.0),
        }
    }

    /// Customer mood on day `d`, −1 … 1: drives call sentiment, NPS, tickets and QBR attendance.
    pub fn mood(&self, d: Day) -> f64 {
        let s = &self.story;
        match self.archetype {
            Archetype::IdealPowerUser => 0.65,
            Archetype::ExpansionReady => 0.6,
            Archetype::Activating => 0.5,
            Archetype::SurfaceOnlyAdopter => 0.1,
            Archetype::StalledOnboarding => -0.1,
            Archetype::Seasonal => 0.35,
            Archetype::ChampionLossDecliner => match s.champion_departure {
                Some(dep) if d >= dep => {
                    0.5 - 0.85 * (1.0 - rng::exp(-(d.minus(dep) as f64) / 20.0))
                }
                _ => 0.5,
            },
            Archetype::SpikeThenCrash => match s.spike {
                Some((_, en, _, _)) if d >= en => -0.15,
                _ => 0.4,
            },
        }
    }

    pub fn is_active(&self, d: Day) -> bool {
        d >= self.active_from && d < self.active_to
    }
}

fn commit_ratio(a: Archetype) -> f64 {
    match a {
        Archetype::IdealPowerUser => 1.15,
        Archetype::ExpansionReady => 0.9,
        Archetype::SpikeThenCrash => 1.0,
        _ => 1.0,
    }
}

impl Story {
    fn draw(p: &Resolved, r: &mut Rng, a: Archetype, active_from: Day) -> Story {
        let mut s = Story::default();
        let last = p.end;
        match a {
            Archetype::ChampionLossDecliner => {
                let lo = active_from.plus(90);
                let hi = last.plus(-75).max(lo);
                s.champion_departure = Some(Day(r.between(lo.0 as i64, hi.0 as i64) as i32));
            }
            Archetype::SpikeThenCrash => {
                let lo = active_from.plus(60);
                let hi = last.plus(-90).max(lo);
                let st = Day(r.between(lo.0 as i64, hi.0 as i64) as i32);
                let len = r.between(10, 21) as i32;
                s.spike = Some((st, st.plus(len), r.uniform(3.5, 5.0), r.uniform(0.25, 0.5)));
            }
            Archetype::Seasonal => {
                let period = *r.pick(&[28, 42, 56, 91]);
                s.season = Some((
                    period,
                    r.uniform(0.35, 0.55),
                    r.range(0, period as i64) as i32,
                ));
            }
            Archetype::ExpansionReady => {
                // 0.9 → about 1.5× over the window.
                let days = p.end.minus(active_from).max(200) as f64;
                s.growth = rng::ln(r.uniform(1.55, 1.8)) / days;
            }
            Archetype::IdealPowerUser => {
                s.growth = rng::ln(r.uniform(1.05, 1.2)) / 730.0;
            }
            _ => {}
        }
        s
    }
}

fn draw_services(
    p: &Resolved,
    r: &mut Rng,
    a: Archetype,
    seg: usize,
    start: Day,
) -> Vec<Milestone> {
    let k = r.between(2, 4) as usize;
    let (lo, hi) = [(20, 80), (50, 200), (100, 400)][seg];
    let mut out = Vec::new();
    for (i, name) in SERVICE_MILESTONES.iter().take(k).enumerate() {
        let planned = start.plus(20 + 25 * i as i32 + r.between(0, 5) as i32);
        let completed_day = planned.plus(r.between(-5, 20) as i32);
        let stalled = a == Archetype::StalledOnboarding && i > 0;
        let completed = (!stalled && completed_day < p.as_of).then_some(completed_day);
        // Most completions are signed off within two weeks; some wait (completion alone never recognises).
        let sign_off = completed.and_then(|c| {
            let s = c.plus(r.between(1, 14) as i32);
            (r.chance(0.9) && s < p.as_of).then_some(s)
        });
        out.push(Milestone {
            name,
            amount_cents: r.between(lo, hi) as i128 * 10_000,
            planned,
            completed,
            sign_off,
        });
    }
    out
}
