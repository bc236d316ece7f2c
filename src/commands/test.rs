//! `gtmos test`: the project's unit tests (models on given rows, against expected rows).

use serde_json::json;

use crate::cli::TestArgs;
use crate::error::{Outcome, Result};
use crate::printer::{Format, out, out_json};
use crate::project::{Project, unit_tests};
use crate::settings::project_dir;

pub fn run(a: TestArgs) -> Result<Outcome> {
    // Only the project: an `s3://` snapshot or warehouse in the environment is not fetched.
    let project = Project::load(&project_dir(&a.project))?;
    let outcomes = unit_tests::run(&project, &a.select)?;
    let failed = outcomes.iter().filter(|o| o.failure.is_some()).count();
    match a.format {
        Format::Json => out_json(&json!({
            "passed": outcomes.len() - failed,
            "failed": failed,
            "tests": outcomes,
        }))?,
        Format::Text => {
            let mut text = String::new();
            for o in &outcomes {
                match &o.failure {
                    None => text.push_str(&format!("PASS  {} ({})\n", o.name, o.model)),
                    Some(why) => text.push_str(&format!(
                        "FAIL  {} ({}, {})\n      {}\n",
                        o.name,
                        o.model,
                        o.file.display(),
                        why.replace('\n', "\n      ")
                    )),
                }
            }
            text.push_str(&match outcomes.len() {
                0 => "no unit tests selected\n".to_string(),
                n => format!("{} of {n} unit tests passed\n", n - failed),
            });
            out(&text)?;
        }
    }
    Ok(if failed == 0 {
        Outcome::Success
    } else {
        Outcome::GateFailed
    })
}
