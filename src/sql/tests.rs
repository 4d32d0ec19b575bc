use proptest::prelude::*;

use super::*;

fn st(sql: &str) -> Statement {
    Statement::parse(sql, Some("memory"), Some("default"))
}

#[test]
fn kinds_and_write_targets() {
    let t = |s: &str| Some(WriteScope::Tables(vec![s.to_string()]));
    for (sql, plain_read, result_set, scope) in [
        ("SELECT 1", true, true, None),
        ("((SELECT 1))", true, true, None),
        ("-- c\rSELECT 1", true, true, None),
        ("TABLE t", true, true, None),
        ("SHOW TABLES", true, true, None),
        ("EXPLAIN SELECT 1", true, true, None),
        ("EXPLAIN ANALYZE INSERT INTO t VALUES 1", false, true, Some(WriteScope::All)),
        ("USE tpch.tiny", false, false, None),
        ("SET SESSION query_max_run_time = '1h'", false, false, None),
        ("RESET SESSION query_max_run_time", false, false, None),
        ("SET SESSION AUTHORIZATION bob", false, false, Some(WriteScope::All)),
        ("INSERT INTO t VALUES 1", false, false, t("memory.default.t")),
        ("insert into \"T\" select * from u", false, false, t("memory.default.t")),
        ("/* x */ DELETE FROM s.t WHERE a = 1", false, false, t("memory.s.t")),
        ("UPDATE c.s.t SET a = 1", false, false, t("c.s.t")),
        ("MERGE INTO t USING u ON true WHEN MATCHED THEN DELETE", false, false, t("memory.default.t")),
        ("CREATE TABLE IF NOT EXISTS t AS SELECT * FROM u", false, false, t("memory.default.t")),
        ("CREATE OR REPLACE VIEW v AS SELECT * FROM u", false, false, t("memory.default.v")),
        ("DROP VIEW IF EXISTS v", false, false, t("memory.default.v")),
        ("DROP MATERIALIZED VIEW mv", false, false, t("memory.default.mv")),
        ("ALTER TABLE t ADD COLUMN b int", false, false, t("memory.default.t")),
        ("COMMENT ON COLUMN t.c IS 'x'", false, false, t("memory.default.t")),
        ("TRUNCATE TABLE t", false, false, t("memory.default.t")),
        ("DROP SCHEMA s", false, false, Some(WriteScope::All)),
        ("CALL system.flush()", false, false, Some(WriteScope::All)),
        ("GRANT SELECT ON t TO bob", false, false, Some(WriteScope::All)),
        ("EXECUTE IMMEDIATE 'INSERT INTO t VALUES 1'", false, true, Some(WriteScope::All)),
        ("EXECUTE s USING 1", false, true, Some(WriteScope::All)),
        ("START TRANSACTION", false, false, Some(WriteScope::All)),
        ("", false, true, Some(WriteScope::All)),
    ] {
        let s = st(sql);
        assert_eq!(s.is_plain_read(), plain_read, "{sql}: plain read");
        assert_eq!(s.has_result_set(), result_set, "{sql}: result set");
        assert_eq!(s.write_scope(), scope, "{sql}: write scope");
    }
}

#[test]
fn comment_ends_at_a_lone_carriage_return() {
    // Trino reads a LIMIT here; a reader ending comments at `\n` does not.
    let with = st("SELECT name FROM tpch.tiny.nation ORDER BY name --x\rLIMIT 2");
    let without = st("SELECT name FROM tpch.tiny.nation ORDER BY name --x\nLIMIT 2 --");
    assert_eq!(with.canonical(), "select name from tpch . tiny . nation order by name LIMIT 2");
    assert_eq!(with.canonical(), without.canonical());
    assert_ne!(with.canonical(), st("SELECT name FROM tpch.tiny.nation ORDER BY name").canonical());
}

