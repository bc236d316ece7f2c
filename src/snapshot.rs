//! Snapshots (SPEC §3): a directory of Parquet tables plus `manifest.json`.
//!
//! This module owns the manifest format, the one input-hashing function ([`inputs_hash`]),
//! and opening a snapshot: every required table of the [`Registry`] must be present with every
//! declared column of a compatible type, or opening fails naming the table and column (exit 2).
//! It hands the next stage a [`Snapshot`] whose tables can be read cast to the registry types.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::compute::cast;
use arrow::datatypes::SchemaRef;
use serde::{Deserialize, Serialize};

use crate::calendar::{format_ts, parse_ts};
use crate::error::{Error, Result};
use crate::schema::{Registry, SCHEMA_VERSION, TableSchema};
use crate::table_io::{self, sha256_hex};

pub const MANIFEST: &str = "manifest.json";

/// One table's entry in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableEntry {
    /// Path relative to the snapshot directory: a Parquet file or a directory of them.
    pub path: String,
    pub rows: u64,
    /// sha256 of the file's bytes; for a directory, of its files' `name\tsha256\n` lines in name order.
    pub sha256: String,
    /// For a directory, each of its files (a partition), in name order: which partitions a later
    /// snapshot shares, adds or changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileEntry>,
}

/// One file of a table stored as a directory of Parquet files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path relative to the table's directory, with `/` separators.
    pub path: String,
    pub rows: u64,
    /// sha256 of the file's bytes.
    pub sha256: String,
}

/// `manifest.json`. Keys serialise in a fixed order so the same snapshot gives the same bytes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub schema_version: u32,
    pub snapshot_id: String,
    /// The snapshot's logical "now" (RFC 3339, UTC): staleness, freshness and future-dated checks use it.
    pub as_of: String,
    pub created_at: String,
    /// Where the data came from; for synthetic corpora the generator and every parameter.
    pub source: serde_json::Value,
    pub tables: BTreeMap<String, TableEntry>,
    /// Files beside the tables that are not source tables (a synthetic corpus' `oracle/`), with sha256.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extras: BTreeMap<String, String>,
    /// sha256 of this manifest with `digest` empty: detects hand edits.
    #[serde(default)]
    pub digest: String,
}

/// sha256 over the manifest's table hashes in table-name order (`name\tsha256\n` lines):
/// the `inputs_hash` of every run on the snapshot.
pub fn inputs_hash(tables: &BTreeMap<String, TableEntry>) -> String {
    let mut s = String::new();
    for (name, t) in tables {
        s.push_str(name);
        s.push('\t');
        s.push_str(&t.sha256);
        s.push('\n');
    }
    sha256_hex(s.as_bytes())
}

impl Manifest {
    /// A manifest for `tables` with a content-derived snapshot_id and its digest set.
    pub fn new(
        as_of_micros: i64,
        created_at_micros: i64,
        source: serde_json::Value,
        tables: BTreeMap<String, TableEntry>,
        extras: BTreeMap<String, String>,
    ) -> Manifest {
        let as_of = format_ts(as_of_micros);
        let id_hash = sha256_hex(format!("{}\n{}", inputs_hash(&tables), as_of).as_bytes());
        let mut m = Manifest {
            schema_version: SCHEMA_VERSION,
            snapshot_id: format!("snap-{}", &id_hash[..16]),
            as_of,
            created_at: format_ts(created_at_micros),
            source,
            tables,
            extras,
            digest: String::new(),
        };
        m.digest = m.compute_digest();
        m
    }

    fn compute_digest(&self) -> String {
        let mut copy = self.clone();
        copy.digest.clear();
        sha256_hex(copy.to_json().as_bytes())
    }

    /// Whether the manifest is exactly as gtmos wrote it.
    pub fn digest_ok(&self) -> bool {
        !self.digest.is_empty() && self.digest == self.compute_digest()
    }

    pub fn to_json(&self) -> String {
        // Serialising a struct of strings, numbers and maps cannot fail.
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }

