//! Aggregation before a join.
//!
//! `SELECT c.name, sum(o.totalprice) FROM orders o JOIN customer c ON
//! o.custkey = c.custkey GROUP BY c.name` joins every order to its
//! customer, then hashes each joined row's name into a group. Summing the
//! orders per `custkey` first leaves one row per customer: the join meets
//! as many rows as there are customers, and each name is hashed once.
//!
//! This holds when every aggregate reads one side of an inner equi-join and
//! is a sum, count, minimum or maximum: each can be taken per join key on
//! that side, then combined per group (a count's partials are summed). The
//! join repeats a partial as often as it would have repeated each of its
//! rows, so sums and counts come out the same. `count(*)` alone is counted
//! on the side guessed larger. The rule applies when the statement groups
//! by a column of the other side (a dimension's name, a dashboard's usual
//! shape); the answer's columns, names and types are those of the plan it
//! replaces, or it leaves the plan as it is.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Column, DFSchema, Result};
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::{Aggregate, Expr, ExprSchemable, Join, JoinType, LogicalPlan, Projection, cast};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use super::joins::estimate;

/// The optimizer rule.
#[derive(Debug, Default)]
pub struct EagerAggregation;

impl OptimizerRule for EagerAggregation {
    fn name(&self) -> &str {
        "flightdeck_eager_aggregation"
    }

    fn rewrite(&self, plan: LogicalPlan, _: &dyn OptimizerConfig) -> Result<Transformed<LogicalPlan>> {
        plan.transform_up(|node| {
            let rewritten = match &node {
                LogicalPlan::Aggregate(agg) => eager(agg)?,
                _ => None,
            };
            Ok(match rewritten {
                Some(plan) => Transformed::yes(plan),
                None => Transformed::no(node),
            })
        })
    }
}

