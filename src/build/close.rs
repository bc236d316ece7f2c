//! The close (SPEC §7): `--close-through` freezes the newly closed months of every freezing
//! model (`config(freeze='<month column>')`) into `closed_periods/<model>/<month>.parquet`,
//! with their hashes in the close state, or holds the close and says why (a freezing model not
//! built or blocked this run). Frozen months are read back as `closed.<model>` by the next
//! builds, so a closed month never changes.

use std::collections::{BTreeMap, BTreeSet};

use crate::calendar::Day;
use crate::error::{Error, Result};
use crate::project::{Model, Project};
use crate::warehouse::Warehouse;

use super::report::BuildReport;
use super::selection::Selection;

/// Freeze months (frozen_through, target] of every freezing model from its published table.
pub fn close_periods(
    project: &Project,
    selection: &Selection,
    warehouse: &Warehouse,
    report: &mut BuildReport,
    frozen_through: Option<Day>,
    target: Day,
) -> Result<()> {
    if frozen_through.is_some_and(|f| f >= target) {
        return Ok(());
    }
    let freezing: Vec<&Model> = project
        .models
        .iter()
        .filter(|m| m.freeze.is_some())
        .collect();
    for m in &freezing {
        if !selection.models.contains(&m.name) {
            report.close_held = Some(format!("`{}` was not built in this run", m.name));
            return Ok(());
        }
        if let Some(why) = report
            .blocked
            .iter()
            .find(|(t, _)| *t == m.name)
            .map(|(_, w)| w.clone())
        {
            report.close_held = Some(format!("`{}` is blocked: {why}", m.name));
            return Ok(());
        }
    }
    let first = frozen_through
        .map(|d| d.add_months(1))
        .unwrap_or(Day(i32::MIN));
    let mut files = BTreeMap::new();
    for m in &freezing {
        let column = m.freeze.clone().unwrap_or_default();
        let published = warehouse.published_file(&m.name);
        let (schema, batches) = crate::table_io::read_parquet(&published)?;
        let idx = schema
            .index_of(&column)
            .map_err(|e| Error::arrow(format!("freezing `{}`", m.name), e))?;
        let mut by_month: BTreeMap<i32, Vec<arrow::array::RecordBatch>> = BTreeMap::new();
        for b in &batches {
            let months =
                arrow::array::AsArray::as_primitive::<arrow::datatypes::Date32Type>(b.column(idx));
            let mut keys: BTreeSet<i32> = BTreeSet::new();
            for v in months.iter().flatten() {
                if v >= first.0 && v <= target.0 {
                    keys.insert(v);
                }
            }
            for k in keys {
                let mask = arrow::compute::kernels::cmp::eq(
                    months,
                    &arrow::array::Date32Array::new_scalar(k),
                )
                .map_err(|e| Error::arrow("freezing", e))?;
                let part = arrow::compute::filter_record_batch(b, &mask)
                    .map_err(|e| Error::arrow("freezing", e))?;
                by_month.entry(k).or_default().push(part);
            }
        }
        // Every month in the range is frozen, even one with no rows, so the close is explicit.
        let mut month = if frozen_through.is_some() {
            first
        } else {
            by_month.keys().next().map(|k| Day(*k)).unwrap_or(target)
        };
        while month <= target {
            let parts = by_month.remove(&month.0).unwrap_or_default();
            let path = warehouse.closed_file(&m.name, &month.iso());
            let w = crate::table_io::write_table_new(&path, schema.clone(), &[], &parts)?;
            files.insert(
                format!(
                    "{}/{}",
                    m.name,
                    path.file_name().and_then(|n| n.to_str()).unwrap_or("")
                ),
                w.sha256,
            );
            report.closed.push(month.iso());
            month = month.add_months(1);
        }
    }
    report.closed.sort();
    report.closed.dedup();
    let mut state = warehouse.close_state()?;
    state.closed_through = Some(target.iso());
    state.history.push(crate::warehouse::CloseEvent {
        run_id: report.run_id.clone(),
        build_id: report.build_id.clone(),
        closed_through: target.iso(),
        files,
    });
    warehouse.write_close_state(&state)
}
