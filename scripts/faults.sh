#!/usr/bin/env bash
# Fault tests at full size: tests/python/test_faults.py (Trino stopped
# mid-stream, slow Trino, clients that vanish, parked queries) with its load
# test at 500 clients for 120 s instead of CI's 50 for 20 s.
#
#   scripts/faults.sh [pytest args]      # e.g. -k load
#
# Builds nothing: it runs $FLIGHTDECK_BIN, else the newer of the release and
# debug binaries under $CARGO_TARGET_DIR. Environment:
#   FLIGHTDECK_FAULT_CLIENTS     concurrent clients of the load test (500)
#   FLIGHTDECK_FAULT_SECS        its duration in seconds (120)
#   FLIGHTDECK_FAULT_CACHE_MAX   the cache budget it runs with (64MiB)
#   FLIGHTDECK_FAULT_MISS_RATIO  share of its statements that are unique (cache misses) (0.1)
#   FLIGHTDECK_FAULT_OUTAGE_SECS Trino cut off this long half way through the load (3; 0 for none)
# The load report (latency percentiles, RSS, errors by gRPC code) is printed
# and kept under $FLIGHTDECK_CACHE_DIR/faults/.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"

if [[ -z "${FLIGHTDECK_BIN:-}" ]]; then
  for b in "$CARGO_TARGET_DIR/release/flightdeck" "$CARGO_TARGET_DIR/debug/flightdeck"; do
    if [[ -x "$b" && ( -z "${FLIGHTDECK_BIN:-}" || "$b" -nt "$FLIGHTDECK_BIN" ) ]]; then
      FLIGHTDECK_BIN=$b
    fi
  done
fi
if [[ -z "${FLIGHTDECK_BIN:-}" ]]; then
  echo "faults.sh: no flightdeck binary under $CARGO_TARGET_DIR; build one first (cargo build)" >&2
  exit 1
fi
export FLIGHTDECK_BIN
echo "faults.sh: $FLIGHTDECK_BIN ($(date -u -r "$FLIGHTDECK_BIN" '+%F %T UTC'))"

# A Trino this run starts is stopped when it ends; one already up is left alone.
if ! scripts/trino.sh status >/dev/null; then
  trap 'scripts/trino.sh stop' EXIT
fi
scripts/trino.sh start

VENV=$FLIGHTDECK_CACHE_DIR/venv
[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -r tests/python/requirements.txt

export FLIGHTDECK_FAULT_CLIENTS=${FLIGHTDECK_FAULT_CLIENTS:-500}
export FLIGHTDECK_FAULT_SECS=${FLIGHTDECK_FAULT_SECS:-120}
mkdir -p "$FLIGHTDECK_CACHE_DIR/faults"
export FLIGHTDECK_FAULT_REPORT=${FLIGHTDECK_FAULT_REPORT:-$FLIGHTDECK_CACHE_DIR/faults/load-$(date -u +%Y%m%dT%H%M%SZ).json}
# Each client holds a gRPC connection, and Flightdeck one per client too.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

status=0
"$VENV/bin/pytest" -q -s -W ignore::Warning tests/python/test_faults.py "$@" || status=$?
[[ -s "$FLIGHTDECK_FAULT_REPORT" ]] && echo "faults.sh: load report in $FLIGHTDECK_FAULT_REPORT"
exit $status
