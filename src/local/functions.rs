//! Trino's functions and comparison rules where DataFusion's differ, in the
//! manner of the `datafusion-spark` crate: registered into the local
//! engine's session, and used by the rewrites of [`super::rewrite`].

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array};
use arrow::compute::kernels::temporal::{DatePart, date_part};
use arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature, Volatility,
};

/// Every function of the pack.
pub fn all() -> Vec<Arc<ScalarUDF>> {
    let mut out: Vec<Arc<ScalarUDF>> = EXTRACTS
        .iter()
        .enumerate()
        .map(|(i, (name, aliases, ..))| Arc::new(ScalarUDF::from(Extract::new(name, aliases, i))))
        .collect();
    out.push(Arc::new(ScalarUDF::from(DoubleKey::new(DOUBLE_KEY_NULLS_LAST, false))));
    out.push(Arc::new(ScalarUDF::from(DoubleKey::new(DOUBLE_KEY_NULLS_FIRST, true))));
    out.push(Arc::new(ScalarUDF::from(DateTrunc::new(datafusion::functions::datetime::date_trunc()))));
    out
}

/// DataFusion's `date_trunc` (shown equal to Trino's by the differential
/// suite for the units `check` lets through), worked out once per bucket
/// for timestamps without zone: a dataset's rows arrive in time order, so
/// a value mostly falls in the bucket of the one before and needs no
/// calendar arithmetic. Where values jump about, it leaves the whole array
/// to DataFusion. A `date` is truncated here, to a `date` as in Trino;
/// DataFusion would make it a timestamp in nanoseconds, which holds only
/// the years 1677 to 2262.
#[derive(Debug, PartialEq, Eq, Hash)]
struct DateTrunc {
    inner: Arc<ScalarUDF>,
    signature: Signature,
}

impl DateTrunc {
    fn new(inner: Arc<ScalarUDF>) -> Self {
        let mut options = vec![
            TypeSignature::Exact(vec![DataType::Utf8, DataType::Date32]),
            TypeSignature::Exact(vec![DataType::Utf8View, DataType::Date32]),
        ];
        match &inner.signature().type_signature {
            TypeSignature::OneOf(theirs) => options.extend(theirs.iter().cloned()),
            theirs => options.push(theirs.clone()),
        }
        let signature = Signature::one_of(options, inner.signature().volatility);
        DateTrunc { inner, signature }
    }

