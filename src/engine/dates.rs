//! Date arithmetic as integer arithmetic.
//!
//! Arrow computes two common date operations through a calendar date time per value, about
//! 30–70 ns a row: the cast of a timestamp to `Date32` (with a time-zone lookup per value when
//! the type has a zone), and a date plus or minus an interval. Over the 66 M usage rows and the
//! millions of joined score-date rows of the Tier-1 scores that was most of `usage_weekly`'s
//! time and a sizeable part of `customer_health_log`'s. [`FastDates`], an optimizer rule,
//! rewrites every such expression in a plan — however it was spelt (`CAST(x AS DATE)`,
//! `arrow_cast(x, 'Date32')`, `d - interval '7 days'`) or added by type coercion — when the
//! integer form is exact:
//! - a timestamp without a zone or in UTC, cast to a date → [`UtcDate`], a floor division of
//!   the epoch count by the units in a day; timestamps in other zones keep Arrow's cast;
//! - a date plus or minus an interval literal of whole days (no months, no sub-day part) → the
//!   day count plus or minus those days; month intervals keep Arrow's calendar arithmetic.
//!
//! Results are the same dates for every value Arrow converts (tests compare both on the edges).

use std::sync::Arc;

use arrow::array::{Array, AsArray, Date32Array};
use arrow::datatypes::{
    ArrowTimestampType, DataType, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result as DfResult, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::expr::{BinaryExpr, Cast};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{
    ColumnarValue, Expr, ExprSchemable, LogicalPlan, Operator, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature, TypeSignature, Volatility,
};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};
use datafusion::prelude::{cast, lit};

/// `utc_date(ts)`: the date of a timestamp without a time zone or in UTC.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct UtcDate {
    signature: Signature,
}

impl Default for UtcDate {
    fn default() -> Self {
        UtcDate {
            signature: Signature::new(TypeSignature::Any(1), Volatility::Immutable),
        }
    }
}

/// Whether a timestamp of this type has its date by floor division: no zone, or UTC.
fn is_utc_timestamp(t: &DataType) -> bool {
    matches!(t, DataType::Timestamp(_, None))
        || matches!(t, DataType::Timestamp(_, Some(tz))
            if ["UTC", "+00:00", "Etc/UTC"].iter().any(|u| tz.eq_ignore_ascii_case(u)))
}

fn units_per_day(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 86_400,
        TimeUnit::Millisecond => 86_400_000,
        TimeUnit::Microsecond => 86_400_000_000,
        TimeUnit::Nanosecond => 86_400_000_000_000,
    }
}

/// The dates of a UTC timestamp array (nulls stay null). A day count beyond `Date32` (possible
/// from seconds and milliseconds) is an error, as in Arrow's cast.
fn dates(a: &dyn Array) -> DfResult<Date32Array> {
    fn by_unit<T: ArrowTimestampType>(a: &dyn Array, unit: TimeUnit) -> DfResult<Date32Array> {
        let per_day = units_per_day(unit);
        a.as_primitive::<T>().try_unary(|x| {
            i32::try_from(x.div_euclid(per_day)).or_else(|_| {
                exec_err!("utc_date: timestamp {x} ({unit:?}) is beyond the dates Date32 holds")
            })
        })
    }
    match a.data_type() {
        DataType::Timestamp(u @ TimeUnit::Second, _) => by_unit::<TimestampSecondType>(a, *u),
        DataType::Timestamp(u @ TimeUnit::Millisecond, _) => {
            by_unit::<TimestampMillisecondType>(a, *u)
        }
        DataType::Timestamp(u @ TimeUnit::Microsecond, _) => {
            by_unit::<TimestampMicrosecondType>(a, *u)
        }
        DataType::Timestamp(u @ TimeUnit::Nanosecond, _) => {
            by_unit::<TimestampNanosecondType>(a, *u)
        }
        t => exec_err!("utc_date takes a timestamp, not {t}"),
    }
}

