//! The allowlist: which DataFusion plans give exactly Trino's answer, and
//! the Trino type of each result column.
//!
//! A plan is walked before DataFusion's own rewrites, node by node and
//! expression by expression. Anything not listed here, or listed only for
//! some types, sends the statement to Trino, with the first construct that
//! did as the reason. Each entry is here because the differential suite
//! (`tests/differential/`) shows DataFusion and Trino agree on it; the
//! comments say what was excluded and why.

use arrow::datatypes::DataType;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::expr::{AggregateFunction, Alias, Cast, InList, Like, ScalarFunction};
use datafusion::logical_expr::{Between, BinaryExpr, Case, Expr, LogicalPlan, Operator, SortExpr};

use crate::trino::TrinoType;
use crate::trino::types::TYPE_NAME_KEY;

pub use crate::router::Refusal;

type Checked<T> = Result<T, Refusal>;

/// Checks every node of `plan`; returns the Trino types of its output.
pub fn plan(node: &LogicalPlan) -> Checked<Vec<TrinoType>> {
    let types = node_types(node)?;
    // One type per column: an aggregate grouped twice by one expression
    // has fewer columns than expressions.
    if types.len() != node.schema().fields().len() {
        return Err(Refusal::new("plan", "an output column the check could not type"));
    }
    Ok(types)
}

fn node_types(node: &LogicalPlan) -> Checked<Vec<TrinoType>> {
    match node {
        LogicalPlan::TableScan(scan) => {
            if !scan.filters.is_empty() || scan.fetch.is_some() {
                return Err(Refusal::new("relation", "a scan with pushed-down work"));
            }
            node.schema().fields().iter().map(|f| column_type(f)).collect()
        }
        LogicalPlan::Projection(p) => {
            let types = plan(&p.input)?;
            let scope = Scope { schema: p.input.schema(), types: &types };
            p.expr.iter().map(|e| scope.check(e).and_then(|()| scope.trino_type(e))).collect()
        }
        LogicalPlan::Filter(f) => {
            let types = plan(&f.input)?;
            Scope { schema: f.input.schema(), types: &types }.check(&f.predicate)?;
            Ok(types)
        }
        LogicalPlan::Aggregate(a) => {
            let types = plan(&a.input)?;
            let scope = Scope { schema: a.input.schema(), types: &types };
            a.group_expr
                .iter()
                .chain(&a.aggr_expr)
                .enumerate()
                .map(|(i, e)| match e {
                    Expr::GroupingSet(_) => Err(Refusal::new("syntax", "GROUPING SETS, CUBE or ROLLUP")),
                    e if i < a.group_expr.len() && !comparable(&scope.type_of(e)?) => {
                        Err(Refusal::new("type", "grouping on a double (NaN and -0.0 group differently)"))
                    }
                    e => scope.check(e).and_then(|()| scope.trino_type(e)),
                })
                .collect()
        }
        LogicalPlan::Sort(s) => {
            let types = plan(&s.input)?;
            let scope = Scope { schema: s.input.schema(), types: &types };
            s.expr.iter().try_for_each(|SortExpr { expr: e, .. }| scope.check(e))?;
            Ok(types)
        }
        LogicalPlan::Limit(l) => {
            for e in [&l.skip, &l.fetch].into_iter().flatten() {
                if !matches!(e.as_ref(), Expr::Literal(..)) {
                    return Err(Refusal::new("syntax", "a LIMIT or OFFSET that is not a number"));
                }
            }
            // Trino refuses `ORDER BY ... LIMIT n` past 2^31 - 1.
            let huge = |v: &ScalarValue| matches!(v, ScalarValue::Int64(Some(n)) if *n > i64::from(i32::MAX));
            if let Some(fetch) = &l.fetch
                && matches!(fetch.as_ref(), Expr::Literal(v, _) if huge(v))
            {
                return Err(Refusal::new("syntax", "a LIMIT past 2147483647"));
            }
            plan(&l.input)
        }
        LogicalPlan::SubqueryAlias(a) => plan(&a.input),
        LogicalPlan::EmptyRelation(_) => Ok(Vec::new()),
        LogicalPlan::Join(j) => {
            use datafusion::common::{JoinType, NullEquality};
            if j.null_aware
                || j.null_equality != NullEquality::NullEqualsNothing
                || !matches!(j.join_type, JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full)
            {
                return Err(Refusal::new("relation", format!("a {} join", j.join_type)));
            }
            let (left, right) = (plan(&j.left)?, plan(&j.right)?);
            let (l, r) =
                (Scope { schema: j.left.schema(), types: &left }, Scope { schema: j.right.schema(), types: &right });
            for (a, b) in &j.on {
                l.check(a)?;
                r.check(b)?;
                let (ta, tb) = (l.type_of(a)?, r.type_of(b)?);
                // A double key matches NaN to NaN and -0.0 to 0.0 differently.
                if !comparable(&ta) || !compatible(&ta, &tb) {
                    return Err(Refusal::new("type", format!("a join of {ta} with {tb}")));
                }
            }
            let types: Vec<TrinoType> = left.into_iter().chain(right).collect();
            if let Some(f) = &j.filter {
                Scope { schema: &j.schema, types: &types }.check(f)?;
            }
            Ok(types)
        }
        LogicalPlan::Window(w) => {
            let mut types = plan(&w.input)?;
            let scope = Scope { schema: w.input.schema(), types: &types };
            let added = w
                .window_expr
                .iter()
                .map(|e| scope.check(e).and_then(|()| scope.trino_type(e)))
                .collect::<Checked<Vec<_>>>()?;
            types.extend(added);
            Ok(types)
        }
        LogicalPlan::Distinct(datafusion::logical_expr::Distinct::All(i)) => {
            if i.schema().fields().iter().any(|f| !comparable(f.data_type())) {
                return Err(Refusal::new("type", "DISTINCT on a double (NaN and -0.0 group differently)"));
            }
            plan(i)
        }
        other => Err(Refusal::new("relation", other.display().to_string())),
    }
}

