//! The schema registry: every source table of a snapshot (SPEC §4), declared once.
//!
//! The declarations live in `pipelines/sources/*.yml`, dbt-style, because they are also the
//! source contracts analysts edit: a column's `data_type` gives its Arrow type, a `not_null`
//! test makes it non-nullable, `accepted_values` is its enum domain and `relationships` its
//! foreign key. The copies under `pipelines/sources/` at build time are compiled into the
//! binary ([`Registry::embedded`]); synth and the default snapshot loader use that copy, and a
//! project directory can be loaded at run time with [`Registry::load_dir`].
//!
//! Physical Parquet fields are always written nullable: nullability is enforced by contract, so
//! a bad row can be quarantined instead of failing the whole load (SPEC §6).
//!
//! Its length (over 700 lines) is one idea: the declared types, the typed sources file and its
//! checks, and the registry built from them (about 610 lines), with their unit tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use serde_yaml_ng::Value;

use crate::error::{Error, Result};

/// Version of the snapshot format these declarations describe (manifest `schema_version`).
pub const SCHEMA_VERSION: u32 = 1;

/// The source files compiled into the binary, in registry order.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "pipelines/sources/crm.yml",
        include_str!("../pipelines/sources/crm.yml"),
    ),
    (
        "pipelines/sources/billing.yml",
        include_str!("../pipelines/sources/billing.yml"),
    ),
    (
        "pipelines/sources/usage.yml",
        include_str!("../pipelines/sources/usage.yml"),
    ),
    (
        "pipelines/sources/engagement.yml",
        include_str!("../pipelines/sources/engagement.yml"),
    ),
    (
        "pipelines/sources/finance.yml",
        include_str!("../pipelines/sources/finance.yml"),
    ),
    (
        "pipelines/sources/agents.yml",
        include_str!("../pipelines/sources/agents.yml"),
    ),
    (
        "pipelines/sources/gtm_ops.yml",
        include_str!("../pipelines/sources/gtm_ops.yml"),
    ),
];

/// The time zone every timestamp column carries.
pub const UTC: &str = "UTC";

/// A column's declared type, by its SQL name in the source files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Varchar,
    VarcharList,
    Date,
    Timestamp,
    Boolean,
    Integer,
    Bigint,
    Double,
    Decimal { precision: u8, scale: i8 },
}

impl ColumnType {
    pub fn parse(s: &str) -> Option<ColumnType> {
        let t = s.trim().to_ascii_lowercase();
        Some(match t.as_str() {
            "varchar" | "string" | "text" => ColumnType::Varchar,
            "varchar[]" => ColumnType::VarcharList,
            "date" => ColumnType::Date,
            "timestamp" => ColumnType::Timestamp,
            "boolean" | "bool" => ColumnType::Boolean,
            "integer" | "int" => ColumnType::Integer,
            "bigint" => ColumnType::Bigint,
            "double" => ColumnType::Double,
            _ => {
                let inner = t.strip_prefix("decimal(")?.strip_suffix(')')?;
                let (p, s) = inner.split_once(',')?;
                let (precision, scale) = (p.trim().parse().ok()?, s.trim().parse().ok()?);
                if !(1..=38).contains(&precision) || scale > precision as i8 || scale < 0 {
                    return None;
                }
                ColumnType::Decimal { precision, scale }
            }
        })
    }

    pub fn arrow(self) -> DataType {
        match self {
            ColumnType::Varchar => DataType::Utf8,
            ColumnType::VarcharList => {
                DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
            }
            ColumnType::Date => DataType::Date32,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::Integer => DataType::Int32,
            ColumnType::Bigint => DataType::Int64,
            ColumnType::Double => DataType::Float64,
            ColumnType::Decimal { precision, scale } => DataType::Decimal128(precision, scale),
        }
    }

    pub fn sql_name(self) -> String {
        match self {
            ColumnType::Varchar => "varchar".into(),
            ColumnType::VarcharList => "varchar[]".into(),
            ColumnType::Date => "date".into(),
            ColumnType::Timestamp => "timestamp".into(),
            ColumnType::Boolean => "boolean".into(),
            ColumnType::Integer => "integer".into(),
            ColumnType::Bigint => "bigint".into(),
            ColumnType::Double => "double".into(),
            ColumnType::Decimal { precision, scale } => format!("decimal({precision},{scale})"),
        }
    }

