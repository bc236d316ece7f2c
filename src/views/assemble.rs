//! Assembling the brain-ready documents of a build ([`assemble`]): cross-population documents
//! into the catalog rows, per-account composites chunk by chunk to a sink, and the
//! `view_catalog` table.

use super::*;

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
    /// Why a view the contract calls for cannot be built (None for every built view).
    pub unavailable_reason: Option<String>,
}

/// Assemble the documents from the views published under `published` (a directory of
/// `<model>.parquet`; views not published, not selected, are skipped): the cross-population
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
            ViewKind::CrossPopulation | ViewKind::Strategy => {
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

    // Cross-population and strategy views: one document each.
    for v in catalog
        .views
        .iter()
        .filter(|v| v.kind.is_whole_population())
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
            unavailable_reason: None,
        });
    }
    // The views a brain's contract calls for that cannot be built: listed, stale, with why.
    for u in &catalog.unavailable {
        catalog_rows.push(CatalogRow {
            view_name: u.name.clone(),
            kind: u.kind.name().into(),
            pattern: "unavailable".into(),
            source: String::new(),
            owner: u.owner.clone(),
            refresh: "never".into(),
            used_by: u.used_by.clone(),
            version: 0,
            staleness_threshold_hours: 0.0,
            last_refresh_timestamp: None,
            is_stale: true,
            token_budget: 0,
            documents: 0,
            rows: 0,
            tokens_p50: 0,
            tokens_p95: 0,
            tokens_max: 0,
            dropped_rows: 0,
            contract_sha256: crate::table_io::sha256_hex(
                &serde_json::to_vec(u).unwrap_or_default(),
            ),
            document: None,
            unavailable_reason: Some(format!("{} Unavailable: {}", u.purpose, u.reason)),
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
    pub(super) w: crate::table_io::TableWriter,
    pub(super) schema: arrow::datatypes::SchemaRef,
    pub(super) build_id: String,
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
        Field::new("unavailable_reason", DataType::Utf8, true),
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
        Arc::new(StringArray::from_iter(
            r.iter().map(|x| x.unavailable_reason.as_deref()),
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
