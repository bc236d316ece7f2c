//! `gtmos eval golden`: every metric against scikit-learn / scipy reference values stored in
//! tests/fixtures (no Python at test time), the gate, bad input, logs and the report page.

use std::path::{Path, PathBuf};

use gtmos::eval::golden::{self, GateConfig, Golden, Threshold};
use gtmos::eval::metrics;
use serde_json::Value;

use crate::common::gtmos;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn golden_dir() -> PathBuf {
    root().join("golden")
}

fn report_for(preds: &str, baseline: Option<&str>, cfg: &GateConfig) -> golden::Report {
    let g = Golden::load(&golden_dir()).unwrap();
    let path = golden_dir().join("predictions").join(preds);
    let p = golden::read_predictions(&path).unwrap();
    let a = golden::align(&g, &p, &path).unwrap();
    let base = baseline.map(|b| {
        let bp = golden_dir().join("predictions").join(b);
        let p = golden::read_predictions(&bp).unwrap();
        let a = golden::align(&g, &p, &bp).unwrap();
        (p, a)
    });
    golden::evaluate(
        &g,
        cfg,
        &p,
        &a,
        base.as_ref().map(|(p, a)| (p.as_slice(), a)),
        &path,
    )
    .unwrap()
}

fn config() -> GateConfig {
    let g = Golden::load(&golden_dir()).unwrap();
    GateConfig::load(&golden_dir().join("eval.yml"), &g).unwrap()
}

fn close(ours: Option<f64>, theirs: &Value, what: &str) {
    match (ours, theirs.as_f64()) {
        (Some(a), Some(b)) => assert!((a - b).abs() < 1e-9, "{what}: gtmos {a}, reference {b}"),
        (None, None) => {}
        (a, _) => panic!("{what}: gtmos {a:?}, reference {theirs}"),
    }
}

#[test]
fn every_metric_matches_scikit_learn_and_scipy() {
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/eval_reference.json")).unwrap(),
    )
    .unwrap();
    let r = report_for(
        "candidate_regressed.jsonl",
        Some("baseline.jsonl"),
        &config(),
    );
    for t in &r.tasks {
        let x = &reference["tasks"][&t.task];
        let m = |name: &str| t.metrics.get(name).and_then(|e| e.value);
        for name in [
            "accuracy",
            "macro_f1",
            "weighted_f1",
            "micro_f1",
            "cohen_kappa",
            "brier",
            "ece",
            "mce",
        ] {
            close(m(name), &x[name], &format!("{} {name}", t.task));
        }
        if t.ordinal {
            close(
                m("quadratic_weighted_kappa"),
                &x["quadratic_weighted_kappa"],
                &format!("{} qwk", t.task),
            );
        }
        for (k, c) in t.classes.iter().enumerate() {
            close(
                c.scores.precision,
                &x["precision"][k],
                &format!("{} precision {}", t.task, c.label),
            );
            close(
                c.scores.recall,
                &x["recall"][k],
                &format!("{} recall {}", t.task, c.label),
            );
            close(
                c.scores.f1,
                &x["f1"][k],
                &format!("{} f1 {}", t.task, c.label),
            );
            assert_eq!(Some(c.scores.support), x["support"][k].as_u64());
        }
        assert_eq!(
            serde_json::to_value(&t.confusion).unwrap(),
            x["confusion"],
            "{} confusion",
            t.task
        );
        let b = t.baseline.as_ref().unwrap();
        assert_eq!(
            Some(b.baseline_only_right),
            x["baseline_only_right"].as_u64()
        );
        assert_eq!(
            Some(b.candidate_only_right),
            x["candidate_only_right"].as_u64()
        );
        close(
            Some(b.mcnemar_mid_p),
            &x["mcnemar_mid_p"],
            &format!("{} McNemar mid-p", t.task),
        );
    }
    for c in reference["clopper_pearson_upper_95"].as_array().unwrap() {
        let ours = metrics::clopper_pearson_upper(
            c["failures"].as_u64().unwrap(),
            c["n"].as_u64().unwrap(),
            0.95,
        );
        close(Some(ours), &c["upper"], &format!("Clopper–Pearson {c}"));
    }
    // The never-predicted class is reported as undefined, not 0.
    let persona = r.tasks.iter().find(|t| t.task == "buyer_persona").unwrap();
    assert!(
        persona
            .undefined
            .iter()
            .any(|u| u.contains("precision of `procurement`")),
        "{:?}",
        persona.undefined
    );
}

