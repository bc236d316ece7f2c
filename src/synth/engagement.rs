//! Engagement and customer-success tables of one account, drawn from its lifecycle curves:
//! weekly feature engagement, calls, support tickets, NPS, QBRs, onboarding and technical
//! milestones.

use std::fmt::Write as _;

use super::catalog::*;
use super::crm::People;
use super::lifecycle::Lifecycle;
use super::params::{Archetype, Resolved};
use super::plan::{AccountPlan, account_id};
use super::rng::Rng;
use super::tables::Tables;
use crate::calendar::{Day, MICROS_PER_DAY, MICROS_PER_HOUR, MICROS_PER_MINUTE};

/// One feature's adoption by an account.
struct Feature {
    idx: usize,
    /// Share of active seats using it.
    share: f64,
    from: Day,
    /// Abandoned from this day on.
    until: Option<Day>,
    teams: i64,
}

fn features(r: &mut Rng, lc: &Lifecycle) -> Vec<Feature> {
    let start = lc.active_from;
    let mut out = Vec::new();
    let mut add = |idx: usize, share: f64, from: Day, until: Option<Day>, teams: i64| {
        out.push(Feature {
            idx,
            share,
            from,
            until,
            teams,
        })
    };
    // `lo..=hi` distinct features of the pool, in feature order.
    let pick_n = |r: &mut Rng, pool: std::ops::Range<usize>, lo: i64, hi: i64| -> Vec<usize> {
        let n = r.between(lo, hi) as usize;
        let mut v: Vec<usize> = pool.collect();
        r.shuffle(&mut v);
        v.truncate(n);
        v.sort_unstable();
        v
    };
    match lc.archetype {
        Archetype::IdealPowerUser => {
            // Broad: every core feature, most advanced, integrations and admin; many teams.
            for i in 0..8 {
                add(i, r.uniform(0.5, 0.9), start, None, r.between(4, 8));
            }
            for i in pick_n(r, 8..14, 4, 6) {
                add(i, r.uniform(0.3, 0.6), start, None, r.between(3, 6));
            }
            for i in pick_n(r, 14..18, 3, 4) {
                add(i, r.uniform(0.2, 0.4), start, None, r.between(2, 5));
            }
            for i in pick_n(r, 18..21, 2, 2) {
                add(i, r.uniform(0.05, 0.15), start, None, r.between(1, 3));
            }
        }
        Archetype::ExpansionReady => {
            // Siloed: decent breadth, concentrated in a few features, one team.
            let core = pick_n(r, 0..8, 5, 7);
            for (k, i) in core.iter().enumerate() {
                add(
                    *i,
                    if k < 3 {
                        r.uniform(0.75, 0.95)
                    } else {
                        r.uniform(0.03, 0.1)
                    },
                    start,
                    None,
                    1,
                );
            }
            for i in pick_n(r, 8..18, 4, 6) {
                add(i, r.uniform(0.02, 0.08), start, None, 1);
            }
        }
        Archetype::SurfaceOnlyAdopter => {
            for i in pick_n(r, 0..8, 3, 5) {
                add(i, r.uniform(0.2, 0.4), start, None, r.between(1, 2));
            }
        }
        Archetype::Activating => {
            // Core first, one more feature every few days.
            let order = pick_n(r, 0..14, 9, 12);
            for (k, i) in order.iter().enumerate() {
                let from = if k < 3 {
                    start
                } else {
                    start.plus(5 * (k as i32 - 2) + r.between(0, 3) as i32)
                };
                add(*i, r.uniform(0.3, 0.6), from, None, r.between(1, 3));
            }
        }
        Archetype::StalledOnboarding => {
            for i in pick_n(r, 0..8, 1, 3) {
                add(i, r.uniform(0.1, 0.2), start, None, 1);
            }
        }
        Archetype::ChampionLossDecliner => {
            let dep = lc.story.champion_departure.unwrap_or(lc.active_to);
            for i in 0..8 {
                add(i, r.uniform(0.4, 0.8), start, None, r.between(2, 5));
            }
            for i in pick_n(r, 8..18, 4, 7) {
                // Abandoned within two months of the champion leaving.
                add(
                    i,
                    r.uniform(0.2, 0.5),
                    start,
                    Some(dep.plus(r.between(0, 60) as i32)),
                    r.between(1, 3),
                );
            }
        }
        Archetype::SpikeThenCrash => {
            let crash = lc.story.spike.map(|s| s.1).unwrap_or(lc.active_to);
            for i in pick_n(r, 0..8, 5, 7) {
                add(i, r.uniform(0.3, 0.7), start, None, r.between(1, 4));
            }
            for i in pick_n(r, 8..18, 3, 5) {
                add(
                    i,
                    r.uniform(0.2, 0.4),
                    start,
                    Some(crash.plus(r.between(0, 45) as i32)),
                    r.between(1, 3),
                );
            }
        }
        Archetype::Seasonal => {
            for i in pick_n(r, 0..14, 10, 13) {
                add(i, r.uniform(0.3, 0.7), start, None, r.between(2, 5));
            }
        }
    }
    out
}

