//! `gtmos views list|show`: the brain-ready views the last build published (SPEC §10).

use serde_json::{Value, json};

use crate::cli::{Locations, ViewsArgs, ViewsCommand};
use crate::error::{Error, Outcome, Result};
use crate::printer::{Format, out, out_json};
use crate::settings::Paths;
use crate::views::{CATALOG_TABLE, COMPOSITE_TABLE};

/// The `view_catalog` row of a view (not the composite) named `name`, if there is one.
fn catalog_row(
    table: &dyn Fn(&str) -> Result<Vec<serde_json::Map<String, Value>>>,
    name: &str,
) -> Result<Option<serde_json::Map<String, Value>>> {
    Ok(table(CATALOG_TABLE)?.into_iter().find(|r| {
        r.get("view_name").and_then(Value::as_str) == Some(name)
            && r.get("kind").and_then(Value::as_str) != Some("composite")
    }))
}

pub fn run(a: ViewsArgs) -> Result<Outcome> {
    let paths = Paths::resolve(&Locations {
        project: None,
        snapshot: None,
        warehouse: a.warehouse.clone(),
    })?;
    // One version for the whole command, even if a build switches it meanwhile.
    let published = crate::warehouse::Warehouse::new(&paths.warehouse).published_dir();
    let table = |name: &str| {
        let path = published.join(format!("{name}.parquet"));
        if !path.exists() {
            return Err(Error::usage_hint(
                format!("no {name} in {}", paths.warehouse.display()),
                "run `gtmos build` first (the views are built with tag:views)",
            ));
        }
        crate::table_io::json_rows(&path)
    };
    match a.command {
        ViewsCommand::List => {
            let mut rows = table(CATALOG_TABLE)?;
            match a.format {
                Format::Json => {
                    for r in &mut rows {
                        if let Some(Value::String(u)) = r.get("used_by").cloned() {
                            r.insert(
                                "used_by".into(),
                                serde_json::from_str(&u).unwrap_or(json!(u)),
                            );
                        }
                        if let Some(Value::String(d)) = r.get("document").cloned() {
                            r.insert(
                                "document".into(),
                                serde_json::from_str(&d).unwrap_or(json!(d)),
                            );
                        }
                    }
                    let hash = rows
                        .first()
                        .and_then(|r| r.get("brain_view_contracts_hash").cloned())
                        .unwrap_or(Value::Null);
                    out_json(&json!({ "brain_view_contracts_hash": hash, "views": rows }))?
                }
                Format::Text => {
                    let get = |r: &serde_json::Map<String, Value>, k: &str| -> String {
                        match r.get(k) {
                            Some(Value::String(s)) => s.clone(),
                            Some(Value::Null) | None => "—".into(),
                            Some(v) => v.to_string(),
                        }
                    };
                    let mut s = format!(
                        "brain_view_contracts_hash {}\n{:<22} {:<17} {:>3} {:<6} {:>7} {:<21} {:>6} {:>6} {:>6} {:>6} {:>7}\n",
                        rows.first()
                            .map(|r| get(r, "brain_view_contracts_hash"))
                            .unwrap_or_default(),
                        "view",
                        "kind",
                        "ver",
                        "stale",
                        "max_age",
                        "last_refresh",
                        "budget",
                        "p50",
                        "p95",
                        "max",
                        "dropped"
                    );
                    for r in &rows {
                        s.push_str(&format!(
                            "{:<22} {:<17} {:>3} {:<6} {:>6}h {:<21} {:>6} {:>6} {:>6} {:>6} {:>7}\n",
                            get(r, "view_name"),
                            get(r, "kind"),
                            get(r, "version"),
                            if r.get("is_stale") == Some(&json!(true)) {
                                "STALE"
                            } else {
                                "fresh"
                            },
                            get(r, "staleness_threshold_hours"),
                            get(r, "last_refresh_timestamp"),
                            get(r, "token_budget"),
                            get(r, "tokens_p50"),
                            get(r, "tokens_p95"),
                            get(r, "tokens_max"),
                            get(r, "dropped_rows"),
                        ));
                    }
                    let unavailable: Vec<String> = rows
                        .iter()
                        .filter_map(|r| {
                            let why = r.get("unavailable_reason")?.as_str()?;
                            Some(format!(
                                "  {} ({}, for {}): {why}\n",
                                get(r, "view_name"),
                                get(r, "owner"),
                                get(r, "used_by")
                            ))
                        })
                        .collect();
                    if !unavailable.is_empty() {
                        s.push_str("unavailable (a brain reading these must decline):\n");
                        s.push_str(&unavailable.concat());
                    }
                    out(&s)?;
                }
            }
        }
        ViewsCommand::Show { account_id } => {
            // A view's name shows its document; anything else is an account's composite.
            if let Some(r) = catalog_row(&table, &account_id)? {
                return show_view(&account_id, &r, a.format);
            }
            let rows = table(COMPOSITE_TABLE)?;
            let Some(r) = rows
                .iter()
                .find(|r| r.get("account_id").and_then(Value::as_str) == Some(account_id.as_str()))
            else {
                return Err(Error::usage_hint(
                    format!(
                        "no composite for account `{account_id}` in {} ({} accounts have one)",
                        paths.warehouse.display(),
                        rows.len()
                    ),
                    "composites exist for accounts with rows in at least one account component",
                ));
            };
            let doc: Value = r
                .get("document")
                .and_then(Value::as_str)
                .and_then(|d| serde_json::from_str(d).ok())
                .ok_or_else(|| {
                    Error::Internal(format!("the composite of `{account_id}` is not JSON"))
                })?;
            match a.format {
                Format::Json => out_json(&json!({
                    "account_id": account_id,
                    "tokens": r.get("tokens"),
                    "document": doc,
                }))?,
                Format::Text => {
                    let mut s = format!(
                        "{account_id}: {} tokens of {} ({}), stale components {}, dropped {}\n",
                        r.get("tokens").cloned().unwrap_or(Value::Null),
                        doc["token_budget"],
                        doc["tokenizer"].as_str().unwrap_or(""),
                        doc["stale_components"],
                        doc["dropped"],
                    );
                    if let Some(Value::Object(c)) = doc.get("components") {
                        for (name, comp) in c {
                            s.push_str(&format!(
                                "  {name:<22} {} rows{}  refreshed {}\n",
                                comp["rows"].as_array().map_or(0, Vec::len),
                                if comp["is_stale"] == json!(true) {
                                    "  STALE"
                                } else {
                                    ""
                                },
                                comp["last_refresh_timestamp"].as_str().unwrap_or("—"),
                            ));
                        }
                    }
                    s.push_str("  (--format json prints the whole document)\n");
                    out(&s)?;
                }
            }
        }
    }
    Ok(Outcome::Success)
}

