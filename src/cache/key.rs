//! What identifies a cached result, and which statements may be cached.

use std::ops::ControlFlow;

use sqlparser::ast::{ObjectName, visit_relations};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

/// Everything that changes a statement's answer. Two users never share a
/// key unless every table read lies in a namespace the operator declared
/// shared (then `user` is `None`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// The statement normalized: comments dropped, whitespace collapsed,
    /// unquoted words lower-cased; literals and quoted identifiers kept.
    pub sql: String,
    pub user: Option<String>,
    pub catalog: Option<String>,
    pub schema: Option<String>,
    /// Session properties, sorted by name.
    pub session_properties: Vec<(String, String)>,
    pub time_zone: Option<String>,
    /// Bound parameter values, encoded.
    pub parameters: Vec<u8>,
}

impl CacheKey {
    /// A short stable id for the admin API.
    pub fn id(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(format!("{self:?}").as_bytes());
        hex::encode(&h.finalize()[..8])
    }
}

/// Functions whose result changes from one run to the next (or per user):
/// a statement calling any of them is never cached.
const NON_DETERMINISTIC: &[&str] = &[
    "now",
    "current_timestamp",
    "current_date",
    "current_time",
    "localtime",
    "localtimestamp",
    "random",
    "rand",
    "uuid",
    "shuffle",
    "current_user",
    "current_role",
    "current_catalog",
    "current_schema",
    "current_path",
    "current_groups",
    "from_unixtime_nanos",
];

/// Collapses whitespace, drops comments and lower-cases unquoted words.
/// String literals (`'...'`) and quoted identifiers (`"..."`) are kept as
/// written, so statements that differ only there never share a key.
pub fn normalize(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut pending_space = false;
    let push = |out: &mut String, c: char, pending_space: &mut bool| {
        if *pending_space && !out.is_empty() {
            out.push(' ');
        }
        *pending_space = false;
        out.push(c);
    };
    while let Some(c) = chars.next() {
        match c {
            '-' if chars.peek() == Some(&'-') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                pending_space = true;
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
                pending_space = true;
            }
            '\'' | '"' => {
                push(&mut out, c, &mut pending_space);
                // Doubled quotes stay inside the literal.
                while let Some(d) = chars.next() {
                    out.push(d);
                    if d == c {
                        if chars.peek() == Some(&c) {
                            out.push(chars.next().expect("peeked"));
                        } else {
                            break;
                        }
                    }
                }
            }
            c if c.is_whitespace() => pending_space = true,
            c => push(&mut out, c.to_ascii_lowercase(), &mut pending_space),
        }
    }
    // A trailing semicolon does not change the statement.
    while out.ends_with(';') {
        out.pop();
        while out.ends_with(' ') {
            out.pop();
        }
    }
    out
}

/// The unquoted words of a normalized statement (outside literals).
fn words(normalized: &str) -> impl Iterator<Item = &str> {
    let mut in_quote: Option<char> = None;
    normalized
        .split(move |c: char| {
            match (in_quote, c) {
                (None, '\'' | '"') => in_quote = Some(c),
                (Some(q), c) if c == q => in_quote = None,
                _ => {}
            }
            in_quote.is_some() || !(c.is_ascii_alphanumeric() || c == '_')
        })
        .filter(|w| !w.is_empty())
}

/// Why a statement is not cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bypass {
    /// Not a query (DDL, DML, SET, SHOW, EXPLAIN, ...).
    NotAQuery,
    /// Calls a function whose result changes between runs.
    NonDeterministic(&'static str),
    /// Reads Trino's live `system` catalog.
    SystemTables,
    /// The statement could not be parsed, so its tables are unknown.
    Unparsed,
}

impl std::fmt::Display for Bypass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Bypass::NotAQuery => f.write_str("not a query"),
            Bypass::NonDeterministic(func) => write!(f, "calls {func}()"),
            Bypass::SystemTables => f.write_str("reads the system catalog"),
            Bypass::Unparsed => f.write_str("tables read are unknown"),
        }
    }
}

/// Resolves a table name against the session's catalog and schema, as
/// `catalog.schema.table` in lower case.
fn qualify(name: &ObjectName, catalog: Option<&str>, schema: Option<&str>) -> String {
    let parts: Vec<String> = name.0.iter().map(|p| p.to_string().trim_matches('"').to_ascii_lowercase()).collect();
    let (c, s) = (catalog.unwrap_or("").to_ascii_lowercase(), schema.unwrap_or("").to_ascii_lowercase());
    match parts.as_slice() {
        [t] => format!("{c}.{s}.{t}"),
        [sc, t] => format!("{c}.{sc}.{t}"),
        _ => parts.join("."),
    }
}

