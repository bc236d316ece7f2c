//! Data tests, dbt-style (SPEC §6): what each test checks, what happens to the rows that fail
//! it, and the SQL that finds them.
//!
//! Generic tests: `not_null`, `unique`, `accepted_values`, `accepted_range`, `relationships`,
//! `expression_is_true`, `unique_combination_of_columns`, and gtmos' ingest tests
//! `deduplicate` (idempotent replay: the first received copy of a key wins) and
//! `version_sequence` (record versions arrive 1, 2, 3, … within a key). Every test accepts
//! `rule`, `severity` (error|warn), `on_fail` (quarantine|dead_letter|block|none),
//! `error_if` / `warn_if` thresholds on the failure count (`">0"`, `">=10"`, `">1%"`) and a
//! `where` filter.
//!
//! Its length (over 700 lines) is about 720 lines of code, every test kind's parsing and SQL
//! in one place so that a kind is read whole, and their unit tests.

use std::path::Path;

use serde_yaml_ng::Value;

use crate::engine::{SCRATCH, Scratch, ident, ident_part, quote};
use crate::error::{Error, Result};
use crate::schema::{ColumnType, relation_name, scalar_text, test_kind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warn,
}

/// What happens to rows that fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFail {
    /// Nothing happens to the rows; an error-severity failure blocks publishing downstream.
    None,
    /// The rows leave the flow into `quarantine/`; the rest continue.
    Quarantine,
    /// The rows leave the flow into `dead_letter/`.
    DeadLetter,
    /// Any failure blocks publishing of everything downstream; the last good version stays.
    Block,
}

impl OnFail {
    pub fn name(self) -> &'static str {
        match self {
            OnFail::None => "none",
            OnFail::Quarantine => "quarantine",
            OnFail::DeadLetter => "dead_letter",
            OnFail::Block => "block",
        }
    }

    /// Whether failing rows are removed during ingest (rather than checked after it).
    pub fn removes_rows(self) -> bool {
        matches!(self, OnFail::Quarantine | OnFail::DeadLetter)
    }
}

/// A threshold on the failure count, e.g. `>0`, `>=10`, `!=0`, `>1%` (of rows checked).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Threshold {
    pub op: String,
    pub value: f64,
    pub percent: bool,
    pub text: String,
}

impl Threshold {
    pub fn parse(s: &str) -> Option<Threshold> {
        let t = s.trim();
        let (op, rest) = ["!=", ">=", "<=", "==", ">", "<", "="]
            .iter()
            .find_map(|op| t.strip_prefix(op).map(|r| (op.to_string(), r.trim())))?;
        let (num, percent) = match rest.strip_suffix('%') {
            Some(n) => (n.trim(), true),
            None => (rest, false),
        };
        Some(Threshold {
            op,
            value: num.parse().ok()?,
            percent,
            text: t.to_string(),
        })
    }

