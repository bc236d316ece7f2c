//! gtmos' functions inside DataFusion: Rust kernels for per-series math SQL expresses badly
//! (SPEC §2), registered with every session by
//! [`super::Engine::new`] (and, in a cluster, by its scheduler and executors).
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
//! - `cohort_retention_forecast(cells, params)`: the TOOL-013 core
//!   ([`crate::strategy::cohort_forecast`]) over a whole triangle of cohort curves (`cells` a
//!   list of `struct<cohort int, k int, value number, weight number>` in any order, as from
//!   `array_agg(named_struct(…))` over every cohort × quarter), `params` a JSON object of its
//!   `Params`. Returns the list of projected cells (cohort, k, value, low, high, factor, tail)
//!   and refusals (refusal_reason, no figures), to `unnest`.
//! - `gp_decomposition(cells)`: the TOOL-015 core ([`crate::strategy::gross_profit`]) over one
//!   customer-SKU's quarters (`cells` a list of `struct<quarter int, tier varchar,
//!   revenue_cents bigint, billed_units number, months_without_cost int, units number,
//!   cost_cents bigint>`, one per quarter × deployment tier, the quarter's revenue fields
//!   repeated on each; a quarter without any backend cost has one cell with a null tier).
//!   Returns one item per quarter: the prior quarter's GP and the pricing, utilisation,
//!   backend-cost and tier-mix effects as decimal(18,2), or the refusal_reason and no figures.
//! - `quarter_number(date)`: `year × 4 + quarter − 1` as an `int` (consecutive quarters are
//!   consecutive numbers), and `date_of_quarter_number(n)` back to the quarter's first day:
//!   cohorts, quarters since signup and "the last n quarters" in integer arithmetic.

mod cohort_forecast;
mod day_number;
mod forecast;
mod gp_decomposition;
mod is_finite;
mod money_mul;
mod schedule;
#[cfg(test)]
mod tests;
mod trailing_median;

pub use cohort_forecast::CohortRetentionForecast;
pub use day_number::{DateNumber, DateUnit};
pub use forecast::ConsumptionForecast;
pub use gp_decomposition::GpDecomposition;
pub use is_finite::IsFiniteValue;
pub use money_mul::MoneyMul;
pub use schedule::{RatableSchedule, schedule_weights};
pub use trailing_median::TrailingMedian;

// The imports the function files share (each reads them with `use super::*`).
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

use crate::calendar::{Day, days_in_month, month_start, overlap_days};
use crate::money::{allocate, div_round};

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// gtmos' scalar functions (the engine adds `key_hash` and `utc_date`: [`super::functions`]).
pub fn scalar_functions() -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::from(RatableSchedule::new()),
        ScalarUDF::from(MoneyMul::new()),
        ScalarUDF::from(ConsumptionForecast::new()),
        ScalarUDF::from(DateNumber::new(DateUnit::Day, false)),
        ScalarUDF::from(DateNumber::new(DateUnit::Day, true)),
        ScalarUDF::from(DateNumber::new(DateUnit::Quarter, false)),
        ScalarUDF::from(DateNumber::new(DateUnit::Quarter, true)),
        ScalarUDF::from(CohortRetentionForecast::new()),
        ScalarUDF::from(GpDecomposition::new()),
        ScalarUDF::from(IsFiniteValue::new()),
    ]
}

/// gtmos' window functions.
pub fn window_functions() -> Vec<WindowUDF> {
    vec![WindowUDF::from(TrailingMedian::new())]
}

/// The positions of `names` in the struct items of a list type, each field passing `ok`; None
/// when `t` is not a list of structs holding them all.
fn list_struct_fields(
    t: &DataType,
    names: &[&str],
    ok: impl Fn(&DataType) -> bool,
) -> Option<Vec<usize>> {
    let (DataType::List(item) | DataType::LargeList(item)) = t else {
        return None;
    };
    let DataType::Struct(fields) = item.data_type() else {
        return None;
    };
    names
        .iter()
        .map(|name| {
            let (pos, f) = fields.find(name)?;
            ok(f.data_type()).then_some(pos)
        })
        .collect()
}

/// A list of structs per row: `item` the list's struct field, `columns` its fields' values over
/// all rows, `offsets` where each row's items start (and the last ends), `valid` per row.
fn list_of_structs(
    item: Field,
    columns: Vec<ArrayRef>,
    offsets: Vec<i32>,
    valid: Vec<bool>,
) -> DfResult<ColumnarValue> {
    let DataType::Struct(fields) = item.data_type().clone() else {
        return exec_err!(
            "a list of structs needs a struct item, not {}",
            item.data_type()
        );
    };
    let items = StructArray::try_new(fields, columns, None)?;
    let list = ListArray::try_new(
        Arc::new(item),
        OffsetBuffer::new(offsets.into()),
        Arc::new(items),
        Some(NullBuffer::from(valid)),
    )?;
    Ok(ColumnarValue::Array(Arc::new(list)))
}
