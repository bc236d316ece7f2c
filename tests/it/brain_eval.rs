//! `gtmos eval brain` and `gtmos eval probes`: every validator has a probe and a negative
//! control, each violation in the regressed sample is caught, the rubric reaches each of its
//! four outcomes (and its boundary), reviewer independence, bad input, logs and the page.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use gtmos::eval::brain::{self, Catalog, ReviewerScore, Rule};
use serde_json::Value;

use crate::common::gtmos;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden/brain_eval")
}

fn sample(name: &str) -> PathBuf {
    dir().join("samples").join(name)
}

/// The rubric's decision for a sample's outputs, with its scores changed by `edit`.
fn decide(which: &str, edit: &dyn Fn(&mut Vec<ReviewerScore>)) -> brain::BrainReport {
    let c = Catalog::load(&dir()).unwrap();
    let (op, sp) = (
        sample(&format!("{which}_outputs.jsonl")),
        sample(&format!("{which}_scores.jsonl")),
    );
    let outputs = brain::read_outputs(&op).unwrap();
    let mut scores = brain::read_scores(&sp).unwrap();
    edit(&mut scores);
    let answers = brain::align(&c, &outputs, &op, &scores, &sp).unwrap();
    brain::evaluate(&c, &answers, &op, &sp).unwrap()
}

fn criterion<'a>(r: &'a brain::BrainReport, name: &str) -> &'a brain::Criterion {
    r.criteria.iter().find(|c| c.name == name).unwrap()
}

#[test]
fn every_validator_has_a_probe_and_a_negative_control_and_all_behave() {
    let probes = brain::load_probes(&dir()).unwrap();
    for (rule, _) in brain::VALIDATORS {
        for fires in [true, false] {
            assert!(
                probes.iter().any(|p| p.rule == *rule && p.fires == fires),
                "validator {} has no {}",
                rule.name(),
                if fires {
                    "probe that violates it"
                } else {
                    "negative control"
                }
            );
        }
    }
    // The seed's probes are there by name.
    let ids: BTreeSet<&str> = probes.iter().map(|p| p.id.as_str()).collect();
    for id in ["C1", "C1b", "C2", "C2b", "Sanity"] {
        assert!(ids.contains(id), "probe {id} missing");
    }
    let c = Catalog::load(&dir()).unwrap();
    for r in brain::run_probes(&c.rubric, &probes) {
        assert!(
            r.passed,
            "probe {} ({}) misbehaves: {:?}",
            r.id, r.what, r.issues
        );
    }
}

#[test]
fn the_cli_runs_the_probes() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, err) = gtmos(
        &["eval", "probes", "--catalog", dir().to_str().unwrap()],
        tmp.path(),
    );
    assert_eq!(code, 0, "{out}{err}");
    let n = brain::load_probes(&dir()).unwrap().len();
    assert!(out.contains(&format!("{n} of {n} probes behave")), "{out}");
    assert!(out.contains("ok   Sanity"), "{out}");
}

#[test]
fn each_violation_in_the_regressed_sample_is_caught() {
    let r = decide("regressed", &|_| {});
    let found: BTreeSet<(String, Rule)> = r
        .answers
        .iter()
        .flat_map(|a| a.issues.iter().map(|i| (a.question_id.clone(), i.rule)))
        .collect();
    let want: BTreeSet<(String, Rule)> = [
        ("Q12", Rule::StaleAcknowledged),
        ("Q14", Rule::Citations),
        ("Q19", Rule::Taxonomy),
        ("Q21", Rule::MustCiteTool),
        ("Q25", Rule::LeverMapping),
    ]
    .into_iter()
    .map(|(q, r)| (q.to_string(), r))
    .collect();
    assert_eq!(found, want);
    assert_eq!(r.decision, "fail");
    // 10 hallucinations in 369 claims (counted from the sample's score file).
    let h = criterion(&r, "hallucination_rate");
    assert_eq!(h.detail, "10 hallucinated of 369 claims");
    assert!(!h.met);
    assert!(!criterion(&r, "staleness_recognition").met);
    assert!(!criterion(&r, "lever_mapping").met);
}

