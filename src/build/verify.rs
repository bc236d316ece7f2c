//! `--verify-full-refresh`: the proof that an incremental build publishes what a full refresh
//! would. Before the run changes anything, the warehouse as it stands (published version,
//! closed months, logs) is linked into a scratch warehouse in the run's staging directory; just
//! before the commit, the same snapshot and options are built there with `--full-refresh`, and
//! the two are compared: the tables published and blocked, every published table byte for
//! byte, the quarantined and dead-lettered rows, every test's outcome, and the decision-log rows
//! each run appended — run ids and timings aside. The first difference fails the run (exit 2)
//! naming the table, row and column; nothing is published.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::table_io::{json_rows, read_parquet_schema};
use crate::warehouse::{PUBLISHED, Warehouse};

use super::{BuildOptions, BuildReport};

/// Link the warehouse as it stands into `<staging>/full-refresh`, for the full refresh to start
/// from what this run starts from (hard links: nothing is copied, nothing shared is written —
/// every file there is replaced by rename, never rewritten).
pub(super) fn seed(warehouse: &Warehouse, staging: &Path) -> Result<PathBuf> {
    let scratch = staging.join("full-refresh");
    let base = scratch.join("versions").join("base");
    link_tree(&warehouse.published_dir(), &base)?;
    // Nothing of the incremental state: the full refresh computes everything.
    let _ = std::fs::remove_file(base.join(super::reuse::STEPS_FILE));
    std::os::unix::fs::symlink(Path::new("versions").join("base"), scratch.join(PUBLISHED))
        .map_err(|e| Error::io("cannot create", &scratch.join(PUBLISHED), e))?;
    for dir in ["closed_periods", "logs"] {
        link_tree(&warehouse.root.join(dir), &scratch.join(dir))?;
    }
    Ok(scratch)
}

/// Build the snapshot again into `scratch` as a full refresh and compare it with this run.
pub(super) fn against_full_refresh(
    opts: &BuildOptions,
    scratch: &Path,
    next: &Warehouse,
    report: &BuildReport,
) -> Result<()> {
    let full = super::build(&BuildOptions {
        warehouse: scratch.to_path_buf(),
        full_refresh: true,
        verify_full_refresh: false,
        ..opts.clone()
    })?;
    let differ = |what: String| -> Error {
        Error::data(format!(
            "--verify-full-refresh: {what}; the incremental build was not published"
        ))
        .with_hint("run with --full-refresh, and report the difference: it is a bug")
    };
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    if sorted(&report.published) != sorted(&full.published) {
        return Err(differ(format!(
            "it publishes {:?}, a full refresh {:?}",
            sorted(&report.published),
            sorted(&full.published)
        )));
    }
    if report.blocked != full.blocked {
        return Err(differ(format!(
            "it blocks {:?}, a full refresh {:?}",
            report.blocked, full.blocked
        )));
    }
    let other = Warehouse::new(scratch);
    for table in sorted(&report.published) {
        let (a, b) = (next.published_file(&table), other.published_file(&table));
        if std::fs::read(&a).ok() != std::fs::read(&b).ok() {
            let at = first_difference(&a, &b)?;
            return Err(differ(format!("table `{table}` differs{at}")).with_table(&table));
        }
    }
    let tests = |r: &BuildReport| -> Vec<String> {
        r.all_tests()
            .map(|t| {
                // Not the sample: a check of a source's accepted rows samples its first
                // failing rows in the order the contract wrote them, the engine's.
                format!(
                    "{} {} {} `{}`: {} {} of {} ({})",
                    t.node_kind,
                    t.node,
                    t.test,
                    t.spec.rule,
                    t.status.name(),
                    t.failures,
                    t.rows_checked,
                    t.action,
                )
            })
            .collect()
    };
    let (ta, tb) = (tests(report), tests(&full));
    if let Some((x, y)) = ta.iter().zip(&tb).find(|(x, y)| x != y) {
        return Err(differ(format!(
            "a test differs: incremental `{x}`, full refresh `{y}`"
        )));
    }
    // Rows set aside, and the decision-log rows each run appended, without the ids and the
    // times that name the run.
    let aside = ["quarantine", "dead_letter"];
    for r in &report.sources {
        for dir in aside {
            let a = next.root.join(dir).join(&r.table);
            let b = scratch.join(dir).join(&r.table);
            compare_run_rows(&a, &report.run_id, &b, &full.run_id, &["run_id"])
                .map_err(|at| differ(format!("{dir} of `{}` differs{at}", r.table)))?;
        }
    }
    let log = |root: &Path| crate::logs::DECISION_LOG.dir(root);
    compare_run_rows(
        &log(&next.root),
        &report.run_id,
        &log(scratch),
        &full.run_id,
        &["run_id", "timestamp"],
    )
    .map_err(|at| differ(format!("the decision log differs{at}")))?;
    Ok(())
}