pub fn feature_engagement(p: &Resolved, a: &AccountPlan, lc: &Lifecycle, t: &mut Tables) {
    let mut r = Rng::stream(p.seed, "features", a.idx as u64, 0);
    let feats = features(&mut r, lc);
    let aid = account_id(a.idx);
    let mut week = lc.active_from.week_start();
    if week < lc.active_from {
        week = week.plus(7);
    }
    while week < lc.active_to && week.plus(7) <= p.as_of {
        // Average active seats over the week.
        let mid = week.plus(3);
        let seats = lc.seats_at(mid).max(1) as f64;
        let active = (lc.utilization(mid, p.as_of) * seats).max(1.0);
        let intensity_ratio =
            (lc.intensity(mid) / lc.intensity(lc.active_from.plus(14)).max(0.05)).clamp(0.2, 3.0);
        for f in &feats {
            if week < f.from || f.until.is_some_and(|u| week >= u) {
                continue;
            }
            let users = ((active * f.share * r.lognormal(0.0, 0.1)).round() as i64)
                .clamp(1, active.ceil() as i64);
            let events = ((users as f64) * r.uniform(8.0, 30.0) * intensity_ratio)
                .round()
                .max(1.0) as i64;
            let fe = &mut t.feature_engagement;
            fe.b.str(fe.c.account_id, &aid);
            fe.b.date(fe.c.week_start, week.0);
            fe.b.str(fe.c.feature_id, FEATURES[f.idx].0);
            fe.b.str(fe.c.feature_category, FEATURES[f.idx].1);
            fe.b.i64(fe.c.active_users, users);
            fe.b.i64(fe.c.events, events);
            fe.b.i64(fe.c.teams_active, f.teams.min(users));
            fe.b.end_row();
        }
        week = week.plus(7);
    }
}

struct Call {
    ts: i64,
    role: &'static str,
    rep: String,
}

/// Days between CSM calls, by archetype.
fn csm_cadence(a: Archetype) -> i64 {
    match a {
        Archetype::Activating | Archetype::StalledOnboarding => 10,
        Archetype::IdealPowerUser | Archetype::ExpansionReady => 21,
        Archetype::ChampionLossDecliner => 20,
        Archetype::SurfaceOnlyAdopter => 45,
        Archetype::SpikeThenCrash | Archetype::Seasonal => 30,
    }
}

