//! Decoding Trino's JSON `data` pages straight into Arrow arrays.
//!
//! A [`BatchDecoder`] holds one builder per column, shaped like the column's
//! [`TrinoType`]. The page text is walked once with serde's visitor API and
//! every cell lands in its builder directly: no `serde_json::Value` per cell,
//! and strings are copied once, from the response buffer into Arrow.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryBuilder, BooleanBuilder, Decimal128Builder, Float32Builder, Float64Builder, Int8Builder,
    Int16Builder, Int32Builder, Int64Builder, IntervalMonthDayNanoBuilder, ListArray, MapArray, StringBuilder,
    StructArray, make_array,
};
use arrow::array::{ArrayBuilder, NullBufferBuilder};
use arrow::buffer::{OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{DataType, Field, FieldRef, Fields, IntervalMonthDayNano, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use base64::Engine;
use chrono::{NaiveDate, Offset, TimeZone};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::types::{Column, TrinoType, schema_for, time_unit};

/// Decodes the rows of one query's pages into record batches.
#[derive(Debug)]
pub struct BatchDecoder {
    schema: SchemaRef,
    columns: Vec<ColumnDecoder>,
    rows: usize,
}

impl BatchDecoder {
    /// A decoder for rows of `columns`.
    pub fn new(columns: &[Column]) -> Self {
        BatchDecoder {
            schema: Arc::new(schema_for(columns)),
            columns: columns.iter().map(|c| ColumnDecoder::new(&c.ty).keeping_beyond(&c.ty)).collect(),
            rows: 0,
        }
    }

    /// The Arrow schema of the batches this decoder produces.
    pub fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    /// Rows decoded since the last [`finish`](Self::finish).
    pub fn pending_rows(&self) -> usize {
        self.rows
    }

    /// Appends the rows of one `data` array (the JSON text of `[[...], ...]`).
    /// On error the decoder's state is unspecified and it should be dropped.
    pub fn decode(&mut self, data: &str) -> Result<usize, DecodeError> {
        let mut de = serde_json::Deserializer::from_str(data);
        let n = de.deserialize_seq(RowsVisitor(&mut self.columns)).map_err(|e| DecodeError(e.to_string()))?;
        de.end().map_err(|e| DecodeError(e.to_string()))?;
        self.rows += n;
        Ok(n)
    }

    /// Takes the rows decoded so far as one batch, leaving the decoder empty.
    /// A column holding values Arrow cannot (see [`Beyond`]) carries them in
    /// its field's metadata, in this batch's schema only.
    pub fn finish(&mut self) -> Result<RecordBatch, DecodeError> {
        let arrays = self.columns.iter_mut().map(ColumnDecoder::finish).collect::<Result<Vec<_>, _>>()?;
        let beyond: Vec<Option<Beyond>> = self.columns.iter_mut().map(ColumnDecoder::take_beyond).collect();
        let schema = if beyond.iter().all(Option::is_none) {
            self.schema()
        } else {
            let fields: Vec<Field> = self
                .schema
                .fields()
                .iter()
                .zip(&beyond)
                .map(|(f, b)| match b {
                    Some(b) => b.mark(f),
                    None => f.as_ref().clone(),
                })
                .collect();
            Arc::new(Schema::new_with_metadata(fields, self.schema.metadata().clone()))
        };
        let options = RecordBatchOptions::new().with_row_count(Some(self.rows));
        self.rows = 0;
        RecordBatch::try_new_with_options(schema, arrays, &options).map_err(DecodeError::from)
    }
}

/// What Arrow cannot hold of a `time` or `timestamp` column's values as
/// Trino sent them: the zone of each `timestamp with time zone` (Arrow keeps
/// one zone per column, so values become UTC instants) and digits below the
/// nanosecond (precisions 10 to 12). Kept sparsely, by row, in the field
/// metadata of the batch they belong to, so that Trino's text can be
/// written back exactly; the Flight SQL encoder writes its own schema and
/// drops it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Beyond {
    /// Rows whose zone is not `UTC`, with the zone Trino named.
    pub zones: Vec<(usize, String)>,
    /// Rows with picoseconds below the nanosecond, and how many.
    pub picos: Vec<(usize, u16)>,
    /// For arrays, maps and rows holding such values: the rows that do, with
    /// the JSON text Trino sent.
    pub cells: Vec<(usize, String)>,
}

impl Beyond {
    /// Field metadata key of [`Beyond::zones`] (a JSON array of `[row, zone]`).
    pub const ZONES: &'static str = "flightdeck.trino.zones";
    /// Field metadata key of [`Beyond::picos`] (a JSON array of `[row, picos]`).
    pub const PICOS: &'static str = "flightdeck.trino.picos";
    /// Field metadata key of [`Beyond::cells`] (a JSON array of `[row, text]`).
    pub const CELLS: &'static str = "flightdeck.trino.cells";
    /// Every key a field may carry.
    pub const KEYS: [&'static str; 3] = [Self::ZONES, Self::PICOS, Self::CELLS];

    /// What `field` of a decoded batch carries; `None` when nothing.
    pub fn of(field: &Field) -> Option<Beyond> {
        let m = field.metadata();
        let zones = m.get(Self::ZONES).and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
        let picos = m.get(Self::PICOS).and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
        let cells = m.get(Self::CELLS).and_then(|s| serde_json::from_str(s).ok()).unwrap_or_default();
        let b = Beyond { zones, picos, cells };
        (!b.is_empty()).then_some(b)
    }

    /// Memory a batch holds beside its arrays: what its fields carry.
    pub fn held_bytes(batch: &RecordBatch) -> usize {
        let fields = batch.schema_ref().fields();
        fields.iter().flat_map(|f| Self::KEYS.iter().filter_map(|k| f.metadata().get(*k))).map(String::len).sum()
    }

    /// The zone row `row` was given in, when not UTC.
    pub fn zone(&self, row: usize) -> Option<&str> {
        self.zones.binary_search_by_key(&row, |(r, _)| *r).ok().map(|i| self.zones[i].1.as_str())
    }

    /// Row `row`'s picoseconds below the nanosecond.
    pub fn picos(&self, row: usize) -> u16 {
        self.picos.binary_search_by_key(&row, |(r, _)| *r).map_or(0, |i| self.picos[i].1)
    }

    /// The JSON text of row `row`, when it holds such values nested.
    pub fn cell(&self, row: usize) -> Option<&str> {
        self.cells.binary_search_by_key(&row, |(r, _)| *r).ok().map(|i| self.cells[i].1.as_str())
    }

    fn is_empty(&self) -> bool {
        self.zones.is_empty() && self.picos.is_empty() && self.cells.is_empty()
    }

    /// Keeps what Arrow loses of `text`, the value of row `row` (already
    /// parsed, so well formed).
    fn keep(&mut self, row: usize, text: &str, zoned: bool) {
        let (zone, picos) = lost(text, zoned);
        if let Some(zone) = zone {
            self.zones.push((row, zone.to_string()));
        }
        if picos > 0 {
            self.picos.push((row, picos));
        }
    }

    fn mark(&self, field: &Field) -> Field {
        let mut metadata = field.metadata().clone();
        if !self.zones.is_empty() {
            metadata.insert(Self::ZONES.to_string(), serde_json::to_string(&self.zones).expect("serializes"));
        }
        if !self.picos.is_empty() {
            metadata.insert(Self::PICOS.to_string(), serde_json::to_string(&self.picos).expect("serializes"));
        }
        if !self.cells.is_empty() {
            metadata.insert(Self::CELLS.to_string(), serde_json::to_string(&self.cells).expect("serializes"));
        }
        field.clone().with_metadata(metadata)
    }
}

/// What Arrow loses of a time or timestamp text: its zone, when not UTC,
/// and its picoseconds below the nanosecond (digits 10 to 12).
fn lost(text: &str, zoned: bool) -> (Option<&str>, u16) {
    let (clock, zone) = match text.rsplit_once(' ') {
        Some((clock, zone)) if zoned => (clock, Some(zone)),
        _ => (text, None),
    };
    let picos = match clock.rsplit_once('.') {
        Some((_, fraction)) if fraction.len() > 9 && fraction.bytes().all(|b| b.is_ascii_digit()) => {
            let digits = &fraction.as_bytes()[9..fraction.len().min(12)];
            digits.iter().fold(0u16, |v, d| v * 10 + (d - b'0') as u16) * 10u16.pow(3 - digits.len() as u32)
        }
        _ => 0,
    };
    (zone.filter(|z| *z != "UTC"), picos)
}

/// Whether a type holds values Arrow may keep only in part: zoned
/// timestamps, and times and timestamps finer than the nanosecond.
fn may_lose(ty: &TrinoType) -> bool {
    match ty {
        TrinoType::TimestampTz(_) => true,
        TrinoType::Time(p) | TrinoType::Timestamp(p) => *p > 9,
        TrinoType::Array(e) => may_lose(e),
        TrinoType::Map(k, v) => may_lose(k) || may_lose(v),
        TrinoType::Row(fields) => fields.iter().any(|(_, t)| may_lose(t)),
        _ => false,
    }
}

/// Whether `v`, a JSON value of type `ty`, holds anything Arrow loses.
fn loses(ty: &TrinoType, v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (ty, v) {
        (TrinoType::TimestampTz(_), Value::String(s)) => lost(s, true) != (None, 0),
        (TrinoType::Time(_) | TrinoType::Timestamp(_), Value::String(s)) => lost(s, false).1 > 0,
        (TrinoType::Array(e), Value::Array(items)) => items.iter().any(|i| loses(e, i)),
        (TrinoType::Map(k, val), Value::Object(m)) => {
            m.iter().any(|(key, x)| loses(k, &Value::String(key.clone())) || loses(val, x))
        }
        (TrinoType::Row(fields), Value::Array(items)) => fields.iter().zip(items).any(|((_, t), i)| loses(t, i)),
        _ => false,
    }
}

/// A time (`zoned` false, since midnight) or timestamp text as picoseconds,
/// with the zone it names; `None` when malformed.
pub fn picoseconds(text: &str, zoned: bool, time: bool) -> Option<(i128, Option<&str>)> {
    let nanos = if time {
        parse_time(text, TimeUnit::Nanosecond)?
    } else {
        parse_timestamp(text, TimeUnit::Nanosecond, zoned)?
    };
    let (_, picos) = lost(text, zoned);
    let zone = if zoned { text.rsplit_once(' ').map(|(_, z)| z) } else { None };
    Some((nanos as i128 * 1000 + picos as i128, zone))
}

/// A page did not match its declared column types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode Trino result data: {0}")]
pub struct DecodeError(pub String);

impl From<ArrowError> for DecodeError {
    fn from(e: ArrowError) -> Self {
        DecodeError(e.to_string())
    }
}

/// Which Trino text form a string column parses.
#[derive(Debug, Clone, Copy, PartialEq)]
enum TextKind {
    /// Stored as sent (varchar, char, json, uuid, ipaddress).
    Plain,
    /// Any other type: strings as sent, other JSON as its text.
    Other,
}

#[derive(Debug)]
enum ColumnDecoder {
    Bool(BooleanBuilder),
    Int8(Int8Builder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Decimal {
        builder: Decimal128Builder,
        scale: u32,
        precision: u8,
    },
    Text(StringBuilder, TextKind),
    Binary(BinaryBuilder, Vec<u8>),
    Date(Int32Builder),
    /// `time(p)`: i64 in `unit` since midnight; finished as `data_type`.
    Time {
        builder: Int64Builder,
        unit: TimeUnit,
        data_type: DataType,
        /// Kept for top-level columns whose values Arrow may not hold.
        beyond: Option<Beyond>,
    },
    /// `timestamp(p) [with time zone]`: i64 in `unit` since the epoch (UTC
    /// instants for the zoned form).
    Timestamp {
        builder: Int64Builder,
        unit: TimeUnit,
        zoned: bool,
        data_type: DataType,
        /// Kept for top-level columns whose values Arrow may not hold.
        beyond: Option<Beyond>,
    },
    IntervalDayToSecond(Int64Builder),
    IntervalYearToMonth(IntervalMonthDayNanoBuilder),
    List {
        field: FieldRef,
        offsets: Vec<i32>,
        nulls: NullBufferBuilder,
        child: Box<ColumnDecoder>,
    },
    Map {
        entries: FieldRef,
        offsets: Vec<i32>,
        nulls: NullBufferBuilder,
        keys: Box<ColumnDecoder>,
        values: Box<ColumnDecoder>,
    },
    Struct {
        fields: Fields,
        nulls: NullBufferBuilder,
        children: Vec<ColumnDecoder>,
    },
    /// A top-level array, map or row whose values Arrow may keep only in
    /// part: decoded into `inner`, and the text of the cells that lose
    /// something kept.
    Cells {
        inner: Box<ColumnDecoder>,
        ty: TrinoType,
        kept: Beyond,
        rows: usize,
    },
}

impl ColumnDecoder {
    fn new(ty: &TrinoType) -> Self {
        match ty {
            TrinoType::Boolean => Self::Bool(BooleanBuilder::new()),
            TrinoType::TinyInt => Self::Int8(Int8Builder::new()),
            TrinoType::SmallInt => Self::Int16(Int16Builder::new()),
            TrinoType::Integer => Self::Int32(Int32Builder::new()),
            TrinoType::BigInt => Self::Int64(Int64Builder::new()),
            TrinoType::Real => Self::Float32(Float32Builder::new()),
            TrinoType::Double => Self::Float64(Float64Builder::new()),
            TrinoType::Decimal { precision, scale } => {
                Self::Decimal { builder: Decimal128Builder::new(), scale: *scale as u32, precision: *precision }
            }
            TrinoType::Varchar(_) | TrinoType::Char(_) | TrinoType::Json | TrinoType::Uuid | TrinoType::IpAddress => {
                Self::Text(StringBuilder::new(), TextKind::Plain)
            }
            TrinoType::Other(_) => Self::Text(StringBuilder::new(), TextKind::Other),
            TrinoType::Varbinary => Self::Binary(BinaryBuilder::new(), Vec::new()),
            TrinoType::Date => Self::Date(Int32Builder::new()),
            TrinoType::Time(p) => Self::Time {
                builder: Int64Builder::new(),
                unit: time_unit(*p),
                data_type: ty.arrow_type(),
                beyond: None,
            },
            TrinoType::Timestamp(p) | TrinoType::TimestampTz(p) => Self::Timestamp {
                builder: Int64Builder::new(),
                unit: time_unit(*p),
                zoned: matches!(ty, TrinoType::TimestampTz(_)),
                data_type: ty.arrow_type(),
                beyond: None,
            },
            TrinoType::IntervalDayToSecond => Self::IntervalDayToSecond(Int64Builder::new()),
            TrinoType::IntervalYearToMonth => Self::IntervalYearToMonth(IntervalMonthDayNanoBuilder::new()),
            TrinoType::Array(element) => {
                let DataType::List(field) = ty.arrow_type() else { unreachable!("array maps to List") };
                Self::List {
                    field,
                    offsets: vec![0],
                    nulls: NullBufferBuilder::new(0),
                    child: Box::new(Self::new(element)),
                }
            }
            TrinoType::Map(k, v) => {
                let DataType::Map(entries, _) = ty.arrow_type() else { unreachable!("map maps to Map") };
                Self::Map {
                    entries,
                    offsets: vec![0],
                    nulls: NullBufferBuilder::new(0),
                    keys: Box::new(Self::new(k)),
                    values: Box::new(Self::new(v)),
                }
            }
            TrinoType::Row(row) => {
                let DataType::Struct(fields) = ty.arrow_type() else { unreachable!("row maps to Struct") };
                Self::Struct {
                    fields,
                    nulls: NullBufferBuilder::new(0),
                    children: row.iter().map(|(_, t)| Self::new(t)).collect(),
                }
            }
        }
    }

    /// Keeps what Arrow cannot hold of this column's values: zones and
    /// sub-nanosecond digits. Top-level columns only; inside arrays, maps
    /// and rows the values keep their instant.
    fn keeping_beyond(mut self, ty: &TrinoType) -> Self {
        let fine = matches!(ty, TrinoType::Time(p) | TrinoType::Timestamp(p) | TrinoType::TimestampTz(p) if *p > 9);
        match &mut self {
            Self::Time { beyond, .. } if fine => *beyond = Some(Beyond::default()),
            Self::Timestamp { beyond, zoned, .. } if fine || *zoned => *beyond = Some(Beyond::default()),
            Self::List { .. } | Self::Map { .. } | Self::Struct { .. } if may_lose(ty) => {
                return Self::Cells { inner: Box::new(self), ty: ty.clone(), kept: Beyond::default(), rows: 0 };
            }
            _ => {}
        }
        self
    }

    /// What was kept since the last call, when anything.
    fn take_beyond(&mut self) -> Option<Beyond> {
        match self {
            Self::Time { beyond: Some(b), .. } | Self::Timestamp { beyond: Some(b), .. } if !b.is_empty() => {
                Some(std::mem::take(b))
            }
            Self::Cells { kept, rows, .. } => {
                *rows = 0;
                (!kept.is_empty()).then(|| std::mem::take(kept))
            }
            _ => None,
        }
    }

    fn type_label(&self) -> &'static str {
        match self {
            Self::Bool(_) => "boolean",
            Self::Int8(_) | Self::Int16(_) | Self::Int32(_) | Self::Int64(_) => "integer",
            Self::Float32(_) | Self::Float64(_) => "floating-point",
            Self::Decimal { .. } => "decimal",
            Self::Text(..) => "text",
            Self::Binary(..) => "varbinary",
            Self::Date(_) => "date",
            Self::Time { .. } => "time",
            Self::Timestamp { .. } => "timestamp",
            Self::IntervalDayToSecond(_) => "interval day to second",
            Self::IntervalYearToMonth(_) => "interval year to month",
            Self::List { .. } => "array",
            Self::Map { .. } => "map",
            Self::Struct { .. } => "row",
            Self::Cells { inner, .. } => inner.type_label(),
        }
    }

    fn append_null(&mut self) {
        match self {
            Self::Bool(b) => b.append_null(),
            Self::Int8(b) => b.append_null(),
            Self::Int16(b) => b.append_null(),
            Self::Int32(b) | Self::Date(b) => b.append_null(),
            Self::Int64(b)
            | Self::IntervalDayToSecond(b)
            | Self::Time { builder: b, .. }
            | Self::Timestamp { builder: b, .. } => b.append_null(),
            Self::Float32(b) => b.append_null(),
            Self::Float64(b) => b.append_null(),
            Self::Decimal { builder, .. } => builder.append_null(),
            Self::Text(b, _) => b.append_null(),
            Self::Binary(b, _) => b.append_null(),
            Self::IntervalYearToMonth(b) => b.append_null(),
            Self::List { offsets, nulls, .. } | Self::Map { offsets, nulls, .. } => {
                offsets.push(*offsets.last().expect("offsets start with 0"));
                nulls.append_null();
            }
            Self::Struct { nulls, children, .. } => {
                children.iter_mut().for_each(Self::append_null);
                nulls.append_null();
            }
            Self::Cells { inner, rows, .. } => {
                inner.append_null();
                *rows += 1;
            }
        }
    }

    /// Appends a value given as a JSON string (most Trino types use one).
    fn append_str<E: de::Error>(&mut self, s: &str) -> Result<(), E> {
        let bad = |what: &str| E::custom(format!("invalid {what} value {s:?}"));
        match self {
            Self::Text(b, _) => b.append_value(s),
            Self::Decimal { builder, scale, .. } => {
                builder.append_value(parse_decimal(s, *scale).ok_or_else(|| bad("decimal"))?)
            }
            Self::Float64(b) => b.append_value(parse_special_float(s).ok_or_else(|| bad("double"))?),
            Self::Float32(b) => b.append_value(parse_special_float(s).ok_or_else(|| bad("real"))? as f32),
            Self::Binary(b, buf) => {
                buf.clear();
                base64::engine::general_purpose::STANDARD.decode_vec(s, buf).map_err(|_| bad("varbinary"))?;
                b.append_value(&buf[..]);
            }
            Self::Date(b) => b.append_value(parse_date(s).ok_or_else(|| bad("date"))?),
            Self::Time { builder, unit, beyond, .. } => {
                let v = parse_time(s, *unit).ok_or_else(|| bad("time"))?;
                if let Some(b) = beyond {
                    b.keep(builder.len(), s, false);
                }
                builder.append_value(v)
            }
            Self::Timestamp { builder, unit, zoned, beyond, .. } => {
                let v = parse_timestamp(s, *unit, *zoned).ok_or_else(|| bad("timestamp"))?;
                if let Some(b) = beyond {
                    b.keep(builder.len(), s, *zoned);
                }
                builder.append_value(v)
            }
            Self::IntervalDayToSecond(b) => b.append_value(parse_interval_ds(s).ok_or_else(|| bad("interval"))?),
            Self::IntervalYearToMonth(b) => {
                let months = parse_interval_ym(s).ok_or_else(|| bad("interval"))?;
                b.append_value(IntervalMonthDayNano::new(months, 0, 0));
            }
            // Map keys arrive as strings whatever their type.
            Self::Bool(b) => b.append_value(s.parse().map_err(|_| bad("boolean"))?),
            Self::Int8(b) => b.append_value(s.parse().map_err(|_| bad("tinyint"))?),
            Self::Int16(b) => b.append_value(s.parse().map_err(|_| bad("smallint"))?),
            Self::Int32(b) => b.append_value(s.parse().map_err(|_| bad("integer"))?),
            Self::Int64(b) => b.append_value(s.parse().map_err(|_| bad("bigint"))?),
            Self::List { .. } | Self::Map { .. } | Self::Struct { .. } | Self::Cells { .. } => {
                return Err(E::custom(format!("expected {}, found string {s:?}", self.type_label())));
            }
        }
        Ok(())
    }

    fn append_i64<E: de::Error>(&mut self, v: i64) -> Result<(), E> {
        let label = self.type_label();
        let range = || E::custom(format!("{v} out of range for {label}"));
        match self {
            Self::Int8(b) => b.append_value(i8::try_from(v).map_err(|_| range())?),
            Self::Int16(b) => b.append_value(i16::try_from(v).map_err(|_| range())?),
            Self::Int32(b) => b.append_value(i32::try_from(v).map_err(|_| range())?),
            Self::Int64(b) => b.append_value(v),
            Self::Float32(b) => b.append_value(v as f32),
            Self::Float64(b) => b.append_value(v as f64),
            Self::Text(b, TextKind::Other) => b.append_value(v.to_string()),
            _ => return Err(E::custom(format!("expected {}, found number {v}", self.type_label()))),
        }
        Ok(())
    }

    fn append_f64<E: de::Error>(&mut self, v: f64) -> Result<(), E> {
        match self {
            Self::Float32(b) => b.append_value(v as f32),
            Self::Float64(b) => b.append_value(v),
            Self::Text(b, TextKind::Other) => b.append_value(v.to_string()),
            _ => return Err(E::custom(format!("expected {}, found number {v}", self.type_label()))),
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<ArrayRef, DecodeError> {
        Ok(match self {
            Self::Bool(b) => Arc::new(b.finish()),
            Self::Int8(b) => Arc::new(b.finish()),
            Self::Int16(b) => Arc::new(b.finish()),
            Self::Int32(b) => Arc::new(b.finish()),
            Self::Int64(b) => Arc::new(b.finish()),
            Self::Float32(b) => Arc::new(b.finish()),
            Self::Float64(b) => Arc::new(b.finish()),
            Self::Decimal { builder, precision, scale } => {
                Arc::new(builder.finish().with_precision_and_scale(*precision, *scale as i8)?)
            }
            Self::Text(b, _) => Arc::new(b.finish()),
            Self::Binary(b, _) => Arc::new(b.finish()),
            Self::Date(b) => retype(Arc::new(b.finish()), DataType::Date32)?,
            Self::Time { builder, data_type, .. } => {
                let values = builder.finish();
                if *data_type == DataType::Time32(TimeUnit::Millisecond) {
                    // Milliseconds since midnight always fit in i32.
                    let narrowed: arrow::array::Int32Array = values.unary(|v| v as i32);
                    retype(Arc::new(narrowed), data_type.clone())?
                } else {
                    retype(Arc::new(values), data_type.clone())?
                }
            }
            Self::Timestamp { builder, data_type, .. } => retype(Arc::new(builder.finish()), data_type.clone())?,
            Self::IntervalDayToSecond(b) => retype(Arc::new(b.finish()), DataType::Duration(TimeUnit::Millisecond))?,
            Self::IntervalYearToMonth(b) => Arc::new(b.finish()),
            Self::List { field, offsets, nulls, child } => {
                let offsets = OffsetBuffer::new(ScalarBuffer::from(std::mem::replace(offsets, vec![0])));
                Arc::new(ListArray::try_new(Arc::clone(field), offsets, child.finish()?, nulls.finish())?)
            }
            Self::Map { entries, offsets, nulls, keys, values } => {
                let DataType::Struct(kv) = entries.data_type() else { unreachable!("map entries are a struct") };
                let entry_array = StructArray::try_new(kv.clone(), vec![keys.finish()?, values.finish()?], None)?;
                let offsets = OffsetBuffer::new(ScalarBuffer::from(std::mem::replace(offsets, vec![0])));
                Arc::new(MapArray::try_new(Arc::clone(entries), offsets, entry_array, nulls.finish(), false)?)
            }
            Self::Struct { fields, nulls, children } => {
                let arrays = children.iter_mut().map(Self::finish).collect::<Result<Vec<_>, _>>()?;
                let nulls = nulls.finish();
                if fields.is_empty() {
                    Arc::new(StructArray::new_empty_fields(nulls.as_ref().map_or(0, |n| n.len()), nulls))
                } else {
                    Arc::new(StructArray::try_new(fields.clone(), arrays, nulls)?)
                }
            }
            Self::Cells { inner, .. } => inner.finish()?,
        })
    }
}

/// Reinterprets a primitive array as another type with the same layout.
fn retype(array: ArrayRef, data_type: DataType) -> Result<ArrayRef, DecodeError> {
    let data = array.into_data().into_builder().data_type(data_type).build()?;
    Ok(make_array(data))
}

struct RowsVisitor<'a>(&'a mut [ColumnDecoder]);

impl<'de> Visitor<'de> for RowsVisitor<'_> {
    type Value = usize;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut n = 0;
        while seq.next_element_seed(RowSeed(&mut *self.0))?.is_some() {
            n += 1;
        }
        Ok(n)
    }
}

struct RowSeed<'a>(&'a mut [ColumnDecoder]);

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a row of {} values", self.0.len())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        fill_positional(self.0, seq, "row")
    }
}

