//! Arrow answers (from the cache, the local engine, or Trino decoded) back
//! into Trino's JSON, as Trino's `JsonEncodingUtils` writes each type, with
//! its column `type` strings and `typeSignature`s.

use std::fmt::Write as _;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, DurationMillisecondType, Float32Type, Float64Type, Int8Type, Int16Type,
    Int32Type, Int64Type, IntervalMonthDayNanoType, IntervalUnit, Schema, Time32MillisecondType, Time64MicrosecondType,
    Time64NanosecondType, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow::record_batch::RecordBatch;
use base64::Engine as _;
use chrono::DateTime;

use crate::trino::decode::Beyond;
use crate::trino::types::{TYPE_NAME_KEY, TrinoType};

/// How a client wants time and timestamp values: with their own precision
/// (`X-Trino-Client-Capabilities: PARAMETRIC_DATETIME`), or, for older
/// clients, rounded to milliseconds and typed without a precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datetimes {
    Parametric,
    Milliseconds,
}

/// The Trino type of each column of `schema`: the name kept in the field
/// metadata, else one read off the Arrow type.
pub fn column_types(schema: &Schema) -> Vec<TrinoType> {
    schema
        .fields()
        .iter()
        .map(|f| {
            f.metadata()
                .get(TYPE_NAME_KEY)
                .and_then(|n| TrinoType::parse(n).ok())
                .unwrap_or_else(|| from_arrow(f.data_type()))
        })
        .collect()
}

/// The Trino type Flightdeck's own Arrow answers stand for.
fn from_arrow(t: &DataType) -> TrinoType {
    match t {
        DataType::Boolean => TrinoType::Boolean,
        DataType::Int8 => TrinoType::TinyInt,
        DataType::Int16 => TrinoType::SmallInt,
        DataType::Int32 => TrinoType::Integer,
        DataType::Int64 => TrinoType::BigInt,
        DataType::Float32 => TrinoType::Real,
        DataType::Float64 => TrinoType::Double,
        DataType::Decimal128(p, s) => TrinoType::Decimal { precision: *p, scale: *s },
        DataType::Binary | DataType::LargeBinary => TrinoType::Varbinary,
        DataType::Date32 => TrinoType::Date,
        DataType::Time32(_) => TrinoType::Time(3),
        DataType::Time64(TimeUnit::Microsecond) => TrinoType::Time(6),
        DataType::Time64(_) => TrinoType::Time(9),
        DataType::Timestamp(unit, tz) => {
            let p = match unit {
                TimeUnit::Second => 0,
                TimeUnit::Millisecond => 3,
                TimeUnit::Microsecond => 6,
                TimeUnit::Nanosecond => 9,
            };
            if tz.is_some() { TrinoType::TimestampTz(p) } else { TrinoType::Timestamp(p) }
        }
        DataType::Duration(_) => TrinoType::IntervalDayToSecond,
        DataType::Interval(_) => TrinoType::IntervalYearToMonth,
        DataType::List(f) | DataType::LargeList(f) => TrinoType::Array(Box::new(from_arrow(f.data_type()))),
        DataType::Struct(fields) => {
            TrinoType::Row(fields.iter().map(|f| (Some(f.name().clone()), from_arrow(f.data_type()))).collect())
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                TrinoType::Map(Box::new(from_arrow(kv[0].data_type())), Box::new(from_arrow(kv[1].data_type())))
            }
            _ => TrinoType::Varchar(None),
        },
        _ => TrinoType::Varchar(None),
    }
}

/// Precision of a `time(p) with time zone` (carried as text), if `name` is one.
fn time_tz_precision(name: &str) -> Option<u8> {
    let rest = name.strip_prefix("time")?;
    let rest = rest.strip_suffix("with time zone")?.trim();
    if rest.is_empty() {
        return Some(3);
    }
    rest.strip_prefix('(')?.strip_suffix(')')?.trim().parse().ok()
}

