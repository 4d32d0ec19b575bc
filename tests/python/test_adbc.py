"""Python ADBC against Flightdeck, compared with the trino client talking to
Trino directly on the same queries."""

import datetime as dt
import decimal
import math
import uuid

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import pyarrow as pa
import pytest

from conftest import PASSWORD, USER

# Every mapped type, at precisions both clients represent exactly
# (microseconds at most; the Rust tests cover nanoseconds and beyond).
CORPUS = [
    "SELECT true AS b, TINYINT '-1' AS ti, SMALLINT '2' AS si, 3 AS i, BIGINT '-9223372036854775808' AS bi",
    "SELECT REAL '1.5' AS r, DOUBLE '0.1' AS d, nan() AS n, infinity() AS inf, -infinity() AS ninf",
    "SELECT CAST('12.345' AS decimal(10,3)) AS d1, CAST('99999999999999999999999999999999999999' AS decimal(38,0)) AS d38,"
    " CAST('-0.00000000000000000000000000000000000001' AS decimal(38,38)) AS d38s",
    "SELECT 'héllo' AS v, CAST('ab' AS char(4)) AS c, X'00ff' AS vb, JSON '{\"a\":[1,null]}' AS j",
    "SELECT DATE '2024-02-29' AS d, DATE '1900-01-01' AS old, TIME '12:34:56.123456' AS t6, TIME '00:00:01' AS t0",
    "SELECT TIMESTAMP '2024-01-31 12:34:56.123456' AS ts6, TIMESTAMP '1969-07-20 20:17:40' AS ts0,"
    " TIMESTAMP '2024-07-01 00:00:00.123 America/New_York' AS tzny, TIMESTAMP '2024-01-01 10:00:00.000001 +05:30' AS tzist",
    "SELECT INTERVAL '2' DAY AS ids, INTERVAL '-3' SECOND AS neg, UUID '12151fd2-7586-11e9-8f9e-2a86e4085a59' AS u,"
    " IPADDRESS '2001:db8::1' AS ip",
    "SELECT ARRAY[1, NULL, 3] AS a, ARRAY[ARRAY['x'], NULL] AS aa, MAP(ARRAY['k1', 'k2'], ARRAY[1.5E0, NULL]) AS m,"
    " CAST(ROW(1, 'x', ARRAY[DATE '2024-01-01']) AS ROW(a bigint, b varchar, c array(date))) AS r",
    "SELECT CAST(NULL AS integer) AS ni, CAST(NULL AS varchar) AS nv, CAST(NULL AS array(integer)) AS na,"
    " CAST(NULL AS row(a integer)) AS nr, CAST(NULL AS map(varchar, integer)) AS nm",
    "SELECT * FROM tpch.tiny.nation ORDER BY nationkey",
    "SELECT orderkey, orderdate, totalprice, orderpriority FROM tpch.tiny.orders ORDER BY orderkey LIMIT 2000",
    "SELECT * FROM tpch.tiny.customer WHERE custkey < 0",
]


def norm(v):
    """Brings both clients' Python values to one comparable form."""
    if v is None:
        return None
    if isinstance(v, float) and math.isnan(v):
        return "NaN"
    if isinstance(v, dt.datetime) and v.tzinfo is not None:
        return v.astimezone(dt.timezone.utc)
    if isinstance(v, uuid.UUID):
        return str(v)
    if isinstance(v, dict):  # a map from trino, a row from pyarrow
        return {norm(k): norm(x) for k, x in v.items()}
    if isinstance(v, tuple) and hasattr(v, "_names"):  # trino's NamedRowTuple
        return dict(zip(v._names, (norm(x) for x in v)))
    if isinstance(v, list) and v and all(isinstance(x, tuple) and len(x) == 2 for x in v):
        return {norm(k): norm(x) for k, x in v}  # a map from pyarrow
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    return v


def trino_rows(cur, sql):
    cur.execute(sql)
    rows = cur.fetchall()
    return [c[0] for c in cur.description], [[norm(v) for v in r] for r in rows]


def arrow_rows(table: pa.Table):
    cols = table.to_pydict()
    return table.column_names, [[norm(cols[n][i]) for n in table.column_names] for i in range(table.num_rows)]


@pytest.mark.parametrize("sql", CORPUS)
def test_prepared_path_matches_trino(conn, trino_cursor, sql):
    with conn.cursor() as cur:  # the DB-API always prepares first
        cur.execute(sql)
        table = cur.fetch_arrow_table()
    assert arrow_rows(table) == trino_rows(trino_cursor, sql)
    for f in table.schema:
        assert f.nullable
        assert b"ARROW:FLIGHT:SQL:TYPE_NAME" in f.metadata


