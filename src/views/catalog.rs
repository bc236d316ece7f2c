//! The view contracts (`views/*.yml`) and the models they generate: one per view (and per
//! top-N aggregate), each row carrying its view_metadata; [`Catalog::hash`] is
//! `brain_view_contracts_hash`.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewKind {
    /// A view over the whole population, read by the pipeline brain (AGT-901).
    CrossPopulation,
    /// One of the per-account components joined into the composite (AGT-902).
    AccountComponent,
    /// A multi-quarter view over the whole population, read by the strategy brain (AGT-903).
    Strategy,
}

impl ViewKind {
    pub fn name(self) -> &'static str {
        match self {
            ViewKind::CrossPopulation => "cross_population",
            ViewKind::AccountComponent => "account_component",
            ViewKind::Strategy => "strategy",
        }
    }

    /// Read as one document over the whole population (not per account).
    pub fn is_whole_population(self) -> bool {
        self != ViewKind::AccountComponent
    }
}

/// A view a brain's contract calls for that this project cannot build from its snapshot: the
/// catalog lists it as unavailable, with why, so a brain that declines has a source to cite.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnavailableView {
    pub name: String,
    pub kind: ViewKind,
    /// The owning service.
    pub owner: String,
    pub used_by: Vec<String>,
    /// What the view would hold.
    pub purpose: String,
    /// Why it cannot be built: the inputs the snapshot lacks.
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Aggregate {
    pub group_by: Vec<String>,
    pub measures: Vec<String>,
}

/// One view's contract. SQL fragments may use the project's template calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewContract {
    pub name: String,
    pub kind: ViewKind,
    /// Compression pattern: top_n_aggregate, time_window or composite_component.
    pub pattern: String,
    /// `ref('model')` or `source('snapshot', 'table')`.
    pub source: String,
    /// The owning service.
    pub owner: String,
    /// Projection rule: the select list.
    pub projection: Vec<String>,
    /// Filter rule: a predicate over the source.
    pub filter: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_by: Vec<String>,
    /// The view's order (per account for components): first = most important / newest.
    pub order_by: Vec<String>,
    /// Top N rows (per account for components).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aggregate: Option<Aggregate>,
    /// The projected column that dates a row: the oldest rows are dropped first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_column: Option<String>,
    /// A row's load or event time (a timestamp or date expression over the source); the
    /// view's last refresh is its newest value over the whole source.
    pub refreshed_at: String,
    pub refresh: String,
    pub staleness_threshold_hours: f64,
    pub token_budget: usize,
    pub used_by: Vec<String>,
    pub version: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompositeContract {
    pub name: String,
    pub owner: String,
    pub refresh: String,
    pub staleness_threshold_hours: f64,
    pub token_budget: usize,
    pub used_by: Vec<String>,
    pub version: u32,
    /// The account components, in document order.
    pub components: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ViewsFile {
    pub(super) tokenizer: String,
    pub(super) composite: CompositeContract,
    pub(super) views: Vec<ViewContract>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(super) unavailable: Vec<UnavailableView>,
}

/// The view contracts of a project.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub file: PathBuf,
    pub tokenizer: String,
    pub composite: CompositeContract,
    /// Sorted by name.
    pub views: Vec<ViewContract>,
    /// Views the contract calls for that cannot be built here, sorted by name.
    pub unavailable: Vec<UnavailableView>,
    /// brain_view_contracts_hash.
    pub hash: String,
}

/// The published table of a view.
pub fn model_name(view: &str) -> String {
    format!("view_{view}")
}

/// The published table of a view's roll-up.
pub fn aggregate_model_name(view: &str) -> String {
    format!("view_{view}_aggregate")
}

/// The tables [`assemble`] publishes.
pub const COMPOSITE_TABLE: &str = "account_composite";
pub const CATALOG_TABLE: &str = "view_catalog";

/// The `brain_view_contracts_hash` of the views a warehouse publishes now (from its
/// `view_catalog`), or none when it has published none.
pub fn published_contracts_hash(warehouse: &Path) -> Result<Option<String>> {
    let path = crate::warehouse::Warehouse::new(warehouse).published_file(CATALOG_TABLE);
    if !path.exists() {
        return Ok(None);
    }
    Ok(crate::table_io::json_rows(&path)?
        .first()
        .and_then(|r| r.get("brain_view_contracts_hash"))
        .and_then(Value::as_str)
        .map(str::to_string))
}

fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// A select-list entry's output name: its alias, or the column itself.
pub(super) fn output_name(expr: &str) -> Option<String> {
    let e = expr.trim();
    if is_ident(e) {
        return Some(e.to_string());
    }
    let lower = e.to_ascii_lowercase();
    let at = lower.rfind(" as ")?;
    let alias = e[at + 4..].trim();
    is_ident(alias).then(|| alias.to_string())
}

/// A select-list entry without its alias (for GROUP BY).
pub(super) fn without_alias(expr: &str) -> String {
    let e = expr.trim();
    let lower = e.to_ascii_lowercase();
    match lower.rfind(" as ") {
        Some(at) if is_ident(e[at + 4..].trim()) => e[..at].trim().to_string(),
        _ => e.to_string(),
    }
}

