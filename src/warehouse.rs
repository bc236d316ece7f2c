//! The warehouse (SPEC §3): where a build's outputs live, and the publish state.
//!
//! ```text
//! <warehouse>/published -> versions/<run_id>   the one commit point (a symbolic link)
//! <warehouse>/versions/<run_id>/<model>.parquet  a published version: immutable files
//! <warehouse>/versions/<run_id>/_state.json    per table: build_id, run, rows, sha256, stale + reason
//! <warehouse>/quarantine/<table>/run=<run_id>.parquet
//! <warehouse>/dead_letter/<table>/run=<run_id>.parquet
//! <warehouse>/logs/<log>/…                     append-only (see `logs`)
//! <warehouse>/.staging/<run_id>/               a run's work in progress
//! ```
//!
//! A run builds into its staging directory, then assembles the next version beside the
//! current one: every current file hard-linked (a blocked table keeps its last good version,
//! a table the run did not build stays as it is), the tables it built moved in, the views and
//! `_state.json` written, the decision proposals read from it and logged. Only then does
//! `published` switch to it — one rename of a symbolic link, atomic on POSIX. A reader (every
//! command, through [`Warehouse::new`]) resolves the link once, so it sees one whole version,
//! the old or the new, never a mix; a run that fails or is killed before the switch changes
//! nothing anyone reads. The next run, holding the lock, removes what a killed run left (its
//! staging directory and unswitched version) and every version but the current and the one
//! before it (kept for readers still inside it).
//!
//! On an object store, which has neither links nor rename, a command works on a local mirror
//! of this layout and the commit point is one small object, `_head.json`, naming every file's
//! contents, written last with a conditional put ([`crate::store`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::table_io;

pub const STATE_FILE: &str = "_state.json";
pub const CLOSE_FILE: &str = "close_state.json";

/// The close: the last month frozen, every close that advanced it and every reopening.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CloseState {
    /// First day of the last closed month (`YYYY-MM-01`).
    pub closed_through: Option<String>,
    pub history: Vec<CloseEvent>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reopened: Vec<ReopenEvent>,
}

/// `gtmos reopen`: months taken out of the close, who did it and why, and where their frozen
/// files were moved (kept, never deleted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReopenEvent {
    pub run_id: String,
    pub at: String,
    pub by: String,
    pub reason: String,
    /// The first reopened month and the close's end before (`YYYY-MM-01`).
    pub from: String,
    pub was_closed_through: String,
    /// Frozen files moved aside (`<model>/month=YYYY-MM.parquet` → path under `reopened/`),
    /// with the sha256 they were frozen with.
    pub files: BTreeMap<String, String>,
    pub moved_to: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloseEvent {
    pub run_id: String,
    pub build_id: String,
    pub closed_through: String,
    /// The frozen files written by this close, with their sha256.
    pub files: BTreeMap<String, String>,
}

/// The publish state of one table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableState {
    /// build_id of the version in `published/` (None: never published).
    pub build_id: Option<String>,
    /// The run that published it.
    pub published_by_run: Option<String>,
    pub snapshot_id: Option<String>,
    pub rows: u64,
    pub sha256: Option<String>,
    /// True when the latest run could not republish it; the version in place is the last good one.
    pub stale: bool,
    pub stale_reason: Option<String>,
    pub stale_since_run: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PublishState {
    pub tables: BTreeMap<String, TableState>,
}

/// The commit point: a symbolic link to the published version.
pub const PUBLISHED: &str = "published";
const VERSIONS: &str = "versions";

#[derive(Debug, Clone)]
pub struct Warehouse {
    pub root: PathBuf,
    /// The published version this handle reads (resolved once, at [`Warehouse::new`]).
    published: PathBuf,
}

impl Warehouse {
    /// A handle on the version published now: every read through it sees that one version.
    pub fn new(root: &Path) -> Warehouse {
        let link = root.join(PUBLISHED);
        let published = match std::fs::read_link(&link) {
            Ok(target) => root.join(target),
            // A warehouse from before versions (a plain directory), or none yet.
            Err(_) => link,
        };
        Warehouse {
            root: root.to_path_buf(),
            published,
        }
    }