    /// The truncation of each value of `array` by `unit`, bucket by bucket;
    /// `None` when too few values share a bucket with the one before.
    fn by_bucket(&self, args: &ScalarFunctionArgs, unit: &str, array: &ArrayRef) -> Result<Option<ArrayRef>> {
        use arrow::datatypes::TimeUnit;
        let DataType::Timestamp(time_unit, None) = array.data_type() else { return Ok(None) };
        let per_second: i64 = match time_unit {
            TimeUnit::Second => 1,
            TimeUnit::Millisecond => 1_000,
            TimeUnit::Microsecond => 1_000_000,
            TimeUnit::Nanosecond => 1_000_000_000,
        };
        // At least one bucket long: `start + longest` is in the next bucket.
        let longest = match unit.to_ascii_lowercase().as_str() {
            "second" => 1,
            "minute" => 60,
            "hour" => 3_600,
            "day" => 86_400,
            "week" => 7 * 86_400,
            "month" => 31 * 86_400,
            "quarter" => 92 * 86_400,
            "year" => 366 * 86_400,
            _ => return Ok(None),
        } * per_second;
        let truncate = |v: i64| -> Result<i64> {
            let value = match time_unit {
                TimeUnit::Second => ScalarValue::TimestampSecond(Some(v), None),
                TimeUnit::Millisecond => ScalarValue::TimestampMillisecond(Some(v), None),
                TimeUnit::Microsecond => ScalarValue::TimestampMicrosecond(Some(v), None),
                TimeUnit::Nanosecond => ScalarValue::TimestampNanosecond(Some(v), None),
            };
            let args = ScalarFunctionArgs {
                args: vec![args.args[0].clone(), ColumnarValue::Scalar(value)],
                number_rows: 1,
                ..args.clone()
            };
            match self.inner.invoke_with_args(args)? {
                ColumnarValue::Scalar(
                    ScalarValue::TimestampSecond(Some(t), _)
                    | ScalarValue::TimestampMillisecond(Some(t), _)
                    | ScalarValue::TimestampMicrosecond(Some(t), _)
                    | ScalarValue::TimestampNanosecond(Some(t), _),
                ) => Ok(t),
                other => exec_err!("date_trunc of a timestamp gave {other:?}"),
            }
        };
        let values = array.to_data();
        let values = &values.buffer::<i64>(0)[..array.len()];
        // Looked up once, for the loop and the answer: `is_valid` through
        // the array is a dynamic call.
        let nulls = array.nulls();
        let (mut start, mut end) = (0i64, i64::MIN);
        let (mut out, mut misses) = (Vec::with_capacity(values.len()), 0usize);
        for (i, &v) in values.iter().enumerate() {
            if !(start <= v && v < end) && nulls.is_none_or(|n| n.is_valid(i)) {
                misses += 1;
                if misses > 16 && misses * 8 > i {
                    return Ok(None);
                }
                start = truncate(v)?;
                end = match start.checked_add(longest) {
                    Some(next) => truncate(next).unwrap_or(i64::MAX),
                    None => i64::MAX,
                };
            }
            out.push(start);
        }
        let out = arrow::array::Int64Array::new(out.into(), nulls.cloned());
        Ok(Some(arrow::compute::cast(&out, array.data_type())?))
    }
}

impl ScalarUDFImpl for DateTrunc {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        self.inner.return_type(args)
    }

    fn return_field_from_args(
        &self,
        args: datafusion::logical_expr::ReturnFieldArgs,
    ) -> Result<arrow::datatypes::FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn output_ordering(
        &self,
        inputs: &[datafusion::logical_expr::sort_properties::ExprProperties],
    ) -> Result<datafusion::logical_expr::sort_properties::SortProperties> {
        self.inner.output_ordering(inputs)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        if let [ColumnarValue::Scalar(ScalarValue::Utf8(Some(unit)) | ScalarValue::Utf8View(Some(unit))), value] =
            args.args.as_slice()
        {
            if value.data_type() == DataType::Date32 {
                let array = value.to_array(args.number_rows)?;
                let days = array.as_any().downcast_ref::<arrow::array::Date32Array>().expect("a Date32 array");
                let truncated: arrow::array::Date32Array =
                    days.iter().map(|d| d.map(|d| truncate_date(unit, d)).transpose()).collect::<Result<_>>()?;
                return Ok(match value {
                    ColumnarValue::Scalar(_) => ColumnarValue::Scalar(ScalarValue::try_from_array(&truncated, 0)?),
                    ColumnarValue::Array(_) => ColumnarValue::Array(Arc::new(truncated)),
                });
            }
            if let ColumnarValue::Array(array) = value
                && let Some(out) = self.by_bucket(&args, unit, array)?
            {
                return Ok(ColumnarValue::Array(out));
            }
        }
        self.inner.invoke_with_args(args)
    }
}

/// The first day of the `unit` (`day`, `week` from Monday, `month`,
/// `quarter` or `year`) holding `days` (since 1970-01-01), in the proleptic
/// Gregorian calendar Trino uses for every year.
fn truncate_date(unit: &str, days: i32) -> Result<i32> {
    use chrono::{Datelike, NaiveDate};
    let first = |date: Option<NaiveDate>| match date {
        Some(d) => Ok((d - NaiveDate::default()).num_days() as i32),
        None => exec_err!("date_trunc: day {days} is outside the calendar"),
    };
    let date = arrow::temporal_conversions::date32_to_datetime(days).map(|d| d.date());
    match unit.to_ascii_lowercase().as_str() {
        "day" => Ok(days),
        "week" => {
            first(date.and_then(|d| d.checked_sub_days(chrono::Days::new(d.weekday().num_days_from_monday().into()))))
        }
        "month" => first(date.and_then(|d| d.with_day(1))),
        "quarter" => first(date.and_then(|d| NaiveDate::from_ymd_opt(d.year(), (d.month0() / 3) * 3 + 1, 1))),
        "year" => first(date.and_then(|d| NaiveDate::from_ymd_opt(d.year(), 1, 1))),
        other => exec_err!("'{other}' is not a valid DATE field"),
    }
}