    pub fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::data("no manifest.json: this is not a gtmos snapshot")
                    .with_path(dir)
                    .with_hint("generate one with `gtmos synth`, or describe existing Parquet files with `gtmos snapshot init`"));
            }
            Err(e) => return Err(Error::io("cannot read", &path, e)),
        };
        let m: Manifest = serde_json::from_str(&text)
            .map_err(|e| Error::data(format!("invalid manifest: {e}")).with_path(&path))?;
        if m.schema_version != SCHEMA_VERSION {
            return Err(Error::data(format!(
                "schema_version {} is not supported (this gtmos reads schema_version {SCHEMA_VERSION})",
                m.schema_version
            ))
            .with_path(&path));
        }
        parse_ts(&m.as_of).map_err(|_| {
            Error::data(format!("as_of `{}` is not an RFC 3339 timestamp", m.as_of))
                .with_path(&path)
        })?;
        Ok(m)
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        table_io::write_atomic(&dir.join(MANIFEST), self.to_json().as_bytes()).map(|_| ())
    }

    pub fn as_of_micros(&self) -> Result<i64> {
        parse_ts(&self.as_of)
    }

    pub fn inputs_hash(&self) -> String {
        inputs_hash(&self.tables)
    }
}

/// The manifest entry of a table stored at `path` (a file or a directory of Parquet files),
/// recorded under `rel`: rows, sha256 and, for a directory, each file's.
pub fn describe_table_path(path: &Path, rel: String) -> Result<TableEntry> {
    let found = parquet_files(path)?;
    if path.is_file() {
        let (_, rows) = table_io::read_parquet_schema(path)?;
        return Ok(TableEntry {
            path: rel,
            rows,
            sha256: table_io::sha256_file(path)?,
            files: Vec::new(),
        });
    }
    let mut files = Vec::with_capacity(found.len());
    for f in &found {
        files.push(FileEntry {
            path: f
                .strip_prefix(path)
                .unwrap_or(f)
                .to_string_lossy()
                .replace('\\', "/"),
            rows: table_io::read_parquet_schema(f)?.1,
            sha256: table_io::sha256_file(f)?,
        });
    }
    Ok(directory_entry(rel, files))
}

/// The manifest entry of a table stored as the directory `rel` holding `files` (in name
/// order): its rows, and the sha256 of the files' `path\tsha256\n` lines.
pub fn directory_entry(rel: String, files: Vec<FileEntry>) -> TableEntry {
    let lines: String = files
        .iter()
        .map(|f| format!("{}\t{}\n", f.path, f.sha256))
        .collect();
    TableEntry {
        path: rel,
        rows: files.iter().map(|f| f.rows).sum(),
        sha256: sha256_hex(lines.as_bytes()),
        files,
    }
}

/// How the files of a partitioned table on disk (`got`) differ from its manifest entry: each
/// partition added, missing or changed, by name.
fn file_differences(name: &str, entry: &TableEntry, got: &TableEntry) -> Vec<String> {
    let listed: BTreeMap<&str, &FileEntry> =
        entry.files.iter().map(|f| (f.path.as_str(), f)).collect();
    let found: BTreeMap<&str, &FileEntry> =
        got.files.iter().map(|f| (f.path.as_str(), f)).collect();
    let mut out = Vec::new();
    for (path, f) in &found {
        match listed.get(path) {
            None => out.push(format!(
                "table `{name}` ({}): partition {path} is on disk but not in the manifest",
                entry.path
            )),
            Some(l) if l.sha256 != f.sha256 => out.push(format!(
                "table `{name}` ({}): partition {path}: sha256 {} on disk, {} in the manifest",
                entry.path, f.sha256, l.sha256
            )),
            Some(l) if l.rows != f.rows => out.push(format!(
                "table `{name}` ({}): partition {path}: {} rows on disk, {} in the manifest",
                entry.path, f.rows, l.rows
            )),
            Some(_) => {}
        }
    }
    for path in listed.keys().filter(|p| !found.contains_key(*p)) {
        out.push(format!(
            "table `{name}` ({}): partition {path} is in the manifest but not on disk",
            entry.path
        ));
    }
    out
}

/// The Parquet files of a table path: the file itself, or a directory's `*.parquet` files in name order.
pub fn parquet_files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        return Err(Error::data("table file is missing").with_path(path));
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).map_err(|e| Error::io("cannot read directory", &d, e))? {
            let p = e
                .map_err(|e| Error::io("cannot read directory", &d, e))?
                .path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().and_then(|x| x.to_str()) == Some("parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(Error::data("table directory holds no .parquet files").with_path(path));
    }
    Ok(out)
}

