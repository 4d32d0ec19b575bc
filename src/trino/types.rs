//! Trino types and their Arrow mapping.
//!
//! Types are parsed from Trino's display form (`decimal(12,2)`,
//! `row(a integer, "b c" array(varchar))`, `timestamp(3) with time zone`),
//! which both the statement protocol's `columns[].type` and `DESCRIBE OUTPUT`
//! return, so the schema a prepared statement advertises and the schema its
//! results stream with come from one code path.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, IntervalUnit, Schema, TimeUnit};

/// Field metadata key that Flight SQL clients (JDBC `getColumns`) read.
pub const TYPE_NAME_KEY: &str = "ARROW:FLIGHT:SQL:TYPE_NAME";
/// Field metadata key for precision (decimal digits, character length).
pub const PRECISION_KEY: &str = "ARROW:FLIGHT:SQL:PRECISION";
/// Field metadata key for scale (decimal scale, fractional-second digits).
pub const SCALE_KEY: &str = "ARROW:FLIGHT:SQL:SCALE";

/// A Trino type, as far as Flightdeck needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrinoType {
    Boolean,
    TinyInt,
    SmallInt,
    Integer,
    BigInt,
    Real,
    Double,
    Decimal {
        precision: u8,
        scale: i8,
    },
    /// `varchar` or `varchar(n)`.
    Varchar(Option<u32>),
    Char(u32),
    Varbinary,
    Json,
    Date,
    Time(u8),
    Timestamp(u8),
    TimestampTz(u8),
    IntervalDayToSecond,
    IntervalYearToMonth,
    Uuid,
    IpAddress,
    Array(Box<TrinoType>),
    Map(Box<TrinoType>, Box<TrinoType>),
    Row(Vec<(Option<String>, TrinoType)>),
    /// Any other type (`time with time zone`, `HyperLogLog`, geometry, ...):
    /// carried as text, with its Trino name kept in the field metadata.
    Other(String),
}

/// Arrow time unit for a Trino fractional-second precision (0..=12).
/// Precisions above 9 (picoseconds) are truncated to nanoseconds.
pub fn time_unit(precision: u8) -> TimeUnit {
    match precision {
        0..=3 => TimeUnit::Millisecond,
        4..=6 => TimeUnit::Microsecond,
        _ => TimeUnit::Nanosecond,
    }
}

impl TrinoType {
    /// Parses Trino's display form of a type.
    pub fn parse(s: &str) -> Result<TrinoType, String> {
        let mut p = Parser { s: s.as_bytes(), pos: 0 };
        let t = p.parse_type()?;
        p.skip_ws();
        if p.pos != p.s.len() {
            return Err(format!("unexpected trailing input in type `{s}`"));
        }
        Ok(t)
    }

    /// Whether a type inside this one was not recognised. `DESCRIBE OUTPUT`
    /// prints row field names unquoted (`row(b c varchar)`), which parses
    /// as an unknown type; callers then need another source of truth.
    pub fn has_unknown_inside(&self) -> bool {
        match self {
            TrinoType::Array(e) => matches!(**e, TrinoType::Other(_)) || e.has_unknown_inside(),
            TrinoType::Map(k, v) => {
                [k, v].iter().any(|t| matches!(***t, TrinoType::Other(_)) || t.has_unknown_inside())
            }
            TrinoType::Row(fields) => {
                fields.iter().any(|(_, t)| matches!(t, TrinoType::Other(_)) || t.has_unknown_inside())
            }
            _ => false,
        }
    }

