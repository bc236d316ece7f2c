//! Models and singular tests: each `.sql` file with its properties (description, config,
//! column types, tests), the config checked and resolved, and the columns a model publishes.

use arrow::datatypes::DataType;

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Materialized {
    /// Written to `warehouse/published/<model>.parquet`.
    Table,
    /// Not written; other models read it as a view.
    View,
}

#[derive(Debug, Clone)]
pub struct Model {
    pub name: String,
    pub file: PathBuf,
    pub description: Option<String>,
    pub pieces: Vec<Piece>,
    pub refs: Vec<Ref>,
    pub materialized: Materialized,
    /// Columns the published table is sorted by (all columns when empty), for byte-identical output.
    pub order_by: Vec<String>,
    pub tests: Vec<TestSpec>,
    /// Tags for selection (`--select tag:recognition`).
    pub tags: Vec<String>,
    /// The date column by which closed months are frozen (`config(freeze='month')`).
    pub freeze: Option<String>,
    /// Declared columns with types: when every output column is declared, the output is cast
    /// to them and checked (a dbt model contract).
    pub contract: Vec<(String, crate::schema::ColumnType)>,
    /// `config(blocked_inputs='last_good')`: run on the last good version of a blocked input
    /// instead of being blocked with it (per-metric publish gating).
    pub reads_last_good: bool,
    /// The declared `config(definition_version=…)`.
    pub definition_version: Option<String>,
    /// sha256 of the SQL file's text.
    pub text_sha256: String,
    /// `config(sort_in_ranges=N)`: published sorted piece by piece, about N rows per range of
    /// the first order_by column with a 4 GiB memory pool (in proportion with others), instead
    /// of by one global sort (for the largest tables).
    pub sort_in_ranges: Option<u64>,
    /// `config(build_in_ranges=N)`: the model's rows each depend only on input rows with the
    /// same value of its first order_by column (a per-account model), so it runs range by range
    /// of that column, about N input rows a range with a 4 GiB memory pool (in proportion with
    /// others), each range sorted and appended in order (for models whose whole query would
    /// not fit the memory pool).
    pub build_in_ranges: Option<u64>,
    /// `config(pushdown_filters=true)`: models reading this table evaluate their filters while
    /// decoding it (see [`crate::engine::Engine::register_parquet_with`]).
    pub pushdown_filters: bool,
}

impl Model {
    /// The published columns over the model's query `m`, whose output columns (and their
    /// types) are `produced`: with a contract, exactly the declared columns in declared order,
    /// cast to their types — a cast that changes width, precision or time unit, never the kind
    /// of value (text, number, date, timestamp, boolean, list); always with the run's
    /// `build_id`.
    pub fn output_select(&self, produced: &[(&str, &DataType)], build_id: &str) -> Result<String> {
        use crate::engine::{ident, quote};
        let has_build_id = produced.iter().any(|(n, _)| *n == "build_id");
        if self.contract.is_empty() {
            return Ok(if has_build_id {
                "m.*".to_string()
            } else {
                format!("m.*, {} AS build_id", quote(build_id))
            });
        }
        let declared: BTreeSet<&str> = self.contract.iter().map(|(n, _)| n.as_str()).collect();
        for (name, ty) in &self.contract {
            let Some((_, found)) = produced.iter().find(|(n, _)| n == name) else {
                continue;
            };
            let (want, got) = (kind(&ty.arrow()), kind(found));
            if want != got && got != Kind::Null {
                return Err(Error::pipeline(
                    &self.file,
                    format!(
                        "model `{}`: column `{name}` is declared {} but the model outputs {found} ({got:?}, not {want:?})",
                        self.name,
                        ty.sql_name()
                    ),
                ));
            }
        }
        let produced: BTreeSet<&str> = produced
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| *n != "build_id" || declared.contains("build_id"))
            .collect();
        if let Some(missing) = declared
            .iter()
            .find(|c| !produced.contains(*c) && **c != "build_id")
        {
            return Err(Error::pipeline(
                &self.file,
                format!(
                    "model `{}`: declared column `{missing}` is not in its output",
                    self.name
                ),
            ));
        }
        if let Some(extra) = produced.iter().find(|c| !declared.contains(*c)) {
            return Err(Error::pipeline(
                &self.file,
                format!(
                    "model `{}`: output column `{extra}` is not declared in its properties",
                    self.name
                ),
            ));
        }
        let mut cols: Vec<String> = self
            .contract
            .iter()
            .map(|(n, t)| {
                if n == "build_id" && !has_build_id {
                    format!("{} AS build_id", quote(build_id))
                } else {
                    format!("arrow_cast(m.{c}, '{}') AS {c}", t.arrow(), c = ident(n))
                }
            })
            .collect();
        if !declared.contains("build_id") {
            cols.push(format!("{} AS build_id", quote(build_id)));
        }
        Ok(cols.join(", "))
    }

    /// The declared columns as an Arrow schema (all nullable), e.g. for `closed.<model>`.
    pub fn contract_schema(&self) -> arrow::datatypes::SchemaRef {
        std::sync::Arc::new(arrow::datatypes::Schema::new(
            self.contract
                .iter()
                .map(|(n, t)| arrow::datatypes::Field::new(n, t.arrow(), true))
                .collect::<Vec<_>>(),
        ))
    }
}

