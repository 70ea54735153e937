#!/usr/bin/env bash
# Benchmark of issue 30 (microservices), two parts, each alternating the two peers run
# by run on the same machine in the same minutes:
#  1. log lines per second from a supervised process into the log, and the supervisor's
#     CPU per line: mware's supervisor (crates/services/microservices/examples/log_bench.rs,
#     the site log: one JSON object per line with time, process, instance, stream) against
#     supervisord (Debian `supervisor`, `stdout_logfile` capture of the same writer: raw
#     bytes, no time). The writer is the same mawk program writing LINES lines as fast as
#     it can; it records its start time; each run ends when the store holds every line.
#     CPU is the supervisor's own (user + system, from getrusage / /proc/PID/stat) from
#     just before the writer starts to the end; the writer's CPU is not counted.
#     Then RUNS more mware runs with syslog forwarding on (LOG_BENCH_SYSLOG=1: every line
#     also sent as an RFC 5424 datagram to a local socket nobody reads): the forwarder's
#     cost, apart. mware's peak resident memory (VmHWM) is printed with each run.
#  2. UDP mirror: datagrams echoed per second and per core of the server's CPU, the mware
#     mirror (examples/mirror_bench.rs serve, one runtime thread, rate limits at their
#     maximum) against socat 1.7 as the echo peer, `socat -b SIZE UDP-LISTEN:P,reuseaddr
#     PIPE` (one process, no fork per datagram; -b SIZE keeps one datagram per pipe read),
#     with the same client (examples/mirror_bench.rs client: WINDOW datagrams in flight).
# journald is not measured: this container runs no systemd (PID 1 is not systemd), so
# systemd-journald has no socket to read from here.
#
# Usage: bash bench/microservices.sh [LINES=1000000] [RUNS=5] [MIRROR_SECONDS=5]
set -euo pipefail
LINES=${1:-1000000}
RUNS=${2:-5}
MSECS=${3:-5}
SIZE=64
WINDOW=32
cd "$(dirname "$0")/.."
T=${CARGO_TARGET_DIR:-target}
[ "${MS_BENCH_NO_BUILD:-0}" = 1 ] || cargo build -q --release -p mware-microservices --examples # MS_BENCH_NO_BUILD=1: use the built ones
LB=$T/release/examples/log_bench
MB=$T/release/examples/mirror_bench
W=$(mktemp -d /var/tmp/ms-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
HZ=$(getconf CLK_TCK)
# The writer both peers supervise: records its start time in $1, then writes LINES lines.
cat > "$W/writer.sh" <<WRITER
#!/bin/sh
date +%s.%N > "\$1"
exec mawk 'BEGIN{for(i=0;i<$LINES;i++) printf "bench line %09d lorem ipsum dolor sit amet, consectetur\\n", i}'
WRITER
BYTES=$(sh "$W/writer.sh" /dev/null | wc -c)
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg); $LINES lines, $BYTES bytes per run; $RUNS runs each"

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
now() { date +%s.%N; }
free_port() { python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

mware_run() { # $2: 1 to forward every line to syslog too
  local d=$W/mw.$1
  mkdir -p "$d"
  LOG_BENCH_SYSLOG=${2:-0} "$LB" "$LINES" "$d/log" "$d/start" -- /bin/sh "$W/writer.sh" "$d/start"
  rm -rf "$d"
}

sup_run() {
  local d=$W/sup.$1
  mkdir -p "$d"
  cat > "$d/sup.conf" <<CONF
[supervisord]
nodaemon=true
logfile=$d/supervisord.log
pidfile=$d/supervisord.pid
childlogdir=$d
[unix_http_server]
file=$d/sup.sock
[supervisorctl]
serverurl=unix://$d/sup.sock
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[program:writer]
command=/bin/sh $W/writer.sh $d/start
autostart=false
autorestart=false
startsecs=0
stdout_logfile=$d/writer.log
stdout_logfile_maxbytes=64MB
stdout_logfile_backups=4
CONF
  supervisord -c "$d/sup.conf" 2>/dev/null >/dev/null & local pid=$!
  until supervisorctl -c "$d/sup.conf" pid 2>/dev/null | grep -qx "$pid"; do
    kill -0 $pid 2>/dev/null || { echo "supervisord did not start" >&2; exit 1; }
    sleep 0.05
  done
  local c0; c0=$(ticks $pid)
  supervisorctl -c "$d/sup.conf" start writer >/dev/null
  until [ "$(stat -c %s "$d"/writer.log* 2>/dev/null | awk '{s+=$1} END {print s+0}')" -ge "$BYTES" ]; do sleep 0.02; done
  local end c1; end=$(now); c1=$(ticks $pid)
  supervisorctl -c "$d/sup.conf" shutdown >/dev/null || true
  wait $pid || true
  python3 -c "import json,sys; l,s,e,c=int(sys.argv[1]),float(sys.argv[2]),float(sys.argv[3]),float(sys.argv[4]); print(json.dumps({'peer':'supervisord','lines':l,'seconds':e-s,'lines_per_s':l/(e-s),'cpu_s':c,'cpu_us_per_line':c*1e6/l}))" \
    "$LINES" "$(cat "$d/start")" "$end" "$(echo "($c1 - $c0) / $HZ" | bc -l)"
  rm -rf "$d"
}

mirror_run() { # $1: mware|socat; the server's CPU from /usr/bin/time when it ends
  local port pid out
  port=$(free_port)
  if [ "$1" = mware ]; then /usr/bin/time -o "$W/time" -f "%U %S" "$MB" serve "$port" 2>/dev/null & pid=$!
  else /usr/bin/time -o "$W/time" -f "%U %S" socat -b "$SIZE" "UDP-LISTEN:$port,reuseaddr" PIPE 2>/dev/null & pid=$!; fi
  sleep 0.3
  out=$("$MB" client "$port" "$MSECS" "$SIZE" "$WINDOW")
  sleep 0.2
  pkill -TERM -P $pid 2>/dev/null || true
  wait $pid 2>/dev/null || true
  python3 -c "import json,sys; o=json.loads(sys.argv[2]); u,s=map(float,open(sys.argv[3]).read().split()[-2:]); cpu=u+s; o.update(peer=sys.argv[1], server_cpu_s=cpu, server_cores=cpu/o['seconds'], echoed_per_s_per_core=o['echoed']/cpu if cpu else None); print(json.dumps(o))" \
    "$1" "$out" "$W/time"
}

R=$W/results.jsonl
for i in $(seq 1 "$RUNS"); do
  mware_run "$i" | tee -a "$R"
  sup_run "$i" | tee -a "$R"
done
for i in $(seq 1 "$RUNS"); do
  mware_run "s$i" 1 | tee -a "$R"
done
for i in $(seq 1 "$RUNS"); do
  mirror_run mware | tee -a "$R"
  mirror_run socat | tee -a "$R"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$R" <<'PY'
import json, statistics as st, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(peer, key, filt):
    return st.median(r[key] for r in rows if r["peer"] == peer and filt(r))
log = lambda r: "lines_per_s" in r
udp = lambda r: "echoed_per_s" in r
for key in ("lines_per_s", "cpu_us_per_line"):
    a, b = med("mware", key, log), med("supervisord", key, log)
    print(f"log {key}: mware median {a:.3f}, supervisord median {b:.3f}, ratio {a / b:.2f}x")
pairs = [(a["lines_per_s"] / b["lines_per_s"], a["cpu_us_per_line"] / b["cpu_us_per_line"])
         for a, b in zip([r for r in rows if log(r) and r["peer"] == "mware"], [r for r in rows if log(r) and r["peer"] == "supervisord"])]
print("log pairwise ratios (lines/s, cpu/line):", ", ".join(f"{x:.2f}/{y:.2f}" for x, y in pairs))
fw = lambda r: log(r) and r["peer"] == "mware+syslog"
if any(fw(r) for r in rows):
    print(f"log with syslog forwarding: cpu_us_per_line median {med('mware+syslog', 'cpu_us_per_line', fw):.3f}, lines_per_s median {med('mware+syslog', 'lines_per_s', fw):.0f}")
print(f"mware VmHWM median {med('mware', 'vm_hwm_kb', log):.0f} kB")
for key in ("echoed_per_s", "echoed_per_s_per_core", "server_cores"):
    a, b = med("mware", key, udp), med("socat", key, udp)
    print(f"mirror {key}: mware median {a:.1f}, socat median {b:.1f}, ratio {a / b:.2f}x")
PY
