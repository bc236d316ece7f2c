//! The brain-ready views page of the build report: the views catalog (staleness, token budget
//! against the documents' p50 / p95 / max) and, per Tier-1 scorer, how its tiers distribute
//! over the synthetic archetypes (the snapshot's `accounts.archetype`; "—" for real data and
//! prospects).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::table_io::{json_rows, read_parquet_columns, read_parquet_schema};
use crate::warehouse::Warehouse;

/// (scorer, table, tier column, how the column becomes a tier).
const SCORERS: &[(&str, &str, &str)] = &[
    ("Health (AGT-501)", "customer_health_log", "health_score"),
    ("Churn risk (AGT-502)", "churn_risk_log", "churn_risk_tier"),
    ("Expansion (AGT-503)", "expansion_log", "play_type"),
    ("Adoption (TOOL-008)", "adoption_pattern", "pattern"),
    (
        "Consumption forecast (TOOL-004)",
        "consumption_forecast",
        "pattern",
    ),
    ("ICP (AGT-201)", "icp_score", "icp_tier"),
];

/// Health scores in the churn tiers' bands (Critical < 45 ≤ High < 63 ≤ Medium < 78 ≤ Low).
fn health_band(score: f64) -> &'static str {
    match score {
        s if s < 45.0 => "< 45",
        s if s < 63.0 => "45–62",
        s if s < 78.0 => "63–77",
        _ => "≥ 78",
    }
}

/// A scorer's tiers at its latest score date and at the one before (empty when the log has
/// one date or none): (account_id, tier) each, and the two dates.
struct Tiers {
    latest: Vec<(String, String)>,
    previous: Vec<(String, String)>,
    dates: (Option<String>, Option<String>),
}

/// [`Tiers`] of a scorer's table (all rows count as the latest when it has no score date).
fn tiers(path: &Path, column: &str) -> Result<Tiers> {
    // Only the three columns it reads: a scorer's log is long (a row per account and week).
    let has_date = read_parquet_schema(path)?
        .0
        .field_with_name("score_date")
        .is_ok();
    let mut columns = vec!["account_id", column];
    if has_date {
        columns.push("score_date");
    }
    let (_, batches) = read_parquet_columns(path, Some(&columns))?;
    let bad =
        |e: arrow::error::ArrowError| Error::arrow(format!("{}: {column}", path.display()), e);
    let mut dates = BTreeSet::new();
    if has_date {
        for b in &batches {
            let d = b
                .column_by_name("score_date")
                .expect("checked")
                .as_primitive::<arrow::datatypes::Date32Type>();
            dates.extend(d.iter().flatten());
        }
    }
    let mut last_two = dates.iter().rev().copied();
    let (latest, previous) = (last_two.next(), last_two.next());
    let mut out = Tiers {
        latest: Vec::new(),
        previous: Vec::new(),
        dates: (
            latest.map(|d| crate::calendar::Day(d).iso()),
            previous.map(|d| crate::calendar::Day(d).iso()),
        ),
    };
    for b in &batches {
        let (Some(acc), Some(col)) = (b.column_by_name("account_id"), b.column_by_name(column))
        else {
            return Err(Error::Internal(format!(
                "{}: no account_id or {column}",
                path.display()
            )));
        };
        let acc = arrow::compute::cast(acc, &DataType::Utf8).map_err(bad)?;
        let acc = acc.as_string::<i32>();
        let dates = has_date.then(|| {
            b.column_by_name("score_date")
                .expect("checked")
                .as_primitive::<arrow::datatypes::Date32Type>()
                .clone()
        });
        let numeric = col.data_type().is_numeric();
        let text = arrow::compute::cast(col, &DataType::Utf8).map_err(bad)?;
        let text = text.as_string::<i32>();
        let num = if numeric {
            Some(arrow::compute::cast(col, &DataType::Float64).map_err(bad)?)
        } else {
            None
        };
        for i in 0..b.num_rows() {
            let into = match &dates {
                None => &mut out.latest,
                Some(d) if d.is_null(i) => continue,
                Some(d) if Some(d.value(i)) == latest => &mut out.latest,
                Some(d) if Some(d.value(i)) == previous => &mut out.previous,
                Some(_) => continue,
            };
            let tier = match &num {
                Some(n) => {
                    let n = n.as_primitive::<arrow::datatypes::Float64Type>();
                    if n.is_null(i) {
                        "no score".to_string()
                    } else {
                        health_band(n.value(i)).to_string()
                    }
                }
                None if text.is_null(i) => "none".to_string(),
                None => text.value(i).to_string(),
            };
            into.push((acc.value(i).to_string(), tier));
        }
    }
    Ok(out)
}

