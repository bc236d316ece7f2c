//! The real binary in a fresh directory: exit codes and one-line error messages.

use crate::common::*;

fn fails_with(args: &[&str], needle: &str) {
    let dir = tempdir();
    let (code, out, err) = gtmos(args, dir.path());
    assert_eq!(
        code, 2,
        "{args:?}: exit {code}\nstdout: {out}\nstderr: {err}"
    );
    assert!(
        err.contains(needle),
        "{args:?}: stderr lacks `{needle}`:\n{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    // Nothing half-written is left behind.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        left.is_empty() || args.contains(&"--verify"),
        "{args:?} left {left:?}"
    );
}

#[test]
fn synth_rejects_bad_parameters_with_exit_2() {
    fails_with(
        &["synth", "--accounts", "0", "--out", "x"],
        "--accounts must be at least 1",
    );
    fails_with(&["synth", "--accounts", "-5", "--out", "x"], "-5");
    fails_with(
        &[
            "synth",
            "--start",
            "2025-01-01",
            "--end",
            "2024-12-31",
            "--out",
            "x",
        ],
        "is before --start",
    );
    fails_with(
        &["synth", "--start", "2025-02-30", "--out", "x"],
        "invalid date `2025-02-30`",
    );
    fails_with(
        &["synth", "--mix", "unicorn=1", "--out", "x"],
        "unknown archetype `unicorn`",
    );
    fails_with(
        &["synth", "--mix", "seasonal", "--out", "x"],
        "is not NAME=VALUE",
    );
    fails_with(
        &["synth", "--fault-rate", "gremlins=0.1", "--out", "x"],
        "unknown fault class `gremlins`",
    );
    fails_with(
        &["synth", "--fault-rate", "negative_units=2", "--out", "x"],
        "must be in [0, 1]",
    );
    fails_with(
        &["synth", "--canary-effect", "vibes=0.1", "--out", "x"],
        "unknown canary outcome `vibes`",
    );
    fails_with(
        &[
            "synth",
            "--start",
            "2025-06-01",
            "--end",
            "2025-08-01",
            "--out",
            "x",
        ],
        "must be at least 300",
    );
    fails_with(&["synth", "--bogus"], "--bogus");
}

#[test]
fn synth_refuses_an_unwritable_or_foreign_output_directory() {
    let dir = tempdir();
    std::fs::write(dir.path().join("file"), "x").unwrap();
    let (code, _, err) = gtmos(
        &["synth", "--accounts", "5", "--out", "file/sub"],
        dir.path(),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("file/sub") || err.contains("file"), "{err}");
    std::fs::create_dir(dir.path().join("mine")).unwrap();
    std::fs::write(dir.path().join("mine/notes.txt"), "keep me").unwrap();
    let (code, _, err) = gtmos(&["synth", "--accounts", "5", "--out", "mine"], dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("refusing to replace"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("mine/notes.txt")).unwrap(),
        "keep me"
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.contains("staging")), "{names:?}");
}

