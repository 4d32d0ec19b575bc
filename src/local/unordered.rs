//! Grouping by several columns without the input's order.
//!
//! A dataset held in time order declares that order, and DataFusion then
//! groups `GROUP BY market, date_trunc('month', ts)` as a stream, closing
//! each month's groups as the next begins. For more than one grouping
//! column its streaming group table compares the rows one at a time,
//! through dynamic calls per value, where the unordered table compares a
//! whole batch at once: up to a quarter of the CPU of a dashboard's "per time
//! bucket and category" query on a month of the energy series. Streaming
//! saves memory only when the groups are many, and a dashboard's answer
//! holds few (a local answer is bounded in size anyway). So the input of
//! such an aggregation is stripped of its order, unless an aggregate needs
//! it (`array_agg(x ORDER BY ts)` and the like).
//!
//! The rule runs first among the physical optimizer's rules: the sorts a
//! statement asks for are still in the plan then, and the rules after it
//! keep those the unordered groups now need.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::execution_plan::{CardinalityEffect, ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::{
    ChildStats, DisplayAs, DisplayFormatType, ExecutionPlan, InputOrderMode, PlanProperties, Statistics, StatisticsArgs,
};

/// The physical optimizer rule.
#[derive(Debug, Default)]
pub struct UnorderedGrouping;

impl PhysicalOptimizerRule for UnorderedGrouping {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(aggregate) = node.downcast_ref::<AggregateExec>() else {
                return Ok(Transformed::no(node));
            };
            let reads_rows = matches!(aggregate.mode(), AggregateMode::Partial | AggregateMode::Single);
            let streaming = !matches!(aggregate.input_order_mode(), InputOrderMode::Linear);
            let columns = aggregate.group_expr().expr().len();
            let ordered_aggregate = aggregate.aggr_expr().iter().any(|a| !a.order_bys().is_empty());
            if !reads_rows || !streaming || columns < 2 || ordered_aggregate {
                return Ok(Transformed::no(node));
            }
            let input = Arc::new(Unordered::new(Arc::clone(aggregate.input())));
            let recompute = ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute);
            Ok(Transformed::yes(node.replace_children(vec![input], recompute)?))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "flightdeck_unordered_grouping"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Its input's rows, with no order declared.
#[derive(Debug)]
pub(super) struct Unordered {
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl Unordered {
    fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        let theirs = input.properties();
        let properties = PlanProperties::new(
            EquivalenceProperties::new(input.schema()),
            theirs.partitioning.clone(),
            theirs.emission_type,
            theirs.boundedness,
        );
        Unordered { input, properties: Arc::new(properties) }
    }

    /// Itself over `input`, its properties taken anew from it.
    fn over(&self, input: Arc<dyn ExecutionPlan>) -> Self {
        Unordered::new(input)
    }
}

impl DisplayAs for Unordered {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "Unordered")
    }
}

impl ExecutionPlan for Unordered {
    unary_plan!("Unordered", input);

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn cardinality_effect(&self) -> CardinalityEffect {
        CardinalityEffect::Equal
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        vec![ChildStats::At(partition)]
    }

    fn statistics_from_inputs(&self, inputs: &[Arc<Statistics>], _: &StatisticsArgs) -> Result<Arc<Statistics>> {
        match inputs {
            [input] => Ok(Arc::clone(input)),
            _ => Ok(Arc::new(Statistics::new_unknown(&self.schema()))),
        }
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Int64Array, StringArray};
    use arrow::record_batch::RecordBatch;
    use datafusion::datasource::MemTable;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext, col};

    use super::UnorderedGrouping;

    /// The physical plan of `sql` over `t(ts, market, v)`, declared sorted
    /// by `ts`, with the rule first or left out; and its answer.
    async fn planned(sql: &str, with_rule: bool) -> (String, String) {
        let batch = RecordBatch::try_from_iter([
            ("ts", Arc::new(Int64Array::from(vec![1, 1, 2, 3, 3, 3])) as ArrayRef),
            ("market", Arc::new(StringArray::from(vec!["b", "a", "b", "a", "a", "b"])) as ArrayRef),
            ("v", Arc::new(Int64Array::from(vec![10, 20, 30, 40, 50, 60])) as ArrayRef),
        ])
        .unwrap();
        let table = MemTable::try_new(batch.schema(), vec![vec![batch]])
            .unwrap()
            .with_sort_order(vec![vec![col("ts").sort(true, false)]]);
        let mut rules = datafusion::physical_optimizer::optimizer::PhysicalOptimizer::new().rules;
        if with_rule {
            rules.insert(0, Arc::new(UnorderedGrouping));
        }
        let state = SessionStateBuilder::new()
            .with_config(SessionConfig::new().with_target_partitions(1))
            .with_default_features()
            .with_physical_optimizer_rules(rules)
            .build();
        let ctx = SessionContext::new_with_state(state);
        ctx.register_table("t", Arc::new(table)).unwrap();
        let df = ctx.sql(sql).await.unwrap();
        let plan = df.clone().create_physical_plan().await.unwrap();
        let rows = arrow::util::pretty::pretty_format_batches(&df.collect().await.unwrap()).unwrap().to_string();
        (displayable(plan.as_ref()).indent(false).to_string(), rows)
    }

    #[tokio::test]
    async fn groups_of_several_columns_forget_the_input_order_and_keep_the_answer() {
        // Ordered by the sorted column only: without the rule the
        // aggregation's own order meets it and no sort is planned.
        for sql in [
            "SELECT ts, market, sum(v) AS s FROM t GROUP BY ts, market ORDER BY ts",
            "SELECT market, ts, sum(v) AS s FROM t GROUP BY market, ts ORDER BY market, ts",
        ] {
            let (before, want) = planned(sql, false).await;
            assert!(before.contains("ordering_mode="), "{before}");
            let (after, got) = planned(sql, true).await;
            assert!(after.contains("Unordered"), "{after}");
            assert!(!after.contains("ordering_mode="), "{after}");
            assert_eq!(got, want, "{sql}");
        }
        let by_ts = "SELECT ts, market, sum(v) AS s FROM t GROUP BY ts, market ORDER BY ts";
        let (before, _) = planned(by_ts, false).await;
        assert!(!before.contains("SortExec"), "{before}");
        let (after, rows) = planned(by_ts, true).await;
        assert!(after.contains("SortExec"), "{after}");
        let ts: Vec<&str> = rows.lines().skip(3).filter_map(|l| l.split('|').nth(1)).map(str::trim).collect();
        assert_eq!(ts, ["1", "1", "2", "3", "3"], "{rows}");
    }

    #[tokio::test]
    async fn one_grouping_column_and_ordered_aggregates_keep_the_stream() {
        let (plan, _) = planned("SELECT ts, sum(v) AS s FROM t GROUP BY ts ORDER BY ts", true).await;
        assert!(!plan.contains("Unordered"), "{plan}");
        let sql = "SELECT market, ts, array_agg(v ORDER BY ts) AS vs FROM t GROUP BY market, ts";
        let (plan, _) = planned(sql, true).await;
        assert!(!plan.contains("Unordered") && plan.contains("ordering_mode="), "{plan}");
    }
}
