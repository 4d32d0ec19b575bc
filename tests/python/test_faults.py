"""Fault tests: Flightdeck against the real Trino through a fault-injecting
TCP proxy (faultproxy.py), driven by ADBC and pyarrow.flight, with Trino
inspected directly through the trino client.

The tests connect as a user of their own (USER), and every statement carries
a per-test marker literal, so that their queries can be found in Trino's
`system.runtime.queries` whatever else runs there. After each scenario: the
server is alive, its log has no panic, and no query of USER is left running
on Trino. Where the proxy cuts Trino off, the queries Flightdeck can no
longer cancel are killed directly, as a stopped Trino would have lost them.

The load test's size comes from FLIGHTDECK_FAULT_CLIENTS and
FLIGHTDECK_FAULT_SECS (CI: 50 clients for 20 s; scripts/faults.sh: 500 for
120 s), its cache budget from FLIGHTDECK_FAULT_CACHE_MAX (64MiB), its share
of unique statements from FLIGHTDECK_FAULT_MISS_RATIO (0.1) and the Trino
outage half way through from FLIGHTDECK_FAULT_OUTAGE_SECS (3; 0 for none).
"""

import concurrent.futures
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import adbc_driver_flightsql
import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import pyarrow as pa
import pyarrow.flight as fl
import pytest
import trino

from conftest import flightdeck_binary, listening, statement_query
from faultproxy import FaultProxy

# A user of these tests alone, so that whatever it leaves on Trino is theirs
# (statements without the marker included, such as DESCRIBE OUTPUT).
USER, PASSWORD = "faults", "f4ults-pw"

PENDING_TTL = 3  # seconds a parked query waits for its DoGet (--pending-query-ttl-secs)
LINEITEM_ROWS = 2_000_000
BIG = "SELECT '{m}' AS marker, * FROM tpch.sf1.lineitem LIMIT 2000000"  # cacheable; outgrows the entry limit
UNCACHED_BIG = "SELECT '{m}' AS marker, random() AS r, * FROM tpch.sf1.lineitem"  # random(): never cached
# Many Trino pages and a few MB of JSON, but done in seconds when slowed.
ORDERS = "SELECT '{m}' AS marker, orderkey, custkey, orderstatus, totalprice, orderdate FROM tpch.tiny.orders ORDER BY orderkey LIMIT 3000"

GRPC_CODES = {
    0: "OK", 1: "Cancelled", 2: "Unknown", 3: "InvalidArgument", 4: "DeadlineExceeded", 5: "NotFound",
    6: "AlreadyExists", 7: "PermissionDenied", 8: "ResourceExhausted", 9: "FailedPrecondition", 10: "Aborted",
    11: "OutOfRange", 12: "Unimplemented", 13: "Internal", 14: "Unavailable", 15: "DataLoss", 16: "Unauthenticated",
}
_CODE_IN_MESSAGE = re.compile(r"\((" + "|".join(list(GRPC_CODES.values()) + ["Canceled"]) + r");")
_FLIGHT_ERRORS = [  # pyarrow.flight's exception classes, most specific first
    (fl.FlightUnavailableError, "Unavailable"), (fl.FlightCancelledError, "Cancelled"),
    (fl.FlightTimedOutError, "DeadlineExceeded"), (fl.FlightUnauthenticatedError, "Unauthenticated"),
    (fl.FlightUnauthorizedError, "PermissionDenied"), (fl.FlightInternalError, "Internal"),
]


def grpc_code(e: BaseException) -> str:
    """The gRPC status name behind an ADBC or pyarrow.flight error, or
    `unclear:<type>` when the error does not say."""
    found = _CODE_IN_MESSAGE.findall(str(e))
    if found:
        return "Cancelled" if found[-1] == "Canceled" else found[-1]
    vendor = getattr(e, "vendor_code", None)
    if isinstance(vendor, int) and vendor in GRPC_CODES:
        return GRPC_CODES[vendor]
    for cls, name in _FLIGHT_ERRORS:
        if isinstance(e, cls):
            return name
    return f"unclear:{type(e).__name__}"


def error_key(e: BaseException) -> str:
    """The gRPC code of an error, with Trino's error name when Trino failed
    the query itself (Flightdeck adds `[Trino query <id>]` to those)."""
    code = grpc_code(e)
    m = re.search(r"\[FlightSQL\] ([A-Z][A-Z_]+): .*\[Trino query ", str(e)) or \
        re.match(r"([A-Z][A-Z_]+): .*\[Trino query ", str(e))
    return f"{code}:{m.group(1)}" if m else code


def in_time(fn, secs: float, what: str):
    """Runs `fn` in a thread, failing the test if it has not returned after
    `secs` (a hang is a failure of its own, not a timeout error)."""
    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        return pool.submit(fn).result(timeout=secs)
    except concurrent.futures.TimeoutError:
        pytest.fail(f"{what}: no answer after {secs} s (hung)")
    finally:
        pool.shutdown(wait=False)


# --- Flightdeck and Trino -------------------------------------------------