#[test]
fn the_rubric_reaches_each_outcome() {
    // pass: the candidate sample as the reviewer scored it.
    let r = decide("candidate", &|_| {});
    assert_eq!(r.decision, "pass", "{}", r.rationale);
    assert_eq!(r.soft_met, 4);
    // Pooled hallucination rate, by hand from the score file: 3 of 691 claims.
    let h = criterion(&r, "hallucination_rate");
    assert!((h.value.unwrap() - 3.0 / 691.0).abs() < 1e-12);

    // pass_with_notes: coherence 3.4 everywhere is exactly 15 points below 4.0 on the 4-point
    // scale ((4.0 − 3.4) / 4 × 100); the other three soft criteria hold.
    let coherence = |v: f64| {
        move |s: &mut Vec<ReviewerScore>| {
            s.iter_mut().for_each(|x| x.narrative_coherence_rating = v)
        }
    };
    let r = decide("candidate", &coherence(3.4));
    assert_eq!(r.decision, "pass_with_notes", "{}", r.rationale);
    assert_eq!(
        criterion(&r, "narrative_coherence").shortfall_points,
        Some(15.0)
    );
    // One hundredth lower is 15.25 points below: significantly below → conditional.
    let r = decide("candidate", &coherence(3.39));
    assert_eq!(r.decision, "conditional", "{}", r.rationale);

    // conditional: diagnosis 0.5 everywhere misses its threshold by 20 points and throws the
    // calibration gap out of band; only two soft criteria hold.
    let r = decide("candidate", &|s| {
        s.iter_mut().for_each(|x| x.diagnosis_accuracy_score = 0.5)
    });
    assert_eq!(r.decision, "conditional", "{}", r.rationale);
    assert_eq!(r.soft_met, 2);
    assert_eq!(
        criterion(&r, "diagnosis_accuracy").shortfall_points,
        Some(20.0)
    );

    // fail: one stale-fixture answer the reviewer says missed the staleness, everything else
    // as before — staleness recognition must be 100 %.
    let r = decide("candidate", &|s| {
        let q = s.iter_mut().find(|x| x.question_id == "Q24").unwrap();
        q.staleness_correctly_recognized = Some(false);
    });
    assert_eq!(r.decision, "fail", "{}", r.rationale);
    let st = criterion(&r, "staleness_recognition");
    assert_eq!(st.detail, "9 of 10 stale-fixture answers");
    // fail: hallucinations over 2 % of claims.
    let r = decide("candidate", &|s| {
        s.iter_mut()
            .take(15)
            .for_each(|x| x.hallucinations_detected = 1)
    });
    assert_eq!(r.decision, "fail");
    assert!(!criterion(&r, "hallucination_rate").met);
}

#[test]
fn hard_criteria_report_what_the_sample_proves() {
    let r = decide("candidate", &|_| {});
    let st = criterion(&r, "staleness_recognition")
        .evidence
        .as_ref()
        .unwrap();
    // 0 of 10 failures: the one-sided 95 % Clopper–Pearson bound is 1 − 0.05^(1/10).
    assert_eq!((st.failures, st.n), (0, 10));
    assert!((st.upper_bound - (1.0 - 0.05f64.powf(0.1))).abs() < 1e-9);
    // Proving a failure rate ≤ 5 % takes ln 0.05 / ln 0.95 = 58.4 → 59 clean answers.
    assert_eq!(st.n_to_prove, Some(59));
    assert!(!st.proves_threshold);
    let h = criterion(&r, "hallucination_rate")
        .evidence
        .as_ref()
        .unwrap();
    // ≤ 2 % needs ln 0.05 / ln 0.98 = 148.3 → 149 clean claims.
    assert_eq!(h.n_to_prove, Some(149));
    assert!(
        h.proves_threshold,
        "3 of 691 bounds the rate at {}",
        h.upper_bound
    );
}

#[test]
fn flakiness_is_reported_per_question() {
    let r = decide("candidate", &|_| {});
    let q20 = r.flakiness.iter().find(|f| f.question_id == "Q20").unwrap();
    assert_eq!(q20.primary_actions, vec!["open_expansion_play", "none"]);
    assert_eq!(q20.action_disagreement, 0.5);
    assert!(q20.flaky);
    let q01 = r.flakiness.iter().find(|f| f.question_id == "Q01").unwrap();
    assert!(!q01.flaky && q01.action_disagreement == 0.0);
    assert_eq!(r.flakiness.len(), 30);
}

