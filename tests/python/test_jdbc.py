"""The Arrow Flight SQL JDBC driver against Flightdeck (tests/jdbc/JdbcCheck.java),
over plain gRPC and TLS, compared with Trino's own answers."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import PASSWORD, ROOT, USER, start_flightdeck
from test_adbc import trino_rows

JAR = os.environ.get("FLIGHTDECK_JDBC_JAR", "")


def run_jdbc(url, table):
    java = shutil.which("java")
    assert java and JAR and Path(JAR).exists(), "scripts/test.sh provides java and the JDBC driver (FLIGHTDECK_JDBC_JAR)"
    out = subprocess.run(
        [java, "--add-opens=java.base/java.nio=ALL-UNNAMED", "-cp", JAR, str(ROOT / "tests/jdbc/JdbcCheck.java"), url, USER, PASSWORD, table],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def check(got, trino_cursor, table):
    def strings(sql):
        return [[None if v is None else str(v) for v in r] for r in trino_rows(trino_cursor, sql)[1]]

    assert got["product"] == "Flightdeck"
    assert got["catalogs"] == strings("SELECT table_cat FROM system.jdbc.catalogs ORDER BY 1")
    assert got["schemas"] == strings("SELECT 'tpch', schema_name FROM tpch.information_schema.schemata WHERE schema_name LIKE 'sf1%' ORDER BY 2")
    assert got["tables"] == strings("SELECT table_name, 'TABLE' FROM tpch.information_schema.tables WHERE table_schema = 'tiny' ORDER BY 1")
    assert got["columns"] == [[r[0], r[1]] for r in strings("SHOW COLUMNS FROM tpch.tiny.nation")]
    assert got["query"] == strings("SELECT nationkey, name, regionkey FROM tpch.tiny.nation ORDER BY nationkey")
    assert got["prepared"] == strings("SELECT name FROM tpch.tiny.nation WHERE regionkey = 2 AND nationkey > 0 ORDER BY name")
    assert got["prepared_again"] == strings("SELECT name FROM tpch.tiny.nation WHERE regionkey = 3 AND nationkey > 0 ORDER BY name")
    assert got["insert_count"] == 2 and got["prepared_insert_count"] == 1
    assert got["inserted"] == [["1", "one"], ["2", "two"]]
    assert got["after_insert"] == [["3"]]
    assert strings(f"SELECT id, name FROM {table} ORDER BY id") == [["1", "one"], ["2", "two"], ["3", "three"]]


def test_jdbc_plain(flightdeck, trino_cursor):
    port = flightdeck.rsplit(":", 1)[1]
    table = "memory.default.jdbc_plain"
    check(run_jdbc(f"jdbc:arrow-flight-sql://127.0.0.1:{port}/?useEncryption=false", table), trino_cursor, table)


@pytest.fixture(scope="module")
def flightdeck_tls(trino_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tls")
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    proc, port = start_flightdeck(trino_url, tmp, "--tls-cert", str(cert), "--tls-key", str(key))
    yield port, cert
    proc.terminate()
    proc.wait(timeout=10)


def test_jdbc_tls(flightdeck_tls, trino_cursor):
    port, cert = flightdeck_tls
    table = "memory.default.jdbc_tls"
    url = f"jdbc:arrow-flight-sql://localhost:{port}/?useEncryption=true&tlsRootCerts={cert}"
    check(run_jdbc(url, table), trino_cursor, table)
