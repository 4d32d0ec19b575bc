//! Rewrites of a checked plan that give DataFusion Trino's semantics where
//! its own differ, without changing the plan's output schema.
//!
//! - **Comparisons of doubles.** Arrow compares floats by their total
//!   order (NaN above everything and equal to itself, `-0.0 < 0.0`); Trino
//!   by IEEE 754 (NaN compares false, `-0.0 = 0.0`). `a < b` becomes
//!   `key(a) < key(b) AND NOT isnan(a) AND NOT isnan(b)`, `a <> b` becomes
//!   `key(a) <> key(b) OR isnan(a) OR isnan(b)`.
//! - **Sorting doubles.** Trino places NaN next to the NULLs and sorts
//!   `-0.0` with `0.0`: the sort key is [`super::functions`]'s double key.
//! - **`min` and `max` of doubles** skip NaN in Trino.
//! - **Integer arithmetic** fails on overflow in Trino; DataFusion wraps.
//! - **Integer sums**, likewise, and sums of wide decimals (DataFusion wraps).
//! - **`nullif`** uses Trino's equality.
//!
//! And two for speed: `year(x) = n` in a filter as a range of `x`, and
//! short strings grouped by as 128-bit keys.

use std::ops::Not;
use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result};
use datafusion::execution::FunctionRegistry;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator, SortExpr};

use super::functions::{DOUBLE_KEY_NULLS_FIRST, DOUBLE_KEY_NULLS_LAST};

/// `plan` with Trino's comparison and ordering of doubles, `nullif` as
/// Trino's equality decides it, and integer `+ - *` that fail on overflow.
pub fn expressions(plan: LogicalPlan, state: &SessionState) -> Result<LogicalPlan> {
    use datafusion::logical_expr::expr::ScalarFunction;
    use datafusion::logical_expr::expr_rewriter::NamePreserver;
    let key = |name: &str, e: Expr| call(state, name, e);
    let isnan = |e: Expr| call(state, "isnan", e);
    plan.transform_up_with_subqueries(|node| {
        let inputs = node.inputs();
        let schema: Arc<DFSchema> = match inputs.as_slice() {
            [input] => Arc::clone(input.schema()),
            _ => Arc::clone(node.schema()),
        };
        let type_of = |e: &Expr| e.get_type(&schema).ok();
        let is_double = |e: &Expr| type_of(e) == Some(DataType::Float64);
        let node = match node {
            LogicalPlan::Sort(mut sort) => {
                let mut changed = false;
                for s in &mut sort.expr {
                    if is_double(&s.expr) {
                        let name = if s.nulls_first { DOUBLE_KEY_NULLS_FIRST } else { DOUBLE_KEY_NULLS_LAST };
                        *s = SortExpr { expr: key(name, s.expr.clone())?, ..s.clone() };
                        changed = true;
                    }
                }
                let sort = LogicalPlan::Sort(sort);
                if changed { Transformed::yes(sort) } else { Transformed::no(sort) }
            }
            other => Transformed::no(other),
        };
        let compare = |l: Expr, op: Operator, r: Expr| -> Result<Expr> {
            if !is_double(&l) && !is_double(&r) {
                return Ok(Expr::BinaryExpr(BinaryExpr::new(Box::new(l), op, Box::new(r))));
            }
            let (kl, kr) = (key(DOUBLE_KEY_NULLS_LAST, l.clone())?, key(DOUBLE_KEY_NULLS_LAST, r.clone())?);
            let compared = Expr::BinaryExpr(BinaryExpr::new(Box::new(kl), op, Box::new(kr)));
            Ok(if op == Operator::NotEq {
                compared.or(isnan(l)?).or(isnan(r)?)
            } else {
                compared.and(isnan(l)?.not()).and(isnan(r)?.not())
            })
        };
        node.transform_data(|node| {
            let names = NamePreserver::new(&node);
            node.map_expressions(|e| {
                let saved = names.save(&e);
                let e = e.transform_up(|e| match e {
                    Expr::BinaryExpr(BinaryExpr { left, op, right })
                        if matches!(
                            op,
                            Operator::Eq
                                | Operator::NotEq
                                | Operator::Lt
                                | Operator::LtEq
                                | Operator::Gt
                                | Operator::GtEq
                        ) && (is_double(&left) || is_double(&right)) =>
                    {
                        Ok(Transformed::yes(compare(*left, op, *right)?))
                    }
                    Expr::BinaryExpr(BinaryExpr { left, op, right })
                        if matches!(op, Operator::Plus | Operator::Minus | Operator::Multiply) =>
                    {
                        match (width(&left, &type_of(&left)), width(&right, &type_of(&right))) {
                            (Some(l), Some(r)) => Ok(Transformed::yes(checked(*left, op, *right, l.max(r)))),
                            _ => Ok(Transformed::no(Expr::BinaryExpr(BinaryExpr { left, op, right }))),
                        }
                    }
                    Expr::Between(Between { expr, negated, low, high })
                        if is_double(&expr) || is_double(&low) || is_double(&high) =>
                    {
                        let within =
                            compare(*expr.clone(), Operator::GtEq, *low)?.and(compare(*expr, Operator::LtEq, *high)?);
                        Ok(Transformed::yes(if negated { within.not() } else { within }))
                    }
                    Expr::ScalarFunction(ScalarFunction { func, args })
                        if func.name() == "nullif" && args.len() == 2 =>
                    {
                        let [a, b] = <[Expr; 2]>::try_from(args).expect("two arguments");
                        let equal = compare(a.clone(), Operator::Eq, b)?;
                        let case = datafusion::logical_expr::when(
                            equal,
                            Expr::Literal(datafusion::common::ScalarValue::Null, None),
                        )
                        .otherwise(a)?;
                        Ok(Transformed::yes(case))
                    }
                    e => Ok(Transformed::no(e)),
                })?;
                Ok(e.update_data(|e| saved.restore(e)))
            })
        })
    })
    .map(|t| t.data)
}

