//! Lining two keyed lists up with Polars — golden examples and predictions, catalog questions,
//! brain outputs and reviewer scores: which keys repeat on either side, which are on one side
//! only, and which rows pair. Callers turn every finding into a precise message; nothing is
//! dropped.

use std::collections::BTreeSet;

use polars::prelude::*;

use crate::error::{Error, Result};

/// Row indices (0-based, in input order) of what [`match_keys`] found.
#[derive(Debug, Default)]
pub struct Matched {
    /// Each key that occurs more than once on the left: the rows holding it.
    pub dup_left: Vec<Vec<u32>>,
    /// The same for the right.
    pub dup_right: Vec<Vec<u32>>,
    /// Left rows whose key is not on the right.
    pub left_only: Vec<u32>,
    /// Right rows whose key is not on the left.
    pub right_only: Vec<u32>,
    /// (left row, right row) for every key on both sides.
    pub pairs: Vec<(u32, u32)>,
}

pub fn polars_err(e: PolarsError) -> Error {
    Error::Internal(format!("polars: {e}"))
}

fn frame(keys: &[&str], row: &str) -> Result<DataFrame> {
    DataFrame::new_infer_height(vec![
        Column::new("key".into(), keys.to_vec()),
        Column::new(row.into(), (0..keys.len() as u32).collect::<Vec<_>>()),
    ])
    .map_err(polars_err)
}

fn rows(df: &DataFrame, col: &str) -> Result<Vec<u32>> {
    let mut v: Vec<u32> = df
        .column(col)
        .and_then(|c| c.u32().cloned())
        .map_err(polars_err)?
        .into_no_null_iter()
        .collect();
    v.sort_unstable();
    Ok(v)
}

/// The rows of each key occurring more than once, ordered by first occurrence.
fn duplicates(df: &DataFrame, keys: &[&str], row: &str) -> Result<Vec<Vec<u32>>> {
    let counts = df
        .group_by(["key"])
        .and_then(|g| g.select([row]).count())
        .map_err(polars_err)?;
    let n = counts.columns().last().expect("the count column").clone();
    let repeated = n.as_materialized_series().gt(1).map_err(polars_err)?;
    let dup: BTreeSet<String> = counts
        .filter(&repeated)
        .and_then(|d| d.column("key").and_then(|c| c.str().cloned()))
        .map_err(polars_err)?
        .iter()
        .flatten()
        .map(str::to_string)
        .collect();
    if dup.is_empty() {
        return Ok(Vec::new());
    }
    let mut by_key: std::collections::BTreeMap<&str, Vec<u32>> = Default::default();
    for (i, k) in keys.iter().enumerate() {
        if dup.contains(*k) {
            by_key.entry(k).or_default().push(i as u32);
        }
    }
    let mut out: Vec<Vec<u32>> = by_key.into_values().collect();
    out.sort();
    Ok(out)
}

/// Line `left` up with `right` by key.
pub fn match_keys(left: &[&str], right: &[&str]) -> Result<Matched> {
    let (l, r) = (frame(left, "l_row")?, frame(right, "r_row")?);
    let anti = |a: &DataFrame, b: &DataFrame, col: &str| -> Result<Vec<u32>> {
        let only = a
            .join(b, ["key"], ["key"], JoinArgs::new(JoinType::Anti), None)
            .map_err(polars_err)?;
        rows(&only, col)
    };
    let inner = l
        .join(&r, ["key"], ["key"], JoinArgs::new(JoinType::Inner), None)
        .map_err(polars_err)?;
    let lr = inner
        .column("l_row")
        .and_then(|c| c.u32().cloned())
        .map_err(polars_err)?;
    let rr = inner
        .column("r_row")
        .and_then(|c| c.u32().cloned())
        .map_err(polars_err)?;
    let mut pairs: Vec<(u32, u32)> = lr.into_no_null_iter().zip(rr.into_no_null_iter()).collect();
    pairs.sort_unstable();
    Ok(Matched {
        dup_left: duplicates(&l, left, "l_row")?,
        dup_right: duplicates(&r, right, "r_row")?,
        left_only: anti(&l, &r, "l_row")?,
        right_only: anti(&r, &l, "r_row")?,
        pairs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_duplicates_one_sided_keys_and_pairs() {
        let m = match_keys(&["a", "b", "c", "b"], &["b", "d", "a", "d", "d"]).unwrap();
        assert_eq!(m.dup_left, vec![vec![1, 3]]);
        assert_eq!(m.dup_right, vec![vec![1, 3, 4]]);
        assert_eq!(m.left_only, vec![2]);
        assert_eq!(m.right_only, vec![1, 3, 4]);
        assert_eq!(m.pairs, vec![(0, 2), (1, 0), (3, 0)]);
    }
}
