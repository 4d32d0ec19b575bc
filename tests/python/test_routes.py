"""Every statement answer names who produced it: `x-flightdeck-route`
(`cache` or `trino`) beside `x-flightdeck-cache`, on GetFlightInfo and on
DoGet, as a gRPC client with header middleware (pyarrow.flight) sees them."""

import uuid

import pyarrow.flight as fl
import pytest

from conftest import PASSWORD, USER, statement_query


class _Headers(fl.ClientMiddlewareFactory):
    """Keeps the response headers of each call, by method."""

    def __init__(self):
        self.seen = []

    def start_call(self, info):
        factory = self

        class Middleware(fl.ClientMiddleware):
            def received_headers(self, headers):
                factory.seen.append((info.method, {k: v for k, v in headers.items() if k.startswith("x-flightdeck")}))

        return Middleware()


@pytest.fixture(scope="module")
def client(flightdeck):
    headers = _Headers()
    c = fl.FlightClient(flightdeck, middleware=[headers])
    token = c.authenticate_basic_token(USER, PASSWORD)
    yield c, fl.FlightCallOptions(headers=[token]), headers
    c.close()


def _routes(client, sql: str):
    """(route, cache) of GetFlightInfo and of DoGet for `sql`, and its rows."""
    c, options, headers = client
    headers.seen.clear()
    info = c.get_flight_info(statement_query(sql), options)
    rows = c.do_get(info.endpoints[0].ticket, options).read_all().to_pylist()
    # Headers and trailers arrive in separate calls: merge them per method.
    by_method = {}
    for m, h in headers.seen:
        by_method.setdefault(m, {}).update(h)
    answer = lambda m: (by_method[m].get("x-flightdeck-route", [None])[0], by_method[m].get("x-flightdeck-cache", [None])[0])
    return answer(fl.FlightMethod.GET_FLIGHT_INFO), answer(fl.FlightMethod.DO_GET), rows


def test_a_miss_runs_on_trino_and_a_hit_comes_from_the_cache(client):
    sql = f"SELECT name, '{uuid.uuid4().hex}' AS marker FROM tpch.tiny.region ORDER BY name"
    info, get, rows = _routes(client, sql)
    assert info == ("trino", "miss") and get == ("trino", "miss")
    again_info, again_get, again = _routes(client, sql)
    assert again_info == ("cache", "hit") and again_get == ("cache", "hit")
    assert again == rows and len(rows) == 5


def test_an_uncacheable_statement_runs_on_trino(client):
    for sql in ["SELECT now() IS NOT NULL AS ok", "SHOW SCHEMAS FROM tpch"]:
        info, get, rows = _routes(client, sql)
        assert info == ("trino", "bypass") and get == ("trino", "bypass"), sql
        assert rows, sql
