//! `cohort_retention_forecast`: the TOOL-013 core over a whole triangle of cohort curves, as a
//! UDF. See the [module doc](super).

use super::*;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CohortRetentionForecast {
    signature: Signature,
}

impl CohortRetentionForecast {
    pub fn new() -> Self {
        CohortRetentionForecast {
            signature: Signature::new(TypeSignature::Any(2), Volatility::Immutable),
        }
    }

    /// The positions of `cohort`, `k`, `value` and `weight` in the cells' struct.
    fn cell_fields(t: &DataType) -> Option<Vec<usize>> {
        list_struct_fields(t, &["cohort", "k", "value", "weight"], DataType::is_numeric)
    }

    fn item() -> Field {
        let f = |name: &str, t: DataType| Field::new(name, t, true);
        Field::new(
            "item",
            DataType::Struct(Fields::from(vec![
                f("cohort", DataType::Int32),
                f("k", DataType::Int32),
                f("value", DataType::Float64),
                f("low", DataType::Float64),
                f("high", DataType::Float64),
                f("factor", DataType::Float64),
                f("tail", DataType::Boolean),
                f("refusal_reason", DataType::Utf8),
            ])),
            true,
        )
    }
}

impl Default for CohortRetentionForecast {
    fn default() -> Self {
        Self::new()
    }
}

impl ScalarUDFImpl for CohortRetentionForecast {
    fn name(&self) -> &str {
        "cohort_retention_forecast"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        const USAGE: &str = "cohort_retention_forecast(cells list<struct<cohort int, k int, value number, weight number>>, params json)";
        match args {
            [cells, _] if Self::cell_fields(cells).is_some() => {
                Ok(DataType::List(Arc::new(Self::item())))
            }
            _ => plan_err!("{USAGE}, not {args:?}"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        use crate::strategy::cohort_forecast::{Cell, Params, forecast};
        use arrow::array::{BooleanBuilder, Float64Builder, Int32Builder, StringBuilder};
        let n = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let (Some(at), DataType::List(item) | DataType::LargeList(item)) = (
            Self::cell_fields(arrays[0].data_type()),
            arrays[0].data_type(),
        ) else {
            return exec_err!(
                "cohort_retention_forecast: cells are {}",
                arrays[0].data_type()
            );
        };
        let cells = cast(&arrays[0], &DataType::List(item.clone()))?;
        let cells = cells.as_list::<i32>();
        let entries = cells.values().as_struct();
        let column = |i: usize, t: &DataType| cast(entries.column(at[i]), t);
        let (cohort, k) = (column(0, &DataType::Int32)?, column(1, &DataType::Int32)?);
        let (value, weight) = (
            column(2, &DataType::Float64)?,
            column(3, &DataType::Float64)?,
        );
        let cohort = cohort.as_primitive::<arrow::datatypes::Int32Type>();
        let k = k.as_primitive::<arrow::datatypes::Int32Type>();
        let value = value.as_primitive::<Float64Type>();
        let weight = weight.as_primitive::<Float64Type>();
        let params = cast(&arrays[1], &DataType::Utf8)?;
        let params = params.as_string::<i32>();

        let (mut c, mut kk) = (Int32Builder::new(), Int32Builder::new());
        let (mut v, mut lo, mut hi, mut fa) = (
            Float64Builder::new(),
            Float64Builder::new(),
            Float64Builder::new(),
            Float64Builder::new(),
        );
        let (mut tail, mut refusal) = (BooleanBuilder::new(), StringBuilder::new());
        let mut offsets = vec![0i32];
        let mut nulls = Vec::with_capacity(n);
        for i in 0..n {
            if cells.is_null(i) || params.is_null(i) {
                nulls.push(false);
                offsets.push(*offsets.last().expect("starts at 0"));
                continue;
            }
            let p: Params = serde_json::from_str(params.value(i)).map_err(|e| {
                datafusion::error::DataFusionError::Execution(format!(
                    "cohort_retention_forecast: params {}: {e}",
                    params.value(i)
                ))
            })?;
            if let Err(e) = p.validate() {
                return exec_err!("cohort_retention_forecast: {e}");
            }
            let (start, end) = (
                cells.value_offsets()[i] as usize,
                cells.value_offsets()[i + 1] as usize,
            );
            // A cell with a null part is not an observation (missing, not zero).
            let triangle: Vec<Cell> = (start..end)
                .filter(|j| {
                    entries.is_valid(*j)
                        && cohort.is_valid(*j)
                        && k.is_valid(*j)
                        && value.is_valid(*j)
                        && weight.is_valid(*j)
                })
                .map(|j| Cell {
                    cohort: cohort.value(j),
                    k: k.value(j),
                    value: value.value(j),
                    weight: weight.value(j),
                })
                .collect();
            let out = forecast(&triangle, &p);
            for x in &out {
                c.append_value(x.cohort);
                kk.append_value(x.k);
                v.append_option(x.value);
                lo.append_option(x.low);
                hi.append_option(x.high);
                fa.append_option(x.factor);
                tail.append_value(x.tail);
                refusal.append_option(x.refusal.as_deref());
            }
            nulls.push(true);
            offsets.push(offsets.last().expect("starts at 0") + out.len() as i32);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(c.finish()),
            Arc::new(kk.finish()),
            Arc::new(v.finish()),
            Arc::new(lo.finish()),
            Arc::new(hi.finish()),
            Arc::new(fa.finish()),
            Arc::new(tail.finish()),
            Arc::new(refusal.finish()),
        ];
        list_of_structs(Self::item(), columns, offsets, nulls)
    }
}
