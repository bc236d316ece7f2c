//! The canary statistics against reference values computed once with scipy
//! (tests/fixtures/canary_reference.py and its stored output; no Python at test time).

use gtmos::canary::stats::{self, Moments};
use serde_json::Value;

fn reference() -> Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/canary_reference.json");
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

fn close(ours: f64, theirs: &Value, tol: f64, what: &str) {
    let t = f(theirs);
    assert!(
        (ours - t).abs() <= tol * t.abs().max(1e-300) || (ours - t).abs() < 1e-14,
        "{what}: gtmos {ours}, scipy {t}"
    );
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(f).collect()
}

fn counts(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

#[test]
fn every_statistic_matches_scipy() {
    let r = reference();
    for c in r["srm"].as_array().unwrap() {
        let (stat, df, p) = stats::chi_square_gof(&counts(&c["observed"]), &floats(&c["shares"]));
        close(stat, &c["statistic"], 1e-12, "SRM chi-square");
        assert_eq!(df, 1.0);
        close(p, &c["p"], 1e-9, "SRM p");
    }
    for c in r["wilson"].as_array().unwrap() {
        let (lo, hi) = stats::wilson(f(&c["x"]), f(&c["n"]), 0.95);
        close(lo, &c["low"], 1e-9, "Wilson low");
        close(hi, &c["high"], 1e-9, "Wilson high");
    }
    for c in r["two_proportion"].as_array().unwrap() {
        let z = stats::two_proportion_z(f(&c["x1"]), f(&c["n1"]), f(&c["x2"]), f(&c["n2"]));
        close(z.p, &c["p"], 1e-9, "two-proportion p");
    }
    for c in r["fisher"].as_array().unwrap() {
        let t: Vec<u64> = c["table"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(counts)
            .collect();
        close(
            stats::fisher_exact(t[0], t[1], t[2], t[3]),
            &c["p"],
            1e-9,
            "Fisher p",
        );
    }
    for c in r["binomial"].as_array().unwrap() {
        let p = stats::binomial_test(
            c["k"].as_u64().unwrap(),
            c["n"].as_u64().unwrap(),
            f(&c["p0"]),
        );
        close(p, &c["p"], 1e-9, "binomial p");
    }
    let s = &r["samples"];
    let w = stats::welch(
        &Moments::of(&floats(&s["a"])),
        &Moments::of(&floats(&s["b"])),
        0.95,
    );
    for (ours, key) in [
        (w.t, "t"),
        (w.df, "df"),
        (w.p, "p"),
        (w.low, "low"),
        (w.high, "high"),
    ] {
        close(ours, &r["welch"][key], 1e-9, &format!("Welch {key}"));
    }
    let m = stats::mann_whitney(&floats(&s["x"]), &floats(&s["y"]));
    close(m.u, &r["mann_whitney"]["u"], 1e-12, "Mann–Whitney U");
    close(
        m.p.unwrap(),
        &r["mann_whitney"]["p"],
        1e-9,
        "Mann–Whitney p",
    );
}

#[test]
fn two_poisson_rates_are_compared_exactly() {
    // 3 duplicate incidents in 1,000 control decisions against 9 in 1,000 variant decisions:
    // conditional on 12 incidents, the variant's count is Binomial(12, 0.5); P(X ≥ 9) =
    // (220 + 66 + 12 + 1) / 4096 = 299 / 4096, two-sided (symmetric) 598 / 4096.
    let p = stats::poisson_rates_exact(3, 1000.0, 9, 1000.0);
    assert!((p - 598.0 / 4096.0).abs() < 1e-12, "{p}");
}

// ---------------------------------------------------------------------------------------------
// Studies on simulated traffic (the synthetic corpus' experiment model, `canary::simulate`).

use gtmos::canary::compare::{self, Account, Comparison, Config, Inference};
use gtmos::canary::simulate::simulate;
use gtmos::synth::params::{Resolved, SynthParams};
use rayon::prelude::*;

const SEEDS: u64 = 200;

fn config() -> Config {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/canary.yml");
    serde_yaml_ng::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The experiment model with every account enrolled, these true effects (all others 0).
fn model(seed: u64, accounts: u64, effects: &[(&str, f64)], variant_share: f64) -> Resolved {
    model_sigma(seed, accounts, effects, variant_share, 0.5)
}

/// The same with account responsiveness of log-normal σ `sigma`.
fn model_sigma(
    seed: u64,
    accounts: u64,
    effects: &[(&str, f64)],
    variant_share: f64,
    sigma: f64,
) -> Resolved {
    let mut p = SynthParams::default();
    p.canary.responsiveness_sigma = sigma;
    p.seed = seed;
    p.accounts = accounts;
    p.canary.share = 1.0;
    p.canary.variant_share = variant_share;
    for v in p.canary.effects.values_mut() {
        *v = 0.0;
    }
    for (k, v) in effects {
        p.canary.effects.insert(k.to_string(), *v);
    }
    p.resolve().unwrap()
}

/// A modest uplift: replies and positive replies +10 %, meetings and opportunities +15 %
/// (the default corpus's variant instead regresses, so that its walkthrough reaches a verdict).
const UPLIFT: [(&str, f64); 4] = [
    ("reply", 0.10),
    ("positive_reply", 0.10),
    ("meeting_booked", 0.15),
    ("opportunity_created", 0.15),
];

fn with(cfg: &Config, inference: Inference) -> Config {
    let mut c = cfg.clone();
    c.inference = inference;
    c
}

fn metric<'a>(c: &'a Comparison, name: &str) -> &'a compare::MetricResult {
    c.metrics.iter().find(|m| m.metric == name).unwrap()
}

/// Binomial slack: three standard errors of a rate `p` estimated from `n` replications.
fn slack(p: f64, n: u64) -> f64 {
    3.0 * (p * (1.0 - p) / n as f64).sqrt()
}

#[test]
fn with_no_true_effect_false_promotions_and_rollbacks_stay_within_alpha() {
    let cfg = config();
    let runs: Vec<[String; 2]> = (0..SEEDS)
        .into_par_iter()
        .map(|seed| {
            let accts = simulate(&model(seed, 1500, &[], 0.5), 28, &[60]).remove(0);
            [Inference::Fixed, Inference::Sequential]
                .map(|inf| compare::compare(&accts, &with(&cfg, inf), false).verdict)
        })
        .collect();
    for (k, name) in ["fixed-horizon", "sequential"].iter().enumerate() {
        let false_verdicts = runs
            .iter()
            .filter(|r| r[k] == "promote" || r[k] == "rollback")
            .count();
        let rate = false_verdicts as f64 / SEEDS as f64;
        println!(
            "no true effect, {SEEDS} seeds, {name}: {false_verdicts} promote-or-rollback verdicts ({:.1} %), alpha {}",
            rate * 100.0,
            cfg.alpha
        );
        assert!(
            rate <= cfg.alpha + slack(cfg.alpha, SEEDS),
            "{name}: {rate}"
        );
    }
}

#[test]
fn a_modest_uplift_is_detected_at_the_power_the_sample_size_predicts() {
    let cfg = with(&config(), Inference::Fixed);
    let eff: Vec<(&str, f64)> = UPLIFT.to_vec();
    let runs: Vec<(f64, bool, bool)> = (0..SEEDS)
        .into_par_iter()
        .map(|seed| {
            let accts = simulate(&model(1000 + seed, 4000, &eff, 0.5), 28, &[60]).remove(0);
            let c = compare::compare(&accts, &cfg, false);
            let m = metric(&c, "meeting_rate");
            let up = m.delta.unwrap() > 0.0;
            (
                m.se.unwrap(),
                m.p_fixed.unwrap() < cfg.alpha && up,
                m.p_sequential.unwrap() < cfg.alpha && up,
            )
        })
        .collect();
    // The true difference in meeting rate, from the experiment model's expected rates.
    let p = model(0, 1, &eff, 0.5);
    let rate = |g: usize| {
        gtmos::synth::canary::expected_rates(&p, g)["meeting_booked"]
            .as_f64()
            .unwrap()
    };
    let true_delta = rate(1) - rate(0);
    let n = SEEDS as f64;
    let mean_se = runs.iter().map(|r| r.0).sum::<f64>() / n;
    let z = stats::z_crit(1.0 - cfg.alpha);
    let normal = statrs::distribution::Normal::new(0.0, 1.0).unwrap();
    use statrs::distribution::ContinuousCDF;
    let predicted = normal.cdf(true_delta / mean_se - z) + normal.cdf(-true_delta / mean_se - z);
    let detected = runs.iter().filter(|r| r.1).count() as f64 / n;
    let sequential = runs.iter().filter(|r| r.2).count() as f64 / n;
    println!(
        "modest uplift: meeting rate {:.5} → {:.5} (Δ {true_delta:.5}); mean SE {mean_se:.5}; predicted power {predicted:.3}, detected by the fixed-horizon test in {detected:.3} of {SEEDS} seeds (by the sequential test, the price of peeking safety: {sequential:.3})",
        rate(0),
        rate(1)
    );
    assert!(
        (detected - predicted).abs() <= slack(predicted, SEEDS) + 0.03,
        "detected {detected}, predicted {predicted}"
    );
}

#[test]
fn cuped_reduces_the_variance_of_the_meeting_rate_and_stays_unbiased() {
    // Accounts that differ strongly in responsiveness (σ 1.5), eight weeks: the pre-period
    // says something about each account's experiment period.
    let cfg = with(&config(), Inference::Fixed);
    let runs: Vec<(f64, f64, f64, f64)> = (0..SEEDS)
        .into_par_iter()
        .map(|seed| {
            let p = model_sigma(3000 + seed, 3000, &[("meeting_booked", 0.3)], 0.5, 1.5);
            let accts = simulate(&p, 56, &[120]).remove(0);
            let plain = metric(&compare::compare(&accts, &cfg, false), "meeting_rate").clone();
            let cu = metric(&compare::compare(&accts, &cfg, true), "meeting_rate").clone();
            let c = cu.cuped.unwrap();
            (
                plain.delta.unwrap(),
                c.delta,
                c.variance_reduction,
                plain.se.unwrap(),
            )
        })
        .collect();
    let n = SEEDS as f64;
    let mean = |f: &dyn Fn(&(f64, f64, f64, f64)) -> f64| runs.iter().map(f).sum::<f64>() / n;
    let var = |f: &dyn Fn(&(f64, f64, f64, f64)) -> f64| {
        let m = mean(f);
        runs.iter().map(|r| (f(r) - m).powi(2)).sum::<f64>() / (n - 1.0)
    };
    let (m_plain, m_cuped) = (mean(&|r| r.0), mean(&|r| r.1));
    let (v_plain, v_cuped) = (var(&|r| r.0), var(&|r| r.1));
    let reported = mean(&|r| r.2);
    // Unbiased: the unadjusted difference is unbiased, and the paired difference between the
    // two estimates averages to zero within sampling error.
    let diff_sd = var(&|r| r.1 - r.0).sqrt();
    println!(
        "CUPED on meeting rate, {SEEDS} seeds: mean Δ {m_cuped:.6} vs unadjusted {m_plain:.6} (paired difference {:.2e} ± {:.2e}); variance across seeds {v_cuped:.3e} vs {v_plain:.3e} ({:.1} % less); reduction reported per run {:.1} %",
        m_cuped - m_plain,
        3.0 * diff_sd / n.sqrt(),
        (1.0 - v_cuped / v_plain) * 100.0,
        reported * 100.0
    );
    assert!(
        v_cuped < v_plain,
        "CUPED must reduce the variance across seeds"
    );
    assert!(reported > 0.02, "reported reduction {reported}");
    assert!((m_cuped - m_plain).abs() <= 3.0 * diff_sd / n.sqrt());
}

#[test]
fn checking_daily_for_two_weeks_the_sequential_test_stays_within_alpha_where_the_naive_one_does_not()
 {
    let cfg = config();
    let looks: Vec<i64> = (1..=14).collect();
    let runs: Vec<(bool, bool)> = (0..SEEDS)
        .into_par_iter()
        .map(|seed| {
            let days = simulate(&model(5000 + seed, 3000, &[], 0.5), 14, &looks);
            let (mut naive, mut seq) = (false, false);
            for accts in &days {
                let c = compare::compare(accts, &cfg, false);
                let m = metric(&c, "meeting_rate");
                naive |= m.p_fixed.is_some_and(|p| p < cfg.alpha);
                seq |= m.p_sequential.is_some_and(|p| p < cfg.alpha);
            }
            (naive, seq)
        })
        .collect();
    let n = SEEDS as f64;
    let naive = runs.iter().filter(|r| r.0).count() as f64 / n;
    let seq = runs.iter().filter(|r| r.1).count() as f64 / n;
    println!(
        "no true effect, meeting rate checked after each of 14 days, {SEEDS} seeds: naive fixed-horizon test declares a difference in {:.1} %, the sequential test in {:.1} % (alpha {} %)",
        naive * 100.0,
        seq * 100.0,
        cfg.alpha * 100.0
    );
    assert!(seq <= cfg.alpha + slack(cfg.alpha, SEEDS));
    assert!(
        naive > cfg.alpha,
        "peeking should inflate the naive test: {naive}"
    );
}

#[test]
fn the_decision_rule_and_its_gate_order() {
    let cfg = config();
    let run = |seed: u64, accounts: u64, effects: &[(&str, f64)], share: f64| -> Comparison {
        let accts: Vec<Account> =
            simulate(&model(seed, accounts, effects, share), 28, &[60]).remove(0);
        compare::compare(&accts, &cfg, false)
    };
    // A 45/55 split: sample-ratio mismatch, no verdict — even with a large true effect.
    let c = run(7, 8000, &[("meeting_booked", 1.0)], 0.55);
    assert!(!c.srm.passed, "{:?}", c.srm);
    assert_eq!(c.verdict, "invalid", "{:?}", c.reasons);
    // Too few accounts: insufficient data, whatever the effect.
    let c = run(7, 120, &[("meeting_booked", 1.0)], 0.5);
    assert_eq!(c.verdict, "insufficient_data", "{:?}", c.reasons);
    // Business better, every guardrail shown within its margin, trust blocks in band: promote.
    let c = run(11, 40000, &[("meeting_booked", 0.6), ("reply", 0.2)], 0.5);
    assert_eq!(metric(&c, "meeting_rate").verdict, "better");
    assert_eq!(
        c.verdict,
        "promote",
        "{:?} {:?}",
        c.reasons,
        c.metrics
            .iter()
            .map(|m| (m.metric, &m.verdict))
            .collect::<Vec<_>>()
    );
    // Business better, trust blocks far worse: keep testing.
    let c = run(
        8,
        12000,
        &[
            ("meeting_booked", 1.0),
            ("reply", 0.3),
            ("trust_block", 1.5),
        ],
        0.5,
    );
    assert_eq!(metric(&c, "meeting_rate").verdict, "better");
    assert_eq!(metric(&c, "trust_block_rate").verdict, "above_band");
    assert_eq!(c.verdict, "keep_testing", "{:?}", c.reasons);
    // Safety regression (duplicate incidents quadrupled) with business better: roll back.
    let c = run(
        9,
        12000,
        &[("meeting_booked", 1.0), ("duplicate_incident", 4.0)],
        0.5,
    );
    assert_eq!(metric(&c, "duplicate_incident_rate").verdict, "worse");
    assert_eq!(c.verdict, "rollback", "{:?}", c.reasons);
    // Business regression (far fewer opportunities from the same meetings, so spend per
    // meeting is unchanged): roll back.
    let c = run(10, 20000, &[("opportunity_created", -0.95)], 0.5);
    assert_eq!(metric(&c, "pipeline_per_decision").verdict, "worse");
    assert_eq!(c.verdict, "rollback", "{:?}", c.reasons);
    assert!(
        c.reasons[0].starts_with("business regression"),
        "{:?}",
        c.reasons
    );
}

// ---------------------------------------------------------------------------------------------
// The command.

fn agent_predictions(dir: &std::path::Path, model: &str) -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("golden/predictions/candidate_good.jsonl"))
        .unwrap()
        .replace("gtm-labeler-v4.2", model);
    let p = dir.join("agent_predictions.jsonl");
    std::fs::write(&p, text).unwrap();
    p
}

