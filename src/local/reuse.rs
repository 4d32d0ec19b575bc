//! Plans kept for reuse by statements that differ only in the constants of
//! their `WHERE`.
//!
//! A dashboard sends one statement again and again with other times and
//! other filter values in its `WHERE`. The conjuncts that bound the
//! dataset's time column by constants (the bounds), and those that compare
//! another column with constants (the filters), are taken out of the
//! statement: what is left (the skeleton) is planned once, with a scan that
//! reads the range and applies the filters each execution brings
//! ([`crate::accel::DeferredScan`]). Each statement plans only its
//! conjuncts, as `SELECT 1 FROM <relation> WHERE <bounds AND filters>`: to
//! the range its scan would have cut and the filter it would have run. The
//! answer is the same: on a single relation, `WHERE` filters the rows
//! before anything else reads them, and the range is taken only when the
//! planned bounds are exactly a range the scan cuts.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{self as ast, BinaryOperator, Expr, GroupByExpr, SelectItem, SetExpr};

/// A statement split into its skeleton and its conjuncts with constants.
#[derive(Debug)]
pub(super) struct Shape {
    /// The statement without its bounds and filters.
    pub skeleton: ast::Query,
    /// `SELECT 1 FROM <the relation> WHERE <the bounds AND the filters>`.
    pub bounds: ast::Query,
    /// The skeleton's text, by which its plan is kept.
    pub text: String,
}

/// The shape of `query` when it reads one table, with no join, subquery or
/// named subquery, and its `WHERE` bounds the column `time` by constants.
/// Comparisons of other columns with constants go with the bounds.
pub(super) fn shape(query: &ast::Query, time: &str) -> Option<Shape> {
    let plain = query.with.is_none()
        && query.locks.is_empty()
        && query.for_clause.is_none()
        && query.settings.is_none()
        && query.format_clause.is_none()
        && query.pipe_operators.is_empty();
    let SetExpr::Select(select) = query.body.as_ref() else { return None };
    let [from] = select.from.as_slice() else { return None };
    let table = matches!(&from.relation, ast::TableFactor::Table { args: None, .. }) && from.joins.is_empty();
    if !plain || !table || subqueries(query) {
        return None;
    }
    let all = conjuncts(select.selection.as_ref()?);
    if !all.iter().any(|e| is_bound(e, time)) {
        return None;
    }
    let (bounds, rest): (Vec<&Expr>, Vec<&Expr>) =
        all.into_iter().partition(|e| is_bound(e, time) || is_filter(e, time));
    let mut skeleton = query.clone();
    if let SetExpr::Select(s) = skeleton.body.as_mut() {
        s.selection = and(rest);
    }
    let mut only = select.as_ref().clone();
    only.distinct = None;
    only.select_modifiers = None;
    only.top = None;
    only.projection = vec![SelectItem::UnnamedExpr(Expr::value(ast::Value::Number("1".into(), false)))];
    only.exclude = None;
    only.into = None;
    only.lateral_views = Vec::new();
    only.prewhere = None;
    only.selection = and(bounds);
    only.connect_by = Vec::new();
    only.group_by = GroupByExpr::Expressions(Vec::new(), Vec::new());
    only.cluster_by = Vec::new();
    only.distribute_by = Vec::new();
    only.sort_by = Vec::new();
    only.having = None;
    only.named_window = Vec::new();
    only.qualify = None;
    let bounds = ast::Query {
        with: None,
        body: Box::new(SetExpr::Select(Box::new(only))),
        order_by: None,
        limit_clause: None,
        fetch: None,
        locks: Vec::new(),
        for_clause: None,
        settings: None,
        format_clause: None,
        pipe_operators: Vec::new(),
    };
    let text = skeleton.to_string();
    Some(Shape { skeleton, bounds, text })
}

