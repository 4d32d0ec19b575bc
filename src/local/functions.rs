//! Trino's functions and comparison rules where DataFusion's differ, in the
//! manner of the `datafusion-spark` crate: registered into the local
//! engine's session, and used by the rewrites of [`super::rewrite`].

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, Float64Array};
use arrow::compute::kernels::temporal::{DatePart, date_part};
use arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
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
    out
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
