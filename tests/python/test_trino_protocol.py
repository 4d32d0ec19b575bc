"""The `trino` Python client, unchanged, against Flightdeck's Trino-protocol
port (HTTPS, password), compared with the same client on Trino directly."""

import threading
import time

import pytest
import requests
import sqlalchemy
import trino

from conftest import PASSWORD, USER, trino_protocol_connect, trusting
from test_adbc import CORPUS, norm

EXTRA = [
    # Precisions the Python client keeps beyond microseconds are cut to them
    # on both sides; these are the ones it reads exactly.
    "SELECT TIMESTAMP '2024-01-31 12:34:56.123' AS ts3, TIME '01:02:03.123 +05:00' AS ttz,"
    " INTERVAL '14' MONTH AS ym, INTERVAL '-1 02:03:04.005' DAY TO SECOND AS ds",
    # (The client cannot read dates before year 1, from Trino or here.)
    "SELECT DATE '0001-01-01' AS first, DATE '9999-12-31' AS last, CAST(-0.0E0 AS double) AS nz, REAL '3.4028235E38' AS rmax",
    "SELECT 'ünïcödé \U0001F600' AS u, 'tab\tand\r\nCRLF' AS ctl, X'' AS empty, CAST('[1, 2]' AS json) AS j",
]

# Each value's own zone, as the client reads it (a tzinfo per value).
ZONED = (
    "SELECT ts, ARRAY[ts] AS a FROM (VALUES TIMESTAMP '2024-07-01 00:00:00.123 America/New_York',"
    " TIMESTAMP '2024-01-01 00:00:00 +05:30', TIMESTAMP '2024-01-01 00:00:00 UTC', NULL) AS t(ts)"
)


def test_each_value_keeps_its_zone(fd, trino_cursor):
    def zoned(cur):
        cur.execute(ZONED)
        return [(str(ts), str(a)) for ts, a in cur.fetchall()]

    got = zoned(fd)
    assert got == zoned(trino_cursor)
    assert got[0][0] == "2024-07-01 00:00:00.123000-04:00"


def rows_and_description(cur, sql, params=None):
    cur.execute(sql, params) if params is not None else cur.execute(sql)
    rows = [[norm(v) for v in r] for r in cur.fetchall()]
    return rows, [tuple(d[:2]) + tuple(d[3:]) for d in cur.description]


@pytest.fixture(scope="module")
def fd(trino_protocol):
    port, cert = trino_protocol
    conn = trino_protocol_connect(port, cert)
    yield conn.cursor()
    conn.close()


@pytest.mark.parametrize("sql", CORPUS + EXTRA)
def test_results_and_types_match_trino(fd, trino_cursor, sql):
    assert rows_and_description(fd, sql) == rows_and_description(trino_cursor, sql)


def test_parameters_both_ways(trino_protocol, trino_url):
    port, cert = trino_protocol
    direct = trino.dbapi.connect(host="127.0.0.1", port=int(trino_url.rsplit(":", 1)[1]), user=USER)
    sql = "SELECT name, ? AS tag, ? AS n FROM tpch.tiny.nation WHERE regionkey = ? AND name LIKE ? ORDER BY name"
    params = ("it's, a tag", 2.5, 1, "%A%")
    want = rows_and_description(direct.cursor(), sql, params)
    assert len(want[0]) == 4
    # EXECUTE IMMEDIATE (the client's default), then PREPARE and EXECUTE
    # with the statement carried in headers (its legacy mode).
    for legacy in (False, True):
        conn = trino_protocol_connect(port, cert, legacy_prepared_statements=legacy)
        cur = conn.cursor()
        assert rows_and_description(cur, sql, params) == want, legacy
        # Executed again with other values, and with a date and a NULL.
        other = rows_and_description(cur, sql, ("x", None, 3, "%"))
        assert [r[0] for r in other[0]] == [r[0] for r in rows_and_description(direct.cursor(), sql, ("x", None, 3, "%"))[0]]
        cur.execute("SELECT count(*) FROM tpch.tiny.orders WHERE orderdate >= ?", (__import__("datetime").date(1998, 1, 1),))
        assert cur.fetchall()[0][0] > 0
        conn.close()


