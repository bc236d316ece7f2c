//! Orders, order lines, service milestones, invoices, invoice lines and payment events of one
//! customer, from its contract chain; plus the generator's own books (recognition and billing
//! per month, SPEC §7 daily convention) that the general-ledger reference and the company
//! financials are drawn from, and the reference billing figures for reconciliation.

use super::catalog::*;
use super::lifecycle::{Lifecycle, Term, TermKind};
use super::oracle;
use super::params::{Archetype, FaultClass, Resolved};
use super::plan::{AccountPlan, account_id};
use super::rng::Rng;
use super::summary::Summary;
use super::tables::Tables;
use super::usage::UsageOut;
use crate::calendar::{Day, MICROS_PER_DAY, MICROS_PER_MINUTE, overlap_days};
use crate::money::{MICROS_PER_CENT, allocate, format_cents};

/// The order of term `n`; a re-papered term's replacement order adds an `R` (see [`term_order_id`]).
pub fn order_id(acct: u32, n: u32) -> String {
    format!("ORD-{:06}-{n}", acct + 1)
}

/// Opportunity ids shared with the CRM generator.
pub fn new_logo_opp(acct: u32) -> String {
    format!("OPP-{:06}-N1", acct + 1)
}
pub fn renewal_opp(acct: u32, term: u32) -> String {
    format!("OPP-{:06}-R{term}", acct + 1)
}
pub fn expansion_opp(acct: u32, k: u32) -> String {
    format!("OPP-{:06}-X{k}", acct + 1)
}

/// The id of a term's active order (a re-papered first order gets an `R` suffix).
fn term_order_id(acct: u32, t: &Term) -> String {
    if t.superseded {
        format!("{}R", order_id(acct, t.n))
    } else {
        order_id(acct, t.n)
    }
}

struct Invoice {
    date: Day,
    order_id: String,
    billing_type: &'static str,
    period: (Day, Day),
    lines: Vec<(String, i128, Day, Day)>,
}

pub struct BillingCtx<'a> {
    pub p: &'a Resolved,
    pub a: &'a AccountPlan,
    pub lc: &'a Lifecycle,
    pub usage: &'a UsageOut,
    pub faults: &'a [FaultClass],
}

/// Cents of `qty × price_micros × months`.
fn recurring_cents(qty: i64, price_micros: i128, months: i32) -> i128 {
    qty as i128 * price_micros * months as i128 / MICROS_PER_CENT
}

fn months_between(a: Day, b: Day) -> i32 {
    b.month_index() - a.month_index()
}

