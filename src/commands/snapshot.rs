//! `gtmos snapshot check|init`: validate a snapshot against the schema registry, or describe a
//! directory of exported Parquet files with a manifest.

use std::collections::BTreeMap;

use serde_json::json;

use super::thousands;
use crate::calendar::parse_ts;
use crate::cli::SnapshotCommand;
use crate::error::{Error, Outcome, Result};
use crate::printer::{Format, out, out_json};
use crate::schema::Registry;
use crate::snapshot::{Manifest, Snapshot, describe_table_path};

pub fn run(cmd: SnapshotCommand) -> Result<Outcome> {
    match cmd {
        SnapshotCommand::Check {
            dir,
            hashes,
            format,
        } => {
            let snap = Snapshot::open(&dir, Registry::embedded()?)?;
            let bad = if hashes {
                snap.verify_hashes()?
            } else {
                Vec::new()
            };
            let m = &snap.manifest;
            match format {
                Format::Json => out_json(&json!({
                    "snapshot": dir.display().to_string(),
                    "snapshot_id": m.snapshot_id,
                    "as_of": m.as_of,
                    "inputs_hash": m.inputs_hash(),
                    "tables": m.tables.len(),
                    "hashes_checked": hashes,
                    "hash_mismatches": bad,
                }))?,
                Format::Text => {
                    let rows: u64 = m.tables.values().map(|t| t.rows).sum();
                    let mut s = format!(
                        "{}: snapshot {} as_of {} — {} tables, {} rows, schema ok\n  inputs_hash {}\n",
                        dir.display(),
                        m.snapshot_id,
                        m.as_of,
                        m.tables.len(),
                        thousands(rows),
                        m.inputs_hash()
                    );
                    if hashes {
                        if bad.is_empty() {
                            s.push_str("  every file matches its sha256\n");
                        } else {
                            s.push_str(&format!("  sha256 mismatch: {}\n", bad.join(", ")));
                        }
                    }
                    out(&s)?;
                }
            }
            if !bad.is_empty() {
                return Err(Error::data(format!(
                    "files differ from manifest.json: {}",
                    bad.join(", ")
                ))
                .with_path(&dir));
            }
            Ok(Outcome::Success)
        }
        SnapshotCommand::Init { dir, as_of, source } => {
            let as_of = parse_ts(&as_of)?;
            let reg = Registry::embedded()?;
            let mut tables = BTreeMap::new();
            for t in reg.tables() {
                let file = dir.join(format!("{}.parquet", t.name));
                let folder = dir.join(&t.name);
                let (path, rel) = if file.is_file() {
                    (file, format!("{}.parquet", t.name))
                } else if folder.is_dir() {
                    (folder, t.name.clone())
                } else {
                    continue;
                };
                tables.insert(t.name.clone(), describe_table_path(&path, rel)?);
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() as i64)
                .unwrap_or(0);
            let m = Manifest::new(
                as_of,
                now,
                json!({ "name": source }),
                tables,
                BTreeMap::new(),
            );
            // The new manifest must describe a usable snapshot; if it does not, the directory
            // is left as it was (its earlier manifest, or none).
            let path = dir.join(crate::snapshot::MANIFEST);
            let before = std::fs::read(&path).ok();
            m.write(&dir)?;
            if let Err(e) = Snapshot::open(&dir, reg) {
                match before {
                    Some(bytes) => {
                        crate::table_io::write_atomic(&path, &bytes)?;
                    }
                    None => {
                        let _ = std::fs::remove_file(&path);
                    }
                }
                return Err(e);
            }
            out(&format!(
                "wrote {} ({} tables, snapshot {})\n",
                dir.join("manifest.json").display(),
                m.tables.len(),
                m.snapshot_id
            ))?;
            Ok(Outcome::Success)
        }
    }
}
