//! `gtmos reconcile`: build the reconciliation against reference figures, print every
//! discrepancy, and hold the close (exit 1) when a monthly check fails (SPEC §7).

use std::path::Path;

use serde_json::json;

use super::build::{options, print_summary};
use crate::cli::ReconcileArgs;
use crate::error::{Error, Outcome, Result};
use crate::printer::{Format, out, out_json};

/// The reference tables `--reference DIR` may provide.
pub const REFERENCE_TABLES: [&str; 3] = ["reference_usage", "reference_billing", "reference_gl"];

pub fn run(a: ReconcileArgs) -> Result<Outcome> {
    let mut opts = options(&a.build)?;
    opts.select.insert(0, "tag:reconciliation".into());
    if let Some(dir) = &a.reference {
        for t in REFERENCE_TABLES {
            if let Some(p) = reference_path(dir, t)? {
                opts.overrides.insert(t.to_string(), p);
            }
        }
        if opts.overrides.is_empty() {
            return Err(Error::usage_hint(
                format!(
                    "{} holds none of {}",
                    dir.display(),
                    REFERENCE_TABLES.join(", ")
                ),
                "give a directory with <table>.parquet files, or a snapshot that has them",
            ));
        }
    }
    let r = crate::build::build(&opts)?;
    if a.build.format == Format::Text {
        print_summary(&r, Format::Text)?;
    }
    let results = crate::table_io::read_parquet(
        &crate::warehouse::Warehouse::new(&opts.warehouse).published_file("reconciliation_results"),
    )
    .map(|(_, b)| b)
    .unwrap_or_default();
    let rows = Results::from(&results);
    let monthly_failures = rows.failures.iter().filter(|f| f.grain == "month").count();
    match a.build.format {
        Format::Json => out_json(&json!({
            "run_id": r.run_id,
            "checks": rows.checks,
            "failures": rows.failures.iter().map(|f| json!({
                "check": f.check, "grain": f.grain, "account_id": f.account_id, "sku_id": f.sku_id,
                "period": f.period, "invoice_id": f.invoice_id, "gtmos": f.gtmos, "reference": f.reference,
                "difference": f.difference, "tolerance": f.tolerance, "tolerance_kind": f.kind,
            })).collect::<Vec<_>>(),
            "close_held": monthly_failures > 0,
        }))?,
        Format::Text => {
            let mut s = String::from("\nreconciliation\n");
            for (check, (n, failed, tol, kind)) in &rows.checks {
                s.push_str(&format!(
                    "  {check:<18} {n:>8} compared, {failed:>5} outside ±{} {}\n",
                    tolerance_text(*tol, kind),
                    if *failed > 0 { "FAIL" } else { "ok" }
                ));
            }
            for f in &rows.failures {
                let key = [
                    f.account_id.as_deref(),
                    f.sku_id.as_deref(),
                    f.period.as_deref(),
                    f.invoice_id.as_deref(),
                ]
                .iter()
                .flatten()
                .copied()
                .collect::<Vec<_>>()
                .join(" × ");
                s.push_str(&format!(
                    "    {} {key}: gtmos {} vs reference {} (difference {})\n",
                    f.check,
                    f.gtmos
                        .map(|v| format!("{v}"))
                        .unwrap_or_else(|| "missing".into()),
                    f.reference
                        .map(|v| format!("{v}"))
                        .unwrap_or_else(|| "missing".into()),
                    f.difference
                        .map(|v| format!("{v:+}"))
                        .unwrap_or_else(|| "—".into()),
                ));
            }
            s.push_str(if monthly_failures > 0 {
                "  close HELD: a monthly check is out of tolerance\n"
            } else {
                "  every monthly check is within tolerance\n"
            });
            out(&s)?;
        }
    }
    Ok(if monthly_failures > 0 || !r.blocked.is_empty() {
        Outcome::GateFailed
    } else {
        Outcome::Success
    })
}

