//! `key_hash(a, b, …)`: a 64-bit hash of a key's columns, for finding the few keys that repeat
//! among millions without building a hash table of the keys themselves.
//!
//! Equal keys hash equal (nulls included, as GROUP BY groups them), so `GROUP BY key_hash(…)
//! HAVING COUNT(*) > 1` keeps every repeated key; distinct keys may collide, so the groups it
//! finds are candidates that an exact rule then checks. The seed is fixed: the same key hashes
//! the same in every run.

use std::sync::Arc;

use arrow::array::{ArrayRef, UInt64Array};
use arrow::datatypes::DataType;
use datafusion::common::hash_utils::{RandomState, create_hashes};
use datafusion::common::{Result as DfResult, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct KeyHash {
    signature: Signature,
}

impl KeyHash {
    pub fn new() -> Self {
        KeyHash {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl Default for KeyHash {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for KeyHash {
    fn name(&self) -> &str {
        "key_hash"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::UInt64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        if args.args.is_empty() {
            return exec_err!("key_hash takes one argument or more");
        }
        let n = args.number_rows;
        let arrays: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| a.to_array(n))
            .collect::<DfResult<_>>()?;
        let mut hashes = vec![0u64; n];
        create_hashes(
            &arrays,
            &RandomState::with_seed(0x67_746d_6f73),
            &mut hashes,
        )?;
        Ok(ColumnarValue::Array(Arc::new(UInt64Array::from(hashes))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Array;
    use datafusion::logical_expr::ScalarUDF;

    #[test]
    fn equal_keys_hash_equal_nulls_included() {
        let ctx = datafusion::prelude::SessionContext::new();
        ctx.register_udf(ScalarUDF::from(KeyHash::new()));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let b = rt
            .block_on(async {
                ctx.sql(
                    "SELECT key_hash(a, b) FROM (VALUES ('x', 1), ('x', 1), (NULL, 1), (NULL, 1), ('x', 2), ('y', NULL)) v(a, b)",
                )
                .await
                .unwrap()
                .collect()
                .await
                .unwrap()
            });
        let h = b[0]
            .column(0)
            .as_any()
            .downcast_ref::<UInt64Array>()
            .unwrap();
        assert_eq!(h.null_count(), 0);
        assert_eq!(h.value(0), h.value(1));
        assert_eq!(h.value(2), h.value(3));
        let distinct: std::collections::BTreeSet<u64> = h.values().iter().copied().collect();
        assert_eq!(distinct.len(), 4);
    }
}
