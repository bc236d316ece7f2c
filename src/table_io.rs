//! The one way gtmos writes and reads files: atomic writes, pinned Parquet writer settings,
//! sha256 of what was written, and Parquet reads whose errors name the file (SPEC §3).
//!
//! Every file is written under a temporary name in its final directory, fsynced, then renamed
//! into place, so an interrupted run never leaves a half-written file where a reader looks.
//! Parquet writer properties are fixed here (codec, page and row-group sizes, `created_by`) so
//! that the same rows always give the same bytes.
//!
//! Its length (over 700 lines) is about 700 lines of code, the one writer and its readers, and
//! the unit tests that pin its bytes.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::{
    ArrowColumnWriter, ArrowLeafColumn, ArrowRowGroupWriterFactory, compute_leaves,
};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties, WriterVersion};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Rows per Parquet row group. Fixed so files do not depend on batch sizes.
pub const ROW_GROUP_ROWS: usize = 1 << 20;

/// The pinned Parquet writer settings of every table gtmos writes.
///
/// `created_by` is fixed rather than the parquet crate's version string, so an upgrade of the
/// crate alone does not change the bytes of a corpus. Columns in `plain` (declared unique, so
/// a dictionary would only cost time: measured 11 % of synth's CPU) are written without one.
pub fn writer_properties(plain: &[&str]) -> WriterProperties {
    let mut b = WriterProperties::builder()
        .set_created_by("gtmos".to_string())
        .set_writer_version(WriterVersion::PARQUET_1_0)
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).unwrap_or_default()))
        .set_dictionary_enabled(true)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_data_page_size_limit(1 << 20)
        .set_write_batch_size(1024);
    for c in plain {
        b = b.set_column_dictionary_enabled(ColumnPath::from(*c), false);
    }
    b.build()
}

/// sha256 of the bytes, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 of a file's bytes, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| Error::io("cannot read", path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// What was written: rows (for tables), bytes and sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    pub path: PathBuf,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A file being written atomically: bytes go to a temporary sibling, hashed on the way;
/// [`AtomicFile::commit`] fsyncs and renames it into place. Dropped without commit, the
/// temporary file is removed.
pub struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    out: Option<BufWriter<File>>,
    hasher: Sha256,
    bytes: u64,
    /// Fail rather than replace an existing target (append-only logs).
    no_clobber: bool,
}

impl AtomicFile {
    pub fn create(target: &Path) -> Result<AtomicFile> {
        let dir = target
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create directory", dir, e))?;
        let name = target
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("file");
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
        let f = File::create(&temp).map_err(|e| Error::io("cannot create", &temp, e))?;
        Ok(AtomicFile {
            target: target.to_path_buf(),
            temp,
            out: Some(BufWriter::with_capacity(1 << 20, f)),
            hasher: Sha256::new(),
            bytes: 0,
            no_clobber: false,
        })
    }

    /// Like [`AtomicFile::create`], but committing fails if `target` already exists.
    pub fn create_new(target: &Path) -> Result<AtomicFile> {
        let mut f = AtomicFile::create(target)?;
        f.no_clobber = true;
        Ok(f)
    }

