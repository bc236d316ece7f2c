//! The reconciliation results (SPEC §7) as the reconcile command prints them and the report
//! shows them: a summary per check and every row outside its tolerance. The figures
//! themselves come from `pipelines/models/reconciliation/reconciliation_results.sql`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::Result;

/// One kind of check: how many keys were compared, how many failed, under which tolerance.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub check: String,
    pub grain: String,
    pub compared: u64,
    pub failed: u64,
    pub tolerance: f64,
    pub tolerance_kind: String,
    /// `±0.01 %` or `±$1`.
    pub tolerance_text: String,
}

/// One compared key, as `reconciliation_results` holds it.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub check: String,
    pub grain: String,
    pub account_id: Option<String>,
    pub sku_id: Option<String>,
    pub period: Option<String>,
    pub invoice_id: Option<String>,
    pub gtmos: Option<f64>,
    pub reference: Option<f64>,
    pub difference: Option<f64>,
    pub relative_difference: Option<f64>,
    pub tolerance_text: String,
    pub status: String,
}

impl Row {
    /// `ACC-1 × API-CALLS × 2025-03-01`: the key that identifies the row.
    pub fn key(&self) -> String {
        [
            &self.account_id,
            &self.sku_id,
            &self.period,
            &self.invoice_id,
        ]
        .iter()
        .filter_map(|v| v.as_deref())
        .collect::<Vec<_>>()
        .join(" × ")
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Results {
    pub checks: Vec<Check>,
    /// Every failing row, and the passing rows kept (see [`Results::read`]), in table order.
    pub rows: Vec<Row>,
}

/// Per check while reading: its counts, and how many passing rows were kept.
#[derive(Default)]
struct Tally {
    checks: BTreeMap<String, Check>,
    passing_kept: BTreeMap<String, usize>,
}

impl Results {
    /// The published `reconciliation_results` at `path`, read in batches: every check's
    /// counts, every failing row and the first `passing` passing rows of each check (the
    /// table can hold millions of rows).
    pub fn read(path: &Path, passing: usize) -> Result<Results> {
        let mut results = Results::default();
        let mut tally = Tally::default();
        crate::table_io::for_each_json_row(path, |r| {
            results.add(|k| r.get(k), passing, &mut tally);
            Ok(())
        })?;
        results.checks = tally.checks.into_values().collect();
        Ok(results)
    }

    /// [`Results::read`] of rows already read.
    pub fn from_rows(rows: &[Map<String, Value>], passing: usize) -> Results {
        let mut results = Results::default();
        let mut tally = Tally::default();
        for r in rows {
            results.add(
                |k| r.get(k).cloned().unwrap_or(Value::Null),
                passing,
                &mut tally,
            );
        }
        results.checks = tally.checks.into_values().collect();
        results
    }

    fn add(&mut self, get: impl Fn(&str) -> Value, passing: usize, tally: &mut Tally) {
        let s = |k: &str| get(k).as_str().map(str::to_string);
        let f = |k: &str| get(k).as_f64();
        let check = s("check_name").unwrap_or_default();
        let kind = s("tolerance_kind").unwrap_or_default();
        let tolerance = f("tolerance").unwrap_or(0.0);
        let status = s("status").unwrap_or_default();
        let grain = s("grain").unwrap_or_default();
        let c = tally.checks.entry(check.clone()).or_insert_with(|| Check {
            check: check.clone(),
            grain: grain.clone(),
            compared: 0,
            failed: 0,
            tolerance,
            tolerance_kind: kind.clone(),
            tolerance_text: tolerance_text(tolerance, &kind),
        });
        c.compared += 1;
        let failed = status == "fail";
        c.failed += u64::from(failed);
        if !failed {
            let kept = tally.passing_kept.entry(check.clone()).or_default();
            if *kept >= passing {
                return;
            }
            *kept += 1;
        }
        self.rows.push(Row {
            check,
            grain,
            account_id: s("account_id"),
            sku_id: s("sku_id"),
            period: s("period"),
            invoice_id: s("invoice_id"),
            gtmos: f("gtmos_value"),
            reference: f("reference_value"),
            difference: f("difference"),
            relative_difference: f("relative_difference"),
            tolerance_text: tolerance_text(tolerance, &kind),
            status,
        });
    }

    pub fn failures(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.status == "fail")
    }

    /// Failures of month-grain checks hold the close (SPEC §7).
    pub fn holds_the_close(&self) -> bool {
        self.failures().any(|r| r.grain == "month")
    }
}

fn tolerance_text(tol: f64, kind: &str) -> String {
    if kind == "relative" {
        format!("±{} %", trim(tol * 100.0))
    } else {
        format!("±${}", trim(tol))
    }
}

/// `0.010000000000000002` → `0.01`: tolerances are short decimals.
fn trim(v: f64) -> String {
    let s = format!("{v:.6}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn summarises_per_check_and_keeps_every_failure() {
        let rows: Vec<Map<String, Value>> = [
            json!({"check_name": "usage_monthly", "grain": "month", "account_id": "A", "sku_id": "S", "period": "2025-01-01",
                   "gtmos_value": 100.0, "reference_value": 100.0, "tolerance": 0.0001, "tolerance_kind": "relative", "status": "pass"}),
            json!({"check_name": "usage_monthly", "grain": "month", "account_id": "B", "sku_id": "S", "period": "2025-01-01",
                   "gtmos_value": 100.0, "reference_value": 90.0, "tolerance": 0.0001, "tolerance_kind": "relative", "status": "fail"}),
            json!({"check_name": "invoice_amount", "grain": "invoice", "invoice_id": "I1", "gtmos_value": 1.0,
                   "reference_value": 2.0, "tolerance": 0.01, "tolerance_kind": "absolute_usd", "status": "fail"}),
        ]
        .into_iter()
        .map(|v| v.as_object().unwrap().clone())
        .collect();
        let r = Results::from_rows(&rows, usize::MAX);
        assert_eq!(r.checks.len(), 2);
        let usage = r
            .checks
            .iter()
            .find(|c| c.check == "usage_monthly")
            .unwrap();
        assert_eq!((usage.compared, usage.failed), (2, 1));
        assert_eq!(usage.tolerance_text, "±0.01 %");
        assert_eq!(r.checks[0].tolerance_text, "±$0.01");
        let keys: Vec<String> = r.failures().map(Row::key).collect();
        assert_eq!(keys, vec!["B × S × 2025-01-01", "I1"]);
        assert!(r.holds_the_close());
        assert_eq!(r.rows.len(), 3);
        // Keeping no passing rows: the same counts and failures, no passing row.
        let lean = Results::from_rows(&rows, 0);
        assert_eq!(
            lean.checks
                .iter()
                .map(|c| (c.compared, c.failed))
                .collect::<Vec<_>>(),
            r.checks
                .iter()
                .map(|c| (c.compared, c.failed))
                .collect::<Vec<_>>()
        );
        assert_eq!(lean.rows.len(), 2);
        assert!(lean.rows.iter().all(|x| x.status == "fail"));
    }

    /// Read from Parquet in batches, the results are the rows' own.
    #[test]
    fn reads_the_published_table_in_batches() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.parquet");
        let n = 20_000;
        let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("check_name", arrow::datatypes::DataType::Utf8, false),
            arrow::datatypes::Field::new("grain", arrow::datatypes::DataType::Utf8, false),
            arrow::datatypes::Field::new("account_id", arrow::datatypes::DataType::Utf8, false),
            arrow::datatypes::Field::new("status", arrow::datatypes::DataType::Utf8, false),
        ]));
        let b = arrow::array::RecordBatch::try_new(
            schema,
            vec![
                std::sync::Arc::new(arrow::array::StringArray::from(vec!["c"; n])),
                std::sync::Arc::new(arrow::array::StringArray::from(vec!["month"; n])),
                std::sync::Arc::new(arrow::array::StringArray::from_iter_values(
                    (0..n).map(|i| format!("A{i}")),
                )),
                std::sync::Arc::new(arrow::array::StringArray::from_iter_values(
                    (0..n).map(|i| if i % 7_000 == 6_999 { "fail" } else { "pass" }),
                )),
            ],
        )
        .unwrap();
        crate::table_io::write_table(&path, b.schema(), &[], &[b]).unwrap();
        let r = Results::read(&path, 3).unwrap();
        assert_eq!((r.checks[0].compared, r.checks[0].failed), (20_000, 2));
        let kept: Vec<(String, String)> =
            r.rows.iter().map(|x| (x.key(), x.status.clone())).collect();
        let expect: Vec<(String, String)> = ["A0", "A1", "A2", "A6999", "A13999"]
            .iter()
            .zip(["pass", "pass", "pass", "fail", "fail"])
            .map(|(k, s)| (k.to_string(), s.to_string()))
            .collect();
        assert_eq!(
            kept, expect,
            "three passing rows, then every failure, in table order"
        );
    }
}
