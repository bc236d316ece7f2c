//! Company-level tables, drawn from the totals of every account once all are generated: reps,
//! go-to-market spend, quarterly financials, the FP&A plan versions and the general-ledger
//! deferred-revenue reference (with its labelled discrepancies).

use arrow::array::RecordBatch;

use super::catalog::*;
use super::oracle;
use super::params::{FaultClass, Resolved};
use super::plan::{FaultPlan, Roster};
use super::rng::Rng;
use super::summary::Summary;
use super::tables::*;
use crate::calendar::{Day, month_start};
use crate::error::Result;
use crate::money::format_cents;
use crate::schema::Registry;

/// (table name, batch) of every company table, plus the oracle rows they add.
pub fn generate(
    p: &Resolved,
    reg: &Registry,
    roster: &Roster,
    faults: &FaultPlan,
    s: &Summary,
) -> Result<Vec<(&'static str, RecordBatch)>> {
    let mut oracle = Tb::new(builder(reg, "oracle/faults")?, OracleFaults::new)?;
    let out = vec![
        ("reps", reps(reg, roster)?),
        ("gtm_spend", spend(p, reg, faults, s, &mut oracle)?),
        ("financials", financials(p, reg, s)?),
        ("fpa_plan", plan(p, reg, s)?),
        ("price_tests", price_tests(p, reg)?),
        ("routing_shadow_log", routing_shadow_log(p, reg, roster)?),
        (
            "reference_gl",
            general_ledger(p, reg, faults, s, &mut oracle)?,
        ),
        ("oracle/faults", oracle.b.finish()?),
    ];
    Ok(out)
}

fn reps(reg: &Registry, roster: &Roster) -> Result<RecordBatch> {
    let mut t = Tb::new(builder(reg, "reps")?, Reps::new)?;
    for rep in &roster.reps {
        t.b.str(t.c.rep_id, &rep.id);
        t.b.str(t.c.full_name, &rep.name);
        t.b.str(t.c.role, rep.role);
        t.b.str(t.c.segment, SEGMENTS[rep.segment]);
        t.b.str(t.c.geo, GEOS[rep.geo]);
        t.b.date(t.c.hire_date, rep.hire.0);
        t.b.opt_dec(t.c.annual_quota_usd, rep.quota_cents.map(|c| c as i128));
        t.b.end_row();
    }
    t.b.finish()
}

/// First tracked slot of the window, and the window's last slot.
fn window_slots(p: &Resolved, s: &Summary) -> (usize, usize) {
    (
        s.slot(p.start.month_index()).unwrap_or(0),
        s.slot(p.end.month_index()).unwrap_or(s.len() - 1),
    )
}

/// Sales and marketing spend per dollar of new ARR, by segment (SMB, MM, ENT): CAC ratios of
/// 1.2, 1.0 and 0.45, so cohort paybacks (12 × ratio ÷ gross margin) sit near 19, 16 and 7
/// months, and an enterprise logo (median new ARR about $1.2M) costs under the Decision OS
/// bound of $1M to acquire.
const SALES_PER_NEW_ARR: [f64; 3] = [0.75, 0.65, 0.30];
const MARKETING_PER_NEW_ARR: [f64; 3] = [0.45, 0.35, 0.15];