/// The columns expressions of a node see: its input's schema, and their
/// Trino types by position.
struct Scope<'a> {
    schema: &'a DFSchema,
    types: &'a [TrinoType],
}

/// Whether values of `ty` compare and group alike in both engines, as
/// they are. Doubles do not (Arrow orders NaN above everything and equal to
/// itself, and `-0.0` below `0.0`; Trino follows IEEE 754): comparisons and
/// sorts of doubles are rewritten ([`super::rewrite`]); grouping on them,
/// `IN` lists, `min` and `max` of them are not answered here.
fn comparable(ty: &DataType) -> bool {
    !matches!(ty, DataType::Float16 | DataType::Float32 | DataType::Float64)
}

fn is_double(ty: &DataType) -> bool {
    matches!(ty, DataType::Float64)
}

fn is_decimal(ty: &DataType) -> bool {
    matches!(ty, DataType::Decimal128(..))
}

/// The kinds of values Trino compares with each other without an error.
/// DataFusion also casts text to dates, times and numbers, which Trino
/// refuses; and compares dates with timestamps in nanoseconds, which cannot
/// hold every date.
fn family(ty: &DataType) -> Option<&'static str> {
    use DataType::*;
    Some(match ty {
        Null => "null",
        Boolean => "boolean",
        Int8 | Int16 | Int32 | Int64 | Decimal128(..) | Float64 => "number",
        Utf8 | Utf8View | LargeUtf8 => "text",
        Date32 => "date",
        Timestamp(_, None) => "timestamp",
        Timestamp(_, Some(_)) => "timestamp with time zone",
        _ => return None,
    })
}