#[test]
fn canonical_text_keeps_what_trino_distinguishes() {
    let differ = [
        ("SELECT 1 AS Foo", "SELECT 1 AS foo"),
        ("SELECT Name FROM t", "SELECT name FROM t"),
        ("SELECT 1 AS Execute", "SELECT 1 AS execute"),
        ("SELECT 1", "SELECT 1;"),
        ("SELECT 'a'", "SELECT 'A'"),
        ("SELECT U&'\\0041'", "SELECT '\\0041'"),
        ("SELECT X'41'", "SELECT '41'"),
        ("SELECT '--'", "SELECT ''"),
        ("SELECT \"a--b\" FROM t", "SELECT \"a\" FROM t"),
        ("SELECT /* /* */ 1 */", "SELECT 1"),
        ("SELECT 'it''s'", "SELECT 'it' 's'"),
        ("SELECT 'a\r\nb'", "SELECT 'a\nb'"),
    ];
    for (a, b) in differ {
        assert_ne!(st(a).canonical(), st(b).canonical(), "{a:?} vs {b:?}");
    }
    let same = [
        ("SELECT\t1", "SELECT 1"),
        ("SELECT\r\n1 -- c\r\n", "SELECT 1"),
        ("SELECT/* c */1", "SELECT 1"),
        ("SELECT a.b FROM t", "SELECT a . b FROM t"),
        // Reserved keywords cannot name anything: their case is immaterial.
        ("select a FROM t Where a IS NOT null", "SELECT a from t WHERE a is not NULL"),
    ];
    for (a, b) in same {
        assert_eq!(st(a).canonical(), st(b).canonical(), "{a:?} vs {b:?}");
    }
}

#[test]
fn markers_and_functions_outside_literals_and_comments() {
    let s = st("SELECT '?', \"a?\", x -- ?\r, ? FROM t /* ? */ WHERE a = ? AND b = 'now()'");
    assert_eq!(s.markers().len(), 2);
    assert_eq!(s.non_deterministic(), None);
    assert_eq!(st("SELECT \"NOW\"()").non_deterministic(), Some("now"));
    assert_eq!(st("select -- x\rcurrent_user").non_deterministic(), Some("current_user"));
    assert!(st("SELECT * FROM \"SYSTEM\".runtime.queries").names_per_user_relations());
    assert!(st("TABLE t").uses_table_keyword());
}

#[test]
fn a_semicolon_outside_quotes_is_not_a_statement_trino_parses() {
    // The local engine's parser would read `;` as a separator.
    for sql in ["SELECT 1;", "SELECT 1 ; ", "SELECT 1;\r\n-- done", "SELECT 1; SELECT 2", ";SELECT 1"] {
        assert!(st(sql).syntax().is_none(), "{sql:?}");
        assert!(st(sql).tables().is_none(), "{sql:?}");
    }
    for sql in ["SELECT ';'", "SELECT 1 -- ;", "SELECT 1 /* ; */", "SELECT \"a;b\" FROM t"] {
        assert!(st(sql).syntax().is_some(), "{sql:?}");
    }
}

#[test]
fn an_explained_query_is_the_text_after_explain() {
    let inner = st("/* x */ EXPLAIN\r\nSELECT a FROM t OFFSET 1 LIMIT 2 -- done").explained().unwrap();
    assert_eq!(inner.text(), "SELECT a FROM t OFFSET 1 LIMIT 2 -- done");
    assert!(inner.syntax().is_some());
    assert!(st("EXPLAIN ANALYZE SELECT 1").explained().is_none());
    assert!(st("EXPLAIN INSERT INTO t VALUES (1)").explained().is_none());
}

#[test]
fn what_only_the_local_parser_reads_is_not_a_statement_trino_parses() {
    for sql in [
        "SELECT a FROM t LIMIT 5 OFFSET 2",
        "SELECT a FROM t limit ALL offset 2",
        "SELECT a FROM t LIMIT ? OFFSET ?",
        "SELECT a FROM t LIMIT 2, 3",
        "SELECT a, FROM t",
        "SELECT a FROM t WHERE b IN (1, 2,)",
        "SELECT `a` FROM t",
        "SELECT a AS \"\" FROM t",
    ] {
        assert!(st(sql).syntax().is_none(), "{sql:?}");
    }
    for sql in [
        "SELECT a FROM t OFFSET 2 LIMIT 5",
        "SELECT a FROM t OFFSET 2 ROWS LIMIT 5",
        "SELECT * FROM (SELECT a FROM t LIMIT 5) OFFSET 2",
        "SELECT \"limit\", \"offset\" FROM t LIMIT 5",
        "SELECT a, b FROM t WHERE c IN (1, 2) LIMIT 5",
        "SELECT '`a`', 'x, ' FROM t",
        "SELECT a AS \"\"\"\" FROM t",
    ] {
        assert!(st(sql).syntax().is_some(), "{sql:?}");
    }
}

