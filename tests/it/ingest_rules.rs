//! The usage_metering_log ingest rules of SPEC §6 on a hand-made table: exactly the violating
//! rows leave the flow (with their rule), SOFT rules are recorded, everything else publishes;
//! replays are no-ops, corrections replace versions, disputed rows never reach recognition.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::common::*;

const AS_OF: &str = "2024-03-01T00:00:00Z";

fn accounts() -> arrow::array::RecordBatch {
    let a = |id: &str| {
        json!({"account_id": id, "account_name": id, "domain": format!("{id}.com"), "segment": "SMB", "vertical": "SaaS",
               "geo": "NA", "employee_count": 10, "annual_revenue_usd": 1000.0, "acquisition_channel": "inbound",
               "owner_rep_id": "REP-1", "updated_at": "2024-02-29T12:00:00Z"})
    };
    rows("accounts", &[a("A1"), a("A2")])
}

fn reps() -> arrow::array::RecordBatch {
    rows(
        "reps",
        &[
            json!({"rep_id": "REP-1", "full_name": "R", "role": "AE", "segment": "SMB", "geo": "NA", "hire_date": "2020-01-01"}),
        ],
    )
}

/// Accounts, reps and A1's order: a consumption line (API-CALLS) and a seat line over 2024,
/// so usage rows of A1 belong to an order line (SPEC §7).
fn books() -> Vec<(&'static str, arrow::array::RecordBatch)> {
    let line = |id: &str, sku: &str, kind: &str| {
        json!({"order_line_id": id, "order_id": "O1", "account_id": "A1", "sku_id": sku, "sku_type": kind,
               "quantity": 3000, "unit_price_usd": 0.3, "overage_unit_price_usd": 0.4, "line_amount_usd": 900.0})
    };
    vec![
        ("accounts", accounts()),
        ("reps", reps()),
        (
            "orders",
            rows(
                "orders",
                &[
                    json!({"order_id": "O1", "account_id": "A1", "order_date": "2024-01-01", "term_start": "2024-01-01",
                         "term_end": "2025-01-01", "status": "active", "billing_frequency": "annual"}),
                ],
            ),
        ),
        (
            "order_lines",
            rows(
                "order_lines",
                &[
                    line("L1", "API-CALLS", "consumption"),
                    line("L2", "SEAT-PLATFORM", "seat"),
                ],
            ),
        ),
    ]
}

/// A clean consumption row for account A1 on `day` (2024-02-DD), with overrides.
fn usage(id: &str, day: u32, over: Value) -> Value {
    let start = format!("2024-02-{day:02}T00:00:00Z");
    let end = format!("2024-02-{:02}T00:00:00Z", day + 1);
    let mut r = json!({
        "usage_id": id, "account_id": "A1", "sku_id": "API-CALLS", "sku_type": "consumption",
        "period_start": start, "period_end": end, "period_granularity": "day",
        "units_consumed": 100.0, "commit_units": 3000.0, "overage_units": 0.0,
        "unit_price_usd": 0.3, "overage_unit_price_usd": 0.4, "source_system": "metering-api",
        "ingest_event_id": format!("ev-{id}"), "ingest_batch_id": "b1",
        "received_at": format!("2024-02-{:02}T02:00:00Z", day + 1), "effective_at": start,
        "record_version": 1, "audit_status": "verified",
    });
    for (k, v) in over.as_object().unwrap() {
        r[k] = v.clone();
    }
    r
}

struct Outcome {
    quarantined: BTreeMap<String, String>,
    warnings: BTreeMap<String, i64>,
    published: BTreeSet<String>,
}

