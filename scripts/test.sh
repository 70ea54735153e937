#!/usr/bin/env bash
# Runs mware's whole test suite: installs/starts what the tests need (scripts/setup.sh),
# checks format and lints, then runs every test of the workspace. Tests start their own
# etcd, PostgreSQL instances and sshd on loopback ports and kill what they started by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/mware-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE=1
# Hygiene: one format, no clippy warning.
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo machete crates tools   # no unused dependency (vendor/ is upstream's)
python3 scripts/module-cycles.py   # no circle of `use` between the modules of a crate
# Everything builds with only the Rust toolchain: no protoc (the etcd client's generated
# code is checked in, vendor/etcd-client/MWARE.md). The same artifacts serve the tests.
PROTOC=/nonexistent cargo test --workspace --no-run
# Unit and integration tests of every crate. Tests that start processes are bounded in time;
# two at a time keeps timing-sensitive failover tests honest on a 2-core machine.
# The log is kept and, on failure, each failing test's own output is printed again at the
# end (without backtrace frames), so a CI that shows only the tail still names the cause.
LOG=$(mktemp /tmp/mware-test.XXXXXX.log)
set +e
cargo test --workspace --no-fail-fast -- --test-threads=2 "$@" 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}
set -e
if [ "$rc" -ne 0 ]; then
    echo
    echo "=== what failed (whole log: $LOG) ==="
    awk '/^---- /{n=40} n>0 && !/^ +[0-9]+: / && !/^ +at /{print; n--}' "$LOG"
    grep -E "^error: |^    \`-p " "$LOG" || true
fi
exit "$rc"