/// Whether `a` and `b` compare alike in both engines (doubles after the
/// rewrite).
fn compatible(a: &DataType, b: &DataType) -> bool {
    match (family(a), family(b)) {
        (Some("null"), Some(_)) | (Some(_), Some("null")) => true,
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

impl Scope<'_> {
    fn type_of(&self, e: &Expr) -> Checked<DataType> {
        use datafusion::logical_expr::ExprSchemable;
        e.get_type(self.schema).map_err(|err| Refusal::new("type", err.to_string()))
    }

    /// Whether `e` is on the allowlist.
    fn check(&self, e: &Expr) -> Checked<()> {
        let refuse = |kind, what: &str| Err(Refusal::new(kind, what.to_string()));
        match e {
            Expr::Column(_) => Ok(()),
            Expr::Alias(Alias { expr: inner, .. }) => self.check(inner),
            Expr::Literal(v, _) => match v {
                // DataFusion reads `1.5` as a decimal (as Trino does) and
                // `1e3` as a double; both are fine as values.
                ScalarValue::Null
                | ScalarValue::Boolean(_)
                | ScalarValue::Int8(_)
                | ScalarValue::Int16(_)
                | ScalarValue::Int32(_)
                | ScalarValue::Int64(_)
                | ScalarValue::Float64(_)
                | ScalarValue::Decimal128(..)
                | ScalarValue::Utf8(_)
                | ScalarValue::Utf8View(_)
                | ScalarValue::Date32(_)
                | ScalarValue::TimestampSecond(..)
                | ScalarValue::TimestampMillisecond(..)
                | ScalarValue::TimestampMicrosecond(..)
                | ScalarValue::TimestampNanosecond(..) => Ok(()),
                other => refuse("literal", &format!("a literal of type {}", other.data_type())),
            },
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                self.check(left)?;
                self.check(right)?;
                let (l, r) = (self.type_of(left)?, self.type_of(right)?);
                match op {
                    Operator::And | Operator::Or => Ok(()),
                    Operator::Eq | Operator::NotEq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq => {
                        if compatible(&l, &r) {
                            Ok(())
                        } else {
                            refuse("type", &format!("a comparison of {l} with {r}"))
                        }
                    }
                    // Double arithmetic is IEEE 754 in both. Integer `+ - *`
                    // are rewritten to fail on overflow ([`super::rewrite`]);
                    // `/` and `%` fail on zero in both, and truncate alike.
                    Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Divide | Operator::Modulo
                        if (is_double(&l) || l.is_integer()) && (is_double(&r) || r.is_integer()) =>
                    {
                        Ok(())
                    }
                    // Beside a double, both engines turn a decimal into a
                    // double first (the nearest one, or within an ulp of it
                    // past 2^53 units) and do IEEE arithmetic.
                    Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Divide | Operator::Modulo
                        if (is_double(&l) && is_decimal(&r)) || (is_decimal(&l) && is_double(&r)) =>
                    {
                        Ok(())
                    }
                    op => refuse("operator", &format!("{op} on {l} and {r}")),
                }
            }
            Expr::Not(inner) | Expr::IsNull(inner) | Expr::IsNotNull(inner) => self.check(inner),
            Expr::Between(Between { expr: value, low, high, .. }) => {
                let ty = self.type_of(value)?;
                for part in [value, low, high] {
                    self.check(part)?;
                    if !compatible(&ty, &self.type_of(part)?) {
                        return refuse("type", "BETWEEN on values of different kinds");
                    }
                }
                Ok(())
            }
            Expr::InList(InList { expr: value, list, .. }) => {
                let ty = self.type_of(value)?;
                for part in std::iter::once(value.as_ref()).chain(list) {
                    self.check(part)?;
                    let t = self.type_of(part)?;
                    if !comparable(&t) || !compatible(&ty, &t) {
                        return refuse("type", "IN on doubles or on values of different kinds");
                    }
                    // `x NOT IN (1, NULL)`: Trino does not give SQL's NULL.
                    if matches!(part, Expr::Literal(v, _) if v.is_null()) {
                        return refuse("syntax", "NULL in an IN list");
                    }
                }
                Ok(())
            }
            Expr::Like(Like { expr: value, pattern, escape_char, case_insensitive, .. }) => {
                // Arrow treats `\` as an escape; Trino has none unless ESCAPE.
                let plain = matches!(pattern.as_ref(), Expr::Literal(ScalarValue::Utf8(Some(p)) | ScalarValue::Utf8View(Some(p)), _) if !p.contains('\\'));
                if *case_insensitive || escape_char.is_some() || !plain {
                    return refuse("function", "LIKE with an escape, a backslash or a non-literal pattern");
                }
                self.check(value)
            }
            Expr::Case(Case { expr: operand, when_then_expr, else_expr }) => {
                for part in operand.iter().chain(else_expr.iter()) {
                    self.check(part)?;
                }
                for (when, then) in when_then_expr {
                    self.check(when)?;
                    self.check(then)?;
                }
                let operand = operand.as_deref().map(|op| self.type_of(op)).transpose()?;
                if operand.as_ref().is_some_and(|t| !comparable(t)) {
                    return refuse("type", "CASE on a floating-point value");
                }
                for (when, _) in when_then_expr {
                    let t = self.type_of(when)?;
                    // Trino fails where these do not hold; DataFusion coerces.
                    let fits = match &operand {
                        Some(op) => comparable(&t) && compatible(op, &t),
                        None => matches!(t, DataType::Boolean | DataType::Null),
                    };
                    if !fits {
                        return refuse("type", &format!("a CASE WHEN of {t} (Trino compares it otherwise or fails)"));
                    }
                }
                self.trino_type(e).map(drop)
            }
            Expr::Cast(Cast { expr: inner, field }) => {
                self.check(inner)?;
                let from = self.type_of(inner)?;
                let to = field.data_type();
                // `DATE '...'`: a typed literal; `CAST('...' AS TIMESTAMP)`
                // (Superset's time filters) when both engines read the text
                // to the same millisecond.
                let typed_literal = match (inner.as_ref(), to) {
                    (Expr::Literal(ScalarValue::Utf8(Some(_)), _), DataType::Date32) => true,
                    (
                        Expr::Literal(ScalarValue::Utf8(Some(text)), _),
                        DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None),
                    ) => plain_timestamp(text, 3),
                    _ => false,
                };
                if typed_literal || widening(&from, to) {
                    Ok(())
                } else {
                    refuse("cast", &format!("a cast from {from} to {to}"))
                }
            }
            Expr::ScalarFunction(ScalarFunction { func, args }) => {
                args.iter().try_for_each(|a| self.check(a))?;
                let name = func.name();
                let types = args.iter().map(|a| self.type_of(a)).collect::<Checked<Vec<_>>>()?;
                // `lower` and `upper` are not here: Trino maps case code
                // point by code point (`upper('ß')` is `ß`), Rust by strings.
                match (name, types.as_slice()) {
                    ("date_trunc", [_, DataType::Timestamp(_, None)]) if unit(&args[0]).is_some() => Ok(()),
                    // Trino has no time of day in a date: `hour` and finer fail there.
                    ("date_trunc", [_, DataType::Date32])
                        if unit(&args[0]).is_some_and(|u| ["day", "week", "month", "quarter", "year"].contains(&u)) =>
                    {
                        Ok(())
                    }
                    (name, [DataType::Date32 | DataType::Timestamp(_, None)])
                        if super::functions::extract_names().any(|n| n == name) =>
                    {
                        Ok(())
                    }
                    // nullif is rewritten to a CASE of `=` (Trino's equality).
                    ("nullif", [a, b]) if compatible(a, b) => Ok(()),
                    ("coalesce", _) => self.trino_type(e).map(drop),
                    _ => refuse("function", name),
                }
            }
            Expr::AggregateFunction(AggregateFunction { func, params }) => {
                if !params.order_by.is_empty() {
                    return refuse("function", &format!("{} with ORDER BY", func.name()));
                }
                params.args.iter().chain(params.filter.as_deref()).try_for_each(|a| self.check(a))?;
                let types = params.args.iter().map(|a| self.type_of(a)).collect::<Checked<Vec<_>>>()?;
                // Integer sums are rewritten to fail on overflow as Trino's do.
                match (func.name(), types.as_slice()) {
                    // Trino counts `0.0` and `-0.0` (and NaNs) as one value.
                    ("count", [t]) if params.distinct && !comparable(t) => {
                        refuse("function", "a count of DISTINCT doubles")
                    }
                    ("count", _) => Ok(()),
                    // Trino's `min` and `max` of doubles skip NaN: rewritten.
                    ("min" | "max", [t]) if comparable(t) || is_double(t) => Ok(()),
                    ("sum" | "avg", [t]) if params.distinct && !comparable(t) => {
                        refuse("function", "an aggregate of DISTINCT doubles")
                    }
                    (
                        "sum" | "avg",
                        [
                            DataType::Float64
                            | DataType::Int8
                            | DataType::Int16
                            | DataType::Int32
                            | DataType::Int64
                            | DataType::Decimal128(..),
                        ],
                    ) => Ok(()),
                    (name, _) => refuse("function", &format!("{name}({})", join(&types))),
                }
            }
            Expr::WindowFunction(w) => {
                use datafusion::logical_expr::{WindowFrameBound, WindowFrameUnits, WindowFunctionDefinition};
                let p = &w.params;
                if p.filter.is_some() || p.null_treatment.is_some() || p.distinct {
                    return refuse("function", "a window function with FILTER, IGNORE NULLS or DISTINCT");
                }
                for part in p.args.iter().chain(&p.partition_by).chain(p.order_by.iter().map(|s| &s.expr)) {
                    self.check(part)?;
                }
                // Doubles order and group differently; window sorts are not rewritten.
                for part in p.partition_by.iter().chain(p.order_by.iter().map(|s| &s.expr)) {
                    if !comparable(&self.type_of(part)?) {
                        return refuse("type", "a window partitioned or ordered by a double");
                    }
                }
                let offset = |b: &WindowFrameBound| match b {
                    WindowFrameBound::Preceding(v) | WindowFrameBound::Following(v) => !v.is_null(),
                    WindowFrameBound::CurrentRow => false,
                };
                let frame = &p.window_frame;
                if frame.units == WindowFrameUnits::Groups
                    || (frame.units == WindowFrameUnits::Range
                        && (offset(&frame.start_bound) || offset(&frame.end_bound)))
                {
                    return refuse("function", "a GROUPS frame or a RANGE frame with an offset");
                }
                let types = p.args.iter().map(|a| self.type_of(a)).collect::<Checked<Vec<_>>>()?;
                match (&w.fun, types.as_slice()) {
                    // Trino fails on a negative or NULL offset, and types the
                    // answer by the default too.
                    (WindowFunctionDefinition::WindowUDF(f), [value, rest @ ..])
                        if matches!(f.name(), "lag" | "lead") =>
                    {
                        let offset = match p.args.get(1) {
                            None => true,
                            Some(Expr::Literal(v, _)) => v
                                .cast_to(&DataType::Int64)
                                .is_ok_and(|v| matches!(v, ScalarValue::Int64(Some(n)) if n >= 0)),
                            Some(_) => false,
                        };
                        // A default of the value's type, or an integer literal
                        // Trino too turns into it (`lag(x, 1, 0)`).
                        let default = match (p.args.get(2), rest.get(1)) {
                            (None, _) => true,
                            (_, Some(t)) if t == value => true,
                            (Some(Expr::Literal(v, _)), _) if v.data_type().is_integer() => match value {
                                DataType::Int64 | DataType::Float64 => true,
                                DataType::Int32 => v.cast_to(&DataType::Int32).is_ok(),
                                _ => false,
                            },
                            _ => false,
                        };
                        if !offset || !default {
                            return refuse("function", &format!("{}({}) OVER (...)", f.name(), join(&types)));
                        }
                        Ok(())
                    }
                    (WindowFunctionDefinition::WindowUDF(f), _)
                        if matches!(
                            f.name(),
                            "row_number"
                                | "rank"
                                | "dense_rank"
                                | "ntile"
                                | "percent_rank"
                                | "cume_dist"
                                | "lag"
                                | "lead"
                                | "first_value"
                                | "last_value"
                        ) =>
                    {
                        Ok(())
                    }
                    (WindowFunctionDefinition::AggregateUDF(f), ts) => match (f.name(), ts) {
                        ("count", _) => Ok(()),
                        ("min" | "max", [t]) if comparable(t) => Ok(()),
                        // Integer sums over windows are not made to fail on
                        // overflow, nor sums of decimals wide enough to wrap.
                        ("sum" | "avg", [DataType::Float64]) | ("avg", [DataType::Decimal128(..)]) => Ok(()),
                        ("sum", [DataType::Decimal128(p, _)]) if *p <= 28 => Ok(()),
                        ("avg", [DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64]) => Ok(()),
                        (name, _) => refuse("function", &format!("{name}({}) OVER (...)", join(&types))),
                    },
                    (f, _) => refuse("function", &format!("{} OVER (...)", f.name())),
                }
            }
            other => refuse("expression", other.variant_name()),
        }
    }
}

