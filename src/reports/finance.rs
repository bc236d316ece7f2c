//! The finance pages of the build report: recognition (deferred revenue roll-forward,
//! restatements and prior-period adjustments on lines of their own, the revenue waterfall)
//! and reconciliation (every check with its tolerance, every discrepancy). They read the
//! warehouse's published tables, so they show what analysts and finance read.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::error::Result;
use crate::reconciliation::Results;
use crate::table_io::json_rows;
use crate::warehouse::Warehouse;

pub(super) fn num(r: &Map<String, Value>, k: &str) -> f64 {
    r.get(k).and_then(Value::as_f64).unwrap_or(0.0)
}

pub(super) fn text(r: &Map<String, Value>, k: &str) -> String {
    r.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A published table's rows, or None when it has not been published.
pub(super) fn published_rows(
    w: &Warehouse,
    table: &str,
) -> Result<Option<Vec<Map<String, Value>>>> {
    let path = w.published_file(table);
    if path.exists() {
        json_rows(&path).map(Some)
    } else {
        Ok(None)
    }
}

/// The recognition page's data, or None when recognition has not been published.
pub fn recognition(w: &Warehouse) -> Result<Option<Value>> {
    let log_path = w.published_file("revenue_recognition_log");
    if !log_path.exists() {
        return Ok(None);
    }
    // The log can hold millions of lines: read in batches, keeping what the page shows.
    let mut methods: BTreeSet<String> = BTreeSet::new();
    let (mut restatements, mut adjustments) = (Vec::new(), Vec::new());
    let mut recognized = 0.0;
    crate::table_io::for_each_json_row(&log_path, |r| {
        let flag = |k: &str| r.get(k).as_bool().unwrap_or(false);
        if r.get("sku_type").as_str() == Some("seat") && !flag("prior_period_adjustment") {
            let method = r.get("method");
            let method = method.as_str().unwrap_or_default();
            if method != "restatement" {
                methods.insert(method.to_string());
            }
        }
        if flag("restatement_flag") {
            restatements.push(Value::Object(r.to_map()));
        }
        if flag("prior_period_adjustment") {
            adjustments.push(Value::Object(r.to_map()));
        }
        recognized += r.get("recognized_usd").as_f64().unwrap_or(0.0);
        Ok(())
    })?;
    let roll = published_rows(w, "deferred_revenue_rollforward")?.unwrap_or_default();
    let fall = published_rows(w, "revenue_waterfall")?.unwrap_or_default();

    // The waterfall as a matrix: booked month × recognition month.
    let mut columns: BTreeSet<String> = BTreeSet::new();
    let mut rows: Waterfall = BTreeMap::new();
    for r in &fall {
        let (booked, month) = (text(r, "booked_month"), text(r, "recognition_month"));
        columns.insert(month.clone());
        let e = rows.entry(booked).or_default();
        let cell = e.0.entry(month).or_insert((0.0, text(r, "status")));
        cell.0 += num(r, "amount_usd");
        e.1 = num(r, "recognized_to_date_usd");
        e.2 = num(r, "remaining_usd");
    }
    let columns: Vec<String> = columns.into_iter().collect();
    let waterfall: Vec<Value> = rows
        .iter()
        .map(|(booked, (cells, to_date, remaining))| {
            json!({
                "booked_month": &booked[..7],
                "cells": columns.iter().map(|c| cells.get(c).map(|(v, s)| json!({"amount": v, "status": s})).unwrap_or(Value::Null)).collect::<Vec<_>>(),
                "recognized_to_date": to_date,
                "remaining": remaining,
            })
        })
        .collect();
    let close = w.close_state()?;
    Ok(Some(json!({
        "methods": methods,
        "recognized_total": recognized,
        "deferred_closing": roll.last().map(|r| num(r, "closing_usd")),
        "closed_through": close.closed_through.as_deref().map(|m| &m[..7]),
        "rollforward": roll,
        "restatements": restatements,
        "adjustments": adjustments,
        "waterfall_columns": columns.iter().map(|c| &c[..7]).collect::<Vec<_>>(),
        "waterfall": waterfall,
        "rollforward_chart": rollforward_chart(&roll),
        "waterfall_chart": waterfall_chart(&rows, &columns),
    })))
}

/// Months of the roll-forward charted (the table has them all).
const ROLLFORWARD_MONTHS: usize = 24;

/// The roll-forward as columns: billed up, recognised and adjustments down, closing deferred
/// revenue as a line.
fn rollforward_chart(roll: &[Map<String, Value>]) -> String {
    let shown = &roll[roll.len().saturating_sub(ROLLFORWARD_MONTHS)..];
    let labels: Vec<String> = shown
        .iter()
        .map(|r| text(r, "month")[..7].to_string())
        .collect();
    let series =
        |name: &str, colour: &str, f: &dyn Fn(&Map<String, Value>) -> f64| super::svg::Series {
            name: name.into(),
            values: shown.iter().map(f).collect(),
            colour: colour.into(),
            faded: false,
        };
    let flows = [
        series("billed", "#2e8b57", &|r| num(r, "billed_usd")),
        series("recognised", "#2f5fb3", &|r| -num(r, "recognized_usd")),
        series(
            "prior-period adjustments and restatements",
            "#d9822b",
            &|r| -(num(r, "prior_period_adjustments_usd") + num(r, "restatements_usd")),
        ),
    ];
    let closing = series("closing deferred revenue", "#1d2430", &|r| {
        num(r, "closing_usd")
    });
    super::svg::columns(
        &format!(
            "Deferred revenue roll-forward, last {} months (USD)",
            shown.len()
        ),
        "Per month: billings add to deferred revenue (up), recognition and corrections take from it (down); the line is the closing balance. The table below has every month.",
        &labels,
        &flows,
        Some(&closing),
        true,
        "$",
    )
}

/// Booked month → (amount and status per recognition month, recognised to date, remaining).
type Waterfall = BTreeMap<String, (BTreeMap<String, (f64, String)>, f64, f64)>;

/// The waterfall as stacked columns: per recognition month, what each booking month's orders
/// contribute (older bookings darker), recognised solid and still scheduled pale.
fn waterfall_chart(rows: &Waterfall, columns: &[String]) -> String {
    let n = rows.len().max(2) as f64 - 1.0;
    let shade = |i: usize| {
        let t = i as f64 / n;
        let mix = |a: f64, b: f64| (a + (b - a) * t).round() as u8;
        format!(
            "#{:02x}{:02x}{:02x}",
            mix(8.0, 158.0),
            mix(48.0, 202.0),
            mix(107.0, 225.0)
        )
    };
    let mut series = Vec::new();
    for (i, (booked, (cells, _, _))) in rows.iter().enumerate() {
        for scheduled in [false, true] {
            let values: Vec<f64> = columns
                .iter()
                .map(|c| match cells.get(c) {
                    Some((v, status)) if (status == "scheduled") == scheduled => *v,
                    _ => 0.0,
                })
                .collect();
            if values.iter().any(|v| *v != 0.0) {
                series.push(super::svg::Series {
                    name: format!(
                        "booked {} ({})",
                        &booked[..7],
                        if scheduled { "scheduled" } else { "recognised" }
                    ),
                    values,
                    colour: shade(i),
                    faded: scheduled,
                });
            }
        }
    }
    super::svg::columns(
        "Revenue waterfall: recognition per month by booking month (USD)",
        "One column per recognition month, stacked by the month the orders were booked: darker is booked earlier; solid is recognised, pale is what the schedule still holds. The table below has every cell.",
        &columns
            .iter()
            .map(|c| c[..7].to_string())
            .collect::<Vec<_>>(),
        &series,
        None,
        false,
        "$",
    )
}

/// Rows per check listed on the page beyond its failures (all are in the table).
const PASSING_ROWS_SHOWN: usize = 200;

/// The reconciliation page's data, or None when reconciliation has not been published.
pub fn reconciliation(w: &Warehouse) -> Result<Option<Value>> {
    let path = w.published_file("reconciliation_results");
    if !path.exists() {
        return Ok(None);
    }
    let r = Results::read(&path, PASSING_ROWS_SHOWN)?;
    let by_check: Vec<Value> = r
        .checks
        .iter()
        .map(|c| {
            // Every failure, then passing keys up to a page-sized sample; the table has all.
            let mine = || r.rows.iter().filter(|x| x.check == c.check);
            let mut rows: Vec<&crate::reconciliation::Row> =
                mine().filter(|x| x.status == "fail").collect();
            let room = PASSING_ROWS_SHOWN.saturating_sub(rows.len());
            rows.extend(mine().filter(|x| x.status != "fail").take(room));
            json!({"check": c, "rows": rows, "omitted": c.compared as usize - rows.len()})
        })
        .collect();
    Ok(Some(json!({
        "checks": r.checks,
        "failures": r.failures().collect::<Vec<_>>(),
        "close_held": r.holds_the_close(),
        "by_check": by_check,
    })))
}
