use std::time::Duration;

use arrow::datatypes::{DataType, TimeUnit};

use super::refresh::{cutoff, next_wait};

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

#[test]
fn a_stretch_copies_only_the_batches_at_its_edges() {
    use std::sync::Arc;

    use arrow::array::{Array, Int64Array};
    use arrow::datatypes::{Field, Schema};
    use arrow::record_batch::RecordBatch;

    let schema = Arc::new(Schema::new(vec![Field::new("t", DataType::Int64, true)]));
    let batch = |r: std::ops::Range<i64>| {
        RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(Int64Array::from_iter_values(r))]).unwrap()
    };
    let batches = [batch(0..10), batch(10..20), batch(20..30), batch(30..40)];
    let kept = super::refresh::within(&batches, 0, 5, 25).unwrap();
    let values: Vec<i64> = kept
        .iter()
        .flat_map(|b| b.column(0).as_any().downcast_ref::<Int64Array>().unwrap().values().to_vec())
        .collect();
    assert_eq!(values, (5..25).collect::<Vec<_>>());
    assert_eq!(kept.len(), 3, "the batch past the stretch is dropped");
    assert!(kept[1].column(0).to_data().ptr_eq(&batches[1].column(0).to_data()), "the batch inside is not copied");
}
