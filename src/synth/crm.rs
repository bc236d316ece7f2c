//! CRM tables of one account: the account row, its contacts (the champion who leaves, the new
//! stakeholders who arrive), its opportunities (new logo, renewals, expansions, open pipeline)
//! and its outreach cadence events.

use std::fmt::Write as _;

use super::billing::{expansion_opp, new_logo_opp, renewal_opp};
use super::catalog::*;
use super::lifecycle::{Lifecycle, TermKind};
use super::oracle;
use super::params::{Archetype, FaultClass, Resolved};
use super::plan::{AccountPlan, Roster, account_id};
use super::rng::Rng;
use super::tables::Tables;
use crate::calendar::{Day, MICROS_PER_HOUR, MICROS_PER_MINUTE};
use crate::money::MICROS_PER_CENT;

#[derive(Debug, Clone)]
pub struct Contact {
    pub id: String,
    pub persona: &'static str,
    pub active_from: Day,
    pub active_to: Option<Day>,
}

impl Contact {
    pub fn active(&self, d: Day) -> bool {
        self.active_from <= d && self.active_to.is_none_or(|e| d < e)
    }
}

/// The people of an account: its contacts and its reps.
pub struct People {
    pub contacts: Vec<Contact>,
    pub champion: Option<usize>,
    pub economic_buyer: Option<usize>,
    pub owner: String,
    pub am: Option<String>,
    pub csm: Option<String>,
    pub sdr: String,
    pub se: String,
    pub domain: String,
}

impl People {
    /// Contacts active on `d` with one of the personas.
    pub fn active_with(&self, d: Day, personas: &[&str]) -> Vec<&Contact> {
        self.contacts
            .iter()
            .filter(|c| c.active(d) && personas.contains(&c.persona))
            .collect()
    }
}