/// The session's function `name` applied to `arg`.
fn call(state: &SessionState, name: &str, arg: Expr) -> Result<Expr> {
    Ok(state.udf(name)?.call(vec![arg]))
}

/// Trino's width of an integer operand, in bits: its column type, and for
/// a literal the smallest of `integer` and `bigint` that holds it (Trino
/// types `2` as `integer`). `None` for other types.
fn width(e: &Expr, ty: &Option<DataType>) -> Option<u8> {
    if let Expr::Literal(datafusion::common::ScalarValue::Int64(Some(v)), _) = e {
        return Some(if i32::try_from(*v).is_ok() { 32 } else { 64 });
    }
    match ty.as_ref()? {
        DataType::Int8 => Some(8),
        DataType::Int16 => Some(16),
        DataType::Int32 => Some(32),
        DataType::Int64 => Some(64),
        _ => None,
    }
}

/// `l op r` computed exactly (as `decimal(38, 0)`, which holds any product
/// of two 64-bit values) and cast back to Trino's integer type of `bits`:
/// out of its range, the cast fails, as Trino's arithmetic does.
fn checked(l: Expr, op: Operator, r: Expr, bits: u8) -> Expr {
    use datafusion::logical_expr::cast;
    let exact = DataType::Decimal128(38, 0);
    let out = match bits {
        8 => DataType::Int8,
        16 => DataType::Int16,
        32 => DataType::Int32,
        _ => DataType::Int64,
    };
    let computed = Expr::BinaryExpr(BinaryExpr::new(Box::new(cast(l, exact.clone())), op, Box::new(cast(r, exact))));
    cast(computed, out)
}