/// Fills `columns` from a JSON array holding exactly one value per column.
fn fill_positional<'de, A: SeqAccess<'de>>(
    columns: &mut [ColumnDecoder],
    mut seq: A,
    what: &str,
) -> Result<(), A::Error> {
    let expected = columns.len();
    for (i, c) in columns.iter_mut().enumerate() {
        if seq.next_element_seed(Cell(c))?.is_none() {
            return Err(de::Error::custom(format!("{what} has {i} values, expected {expected}")));
        }
    }
    if seq.next_element::<IgnoredAny>()?.is_some() {
        return Err(de::Error::custom(format!("{what} has more than {expected} values")));
    }
    Ok(())
}

/// One cell: deserializes a value into its column's builder.
struct Cell<'a>(&'a mut ColumnDecoder);

impl<'de> DeserializeSeed<'de> for Cell<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if let ColumnDecoder::Cells { inner, ty, kept, rows } = self.0 {
            let raw = <Option<Box<serde_json::value::RawValue>>>::deserialize(d)?;
            let row = *rows;
            *rows += 1;
            let Some(raw) = raw else {
                inner.append_null();
                return Ok(());
            };
            let mut de = serde_json::Deserializer::from_str(raw.get());
            Cell(inner).deserialize(&mut de).map_err(de::Error::custom)?;
            let value: serde_json::Value = serde_json::from_str(raw.get()).map_err(de::Error::custom)?;
            if loses(ty, &value) {
                kept.cells.push((row, raw.get().to_string()));
            }
            return Ok(());
        }
        if let ColumnDecoder::Text(b, TextKind::Other) = self.0 {
            // Unknown types may be any JSON: keep strings as sent and the
            // text of anything else.
            let raw = <Option<Box<serde_json::value::RawValue>>>::deserialize(d)?;
            match raw {
                None => b.append_null(),
                Some(raw) => match serde_json::from_str::<String>(raw.get()) {
                    Ok(s) => b.append_value(s),
                    Err(_) => b.append_value(raw.get()),
                },
            }
            return Ok(());
        }
        d.deserialize_any(self)
    }
}