    pub fn holds(&self, failures: u64, checked: u64) -> bool {
        let x = if self.percent {
            if checked == 0 {
                0.0
            } else {
                failures as f64 * 100.0 / checked as f64
            }
        } else {
            failures as f64
        };
        match self.op.as_str() {
            "!=" => x != self.value,
            ">=" => x >= self.value,
            "<=" => x <= self.value,
            ">" => x > self.value,
            "<" => x < self.value,
            _ => x == self.value,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TestKind {
    NotNull,
    Unique,
    AcceptedValues {
        values: Vec<String>,
        quote: bool,
    },
    AcceptedRange {
        min: Option<String>,
        max: Option<String>,
        inclusive: bool,
    },
    Relationships {
        to: String,
        field: String,
    },
    Expression(String),
    UniqueCombination(Vec<String>),
    Deduplicate {
        key: Vec<String>,
        order_by: Vec<String>,
    },
    VersionSequence {
        key: Vec<String>,
        version: String,
        order_by: Vec<String>,
    },
    /// A row must have a match in `relation` (SQL, templates allowed) under `condition`
    /// (`t.` is the row, `r.` the relation); `key` identifies rows of the table under test.
    Exists {
        relation: String,
        condition: String,
        key: String,
    },
}

impl TestKind {
    pub fn name(&self) -> &'static str {
        match self {
            TestKind::NotNull => "not_null",
            TestKind::Unique => "unique",
            TestKind::AcceptedValues { .. } => "accepted_values",
            TestKind::AcceptedRange { .. } => "accepted_range",
            TestKind::Relationships { .. } => "relationships",
            TestKind::Expression(_) => "expression_is_true",
            TestKind::UniqueCombination(_) => "unique_combination_of_columns",
            TestKind::Deduplicate { .. } => "deduplicate",
            TestKind::VersionSequence { .. } => "version_sequence",
            TestKind::Exists { .. } => "exists",
        }
    }

    /// Whether the test compares rows with each other (a window over the table).
    pub fn is_set_test(&self) -> bool {
        matches!(
            self,
            TestKind::Unique
                | TestKind::UniqueCombination(_)
                | TestKind::Deduplicate { .. }
                | TestKind::VersionSequence { .. }
        )
    }
}

/// One data test, resolved against its defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct TestSpec {
    pub kind: TestKind,
    pub column: Option<String>,
    pub rule: String,
    pub severity: Severity,
    pub on_fail: OnFail,
    pub error_if: Option<Threshold>,
    pub warn_if: Option<Threshold>,
    pub where_: Option<String>,
}

impl TestSpec {
    /// The template texts of the test (expressions, bounds, filters, relations), to check
    /// when the project loads rather than when the test first runs.
    pub fn templates(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        match &self.kind {
            TestKind::Expression(e) => out.push(e),
            TestKind::AcceptedRange { min, max, .. } => {
                out.extend(min.iter().map(String::as_str));
                out.extend(max.iter().map(String::as_str));
            }
            TestKind::Exists {
                relation,
                condition,
                ..
            } => {
                out.push(relation);
                out.push(condition);
            }
            _ => {}
        }
        out.extend(self.where_.iter().map(String::as_str));
        out
    }
}

/// Result status of a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

impl TestSpec {
    /// Judge a failure count (dbt semantics: `error_if` then `warn_if`).
    pub fn status(&self, failures: u64, checked: u64) -> Status {
        let default_error = Threshold::parse("!=0");
        let error_if = match (&self.error_if, self.on_fail.removes_rows()) {
            (Some(t), _) => Some(t.clone()),
            // Quarantining is the expected handling, not a failure, unless a threshold says so.
            (None, true) => None,
            (None, false) => default_error.clone(),
        };
        let warn_if = self.warn_if.clone().or(default_error);
        if self.severity == Severity::Error
            && error_if
                .as_ref()
                .is_some_and(|t| t.holds(failures, checked))
        {
            Status::Fail
        } else if warn_if.as_ref().is_some_and(|t| t.holds(failures, checked)) {
            Status::Warn
        } else {
            Status::Pass
        }
    }

