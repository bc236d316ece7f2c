//! The brain eval harness (`gtmos eval brain`, SPEC §11): the question catalog, the rubric and
//! the prompt-tuner registry under `golden/brain_eval/`; brain outputs (BrainAnalysisLog JSONL)
//! and reviewer scores lined up with the catalog (Polars); the validators — the write-time
//! checks of BrainAnalysisLog — with their calibration probes; the rubric's decision, the
//! evidence each hard criterion's sample supports, and per-question flakiness across runs.

mod workflow;

pub use workflow::{BrainEval, BrainRun, Refusal, Request, run};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::golden::{bad, jsonl, refuse};
use super::keys::match_keys;
use super::metrics;
use crate::error::{Error, Result};
use crate::table_io::sha256_file;

/// The writer whose taxonomy applies when none is named (legacy callers must not validate
/// against the pipeline brain's smaller enum by accident).
pub const DEFAULT_WRITER: &str = "AGT-902";

// ---------------------------------------------------------------------------------------------
// Catalog, rubric, registry

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Question {
    pub id: String,
    pub writer: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub question: String,
    pub subject: String,
    pub uses_stale_fixture: bool,
    #[serde(default)]
    pub stale_source: Option<String>,
    #[serde(default)]
    pub must_cite_tools: Vec<String>,
    #[serde(default)]
    pub must_cite_sources: Vec<String>,
    pub ground_truth: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    version: String,
    questions: Vec<Question>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Hard {
    pub hallucination_rate_max: f64,
    pub staleness_recognition_min: f64,
    pub lever_mapping_min: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Soft {
    pub citation_rate_min: f64,
    pub diagnosis_accuracy_min: f64,
    pub calibration_gap_max: f64,
    pub coherence_min: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PassWithNotes {
    pub min_soft_met: usize,
    pub max_shortfall_points: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Evidence {
    pub confidence: f64,
    pub prove_rate: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rubric {
    pub hard: Hard,
    pub soft: Soft,
    pub pass_with_notes: PassWithNotes,
    pub evidence: Evidence,
    pub staleness_disclosure_phrases: Vec<String>,
    pub taxonomies: BTreeMap<String, Vec<String>>,
    pub levers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tuner {
    pub user_id: String,
    pub brain: String,
    pub since: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Registry {
    tuners: Vec<Tuner>,
}

/// `golden/brain_eval/`: the catalog, the rubric and the prompt-tuner registry.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub dir: PathBuf,
    pub version: String,
    pub sha256: String,
    pub questions: Vec<Question>,
    pub rubric: Rubric,
    pub tuners: Vec<Tuner>,
}

/// A YAML file parsed, with the sha256 of the very bytes parsed.
fn yaml<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<(T, String)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))?;
    let sha = crate::table_io::sha256_hex(text.as_bytes());
    serde_yaml_ng::from_str(&text)
        .map(|v| (v, sha))
        .map_err(|e| {
            bad(
                path,
                e.location().map(|l| l.line() as u64),
                format!("not {what}: {e}"),
            )
        })
}

impl Catalog {
    pub fn load(dir: &Path) -> Result<Catalog> {
        let path = dir.join("catalog.yml");
        let (file, sha256): (CatalogFile, _) = yaml(&path, "a brain eval catalog")?;
        let rpath = dir.join("rubric.yml");
        let (rubric, _): (Rubric, _) = yaml(&rpath, "a brain eval rubric")?;
        let tuners = yaml::<Registry>(&dir.join("prompt_tuners.yml"), "a prompt-tuner registry")?
            .0
            .tuners;
        let mut problems = Vec::new();
        let mut seen = BTreeSet::new();
        for q in &file.questions {
            if !seen.insert(q.id.as_str()) {
                problems.push(format!("question {} is listed twice", q.id));
            }
            if !rubric.taxonomies.contains_key(&q.writer) {
                problems.push(format!(
                    "question {}: writer {} has no taxonomy in rubric.yml",
                    q.id, q.writer
                ));
            }
            if q.uses_stale_fixture != q.stale_source.is_some() {
                problems.push(format!(
                    "question {}: a stale-fixture question names its stale_source, and only it does",
                    q.id
                ));
            }
        }
        for action in rubric.levers.keys() {
            if !rubric.taxonomies[DEFAULT_WRITER].contains(action) {
                problems.push(format!(
                    "rubric.yml: lever for `{action}`, which is not in {DEFAULT_WRITER}'s taxonomy"
                ));
            }
        }
        if let Some(t) = rubric.taxonomies.get(DEFAULT_WRITER) {
            for a in t {
                if !rubric.levers.contains_key(a) {
                    problems.push(format!(
                        "rubric.yml: {DEFAULT_WRITER} action `{a}` has no lever"
                    ));
                }
            }
        } else {
            problems.push(format!("rubric.yml: no taxonomy for {DEFAULT_WRITER}"));
        }
        refuse(&path, "the brain eval catalog", problems)?;
        Ok(Catalog {
            dir: dir.to_path_buf(),
            version: file.version,
            sha256,
            questions: file.questions,
            rubric,
            tuners,
        })
    }

    pub fn question(&self, id: &str) -> Option<&Question> {
        self.questions.iter().find(|q| q.id == id)
    }
}

// ---------------------------------------------------------------------------------------------
// Brain outputs and reviewer scores

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

fn key(question: &str, run: u32) -> String {
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
            super::golden::short_list(&ids)
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

// ---------------------------------------------------------------------------------------------
// Validators

/// A validator rule. Every rule has a validator in [`VALIDATORS`] and probes in
/// [`probes`]; a test fails when one is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The answer is written by the brain the question is for.
    Writer,
    /// Every proposed action_type is in the writer's taxonomy.
    Taxonomy,
    /// Every [src:N] in the narrative resolves to a source_index of sources_read.
    Citations,
    /// A source read as stale sets data_staleness_acknowledged.
    StaleAcknowledged,
    /// data_staleness_acknowledged requires a disclosure phrase in the narrative.
    StaleDisclosed,
    /// A stale-fixture question's stale source is read and marked stale.
    StaleFixture,
    /// Each must-cite tool is both called (tool_calls_made) and cited (sources_read + [src:N]).
    MustCiteTool,
    /// Each must-cite source (AGT-901 rollups) is read and cited.
    MustCiteSource,
    /// AGT-902 actions name the lever their action_type maps to.
    LeverMapping,
}

impl Rule {
    pub fn name(self) -> &'static str {
        match self {
            Rule::Writer => "writer",
            Rule::Taxonomy => "taxonomy",
            Rule::Citations => "citations",
            Rule::StaleAcknowledged => "stale_acknowledged",
            Rule::StaleDisclosed => "stale_disclosed",
            Rule::StaleFixture => "stale_fixture",
            Rule::MustCiteTool => "must_cite_tool",
            Rule::MustCiteSource => "must_cite_source",
            Rule::LeverMapping => "lever_mapping",
        }
    }
}

/// A hard issue a validator found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Issue {
    pub rule: Rule,
    pub detail: String,
}

/// What a validator checks an output against: the question (when validating a catalog answer)
/// and the writer whose taxonomy applies (None: [`DEFAULT_WRITER`]).
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub rubric: &'a Rubric,
    pub question: Option<&'a Question>,
    pub writer: Option<&'a str>,
}

