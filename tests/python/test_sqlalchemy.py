"""The `flightdeck://` SQLAlchemy dialect (clients/python), as Superset uses it."""

import sqlalchemy as sa

from conftest import PASSWORD, USER
from test_adbc import trino_rows


def engine(flightdeck):
    port = flightdeck.rsplit(":", 1)[1]
    return sa.create_engine(f"flightdeck://{USER}:{PASSWORD}@127.0.0.1:{port}/tpch/tiny")


def test_reflection_through_flight_sql_metadata(flightdeck, trino_cursor):
    insp = sa.inspect(engine(flightdeck))
    schemas = insp.get_schema_names()
    assert "tiny" in schemas and "sf1" in schemas
    assert insp.get_table_names(schema="tiny") == sorted(r[0] for r in trino_rows(trino_cursor, "SHOW TABLES FROM tpch.tiny")[1])
    columns = insp.get_columns("nation", schema="tiny")
    want = trino_rows(trino_cursor, "SHOW COLUMNS FROM tpch.tiny.nation")[1]
    assert [c["name"] for c in columns] == [r[0] for r in want]
    assert [str(c["type"]).lower() for c in columns] == ["bigint", "varchar(25)", "bigint", "varchar(152)"]
    assert insp.get_pk_constraint("nation", schema="tiny")["constrained_columns"] == []


def test_queries_compile_to_trino_sql_and_bind_parameters(flightdeck, trino_cursor):
    e = engine(flightdeck)
    with e.connect() as conn:
        nation = sa.Table("nation", sa.MetaData(), autoload_with=conn, schema="tiny")
        q = sa.select(nation.c.regionkey, sa.func.count().label("n")).group_by(nation.c.regionkey).order_by(nation.c.regionkey)
        got = [list(r) for r in conn.execute(q)]
        assert got == trino_rows(trino_cursor, "SELECT regionkey, count(*) FROM tpch.tiny.nation GROUP BY 1 ORDER BY 1")[1]
        row = conn.execute(sa.text("SELECT name FROM nation WHERE nationkey = :k"), {"k": 3}).one()
        assert row[0] == "CANADA"
