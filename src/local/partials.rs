//! Partial aggregates kept per slice.
//!
//! Dashboard statements differ in their time range and filter values, so
//! the result cache misses them; yet a range of weeks covers whole slices
//! of a dataset, and a slice never changes once made. In a plan kept for
//! reuse, the partial aggregation right above the scan (with only filters
//! and projections between them) runs on each whole slice on its own, and
//! its output, the aggregates' states for the slice's groups, is kept under
//! the plan, the slice and the execution's filter. A later statement whose
//! range covers the slice reads those states instead of the rows; the
//! slices its range cuts are aggregated as before. The final aggregation
//! merges states whatever their source, as it merges those of partitions,
//! and the pieces are taken in time order, so an aggregation that streams
//! groups in time order still gets them in order.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::execution_plan::ReplaceChildrenOptions;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties};
use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};

use crate::accel::{DeferredScan, ScanInput};
use crate::router::Session;

/// The partial aggregates kept, bounded by their bytes.
#[derive(Debug)]
pub struct Partials {
    kept: moka::sync::Cache<PartialKey, Arc<[RecordBatch]>>,
    /// Largest output kept: one slice's states must not push out many.
    largest: usize,
}

/// What a kept plan is planned from, whatever versions it reads: the
/// user and session, the skeleton's text and the partitions. Equal keys,
/// equal plans for the same slices.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlanKey {
    pub session: Session,
    pub text: String,
    pub partitions: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PartialKey {
    plan: Arc<PlanKey>,
    /// Which partial aggregation of the plan, in the order planned.
    at: usize,
    slice: u64,
    filter: Arc<str>,
}

impl Partials {
    /// A store of at most `bytes`.
    pub fn new(bytes: u64) -> Self {
        let kept = moka::sync::Cache::builder()
            .max_capacity(bytes)
            .weigher(|k: &PartialKey, v: &Arc<[RecordBatch]>| {
                // An entry's key and bookkeeping too: states of no rows
                // (a filter that matches none) must not be kept unbounded.
                let bytes = bytes_of(v) + k.filter.len() + ENTRY_BYTES;
                u32::try_from(bytes).unwrap_or(u32::MAX)
            })
            .build();
        Partials { kept, largest: usize::try_from(bytes / 16).unwrap_or(usize::MAX) }
    }

    fn get(&self, key: &PartialKey) -> Option<Arc<[RecordBatch]>> {
        let kept = self.kept.get(key);
        let outcome = if kept.is_some() { "hit" } else { "miss" };
        metrics::counter!("flightdeck_local_slice_partials_total", "outcome" => outcome).increment(1);
        kept
    }

    fn insert(&self, key: PartialKey, batches: Arc<[RecordBatch]>) {
        if bytes_of(&batches) <= self.largest {
            self.kept.insert(key, batches);
        }
    }

    /// Entries kept, once pending evictions are done.
    pub fn len(&self) -> u64 {
        self.kept.run_pending_tasks();
        self.kept.entry_count()
    }
}

/// What an entry costs besides its states and filter: the key, the
/// store's own records.
const ENTRY_BYTES: usize = 256;

fn bytes_of(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::get_array_memory_size).sum()
}

/// `plan` (kept for `key`) with each partial aggregation that reads its
/// deferred scan through filters and projections alone run per slice. An
/// aggregation in one step (a plan of one partition) is split in two, as
/// DataFusion splits it over partitions, so that its first step can be.
pub fn by_slice(
    plan: Arc<dyn ExecutionPlan>,
    key: &Arc<PlanKey>,
    partials: &Arc<Partials>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let mut at = 0;
    plan.transform_down(|node| {
        let Some(aggregate) = node.downcast_ref::<AggregateExec>() else { return Ok(Transformed::no(node)) };
        let one_step = match aggregate.mode() {
            AggregateMode::Partial => false,
            AggregateMode::Single if aggregate.input().output_partitioning().partition_count() == 1 => true,
            _ => return Ok(Transformed::no(node)),
        };
        if aggregate.limit_options().is_some() || deferred_scan(aggregate.input()).is_none() {
            return Ok(Transformed::no(node));
        }
        let first = match one_step {
            false => Arc::clone(&node),
            true => Arc::new(first_step(aggregate)?),
        };
        let by_slice: Arc<dyn ExecutionPlan> =
            Arc::new(PartialsBySlice { aggregate: first, plan: Arc::clone(key), at, partials: Arc::clone(partials) });
        at += 1;
        let replaced = match one_step {
            false => by_slice,
            true => match last_step(aggregate, by_slice)? {
                Some(last) => Arc::new(last),
                None => return Ok(Transformed::no(node)),
            },
        };
        Ok(Transformed::new(replaced, true, TreeNodeRecursion::Jump))
    })
    .map(|t| t.data)
}

