//! Fault injection: a build that fails or is killed at any step boundary — between every
//! publish step included — leaves readers exactly the previous version or the new one, never a
//! mix, and the next run succeeds. Failpoints (`GTMOS_FAILPOINT`, test-only) stop a run with an
//! error or kill it outright at a named step; a seeded loop also kills real builds at random
//! moments.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use gtmos::synth::params::SynthParams;

use crate::common::*;

/// (table → sha256) of what a reader sees now, checked against the version's own state: every
/// file's bytes are those `_state.json` records (the version is whole).
fn visible(wh: &Path) -> BTreeMap<String, String> {
    let published = gtmos::warehouse::Warehouse::new(wh);
    let state = published.state().unwrap();
    let mut out = BTreeMap::new();
    for (table, s) in &state.tables {
        let Some(want) = &s.sha256 else { continue };
        let path = published.published_file(table);
        let got = gtmos::table_io::sha256_file(&path).unwrap();
        assert_eq!(
            &got, want,
            "{table}: a file of another build than _state.json says"
        );
        out.insert(table.clone(), got);
    }
    out
}

fn corpus(dir: &Path, seed: u64) -> PathBuf {
    let out = dir.join(format!("snap-{seed}"));
    let p = SynthParams {
        seed,
        accounts: 30,
        ..SynthParams::default()
    };
    gtmos::synth::generate(&p, &out, 2, false).unwrap();
    out
}

/// A build of `snap` into `wh` (exit code, stderr), stopped at `failpoint` if given.
fn build_with(snap: &Path, wh: &Path, failpoint: Option<&str>) -> (i32, String) {
    let env: Vec<(&str, &str)> = failpoint
        .map(|f| ("GTMOS_FAILPOINT", f))
        .into_iter()
        .collect();
    let (code, _, err) = build_project_env(&project_dir(), snap, wh, &[], &env);
    (code, err)
}

#[test]
fn a_run_stopped_at_any_step_leaves_the_old_version_or_the_new_one_whole() {
    let dir = tempdir();
    let (a, b) = (corpus(dir.path(), 1), corpus(dir.path(), 2));
    // The two versions a reader may see: built from `a`, then from `b`.
    let reference = dir.path().join("reference");
    assert_eq!(build_with(&a, &reference, None).0, 0);
    let old = visible(&reference);
    assert_eq!(build_with(&b, &reference, None).0, 0);
    let new = visible(&reference);
    assert_ne!(old, new);

    let steps = [
        "publish.begun",
        "publish.table",
        "publish.views",
        "publish.state",
        "decisions",
        "published",
    ];
    // One warehouse, switching between the two snapshots: each stopped run tries to move it
    // from the version it shows to the other one.
    let wh = dir.path().join("wh");
    assert_eq!(build_with(&a, &wh, None).0, 0);
    let mut shown = (&a, &old);
    let mut other = (&b, &new);
    for step in steps {
        for how in ["error", "abort"] {
            let (code, err) = build_with(other.0, &wh, Some(&format!("{step}:{how}")));
            assert_ne!(code, 0, "{step}:{how} stops the run");
            if how == "error" {
                assert!(err.contains(&format!("failpoint `{step}`")), "{err}");
            }
            let seen = visible(&wh);
            if step == "published" {
                assert_eq!(&seen, other.1, "{step}:{how}: switched, so the new version");
            } else {
                assert_eq!(
                    &seen, shown.1,
                    "{step}:{how}: not switched, so the old version"
                );
            }
            // The next run cleans up and succeeds, and publishes what an undisturbed run does.
            let (code, err) = build_with(other.0, &wh, None);
            assert_eq!(code, 0, "{step}:{how}: the rerun\n{err}");
            assert_eq!(&visible(&wh), other.1, "{step}:{how}");
            let staging: Vec<_> = std::fs::read_dir(wh.join(".staging"))
                .map(|d| d.flatten().collect())
                .unwrap_or_default();
            assert!(staging.is_empty(), "{step}:{how}: staging left behind");
            let versions = std::fs::read_dir(wh.join("versions")).unwrap().count();
            assert!(versions <= 3, "{step}:{how}: {versions} versions kept");
            std::mem::swap(&mut shown, &mut other);
        }
    }
}

