#!/usr/bin/env python3
"""Dashboard refresh through Superset: Trino direct against Flightdeck.

    scripts/bench-dashboard.py [--scale full|smoke] [--reps 5] [--parallel 6] [--no-screenshot]

Builds, through Superset's REST API, one dashboard of eight charts for each
of three databases with the same chart definitions:

  trino        Trino direct, Superset's stock `trino://` dialect
  fd-trino     Flightdeck's Trino-protocol port, the same stock dialect
  fd-flight    Flightdeck's Flight SQL port, clients/python's `flightdeck://`

over the load harness's data in Trino's memory catalog (built here if it is
missing): the energy series `memory.bench_energy.prices` (6 million rows)
and tpch sf1 `orders`. Six charts read the energy series within the
dashboard's time range (the generated series' last 7 days; rows the load
harness's dashboard mode appends after them are outside every range), two
read orders.
Flightdeck (the release build) accelerates both tables: the energy series
as an append dataset on `ts`, orders as a full copy, result cache on.

A "refresh" is every chart's `POST /api/v1/chart/data` (the query context
the chart's form data makes, `force=true`; Superset's data cache is a
NullCache as well, so every request reaches the database), sent at most
`--parallel` at a time, as a browser loading the dashboard does; its time is
the wall time until the last answer, beside each chart's own time.
Scenarios, each repeated `--reps` times (medians reported), the set-ups
taking turns within each repetition:

  cold       Flightdeck's result cache emptied first (DELETE /admin/cache)
  warm       the same dashboard again right after
  new range  the dashboard's time filter moved to a week not asked for before
             (a different week each repetition; the energy series' cache
             entries dropped first, since the other Flightdeck set-up shares
             the cache): the energy charts miss the cache, the orders charts
             (outside the filter's scope) hit it

Every answer is compared with Trino direct's for the same chart and range
(row counts, values; floats within 1e-9 relative). Flightdeck's routes
(cache, local engine, Trino) are read from its /metrics around each run, and
why its local engine left statements to Trino from its router's debug log.

Then Superset's web UI, on the same server, shows the Flightdeck `trino://`
dashboard in headless Chromium (playwright-core from npm, Debian's
chromium), saved as docs/images/dashboard.png.

Results: a Markdown table on stdout, JSON in target/bench/dashboard-refresh.json.

Environment: FLIGHTDECK_BIN (default $CARGO_TARGET_DIR/release/flightdeck,
CARGO_TARGET_DIR defaulting to ~/.cache/flightdeck/target), SUPERSET_VENV
(default ~/.cache/flightdeck/superset-venv; the script re-runs itself with
its Python), FLIGHTDECK_TRINO_URL (default http://127.0.0.1:8080; start it
with scripts/trino.sh start), CHROMIUM (default /usr/bin/chromium),
PLAYWRIGHT_DIR (where playwright-core is installed with npm if missing;
default ~/.cache/flightdeck/playwright).
"""

import os
import sys
from pathlib import Path

CACHE_DIR = Path(os.environ.get("FLIGHTDECK_CACHE_DIR", Path.home() / ".cache/flightdeck"))
VENV = Path(os.environ.get("SUPERSET_VENV", CACHE_DIR / "superset-venv"))
if Path(sys.prefix).resolve() != VENV.resolve() and not os.environ.get("BENCH_DASHBOARD_REEXEC"):
    # Superset's Python: the trino client and Superset's command line are there.
    os.environ["BENCH_DASHBOARD_REEXEC"] = "1"
    os.execv(str(VENV / "bin/python"), [str(VENV / "bin/python"), __file__, *sys.argv[1:]])

import argparse
import concurrent.futures
import datetime
import decimal
import json
import math
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import trino

ROOT = Path(__file__).resolve().parents[1]
TRINO_URL = os.environ.get("FLIGHTDECK_TRINO_URL", "http://127.0.0.1:8080")
BINARY = os.environ.get("FLIGHTDECK_BIN") or str(
    Path(os.environ.get("CARGO_TARGET_DIR", CACHE_DIR / "target")) / "release/flightdeck")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PLAYWRIGHT_DIR = Path(os.environ.get("PLAYWRIGHT_DIR", CACHE_DIR / "playwright"))
ADMIN_TOKEN = "bench-admin-token-0123456789"
USER = "bench"

# The load harness's data (benches/load/data.rs), by scale: its schemas, and
# the days its energy series covers from 2022-01-01.
SCALES = {
    "full": {"energy": "memory.bench_energy", "tpch": "memory.bench_tpch_sf1", "days": 1250},
    "smoke": {"energy": "memory.bench_energy_smoke", "tpch": "memory.bench_tpch_tiny", "days": 60},
}
SETUPS = ["trino", "fd-trino", "fd-flight"]
LABELS = {"trino": "Trino direct (`trino://`)", "fd-trino": "Flightdeck, Trino protocol (`trino://`)",
          "fd-flight": "Flightdeck, Flight SQL (`flightdeck://`)"}
SCENARIOS = ["cold", "warm", "new range"]


