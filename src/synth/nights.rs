//! A sequence of nightly snapshots of one company (`gtmos synth --nights N`), the input of
//! incremental builds: night k is the corpus as it was known at its as_of, one day after
//! night k − 1's, and every night shares the files of the nights before it.
//!
//! The corpus is generated once, its as_of the last night's. Each append-only source (a
//! registry table with `append_only: true`: usage, decisions and outcomes, payment and cadence
//! events, routing decisions, …) becomes a directory of partitions by when a row was loaded
//! (its `loaded_at_field`): `loaded_by=<date of night 1's as_of>/part-0.parquet` holds every row
//! loaded at or before night 1's as_of (and rows without a load time, which a build at any as_of
//! keeps), and `loaded_by=<date of night k's as_of>` the rows loaded after night k − 1's as_of
//! and at or before night k's. Each partition is written once, under `partitions/`, and linked
//! into every night that holds it, so an unchanged partition is the same file with the same
//! sha256 night after night. What a night adds is whatever the generator dated in that day:
//! mostly new metered periods (the generator dates few replays, late arrivals or corrections in
//! a corpus' last days). Rows loaded after the last as_of are in no night.
//!
//! The other tables (accounts, contracts, orders, the finance tables, …) hold current state, not
//! history: a snapshot has no earlier version of a row, so every night carries the corpus'
//! final state of them (linked, the same file every night) — exactly what `gtmos build --as-of`
//! reads of them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use serde::Serialize;

use crate::calendar::format_ts;
use crate::error::{Error, Result};
use crate::schema::{Registry, TableSchema};
use crate::snapshot::{FileEntry, Manifest, directory_entry};
use crate::table_io::{self, TableWriter};

const DAY_MICROS: i64 = 86_400_000_000;

/// The index `nights.json` beside the nights: each night's directory, as_of and snapshot id.
pub const INDEX: &str = "nights.json";

#[derive(Debug, Clone, Serialize)]
pub struct Night {
    pub dir: String,
    pub as_of: String,
    pub snapshot_id: String,
    /// Rows each append-only source gained this night (its new partition).
    pub new_rows: BTreeMap<String, u64>,
}

/// Write `nights` nightly snapshots of the corpus at `corpus` into `out` (`night-01`, …,
/// `partitions/`, `nights.json`), replacing earlier ones there. The last night's as_of is the
/// corpus'.
pub fn write_nights(corpus: &Path, out: &Path, nights: u32) -> Result<Vec<Night>> {
    if nights == 0 {
        return Err(Error::usage("--nights must be at least 1"));
    }
    let reg = Registry::embedded()?;
    let m = Manifest::read(corpus)?;
    let last = m.as_of_micros()?;
    let as_of: Vec<i64> = (1..=nights as i64)
        .map(|k| last - (nights as i64 - k) * DAY_MICROS)
        .collect();
    let staging = out.join(".nights-staging");
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(|e| Error::io("cannot clear", &staging, e))?;
    }
    let result = write_into(corpus, &m, reg, &as_of, &staging);
    let written = match result {
        Ok(w) => w,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    // Into place: the nights and their partitions, then the index last.
    let mut names: Vec<String> = (1..=nights).map(night_dir).collect();
    names.push("partitions".into());
    for entry in std::fs::read_dir(out).map_err(|e| Error::io("cannot read", out, e))? {
        let name = entry
            .map_err(|e| Error::io("cannot read", out, e))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.starts_with("night-") || name == "partitions" || name == INDEX {
            let p = out.join(&name);
            let removed = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            removed.map_err(|e| Error::io("cannot remove the earlier nights", &p, e))?;
        }
    }
    for name in &names {
        std::fs::rename(staging.join(name), out.join(name))
            .map_err(|e| Error::io("cannot move the nights into place", out, e))?;
    }
    let json = serde_json::to_string_pretty(&written).unwrap_or_default() + "\n";
    table_io::write_atomic(&out.join(INDEX), json.as_bytes())?;
    std::fs::remove_dir_all(&staging).map_err(|e| Error::io("cannot remove", &staging, e))?;
    Ok(written)
}

fn night_dir(k: u32) -> String {
    format!("night-{k:02}")
}

