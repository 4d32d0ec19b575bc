use std::time::Duration;

use arrow::datatypes::{DataType, TimeUnit};

use super::refresh::{appended_since, cutoff, next_wait};

#[test]
fn cutoffs_are_exact_literals_in_the_columns_unit() {
    let hour = Duration::from_secs(3600);
    // 2024-01-01 12:00:00.123 in milliseconds.
    let ms = 1_704_110_400_123;
    let c = cutoff(&DataType::Timestamp(TimeUnit::Millisecond, None), ms, hour).unwrap();
    assert_eq!((c.value, c.literal.as_str()), (ms - 3_600_000, "TIMESTAMP '2024-01-01 11:00:00.123'"));
    let c = cutoff(&DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), ms * 1000, Duration::ZERO).unwrap();
    assert_eq!(c.literal, "TIMESTAMP '2024-01-01 12:00:00.123000 UTC'");
    // Dates step back whole days, rounding the overlap up.
    let c = cutoff(&DataType::Date32, 19_723, hour).unwrap();
    assert_eq!((c.value, c.literal.as_str()), (19_722, "DATE '2023-12-31'"));
    let c = cutoff(&DataType::Int64, 1_000, Duration::from_secs(60)).unwrap();
    assert_eq!((c.value, c.literal.as_str()), (940, "BIGINT '940'"));
    assert!(cutoff(&DataType::Utf8, 0, hour).is_err(), "a text column cannot be a watermark");
}

#[test]
fn refreshes_wait_their_interval_with_jitter_and_back_off_after_failures() {
    let interval = Duration::from_secs(60);
    for _ in 0..100 {
        let w = next_wait(interval, 0);
        assert!(w >= interval && w <= interval + Duration::from_secs(6), "{w:?}");
    }
    assert_eq!(next_wait(interval, 1), Duration::from_secs(1));
    assert_eq!(next_wait(interval, 3), Duration::from_secs(4));
    assert_eq!(next_wait(interval, 30), interval, "never longer than the interval");
}

fn int_slices(bounds: &[std::ops::Range<i64>]) -> (arrow::datatypes::SchemaRef, Vec<super::Slice>) {
    use std::sync::Arc;

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use arrow::record_batch::RecordBatch;

    let schema =
        Arc::new(Schema::new(vec![Field::new("t", DataType::Int64, true), Field::new("s", DataType::Utf8View, true)]));
    let batch = |r: std::ops::Range<i64>| {
        let s = StringArray::from_iter_values(r.clone().map(|v| format!("v{v:04}")));
        let s = arrow::compute::cast(&s, &DataType::Utf8View).unwrap();
        RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(Int64Array::from_iter_values(r)), s]).unwrap()
    };
    (Arc::clone(&schema), bounds.iter().map(|r| super::Slice::new(batch(r.clone()))).collect())
}

fn ints(batches: impl IntoIterator<Item = arrow::record_batch::RecordBatch>) -> Vec<i64> {
    use arrow::array::{Array, Int64Array};
    batches
        .into_iter()
        .flat_map(|b| b.column(0).as_any().downcast_ref::<Int64Array>().unwrap().values().to_vec())
        .collect()
}

#[test]
fn a_stretch_copies_only_the_slices_at_its_edges() {
    let (_, slices) = int_slices(&[0..10, 10..20, 20..30, 30..40]);
    let kept = super::refresh::within(&slices, 0, 5, 25).unwrap();
    assert_eq!(ints(kept.iter().map(|s| s.batch.clone())), (5..25).collect::<Vec<_>>());
    assert_eq!(kept.len(), 3, "the slice past the stretch is dropped");
    assert!(
        kept[1].batch.column(0).to_data().ptr_eq(&slices[1].batch.column(0).to_data()),
        "the slice inside is not copied"
    );
    assert!(std::sync::Arc::ptr_eq(&kept[1].stats, &slices[1].stats), "nor are its statistics computed again");
    // Edge slices get statistics of what they keep.
    assert_eq!(kept[0].stats.min[0], Some(datafusion::common::ScalarValue::Int64(Some(5))));
    assert_eq!(kept[2].stats.max[0], Some(datafusion::common::ScalarValue::Int64(Some(24))));
}

