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

/// The recognition page's data, or None when recognition has not been published.
pub fn recognition(w: &Warehouse) -> Result<Option<Value>> {
    let (log_path, roll_path, fall_path) = (
        w.published_file("revenue_recognition_log"),
        w.published_file("deferred_revenue_rollforward"),
        w.published_file("revenue_waterfall"),
    );
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
    let roll = if roll_path.exists() {
        json_rows(&roll_path)?
    } else {
        Vec::new()
    };
    let fall = if fall_path.exists() {
        json_rows(&fall_path)?
    } else {
        Vec::new()
    };

    // The waterfall as a matrix: booked month × recognition month.
    let mut columns: BTreeSet<String> = BTreeSet::new();
    let mut rows: BTreeMap<String, (BTreeMap<String, (f64, String)>, f64, f64)> = BTreeMap::new();
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
    let chart: Vec<(String, f64)> = roll
        .iter()
        .rev()
        .take(24)
        .rev()
        .map(|r| (text(r, "month")[..7].to_string(), num(r, "recognized_usd")))
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
        "chart": super::svg::bars("Recognised revenue per month (USD)", &chart, "$"),
    })))
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