    /// Whether a failure with this status stops publishing downstream.
    pub fn blocks(&self, status: Status) -> bool {
        status == Status::Fail
    }
}

/// Parse one entry of a `data_tests:` list. `column` is set for column tests; `defaults`
/// are the project's per-test-name defaults (a YAML mapping), applied under the entry's keys.
pub fn parse_test(
    file: &Path,
    owner: &str,
    column: Option<(&str, ColumnType)>,
    entry: &Value,
    defaults: Option<&Value>,
) -> Result<TestSpec> {
    let where_at = match column {
        Some((c, _)) => format!("`{owner}`, column `{c}`"),
        None => format!("`{owner}`"),
    };
    let err = |m: String| Error::pipeline(file, format!("{where_at}: {m}"));
    let (kind_name, args) = test_kind(entry)
        .ok_or_else(|| err("a data test must be a name or a one-key map".into()))?;
    let empty = Value::Mapping(Default::default());
    let args = args.unwrap_or(&empty);
    if !args.is_mapping() && !args.is_null() {
        return Err(err(format!("arguments of `{kind_name}` must be a mapping")));
    }
    let get = |k: &str| args.get(k).or_else(|| defaults.and_then(|d| d.get(k)));
    let s = |k: &str| get(k).and_then(scalar_text);
    let list = |k: &str| -> Option<Vec<String>> {
        match get(k)? {
            Value::Sequence(v) => Some(v.iter().filter_map(scalar_text).collect()),
            v => scalar_text(v).map(|x| x.split(',').map(|p| p.trim().to_string()).collect()),
        }
    };
    let need_col = || {
        column.map(|c| c.0.to_string()).ok_or_else(|| {
            err(format!(
                "`{kind_name}` is a column test; declare it under a column"
            ))
        })
    };
    let kind = match kind_name {
        "not_null" => {
            need_col()?;
            TestKind::NotNull
        }
        "unique" => {
            need_col()?;
            TestKind::Unique
        }
        "accepted_values" => {
            need_col()?;
            let values = list("values")
                .ok_or_else(|| err("accepted_values needs `values: [...]`".into()))?;
            let default_quote = column.is_none_or(|c| {
                matches!(
                    c.1,
                    ColumnType::Varchar | ColumnType::Date | ColumnType::Timestamp
                )
            });
            let quote = get("quote")
                .and_then(Value::as_bool)
                .unwrap_or(default_quote);
            TestKind::AcceptedValues { values, quote }
        }
        "accepted_range" => {
            need_col()?;
            let (min, max) = (s("min_value"), s("max_value"));
            if min.is_none() && max.is_none() {
                return Err(err("accepted_range needs min_value and/or max_value".into()));
            }
            TestKind::AcceptedRange {
                min,
                max,
                inclusive: get("inclusive").and_then(Value::as_bool).unwrap_or(true),
            }
        }
        "relationships" => {
            need_col()?;
            let to = s("to").ok_or_else(|| err("relationships needs `to:`".into()))?;
            let field = s("field").ok_or_else(|| err("relationships needs `field:`".into()))?;
            TestKind::Relationships {
                to: relation_name(&to),
                field,
            }
        }
        "expression_is_true" => TestKind::Expression(
            s("expression").ok_or_else(|| err("expression_is_true needs `expression:`".into()))?,
        ),
        "unique_combination_of_columns" | "unique_combination" => TestKind::UniqueCombination(
            list("columns")
                .or_else(|| list("combination_of_columns"))
                .ok_or_else(|| err("needs `columns: [...]`".into()))?,
        ),
        "deduplicate" => TestKind::Deduplicate {
            key: list("key").ok_or_else(|| err("deduplicate needs `key: [...]`".into()))?,
            order_by: list("order_by")
                .ok_or_else(|| err("deduplicate needs `order_by: [...]`".into()))?,
        },
        "exists" => TestKind::Exists {
            relation: s("in").ok_or_else(|| err("exists needs `in:` (a SQL query)".into()))?,
            condition: s("where").ok_or_else(|| {
                err("exists needs `where:` (t. is the row, r. the relation)".into())
            })?,
            key: s("key")
                .ok_or_else(|| err("exists needs `key:` (a column identifying rows)".into()))?,
        },
        "version_sequence" => TestKind::VersionSequence {
            key: list("key").ok_or_else(|| err("version_sequence needs `key: [...]`".into()))?,
            version: s("version").ok_or_else(|| err("version_sequence needs `version:`".into()))?,
            order_by: list("order_by")
                .ok_or_else(|| err("version_sequence needs `order_by: [...]`".into()))?,
        },
        other => {
            return Err(err(format!(
                "unknown data test `{other}` (known: {})",
                KNOWN_TESTS.join(", ")
            )));
        }
    };
    check_arguments(kind_name, [Some(args), defaults], &err)?;
    let severity = match s("severity")
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("error") => Severity::Error,
        Some("warn") => Severity::Warn,
        Some(x) => return Err(err(format!("severity `{x}` must be error or warn"))),
    };
    let on_fail = match s("on_fail").as_deref() {
        None | Some("none") => OnFail::None,
        Some("quarantine") => OnFail::Quarantine,
        Some("dead_letter") => OnFail::DeadLetter,
        Some("block") => OnFail::Block,
        Some(x) => {
            return Err(err(format!(
                "on_fail `{x}` must be quarantine, dead_letter, block or none"
            )));
        }
    };
    let threshold = |k: &str| -> Result<Option<Threshold>> {
        match s(k) {
            None => Ok(None),
            Some(t) => Threshold::parse(&t).map(Some).ok_or_else(|| {
                err(format!(
                    "{k} `{t}` is not a threshold like \">0\", \">=10\" or \">1%\""
                ))
            }),
        }
    };
    let rule = s("rule").unwrap_or_else(|| match column {
        Some((c, _)) => format!("{kind_name}_{c}"),
        None => kind_name.to_string(),
    });
    Ok(TestSpec {
        column: column.map(|c| c.0.to_string()),
        kind,
        rule,
        severity,
        on_fail,
        error_if: threshold("error_if")?,
        warn_if: threshold("warn_if")?,
        where_: if kind_name == "exists" {
            None
        } else {
            s("where")
        },
    })
}

