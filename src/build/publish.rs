//! Stages 4 and 6, publishing: the next version of `published/` is assembled beside the
//! current one — each unblocked table, the brain-ready documents, the publish state, the
//! decision nodes' proposals — and nothing is visible until the run commits it whole.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Instant;

use crate::calendar::format_ts;
use crate::error::{Error, Result};
use crate::project::Materialized;
use crate::table_io::WrittenFile;
use crate::warehouse::{TableState, Warehouse};

use super::report::{BuildReport, Step, ViewsSummary};
use super::{BuildRun, failpoint};

/// Stage 4: the next version with every unblocked table; a blocked one keeps its last good
/// version, marked stale with the reason. Then the brain-ready documents, from the views just
/// published, and the publish state. Returns the next version, not yet committed.
pub(super) fn tables(run: &mut BuildRun) -> Result<Warehouse> {
    run.progress.step("publish");
    let report = &mut *run.report;
    let mut state = run.cx.warehouse.state()?;
    let next = run.cx.warehouse.begin(&report.run_id)?;
    failpoint("publish.begun")?;
    for m in &report.models {
        if m.materialized != Materialized::Table {
            continue;
        }
        match &m.blocked {
            None => {
                let w = run
                    .staged
                    .get(&m.name)
                    .ok_or_else(|| Error::Internal(format!("model `{}` was not staged", m.name)))?;
                next.publish(&w.path, &m.name)?;
                failpoint("publish.table")?;
                state
                    .tables
                    .insert(m.name.clone(), published_state(report, w));
                report.published.push(m.name.clone());
            }
            Some(why) => {
                let e = state.tables.entry(m.name.clone()).or_insert(TableState {
                    build_id: None,
                    published_by_run: None,
                    snapshot_id: None,
                    rows: 0,
                    sha256: None,
                    stale: false,
                    stale_reason: None,
                    stale_since_run: None,
                });
                if !e.stale {
                    e.stale_since_run = Some(report.run_id.clone());
                }
                e.stale = true;
                e.stale_reason = Some(why.clone());
                report.blocked.push((m.name.clone(), why.clone()));
            }
        }
    }
    run.progress.advance(1);
    // The brain-ready views: the documents the brains read, from the views just published.
    if let Some(catalog) = &run.project.views
        && catalog.views.iter().any(|v| {
            report
                .published
                .contains(&crate::views::model_name(&v.name))
        })
    {
        run.progress.step("views: documents and token counts");
        let started = Instant::now();
        let summary = publish_views(catalog, &next, report, run.cx.staging, &mut state)?;
        failpoint("publish.views")?;
        report.steps.push(Step {
            rows_out: summary.composites as u64,
            ..Step::ok("views", "assemble", started.elapsed().as_secs_f64())
        });
        report.views = Some(summary);
    }
    next.write_state(&state)?;
    super::reuse::write_state(
        &next.published_dir(),
        &run.reuse.next_state(&report.published),
    )?;
    failpoint("publish.state")?;
    run.progress.advance(1);
    Ok(next)
}

/// Stage 6: the proposals of every decision node evaluated this run join the decision log; a
/// node whose model is blocked proposes nothing, and says why.
pub(super) fn decisions(run: &mut BuildRun, next: &Warehouse) -> Result<()> {
    let project = run.project;
    let report = &mut *run.report;
    let dcx = crate::decisions::BuildContext {
        warehouse: &run.cx.warehouse.root,
        run_id: &report.run_id,
        build_id: &report.build_id,
        snapshot_id: &report.snapshot_id,
        inputs_hash: &report.inputs_hash,
        as_of: report.as_of,
        vars: &project.vars,
    };
    let mut outcomes = Vec::new();
    let mut known = if project.decision_nodes.is_empty() {
        BTreeSet::new()
    } else {
        crate::decisions::known_ids(&run.cx.warehouse.root)?
    };
    for node in &project.decision_nodes {
        if !run.selection.models.contains(&node.model) {
            continue;
        }
        let blocked = report
            .models
            .iter()
            .find(|m| m.name == node.model)
            .and_then(|m| m.blocked.clone());
        outcomes.push(match blocked {
            Some(why) => crate::decisions::NodeOutcome {
                node: node.name.clone(),
                model: node.model.clone(),
                proposed: Vec::new(),
                new: 0,
                none_because: Some(format!("its model `{}` is blocked: {why}", node.model)),
            },
            None => {
                let found = crate::decisions::proposals(&next.published_file(&node.model))?;
                crate::decisions::record(&dcx, node, &found, &mut known)?
            }
        });
    }
    report.decisions = outcomes;
    failpoint("decisions")
}

/// The publish state of a table this run wrote.
fn published_state(report: &BuildReport, w: &WrittenFile) -> TableState {
    TableState {
        build_id: Some(report.build_id.clone()),
        published_by_run: Some(report.run_id.clone()),
        snapshot_id: Some(report.snapshot_id.clone()),
        rows: w.rows,
        sha256: Some(w.sha256.clone()),
        stale: false,
        stale_reason: None,
        stale_since_run: None,
    }
}

/// Assemble the brain-ready documents and publish `account_composite` and `view_catalog`.
fn publish_views(
    catalog: &crate::views::Catalog,
    warehouse: &Warehouse,
    report: &mut BuildReport,
    staging: &Path,
    state: &mut crate::warehouse::PublishState,
) -> Result<ViewsSummary> {
    use crate::views::{CATALOG_TABLE, COMPOSITE_TABLE};
    let as_of = format_ts(report.as_of);
    let composite_path = staging.join(format!("{COMPOSITE_TABLE}.parquet"));
    let catalog_path = staging.join(format!("{CATALOG_TABLE}.parquet"));
    let mut composites = crate::views::CompositeWriter::create(&composite_path, &report.build_id)?;
    let a = crate::views::assemble(
        catalog,
        &warehouse.published_dir(),
        &as_of,
        &report.build_id,
        crate::views::COMPOSITE_CHUNK,
        &mut |c| composites.write(c),
    )?;
    let catalog_table = crate::views::catalog_batch(&a, catalog, &report.build_id, report.as_of)?;
    let written = [
        (COMPOSITE_TABLE, &composite_path, composites.finish()?),
        (
            CATALOG_TABLE,
            &catalog_path,
            crate::table_io::write_table(
                &catalog_path,
                catalog_table.schema(),
                &[],
                &[catalog_table],
            )?,
        ),
    ];
    for (name, path, w) in written {
        warehouse.publish(path, name)?;
        state
            .tables
            .insert(name.to_string(), published_state(report, &w));
        report.published.push(name.to_string());
    }
    let unavailable = |r: &&crate::views::CatalogRow| r.unavailable_reason.is_some();
    Ok(ViewsSummary {
        views: a
            .catalog
            .iter()
            .filter(|r| r.kind != "composite" && !unavailable(r))
            .count(),
        unavailable: a
            .catalog
            .iter()
            .filter(unavailable)
            .map(|r| r.view_name.clone())
            .collect(),
        composites: a.composites,
        composite_tokens_max: a.composite_tokens_max,
        composite_token_budget: catalog.composite.token_budget,
        dropped_rows: a.dropped_rows,
        stale: a
            .catalog
            .iter()
            .filter(|r| r.is_stale && r.kind != "composite" && !unavailable(r))
            .map(|r| r.view_name.clone())
            .collect(),
    })
}