@pytest.mark.parametrize("sql", CORPUS)
def test_plain_statement_path_matches_trino(conn, trino_cursor, sql):
    # The low-level API without prepare(): GetFlightInfo(CommandStatementQuery).
    stmt = adbc_driver_manager.AdbcStatement(conn.adbc_connection)
    try:
        stmt.set_sql_query(sql)
        handle, _ = stmt.execute_query()
        table = pa.RecordBatchReader._import_from_c(handle.address).read_all()
    finally:
        stmt.close()
    assert arrow_rows(table) == trino_rows(trino_cursor, sql)


def test_arrow_types(conn):
    with conn.cursor() as cur:
        cur.execute(CORPUS[5] + ", CAST(1.5 AS decimal(20,4)) AS dec, INTERVAL '1' DAY AS i")
        schema = cur.fetch_arrow_table().schema
    assert schema.field("ts6").type == pa.timestamp("us")
    assert schema.field("tzny").type == pa.timestamp("ms", tz="UTC")
    assert schema.field("dec").type == pa.decimal128(20, 4)
    assert schema.field("i").type == pa.duration("ms")
    assert schema.field("tzny").metadata[b"ARROW:FLIGHT:SQL:TYPE_NAME"] == b"timestamp(3) with time zone"


def test_ddl_and_dml_through_execute(conn, trino_cursor):
    table = "memory.default.adbc_test"
    with conn.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {table}")
        cur.execute(f"CREATE TABLE {table} (id bigint, name varchar)")
        cur.execute(f"INSERT INTO {table} VALUES (1, 'one'), (2, 'two')")
        cur.execute(f"SELECT * FROM {table} ORDER BY id")
        got = cur.fetchall()
    assert got == [(1, "one"), (2, "two")]
    assert trino_rows(trino_cursor, f"SELECT * FROM {table} ORDER BY id")[1] == [[1, "one"], [2, "two"]]


def test_errors_keep_trinos_message(conn):
    with conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.ProgrammingError, match="SYNTAX_ERROR"):
            cur.execute("SELEC 1")
        with pytest.raises(adbc_driver_manager.Error, match="TABLE_NOT_FOUND"):
            cur.execute("SELECT * FROM tpch.tiny.nope")


def test_wrong_password_is_refused(flightdeck):
    with pytest.raises(adbc_driver_manager.Error, match="(?i)unauthenticated|invalid user"):
        c = flight_sql.connect(flightdeck, db_kwargs={"username": USER, "password": "wrong"})
        with c.cursor() as cur:
            cur.execute("SELECT 1")


def test_bound_parameters(conn, trino_cursor):
    sql = "SELECT nationkey, name FROM tpch.tiny.nation WHERE regionkey = ? AND name LIKE ? ORDER BY nationkey"
    with conn.cursor() as cur:
        cur.execute(sql, parameters=(1, "%A%"))
        got = arrow_rows(cur.fetch_arrow_table())[1]
        cur.execute(sql, parameters=(3, "%"))
        other = arrow_rows(cur.fetch_arrow_table())[1]
    assert got == trino_rows(trino_cursor, "SELECT nationkey, name FROM tpch.tiny.nation WHERE regionkey = 1 AND name LIKE '%A%' ORDER BY nationkey")[1]
    assert other == trino_rows(trino_cursor, "SELECT nationkey, name FROM tpch.tiny.nation WHERE regionkey = 3 ORDER BY nationkey")[1]
    assert got != other


def test_a_none_parameter_and_row_counts_bind_as_trino_takes_them(conn, trino_cursor):
    # `None` arrives as Arrow's null type; LIMIT and OFFSET take bare numbers.
    sql = "SELECT nationkey FROM tpch.tiny.nation WHERE name IS NOT DISTINCT FROM ? OR regionkey = ? ORDER BY nationkey OFFSET ? LIMIT ?"
    with conn.cursor() as cur:
        cur.execute(sql, parameters=(None, 1, 1, 3))
        got = arrow_rows(cur.fetch_arrow_table())[1]
        cur.execute("SELECT nationkey FROM tpch.tiny.nation ORDER BY nationkey OFFSET ? ROWS FETCH NEXT ? ROWS ONLY", parameters=(20, 2))
        fetched = arrow_rows(cur.fetch_arrow_table())[1]
    want = "SELECT nationkey FROM tpch.tiny.nation WHERE name IS NOT DISTINCT FROM NULL OR regionkey = 1 ORDER BY nationkey OFFSET 1 LIMIT 3"
    assert got == trino_rows(trino_cursor, want)[1]
    assert len(got) == 3
    assert fetched == trino_rows(trino_cursor, "SELECT nationkey FROM tpch.tiny.nation ORDER BY nationkey OFFSET 20 ROWS FETCH NEXT 2 ROWS ONLY")[1]
