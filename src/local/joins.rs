//! Join order: the most selective relation first.
//!
//! DataFusion joins in the order a statement names its relations. A
//! dashboard's `orders JOIN customer JOIN nation JOIN region WHERE
//! region.name = '…'` then joins all the orders to their customers, each
//! of those rows to its nation, and only then drops four regions in five:
//! three passes over the largest table. Inner joins give the same rows in
//! any order, so a chain of them is rebuilt from the relation with the
//! fewest rows left after its filters, joining next the smallest relation
//! an equality connects to those already joined. The largest table then
//! meets an already small set, once.
//!
//! Estimates come from the datasets' row counts and a fixed guess per
//! filter. A chain with a relation that is not a dataset scan, a condition
//! that is not an equality between two relations, or relations no equality
//! connects keeps its order. The rule runs after the filters are pushed
//! down and before the projections are pruned, which then prunes the new
//! joins too.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{NullEquality, Result};
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::utils::split_conjunction;
use datafusion::logical_expr::{Expr, Join, JoinConstraint, JoinType, LogicalPlan, Operator, Projection};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};

use crate::accel::DatasetTable;

/// The optimizer rule.
#[derive(Debug, Default)]
pub struct JoinOrder;

impl OptimizerRule for JoinOrder {
    fn name(&self) -> &str {
        "flightdeck_join_order"
    }

    fn rewrite(&self, plan: LogicalPlan, _: &dyn OptimizerConfig) -> Result<Transformed<LogicalPlan>> {
        reorder(plan)
    }
}

/// `plan` with each chain of inner joins in it reordered.
fn reorder(plan: LogicalPlan) -> Result<Transformed<LogicalPlan>> {
    if let LogicalPlan::Join(join) = &plan
        && chained(join)
    {
        let mut chain = Chain { relations: Vec::new(), on: Vec::new(), null_equality: join.null_equality };
        if chain.add(&plan)
            && let Some(rebuilt) = chain.rebuilt(&plan)?
        {
            return Ok(Transformed::yes(rebuilt));
        }
    }
    // Deeper: a chain under an aggregate, in a subquery, beside an outer join.
    plan.map_children(reorder)
}

/// Whether `join` is a link of a chain this rule may reorder.
fn chained(join: &Join) -> bool {
    join.join_type == JoinType::Inner
        && join.join_constraint == JoinConstraint::On
        && join.filter.is_none()
        && !join.null_aware
        && !join.on.is_empty()
}

/// A chain of inner joins taken apart: its relations, in the order
/// written, and the equalities between them.
struct Chain {
    relations: Vec<LogicalPlan>,
    on: Vec<(Expr, Expr)>,
    null_equality: NullEquality,
}

impl Chain {
    /// Takes `plan` apart into the chain; `false` when its joins do not all
    /// compare NULLs alike.
    fn add(&mut self, plan: &LogicalPlan) -> bool {
        match plan {
            LogicalPlan::Join(join) if chained(join) => {
                self.on.extend(join.on.iter().cloned());
                join.null_equality == self.null_equality && self.add(&join.left) && self.add(&join.right)
            }
            other => {
                self.relations.push(other.clone());
                true
            }
        }
    }

    /// The relation whose columns are all of `e`'s, if one is.
    fn owner(&self, e: &Expr) -> Option<usize> {
        let columns = e.column_refs();
        let mut owners = self
            .relations
            .iter()
            .enumerate()
            .filter(|(_, r)| !columns.is_empty() && columns.iter().all(|c| r.schema().has_column(c)));
        let (i, _) = owners.next()?;
        owners.next().is_none().then_some(i)
    }

