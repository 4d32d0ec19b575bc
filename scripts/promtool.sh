#!/usr/bin/env bash
# promtool, for checking and unit-testing the alert rules in
# deploy/helm/flightdeck/files/prometheus-rules.yaml.
#
#   scripts/promtool.sh               installs promtool if needed, prints its path
#   scripts/promtool.sh ARGS...       the same, then runs `promtool ARGS...`
#
# Built once with `go install` (Go must be on PATH) into
# $FLIGHTDECK_CACHE_DIR/bin (default ~/.cache/flightdeck/bin); messages go to
# stderr, so stdout is only the path (or promtool's own output).
#
# Environment:
#   FLIGHTDECK_CACHE_DIR   cache directory                     (default ~/.cache/flightdeck)
#   PROMETHEUS_VERSION     the prometheus Go module's version  (default v0.316.0)
set -euo pipefail

VERSION=${PROMETHEUS_VERSION:-v0.316.0}
BIN_DIR=${FLIGHTDECK_CACHE_DIR:-$HOME/.cache/flightdeck}/bin
PROMTOOL=$BIN_DIR/promtool
STAMP=$BIN_DIR/promtool.version

if [[ ! -x "$PROMTOOL" || "$(cat "$STAMP" 2>/dev/null)" != "$VERSION" ]]; then
  if ! command -v go >/dev/null; then
    [[ -x /usr/local/go/bin/go ]] && PATH="/usr/local/go/bin:$PATH" || {
      echo "scripts/promtool.sh: Go is needed to build promtool $VERSION" >&2
      exit 1
    }
  fi
  echo "scripts/promtool.sh: building promtool $VERSION into $BIN_DIR (several minutes the first time)" >&2
  mkdir -p "$BIN_DIR"
  GOBIN=$BIN_DIR CGO_ENABLED=0 go install -trimpath "github.com/prometheus/prometheus/cmd/promtool@$VERSION" >&2
  echo "$VERSION" > "$STAMP"
fi

if [[ $# -eq 0 ]]; then
  echo "$PROMTOOL"
else
  exec "$PROMTOOL" "$@"
fi
