"""Flightdeck must read statement text exactly as Trino 476's lexer does.

Each case runs a first statement through Flightdeck (so its result is
cached), then a second one that differs only in a way Trino reads
differently (or, for a few controls, the same), and checks that Flightdeck's
answer to the second, rows and column names, is Trino's own answer, or that
both fail. Both ADBC paths are covered: the DB-API (which prepares first) and
a plain statement (GetFlightInfo straight away, where the cache answers).
"""

import uuid

import adbc_driver_manager
import pyarrow as pa
import pytest

from conftest import PASSWORD, USER
from test_adbc import arrow_rows, trino_rows

NATION = "SELECT name FROM tpch.tiny.nation ORDER BY name"

# (id, first, second). Trino 476 answers, checked by hand:
# `--` ends at `\r` or `\n`; `/* */` does not nest; only space, tab, `\r` and
# `\n` are whitespace (form feed, vertical tab, NBSP, U+2028 are errors);
# a trailing `;` is an error; output names keep the case written, aliased
# (`AS Foo`) or not (`SELECT NAME` answers a column `NAME`).
PAIRS = [
    ("cr-ends-comment-before-limit", NATION, NATION + " --x\rLIMIT 2"),
    ("crlf-ends-comment-before-limit", NATION, NATION + " --x\r\nLIMIT 2"),
    ("cr-ends-comment-before-column", "SELECT 1 AS v", "SELECT 1 AS v --x\r, 2 AS w"),
    ("cr-ends-comment-before-where", NATION,
     "SELECT name FROM tpch.tiny.nation --x\rWHERE regionkey = 1\nORDER BY name"),
    ("block-comments-do-not-nest", NATION, NATION + " /* /* */ LIMIT 2 --*/"),
    ("nested-block-comment-leftover-fails", NATION, NATION + " /* /* */ LIMIT 2 */"),
    ("unterminated-block-comment-fails", "SELECT 1 AS v", "SELECT 1 AS v /* x"),
    ("comment-at-end-without-newline", "SELECT 1 AS v", "SELECT 1 AS v --x"),
    ("dashes-inside-string", "SELECT 'x--' AS v", "SELECT 'x--' AS v, 'y' AS w"),
    ("string-not-comment", "SELECT 1 AS v --, '--' AS w", "SELECT 1 AS v, '--' AS w"),
    ("block-opener-inside-string", "SELECT '/*' AS v", "SELECT '/*' AS v, 1 AS w --*/"),
    ("dashes-inside-quoted-identifier", 'SELECT 1 AS "a--"', 'SELECT 1 AS "a--b"'),
    ("doubled-quote-in-identifier", 'SELECT 1 AS "a"', 'SELECT 1 AS "a""b"'),
    ("alias-case", "SELECT 1 AS foo", "SELECT 1 AS Foo"),
    ("unaliased-column-case", NATION, "SELECT NAME FROM tpch.tiny.nation ORDER BY name"),
    ("quoted-alias-case", 'SELECT 1 AS "foo"', 'SELECT 1 AS "Foo"'),
    ("keyword-case-same-answer", "select name from tpch.tiny.nation order by name", NATION),
    ("trailing-semicolon-fails", "SELECT 1 AS v", "SELECT 1 AS v;"),
    ("trailing-semicolon-and-space-fails", "SELECT 1 AS v", "SELECT 1 AS v ;\n"),
    ("unicode-string", "SELECT '\\0041' AS v", "SELECT U&'\\0041' AS v"),
    ("unicode-string-lower-u", "SELECT '\\0041' AS v", "SELECT u&'\\0041' AS v"),
    ("binary-literal", "SELECT '41' AS v", "SELECT X'41' AS v"),
    ("crlf-inside-string", "SELECT 'a\nb' AS v", "SELECT 'a\r\nb' AS v"),
    ("cr-inside-string", "SELECT 'a\nb' AS v", "SELECT 'a\rb' AS v"),
    ("tab-inside-string", "SELECT 'a b' AS v", "SELECT 'a\tb' AS v"),
    ("crlf-between-tokens-same-answer", "SELECT 1 AS v", "SELECT\r\n1\r\nAS v\r\n"),
    ("tab-between-tokens-same-answer", "SELECT 1 AS v", "SELECT\t1\tAS\tv"),
    ("form-feed-fails", "SELECT 1 AS v", "SELECT 1 AS v\f"),
    ("vertical-tab-fails", "SELECT 1 AS v", "SELECT 1\vAS v"),
    ("nbsp-fails", "SELECT 1 AS v", "SELECT 1\u00a0AS v"),
    ("line-separator-fails", "SELECT 1 AS v", "SELECT 1 AS v\u2028"),
    ("non-ascii-letter-fails", "SELECT 1 AS v", "SELECT 1 AS v\u00e9"),
]


