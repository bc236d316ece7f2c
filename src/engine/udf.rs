//! gtmos' functions inside DataFusion: Rust kernels for per-series math SQL expresses badly
//! (SPEC §2), registered once in [`super::Engine::new`].
//!
//! - `ratable_schedule(amount_usd, term_start, term_end, method)`: the recognition schedule of
//!   an amount over a half-open term (SPEC §7), as `list<struct<month date, amount_usd
//!   decimal(18,2)>>`, one entry per calendar month the term touches. `daily`: amount × days of
//!   the term in the month ÷ term days; `monthly_prorated`: equal per full month, first and last
//!   month prorated by days. Every part is rounded half away from zero to the cent and the
//!   remainder goes to the final month, so the parts sum to the amount exactly.
//! - `money_mul(units, unit_price_usd)`: units × a `decimal(18,6)` price, rounded half away
//!   from zero to a `decimal(18,2)`, computed exactly in integers.
//! - `trailing_median(value, ts, window_days, min_history) OVER (PARTITION BY … ORDER BY ts)`:
//!   the median of `value` over the rows of the partition whose `ts` lies in
//!   `[ts − window_days, ts)` — strictly before the current row's time — or NULL when fewer than
//!   `min_history` rows are in that window. Used by the usage anomaly rule (SPEC §6: units more
//!   than 10× the trailing 30-day median).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Float64Builder, ListArray, StructArray};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Float64Type, Int64Type};
use datafusion::common::{Result as DfResult, exec_err, plan_err};
use datafusion::logical_expr::function::{PartitionEvaluatorArgs, WindowUDFFieldArgs};
use datafusion::logical_expr::{
    ColumnarValue, PartitionEvaluator, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    TypeSignature, Volatility, WindowUDF, WindowUDFImpl,
};
use datafusion::prelude::SessionContext;

use crate::calendar::{Day, days_in_month, month_start, overlap_days};
use crate::money::{allocate, div_round};

const MICROS_PER_DAY: i64 = 86_400_000_000;

pub fn register(ctx: &SessionContext) {
    ctx.register_udwf(WindowUDF::from(TrailingMedian::new()));
    ctx.register_udf(ScalarUDF::from(RatableSchedule::new()));
    ctx.register_udf(ScalarUDF::from(MoneyMul::new()));
}