    /// Flush, fsync, rename into place; returns the bytes written and their sha256.
    pub fn commit(mut self) -> Result<(u64, String)> {
        let out = self
            .out
            .take()
            .ok_or_else(|| Error::Internal("atomic file committed twice".into()))?;
        let file = out
            .into_inner()
            .map_err(|e| Error::io("cannot write", &self.temp, e.into_error()))?;
        file.sync_all()
            .map_err(|e| Error::io("cannot sync", &self.temp, e))?;
        drop(file);
        if self.no_clobber {
            // Link-or-fail: the kernel refuses to replace an existing name, whatever another
            // process does at the same moment; then the temporary name goes.
            let linked = std::fs::hard_link(&self.temp, &self.target);
            let _ = std::fs::remove_file(&self.temp);
            linked.map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    Error::Internal(format!(
                        "{} exists: an append-only file is never replaced",
                        self.target.display()
                    ))
                } else {
                    Error::io("cannot move into place", &self.target, e)
                }
            })?;
        } else {
            std::fs::rename(&self.temp, &self.target)
                .map_err(|e| Error::io("cannot move into place", &self.target, e))?;
        }
        if let Some(dir) = self.target.parent()
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        let digest = std::mem::take(&mut self.hasher).finalize();
        Ok((self.bytes, hex(&digest)))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| std::io::Error::other("write after commit"))?;
        let n = out.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self.out.as_mut() {
            Some(o) => o.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.out.take().is_some() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Open (creating) the lock file at `path`; the caller locks it, blocking or not.
pub fn lock_file(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| Error::io("cannot open", path, e))
}

/// Write bytes to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<WrittenFile> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes)
        .map_err(|e| Error::io("cannot write", path, e))?;
    let (n, sha256) = f.commit()?;
    Ok(WrittenFile {
        path: path.to_path_buf(),
        rows: 0,
        bytes: n,
        sha256,
    })
}

/// A Parquet table written atomically with the pinned settings.
///
/// Rows are encoded [`WRITE_CHUNK_ROWS`] at a time, whatever batches they arrive in, by
/// [`ArrowColumnWriter`]s, one per leaf column, fed exactly as parquet's own `ArrowWriter`
/// feeds them (each piece whole, split only at row-group boundaries), so the bytes depend
/// neither on how many threads encode nor on the batches the rows came in. With
/// [`TableWriter::encode_threads`] above 1, each batch's columns are encoded on that many
/// scoped threads (dictionary building and zstd are per column, and were a single-threaded
/// tail after each model's sort: ~0.3–0.6 s a million rows).
pub struct TableWriter {
    path: PathBuf,
    schema: SchemaRef,
    file: SerializedFileWriter<AtomicFile>,
    factory: ArrowRowGroupWriterFactory,
    /// The current row group's column writers (empty between row groups).
    columns: Vec<ArrowColumnWriter>,
    /// Rows in the current row group, row groups closed, rows written.
    buffered: usize,
    row_groups: usize,
    rows: u64,
    threads: usize,
    row_group_rows: usize,
    /// Rows handed in but not yet encoded: they are encoded [`WRITE_CHUNK_ROWS`] at a time.
    pending: Vec<RecordBatch>,
    pending_rows: usize,
}

/// Rows the writer encodes at a time. Parquet's column writers decide where a page ends after
/// each piece they are given, so pieces of a fixed size make the bytes independent of how the
/// rows arrived: a cluster streams the same rows back in other batch sizes than a local sort.
pub const WRITE_CHUNK_ROWS: usize = 8192;

impl TableWriter {
    /// A writer with the pinned settings; `plain` names columns written without a dictionary.
    pub fn create(path: &Path, schema: SchemaRef, plain: &[&str]) -> Result<TableWriter> {
        TableWriter::with_file(path, AtomicFile::create(path)?, schema, plain)
    }

    /// Like [`TableWriter::create`], but never replaces an existing file.
    pub fn create_new(path: &Path, schema: SchemaRef, plain: &[&str]) -> Result<TableWriter> {
        TableWriter::with_file(path, AtomicFile::create_new(path)?, schema, plain)
    }

    fn with_file(
        path: &Path,
        file: AtomicFile,
        schema: SchemaRef,
        plain: &[&str],
    ) -> Result<TableWriter> {
        let err = |e| Error::parquet(format!("cannot start writing {}", path.display()), e);
        let schema = plain_schema(&schema);
        // ArrowWriter sets up the file: the Parquet schema and the Arrow schema in its metadata.
        let (file, factory) =
            ArrowWriter::try_new(file, schema.clone(), Some(writer_properties(plain)))
                .and_then(|w| w.into_serialized_writer())
                .map_err(err)?;
        Ok(TableWriter {
            path: path.to_path_buf(),
            schema,
            file,
            factory,
            columns: Vec::new(),
            buffered: 0,
            row_groups: 0,
            rows: 0,
            threads: 1,
            row_group_rows: ROW_GROUP_ROWS,
            pending: Vec::new(),
            pending_rows: 0,
        })
    }