    fn versions_dir(&self) -> PathBuf {
        self.root.join(VERSIONS)
    }

    /// Under the lock, before a run: turn a plain `published/` directory into the first
    /// version, and remove what earlier runs left — every staging directory (no other run
    /// holds the lock) and every version but the published one and the one before it.
    pub fn prepare(&self, run_id: &str) -> Result<Warehouse> {
        let link = self.root.join(PUBLISHED);
        let versions = self.versions_dir();
        std::fs::create_dir_all(&versions).map_err(|e| Error::io("cannot create", &versions, e))?;
        let is_dir = std::fs::symlink_metadata(&link).is_ok_and(|m| m.is_dir());
        if is_dir {
            let first = format!("legacy-{run_id}");
            std::fs::rename(&link, versions.join(&first))
                .map_err(|e| Error::io("cannot move into versions/", &link, e))?;
            symlink(&Path::new(VERSIONS).join(&first), &link)?;
        }
        let _ = std::fs::remove_dir_all(self.root.join(".staging"));
        let current = Warehouse::new(&self.root);
        let current_name = current
            .published
            .file_name()
            .map(|n| n.to_string_lossy().to_string());
        let mut names: Vec<String> = std::fs::read_dir(&versions)
            .map_err(|e| Error::io("cannot read", &versions, e))?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        let previous = current_name
            .as_ref()
            .and_then(|c| names.iter().rfind(|n| n.as_str() < c.as_str()).cloned());
        for n in names {
            if Some(&n) != current_name.as_ref() && Some(&n) != previous.as_ref() {
                let _ = std::fs::remove_dir_all(versions.join(&n));
            }
        }
        Ok(current)
    }

    /// The next version, `versions/<run_id>/`, holding every file of this one (hard links:
    /// no bytes are copied). Writes through the returned handle go there, unseen until
    /// [`Warehouse::commit`].
    pub fn begin(&self, run_id: &str) -> Result<Warehouse> {
        let next = self.versions_dir().join(run_id);
        let _ = std::fs::remove_dir_all(&next);
        std::fs::create_dir_all(&next).map_err(|e| Error::io("cannot create", &next, e))?;
        if let Ok(entries) = std::fs::read_dir(&self.published) {
            for e in entries.flatten() {
                let name = e.file_name();
                if name.to_string_lossy().starts_with('.') {
                    continue;
                }
                let to = next.join(&name);
                std::fs::hard_link(e.path(), &to)
                    .or_else(|_| std::fs::copy(e.path(), &to).map(|_| ()))
                    .map_err(|err| Error::io("cannot carry over", &e.path(), err))?;
            }
        }
        Ok(Warehouse {
            root: self.root.clone(),
            published: next,
        })
    }