class Server:
    """`flightdeck serve` (FLIGHTDECK_BIN) with password auth for USER, as
    conftest.start_flightdeck starts it, with its log in `tmp`."""

    def __init__(self, trino_url: str, tmp: Path, *extra: str, log_level: str | None = None):
        self.tmp = tmp
        binary = flightdeck_binary()
        hashed = subprocess.run([binary, "hash-password", "--cost", "4"], input=PASSWORD.encode(),
                                capture_output=True, check=True).stdout.decode().strip()
        (tmp / "users").write_text(f"{USER}:{hashed}\n")
        env = dict(os.environ, **({"RUST_LOG": log_level} if log_level else {}))
        with open(tmp / "flightdeck.log", "w") as log:
            self.proc = subprocess.Popen(
                [binary, "serve", "--listen", "127.0.0.1:0", "--trino-url", trino_url,
                 "--auth", "password", "--users-file", str(tmp / "users"), "--admin-listen", "127.0.0.1:0", *extra],
                stdout=log, stderr=subprocess.STDOUT, env=env)
        at = listening(self.proc, tmp / "flightdeck.log")
        self.port = int(at["flight"].rsplit(":", 1)[1])
        self.uri = f"grpc://127.0.0.1:{self.port}"
        self.admin = at["admin"]
        deadline = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert self.alive() and time.time() < deadline, "Flightdeck did not start:\n" + self.log()
                time.sleep(0.05)

    def log(self) -> str:
        return (self.tmp / "flightdeck.log").read_text(errors="replace")

    def panics(self) -> list[str]:
        return [line for line in self.log().splitlines() if "panicked" in line]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def status(self, field: str) -> int:
        """A /proc/<pid>/status field in KiB (VmRSS, VmHWM)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise KeyError(field)

    def http(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.admin + path, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def wait_not_ready(self, within: float):
        """Asserts that /ready answers 503 within `within` seconds (after a
        SIGTERM: at once, give or take the signal's delivery)."""
        deadline = time.monotonic() + within
        seen = [self.http("/ready")[0]]
        while seen[-1] != 503 and time.monotonic() < deadline:
            time.sleep(0.01)
            seen.append(self.http("/ready")[0])
        assert seen[-1] == 503, f"/ready after SIGTERM: {seen}"

    def metric(self, name: str) -> float:
        """Sum of a Prometheus metric over its labels (0 when absent)."""
        text = self.http("/metrics")[1]
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(name) and line[len(name):len(name) + 1] in (" ", "{"))

    def connect(self, **kwargs):
        return flight_sql.connect(self.uri, db_kwargs={"username": USER, "password": PASSWORD, **kwargs})

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class TrinoProbe:
    """Looks at Trino directly, past Flightdeck and the proxy."""

    def __init__(self, trino_url: str):
        self.conn = trino.dbapi.connect(host="127.0.0.1", port=int(trino_url.rsplit(":", 1)[1]), user=USER)
        self.lock = threading.Lock()

    def rows(self, sql: str):
        with self.lock:
            cur = self.conn.cursor()
            cur.execute(sql)
            return cur.fetchall()

    def queries(self, marker: str | None = None, live_only: bool = False):
        """[(query_id, state, error_code, query)] of USER's statements that
        hold `marker` (all of them without one), this probe's own (which
        name system.runtime.queries) left out."""
        where = f"user = '{USER}' AND strpos(query, 'system.runtime.queries') = 0"
        if marker:
            where += f" AND strpos(query, '{marker}') > 0"
        if live_only:
            where += " AND state NOT IN ('FINISHED', 'FAILED')"
        return self.rows(f"SELECT query_id, state, error_code, query FROM system.runtime.queries WHERE {where} ORDER BY created")

    def live(self, marker: str | None = None):
        return self.queries(marker, live_only=True)

    def wait_gone(self, marker: str | None, secs: float) -> tuple[list, float]:
        """Waits until no query of `marker` (of USER, without one) is live;
        returns what is still live after `secs` (empty when all ended) and
        the time waited."""
        start = time.monotonic()
        while True:
            left = self.live(marker)
            waited = time.monotonic() - start
            if not left or waited > secs:
                return left, waited
            time.sleep(0.25)

    def wait_live(self, marker: str, secs: float) -> list:
        deadline = time.monotonic() + secs
        while not (found := self.live(marker)) and time.monotonic() < deadline:
            time.sleep(0.1)
        return found

    def kill(self, marker: str | None = None) -> list:
        """Kills the live queries of `marker` (of USER, without one); returns them."""
        left = self.live(marker)
        for qid, *_ in left:
            self.rows(f"CALL system.runtime.kill_query(query_id => '{qid}', message => 'fault test cleanup')")
        return left


@pytest.fixture(scope="module")
def probe(trino_url):
    p = TrinoProbe(trino_url)
    yield p
    p.conn.close()


@pytest.fixture(scope="module")
def proxy(trino_url):
    p = FaultProxy(trino_url.removeprefix("http://"))
    yield p
    p.close()