/// `plan` with `min` and `max` of doubles as Trino computes them: NaN is
/// skipped unless there is nothing else. Each becomes `coalesce(max(x
/// without NaN), max(x))`, the two aggregates computed side by side and
/// combined in a projection above.
pub fn double_extremes(plan: LogicalPlan, state: &SessionState) -> Result<LogicalPlan> {
    use datafusion::common::Column;
    use datafusion::logical_expr::expr::AggregateFunction;
    use datafusion::logical_expr::{Aggregate, Projection, when};
    let isnan = |e: Expr| call(state, "isnan", e);
    let coalesce = state.udf("coalesce")?;
    plan.transform_up_with_subqueries(|node| {
        let LogicalPlan::Aggregate(agg) = node else { return Ok(Transformed::no(node)) };
        let schema = Arc::clone(agg.input.schema());
        let mut aggr = Vec::new();
        // Per output aggregate: the columns to combine, if it was split.
        let mut split: Vec<Option<(String, String)>> = Vec::new();
        for (i, e) in agg.aggr_expr.iter().enumerate() {
            match e {
                Expr::AggregateFunction(AggregateFunction { func, params })
                    if matches!(func.name(), "min" | "max")
                        && params.args.len() == 1
                        && params.args[0].get_type(&schema)? == DataType::Float64 =>
                {
                    let x = params.args[0].clone();
                    let no_nan =
                        when(isnan(x.clone())?, Expr::Literal(datafusion::common::ScalarValue::Float64(None), None))
                            .otherwise(x)?;
                    let mut skipping = params.clone();
                    skipping.args = vec![no_nan];
                    let (a, b) = (format!("__flightdeck_{i}_a"), format!("__flightdeck_{i}_b"));
                    aggr.push(
                        Expr::AggregateFunction(AggregateFunction { func: Arc::clone(func), params: skipping })
                            .alias(&a),
                    );
                    aggr.push(e.clone().alias(&b));
                    split.push(Some((a, b)));
                }
                e => {
                    aggr.push(e.clone());
                    split.push(None);
                }
            }
        }
        if split.iter().all(Option::is_none) {
            return Ok(Transformed::no(LogicalPlan::Aggregate(agg)));
        }
        let groups = agg.group_expr.len();
        let old = Arc::clone(&agg.schema);
        let inner =
            Arc::new(LogicalPlan::Aggregate(Aggregate::try_new(Arc::clone(&agg.input), agg.group_expr.clone(), aggr)?));
        // The old output, column by column: group columns as they are, each
        // aggregate by its name or combined from its two halves.
        let mut exprs = Vec::new();
        let mut at = groups;
        for (i, (qualifier, field)) in old.iter().enumerate() {
            let same = |at: usize| {
                let (q, f) = inner.schema().qualified_field(at);
                Expr::Column(Column::new(q.cloned(), f.name()))
            };
            let e = if i < groups {
                same(i)
            } else {
                match &split[i - groups] {
                    Some((a, b)) => {
                        at += 2;
                        coalesce.call(vec![Expr::Column(Column::from_name(a)), Expr::Column(Column::from_name(b))])
                    }
                    None => {
                        at += 1;
                        same(at - 1)
                    }
                }
            };
            exprs.push(e.alias_qualified(qualifier.cloned(), field.name()));
        }
        Ok(Transformed::yes(LogicalPlan::Projection(Projection::try_new(exprs, inner)?)))
    })
    .map(|t| t.data)
}

