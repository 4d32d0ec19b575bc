//! Arrow values as Trino SQL literals, exact at their precision: bound
//! parameters, and the bounds of incremental reads.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Date64Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
    Time32MillisecondType, Time32SecondType, Time64MicrosecondType, Time64NanosecondType, TimeUnit,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use arrow::record_batch::RecordBatch;

/// Units per second and fractional digits of an Arrow time unit.
fn unit_scale(unit: TimeUnit) -> (i64, usize) {
    match unit {
        TimeUnit::Second => (1, 0),
        TimeUnit::Millisecond => (1_000, 3),
        TimeUnit::Microsecond => (1_000_000, 6),
        TimeUnit::Nanosecond => (1_000_000_000, 9),
    }
}

/// `.fff` with exactly the unit's digits of `sub` (units below a second).
fn fraction(sub: i64, digits: usize) -> String {
    if digits == 0 { String::new() } else { format!(".{sub:0digits$}") }
}

/// `DATE '...'` for days since the epoch; years outside 0000-9999 are
/// written `+10000` / `-0001`, as Trino reads and prints them.
fn date_literal(days: i64) -> Result<String, String> {
    let date = i32::try_from(days)
        .ok()
        .and_then(|d| chrono::NaiveDate::from_num_days_from_ce_opt(d.checked_add(719_163)?))
        .ok_or_else(|| format!("date {days} days from 1970-01-01 is out of range"))?;
    Ok(format!("DATE '{}'", date.format("%Y-%m-%d")))
}

/// `TIME '...'` for a time of day in `unit`s since midnight.
fn time_literal(v: i64, unit: TimeUnit) -> Result<String, String> {
    let (per_sec, digits) = unit_scale(unit);
    if !(0..86_400 * per_sec).contains(&v) {
        return Err(format!("time {v} is not within a day"));
    }
    let (secs, sub) = (v / per_sec, v % per_sec);
    Ok(format!("TIME '{:02}:{:02}:{:02}{}'", secs / 3600, secs / 60 % 60, secs % 60, fraction(sub, digits)))
}

/// `TIMESTAMP '...'` for `v` `unit`s since the epoch, exact at the unit's
/// precision; an Arrow timestamp with a zone is a UTC instant. Split into
/// seconds and a remainder first: scaling to nanoseconds overflows i64
/// outside 1677-2262.
fn timestamp_literal(v: i64, unit: TimeUnit, zoned: bool) -> Result<String, String> {
    let (per_sec, digits) = unit_scale(unit);
    let (secs, sub) = (v.div_euclid(per_sec), v.rem_euclid(per_sec));
    let t = chrono::DateTime::from_timestamp(secs, 0)
        .ok_or_else(|| format!("timestamp {v} ({unit:?}) is out of range"))?
        .naive_utc();
    let zone = if zoned { " UTC" } else { "" };
    Ok(format!("TIMESTAMP '{}{}{zone}'", t.format("%Y-%m-%d %H:%M:%S"), fraction(sub, digits)))
}

/// The literals of one row of a parameter batch.
pub fn literals(batch: &RecordBatch, row: usize) -> Result<Vec<String>, String> {
    batch
        .columns()
        .iter()
        .enumerate()
        .map(|(i, c)| literal(c, row).map_err(|e| format!("parameter {}: {e}", i + 1)))
        .collect()
}