fn join(types: &[DataType]) -> String {
    types.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

fn is_text(ty: &DataType) -> bool {
    matches!(ty, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8)
}

/// A `date_trunc` unit both engines read the same way (weeks start on
/// Monday in both).
fn unit(e: &Expr) -> Option<&str> {
    match e {
        Expr::Literal(ScalarValue::Utf8(Some(u)) | ScalarValue::Utf8View(Some(u)), _) => {
            ["second", "minute", "hour", "day", "week", "month", "quarter", "year"]
                .into_iter()
                .find(|k| k.eq_ignore_ascii_case(u))
        }
        _ => None,
    }
}

/// `YYYY-MM-DD[ HH:MM:SS[.fff...]]` with nothing after the first
/// `fraction` digits but zeros, of a day of the calendar and a time of day:
/// text Trino and Arrow's cast read to the same value (no rounding, no
/// zone, no other spelling such as a `T`).
pub(super) fn plain_timestamp(text: &str, fraction: usize) -> bool {
    plain_spelling(text, fraction) && valid_timestamp(text)
}

fn plain_spelling(text: &str, fraction: usize) -> bool {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|s| s.iter().all(u8::is_ascii_digit));
    let date = b.len() >= 10 && digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10);
    if !date || b.len() == 10 {
        return date;
    }
    let time = b.len() >= 19
        && b[10] == b' '
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !time || b.len() == 19 {
        return time;
    }
    b[19] == b'.' && b.len() > 20 && digits(20..b.len()) && b[20..].iter().skip(fraction).all(|&c| c == b'0')
}

