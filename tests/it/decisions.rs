//! Decision nodes and the decision log (SPEC §13): playbooks at, just inside and just outside
//! their thresholds; stale inputs propose nothing; the log is append-only, idempotent per
//! snapshot, and loses nothing when two processes append at once.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::*;

/// A quarter of funnel activity for three channels: each has 10 new-logo opportunities created
/// in October–December 2025 and closes `won` of them (the rest lost); S&M spend per channel as
/// given. The pooled baseline is then (Σ spend) ÷ 30 per SQO and (Σ won) ÷ 30 won.
fn funnel_snapshot(dir: &Path, spend: [f64; 3], won: [usize; 3], negative_spend: bool) -> PathBuf {
    let channels = ["inbound", "outbound", "partner"];
    let mut accounts = Vec::new();
    let mut opps = Vec::new();
    let mut gtm_spend = Vec::new();
    for (c, channel) in channels.iter().enumerate() {
        for i in 0..10 {
            let id = format!("{channel}-{i}");
            accounts.push(json!({"account_id": id, "account_name": id, "domain": format!("{id}.com"),
                "segment": "SMB", "vertical": "SaaS", "geo": "NA", "employee_count": 10,
                "annual_revenue_usd": 1000.0, "acquisition_channel": channel, "owner_rep_id": "REP-1",
                "updated_at": "2025-01-01T00:00:00Z"}));
            let month = 10 + (i % 3);
            opps.push(json!({"opp_id": format!("O-{id}"), "account_id": id, "owner_rep_id": "REP-1",
                "opp_type": "new_logo", "stage": if i < won[c] { "closed_won" } else { "closed_lost" },
                "amount_usd": 1000.0, "created_date": format!("2025-{month:02}-01"),
                "close_date": format!("2025-{month:02}-20"), "forecast_category": "closed",
                "updated_at": "2025-12-31T00:00:00Z"}));
        }
        for (m, share) in [(10, 0.25), (11, 0.25), (12, 0.5)] {
            let amount = if negative_spend && c == 0 && m == 12 {
                -1.0
            } else {
                spend[c] * share
            };
            gtm_spend.push(
                json!({"month": format!("2025-{m:02}-01"), "channel": channel,
                "category": "marketing", "segment": "SMB", "amount_usd": amount}),
            );
        }
    }
    let snap = dir.join(format!(
        "snap-{}-{}-{}-{}",
        spend[0], won[0], spend[1], negative_spend
    ));
    mini_snapshot(
        &snap,
        "2026-01-01T00:00:00Z",
        vec![
            ("accounts", rows("accounts", &accounts)),
            ("reps", rows("reps", &[rep_row()])),
            ("opportunities", rows("opportunities", &opps)),
            ("gtm_spend", rows("gtm_spend", &gtm_spend)),
        ],
    );
    snap
}

/// channel.invest's rows by subject, after building the snapshot into `wh`.
fn channel_decisions(snap: &Path, wh: &Path) -> (i32, Vec<serde_json::Map<String, Value>>) {
    let (code, out, err) = build(snap, wh, &["--select", "tag:decisions"]);
    assert!(code == 0 || code == 1, "{out}\n{err}");
    let rows =
        gtmos::table_io::json_rows(&wh.join("published/decision_channel_invest.parquet")).unwrap();
    (code, rows)
}

fn subject<'a>(
    rows: &'a [serde_json::Map<String, Value>],
    s: &str,
) -> &'a serde_json::Map<String, Value> {
    rows.iter()
        .find(|r| r["subject"] == json!(s))
        .unwrap_or_else(|| panic!("no row for {s}: {rows:?}"))
}