@pytest.fixture(scope="module")
def server(trino_url, proxy, tmp_path_factory):
    """Flightdeck behind the proxy: a small cache (so large results stream
    through), a short pending-query TTL, and debug logs for diagnosis."""
    s = Server(proxy.url, tmp_path_factory.mktemp("faults"),
               "--cache-max-bytes", "64MiB", "--cache-max-entry-bytes", "4MiB",
               "--pending-query-ttl-secs", str(PENDING_TTL), log_level="flightdeck=debug")
    print(f"\nFlightdeck log: {s.tmp / 'flightdeck.log'}")
    yield s
    s.stop()


@pytest.fixture
def marker(probe):
    """The test's marker literal; afterwards no query of USER (with the
    marker or not) may still be running on Trino."""
    m = f"fdfault_{uuid.uuid4().hex[:12]}"
    yield m
    left, _ = probe.wait_gone(None, 15)
    assert not left, f"queries of {USER} still running on Trino after the test: {left}"


@pytest.fixture(autouse=True)
def after_scenario(request, proxy):
    """The checks every scenario ends with; the proxy is healed for the next."""
    s = request.getfixturevalue("server") if "server" in request.fixturenames else None
    yield
    proxy.resume()
    proxy.passthrough()
    if s is not None:
        assert s.alive(), "Flightdeck exited:\n" + s.log()[-3000:]
        assert not s.panics(), s.panics()


# --- Flight SQL through pyarrow.flight ------------------------------------


def flight_client(server: Server) -> tuple[fl.FlightClient, fl.FlightCallOptions]:
    client = fl.FlightClient(server.uri)
    token = client.authenticate_basic_token(USER, PASSWORD)
    return client, fl.FlightCallOptions(headers=[token], timeout=60)


# Run as a separate process, killed with SIGKILL once it has read one batch:
# the kernel closes its connection with no gRPC goodbye.
KILLED_CLIENT = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
import test_faults as t
class S: uri = sys.argv[2]
client, opts = t.flight_client(S)
info = client.get_flight_info(t.statement_query(sys.argv[3]), opts)
reader = client.do_get(info.endpoints[0].ticket, opts)
print("read", reader.read_chunk().data.num_rows, flush=True)
time.sleep(600)
"""


# --- 1. Trino stopped -----------------------------------------------------


def test_trino_stopped_mid_stream(server, proxy, probe, marker):
    """ADBC reading a large result when Trino goes away gets Unavailable
    naming Trino, promptly, never a truncated success; after Trino is back,
    new queries work."""
    regions = f"SELECT '{marker}' AS m, name FROM tpch.tiny.region ORDER BY regionkey"
    region_names = ["AFRICA", "AMERICA", "ASIA", "EUROPE", "MIDDLE EAST"]
    conn = server.connect()
    try:
        cur = conn.cursor()
        cur.execute(regions)  # now in the cache
        assert [r[1] for r in cur.fetchall()] == region_names
        cur.execute(BIG.format(m=marker))
        reader = cur.fetch_record_batch()
        rows = sum(reader.read_next_batch().num_rows for _ in range(3))
        cut = proxy.cut()
        assert cut["cut"]

        def read_rest():
            n = rows
            try:
                for b in reader:
                    n += b.num_rows
            except Exception as e:  # noqa: BLE001 - the error is the point
                return n, e
            return n, None

        started = time.monotonic()
        total, err = in_time(read_rest, 60, "reading after Trino stopped")
        elapsed = time.monotonic() - started
        assert err is not None, f"truncated success: {total} of {LINEITEM_ROWS} rows and no error"
        assert total < LINEITEM_ROWS
        assert grpc_code(err) == "Unavailable", err
        assert re.search(r"Trino at \S+ is unavailable", str(err)), err
        print(f"\nerror after {elapsed:.2f} s and {total} rows: {str(err)[:200]}")

        # While Trino is away: a new query fails at once with Unavailable,
        # and /ready says so, while /health stays up.
        started = time.monotonic()
        with pytest.raises(adbc_driver_manager.Error) as info:
            in_time(lambda: cur.execute(f"SELECT '{marker}' AS m, count(*) FROM tpch.tiny.region"), 30, "query while cut")
        assert grpc_code(info.value) == "Unavailable", info.value
        print(f"uncached query while Trino is away: Unavailable after {time.monotonic() - started:.2f} s")
        assert time.monotonic() - started < 10
        assert server.http("/ready")[0] == 503
        assert server.http("/health")[0] == 200
        # What the cache holds is still answered, prepare included.
        in_time(lambda: cur.execute(regions), 30, "cached query while cut")
        assert [r[1] for r in cur.fetchall()] == region_names

        # Flightdeck could not reach Trino to cancel the query it was reading
        # (its one DELETE failed), so the query is orphaned on the Trino that
        # stayed up behind the proxy until Trino's client timeout (5 min by
        # default). A stopped Trino would have lost it: end it the same way.
        orphans = probe.kill()
        print(f"orphaned on Trino after the cut: {[(q[0], q[1]) for q in orphans]}")

        proxy.resume()
        assert server.http("/ready")[0] == 200
        cur.execute(f"SELECT '{marker}' AS m, count(*) FROM tpch.tiny.nation")
        assert cur.fetchall() == [(marker, 25)]
        cur.close()
    finally:
        conn.close()


def test_trino_stopped_during_cache_fill(server, proxy, probe, marker):
    """Two clients wait on one cache fill (one Trino query); Trino goes away
    mid-fill: both get Unavailable, the failure is not cached, and the same
    statement works once Trino is back."""
    sql = f"SELECT '{marker}' AS marker, * FROM tpch.tiny.orders"  # 15 000 rows: ~2 MiB, cached whole
    proxy.delay(0.2)  # about 10 s for the whole result at this pace

    def run():
        conn = server.connect()
        try:
            stmt = adbc_driver_manager.AdbcStatement(conn.adbc_connection)
            stmt.set_sql_query(sql)
            try:
                handle, _ = stmt.execute_query()
                return pa.RecordBatchReader._import_from_c(handle.address).read_all(), None
            except Exception as e:  # noqa: BLE001
                return None, e
            finally:
                stmt.close()
        finally:
            conn.close()

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(run) for _ in range(2)]
        assert probe.wait_live(marker, 30), "the fill never reached Trino"
        time.sleep(1)
        assert len(probe.live(marker)) == 1, "two waiters, one fill, one Trino query"
        proxy.cut()
        results = [f.result(timeout=60) for f in futures]
    for table, err in results:
        assert err is not None, f"got {table.num_rows} rows although Trino stopped mid-fill"
        assert grpc_code(err) == "Unavailable", err
    probe.kill()  # orphaned by the cut, as in test_trino_stopped_mid_stream
    proxy.resume()
    proxy.passthrough()
    table, err = run()
    assert err is None, err
    assert table.num_rows == 15000


# --- 2. Slow Trino --------------------------------------------------------


def test_slow_trino_results_are_complete(server, proxy, probe, marker):
    """200 ms per chunk from Trino: both statement paths still return
    exactly what Trino returns."""
    expected = probe.rows(ORDERS.format(m=marker))
    proxy.delay(0.2)
    conn = server.connect()
    try:
        started = time.monotonic()
        with conn.cursor() as cur:
            cur.execute(ORDERS.format(m=marker))
            got = in_time(cur.fetchall, 120, "slow query")
        slow = time.monotonic() - started
        # The plain path (no prepare), with a statement the cache has not seen.
        stmt = adbc_driver_manager.AdbcStatement(conn.adbc_connection)
        try:
            stmt.set_sql_query(ORDERS.format(m=marker + "_plain"))
            handle, _ = stmt.execute_query()
            plain = pa.RecordBatchReader._import_from_c(handle.address).read_all()
        finally:
            stmt.close()
    finally:
        conn.close()
    assert [list(r) for r in got] == [list(r) for r in expected]
    assert [list(r.values())[1:] for r in plain.to_pylist()] == [list(r)[1:] for r in expected]
    print(f"\n3000 rows through a slow Trino in {slow:.1f} s; proxy {proxy.stats()}")
    assert slow > 0.4  # the delay was really applied


def assert_timed_out(e: BaseException):
    """The ADBC driver reports its own deadline as DeadlineExceeded, or as
    Cancelled ("Timeout expired") when it cancels the call itself first."""
    assert grpc_code(e) in ("DeadlineExceeded", "Cancelled"), e
    assert re.search(r"(?i)deadline|timeout", str(e)), e


def _assert_cancelled_on_trino(probe, marker):
    """The test's query reached Trino and ended cancelled, not finished."""
    left, waited = probe.wait_gone(marker, 15)
    assert not left, f"still running {waited:.1f} s later: {left}"
    states = [(q[1], q[2]) for q in probe.queries(marker)]
    assert states and all(s == ("FAILED", "USER_CANCELED") for s in states), states


