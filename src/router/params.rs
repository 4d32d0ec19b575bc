//! Bound parameters: Arrow values to Trino SQL literals, substituted for
//! the statement's `?` markers.
//!
//! Substituting typed literals (`BIGINT '7'`, `DATE '2024-01-31'`) gives the
//! same analysis as Trino's `EXECUTE ... USING`, and leaves a plain
//! statement that the cache can key and classify like any other.

use arrow::datatypes::{DataType, TimeUnit};

pub use crate::sql::literal::literals;

/// A statement as Trino runs it: the client's text with its parameters
/// bound, and where that text came from when binding changed it.
#[derive(Debug, Clone)]
pub struct Bound {
    pub sql: String,
    pub origin: Option<std::sync::Arc<crate::trino::Origin>>,
}

impl Bound {
    /// Text run as written: error positions need no mapping.
    pub fn verbatim(sql: &str) -> Bound {
        Bound { sql: sql.to_string(), origin: None }
    }
}

/// `stmt` with its `?` markers replaced by `literals`, in order.
pub fn bind(stmt: &crate::sql::Statement, literals: &[String]) -> Result<Bound, String> {
    let (sql, at) = (stmt.text(), stmt.markers());
    if at.len() != literals.len() {
        return Err(format!("the statement has {} parameters but {} values were bound", at.len(), literals.len()));
    }
    if at.is_empty() {
        return Ok(Bound { sql: sql.to_string(), origin: None });
    }
    let mut out = String::with_capacity(sql.len() + literals.iter().map(String::len).sum::<usize>());
    let mut copied = Vec::with_capacity(at.len() + 1);
    let mut last = 0;
    for (pos, lit) in at.iter().zip(literals) {
        copied.push((out.len(), last, pos - last));
        out.push_str(&sql[last..*pos]);
        out.push_str(row_count(&sql[..*pos], lit).unwrap_or(lit));
        last = pos + 1;
    }
    copied.push((out.len(), last, sql.len() - last));
    out.push_str(&sql[last..]);
    let origin = crate::trino::Origin::new(sql, &out, copied);
    Ok(Bound { sql: out, origin: Some(std::sync::Arc::new(origin)) })
}