/// Single tokens as Trino reads them.
fn token_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["SELECT", "from", "Foo", "t", "a_b", "LIMIT", "current_user", "x1"])
            .prop_map(str::to_string),
        "[a-z '\\-*/\r\n\"]{0,8}".prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
        "[a-z '\\-*/\r\n\"]{0,8}".prop_map(|s| format!("\"{}\"", s.replace('"', "\"\""))),
        prop::sample::select(vec!["1", "2.5", ".5", "1e3", "?", ",", ".", "(", ")", "<=", "||", "=", "-", "*", "/"])
            .prop_map(str::to_string),
    ]
}

/// What may sit between two tokens without changing Trino's reading.
fn gap_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just(" ".to_string()),
            Just("\t".to_string()),
            Just("\r".to_string()),
            Just("\n".to_string()),
            Just("\r\n".to_string()),
            "[a-z '\"*/]{0,6}".prop_map(|c| format!("--{c}\n")),
            "[a-z '\"*/]{0,6}".prop_map(|c| format!("--{c}\r")),
            "[a-z '\"\r\n-]{0,6}".prop_map(|c| format!("/*{c}*/")),
        ],
        1..3,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Comments, whitespace and line ends between tokens never change the
    /// canonical text, and the tokens are exactly the generated ones.
    #[test]
    fn gaps_between_tokens_do_not_change_the_reading(
        parts in prop::collection::vec((token_strategy(), gap_strategy()), 1..12)
    ) {
        let mut plain = String::new();
        let mut noisy = String::new();
        let mut expected = Vec::new();
        for (i, (tok, gap)) in parts.iter().enumerate() {
            if i > 0 {
                plain.push(' ');
                // `-` then `--c` would read as one longer comment.
                if parts[i - 1].0.ends_with('-') {
                    noisy.push(' ');
                }
                noisy.push_str(gap);
            }
            plain.push_str(tok);
            noisy.push_str(tok);
            expected.push(tok.clone());
        }
        let canonical = st(&noisy).canonical();
        let expected: Vec<String> =
            expected.iter().map(|t| if is_reserved(t) { t.to_ascii_lowercase() } else { t.clone() }).collect();
        prop_assert_eq!(&canonical, &expected.join(" "));
        prop_assert_eq!(&canonical, &st(&plain).canonical());
        prop_assert_eq!(st(&canonical).canonical(), canonical);
    }

    /// The same noise inside a string or quoted identifier changes it.
    #[test]
    fn gaps_inside_literals_change_the_reading(gap in gap_strategy(), quote in prop::sample::select(vec!['\'', '"'])) {
        let bare = format!("SELECT {quote}ab{quote} FROM t");
        let escaped = gap.replace(quote, &format!("{quote}{quote}"));
        let noisy = format!("SELECT {quote}a{escaped}b{quote} FROM t");
        prop_assert_ne!(st(&bare).canonical(), st(&noisy).canonical());
    }

    /// No input panics any reading.
    #[test]
    fn any_text_is_read_without_panicking(sql in "\\PC{0,40}|[-'\"*/?\r\n U&X$`a-z0-9.;(]{0,40}") {
        let s = st(&sql);
        let _ = (s.canonical(), s.kind(), s.has_result_set(), s.write_scope(), s.markers(), s.non_deterministic());
        let canonical = s.canonical();
        prop_assert_eq!(st(&canonical).canonical(), canonical);
    }
}

#[test]
fn insert_parameters_target_columns() {
    let it = |sql: &str| Statement::parse(sql, None, None).insert_targets();
    assert_eq!(
        it("INSERT INTO memory.default.t VALUES (?, 'x', ?)"),
        Some(("memory.default.t".into(), vec![Target::Position(0), Target::Position(2)]))
    );
    assert_eq!(
        it("insert into t (b, a) values (?, ?)"),
        Some(("t".into(), vec![Target::Name("b".into()), Target::Name("a".into())]))
    );
    assert_eq!(it("SELECT ?"), None);
    assert_eq!(
        it("insert into t -- (a)\r(b) values (?)"),
        Some(("t".into(), vec![Target::Name("b".into())])),
        "a comment ends at a lone CR"
    );
}

#[test]
fn quoting_doubles_the_quote() {
    assert_eq!(quote_literal("it's"), "'it''s'");
    assert_eq!(quote_ident("a \"b\""), "\"a \"\"b\"\"\"");
}