pub fn conversations(
    p: &Resolved,
    a: &AccountPlan,
    lc: Option<&Lifecycle>,
    people: &People,
    t: &mut Tables,
) {
    let mut r = Rng::stream(p.seed, "calls", a.idx as u64, 0);
    let at = |d: Day, r: &mut Rng| d.micros() + r.between(8 * 60, 18 * 60) * MICROS_PER_MINUTE;
    let mut calls: Vec<Call> = Vec::new();
    match lc {
        None => {
            // Prospects: SDR and AE discovery calls.
            for _ in 0..r.between(0, 3) {
                let d = Day(r.between(p.start.0 as i64, p.end.0 as i64) as i32);
                let (role, rep) = if r.chance(0.5) {
                    ("SDR", &people.sdr)
                } else {
                    ("AE", &people.owner)
                };
                calls.push(Call {
                    ts: at(d, &mut r),
                    role,
                    rep: rep.clone(),
                });
            }
        }
        Some(lc) => {
            let csm = people.csm.clone().unwrap_or_else(|| people.owner.clone());
            let am = people.am.clone().unwrap_or_else(|| people.owner.clone());
            let step = csm_cadence(lc.archetype);
            let mut d = lc.active_from.plus(r.between(1, step) as i32);
            while d < lc.active_to {
                calls.push(Call {
                    ts: at(d, &mut r),
                    role: "CSM",
                    rep: csm.clone(),
                });
                d = d.plus((step / 2 + r.between(0, step)) as i32);
            }
            // Champion loss: the CSM calls around the departure are the story's evidence.
            if let Some(dep) = lc.story.champion_departure {
                for off in [-50, -20, 15, 45] {
                    let day = dep.plus(off + r.between(0, 5) as i32);
                    if lc.is_active(day) {
                        calls.push(Call {
                            ts: at(day, &mut r),
                            role: "CSM",
                            rep: csm.clone(),
                        });
                    }
                }
            }
            // AM calls ahead of renewals and expansions; AE and SE calls around the sale.
            for term in lc.terms.iter().skip(1) {
                let d = term.start.plus(-(r.between(20, 70) as i32));
                if d >= p.start {
                    calls.push(Call {
                        ts: at(d, &mut r),
                        role: "AM",
                        rep: am.clone(),
                    });
                }
            }
            if let Some(renew) = lc.next_renewal
                && renew.plus(-60) < p.as_of
            {
                let d = renew.plus(-(r.between(30, 60) as i32)).min(p.end);
                if d >= lc.active_from {
                    calls.push(Call {
                        ts: at(d, &mut r),
                        role: "AM",
                        rep: am.clone(),
                    });
                }
            }
            for k in 0..2 {
                let d = lc.first_start.plus(-(r.between(10, 60) as i32) - 30 * k);
                if d >= p.start {
                    calls.push(Call {
                        ts: at(d, &mut r),
                        role: if k == 0 { "AE" } else { "SDR" },
                        rep: people.owner.clone(),
                    });
                }
            }
            let se_day = lc.first_start.plus(r.between(10, 40) as i32);
            if se_day >= p.start && se_day < p.as_of && a.segment > 0 {
                calls.push(Call {
                    ts: at(se_day, &mut r),
                    role: "SE",
                    rep: people.se.clone(),
                });
            }
        }
    }
    calls.retain(|c| c.ts >= p.start.micros() && c.ts < p.as_of.micros());
    calls.sort_by_key(|c| c.ts);
    let aid = account_id(a.idx);
    let mut id = String::new();
    for (k, c) in calls.iter().enumerate() {
        let day = Day(c.ts.div_euclid(MICROS_PER_DAY) as i32);
        let mood = lc.map(|l| l.mood(day)).unwrap_or(0.2);
        let sentiment = ((mood + 0.15 * r.normal()).clamp(-1.0, 1.0) * 1000.0).round() / 1000.0;
        let archetype = lc.map(|l| l.archetype);
        let eb_p = match archetype {
            Some(Archetype::IdealPowerUser) => 0.5,
            Some(Archetype::ExpansionReady) => 0.4,
            Some(Archetype::ChampionLossDecliner) if mood < 0.2 => 0.05,
            Some(Archetype::ChampionLossDecliner) => 0.3,
            Some(Archetype::SurfaceOnlyAdopter) => 0.05,
            _ => 0.15,
        };
        let mut attendees: Vec<&str> = Vec::new();
        for pc in people
            .active_with(
                day,
                &["champion", "end_user", "technical_evaluator", "other"],
            )
            .into_iter()
            .take(3)
        {
            if attendees.is_empty() || r.chance(0.5) {
                attendees.push(&pc.id);
            }
        }
        if r.chance(eb_p)
            && let Some(eb) = people.active_with(day, &["economic_buyer"]).first()
        {
            attendees.push(&eb.id);
        }
        let troubled = mood < 0.15;
        let comp_p = match archetype {
            Some(Archetype::ChampionLossDecliner | Archetype::SpikeThenCrash) if troubled => 0.4,
            Some(Archetype::SurfaceOnlyAdopter) => 0.25,
            None => 0.3,
            _ => 0.03,
        };
        let competitors: Vec<&str> = if r.chance(comp_p) {
            vec![*r.pick(&COMPETITORS)]
        } else {
            vec![]
        };
        let objections: Vec<&str> = if troubled || r.chance(0.15) {
            vec![*r.pick(&OBJECTIONS)]
        } else {
            vec![]
        };
        let inquiry_p = match archetype {
            Some(Archetype::ExpansionReady) => 0.45,
            Some(Archetype::IdealPowerUser) => 0.2,
            _ => 0.05,
        };
        let feature_inquiry = r.chance(inquiry_p);
        let topic = if sentiment >= 0.2 {
            *r.pick(&CALL_TOPICS_GOOD)
        } else {
            *r.pick(&CALL_TOPICS_BAD)
        };
        id.clear();
        let _ = write!(id, "CONV-{:06}-{:04}", a.idx + 1, k + 1);
        let cv = &mut t.conversations;
        cv.b.str(cv.c.conv_id, &id);
        cv.b.str(cv.c.account_id, &aid);
        cv.b.str(cv.c.owner_rep_id, &c.rep);
        cv.b.ts(cv.c.call_ts, c.ts);
        cv.b.str(cv.c.call_owner_role, c.role);
        cv.b.i32(cv.c.duration_minutes, r.between(15, 60) as i32);
        cv.b.list(cv.c.attendee_contact_ids, &attendees);
        cv.b.f64(cv.c.sentiment_score, sentiment);
        cv.b.f64(
            cv.c.talk_ratio,
            (r.uniform(0.3, 0.7) * 100.0).round() / 100.0,
        );
        cv.b.bool(
            cv.c.next_step_committed,
            r.chance(if sentiment > 0.2 { 0.7 } else { 0.3 }),
        );
        cv.b.list(cv.c.competitors_mentioned, &competitors);
        cv.b.list(cv.c.objections, &objections);
        cv.b.bool(cv.c.feature_inquiry, feature_inquiry);
        let extra = if feature_inquiry {
            "; asked about advanced features for more teams"
        } else {
            ""
        };
        cv.b.str(cv.c.summary, &format!("{} call: {topic}{extra}.", c.role));
        cv.b.end_row();
    }
}

