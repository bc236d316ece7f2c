//! ASC 606 recognition, deferred revenue, closed periods and reconciliation (SPEC §7), on
//! hand-made snapshots with answers computed outside the code, and on the synthetic corpus.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::common::*;

fn account(id: &str) -> Value {
    json!({"account_id": id, "account_name": id, "domain": format!("{id}.com"), "segment": "SMB", "vertical": "SaaS",
           "geo": "NA", "employee_count": 10, "annual_revenue_usd": 1000.0, "acquisition_channel": "inbound",
           "owner_rep_id": "REP-1", "updated_at": "2019-01-01T00:00:00Z"})
}

fn rep() -> Value {
    json!({"rep_id": "REP-1", "full_name": "R", "role": "AE", "segment": "SMB", "geo": "NA", "hire_date": "2010-01-01"})
}

fn order(id: &str, start: &str, end: &str) -> Value {
    json!({"order_id": id, "account_id": "A1", "order_date": start, "term_start": start, "term_end": end,
           "status": "active", "billing_frequency": "annual"})
}

fn seat_line(id: &str, order: &str, amount: f64) -> Value {
    json!({"order_line_id": id, "order_id": order, "account_id": "A1", "sku_id": "SEAT-PLATFORM", "sku_type": "seat",
           "quantity": 1, "unit_price_usd": amount, "line_amount_usd": amount})
}

struct Books {
    dir: tempfile::TempDir,
}

impl Books {
    fn warehouse(&self) -> PathBuf {
        self.dir.path().join("wh")
    }

    /// (line, month) → recognised cents, normal rows only.
    fn recognized(&self) -> BTreeMap<(String, String), i128> {
        let t = Table::read_file(
            &self
                .warehouse()
                .join("published/revenue_recognition_log.parquet"),
        );
        let mut m = BTreeMap::new();
        for i in 0..t.rows {
            if t.bool("prior_period_adjustment")[i] == Some(false)
                && t.bool("restatement_flag")[i] == Some(false)
            {
                let key = (
                    t.s("order_line_id")[i].clone(),
                    gtmos::calendar::Day(t.date("month")[i].unwrap()).iso(),
                );
                *m.entry(key).or_default() += t.dec("recognized_usd")[i].unwrap();
            }
        }
        m
    }

    fn line(&self, line: &str) -> Vec<i128> {
        self.recognized()
            .into_iter()
            .filter(|((l, _), _)| l == line)
            .map(|(_, v)| v)
            .collect()
    }
}

fn build_books(
    as_of: &str,
    tables: Vec<(&str, arrow::array::RecordBatch)>,
    extra: &[&str],
) -> Books {
    let dir = tempdir();
    let snap = dir.path().join("snap");
    let mut all = vec![
        ("accounts", rows("accounts", &[account("A1")])),
        ("reps", rows("reps", &[rep()])),
    ];
    all.extend(tables);
    mini_snapshot(&snap, as_of, all);
    let (code, out, err) = build(&snap, &dir.path().join("wh"), extra);
    assert_eq!(code, 0, "{out}\n{err}");
    Books { dir }
}

fn project_with_method(dir: &Path, method: &str) -> PathBuf {
    let dst = dir.join("pipelines");
    copy_dir(&project_dir(), &dst);
    let p = dst.join("gtmos_project.yml");
    let text = std::fs::read_to_string(&p).unwrap().replace(
        "recognition_method: daily",
        &format!("recognition_method: {method}"),
    );
    std::fs::write(&p, text).unwrap();
    dst
}

fn copy_dir(src: &Path, dst: &Path) {
    for e in std::fs::read_dir(src).unwrap() {
        let p = e.unwrap().path();
        let to = dst.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_dir(&p, &to);
        } else {
            std::fs::create_dir_all(dst).unwrap();
            std::fs::copy(&p, &to).unwrap();
        }
    }
}

