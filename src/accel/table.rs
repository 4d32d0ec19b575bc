//! One version of a dataset as a DataFusion table.
//!
//! The provider holds the version it was made from, so a query reads one
//! version from start to end whatever refreshes do meanwhile. Filters are
//! checked against each slice's statistics and the slices they rule out are
//! not scanned. Bounds on the time column cut each slice to the range;
//! other filters still run on what is read. Rows of a dataset with a time
//! column are declared sorted by it, so sorts and ordered aggregates on it
//! need no sort.

use std::sync::Arc;

use arrow::array::UInt32Array;
use arrow::compute::SortOptions;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::DataFusionError;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchema, Result};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::utils::{conjunction, split_conjunction};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_optimizer::pruning::{PruningPredicate, PruningPredicateBuilder};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType, ReplaceChildrenOptions};
use datafusion::physical_plan::expressions::Column;
use datafusion::physical_plan::expressions::col;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};

use super::Version;
use super::refresh::time_value;
use super::slice::{Slice, Statistics};

/// A scan of a dataset under retention that could read times older than
/// it holds: only Trino has those rows.
#[derive(Debug, thiserror::Error)]
#[error("the query may read times older than the dataset keeps")]
pub struct BeforeRetention;

/// A dataset version, scanned by DataFusion.
#[derive(Debug, Clone)]
pub struct DatasetTable {
    version: Arc<Version>,
    /// The column the rows are sorted by (ascending, nulls first).
    sorted_by: Option<String>,
    /// Read newest first: by the time column descending, nulls last.
    newest_first: bool,
    /// Scanned by a plan kept for reuse: the rows and the time range come
    /// with each execution ([`ScanInput`]), not with the plan.
    deferred: bool,
}

/// What an execution of a plan kept for reuse reads: the dataset version,
/// the range of times (first and last included, in the time column's
/// unit) and a filter on the table's columns (against its whole schema)
/// that the rows read must pass. A [`DeferredScan`] takes it from the
/// task's session configuration, so a kept plan holds no rows.
#[derive(Debug, Clone)]
pub struct ScanInput {
    pub table: DatasetTable,
    pub range: (i128, i128),
    pub filter: Option<Arc<dyn PhysicalExpr>>,
    /// Tells `filter` from any other: equal keys, equal filters.
    pub filter_key: Arc<str>,
    /// Rows to read instead of the table's, all in the first partition:
    /// a piece of what an execution reads, run through the plan on its own.
    pub only: Option<Arc<[RecordBatch]>>,
}

/// Rows a scan reads of one slice: all of them, or those of a time range.
#[derive(Debug, Clone)]
pub struct Piece {
    pub batch: RecordBatch,
    /// The slice's [`Slice::id`].
    pub slice: u64,
    /// Which of the slice's rows the piece holds.
    pub rows: std::ops::Range<usize>,
    /// The slice's row count.
    pub of: usize,
}

impl DatasetTable {
    pub fn new(version: Arc<Version>, sorted_by: Option<String>) -> Self {
        DatasetTable { version, sorted_by, newest_first: false, deferred: false }
    }

    /// The same version, scanned by a plan kept for reuse: the scan reads
    /// the time range each execution brings, within the bounds the plan's
    /// own filters set.
    pub fn deferred(&self) -> DatasetTable {
        DatasetTable { deferred: true, ..self.clone() }
    }

    /// The column the rows are sorted by, if any.
    pub fn sorted_by(&self) -> Option<&str> {
        self.sorted_by.as_deref()
    }

    /// The same version read newest first (by the time column descending,
    /// nulls last), so that `ORDER BY time DESC LIMIT n` reads only the
    /// newest slices instead of sorting them all.
    pub fn newest_first(&self) -> DatasetTable {
        DatasetTable { newest_first: true, ..self.clone() }
    }

    /// The same table without its rows: what planning reads of it (schema,
    /// time column, retention), for a session kept beyond the query, which
    /// must not hold a replaced version's memory.
    pub fn without_rows(&self) -> DatasetTable {
        let v = &self.version;
        let version = Version {
            number: v.number,
            schema: Arc::clone(&v.schema),
            slices: Vec::new(),
            rows: 0,
            bytes: 0,
            watermark: None,
            held_from: v.held_from,
            iceberg_snapshot: v.iceberg_snapshot,
            _reservation: crate::memory::MemoryBudget::new(0).reservation(),
        };
        DatasetTable { version: Arc::new(version), ..self.clone() }
    }