def test_slow_trino_query_timeout(server, proxy, probe, marker):
    """A client deadline on GetFlightInfo (waiting on a slow cache fill)
    ends the call with DeadlineExceeded and cancels the Trino query."""
    proxy.delay(0.2)
    conn = server.connect(**{adbc_driver_flightsql.DatabaseOptions.TIMEOUT_QUERY.value: "1.0"})
    try:
        stmt = adbc_driver_manager.AdbcStatement(conn.adbc_connection)
        stmt.set_sql_query(BIG.format(m=marker))  # the fill reads 4 MiB: ~25 s at this pace
        started = time.monotonic()
        with pytest.raises(adbc_driver_manager.Error) as info:
            in_time(stmt.execute_query, 30, "GetFlightInfo with a 1 s deadline")
        elapsed = time.monotonic() - started
        stmt.close()
    finally:
        conn.close()
    print(f"\nafter {elapsed:.1f} s: {str(info.value)[:160]}")
    assert_timed_out(info.value)
    assert elapsed < 5, elapsed
    _assert_cancelled_on_trino(probe, marker)


def test_slow_trino_fetch_timeout(server, proxy, probe, marker):
    """A client deadline on DoGet of a slow, uncached stream ends it with
    DeadlineExceeded and cancels the Trino query."""
    proxy.delay(0.2)
    conn = server.connect(**{adbc_driver_flightsql.DatabaseOptions.TIMEOUT_FETCH.value: "3.0"})
    try:
        with conn.cursor() as cur:
            cur.execute(UNCACHED_BIG.format(m=marker))
            started = time.monotonic()
            with pytest.raises(Exception) as info:
                in_time(cur.fetch_arrow_table, 60, "DoGet with a 3 s deadline")
            elapsed = time.monotonic() - started
    finally:
        conn.close()
    print(f"\nafter {elapsed:.1f} s: {str(info.value)[:160]}")
    assert_timed_out(info.value)
    assert elapsed < 10, elapsed
    _assert_cancelled_on_trino(probe, marker)


