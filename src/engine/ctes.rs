//! `WITH name AS MATERIALIZED (…)` (PostgreSQL's hint): a CTE computed once, before the query,
//! and read by every reference. DataFusion 55 inlines a CTE at each reference, so a CTE read
//! several times is computed several times (DuckDB materialises it); a model marks the CTEs
//! worth holding. Their rows stay in memory for the query's life, so the hint is for CTEs of
//! modest size (the metric layer's), not for the usage log's tens of millions of rows.

use datafusion::sql::sqlparser::ast::Statement;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

use super::Engine;
use crate::error::{Error, Result};

/// The schema unqualified names resolve in: a materialised CTE is registered there under its
/// own name, so the query's references read it.
const DEFAULT_SCHEMA: &str = "public";

/// The materialised CTEs of one query, registered until this is dropped.
pub struct HeldCtes<'a> {
    engine: &'a Engine,
    names: Vec<String>,
}

impl HeldCtes<'_> {
    /// True when the query had no CTE to materialise.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

impl Drop for HeldCtes<'_> {
    fn drop(&mut self) {
        for n in &self.names {
            self.engine.deregister(DEFAULT_SCHEMA, n);
        }
    }
}

/// Compute the CTEs of `sql` marked `AS MATERIALIZED`, in declared order, and return the query
/// without them (its references now read the computed rows). A query without the hint is
/// returned as it is, unparsed. A misplaced hint is an error naming `file`.
pub fn materialize<'a>(
    engine: &'a Engine,
    sql: &str,
    file: &std::path::Path,
    what: &str,
) -> Result<(String, HeldCtes<'a>)> {
    let mut held = HeldCtes {
        engine,
        names: Vec::new(),
    };
    let (sql, marked) = strip_hints(sql);
    if marked.is_empty() {
        return Ok((sql, held));
    }
    let bad = |m: String| Error::pipeline(file, format!("{what}: {m}"));
    let mut statements = Parser::parse_sql(&GenericDialect {}, &sql)
        .map_err(|e| bad(format!("cannot parse the query for its CTEs: {e}")))?;
    let [Statement::Query(query)] = statements.as_mut_slice() else {
        return Err(bad("AS MATERIALIZED is for a query's CTEs".into()));
    };
    let Some(with) = query.with.as_mut() else {
        return Err(bad("AS MATERIALIZED is for a query's CTEs".into()));
    };
    if with.recursive {
        return Err(bad("a recursive WITH cannot materialise its CTEs".into()));
    }
    let mut kept = Vec::new();
    for cte in std::mem::take(&mut with.cte_tables) {
        let name = match cte.alias.name.quote_style {
            Some(_) => cte.alias.name.value.clone(),
            None => cte.alias.name.value.to_ascii_lowercase(),
        };
        if !marked.contains(&name) {
            kept.push(cte);
            continue;
        }
        if !cte.alias.columns.is_empty() || cte.query.with.is_some() {
            return Err(bad(format!(
                "CTE `{}`: AS MATERIALIZED takes a CTE without column aliases or a WITH of its own",
                cte.alias.name
            )));
        }
        // Its body, with the CTEs before it that stay CTEs.
        let mut body = (*cte.query).clone();
        if !kept.is_empty() {
            let mut w = with.clone();
            w.cte_tables = kept.clone();
            body.with = Some(w);
        }
        let df = engine.sql(&body.to_string(), what)?;
        let planned = std::sync::Arc::new(df.schema().as_arrow().clone());
        let batches = engine.collect(df, what)?;
        // The rows' own schema: the plan's may declare a column non-nullable that the
        // executed batches mark nullable.
        let schema = batches.first().map_or(planned, |b| b.schema());
        engine.register_batches(DEFAULT_SCHEMA, &name, schema, batches)?;
        held.names.push(name);
    }
    if let Some(m) = marked.iter().find(|m| !held.names.contains(m)) {
        return Err(bad(format!(
            "`{m} AS MATERIALIZED` is not a CTE of the query's WITH"
        )));
    }
    with.cte_tables = kept;
    if with.cte_tables.is_empty() {
        query.with = None;
    }
    // Models name their inputs qualified (`models.x`, `sources.x`): only CTEs are unqualified,
    // so a materialised CTE's name cannot meet a table of the same name.
    Ok((statements[0].to_string(), held))
}