    /// Encode each batch's columns on up to `threads` threads (1: on the caller's thread).
    pub fn encode_threads(mut self, threads: usize) -> TableWriter {
        self.threads = threads.max(1);
        self
    }

    /// Row groups of `rows` rows instead of [`ROW_GROUP_ROWS`] (for staging files: a
    /// writer holds its open row group's encoded columns in memory).
    pub fn row_group_rows(mut self, rows: usize) -> TableWriter {
        self.row_group_rows = rows.max(1);
        self
    }

    /// Append `batch`'s rows (encoded [`WRITE_CHUNK_ROWS`] at a time, whatever its size).
    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut at = 0;
        while at < batch.num_rows() {
            let take = (WRITE_CHUNK_ROWS - self.pending_rows).min(batch.num_rows() - at);
            if self.pending_rows == 0 && take == WRITE_CHUNK_ROWS {
                // A whole chunk in place, without copying.
                self.write_chunk(&batch.slice(at, take))?;
            } else {
                self.pending.push(batch.slice(at, take));
                self.pending_rows += take;
                if self.pending_rows == WRITE_CHUNK_ROWS {
                    self.flush_pending()?;
                }
            }
            at += take;
        }
        Ok(())
    }

    /// Encode the pending rows as one piece.
    fn flush_pending(&mut self) -> Result<()> {
        if self.pending_rows == 0 {
            return Ok(());
        }
        let pieces = std::mem::take(&mut self.pending);
        self.pending_rows = 0;
        let chunk = if pieces.len() == 1 {
            pieces.into_iter().next().expect("one piece")
        } else {
            arrow::compute::concat_batches(&pieces[0].schema(), &pieces)
                .map_err(|e| Error::arrow(format!("cannot write {}", self.path.display()), e))?
        };
        self.write_chunk(&chunk)
    }

    fn write_chunk(&mut self, batch: &RecordBatch) -> Result<()> {
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        // Row groups hold exactly row_group_rows rows but the last, as in ArrowWriter.
        if self.buffered + n > self.row_group_rows {
            let head = self.row_group_rows - self.buffered;
            self.write_chunk(&batch.slice(0, head))?;
            return self.write_chunk(&batch.slice(head, n - head));
        }
        let err = |e| Error::parquet(format!("cannot write {}", self.path.display()), e);
        if self.columns.is_empty() {
            self.columns = self
                .factory
                .create_column_writers(self.row_groups)
                .map_err(err)?;
        }
        let mut leaves = Vec::with_capacity(self.columns.len());
        for (field, column) in self.schema.fields().iter().zip(batch.columns()) {
            let column = if column.data_type() == field.data_type() {
                column.clone()
            } else {
                arrow::compute::cast(column, field.data_type()).map_err(|e| {
                    Error::arrow(
                        format!(
                            "cannot write {}: column `{}`",
                            self.path.display(),
                            field.name()
                        ),
                        e,
                    )
                })?
            };
            leaves.extend(compute_leaves(field, &column).map_err(err)?);
        }
        let columns: Vec<(&mut ArrowColumnWriter, &ArrowLeafColumn)> =
            self.columns.iter_mut().zip(&leaves).collect();
        in_parallel(columns, self.threads, |(w, leaf)| w.write(leaf)).map_err(err)?;
        self.buffered += n;
        self.rows += n as u64;
        if self.buffered == self.row_group_rows {
            self.close_row_group()?;
        }
        Ok(())
    }

    /// Close the current row group's column chunks (in parallel) and append them in order.
    fn close_row_group(&mut self) -> Result<()> {
        if self.columns.is_empty() {
            return Ok(());
        }
        let err = |e| Error::parquet(format!("cannot write {}", self.path.display()), e);
        let columns = std::mem::take(&mut self.columns);
        let chunks = in_parallel(columns, self.threads, ArrowColumnWriter::close).map_err(err)?;
        let mut group = self.file.next_row_group().map_err(err)?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut group).map_err(err)?;
        }
        group.close().map_err(err)?;
        self.row_groups += 1;
        self.buffered = 0;
        Ok(())
    }

    pub fn finish(mut self) -> Result<WrittenFile> {
        self.flush_pending()?;
        self.close_row_group()?;
        let TableWriter {
            path, file, rows, ..
        } = self;
        let file = file
            .into_inner()
            .map_err(|e| Error::parquet(format!("cannot finish {}", path.display()), e))?;
        let (bytes, sha256) = file.commit()?;
        Ok(WrittenFile {
            path,
            rows,
            bytes,
            sha256,
        })
    }
}

