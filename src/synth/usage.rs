//! `usage_metering_log`: daily rows per account × SKU while a contract is active, drawn from the
//! lifecycle curves, with the labelled ingest faults of SPEC §5 applied and recorded in the
//! oracle. Hands billing the monthly consumption the books must see (current, non-disputed
//! rows) and the product-database figure (current rows, disputed included).
//!
//! Its length (over 700 lines) is one table's generator: its rows, and the labelled faults
//! that must be injected in the same pass to keep the oracle exact.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::catalog::*;
use super::lifecycle::Lifecycle;
use super::oracle;
use super::params::{FaultClass, Resolved};
use super::plan::{AccountPlan, account_id};
use super::rng::Rng;
use super::tables::Tables;
use crate::calendar::{Day, MICROS_PER_DAY, MICROS_PER_HOUR, MICROS_PER_MINUTE};

const SEAT: u8 = 0;
const CONS: u8 = 1;

fn sku_id(sku: u8) -> &'static str {
    if sku == SEAT {
        SEAT_SKU
    } else {
        CONSUMPTION_SKU
    }
}
fn source(sku: u8) -> &'static str {
    if sku == SEAT {
        "seat-sync"
    } else {
        "metering-api"
    }
}
fn src_code(sku: u8) -> &'static str {
    if sku == SEAT { "seat" } else { "mtr" }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    /// An original measurement (version 1) or its correction.
    Normal,
    /// A replay of the same ingest event.
    Replay,
    /// A labelled extra row: the k-th fault of the account.
    Extra(u8),
}

#[derive(Debug, Clone)]
struct Row {
    sku: u8,
    day: Day,
    period_start: i64,
    period_end: i64,
    units: f64,
    commit: f64,
    overage: f64,
    price: i128,
    overage_price: Option<i128>,
    util: Option<f64>,
    received: i64,
    effective: i64,
    version: i32,
    tag: Tag,
    prior: bool,
    reason: Option<&'static str>,
    audit: &'static str,
    sku_type_override: Option<&'static str>,
    granularity_override: Option<&'static str>,
    audit_override: Option<&'static str>,
    account_override: Option<u32>,
    missing_event_id: bool,
    /// Counts in the current view (false for replays, garbage rows and superseded versions).
    current: bool,
    seq: u32,
}

/// Consumption per month for billing and the reference tables.
#[derive(Debug, Clone, Default)]
pub struct MonthUsage {
    /// Current rows, disputed excluded: what is recognised and billed.
    pub billable_units: i64,
    /// Current rows, disputed included: what the product database holds.
    pub reference_units: i64,
}

pub struct UsageOut {
    /// Month index → consumption units (consumption SKU only).
    pub months: BTreeMap<i32, MonthUsage>,
}

/// `YYYYMMDD` of a day, memoised for the consecutive days rows are written in.
struct DayText {
    day: Day,
    text: String,
}

impl DayText {
    fn new() -> DayText {
        DayText {
            day: Day(i32::MIN),
            text: String::with_capacity(8),
        }
    }
    fn get(&mut self, d: Day) -> &str {
        if d != self.day {
            self.day = d;
            self.text.clear();
            d.push_compact(&mut self.text);
        }
        &self.text
    }
}

fn push_version(out: &mut String, v: i32) {
    if (0..10).contains(&v) {
        out.push((b'0' + v as u8) as char);
    } else {
        let _ = write!(out, "{v}");
    }
}

/// `U-000042-C-20240315-1`, with `r` for replays and `x<k>` for labelled extra rows.
fn usage_id(out: &mut String, acct6: &str, date: &str, r: &Row) {
    out.clear();
    out.push_str("U-");
    out.push_str(acct6);
    out.push_str(if r.sku == SEAT { "-S-" } else { "-C-" });
    out.push_str(date);
    out.push('-');
    push_version(out, r.version);
    match r.tag {
        Tag::Normal => {}
        Tag::Replay => out.push('r'),
        Tag::Extra(k) => {
            let _ = write!(out, "x{k}");
        }
    }
}

