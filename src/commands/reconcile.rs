//! `gtmos reconcile`: build the reconciliation against reference figures, print every
//! discrepancy, and hold the close (exit 1) when a monthly check fails (SPEC §7).

use std::path::Path;

use serde_json::json;

use super::build::{build_and_report, options, print_summary};
use crate::cli::ReconcileArgs;
use crate::error::{Error, Outcome, Result};
use crate::printer::{Format, out, out_json};
use crate::reconciliation::Results;
use crate::warehouse::Warehouse;

/// The reference tables `--reference DIR` may provide.
pub const REFERENCE_TABLES: [&str; 3] = ["reference_usage", "reference_billing", "reference_gl"];

pub fn run(a: ReconcileArgs) -> Result<Outcome> {
    let mut opts = options(&a.build)?;
    opts.command = "reconcile";
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
    let r = build_and_report(&opts, &a.build)?;
    if a.build.format == Format::Text {
        print_summary(&r, Format::Text)?;
    }
    let published = Warehouse::new(&opts.warehouse).published_file("reconciliation_results");
    let results = if published.exists() {
        Results::read(&published, 0)?
    } else {
        Results::default()
    };
    let held = results.holds_the_close();
    match a.build.format {
        Format::Json => out_json(&json!({
            "run_id": r.run_id,
            "checks": results.checks,
            "failures": results.failures().collect::<Vec<_>>(),
            "close_held": held,
        }))?,
        Format::Text => {
            let mut s = String::from("\nreconciliation\n");
            for c in &results.checks {
                s.push_str(&format!(
                    "  {:<18} {:>8} compared, {:>5} outside {} {}\n",
                    c.check,
                    c.compared,
                    c.failed,
                    c.tolerance_text,
                    if c.failed > 0 { "FAIL" } else { "ok" }
                ));
            }
            let value = |v: Option<f64>| {
                v.map(|v| format!("{v}"))
                    .unwrap_or_else(|| "missing".into())
            };
            for f in results.failures() {
                s.push_str(&format!(
                    "    {} {}: gtmos {} vs reference {} (difference {})\n",
                    f.check,
                    f.key(),
                    value(f.gtmos),
                    value(f.reference),
                    f.difference
                        .map(|v| format!("{v:+}"))
                        .unwrap_or_else(|| "—".into()),
                ));
            }
            s.push_str(if held {
                "  close HELD: a monthly check is out of tolerance\n"
            } else {
                "  every monthly check is within tolerance\n"
            });
            out(&s)?;
        }
    }
    Ok(if held || !r.blocked.is_empty() {
        Outcome::GateFailed
    } else {
        Outcome::Success
    })
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