/// One problem found while checking a snapshot against the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub table: String,
    pub column: Option<String>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.column {
            Some(c) => write!(f, "table `{}`, column `{c}`: {}", self.table, self.message),
            None => write!(f, "table `{}`: {}", self.table, self.message),
        }
    }
}

/// An opened, schema-checked snapshot.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub dir: PathBuf,
    pub manifest: Manifest,
    registry: Registry,
}

impl Snapshot {
    /// Open `dir`: read the manifest and check every required table and column against the
    /// registry. All problems are reported at once, each naming its table and column.
    pub fn open(dir: &Path, registry: &Registry) -> Result<Snapshot> {
        let manifest = Manifest::read(dir)?;
        let mut problems = Vec::new();
        for t in registry.tables() {
            match manifest.tables.get(&t.name) {
                None if t.required => problems.push(Problem {
                    table: t.name.clone(),
                    column: None,
                    message: "required table is missing from manifest.json".into(),
                }),
                None => {}
                Some(entry) => check_table(dir, t, entry, &mut problems)?,
            }
        }
        if !problems.is_empty() {
            let first = &problems[0];
            let mut msg = format!("snapshot does not match schema v{SCHEMA_VERSION}: {first}");
            for p in &problems[1..] {
                msg.push_str(&format!("\n  {p}"));
            }
            let mut e = Error::data(msg).with_path(dir).with_table(&first.table);
            if let Some(c) = &first.column {
                e = e.with_column(c);
            }
            return Err(e);
        }
        Ok(Snapshot {
            dir: dir.to_path_buf(),
            manifest,
            registry: registry.clone(),
        })
    }

