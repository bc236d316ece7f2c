//! Scoring an answer against the rubric, the evidence each hard criterion's sample supports,
//! per-question flakiness across runs, and the rubric's decision ([`evaluate`]).

use super::*;

/// Sentences of a narrative: split after `.`, `!` or `?` followed by whitespace.
pub(super) fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let b = text.as_bytes();
    for i in 0..b.len() {
        if matches!(b[i], b'.' | b'!' | b'?')
            && b.get(i + 1).is_none_or(|c| c.is_ascii_whitespace())
        {
            let s = text[start..=i].trim();
            if !s.is_empty() {
                out.push(s);
            }
            start = i + 1;
        }
    }
    let s = text[start..].trim();
    if !s.is_empty() {
        out.push(s);
    }
    out
}

/// (sentences stating a number, of which carry a resolving [src:N]). Digits inside [src:N]
/// markers do not make a sentence factual.
pub fn citation_counts(o: &BrainOutput) -> (u32, u32) {
    let known = indices(o);
    let (mut factual, mut cited) = (0, 0);
    for s in sentences(&o.narrative_output) {
        let marks = citations(s);
        let mut bare = s.to_string();
        for (raw, _) in &marks {
            bare = bare.replace(raw, "");
        }
        if bare.chars().any(|c| c.is_ascii_digit()) {
            factual += 1;
            if marks
                .iter()
                .any(|(_, n)| n.is_some_and(|n| known.contains(&n)))
            {
                cited += 1;
            }
        }
    }
    (factual, cited)
}

/// One scored answer.
#[derive(Debug, Clone, Serialize)]
pub struct ScoredAnswer {
    pub question_id: String,
    pub run: u32,
    pub writer: String,
    pub question_type: String,
    pub uses_stale_fixture: bool,
    pub analysis_id: String,
    pub actions: Vec<String>,
    pub confidence: Option<f64>,
    pub issues: Vec<Issue>,
    pub factual_sentences: u32,
    pub cited_sentences: u32,
    pub hallucinations: u32,
    pub claims: u32,
    pub diagnosis: f64,
    pub coherence: f64,
    pub lever_violations: Option<u32>,
    /// Stale-fixture answers: no staleness rule fired and the reviewer marked it recognised.
    pub staleness_recognised: Option<bool>,
    /// AGT-902 answers: no taxonomy, writer or lever issue and no reviewer-counted violation.
    pub lever_correct: Option<bool>,
    /// No validator issue, no hallucination, staleness recognised, levers correct.
    pub passed: bool,
    pub reviewer: String,
    pub comments: Option<String>,
    pub cost_usd: Option<f64>,
}

pub fn score_answer(a: &Answer, rubric: &Rubric) -> ScoredAnswer {
    let q = a.question;
    let ctx = Context {
        rubric,
        question: Some(q),
        writer: Some(&q.writer),
    };
    let issues = validate_all(a.output, &ctx);
    let (factual, cited) = citation_counts(a.output);
    let confs: Vec<f64> = a
        .output
        .proposed_actions
        .iter()
        .filter_map(|p| p.confidence)
        .collect();
    let stale_rules = [
        Rule::StaleAcknowledged,
        Rule::StaleDisclosed,
        Rule::StaleFixture,
    ];
    let staleness_recognised = q.uses_stale_fixture.then(|| {
        !issues.iter().any(|i| stale_rules.contains(&i.rule))
            && a.score.staleness_correctly_recognized == Some(true)
    });
    let action_rules = [Rule::Writer, Rule::Taxonomy, Rule::LeverMapping];
    let lever_correct = (q.writer == DEFAULT_WRITER).then(|| {
        !issues.iter().any(|i| action_rules.contains(&i.rule))
            && a.score.lever_mapping_violations.unwrap_or(0) == 0
    });
    let passed = issues.is_empty()
        && a.score.hallucinations_detected == 0
        && staleness_recognised != Some(false)
        && lever_correct != Some(false);
    ScoredAnswer {
        question_id: q.id.clone(),
        run: a.output.run,
        writer: q.writer.clone(),
        question_type: q.kind.clone(),
        uses_stale_fixture: q.uses_stale_fixture,
        analysis_id: a.output.analysis_id.clone(),
        actions: a
            .output
            .proposed_actions
            .iter()
            .map(|p| p.action_type.clone())
            .collect(),
        confidence: (!confs.is_empty()).then(|| confs.iter().sum::<f64>() / confs.len() as f64),
        issues,
        factual_sentences: factual,
        cited_sentences: cited,
        hallucinations: a.score.hallucinations_detected,
        claims: a.score.total_claims,
        diagnosis: a.score.diagnosis_accuracy_score,
        coherence: a.score.narrative_coherence_rating,
        lever_violations: a.score.lever_mapping_violations,
        staleness_recognised,
        lever_correct,
        passed,
        reviewer: a.score.reviewer_user_id.clone(),
        comments: a.score.comments.clone().filter(|c| !c.is_empty()),
        cost_usd: a.output.cost_usd_estimate,
    }
}

