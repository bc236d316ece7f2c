//! `gtmos reopen`: the one explicit, recorded way a closed month changes (SPEC §7).

use crate::calendar::format_ts;
use crate::cli::{Locations, ReopenArgs};
use crate::error::{Error, Outcome, Result};
use crate::printer::out;
use crate::settings::Paths;
use crate::warehouse::Warehouse;

pub fn run(a: ReopenArgs) -> Result<Outcome> {
    let paths = Paths::resolve(&Locations {
        project: None,
        snapshot: None,
        warehouse: a.warehouse.clone(),
    })?;
    if a.by.trim().is_empty() || a.reason.trim().is_empty() {
        return Err(Error::usage(
            "--by and --reason must say who reopens the books and why",
        ));
    }
    let from = super::build::parse_month(&a.from)?;
    let warehouse = Warehouse::new(&paths.warehouse);
    let _lock = warehouse.lock()?;
    let run_id = crate::logs::new_run_id();
    let e = warehouse.reopen(
        &from.iso(),
        a.by.trim(),
        a.reason.trim(),
        &run_id,
        &format_ts(crate::logs::now_micros()),
    )?;
    out(&format!(
        "reopened {}..{} ({} frozen file(s) moved to {}) by {}: {}\n",
        &e.from[..7],
        &e.was_closed_through[..7],
        e.files.len(),
        e.moved_to,
        e.by,
        e.reason
    ))?;
    Ok(Outcome::Success)
}