pub fn support_tickets(p: &Resolved, a: &AccountPlan, lc: &Lifecycle, t: &mut Tables) {
    let mut r = Rng::stream(p.seed, "tickets", a.idx as u64, 0);
    let aid = account_id(a.idx);
    let base = match lc.archetype {
        Archetype::Activating | Archetype::StalledOnboarding => 1.5,
        Archetype::IdealPowerUser => 0.6,
        _ => 0.8,
    };
    let mut month = lc.active_from.first_of_month();
    let mut k = 0;
    while month < lc.active_to {
        let mid = month.plus(14);
        let mood = lc.mood(mid);
        let rate = base * if mood < 0.0 { 2.5 } else { 1.0 };
        for _ in 0..r.poisson(rate) {
            let day = month.plus(r.range(0, 28) as i32);
            if !lc.is_active(day) {
                continue;
            }
            let opened = day.micros() + r.between(0, 24 * 60 - 1) * MICROS_PER_MINUTE;
            let sev = if mood < 0.0 {
                r.weighted(&[0.1, 0.25, 0.4, 0.25])
            } else {
                r.weighted(&[0.02, 0.1, 0.48, 0.4])
            };
            let hours = [
                r.between(2, 24),
                r.between(8, 72),
                r.between(24, 240),
                r.between(48, 480),
            ][sev];
            let closed = opened + hours * MICROS_PER_HOUR;
            let closed = (closed < p.as_of.micros()).then_some(closed);
            let csat = (closed.is_some() && r.chance(0.6)).then(|| {
                let base = if mood > 0.4 {
                    4.4
                } else if mood > 0.0 {
                    3.6
                } else {
                    2.4
                };
                (base + 0.7 * r.normal()).round().clamp(1.0, 5.0)
            });
            k += 1;
            let st = &mut t.support_tickets;
            st.b.str(st.c.ticket_id, &format!("TKT-{:06}-{k:04}", a.idx + 1));
            st.b.str(st.c.account_id, &aid);
            st.b.ts(st.c.opened_at, opened);
            st.b.opt_ts(st.c.closed_at, closed);
            st.b.str(st.c.severity, ["P1", "P2", "P3", "P4"][sev]);
            let category = *r.pick(&TICKET_CATEGORIES);
            st.b.str(st.c.category, category);
            st.b.opt_f64(st.c.csat_score, csat);
            st.b.end_row();
        }
        month = month.add_months(1);
    }
}