/// The kind of value a type holds, which a contract's cast may not change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Number,
    Date,
    Timestamp,
    Boolean,
    List,
    /// An untyped NULL: any declared type.
    Null,
    Other,
}

fn kind(t: &DataType) -> Kind {
    use DataType as D;
    match t {
        D::Utf8 | D::LargeUtf8 | D::Utf8View => Kind::Text,
        t if t.is_numeric() => Kind::Number,
        D::Date32 | D::Date64 => Kind::Date,
        D::Timestamp(..) => Kind::Timestamp,
        D::Boolean => Kind::Boolean,
        D::List(_) | D::LargeList(_) | D::ListView(_) => Kind::List,
        D::Null => Kind::Null,
        _ => Kind::Other,
    }
}

/// A `tests/*.sql` file: a query that returns failing rows.
#[derive(Debug, Clone)]
pub struct SingularTest {
    pub name: String,
    pub file: PathBuf,
    pub pieces: Vec<Piece>,
    pub refs: Vec<Ref>,
    pub severity: Severity,
    pub error_if: Option<Threshold>,
    pub warn_if: Option<Threshold>,
}

impl SingularTest {
    pub fn spec(&self) -> TestSpec {
        TestSpec {
            kind: data_tests::TestKind::Expression("false".into()),
            column: None,
            rule: self.name.clone(),
            severity: self.severity,
            on_fail: data_tests::OnFail::None,
            error_if: self.error_if.clone(),
            warn_if: self.warn_if.clone(),
            where_: None,
        }
    }
}

fn config_str(c: &BTreeMap<String, ConfigValue>, k: &str) -> Option<String> {
    match c.get(k)? {
        ConfigValue::Str(s) => Some(s.clone()),
        _ => None,
    }
}