#[test]
fn verify_detects_identity_drift_and_edited_manifests() {
    let dir = tempdir();
    let (code, out, err) = gtmos(
        &[
            "synth",
            "--accounts",
            "12",
            "--out",
            "snap",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json summary");
    assert_eq!(v["as_of"], "2026-01-01T00:00:00Z");

    let (code, out, err) = gtmos(&["synth", "--verify", "snap"], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("identical"), "{out}");

    // A table whose bytes changed: drift, exit 1, named.
    let snap = dir.path().join("snap");
    let t = snap.join("nps_responses.parquet");
    let mut bytes = std::fs::read(&t).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&t, bytes).unwrap();
    let (code, out, _) = gtmos(&["synth", "--verify", "snap"], dir.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("nps_responses.parquet"), "{out}");

    // An edited manifest: exit 2.
    let m = snap.join("manifest.json");
    let text = std::fs::read_to_string(&m)
        .unwrap()
        .replace("\"seed\": 42", "\"seed\": 43");
    std::fs::write(&m, text).unwrap();
    let (code, _, err) = gtmos(&["synth", "--verify", "snap"], dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("manifest.json was edited"), "{err}");

    // No manifest at all: exit 2.
    std::fs::remove_file(&m).unwrap();
    let (code, _, err) = gtmos(&["synth", "--verify", "snap"], dir.path());
    assert_eq!(code, 2);
    assert!(err.contains("no manifest.json"), "{err}");
    let (code, _, err) = gtmos(&["synth", "--verify", "nowhere"], dir.path());
    assert_eq!(code, 2, "{err}");
}

#[test]
fn help_documents_every_command() {
    let dir = tempdir();
    let (code, out, _) = gtmos(&["--help"], dir.path());
    assert_eq!(code, 0);
    for c in ["synth", "snapshot", "reopen", "docs/README.md", "--quiet"] {
        assert!(out.contains(c), "{out}");
    }
    let (code, out, _) = gtmos(&["synth", "--help"], dir.path());
    assert_eq!(code, 0);
    for flag in [
        "--seed",
        "--accounts",
        "--start",
        "--end",
        "--out",
        "--threads",
        "--verify",
        "--mix",
        "--fault-rate",
    ] {
        assert!(out.contains(flag), "synth --help lacks {flag}");
    }
}

#[test]
fn build_vars_must_name_declared_vars_and_be_a_mapping() {
    let project = project_dir();
    let p = project.to_str().unwrap();
    for (vars, error) in [
        (
            "{score_history_wekes: 3}",
            "`score_history_wekes` is not a var",
        ),
        ("[1, 2]", "--vars: not a mapping"),
        (
            "{score_history_weeks: [1]}",
            "`score_history_weeks` must be a scalar",
        ),
    ] {
        fails_with(
            &[
                "build",
                "--project",
                p,
                "--snapshot",
                "nowhere",
                "--vars",
                vars,
            ],
            error,
        );
    }
}

#[test]
fn bad_settings_and_filters_are_refused_not_guessed() {
    fails_with(&["build", "--threads", "0"], "--threads");
    fails_with(&["synth", "--threads", "0"], "--threads");
    fails_with(&["build", "--memory-mb", "17592186044416"], "--memory-mb");
    fails_with(
        &["decisions", "list", "--status", "bogus"],
        "--status bogus: a decision is proposed, partially_approved",
    );
    fails_with(
        &["decisions", "list", "--warehouse", "/nonexistent/warehouse"],
        "no warehouse at /nonexistent/warehouse",
    );
    // An environment variable that is not a number is bad input, not the default.
    let dir = tempdir();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gtmos"))
        .args([
            "build",
            "--snapshot",
            "nowhere",
            "--project",
            project_dir().to_str().unwrap(),
        ])
        .env("GTMOS_MEMORY_MB", "abc")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("GTMOS_MEMORY_MB=abc: expected MiB from 64"),
        "{err}"
    );
}

#[test]
fn template_errors_are_found_when_the_project_loads_naming_the_file() {
    let dir = tempdir();
    let project = dir.path().join("pipelines");
    copy_dir(&project_dir(), &project);
    let run = || {
        gtmos(
            &["compile", "--project", project.to_str().unwrap()],
            dir.path(),
        )
    };
    let (code, out, err) = run();
    assert_eq!(code, 0, "{out}{err}");
    // An unknown var in a model: before anything runs, with file and line.
    let model = project.join("models/finance/spend_by_month.sql");
    let sql = std::fs::read_to_string(&model).unwrap();
    std::fs::write(
        &model,
        sql.replace("select", "select {{ var('no_such_var') }} as x,"),
    )
    .unwrap();
    let (code, _, err) = run();
    assert_eq!(code, 2);
    assert!(
        err.contains("spend_by_month.sql") && err.contains("var `no_such_var` is not set"),
        "{err}"
    );
    std::fs::write(&model, sql).unwrap();
    // A template error in a source contract names its YAML file.
    let usage = project.join("sources/usage.yml");
    let yml = std::fs::read_to_string(&usage).unwrap();
    std::fs::write(
        &usage,
        yml.replace(
            "period_end <= {{ as_of }}",
            "period_end <= {{ ref('no_such_model') }}",
        ),
    )
    .unwrap();
    let (code, _, err) = run();
    assert_eq!(code, 2);
    assert!(
        err.contains("usage.yml") && err.contains("ref('no_such_model') names no model"),
        "{err}"
    );
}