pub fn generate(ctx: &BillingCtx, t: &mut Tables, s: &mut Summary) {
    let BillingCtx {
        p,
        a,
        lc,
        usage,
        faults,
    } = *ctx;
    let acct = a.idx;
    let aid = account_id(acct);
    let mut r = Rng::stream(p.seed, "billing", acct as u64, 0);
    let mut invoices: Vec<Invoice> = Vec::new();
    let step = match lc.billing {
        "monthly" => 1,
        "quarterly" => 3,
        _ => 12,
    };
    let seg = a.segment;
    // Seat lines eligible for a restatement: (line id, line amount, start, end).
    let mut seat_lines: Vec<(String, i128, Day, Day)> = Vec::new();

    for term in &lc.terms {
        let oid = term_order_id(acct, term);
        let months = months_between(term.start, term.end);
        let opp = match term.kind {
            TermKind::NewLogo => new_logo_opp(acct),
            TermKind::Renewal => renewal_opp(acct, term.n),
        };
        if term.superseded {
            // The original paperwork, replaced by an identical order: kept, never billed.
            let old = order_id(acct, term.n);
            write_order(
                t,
                &old,
                &aid,
                Some(&opp),
                term.order_date.plus(-3),
                term.start,
                term.end,
                "superseded",
                None,
                lc.billing,
            );
            // The re-papered order added the services; the original had seats (and consumption) only.
            write_term_lines(t, &old, &aid, term, months, false);
        }
        let amends = term.superseded.then(|| order_id(acct, term.n));
        write_order(
            t,
            &oid,
            &aid,
            Some(&opp),
            term.order_date,
            term.start,
            term.end,
            "active",
            amends.as_deref(),
            lc.billing,
        );
        let (seat_line, cons_line, svc_line) = write_term_lines(t, &oid, &aid, term, months, true);

        // Books: seat ratable daily, remainder to the final month.
        let seat_amount = recurring_cents(term.seats, term.seat_price_micros, months);
        recognise_ratable(s, seg, seat_amount, term.start, term.end);
        seat_lines.push((seat_line.clone(), seat_amount, term.start, term.end));
        if term.kind == TermKind::NewLogo {
            let mut arr = recurring_cents(term.seats, term.seat_price_micros, 12);
            if let Some(c) = &term.cons {
                arr += recurring_cents(c.commit, c.price_micros, 12);
            }
            s.add_arr(term.start.month_index(), seg, a.channel, arr);
        }

        // Recurring invoices, in advance.
        let mut ps = term.start;
        while ps < term.end && ps < p.as_of {
            let pe = ps.add_months(step).min(term.end);
            let m = months_between(ps, pe);
            let mut lines = vec![(
                seat_line.clone(),
                recurring_cents(term.seats, term.seat_price_micros, m),
                ps,
                pe,
            )];
            if let (Some(c), Some(l)) = (&term.cons, &cons_line) {
                lines.push((
                    l.clone(),
                    recurring_cents(c.commit, c.price_micros, m),
                    ps,
                    pe,
                ));
            }
            invoices.push(Invoice {
                date: ps,
                order_id: oid.clone(),
                billing_type: "recurring",
                period: (ps, pe),
                lines,
            });
            ps = pe;
        }

        // Consumption: commit every month plus overage from current, non-disputed usage;
        // overage invoiced in arrears on the 1st of the next month.
        if let (Some(c), Some(l)) = (&term.cons, &cons_line) {
            let mut m = term.start;
            while m < term.end && m < p.as_of {
                let next = m.add_months(1);
                let commit_cents = recurring_cents(c.commit, c.price_micros, 1);
                let units = usage
                    .months
                    .get(&m.month_index())
                    .map(|u| u.billable_units)
                    .unwrap_or(0);
                let over_units = (units - c.commit).max(0);
                let over_cents = over_units as i128 * c.overage_micros / MICROS_PER_CENT;
                s.add_recurring(seg, m.month_index(), commit_cents + over_cents);
                if over_cents > 0 && next < p.as_of {
                    invoices.push(Invoice {
                        date: next,
                        order_id: oid.clone(),
                        billing_type: "consumption",
                        period: (m, next),
                        lines: vec![(l.clone(), over_cents, m, next)],
                    });
                }
                m = next;
            }
        }

        // Services: milestones, recognised and invoiced on customer sign-off only.
        if let Some(l) = &svc_line {
            for (i, ms) in term.services.iter().enumerate() {
                let mid = format!("{l}-M{}", i + 1);
                let sm = &mut t.service_milestones;
                sm.b.str(sm.c.milestone_id, &mid);
                sm.b.str(sm.c.order_line_id, l);
                sm.b.str(sm.c.account_id, &aid);
                sm.b.str(sm.c.milestone_name, ms.name);
                sm.b.dec(sm.c.amount_usd, ms.amount_cents);
                sm.b.date(sm.c.planned_date, ms.planned.0);
                sm.b.opt_date(sm.c.completed_date, ms.completed.map(|d| d.0));
                sm.b.bool(sm.c.customer_sign_off, ms.sign_off.is_some());
                sm.b.opt_date(sm.c.sign_off_date, ms.sign_off.map(|d| d.0));
                sm.b.end_row();
                if let Some(so) = ms.sign_off {
                    s.add_services(so.month_index(), ms.amount_cents);
                    invoices.push(Invoice {
                        date: so,
                        order_id: oid.clone(),
                        billing_type: "milestone",
                        period: (so, so.plus(1)),
                        lines: vec![(l.clone(), ms.amount_cents, so, so.plus(1))],
                    });
                }
            }
        }
    }

    // Add-ons (amendments): co-terminous seats; cancelled ones are never billed.
    for add in &lc.addons {
        let Some(parent) = lc.terms.iter().find(|t| t.n == add.parent) else {
            continue;
        };
        let oid = format!("ORD-{:06}-A{}", acct + 1, add.n);
        let status = if add.cancelled { "cancelled" } else { "active" };
        let opp = (!add.cancelled).then(|| expansion_opp(acct, add.n));
        let parent_id = term_order_id(acct, parent);
        write_order(
            t,
            &oid,
            &aid,
            opp.as_deref(),
            add.order_date,
            add.start,
            add.end,
            status,
            Some(&parent_id),
            lc.billing,
        );
        let months = months_between(add.start, add.end);
        let line = format!("{oid}-L1");
        let amount = recurring_cents(add.seats, add.seat_price_micros, months);
        write_line(
            t,
            &line,
            &oid,
            &aid,
            SEAT_SKU,
            "seat",
            add.seats,
            add.seat_price_micros,
            None,
            amount,
        );
        if add.cancelled {
            continue;
        }
        recognise_ratable(s, seg, amount, add.start, add.end);
        seat_lines.push((line.clone(), amount, add.start, add.end));
        let mut ps = add.start;
        while ps < add.end && ps < p.as_of {
            let pe = ps.add_months(step).min(add.end);
            let c = recurring_cents(add.seats, add.seat_price_micros, months_between(ps, pe));
            invoices.push(Invoice {
                date: ps,
                order_id: oid.clone(),
                billing_type: "recurring",
                period: (ps, pe),
                lines: vec![(line.clone(), c, ps, pe)],
            });
            ps = pe;
        }
    }

    invoices.sort_by(|x, y| {
        (x.date, &x.order_id, x.billing_type).cmp(&(y.date, &y.order_id, y.billing_type))
    });
    let discrepancy = faults
        .contains(&FaultClass::ReferenceBillingDiscrepancy)
        .then(|| r.range(0, invoices.len().max(1) as i64) as usize);
    let profile = payment_profile(&mut r, lc.archetype);
    for (k, inv) in invoices.iter().enumerate() {
        let id = format!("INV-{:06}-{:04}", acct + 1, k + 1);
        let amount: i128 = inv.lines.iter().map(|l| l.1).sum();
        let due = inv.date.plus(if seg == 2 { 45 } else { 30 });
        s.add_billed(inv.date.month_index(), amount);
        let troubled = inv.date >= p.as_of.plus(-100) && profile != Trouble::None;
        let status = payments(
            t,
            &mut r,
            p,
            &aid,
            &id,
            inv.date,
            due,
            amount,
            if troubled { profile } else { Trouble::None },
        );
        let iv = &mut t.invoices;
        iv.b.str(iv.c.invoice_id, &id);
        iv.b.str(iv.c.account_id, &aid);
        iv.b.str(iv.c.order_id, &inv.order_id);
        iv.b.date(iv.c.invoice_date, inv.date.0);
        iv.b.date(iv.c.due_date, due.0);
        iv.b.str(iv.c.billing_type, inv.billing_type);
        iv.b.date(iv.c.period_start, inv.period.0.0);
        iv.b.date(iv.c.period_end, inv.period.1.0);
        iv.b.dec(iv.c.amount_usd, amount);
        iv.b.str(iv.c.status, status);
        iv.b.end_row();
        for (j, (line, cents, ss, se)) in inv.lines.iter().enumerate() {
            let il = &mut t.invoice_lines;
            il.b.str(il.c.invoice_line_id, &format!("{id}-{}", j + 1));
            il.b.str(il.c.invoice_id, &id);
            il.b.str(il.c.order_line_id, line);
            il.b.dec(il.c.amount_usd, *cents);
            il.b.date(il.c.service_period_start, ss.0);
            il.b.date(il.c.service_period_end, se.0);
            il.b.end_row();
        }
        // Reference billing: the billing system's total, with the labelled discrepancy.
        let mut reference = amount;
        if discrepancy == Some(k) {
            let delta = r.between(50, 25_000) as i128 * if r.chance(0.5) { 1 } else { -1 };
            reference += delta;
            oracle::label(
                &mut t.oracle_faults,
                FaultClass::ReferenceBillingDiscrepancy,
                "invoice_id",
                &id,
                &format!(
                    "billing system shows {} vs invoiced {}",
                    format_cents(reference),
                    format_cents(amount)
                ),
                Some(inv.date.first_of_month().0),
            );
        }
        let rb = &mut t.ref_billing;
        rb.b.str(rb.c.invoice_id, &id);
        rb.b.dec(rb.c.amount_usd, reference);
        rb.b.end_row();
    }

    if faults.contains(&FaultClass::Restatement) {
        restate(p, &mut r, &aid, &seat_lines, t, s);
    }
}