/// The models under `dir` (each `.sql` file with its properties from any `.yml` there) and
/// the unit tests those properties files declare.
pub(super) fn load_models(
    dir: &Path,
    default_materialized: Materialized,
    registry: &Registry,
) -> Result<(Vec<Model>, Vec<unit_tests::UnitTest>)> {
    // Properties from every YAML file under the models directory.
    let mut props: BTreeMap<String, (PathBuf, files::ModelDecl)> = BTreeMap::new();
    let mut unit_tests = Vec::new();
    for f in files_below(dir, &[".yml", ".yaml"])? {
        let file: files::ModelsFile = files::read(&f, "model properties")?;
        for m in file.models {
            let name = m.name.clone();
            if props.insert(name.clone(), (f.clone(), m)).is_some() {
                return Err(Error::pipeline(
                    &f,
                    format!("model `{name}` has properties in two places"),
                ));
            }
        }
        for t in file.unit_tests {
            unit_tests.push(unit_tests::UnitTest::new(&f, t)?);
        }
    }
    let mut models: Vec<Model> = Vec::new();
    for f in files_below(dir, &[".sql"])? {
        let name = f
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_string();
        if registry.table(&name).is_some() {
            return Err(Error::pipeline(
                &f,
                format!("model `{name}` has the name of a source table; rename it"),
            ));
        }
        if let Some(prev) = models.iter().find(|m| m.name == name) {
            return Err(Error::pipeline(
                &f,
                format!("model `{name}` is also defined in {}", prev.file.display()),
            ));
        }
        let text = std::fs::read_to_string(&f).map_err(|e| Error::io("cannot read", &f, e))?;
        let pieces = template::parse(&text)
            .map_err(|e| Error::pipeline(&f, format!("line {}: {}", e.line, e.message)))?;
        let refs = template::refs(&pieces);
        let mut cfg = template::config(&pieces);
        files::check_config_keys(
            &f,
            &format!("model `{name}`"),
            cfg.keys(),
            files::MODEL_CONFIG_KEYS,
        )?;
        let (yaml_file, yaml) = match props.remove(&name) {
            Some((f, m)) => (Some(f), Some(m)),
            None => (None, None),
        };
        if let (Some(yf), Some(y)) = (&yaml_file, &yaml) {
            files::check_config_keys(
                yf,
                &format!("model `{name}`"),
                y.config.keys(),
                files::MODEL_CONFIG_KEYS,
            )?;
            for (k, v) in &y.config {
                let cv = match v {
                    Value::String(s) => ConfigValue::Str(s.clone()),
                    Value::Bool(b) => ConfigValue::Bool(*b),
                    Value::Sequence(l) => {
                        ConfigValue::List(l.iter().filter_map(scalar_text).collect())
                    }
                    Value::Number(n) => ConfigValue::Num(n.as_f64().unwrap_or(0.0)),
                    _ => {
                        return Err(Error::pipeline(
                            yf,
                            format!("model `{name}`: config `{k}` must be a scalar or a list"),
                        ));
                    }
                };
                // SQL config() wins over YAML, as in dbt.
                cfg.entry(k.clone()).or_insert(cv);
            }
        }
        if matches!(cfg.get("enabled"), Some(ConfigValue::Bool(false))) {
            continue;
        }
        let materialized = match config_str(&cfg, "materialized").as_deref() {
            None => default_materialized,
            Some("table") => Materialized::Table,
            Some("view") => Materialized::View,
            Some(x) => {
                return Err(Error::pipeline(
                    &f,
                    format!("materialized `{x}` must be table or view"),
                ));
            }
        };
        let order_by = match cfg.get("order_by") {
            Some(ConfigValue::List(l)) => l.clone(),
            Some(ConfigValue::Str(s)) => s
                .split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect(),
            _ => Vec::new(),
        };
        let mut tests = Vec::new();
        let mut contract = Vec::new();
        let tfile = yaml_file.clone().unwrap_or_else(|| f.clone());
        let no_columns = Vec::new();
        let no_tests = Vec::new();
        let (columns, table_tests) = match &yaml {
            Some(y) => (&y.columns, &y.data_tests),
            None => (&no_columns, &no_tests),
        };
        for c in columns {
            let cname = c.name.as_str();
            if let Some(dt) = c.data_type.as_deref() {
                let ty = crate::schema::ColumnType::parse(dt).ok_or_else(|| {
                    Error::pipeline(
                        &tfile,
                        format!("model `{name}`, column `{cname}`: unknown data_type `{dt}`"),
                    )
                })?;
                contract.push((cname.to_string(), ty));
            }
            for entry in &c.data_tests {
                // Model columns' types come from the SQL; quote accepted values unless told otherwise.
                tests.push(model_test(
                    &tfile,
                    &name,
                    Some((cname, crate::schema::ColumnType::Varchar)),
                    entry,
                )?);
            }
        }
        for entry in table_tests {
            tests.push(model_test(&tfile, &name, None, entry)?);
        }
        let tags = match cfg.get("tags") {
            Some(ConfigValue::List(l)) => l.clone(),
            Some(ConfigValue::Str(s)) => vec![s.clone()],
            _ => Vec::new(),
        };
        let freeze = config_str(&cfg, "freeze");
        if freeze.is_some() && contract.is_empty() {
            return Err(Error::pipeline(
                &f,
                format!(
                    "model `{name}` freezes closed periods, so it needs declared columns with data_type"
                ),
            ));
        }
        if let Some(col) = &freeze
            && !contract
                .iter()
                .any(|(c, t)| c == col && *t == crate::schema::ColumnType::Date)
        {
            return Err(Error::pipeline(
                &f,
                format!("model `{name}`: freeze column `{col}` must be a declared date column"),
            ));
        }
        let reads_last_good = match config_str(&cfg, "blocked_inputs").as_deref() {
            None | Some("block") => false,
            Some("last_good") => true,
            Some(x) => {
                return Err(Error::pipeline(
                    &f,
                    format!("blocked_inputs `{x}` must be block or last_good"),
                ));
            }
        };
        let definition_version = match cfg.get("definition_version") {
            Some(ConfigValue::Str(s)) => Some(s.clone()),
            Some(ConfigValue::Num(n)) => Some(n.to_string()),
            _ => None,
        };
        let sort_in_ranges = match cfg.get("sort_in_ranges") {
            None => None,
            Some(ConfigValue::Num(n)) if *n >= 1.0 && !order_by.is_empty() => Some(*n as u64),
            Some(_) => {
                return Err(Error::pipeline(
                    &f,
                    format!(
                        "model `{name}`: sort_in_ranges must be a positive row count, with order_by"
                    ),
                ));
            }
        };
        let build_in_ranges = match cfg.get("build_in_ranges") {
            None => None,
            Some(n) => {
                let why = match n {
                    ConfigValue::Num(n) if *n >= 1.0 => None,
                    _ => Some("must be a positive row count"),
                }
                .or(order_by.is_empty().then_some("needs order_by"))
                .or((materialized != Materialized::Table).then_some("needs a table"))
                .or(sort_in_ranges
                    .is_some()
                    .then_some("replaces sort_in_ranges"));
                match (why, n) {
                    (None, ConfigValue::Num(n)) => Some(*n as u64),
                    (why, _) => {
                        return Err(Error::pipeline(
                            &f,
                            format!(
                                "model `{name}`: build_in_ranges {}",
                                why.unwrap_or("must be a positive row count")
                            ),
                        ));
                    }
                }
            }
        };
        let pushdown_filters = match cfg.get("pushdown_filters") {
            None => false,
            Some(ConfigValue::Bool(b)) => *b,
            Some(_) => {
                return Err(Error::pipeline(
                    &f,
                    format!("model `{name}`: pushdown_filters must be true or false"),
                ));
            }
        };
        models.push(Model {
            sort_in_ranges,
            build_in_ranges,
            pushdown_filters,
            reads_last_good,
            definition_version,
            text_sha256: crate::table_io::sha256_hex(text.as_bytes()),
            tags,
            freeze,
            contract,
            name,
            file: f,
            description: yaml
                .as_ref()
                .and_then(|y| y.description.as_deref())
                .map(|s| s.trim().to_string()),
            pieces,
            refs,
            materialized,
            order_by,
            tests,
        });
    }
    if let Some((name, (f, _))) = props.into_iter().next() {
        return Err(Error::pipeline(
            &f,
            format!("properties for model `{name}`, but there is no {name}.sql"),
        ));
    }
    Ok((models, unit_tests))
}

