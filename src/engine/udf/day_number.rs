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
