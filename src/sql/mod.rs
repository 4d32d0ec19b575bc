//! Statement text, read once and exactly as Trino's lexer reads it.
//!
//! Every decision Flightdeck takes from SQL text (the cache key, what a
//! statement reads and writes, whether it returns rows, where its `?`
//! markers are, whether it calls a non-deterministic function) comes from
//! one [`Statement`], built from [`lexer`]'s tokens. Two statements that
//! Trino reads differently never get the same canonical text.

pub mod lexer;
pub mod literal;

use std::ops::ControlFlow;

use lexer::{Token, TokenKind};
use sqlparser::ast::visit_relations;
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

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

/// The keywords Trino 476 reserves (each checked: `SELECT 1 AS <word>`
/// fails). They can never be identifiers unquoted, so their case never
/// reaches a result; every other word's case may (`AS Foo` names a column
/// `Foo`).
const RESERVED: &[&str] = &[
    "alter",
    "and",
    "as",
    "auto",
    "between",
    "by",
    "case",
    "cast",
    "constraint",
    "create",
    "cross",
    "cube",
    "current_catalog",
    "current_date",
    "current_path",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "deallocate",
    "delete",
    "describe",
    "distinct",
    "drop",
    "else",
    "end",
    "escape",
    "except",
    "exists",
    "extract",
    "false",
    "for",
    "from",
    "full",
    "group",
    "grouping",
    "having",
    "in",
    "inner",
    "insert",
    "intersect",
    "into",
    "is",
    "join",
    "json_array",
    "json_exists",
    "json_object",
    "json_query",
    "json_table",
    "json_value",
    "left",
    "like",
    "listagg",
    "localtime",
    "localtimestamp",
    "natural",
    "normalize",
    "not",
    "null",
    "on",
    "or",
    "order",
    "outer",
    "prepare",
    "recursive",
    "right",
    "rollup",
    "select",
    "skip",
    "table",
    "then",
    "trim",
    "true",
    "uescape",
    "union",
    "unnest",
    "using",
    "values",
    "when",
    "where",
    "with",
];

/// Whether `word` is a keyword Trino reserves (any case).
pub fn is_reserved(word: &str) -> bool {
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word))
}

/// First keywords of statements without a result set (JDBC runs them as
/// updates). Trino's `DESCRIBE OUTPUT` reports a `rows` column for INSERT,
/// but clients must treat DML and DDL as updates.
const NO_RESULT_SET: &[&str] = &[
    "insert",
    "update",
    "delete",
    "merge",
    "create",
    "drop",
    "alter",
    "truncate",
    "comment",
    "grant",
    "revoke",
    "deny",
    "set",
    "reset",
    "use",
    "call",
    "prepare",
    "deallocate",
    "start",
    "commit",
    "rollback",
    "refresh",
    "analyze",
];

/// What a statement does, by its leading keywords.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `SELECT`, `WITH`, `VALUES`, `TABLE`, possibly parenthesized.
    Query,
    /// `SHOW ...`, `DESCRIBE ...` and `EXPLAIN` without `ANALYZE`: read-only.
    Inspect,
    /// `USE`, `SET SESSION`, `RESET SESSION`, `SET TIME ZONE`, `SET PATH`:
    /// change the client's session, no data.
    Session,
    /// Changes data or objects; the target, when the statement names one.
    Write(Option<String>),
    /// Anything else (`CALL`, `EXECUTE`, `GRANT`, `EXPLAIN ANALYZE`,
    /// transactions, unparseable text): may change anything.
    Other,
}

/// The relations a statement read, as the engine reports them after running
/// it (views, and the tables beneath them): more than the text names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reads {
    /// `catalog.schema.name`, lower case.
    pub tables: Vec<String>,
    /// The answer depends on who asked: a view, a row filter or column mask,
    /// `information_schema` or the `system` catalog among them.
    pub per_user: bool,
}