def test_session_properties_catalog_and_schema(trino_protocol):
    port, cert = trino_protocol
    conn = trino_protocol_connect(port, cert, catalog="tpch", schema="tiny")
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM region")
    assert cur.fetchall() == [[5]]
    cur.execute("SET SESSION query_max_run_time = '2h'")
    cur.fetchall()
    assert conn._client_session.properties == {"query_max_run_time": "2h"}
    cur.execute("SHOW SESSION LIKE 'query_max_run_time'")
    assert cur.fetchall()[0][1] == "2h"
    cur.execute("RESET SESSION query_max_run_time")
    cur.fetchall()
    assert conn._client_session.properties == {}
    cur.execute("USE tpch.sf1")
    cur.fetchall()
    assert (conn._client_session.catalog, conn._client_session.schema) == ("tpch", "sf1")
    cur.execute("SELECT count(*) FROM nation")
    assert cur.fetchall() == [[25]]
    conn.close()


def test_errors_are_trinos(fd, trino_cursor):
    for sql in ["SELECT * FROM tpch.tiny.nope", "SELEC 1", "SELECT 1 / 0", "SELECT 1 FROM\r\ntpch.tiny.nation\r\nWHERE x = 1"]:
        errors = []
        for cur in (fd, trino_cursor):
            with pytest.raises(trino.exceptions.TrinoUserError) as e:
                cur.execute(sql)
                cur.fetchall()
            errors.append((e.value.error_name, e.value.error_type, e.value.message, e.value.error_location))
        assert errors[0] == errors[1], sql


def test_cancel_stops_the_trino_query(trino_protocol, trino_cursor):
    port, cert = trino_protocol
    marker = f"cancel_{time.time_ns()}"
    conn = trino_protocol_connect(port, cert)
    cur = conn.cursor()
    failure = []

    def run():
        try:
            cur.execute(f"SELECT count(*) FROM tpch.sf100.lineitem WHERE comment <> '{marker}'")
            cur.fetchall()
        except Exception as e:  # the client raises once cancelled
            failure.append(e)

    t = threading.Thread(target=run)
    t.start()
    state_sql = (f"SELECT state, error_code FROM system.runtime.queries WHERE query LIKE '%{marker}%'"
                 " AND query NOT LIKE '%system.runtime%'")
    # Once the statement is submitted (Trino runs it, and the client holds
    # the URI to cancel with).
    for _ in range(100):
        trino_cursor.execute(state_sql)
        if trino_cursor.fetchall() and getattr(getattr(cur, "_query", None), "_next_uri", None):
            break
        time.sleep(0.1)
    cur.cancel()
    t.join(30)
    assert not t.is_alive()
    for _ in range(100):
        trino_cursor.execute(state_sql)
        states = trino_cursor.fetchall()
        if states and states[0][0] == "FAILED":
            break
        time.sleep(0.1)
    assert states == [["FAILED", "USER_CANCELED"]]


def test_route_headers_and_password(trino_protocol):
    port, cert = trino_protocol
    url = f"https://localhost:{port}/v1/statement"
    sql = f"SELECT count(*) FROM tpch.tiny.customer WHERE custkey > {time.time_ns() % 1000}"
    seen = []
    for _ in range(2):
        r = requests.post(url, data=sql, auth=(USER, PASSWORD), verify=str(cert), headers={"X-Trino-User": USER})
        route = None
        while True:
            assert r.status_code == 200
            if "X-Flightdeck-Route" in r.headers:
                route = (r.headers["X-Flightdeck-Route"], r.headers["X-Flightdeck-Cache"])
            if "nextUri" not in r.json():
                break
            r = requests.get(r.json()["nextUri"], auth=(USER, PASSWORD), verify=str(cert))
        seen.append(route)
    assert seen == [("trino", "miss"), ("cache", "hit")]
    assert requests.post(url, data=sql, auth=(USER, "wrong"), verify=str(cert)).status_code == 401
    assert requests.post(url, data=sql, verify=str(cert)).status_code == 401


def test_sqlalchemy_stock_dialect(trino_protocol):
    port, cert = trino_protocol
    engine = sqlalchemy.create_engine(
        f"trino://{USER}:{PASSWORD}@localhost:{port}/tpch/tiny?protocol=https",
        connect_args={"http_session": trusting(cert), "http_scheme": "https"},
    )
    inspector = sqlalchemy.inspect(engine)
    assert "tiny" in inspector.get_schema_names()
    assert "nation" in inspector.get_table_names(schema="tiny")
    assert [c["name"] for c in inspector.get_columns("nation", schema="tiny")] == ["nationkey", "name", "regionkey", "comment"]
    with engine.connect() as c:
        assert c.execute(sqlalchemy.text("SELECT count(*) FROM nation WHERE regionkey = :r"), {"r": 1}).scalar() == 5
    engine.dispose()
