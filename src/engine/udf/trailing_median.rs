//! `trailing_median`: the median of a series over a trailing window, as a window UDF. See the
//! [module doc](super).

use super::*;

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
                "trailing_median(value, ts, min_history, window_days) OVER (PARTITION BY … ORDER BY ts) takes 4 arguments"
            );
        }
        if !types[0].data_type().is_numeric() {
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
        if !types[2].data_type().is_integer() || !types[3].data_type().is_integer() {
            return plan_err!("trailing_median: min_history and window_days must be integers");
        }
        Ok(Box::new(TrailingMedianEvaluator::default()))
    }

    fn field(&self, field_args: WindowUDFFieldArgs) -> DfResult<FieldRef> {
        Ok(Arc::new(Field::new(
            field_args.name(),
            DataType::Float64,
            true,
        )))
    }
}

#[derive(Debug, Default)]
struct TrailingMedianEvaluator {
    buf: Vec<f64>,
    /// The first row of the partition still inside the current row's window (rows are
    /// ordered by time, so it only moves forward).
    start: usize,
}

/// The integer argument `k` at row `i` (a constant in practice).
fn int_arg(a: &ArrayRef, i: usize, name: &str) -> DfResult<i64> {
    let v = match a.as_primitive_opt::<Int64Type>() {
        Some(c) => c.is_valid(i).then(|| c.value(i)),
        None => {
            let c = cast(&a.slice(i, 1), &DataType::Int64)?;
            let c = c.as_primitive::<Int64Type>();
            c.is_valid(0).then(|| c.value(0))
        }
    };
    match v {
        Some(v) => Ok(v),
        None => exec_err!("trailing_median: {name} must not be null"),
    }
}

impl PartitionEvaluator for TrailingMedianEvaluator {
    fn supports_bounded_execution(&self) -> bool {
        true
    }

    /// The result depends on the current row and those before it only.
    fn is_causal(&self) -> bool {
        true
    }

    /// Every row of the partition so far stays available (one series: at most a few hundred
    /// rows per account × SKU × source); the window is found in `evaluate`.
    fn get_range(&self, idx: usize, _n_rows: usize) -> DfResult<std::ops::Range<usize>> {
        Ok(0..idx + 1)
    }

    fn evaluate(
        &mut self,
        values: &[ArrayRef],
        range: &std::ops::Range<usize>,
    ) -> DfResult<datafusion::common::ScalarValue> {
        use datafusion::common::ScalarValue;
        let Some(current) = range.end.checked_sub(1) else {
            return Ok(ScalarValue::Float64(None));
        };
        let min_history = int_arg(&values[2], current, "min_history")?.max(1) as usize;
        let window = int_arg(&values[3], current, "window_days")?.max(0) * MICROS_PER_DAY;
        let micros = values[1].as_primitive_opt::<arrow::datatypes::TimestampMicrosecondType>();
        let time = |i: usize| match micros {
            Some(t) => t.is_valid(i).then(|| t.value(i)),
            None => micros_at(&values[1], i),
        };
        let Some(now) = time(current) else {
            return Ok(ScalarValue::Float64(None));
        };
        if current > 0 && time(current - 1).is_some_and(|t| t > now) {
            return exec_err!(
                "trailing_median: the rows are not ordered by ts (its OVER clause needs ORDER BY ts)"
            );
        }
        while self.start < current && time(self.start).is_none_or(|t| t < now - window) {
            self.start += 1;
        }
        self.buf.clear();
        let mut push = |x: f64| self.buf.push(x);
        match values[0].as_primitive_opt::<Float64Type>() {
            Some(v) => {
                for i in self.start..current {
                    if v.is_valid(i) && time(i).is_some_and(|t| t < now) {
                        push(v.value(i));
                    }
                }
            }
            None => {
                let v = cast(
                    &values[0].slice(self.start, current - self.start),
                    &DataType::Float64,
                )?;
                let v = v.as_primitive::<Float64Type>();
                for (k, i) in (self.start..current).enumerate() {
                    if v.is_valid(k) && time(i).is_some_and(|t| t < now) {
                        push(v.value(k));
                    }
                }
            }
        }
        Ok(ScalarValue::Float64(median(&mut self.buf, min_history)))
    }
}

fn micros_at(a: &ArrayRef, i: usize) -> Option<i64> {
    if a.is_null(i) {
        return None;
    }
    use arrow::datatypes::{
        Date32Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
        TimestampNanosecondType, TimestampSecondType,
    };
    Some(match a.data_type() {
        DataType::Date32 => i64::from(a.as_primitive::<Date32Type>().value(i)) * MICROS_PER_DAY,
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            a.as_primitive::<TimestampMicrosecondType>().value(i)
        }
        DataType::Timestamp(TimeUnit::Millisecond, _) => {
            a.as_primitive::<TimestampMillisecondType>().value(i) * 1_000
        }
        DataType::Timestamp(TimeUnit::Second, _) => {
            a.as_primitive::<TimestampSecondType>().value(i) * 1_000_000
        }
        DataType::Timestamp(TimeUnit::Nanosecond, _) => {
            a.as_primitive::<TimestampNanosecondType>().value(i) / 1_000
        }
        _ => return None,
    })
}

/// The median of `xs` (reordered in place), or None with fewer than `min_history` values.
pub(super) fn median(xs: &mut [f64], min_history: usize) -> Option<f64> {
    let m = xs.len();
    if m < min_history || m == 0 {
        return None;
    }
    let (_, hi, _) = xs.select_nth_unstable_by(m / 2, f64::total_cmp);
    let hi = *hi;
    if m % 2 == 1 {
        return Some(hi);
    }
    let lo = xs[..m / 2]
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    Some((lo + hi) / 2.0)
}