pub fn nps(p: &Resolved, a: &AccountPlan, lc: &Lifecycle, people: &People, t: &mut Tables) {
    let mut r = Rng::stream(p.seed, "nps", a.idx as u64, 0);
    let aid = account_id(a.idx);
    // Relationship NPS on a rolling schedule: each account is surveyed once a quarter on its
    // own day of the quarter, so responses arrive every week (a survey program run in
    // quarterly waves left the newest response six weeks before as_of, and the voice-of-
    // customer view, refreshed weekly, stale).
    let offset = r.between(0, 88) as i32;
    let mut wave = p.start.first_of_quarter();
    let mut k = 0;
    while wave < p.as_of {
        let day = wave.plus(offset + r.between(0, 2) as i32);
        if lc.is_active(day) && day.minus(lc.first_start) >= 45 && day < p.as_of {
            for c in people.contacts.iter().filter(|c| c.active(day)) {
                if !r.chance(0.35) {
                    continue;
                }
                let mood = lc.mood(day);
                let score = (7.0 + 4.5 * mood + 1.2 * r.normal())
                    .round()
                    .clamp(0.0, 10.0) as i32;
                let verbatim = if r.chance(0.5) {
                    Some(if score >= 8 {
                        *r.pick(&NPS_VERBATIM_GOOD)
                    } else {
                        *r.pick(&NPS_VERBATIM_BAD)
                    })
                } else {
                    None
                };
                k += 1;
                let n = &mut t.nps;
                n.b.str(n.c.response_id, &format!("NPS-{:06}-{k:03}", a.idx + 1));
                n.b.str(n.c.account_id, &aid);
                n.b.str(n.c.contact_id, &c.id);
                n.b.date(n.c.response_date, day.0);
                n.b.i32(n.c.score, score);
                n.b.opt_str(n.c.verbatim, verbatim);
                n.b.end_row();
            }
        }
        wave = wave.add_months(3);
    }
}

pub fn qbrs(p: &Resolved, a: &AccountPlan, lc: &Lifecycle, people: &People, t: &mut Tables) {
    let mut r = Rng::stream(p.seed, "qbr", a.idx as u64, 0);
    if a.segment == 0 && !r.chance(0.3) {
        return;
    }
    let aid = account_id(a.idx);
    let owner = people.am.clone().unwrap_or_else(|| people.owner.clone());
    let mut d = lc.first_start.add_months(3);
    let mut k = 0;
    // Every quarter while a customer, the next one scheduled past as_of included.
    while d < lc.active_to && d < p.as_of.plus(92) {
        let scheduled = d.plus(r.between(-10, 10) as i32);
        d = d.add_months(3);
        if scheduled < p.start {
            continue;
        }
        let mood = lc.mood(scheduled);
        k += 1;
        let (status, held) = if scheduled >= p.as_of {
            ("scheduled", None)
        } else if r.chance((0.55 + 0.45 * mood).clamp(0.2, 0.97)) {
            (
                "held",
                Some(scheduled.plus(r.between(0, 7) as i32).min(p.end)),
            )
        } else {
            ("cancelled", None)
        };
        let sponsor = held.is_some() && r.chance((0.25 + 0.7 * mood).clamp(0.02, 0.9));
        let mut attendees: Vec<&str> = Vec::new();
        if held.is_some() {
            attendees.extend(
                people
                    .active_with(scheduled, &["champion", "end_user"])
                    .iter()
                    .take(2)
                    .map(|c| c.id.as_str()),
            );
            if sponsor && let Some(eb) = people.active_with(scheduled, &["economic_buyer"]).first()
            {
                attendees.push(&eb.id);
            }
        }
        let summary = held.map(|_| {
            if mood > 0.3 {
                "Reviewed outcomes; agreed next-quarter goals."
            } else {
                "Discussed adoption gaps and renewal concerns."
            }
        });
        let q = &mut t.qbr;
        q.b.str(q.c.qbr_id, &format!("QBR-{:06}-{k:02}", a.idx + 1));
        q.b.str(q.c.account_id, &aid);
        q.b.str(q.c.owner_rep_id, &owner);
        q.b.date(q.c.scheduled_date, scheduled.0);
        q.b.opt_date(q.c.held_date, held.map(|x| x.0));
        q.b.str(q.c.status, status);
        q.b.bool(q.c.exec_sponsor_attended, sponsor && attendees.len() > 2);
        q.b.list(q.c.attendee_contact_ids, &attendees);
        q.b.opt_str(q.c.summary, summary);
        q.b.end_row();
    }
}

