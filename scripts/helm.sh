#!/usr/bin/env bash
# Helm for checking the chart in deploy/helm/flightdeck.
#
#   scripts/helm.sh               installs helm if needed, prints its path
#   scripts/helm.sh ARGS...       the same, then runs `helm ARGS...`
#
# Helm is built from source with `go install` (Go must be on PATH) into
# $FLIGHTDECK_CACHE_DIR/bin (default ~/.cache/flightdeck/bin), once per
# version; messages go to stderr, so stdout is only the path (or helm's own
# output). The link flags are those of Helm's release build: without them
# `helm version` is incomplete and `helm template` assumes Kubernetes 1.20,
# which the chart's kubeVersion (>= 1.27) refuses.
#
# Environment:
#   FLIGHTDECK_CACHE_DIR   cache directory          (default ~/.cache/flightdeck)
#   HELM_VERSION           Helm v3 release to build (default v3.22.0)
set -euo pipefail

VERSION=${HELM_VERSION:-v3.22.0}
# The Kubernetes minor that Helm's client libraries (k8s.io/client-go v0.37) track.
K8S_MAJOR=1
K8S_MINOR=37
BIN_DIR=${FLIGHTDECK_CACHE_DIR:-$HOME/.cache/flightdeck}/bin
HELM=$BIN_DIR/helm

installed_version() {
  [[ -x "$HELM" ]] && "$HELM" version --template '{{.Version}}' 2>/dev/null || true
}

if [[ "$(installed_version)" != "$VERSION" ]]; then
  if ! command -v go >/dev/null; then
    [[ -x /usr/local/go/bin/go ]] && PATH="/usr/local/go/bin:$PATH" || {
      echo "scripts/helm.sh: Go is needed to build helm $VERSION" >&2
      exit 1
    }
  fi
  echo "scripts/helm.sh: building helm $VERSION into $BIN_DIR (a few minutes the first time)" >&2
  mkdir -p "$BIN_DIR"
  ldflags="-w -s -X helm.sh/helm/v3/internal/version.version=$VERSION"
  ldflags+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    ldflags+=" -X $pkg.k8sVersionMajor=$K8S_MAJOR -X $pkg.k8sVersionMinor=$K8S_MINOR"
  done
  GOBIN=$BIN_DIR CGO_ENABLED=0 go install -trimpath -ldflags "$ldflags" "helm.sh/helm/v3/cmd/helm@$VERSION" >&2
  if [[ "$(installed_version)" != "$VERSION" ]]; then
    echo "scripts/helm.sh: $HELM does not report $VERSION after the build" >&2
    exit 1
  fi
fi

if [[ $# -eq 0 ]]; then
  echo "$HELM"
else
  exec "$HELM" "$@"
fi