    /// Make `next` (from [`Warehouse::begin`]) the published version: its files synced, then
    /// one atomic rename of a new link over `published`.
    pub fn commit(&self, next: &Warehouse) -> Result<()> {
        let name = next
            .published
            .file_name()
            .ok_or_else(|| Error::Internal("a version without a name".into()))?;
        if let Ok(d) = std::fs::File::open(&next.published) {
            let _ = d.sync_all();
        }
        let tmp = self
            .root
            .join(format!(".{PUBLISHED}.{}", name.to_string_lossy()));
        let _ = std::fs::remove_file(&tmp);
        symlink(&Path::new(VERSIONS).join(name), &tmp)?;
        let link = self.root.join(PUBLISHED);
        std::fs::rename(&tmp, &link).map_err(|e| Error::io("cannot switch", &link, e))?;
        if let Ok(d) = std::fs::File::open(&self.root) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// The warehouse's run lock: builds, closes and reopenings are serialised by it. Taken or
    /// refused at once (a build may run for minutes); released when dropped.
    pub fn lock(&self) -> Result<std::fs::File> {
        let root = &self.root;
        let f = table_io::lock_file(&root.join(".lock"))?;
        match f.try_lock() {
            Ok(()) => Ok(f),
            Err(_) => Err(Error::usage_hint(
                format!("another gtmos run holds the warehouse {}", root.display()),
                "wait for it to finish; runs on one warehouse are serialised",
            )),
        }
    }

    /// The directory of the version this handle reads.
    pub fn published_dir(&self) -> PathBuf {
        self.published.clone()
    }

    pub fn published_file(&self, table: &str) -> PathBuf {
        self.published_dir().join(format!("{table}.parquet"))
    }

    pub fn quarantine_file(&self, table: &str, run_id: &str) -> PathBuf {
        self.root
            .join("quarantine")
            .join(table)
            .join(format!("run={run_id}.parquet"))
    }

    pub fn dead_letter_file(&self, table: &str, run_id: &str) -> PathBuf {
        self.root
            .join("dead_letter")
            .join(table)
            .join(format!("run={run_id}.parquet"))
    }

    pub fn closed_dir(&self) -> PathBuf {
        self.root.join("closed_periods")
    }

    /// The frozen rows of one month of a model.
    pub fn closed_file(&self, model: &str, month: &str) -> PathBuf {
        self.closed_dir()
            .join(model)
            .join(format!("month={}.parquet", &month[..7]))
    }

    pub fn close_state(&self) -> Result<CloseState> {
        let p = self.closed_dir().join(CLOSE_FILE);
        match std::fs::read_to_string(&p) {
            Ok(t) => serde_json::from_str(&t)
                .map_err(|e| Error::data(format!("invalid close state: {e}")).with_path(&p)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CloseState::default()),
            Err(e) => Err(Error::io("cannot read", &p, e)),
        }
    }

    /// Check a model's frozen months against the close history before anything reads them:
    /// every file a close wrote is there with the sha256 it was written with, and no other
    /// file is. A closed month never changes behind the books' back; a missing, altered or
    /// foreign file is bad input (exit 2) naming the file, its month and both hashes.
    pub fn verify_closed(&self, model: &str) -> Result<()> {
        let state = self.close_state()?;
        let prefix = format!("{model}/");
        let expected: BTreeMap<&str, &str> = state
            .history
            .iter()
            .flat_map(|e| e.files.iter())
            .filter_map(|(k, v)| k.strip_prefix(&prefix).map(|f| (f, v.as_str())))
            .collect();
        let dir = self.closed_dir().join(model);
        let month = |file: &str| {
            file.strip_prefix("month=")
                .and_then(|f| f.strip_suffix(".parquet"))
                .unwrap_or(file)
                .to_string()
        };
        let hint = "a closed month is immutable: restore the file from a backup, or reopen the \
                    month explicitly with `gtmos reopen` (logged) and close it again";
        for (file, want) in &expected {
            let path = dir.join(file);
            if !path.exists() {
                return Err(Error::data(format!(
                    "closed month {} of `{model}` is missing (it was frozen with sha256 {want})",
                    month(file)
                ))
                .with_path(&path)
                .with_hint(hint));
            }
            let got = table_io::sha256_file(&path)?;
            if &got != want {
                return Err(Error::data(format!(
                    "closed month {} of `{model}` was altered: sha256 {got}, frozen as {want}",
                    month(file)
                ))
                .with_path(&path)
                .with_hint(hint));
            }
        }
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.ends_with(".parquet") && !expected.contains_key(name.as_str()) {
                    return Err(Error::data(format!(
                        "`{name}` of `{model}` is in closed_periods/ but no close wrote it"
                    ))
                    .with_path(&e.path())
                    .with_hint(hint));
                }
            }
        }
        Ok(())
    }

    /// Reopen every closed month from `from` (its first day) on: their frozen files move to
    /// `closed_periods/reopened/<run_id>/`, their entries leave the close history's file lists
    /// (kept in the reopen event with their hashes), and the close ends the month before.
    pub fn reopen(
        &self,
        from: &str,
        by: &str,
        reason: &str,
        run_id: &str,
        at: &str,
    ) -> Result<ReopenEvent> {
        let mut state = self.close_state()?;
        let Some(through) = state.closed_through.clone() else {
            return Err(Error::usage(
                "no month is closed: there is nothing to reopen",
            ));
        };
        if from > through.as_str() {
            return Err(Error::usage(format!(
                "{} is not closed: the books are closed through {}",
                &from[..7],
                &through[..7]
            )));
        }
        let moved_to = self.closed_dir().join("reopened").join(run_id);
        let mut files = BTreeMap::new();
        for event in &mut state.history {
            let reopened: Vec<String> = event
                .files
                .keys()
                .filter(|k| {
                    k.rsplit_once("month=").is_some_and(|(_, m)| {
                        format!("{}-01", &m[..7.min(m.len())]).as_str() >= from
                    })
                })
                .cloned()
                .collect();
            for k in reopened {
                let sha = event.files.remove(&k).unwrap_or_default();
                let src = self.closed_dir().join(&k);
                let dst = moved_to.join(&k);
                if let Some(d) = dst.parent() {
                    std::fs::create_dir_all(d).map_err(|e| Error::io("cannot create", d, e))?;
                }
                if src.exists() {
                    std::fs::rename(&src, &dst).map_err(|e| Error::io("cannot move", &src, e))?;
                }
                files.insert(k, sha);
            }
        }
        let before = crate::calendar::Day::parse(from)?.add_months(-1);
        state.closed_through = state
            .history
            .iter()
            .any(|e| !e.files.is_empty())
            .then(|| before.iso());
        let event = ReopenEvent {
            run_id: run_id.to_string(),
            at: at.to_string(),
            by: by.to_string(),
            reason: reason.to_string(),
            from: from.to_string(),
            was_closed_through: through,
            files,
            moved_to: moved_to.display().to_string(),
        };
        state.reopened.push(event.clone());
        self.write_close_state(&state)?;
        Ok(event)
    }

    pub fn write_close_state(&self, s: &CloseState) -> Result<()> {
        let mut text = serde_json::to_string_pretty(s).unwrap_or_default();
        text.push('\n');
        table_io::write_atomic(&self.closed_dir().join(CLOSE_FILE), text.as_bytes()).map(|_| ())
    }

    pub fn staging(&self, run_id: &str) -> PathBuf {
        self.root.join(".staging").join(run_id)
    }

    pub fn state(&self) -> Result<PublishState> {
        let p = self.published_dir().join(STATE_FILE);
        match std::fs::read_to_string(&p) {
            Ok(t) => serde_json::from_str(&t)
                .map_err(|e| Error::data(format!("invalid publish state: {e}")).with_path(&p)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(PublishState::default()),
            Err(e) => Err(Error::io("cannot read", &p, e)),
        }
    }

    pub fn write_state(&self, s: &PublishState) -> Result<()> {
        let mut text = serde_json::to_string_pretty(s).unwrap_or_default();
        text.push('\n');
        table_io::write_atomic(&self.published_dir().join(STATE_FILE), text.as_bytes()).map(|_| ())
    }

    /// Move a staged table into this handle's version (a rename on one file system). Only on a
    /// handle from [`Warehouse::begin`]: the published version's files never change.
    pub fn publish(&self, staged: &Path, table: &str) -> Result<()> {
        let target = self.published_file(table);
        std::fs::create_dir_all(self.published_dir())
            .map_err(|e| Error::io("cannot create", &self.published_dir(), e))?;
        std::fs::rename(staged, &target).map_err(|e| Error::io("cannot publish", &target, e))
    }
}

/// A symbolic link at `link` to `target` (POSIX only).
#[cfg(unix)]
pub(crate) fn symlink(target: &Path, link: &Path) -> Result<()> {
    std::os::unix::fs::symlink(target, link).map_err(|e| Error::io("cannot link", link, e))
}

#[cfg(not(unix))]
pub(crate) fn symlink(_target: &Path, link: &Path) -> Result<()> {
    Err(Error::io(
        "cannot link (a published version is switched by a symbolic link: POSIX only)",
        link,
        std::io::Error::from(std::io::ErrorKind::Unsupported),
    ))
}
