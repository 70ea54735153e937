#!/usr/bin/env bash
# Benchmark: syslog messages in → SNMP traps out, mware's alarms service against
# rsyslog (Debian 12: 8.2302) with omsnmp (rsyslog-snmp), in the same run on the same
# machine. Each side gets the same rising rates of UDP syslog (every message matches one
# rule; every message differs, so no dedupe); one v2c trap per message goes to the same
# manager, a plain UDP socket with a 64 MB receive buffer, drained every millisecond (so
# a trap wakes no thread), that counts datagrams and reads
# each trap's send time from the message it carries (snmptrapd itself saturates first on
# this machine, so it is kept for the correctness tests). mware runs one instance on the
# embedded coordinator (SQLite): every alarm is durable in the group's store before its
# trap is sent; rsyslog keeps nothing. Both ask for a 16 MB socket receive buffer (mware
# always does; rsyslog through imudp's rcvbufSize); the kernel caps it at net.core.rmem_max.
#
#   bash bench/alarms.sh [RATES] [SECONDS]   (default 5000,10000,20000,40000,60000,80000 for 5 s)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/mware-target}"
RATES="${1:-5000,10000,20000,40000,60000,80000}"
SECS="${2:-5}"
cargo build -q --release -p mware
cargo build -q --release -p mware-alarms --example syslog_bench
T="$CARGO_TARGET_DIR/release"
W=$(mktemp -d /tmp/mware-alarms-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
MANAGER=127.0.0.1:16299

cat > "$W/site.json" <<JSON
{"site": "bench", "coordination": {"backend": "embedded", "path": "$W/coord.sqlite"},
 "servers": [{"name": "s", "ifaces": {"lo": "127.0.0.1"}, "roles": [
   {"name": "m1", "roletype": "mware", "iface": "lo", "group": 1, "order": 10, "api_port": 18271,
    "monitoring": {"enabled": false},
    "alarms": {"syslog": {"udp_port": 15514}, "rules": [{"name": "bench", "message": "^bench "}],
               "snmp": [{"address": "$MANAGER"}], "max_outbox": 1000000}}]}]}
JSON
RUST_LOG=warn "$T/mware" --log-format json run --config "$W/site.json" --instance m1 > "$W/mware.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do curl -sf localhost:18271/api/v1/alarms >/dev/null && break; sleep 0.1; done
echo "== mware (alarms service, embedded coordinator)"
"$T/examples/syslog_bench" --target 127.0.0.1:15514 --manager "$MANAGER" --rates "$RATES" --secs "$SECS" | tee "$W/mware.txt"
kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true

mkdir -p "$W/rs"
cat > "$W/rsyslog.conf" <<CONF
global(workDirectory="$W/rs")
module(load="imudp")
module(load="omsnmp")
input(type="imudp" port="15515" address="127.0.0.1" ruleset="bench" rcvbufSize="16m")
ruleset(name="bench") {
  if (\$msg contains "bench seq=") then {
    action(type="omsnmp" server="127.0.0.1" port="16299" transport="udp" version="1" community="public"
           trapoid="1.3.6.1.4.1.32473.7.0.1" messageoid="1.3.6.1.4.1.32473.7.1.6.0")
  }
}
CONF
rsyslogd -v | head -1
rsyslogd -n -f "$W/rsyslog.conf" -i "$W/rs/pid" > "$W/rsyslog.log" 2>&1 &
PIDS+=($!)
sleep 1
echo "== rsyslog with omsnmp"
"$T/examples/syslog_bench" --target 127.0.0.1:15515 --manager "$MANAGER" --rates "$RATES" --secs "$SECS" | tee "$W/rsyslog.txt"
echo "(work files in $W)"
