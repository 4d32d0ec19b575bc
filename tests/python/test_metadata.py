"""ADBC metadata calls against Flightdeck, compared with Trino's own answers."""

import pyarrow as pa
import pytest

from test_adbc import trino_rows


def objects(conn, **kw):
    return conn.adbc_get_objects(**kw).read_all().to_pylist()


def test_get_objects_catalogs(conn, trino_cursor):
    got = sorted(c["catalog_name"] for c in objects(conn, depth="catalogs"))
    _, want = trino_rows(trino_cursor, "SELECT table_cat FROM system.jdbc.catalogs ORDER BY 1")
    assert got == [r[0] for r in want]
    assert sorted(c["catalog_name"] for c in objects(conn, depth="catalogs", catalog_filter="tp%")) == ["tpch"]


def test_get_objects_schemas_with_filter(conn, trino_cursor):
    got = objects(conn, depth="db_schemas", catalog_filter="tpch", db_schema_filter="sf1%")
    schemas = sorted(s["db_schema_name"] for s in got[0]["catalog_db_schemas"])
    _, want = trino_rows(trino_cursor, "SELECT schema_name FROM tpch.information_schema.schemata WHERE schema_name LIKE 'sf1%' ORDER BY 1")
    assert schemas == [r[0] for r in want]


def test_get_objects_tables_and_columns(conn, trino_cursor):
    got = objects(conn, depth="all", catalog_filter="tpch", db_schema_filter="tiny", table_name_filter="n%")
    tables = got[0]["catalog_db_schemas"][0]["db_schema_tables"]
    assert [t["table_name"] for t in tables] == ["nation"]
    columns = [(c["column_name"], c["xdbc_type_name"]) for c in tables[0]["table_columns"]]
    _, want = trino_rows(trino_cursor, "SHOW COLUMNS FROM tpch.tiny.nation")
    assert columns == [(r[0], r[1]) for r in want]
    tables_only = objects(conn, depth="tables", catalog_filter="tpch", db_schema_filter="tiny")
    names = sorted(t["table_name"] for t in tables_only[0]["catalog_db_schemas"][0]["db_schema_tables"])
    _, want = trino_rows(trino_cursor, "SHOW TABLES FROM tpch.tiny")
    assert names == sorted(r[0] for r in want)


def test_get_table_schema(conn):
    schema = conn.adbc_get_table_schema("orders", catalog_filter="tpch", db_schema_filter="tiny")
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM tpch.tiny.orders LIMIT 1")
        result = cur.fetch_arrow_table().schema
    assert schema.names == result.names
    assert [f.type for f in schema] == [f.type for f in result]
    assert schema.field("totalprice").type == pa.float64()
    assert schema.field("orderdate").metadata[b"ARROW:FLIGHT:SQL:TYPE_NAME"] == b"date"


def test_get_table_types(conn, trino_cursor):
    _, want = trino_rows(trino_cursor, "SELECT table_type FROM system.jdbc.table_types")
    assert sorted(conn.adbc_get_table_types()) == sorted(r[0] for r in want)


def test_get_info(conn):
    info = conn.adbc_get_info()
    assert info["vendor_name"] == "Flightdeck"
    assert info["vendor_version"]
    assert info["vendor_arrow_version"] == "59"


def test_unknown_table_schema_is_an_error(conn):
    with pytest.raises(Exception, match="(?i)not.found|does not exist"):
        conn.adbc_get_table_schema("no_such_table", catalog_filter="tpch", db_schema_filter="tiny")


def test_switching_catalog_and_schema(flightdeck, trino_cursor):
    import adbc_driver_flightsql.dbapi as flight_sql
    from conftest import PASSWORD, USER

    # The session lives in a cookie: ADBC keeps cookies with this option.
    kwargs = {"username": USER, "password": PASSWORD, "adbc.flight.sql.rpc.with_cookie_middleware": "true"}
    with flight_sql.connect(flightdeck, db_kwargs=kwargs) as c:
        c.adbc_connection.set_options(**{"adbc.connection.catalog": "tpch", "adbc.connection.db_schema": "tiny"})
        assert c.adbc_current_catalog == "tpch"
        assert c.adbc_current_db_schema == "tiny"
        with c.cursor() as cur:
            cur.execute("SELECT count(*) FROM nation")
            assert cur.fetchone() == (25,)
        c.adbc_connection.set_options(**{"adbc.connection.db_schema": "sf1"})
        with c.cursor() as cur:
            cur.execute("SELECT count(*) FROM orders")
            assert list(cur.fetchone()) == trino_rows(trino_cursor, "SELECT count(*) FROM tpch.sf1.orders")[1][0]
