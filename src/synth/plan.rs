//! The corpus plan: what is decided for every account before any row is generated.
//!
//! Archetypes are dealt with exact counts (largest remainder, then a seeded shuffle), so a small
//! corpus still has every archetype its mix asks for. Faults are assigned to eligible accounts
//! here too, so each class appears exactly the configured number of times. Everything else
//! about an account is drawn from its own streams when its rows are generated.

use std::collections::BTreeMap;

use rayon::prelude::*;

use super::catalog::*;
use super::params::{Archetype, FaultClass, RateUnit, Resolved};
use super::rng::Rng;
use crate::calendar::Day;

/// The id of account `idx` (0-based).
pub fn account_id(idx: u32) -> String {
    format!("ACC-{:06}", idx + 1)
}

#[derive(Debug, Clone)]
pub struct AccountPlan {
    pub idx: u32,
    /// None for prospects.
    pub archetype: Option<Archetype>,
    pub segment: usize,
    pub geo: usize,
    pub vertical: usize,
    pub channel: usize,
    /// First day of the first contract (always the 1st of a month in synthetic data).
    pub first_term_start: Option<Day>,
    pub has_consumption: bool,
    pub has_services: bool,
    /// Prospects only: 0 = no opportunity, 1 = lost, 2 = open.
    pub prospect_stage: u8,
}

impl AccountPlan {
    pub fn is_customer(&self) -> bool {
        self.archetype.is_some()
    }
}

#[derive(Debug, Clone)]
pub struct Rep {
    pub id: String,
    pub name: String,
    pub role: &'static str,
    pub segment: usize,
    pub geo: usize,
    pub hire: Day,
    pub quota_cents: Option<i64>,
}

/// Every rep, and for each role × segment × geo the range of rep indices that cover it.
#[derive(Debug, Clone)]
pub struct Roster {
    pub reps: Vec<Rep>,
    ranges: BTreeMap<(&'static str, usize, usize), (usize, usize)>,
}

pub const ROLES: [&str; 5] = ["AE", "AM", "CSM", "SDR", "SE"];

impl Roster {
    fn build(p: &Resolved) -> Roster {
        // Accounts (AE, SDR, SE) or customers (AM, CSM) covered by one rep, by segment.
        let per_rep = |role: &str| -> [f64; 3] {
            match role {
                "AE" => [80.0, 40.0, 15.0],
                "AM" => [120.0, 50.0, 15.0],
                "CSM" => [100.0, 40.0, 12.0],
                "SDR" => [160.0, 120.0, 60.0],
                _ => [300.0, 100.0, 40.0],
            }
        };
        let mut rng = Rng::stream(p.seed, "reps", 0, 0);
        let mut reps = Vec::new();
        let mut ranges = BTreeMap::new();
        for role in ROLES {
            for seg in 0..3 {
                for geo in 0..4 {
                    let load = p.accounts as f64 * SEGMENT_WEIGHTS[seg] * GEO_WEIGHTS[geo];
                    let n = ((load / per_rep(role)[seg]).ceil() as usize).max(1);
                    let from = reps.len();
                    for _ in 0..n {
                        let k = reps.len() + 1;
                        let quota = match role {
                            "AE" => Some([600_000, 900_000, 1_400_000][seg] * 100),
                            "AM" => Some([500_000, 800_000, 1_200_000][seg] * 100),
                            "SDR" => Some(150_000 * 100),
                            _ => None,
                        };
                        reps.push(Rep {
                            id: format!("REP-{k:04}"),
                            name: format!("{} {}", rng.pick(&FIRST_NAMES), rng.pick(&LAST_NAMES)),
                            role,
                            segment: seg,
                            geo,
                            hire: p.start.plus(-(rng.between(60, 2_000) as i32)),
                            quota_cents: quota,
                        });
                    }
                    ranges.insert((role, seg, geo), (from, reps.len()));
                }
            }
        }
        Roster { reps, ranges }
    }

    /// A rep of `role` covering the segment and geo, drawn with `rng`.
    pub fn pick(&self, rng: &mut Rng, role: &'static str, segment: usize, geo: usize) -> &Rep {
        let (from, to) = self
            .ranges
            .get(&(role, segment, geo))
            .copied()
            .unwrap_or((0, 1));
        &self.reps[rng.range(from as i64, to as i64) as usize]
    }
}

/// Faults assigned before generation: per account, and per month for month-level classes.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    pub by_account: BTreeMap<u32, Vec<FaultClass>>,
    /// Month index (see `Day::month_index`) → classes placed in that month.
    pub by_month: BTreeMap<i32, Vec<FaultClass>>,
    /// Class → (requested, placed).
    pub counts: BTreeMap<FaultClass, (u64, u64)>,
}