impl Catalog {
    /// The contracts under `dir` (every `*.yml`), or None when there is no such directory.
    pub fn load(dir: &Path) -> Result<Option<Catalog>> {
        if !dir.exists() {
            return Ok(None);
        }
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| Error::io("cannot read", dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| matches!(p.extension().and_then(|x| x.to_str()), Some("yml" | "yaml")))
            .collect();
        files.sort();
        let file = match files.as_slice() {
            [] => return Ok(None),
            [f] => f.clone(),
            _ => {
                return Err(Error::pipeline(
                    dir,
                    "the view contracts must be one file (with the composite and every view)",
                ));
            }
        };
        let text =
            std::fs::read_to_string(&file).map_err(|e| Error::io("cannot read", &file, e))?;
        let parsed: ViewsFile = serde_yaml_ng::from_str(&text)
            .map_err(|e| Error::pipeline(&file, format!("not a view contract file: {e}")))?;
        Catalog::new(file, parsed).map(Some)
    }

    pub(super) fn new(file: PathBuf, mut f: ViewsFile) -> Result<Catalog> {
        let bad = |m: String| Error::pipeline(&file, m);
        if !TOKENIZERS.contains(&f.tokenizer.as_str()) {
            return Err(bad(format!(
                "tokenizer `{}`: must be one of {}",
                f.tokenizer,
                TOKENIZERS.join(", ")
            )));
        }
        f.views.sort_by(|a, b| a.name.cmp(&b.name));
        f.unavailable.sort_by(|a, b| a.name.cmp(&b.name));
        let mut names: Vec<&str> = f
            .views
            .iter()
            .map(|v| v.name.as_str())
            .chain(f.unavailable.iter().map(|u| u.name.as_str()))
            .collect();
        names.sort_unstable();
        for w in names.windows(2) {
            if w[0] == w[1] {
                return Err(bad(format!("view `{}` is declared twice", w[0])));
            }
        }
        for u in &f.unavailable {
            if !is_ident(&u.name) || u.reason.trim().is_empty() || u.owner.trim().is_empty() {
                return Err(bad(format!(
                    "unavailable view `{}`: needs a lowercase identifier, an owner and a reason",
                    u.name
                )));
            }
        }
        for v in &f.views {
            let ctx = |m: &str| bad(format!("view `{}`: {m}", v.name));
            if !is_ident(&v.name) {
                return Err(ctx("the name must be a lowercase identifier"));
            }
            if v.projection.is_empty() || v.order_by.is_empty() {
                return Err(ctx("projection and order_by must not be empty"));
            }
            let outputs: Vec<Option<String>> =
                v.projection.iter().map(|p| output_name(p)).collect();
            if let Some(i) = outputs.iter().position(Option::is_none) {
                return Err(ctx(&format!(
                    "projection entry `{}` needs an alias (`… as name`)",
                    v.projection[i]
                )));
            }
            let outputs: Vec<String> = outputs.into_iter().flatten().collect();
            if v.kind == ViewKind::AccountComponent && !outputs.iter().any(|o| o == "account_id") {
                return Err(ctx("an account component must project account_id"));
            }
            if let Some(t) = &v.time_column
                && !outputs.contains(t)
            {
                return Err(ctx(&format!("time_column `{t}` is not in the projection")));
            }
            if v.staleness_threshold_hours <= 0.0 || v.token_budget == 0 || v.limit == Some(0) {
                return Err(ctx(
                    "staleness_threshold_hours, token_budget and limit must be positive",
                ));
            }
            if !v.source.starts_with("ref(") && !v.source.starts_with("source(") {
                return Err(ctx(
                    "source must be ref('model') or source('snapshot', 'table')",
                ));
            }
        }
        for c in &f.composite.components {
            match f.views.iter().find(|v| &v.name == c) {
                Some(v) if v.kind == ViewKind::AccountComponent => {}
                Some(_) => {
                    return Err(bad(format!(
                        "composite component `{c}` is not an account_component view"
                    )));
                }
                None => return Err(bad(format!("composite component `{c}` names no view"))),
            }
        }
        let canonical = serde_json::to_vec(
            &serde_json::to_value(&f)
                .map_err(|e| Error::Internal(format!("view contracts do not serialise: {e}")))?,
        )
        .map_err(|e| Error::Internal(format!("view contracts do not serialise: {e}")))?;
        Ok(Catalog {
            file,
            hash: crate::table_io::sha256_hex(&canonical),
            tokenizer: f.tokenizer,
            composite: f.composite,
            views: f.views,
            unavailable: f.unavailable,
        })
    }

    pub fn view(&self, name: &str) -> Option<&ViewContract> {
        self.views.iter().find(|v| v.name == name)
    }

    /// sha256 of one view's canonical contract.
    pub fn contract_sha256(v: &ViewContract) -> String {
        let bytes =
            serde_json::to_vec(&serde_json::to_value(v).unwrap_or(Value::Null)).unwrap_or_default();
        crate::table_io::sha256_hex(&bytes)
    }

