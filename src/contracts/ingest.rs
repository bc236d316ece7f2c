//! How a source's removing rules compile: a column store's shape for "label every row with the
//! first rule it fails, in declared order".
//!
//! The raw rows are read with their position `_row` ([`crate::engine::numbered`]). Then:
//!
//! 1. **Row rules** (`not_null`, `accepted_values`, `accepted_range`, `relationships`, `exists`,
//!    `expression_is_true`) judge each row on its own: one pass over the columns they read keeps
//!    `(_row, index of the first row rule failed)` for the failing rows only — the flags.
//! 2. **Set rules** (`deduplicate`, `version_sequence`, `unique`, `unique_combination_of_columns`)
//!    compare a row with the others still in the flow: the rows not flagged by a rule declared
//!    before it. Each reads only its key, order and version columns. A hash aggregate over a
//!    64-bit hash of the key finds the keys that may repeat (a few); the exact rule — a window
//!    over those rows only, ordered by the declared columns and then `_row` — decides, and its
//!    rows join the flags. A `version_sequence` row whose key does not repeat fails exactly when
//!    its version is not 1.
//! 3. **The wide row is read once**: every column, joined to the flags by `_row`, labelled with
//!    the smallest flag index. That stream is split into accepted, quarantined and
//!    dead-lettered rows.
//!
//! A row flagged by a later row rule is still in the flow for an earlier set rule, so the
//! smallest index is the first rule it fails, as the declared order says. Ties in a set rule's
//! order (two copies received at the same instant with the same id) go to the earlier row in
//! the snapshot, so the outcome does not depend on how the engine schedules its work.

use crate::contracts::Compiled;
use crate::engine::{SCRATCH, Scratch, ident, ident_part};
use crate::error::Result;
use crate::project::data_tests::{SqlContext, TestKind, TestSpec};
use crate::schema::TableSchema;

/// The relation the ingest queries read: the raw rows with `_row` (as of the build).
pub fn rows_relation(table: &str) -> String {
    format!("{SCRATCH}.{}_rows", ident_part(table))
}

fn is_set_rule(kind: &TestKind) -> bool {
    matches!(
        kind,
        TestKind::Unique
            | TestKind::UniqueCombination(_)
            | TestKind::Deduplicate { .. }
            | TestKind::VersionSequence { .. }
    )
}

