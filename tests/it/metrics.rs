//! The metric layer (SPEC §8) end to end: the NRR/GRR oracle through the whole build on a
//! hand-made snapshot, calendar edges, plan comparison, segment sums, publish gating, and an
//! independent recomputation on a synthetic corpus. The formulas' worked oracles (NRR/GRR,
//! Magic Number, CAC payback, Rule of 40) are unit tests beside the models, in
//! pipelines/models/metrics/_unit_tests.yml, run by `gtmos test` (and
//! tests/it/unit_tests.rs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gtmos::calendar::Day;
use serde_json::{Value, json};

use crate::common::*;

fn plan(
    version: &str,
    asof: &str,
    board: bool,
    period: &str,
    grain: &str,
    metric: &str,
    v: f64,
) -> Value {
    json!({"plan_version": version, "reforecast_as_of_date": asof, "is_board_plan": board,
           "period_start": period, "period_grain": grain, "segment": "ALL", "metric_name": metric,
           "target_value": v})
}

/// Build a hand-made snapshot; returns the temp dir (warehouse at `wh/`).
fn build_metrics(
    as_of: &str,
    accounts: &[(&str, &str)],
    contracts: &[(&str, &str, &str, &str, f64)],
    mut tables: Vec<(&str, arrow::array::RecordBatch)>,
) -> tempfile::TempDir {
    let dir = tempdir();
    let snap = dir.path().join("snap");
    let (orders, lines): (Vec<Value>, Vec<Value>) = contracts
        .iter()
        .map(|(id, a, s, e, amount)| seat_contract(id, a, s, e, *amount))
        .unzip();
    let accounts: Vec<Value> = accounts.iter().map(|(a, s)| account_row(a, s)).collect();
    tables.extend([
        ("accounts", rows("accounts", &accounts)),
        ("reps", rows("reps", &[rep_row()])),
        ("orders", rows("orders", &orders)),
        ("order_lines", rows("order_lines", &lines)),
    ]);
    mini_snapshot(&snap, as_of, tables);
    let (code, out, err) = build(&snap, &dir.path().join("wh"), &["--select", "tag:metrics"]);
    assert!(code == 0 || code == 1, "{out}\n{err}");
    dir
}

/// metrics_calc_log keyed by (metric, cadence, period, segment).
struct Log {
    rows: BTreeMap<(String, String, String, String), BTreeMap<String, Value>>,
}

impl Log {
    fn read(wh: &Path) -> Log {
        let rows = gtmos::table_io::json_rows(&wh.join("published/metrics_calc_log.parquet"))
            .unwrap()
            .into_iter()
            .map(|r| {
                let r: BTreeMap<String, Value> = r.into_iter().collect();
                let k = |c: &str| r[c].as_str().unwrap_or("").to_string();
                (
                    (k("metric_name"), k("cadence"), k("period"), k("segment")),
                    r,
                )
            })
            .collect();
        Log { rows }
    }

    fn row(
        &self,
        metric: &str,
        cadence: &str,
        period: &str,
        segment: &str,
    ) -> &BTreeMap<String, Value> {
        let key = (metric.into(), cadence.into(), period.into(), segment.into());
        self.rows
            .get(&key)
            .unwrap_or_else(|| panic!("no metrics_calc_log row {key:?}"))
    }