/// Trino's field extractions (`year(x)`, `hour(x)`, ...) of a `date` or a
/// `timestamp` without zone, as `bigint`. `day_of_week` is ISO (Monday 1),
/// `week` the ISO week.
const EXTRACTS: &[(&str, &[&str], DatePart, i64)] = &[
    ("year", &[], DatePart::Year, 0),
    ("quarter", &[], DatePart::Quarter, 0),
    ("month", &[], DatePart::Month, 0),
    ("week", &["week_of_year"], DatePart::Week, 0),
    ("day", &["day_of_month"], DatePart::Day, 0),
    ("day_of_week", &["dow"], DatePart::DayOfWeekMonday0, 1),
    ("day_of_year", &["doy"], DatePart::DayOfYear, 0),
    ("hour", &[], DatePart::Hour, 0),
    ("minute", &[], DatePart::Minute, 0),
    ("second", &[], DatePart::Second, 0),
];

/// The names of the extractions, with their aliases.
pub fn extract_names() -> impl Iterator<Item = &'static str> {
    EXTRACTS.iter().flat_map(|(name, aliases, ..)| std::iter::once(*name).chain(aliases.iter().copied()))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Extract {
    name: &'static str,
    aliases: Vec<String>,
    /// Its row of `EXTRACTS`.
    row: usize,
    signature: Signature,
}