/// The arguments every data test takes.
const COMMON_ARGUMENTS: &[&str] = &[
    "rule", "severity", "on_fail", "error_if", "warn_if", "where",
];

/// The data tests gtmos runs (`unique_combination` is also accepted for the dbt-utils name).
pub const KNOWN_TESTS: &[&str] = &[
    "not_null",
    "unique",
    "accepted_values",
    "accepted_range",
    "relationships",
    "expression_is_true",
    "unique_combination_of_columns",
    "deduplicate",
    "version_sequence",
    "exists",
];

/// The project file's defaults for one test kind (`data_tests:` in gtmos_project.yml), checked
/// when the project loads: a known test, with arguments that test takes.
pub fn check_defaults(file: &Path, kind: &str, args: &Value) -> Result<()> {
    let err = |m: String| Error::pipeline(file, format!("data_tests defaults: {m}"));
    if !KNOWN_TESTS.contains(&kind) && kind != "unique_combination" {
        return Err(err(format!(
            "unknown data test `{kind}` (known: {})",
            KNOWN_TESTS.join(", ")
        )));
    }
    if !args.is_mapping() {
        return Err(err(format!("the defaults of `{kind}` must be a mapping")));
    }
    check_arguments(kind, [Some(args), None], &err)
}

/// A misspelt argument (in the test or in the project's defaults for its kind) is an error,
/// never a setting silently left at its default.
fn check_arguments(
    kind: &str,
    args: [Option<&Value>; 2],
    err: &dyn Fn(String) -> Error,
) -> Result<()> {
    let own: &[&str] = match kind {
        "accepted_values" => &["values", "quote"],
        "accepted_range" => &["min_value", "max_value", "inclusive"],
        "relationships" => &["to", "field"],
        "expression_is_true" => &["expression"],
        "unique_combination_of_columns" | "unique_combination" => {
            &["columns", "combination_of_columns"]
        }
        "deduplicate" => &["key", "order_by"],
        "exists" => &["in", "key"],
        "version_sequence" => &["key", "version", "order_by"],
        _ => &[],
    };
    for m in args.into_iter().flatten().filter_map(Value::as_mapping) {
        for k in m.keys() {
            let k = k.as_str().unwrap_or("?");
            if !own.contains(&k) && !COMMON_ARGUMENTS.contains(&k) {
                let takes: Vec<&str> = own.iter().chain(COMMON_ARGUMENTS).copied().collect();
                return Err(err(format!(
                    "`{kind}` has no argument `{k}` (it takes {})",
                    takes.join(", ")
                )));
            }
        }
    }
    Ok(())
}

/// How a test finds failing rows in SQL.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// Small tables to compute first, as (`scratch.<name>`, how), in order. Set tests join the
    /// table under test to a key set; materialised, the key set has exact statistics, so the
    /// engine builds its hash table on the small side instead of on millions of rows.
    pub materialize: Vec<(String, Scratch)>,
    /// The key sets the predicate needs, each joined to the rows under test by a left join.
    pub joins: Vec<Join>,
    /// True for a failing row.
    pub predicate: String,
}

/// A small table (a materialised key set) joined to the rows under test, keeping every row.
#[derive(Debug, Clone, PartialEq)]
pub struct Join {
    pub table: String,
    pub alias: String,
    pub on: String,
}

impl Join {
    /// `LEFT JOIN table alias ON on`, to follow the rows under test.
    pub fn left(&self) -> String {
        format!("LEFT JOIN {} {} ON {}", self.table, self.alias, self.on)
    }
}

/// The FROM clause of `rows` (a relation and its alias) joined to each of `joins`, every key
/// set as the left input of a right join: `k2 j2 RIGHT JOIN (k1 j1 RIGHT JOIN rows t ON …)
/// ON …`. The same rows as `rows LEFT JOIN k1 … LEFT JOIN k2 …`, but the engine builds each
/// hash table on the key set — the side it builds on is the left one, and past the first join
/// it has no statistics to swap the sides by, so the chain of left joins built the second
/// hash table on every row under test (and ran out of memory on large tables).
pub fn from_joined(rows: &str, joins: &[Join]) -> String {
    let mut from = rows.to_string();
    for (i, j) in joins.iter().enumerate() {
        // A join in parentheses; a lone table is not (SQL does not allow `(table alias)`).
        if i > 0 {
            from = format!("({from})");
        }
        from = format!("{} {} RIGHT JOIN {from} ON {}", j.table, j.alias, j.on);
    }
    from
}