/// Daily ratable recognition of `amount` over `[start, end)`, remainder in the final month.
fn recognise_ratable(s: &mut Summary, seg: usize, amount: i128, start: Day, end: Day) {
    let months: Vec<i32> = (start.month_index()..=end.plus(-1).month_index()).collect();
    let weights: Vec<i128> = months
        .iter()
        .map(|m| {
            let ms = crate::calendar::month_start(*m);
            overlap_days(start, end, ms, ms.add_months(1)) as i128
        })
        .collect();
    for (m, cents) in months.iter().zip(allocate(amount, &weights)) {
        s.add_recurring(seg, *m, cents);
    }
}

#[allow(clippy::too_many_arguments)]
fn write_order(
    t: &mut Tables,
    id: &str,
    aid: &str,
    opp: Option<&str>,
    order_date: Day,
    start: Day,
    end: Day,
    status: &str,
    amends: Option<&str>,
    billing: &str,
) {
    let o = &mut t.orders;
    o.b.str(o.c.order_id, id);
    o.b.str(o.c.account_id, aid);
    o.b.opt_str(o.c.opp_id, opp);
    o.b.date(o.c.order_date, order_date.0);
    o.b.date(o.c.term_start, start.0);
    o.b.date(o.c.term_end, end.0);
    o.b.str(o.c.status, status);
    o.b.opt_str(o.c.amends_order_id, amends);
    o.b.str(o.c.billing_frequency, billing);
    o.b.end_row();
}