pub(super) fn version(
    slices: Vec<super::Slice>,
    schema: arrow::datatypes::SchemaRef,
) -> std::sync::Arc<super::Version> {
    let budget = crate::memory::MemoryBudget::new(u64::MAX);
    let rows = slices.iter().map(|s| s.batch.num_rows() as u64).sum();
    std::sync::Arc::new(super::Version {
        number: 1,
        schema,
        slices,
        rows,
        bytes: 0,
        watermark: None,
        held_from: None,
        iceberg_snapshot: None,
        _reservation: budget.reservation(),
    })
}

#[tokio::test]
async fn a_scan_skips_the_slices_its_filters_rule_out_and_reads_one_version() {
    use datafusion::prelude::SessionContext;

    let (schema, slices) = int_slices(&[0..100, 100..200, 200..300, 300..400]);
    let table = super::DatasetTable::new(version(slices, schema), Some("t".into()));
    let ctx = SessionContext::new();
    let state = ctx.state();
    let filter = datafusion::prelude::col("t").gt_eq(datafusion::prelude::lit(150i64));
    let filter = filter.and(datafusion::prelude::col("t").lt(datafusion::prelude::lit(210i64)));
    let kept = table.candidates(&state, std::slice::from_ref(&filter)).unwrap();
    let firsts: Vec<i64> = ints(kept.iter().map(|s| s.batch.slice(0, 1)));
    assert_eq!(firsts, vec![100, 200], "only the slices that can hold 150..210 are read");
    // Strings are compared on their views too.
    let by_text = datafusion::prelude::col("s").eq(datafusion::prelude::lit("v0350"));
    let kept = table.candidates(&state, &[by_text]).unwrap();
    assert_eq!(ints(kept.iter().map(|s| s.batch.slice(0, 1))), vec![300]);
    // A time range and another filter: each rules slices out.
    let both = [
        datafusion::prelude::col("t").lt(datafusion::prelude::lit(210i64)),
        datafusion::prelude::col("s").gt_eq(datafusion::prelude::lit("v0150")),
    ];
    let kept = table.candidates(&state, &both).unwrap();
    assert_eq!(ints(kept.iter().map(|s| s.batch.slice(0, 1))), vec![100, 200]);
    let past = datafusion::prelude::col("t").gt(datafusion::prelude::lit(399i64));
    assert!(table.candidates(&state, &[past]).unwrap().is_empty(), "no slice holds a time after 399");

    // End to end: DataFusion answers from the version, with the filter applied.
    ctx.register_table("d", std::sync::Arc::new(table)).unwrap();
    let df = ctx.sql("SELECT count(*), min(t), max(t) FROM d WHERE t >= 150 AND t < 210").await.unwrap();
    let out = arrow::util::pretty::pretty_format_batches(&df.collect().await.unwrap()).unwrap().to_string();
    let cells: Vec<&str> = out.lines().nth(3).unwrap().split('|').map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(cells, ["60", "150", "209"], "{out}");
    // The rows read are those of the range, not whole slices.
    let df = ctx.sql("EXPLAIN ANALYZE SELECT count(*) FROM d WHERE t >= 150 AND t < 210").await.unwrap();
    let plan = arrow::util::pretty::pretty_format_batches(&df.collect().await.unwrap()).unwrap().to_string();
    assert!(!plan.contains("FilterExec"), "the range is met by the scan alone: {plan}");
    let df =
        ctx.sql("SELECT count(*), min(t), max(t) FROM d WHERE t > 150 AND t <= 210 AND s <> 'v0200'").await.unwrap();
    let out = arrow::util::pretty::pretty_format_batches(&df.collect().await.unwrap()).unwrap().to_string();
    let cells: Vec<&str> = out.lines().nth(3).unwrap().split('|').map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(cells, ["59", "151", "210"], "{out}");
    let df =
        ctx.sql("EXPLAIN ANALYZE SELECT count(*) FROM d WHERE t > 150 AND t <= 210 AND s <> 'v0200'").await.unwrap();
    let plan = arrow::util::pretty::pretty_format_batches(&df.collect().await.unwrap()).unwrap().to_string();
    assert!(plan.contains("(59/60)"), "other filters run on the 60 rows of the range only: {plan}");
    // Sorted by the time column: no sort is planned for ORDER BY t.
    let df = ctx.sql("EXPLAIN SELECT t FROM d ORDER BY t").await.unwrap();
    let plan = arrow::util::pretty::pretty_format_batches(&df.collect().await.unwrap()).unwrap().to_string();
    assert!(!plan.contains("SortExec"), "{plan}");
}

