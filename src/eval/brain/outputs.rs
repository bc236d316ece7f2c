//! What is scored: brain outputs (BrainAnalysisLog JSONL) and reviewer scores, read with line
//! numbers and lined up with the catalog (Polars), and the reviewers who may not judge a brain
//! they tuned.

use super::*;

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct SourceRead {
    pub source_index: u32,
    pub source: String,
    pub kind: String,
    #[serde(default)]
    pub last_refresh_timestamp: Option<String>,
    #[serde(default)]
    pub is_stale: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct ProposedAction {
    pub action_type: String,
    #[serde(default)]
    pub lever: Option<String>,
    #[serde(default)]
    pub confidence: Option<f64>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct ToolCall {
    pub tool: String,
    pub status: String,
}

fn first_run() -> u32 {
    1
}

/// One BrainAnalysisLog line: a brain's answer to one catalog question in one run. Fields the
/// harness does not score (token counts, timings) may be present and are ignored.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
pub struct BrainOutput {
    pub analysis_id: String,
    pub question_id: String,
    #[serde(default = "first_run")]
    pub run: u32,
    #[serde(default)]
    pub writer_agent_id: Option<String>,
    pub model_id: String,
    pub system_prompt_hash: String,
    #[serde(default)]
    pub brain_view_contracts_hash: Option<String>,
    pub narrative_output: String,
    pub sources_read: Vec<SourceRead>,
    pub proposed_actions: Vec<ProposedAction>,
    pub tool_calls_made: Vec<ToolCall>,
    pub data_staleness_acknowledged: bool,
    #[serde(default)]
    pub confidence_flags: Vec<String>,
    #[serde(default)]
    pub cost_usd_estimate: Option<f64>,
    #[serde(skip)]
    pub line: u64,
}

/// One reviewer score line (BrainEvalQuestionScore's human-reviewed fields).
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ReviewerScore {
    pub question_id: String,
    #[serde(default = "first_run")]
    pub run: u32,
    pub reviewer_user_id: String,
    pub hallucinations_detected: u32,
    pub total_claims: u32,
    pub diagnosis_accuracy_score: f64,
    pub narrative_coherence_rating: f64,
    #[serde(default)]
    pub lever_mapping_violations: Option<u32>,
    #[serde(default)]
    pub staleness_correctly_recognized: Option<bool>,
    #[serde(default)]
    pub comments: Option<String>,
    #[serde(skip)]
    pub line: u64,
}

fn read_lines<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &str,
    set_line: fn(&mut T, u64),
) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))?;
    Ok(jsonl::<T>(path, &text, what)?
        .into_iter()
        .map(|(line, mut v)| {
            set_line(&mut v, line);
            v
        })
        .collect())
}

pub fn read_outputs(path: &Path) -> Result<Vec<BrainOutput>> {
    read_lines(path, "a BrainAnalysisLog line", |o: &mut BrainOutput, l| {
        o.line = l
    })
}

pub fn read_scores(path: &Path) -> Result<Vec<ReviewerScore>> {
    read_lines(path, "a reviewer score line", |s: &mut ReviewerScore, l| {
        s.line = l
    })
}

fn str_refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

pub(super) fn key(question: &str, run: u32) -> String {
    format!("{question} run {run}")
}