/// `agg` with its aggregates taken on one side of the join below it first,
/// when that gives the same answer.
fn eager(agg: &Aggregate) -> Result<Option<LogicalPlan>> {
    let LogicalPlan::Join(join) = agg.input.as_ref() else { return Ok(None) };
    if join.join_type != JoinType::Inner || join.filter.is_some() || join.null_aware || join.on.is_empty() {
        return Ok(None);
    }
    let groups: Option<Vec<&Column>> =
        agg.group_expr.iter().map(|e| if let Expr::Column(c) = e { Some(c) } else { None }).collect();
    let Some(groups) = groups.filter(|g| !g.is_empty()) else { return Ok(None) };
    let mut aggregates = Vec::with_capacity(agg.aggr_expr.len());
    for e in &agg.aggr_expr {
        let inner = match e {
            Expr::Alias(a) => a.expr.as_ref(),
            other => other,
        };
        let Expr::AggregateFunction(AggregateFunction { func, params }) = inner else { return Ok(None) };
        let plain = !params.distinct && params.filter.is_none() && params.order_by.is_empty();
        if !plain || !matches!(func.name(), "sum" | "count" | "min" | "max") {
            return Ok(None);
        }
        aggregates.push((func, params));
    }
    // The side every aggregate reads; `count(*)` reads either.
    let (left, right) = (join.left.schema(), join.right.schema());
    let mut side = None;
    for (_, params) in &aggregates {
        let columns: HashSet<&Column> = params.args.iter().flat_map(|a| a.column_refs()).collect();
        if columns.is_empty() {
            continue;
        }
        let reads = if columns.iter().all(|c| left.has_column(c)) {
            true
        } else if columns.iter().all(|c| right.has_column(c)) {
            false
        } else {
            return Ok(None);
        };
        if side.is_some_and(|s| s != reads) {
            return Ok(None);
        }
        side = Some(reads);
    }
    // Only `count(*)`: counted on the side guessed larger.
    let side = match side {
        Some(side) => Some(side),
        None => match (estimate(&join.left), estimate(&join.right)) {
            (Some(l), Some(r)) => Some(l >= r),
            _ => None,
        },
    };
    let Some(on_left) = side else { return Ok(None) };
    let (read, other): (&DFSchema, &DFSchema) = if on_left { (left, right) } else { (right, left) };
    // Grouped by a column of the other side, or the aggregation gains
    // nothing from the join being narrowed.
    if !groups.iter().any(|c| other.has_column(c)) || groups.iter().any(|c| !read.has_column(c) && !other.has_column(c))
    {
        return Ok(None);
    }
    // Per join key and grouped column of the side read.
    let keys: Option<Vec<&Column>> = join
        .on
        .iter()
        .map(|(l, r)| match if on_left { l } else { r } {
            Expr::Column(c) => Some(c),
            _ => None,
        })
        .collect();
    let Some(keys) = keys else { return Ok(None) };
    let mut by: Vec<&Column> = Vec::new();
    for c in keys.into_iter().chain(groups.iter().copied().filter(|c| read.has_column(c))) {
        if !by.contains(&c) {
            by.push(c);
        }
    }
    let mut partials = Vec::new();
    for (i, (func, params)) in aggregates.iter().enumerate() {
        let e = Expr::AggregateFunction(AggregateFunction { func: Arc::clone(func), params: (*params).clone() });
        partials.push(e.alias(partial(i)));
    }
    let pre = Aggregate::try_new(
        Arc::clone(if on_left { &join.left } else { &join.right }),
        by.into_iter().map(|c| Expr::Column(c.clone())).collect(),
        partials,
    )?;
    let pre = Arc::new(LogicalPlan::Aggregate(pre));
    let (l, r) = if on_left { (pre, Arc::clone(&join.right)) } else { (Arc::clone(&join.left), pre) };
    let joined =
        Join::try_new(l, r, join.on.clone(), None, JoinType::Inner, join.join_constraint, join.null_equality, false)?;
    let mut combined = Vec::new();
    // Per aggregate, the type the answer had when the combined one differs.
    let mut casts = Vec::new();
    for (i, (func, _)) in aggregates.iter().enumerate() {
        let combine = match func.name() {
            "count" => datafusion::functions_aggregate::sum::sum_udaf(),
            _ => Arc::clone(func),
        };
        let args = vec![Expr::Column(Column::from_name(partial(i)))];
        let e = Expr::AggregateFunction(AggregateFunction::new_udf(combine, args, false, None, vec![], None));
        // A partial sum of decimals is wider than its input, and the sum of
        // the partials wider again: cast back above the aggregation (an
        // aggregation's own expressions are aggregates only).
        let (_, field) = agg.schema.qualified_field(agg.group_expr.len() + i);
        let wanted = field.data_type();
        casts.push((&e.get_type(joined.schema.as_ref())? != wanted).then(|| wanted.clone()));
        combined.push(e.alias(field.name()));
    }
    let rewritten = Aggregate::try_new(Arc::new(LogicalPlan::Join(joined)), agg.group_expr.clone(), combined)?;
    let mut plan = LogicalPlan::Aggregate(rewritten);
    if casts.iter().any(Option::is_some) {
        let width = agg.group_expr.len();
        let columns = plan.schema().columns();
        let exprs = columns
            .into_iter()
            .enumerate()
            .map(|(i, c)| match i.checked_sub(width).and_then(|a| casts[a].clone()) {
                Some(ty) => {
                    let name = c.name.clone();
                    cast(Expr::Column(c), ty).alias(name)
                }
                None => Expr::Column(c),
            })
            .collect();
        plan = LogicalPlan::Projection(Projection::try_new(exprs, Arc::new(plan))?);
    }
    // The same columns, named and typed as before, or nothing changes.
    let schema = plan.schema();
    let same = schema.fields().len() == agg.schema.fields().len()
        && schema
            .iter()
            .zip(agg.schema.iter())
            .all(|((q1, f1), (q2, f2))| q1 == q2 && f1.name() == f2.name() && f1.data_type() == f2.data_type());
    Ok(same.then_some(plan))
}

/// The name of the `i`th partial aggregate.
fn partial(i: usize) -> String {
    format!("__flightdeck_partial_{i}")
}
