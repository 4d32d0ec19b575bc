//! A dataset's rows are held in slices: a record batch with the minimum,
//! maximum and null count of each of its columns, computed once when the
//! batch is made. A refresh keeps the slices it does not touch, statistics
//! and all, and a scan skips the slices a filter rules out.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::{Column, ScalarValue};
use datafusion_functions_aggregate_common::min_max::{max_batch, min_batch};

/// One batch of a dataset and its statistics.
#[derive(Debug, Clone)]
pub struct Slice {
    pub batch: RecordBatch,
    pub stats: Arc<BatchStats>,
    /// Never the same for two slices made by this process: what is
    /// computed from a slice's rows is kept under it ([`crate::local`]'s
    /// partial aggregates), as slices are never changed once made.
    pub id: u64,
}

impl Slice {
    /// `batch`, with its statistics computed.
    pub fn new(batch: RecordBatch) -> Self {
        let batch = compacted(batch);
        let stats = Arc::new(BatchStats::of(&batch));
        Slice { batch, stats, id: next_id() }
    }
}

fn next_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Per column of a batch: smallest and largest value (`None` when the
/// type has no order kept here, or every value is null), and null count.
#[derive(Debug, PartialEq)]
pub struct BatchStats {
    pub min: Vec<Option<ScalarValue>>,
    pub max: Vec<Option<ScalarValue>>,
    pub nulls: Vec<u64>,
}

impl BatchStats {
    fn of(batch: &RecordBatch) -> Self {
        let known = |s: datafusion::common::Result<ScalarValue>| s.ok().filter(|s| !s.is_null());
        BatchStats {
            min: batch.columns().iter().map(|c| known(min_batch(c))).collect(),
            max: batch.columns().iter().map(|c| known(max_batch(c))).collect(),
            nulls: batch.columns().iter().map(|c| c.null_count() as u64).collect(),
        }
    }
}

/// The statistics of `slices` as one batch, a row per slice: for column
/// `i` of `schema`, `min_i` and `max_i` of its type (null when not known;
/// of type `Null` when the type has no scalar form) and `nulls_i`.
pub(super) fn stats_batch(schema: &Schema, slices: &[Slice]) -> Result<RecordBatch, String> {
    let mut fields = Vec::new();
    let mut columns: Vec<ArrayRef> = Vec::new();
    for (i, field) in schema.fields().iter().enumerate() {
        for (name, pick) in [("min", 0), ("max", 1)] {
            let picked = |s: &Slice| if pick == 0 { s.stats.min[i].clone() } else { s.stats.max[i].clone() };
            let column = match ScalarValue::try_from(field.data_type()) {
                Ok(_) if slices.is_empty() => arrow::array::new_empty_array(field.data_type()),
                Ok(null) => {
                    ScalarValue::iter_to_array(slices.iter().map(|s| picked(s).unwrap_or_else(|| null.clone())))
                        .map_err(|e| e.to_string())?
                }
                Err(_) => arrow::array::new_null_array(&DataType::Null, slices.len()),
            };
            fields.push(Field::new(format!("{name}_{i}"), column.data_type().clone(), true));
            columns.push(column);
        }
        fields.push(Field::new(format!("nulls_{i}"), DataType::UInt64, false));
        columns.push(Arc::new(UInt64Array::from_iter_values(slices.iter().map(|s| s.stats.nulls[i]))));
    }
    let options = arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(slices.len()));
    RecordBatch::try_new_with_options(Arc::new(Schema::new(fields)), columns, &options).map_err(|e| e.to_string())
}

/// Slices of `batches` with the statistics `stats_batch` wrote for them.
pub(super) fn with_stats(batches: Vec<RecordBatch>, stats: &RecordBatch) -> Result<Vec<Slice>, String> {
    if stats.num_rows() != batches.len() || batches.first().is_some_and(|b| stats.num_columns() != 3 * b.num_columns())
    {
        return Err(format!("{} slices, statistics of {}", batches.len(), stats.num_rows()));
    }
    let scalar = |column: usize, row: usize| -> Result<Option<ScalarValue>, String> {
        let c = stats.column(column);
        if c.data_type() == &DataType::Null || c.is_null(row) {
            return Ok(None);
        }
        ScalarValue::try_from_array(c, row).map(Some).map_err(|e| e.to_string())
    };
    batches
        .into_iter()
        .enumerate()
        .map(|(row, batch)| {
            let n = batch.num_columns();
            let stats = BatchStats {
                min: (0..n).map(|i| scalar(3 * i, row)).collect::<Result<_, _>>()?,
                max: (0..n).map(|i| scalar(3 * i + 1, row)).collect::<Result<_, _>>()?,
                nulls: (0..n)
                    .map(|i| stats.column(3 * i + 2).as_any().downcast_ref::<UInt64Array>().map(|a| a.value(row)))
                    .collect::<Option<_>>()
                    .ok_or("null counts are not UInt64")?,
            };
            Ok(Slice { batch: compacted(batch), stats: Arc::new(stats), id: next_id() })
        })
        .collect()
}