    /// The range of times `filters` allow when every one of them is a
    /// [`bound`] on the time column and the range starts inside what the
    /// version holds; `None` otherwise.
    pub fn exact_range(&self, filters: &[Expr]) -> Option<(i128, i128)> {
        let (column, index) = self.time_column()?;
        let ty = self.version.schema.field(index).data_type();
        let mut conjuncts = filters.iter().flat_map(split_conjunction).peekable();
        if conjuncts.peek().is_none() || !conjuncts.all(|f| bound(f, column, ty).is_some()) {
            return None;
        }
        let range = time_range(filters, column, ty)?;
        self.holds_from(range.0).then_some(range)
    }

    /// Whether the version holds every row from the time `first` on: not
    /// when retention dropped rows after it.
    fn holds_from(&self, first: i128) -> bool {
        self.version.held_from.is_none_or(|from| first >= i128::from(from))
    }

    /// Whether `column` holds strings of at most 12 bytes only, each whole
    /// in its view: no slice has a buffer for longer ones. A version does
    /// not change, so neither does the answer.
    pub fn inline_strings(&self, column: &str) -> bool {
        use arrow::array::AsArray;
        let Ok(index) = self.version.schema.index_of(column) else { return false };
        // A copy without rows (planning only) says no: it cannot tell.
        self.version.schema.field(index).data_type() == &DataType::Utf8View
            && !self.version.slices.is_empty()
            && self.version.slices.iter().all(|s| s.batch.column(index).as_string_view().data_buffers().is_empty())
    }

    /// The rows of the version it reads.
    pub fn rows(&self) -> u64 {
        self.version.rows
    }

    /// The number of the version it reads.
    pub fn version_number(&self) -> u64 {
        self.version.number
    }

    /// The slices `filters` do not rule out.
    pub fn candidates(&self, state: &dyn Session, filters: &[Expr]) -> Result<Vec<&Slice>> {
        let schema = &self.version.schema;
        let time = self.time_column().map(|(column, index)| (column, schema.field(index).data_type()));
        let range = time.and_then(|(column, ty)| time_range(filters, column, ty));
        self.select(range, self.pruning(state, filters)?.as_deref())
    }

    /// What the statistics can rule out by the filters that are not
    /// [`bound`]s; `None` when nothing. Bounds on the time column are
    /// checked against each slice's range directly: a dashboard's filters
    /// are mostly that, and a pruning predicate costs more to build than
    /// the scan it saves.
    fn pruning(&self, state: &dyn Session, filters: &[Expr]) -> Result<Option<Arc<PruningPredicate>>> {
        let schema = &self.version.schema;
        let is_bound = self.bound_test();
        let rest: Vec<Expr> = filters.iter().flat_map(split_conjunction).filter(|f| !is_bound(f)).cloned().collect();
        let Some(filter) = conjunction(rest) else {
            return Ok(None);
        };
        let df_schema = DFSchema::try_from(Arc::clone(schema))?;
        let predicate = state.create_physical_expr(filter, &df_schema)?;
        Ok(PruningPredicateBuilder::new().with_file_schema(Arc::clone(schema)).build(predicate))
    }

    /// The slices that can hold a time in `range` (all without one) and
    /// that `pruning` keeps.
    fn select(&self, range: Option<(i128, i128)>, pruning: Option<&PruningPredicate>) -> Result<Vec<&Slice>> {
        let slices: Vec<&Slice> = match self.time_column().zip(range) {
            Some(((_, index), range)) => self.version.slices.iter().filter(|s| overlaps(s, index, range)).collect(),
            None => self.version.slices.iter().collect(),
        };
        let Some(pruning) = pruning else {
            return Ok(slices);
        };
        let keep = pruning.prune(&Statistics { schema: &self.version.schema, slices: &slices })?;
        Ok(slices.into_iter().zip(keep).filter(|(_, keep)| *keep).map(|(s, _)| s).collect())
    }

