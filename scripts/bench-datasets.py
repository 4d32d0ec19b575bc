#!/usr/bin/env python3
"""Accelerated datasets at scale: tpch sf1 lineitem (6 million rows) copied
into Trino's memory catalog, then loaded by a release Flightdeck as an
append dataset on `shipdate`. Measures the initial load from Trino, memory
held against the Arrow size, the start-up from the snapshot on disk, and a
refresh after 10 000 rows are appended. Prints a Markdown table.

    scripts/bench-datasets.py     (Trino from scripts/trino.sh; FLIGHTDECK_BIN or the release build)
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import trino

ROOT = Path(__file__).resolve().parents[1]
TRINO = os.environ.get("FLIGHTDECK_TRINO_URL", "http://127.0.0.1:8080")
BINARY = os.environ.get("FLIGHTDECK_BIN") or str(
    Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release/flightdeck")
TABLE = "memory.default.bench_lineitem"
TOKEN = "bench-admin-token-0123456789"


def sql(query):
    host, port = TRINO.removeprefix("http://").split(":")
    cur = trino.dbapi.connect(host=host, port=int(port), user="bench").cursor()
    cur.execute(query)
    return cur.fetchall()


def admin(base, path, method="GET"):
    req = urllib.request.Request(base + path, method=method, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def start(tmp, log):
    config = tmp / "flightdeck.toml"
    config.write_text(f"""
[trino]
url = "{TRINO}"
request_timeout_secs = 120

[cache]
enabled = false

[admin]
token = "{TOKEN}"

[accel]
dir = "{tmp / 'accel'}"
memory_budget = "16GiB"

[[datasets]]
table = "{TABLE}"
mode = "append"
time_column = "shipdate"
interval = "1h"
""")
    out = open(log, "w")
    proc = subprocess.Popen([BINARY, "serve", "--config", str(config), "--listen", "127.0.0.1:0",
                             "--admin-listen", "127.0.0.1:0"], stdout=out, stderr=subprocess.STDOUT,
                            env=dict(os.environ, RUST_LOG="flightdeck=info"))
    while not (m := re.search(r"admin HTTP on (http://\S+)", Path(log).read_text())):
        assert proc.poll() is None, Path(log).read_text()
        time.sleep(0.05)
    return proc, m.group(1)


def dataset(base):
    return admin(base, "/admin/datasets")[0]


def wait(base, after_version, timeout=900):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = dataset(base)
        if d["version"] > after_version and d["state"] in ("ready", "failed"):
            return d
        time.sleep(0.2)
    raise SystemExit(f"dataset did not load: {dataset(base)}")


def settle(proc, tmp, timeout=120):
    """Resident bytes once the first snapshot is on disk and what the load
    freed has gone back: the smallest of a few samples after that."""
    deadline = time.monotonic() + timeout
    while not list((tmp / "accel").glob("*.json")):
        assert time.monotonic() < deadline, "no snapshot written"
        time.sleep(0.2)
    samples = []
    for _ in range(10):
        time.sleep(0.5)
        samples.append(rss_kib(proc.pid, "VmRSS") * 1024)
    return min(samples)


def rss_kib(pid, field):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def main():
    # A fresh copy each run, so appended rows of an earlier run do not count.
    sql(f"DROP TABLE IF EXISTS {TABLE}")
    started = time.monotonic()
    sql(f"CREATE TABLE {TABLE} AS SELECT * FROM tpch.sf1.lineitem")
    print(f"copied lineitem into {TABLE} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    total = sql(f"SELECT count(*) FROM {TABLE}")[0][0]
    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        proc, base = start(tmp, tmp / "first.log")
        t0 = time.monotonic()
        loaded = wait(base, 0)
        first_wall = time.monotonic() - t0
        assert loaded["state"] == "ready" and loaded["rows"] == total, loaded
        at_ready = rss_kib(proc.pid, "VmRSS") * 1024
        settled = settle(proc, tmp)
        hwm = rss_kib(proc.pid, "VmHWM") * 1024
        arrow = loaded["bytes"]
        rows.append(("initial load from Trino", f"{loaded['last_refresh_ms'] / 1000:.1f} s",
                     f"{loaded['rows']:,} rows, {loaded['rows'] / (loaded['last_refresh_ms'] / 1000):,.0f} rows/s"))
        rows.append(("memory held", f"{settled / 2**20:,.0f} MiB resident ({settled / arrow:.2f}x)",
                     f"Arrow size {arrow / 2**20:,.0f} MiB; once the snapshot is written. At the moment the "
                     f"dataset turned ready {at_ready / 2**20:,.0f} MiB ({at_ready / arrow:.2f}x: the rows as "
                     f"read, not yet given back); peak {hwm / 2**20:,.0f} MiB ({hwm / arrow:.2f}x)"))
        # 10 000 rows on the day after the watermark.
        sql(f"INSERT INTO {TABLE} SELECT orderkey + 100000000, partkey, suppkey, linenumber, quantity, "
            f"extendedprice, discount, tax, returnflag, linestatus, "
            f"(SELECT max(shipdate) FROM {TABLE}) + INTERVAL '1' DAY, commitdate, "
            f"receiptdate, shipinstruct, shipmode, comment FROM tpch.sf1.lineitem LIMIT 10000")
        admin(base, f"/admin/datasets/{TABLE}/refresh", "POST")
        refreshed = wait(base, loaded["version"])
        assert refreshed["rows"] == total + 10000, refreshed
        rows.append(("refresh after appending 10 000 rows", f"{refreshed['last_refresh_ms'] / 1000:.2f} s",
                     f"{refreshed['last_refresh_rows_pulled']:,} rows pulled of {refreshed['rows']:,}"))
        proc.terminate()
        proc.wait(timeout=60)
        # Start again: from the snapshot on disk.
        t0 = time.monotonic()
        proc, base = start(tmp, tmp / "second.log")
        plain = lambda: re.sub(r"\x1b\[[0-9;]*m", "", (tmp / "second.log").read_text())
        while not (m := re.search(r"dataset loaded from its snapshot.*?ms=(\d+)", plain())):
            assert proc.poll() is None and time.monotonic() - t0 < 600, (tmp / "second.log").read_text()
            time.sleep(0.05)
        disk_ms = int(m.group(1))
        ready_wall = time.monotonic() - t0
        time.sleep(1)
        warm = rss_kib(proc.pid, "VmRSS") * 1024
        rows.append(("start-up from the snapshot", f"{disk_ms / 1000:.2f} s",
                     f"{loaded['last_refresh_ms'] / disk_ms:.0f}x faster than from Trino; process up and "
                     f"dataset loaded {ready_wall:.1f} s after start; then {warm / 2**20:,.0f} MiB resident "
                     f"({warm / arrow:.2f}x the Arrow size)"))
        proc.terminate()
        proc.wait(timeout=60)
    sql(f"DROP TABLE {TABLE}")
    print("| step | time | notes |\n|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} |")


if __name__ == "__main__":
    main()