    /// The Trino display name (`decimal(10, 2)`, `array(varchar)`, ...).
    pub fn name(&self) -> String {
        match self {
            TrinoType::Boolean => "boolean".into(),
            TrinoType::TinyInt => "tinyint".into(),
            TrinoType::SmallInt => "smallint".into(),
            TrinoType::Integer => "integer".into(),
            TrinoType::BigInt => "bigint".into(),
            TrinoType::Real => "real".into(),
            TrinoType::Double => "double".into(),
            // Trino prints a space after the comma (`decimal(12, 3)`).
            TrinoType::Decimal { precision, scale } => format!("decimal({precision}, {scale})"),
            TrinoType::Varchar(None) => "varchar".into(),
            TrinoType::Varchar(Some(n)) => format!("varchar({n})"),
            TrinoType::Char(n) => format!("char({n})"),
            TrinoType::Varbinary => "varbinary".into(),
            TrinoType::Json => "json".into(),
            TrinoType::Date => "date".into(),
            TrinoType::Time(p) => format!("time({p})"),
            TrinoType::Timestamp(p) => format!("timestamp({p})"),
            TrinoType::TimestampTz(p) => format!("timestamp({p}) with time zone"),
            TrinoType::IntervalDayToSecond => "interval day to second".into(),
            TrinoType::IntervalYearToMonth => "interval year to month".into(),
            TrinoType::Uuid => "uuid".into(),
            TrinoType::IpAddress => "ipaddress".into(),
            TrinoType::Array(e) => format!("array({})", e.name()),
            TrinoType::Map(k, v) => format!("map({}, {})", k.name(), v.name()),
            TrinoType::Row(fields) => {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(n, t)| match n {
                        Some(n) => format!("{} {}", row_field_display(n), t.name()),
                        None => t.name(),
                    })
                    .collect();
                format!("row({})", parts.join(", "))
            }
            TrinoType::Other(name) => name.clone(),
        }
    }

    /// The Arrow type values of this Trino type are decoded into. Never a
    /// view type, never a dictionary.
    pub fn arrow_type(&self) -> DataType {
        match self {
            TrinoType::Boolean => DataType::Boolean,
            TrinoType::TinyInt => DataType::Int8,
            TrinoType::SmallInt => DataType::Int16,
            TrinoType::Integer => DataType::Int32,
            TrinoType::BigInt => DataType::Int64,
            TrinoType::Real => DataType::Float32,
            TrinoType::Double => DataType::Float64,
            TrinoType::Decimal { precision, scale } => DataType::Decimal128(*precision, *scale),
            TrinoType::Varchar(_)
            | TrinoType::Char(_)
            | TrinoType::Json
            | TrinoType::Uuid
            | TrinoType::IpAddress
            | TrinoType::Other(_) => DataType::Utf8,
            TrinoType::Varbinary => DataType::Binary,
            TrinoType::Date => DataType::Date32,
            TrinoType::Time(p) => match time_unit(*p) {
                TimeUnit::Millisecond => DataType::Time32(TimeUnit::Millisecond),
                unit => DataType::Time64(unit),
            },
            TrinoType::Timestamp(p) => DataType::Timestamp(time_unit(*p), None),
            TrinoType::TimestampTz(p) => DataType::Timestamp(time_unit(*p), Some("UTC".into())),
            TrinoType::IntervalDayToSecond => DataType::Duration(TimeUnit::Millisecond),
            // pyarrow and pandas read MonthDayNano; YearMonth is poorly supported.
            TrinoType::IntervalYearToMonth => DataType::Interval(IntervalUnit::MonthDayNano),
            TrinoType::Array(e) => DataType::List(Arc::new(e.field("item"))),
            TrinoType::Map(k, v) => {
                // Arrow requires non-null map keys; Trino map keys are never null.
                let key = k.field("key").with_nullable(false);
                let entries = Field::new_struct("entries", vec![key, v.field("value")], false);
                DataType::Map(Arc::new(entries), false)
            }
            TrinoType::Row(fields) => DataType::Struct(Fields::from(
                fields
                    .iter()
                    .enumerate()
                    .map(|(i, (n, t))| t.field(&row_field_name(i, n.as_deref())))
                    .collect::<Vec<_>>(),
            )),
        }
    }

    /// A nullable Arrow field of this type carrying the Flight SQL type
    /// metadata (type name, and precision and scale where they apply).
    pub fn field(&self, name: &str) -> Field {
        let mut md = HashMap::from([(TYPE_NAME_KEY.to_string(), self.name())]);
        let (precision, scale) = match self {
            TrinoType::Decimal { precision, scale } => (Some(*precision as u32), Some(*scale as u32)),
            TrinoType::Varchar(Some(n)) | TrinoType::Char(n) => (Some(*n), None),
            TrinoType::Time(p) | TrinoType::Timestamp(p) | TrinoType::TimestampTz(p) => (None, Some(*p as u32)),
            _ => (None, None),
        };
        if let Some(p) = precision {
            md.insert(PRECISION_KEY.to_string(), p.to_string());
        }
        if let Some(s) = scale {
            md.insert(SCALE_KEY.to_string(), s.to_string());
        }
        Field::new(name, self.arrow_type(), true).with_metadata(md)
    }
}

