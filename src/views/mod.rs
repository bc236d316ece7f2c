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

mod assemble;
mod catalog;
mod fit;
mod rows;
mod tokens;

pub use assemble::*;
pub use catalog::*;
pub use fit::*;
pub use rows::*;
pub use tokens::{TOKENIZERS, Tokenizer};

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