fn spend(
    p: &Resolved,
    reg: &Registry,
    faults: &FaultPlan,
    s: &Summary,
    o: &mut Tb<OracleFaults>,
) -> Result<RecordBatch> {
    let mut t = Tb::new(builder(reg, "gtm_spend")?, GtmSpend::new)?;
    let mut r = Rng::stream(p.seed, "spend", 0, 0);
    let (w0, w1) = window_slots(p, s);
    let first = w0.saturating_sub(12);
    // Sales and marketing spend follows each segment × channel's new bookings of the month
    // (by term start: the cohort the Decision OS payback divides the month's spend by), over
    // a fixed floor. Smoothed over neighbouring months instead, a month with fewer new logos
    // than its neighbours carried their spend, and 42 of the default corpus's cohort paybacks
    // passed the 36-month bound that blocks publishing.
    let cumulative_channel_share = |slot: usize, seg: usize| -> [f64; 5] {
        let mut v = [1.0; 5];
        for row in &s.new_arr[..=slot] {
            for (c, x) in v.iter_mut().enumerate() {
                *x += row[seg][c] as f64;
            }
        }
        let total: f64 = v.iter().sum();
        v.map(|x| x / total)
    };
    for slot in first..=w1 {
        let month = month_start(s.month0 + slot as i32);
        let bad = faults
            .by_month
            .get(&month.month_index())
            .is_some_and(|v| v.contains(&FaultClass::SpendOutOfRange));
        let bad_cell = bad.then(|| (r.range(0, 5) as usize, r.range(0, 3) as usize));
        for (ch, channel) in CHANNELS.iter().enumerate() {
            for (cat, category) in ["sales", "marketing", "customer_success"]
                .iter()
                .enumerate()
            {
                for (seg, segment) in SEGMENTS.iter().enumerate() {
                    let floor = 150_000.0
                        * SEGMENT_WEIGHTS[seg]
                        * CHANNEL_WEIGHTS[ch]
                        * (p.accounts as f64 / 100.0).max(1.0);
                    let booked = s.new_arr[slot][seg][ch] as f64;
                    let cents = match cat {
                        0 => SALES_PER_NEW_ARR[seg] * booked + floor,
                        1 => {
                            MARKETING_PER_NEW_ARR[seg]
                                * booked
                                * if *channel == "events" { 1.6 } else { 1.0 }
                                + 0.6 * floor
                        }
                        _ => {
                            0.06 * s.recurring[seg][slot] as f64
                                * cumulative_channel_share(slot, seg)[ch]
                        }
                    } * r.uniform(0.9, 1.1);
                    let mut cents = cents.round() as i128;
                    if bad_cell == Some((ch, seg)) && cat == 1 {
                        cents = -(r.between(100_000, 5_000_000) as i128);
                        let key = format!("{}|{channel}|{category}|{segment}", month.iso());
                        oracle::label(
                            o,
                            FaultClass::SpendOutOfRange,
                            "month|channel|category|segment",
                            &key,
                            &format!("amount_usd {}", format_cents(cents)),
                            Some(month.0),
                        );
                    }
                    t.b.date(t.c.month, month.0);
                    t.b.str(t.c.channel, channel);
                    t.b.str(t.c.category, category);
                    t.b.str(t.c.segment, segment);
                    t.b.dec(t.c.amount_usd, cents);
                    t.b.end_row();
                }
            }
        }
    }
    t.b.finish()
}

fn financials(p: &Resolved, reg: &Registry, s: &Summary) -> Result<RecordBatch> {
    let mut t = Tb::new(builder(reg, "financials")?, Financials::new)?;
    let mut r = Rng::stream(p.seed, "financials", 0, 0);
    let (_, w1) = window_slots(p, s);
    // Whole quarters inside the tracked range.
    let mut q = month_start(s.month0).first_of_quarter();
    if q.month_index() < s.month0 {
        q = q.add_months(3);
    }
    while q.month_index() + 2 <= s.month0 + w1 as i32 {
        let revenue: i128 = (0..3)
            .filter_map(|k| s.slot(q.month_index() + k))
            .map(|i| s.revenue(i))
            .sum();
        if revenue > 0 {
            let margin = (r.uniform(70.0, 78.0) * 10.0).round() / 10.0;
            let ebitda = (revenue as f64 * r.uniform(0.05, 0.2)).round() as i128;
            let operating = ebitda - (revenue as f64 * 0.03).round() as i128;
            let fcf = (ebitda as f64 * r.uniform(0.8, 1.1)).round() as i128;
            t.b.date(t.c.quarter_start, q.0);
            t.b.dec(t.c.revenue_usd, revenue);
            t.b.f64(t.c.gross_margin_pct, margin);
            t.b.dec(t.c.ebitda_usd, ebitda);
            t.b.dec(t.c.fcf_usd, fcf);
            t.b.dec(t.c.operating_income_usd, operating);
            t.b.end_row();
        }
        q = q.add_months(3);
    }
    t.b.finish()
}