#[test]
fn a_time_range_comes_from_comparisons_with_literals_the_column_holds_exactly() {
    use arrow::datatypes::TimeUnit::{Microsecond, Millisecond, Second};
    use datafusion::common::ScalarValue;
    use datafusion::prelude::{col, lit};

    use super::table::{bound, time_range};

    let ms = DataType::Timestamp(Millisecond, None);
    let ts = |unit, v: i64| match unit {
        Second => lit(ScalarValue::TimestampSecond(Some(v), None)),
        Millisecond => lit(ScalarValue::TimestampMillisecond(Some(v), None)),
        _ => lit(ScalarValue::TimestampMicrosecond(Some(v), None)),
    };
    let (min, max) = (i128::from(i64::MIN), i128::from(i64::MAX));
    // Seconds convert to milliseconds exactly; both sides and both
    // spellings of a comparison count, and the tightest bound wins.
    let filters = [
        col("ts").gt_eq(ts(Second, 10)),
        ts(Millisecond, 20_000).gt(col("ts")),
        col("ts").gt(ts(Millisecond, 12_000)).and(col("price").gt(lit(1.0))),
    ];
    assert_eq!(time_range(&filters, "ts", &ms), Some((12_001, 19_999)));
    assert_eq!(bound(&col("ts").lt_eq(ts(Millisecond, 5)), "ts", &ms), Some((min, 5)));
    assert_eq!(bound(&col("ts").eq(ts(Second, 1)), "ts", &ms), Some((1_000, 1_000)));
    assert_eq!(bound(&col("ts").between(ts(Second, 1), ts(Second, 2)), "ts", &ms), Some((1_000, 2_000)));
    // At the ends of the range, nothing wraps: these let no row through.
    assert_eq!(bound(&col("ts").gt(ts(Millisecond, i64::MAX)), "ts", &ms), Some((max + 1, max)));
    assert_eq!(bound(&col("ts").lt(ts(Millisecond, i64::MIN)), "ts", &ms), Some((min, min - 1)));
    // 1.5 ms has no millisecond of its own: no bound from it.
    assert_eq!(bound(&col("ts").gt_eq(ts(Microsecond, 1_500)), "ts", &ms), None);
    assert_eq!(bound(&col("ts").gt_eq(ts(Microsecond, 2_000)), "ts", &ms), Some((2, max)));
    // Not bounds: another column, AND or OR, NOT BETWEEN, inequality.
    let none = [
        col("other").gt(ts(Millisecond, 1)),
        col("ts").gt(ts(Millisecond, 1)).and(col("ts").lt(ts(Millisecond, 5))),
        col("ts").gt(ts(Millisecond, 1)).or(col("ts").lt(ts(Millisecond, 0))),
        col("ts").not_between(ts(Millisecond, 1), ts(Millisecond, 2)),
        col("ts").not_eq(ts(Millisecond, 1)),
    ];
    for e in &none {
        assert_eq!(bound(e, "ts", &ms), None, "{e}");
    }
    // Though a conjunction of bounds still bounds the scan.
    assert_eq!(time_range(&none[1..2], "ts", &ms), Some((2, 4)));
    assert_eq!(time_range(&[none[0].clone(), none[2].clone()], "ts", &ms), None);
    // Dates and integers are time columns too.
    let date = lit(ScalarValue::Date32(Some(19_000)));
    assert_eq!(bound(&col("d").lt(date), "d", &DataType::Date32), Some((min, 18_999)));
    assert_eq!(bound(&col("n").gt_eq(lit(7i64)), "n", &DataType::Int64), Some((7, max)));
}