def test_slow_trino_client_cancel(server, proxy, probe, marker):
    """AdbcStatementCancel from another thread stops a slow stream at once
    and cancels the Trino query."""
    proxy.delay(0.2)
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(UNCACHED_BIG.format(m=marker))
            reader = cur.fetch_record_batch()
            threading.Timer(1.0, cur.adbc_cancel).start()
            started = time.monotonic()

            def read_all():
                for _ in reader:
                    pass

            with pytest.raises(Exception) as info:
                in_time(read_all, 60, "a cancelled read")
            elapsed = time.monotonic() - started
    finally:
        conn.close()
    print(f"\nafter {elapsed:.1f} s: {str(info.value)[:160]}")
    assert grpc_code(info.value) == "Cancelled" or "cancel" in str(info.value).lower(), info.value
    assert elapsed < 10, elapsed
    _assert_cancelled_on_trino(probe, marker)


# --- 3. Clients that vanish -----------------------------------------------


@pytest.mark.parametrize("how", ["cancel", "close"])
def test_client_drops_stream(server, probe, marker, how):
    """pyarrow.flight reads one batch of a large DoGet, then cancels the
    stream or closes the client: the Trino query is cancelled within seconds."""
    client, opts = flight_client(server)
    info = client.get_flight_info(statement_query(BIG.format(m=marker)), opts)
    reader = client.do_get(info.endpoints[0].ticket, opts)
    assert reader.read_chunk().data.num_rows > 0
    assert probe.live(marker), "the query should still be running on Trino"
    if how == "cancel":
        reader.cancel()
    del reader
    client.close()
    started = time.monotonic()
    _assert_cancelled_on_trino(probe, marker)
    print(f"\ncancelled on Trino within {time.monotonic() - started:.1f} s")


def test_client_process_killed(server, probe, marker):
    """A client process killed mid-stream (SIGKILL: the kernel closes its
    connection) does not leave its query running on Trino."""
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_CLIENT, str(Path(__file__).parent), server.uri, UNCACHED_BIG.format(m=marker)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        line = in_time(child.stdout.readline, 60, "the client's first batch")
        assert line.startswith("read "), line
        assert probe.live(marker)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    started = time.monotonic()
    _assert_cancelled_on_trino(probe, marker)
    print(f"\ncancelled on Trino within {time.monotonic() - started:.1f} s")


@pytest.mark.parametrize("sql", [BIG, UNCACHED_BIG], ids=["overflowed-cache-fill", "uncached"])
def test_parked_query_expires(server, probe, marker, sql):
    """GetFlightInfo and never DoGet: the parked Trino query keeps running
    until the pending TTL, then is cancelled; its ticket still works later
    (the statement runs again)."""
    client, opts = flight_client(server)
    try:
        info = client.get_flight_info(statement_query(sql.format(m=marker)), opts)
        parked_at = time.monotonic()
        assert probe.live(marker), "the parked query should be running on Trino"
        left, waited = probe.wait_gone(marker, PENDING_TTL + 15)
        assert not left, f"parked query not cancelled {waited:.1f} s after GetFlightInfo: {left}"
        gone_after = time.monotonic() - parked_at
        assert gone_after >= PENDING_TTL - 1, f"cancelled after {gone_after:.1f} s, before the TTL"
        assert [(q[1], q[2]) for q in probe.queries(marker)] == [("FAILED", "USER_CANCELED")]
        print(f"\nparked query cancelled {gone_after:.1f} s after GetFlightInfo (TTL {PENDING_TTL} s)")

        reader = client.do_get(info.endpoints[0].ticket, opts)
        assert reader.read_chunk().data.num_rows > 0
        reader.cancel()
    finally:
        client.close()


def test_parked_query_cancel_is_timely(trino_url, probe, marker, tmp_path):
    """The registry documents that an expired parked query is cancelled
    within about half its TTL after expiring (its janitor runs every TTL/2,
    at most 5 s). Five queries parked 1 s apart cover every phase of the
    janitor's period: each must end on Trino between TTL and TTL * 1.5
    (plus 1 s of slack) after its GetFlightInfo."""
    ttl = 10
    proxy = FaultProxy(trino_url.removeprefix("http://"))
    server = Server(proxy.url, tmp_path, "--pending-query-ttl-secs", str(ttl))
    try:
        client, opts = flight_client(server)
        parked = {}
        for i in range(5):
            client.get_flight_info(statement_query(UNCACHED_BIG.format(m=f"{marker}_{i}")), opts)
            parked[f"{marker}_{i}"] = time.time()
            time.sleep(1)
        left, _ = probe.wait_gone(marker, ttl * 2 + 10)
        assert not left, left
        delays = {}
        for _, state, error, query, end in probe.rows(
                'SELECT query_id, state, error_code, query, "end" FROM system.runtime.queries '
                f"WHERE strpos(query, '{marker}') > 0 AND strpos(query, 'system.runtime.queries') = 0"):
            assert (state, error) == ("FAILED", "USER_CANCELED")
            m = re.search(rf"'({marker}_\d)'", query).group(1)
            delays[m] = round(end.timestamp() - parked[m], 2)
        client.close()
        print(f"\nparked at 1 s intervals, TTL {ttl} s: cancelled after {sorted(delays.values())} s")
        assert len(delays) == 5
        assert min(delays.values()) >= ttl - 0.5, delays
        assert max(delays.values()) <= ttl * 1.5 + 1, f"cancelled later than TTL + TTL/2: {delays}"
    finally:
        server.stop()
        proxy.close()