/// `schema` with string and binary views as plain strings and binaries, at any depth. The
/// Parquet data is the same either way; the Arrow schema a file records (and its readers get)
/// must not depend on which engine or function happened to produce a view.
fn plain_schema(schema: &SchemaRef) -> SchemaRef {
    use arrow::datatypes::{DataType, Field, Schema};
    fn plain(t: &DataType) -> DataType {
        let field = |f: &arrow::datatypes::FieldRef| {
            std::sync::Arc::new(f.as_ref().clone().with_data_type(plain(f.data_type())))
        };
        match t {
            DataType::Utf8View => DataType::Utf8,
            DataType::BinaryView => DataType::Binary,
            DataType::List(f) => DataType::List(field(f)),
            DataType::LargeList(f) => DataType::LargeList(field(f)),
            DataType::FixedSizeList(f, n) => DataType::FixedSizeList(field(f), *n),
            DataType::Struct(fs) => DataType::Struct(fs.iter().map(field).collect()),
            DataType::Map(f, sorted) => DataType::Map(field(f), *sorted),
            other => other.clone(),
        }
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_data_type(plain(f.data_type())))
        .collect();
    std::sync::Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `f` of each job, in job order, computed on up to `threads` scoped threads that each take
/// the next job in turn; the first error wins. Scoped threads rather than rayon: writers run
/// beside rayon work (synth's generators feed them), where waiting on the pool could deadlock.
fn in_parallel<J: Send, R: Send>(
    jobs: Vec<J>,
    threads: usize,
    f: impl Fn(J) -> parquet::errors::Result<R> + Sync,
) -> parquet::errors::Result<Vec<R>> {
    if threads <= 1 || jobs.len() <= 1 {
        return jobs.into_iter().map(f).collect();
    }
    let queue = std::sync::Mutex::new(jobs.into_iter().enumerate());
    let work = || -> parquet::errors::Result<Vec<(usize, R)>> {
        let mut done = Vec::new();
        while let Some((i, j)) = queue.lock().ok().and_then(|mut q| q.next()) {
            done.push((i, f(j)?));
        }
        Ok(done)
    };
    let parts = std::thread::scope(|s| {
        let others: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mut parts = vec![work()];
        for t in others {
            parts.push(t.join().unwrap_or_else(|_| {
                Err(parquet::errors::ParquetError::General(
                    "a column encoding thread panicked".into(),
                ))
            }));
        }
        parts
    });
    let mut all = Vec::new();
    for p in parts {
        all.extend(p?);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, r)| r).collect())
}

/// Write one table from batches as a new file, failing if it exists (append-only logs).
pub fn write_table_new(
    path: &Path,
    schema: SchemaRef,
    plain: &[&str],
    batches: &[RecordBatch],
) -> Result<WrittenFile> {
    let mut w = TableWriter::create_new(path, schema, plain)?;
    for b in batches {
        w.write(b)?;
    }
    w.finish()
}