impl ScalarUDFImpl for UtcDate {
    fn name(&self) -> &str {
        "utc_date"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> DfResult<DataType> {
        match args {
            [t] if is_utc_timestamp(t) => Ok(DataType::Date32),
            _ => plan_err!("utc_date(ts) takes one UTC timestamp, not {args:?}"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return exec_err!("utc_date takes one argument");
        };
        Ok(match arg {
            ColumnarValue::Array(a) => ColumnarValue::Array(Arc::new(dates(a.as_ref())?)),
            ColumnarValue::Scalar(s) => ColumnarValue::Scalar(ScalarValue::try_from_array(
                &dates(s.to_array()?.as_ref())?,
                0,
            )?),
        })
    }
}

/// The whole days of an interval literal with no months and no sub-day part.
fn whole_days(e: &Expr) -> Option<i64> {
    match e {
        Expr::Literal(ScalarValue::IntervalMonthDayNano(Some(v)), _)
            if v.months == 0 && v.nanoseconds == 0 =>
        {
            Some(i64::from(v.days))
        }
        Expr::Literal(ScalarValue::IntervalDayTime(Some(v)), _) if v.milliseconds == 0 => {
            Some(i64::from(v.days))
        }
        _ => None,
    }
}

/// Rewrites date arithmetic Arrow does per value through the calendar into integer arithmetic
/// (see the module documentation), keeping every output name.
#[derive(Debug, Default)]
pub struct FastDates;

impl OptimizerRule for FastDates {
    fn name(&self) -> &str {
        "gtmos_fast_dates"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> DfResult<Transformed<LogicalPlan>> {
        // The fields the node's expressions can name: its inputs', or a scan's whole source
        // (filters pushed into a scan may name columns its projection dropped).
        let mut schema = merge_schema(&plan.inputs());
        if let LogicalPlan::TableScan(scan) = &plan {
            schema.merge(&DFSchema::try_from_qualified_schema(
                scan.table_name.clone(),
                &scan.source.schema(),
            )?);
        }
        let type_of = |e: &Expr| e.get_type(&schema).ok();
        let udf = Arc::new(ScalarUDF::from(UtcDate::default()));
        let names = NamePreserver::new(&plan);
        plan.map_expressions(|expr| {
            let name = names.save(&expr);
            let rewritten = expr.transform_up(|e| match e {
                Expr::Cast(Cast { expr, field })
                    if field.data_type() == &DataType::Date32
                        && type_of(&expr).is_some_and(|t| is_utc_timestamp(&t)) =>
                {
                    Ok(Transformed::yes(udf.call(vec![*expr])))
                }
                Expr::BinaryExpr(BinaryExpr { left, op, right })
                    if matches!(op, Operator::Plus | Operator::Minus)
                        && type_of(&left) == Some(DataType::Date32)
                        && let Some(days) = whole_days(&right) =>
                {
                    // Int64 day counts, cast back to Date32: a result beyond Date32 is an
                    // error, as in Arrow's calendar arithmetic.
                    let day_count = Expr::BinaryExpr(BinaryExpr::new(
                        Box::new(cast(*left, DataType::Int64)),
                        op,
                        Box::new(lit(days)),
                    ));
                    Ok(Transformed::yes(cast(day_count, DataType::Date32)))
                }
                e => Ok(Transformed::no(e)),
            })?;
            Ok(Transformed::new_transformed(
                name.restore(rewritten.data),
                rewritten.transformed,
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{ArrayRef, RecordBatch, TimestampMicrosecondArray};
    use arrow::datatypes::{Date32Type, Field, Schema};

    use super::*;
    use crate::engine::{Engine, EngineConfig, SCRATCH};

    /// Midnights, a microsecond either side, before the epoch, and the far past Arrow converts.
    const EDGES: [i64; 9] = [
        0,
        -1,
        1,
        86_400_000_000 - 1,
        86_400_000_000,
        -86_400_000_000,
        -86_400_000_000 - 1,
        1_767_225_599_999_999,
        -8_210_298_412_800_000_000,
    ];

    /// An engine with `scratch.t` holding one column.
    fn engine_with_column(name: &str, column: ArrayRef) -> (Engine, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let e = Engine::new(&EngineConfig::default(), 1, dir.path(), 64 << 20).unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new(
            name,
            column.data_type().clone(),
            true,
        )]));
        let batch = RecordBatch::try_new(schema.clone(), vec![column]).unwrap();
        e.register_batches(SCRATCH, "t", schema, vec![batch])
            .unwrap();
        (e, dir)
    }

    /// `scratch.t(ts)`: the edges as microseconds in zone `tz`, and a null.
    fn engine_with(tz: Option<&str>) -> (Engine, tempfile::TempDir) {
        let ts = TimestampMicrosecondArray::from(
            EDGES
                .iter()
                .map(|&x| Some(x))
                .chain([None])
                .collect::<Vec<_>>(),
        )
        .with_timezone_opt(tz);
        engine_with_column("ts", Arc::new(ts))
    }

    fn plan_of(e: &Engine, sql: &str) -> String {
        let plan = e.query(&format!("explain {sql}"), "test").unwrap();
        arrow::util::pretty::pretty_format_batches(&plan)
            .unwrap()
            .to_string()
    }

    fn dates_of(e: &Engine, sql: &str) -> Vec<Option<i32>> {
        e.query(sql, "test")
            .unwrap()
            .iter()
            .flat_map(|b| b.column(0).as_primitive::<Date32Type>().iter())
            .collect()
    }

    #[test]
    fn the_rewritten_cast_gives_arrows_dates_for_every_unit_and_utc_spelling() {
        for tz in [None, Some("UTC"), Some("+00:00")] {
            let (e, _dir) = engine_with(tz);
            let zone = tz.map_or("None".to_string(), |z| format!("Some(\"{z}\")"));
            for (unit, time_unit, per_second) in [
                ("Second", TimeUnit::Second, 1e-6),
                ("Millisecond", TimeUnit::Millisecond, 1e-3),
                ("Microsecond", TimeUnit::Microsecond, 1.0),
                ("Nanosecond", TimeUnit::Nanosecond, 1e3),
            ] {
                // Nanoseconds span ±292 years only: the far past is left out of theirs.
                let fits = |x: i64| (x as f64 * per_second).abs() < 9.2e18;
                let typed = format!("arrow_cast(ts, 'Timestamp({unit}, {zone})')");
                let filter = format!(
                    "where ts is null or abs(arrow_cast(ts, 'Int64')) < {}",
                    (9.2e18 / per_second).min(9.2e18) as i64
                );
                // Arrow's own answer: the kept values in this unit, cast to dates.
                let kept: ArrayRef = Arc::new(
                    TimestampMicrosecondArray::from(
                        EDGES
                            .iter()
                            .copied()
                            .filter(|&x| fits(x))
                            .map(Some)
                            .chain([None])
                            .collect::<Vec<_>>(),
                    )
                    .with_timezone_opt(tz),
                );
                let in_unit =
                    arrow::compute::cast(&kept, &DataType::Timestamp(time_unit, tz.map(Arc::from)))
                        .unwrap();
                let want: Vec<Option<i32>> = arrow::compute::cast(&in_unit, &DataType::Date32)
                    .unwrap()
                    .as_primitive::<Date32Type>()
                    .iter()
                    .collect();
                for spelling in [
                    format!("cast({typed} as date)"),
                    format!("arrow_cast({typed}, 'Date32')"),
                ] {
                    let sql = format!("select {spelling} as d from scratch.t {filter}");
                    let plan = plan_of(&e, &sql);
                    assert!(plan.contains("utc_date"), "{sql}: {plan}");
                    assert!(!plan.contains("AS Date32"), "{sql}: {plan}");
                    assert_eq!(dates_of(&e, &sql), want, "{sql}");
                }
            }
        }
    }

    #[test]
    fn a_timestamp_in_another_zone_keeps_arrows_local_date() {
        let (e, _dir) = engine_with(Some("America/New_York"));
        // The UTC midnight of 2 January 1970 is still 1 January in New York.
        let sql =
            "select cast(ts as date) from scratch.t where arrow_cast(ts, 'Int64') = 86400000000";
        let plan = plan_of(&e, sql);
        assert!(!plan.contains("utc_date"), "{plan}");
        assert_eq!(dates_of(&e, sql), vec![Some(0)]);
    }

    #[test]
    fn output_names_and_group_keys_survive_the_rewrite() {
        let (e, _dir) = engine_with(None);
        let out = e
            .query(
                "select cast(ts as date), count(*) as n from scratch.t \
                 group by cast(ts as date) order by 1 nulls first",
                "test",
            )
            .unwrap();
        let schema = out[0].schema();
        assert!(!schema.field(0).name().contains("utc_date"), "{schema:?}");
        assert_eq!(schema.field(0).data_type(), &DataType::Date32);
        let rows: usize = out.iter().map(|b| b.num_rows()).sum();
        // Ten values on seven dates: 1969-12-30 and -31, 1970-01-01 and -02, 2025-12-31, the
        // far past, and null.
        assert_eq!(rows, 7);
    }

    #[test]
    fn dates_plus_or_minus_whole_days_are_arrows_dates() {
        use arrow::array::{Date32Array, IntervalMonthDayNanoArray};
        use arrow::datatypes::IntervalMonthDayNano;
        // The epoch, a day before it, leap days (2024-02-28, 2023-02-28), the far past, null.
        let days = Date32Array::from(vec![
            Some(0),
            Some(-1),
            Some(19_781),
            Some(19_416),
            Some(-95_000_000),
            None,
        ]);
        let (e, _dir) = engine_with_column("d", Arc::new(days.clone()));
        for (sql_op, n) in [("+", 1), ("-", 1), ("+", 7), ("-", 30), ("+", 366)] {
            let interval =
                IntervalMonthDayNanoArray::new_scalar(IntervalMonthDayNano::new(0, n, 0));
            let expected = if sql_op == "+" {
                arrow::compute::kernels::numeric::add(&days, &interval)
            } else {
                arrow::compute::kernels::numeric::sub(&days, &interval)
            }
            .unwrap();
            let want: Vec<Option<i32>> = expected.as_primitive::<Date32Type>().iter().collect();
            let sql = format!("select d {sql_op} interval '{n} days' from scratch.t");
            let plan = plan_of(&e, &sql);
            assert!(plan.contains("CAST(d@0 AS Int64)"), "{sql}: {plan}");
            assert_eq!(dates_of(&e, &sql), want, "{sql}");
        }
        // A month, or part of a day, keeps Arrow's calendar arithmetic.
        for interval in ["1 month", "36 hours"] {
            let sql = format!("select d - interval '{interval}' from scratch.t where d > 0");
            assert!(!plan_of(&e, &sql).contains("AS Int64)"), "{sql}");
        }
        assert_eq!(
            dates_of(
                &e,
                "select d + interval '1 month' from scratch.t where d = 19781"
            ),
            vec![Some(19_781 + 29)],
            "2024-02-28 + 1 month = 2024-03-28"
        );
    }

    #[test]
    fn a_timestamp_beyond_date32_is_an_error_not_a_wrapped_date() {
        use arrow::array::{TimestampMillisecondArray, TimestampSecondArray};
        for far in [
            Arc::new(TimestampSecondArray::from(vec![i64::MAX / 2])) as ArrayRef,
            Arc::new(TimestampMillisecondArray::from(vec![i64::MAX / 2])) as ArrayRef,
        ] {
            let (e, _dir) = engine_with_column("ts", far);
            let err = e
                .query("select cast(ts as date) from scratch.t", "test")
                .unwrap_err();
            let err = format!("{err:?}");
            assert!(err.contains("beyond the dates Date32 holds"), "{err}");
        }
    }
}
