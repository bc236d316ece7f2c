//! Fitting a document to its token budget: the oldest detail dropped first and recorded, the
//! composite's staleness from its components, token statistics, and the document builder.

use super::*;

/// The row to drop first: the oldest dated row (of equal days, the lowest ranked), else the
/// lowest ranked.
pub(super) fn oldest_index(rows: &[Row]) -> Option<usize> {
    if rows.is_empty() {
        return None;
    }
    let dated = rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.day.map(|d| (d, -r.rank, i)))
        .min();
    Some(match dated {
        Some((_, _, i)) => i,
        None => rows
            .iter()
            .enumerate()
            .max_by_key(|(_, r)| r.rank)
            .map(|(i, _)| i)
            .unwrap_or(rows.len() - 1),
    })
}

/// What was dropped from one component or view to fit its budget.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Dropped {
    pub rows: usize,
    /// The newest dropped row's day: detail up to it is missing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub through: Option<String>,
}

impl Dropped {
    fn add(&mut self, r: &Row) {
        self.rows += 1;
        if let Some(d) = r.day {
            let iso = crate::calendar::Day(d).iso();
            if self.through.as_ref().is_none_or(|t| *t < iso) {
                self.through = Some(iso);
            }
        }
    }
}

pub(super) fn sort_rows(rows: &mut [Row]) {
    rows.sort_by_key(|r| r.rank);
}

/// The composite's last refresh and staleness, computed from its components: its last refresh
/// is the oldest of the components it promises to refresh at its own cadence (those whose
/// threshold is at most the composite's; slow ones such as QBRs are judged by their own), and
/// it is stale when that is older than its threshold at as_of, or when any component is stale.
pub(super) fn composite_staleness(
    c: &CompositeContract,
    rows: &[CatalogRow],
    as_of: &str,
) -> Result<(Option<String>, bool)> {
    let components: Vec<&CatalogRow> = rows
        .iter()
        .filter(|r| r.kind == "account_component")
        .collect();
    let nightly: Vec<&&CatalogRow> = components
        .iter()
        .filter(|r| r.staleness_threshold_hours <= c.staleness_threshold_hours)
        .collect();
    // A nightly component without any refresh time makes the composite's unknown: stale.
    let oldest = if nightly.iter().any(|r| r.last_refresh_timestamp.is_none()) {
        None
    } else {
        nightly
            .iter()
            .filter_map(|r| r.last_refresh_timestamp.clone())
            .min_by_key(|t| crate::calendar::parse_ts(t).unwrap_or(i64::MIN))
    };
    let now = crate::calendar::parse_ts(as_of)?;
    let too_old = match &oldest {
        Some(t) => {
            let age = now - crate::calendar::parse_ts(t)?;
            age as f64 > c.staleness_threshold_hours * 3_600_000_000.0
        }
        None => true,
    };
    Ok((oldest, too_old || components.iter().any(|r| r.is_stale)))
}

