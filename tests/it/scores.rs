//! Tier-1 scores (SPEC §9) on hand-made snapshots whose answers are worked out by hand in the
//! comments: health dimension points, rescaling over data gaps, the ConvIntelligence
//! adjustment (CSM calls only), payment caps; churn multipliers and tier boundaries; alerts;
//! expansion signals and gates; adoption patterns. As of 2026-01-01 throughout.

use std::path::{Path, PathBuf};

use gtmos::calendar::Day;
use serde_json::{Map, Value, json};

use crate::common::*;

const AS_OF: &str = "2026-01-01T00:00:00Z";

fn d(s: &str) -> Day {
    Day::parse(s).unwrap()
}

/// Everything a hand-made scores snapshot holds, table by table.
#[derive(Default)]
struct Data {
    accounts: Vec<Value>,
    orders: Vec<Value>,
    order_lines: Vec<Value>,
    usage: Vec<Value>,
    contacts: Vec<Value>,
    calls: Vec<Value>,
    nps: Vec<Value>,
    tickets: Vec<Value>,
    invoices: Vec<Value>,
    payments: Vec<Value>,
    features: Vec<Value>,
    opportunities: Vec<Value>,
    onboarding: Vec<Value>,
}

impl Data {
    /// A customer on a seat contract over [start, end) (and a consumption line).
    fn customer(&mut self, id: &str, segment: &str, start: &str, end: &str) {
        let mut a = account_row(id, segment);
        if segment == "MM" {
            a["employee_count"] = json!(300);
        }
        self.accounts.push(a);
        let (o, l) = seat_contract(&format!("ORD-{id}"), id, start, end, 1200.0);
        self.orders.push(o);
        self.order_lines.push(l);
        self.order_lines.push(
            json!({"order_line_id": format!("ORD-{id}-C"), "order_id": format!("ORD-{id}"),
            "account_id": id, "sku_id": "CONS-API", "sku_type": "consumption", "quantity": 300,
            "unit_price_usd": 1.0, "overage_unit_price_usd": 1.25, "line_amount_usd": 1.0}),
        );
    }

    /// Daily seat rows from `from` for `days` days: `pct` % of 100 licensed seats active.
    fn seats(&mut self, id: &str, from: &str, days: i32, pct: f64) {
        for i in 0..days {
            let day = d(from).plus(i);
            self.usage.push(usage_row(
                id,
                "SEAT-PLATFORM",
                "seat",
                day,
                pct,
                100.0,
                0.0,
                Some(pct),
            ));
        }
    }

    /// Daily consumption rows (monthly commit 300) from `from` for `days` days.
    fn consumption(&mut self, id: &str, from: &str, days: i32, units: f64, overage: f64) {
        for i in 0..days {
            let day = d(from).plus(i);
            self.usage.push(usage_row(
                id,
                "CONS-API",
                "consumption",
                day,
                units,
                300.0,
                overage,
                None,
            ));
        }
    }

    fn contact(&mut self, id: &str, account: &str, persona: &str, from: &str, to: Option<&str>) {
        self.contacts.push(json!({"contact_id": id, "account_id": account, "full_name": id, "title": "T",
            "persona": persona, "email": format!("{id}@x.com"), "active_from": from, "active_to": to,
            "updated_at": "2025-01-01T00:00:00Z"}));
    }

    #[allow(clippy::too_many_arguments)]
    fn call(
        &mut self,
        account: &str,
        day: &str,
        role: &str,
        attendees: &[&str],
        sentiment: f64,
        talk: f64,
        next_step: bool,
        competitors: &[&str],
        inquiry: bool,
    ) {
        let n = self.calls.len();
        self.calls.push(json!({"conv_id": format!("CV-{n}"), "account_id": account, "owner_rep_id": "REP-1",
            "call_ts": format!("{day}T15:00:00Z"), "call_owner_role": role, "duration_minutes": 30,
            "attendee_contact_ids": attendees, "sentiment_score": sentiment, "talk_ratio": talk,
            "next_step_committed": next_step, "competitors_mentioned": competitors, "objections": [],
            "feature_inquiry": inquiry, "summary": "s"}));
    }

    /// An invoice of the account whose payment events end in `states` (one event per state).
    fn payment_states(&mut self, account: &str, states: &[(&str, &str)]) {
        let inv = format!("INV-{account}");
        self.invoices.push(json!({"invoice_id": inv, "account_id": account, "order_id": format!("ORD-{account}"),
            "invoice_date": "2025-11-01", "due_date": "2025-12-01", "billing_type": "recurring",
            "period_start": "2025-11-01", "period_end": "2025-12-01", "amount_usd": 100.0, "status": "open"}));
        let mut prior = "current";
        for (i, (day, state)) in states.iter().enumerate() {
            self.payments.push(json!({"event_id": format!("PE-{account}-{i}"), "invoice_id": inv,
                "account_id": account, "event_ts": format!("{day}T10:00:00Z"), "event_type": "escalation",
                "attempt_number": 1, "external_event_id": format!("X-{account}-{i}"), "amount_usd": 100.0,
                "prior_state": prior, "new_state": state}));
            prior = state;
        }
    }

    /// Weekly feature rows for the four full weeks before as_of (Mondays 1–22 December 2025).
    fn features(&mut self, account: &str, features: &[(&str, &str)], teams: i64) {
        self.features_in(
            account,
            &["2025-12-01", "2025-12-08", "2025-12-15", "2025-12-22"],
            features,
            teams,
        );
    }

