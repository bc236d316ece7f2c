//! What the scheduler changes in a physical plan so that its tasks, run apart, give the rows
//! one process gives: [`OuterNestedLoopInOneTask`] and [`ReversedWindows`].

use std::sync::Arc;

use arrow::compute::SortOptions;
use arrow::datatypes::{DataType, FieldRef};
use datafusion::common::JoinType;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::function::{
    ExpressionArgs, PartitionEvaluatorArgs, WindowUDFFieldArgs,
};
use datafusion::logical_expr::{
    LimitEffect, PartitionEvaluator, ReversedUDWF, Signature, WindowUDF, WindowUDFImpl,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::joins::NestedLoopJoinExec;
use datafusion::physical_plan::windows::{
    BoundedWindowAggExec, StandardWindowExpr, WindowAggExec, WindowExpr, WindowUDFExpr,
    create_udwf_window_expr,
};
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};

/// Turns a nested-loop join that emits rows for its build (left) side — unmatched rows of a
/// `LEFT` join, semi, anti and mark rows — around, so that those rows come from the probe side.
///
/// In one process the partitions of such a join share which build rows matched, and the last
/// one emits the rest. On a cluster each partition is a separate task that sees only its own
/// matches, so every task emitted the unmatched build rows again: `a LEFT JOIN b ON true`
/// returned `a`'s row once per partition of `b` (Ballista 55 guards hash joins this way, not
/// nested-loop joins; a coalesced probe side does not help, as its planner slices it per task
/// again). Swapped, the preserved side is the probe side, whose every row is in one task, and
/// the other side is read whole by each task. A `FULL` join preserves both sides: it cannot
/// run exactly this way, and fails with a message rather than give wrong rows.
#[derive(Debug)]
pub(super) struct OuterNestedLoopInOneTask;