/// `gtmos eval golden` of a predictions file into a warehouse: (exit code, stdout + stderr).
fn golden_eval(
    cwd: &std::path::Path,
    wh: &std::path::Path,
    preds: &std::path::Path,
) -> (i32, String) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let (code, out, err) = crate::common::gtmos(
        &[
            "eval",
            "--warehouse",
            wh.to_str().unwrap(),
            "--no-report",
            "golden",
            "--predictions",
            preds.to_str().unwrap(),
            "--golden",
            root.join("golden").to_str().unwrap(),
        ],
        cwd,
    );
    (code, out + &err)
}

#[test]
fn the_cli_refuses_without_a_golden_pass_then_compares_records_and_reports() {
    let tmp = crate::common::tempdir();
    let corpus = crate::common::corpus();
    let wh = tmp.path().join("wh");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = root.join("pipelines/canary.yml");
    let canary = |extra: &[&str]| {
        let mut args = vec![
            "canary",
            "--experiment",
            "exp-agent-canary-1",
            "--snapshot",
            corpus.to_str().unwrap(),
            "--warehouse",
            wh.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
        ];
        let reports = tmp.path().join("reports");
        args.extend(["--reports", reports.to_str().unwrap()]);
        args.extend(extra);
        crate::common::gtmos(&args, tmp.path())
    };
    // golden → canary: refused until the variant has a passing golden eval.
    let (code, _, err) = canary(&[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("refused: the variant model gtm-agent-3.3-rc1 has no golden eval"),
        "{err}"
    );
    assert!(!wh.join("logs/canary_results").exists());
    let preds = agent_predictions(tmp.path(), "gtm-agent-3.3-rc1");
    let (code, out) = golden_eval(tmp.path(), &wh, &preds);
    assert_eq!(code, 0, "{out}");

    // A later golden eval of the same model that fails takes the pass back.
    let regressed = root.join("golden/predictions/candidate_regressed.jsonl");
    let text = std::fs::read_to_string(&regressed)
        .unwrap()
        .replace("gtm-labeler-v4.3-rc1", "gtm-agent-3.3-rc1");
    let bad = tmp.path().join("regressed.jsonl");
    std::fs::write(&bad, text).unwrap();
    let eval = |p: &std::path::Path| golden_eval(tmp.path(), &wh, p);
    assert_eq!(eval(&bad).0, 1);
    let (code, _, err) = canary(&[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("did not pass its most recent golden eval"),
        "{err}"
    );
    assert_eq!(eval(&preds).0, 0);

    // 160 accounts: about 40 per arm, below the minimum — insufficient data, exit 1.
    let (code, out, err) = canary(&["--cuped"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        out.contains("INSUFFICIENT_DATA: below the minimum sample per arm"),
        "{out}"
    );
    assert!(out.contains("sample ratio:"), "{out}");
    let rows = crate::common::log_rows(&wh, "canary_results");
    assert_eq!(rows.len(), compare::METRICS.len());
    assert!(
        rows.iter()
            .all(|r| r["verdict"] == "insufficient_data"
                && r["experiment_id"] == "exp-agent-canary-1")
    );
    let meeting = rows.iter().find(|r| r["metric"] == "meeting_rate").unwrap();
    assert_eq!(meeting["role"], "primary");
    let reply = rows.iter().find(|r| r["metric"] == "reply_rate").unwrap();
    assert!(reply["control_value"].as_f64().is_some() && reply["cs_low"].as_f64().is_some());
    let decisions: Vec<_> = crate::common::log_rows(&wh, "decision_log")
        .into_iter()
        .filter(|r| r["node"] == "canary.rollout")
        .collect();
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0]["chosen_action"], "insufficient_data");
    assert_eq!(decisions[0]["subject"], "gtm-agent-3.3-rc1");
    let evidence: Value = serde_json::from_str(decisions[0]["evidence"].as_str().unwrap()).unwrap();
    assert!(evidence["metrics"]["reply_rate"]["p_sequential"].is_number());

    // JSON output and the page.
    let (code, out, _) = canary(&["--format", "json"]);
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["comparison"]["verdict"], "insufficient_data");
    let page = tmp.path().join("reports/canary/latest/canary.html");
    let html = std::fs::read_to_string(&page).unwrap();
    for needle in [
        "Canary exp-agent-canary-1",
        "id=\"arms\"",
        "confidence sequence",
        "meeting_rate",
    ] {
        assert!(html.contains(needle), "page lacks {needle}");
    }
    let dom = crate::report::rendered_dom(&page);
    assert!(dom.contains("id=\"verdict\"") && dom.contains("insufficient_data"));

    // Bad input: an experiment that is not in the snapshot names the ones that are.
    let (code, _, err) = crate::common::gtmos(
        &[
            "canary",
            "--experiment",
            "exp-nope",
            "--snapshot",
            corpus.to_str().unwrap(),
            "--warehouse",
            wh.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
            "--no-report",
        ],
        tmp.path(),
    );
    assert_eq!(code, 2);
    assert!(
        err.contains("no decision belongs to experiment `exp-nope`"),
        "{err}"
    );
}