    fn features_in(
        &mut self,
        account: &str,
        weeks: &[&str],
        features: &[(&str, &str)],
        teams: i64,
    ) {
        for w in weeks {
            for (f, category) in features {
                self.features.push(json!({"account_id": account, "week_start": w, "feature_id": f,
                    "feature_category": category, "active_users": 3, "events": 30, "teams_active": teams}));
            }
        }
    }

    fn snapshot(self, dir: &Path, name: &str) -> PathBuf {
        let snap = dir.join(name);
        mini_snapshot(
            &snap,
            AS_OF,
            vec![
                ("accounts", rows("accounts", &self.accounts)),
                ("reps", rows("reps", &[rep_row()])),
                ("orders", rows("orders", &self.orders)),
                ("order_lines", rows("order_lines", &self.order_lines)),
                (
                    "usage_metering_log",
                    rows("usage_metering_log", &self.usage),
                ),
                ("contacts", rows("contacts", &self.contacts)),
                ("conversations", rows("conversations", &self.calls)),
                ("nps_responses", rows("nps_responses", &self.nps)),
                ("support_tickets", rows("support_tickets", &self.tickets)),
                ("invoices", rows("invoices", &self.invoices)),
                ("payment_events", rows("payment_events", &self.payments)),
                (
                    "feature_engagement",
                    rows("feature_engagement", &self.features),
                ),
                ("opportunities", rows("opportunities", &self.opportunities)),
                ("onboarding_log", rows("onboarding_log", &self.onboarding)),
            ],
        );
        snap
    }
}

#[allow(clippy::too_many_arguments)]
fn usage_row(
    account: &str,
    sku: &str,
    sku_type: &str,
    day: Day,
    units: f64,
    commit: f64,
    overage: f64,
    util: Option<f64>,
) -> Value {
    let id = format!("U-{account}-{sku}-{}", day.iso());
    let end = day.plus(1).iso();
    json!({"usage_id": id, "account_id": account, "sku_id": sku, "sku_type": sku_type,
        "period_start": format!("{}T00:00:00Z", day.iso()), "period_end": format!("{end}T00:00:00Z"),
        "period_granularity": "day", "units_consumed": units, "commit_units": commit,
        "overage_units": overage, "unit_price_usd": 1.0, "overage_unit_price_usd": 1.25,
        "seat_utilization_pct": util,
        "source_system": if sku_type == "seat" { "seat-sync" } else { "metering-api" },
        "ingest_event_id": format!("E-{id}"), "ingest_batch_id": "B-1",
        "received_at": format!("{end}T00:00:00Z"), "effective_at": format!("{}T00:00:00Z", day.iso()),
        "record_version": 1, "audit_status": "verified"})
}

/// Build the scores of `snap` (with `weeks` score dates) and return the published `table`
/// keyed by account and score date.
fn scores(snap: &Path, weeks: u32, table: &str) -> Vec<Map<String, Value>> {
    let wh = snap.with_extension("wh");
    let vars = format!("{{score_history_weeks: {weeks}}}");
    let (code, out, err) = build(snap, &wh, &["--select", "tag:scores", "--vars", &vars]);
    assert_eq!(code, 0, "{out}\n{err}");
    gtmos::table_io::json_rows(&wh.join(format!("published/{table}.parquet"))).unwrap()
}

fn row<'a>(rows: &'a [Map<String, Value>], account: &str, date: &str) -> &'a Map<String, Value> {
    rows.iter()
        .find(|r| r["account_id"] == json!(account) && r["score_date"] == json!(date))
        .unwrap_or_else(|| panic!("no row for {account} at {date}: {rows:?}"))
}

fn num(r: &Map<String, Value>, c: &str) -> f64 {
    r[c].as_f64().unwrap_or_else(|| panic!("{c} is {:?}", r[c]))
}

/// The fully observed account of the health example: every dimension has data.
///   usage_trend   seat usage 50 % in the recent 4 weeks and in weeks 9–12 → ratio 1.0 → 22
///   exec_sponsor  champion on a call 11 days ago, buyer 9 days ago → 10 + 10 = 20
///   seat          50 % → 18 × (50 − 20) ÷ 60 = 9
///   nps_csat      NPS 8 → (8 − 5) ÷ 4 = 0.75; CSAT 4.0 → (4 − 2.5) ÷ 2 = 0.75 → 14 × 0.75 = 10.5
///   recency       last call 10 days before → ≤ 14 days → 12
///   support       one P3 ticket (weight 2) in 90 days, none before: 2 ÷ max(0, 3) ≤ 1 → 8
///   competitive   1 of 2 calls names a competitor: 0.5 ≥ 0.3 → 0
///   = 81.5 of 100; ConvIntelligence from the CSM call alone: 12 × (0.5 × 0.6 + 0.25 × 1 +
///   0.25 × 1) = 9.6 (the AE call, sentiment −0.8, does not count) → 91.1
fn observed_account(data: &mut Data, id: &str, end: &str) {
    data.customer(id, "SMB", "2025-01-01", end);
    data.seats(id, "2025-10-01", 92, 50.0);
    data.contact(&format!("{id}-champ"), id, "champion", "2024-06-01", None);
    data.contact(
        &format!("{id}-eb"),
        id,
        "economic_buyer",
        "2024-06-01",
        None,
    );
    data.call(
        id,
        "2025-12-20",
        "CSM",
        &[&format!("{id}-champ")],
        0.6,
        0.4,
        true,
        &[],
        false,
    );
    data.call(
        id,
        "2025-12-22",
        "AE",
        &[&format!("{id}-eb")],
        -0.8,
        0.9,
        false,
        &["Contoso"],
        false,
    );
    data.nps.push(
        json!({"response_id": format!("N-{id}"), "account_id": id, "contact_id": format!("{id}-eb"),
        "response_date": "2025-11-15", "score": 8}),
    );
    data.tickets.push(json!({"ticket_id": format!("T-{id}"), "account_id": id, "opened_at": "2025-12-05T09:00:00Z",
        "closed_at": "2025-12-10T09:00:00Z", "severity": "P3", "category": "how_to", "csat_score": 4.0}));
}