impl PhysicalOptimizerRule for OuterNestedLoopInOneTask {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|p| {
            let Some(join) = p.downcast_ref::<NestedLoopJoinExec>() else {
                return Ok(Transformed::no(p));
            };
            match join.join_type() {
                JoinType::Inner
                | JoinType::Right
                | JoinType::RightSemi
                | JoinType::RightAnti
                | JoinType::RightMark => return Ok(Transformed::no(p)),
                JoinType::Full => {
                    return Err(DataFusionError::NotImplemented(
                        "a FULL JOIN without an equality condition cannot run exactly on a \
                         Ballista cluster; give it an equality key, or build with --engine local"
                            .into(),
                    ));
                }
                _ => {}
            }
            let swapped = join.swap_inputs()?;
            Ok(Transformed::yes(
                swapped
                    .transform_down(|q| {
                        // The new build side is read whole: one partition.
                        let Some(join) = q.downcast_ref::<NestedLoopJoinExec>() else {
                            return Ok(Transformed::no(q));
                        };
                        let (left, right) = (join.left().clone(), join.right().clone());
                        if left.output_partitioning().partition_count() <= 1 {
                            return Ok(Transformed::new(q, false, TreeNodeRecursion::Stop));
                        }
                        let left: Arc<dyn ExecutionPlan> =
                            Arc::new(CoalescePartitionsExec::new(left));
                        let recompute =
                            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute);
                        let q = q.replace_children(vec![left, right], recompute)?;
                        Ok(Transformed::new(q, true, TreeNodeRecursion::Stop))
                    })?
                    .data,
            ))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "gtmos_outer_nested_loop_in_one_task"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Keeps a window function that DataFusion evaluates in reverse evaluating in reverse on the
/// executors.
///
/// Over one partition ordered two opposite ways (`lag(v) OVER (ORDER BY ts)` beside
/// `row_number() OVER (ORDER BY ts DESC)`), DataFusion sorts once and evaluates one of the
/// windows backwards: `lag` becomes `lead` over the reversed order, its evaluator told that it
/// runs reversed. datafusion-proto 55 sends the function, its arguments and the order, but not
/// that flag (nor `IGNORE NULLS`), so each executor ran a plain `lead` and returned other rows
/// than one process. This rule wraps every such function in [`Travelling`], which carries both
/// flags itself and travels through gtmos' codec ([`encode_window`] / [`decode_window`]).
///
/// DataFusion 55 offers no accessor for the flags; they are read from the expression's `Debug`
/// output, and a unit test fails if that ever stops finding them.
#[derive(Debug)]
pub(super) struct ReversedWindows;

impl PhysicalOptimizerRule for ReversedWindows {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|p| {
            if let Some(w) = p.downcast_ref::<BoundedWindowAggExec>() {
                let Some(exprs) = travelling(w.window_expr(), w.input())? else {
                    return Ok(Transformed::no(p));
                };
                // `partition_keys` is empty exactly when the exec may not repartition.
                let can_repartition = !w.partition_keys().is_empty();
                let mode = w.input_order_mode.clone();
                let w =
                    BoundedWindowAggExec::try_new(exprs, w.input().clone(), mode, can_repartition)?;
                return Ok(Transformed::yes(Arc::new(w) as Arc<dyn ExecutionPlan>));
            }
            if let Some(w) = p.downcast_ref::<WindowAggExec>() {
                let Some(exprs) = travelling(w.window_expr(), w.input())? else {
                    return Ok(Transformed::no(p));
                };
                let can_repartition = !w.partition_keys().is_empty();
                let w = WindowAggExec::try_new(exprs, w.input().clone(), can_repartition)?;
                return Ok(Transformed::yes(Arc::new(w) as Arc<dyn ExecutionPlan>));
            }
            Ok(Transformed::no(p))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "gtmos_reversed_windows"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `exprs` with every flagged window function wrapped in [`Travelling`]; `None` when none is.
fn travelling(
    exprs: &[Arc<dyn WindowExpr>],
    input: &Arc<dyn ExecutionPlan>,
) -> DfResult<Option<Vec<Arc<dyn WindowExpr>>>> {
    let mut changed = false;
    let mut out = Vec::with_capacity(exprs.len());
    for e in exprs {
        let Some((standard, udwf, flags)) = flagged(e) else {
            out.push(e.clone());
            continue;
        };
        let fun = Arc::new(WindowUDF::new_from_impl(Travelling::new(
            udwf.fun().clone(),
            flags,
        )));
        let f = create_udwf_window_expr(
            &fun,
            udwf.args(),
            &input.schema(),
            standard.name().to_string(),
            false,
        )?;
        out.push(Arc::new(StandardWindowExpr::new(
            f,
            e.partition_by(),
            e.order_by(),
            e.get_window_frame().clone(),
        )));
        changed = true;
    }
    Ok(changed.then_some(out))
}

/// A user-defined window function evaluated reversed or ignoring nulls, with those flags.
fn flagged(e: &Arc<dyn WindowExpr>) -> Option<(&StandardWindowExpr, &WindowUDFExpr, Flags)> {
    let standard = e.as_any().downcast_ref::<StandardWindowExpr>()?;
    let udwf = standard
        .get_standard_func_expr()
        .as_any()
        .downcast_ref::<WindowUDFExpr>()?;
    let debug = format!("{udwf:?}");
    let flags = Flags {
        reversed: debug.contains("is_reversed: true"),
        ignore_nulls: debug.contains("ignore_nulls: true"),
    };
    (flags.reversed || flags.ignore_nulls).then_some((standard, udwf, flags))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Flags {
    reversed: bool,
    ignore_nulls: bool,
}

/// A window function with the evaluation flags DataFusion keeps outside it, so that they
/// survive the trip to an executor ([`ReversedWindows`]).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct Travelling {
    inner: Arc<WindowUDF>,
    flags: Flags,
    name: String,
}

impl Travelling {
    fn new(inner: Arc<WindowUDF>, flags: Flags) -> Self {
        let name = format!(
            "{}{}{}",
            inner.name(),
            if flags.reversed { " reversed" } else { "" },
            if flags.ignore_nulls {
                " ignore nulls"
            } else {
                ""
            },
        );
        Travelling { inner, flags, name }
    }
}

impl WindowUDFImpl for Travelling {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn expressions(&self, args: ExpressionArgs) -> Vec<Arc<dyn PhysicalExpr>> {
        self.inner.expressions(args)
    }