fn write_into(
    corpus: &Path,
    m: &Manifest,
    reg: &Registry,
    as_of: &[i64],
    staging: &Path,
) -> Result<Vec<Night>> {
    let nights = as_of.len();
    // Per append-only table, its partitions in night order; per other table, its file. Their
    // hashes are known (written here, or in the corpus' manifest), so no file is read again.
    let mut partitioned: BTreeMap<String, Vec<FileEntry>> = BTreeMap::new();
    let mut whole: BTreeMap<String, PathBuf> = BTreeMap::new();
    for (name, entry) in &m.tables {
        let path = corpus.join(&entry.path);
        match reg.table(name) {
            Some(t) if t.append_only && t.loaded_at_field.is_some() => {
                let store = staging.join("partitions").join(name);
                let parts = cut(t, &path, as_of, &store)?;
                partitioned.insert(name.clone(), parts);
            }
            _ => {
                whole.insert(name.clone(), path);
            }
        }
    }
    let mut out = Vec::with_capacity(nights);
    for (k, &at) in as_of.iter().enumerate() {
        let dir = staging.join(night_dir(k as u32 + 1));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("cannot create", &dir, e))?;
        let mut tables = BTreeMap::new();
        let mut new_rows = BTreeMap::new();
        for (name, file) in &whole {
            let entry = &m.tables[name];
            link(file, &dir.join(&entry.path))?;
            tables.insert(name.clone(), entry.clone());
        }
        for (name, parts) in &partitioned {
            let table_dir = dir.join(name);
            for part in &parts[..=k] {
                let from = staging.join("partitions").join(name).join(&part.path);
                link(&from, &table_dir.join(&part.path))?;
            }
            new_rows.insert(name.clone(), if k == 0 { 0 } else { parts[k].rows });
            tables.insert(
                name.clone(),
                directory_entry(name.clone(), parts[..=k].to_vec()),
            );
        }
        let mut source = m.source.clone();
        if let Some(o) = source.as_object_mut() {
            o.insert(
                "night".into(),
                serde_json::json!({
                    "night": k + 1,
                    "of": nights,
                    "corpus": m.snapshot_id,
                }),
            );
        }
        let manifest = Manifest::new(at, at, source, tables, BTreeMap::new());
        manifest.write(&dir)?;
        out.push(Night {
            dir: night_dir(k as u32 + 1),
            as_of: format_ts(at),
            snapshot_id: manifest.snapshot_id.clone(),
            new_rows,
        });
    }
    Ok(out)
}

/// Hard-link `from` as `to` (copy where links are not possible), creating `to`'s directory.
fn link(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| Error::io("cannot create", parent, e))?;
    }
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to).map_err(|e| Error::io("cannot copy", from, e))?;
    }
    Ok(())
}

/// Cut the append-only table `t` stored at `path` into one partition per night under `store`:
/// partition k holds the rows loaded after night k − 1's as_of and at or before night k's
/// (partition 1 also every earlier row, and rows without a load time). Returns each
/// partition's entry (path inside the table's directory, rows, sha256); an empty partition is
/// still written (with the table's schema), so every night adds exactly one file.
fn cut(t: &TableSchema, path: &Path, as_of: &[i64], store: &Path) -> Result<Vec<FileEntry>> {
    let field = t.loaded_at_field.as_deref().unwrap_or_default();
    let plain = t.plain_columns();
    let rels: Vec<String> = as_of
        .iter()
        .map(|&at| format!("loaded_by={}/part-0.parquet", &format_ts(at)[..10]))
        .collect();
    let mut writers: Vec<TableWriter> = Vec::with_capacity(as_of.len());
    let schema = table_io::read_parquet_schema(path)?.0;
    for rel in &rels {
        let p = store.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io("cannot create", parent, e))?;
        }
        writers.push(TableWriter::create(&p, schema.clone(), &plain)?);
    }
    let what = || format!("table `{}`, column `{field}`", t.name);
    for b in table_io::batches(path, None)? {
        let b: RecordBatch = b?;
        let col = b
            .column_by_name(field)
            .ok_or_else(|| Error::data(format!("{}: no such column", what())).with_path(path))?;
        let loaded = arrow::compute::cast(col, &DataType::Timestamp(TimeUnit::Microsecond, None))
            .map_err(|e| Error::arrow(what(), e))?;
        let loaded = loaded.as_primitive::<TimestampMicrosecondType>();
        // The night each row first appears in (as_of.len() for rows after the last night).
        let night: Vec<usize> = (0..b.num_rows())
            .map(|i| {
                if loaded.is_null(i) {
                    0
                } else {
                    as_of.partition_point(|&at| at < loaded.value(i))
                }
            })
            .collect();
        for (k, w) in writers.iter_mut().enumerate() {
            let mask: BooleanArray = night.iter().map(|&n| Some(n == k)).collect();
            if mask.true_count() == 0 {
                continue;
            }
            let rows = arrow::compute::filter_record_batch(&b, &mask)
                .map_err(|e| Error::arrow(what(), e))?;
            w.write(&rows)?;
        }
    }
    let mut out = Vec::with_capacity(rels.len());
    for (rel, w) in rels.into_iter().zip(writers) {
        let written = w.finish()?;
        out.push(FileEntry {
            path: rel,
            rows: written.rows,
            sha256: written.sha256,
        });
    }
    Ok(out)
}