#[test]
fn health_dimensions_rescaling_conversation_adjustment_and_payment_caps() {
    let dir = tempdir();
    let mut data = Data::default();
    observed_account(&mut data, "A", "2027-01-01");
    // Payment modifier last: the same account overdue, failed, suspended; and one whose
    // failure was paid off (current again: no cap).
    for (id, states) in [
        ("OVERDUE", vec![("2025-12-05", "overdue")]),
        ("FAILED", vec![("2025-12-05", "failed")]),
        (
            "SUSPENDED",
            vec![("2025-12-05", "failed"), ("2025-12-20", "suspended")],
        ),
        (
            "RECOVERED",
            vec![("2025-12-05", "failed"), ("2025-12-09", "current")],
        ),
    ] {
        observed_account(&mut data, id, "2027-01-01");
        data.payment_states(id, &states);
    }
    // Data gaps: seat usage only in the recent weeks (no usage-trend baseline), no contacts,
    // calls, NPS or tickets. Left: seat 9 of 18 and support 8 of 8 → 100 × 17 ÷ 26 = 65.38.
    data.customer("GAPS", "SMB", "2025-01-01", "2027-01-01");
    data.seats("GAPS", "2025-12-04", 28, 50.0);
    let snap = data.snapshot(dir.path(), "health");
    let rows = scores(&snap, 1, "customer_health_log");

    let a = row(&rows, "A", "2026-01-01");
    for (c, want) in [
        ("usage_trend_points", 22.0),
        ("exec_sponsor_points", 20.0),
        ("seat_utilization_points", 9.0),
        ("nps_csat_points", 10.5),
        ("engagement_recency_points", 12.0),
        ("support_trend_points", 8.0),
        ("competitive_threat_points", 0.0),
        ("conv_intelligence_adj", 9.6),
        ("raw_health_score", 91.1),
        ("health_score", 91.1),
    ] {
        assert!((num(a, c) - want).abs() < 1e-9, "{c}: {} ≠ {want}", a[c]);
    }
    assert_eq!(a["data_gap_dimensions"], json!("[]"));
    assert_eq!(a["csm_calls_in_window"], json!(1));
    assert_eq!(a["payment_health_status"], json!("current"));

    for (id, status, cap, score) in [
        ("OVERDUE", "overdue", "cap_77", 77.0),
        ("FAILED", "failed", "cap_62", 62.0),
        ("SUSPENDED", "suspended", "cap_44", 44.0),
        ("RECOVERED", "current", "none", 91.1),
    ] {
        let r = row(&rows, id, "2026-01-01");
        assert_eq!(r["payment_health_status"], json!(status), "{id}");
        assert_eq!(r["payment_modifier_applied"], json!(cap), "{id}");
        assert!((num(r, "raw_health_score") - 91.1).abs() < 1e-9, "{id}");
        assert!(
            (num(r, "health_score") - score).abs() < 1e-9,
            "{id}: {}",
            r["health_score"]
        );
    }

    let g = row(&rows, "GAPS", "2026-01-01");
    assert_eq!(
        g["data_gap_dimensions"],
        json!(
            r#"["usage_trend", "exec_sponsor", "nps_csat", "engagement_recency", "competitive_threat"]"#
        )
    );
    assert_eq!(g["available_weight"], json!(26));
    assert!(
        (num(g, "health_score") - 65.38).abs() < 1e-9,
        "{}",
        g["health_score"]
    );
    assert_eq!(g["conv_intelligence_adj"], json!(0.0));
}

/// Seat utilisation x over the 28 days before as_of, nothing else: health = 100 × (18 × (x −
/// 20) ÷ 60 + 8) ÷ 26, so x = 20 + (10 ÷ 3) × (0.26 × T − 8) gives health exactly T.
fn account_with_health(data: &mut Data, id: &str, target: f64, renewal: &str) {
    data.customer(id, "SMB", "2025-01-01", renewal);
    let x = 20.0 + (10.0 / 3.0) * (0.26 * target - 8.0);
    data.seats(id, "2025-12-04", 28, x);
}