def answer(run, sql):
    """("ok", (columns, rows)) or ("error", message)."""
    try:
        return "ok", run(sql)
    except Exception as e:  # either client's error type
        return "error", str(e)


def prepared(conn, sql, parameters=None):
    with conn.cursor() as cur:  # the DB-API prepares first
        cur.execute(sql, parameters)
        return arrow_rows(cur.fetch_arrow_table())


def plain(conn, sql):
    stmt = adbc_driver_manager.AdbcStatement(conn.adbc_connection)
    try:
        stmt.set_sql_query(sql)
        handle, _ = stmt.execute_query()
        return arrow_rows(pa.RecordBatchReader._import_from_c(handle.address).read_all())
    finally:
        stmt.close()


def update(conn, sql):
    stmt = adbc_driver_manager.AdbcStatement(conn.adbc_connection)
    try:
        stmt.set_sql_query(sql)
        return stmt.execute_update()
    finally:
        stmt.close()


def trino_run(cur, sql):
    """Runs a statement on Trino directly, without reading a result set."""
    cur.execute(sql)
    cur.fetchall()


def assert_same(got, want, sql):
    if want[0] == "error":
        assert got[0] == "error", f"Trino rejects {sql!r} ({want[1]}) but Flightdeck answered {got[1]}"
    else:
        assert got == want, f"{sql!r}"


@pytest.mark.parametrize("path", ["prepared", "plain"])
@pytest.mark.parametrize("first, second", [pytest.param(f, s, id=i) for i, f, s in PAIRS])
def test_second_statement_is_read_as_trino_reads_it(conn, trino_cursor, path, first, second):
    run = {"prepared": prepared, "plain": plain}[path]
    for sql in (first, second):  # the first fills the cache
        assert_same(answer(lambda s: run(conn, s), sql), answer(lambda s: trino_rows(trino_cursor, s), sql), sql)


@pytest.mark.parametrize(
    "sql, parameters, literal",
    [
        # Two markers: the first comment ends at `\r`.
        ("SELECT ? AS v --x\r, ? AS w", (1, 2), "SELECT BIGINT '1' AS v --x\r, BIGINT '2' AS w"),
        # The `?` inside the comment is not a marker; the one after `\r` is.
        ("SELECT 1 AS v --?\r, ? AS w", (2,), "SELECT 1 AS v --?\r, BIGINT '2' AS w"),
    ],
    ids=["cr-ends-comment-between-markers", "marker-after-cr-ended-comment"],
)
def test_parameter_markers_are_found_as_trino_finds_them(conn, trino_cursor, sql, parameters, literal):
    got = answer(lambda s: prepared(conn, s, parameters), sql)
    assert_same(got, answer(lambda s: trino_rows(trino_cursor, s), literal), sql)


def test_write_behind_cr_ended_comment_invalidates_cache(conn, trino_cursor):
    table = f"memory.default.sql_reading_{uuid.uuid4().hex[:12]}"
    trino_run(trino_cursor, f"CREATE TABLE {table} AS SELECT BIGINT '1' AS x")
    try:
        count = f"SELECT count(*) AS n FROM {table}"
        assert answer(lambda s: plain(conn, s), count) == ("ok", (["n"], [[1]]))
        # Trino reads an INSERT here: the comment ends at the lone `\r`.
        update(conn, f"--x\rINSERT INTO {table} VALUES (2)")
        assert trino_rows(trino_cursor, count) == (["n"], [[2]])
        assert answer(lambda s: plain(conn, s), count) == ("ok", (["n"], [[2]]))
    finally:
        trino_run(trino_cursor, f"DROP TABLE {table}")
