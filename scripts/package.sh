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
  [ -x "$CARGO_TARGET_DIR/debug/mware" ] || { echo "package: no $CARGO_TARGET_DIR/debug/mware: build it first" >&2; exit 1; }
  # The debug binary as it is (not stripped, gzip at its fastest): a test package.
  exec cargo deb -p mware --profile dev --no-build --no-strip --fast -Z gz --offline -o "$out"
fi
exec cargo deb -p mware --locked -o "$CARGO_TARGET_DIR/debian/"