/// Whether `text`, read by [`plain_timestamp`], names a day of the calendar
/// and a time of day (Arrow also reads `23:59:60`; Trino refuses it).
fn valid_timestamp(text: &str) -> bool {
    let number = |r: std::ops::Range<usize>| text.get(r).and_then(|s| s.parse::<u32>().ok());
    let day = match (number(0..4), number(5..7), number(8..10)) {
        (Some(y), Some(m), Some(d)) => chrono::NaiveDate::from_ymd_opt(y as i32, m, d).is_some(),
        _ => false,
    };
    let time = match (number(11..13), number(14..16), number(17..19)) {
        (Some(h), Some(m), Some(s)) => h < 24 && m < 60 && s < 60,
        _ => text.len() == 10,
    };
    day && time
}

/// Casts that keep every value: to a wider integer, integers to double,
/// between string layouts.
fn widening(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    let rank = |t: &DataType| match t {
        Int8 => Some(1),
        Int16 => Some(2),
        Int32 => Some(3),
        Int64 => Some(4),
        _ => None,
    };
    match (from, to) {
        (a, b) if a == b => true,
        (a, b) if rank(a).is_some() && rank(b).is_some() => rank(a) <= rank(b),
        (Int8 | Int16 | Int32, Float64) | (Float32, Float64) => true,
        (a, b) => is_text(a) && is_text(b),
    }
}

