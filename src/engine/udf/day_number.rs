//! `day_number` and `date_of_day_number`: dates as integer day numbers and back. See the [module
//! doc](super).

use super::*;

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

/// `quarter_number(date)` → `year × 4 + quarter − 1` (2024-Q1 is 8096; consecutive quarters are
/// consecutive numbers), or (`inverse`) `date_of_quarter_number(n)` → the quarter's first day:
/// quarter arithmetic (cohorts, "quarters since", the last n quarters) in integers.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct QuarterNumber {
    signature: Signature,
    inverse: bool,
}

impl QuarterNumber {
    pub fn new(inverse: bool) -> Self {
        QuarterNumber {
            signature: Signature::new(TypeSignature::Any(1), Volatility::Immutable),
            inverse,
        }
    }
}

/// The quarter number of a day number (days since the epoch).
pub fn quarter_of_day(day: i32) -> i32 {
    let d = Day(day);
    d.year() * 4 + (d.month() as i32 - 1) / 3
}

/// The day number of a quarter number's first day.
pub fn day_of_quarter(quarter: i32) -> Option<i32> {
    Day::from_ymd(
        quarter.div_euclid(4),
        quarter.rem_euclid(4) as u32 * 3 + 1,
        1,
    )
    .map(|d| d.0)
}

impl ScalarUDFImpl for QuarterNumber {
    fn name(&self) -> &str {
        if self.inverse {
            "date_of_quarter_number"
        } else {
            "quarter_number"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        match (self.inverse, args) {
            (false, [DataType::Date32]) => Ok(DataType::Int32),
            (true, [t]) if t.is_integer() => Ok(DataType::Date32),
            (false, _) => plan_err!("quarter_number(date) takes one date, not {args:?}"),
            (true, _) => plan_err!("date_of_quarter_number(n) takes one integer, not {args:?}"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return exec_err!("{} takes one argument", self.name());
        };
        let inverse = self.inverse;
        let via = |a: &ArrayRef| -> DfResult<ArrayRef> {
            let opts = arrow::compute::CastOptions {
                safe: false,
                ..Default::default()
            };
            let ints = arrow::compute::cast_with_options(a, &DataType::Int32, &opts)?;
            let ints = ints.as_primitive::<arrow::datatypes::Int32Type>();
            let mut out = arrow::array::Int32Builder::with_capacity(ints.len());
            for v in ints.iter() {
                match (v, inverse) {
                    (None, _) => out.append_null(),
                    (Some(d), false) => out.append_value(quarter_of_day(d)),
                    (Some(q), true) => match day_of_quarter(q) {
                        Some(d) => out.append_value(d),
                        None => return exec_err!("date_of_quarter_number({q}): no such quarter"),
                    },
                }
            }
            let out: ArrayRef = Arc::new(out.finish());
            Ok(if inverse {
                arrow::compute::cast(&out, &DataType::Date32)?
            } else {
                out
            })
        };
        Ok(match arg {
            ColumnarValue::Array(a) => ColumnarValue::Array(via(a)?),
            ColumnarValue::Scalar(s) => ColumnarValue::Scalar(
                datafusion::common::ScalarValue::try_from_array(&via(&s.to_array()?)?, 0)?,
            ),
        })
    }
}