#[test]
fn critical_misses_fail_and_thresholds_are_judged_on_the_interval_bound() {
    let cfg = config();
    let good = report_for("candidate_good.jsonl", Some("baseline.jsonl"), &cfg);
    assert!(good.passed, "{:?}", good.reasons);
    let bad = report_for("candidate_regressed.jsonl", Some("baseline.jsonl"), &cfg);
    assert!(!bad.passed);
    let persona = bad
        .tasks
        .iter()
        .find(|t| t.task == "buyer_persona")
        .unwrap();
    assert_eq!(persona.critical_misses.len(), 4);
    assert!(bad.reasons.iter().any(|r| r.contains("critical examples")));

    // A threshold exactly at the lower bound passes; one just above it fails, though the
    // point estimate is far above both.
    let t = good
        .tasks
        .iter()
        .find(|t| t.task == "intent_signal")
        .unwrap();
    let low = t.metrics["accuracy"].interval.unwrap().low;
    assert!(t.metrics["accuracy"].value.unwrap() > low + 0.03);
    for (min, pass) in [(low, true), (low + 1e-9, false)] {
        let mut c = cfg.clone();
        c.tasks.insert(
            "intent_signal".into(),
            vec![Threshold {
                metric: "accuracy".into(),
                min: Some(min),
                max: None,
            }],
        );
        let r = report_for("candidate_good.jsonl", None, &c);
        let t = r.tasks.iter().find(|t| t.task == "intent_signal").unwrap();
        assert_eq!(t.passed, pass, "min {min}: {:?}", t.checks);
    }
    // The same seed gives the same intervals.
    let again = report_for("candidate_good.jsonl", Some("baseline.jsonl"), &cfg);
    assert_eq!(
        serde_json::to_string(&again.tasks).unwrap(),
        serde_json::to_string(&good.tasks).unwrap()
    );
}