#[test]
fn an_injected_split_imbalance_makes_the_canary_invalid() {
    let tmp = crate::common::tempdir();
    let mut p = SynthParams {
        seed: 11,
        accounts: 1200,
        ..SynthParams::default()
    };
    for v in p.fault_rates.values_mut() {
        *v = 0.0;
    }
    p.canary.variant_share = 0.6;
    let snap = tmp.path().join("snap");
    gtmos::synth::generate(&p, &snap, 2, false).unwrap();
    let wh = tmp.path().join("wh");
    let preds = agent_predictions(tmp.path(), "gtm-agent-3.3-rc1");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    assert_eq!(golden_eval(tmp.path(), &wh, &preds).0, 0);
    let (code, out, err) = crate::common::gtmos(
        &[
            "canary",
            "--experiment",
            "exp-agent-canary-1",
            "--snapshot",
            snap.to_str().unwrap(),
            "--warehouse",
            wh.to_str().unwrap(),
            "--config",
            root.join("pipelines/canary.yml").to_str().unwrap(),
            "--no-report",
        ],
        tmp.path(),
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("MISMATCH"), "{out}");
    assert!(out.contains("INVALID: sample-ratio mismatch"), "{out}");
}

#[test]
fn earlier_looks_carry_forward_the_running_minimum_and_intersection() {
    let cfg = config();
    let accts = simulate(&model(21, 3000, &[], 0.5), 28, &[60]).remove(0);
    let fresh = compare::compare(&accts, &cfg, false);
    let m = metric(&fresh, "meeting_rate");
    let (lo, hi) = m.confidence_sequence.unwrap();
    let mut history = compare::History::new();
    history.insert("meeting_rate".into(), (0.01, lo + 0.001, hi + 1.0));
    let later = compare::compare_after(&accts, &cfg, false, &history);
    let m2 = metric(&later, "meeting_rate");
    assert_eq!(m2.p_sequential, Some(0.01f64.min(m.p_sequential.unwrap())));
    assert_eq!(m2.confidence_sequence, Some((lo + 0.001, hi)));
}

