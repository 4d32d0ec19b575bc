"""The `flightdeck://` SQLAlchemy dialect."""

from typing import Any, Dict, List, Optional

from sqlalchemy.engine.url import URL
from trino.sqlalchemy import datatype
from trino.sqlalchemy.dialect import TrinoDialect

TYPE_NAME = b"ARROW:FLIGHT:SQL:TYPE_NAME"


class FlightdeckDialect(TrinoDialect):
    name = "flightdeck"
    driver = "adbc"
    supports_statement_cache = True
    # ADBC's DB-API binds `?` parameters; Flightdeck binds them for Trino.
    paramstyle = "qmark"
    default_paramstyle = "qmark"

    @classmethod
    def import_dbapi(cls):
        import adbc_driver_flightsql.dbapi as dbapi

        return dbapi

    @classmethod
    def dbapi(cls):  # SQLAlchemy 1.4
        return cls.import_dbapi()

    def create_connect_args(self, url: URL):
        tls = str(url.query.get("tls", "false")).lower() in ("1", "true", "yes")
        uri = f"{'grpc+tls' if tls else 'grpc'}://{url.host or '127.0.0.1'}:{url.port or 50051}"
        # Flightdeck keeps the session (catalog, schema) in a cookie.
        db_kwargs = {"adbc.flight.sql.rpc.with_cookie_middleware": "true"}
        if url.username:
            db_kwargs["username"] = url.username
            db_kwargs["password"] = url.password or ""
        parts = [p for p in (url.database or "").split("/") if p]
        self._catalog = parts[0] if parts else None
        self._schema = parts[1] if len(parts) > 1 else None
        # A catalog alone is one session option. Catalog and schema are set
        # by one `USE` in `connect`: as two options, ADBC sends them in two
        # calls and may send the next request before it has stored the
        # first answer's cookie, and the session then lacks the catalog.
        conn_kwargs = {"adbc.connection.catalog": self._catalog} if self._catalog and not self._schema else {}
        return [uri], {"db_kwargs": db_kwargs, "conn_kwargs": conn_kwargs, "autocommit": True}

    def connect(self, *cargs, **cparams):
        conn = super().connect(*cargs, **cparams)
        if self._catalog and self._schema:
            quote = lambda name: '"' + name.replace('"', '""') + '"'
            with conn.cursor() as cur:
                cur.execute(f"USE {quote(self._catalog)}.{quote(self._schema)}")
        return conn

    # Reflection through Flight SQL metadata calls.

    @staticmethod
    def _raw(connection):
        c = connection.connection
        return getattr(c, "dbapi_connection", None) or getattr(c, "connection", c)

    def _objects(self, connection, **kw):
        raw = self._raw(connection)
        return raw.adbc_get_objects(catalog_filter=self._catalog, **kw).read_all().to_pylist()

    def get_schema_names(self, connection, **kw) -> List[str]:
        objs = self._objects(connection, depth="db_schemas")
        return sorted({s["db_schema_name"] for c in objs for s in (c["catalog_db_schemas"] or [])})

    def _tables(self, connection, schema, kinds) -> List[str]:
        objs = self._objects(connection, depth="tables", db_schema_filter=schema or self._schema, table_types_filter=kinds)
        return sorted(
            t["table_name"]
            for c in objs
            for s in (c["catalog_db_schemas"] or [])
            for t in (s["db_schema_tables"] or [])
        )

    def get_table_names(self, connection, schema: Optional[str] = None, **kw) -> List[str]:
        return self._tables(connection, schema, ["TABLE"])

    def get_view_names(self, connection, schema: Optional[str] = None, **kw) -> List[str]:
        return self._tables(connection, schema, ["VIEW"])

    def get_columns(self, connection, table_name: str, schema: Optional[str] = None, **kw) -> List[Dict[str, Any]]:
        raw = self._raw(connection)
        arrow_schema = raw.adbc_get_table_schema(table_name, catalog_filter=self._catalog, db_schema_filter=schema or self._schema)
        columns = []
        for f in arrow_schema:
            type_name = (f.metadata or {}).get(TYPE_NAME, b"varchar").decode()
            columns.append({"name": f.name, "type": datatype.parse_sqltype(type_name), "nullable": f.nullable, "default": None})
        return columns

    def has_table(self, connection, table_name: str, schema: Optional[str] = None, **kw) -> bool:
        return table_name in self._tables(connection, schema, None)

    def get_pk_constraint(self, connection, table_name, schema=None, **kw):
        return {"constrained_columns": [], "name": None}

    def get_foreign_keys(self, connection, table_name, schema=None, **kw):
        return []

    def get_indexes(self, connection, table_name, schema=None, **kw):
        return []

    def get_table_comment(self, connection, table_name, schema=None, **kw):
        return {"text": None}

    def do_rollback(self, dbapi_connection):
        # Trino runs each statement in autocommit; nothing to roll back.
        pass

    def get_isolation_level(self, dbapi_connection):
        return "AUTOCOMMIT"

    def set_isolation_level(self, dbapi_connection, level):
        pass

    def _get_default_schema_name(self, connection):
        return self._schema