fn plan(p: &Resolved, reg: &Registry, s: &Summary) -> Result<RecordBatch> {
    let mut t = Tb::new(builder(reg, "fpa_plan")?, FpaPlan::new)?;
    let mut r = Rng::stream(p.seed, "plan", 0, 0);
    let (_, w1) = window_slots(p, s);
    let last_actual = s.month0 + w1 as i32;
    // Actual recurring revenue of a month and segment (None = ALL); extrapolated past the window.
    let actual = |month: i32, seg: Option<usize>| -> f64 {
        let m = month.min(last_actual);
        let v = match (s.slot(m), seg) {
            (Some(i), Some(g)) => s.recurring[g][i] as f64,
            (Some(i), None) => (0..3).map(|g| s.recurring[g][i] as f64).sum(),
            _ => 0.0,
        };
        v * libm::pow(1.015, (month - m).max(0) as f64) / 100.0
    };
    let booked = |q: Day, seg: Option<usize>| -> f64 {
        (0..3)
            .filter_map(|k| s.slot(q.month_index() + k))
            .map(|i| match seg {
                Some(g) => s.new_arr[i][g].iter().sum::<i128>() as f64,
                None => s.new_arr[i].iter().flatten().sum::<i128>() as f64,
            })
            .sum::<f64>()
            / 100.0
    };
    let segments: [(Option<usize>, &str); 4] = [
        (Some(0), "SMB"),
        (Some(1), "MM"),
        (Some(2), "ENT"),
        (None, "ALL"),
    ];
    for year in p.start.year()..=p.end.year() + 1 {
        let versions = [
            ("0+12", Day::from_ymd(year - 1, 12, 10), true),
            ("3+9", Day::from_ymd(year, 4, 10), false),
            ("6+6", Day::from_ymd(year, 7, 10), false),
            ("9+3", Day::from_ymd(year, 10, 10), false),
        ];
        for (version, asof, board) in versions {
            let Some(asof) = asof else { continue };
            if asof >= p.as_of {
                continue;
            }
            let ambition = if board { r.uniform(1.04, 1.12) } else { 1.0 };
            let row = |t: &mut Tb<FpaPlan>,
                       period: Day,
                       grain: &str,
                       segment: &str,
                       metric: &str,
                       value: f64| {
                t.b.str(t.c.plan_version, version);
                t.b.date(t.c.reforecast_as_of_date, asof.0);
                t.b.bool(t.c.is_board_plan, board);
                t.b.date(t.c.period_start, period.0);
                t.b.str(t.c.period_grain, grain);
                t.b.str(t.c.segment, segment);
                t.b.str(t.c.metric_name, metric);
                t.b.f64(t.c.target_value, value);
                t.b.end_row();
            };
            for m in 1..=12 {
                let Some(period) = Day::from_ymd(year, m, 1) else {
                    continue;
                };
                let factor = |r: &mut Rng| {
                    if board {
                        ambition * r.uniform(0.99, 1.01)
                    } else if period < asof {
                        r.uniform(0.995, 1.005)
                    } else {
                        r.uniform(0.96, 1.06)
                    }
                };
                for (seg, name) in segments {
                    let v = actual(period.month_index(), seg) * factor(&mut r);
                    row(
                        &mut t,
                        period,
                        "month",
                        name,
                        "recurring_revenue",
                        v.round(),
                    );
                }
                let nrr = if board {
                    110.0
                } else {
                    ((106.0 + r.uniform(-2.0, 2.0)) * 10.0).round() / 10.0
                };
                let grr = if board {
                    92.0
                } else {
                    ((89.0 + r.uniform(-1.0, 1.0)) * 10.0).round() / 10.0
                };
                row(&mut t, period, "month", "ALL", "nrr", nrr);
                row(&mut t, period, "month", "ALL", "grr", grr);
            }
            for qm in [1, 4, 7, 10] {
                let Some(q) = Day::from_ymd(year, qm, 1) else {
                    continue;
                };
                for (seg, name) in segments {
                    let base = booked(q, seg)
                        .max(booked(month_start(last_actual).first_of_quarter(), seg));
                    let v = base
                        * if board {
                            ambition
                        } else {
                            r.uniform(0.95, 1.05)
                        };
                    row(&mut t, q, "quarter", name, "new_bookings", v.round());
                }
                let rf =
                    |r: &mut Rng, lo: f64, hi: f64| (r.uniform(lo, hi) * 100.0).round() / 100.0;
                let (mn, cac, r40) = if board {
                    (0.9, 16.0, 40.0)
                } else {
                    (
                        rf(&mut r, 0.75, 0.85),
                        rf(&mut r, 18.0, 20.0),
                        rf(&mut r, 30.0, 38.0),
                    )
                };
                row(&mut t, q, "quarter", "ALL", "magic_number", mn);
                row(&mut t, q, "quarter", "ALL", "cac_payback_months", cac);
                row(&mut t, q, "quarter", "ALL", "rule_of_40", r40);
                row(&mut t, q, "quarter", "ALL", "pipeline_coverage", 3.0);
            }
        }
    }
    t.b.finish()
}