#[test]
fn the_spec_oracles_daily() {
    let b = build_books(
        "2024-11-01T00:00:00Z",
        vec![
            (
                "orders",
                rows(
                    "orders",
                    &[
                        order("O1", "2024-06-15", "2024-10-13"),
                        order("O2", "2024-01-15", "2024-04-15"),
                        order("O3", "2024-01-01", "2025-01-01"),
                    ],
                ),
            ),
            (
                "order_lines",
                rows(
                    "order_lines",
                    &[
                        seat_line("L120", "O1", 120.0),
                        seat_line("L300", "O2", 300.0),
                        seat_line("L366", "O3", 366.0),
                    ],
                ),
            ),
        ],
        &[],
    );
    // $120 from 2024-06-15 to 2024-10-13 → 16, 31, 31, 30, 12.
    assert_eq!(b.line("L120"), vec![1_600, 3_100, 3_100, 3_000, 1_200]);
    // A mid-month quarterly term: 17 + 29 + 31 + 14 days of 91 (2024 is a leap year); the remainder on the last month.
    assert_eq!(b.line("L300"), vec![5_604, 9_560, 10_220, 4_616]);
    // The leap-year term: February 2024 recognises 29 days of 366.
    let leap = b.recognized();
    assert_eq!(leap[&("L366".to_string(), "2024-02-01".to_string())], 2_900);
    assert_eq!(
        b.line("L366").len(),
        10,
        "only months ended by as_of 2024-11-01 are recognised"
    );
}

#[test]
fn the_spec_oracle_annual_upfront_and_deferred_revenue() {
    let b = build_books(
        "2019-04-01T00:00:00Z",
        vec![
            (
                "orders",
                rows("orders", &[order("O1", "2019-01-01", "2020-01-01")]),
            ),
            (
                "order_lines",
                rows("order_lines", &[seat_line("L365", "O1", 365.0)]),
            ),
            (
                "invoices",
                rows(
                    "invoices",
                    &[
                        json!({"invoice_id": "I1", "account_id": "A1", "order_id": "O1", "invoice_date": "2019-01-01",
                "due_date": "2019-01-31", "billing_type": "recurring", "period_start": "2019-01-01", "period_end": "2020-01-01",
                "amount_usd": 365.0, "status": "paid"}),
                    ],
                ),
            ),
            (
                "invoice_lines",
                rows(
                    "invoice_lines",
                    &[
                        json!({"invoice_line_id": "IL1", "invoice_id": "I1", "order_line_id": "L365",
                "amount_usd": 365.0, "service_period_start": "2019-01-01", "service_period_end": "2020-01-01"}),
                    ],
                ),
            ),
        ],
        &[],
    );
    assert_eq!(b.line("L365"), vec![3_100, 2_800, 3_100]);
    let d = Table::read_file(
        &b.warehouse()
            .join("published/deferred_revenue_schedule.parquet"),
    );
    assert_eq!(
        d.dec("opening_usd")
            .into_iter()
            .flatten()
            .collect::<Vec<_>>(),
        vec![0, 33_400, 30_600]
    );
    assert_eq!(
        d.dec("billed_usd")
            .into_iter()
            .flatten()
            .collect::<Vec<_>>(),
        vec![36_500, 0, 0]
    );
    assert_eq!(
        d.dec("closing_usd")
            .into_iter()
            .flatten()
            .collect::<Vec<_>>(),
        vec![33_400, 30_600, 27_500]
    );
    let r = Table::read_file(
        &b.warehouse()
            .join("published/deferred_revenue_rollforward.parquet"),
    );
    assert_eq!(
        r.dec("closing_usd")
            .into_iter()
            .flatten()
            .collect::<Vec<_>>(),
        vec![33_400, 30_600, 27_500]
    );
    let w = Table::read_file(&b.warehouse().join("published/revenue_waterfall.parquet"));
    assert_eq!(w.dec("recognized_to_date_usd")[0], Some(9_000));
    assert_eq!(
        w.dec("remaining_usd")[0],
        Some(27_500),
        "what the schedule still holds"
    );
}

