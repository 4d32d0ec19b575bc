#!/usr/bin/env bash
# Installs what the tests need and runs all of them:
#   1. Rust unit and integration tests (the integration tests start the
#      local Trino themselves through scripts/trino.sh), and the benchmarks
#      once each in test mode (a smoke run of the debug build, no timing);
#   2. the Python ADBC client tests, in a virtual environment.
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

step "Python client tests"
VENV=$FLIGHTDECK_CACHE_DIR/venv
[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -r tests/python/requirements.txt
FLIGHTDECK_BIN="$CARGO_TARGET_DIR/debug/flightdeck" "$VENV/bin/pytest" -q tests/python

step "all tests passed"