#[test]
fn churn_multipliers_at_30_60_90_days_and_tier_boundaries() {
    let dir = tempdir();
    let mut data = Data::default();
    // Renewal multipliers: health 90 with renewal 30, 31, 60, 61, 90, 91 days after as_of.
    let renewals = [
        ("R30", "2026-01-31", 0.85),
        ("R31", "2026-02-01", 0.92),
        ("R60", "2026-03-02", 0.92),
        ("R61", "2026-03-03", 0.96),
        ("R90", "2026-04-01", 0.96),
        ("R91", "2026-04-02", 1.0),
    ];
    for (id, renewal, _) in renewals {
        account_with_health(&mut data, id, 90.0, renewal);
    }
    // Tier boundaries at a multiplier of 1.0.
    let tiers = [
        ("T44", 44.0, "Critical"),
        ("T45", 45.0, "High"),
        ("T62", 62.0, "High"),
        ("T63", 63.0, "Medium"),
        ("T77", 77.0, "Medium"),
        ("T78", 78.0, "Low"),
    ];
    for (id, target, _) in tiers {
        account_with_health(&mut data, id, target, "2027-01-01");
    }
    let snap = data.snapshot(dir.path(), "churn");
    let rows = scores(&snap, 1, "churn_risk_log");
    for (id, renewal, multiplier) in renewals {
        let r = row(&rows, id, "2026-01-01");
        assert_eq!(r["renewal_date"], json!(renewal), "{id}");
        assert_eq!(num(r, "renewal_multiplier"), multiplier, "{id}");
        assert!(
            (num(r, "health_score") - 90.0).abs() < 1e-9,
            "{id}: {}",
            r["health_score"]
        );
        let want = (90.0 * multiplier * 100.0_f64).round() / 100.0;
        assert!((num(r, "effective_risk_score") - want).abs() < 1e-9, "{id}");
    }
    for (id, target, tier) in tiers {
        let r = row(&rows, id, "2026-01-01");
        assert!(
            (num(r, "effective_risk_score") - target).abs() < 1e-9,
            "{id}: {}",
            r["effective_risk_score"]
        );
        assert_eq!(r["churn_risk_tier"], json!(tier), "{id}");
        assert_eq!(r["expansion_candidate"], json!(tier == "Low"), "{id}");
    }
}

