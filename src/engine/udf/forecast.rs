//! `consumption_forecast`: the TOOL-004 core over one series, as a UDF. See the [module
//! doc](super).

use super::*;

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