#[test]
fn monthly_prorated_keeps_the_totals() {
    let dir = tempdir();
    let project = project_with_method(dir.path(), "monthly_prorated");
    let snap = dir.path().join("snap");
    mini_snapshot(
        &snap,
        "2024-11-01T00:00:00Z",
        vec![
            ("accounts", rows("accounts", &[account("A1")])),
            ("reps", rows("reps", &[rep()])),
            (
                "orders",
                rows("orders", &[order("O2", "2024-01-15", "2024-04-15")]),
            ),
            (
                "order_lines",
                rows("order_lines", &[seat_line("L300", "O2", 300.0)]),
            ),
        ],
    );
    let wh = dir.path().join("wh");
    let (code, _, err) = gtmos(
        &[
            "build",
            "--project",
            project.to_str().unwrap(),
            "--snapshot",
            snap.to_str().unwrap(),
            "--warehouse",
            wh.to_str().unwrap(),
            "--no-report",
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    let t = Table::read_file(&wh.join("published/revenue_recognition_log.parquet"));
    // 17/31 + 1 + 1 + 14/30 months (fractions computed independently); remainder on April.
    assert_eq!(
        t.dec("recognized_usd")
            .into_iter()
            .flatten()
            .collect::<Vec<_>>(),
        vec![5_456, 9_950, 9_950, 4_644]
    );
    assert!(
        t.s("method").iter().all(|m| m == "monthly_prorated"),
        "the convention is recorded on every row"
    );
}

fn consumption_books() -> Books {
    let usage = |id: &str, day: &str, units: f64, over: Value| {
        let mut r = json!({"usage_id": id, "account_id": "A1", "sku_id": "API-CALLS", "sku_type": "consumption",
            "period_start": format!("{day}T00:00:00Z"), "period_end": format!("{day}T23:59:59Z"), "period_granularity": "day",
            "units_consumed": units, "commit_units": 100.0, "overage_units": 0.0, "unit_price_usd": 1.0,
            "overage_unit_price_usd": 1.5, "source_system": "m", "ingest_event_id": format!("e-{id}"), "ingest_batch_id": "b",
            "received_at": format!("{day}T23:59:59Z"), "effective_at": format!("{day}T00:00:00Z"), "record_version": 1,
            "audit_status": "verified"});
        for (k, v) in over.as_object().unwrap() {
            r[k] = v.clone();
        }
        r
    };
    let cons = json!({"order_line_id": "LC", "order_id": "OC", "account_id": "A1", "sku_id": "API-CALLS", "sku_type": "consumption",
        "quantity": 100, "unit_price_usd": 1.0, "overage_unit_price_usd": 1.5, "line_amount_usd": 300.0});
    let svc = json!({"order_line_id": "LS", "order_id": "OC", "account_id": "A1", "sku_id": "SVC", "sku_type": "services",
        "quantity": 1, "unit_price_usd": 700.0, "line_amount_usd": 700.0});
    let ms = |id: &str, amount: f64, done: Option<&str>, signed: Option<&str>| {
        json!({"milestone_id": id, "order_line_id": "LS", "account_id": "A1", "milestone_name": id, "amount_usd": amount,
               "planned_date": "2024-01-10", "completed_date": done, "customer_sign_off": signed.is_some(), "sign_off_date": signed})
    };
    build_books(
        "2024-04-01T00:00:00Z",
        vec![
            (
                "orders",
                rows("orders", &[order("OC", "2024-01-01", "2024-04-01")]),
            ),
            ("order_lines", rows("order_lines", &[cons, svc])),
            (
                "service_milestones",
                rows(
                    "service_milestones",
                    &[
                        ms("M1", 200.0, Some("2024-01-20"), Some("2024-02-03")),
                        ms("M2", 500.0, Some("2024-02-20"), None),
                    ],
                ),
            ),
            (
                "usage_metering_log",
                rows(
                    "usage_metering_log",
                    &[
                        // January: 80 units, below the commit of 100.
                        usage("j1", "2024-01-10", 80.0, json!({})),
                        // February: 130 units above the commit, plus a disputed row that must not count.
                        usage("f1", "2024-02-10", 130.0, json!({})),
                        usage(
                            "f2",
                            "2024-02-11",
                            10.0,
                            json!({"audit_status": "disputed"}),
                        ),
                        // March: version 1 (150) replaced by version 2 (120).
                        usage("m1", "2024-03-10", 150.0, json!({})),
                        usage(
                            "m2",
                            "2024-03-10",
                            120.0,
                            json!({"record_version": 2, "prior_version_id": "m1", "received_at": "2024-03-15T00:00:00Z"}),
                        ),
                    ],
                ),
            ),
        ],
        &[],
    )
}

#[test]
fn consumption_is_commit_plus_overage_from_current_undisputed_usage() {
    let b = consumption_books();
    let r = b.recognized();
    assert_eq!(
        r[&("LC".to_string(), "2024-01-01".to_string())],
        10_000,
        "below commit recognises the commit"
    );
    assert_eq!(
        r[&("LC".to_string(), "2024-02-01".to_string())],
        14_500,
        "100.00 + 30 × 1.50; the disputed row adds nothing"
    );
    assert_eq!(
        r[&("LC".to_string(), "2024-03-01".to_string())],
        13_000,
        "version 2 (120 units) replaces version 1 (150)"
    );
}

#[test]
fn services_recognise_only_on_customer_sign_off() {
    let b = consumption_books();
    let r = b.recognized();
    let services: Vec<(&(String, String), &i128)> =
        r.iter().filter(|((l, _), _)| l == "LS").collect();
    assert_eq!(
        services,
        vec![(&("LS".to_string(), "2024-02-01".to_string()), &20_000)],
        "M1 in its sign-off month; M2 completed but not signed off: nothing"
    );
}

/// A corpus with a usage correction written into a closed month after the close.
fn corrected_copy(src: &Path, dst: &Path, day: &str, add_units: f64) -> String {
    copy_dir(src, dst);
    let path = dst.join("usage_metering_log.parquet");
    let t = Table::read_file(&path);
    let (ids, skus, starts) = (t.s("usage_id"), t.s("sku_id"), t.ts("period_start"));
    let day_micros = gtmos::calendar::parse_ts(day).unwrap();
    let i = (0..t.rows)
        .find(|&i| {
            skus[i] == "API-CALLS" && starts[i] == Some(day_micros) && ids[i].ends_with("-1")
        })
        .expect("a consumption row that day");
    let (schema, mut batches) = gtmos::table_io::read_parquet(&path).unwrap();
    let row = arrow::compute::concat_batches(&schema, &batches)
        .unwrap()
        .slice(i, 1);
    let mut cols = row.columns().to_vec();
    let set = |cols: &mut Vec<arrow::array::ArrayRef>, name: &str, a: arrow::array::ArrayRef| {
        cols[schema.index_of(name).unwrap()] = a
    };
    let units = arrow::array::AsArray::as_primitive::<arrow::datatypes::Float64Type>(
        row.column(schema.index_of("units_consumed").unwrap()),
    )
    .value(0);
    use std::sync::Arc;
    set(
        &mut cols,
        "usage_id",
        Arc::new(arrow::array::StringArray::from(vec!["CORR-1"])),
    );
    set(
        &mut cols,
        "ingest_event_id",
        Arc::new(arrow::array::StringArray::from(vec!["corr-1"])),
    );
    set(
        &mut cols,
        "record_version",
        Arc::new(arrow::array::Int32Array::from(vec![2])),
    );
    set(
        &mut cols,
        "prior_version_id",
        Arc::new(arrow::array::StringArray::from(vec![ids[i].clone()])),
    );
    set(
        &mut cols,
        "units_consumed",
        Arc::new(arrow::array::Float64Array::from(vec![units + add_units])),
    );
    // Received after the close (versions are ordered by arrival).
    let received = gtmos::calendar::parse_ts("2025-10-05T00:00:00Z").unwrap();
    let received_type = schema
        .field_with_name("received_at")
        .unwrap()
        .data_type()
        .clone();
    set(
        &mut cols,
        "received_at",
        arrow::compute::cast(
            &arrow::array::Int64Array::from(vec![received]),
            &received_type,
        )
        .unwrap(),
    );
    batches.push(arrow::array::RecordBatch::try_new(schema.clone(), cols).unwrap());
    gtmos::table_io::write_table(&path, schema, &[], &batches).unwrap();
    let mut m: Value =
        serde_json::from_str(&std::fs::read_to_string(dst.join("manifest.json")).unwrap()).unwrap();
    m["tables"]["usage_metering_log"]["sha256"] =
        json!(gtmos::table_io::sha256_file(&path).unwrap());
    m["tables"]["usage_metering_log"]["rows"] = json!(t.rows + 1);
    std::fs::write(
        dst.join("manifest.json"),
        serde_json::to_string_pretty(&m).unwrap(),
    )
    .unwrap();
    t.s("account_id")[i].clone()
}

#[test]
fn closed_months_never_change_and_corrections_land_in_the_first_open_month() {
    let dir = tempdir();
    let snap = dir.path().join("snap");
    let mut p = gtmos::synth::params::SynthParams {
        accounts: 20,
        ..Default::default()
    };
    p.fault_rates.values_mut().for_each(|r| *r = 0.0);
    p.mix.insert("expansion_ready".into(), 10.0);
    gtmos::synth::generate(&p, &snap, 2, false).unwrap();
    let wh = dir.path().join("wh");
    let (code, out, err) = build(&snap, &wh, &["--close-through", "2025-08"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("close      frozen"), "{out}");
    let frozen = wh.join("closed_periods/revenue_recognition_log/month=2025-07.parquet");
    let before = std::fs::read(&frozen).unwrap();
    let log_rows = |wh: &Path, month: &str| -> Vec<String> {
        let t = Table::read_file(&wh.join("published/revenue_recognition_log.parquet"));
        let m = gtmos::calendar::Day::parse(month).unwrap().0;
        (0..t.rows)
            .filter(|&i| t.date("month")[i] == Some(m))
            .map(|i| {
                format!(
                    "{} {:?} {:?}",
                    t.s("order_line_id")[i],
                    t.dec("recognized_usd")[i],
                    t.s("build_id")[i]
                )
            })
            .collect()
    };
    let july_before = log_rows(&wh, "2025-07-01");
    // A usage correction for a day in closed July: +500 units.
    let snap2 = dir.path().join("snap2");
    let account = corrected_copy(&snap, &snap2, "2025-07-15T00:00:00Z", 500.0);
    let (code, out, err) = build(&snap2, &wh, &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        std::fs::read(&frozen).unwrap(),
        before,
        "the closed month's bytes are unchanged"
    );
    assert_eq!(
        log_rows(&wh, "2025-07-01"),
        july_before,
        "closed rows are read back verbatim"
    );
    let t = Table::read_file(&wh.join("published/revenue_recognition_log.parquet"));
    let ppa: Vec<usize> = (0..t.rows)
        .filter(|&i| t.bool("prior_period_adjustment")[i] == Some(true))
        .collect();
    assert_eq!(ppa.len(), 1, "one adjustment row");
    let i = ppa[0];
    assert_eq!(t.s("account_id")[i], account);
    assert_eq!(
        gtmos::calendar::Day(t.date("month")[i].unwrap()).iso(),
        "2025-09-01",
        "booked in the first open month"
    );
    assert_eq!(
        gtmos::calendar::Day(t.date("adjusted_month")[i].unwrap()).iso(),
        "2025-07-01"
    );
    // July was already above its commit (8,361 units vs 5,666): 500 more units are all
    // overage at $0.48 = $240.00.
    assert_eq!(t.dec("recognized_usd")[i], Some(24_000));
    // Closing September freezes the adjustment; the next build does not book it again.
    let (code, _, err) = build(&snap2, &wh, &["--close-through", "2025-09"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = build(&snap2, &wh, &[]);
    assert_eq!(code, 0, "{err}");
    let t = Table::read_file(&wh.join("published/revenue_recognition_log.parquet"));
    assert_eq!(
        (0..t.rows)
            .filter(|&i| t.bool("prior_period_adjustment")[i] == Some(true))
            .count(),
        1
    );
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(wh.join("closed_periods/close_state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["closed_through"], "2025-09-01");
    assert_eq!(state["history"].as_array().unwrap().len(), 2);
    // A month that has not ended cannot be closed.
    let (code, _, err) = build(&snap2, &wh, &["--close-through", "2026-01"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot close 2026-01"), "{err}");
}

#[test]
fn a_closed_month_that_was_deleted_altered_or_added_stops_the_build_until_reopened() {
    let dir = tempdir();
    let snap = dir.path().join("snap");
    let p = gtmos::synth::params::SynthParams {
        accounts: 20,
        ..Default::default()
    };
    gtmos::synth::generate(&p, &snap, 2, false).unwrap();
    let wh = dir.path().join("wh");
    let (code, out, err) = build(&snap, &wh, &["--close-through", "2025-03"]);
    assert_eq!(code, 0, "{out}{err}");
    let closed = wh.join("closed_periods/revenue_recognition_log");
    let feb = closed.join("month=2025-02.parquet");
    let good = std::fs::read(&feb).unwrap();
    let published = wh.join("published/revenue_recognition_log.parquet");
    let log_before = std::fs::read(&published).unwrap();
    let refused = |why: &str| {
        let (code, out, err) = build(&snap, &wh, &[]);
        assert_eq!(code, 2, "{out}{err}");
        assert!(err.contains(why), "{err}");
        assert!(
            err.contains("month=2025-02.parquet") || why.contains("no close"),
            "{err}"
        );
        assert_eq!(
            std::fs::read(&published).unwrap(),
            log_before,
            "nothing was republished"
        );
    };
    // Deleted: February's revenue must not silently disappear.
    std::fs::remove_file(&feb).unwrap();
    refused("closed month 2025-02 of `revenue_recognition_log` is missing");
    // Altered (one byte): both hashes are named.
    let mut bad = good.clone();
    let k = bad.len() / 2;
    bad[k] ^= 1;
    std::fs::write(&feb, &bad).unwrap();
    let want = gtmos::table_io::sha256_hex(&good);
    let got = gtmos::table_io::sha256_hex(&bad);
    refused(&format!(
        "closed month 2025-02 of `revenue_recognition_log` was altered: sha256 {got}, frozen as {want}"
    ));
    std::fs::write(&feb, &good).unwrap();
    // A file no close wrote.
    std::fs::copy(&feb, closed.join("month=2025-05.parquet")).unwrap();
    refused("no close wrote it");
    std::fs::remove_file(closed.join("month=2025-05.parquet")).unwrap();
    let (code, out, err) = build(&snap, &wh, &[]);
    assert_eq!(code, 0, "restored: {out}{err}");

    // Reopening is explicit and recorded; the files are kept aside, and the month closes again.
    let reopen = |args: &[&str]| {
        let mut a = vec!["reopen", "--warehouse", wh.to_str().unwrap()];
        a.extend_from_slice(args);
        gtmos(&a, dir.path())
    };
    let (code, _, err) = reopen(&["--from", "2025-05", "--by", "Controller", "--reason", "x"]);
    assert_eq!(code, 2, "a month not closed cannot be reopened");
    assert!(err.contains("2025-05 is not closed"), "{err}");
    let (code, out, err) = reopen(&[
        "--from",
        "2025-02",
        "--by",
        "Controller",
        "--reason",
        "auditor adjustment to February",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("reopened 2025-02..2025-03"), "{out}");
    assert!(!feb.exists());
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(wh.join("closed_periods/close_state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["closed_through"], "2025-01-01");
    let r = &state["reopened"][0];
    assert_eq!(r["by"], "Controller");
    assert_eq!(r["reason"], "auditor adjustment to February");
    assert_eq!(
        r["files"]["revenue_recognition_log/month=2025-02.parquet"],
        Value::String(want.clone())
    );
    let kept = PathBuf::from(r["moved_to"].as_str().unwrap())
        .join("revenue_recognition_log/month=2025-02.parquet");
    assert_eq!(
        std::fs::read(&kept).unwrap(),
        good,
        "the frozen bytes are kept"
    );
    let (code, out, err) = build(&snap, &wh, &["--close-through", "2025-03"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(feb.exists(), "February is frozen again");
}

#[test]
fn corpus_invariants_hold_under_both_conventions() {
    let (wh, _, _) = crate::build::built_for_report();
    check_invariants(wh);
    // monthly_prorated on the same corpus: the same line totals.
    let dir = tempdir();
    let project = project_with_method(dir.path(), "monthly_prorated");
    let wh2 = dir.path().join("wh");
    let (code, out, err) = gtmos(
        &[
            "recognize",
            "--project",
            project.to_str().unwrap(),
            "--snapshot",
            corpus().to_str().unwrap(),
            "--warehouse",
            wh2.to_str().unwrap(),
            "--no-report",
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{out}{err}");
    check_invariants(&wh2);
    let runs = Table::read_file(
        &std::fs::read_dir(wh2.join("logs/run_log"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    );
    let steps = runs.s("steps")[0].clone();
    assert!(
        !steps.contains("spend_by_month") && !steps.contains("source.agent_decisions"),
        "recognize runs only what recognition needs"
    );
}

fn check_invariants(wh: &Path) {
    let d = Table::read_file(&wh.join("published/deferred_revenue_schedule.parquet"));
    let (o, b, r, c) = (
        d.dec("opening_usd"),
        d.dec("billed_usd"),
        d.dec("recognized_usd"),
        d.dec("closing_usd"),
    );
    for i in 0..d.rows {
        assert_eq!(
            o[i].unwrap() + b[i].unwrap() - r[i].unwrap(),
            c[i].unwrap(),
            "row {i}"
        );
    }
    // Every seat line whose term has ended recognises exactly its amount.
    let snap = corpus();
    let lines = Table::read(snap, "order_lines");
    let orders = Table::read(snap, "orders");
    let term: BTreeMap<String, (i32, String)> = orders
        .s("order_id")
        .into_iter()
        .zip(orders.date("term_end").into_iter().zip(orders.s("status")))
        .map(|(id, (e, s))| (id, (e.unwrap(), s)))
        .collect();
    let as_of = day(2026, 1, 1);
    let mut expected: BTreeMap<String, i128> = BTreeMap::new();
    for i in 0..lines.rows {
        let (end, status) = &term[&lines.s("order_id")[i]];
        if lines.s("sku_type")[i] == "seat" && *end <= as_of && status == "active" {
            expected.insert(
                lines.s("order_line_id")[i].clone(),
                lines.dec("line_amount_usd")[i].unwrap(),
            );
        }
    }
    let log = Table::read_file(&wh.join("published/revenue_recognition_log.parquet"));
    let mut got: BTreeMap<String, i128> = BTreeMap::new();
    for i in 0..log.rows {
        let m = log.s("method")[i].clone();
        if (m == "daily" || m == "monthly_prorated")
            && expected.contains_key(&log.s("order_line_id")[i])
        {
            *got.entry(log.s("order_line_id")[i].clone()).or_default() +=
                log.dec("recognized_usd")[i].unwrap();
        }
    }
    assert!(
        expected.len() > 50,
        "{} completed seat lines",
        expected.len()
    );
    assert_eq!(got, expected);
}

#[test]
fn reconciliation_reports_exactly_the_injected_discrepancies() {
    let (wh, _, _) = crate::build::built_for_report();
    let t = Table::read_file(&wh.join("published/reconciliation_results.parquet"));
    let mut failed: Vec<String> = Vec::new();
    for i in 0..t.rows {
        if t.s("status")[i] == "fail" && t.s("check_name")[i] != "usage_quarterly" {
            let key = match t.s("check_name")[i].as_str() {
                "usage_monthly" => format!(
                    "{}|{}|{}",
                    t.s("account_id")[i],
                    t.s("sku_id")[i],
                    gtmos::calendar::Day(t.date("period")[i].unwrap()).iso()
                ),
                "invoice_amount" => t.s("invoice_id")[i].clone(),
                _ => gtmos::calendar::Day(t.date("period")[i].unwrap()).iso(),
            };
            failed.push(key);
        }
    }
    failed.sort();
    let o = Table::read(corpus(), "oracle/faults");
    let mut expected: Vec<String> = o
        .s("fault_class")
        .into_iter()
        .zip(o.s("key"))
        .filter(|(c, _)| c.starts_with("reference_"))
        .map(|(_, k)| k)
        .collect();
    expected.sort();
    assert_eq!(failed, expected);
}

#[test]
fn tolerances_pass_at_the_boundary_and_fail_just_beyond() {
    // usage: 10,000 metered vs 10,001 in the product database is exactly 0.01 %.
    let usage = |id: &str, units: f64| {
        json!({"usage_id": id, "account_id": "A1", "sku_id": "API-CALLS", "sku_type": "consumption",
            "period_start": "2024-01-10T00:00:00Z", "period_end": "2024-01-11T00:00:00Z", "period_granularity": "day",
            "units_consumed": units, "commit_units": 0.0, "overage_units": 0.0, "unit_price_usd": 0.0,
            "source_system": "m", "ingest_event_id": format!("e-{id}"), "ingest_batch_id": "b",
            "received_at": "2024-01-11T01:00:00Z", "effective_at": "2024-01-10T00:00:00Z", "record_version": 1, "audit_status": "verified"})
    };
    let invoice = |id: &str, amount: f64| {
        json!({"invoice_id": id, "account_id": "A1", "order_id": "OC", "invoice_date": "2024-01-01", "due_date": "2024-01-31",
               "billing_type": "recurring", "period_start": "2024-01-01", "period_end": "2024-02-01", "amount_usd": amount, "status": "paid"})
    };
    let invoice_line = |id: &str, invoice: &str| {
        json!({"invoice_line_id": id, "invoice_id": invoice, "order_line_id": "LC", "amount_usd": 100.0,
               "service_period_start": "2024-01-01", "service_period_end": "2024-02-01"})
    };
    let cons = json!({"order_line_id": "LC", "order_id": "OC", "account_id": "A1", "sku_id": "API-CALLS", "sku_type": "consumption",
        "quantity": 0, "unit_price_usd": 0.0, "overage_unit_price_usd": 0.0, "line_amount_usd": 0.0});
    let b = build_books(
        "2024-02-01T00:00:00Z",
        vec![
            (
                "orders",
                rows("orders", &[order("OC", "2024-01-01", "2024-02-01")]),
            ),
            ("order_lines", rows("order_lines", &[cons])),
            (
                "usage_metering_log",
                rows("usage_metering_log", &[usage("u1", 10_000.0)]),
            ),
            (
                "invoices",
                rows("invoices", &[invoice("I1", 100.0), invoice("I2", 100.0)]),
            ),
            (
                "invoice_lines",
                rows(
                    "invoice_lines",
                    &[invoice_line("IL1", "I1"), invoice_line("IL2", "I2")],
                ),
            ),
            (
                "reference_usage",
                rows(
                    "reference_usage",
                    &[
                        json!({"account_id": "A1", "sku_id": "API-CALLS", "month": "2024-01-01", "units": 10_001.0}),
                    ],
                ),
            ),
            (
                "reference_billing",
                rows(
                    "reference_billing",
                    &[
                        json!({"invoice_id": "I1", "amount_usd": 100.01}),
                        json!({"invoice_id": "I2", "amount_usd": 100.02}),
                    ],
                ),
            ),
            (
                "reference_gl",
                rows(
                    "reference_gl",
                    &[json!({"month": "2024-01-01", "deferred_revenue_usd": 201.0})],
                ),
            ),
        ],
        &[],
    );
    let t = Table::read_file(
        &b.warehouse()
            .join("published/reconciliation_results.parquet"),
    );
    let status: BTreeMap<String, String> = (0..t.rows)
        .map(|i| {
            (
                format!(
                    "{}:{}",
                    t.s("check_name")[i],
                    t.str("invoice_id")[i].clone().unwrap_or_default()
                ),
                t.s("status")[i].clone(),
            )
        })
        .collect();
    assert_eq!(status["usage_monthly:"], "pass", "exactly 0.01 % passes");
    assert_eq!(
        status["usage_quarterly:"], "fail",
        "the quarter allows only 0.001 %"
    );
    assert_eq!(status["invoice_amount:I1"], "pass", "exactly $0.01 passes");
    assert_eq!(status["invoice_amount:I2"], "fail", "$0.02 fails");
    // Deferred revenue: billed 200 − 0 recognised (no commit, no price) = 200 vs GL 201: exactly $1 passes.
    assert_eq!(status["deferred_revenue:"], "pass");
}

#[test]
fn reconcile_holds_the_close_and_names_every_discrepancy() {
    let dir = tempdir();
    let wh = dir.path().join("wh");
    let project = project_dir();
    let snap = corpus();
    let (code, out, err) = gtmos(
        &[
            "reconcile",
            "--project",
            project.to_str().unwrap(),
            "--snapshot",
            snap.to_str().unwrap(),
            "--warehouse",
            wh.to_str().unwrap(),
            "--no-report",
            "--reference",
            snap.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("close HELD"), "{out}");
    let o = Table::read(snap, "oracle/faults");
    for (class, key) in o.s("fault_class").into_iter().zip(o.s("key")) {
        if class == "reference_usage_discrepancy" {
            let parts: Vec<&str> = key.split('|').collect();
            assert!(
                out.contains(&format!(
                    "usage_monthly {} × {} × {}",
                    parts[0], parts[1], parts[2]
                )),
                "{key} not named:\n{out}"
            );
        }
        if class == "reference_billing_discrepancy" {
            assert!(out.contains(&key), "{key} not named");
        }
    }
    let (code, _, err) = gtmos(
        &[
            "reconcile",
            "--project",
            project.to_str().unwrap(),
            "--snapshot",
            snap.to_str().unwrap(),
            "--warehouse",
            wh.to_str().unwrap(),
            "--reference",
            "/nonexistent",
        ],
        dir.path(),
    );
    assert_eq!(code, 2, "{err}");
}
