"""Drives a headless Superset against Flightdeck through Superset's REST API.

    <superset venv>/bin/python tests/superset/check_superset.py <sqlalchemy uri> <trino port> [<server certificate>]

Starts Superset (SQLite metadata database, in a temporary folder), adds a
database with the URI, and checks the connection test, schema, table and
column listing, a SQL Lab query and two chart-data requests (a bar chart
over tpch.tiny.nation, a monthly time series over tpch.tiny.orders with a
time range filter) against Trino's own rows. Exits non-zero with a message
on any failure.

The URI is either `flightdeck://...` (Flight SQL, through clients/python's
dialect) or `trino://...` (Flightdeck's Trino-protocol port, through the
`trino` package's stock dialect and Superset's own Trino engine spec). For
the latter, Superset is kept from importing clients/python's package at all,
and HTTPS and the server certificate are asked for the way a Superset user
would: the database's extra
`{"engine_params": {"connect_args": {"http_scheme": "https", "verify": ...}}}`
(the dialect reads no scheme from the URI).
"""

import calendar
import datetime
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import trino

URI, TRINO_PORT = sys.argv[1], int(sys.argv[2])
CERT = sys.argv[3] if len(sys.argv) > 3 else None
STOCK_TRINO = URI.startswith("trino://")
BIN = Path(sys.executable).parent
# What the database's `extra` holds: for the stock dialect, HTTPS and the
# certificate Flightdeck's port presents (the trino client's `verify`).
EXTRA = json.dumps({"engine_params": {"connect_args": {"http_scheme": "https", "verify": CERT}}} if CERT else {})


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def trino_rows(sql):
    """Trino's own answer, straight from Trino (in tpch.tiny, for the
    statements Superset generates with unqualified table names)."""
    cur = trino.dbapi.connect(host="127.0.0.1", port=TRINO_PORT, user="alice", catalog="tpch", schema="tiny").cursor()
    cur.execute(sql.strip().rstrip(";"))  # Superset shows its statements with a ';'
    return [list(r) for r in cur.fetchall()]


def epoch_ms(day):
    """A date as Superset's JSON results carry temporal values."""
    return calendar.timegm(day.timetuple()) * 1000 if isinstance(day, (datetime.date, datetime.datetime)) else day


def chart_rows(body, keys):
    """The rows of a chart-data answer's first query, as lists in `keys` order."""
    return [[r[k] for k in keys] for r in body["result"][0]["data"]]


class Api:
    def __init__(self, base):
        self.base, self.token = base, None

    def call(self, method, path, body=None):
        req = urllib.request.Request(self.base + path, method=method, data=None if body is None else json.dumps(body).encode())
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")


def check(cond, what, detail=""):
    if not cond:
        raise SystemExit(f"FAILED: {what}\n{detail}")
    print(f"ok: {what}")