/// Write one table from batches, atomically.
pub fn write_table(
    path: &Path,
    schema: SchemaRef,
    plain: &[&str],
    batches: &[RecordBatch],
) -> Result<WrittenFile> {
    let mut w = TableWriter::create(path, schema, plain)?;
    for b in batches {
        w.write(b)?;
    }
    w.finish()
}

fn corrupt(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::data(format!("not a readable Parquet file ({e})"))
        .with_path(path)
        .with_hint("the file may be truncated or corrupt; regenerate or re-export it")
}

/// The Arrow schema and row count of a Parquet file, from its footer.
pub fn read_parquet_schema(path: &Path) -> Result<(SchemaRef, u64)> {
    let f = File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    let b = ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| corrupt(path, e))?;
    let rows = b.metadata().file_metadata().num_rows().max(0) as u64;
    Ok((b.schema().clone(), rows))
}

/// Every batch of a Parquet file. Errors name the file.
pub fn read_parquet(path: &Path) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    read_parquet_columns(path, None)
}

/// Every batch of a Parquet file, only the named (top-level) columns when given. Row groups
/// are decoded in parallel; the batches come back in file order.
pub fn read_parquet_columns(
    path: &Path,
    columns: Option<&[&str]>,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    read_parquet_columns_as(path, columns, &|_| None)
}

/// [`read_parquet_columns`], some columns decoded to another Arrow type than the file's own
/// (`retype` names it, or `None` to keep it): e.g. few-valued text as a dictionary array, so
/// a dictionary-encoded column chunk is not expanded into one string per row, or a decimal
/// stored in 64 bits as `Decimal64`.
pub fn read_parquet_columns_as(
    path: &Path,
    columns: Option<&[&str]>,
    retype: &dyn Fn(&arrow::datatypes::Field) -> Option<arrow::datatypes::DataType>,
) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    use arrow::datatypes::{Field, Schema};
    use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
    use rayon::prelude::*;
    let open = || File::open(path).map_err(|e| Error::io("cannot open", path, e));
    let mut meta = ArrowReaderMetadata::load(&open()?, ArrowReaderOptions::default())
        .map_err(|e| corrupt(path, e))?;
    let fields = meta.schema().fields();
    if fields.iter().any(|f| retype(f).is_some()) {
        let hint: Vec<Field> = fields
            .iter()
            .map(|f| match retype(f) {
                Some(t) => f.as_ref().clone().with_data_type(t),
                None => f.as_ref().clone(),
            })
            .collect();
        let options = ArrowReaderOptions::new().with_schema(std::sync::Arc::new(
            Schema::new_with_metadata(hint, meta.schema().metadata().clone()),
        ));
        meta = ArrowReaderMetadata::try_new(meta.metadata().clone(), options)
            .map_err(|e| corrupt(path, e))?;
    }
    let reader = |groups: Vec<usize>| -> Result<_> {
        let mut b = ParquetRecordBatchReaderBuilder::new_with_metadata(open()?, meta.clone());
        if let Some(cols) = columns {
            let mask =
                parquet::arrow::ProjectionMask::columns(b.parquet_schema(), cols.iter().copied());
            b = b.with_projection(mask);
        }
        b.with_row_groups(groups)
            .with_batch_size(64 * 1024)
            .build()
            .map_err(|e| corrupt(path, e))
    };
    let schema = arrow::record_batch::RecordBatchReader::schema(&reader(Vec::new())?);
    let parts: Vec<Vec<RecordBatch>> = (0..meta.metadata().num_row_groups())
        .into_par_iter()
        .map(|g| -> Result<Vec<RecordBatch>> {
            reader(vec![g])?
                .map(|b| b.map_err(|e| corrupt(path, e)))
                .collect()
        })
        .collect::<Result<_>>()?;
    Ok((schema, parts.into_iter().flatten().collect()))
}