#[test]
fn bad_traffic_is_named_precisely() {
    use gtmos::canary::traffic;
    use serde_json::json;
    let dec = |id: &str, acct: &str, arm: &str| {
        json!({"decision_id": id, "decided_at": "2025-12-01T10:00:00Z", "account_id": acct,
               "lane": "tam", "action_type": "email_generation", "experiment_id": "exp-1", "arm": arm,
               "model_version": if arm == "variant" { "m-new" } else { "m-old" }, "policy_version": "p",
               "trust_score": 0.9, "gate_result": "pass", "cost_usd": 0.12})
    };
    let out = |id: &str, d: &str| {
        json!({"outcome_id": id, "decision_id": d, "outcome_at": "2025-12-02T10:00:00Z",
               "outcome_type": "reply", "pipeline_usd": null})
    };
    let as_of = gtmos::calendar::parse_ts("2026-01-01").unwrap();
    let decisions = crate::common::rows(
        "agent_decisions",
        &[dec("D1", "A1", "control"), dec("D2", "A2", "variant")],
    );
    let outcomes = crate::common::rows(
        "decision_outcomes",
        &[out("O1", "D1"), out("O2", "D-missing")],
    );
    let err = traffic::from_batches(
        std::slice::from_ref(&decisions),
        &[outcomes],
        "exp-1",
        as_of,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("1 outcome(s) refer to no decision, e.g. decision_id `D-missing` (row 2)"),
        "{err}"
    );
    let mixed = crate::common::rows(
        "agent_decisions",
        &[dec("D1", "A1", "control"), dec("D2", "A1", "variant")],
    );
    let err = traffic::from_batches(&[mixed], &[], "exp-1", as_of)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("1 account(s) have decisions in both arms"),
        "{err}"
    );
    let err = traffic::from_batches(&[decisions], &[], "exp-2", as_of)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "no decision belongs to experiment `exp-2`; experiments in this snapshot: exp-1"
        ),
        "{err}"
    );
    let twice = crate::common::rows(
        "agent_decisions",
        &[dec("D1", "A1", "control"), dec("D1", "A2", "variant")],
    );
    let outcomes = crate::common::rows("decision_outcomes", &[out("O1", "D1")]);
    let err = traffic::from_batches(&[twice], &[outcomes], "exp-1", as_of)
        .unwrap_err()
        .to_string();
    assert!(err.contains("decision_id repeated, e.g. D1"), "{err}");
    let odd_arm = crate::common::rows(
        "agent_decisions",
        &[dec("D1", "A1", "control"), dec("D2", "A2", "treatment")],
    );
    let err = traffic::from_batches(&[odd_arm], &[], "exp-1", as_of)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("has arm Some(\"treatment\"); must be control or variant")
            && err.contains("row 2"),
        "{err}"
    );
    // No account: nothing to randomise by.
    let mut anonymous = dec("D2", "A2", "variant");
    anonymous["account_id"] = serde_json::Value::Null;
    let no_account =
        crate::common::rows("agent_decisions", &[dec("D1", "A1", "control"), anonymous]);
    let err = traffic::from_batches(&[no_account], &[], "exp-1", as_of)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("has no account_id") && err.contains("row 2"),
        "{err}"
    );
    // An outcome dated before its decision.
    let mut early = out("O2", "D2");
    early["outcome_at"] = "2025-11-30T10:00:00Z".into();
    let outcomes = crate::common::rows("decision_outcomes", &[out("O1", "D1"), early]);
    let decisions = crate::common::rows(
        "agent_decisions",
        &[dec("D1", "A1", "control"), dec("D2", "A2", "variant")],
    );
    let err = traffic::from_batches(&[decisions], &[outcomes], "exp-1", as_of)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("1 outcome(s) happened before their decision, e.g. row 2 (decision_id `D2`)"),
        "{err}"
    );
}

