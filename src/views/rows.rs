//! Reading the published views back as the documents carry their rows: the projected columns
//! as JSON objects, the view's metadata, and the account components streamed in account order.

use super::*;

/// One row of a view, as the brain reads it: the projected columns only.
#[derive(Debug, Clone)]
pub(super) struct Row {
    /// The row as a JSON object, keys in order (as serde_json writes a map).
    pub(super) text: String,
    /// The time column's day, for dropping the oldest first (None: undated).
    pub(super) day: Option<i32>,
    pub(super) rank: i64,
}

/// A view's metadata, the same on every row: read off the first.
pub(super) struct ViewMeta {
    pub(super) last_refresh: Option<String>,
    pub(super) is_stale: bool,
}

impl ViewMeta {
    pub(super) fn of(first: Option<&arrow::array::RecordBatch>, path: &Path) -> Result<ViewMeta> {
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
pub(super) struct ViewData {
    /// One writer per batch.
    writers: Vec<RowWriter>,
    /// account → (batch, offset, rows) runs.
    by_account: BTreeMap<String, Vec<(usize, usize, usize)>>,
    /// A cross-population view's rows.
    pub(super) rows: Vec<Row>,
}

impl ViewData {
    pub(super) fn of(
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
            ViewKind::CrossPopulation | ViewKind::Strategy => {
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
    pub(super) fn rows_of(&self, account: &str) -> Vec<Row> {
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
pub(super) fn account_ids(
    b: &arrow::array::RecordBatch,
    path: &Path,
) -> Result<arrow::array::StringArray> {
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
pub(super) struct ComponentStream {
    pub(super) path: PathBuf,
    pub(super) batches: Box<dyn Iterator<Item = Result<arrow::array::RecordBatch>> + Send>,
    /// Rows read past the previous chunk's last account.
    rest: Option<arrow::array::RecordBatch>,
    /// The last account id read, to check the order.
    last_read: Option<String>,
}

impl ComponentStream {
    pub(super) fn open(path: &Path) -> Result<ComponentStream> {
        Ok(ComponentStream {
            path: path.to_path_buf(),
            batches: Box::new(crate::table_io::batches(path, None)?),
            rest: None,
            last_read: None,
        })
    }

    /// The rows whose account_id is at most `last`, in file order.
    pub(super) fn through(&mut self, last: &str) -> Result<Vec<arrow::array::RecordBatch>> {
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
    pub(super) columns: Vec<(String, JsonGetter)>,
    /// The position in `columns` of the time column.
    pub(super) time: Option<usize>,
    pub(super) rank: Option<JsonGetter>,
}

impl RowWriter {
    pub(super) fn new(
        batch: &arrow::array::RecordBatch,
        v: &ViewContract,
        path: &Path,
    ) -> Result<RowWriter> {
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

    pub(super) fn row(&self, i: usize) -> Row {
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
