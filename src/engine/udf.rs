//! gtmos' functions inside DataFusion: Rust kernels for per-series math SQL expresses badly
//! (SPEC §2), registered once in [`super::Engine::new`].
//!
//! - `trailing_median(value, ts, window_days, min_history) OVER (PARTITION BY … ORDER BY ts)`:
//!   the median of `value` over the rows of the partition whose `ts` lies in
//!   `[ts − window_days, ts)` — strictly before the current row's time — or NULL when fewer than
//!   `min_history` rows are in that window. Used by the usage anomaly rule (SPEC §6: units more
//!   than 10× the trailing 30-day median).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Builder};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type};
use datafusion::common::{Result as DfResult, exec_err, plan_err};
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{
    PartitionEvaluator, Signature, TypeSignature, Volatility, WindowUDF, WindowUDFImpl,
};
use datafusion::prelude::SessionContext;

const MICROS_PER_DAY: i64 = 86_400_000_000;

pub fn register(ctx: &SessionContext) {
    ctx.register_udwf(WindowUDF::from(TrailingMedian::new()));
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TrailingMedian {
    signature: Signature,
}

impl TrailingMedian {
    pub fn new() -> Self {
        TrailingMedian {
            signature: Signature::new(TypeSignature::Any(4), Volatility::Immutable),
        }
    }
}

impl Default for TrailingMedian {
    fn default() -> Self {
        Self::new()
    }
}

impl WindowUDFImpl for TrailingMedian {
    fn name(&self) -> &str {
        "trailing_median"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn partition_evaluator(
        &self,
        args: PartitionEvaluatorArgs,
    ) -> DfResult<Box<dyn PartitionEvaluator>> {
        let types = args.input_fields();
        if types.len() != 4 {
            return plan_err!(
                "trailing_median(value, ts, window_days, min_history) takes 4 arguments"
            );
        }
        let numeric = |t: &DataType| t.is_numeric();
        if !numeric(types[0].data_type()) {
            return plan_err!(
                "trailing_median: value must be numeric, not {}",
                types[0].data_type()
            );
        }
        if !matches!(
            types[1].data_type(),
            DataType::Timestamp(..) | DataType::Date32
        ) {
            return plan_err!(
                "trailing_median: ts must be a timestamp or date, not {}",
                types[1].data_type()
            );
        }
        if !numeric(types[2].data_type()) || !numeric(types[3].data_type()) {
            return plan_err!("trailing_median: window_days and min_history must be numbers");
        }
        Ok(Box::new(TrailingMedianEvaluator))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> DfResult<FieldRef> {
        Ok(Arc::new(Field::new(
            field_args.name(),
            DataType::Float64,
            true,
        )))
    }
}

#[derive(Debug)]
struct TrailingMedianEvaluator;

/// Time of each row in microseconds (dates count as midnight).
fn micros(a: &ArrayRef) -> DfResult<Vec<Option<i64>>> {
    if let DataType::Date32 = a.data_type() {
        let d = cast(a, &DataType::Int64)?;
        return Ok(d
            .as_primitive::<Int64Type>()
            .iter()
            .map(|v| v.map(|x| x * MICROS_PER_DAY))
            .collect());
    }
    let ts = cast(
        a,
        &DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, None),
    )?;
    let ints = cast(&ts, &DataType::Int64)?;
    Ok(ints.as_primitive::<Int64Type>().iter().collect())
}

fn first_int(a: &ArrayRef, what: &str) -> DfResult<i64> {
    let c = cast(a, &DataType::Int64)?;
    let c = c.as_primitive::<Int64Type>();
    if c.is_empty() || c.is_null(0) {
        return exec_err!("trailing_median: {what} must not be null");
    }
    Ok(c.value(0))
}

impl PartitionEvaluator for TrailingMedianEvaluator {
    fn evaluate_all(&mut self, values: &[ArrayRef], num_rows: usize) -> DfResult<ArrayRef> {
        let v = cast(&values[0], &DataType::Float64)?;
        let v = v.as_primitive::<Float64Type>();
        let ts = micros(&values[1])?;
        let window = first_int(&values[2], "window_days")? * MICROS_PER_DAY;
        let min_history = first_int(&values[3], "min_history")?.max(1) as usize;
        Ok(Arc::new(trailing_median(
            v.iter().collect::<Vec<_>>().as_slice(),
            &ts,
            window,
            min_history,
            num_rows,
        )))
    }
}

/// The kernel: rows are in time order within the partition (the window's ORDER BY).
fn trailing_median(
    v: &[Option<f64>],
    ts: &[Option<i64>],
    window: i64,
    min_history: usize,
    n: usize,
) -> arrow::array::Float64Array {
    let mut out = Float64Builder::with_capacity(n);
    let mut sorted: Vec<f64> = Vec::new();
    let (mut lo, mut hi) = (0usize, 0usize);
    for i in 0..n {
        let Some(t) = ts[i] else {
            out.append_null();
            continue;
        };
        // Admit rows strictly before this row's time…
        while hi < n && ts[hi].is_some_and(|x| x < t) {
            if let Some(x) = v[hi] {
                let at = sorted.partition_point(|y| y.total_cmp(&x).is_lt());
                sorted.insert(at, x);
            }
            hi += 1;
        }
        // …and retire those older than the window.
        while lo < hi && ts[lo].is_none_or(|x| x < t - window) {
            if let Some(x) = v[lo] {
                let at = sorted.partition_point(|y| y.total_cmp(&x).is_lt());
                if at < sorted.len() {
                    sorted.remove(at);
                }
            }
            lo += 1;
        }
        let m = sorted.len();
        if m < min_history {
            out.append_null();
        } else if m % 2 == 1 {
            out.append_value(sorted[m / 2]);
        } else {
            out.append_value((sorted[m / 2 - 1] + sorted[m / 2]) / 2.0);
        }
    }
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_the_prior_window_only() {
        let day = MICROS_PER_DAY;
        // Days 0..5 with values 1..6; window 3 days, at least 2 prior rows.
        let v: Vec<Option<f64>> = (1..=6).map(|x| Some(x as f64)).collect();
        let ts: Vec<Option<i64>> = (0..6).map(|d| Some(d * day)).collect();
        let r = trailing_median(&v, &ts, 3 * day, 2, 6);
        let got: Vec<Option<f64>> = r.iter().collect();
        // day 0: none; day 1: [1] (<2); day 2: [1,2] → 1.5; day 3: [1,2,3] → 2; day 4: [2,3,4] → 3 (day 1 is 3 days back, kept); day 5: [3,4,5] → 4
        assert_eq!(
            got,
            vec![None, None, Some(1.5), Some(2.0), Some(3.0), Some(4.0)]
        );
    }

    #[test]
    fn equal_times_do_not_see_each_other() {
        let day = MICROS_PER_DAY;
        let v = vec![Some(10.0), Some(20.0), Some(1000.0)];
        let ts = vec![Some(0), Some(day), Some(day)];
        let r = trailing_median(&v, &ts, 30 * day, 1, 3);
        assert_eq!(
            r.iter().collect::<Vec<_>>(),
            vec![None, Some(10.0), Some(10.0)]
        );
    }

    #[test]
    fn works_inside_sql() {
        let dir = tempfile::tempdir().unwrap();
        let e = super::super::Engine::new(
            &super::super::EngineConfig::default(),
            1,
            dir.path(),
            64 << 20,
        )
        .unwrap();
        let b = e
            .query(
                "select k, d, trailing_median(x, d, 30, 1) over (partition by k order by d) m from (values \
                 ('a', date '2024-01-01', 5.0), ('a', date '2024-01-02', 7.0), ('a', date '2024-01-03', 100.0), \
                 ('b', date '2024-01-01', 1.0)) t(k, d, x) order by k, d",
                "test",
            )
            .unwrap();
        let m = b[0].column(2).as_primitive::<Float64Type>();
        assert_eq!(
            m.iter().collect::<Vec<_>>(),
            vec![None, Some(5.0), Some(6.0), None]
        );
        let err = e.query(
            "select trailing_median('x', 1, 30, 1) over () from (values (1)) t(a)",
            "test",
        );
        assert!(err.is_err());
    }
}