/// Print a cross-population or strategy view's document as a brain reads it (its catalog row
/// `r`), or why it is unavailable (exit 1).
fn show_view(name: &str, r: &serde_json::Map<String, Value>, format: Format) -> Result<Outcome> {
    if let Some(why) = r.get("unavailable_reason").and_then(Value::as_str) {
        match format {
            Format::Json => out_json(
                &json!({"view": name, "available": false, "reason": why, "owner": r.get("owner")}),
            )?,
            Format::Text => out(&format!("view {name} is unavailable: {why}\n"))?,
        }
        return Ok(Outcome::GateFailed);
    }
    let doc: Value = r
        .get("document")
        .and_then(Value::as_str)
        .and_then(|d| serde_json::from_str(d).ok())
        .ok_or_else(|| {
            Error::usage_hint(
                format!("view `{name}` is an account component: it has a document per account"),
                "show an account's composite with `gtmos views show <account_id>`",
            )
        })?;
    match format {
        Format::Json => {
            out_json(&json!({"view": name, "tokens": r.get("tokens_max"), "document": doc}))?
        }
        Format::Text => out(&format!(
            "{name}: {} rows, {} tokens of {}{}\n{}\n",
            r.get("rows").cloned().unwrap_or(Value::Null),
            r.get("tokens_max").cloned().unwrap_or(Value::Null),
            r.get("token_budget").cloned().unwrap_or(Value::Null),
            if r.get("is_stale") == Some(&json!(true)) {
                ", STALE"
            } else {
                ""
            },
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        ))?,
    }
    Ok(Outcome::Success)
}