/// What a hard criterion's sample proves: failures x of n, the one-sided Clopper–Pearson upper
/// bound on the failure rate, and the n (with zero failures) needed to prove the threshold.
#[derive(Debug, Clone, Serialize)]
pub struct SampleEvidence {
    pub failures: u64,
    pub n: u64,
    pub upper_bound: f64,
    pub proves_threshold: bool,
    pub n_to_prove: Option<u64>,
    pub prove_rate: f64,
    pub statement: String,
}

fn sample_evidence(
    x: u64,
    n: u64,
    max_failure_rate: f64,
    ev: &Evidence,
    unit: &str,
) -> SampleEvidence {
    let upper = metrics::clopper_pearson_upper(x, n, ev.confidence);
    // A 100 % criterion (failure rate 0) can never be proven by sampling: report what proving
    // a failure rate of at most `prove_rate` takes instead.
    let target = if max_failure_rate > 0.0 {
        max_failure_rate
    } else {
        ev.prove_rate
    };
    let pct = ev.confidence * 100.0;
    SampleEvidence {
        failures: x,
        n,
        upper_bound: upper,
        proves_threshold: upper <= target,
        n_to_prove: metrics::n_to_prove(target, ev.confidence),
        prove_rate: target,
        statement: format!(
            "{x} of {n} {unit} failed: at {pct:.0} % the failure rate is at most {:.1} %; proving ≤ {:.1} % takes {} {unit} with no failure",
            upper * 100.0,
            target * 100.0,
            metrics::n_to_prove(target, ev.confidence).map_or("∞".into(), |n| n.to_string())
        ),
    }
}

/// One rubric row.
#[derive(Debug, Clone, Serialize)]
pub struct Criterion {
    pub name: &'static str,
    pub hard: bool,
    pub description: &'static str,
    /// "≤ 0.02", "≥ 0.95"…
    pub threshold: String,
    pub value: Option<f64>,
    pub met: bool,
    /// Soft criteria: how far below the threshold, in points of the criterion's scale.
    pub shortfall_points: Option<f64>,
    pub detail: String,
    pub evidence: Option<SampleEvidence>,
}

/// Per-question agreement across runs.
#[derive(Debug, Clone, Serialize)]
pub struct Flakiness {
    pub question_id: String,
    pub runs: usize,
    /// The primary (first) action of each run, in run order.
    pub primary_actions: Vec<String>,
    pub verdicts: Vec<bool>,
    /// 1 − (runs agreeing with the most common primary action ÷ runs).
    pub action_disagreement: f64,
    pub flaky: bool,
}