fn write(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

fn good_lines() -> Vec<String> {
    std::fs::read_to_string(golden_dir().join("predictions/candidate_good.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bad_predictions_are_listed_precisely_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let g = golden_dir();
    let run = |file: &Path| {
        gtmos(
            &[
                "eval",
                "golden",
                "--predictions",
                file.to_str().unwrap(),
                "--golden",
                g.to_str().unwrap(),
                "--warehouse",
                dir.path().join("wh").to_str().unwrap(),
                "--no-report",
            ],
            dir.path(),
        )
    };
    let mut lines = good_lines();
    let dup = lines[3].clone();
    lines.push(dup.clone()); // duplicate of line 4 (line 288 once line 11 is removed)
    let removed: Value = serde_json::from_str(&lines.remove(10)).unwrap(); // a missing example
    lines.push(r#"{"id": "icp_tier-999", "prediction": "T1", "confidence": 0.9, "model_id": "gtm-labeler-v4.2"}"#.into());
    let mut wrong: Value = serde_json::from_str(&lines[0]).unwrap();
    wrong["prediction"] = "T4".into();
    lines[0] = wrong.to_string();
    let mut conf: Value = serde_json::from_str(&lines[1]).unwrap();
    conf["confidence"] = 1.5.into();
    lines[1] = conf.to_string();
    let (code, _, err) = run(&write(dir.path(), "bad.jsonl", &lines));
    assert_eq!(code, 2, "{err}");
    let dup_id = serde_json::from_str::<Value>(&dup).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    for needle in [
        format!("id `{dup_id}` predicted 2 times (line 4, line 288)"),
        "line 289: id `icp_tier-999` is not in the golden set".to_string(),
        format!(
            "1 golden example(s) have no prediction: {}",
            removed["id"].as_str().unwrap()
        ),
        "line 1: `T4` is not a label of task".to_string(),
        "line 2: confidence 1.5 is outside [0, 1]".to_string(),
    ] {
        assert!(err.contains(&needle), "missing `{needle}` in:\n{err}");
    }
    // NaN is not JSON: the line is named.
    let mut lines = good_lines();
    lines[5] = lines[5].replace(r#""confidence": "#, r#""confidence": NaN, "x": "#);
    let (code, _, err) = run(&write(dir.path(), "nan.jsonl", &lines));
    assert_eq!(code, 2);
    assert!(err.contains("line 6") || err.contains("row 6"), "{err}");
    // One confidence missing: the line that breaks "all or none" is named.
    let mut lines = good_lines();
    let mut v: Value = serde_json::from_str(&lines[16]).unwrap();
    v.as_object_mut().unwrap().remove("confidence");
    lines[16] = v.to_string();
    let (code, _, err) = run(&write(dir.path(), "conf.jsonl", &lines));
    assert_eq!(code, 2);
    assert!(
        err.contains("287 of 288 predictions carry a confidence: all or none must (calibration needs every one); without one is: line 17"),
        "{err}"
    );
    // Many problems: in line order, the first 20 shown and the rest counted; a long id list
    // sorted and cut the same way.
    let lines: Vec<String> = good_lines()
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if (100..130).contains(&i) {
                l.replacen(r#""id": ""#, r#""id": "zz-"#, 1)
            } else {
                l.clone()
            }
        })
        .collect();
    let (code, _, err) = run(&write(dir.path(), "many.jsonl", &lines));
    assert_eq!(code, 2);
    assert!(err.contains("31 problem(s) in the predictions"), "{err}");
    let first = err.find("line 101: id `zz-").expect("line 101 first");
    let last = err.find("line 119: id `zz-").expect("line 119 shown");
    assert!(first < last && !err.contains("line 120:"), "{err}");
    assert!(err.contains("… and 11 more"), "{err}");
    assert!(
        err.contains("30 golden example(s) have no prediction:") && err.contains(" … and 10 more"),
        "{err}"
    );
    // A huge bad label is quoted cut, not echoed whole.
    let mut lines = good_lines();
    let mut v: Value = serde_json::from_str(&lines[0]).unwrap();
    v["prediction"] = "X".repeat(1 << 20).into();
    lines[0] = v.to_string();
    let (code, _, err) = run(&write(dir.path(), "huge.jsonl", &lines));
    assert_eq!(code, 2);
    assert!(
        err.contains("… (1048576 bytes)`"),
        "{}",
        &err[..err.len().min(500)]
    );
    assert!(err.len() < 10_000, "{} bytes of error", err.len());
    // Nothing was logged for rejected input.
    assert!(!dir.path().join("wh/logs/eval_log").exists());
}

#[test]
fn a_tampered_dataset_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    crate::common::copy_dir(&golden_dir(), &dir.path().join("golden"));
    let f = dir.path().join("golden/datasets/intent_signal.jsonl");
    let text = std::fs::read_to_string(&f)
        .unwrap()
        .replacen("\"noise\"", "\"real\"", 1);
    std::fs::write(&f, text).unwrap();
    let err = Golden::load(&dir.path().join("golden"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not match the manifest"), "{err}");
}

#[test]
fn the_cli_gates_logs_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let g = golden_dir();
    let wh = dir.path().join("wh");
    let run = |preds: &str| {
        gtmos(
            &[
                "eval",
                "golden",
                "--predictions",
                g.join("predictions").join(preds).to_str().unwrap(),
                "--baseline",
                g.join("predictions/baseline.jsonl").to_str().unwrap(),
                "--golden",
                g.to_str().unwrap(),
                "--warehouse",
                wh.to_str().unwrap(),
                "--reports",
                dir.path().join("reports").to_str().unwrap(),
            ],
            dir.path(),
        )
    };
    let (code, out, err) = run("candidate_good.jsonl");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("PASS: promote to canary"), "{out}");
    let (code, out, _) = run("candidate_regressed.jsonl");
    assert_eq!(code, 1);
    assert!(out.contains("CRITICAL MISS buyer_persona-"), "{out}");
    assert!(
        out.contains("undefined: precision of `procurement`"),
        "{out}"
    );

    // Logs: two eval runs, 288 example rows each, two model.promotion decisions.
    let rows = |log: &str| crate::common::log_rows(&wh, log);
    let runs = rows("eval_log");
    assert_eq!(runs.len(), 2);
    let decisions: Vec<&str> = runs
        .iter()
        .map(|r| r["decision"].as_str().unwrap())
        .collect();
    assert_eq!(decisions.len(), 2);
    assert!(decisions.contains(&"pass") && decisions.contains(&"fail"));
    assert!(
        runs.iter()
            .all(|r| r["bootstrap_resamples"] == 2000 && r["bootstrap_seed"] == 20261122)
    );
    assert_eq!(rows("eval_question_scores").len(), 2 * 288);
    let promos: Vec<String> = rows("decision_log")
        .iter()
        .filter(|r| r["node"] == "model.promotion")
        .map(|r| {
            format!(
                "{} {}",
                r["subject"].as_str().unwrap(),
                r["chosen_action"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(promos.len(), 2);
    assert!(
        promos.contains(&"gtm-labeler-v4.2 promote_to_canary".to_string()),
        "{promos:?}"
    );
    assert!(
        promos.contains(&"gtm-labeler-v4.3-rc1 hold".to_string()),
        "{promos:?}"
    );

    // The page: scores with intervals, confusion matrices, critical misses, the baseline.
    let html = std::fs::read_to_string(dir.path().join("reports/eval/latest/eval.html")).unwrap();
    for needle in [
        "Golden gate: gtm-labeler-v4.3-rc1",
        "class=\"confusion\"",
        "buyer_persona-001",
        "McNemar mid-p",
        "quadratic_weighted_kappa",
    ] {
        assert!(html.contains(needle), "page lacks {needle}");
    }
    let dom = crate::report::rendered_dom(&dir.path().join("reports/eval/latest/eval.html"));
    assert!(dom.contains("id=\"scores\"") && dom.contains("CRITICAL") == html.contains("CRITICAL"));
}
