//! Stage 1, the sources: each selected source's contract (ingest, quarantine, checks,
//! freshness; [`crate::contracts`]), referenced sources first; a blocked source goes to the
//! gate.

use std::collections::BTreeSet;

use crate::contracts::{self, SourceResult};
use crate::error::Result;
use crate::printer::Progress;
use crate::project::Project;
use crate::snapshot::Snapshot;

use super::BuildRun;
use super::report::Step;

/// Run the selected sources' contracts into the run's report and gate.
pub(super) fn check(run: &mut BuildRun, snapshot: &Snapshot) -> Result<()> {
    for r in run_contracts_of(
        &run.cx,
        run.project,
        snapshot,
        &run.selection.sources,
        run.progress,
    )? {
        if let Some(c) = run.project.sources.iter().find(|c| c.table == r.table) {
            run.reuse.source(run.project, snapshot, c, run.report.as_of);
        }
        run.report.steps.push(Step::of_source(&r));
        if let Some(why) = &r.blocked {
            run.gate.block_source(&r.table, why);
        }
        run.report.sources.push(r);
    }
    Ok(())
}

/// The contracts of the given sources, referenced sources first.
pub fn run_contracts_of(
    cx: &contracts::Context,
    project: &Project,
    snapshot: &Snapshot,
    sources: &BTreeSet<String>,
    progress: &Progress,
) -> Result<Vec<SourceResult>> {
    let mut out = Vec::new();
    for contract in project
        .sources
        .iter()
        .filter(|c| sources.contains(&c.table))
    {
        progress.step(&format!("contract {}", contract.table));
        let t = project.registry.expect_table(&contract.table)?;
        out.push(contracts::run_source(cx, contract, t, snapshot)?);
        progress.advance(1);
    }
    Ok(out)
}

/// The ingest + contracts stage: every source's contract, referenced sources first.
pub fn run_contracts(
    cx: &contracts::Context,
    project: &Project,
    snapshot: &Snapshot,
) -> Result<Vec<SourceResult>> {
    let all = project.sources.iter().map(|c| c.table.clone()).collect();
    run_contracts_of(cx, project, snapshot, &all, &Progress::hidden())
}