def main():
    home = Path(tempfile.mkdtemp(prefix="superset-"))
    config = home / "superset_config.py"
    config.write_text(
        f"SECRET_KEY = 'flightdeck-test-secret-key-0123456789'\n"
        f"SQLALCHEMY_DATABASE_URI = 'sqlite:///{home}/superset.db'\n"
        "WTF_CSRF_ENABLED = False\nTALISMAN_ENABLED = False\nPREVENT_UNSAFE_DB_CONNECTIONS = False\n"
        "SQLLAB_CTAS_NO_LIMIT = True\nFEATURE_FLAGS = {}\n"
        # Stock Trino dialect: clients/python's package, if it is installed
        # in this environment, must play no part (importing it fails).
        + ("import sys\nsys.modules['flightdeck_sqlalchemy'] = None\n" if STOCK_TRINO else "")
    )
    env = dict(os.environ, SUPERSET_CONFIG_PATH=str(config), FLASK_APP="superset", SUPERSET_HOME=str(home))
    if CERT:
        # requests lets these override the session's own `verify` (the
        # certificate given in the database's extra).
        for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            env.pop(name, None)
    superset = str(BIN / "superset")
    for args in (["db", "upgrade"], ["fab", "create-admin", "--username", "admin", "--firstname", "a", "--lastname", "b",
                                     "--email", "a@example.org", "--password", "admin"], ["init"]):
        r = subprocess.run([superset, *args], env=env, capture_output=True, text=True)
        check(r.returncode == 0, f"superset {args[0]}", r.stdout[-2000:] + r.stderr[-3000:])
    port = free_port()
    log = open(home / "superset.log", "w")
    server = subprocess.Popen([superset, "run", "-h", "127.0.0.1", "-p", str(port), "--with-threads"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        api = Api(f"http://127.0.0.1:{port}")
        deadline = time.time() + 120
        while True:
            try:
                if urllib.request.urlopen(api.base + "/health", timeout=2).status == 200:
                    break
            except OSError:
                pass
            check(server.poll() is None and time.time() < deadline, "superset started", (home / "superset.log").read_text()[-3000:])
            time.sleep(1)
        status, body = api.call("POST", "/api/v1/security/login", {"username": "admin", "password": "admin", "provider": "db", "refresh": True})
        check(status == 200, "login", body)
        api.token = body["access_token"]

        database = {"database_name": "flightdeck", "sqlalchemy_uri": URI, "extra": EXTRA}
        status, body = api.call("POST", "/api/v1/database/test_connection/", database)
        check(status == 200, "connection test", body)
        status, body = api.call("POST", "/api/v1/database/", {**database, "expose_in_sqllab": True})
        check(status == 201, "database added", body)
        db = body["id"]
        status, body = api.call("GET", f"/api/v1/database/{db}")
        backend = body.get("result", {}).get("backend")
        check(status == 200 and backend == ("trino" if STOCK_TRINO else "flightdeck"), f"engine spec for {backend}", body)

        if STOCK_TRINO:
            status, body = api.call("GET", f"/api/v1/database/{db}/catalogs/")
            want = sorted(r[0] for r in trino_rows("SHOW CATALOGS"))
            check(status == 200 and sorted(body.get("result", [])) == want, "catalog listing", body)
        status, body = api.call("GET", f"/api/v1/database/{db}/schemas/")
        want = sorted(r[0] for r in trino_rows("SHOW SCHEMAS FROM tpch"))
        check(status == 200 and "tiny" in body["result"] and sorted(body["result"]) == want, "schema listing", body)
        status, body = api.call("GET", f"/api/v1/database/{db}/tables/?q=(schema_name:tiny)")
        tables = sorted(t["value"] for t in body.get("result", []))
        want = sorted(r[0] for r in trino_rows("SHOW TABLES FROM tpch.tiny"))
        check(status == 200 and tables == want, "table listing", body)
        status, body = api.call("GET", f"/api/v1/database/{db}/table_metadata/?name=nation&schema=tiny")
        if status == 404:
            status, body = api.call("GET", f"/api/v1/database/{db}/table/nation/tiny/")
        columns = [c["name"] for c in body.get("columns", [])]
        check(status == 200 and columns == [r[0] for r in trino_rows("SHOW COLUMNS FROM tpch.tiny.nation")], "column listing", body)

        sql = "SELECT regionkey, count(*) AS n FROM nation GROUP BY regionkey ORDER BY regionkey"
        status, body = api.call("POST", "/api/v1/sqllab/execute/", {"database_id": db, "sql": sql, "schema": "tiny", "runAsync": False})
        got = [[r["regionkey"], r["n"]] for r in body.get("data", [])]
        check(status == 200 and got == trino_rows("SELECT regionkey, count(*) FROM tpch.tiny.nation GROUP BY 1 ORDER BY 1"), "SQL Lab query", body)

        status, body = api.call("POST", "/api/v1/dataset/", {"database": db, "schema": "tiny", "table_name": "nation"})
        check(status == 201, "dataset added", body)
        dataset = body["id"]
        query = {
            "datasource": {"id": dataset, "type": "table"},
            "queries": [{
                "columns": ["regionkey"],
                "metrics": [{"expressionType": "SIMPLE", "column": {"column_name": "nationkey"}, "aggregate": "COUNT", "label": "n"}],
                "orderby": [["regionkey", True]],
                "row_limit": 100,
            }],
            "result_format": "json",
            "result_type": "full",
        }
        status, body = api.call("POST", "/api/v1/chart/data", query)
        rows = body.get("result", [{}])[0].get("data", []) if status == 200 else []
        got = sorted([r["regionkey"], r["n"]] for r in rows)
        check(status == 200 and got == trino_rows("SELECT regionkey, count(nationkey) FROM tpch.tiny.nation GROUP BY 1 ORDER BY 1"), "chart data", body)
        # The very statement Superset generated, answered by Trino itself.
        sent = body["result"][0]["query"]
        print(sent)
        check(got == sorted(trino_rows(sent)), "chart data: Superset's statement on Trino", sent)

        # A time series: orders per month of 1995 (a time range filter and a
        # time grain on a DATE column), with the largest order of each month.
        status, body = api.call("POST", "/api/v1/dataset/", {"database": db, "schema": "tiny", "table_name": "orders"})
        check(status == 201, "dataset added (orders)", body)
        query = {
            "datasource": {"id": body["id"], "type": "table"},
            "queries": [{
                "columns": [{"columnType": "BASE_AXIS", "expressionType": "SQL", "sqlExpression": "orderdate",
                             "label": "orderdate", "timeGrain": "P1M"}],
                "metrics": [
                    {"expressionType": "SIMPLE", "column": {"column_name": "orderkey"}, "aggregate": "COUNT", "label": "orders"},
                    {"expressionType": "SIMPLE", "column": {"column_name": "totalprice"}, "aggregate": "MAX", "label": "largest"},
                ],
                "filters": [{"col": "orderdate", "op": "TEMPORAL_RANGE", "val": "1995-01-01 : 1996-01-01"}],
                "orderby": [[{"expressionType": "SIMPLE", "column": {"column_name": "orderkey"}, "aggregate": "COUNT", "label": "orders"}, False]],
                "row_limit": 1000,
            }],
            "result_format": "json",
            "result_type": "full",
        }
        status, body = api.call("POST", "/api/v1/chart/data", query)
        keys = ["orderdate", "orders", "largest"]
        got = sorted(chart_rows(body, keys)) if status == 200 else None
        want = [[epoch_ms(d), n, p] for d, n, p in trino_rows(
            "SELECT date_trunc('month', orderdate), count(orderkey), max(totalprice) FROM tpch.tiny.orders"
            " WHERE orderdate >= DATE '1995-01-01' AND orderdate < DATE '1996-01-01' GROUP BY 1 ORDER BY 1")]
        check(status == 200 and len(want) == 12 and got == want, "chart data: time series with a time range", body)
        sent = body["result"][0]["query"]
        print(sent)
        check(got == sorted([epoch_ms(v) for v in r] for r in trino_rows(sent)), "time series: Superset's statement on Trino", sent)
        print("superset checks passed")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