fn run(usage_rows: Vec<Value>) -> Outcome {
    let dir = tempdir();
    let snap = dir.path().join("snap");
    let mut tables = books();
    tables.push((
        "usage_metering_log",
        rows("usage_metering_log", &usage_rows),
    ));
    mini_snapshot(&snap, AS_OF, tables);
    let wh = dir.path().join("wh");
    let (code, out, err) = build(&snap, &wh, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    let mut quarantined = BTreeMap::new();
    let qdir = wh.join("quarantine/usage_metering_log");
    if qdir.exists() {
        for f in std::fs::read_dir(&qdir).unwrap() {
            let t = Table::read_file(&f.unwrap().path());
            for (id, rule) in t.s("usage_id").into_iter().zip(t.s("rule")) {
                quarantined.insert(id, rule);
            }
        }
    }
    let mut warnings = BTreeMap::new();
    for f in std::fs::read_dir(wh.join("logs/contract_results")).unwrap() {
        let t = Table::read_file(&f.unwrap().path());
        for (((node, rule), status), n) in t
            .s("node")
            .into_iter()
            .zip(t.s("rule"))
            .zip(t.s("status"))
            .zip(t.i64("failures"))
        {
            if node == "usage_metering_log"
                && status == "warn"
                && ["late_arrival", "effective_at_drift", "usage_anomaly"].contains(&rule.as_str())
            {
                warnings.insert(rule, n.unwrap());
            }
        }
    }
    let published: BTreeSet<String> =
        Table::read_file(&wh.join("published/usage_billable.parquet"))
            .s("usage_id")
            .into_iter()
            .collect();
    Outcome {
        quarantined,
        warnings,
        published,
    }
}

#[test]
fn hard_rules_quarantine_exactly_the_violating_rows() {
    let mut data: Vec<Value> = (1..=20)
        .map(|d| usage(&format!("ok{d}"), d, json!({})))
        .collect();
    let bad = [
        ("neg", json!({"units_consumed": -5.0}), "negative_units"),
        (
            "inv",
            json!({"period_end": "2024-02-21T00:00:00Z", "period_start": "2024-02-21T00:00:00Z"}),
            "inverted_period",
        ),
        (
            "fut",
            json!({"period_start": "2024-03-05T00:00:00Z", "period_end": "2024-03-06T00:00:00Z"}),
            "future_dated_period",
        ),
        (
            "noev",
            json!({"ingest_event_id": null}),
            "missing_ingest_event_id",
        ),
        ("orph", json!({"account_id": "A9"}), "orphan_account_id"),
        (
            "pct",
            json!({"sku_id": "SEAT-PLATFORM", "sku_type": "seat", "seat_utilization_pct": 120.0}),
            "seat_utilization_out_of_range",
        ),
        (
            "enum",
            json!({"audit_status": "VERIFIED"}),
            "enum_integrity",
        ),
        // A valid account without an order line for the SKU: no line to recognise it on.
        ("nomatch", json!({"account_id": "A2"}), "unmatched_usage"),
    ];
    for (i, (id, over, _)) in bad.iter().enumerate() {
        data.push(usage(id, 21 + (i as u32 % 7), over.clone()));
    }
    // A non-monotonic version: version 3 follows version 1 of day 5.
    data.push(usage("gap", 5, json!({"record_version": 3, "ingest_event_id": "ev-gap", "received_at": "2024-02-09T00:00:00Z"})));
    let o = run(data);
    let mut expected: BTreeMap<String, String> = bad
        .iter()
        .map(|(id, _, rule)| (id.to_string(), rule.to_string()))
        .collect();
    expected.insert("gap".into(), "non_monotonic_version".into());
    assert_eq!(o.quarantined, expected);
    let clean: BTreeSet<String> = (1..=20).map(|d| format!("ok{d}")).collect();
    assert_eq!(o.published, clean, "every other row is published");
}

#[test]
fn soft_rules_are_recorded_and_the_rows_kept() {
    let mut data: Vec<Value> = (1..=25)
        .map(|d| usage(&format!("ok{d}"), d, json!({})))
        .collect();
    data.push(usage(
        "late",
        26,
        json!({"received_at": "2024-02-29T12:00:00Z"}),
    ));
    data.push(usage(
        "drift",
        27,
        json!({"effective_at": "2024-02-20T00:00:00Z"}),
    ));
    data.push(usage("spike", 28, json!({"units_consumed": 1500.0})));
    let o = run(data);
    assert!(o.quarantined.is_empty(), "{:?}", o.quarantined);
    assert_eq!(
        o.warnings,
        BTreeMap::from([
            ("late_arrival".into(), 1),
            ("effective_at_drift".into(), 1),
            ("usage_anomaly".into(), 1)
        ])
    );
    for id in ["late", "drift", "spike"] {
        assert!(o.published.contains(id), "{id} must be accepted");
    }
    // 10× the median is allowed; more is not (the boundary).
    let mut data: Vec<Value> = (1..=25)
        .map(|d| usage(&format!("ok{d}"), d, json!({})))
        .collect();
    data.push(usage("ten", 26, json!({"units_consumed": 1000.0})));
    assert!(run(data).warnings.is_empty());
}

#[test]
fn replays_are_no_ops_corrections_replace_and_disputes_are_excluded() {
    let base: Vec<Value> = (1..=10)
        .map(|d| usage(&format!("u{d}"), d, json!({})))
        .collect();
    let once = run(base.clone());
    // The same batch replayed: same (source_system, ingest_event_id), received later.
    let mut twice = base.clone();
    for d in 1..=10 {
        twice.push(usage(
            &format!("u{d}r"),
            d,
            json!({"ingest_event_id": format!("ev-u{d}"), "received_at": "2024-02-20T00:00:00Z"}),
        ));
    }
    let replayed = run(twice);
    assert_eq!(
        replayed.published, once.published,
        "a replay changes nothing downstream"
    );
    assert_eq!(
        replayed
            .quarantined
            .values()
            .filter(|r| *r == "duplicate_event")
            .count(),
        10
    );

    // A correction: version 2 of day 3 replaces version 1; a disputed day never reaches recognition.
    let mut data = base;
    data.push(usage("u3v2", 3, json!({"record_version": 2, "prior_version_id": "u3", "ingest_event_id": "ev-u3v2", "units_consumed": 90.0, "received_at": "2024-02-10T00:00:00Z"})));
    data[6]["audit_status"] = json!("disputed");
    let o = run(data);
    assert!(o.quarantined.is_empty(), "{:?}", o.quarantined);
    assert!(
        o.published.contains("u3v2") && !o.published.contains("u3"),
        "version 2 replaces version 1"
    );
    assert!(
        !o.published.contains("u7"),
        "disputed rows are excluded from the recognition input"
    );
    assert_eq!(o.published.len(), 9);
}

#[test]
fn values_that_do_not_fit_their_type_are_dead_lettered() {
    use std::sync::Arc;
    let dir = tempdir();
    let snap = dir.path().join("snap");
    mini_snapshot(&snap, AS_OF, books());
    // record_version written as bigint, one value beyond the integer range.
    let b = rows(
        "usage_metering_log",
        &[usage("a", 1, json!({})), usage("b", 2, json!({}))],
    );
    let mut cols = b.columns().to_vec();
    let i = b.schema().index_of("record_version").unwrap();
    cols[i] = Arc::new(arrow::array::Int64Array::from(vec![1, 1i64 << 40]));
    let mut fields: Vec<arrow::datatypes::Field> = b
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields[i] =
        arrow::datatypes::Field::new("record_version", arrow::datatypes::DataType::Int64, true);
    let schema = Arc::new(arrow::datatypes::Schema::new(fields));
    let batch = arrow::array::RecordBatch::try_new(schema.clone(), cols).unwrap();
    let path = snap.join("usage_metering_log.parquet");
    gtmos::table_io::write_table(&path, schema, &[], &[batch]).unwrap();
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(snap.join("manifest.json")).unwrap())
            .unwrap();
    m["tables"]["usage_metering_log"]["sha256"] =
        json!(gtmos::table_io::sha256_file(&path).unwrap());
    m["tables"]["usage_metering_log"]["rows"] = json!(2);
    std::fs::write(snap.join("manifest.json"), m.to_string()).unwrap();
    let wh = dir.path().join("wh");
    let (code, out, err) = build(&snap, &wh, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let dl: Vec<_> = std::fs::read_dir(wh.join("dead_letter/usage_metering_log"))
        .unwrap()
        .collect();
    assert_eq!(dl.len(), 1);
    let t = Table::read_file(&dl.into_iter().next().unwrap().unwrap().path());
    assert_eq!(t.rows, 1);
    assert_eq!(t.s("column_name"), vec!["record_version"]);
    assert_eq!(t.s("raw_value"), vec![(1i64 << 40).to_string()]);
    assert!(t.s("record")[0].contains("\"usage_id\":\"b\""));
    let published: Vec<String> =
        Table::read_file(&wh.join("published/usage_billable.parquet")).s("usage_id");
    assert_eq!(published, vec!["a"]);
}

/// The cost feed's contract (`backend_costs`): a negative unit count, a negative cost, an
/// unknown deployment tier, a replayed account × SKU × month × tier and an unknown account
/// each leave the flow with their rule; the clean row reaches TOOL-015's inputs. (A
/// non-finite number is dead-lettered in every source, `build.rs`.)
#[test]
fn backend_cost_rules_quarantine_exactly_the_violating_rows() {
    let cost =
        |id: &str, account: &str, month: &str, tier: &str, units: Value, usd: f64, at: &str| {
            json!({"cost_id": id, "account_id": account, "sku_id": "API-CALLS", "month": month,
               "deployment_tier": tier, "units": units, "backend_cost_usd": usd,
               "received_at": format!("{at}T23:00:00Z")})
        };
    let costs = [
        cost(
            "C1",
            "A1",
            "2024-01-01",
            "shared",
            json!(100.0),
            10.0,
            "2024-01-31",
        ),
        cost(
            "C2",
            "A1",
            "2024-01-01",
            "dedicated",
            json!(-5.0),
            1.0,
            "2024-01-31",
        ),
        cost(
            "C3",
            "A1",
            "2024-02-01",
            "shared",
            json!(100.0),
            -1.0,
            "2024-02-28",
        ),
        // C1 again, delivered a day later: the first received copy wins.
        cost(
            "C4",
            "A1",
            "2024-01-01",
            "shared",
            json!(100.0),
            10.0,
            "2024-02-01",
        ),
        cost(
            "C5",
            "A1",
            "2024-02-01",
            "edge",
            json!(100.0),
            1.0,
            "2024-02-28",
        ),
        cost(
            "C6",
            "ZZ",
            "2024-01-01",
            "shared",
            json!(100.0),
            10.0,
            "2024-01-31",
        ),
    ];
    let dir = tempdir();
    let snap = dir.path().join("snap");
    let mut tables = books();
    tables.push(("backend_costs", rows("backend_costs", &costs)));
    // As of 2024-04-01, so A1's first quarter is complete and reaches the decomposition.
    mini_snapshot(&snap, "2024-04-01T00:00:00Z", tables);
    let wh = dir.path().join("wh");
    let (code, out, err) = build(&snap, &wh, &[]);
    assert_eq!(code, 0, "{out}\n{err}");
    let mut quarantined = BTreeMap::new();
    for f in std::fs::read_dir(wh.join("quarantine/backend_costs")).unwrap() {
        let t = Table::read_file(&f.unwrap().path());
        for (id, rule) in t.s("cost_id").into_iter().zip(t.s("rule")) {
            quarantined.insert(id, rule);
        }
    }
    let expected: BTreeMap<String, String> = [
        ("C2", "negative_backend_units"),
        ("C3", "negative_backend_cost"),
        ("C4", "duplicate_backend_cost"),
        ("C5", "enum_integrity"),
        ("C6", "orphan_account_id"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(quarantined, expected);
    // What is left reaches the decomposition's inputs: A1's 2024-Q1 has January on shared (100
    // units, $10), and February and March without cost (their rows left the flow).
    let inputs = Table::read(&wh.join("published"), "gp_inputs");
    assert_eq!(inputs.str("tier"), vec![Some("shared".to_string())]);
    assert_eq!(inputs.f64("units"), vec![Some(100.0)]);
    assert_eq!(inputs.dec("cost_usd"), vec![Some(1_000)]);
    assert_eq!(inputs.i64("months_without_cost"), vec![Some(2)]);
}
