//! The combinations of a query's columns that occur in more than one of its rows — what
//! `GROUP BY k HAVING COUNT(*) > 1` gives — found without a hash table of every combination.
//!
//! Uniqueness tests ask this of tables where almost every key is unique. Grouped by
//! DataFusion, 66 M distinct keys make a 66 M-group hash table that spills: 9.3 s for
//! `usage_billable`'s `usage_id` at 100,000 accounts as a 64-bit hash, 16.1 s as text. Here
//! each row's key is hashed to 64 bits (`key_hash`, equal keys equal, nulls included), the
//! hashes are cut into 256 buckets by their top byte, each bucket is sorted and the hashes seen
//! twice are the candidates; only rows whose hash is a candidate are then grouped exactly (none
//! at all, for a table that passes): 1.7 s. Once the held hashes pass a quarter of the memory
//! budget, the buckets go to files in the engine's spill directory, so memory stays bounded
//! at any size.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::array::{Array, AsArray, RecordBatch, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt64Type};
use rayon::prelude::*;

use super::{Engine, SCRATCH, ident};
use crate::error::{Error, Result};

/// Buckets the hashes are cut into, by their top byte.
const BUCKETS: usize = 256;

/// Names each call's spill files apart from every other call's in this process.
static CALLS: AtomicU64 = AtomicU64::new(0);

impl Engine {
    /// Each combination of the columns `columns` of the query `sql` that occurs in more than
    /// one of its rows, with how many rows (`_n`, Int64): the rows of `SELECT columns,
    /// COUNT(*) AS _n FROM (sql) GROUP BY columns HAVING COUNT(*) > 1`, nulls equal.
    pub fn repeated(
        &self,
        sql: &str,
        columns: &[String],
        what: &str,
    ) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let cols: Vec<String> = columns.iter().map(|c| format!("r.{}", ident(c))).collect();
        let cols = cols.join(", ");
        let named: Vec<String> = columns
            .iter()
            .map(|c| format!("r.{} AS {}", ident(c), ident(c)))
            .collect();
        let exact = |filter: &str| {
            format!(
                "SELECT {}, COUNT(*) AS _n FROM ({sql}) r{filter} GROUP BY {cols} HAVING COUNT(*) > 1",
                named.join(", ")
            )
        };
        let (schema, hashes) = self.repeated_hashes(
            &format!("SELECT key_hash({cols}) AS _h FROM ({sql}) r"),
            what,
        )?;
        if hashes.is_empty() {
            let df = self.sql(&exact(" WHERE false"), what)?;
            return Ok((Arc::new(df.schema().as_arrow().clone()), Vec::new()));
        }
        let name = format!("repeated_{}", CALLS.fetch_add(1, Ordering::Relaxed));
        self.register_batches(SCRATCH, &name, schema, hashes)?;
        let found = (|| {
            let df = self.sql(
                &exact(&format!(
                    " WHERE key_hash({cols}) IN (SELECT _h FROM {SCRATCH}.{})",
                    ident(&name)
                )),
                what,
            )?;
            let schema = Arc::new(df.schema().as_arrow().clone());
            Ok((schema, self.collect(df, what)?))
        })();
        self.deregister(SCRATCH, &name);
        found
    }

    /// The values of the query's one UInt64 column `_h` that occur in more than one of its rows,
    /// ascending, as a table of that column (no batch when there are none).
    pub fn repeated_hashes(&self, sql: &str, what: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let df = self.sql(sql, what)?;
        let held_cap = (self.memory_limit / 4 / 8).max(1 << 16);
        let mut buckets = Buckets::new(self.spill_dir.clone(), held_cap);
        self.for_each_batch(df, what, |b| {
            let h = b
                .column(0)
                .as_primitive_opt::<UInt64Type>()
                .ok_or_else(|| Error::Internal(format!("{what}: key_hash is not UInt64")))?;
            if h.null_count() > 0 {
                return Err(Error::Internal(format!("{what}: key_hash gave a null")));
            }
            buckets.push(h.values())
        })?;
        let found = buckets.repeated()?;
        let schema = Arc::new(Schema::new(vec![Field::new("_h", DataType::UInt64, false)]));
        if found.is_empty() {
            return Ok((schema, Vec::new()));
        }
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(UInt64Array::from(found))])
            .map_err(|e| Error::arrow(what.to_string(), e))?;
        Ok((schema, vec![batch]))
    }
}

/// Hashes cut by their top byte, held in memory up to `held_cap` values, then appended to one
/// file per bucket (removed on drop).
struct Buckets {
    held: Vec<Vec<u64>>,
    held_len: usize,
    held_cap: usize,
    dir: PathBuf,
    call: u64,
    spilled: bool,
}

impl Buckets {
    fn new(dir: PathBuf, held_cap: usize) -> Buckets {
        Buckets {
            held: vec![Vec::new(); BUCKETS],
            held_len: 0,
            held_cap,
            dir,
            call: CALLS.fetch_add(1, Ordering::Relaxed),
            spilled: false,
        }
    }

    fn file(&self, bucket: usize) -> PathBuf {
        self.dir.join(format!(
            "repeated-{}-{}-{bucket:03}.bin",
            std::process::id(),
            self.call
        ))
    }

