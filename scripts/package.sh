#!/usr/bin/env bash
# Builds mware's Debian package with cargo-deb (installed by scripts/setup.sh):
#   bash scripts/package.sh                 # release build, .deb in $CARGO_TARGET_DIR/debian/
#   bash scripts/package.sh --dev OUT_DIR   # from the debug binary already built (tests)
# Install with `dpkg -i`, then write /etc/mware/site.json and `systemctl enable --now
# mware@<role name>` (docs/operations.md).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/mware-target}"
command -v cargo-deb >/dev/null 2>&1 || { echo "package: cargo-deb is missing (bash scripts/setup.sh installs it)" >&2; exit 1; }
if [ "${1:-}" = "--dev" ]; then
  out="${2:?usage: package.sh --dev OUT_DIR}"
  bin="$CARGO_TARGET_DIR/debug/mware"
  [ -x "$bin" ] || { echo "package: no $bin: build it first" >&2; exit 1; }
  # A test package from the debug binary, without a release build: a stripped copy is put
  # where cargo-deb looks for a release binary, in a folder of its own; gzip at its fastest
  # by the system's gzip (cargo-deb's own compressor took minutes on a loaded machine).
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' EXIT
  mkdir "$stage/release"
  strip -o "$stage/release/mware" "$bin"
  CARGO_TARGET_DIR="$stage" cargo deb -p mware --no-build --no-strip --fast --compress-system -Z gz --offline -o "$out"
  exit 0
fi
exec cargo deb -p mware --locked -o "$CARGO_TARGET_DIR/debian/"
