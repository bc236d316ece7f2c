//! Snapshots and warehouses on an object store: `--snapshot` / `--warehouse s3://bucket/prefix`
//! (SPEC §1–2; `--features distributed`).
//!
//! Both engines read and write local files. A command given an `s3://` location works on a
//! local mirror of it, made when its paths are resolved ([`local`]), and a warehouse the command
//! changed is sent back when it succeeds ([`finish`]); a command that fails sends nothing.
//!
//! A warehouse on an object store keeps the local design's promises without links or renames:
//!
//! ```text
//! s3://bucket/prefix/_head.json        the one commit point: every file of the warehouse
//!                                      (versions, logs, quarantine, closed months, close
//!                                      state) by relative path, with its sha256
//! s3://bucket/prefix/objects/<sha256>  file contents, immutable, named by their hash
//! ```
//!
//! A command's changes are new objects, uploaded first; then `_head.json` is replaced with a
//! conditional put (if-match on the head the command started from, or if-none-match for the
//! first). A run that fails or is killed before that put changes nothing anyone reads; a run
//! that lost the race to another writer publishes nothing and says so. Every object is checked
//! against its sha256 when it is fetched. Before the head moves, the logs' promise is checked:
//! every log file of the old head is in the new one with the same bytes.
//!
//! A snapshot on an object store is a plain copy of a snapshot directory (`manifest.json` and
//! its tables, e.g. uploaded with `aws s3 sync`); it is fetched whole into a cache keyed by its
//! listing and verified against its manifest like any snapshot.
//!
//! Credentials, region and endpoint come from the standard AWS environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`). Mirrors and fetched objects live under `GTMOS_CACHE_DIR` (default
//! `$XDG_CACHE_HOME/gtmos` or `~/.cache/gtmos`).

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

#[cfg(feature = "distributed")]
mod s3;

/// What a location names, for messages and for what is done with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Snapshot,
    Warehouse,
}

/// `value` when it is a local path; for an `s3://` URL, the local mirror this process works on
/// (fetched once per process). Other URL schemes are refused.
pub fn local(value: PathBuf, kind: Kind) -> Result<PathBuf> {
    let text = value.to_string_lossy();
    let Some((scheme, _)) = text.split_once("://") else {
        return Ok(value);
    };
    if !scheme.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Ok(value);
    }
    if scheme != "s3" {
        return Err(Error::usage_hint(
            format!("{text}: `{scheme}://` locations are not supported"),
            "give a local directory or s3://bucket/prefix",
        ));
    }
    remote(&text, kind)
}

#[cfg(feature = "distributed")]
fn remote(url: &str, kind: Kind) -> Result<PathBuf> {
    s3::open(url, kind)
}

#[cfg(not(feature = "distributed"))]
fn remote(url: &str, _kind: Kind) -> Result<PathBuf> {
    Err(Error::usage_hint(
        format!("{url}: this gtmos was built without object-store support"),
        "build it with `cargo build --release --features distributed`",
    ))
}

/// After a command succeeded: send every warehouse it changed back to its object store, then
/// remove the mirrors. Nothing to do without `s3://` locations.
pub fn finish() -> Result<()> {
    #[cfg(feature = "distributed")]
    return s3::finish();
    #[cfg(not(feature = "distributed"))]
    Ok(())
}

/// After a command failed: remove the mirrors, sending nothing.
pub fn discard() {
    #[cfg(feature = "distributed")]
    s3::discard();
}

/// How to name a snapshot or warehouse directory to a reader (run log, report): the `s3://`
/// location it is this process's copy of, or the path itself.
pub fn display(path: &Path) -> String {
    #[cfg(feature = "distributed")]
    if let Some(url) = s3::origin(path) {
        return url;
    }
    path.display().to_string()
}

/// Where mirrors and fetched objects are kept.
pub fn cache_dir() -> PathBuf {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    env("GTMOS_CACHE_DIR")
        .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("gtmos")))
        .or_else(|| env("HOME").map(|d| d.join(".cache").join("gtmos")))
        .unwrap_or_else(|| std::env::temp_dir().join("gtmos-cache"))
}

/// Every regular file under `root`, by path relative to it (`/`-separated), sorted; entries
/// whose name starts with `.` at the top level (staging, lock, temporary links) and symbolic
/// links are left out.
pub fn files(root: &Path) -> Result<Vec<String>> {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) -> Result<()> {
        let entries = std::fs::read_dir(dir).map_err(|e| Error::io("cannot read", dir, e))?;
        for e in entries {
            let e = e.map_err(|err| Error::io("cannot read", dir, err))?;
            let name = e.file_name().to_string_lossy().to_string();
            if rel.is_empty() && name.starts_with('.') {
                continue;
            }
            let path = e.path();
            let meta = std::fs::symlink_metadata(&path)
                .map_err(|err| Error::io("cannot read", &path, err))?;
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if meta.is_dir() {
                walk(&path, &r, out)?;
            } else if meta.is_file() {
                out.push(r);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(root, "", &mut out)?;
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_pass_and_unknown_schemes_are_refused() {
        let p = PathBuf::from("data/warehouse");
        assert_eq!(local(p.clone(), Kind::Warehouse).unwrap(), p);
        let e = local(PathBuf::from("gs://bucket/wh"), Kind::Warehouse).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("gs://"), "{e}");
    }

    #[test]
    fn files_are_listed_relative_and_sorted_without_dot_entries_or_links() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("versions/r1")).unwrap();
        std::fs::create_dir_all(d.join(".staging/r2")).unwrap();
        std::fs::write(d.join("versions/r1/b.parquet"), b"b").unwrap();
        std::fs::write(d.join("versions/r1/a.parquet"), b"a").unwrap();
        std::fs::write(d.join(".staging/r2/x"), b"x").unwrap();
        std::fs::write(d.join(".lock"), b"").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("versions/r1", d.join("published")).unwrap();
        assert_eq!(
            files(d).unwrap(),
            ["versions/r1/a.parquet", "versions/r1/b.parquet"]
        );
    }
}