/// `plan` with integer sums that fail on overflow, as Trino's do: summed as
/// `decimal(38, 0)` (which cannot overflow on 64-bit values short of 10^19
/// rows) and cast back to `bigint` at the end, where a sum out of range
/// fails instead of wrapping. Trino fails when a running sum leaves the
/// range even if the total is back inside it; this fails only on the total.
///
/// Likewise sums of decimals of more than 28 digits, which DataFusion adds
/// in 128 bits, wrapping: summed in 256 bits and cast back to
/// `decimal(38, s)`, which fails for a total of more than 38 digits, as
/// Trino's `Decimal overflow` does.
pub fn exact_sums(plan: LogicalPlan) -> Result<LogicalPlan> {
    use datafusion::logical_expr::expr::AggregateFunction;
    use datafusion::logical_expr::{Aggregate, cast};
    plan.transform_up_with_subqueries(|node| {
        let LogicalPlan::Aggregate(agg) = node else { return Ok(Transformed::no(node)) };
        let schema = Arc::clone(agg.input.schema());
        let mut changed = false;
        let mut aggr = Vec::with_capacity(agg.aggr_expr.len());
        for e in &agg.aggr_expr {
            let replaced = match e {
                Expr::AggregateFunction(AggregateFunction { func, params })
                    if func.name() == "sum"
                        && params.args.len() == 1
                        && let Some(wide) = summed_as(&params.args[0].get_type(&schema)?) =>
                {
                    let mut params = params.clone();
                    params.args = vec![cast(params.args[0].clone(), wide)];
                    let sum = Expr::AggregateFunction(AggregateFunction { func: Arc::clone(func), params });
                    // Named as before, so the nodes above still find it.
                    Some(sum.alias(e.schema_name().to_string()))
                }
                _ => None,
            };
            changed |= replaced.is_some();
            aggr.push(replaced.unwrap_or_else(|| e.clone()));
        }
        if !changed {
            return Ok(Transformed::no(LogicalPlan::Aggregate(agg)));
        }
        let agg = Aggregate::try_new(Arc::clone(&agg.input), agg.group_expr.clone(), aggr)?;
        Ok(Transformed::yes(LogicalPlan::Aggregate(agg)))
    })
    .map(|t| t.data)
}

/// The type [`exact_sums`] adds values of type `t` in, if not their own.
fn summed_as(t: &DataType) -> Option<DataType> {
    match t {
        t if t.is_integer() => Some(DataType::Decimal128(38, 0)),
        // 10^28 fits 10^10 times in 128 bits: fewer digits cannot wrap.
        DataType::Decimal128(p, s) if *p > 28 => Some(DataType::Decimal256(76, *s)),
        _ => None,
    }
}

/// A sort by a dataset's time column descending, nulls last (as `ORDER BY
/// ts DESC` is in Trino), over only projections of the column as it is and
/// filters: the dataset is read newest first, which already is that order,
/// so DataFusion plans no sort and a limit stops at the newest slices.
pub fn newest_first(plan: LogicalPlan) -> Result<LogicalPlan> {
    plan.transform_down(|node| {
        let LogicalPlan::Sort(sort) = &node else { return Ok(Transformed::no(node)) };
        let [SortExpr { expr: Expr::Column(column), asc: false, nulls_first: false }] = sort.expr.as_slice() else {
            return Ok(Transformed::no(node));
        };
        match reversed(&sort.input, &column.name)? {
            Some(input) => {
                let mut sort = sort.clone();
                sort.input = Arc::new(input);
                Ok(Transformed::yes(LogicalPlan::Sort(sort)))
            }
            None => Ok(Transformed::no(node)),
        }
    })
    .map(|t| t.data)
}

/// `plan` with the dataset it reads read newest first, when it is a chain
/// of filters and projections passing `column` through down to a scan of
/// a dataset sorted by `column`; `None` otherwise.
fn reversed(plan: &LogicalPlan, column: &str) -> Result<Option<LogicalPlan>> {
    use datafusion::datasource::{provider_as_source, source_as_provider};
    use datafusion::logical_expr::TableScan;

    let input = match plan {
        LogicalPlan::Filter(f) => &f.input,
        LogicalPlan::SubqueryAlias(a) => &a.input,
        LogicalPlan::Projection(p) if p.expr.iter().any(|e| matches!(e, Expr::Column(c) if c.name == column)) => {
            &p.input
        }
        LogicalPlan::TableScan(scan) => {
            let provider = source_as_provider(&scan.source)?;
            let Some(table) = provider.downcast_ref::<crate::accel::DatasetTable>() else {
                return Ok(None);
            };
            if table.sorted_by() != Some(column) {
                return Ok(None);
            }
            let source = provider_as_source(Arc::new(table.newest_first()));
            return Ok(Some(LogicalPlan::TableScan(TableScan { source, ..scan.clone() })));
        }
        _ => return Ok(None),
    };
    let Some(input) = reversed(input, column)? else { return Ok(None) };
    plan.with_new_exprs(plan.expressions(), vec![input]).map(Some)
}

