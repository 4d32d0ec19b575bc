#!/usr/bin/env bash
# Installs what the tests need and runs all of them:
#   1. Rust unit and integration tests (the integration tests start the
#      local Trino themselves through scripts/trino.sh), and the benchmarks
#      once each in test mode (a smoke run of the debug build, no timing);
#   2. the client tests: Python ADBC and the SQLAlchemy dialect in a virtual
#      environment, the Flight SQL JDBC driver, Trino's JDBC driver against
#      the Trino-protocol port, and a headless Superset in
#      a virtual environment of its own.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"

step() { printf '\n==> %s\n' "$*"; }

step "Trino 476 (fetched once, cached in $FLIGHTDECK_CACHE_DIR)"
# A Trino this run starts is stopped when it ends; one already up is left alone.
if ! scripts/trino.sh status >/dev/null; then
  trap 'scripts/trino.sh stop' EXIT
fi
scripts/trino.sh start

step "Rust tests and benchmark smoke run"
# --all-targets includes benches/, run once each in test mode.
cargo test --all-targets

step "Arrow Flight SQL JDBC driver (fetched once with Maven)"
JDBC_VERSION=18.3.0
export FLIGHTDECK_JDBC_JAR=$FLIGHTDECK_CACHE_DIR/dl/flight-sql-jdbc-driver-$JDBC_VERSION.jar
if [[ ! -s "$FLIGHTDECK_JDBC_JAR" ]]; then
  mvn -q dependency:copy -Dartifact=org.apache.arrow:flight-sql-jdbc-driver:$JDBC_VERSION -DoutputDirectory="$FLIGHTDECK_CACHE_DIR/dl"
fi

step "Trino's own JDBC driver, for Flightdeck's Trino-protocol port (fetched once with Maven)"
TRINO_JDBC_VERSION=476
export FLIGHTDECK_TRINO_JDBC_JAR=$FLIGHTDECK_CACHE_DIR/dl/trino-jdbc-$TRINO_JDBC_VERSION.jar
if [[ ! -s "$FLIGHTDECK_TRINO_JDBC_JAR" ]]; then
  mvn -q dependency:copy -Dartifact=io.trino:trino-jdbc:$TRINO_JDBC_VERSION -DoutputDirectory="$FLIGHTDECK_CACHE_DIR/dl"
fi

step "Superset, in its own virtual environment"
SUPERSET_VENV=$FLIGHTDECK_CACHE_DIR/superset-venv
[[ -x "$SUPERSET_VENV/bin/python" ]] || python3 -m venv "$SUPERSET_VENV"
"$SUPERSET_VENV/bin/pip" install -q --disable-pip-version-check -r tests/superset/requirements.txt
export FLIGHTDECK_SUPERSET_PYTHON=$SUPERSET_VENV/bin/python

step "Helm and promtool, built once with Go, for the deploy/ checks"
scripts/helm.sh >/dev/null
scripts/promtool.sh >/dev/null

step "Python client tests (ADBC, SQLAlchemy, and JDBC and Superset driven from them) and the deploy/ checks"
VENV=$FLIGHTDECK_CACHE_DIR/venv
[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -r tests/python/requirements.txt
FLIGHTDECK_BIN="$CARGO_TARGET_DIR/debug/flightdeck" "$VENV/bin/pytest" -q tests/python

step "all tests passed"
