//! `gp_decomposition`: the TOOL-015 core over one customer-SKU's quarters, as a UDF. See the
//! [module doc](super).

use super::*;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct GpDecomposition {
    signature: Signature,
}

/// The cells' fields, in the order the function reads them.
const CELL: [&str; 7] = [
    "quarter",
    "tier",
    "revenue_cents",
    "billed_units",
    "months_without_cost",
    "units",
    "cost_cents",
];

/// The money fields of each result item, Decimal128(18, 2).
const MONEY: [&str; 5] = [
    "prior_gp_usd",
    "pricing_usd",
    "utilisation_usd",
    "backend_cost_usd",
    "tier_mix_usd",
];

impl GpDecomposition {
    pub fn new() -> Self {
        GpDecomposition {
            signature: Signature::new(TypeSignature::Any(1), Volatility::Immutable),
        }
    }

    /// The positions of [`CELL`]'s fields in the cells' struct.
    fn cell_fields(t: &DataType) -> Option<Vec<usize>> {
        list_struct_fields(t, &CELL, |_| true)
    }

    fn item() -> Field {
        let f = |name: &str, t: DataType| Field::new(name, t, true);
        let mut fields = vec![f("quarter", DataType::Int32)];
        fields.extend(MONEY.iter().map(|m| f(m, DataType::Decimal128(18, 2))));
        fields.push(f("refusal_reason", DataType::Utf8));
        Field::new("item", DataType::Struct(Fields::from(fields)), true)
    }
}

impl Default for GpDecomposition {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for GpDecomposition {
    fn name(&self) -> &str {
        "gp_decomposition"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        const USAGE: &str = "gp_decomposition(cells list<struct<quarter int, tier varchar, revenue_cents bigint, billed_units number, months_without_cost int, units number, cost_cents bigint>>)";
        match args {
            [cells] if Self::cell_fields(cells).is_some() => {
                Ok(DataType::List(Arc::new(Self::item())))
            }
            _ => plan_err!("{USAGE}, not {args:?}"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        use crate::strategy::gross_profit::{Quarter, Tier, decompose_all};
        use arrow::array::{Decimal128Builder, Int32Builder, StringBuilder};
        use arrow::datatypes::Int32Type;
        use std::collections::BTreeMap;
        let n = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (Some(at), DataType::List(item) | DataType::LargeList(item)) = (
            Self::cell_fields(arrays[0].data_type()),
            arrays[0].data_type(),
        ) else {
            return exec_err!("gp_decomposition: cells are {}", arrays[0].data_type());
        };
        let cells = cast(&arrays[0], &DataType::List(item.clone()))?;
        let cells = cells.as_list::<i32>();
        let entries = cells.values().as_struct();
        let column = |i: usize, t: &DataType| cast(entries.column(at[i]), t);
        let quarter = column(0, &DataType::Int32)?;
        let tier = column(1, &DataType::Utf8)?;
        let revenue = column(2, &DataType::Int64)?;
        let billed = column(3, &DataType::Float64)?;
        let missing = column(4, &DataType::Int32)?;
        let units = column(5, &DataType::Float64)?;
        let cost = column(6, &DataType::Int64)?;
        let quarter = quarter.as_primitive::<Int32Type>();
        let tier = tier.as_string::<i32>();
        let revenue = revenue.as_primitive::<Int64Type>();
        let billed = billed.as_primitive::<Float64Type>();
        let missing = missing.as_primitive::<Int32Type>();
        let units = units.as_primitive::<Float64Type>();
        let cost = cost.as_primitive::<Int64Type>();

        let mut q_out = Int32Builder::new();
        let mut money: Vec<Decimal128Builder> = MONEY
            .iter()
            .map(|_| Decimal128Builder::new().with_precision_and_scale(18, 2))
            .collect::<Result<_, _>>()?;
        let mut refusal = StringBuilder::new();
        let mut offsets = vec![0i32];
        let mut nulls = Vec::with_capacity(n);
        for i in 0..n {
            if cells.is_null(i) {
                nulls.push(false);
                offsets.push(*offsets.last().expect("starts at 0"));
                continue;
            }
            let (start, end) = (
                cells.value_offsets()[i] as usize,
                cells.value_offsets()[i + 1] as usize,
            );
            // A quarter's revenue fields repeat on each of its tier cells; a quarter with no
            // backend cost at all has one cell with a null tier.
            let mut quarters: BTreeMap<i32, Quarter> = BTreeMap::new();
            for j in start..end {
                if !entries.is_valid(j) || quarter.is_null(j) || revenue.is_null(j) {
                    continue;
                }
                let q = quarters.entry(quarter.value(j)).or_insert_with(|| Quarter {
                    quarter: quarter.value(j),
                    revenue_cents: revenue.value(j),
                    billed_units: if billed.is_valid(j) {
                        billed.value(j)
                    } else {
                        0.0
                    },
                    months_without_cost: if missing.is_valid(j) {
                        missing.value(j)
                    } else {
                        0
                    },
                    tiers: Vec::new(),
                });
                if tier.is_valid(j) && units.is_valid(j) && cost.is_valid(j) {
                    q.tiers.push(Tier {
                        tier: tier.value(j).to_string(),
                        units: units.value(j),
                        cost_cents: cost.value(j),
                    });
                }
            }
            let quarters: Vec<Quarter> = quarters.into_values().collect();
            let out = decompose_all(&quarters);
            for (q, result) in &out {
                q_out.append_value(*q);
                match result {
                    Ok(e) => {
                        let values = [
                            e.prior_gp,
                            e.pricing,
                            e.utilisation,
                            e.backend_cost,
                            e.tier_mix,
                        ];
                        for (b, v) in money.iter_mut().zip(values) {
                            b.append_value(v as i128);
                        }
                        refusal.append_null();
                    }
                    Err(why) => {
                        money.iter_mut().for_each(|b| b.append_null());
                        refusal.append_value(why);
                    }
                }
            }
            nulls.push(true);
            offsets.push(offsets.last().expect("starts at 0") + out.len() as i32);
        }
        let mut columns: Vec<ArrayRef> = vec![Arc::new(q_out.finish())];
        columns.extend(money.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        columns.push(Arc::new(refusal.finish()));
        list_of_structs(Self::item(), columns, offsets, nulls)
    }
}