/// The rows of the files a run wrote into `dir` (`run=<run_id>…`), as text without the
/// `skip` columns, in sorted order; the same in both, or where they first differ.
fn compare_run_rows(
    a: &Path,
    run_a: &str,
    b: &Path,
    run_b: &str,
    skip: &[&str],
) -> std::result::Result<(), String> {
    let rows = |dir: &Path, run: &str| -> std::result::Result<Vec<String>, String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with(&format!("run={run}")))
                    })
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        let mut out = Vec::new();
        for f in files {
            out.extend(text_rows(&f, skip).map_err(|e| format!(": {e}"))?);
        }
        Ok(out)
    };
    // In order: a quarantine's rows are a set (each names its position), written in the
    // order the engine hands them back.
    let (mut x, mut y) = (rows(a, run_a)?, rows(b, run_b)?);
    x.sort();
    y.sort();
    if x.len() != y.len() {
        return Err(format!(": {} rows, a full refresh {}", x.len(), y.len()));
    }
    match x.iter().zip(&y).position(|(p, q)| p != q) {
        Some(i) => Err(format!(
            " at row {i}: incremental `{}`, full refresh `{}`",
            x[i], y[i]
        )),
        None => Ok(()),
    }
}

/// Each row of a Parquet file as `column=value;…` (columns in name order), without the `skip`
/// columns.
fn text_rows(path: &Path, skip: &[&str]) -> Result<Vec<String>> {
    Ok(json_rows(path)?
        .iter()
        .map(|r| {
            r.iter()
                .filter(|(k, _)| !skip.contains(&k.as_str()))
                .map(|(k, v)| format!("{k}={};", text(v)))
                .collect()
        })
        .collect())
}

/// A value as text: strings bare, null as `NULL`.
fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "NULL".into(),
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    }
}

/// Where two Parquet tables first differ: the columns whose types differ, the row counts, or
/// the first row and column (in the table's order) with both values; else only their bytes.
fn first_difference(a: &Path, b: &Path) -> Result<String> {
    let ((sa, _), (sb, _)) = (read_parquet_schema(a)?, read_parquet_schema(b)?);
    if sa != sb {
        let fields = |s: &arrow::datatypes::Schema| -> Vec<String> {
            s.fields().iter().map(|f| format!("{f:?}")).collect()
        };
        let (fa, fb) = (fields(&sa), fields(&sb));
        let only = |x: &[String], y: &[String]| -> Vec<String> {
            x.iter().filter(|f| !y.contains(f)).cloned().collect()
        };
        return Ok(format!(
            ": columns {:?}, a full refresh {:?}",
            only(&fa, &fb),
            only(&fb, &fa)
        ));
    }
    let (ra, rb) = (json_rows(a)?, json_rows(b)?);
    if ra.len() != rb.len() {
        return Ok(format!(": {} rows, a full refresh {}", ra.len(), rb.len()));
    }
    for (r, (x, y)) in ra.iter().zip(&rb).enumerate() {
        for f in sa.fields() {
            let null = serde_json::Value::Null;
            let (p, q) = (
                x.get(f.name()).unwrap_or(&null),
                y.get(f.name()).unwrap_or(&null),
            );
            if p != q {
                return Ok(format!(
                    " at row {r}, column `{}`: incremental `{}`, full refresh `{}`",
                    f.name(),
                    text(p),
                    text(q)
                ));
            }
        }
    }
    Ok(": the same rows, other bytes (the Parquet layout differs)".into())
}

/// Hard-link every file under `from` to the same place under `to` (absent `from`: nothing).
fn link_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| Error::io("cannot create", to, e))?;
    let Ok(entries) = std::fs::read_dir(from) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            link_tree(&src, &dst)?;
        } else {
            std::fs::hard_link(&src, &dst)
                .or_else(|_| std::fs::copy(&src, &dst).map(|_| ()))
                .map_err(|err| Error::io("cannot link", &src, err))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use std::sync::Arc;

    fn table(dir: &Path, name: &str, ids: &[i64], run: &str) -> PathBuf {
        let batch = RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from(ids.to_vec())) as _),
            (
                "run_id",
                Arc::new(StringArray::from(vec![run; ids.len()])) as _,
            ),
        ])
        .unwrap();
        let p = dir.join(name);
        crate::table_io::write_table(&p, batch.schema(), &[], &[batch]).unwrap();
        p
    }

    #[test]
    fn the_first_differing_row_and_column_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let a = table(dir.path(), "a.parquet", &[1, 2, 3], "r1");
        let b = table(dir.path(), "b.parquet", &[1, 5, 3], "r1");
        let at = first_difference(&a, &b).unwrap();
        assert_eq!(
            at,
            " at row 1, column `id`: incremental `2`, full refresh `5`"
        );
        let c = table(dir.path(), "c.parquet", &[1, 2], "r1");
        assert_eq!(
            first_difference(&a, &c).unwrap(),
            ": 3 rows, a full refresh 2"
        );
    }

    #[test]
    fn rows_a_run_wrote_compare_without_its_run_id() {
        let dir = tempfile::tempdir().unwrap();
        let (x, y) = (dir.path().join("x"), dir.path().join("y"));
        std::fs::create_dir_all(&x).unwrap();
        std::fs::create_dir_all(&y).unwrap();
        table(&x, "run=r1-1.parquet", &[1, 2], "r1");
        table(&x, "run=r0-1.parquet", &[9], "r0");
        table(&y, "run=r2-1.parquet", &[1, 2], "r2");
        assert_eq!(compare_run_rows(&x, "r1", &y, "r2", &["run_id"]), Ok(()));
        assert!(
            compare_run_rows(&x, "r1", &y, "r2", &[]).is_err(),
            "run ids differ"
        );
        table(&y, "run=r3-1.parquet", &[1, 7], "r3");
        assert_eq!(
            compare_run_rows(&x, "r1", &y, "r3", &["run_id"]),
            Err(" at row 1: incremental `id=2;`, full refresh `id=7;`".into())
        );
    }
}