    /// The rows of the slices selected for `range`, each cut to it.
    fn read(&self, range: Option<(i128, i128)>, pruning: Option<&PruningPredicate>) -> Result<Vec<RecordBatch>> {
        Ok(self.pieces(range, pruning)?.into_iter().map(|p| p.batch).collect())
    }

    /// [`read`](Self::read), each piece telling whether it is a whole slice.
    pub(super) fn pieces(&self, range: Option<(i128, i128)>, pruning: Option<&PruningPredicate>) -> Result<Vec<Piece>> {
        let index = self.time_column().map(|(_, index)| index);
        Ok(self
            .select(range, pruning)?
            .iter()
            .filter_map(|s| {
                let of = s.batch.num_rows();
                let rows = match index.zip(range) {
                    Some((index, range)) => rows_in(&s.batch, index, range)?,
                    None => 0..of,
                };
                let batch = s.batch.slice(rows.start, rows.len());
                Some(Piece { batch, slice: s.id, rows, of })
            })
            .collect())
    }

    /// Whether a filter is a [`bound`] on the time column: met exactly by
    /// the scan, which cuts each slice to the range.
    fn bound_test(&self) -> impl Fn(&Expr) -> bool + '_ {
        let time = self.time_column().map(|(column, index)| (column, self.version.schema.field(index).data_type()));
        move |f| time.is_some_and(|(column, ty)| bound(f, column, ty).is_some())
    }

    /// The time column the rows are sorted by, and its index.
    fn time_column(&self) -> Option<(&str, usize)> {
        let column = self.sorted_by.as_deref()?;
        Some((column, self.version.schema.index_of(column).ok()?))
    }
}

/// Whether `slice` can hold a time in `first..=last` in its column `index`,
/// by its statistics: a slice of null times holds none.
fn overlaps(slice: &Slice, index: usize, (first, last): (i128, i128)) -> bool {
    let value = |v: &Option<datafusion::common::ScalarValue>| v.as_ref().and_then(time_value).map(i128::from);
    match (value(&slice.stats.min[index]), value(&slice.stats.max[index])) {
        (Some(min), Some(max)) => min <= last && max >= first,
        _ => false,
    }
}

