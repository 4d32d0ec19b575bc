//! Rewrites of a checked plan that give DataFusion Trino's semantics where
//! its own differ, without changing the plan's output schema.
//!
//! - **Comparisons of doubles.** Arrow compares floats by their total
//!   order (NaN above everything and equal to itself, `-0.0 < 0.0`); Trino
//!   by IEEE 754 (NaN compares false, `-0.0 = 0.0`). `a < b` becomes
//!   `key(a) < key(b) AND NOT isnan(a) AND NOT isnan(b)`, `a <> b` becomes
//!   `key(a) <> key(b) OR isnan(a) OR isnan(b)`.
//! - **Sorting doubles.** Trino places NaN next to the NULLs and sorts
//!   `-0.0` with `0.0`: the sort key is [`super::functions`]'s double key.

use std::ops::Not;
use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result};
use datafusion::execution::FunctionRegistry;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator, SortExpr};

use super::functions::{DOUBLE_KEY_NULLS_FIRST, DOUBLE_KEY_NULLS_LAST};

/// `plan` with Trino's comparison and ordering of doubles.
pub fn doubles(plan: LogicalPlan, state: &SessionState) -> Result<LogicalPlan> {
    let key = |name: &str, e: Expr| -> Result<Expr> { Ok(state.udf(name)?.call(vec![e])) };
    let isnan = |e: Expr| -> Result<Expr> { Ok(state.udf("isnan")?.call(vec![e])) };
    plan.transform_up_with_subqueries(|node| {
        let inputs = node.inputs();
        let schema: Arc<DFSchema> = match inputs.as_slice() {
            [input] => Arc::clone(input.schema()),
            _ => Arc::clone(node.schema()),
        };
        let is_double = |e: &Expr| e.get_type(&schema).map(|t| t == DataType::Float64).unwrap_or(false);
        let node = match node {
            LogicalPlan::Sort(mut sort) => {
                let mut changed = false;
                for s in &mut sort.expr {
                    if is_double(&s.expr) {
                        let name = if s.nulls_first { DOUBLE_KEY_NULLS_FIRST } else { DOUBLE_KEY_NULLS_LAST };
                        *s = SortExpr { expr: key(name, s.expr.clone())?, ..s.clone() };
                        changed = true;
                    }
                }
                let sort = LogicalPlan::Sort(sort);
                if changed { Transformed::yes(sort) } else { Transformed::no(sort) }
            }
            other => Transformed::no(other),
        };
        node.transform_data(|node| {
            node.map_expressions(|e| {
                e.transform_up(|e| {
                    let comparison = |l: Expr, op: Operator, r: Expr| -> Result<Expr> {
                        let (kl, kr) = (key(DOUBLE_KEY_NULLS_LAST, l.clone())?, key(DOUBLE_KEY_NULLS_LAST, r.clone())?);
                        let compared = Expr::BinaryExpr(BinaryExpr::new(Box::new(kl), op, Box::new(kr)));
                        Ok(if op == Operator::NotEq {
                            compared.or(isnan(l)?).or(isnan(r)?)
                        } else {
                            compared.and(isnan(l)?.not()).and(isnan(r)?.not())
                        })
                    };
                    match e {
                        Expr::BinaryExpr(BinaryExpr { left, op, right })
                            if matches!(
                                op,
                                Operator::Eq
                                    | Operator::NotEq
                                    | Operator::Lt
                                    | Operator::LtEq
                                    | Operator::Gt
                                    | Operator::GtEq
                            ) && (is_double(&left) || is_double(&right)) =>
                        {
                            Ok(Transformed::yes(comparison(*left, op, *right)?))
                        }
                        Expr::Between(Between { expr, negated, low, high })
                            if is_double(&expr) || is_double(&low) || is_double(&high) =>
                        {
                            let within = comparison(*expr.clone(), Operator::GtEq, *low)?.and(comparison(
                                *expr,
                                Operator::LtEq,
                                *high,
                            )?);
                            Ok(Transformed::yes(if negated { within.not() } else { within }))
                        }
                        e => Ok(Transformed::no(e)),
                    }
                })
            })
        })
    })
    .map(|t| t.data)
}

/// `plan` with integer sums that fail on overflow, as Trino's do: summed as
/// `decimal(38, 0)` (which cannot overflow on 64-bit values short of 10^19
/// rows) and cast back to `bigint` at the end, where a sum out of range
/// fails instead of wrapping. Trino fails when a running sum leaves the
/// range even if the total is back inside it; this fails only on the total.
pub fn integer_sums(plan: LogicalPlan) -> Result<LogicalPlan> {
    use datafusion::logical_expr::expr::AggregateFunction;
    use datafusion::logical_expr::{Aggregate, cast};
    plan.transform_up_with_subqueries(|node| {
        let LogicalPlan::Aggregate(agg) = node else { return Ok(Transformed::no(node)) };
        let schema = Arc::clone(agg.input.schema());
        let mut changed = false;
        let mut aggr = Vec::with_capacity(agg.aggr_expr.len());
        for e in &agg.aggr_expr {
            let replaced = match e {
                Expr::AggregateFunction(AggregateFunction { func, params })
                    if func.name() == "sum"
                        && params.args.len() == 1
                        && params.args[0].get_type(&schema)?.is_integer() =>
                {
                    let mut params = params.clone();
                    params.args = vec![cast(params.args[0].clone(), DataType::Decimal128(38, 0))];
                    let sum = Expr::AggregateFunction(AggregateFunction { func: Arc::clone(func), params });
                    // Named as before, so the nodes above still find it.
                    Some(sum.alias(e.schema_name().to_string()))
                }
                _ => None,
            };
            changed |= replaced.is_some();
            aggr.push(replaced.unwrap_or_else(|| e.clone()));
        }
        if !changed {
            return Ok(Transformed::no(LogicalPlan::Aggregate(agg)));
        }
        let agg = Aggregate::try_new(Arc::clone(&agg.input), agg.group_expr.clone(), aggr)?;
        Ok(Transformed::yes(LogicalPlan::Aggregate(agg)))
    })
    .map(|t| t.data)
}