/// A dataset column's Trino type, from the field metadata the Trino path
/// gave it.
fn column_type(f: &arrow::datatypes::Field) -> Checked<TrinoType> {
    let name = f
        .metadata()
        .get(TYPE_NAME_KEY)
        .ok_or_else(|| Refusal::new("type", format!("column {} has no Trino type", f.name())))?;
    TrinoType::parse(name).map_err(|e| Refusal::new("type", e))
}

impl Scope<'_> {
    /// The Trino type of `e`: what Trino would report for it.
    fn trino_type(&self, e: &Expr) -> Checked<TrinoType> {
        let unknown = |what: &str| Err(Refusal::new("type", format!("the Trino type of {what}")));
        match e {
            Expr::Alias(Alias { expr: inner, .. }) => self.trino_type(inner),
            Expr::Column(c) => {
                let index = self.schema.index_of_column(c).map_err(|err| Refusal::new("type", err.to_string()))?;
                self.types.get(index).cloned().ok_or_else(|| Refusal::new("type", format!("column {c}")))
            }
            Expr::Literal(v, _) => match v {
                ScalarValue::Boolean(_) => Ok(TrinoType::Boolean),
                // Trino types an integer literal `integer` when it fits.
                ScalarValue::Int64(Some(n)) if i32::try_from(*n).is_ok() => Ok(TrinoType::Integer),
                ScalarValue::Int64(_) => Ok(TrinoType::BigInt),
                ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => {
                    Ok(TrinoType::Varchar(Some(s.chars().count() as u32)))
                }
                ScalarValue::Decimal128(_, p, s) => Ok(TrinoType::Decimal { precision: *p, scale: *s }),
                ScalarValue::Float64(_) => Ok(TrinoType::Double),
                ScalarValue::Date32(_) => Ok(TrinoType::Date),
                _ => unknown("this literal"),
            },
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
                Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Divide | Operator::Modulo => {
                    // The wider of the two, as Trino coerces them.
                    let rank = |t: &TrinoType| match t {
                        TrinoType::TinyInt => 1,
                        TrinoType::SmallInt => 2,
                        TrinoType::Integer => 3,
                        TrinoType::BigInt => 4,
                        _ => 5,
                    };
                    let (l, r) = (self.trino_type(left)?, self.trino_type(right)?);
                    match (&l, &r) {
                        (TrinoType::Double, _) | (_, TrinoType::Double) => Ok(TrinoType::Double),
                        _ if rank(&l) < 5 && rank(&r) < 5 => Ok(if rank(&l) >= rank(&r) { l } else { r }),
                        _ => unknown("arithmetic of these types"),
                    }
                }
                _ => Ok(TrinoType::Boolean),
            },
            Expr::Not(_)
            | Expr::IsNull(_)
            | Expr::IsNotNull(_)
            | Expr::Between(_)
            | Expr::InList(_)
            | Expr::Like(_) => Ok(TrinoType::Boolean),
            Expr::Cast(Cast { field, .. }) => match field.data_type() {
                DataType::Date32 => Ok(TrinoType::Date),
                DataType::Int64 => Ok(TrinoType::BigInt),
                DataType::Int32 => Ok(TrinoType::Integer),
                DataType::Float64 => Ok(TrinoType::Double),
                // `CAST(x AS TIMESTAMP)`, read as Trino's `timestamp(3)`.
                DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, None) => Ok(TrinoType::Timestamp(3)),
                _ => unknown("this cast"),
            },
            Expr::Case(Case { when_then_expr, else_expr, .. }) => {
                let mut types = when_then_expr
                    .iter()
                    .map(|(_, then)| then.as_ref())
                    .chain(else_expr.as_deref())
                    .filter(|e| !matches!(e, Expr::Literal(ScalarValue::Null, _)))
                    .map(|e| self.trino_type(e));
                let first = match types.next() {
                    Some(t) => t?,
                    None => return unknown("a CASE of NULLs"),
                };
                let mut out = first;
                for t in types {
                    out = match (out, t?) {
                        (a, b) if a == b => a,
                        // Trino's common type of varchar(m) and varchar(n).
                        (TrinoType::Varchar(Some(m)), TrinoType::Varchar(Some(n))) => {
                            TrinoType::Varchar(Some(m.max(n)))
                        }
                        (TrinoType::Varchar(_), TrinoType::Varchar(_)) => TrinoType::Varchar(None),
                        _ => return unknown("a CASE whose branches differ in type"),
                    };
                }
                Ok(out)
            }
            Expr::ScalarFunction(ScalarFunction { func, args }) => match func.name() {
                "date_trunc" => self.trino_type(&args[args.len() - 1]),
                "coalesce" => {
                    let mut types = args
                        .iter()
                        .filter(|a| !matches!(a, Expr::Literal(v, _) if v.is_null()))
                        .map(|a| self.trino_type(a));
                    let first = types.next().unwrap_or_else(|| unknown("coalesce of NULLs"))?;
                    for t in types {
                        if t? != first {
                            return unknown("coalesce of different types");
                        }
                    }
                    Ok(first)
                }
                "nullif" => self.trino_type(&args[0]),
                name if super::functions::extract_names().any(|n| n == name) => Ok(TrinoType::BigInt),
                name => unknown(name),
            },
            Expr::WindowFunction(w) => {
                use datafusion::logical_expr::WindowFunctionDefinition;
                match &w.fun {
                    WindowFunctionDefinition::WindowUDF(f) => match f.name() {
                        "row_number" | "rank" | "dense_rank" | "ntile" => Ok(TrinoType::BigInt),
                        "percent_rank" | "cume_dist" => Ok(TrinoType::Double),
                        _ => self.trino_type(&w.params.args[0]),
                    },
                    WindowFunctionDefinition::AggregateUDF(f) => self.aggregate_type(f.name(), &w.params.args),
                }
            }
            Expr::AggregateFunction(AggregateFunction { func, params }) => {
                self.aggregate_type(func.name(), &params.args)
            }
            other => unknown(other.variant_name()),
        }
    }

    /// The Trino type of aggregate `name` of `args`.
    fn aggregate_type(&self, name: &str, args: &[Expr]) -> Checked<TrinoType> {
        use TrinoType::{BigInt, Decimal, Double, Integer, SmallInt, TinyInt};
        let unknown = || Err(Refusal::new("type", format!("the Trino type of {name}")));
        match name {
            "count" => Ok(BigInt),
            "min" | "max" => self.trino_type(&args[0]),
            "sum" | "avg" => match (name, self.trino_type(&args[0])?) {
                (_, Double) | ("avg", TinyInt | SmallInt | Integer | BigInt) => Ok(Double),
                ("sum", TinyInt | SmallInt | Integer | BigInt) => Ok(BigInt),
                ("sum", Decimal { scale, .. }) => Ok(Decimal { precision: 38, scale }),
                ("avg", d @ Decimal { .. }) => Ok(d),
                _ => unknown(),
            },
            _ => unknown(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::plain_timestamp;

    #[test]
    fn timestamp_texts_both_engines_read_alike() {
        for ok in [
            "2025-05-28",
            "2025-05-28 00:00:00",
            "2025-05-28 10:11:12.345",
            "2025-05-28 10:11:12.345000",
            "0001-01-01 00:00:00.1",
            "2024-02-29 23:59:59",
            "9999-12-31",
        ] {
            assert!(plain_timestamp(ok, 3), "{ok}");
        }
        // Rounding past milliseconds, zones, other spellings, partial times.
        for no in [
            "2025-05-28 10:11:12.3456",
            "2025-05-28T10:11:12",
            "2025-05-28 10:11:12 UTC",
            "2025-05-28 10:11",
            "25-05-28",
            "2025-05-28 10:11:12.",
            "+2025-05-28",
            "",
            // Not a day of the calendar or a time of day.
            "2024-02-30",
            "2023-02-29 00:00:00",
            "2024-13-01",
            "2024-01-01 23:59:60",
            "2024-01-01 24:00:00",
            "2024-01-01 12:60:00",
        ] {
            assert!(!plain_timestamp(no, 3), "{no}");
        }
    }
}
