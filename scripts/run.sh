#!/usr/bin/env bash
# Runs Flightdeck in the foreground against Trino.
#
#   scripts/run.sh [extra `flightdeck serve` flags]
#
# Without FLIGHTDECK_TRINO_URL, a local Trino 476 is started first
# (scripts/trino.sh). Defaults: Flight SQL on 127.0.0.1:50051, Trino's own
# client protocol on 127.0.0.1:8081, no client authentication (any user name
# is passed to Trino as the user).
set -euo pipefail
source "$(dirname "$0")/common.sh"
cd "$ROOT"

if [[ -z "${FLIGHTDECK_TRINO_URL:-}" ]]; then
  scripts/trino.sh start
  export FLIGHTDECK_TRINO_URL="http://127.0.0.1:${TRINO_PORT:-8080}"
fi
export FLIGHTDECK_LISTEN=${FLIGHTDECK_LISTEN:-127.0.0.1:50051}
export FLIGHTDECK_TRINO_PROTOCOL_LISTEN=${FLIGHTDECK_TRINO_PROTOCOL_LISTEN-127.0.0.1:8081}

cargo build --release --bin flightdeck
cat <<MSG

Flightdeck: Flight SQL on grpc://$FLIGHTDECK_LISTEN, Trino at $FLIGHTDECK_TRINO_URL.
Connect with Python ADBC:
    import adbc_driver_flightsql.dbapi as flight_sql
    conn = flight_sql.connect("grpc://$FLIGHTDECK_LISTEN", db_kwargs={"username": "me", "password": ""})
    cur = conn.cursor(); cur.execute("SELECT * FROM tpch.tiny.nation"); print(cur.fetch_arrow_table())
Or with any Trino client, unchanged, at http://${FLIGHTDECK_TRINO_PROTOCOL_LISTEN:-(off)}:
    trino --server http://${FLIGHTDECK_TRINO_PROTOCOL_LISTEN:-(off)} --user me
    jdbc:trino://${FLIGHTDECK_TRINO_PROTOCOL_LISTEN:-(off)}?user=me          trino://me@${FLIGHTDECK_TRINO_PROTOCOL_LISTEN:-(off)}/tpch/tiny
Stop with Ctrl-C (Trino keeps running: scripts/trino.sh stop).

MSG
exec "$CARGO_TARGET_DIR/release/flightdeck" serve "$@"