/// `mtr-000042-20240315-1` (the source's own event id); extra rows get `x<k>`.
fn event_id(out: &mut String, acct6: &str, date: &str, r: &Row) {
    out.clear();
    out.push_str(src_code(r.sku));
    out.push('-');
    out.push_str(acct6);
    out.push('-');
    out.push_str(date);
    out.push('-');
    match r.tag {
        Tag::Normal | Tag::Replay => push_version(out, r.version),
        Tag::Extra(k) => {
            let _ = write!(out, "x{k}");
        }
    }
}

/// `mtr-b20240316`: one ingest batch per source and receiving day.
fn batch_id(out: &mut String, sku: u8, received_day: &str) {
    out.clear();
    out.push_str(src_code(sku));
    out.push_str("-b");
    out.push_str(received_day);
}

fn acct6(idx: u32) -> String {
    format!("{:06}", idx + 1)
}

pub fn generate(
    p: &Resolved,
    a: &AccountPlan,
    lc: &Lifecycle,
    faults: &[FaultClass],
    t: &mut Tables,
) -> UsageOut {
    let mut r = Rng::stream(p.seed, "usage", a.idx as u64, 0);
    let verified_before = p.as_of.plus(-3).micros();
    let mut rows: Vec<Row> =
        Vec::with_capacity(((lc.active_to.minus(lc.active_from)).max(0) as usize) * 2);
    let mut month_to_date = (i32::MIN, 0.0f64);
    let mut d = lc.active_from;
    while d < lc.active_to {
        let Some(term) = lc.term_at(d) else {
            d = d.plus(1);
            continue;
        };
        let ps = d.micros();
        let pe = ps + MICROS_PER_DAY;
        let received = pe + r.between(10, 360) * MICROS_PER_MINUTE;
        let received = received - received % 1_000_000;
        if received >= p.as_of.micros() {
            // Not yet ingested when the snapshot was taken: the last day arrives after as_of.
            break;
        }
        let audit = if pe <= verified_before {
            "verified"
        } else {
            "pending_recon"
        };
        // Seats: active users of the licensed seats.
        let licensed = lc.seats_at(d).max(1);
        let util = lc.utilization(d, p.as_of) * (1.0 + 0.02 * r.normal());
        let active = ((util * licensed as f64).round() as i64).clamp(1, licensed);
        let mut seat = Row::new(SEAT, d, audit, received);
        seat.units = active as f64;
        seat.commit = licensed as f64;
        seat.price = term.seat_price_micros;
        seat.util = Some(((active as f64 / licensed as f64) * 10_000.0).round() / 100.0);
        rows.push(seat);
        // Consumption: demand × intensity, month-to-date overage against the monthly commit.
        if let Some(c) = &term.cons {
            let units = (lc.base_units * lc.intensity(d) * r.lognormal(0.0, 0.12))
                .round()
                .max(1.0);
            let m = d.month_index();
            if month_to_date.0 != m {
                month_to_date = (m, 0.0);
            }
            let before = month_to_date.1;
            let commit = c.commit as f64;
            month_to_date.1 += units;
            let mut cons = Row::new(CONS, d, audit, received + r.between(0, 59) * 1_000_000);
            cons.units = units;
            cons.commit = commit;
            cons.overage = (before + units - commit).max(0.0) - (before - commit).max(0.0);
            cons.price = c.price_micros;
            cons.overage_price = Some(c.overage_micros);
            rows.push(cons);
        }
        d = d.plus(1);
    }

    let acct6 = acct6(a.idx);
    let mut f = Faulter {
        p,
        a,
        acct6: &acct6,
        r: Rng::stream(p.seed, "usage-faults", a.idx as u64, 0),
        used: Vec::new(),
        extra: 0,
    };
    for class in faults {
        f.apply(*class, &mut rows, t);
    }
    // Generated rows are in (day, sku) order; labelled rows appended by faults are put in place.
    let mut order: Vec<u32> = (0..rows.len() as u32).collect();
    if rows.iter().any(|x| x.seq > 0) {
        order.sort_by_key(|&i| {
            let x = &rows[i as usize];
            (x.day, x.sku, x.seq)
        });
    }
    let mut months: BTreeMap<i32, MonthUsage> = BTreeMap::new();
    let mut id = String::with_capacity(32);
    let mut day_text = DayText::new();
    let mut received_text = DayText::new();
    let acct_id = account_id(a.idx);
    let tb = &mut t.usage;
    let c = &tb.c;
    for &i in &order {
        let row = &rows[i as usize];
        if row.current && row.sku == CONS {
            let m = months.entry(row.day.month_index()).or_default();
            m.reference_units += row.units as i64;
            if row.audit_override.unwrap_or(row.audit) != "disputed" {
                m.billable_units += row.units as i64;
            }
        }
        let b = &mut tb.b;
        let date = day_text.get(row.day);
        usage_id(&mut id, &acct6, date, row);
        b.str(c.usage_id, &id);
        match row.account_override {
            Some(o) => b.str(c.account_id, &account_id(o)),
            None => b.str(c.account_id, &acct_id),
        }
        b.str(c.sku_id, sku_id(row.sku));
        b.str(
            c.sku_type,
            row.sku_type_override.unwrap_or(if row.sku == SEAT {
                "seat"
            } else {
                "consumption"
            }),
        );
        b.ts(c.period_start, row.period_start);
        b.ts(c.period_end, row.period_end);
        b.str(
            c.period_granularity,
            row.granularity_override.unwrap_or("day"),
        );
        b.f64(c.units_consumed, row.units);
        b.f64(c.commit_units, row.commit);
        b.f64(c.overage_units, row.overage);
        b.dec(c.unit_price_usd, row.price);
        b.opt_dec(c.overage_unit_price_usd, row.overage_price);
        b.opt_f64(c.seat_utilization_pct, row.util);
        b.str(c.source_system, source(row.sku));
        if !row.missing_event_id {
            event_id(&mut id, &acct6, date, row);
            b.str(c.ingest_event_id, &id);
        }
        if row.prior {
            let v1 = Row {
                version: 1,
                tag: Tag::Normal,
                ..row.clone()
            };
            usage_id(&mut id, &acct6, date, &v1);
            b.str(c.prior_version_id, &id);
        }
        batch_id(
            &mut id,
            row.sku,
            received_text.get(Day(row.received.div_euclid(MICROS_PER_DAY) as i32)),
        );
        b.str(c.ingest_batch_id, &id);
        b.ts(c.received_at, row.received);
        b.ts(c.effective_at, row.effective);
        b.i32(c.record_version, row.version);
        b.opt_str(c.correction_reason, row.reason);
        b.str(c.audit_status, row.audit_override.unwrap_or(row.audit));
        b.end_row();
    }
    UsageOut { months }
}