    fn value(&self, metric: &str, cadence: &str, period: &str, segment: &str) -> Option<f64> {
        self.row(metric, cadence, period, segment)["metric_value"].as_f64()
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

#[test]
fn nrr_and_grr_match_the_spec_oracle_and_the_plan_is_the_latest_reforecast() {
    // SPEC §8: A 100→150, B 100→60, C 100→0 (churned), D new at 50 → NRR 70.00 %, GRR 53.33 %.
    let d = build_metrics(
        "2025-04-01T00:00:00Z",
        &[("A", "SMB"), ("B", "SMB"), ("C", "MM"), ("D", "ENT")],
        &[
            ("A1", "A", "2024-03-01", "2024-04-01", 100.0),
            ("A2", "A", "2025-03-01", "2025-04-01", 150.0),
            ("B1", "B", "2024-03-01", "2024-04-01", 100.0),
            ("B2", "B", "2025-03-01", "2025-04-01", 60.0),
            ("C1", "C", "2024-03-01", "2024-04-01", 100.0),
            ("D2", "D", "2025-03-01", "2025-04-01", 50.0),
        ],
        vec![(
            "fpa_plan",
            rows(
                "fpa_plan",
                &[
                    plan(
                        "0+12",
                        "2024-12-10",
                        true,
                        "2025-03-01",
                        "month",
                        "nrr",
                        110.0,
                    ),
                    plan(
                        "0+12",
                        "2024-12-10",
                        false,
                        "2025-03-01",
                        "month",
                        "nrr",
                        100.0,
                    ),
                    plan(
                        "3+9",
                        "2025-03-15",
                        false,
                        "2025-03-01",
                        "month",
                        "nrr",
                        104.0,
                    ),
                    // dated after as_of: not known yet
                    plan(
                        "6+6",
                        "2025-04-10",
                        false,
                        "2025-03-01",
                        "month",
                        "nrr",
                        999.0,
                    ),
                ],
            ),
        )],
    );
    let log = Log::read(&d.path().join("wh"));
    let nrr = log.row("nrr", "monthly", "2025-03-01", "ALL");
    assert!(
        close(nrr["metric_value"].as_f64().unwrap(), 70.0),
        "{nrr:?}"
    );
    assert_eq!(nrr["numerator"].as_f64(), Some(210.0));
    assert_eq!(nrr["denominator"].as_f64(), Some(300.0));
    let grr = log.value("grr", "monthly", "2025-03-01", "ALL").unwrap();
    assert!(close(grr, 160.0 / 3.0), "{grr}");
    assert_eq!(format!("{grr:.2}"), "53.33");
    // Per segment: SMB (A, B) 210/200; MM (C churned) 0 %; ENT has no base → a data gap.
    assert!(close(
        log.value("nrr", "monthly", "2025-03-01", "SMB").unwrap(),
        105.0
    ));
    assert_eq!(log.value("nrr", "monthly", "2025-03-01", "MM"), Some(0.0));
    let ent = log.row("nrr", "monthly", "2025-03-01", "ENT");
    assert_eq!(ent["data_gap"], json!(true));
    assert!(ent["metric_value"].is_null());
    assert!(
        ent["data_gap_reason"]
            .as_str()
            .unwrap()
            .contains("12 months earlier")
    );
    // Plan: the latest non-board reforecast at or before as_of; the board plan beside it.
    assert_eq!(nrr["plan_version"], json!("3+9"));
    assert_eq!(nrr["plan_target"].as_f64(), Some(104.0));
    assert_eq!(nrr["board_plan_target"].as_f64(), Some(110.0));
    assert!(close(nrr["pct_of_plan"].as_f64().unwrap(), 70.0 / 104.0));
    assert_eq!(nrr["data_gap"], json!(false));
    assert_eq!(nrr["stale"], json!(false));
    assert!(
        nrr["definition_version"]
            .as_str()
            .unwrap()
            .starts_with("1+")
    );
}

#[test]
fn calendar_edges_month_ends_leap_days_and_quarters_of_different_lengths() {
    let d = build_metrics(
        "2026-01-01T00:00:00Z",
        &[("M", "SMB"), ("L", "MM"), ("Q", "ENT")],
        &[
            // Only March 31 recognises in 2024: March 2025's lookback must include it.
            ("M1", "M", "2024-03-31", "2024-04-01", 31.0),
            ("M2", "M", "2025-03-01", "2025-04-01", 62.0),
            // Only February 29, 2024: February 2025 compares against it.
            ("L1", "L", "2024-02-29", "2024-03-01", 29.0),
            ("L2", "L", "2025-02-01", "2025-03-01", 14.5),
            // $1 a day through 2024 (366 days) and 2025 (365): Q1 has 91 days, then 90.
            ("Q1", "Q", "2024-01-01", "2025-01-01", 366.0),
            ("Q2", "Q", "2025-01-01", "2026-01-01", 365.0),
        ],
        vec![],
    );
    let log = Log::read(&d.path().join("wh"));
    assert_eq!(
        log.value("nrr", "monthly", "2025-03-01", "SMB"),
        Some(200.0)
    );
    assert_eq!(log.value("nrr", "monthly", "2025-02-01", "MM"), Some(50.0));
    let q = log.row("nrr", "quarterly", "2025-01-01", "ENT");
    assert_eq!(q["numerator"].as_f64(), Some(90.0));
    assert_eq!(q["denominator"].as_f64(), Some(91.0));
    assert!(close(q["metric_value"].as_f64().unwrap(), 9000.0 / 91.0));
    // Q3 has 92 days in both years.
    assert_eq!(
        log.value("nrr", "quarterly", "2025-07-01", "ENT"),
        Some(100.0)
    );
}

/// Recurring revenue per (account, month) from the published recognition log: seat and
/// consumption rows, adjustments and restatements kept out.
fn recurring_by_account_month(wh: &Path) -> BTreeMap<(String, i32), i128> {
    let t = Table::read_file(&wh.join("published/revenue_recognition_log.parquet"));
    let mut m: BTreeMap<(String, i32), i128> = BTreeMap::new();
    for i in 0..t.rows {
        let sku = t.s("sku_type")[i].clone();
        if (sku == "seat" || sku == "consumption")
            && t.bool("prior_period_adjustment")[i] == Some(false)
            && t.bool("restatement_flag")[i] == Some(false)
        {
            *m.entry((t.s("account_id")[i].clone(), t.date("month")[i].unwrap()))
                .or_default() += t.dec("recognized_usd")[i].unwrap();
        }
    }
    m
}

/// NRR and GRR (num, den) per (month, segment), by plain loops.
fn retention_by_loops(
    revenue: &BTreeMap<(String, i32), i128>,
    segment_of: &BTreeMap<String, String>,
    last_month: i32,
) -> BTreeMap<(i32, String), (i128, i128, i128)> {
    let mut out: BTreeMap<(i32, String), (i128, i128, i128)> = BTreeMap::new();
    for ((account, month), before) in revenue {
        if *before <= 0 {
            continue;
        }
        let target = Day(*month).add_months(12).0;
        if target > last_month {
            continue;
        }
        let now = revenue
            .get(&(account.clone(), target))
            .copied()
            .unwrap_or(0);
        for seg in [segment_of[account].clone(), "ALL".to_string()] {
            let e = out.entry((target, seg)).or_default();
            e.0 += now;
            e.1 += now.min(*before);
            e.2 += before;
        }
    }
    out
}

#[test]
fn nrr_and_grr_per_segment_match_an_independent_recomputation() {
    let (wh, _, _) = crate::build::built_for_report();
    let revenue = recurring_by_account_month(wh);
    let accounts = Table::read(corpus(), "accounts");
    let segment_of: BTreeMap<String, String> = accounts
        .s("account_id")
        .into_iter()
        .zip(accounts.s("segment"))
        .collect();
    let last_month = revenue.keys().map(|k| k.1).max().unwrap();
    let expected = retention_by_loops(&revenue, &segment_of, last_month);
    let log = Log::read(wh);
    let mut checked = 0;
    for ((month, seg), (kept, capped, before)) in &expected {
        let period = Day(*month).iso();
        let nrr = log.row("nrr", "monthly", &period, seg);
        let want = 100.0 * *kept as f64 / *before as f64;
        assert!(
            close(nrr["metric_value"].as_f64().unwrap(), want),
            "nrr {period} {seg}"
        );
        assert!(close(
            nrr["denominator"].as_f64().unwrap(),
            *before as f64 / 100.0
        ));
        let grr = log.value("grr", "monthly", &period, seg).unwrap();
        assert!(
            close(grr, 100.0 * *capped as f64 / *before as f64),
            "grr {period} {seg}"
        );
        checked += 1;
    }
    assert!(checked >= 4 * 12, "only {checked} periods checked");
    // Nothing more in the log than what the loops find (apart from data gaps).
    let produced = log
        .rows
        .iter()
        .filter(|((m, c, _, _), r)| m == "nrr" && c == "monthly" && r["data_gap"] == json!(false))
        .count();
    assert_eq!(produced, expected.len());
}

#[test]
fn segment_numerators_and_denominators_add_up_to_all() {
    let (wh, _, _) = crate::build::built_for_report();
    let log = Log::read(wh);
    let mut sums: BTreeMap<(String, String, String), [f64; 4]> = BTreeMap::new();
    for ((metric, cadence, period, seg), r) in &log.rows {
        if !["nrr", "grr", "magic_number", "pipeline_coverage"].contains(&metric.as_str())
            || r["stale"] == json!(true)
        {
            continue;
        }
        let e = sums
            .entry((metric.clone(), cadence.clone(), period.clone()))
            .or_default();
        let (n, d) = (
            r["numerator"].as_f64().unwrap_or(0.0),
            r["denominator"].as_f64().unwrap_or(0.0),
        );
        if seg == "ALL" {
            e[2] += n;
            e[3] += d;
        } else {
            e[0] += n;
            e[1] += d;
        }
    }
    assert!(sums.len() > 20);
    for (k, [n, d, all_n, all_d]) in sums {
        assert!(
            (n - all_n).abs() <= 1e-6 * all_n.abs().max(1.0),
            "{k:?} numerators {n} vs {all_n}"
        );
        // Coverage's denominator is the plan target less closed-won, and plans are drawn per
        // segment and for ALL separately: only its numerator (open pipeline) is additive.
        if k.0 != "pipeline_coverage" {
            assert!(
                (d - all_d).abs() <= 1e-6 * all_d.abs().max(1.0),
                "{k:?} denominators {d} vs {all_d}"
            );
        }
    }
}

/// A 60-account corpus without faults that block metrics, built once for these tests.
fn clean_build() -> &'static (PathBuf, PathBuf) {
    static B: std::sync::OnceLock<(PathBuf, PathBuf)> = std::sync::OnceLock::new();
    B.get_or_init(|| {
        let root = corpus()
            .parent()
            .unwrap()
            .join(format!("metrics-{}", std::process::id()));
        let snap = root.join("snap");
        let p = gtmos::synth::params::SynthParams {
            seed: 11,
            accounts: 60,
            ..Default::default()
        };
        gtmos::synth::generate(&p, &snap, 2, false).unwrap();
        let wh = root.join("wh");
        let (code, out, err) = build(&snap, &wh, &["--select", "tag:metrics"]);
        assert!(code == 0 || code == 1, "{out}\n{err}");
        (snap, wh)
    })
}

#[test]
fn magic_number_per_segment_matches_an_independent_recomputation() {
    let (snap, wh) = clean_build();
    let revenue = recurring_by_account_month(wh);
    let accounts = Table::read(snap, "accounts");
    let segment_of: BTreeMap<String, String> = accounts
        .s("account_id")
        .into_iter()
        .zip(accounts.s("segment"))
        .collect();
    // Revenue and S&M per (quarter start, segment), in cents.
    let quarter = |m: i32| Day(m).first_of_quarter().0;
    let mut rev: BTreeMap<(i32, String), i128> = BTreeMap::new();
    for ((a, m), v) in &revenue {
        for s in [segment_of[a].clone(), "ALL".into()] {
            *rev.entry((quarter(*m), s)).or_default() += v;
        }
    }
    let sp = Table::read(snap, "gtm_spend");
    let mut sm: BTreeMap<(i32, String), i128> = BTreeMap::new();
    for i in 0..sp.rows {
        if ["sales", "marketing"].contains(&sp.s("category")[i].as_str()) {
            for s in [sp.s("segment")[i].clone(), "ALL".into()] {
                *sm.entry((quarter(sp.date("month")[i].unwrap()), s))
                    .or_default() += sp.dec("amount_usd")[i].unwrap();
            }
        }
    }
    let first = revenue.keys().map(|k| k.1).min().unwrap();
    let last = revenue.keys().map(|k| k.1).max().unwrap();
    let log = Log::read(wh);
    let mut checked = 0;
    for ((q, seg), now) in &rev {
        let prior_q = Day(*q).add_months(-3).0;
        if prior_q < first || Day(*q).add_months(2).0 > last {
            continue;
        }
        let before = rev.get(&(prior_q, seg.clone())).copied().unwrap_or(0);
        let got = log.value("magic_number", "quarterly", &Day(*q).iso(), seg);
        let Some(spend) = sm.get(&(prior_q, seg.clone())).filter(|s| **s > 0) else {
            assert_eq!(got, None, "{q} {seg}: no S&M is a data gap");
            continue;
        };
        let want = (now - before) as f64 * 4.0 / *spend as f64;
        let got = got.unwrap();
        assert!(close(got, want), "{q} {seg}: {got} vs {want}");
        checked += 1;
    }
    assert!(checked >= 4 * 5, "only {checked} quarters checked");
}

#[test]
fn a_blocked_metric_keeps_its_last_good_values_marked_stale_while_others_publish() {
    let (snap, wh) = clean_build();
    let dir = tempdir();
    let wh2 = dir.path().join("wh");
    let (code, out, err) = build(snap, &wh2, &["--select", "tag:metrics"]);
    assert_eq!(code, 0, "{out}\n{err}");
    let good = Log::read(&wh2);
    assert_eq!(Log::read(wh).rows.len(), good.rows.len());
    // The next snapshot carries negative spend: S&M-based metrics are blocked.
    let bad = dir.path().join("bad");
    copy_snapshot_with_negative_spend(snap, &bad);
    let (code, out, err) = build(&bad, &wh2, &["--select", "tag:metrics"]);
    assert_eq!(code, 1, "a blocked publish exits 1\n{out}\n{err}");
    let after = Log::read(&wh2);
    let mut stale = 0;
    for (k, r) in &after.rows {
        let before = &good.rows[k];
        // Every metric model that reads spend_by_month: Magic Number, both CAC paybacks and
        // the funnel metrics (one gated unit with CAC/SQO).
        let reads_spend = k.0 == "magic_number"
            || k.0.starts_with("cac_payback")
            || ["cac_per_sqo", "sql_to_win_pct", "attribution_validity"].contains(&k.0.as_str());
        if reads_spend {
            assert_eq!(r["stale"], json!(true), "{k:?}");
            assert_eq!(r["data_gap"], json!(true));
            assert!(
                r["data_gap_reason"].as_str().unwrap().contains("blocked"),
                "{r:?}"
            );
            assert_eq!(
                r["metric_value"], before["metric_value"],
                "last good value {k:?}"
            );
            assert_eq!(r["computed_in_build"], before["build_id"]);
            stale += 1;
        } else {
            assert_eq!(r["stale"], json!(false), "{k:?}");
            assert_ne!(r["build_id"], before["build_id"]);
        }
    }
    assert!(stale > 0);
}

fn copy_snapshot_with_negative_spend(src: &Path, dst: &Path) {
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("manifest.json")).unwrap()).unwrap();
    let mut tables = Vec::new();
    for t in registry().tables() {
        let path = src.join(format!("{}.parquet", t.name));
        if !path.exists() {
            continue;
        }
        let batch = if t.name == "gtm_spend" {
            let mut v = gtmos::table_io::json_rows(&path).unwrap();
            v[0].insert("amount_usd".into(), json!(-5000.0));
            let v: Vec<Value> = v.into_iter().map(Value::Object).collect();
            rows("gtm_spend", &v)
        } else {
            let (schema, batches) = gtmos::table_io::read_parquet(&path).unwrap();
            arrow::compute::concat_batches(&schema, &batches).unwrap()
        };
        tables.push((t.name.as_str(), batch));
    }
    mini_snapshot(dst, manifest["as_of"].as_str().unwrap(), tables);
}