def test_parked_queries_are_bounded(trino_url, probe, marker, tmp_path):
    """With --pending-queries 2, five GetFlightInfo without DoGet leave at
    most two queries running on Trino: the others are cancelled when they
    are evicted, which the registry's janitor (every 5 s at this TTL) does
    on a quiet server, so within 6 s. Every ticket still streams (evicted
    ones run again)."""
    proxy = FaultProxy(trino_url.removeprefix("http://"))
    # One user may hold all five: the registry's own bound evicts.
    server = Server(proxy.url, tmp_path, "--pending-queries", "2", "--pending-queries-per-user", "5",
                    "--pending-query-ttl-secs", "60")
    try:
        client, opts = flight_client(server)
        infos = [client.get_flight_info(statement_query(UNCACHED_BIG.format(m=f"{marker}_{i}")), opts)
                 for i in range(5)]
        started = time.monotonic()
        while len(live := probe.live(marker)) > 2 and time.monotonic() - started < 20:
            time.sleep(0.25)
        took = time.monotonic() - started
        print(f"\n{len(live)} parked queries live on Trino {took:.1f} s after 5 GetFlightInfo")
        assert len(live) <= 2, f"more parked queries running than --pending-queries 2: {live}"
        for info in infos:
            reader = client.do_get(info.endpoints[0].ticket, opts)
            assert reader.read_chunk().data.num_rows > 0
            reader.cancel()
        client.close()
        assert took <= 6, f"evicted parked queries ran on for {took:.1f} s"
    finally:
        server.stop()
        proxy.close()


def test_shutdown_with_open_stream(trino_url, probe, marker, tmp_path):
    """SIGTERM while a client holds a DoGet stream it has stopped reading
    (and another query is parked): Flightdeck exits within 20 s (under a
    Kubernetes grace period of 30 s, after which it would be killed) and
    leaves no query running on Trino."""
    proxy = FaultProxy(trino_url.removeprefix("http://"))
    server = Server(proxy.url, tmp_path, "--shutdown-grace-secs", "5")
    client, opts = flight_client(server)
    try:
        client.get_flight_info(statement_query(UNCACHED_BIG.format(m=f"{marker}_parked")), opts)
        info = client.get_flight_info(statement_query(UNCACHED_BIG.format(m=f"{marker}_streamed")), opts)
        reader = client.do_get(info.endpoints[0].ticket, opts)
        assert reader.read_chunk().data.num_rows > 0
        assert len(probe.live(marker)) == 2
        assert server.http("/ready")[0] == 200
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        # Draining: no longer ready (load balancers stop sending work), while
        # the open stream still flows for the grace period.
        server.wait_not_ready(within=1)
        assert reader.read_chunk().data.num_rows > 0, "the open stream is cut before its grace period"
        try:
            server.proc.wait(timeout=20)
            exited = time.monotonic() - started
        except subprocess.TimeoutExpired:
            exited = None
            server.proc.kill()  # what a grace period ends with
            server.proc.wait()
        left, _ = probe.wait_gone(marker, 10)
        print(f"\nexit after SIGTERM: {exited if exited is None else round(exited, 1)} s; left on Trino: {left}")
        probe.kill()  # so the next tests start clean whatever happened here
        assert exited is not None, "still serving 20 s after SIGTERM, with a client holding an unread stream"
        assert not left, f"queries orphaned on Trino by the shutdown: {left}"
    finally:
        client.close()
        server.stop()
        proxy.close()


def test_sigterm_lets_a_stream_in_flight_finish(trino_url, probe, marker, tmp_path):
    """SIGTERM while a client reads a stream: /ready turns 503 at once, the
    stream still runs to its last row within the grace period, and the
    process then exits."""
    server = Server(trino_url, tmp_path, "--shutdown-grace-secs", "15")
    client, opts = flight_client(server)
    try:
        sql = f"SELECT '{marker}' AS marker, random() AS r, orderkey FROM tpch.sf1.orders LIMIT 300000"
        reader = client.do_get(client.get_flight_info(statement_query(sql), opts).endpoints[0].ticket, opts)
        rows = reader.read_chunk().data.num_rows
        assert 0 < rows < 300_000, "the stream should still be in flight"
        started = time.monotonic()
        server.proc.send_signal(signal.SIGTERM)
        server.wait_not_ready(within=1)
        while True:
            try:
                rows += reader.read_chunk().data.num_rows
            except StopIteration:
                break
        assert rows == 300_000, f"the stream was cut at {rows} rows"
        server.proc.wait(timeout=15)
        print(f"\nstream finished and process exited {time.monotonic() - started:.1f} s after SIGTERM")
    finally:
        client.close()
        server.stop()


