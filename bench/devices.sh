#!/usr/bin/env bash
# devicemanager benchmark (issue 15): end-to-end jobs/s and round-trip p50/p99 of
# tcp.check, from the API call to the stored result, with 4 `mware poller` processes,
# against Celery 5.2 (Debian's python3-celery) with 4 worker processes on the same
# RabbitMQ with the same durability (persistent messages, acks_late). Each side gets its
# own RabbitMQ virtual host; everything started here is stopped by PID at the end.
#   bash bench/devices.sh [seconds] [clients]
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-20}
CLIENTS=${2:-64}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/mware-target}"
# Debian's python and its python3-celery (a python3 earlier in PATH, e.g. pyenv, has no celery).
PY=/usr/bin/python3
$PY -c "import celery" 2>/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-celery >/dev/null; }
cargo build --release -q -p mware --bin mware
cargo build --release -q -p mware-devices --example bench
BIN="$CARGO_TARGET_DIR/release/mware"
WORK=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 1; for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rabbitmqctl -q delete_vhost mware-bench-m >/dev/null 2>&1 || true; rabbitmqctl -q delete_vhost mware-bench-c >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
for v in mware-bench-m mware-bench-c; do
  rabbitmqctl -q delete_vhost "$v" >/dev/null 2>&1 || true
  rabbitmqctl -q add_vhost "$v"; rabbitmqctl -q set_permissions -p "$v" guest '.*' '.*' '.*'
done
# The device: a TCP listener on loopback that accepts and closes.
$PY -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", 0)); s.listen(4096)
print(s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept(); c.close()
' > "$WORK/dev.port" & pids+=($!)
sleep 0.5; TARGET="127.0.0.1:$(head -1 "$WORK/dev.port")"
PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
DSN="amqp://guest:guest@127.0.0.1:5672/mware-bench-m"
cat > "$WORK/site.json" <<JSON
{"site": "bench", "coordination": {"backend": "embedded", "path": "$WORK/var/coord.sqlite"},
 "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": [
   {"name": "b10", "roletype": "mware", "iface": "lo", "group": 1, "order": 10, "api_port": $PORT,
    "devicemanager": {"amqp": "$DSN", "satellites": ["bench"], "token_env": "MWARE_DM_TOKEN",
                      "allowed_targets": {"bench": ["127.0.0.1"]}}}]}]}
JSON
export MWARE_API_TOKEN=bench-api-token MWARE_DM_TOKEN=bench-token
"$BIN" run --config "$WORK/site.json" --instance b10 > "$WORK/mware.log" 2>&1 & pids+=($!)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/api/devicemanager/v1/satellites" | grep -q '"connected":true' && break; sleep 0.2; done
for i in 1 2 3 4; do
  MWARE_AMQP_DSN="$DSN" "$BIN" poller --satellite bench --concurrency 32 --name "bench$i" > "$WORK/poller$i.log" 2>&1 & pids+=($!)
done
sleep 2
# CPU seconds (user+system) of a process, from /proc.
cpu() { awk -v t="$(getconf CLK_TCK)" '{printf "%.2f", ($14+$15)/t}' "/proc/$1/stat" 2>/dev/null || echo 0; }
DAEMON=${pids[1]}; POLLERS="${pids[2]} ${pids[3]} ${pids[4]} ${pids[5]}"
BEAM=$(pgrep -u rabbitmq -x beam.smp | head -1 || true)
d0=$(cpu "$DAEMON"); b0=$(cpu "$BEAM"); p0=0; for p in $POLLERS; do p0=$(echo "$p0 + $(cpu "$p")" | bc); done
echo "== mware: 4 pollers, $CLIENTS clients, ${SECS}s, target $TARGET"
"$CARGO_TARGET_DIR/release/examples/bench" --api "http://127.0.0.1:$PORT" --target "$TARGET" --satellite bench --clients "$CLIENTS" --seconds "$SECS" | tee "$WORK/mware.out"
d1=$(cpu "$DAEMON"); b1=$(cpu "$BEAM"); p1=0; for p in $POLLERS; do p1=$(echo "$p1 + $(cpu "$p")" | bc); done
jobs=$(awk '{print $2}' "$WORK/mware.out")
echo "   CPU per job: mware daemon $(echo "($d1 - $d0) * 1000000 / $jobs" | bc) us, 4 pollers $(echo "($p1 - $p0) * 1000000 / $jobs" | bc) us, RabbitMQ $(echo "($b1 - $b0) * 1000000 / $jobs" | bc) us"
echo "== celery 5.2: 4 worker processes (prefork), $CLIENTS clients, ${SECS}s"
export CELERY_BROKER="amqp://guest:guest@127.0.0.1:5672/mware-bench-c"
(cd bench && exec $PY -m celery -A devices_celery worker --concurrency 4 --pool prefork -Q tcpcheck --loglevel WARNING) > "$WORK/celery.log" 2>&1 & pids+=($!)
sleep 6
WORKERS=$(pgrep -f "devices_celery worker" | tr '\n' ' ')
wsum() { t=0; for p in $WORKERS; do t=$(echo "$t + $(cpu "$p")" | bc); done; echo "$t"; }
w0=$(wsum); b0=$(cpu "$BEAM")
(cd bench && $PY devices_celery.py client --clients "$CLIENTS" --seconds "$SECS" --target "$TARGET") | tee "$WORK/celery.out"
w1=$(wsum); b1=$(cpu "$BEAM"); jobs=$(awk '{print $2}' "$WORK/celery.out")
echo "   CPU per job: celery workers $(echo "($w1 - $w0) * 1000000 / $jobs" | bc) us, RabbitMQ $(echo "($b1 - $b0) * 1000000 / $jobs" | bc) us"
