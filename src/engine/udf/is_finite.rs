//! `is_finite_value`: false for a NaN or infinite float. See the [module doc](super).

use super::*;

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