/// Milestone status as of the snapshot.
fn status(planned: Day, completed: Option<Day>, as_of: Day, current: bool) -> &'static str {
    match completed {
        Some(_) => "completed",
        None if planned < as_of => "overdue",
        None if current => "in_progress",
        None => "not_started",
    }
}

pub fn onboarding(p: &Resolved, a: &AccountPlan, lc: &Lifecycle, t: &mut Tables) {
    let mut r = Rng::stream(p.seed, "onboarding", a.idx as u64, 0);
    let aid = account_id(a.idx);
    let mut first_open = true;
    for (i, (m, name, offset)) in ONBOARDING.iter().enumerate() {
        let planned = lc.first_start.plus(*offset);
        let done = match lc.archetype {
            Archetype::StalledOnboarding => i == 0,
            Archetype::Activating => true,
            _ => true,
        };
        // Activating accounts are on schedule: never late. Everyone else catches up within two weeks.
        let day = planned.plus(if lc.archetype == Archetype::Activating {
            r.between(-4, 0)
        } else {
            r.between(-3, 12)
        } as i32);
        let completed = (done && day < p.as_of).then_some(day);
        let current = completed.is_none() && first_open;
        if completed.is_none() {
            first_open = false;
        }
        let o = &mut t.onboarding;
        o.b.str(o.c.account_id, &aid);
        o.b.str(o.c.milestone, m);
        o.b.str(o.c.milestone_name, name);
        o.b.date(o.c.planned_date, planned.0);
        o.b.opt_date(o.c.completed_date, completed.map(|d| d.0));
        o.b.str(o.c.status, status(planned, completed, p.as_of, current));
        o.b.end_row();
    }
}

pub fn technical_milestones(p: &Resolved, a: &AccountPlan, lc: &Lifecycle, t: &mut Tables) {
    if a.segment == 0 && !a.has_consumption {
        return;
    }
    let mut r = Rng::stream(p.seed, "tech", a.idx as u64, 0);
    let aid = account_id(a.idx);
    for (i, (m, offset)) in TECH_MILESTONES.iter().enumerate() {
        let planned = lc.first_start.plus(*offset);
        let done = lc.archetype != Archetype::StalledOnboarding || i == 0;
        let day = planned.plus(r.between(-2, 15) as i32);
        let completed = (done && day < p.as_of).then_some(day);
        let tm = &mut t.tech;
        tm.b.str(
            tm.c.tech_milestone_id,
            &format!("TM-{:06}-{}", a.idx + 1, i + 1),
        );
        tm.b.str(tm.c.account_id, &aid);
        tm.b.str(tm.c.milestone, m);
        tm.b.date(tm.c.planned_date, planned.0);
        tm.b.opt_date(tm.c.completed_date, completed.map(|d| d.0));
        tm.b.bool(tm.c.customer_sign_off, completed.is_some() && r.chance(0.9));
        tm.b.end_row();
    }
}