fn write(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    p
}

fn lines(name: &str) -> Vec<String> {
    std::fs::read_to_string(sample(name))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The view-contracts hash the samples were answered on (`VIEWS_HASH` of generate.py).
const SAMPLE_CONTRACTS: &str = "cf0af307e544119b72d65265247484a371d55a3514ca64153d869d47d7d980be";

#[test]
fn the_samples_were_answered_on_the_shipped_view_contracts() {
    let views = gtmos::views::Catalog::load(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pipelines/views"),
    )
    .unwrap()
    .unwrap();
    assert_eq!(
        views.hash, SAMPLE_CONTRACTS,
        "pipelines/views changed: set VIEWS_HASH in golden/brain_eval/generate.py to the new \
         hash, rerun it, and update SAMPLE_CONTRACTS (else `gtmos eval brain` on the samples is \
         refused against a fresh build)"
    );
}

/// A warehouse whose published view_catalog carries `hash` (the one column the check reads).
fn publish_view_catalog(wh: &Path, hash: &str) {
    use std::sync::Arc;
    let schema = Arc::new(arrow::datatypes::Schema::new(vec![
        arrow::datatypes::Field::new(
            "brain_view_contracts_hash",
            arrow::datatypes::DataType::Utf8,
            false,
        ),
    ]));
    let batch = arrow::array::RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(arrow::array::StringArray::from(vec![hash]))],
    )
    .unwrap();
    std::fs::create_dir_all(wh.join("published")).unwrap();
    gtmos::table_io::write_table(
        &wh.join("published/view_catalog.parquet"),
        schema,
        &[],
        &[batch],
    )
    .unwrap();
}

/// Runs `eval brain` on a warehouse that publishes the samples' view contracts (unless one
/// was published already).
fn run_brain(tmp: &Path, outputs: &Path, scores: &Path, extra: &[&str]) -> (i32, String, String) {
    if !tmp.join("wh/published/view_catalog.parquet").exists() {
        publish_view_catalog(&tmp.join("wh"), SAMPLE_CONTRACTS);
    }
    let catalog = dir();
    let mut args = vec![
        "eval",
        "brain",
        "--outputs",
        outputs.to_str().unwrap(),
        "--scores",
        scores.to_str().unwrap(),
        "--catalog",
        catalog.to_str().unwrap(),
    ];
    let wh = tmp.join("wh");
    let reports = tmp.join("reports");
    args.extend(["--warehouse", wh.to_str().unwrap()]);
    args.extend(["--reports", reports.to_str().unwrap()]);
    args.extend(extra);
    gtmos(&args, tmp)
}

#[test]
fn a_reviewer_who_tuned_a_brain_under_test_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let scores: Vec<String> = lines("candidate_scores.jsonl")
        .iter()
        .enumerate()
        .map(|(i, l)| {
            if i == 7 {
                l.replace("u_okafor", "u_mhale")
            } else {
                l.clone()
            }
        })
        .collect();
    let sp = write(tmp.path(), "scores.jsonl", &scores);
    let (code, out, err) = run_brain(tmp.path(), &sample("candidate_outputs.jsonl"), &sp, &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("refused: reviewer independence — u_mhale (AGT-902)"),
        "{err}"
    );
    assert!(
        !tmp.path().join("wh/logs/eval_log").exists(),
        "nothing is logged"
    );
}