/// A row field name as Trino prints it inside a type: bare when it is a
/// plain ASCII identifier (`id`, `ID`, `a_b`) and not reserved, else quoted
/// with doubled quotes (`"select"`, `"_x"`, `"a b"`, `"année"`).
pub(crate) fn row_field_display(name: &str) -> String {
    let mut chars = name.chars();
    let plain = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !crate::sql::is_reserved(name);
    if plain { name.to_string() } else { crate::sql::quote_ident(name) }
}

/// Name of the `i`th field of a row type; anonymous fields get `_field{i}`.
pub fn row_field_name(i: usize, name: Option<&str>) -> String {
    match name {
        Some(n) => n.to_string(),
        None => format!("_field{i}"),
    }
}

/// A result column as Trino describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub ty: TrinoType,
}

/// The Arrow schema for a list of Trino columns.
pub fn schema_for(columns: &[Column]) -> Schema {
    Schema::new(columns.iter().map(|c| c.ty.field(&c.name)).collect::<Vec<_>>())
}

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn expect(&mut self, c: u8) -> Result<(), String> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected `{}` at offset {} in type `{}`", c as char, self.pos, self.text()))
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(self.s).into_owned()
    }

    /// An identifier: letters, digits and underscores (type names, keywords,
    /// unquoted row field names).
    fn word(&mut self) -> Option<String> {
        self.skip_ws();
        let start = self.pos;
        while self.pos < self.s.len() && (self.s[self.pos].is_ascii_alphanumeric() || self.s[self.pos] == b'_') {
            self.pos += 1;
        }
        (self.pos > start).then(|| String::from_utf8_lossy(&self.s[start..self.pos]).into_owned())
    }

    fn quoted(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            match self.s.get(self.pos) {
                None => return Err(format!("unterminated quoted name in type `{}`", self.text())),
                Some(b'"') if self.s.get(self.pos + 1) == Some(&b'"') => {
                    out.push(b'"');
                    self.pos += 2;
                }
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(&c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn number(&mut self) -> Result<u64, String> {
        let w = self.word().ok_or_else(|| format!("expected a number in type `{}`", self.text()))?;
        w.parse().map_err(|_| format!("expected a number, found `{w}` in type `{}`", self.text()))
    }

    /// Consumes the keyword sequence `words` if it comes next.
    fn keywords(&mut self, words: &[&str]) -> bool {
        let save = self.pos;
        for w in words {
            match self.word() {
                Some(x) if x.eq_ignore_ascii_case(w) => {}
                _ => {
                    self.pos = save;
                    return false;
                }
            }
        }
        true
    }

    fn paren_numbers(&mut self) -> Result<Vec<u64>, String> {
        let mut out = Vec::new();
        if self.peek() != Some(b'(') {
            return Ok(out);
        }
        self.expect(b'(')?;
        loop {
            out.push(self.number()?);
            match self.peek() {
                Some(b',') => self.pos += 1,
                _ => break,
            }
        }
        self.expect(b')')?;
        Ok(out)
    }

    fn parse_type(&mut self) -> Result<TrinoType, String> {
        let start = self.pos;
        let name = self
            .word()
            .ok_or_else(|| format!("expected a type name at offset {} in `{}`", self.pos, self.text()))?
            .to_ascii_lowercase();
        let t = match name.as_str() {
            "boolean" => TrinoType::Boolean,
            "tinyint" => TrinoType::TinyInt,
            "smallint" => TrinoType::SmallInt,
            "integer" | "int" => TrinoType::Integer,
            "bigint" => TrinoType::BigInt,
            "real" => TrinoType::Real,
            "double" => {
                self.keywords(&["precision"]);
                TrinoType::Double
            }
            "decimal" => {
                let args = self.paren_numbers()?;
                let precision = *args.first().unwrap_or(&38);
                let scale = *args.get(1).unwrap_or(&0);
                if !(1..=38).contains(&precision) || scale > precision {
                    return Err(format!("invalid decimal({precision},{scale})"));
                }
                TrinoType::Decimal { precision: precision as u8, scale: scale as i8 }
            }
            "varchar" => {
                let args = self.paren_numbers()?;
                // Unbounded varchar is sometimes spelled with the maximum length.
                TrinoType::Varchar(args.first().map(|&n| n as u32).filter(|&n| n < i32::MAX as u32))
            }
            "char" => TrinoType::Char(*self.paren_numbers()?.first().unwrap_or(&1) as u32),
            "varbinary" => TrinoType::Varbinary,
            "json" => TrinoType::Json,
            "date" => TrinoType::Date,
            "uuid" => TrinoType::Uuid,
            "ipaddress" => TrinoType::IpAddress,
            "time" | "timestamp" => {
                let p = *self.paren_numbers()?.first().unwrap_or(&3);
                if p > 12 {
                    return Err(format!("invalid {name}({p})"));
                }
                let p = p as u8;
                let with_tz = self.keywords(&["with", "time", "zone"]);
                match (name.as_str(), with_tz) {
                    ("time", false) => TrinoType::Time(p),
                    ("timestamp", false) => TrinoType::Timestamp(p),
                    ("timestamp", true) => TrinoType::TimestampTz(p),
                    _ => TrinoType::Other(format!("time({p}) with time zone")),
                }
            }
            "interval" => {
                if self.keywords(&["day", "to", "second"]) {
                    TrinoType::IntervalDayToSecond
                } else if self.keywords(&["year", "to", "month"]) {
                    TrinoType::IntervalYearToMonth
                } else {
                    return Err(format!("unknown interval type in `{}`", self.text()));
                }
            }
            "array" => {
                self.expect(b'(')?;
                let e = self.parse_type()?;
                self.expect(b')')?;
                TrinoType::Array(Box::new(e))
            }
            "map" => {
                self.expect(b'(')?;
                let k = self.parse_type()?;
                self.expect(b',')?;
                let v = self.parse_type()?;
                self.expect(b')')?;
                TrinoType::Map(Box::new(k), Box::new(v))
            }
            "row" => {
                self.expect(b'(')?;
                let mut fields = Vec::new();
                loop {
                    fields.push(self.row_field()?);
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        _ => break,
                    }
                }
                self.expect(b')')?;
                TrinoType::Row(fields)
            }
            _ => {
                // Unknown type: keep its whole display text, parameters included.
                let mut depth = 0usize;
                while let Some(&c) = self.s.get(self.pos) {
                    match c {
                        b'(' => depth += 1,
                        b')' if depth == 0 => break,
                        b')' => depth -= 1,
                        b',' if depth == 0 => break,
                        _ => {}
                    }
                    self.pos += 1;
                }
                let text = String::from_utf8_lossy(&self.s[start..self.pos]).trim().to_string();
                TrinoType::Other(text)
            }
        };
        Ok(t)
    }

    /// A row field: `name type`, `"quoted name" type`, or an anonymous `type`.
    fn row_field(&mut self) -> Result<(Option<String>, TrinoType), String> {
        if self.peek() == Some(b'"') {
            let name = self.quoted()?;
            return Ok((Some(name), self.parse_type()?));
        }
        // Either `name type` or just `type`: try the named form first.
        let save = self.pos;
        if let Some(name) = self.word() {
            match self.peek() {
                Some(b',') | Some(b')') | Some(b'(') | None => {}
                _ => {
                    let before_type = self.pos;
                    // `double precision`, `timestamp(3) with time zone` and
                    // `interval day to second` are single types, not `name type`.
                    let lower = name.to_ascii_lowercase();
                    if !matches!(lower.as_str(), "double" | "interval")
                        && let Ok(t) = self.parse_type()
                    {
                        return Ok((Some(name), t));
                    }
                    self.pos = before_type;
                }
            }
        }
        self.pos = save;
        Ok((None, self.parse_type()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_display_names_and_round_trips() {
        let cases = [
            "boolean",
            "tinyint",
            "bigint",
            "decimal(38, 10)",
            "varchar",
            "varchar(25)",
            "char(3)",
            "varbinary",
            "json",
            "date",
            "time(12)",
            "timestamp(3)",
            "timestamp(12) with time zone",
            "interval day to second",
            "interval year to month",
            "uuid",
            "ipaddress",
            "array(array(integer))",
            "map(varchar, array(double))",
            "row(a integer, \"b c\" row(x varchar))",
            // Exactly as Trino 476 prints these field names.
            "row(\"select\" integer, \"a.b\" integer, ID integer, \"1a\" integer, a_b integer, \"a$b\" integer, \
             \"a\"\"q\" integer, \"from\" integer, \"x y\" integer, \"année\" integer, \"_x\" integer)",
        ];
        for c in cases {
            assert_eq!(TrinoType::parse(c).unwrap().name(), c, "{c}");
        }
    }

    #[test]
    fn parses_row_forms() {
        assert_eq!(
            TrinoType::parse("row(a integer, b varchar(3))").unwrap(),
            TrinoType::Row(vec![
                (Some("a".into()), TrinoType::Integer),
                (Some("b".into()), TrinoType::Varchar(Some(3)))
            ])
        );
        assert_eq!(
            TrinoType::parse("row(integer, timestamp(6) with time zone)").unwrap(),
            TrinoType::Row(vec![(None, TrinoType::Integer), (None, TrinoType::TimestampTz(6))])
        );
        assert_eq!(
            TrinoType::parse("row(\"we\"\"ird\" double)").unwrap(),
            TrinoType::Row(vec![(Some("we\"ird".into()), TrinoType::Double)])
        );
    }

    #[test]
    fn unknown_types_become_text_with_their_name() {
        let t = TrinoType::parse("HyperLogLog").unwrap();
        assert_eq!(t, TrinoType::Other("HyperLogLog".into()));
        let f = t.field("h");
        assert_eq!(f.data_type(), &DataType::Utf8);
        assert_eq!(f.metadata()[TYPE_NAME_KEY], "HyperLogLog");
        let t = TrinoType::parse("time(3) with time zone").unwrap();
        assert_eq!(t.arrow_type(), DataType::Utf8);
        assert_eq!(TrinoType::parse("qdigest(bigint)").unwrap(), TrinoType::Other("qdigest(bigint)".into()));
    }

    #[test]
    fn arrow_mapping() {
        let f = TrinoType::parse("decimal(12,2)").unwrap().field("d");
        assert_eq!(f.data_type(), &DataType::Decimal128(12, 2));
        assert!(f.is_nullable());
        assert_eq!(f.metadata()[PRECISION_KEY], "12");
        assert_eq!(f.metadata()[SCALE_KEY], "2");
        assert_eq!(
            TrinoType::parse("timestamp(9) with time zone").unwrap().arrow_type(),
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
        );
        assert_eq!(TrinoType::parse("time(6)").unwrap().arrow_type(), DataType::Time64(TimeUnit::Microsecond));
        assert_eq!(TrinoType::parse("time(0)").unwrap().arrow_type(), DataType::Time32(TimeUnit::Millisecond));
        let DataType::Map(entries, false) = TrinoType::parse("map(bigint, varchar)").unwrap().arrow_type() else {
            panic!("map");
        };
        let DataType::Struct(kv) = entries.data_type() else { panic!("entries") };
        assert!(!kv[0].is_nullable());
        assert!(kv[1].is_nullable());
    }

    #[test]
    fn rejects_garbage() {
        assert!(TrinoType::parse("decimal(40,2)").is_err());
        assert!(TrinoType::parse("array(integer").is_err());
        assert!(TrinoType::parse("").is_err());
    }
}