    /// Whether a Parquet column of type `found` can be read as this type without loss.
    /// Real exports differ in width (Int32 vs Int64), string flavour (LargeUtf8, Utf8View) and
    /// timestamp unit or zone; values are cast on read. Anything else is a mistyped column.
    pub fn accepts(self, found: &DataType) -> bool {
        use DataType as D;
        match (self, found) {
            (ColumnType::Varchar, D::Utf8 | D::LargeUtf8 | D::Utf8View) => true,
            (ColumnType::VarcharList, D::List(f) | D::LargeList(f)) => {
                matches!(f.data_type(), D::Utf8 | D::LargeUtf8 | D::Utf8View)
            }
            (ColumnType::Date, D::Date32) => true,
            (ColumnType::Timestamp, D::Timestamp(_, tz)) => tz
                .as_deref()
                .is_none_or(|z| matches!(z, "UTC" | "+00:00" | "Z" | "Etc/UTC")),
            (ColumnType::Boolean, D::Boolean) => true,
            // Wider integers and decimals are accepted; a value that does not fit is
            // dead-lettered row by row when a build reads the table.
            (
                ColumnType::Integer | ColumnType::Bigint,
                D::Int8
                | D::Int16
                | D::Int32
                | D::Int64
                | D::UInt8
                | D::UInt16
                | D::UInt32
                | D::UInt64,
            ) => true,
            (ColumnType::Double, D::Float16 | D::Float32 | D::Float64) => true,
            (
                ColumnType::Decimal { .. },
                D::Decimal128(..) | D::Decimal64(..) | D::Decimal32(..),
            ) => true,
            _ => false,
        }
    }
}

/// A foreign key: `column` references `to.field`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relationship {
    pub to: String,
    pub field: String,
}

/// One column of a source table.
#[derive(Debug, Clone)]
pub struct ColumnSchema {
    pub name: String,
    pub description: Option<String>,
    pub column_type: ColumnType,
    /// False when the column carries a `not_null` test.
    pub nullable: bool,
    pub unique: bool,
    /// The enum domain from `accepted_values`.
    pub accepted_values: Option<Vec<String>>,
    pub relationship: Option<Relationship>,
    /// The column's `data_tests` as written, for the contract engine.
    pub tests: Vec<Value>,
}

impl ColumnSchema {
    pub fn data_type(&self) -> DataType {
        self.column_type.arrow()
    }
}

/// One source table.
#[derive(Debug, Clone)]
pub struct TableSchema {
    pub name: String,
    pub description: Option<String>,
    /// Required tables must be present in every snapshot; optional ones (`required: false`) may be absent.
    pub required: bool,
    pub loaded_at_field: Option<String>,
    /// An append-only log (`append_only: true`): a row, once loaded, never changes, so what
    /// was known at a past time is the rows loaded by then. A build at an earlier `--as-of`
    /// than the snapshot's reads only those.
    pub append_only: bool,
    pub columns: Vec<ColumnSchema>,
    /// The YAML file that declares the table.
    pub file: PathBuf,
    /// The table declaration as written (hashed for its contract version).
    pub raw: Value,
    /// The declaration, typed: its table tests, freshness and contract version.
    pub decl: TableDecl,
    arrow: SchemaRef,
}

impl TableSchema {
    /// The Arrow schema written and read for this table: declared order, all fields nullable.
    pub fn arrow_schema(&self) -> SchemaRef {
        self.arrow.clone()
    }

    pub fn column(&self, name: &str) -> Option<&ColumnSchema> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Columns written without a Parquet dictionary: those declared unique.
    pub fn plain_columns(&self) -> Vec<&str> {
        self.columns
            .iter()
            .filter(|c| c.unique)
            .map(|c| c.name.as_str())
            .collect()
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }
}

/// All source tables, in declaration order.
#[derive(Debug, Clone)]
pub struct Registry {
    tables: Vec<TableSchema>,
}

impl Registry {
    /// The registry compiled into this binary.
    pub fn embedded() -> Result<&'static Registry> {
        static REGISTRY: OnceLock<std::result::Result<Registry, String>> = OnceLock::new();
        REGISTRY
            .get_or_init(|| {
                let files = EMBEDDED
                    .iter()
                    .map(|(p, t)| (PathBuf::from(p), t.to_string()))
                    .collect::<Vec<_>>();
                Registry::parse_files(&files).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| Error::Internal(format!("embedded source declarations do not parse: {e}")))
    }

