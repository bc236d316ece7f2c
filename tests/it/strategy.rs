//! The strategy models against the synthetic corpus' oracle: the cohort curves recover the
//! churn the generator injected (`oracle/accounts.churn_date`), account by account.

use std::collections::BTreeMap;

use gtmos::calendar::Day;

use crate::common::*;

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
    let (wh, _, _) = crate::build::built_for_report();
    let oracle = Table::read(corpus(), "oracle/accounts");
    let manifest = gtmos::snapshot::Manifest::read(corpus()).unwrap();
    let as_of = Day((manifest.as_of_micros().unwrap() / 86_400_000_000) as i32);
    let last_complete = quarter(as_of.0) - 1;
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