    fn partition_evaluator(
        &self,
        args: PartitionEvaluatorArgs,
    ) -> DfResult<Box<dyn PartitionEvaluator>> {
        self.inner
            .partition_evaluator_factory(PartitionEvaluatorArgs::new(
                args.input_exprs(),
                args.input_fields(),
                args.is_reversed() != self.flags.reversed,
                args.ignore_nulls() || self.flags.ignore_nulls,
            ))
    }

    fn field(&self, args: WindowUDFFieldArgs) -> DfResult<FieldRef> {
        self.inner.field(args)
    }

    fn sort_options(&self) -> Option<SortOptions> {
        self.inner.sort_options()
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn reverse_expr(&self) -> ReversedUDWF {
        // Planned already: nothing reverses it again.
        ReversedUDWF::NotSupported
    }

    fn limit_effect(&self, args: &[Arc<dyn PhysicalExpr>]) -> LimitEffect {
        self.inner.inner().limit_effect(args)
    }
}

const WINDOW_MAGIC: &[u8] = b"gtmos/window\n";

/// Writes a [`Travelling`] function as its flags and the name of the function it wraps;
/// `false` (nothing written) for any other function.
pub(super) fn encode_window(fun: &WindowUDF, buf: &mut Vec<u8>) -> bool {
    let Some(t) = fun.inner().downcast_ref::<Travelling>() else {
        return false;
    };
    buf.extend_from_slice(WINDOW_MAGIC);
    buf.push(b'0' + u8::from(t.flags.reversed));
    buf.push(b'0' + u8::from(t.flags.ignore_nulls));
    buf.extend_from_slice(t.inner.name().as_bytes());
    true
}

/// The [`Travelling`] function [`encode_window`] wrote, its inner function found by name in
/// `known`; `None` when `buf` is not one.
pub(super) fn decode_window(
    buf: &[u8],
    known: impl IntoIterator<Item = Arc<WindowUDF>>,
) -> Option<DfResult<Arc<WindowUDF>>> {
    let rest = buf.strip_prefix(WINDOW_MAGIC)?;
    let flag = |b: Option<&u8>| match b {
        Some(b'0') => Ok(false),
        Some(b'1') => Ok(true),
        _ => Err(DataFusionError::Internal(
            "a malformed window function".into(),
        )),
    };
    let decoded = (|| {
        let flags = Flags {
            reversed: flag(rest.first())?,
            ignore_nulls: flag(rest.get(1))?,
        };
        let name = std::str::from_utf8(&rest[2..])
            .map_err(|e| DataFusionError::Internal(format!("window function name: {e}")))?;
        let inner = known
            .into_iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| {
                DataFusionError::Plan(format!("window function `{name}` is not known here"))
            })?;
        Ok(Arc::new(WindowUDF::new_from_impl(Travelling::new(
            inner, flags,
        ))))
    })();
    Some(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Int64Array, RecordBatch, StringArray, UInt64Array};
    use arrow::datatypes::{Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::physical_plan::collect;
    use datafusion::prelude::SessionContext;
    use datafusion_proto::bytes::{
        physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
    };

    use crate::engine::cluster::PhysicalCodec;

    /// Three accounts with values 10, 20, 30, 40 at times 1–4; each row's prior value and its
    /// rank from the latest, computed by hand.
    const SQL: &str = "SELECT account, ts, v, \
                       lag(v) OVER (PARTITION BY account ORDER BY ts) AS prior, \
                       row_number() OVER (PARTITION BY account ORDER BY ts DESC) AS recency \
                       FROM t";

    fn context() -> SessionContext {
        let ctx = SessionContext::new();
        let schema = Arc::new(Schema::new(vec![
            Field::new("account", DataType::Utf8, false),
            Field::new("ts", DataType::Int64, false),
            Field::new("v", DataType::Int64, false),
        ]));
        let accounts = ["a", "b", "c"];
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from_iter_values(
                    accounts.iter().flat_map(|a| [*a; 4]),
                )),
                Arc::new(Int64Array::from_iter_values(
                    accounts.iter().flat_map(|_| 1..=4),
                )),
                Arc::new(Int64Array::from_iter_values(
                    accounts.iter().flat_map(|_| [10, 20, 30, 40]),
                )),
            ],
        )
        .unwrap();
        let t = MemTable::try_new(schema, vec![vec![batch]]).unwrap();
        ctx.register_table("t", Arc::new(t)).unwrap();
        ctx
    }