#[test]
fn the_compact_read_tallies_exactly_what_the_registry_types_tally() {
    use arrow::datatypes::DataType;
    use gtmos::canary::traffic;
    let snap = gtmos::snapshot::Snapshot::open(
        crate::common::corpus(),
        gtmos::schema::Registry::embedded().unwrap(),
    )
    .unwrap();
    let as_of = snap.manifest.as_of_micros().unwrap();
    let id = "exp-agent-canary-1";
    // As `gtmos canary` reads: few-valued text as dictionaries, 64-bit decimals as Decimal64.
    let compact = traffic::read(&snap, id, as_of).unwrap();
    let files = gtmos::snapshot::parquet_files(&snap.table_path("agent_decisions").unwrap());
    let batches = traffic::read_table(&files.unwrap()[0], &traffic::DECISION_COLUMNS).unwrap();
    let b = &batches[0];
    assert!(matches!(
        b.column_by_name("account_id").unwrap().data_type(),
        DataType::Dictionary(..)
    ));
    assert!(matches!(
        b.column_by_name("cost_usd").unwrap().data_type(),
        DataType::Decimal64(..)
    ));
    assert!(matches!(
        b.column_by_name("decision_id").unwrap().data_type(),
        DataType::Utf8
    ));
    // The same rows in the registry's own types (plain text, Decimal128).
    let plain = traffic::from_batches(
        &snap.read("agent_decisions").unwrap().1,
        &snap.read("decision_outcomes").unwrap().1,
        id,
        as_of,
    )
    .unwrap();
    assert!(compact.accounts.len() > 50, "{}", compact.accounts.len());
    assert_eq!(compact.accounts, plain.accounts);
    assert_eq!(
        (
            compact.start,
            compact.end,
            compact.pre_start,
            compact.decisions,
            compact.outcomes
        ),
        (
            plain.start,
            plain.end,
            plain.pre_start,
            plain.decisions,
            plain.outcomes
        )
    );
    assert_eq!(compact.unobserved_outcomes, plain.unobserved_outcomes);
    assert_eq!(
        (&compact.control_models, &compact.variant_models),
        (&plain.control_models, &plain.variant_models)
    );
}