impl Row {
    fn new(sku: u8, day: Day, audit: &'static str, received: i64) -> Row {
        let ps = day.micros();
        Row {
            sku,
            day,
            period_start: ps,
            period_end: ps + MICROS_PER_DAY,
            units: 0.0,
            commit: 0.0,
            overage: 0.0,
            price: 0,
            overage_price: None,
            util: None,
            received,
            effective: ps,
            version: 1,
            tag: Tag::Normal,
            prior: false,
            reason: None,
            audit,
            sku_type_override: None,
            granularity_override: None,
            audit_override: None,
            account_override: None,
            missing_event_id: false,
            current: true,
            seq: 0,
        }
    }
}

/// Applies one account's usage faults and writes their oracle rows.
struct Faulter<'a> {
    p: &'a Resolved,
    a: &'a AccountPlan,
    acct6: &'a str,
    r: Rng,
    used: Vec<(u8, Day)>,
    extra: u8,
}

impl Faulter<'_> {
    /// A normal version-1 row of `sku` (or either SKU when None) on a day not used by another
    /// fault, at least `min_age` days after the first and `margin` days before as_of.
    fn pick(&mut self, rows: &[Row], sku: Option<u8>, min_age: i32, margin: i32) -> Option<usize> {
        let first = rows.first()?.day;
        let latest = self.p.as_of.plus(-margin);
        let cand: Vec<usize> = rows
            .iter()
            .enumerate()
            .filter(|(_, x)| {
                x.tag == Tag::Normal
                    && x.version == 1
                    && x.current
                    && x.audit_override.is_none()
                    && sku.is_none_or(|s| x.sku == s)
                    && x.day.minus(first) >= min_age
                    && x.day < latest
                    && !self.used.contains(&(x.sku, x.day))
            })
            .map(|(i, _)| i)
            .collect();
        if cand.is_empty() {
            return None;
        }
        let i = cand[self.r.range(0, cand.len() as i64) as usize];
        self.used.push((rows[i].sku, rows[i].day));
        Some(i)
    }

    fn any_sku(&mut self) -> Option<u8> {
        if self.a.has_consumption && self.r.chance(0.7) {
            Some(CONS)
        } else {
            Some(SEAT)
        }
    }

    fn oracle(&self, t: &mut Tables, class: FaultClass, row: &Row, detail: String) {
        let mut id = String::new();
        let mut date = String::new();
        row.day.push_compact(&mut date);
        usage_id(&mut id, self.acct6, &date, row);
        oracle::label(
            &mut t.oracle_faults,
            class,
            "usage_id",
            &id,
            &detail,
            Some(row.day.first_of_month().0),
        );
    }

    fn extra_row(&mut self, rows: &mut [Row], i: usize) -> Row {
        self.extra += 1;
        let mut x = rows[i].clone();
        x.tag = Tag::Extra(self.extra);
        x.seq = 1 + self.extra as u32;
        x.current = false;
        x.received += self.r.between(1, 600) * 1_000_000;
        x
    }

    fn apply(&mut self, class: FaultClass, rows: &mut Vec<Row>, t: &mut Tables) {
        use FaultClass as F;
        let hour = MICROS_PER_HOUR;
        match class {
            F::DuplicateEvent => {
                let Some(sku) = self.any_sku() else { return };
                let Some(i) = self.pick(rows, Some(sku), 0, 3) else {
                    return;
                };
                let mut x = rows[i].clone();
                x.tag = Tag::Replay;
                x.seq = 1;
                x.current = false;
                x.received += self.r.between(1, 48) * hour;
                self.oracle(
                    t,
                    class,
                    &x,
                    "replay of an ingested event (same source_system and ingest_event_id)".into(),
                );
                rows.push(x);
            }
            F::LateArrival => {
                let Some(sku) = self.any_sku() else { return };
                let Some(i) = self.pick(rows, Some(sku), 0, 15) else {
                    return;
                };
                let late = self.r.between(30, 12 * 24) * hour;
                rows[i].received = rows[i].period_end + late;
                self.oracle(
                    t,
                    class,
                    &rows[i],
                    format!("received {} h after period_end", late / hour),
                );
            }
            F::EffectiveAtDrift => {
                let Some(sku) = self.any_sku() else { return };
                let Some(i) = self.pick(rows, Some(sku), 15, 15) else {
                    return;
                };
                let days = self.r.between(2, 10) * if self.r.chance(0.5) { 1 } else { -1 };
                rows[i].effective = rows[i].period_start + days * MICROS_PER_DAY;
                self.oracle(
                    t,
                    class,
                    &rows[i],
                    format!("effective_at {days:+} days from period_start"),
                );
            }
            F::UsageAnomaly => {
                let Some(i) = self.pick(rows, Some(CONS), 35, 3) else {
                    return;
                };
                let day = rows[i].day;
                let mut prior: Vec<f64> = rows
                    .iter()
                    .filter(|x| {
                        x.sku == CONS
                            && x.tag == Tag::Normal
                            && x.version == 1
                            && x.day < day
                            && x.day >= day.plus(-30)
                    })
                    .map(|x| x.units)
                    .collect();
                prior.sort_by(f64::total_cmp);
                let median = if prior.is_empty() {
                    1.0
                } else {
                    median(&prior)
                };
                let factor = self.r.uniform(15.0, 30.0);
                rows[i].units = (median * factor).ceil();
                self.oracle(
                    t,
                    class,
                    &rows[i],
                    format!(
                        "{:.0} units = {factor:.1}× the trailing 30-day median {median}",
                        rows[i].units
                    ),
                );
            }
            F::DisputedUsage => {
                let Some(i) = self.pick(rows, Some(CONS), 0, 3) else {
                    return;
                };
                rows[i].audit_override = Some("disputed");
                self.oracle(
                    t,
                    class,
                    &rows[i],
                    "customer disputed the metered units".into(),
                );
            }
            F::VersionCorrection => {
                let Some(sku) = self.any_sku() else { return };
                // Half of the corrections land in months that are typically closed by now.
                let closed = self.r.chance(0.5);
                let margin = if closed {
                    self.p
                        .as_of
                        .minus(self.p.as_of.plus(-1).first_of_month().add_months(-1))
                        + 1
                } else {
                    5
                };
                let Some(i) = self.pick(rows, Some(sku), 0, margin) else {
                    return;
                };
                let mut v2 = rows[i].clone();
                rows[i].current = false;
                v2.version = 2;
                v2.prior = true;
                v2.seq = 1;
                v2.reason = Some(*self.r.pick(&CORRECTION_REASONS));
                let latest = self.p.as_of.micros() - hour;
                v2.received = (v2.period_end + self.r.between(2, 40) * MICROS_PER_DAY).min(latest);
                if sku == CONS {
                    let f = self.r.uniform(0.05, 0.2) * if self.r.chance(0.5) { 1.0 } else { -1.0 };
                    v2.units = (v2.units * (1.0 + f)).round().max(1.0);
                    if v2.units == rows[i].units {
                        v2.units += 1.0;
                    }
                } else {
                    let licensed = v2.commit;
                    let delta = if v2.units >= licensed { -1.0 } else { 1.0 };
                    v2.units = (v2.units + delta).clamp(1.0, licensed);
                    v2.util = Some(((v2.units / licensed) * 10_000.0).round() / 100.0);
                }
                let detail = format!("version 2 replaces {} → {} units", rows[i].units, v2.units);
                self.oracle(t, class, &v2, detail);
                rows.push(v2);
            }
            F::NegativeUnits => {
                let Some(sku) = self.any_sku() else { return };
                let Some(i) = self.pick(rows, Some(sku), 0, 3) else {
                    return;
                };
                let mut x = self.extra_row(rows, i);
                x.units = -(self.r.between(1, 1_000) as f64);
                x.overage = 0.0;
                self.oracle(t, class, &x, format!("units_consumed {}", x.units));
                rows.push(x);
            }
            F::InvertedPeriod => {
                let Some(sku) = self.any_sku() else { return };
                let Some(i) = self.pick(rows, Some(sku), 0, 3) else {
                    return;
                };
                let mut x = self.extra_row(rows, i);
                x.period_end = x.period_start - self.r.between(0, 1) * MICROS_PER_DAY;
                self.oracle(t, class, &x, "period_end is not after period_start".into());
                rows.push(x);
            }
            F::FutureDatedPeriod => {
                let Some(sku) = self.any_sku() else { return };
                let Some(i) = self.pick(rows, Some(sku), 0, 3) else {
                    return;
                };
                let mut x = self.extra_row(rows, i);
                let ahead = self.r.between(1, 30);
                x.period_start = self.p.as_of.plus(ahead as i32).micros();
                x.period_end = x.period_start + MICROS_PER_DAY;
                x.effective = x.period_start;
                x.received = self.p.as_of.micros() - self.r.between(1, 20) * hour;
                self.oracle(
                    t,
                    class,
                    &x,
                    format!("period ends {} days after as_of", ahead + 1),
                );
                rows.push(x);
            }
            F::MissingIngestEventId => {
                let Some(sku) = self.any_sku() else { return };
                let Some(i) = self.pick(rows, Some(sku), 0, 3) else {
                    return;
                };
                let mut x = self.extra_row(rows, i);
                x.missing_event_id = true;
                self.oracle(t, class, &x, "ingest_event_id is null".into());
                rows.push(x);
            }
            F::OrphanAccountId => {
                let Some(sku) = self.any_sku() else { return };
                let Some(i) = self.pick(rows, Some(sku), 0, 3) else {
                    return;
                };
                let mut x = self.extra_row(rows, i);
                let orphan = self.p.accounts as u32 + self.a.idx;
                x.account_override = Some(orphan);
                self.oracle(
                    t,
                    class,
                    &x,
                    format!("account_id {} is not in accounts", account_id(orphan)),
                );
                rows.push(x);
            }
            F::SeatUtilizationOutOfRange => {
                let Some(i) = self.pick(rows, Some(SEAT), 0, 3) else {
                    return;
                };
                let mut x = self.extra_row(rows, i);
                let pct = (self.r.uniform(101.0, 140.0) * 100.0).round() / 100.0;
                x.util = Some(pct);
                x.units = (x.commit * pct / 100.0).round();
                self.oracle(t, class, &x, format!("seat_utilization_pct {pct}"));
                rows.push(x);
            }
            F::NonMonotonicVersion => {
                let Some(sku) = self.any_sku() else { return };
                let Some(i) = self.pick(rows, Some(sku), 0, 5) else {
                    return;
                };
                let mut x = self.extra_row(rows, i);
                let gap = self.r.chance(0.5);
                x.version = if gap { 3 } else { 1 };
                x.prior = gap;
                x.reason = Some("meter recount");
                x.received = rows[i].received + self.r.between(2, 72) * hour;
                x.units = (x.units * 1.1).round().max(1.0);
                let what = if gap {
                    "record_version 3 follows version 1"
                } else {
                    "a second record_version 1"
                };
                self.oracle(
                    t,
                    class,
                    &x,
                    format!("{what} for the same account, SKU and period"),
                );
                rows.push(x);
            }
            F::UsageEnumDrift => {
                let Some(sku) = self.any_sku() else { return };
                let Some(i) = self.pick(rows, Some(sku), 0, 3) else {
                    return;
                };
                let mut x = self.extra_row(rows, i);
                let (col, val) = match self.r.range(0, 4) {
                    0 => ("sku_type", if sku == SEAT { "Seat" } else { "Consumption" }),
                    1 => (
                        "sku_type",
                        if sku == SEAT {
                            "seats"
                        } else {
                            "consumption_v2"
                        },
                    ),
                    2 => ("audit_status", "VERIFIED"),
                    _ => ("period_granularity", "daily"),
                };
                match col {
                    "sku_type" => x.sku_type_override = Some(val),
                    "audit_status" => x.audit_override = Some(val),
                    _ => x.granularity_override = Some(val),
                }
                self.oracle(
                    t,
                    class,
                    &x,
                    format!("{col} `{val}` is not an accepted value"),
                );
                rows.push(x);
            }
            _ => {}
        }
    }
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// `reference_usage`: the product database's monthly units per consumption SKU (current rows,
/// disputed included), with the labelled discrepancy when the account has one.
pub fn reference(
    p: &Resolved,
    a: &AccountPlan,
    usage: &UsageOut,
    faults: &[FaultClass],
    t: &mut Tables,
) {
    let mut r = Rng::stream(p.seed, "reference-usage", a.idx as u64, 0);
    let months: Vec<(&i32, &MonthUsage)> = usage.months.iter().collect();
    let off = faults
        .contains(&FaultClass::ReferenceUsageDiscrepancy)
        .then(|| r.range(0, months.len().max(1) as i64) as usize);
    let aid = account_id(a.idx);
    for (k, (m, u)) in months.iter().enumerate() {
        let month = crate::calendar::month_start(**m);
        let mut units = u.reference_units as f64;
        if off == Some(k) {
            let f = r.uniform(0.005, 0.03) * if r.chance(0.5) { 1.0 } else { -1.0 };
            units = (units * (1.0 + f)).round();
            if units == u.reference_units as f64 {
                units += 1.0;
            }
            let key = format!("{aid}|{CONSUMPTION_SKU}|{}", month.iso());
            let detail = format!(
                "product database shows {units} units vs {} metered",
                u.reference_units
            );
            oracle::label(
                &mut t.oracle_faults,
                FaultClass::ReferenceUsageDiscrepancy,
                "account_id|sku_id|month",
                &key,
                &detail,
                Some(month.0),
            );
        }
        let ru = &mut t.ref_usage;
        ru.b.str(ru.c.account_id, &aid);
        ru.b.str(ru.c.sku_id, CONSUMPTION_SKU);
        ru.b.date(ru.c.month, month.0);
        ru.b.f64(ru.c.units, units);
        ru.b.end_row();
    }
}