/// The first of the two steps `aggregate` (in one step) is made of: the
/// states of its input's groups.
fn first_step(aggregate: &AggregateExec) -> Result<AggregateExec> {
    AggregateExec::try_new(
        AggregateMode::Partial,
        aggregate.group_expr().clone(),
        aggregate.aggr_expr().to_vec(),
        aggregate.filter_expr().to_vec(),
        Arc::clone(aggregate.input()),
        aggregate.input_schema(),
    )
}

/// The last of the two steps of `aggregate` (in one step), over `states`
/// of its [`first_step`]; `None` if its answer would not have the same
/// names and types.
fn last_step(aggregate: &AggregateExec, states: Arc<dyn ExecutionPlan>) -> Result<Option<AggregateExec>> {
    let last = AggregateExec::try_new(
        AggregateMode::Final,
        aggregate.group_expr().as_final(),
        aggregate.aggr_expr().to_vec(),
        aggregate.filter_expr().to_vec(),
        states,
        aggregate.input_schema(),
    )?;
    let (theirs, ours) = (aggregate.schema(), last.schema());
    let same = theirs.fields().len() == ours.fields().len()
        && theirs
            .fields()
            .iter()
            .zip(ours.fields())
            .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
    Ok(same.then_some(last))
}

/// The deferred scan `plan` reads through filters and projections alone
/// (or what only declares or yields), which run on each batch on its own
/// (no limit), so that a partition of them reads that partition of the
/// scan and nothing else.
fn deferred_scan(plan: &Arc<dyn ExecutionPlan>) -> Option<&DeferredScan> {
    if let Some(scan) = plan.downcast_ref::<DeferredScan>() {
        return Some(scan);
    }
    let passes = plan.downcast_ref::<FilterExec>().is_some()
        || plan.downcast_ref::<ProjectionExec>().is_some()
        || plan.downcast_ref::<CooperativeExec>().is_some()
        || plan.downcast_ref::<super::unordered::Unordered>().is_some();
    match plan.children().as_slice() {
        [input] if passes && plan.fetch().is_none() => deferred_scan(input),
        _ => None,
    }
}

/// A partial aggregation over a deferred scan, run slice by slice with
/// the states of whole slices kept.
#[derive(Debug)]
struct PartialsBySlice {
    aggregate: Arc<dyn ExecutionPlan>,
    /// The plan it is part of, and which partial aggregation of it.
    plan: Arc<PlanKey>,
    at: usize,
    partials: Arc<Partials>,
}

impl DisplayAs for PartialsBySlice {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "PartialsBySlice: states of whole slices kept")
    }
}

impl ExecutionPlan for PartialsBySlice {
    unary_plan!("PartialsBySlice", aggregate);

    fn properties(&self) -> &Arc<PlanProperties> {
        self.aggregate.properties()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let input = ScanInput::of(&context)?;
        if input.only.is_some() {
            return self.aggregate.execute(partition, context);
        }
        let Some(scan) = self.aggregate.children().first().and_then(|c| deferred_scan(c)) else {
            return Err(DataFusionError::Internal("partials by slice without their scan".into()));
        };
        // A whole slice on its own, the cut pieces between them together.
        // (Kept per piece of a slice instead, 8 Ki or 16 Ki rows, the
        // states of more of a range were found, yet each piece run on its
        // own cost more than its rows saved.)
        let mut segments: Vec<(Option<u64>, Vec<RecordBatch>)> = Vec::new();
        for piece in scan.pieces(&input, partition)? {
            let whole = (piece.rows == (0..piece.of)).then_some(piece.slice);
            match (whole, segments.last_mut()) {
                (None, Some((None, cut))) => cut.push(piece.batch),
                (whole, _) => segments.push((whole, vec![piece.batch])),
            }
        }
        let (aggregate, partials, plan, at) =
            (Arc::clone(&self.aggregate), Arc::clone(&self.partials), Arc::clone(&self.plan), self.at);
        let streams = segments.into_iter().map(move |(whole, batches)| -> BoxStream<'static, Result<RecordBatch>> {
            let key = whole.map(|slice| PartialKey {
                plan: Arc::clone(&plan),
                at,
                slice,
                filter: Arc::clone(&input.filter_key),
            });
            if let Some(kept) = key.as_ref().and_then(|k| partials.get(k)) {
                return stream::iter(kept.to_vec().into_iter().map(Ok)).boxed();
            }
            let only = ScanInput { only: Some(batches.into()), ..(*input).clone() };
            let states = match aggregate.execute(
                0,
                super::task_with(context.session_config(), context.session_id(), context.runtime_env(), only),
            ) {
                Ok(states) => states,
                Err(e) => return stream::once(async { Err(e) }).boxed(),
            };
            let Some(key) = key else { return states.boxed() };
            let partials = Arc::clone(&partials);
            stream::once(async move {
                let states: Arc<[RecordBatch]> = states.try_collect::<Vec<_>>().await?.into();
                partials.insert(key, Arc::clone(&states));
                Ok::<_, DataFusionError>(stream::iter(states.to_vec().into_iter().map(Ok::<_, DataFusionError>)))
            })
            .try_flatten()
            .boxed()
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema(), stream::iter(streams).flatten())))
    }
}