    /// Read `table` from `path` instead (a file or directory of Parquet files), checked against
    /// the registry; the manifest entry (and so the inputs hash) follows.
    pub fn override_table(&mut self, table: &str, path: &Path) -> Result<()> {
        let t = self
            .registry
            .table(table)
            .ok_or_else(|| Error::usage(format!("`{table}` is not a source table")))?
            .clone();
        let abs = std::fs::canonicalize(path).map_err(|e| Error::io("cannot read", path, e))?;
        let entry = TableEntry {
            path: abs.to_string_lossy().into_owned(),
            rows: 0,
            sha256: String::new(),
            files: Vec::new(),
        };
        let mut problems = Vec::new();
        check_table(Path::new("/"), &t, &entry, &mut problems)?;
        if let Some(p) = problems.first() {
            return Err(Error::data(p.to_string()).with_path(path).with_table(table));
        }
        let entry = describe_table_path(&abs, abs.to_string_lossy().into_owned())?;
        self.manifest.tables.insert(table.to_string(), entry);
        Ok(())
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn has_table(&self, name: &str) -> bool {
        self.manifest.tables.contains_key(name)
    }

    pub fn table_path(&self, name: &str) -> Result<PathBuf> {
        let e = self.manifest.tables.get(name).ok_or_else(|| {
            Error::data("table is not in this snapshot")
                .with_path(&self.dir)
                .with_table(name)
        })?;
        Ok(self.dir.join(&e.path))
    }

    /// Recompute every table's sha256 and compare with the manifest. Returns the tables that differ.
    /// Check every table's bytes and row count against the manifest before anything reads it
    /// (files in parallel): a table changed after its manifest was written would otherwise be
    /// built under the old inputs hash — the same build_id for other data. Bad input (exit 2)
    /// naming each table and both values.
    pub fn verify(&self) -> Result<()> {
        use rayon::prelude::*;
        let found: Vec<(String, Result<TableEntry>)> = self
            .manifest
            .tables
            .par_iter()
            .map(|(name, entry)| {
                (
                    name.clone(),
                    describe_table_path(&self.dir.join(&entry.path), entry.path.clone()),
                )
            })
            .collect();
        let mut problems = Vec::new();
        for (name, got) in found {
            let entry = &self.manifest.tables[&name];
            let got = got?;
            let (rows, sha) = (got.rows, got.sha256.clone());
            if !entry.files.is_empty() && got.files != entry.files {
                problems.extend(file_differences(&name, entry, &got));
            } else if sha != entry.sha256 {
                problems.push(format!(
                    "table `{name}` ({}): sha256 {sha} on disk, {} in the manifest",
                    entry.path, entry.sha256
                ));
            } else if rows != entry.rows {
                problems.push(format!(
                    "table `{name}` ({}): {rows} rows on disk, {} in the manifest",
                    entry.path, entry.rows
                ));
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        Err(Error::data(format!(
            "the snapshot's files do not match its manifest:\n  {}",
            problems.join("\n  ")
        ))
        .with_path(&self.dir.join(MANIFEST))
        .with_hint(
            "a snapshot is immutable once its manifest is written: restore the files, or \
             describe the new export with `gtmos snapshot init`",
        ))
    }

    pub fn verify_hashes(&self) -> Result<Vec<String>> {
        let mut bad = Vec::new();
        for (name, entry) in &self.manifest.tables {
            let got = describe_table_path(&self.dir.join(&entry.path), entry.path.clone())?;
            if got.sha256 != entry.sha256 {
                bad.push(name.clone());
            }
        }
        Ok(bad)
    }

    /// All rows of a table, cast to the registry's types, in registry column order. Extra
    /// columns a real export may carry are not part of the contract and are not read.
    pub fn read(&self, name: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let t = self.registry.expect_table(name)?;
        let mut out = Vec::new();
        let target = t.arrow_schema();
        for f in parquet_files(&self.table_path(name)?)? {
            let (_, batches) = table_io::read_parquet(&f)?;
            for b in batches {
                out.push(conform(&f, t, &b)?);
            }
        }
        Ok((target, out))
    }
}

fn check_table(
    dir: &Path,
    t: &TableSchema,
    entry: &TableEntry,
    problems: &mut Vec<Problem>,
) -> Result<()> {
    let path = dir.join(&entry.path);
    let files = match parquet_files(&path) {
        Ok(f) => f,
        Err(_) => {
            problems.push(Problem {
                table: t.name.clone(),
                column: None,
                message: format!("file {} is missing", path.display()),
            });
            return Ok(());
        }
    };
    for f in files {
        // A corrupt file is an error on its own, naming the file.
        let (schema, _) = table_io::read_parquet_schema(&f)?;
        // Two columns of one name: which one a reader takes is arbitrary, so neither is.
        let mut seen = std::collections::BTreeSet::new();
        for field in schema.fields() {
            if !seen.insert(field.name().as_str()) {
                problems.push(Problem {
                    table: t.name.clone(),
                    column: Some(field.name().clone()),
                    message: format!("appears twice in {}", f.display()),
                });
            }
        }
        for c in &t.columns {
            match schema.field_with_name(&c.name) {
                Err(_) => problems.push(Problem {
                    table: t.name.clone(),
                    column: Some(c.name.clone()),
                    message: format!("column is missing (expected {})", c.column_type.sql_name()),
                }),
                Ok(field) if !c.column_type.accepts(field.data_type()) => problems.push(Problem {
                    table: t.name.clone(),
                    column: Some(c.name.clone()),
                    message: format!(
                        "has type {} but must be {}",
                        field.data_type(),
                        c.column_type.sql_name()
                    ),
                }),
                Ok(_) => {}
            }
        }
    }
    Ok(())
}

/// Cast a batch read from `file` to the registry's column order and types.
fn conform(file: &Path, t: &TableSchema, b: &RecordBatch) -> Result<RecordBatch> {
    let schema = t.arrow_schema();
    let mut cols = Vec::with_capacity(schema.fields().len());
    for (i, field) in schema.fields().iter().enumerate() {
        let src = b.column_by_name(field.name()).ok_or_else(|| {
            Error::data("column is missing")
                .with_path(file)
                .with_table(&t.name)
                .with_column(field.name())
        })?;
        let col = if src.data_type() == field.data_type() {
            src.clone()
        } else {
            cast(src, field.data_type()).map_err(|e| {
                Error::data(format!(
                    "cannot be read as {}: {e}",
                    t.columns[i].column_type.sql_name()
                ))
                .with_path(file)
                .with_table(&t.name)
                .with_column(field.name())
            })?
        };
        cols.push(col);
    }
    RecordBatch::try_new(schema, cols)
        .map_err(|e| Error::arrow(format!("{}: table `{}`", file.display(), t.name), e))
}