#[test]
fn a_slice_is_trimmed_to_a_time_range_without_its_null_times() {
    use std::sync::Arc;

    use arrow::array::{Array, TimestampMillisecondArray};
    use arrow::datatypes::{Field, Schema, TimeUnit};
    use arrow::record_batch::RecordBatch;

    use super::table::trimmed;

    let schema = Arc::new(Schema::new(vec![Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), true)]));
    let values = [None, None, Some(i64::MIN), Some(10), Some(20), Some(20), Some(30), Some(i64::MAX)];
    let batch = RecordBatch::try_new(schema, vec![Arc::new(TimestampMillisecondArray::from(values.to_vec()))]).unwrap();
    let kept = |first: i128, last: i128| {
        trimmed(&batch, 0, (first, last)).map(|b| {
            let a = b.column(0).as_any().downcast_ref::<TimestampMillisecondArray>().unwrap().clone();
            (0..a.len()).map(|i| a.is_valid(i).then(|| a.value(i))).collect::<Vec<_>>()
        })
    };
    let (min, max) = (i128::from(i64::MIN), i128::from(i64::MAX));
    assert_eq!(kept(20, 29), Some(vec![Some(20), Some(20)]));
    assert_eq!(kept(11, 30), Some(vec![Some(20), Some(20), Some(30)]));
    assert_eq!(kept(min, 15), Some(vec![Some(i64::MIN), Some(10)]), "nulls fail every bound");
    assert_eq!(kept(25, max), Some(vec![Some(30), Some(i64::MAX)]));
    assert_eq!(kept(max + 1, max), None, "`> i64::MAX` keeps nothing");
    assert_eq!(kept(min, min - 1), None, "nor does `< i64::MIN`");
    assert_eq!(kept(21, 29), None);
    assert_eq!(kept(40, 50), None);
    // Trimmed from a slice of a slice: offsets are honoured.
    let inner = batch.slice(3, 4);
    let b = trimmed(&inner, 0, (20, 20)).unwrap();
    assert_eq!(b.num_rows(), 2);
}

#[test]
fn strings_are_held_as_views() {
    use std::sync::Arc;

    use arrow::array::{Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use arrow::record_batch::RecordBatch;

    let field = Field::new("s", DataType::Utf8, true)
        .with_metadata([("trino.type".to_string(), "varchar(10)".to_string())].into());
    let schema = Arc::new(Schema::new(vec![field, Field::new("n", DataType::Int32, true)]));
    let view = super::slice::layout(&schema);
    assert_eq!(view.field(0).data_type(), &DataType::Utf8View);
    assert_eq!(view.field(0).metadata(), schema.field(0).metadata(), "Trino's type name stays");
    assert_eq!(view.field(1).data_type(), &DataType::Int32);
    let b = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(StringArray::from(vec![Some("a"), None, Some("a string longer than twelve bytes")])),
            Arc::new(arrow::array::Int32Array::from(vec![1, 2, 3])),
        ],
    )
    .unwrap();
    let b = super::slice::relayout(&b, &view).unwrap();
    let back = arrow::compute::cast(b.column(0), &DataType::Utf8).unwrap();
    let back = back.as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!(back.iter().collect::<Vec<_>>(), vec![Some("a"), None, Some("a string longer than twelve bytes")]);
}