/// A Parquet table's rows as JSON objects, for printing and report pages: text as strings,
/// decimals, integers and floats as numbers, dates as `YYYY-MM-DD`, timestamps as ISO 8601.
pub fn json_rows(path: &Path) -> Result<Vec<serde_json::Map<String, serde_json::Value>>> {
    let (_, batches) = read_parquet(path)?;
    batches_as_json(&batches, path)
}

/// One row of [`for_each_json_row`]: its values by column name.
pub struct JsonRow<'a> {
    names: &'a [String],
    getters: &'a [JsonGetter],
    row: usize,
}

impl JsonRow<'_> {
    /// The value of column `name` (null when there is no such column).
    pub fn get(&self, name: &str) -> serde_json::Value {
        self.names
            .iter()
            .position(|n| n == name)
            .map_or(serde_json::Value::Null, |c| (self.getters[c])(self.row))
    }

    /// The whole row, as [`json_rows`] gives it.
    pub fn to_map(&self) -> serde_json::Map<String, serde_json::Value> {
        self.names
            .iter()
            .zip(self.getters)
            .map(|(n, g)| (n.clone(), g(self.row)))
            .collect()
    }
}

/// A Parquet file's batches of up to 8,192 rows, read one at a time in file order (only the
/// named top-level columns when given), for tables too large to hold. Errors name the file.
pub fn batches(
    path: &Path,
    columns: Option<&[&str]>,
) -> Result<impl Iterator<Item = Result<RecordBatch>> + Send + use<>> {
    let file = File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    let mut b = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| corrupt(path, e))?;
    if let Some(cols) = columns {
        let mask =
            parquet::arrow::ProjectionMask::columns(b.parquet_schema(), cols.iter().copied());
        b = b.with_projection(mask);
    }
    let reader = b
        .with_batch_size(8192)
        .build()
        .map_err(|e| corrupt(path, e))?;
    let path = path.to_path_buf();
    Ok(reader.map(move |b| b.map_err(|e| corrupt(&path, e))))
}

/// [`json_rows`] one batch at a time, for tables too large to hold as JSON: `f` sees each row
/// in file order.
pub fn for_each_json_row(path: &Path, mut f: impl FnMut(&JsonRow) -> Result<()>) -> Result<()> {
    for b in batches(path, None)? {
        let b = b?;
        let names: Vec<String> = b
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let getters = json_getters(&b, path)?;
        for row in 0..b.num_rows() {
            f(&JsonRow {
                names: &names,
                getters: &getters,
                row,
            })?;
        }
    }
    Ok(())
}