/// The model a brain-ready view contract generates: a table tagged `views` that reads the last
/// good version of a blocked input (so the view goes stale rather than missing).
pub(super) fn generated_view_model(
    file: &Path,
    name: String,
    sql: &str,
    order_by: Vec<String>,
    description: String,
) -> Result<Model> {
    let pieces = template::parse(sql).map_err(|e| {
        Error::pipeline(
            file,
            format!("view model `{name}`, line {}: {}", e.line, e.message),
        )
    })?;
    Ok(Model {
        refs: template::refs(&pieces),
        pieces,
        materialized: Materialized::Table,
        order_by,
        tests: Vec::new(),
        tags: vec!["views".into()],
        freeze: None,
        contract: Vec::new(),
        reads_last_good: true,
        sort_in_ranges: None,
        build_in_ranges: None,
        pushdown_filters: false,
        definition_version: None,
        text_sha256: crate::table_io::sha256_hex(sql.as_bytes()),
        file: file.to_path_buf(),
        description: Some(description),
        name,
    })
}

/// A model test: rows of a model cannot be quarantined, so failing tests block its publishing.
fn model_test(
    file: &Path,
    model: &str,
    column: Option<(&str, crate::schema::ColumnType)>,
    entry: &Value,
) -> Result<TestSpec> {
    let t = data_tests::parse_test(file, model, column, entry, None)?;
    if t.on_fail.removes_rows() {
        return Err(Error::pipeline(
            file,
            format!(
                "model `{model}`, rule `{}`: on_fail {} applies to source rows only; use block or none",
                t.rule,
                t.on_fail.name()
            ),
        ));
    }
    Ok(t)
}