#[test]
fn channel_invest_at_just_inside_and_just_outside_its_thresholds() {
    let dir = tempdir();
    // Baseline CAC/SQO = 3,000 / 30 = 100; SQL→Win baseline 15 / 30 = 50 %.
    // inbound: 90 per SQO (0.9 × baseline: at the threshold) and 60 % (+10 pp) → invest.
    let at = funnel_snapshot(dir.path(), [900.0, 1000.0, 1100.0], [6, 5, 4], false);
    let (_, rows) = channel_decisions(&at, &dir.path().join("wh-at"));
    let inbound = subject(&rows, "inbound");
    assert_eq!(inbound["proposes"], json!(true), "{inbound:?}");
    assert_eq!(
        inbound["chosen_action"],
        json!("shift +20 % budget to channel inbound")
    );
    // partner: 110 per SQO (1.1 ×) and 40 %: neither invest nor pause.
    assert_eq!(subject(&rows, "partner")["proposes"], json!(false));
    // Just inside: inbound spends 899 → 0.8994 × baseline.
    let inside = funnel_snapshot(dir.path(), [899.0, 1000.0, 1100.0], [6, 5, 4], false);
    let (_, rows) = channel_decisions(&inside, &dir.path().join("wh-inside"));
    assert_eq!(subject(&rows, "inbound")["proposes"], json!(true));
    // Just outside: 901 → 0.9006 × baseline.
    let outside = funnel_snapshot(dir.path(), [901.0, 1000.0, 1100.0], [6, 5, 4], false);
    let (_, rows) = channel_decisions(&outside, &dir.path().join("wh-outside"));
    let inbound = subject(&rows, "inbound");
    assert_eq!(inbound["proposes"], json!(false), "{inbound:?}");
    assert!(
        inbound["reason"]
            .as_str()
            .unwrap()
            .starts_with("within thresholds")
    );
    // Win rate just outside: +1.33 pp is below +2 pp (baseline 46/90 … use 5 of 10 vs 14/30).
    let low_win = funnel_snapshot(dir.path(), [900.0, 1000.0, 1100.0], [5, 5, 4], false);
    let (_, rows) = channel_decisions(&low_win, &dir.path().join("wh-lowwin"));
    // inbound 50 % vs baseline 14/30 = 46.67 %: +3.33 pp ≥ 2 → still invests …
    assert_eq!(subject(&rows, "inbound")["proposes"], json!(true));
    // … and at 4 won (40 % vs 13/30 = 43.3 %) it does not.
    let lower = funnel_snapshot(dir.path(), [900.0, 1000.0, 1100.0], [4, 5, 4], false);
    let (_, rows) = channel_decisions(&lower, &dir.path().join("wh-lower"));
    assert_eq!(subject(&rows, "inbound")["proposes"], json!(false));
    // Pause: 1.2 × baseline exactly (outbound 120 with inbound 90, partner 90: baseline 100).
    let pause = funnel_snapshot(dir.path(), [900.0, 1200.0, 900.0], [5, 5, 5], false);
    let (_, rows) = channel_decisions(&pause, &dir.path().join("wh-pause"));
    let outbound = subject(&rows, "outbound");
    assert_eq!(outbound["proposes"], json!(true), "{outbound:?}");
    assert_eq!(outbound["chosen_action"], json!("pause channel outbound"));
}

#[test]
fn a_node_with_stale_inputs_proposes_nothing_and_says_why() {
    let dir = tempdir();
    let wh = dir.path().join("wh");
    let good = funnel_snapshot(dir.path(), [900.0, 1000.0, 1100.0], [6, 5, 4], false);
    let (code, _) = channel_decisions(&good, &wh);
    assert_eq!(code, 0);
    let first = gtmos::decisions::read_log(&wh).unwrap();
    assert_eq!(first.len(), 1, "{first:?}");
    // Negative spend blocks spend_by_month: the funnel metrics are stale, so is the node.
    let bad = funnel_snapshot(dir.path(), [900.0, 1000.0, 1100.0], [6, 5, 4], true);
    let (code, rows) = channel_decisions(&bad, &wh);
    assert_eq!(code, 1);
    for r in &rows {
        assert_eq!(r["proposes"], json!(false), "{r:?}");
        assert!(
            r["reason"].as_str().unwrap().starts_with("stale inputs"),
            "{r:?}"
        );
    }
    assert_eq!(
        gtmos::decisions::read_log(&wh).unwrap().len(),
        1,
        "nothing new proposed"
    );
}

fn decisions_cli(wh: &Path, args: &[&str]) -> (i32, String, String) {
    let mut a = vec!["decisions", "--warehouse", wh.to_str().unwrap()];
    a.extend_from_slice(args);
    gtmos(&a, wh.parent().unwrap())
}

