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