/// The type as Trino writes it in `columns[].type`.
pub fn display(t: &TrinoType, dt: Datetimes) -> String {
    let ms = dt == Datetimes::Milliseconds;
    match t {
        TrinoType::IntervalDayToSecond => "INTERVAL DAY TO SECOND".into(),
        TrinoType::IntervalYearToMonth => "INTERVAL YEAR TO MONTH".into(),
        TrinoType::Time(_) if ms => "time".into(),
        TrinoType::Timestamp(_) if ms => "timestamp".into(),
        TrinoType::TimestampTz(_) if ms => "timestamp with time zone".into(),
        TrinoType::Other(n) if ms && time_tz_precision(n).is_some() => "time with time zone".into(),
        TrinoType::Array(e) => format!("array({})", display(e, dt)),
        TrinoType::Map(k, v) => format!("map({}, {})", display(k, dt), display(v, dt)),
        TrinoType::Row(fields) => {
            let parts: Vec<String> = fields
                .iter()
                .map(|(n, t)| match n {
                    Some(n) => format!("{} {}", crate::trino::types::row_field_display(n), display(t, dt)),
                    None => display(t, dt),
                })
                .collect();
            format!("row({})", parts.join(", "))
        }
        other => other.name(),
    }
}

/// The `typeSignature` of a type, as JSON.
pub fn signature(t: &TrinoType, dt: Datetimes, out: &mut String) {
    let long = |v: u64| format!(r#"{{"kind":"LONG","value":{v}}}"#);
    let ms = dt == Datetimes::Milliseconds;
    let (raw, args): (&str, Vec<String>) = match t {
        TrinoType::Decimal { precision, scale } => ("decimal", vec![long(*precision as u64), long(*scale as u64)]),
        TrinoType::Varchar(n) => ("varchar", vec![long(n.map_or(2_147_483_647, u64::from))]),
        TrinoType::Char(n) => ("char", vec![long(*n as u64)]),
        TrinoType::Time(p) => ("time", if ms { vec![] } else { vec![long(*p as u64)] }),
        TrinoType::Timestamp(p) => ("timestamp", if ms { vec![] } else { vec![long(*p as u64)] }),
        TrinoType::TimestampTz(p) => ("timestamp with time zone", if ms { vec![] } else { vec![long(*p as u64)] }),
        TrinoType::IntervalDayToSecond => ("interval day to second", vec![]),
        TrinoType::IntervalYearToMonth => ("interval year to month", vec![]),
        TrinoType::Array(e) => ("array", vec![type_argument(e, dt)]),
        TrinoType::Map(k, v) => ("map", vec![type_argument(k, dt), type_argument(v, dt)]),
        TrinoType::Row(fields) => {
            let args = fields
                .iter()
                .map(|(n, ft)| {
                    let mut s = String::from(r#"{"kind":"NAMED_TYPE","value":{"#);
                    if let Some(n) = n {
                        s.push_str(r#""fieldName":{"name":"#);
                        s.push_str(&json_string(n));
                        s.push_str("},");
                    }
                    s.push_str(r#""typeSignature":"#);
                    signature(ft, dt, &mut s);
                    s.push_str("}}");
                    s
                })
                .collect();
            ("row", args)
        }
        TrinoType::Other(n) => match time_tz_precision(n) {
            Some(p) => ("time with time zone", if ms { vec![] } else { vec![long(p as u64)] }),
            None => {
                let _ = write!(out, r#"{{"rawType":{},"arguments":[]}}"#, json_string(n));
                return;
            }
        },
        TrinoType::Boolean => ("boolean", vec![]),
        TrinoType::TinyInt => ("tinyint", vec![]),
        TrinoType::SmallInt => ("smallint", vec![]),
        TrinoType::Integer => ("integer", vec![]),
        TrinoType::BigInt => ("bigint", vec![]),
        TrinoType::Real => ("real", vec![]),
        TrinoType::Double => ("double", vec![]),
        TrinoType::Varbinary => ("varbinary", vec![]),
        TrinoType::Json => ("json", vec![]),
        TrinoType::Date => ("date", vec![]),
        TrinoType::Uuid => ("uuid", vec![]),
        TrinoType::IpAddress => ("ipaddress", vec![]),
    };
    let _ = write!(out, r#"{{"rawType":"{raw}","arguments":[{}]}}"#, args.join(","));
}

/// A type argument of a type signature (an array's element, a map's key
/// or value).
fn type_argument(t: &TrinoType, dt: Datetimes) -> String {
    let mut s = String::from(r#"{"kind":"TYPE","value":"#);
    signature(t, dt, &mut s);
    s.push('}');
    s
}

/// The `columns` array of a result.
pub fn columns(schema: &Schema, types: &[TrinoType], dt: Datetimes) -> String {
    let mut out = String::from("[");
    for (i, (f, t)) in schema.fields().iter().zip(types).enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            r#"{{"name":{},"type":{},"typeSignature":"#,
            json_string(f.name()),
            json_string(&display(t, dt))
        );
        signature(t, dt, &mut out);
        out.push('}');
    }
    out.push(']');
    out
}

pub fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string serializes")
}

/// What each column of `batch` carries beside its Arrow values.
pub fn beyond(batch: &RecordBatch) -> Vec<Option<Beyond>> {
    batch.schema().fields().iter().map(|f| Beyond::of(f)).collect()
}

/// Appends rows `from..to` of `batch` to `out` as JSON arrays, each
/// followed by a comma. `beyond` is [`beyond`] of the batch.
pub fn rows(
    batch: &RecordBatch,
    beyond: &[Option<Beyond>],
    types: &[TrinoType],
    dt: Datetimes,
    from: usize,
    to: usize,
    out: &mut String,
) {
    let columns: Vec<&ArrayRef> = batch.columns().iter().collect();
    for row in from..to {
        out.push('[');
        for (i, (a, t)) in columns.iter().zip(types).enumerate() {
            if i > 0 {
                out.push(',');
            }
            let extra = match beyond.get(i) {
                Some(Some(b)) => match b.cell(row) {
                    Some(text) => {
                        nested_as_sent(text, t, dt, out);
                        continue;
                    }
                    None => Extra { zone: b.zone(row), picos: b.picos(row) },
                },
                _ => Extra::NONE,
            };
            value(a.as_ref(), row, t, dt, extra, out);
        }
        out.push_str("],");
    }
}

/// An array, map or row value as Trino sent it (see [`Beyond::cells`]):
/// verbatim for clients with parametric datetimes; for others with each
/// time and timestamp in it rounded to milliseconds, as Trino writes them.
fn nested_as_sent(text: &str, t: &TrinoType, dt: Datetimes, out: &mut String) {
    if dt == Datetimes::Parametric {
        out.push_str(text);
        return;
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(mut v) => {
            round_within(t, &mut v, dt);
            out.push_str(&v.to_string());
        }
        Err(_) => out.push_str(text),
    }
}

fn round_within(t: &TrinoType, v: &mut serde_json::Value, dt: Datetimes) {
    use serde_json::Value;
    match (t, v) {
        (TrinoType::Time(p) | TrinoType::Timestamp(p) | TrinoType::TimestampTz(p), Value::String(s)) => {
            let (is_time, zoned) = (matches!(t, TrinoType::Time(_)), matches!(t, TrinoType::TimestampTz(_)));
            if let Some((picos, zone)) = crate::trino::decode::picoseconds(s, zoned, is_time) {
                let (p, picos) = rounded(*p, picos, dt);
                *s = if is_time { time(picos, p) } else { timestamp(picos, p, zone) };
            }
        }
        (TrinoType::Array(e), Value::Array(items)) => items.iter_mut().for_each(|i| round_within(e, i, dt)),
        (TrinoType::Row(fields), Value::Array(items)) => {
            fields.iter().zip(items).for_each(|((_, ft), i)| round_within(ft, i, dt))
        }
        (TrinoType::Map(k, vt), Value::Object(m)) => {
            for (key, mut x) in std::mem::take(m) {
                let mut key = Value::String(key);
                round_within(k, &mut key, dt);
                round_within(vt, &mut x, dt);
                m.insert(key.as_str().unwrap_or_default().to_string(), x);
            }
        }
        _ => {}
    }
}

/// What a value's Arrow form lacks of Trino's: the zone it was given in and
/// its picoseconds below the nanosecond.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extra<'a> {
    pub zone: Option<&'a str>,
    pub picos: u16,
}

impl Extra<'_> {
    pub const NONE: Extra<'static> = Extra { zone: None, picos: 0 };
}

/// One value, as Trino writes it.
pub fn value(a: &dyn Array, i: usize, t: &TrinoType, dt: Datetimes, extra: Extra, out: &mut String) {
    if a.is_null(i) {
        out.push_str("null");
        return;
    }
    match a.data_type() {
        DataType::Boolean => out.push_str(if a.as_boolean().value(i) { "true" } else { "false" }),
        DataType::Int8 => push(out, a.as_primitive::<Int8Type>().value(i)),
        DataType::Int16 => push(out, a.as_primitive::<Int16Type>().value(i)),
        DataType::Int32 => push(out, a.as_primitive::<Int32Type>().value(i)),
        DataType::Int64 => push(out, a.as_primitive::<Int64Type>().value(i)),
        DataType::Float32 => {
            let r = a.as_primitive::<Float32Type>().value(i);
            float(out, r as f64, Some(r))
        }
        DataType::Float64 => float(out, a.as_primitive::<Float64Type>().value(i), None),
        DataType::Decimal128(_, scale) => {
            let s = decimal(a.as_primitive::<Decimal128Type>().value(i), *scale);
            out.push_str(&json_string(&s));
        }
        DataType::Utf8 => out.push_str(&json_string(a.as_string::<i32>().value(i))),
        DataType::LargeUtf8 => out.push_str(&json_string(a.as_string::<i64>().value(i))),
        DataType::Utf8View => out.push_str(&json_string(a.as_string_view().value(i))),
        DataType::Binary => base64_value(out, a.as_binary::<i32>().value(i)),
        DataType::LargeBinary => base64_value(out, a.as_binary::<i64>().value(i)),
        DataType::Date32 => out.push_str(&json_string(&date(a.as_primitive::<Date32Type>().value(i).into()))),
        DataType::Time32(_) | DataType::Time64(_) => {
            let nanos = match a.data_type() {
                DataType::Time32(TimeUnit::Millisecond) => {
                    a.as_primitive::<Time32MillisecondType>().value(i) as i64 * 1_000_000
                }
                DataType::Time32(_) => {
                    a.as_primitive::<arrow::datatypes::Time32SecondType>().value(i) as i64 * 1_000_000_000
                }
                DataType::Time64(TimeUnit::Microsecond) => a.as_primitive::<Time64MicrosecondType>().value(i) * 1_000,
                _ => a.as_primitive::<Time64NanosecondType>().value(i),
            };
            let p = match t {
                TrinoType::Time(p) => *p,
                _ => 9,
            };
            let (p, picos) = rounded(p, nanos as i128 * 1000 + extra.picos as i128, dt);
            out.push_str(&json_string(&time(picos, p)));
        }
        DataType::Timestamp(unit, tz) => {
            let v = match unit {
                TimeUnit::Second => a.as_primitive::<TimestampSecondType>().value(i) as i128 * 1_000_000_000,
                TimeUnit::Millisecond => a.as_primitive::<TimestampMillisecondType>().value(i) as i128 * 1_000_000,
                TimeUnit::Microsecond => a.as_primitive::<TimestampMicrosecondType>().value(i) as i128 * 1_000,
                TimeUnit::Nanosecond => a.as_primitive::<TimestampNanosecondType>().value(i) as i128,
            };
            let p = match t {
                TrinoType::Timestamp(p) | TrinoType::TimestampTz(p) => *p,
                _ => 9,
            };
            let (p, v) = rounded(p, v * 1000 + extra.picos as i128, dt);
            out.push_str(&json_string(&timestamp(v, p, extra.zone.or(tz.as_deref()))));
        }
        DataType::Duration(_) => {
            let millis = a.as_primitive::<DurationMillisecondType>().value(i);
            out.push_str(&json_string(&day_to_second(millis)));
        }
        DataType::Interval(IntervalUnit::MonthDayNano) => {
            let months = a.as_primitive::<IntervalMonthDayNanoType>().value(i).months;
            out.push_str(&json_string(&year_to_month(months)));
        }
        DataType::List(_) => {
            let list = a.as_list::<i32>();
            let inner = match t {
                TrinoType::Array(e) => e.as_ref().clone(),
                _ => from_arrow(&list.value_type()),
            };
            let items = list.value(i);
            out.push('[');
            for j in 0..items.len() {
                if j > 0 {
                    out.push(',');
                }
                value(items.as_ref(), j, &inner, dt, Extra::NONE, out);
            }
            out.push(']');
        }
        DataType::Struct(_) => {
            let s = a.as_struct();
            out.push('[');
            for (j, col) in s.columns().iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                let ft = match t {
                    TrinoType::Row(fields) => fields.get(j).map(|(_, t)| t.clone()),
                    _ => None,
                }
                .unwrap_or_else(|| from_arrow(col.data_type()));
                value(col.as_ref(), i, &ft, dt, Extra::NONE, out);
            }
            out.push(']');
        }
        DataType::Map(_, _) => {
            let m = a.as_map();
            let entries = m.value(i);
            let (kt, vt) = match t {
                TrinoType::Map(k, v) => (k.as_ref().clone(), v.as_ref().clone()),
                _ => (from_arrow(entries.column(0).data_type()), from_arrow(entries.column(1).data_type())),
            };
            out.push('{');
            for j in 0..entries.len() {
                if j > 0 {
                    out.push(',');
                }
                // Keys are always strings ("for backward compatibility").
                let mut key = String::new();
                value(entries.column(0).as_ref(), j, &kt, dt, Extra::NONE, &mut key);
                if key.starts_with('"') {
                    out.push_str(&key)
                } else {
                    out.push_str(&json_string(&key))
                }
                out.push(':');
                value(entries.column(1).as_ref(), j, &vt, dt, Extra::NONE, out);
            }
            out.push('}');
        }
        _ => {
            // A type Flightdeck never produces: its display text.
            let shown = arrow::util::display::array_value_to_string(a, i).unwrap_or_default();
            out.push_str(&json_string(&shown));
        }
    }
}

fn push(out: &mut String, v: impl std::fmt::Display) {
    let _ = write!(out, "{v}");
}

/// Finite numbers as JSON numbers (always with a `.` or an exponent, as
/// Java writes them), others as Trino's strings.
fn float(out: &mut String, v: f64, real: Option<f32>) {
    if v.is_nan() {
        out.push_str("\"NaN\"");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "\"Infinity\"" } else { "\"-Infinity\"" });
    } else {
        // A real prints with the shortest digits that read back as that real.
        match real {
            Some(r) => push(out, format_args!("{r:?}")),
            None => push(out, format_args!("{v:?}")),
        }
    }
}

