//! Brain-ready views (SPEC §10): the Tier-1 → Tier-2 read contract.
//!
//! The contract lives in the pipelines project (`views/*.yml`): every view with its source,
//! owning service, projection, filter, refresh cadence, staleness threshold, token budget,
//! used-by list and version, plus the per-account composite. From it:
//!
//! - [`Catalog::models`] generates one model per view (`view_<name>`, tag `views`, and
//!   `view_<name>_aggregate` for top-N + aggregate views) that the build runs like any other,
//!   each row carrying its view_metadata (last_refresh_timestamp, staleness_threshold_hours,
//!   is_stale against as_of);
//! - [`assemble`] turns the published views into documents the brains read: one per
//!   cross-population view and one per account (the composite of the account components),
//!   each within its token budget as counted by a real BPE tokenizer, dropping the oldest
//!   detail first and recording what it dropped; and the `view_catalog` table;
//! - [`Catalog::hash`] is `brain_view_contracts_hash`: sha256 over the canonical contract.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::table_io::{JsonGetter, json_getter};

mod tokens;
pub use tokens::{TOKENIZERS, Tokenizer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ViewKind {
    /// A view over the whole population, read by the pipeline brain (AGT-901).
    CrossPopulation,
    /// One of the per-account components joined into the composite (AGT-902).
    AccountComponent,
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
struct ViewsFile {
    tokenizer: String,
    composite: CompositeContract,
    views: Vec<ViewContract>,
}

/// The view contracts of a project.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub file: PathBuf,
    pub tokenizer: String,
    pub composite: CompositeContract,
    /// Sorted by name.
    pub views: Vec<ViewContract>,
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
fn output_name(expr: &str) -> Option<String> {
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
fn without_alias(expr: &str) -> String {
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

    fn new(file: PathBuf, mut f: ViewsFile) -> Result<Catalog> {
        let bad = |m: String| Error::pipeline(&file, m);
        if !TOKENIZERS.contains(&f.tokenizer.as_str()) {
            return Err(bad(format!(
                "tokenizer `{}`: must be one of {}",
                f.tokenizer,
                TOKENIZERS.join(", ")
            )));
        }
        f.views.sort_by(|a, b| a.name.cmp(&b.name));
        for w in f.views.windows(2) {
            if w[0].name == w[1].name {
                return Err(bad(format!("view `{}` is declared twice", w[0].name)));
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
                match v.kind {
                    ViewKind::AccountComponent => vec!["account_id".into(), "view_rank".into()],
                    ViewKind::CrossPopulation => vec!["view_rank".into()],
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
    let partition = match v.kind {
        ViewKind::AccountComponent => "partition by account_id ",
        ViewKind::CrossPopulation => "",
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

/// One row of a view, as the brain reads it: the projected columns only.
#[derive(Debug, Clone)]
struct Row {
    /// The row as a JSON object, keys in order (as serde_json writes a map).
    text: String,
    /// The time column's day, for dropping the oldest first (None: undated).
    day: Option<i32>,
    rank: i64,
}

/// A view's metadata, the same on every row: read off the first.
struct ViewMeta {
    last_refresh: Option<String>,
    is_stale: bool,
}

impl ViewMeta {
    fn of(first: Option<&arrow::array::RecordBatch>, path: &Path) -> Result<ViewMeta> {
        let Some(first) = first.filter(|b| b.num_rows() > 0) else {
            return Ok(ViewMeta {
                last_refresh: None,
                is_stale: true,
            });
        };
        let meta = crate::table_io::batches_as_json(&[first.slice(0, 1)], path)?;
        Ok(ViewMeta {
            last_refresh: meta[0]
                .get("last_refresh_timestamp")
                .and_then(Value::as_str)
                .map(str::to_string),
            is_stale: meta[0]
                .get("is_stale")
                .and_then(Value::as_bool)
                .unwrap_or(true),
        })
    }
}

/// Rows of one view: a cross-population view's all, or an account component's for a chunk of
/// accounts. Components keep their Arrow batches and where each account's rows are, and turn
/// one account's rows into JSON only when its composite is assembled.
struct ViewData {
    /// One writer per batch.
    writers: Vec<RowWriter>,
    /// account → (batch, offset, rows) runs.
    by_account: BTreeMap<String, Vec<(usize, usize, usize)>>,
    /// A cross-population view's rows.
    rows: Vec<Row>,
}

impl ViewData {
    fn of(
        batches: &[arrow::array::RecordBatch],
        v: &ViewContract,
        path: &Path,
    ) -> Result<ViewData> {
        let mut data = ViewData {
            writers: batches
                .iter()
                .map(|b| RowWriter::new(b, v, path))
                .collect::<Result<_>>()?,
            by_account: BTreeMap::new(),
            rows: Vec::new(),
        };
        match v.kind {
            ViewKind::CrossPopulation => {
                data.rows = batches
                    .iter()
                    .zip(&data.writers)
                    .flat_map(|(b, w)| (0..b.num_rows()).map(move |i| w.row(i)))
                    .collect();
            }
            ViewKind::AccountComponent => {
                for (bi, b) in batches.iter().enumerate() {
                    let ids = account_ids(b, path)?;
                    let mut i = 0;
                    while i < b.num_rows() {
                        let id = ids.value(i);
                        let mut j = i + 1;
                        while j < b.num_rows() && ids.value(j) == id {
                            j += 1;
                        }
                        data.by_account
                            .entry(id.to_string())
                            .or_default()
                            .push((bi, i, j - i));
                        i = j;
                    }
                }
            }
        }
        Ok(data)
    }

    /// One account's rows of a component, in view order.
    fn rows_of(&self, account: &str) -> Vec<Row> {
        let Some(runs) = self.by_account.get(account) else {
            return Vec::new();
        };
        let mut rows: Vec<Row> = runs
            .iter()
            .flat_map(|&(b, at, n)| (at..at + n).map(move |i| self.writers[b].row(i)))
            .collect();
        sort_rows(&mut rows);
        rows
    }
}

/// A batch's `account_id` column as text.
fn account_ids(b: &arrow::array::RecordBatch, path: &Path) -> Result<arrow::array::StringArray> {
    use arrow::array::AsArray;
    let col = b
        .column_by_name("account_id")
        .ok_or_else(|| Error::Internal(format!("{}: no account_id", path.display())))?;
    let ids = arrow::compute::cast(col, &arrow::datatypes::DataType::Utf8)
        .map_err(|e| Error::arrow(path.display().to_string(), e))?;
    Ok(ids.as_string::<i32>().clone())
}

/// An account component's published table read a chunk of accounts at a time: the table is
/// sorted by account_id (its order_by), so the rows of the accounts up to a chunk's last are
/// the next rows of the file. Memory holds one chunk's rows, not the table.
struct ComponentStream {
    path: PathBuf,
    batches: Box<dyn Iterator<Item = Result<arrow::array::RecordBatch>> + Send>,
    /// Rows read past the previous chunk's last account.
    rest: Option<arrow::array::RecordBatch>,
    /// The last account id read, to check the order.
    last_read: Option<String>,
}

impl ComponentStream {
    fn open(path: &Path) -> Result<ComponentStream> {
        Ok(ComponentStream {
            path: path.to_path_buf(),
            batches: Box::new(crate::table_io::batches(path, None)?),
            rest: None,
            last_read: None,
        })
    }

    /// The rows whose account_id is at most `last`, in file order.
    fn through(&mut self, last: &str) -> Result<Vec<arrow::array::RecordBatch>> {
        let mut out = Vec::new();
        loop {
            let b = match self.rest.take() {
                Some(b) => b,
                None => match self.batches.next() {
                    Some(b) => {
                        let b = b?;
                        self.check_order(&b)?;
                        b
                    }
                    None => break,
                },
            };
            let ids = account_ids(&b, &self.path)?;
            let n = (0..b.num_rows())
                .take_while(|&i| ids.value(i) <= last)
                .count();
            if n == b.num_rows() {
                out.push(b);
                continue;
            }
            if n > 0 {
                out.push(b.slice(0, n));
            }
            self.rest = Some(b.slice(n, b.num_rows() - n));
            break;
        }
        Ok(out)
    }

    fn check_order(&mut self, b: &arrow::array::RecordBatch) -> Result<()> {
        let ids = account_ids(b, &self.path)?;
        for i in 0..b.num_rows() {
            let id = ids.value(i);
            if self.last_read.as_deref().is_some_and(|p| p > id) {
                return Err(Error::Internal(format!(
                    "{}: not sorted by account_id (`{id}` after `{}`)",
                    self.path.display(),
                    self.last_read.as_deref().unwrap_or_default()
                )));
            }
            if self.last_read.as_deref() != Some(id) {
                self.last_read = Some(id.to_string());
            }
        }
        Ok(())
    }
}

/// The columns of a view's rows that are not its data (its view_metadata): dropped from the
/// documents.
pub const METADATA: [&str; 6] = [
    "view_name",
    "view_version",
    "view_rank",
    "last_refresh_timestamp",
    "staleness_threshold_hours",
    "is_stale",
];

/// Writes one batch's rows as the documents carry them: the projected columns (without the
/// metadata, the build id and, in components, the account id) as a JSON object.
struct RowWriter {
    /// Each kept column's `"name":` and its values, in key order.
    columns: Vec<(String, JsonGetter)>,
    /// The position in `columns` of the time column.
    time: Option<usize>,
    rank: Option<JsonGetter>,
}

impl RowWriter {
    fn new(batch: &arrow::array::RecordBatch, v: &ViewContract, path: &Path) -> Result<RowWriter> {
        let schema = batch.schema();
        let mut columns = Vec::new();
        let mut rank = None;
        for (f, c) in schema.fields().iter().zip(batch.columns()) {
            let name = f.name().as_str();
            if name == "view_rank" {
                rank = Some(json_getter(f, c, path)?);
            }
            let dropped = METADATA.contains(&name)
                || name == "build_id"
                || (name == "account_id" && v.kind == ViewKind::AccountComponent);
            if !dropped {
                columns.push((name.to_string(), json_getter(f, c, path)?));
            }
        }
        columns.sort_by(|a, b| a.0.cmp(&b.0));
        let time = v
            .time_column
            .as_ref()
            .and_then(|t| columns.iter().position(|(n, _)| n == t));
        for (name, _) in &mut columns {
            *name = format!("{}:", Value::String(std::mem::take(name)));
        }
        Ok(RowWriter {
            columns,
            time,
            rank,
        })
    }

    fn row(&self, i: usize) -> Row {
        use std::fmt::Write;
        let mut text = String::with_capacity(24 * self.columns.len());
        text.push('{');
        let mut day = None;
        for (k, (key, get)) in self.columns.iter().enumerate() {
            if k > 0 {
                text.push(',');
            }
            text.push_str(key);
            let value = get(i);
            if Some(k) == self.time {
                day = day_of(&value);
            }
            let _ = write!(text, "{value}");
        }
        text.push('}');
        let rank = self.rank.as_ref().and_then(|g| g(i).as_i64()).unwrap_or(0);
        Row { text, day, rank }
    }
}

fn day_of(v: &Value) -> Option<i32> {
    match v {
        Value::String(s) if s.len() >= 10 => {
            crate::calendar::Day::parse(&s[..10]).ok().map(|d| d.0)
        }
        _ => None,
    }
}

/// The row to drop first: the oldest dated row (of equal days, the lowest ranked), else the
/// lowest ranked.
fn oldest_index(rows: &[Row]) -> Option<usize> {
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

fn sort_rows(rows: &mut [Row]) {
    rows.sort_by_key(|r| r.rank);
}

/// What assembling the brain-ready documents of one build came to. The composites themselves
/// went to the sink as they were assembled.
pub struct Assembled {
    /// One row per view and one for the composite.
    pub catalog: Vec<CatalogRow>,
    /// Composite documents (one per account with rows in any component).
    pub composites: usize,
    pub composite_tokens_max: usize,
    /// Rows dropped from the composites to fit their budgets.
    pub dropped_rows: usize,
}

/// Accounts assembled at a time: their components' rows are read, their documents assembled
/// in parallel, handed to the sink and freed, so neither the component views nor the documents
/// of every account sit in memory together (at 1,000,000 accounts the documents alone are
/// about 15 GB). A multiple of the Parquet writer's batch size, so the table's bytes do not
/// depend on it.
pub const COMPOSITE_CHUNK: usize = 8 * 1024;

/// One account's composite document and what fitting it cost.
pub struct Composite {
    pub account_id: String,
    pub document: String,
    pub tokens: usize,
    pub stale_components: Vec<String>,
    pub dropped_rows: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct CatalogRow {
    pub view_name: String,
    pub kind: String,
    pub pattern: String,
    pub source: String,
    pub owner: String,
    pub refresh: String,
    pub used_by: Vec<String>,
    pub version: u32,
    pub staleness_threshold_hours: f64,
    pub last_refresh_timestamp: Option<String>,
    pub is_stale: bool,
    pub token_budget: usize,
    pub documents: usize,
    pub rows: usize,
    pub tokens_p50: usize,
    pub tokens_p95: usize,
    pub tokens_max: usize,
    pub dropped_rows: usize,
    pub contract_sha256: String,
    /// The document a cross-population view is read as (None for components).
    pub document: Option<String>,
}

/// The composite's last refresh and staleness, computed from its components: its last refresh
/// is the oldest of the components it promises to refresh at its own cadence (those whose
/// threshold is at most the composite's; slow ones such as QBRs are judged by their own), and
/// it is stale when that is older than its threshold at as_of, or when any component is stale.
fn composite_staleness(
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
fn percentile(sorted: &[usize], p: f64) -> usize {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// Token counts of a view's documents.
struct TokenStats {
    documents: usize,
    p50: usize,
    p95: usize,
    max: usize,
}

impl TokenStats {
    fn of(mut tokens: Vec<usize>) -> TokenStats {
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
fn view_row(
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
        kind: match v.kind {
            ViewKind::CrossPopulation => "cross_population",
            ViewKind::AccountComponent => "account_component",
        }
        .into(),
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
    }
}

/// Fit a document built by `render` from `parts` (each a list of rows) into `budget` tokens:
/// drop the globally oldest row until the tokenizer's count of the whole document fits.
/// Returns the document, its tokens and the drops per part.
fn fit(
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
struct Doc<'a>(BTreeMap<&'a str, Part<'a>>);

enum Part<'a> {
    Value(Value),
    Rows(&'a [Row]),
    Doc(Doc<'a>),
}

impl<'a> Doc<'a> {
    /// The members of `map`, less those named in `except`.
    fn of(map: &'a Map<String, Value>, except: &[&str]) -> Doc<'a> {
        Doc(map
            .iter()
            .filter(|(k, _)| !except.contains(&k.as_str()))
            .map(|(k, v)| (k.as_str(), Part::Value(v.clone())))
            .collect())
    }

    fn set(&mut self, key: &'a str, value: impl Into<Part<'a>>) {
        self.0.insert(key, value.into());
    }

    fn write(&self, out: &mut String) {
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

    fn text(&self) -> String {
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

/// Build the documents from the published views in `published` (a directory of
/// `<model>.parquet`). Views not published (not selected) are skipped.
/// Assemble the documents from the views published under `published`: the cross-population
/// documents go into the catalog rows, the composites to `sink`, in account order, a chunk of
/// `accounts_per_chunk` accounts at a time (the build uses [`COMPOSITE_CHUNK`]; the documents
/// do not depend on it).
pub fn assemble(
    catalog: &Catalog,
    published: &Path,
    as_of: &str,
    build_id: &str,
    accounts_per_chunk: usize,
    sink: &mut dyn FnMut(Vec<Composite>) -> Result<()>,
) -> Result<Assembled> {
    let tok = Tokenizer::new(&catalog.tokenizer)?;
    let path_of = |v: &ViewContract| published.join(format!("{}.parquet", model_name(&v.name)));
    let mut meta: BTreeMap<String, ViewMeta> = BTreeMap::new();
    // Cross-population views are read whole; account components a chunk at a time, below.
    let mut cross: BTreeMap<String, ViewData> = BTreeMap::new();
    let mut aggregates: BTreeMap<String, Vec<Map<String, Value>>> = BTreeMap::new();
    for v in &catalog.views {
        let path = path_of(v);
        if !path.exists() {
            continue;
        }
        let m = match v.kind {
            ViewKind::CrossPopulation => {
                let (_, batches) = crate::table_io::read_parquet(&path)?;
                cross.insert(v.name.clone(), ViewData::of(&batches, v, &path)?);
                ViewMeta::of(batches.iter().find(|b| b.num_rows() > 0), &path)?
            }
            ViewKind::AccountComponent => {
                let first = crate::table_io::batches(&path, None)?.next().transpose()?;
                ViewMeta::of(first.as_ref(), &path)?
            }
        };
        meta.insert(v.name.clone(), m);
        let agg = published.join(format!("{}.parquet", aggregate_model_name(&v.name)));
        if v.aggregate.is_some() && agg.exists() {
            let mut rows = crate::table_io::json_rows(&agg)?;
            for r in &mut rows {
                for m in METADATA {
                    r.remove(m);
                }
            }
            aggregates.insert(v.name.clone(), rows);
        }
    }
    let mut catalog_rows = Vec::new();
    let header = |v: &ViewContract, d: &ViewMeta| -> Map<String, Value> {
        let mut h = Map::new();
        h.insert("view".into(), json!(v.name));
        h.insert("view_version".into(), json!(v.version));
        h.insert("last_refresh_timestamp".into(), json!(d.last_refresh));
        h.insert(
            "staleness_threshold_hours".into(),
            json!(v.staleness_threshold_hours),
        );
        h.insert("is_stale".into(), json!(d.is_stale));
        h
    };

    // Cross-population views: one document each.
    for v in catalog
        .views
        .iter()
        .filter(|v| v.kind == ViewKind::CrossPopulation)
    {
        let Some(d) = cross.get_mut(&v.name) else {
            continue;
        };
        sort_rows(&mut d.rows);
        let head = header(v, &meta[&v.name]);
        let agg = aggregates.get(&v.name).cloned();
        let mut parts = vec![std::mem::take(&mut d.rows)];
        let render = |parts: &[Vec<Row>], dropped: &[Dropped]| -> String {
            let mut doc = Doc::of(&head, &[]);
            doc.set("as_of", as_of);
            if let Some(a) = &agg {
                doc.set(
                    "aggregate",
                    Value::Array(a.iter().cloned().map(Value::Object).collect()),
                );
            }
            doc.set("rows", Part::Rows(&parts[0]));
            if dropped[0].rows > 0 {
                doc.set("dropped", json!(dropped[0]));
            }
            doc.text()
        };
        let (doc, tokens, dropped) = fit(&mut parts, v.token_budget, &tok, &render);
        let rows = parts.remove(0).len();
        catalog_rows.push(view_row(
            v,
            &meta[&v.name],
            vec![tokens],
            rows,
            dropped[0].rows,
            Some(doc),
        ));
    }

    // Account components: each fits its own budget, then the composite fits its budget.
    let comps: Vec<&ViewContract> = catalog
        .composite
        .components
        .iter()
        .filter_map(|c| catalog.view(c))
        .filter(|v| v.kind == ViewKind::AccountComponent && meta.contains_key(&v.name))
        .collect();
    // Every account with rows in any component, in order.
    let mut accounts: BTreeSet<String> = BTreeSet::new();
    for v in &comps {
        let path = path_of(v);
        for b in crate::table_io::batches(&path, Some(&["account_id"]))? {
            let ids = account_ids(&b?, &path)?;
            // Sorted: an account's rows are consecutive.
            let mut previous = None;
            for id in (0..arrow::array::Array::len(&ids)).map(|i| ids.value(i)) {
                if previous != Some(id) && !accounts.contains(id) {
                    accounts.insert(id.to_string());
                }
                previous = Some(id);
            }
        }
    }
    let accounts: Vec<String> = accounts.into_iter().collect();
    let stale: Vec<String> = comps
        .iter()
        .filter(|v| meta[&v.name].is_stale)
        .map(|v| v.name.clone())
        .collect();
    let heads: Vec<Map<String, Value>> = comps.iter().map(|v| header(v, &meta[&v.name])).collect();
    // One account's composite: (composite, each component's tokens and rows dropped).
    // `data`: each component's rows of the account's chunk, in `comps` order.
    let one = |account: &String, data: &[ViewData]| -> Result<(Composite, Vec<(usize, usize)>)> {
        let mut parts: Vec<Vec<Row>> = Vec::new();
        let mut drops: Vec<Dropped> = Vec::new();
        let mut component_tokens = Vec::new();
        for (i, v) in comps.iter().enumerate() {
            let rows = data[i].rows_of(account);
            let head = &heads[i];
            let mut one = vec![rows];
            let render = |p: &[Vec<Row>], dr: &[Dropped]| -> String {
                let mut c = Doc::of(head, &[]);
                c.set("rows", Part::Rows(&p[0]));
                if dr[0].rows > 0 {
                    c.set("dropped", json!(dr[0]));
                }
                c.text()
            };
            let (_, tokens, dropped) = fit(&mut one, v.token_budget, &tok, &render);
            component_tokens.push(tokens);
            parts.push(one.remove(0));
            drops.push(dropped.into_iter().next().unwrap_or_default());
        }
        let component_drops = drops.clone();
        let render = |p: &[Vec<Row>], dr: &[Dropped]| -> String {
            let mut components = Doc::default();
            let mut dropped_list = Vec::new();
            for (i, v) in comps.iter().enumerate() {
                let mut c = Doc::of(&heads[i], &["view"]);
                c.set("rows", Part::Rows(&p[i]));
                let total = Dropped {
                    rows: component_drops[i].rows + dr[i].rows,
                    through: component_drops[i]
                        .through
                        .clone()
                        .max(dr[i].through.clone()),
                };
                if total.rows > 0 {
                    dropped_list.push(
                        json!({"component": v.name, "rows": total.rows, "through": total.through}),
                    );
                }
                components.set(v.name.as_str(), Part::Doc(c));
            }
            let mut doc = Doc::default();
            doc.set("account_id", account.as_str());
            doc.set("as_of", as_of);
            doc.set("composite", catalog.composite.name.as_str());
            doc.set("composite_version", catalog.composite.version);
            doc.set("brain_view_contracts_hash", catalog.hash.as_str());
            doc.set("build_id", build_id);
            doc.set("tokenizer", catalog.tokenizer.as_str());
            doc.set("token_budget", catalog.composite.token_budget);
            doc.set("stale_components", json!(stale));
            doc.set("dropped", Value::Array(dropped_list));
            doc.set("components", Part::Doc(components));
            doc.text()
        };
        let (doc, tokens, dropped) = fit(&mut parts, catalog.composite.token_budget, &tok, &render);
        let per_component: Vec<(usize, usize)> = component_tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (*t, drops[i].rows + dropped[i].rows))
            .collect();
        Ok((
            Composite {
                account_id: account.clone(),
                document: doc,
                tokens,
                stale_components: stale.clone(),
                dropped_rows: per_component.iter().map(|c| c.1).sum(),
            },
            per_component,
        ))
    };
    // Accounts are independent: assembled in parallel a chunk at a time, handed on in
    // account order.
    use rayon::prelude::*;
    let mut component_tokens: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut component_dropped: BTreeMap<String, usize> = BTreeMap::new();
    let mut composite_tokens = Vec::with_capacity(accounts.len());
    let mut composite_dropped = 0;
    let mut streams: Vec<ComponentStream> = comps
        .iter()
        .map(|v| ComponentStream::open(&path_of(v)))
        .collect::<Result<_>>()?;
    for chunk in accounts.chunks(accounts_per_chunk.max(1)) {
        let last = chunk.last().expect("chunks are not empty");
        let data: Vec<ViewData> = comps
            .par_iter()
            .zip(streams.par_iter_mut())
            .map(|(v, s)| ViewData::of(&s.through(last)?, v, &s.path))
            .collect::<Result<_>>()?;
        let built: Vec<(Composite, Vec<(usize, usize)>)> = chunk
            .par_iter()
            .map(|a| one(a, &data))
            .collect::<Result<Vec<_>>>()?;
        let mut composites = Vec::with_capacity(built.len());
        for (c, per_component) in built {
            for (i, v) in comps.iter().enumerate() {
                component_tokens
                    .entry(v.name.clone())
                    .or_default()
                    .push(per_component[i].0);
                *component_dropped.entry(v.name.clone()).or_default() += per_component[i].1;
            }
            composite_tokens.push(c.tokens);
            composite_dropped += c.dropped_rows;
            composites.push(c);
        }
        sink(composites)?;
    }
    for v in &comps {
        catalog_rows.push(view_row(
            v,
            &meta[&v.name],
            component_tokens.remove(&v.name).unwrap_or_default(),
            0,
            component_dropped.get(&v.name).copied().unwrap_or(0),
            None,
        ));
    }
    let composites = composite_tokens.len();
    let composite_tokens_max = composite_tokens.iter().copied().max().unwrap_or(0);
    if composites > 0 {
        let c = &catalog.composite;
        let stats = TokenStats::of(composite_tokens);
        let (nightly, is_stale) = composite_staleness(c, &catalog_rows, as_of)?;
        catalog_rows.push(CatalogRow {
            view_name: c.name.clone(),
            kind: "composite".into(),
            pattern: "composite".into(),
            source: c.components.join(", "),
            owner: c.owner.clone(),
            refresh: c.refresh.clone(),
            used_by: c.used_by.clone(),
            version: c.version,
            staleness_threshold_hours: c.staleness_threshold_hours,
            last_refresh_timestamp: nightly.clone(),
            is_stale,
            token_budget: c.token_budget,
            documents: stats.documents,
            rows: 0,
            tokens_p50: stats.p50,
            tokens_p95: stats.p95,
            tokens_max: stats.max,
            dropped_rows: composite_dropped,
            contract_sha256: catalog.hash.clone(),
            document: None,
        });
    }
    catalog_rows.sort_by(|a, b| {
        (a.kind.as_str(), a.view_name.as_str()).cmp(&(b.kind.as_str(), b.view_name.as_str()))
    });
    Ok(Assembled {
        catalog: catalog_rows,
        composites,
        composite_tokens_max,
        dropped_rows: composite_dropped,
    })
}

fn utc_ts_field(name: &str) -> arrow::datatypes::Field {
    use arrow::datatypes::{DataType, Field, TimeUnit};
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        true,
    )
}

/// Writes the `account_composite` table a chunk of composites at a time, in account order:
/// each chunk's documents are freed once encoded. Chunks of a multiple of the Parquet writer's
/// batch size give the same bytes as one batch.
pub struct CompositeWriter {
    w: crate::table_io::TableWriter,
    schema: arrow::datatypes::SchemaRef,
    build_id: String,
}

impl CompositeWriter {
    pub fn create(path: &Path, build_id: &str) -> Result<CompositeWriter> {
        use arrow::datatypes::{DataType, Field, Schema};
        let schema = std::sync::Arc::new(Schema::new(vec![
            Field::new("account_id", DataType::Utf8, false),
            Field::new("document", DataType::Utf8, false),
            Field::new("tokens", DataType::Int64, false),
            Field::new("stale_components", DataType::Utf8, false),
            Field::new("dropped_rows", DataType::Int64, false),
            Field::new("build_id", DataType::Utf8, false),
        ]));
        Ok(CompositeWriter {
            w: crate::table_io::TableWriter::create(path, schema.clone(), &[])?,
            schema,
            build_id: build_id.to_string(),
        })
    }

    pub fn write(&mut self, c: Vec<Composite>) -> Result<()> {
        use arrow::array::{ArrayRef, Int64Array, StringArray};
        use std::sync::Arc;
        if c.is_empty() {
            return Ok(());
        }
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                c.iter().map(|x| x.account_id.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                c.iter().map(|x| x.document.as_str()),
            )),
            Arc::new(Int64Array::from_iter_values(
                c.iter().map(|x| x.tokens as i64),
            )),
            Arc::new(StringArray::from_iter_values(
                c.iter().map(|x| json!(x.stale_components).to_string()),
            )),
            Arc::new(Int64Array::from_iter_values(
                c.iter().map(|x| x.dropped_rows as i64),
            )),
            Arc::new(StringArray::from_iter_values(
                c.iter().map(|_| self.build_id.as_str()),
            )),
        ];
        drop(c);
        let b = arrow::array::RecordBatch::try_new(self.schema.clone(), cols)
            .map_err(|e| Error::arrow("cannot build account_composite", e))?;
        self.w.write(&b)
    }

    pub fn finish(self) -> Result<crate::table_io::WrittenFile> {
        self.w.finish()
    }
}

/// The `view_catalog` table: one row per view and one for the composite.
pub fn catalog_batch(
    a: &Assembled,
    catalog: &Catalog,
    build_id: &str,
    as_of: i64,
) -> Result<arrow::array::RecordBatch> {
    use arrow::array::{
        ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray,
    };
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;
    let r = &a.catalog;
    let text = |f: &dyn Fn(&CatalogRow) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(r.iter().map(f)))
    };
    let int = |f: &dyn Fn(&CatalogRow) -> usize| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(r.iter().map(|x| f(x) as i64)))
    };
    let refreshed: Vec<Option<i64>> = r
        .iter()
        .map(|x| {
            x.last_refresh_timestamp
                .as_deref()
                .and_then(|t| crate::calendar::parse_ts(t).ok())
        })
        .collect();
    let s = |n: &str| Field::new(n, DataType::Utf8, false);
    let i = |n: &str| Field::new(n, DataType::Int64, false);
    let schema = Arc::new(Schema::new(vec![
        s("view_name"),
        s("kind"),
        s("pattern"),
        s("source"),
        s("owner"),
        s("refresh"),
        s("used_by"),
        i("version"),
        Field::new("staleness_threshold_hours", DataType::Float64, false),
        utc_ts_field("last_refresh_timestamp"),
        Field::new("is_stale", DataType::Boolean, false),
        i("token_budget"),
        i("documents"),
        i("rows"),
        i("tokens_p50"),
        i("tokens_p95"),
        i("tokens_max"),
        i("dropped_rows"),
        s("contract_sha256"),
        s("brain_view_contracts_hash"),
        s("tokenizer"),
        Field::new("document", DataType::Utf8, true),
        utc_ts_field("as_of"),
        s("build_id"),
    ]));
    let cols: Vec<ArrayRef> = vec![
        text(&|x| x.view_name.clone()),
        text(&|x| x.kind.clone()),
        text(&|x| x.pattern.clone()),
        text(&|x| x.source.clone()),
        text(&|x| x.owner.clone()),
        text(&|x| x.refresh.clone()),
        text(&|x| json!(x.used_by).to_string()),
        int(&|x| x.version as usize),
        Arc::new(Float64Array::from_iter_values(
            r.iter().map(|x| x.staleness_threshold_hours),
        )),
        Arc::new(TimestampMicrosecondArray::from(refreshed).with_timezone("UTC")),
        Arc::new(BooleanArray::from_iter(r.iter().map(|x| Some(x.is_stale)))),
        int(&|x| x.token_budget),
        int(&|x| x.documents),
        int(&|x| x.rows),
        int(&|x| x.tokens_p50),
        int(&|x| x.tokens_p95),
        int(&|x| x.tokens_max),
        int(&|x| x.dropped_rows),
        text(&|x| x.contract_sha256.clone()),
        text(&|_| catalog.hash.clone()),
        text(&|_| catalog.tokenizer.clone()),
        Arc::new(StringArray::from_iter(
            r.iter().map(|x| x.document.as_deref()),
        )),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(r.iter().map(|_| as_of))
                .with_timezone("UTC"),
        ),
        text(&|_| build_id.to_string()),
    ];
    arrow::array::RecordBatch::try_new(schema, cols)
        .map_err(|e| Error::arrow("cannot build view_catalog", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn component_file(dir: &Path, ids: &[&str]) -> PathBuf {
        use arrow::array::{Int64Array, StringArray};
        use arrow::datatypes::{DataType, Field, Schema};
        let schema = std::sync::Arc::new(Schema::new(vec![
            Field::new("account_id", DataType::Utf8, false),
            Field::new("n", DataType::Int64, false),
        ]));
        let b = arrow::array::RecordBatch::try_new(
            schema.clone(),
            vec![
                std::sync::Arc::new(StringArray::from(ids.to_vec())),
                std::sync::Arc::new(Int64Array::from_iter_values(0..ids.len() as i64)),
            ],
        )
        .unwrap();
        let path = dir.join("view.parquet");
        crate::table_io::write_table(&path, schema, &[], &[b]).unwrap();
        path
    }

    fn rows(batches: &[arrow::array::RecordBatch]) -> Vec<i64> {
        use arrow::array::AsArray;
        batches
            .iter()
            .flat_map(|b| {
                b.column(1)
                    .as_primitive::<arrow::datatypes::Int64Type>()
                    .values()
                    .to_vec()
            })
            .collect()
    }

    #[test]
    fn a_component_is_read_a_chunk_of_accounts_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = component_file(dir.path(), &["A1", "A1", "A2", "A4", "A4", "A5"]);
        let mut s = ComponentStream::open(&path).unwrap();
        assert_eq!(rows(&s.through("A1").unwrap()), vec![0, 1]);
        // An account without rows reads nothing; the next one's rows stay for the next chunk.
        assert_eq!(rows(&s.through("A3").unwrap()), vec![2]);
        assert_eq!(rows(&s.through("A4").unwrap()), vec![3, 4]);
        assert_eq!(rows(&s.through("A9").unwrap()), vec![5]);
        assert!(s.through("A9").unwrap().is_empty());
    }

    #[test]
    fn a_component_out_of_account_order_is_an_error_not_a_wrong_document() {
        let dir = tempfile::tempdir().unwrap();
        let path = component_file(dir.path(), &["A1", "A3", "A2"]);
        let e = ComponentStream::open(&path)
            .unwrap()
            .through("A9")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not sorted by account_id (`A2` after `A3`)"),
            "{e}"
        );
    }

    #[test]
    fn select_list_names_and_aliases() {
        assert_eq!(output_name("amount_usd").as_deref(), Some("amount_usd"));
        assert_eq!(output_name("count(*) as events").as_deref(), Some("events"));
        assert_eq!(output_name("sum(x)"), None);
        assert_eq!(
            without_alias("case when a then 'x' end as grp"),
            "case when a then 'x' end"
        );
        assert_eq!(without_alias("segment"), "segment");
    }

    fn row(day: Option<i32>, rank: i64) -> Row {
        Row {
            text: String::new(),
            day,
            rank,
        }
    }

    #[test]
    fn the_oldest_dated_row_goes_first_then_the_lowest_ranked() {
        let rows = vec![row(Some(10), 1), row(Some(3), 2), row(Some(7), 3)];
        assert_eq!(oldest_index(&rows), Some(1));
        let undated = vec![row(None, 1), row(None, 3), row(None, 2)];
        assert_eq!(oldest_index(&undated), Some(1));
        assert_eq!(oldest_index(&[]), None);
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<usize> = (1..=20).collect();
        assert_eq!(percentile(&v, 50.0), 10);
        assert_eq!(percentile(&v, 95.0), 19);
        assert_eq!(percentile(&v, 100.0), 20);
        assert_eq!(percentile(&[], 50.0), 0);
    }
}
