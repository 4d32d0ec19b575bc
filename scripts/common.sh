# Shared settings for the project's scripts (sourced, not run).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export FLIGHTDECK_CACHE_DIR=${FLIGHTDECK_CACHE_DIR:-$HOME/.cache/flightdeck}
# Builds go outside the clone so a fresh checkout reuses earlier work.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$FLIGHTDECK_CACHE_DIR/target}
if ! command -v cargo >/dev/null && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
