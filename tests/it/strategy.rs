//! The strategy models against the synthetic corpus' oracle, on a corpus of 1,000 accounts
//! built once (the strategy models and what they read):
//! - the cohort curves recover the churn the generator injected (`oracle/accounts.churn_date`),
//!   account by account;
//! - the ICP's vertical predicts outcomes the way the generator tied them (`plan::icp_vertical`);
//! - TOOL-015's decomposition recovers the injected price increases, backend-cost shocks, tier
//!   migrations and cost-feed gaps (`oracle/margin`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use gtmos::calendar::Day;
use gtmos::synth::params::SynthParams;

use crate::common::*;

/// The 1,000-account corpus (default faults) and the warehouse of `build --select tag:strategy`.
fn strategy_built() -> &'static (PathBuf, PathBuf) {
    static B: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    B.get_or_init(|| {
        let root = corpus()
            .parent()
            .unwrap()
            .join(format!("strategy-{}", std::process::id()));
        let snap = root.join("snapshot");
        let p = SynthParams {
            seed: 11,
            accounts: 1_000,
            ..SynthParams::default()
        };
        gtmos::synth::generate(&p, &snap, 2, false).expect("corpus generates");
        let wh = root.join("warehouse");
        let (code, out, err) = build(&snap, &wh, &["--select", "tag:strategy"]);
        assert_eq!(code, 0, "{out}\n{err}");
        (snap, wh)
    })
}

fn as_of(snapshot: &Path) -> Day {
    let manifest = gtmos::snapshot::Manifest::read(snapshot).unwrap();
    Day((manifest.as_of_micros().unwrap() / 86_400_000_000) as i32)
}

/// Quarter number (year × 4 + quarter − 1) of a day number.
fn quarter(day: i32) -> i32 {
    let d = Day(day);
    d.year() * 4 + (d.month() as i32 - 1) / 3
}

/// First day (day number) of a quarter number.
fn quarter_start(q: i32) -> i32 {
    Day::from_ymd(q.div_euclid(4), q.rem_euclid(4) as u32 * 3 + 1, 1)
        .unwrap()
        .0
}

#[test]
fn cohort_logo_curves_recover_the_injected_churn() {
    let (snap, wh) = strategy_built();
    let oracle = Table::read(snap, "oracle/accounts");
    let last_complete = quarter(as_of(snap).0) - 1;
    // Independently of the SQL: a customer signs in the quarter its first term starts (seat
    // revenue is recognised from that day), its base is the next quarter, and it is retained in
    // a quarter when it had not churned by the quarter's first day.
    let mut expected: BTreeMap<(i32, i32), (i64, i64)> = BTreeMap::new(); // (cohort, k) → (members, retained)
    let (starts, churns) = (oracle.date("first_term_start"), oracle.date("churn_date"));
    for (start, churn) in starts.iter().zip(&churns) {
        let Some(start) = start else { continue };
        let cohort = quarter(*start);
        let alive = |q: i32| churn.is_none_or(|c| c > quarter_start(q));
        if cohort + 1 > last_complete || !alive(cohort + 1) {
            continue; // no complete first full quarter, or gone before it: not a member
        }
        for k in 1..=12 {
            if cohort + k > last_complete {
                break;
            }
            let e = expected.entry((cohort, k)).or_default();
            e.0 += 1;
            e.1 += i64::from(alive(cohort + k));
        }
    }
    let t = Table::read(&wh.join("published"), "cohort_retention");
    let (cq, k) = (t.date("cohort_quarter"), t.i64("quarters_since"));
    let (members, retained) = (t.i64("cohort_accounts"), t.i64("retained_accounts"));
    let mut got = BTreeMap::new();
    for i in 0..t.rows {
        got.insert(
            (quarter(cq[i].unwrap()), k[i].unwrap() as i32),
            (members[i].unwrap(), retained[i].unwrap()),
        );
    }
    assert!(expected.len() > 20, "{} cohort cells", expected.len());
    assert!(
        expected.values().any(|(m, r)| r < m),
        "the corpus churns someone: the check can fail"
    );
    assert_eq!(got, expected);
}

/// One margin event of `oracle/margin`.
struct Event {
    kind: String,
    day: i32,
    magnitude: Option<f64>,
}

