//! The labelled faults of the corpus: every class appears exactly as configured, every labelled
//! row really has its fault, and no unlabelled row has one ("no more, no less").

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::common::*;

/// Fault classes whose rows never enter the accepted flow (rejected, quarantined, replays).
const NOT_ACCEPTED: [&str; 9] = [
    "negative_units",
    "inverted_period",
    "future_dated_period",
    "missing_ingest_event_id",
    "orphan_account_id",
    "seat_utilization_out_of_range",
    "usage_enum_drift",
    "duplicate_event",
    "non_monotonic_version",
];

/// oracle/faults: class → set of keys.
fn oracle() -> BTreeMap<String, BTreeSet<String>> {
    let t = Table::read(corpus(), "oracle/faults");
    let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (class, key) in t.s("fault_class").into_iter().zip(t.s("key")) {
        assert!(
            m.entry(class.clone()).or_default().insert(key.clone()),
            "duplicate oracle key {class} {key}"
        );
    }
    m
}

fn keys(o: &BTreeMap<String, BTreeSet<String>>, class: &str) -> BTreeSet<String> {
    o.get(class).cloned().unwrap_or_default()
}

#[test]
fn every_fault_class_appears_with_the_configured_count() {
    let o = oracle();
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(corpus().join("oracle/summary.json")).unwrap(),
    )
    .unwrap();
    for class in gtmos::synth::params::FaultClass::ALL {
        let s = &summary["faults"][class.name()];
        let requested = s["requested"].as_u64().unwrap();
        assert!(requested >= 1, "{} not requested", class.name());
        assert_eq!(
            s["placed"].as_u64().unwrap(),
            requested,
            "{} not fully placed",
            class.name()
        );
        assert_eq!(
            keys(&o, class.name()).len() as u64,
            requested,
            "{} rows in the oracle",
            class.name()
        );
    }
    // 160 accounts × 0.015 = 2.4 → 2 per account-level class.
    assert_eq!(keys(&o, "negative_units").len(), 2);
}

struct Usage {
    id: Vec<String>,
    account: Vec<Option<String>>,
    sku: Vec<String>,
    sku_type: Vec<String>,
    gran: Vec<String>,
    audit: Vec<String>,
    start: Vec<i64>,
    end: Vec<i64>,
    units: Vec<f64>,
    pct: Vec<Option<f64>>,
    source: Vec<String>,
    event: Vec<Option<String>>,
    received: Vec<i64>,
    effective: Vec<i64>,
    version: Vec<i64>,
    prior: Vec<Option<String>>,
}

fn usage() -> Usage {
    let t = Table::read(corpus(), "usage_metering_log");
    Usage {
        id: t.s("usage_id"),
        account: t.str("account_id"),
        sku: t.s("sku_id"),
        sku_type: t.s("sku_type"),
        gran: t.s("period_granularity"),
        audit: t.s("audit_status"),
        start: t
            .ts("period_start")
            .into_iter()
            .map(Option::unwrap)
            .collect(),
        end: t.ts("period_end").into_iter().map(Option::unwrap).collect(),
        units: t
            .f64("units_consumed")
            .into_iter()
            .map(Option::unwrap)
            .collect(),
        pct: t.f64("seat_utilization_pct"),
        source: t.s("source_system"),
        event: t.str("ingest_event_id"),
        received: t
            .ts("received_at")
            .into_iter()
            .map(Option::unwrap)
            .collect(),
        effective: t
            .ts("effective_at")
            .into_iter()
            .map(Option::unwrap)
            .collect(),
        version: t
            .i64("record_version")
            .into_iter()
            .map(Option::unwrap)
            .collect(),
        prior: t.str("prior_version_id"),
    }
}

const HOUR: i64 = 3_600_000_000;
const DAY: i64 = 24 * HOUR;

fn as_of() -> i64 {
    day(2026, 1, 1) as i64 * DAY
}

fn set_where(u: &Usage, f: impl Fn(usize) -> bool) -> BTreeSet<String> {
    (0..u.id.len())
        .filter(|&i| f(i))
        .map(|i| u.id[i].clone())
        .collect()
}