    /// `(account, ts, prior, recency)` of every row, sorted.
    fn rows(batches: &[RecordBatch]) -> Vec<(String, i64, Option<i64>, u64)> {
        let mut out = Vec::new();
        for b in batches {
            let col = |name: &str| b.column(b.schema().index_of(name).unwrap()).clone();
            let (account, ts, prior, recency) =
                (col("account"), col("ts"), col("prior"), col("recency"));
            let account = account.as_any().downcast_ref::<StringArray>().unwrap();
            let ts = ts.as_any().downcast_ref::<Int64Array>().unwrap();
            let prior = prior.as_any().downcast_ref::<Int64Array>().unwrap();
            let recency = recency.as_any().downcast_ref::<UInt64Array>().unwrap();
            for i in 0..b.num_rows() {
                out.push((
                    account.value(i).to_string(),
                    ts.value(i),
                    prior.is_valid(i).then(|| prior.value(i)),
                    recency.value(i),
                ));
            }
        }
        out.sort();
        out
    }

    fn has_flagged(plan: &Arc<dyn ExecutionPlan>) -> bool {
        let exprs = if let Some(w) = plan.downcast_ref::<BoundedWindowAggExec>() {
            w.window_expr()
        } else if let Some(w) = plan.downcast_ref::<WindowAggExec>() {
            w.window_expr()
        } else {
            &[]
        };
        exprs.iter().any(|e| flagged(e).is_some()) || plan.children().into_iter().any(has_flagged)
    }

    #[test]
    fn a_reversed_window_keeps_its_direction_through_the_codec() {
        let ctx = context();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let plan = rt
            .block_on(async { ctx.sql(SQL).await?.create_physical_plan().await })
            .unwrap();
        // DataFusion sorts once and runs one window reversed: the case this rule is for (and
        // the `Debug` reading of the flag still works).
        assert!(has_flagged(&plan), "{plan:?}");
        let codec = PhysicalCodec::default();
        let travel = |plan: Arc<dyn ExecutionPlan>| {
            let bytes = physical_plan_to_bytes_with_extension_codec(plan, &codec).unwrap();
            let plan =
                physical_plan_from_bytes_with_extension_codec(&bytes, &ctx.task_ctx(), &codec)
                    .unwrap();
            rows(&rt.block_on(collect(plan, ctx.task_ctx())).unwrap())
        };
        let mut expected = Vec::new();
        for a in ["a", "b", "c"] {
            for (ts, prior, recency) in [
                (1, None, 4),
                (2, Some(10), 3),
                (3, Some(20), 2),
                (4, Some(30), 1),
            ] {
                expected.push((a.to_string(), ts, prior, recency));
            }
        }
        assert_eq!(
            rows(&rt.block_on(collect(plan.clone(), ctx.task_ctx())).unwrap()),
            expected
        );
        // Sent as DataFusion sends it, the flag is lost and `lag` runs the other way.
        assert_ne!(travel(plan.clone()), expected);
        let fixed = ReversedWindows
            .optimize(plan, ctx.state().config_options())
            .unwrap();
        assert!(!has_flagged(&fixed));
        assert_eq!(travel(fixed), expected);
    }

    #[test]
    fn a_travelling_window_function_decodes_to_itself() {
        let lag = super::super::window_functions()
            .find(|f| f.name() == "lag")
            .unwrap();
        for (reversed, ignore_nulls) in [(true, false), (false, true), (true, true)] {
            let flags = Flags {
                reversed,
                ignore_nulls,
            };
            let fun = WindowUDF::new_from_impl(Travelling::new(lag.clone(), flags));
            let mut buf = Vec::new();
            assert!(encode_window(&fun, &mut buf));
            let back = decode_window(&buf, super::super::window_functions())
                .unwrap()
                .unwrap();
            assert_eq!(*back, fun);
        }
        assert!(!encode_window(&lag, &mut Vec::new()));
        assert!(decode_window(b"lag", super::super::window_functions()).is_none());
        let unknown = decode_window(b"gtmos/window\n10nope", super::super::window_functions());
        assert!(unknown.unwrap().is_err());
    }
}
