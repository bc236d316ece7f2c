//! `gtmos views list|show`: the brain-ready views the last build published (SPEC §10).

use serde_json::{Value, json};

use crate::cli::{Locations, ViewsArgs, ViewsCommand};
use crate::error::{Error, Outcome, Result};
use crate::printer::{Format, out, out_json};
use crate::settings::Paths;
use crate::views::{CATALOG_TABLE, COMPOSITE_TABLE};

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
                    out(&s)?;
                }
            }
        }
        ViewsCommand::Show { account_id } => {
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