def log(*args):
    print(f"[{time.strftime('%H:%M:%S')}]", *args, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- Trino: the data ---------------------------------------------------------

def trino_sql(query):
    u = urllib.parse.urlparse(TRINO_URL)
    cur = trino.dbapi.connect(host=u.hostname, port=u.port or 8080, http_scheme=u.scheme, user=USER).cursor()
    cur.execute(query)
    return cur.fetchall()


def ensure_data(scale):
    """The load harness's data; built by the harness itself (`--data-only`)
    when a table this dashboard reads is missing, so both stay one data set."""
    s = SCALES[scale]

    def exists(schema, table):
        catalog, name = schema.split(".")
        return trino_sql(f"SELECT count(*) FROM {catalog}.information_schema.tables "
                         f"WHERE table_schema = '{name}' AND table_name = '{table}'")[0][0] > 0

    if not (exists(s["tpch"], "orders") and exists(s["energy"], "prices")):
        log(f"building the load harness's {scale} data in Trino")
        subprocess.run(["cargo", "bench", "--bench", "load", "--", "--bench", "--scale", scale, "--data-only"],
                       cwd=ROOT, check=True)
    rows, last = trino_sql(f"SELECT count(*), max(ts) FROM {s['energy']}.prices")[0]
    orders = trino_sql(f"SELECT count(*) FROM {s['tpch']}.orders")[0][0]
    return rows, last, orders


# --- Flightdeck ----------------------------------------------------------------

class Flightdeck:
    def __init__(self, scale, tmp):
        s = SCALES[scale]
        self.port, self.admin_port, self.trino_port = free_port(), free_port(), free_port()
        self.admin = f"http://127.0.0.1:{self.admin_port}"
        config = tmp / "flightdeck.toml"
        config.write_text(f"""[cache]
enabled = true
ttl_secs = 3600

[admin]
token = "{ADMIN_TOKEN}"

[accel]
dir = "{tmp / 'accel'}"
memory_budget = "16GiB"

[[datasets]]
table = "{s['energy']}.prices"
mode = "append"
time_column = "ts"
overlap = "0s"
interval = "1h"

[[datasets]]
table = "{s['tpch']}.orders"
mode = "full"
interval = "1h"
""")
        self.command = [BINARY, "serve", "--config", str(config), "--listen", f"127.0.0.1:{self.port}",
                        "--admin-listen", f"127.0.0.1:{self.admin_port}",
                        "--trino-protocol-listen", f"127.0.0.1:{self.trino_port}", "--trino-url", TRINO_URL]
        self.log_path = tmp / "flightdeck.log"
        self.proc = subprocess.Popen(self.command, stdout=open(self.log_path, "w"), stderr=subprocess.STDOUT,
                                     env=dict(os.environ, RUST_LOG=os.environ.get("FLIGHTDECK_RUST_LOG", "warn,flightdeck::router=debug")))
        self.started = time.monotonic()

    def wait_ready(self, timeout=1200):
        """Seconds from start until /ready (every dataset loaded)."""
        while True:
            try:
                with urllib.request.urlopen(self.admin + "/ready", timeout=5) as r:
                    if r.status == 200:
                        return time.monotonic() - self.started
            except (OSError, urllib.error.HTTPError):
                pass
            if self.proc.poll() is not None or time.monotonic() - self.started > timeout:
                raise SystemExit(f"Flightdeck did not get ready:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.5)

    def call(self, method, path):
        req = urllib.request.Request(self.admin + path, method=method,
                                     headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read() or b"null")

    def clear_cache(self, table=None):
        self.call("DELETE", "/admin/cache" if table is None else f"/admin/cache/tables/{table}")

    def metrics(self):
        """Counters of routes and cache outcomes, by name and labels."""
        with urllib.request.urlopen(self.admin + "/metrics", timeout=10) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            m = re.match(r"(flightdeck_(?:routed|cache_hits|cache_misses|cache_stale|cache_bypass|"
                         r"local_refusals|trino_queries)_total)(\{[^}]*\})? (\S+)$", line)
            if m:
                out[m.group(1).removeprefix("flightdeck_").removesuffix("_total") + (m.group(2) or "")] = float(m.group(3))
        return out

    def refusals(self):
        """Why the local engine left statements to Trino (the router's debug
        lines), with counts."""
        text = re.sub(r"\x1b\[[0-9;]*m", "", self.log_path.read_text())
        out = {}
        for m in re.finditer(r"answered by Trino refusal=(.*)", text):
            out[m.group(1).strip()] = out.get(m.group(1).strip(), 0) + 1
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def metric_delta(before, after):
    return {k: int(after[k] - before.get(k, 0)) for k in sorted(after) if after[k] - before.get(k, 0)}


# --- Superset ------------------------------------------------------------------

class Superset:
    def __init__(self, tmp):
        self.home = tmp / "superset"
        self.home.mkdir()
        config = self.home / "superset_config.py"
        config.write_text(
            "SECRET_KEY = 'flightdeck-bench-secret-key-0123456789'\n"
            f"SQLALCHEMY_DATABASE_URI = 'sqlite:///{self.home}/superset.db'\n"
            "WTF_CSRF_ENABLED = False\nTALISMAN_ENABLED = False\nPREVENT_UNSAFE_DB_CONNECTIONS = False\n"
            # Every chart-data request reaches the database.
            "DATA_CACHE_CONFIG = {'CACHE_TYPE': 'NullCache'}\n"
            "CACHE_CONFIG = {'CACHE_TYPE': 'NullCache'}\n"
            # All charts render at once, on or off screen (for the screenshot).
            "FEATURE_FLAGS = {'DASHBOARD_VIRTUALIZATION': False}\n"
            "SUPERSET_WEBSERVER_TIMEOUT = 300\n"
        )
        self.env = dict(os.environ, SUPERSET_CONFIG_PATH=str(config), FLASK_APP="superset",
                        SUPERSET_HOME=str(self.home),
                        # The `flightdeck://` dialect and engine spec.
                        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "clients/python"),
                                                                  os.environ.get("PYTHONPATH")])))
        for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "BENCH_DASHBOARD_REEXEC"):
            self.env.pop(name, None)
        self.bin = VENV / "bin"
        self.proc = None
        self.token = None
        self.base = None

    def init(self):
        for args in (["db", "upgrade"],
                     ["fab", "create-admin", "--username", "admin", "--firstname", "a", "--lastname", "b",
                      "--email", "admin@example.org", "--password", "admin"],
                     ["init"]):
            r = subprocess.run([str(self.bin / "superset"), *args], env=self.env, capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(f"superset {args[0]} failed:\n{r.stdout[-2000:]}{r.stderr[-3000:]}")
            if args == ["db", "upgrade"]:
                self.drop_unique_table_name()

    def drop_unique_table_name(self):
        """On SQLite, Superset's `tables` keeps an old UNIQUE (table_name)
        (a migration drops it on other databases, SQLite cannot), so a second
        database's dataset over the same table fails. The table is rebuilt
        without it, the standard SQLite way."""
        import sqlite3
        con = sqlite3.connect(self.home / "superset.db")
        (sql,) = con.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'tables'").fetchone()
        fixed = re.sub(r",\s*UNIQUE \(table_name\)", "", sql)
        if fixed == sql:
            return
        indexes = [r[0] for r in con.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tables' AND sql IS NOT NULL")]
        con.executescript(
            "PRAGMA foreign_keys = OFF; PRAGMA legacy_alter_table = ON; BEGIN;\n"
            + fixed.replace('CREATE TABLE "tables"', 'CREATE TABLE "tables_rebuilt"', 1) + ";\n"
            "INSERT INTO tables_rebuilt SELECT * FROM tables; DROP TABLE tables;\n"
            "ALTER TABLE tables_rebuilt RENAME TO tables;\n" + "".join(i + ";\n" for i in indexes) + "COMMIT;")
        con.close()

    def start(self, workers, threads):
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.log_path = self.home / "gunicorn.log"
        self.command = [str(self.bin / "gunicorn"), "-w", str(workers), "-k", "gthread", "--threads", str(threads),
                        "--timeout", "300", "-b", f"127.0.0.1:{port}", "--limit-request-line", "0",
                        "--limit-request-field_size", "0", "superset.app:create_app()"]
        self.proc = subprocess.Popen(self.command, env=self.env, stdout=open(self.log_path, "w"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 180
        while True:
            try:
                if urllib.request.urlopen(self.base + "/health", timeout=2).status == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"Superset did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        status, body, _ = self.call("POST", "/api/v1/security/login",
                                    {"username": "admin", "password": "admin", "provider": "db", "refresh": True})
        assert status == 200, body
        self.token = body["access_token"]

    def call(self, method, path, body=None, timeout=300):
        req = urllib.request.Request(self.base + path, method=method,
                                     data=None if body is None else json.dumps(body).encode())
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        started = time.perf_counter()
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                data = r.read()
                return r.status, json.loads(data or b"{}"), time.perf_counter() - started
        except urllib.error.HTTPError as e:
            data = e.read()
            try:
                return e.code, json.loads(data or b"{}"), time.perf_counter() - started
            except ValueError:
                return e.code, {"raw": data.decode(errors="replace")[:2000]}, time.perf_counter() - started

    def must(self, method, path, body=None, want=(200, 201)):
        status, out, _ = self.call(method, path, body)
        if status not in want:
            raise SystemExit(f"{method} {path}: {status}\n{json.dumps(out)[:3000]}\n{json.dumps(body)[:1000]}")
        return out

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


# --- The dashboard's charts ----------------------------------------------------

def simple_metric(column, aggregate, label):
    return {"expressionType": "SIMPLE", "column": {"column_name": column}, "aggregate": aggregate, "label": label}


COUNT = {"expressionType": "SQL", "sqlExpression": "COUNT(*)", "label": "orders"}
AVG_PRICE = simple_metric("price", "AVG", "avg price")
VOLUME = simple_metric("volume_mwh", "SUM", "volume MWh")
REVENUE = simple_metric("totalprice", "SUM", "revenue")
TABLE_COLUMNS = ["ts", "node_id", "market", "fuel_type", "price", "volume_mwh", "emissions_t"]


def range_filter(column, time_range):
    return [{"clause": "WHERE", "subject": column, "operator": "TEMPORAL_RANGE", "comparator": time_range,
             "expressionType": "SIMPLE"}]


# Each chart: (key, title, dataset, form data without datasource/filters,
# time column or None, whether the dashboard's time filter applies).
CHARTS = [
    ("avg_price_hourly", "Average price per hour", "energy", {
        "viz_type": "echarts_timeseries_line", "x_axis": "ts", "time_grain_sqla": "PT1H", "metrics": [AVG_PRICE],
        "groupby": [], "row_limit": 10000, "order_desc": True, "x_axis_sort_asc": True, "show_legend": False,
        "rich_tooltip": True, "y_axis_format": "SMART_NUMBER", "color_scheme": "supersetColors",
        "seriesType": "line", "x_axis_time_format": "smart_date", "truncate_metric": True}, "ts", True),
    ("volume_by_fuel", "Volume by fuel (MWh per hour)", "energy", {
        "viz_type": "echarts_timeseries_line", "x_axis": "ts", "time_grain_sqla": "PT1H", "metrics": [VOLUME],
        "groupby": ["fuel_type"], "row_limit": 10000, "order_desc": True, "x_axis_sort_asc": True,
        "show_legend": True, "legendType": "scroll", "legendOrientation": "top", "rich_tooltip": True,
        "y_axis_format": "SMART_NUMBER", "color_scheme": "supersetColors", "seriesType": "line",
        "x_axis_time_format": "smart_date", "truncate_metric": True}, "ts", True),
    ("top_nodes", "Top 10 nodes by volume", "energy", {
        "viz_type": "echarts_timeseries_bar", "x_axis": "node_id", "metrics": [VOLUME], "groupby": [],
        "row_limit": 10, "order_desc": True, "x_axis_sort": "volume MWh", "x_axis_sort_asc": False,
        "orientation": "vertical", "show_legend": False, "y_axis_format": "SMART_NUMBER",
        "color_scheme": "supersetColors", "truncate_metric": True}, "ts", True),
    ("fuel_mix", "Volume by fuel", "energy", {
        "viz_type": "pie", "groupby": ["fuel_type"], "metric": VOLUME, "row_limit": 100, "sort_by_metric": True,
        "color_scheme": "supersetColors", "show_labels": True, "labels_outside": True, "label_type": "key",
        "number_format": "SMART_NUMBER", "show_legend": False, "outerRadius": 70, "innerRadius": 30,
        "donut": True}, "ts", True),
    ("avg_price", "Average price", "energy", {
        "viz_type": "big_number_total", "metric": AVG_PRICE, "header_font_size": 0.4,
        "subheader_font_size": 0.15, "y_axis_format": ",.2f", "subheader": "USD/MWh in the time range"},
        "ts", True),
    ("latest_rows", "Latest rows", "energy", {
        "viz_type": "table", "query_mode": "raw", "all_columns": TABLE_COLUMNS,
        "order_by_cols": [json.dumps(["ts", False]), json.dumps(["node_id", True])], "row_limit": 50,
        "server_page_length": 10, "include_search": False, "table_timestamp_format": "smart_date",
        "show_cell_bars": False}, "ts", True),
    ("revenue_by_priority", "TPC-H revenue by order priority", "orders", {
        "viz_type": "echarts_timeseries_bar", "x_axis": "orderpriority", "metrics": [REVENUE], "groupby": [],
        "row_limit": 100, "order_desc": True, "x_axis_sort": "orderpriority", "x_axis_sort_asc": True,
        "orientation": "vertical", "show_legend": False, "y_axis_format": "SMART_NUMBER",
        "color_scheme": "supersetColors", "truncate_metric": True}, "orderdate", False),
    ("orders_per_month", "TPC-H orders per month", "orders", {
        "viz_type": "echarts_timeseries_line", "x_axis": "orderdate", "time_grain_sqla": "P1M", "metrics": [COUNT],
        "groupby": [], "row_limit": 10000, "order_desc": True, "x_axis_sort_asc": True, "show_legend": False,
        "rich_tooltip": True, "y_axis_format": "SMART_NUMBER", "color_scheme": "supersetColors",
        "seriesType": "line", "x_axis_time_format": "smart_date", "truncate_metric": True}, "orderdate", False),
]


def form_data(chart, dataset_id, time_range):
    key, title, _, fd, time_col, filtered = chart
    fd = dict(fd, datasource=f"{dataset_id}__table", slice_name=title,
              adhoc_filters=range_filter(time_col, time_range if filtered else "No filter"),
              time_range=time_range if filtered else "No filter", extra_form_data={})
    return fd


def query_context(chart, dataset_id, time_range, force=True):
    """What the chart's form data makes in the browser (superset-frontend's
    buildQuery of each plugin), with a time range. One deviation: the top-10
    bar chart orders ties of the metric by node_id (many nodes have the same
    volume), so its ten rows are the same on every set-up."""
    key, _, _, _, time_col, filtered = chart
    fd = form_data(chart, dataset_id, time_range)
    rng = time_range if filtered else "No filter"
    q = {"filters": [{"col": time_col, "op": "TEMPORAL_RANGE", "val": rng}],
         "extras": {"having": "", "where": ""}, "applied_time_extras": {}, "annotation_layers": [],
         "time_range": rng, "url_params": {}, "custom_params": {}, "custom_form_data": {}}
    vt = fd["viz_type"]
    if vt in ("echarts_timeseries_line", "echarts_timeseries_bar"):
        metric = fd["metrics"][0]
        if fd.get("time_grain_sqla"):
            x = {"timeGrain": fd["time_grain_sqla"], "columnType": "BASE_AXIS", "sqlExpression": fd["x_axis"],
                 "label": fd["x_axis"], "expressionType": "SQL"}
            q["extras"]["time_grain_sqla"] = fd["time_grain_sqla"]
        else:
            x = fd["x_axis"]
        orderby = [[metric, False]]
        if key == "top_nodes":
            orderby.append(["node_id", True])
        q.update(columns=[x, *fd["groupby"]], metrics=fd["metrics"], orderby=orderby, row_limit=fd["row_limit"],
                 series_columns=fd["groupby"], series_limit=0, order_desc=True, time_offsets=[],
                 post_processing=[
                     {"operation": "pivot", "options": {"index": [fd["x_axis"]], "columns": fd["groupby"],
                                                        "aggregates": {metric["label"]: {"operator": "mean"}},
                                                        "drop_missing_columns": False}},
                     *([{"operation": "rename", "options": {"columns": {metric["label"]: None}, "level": 0,
                                                            "inplace": True}}] if fd["groupby"] else []),
                     {"operation": "flatten"}])
    elif vt == "pie":
        q.update(columns=fd["groupby"], metrics=[fd["metric"]], orderby=[[fd["metric"], False]],
                 row_limit=fd["row_limit"], order_desc=True)
    elif vt == "big_number_total":
        q.update(columns=[], metrics=[fd["metric"]], row_limit=10000)
    elif vt == "table":
        # Raw mode sends no metrics at all (an empty list would make Superset
        # group by every column).
        q.update(columns=fd["all_columns"], orderby=[json.loads(c) for c in fd["order_by_cols"]],
                 row_limit=fd["row_limit"], post_processing=[])
    else:
        raise ValueError(vt)
    return {"datasource": {"id": dataset_id, "type": "table"}, "force": force, "queries": [q],
            "form_data": dict(fd, force=force), "result_format": "json", "result_type": "full"}


def build(superset, setup, uri, scale, time_range):
    """Database, datasets, charts and dashboard for one set-up."""
    s = SCALES[scale]
    db = superset.must("POST", "/api/v1/database/", {
        "database_name": setup, "sqlalchemy_uri": uri, "expose_in_sqllab": True, "extra": json.dumps({})})["id"]
    datasets = {}
    for key, qualified in (("energy", s["energy"] + ".prices"), ("orders", s["tpch"] + ".orders")):
        _, schema, table = qualified.split(".")
        datasets[key] = superset.must("POST", "/api/v1/dataset/", {
            "database": db, "schema": schema, "table_name": table})["id"]
    dash = superset.must("POST", "/api/v1/dashboard/", {
        "dashboard_title": f"Energy market and orders ({setup})", "slug": f"energy-{setup}", "published": True})["id"]
    charts = {}
    for chart in CHARTS:
        key, title, ds = chart[0], chart[1], chart[2]
        fd = form_data(chart, datasets[ds], time_range)
        qc = query_context(chart, datasets[ds], time_range, force=False)
        charts[key] = superset.must("POST", "/api/v1/chart/", {
            "slice_name": title, "viz_type": fd["viz_type"], "datasource_id": datasets[ds],
            "datasource_type": "table", "params": json.dumps(fd), "query_context": json.dumps(qc),
            "dashboards": [dash]})["id"]
    # Layout: a header row of the big number, the pie, the top-10 bars and
    # the orders bars; the two time series; the table and orders per month.
    rows = [[("avg_price", 2, 30), ("fuel_mix", 3, 30), ("top_nodes", 4, 30), ("revenue_by_priority", 3, 30)],
            [("avg_price_hourly", 6, 32), ("volume_by_fuel", 6, 32)],
            [("latest_rows", 7, 34), ("orders_per_month", 5, 34)]]
    pos = {"DASHBOARD_VERSION_KEY": "v2",
           "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
           "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
           "HEADER_ID": {"id": "HEADER_ID", "type": "HEADER", "meta": {"text": f"Energy market and orders ({setup})"}}}
    titles = {c[0]: c[1] for c in CHARTS}
    for i, row in enumerate(rows):
        rid = f"ROW-{i}"
        pos["GRID_ID"]["children"].append(rid)
        pos[rid] = {"type": "ROW", "id": rid, "children": [], "parents": ["ROOT_ID", "GRID_ID"],
                    "meta": {"background": "BACKGROUND_TRANSPARENT"}}
        for key, width, height in row:
            cid = f"CHART-{key}"
            pos[rid]["children"].append(cid)
            pos[cid] = {"type": "CHART", "id": cid, "children": [], "parents": ["ROOT_ID", "GRID_ID", rid],
                        "meta": {"width": width, "height": height, "chartId": charts[key],
                                 "sliceName": titles[key]}}
    filtered = [charts[c[0]] for c in CHARTS if c[5]]
    unfiltered = [charts[c[0]] for c in CHARTS if not c[5]]
    native = [{
        "id": "NATIVE_FILTER-time-range", "name": "Time range", "filterType": "filter_time", "type": "NATIVE_FILTER",
        "targets": [{}], "controlValues": {}, "cascadeParentIds": [], "description": "",
        "defaultDataMask": {"extraFormData": {"time_range": time_range}, "filterState": {"value": time_range}},
        "scope": {"rootPath": ["ROOT_ID"], "excluded": unfiltered}, "chartsInScope": filtered}]
    meta = {"native_filter_configuration": native, "filter_bar_orientation": "HORIZONTAL",
            "color_scheme": "supersetColors", "refresh_frequency": 0, "expanded_slices": {},
            "label_colors": {}, "shared_label_colors": [], "timed_refresh_immune_slices": [],
            "cross_filters_enabled": False, "default_filters": "{}", "chart_configuration": {}}
    superset.must("PUT", f"/api/v1/dashboard/{dash}", {"position_json": json.dumps(pos),
                                                       "json_metadata": json.dumps(meta)})
    return {"database": db, "datasets": datasets, "dashboard": dash, "charts": charts}


# --- Refreshes -------------------------------------------------------------------

def refresh(superset, built, time_range, parallel):
    """Every chart's chart-data request, `parallel` at a time: (wall seconds,
    {chart: (seconds, status, body)})."""
    contexts = {c[0]: query_context(c, built["datasets"][c[2]], time_range) for c in CHARTS}
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=parallel) as pool:
        futures = {k: pool.submit(superset.call, "POST", "/api/v1/chart/data", qc) for k, qc in contexts.items()}
        answers = {k: f.result() for k, f in futures.items()}
    wall = time.perf_counter() - started
    return wall, {k: (secs, status, body) for k, (status, body, secs) in answers.items()}


def chart_error(status, body):
    if status != 200:
        return f"HTTP {status}: {json.dumps(body)[:500]}"
    for r in body.get("result", []):
        if r.get("error") or r.get("status") not in (None, "success"):
            return f"{r.get('status')}: {r.get('error')}"
    return None


def rows_of(body):
    r = body["result"][0]
    return r.get("colnames"), r.get("data")


def same_value(a, b):
    """(equal, note): floats within 1e-9 relative; a type difference noted."""
    if isinstance(a, (int, float, decimal.Decimal)) and isinstance(b, (int, float, decimal.Decimal)) \
            and not isinstance(a, bool) and not isinstance(b, bool):
        note = None if type(a) is type(b) else f"{type(a).__name__} vs {type(b).__name__}"
        fa, fb = float(a), float(b)
        if math.isnan(fa) and math.isnan(fb):
            return True, note
        return math.isclose(fa, fb, rel_tol=1e-9, abs_tol=0.0) or fa == fb, note
    if a is None or b is None:
        return a is b, None
    if type(a) is not type(b):
        return str(a) == str(b), f"{type(a).__name__} vs {type(b).__name__}"
    return a == b, None


def compare(ref, got):
    """Differences between two chart answers (Trino direct's first)."""
    (rc, rd), (gc, gd) = ref, got
    if rc != gc:
        return [f"columns {rc} vs {gc}"], []
    if len(rd) != len(gd):
        return [f"{len(rd)} rows vs {len(gd)}"], []
    diffs, notes = [], set()
    for i, (ra, ga) in enumerate(zip(rd, gd)):
        for col in rc:
            ok, note = same_value(ra.get(col), ga.get(col))
            if note:
                notes.add(f"{col}: {note}")
            if not ok:
                diffs.append(f"row {i} {col}: {ra.get(col)!r} vs {ga.get(col)!r}")
    return diffs[:10], sorted(notes)


def other_benchmarks():
    """Load-harness benchmark processes running now (another session's)."""
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    return [l.strip()[:200] for l in out.splitlines()
            if re.search(r"(/deps/load-[0-9a-f]+|cargo bench)", l) and str(os.getpid()) != l.split()[0]]


# --- Screenshot --------------------------------------------------------------------

def screenshot(superset, dashboard, out, tmp):
    if not Path(CHROMIUM).exists():
        raise SystemExit(f"no {CHROMIUM}: apt-get install -y chromium (or set CHROMIUM)")
    if not (PLAYWRIGHT_DIR / "node_modules/playwright-core").exists():
        PLAYWRIGHT_DIR.mkdir(parents=True, exist_ok=True)
        if not (PLAYWRIGHT_DIR / "package.json").exists():
            (PLAYWRIGHT_DIR / "package.json").write_text('{"name": "bench-dashboard-playwright", "private": true}\n')
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "playwright-core"], cwd=PLAYWRIGHT_DIR,
                       check=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["node", str(ROOT / "scripts/dashboard-screenshot.cjs"), superset.base,
                        f"/superset/dashboard/{dashboard}/?standalone=1", str(out), CHROMIUM, str(tmp / "chromium")],
                       env=dict(os.environ, NODE_PATH=str(PLAYWRIGHT_DIR / "node_modules")),
                       capture_output=True, text=True, timeout=600)
    sys.stderr.write(r.stdout[-3000:] + r.stderr[-3000:])
    if r.returncode != 0:
        raise SystemExit("screenshot failed")