    /// The chain joined from its most selective relation outwards, with
    /// the columns of `original` in their order; `None` when it keeps its
    /// order.
    fn rebuilt(&self, original: &LogicalPlan) -> Result<Option<LogicalPlan>> {
        let n = self.relations.len();
        if n < 3 {
            return Ok(None);
        }
        let Some(rows) = self.relations.iter().map(estimate).collect::<Option<Vec<f64>>>() else {
            return Ok(None);
        };
        let Some(pairs) = self
            .on
            .iter()
            .map(|(l, r)| Some((self.owner(l)?, l, self.owner(r)?, r)).filter(|(a, _, b, _)| a != b))
            .collect::<Option<Vec<_>>>()
        else {
            return Ok(None);
        };
        let smallest = |candidates: &mut dyn Iterator<Item = usize>| {
            candidates.min_by(|a, b| rows[*a].total_cmp(&rows[*b]).then(a.cmp(b)))
        };
        let mut order = vec![smallest(&mut (0..n)).expect("three relations")];
        while order.len() < n {
            let joined = |i: usize| order.contains(&i);
            let mut connected = (0..n).filter(|&j| {
                !joined(j) && pairs.iter().any(|&(a, _, b, _)| (a == j && joined(b)) || (b == j && joined(a)))
            });
            let Some(next) = smallest(&mut connected) else { return Ok(None) };
            order.push(next);
        }
        if order.iter().copied().eq(0..n) {
            return Ok(None);
        }
        let mut plan = reorder(self.relations[order[0]].clone())?.data;
        for (k, &j) in order.iter().enumerate().skip(1) {
            let before = &order[..k];
            let keys = pairs
                .iter()
                .filter_map(|&(a, l, b, r)| match (before.contains(&a), before.contains(&b)) {
                    (true, false) if b == j => Some((l.clone(), r.clone())),
                    (false, true) if a == j => Some((r.clone(), l.clone())),
                    _ => None,
                })
                .collect();
            let right = reorder(self.relations[j].clone())?.data;
            let join = Join::try_new(
                Arc::new(plan),
                Arc::new(right),
                keys,
                None,
                JoinType::Inner,
                JoinConstraint::On,
                self.null_equality,
                false,
            )?;
            plan = LogicalPlan::Join(join);
        }
        let columns = original.schema().columns().into_iter().map(Expr::Column).collect();
        Ok(Some(LogicalPlan::Projection(Projection::try_new(columns, Arc::new(plan))?)))
    }
}

/// The rows `plan` is guessed to give: a dataset's rows, times a fixed
/// share per filter on it. `None` for anything but filters, projections
/// and aliases over a dataset scan.
pub(super) fn estimate(plan: &LogicalPlan) -> Option<f64> {
    let mut filters: HashSet<&Expr> = HashSet::new();
    let mut node = plan;
    let rows = loop {
        node = match node {
            LogicalPlan::Filter(f) => {
                filters.extend(split_conjunction(&f.predicate));
                &f.input
            }
            LogicalPlan::SubqueryAlias(a) => &a.input,
            LogicalPlan::Projection(p) => &p.input,
            LogicalPlan::TableScan(scan) => {
                filters.extend(scan.filters.iter().flat_map(split_conjunction));
                let provider = source_as_provider(&scan.source).ok()?;
                break provider.downcast_ref::<DatasetTable>()?.rows() as f64;
            }
            _ => return None,
        }
    };
    Some(filters.into_iter().map(share).product::<f64>() * rows)
}

/// The share of rows a filter is guessed to keep.
fn share(e: &Expr) -> f64 {
    use datafusion::logical_expr::BinaryExpr;
    match e {
        // Added on join keys by DataFusion: keeps nearly every row.
        Expr::IsNotNull(_) => 1.0,
        Expr::BinaryExpr(BinaryExpr { op: Operator::Eq, .. }) => 0.1,
        Expr::InList(list) if !list.negated => (0.1 * list.list.len() as f64).min(0.5),
        Expr::BinaryExpr(BinaryExpr { op: Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq, .. })
        | Expr::Between(_) => 0.33,
        _ => 0.5,
    }
}