impl Extract {
    fn new(name: &'static str, aliases: &[&str], row: usize) -> Self {
        Extract {
            name,
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            row,
            signature: Signature::new(TypeSignature::Any(1), Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Extract {
    fn name(&self) -> &str {
        self.name
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [value] = args.args.as_slice() else { return exec_err!("{} takes one argument", self.name) };
        let array = value.to_array(args.number_rows)?;
        match array.data_type() {
            DataType::Date32 | DataType::Timestamp(_, None) => {}
            other => return exec_err!("{} of {other}", self.name),
        }
        let (.., field, offset) = EXTRACTS[self.row];
        let part = date_part(array.as_ref(), field)?;
        let part = arrow::compute::cast(&part, &DataType::Int64)?;
        let out: ArrayRef = if offset == 0 {
            part
        } else {
            let offset = arrow::array::Int64Array::new_scalar(offset);
            arrow::compute::kernels::numeric::add(&part, &offset)?
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// Name of the sort key of doubles in Trino's order with NULLS LAST.
pub const DOUBLE_KEY_NULLS_LAST: &str = "trino_double_key";
/// Name of the sort key of doubles in Trino's order with NULLS FIRST.
pub const DOUBLE_KEY_NULLS_FIRST: &str = "trino_double_key_nulls_first";

/// A double as Trino compares and orders it, in a form Arrow's total order
/// handles the same way: `-0.0` is `0.0`, and every NaN is one NaN, placed
/// (as Trino places it) next to the NULLs: above everything with NULLS
/// LAST, below everything with NULLS FIRST.
#[derive(Debug, PartialEq, Eq, Hash)]
struct DoubleKey {
    name: &'static str,
    nan_first: bool,
    signature: Signature,
}

impl DoubleKey {
    fn new(name: &'static str, nan_first: bool) -> Self {
        DoubleKey { name, nan_first, signature: Signature::exact(vec![DataType::Float64], Volatility::Immutable) }
    }
}

impl ScalarUDFImpl for DoubleKey {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [value] = args.args.as_slice() else { return exec_err!("{} takes one argument", self.name) };
        let array = value.to_array(args.number_rows)?;
        let Some(values) = array.as_any().downcast_ref::<Float64Array>() else {
            return exec_err!("{} of {}", self.name, array.data_type());
        };
        let nan = if self.nan_first { -f64::NAN } else { f64::NAN };
        let out: Float64Array = values.unary(|v| match v {
            v if v.is_nan() => nan,
            // `-0.0 + 0.0` is `0.0`.
            v => v + 0.0,
        });
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// The 16 bytes of a string view as one `decimal(38, 0)`-typed 128-bit
/// key: for a string of at most 12 bytes the view holds the whole string
/// (its length, then its bytes padded with zeros), so two such strings are
/// equal exactly when their keys are. Grouped by, a key is hashed and
/// compared as one integer instead of as a string. Only for columns whose
/// every value is that short ([`crate::accel::DatasetTable::inline_strings`]).
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct InlineKey {
    signature: Signature,
}

/// The string an [`InlineKey`] was made from.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct InlineString {
    signature: Signature,
}

/// The type of an [`InlineKey`]; its values are not decimals (they may
/// pass 38 digits) and are never read as such.
pub(super) const INLINE_KEY: DataType = DataType::Decimal128(38, 0);

impl InlineKey {
    pub(super) fn udf() -> Arc<ScalarUDF> {
        let signature = Signature::exact(vec![DataType::Utf8View], Volatility::Immutable);
        Arc::new(ScalarUDF::from(InlineKey { signature }))
    }
}

impl InlineString {
    pub(super) fn udf() -> Arc<ScalarUDF> {
        let signature = Signature::exact(vec![INLINE_KEY], Volatility::Immutable);
        Arc::new(ScalarUDF::from(InlineString { signature }))
    }
}

impl ScalarUDFImpl for InlineKey {
    fn name(&self) -> &str {
        "flightdeck_inline_key"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(INLINE_KEY)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use arrow::array::{AsArray, Decimal128Array};
        let array = args.args[0].to_array(args.number_rows)?;
        let strings = array.as_string_view();
        if !strings.data_buffers().is_empty() {
            return exec_err!("{} of strings longer than 12 bytes", self.name());
        }
        let views = strings.views();
        let keys = arrow::buffer::ScalarBuffer::<i128>::new(views.inner().clone(), 0, views.len());
        let keys = Decimal128Array::try_new(keys, strings.nulls().cloned())?.with_data_type(INLINE_KEY);
        Ok(ColumnarValue::Array(Arc::new(keys)))
    }
}

impl ScalarUDFImpl for InlineString {
    fn name(&self) -> &str {
        "flightdeck_inline_string"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8View)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use arrow::array::{AsArray, StringViewArray};
        let array = args.args[0].to_array(args.number_rows)?;
        let keys = array.as_primitive::<arrow::datatypes::Decimal128Type>();
        let views = arrow::buffer::ScalarBuffer::<u128>::new(keys.values().inner().clone(), 0, keys.len());
        // Checked: every view must be a whole string of at most 12 bytes.
        let strings = StringViewArray::try_new(views, Vec::new(), keys.nulls().cloned())?;
        Ok(ColumnarValue::Array(Arc::new(strings)))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Array, ArrayRef, TimestampMillisecondArray, TimestampNanosecondArray, TimestampSecondArray};
    use arrow::datatypes::{DataType, Field};
    use datafusion::common::ScalarValue;
    use datafusion::common::config::ConfigOptions;
    use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl};

    use super::DateTrunc;

    /// `date_trunc(unit, a)`'s arguments.
    fn args_of(unit: &str, a: &ArrayRef) -> ScalarFunctionArgs {
        ScalarFunctionArgs {
            args: vec![
                ColumnarValue::Scalar(ScalarValue::Utf8(Some(unit.into()))),
                ColumnarValue::Array(Arc::clone(a)),
            ],
            arg_fields: vec![
                Arc::new(Field::new("u", DataType::Utf8, false)),
                Arc::new(Field::new("t", a.data_type().clone(), true)),
            ],
            number_rows: a.len(),
            return_field: Arc::new(Field::new("r", a.data_type().clone(), true)),
            config_options: Arc::new(ConfigOptions::default()),
        }
    }

    fn call(
        f: &dyn Fn(ScalarFunctionArgs) -> datafusion::common::Result<ColumnarValue>,
        unit: &str,
        a: &ArrayRef,
    ) -> String {
        let args = args_of(unit, a);
        match f(args) {
            Ok(ColumnarValue::Array(out)) => format!("{out:?}"),
            Ok(other) => format!("{other:?}"),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn date_trunc_by_bucket_gives_datafusions_answer() {
        let inner = datafusion::functions::datetime::date_trunc();
        let ours = DateTrunc::new(Arc::clone(&inner));
        let hour = 3_600_000i64;
        // In time order, as a dataset holds them: nulls first, then hours
        // across month, quarter and year ends, leap days and before 1970.
        let mut sorted: Vec<Option<i64>> = vec![None, None];
        sorted.extend((-40 * 24..400 * 24).map(|h| Some(h * hour + 1_234)));
        sorted.extend((0..3000).map(|d| Some(1_704_067_200_000 - 86_400_000 * 1_000 + d * 86_400_000 * 3)));
        sorted.sort();
        // Out of order: every other value from the far end.
        let shuffled: Vec<Option<i64>> = sorted.iter().zip(sorted.iter().rev()).flat_map(|(a, b)| [*a, *b]).collect();
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(TimestampMillisecondArray::from(sorted.clone())),
            Arc::new(TimestampMillisecondArray::from(shuffled)),
            Arc::new(TimestampSecondArray::from(sorted.iter().map(|v| v.map(|v| v / 1000)).collect::<Vec<_>>())),
            Arc::new(TimestampNanosecondArray::from(
                sorted.iter().map(|v| v.map(|v| v * 1_000_000)).collect::<Vec<_>>(),
            )),
            // Near the ends of nanoseconds, where truncating can leave the range
            // (not within a day of i64::MIN: DataFusion's own array path
            // overflows there).
            Arc::new(TimestampNanosecondArray::from(vec![
                Some(i64::MIN + 2 * 86_400_000_000_000),
                Some(i64::MIN / 2),
                Some(0),
                Some(i64::MAX - 1),
            ])),
            Arc::new(TimestampMillisecondArray::from(vec![None::<i64>, None])),
        ];
        for a in &arrays {
            for unit in ["second", "minute", "hour", "day", "week", "month", "quarter", "year"] {
                let want = call(&|args| inner.invoke_with_args(args), unit, a);
                let got = call(&|args| ours.invoke_with_args(args), unit, a);
                assert_eq!(got, want, "{unit} of {:?}", a.data_type());
            }
        }
        // Hours in order take the bucket path for days; values a bucket
        // apart each do not.
        let hours: Vec<i64> = (0..1000).map(|h| h * hour).collect();
        let sorted: ArrayRef = Arc::new(TimestampMillisecondArray::from(hours));
        let args = args_of("day", &sorted);
        assert!(ours.by_bucket(&args, "day", &sorted).unwrap().is_some());
        assert!(ours.by_bucket(&args, "hour", &sorted).unwrap().is_none());
    }

    #[test]
    fn date_trunc_of_a_date_is_the_first_day_of_its_unit() {
        use arrow::array::Date32Array;
        use chrono::NaiveDate;

        let ours = DateTrunc::new(datafusion::functions::datetime::date_trunc());
        let day =
            |s: &str| (NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap() - NaiveDate::default()).num_days() as i32;
        let dates: ArrayRef = Arc::new(Date32Array::from(vec![
            Some(day("2024-02-29")),
            None,
            Some(day("0001-01-01")),
            Some(day("9999-12-31")),
            Some(day("1900-03-01")),
            Some(day("1969-12-31")),
        ]));
        let text = |unit: &str| match ours.invoke_with_args(args_of(unit, &dates)).unwrap() {
            ColumnarValue::Array(a) => a
                .as_any()
                .downcast_ref::<Date32Array>()
                .unwrap()
                .iter()
                .map(|d| {
                    d.map_or("NULL".into(), |d| (NaiveDate::default() + chrono::TimeDelta::days(d.into())).to_string())
                })
                .collect::<Vec<_>>()
                .join(" "),
            other => panic!("{other:?}"),
        };
        assert_eq!(text("day"), "2024-02-29 NULL 0001-01-01 9999-12-31 1900-03-01 1969-12-31");
        // Weeks start on Monday: 2024-02-26, 0001-01-01 (a Monday), ...
        assert_eq!(text("WEEK"), "2024-02-26 NULL 0001-01-01 9999-12-27 1900-02-26 1969-12-29");
        assert_eq!(text("month"), "2024-02-01 NULL 0001-01-01 9999-12-01 1900-03-01 1969-12-01");
        assert_eq!(text("quarter"), "2024-01-01 NULL 0001-01-01 9999-10-01 1900-01-01 1969-10-01");
        assert_eq!(text("year"), "2024-01-01 NULL 0001-01-01 9999-01-01 1900-01-01 1969-01-01");
        assert!(ours.invoke_with_args(args_of("hour", &dates)).is_err(), "a date has no hours");
        // A scalar stays a scalar.
        let mut args = args_of("month", &dates);
        args.args[1] = ColumnarValue::Scalar(ScalarValue::Date32(Some(day("2024-05-17"))));
        match ours.invoke_with_args(args).unwrap() {
            ColumnarValue::Scalar(ScalarValue::Date32(Some(d))) => assert_eq!(d, day("2024-05-01")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn short_strings_go_to_keys_and_back_whole() {
        use arrow::array::{AsArray, StringViewArray};

        use super::{InlineKey, InlineString};

        let strings: ArrayRef = Arc::new(StringViewArray::from(vec![
            Some("PJM"),
            None,
            Some(""),
            Some("twelve bytes"),
            Some("PJM"),
            Some("PJ"),
            Some("東京"),
        ]));
        let args = |a: &ArrayRef, to: DataType| ScalarFunctionArgs {
            args: vec![ColumnarValue::Array(Arc::clone(a))],
            arg_fields: vec![Arc::new(Field::new("a", a.data_type().clone(), true))],
            number_rows: a.len(),
            return_field: Arc::new(Field::new("r", to, true)),
            config_options: Arc::new(ConfigOptions::default()),
        };
        let (key, string) = (InlineKey::udf(), InlineString::udf());
        let keys = key.invoke_with_args(args(&strings, super::INLINE_KEY)).unwrap().to_array(strings.len()).unwrap();
        let k = keys.as_primitive::<arrow::datatypes::Decimal128Type>();
        // Equal strings, equal keys; a prefix or the empty string differ.
        assert_eq!(k.value(0), k.value(4));
        assert_ne!(k.value(0), k.value(5));
        assert_ne!(k.value(2), k.value(5));
        assert!(k.is_null(1));
        let back = string.invoke_with_args(args(&keys, DataType::Utf8View)).unwrap().to_array(keys.len()).unwrap();
        assert_eq!(back.as_string_view(), strings.as_string_view());
        // A slice of a column (as a time range cuts one) keeps its own rows.
        let part = strings.slice(3, 3);
        let keys = key.invoke_with_args(args(&part, super::INLINE_KEY)).unwrap().to_array(part.len()).unwrap();
        let back = string.invoke_with_args(args(&keys, DataType::Utf8View)).unwrap().to_array(keys.len()).unwrap();
        assert_eq!(back.as_string_view(), part.as_string_view());
        // A column with a longer string is never keyed: the call fails.
        let long: ArrayRef = Arc::new(StringViewArray::from(vec!["thirteen byte"]));
        assert!(key.invoke_with_args(args(&long, super::INLINE_KEY)).is_err());
    }
}