/// [`json_rows`] of batches read from `path` (named in errors).
pub fn batches_as_json(
    batches: &[RecordBatch],
    path: &Path,
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>> {
    let mut out = Vec::new();
    for b in batches {
        let schema = b.schema();
        let cols = json_getters(b, path)?;
        for i in 0..b.num_rows() {
            let mut m = serde_json::Map::new();
            for (f, get) in schema.fields().iter().zip(&cols) {
                m.insert(f.name().clone(), get(i));
            }
            out.push(m);
        }
    }
    Ok(out)
}

/// A column's values as JSON, by row: numbers as numbers (decimals as their f64, non-finite
/// floats as null), booleans, dates and timestamps as ISO text, the rest as text.
pub type JsonGetter = Box<dyn Fn(usize) -> serde_json::Value + Send + Sync>;

/// The [`JsonGetter`] of each column of `b`, read from `path`.
fn json_getters(b: &RecordBatch, path: &Path) -> Result<Vec<JsonGetter>> {
    b.schema()
        .fields()
        .iter()
        .zip(b.columns())
        .map(|(f, c)| json_getter(f, c, path))
        .collect()
}

/// The [`JsonGetter`] of column `c` (field `f`) of a batch read from `path`.
pub fn json_getter(
    f: &arrow::datatypes::Field,
    c: &arrow::array::ArrayRef,
    path: &Path,
) -> Result<JsonGetter> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{
        DataType, Date32Type, Decimal128Type, Float64Type, Int64Type, TimestampMicrosecondType,
    };
    use serde_json::Value;
    let cast = |to: &DataType| {
        arrow::compute::cast(c, to).map_err(|e| corrupt(path, format!("{}: {e}", f.name())))
    };
    let get: JsonGetter = match f.data_type() {
        DataType::Decimal128(_, scale) => {
            let a = c.as_primitive::<Decimal128Type>().clone();
            let div = 10f64.powi(i32::from(*scale));
            Box::new(move |i| serde_json::json!(a.value(i) as f64 / div))
        }
        DataType::Float32 | DataType::Float64 => {
            let a = cast(&DataType::Float64)?
                .as_primitive::<Float64Type>()
                .clone();
            Box::new(move |i| serde_json::json!(a.value(i)))
        }
        t if t.is_integer() => {
            let a = cast(&DataType::Int64)?.as_primitive::<Int64Type>().clone();
            Box::new(move |i| serde_json::json!(a.value(i)))
        }
        DataType::Boolean => {
            let a = c.as_boolean().clone();
            Box::new(move |i| Value::Bool(a.value(i)))
        }
        DataType::Date32 => {
            let a = c.as_primitive::<Date32Type>().clone();
            Box::new(move |i| Value::String(crate::calendar::Day(a.value(i)).iso()))
        }
        DataType::Timestamp(_, _) => {
            let a = cast(&DataType::Timestamp(
                arrow::datatypes::TimeUnit::Microsecond,
                None,
            ))?
            .as_primitive::<TimestampMicrosecondType>()
            .clone();
            Box::new(move |i| Value::String(crate::calendar::format_ts(a.value(i))))
        }
        _ => {
            let a = cast(&DataType::Utf8)?;
            Box::new(move |i| Value::String(a.as_string::<i32>().value(i).to_string()))
        }
    };
    let Some(nulls) = c.logical_nulls() else {
        return Ok(get);
    };
    Ok(Box::new(move |i| {
        if nulls.is_null(i) {
            Value::Null
        } else {
            get(i)
        }
    }))
}

