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
//! - `trailing_median(value, ts, min_history, window_days) OVER (PARTITION BY … ORDER BY ts)`:
//!   the median of `value` over the partition's rows whose time lies in the `window_days` days
//!   before the current row's (`now − window_days ≤ ts < now`: the row and its peers excluded),
//!   or NULL when fewer than `min_history` rows are in it. Used by the usage anomaly rule (SPEC
//!   §6: units more than 10× the trailing 30-day median). The function finds the window itself,
//!   walking the ordered partition with a pointer, so the engine computes no frame per row (a
//!   `RANGE … PRECEDING` frame cost DataFusion ~1 µs a row to locate); it streams partition by
//!   partition, holding one series, and fails if the rows are not ordered by `ts`.
//! - `consumption_forecast(usage, as_of, commit_units, params)`: the TOOL-004 core
//!   ([`crate::forecast`]) over one account × SKU's daily usage (`usage` a list of
//!   `struct<day date, units number>` in any order, as from `array_agg(named_struct('day', d,
//!   'units', u))` — an aggregate DataFusion runs column-wise, where an ordered `array_agg`
//!   keeps each value as a scalar), against the current monthly commit; `params` is a JSON
//!   object of [`crate::forecast::Params`] (a constant). Returns a struct of the forecast's
//!   fields.
//! - `is_finite_value(x)`: false for a NaN or infinite float, true for any other value of any
//!   type (null stays null). Range tests use it so that a non-finite number fails every range,
//!   including one-sided ones (Arrow orders NaN above every number, so `NaN < 0` is false).
//! - `day_number(date)`: days since 1970-01-01 as an `int`, and `date_of_day_number(n)` back:
//!   day arithmetic in one portable spelling (the DuckDB benchmark scripts define both as
//!   macros, in the DuckDB translation the benchmarks use).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, ListArray, StructArray};
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
    ctx.register_udf(ScalarUDF::from(ConsumptionForecast::new()));
    ctx.register_udf(ScalarUDF::from(DayNumber::new(false)));
    ctx.register_udf(ScalarUDF::from(DayNumber::new(true)));
    ctx.register_udf(ScalarUDF::from(IsFiniteValue::new()));
}

/// `is_finite_value(x)`: see the module doc.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct IsFiniteValue {
    signature: Signature,
}

impl IsFiniteValue {
    pub fn new() -> Self {
        IsFiniteValue {
            signature: Signature::new(TypeSignature::Any(1), Volatility::Immutable),
        }
    }
}

impl Default for IsFiniteValue {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for IsFiniteValue {
    fn name(&self) -> &str {
        "is_finite_value"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        use arrow::array::BooleanArray;
        let [arg] = args.args.as_slice() else {
            return exec_err!("is_finite_value takes one argument");
        };
        let finite = |a: &ArrayRef| -> ArrayRef {
            let out: BooleanArray = match a.data_type() {
                DataType::Float64 => a
                    .as_primitive::<Float64Type>()
                    .iter()
                    .map(|v| v.map(f64::is_finite))
                    .collect(),
                DataType::Float32 => a
                    .as_primitive::<arrow::datatypes::Float32Type>()
                    .iter()
                    .map(|v| v.map(f32::is_finite))
                    .collect(),
                DataType::Float16 => a
                    .as_primitive::<arrow::datatypes::Float16Type>()
                    .iter()
                    .map(|v| v.map(|x| x.is_finite()))
                    .collect(),
                _ => (0..a.len())
                    .map(|i| a.is_valid(i).then_some(true))
                    .collect(),
            };
            Arc::new(out)
        };
        Ok(match arg {
            ColumnarValue::Array(a) => ColumnarValue::Array(finite(a)),
            ColumnarValue::Scalar(s) => ColumnarValue::Scalar(
                datafusion::common::ScalarValue::try_from_array(&finite(&s.to_array()?), 0)?,
            ),
        })
    }
}

/// `day_number(date)` → days since the epoch, or (`inverse`) `date_of_day_number(n)` → date.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DayNumber {
    signature: Signature,
    inverse: bool,
}

impl DayNumber {
    pub fn new(inverse: bool) -> Self {
        DayNumber {
            signature: Signature::new(TypeSignature::Any(1), Volatility::Immutable),
            inverse,
        }
    }
}

