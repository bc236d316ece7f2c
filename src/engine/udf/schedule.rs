//! `ratable_schedule`: the recognition schedule of an amount over a term, in exact cents. See the
//! [module doc](super).

use super::*;

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