/// `plan` with each filter comparing `year(x)` of a `date` or `timestamp`
/// with an integer comparing `x` with the first instant of a year instead:
/// `year(d) = 1995` becomes `d >= DATE '1995-01-01' AND d < DATE
/// '1996-01-01'`. The same rows pass (a NULL passes neither), but an
/// integer comparison is far cheaper than taking each row's year, and a
/// range on a dataset's time column skips the slices outside it.
pub fn year_ranges(plan: LogicalPlan) -> Result<LogicalPlan> {
    use datafusion::logical_expr::Filter;
    plan.transform_up_with_subqueries(|node| {
        let LogicalPlan::Filter(filter) = node else { return Ok(Transformed::no(node)) };
        let schema = Arc::clone(filter.input.schema());
        let predicate = filter.predicate.clone().transform_up(|e| match e {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let ranged = match (year_of(&left, &schema), year_of(&right, &schema)) {
                    (Some(x), None) => integer(&right).and_then(|n| year_range(x, op, n)),
                    (None, Some(x)) => integer(&left).and_then(|n| year_range(x, op.swap()?, n)),
                    _ => None,
                };
                Ok(match ranged {
                    Some(e) => Transformed::yes(e),
                    None => Transformed::no(Expr::BinaryExpr(BinaryExpr { left, op, right })),
                })
            }
            e => Ok(Transformed::no(e)),
        })?;
        if !predicate.transformed {
            return Ok(Transformed::no(LogicalPlan::Filter(filter)));
        }
        Ok(Transformed::yes(LogicalPlan::Filter(Filter::try_new(predicate.data, filter.input)?)))
    })
    .map(|t| t.data)
}

/// `x` and its type when `e` is `year(x)` of a `date` or a `timestamp`
/// without zone.
fn year_of<'a>(e: &'a Expr, schema: &DFSchema) -> Option<(&'a Expr, DataType)> {
    let Expr::ScalarFunction(f) = e else { return None };
    let [x] = f.args.as_slice() else { return None };
    if f.func.name() != "year" {
        return None;
    }
    let ty = x.get_type(schema).ok()?;
    matches!(ty, DataType::Date32 | DataType::Timestamp(_, None)).then_some((x, ty))
}

/// The value of an integer literal.
fn integer(e: &Expr) -> Option<i64> {
    use datafusion::common::ScalarValue;
    match e {
        Expr::Literal(ScalarValue::Int64(Some(v)), _) => Some(*v),
        Expr::Literal(ScalarValue::Int32(Some(v)), _) => Some(i64::from(*v)),
        Expr::Literal(ScalarValue::Int16(Some(v)), _) => Some(i64::from(*v)),
        Expr::Literal(ScalarValue::Int8(Some(v)), _) => Some(i64::from(*v)),
        _ => None,
    }
}

/// `year(x) op n` as comparisons of `x` with the first instants of years;
/// `None` for other operators, or years whose first instant `x`'s type
/// cannot hold.
fn year_range((x, ty): (&Expr, DataType), op: Operator, n: i64) -> Option<Expr> {
    use arrow::datatypes::TimeUnit;
    use datafusion::common::ScalarValue;
    // The first instant of year `y`, as a literal of `x`'s type.
    let start = |y: i64| -> Option<Expr> {
        let day = chrono::NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, 1, 1)?;
        let days = day.signed_duration_since(chrono::NaiveDate::default()).num_days();
        let value = match &ty {
            DataType::Date32 => ScalarValue::Date32(Some(i32::try_from(days).ok()?)),
            DataType::Timestamp(unit, None) => {
                let per_day: i64 = match unit {
                    TimeUnit::Second => 86_400,
                    TimeUnit::Millisecond => 86_400_000,
                    TimeUnit::Microsecond => 86_400_000_000,
                    TimeUnit::Nanosecond => 86_400_000_000_000,
                };
                let v = Some(days.checked_mul(per_day)?);
                match unit {
                    TimeUnit::Second => ScalarValue::TimestampSecond(v, None),
                    TimeUnit::Millisecond => ScalarValue::TimestampMillisecond(v, None),
                    TimeUnit::Microsecond => ScalarValue::TimestampMicrosecond(v, None),
                    TimeUnit::Nanosecond => ScalarValue::TimestampNanosecond(v, None),
                }
            }
            _ => return None,
        };
        Some(Expr::Literal(value, None))
    };
    let x = x.clone();
    let next = n.checked_add(1)?;
    Some(match op {
        Operator::Eq => x.clone().gt_eq(start(n)?).and(x.lt(start(next)?)),
        Operator::NotEq => x.clone().lt(start(n)?).or(x.gt_eq(start(next)?)),
        Operator::GtEq => x.gt_eq(start(n)?),
        Operator::Gt => x.gt_eq(start(next)?),
        Operator::Lt => x.lt(start(n)?),
        Operator::LtEq => x.lt(start(next)?),
        _ => return None,
    })
}