#[test]
fn churn_alerts_for_a_drop_a_tier_change_and_a_sponsor_departure() {
    let dir = tempdir();
    let mut data = Data::default();
    // DROP: seats 100 % through 24 December, then two P1 tickets on 28 December.
    //   25 Dec: seat 18 + support 8 of 26 → 100 (Low)
    //   1 Jan:  seat 21 days at 100 and 7 at 0 → 75 % → 16.5; support 8 ÷ 3 > 2 → 0;
    //           100 × 16.5 ÷ 26 = 63.46 (Medium): a 36.54-point drop and a tier change.
    data.customer("DROP", "SMB", "2025-01-01", "2027-01-01");
    data.seats("DROP", "2025-11-20", 35, 100.0);
    data.seats("DROP", "2025-12-25", 7, 0.0);
    for i in 0..2 {
        data.tickets.push(
            json!({"ticket_id": format!("T-DROP-{i}"), "account_id": "DROP",
            "opened_at": "2025-12-28T09:00:00Z", "severity": "P1", "category": "bug"}),
        );
    }
    // LEFT: the champion leaves on 28 December (within the last week), nothing else changes.
    data.customer("LEFT", "SMB", "2025-01-01", "2027-01-01");
    data.seats("LEFT", "2025-11-20", 42, 100.0);
    data.contact(
        "LEFT-champ",
        "LEFT",
        "champion",
        "2024-01-01",
        Some("2025-12-28"),
    );
    let snap = data.snapshot(dir.path(), "alerts");
    let health = scores(&snap, 2, "customer_health_log");
    let churn = gtmos::table_io::json_rows(
        &snap
            .with_extension("wh")
            .join("published/churn_risk_log.parquet"),
    )
    .unwrap();

    let before = row(&churn, "DROP", "2025-12-25");
    assert_eq!(before["churn_risk_tier"], json!("Low"));
    assert_eq!(before["alert_type"], Value::Null);
    let after = row(&churn, "DROP", "2026-01-01");
    assert!(
        (num(after, "effective_risk_score") - 63.46).abs() < 1e-9,
        "{}",
        after["effective_risk_score"]
    );
    assert_eq!(after["churn_risk_tier"], json!("Medium"));
    assert_eq!(after["alert_type"], json!("tier_transition"));
    assert_eq!(
        after["alerts"],
        json!(r#"["tier_transition", "score_drop"]"#)
    );
    assert!((num(row(&health, "DROP", "2026-01-01"), "score_delta") + 36.54).abs() < 1e-9);

    assert_eq!(
        row(&health, "LEFT", "2026-01-01")["sponsor_departure_flag"],
        json!(true)
    );
    assert_eq!(
        row(&health, "LEFT", "2025-12-25")["sponsor_departure_flag"],
        json!(false)
    );
    let left = row(&churn, "LEFT", "2026-01-01");
    assert_eq!(left["alert_type"], json!("sponsor_departure"));
}

#[test]
fn expansion_signals_and_the_churn_gate() {
    let dir = tempdir();
    let mut data = Data::default();
    // Each customer: seats at 50 % in the last 28 days only (health 100 × (9 + 8) ÷ 26 =
    // 65.38, Medium) unless noted.
    let medium = |data: &mut Data, id: &str| {
        data.customer(id, "SMB", "2025-01-01", "2027-01-01");
        data.seats(id, "2025-12-04", 28, 50.0);
    };
    // OVERAGE: consumption overage in December (the latest closed month) → 40.
    medium(&mut data, "OVERAGE");
    data.consumption("OVERAGE", "2025-12-01", 31, 12.0, 2.0);
    // SEATS: above 80 % in November and December → 30 (health: 18 × 85 → Low).
    data.customer("SEATS", "SMB", "2025-01-01", "2027-01-01");
    data.seats("SEATS", "2025-10-01", 92, 85.0);
    // NOT_SEATS: above 80 % in December only → 0.
    data.customer("NOT_SEATS", "SMB", "2025-01-01", "2027-01-01");
    data.seats("NOT_SEATS", "2025-10-01", 61, 70.0);
    data.seats("NOT_SEATS", "2025-12-01", 31, 90.0);
    // INQUIRY: a feature inquiry with sentiment 0.5 12 days ago → 30; LUKEWARM: sentiment 0.1 → 0.
    medium(&mut data, "INQUIRY");
    data.call(
        "INQUIRY",
        "2025-12-20",
        "AM",
        &[],
        0.5,
        0.5,
        true,
        &[],
        true,
    );
    medium(&mut data, "LUKEWARM");
    data.call(
        "LUKEWARM",
        "2025-12-20",
        "AM",
        &[],
        0.1,
        0.5,
        true,
        &[],
        true,
    );
    // STAKE: a contact who joined on 15 November (after the contract) → 20; OLD: one who
    // joined on 15 November too, but before its contract started on 1 December → 0.
    medium(&mut data, "STAKE");
    data.contact("STAKE-new", "STAKE", "end_user", "2025-11-15", None);
    data.customer("OLD", "SMB", "2025-12-01", "2026-12-01");
    data.seats("OLD", "2025-12-04", 28, 50.0);
    data.contact("OLD-new", "OLD", "end_user", "2025-11-15", None);
    // Gates, all with December overage: suspended (44, Critical) → suppressed; overdue at 65
    // stays Medium → new play needing a CSM; an open expansion opportunity → enrichment.
    for id in ["GATE_CRIT", "GATE_OPP"] {
        medium(&mut data, id);
        data.consumption(id, "2025-12-01", 31, 12.0, 2.0);
    }
    data.payment_states(
        "GATE_CRIT",
        &[("2025-12-05", "failed"), ("2025-12-20", "suspended")],
    );
    data.opportunities.push(json!({"opp_id": "OPP-X", "account_id": "GATE_OPP", "owner_rep_id": "REP-1",
        "opp_type": "expansion", "stage": "proposal", "amount_usd": 5000.0, "created_date": "2025-12-10",
        "close_date": "2026-02-01", "forecast_category": "best_case", "updated_at": "2025-12-10T00:00:00Z"}));
    // Peer cohort (MM, SaaS, 100–999 employees): P0…P5. Everyone but P0 uses an integration
    // feature; P1–P3 use an admin feature. P0: 5 of 5 peers use integration → 25. P4 and P5:
    // 3 of 5 peers use admin → 15 (the match-rate floor).
    for i in 0..6 {
        let id = format!("P{i}");
        data.customer(&id, "MM", "2025-01-01", "2027-01-01");
        data.seats(&id, "2025-10-01", 92, 50.0);
        let mut f = vec![("F01", "core")];
        if i > 0 {
            f.push(("F15", "integration"));
        }
        if (1..=3).contains(&i) {
            f.push(("F19", "admin"));
        }
        data.features(&id, &f, 2);
    }
    let snap = data.snapshot(dir.path(), "expansion");
    let rows = scores(&snap, 1, "expansion_log");
    let at = |id: &str| row(&rows, id, "2026-01-01");
    let points = |id: &str, c: &str| at(id)[c].as_i64().unwrap();

    assert_eq!(points("OVERAGE", "overage_points"), 40);
    assert_eq!(at("OVERAGE")["play_type"], json!("new_play"));
    assert_eq!(
        at("OVERAGE")["csm_confirm_required"],
        json!(true),
        "Medium churn risk"
    );
    assert!((num(at("OVERAGE"), "acv_estimate_usd") - 12.0 * 31.0 * 2.0 * 1.25).abs() < 1e-9);
    assert_eq!(points("SEATS", "seat_points"), 30);
    assert_eq!(at("SEATS")["churn_risk_tier"], json!("Low"));
    assert_eq!(at("SEATS")["csm_confirm_required"], json!(false));
    assert_eq!(points("NOT_SEATS", "seat_points"), 0);
    assert_eq!(points("INQUIRY", "inquiry_points"), 30);
    assert_eq!(points("LUKEWARM", "inquiry_points"), 0);
    assert_eq!(points("STAKE", "stakeholder_points"), 20);
    assert_eq!(points("OLD", "stakeholder_points"), 0);
    assert_eq!(at("OLD")["play_type"], Value::Null, "no signal, no play");
    assert_eq!(at("OLD")["expansion_score"], json!(0));

    assert_eq!(at("GATE_CRIT")["churn_risk_tier"], json!("Critical"));
    assert_eq!(at("GATE_CRIT")["play_type"], json!("suppressed"));
    assert_eq!(
        at("GATE_CRIT")["suppressed_reason"],
        json!("churn_risk_critical")
    );
    assert_eq!(at("GATE_OPP")["play_type"], json!("enrichment"));
    assert_eq!(at("GATE_OPP")["enriched_opp_id"], json!("OPP-X"));

    assert_eq!(points("P0", "peer_points"), 25);
    assert_eq!(at("P0")["peer_gap_category"], json!("integration"));
    for id in ["P4", "P5"] {
        assert_eq!(points(id, "peer_points"), 15, "{id}");
        assert_eq!(at(id)["peer_gap_category"], json!("admin"), "{id}");
    }
    for id in ["P1", "P2", "P3"] {
        assert_eq!(points(id, "peer_points"), 0, "{id}");
    }
    assert_eq!(
        at("P0")["signal_sources"],
        json!(r#"[{"signal": "peer_cross_sell", "points": 25, "category": "integration"}]"#)
    );
}

#[test]
fn adoption_patterns_and_the_60_day_rule() {
    let dir = tempdir();
    let mut data = Data::default();
    let core: Vec<(String, &str)> = (1..=4).map(|i| (format!("F{i:02}"), "core")).collect();
    let core: Vec<(&str, &str)> = core.iter().map(|(f, c)| (f.as_str(), *c)).collect();
    // NEW: 40 days into its contract, four core features → activating, never surface_only.
    data.customer("NEW", "SMB", "2025-11-22", "2026-11-22");
    data.features("NEW", &core, 1);
    // NARROW: the same use, already in November, 70 days in → surface_only.
    data.customer("NARROW", "SMB", "2025-10-23", "2026-10-23");
    data.features_in("NARROW", &["2025-11-03", "2025-11-10"], &core, 1);
    data.features("NARROW", &core, 1);
    // BROAD: 12 features across 3 teams → deeply_integrated; SILO: 8 features, one team.
    let twelve: Vec<String> = (1..=12).map(|i| format!("F{i:02}")).collect();
    let broad: Vec<(&str, &str)> = twelve.iter().map(|f| (f.as_str(), "core")).collect();
    data.customer("BROAD", "SMB", "2025-01-01", "2027-01-01");
    data.features("BROAD", &broad, 3);
    data.customer("SILO", "SMB", "2025-01-01", "2027-01-01");
    data.features("SILO", &broad[..8], 1);
    // FADING: eight features in the prior weeks, four of them dropped in the recent weeks.
    data.customer("FADING", "SMB", "2025-01-01", "2027-01-01");
    data.features_in(
        "FADING",
        &["2025-10-13", "2025-10-20", "2025-11-03"],
        &broad[..8],
        2,
    );
    data.features("FADING", &broad[..4], 2);
    let snap = data.snapshot(dir.path(), "adoption");
    let rows = scores(&snap, 1, "adoption_pattern");
    let pattern = |id: &str| row(&rows, id, "2026-01-01")["pattern"].clone();
    assert_eq!(pattern("NEW"), json!("activating"));
    assert_eq!(pattern("NARROW"), json!("surface_only"));
    assert_eq!(pattern("BROAD"), json!("deeply_integrated"));
    assert_eq!(pattern("SILO"), json!("siloed_by_team"));
    assert_eq!(pattern("FADING"), json!("declining"));
    let fading = row(&rows, "FADING", "2026-01-01");
    assert_eq!(
        (
            fading["abandoned_features"].clone(),
            fading["new_features"].clone()
        ),
        (json!(4), json!(0))
    );
    // Equal use of every feature: no concentration.
    assert!(num(row(&rows, "BROAD", "2026-01-01"), "gini").abs() < 1e-12);
}

/// The scores against the synthetic corpus oracle (SPEC §9: each archetype lands where its
/// story says), on 1,000 accounts with two years of weekly score dates.
#[test]
fn scores_land_where_each_archetype_story_says() {
    let dir = tempdir();
    let snap = dir.path().join("corpus");
    let p = gtmos::synth::params::SynthParams {
        seed: 11,
        accounts: 1000,
        ..Default::default()
    };
    gtmos::synth::generate(&p, &snap, 2, false).unwrap();
    let wh = dir.path().join("wh");
    let (code, out, err) = build(
        &snap,
        &wh,
        &[
            "--select",
            "tag:scores",
            "--vars",
            "{score_history_weeks: 105}",
        ],
    );
    assert_eq!(code, 0, "{out}\n{err}");
    let oracle = Table::read(&snap.join("oracle"), "accounts");
    let archetype: std::collections::BTreeMap<String, String> = oracle
        .s("account_id")
        .into_iter()
        .zip(oracle.str("archetype"))
        .filter_map(|(a, t)| Some((a, t?)))
        .collect();
    let departure: std::collections::BTreeMap<String, i32> = oracle
        .s("account_id")
        .into_iter()
        .zip(oracle.date("champion_departure_date"))
        .filter_map(|(a, t)| Some((a, t?)))
        .collect();
    let of = |kind: &str| -> Vec<String> {
        archetype
            .iter()
            .filter(|(_, t)| *t == kind)
            .map(|(a, _)| a.clone())
            .collect()
    };
    let churn = Table::read(&wh.join("published"), "churn_risk_log");
    let (accounts, dates, tiers) = (
        churn.s("account_id"),
        churn.date("score_date"),
        churn.s("churn_risk_tier"),
    );
    let orders = Table::read(&snap, "orders");
    let (o_acc, o_status, o_end) = (
        orders.s("account_id"),
        orders.s("status"),
        orders.date("term_end"),
    );
    let as_of = day(2026, 1, 1);

    // At least 90 % of champion-loss accounts reach High or Critical between the champion's
    // departure and the renewal that follows it (the first term end at least 90 days later).
    let mut reached = 0;
    let losses = of("champion_loss_decliner");
    for a in &losses {
        let left = departure[a];
        let renewal = (0..o_acc.len())
            .filter(|&i| &o_acc[i] == a && o_status[i] == "active")
            .filter_map(|i| o_end[i])
            .filter(|&e| e >= left + 90)
            .min()
            .unwrap_or(as_of)
            .min(as_of);
        if (0..accounts.len()).any(|i| {
            &accounts[i] == a
                && (left..=renewal).contains(&dates[i].unwrap())
                && matches!(tiers[i].as_str(), "High" | "Critical")
        }) {
            reached += 1;
        }
    }
    assert!(
        losses.len() >= 50,
        "{} champion-loss accounts",
        losses.len()
    );
    let share = reached as f64 / losses.len() as f64;
    assert!(
        share >= 0.9,
        "{reached} of {} champion-loss accounts reached High/Critical",
        losses.len()
    );

    // No ideal power user is ever Critical.
    let ideal: std::collections::BTreeSet<String> = of("ideal_power_user").into_iter().collect();
    let critical: Vec<_> = (0..accounts.len())
        .filter(|&i| ideal.contains(&accounts[i]) && tiers[i] == "Critical")
        .map(|i| (accounts[i].clone(), dates[i]))
        .collect();
    assert!(
        critical.is_empty(),
        "ideal power users at Critical: {critical:?}"
    );

    // At least 90 % of expansion-ready accounts fire the overage or the seat-utilisation signal.
    let expansion = Table::read(&wh.join("published"), "expansion_log");
    let (e_acc, e_date) = (expansion.s("account_id"), expansion.date("score_date"));
    let (overage, seats) = (
        expansion.i64("overage_points"),
        expansion.i64("seat_points"),
    );
    let ready = of("expansion_ready");
    let fired = ready
        .iter()
        .filter(|a| {
            (0..e_acc.len()).any(|i| {
                &e_acc[i] == *a
                    && e_date[i] == Some(as_of)
                    && (overage[i].unwrap() > 0 || seats[i].unwrap() > 0)
            })
        })
        .count();
    assert!(ready.len() >= 50);
    assert!(
        fired as f64 >= 0.9 * ready.len() as f64,
        "{fired} of {} expansion-ready accounts fired",
        ready.len()
    );

    // The forecast core calls seasonal exactly the seasonal accounts: among accounts with a
    // consumption series it forecast, precision and recall of `seasonal` both at least 0.9.
    let fc = Table::read(&wh.join("published"), "consumption_forecast");
    let (f_acc, f_pattern, f_period) = (
        fc.s("account_id"),
        fc.str("pattern"),
        fc.i64("season_period_days"),
    );
    let oracle_period: std::collections::BTreeMap<String, i64> = oracle
        .s("account_id")
        .into_iter()
        .zip(oracle.i64("season_period_days"))
        .filter_map(|(a, p)| Some((a, p?)))
        .collect();
    let (mut tp, mut fp, mut fn_, mut right_period) = (0, 0, 0, 0);
    for i in 0..f_acc.len() {
        let Some(pattern) = &f_pattern[i] else {
            continue;
        };
        let truth = archetype.get(&f_acc[i]).map(String::as_str) == Some("seasonal");
        match (truth, pattern == "seasonal") {
            (true, true) => {
                tp += 1;
                if f_period[i] == oracle_period.get(&f_acc[i]).copied() {
                    right_period += 1;
                }
            }
            (false, true) => fp += 1,
            (true, false) => fn_ += 1,
            _ => {}
        }
    }
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fn_).max(1) as f64;
    println!(
        "seasonal forecast: precision {precision:.3}, recall {recall:.3} ({tp} true, {fp} false positives, {fn_} missed; {right_period} with the oracle's period)"
    );
    assert!(tp + fn_ >= 50, "{} seasonal series", tp + fn_);
    assert!(
        precision >= 0.9 && recall >= 0.9,
        "precision {precision}, recall {recall}"
    );
    // Expansion-ready usage grows: its forecast reads as real expansion, not steady.
    let interpretation = fc.str("interpretation");
    let (mut growing, mut series) = (0, 0);
    for i in 0..f_acc.len() {
        if archetype.get(&f_acc[i]).map(String::as_str) == Some("expansion_ready") {
            series += 1;
            growing += (interpretation[i].as_deref() == Some("real_expansion")) as usize;
        }
    }
    assert!(
        series >= 50 && growing as f64 >= 0.9 * series as f64,
        "{growing} of {series} expansion-ready series read as real expansion"
    );
}

/// ICP (six dimensions, two of them data gaps, the rest rescaled) and priority (fit 40 /
/// intent 40 decayed by e^(−hours/72) / opportunity 20), worked by hand:
/// - A1 SaaS, NA, 500 employees, $60M, a meeting booked 72 h before as_of, a $50k open opp:
///   ICP 25 + 20 + 15 + 15 = 75 of 75 available → 100, T1. Priority 40 × 1 + 40 × e^(−1)
///   + 20 × 0.5 = 40 + 14.715 + 10 = 64.72.
/// - A3 HealthTech, NA, 150 employees, revenue unknown (0), a reply 36 h before as_of: ICP
///   12.5 + 12 + 9 = 33.5 of 60 → 55.83, T2 (revenue a data gap). Priority (fit from the
///   published ICP score) 40 × 0.5583 + 40 × 0.7 × e^(−0.5) = 22.332 + 16.983 = 39.31.
/// - A2 Logistics, EMEA, 3 employees, $1M, no intent: ICP 25 × 0.2 × 0.7 + 20 × 0.3 + 15 × 0.2
///   = 3.5 + 6 + 3 = 12.5 of 75 → 16.67, T3. Priority 40 × 0.1667 = 6.67.
#[test]
fn icp_tiers_and_priority_with_intent_decay() {
    let account = |id: &str, vertical: &str, geo: &str, employees: i64, revenue: f64| {
        let mut a = account_row(id, "MM");
        a["vertical"] = json!(vertical);
        a["geo"] = json!(geo);
        a["employee_count"] = json!(employees);
        a["annual_revenue_usd"] = json!(revenue);
        a
    };
    let contact = |id: &str, acc: &str| {
        json!({"contact_id": id, "account_id": acc, "full_name": id, "title": "VP", "persona": "champion",
            "email": format!("{id}@x.com"), "active_from": "2024-01-01", "updated_at": "2024-01-01T00:00:00Z"})
    };
    let event = |id: &str, acc: &str, contact: &str, ts: &str, kind: &str| {
        json!({"event_id": id, "account_id": acc, "contact_id": contact, "sequence_type": "standard",
            "channel": "email", "event_ts": ts, "event_type": kind, "play_id": "P1"})
    };
    let dir = tempdir();
    let snap = dir.path().join("snap");
    mini_snapshot(
        &snap,
        AS_OF,
        vec![
            (
                "accounts",
                rows(
                    "accounts",
                    &[
                        account("A1", "SaaS", "NA", 500, 60_000_000.0),
                        account("A2", "Logistics", "EMEA", 3, 1_000_000.0),
                        account("A3", "HealthTech", "NA", 150, 0.0),
                    ],
                ),
            ),
            ("reps", rows("reps", &[rep_row()])),
            (
                "contacts",
                rows("contacts", &[contact("C1", "A1"), contact("C3", "A3")]),
            ),
            (
                "cadence_events",
                rows(
                    "cadence_events",
                    &[
                        event("E1", "A1", "C1", "2025-12-29T00:00:00Z", "meeting_booked"),
                        event("E2", "A1", "C1", "2025-12-29T00:00:00Z", "opened"),
                        event("E3", "A3", "C3", "2025-12-30T12:00:00Z", "replied"),
                        // Outside the 30-day window: no intent.
                        event("E4", "A3", "C3", "2025-11-01T00:00:00Z", "meeting_booked"),
                    ],
                ),
            ),
            (
                "opportunities",
                rows(
                    "opportunities",
                    &[
                        json!({"opp_id": "O1", "account_id": "A1", "owner_rep_id": "REP-1", "opp_type": "new_logo",
                        "stage": "proposal", "amount_usd": 50000.0, "created_date": "2025-11-01",
                        "close_date": "2026-02-01", "forecast_category": "pipeline", "updated_at": "2025-12-01T00:00:00Z"}),
                    ],
                ),
            ),
        ],
    );
    let wh = dir.path().join("wh");
    let (code, out, err) = build(&snap, &wh, &["--select", "account_priority"]);
    assert!(code == 0 || code == 1, "{out}\n{err}");
    let icp = Table::read(&wh.join("published"), "icp_score");
    let (ids, score, tier, gaps) = (
        icp.s("account_id"),
        icp.f64("icp_score"),
        icp.s("icp_tier"),
        icp.s("data_gap_dimensions"),
    );
    let want = [
        ("A1", 100.0, "T1"),
        ("A2", 16.67, "T3"),
        ("A3", 55.83, "T2"),
    ];
    for (i, (id, s, t)) in want.iter().enumerate() {
        assert_eq!(ids[i], *id);
        assert!(
            (score[i].unwrap() - s).abs() < 0.006,
            "{id}: {:?}",
            score[i]
        );
        assert_eq!(tier[i], *t, "{id}");
    }
    assert_eq!(gaps[0], r#"["tech", "growth"]"#);
    assert_eq!(gaps[2], r#"["revenue", "tech", "growth"]"#);
    let p = Table::read(&wh.join("published"), "account_priority");
    let (ids, score, rank, intent) = (
        p.s("account_id"),
        p.f64("priority_score"),
        p.i64("priority_rank"),
        p.f64("intent_points"),
    );
    let want = [("A1", 64.72, 1), ("A2", 6.67, 3), ("A3", 39.31, 2)];
    for (i, (id, s, r)) in want.iter().enumerate() {
        assert_eq!(ids[i], *id);
        assert!(
            (score[i].unwrap() - s).abs() < 0.006,
            "{id}: {:?}",
            score[i]
        );
        assert_eq!(rank[i], Some(*r), "{id}");
    }
    // Intent decays by e^(−hours/72): 72 h → e^(−1) of the meeting's full value.
    assert!((intent[0].unwrap() - 40.0 * (-1f64).exp()).abs() < 0.006);
}