/// The harness result.
#[derive(Debug, Clone, Serialize)]
pub struct BrainReport {
    pub catalog_version: String,
    pub catalog_sha256: String,
    pub outputs: String,
    pub outputs_sha256: String,
    pub scores: String,
    pub brains: Vec<String>,
    pub models: Vec<String>,
    pub prompt_hashes: BTreeMap<String, Vec<String>>,
    pub view_contracts_hashes: Vec<String>,
    pub reviewers: Vec<String>,
    pub questions: usize,
    pub runs: u32,
    pub criteria: Vec<Criterion>,
    pub soft_met: usize,
    pub hard_passed: bool,
    pub validator_issues: usize,
    pub decision: String,
    pub rationale: String,
    pub answers: Vec<ScoredAnswer>,
    pub flakiness: Vec<Flakiness>,
    pub cost_usd: f64,
}

fn mean(v: impl Iterator<Item = f64>) -> Option<f64> {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    (n > 0).then(|| s / n as f64)
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

pub(super) fn flakiness(answers: &[ScoredAnswer]) -> Vec<Flakiness> {
    let mut by_q: BTreeMap<&str, Vec<&ScoredAnswer>> = BTreeMap::new();
    for a in answers {
        by_q.entry(&a.question_id).or_default().push(a);
    }
    by_q.into_iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(q, mut v)| {
            v.sort_by_key(|a| a.run);
            let primary: Vec<String> = v
                .iter()
                .map(|a| a.actions.first().cloned().unwrap_or_else(|| "none".into()))
                .collect();
            let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
            for p in &primary {
                *counts.entry(p).or_default() += 1;
            }
            let modal = counts.values().copied().max().unwrap_or(0);
            let verdicts: Vec<bool> = v.iter().map(|a| a.passed).collect();
            let disagreement = 1.0 - modal as f64 / v.len() as f64;
            Flakiness {
                question_id: q.to_string(),
                runs: v.len(),
                flaky: disagreement > 0.0 || verdicts.iter().any(|&p| p != verdicts[0]),
                primary_actions: primary,
                verdicts,
                action_disagreement: disagreement,
            }
        })
        .collect()
}

/// A hard criterion on the share of answers that pass: ok of n at least `min`, with the
/// evidence its sample supports. With no answer to judge it is met only when `none_is_met`.
fn share_criterion(
    name: &'static str,
    description: &'static str,
    (ok, n): (u64, u64),
    min: f64,
    none_is_met: bool,
    ev: &Evidence,
    unit: &str,
) -> Criterion {
    let value = ratio(ok, n);
    Criterion {
        name,
        hard: true,
        description,
        threshold: format!("≥ {min}"),
        value,
        met: value.map_or(none_is_met, |v| v >= min),
        shortfall_points: None,
        detail: format!("{ok} of {n} {unit}"),
        evidence: Some(sample_evidence(n - ok, n, 1.0 - min, ev, unit)),
    }
}

