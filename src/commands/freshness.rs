//! `gtmos freshness`: SLO attainment from the warehouse's freshness log; exit 1 on a breach.

use serde_json::json;

use crate::cli::FreshnessArgs;
use crate::error::{Error, Outcome, Result};
use crate::freshness::attainment;
use crate::printer::{Format, out, out_json};
use crate::project::Project;
use crate::settings::Paths;

pub fn run(a: FreshnessArgs) -> Result<Outcome> {
    let paths = Paths::resolve(&a.at)?;
    let project = Project::load(&paths.project)?;
    let slos = attainment(&paths.warehouse, &project.slos)?;
    if slos.iter().all(|s| s.observations == 0) {
        return Err(Error::usage_hint(
            format!("no freshness observations in {}", paths.warehouse.display()),
            "run `gtmos build` first; each build appends to logs/freshness_log",
        ));
    }
    let breached: Vec<&str> = slos
        .iter()
        .filter(|s| s.breached)
        .map(|s| s.name.as_str())
        .collect();
    match a.format {
        Format::Json => out_json(&json!({"slos": slos, "breached": breached}))?,
        Format::Text => {
            let mut s = String::new();
            for slo in &slos {
                let att = slo
                    .attainment
                    .map(|x| format!("{:.1} %", x * 100.0))
                    .unwrap_or_else(|| "—".into());
                let status = if slo.observations == 0 {
                    "no data"
                } else if slo.breached {
                    "BREACHED"
                } else {
                    "met"
                };
                s.push_str(&format!(
                    "{:<24} {status:<9} attainment {att} ({} of {} builds in {} days with age < {} h; target {:.1} %)\n",
                    slo.name, slo.good, slo.observations, slo.window_days, slo.max_age_hours, slo.target * 100.0
                ));
                for (src, age) in &slo.latest_ages {
                    let age = age
                        .map(|h| format!("{h:.1} h"))
                        .unwrap_or_else(|| "no data".into());
                    s.push_str(&format!("    {src:<22} {age}\n"));
                }
            }
            out(&s)?;
        }
    }
    Ok(if breached.is_empty() {
        Outcome::Success
    } else {
        Outcome::GateFailed
    })
}