    fn push(&mut self, hashes: &[u64]) -> Result<()> {
        for &h in hashes {
            self.held[(h >> 56) as usize].push(h);
        }
        self.held_len += hashes.len();
        if self.held_len >= self.held_cap {
            self.spill()?;
        }
        Ok(())
    }

    /// Append every held bucket to its file and empty it.
    fn spill(&mut self) -> Result<()> {
        for i in 0..BUCKETS {
            let path = self.file(i);
            let f = File::options()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| Error::io("cannot write a spill file", &path, e))?;
            let mut w = BufWriter::with_capacity(1 << 20, f);
            for h in &self.held[i] {
                w.write_all(&h.to_le_bytes())
                    .map_err(|e| Error::io("cannot write a spill file", &path, e))?;
            }
            w.flush()
                .map_err(|e| Error::io("cannot write a spill file", &path, e))?;
            self.held[i] = Vec::new();
        }
        self.held_len = 0;
        self.spilled = true;
        Ok(())
    }

    /// The hashes found more than once, ascending (bucket by bucket, in parallel).
    fn repeated(mut self) -> Result<Vec<u64>> {
        let held = std::mem::take(&mut self.held);
        let found: Vec<Vec<u64>> = held
            .into_par_iter()
            .enumerate()
            .map(|(i, mut values)| {
                if self.spilled {
                    let path = self.file(i);
                    let mut bytes = Vec::new();
                    File::open(&path)
                        .map(BufReader::new)
                        .and_then(|mut r| r.read_to_end(&mut bytes))
                        .map_err(|e| Error::io("cannot read a spill file", &path, e))?;
                    values.extend(
                        bytes
                            .chunks_exact(8)
                            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))),
                    );
                }
                values.sort_unstable();
                let mut out: Vec<u64> = Vec::new();
                for w in values.windows(2) {
                    if w[0] == w[1] && out.last() != Some(&w[0]) {
                        out.push(w[0]);
                    }
                }
                Ok(out)
            })
            .collect::<Result<_>>()?;
        Ok(found.concat())
    }
}

impl Drop for Buckets {
    fn drop(&mut self) {
        if self.spilled {
            for i in 0..BUCKETS {
                let _ = std::fs::remove_file(self.file(i));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineConfig;
    use arrow::array::Int64Array;

    fn groups(engine: &Engine, sql: &str, columns: &[&str]) -> Vec<String> {
        let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        let (schema, batches) = engine.repeated(sql, &columns, "test").unwrap();
        assert_eq!(schema.fields().len(), columns.len() + 1);
        let mut rows = Vec::new();
        for b in &batches {
            let n = b
                .column(columns.len())
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            for r in 0..b.num_rows() {
                let key: Vec<String> = (0..columns.len())
                    .map(|c| arrow::util::display::array_value_to_string(b.column(c), r).unwrap())
                    .collect();
                rows.push(format!("{}:{}", key.join("|"), n.value(r)));
            }
        }
        rows.sort();
        rows
    }

    #[test]
    fn finds_what_group_by_having_finds_nulls_equal() {
        let dir = std::env::temp_dir().join(format!("gtmos-repeated-{}", std::process::id()));
        let e = Engine::new(&EngineConfig::default(), 2, &dir, 64 << 20).unwrap();
        let rows = "SELECT * FROM (VALUES ('x', 1), ('x', 1), (NULL, 1), (NULL, 1), ('x', 2), ('y', NULL), ('y', NULL), ('y', NULL), ('z', 3)) v(a, b)";
        assert_eq!(groups(&e, rows, &["a", "b"]), ["x|1:2", "y|:3", "|1:2"]);
        assert_eq!(groups(&e, rows, &["a"]), [":2", "x:3", "y:3"]);
        // None repeated: the schema still comes back, with no rows.
        assert!(groups(&e, "SELECT * FROM (VALUES (1), (2)) v(a)", &["a"]).is_empty());
    }

    #[test]
    fn spilled_buckets_give_the_same_answer() {
        let dir = std::env::temp_dir().join(format!("gtmos-repeated-spill-{}", std::process::id()));
        let e = Engine::new(&EngineConfig::default(), 2, &dir, 64 << 20).unwrap();
        // 300,000 rows hold 1 << 16 values many times over: every batch after the cap spills.
        let sql = "SELECT value % 299990 AS k FROM generate_series(1, 300000)";
        let mut buckets = Buckets::new(dir.clone(), 1 << 16);
        let df = e
            .sql(&format!("SELECT key_hash(k) FROM ({sql}) r"), "t")
            .unwrap();
        e.for_each_batch(df, "t", |b| {
            buckets.push(b.column(0).as_primitive::<UInt64Type>().values())
        })
        .unwrap();
        assert!(buckets.spilled);
        let files: Vec<PathBuf> = (0..BUCKETS).map(|i| buckets.file(i)).collect();
        assert_eq!(buckets.repeated().unwrap().len(), 10);
        assert!(files.iter().all(|f| !f.exists()), "spill files are removed");
        assert_eq!(groups(&e, sql, &["k"]).len(), 10);
    }
}