/// What a write may have changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteScope {
    /// These tables or views (as `catalog.schema.name`).
    Tables(Vec<String>),
    /// Unknown, or permissions: everything.
    All,
}

/// One statement, read once.
#[derive(Debug, Clone)]
pub struct Statement {
    text: String,
    tokens: Vec<Token>,
    kind: Kind,
    catalog: Option<String>,
    schema: Option<String>,
}

impl Statement {
    /// Reads `sql` as Trino's lexer does; `catalog` and `schema` qualify
    /// the names it finds.
    pub fn parse(sql: &str, catalog: Option<&str>, schema: Option<&str>) -> Statement {
        let tokens = lexer::tokens(sql);
        let kind = classify(sql, &tokens, catalog, schema);
        Statement {
            text: sql.to_string(),
            tokens,
            kind,
            catalog: catalog.map(str::to_string),
            schema: schema.map(str::to_string),
        }
    }

    /// The session catalog and schema the statement's names resolve in.
    pub fn namespace(&self) -> (Option<&str>, Option<&str>) {
        (self.catalog.as_deref(), self.schema.as_deref())
    }

    /// The statement as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// What the statement does.
    pub fn kind(&self) -> &Kind {
        &self.kind
    }

    /// The tokens' text joined by single spaces, verbatim but for reserved
    /// keywords, in lower case: equal for two statements exactly when
    /// Trino's parser sees the same tokens and every name keeps its case.
    pub fn canonical(&self) -> String {
        let mut out = String::with_capacity(self.text.len());
        for t in &self.tokens {
            if !out.is_empty() {
                out.push(' ');
            }
            let text = t.text(&self.text);
            if t.kind == TokenKind::Word && is_reserved(text) {
                out.push_str(&text.to_ascii_lowercase());
            } else {
                out.push_str(text);
            }
        }
        out
    }

    /// Whether running the statement twice is harmless: a query, or a
    /// `SHOW`, `DESCRIBE` or plain `EXPLAIN`.
    pub fn is_plain_read(&self) -> bool {
        matches!(self.kind, Kind::Query | Kind::Inspect)
    }

    /// Whether the statement returns rows (else clients run it as an update).
    pub fn has_result_set(&self) -> bool {
        self.first_word().is_none_or(|w| !NO_RESULT_SET.contains(&w.to_ascii_lowercase().as_str()))
    }

    /// What the statement may change, or `None` for reads and session
    /// statements.
    pub fn write_scope(&self) -> Option<WriteScope> {
        match &self.kind {
            Kind::Query | Kind::Inspect | Kind::Session => None,
            Kind::Write(Some(t)) => Some(WriteScope::Tables(vec![t.clone()])),
            Kind::Write(None) | Kind::Other => Some(WriteScope::All),
        }
    }