    /// The generated models: (name, SQL template text, order_by, description).
    pub fn models(&self) -> Vec<(String, String, Vec<String>, String)> {
        let mut out = Vec::new();
        for v in &self.views {
            out.push((
                model_name(&v.name),
                view_sql(v),
                if v.kind.is_whole_population() {
                    vec!["view_rank".into()]
                } else {
                    vec!["account_id".into(), "view_rank".into()]
                },
                format!(
                    "Brain-ready view `{}` (SPEC §10), owned by {}, used by {}.",
                    v.name,
                    v.owner,
                    v.used_by.join(", ")
                ),
            ));
            if let Some(a) = &v.aggregate {
                out.push((
                    aggregate_model_name(&v.name),
                    aggregate_sql(v, a),
                    Vec::new(),
                    format!("The roll-up of brain-ready view `{}`.", v.name),
                ));
            }
        }
        out
    }
}

/// The view metadata columns every view row carries, over `rows` and the `refreshed` CTE.
fn metadata_select(v: &ViewContract) -> String {
    let threshold_micros = (v.staleness_threshold_hours * 3_600_000_000.0).round() as i64;
    format!(
        "'{name}' as view_name, arrow_cast({version}, 'Int32') as view_version, rows.*, \
         r.last_refresh_timestamp, arrow_cast({hours}, 'Float64') as staleness_threshold_hours, \
         coalesce(arrow_cast({{{{ as_of }}}}, 'Int64') - arrow_cast(r.last_refresh_timestamp, 'Int64') > {threshold_micros}, true) as is_stale",
        name = v.name,
        version = v.version,
        hours = v.staleness_threshold_hours,
    )
}

/// `refreshed_at: inputs`: the view's last refresh is the newest load time among the snapshot
/// sources its model was built from (`{{ inputs_loaded_at(…) }}`, see the project renderer).
pub const REFRESHED_AT_INPUTS: &str = "inputs";

/// The model or source table a view reads: the last quoted name of `ref('m')` or
/// `source('snapshot', 't')`.
fn source_name(source: &str) -> &str {
    source.rsplit(['\'', '"']).nth(1).unwrap_or(source)
}

fn common_ctes(v: &ViewContract) -> String {
    const UTC: &str = "'Timestamp(Microsecond, Some(\"UTC\"))'";
    let refreshed = if v.refreshed_at.trim() == REFRESHED_AT_INPUTS {
        format!(
            "select arrow_cast(arrow_cast({{{{ inputs_loaded_at('{}') }}}}, 'Timestamp(Microsecond, None)'), {UTC}) as last_refresh_timestamp",
            source_name(&v.source)
        )
    } else {
        // The newest row time known at as_of: a row dated later (a scheduled QBR, a row of a
        // snapshot read at an earlier as_of) does not make the view fresher than as_of.
        format!(
            "select max(case when t <= {{{{ as_of }}}} then t end) as last_refresh_timestamp\n    from (\n        select arrow_cast(arrow_cast({}, 'Timestamp(Microsecond, None)'), {UTC}) as t\n        from src\n    ) x",
            v.refreshed_at
        )
    };
    format!(
        "with src as (\n    select * from {{{{ {source} }}}}\n),\n\n\
         refreshed as (\n    {refreshed}\n)",
        source = v.source,
    )
}

fn view_sql(v: &ViewContract) -> String {
    let partition = if v.kind.is_whole_population() {
        ""
    } else {
        "partition by account_id "
    };
    let group = if v.group_by.is_empty() {
        String::new()
    } else {
        format!("\n    group by {}", v.group_by.join(", "))
    };
    let limit = v
        .limit
        .map(|n| format!("\nwhere rows.view_rank <= {n}"))
        .unwrap_or_default();
    format!(
        "-- Generated from the view contract `{name}` (views/*.yml); edit the contract, not this.\n\
         {ctes},\n\n\
         base as (\n    select {projection}\n    from src\n    where {filter}{group}\n),\n\n\
         rows as (\n    select *, row_number() over ({partition}order by {order}) as view_rank\n    from base\n)\n\n\
         select {meta}\nfrom rows\ncross join refreshed r{limit}\n",
        name = v.name,
        ctes = common_ctes(v),
        projection = v.projection.join(",\n        "),
        filter = v.filter,
        order = v.order_by.join(", "),
        meta = metadata_select(v),
    )
}

fn aggregate_sql(v: &ViewContract, a: &Aggregate) -> String {
    let keys: Vec<String> = a.group_by.iter().map(|g| without_alias(g)).collect();
    format!(
        "-- Generated from the view contract `{name}` (views/*.yml): its roll-up.\n\
         {ctes},\n\n\
         rows as (\n    select {cols}\n    from src\n    where {filter}\n    group by {keys}\n)\n\n\
         select {meta}\nfrom rows\ncross join refreshed r\n",
        name = v.name,
        ctes = common_ctes(v),
        cols = a
            .group_by
            .iter()
            .chain(&a.measures)
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        filter = v.filter,
        keys = keys.join(", "),
        meta = metadata_select(v),
    )
}