impl FaultPlan {
    pub fn for_account(&self, idx: u32) -> &[FaultClass] {
        self.by_account.get(&idx).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn has(&self, idx: u32, f: FaultClass) -> bool {
        self.for_account(idx).contains(&f)
    }
}

pub struct Plan {
    pub accounts: Vec<AccountPlan>,
    pub roster: Roster,
    pub faults: FaultPlan,
}

/// How many faults of a class to place: none at rate 0, else at least one.
pub fn fault_count(rate: f64, units: u64) -> u64 {
    if rate <= 0.0 {
        0
    } else {
        ((rate * units as f64).round() as u64).max(1)
    }
}

pub fn build(p: &Resolved) -> Plan {
    let n = p.accounts as usize;
    let archetypes = deal_archetypes(p);
    let accounts: Vec<AccountPlan> = (0..n)
        .into_par_iter()
        .map(|i| plan_account(p, i as u32, archetypes[i]))
        .collect();
    let roster = Roster::build(p);
    let faults = assign_faults(p, &accounts);
    Plan {
        accounts,
        roster,
        faults,
    }
}

fn deal_archetypes(p: &Resolved) -> Vec<Option<Archetype>> {
    let n = p.accounts as usize;
    let prospects = ((n as f64) * p.prospect_share).round() as usize;
    let customers = n - prospects.min(n);
    let total: f64 = p.mix.iter().map(|m| m.1).sum();
    // Largest remainder: exact counts that sum to `customers`.
    let quotas: Vec<f64> = p
        .mix
        .iter()
        .map(|(_, w)| customers as f64 * w / total)
        .collect();
    let mut counts: Vec<usize> = quotas.iter().map(|q| q.floor() as usize).collect();
    let mut rest = customers - counts.iter().sum::<usize>();
    let mut order: Vec<usize> = (0..quotas.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (quotas[a] - quotas[a].floor(), quotas[b] - quotas[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    for &i in order.iter().cycle().take(quotas.len() * 2) {
        if rest == 0 {
            break;
        }
        if quotas[i] > 0.0 {
            counts[i] += 1;
            rest -= 1;
        }
    }
    let mut deal: Vec<Option<Archetype>> = Vec::with_capacity(n);
    for (i, (a, _)) in p.mix.iter().enumerate() {
        deal.extend(std::iter::repeat_n(Some(*a), counts[i]));
    }
    deal.resize(n, None);
    Rng::stream(p.seed, "archetypes", 0, 0).shuffle(&mut deal);
    deal
}

fn plan_account(p: &Resolved, idx: u32, archetype: Option<Archetype>) -> AccountPlan {
    let mut r = Rng::stream(p.seed, "plan", idx as u64, 0);
    let segment = r.weighted(&SEGMENT_WEIGHTS);
    let geo = r.weighted(&GEO_WEIGHTS);
    let vertical = icp_vertical(
        p,
        idx,
        archetype,
        r.range(0, VERTICALS.len() as i64) as usize,
    );
    let channel = r.weighted(&CHANNEL_WEIGHTS);
    let first_term_start = archetype.map(|a| first_term_start(p, &mut r, a));
    let has_consumption = match archetype {
        // Their stories are told in consumption: overage, and a spike against a baseline.
        Some(Archetype::ExpansionReady | Archetype::SpikeThenCrash) => true,
        Some(Archetype::SurfaceOnlyAdopter) => r.chance(0.5),
        Some(_) => r.chance(0.65),
        None => false,
    };
    let has_services = match archetype {
        Some(Archetype::Activating | Archetype::StalledOnboarding) => r.chance(0.8),
        Some(_) => r.chance(if segment == 0 { 0.25 } else { 0.6 }),
        None => false,
    };
    let prospect_stage = if archetype.is_none() {
        r.weighted(&[0.15, 0.35, 0.50]) as u8
    } else {
        0
    };
    AccountPlan {
        idx,
        archetype,
        segment,
        geo,
        vertical,
        channel,
        first_term_start,
        has_consumption,
        has_services,
        prospect_stage,
    }
}

/// The account's vertical, tied to its story so the ICP predicts (the truth
/// `icp_outcome_brain_view` must show): with probability `ICP_PULL`, from its own stream, a
/// healthy customer (ideal power user, expansion ready) is in a target vertical and a
/// declining one (champion loss, spike then crash, surface only, stalled onboarding) in a
/// vertical outside the target and adjacent lists; otherwise, and for every other account,
/// the vertical drawn uniformly.
fn icp_vertical(p: &Resolved, idx: u32, archetype: Option<Archetype>, drawn: usize) -> usize {
    let mut r = Rng::stream(p.seed, "icp-fit", idx as u64, 0);
    let pull = r.chance(ICP_PULL);
    let k = r.range(0, 3) as usize;
    let pool = match archetype {
        Some(Archetype::IdealPowerUser | Archetype::ExpansionReady) => ICP_TARGET_VERTICALS,
        Some(
            Archetype::ChampionLossDecliner
            | Archetype::SpikeThenCrash
            | Archetype::SurfaceOnlyAdopter
            | Archetype::StalledOnboarding,
        ) => ICP_OTHER_VERTICALS,
        _ => return drawn,
    };
    if pull { pool[k] } else { drawn }
}

/// First-of-month contract start that leaves room for the archetype's story.
fn first_term_start(p: &Resolved, r: &mut Rng, a: Archetype) -> Day {
    let first_month = if p.start.day_of_month() == 1 {
        p.start
    } else {
        p.start.first_of_month().add_months(1)
    };
    let last_complete = p.as_of.plus(-1).first_of_month();
    // A start between the window's first month and `latest_gap` months before its last.
    let months_in = |r: &mut Rng, latest_gap: i32| -> Day {
        let span = (last_complete.month_index() - latest_gap - first_month.month_index()).max(0);
        first_month.add_months(r.between(0, span as i64) as i32)
    };
    match a {
        Archetype::Activating => {
            let d = p.as_of.plus(-30).first_of_month();
            if p.as_of.minus(d) >= 60 {
                d.add_months(1)
            } else {
                d
            }
        }
        Archetype::StalledOnboarding => last_complete.add_months(-(r.between(1, 3) as i32)),
        Archetype::ChampionLossDecliner
        | Archetype::ExpansionReady
        | Archetype::Seasonal
        | Archetype::SpikeThenCrash => {
            if r.chance(0.5) {
                first_month.add_months(-(r.between(1, 24) as i32))
            } else {
                months_in(r, 9)
            }
        }
        Archetype::IdealPowerUser | Archetype::SurfaceOnlyAdopter => {
            if r.chance(0.45) {
                first_month.add_months(-(r.between(1, 24) as i32))
            } else {
                months_in(r, 4)
            }
        }
    }
}

fn assign_faults(p: &Resolved, accounts: &[AccountPlan]) -> FaultPlan {
    let mut plan = FaultPlan::default();
    let early = p.start.first_of_month().add_months(2);
    for (k, class) in FaultClass::ALL.into_iter().enumerate() {
        let rate = p.rate(class);
        let mut rng = Rng::stream(p.seed, "faults", k as u64, 0);
        match class.rate_unit() {
            RateUnit::Month => {
                let months = p.months_in_window() as usize;
                let want = fault_count(rate, months as u64);
                let picked = rng.sample_indices(months, want as usize);
                for m in &picked {
                    plan.by_month
                        .entry(p.start.month_index() + *m as i32)
                        .or_default()
                        .push(class);
                }
                plan.counts.insert(class, (want, picked.len() as u64));
            }
            RateUnit::Account => {
                let eligible: Vec<u32> = accounts
                    .iter()
                    .filter(|a| eligible(class, a, early))
                    .map(|a| a.idx)
                    .collect();
                let want = fault_count(rate, p.accounts);
                let picked = rng.sample_indices(eligible.len(), want as usize);
                for i in &picked {
                    plan.by_account.entry(eligible[*i]).or_default().push(class);
                }
                plan.counts.insert(class, (want, picked.len() as u64));
            }
        }
    }
    plan
}

fn eligible(class: FaultClass, a: &AccountPlan, early: Day) -> bool {
    use FaultClass as F;
    match class {
        F::OpportunityEnumDrift | F::MissingOwner => a.archetype.is_none() && a.prospect_stage == 2,
        F::UsageAnomaly | F::DisputedUsage | F::ReferenceUsageDiscrepancy => {
            a.is_customer() && a.has_consumption
        }
        F::Restatement => a.first_term_start.is_some_and(|d| d <= early),
        F::ReferenceGlDiscrepancy | F::SpendOutOfRange => false,
        _ => a.is_customer(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::params::SynthParams;

    fn resolved(accounts: u64) -> Resolved {
        let p = SynthParams {
            accounts,
            ..SynthParams::default()
        };
        p.resolve().unwrap()
    }

    #[test]
    fn archetype_counts_are_exact() {
        let p = resolved(1_000);
        let plan = build(&p);
        let prospects = plan
            .accounts
            .iter()
            .filter(|a| a.archetype.is_none())
            .count();
        assert_eq!(prospects, 200);
        let ideal = plan
            .accounts
            .iter()
            .filter(|a| a.archetype == Some(Archetype::IdealPowerUser))
            .count();
        assert_eq!(ideal, 128); // 800 × 0.16
    }

    #[test]
    fn faults_are_placed_with_the_configured_count() {
        let p = resolved(1_000);
        let plan = build(&p);
        for (class, (want, placed)) in &plan.faults.counts {
            assert_eq!(want, placed, "{}", class.name());
        }
        assert_eq!(plan.faults.counts[&FaultClass::DuplicateEvent], (10, 10));
        assert_eq!(plan.faults.counts[&FaultClass::SpendOutOfRange], (0, 0));
        assert_eq!(plan.faults.counts[&FaultClass::ReferenceGlDiscrepancy].0, 1);
    }

    #[test]
    fn story_starts_fit_the_window() {
        let p = resolved(400);
        let plan = build(&p);
        for a in &plan.accounts {
            let (Some(arch), Some(d)) = (a.archetype, a.first_term_start) else {
                continue;
            };
            assert_eq!(d.day_of_month(), 1);
            let age = p.as_of.minus(d);
            match arch {
                Archetype::Activating => assert!((29..60).contains(&age), "{age}"),
                Archetype::StalledOnboarding => assert!((60..=123).contains(&age), "{age}"),
                _ => assert!(age >= 120, "{arch:?} {age}"),
            }
        }
    }
}