    /// Load every `*.yml` / `*.yaml` file of a sources directory, in file-name order.
    pub fn load_dir(dir: &Path) -> Result<Registry> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| Error::io("cannot read sources directory", dir, e))?;
        let mut paths = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|e| Error::io("cannot read sources directory", dir, e))?
                .path();
            if matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yml" | "yaml")
            ) {
                paths.push(path);
            }
        }
        paths.sort();
        let mut files = Vec::new();
        for p in paths {
            let text = std::fs::read_to_string(&p).map_err(|e| Error::io("cannot read", &p, e))?;
            files.push((p, text));
        }
        Registry::parse_files(&files)
    }

    pub fn parse_files(files: &[(PathBuf, String)]) -> Result<Registry> {
        let mut tables: Vec<TableSchema> = Vec::new();
        for (path, text) in files {
            for t in parse_source_file(path, text)? {
                if let Some(prev) = tables.iter().find(|p| p.name == t.name) {
                    return Err(Error::pipeline(
                        path,
                        format!(
                            "table `{}` is already declared in {}",
                            t.name,
                            prev.file.display()
                        ),
                    ));
                }
                tables.push(t);
            }
        }
        let reg = Registry { tables };
        reg.check_relationships()?;
        Ok(reg)
    }

    fn check_relationships(&self) -> Result<()> {
        for t in &self.tables {
            for c in &t.columns {
                if let Some(r) = &c.relationship {
                    let ok = self
                        .table(&r.to)
                        .and_then(|to| to.column(&r.field))
                        .is_some();
                    if !ok {
                        return Err(Error::pipeline(
                            &t.file,
                            format!(
                                "table `{}`, column `{}`: relationships test refers to `{}.{}`, which is not declared",
                                t.name, c.name, r.to, r.field
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    pub fn tables(&self) -> &[TableSchema] {
        &self.tables
    }

    pub fn table(&self, name: &str) -> Option<&TableSchema> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// A declared table, or an internal error: for code that names tables it knows exist.
    pub fn expect_table(&self, name: &str) -> Result<&TableSchema> {
        self.table(name)
            .ok_or_else(|| Error::Internal(format!("table `{name}` is not in the schema registry")))
    }
}

/// A sources file as written: dbt's `version: 2` / `sources:` / `tables:` layout. Every level
/// denies unknown keys, so a misspelt key is an error naming the file and line.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SourcesFile {
    #[allow(dead_code)]
    version: Option<u32>,
    sources: Vec<SourceDecl>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceDecl {
    #[allow(dead_code)]
    name: String,
    #[allow(dead_code)]
    description: Option<String>,
    tables: Vec<TableDecl>,
}

/// One table's declaration.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableDecl {
    pub name: String,
    pub description: Option<String>,
    #[serde(default = "yes")]
    pub required: bool,
    pub loaded_at_field: Option<String>,
    #[serde(default)]
    pub append_only: bool,
    pub freshness: Option<FreshnessDecl>,
    /// Declared, or a hash of the declaration (see `project::SourceContract`).
    pub contract_version: Option<Value>,
    pub columns: Vec<ColumnDecl>,
    /// Table tests as written (each a name or a one-key map; parsed by the contract engine).
    #[serde(default)]
    pub data_tests: Vec<Value>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnDecl {
    pub name: String,
    pub description: Option<String>,
    pub data_type: String,
    #[serde(default)]
    pub data_tests: Vec<Value>,
}

/// `freshness: {warn_after: {count: 24, period: hour}, error_after: …}`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreshnessDecl {
    pub warn_after: Option<After>,
    pub error_after: Option<After>,
}

#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct After {
    pub count: f64,
    #[serde(default)]
    pub period: Period,
}

#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Minute,
    #[default]
    Hour,
    Day,
}

impl After {
    pub fn hours(&self) -> f64 {
        self.count
            * match self.period {
                Period::Minute => 1.0 / 60.0,
                Period::Hour => 1.0,
                Period::Day => 24.0,
            }
    }
}

fn parse_source_file(path: &Path, text: &str) -> Result<Vec<TableSchema>> {
    let file: SourcesFile = serde_yaml_ng::from_str(text)
        .map_err(|e| Error::pipeline(path, format!("invalid sources file: {e}")))?;
    // The declaration as written, for its contract_version hash.
    let doc: Value = serde_yaml_ng::from_str(text)
        .map_err(|e| Error::pipeline(path, format!("invalid YAML: {e}")))?;
    let mut out = Vec::new();
    for (i, source) in file.sources.into_iter().enumerate() {
        for (j, t) in source.tables.into_iter().enumerate() {
            let raw = doc["sources"][i]["tables"][j].clone();
            out.push(parse_table(path, t, raw)?);
        }
    }
    Ok(out)
}

fn parse_table(path: &Path, t: TableDecl, raw: Value) -> Result<TableSchema> {
    let name = t.name.clone();
    let err = |m: String| Error::pipeline(path, format!("table `{name}`: {m}"));
    let mut columns: Vec<ColumnSchema> = Vec::new();
    for c in &t.columns {
        let cname = c.name.clone();
        if columns.iter().any(|x| x.name == cname) {
            return Err(err(format!("column `{cname}` is declared twice")));
        }
        let cerr =
            |m: String| Error::pipeline(path, format!("table `{name}`, column `{cname}`: {m}"));
        let dt = &c.data_type;
        let column_type = ColumnType::parse(dt).ok_or_else(|| {
            cerr(format!(
                "unknown data_type `{dt}` (expected varchar, varchar[], date, timestamp, boolean, integer, bigint, double or decimal(p,s))"
            ))
        })?;
        let tests = c.data_tests.clone();
        let mut col = ColumnSchema {
            name: cname.clone(),
            description: c.description.clone(),
            column_type,
            nullable: true,
            unique: false,
            accepted_values: None,
            relationship: None,
            tests: tests.clone(),
        };
        for test in &tests {
            let (kind, args) = test_kind(test)
                .ok_or_else(|| cerr("a data test must be a name or a one-key map".into()))?;
            match kind {
                "not_null" => col.nullable = false,
                "unique" => col.unique = true,
                "accepted_values" => {
                    let values = args
                        .and_then(|a| a.get("values"))
                        .and_then(Value::as_sequence)
                        .ok_or_else(|| cerr("accepted_values needs `values: [...]`".into()))?;
                    let mut vs = Vec::new();
                    for v in values {
                        vs.push(
                            scalar_text(v)
                                .ok_or_else(|| cerr("accepted_values must be scalars".into()))?,
                        );
                    }
                    col.accepted_values = Some(vs);
                }
                "relationships" => {
                    let a =
                        args.ok_or_else(|| cerr("relationships needs `to:` and `field:`".into()))?;
                    let to =
                        str_key(a, "to").ok_or_else(|| cerr("relationships needs `to:`".into()))?;
                    let field = str_key(a, "field")
                        .ok_or_else(|| cerr("relationships needs `field:`".into()))?;
                    col.relationship = Some(Relationship {
                        to: relation_name(to),
                        field: field.to_string(),
                    });
                }
                // Other tests (ranges, ingest rules, …) belong to the contract engine.
                _ => {}
            }
        }
        columns.push(col);
    }
    if columns.is_empty() {
        return Err(err("declares no columns".into()));
    }
    if let Some(f) = &t.loaded_at_field
        && !columns.iter().any(|c| &c.name == f)
    {
        return Err(err(format!(
            "loaded_at_field `{f}` is not one of its columns"
        )));
    }
    if t.append_only && t.loaded_at_field.is_none() {
        return Err(err(
            "append_only needs a loaded_at_field (when each row was loaded)".into(),
        ));
    }
    if t.freshness.is_some() && t.loaded_at_field.is_none() {
        return Err(err("declares freshness but no loaded_at_field".into()));
    }
    let fields: Vec<Field> = columns
        .iter()
        .map(|c| Field::new(&c.name, c.data_type(), true))
        .collect();
    Ok(TableSchema {
        name,
        description: t.description.as_ref().map(|s| s.trim().to_string()),
        required: t.required,
        loaded_at_field: t.loaded_at_field.clone(),
        append_only: t.append_only,
        columns,
        file: path.to_path_buf(),
        raw,
        decl: t,
        arrow: Arc::new(Schema::new(fields)),
    })
}

fn str_key<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// `not_null` → ("not_null", None); `{accepted_values: {...}}` → ("accepted_values", Some(args)).
pub fn test_kind(test: &Value) -> Option<(&str, Option<&Value>)> {
    match test {
        Value::String(s) => Some((s.as_str(), None)),
        Value::Mapping(m) if m.len() == 1 => {
            let (k, v) = m.iter().next()?;
            Some((k.as_str()?, Some(v)))
        }
        _ => None,
    }
}

/// A YAML scalar (text, number or boolean) as the text it was written as; None otherwise.
pub fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `accounts`, `ref('accounts')` or `source('snapshot', 'accounts')` → `accounts`.
pub fn relation_name(to: &str) -> String {
    let t = to.trim();
    let inner = t
        .strip_prefix("ref(")
        .or_else(|| t.strip_prefix("source("))
        .and_then(|r| r.strip_suffix(')'))
        .map(|args| args.rsplit(',').next().unwrap_or(args));
    inner
        .unwrap_or(t)
        .trim()
        .trim_matches(|c| c == '\'' || c == '"')
        .trim()
        .to_string()
}

/// Enum domains as a map, for reports and tests: table → column → values.
pub fn enum_domains(reg: &Registry) -> BTreeMap<(String, String), Vec<String>> {
    let mut m = BTreeMap::new();
    for t in reg.tables() {
        for c in &t.columns {
            if let Some(v) = &c.accepted_values {
                m.insert((t.name.clone(), c.name.clone()), v.clone());
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_registry_has_every_spec_table() {
        let reg = Registry::embedded().unwrap();
        for t in [
            "accounts",
            "contacts",
            "reps",
            "opportunities",
            "orders",
            "order_lines",
            "service_milestones",
            "usage_metering_log",
            "invoices",
            "invoice_lines",
            "payment_events",
            "feature_engagement",
            "conversations",
            "support_tickets",
            "nps_responses",
            "qbr_log",
            "onboarding_log",
            "technical_milestones",
            "cadence_events",
            "gtm_spend",
            "financials",
            "fpa_plan",
            "agent_decisions",
            "decision_outcomes",
            "restatements",
            "reference_usage",
            "reference_billing",
            "reference_gl",
        ] {
            assert!(reg.table(t).is_some(), "missing table {t}");
        }
        let usage = reg.table("usage_metering_log").unwrap();
        assert_eq!(usage.columns.len(), 22);
        let seg = reg.table("accounts").unwrap().column("segment").unwrap();
        assert_eq!(
            seg.accepted_values.as_deref(),
            Some(&["SMB".to_string(), "MM".into(), "ENT".into()][..])
        );
        assert!(!seg.nullable);
        assert!(
            reg.table("accounts")
                .unwrap()
                .column("archetype")
                .unwrap()
                .nullable
        );
        assert!(!reg.table("restatements").unwrap().required);
        let amount = reg
            .table("order_lines")
            .unwrap()
            .column("line_amount_usd")
            .unwrap();
        assert_eq!(amount.data_type(), DataType::Decimal128(18, 2));
    }

    #[test]
    fn embedded_list_matches_the_sources_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/sources");
        let on_disk = Registry::load_dir(&dir).unwrap();
        let embedded = Registry::embedded().unwrap();
        let mut a: Vec<_> = on_disk.tables().iter().map(|t| t.name.clone()).collect();
        let mut b: Vec<_> = embedded.tables().iter().map(|t| t.name.clone()).collect();
        a.sort();
        b.sort();
        assert_eq!(
            a, b,
            "add new files under pipelines/sources/ to EMBEDDED in src/schema.rs"
        );
    }

    #[test]
    fn bad_declarations_name_file_table_and_column() {
        let bad = "sources:\n  - name: s\n    tables:\n      - name: t\n        columns:\n          - name: c\n            data_type: money\n";
        let e = Registry::parse_files(&[(PathBuf::from("x.yml"), bad.into())])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x.yml") && e.contains("`t`") && e.contains("`c`") && e.contains("money"),
            "{e}"
        );
        let dangling = "sources:\n  - name: s\n    tables:\n      - name: t\n        columns:\n          - name: c\n            data_type: varchar\n            data_tests:\n              - relationships: {to: ref('u'), field: id}\n";
        let e = Registry::parse_files(&[(PathBuf::from("y.yml"), dangling.into())])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`u.id`"), "{e}");
    }

    #[test]
    fn type_compatibility() {
        assert!(ColumnType::Bigint.accepts(&DataType::Int32));
        assert!(
            ColumnType::Integer.accepts(&DataType::Int64),
            "narrowing is checked row by row"
        );
        assert!(!ColumnType::Integer.accepts(&DataType::Float64));
        assert!(ColumnType::Varchar.accepts(&DataType::Utf8View));
        assert!(!ColumnType::Date.accepts(&DataType::Utf8));
        assert!(ColumnType::Timestamp.accepts(&DataType::Timestamp(TimeUnit::Nanosecond, None)));
        assert!(!ColumnType::Timestamp.accepts(&DataType::Timestamp(
            TimeUnit::Microsecond,
            Some("Europe/Paris".into())
        )));
        let money = ColumnType::Decimal {
            precision: 18,
            scale: 2,
        };
        assert!(money.accepts(&DataType::Decimal128(10, 2)));
        assert!(money.accepts(&DataType::Decimal128(38, 4)));
        assert!(!money.accepts(&DataType::Float64));
        assert_eq!(relation_name("source('snapshot', 'accounts')"), "accounts");
        assert_eq!(relation_name("ref(\"reps\")"), "reps");
    }
}