fn tolerance_text(tol: f64, kind: &str) -> String {
    if kind == "relative" {
        format!("{} %", tol * 100.0)
    } else {
        format!("${tol}")
    }
}

/// `<dir>/<table>.parquet`, `<dir>/<table>/`, or the table of a snapshot manifest in dir.
fn reference_path(dir: &Path, table: &str) -> Result<Option<std::path::PathBuf>> {
    for p in [dir.join(format!("{table}.parquet")), dir.join(table)] {
        if p.exists() {
            return Ok(Some(p));
        }
    }
    if let Ok(m) = crate::snapshot::Manifest::read(dir)
        && let Some(e) = m.tables.get(table)
    {
        return Ok(Some(dir.join(&e.path)));
    }
    Ok(None)
}

struct Failure {
    check: String,
    grain: String,
    account_id: Option<String>,
    sku_id: Option<String>,
    period: Option<String>,
    invoice_id: Option<String>,
    gtmos: Option<f64>,
    reference: Option<f64>,
    difference: Option<f64>,
    tolerance: f64,
    kind: String,
}

struct Results {
    /// check → (compared, failed, tolerance, tolerance kind)
    checks: std::collections::BTreeMap<String, (u64, u64, f64, String)>,
    failures: Vec<Failure>,
}

impl Results {
    fn from(batches: &[arrow::array::RecordBatch]) -> Results {
        use arrow::array::{Array, AsArray};
        use arrow::datatypes::{Date32Type, Float64Type};
        let mut checks = std::collections::BTreeMap::new();
        let mut failures = Vec::new();
        for b in batches {
            let s = |n: &str| {
                b.column_by_name(n)
                    .map(|c| arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8).ok())
                    .flatten()
            };
            let (
                Some(check),
                Some(grain),
                Some(acc),
                Some(sku),
                Some(inv),
                Some(status),
                Some(kind),
            ) = (
                s("check_name"),
                s("grain"),
                s("account_id"),
                s("sku_id"),
                s("invoice_id"),
                s("status"),
                s("tolerance_kind"),
            )
            else {
                continue;
            };
            let st = |a: &arrow::array::ArrayRef, i: usize| {
                (!a.is_null(i)).then(|| a.as_string::<i32>().value(i).to_string())
            };
            let f = |n: &str| {
                b.column_by_name(n)
                    .map(|c| c.as_primitive::<Float64Type>().clone())
            };
            let (Some(g), Some(r), Some(d), Some(t)) = (
                f("gtmos_value"),
                f("reference_value"),
                f("difference"),
                f("tolerance"),
            ) else {
                continue;
            };
            let period = b
                .column_by_name("period")
                .map(|c| c.as_primitive::<Date32Type>().clone());
            for i in 0..b.num_rows() {
                let name = st(&check, i).unwrap_or_default();
                let failed = st(&status, i).as_deref() == Some("fail");
                let e = checks.entry(name.clone()).or_insert((
                    0,
                    0,
                    t.value(i),
                    st(&kind, i).unwrap_or_default(),
                ));
                e.0 += 1;
                e.1 += failed as u64;
                if failed {
                    let opt = |a: &arrow::array::Float64Array| (!a.is_null(i)).then(|| a.value(i));
                    failures.push(Failure {
                        check: name,
                        grain: st(&grain, i).unwrap_or_default(),
                        account_id: st(&acc, i),
                        sku_id: st(&sku, i),
                        period: period.as_ref().and_then(|p| {
                            (!p.is_null(i)).then(|| crate::calendar::Day(p.value(i)).iso())
                        }),
                        invoice_id: st(&inv, i),
                        gtmos: opt(&g),
                        reference: opt(&r),
                        difference: opt(&d),
                        tolerance: t.value(i),
                        kind: st(&kind, i).unwrap_or_default(),
                    });
                }
            }
        }
        Results { checks, failures }
    }
}