#[test]
fn builds_killed_at_random_moments_never_leave_a_mixed_version() {
    let dir = tempdir();
    let (a, b) = (corpus(dir.path(), 3), corpus(dir.path(), 4));
    let wh = dir.path().join("wh");
    assert_eq!(build_with(&a, &wh, None).0, 0);
    let old = visible(&wh);
    let reference = dir.path().join("reference");
    assert_eq!(build_with(&b, &reference, None).0, 0);
    let new = visible(&reference);
    // How long an undisturbed build of `b` takes, so kills land across all of it.
    let t = std::time::Instant::now();
    assert_eq!(build_with(&b, &dir.path().join("timing"), None).0, 0);
    let full = t.elapsed().as_millis() as u64;
    // A seeded spread of kill times (xorshift), bounded: eight runs.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let project = project_dir();
    for _ in 0..8 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let after = std::time::Duration::from_millis(x % (full + 1));
        let mut child = Command::new(env!("CARGO_BIN_EXE_gtmos"))
            .args([
                "build",
                "--project",
                project.to_str().unwrap(),
                "--snapshot",
                b.to_str().unwrap(),
                "--warehouse",
                wh.to_str().unwrap(),
                "--no-report",
                "--threads",
                "2",
            ])
            .env_remove("GTMOS_FAILPOINT")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(after);
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let seen = visible(&wh);
        assert!(
            seen == old || seen == new,
            "killed after {after:?}: a version that is neither the old nor the new"
        );
        // Back to the old version for the next kill, through a real build of `a`.
        if seen == new {
            assert_eq!(build_with(&a, &wh, None).0, 0);
        }
    }
}

#[test]
fn an_unreadable_decision_log_fails_the_run_before_anything_is_published() {
    let dir = tempdir();
    let (a, b) = (corpus(dir.path(), 5), corpus(dir.path(), 6));
    let wh = dir.path().join("wh");
    assert_eq!(build_with(&a, &wh, None).0, 0);
    let old = visible(&wh);
    let bad = wh.join("logs/decision_log/run=zzz-corrupt.parquet");
    std::fs::write(&bad, b"not parquet").unwrap();
    let (code, err) = build_with(&b, &wh, None);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("run=zzz-corrupt.parquet"),
        "the file is named: {err}"
    );
    assert_eq!(visible(&wh), old, "nothing was published");
    std::fs::remove_file(&bad).unwrap();
    assert_eq!(build_with(&b, &wh, None).0, 0);
}

#[test]
fn a_warehouse_from_before_versions_becomes_its_first_version() {
    let dir = tempdir();
    let a = corpus(dir.path(), 7);
    let wh = dir.path().join("wh");
    assert_eq!(build_with(&a, &wh, None).0, 0);
    let seen = visible(&wh);
    // The layout of earlier releases: `published/` a plain directory of the tables.
    let target = std::fs::read_link(wh.join("published")).unwrap();
    std::fs::remove_file(wh.join("published")).unwrap();
    std::fs::rename(wh.join(&target), wh.join("published")).unwrap();
    std::fs::remove_dir_all(wh.join("versions")).unwrap();
    assert!(wh.join("published").is_dir() && !wh.join("published").is_symlink());
    assert_eq!(visible(&wh), seen, "read as before");
    assert_eq!(build_with(&a, &wh, None).0, 0);
    assert!(wh.join("published").is_symlink(), "switched to versions");
    assert_eq!(
        visible(&wh),
        seen,
        "the same build publishes the same tables"
    );
    let kept: Vec<String> = std::fs::read_dir(wh.join("versions"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    assert!(kept.iter().any(|n| n.starts_with("legacy-")), "{kept:?}");
}