#[test]
fn gp_decomposition_recovers_the_injected_margin_events() {
    let (snap, wh) = strategy_built();
    let oracle = Table::read(snap, "oracle/margin");
    let mut events: BTreeMap<String, Vec<Event>> = BTreeMap::new();
    let (acct, kind, day, mag) = (
        oracle.s("account_id"),
        oracle.s("event"),
        oracle.date("effective_date"),
        oracle.f64("magnitude"),
    );
    for i in 0..oracle.rows {
        events.entry(acct[i].clone()).or_default().push(Event {
            kind: kind[i].clone(),
            day: day[i].unwrap(),
            magnitude: mag[i],
        });
    }
    let in_quarter = |a: &str, k: &str, q: i32| -> Vec<&Event> {
        events
            .get(a)
            .into_iter()
            .flatten()
            .filter(|e| e.kind == k && quarter(e.day) == q)
            .collect()
    };
    // From the snapshot's cost feed: the shared tier's cost, and each tier's units, per account
    // and quarter.
    let costs = Table::read(snap, "backend_costs");
    let mut shared: BTreeMap<(String, i32), i128> = BTreeMap::new();
    let mut tier_units: BTreeMap<(String, i32), BTreeMap<String, f64>> = BTreeMap::new();
    let (ca, cm, ct, cc, cu) = (
        costs.s("account_id"),
        costs.date("month"),
        costs.s("deployment_tier"),
        costs.dec("backend_cost_usd"),
        costs.f64("units"),
    );
    for i in 0..costs.rows {
        let key = (ca[i].clone(), quarter(cm[i].unwrap()));
        if ct[i] == "shared" {
            *shared.entry(key.clone()).or_default() += cc[i].unwrap();
        }
        *tier_units
            .entry(key)
            .or_default()
            .entry(ct[i].clone())
            .or_default() += cu[i].unwrap();
    }
    // How far rounding alone can move the backend-cost effect: q − 1's unit cost on a tier is
    // off by at most 1.5 cents ÷ its units (three months rounded to the cent), scaled to q's
    // units; q's own cost by 1.5 cents; the effect by half a cent.
    let rounding = |a: &str, q: i32| -> f64 {
        let now = tier_units.get(&(a.to_string(), q));
        let before = tier_units.get(&(a.to_string(), q - 1));
        let mut bound = 0.5;
        for (tier, u) in now.into_iter().flatten() {
            if let Some(p) = before.and_then(|b| b.get(tier)) {
                bound += 1.5 * u / p + 1.5;
            }
        }
        bound
    };

    let window_start = Day::parse(&SynthParams::default().start).unwrap().0;
    let t = Table::read(&wh.join("published"), "gp_decomposition");
    let (aq, qd) = (t.s("account_id"), t.date("quarter"));
    let (revenue, gp, prior) = (
        t.dec("revenue_usd"),
        t.dec("gross_profit_usd"),
        t.dec("prior_gross_profit_usd"),
    );
    let (pricing, util, backend, mix) = (
        t.dec("pricing_effect_usd"),
        t.dec("utilisation_effect_usd"),
        t.dec("backend_cost_effect_usd"),
        t.dec("tier_mix_effect_usd"),
    );
    let (cost_q, units) = (t.dec("backend_cost_usd"), t.f64("units"));
    let refusal = t.str("refusal_reason");
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for i in 0..t.rows {
        let (a, q) = (aq[i].as_str(), quarter(qd[i].unwrap()));
        // The feed starts with the corpus window: revenue before it has no cost either.
        let gap = (q - 1..=q).any(|x| !in_quarter(a, "cost_gap", x).is_empty())
            || quarter_start(q - 1) < window_start;
        let Some(pricing) = pricing[i] else {
            let why = refusal[i].as_deref().unwrap();
            if why.contains("nothing to compare") {
                let before = i > 0 && a == aq[i - 1] && quarter(qd[i - 1].unwrap()) == q - 1;
                assert!(!before, "{a} {q}: {why}, and a row for the quarter before");
            } else {
                assert!(
                    gap && why.contains("backend cost missing"),
                    "{a} {q}: {why}"
                );
            }
            *seen.entry("refused").or_default() += 1;
            continue;
        };
        assert!(!gap, "{a} {q}: a cost gap in {q} or before, and no refusal");
        let (util, backend, mix) = (util[i].unwrap(), backend[i].unwrap(), mix[i].unwrap());
        // Exact to the cent: the four effects are the change in gross profit.
        assert_eq!(
            pricing + util + backend + mix,
            gp[i].unwrap() - prior[i].unwrap(),
            "{a} {q}"
        );

        // Pricing moves only in the quarter of a price increase, and in the one after it when
        // the increase fell inside its quarter (that quarter's prices were a mix).
        let starts_quarter = |e: &&Event| Day(e.day).first_of_quarter().0 == e.day;
        let raise = in_quarter(a, "price_increase", q).into_iter().chain(
            in_quarter(a, "price_increase", q - 1)
                .into_iter()
                .filter(|e| !starts_quarter(e)),
        );
        match raise.collect::<Vec<_>>().first() {
            None => assert_eq!(pricing, 0, "{a} {q}: a pricing effect and no price change"),
            Some(e) => {
                // At most the whole quarter's revenue × (1 − old ÷ new price).
                let full = revenue[i].unwrap() as f64 * (1.0 - 1.0 / e.magnitude.unwrap());
                assert!(
                    pricing > 0 && pricing as f64 <= full + 1.0,
                    "{a} {q}: pricing {pricing}, at most {full}"
                );
                if quarter(e.day) == q && starts_quarter(e) {
                    // Every unit of q at the new price, every unit of q − 1 at the old one.
                    assert!(
                        (pricing as f64 - full).abs() <= 1.0,
                        "{a} {q}: pricing {pricing}, want {full}"
                    );
                    *seen.entry("price_increase_exact").or_default() += 1;
                }
                *seen.entry("price_increase").or_default() += 1;
            }
        }

        // Backend cost moves only with a cost shock: by the shared tier's cost × (1 − old/new).
        let cost = shared.get(&(a.to_string(), q)).copied().unwrap_or(0) as f64;
        match in_quarter(a, "cost_shock", q).first() {
            Some(e) => {
                let want = -cost * (1.0 - 1.0 / e.magnitude.unwrap());
                assert!(
                    (backend as f64 - want).abs() <= 2.0 + want.abs() * 0.002,
                    "{a} {q}: backend {backend}, want {want}"
                );
                *seen.entry("cost_shock").or_default() += 1;
            }
            // Unit costs are constant: only the cents each month's cost was rounded to remain.
            None => assert!(
                backend.abs() as f64 <= rounding(a, q),
                "{a} {q}: backend effect {backend} and no shock"
            ),
        }

        // Tier mix moves only with a migration, in GP's favour (dedicated is cheaper).
        match in_quarter(a, "tier_migration", q).first() {
            Some(_) => {
                assert!(
                    mix > 0,
                    "{a} {q}: tier mix {mix} after a migration to dedicated"
                );
                *seen.entry("tier_migration").or_default() += 1;
            }
            // Whole units per tier: the split may move a unit per tier and month between
            // tiers, worth at most six average units in a quarter.
            None => {
                let unit = cost_q[i].unwrap() as f64 / units[i].unwrap().max(1.0);
                assert!(
                    mix.abs() as f64 <= 6.0 * unit + 1.0,
                    "{a} {q}: tier mix {mix} and no migration (a unit costs {unit})"
                );
            }
        }
    }
    for what in [
        "refused",
        "price_increase",
        "price_increase_exact",
        "cost_shock",
        "tier_migration",
    ] {
        assert!(
            seen.get(what).copied().unwrap_or(0) >= 3,
            "too few {what}: {seen:?}"
        );
    }
    // Every injected gap was refused somewhere.
    let gaps: BTreeSet<&String> = events
        .iter()
        .filter(|(_, v)| v.iter().any(|e| e.kind == "cost_gap"))
        .map(|(a, _)| a)
        .collect();
    assert!(!gaps.is_empty());
    for g in gaps {
        assert!(
            (0..t.rows).any(|i| &aq[i] == g
                && refusal[i]
                    .as_deref()
                    .is_some_and(|r| r.contains("backend cost missing"))),
            "{g}: its cost gap was never refused"
        );
    }
}

