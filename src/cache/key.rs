//! What identifies a cached result, and which statements may be cached.

use crate::sql::{Kind, Statement};

/// Everything that changes a statement's answer. Two users never share a
/// key unless every table read lies in a namespace the operator declared
/// shared (then `user` is `None`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// The statement's tokens as Trino's lexer reads them, verbatim, one
    /// space apart: comments and whitespace between tokens do not count,
    /// everything else (case, literals, a trailing `;`) does.
    pub sql: String,
    pub user: Option<String>,
    pub catalog: Option<String>,
    pub schema: Option<String>,
    /// Session properties, sorted by name.
    pub session_properties: Vec<(String, String)>,
    pub time_zone: Option<String>,
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

/// What the cache needs to know of a query it may cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cacheable {
    /// The key text: Trino's tokens, verbatim.
    pub canonical: String,
    /// Tables the statement names (more are found once it has run).
    pub tables: Vec<String>,
    /// Whether every relation it reads is certainly among `tables`, so a
    /// shared namespace may be tried before Trino confirms it.
    pub complete: bool,
}

/// Decides whether `stmt` may be cached.
pub fn cacheable(stmt: &Statement) -> Result<Cacheable, Bypass> {
    if *stmt.kind() != Kind::Query {
        return Err(Bypass::NotAQuery);
    }
    if let Some(f) = stmt.non_deterministic() {
        return Err(Bypass::NonDeterministic(f));
    }
    // Trino's live `system` tables are never cached, however they are named.
    if stmt.names_system() {
        return Err(Bypass::SystemTables);
    }
    // A statement the parser cannot read is still cached for its user:
    // Trino's account of what it read tags the entry once it has run.
    let parsed = stmt.tables();
    let complete = parsed.is_some() && !stmt.uses_table_keyword() && !stmt.names_per_user_relations();
    let tables = parsed.unwrap_or_default();
    Ok(Cacheable { canonical: stmt.canonical(), tables, complete })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(sql: &str) -> Statement {
        Statement::parse(sql, Some("tpch"), Some("sf1"))
    }

    #[test]
    fn what_is_cached() {
        let c = cacheable(&st("SELECT * FROM nation n JOIN tpch.tiny.region r ON true")).unwrap();
        assert_eq!(c.tables, vec!["tpch.sf1.nation", "tpch.tiny.region"]);
        assert!(c.complete);
        assert_eq!(cacheable(&st("SELECT now()")), Err(Bypass::NonDeterministic("now")));
        assert_eq!(cacheable(&st("select CURRENT_USER")), Err(Bypass::NonDeterministic("current_user")));
        assert!(cacheable(&st("SELECT 'now()' AS s")).is_ok(), "a literal is not a call");
        assert_eq!(cacheable(&st("INSERT INTO t VALUES 1")), Err(Bypass::NotAQuery));
        assert_eq!(cacheable(&st("SHOW TABLES")), Err(Bypass::NotAQuery));
        assert_eq!(cacheable(&st("SELECT * FROM system.runtime.queries")), Err(Bypass::SystemTables));
        assert!(!cacheable(&st("SELECT (((")).unwrap().complete);
        assert_eq!(cacheable(&st("SELECT * FROM \"SYSTEM\".runtime.queries")), Err(Bypass::SystemTables));
        // Relations a parser may not list are never taken as the whole story.
        for sql in
            ["TABLE nation", "SELECT * FROM tpch.information_schema.tables", "SELECT * FROM TABLE(sequence(1, 2))"]
        {
            assert!(cacheable(&st(sql)).map_or(true, |c| !c.complete), "{sql}");
        }
    }

    #[test]
    fn quoted_names_resolve_like_unquoted_ones() {
        let c = cacheable(&st("SELECT * FROM \"TPCH\".\"Tiny\".nation")).unwrap();
        assert_eq!(c.tables, vec!["tpch.tiny.nation"]);
    }
}