use serde::Deserialize as _;

impl<'de> Visitor<'de> for Cell<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a {} value", self.0.type_label())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.0.append_null();
        Ok(())
    }

    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        match self.0 {
            ColumnDecoder::Bool(b) => {
                b.append_value(v);
                Ok(())
            }
            ColumnDecoder::Text(b, TextKind::Other) => {
                b.append_value(if v { "true" } else { "false" });
                Ok(())
            }
            c => Err(E::custom(format!("expected {}, found boolean", c.type_label()))),
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.0.append_i64(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        match i64::try_from(v) {
            Ok(v) => self.0.append_i64(v),
            Err(_) => self.0.append_f64(v as f64),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.0.append_f64(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.0.append_str(v)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        match self.0 {
            ColumnDecoder::List { offsets, nulls, child, .. } => {
                let mut len = 0i32;
                while seq.next_element_seed(Cell(child))?.is_some() {
                    len += 1;
                }
                let end = offsets.last().expect("offsets start with 0") + len;
                offsets.push(end);
                nulls.append_non_null();
                Ok(())
            }
            ColumnDecoder::Struct { nulls, children, .. } => {
                fill_positional(children, seq, "row value")?;
                nulls.append_non_null();
                Ok(())
            }
            c => Err(de::Error::custom(format!("expected {}, found array", c.type_label()))),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        match self.0 {
            ColumnDecoder::Map { offsets, nulls, keys, values, .. } => {
                let mut len = 0i32;
                while map.next_key_seed(Cell(keys))?.is_some() {
                    map.next_value_seed(Cell(values))?;
                    len += 1;
                }
                let end = offsets.last().expect("offsets start with 0") + len;
                offsets.push(end);
                nulls.append_non_null();
                Ok(())
            }
            c => Err(de::Error::custom(format!("expected {}, found object", c.type_label()))),
        }
    }
}

/// `"NaN"`, `"Infinity"`, `"-Infinity"`: Jackson's spelling of non-finite
/// floats. Other strings (older servers quote finite values too) parse as
/// numbers.
fn parse_special_float(s: &str) -> Option<f64> {
    match s {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// Parses a decimal string to its unscaled value at `scale`.
fn parse_decimal(s: &str, scale: u32) -> Option<i128> {
    let (neg, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() && frac.is_empty() || frac.len() > scale as usize {
        return None;
    }
    let mut v: i128 = 0;
    for c in int.bytes().chain(frac.bytes()) {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as i128)?;
    }
    v = v.checked_mul(10i128.checked_pow(scale - frac.len() as u32)?)?;
    Some(if neg { -v } else { v })
}

/// Days since 1970-01-01 of a proleptic Gregorian civil date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian civil date (year, month, day) of a day number
/// (days since 1970-01-01): [`days_from_civil`]'s inverse, for any `i64`
/// day a date or timestamp can hold, past the years chrono holds.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Splits `[+-]YYYY-MM-DD` off the front of `s`, returning (year, month, day, rest).
fn split_date(s: &str) -> Option<(i64, u32, u32, &str)> {
    let b = s.as_bytes();
    let sign_len = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    let year_end = sign_len + s[sign_len..].find('-')?;
    let year: i64 = s[..year_end].parse().ok()?;
    let rest = &s[year_end + 1..];
    let month: u32 = rest.get(0..2)?.parse().ok()?;
    if rest.as_bytes().get(2) != Some(&b'-') {
        return None;
    }
    let day: u32 = rest.get(3..5)?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    Some((year, month, day, &rest[5..]))
}

fn parse_date(s: &str) -> Option<i32> {
    let (y, m, d, rest) = split_date(s)?;
    if !rest.is_empty() {
        return None;
    }
    i32::try_from(days_from_civil(y, m, d)).ok()
}

fn unit_per_second(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    }
}

/// Parses `HH:MM:SS[.fraction]` into (seconds of day, sub-second part in
/// `unit`, rest). Fraction digits beyond the unit are truncated.
fn split_time(s: &str, unit: TimeUnit) -> Option<(i64, i64, &str)> {
    let b = s.as_bytes();
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    let h: i64 = s[0..2].parse().ok()?;
    let m: i64 = s[3..5].parse().ok()?;
    let sec: i64 = s[6..8].parse().ok()?;
    let mut rest = &s[8..];
    let mut frac = 0i64;
    if let Some(f) = rest.strip_prefix('.') {
        let digits = f.bytes().take_while(u8::is_ascii_digit).count();
        let wanted = unit_per_second(unit).ilog10() as usize;
        for (i, c) in f.bytes().take(digits).enumerate() {
            if i < wanted {
                frac = frac * 10 + (c - b'0') as i64;
            }
        }
        for _ in digits..wanted {
            frac *= 10;
        }
        rest = &f[digits..];
    }
    Some((h * 3600 + m * 60 + sec, frac, rest))
}

fn parse_time(s: &str, unit: TimeUnit) -> Option<i64> {
    let (secs, frac, rest) = split_time(s, unit)?;
    rest.is_empty().then(|| secs * unit_per_second(unit) + frac)
}

/// Parses `YYYY-MM-DD HH:MM:SS[.f]` (and ` ZONE` when `zoned`) into the count
/// of `unit` since the epoch; zoned values become UTC instants.
fn parse_timestamp(s: &str, unit: TimeUnit, zoned: bool) -> Option<i64> {
    let (y, mo, d, rest) = split_date(s)?;
    let (secs_of_day, frac, rest) = split_time(rest.strip_prefix(' ')?, unit)?;
    let days = days_from_civil(y, mo, d);
    let mut secs = days.checked_mul(86_400)?.checked_add(secs_of_day)?;
    if zoned {
        let zone = rest.strip_prefix(' ')?;
        secs = secs.checked_sub(zone_offset_seconds(zone, y, mo, d, secs_of_day)?)?;
    } else if !rest.is_empty() {
        return None;
    }
    secs.checked_mul(unit_per_second(unit))?.checked_add(frac)
}

/// The UTC offset, in seconds, of the wall-clock time given in `zone`
/// (`UTC`, `+05:30`, or an IANA name). A wall time that a DST change makes
/// ambiguous resolves to the earlier instant.
fn zone_offset_seconds(zone: &str, y: i64, mo: u32, d: u32, secs_of_day: i64) -> Option<i64> {
    if zone == "UTC" || zone == "Z" {
        return Some(0);
    }
    let b = zone.as_bytes();
    if matches!(b.first(), Some(b'+' | b'-')) && b.len() == 6 && b[3] == b':' {
        let h: i64 = zone[1..3].parse().ok()?;
        let m: i64 = zone[4..6].parse().ok()?;
        let off = h * 3600 + m * 60;
        return Some(if b[0] == b'-' { -off } else { off });
    }
    let tz = chrono_tz::Tz::from_str(zone).ok()?;
    let date = NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, mo, d)?;
    let local = date.and_hms_opt(0, 0, 0)? + chrono::TimeDelta::seconds(secs_of_day);
    let offset = tz.offset_from_local_datetime(&local).earliest()?;
    Some(offset.fix().local_minus_utc() as i64)
}

/// `[-]D HH:MM:SS.fff` to milliseconds.
fn parse_interval_ds(s: &str) -> Option<i64> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let (days, time) = body.split_once(' ')?;
    let days: i64 = days.parse().ok()?;
    let (secs, millis, rest) = split_time(time, TimeUnit::Millisecond)?;
    if !rest.is_empty() {
        return None;
    }
    let total = days.checked_mul(86_400_000)?.checked_add(secs * 1000 + millis)?;
    Some(if neg { -total } else { total })
}

/// `[-]Y-M` to months.
fn parse_interval_ym(s: &str) -> Option<i32> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let (y, m) = body.split_once('-')?;
    let months = y.parse::<i32>().ok()?.checked_mul(12)?.checked_add(m.parse::<i32>().ok()?)?;
    Some(if neg { -months } else { months })
}

#[cfg(test)]
mod tests;