/// One problem per key that occurs more than once: "Q04 run 1 answered 2 times (lines 4, 60)".
fn repeated(
    problems: &mut Vec<String>,
    dups: &[Vec<u32>],
    keys: &[String],
    verb: &str,
    line: impl Fn(usize) -> u64,
) {
    for rows in dups {
        problems.push(format!(
            "{} {verb} {} times (lines {})",
            keys[rows[0] as usize],
            rows.len(),
            rows.iter()
                .map(|&r| line(r as usize).to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
}

/// An answer, the catalog question it answers and its reviewer score.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub question: &'a Question,
    pub output: &'a BrainOutput,
    pub score: &'a ReviewerScore,
}

/// Line outputs and scores up with the catalog, or list every problem: outputs for questions
/// not in the catalog, catalog questions never answered, a (question, run) answered or scored
/// twice, answers without a score and scores without an answer, and reviewer values outside
/// their scales. Nothing is dropped.
pub fn align<'a>(
    catalog: &'a Catalog,
    outputs: &'a [BrainOutput],
    outputs_path: &Path,
    scores: &'a [ReviewerScore],
    scores_path: &Path,
) -> Result<Vec<Answer<'a>>> {
    let out_keys: Vec<String> = outputs.iter().map(|o| key(&o.question_id, o.run)).collect();
    let score_keys: Vec<String> = scores.iter().map(|s| key(&s.question_id, s.run)).collect();
    let qids: Vec<&str> = catalog.questions.iter().map(|q| q.id.as_str()).collect();
    let out_q: Vec<&str> = outputs.iter().map(|o| o.question_id.as_str()).collect();

    let mut problems = Vec::new();
    let by_question = match_keys(&qids, &out_q)?;
    for &r in &by_question.right_only {
        let o = &outputs[r as usize];
        problems.push(format!(
            "line {}: question `{}` is not in the catalog (version {})",
            o.line, o.question_id, catalog.version
        ));
    }
    if !by_question.left_only.is_empty() {
        let ids: Vec<&str> = by_question
            .left_only
            .iter()
            .map(|&r| qids[r as usize])
            .collect();
        problems.push(format!(
            "{} catalog question(s) have no answer: {}",
            ids.len(),
            crate::eval::golden::short_list(&ids)
        ));
    }
    let m = match_keys(&str_refs(&out_keys), &str_refs(&score_keys))?;
    repeated(&mut problems, &m.dup_left, &out_keys, "answered", |r| {
        outputs[r].line
    });
    for &r in &m.left_only {
        let o = &outputs[r as usize];
        if catalog.question(&o.question_id).is_some() {
            problems.push(format!(
                "line {}: {} has no reviewer score in {}",
                o.line,
                out_keys[r as usize],
                scores_path.display()
            ));
        }
    }
    refuse(outputs_path, "the brain outputs", problems)?;

    let mut problems = Vec::new();
    repeated(&mut problems, &m.dup_right, &score_keys, "scored", |r| {
        scores[r].line
    });
    for &r in &m.right_only {
        let s = &scores[r as usize];
        problems.push(format!(
            "line {}: {} scores an answer that is not in {}",
            s.line,
            score_keys[r as usize],
            outputs_path.display()
        ));
    }
    for s in scores {
        let at = format!("line {}", s.line);
        if s.hallucinations_detected > s.total_claims {
            problems.push(format!(
                "{at}: {} hallucinations in {} claims",
                s.hallucinations_detected, s.total_claims
            ));
        }
        if !(0.0..=1.0).contains(&s.diagnosis_accuracy_score) {
            problems.push(format!(
                "{at}: diagnosis_accuracy_score {} is outside [0, 1]",
                s.diagnosis_accuracy_score
            ));
        }
        if !(1.0..=5.0).contains(&s.narrative_coherence_rating) {
            problems.push(format!(
                "{at}: narrative_coherence_rating {} is outside 1–5",
                s.narrative_coherence_rating
            ));
        }
        if let Some(q) = catalog.question(&s.question_id) {
            if q.uses_stale_fixture && s.staleness_correctly_recognized.is_none() {
                problems.push(format!(
                    "{at}: {} uses a stale fixture; staleness_correctly_recognized must be true or false",
                    s.question_id
                ));
            }
            if !q.uses_stale_fixture && s.staleness_correctly_recognized.is_some() {
                problems.push(format!(
                    "{at}: {} does not use a stale fixture; staleness_correctly_recognized must be null",
                    s.question_id
                ));
            }
            if q.writer == DEFAULT_WRITER && s.lever_mapping_violations.is_none() {
                problems.push(format!(
                    "{at}: {} is an {DEFAULT_WRITER} question; lever_mapping_violations must be counted",
                    s.question_id
                ));
            }
        }
    }
    refuse(scores_path, "the reviewer scores", problems)?;

    let mut problems = Vec::new();
    for o in outputs {
        for a in &o.proposed_actions {
            if let Some(c) = a.confidence
                && !(0.0..=1.0).contains(&c)
            {
                problems.push(format!(
                    "line {}: action `{}` has confidence {c}, outside [0, 1]",
                    o.line, a.action_type
                ));
            }
        }
    }
    refuse(outputs_path, "the brain outputs", problems)?;

    Ok(m.pairs
        .iter()
        .map(|&(o, s)| {
            let output = &outputs[o as usize];
            Answer {
                question: catalog
                    .question(&output.question_id)
                    .expect("checked above"),
                output,
                score: &scores[s as usize],
            }
        })
        .collect())
}

/// Reviewers of these scores who tuned a brain under test, with the brain.
pub fn dependent_reviewers(
    catalog: &Catalog,
    outputs: &[BrainOutput],
    scores: &[ReviewerScore],
) -> Vec<(String, String)> {
    let brains: BTreeSet<&str> = outputs
        .iter()
        .filter_map(|o| catalog.question(&o.question_id).map(|q| q.writer.as_str()))
        .collect();
    let reviewers: BTreeSet<&str> = scores.iter().map(|s| s.reviewer_user_id.as_str()).collect();
    catalog
        .tuners
        .iter()
        .filter(|t| reviewers.contains(t.user_id.as_str()) && brains.contains(t.brain.as_str()))
        .map(|t| (t.user_id.clone(), t.brain.clone()))
        .collect()
}