#[test]
fn bad_brain_input_is_listed_precisely_and_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let mut outs = lines("candidate_outputs.jsonl");
    let dup = outs[3].clone(); // Q04 run 1, line 4
    outs.push(dup); // line 61
    outs.remove(34); // Q05 run 2: answered in run 1 only, so its score is orphaned
    let mut unknown: Value = serde_json::from_str(&outs[0]).unwrap();
    unknown["question_id"] = "Q99".into();
    outs.push(unknown.to_string()); // line 61 after the removal… see below
    let op = write(tmp.path(), "outputs.jsonl", &outs);
    let (code, _, err) = run_brain(tmp.path(), &op, &sample("candidate_scores.jsonl"), &[]);
    assert_eq!(code, 2, "{err}");
    for needle in [
        "Q04 run 1 answered 2 times (lines 4, 60)",
        "line 61: question `Q99` is not in the catalog",
    ] {
        assert!(err.contains(needle), "missing `{needle}` in:\n{err}");
    }

    // Scores: out of scale, more hallucinations than claims, a stale question not judged, an
    // orphan score for an answer that does not exist.
    let mut scores = lines("candidate_scores.jsonl");
    let edit = |l: &str, f: &dyn Fn(&mut Value)| {
        let mut v: Value = serde_json::from_str(l).unwrap();
        f(&mut v);
        v.to_string()
    };
    scores[0] = edit(&scores[0], &|v| v["diagnosis_accuracy_score"] = 1.4.into());
    scores[2] = edit(&scores[2], &|v| v["hallucinations_detected"] = 99.into());
    scores[1] = edit(&scores[1], &|v| {
        v["staleness_correctly_recognized"] = Value::Null
    });
    scores[4] = edit(&scores[4], &|v| v["narrative_coherence_rating"] = 0.into());
    scores.push(edit(&scores[5], &|v| v["run"] = 3.into()));
    let sp = write(tmp.path(), "scores.jsonl", &scores);
    let (code, _, err) = run_brain(tmp.path(), &sample("candidate_outputs.jsonl"), &sp, &[]);
    assert_eq!(code, 2, "{err}");
    for needle in [
        "line 1: diagnosis_accuracy_score 1.4 is outside [0, 1]",
        "line 3: 99 hallucinations in",
        "line 2: Q02 uses a stale fixture; staleness_correctly_recognized must be true or false",
        "line 5: narrative_coherence_rating 0 is outside 1–5",
        "line 61: Q06 run 3 scores an answer that is not in",
    ] {
        assert!(err.contains(needle), "missing `{needle}` in:\n{err}");
    }
    // An answer without a score.
    let scores = lines("candidate_scores.jsonl")[..59].to_vec();
    let sp = write(tmp.path(), "short.jsonl", &scores);
    let (code, _, err) = run_brain(tmp.path(), &sample("candidate_outputs.jsonl"), &sp, &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("line 60: Q30 run 2 has no reviewer score"),
        "{err}"
    );
    assert!(
        !tmp.path().join("wh/logs/eval_log").exists(),
        "nothing is logged"
    );
}