/// The literal of `a[i]`.
pub fn literal(a: &ArrayRef, i: usize) -> Result<String, String> {
    // A null-typed array (Python's `None`) has no validity buffer.
    if a.is_null(i) || a.data_type() == &DataType::Null {
        return Ok("NULL".into());
    }
    let float = |v: f64, ty: &str| {
        if v.is_nan() {
            format!("CAST(nan() AS {ty})")
        } else if v.is_infinite() {
            format!("CAST({}infinity() AS {ty})", if v < 0.0 { "-" } else { "" })
        } else {
            format!("{} '{v:?}'", ty.to_uppercase())
        }
    };
    Ok(match a.data_type() {
        DataType::Union(_, _) => {
            let u = a.as_union();
            let child = u.child(u.type_id(i));
            return literal(child, u.value_offset(i));
        }
        DataType::Boolean => if a.as_boolean().value(i) { "TRUE" } else { "FALSE" }.into(),
        DataType::Int8 => format!("TINYINT '{}'", a.as_primitive::<Int8Type>().value(i)),
        DataType::Int16 => format!("SMALLINT '{}'", a.as_primitive::<Int16Type>().value(i)),
        DataType::Int32 => format!("INTEGER '{}'", a.as_primitive::<Int32Type>().value(i)),
        DataType::Int64 => format!("BIGINT '{}'", a.as_primitive::<Int64Type>().value(i)),
        DataType::UInt8 => format!("SMALLINT '{}'", a.as_primitive::<UInt8Type>().value(i)),
        DataType::UInt16 => format!("INTEGER '{}'", a.as_primitive::<UInt16Type>().value(i)),
        DataType::UInt32 => format!("BIGINT '{}'", a.as_primitive::<UInt32Type>().value(i)),
        DataType::UInt64 => format!("DECIMAL '{}'", a.as_primitive::<UInt64Type>().value(i)),
        DataType::Float32 => float(a.as_primitive::<Float32Type>().value(i) as f64, "real"),
        DataType::Float64 => float(a.as_primitive::<Float64Type>().value(i), "double"),
        DataType::Decimal128(_, _) => {
            format!("DECIMAL '{}'", arrow::util::display::array_value_to_string(a, i).map_err(|e| e.to_string())?)
        }
        DataType::Utf8 => super::quote_literal(a.as_string::<i32>().value(i)),
        DataType::LargeUtf8 => super::quote_literal(a.as_string::<i64>().value(i)),
        DataType::Utf8View => super::quote_literal(a.as_string_view().value(i)),
        DataType::Binary => format!("X'{}'", hex::encode(a.as_binary::<i32>().value(i))),
        DataType::LargeBinary => format!("X'{}'", hex::encode(a.as_binary::<i64>().value(i))),
        DataType::Date32 => date_literal(i64::from(a.as_primitive::<Date32Type>().value(i)))?,
        DataType::Date64 => date_literal(a.as_primitive::<Date64Type>().value(i).div_euclid(86_400_000))?,
        DataType::Time32(unit) => {
            let v = match unit {
                TimeUnit::Second => i64::from(a.as_primitive::<Time32SecondType>().value(i)),
                _ => i64::from(a.as_primitive::<Time32MillisecondType>().value(i)),
            };
            time_literal(v, *unit)?
        }
        DataType::Time64(unit) => {
            let v = match unit {
                TimeUnit::Microsecond => a.as_primitive::<Time64MicrosecondType>().value(i),
                _ => a.as_primitive::<Time64NanosecondType>().value(i),
            };
            time_literal(v, *unit)?
        }
        DataType::Timestamp(unit, tz) => {
            let v = match unit {
                TimeUnit::Second => a.as_primitive::<TimestampSecondType>().value(i),
                TimeUnit::Millisecond => a.as_primitive::<TimestampMillisecondType>().value(i),
                TimeUnit::Microsecond => a.as_primitive::<TimestampMicrosecondType>().value(i),
                TimeUnit::Nanosecond => a.as_primitive::<TimestampNanosecondType>().value(i),
            };
            timestamp_literal(v, *unit, tz.is_some())?
        }
        other => return Err(format!("type {other} cannot be bound")),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{BooleanArray, Date32Array, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    #[test]
    fn temporal_edges_bind_exactly_or_fail() {
        use arrow::datatypes::TimeUnit::*;
        // 9999-12-31 23:59:59 and beyond the nanosecond range of i64.
        assert_eq!(timestamp_literal(253_402_300_799, Second, false).unwrap(), "TIMESTAMP '9999-12-31 23:59:59'");
        assert_eq!(
            timestamp_literal(253_402_300_799_999_999, Microsecond, false).unwrap(),
            "TIMESTAMP '9999-12-31 23:59:59.999999'"
        );
        assert_eq!(
            timestamp_literal(253_402_300_800_000, Millisecond, true).unwrap(),
            "TIMESTAMP '+10000-01-01 00:00:00.000 UTC'"
        );
        assert_eq!(
            timestamp_literal(-62_135_596_800_001, Millisecond, false).unwrap(),
            "TIMESTAMP '0000-12-31 23:59:59.999'"
        );
        assert_eq!(timestamp_literal(-1, Nanosecond, false).unwrap(), "TIMESTAMP '1969-12-31 23:59:59.999999999'");
        assert_eq!(
            timestamp_literal(i64::MIN, Nanosecond, false).unwrap(),
            "TIMESTAMP '1677-09-21 00:12:43.145224192'"
        );
        assert_eq!(
            timestamp_literal(i64::MAX, Nanosecond, false).unwrap(),
            "TIMESTAMP '2262-04-11 23:47:16.854775807'"
        );
        assert!(timestamp_literal(i64::MAX, Second, false).is_err());
        assert!(timestamp_literal(i64::MIN, Microsecond, false).is_err());
        assert_eq!(date_literal(2_932_896).unwrap(), "DATE '9999-12-31'");
        assert_eq!(date_literal(2_932_897).unwrap(), "DATE '+10000-01-01'");
        assert_eq!(date_literal(-719_529).unwrap(), "DATE '-0001-12-31'");
        assert!(date_literal(i64::from(i32::MAX)).is_err());
        assert!(date_literal(i64::from(i32::MIN)).is_err());
        assert_eq!(time_literal(86_399_999_999, Microsecond).unwrap(), "TIME '23:59:59.999999'");
        assert_eq!(time_literal(0, Second).unwrap(), "TIME '00:00:00'");
        assert!(time_literal(86_400, Second).is_err());
        assert!(time_literal(-1, Nanosecond).is_err());
    }

    #[test]
    fn a_null_typed_value_binds_as_null() {
        let nulls: ArrayRef = Arc::new(arrow::array::NullArray::new(2));
        assert_eq!(literal(&nulls, 1).unwrap(), "NULL");
    }

    #[test]
    fn literals_of_arrow_values() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
            Field::new("c", DataType::Float64, true),
            Field::new("d", DataType::Date32, true),
            Field::new("e", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
            Field::new("f", DataType::Boolean, true),
            Field::new("g", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![7])),
                Arc::new(StringArray::from(vec!["it's"])),
                Arc::new(Float64Array::from(vec![f64::NAN])),
                Arc::new(Date32Array::from(vec![19782])),
                Arc::new(TimestampMicrosecondArray::from(vec![1_706_704_496_123_456]).with_timezone("UTC")),
                Arc::new(BooleanArray::from(vec![true])),
                Arc::new(Int64Array::from(vec![None])),
            ],
        )
        .unwrap();
        assert_eq!(
            literals(&batch, 0).unwrap(),
            vec![
                "BIGINT '7'",
                "'it''s'",
                "CAST(nan() AS double)",
                "DATE '2024-02-29'",
                "TIMESTAMP '2024-01-31 12:34:56.123456 UTC'",
                "TRUE",
                "NULL"
            ]
        );
    }
}