/// The p-th percentile (nearest rank) of sorted values.
pub(super) fn percentile(sorted: &[usize], p: f64) -> usize {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// Token counts of a view's documents.
pub(super) struct TokenStats {
    pub(super) documents: usize,
    pub(super) p50: usize,
    pub(super) p95: usize,
    pub(super) max: usize,
}

impl TokenStats {
    pub(super) fn of(mut tokens: Vec<usize>) -> TokenStats {
        tokens.sort_unstable();
        TokenStats {
            documents: tokens.len(),
            p50: percentile(&tokens, 50.0),
            p95: percentile(&tokens, 95.0),
            max: tokens.last().copied().unwrap_or(0),
        }
    }
}

/// The catalog row of a view: its contract, staleness and its documents' token counts.
pub(super) fn view_row(
    v: &ViewContract,
    d: &ViewMeta,
    tokens: Vec<usize>,
    rows: usize,
    dropped_rows: usize,
    document: Option<String>,
) -> CatalogRow {
    let stats = TokenStats::of(tokens);
    CatalogRow {
        view_name: v.name.clone(),
        kind: v.kind.name().into(),
        pattern: v.pattern.clone(),
        source: v.source.clone(),
        owner: v.owner.clone(),
        refresh: v.refresh.clone(),
        used_by: v.used_by.clone(),
        version: v.version,
        staleness_threshold_hours: v.staleness_threshold_hours,
        last_refresh_timestamp: d.last_refresh.clone(),
        is_stale: d.is_stale,
        token_budget: v.token_budget,
        documents: stats.documents,
        rows,
        tokens_p50: stats.p50,
        tokens_p95: stats.p95,
        tokens_max: stats.max,
        dropped_rows,
        contract_sha256: Catalog::contract_sha256(v),
        document,
        unavailable_reason: None,
    }
}

/// Fit a document built by `render` from `parts` (each a list of rows) into `budget` tokens:
/// drop the globally oldest row until the tokenizer's count of the whole document fits.
/// Returns the document, its tokens and the drops per part.
pub(super) fn fit(
    parts: &mut [Vec<Row>],
    budget: usize,
    tok: &Tokenizer,
    render: &dyn Fn(&[Vec<Row>], &[Dropped]) -> String,
) -> (String, usize, Vec<Dropped>) {
    let mut dropped = vec![Dropped::default(); parts.len()];
    loop {
        let doc = render(parts, &dropped);
        let tokens = tok.count(&doc);
        if tokens <= budget {
            return (doc, tokens, dropped);
        }
        // Estimate how many rows must go from the dropped rows' own counts (only rows that go
        // are counted alone: most documents fit at once), then count the document again.
        let mut excess = tokens - budget;
        let mut progressed = false;
        while excess > 0 {
            // The oldest row across parts: dated rows by day, then the part's lowest rank.
            let pick = parts
                .iter()
                .enumerate()
                .filter_map(|(p, rows)| {
                    oldest_index(rows)
                        .map(|i| (rows[i].day.unwrap_or(i32::MAX), -rows[i].rank, p, i))
                })
                .min();
            let Some((_, _, p, i)) = pick else { break };
            let r = parts[p].remove(i);
            dropped[p].add(&r);
            let row_tokens = tok.count(&r.text);
            excess = excess.saturating_sub(row_tokens.max(1));
            progressed = true;
        }
        if !progressed {
            // Nothing left to drop: the headers alone exceed the budget.
            return (doc, tokens, dropped);
        }
    }
}

/// A document: a JSON object written as serde_json writes a map (keys in order), whose
/// members may be rows already written as JSON text.
#[derive(Default)]
pub(super) struct Doc<'a>(BTreeMap<&'a str, Part<'a>>);

pub(super) enum Part<'a> {
    Value(Value),
    Rows(&'a [Row]),
    Doc(Doc<'a>),
}

impl<'a> Doc<'a> {
    /// The members of `map`, less those named in `except`.
    pub(super) fn of(map: &'a Map<String, Value>, except: &[&str]) -> Doc<'a> {
        Doc(map
            .iter()
            .filter(|(k, _)| !except.contains(&k.as_str()))
            .map(|(k, v)| (k.as_str(), Part::Value(v.clone())))
            .collect())
    }

    pub(super) fn set(&mut self, key: &'a str, value: impl Into<Part<'a>>) {
        self.0.insert(key, value.into());
    }

    pub(super) fn write(&self, out: &mut String) {
        use std::fmt::Write;
        out.push('{');
        for (i, (key, part)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{}:", Value::from(*key));
            match part {
                Part::Value(v) => {
                    let _ = write!(out, "{v}");
                }
                Part::Rows(rows) => {
                    out.push('[');
                    for (j, r) in rows.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        out.push_str(&r.text);
                    }
                    out.push(']');
                }
                Part::Doc(d) => d.write(out),
            }
        }
        out.push('}');
    }

    /// About the written length, to write without growing.
    fn len_hint(&self) -> usize {
        self.0
            .values()
            .map(|p| match p {
                Part::Value(_) => 48,
                Part::Rows(rows) => rows.iter().map(|r| r.text.len() + 1).sum::<usize>() + 48,
                Part::Doc(d) => d.len_hint() + 48,
            })
            .sum()
    }

    pub(super) fn text(&self) -> String {
        let mut out = String::with_capacity(self.len_hint());
        self.write(&mut out);
        out
    }
}

impl<'a, T: Into<Value>> From<T> for Part<'a> {
    fn from(v: T) -> Part<'a> {
        Part::Value(v.into())
    }
}
