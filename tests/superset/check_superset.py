"""Drives a headless Superset against Flightdeck through Superset's REST API.

    <superset venv>/bin/python tests/superset/check_superset.py <flightdeck sqlalchemy uri> <trino port>

Starts Superset (SQLite metadata database, in a temporary folder), adds a
database with the `flightdeck://` URI, and checks the connection test,
schema, table and column listing, a SQL Lab query and a chart-data request
against Trino's own rows. Exits non-zero with a message on any failure.
"""

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
BIN = Path(sys.executable).parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def trino_rows(sql):
    cur = trino.dbapi.connect(host="127.0.0.1", port=TRINO_PORT, user="alice").cursor()
    cur.execute(sql)
    return [list(r) for r in cur.fetchall()]


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
    )
    env = dict(os.environ, SUPERSET_CONFIG_PATH=str(config), FLASK_APP="superset", SUPERSET_HOME=str(home))
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

        status, body = api.call("POST", "/api/v1/database/test_connection/", {"database_name": "flightdeck", "sqlalchemy_uri": URI})
        check(status == 200, "connection test", body)
        status, body = api.call("POST", "/api/v1/database/", {"database_name": "flightdeck", "sqlalchemy_uri": URI, "expose_in_sqllab": True})
        check(status == 201, "database added", body)
        db = body["id"]

        status, body = api.call("GET", f"/api/v1/database/{db}/schemas/")
        check(status == 200 and "tiny" in body["result"], "schema listing", body)
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
        print("superset checks passed")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