/// The ingest of `t`: tables to materialise in order, then the query returning every column of
/// every row, `_row`, and `_rule` — the index (in `removing`) of the first rule the row fails,
/// or null. `relation` names the table a relationships test reads.
pub fn ingest_sql(
    t: &TableSchema,
    removing: &[&TestSpec],
    relation: &dyn Fn(&str) -> String,
    render: &dyn Fn(&str) -> Result<String>,
) -> Result<Compiled> {
    let rows = rows_relation(&t.name);
    let scratch = |name: &str| format!("{SCRATCH}.{}_{name}", ident_part(&t.name));
    let mut materialize: Vec<(String, Scratch)> = Vec::new();

    // 1. Row rules, in one pass.
    let (mut joins, mut whens) = (Vec::new(), Vec::new());
    for (i, s) in removing.iter().enumerate() {
        if is_set_rule(&s.kind) {
            continue;
        }
        let sc = SqlContext {
            alias: "t",
            n: i,
            scope: &t.name,
            relation,
            survivors: None,
            render,
            this: Some(&rows),
        };
        let v = s.violation(&sc)?;
        for m in v.materialize {
            if !materialize.contains(&m) {
                materialize.push(m);
            }
        }
        joins.extend(v.joins);
        whens.push(format!("WHEN {} THEN {i}", v.predicate));
    }
    let mut flags = scratch("flags");
    materialize.push((
        flags.clone(),
        Scratch::Rows(if whens.is_empty() {
            format!("SELECT _row, CAST(NULL AS BIGINT) AS _rule FROM {rows} WHERE false")
        } else {
            format!(
                "SELECT _row, _rule FROM (SELECT t._row, CAST(CASE {} END AS BIGINT) AS _rule FROM {}) r WHERE _rule IS NOT NULL",
                whens.join(" "),
                crate::project::data_tests::from_joined(&format!("{rows} t"), &joins)
            )
        }),
    ));

    // 2. Set rules, each over the rows no earlier rule flagged.
    for (i, s) in removing.iter().enumerate() {
        let keys: &[String] = match &s.kind {
            TestKind::Deduplicate { key, .. } | TestKind::VersionSequence { key, .. } => key,
            TestKind::UniqueCombination(cols) => cols,
            TestKind::Unique => std::slice::from_ref(s.column.as_ref().ok_or_else(|| {
                crate::error::Error::Internal(format!("unique test `{}` without a column", s.rule))
            })?),
            _ => continue,
        };
        let survivors = format!(
            "(SELECT t.* FROM {rows} t LEFT JOIN (SELECT DISTINCT _row FROM {flags} WHERE _rule < {i}) x ON t._row = x._row WHERE x._row IS NULL)"
        );
        let key = keys
            .iter()
            .map(|k| format!("s.{}", ident(k)))
            .collect::<Vec<_>>()
            .join(", ");
        let filter = match &s.where_ {
            Some(w) => format!("({})", render(w)?),
            None => "true".into(),
        };
        let not_null = match &s.kind {
            TestKind::Unique => format!(" WHERE s.{} IS NOT NULL", ident(&keys[0])),
            _ => String::new(),
        };
        let candidates = scratch(&format!("repeats{i}"));
        materialize.push((
            candidates.clone(),
            Scratch::RepeatedHashes(format!(
                "SELECT key_hash({key}) AS _h FROM {survivors} s{not_null}"
            )),
        ));
        let repeated = format!("key_hash({key}) IN (SELECT _h FROM {candidates})");
        let order = |by: &[String]| {
            by.iter()
                .map(|c| format!("s.{}", ident(c)))
                .chain(std::iter::once("s._row".to_string()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let failing = match &s.kind {
            TestKind::Deduplicate { order_by, .. } => format!(
                "SELECT _row FROM (SELECT s._row, {filter} AS _w, ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY {}) AS _n FROM {survivors} s WHERE {repeated}) d WHERE _n > 1 AND _w",
                order(order_by)
            ),
            TestKind::VersionSequence {
                version, order_by, ..
            } => format!(
                "SELECT s._row FROM {survivors} s LEFT JOIN {candidates} c ON key_hash({key}) = c._h WHERE c._h IS NULL AND {filter} AND s.{v} <> 1 \
                 UNION ALL \
                 SELECT _row FROM (SELECT s._row, {filter} AS _w, s.{v} <> ROW_NUMBER() OVER (PARTITION BY {key} ORDER BY {}) AS _bad FROM {survivors} s WHERE {repeated}) d WHERE _w AND _bad",
                order(order_by),
                v = ident(version)
            ),
            _ => format!(
                "SELECT _row FROM (SELECT s._row, {filter} AS _w, {} AS _c, COUNT(*) OVER (PARTITION BY {key}) AS _n FROM {survivors} s WHERE {repeated}) d WHERE _c AND _n > 1 AND _w",
                match &s.kind {
                    TestKind::Unique => format!("s.{} IS NOT NULL", ident(&keys[0])),
                    _ => "true".into(),
                }
            ),
        };
        let next = scratch(&format!("flags{i}"));
        materialize.push((
            next.clone(),
            Scratch::Rows(format!(
                "SELECT _row, _rule FROM {flags} UNION ALL SELECT _row, CAST({i} AS BIGINT) AS _rule FROM ({failing}) f"
            )),
        ));
        flags = next;
    }

    // 3. The wide row, once, with its label.
    let cols: Vec<String> = t
        .columns
        .iter()
        .map(|c| format!("t.{}", ident(&c.name)))
        .collect();
    let sql = format!(
        "SELECT {}, t._row, f._rule FROM {rows} t LEFT JOIN (SELECT _row, MIN(_rule) AS _rule FROM {flags} GROUP BY _row) f ON t._row = f._row",
        cols.join(", ")
    );
    Ok(Compiled { materialize, sql })
}
