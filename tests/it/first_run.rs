//! A newcomer's first run: default corpora build green (every labelled fault injected and
//! quarantined, nothing blocked, nothing stale), and every command the README and docs/ mark
//! as runnable (```sh blocks) runs as written on a fresh clone's default corpus.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use gtmos::synth::params::SynthParams;
use serde_json::Value;

use crate::common::*;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Build a default-parameter corpus (default faults) of `accounts` with `seed`; the JSON
/// summary of the build.
fn default_build(seed: u64, accounts: u64) -> (i32, Value, String) {
    let dir = tempdir().keep();
    let snap = dir.join("snapshot");
    let p = SynthParams {
        seed,
        accounts,
        ..SynthParams::default()
    };
    gtmos::synth::generate(&p, &snap, 2, false).expect("corpus generates");
    let (code, out, err) = build_project(
        &repo().join("pipelines"),
        &snap,
        &dir.join("warehouse"),
        &["--format", "json"],
    );
    let summary = serde_json::from_str(&out).unwrap_or(Value::Null);
    (code, summary, format!("{out}\n{err}"))
}

fn assert_green(seed: u64, accounts: u64, code: i32, s: &Value, log: &str) {
    let what = format!("seed {seed}, {accounts} accounts");
    assert_eq!(
        code, 0,
        "{what}: the default corpus must build green\n{log}"
    );
    assert_eq!(s["outcome"], "success", "{what}\n{log}");
    assert_eq!(s["blocked"], serde_json::json!([]), "{what}\n{log}");
    assert_eq!(
        s["views"]["stale"],
        serde_json::json!([]),
        "{what}: no view may be stale\n{log}"
    );
    // The labelled faults are still there, and quarantined.
    let quarantined: u64 = s["quarantined"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["rows"].as_u64().unwrap())
        .sum();
    assert!(
        quarantined > 0,
        "{what}: default faults are injected\n{log}"
    );
}

#[test]
fn default_corpora_of_three_seeds_build_green() {
    for seed in [42, 7, 2026] {
        let (code, s, log) = default_build(seed, 200);
        assert_green(seed, 200, code, &s, &log);
    }
}

/// A fresh clone: the project's pipelines/ and golden/ (read only), nothing built yet.
fn fresh_clone() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempdir().keep();
        for d in ["pipelines", "golden"] {
            std::os::unix::fs::symlink(repo().join(d), dir.join(d)).expect("symlink");
        }
        dir
    })
}

/// One runnable example: the command line (continuations joined), the exit code its
/// `# exit N` comment expects (0 otherwise), and where it was found.
#[derive(Debug)]
struct Example {
    args: Vec<String>,
    exit: i32,
    at: String,
}

/// The ```sh blocks of a Markdown file, as examples.
fn examples(file: &Path) -> Vec<Example> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with("```") {
            in_sh = t == "```sh";
            continue;
        }
        if !in_sh || t.is_empty() {
            continue;
        }
        if let Some(more) = t.strip_suffix('\\') {
            pending.push_str(more);
            pending.push(' ');
            continue;
        }
        let full = format!("{pending}{t}");
        pending.clear();
        let (cmd, comment) = match full.split_once(" #") {
            Some((c, k)) => (c.trim().to_string(), k.trim().to_string()),
            None => (full.clone(), String::new()),
        };
        let exit = comment
            .strip_prefix("exit ")
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        out.push(Example {
            args: cmd.split_whitespace().map(str::to_string).collect(),
            exit,
            at: format!("{}:{}", file.display(), i + 1),
        });
    }
    out
}

/// The gtmos arguments of an example: `gtmos …`, or `cargo run --release -- …`; None for
/// other commands (`cargo test` runs this very test).
fn gtmos_args(e: &Example) -> Option<Vec<String>> {
    match e.args.first().map(String::as_str) {
        Some("gtmos") => Some(e.args[1..].to_vec()),
        Some("cargo") => {
            let sep = e.args.iter().position(|a| a == "--")?;
            (e.args[1] == "run").then(|| e.args[sep + 1..].to_vec())
        }
        _ => None,
    }
}

#[test]
fn every_runnable_example_of_the_readme_and_docs_runs_as_written() {
    let mut files = vec![repo().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let all: Vec<Example> = files.iter().flat_map(|f| examples(f)).collect();
    let runnable: Vec<(&Example, Vec<String>)> = all
        .iter()
        .filter_map(|e| gtmos_args(e).map(|a| (e, a)))
        .collect();
    assert!(
        runnable.iter().any(|(_, a)| a == &["build"]),
        "the README's main job is among the examples"
    );
    let clone = fresh_clone();
    let mut ran = Vec::new();
    for (e, args) in runnable {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = gtmos(&refs, clone);
        assert_eq!(
            code,
            e.exit,
            "{}: `gtmos {}` exited {code}, the docs say {}\n{out}\n{err}",
            e.at,
            args.join(" "),
            e.exit
        );
        assert!(!out.trim().is_empty(), "{}: printed nothing\n{err}", e.at);
        // Piped, as here: no progress bar (it redraws with carriage returns) on stderr.
        assert!(
            !err.contains('\r'),
            "{}: a progress bar on a pipe\n{err}",
            e.at
        );
        if args == ["build"] {
            // The newcomer's first build: green, every view fresh.
            assert!(out.contains(" success "), "{out}");
            assert!(!out.contains("STALE") && !out.contains("stale)"), "{out}");
            assert!(clone.join("reports/latest/index.html").exists());
        }
        ran.push(args.join(" "));
    }
    assert!(ran.len() >= 8, "examples run: {ran:#?}");
    // The default corpus of the README's build is the one a newcomer gets: seed 42, 2,000 accounts.
    let manifest = gtmos::snapshot::Manifest::read(&clone.join("data/snapshots/default")).unwrap();
    assert_eq!(manifest.source["accounts"], 2000, "{}", manifest.source);
    assert_eq!(manifest.source["seed"], 42, "{}", manifest.source);
}