/// Inputs to [`TestSpec::violation`].
pub struct SqlContext<'a> {
    /// The alias of the relation under test.
    pub alias: &'a str,
    /// A unique suffix for join aliases; with `scope`, for materialised tables.
    pub n: usize,
    /// The table or model under test, naming its materialised tables.
    pub scope: &'a str,
    /// The relation a `relationships` test reads, by table name.
    pub relation: &'a dyn Fn(&str) -> String,
    /// An extra PARTITION BY term so set tests only compare rows still in the flow.
    pub survivors: Option<&'a str>,
    /// Expressions already rendered (templates substituted).
    pub render: &'a dyn Fn(&str) -> Result<String>,
    /// The whole table under test (raw during ingest), for tests that aggregate or join it.
    pub this: Option<&'a str>,
}

impl TestSpec {
    pub fn violation(&self, cx: &SqlContext) -> Result<Violation> {
        let a = cx.alias;
        let col = |c: &str| format!("{a}.{}", ident(c));
        let column = self.column.as_deref().map(col).unwrap_or_default();
        let partition = |keys: &[String]| {
            let mut p: Vec<String> = keys.iter().map(|k| col(k)).collect();
            if let Some(s) = cx.survivors {
                p.push(format!("({s})"));
            }
            p.join(", ")
        };
        let order = |keys: &[String]| keys.iter().map(|k| col(k)).collect::<Vec<_>>().join(", ");
        let mut joins = Vec::new();
        let mut materialize = Vec::new();
        let scratch =
            |name: &str| format!("{SCRATCH}.{}_{}", ident_part(cx.scope), ident_part(name));
        // Outside ingest (no survivors), duplicate keys are a small materialised set joined back
        // (null keys equal, as in GROUP BY): a window over the whole table would buffer all of it.
        let mut duplicates = |keys: &[String]| -> Result<Option<String>> {
            let (Some(base), None) = (cx.this, cx.survivors) else {
                return Ok(None);
            };
            let j = format!("_dup{}", cx.n);
            let set = scratch(&format!(
                "dup_{}{}",
                keys.join("_"),
                if self.where_.is_some() {
                    format!("_w{}", cx.n)
                } else {
                    String::new()
                }
            ));
            let cols: Vec<String> = keys.iter().map(|k| ident(k)).collect();
            let filter = match &self.where_ {
                Some(w) => format!("({})", (cx.render)(w)?),
                None => "true".into(),
            };
            let select: Vec<String> = cols
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c} AS _k{i}"))
                .collect();
            // The repeated keys, found from their hashes: no hash table of every key, and a
            // second read of `base` only when some hash repeats (see `engine::repeated`).
            materialize.push((
                set.clone(),
                Scratch::Repeated {
                    sql: format!("SELECT {} FROM {base} WHERE {filter}", select.join(", ")),
                    columns: (0..cols.len()).map(|i| format!("_k{i}")).collect(),
                },
            ));
            let on: Vec<String> = cols
                .iter()
                .enumerate()
                .map(|(i, c)| format!("({a}.{c} IS NOT DISTINCT FROM {j}._k{i})"))
                .collect();
            joins.push(Join {
                table: set,
                alias: j.clone(),
                on: on.join(" AND "),
            });
            Ok(Some(format!("({j}._n IS NOT NULL)")))
        };
        let predicate = match &self.kind {
            TestKind::NotNull => format!("{column} IS NULL"),
            TestKind::Unique => {
                let c = self.column.clone().unwrap_or_default();
                match duplicates(std::slice::from_ref(&c))? {
                    Some(on) => format!("({column} IS NOT NULL AND {on})"),
                    None => format!(
                        "({column} IS NOT NULL AND COUNT(*) OVER (PARTITION BY {}) > 1)",
                        partition(&[c])
                    ),
                }
            }
            TestKind::AcceptedValues { values, quote: q } => {
                let list: Vec<String> = values
                    .iter()
                    .map(|v| if *q { quote(v) } else { v.clone() })
                    .collect();
                format!(
                    "({column} IS NOT NULL AND {column} NOT IN ({}))",
                    list.join(", ")
                )
            }
            TestKind::AcceptedRange {
                min,
                max,
                inclusive,
            } => {
                let (lo, hi) = if *inclusive { ("<", ">") } else { ("<=", ">=") };
                let mut parts = Vec::new();
                if let Some(m) = min {
                    parts.push(format!("{column} {lo} {}", (cx.render)(m)?));
                }
                if let Some(m) = max {
                    parts.push(format!("{column} {hi} {}", (cx.render)(m)?));
                }
                // A non-finite float is outside every range, one-sided ones included.
                parts.push(format!("NOT is_finite_value({column})"));
                format!("({column} IS NOT NULL AND ({}))", parts.join(" OR "))
            }
            TestKind::Relationships { to, field } => {
                let j = format!("_rel{}", cx.n);
                // Named by what it holds: tests of several columns against one key share it.
                let keys = scratch(&format!("keys_{to}_{field}"));
                materialize.push((
                    keys.clone(),
                    Scratch::Rows(format!(
                        "SELECT DISTINCT {f} AS _key FROM {rel}",
                        f = ident(field),
                        rel = (cx.relation)(to)
                    )),
                ));
                joins.push(Join {
                    on: format!("{column} = {j}._key"),
                    table: keys,
                    alias: j.clone(),
                });
                format!("({column} IS NOT NULL AND {j}._key IS NULL)")
            }
            // `x IS NOT TRUE`, spelled as CASE: DataFusion 55 mis-plans IS NOT TRUE of a nullable
            // input next to a window function (logical vs physical nullability).
            TestKind::Expression(e) => {
                format!("(CASE WHEN ({}) THEN false ELSE true END)", (cx.render)(e)?)
            }
            TestKind::UniqueCombination(cols) => match duplicates(cols)? {
                Some(on) => on,
                None => format!("(COUNT(*) OVER (PARTITION BY {}) > 1)", partition(cols)),
            },
            TestKind::Deduplicate { key, order_by } => {
                format!(
                    "(ROW_NUMBER() OVER (PARTITION BY {} ORDER BY {}) > 1)",
                    partition(key),
                    order(order_by)
                )
            }
            TestKind::VersionSequence {
                key,
                version,
                order_by,
            } => format!(
                "({} <> ROW_NUMBER() OVER (PARTITION BY {} ORDER BY {}))",
                col(version),
                partition(key),
                order(order_by)
            ),
            TestKind::Exists {
                relation,
                condition,
                key,
            } => {
                let j = format!("_ex{}", cx.n);
                let base = cx
                    .this
                    .ok_or_else(|| Error::Internal("exists test without a base relation".into()))?;
                // The relation, then the keys of the rows without a match (few), then a join.
                let (rel, unmatched) = (
                    scratch(&format!("exr{}", cx.n)),
                    scratch(&format!("ex{}", cx.n)),
                );
                materialize.push((rel.clone(), Scratch::Rows((cx.render)(relation)?)));
                materialize.push((
                    unmatched.clone(),
                    Scratch::Rows(format!(
                        "SELECT DISTINCT t.{k} AS _key FROM {base} t WHERE t.{k} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {rel} r WHERE {cond})",
                        k = ident(key),
                        cond = (cx.render)(condition)?,
                    )),
                ));
                joins.push(Join {
                    table: unmatched.clone(),
                    alias: j.clone(),
                    on: format!("{a}.{k} = {j}._key", k = ident(key)),
                });
                format!("({j}._key IS NOT NULL)")
            }
        };
        let predicate = match &self.where_ {
            Some(w) => format!("(({}) AND {predicate})", (cx.render)(w)?),
            None => predicate,
        };
        Ok(Violation {
            materialize,
            joins,
            predicate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(
        yaml: &str,
        column: Option<(&str, ColumnType)>,
        defaults: Option<&str>,
    ) -> Result<TestSpec> {
        let v: Value = serde_yaml_ng::from_str(yaml).unwrap();
        let d: Option<Value> = defaults.map(|d| serde_yaml_ng::from_str(d).unwrap());
        parse_test(Path::new("s.yml"), "t", column, &v, d.as_ref())
    }

    #[test]
    fn thresholds_follow_dbt() {
        let t = Threshold::parse(">1%").unwrap();
        assert!(!t.holds(1, 100) && t.holds(2, 100));
        assert!(Threshold::parse(">=10").unwrap().holds(10, 0));
        assert!(Threshold::parse("!= 0").unwrap().holds(3, 0));
        assert!(Threshold::parse("ten").is_none());
        let warn_only = spec(
            "{not_null: {severity: warn}}",
            Some(("c", ColumnType::Varchar)),
            None,
        )
        .unwrap();
        assert_eq!(warn_only.status(3, 10), Status::Warn);
        assert_eq!(warn_only.status(0, 10), Status::Pass);
        let blocking = spec(
            "{accepted_range: {min_value: 0, on_fail: block}}",
            Some(("c", ColumnType::Double)),
            None,
        )
        .unwrap();
        assert_eq!(blocking.status(1, 10), Status::Fail);
        let tolerant = spec(
            "{unique: {error_if: '>5', warn_if: '>0'}}",
            Some(("c", ColumnType::Varchar)),
            None,
        )
        .unwrap();
        assert_eq!(tolerant.status(3, 10), Status::Warn);
        assert_eq!(tolerant.status(6, 10), Status::Fail);
        let q = spec(
            "not_null",
            Some(("c", ColumnType::Varchar)),
            Some("{on_fail: quarantine}"),
        )
        .unwrap();
        assert_eq!(q.on_fail, OnFail::Quarantine);
        assert_eq!(
            q.status(4, 10),
            Status::Warn,
            "quarantining is handling, not failure"
        );
        assert_eq!(q.rule, "not_null_c");
    }

    #[test]
    fn predicates() {
        let rel = |t: &str| format!("sources.{t}");
        let render = |s: &str| Ok(s.replace("{{ as_of }}", "NOW"));
        let cx = SqlContext {
            alias: "t",
            n: 1,
            relation: &rel,
            survivors: Some("t._rule IS NULL"),
            render: &render,
            this: None,
            scope: "orders",
        };
        let v = spec(
            "{accepted_values: {values: [a, b]}}",
            Some(("k", ColumnType::Varchar)),
            None,
        )
        .unwrap()
        .violation(&cx)
        .unwrap();
        assert_eq!(v.predicate, "(t.k IS NOT NULL AND t.k NOT IN ('a', 'b'))");
        let v = spec(
            "{relationships: {to: ref('accounts'), field: account_id}}",
            Some(("account_id", ColumnType::Varchar)),
            None,
        )
        .unwrap()
        .violation(&cx)
        .unwrap();
        assert_eq!(
            v.materialize,
            vec![(
                "scratch.orders_keys_accounts_account_id".to_string(),
                Scratch::Rows("SELECT DISTINCT account_id AS _key FROM sources.accounts".into())
            )]
        );
        assert_eq!(
            v.joins.iter().map(Join::left).collect::<Vec<_>>(),
            vec![
                "LEFT JOIN scratch.orders_keys_accounts_account_id _rel1 ON t.account_id = _rel1._key"
            ]
        );
        assert_eq!(
            from_joined("sources.orders t", &v.joins),
            "scratch.orders_keys_accounts_account_id _rel1 RIGHT JOIN sources.orders t ON t.account_id = _rel1._key"
        );
        let v = spec("{deduplicate: {key: [s, e], order_by: [r]}}", None, None)
            .unwrap()
            .violation(&cx)
            .unwrap();
        assert_eq!(
            v.predicate,
            "(ROW_NUMBER() OVER (PARTITION BY t.s, t.e, (t._rule IS NULL) ORDER BY t.r) > 1)"
        );
        let v = spec(
            "{expression_is_true: {expression: 'x <= {{ as_of }}'}}",
            None,
            None,
        )
        .unwrap()
        .violation(&cx)
        .unwrap();
        assert_eq!(
            v.predicate,
            "(CASE WHEN (x <= NOW) THEN false ELSE true END)"
        );
        assert!(
            spec("{frobnicate: {}}", None, None)
                .unwrap_err()
                .to_string()
                .contains("unknown data test `frobnicate`")
        );
        assert!(
            spec("not_null", None, None)
                .unwrap_err()
                .to_string()
                .contains("column test")
        );
        assert!(
            spec(
                "{not_null: {on_fail: explode}}",
                Some(("c", ColumnType::Varchar)),
                None
            )
            .is_err()
        );
        let e = spec(
            "{accepted_range: {min_value: 0, max_valu: 9}}",
            Some(("c", ColumnType::Double)),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("`accepted_range` has no argument `max_valu`"),
            "{e}"
        );
        let e = spec(
            "not_null",
            Some(("c", ColumnType::Varchar)),
            Some("{on_fial: quarantine}"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("`not_null` has no argument `on_fial`"), "{e}");
    }
}
