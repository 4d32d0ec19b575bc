#!/usr/bin/env bash
# The full dashboard-workload sweep: Trino direct, Flightdeck pass-through
# and Flightdeck with a warm cache, at 1, 4, 16 and 64 concurrent clients,
# on tpch sf1 and a 5.3-million-row energy series built inside Trino's
# memory catalog (once; later runs reuse it while Trino stays up).
#
#   scripts/bench.sh [extra harness options, e.g. --queries 400 --concurrency 1,16]
#
# Writes docs/bench/load.json and docs/bench/load-latency.svg and appends a
# summary to docs/benchmarks.md. Builds an optimised binary the first time.
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"
scripts/trino.sh start
cargo bench --bench load -- --scale full --write-docs "$@"