/// Score every answer, apply the rubric and compute the decision.
pub fn evaluate(
    catalog: &Catalog,
    answers: &[Answer],
    outputs_path: &Path,
    scores_path: &Path,
) -> Result<BrainReport> {
    let r = &catalog.rubric;
    let scored: Vec<ScoredAnswer> = answers.iter().map(|a| score_answer(a, r)).collect();
    let sum = |f: &dyn Fn(&ScoredAnswer) -> u64| scored.iter().map(f).sum::<u64>();

    // Hard criteria.
    let (halluc, claims) = (sum(&|a| a.hallucinations as u64), sum(&|a| a.claims as u64));
    let h_rate = ratio(halluc, claims);
    let stale: Vec<bool> = scored
        .iter()
        .filter_map(|a| a.staleness_recognised)
        .collect();
    let stale_ok = stale.iter().filter(|&&b| b).count() as u64;
    let levers: Vec<bool> = scored.iter().filter_map(|a| a.lever_correct).collect();
    let lever_ok = levers.iter().filter(|&&b| b).count() as u64;
    let issues = scored.iter().map(|a| a.issues.len()).sum::<usize>();
    let with_issues: Vec<String> = scored
        .iter()
        .filter(|a| !a.issues.is_empty())
        .map(|a| {
            format!(
                "{} run {}: {}",
                a.question_id,
                a.run,
                a.issues
                    .iter()
                    .map(|i| format!("{} — {}", i.rule.name(), i.detail))
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        })
        .collect();
    let ev = &r.evidence;
    let mut criteria = vec![
        Criterion {
            name: "hallucination_rate",
            hard: true,
            description: "reviewer-counted hallucinated claims ÷ claims, pooled",
            threshold: format!("≤ {}", r.hard.hallucination_rate_max),
            value: h_rate,
            met: h_rate.is_some_and(|v| v <= r.hard.hallucination_rate_max),
            shortfall_points: None,
            detail: format!("{halluc} hallucinated of {claims} claims"),
            evidence: Some(sample_evidence(
                halluc,
                claims,
                r.hard.hallucination_rate_max,
                ev,
                "claims",
            )),
        },
        share_criterion(
            "staleness_recognition",
            "stale-fixture answers that read, flag and disclose the stale source, judged recognised by the reviewer",
            (stale_ok, stale.len() as u64),
            r.hard.staleness_recognition_min,
            false,
            ev,
            "stale-fixture answers",
        ),
        share_criterion(
            "lever_mapping",
            "AGT-902 answers whose every action is in the taxonomy and names its mapped lever, with no reviewer-counted violation",
            (lever_ok, levers.len() as u64),
            r.hard.lever_mapping_min,
            true,
            ev,
            "AGT-902 answers",
        ),
    ];

    // Soft criteria.
    let (factual, cited) = (
        sum(&|a| a.factual_sentences as u64),
        sum(&|a| a.cited_sentences as u64),
    );
    let c_rate = ratio(cited, factual);
    let diag = mean(scored.iter().map(|a| a.diagnosis));
    let coh = mean(scored.iter().map(|a| a.coherence));
    let conf = mean(scored.iter().filter_map(|a| a.confidence));
    let gap = match (conf, diag) {
        (Some(c), Some(d)) => Some((c - d).abs()),
        _ => None,
    };
    let soft = |name,
                description,
                threshold: String,
                value: Option<f64>,
                short: Option<f64>,
                detail: String| {
        // Rounded to a millionth of a point: a mean of 3.4 against 4.0 is 15 points below,
        // not 15.000000000000002.
        let short = short.map(|s| (s * 1e6).round() / 1e6);
        Criterion {
            name,
            hard: false,
            description,
            threshold,
            value,
            met: short.is_some_and(|s| s <= 0.0),
            shortfall_points: Some(short.map_or(f64::INFINITY, |s| s.max(0.0))),
            detail,
            evidence: None,
        }
    };
    criteria.push(soft(
        "citation_rate",
        "sentences stating a number that carry a resolving [src:N]",
        format!("≥ {}", r.soft.citation_rate_min),
        c_rate,
        c_rate.map(|v| (r.soft.citation_rate_min - v) * 100.0),
        format!("{cited} of {factual} factual sentences cited"),
    ));
    criteria.push(soft(
        "diagnosis_accuracy",
        "mean reviewer diagnosis accuracy (0–1)",
        format!("≥ {}", r.soft.diagnosis_accuracy_min),
        diag,
        diag.map(|v| (r.soft.diagnosis_accuracy_min - v) * 100.0),
        format!("mean of {} answers", scored.len()),
    ));
    criteria.push(soft(
        "confidence_calibration",
        "|mean stated action confidence − mean diagnosis accuracy|",
        format!("≤ {}", r.soft.calibration_gap_max),
        gap,
        gap.map(|v| (v - r.soft.calibration_gap_max) * 100.0),
        match (conf, diag) {
            (Some(c), Some(d)) => format!("mean confidence {c:.3} against mean diagnosis {d:.3}"),
            _ => "no action carries a confidence: calibration cannot be judged".into(),
        },
    ));
    criteria.push(soft(
        "narrative_coherence",
        "mean reviewer coherence rating (1–5)",
        format!("≥ {}", r.soft.coherence_min),
        coh,
        coh.map(|v| (r.soft.coherence_min - v) / 4.0 * 100.0),
        format!("mean of {} answers", scored.len()),
    ));

    let hard_criteria = criteria.iter().filter(|c| c.hard).all(|c| c.met);
    let hard_passed = hard_criteria && issues == 0;
    let soft_rows: Vec<&Criterion> = criteria.iter().filter(|c| !c.hard).collect();
    let soft_met = soft_rows.iter().filter(|c| c.met).count();
    let worst = soft_rows
        .iter()
        .filter_map(|c| c.shortfall_points)
        .fold(0.0, f64::max);
    let pwn = &r.pass_with_notes;
    let describe = |c: &Criterion| {
        format!(
            "{} {} (needs {}; {})",
            c.name,
            c.value
                .map_or("not measurable".into(), |v| format!("{v:.3}")),
            c.threshold,
            c.detail
        )
    };
    let (decision, rationale) = if !hard_passed {
        let mut why: Vec<String> = criteria
            .iter()
            .filter(|c| c.hard && !c.met)
            .map(|c| format!("hard criterion failed: {}", describe(c)))
            .collect();
        if issues > 0 {
            why.push(format!(
                "{issues} validator issue(s) — answers that fail a write-time check: {}",
                with_issues.join(" | ")
            ));
        }
        ("fail", why.join("; "))
    } else if soft_met == soft_rows.len() {
        (
            "pass",
            "every hard and every soft criterion met".to_string(),
        )
    } else if soft_met >= pwn.min_soft_met && worst <= pwn.max_shortfall_points {
        (
            "pass_with_notes",
            format!(
                "every hard criterion met; {soft_met} of {} soft met, none more than {} points below: {}",
                soft_rows.len(),
                pwn.max_shortfall_points,
                soft_rows
                    .iter()
                    .filter(|c| !c.met)
                    .map(|c| describe(c))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        )
    } else {
        (
            "conditional",
            format!(
                "every hard criterion met, but {soft_met} of {} soft met and the worst is {} points below (pass_with_notes needs {} met, none more than {} below); shadow mode only: {}",
                soft_rows.len(),
                if worst.is_finite() {
                    format!("{worst:.1}")
                } else {
                    "unmeasurably far".into()
                },
                pwn.min_soft_met,
                pwn.max_shortfall_points,
                soft_rows
                    .iter()
                    .filter(|c| !c.met)
                    .map(|c| describe(c))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        )
    };

    let outputs: Vec<&BrainOutput> = answers.iter().map(|a| a.output).collect();
    let mut prompt_hashes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for a in answers {
        let v = prompt_hashes.entry(a.question.writer.clone()).or_default();
        if !v.contains(&a.output.system_prompt_hash) {
            v.push(a.output.system_prompt_hash.clone());
        }
    }
    let set = |f: &dyn Fn(&BrainOutput) -> Option<String>| -> Vec<String> {
        outputs
            .iter()
            .filter_map(|o| f(o))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    let flaky = flakiness(&scored);
    Ok(BrainReport {
        catalog_version: catalog.version.clone(),
        catalog_sha256: catalog.sha256.clone(),
        outputs: outputs_path.display().to_string(),
        outputs_sha256: sha256_file(outputs_path)?,
        scores: scores_path.display().to_string(),
        brains: prompt_hashes.keys().cloned().collect(),
        models: set(&|o| Some(o.model_id.clone())),
        view_contracts_hashes: set(&|o| o.brain_view_contracts_hash.clone()),
        prompt_hashes,
        reviewers: answers
            .iter()
            .map(|a| a.score.reviewer_user_id.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        questions: answers
            .iter()
            .map(|a| a.question.id.as_str())
            .collect::<BTreeSet<_>>()
            .len(),
        runs: answers.iter().map(|a| a.output.run).max().unwrap_or(0),
        soft_met,
        hard_passed,
        validator_issues: issues,
        decision: decision.into(),
        rationale,
        cost_usd: scored.iter().filter_map(|a| a.cost_usd).sum(),
        criteria,
        answers: scored,
        flakiness: flaky,
    })
}
