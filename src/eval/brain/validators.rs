//! The validators: the write-time checks of BrainAnalysisLog, one function per [`Rule`].

use super::*;

/// A validator rule. Every rule has a validator in [`VALIDATORS`] and probes in
/// [`probes`]; a test fails when one is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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

pub(super) fn issue(rule: Rule, detail: String) -> Issue {
    Issue { rule, detail }
}

pub(super) fn writer<'a>(ctx: &Context<'a>) -> &'a str {
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
pub(super) fn citations(text: &str) -> Vec<(String, Option<u32>)> {
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

pub(super) fn indices(o: &BrainOutput) -> BTreeSet<u32> {
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
pub(super) fn cited(o: &BrainOutput, source: &str) -> Option<bool> {
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