/// List-price tests: each segment tests a raise twice a year. The demand response follows the
/// segment's true price elasticity (SMB too elastic for a raise, MM and ENT inside the Decision
/// OS band), with sampling noise on the seats bought per account.
fn price_tests(p: &Resolved, reg: &Registry) -> Result<RecordBatch> {
    let mut t = Tb::new(builder(reg, "price_tests")?, PriceTests::new)?;
    let mut r = Rng::stream(p.seed, "price_tests", 0, 0);
    // (list price per seat-month in cents, seats per account, true elasticity)
    let segments = [
        (3_500i128, 12.0, -1.35),
        (5_500, 48.0, -0.6),
        (8_000, 220.0, -0.45),
    ];
    let mut start = p.start.first_of_month();
    let mut n = 0;
    while start.add_months(2) <= p.as_of {
        for (seg, (price, seats, elasticity)) in segments.iter().enumerate() {
            n += 1;
            let change = [6.0, 8.0, 10.0][r.range(0, 3) as usize];
            let e = elasticity + r.uniform(-0.08, 0.08);
            let arm = |r: &mut Rng| {
                ((p.accounts as f64 * SEGMENT_WEIGHTS[seg] / 4.0).max(20.0) * r.uniform(0.9, 1.1))
                    .round() as i64
            };
            let (control_accounts, test_accounts) = (arm(&mut r), arm(&mut r));
            let per_account = seats * r.uniform(0.97, 1.03);
            let control_seats = (control_accounts as f64 * per_account).round() as i64;
            let test_seats =
                (test_accounts as f64 * per_account * (1.0 + e * change / 100.0)).round() as i64;
            t.b.str(t.c.test_id, &format!("PT-{n:04}"));
            t.b.str(t.c.segment, SEGMENTS[seg]);
            t.b.str(t.c.sku_id, "SEAT-PLATFORM");
            t.b.date(t.c.start_date, start.0);
            t.b.date(t.c.end_date, start.add_months(2).0);
            t.b.dec(t.c.list_price_usd, *price);
            t.b.f64(t.c.price_change_pct, change);
            t.b.i64(t.c.control_accounts, control_accounts);
            t.b.i64(t.c.control_seats, control_seats);
            t.b.i64(t.c.test_accounts, test_accounts);
            t.b.i64(t.c.test_seats, test_seats);
            t.b.end_row();
        }
        start = start.add_months(6);
    }
    t.b.finish()
}