    /// Every name in the statement, as Trino resolves names: unquoted
    /// words in lower case, quoted identifiers unquoted and lower-cased.
    fn names(&self) -> impl Iterator<Item = String> + '_ {
        self.tokens.iter().filter_map(|t| match t.kind {
            TokenKind::Word => Some(t.text(&self.text).to_ascii_lowercase()),
            TokenKind::QuotedIdentifier => Some(unquote(t.text(&self.text)).to_lowercase()),
            _ => None,
        })
    }

    /// The first non-deterministic function the statement names, if any.
    /// Quoted names count too: Trino resolves `"now"()` to `now()`.
    pub fn non_deterministic(&self) -> Option<&'static str> {
        self.names().find_map(|name| NON_DETERMINISTIC.iter().find(|n| **n == name).copied())
    }

    /// Whether the statement names a catalog or schema whose contents
    /// depend on who asks (`system`, `information_schema`) anywhere.
    pub fn names_per_user_relations(&self) -> bool {
        self.names().any(|name| name == "system" || name == "information_schema")
    }

    /// Whether the statement names a `system` catalog or schema (Trino's live
    /// tables) anywhere.
    pub fn names_system(&self) -> bool {
        self.names().any(|name| name == "system")
    }

    /// Whether the statement reads a table function or a `TABLE t`
    /// relation, which a plain parser may not list among its tables.
    pub fn uses_table_keyword(&self) -> bool {
        self.tokens.iter().any(|t| t.kind == TokenKind::Word && lexer::is_keyword(t.text(&self.text), "table"))
    }

    /// Byte offsets of the `?` parameter markers, in order.
    pub fn markers(&self) -> Vec<usize> {
        self.tokens.iter().filter(|t| t.kind == TokenKind::Parameter).map(|t| t.start).collect()
    }

    fn first_word(&self) -> Option<&str> {
        first_word(&self.text, &self.tokens)
    }

    /// The statement's syntax tree, as the SQL parser DataFusion uses reads
    /// it; `None` if it does not parse. Parsed from the canonical text, so
    /// comments and line ends are Trino's. Text that parser reads and
    /// Trino's grammar refuses is `None` too: a `;` outside quotes (a
    /// separator to that parser), `LIMIT n OFFSET m` (Trino takes `OFFSET`
    /// first only) and `LIMIT m, n`, a trailing comma, a backquoted or empty
    /// quoted name.
    pub fn syntax(&self) -> Option<Vec<sqlparser::ast::Statement>> {
        let text = |t: &Token| t.text(&self.text);
        let word = |t: &Token, w: &str| t.kind == TokenKind::Word && text(t).eq_ignore_ascii_case(w);
        if self.tokens.iter().any(|t| t.kind == TokenKind::Symbol && text(t) == ";") {
            return None;
        }
        // `LIMIT n OFFSET m` and MySQL's `LIMIT m, n`.
        let limit_then_more = self.tokens.windows(3).any(|w| {
            word(&w[0], "limit")
                && (matches!(w[1].kind, TokenKind::Integer | TokenKind::Parameter) || word(&w[1], "all"))
                && (word(&w[2], "offset") || text(&w[2]) == ",")
        });
        // A comma before `FROM` or `)`.
        let trailing_comma =
            self.tokens.windows(2).any(|w| text(&w[0]) == "," && (word(&w[1], "from") || text(&w[1]) == ")"));
        // `` `name` `` and `""` (Trino: a zero-length delimited identifier).
        let odd_name = |t: &Token| {
            t.kind == TokenKind::BackquotedIdentifier || (t.kind == TokenKind::QuotedIdentifier && text(t) == "\"\"")
        };
        if limit_then_more || trailing_comma || self.tokens.iter().any(odd_name) {
            return None;
        }
        Parser::parse_sql(&GenericDialect {}, &self.canonical()).ok()
    }

    /// For a plain `EXPLAIN` of a query (no `ANALYZE`, type or format): the
    /// query.
    pub fn explained(&self) -> Option<Statement> {
        if self.kind != Kind::Inspect {
            return None;
        }
        let mut statements = self.syntax()?;
        if statements.len() != 1 {
            return None;
        }
        match statements.remove(0) {
            sqlparser::ast::Statement::Explain {
                describe_alias: sqlparser::ast::DescribeAlias::Explain,
                analyze: false,
                verbose: false,
                query_plan: false,
                estimate: false,
                statement,
                format: None,
                options: None,
            } if matches!(statement.as_ref(), sqlparser::ast::Statement::Query(_)) => {
                // The text after `EXPLAIN` as the client wrote it: the
                // parser's own printing of it may read differently (it
                // writes `OFFSET 1 LIMIT 2` as `LIMIT 2 OFFSET 1`).
                let rest = &self.text[self.tokens.get(1)?.start..];
                let inner = Statement::parse(rest, self.catalog.as_deref(), self.schema.as_deref());
                (inner.kind == Kind::Query).then_some(inner)
            }
            _ => None,
        }
    }

    /// Every relation the statement names, qualified; `None` if it does not
    /// parse. Not complete for `TABLE t`, table functions and views: the
    /// engine's own account of what the statement read is the authority.
    pub fn tables(&self) -> Option<Vec<String>> {
        let statements = self.syntax()?;
        let (catalog, schema) = self.namespace();
        let mut out = Vec::new();
        for s in &statements {
            let _ = visit_relations(s, |name| {
                let parts: Vec<String> =
                    name.0.iter().map(|p| p.as_ident().map_or_else(|| p.to_string(), |i| i.value.clone())).collect();
                out.push(qualify(&parts, catalog, schema));
                ControlFlow::<()>::Continue(())
            });
        }
        // CTE names are relations too; harmless extra names.
        out.sort();
        out.dedup();
        Some(out)
    }

    /// For `INSERT INTO t [(columns)] VALUES (...)`: the table, and for each
    /// `?` in order, the target column (by name, or by position when the
    /// statement lists none). Trino cannot type those parameters itself.
    pub fn insert_targets(&self) -> Option<(String, Vec<Target>)> {
        use sqlparser::ast::{Expr, SetExpr, Statement, TableObject, Value};
        let mut statements = Parser::parse_sql(&GenericDialect {}, &self.canonical()).ok()?;
        let Some(Statement::Insert(insert)) = statements.pop() else { return None };
        let TableObject::TableName(table) = &insert.table else { return None };
        let SetExpr::Values(values) = insert.source.as_ref()?.body.as_ref() else { return None };
        let mut targets = Vec::new();
        for row in &values.rows {
            for (i, e) in row.content.iter().enumerate() {
                if let Expr::Value(v) = e
                    && matches!(&v.value, Value::Placeholder(p) if p == "?")
                {
                    targets.push(match insert.columns.get(i) {
                        Some(c) => Target::Name(c.to_string().trim_matches('"').to_ascii_lowercase()),
                        None => Target::Position(i),
                    });
                }
            }
        }
        Some((table.to_string(), targets))
    }
}