#[async_trait]
impl TableProvider for DatasetTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.version.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> Result<Vec<TableProviderFilterPushDown>> {
        // A bound on the time column is met exactly by trimming the slices
        // ([`trimmed`]); every other filter skips slices by their
        // statistics and still runs on the rows read.
        let is_bound = self.bound_test();
        Ok(filters
            .iter()
            .map(|f| match is_bound(f) {
                true => TableProviderFilterPushDown::Exact,
                false => TableProviderFilterPushDown::Inexact,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = Arc::clone(&self.version.schema);
        // The rows of each slice inside the time range the filters allow:
        // dashboards filter on time, and a range rarely covers whole slices.
        // This is what meets the filters pushed down as exact.
        let time = self.time_column();
        let range = time.and_then(|(column, index)| time_range(filters, column, schema.field(index).data_type()));
        if self.deferred {
            return DeferredScan::new(self, state, projection, filters, range).map(|s| Arc::new(s) as _);
        }
        if self.version.held_from.is_some() && !range.is_some_and(|(first, _)| self.holds_from(first)) {
            return Err(DataFusionError::External(Box::new(BeforeRetention)));
        }
        let batches = self.read(range, self.pruning(state, filters)?.as_deref())?;
        if self.newest_first
            && let Some((column, _)) = time
        {
            let projected = match projection {
                Some(p) => Arc::new(schema.project(p)?),
                None => Arc::clone(&schema),
            };
            if let Ok(index) = projected.index_of(column) {
                let batches = match projection {
                    Some(p) => batches.iter().map(|b| b.project(p)).collect::<Result<Vec<_>, _>>()?,
                    None => batches,
                };
                return Ok(Arc::new(NewestFirst::new(batches, projected, index)));
            }
        }
        let runs = runs(&batches, state.config().target_partitions().max(1));
        let runs = if runs.is_empty() { vec![Vec::new()] } else { runs };
        let mut source =
            MemorySourceConfig::try_new(&runs, Arc::clone(&schema), projection.cloned())?.with_limit(limit);
        if let Some((column, index)) = time {
            // Nulls are held first. Without any, the rows are as much in
            // `NULLS LAST` order, the one Trino's ascending sorts ask for
            // (DataFusion keeps one of two such orderings).
            // A time range leaves no null times.
            let nulls_first = range.is_none() && self.version.slices.iter().any(|s| s.stats.nulls[index] > 0);
            let order = PhysicalSortExpr::new(col(column, &schema)?, SortOptions { descending: false, nulls_first });
            source = source.try_with_sort_information(LexOrdering::new([order]).into_iter().collect())?;
        }
        Ok(DataSourceExec::from_data_source(source))
    }
}

/// The times, first and last included, that rows passing `filters` can
/// have in the column `column` of type `ty`, in its unit: the
/// intersection of the filters that are [`bound`]s. `None` when none is.
/// Empty when `first > last`.
pub(super) fn time_range(filters: &[Expr], column: &str, ty: &DataType) -> Option<(i128, i128)> {
    filters
        .iter()
        .flat_map(split_conjunction)
        .filter_map(|e| bound(e, column, ty))
        .reduce(|(a, b), (c, d)| (a.max(c), b.min(d)))
}

/// The times, first and last included, that `e` lets through when it
/// compares the column `column` of type `ty` with literals of that type (or
/// that convert to it exactly) and nothing else; `None` when it does not.
/// Exactly the rows with a time in the range pass `e`: a null time passes
/// no comparison.
pub(super) fn bound(e: &Expr, column: &str, ty: &DataType) -> Option<(i128, i128)> {
    use datafusion::logical_expr::{Between, BinaryExpr, Operator};

    // A bound is pushed down as exact: only on a column [`trimmed`] cuts.
    if !trimmable(ty) {
        return None;
    }
    let value = |e: &Expr| -> Option<i128> {
        let Expr::Literal(v, _) = e else { return None };
        let cast = v.cast_to(ty).ok()?;
        // Only a literal the column's type holds exactly: `>= 1.5 ms` on a
        // column of milliseconds must not become `>= 1 ms`.
        if cast.cast_to(&v.data_type()).ok()? != *v {
            return None;
        }
        time_value(&cast).map(i128::from)
    };
    let is_column = |e: &Expr| matches!(e, Expr::Column(c) if c.name == column);
    let (min, max) = (i128::from(i64::MIN), i128::from(i64::MAX));
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (op, v) = match (is_column(left), is_column(right)) {
                (true, false) => (*op, value(right)?),
                (false, true) => (op.swap()?, value(left)?),
                _ => return None,
            };
            match op {
                Operator::GtEq => Some((v, max)),
                Operator::Gt => Some((v + 1, max)),
                Operator::Lt => Some((min, v - 1)),
                Operator::LtEq => Some((min, v)),
                Operator::Eq => Some((v, v)),
                _ => None,
            }
        }
        Expr::Between(Between { expr, negated: false, low, high }) if is_column(expr) => {
            Some((value(low)?, value(high)?))
        }
        _ => None,
    }
}

/// Whether [`trimmed`] cuts slices by a column of type `ty`.
fn trimmable(ty: &DataType) -> bool {
    matches!(
        ty,
        DataType::Timestamp(..)
            | DataType::Int64
            | DataType::Date32
            | DataType::Int32
            | DataType::Int16
            | DataType::Int8
    )
}

/// The rows [`rows_in`] finds, as a slice of `batch` (no copy).
#[cfg(test)]
pub(super) fn trimmed(batch: &RecordBatch, index: usize, range: (i128, i128)) -> Option<RecordBatch> {
    rows_in(batch, index, range).map(|rows| batch.slice(rows.start, rows.len()))
}