# --- 4. Load --------------------------------------------------------------


def _size(s: str) -> int:
    m = re.fullmatch(r"(\d+)\s*(|KiB|MiB|GiB)", s.strip())
    assert m, f"size {s!r}"
    return int(m.group(1)) * {"": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[m.group(2)]


def _pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(p / 100 * len(v) + 0.5) - 1))]


def _latency(values):
    ms = [x * 1000 for x in values]
    return {"n": len(ms), **{f"p{p}_ms": (round(_pct(ms, p), 2) if ms else None) for p in (50, 95, 99)},
            "max_ms": round(max(ms), 2) if ms else None}


def test_load(trino_url, probe, marker, tmp_path):
    """N clients, each on its own ADBC connection, mix cache hits and misses
    for T seconds, with Trino stopped for a few seconds half way through.

    `repeat` statements come from a fixed set warmed into the cache (hits
    while fresh, then stale while one refresh runs, misses again once
    expired); `unique` ones carry a fresh literal (a miss, then cached, so
    the cache fills and evicts). The only errors allowed are Unavailable, on
    queries that overlapped the outage, and the failures of an overloaded
    Trino (Internal or ResourceExhausted with Trino's error name, such as
    REMOTE_TASK_ERROR at hundreds of concurrent queries on one small node),
    relayed as Trino reported them; row counts are right; the server is
    alive without panics; nothing is left running on Trino; resident memory
    stays within the cache budget plus 200 MiB."""
    clients = int(os.environ.get("FLIGHTDECK_FAULT_CLIENTS", "50"))
    secs = float(os.environ.get("FLIGHTDECK_FAULT_SECS", "20"))
    budget_text = os.environ.get("FLIGHTDECK_FAULT_CACHE_MAX", "64MiB")
    unique_ratio = float(os.environ.get("FLIGHTDECK_FAULT_MISS_RATIO", "0.1"))
    outage = float(os.environ.get("FLIGHTDECK_FAULT_OUTAGE_SECS", "3"))
    budget = _size(budget_text)
    allowance = 200 << 20

    proxy = FaultProxy(trino_url.removeprefix("http://"))
    server = Server(proxy.url, tmp_path, "--cache-max-bytes", budget_text, "--pending-queries", "4096")
    try:
        repeats = [f"SELECT '{marker}' AS m, * FROM tpch.tiny.nation WHERE regionkey = {r}" for r in range(5)] + [
            f"SELECT '{marker}' AS m, orderkey, custkey, totalprice, orderdate FROM tpch.tiny.orders "
            f"WHERE orderkey <= {n} ORDER BY orderkey" for n in (100, 1000, 10000, 60000)]
        # Unique statements: about 1 900 rows (~150 KB of Arrow) each.
        unique_rows = dict(probe.rows("SELECT orderkey % 8, count(*) FROM tpch.tiny.orders GROUP BY 1"))
        conn = server.connect()
        with conn.cursor() as cur:
            repeat_rows = []
            for sql in repeats:
                cur.execute(sql)
                repeat_rows.append(cur.fetch_arrow_table().num_rows)
        conn.close()
        warmed = time.monotonic()

        results: list[tuple[str, float, float, str | None]] = []  # kind, start, end, error
        counter = iter(range(10**12))  # next() is atomic under the GIL
        deadline = [0.0]

        def start():  # run by the barrier before it releases anyone
            deadline[0] = time.monotonic() + secs

        start_barrier = threading.Barrier(clients + 1, action=start)

        def worker(i: int):
            rng = random.Random(i)
            try:
                c = server.connect()
            except Exception as e:  # noqa: BLE001
                now = time.monotonic()
                results.append(("connect", now, now, grpc_code(e)))
                start_barrier.wait()
                return
            try:
                cur = c.cursor()
                start_barrier.wait()
                while time.monotonic() < deadline[0]:
                    if rng.random() < unique_ratio:
                        n = next(counter)
                        kind, sql, want = "unique", (
                            f"SELECT '{marker}' AS m, {n} AS n, orderkey, custkey, totalprice, orderdate, comment "
                            f"FROM tpch.tiny.orders WHERE orderkey % 8 = {n % 8}"), unique_rows[n % 8]
                    else:
                        j = rng.randrange(len(repeats))
                        kind, sql, want = "repeat", repeats[j], repeat_rows[j]
                    t = time.monotonic()
                    try:
                        cur.execute(sql)
                        got = cur.fetch_arrow_table().num_rows
                        results.append((kind, t, time.monotonic(), None if got == want else "WrongRowCount"))
                    except Exception as e:  # noqa: BLE001
                        results.append((kind, t, time.monotonic(), error_key(e)))
                cur.close()
            finally:
                c.close()

        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
        for t in threads:
            t.start()
        start_barrier.wait(timeout=300)
        began = deadline[0] - secs
        rss_samples: list[int] = []
        cut_at = resume_at = None
        while time.monotonic() < deadline[0]:
            rss_samples.append(server.status("VmRSS"))
            if outage and cut_at is None and time.monotonic() >= began + secs / 2:
                cut_at = time.monotonic()
                proxy.cut()
                time.sleep(outage)
                proxy.resume()
                resume_at, resumed_wall = time.monotonic(), time.time()
            time.sleep(0.5)
        for t in threads:
            t.join(timeout=max(1.0, deadline[0] + 180 - time.monotonic()))
        hung = sum(t.is_alive() for t in threads)
        wall = time.monotonic() - began

        # What Trino ran at the cut lost its poller and its canceller; a
        # stopped Trino would have lost it. Once no client is left, whatever
        # of USER still runs and started before Trino came back is such an
        # orphan: kill it. Anything younger is a leak, and fails below.
        orphans = []
        if cut_at is not None:
            orphans = [q[0] for q in probe.rows(
                "SELECT query_id, to_unixtime(created) FROM system.runtime.queries WHERE state NOT IN ('FINISHED', 'FAILED') "
                f"AND user = '{USER}' AND strpos(query, 'system.runtime.queries') = 0") if q[1] < resumed_wall]
            for qid in orphans:
                probe.rows(f"CALL system.runtime.kill_query(query_id => '{qid}', message => 'fault test outage')")
        left, waited = probe.wait_gone(None, 60)
        time.sleep(1)  # let freed memory go back before reading RSS
        rss = server.status("VmRSS") << 10
        peak = server.status("VmHWM") << 10

        def expected(r) -> bool:
            if r[3].startswith(("Internal:", "ResourceExhausted:")):
                return True  # Trino itself failed the query, overloaded; relayed as it said
            return r[3] == "Unavailable" and cut_at is not None and r[1] <= resume_at and r[2] >= cut_at

        errors: dict[str, int] = {}
        unexpected: dict[str, int] = {}
        timeline: dict[int, list[int]] = {}  # 5 s bucket of the end: [ok, errors]
        for r in results:
            timeline.setdefault(int((r[2] - began) // 5 * 5), [0, 0])[r[3] is not None] += 1
            if r[3]:
                key = f"{r[0]}:{r[3]}"
                errors[key] = errors.get(key, 0) + 1
                if not expected(r):
                    unexpected[key] = unexpected.get(key, 0) + 1
        ok = [r for r in results if r[3] is None]
        lat = lambda kind=None: _latency([r[2] - r[1] for r in ok if kind in (None, r[0])])  # noqa: E731
        report = {
            "clients": clients, "seconds": secs, "wall_seconds": round(wall, 1), "unique_ratio": unique_ratio,
            "repeats_warmed_before_start_s": round(began - warmed, 1),
            "outage_seconds": round(resume_at - cut_at, 1) if cut_at else 0,
            "outage_at_second": round(cut_at - began, 1) if cut_at else None,
            "queries": len(results), "ok": len(ok), "ok_per_second": round(len(ok) / wall, 1),
            "errors": errors, "unexpected_errors": unexpected, "hung_clients": hung,
            "orphaned_by_outage": len(orphans),
            "latency_all": lat(), "latency_repeat": lat("repeat"), "latency_unique": lat("unique"),
            "cache_max_bytes": budget, "rss_mib_after": round(rss / 2**20, 1), "rss_mib_peak": round(peak / 2**20, 1),
            "rss_mib_median_during": round(sorted(rss_samples)[len(rss_samples) // 2] / 1024, 1) if rss_samples else None,
            "trino_queries": server.metric("flightdeck_trino_queries_total"),
            "cache_hits": server.metric("flightdeck_cache_hits_total"),
            "cache_stale": server.metric("flightdeck_cache_stale_total"),
            "cache_misses": server.metric("flightdeck_cache_misses_total"),
            "cache_evictions": server.metric("flightdeck_cache_evictions_total"),
            "left_running_on_trino": len(left), "alive": server.alive(), "panics": len(server.panics()),
            "timeline_5s_ok_errors": [[t, *v] for t, v in sorted(timeline.items())],
        }
        text = json.dumps(report, indent=2)
        (tmp_path / "load.json").write_text(text)
        if out := os.environ.get("FLIGHTDECK_FAULT_REPORT"):
            Path(out).write_text(text)
        print(f"\nload report ({tmp_path / 'load.json'}):\n{text}")

        assert server.alive(), "Flightdeck exited under load:\n" + server.log()[-3000:]
        assert not server.panics(), server.panics()[:5]
        assert hung == 0, f"{hung} clients still waiting 180 s after the end"
        assert not unexpected, f"unexpected errors: {unexpected} (all: {errors})"
        assert report["latency_repeat"]["n"] > 0 and report["latency_unique"]["n"] > 0
        if cut_at is not None:  # and the load went on after Trino came back
            assert any(r[3] is None and r[0] == "unique" and r[1] > resume_at for r in results)
        assert not left, f"still running on Trino {waited:.0f} s after the load: {left[:5]}"
        assert rss <= budget + allowance, f"RSS {rss >> 20} MiB over budget {budget >> 20} MiB + 200 MiB"
    finally:
        server.stop()
        proxy.close()