/// The shadow log of a candidate routing rule set over the last 26 weeks: leads of a segment
/// go to one of its AEs (evenly, so fairness holds); the candidate agrees with the live rules
/// more often as it matures, leaves a few more leads unassigned, and routes a little faster.
fn routing_shadow_log(p: &Resolved, reg: &Registry, roster: &Roster) -> Result<RecordBatch> {
    let mut t = Tb::new(builder(reg, "routing_shadow_log")?, RoutingShadowLog::new)?;
    let mut r = Rng::stream(p.seed, "routing_shadow", 0, 0);
    let aes: Vec<Vec<&str>> = (0..3)
        .map(|seg| {
            roster
                .reps
                .iter()
                .filter(|x| x.role == "AE" && x.segment == seg)
                .map(|x| x.id.as_str())
                .collect()
        })
        .collect();
    let per_week = (p.accounts / 2).clamp(40, 5_000) as i64;
    // 26 whole weeks, then the days of the current week up to as_of (fresh for the SLO).
    let first = p.as_of.plus(-26 * 7).week_start();
    let weeks = (p.as_of.minus(first) + 6) / 7;
    let mut n = 0u64;
    for w in 0..weeks {
        let monday = first.plus(w * 7);
        // Agreement grows from 98 % to 99.8 % over the shadow period.
        let agree = 0.98 + 0.018 * (w as f64 / (weeks.max(2) - 1) as f64);
        for _ in 0..per_week {
            let u = r.f64();
            let seg = if u < SEGMENT_WEIGHTS[0] {
                0
            } else if u < SEGMENT_WEIGHTS[0] + SEGMENT_WEIGHTS[1] {
                1
            } else {
                2
            };
            if aes[seg].is_empty() {
                continue;
            }
            let at = monday.micros() + r.range(0, 7 * crate::calendar::MICROS_PER_DAY);
            if at >= p.as_of.micros() {
                continue;
            }
            n += 1;
            let pick = |r: &mut Rng| aes[seg][r.range(0, aes[seg].len() as i64) as usize];
            let current = (!r.chance(0.001)).then(|| pick(&mut r));
            let candidate = if r.chance(0.002) {
                None
            } else if current.is_some() && r.chance(agree) {
                current
            } else {
                Some(pick(&mut r))
            };
            t.b.str(t.c.event_id, &format!("RT-{n:08}"));
            t.b.ts(t.c.routed_at, at);
            t.b.str(t.c.segment, SEGMENTS[seg]);
            t.b.str(t.c.current_ruleset, "rules-v1");
            t.b.str(t.c.candidate_ruleset, "rules-v2");
            t.b.opt_str(t.c.current_rep_id, current);
            t.b.opt_str(t.c.candidate_rep_id, candidate);
            t.b.f64(
                t.c.current_route_seconds,
                (r.lognormal(libm::log(45.0), 0.6) * 10.0).round() / 10.0,
            );
            t.b.f64(
                t.c.candidate_route_seconds,
                (r.lognormal(libm::log(40.0), 0.6) * 10.0).round() / 10.0,
            );
            t.b.end_row();
        }
    }
    t.b.finish()
}

fn general_ledger(
    p: &Resolved,
    reg: &Registry,
    faults: &FaultPlan,
    s: &Summary,
    o: &mut Tb<OracleFaults>,
) -> Result<RecordBatch> {
    let mut t = Tb::new(builder(reg, "reference_gl")?, ReferenceGl::new)?;
    let mut r = Rng::stream(p.seed, "gl", 0, 0);
    let (w0, w1) = window_slots(p, s);
    // Deferred revenue = everything billed − everything recognised (restatements included), to date.
    let mut balance: i128 = 0;
    for slot in 0..=w1 {
        balance += s.billed[slot] - s.revenue(slot) - s.restated[slot];
        if slot < w0 {
            continue;
        }
        let month = month_start(s.month0 + slot as i32);
        let mut reported = balance;
        if faults
            .by_month
            .get(&month.month_index())
            .is_some_and(|v| v.contains(&FaultClass::ReferenceGlDiscrepancy))
        {
            let delta = r.between(2_500, 500_000) as i128 * if r.chance(0.5) { 1 } else { -1 };
            reported += delta;
            let detail = format!(
                "ledger shows {} vs books {}",
                format_cents(reported),
                format_cents(balance)
            );
            oracle::label(
                o,
                FaultClass::ReferenceGlDiscrepancy,
                "month",
                &month.iso(),
                &detail,
                Some(month.0),
            );
        }
        t.b.date(t.c.month, month.0);
        t.b.dec(t.c.deferred_revenue_usd, reported);
        t.b.end_row();
    }
    t.b.finish()
}