/// `plan` with each aggregate that groups by a string column of a dataset
/// whose every value is at most 12 bytes grouping by the column's
/// [`InlineKey`] instead, turned back into the string above it: the same
/// groups, hashed and compared as integers. Only where the aggregate reads
/// the scan through filters alone, so the column is the dataset's own.
pub fn inline_string_groups(plan: LogicalPlan) -> Result<LogicalPlan> {
    use super::functions::{InlineKey, InlineString};
    use datafusion::logical_expr::expr::ScalarFunction;
    use datafusion::logical_expr::{Aggregate, Projection};

    let (key, string) = (InlineKey::udf(), InlineString::udf());
    plan.transform_up_with_subqueries(|node| {
        let LogicalPlan::Aggregate(agg) = node else { return Ok(Transformed::no(node)) };
        let Some(table) = scanned_dataset(&agg.input) else { return Ok(Transformed::no(LogicalPlan::Aggregate(agg))) };
        let keyed: Vec<bool> =
            agg.group_expr.iter().map(|e| matches!(e, Expr::Column(c) if table.inline_strings(&c.name))).collect();
        if agg.group_expr.iter().any(|e| matches!(e, Expr::GroupingSet(_))) || !keyed.contains(&true) {
            return Ok(Transformed::no(LogicalPlan::Aggregate(agg)));
        }
        let group: Vec<Expr> = agg
            .group_expr
            .iter()
            .zip(&keyed)
            .map(|(e, &k)| match k {
                true => Expr::ScalarFunction(ScalarFunction::new_udf(Arc::clone(&key), vec![e.clone()])),
                false => e.clone(),
            })
            .collect();
        let old = Arc::clone(&agg.schema);
        let new = Aggregate::try_new(Arc::clone(&agg.input), group, agg.aggr_expr.clone())?;
        let fields = new.schema.iter().zip(old.iter()).enumerate();
        let exprs = fields
            .map(|(i, ((q, f), (old_q, old_f)))| {
                let column = Expr::Column(datafusion::common::Column::from((q, f)));
                let value = match keyed.get(i) {
                    Some(true) => Expr::ScalarFunction(ScalarFunction::new_udf(Arc::clone(&string), vec![column])),
                    _ => column,
                };
                value.alias_qualified(old_q.cloned(), old_f.name())
            })
            .collect();
        let projection = Projection::try_new(exprs, Arc::new(LogicalPlan::Aggregate(new)))?;
        Ok(Transformed::yes(LogicalPlan::Projection(projection)))
    })
    .map(|t| t.data)
}

/// The dataset `plan` scans when it is filters (and aliases) over one scan
/// of a dataset.
fn scanned_dataset(plan: &LogicalPlan) -> Option<crate::accel::DatasetTable> {
    match plan {
        LogicalPlan::Filter(f) => scanned_dataset(&f.input),
        LogicalPlan::SubqueryAlias(a) => scanned_dataset(&a.input),
        LogicalPlan::TableScan(scan) => {
            let provider = datafusion::datasource::source_as_provider(&scan.source).ok()?;
            provider.downcast_ref::<crate::accel::DatasetTable>().cloned()
        }
        _ => None,
    }
}