/// Every table a statement names, qualified; `None` if it does not parse.
pub fn tables(sql: &str, catalog: Option<&str>, schema: Option<&str>) -> Option<Vec<String>> {
    let statements = Parser::parse_sql(&GenericDialect {}, sql).ok()?;
    let mut out = Vec::new();
    for s in &statements {
        let _ = visit_relations(s, |name| {
            out.push(qualify(name, catalog, schema));
            ControlFlow::<()>::Continue(())
        });
    }
    // CTE names are relations too; harmless extra names.
    out.sort();
    out.dedup();
    Some(out)
}

/// What a write statement may have changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteScope {
    /// These tables (as `catalog.schema.table`).
    Tables(Vec<String>),
    /// Unknown, or permissions: everything.
    All,
}

/// Whether `sql` changes data or permissions, and what it may have changed.
pub fn write_scope(sql: &str, catalog: Option<&str>, schema: Option<&str>) -> Option<WriteScope> {
    let normalized = normalize(sql);
    let first = normalized.trim_start_matches('(').split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or("");
    match first {
        "insert" | "update" | "delete" | "merge" | "create" | "drop" | "alter" | "truncate" | "refresh" | "comment" => {
            match tables(sql, catalog, schema) {
                Some(t) if !t.is_empty() => Some(WriteScope::Tables(t)),
                _ => Some(WriteScope::All),
            }
        }
        // Procedures may write anything; permission changes must not leave
        // rows cached for users who lost access.
        "call" | "grant" | "revoke" | "deny" | "execute" => Some(WriteScope::All),
        _ => None,
    }
}

/// Decides whether `sql` may be cached; returns the normalized text and the
/// tables it reads when it may.
pub fn cacheable(sql: &str, catalog: Option<&str>, schema: Option<&str>) -> Result<(String, Vec<String>), Bypass> {
    let normalized = normalize(sql);
    let first = normalized.trim_start_matches('(').split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or("");
    if !matches!(first, "select" | "with" | "values" | "table") {
        return Err(Bypass::NotAQuery);
    }
    if let Some(f) = words(&normalized).find_map(|w| NON_DETERMINISTIC.iter().find(|n| **n == w)) {
        return Err(Bypass::NonDeterministic(f));
    }
    let tables = tables(sql, catalog, schema).ok_or(Bypass::Unparsed)?;
    if tables.iter().any(|t| t.starts_with("system.")) {
        return Err(Bypass::SystemTables);
    }
    Ok((normalized, tables))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_keeps_literals() {
        assert_eq!(normalize("SELECT  a,\n\tB -- comment\nFROM /* x */ T;"), "select a, b from t");
        assert_eq!(normalize("select 'A  B' from \"MixedCase\""), "select 'A  B' from \"MixedCase\"");
        assert_eq!(normalize("select 'it''s' , \"a\"\"b\""), "select 'it''s' , \"a\"\"b\"");
        assert_ne!(normalize("select 'a'"), normalize("select 'A'"));
        assert_eq!(normalize("SELECT 1"), normalize("select\n1  "));
    }

    #[test]
    fn what_is_cached() {
        let (_, t) =
            cacheable("SELECT * FROM nation n JOIN tpch.tiny.region r ON true", Some("tpch"), Some("sf1")).unwrap();
        assert_eq!(t, vec!["tpch.sf1.nation", "tpch.tiny.region"]);
        assert_eq!(cacheable("SELECT now()", None, None), Err(Bypass::NonDeterministic("now")));
        assert_eq!(cacheable("select CURRENT_USER", None, None), Err(Bypass::NonDeterministic("current_user")));
        assert!(cacheable("SELECT 'now()' AS s", None, None).is_ok(), "a literal is not a call");
        assert_eq!(cacheable("INSERT INTO t VALUES 1", None, None), Err(Bypass::NotAQuery));
        assert_eq!(cacheable("SHOW TABLES", None, None), Err(Bypass::NotAQuery));
        assert_eq!(cacheable("SELECT * FROM system.runtime.queries", None, None), Err(Bypass::SystemTables));
        assert_eq!(cacheable("SELECT (((", None, None), Err(Bypass::Unparsed));
    }

    #[test]
    fn write_scopes() {
        assert_eq!(write_scope("SELECT 1", None, None), None);
        assert_eq!(write_scope("SET SESSION a = 1", None, None), None);
        assert_eq!(
            write_scope("insert into t values (1)", Some("memory"), Some("default")),
            Some(WriteScope::Tables(vec!["memory.default.t".into()]))
        );
        assert_eq!(write_scope("GRANT SELECT ON t TO bob", None, None), Some(WriteScope::All));
        assert_eq!(write_scope("DELETE FROM (((", None, None), Some(WriteScope::All));
    }

    #[test]
    fn writes_name_their_tables() {
        let t = tables("INSERT INTO memory.default.t SELECT * FROM tpch.tiny.nation", None, None).unwrap();
        assert!(t.contains(&"memory.default.t".to_string()), "{t:?}");
        let t = tables("DELETE FROM t WHERE a = 1", Some("memory"), Some("default")).unwrap();
        assert_eq!(t, vec!["memory.default.t"]);
    }
}
