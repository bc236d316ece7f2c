//! `day_number` / `date_of_day_number` and `quarter_number` / `date_of_quarter_number`: dates as
//! integer day or quarter numbers and back. See the [module doc](super).

use super::*;

/// What a date number counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DateUnit {
    /// Days since the epoch.
    Day,
    /// `year × 4 + quarter − 1` (2024-Q1 is 8096; consecutive quarters are consecutive numbers).
    Quarter,
}

/// `day_number(date)` / `quarter_number(date)` → the number, or (`inverse`)
/// `date_of_day_number(n)` / `date_of_quarter_number(n)` → the day, or the quarter's first day.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DateNumber {
    signature: Signature,
    unit: DateUnit,
    inverse: bool,
}

impl DateNumber {
    pub fn new(unit: DateUnit, inverse: bool) -> Self {
        DateNumber {
            signature: Signature::new(TypeSignature::Any(1), Volatility::Immutable),
            unit,
            inverse,
        }
    }
}

/// The quarter number of a day number (days since the epoch).
fn quarter_of_day(day: i32) -> i32 {
    let d = Day(day);
    d.year() * 4 + (d.month() as i32 - 1) / 3
}

/// The day number of a quarter number's first day.
fn day_of_quarter(quarter: i32) -> Option<i32> {
    Day::from_ymd(
        quarter.div_euclid(4),
        quarter.rem_euclid(4) as u32 * 3 + 1,
        1,
    )
    .map(|d| d.0)
}

impl ScalarUDFImpl for DateNumber {
    fn name(&self) -> &str {
        match (self.unit, self.inverse) {
            (DateUnit::Day, false) => "day_number",
            (DateUnit::Day, true) => "date_of_day_number",
            (DateUnit::Quarter, false) => "quarter_number",
            (DateUnit::Quarter, true) => "date_of_quarter_number",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        match (self.inverse, args) {
            (false, [DataType::Date32]) => Ok(DataType::Int32),
            (true, [t]) if t.is_integer() => Ok(DataType::Date32),
            (false, _) => plan_err!("{}(date) takes one date, not {args:?}", self.name()),
            (true, _) => plan_err!("{}(n) takes one integer, not {args:?}", self.name()),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return exec_err!("{} takes one argument", self.name());
        };
        let (unit, inverse, name) = (self.unit, self.inverse, self.name());
        // Date32 is an i32 day count: day numbers are a reinterpretation, checked for integers
        // that do not fit; quarter numbers are computed per value.
        let via = |a: &ArrayRef| -> DfResult<ArrayRef> {
            let opts = arrow::compute::CastOptions {
                safe: false,
                ..Default::default()
            };
            let ints = arrow::compute::cast_with_options(a, &DataType::Int32, &opts)?;
            let ints = if unit == DateUnit::Day {
                ints
            } else {
                let mut out = arrow::array::Int32Builder::with_capacity(ints.len());
                for v in ints.as_primitive::<arrow::datatypes::Int32Type>().iter() {
                    match (v, inverse) {
                        (None, _) => out.append_null(),
                        (Some(d), false) => out.append_value(quarter_of_day(d)),
                        (Some(q), true) => match day_of_quarter(q) {
                            Some(d) => out.append_value(d),
                            None => return exec_err!("{name}({q}): no such quarter"),
                        },
                    }
                }
                Arc::new(out.finish()) as ArrayRef
            };
            let to = if inverse {
                DataType::Date32
            } else {
                DataType::Int32
            };
            Ok(arrow::compute::cast_with_options(&ints, &to, &opts)?)
        };
        Ok(match arg {
            ColumnarValue::Array(a) => ColumnarValue::Array(via(a)?),
            ColumnarValue::Scalar(s) => ColumnarValue::Scalar(
                datafusion::common::ScalarValue::try_from_array(&via(&s.to_array()?)?, 0)?,
            ),
        })
    }
}