#[test]
fn a_rank_test_with_every_value_tied_reports_no_information_never_a_pass() {
    let mut cfg = config();
    for p in cfg.primary.iter_mut() {
        if p.metric == "pipeline_per_decision" {
            p.test = Some(compare::Test::MannWhitney);
        }
    }
    // No opportunity in either arm: every account's pipeline per decision is 0.
    let accts = simulate(
        &model(31, 3000, &[("opportunity_created", -0.999)], 0.5),
        28,
        &[60],
    )
    .remove(0);
    let accts: Vec<Account> = accts
        .into_iter()
        .map(|mut a| {
            a.exp.pipeline = 0.0;
            a
        })
        .collect();
    let c = compare::compare(&accts, &cfg, false);
    let m = metric(&c, "pipeline_per_decision");
    assert_eq!(m.test, "Mann–Whitney U (account means, tie-corrected)");
    assert_eq!(m.verdict, "no_information");
    assert_eq!(m.p_fixed, None);
    assert!(m.note.as_deref().unwrap().contains("no information"));
    assert_ne!(c.verdict, "promote");
}

/// golden → canary is the library's rule, not only the command's: `canary::run` refuses a
/// variant without a passing golden eval and logs nothing, then compares once it has one.
#[test]
fn the_library_refuses_a_canary_without_a_golden_pass() {
    use gtmos::canary::{self, Canary};
    let tmp = crate::common::tempdir();
    let wh = tmp.path().join("wh");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = canary::load_config(&root.join("pipelines/canary.yml")).unwrap();
    let snapshot = gtmos::snapshot::Snapshot::open(
        crate::common::corpus(),
        gtmos::schema::Registry::embedded().unwrap(),
    )
    .unwrap();
    let run = || {
        canary::run(
            &canary::Request {
                warehouse: &wh,
                snapshot: &snapshot,
                experiment: "exp-agent-canary-1",
                as_of: snapshot.manifest.as_of_micros().unwrap(),
                config: &cfg,
                cuped: false,
            },
            &gtmos::printer::Progress::hidden(),
        )
        .unwrap()
    };
    match run() {
        Canary::Refused(no) => {
            assert_eq!(no.variant, "gtm-agent-3.3-rc1");
            assert_eq!(
                no.reason,
                "the variant model gtm-agent-3.3-rc1 has no golden eval"
            );
        }
        Canary::Done(_) => panic!("a canary ran without a golden eval"),
    }
    assert!(!wh.join("logs/canary_results").exists());
    assert!(!wh.join("logs/decision_log").exists());

    let preds = agent_predictions(tmp.path(), "gtm-agent-3.3-rc1");
    let golden = gtmos::eval::golden::run(&gtmos::eval::golden::Request {
        warehouse: &wh,
        predictions: &preds,
        baseline: None,
        golden: &root.join("golden"),
        config: None,
        trigger: "test",
    })
    .unwrap();
    assert!(golden.report.passed, "{:?}", golden.report.reasons);
    match run() {
        Canary::Done(r) => {
            assert_eq!(r.traffic.variant_models, ["gtm-agent-3.3-rc1"]);
            assert_eq!(r.golden_eval, golden.run_id);
            assert_eq!(
                crate::common::log_rows(&wh, "canary_results").len(),
                canary::compare::METRICS.len()
            );
        }
        Canary::Refused(no) => panic!("refused after a golden pass: {}", no.reason),
    }
}