/// The generator puts healthy customers (ideal power users, expansion-ready) in the ICP's target
/// verticals and declining ones (champion loss, spike then crash, surface only, stalled
/// onboarding) outside the target and adjacent lists, more often than chance. Over all cohorts,
/// the target band must then churn less and retain more revenue than the other band, and the
/// ICP tiers must order NRR and churn the same way.
#[test]
fn the_icp_predicts_outcomes_as_injected() {
    let (snap, wh) = strategy_built();
    // The injection itself, from the oracle: healthy and declining customers per vertical band.
    let accounts = Table::read(snap, "accounts");
    let oracle = Table::read(snap, "oracle/accounts");
    let vertical: BTreeMap<String, String> = accounts
        .s("account_id")
        .into_iter()
        .zip(accounts.s("vertical"))
        .collect();
    let band = |v: &str| match v {
        "SaaS" | "FinTech" | "Cybersecurity" => "target",
        "HealthTech" | "HR Tech" => "adjacent",
        _ => "other",
    };
    let mut story: BTreeMap<&str, (u32, u32)> = BTreeMap::new(); // band → (healthy, declining)
    for (a, arch) in oracle.s("account_id").iter().zip(oracle.str("archetype")) {
        let e = story.entry(band(&vertical[a])).or_default();
        match arch.as_deref() {
            Some("ideal_power_user" | "expansion_ready") => e.0 += 1,
            Some(
                "champion_loss_decliner"
                | "spike_then_crash"
                | "surface_only_adopter"
                | "stalled_onboarding",
            ) => e.1 += 1,
            _ => {}
        }
    }
    let healthy_share = |b: &str| story[b].0 as f64 / (story[b].0 + story[b].1) as f64;
    assert!(
        healthy_share("target") > healthy_share("other") + 0.3,
        "the corpus ties the vertical to the story: {story:?}"
    );

    let t = Table::read(&wh.join("published"), "icp_outcomes");
    let (dim, bands, cohort) = (t.s("dimension"), t.s("band"), t.s("cohort"));
    let (churn, nrr) = (t.f64("churn_rate_pct"), t.f64("nrr_pct"));
    let mut got: BTreeMap<(String, String), (f64, f64)> = BTreeMap::new();
    for i in 0..t.rows {
        if cohort[i] == "ALL" {
            got.insert(
                (dim[i].clone(), bands[i].clone()),
                (churn[i].unwrap(), nrr[i].unwrap()),
            );
        }
    }
    let at = |d: &str, b: &str| got[&(d.to_string(), b.to_string())];
    let (target, other) = (at("vertical", "target"), at("vertical", "other"));
    assert!(
        target.0 < other.0,
        "churn: target {target:?}, other {other:?}"
    );
    assert!(
        target.1 > other.1,
        "NRR: target {target:?}, other {other:?}"
    );
    let (t1, t2, t3) = (
        at("icp_tier", "T1"),
        at("icp_tier", "T2"),
        at("icp_tier", "T3"),
    );
    assert!(
        t1.1 > t3.1 && t2.1 > t3.1,
        "NRR by tier: {t1:?} {t2:?} {t3:?}"
    );
    assert!(t2.0 < t3.0, "churn by tier: {t2:?} {t3:?}");
}

