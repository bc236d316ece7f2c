//! `money_mul`: units × a `decimal(18,6)` price, in exact billionths. See the [module doc](super).

use super::*;

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