# --- Main ------------------------------------------------------------------------------

def median(xs):
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", choices=sorted(SCALES), default="full")
    ap.add_argument("--reps", type=int, default=5, help="repetitions of each scenario")
    ap.add_argument("--parallel", type=int, default=6, help="chart-data requests at once")
    ap.add_argument("--workers", type=int, default=2, help="Superset's gunicorn workers")
    ap.add_argument("--threads", type=int, default=4, help="threads per worker")
    ap.add_argument("--no-screenshot", action="store_true")
    ap.add_argument("--screenshot", default=str(ROOT / "docs/images/dashboard.png"))
    ap.add_argument("--out", default=str(ROOT / "target/bench/dashboard-refresh.json"))
    ap.add_argument("--keep", action="store_true", help="leave Flightdeck and Superset running at the end")
    opts = ap.parse_args()
    command = "scripts/bench-dashboard.py" + "".join(" " + shlex.quote(a) for a in sys.argv[1:])
    t_start = time.monotonic()
    overlaps = {"at start": other_benchmarks()}
    if overlaps["at start"]:
        log("another benchmark is running:", *overlaps["at start"])

    log(f"data in Trino ({TRINO_URL}), {opts.scale} scale")
    energy_rows, last_ts, order_rows = ensure_data(opts.scale)
    s = SCALES[opts.scale]
    # The generated series' last week. Rows the load harness's dashboard mode
    # appends after it (copies of the last hour) fall outside every range, so
    # every run reads the same rows.
    end = datetime.datetime(2022, 1, 1) + datetime.timedelta(days=s["days"])
    week = datetime.timedelta(days=7)
    fmt = lambda a, b: f"{a:%Y-%m-%dT%H:%M:%S} : {b:%Y-%m-%dT%H:%M:%S}"
    base_range = fmt(end - week, end)
    new_ranges = [fmt(end - (k + 2) * week, end - (k + 1) * week) for k in range(opts.reps)]
    log(f"energy rows {energy_rows:,} (last {last_ts}), orders {order_rows:,}; dashboard range {base_range}")

    tmp = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    fd = Flightdeck(opts.scale, tmp)
    superset = Superset(tmp)
    result = {"command": command, "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                                                          capture_output=True, text=True).stdout.strip(),
              "dirty": bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                           capture_output=True, text=True).stdout.strip()),
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
              "scale": opts.scale, "energy_rows": energy_rows, "energy_last_ts": str(last_ts), "order_rows": order_rows,
              "flightdeck": {"binary": BINARY, "command": fd.command, "version": subprocess.run(
                  [BINARY, "--version"], capture_output=True, text=True).stdout.strip(),
                  "binary_mtime": datetime.datetime.fromtimestamp(Path(BINARY).stat().st_mtime).isoformat(
                      timespec="seconds")},
              "superset": {"workers": opts.workers, "threads": opts.threads, "data_cache": "NullCache",
                           "force": True},
              "parallel": opts.parallel, "reps": opts.reps, "base_range": base_range, "new_ranges": new_ranges,
              "charts": [{"key": c[0], "title": c[1], "dataset": c[2], "viz_type": c[3]["viz_type"],
                          "time_filter": c[5]} for c in CHARTS]}
    try:
        log("Superset: metadata database, admin user, roles")
        t0 = time.monotonic()
        superset.init()
        superset.start(opts.workers, opts.threads)
        result["superset"]["command"] = superset.command
        log(f"Superset up at {superset.base} in {time.monotonic() - t0:.0f} s; waiting for Flightdeck's datasets")
        result["flightdeck"]["ready_s"] = round(fd.wait_ready(), 1)
        result["flightdeck"]["datasets"] = fd.call("GET", "/admin/datasets")
        log(f"Flightdeck ready ({result['flightdeck']['ready_s']} s after start)")

        schema = s["energy"].split(".")[1]
        uris = {"trino": f"trino://{USER}@{urllib.parse.urlparse(TRINO_URL).netloc}/memory/{schema}",
                "fd-trino": f"trino://{USER}@127.0.0.1:{fd.trino_port}/memory/{schema}",
                "fd-flight": f"flightdeck://{USER}:@127.0.0.1:{fd.port}/memory/{schema}"}
        result["uris"] = uris
        built = {}
        for setup in SETUPS:
            built[setup] = build(superset, setup, uris[setup], opts.scale, base_range)
            log(f"{setup}: database {built[setup]['database']}, dashboard {built[setup]['dashboard']}")
        result["built"] = built

        # Reference answers (Trino direct) per range, and a first pass of every
        # set-up (also warming Superset's workers and Trino's compiler).
        reference = {}
        mismatches = []
        type_notes = {}

        def check(setup, rng, answers, what):
            for key, (secs, status, body) in answers.items():
                err = chart_error(status, body)
                if err:
                    raise SystemExit(f"{setup} {what} {key}: {err}")
                if setup == "trino":
                    reference.setdefault((key, rng), rows_of(body))
                    continue
                if (key, rng) not in reference:
                    continue
                diffs, notes = compare(reference[(key, rng)], rows_of(body))
                for n in notes:
                    type_notes.setdefault(f"{setup} {key}", set()).add(n)
                if diffs:
                    mismatches.append({"setup": setup, "chart": key, "range": rng, "scenario": what, "diffs": diffs})
                    log(f"MISMATCH {setup} {key} ({what}, {rng}): {diffs[:3]}")

        log("first pass: every set-up, every range (answers compared with Trino direct's)")
        rowcounts, statements = {}, {}
        for rng in [base_range, *new_ranges]:
            for setup in SETUPS:
                wall, answers = refresh(superset, built[setup], rng, opts.parallel)
                check(setup, rng, answers, "first pass")
                if rng == base_range:
                    rowcounts[setup] = {k: len(rows_of(b)[1] or []) for k, (_, _, b) in answers.items()}
                    statements[setup] = {k: b["result"][0].get("query") for k, (_, _, b) in answers.items()}
                    log(f"  {setup}: {wall * 1000:.0f} ms, rows {rowcounts[setup]}")
        result["rows_per_chart"] = rowcounts
        result["statements"] = statements

        runs = {setup: {sc: [] for sc in SCENARIOS} for setup in SETUPS}
        overlaps["during runs"] = []
        for rep in range(opts.reps):
            for setup in SETUPS:
                via_fd = setup != "trino"
                for scenario in SCENARIOS:
                    rng = new_ranges[rep] if scenario == "new range" else base_range
                    if via_fd and scenario == "cold":
                        fd.clear_cache()
                    if via_fd and scenario == "new range":
                        fd.clear_cache(f"{s['energy']}.prices")
                    others = other_benchmarks()
                    if others:
                        overlaps["during runs"].append({"rep": rep, "setup": setup, "scenario": scenario,
                                                         "processes": others})
                    before = fd.metrics() if via_fd else None
                    wall, answers = refresh(superset, built[setup], rng, opts.parallel)
                    routes = metric_delta(before, fd.metrics()) if via_fd else None
                    check(setup, rng, answers, scenario)
                    runs[setup][scenario].append({
                        "wall_ms": round(wall * 1000, 1), "range": rng, "routes": routes,
                        "overlapping_benchmark": bool(others),
                        "charts_ms": {k: round(a[0] * 1000, 1) for k, a in answers.items()}})
                    log(f"rep {rep + 1}/{opts.reps} {setup:9} {scenario:9} {wall * 1000:7.0f} ms"
                        + (f"  routes {routes}" if routes else ""))
        overlaps["at end"] = other_benchmarks()
        result["flightdeck"]["local_refusals"] = fd.refusals()

        summary = {}
        for setup in SETUPS:
            summary[setup] = {}
            for scenario in SCENARIOS:
                rs = runs[setup][scenario]
                per_chart = {c[0]: round(median([r["charts_ms"][c[0]] for r in rs]), 1) for c in CHARTS}
                slowest = max(per_chart, key=per_chart.get)
                summary[setup][scenario] = {
                    "median_refresh_ms": round(median([r["wall_ms"] for r in rs]), 1),
                    "min_refresh_ms": min(r["wall_ms"] for r in rs),
                    "max_refresh_ms": max(r["wall_ms"] for r in rs),
                    "median_chart_ms": per_chart, "slowest_chart": slowest,
                    "slowest_chart_ms": per_chart[slowest]}
        result.update(runs=runs, summary=summary, mismatches=mismatches,
                      type_notes={k: sorted(v) for k, v in type_notes.items()},
                      overlapping_benchmarks=overlaps,
                      any_overlap=bool(overlaps["at start"] or overlaps["during runs"] or overlaps["at end"]))

        if not opts.no_screenshot:
            log("screenshot of the Flightdeck trino:// dashboard")
            screenshot(superset, built["fd-trino"]["dashboard"], Path(opts.screenshot), tmp)
            shot = Path(opts.screenshot).resolve()
            result["screenshot"] = str(shot.relative_to(ROOT) if shot.is_relative_to(ROOT) else shot)
        result["wall_s"] = round(time.monotonic() - t_start, 1)

        out = Path(opts.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=str) + "\n")

        print(f"\n## Dashboard refresh through Superset ({opts.scale} scale)\n")
        print(f"    {command}\n")
        print(f"{len(CHARTS)} charts, {opts.parallel} chart-data requests at a time, Superset's cache off "
              f"(force=true), median of {opts.reps}; commit `{result['commit']}`"
              + (" (with uncommitted changes)" if result["dirty"] else "") + ".\n")
        print("| set-up | " + " | ".join(f"{sc}: refresh ms (slowest chart ms)" for sc in SCENARIOS) + " |")
        print("|---|" + "---|" * len(SCENARIOS))
        for setup in SETUPS:
            cells = [f"{summary[setup][sc]['median_refresh_ms']:.0f} ({summary[setup][sc]['slowest_chart_ms']:.0f}"
                     f" {summary[setup][sc]['slowest_chart']})" for sc in SCENARIOS]
            print(f"| {LABELS[setup]} | " + " | ".join(cells) + " |")
        print("\nPer chart, median ms:\n")
        print("| chart | " + " | ".join(f"{st} {sc}" for st in SETUPS for sc in SCENARIOS) + " |")
        print("|---|" + "---|" * (len(SETUPS) * len(SCENARIOS)))
        for c in CHARTS:
            print(f"| {c[0]} | " + " | ".join(f"{summary[st][sc]['median_chart_ms'][c[0]]:.0f}"
                                               for st in SETUPS for sc in SCENARIOS) + " |")
        print(f"\nAnswers compared with Trino direct's: {len(mismatches)} mismatches"
              + (f" ({', '.join(sorted({m['setup'] + ' ' + m['chart'] for m in mismatches}))})" if mismatches else "")
              + (f"; type differences: {result['type_notes']}" if result["type_notes"] else "") + ".")
        print(f"Another benchmark overlapping: {'yes' if result['any_overlap'] else 'no'}. "
              f"Wall time {result['wall_s']:.0f} s. JSON: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
        if opts.keep:
            log(f"kept running: Superset {superset.base} (admin/admin), Flightdeck admin {fd.admin}; Ctrl-C ends")
            while True:
                time.sleep(3600)
    except BaseException:
        for name, path in (("Superset", getattr(superset, "log_path", None)), ("Flightdeck", fd.log_path)):
            if path and path.exists():
                log(f"{name}'s log ends:\n" + path.read_text()[-4000:])
        raise
    finally:
        superset.stop()
        fd.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