/// Without the cost feed at all (`backend_costs` is optional), nothing is decomposed: every
/// customer-quarter is published with its revenue and the refusal, none with an effect.
#[test]
fn without_backend_costs_every_quarter_is_refused() {
    let (snap, _) = strategy_built();
    let dir = tempdir();
    let copy = dir.path().join("snapshot");
    copy_dir(snap, &copy);
    std::fs::remove_file(copy.join("backend_costs.parquet")).unwrap();
    std::fs::remove_file(copy.join("manifest.json")).unwrap();
    let as_of = format!("{}T00:00:00Z", as_of(snap).iso());
    let (code, _, err) = gtmos(&["snapshot", "init", ".", "--as-of", &as_of], &copy);
    assert_eq!(code, 0, "{err}");
    let wh = dir.path().join("warehouse");
    let (code, out, err) = build(&copy, &wh, &["--select", "gp_decomposition"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let t = Table::read(&wh.join("published"), "gp_decomposition");
    assert!(t.rows > 100, "{} rows", t.rows);
    let refusals = t.str("refusal_reason");
    let pricing = t.dec("pricing_effect_usd");
    for i in 0..t.rows {
        assert!(pricing[i].is_none());
        let why = refusals[i].as_deref().unwrap();
        assert!(
            why.contains("backend cost missing for") || why.contains("nothing to compare"),
            "{why}"
        );
    }
    assert_eq!(t.dec("backend_cost_usd"), vec![Some(0); t.rows]);
}
