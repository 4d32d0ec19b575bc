"""Trino's own JDBC driver (io.trino:trino-jdbc), unchanged, against
Flightdeck's Trino-protocol port (HTTPS, password) and against Trino
directly: tests/jdbc/TrinoJdbcCheck.java prints what the driver saw as one
JSON object, and the two must be equal apart from the scratch tables' names."""

import concurrent.futures
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import PASSWORD, ROOT, USER

JAR = os.environ.get("FLIGHTDECK_TRINO_JDBC_JAR", "")


def run_check(url, password, table):
    """TrinoJdbcCheck's JSON, with `table` written as TABLE."""
    java = shutil.which("java")
    assert java and JAR and Path(JAR).exists(), "scripts/test.sh provides java and the driver (FLIGHTDECK_TRINO_JDBC_JAR)"
    out = subprocess.run(
        [java, "-cp", JAR, str(ROOT / "tests/jdbc/TrinoJdbcCheck.java"), url, USER, password, table],
        capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1].replace(table, "TABLE"))


def check_absolute(got):
    """What Trino answers, written out: the comparison is not of two empty results."""
    assert got["product"] == "Trino" and got["version"] == "476"
    assert {"memory", "system", "tpch"} <= {r[0] for r in got["catalogs"]}
    assert ["tpch", "tiny"] in got["schemas"]
    assert ["tpch", "tiny", "nation", "TABLE"] in got["tables"]
    assert [r[:3] for r in got["columns"]] == [
        ["nationkey", "bigint", "-5"], ["name", "varchar(25)", "12"],
        ["regionkey", "bigint", "-5"], ["comment", "varchar(152)", "12"],
    ]
    assert len(got["nation"]["rows"]) == 25 and got["nation"]["rows"][0] == ["0", "ALGERIA", "0"]
    assert got["count"] == [["25"]]
    assert [c[1] for c in got["types"]["meta"]] == [
        "bigint", "varchar", "decimal(10,3)", "double", "date", "timestamp(3)", "boolean"]
    assert [v[0] for v in got["types"]["rows"][0]] == [
        "-9223372036854775808", "h\u00e9llo", "12.345", "0.1", "2024-02-29", "2024-01-31 12:34:56.123", "true"]
    assert got["types"]["rows"][2] == [[None, None, None]] * 7
    assert [v[0] for v in got["zones"]["rows"][0]] == ["2024-07-01 00:00:00.123 America/New_York", "01:02:03.000000000001"]
    assert got["zones"]["rows"][1][0][0] == "2024-01-01 00:00:00.000 +05:30"
    assert got["prepared"] == {
        "first": [["CHINA"], ["INDIA"], ["INDONESIA"], ["JAPAN"], ["VIETNAM"]],
        "again": [["ROMANIA"], ["RUSSIA"], ["UNITED KINGDOM"]],
    }
    assert got["prepared_meta"] == {
        "columns": [["name", "varchar(25)", 12, 25, 0, "java.lang.String", 2]], "parameters": ["bigint", "bigint"]}
    assert got["create"] == [False, 0]
    assert got["insert_count"] == 2
    assert got["prepared_insert"] == {"count": 1, "batch": [1, 1]}
    assert [r[0] for r in got["after_insert"]] == ["1", "2", "3", "4", "5"]
    assert got["missing_table"]["error"][2] == 46  # TABLE_NOT_FOUND
    assert "Table 'TABLE_missing' does not exist" in got["missing_table"]["error"][0]
    assert got["use"] == {"session": ["tpch", "tiny"], "unqualified": [["5"]]}


@pytest.mark.parametrize("explicit_prepare", ["true", "false"], ids=["explicitPrepare", "executeImmediate"])
def test_trino_jdbc_matches_trino(trino_url, trino_protocol, trino_cursor, explicit_prepare):
    port, cert = trino_protocol
    direct = f"jdbc:trino://{trino_url.split('://', 1)[1]}?explicitPrepare={explicit_prepare}"
    proxied = (f"jdbc:trino://localhost:{port}?SSL=true&SSLTrustStorePath={cert}"
               f"&explicitPrepare={explicit_prepare}")
    suffix = "prepare" if explicit_prepare == "true" else "immediate"
    tables = f"memory.default.trino_jdbc_trino_{suffix}", f"memory.default.trino_jdbc_flightdeck_{suffix}"
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        want = pool.submit(run_check, direct, "", tables[0])
        got = pool.submit(run_check, proxied, PASSWORD, tables[1])
        want, got = want.result(), got.result()
    check_absolute(want)
    differences = {k: {"trino": want.get(k), "flightdeck": got.get(k)}
                   for k in sorted(want.keys() | got.keys()) if want.get(k) != got.get(k)}
    assert not differences, "Flightdeck differs from Trino:\n" + "\n".join(
        f"{k}:\n  trino:      {json.dumps(v['trino'], ensure_ascii=False)}\n  flightdeck: {json.dumps(v['flightdeck'], ensure_ascii=False)}"
        for k, v in differences.items())
    trino_cursor.execute(f"SELECT count(*) FROM {tables[1]}")
    assert trino_cursor.fetchall() == [[5]]