#[test]
fn hard_ingest_faults_are_exactly_the_labelled_rows() {
    let o = oracle();
    let u = usage();
    let accounts: HashSet<String> = Table::read(corpus(), "accounts")
        .s("account_id")
        .into_iter()
        .collect();
    assert_eq!(
        set_where(&u, |i| u.units[i] < 0.0),
        keys(&o, "negative_units")
    );
    assert_eq!(
        set_where(&u, |i| u.end[i] <= u.start[i]),
        keys(&o, "inverted_period")
    );
    assert_eq!(
        set_where(&u, |i| u.end[i] > as_of()),
        keys(&o, "future_dated_period")
    );
    assert_eq!(
        set_where(&u, |i| u.event[i].is_none()),
        keys(&o, "missing_ingest_event_id")
    );
    assert_eq!(
        set_where(&u, |i| !accounts
            .contains(u.account[i].as_deref().unwrap_or(""))),
        keys(&o, "orphan_account_id")
    );
    assert_eq!(
        set_where(&u, |i| u.pct[i]
            .is_some_and(|p| !(0.0..=100.0).contains(&p))),
        keys(&o, "seat_utilization_out_of_range")
    );
    let reg = registry().table("usage_metering_log").unwrap();
    let domain = |c: &str| reg.column(c).unwrap().accepted_values.clone().unwrap();
    let (types, grans, audits) = (
        domain("sku_type"),
        domain("period_granularity"),
        domain("audit_status"),
    );
    assert_eq!(
        set_where(&u, |i| !types.contains(&u.sku_type[i])
            || !grans.contains(&u.gran[i])
            || !audits.contains(&u.audit[i])),
        keys(&o, "usage_enum_drift")
    );
    assert_eq!(
        set_where(&u, |i| u.audit[i] == "disputed"),
        keys(&o, "disputed_usage")
    );
}

#[test]
fn replays_corrections_and_version_order_are_exactly_the_labelled_rows() {
    let o = oracle();
    let u = usage();
    // Replays: a (source_system, ingest_event_id) already received.
    let mut order: Vec<usize> = (0..u.id.len()).collect();
    order.sort_by_key(|&i| (u.received[i], u.id[i].clone()));
    let mut seen = HashSet::new();
    let mut replays = BTreeSet::new();
    for &i in &order {
        if let Some(e) = &u.event[i]
            && !seen.insert((u.source[i].clone(), e.clone()))
        {
            replays.insert(u.id[i].clone());
        }
    }
    assert_eq!(replays, keys(&o, "duplicate_event"));

    // Corrections: version 2 rows pointing at an existing version 1.
    let ids: HashMap<&str, usize> =
        u.id.iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
    let v2 = set_where(&u, |i| u.version[i] == 2);
    assert_eq!(v2, keys(&o, "version_correction"));
    for id in &v2 {
        let i = ids[id.as_str()];
        let p = ids[u.prior[i].as_deref().expect("prior_version_id")];
        assert_eq!(u.version[p], 1);
        assert_eq!(
            (u.account[p].clone(), u.start[p], u.sku[p].clone()),
            (u.account[i].clone(), u.start[i], u.sku[i].clone())
        );
        assert!(u.received[i] > u.received[p]);
    }

    // Version order within a natural key, among rows that pass the other hard rules.
    // (non_monotonic_version is the rule under test, so it is not taken out first.)
    let rejected: HashSet<String> = NOT_ACCEPTED[..8].iter().flat_map(|c| keys(&o, c)).collect();
    let mut by_key: BTreeMap<(String, String, i64, i64, String), Vec<usize>> = BTreeMap::new();
    for i in 0..u.id.len() {
        if !rejected.contains(&u.id[i]) {
            let k = (
                u.account[i].clone().unwrap(),
                u.sku[i].clone(),
                u.start[i],
                u.end[i],
                u.source[i].clone(),
            );
            by_key.entry(k).or_default().push(i);
        }
    }
    let mut violations = BTreeSet::new();
    for rows in by_key.values_mut() {
        rows.sort_by_key(|&i| u.received[i]);
        for (n, &i) in rows.iter().enumerate() {
            if u.version[i] != n as i64 + 1 {
                violations.insert(u.id[i].clone());
            }
        }
    }
    assert_eq!(violations, keys(&o, "non_monotonic_version"));
}

#[test]
fn soft_ingest_faults_are_exactly_the_labelled_rows() {
    let o = oracle();
    let u = usage();
    let labelled: HashSet<String> = o
        .iter()
        .filter(|(c, _)| {
            !["late_arrival", "effective_at_drift", "usage_anomaly"].contains(&c.as_str())
        })
        .flat_map(|(_, k)| k.iter().cloned())
        .collect();
    let clean = |i: usize| !labelled.contains(&u.id[i]);
    assert_eq!(
        set_where(&u, |i| clean(i)
            && u.version[i] == 1
            && u.received[i] > u.end[i] + DAY),
        keys(&o, "late_arrival")
    );
    assert_eq!(
        set_where(&u, |i| clean(i)
            && (u.effective[i] < u.start[i] || u.effective[i] > u.end[i])),
        keys(&o, "effective_at_drift")
    );
    // Units > 10× the trailing 30-day median of the current view (the SOFT anomaly rule): the
    // natural data never trips it, the labelled anomalies always do.
    let superseded: HashSet<&str> = (0..u.id.len())
        .filter_map(|i| u.prior[i].as_deref())
        .collect();
    let mut series: BTreeMap<(String, String), Vec<(i64, f64, String)>> = BTreeMap::new();
    for i in 0..u.id.len() {
        let current = u.version[i] <= 2 && !superseded.contains(u.id[i].as_str());
        if clean(i) && current || keys(&o, "usage_anomaly").contains(&u.id[i]) {
            series
                .entry((u.account[i].clone().unwrap(), u.sku[i].clone()))
                .or_default()
                .push((u.start[i], u.units[i], u.id[i].clone()));
        }
    }
    let mut anomalies = BTreeSet::new();
    for rows in series.values_mut() {
        rows.sort_by_key(|r| r.0);
        for (n, (start, units, id)) in rows.iter().enumerate() {
            let mut window: Vec<f64> = rows[..n]
                .iter()
                .filter(|r| r.0 >= start - 30 * DAY)
                .map(|r| r.1)
                .collect();
            if window.len() < 7 {
                continue;
            }
            window.sort_by(f64::total_cmp);
            let m = window.len();
            let median = if m % 2 == 1 {
                window[m / 2]
            } else {
                (window[m / 2 - 1] + window[m / 2]) / 2.0
            };
            if *units > 10.0 * median {
                anomalies.insert(id.clone());
            }
        }
    }
    assert_eq!(anomalies, keys(&o, "usage_anomaly"));
}