/// The query with its CTEs inlined as DataFusion does, for planning alone (the rows are the
/// same; only the work differs).
pub fn without_hints(sql: &str) -> String {
    strip_hints(sql).0
}

/// The query without its `AS MATERIALIZED` hints (the SQL dialect DataFusion parses has none),
/// and the names of the CTEs that carried one (lower case).
fn strip_hints(sql: &str) -> (String, Vec<String>) {
    const HINT: &str = "materialized";
    let lower = sql.to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = String::with_capacity(sql.len());
    let mut names = Vec::new();
    let mut copied = 0;
    let mut from = 0;
    while let Some(at) = lower[from..].find(HINT).map(|i| i + from) {
        from = at + HINT.len();
        // `<name> as materialized (`: a whole word, after `as`, before a parenthesis.
        let after = lower[from..].trim_start();
        let before = lower[..at].trim_end();
        if (at > 0 && is_ident(bytes[at - 1]))
            || bytes.get(from).is_some_and(|b| is_ident(*b))
            || !after.starts_with('(')
            || !before.ends_with(" as")
        {
            continue;
        }
        let name_end = before.len() - 3;
        let name_part = before[..name_end].trim_end();
        let start = name_part
            .bytes()
            .rposition(|b| !is_ident(b))
            .map_or(0, |i| i + 1);
        names.push(name_part[start..].to_string());
        out.push_str(&sql[copied..at]);
        copied = from;
    }
    out.push_str(&sql[copied..]);
    (out, names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineConfig;

    fn engine(dir: &std::path::Path) -> Engine {
        Engine::new(&EngineConfig::default(), 2, dir, 256 << 20).unwrap()
    }

    #[test]
    fn a_materialized_cte_is_computed_once_for_every_reference() {
        let dir = tempfile::tempdir().unwrap();
        let e = engine(dir.path());
        // random() tells one evaluation from another.
        let sql = "with r as materialized (select random() as x), \
                   s as (select x from r) \
                   select (select x from r) = (select x from s) as same, (select x from r) as x";
        let (rewritten, held) =
            materialize(&e, sql, std::path::Path::new("t.sql"), "test").unwrap();
        assert!(
            !rewritten.to_lowercase().contains("materialized"),
            "{rewritten}"
        );
        assert!(
            e.has_table(DEFAULT_SCHEMA, "r"),
            "held while the model runs"
        );
        let run = || {
            use arrow::array::AsArray;
            let b = e.query(&rewritten, "test").unwrap();
            let same = b[0].column(0).as_boolean().value(0);
            let x = b[0]
                .column(1)
                .as_primitive::<arrow::datatypes::Float64Type>()
                .value(0);
            (same, x)
        };
        let (same, first) = run();
        assert!(same, "every reference reads the same rows");
        assert_eq!(run().1, first, "the rows were computed once, not per query");
        drop(held);
        assert!(
            !e.has_table(DEFAULT_SCHEMA, "r"),
            "deregistered when dropped"
        );
    }

    #[test]
    fn hints_are_found_only_after_a_cte_name_and_as() {
        let (sql, names) = strip_hints(
            "with Opps AS MATERIALIZED (select 1 as materialized_x), b as (select 2) select 'as materialized' from opps",
        );
        assert_eq!(names, vec!["opps"]);
        assert_eq!(
            sql,
            "with Opps AS  (select 1 as materialized_x), b as (select 2) select 'as materialized' from opps"
        );
    }

    #[test]
    fn a_query_without_the_hint_is_returned_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let e = engine(dir.path());
        let sql = "with a as (select 1 as x) select * from a";
        assert_eq!(
            materialize(&e, sql, std::path::Path::new("t.sql"), "test")
                .unwrap()
                .0,
            sql
        );
        // A CTE before a materialised one stays a CTE and is visible to its body.
        let sql = "with a as (select 1 as x), b as materialized (select x + 1 as y from a) \
                   select x, y from a, b";
        let (rewritten, _held) =
            materialize(&e, sql, std::path::Path::new("t.sql"), "test").unwrap();
        let b = e.query(&rewritten, "test").unwrap();
        assert_eq!(b[0].num_rows(), 1);
    }
}