/// Whether any expression of `query` holds a subquery.
fn subqueries(query: &ast::Query) -> bool {
    ast::visit_expressions(query, |e| match e {
        Expr::Subquery(_) | Expr::InSubquery { .. } | Expr::Exists { .. } => ControlFlow::Break(()),
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// The operands of the `AND`s at the top of `e`.
fn conjuncts(e: &Expr) -> Vec<&Expr> {
    match e {
        Expr::BinaryOp { left, op: BinaryOperator::And, right } => {
            let mut out = conjuncts(left);
            out.extend(conjuncts(right));
            out
        }
        other => vec![other],
    }
}

/// `exprs` joined by `AND`; `None` when there are none.
fn and(exprs: Vec<&Expr>) -> Option<Expr> {
    exprs.into_iter().cloned().reduce(|a, b| Expr::BinaryOp {
        left: Box::new(a),
        op: BinaryOperator::And,
        right: Box::new(b),
    })
}

/// `time` compared with a constant by `<`, `<=`, `>` or `>=`, either way
/// round, or `time BETWEEN` two constants.
fn is_bound(e: &Expr, time: &str) -> bool {
    use BinaryOperator::{Gt, GtEq, Lt, LtEq};
    match e {
        Expr::BinaryOp { left, op: Gt | GtEq | Lt | LtEq, right } => {
            (names(left, time) && constant(right)) || (constant(left) && names(right, time))
        }
        Expr::Between { expr, negated: false, low, high } => names(expr, time) && constant(low) && constant(high),
        _ => false,
    }
}

/// A column other than `time` compared with a constant by `=`, `<>`, `<`,
/// `<=`, `>` or `>=`, either way round, or `IN` a list of constants.
fn is_filter(e: &Expr, time: &str) -> bool {
    use BinaryOperator::{Eq, Gt, GtEq, Lt, LtEq, NotEq};
    let other = |e: &Expr| matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_)) && !names(e, time);
    match e {
        Expr::BinaryOp { left, op: Eq | NotEq | Gt | GtEq | Lt | LtEq, right } => {
            (other(left) && constant(right)) || (constant(left) && other(right))
        }
        Expr::InList { expr, list, .. } => other(expr) && !list.is_empty() && list.iter().all(constant),
        _ => false,
    }
}

fn names(e: &Expr, column: &str) -> bool {
    match e {
        Expr::Identifier(id) => id.value.eq_ignore_ascii_case(column),
        Expr::CompoundIdentifier(parts) => parts.last().is_some_and(|p| p.value.eq_ignore_ascii_case(column)),
        _ => false,
    }
}

/// Literals, typed literals and intervals, and sums and differences of them.
fn constant(e: &Expr) -> bool {
    match e {
        Expr::Value(v) => !matches!(v.value, ast::Value::Placeholder(_)),
        Expr::TypedString(_) | Expr::Interval(_) => true,
        Expr::Nested(e) | Expr::UnaryOp { expr: e, .. } => constant(e),
        Expr::BinaryOp { left, op: BinaryOperator::Plus | BinaryOperator::Minus, right } => {
            constant(left) && constant(right)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::shape;

    fn query(sql: &str) -> ast::Query {
        let parsed = sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::GenericDialect {}, sql).unwrap();
        match parsed.into_iter().next() {
            Some(ast::Statement::Query(q)) => *q,
            other => panic!("{other:?}"),
        }
    }

    use datafusion::sql::sqlparser::ast;

    #[test]
    fn the_bounds_and_the_filters_with_constants_are_taken_out_and_the_rest_kept() {
        let s = shape(
            &query(
                "SELECT market, avg(price) FROM t WHERE market = 'PJM' AND ts >= TIMESTAMP '2022-01-01 00:00:00' \
                 + INTERVAL '3' DAY AND TIMESTAMP '2022-02-01 00:00:00' > t.TS GROUP BY 1 ORDER BY 1 LIMIT 5",
            ),
            "ts",
        )
        .unwrap();
        assert_eq!(s.text, "SELECT market, avg(price) FROM t GROUP BY 1 ORDER BY 1 LIMIT 5");
        assert_eq!(
            s.bounds.to_string(),
            "SELECT 1 FROM t WHERE market = 'PJM' AND ts >= TIMESTAMP '2022-01-01 00:00:00' + INTERVAL '3' DAY \
             AND TIMESTAMP '2022-02-01 00:00:00' > t.TS"
        );
        // Two statements that differ only in their range and filter values
        // have one skeleton.
        let other = shape(
            &query(
                "SELECT market, avg(price) FROM t WHERE market IN ('MISO', 'ERCOT') AND ts BETWEEN DATE \
                 '2023-01-01' AND DATE '2023-02-01' GROUP BY 1 ORDER BY 1 LIMIT 5",
            ),
            "ts",
        )
        .unwrap();
        assert_eq!(other.text, s.text);
        let bare = shape(&query("SELECT count(*) FROM t WHERE ts < TIMESTAMP '2022-01-01 00:00:00'"), "ts").unwrap();
        assert_eq!(bare.text, "SELECT count(*) FROM t");
    }

    #[test]
    fn only_columns_compared_with_constants_are_filters() {
        let sql = "SELECT count(*) FROM t WHERE ts >= DATE '2022-01-01' AND node_id = 7 AND 7 <> t.node_id \
                   AND price > -5.5 AND price <= 10 + 2 AND market NOT IN ('A', 'B') AND lower(market) = 'pjm' \
                   AND market = other AND market LIKE 'P%' AND market IS NULL AND node_id = ? \
                   AND ts <> DATE '2022-01-05' AND (node_id = 1 OR node_id = 2)";
        let s = shape(&query(sql), "ts").unwrap();
        assert_eq!(
            s.text,
            "SELECT count(*) FROM t WHERE lower(market) = 'pjm' AND market = other AND market LIKE 'P%' AND \
             market IS NULL AND node_id = ? AND ts <> DATE '2022-01-05' AND (node_id = 1 OR node_id = 2)"
        );
        assert_eq!(
            s.bounds.to_string(),
            "SELECT 1 FROM t WHERE ts >= DATE '2022-01-01' AND node_id = 7 AND 7 <> t.node_id AND price > -5.5 \
             AND price <= 10 + 2 AND market NOT IN ('A', 'B')"
        );
    }

    #[test]
    fn only_constant_bounds_of_one_plain_relation_shape_a_statement() {
        for sql in [
            "SELECT count(*) FROM t",
            "SELECT count(*) FROM t WHERE market = 'PJM'",
            "SELECT count(*) FROM t WHERE market = 'PJM' AND node_id IN (1, 2)",
            "SELECT count(*) FROM t WHERE ts >= now() - INTERVAL '1' DAY",
            "SELECT count(*) FROM t WHERE ts >= other",
            "SELECT count(*) FROM t WHERE ts >= ?",
            "SELECT count(*) FROM t WHERE ts = TIMESTAMP '2022-01-01 00:00:00'",
            "SELECT count(*) FROM t WHERE ts NOT BETWEEN DATE '2022-01-01' AND DATE '2022-02-01'",
            "SELECT count(*) FROM t WHERE ts >= DATE '2022-01-01' OR market = 'PJM'",
            "SELECT count(*) FROM t WHERE (ts >= DATE '2022-01-01' AND market = 'PJM')",
            "SELECT count(*) FROM t JOIN u ON t.a = u.a WHERE ts >= DATE '2022-01-01'",
            "SELECT count(*) FROM t, u WHERE ts >= DATE '2022-01-01'",
            "SELECT count(*) FROM (SELECT * FROM t) WHERE ts >= DATE '2022-01-01'",
            "WITH w AS (SELECT * FROM t) SELECT count(*) FROM w WHERE ts >= DATE '2022-01-01'",
            "SELECT count(*) FROM t WHERE ts >= DATE '2022-01-01' AND a IN (SELECT a FROM u)",
            "SELECT (SELECT max(a) FROM u) FROM t WHERE ts >= DATE '2022-01-01'",
            "SELECT count(*) FROM t WHERE ts >= DATE '2022-01-01' UNION ALL SELECT 1",
        ] {
            assert!(shape(&query(sql), "ts").is_none(), "{sql}");
        }
    }
}