/// The bare number of an integer literal bound where Trino's grammar takes
/// only a number (`LIMIT ?`, `OFFSET ?`, `FETCH FIRST ? ROWS`), as its
/// `EXECUTE ... USING` does; `None` elsewhere.
fn row_count<'a>(before: &str, lit: &'a str) -> Option<&'a str> {
    let word = before.trim_end().rsplit(|c: char| !c.is_ascii_alphabetic()).next()?;
    if !["limit", "offset", "first", "next"].iter().any(|w| word.eq_ignore_ascii_case(w)) {
        return None;
    }
    let (ty, rest) = lit.split_once(" '")?;
    let digits = rest.strip_suffix('\'')?;
    let integer = ["TINYINT", "SMALLINT", "INTEGER", "BIGINT"].contains(&ty);
    (integer && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// A parameter field of unknown type: a dense union of the kinds of value
/// clients bind, so each value keeps its own type.
pub fn any_type_field(name: &str) -> arrow::datatypes::Field {
    use arrow::datatypes::{Field, UnionFields, UnionMode};
    let children = vec![
        Field::new("bigint", DataType::Int64, true),
        Field::new("double", DataType::Float64, true),
        Field::new("varchar", DataType::Utf8, true),
        Field::new("boolean", DataType::Boolean, true),
        Field::new("date", DataType::Date32, true),
        Field::new("timestamp", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        Field::new("varbinary", DataType::Binary, true),
        Field::new("integer", DataType::Int32, true),
        Field::new("decimal", DataType::Decimal128(38, 10), true),
    ];
    let ids = 0..children.len() as i8;
    let fields = UnionFields::try_new(ids, children).expect("distinct type ids");
    Field::new(name, DataType::Union(fields, UnionMode::Dense), true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(sql: &str) -> crate::sql::Statement {
        crate::sql::Statement::parse(sql, None, None)
    }

    #[test]
    fn markers_skip_literals_identifiers_and_comments() {
        let sql = "SELECT '?', \"a?\", x -- ?\r FROM t /* ? */ WHERE a = ? AND b = 'it''s ?' AND c = ?";
        assert_eq!(crate::sql::Statement::parse(sql, None, None).markers().len(), 2);
        assert_eq!(
            bind(&st(sql), &["1".into(), "'z'".into()]).unwrap().sql,
            sql.replacen("a = ?", "a = 1", 1).replacen("c = ?", "c = 'z'", 1)
        );
        assert!(bind(&st("SELECT ?"), &[]).is_err());
    }

    #[test]
    fn row_counts_bind_as_bare_numbers() {
        let bound = |sql: &str, values: &[&str]| {
            bind(&st(sql), &values.iter().map(|v| v.to_string()).collect::<Vec<_>>()).unwrap().sql
        };
        assert_eq!(
            bound("SELECT a FROM t WHERE b = ? OFFSET ? LIMIT\r\n?", &["BIGINT '2'", "BIGINT '1'", "INTEGER '3'"]),
            "SELECT a FROM t WHERE b = BIGINT '2' OFFSET 1 LIMIT\r\n3"
        );
        assert_eq!(
            bound("SELECT a FROM t OFFSET ? ROWS FETCH NEXT ? ROWS ONLY", &["BIGINT '4'", "TINYINT '5'"]),
            "SELECT a FROM t OFFSET 4 ROWS FETCH NEXT 5 ROWS ONLY"
        );
        // Anything but a whole number is left for Trino to refuse.
        assert_eq!(bound("SELECT a FROM t LIMIT ?", &["'x'"]), "SELECT a FROM t LIMIT 'x'");
        assert_eq!(bound("SELECT a FROM t LIMIT ?", &["BIGINT '-1'"]), "SELECT a FROM t LIMIT BIGINT '-1'");
        assert_eq!(
            bound("SELECT a AS unlimited FROM t WHERE b = ?", &["BIGINT '1'"]),
            "SELECT a AS unlimited FROM t WHERE b = BIGINT '1'"
        );
    }
}

#[cfg(test)]
mod properties {
    use std::sync::Arc;

    use arrow::array::{Float64Array, Int64Array, StringArray, TimestampNanosecondArray};
    use arrow::datatypes::{Field, Schema};
    use proptest::prelude::*;

    use super::*;
    use crate::sql::lexer::{TokenKind, tokens};
    use arrow::record_batch::RecordBatch;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Whatever the values, binding never panics, a string stays one
        /// string literal (it cannot end early and inject SQL), and the
        /// statement keeps its shape: `SELECT <literal>` and nothing more.
        #[test]
        fn bound_values_stay_single_literals(
            s in "\\PC{0,20}|['\"\\-\\r\\n/*?;]{0,10}",
            i in any::<i64>(),
            f in any::<f64>(),
            ts in any::<i64>(),
        ) {
            let schema = Arc::new(Schema::new(vec![
                Field::new("s", DataType::Utf8, true),
                Field::new("i", DataType::Int64, true),
                Field::new("f", DataType::Float64, true),
                Field::new("t", DataType::Timestamp(TimeUnit::Nanosecond, None), true),
            ]));
            let batch = RecordBatch::try_new(
                schema,
                vec![
                    Arc::new(StringArray::from(vec![s.clone()])),
                    Arc::new(Int64Array::from(vec![i])),
                    Arc::new(Float64Array::from(vec![f])),
                    Arc::new(TimestampNanosecondArray::from(vec![ts])),
                ],
            )
            .unwrap();
            let lits = literals(&batch, 0).unwrap();
            let bound = bind(&crate::sql::Statement::parse("SELECT ?, ?, ?, ? -- ?\r", None, None), &lits).unwrap();
            let toks = tokens(&bound.sql);
            let strings: Vec<_> = toks.iter().filter(|t| t.kind == TokenKind::String).collect();
            prop_assert_eq!(strings[0].text(&bound.sql), format!("'{}'", s.replace('\'', "''")));
            prop_assert!(!toks.iter().any(|t| t.kind == TokenKind::Unrecognized || t.text(&bound.sql) == ";"));
            prop_assert_eq!(toks.iter().filter(|t| t.text(&bound.sql) == ",").count(), 3);
        }
    }
}