/// `batch` with each string view column holding only the bytes its views
/// point to, and no buffer at all when every string is inline (12 bytes
/// or less). Arrow's comparisons and DataFusion's hashing compare inline
/// views as plain integers only when a column has no buffer; a column
/// cast from `Utf8` keeps the whole source buffer even when it needs none.
fn compacted(batch: RecordBatch) -> RecordBatch {
    use arrow::array::AsArray;
    if !batch
        .columns()
        .iter()
        .any(|c| c.data_type() == &DataType::Utf8View && !c.as_string_view().data_buffers().is_empty())
    {
        return batch;
    }
    let columns = batch
        .columns()
        .iter()
        .map(|c| match c.data_type() {
            DataType::Utf8View => Arc::new(c.as_string_view().gc()) as ArrayRef,
            _ => Arc::clone(c),
        })
        .collect();
    RecordBatch::try_new(batch.schema(), columns).expect("the same columns, compacted")
}

/// Field metadata of a dataset column some of whose values Trino gave in a
/// form Arrow keeps only in part (a zone other than UTC, digits below the
/// nanosecond; see [`Beyond`](crate::trino::decode::Beyond)). The local
/// engine leaves queries on such a dataset to Trino, which has whole values.
pub const PARTIAL: &str = "flightdeck.accel.partial";

/// `schema` with [`PARTIAL`] on every column that is partial in `old` or
/// carries what Arrow cannot hold in one of `batches`.
pub fn marked(schema: &SchemaRef, batches: &[RecordBatch], old: Option<&Schema>) -> SchemaRef {
    use crate::trino::decode::Beyond;
    let partial: Vec<bool> = (0..schema.fields().len())
        .map(|i| {
            old.and_then(|o| o.fields().get(i)).is_some_and(|f| f.metadata().contains_key(PARTIAL))
                || batches.iter().any(|b| {
                    let m = b.schema_ref().field(i).metadata();
                    Beyond::KEYS.iter().any(|k| m.contains_key(*k))
                })
        })
        .collect();
    if !partial.contains(&true) {
        return Arc::clone(schema);
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .zip(&partial)
        .map(|(f, &partial)| {
            let f = f.as_ref().clone();
            if !partial {
                return f;
            }
            let mut metadata = f.metadata().clone();
            metadata.insert(PARTIAL.to_string(), "true".to_string());
            f.with_metadata(metadata)
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// Strings are held as views (`Utf8View`), the layout DataFusion's
/// comparisons, filters and grouping run fastest on; other types as read.
pub fn layout(schema: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 => f.as_ref().clone().with_data_type(DataType::Utf8View),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `batch` in the `layout` of its schema.
pub fn relayout(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, String> {
    cast_to(batch, schema).map_err(|e| e.to_string())
}

/// `batch` with the names and types of `schema`, column by column. A value
/// the target type cannot hold is an error, never made NULL.
pub fn cast_to(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, arrow::error::ArrowError> {
    const STRICT: arrow::compute::CastOptions<'static> =
        arrow::compute::CastOptions { safe: false, format_options: arrow::util::display::FormatOptions::new() };
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| match c.data_type() == f.data_type() {
            true => Ok(Arc::clone(c)),
            false => arrow::compute::cast_with_options(c, f.data_type(), &STRICT),
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(Arc::clone(schema), columns)
}

/// The statistics of a run of slices, for DataFusion's pruning.
pub(super) struct Statistics<'a> {
    pub schema: &'a Schema,
    pub slices: &'a [&'a Slice],
}

impl Statistics<'_> {
    fn values(&self, column: &Column, pick: impl Fn(&BatchStats) -> &[Option<ScalarValue>]) -> Option<ArrayRef> {
        let index = self.schema.index_of(&column.name).ok()?;
        let ty = self.schema.field(index).data_type();
        let null = ScalarValue::try_from(ty).ok()?;
        let values = self.slices.iter().map(|s| pick(&s.stats)[index].clone().unwrap_or_else(|| null.clone()));
        ScalarValue::iter_to_array(values).ok()
    }
}

impl PruningStatistics for Statistics<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.values(column, |s| &s.min)
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.values(column, |s| &s.max)
    }

    fn num_containers(&self) -> usize {
        self.slices.len()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        let index = self.schema.index_of(&column.name).ok()?;
        Some(Arc::new(UInt64Array::from_iter_values(self.slices.iter().map(|s| s.stats.nulls[index]))))
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        Some(Arc::new(UInt64Array::from_iter_values(self.slices.iter().map(|s| s.batch.num_rows() as u64))))
    }

    fn contained(&self, _: &Column, _: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        None
    }
}