type Validator = fn(&BrainOutput, &Context) -> Vec<Issue>;

/// Every validator the harness runs, by rule.
pub const VALIDATORS: &[(Rule, Validator)] = &[
    (Rule::Writer, check_writer),
    (Rule::Taxonomy, check_taxonomy),
    (Rule::Citations, check_citations),
    (Rule::StaleAcknowledged, check_stale_acknowledged),
    (Rule::StaleDisclosed, check_stale_disclosed),
    (Rule::StaleFixture, check_stale_fixture),
    (Rule::MustCiteTool, check_must_cite_tool),
    (Rule::MustCiteSource, check_must_cite_source),
    (Rule::LeverMapping, check_lever_mapping),
];

/// Run every validator.
pub fn validate_all(o: &BrainOutput, ctx: &Context) -> Vec<Issue> {
    VALIDATORS.iter().flat_map(|(_, f)| f(o, ctx)).collect()
}

fn issue(rule: Rule, detail: String) -> Issue {
    Issue { rule, detail }
}

fn writer<'a>(ctx: &Context<'a>) -> &'a str {
    ctx.writer.unwrap_or(DEFAULT_WRITER)
}

fn check_writer(o: &BrainOutput, ctx: &Context) -> Vec<Issue> {
    match (ctx.writer, o.writer_agent_id.as_deref()) {
        (Some(want), Some(got)) if want != got => vec![issue(
            Rule::Writer,
            format!("written by {got}, but the question is for {want}"),
        )],
        (Some(want), None) => vec![issue(
            Rule::Writer,
            format!("no writer_agent_id; the question is for {want}"),
        )],
        _ => vec![],
    }
}

