#!/usr/bin/env bash
# Regenerates the protobuf/tonic code of the vendored etcd-client
# (vendor/etcd-client/src/rpc/generated/*.rs) from vendor/etcd-client/proto with
# tonic-prost-build, as upstream's build script did. Needs protoc (`PROTOC` may name it;
# scripts/setup.sh installs Debian's). Run it after changing the protos or upgrading
# etcd-client or tonic-prost-build; the test `cargo test -p mware-etcd-proto-gen` fails
# while the checked-in code is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/mware-target}"
cargo run -q -p mware-etcd-proto-gen -- "$@"