impl ScalarUDFImpl for DayNumber {
    fn name(&self) -> &str {
        if self.inverse {
            "date_of_day_number"
        } else {
            "day_number"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        match (self.inverse, args) {
            (false, [DataType::Date32]) => Ok(DataType::Int32),
            (true, [t]) if t.is_integer() => Ok(DataType::Date32),
            (false, _) => plan_err!("day_number(date) takes one date, not {args:?}"),
            (true, _) => plan_err!("date_of_day_number(n) takes one integer, not {args:?}"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let to = if self.inverse {
            DataType::Date32
        } else {
            DataType::Int32
        };
        let [arg] = args.args.as_slice() else {
            return exec_err!("{} takes one argument", self.name());
        };
        // Date32 is an i32 day count: both directions are a reinterpretation, checked for
        // integers that do not fit.
        let opts = arrow::compute::CastOptions {
            safe: false,
            ..Default::default()
        };
        let via = |a: &ArrayRef| -> DfResult<ArrayRef> {
            let days = arrow::compute::cast_with_options(a, &DataType::Int32, &opts)?;
            Ok(arrow::compute::cast_with_options(&days, &to, &opts)?)
        };
        Ok(match arg {
            ColumnarValue::Array(a) => ColumnarValue::Array(via(a)?),
            ColumnarValue::Scalar(s) => ColumnarValue::Scalar(
                datafusion::common::ScalarValue::try_from_array(&via(&s.to_array()?)?, 0)?,
            ),
        })
    }
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
pub struct ConsumptionForecast {
    signature: Signature,
}

impl ConsumptionForecast {
    pub fn new() -> Self {
        ConsumptionForecast {
            signature: Signature::new(TypeSignature::Any(4), Volatility::Immutable),
        }
    }

    /// The `day` (date) and `units` (number) columns of the usage list's struct, as typed.
    fn usage_fields(t: &DataType) -> Option<(usize, usize)> {
        let (DataType::List(item) | DataType::LargeList(item)) = t else {
            return None;
        };
        let DataType::Struct(fields) = item.data_type() else {
            return None;
        };
        let day = fields.find("day")?;
        let units = fields.find("units")?;
        (day.1.data_type() == &DataType::Date32 && units.1.data_type().is_numeric())
            .then_some((day.0, units.0))
    }

    fn fields() -> Fields {
        let f = |name: &str, t: DataType| Field::new(name, t, true);
        Fields::from(vec![
            f("history_days", DataType::Int32),
            f("observed_days", DataType::Int32),
            f("refusal_reason", DataType::Utf8),
            f("pattern", DataType::Utf8),
            f("growth_rate_30d", DataType::Float64),
            f("volatility", DataType::Float64),
            Field::new("seasonality_detected", DataType::Boolean, false),
            f("season_period_days", DataType::Int32),
            f("season_strength", DataType::Float64),
            f("cliff_date", DataType::Date32),
            f("cliff_change", DataType::Float64),
            f("forecast_next_30d_units", DataType::Float64),
            f("month_to_date_units", DataType::Float64),
            f("overage_outlook", DataType::Utf8),
            f("predicted_overage_date", DataType::Date32),
            f("overage_date_low", DataType::Date32),
            f("overage_date_high", DataType::Date32),
            f("interval_widening", DataType::Float64),
            f("interpretation", DataType::Utf8),
        ])
    }
}

impl Default for ConsumptionForecast {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for ConsumptionForecast {
    fn name(&self) -> &str {
        "consumption_forecast"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        const USAGE: &str = "consumption_forecast(usage list<struct<day date, units number>>, as_of date, commit_units, params json)";
        if args.len() != 4 {
            return plan_err!("{USAGE} takes 4 arguments");
        }
        if Self::usage_fields(&args[0]).is_none() {
            return plan_err!(
                "{USAGE}: usage must be a list of struct<day date, units number>, not {}",
                args[0]
            );
        }
        if args[1] != DataType::Date32 || !args[2].is_numeric() {
            return plan_err!("{USAGE}: as_of must be a date and commit_units a number");
        }
        Ok(DataType::Struct(Self::fields()))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        use crate::forecast::{Input, Params, forecast};
        use arrow::array::{
            BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, StringBuilder,
        };
        let n = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (Some((day_at, units_at)), DataType::List(item) | DataType::LargeList(item)) = (
            Self::usage_fields(arrays[0].data_type()),
            arrays[0].data_type(),
        ) else {
            return exec_err!("consumption_forecast: usage is {}", arrays[0].data_type());
        };
        let usage = cast(&arrays[0], &DataType::List(item.clone()))?;
        let usage = usage.as_list::<i32>();
        let entries = usage.values().as_struct();
        let all_days = entries
            .column(day_at)
            .as_primitive::<arrow::datatypes::Date32Type>();
        let all_units = cast(entries.column(units_at), &DataType::Float64)?;
        let all_units = all_units.as_primitive::<Float64Type>();
        let as_of = arrays[1].as_primitive::<arrow::datatypes::Date32Type>();
        let commit = cast(&arrays[2], &DataType::Float64)?;
        let commit = commit.as_primitive::<Float64Type>();
        let params = cast(&arrays[3], &DataType::Utf8)?;
        let params = params.as_string::<i32>();
        let mut parsed: Option<(String, Params)> = None;

        let mut history = Int32Builder::with_capacity(n);
        let mut observed = Int32Builder::with_capacity(n);
        let mut refusal = StringBuilder::new();
        let mut pattern = StringBuilder::new();
        let mut growth = Float64Builder::with_capacity(n);
        let mut volatility = Float64Builder::with_capacity(n);
        let mut seasonal = BooleanBuilder::with_capacity(n);
        let mut period = Int32Builder::with_capacity(n);
        let mut strength = Float64Builder::with_capacity(n);
        let mut cliff_date = Date32Builder::with_capacity(n);
        let mut cliff_change = Float64Builder::with_capacity(n);
        let mut next_30d = Float64Builder::with_capacity(n);
        let mut mtd = Float64Builder::with_capacity(n);
        let mut outlook = StringBuilder::new();
        let mut date = Date32Builder::with_capacity(n);
        let mut low = Date32Builder::with_capacity(n);
        let mut high = Date32Builder::with_capacity(n);
        let mut widening = Float64Builder::with_capacity(n);
        let mut interpretation = StringBuilder::new();
        for i in 0..n {
            if usage.is_null(i) || as_of.is_null(i) || params.is_null(i) {
                return exec_err!(
                    "consumption_forecast: usage, as_of and params must not be null (row {i})"
                );
            }
            let text = params.value(i);
            if parsed.as_ref().is_none_or(|(t, _)| t != text) {
                let p: Params = serde_json::from_str(text).map_err(|e| {
                    datafusion::error::DataFusionError::Execution(format!(
                        "consumption_forecast: params {text}: {e}"
                    ))
                })?;
                if let Err(e) = p.validate() {
                    return exec_err!("consumption_forecast: {e}");
                }
                parsed = Some((text.to_string(), p));
            }
            let p = &parsed.as_ref().expect("parsed above").1;
            // One row's entries; a null entry, day or units is not usage (missing, not zero).
            let (start, end) = (
                usage.value_offsets()[i] as usize,
                usage.value_offsets()[i + 1] as usize,
            );
            let (mut d, mut u) = (
                Vec::with_capacity(end - start),
                Vec::with_capacity(end - start),
            );
            for j in (start..end).filter(|j| entries.is_valid(*j)) {
                d.push(if all_days.is_valid(j) {
                    all_days.value(j)
                } else {
                    i32::MAX
                });
                u.push(if all_units.is_valid(j) {
                    all_units.value(j)
                } else {
                    f64::NAN
                });
            }
            let f = forecast(
                &Input {
                    days: &d,
                    units: &u,
                    as_of: as_of.value(i),
                    commit_units: (!commit.is_null(i)).then(|| commit.value(i)),
                },
                p,
            );
            history.append_value(f.history_days as i32);
            observed.append_value(f.observed_days as i32);
            refusal.append_option(f.refusal.as_deref());
            pattern.append_option(f.pattern.map(|p| p.name()));
            growth.append_option(f.growth_rate_30d);
            volatility.append_option(f.volatility);
            seasonal.append_value(f.seasonality_detected);
            period.append_option(f.season_period_days.map(|p| p as i32));
            strength.append_option(f.season_strength);
            cliff_date.append_option(f.cliff_day);
            cliff_change.append_option(f.cliff_change);
            next_30d.append_option(f.next_30d_units);
            mtd.append_option(f.month_to_date_units);
            outlook.append_option(f.outlook.map(|o| o.name()));
            date.append_option(f.overage_date);
            low.append_option(f.overage_date_low);
            high.append_option(f.overage_date_high);
            widening.append_option(f.interval_widening);
            interpretation.append_option(f.interpretation);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(history.finish()),
            Arc::new(observed.finish()),
            Arc::new(refusal.finish()),
            Arc::new(pattern.finish()),
            Arc::new(growth.finish()),
            Arc::new(volatility.finish()),
            Arc::new(seasonal.finish()),
            Arc::new(period.finish()),
            Arc::new(strength.finish()),
            Arc::new(cliff_date.finish()),
            Arc::new(cliff_change.finish()),
            Arc::new(next_30d.finish()),
            Arc::new(mtd.finish()),
            Arc::new(outlook.finish()),
            Arc::new(date.finish()),
            Arc::new(low.finish()),
            Arc::new(high.finish()),
            Arc::new(widening.finish()),
            Arc::new(interpretation.finish()),
        ];
        Ok(ColumnarValue::Array(Arc::new(StructArray::new(
            Self::fields(),
            columns,
            None,
        ))))
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
fn median(xs: &mut [f64], min_history: usize) -> Option<f64> {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-thread engine spilling into a temporary directory (kept alive by the caller).
    fn engine() -> (tempfile::TempDir, super::super::Engine) {
        let dir = tempfile::tempdir().unwrap();
        let e = super::super::Engine::new(
            &super::super::EngineConfig::default(),
            1,
            dir.path(),
            64 << 20,
        )
        .unwrap();
        (dir, e)
    }

    /// Medians per row as SQL computes them over a frame of `days` days.
    fn medians(rows: &[(&str, i32, f64)], days: i32, min_history: i32) -> Vec<Option<f64>> {
        let (_dir, e) = engine();
        let values: Vec<String> = rows
            .iter()
            .enumerate()
            .map(|(i, (k, d, x))| format!("({i}, '{k}', arrow_cast({d}, 'Date32'), {x:.1})"))
            .collect();
        let b = e
            .query(
                &format!(
                    "select i, trailing_median(x, d, {min_history}, {days}) over (partition by k order by d) m \
                     from (values {}) t(i, k, d, x) order by i",
                    values.join(", ")
                ),
                "test",
            )
            .unwrap();
        b.iter()
            .flat_map(|b| {
                b.column(1)
                    .as_primitive::<Float64Type>()
                    .iter()
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn median_of_the_prior_window_only() {
        // Days 0..5 with values 1..6; a 3-day frame, at least 2 prior rows.
        let rows: Vec<(&str, i32, f64)> = (0..6).map(|d| ("a", d, f64::from(d + 1))).collect();
        // day 0: none; day 1: [1] (<2); day 2: [1,2] → 1.5; day 3: [1,2,3] → 2;
        // day 4: [2,3,4] → 3 (day 1 is 3 days back, kept); day 5: [3,4,5] → 4
        assert_eq!(
            medians(&rows, 3, 2),
            vec![None, None, Some(1.5), Some(2.0), Some(3.0), Some(4.0)]
        );
    }

    #[test]
    fn equal_times_do_not_see_each_other() {
        let rows = [
            ("a", 0, 10.0),
            ("a", 1, 20.0),
            ("a", 1, 1000.0),
            ("b", 1, 7.0),
        ];
        assert_eq!(
            medians(&rows, 30, 1),
            vec![None, Some(10.0), Some(10.0), None]
        );
    }

    #[test]
    fn even_counts_average_the_middle_pair() {
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0], 1), Some(2.5));
        assert_eq!(median(&mut [5.0], 1), Some(5.0));
        assert_eq!(median(&mut [5.0], 2), None);
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
    fn bad_arguments_are_plan_errors() {
        let (_dir, e) = engine();
        for sql in [
            "select trailing_median('x', 1, 1, 30) over () from (values (1)) t(a)",
            "select trailing_median(a, a, 30, 1) over () from (values (1)) t(a)",
            "select trailing_median(a, DATE '2024-01-01', 1) over () from (values (1)) t(a)",
            // not ordered by the time: an execution error, not a wrong median
            "select trailing_median(a, d, 1, 30) over (order by a) from (values (1, DATE '2024-01-02'), (2, DATE '2024-01-01')) t(a, d)",
            "select day_number(a) from (values (1)) t(a)",
            "select date_of_day_number(DATE '2024-01-01')",
        ] {
            assert!(e.query(sql, "test").is_err(), "{sql}");
        }
    }

    #[test]
    fn day_numbers_count_days_since_the_epoch_both_ways() {
        let (_dir, e) = engine();
        // 2024-03-01 is day 19,783: 54 years of 365 days, 13 leap days (1972…2020), then
        // 31 + 29 days of 2024 before March.
        let b = e
            .query(
                "select day_number(DATE '2024-03-01') as n, \
                 day_number(d) - day_number(DATE '2024-02-01') as in_feb, \
                 date_of_day_number(day_number(d) + 1) as next, \
                 date_of_day_number(arrow_cast(0, 'Int64')) as epoch \
                 from (values (DATE '2024-02-29'), (NULL)) t(d)",
                "test",
            )
            .unwrap();
        let b = arrow::compute::concat_batches(&b[0].schema(), &b).unwrap();
        let rows: Vec<Vec<String>> = (0..b.num_rows())
            .map(|r| {
                b.columns()
                    .iter()
                    .map(|c| arrow::util::display::array_value_to_string(c, r).unwrap())
                    .collect()
            })
            .collect();
        assert_eq!(
            rows,
            [
                ["19783", "28", "2024-03-01", "1970-01-01"],
                ["19783", "", "", "1970-01-01"],
            ]
        );
    }

    /// `Params::default()` as the JSON the pipeline passes.
    fn default_params_json() -> String {
        let p = crate::forecast::Params::default();
        format!(
            r#"{{"min_history_days": {}, "horizon_days": {}, "season_min_days": {},
            "season_max_days": {}, "season_min_corr": {}, "season_min_amplitude": {},
            "cliff_min_ratio": {}, "cliff_max_rss_share": {}, "cliff_min_segment_days": {},
            "flat_max_growth_30d": {}, "interval_z": {}, "full_history_days": {}}}"#,
            p.min_history_days,
            p.horizon_days,
            p.season_min_days,
            p.season_max_days,
            p.season_min_corr,
            p.season_min_amplitude,
            p.cliff_min_ratio,
            p.cliff_max_rss_share,
            p.cliff_min_segment_days,
            p.flat_max_growth_30d,
            p.interval_z,
            p.full_history_days
        )
    }

    #[test]
    fn the_forecast_takes_each_series_days_in_any_order() {
        use crate::forecast::{Input, Params, forecast};
        let (_dir, e) = engine();
        // Series a: 60 days of linear growth, listed newest first, plus a day without units
        // (missing, not zero); series b: 10 days, too short to forecast.
        let mut values: Vec<String> = (0..60)
            .rev()
            .map(|d| format!("('a', {d}, {})", 100 + 2 * d))
            .collect();
        values.push("('a', 61, NULL)".into());
        values.extend((0..10).map(|d| format!("('b', {d}, 5)")));
        let sql = format!(
            "select k, f['observed_days'], f['pattern'], f['refusal_reason'], \
             f['forecast_next_30d_units'] from (select k, consumption_forecast(\
             array_agg(named_struct('day', arrow_cast(d, 'Date32'), 'units', u)), \
             arrow_cast(62, 'Date32'), 1000.0, '{}') f \
             from (values {}) t(k, d, u) group by k) order by k",
            default_params_json(),
            values.join(", ")
        );
        let batches = e.query(&sql, "test").unwrap();
        let b = arrow::compute::concat_batches(&batches[0].schema(), &batches).unwrap();
        let days: Vec<i32> = (0..60).collect();
        let units: Vec<f64> = (0..60).map(|d| f64::from(100 + 2 * d)).collect();
        let expected = forecast(
            &Input {
                days: &days,
                units: &units,
                as_of: 62,
                commit_units: Some(1000.0),
            },
            &Params::default(),
        );
        let observed = b.column(1).as_primitive::<arrow::datatypes::Int32Type>();
        let pattern = b.column(2).as_string::<i32>();
        let refusal = b.column(3).as_string::<i32>();
        let next_30d = b.column(4).as_primitive::<Float64Type>();
        assert_eq!(observed.values().to_vec(), vec![60, 10]);
        assert_eq!(pattern.value(0), expected.pattern.unwrap().name());
        assert_eq!(pattern.value(0), "linear");
        assert!(refusal.is_null(0));
        // The same figure to the last bit as the sorted series gives.
        assert_eq!(next_30d.value(0), expected.next_30d_units.unwrap());
        assert!(pattern.is_null(1));
        assert_eq!(
            refusal.value(1),
            "10 days of usage history, fewer than the 30 required"
        );
    }

    #[test]
    fn the_forecast_names_the_usage_it_needs() {
        let (_dir, e) = engine();
        let err = e
            .query(
                &format!(
                    "select consumption_forecast(array_agg(arrow_cast(d, 'Date32')), \
                     arrow_cast(10, 'Date32'), 1.0, '{}') from (values (1), (2)) t(d)",
                    default_params_json()
                ),
                "test",
            )
            .unwrap_err();
        let err = format!("{err:?}");
        assert!(
            err.contains("usage must be a list of struct<day date, units number>"),
            "{err}"
        );
    }
}