#[test]
fn crm_and_reference_faults_are_exactly_the_labelled_rows() {
    let o = oracle();
    let opps = Table::read(corpus(), "opportunities");
    let stages = registry()
        .table("opportunities")
        .unwrap()
        .column("stage")
        .unwrap()
        .accepted_values
        .clone()
        .unwrap();
    let ids = opps.s("opp_id");
    let bad_stage: BTreeSet<String> = opps
        .s("stage")
        .iter()
        .zip(&ids)
        .filter(|(s, _)| !stages.contains(s))
        .map(|(_, id)| id.clone())
        .collect();
    assert_eq!(bad_stage, keys(&o, "opportunity_enum_drift"));
    let no_owner: BTreeSet<String> = opps
        .str("owner_rep_id")
        .iter()
        .zip(&ids)
        .filter(|(s, _)| s.is_none())
        .map(|(_, id)| id.clone())
        .collect();
    assert_eq!(no_owner, keys(&o, "missing_owner"));

    // Reference billing differs from the invoice exactly where labelled.
    let inv = Table::read(corpus(), "invoices");
    let amounts: HashMap<String, i128> = inv
        .s("invoice_id")
        .into_iter()
        .zip(inv.dec("amount_usd").into_iter().map(Option::unwrap))
        .collect();
    let rb = Table::read(corpus(), "reference_billing");
    let differ: BTreeSet<String> = rb
        .s("invoice_id")
        .into_iter()
        .zip(rb.dec("amount_usd"))
        .filter(|(id, a)| amounts[id] != a.unwrap())
        .map(|(id, _)| id)
        .collect();
    assert_eq!(rb.rows, inv.rows);
    assert_eq!(differ, keys(&o, "reference_billing_discrepancy"));

    // Reference usage differs from the metered current view exactly where labelled.
    let u = usage();
    let garbage: HashSet<String> = NOT_ACCEPTED.iter().flat_map(|c| keys(&o, c)).collect();
    // Superseded by an accepted correction (a rejected row supersedes nothing).
    let superseded: HashSet<&str> = (0..u.id.len())
        .filter(|&i| !garbage.contains(&u.id[i]))
        .filter_map(|i| u.prior[i].as_deref())
        .collect();
    let mut metered: BTreeMap<String, f64> = BTreeMap::new();
    for i in 0..u.id.len() {
        if u.sku[i] == "API-CALLS"
            && !garbage.contains(&u.id[i])
            && !superseded.contains(u.id[i].as_str())
        {
            let month = gtmos::calendar::Day((u.start[i] / DAY) as i32)
                .first_of_month()
                .iso();
            *metered
                .entry(format!(
                    "{}|API-CALLS|{month}",
                    u.account[i].clone().unwrap()
                ))
                .or_default() += u.units[i];
        }
    }
    let ru = Table::read(corpus(), "reference_usage");
    let mut differ = BTreeSet::new();
    for ((a, s), (m, units)) in ru
        .s("account_id")
        .into_iter()
        .zip(ru.s("sku_id"))
        .zip(ru.date("month").into_iter().zip(ru.f64("units")))
    {
        let key = format!("{a}|{s}|{}", gtmos::calendar::Day(m.unwrap()).iso());
        if metered.get(&key).copied() != units {
            differ.insert(key);
        }
    }
    assert_eq!(ru.rows, metered.len());
    assert_eq!(differ, keys(&o, "reference_usage_discrepancy"));

    let rs = Table::read(corpus(), "restatements");
    assert_eq!(
        rs.s("restatement_id").into_iter().collect::<BTreeSet<_>>(),
        keys(&o, "restatement")
    );
    let sp = Table::read(corpus(), "gtm_spend");
    let negative = sp
        .dec("amount_usd")
        .iter()
        .filter(|a| a.unwrap() < 0)
        .count();
    assert_eq!(negative, keys(&o, "spend_out_of_range").len());
    assert_eq!(Table::read(corpus(), "reference_gl").rows, 24);
}