pub(super) fn load_singular_tests(dir: &Path) -> Result<Vec<SingularTest>> {
    let mut out = Vec::new();
    for f in files_below(dir, &[".sql"])? {
        let text = std::fs::read_to_string(&f).map_err(|e| Error::io("cannot read", &f, e))?;
        let pieces = template::parse(&text)
            .map_err(|e| Error::pipeline(&f, format!("line {}: {}", e.line, e.message)))?;
        let cfg = template::config(&pieces);
        files::check_config_keys(
            &f,
            "singular test",
            cfg.keys(),
            files::SINGULAR_TEST_CONFIG_KEYS,
        )?;
        let severity = match config_str(&cfg, "severity").as_deref() {
            None | Some("error") => Severity::Error,
            Some("warn") => Severity::Warn,
            Some(x) => {
                return Err(Error::pipeline(
                    &f,
                    format!("severity `{x}` must be error or warn"),
                ));
            }
        };
        let threshold = |k: &str| -> Result<Option<Threshold>> {
            match config_str(&cfg, k) {
                None => Ok(None),
                Some(t) => Threshold::parse(&t)
                    .map(Some)
                    .ok_or_else(|| Error::pipeline(&f, format!("{k} `{t}` is not a threshold"))),
            }
        };
        let refs = template::refs(&pieces);
        if refs.is_empty() {
            return Err(Error::pipeline(
                &f,
                "a singular test must read a model or source through ref() or source()",
            ));
        }
        out.push(SingularTest {
            name: f
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("")
                .to_string(),
            file: f.clone(),
            refs,
            severity,
            error_if: threshold("error_if")?,
            warn_if: threshold("warn_if")?,
            pieces,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contract_casts_width_but_refuses_another_kind_of_value() {
        let dir = tempfile::tempdir().unwrap();
        let p = test_project(
            dir.path(),
            &[
                ("models/m.sql", "select 1 as a, 'x' as b"),
                (
                    "models/m.yml",
                    "models:\n  - name: m\n    columns:\n      - { name: a, data_type: double }\n      - { name: b, data_type: varchar }\n",
                ),
            ],
        );
        let m = p.model("m").unwrap();
        let ok = m
            .output_select(&[("a", &DataType::Int64), ("b", &DataType::Utf8)], "B")
            .unwrap();
        assert_eq!(
            ok,
            "arrow_cast(m.a, 'Float64') AS a, arrow_cast(m.b, 'Utf8') AS b, 'B' AS build_id"
        );
        assert!(
            m.output_select(&[("a", &DataType::Null), ("b", &DataType::Utf8)], "B")
                .is_ok()
        );
        // Two text columns swapped into a number would be cast (and maybe parsed) silently.
        let e = m
            .output_select(&[("a", &DataType::Utf8), ("b", &DataType::Utf8)], "B")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("column `a` is declared double but the model outputs Utf8"),
            "{e}"
        );
        let e = m
            .output_select(&[("a", &DataType::Int64)], "B")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("declared column `b` is not in its output"),
            "{e}"
        );
    }
}