#[test]
fn the_decision_log_is_append_only_idempotent_and_loses_nothing_under_concurrency() {
    let dir = tempdir();
    let wh = dir.path().join("wh");
    let snap = funnel_snapshot(dir.path(), [900.0, 1200.0, 900.0], [6, 5, 5], false);
    let (code, out, err) = build(&snap, &wh, &["--select", "tag:decisions"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(
        out.contains("decision   channel.invest: 2 proposed, 2 new"),
        "{out}"
    );
    // The same snapshot again proposes the same decisions: nothing new.
    let (_, out, _) = build(&snap, &wh, &["--select", "tag:decisions"]);
    assert!(
        out.contains("decision   channel.invest: 2 proposed, 0 new"),
        "{out}"
    );
    let (code, out, _) = decisions_cli(&wh, &["list", "--format", "json"]);
    assert_eq!(code, 0);
    let list: Value = serde_json::from_str(&out).unwrap();
    let ids: Vec<String> = list["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["decision_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2);
    let d = &list["decisions"][0];
    assert_eq!(d["status"], json!("proposed"));
    assert_eq!(d["owner"], json!("Demand Gen"));
    // Structured fields are JSON, not JSON text inside a string.
    assert_eq!(d["approvers"], json!(["FP&A", "Analytics"]));
    assert_eq!(d["review_date"], json!("2026-01-08"));
    assert_eq!(
        d["selected_thresholds"]["channel_invest_cac_ratio_max"],
        json!(0.9)
    );
    assert!(d["evidence"]["cac_per_sqo"].is_number(), "{d}");

    // Two processes change two decisions at the same moment: both rows land.
    let exe = env!("CARGO_BIN_EXE_gtmos");
    let spawn = |id: &str, verb: &str| {
        std::process::Command::new(exe)
            .args([
                "decisions",
                "--warehouse",
                wh.to_str().unwrap(),
                verb,
                id,
                "--by",
                "FP&A",
            ])
            .spawn()
            .unwrap()
    };
    let (mut a, mut b) = (spawn(&ids[0], "approve"), spawn(&ids[1], "reject"));
    assert!(a.wait().unwrap().success() && b.wait().unwrap().success());
    let log = gtmos::decisions::read_log(&wh).unwrap();
    assert_eq!(log.len(), 4, "two proposals and two changes");
    let cur = gtmos::decisions::current(&log);
    // One of the two approvers is not approval: FP&A approved, Analytics has not.
    assert_eq!(
        cur.iter().map(|e| e.status.as_str()).collect::<Vec<_>>(),
        vec!["partially_approved", "rejected"]
    );

    // Transitions and authority are checked, each refusal naming why.
    let refused = |args: &[&str], why: &str| {
        let (code, out, err) = decisions_cli(&wh, args);
        assert_eq!(code, 2, "{args:?} should be refused\n{out}{err}");
        assert!(err.contains(why), "{args:?}: {err}");
    };
    refused(&["approve", &ids[1], "--by", "Analytics"], "is rejected");
    refused(&["approve", &ids[0], "--by", "FP&A"], "already approved");
    refused(&["approve", &ids[0], "--by", "CRO"], "it awaits Analytics");
    refused(
        &["execute", &ids[0], "--by", "Demand Gen"],
        "can be executed only when approved",
    );
    let (code, out, err) = decisions_cli(&wh, &["approve", &ids[0], "--by", "Analytics"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("is now approved"), "{out}");
    refused(
        &["revert", &ids[0], "--by", "Demand Gen", "--outcome", " "],
        "needs --outcome",
    );
    refused(
        &["execute", &ids[0], "--by", "Intern"],
        "that is for Demand Gen, FP&A, Analytics",
    );
    let (code, out, err) = decisions_cli(
        &wh,
        &[
            "execute",
            &ids[0],
            "--by",
            "Demand Gen",
            "--note",
            "budget split applied",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    refused(&["approve", &ids[0], "--by", "Analytics"], "is executed");
    let (code, out, _) = decisions_cli(
        &wh,
        &[
            "revert",
            &ids[0],
            "--by",
            "Demand Gen",
            "--outcome",
            "budget split restored",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = decisions_cli(&wh, &["show", &ids[0], "--format", "json"]);
    assert_eq!(code, 0);
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["decision"]["status"], json!("reverted"));
    assert_eq!(
        shown["decision"]["reversal_outcome"],
        json!("budget split restored")
    );
    assert_eq!(
        shown["approvals"],
        json!({"required": ["FP&A", "Analytics"], "awaiting": [],
               "approved": [{"role": "FP&A", "by": "FP&A"}, {"role": "Analytics", "by": "Analytics"}]})
    );
    let history: Vec<(&str, &str)> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["status"].as_str().unwrap(),
                h["changed_by"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        history,
        vec![
            ("proposed", "gtmos build"),
            ("partially_approved", "FP&A"),
            ("approved", "Analytics"),
            ("executed", "Demand Gen"),
            ("reverted", "Demand Gen")
        ]
    );
    // Nothing was rewritten: every earlier row is still there, unchanged.
    let now = gtmos::decisions::read_log(&wh).unwrap();
    assert_eq!(&now[..log.len()], &log[..]);
    let (code, _, err) = decisions_cli(&wh, &["show", "d-nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("no decision `d-nope`"), "{err}");
}

/// A snapshot where MM's CAC payback for Q2 2024 is 11.0 months (S&M 770,000; new recurring
/// revenue 100,000; GM 70 %) and MM ran one list-price test of +10 % at $55/seat: control 100
/// accounts × 10 seats, test 100 accounts × `test_seats` ÷ 100 seats.
fn pricing_snapshot(dir: &Path, test_seats: i64) -> PathBuf {
    let (orders, lines): (Vec<Value>, Vec<Value>) = [
        seat_contract("A1", "A", "2024-01-01", "2024-07-01", 6_000.0),
        seat_contract("N1", "N", "2024-06-01", "2024-07-01", 100_000.0),
    ]
    .into_iter()
    .unzip();
    let snap = dir.join(format!("pricing-{test_seats}"));
    mini_snapshot(
        &snap,
        "2024-07-01T00:00:00Z",
        vec![
            (
                "accounts",
                rows(
                    "accounts",
                    &[account_row("A", "SMB"), account_row("N", "MM")],
                ),
            ),
            ("reps", rows("reps", &[rep_row()])),
            ("orders", rows("orders", &orders)),
            ("order_lines", rows("order_lines", &lines)),
            (
                "gtm_spend",
                rows(
                    "gtm_spend",
                    &[
                        json!({"month": "2024-02-01", "channel": "inbound", "category": "sales",
                             "segment": "MM", "amount_usd": 770_000.0}),
                    ],
                ),
            ),
            (
                "financials",
                rows(
                    "financials",
                    &[
                        json!({"quarter_start": "2024-04-01", "revenue_usd": 106_000.0, "gross_margin_pct": 70.0,
                             "ebitda_usd": 1.0, "fcf_usd": 1.0, "operating_income_usd": 1.0}),
                    ],
                ),
            ),
            (
                "price_tests",
                rows(
                    "price_tests",
                    &[
                        json!({"test_id": "PT-1", "segment": "MM", "sku_id": "SEAT-PLATFORM",
                "start_date": "2024-04-01", "end_date": "2024-06-01", "list_price_usd": 55.0, "price_change_pct": 10.0,
                "control_accounts": 100, "control_seats": 1000, "test_accounts": 100, "test_seats": test_seats}),
                    ],
                ),
            ),
        ],
    );
    snap
}

fn node_row(snap: &Path, wh: &Path, model: &str, subject: &str) -> serde_json::Map<String, Value> {
    let (code, out, err) = build(snap, wh, &["--select", "tag:decisions"]);
    assert!(code == 0 || code == 1, "{out}\n{err}");
    let rows = gtmos::table_io::json_rows(&wh.join(format!("published/{model}.parquet"))).unwrap();
    rows.into_iter()
        .find(|r| r["subject"] == json!(subject))
        .unwrap_or_else(|| panic!("no {subject} row in {model}"))
}

#[test]
fn pricing_change_at_just_inside_and_just_outside_its_thresholds() {
    let dir = tempdir();
    let run = |seats: i64| {
        node_row(
            &pricing_snapshot(dir.path(), seats),
            &dir.path().join(format!("wh-{seats}")),
            "decision_pricing_change",
            "MM",
        )
    };
    // P = 55, C = 55 × 0.3 = 16.5, p = 10 %: uplift = 44 (1 + 0.1 E) − 38.5 = 5.5 + 4.4 E.
    // E = −0.30 (970 seats): at the elasticity bound; uplift 4.18; payback 11 → 10.14 months.
    let at = run(970);
    assert_eq!(at["proposes"], json!(true), "{at:?}");
    assert_eq!(
        at["chosen_action"],
        json!("raise the MM list price +10.0 %; hold discount ladders")
    );
    let evidence: Value = serde_json::from_str(at["evidence"].as_str().unwrap()).unwrap();
    assert!((evidence["elasticity"].as_f64().unwrap() + 0.3).abs() < 1e-9);
    assert!((evidence["cm_per_seat_uplift_usd"].as_f64().unwrap() - 4.18).abs() < 1e-9);
    assert!((evidence["payback_months"].as_f64().unwrap() - 11.0).abs() < 1e-9);
    // E = −0.29 (971 seats): demand too inelastic for the playbook's band.
    assert_eq!(run(971)["proposes"], json!(false));
    // E = −0.56 (944): uplift 3.036 ≥ 3 → raise; E = −0.57 (943): uplift 2.992 → hold.
    assert_eq!(run(944)["proposes"], json!(true));
    let below = run(943);
    assert_eq!(below["proposes"], json!(false));
    assert!(
        below["reason"]
            .as_str()
            .unwrap()
            .starts_with("outside thresholds"),
        "{below:?}"
    );
    // SMB has no price test: nothing to decide, and the row says so.
    let smb = node_row(
        &pricing_snapshot(dir.path(), 970),
        &dir.path().join("wh-smb"),
        "decision_pricing_change",
        "SMB",
    );
    assert_eq!(smb["proposes"], json!(false));
    assert!(
        smb["reason"].as_str().unwrap().contains("no price test"),
        "{smb:?}"
    );
}

/// One week (2025-12-29 … 2026-01-04) of 1,000 shadow-routed SMB leads alternating between two
/// reps: the candidate leaves the first `unassigned` unassigned, agrees on the rest below
/// `matched`, and swaps the rep of the others.
fn routing_snapshot(dir: &Path, matched: usize, unassigned: usize) -> PathBuf {
    let events: Vec<Value> = (0..1000)
        .map(|i| {
            let current = if i % 2 == 0 { "REP-A" } else { "REP-B" };
            let candidate = if i < unassigned {
                Value::Null
            } else if i >= matched {
                json!(if current == "REP-A" { "REP-B" } else { "REP-A" })
            } else {
                json!(current)
            };
            json!({"event_id": format!("E{i}"), "routed_at": format!("2025-12-{:02}T10:00:00Z", 29 + i % 3),
                   "segment": "SMB", "current_ruleset": "rules-v1", "candidate_ruleset": "rules-v2",
                   "current_rep_id": current, "candidate_rep_id": candidate,
                   "current_route_seconds": 60.0, "candidate_route_seconds": 50.0})
        })
        .collect();
    let snap = dir.join(format!("routing-{matched}-{unassigned}"));
    mini_snapshot(
        &snap,
        "2026-01-05T00:00:00Z",
        vec![
            ("reps", rows("reps", &[rep_row()])),
            ("routing_shadow_log", rows("routing_shadow_log", &events)),
        ],
    );
    snap
}

#[test]
fn routing_policy_at_just_inside_and_just_outside_its_thresholds() {
    let dir = tempdir();
    let run = |matched: usize, unassigned: usize| {
        node_row(
            &routing_snapshot(dir.path(), matched, unassigned),
            &dir.path().join(format!("wh-{matched}-{unassigned}")),
            "decision_routing_policy",
            "rules-v2",
        )
    };
    // 995 of 1,000 agree: 99.5 %, the threshold → promote.
    let at = run(995, 0);
    assert_eq!(at["proposes"], json!(true), "{at:?}");
    assert_eq!(
        at["chosen_action"],
        json!("promote routing rule set rules-v2")
    );
    // 994: 99.4 % → not yet.
    assert_eq!(run(994, 0)["proposes"], json!(false));
    // 5 unassigned of 1,000, everything else matching: 99.5 % match (an unassigned lead does
    // not match the live rep) and 0.5 % unassigned, both at their thresholds → promote;
    // 6 → 0.6 % unassigned and 99.4 % match → no.
    assert_eq!(run(1000, 5)["proposes"], json!(true));
    let six = run(1000, 6);
    assert_eq!(six["proposes"], json!(false));
    assert!(
        six["reason"].as_str().unwrap().contains("unassigned 0.6 %"),
        "{six:?}"
    );
}

/// MM's CAC payback improves from 20 months (Q3 2024: S&M 100,000 ÷ (new revenue 10,000 ×
/// GM 50 %)) to `q3_spend` ÷ 5,000 months (Q4), and MM wins `mm_won` of 20 new-logo
/// opportunities closed in November (in both trailing-quarter windows, November's and
/// December's) against 5 of 10 for SMB and for ENT.
fn icp_snapshot(dir: &Path, mm_won: usize, q3_spend: f64) -> PathBuf {
    let mut accounts = vec![
        account_row("B", "SMB"),
        account_row("N3", "MM"),
        account_row("N4", "MM"),
    ];
    let mut opps = Vec::new();
    for (seg, n, won) in [("SMB", 10, 5), ("MM", 20, mm_won), ("ENT", 10, 5)] {
        for i in 0..n {
            let id = format!("{seg}-{i}");
            accounts.push(account_row(&id, seg));
            opps.push(json!({"opp_id": format!("O-{id}"), "account_id": id, "owner_rep_id": "REP-1",
                "opp_type": "new_logo", "stage": if i < won { "closed_won" } else { "closed_lost" },
                "amount_usd": 1000.0, "created_date": format!("2024-{:02}-01", 9 + i % 3), "close_date": "2024-11-20",
                "forecast_category": "closed", "updated_at": "2024-12-31T00:00:00Z"}));
        }
    }
    // An open expansion opportunity created in December: the funnel has a December window.
    opps.push(json!({"opp_id": "O-open", "account_id": "B", "owner_rep_id": "REP-1", "opp_type": "expansion",
        "stage": "discovery", "amount_usd": 1000.0, "created_date": "2024-12-05", "close_date": "2025-02-01",
        "forecast_category": "pipeline", "updated_at": "2024-12-31T00:00:00Z"}));
    let (orders, lines): (Vec<Value>, Vec<Value>) = [
        seat_contract("B1", "B", "2024-04-01", "2025-01-01", 9_000.0),
        seat_contract("N31", "N3", "2024-09-01", "2024-10-01", 10_000.0),
        seat_contract("N41", "N4", "2024-12-01", "2025-01-01", 10_000.0),
    ]
    .into_iter()
    .unzip();
    let spend = |m: &str, v: f64| json!({"month": m, "channel": "inbound", "category": "sales", "segment": "MM", "amount_usd": v});
    let quarter = |q: &str| {
        json!({"quarter_start": q, "revenue_usd": 1.0, "gross_margin_pct": 50.0,
        "ebitda_usd": 1.0, "fcf_usd": 1.0, "operating_income_usd": 1.0})
    };
    let snap = dir.join(format!("icp-{mm_won}-{q3_spend}"));
    mini_snapshot(
        &snap,
        "2025-01-01T00:00:00Z",
        vec![
            ("accounts", rows("accounts", &accounts)),
            ("reps", rows("reps", &[rep_row()])),
            ("opportunities", rows("opportunities", &opps)),
            ("orders", rows("orders", &orders)),
            ("order_lines", rows("order_lines", &lines)),
            (
                "gtm_spend",
                rows(
                    "gtm_spend",
                    &[
                        spend("2024-05-01", 100_000.0),
                        spend("2024-08-01", q3_spend),
                    ],
                ),
            ),
            (
                "financials",
                rows(
                    "financials",
                    &[quarter("2024-07-01"), quarter("2024-10-01")],
                ),
            ),
        ],
    );
    snap
}

#[test]
fn icp_update_at_just_inside_and_just_outside_its_thresholds() {
    let dir = tempdir();
    let run = |won: usize, spend: f64| {
        node_row(
            &icp_snapshot(dir.path(), won, spend),
            &dir.path().join(format!("wh-{won}-{spend}")),
            "decision_icp_update",
            "MM",
        )
    };
    // 12 of 20 = 60 % vs all segments 22 of 40 = 55 %: +5 pp, the threshold, in both months;
    // payback 20 → 19 months: improved by exactly 1 → add MM.
    let at = run(12, 95_000.0);
    assert_eq!(at["proposes"], json!(true), "{at:?}");
    assert_eq!(at["chosen_action"], json!("add segment band MM to the ICP"));
    // Payback 20 → 18: well inside.
    assert_eq!(run(12, 90_000.0)["proposes"], json!(true));
    // Payback 20 → 19.1: improved by 0.9 < 1 → no.
    let slow = run(12, 95_500.0);
    assert_eq!(slow["proposes"], json!(false), "{slow:?}");
    assert!(
        slow["reason"]
            .as_str()
            .unwrap()
            .starts_with("within thresholds")
    );
    // 11 of 20 = 55 % vs 21 of 40 = 52.5 %: +2.5 pp < 5 → no.
    assert_eq!(run(11, 90_000.0)["proposes"], json!(false));
    // SMB (5 of 10 = 50 % vs 55 %) has no CAC payback: nothing proposed, and the row says why.
    let smb = node_row(
        &icp_snapshot(dir.path(), 12, 95_000.0),
        &dir.path().join("wh-smb"),
        "decision_icp_update",
        "SMB",
    );
    assert_eq!(smb["proposes"], json!(false));
    assert!(
        smb["reason"].as_str().unwrap().contains("no CAC payback"),
        "{smb:?}"
    );
}

#[test]
fn concurrent_status_changes_of_one_decision_have_one_winner_and_a_valid_history() {
    let dir = tempdir();
    let wh = dir.path().join("wh");
    let proposal = gtmos::decisions::Entry {
        decision_id: "d-race".into(),
        timestamp: "2026-01-01T00:00:00Z".into(),
        node: "channel.invest".into(),
        node_version: None,
        subject: Some("events".into()),
        inputs_version: None,
        inputs_hash: None,
        build_id: None,
        selected_thresholds: None,
        evidence: None,
        chosen_action: Some("pause".into()),
        status: "proposed".into(),
        owner: Some("Demand Gen".into()),
        approvers: Some(r#"["FP&A"]"#.into()),
        changed_by: Some("gtmos build".into()),
        note: None,
        risk_notes: None,
        reversal_plan: None,
        reversal_outcome: None,
        review_date: None,
        run_id: Some("r0".into()),
        acted_as: None,
    };
    gtmos::decisions::append(&wh, "r0", &[proposal]).unwrap();
    // Ten approvals and ten rejections of a one-approver decision, all at once.
    let exe = env!("CARGO_BIN_EXE_gtmos");
    let children: Vec<_> = (0..20)
        .map(|i| {
            std::process::Command::new(exe)
                .args([
                    "decisions",
                    "--warehouse",
                    wh.to_str().unwrap(),
                    if i % 2 == 0 { "approve" } else { "reject" },
                    "d-race",
                    "--by",
                    "FP&A",
                ])
                .current_dir(dir.path())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let codes: Vec<i32> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap().status.code().unwrap())
        .collect();
    assert_eq!(codes.iter().filter(|c| **c == 0).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 2).count(), 19, "{codes:?}");
    let log = gtmos::decisions::read_log(&wh).unwrap();
    let history: Vec<&str> = log.iter().map(|e| e.status.as_str()).collect();
    assert_eq!(history.len(), 2, "{history:?}");
    assert!(matches!(history[1], "approved" | "rejected"), "{history:?}");
}