/// An `INSERT` parameter's target column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Name(String),
    Position(usize),
}

/// A SQL string literal: `'it''s'`.
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A quoted SQL identifier: `"a ""b"""`.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A qualified name with every part quoted: `"c"."s"."t"`.
pub fn quote_name<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    parts.into_iter().map(quote_ident).collect::<Vec<_>>().join(".")
}

fn first_word<'a>(sql: &'a str, tokens: &[Token]) -> Option<&'a str> {
    tokens
        .iter()
        .find(|t| !(t.kind == TokenKind::Symbol && t.text(sql) == "("))
        .filter(|t| t.kind == TokenKind::Word)
        .map(|t| t.text(sql))
}

/// The identifier a quoted identifier stands for.
fn unquote(quoted: &str) -> String {
    quoted[1..quoted.len().saturating_sub(1).max(1)].replace("\"\"", "\"")
}

/// `catalog.schema.name` of a relation name, in lower case as Trino
/// resolves it (quoted or not), qualified by the session's catalog and
/// schema.
pub fn qualify(parts: &[String], catalog: Option<&str>, schema: Option<&str>) -> String {
    let parts: Vec<String> = parts.iter().map(|p| p.to_lowercase()).collect();
    let (c, s) = (catalog.unwrap_or("").to_lowercase(), schema.unwrap_or("").to_lowercase());
    match parts.as_slice() {
        [t] => format!("{c}.{s}.{t}"),
        [sc, t] => format!("{c}.{sc}.{t}"),
        _ => parts.join("."),
    }
}