fn base64_value(out: &mut String, bytes: &[u8]) {
    out.push('"');
    out.push_str(&base64::engine::general_purpose::STANDARD.encode(bytes));
    out.push('"');
}

/// An unscaled decimal as its plain text (`-0.010`).
pub fn decimal(v: i128, scale: i8) -> String {
    let digits = v.unsigned_abs().to_string();
    let sign = if v < 0 { "-" } else { "" };
    if scale <= 0 {
        return format!("{sign}{digits}{}", "0".repeat((-scale) as usize));
    }
    let scale = scale as usize;
    let padded =
        if digits.len() <= scale { format!("{}{digits}", "0".repeat(scale - digits.len() + 1)) } else { digits };
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

const PICOS_PER_SECOND: i128 = 1_000_000_000_000;

/// `picos` rounded half up to milliseconds for clients without parametric
/// datetimes (as Trino does), with the precision to print.
fn rounded(p: u8, picos: i128, dt: Datetimes) -> (u8, i128) {
    if dt == Datetimes::Parametric || p <= 3 {
        return (if dt == Datetimes::Parametric { p } else { 3 }, picos);
    }
    let unit = 1_000_000_000i128;
    (3, (picos + unit / 2).div_euclid(unit) * unit)
}

/// `.` and the first `p` of 12 fractional digits, from picoseconds within
/// a second.
fn fraction(out: &mut String, picos: i128, p: u8) {
    if p == 0 {
        return;
    }
    let picos = format!("{picos:012}");
    out.push('.');
    out.push_str(&picos[..p.min(12) as usize]);
}

/// `HH:mm:ss[.f...]` of picoseconds since midnight.
fn time(picos: i128, p: u8) -> String {
    let picos = picos.rem_euclid(86_400 * PICOS_PER_SECOND);
    let secs = (picos / PICOS_PER_SECOND) as i64;
    let mut s = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    fraction(&mut s, picos % PICOS_PER_SECOND, p);
    s
}

/// `uuuu-MM-dd` of a day number (days since 1970-01-01), as Trino writes
/// it (Java's `LocalDate`): four digits at least, and a sign before a year
/// past 9999 or before 0. Any day, past the years chrono holds.
fn date(days: i64) -> String {
    let (y, m, d) = crate::trino::decode::civil_from_days(days);
    match y {
        10_000.. => format!("+{y}-{m:02}-{d:02}"),
        ..0 => format!("-{:04}-{m:02}-{d:02}", -y),
        _ => format!("{y:04}-{m:02}-{d:02}"),
    }
}

/// `uuuu-MM-dd HH:mm:ss[.f...][ zone]` of picoseconds since the epoch.
fn timestamp(picos: i128, p: u8, zone: Option<&str>) -> String {
    let secs = picos.div_euclid(PICOS_PER_SECOND) as i64;
    let sub = picos.rem_euclid(PICOS_PER_SECOND);
    // The wall clock's seconds since the epoch; without a zone, any value
    // (chrono holds fewer years than a timestamp can).
    let (local, name) = match zone {
        None => (secs, None),
        Some(z) => {
            let Some(utc) = DateTime::from_timestamp(secs, 0) else { return String::new() };
            let (local, name) = match z.parse::<chrono_tz::Tz>() {
                Ok(tz) => (utc.with_timezone(&tz).naive_local(), z.to_string()),
                Err(_) => match z.parse::<chrono::FixedOffset>() {
                    Ok(off) => (utc.with_timezone(&off).naive_local(), z.to_string()),
                    Err(_) => (utc.naive_utc(), "UTC".to_string()),
                },
            };
            (local.and_utc().timestamp(), Some(name))
        }
    };
    let (day, clock) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let mut s = format!("{} {:02}:{:02}:{:02}", date(day), clock / 3600, clock / 60 % 60, clock % 60);
    fraction(&mut s, sub, p);
    if let Some(name) = name {
        s.push(' ');
        s.push_str(&name);
    }
    s
}

/// `[-]D HH:MM:SS.mmm`, as Trino's `IntervalDayTime.formatMillis`.
pub fn day_to_second(millis: i64) -> String {
    let sign = if millis < 0 { "-" } else { "" };
    let m = millis.unsigned_abs();
    let (day, rest) = (m / 86_400_000, m % 86_400_000);
    format!("{sign}{day} {:02}:{:02}:{:02}.{:03}", rest / 3_600_000, rest / 60_000 % 60, rest / 1000 % 60, rest % 1000)
}

/// `[-]Y-M`, as Trino's `IntervalYearMonth.formatMonths`.
pub fn year_to_month(months: i32) -> String {
    let sign = if months < 0 { "-" } else { "" };
    let m = months.unsigned_abs();
    format!("{sign}{}-{}", m / 12, m % 12)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_print_their_scale() {
        assert_eq!(decimal(12345, 3), "12.345");
        assert_eq!(decimal(-1, 38), format!("-0.{}1", "0".repeat(37)));
        assert_eq!(decimal(0, 2), "0.00");
        assert_eq!(decimal(-5, 0), "-5");
        assert_eq!(decimal(i128::MAX, 0), i128::MAX.to_string());
    }

    #[test]
    fn intervals_print_as_trino_does() {
        assert_eq!(day_to_second(2 * 86_400_000), "2 00:00:00.000");
        assert_eq!(day_to_second(-3000), "-0 00:00:03.000");
        assert_eq!(day_to_second(i64::MIN), "-106751991167 07:12:55.808");
        assert_eq!(year_to_month(-3), "-0-3");
        assert_eq!(year_to_month(14), "1-2");
    }

    #[test]
    fn dates_are_written_as_trino_writes_them_for_every_day_it_holds() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(-1), "1969-12-31");
        assert_eq!(date(-719_528), "0000-01-01");
        assert_eq!(date(-719_529), "-0001-12-31");
        assert_eq!(date(2_932_896), "9999-12-31");
        assert_eq!(date(2_932_897), "+10000-01-01");
        assert_eq!(date(i32::MAX.into()), "+5881580-07-11");
        assert_eq!(date(i32::MIN.into()), "-5877641-06-23");
    }

    #[test]
    fn timestamps_print_their_precision_and_zone() {
        let ps = 1_704_067_200_123_456_789_012i128; // 2024-01-01 00:00:00.123456789012
        assert_eq!(timestamp(ps, 3, None), "2024-01-01 00:00:00.123");
        assert_eq!(timestamp(ps, 0, None), "2024-01-01 00:00:00");
        assert_eq!(timestamp(ps, 12, None), "2024-01-01 00:00:00.123456789012");
        assert_eq!(timestamp(ps, 6, Some("UTC")), "2024-01-01 00:00:00.123456 UTC");
        assert_eq!(timestamp(ps, 3, Some("America/New_York")), "2023-12-31 19:00:00.123 America/New_York");
        assert_eq!(timestamp(ps, 0, Some("+05:30")), "2024-01-01 05:30:00 +05:30");
        // Before 1970 and before year 1.
        assert_eq!(timestamp(-1000, 9, None), "1969-12-31 23:59:59.999999999");
        assert_eq!(timestamp(-1, 12, None), "1969-12-31 23:59:59.999999999999");
        assert_eq!(timestamp((-62_167_219_200 - 1) * PICOS_PER_SECOND, 0, None), "-0001-12-31 23:59:59");
        // Past the years chrono holds (Trino's `timestamp(3)` goes further).
        let far = (108_853_281_i128 * 86_400 + 43_200) * PICOS_PER_SECOND; // +300000-02-29 12:00:00
        assert_eq!(timestamp(far, 3, None), "+300000-02-29 12:00:00.000");
        // Older clients get milliseconds, rounded half up.
        assert_eq!(rounded(6, 1_500_000_000, Datetimes::Milliseconds), (3, 2_000_000_000));
        assert_eq!(rounded(6, 1_499_999_999, Datetimes::Milliseconds), (3, 1_000_000_000));
        assert_eq!(rounded(9, -1_500_000_000, Datetimes::Milliseconds), (3, -1_000_000_000));
        assert_eq!(rounded(6, 1_999_499_000, Datetimes::Parametric), (6, 1_999_499_000));
    }

    #[test]
    fn values_regain_their_zone_and_picoseconds() {
        use arrow::array::{Time64NanosecondArray, TimestampNanosecondArray};
        let ns = 1_704_067_200_123_456_789i64;
        let tz = TimestampNanosecondArray::from(vec![ns, ns]).with_timezone("UTC");
        let t = TrinoType::TimestampTz(12);
        let write = |a: &dyn Array, i, t: &TrinoType, dt, extra| {
            let mut out = String::new();
            value(a, i, t, dt, extra, &mut out);
            out
        };
        let kept = Extra { zone: Some("Asia/Kolkata"), picos: 12 };
        assert_eq!(write(&tz, 0, &t, Datetimes::Parametric, kept), "\"2024-01-01 05:30:00.123456789012 Asia/Kolkata\"");
        assert_eq!(write(&tz, 1, &t, Datetimes::Parametric, Extra::NONE), "\"2024-01-01 00:00:00.123456789000 UTC\"");
        assert_eq!(write(&tz, 0, &t, Datetimes::Milliseconds, kept), "\"2024-01-01 05:30:00.123 Asia/Kolkata\"");
        let time = Time64NanosecondArray::from(vec![86_399_999_999_999]);
        let picos = Extra { zone: None, picos: 999 };
        assert_eq!(write(&time, 0, &TrinoType::Time(12), Datetimes::Parametric, picos), "\"23:59:59.999999999999\"");
        // Rounded to milliseconds, the last picosecond of the day wraps.
        assert_eq!(write(&time, 0, &TrinoType::Time(12), Datetimes::Milliseconds, picos), "\"00:00:00.000\"");
    }

    #[test]
    fn signatures_and_names_match_trinos() {
        let t = TrinoType::parse("row(a bigint, b varchar, \"c d\" array(interval day to second))").unwrap();
        assert_eq!(
            display(&t, Datetimes::Parametric),
            "row(a bigint, b varchar, \"c d\" array(INTERVAL DAY TO SECOND))"
        );
        let mut s = String::new();
        signature(&TrinoType::parse("row(a bigint, varchar(3))").unwrap(), Datetimes::Parametric, &mut s);
        assert_eq!(
            s,
            r#"{"rawType":"row","arguments":[{"kind":"NAMED_TYPE","value":{"fieldName":{"name":"a"},"typeSignature":{"rawType":"bigint","arguments":[]}}},{"kind":"NAMED_TYPE","value":{"typeSignature":{"rawType":"varchar","arguments":[{"kind":"LONG","value":3}]}}}]}"#
        );
        let mut s = String::new();
        signature(&TrinoType::parse("time(12) with time zone").unwrap(), Datetimes::Parametric, &mut s);
        assert_eq!(s, r#"{"rawType":"time with time zone","arguments":[{"kind":"LONG","value":12}]}"#);
        assert_eq!(display(&TrinoType::TimestampTz(6), Datetimes::Milliseconds), "timestamp with time zone");
    }

    #[test]
    fn floats_keep_their_value_and_trinos_special_spellings() {
        let mut s = String::new();
        for v in [1e10, 0.1, f64::NAN, f64::NEG_INFINITY, 1e-7] {
            float(&mut s, v, None);
            s.push(' ');
        }
        float(&mut s, 0.1f32 as f64, Some(0.1f32));
        assert_eq!(s, r#"10000000000.0 0.1 "NaN" "-Infinity" 1e-7 0.1"#);
    }
}