#[test]
fn slices_hold_string_views_without_buffers_they_do_not_need() {
    use std::sync::Arc;

    use arrow::array::{AsArray, StringArray};
    use arrow::datatypes::{Field, Schema};
    use arrow::record_batch::RecordBatch;

    let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, true)]));
    let view = super::slice::layout(&schema);
    let views = |values: Vec<Option<&str>>| {
        let b = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(StringArray::from(values))]).unwrap();
        // The cast keeps the source's buffer, needed or not.
        let b = super::slice::relayout(&b, &view).unwrap();
        assert!(!b.column(0).as_string_view().data_buffers().is_empty());
        super::Slice::new(b).batch
    };
    // Every value inline: no buffer, so comparisons and hashing take the
    // views as integers.
    let short = views(vec![Some("ERCOT"), None, Some("twelve bytes"), Some("")]);
    let s = short.column(0).as_string_view();
    assert!(s.data_buffers().is_empty());
    assert_eq!(s.iter().collect::<Vec<_>>(), vec![Some("ERCOT"), None, Some("twelve bytes"), Some("")]);
    // A longer value: only its own bytes are kept.
    let long = views(vec![Some("a"), Some("thirteen byte"), None]);
    let s = long.column(0).as_string_view();
    assert_eq!(s.data_buffers().iter().map(|b| b.len()).sum::<usize>(), "thirteen byte".len());
    assert_eq!(s.iter().collect::<Vec<_>>(), vec![Some("a"), Some("thirteen byte"), None]);
}

#[tokio::test]
async fn a_worker_that_panics_is_restarted_and_reported() {
    use std::sync::atomic::Ordering;

    let mut trino = crate::trino::TrinoConfig::new("http://127.0.0.1:1".parse().unwrap());
    trino.retry_budget = Duration::from_millis(100);
    let trino = crate::trino::TrinoClient::new(&trino).unwrap();
    let settings = crate::config::Accel {
        dir: None,
        max_concurrent_refreshes: 1,
        memory_budget: 1 << 20,
        access_ttl: Duration::from_secs(60),
        local: None,
        datasets: vec![super::DatasetConfig {
            access: super::Access::All,
            ..super::DatasetConfig::full("memory.default.t")
        }],
    };
    let datasets = super::Datasets::new(&settings, trino, "flightdeck".into(), None);
    let ds = std::sync::Arc::clone(&datasets.inner.datasets["memory.default.t"]);
    ds.panic_next.store(true, Ordering::SeqCst);
    let (stop, tasks) = (tokio_util::sync::CancellationToken::new(), tokio_util::task::TaskTracker::new());
    datasets.start(&stop, &tasks);
    let info = || datasets.list().remove(0);
    // The restarted worker refreshes at once: Trino (absent here) fails it.
    for _ in 0..500 {
        if info().worker_restarts == 1 && info().error.is_some_and(|e| e.contains("unavailable")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let info = info();
    assert_eq!(info.worker_restarts, 1, "the panic is counted: {info:?}");
    assert!(info.error.as_deref().is_some_and(|e| e.contains("unavailable")), "the worker ran again: {info:?}");
    assert_eq!(info.state, super::State::Failed);
    stop.cancel();
    tasks.close();
    tasks.wait().await;
}

#[test]
fn sorted_slices_hold_their_own_strings_and_snapshot_at_their_size() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64};

    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{Field, Schema};
    use arrow::record_batch::RecordBatch;

    let read =
        Arc::new(Schema::new(vec![Field::new("t", DataType::Int64, true), Field::new("s", DataType::Utf8, true)]));
    // Times interleaved across batches, so every sorted slice draws rows
    // from every batch read.
    let batches: Vec<RecordBatch> = (0..16)
        .map(|b| {
            let t: Vec<i64> = (0..20_000).map(|i| i * 16 + b).collect();
            let s = StringArray::from_iter_values(t.iter().map(|v| format!("a string of row {v:>12}")));
            RecordBatch::try_new(Arc::clone(&read), vec![Arc::new(Int64Array::from(t)), Arc::new(s)]).unwrap()
        })
        .collect();
    let ds = super::Dataset {
        config: super::DatasetConfig {
            mode: super::Mode::Append,
            time_column: Some("t".into()),
            interval: Duration::from_secs(60),
            access: super::Access::All,
            ..super::DatasetConfig::full("memory.default.t")
        },
        current: std::sync::RwLock::new(None),
        status: std::sync::Mutex::default(),
        paused: AtomicBool::new(false),
        wake: tokio::sync::Notify::new(),
        versions: AtomicU64::new(0),
        panic_next: AtomicBool::new(false),
    };
    let budget = crate::memory::MemoryBudget::new(u64::MAX);
    let mut held = budget.reservation();
    let schema = super::slice::layout(&read);
    let slices = super::refresh::sorted(&ds, batches, 0, &schema, &mut held).unwrap();
    assert_eq!(slices.len(), 5, "320 000 rows in slices of 64 Ki");
    assert_eq!(slices[0].batch.schema().field(1).data_type(), &DataType::Utf8View);
    // Strings, their views and the integers.
    let nominal = 320_000 * ("a string of row 000000000000".len() as u64 + 16 + 8);
    let bytes = super::refresh::held_bytes(&slices.iter().map(|s| s.batch.clone()).collect::<Vec<_>>());
    assert!(bytes >= nominal && bytes < nominal * 3 / 2, "{bytes} bytes held for {nominal} bytes of data");
    let dir = tempfile::tempdir().unwrap();
    super::snapshot::write(dir.path(), "memory.default.t", &version(slices, schema), std::time::SystemTime::now())
        .unwrap();
    let written: u64 = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    assert!(written < nominal * 3 / 2, "a snapshot of {written} bytes for {nominal} bytes of data");
}