/// Which rows of `batch`, sorted by its column `index` with nulls first (as
/// a dataset's time column is held), have a time in `first..=last`; `None`
/// when there are none.
fn rows_in(batch: &RecordBatch, index: usize, (first, last): (i128, i128)) -> Option<std::ops::Range<usize>> {
    fn span<T: Copy + Into<i128>>(values: &[T], nulls: usize, first: i128, last: i128) -> (usize, usize) {
        let values = &values[nulls..];
        (
            nulls + values.partition_point(|v| (*v).into() < first),
            nulls + values.partition_point(|v| (*v).into() <= last),
        )
    }
    let data = batch.column(index).to_data();
    let nulls = data.null_count();
    let (start, end) = match data.data_type() {
        DataType::Timestamp(..) | DataType::Int64 => span(data.buffer::<i64>(0), nulls, first, last),
        DataType::Date32 | DataType::Int32 => span(data.buffer::<i32>(0), nulls, first, last),
        DataType::Int16 => span(data.buffer::<i16>(0), nulls, first, last),
        DataType::Int8 => span(data.buffer::<i8>(0), nulls, first, last),
        _ => return Some(0..batch.num_rows()),
    };
    (end > start).then_some(start..end)
}

/// `batches` in contiguous runs, one per partition at most, so each stays
/// in time order.
fn runs<T: Clone>(batches: &[T], partitions: usize) -> Vec<Vec<T>> {
    let per = batches.len().div_ceil(partitions).max(1);
    batches.chunks(per).map(<[T]>::to_vec).collect()
}

/// The methods every leaf plan of this module shares: no children, no
/// expressions, its properties as made.
macro_rules! leaf_plan {
    ($name:literal) => {
        fn name(&self) -> &'static str {
            $name
        }

        fn properties(&self) -> &Arc<PlanProperties> {
            &self.properties
        }

        fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
            vec![]
        }

        fn apply_expressions(
            &self,
            _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
        ) -> Result<TreeNodeRecursion> {
            Ok(TreeNodeRecursion::Continue)
        }

        fn replace_children(
            self: Arc<Self>,
            _: Vec<Arc<dyn ExecutionPlan>>,
            _: ReplaceChildrenOptions,
        ) -> Result<Arc<dyn ExecutionPlan>> {
            Ok(self)
        }

        fn with_new_children(self: Arc<Self>, _: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
            Ok(self)
        }
    };
}

/// Rows [`NewestFirst`] reverses at a time.
const REVERSED_ROWS: usize = 8192;

/// Batches of a dataset sorted by its time column, read last batch first
/// and each reversed as it is read: the rows by time descending, nulls
/// last. Reading stops where its consumer stops (a limit), so the older
/// slices are never touched.
#[derive(Debug)]
struct NewestFirst {
    batches: Vec<RecordBatch>,
    properties: Arc<PlanProperties>,
}

impl NewestFirst {
    /// `batches` in time order (ascending, nulls first) with the time
    /// column at `index` of `schema`.
    fn new(batches: Vec<RecordBatch>, schema: SchemaRef, index: usize) -> Self {
        let order = PhysicalSortExpr::new(
            Arc::new(Column::new(schema.field(index).name(), index)),
            SortOptions { descending: true, nulls_first: false },
        );
        let ordering = LexOrdering::new([order]).into_iter();
        let properties = PlanProperties::new(
            EquivalenceProperties::new_with_orderings(schema, ordering),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        NewestFirst { batches, properties: Arc::new(properties) }
    }
}

impl DisplayAs for NewestFirst {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "NewestFirst: batches={}", self.batches.len())
    }
}

impl ExecutionPlan for NewestFirst {
    leaf_plan!("NewestFirst");

    fn execute(&self, partition: usize, _: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!("NewestFirst has one partition, not {partition}")));
        }
        // Reversed a piece at a time from the end, so that a limit met in
        // the newest rows copies no more than a piece of the slice.
        let reversed = self.batches.clone().into_iter().rev().flat_map(|b| {
            let n = b.num_rows();
            (0..n.div_ceil(REVERSED_ROWS)).map(move |i| {
                let end = n - i * REVERSED_ROWS;
                let start = end.saturating_sub(REVERSED_ROWS);
                let indices = UInt32Array::from_iter_values((start as u32..end as u32).rev());
                Ok(arrow::compute::take_record_batch(&b, &indices)?)
            })
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema(), futures::stream::iter(reversed))))
    }
}