#[test]
fn the_cli_logs_brain_runs_decides_promotion_and_reports() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, err) = run_brain(
        tmp.path(),
        &sample("candidate_outputs.jsonl"),
        &sample("candidate_scores.jsonl"),
        &["--trigger", "pre_launch"],
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("PASS: every hard and every soft criterion met"),
        "{out}"
    );
    assert!(out.contains("FLAKY Q20"), "{out}");
    let (code, out, _) = run_brain(
        tmp.path(),
        &sample("regressed_outputs.jsonl"),
        &sample("regressed_scores.jsonl"),
        &[],
    );
    assert_eq!(code, 1);
    assert!(out.contains("ISSUE Q19 run 1 [taxonomy]"), "{out}");

    let rows = |log: &str| crate::common::log_rows(&tmp.path().join("wh"), log);
    let runs = rows("eval_log");
    assert_eq!(runs.len(), 2);
    let by_decision = |d: &str| runs.iter().find(|r| r["decision"] == d).unwrap();
    let pass = by_decision("pass");
    assert_eq!(pass["kind"], "brain");
    assert_eq!(pass["run_trigger"], "pre_launch");
    assert_eq!(pass["brain_under_test"], "AGT-901,AGT-902");
    assert_eq!(pass["reviewer_user_id"], "u_okafor");
    assert_eq!(pass["reviewer_independence_verified"], true);
    assert_eq!(
        pass["view_contracts_check"],
        Value::String(format!("match {SAMPLE_CONTRACTS}"))
    );
    assert_eq!(pass["catalog_version"], "2026.11-1");
    assert!(
        pass["system_prompt_hash"]
            .as_str()
            .unwrap()
            .starts_with("AGT-901=sha256:")
    );
    assert!(pass["calibration_notes"].as_str().unwrap().contains("Q20"));
    let scores: Value = serde_json::from_str(pass["aggregated_scores"].as_str().unwrap()).unwrap();
    assert_eq!(
        scores["criteria"]["hallucination_rate"]["evidence"]["n"],
        691
    );
    let fail = by_decision("fail");
    assert_eq!(fail["hard_criteria_passed"], false);
    assert_eq!(rows("eval_question_scores").len(), 60 + 30);
    let promos: Vec<String> = rows("decision_log")
        .iter()
        .filter(|r| r["node"] == "model.promotion")
        .map(|r| r["chosen_action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(promos, vec!["promote_to_canary", "hold"]);

    let page = tmp.path().join("reports/eval/latest/eval.html");
    let html = std::fs::read_to_string(&page).unwrap();
    for needle in [
        "Brain eval: AGT-901 + AGT-902",
        "id=\"rubric\"",
        "hallucination_rate",
        "what the sample proves",
        "Q19",
    ] {
        assert!(html.contains(needle), "page lacks {needle}");
    }
    // The brain section is in the page body once, not in its title.
    assert!(html.contains("<title>Eval · gtmos</title>"), "page title");
    assert_eq!(html.matches("Brain eval: AGT-901 + AGT-902").count(), 1);
    let dom = crate::report::rendered_dom(&page);
    assert!(
        dom.contains("id=\"brain-decision\"") && dom.contains(">fail<"),
        "rendered page lacks the decision"
    );
}

#[test]
fn outputs_answered_on_other_view_contracts_are_refused_unless_allowed_and_then_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let other = "0".repeat(64);
    publish_view_catalog(&tmp.path().join("wh"), &other);
    let (op, sp) = (
        sample("candidate_outputs.jsonl"),
        sample("candidate_scores.jsonl"),
    );
    let (code, _, err) = run_brain(tmp.path(), &op, &sp, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!(
            "line 1: brain_view_contracts_hash {SAMPLE_CONTRACTS} differs from the warehouse's {other}"
        )),
        "{err}"
    );
    assert!(
        !tmp.path().join("wh/logs/eval_log").exists(),
        "nothing is logged"
    );
    // One answer that names no hash is named by its line.
    let mut outs = lines("candidate_outputs.jsonl");
    let mut v: Value = serde_json::from_str(&outs[6]).unwrap();
    v.as_object_mut()
        .unwrap()
        .remove("brain_view_contracts_hash");
    outs[6] = v.to_string();
    let unnamed = write(tmp.path(), "outputs.jsonl", &outs);
    publish_view_catalog(&tmp.path().join("wh"), SAMPLE_CONTRACTS);
    let (code, _, err) = run_brain(tmp.path(), &unnamed, &sp, &[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("1 answer(s) name no brain_view_contracts_hash (line 7)"),
        "{err}"
    );
    // Allowed explicitly: scored, and the mismatch is in the log.
    publish_view_catalog(&tmp.path().join("wh"), &other);
    let (code, out, err) = run_brain(tmp.path(), &op, &sp, &["--allow-contracts-mismatch"]);
    assert_eq!(code, 0, "{out}{err}");
    let rows = crate::common::log_rows(&tmp.path().join("wh"), "eval_log");
    let check = rows[0]["view_contracts_check"].as_str().unwrap();
    assert!(check.starts_with("mismatch allowed: line 1:"), "{check}");
    assert!(check.contains(&other), "{check}");
    // A warehouse with no published views cannot vouch for any contract.
    let bare = tempfile::tempdir().unwrap();
    let (catalog, bare_wh) = (dir(), bare.path().join("wh"));
    let args = [
        "eval",
        "brain",
        "--outputs",
        op.to_str().unwrap(),
        "--scores",
        sp.to_str().unwrap(),
        "--catalog",
        catalog.to_str().unwrap(),
        "--warehouse",
        bare_wh.to_str().unwrap(),
        "--no-report",
    ];
    let (code, _, err) = gtmos(&args, bare.path());
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("has no published view_catalog"), "{err}");
}