#[allow(clippy::too_many_arguments)]
fn write_line(
    t: &mut Tables,
    id: &str,
    order: &str,
    aid: &str,
    sku: &str,
    sku_type: &str,
    qty: i64,
    price_micros: i128,
    overage_micros: Option<i128>,
    amount: i128,
) {
    let l = &mut t.order_lines;
    l.b.str(l.c.order_line_id, id);
    l.b.str(l.c.order_id, order);
    l.b.str(l.c.account_id, aid);
    l.b.str(l.c.sku_id, sku);
    l.b.str(l.c.sku_type, sku_type);
    l.b.i64(l.c.quantity, qty);
    l.b.dec(l.c.unit_price_usd, price_micros);
    l.b.opt_dec(l.c.overage_unit_price_usd, overage_micros);
    l.b.dec(l.c.line_amount_usd, amount);
    l.b.end_row();
}

/// The lines of a term's order: (seat line, consumption line, services line).
fn write_term_lines(
    t: &mut Tables,
    oid: &str,
    aid: &str,
    term: &Term,
    months: i32,
    services: bool,
) -> (String, Option<String>, Option<String>) {
    let seat = format!("{oid}-L1");
    let amount = recurring_cents(term.seats, term.seat_price_micros, months);
    write_line(
        t,
        &seat,
        oid,
        aid,
        SEAT_SKU,
        "seat",
        term.seats,
        term.seat_price_micros,
        None,
        amount,
    );
    let cons = term.cons.as_ref().map(|c| {
        let id = format!("{oid}-L2");
        let amount = recurring_cents(c.commit, c.price_micros, months);
        write_line(
            t,
            &id,
            oid,
            aid,
            CONSUMPTION_SKU,
            "consumption",
            c.commit,
            c.price_micros,
            Some(c.overage_micros),
            amount,
        );
        id
    });
    let svc = (services && !term.services.is_empty()).then(|| {
        let id = format!("{oid}-L3");
        let total: i128 = term.services.iter().map(|m| m.amount_cents).sum();
        write_line(
            t,
            &id,
            oid,
            aid,
            SERVICES_SKU,
            "services",
            1,
            total * MICROS_PER_CENT,
            None,
            total,
        );
        id
    });
    (seat, cons, svc)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trouble {
    None,
    Late,
    Failed,
    Suspended,
}

fn payment_profile(r: &mut Rng, a: Archetype) -> Trouble {
    let w: [f64; 4] = match a {
        Archetype::ChampionLossDecliner => [0.55, 0.2, 0.15, 0.10],
        Archetype::SpikeThenCrash => [0.75, 0.15, 0.07, 0.03],
        Archetype::StalledOnboarding => [0.80, 0.12, 0.06, 0.02],
        Archetype::SurfaceOnlyAdopter => [0.90, 0.07, 0.02, 0.01],
        _ => [0.97, 0.02, 0.01, 0.0],
    };
    [
        Trouble::None,
        Trouble::Late,
        Trouble::Failed,
        Trouble::Suspended,
    ][r.weighted(&w)]
}

/// Write an invoice's payment events (only those before as_of) and return its status at as_of.
#[allow(clippy::too_many_arguments)]
fn payments(
    t: &mut Tables,
    r: &mut Rng,
    p: &Resolved,
    aid: &str,
    invoice: &str,
    date: Day,
    due: Day,
    amount: i128,
    trouble: Trouble,
) -> &'static str {
    let as_of = p.as_of.micros();
    let at = |d: Day, r: &mut Rng| d.micros() + r.between(8 * 60, 20 * 60) * MICROS_PER_MINUTE;
    // (ts, type, attempt, prior, new)
    let mut ev: Vec<(i64, &'static str, i32, &'static str, &'static str)> = Vec::new();
    match trouble {
        Trouble::None => {
            // Paid any day of the payment terms, the due date included: invoices dated on
            // the first of a month are paid through its last day, not only until the 26th.
            let ts = at(date.plus(r.between(0, due.minus(date) as i64) as i32), r);
            ev.push((ts, "attempt", 1, "current", "current"));
            ev.push((
                ts + r.between(1, 120) * MICROS_PER_MINUTE,
                "success",
                1,
                "current",
                "current",
            ));
            if r.chance(0.003) {
                ev.push((
                    ts + r.between(3, 30) * MICROS_PER_DAY,
                    "reversal",
                    1,
                    "current",
                    "overdue",
                ));
            }
        }
        Trouble::Late => {
            ev.push((at(due.plus(1), r), "escalation", 0, "current", "overdue"));
            let ts = at(due.plus(r.between(5, 40) as i32), r);
            ev.push((ts, "attempt", 1, "overdue", "overdue"));
            ev.push((
                ts + r.between(1, 120) * MICROS_PER_MINUTE,
                "success",
                1,
                "overdue",
                "current",
            ));
        }
        Trouble::Failed | Trouble::Suspended => {
            let ts = at(date.plus(r.between(0, 10) as i32), r);
            ev.push((ts, "failure", 1, "current", "failed"));
            ev.push((ts + 3 * MICROS_PER_DAY, "retry", 2, "failed", "failed"));
            ev.push((
                ts + 3 * MICROS_PER_DAY + MICROS_PER_MINUTE,
                "failure",
                2,
                "failed",
                "failed",
            ));
            if trouble == Trouble::Suspended {
                ev.push((at(due.plus(1), r), "escalation", 2, "failed", "overdue"));
                ev.push((at(due.plus(15), r), "suspension", 2, "overdue", "suspended"));
            } else if r.chance(0.4) {
                ev.push((ts + 6 * MICROS_PER_DAY, "retry", 3, "failed", "failed"));
                ev.push((
                    ts + 6 * MICROS_PER_DAY + MICROS_PER_MINUTE,
                    "success",
                    3,
                    "failed",
                    "current",
                ));
            }
        }
    }
    ev.sort_by_key(|e| e.0);
    let mut paid = false;
    for (k, (ts, kind, attempt, prior, new)) in ev.iter().enumerate() {
        if *ts >= as_of {
            break;
        }
        match *kind {
            "success" => paid = true,
            "reversal" => paid = false,
            _ => {}
        }
        let pe = &mut t.payment_events;
        pe.b.str(pe.c.event_id, &format!("PE-{}-{}", &invoice[4..], k + 1));
        pe.b.str(pe.c.invoice_id, invoice);
        pe.b.str(pe.c.account_id, aid);
        pe.b.ts(pe.c.event_ts, *ts);
        pe.b.str(pe.c.event_type, kind);
        pe.b.i32(pe.c.attempt_number, *attempt);
        pe.b.str(pe.c.external_event_id, &format!("ch_{:016x}", r.u64()));
        pe.b.dec(pe.c.amount_usd, amount);
        pe.b.str(pe.c.prior_state, prior);
        pe.b.str(pe.c.new_state, new);
        pe.b.end_row();
    }
    if paid {
        "paid"
    } else if due < p.as_of {
        "overdue"
    } else {
        "open"
    }
}

/// A labelled auditor restatement of an early, typically closed, month of a seat line.
fn restate(
    p: &Resolved,
    r: &mut Rng,
    aid: &str,
    seat_lines: &[(String, i128, Day, Day)],
    t: &mut Tables,
    s: &mut Summary,
) {
    let first = p.start.first_of_month();
    let month = first.add_months(r.between(0, 2) as i32);
    let Some((line, ..)) = seat_lines
        .iter()
        .find(|(_, _, st, en)| *st <= month && month < *en)
    else {
        return;
    };
    let delta = r.between(5_000, 50_000) as i128 * if r.chance(0.5) { 1 } else { -1 };
    let id = format!("RST-{}-1", &aid[4..]);
    let rs = &mut t.restatements;
    rs.b.str(rs.c.restatement_id, &id);
    rs.b.date(rs.c.period_start, month.0);
    rs.b.str(rs.c.order_line_id, line);
    rs.b.dec(rs.c.amount_delta_usd, delta);
    rs.b.str(rs.c.reason, "Auditor adjustment: seat count true-up");
    rs.b.str(rs.c.approved_by, "Controller");
    rs.b.end_row();
    s.add_restated(month.month_index(), delta);
    oracle::label(
        &mut t.oracle_faults,
        FaultClass::Restatement,
        "restatement_id",
        &id,
        &format!("{} restated by {}", line, format_cents(delta)),
        Some(month.0),
    );
}