/// The page's context, or None when the build published no views catalog.
pub fn views(warehouse: &Warehouse, snapshot_dir: &Path) -> Result<Option<Value>> {
    let catalog = warehouse.published_file(crate::views::CATALOG_TABLE);
    if !catalog.exists() {
        return Ok(None);
    }
    let mut rows = json_rows(&catalog)?;
    for r in &mut rows {
        r.remove("document");
    }
    let hash = rows
        .first()
        .and_then(|r| r.get("brain_view_contracts_hash").cloned())
        .unwrap_or(Value::Null);
    // Archetypes, when the snapshot carries them (synthetic corpora).
    let mut archetype: BTreeMap<String, String> = BTreeMap::new();
    let accounts = snapshot_dir.join("accounts.parquet");
    if accounts.exists() {
        crate::table_io::for_each_json_row(&accounts, |r| {
            if let (Value::String(a), Value::String(t)) = (r.get("account_id"), r.get("archetype"))
            {
                archetype.insert(a, t);
            }
            Ok(())
        })?;
    }
    let mut scorers = Vec::new();
    for (title, table, column) in SCORERS {
        let path = warehouse.published_file(table);
        if !path.exists() {
            continue;
        }
        let t = tiers(&path, column)?;
        let mut counts: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        let mut columns: BTreeSet<String> = BTreeSet::new();
        columns.extend(t.previous.iter().map(|(_, tier)| tier.clone()));
        for (account, tier) in t.latest.iter().cloned() {
            let a = archetype
                .get(&account)
                .cloned()
                .unwrap_or_else(|| "—".into());
            columns.insert(tier.clone());
            *counts.entry(a).or_default().entry(tier).or_default() += 1;
        }
        // Tiers in their natural order (worst first), anything else after, by name.
        const ORDER: [&str; 11] = [
            "Critical", "High", "Medium", "Low", "< 45", "45–62", "63–77", "≥ 78", "T1", "T2", "T3",
        ];
        let mut columns: Vec<String> = columns.into_iter().collect();
        columns.sort_by_key(|t| {
            (
                ORDER.iter().position(|o| o == t).unwrap_or(ORDER.len()),
                t.clone(),
            )
        });
        let table_rows: Vec<Value> = counts
            .iter()
            .map(|(a, c)| {
                json!({
                    "archetype": a,
                    "counts": columns.iter().map(|t| c.get(t).copied().unwrap_or(0)).collect::<Vec<_>>(),
                    "total": c.values().sum::<usize>(),
                })
            })
            .collect();
        let movement = movement(title, &t, &columns);
        scorers.push(json!({"title": title, "table": table, "column": column, "tiers": columns, "rows": table_rows,
            "latest_date": t.dates.0, "previous_date": t.dates.1, "movement": movement}));
    }
    Ok(Some(json!({
        "hash": hash,
        "catalog": rows,
        "scorers": scorers,
        "labelled": !archetype.is_empty(),
    })))
}

/// How a scorer's tiers moved between its two latest score dates: counts per tier at each
/// (a chart and its table) and the accounts moving from each tier to each other.
fn movement(title: &str, t: &Tiers, tiers: &[String]) -> Value {
    let count = |rows: &[(String, String)]| -> Vec<Option<f64>> {
        tiers
            .iter()
            .map(|tier| Some(rows.iter().filter(|(_, x)| x == tier).count() as f64))
            .collect()
    };
    let (latest, previous) = (count(&t.latest), count(&t.previous));
    let max = latest
        .iter()
        .chain(&previous)
        .flatten()
        .fold(0.0f64, |a, b| a.max(*b));
    let mut series = Vec::new();
    if let Some(d) = &t.dates.1 {
        series.push((d.as_str(), previous.clone()));
    }
    series.push((t.dates.0.as_deref().unwrap_or("latest"), latest.clone()));
    let chart = super::svg::grouped(
        &format!("{title}: accounts per tier"),
        "Accounts per tier at the latest score date and the one before, side by side; the tables below hold the counts and every move between tiers.",
        tiers,
        &series,
        max,
        0,
    );
    let before: BTreeMap<&str, &str> = t
        .previous
        .iter()
        .map(|(a, x)| (a.as_str(), x.as_str()))
        .collect();
    let mut moves: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for (a, now) in &t.latest {
        if let Some(was) = before.get(a.as_str()) {
            *moves.entry((was, now.as_str())).or_default() += 1;
        }
    }
    let matrix: Vec<Value> = tiers
        .iter()
        .map(|from| {
            json!({"from": from, "to": tiers.iter().map(|to| moves.get(&(from.as_str(), to.as_str())).copied().unwrap_or(0)).collect::<Vec<_>>()})
        })
        .collect();
    json!({
        "chart": chart,
        "latest": latest,
        "previous": if t.dates.1.is_some() { json!(previous) } else { Value::Null },
        "matrix": if t.dates.1.is_some() { json!(matrix) } else { Value::Null },
    })
}