/// The months `[start, end)` touches and the weight of each under a convention.
pub fn schedule_weights(start: Day, end: Day, method: &str) -> Option<Vec<(Day, i128)>> {
    if end <= start {
        return Some(Vec::new());
    }
    let mut out = Vec::new();
    let last = end.plus(-1).month_index();
    for m in start.month_index()..=last {
        let ms = month_start(m);
        let days = overlap_days(start, end, ms, ms.add_months(1)) as i128;
        out.push((ms, days));
    }
    match method {
        "daily" => Some(out),
        "monthly_prorated" => {
            // Full months weigh one month; partial months their share of the month's days.
            // Integer weights: every month scaled by the product of the partial months' lengths.
            let dim = |d: Day| days_in_month(d.year(), d.month()) as i128;
            let scale: i128 = out
                .iter()
                .filter(|(ms, days)| *days != dim(*ms))
                .map(|(ms, _)| dim(*ms))
                .product::<i128>()
                .max(1);
            Some(
                out.into_iter()
                    .map(|(ms, days)| (ms, days * scale / dim(ms)))
                    .collect(),
            )
        }
        _ => None,
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RatableSchedule {
    signature: Signature,
}

impl RatableSchedule {
    pub fn new() -> Self {
        RatableSchedule {
            signature: Signature::new(TypeSignature::Any(4), Volatility::Immutable),
        }
    }

    fn entry_fields() -> Fields {
        Fields::from(vec![
            Field::new("month", DataType::Date32, false),
            Field::new("amount_usd", DataType::Decimal128(18, 2), false),
        ])
    }
}

impl Default for RatableSchedule {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for RatableSchedule {
    fn name(&self) -> &str {
        "ratable_schedule"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        if args.len() != 4 {
            return plan_err!(
                "ratable_schedule(amount_usd, term_start, term_end, method) takes 4 arguments"
            );
        }
        if !matches!(
            args[0],
            DataType::Decimal128(..) | DataType::Int64 | DataType::Int32
        ) {
            return plan_err!(
                "ratable_schedule: amount_usd must be a decimal, not {}",
                args[0]
            );
        }
        if args[1] != DataType::Date32 || args[2] != DataType::Date32 {
            return plan_err!("ratable_schedule: term_start and term_end must be dates");
        }
        Ok(DataType::List(Arc::new(Field::new(
            "item",
            DataType::Struct(Self::entry_fields()),
            true,
        ))))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let n = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let cents = cast(&arrays[0], &DataType::Decimal128(38, 2))?;
        let cents = cents.as_primitive::<arrow::datatypes::Decimal128Type>();
        let start = arrays[1].as_primitive::<arrow::datatypes::Date32Type>();
        let end = arrays[2].as_primitive::<arrow::datatypes::Date32Type>();
        let method = cast(&arrays[3], &DataType::Utf8)?;
        let method = method.as_string::<i32>();
        let mut months = arrow::array::Date32Builder::new();
        let mut amounts = arrow::array::Decimal128Builder::new().with_precision_and_scale(18, 2)?;
        let mut offsets = vec![0i32];
        let mut valid = Vec::with_capacity(n);
        for i in 0..n {
            let ok = !(cents.is_null(i) || start.is_null(i) || end.is_null(i) || method.is_null(i));
            if ok {
                let m = method.value(i);
                let Some(weights) = schedule_weights(Day(start.value(i)), Day(end.value(i)), m)
                else {
                    return exec_err!(
                        "ratable_schedule: method `{m}` must be daily or monthly_prorated"
                    );
                };
                let w: Vec<i128> = weights.iter().map(|x| x.1).collect();
                for ((month, _), part) in weights.iter().zip(allocate(cents.value(i), &w)) {
                    months.append_value(month.0);
                    amounts.append_value(part);
                }
            }
            valid.push(ok);
            offsets.push(arrow::array::ArrayBuilder::len(&months) as i32);
        }
        let entries = StructArray::new(
            Self::entry_fields(),
            vec![
                Arc::new(months.finish()) as ArrayRef,
                Arc::new(amounts.finish()) as ArrayRef,
            ],
            None,
        );
        let list = ListArray::new(
            Arc::new(Field::new(
                "item",
                DataType::Struct(Self::entry_fields()),
                true,
            )),
            OffsetBuffer::new(offsets.into()),
            Arc::new(entries),
            Some(NullBuffer::from(valid)),
        );
        Ok(ColumnarValue::Array(Arc::new(list)))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct MoneyMul {
    signature: Signature,
}

impl MoneyMul {
    pub fn new() -> Self {
        MoneyMul {
            signature: Signature::new(TypeSignature::Any(2), Volatility::Immutable),
        }
    }
}

impl Default for MoneyMul {
    fn default() -> Self {
        Self::new()
    }
}

/// Nano-units of a float quantity (9 decimals are kept; integral quantities are exact).
fn nano_units(x: f64) -> i128 {
    (x * 1e9).round() as i128
}

impl ScalarUDFImpl for MoneyMul {
    fn name(&self) -> &str {
        "money_mul"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        if args.len() != 2 || !args[0].is_numeric() || !args[1].is_numeric() {
            return plan_err!("money_mul(units, unit_price_usd) takes two numbers");
        }
        Ok(DataType::Decimal128(18, 2))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let n = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let units = cast(&arrays[0], &DataType::Float64)?;
        let units = units.as_primitive::<Float64Type>();
        let price = cast(&arrays[1], &DataType::Decimal128(38, 6))?;
        let price = price.as_primitive::<arrow::datatypes::Decimal128Type>();
        let mut out =
            arrow::array::Decimal128Builder::with_capacity(n).with_precision_and_scale(18, 2)?;
        for i in 0..n {
            if units.is_null(i) || price.is_null(i) {
                out.append_null();
                continue;
            }
            // units (nano) × price (micro) → cents: divide by 1e9 × 1e4.
            out.append_value(div_round(
                nano_units(units.value(i)) * price.value(i),
                10_000_000_000_000,
            ));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
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

    fn schedule(amount_cents: i128, start: &str, end: &str, method: &str) -> Vec<(String, i128)> {
        let (s, e) = (Day::parse(start).unwrap(), Day::parse(end).unwrap());
        let w = schedule_weights(s, e, method).unwrap();
        let parts = allocate(amount_cents, &w.iter().map(|x| x.1).collect::<Vec<_>>());
        w.iter()
            .zip(parts)
            .map(|((m, _), p)| (m.iso(), p))
            .collect()
    }

    #[test]
    fn ratable_schedules_match_the_spec_oracles() {
        // SPEC §7: $120 from 2024-06-15 to 2024-10-13, daily.
        assert_eq!(
            schedule(12_000, "2024-06-15", "2024-10-13", "daily"),
            vec![
                ("2024-06-01".into(), 1_600),
                ("2024-07-01".into(), 3_100),
                ("2024-08-01".into(), 3_100),
                ("2024-09-01".into(), 3_000),
                ("2024-10-01".into(), 1_200)
            ]
        );
        // SPEC §7: $365 for a year from 2019-01-01 → 31, 28, 31, …
        let y = schedule(36_500, "2019-01-01", "2020-01-01", "daily");
        assert_eq!(y.len(), 12);
        assert_eq!(
            &y[..3],
            &[
                ("2019-01-01".into(), 3_100),
                ("2019-02-01".into(), 2_800),
                ("2019-03-01".into(), 3_100)
            ]
        );
        // A leap-year term: February 2024 has 29 days.
        assert_eq!(
            schedule(36_600, "2024-01-01", "2025-01-01", "daily")[1],
            ("2024-02-01".into(), 2_900)
        );
        // A mid-month quarterly term (exact fractions computed independently): remainder on the last month.
        assert_eq!(
            schedule(30_000, "2024-01-15", "2024-04-15", "daily")
                .iter()
                .map(|x| x.1)
                .collect::<Vec<_>>(),
            vec![5_604, 9_560, 10_220, 4_616]
        );
        assert_eq!(
            schedule(30_000, "2024-01-15", "2024-04-15", "monthly_prorated")
                .iter()
                .map(|x| x.1)
                .collect::<Vec<_>>(),
            vec![5_456, 9_950, 9_950, 4_644]
        );
        assert_eq!(
            schedule(120_000, "2024-01-01", "2025-01-01", "monthly_prorated")[1].1,
            10_000,
            "full months are equal"
        );
        assert!(schedule_weights(Day(0), Day(1), "weekly").is_none());
        assert!(schedule(100, "2024-02-01", "2024-02-01", "daily").is_empty());
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