fn classify(sql: &str, tokens: &[Token], catalog: Option<&str>, schema: Option<&str>) -> Kind {
    let words: Vec<String> = tokens
        .iter()
        .skip_while(|t| t.kind == TokenKind::Symbol && t.text(sql) == "(")
        .take(6)
        .map(|t| if t.kind == TokenKind::Word { t.text(sql).to_ascii_lowercase() } else { String::new() })
        .collect();
    let w = |i: usize| words.get(i).map(String::as_str).unwrap_or("");
    // Where the target name starts, for the writes that name one.
    let target_at = |skip: &[&str]| -> Option<String> {
        let start = tokens.iter().position(|t| t.kind != TokenKind::Symbol || t.text(sql) != "(")?;
        let mut i = start;
        // The leading keywords, then optional IF [NOT] EXISTS.
        for k in skip {
            if !tokens.get(i).is_some_and(|t| t.kind == TokenKind::Word && lexer::is_keyword(t.text(sql), k)) {
                return None;
            }
            i += 1;
        }
        for k in ["if", "not", "exists"] {
            if tokens.get(i).is_some_and(|t| t.kind == TokenKind::Word && lexer::is_keyword(t.text(sql), k)) {
                i += 1;
            }
        }
        let parts = name_at(sql, tokens, i)?;
        Some(qualify(&parts, catalog, schema))
    };
    let write = |skip: &[&str]| Kind::Write(target_at(skip));
    match (w(0), w(1), w(2)) {
        ("select" | "with" | "values" | "table", _, _) => Kind::Query,
        ("show" | "describe" | "desc", _, _) => Kind::Inspect,
        ("explain", "analyze", _) => Kind::Other,
        ("explain", _, _) => Kind::Inspect,
        ("use", _, _) | ("reset", "session", _) => Kind::Session,
        ("set", "session", "authorization") => Kind::Other,
        ("set", "session" | "time" | "path", _) => Kind::Session,
        ("insert", "into", _) => write(&["insert", "into"]),
        ("update", _, _) => write(&["update"]),
        ("delete", "from", _) => write(&["delete", "from"]),
        ("merge", "into", _) => write(&["merge", "into"]),
        ("truncate", "table", _) => write(&["truncate", "table"]),
        ("refresh", "materialized", "view") => write(&["refresh", "materialized", "view"]),
        ("analyze", _, _) => write(&["analyze"]),
        ("create" | "drop" | "alter", "table" | "view", _) => write(&[w(0), w(1)]),
        ("create" | "drop" | "alter", "materialized", "view") => write(&[w(0), "materialized", "view"]),
        ("create", "or", "replace") => match (w(3), w(4)) {
            ("table" | "view", _) => write(&["create", "or", "replace", w(3)]),
            ("materialized", "view") => write(&["create", "or", "replace", "materialized", "view"]),
            _ => Kind::Write(None),
        },
        ("comment", "on", "table" | "view") => write(&["comment", "on", w(2)]),
        ("comment", "on", "column") => {
            // `COMMENT ON COLUMN t.c`: the table is the name without its last part.
            let at = tokens.iter().position(|t| t.kind == TokenKind::Word && lexer::is_keyword(t.text(sql), "column"));
            let table = at.and_then(|i| name_at(sql, tokens, i + 1)).and_then(|mut parts| {
                parts.pop();
                (!parts.is_empty()).then(|| qualify(&parts, catalog, schema))
            });
            Kind::Write(table)
        }
        ("create" | "drop" | "alter" | "comment" | "insert" | "delete" | "merge" | "truncate" | "refresh", _, _) => {
            Kind::Write(None)
        }
        _ => Kind::Other,
    }
}

/// The dotted name starting at token `i`: its parts, unquoted.
fn name_at(sql: &str, tokens: &[Token], mut i: usize) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    loop {
        let t = tokens.get(i)?;
        parts.push(match t.kind {
            TokenKind::Word => t.text(sql).to_string(),
            TokenKind::QuotedIdentifier => unquote(t.text(sql)),
            _ => return None,
        });
        match tokens.get(i + 1) {
            Some(dot) if dot.kind == TokenKind::Symbol && dot.text(sql) == "." => i += 2,
            _ => return Some(parts),
        }
    }
}

#[cfg(test)]
mod tests;