#[test]
fn only_snapshots_that_appended_after_the_one_held_are_read_alone() {
    let list: Vec<(i64, String)> = [(1, "append"), (2, "append"), (3, "append"), (4, "overwrite"), (5, "append")]
        .map(|(id, op)| (id, op.to_string()))
        .into();
    assert_eq!(appended_since(&list[..3], 1), Some(vec![2, 3]));
    assert_eq!(appended_since(&list[..3], 3), Some(vec![]));
    assert_eq!(appended_since(&list, 2), None, "an overwrite after the one held");
    assert_eq!(appended_since(&list, 4), Some(vec![5]), "what came before the held one does not matter");
    assert_eq!(appended_since(&list, 9), None, "the held snapshot expired");
}

#[tokio::test]
async fn a_dataset_under_retention_is_scanned_only_inside_the_times_it_holds() {
    use datafusion::prelude::SessionContext;

    let (schema, slices) = int_slices(&[0..100, 100..200, 200..300, 300..400]);
    let mut held = std::sync::Arc::into_inner(version(slices, schema)).unwrap();
    held.held_from = Some(150);
    let ctx = SessionContext::new();
    let table = super::DatasetTable::new(std::sync::Arc::new(held), Some("t".into()));
    ctx.register_table("d", std::sync::Arc::new(table)).unwrap();
    let count = |filter: &'static str| {
        let ctx = ctx.clone();
        async move {
            let df = ctx.sql(&format!("SELECT count(*) FROM d {filter}")).await?;
            let b = df.collect().await?;
            Ok::<_, datafusion::error::DataFusionError>(ints_of_count(&b))
        }
    };
    for (filter, n) in [
        ("WHERE t >= 150", 250),
        ("WHERE t > 149 AND t < 160", 10),
        ("WHERE t BETWEEN 160 AND 169 AND s <> 'v0165'", 9),
        ("WHERE t >= 500", 0),
    ] {
        assert_eq!(count(filter).await.unwrap(), n, "{filter}");
    }
    for filter in ["", "WHERE t >= 149", "WHERE t < 300", "WHERE t >= 200 OR t = 20", "WHERE s = 'v0300'"] {
        let e = count(filter).await.unwrap_err();
        assert!(
            matches!(e.find_root(), datafusion::error::DataFusionError::External(x) if x.is::<super::BeforeRetention>()),
            "{filter}: {e}"
        );
    }
}

