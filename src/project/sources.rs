//! Source contracts: each source table's data tests in evaluation order (with the project's
//! defaults per test kind), its freshness and contract version, and the order in which
//! contracts run (a source whose relationships read another runs after it).

use super::*;

/// Source freshness thresholds, in hours.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Freshness {
    pub loaded_at_field: String,
    pub warn_after_hours: Option<f64>,
    pub error_after_hours: Option<f64>,
}

/// One source table's contract: its tests in evaluation order and its freshness.
#[derive(Debug, Clone)]
pub struct SourceContract {
    pub table: String,
    pub file: PathBuf,
    /// The declared `contract_version`, or a hash of the table's declaration.
    pub contract_version: String,
    /// Column tests in column order, then table tests in declared order.
    pub tests: Vec<TestSpec>,
    pub freshness: Option<Freshness>,
    /// Other sources its relationships tests read (their contracts run first).
    pub depends_on: Vec<String>,
}

pub(super) fn source_contract(
    t: &TableSchema,
    defaults: &BTreeMap<String, Value>,
) -> Result<SourceContract> {
    let mut tests = Vec::new();
    let default_for = |kind: &str| defaults.get(kind);
    for c in &t.columns {
        for entry in &c.tests {
            let kind = crate::schema::test_kind(entry).map(|k| k.0).unwrap_or("");
            tests.push(data_tests::parse_test(
                &t.file,
                &t.name,
                Some((&c.name, c.column_type)),
                entry,
                default_for(kind),
            )?);
        }
    }
    for entry in &t.decl.data_tests {
        let kind = crate::schema::test_kind(entry).map(|k| k.0).unwrap_or("");
        tests.push(data_tests::parse_test(
            &t.file,
            &t.name,
            None,
            entry,
            default_for(kind),
        )?);
    }
    // Set tests may only name declared columns.
    for s in &tests {
        let cols: Vec<&String> = match &s.kind {
            data_tests::TestKind::UniqueCombination(c) => c.iter().collect(),
            data_tests::TestKind::Deduplicate { key, order_by } => {
                key.iter().chain(order_by).collect()
            }
            data_tests::TestKind::VersionSequence {
                key,
                version,
                order_by,
            } => key.iter().chain(order_by).chain([version]).collect(),
            _ => Vec::new(),
        };
        for c in cols {
            if t.column(c).is_none() {
                return Err(Error::pipeline(
                    &t.file,
                    format!(
                        "table `{}`: rule `{}` names unknown column `{c}`",
                        t.name, s.rule
                    ),
                ));
            }
        }
    }
    // (The registry refuses freshness without a loaded_at_field.)
    let freshness = match (&t.decl.freshness, &t.loaded_at_field) {
        (Some(f), Some(field)) => Some(Freshness {
            loaded_at_field: field.clone(),
            warn_after_hours: f.warn_after.as_ref().map(crate::schema::After::hours),
            error_after_hours: f.error_after.as_ref().map(crate::schema::After::hours),
        }),
        _ => None,
    };
    let mut depends_on: BTreeSet<String> = BTreeSet::new();
    for s in &tests {
        match &s.kind {
            data_tests::TestKind::Relationships { to, .. } if *to != t.name => {
                depends_on.insert(to.clone());
            }
            data_tests::TestKind::Exists { relation, .. } => {
                let pieces = template::parse(relation).map_err(|e| {
                    Error::pipeline(
                        &t.file,
                        format!("table `{}`, rule `{}`: {}", t.name, s.rule, e.message),
                    )
                })?;
                for r in template::refs(&pieces) {
                    match r {
                        Ref::Source(x) if x != t.name => {
                            depends_on.insert(x);
                        }
                        Ref::Source(_) => {}
                        Ref::Model(m) => {
                            return Err(Error::pipeline(
                                &t.file,
                                format!(
                                    "table `{}`, rule `{}`: a source test cannot read model `{m}`",
                                    t.name, s.rule
                                ),
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let depends_on: Vec<String> = depends_on.into_iter().collect();
    let contract_version = match t.decl.contract_version.as_ref().and_then(scalar_text) {
        Some(v) => v,
        None => {
            let canonical = serde_json::to_string(&t.raw).unwrap_or_default();
            format!(
                "sha256:{}",
                &crate::table_io::sha256_hex(canonical.as_bytes())[..12]
            )
        }
    };
    Ok(SourceContract {
        table: t.name.clone(),
        file: t.file.clone(),
        contract_version,
        tests,
        freshness,
        depends_on,
    })
}

/// Sources whose relationships read other sources run after them; a cycle is an error.
pub(super) fn order_sources(mut sources: Vec<SourceContract>) -> Result<Vec<SourceContract>> {
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    while !sources.is_empty() {
        let before = sources.len();
        let mut i = 0;
        while i < sources.len() {
            if sources[i].depends_on.iter().all(|d| done.contains(d)) {
                let s = sources.remove(i);
                done.insert(s.table.clone());
                out.push(s);
            } else {
                i += 1;
            }
        }
        if sources.len() == before {
            let names: Vec<&str> = sources.iter().map(|s| s.table.as_str()).collect();
            return Err(Error::pipeline(
                &sources[0].file,
                format!(
                    "relationships tests between sources form a cycle among: {}",
                    names.join(", ")
                ),
            ));
        }
    }
    Ok(out)
}