fn slug(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// Account row and contacts.
pub fn account_and_contacts(
    p: &Resolved,
    a: &AccountPlan,
    lc: Option<&Lifecycle>,
    roster: &Roster,
    t: &mut Tables,
) -> People {
    let mut r = Rng::stream(p.seed, "crm", a.idx as u64, 0);
    let aid = account_id(a.idx);
    let name = format!(
        "{} {}",
        r.pick(&NAME_PREFIX),
        r.pick(&NAME_SUFFIX[a.vertical])
    );
    let domain = format!(
        "{}{}.{}",
        slug(&name),
        a.idx + 1,
        if r.chance(0.6) { "com" } else { "io" }
    );
    let (elo, ehi) = EMPLOYEES[a.segment];
    let employees = crate::synth::rng::exp(r.uniform(
        crate::synth::rng::ln(elo as f64),
        crate::synth::rng::ln(ehi as f64),
    ))
    .round() as i64;
    let revenue_cents = employees as i128 * r.between(80_000, 250_000) as i128 * 100;
    let owner = roster.pick(&mut r, "AE", a.segment, a.geo).id.clone();
    let sdr = roster.pick(&mut r, "SDR", a.segment, a.geo).id.clone();
    let se = roster.pick(&mut r, "SE", a.segment, a.geo).id.clone();
    let (am, csm) = if a.is_customer() {
        (
            Some(roster.pick(&mut r, "AM", a.segment, a.geo).id.clone()),
            Some(roster.pick(&mut r, "CSM", a.segment, a.geo).id.clone()),
        )
    } else {
        (None, None)
    };
    let signup = lc.and_then(|l| l.terms.first()).map(|t| {
        if t.superseded {
            t.order_date.plus(-3)
        } else {
            t.order_date
        }
    });

    let ac = &mut t.accounts;
    ac.b.str(ac.c.account_id, &aid);
    ac.b.str(ac.c.account_name, &name);
    ac.b.str(ac.c.domain, &domain);
    ac.b.str(ac.c.segment, SEGMENTS[a.segment]);
    ac.b.str(ac.c.vertical, VERTICALS[a.vertical]);
    ac.b.str(ac.c.geo, GEOS[a.geo]);
    ac.b.i64(ac.c.employee_count, employees);
    ac.b.dec(ac.c.annual_revenue_usd, revenue_cents);
    ac.b.str(ac.c.acquisition_channel, CHANNELS[a.channel]);
    ac.b.opt_date(ac.c.signup_date, signup.map(|d| d.0));
    ac.b.str(ac.c.owner_rep_id, &owner);
    ac.b.opt_str(ac.c.am_rep_id, am.as_deref());
    ac.b.opt_str(ac.c.csm_rep_id, csm.as_deref());
    ac.b.opt_str(ac.c.archetype, a.archetype.map(|x| x.name()));
    ac.b.ts(
        ac.c.updated_at,
        p.as_of.micros() - r.between(1, 72) * MICROS_PER_HOUR,
    );
    ac.b.end_row();

    // Contacts.
    let (lo, hi) = if a.is_customer() {
        [(3, 6), (5, 10), (8, 15)][a.segment]
    } else {
        (2, 5)
    };
    let n = r.between(lo, hi) as usize;
    let anchor = lc.map(|l| l.first_start).unwrap_or(p.start);
    let mut personas: Vec<&'static str> = vec!["economic_buyer", "champion"];
    if n >= 4 {
        personas.push("technical_evaluator");
    }
    if a.segment == 2 {
        personas.push("procurement");
    }
    while personas.len() < n {
        personas.push(if r.chance(0.7) { "end_user" } else { "other" });
    }
    personas.truncate(n.max(2));
    let mut contacts: Vec<Contact> = personas
        .iter()
        .map(|persona| Contact {
            id: String::new(),
            persona,
            active_from: anchor.plus(-(r.between(30, 400) as i32)),
            active_to: None,
        })
        .collect();
    if let Some(l) = lc {
        match l.archetype {
            Archetype::ChampionLossDecliner => contacts[1].active_to = l.story.champion_departure,
            Archetype::ExpansionReady | Archetype::IdealPowerUser => {
                // New stakeholders engaged in the last quarter.
                let k = if l.archetype == Archetype::ExpansionReady {
                    2
                } else {
                    r.between(0, 1) as usize
                };
                for _ in 0..k {
                    let from = p.end.plus(-(r.between(10, 90) as i32));
                    contacts.push(Contact {
                        id: String::new(),
                        persona: if r.chance(0.5) { "end_user" } else { "other" },
                        active_from: from,
                        active_to: None,
                    });
                }
            }
            _ => {}
        }
    }
    for (i, c) in contacts.iter_mut().enumerate() {
        c.id = format!("CON-{:06}-{:02}", a.idx + 1, i + 1);
        // A few people move on, never the economic buyer or champion whose stories are told above.
        if i >= 2 && c.active_to.is_none() && r.chance(0.04) {
            let lo = c.active_from.max(p.start).plus(30);
            if lo < p.end {
                c.active_to = Some(Day(r.between(lo.0 as i64, p.end.0 as i64) as i32));
            }
        }
    }
    for c in &contacts {
        let first = *r.pick(&FIRST_NAMES);
        let last = *r.pick(&LAST_NAMES);
        let ct = &mut t.contacts;
        ct.b.str(ct.c.contact_id, &c.id);
        ct.b.str(ct.c.account_id, &aid);
        ct.b.str(ct.c.full_name, &format!("{first} {last}"));
        let title = *r.pick(titles(c.persona));
        ct.b.str(ct.c.title, title);
        ct.b.str(ct.c.persona, c.persona);
        ct.b.str(
            ct.c.email,
            &format!(
                "{}.{}.{}@{domain}",
                first.to_ascii_lowercase(),
                last.to_ascii_lowercase(),
                &c.id[11..]
            ),
        );
        ct.b.date(ct.c.active_from, c.active_from.0);
        ct.b.opt_date(ct.c.active_to, c.active_to.map(|d| d.0));
        let touched = c.active_to.unwrap_or(c.active_from).min(p.end);
        ct.b.ts(
            ct.c.updated_at,
            touched.micros() + r.between(1, 23) * MICROS_PER_HOUR,
        );
        ct.b.end_row();
    }
    People {
        champion: Some(1),
        economic_buyer: Some(0),
        contacts,
        owner,
        am,
        csm,
        sdr,
        se,
        domain,
    }
}

fn arr_cents(seats: i64, seat_price_micros: i128, cons: Option<(i64, i128)>) -> i128 {
    let mut c = seats as i128 * seat_price_micros * 12 / MICROS_PER_CENT;
    if let Some((commit, price)) = cons {
        c += commit as i128 * price * 12 / MICROS_PER_CENT;
    }
    c
}

#[allow(clippy::too_many_arguments)]
fn opp(
    t: &mut Tables,
    id: &str,
    aid: &str,
    owner: Option<&str>,
    kind: &str,
    stage: &str,
    amount: i128,
    created: Day,
    close: Day,
    forecast: &str,
    loss: Option<&str>,
    competitor: Option<&str>,
    updated: i64,
) {
    let o = &mut t.opportunities;
    o.b.str(o.c.opp_id, id);
    o.b.str(o.c.account_id, aid);
    o.b.opt_str(o.c.owner_rep_id, owner);
    o.b.str(o.c.opp_type, kind);
    o.b.str(o.c.stage, stage);
    o.b.dec(o.c.amount_usd, amount);
    o.b.date(o.c.created_date, created.0);
    o.b.date(o.c.close_date, close.0);
    o.b.str(o.c.forecast_category, forecast);
    o.b.opt_str(o.c.loss_reason, loss);
    o.b.opt_str(o.c.competitor, competitor);
    o.b.ts(o.c.updated_at, updated);
    o.b.end_row();
}

pub fn opportunities(
    p: &Resolved,
    a: &AccountPlan,
    lc: Option<&Lifecycle>,
    people: &People,
    faults: &[FaultClass],
    t: &mut Tables,
) {
    let mut r = Rng::stream(p.seed, "opportunities", a.idx as u64, 0);
    let aid = account_id(a.idx);
    let owner = people.owner.as_str();
    let am = people.am.as_deref().unwrap_or(owner);
    let closed_ts =
        |d: Day, r: &mut Rng| d.micros() + r.between(9 * 60, 18 * 60) * MICROS_PER_MINUTE;
    let Some(lc) = lc else {
        // A prospect: nothing, a lost deal, or open pipeline.
        let (lo, hi) = [(8_000, 40_000), (40_000, 200_000), (150_000, 900_000)][a.segment];
        let amount = r.between(lo / 100, hi / 100) as i128 * 10_000;
        let id = new_logo_opp(a.idx);
        if a.prospect_stage == 1 {
            let created = Day(r.between(p.start.0 as i64, p.end.plus(-30).0 as i64) as i32);
            let close = created.plus(r.between(20, 120) as i32).min(p.end);
            let reason = *r.pick(&LOSS_REASONS);
            let comp = (reason == "competitor" || r.chance(0.3)).then(|| *r.pick(&COMPETITORS));
            let upd = closed_ts(close, &mut r);
            opp(
                t,
                &id,
                &aid,
                Some(owner),
                "new_logo",
                "closed_lost",
                amount,
                created,
                close,
                "closed",
                Some(reason),
                comp,
                upd,
            );
        } else if a.prospect_stage == 2 {
            let created = p.end.plus(-(r.between(5, 200) as i32));
            let close = p.as_of.plus(r.between(5, 150) as i32);
            let k = r.range(0, 4) as usize;
            let mut stage = ["prospecting", "discovery", "proposal", "negotiation"][k];
            let forecast = ["pipeline", "pipeline", "best_case", "commit"][k];
            let mut owner_opt = Some(owner);
            if faults.contains(&FaultClass::OpportunityEnumDrift) {
                stage = ["Prospecting", "Discovery", "Proposal", "Negotiation"][k];
                oracle::label(
                    &mut t.oracle_faults,
                    FaultClass::OpportunityEnumDrift,
                    "opp_id",
                    &id,
                    &format!("stage `{stage}` is not an accepted value"),
                    None,
                );
            }
            if faults.contains(&FaultClass::MissingOwner) {
                owner_opt = None;
                oracle::label(
                    &mut t.oracle_faults,
                    FaultClass::MissingOwner,
                    "opp_id",
                    &id,
                    "owner_rep_id is null",
                    None,
                );
            }
            let upd = p.as_of.micros() - r.between(1, 240) * MICROS_PER_HOUR;
            opp(
                t, &id, &aid, owner_opt, "new_logo", stage, amount, created, close, forecast, None,
                None, upd,
            );
        }
        return;
    };

    for term in &lc.terms {
        let cons = term.cons.as_ref().map(|c| (c.commit, c.price_micros));
        let amount = arr_cents(term.seats, term.seat_price_micros, cons);
        let close = if term.superseded {
            term.order_date.plus(-3)
        } else {
            term.order_date
        };
        let upd = closed_ts(close, &mut r);
        match term.kind {
            TermKind::NewLogo => {
                let created = close.plus(-(r.between(30, 150) as i32));
                opp(
                    t,
                    &new_logo_opp(a.idx),
                    &aid,
                    Some(owner),
                    "new_logo",
                    "closed_won",
                    amount,
                    created,
                    close,
                    "closed",
                    None,
                    None,
                    upd,
                );
            }
            TermKind::Renewal => {
                let created = term.start.plus(-120).min(close);
                opp(
                    t,
                    &renewal_opp(a.idx, term.n),
                    &aid,
                    Some(am),
                    "renewal",
                    "closed_won",
                    amount,
                    created,
                    close,
                    "closed",
                    None,
                    None,
                    upd,
                );
            }
        }
    }
    let last = lc.terms.last();
    let next_n = last.map(|t| t.n + 1).unwrap_or(1);
    let last_amount = last
        .map(|t| {
            arr_cents(
                t.seats,
                t.seat_price_micros,
                t.cons.as_ref().map(|c| (c.commit, c.price_micros)),
            )
        })
        .unwrap_or(0);
    if let Some(churn) = lc.churn_date {
        let reason = if lc.archetype == Archetype::ChampionLossDecliner && r.chance(0.4) {
            "competitor"
        } else {
            "no_decision"
        };
        let comp = (reason == "competitor").then(|| *r.pick(&COMPETITORS));
        let upd = closed_ts(churn, &mut r);
        opp(
            t,
            &renewal_opp(a.idx, next_n),
            &aid,
            Some(am),
            "renewal",
            "closed_lost",
            last_amount,
            churn.plus(-120),
            churn,
            "closed",
            Some(reason),
            comp,
            upd,
        );
    } else if let Some(renew) = lc.next_renewal
        && renew.plus(-120) <= p.end
        && last.is_some_and(|t| t.end == renew)
    {
        let days = renew.minus(p.as_of);
        let stage = if days > 60 { "proposal" } else { "negotiation" };
        let forecast = match lc.archetype {
            Archetype::IdealPowerUser | Archetype::ExpansionReady => "commit",
            Archetype::ChampionLossDecliner
            | Archetype::SpikeThenCrash
            | Archetype::StalledOnboarding => "pipeline",
            _ => "best_case",
        };
        let upd = p.as_of.micros() - r.between(1, 240) * MICROS_PER_HOUR;
        opp(
            t,
            &renewal_opp(a.idx, next_n),
            &aid,
            Some(am),
            "renewal",
            stage,
            last_amount,
            renew.plus(-120),
            renew,
            forecast,
            None,
            None,
            upd,
        );
    }
    for add in lc.addons.iter().filter(|x| !x.cancelled) {
        let amount = add.seats as i128 * add.seat_price_micros * 12 / MICROS_PER_CENT;
        let upd = closed_ts(add.order_date, &mut r);
        let created = add.order_date.plus(-(r.between(15, 60) as i32));
        opp(
            t,
            &expansion_opp(a.idx, add.n),
            &aid,
            Some(am),
            "expansion",
            "closed_won",
            amount,
            created,
            add.order_date,
            "closed",
            None,
            None,
            upd,
        );
    }
    if lc.archetype == Archetype::ExpansionReady && lc.churn_date.is_none() && r.chance(0.35) {
        let seats = lc.seats_at(p.end).max(1);
        let amount = (seats as i128 / 4).max(1)
            * lc.terms.last().map(|t| t.seat_price_micros).unwrap_or(0)
            * 12
            / MICROS_PER_CENT;
        let upd = p.as_of.micros() - r.between(1, 240) * MICROS_PER_HOUR;
        let id = expansion_opp(a.idx, 90);
        opp(
            t,
            &id,
            &aid,
            Some(am),
            "expansion",
            "proposal",
            amount,
            p.end.plus(-(r.between(10, 60) as i32)),
            p.as_of.plus(r.between(20, 90) as i32),
            "best_case",
            None,
            None,
            upd,
        );
    }
}

/// Outreach sequences: prospects through the window, customers before they signed and in nurture.
pub fn cadence(
    p: &Resolved,
    a: &AccountPlan,
    lc: Option<&Lifecycle>,
    people: &People,
    t: &mut Tables,
) {
    let mut r = Rng::stream(p.seed, "cadence", a.idx as u64, 0);
    let mut starts: Vec<Day> = Vec::new();
    match lc {
        None => {
            // A prospect is worked continuously: a new sequence every 60–120 days, so outreach
            // reaches as_of at any corpus size (a few sequences per prospect left the newest
            // cadence event of a 200-account corpus a week before as_of).
            let mut start = p.start.plus(r.between(0, 120) as i32);
            while start < p.end {
                starts.push(start);
                start = start.plus(r.between(60, 120) as i32);
            }
        }
        Some(l) => {
            let pre = l.first_start.plus(-(r.between(40, 120) as i32));
            if pre >= p.start {
                starts.push(pre);
            }
            if r.chance(0.3) {
                let lo = l.active_from.max(p.start);
                let hi = l.active_to.min(p.end).plus(-10);
                if hi > lo {
                    starts.push(Day(r.between(lo.0 as i64, hi.0 as i64) as i32));
                }
            }
        }
    }
    starts.sort();
    let aid = account_id(a.idx);
    let as_of = p.as_of.micros();
    let mut k = 0;
    let mut id = String::new();
    for start in starts {
        let seq = if lc.is_some() && start >= lc.map(|l| l.first_start).unwrap_or(start) {
            "nurture"
        } else {
            ["standard", "abm_bespoke", "abm_cluster", "nurture"]
                [r.weighted(&[0.5, if a.segment == 2 { 0.3 } else { 0.05 }, 0.15, 0.15])]
        };
        let play = *r.pick(&PLAYS);
        let targets: Vec<&Contact> = people
            .contacts
            .iter()
            .filter(|c| c.active(start))
            .take(r.between(1, 3) as usize)
            .collect();
        for c in targets {
            let mut ts = start.micros() + r.between(8 * 60, 17 * 60) * MICROS_PER_MINUTE;
            let steps = r.between(3, 5);
            'steps: for step in 0..steps {
                let channel = if step == 0 || r.chance(0.6) {
                    "email"
                } else if r.chance(0.6) {
                    "linkedin"
                } else {
                    "phone"
                };
                let mut events: Vec<(i64, &str, Option<&str>)> = Vec::new();
                let mut stop = false;
                if r.chance(0.02) {
                    let reason = *r.pick(&[
                        "cooldown",
                        "unsubscribed",
                        "duplicate_contact",
                        "trust_gate",
                    ]);
                    events.push((ts, "suppressed", Some(reason)));
                    stop = true;
                } else {
                    events.push((ts, "sent", None));
                    if step == 0 && channel == "email" && r.chance(0.02) {
                        events.push((ts + 5 * MICROS_PER_MINUTE, "bounced", None));
                        stop = true;
                    } else {
                        if r.chance(0.45) {
                            events.push((
                                ts + r.between(10, 2_000) * MICROS_PER_MINUTE,
                                "opened",
                                None,
                            ));
                        }
                        if r.chance(0.07) {
                            let reply = ts + r.between(60, 4_000) * MICROS_PER_MINUTE;
                            events.push((reply, "replied", None));
                            if r.chance(0.35) {
                                events.push((
                                    reply + r.between(30, 2_000) * MICROS_PER_MINUTE,
                                    "meeting_booked",
                                    None,
                                ));
                            }
                            stop = true;
                        }
                    }
                }
                for (ets, kind, reason) in events {
                    if ets >= as_of {
                        break 'steps;
                    }
                    k += 1;
                    id.clear();
                    let _ = write!(id, "CAD-{:06}-{k:04}", a.idx + 1);
                    let ce = &mut t.cadence;
                    ce.b.str(ce.c.event_id, &id);
                    ce.b.str(ce.c.account_id, &aid);
                    ce.b.str(ce.c.contact_id, &c.id);
                    ce.b.str(ce.c.sequence_type, seq);
                    ce.b.str(ce.c.channel, channel);
                    ce.b.ts(ce.c.event_ts, ets);
                    ce.b.str(ce.c.event_type, kind);
                    ce.b.opt_str(ce.c.suppressed_reason, reason);
                    ce.b.str(ce.c.play_id, play);
                    ce.b.end_row();
                }
                if stop {
                    break;
                }
                ts += r.between(2, 4) * 24 * MICROS_PER_HOUR;
            }
        }
    }
}