/// The scan in a plan kept for reuse: it reads the version and the range
/// of times each execution brings ([`ScanInput`]) within the bounds of the
/// plan's own filters, and keeps the rows that pass the execution's filter,
/// so the plan holds neither rows nor anything of a statement's range or
/// filter values. It declares
/// what a scan planned with a range declares whatever the range: as many
/// partitions as the plan's configuration asks, rows in time order with no
/// null time, and no statistics.
#[derive(Debug)]
pub struct DeferredScan {
    projection: Option<Vec<usize>>,
    /// The range the plan's own filters allow, if they bound the time.
    bounds: Option<(i128, i128)>,
    pruning: Option<Arc<PruningPredicate>>,
    partitions: usize,
    properties: Arc<PlanProperties>,
}

impl DeferredScan {
    fn new(
        table: &DatasetTable,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        bounds: Option<(i128, i128)>,
    ) -> Result<Self> {
        let not_kept = |what: &str| Err(DataFusionError::NotImplemented(format!("a plan kept for reuse {what}")));
        if table.newest_first {
            return not_kept("reading newest first");
        }
        let Some((column, _)) = table.time_column() else {
            return not_kept("over a dataset without a time column");
        };
        let schema = match projection {
            Some(p) => Arc::new(table.version.schema.project(p)?),
            None => Arc::clone(&table.version.schema),
        };
        let equivalences = match schema.index_of(column) {
            Ok(index) => {
                let order = PhysicalSortExpr::new(
                    Arc::new(Column::new(column, index)),
                    SortOptions { descending: false, nulls_first: false },
                );
                EquivalenceProperties::new_with_orderings(Arc::clone(&schema), LexOrdering::new([order]))
            }
            Err(_) => EquivalenceProperties::new(Arc::clone(&schema)),
        };
        let partitions = state.config().target_partitions().max(1);
        let properties = PlanProperties::new(
            equivalences,
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(DeferredScan {
            projection: projection.cloned(),
            bounds,
            pruning: table.pruning(state, filters)?,
            partitions,
            properties: Arc::new(properties),
        })
    }

    /// What partition `partition` of an execution reads, before its
    /// filter: the pieces of the slices in the execution's range (within
    /// the plan's own bounds), in time order.
    pub fn pieces(&self, input: &ScanInput, partition: usize) -> Result<Vec<Piece>> {
        let (first, last) = input.range;
        let range = match self.bounds {
            Some((a, b)) => (a.max(first), b.min(last)),
            None => (first, last),
        };
        if !input.table.holds_from(range.0) {
            return Err(DataFusionError::External(Box::new(BeforeRetention)));
        }
        let pieces = input.table.pieces(Some(range), self.pruning.as_deref())?;
        Ok(runs(&pieces, self.partitions).into_iter().nth(partition).unwrap_or_default())
    }
}

impl ScanInput {
    /// The input an execution of a kept plan carries in `context`.
    pub fn of(context: &TaskContext) -> Result<Arc<ScanInput>> {
        context
            .session_config()
            .get_extension::<ScanInput>()
            .ok_or_else(|| DataFusionError::Internal("a plan kept for reuse ran without its input".into()))
    }
}

impl DisplayAs for DeferredScan {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "DeferredScan: the time range of each execution, partitions={}", self.partitions)
    }
}

impl ExecutionPlan for DeferredScan {
    leaf_plan!("DeferredScan");

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let input = ScanInput::of(&context)?;
        let run: Vec<RecordBatch> = match &input.only {
            Some(only) if partition == 0 => only.to_vec(),
            Some(_) => Vec::new(),
            None => self.pieces(&input, partition)?.into_iter().map(|p| p.batch).collect(),
        };
        let projection = self.projection.clone();
        let filter = input.filter.clone();
        // Filtered batch by batch as the consumer reads, as a filter above
        // the scan would be.
        let read = run.into_iter().map(move |b| {
            let kept = match &projection {
                Some(p) => b.project(p)?,
                None => b.clone(),
            };
            let Some(filter) = &filter else { return Ok(kept) };
            let mask = filter.evaluate(&b)?.into_array(b.num_rows())?;
            let mask = datafusion::common::cast::as_boolean_array(&mask)?;
            Ok(arrow::compute::filter_record_batch(&kept, mask)?)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(self.schema(), futures::stream::iter(read))))
    }
}