fn check_taxonomy(o: &BrainOutput, ctx: &Context) -> Vec<Issue> {
    let w = writer(ctx);
    let taxonomy = ctx
        .rubric
        .taxonomies
        .get(w)
        .or_else(|| ctx.rubric.taxonomies.get(DEFAULT_WRITER));
    o.proposed_actions
        .iter()
        .filter(|a| !taxonomy.is_some_and(|t| t.contains(&a.action_type)))
        .map(|a| {
            issue(
                Rule::Taxonomy,
                format!("action_type `{}` is not in {w}'s taxonomy", a.action_type),
            )
        })
        .collect()
}

/// The N of every `[src:N]` in a text, in order (a malformed marker yields None).
fn citations(text: &str) -> Vec<(String, Option<u32>)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("[src:") {
        let after = &rest[i + 5..];
        let end = after.find(']').unwrap_or(after.len());
        let raw = &after[..end];
        out.push((format!("[src:{raw}]"), raw.trim().parse().ok()));
        rest = &after[end.min(after.len())..];
    }
    out
}

fn indices(o: &BrainOutput) -> BTreeSet<u32> {
    o.sources_read.iter().map(|s| s.source_index).collect()
}

fn check_citations(o: &BrainOutput, _: &Context) -> Vec<Issue> {
    let known = indices(o);
    let mut out: Vec<Issue> = citations(&o.narrative_output)
        .into_iter()
        .filter(|(_, n)| !n.is_some_and(|n| known.contains(&n)))
        .map(|(raw, _)| {
            issue(
                Rule::Citations,
                format!(
                    "{raw} resolves to no source (source_index: {})",
                    known
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
        .collect();
    if known.len() != o.sources_read.len() {
        out.push(issue(
            Rule::Citations,
            "sources_read repeats a source_index".into(),
        ));
    }
    out
}

fn check_stale_acknowledged(o: &BrainOutput, _: &Context) -> Vec<Issue> {
    let stale: Vec<&str> = o
        .sources_read
        .iter()
        .filter(|s| s.is_stale)
        .map(|s| s.source.as_str())
        .collect();
    if !stale.is_empty() && !o.data_staleness_acknowledged {
        vec![issue(
            Rule::StaleAcknowledged,
            format!(
                "read stale {} but data_staleness_acknowledged is false",
                stale.join(", ")
            ),
        )]
    } else {
        vec![]
    }
}

fn discloses(o: &BrainOutput, rubric: &Rubric) -> bool {
    let text = o.narrative_output.to_lowercase();
    rubric
        .staleness_disclosure_phrases
        .iter()
        .any(|p| text.contains(&p.to_lowercase()))
}

fn check_stale_disclosed(o: &BrainOutput, ctx: &Context) -> Vec<Issue> {
    if o.data_staleness_acknowledged && !discloses(o, ctx.rubric) {
        vec![issue(
            Rule::StaleDisclosed,
            format!(
                "data_staleness_acknowledged, but the narrative has no disclosure phrase ({})",
                ctx.rubric.staleness_disclosure_phrases.join(" / ")
            ),
        )]
    } else {
        vec![]
    }
}

fn check_stale_fixture(o: &BrainOutput, ctx: &Context) -> Vec<Issue> {
    let Some(stale) = ctx.question.and_then(|q| q.stale_source.as_deref()) else {
        return vec![];
    };
    match o.sources_read.iter().find(|s| s.source == stale) {
        None => vec![issue(
            Rule::StaleFixture,
            format!("the stale fixture `{stale}` is not among sources_read"),
        )],
        Some(s) if !s.is_stale => vec![issue(
            Rule::StaleFixture,
            format!("read the stale fixture `{stale}` but did not mark it is_stale"),
        )],
        Some(_) => vec![],
    }
}

/// Whether the narrative cites `source` through a [src:N] of sources_read.
fn cited(o: &BrainOutput, source: &str) -> Option<bool> {
    let idx: BTreeSet<u32> = o
        .sources_read
        .iter()
        .filter(|s| s.source == source)
        .map(|s| s.source_index)
        .collect();
    if idx.is_empty() {
        return None;
    }
    Some(
        citations(&o.narrative_output)
            .iter()
            .any(|(_, n)| n.is_some_and(|n| idx.contains(&n))),
    )
}

fn check_must_cite_tool(o: &BrainOutput, ctx: &Context) -> Vec<Issue> {
    let Some(q) = ctx.question else {
        return vec![];
    };
    let mut out = Vec::new();
    for t in &q.must_cite_tools {
        let dispatch = match o.tool_calls_made.iter().find(|c| &c.tool == t) {
            None => Some("not in tool_calls_made (dispatch side)".to_string()),
            Some(c) if c.status != "ok" => Some(format!(
                "called with status `{}` in tool_calls_made (dispatch side)",
                c.status
            )),
            Some(_) => None,
        };
        let narrative = match cited(o, t) {
            None => Some("not in sources_read (narrative side)".to_string()),
            Some(false) => Some("in sources_read but never cited with [src:N]".to_string()),
            Some(true) => None,
        };
        let failed: Vec<String> = [dispatch, narrative].into_iter().flatten().collect();
        if !failed.is_empty() {
            out.push(issue(
                Rule::MustCiteTool,
                format!("{t} must be called and cited: {}", failed.join("; ")),
            ));
        }
    }
    out
}

fn check_must_cite_source(o: &BrainOutput, ctx: &Context) -> Vec<Issue> {
    let Some(q) = ctx.question else {
        return vec![];
    };
    q.must_cite_sources
        .iter()
        .filter_map(|s| match cited(o, s) {
            None => Some(format!("`{s}` must be cited but is not among sources_read")),
            Some(false) => Some(format!(
                "`{s}` is in sources_read but never cited with [src:N]"
            )),
            Some(true) => None,
        })
        .map(|d| issue(Rule::MustCiteSource, d))
        .collect()
}

fn check_lever_mapping(o: &BrainOutput, ctx: &Context) -> Vec<Issue> {
    if writer(ctx) != DEFAULT_WRITER {
        return vec![];
    }
    o.proposed_actions
        .iter()
        .filter_map(|a| {
            let want = ctx.rubric.levers.get(&a.action_type)?;
            let got = a.lever.as_deref().unwrap_or("none");
            (got != want).then(|| {
                issue(
                    Rule::LeverMapping,
                    format!(
                        "`{}` maps to lever {want}, but the action names {got}",
                        a.action_type
                    ),
                )
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Calibration probes

/// A synthetic output run through the validators: a violation the named rule must catch, or
/// a negative control every validator must pass in silence.
pub struct Probe {
    pub id: &'static str,
    pub rule: Rule,
    /// True: `rule` must fire. False: a negative control — no validator may fire.
    pub fires: bool,
    pub what: &'static str,
    pub output: BrainOutput,
    pub question: Option<Question>,
    pub writer: Option<&'static str>,
}

/// What a probe run found.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeResult {
    pub id: &'static str,
    pub rule: &'static str,
    pub expects: &'static str,
    pub what: &'static str,
    pub passed: bool,
    pub issues: Vec<Issue>,
}

fn clean_output(writer: &str) -> BrainOutput {
    let (action, lever) = if writer == "AGT-901" {
        ("draft_play", None)
    } else {
        ("open_expansion_play", Some("AGT-503".to_string()))
    };
    BrainOutput {
        analysis_id: "probe".into(),
        question_id: "PROBE".into(),
        run: 1,
        writer_agent_id: Some(writer.into()),
        model_id: "probe".into(),
        system_prompt_hash: "probe".into(),
        narrative_output: "Usage grew 12 % a month for six months [src:1]. TOOL-004 puts the overage 40 days out [src:2]. Open the expansion play.".into(),
        sources_read: vec![
            SourceRead {
                source_index: 1,
                source: "usage".into(),
                kind: "view".into(),
                ..Default::default()
            },
            SourceRead {
                source_index: 2,
                source: "TOOL-004".into(),
                kind: "tool".into(),
                ..Default::default()
            },
        ],
        proposed_actions: vec![ProposedAction {
            action_type: action.into(),
            lever,
            confidence: Some(0.8),
        }],
        tool_calls_made: vec![ToolCall {
            tool: "TOOL-004".into(),
            status: "ok".into(),
        }],
        ..Default::default()
    }
}

fn probe_question(writer: &str) -> Question {
    Question {
        id: "PROBE".into(),
        writer: writer.into(),
        kind: "probe".into(),
        subject: "account:PROBE".into(),
        must_cite_tools: vec!["TOOL-004".into()],
        must_cite_sources: if writer == "AGT-901" {
            vec!["usage".into()]
        } else {
            vec![]
        },
        ..Default::default()
    }
}

fn stale_question() -> Question {
    Question {
        uses_stale_fixture: true,
        stale_source: Some("usage".into()),
        ..probe_question(DEFAULT_WRITER)
    }
}

fn stale_output() -> BrainOutput {
    let mut o = clean_output(DEFAULT_WRITER);
    o.sources_read[0].is_stale = true;
    o.data_staleness_acknowledged = true;
    o.narrative_output
        .push_str(" The usage data is stale: last refreshed two days ago [src:1].");
    o
}

/// Every probe: the seed's C1, C1b, C2, C2b and Sanity, then a violation and a negative control
/// for each further rule.
pub fn probes() -> Vec<Probe> {
    let p = |id, rule, fires, what, output, question, writer| Probe {
        id,
        rule,
        fires,
        what,
        output,
        question,
        writer,
    };
    let with = |f: &dyn Fn(&mut BrainOutput)| {
        let mut o = clean_output(DEFAULT_WRITER);
        f(&mut o);
        o
    };
    let q902 = Some(probe_question(DEFAULT_WRITER));
    let q901 = Some(probe_question("AGT-901"));
    vec![
        p(
            "C1",
            Rule::Taxonomy,
            true,
            "invented action_type in AGT-902's enum",
            with(&|o| o.proposed_actions[0].action_type = "offer_discount".into()),
            q902.clone(),
            Some("AGT-902"),
        ),
        p(
            "C1b",
            Rule::Taxonomy,
            true,
            "AGT-902 action_type leaked into AGT-901's enum (the taxonomy parameter is enforced)",
            {
                let mut o = clean_output("AGT-901");
                o.proposed_actions[0].action_type = "open_expansion_play".into();
                o
            },
            q901.clone(),
            Some("AGT-901"),
        ),
        p(
            "C1c",
            Rule::Taxonomy,
            false,
            "negative control: AGT-901 answer in its own enum",
            clean_output("AGT-901"),
            q901.clone(),
            Some("AGT-901"),
        ),
        p(
            "Sanity",
            Rule::Taxonomy,
            true,
            "no writer given: the default taxonomy is AGT-902's, so AGT-901's draft_play is refused",
            with(&|o| {
                o.proposed_actions[0].action_type = "draft_play".into();
                o.proposed_actions[0].lever = None;
            }),
            None,
            None,
        ),
        p(
            "C2",
            Rule::Citations,
            true,
            "unresolved [src:99] citation",
            with(&|o| {
                o.narrative_output
                    .push_str(" Support tickets doubled [src:99].")
            }),
            q902.clone(),
            Some("AGT-902"),
        ),
        p(
            "C2b",
            Rule::Citations,
            false,
            "negative control: every citation resolves",
            clean_output(DEFAULT_WRITER),
            q902.clone(),
            Some("AGT-902"),
        ),
        p(
            "C2c",
            Rule::Citations,
            true,
            "malformed [src:x] citation",
            with(&|o| o.narrative_output.push_str(" See [src:x].")),
            q902.clone(),
            Some("AGT-902"),
        ),
        p(
            "W1",
            Rule::Writer,
            true,
            "AGT-901 answered an AGT-902 question",
            with(&|o| o.writer_agent_id = Some("AGT-901".into())),
            q902.clone(),
            Some("AGT-902"),
        ),
        p(
            "W1b",
            Rule::Writer,
            false,
            "negative control: the question's own writer",
            clean_output(DEFAULT_WRITER),
            q902.clone(),
            Some("AGT-902"),
        ),
        p(
            "S1",
            Rule::StaleAcknowledged,
            true,
            "read a stale source without acknowledging it",
            {
                let mut o = stale_output();
                o.data_staleness_acknowledged = false;
                o
            },
            Some(stale_question()),
            Some("AGT-902"),
        ),
        p(
            "S1b",
            Rule::StaleAcknowledged,
            false,
            "negative control: stale source acknowledged and disclosed",
            stale_output(),
            Some(stale_question()),
            Some("AGT-902"),
        ),
        p(
            "S2",
            Rule::StaleDisclosed,
            true,
            "acknowledged staleness with no disclosure phrase in the narrative",
            {
                let mut o = stale_output();
                o.narrative_output = clean_output(DEFAULT_WRITER).narrative_output;
                o
            },
            Some(stale_question()),
            Some("AGT-902"),
        ),
        p(
            "S2b",
            Rule::StaleDisclosed,
            false,
            "negative control: acknowledged and disclosed",
            stale_output(),
            Some(stale_question()),
            Some("AGT-902"),
        ),
        p(
            "S3",
            Rule::StaleFixture,
            true,
            "the stale fixture read as fresh",
            {
                let mut o = stale_output();
                o.sources_read[0].is_stale = false;
                o
            },
            Some(stale_question()),
            Some("AGT-902"),
        ),
        p(
            "S3b",
            Rule::StaleFixture,
            false,
            "negative control: the stale fixture marked stale",
            stale_output(),
            Some(stale_question()),
            Some("AGT-902"),
        ),
        p(
            "T1",
            Rule::MustCiteTool,
            true,
            "must-cite tool cited in the narrative but never called (fabricated citation; dispatch side)",
            with(&|o| o.tool_calls_made.clear()),
            q902.clone(),
            Some("AGT-902"),
        ),
        p(
            "T1a",
            Rule::MustCiteTool,
            true,
            "must-cite tool called but not among sources_read (narrative side)",
            with(&|o| {
                o.sources_read.pop();
                o.narrative_output = o.narrative_output.replace(" [src:2]", "");
            }),
            q902.clone(),
            Some("AGT-902"),
        ),
        p(
            "T1c",
            Rule::MustCiteTool,
            true,
            "must-cite tool called with an error status",
            with(&|o| o.tool_calls_made[0].status = "error".into()),
            q902.clone(),
            Some("AGT-902"),
        ),
        p(
            "T1b",
            Rule::MustCiteTool,
            false,
            "negative control: tool called and cited",
            clean_output(DEFAULT_WRITER),
            q902.clone(),
            Some("AGT-902"),
        ),
        p(
            "M1",
            Rule::MustCiteSource,
            true,
            "AGT-901 rollup read but never cited",
            {
                let mut o = clean_output("AGT-901");
                o.narrative_output = o.narrative_output.replace(" [src:1]", "");
                o
            },
            q901.clone(),
            Some("AGT-901"),
        ),
        p(
            "M1b",
            Rule::MustCiteSource,
            false,
            "negative control: the rollup cited",
            clean_output("AGT-901"),
            q901.clone(),
            Some("AGT-901"),
        ),
        p(
            "L1",
            Rule::LeverMapping,
            true,
            "open_expansion_play names the QBR lever",
            with(&|o| o.proposed_actions[0].lever = Some("AGT-603".into())),
            q902.clone(),
            Some("AGT-902"),
        ),
        p(
            "L1c",
            Rule::LeverMapping,
            true,
            "escalate_to_slm names no lever (must be a human)",
            with(&|o| {
                o.proposed_actions[0].action_type = "escalate_to_slm".into();
                o.proposed_actions[0].lever = None;
            }),
            q902.clone(),
            Some("AGT-902"),
        ),
        p(
            "L1b",
            Rule::LeverMapping,
            false,
            "negative control: the mapped lever",
            clean_output(DEFAULT_WRITER),
            q902,
            Some("AGT-902"),
        ),
    ]
}

/// Run every probe through every validator.
pub fn run_probes(rubric: &Rubric) -> Vec<ProbeResult> {
    probes()
        .into_iter()
        .map(|p| {
            let ctx = Context {
                rubric,
                question: p.question.as_ref(),
                writer: p.writer,
            };
            let issues = validate_all(&p.output, &ctx);
            // A violation must be caught by its own rule and by no other (each probe breaks
            // one thing); a negative control must leave every validator silent.
            let passed = if p.fires {
                !issues.is_empty() && issues.iter().all(|i| i.rule == p.rule)
            } else {
                issues.is_empty()
            };
            ProbeResult {
                id: p.id,
                rule: p.rule.name(),
                expects: if p.fires { "fires" } else { "silent" },
                what: p.what,
                passed,
                issues,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Scoring and the rubric

/// Sentences of a narrative: split after `.`, `!` or `?` followed by whitespace.
fn sentences(text: &str) -> Vec<&str> {
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

fn flakiness(answers: &[ScoredAnswer]) -> Vec<Flakiness> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_split_after_stops_not_inside_numbers() {
        assert_eq!(
            sentences("Usage rose 12.5 % [src:1]. Why? Because. Trailing"),
            vec!["Usage rose 12.5 % [src:1].", "Why?", "Because.", "Trailing"]
        );
    }

    #[test]
    fn citations_parse_numbers_and_malformed_markers() {
        let c = citations("a [src:1] b [src:12] c [src:x] d [src:");
        let n: Vec<Option<u32>> = c.iter().map(|(_, n)| *n).collect();
        assert_eq!(n, vec![Some(1), Some(12), None, None]);
    }

    #[test]
    fn citation_counts_ignore_digits_in_markers() {
        let mut o = clean_output(DEFAULT_WRITER);
        // 3 sentences: two factual (cited), one without a number.
        assert_eq!(citation_counts(&o), (2, 2));
        o.narrative_output =
            "Renewal is 90 days out. Nothing else [src:1]. Grew 5 % [src:7].".into();
        // "Nothing else [src:1]." has no digit outside its marker; [src:7] does not resolve.
        assert_eq!(citation_counts(&o), (2, 0));
    }
}