impl PartialsBySlice {
    /// Itself over `aggregate`, keeping under the same plan and place.
    fn over(&self, aggregate: Arc<dyn ExecutionPlan>) -> Self {
        PartialsBySlice { aggregate, plan: Arc::clone(&self.plan), at: self.at, partials: Arc::clone(&self.partials) }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
    use arrow::record_batch::RecordBatch;
    use datafusion::datasource::MemTable;
    use datafusion::physical_plan::ExecutionPlan;
    use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// An aggregation in one step, split in two, answers as it did, with
    /// the same names and types, whatever the aggregates.
    #[tokio::test]
    async fn an_aggregation_in_one_step_split_in_two_answers_the_same() {
        let batch = |k: Vec<Option<&str>>, v: Vec<Option<i64>>, x: Vec<f64>| {
            RecordBatch::try_from_iter([
                ("k", Arc::new(StringArray::from(k)) as ArrayRef),
                ("v", Arc::new(Int64Array::from(v)) as ArrayRef),
                ("x", Arc::new(Float64Array::from(x)) as ArrayRef),
            ])
            .unwrap()
        };
        let one = batch(vec![Some("a"), None, Some("b")], vec![Some(1), Some(2), None], vec![0.5, f64::NAN, -0.0]);
        let two = batch(vec![Some("b"), Some("a"), None], vec![Some(4), None, Some(i64::MAX)], vec![1.0, 2.0, 0.0]);
        let table = MemTable::try_new(one.schema(), vec![vec![one, two]]).unwrap();
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
        ctx.register_table("t", Arc::new(table)).unwrap();
        for sql in [
            "SELECT k, sum(v) AS s, count(*) AS n, avg(x) AS a FROM t GROUP BY k ORDER BY k",
            "SELECT k, min(x), max(v), count(DISTINCT v), count(v) FROM t GROUP BY k ORDER BY k",
            "SELECT sum(x), count(*) FROM t",
            "SELECT k, sum(v) FILTER (WHERE x > 0) FROM t GROUP BY k ORDER BY k",
        ] {
            let df = ctx.sql(sql).await.unwrap();
            let plan = df.create_physical_plan().await.unwrap();
            let want = datafusion::physical_plan::collect(Arc::clone(&plan), ctx.task_ctx()).await.unwrap();
            let split = plan
                .transform_down(|node| {
                    use datafusion::common::tree_node::Transformed;
                    let Some(a) = node.downcast_ref::<AggregateExec>() else { return Ok(Transformed::no(node)) };
                    assert_eq!(a.mode(), &AggregateMode::Single, "{sql}");
                    let first = Arc::new(super::first_step(a)?);
                    let last = super::last_step(a, first)?.expect("the same names and types");
                    Ok(Transformed::new(Arc::new(last) as Arc<dyn ExecutionPlan>, true, TreeNodeRecursion::Jump))
                })
                .unwrap();
            assert!(split.transformed, "{sql}");
            let got = datafusion::physical_plan::collect(split.data, ctx.task_ctx()).await.unwrap();
            let show = |b: &[RecordBatch]| arrow::util::pretty::pretty_format_batches(b).unwrap().to_string();
            assert_eq!(show(&got), show(&want), "{sql}");
            assert_eq!(got[0].schema().fields().len(), want[0].schema().fields().len());
            for (g, w) in got[0].schema().fields().iter().zip(want[0].schema().fields()) {
                assert_eq!((g.name(), g.data_type()), (w.name(), w.data_type()), "{sql}");
            }
        }
    }

    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};

    /// Entries of no rows still count against the store's bound.
    #[test]
    fn states_of_no_rows_are_bounded_too() {
        let partials = super::Partials::new(64 << 10);
        let plan = Arc::new(super::PlanKey {
            session: crate::router::Session::of("u"),
            text: "SELECT 1".into(),
            partitions: 1,
        });
        let empty: Arc<[RecordBatch]> = Arc::from(Vec::new());
        for slice in 0..10_000 {
            let key = super::PartialKey { plan: Arc::clone(&plan), at: 0, slice, filter: Arc::from("x") };
            partials.insert(key, Arc::clone(&empty));
        }
        let kept = partials.len();
        assert!(kept > 0 && kept <= (64 << 10) / super::ENTRY_BYTES as u64, "{kept} kept");
    }
}