/// Write `batch` to `path` in row groups of `rows` rows (plain settings), for tests that
/// exercise how readers split a file.
#[cfg(test)]
pub(crate) fn write_in_row_groups(path: &Path, batch: &RecordBatch, rows: usize) {
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(rows))
        .build();
    let mut w =
        ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), Some(props)).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array};
    use arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)]));
        RecordBatch::try_new(
            schema,
            vec![Arc::new(Int64Array::from(vec![1, 2, 3])) as ArrayRef],
        )
        .unwrap()
    }

    #[test]
    fn an_append_only_file_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("log.parquet");
        let b = batch();
        write_table_new(&target, b.schema(), &[], std::slice::from_ref(&b)).unwrap();
        let before = std::fs::read(&target).unwrap();
        // Even when the name is taken after the check a rename would have made: link-or-fail.
        let err = write_table_new(&target, b.schema(), &[], &[]).unwrap_err();
        assert!(err.to_string().contains("is never replaced"), "{err}");
        assert_eq!(std::fs::read(&target).unwrap(), before);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn writes_are_atomic_and_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.parquet");
        let b = batch();
        let w = write_table(&p, b.schema(), &[], std::slice::from_ref(&b)).unwrap();
        assert_eq!(w.rows, 3);
        assert_eq!(w.sha256, sha256_file(&p).unwrap());
        // Same rows and settings, same bytes.
        let w1 = write_table(
            &dir.path().join("v.parquet"),
            b.schema(),
            &[],
            std::slice::from_ref(&b),
        )
        .unwrap();
        assert_eq!(w.sha256, w1.sha256);
        let w2 = write_table(&dir.path().join("u.parquet"), b.schema(), &["x"], &[b]).unwrap();
        assert_ne!(w.sha256, w2.sha256, "plain encoding changes the bytes");
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 3, "{names:?}");
    }

    #[test]
    fn abandoned_writes_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.parquet");
        {
            let mut w = TableWriter::create(&p, batch().schema(), &[]).unwrap();
            w.write(&batch()).unwrap();
            // dropped without finish
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn any_thread_count_and_any_batching_write_the_bytes_of_parquets_own_writer() {
        use arrow::array::StringArray;
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("u", DataType::Utf8, true),
        ]));
        // Past one row group, with a batch split at its boundary; text with few and with many
        // distinct values (dictionary kept, dictionary abandoned) and nulls.
        let batch = |from: i64, rows: i64| {
            let n: Int64Array = (from..from + rows)
                .map(|i| (i % 7 != 0).then_some(i * 31 % 1000))
                .collect();
            let s: StringArray = (from..from + rows)
                .map(|i| Some(["a", "bb", "ccc"][(i % 3) as usize]))
                .collect();
            let u: StringArray = (from..from + rows)
                .map(|i| (i % 5 != 0).then(|| format!("id-{i}")))
                .collect();
            RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(n) as ArrayRef, Arc::new(s), Arc::new(u)],
            )
            .unwrap()
        };
        let sizes = [700_000, 400_000, 8192, 1];
        let mut batches = Vec::new();
        let mut from = 0;
        for rows in sizes {
            batches.push(batch(from, rows));
            from += rows;
        }
        // Parquet's own writer, fed the rows WRITE_CHUNK_ROWS at a time.
        let all = arrow::compute::concat_batches(&schema, &batches).unwrap();
        let mut reference = Vec::new();
        let mut w = ArrowWriter::try_new(
            &mut reference,
            schema.clone(),
            Some(writer_properties(&["u"])),
        )
        .unwrap();
        for at in (0..all.num_rows()).step_by(WRITE_CHUNK_ROWS) {
            w.write(&all.slice(at, WRITE_CHUNK_ROWS.min(all.num_rows() - at)))
                .unwrap();
        }
        w.close().unwrap();
        // The same rows in other batches: the bytes may not depend on how they arrive.
        let mut other = Vec::new();
        let mut at = 0;
        for rows in [1, 5000, 3191, 1_000_000] {
            other.push(all.slice(at, rows));
            at += rows;
        }
        other.push(all.slice(at, all.num_rows() - at));
        let dir = tempfile::tempdir().unwrap();
        for (threads, batches) in [(1, &batches), (2, &batches), (5, &batches), (2, &other)] {
            let p = dir
                .path()
                .join(format!("t{threads}-{}.parquet", batches.len()));
            let mut t = TableWriter::create(&p, schema.clone(), &["u"])
                .unwrap()
                .encode_threads(threads);
            for b in batches {
                t.write(b).unwrap();
            }
            let written = t.finish().unwrap();
            assert_eq!(written.rows, from as u64);
            let bytes = std::fs::read(&p).unwrap();
            assert!(bytes == reference, "{threads} threads: bytes differ");
            let (_, meta_rows) = read_parquet_schema(&p).unwrap();
            assert_eq!(meta_rows, from as u64);
        }
    }

    #[test]
    fn truncated_parquet_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.parquet");
        let b = batch();
        write_table(&p, b.schema(), &[], &[b]).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        let e = read_parquet(&p).unwrap_err().to_string();
        assert!(
            e.contains("t.parquet") && e.contains("not a readable Parquet file"),
            "{e}"
        );
        std::fs::write(&p, b"PAR1 this is not parquet").unwrap();
        assert!(read_parquet_schema(&p).is_err());
    }
}