fn ints_of_count(batches: &[arrow::record_batch::RecordBatch]) -> i64 {
    use arrow::array::{Array, Int64Array};
    batches[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0)
}

#[test]
fn a_table_without_rows_keeps_what_planning_reads_and_no_slice() {
    let (schema, slices) = int_slices(&[0..100, 100..200]);
    let mut held = std::sync::Arc::into_inner(version(slices, schema)).unwrap();
    held.held_from = Some(150);
    let version = std::sync::Arc::new(held);
    let table = super::DatasetTable::new(std::sync::Arc::clone(&version), Some("t".into()));
    let bare = table.without_rows();
    assert_eq!(std::sync::Arc::strong_count(&version), 2, "the version is held by the table only, not its copy");
    assert_eq!(datafusion::catalog::TableProvider::schema(&bare), version.schema);
    assert_eq!(bare.sorted_by(), Some("t"));
    let bound = datafusion::prelude::col("t").gt_eq(datafusion::prelude::lit(160i64));
    assert_eq!(bare.exact_range(std::slice::from_ref(&bound)), Some((160, i64::MAX as i128)));
    let early = datafusion::prelude::col("t").gt_eq(datafusion::prelude::lit(140i64));
    assert_eq!(bare.exact_range(&[early]), None, "before what the dataset keeps");
    let other = datafusion::prelude::col("s").eq(datafusion::prelude::lit("v0001"));
    assert_eq!(table.exact_range(&[bound, other]), None, "not a bound on the time column");
}

#[test]
fn a_piece_tells_which_rows_of_which_slice_it_holds() {
    let (schema, slices) = int_slices(&[0..100, 100..200, 200..300]);
    let ids: Vec<u64> = slices.iter().map(|s| s.id).collect();
    assert!(ids[0] != ids[1] && ids[1] != ids[2], "each slice has an id of its own");
    let table = super::DatasetTable::new(version(slices, schema), Some("t".into()));
    let pieces = |range| -> Vec<(i64, u64, std::ops::Range<usize>, usize)> {
        let pieces = table.pieces(range, None).unwrap();
        pieces.into_iter().map(|p| (ints(std::iter::once(p.batch.slice(0, 1)))[0], p.slice, p.rows, p.of)).collect()
    };
    // Cut at both ends, whole in the middle; the rows are those held.
    assert_eq!(
        pieces(Some((50, 250))),
        [(50, ids[0], 50..100, 100), (100, ids[1], 0..100, 100), (200, ids[2], 0..51, 100)]
    );
    assert_eq!(pieces(Some((100, 199))), [(100, ids[1], 0..100, 100)]);
    assert_eq!(pieces(Some((101, 198))), [(101, ids[1], 1..99, 100)]);
    let all = pieces(None);
    assert_eq!(
        all.iter().map(|p| (p.1, p.2.clone())).collect::<Vec<_>>(),
        ids.iter().map(|&i| (i, 0..100)).collect::<Vec<_>>()
    );
    for p in table.pieces(Some((50, 250)), None).unwrap() {
        assert_eq!(p.batch.num_rows(), p.rows.len());
    }
    // The same rows made again are another slice.
    let (_, again) = int_slices(&[0..100]);
    assert!(!ids.contains(&again[0].id));
}
